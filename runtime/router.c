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

/* Sum of the max_groups smallest groups of lower bounds size[ngroups] (0: never chosen);
 * size is consumed. */
static int router_smallest_sum(const moe_router_t *r, int *size)
{
    int g, m, sum = 0;

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
    return sum;
}

/* Lower bounds of the per-token group sizes for a token on node n at layer l (see router.h):
 * size[G] gets the experts fixed to each node; may[G] (scratch) marks nodes a floating
 * expert may go to, which count 1 when they have no fixed expert. */
static void router_place_bounds(const moe_router_t *r, int l, int n, int *size, int *may)
{
    const moe_placement_t *pl = r->place;
    int                    e, j, G = r->ngroups;
    size_t                 R = (size_t)pl->max_replicas;

    memset(size, 0, (size_t)G * sizeof(int));
    memset(may, 0, (size_t)G * sizeof(int));
    for (e = 0; e < r->E; e++) {
        size_t     le = (size_t)l * pl->experts + e;
        const int *rr = pl->rep_rank + le * R;
        int        near = 0, one = pl->node_of[rr[0]];
        for (j = 0; j < pl->nrep[le]; j++) {
            near |= pl->node_of[rr[j]] == n;
            if (pl->node_of[rr[j]] != one)
                one = -1;
        }
        if (near)
            size[n]++;
        else if (one >= 0)
            size[one]++;
        else /* floating: goes to one of its replicas' nodes, depending on the token */
            for (j = 0; j < pl->nrep[le]; j++)
                may[pl->node_of[rr[j]]] = 1;
    }
    for (j = 0; j < G; j++)
        if (size[j] == 0 && may[j])
            size[j] = 1;
}

moe_status_t moe_router_check_groups(const moe_router_t *r, char *err, size_t errlen)
{
    int *size, e, l, n, sum;

    if (r->ngroups < 1 || (r->group_of == NULL && r->place == NULL))
        return MOE_OK;
    size = calloc(2 * (size_t)r->ngroups, sizeof(int));
    if (size == NULL)
        return MOE_ERR_NOMEM;
    if (r->place != NULL) {
        for (l = 0; l < r->place->layers; l++)
            for (n = 0; n < r->ngroups; n++) {
                router_place_bounds(r, l, n, size, size + r->ngroups);
                sum = router_smallest_sum(r, size);
                if (sum < r->k) {
                    free(size);
                    snprintf(err, errlen,
                             "route_max_nodes: at layer %d a token on node %d may find only %d "
                             "experts on %d of %d nodes of the placement, fewer than top_k %d; "
                             "allowed: a route_max_nodes whose smallest nodes together hold >= "
                             "top_k experts, or 0 (all)",
                             l, n, sum, r->max_groups, r->ngroups, r->k);
                    return MOE_ERR_INVALID;
                }
            }
        free(size);
        return MOE_OK;
    }
    for (e = 0; e < r->E; e++)
        size[r->group_of[e]]++;
    sum = router_smallest_sum(r, size);
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
