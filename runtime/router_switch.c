/*
 * runtime/router_switch.c — Switch Transformer routing: the one expert of highest
 * p = softmax(l / temperature), weight p itself (not renormalised, so the gate's confidence
 * scales the expert output). Needs top_k = 1 (moe_config_validate checks).
 */
#include "router.h"

static void switch_select(const moe_router_t *r, const moe_router_token_t *tok,
                          double *scratch, int32_t *sel, float *score, float *weight)
{
    (void)scratch;
    moe__router_topk(tok->prob, r->bias, NULL, r->E, 1, sel);
    score[0] = (float)tok->prob[sel[0]];
    weight[0] = score[0];
}

const moe_router_ops_t moe_router_switch_ops = {
    "switch", "top-1 of softmax, weight = the probability (not renormalised)", 0,
    switch_select,
};
