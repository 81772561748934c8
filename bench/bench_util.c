/*
 * bench/bench_util.c — statistics and dead-code-proof baselines for the benchmark programs
 * (see bench_util.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bench_util.h"

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

bench_stats_t bench_stats(double *t, int n)
{
    bench_stats_t s = {0, 0, 0};

    if (n <= 0)
        return s;
    qsort(t, (size_t)n, sizeof(double), bench_cmp);
    s.min = t[0];
    s.max = t[n - 1];
    s.med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    return s;
}

void bench_over_ranks(double x, double out[3], MPI_Comm comm)
{
    int P;

    MPI_Comm_size(comm, &P);
    MPI_Allreduce(&x, &out[0], 1, MPI_DOUBLE, MPI_MIN, comm);
    MPI_Allreduce(&x, &out[1], 1, MPI_DOUBLE, MPI_SUM, comm);
    MPI_Allreduce(&x, &out[2], 1, MPI_DOUBLE, MPI_MAX, comm);
    out[1] /= P;
}

/* Sum of 64-bit words of a buffer: reads every byte, so the copy that filled it is live. */
static uint64_t bench_checksum(const void *p, size_t bytes)
{
    const uint64_t *w = p;
    uint64_t        s = 0;
    size_t          i;

    for (i = 0; i < bytes / 8; i++)
        s += w[i] ^ (s >> 7);
    return s;
}

double bench_memcpy_gbs(size_t bytes, double seconds)
{
    char    *a, *b;
    double   t0, best = 0;
    int      reps = 0, bad = 0;
    uint64_t want;

    bytes &= ~(size_t)7;
    a = malloc(bytes);
    b = malloc(bytes);
    if (a == NULL || b == NULL) {
        free(a), free(b);
        return -1;
    }
    memset(b, 0, bytes);
    t0 = MPI_Wtime();
    do {
        double s, t;
        memset(a + (size_t)reps * 4096 % bytes, reps + 1, 64); /* a changes every copy */
        if (reps == 0)
            memset(a, 3, bytes);
        want = bench_checksum(a, bytes);
        s = MPI_Wtime();
        memcpy(b, a, bytes);
        t = MPI_Wtime() - s;
        bad |= bench_checksum(b, bytes) != want; /* read the destination */
        if (t > 0 && bytes / t > best)
            best = bytes / t;
        reps++;
    } while (MPI_Wtime() - t0 < seconds || reps < 3);
    free(a), free(b);
    return bad ? -1 : best / 1e9;
}

double bench_sgemm_gflops(int m, int n, int k, double seconds, double *median_p)
{
    double rates[4096];
    float *a = malloc((size_t)m * k * 4), *b = malloc((size_t)k * n * 4);
    float *c = malloc((size_t)m * n * 4);
    double t0, best = 0;
    long   i, reps = 0;
    int    bad = 0;

    if (a == NULL || b == NULL || c == NULL) {
        free(a), free(b), free(c);
        return -1;
    }
    for (i = 0; i < (long)m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (i = 0; i < (long)k * n; i++)
        b[i] = (float)(i % 5) * 0.1f;
    t0 = MPI_Wtime();
    do { /* best of short bursts */
        double s = MPI_Wtime(), t;
        int    r = (int)(reps % m), q = (int)((reps * 7) % n), j;
        double ref = 0;
        a[(size_t)r * k] += 0.25f; /* inputs change every burst */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        t = MPI_Wtime() - s;
        for (j = 0; j < k; j++) /* read the result: one entry against a hand dot product */
            ref += (double)a[(size_t)r * k + j] * b[(size_t)j * n + q];
        bad |= !(fabs(c[(size_t)r * n + q] - ref) <= 1e-3 * (1 + fabs(ref)));
        if (t > 0 && 2.0 * m * n * k / t > best)
            best = 2.0 * m * n * k / t;
        if (reps < (long)(sizeof(rates) / sizeof(rates[0])))
            rates[reps] = t > 0 ? 2.0 * m * n * k / t : 0;
        reps++;
    } while (MPI_Wtime() - t0 < seconds || reps < 5);
    free(a), free(b), free(c);
    *median_p = bench_stats(rates, reps < 4096 ? (int)reps : 4096).med / 1e9;
    return bad ? -1 : best / 1e9;
}

int bench_json_check(const char *prog, const char *path, MPI_Comm comm)
{
    char        err[MOE_OUT_PATH_MAX + 256];
    struct stat sb;
    int         rank, bad = 0;

    MPI_Comm_rank(comm, &rank);
    if (rank == 0 && path != NULL && lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        /* the benchmarks have no --follow-symlinks: say so instead of fileio.h's hint */
        fprintf(stderr, "%s: --json: '%s' is a symbolic link; refusing to write through it "
                        "(give the path of a regular file)\n", prog, path);
        bad = 1;
    } else if (rank == 0 && path != NULL &&
               moe_out_check(path, MOE_OUT_OVERWRITE, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: --json: %s\n", prog, err);
        bad = 1;
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, comm);
    return bad ? -1 : 0;
}

FILE *bench_json_open(const char *prog, const char *path, moe_out_t *o)
{
    char err[MOE_OUT_PATH_MAX + 256];

    if (moe_out_open(o, path, MOE_OUT_OVERWRITE, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: --json: %s\n", prog, err);
        return NULL;
    }
    return o->f;
}

int bench_json_close(const char *prog, moe_out_t *o)
{
    char err[MOE_OUT_PATH_MAX + 256];

    if (moe_out_commit(o, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: --json: %s\n", prog, err);
        return -1;
    }
    return 0;
}
