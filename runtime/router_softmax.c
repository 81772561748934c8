/*
 * runtime/router_softmax.c — softmax top-k with temperature (GShard, Mixtral): the k
 * highest p = softmax(l / temperature), weights p_j / sum of the k chosen p. The default
 * router; its output is bitwise that of the gate before routers were tables.
 */
#include "router.h"

static void softmax_select(const moe_router_t *r, const moe_router_token_t *tok,
                           double *scratch, int32_t *sel, float *score, float *weight)
{
    double ksum = 0;
    int    j;

    (void)scratch;
    moe__router_topk(tok->prob, r->bias, NULL, r->E, r->k, sel);
    for (j = 0; j < r->k; j++) {
        score[j] = (float)tok->prob[sel[j]];
        ksum += tok->prob[sel[j]];
    }
    for (j = 0; j < r->k; j++)
        weight[j] = (float)(score[j] / ksum);
}

const moe_router_ops_t moe_router_softmax_ops = {
    "softmax", "top-k of softmax(logits / temperature), weights renormalised over the k", 0,
    softmax_select,
};
