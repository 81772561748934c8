/*
 * runtime/router.h — the routers behind one ops table (like the exchanges behind
 * moe_a2a_ops_t): which experts a token goes to and with which combine weights.
 *
 * The gate (gate.c) computes logits l = x . Wg and p = softmax(l / temperature) for every
 * token, keeps the router statistics of p, and asks the router to select. Routers:
 *
 *   softmax        top-k of p, weights p renormalised over the k (the default)
 *   switch         top-1 of p, weight = p (not renormalised; Switch Transformer); top_k 1
 *   sigmoid        s = sigmoid(l / temperature), top-k of s, weights s / sum of the k
 *                  chosen, times routed_scaling (DeepSeek-V3)
 *   group-limited  experts in route_groups contiguous groups of experts/route_groups;
 *                  group score = sum of the top-2 p in the group (DeepSeek-V3); the best
 *                  route_max_nodes groups, then top-k of p inside them; weights as softmax
 *   node-limited   the same with the groups = the nodes the token's pairs would go to:
 *                  for each expert, the node of the replica the placement's rule picks for
 *                  this token at this layer (moe_placement_route: a replica on the token's
 *                  own node counts as on-node), so a token's k experts sit on at most
 *                  route_max_nodes nodes, with per-layer maps and replicas too
 *   expert-choice  each expert takes its top-C tokens by p over the global batch (global
 *                  order, ties to the lower global token index; runtime/router_expert_choice.c),
 *                  C = capacity; weights = p; a token may get zero or several experts
 *   hash           experts from a fixed hash of the token's vocabulary id (router_hash.c)
 *
 * Always, for the per-token routers:
 *  1. the k selected experts of a token are distinct, ordered by selection score best first;
 *     ties go to the lower expert id (and, for group choice, to the lower group id);
 *  2. the selection depends only on the token's own logits (and id and the bias), never on
 *     other tokens or the rank count;
 *  3. with a bias (aux-loss-free balancing), selection uses score + bias[e]; weights and
 *     reported scores use the unbiased scores.
 */
#ifndef MOERUN_RUNTIME_ROUTER_H
#define MOERUN_RUNTIME_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "moerun/status.h"
#include "placement.h"

/* Scratch doubles a router's select needs per call (gate.c passes this many): X is the
 * larger of E and the router's ngroups (group-limited: ngroups <= E; node-limited: nodes). */
#define MOE_ROUTER_SCRATCH(X) (3 * (size_t)(X) + 2)

typedef struct moe_router moe_router_t;

/* One token as the router sees it. */
typedef struct moe_router_token {
    const float  *logit; /* [E] raw logits */
    const double *prob;  /* [E] softmax(logit / temperature) */
    int64_t       id;    /* vocabulary id of the token, -1 when unknown */
    int64_t       index; /* index of the token in the caller's batch (g = g0 + index) */
} moe_router_token_t;

typedef struct moe_router_ops {
    const char *name;
    const char *doc;
    int         global;  /* 1: selection needs the whole batch (expert-choice), no select */
    /* Selects r->k experts: sel[k] ids, score[k] their (unbiased) router scores, weight[k]
     * combine weights. scratch holds MOE_ROUTER_SCRATCH(max(E, ngroups)) doubles. */
    void (*select)(const moe_router_t *r, const moe_router_token_t *tok, double *scratch,
                   int32_t *sel, float *score, float *weight);
} moe_router_ops_t;

struct moe_router {
    const moe_router_ops_t *ops;
    int                     E, k;
    double                  temperature;
    double                  routed_scaling; /* sigmoid: weights times this */
    int                     ngroups;        /* group/node-limited: number of groups */
    int                     max_groups;     /* groups a token may touch (>= ngroups: all) */
    const int              *group_of;       /* [E] group of each expert, 0..ngroups-1 */
    const float            *bias;           /* [E] selection bias, or NULL */
    /* node-limited with a placement: the group of expert e for the token of batch index t is
     * place->node_of[moe_placement_route(place, layer, e, node, g0 + t)] (group_of unused) */
    const moe_placement_t  *place;          /* the run's map, or NULL: group_of */
    int                     layer;          /* the layer being routed (set per layer) */
    int                     node;           /* node of the calling rank */
    int64_t                 g0;             /* global index of the batch's token 0 */
};

/* The router called `name`, or NULL. */
const moe_router_ops_t *moe_router_find(const char *name);

/* Names of all routers separated by '|', for messages and help. */
const char *moe_router_names(void);

/*
 * Checks that every choice of r->max_groups groups holds at least k experts (so a limited
 * router can always fill k slots). With r->place, for every layer and node of a token, with
 * lower bounds of the per-token groups (an expert with a replica on the token's node is in
 * that node's group; one whose replicas all sit on node m is in m's; any other expert is in
 * one of its replicas' nodes, so such a group holds at least 1 when chosen). On failure
 * writes a one-line reason into err.
 */
moe_status_t moe_router_check_groups(const moe_router_t *r, char *err, size_t errlen);

/*
 * Top-k of s[E] + bias (bias may be NULL) among experts with allowed[e] != 0 (allowed may be
 * NULL: all), best first, ties to the lower id. Internal helper shared by the routers.
 */
void moe__router_topk(const double *s, const float *bias, const uint8_t *allowed, int E, int k,
                      int32_t *sel);

/* Hash of a token id used by the hash router (documented in router_hash.c). */
uint64_t moe_router_hash64(uint64_t x);

extern const moe_router_ops_t moe_router_softmax_ops;
extern const moe_router_ops_t moe_router_switch_ops;
extern const moe_router_ops_t moe_router_sigmoid_ops;
extern const moe_router_ops_t moe_router_group_ops;
extern const moe_router_ops_t moe_router_node_ops;
extern const moe_router_ops_t moe_router_expert_choice_ops;
extern const moe_router_ops_t moe_router_hash_ops;

#endif /* MOERUN_RUNTIME_ROUTER_H */
