/*
 * runtime/router_sigmoid.c — DeepSeek-V3 scoring: s_e = sigmoid(l_e / temperature) for
 * each expert independently, the k highest s (plus the balancing bias, if any) are chosen,
 * weights w_j = routed_scaling * s_j / sum of the k chosen s.
 */
#include <math.h>

#include "router.h"

static void sigmoid_select(const moe_router_t *r, const moe_router_token_t *tok,
                           double *scratch, int32_t *sel, float *score, float *weight)
{
    double *s = scratch, ksum = 0, inv_t = 1.0 / r->temperature;
    int     e, j;

    for (e = 0; e < r->E; e++)
        s[e] = 1.0 / (1.0 + exp(-tok->logit[e] * inv_t));
    moe__router_topk(s, r->bias, NULL, r->E, r->k, sel);
    for (j = 0; j < r->k; j++) {
        score[j] = (float)s[sel[j]];
        ksum += s[sel[j]];
    }
    for (j = 0; j < r->k; j++)
        weight[j] = (float)(r->routed_scaling * s[sel[j]] / ksum);
}

const moe_router_ops_t moe_router_sigmoid_ops = {
    "sigmoid", "top-k of sigmoid(logits / temperature), weights normalised over the k "
               "times routed_scaling",
    0, sigmoid_select,
};
