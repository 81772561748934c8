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

#endif /* MOERUN_COMM_A2A_COMMON_H */
