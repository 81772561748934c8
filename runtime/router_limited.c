/*
 * runtime/router_limited.c — group-limited and node-limited top-k (DeepSeek-V2/V3).
 *
 * Experts fall into groups (group_of[E]): for group-limited, route_groups contiguous blocks
 * of experts/route_groups experts; for node-limited with the run's placement (r->place), per
 * token: the node of the replica moe_placement_route picks for this token at this layer (a
 * replica on the token's own node counts as on-node; per-layer maps differ). Per token:
 *   1. group score = sum of the two highest p (+ bias) in the group (the one p of a group of
 *      one expert);
 *   2. the max_groups groups of highest score are allowed (ties to the lower group id);
 *   3. top-k of p (+ bias) among the experts of the allowed groups (ties to the lower id);
 *   4. weights p_j / sum of the k chosen p, as the softmax router.
 * So a node-limited token sends its rows to at most max_groups nodes.
 */
#include <float.h>

#include "router.h"

/* The group of expert e for this token: the node its pair would go to (with a placement),
 * else the fixed map. */
static int limited_group(const moe_router_t *r, const moe_router_token_t *tok, int e)
{
    int slot;

    if (r->place == NULL)
        return r->group_of[e];
    return r->place->node_of[moe_placement_route(r->place, r->layer, e, r->node,
                                                 r->g0 + tok->index, &slot)];
}

static void limited_select(const moe_router_t *r, const moe_router_token_t *tok,
                           double *scratch, int32_t *sel, float *score, float *weight)
{
    int      E = r->E, G = r->ngroups, M = r->max_groups, e, g, m, j;
    double  *top1 = scratch, *top2 = scratch + G, ksum = 0;
    uint8_t *allowed = (uint8_t *)(scratch + 2 * (size_t)G); /* E bytes inside the rest */
    uint8_t *gsel = allowed + E;                              /* G bytes */

    if (M >= G) { /* every group allowed: plain top-k */
        moe__router_topk(tok->prob, r->bias, NULL, E, r->k, sel);
    } else {
        for (g = 0; g < G; g++) {
            top1[g] = -DBL_MAX;
            top2[g] = -DBL_MAX;
            gsel[g] = 0;
        }
        for (e = 0; e < E; e++) {
            double v = r->bias ? tok->prob[e] + r->bias[e] : tok->prob[e];
            g = limited_group(r, tok, e);
            if (v > top1[g]) {
                top2[g] = top1[g];
                top1[g] = v;
            } else if (v > top2[g]) {
                top2[g] = v;
            }
        }
        for (g = 0; g < G; g++) /* group score, kept in top1 */
            top1[g] = top2[g] > -DBL_MAX ? top1[g] + top2[g] : top1[g];
        for (m = 0; m < M; m++) {
            int best = -1;
            for (g = 0; g < G; g++)
                if (!gsel[g] && top1[g] > -DBL_MAX && (best < 0 || top1[g] > top1[best]))
                    best = g;
            if (best >= 0)
                gsel[best] = 1;
        }
        for (e = 0; e < E; e++)
            allowed[e] = gsel[limited_group(r, tok, e)];
        moe__router_topk(tok->prob, r->bias, allowed, E, r->k, sel);
    }
    for (j = 0; j < r->k; j++) {
        score[j] = (float)tok->prob[sel[j]];
        ksum += tok->prob[sel[j]];
    }
    for (j = 0; j < r->k; j++)
        weight[j] = (float)(score[j] / ksum);
}

const moe_router_ops_t moe_router_group_ops = {
    "group-limited", "best route_max_nodes of route_groups expert groups (sum of top-2 p), "
                     "then top-k inside",
    0, limited_select,
};

const moe_router_ops_t moe_router_node_ops = {
    "node-limited", "best route_max_nodes nodes of the placement (sum of top-2 p), then "
                    "top-k inside: a token touches at most that many nodes (per-layer map, "
                    "a replica on the token's node counts as on-node)",
    0, limited_select,
};
