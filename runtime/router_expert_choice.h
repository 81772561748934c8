/*
 * runtime/router_expert_choice.h — the global choice of the expert-choice router (see
 * router_expert_choice.c).
 */
#ifndef MOERUN_RUNTIME_ROUTER_EXPERT_CHOICE_H
#define MOERUN_RUNTIME_ROUTER_EXPERT_CHOICE_H

#include "capacity.h"
#include "router.h"

/*
 * Marks chosen[t * E + e] for this rank's T tokens (first global index g0; G global tokens)
 * whose candidate slots (slot_expert[t * E + j] = j, scores prob) were filled by the gate.
 * The three scratch arrays hold E int64 each. Collective.
 */
moe_status_t moe_router_expert_choice_decide(MPI_Comm comm, moe_log_t *log,
                                             const moe_placement_t *pl, int64_t capacity, int T,
                                             int64_t g0, int64_t G, const int32_t *slot_expert,
                                             const float *prob, int64_t *count_scratch,
                                             int64_t *global_scratch, int64_t *drop_scratch,
                                             uint8_t *chosen, moe_capacity_ws_t *ws);

#endif /* MOERUN_RUNTIME_ROUTER_EXPERT_CHOICE_H */
