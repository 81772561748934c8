/*
 * runtime/router.c — the table of routers and the helpers they share (see router.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static const moe_router_ops_t *const router_table[] = {
    &moe_router_softmax_ops,       &moe_router_switch_ops, &moe_router_sigmoid_ops,
    &moe_router_group_ops,         &moe_router_node_ops,   &moe_router_expert_choice_ops,
    &moe_router_hash_ops,
};

#define ROUTER_COUNT (sizeof(router_table) / sizeof(router_table[0]))

const moe_router_ops_t *moe_router_find(const char *name)
{
    size_t i;

    for (i = 0; name && i < ROUTER_COUNT; i++)
        if (strcmp(router_table[i]->name, name) == 0)
            return router_table[i];
    return NULL;
}

const char *moe_router_names(void)
{
    return "softmax|switch|sigmoid|group-limited|node-limited|expert-choice|hash";
}

moe_status_t moe_router_check_groups(const moe_router_t *r, char *err, size_t errlen)
{
    int *size, g, e, m, sum = 0;

    if (r->ngroups < 1 || r->group_of == NULL)
        return MOE_OK;
    size = calloc((size_t)r->ngroups, sizeof(int));
    if (size == NULL)
        return MOE_ERR_NOMEM;
    for (e = 0; e < r->E; e++)
        size[r->group_of[e]]++;
    /* the max_groups smallest non-empty groups: the worst case of a token's choice (a group
     * without experts is never chosen) */
    for (m = 0; m < r->max_groups && m < r->ngroups; m++) {
        int small = -1;
        for (g = 0; g < r->ngroups; g++)
            if (size[g] > 0 && (small < 0 || size[g] < size[small]))
                small = g;
        if (small < 0)
            break;
        sum += size[small];
        size[small] = 0;
    }
    free(size);
    if (sum < r->k) {
        const char *what = r->ops == &moe_router_node_ops ? "nodes" : "groups";
        snprintf(err, errlen,
                 "route_max_nodes: %d of %d %s can hold only %d experts, fewer than top_k %d; "
                 "allowed: a route_max_nodes whose smallest %s together hold >= top_k experts, "
                 "or 0 (all)",
                 r->max_groups, r->ngroups, what, sum, r->k, what);
        return MOE_ERR_INVALID;
    }
    return MOE_OK;
}
