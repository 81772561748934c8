/*
 * bench/bench_util.h — what the benchmark programs share: statistics over iterations and
 * over ranks, and baselines that the compiler cannot optimise away.
 *
 * Always:
 *  1. every baseline reads back what it wrote (a checksum of the destination, compared with
 *     the value it must have) and returns a negative number if the check fails;
 *  2. a baseline above its plausibility ceiling (BENCH_MEMCPY_MAX_GBS, BENCH_SGEMM_MAX_GFLOPS
 *     for one core) is a measuring bug: the caller refuses to print it.
 */
#ifndef MOERUN_BENCH_UTIL_H
#define MOERUN_BENCH_UTIL_H

#include <stdio.h>

#include <mpi.h>

#include "moerun/base/fileio.h"

/* One core of this class of machine cannot copy faster than this (GB/s). */
#define BENCH_MEMCPY_MAX_GBS 100.0
/* Nor multiply faster than this (GFLOP/s, one thread: 2 x 16-wide FMA at 5 GHz = 320). */
#define BENCH_SGEMM_MAX_GFLOPS 400.0

typedef struct bench_stats {
    double min, med, max;
} bench_stats_t;

/* min, median (mean of the two middle values for even n) and max of t[0..n-1]; t is sorted
 * in place. n = 0 gives zeros. */
bench_stats_t bench_stats(double *t, int n);

/* min, mean and max of x over the ranks of comm, on every rank: out[0], out[1], out[2]. */
void bench_over_ranks(double x, double out[3], MPI_Comm comm);

/* Best GB/s of memcpy of `bytes` over bursts for `seconds`; the destination is checksummed
 * after every copy and compared with the source. < 0 if a copy was wrong. */
double bench_memcpy_gbs(size_t bytes, double seconds);

/* Best GFLOP/s of cblas_sgemm m x n x k (row-major) over bursts for `seconds` (the peak);
 * *median_p gets the median burst's GFLOP/s (what the core gives under the machine's load
 * of the moment). The result is checked against a hand dot product at one entry per burst.
 * < 0 if it was wrong. */
double bench_sgemm_gflops(int m, int n, int k, double seconds, double *median_p);

/*
 * --json FILE of a benchmark program, written as every moerun output is
 * (include/moerun/base/fileio.h): through an exclusive temporary file next to it, fsync'ed
 * and renamed over it; an existing regular file is replaced (benchmarks are re-run into the
 * same file), a target that is a symbolic link or not a regular file (a device, a FIFO, a
 * directory) is refused, as is a missing or read-only directory.
 *
 * bench_json_check: every rank of comm calls it before any work; rank 0 checks path (NULL:
 * no JSON, 0) and prints "PROG: --json: <why>" on failure; the outcome is the same on every
 * rank: 0, or -1 (the caller exits 2).
 * bench_json_open: rank 0 opens the temporary file; NULL after a message on failure.
 * bench_json_close: commits it (0), or removes it and prints why (-1; the target is left as
 * it was, never half-written).
 */
int   bench_json_check(const char *prog, const char *path, MPI_Comm comm);
FILE *bench_json_open(const char *prog, const char *path, moe_out_t *o);
int   bench_json_close(const char *prog, moe_out_t *o);

#endif /* MOERUN_BENCH_UTIL_H */
