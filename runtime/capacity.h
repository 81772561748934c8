/*
 * runtime/capacity.h — expert capacity and which (token, expert) pairs are dropped.
 *
 * Capacity per expert and step, over the whole expert-parallel group (the one formula,
 * moe_capacity() of moerun/capacity.h, which the analyser's what-if uses too):
 *     C = ceil(cf * k * G / E),   G = global tokens in the step (ranks x tokens per rank)
 * cf <= 0 means dropless (C = -1). C is a global number, not a per-rank share, so the drop
 * decisions do not depend on how tokens are split over ranks: a P-rank run drops exactly
 * the pairs a 1-rank run of the same global batch drops.
 *
 * Drop order (which pairs of an over-full expert are kept), both global:
 *   position  the first C pairs in global token order (token g = rank * T + t) are kept;
 *   probs     the C pairs with the highest router probability are kept, ties to the lower
 *             global token index.
 * Always, per expert and step: routed = processed + dropped, processed = min(routed, C).
 */
#ifndef MOERUN_RUNTIME_CAPACITY_H
#define MOERUN_RUNTIME_CAPACITY_H

#include <mpi.h>
#include <stdint.h>

#include "moerun/base/log.h"
#include "moerun/capacity.h"
#include "moerun/config.h"
#include "placement.h"

/* Capacity for one step; -1 when dropless (cf <= 0). moe_capacity() of moerun/capacity.h. */
int64_t moe_capacity_compute(double capacity_factor, int top_k, int64_t global_tokens,
                             int experts);

/* Scratch reused across steps (grows, never shrinks); freed by moe_capacity_ws_cleanup. */
typedef struct moe_capacity_ws {
    int64_t *prefix;      /* [E] pairs of lower ranks per expert */
    void    *send, *recv; /* probs policy: (prob, expert, token) records */
    size_t   send_cap, recv_cap;
    int     *scount, *sdispl, *rcount, *rdispl; /* [P] byte counts */
    double  *cut;         /* [2E] cutoff probability and token per expert */
} moe_capacity_ws_t;

moe_status_t moe_capacity_ws_init(moe_capacity_ws_t *ws, int experts, int nranks);
void         moe_capacity_ws_cleanup(moe_capacity_ws_t *ws);

/*
 * Marks keep[p] (p = t * k + j) for this rank's T tokens, whose first global index is g0,
 * and adds the rank's dropped pairs per expert into dropped_local[E]. local_count[E] are
 * this rank's routed pairs per expert, routed_global[E] the sums over ranks. Collective.
 */
moe_status_t moe_capacity_decide(MPI_Comm comm, moe_log_t *log, const moe_placement_t *pl,
                                 moe_drop_policy_t policy, int64_t capacity, int T, int k,
                                 int64_t g0, const int32_t *expert, const float *prob,
                                 const int64_t *local_count, const int64_t *routed_global,
                                 uint8_t *keep, int64_t *dropped_local, moe_capacity_ws_t *ws);

#endif /* MOERUN_RUNTIME_CAPACITY_H */
