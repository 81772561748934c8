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

#include <mpi.h>

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

#endif /* MOERUN_BENCH_UTIL_H */
