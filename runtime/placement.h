/*
 * runtime/placement.h — which rank holds which expert.
 *
 * contiguous:  rank r holds experts [floor(r*E/P), floor((r+1)*E/P)) — blocks that differ
 *              by at most one expert; with E < P some ranks hold none.
 * round-robin: expert e lives on rank e mod P, as local expert e div P.
 * Always: every expert has exactly one owner, local indices of a rank are 0..n-1 in
 * increasing global expert order.
 */
#ifndef MOERUN_RUNTIME_PLACEMENT_H
#define MOERUN_RUNTIME_PLACEMENT_H

#include "moerun/config.h"

typedef struct moe_placement {
    int  experts;
    int  nranks;
    int *owner;         /* [E] rank holding expert e */
    int *local_index;   /* [E] index of e among its owner's experts */
    int *local_count;   /* [P] experts held by each rank */
    int *first_local;   /* [P+1] prefix sums of local_count */
    int *global_of;     /* [E] global expert id, listed rank by rank in local order */
} moe_placement_t;

/* Builds the map into a caller-owned struct; freed by moe_placement_cleanup. */
moe_status_t moe_placement_init(moe_placement_t *pl, moe_placement_kind_t kind, int experts,
                                int nranks);
void         moe_placement_cleanup(moe_placement_t *pl);

#endif /* MOERUN_RUNTIME_PLACEMENT_H */
