/*
 * bench/moerun_soak.c — long-run soak: resident memory and telemetry file size over many steps.
 *
 *   mpirun -np P moerun-soak [moerun options] [--sample-every N] [--json FILE]
 *
 * Runs the engine step by step (small tensors by default: 100,000 steps of 64 tokens/rank,
 * d 16, 4 experts, top-2, 2 layers, telemetry on, flush every 100 steps) and every N steps
 * (default: steps / 20) records, per rank, the resident set size (/proc/self/statm) and, on
 * rank 0, the telemetry file size. After the warm-up sample (the first after 10% of the
 * steps), it reports:
 *   - RSS growth from warm-up to the end, max over ranks (flat memory: ~0);
 *   - file bytes per step (least-squares slope over the samples) and the largest deviation
 *     of a sample from that line relative to the file size (linear growth: small);
 *   - the bytes per step expected from the schema (docs/telemetry.md: per-step datasets,
 *     one row each, plus the sampled routes), for comparison with the slope.
 * Prints a table and, with --json, the same as JSON. Not a test: nothing is asserted.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <mpi.h>

#include "moerun/config.h"
#include "moerun/moerun.h"
#include "bench_start.h"
#include "bench_util.h"
#include "telemetry.h"

extern char **environ;

#define SOAK_MAX_SAMPLES 1024

typedef struct {
    long   step;
    double rss_mb_max; /* over ranks */
    double rss_mb_min;
    double file_mb;    /* rank 0's view of the telemetry file */
    double t;          /* seconds since the first step */
} soak_sample_t;

static double soak_rss_mb(void)
{
    long  pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static double soak_file_mb(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (double)sb.st_size / 1e6 : -1.0;
}

/* Bytes one step adds to the telemetry file by the schema: per-step datasets (one row each)
 * and the sampled routes; chunk and B-tree overheads come on top. */
static double soak_schema_bytes_per_step(const moe_config_t *c, int P)
{
    double L = c->layers, E = c->experts, k = c->top_k;
    double per_step = 8                                 /* steps/step */
                      + 4 * 8 * L * E                   /* routed, processed, dropped, _capacity */
                      + 8 * L                           /* capacity */
                      + 8 * L * MOE_RSTAT_COUNT         /* router */
                      + 8 * L * P * MOE_PHASE_COUNT     /* phase_time */
                      + 8 * L * P * MOE_TRAFFIC_COUNT;  /* traffic */
    double route = 8 + 8 + L * k * (4 + 4 + 1);         /* step, token, expert, weight, kept */

    return per_step + (double)c->route_samples * route; /* route_samples: per step, all ranks */
}

int main(int argc, char **argv)
{
    static const char  *defaults[] = {"--tokens", "64", "--d-model", "16", "--d-ffn", "24",
                                      "--experts", "4", "--top-k", "2", "--layers", "2",
                                      "--steps", "100000", "--flush-interval", "100",
                                      "--telemetry", "moerun-soak.h5", "--overwrite", "--quiet"};
    int                 nd = (int)(sizeof(defaults) / sizeof(defaults[0])), P, rank, i, nargs = 0;
    char              **args = calloc((size_t)argc + 1, sizeof(char *));
    const char         *json = NULL;
    long                every = 0, s, warm_idx = -1;
    int                 ns = 0;
    moe_config_t        cfg;
    moe_engine_t       *eng = NULL;
    moe_summary_t       sum;
    moe_status_t        st;
    soak_sample_t      *smp = calloc(SOAK_MAX_SAMPLES, sizeof(*smp));
    double              t0, slope = 0, icpt = 0, maxdev = 0, growth = 0, expect;
    int                 jrc = 0;

    bench_init(&argc, &argv, &rank, &P);
    if (!args || !smp) {
        fprintf(stderr, "moerun-soak: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (strcmp(argv[i], "--sample-every") == 0 && i + 1 < argc)
            every = atol(argv[++i]);
        else
            args[nargs++] = argv[i];
    }
    i = bench_config("moerun-soak",
                     "Usage: mpirun -np N moerun-soak [moerun options] [--sample-every N] "
                     "[--json FILE]\nDefaults: 100000 steps of small tensors, telemetry to "
                     "moerun-soak.h5; prints RSS and file size over the run.\n",
                     argv[0], defaults, nd, args, nargs, rank, P, &cfg);
    free(args);
    if (i >= 0) {
        free(smp);
        MPI_Finalize();
        return i;
    }
    if (bench_json_check("moerun-soak", json, MPI_COMM_WORLD) != 0) {
        free(smp);
        MPI_Finalize();
        return 2;
    }
    if (every <= 0)
        every = cfg.steps / 20 > 0 ? cfg.steps / 20 : 1;
    if (cfg.steps / every + 2 > SOAK_MAX_SAMPLES)
        every = cfg.steps / (SOAK_MAX_SAMPLES - 2) + 1;

    st = moe_engine_create(&cfg, MPI_COMM_WORLD, &eng);
    if (st != MOE_OK) {
        if (rank == 0)
            fprintf(stderr, "moerun-soak: error: %s\n", moe_engine_last_error(eng));
        moe_engine_destroy(eng);
        free(smp);
        MPI_Finalize();
        return 1;
    }
    t0 = MPI_Wtime();
    for (s = 1; s <= cfg.steps; s++) {
        if ((st = moe_engine_step(eng)) != MOE_OK) {
            fprintf(stderr, "moerun-soak[%d]: step %ld: %s\n", rank, s, moe_engine_last_error(eng));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (s % every == 0 || s == cfg.steps) {
            double rss = soak_rss_mb(), mx, mn;
            MPI_Allreduce(&rss, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            MPI_Allreduce(&rss, &mn, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
            smp[ns].step = s;
            smp[ns].rss_mb_max = mx;
            smp[ns].rss_mb_min = mn;
            smp[ns].file_mb = rank == 0 ? soak_file_mb(cfg.telemetry) : 0;
            smp[ns].t = MPI_Wtime() - t0;
            if (warm_idx < 0 && s >= cfg.steps / 10)
                warm_idx = ns;
            if (rank == 0)
                fprintf(stderr, "moerun-soak: step %ld/%ld  rss max %.1f MB  file %.2f MB  %.0f s\n",
                        s, cfg.steps, mx, smp[ns].file_mb, smp[ns].t);
            ns++;
        }
    }
    st = moe_engine_finish(eng, "complete", &sum);
    if (st != MOE_OK && rank == 0)
        fprintf(stderr, "moerun-soak: finish: %s\n", moe_engine_last_error(eng));

    if (rank == 0) {
        /* least squares of file size against step, over the samples after warm-up */
        double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
        long   w = warm_idx < 0 ? 0 : warm_idx;
        FILE     *jf = NULL;
        moe_out_t jo;
        for (i = (int)w; i < ns; i++) {
            double x = (double)smp[i].step, y = smp[i].file_mb * 1e6;
            n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
        }
        if (n >= 2 && n * sxx - sx * sx > 0) {
            slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
            icpt = (sy - slope * sx) / n;
        }
        for (i = (int)w; i < ns; i++) {
            double fit = icpt + slope * (double)smp[i].step, y = smp[i].file_mb * 1e6;
            if (y > 0 && fabs(y - fit) / y > maxdev)
                maxdev = fabs(y - fit) / y;
        }
        growth = smp[ns - 1].rss_mb_max - smp[w].rss_mb_max;
        expect = soak_schema_bytes_per_step(&cfg, P);
        printf("# moerun-soak: %d ranks, %ld steps, tokens %d/rank, d %d, ffn %d, E %d, top-%d, "
               "%d layers, flush every %d, %d route samples/rank/step\n",
               P, cfg.steps, cfg.tokens, cfg.d_model, cfg.d_ffn, cfg.experts, cfg.top_k,
               cfg.layers, cfg.flush_interval, cfg.route_samples);
        printf("# %10s %12s %12s %12s %10s\n", "step", "rss_max(MB)", "rss_min(MB)", "file(MB)",
               "time(s)");
        for (i = 0; i < ns; i++)
            printf("  %10ld %12.2f %12.2f %12.3f %10.1f%s\n", smp[i].step, smp[i].rss_mb_max,
                   smp[i].rss_mb_min, smp[i].file_mb, smp[i].t, i == w ? "  <- warm-up" : "");
        printf("rss growth after warm-up: %+.2f MB (max over ranks, step %ld -> %ld)\n", growth,
               smp[w].step, smp[ns - 1].step);
        printf("file growth: %.1f bytes/step (schema payload %.1f bytes/step, ratio %.2f); "
               "largest deviation from linear %.2f%%\n",
               slope, expect, expect > 0 ? slope / expect : 0.0, 100 * maxdev);
        printf("steps/s: %.0f\n", (double)cfg.steps / smp[ns - 1].t);
        if (json && (jf = bench_json_open("moerun-soak", json, &jo)) == NULL)
            jrc = 1;
        if (jf) {
            fprintf(jf, "{\"ranks\": %d, \"steps\": %ld, \"rss_growth_mb\": %.4f, "
                        "\"file_bytes_per_step\": %.2f, \"schema_bytes_per_step\": %.2f, "
                        "\"max_linear_deviation\": %.5f, \"steps_per_s\": %.1f, \"samples\": [",
                    P, cfg.steps, growth, slope, expect, maxdev, (double)cfg.steps / smp[ns - 1].t);
            for (i = 0; i < ns; i++)
                fprintf(jf, "%s{\"step\": %ld, \"rss_mb_max\": %.3f, \"file_mb\": %.4f}",
                        i ? ", " : "", smp[i].step, smp[i].rss_mb_max, smp[i].file_mb);
            fprintf(jf, "]}\n");
            if (bench_json_close("moerun-soak", &jo) != 0)
                jrc = 1;
        }
    }
    moe_engine_destroy(eng);
    free(smp);
    MPI_Bcast(&jrc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return st == MOE_OK && jrc == 0 ? 0 : 1;
}
