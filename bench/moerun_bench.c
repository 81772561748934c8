/*
 * bench/moerun_bench.c — throughput of one MoE layer stack, with the machine's own
 * baselines measured in the same run.
 *
 *   mpirun -np 2 moerun-bench [moerun options] [--warmup N] [--telemetry FILE] [--json FILE]
 *
 * Defaults are the standard configuration: 1024 tokens/rank, d 512, ffn 1024, E 8, top-2,
 * cf 1.25, 1 layer, 30 steps after 3 warm-up steps (--warmup N: run by the same engine,
 * before the measured steps, and left out of every figure), no telemetry. Printed (rank 0), in
 * nccl-tests style, with min/avg/max over ranks where it applies:
 *   - baselines: OpenBLAS sgemm GFLOP/s on the expert's GEMM shape (one thread, all ranks
 *     at once, as in the run) and memcpy GB/s (64 MiB); both read back and check what they
 *     wrote (so no compiler can drop them) and a value above what one core can do is
 *     refused as a measuring bug (bench_util.h), exit 3; and the expert kernel alone
 *     (moe_ffn_forward, a balanced step's rows per expert) against sgemm, both in thread
 *     CPU time, so their ratio holds on a loaded machine (its output row checked against
 *     the reference);
 *   - step time: min/median/max over steps (the slowest rank of each step) and over ranks
 *     (each rank's median), and the mean over steps (what tokens/s counts: median / mean
 *     is the share outlier steps cost); involuntary context switches per step (getrusage
 *     ru_nivcsw, min/avg/max over ranks), CPU time per step (getrusage user + system, over
 *     ranks, and its share of the mean step: with more ranks than cores, how much of the
 *     wall each rank was on a core), the rows each rank's experts computed per step and the
 *     expert calls' GFLOP/s in thread CPU time (min/avg/max over ranks: with even rows, a
 *     slowest / fastest below 1 is cores of unequal speed, and the faster ranks then wait
 *     for the slowest in combine) and the compute slots in effect (--compute-slots);
 *   - with --telemetry FILE, the run repeated with telemetry into FILE and without,
 *     alternating (BENCH_TEL_ROUNDS each): the overhead as a share of the median step time.
 *     FILE is checked before anything runs (an existing FILE only with --overwrite); each
 *     repetition replaces the file of the one before, so FILE ends holding the last;
 *   - the run: tokens/s, per-phase time, expert-phase GFLOP/s and its ratio to the sgemm
 *     peak, and the GEMM-bound limit P * peak / (FLOPs per token) with the run's ratio to it;
 *     also the limit at the slowest rank's in-run expert-call rate (P * that rate / FLOPs per
 *     token): a bulk-synchronous step waits for its slowest core, so the ratio to this one is
 *     what the runtime itself leaves (gate, exchange, activation), with core speed taken out.
 * Not a test: nothing is asserted, figures go to the issue notes.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/resource.h>

#include <cblas.h>
#include <mpi.h>

#include "moerun/moerun.h"
#include "bench_start.h"
#include "bench_util.h"
#include "engine.h"
#include "ffn.h"
#include "telemetry.h"

extern char **environ;

/* --telemetry: runs with and without telemetry, alternating, this many each. */
#define BENCH_TEL_ROUNDS 3

/* One measured run: per-step wall times (max over ranks per step, then min/median/max over
 * steps; and each rank's median, min/avg/max over ranks) and the engine's summary, whose
 * tokens/s leaves the warm-up steps out (moe_config_t.warmup); everything else here is of
 * the measured steps only. */
typedef struct bench_run {
    moe_summary_t s;
    double        phase[MOE_PHASE_COUNT][2]; /* s per phase, measured steps: avg, max rank */
    double        rows;     /* rows all ranks' routed experts computed in the measured steps */
    bench_stats_t iter;     /* over steps, of the slowest rank's time of each step */
    double        mean;     /* mean of those: what tokens/s counts (outlier steps included) */
    double        rank[3];  /* over ranks, of each rank's median step time */
    double        nivcsw[3];/* over ranks (min/avg/max): involuntary context switches per step
                             * (getrusage ru_nivcsw: the scheduler preempting the rank) */
    double        cpu[3];   /* over ranks: CPU time per step, s (getrusage user + system) */
    double        krun[3];  /* over ranks that computed rows: the expert calls' GFLOP/s in the
                             * run, in thread CPU time (engine.expert_cpu_tot): each core's own
                             * rate, so a spread with even rows is a spread of core speed */
    double        rows_rank[3]; /* over ranks: rows the rank's experts computed per step */
} bench_run_t;

/* Reports a failed engine call once: the lowest rank whose own call failed prints its
 * message (the others only learnt of it, "failed on another rank"); with no such rank
 * (an MPI failure everywhere) rank 0 prints. Collective. */
static void bench_report_failure(moe_engine_t *eng, const char *what, int rank)
{
    const char *msg = moe_engine_last_error(eng);
    int         own = strstr(msg, "failed on another rank") == NULL ? rank : INT_MAX, first;

    MPI_Allreduce(&own, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank != (first == INT_MAX ? 0 : first))
        return;
    if (rank == 0)
        fprintf(stderr, "moerun-bench: error: %s: %s\n", what, msg);
    else
        fprintf(stderr, "moerun-bench[%d]: error: %s: %s\n", rank, what, msg);
}

static double bench_tv(const struct timeval *tv)
{
    return (double)tv->tv_sec + 1e-6 * (double)tv->tv_usec;
}

/* Runs `warmup` steps, then cfg->steps measured steps, on one engine, into *out: the
 * warm-up steps warm this engine's own buffers, caches and MPI connections (a first step
 * of a new engine is 15-35 % slower). A failure of create or finish (every rank agrees on
 * it) is reported once and the program ends with exit 1; a failed step ends every rank. */
static void run_engine(const moe_config_t *cfg0, long warmup, bench_run_t *out, int rank)
{
    moe_engine_t *eng = NULL;
    moe_config_t  c = *cfg0, *cfg = &c;
    moe_status_t  st;
    struct rusage ru0, ru1;
    double       *t = calloc((size_t)cfg->steps + 1, sizeof(double));
    double       *tmax = calloc((size_t)cfg->steps + 1, sizeof(double));
    double        ph0[MOE_PHASE_COUNT], ph[MOE_PHASE_COUNT], rows0 = 0, rows, kcpu0 = 0, kcpu;
    double        flop_row = moe_ffn_flops_per_row(cfg->d_model, cfg->d_ffn,
                                                   cfg->activation == MOE_ACT_SWIGLU);
    long          i, n = cfg->steps;
    int           slowest;

    c.steps = n + warmup;
    c.warmup = warmup;
    st = moe_engine_create(cfg, MPI_COMM_WORLD, &eng);

    if (st != MOE_OK) {
        bench_report_failure(eng, "engine", rank);
        moe_engine_destroy(eng);
        MPI_Finalize();
        exit(1);
    }
    if (t == NULL || tmax == NULL) {
        fprintf(stderr, "moerun-bench[%d]: error: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (i = -warmup; i < n; i++) {
        double t0;
        if (i == 0) { /* the measured steps start: what the engine counted so far is left out */
            memcpy(ph0, eng->phase_tot, sizeof(ph0));
            rows0 = (double)eng->rows_in_tot;
            kcpu0 = eng->expert_cpu_tot;
            getrusage(RUSAGE_SELF, &ru0);
        }
        t0 = MPI_Wtime();
        st = moe_engine_step(eng);
        if (i >= 0)
            t[i] = MPI_Wtime() - t0;
        if (st != MOE_OK) { /* the others may wait in the step's collectives */
            fprintf(stderr, "moerun-bench[%d]: error: step %ld: %s\n", rank, i + warmup + 1,
                    moe_engine_last_error(eng));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    bench_over_ranks((double)(ru1.ru_nivcsw - ru0.ru_nivcsw) / (double)n, out->nivcsw,
                     MPI_COMM_WORLD);
    bench_over_ranks((bench_tv(&ru1.ru_utime) + bench_tv(&ru1.ru_stime) -
                      bench_tv(&ru0.ru_utime) - bench_tv(&ru0.ru_stime)) / (double)n,
                     out->cpu, MPI_COMM_WORLD);
    for (i = 0; i < MOE_PHASE_COUNT; i++)
        ph[i] = eng->phase_tot[i] - ph0[i];
    MPI_Allreduce(ph, ph0, MOE_PHASE_COUNT, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (i = 0; i < MOE_PHASE_COUNT; i++)
        out->phase[i][0] = ph0[i] / (double)eng->nranks;
    MPI_Allreduce(ph, ph0, MOE_PHASE_COUNT, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (i = 0; i < MOE_PHASE_COUNT; i++)
        out->phase[i][1] = ph0[i];
    rows = (double)eng->rows_in_tot - rows0;
    kcpu = eng->expert_cpu_tot - kcpu0;
    if (moe__engine_rates_over_ranks(MPI_COMM_WORLD, &eng->log, rows, kcpu, flop_row,
                                     out->rows_rank, out->krun, &slowest) != MOE_OK)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (i = 0; i < 3; i++)
        out->rows_rank[i] /= (double)n; /* per step */
    MPI_Allreduce(&rows, &out->rows, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if ((st = moe_engine_finish(eng, "complete", &out->s)) != MOE_OK) {
        bench_report_failure(eng, "finish", rank);
        moe_engine_destroy(eng);
        MPI_Finalize();
        exit(1);
    }
    MPI_Allreduce(t, tmax, (int)n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (i = 0, out->mean = 0; i < n; i++)
        out->mean += tmax[i] / (double)n;
    out->iter = bench_stats(tmax, (int)n);
    bench_over_ranks(bench_stats(t, (int)n).med, out->rank, MPI_COMM_WORLD);
    moe_engine_destroy(eng);
    free(t), free(tmax);
}

/* Refuses an implausible or failed baseline: prints why on rank 0 and stops every rank. */
static void bench_check_baseline(const char *what, const double v[3], double ceiling, int rank)
{
    if (v[0] >= 0 && v[2] <= ceiling)
        return;
    if (rank == 0)
        fprintf(stderr, "moerun-bench: error: %s baseline %s (min %.2f, max %.2f; ceiling %.0f): "
                        "a measuring bug (dead code eliminated or a wrong result); refusing to "
                        "print it\n", what, v[0] < 0 ? "failed its read-back check" :
                        "is above what one core can do", v[0], v[2], ceiling);
    MPI_Finalize();
    exit(3);
}

/* This thread's CPU time (s): what a kernel costs, without the time slices other processes
 * take from it (on a loaded machine wall time measures the load, not the kernel). */
static double bench_cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/*
 * The expert kernel alone against sgemm, both in thread CPU time, best of bursts for
 * `seconds` each: moe_ffn_forward on one expert of the run's shape with the rows an expert
 * gets in a balanced step (tokens x top_k x P / experts), and cblas_sgemm 256 x hc x d (the
 * peak's shape). GFLOP/s into kern_p and sgemm_p; -1 in *kern_p if one output row differs
 * from moe_ffn_forward_ref by more than 1e-4 (relative).
 */
static void bench_kernel_cpu(const moe_config_t *cfg, int P, double seconds, double *kern_p,
                             double *sgemm_p)
{
    moe_ffn_t ffn;
    int       d = cfg->d_model, hc, rows = (int)((double)cfg->tokens * cfg->top_k * P / cfg->experts);
    float    *x = NULL, *y = NULL, *scr = NULL, *c = NULL, yr[4096];
    double    fl, best = 1e30, bests = 1e30, t0, t, num = 0, den = 0;
    long      i;

    *kern_p = *sgemm_p = -1;
    rows = rows > 0 ? rows : 1;
    if (moe_ffn_init(&ffn, d, cfg->d_ffn, cfg->activation == MOE_ACT_SWIGLU ? MOE_FFN_SWIGLU :
                     MOE_FFN_GELU, cfg->seed, 0, 0) != MOE_OK)
        return;
    hc = moe_ffn_hidden_cols(&ffn);
    x = malloc((size_t)(rows > 256 ? rows : 256) * d * sizeof(float)); /* A of both */
    y = malloc((size_t)rows * d * sizeof(float));
    scr = malloc(moe_ffn_scratch_floats(&ffn) * sizeof(float));
    c = malloc((size_t)256 * hc * sizeof(float));
    if (x && y && scr && c && d <= 4096) {
        for (i = 0; i < (long)(rows > 256 ? rows : 256) * d; i++)
            x[i] = (float)((i * 37) % 101) * 0.02f - 1.0f;
        fl = rows * moe_ffn_flops_per_row(d, cfg->d_ffn, cfg->activation == MOE_ACT_SWIGLU);
        t0 = bench_cpu_now();
        do { /* alternating, so a change of clock or load hits both alike */
            t = bench_cpu_now();
            moe_ffn_forward(&ffn, x, rows, y, scr);
            t = bench_cpu_now() - t;
            best = t > 0 && t < best ? t : best;
            t = bench_cpu_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 256, hc, d, 1.0f, x, d,
                        ffn.w1, hc, 0.0f, c, hc);
            t = bench_cpu_now() - t;
            bests = t > 0 && t < bests ? t : bests;
        } while (bench_cpu_now() - t0 < 2 * seconds);
        moe_ffn_forward_ref(&ffn, x + (size_t)(rows - 1) * d, 1, yr); /* read the result */
        for (i = 0; i < d; i++) {
            num += ((double)y[(size_t)(rows - 1) * d + i] - yr[i]) *
                   ((double)y[(size_t)(rows - 1) * d + i] - yr[i]);
            den += (double)yr[i] * yr[i];
        }
        *kern_p = sqrt(num) <= 1e-4 * sqrt(den) + 1e-30 ? fl / best / 1e9 : -1;
        *sgemm_p = 2.0 * 256 * hc * d / bests / 1e9;
    }
    free(x), free(y), free(scr), free(c);
    moe_ffn_cleanup(&ffn);
}

int main(int argc, char **argv)
{
    static const char *defaults[] = {"--tokens", "1024", "--d-model", "512", "--d-ffn", "1024",
                                     "--experts", "8", "--top-k", "2", "--capacity-factor",
                                     "1.25", "--layers", "1", "--steps", "30", "--telemetry",
                                     "none", "--quiet", "--route-samples", "0"};
    int                 nd = (int)(sizeof(defaults) / sizeof(defaults[0])), P, rank, i, nargs = 0;
    char              **args = calloc((size_t)argc + 1, sizeof(char *));
    const char         *json = NULL, *telfile = NULL;
    int                 warmup = 3, hc, rc = 0;
    moe_config_t        cfg, tcfg;
    bench_run_t         run, trun;
    moe_summary_t       s;
    double              peak[3], mcp[3], tps, flop_tok, limit, eg, exp_flops, ph[MOE_PHASE_COUNT][3];
    double              tel_over = 0, tel_with = 0, tel_without = 0, x, y, pmed[3];
    double              kcpu[3], scpu[3];

    bench_init(&argc, &argv, &rank, &P);
    if (!args)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) {
            char *end;
            long  v = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end != '\0' || v < 0 || v > 1000000) {
                if (rank == 0)
                    fprintf(stderr, "moerun-bench: error: --warmup: '%s' is out of range; allowed "
                                    "0..1000000 (steps run before the measured ones)\n", argv[i]);
                free(args);
                MPI_Finalize();
                return 2;
            }
            warmup = (int)v;
        }
        else if (strcmp(argv[i], "--telemetry") == 0 && i + 1 < argc &&
                 strcmp(argv[i + 1], "none") != 0 && argv[i + 1][0] != '\0')
            telfile = argv[++i];
        else
            args[nargs++] = argv[i];
    }
    i = bench_config("moerun-bench",
                     "Usage: mpirun -np N moerun-bench [moerun options] [--warmup N] "
                     "[--telemetry FILE] [--json FILE]\n"
                     "  --telemetry FILE  also run with telemetry into FILE (alternating with runs "
                     "without) and report its overhead; FILE holds the last such run (an existing FILE "
                     "is refused unless --overwrite)\n",
                     argv[0], defaults, nd, args, nargs, rank, P, &cfg);
    free(args);
    if (i >= 0) {
        MPI_Finalize();
        return i;
    }
    if (bench_json_check("moerun-bench", json, MPI_COMM_WORLD) != 0) {
        MPI_Finalize();
        return 2;
    }
    hc = cfg.d_ffn * (cfg.activation == MOE_ACT_SWIGLU ? 2 : 1);
    if (telfile) { /* FILE as it is before the bench writes it: checked now, on rank 0 */
        char err[512] = "";
        int  code = 0;
        tcfg = cfg;
        snprintf(tcfg.telemetry, sizeof(tcfg.telemetry), "%s", telfile);
        tcfg.route_samples = 8; /* moerun's default */
        if (rank == 0)
            code = (int)moe_config_check_paths(&tcfg, NULL, err, sizeof(err));
        MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (code != 0) {
            if (rank == 0)
                fprintf(stderr, "moerun-bench: error: %s\n", err);
            MPI_Finalize();
            return 2;
        }
    }

    /* baselines, all ranks at once (as the run loads every core) */
    MPI_Barrier(MPI_COMM_WORLD);
    bench_over_ranks(bench_sgemm_gflops(256, hc, cfg.d_model, 1.0, &x), peak, MPI_COMM_WORLD);
    bench_over_ranks(x, pmed, MPI_COMM_WORLD);
    bench_check_baseline("sgemm GFLOP/s", peak, BENCH_SGEMM_MAX_GFLOPS, rank);
    MPI_Barrier(MPI_COMM_WORLD);
    bench_over_ranks(bench_memcpy_gbs((size_t)64 << 20, 0.5), mcp, MPI_COMM_WORLD);
    bench_check_baseline("memcpy GB/s", mcp, BENCH_MEMCPY_MAX_GBS, rank);
    MPI_Barrier(MPI_COMM_WORLD);
    bench_kernel_cpu(&cfg, P, 0.25, &x, &y);
    bench_over_ranks(x, kcpu, MPI_COMM_WORLD);
    bench_over_ranks(y, scpu, MPI_COMM_WORLD);
    bench_check_baseline("expert kernel GFLOP/s (CPU time)", kcpu, BENCH_SGEMM_MAX_GFLOPS, rank);
    bench_check_baseline("sgemm GFLOP/s (CPU time)", scpu, BENCH_SGEMM_MAX_GFLOPS, rank);

    /* the measured run (and the same with telemetry), each after its warm-up steps */
    MPI_Barrier(MPI_COMM_WORLD);
    run_engine(&cfg, warmup, &run, rank);
    s = run.s;
    if (telfile) { /* alternate with and without, so drifting load hits both alike */
        bench_run_t  nrun;
        double       with[BENCH_TEL_ROUNDS], without[BENCH_TEL_ROUNDS];
        without[0] = run.iter.med;
        for (i = 0; i < BENCH_TEL_ROUNDS; i++) {
            MPI_Barrier(MPI_COMM_WORLD);
            run_engine(&tcfg, warmup, &trun, rank);
            with[i] = trun.iter.med;
            tcfg.overwrite = 1; /* the next repetition replaces this run's own file */
            if (i + 1 < BENCH_TEL_ROUNDS) {
                run_engine(&cfg, warmup, &nrun, rank);
                without[i + 1] = nrun.iter.med;
            }
        }
        tel_with = bench_stats(with, BENCH_TEL_ROUNDS).med;
        tel_without = bench_stats(without, BENCH_TEL_ROUNDS).med;
        tel_over = (tel_with - tel_without) / tel_without;
    }

    /* FLOPs per processed pair: two GEMMs (three matrices for swiglu) */
    flop_tok = moe_ffn_flops_per_row(cfg.d_model, cfg.d_ffn, cfg.activation == MOE_ACT_SWIGLU);
    /* shared experts: every token once more per shared expert, on its own rank */
    exp_flops = flop_tok * (run.rows + (double)cfg.shared_experts * cfg.tokens * P *
                                           (double)cfg.steps * cfg.layers); /* measured steps */
    tps = s.tokens_per_s;
    limit = P * peak[1] * 1e9 / (flop_tok * (cfg.top_k + cfg.shared_experts));
    for (i = 0; i < MOE_PHASE_COUNT; i++) {
        ph[i][1] = run.phase[i][0];
        ph[i][2] = run.phase[i][1];
    }
    eg = ph[MOE_PHASE_EXPERT][1] > 0 ? exp_flops / P / ph[MOE_PHASE_EXPERT][1] / 1e9 : 0;
    if (rank == 0) {
        double per_step = 1e6 / (double)cfg.steps / cfg.layers;
        printf("# moerun-bench: %d ranks, E=%d top-%d, d=%d ffn=%d %s, %d tokens/rank, %d layer(s), "
               "%ld steps (+%d warm-up), cf %g, exchange %s\n",
               P, cfg.experts, cfg.top_k, cfg.d_model, cfg.d_ffn, moe_activation_name(cfg.activation),
               cfg.tokens, cfg.layers, cfg.steps, warmup, cfg.capacity_factor, cfg.exchange);
        printf("#\n# baselines (same run, every rank at once)         min        avg        max\n");
        printf("  sgemm %4dx%4dx%4d  GFLOP/s               %9.2f  %9.2f  %9.2f\n", 256, hc,
               cfg.d_model, peak[0], peak[1], peak[2]);
        printf("  sgemm (median burst) GFLOP/s               %9.2f  %9.2f  %9.2f\n", pmed[0],
               pmed[1], pmed[2]);
        printf("  memcpy 64 MiB        GB/s                  %9.2f  %9.2f  %9.2f\n", mcp[0], mcp[1],
               mcp[2]);
        printf("  sgemm, thread CPU time GFLOP/s             %9.2f  %9.2f  %9.2f\n", scpu[0],
               scpu[1], scpu[2]);
        printf("  expert kernel %4d rows, CPU time GFLOP/s   %9.2f  %9.2f  %9.2f   ratio %.3f\n",
               (int)((double)cfg.tokens * cfg.top_k * P / cfg.experts), kcpu[0], kcpu[1],
               kcpu[2], kcpu[1] / scpu[1]);
        printf("#\n# step time (ms)                                   min     median        max\n");
        printf("  over steps (slowest rank of each step)     %9.3f  %9.3f  %9.3f\n",
               1e3 * run.iter.min, 1e3 * run.iter.med, 1e3 * run.iter.max);
        printf("  over ranks (each rank's median; min avg max)%8.3f  %9.3f  %9.3f\n",
               1e3 * run.rank[0], 1e3 * run.rank[1], 1e3 * run.rank[2]);
        printf("  mean over steps (what tokens/s counts)     %9.3f   (median / mean %.3f: the "
               "cost of outlier steps)\n", 1e3 * run.mean, run.iter.med / run.mean);
        printf("  involuntary context switches per step     %9.1f  %9.1f  %9.1f   (over ranks: "
               "min avg max)\n", run.nivcsw[0], run.nivcsw[1], run.nivcsw[2]);
        printf("  CPU time per step (user + system)         %9.3f  %9.3f  %9.3f   (over ranks; "
               "on a core %.0f%% of the mean step)\n", 1e3 * run.cpu[0], 1e3 * run.cpu[1],
               1e3 * run.cpu[2], 100.0 * run.cpu[1] / run.mean);
        printf("  rows a rank's experts computed per step %9.1f  %9.1f  %9.1f   (over ranks: "
               "min avg max)\n", run.rows_rank[0], run.rows_rank[1], run.rows_rank[2]);
        printf("  expert calls, CPU time GFLOP/s             %9.2f  %9.2f  %9.2f   (over ranks; "
               "slowest / fastest %.3f)\n", run.krun[0], run.krun[1], run.krun[2],
               run.krun[2] > 0 ? run.krun[0] / run.krun[2] : 0);
        if (s.compute_slots > 0)
            printf("  compute slots %d per node: at most %d ranks computing at once seen, %.3f ms "
                   "per step asleep waiting for a slot (in the expert phase)\n", s.compute_slots,
                   s.compute_slots_max_holders, 1e3 * s.compute_slots_wait_s / (double)cfg.steps);
        else
            printf("  compute slots off\n");
        printf("  flat's overlapped waits: %s\n", s.wait_sleep_us > 0 ? "sleep between tests" : "MPI's");
        printf("#\n# phase              time/layer-step (us)   avg rank    max rank   share\n");
        for (i = 0; i < MOE_PHASE_COUNT; i++)
            printf("  %-16s                   %9.1f   %9.1f   %5.1f%%\n", moe_phase_names[i],
                   ph[i][1] * per_step, ph[i][2] * per_step,
                   100 * ph[i][1] / (ph[MOE_PHASE_TOTAL][1] > 0 ? ph[MOE_PHASE_TOTAL][1] : 1));
        printf("#\n# result\n");
        printf("  tokens/s (all layers, all ranks)          %12.0f\n", tps);
        printf("  GEMM-bound limit tokens/s (P*peak/flops)  %12.0f   ratio %.3f\n", limit,
               tps / limit * cfg.layers);
        printf("  GEMM-bound limit at the median burst      %12.0f   ratio %.3f (same load)\n",
               limit * pmed[1] / peak[1], tps / (limit * pmed[1] / peak[1]) * cfg.layers);
        if (run.krun[0] > 0)
            printf("  limit at the slowest rank's expert calls  %12.0f   ratio %.3f (every rank only "
                   "computing, at that rank's in-run CPU-time rate)\n", limit * run.krun[0] / peak[1],
                   tps / (limit * run.krun[0] / peak[1]) * cfg.layers);
        printf("  expert phase GFLOP/s per rank             %12.2f   ratio to sgemm peak %.3f, "
               "to the median burst %.3f\n", eg, eg / peak[1], eg / pmed[1]);
        printf("  drop rate                                 %12.4f\n", s.drop_rate);
        printf("  bytes sent between ranks per step         %12.0f\n",
               (double)s.bytes_sent / cfg.steps);
        if (telfile)
            printf("  telemetry overhead (flush every %d steps)  %+.2f%% of step time (median "
                   "step, median of %d alternating runs each: %.3f ms with, %.3f ms without)\n",
                   cfg.flush_interval, 100 * tel_over, BENCH_TEL_ROUNDS, 1e3 * tel_with,
                   1e3 * tel_without);
    }
    if (rank == 0 && json) {
        moe_out_t jo;
        FILE     *f = bench_json_open("moerun-bench", json, &jo);
        if (f == NULL)
            rc = 1;
        else {
            fprintf(f, "{\"ranks\": %d, \"experts\": %d, \"top_k\": %d, \"d_model\": %d, \"d_ffn\": %d, "
                       "\"tokens_per_rank\": %d, \"layers\": %d, \"steps\": %ld, \"exchange\": \"%s\", "
                       "\"sgemm_gflops\": {\"min\": %.3f, \"avg\": %.3f, \"max\": %.3f}, "
                       "\"sgemm_median_gflops\": {\"min\": %.3f, \"avg\": %.3f, \"max\": %.3f}, "
                       "\"memcpy_gbs\": {\"min\": %.3f, \"avg\": %.3f, \"max\": %.3f}, "
                       "\"step_s_over_steps\": {\"min\": %.6f, \"median\": %.6f, \"max\": %.6f}, "
                       "\"step_s_median_over_ranks\": {\"min\": %.6f, \"avg\": %.6f, \"max\": %.6f}, "
                       "\"step_s_mean\": %.6f, "
                       "\"tokens_per_s\": %.1f, \"gemm_bound_tokens_per_s\": %.1f, "
                       "\"ratio_to_limit\": %.4f, \"ratio_to_slowest_rank_limit\": %.4f, "
                       "\"expert_gflops_per_rank\": %.3f, "
                       "\"expert_ratio_to_peak\": %.4f, \"sgemm_cpu_gflops\": %.3f, "
                       "\"kernel_cpu_gflops\": %.3f, \"kernel_cpu_ratio\": %.4f, "
                       "\"nivcsw_per_step\": {\"min\": %.2f, \"avg\": %.2f, \"max\": %.2f}, "
                       "\"cpu_s_per_step\": {\"min\": %.6f, \"avg\": %.6f, \"max\": %.6f}, "
                       "\"rows_per_step_per_rank\": {\"min\": %.2f, \"avg\": %.2f, \"max\": %.2f}, "
                       "\"expert_cpu_gflops_over_ranks\": {\"min\": %.3f, \"avg\": %.3f, \"max\": %.3f}, "
                       "\"compute_slots\": %d, \"compute_slots_max_holders\": %d, "
                       "\"compute_slots_wait_s_per_step\": %.6f, \"wait_sleep_us\": %d, ",
                    P, cfg.experts, cfg.top_k, cfg.d_model, cfg.d_ffn, cfg.tokens, cfg.layers,
                    cfg.steps, cfg.exchange, peak[0], peak[1], peak[2], pmed[0], pmed[1], pmed[2], mcp[0], mcp[1], mcp[2],
                    run.iter.min, run.iter.med, run.iter.max, run.rank[0], run.rank[1],
                    run.rank[2], run.mean, tps, limit, tps / limit * cfg.layers,
                    run.krun[0] > 0 ? tps / (limit * run.krun[0] / peak[1]) * cfg.layers : 0, eg, eg / peak[1], scpu[1],
                    kcpu[1], kcpu[1] / scpu[1], run.nivcsw[0], run.nivcsw[1], run.nivcsw[2],
                    run.cpu[0], run.cpu[1], run.cpu[2], run.rows_rank[0], run.rows_rank[1],
                    run.rows_rank[2], run.krun[0], run.krun[1], run.krun[2],
                    s.compute_slots, s.compute_slots_max_holders,
                    s.compute_slots_wait_s / (double)cfg.steps, s.wait_sleep_us);
            if (telfile)
                fprintf(f, "\"telemetry_overhead\": %.5f, ", tel_over);
            fprintf(f, "\"phase_seconds\": {");
            for (i = 0; i < MOE_PHASE_COUNT; i++)
                fprintf(f, "%s\"%s\": {\"avg\": %.6f, \"max\": %.6f}", i ? ", " : "",
                        moe_phase_names[i], ph[i][1], ph[i][2]);
            fprintf(f, "}, \"drop_rate\": %.6f}\n", s.drop_rate);
            if (bench_json_close("moerun-bench", &jo) != 0)
                rc = 1;
        }
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
