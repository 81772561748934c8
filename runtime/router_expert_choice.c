/*
 * runtime/router_expert_choice.c — expert-choice routing (Zhou et al. 2022): experts pick
 * tokens, not tokens experts.
 *
 * Every (token, expert) pair of the step is a candidate with score p = softmax(l / T)[e]
 * (the gate fills one slot per expert, k = E). Expert e takes the C pairs of highest p over
 * the whole global batch, ties to the lower global token index, C = the capacity of the step
 * (ceil(cf * top_k * G / E), or all G tokens when G <= C). That is exactly the probs drop
 * policy of capacity.c applied to the candidate pairs with capacity C, so the choice is made
 * in global order and does not depend on the rank count. Weights are p (not renormalised).
 *
 * Afterwards, per expert: routed = processed = min(C, G), dropped = 0 (nothing over
 * capacity by construction). A token may get zero experts ("unrouted": it keeps only its
 * residual path, counted in steps/router column "unrouted") or several.
 */
#include <string.h>

#include "router_expert_choice.h"

moe_status_t moe_router_expert_choice_decide(MPI_Comm comm, moe_log_t *log,
                                             const moe_placement_t *pl, int64_t capacity, int T,
                                             int64_t g0, int64_t G, const int32_t *slot_expert,
                                             const float *prob, int64_t *count_scratch,
                                             int64_t *global_scratch, int64_t *drop_scratch,
                                             uint8_t *chosen, moe_capacity_ws_t *ws)
{
    int E = pl->experts, e;

    for (e = 0; e < E; e++) {
        count_scratch[e] = T;  /* every local token is a candidate of every expert */
        global_scratch[e] = G;
        drop_scratch[e] = 0;
    }
    return moe_capacity_decide(comm, log, pl, MOE_DROP_PROBS, capacity, T, E, g0, slot_expert,
                               prob, count_scratch, global_scratch, chosen, drop_scratch, ws);
}

const moe_router_ops_t moe_router_expert_choice_ops = {
    "expert-choice", "each expert takes its top-C tokens by p over the global batch "
                     "(C = capacity); a token may get zero or several experts",
    1, NULL,
};
