/*
 * bench/moerun_bench.c — throughput of one MoE layer stack, with the machine's own
 * baselines measured in the same run.
 *
 *   mpirun -np 2 moerun-bench [moerun options] [--warmup N] [--json FILE]
 *
 * Defaults are the standard configuration: 1024 tokens/rank, d 512, ffn 1024, E 8, top-2,
 * cf 1.25, 1 layer, 30 steps after 3 warm-up steps, no telemetry. Printed (rank 0), in
 * nccl-tests style, with min/avg/max over ranks where it applies:
 *   - baselines: OpenBLAS sgemm GFLOP/s on the expert's GEMM shape (one thread, all ranks
 *     at once, as in the run) and memcpy GB/s (64 MiB);
 *   - the run: tokens/s, per-phase time, expert-phase GFLOP/s and its ratio to the sgemm
 *     peak, and the GEMM-bound limit P * peak / (FLOPs per token) with the run's ratio to it.
 * Not a test: nothing is asserted, figures go to the issue notes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <mpi.h>

#include "moerun/moerun.h"
#include "bench_start.h"
#include "telemetry.h"

extern char **environ;

static double bench_sgemm(int m, int n, int k, double seconds)
{
    float *a = malloc((size_t)m * k * 4), *b = malloc((size_t)k * n * 4), *c = malloc((size_t)m * n * 4);
    double t0, t, best = 0;
    long   i, reps = 0;

    for (i = 0; i < (long)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (i = 0; i < (long)k * n; i++)
        b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
    t0 = MPI_Wtime();
    do { /* best of short bursts */
        double s = MPI_Wtime();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        t = MPI_Wtime() - s;
        if (t > 0 && 2.0 * m * n * k / t > best)
            best = 2.0 * m * n * k / t;
        reps++;
    } while (MPI_Wtime() - t0 < seconds || reps < 5);
    free(a), free(b), free(c);
    return best / 1e9;
}

static double bench_memcpy(size_t bytes, double seconds)
{
    char  *a = malloc(bytes), *b = malloc(bytes);
    double t0, best = 0;
    int    reps = 0;

    memset(a, 1, bytes);
    memset(b, 2, bytes);
    t0 = MPI_Wtime();
    do {
        double s = MPI_Wtime(), t;
        memcpy(b, a, bytes);
        t = MPI_Wtime() - s;
        if (t > 0 && bytes / t > best)
            best = bytes / t;
        a[reps % bytes] = (char)reps;
        reps++;
    } while (MPI_Wtime() - t0 < seconds || reps < 3);
    free(a), free(b);
    return best / 1e9;
}

/* min/avg/max of x over ranks, on every rank */
static void mam(double x, double out[3], int P)
{
    MPI_Allreduce(&x, &out[0], 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&x, &out[1], 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&x, &out[2], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    out[1] /= P;
}

static int run_engine(const moe_config_t *cfg, moe_summary_t *s, moe_engine_t **eng_p)
{
    moe_status_t st = moe_engine_create(cfg, MPI_COMM_WORLD, eng_p);

    if (st == MOE_OK)
        st = moe_engine_run(*eng_p, NULL);
    if (st == MOE_OK)
        st = moe_engine_finish(*eng_p, "complete", s);
    if (st != MOE_OK)
        fprintf(stderr, "moerun-bench: %s\n", moe_engine_last_error(*eng_p));
    return st == MOE_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const char *defaults[] = {"--tokens", "1024", "--d-model", "512", "--d-ffn", "1024",
                                     "--experts", "8", "--top-k", "2", "--capacity-factor",
                                     "1.25", "--layers", "1", "--steps", "30", "--telemetry",
                                     "none", "--quiet", "--route-samples", "0"};
    int                 nd = (int)(sizeof(defaults) / sizeof(defaults[0])), P, rank, i, nargs = 0;
    char              **args = calloc((size_t)argc + 1, sizeof(char *));
    const char         *json = NULL;
    int                 warmup = 3;
    moe_config_t        cfg, wcfg;
    moe_summary_t       s, ws;
    moe_engine_t       *eng = NULL, *weng = NULL;
    double              peak[3], mcp[3], tps, flop_tok, limit, eg[3], exp_flops, ph[MOE_PHASE_COUNT][3];

    bench_init(&argc, &argv, &rank, &P);
    if (!args)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else
            args[nargs++] = argv[i];
    }
    i = bench_config("moerun-bench",
                     "Usage: mpirun -np N moerun-bench [moerun options] [--warmup N] [--json FILE]\n",
                     argv[0], defaults, nd, args, nargs, rank, P, &cfg);
    free(args);
    if (i >= 0) {
        MPI_Finalize();
        return i;
    }

    /* baselines, all ranks at once (as the run loads every core) */
    MPI_Barrier(MPI_COMM_WORLD);
    mam(bench_sgemm(256, cfg.d_ffn * (cfg.activation == MOE_ACT_SWIGLU ? 2 : 1), cfg.d_model, 1.0),
        peak, P);
    MPI_Barrier(MPI_COMM_WORLD);
    mam(bench_memcpy((size_t)64 << 20, 0.5), mcp, P);

    /* warm-up run, then the measured run */
    wcfg = cfg;
    wcfg.steps = warmup > 0 ? warmup : 1;
    if (run_engine(&wcfg, &ws, &weng)) {
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    moe_engine_destroy(weng);
    MPI_Barrier(MPI_COMM_WORLD);
    if (run_engine(&cfg, &s, &eng))
        MPI_Abort(MPI_COMM_WORLD, 1);

    /* FLOPs per processed pair: two GEMMs (three matrices for swiglu) */
    flop_tok = 2.0 * cfg.d_model * cfg.d_ffn * (cfg.activation == MOE_ACT_SWIGLU ? 3 : 2);
    /* shared experts: every token once more per shared expert, on its own rank */
    exp_flops = flop_tok * ((double)s.processed + (double)cfg.shared_experts * cfg.tokens * P *
                                                      (double)s.steps * cfg.layers);
    tps = s.tokens_per_s;
    limit = P * peak[1] * 1e9 / (flop_tok * (cfg.top_k + cfg.shared_experts));
    for (i = 0; i < MOE_PHASE_COUNT; i++) {
        ph[i][1] = s.phase_s[i];
        ph[i][2] = s.phase_max_s[i];
    }
    eg[1] = s.phase_s[MOE_PHASE_EXPERT] > 0 ? exp_flops / P / s.phase_s[MOE_PHASE_EXPERT] / 1e9 : 0;
    if (rank == 0) {
        double per_step = 1e6 / (double)cfg.steps / cfg.layers;
        printf("# moerun-bench: %d ranks, E=%d top-%d, d=%d ffn=%d %s, %d tokens/rank, %d layer(s), "
               "%ld steps (+%d warm-up), cf %g, exchange %s\n",
               P, cfg.experts, cfg.top_k, cfg.d_model, cfg.d_ffn, moe_activation_name(cfg.activation),
               cfg.tokens, cfg.layers, cfg.steps, warmup, cfg.capacity_factor, cfg.exchange);
        printf("#\n# baselines (same run, every rank at once)         min        avg        max\n");
        printf("  sgemm %4dx%4dx%4d  GFLOP/s               %9.2f  %9.2f  %9.2f\n", 256,
               cfg.d_ffn * (cfg.activation == MOE_ACT_SWIGLU ? 2 : 1), cfg.d_model, peak[0], peak[1], peak[2]);
        printf("  memcpy 64 MiB        GB/s                  %9.2f  %9.2f  %9.2f\n", mcp[0], mcp[1], mcp[2]);
        printf("#\n# phase        time/layer-step (us)   avg rank    max rank   share\n");
        for (i = 0; i < MOE_PHASE_COUNT; i++)
            printf("  %-10s                         %9.1f   %9.1f   %5.1f%%\n", moe_phase_names[i],
                   ph[i][1] * per_step, ph[i][2] * per_step,
                   100 * ph[i][1] / (ph[MOE_PHASE_TOTAL][1] > 0 ? ph[MOE_PHASE_TOTAL][1] : 1));
        printf("#\n# result\n");
        printf("  tokens/s (all layers, all ranks)          %12.0f\n", tps);
        printf("  GEMM-bound limit tokens/s (P*peak/flops)  %12.0f   ratio %.3f\n", limit, tps / limit * cfg.layers);
        printf("  expert phase GFLOP/s per rank             %12.2f   ratio to sgemm peak %.3f\n", eg[1],
               eg[1] / peak[1]);
        printf("  drop rate                                 %12.4f\n", s.drop_rate);
        printf("  bytes sent between ranks per step         %12.0f\n", (double)s.bytes_sent / cfg.steps);
    }
    if (rank == 0 && json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"ranks\": %d, \"experts\": %d, \"top_k\": %d, \"d_model\": %d, \"d_ffn\": %d, "
                       "\"tokens_per_rank\": %d, \"layers\": %d, \"steps\": %ld, \"exchange\": \"%s\", "
                       "\"sgemm_gflops\": {\"min\": %.3f, \"avg\": %.3f, \"max\": %.3f}, "
                       "\"memcpy_gbs\": {\"min\": %.3f, \"avg\": %.3f, \"max\": %.3f}, "
                       "\"tokens_per_s\": %.1f, \"gemm_bound_tokens_per_s\": %.1f, \"ratio_to_limit\": %.4f, "
                       "\"expert_gflops_per_rank\": %.3f, \"expert_ratio_to_peak\": %.4f, \"phase_seconds\": {",
                    P, cfg.experts, cfg.top_k, cfg.d_model, cfg.d_ffn, cfg.tokens, cfg.layers, cfg.steps,
                    cfg.exchange, peak[0], peak[1], peak[2], mcp[0], mcp[1], mcp[2], tps, limit,
                    tps / limit * cfg.layers, eg[1], eg[1] / peak[1]);
            for (i = 0; i < MOE_PHASE_COUNT; i++)
                fprintf(f, "%s\"%s\": {\"avg\": %.6f, \"max\": %.6f}", i ? ", " : "", moe_phase_names[i],
                        ph[i][1], ph[i][2]);
            fprintf(f, "}, \"drop_rate\": %.6f}\n", s.drop_rate);
            fclose(f);
        }
    }
    moe_engine_destroy(eng);
    MPI_Finalize();
    return 0;
}
