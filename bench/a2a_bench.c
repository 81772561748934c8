/*
 * bench/a2a_bench.c — token exchange benchmark (dispatch + combine), nccl-tests style.
 *
 *   mpirun -np P a2a-bench [--experts 64] [--top-k 8] [--d-model 1024]
 *          [--tokens 128,512,2048] [--workloads uniform,zipf:1.2] [--exchanges flat,hier]
 *          [--ranks-per-node N] [--iters 10] [--warmup 2] [--link-gbit R] [--json FILE]
 *          [--phases 1]
 *
 * --phases 1 adds a comment line after each row: the exchange's own phase times (counts,
 * dispatch and its inter-node part, combine and its inter-node part; ms per iteration, mean
 * over ranks and measured iterations).
 * An exchange may be given as NAME:N: backend NAME with its inter-node stage in N pipelined
 * chunks (hier, ucx: --hier-chunks of moerun), e.g. --exchanges flat,hier:1,hier:4.
 *
 * Routing comes from the real gate on the chosen workload (dropless), the placement is
 * contiguous, the expert is the identity (y = x) so only the exchange is timed. For every
 * (workload, tokens, exchange) row it prints the time per dispatch+combine as min/median/max
 * over iterations (each iteration's time is its slowest rank's) and min/max over ranks of
 * each rank's median, the payload bytes per rank (rows moved, both directions), algbw =
 * bytes / time, busbw = algbw * (P-1)/P, inter-node bytes (all ranks), the imbalance (max
 * rank bytes / mean), the lower bound (bytes over the busiest host link / link rate, when
 * --link-gbit is given) and #wrong: output elements that differ from the flat exchange
 * by more than 1e-5 relative. The baseline row "alltoallv" times plain MPI_Alltoallv of
 * exactly the flat exchange's payload (no count exchange, packing or combine sum).
 * Not a test: nothing is asserted.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <mpi.h>

#include "a2a.h"
#include "bench_start.h"
#include "bench_util.h"
#include "gate.h"
#include "placement.h"
#include "topo.h"
#include "workload.h"

#define MAXLIST 16

typedef struct {
    int         E, k, d, rpn, iters, warmup, phases;
    int         ntok, tok[MAXLIST];
    int         nwl, nex;
    char       *wl[MAXLIST], *ex[MAXLIST];
    double      link_gbit;
    const char *json;
} bench_opts_t;

/* Splits a comma list in place; more than MAXLIST entries is an error (-1). */
static int split_list(char *s, char **out)
{
    int n = 0;
    for (char *t = strtok(s, ","); t; t = strtok(NULL, ",")) {
        if (n == MAXLIST)
            return -1;
        out[n++] = t;
    }
    return n;
}

/* A whole-string integer in [lo, hi] into *out; otherwise one message naming the flag and
 * its range (rank 0) and -1. */
static int parse_int(const char *flag, const char *v, long lo, long hi, int *out, int rank)
{
    char *end;
    long  x;

    errno = 0;
    x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || x < lo || x > hi) {
        if (rank == 0)
            fprintf(stderr, "a2a-bench: error: %s: '%s' is out of range; allowed %ld..%ld\n",
                    flag, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* Returns 0, or -1 after one message on rank 0 (-2: no message, print the usage). */
static int parse(int argc, char **argv, bench_opts_t *o, int rank)
{
    static char tokdef[] = "128,512,2048", wldef[] = "uniform,zipf:1.2", exdef[] = "flat,hier";
    char       *toks = tokdef, *tl[MAXLIST], *end;
    int         i, bad = 0;

    memset(o, 0, sizeof(*o));
    o->E = 64, o->k = 8, o->d = 1024, o->iters = 10, o->warmup = 2;
    o->nwl = split_list(wldef, o->wl);
    o->nex = split_list(exdef, o->ex);
    for (i = 1; i < argc && !bad; i++) {
        const char *a = argv[i];
        char       *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -2;
        if (!strcmp(a, "--experts")) bad = parse_int(a, v, 1, 65536, &o->E, rank);
        else if (!strcmp(a, "--top-k")) bad = parse_int(a, v, 1, 65536, &o->k, rank);
        else if (!strcmp(a, "--d-model")) bad = parse_int(a, v, 1, 65536, &o->d, rank);
        else if (!strcmp(a, "--ranks-per-node")) bad = parse_int(a, v, 0, 1 << 20, &o->rpn, rank);
        else if (!strcmp(a, "--iters")) bad = parse_int(a, v, 1, 1000000, &o->iters, rank);
        else if (!strcmp(a, "--warmup")) bad = parse_int(a, v, 0, 1000000, &o->warmup, rank);
        else if (!strcmp(a, "--phases")) bad = parse_int(a, v, 0, 1, &o->phases, rank);
        else if (!strcmp(a, "--link-gbit")) {
            errno = 0;
            o->link_gbit = strtod(v, &end);
            if (end == v || *end != '\0' || errno != 0 || !(o->link_gbit > 0 && o->link_gbit <= 1e6)) {
                if (rank == 0)
                    fprintf(stderr, "a2a-bench: error: --link-gbit: '%s' is out of range; "
                                    "allowed a rate in Gbit/s above 0, at most 1e6\n", v);
                bad = -1;
            }
        }
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--tokens")) toks = v;
        else if (!strcmp(a, "--workloads") || !strcmp(a, "--exchanges")) {
            int wl = !strcmp(a, "--workloads"), n = split_list(v, wl ? o->wl : o->ex);
            if (n < 1) {
                if (rank == 0)
                    fprintf(stderr, "a2a-bench: error: %s: out of range; allowed 1..%d "
                                    "comma-separated names\n", a, MAXLIST);
                bad = -1;
            }
            *(wl ? &o->nwl : &o->nex) = n;
        }
        else
            return -2;
        i++;
    }
    if (bad)
        return -1;
    if ((o->ntok = split_list(toks, tl)) < 1) {
        if (rank == 0)
            fprintf(stderr, "a2a-bench: error: --tokens: out of range; allowed 1..%d "
                            "comma-separated counts\n", MAXLIST);
        return -1;
    }
    for (i = 0; i < o->ntok; i++)
        if (parse_int("--tokens", tl[i], 1, 1 << 20, &o->tok[i], rank) != 0)
            return -1;
    if (o->k > o->E) {
        if (rank == 0)
            fprintf(stderr, "a2a-bench: error: --top-k: %d is out of range; allowed 1..%d "
                            "(--experts)\n", o->k, o->E);
        return -1;
    }
    return 0;
}

typedef struct {
    bench_stats_t it;          /* over iterations, of the slowest rank's time of each */
    double  rk[3];             /* over ranks (min avg max), of each rank's median time */
    double  bytes_rank_avg, imbalance, inter_bytes, bound_s;
    long    wrong;
} row_t;

/* node-level busiest link: max over nodes of bytes out and in, from the rank traffic rows */
static double busiest_link_bytes(const int64_t *row, const moe_topo_t *topo, int P)
{
    int64_t *all = malloc((size_t)P * P * sizeof(int64_t));
    double  *out = calloc((size_t)topo->nnodes, sizeof(double));
    double  *in = calloc((size_t)topo->nnodes, sizeof(double)), best = 0;
    int      r, q;

    MPI_Allgather(row, P, MPI_INT64_T, all, P, MPI_INT64_T, MPI_COMM_WORLD);
    for (r = 0; r < P; r++)
        for (q = 0; q < P; q++)
            if (topo->node[r] != topo->node[q]) {
                out[topo->node[r]] += (double)all[(size_t)r * P + q];
                in[topo->node[q]] += (double)all[(size_t)r * P + q];
            }
    for (r = 0; r < topo->nnodes; r++) {
        best = out[r] > best ? out[r] : best;
        best = in[r] > best ? in[r] : best;
    }
    free(all), free(out), free(in);
    return best;
}

int main(int argc, char **argv)
{
    bench_opts_t    o;
    int             P, rank, wi, ti, xi, it, i;
    moe_topo_t      topo;
    moe_placement_t pl;
    moe_log_t       log;
    FILE           *js = NULL;
    moe_out_t       jo;
    int             first_json = 1, jrc = 0;

    bench_init(&argc, &argv, &rank, &P);
    moe_log_init(&log, rank, MOE_LOG_WARN);
    i = bench_help_requested(argc, argv) ? 0 : parse(argc, argv, &o, rank);
    if (bench_help_requested(argc, argv) || i != 0) {
        int help = bench_help_requested(argc, argv);
        if (!help && i == -1) { /* the message is out */
            MPI_Finalize();
            return 2;
        }
        if (rank == 0)
            fprintf(help ? stdout : stderr, "usage: a2a-bench [--experts E] [--top-k K] [--d-model D] [--tokens T1,T2] "
                            "[--workloads W1,W2] [--exchanges X1,X2] [--ranks-per-node N] [--iters N] "
                            "[--warmup N] [--link-gbit R] [--json FILE] [--phases 0|1]\n");
        MPI_Finalize();
        return help ? 0 : 2;
    }
    if (bench_json_check("a2a-bench", o.json, MPI_COMM_WORLD) != 0) {
        MPI_Finalize();
        return 2;
    }
    if (moe_topo_discover(MPI_COMM_WORLD, o.rpn, &log, &topo) != MOE_OK ||
        moe_placement_init(&pl, MOE_PLACE_CONTIGUOUS, o.E, P) != MOE_OK)
        MPI_Abort(MPI_COMM_WORLD, 1);
    if (rank == 0) {
        printf("# a2a-bench: %d ranks on %d nodes, E=%d top-%d, d=%d (float32), dropless, identity experts, "
               "%d iters after %d warm-up\n", P, topo.nnodes, o.E, o.k, o.d, o.iters, o.warmup);
        printf("# time: us per dispatch+combine: min/median/max over iterations (each iteration's "
               "slowest rank), then min/max over ranks of each rank's median; bytes: payload per "
               "rank, both directions; algbw, busbw: GB/s at the median; inter: inter-node MB per "
               "step, all ranks; bound/t: lower bound / median\n");
        printf("#%-12s %6s %-9s %11s %9s %9s %9s %9s %9s %8s %8s %9s %6s %9s %6s\n", "workload",
               "tokens", "exchange", "bytes", "it-min", "it-med", "it-max", "rk-min", "rk-max",
               "algbw", "busbw", "inter", "imbal", "bound/t", "#wrong");
        if (o.json && (js = bench_json_open("a2a-bench", o.json, &jo)) == NULL)
            jrc = 1;
        if (js)
            fprintf(js, "[");
    }
    for (wi = 0; wi < o.nwl; wi++)
        for (ti = 0; ti < o.ntok; ti++) {
            int                 T = o.tok[ti], E = o.E, k = o.k, d = o.d;
            moe_workload_spec_t spec;
            moe_workload_t      wl;
            char                err[256];
            float              *x = malloc((size_t)T * d * 4), *wg = malloc((size_t)d * E * 4);
            float              *lg = malloc((size_t)T * E * 4), *ref = malloc((size_t)T * d * 4);
            float              *out = malloc((size_t)T * d * 4);
            double             *ps = malloc((size_t)E * 8), *sums = calloc(MOE_GSUM_LEN(E), 8), lmax = 0;
            moe_gate_out_t      g = {malloc((size_t)T * k * 4), malloc((size_t)T * k * 4),
                                     malloc((size_t)T * k * 4)};
            int32_t            *dr = malloc((size_t)T * k * 4), *de = malloc((size_t)T * k * 4);
            moe_a2a_plan_t      plan = {T, k, dr, de, g.weight};

            if (moe_workload_parse(o.wl[wi], E, &spec, err, sizeof(err)) != MOE_OK) {
                if (rank == 0)
                    fprintf(stderr, "a2a-bench: %s\n", err);
                MPI_Abort(MPI_COMM_WORLD, 2);
            }
            moe_workload_init(&wl, &spec, 1, d, E);
            moe_workload_router(&wl, 0, wg);
            moe_workload_tokens(&wl, 0, (int64_t)rank * T, T, x);
            moe_gate_route(x, wg, T, d, E, k, 1.0, lg, ps, &g, sums, &lmax, NULL);
            for (i = 0; i < T * k; i++) {
                dr[i] = pl.owner[g.expert[i]];
                de[i] = pl.local_index[g.expert[i]];
            }
            for (xi = -1; xi < o.nex; xi++) { /* -1: flat reference + alltoallv baseline */
                char                 xname[64];
                const char          *colon;
                int                  chunks = 0;
                const moe_a2a_ops_t *ops;
                moe_a2a_params_t     prm = {MPI_COMM_WORLD, d, T, k, pl.local_count, topo.node, &log, 0, 0, 0, 0, 0, 0};

                /* NAME:N = backend NAME with N inter-node chunks (hier, ucx) */
                snprintf(xname, sizeof(xname), "%s", xi < 0 ? "flat" : o.ex[xi]);
                if ((colon = strchr(xname, ':')) != NULL) {
                    chunks = atoi(colon + 1);
                    xname[colon - xname] = '\0';
                }
                ops = moe_a2a_find(xname);
                prm.inter_chunks = chunks;
                void                *ctx = NULL;
                moe_expert_batch_t   b;
                moe_a2a_stats_t      st;
                int64_t             *trow = calloc((size_t)P, sizeof(int64_t));
                double              *ts = calloc((size_t)o.iters, sizeof(double));
                double              *tg = calloc((size_t)o.iters, sizeof(double));
                double               bytes = 0, b3[3], ph[5] = {0, 0, 0, 0, 0};
                row_t                rw;
                const char          *name = xi < 0 ? "alltoallv" : o.ex[xi];

                if (ops == NULL || ops->create(&prm, &ctx) != MOE_OK) {
                    if (rank == 0)
                        fprintf(stderr, "a2a-bench: exchange %s unavailable: %s\n", name, log.last_error);
                    free(trow), free(ts), free(tg);
                    continue;
                }
                memset(&rw, 0, sizeof(rw));
                for (it = 0; it < o.warmup + o.iters; it++) {
                    double t0;
                    memset(&st, 0, sizeof(st));
                    st.bytes_to_rank = it == o.warmup ? trow : NULL;
                    memcpy(out, x, (size_t)T * d * 4);
                    MPI_Barrier(MPI_COMM_WORLD);
                    t0 = MPI_Wtime();
                    if (ops->dispatch(ctx, &plan, x, &b, &st) != MOE_OK)
                        MPI_Abort(MPI_COMM_WORLD, 1);
                    memcpy(b.y, b.x, (size_t)b.offset[b.n_local] * d * 4); /* identity expert */
                    if (ops->combine(ctx, &plan, &b, out, &st) != MOE_OK)
                        MPI_Abort(MPI_COMM_WORLD, 1);
                    if (it >= o.warmup) {
                        ts[it - o.warmup] = MPI_Wtime() - t0;
                        ph[0] += st.t_counts, ph[1] += st.t_dispatch, ph[2] += st.t_dispatch_inter;
                        ph[3] += st.t_combine, ph[4] += st.t_combine_inter;
                        if (it == o.warmup) {
                            rw.inter_bytes = (double)st.bytes_inter;
                            bytes = (double)(st.bytes_sent + st.bytes_recv) / 2;
                        }
                    }
                }
                if (xi < 0) { /* keep the flat output as reference; time plain MPI_Alltoallv */
                    memcpy(ref, out, (size_t)T * d * 4);
                    ops->destroy(ctx);
                    {
                        int   *sc = calloc((size_t)P, sizeof(int)), *sd = calloc((size_t)P, sizeof(int));
                        int   *rc = calloc((size_t)P, sizeof(int)), *rd = calloc((size_t)P, sizeof(int)), tot = 0;
                        float *sb, *rb;
                        for (i = 0; i < T * k; i++)
                            sc[dr[i]] += d;
                        MPI_Alltoall(sc, 1, MPI_INT, rc, 1, MPI_INT, MPI_COMM_WORLD);
                        for (i = 0; i < P; i++) {
                            sd[i] = i ? sd[i - 1] + sc[i - 1] : 0;
                            rd[i] = tot;
                            tot += rc[i];
                        }
                        sb = calloc((size_t)T * k * d + 1, 4);
                        rb = calloc((size_t)tot + 1, 4);
                        for (it = 0; it < o.warmup + o.iters; it++) {
                            double t0;
                            MPI_Barrier(MPI_COMM_WORLD);
                            t0 = MPI_Wtime();
                            MPI_Alltoallv(sb, sc, sd, MPI_FLOAT, rb, rc, rd, MPI_FLOAT, MPI_COMM_WORLD);
                            MPI_Alltoallv(rb, rc, rd, MPI_FLOAT, sb, sc, sd, MPI_FLOAT, MPI_COMM_WORLD);
                            if (it >= o.warmup)
                                ts[it - o.warmup] = MPI_Wtime() - t0;
                        }
                        free(sc), free(sd), free(rc), free(rd), free(sb), free(rb);
                    }
                } else {
                    for (i = 0; i < T * d; i++)
                        rw.wrong += fabs(out[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i]));
                    ops->destroy(ctx);
                }
                MPI_Allreduce(MPI_IN_PLACE, ph, 5, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
                MPI_Allreduce(ts, tg, o.iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
                rw.it = bench_stats(tg, o.iters);
                bench_over_ranks(bench_stats(ts, o.iters).med, rw.rk, MPI_COMM_WORLD);
                free(ts), free(tg);
                b3[0] = bytes, b3[1] = bytes, b3[2] = rw.inter_bytes;
                MPI_Allreduce(MPI_IN_PLACE, &b3[0], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
                MPI_Allreduce(MPI_IN_PLACE, &b3[1], 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
                MPI_Allreduce(MPI_IN_PLACE, &rw.wrong, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
                rw.bytes_rank_avg = b3[1] / P;
                rw.imbalance = rw.bytes_rank_avg > 0 ? b3[0] / rw.bytes_rank_avg : 0;
                rw.inter_bytes = xi < 0 ? NAN : b3[2];
                rw.bound_s = o.link_gbit > 0 ? busiest_link_bytes(trow, &topo, P) * 8 / (o.link_gbit * 1e9) : 0;
                free(trow);
                if (rank == 0) {
                    double alg = rw.bytes_rank_avg / rw.it.med / 1e9;
                    printf(" %-12s %6d %-9s %11.0f %9.1f %9.1f %9.1f %9.1f %9.1f %8.3f %8.3f %9.3f %6.2f "
                           "%9.3f %6ld\n",
                           o.wl[wi], T, name, rw.bytes_rank_avg, rw.it.min * 1e6, rw.it.med * 1e6,
                           rw.it.max * 1e6, rw.rk[0] * 1e6, rw.rk[2] * 1e6, alg, alg * (P - 1) / P,
                           rw.inter_bytes / 1e6, rw.imbalance,
                           rw.bound_s > 0 ? rw.bound_s / rw.it.med : 0, xi < 0 ? 0 : rw.wrong);
                    if (o.phases && xi >= 0) {
                        double f = 1e3 / ((double)P * o.iters);
                        printf("#  %s phases, ms per iteration (mean over ranks and iterations): counts "
                               "%.1f, dispatch %.1f (inter-node %.1f), combine %.1f (inter-node %.1f)\n",
                               name, ph[0] * f, ph[1] * f, ph[2] * f, ph[3] * f, ph[4] * f);
                    }
                    if (js) {
                        fprintf(js, "%s\n {\"workload\": \"%s\", \"tokens\": %d, \"exchange\": \"%s\", "
                                    "\"ranks\": %d, \"nodes\": %d, \"experts\": %d, \"top_k\": %d, \"d_model\": %d, "
                                    "\"bytes_per_rank\": %.0f, \"time_us\": {\"min\": %.2f, \"median\": %.2f, \"max\": %.2f}, "
                                    "\"rank_median_us\": {\"min\": %.2f, \"avg\": %.2f, \"max\": %.2f}, "
                                    "\"algbw_gbs\": %.4f, \"busbw_gbs\": %.4f, \"inter_node_bytes\": %.0f, "
                                    "\"imbalance\": %.3f, \"bound_us\": %.2f, \"wrong\": %ld}",
                                first_json ? "" : ",", o.wl[wi], T, name, P, topo.nnodes, o.E, o.k, o.d,
                                rw.bytes_rank_avg, rw.it.min * 1e6, rw.it.med * 1e6, rw.it.max * 1e6,
                                rw.rk[0] * 1e6, rw.rk[1] * 1e6, rw.rk[2] * 1e6, alg, alg * (P - 1) / P,
                                xi < 0 ? -1.0 : rw.inter_bytes, rw.imbalance, rw.bound_s * 1e6,
                                xi < 0 ? 0 : rw.wrong);
                        first_json = 0;
                    }
                }
            }
            moe_workload_cleanup(&wl);
            free(x), free(wg), free(lg), free(ref), free(out), free(ps), free(sums);
            free(g.expert), free(g.prob), free(g.weight), free(dr), free(de);
        }
    if (js) {
        fprintf(js, "\n]\n");
        if (bench_json_close("a2a-bench", &jo) != 0)
            jrc = 1;
    }
    MPI_Bcast(&jrc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    moe_placement_cleanup(&pl);
    moe_topo_cleanup(&topo);
    MPI_Finalize();
    return jrc;
}
