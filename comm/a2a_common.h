/*
 * comm/a2a_common.h — internal: what every exchange backend needs around an
 * alltoallv-shaped transfer: counts to displacements, and traffic accounting.
 *
 * Always:
 *  1. displacements are exclusive prefix sums of the counts in the same unit (elements);
 *  2. moe__a2a_traffic adds one transfer to the stats exactly once: bytes and messages to
 *     and from every other rank, split by whether the peer is on this node; the rank itself
 *     never counts as traffic (but its bytes do count in bytes_to_rank when `payload`).
 * Not for use outside comm/.
 */
#ifndef MOERUN_COMM_A2A_COMMON_H
#define MOERUN_COMM_A2A_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "a2a.h"

/* Who this rank is among its peers: what moe__a2a_traffic needs to split intra/inter. */
typedef struct moe__a2a_peers {
    int        nranks, rank;
    const int *node; /* [nranks] node id of each rank */
} moe__a2a_peers_t;

/* dsp[r] = cnt[0] + ... + cnt[r-1] for r < P; returns the total count. */
int64_t moe__a2a_displs(int P, const int *cnt, int *dsp);

/* cnt[r] = units[r] * elem and dsp[r] = (units[0] + ... + units[r-1]) * elem (elements of
 * `elem` each, e.g. bytes of one unit); returns the total number of units. */
int64_t moe__a2a_layout(int P, const int *units, size_t elem, int *cnt, int *dsp);

/* Accounts one transfer of scnt[r] elements sent to and rcnt[r] received from each rank r,
 * `elem` bytes each (0: messages only, e.g. a count exchange). payload != 0 also adds the
 * bytes sent to st->bytes_to_rank (self included) when that array is present. */
void moe__a2a_traffic(const moe__a2a_peers_t *me, const int *scnt, const int *rcnt,
                      size_t elem, int payload, moe_a2a_stats_t *st);

/*
 * Row buffers (floats, d per row) under params.rows_opaque (a2a.h): with opaque = 0 a
 * buffer is malloc'd and zeroed (touched once, so steps do not page-fault) and rows are
 * copied; with opaque = 1 it is never touched (SMPI builds: SMPI_SHARED_MALLOC, one
 * physical block shared by all simulated ranks, which SimGrid's transfers skip copying)
 * and moe__a2a_rows_copy does nothing. Free with moe__a2a_rows_free(p, opaque).
 */
float *moe__a2a_rows_alloc(size_t floats, int opaque);
void   moe__a2a_rows_free(float *p, int opaque);
/* Grows *buf to hold `rows` rows of d floats (at least doubling); contents not kept when
 * opaque. Returns 0, or -1 out of memory (*buf unchanged). */
int moe__a2a_rows_grow(float **buf, size_t *cap_rows, int64_t rows, int d, int opaque);

/* o[i] += w * y[i] for i < n: the weighted sum of combine, one (token, slot) row at a time.
 * Built with -O3 (vectorised; the same multiply and add per element as the scalar loop, so
 * the same bits: no reassociation, no contraction in ISO C mode). */
void moe__a2a_add_scaled(float *restrict o, const float *restrict y, float w, int n);

/* memcpy of row data, skipped when the rows are opaque. */
static inline void moe__a2a_rows_copy(int opaque, void *dst, const void *src, size_t bytes)
{
    if (!opaque && bytes > 0)
        memcpy(dst, src, bytes);
}

#endif /* MOERUN_COMM_A2A_COMMON_H */
