/*
 * tools/place/place.h — the placement planner behind moerun-place and moerun-analyze's
 * placement recommendation (docs/placement.md, "moerun-place").
 *
 * Input (moe_place_input_t): per-layer per-expert load, co-selection, the rank -> node map,
 * optionally every recorded route (token, experts, kept) and the placement the loads were
 * measured under. Target (moe_place_target_t): nodes x ranks per node, expert slots per
 * rank (the replica budget is what the slots leave after one copy of every expert). Output:
 * a moe_placement_t (runtime/placement.h, the map moerun runs) and predictions per layer.
 *
 * Policies:
 *   eplb    DeepSeek EPLB's hierarchical algorithm as published: expert groups packed onto
 *           nodes by load (each node the same number of groups), the hottest experts
 *           replicated inside each node (each extra copy to the expert with the highest
 *           load per copy), the copies packed onto the node's ranks (heaviest first onto the
 *           lightest rank with a free slot). When groups do not divide over the nodes, the
 *           global variant (one node of all ranks). Two copies of one expert never share a
 *           rank (moerun's format requires distinct ranks): the packer skips such ranks.
 *   moerun  replica counts as EPLB's (highest load per copy first) but copies go to distinct
 *           nodes first (a copy on a node serves that node's tokens without crossing the
 *           network); experts are placed hottest first on the node that maximises
 *           affinity - balance * (node load after / mean node load), affinity being the
 *           share of the expert's tokens that also selected an expert already on that node
 *           (co-selection), so a token's k experts fall on fewer nodes; then LPT onto ranks.
 *           balance (--balance, default 1) trades rank balance against inter-node copies.
 *   contiguous, round-robin  the built-in maps, for before/after tables.
 *
 * Predictions (moe_place_predict): with routes of every token (route_samples >= global
 * tokens) the replica rule is replayed token by token — exact for a rerun with the same seed;
 * with sampled routes the samples are replayed and scaled to the measured loads; with no
 * routes, tokens are assumed to come evenly from all ranks and a token's experts to be chosen
 * independently (hier copies then ignore co-selection).
 */
#ifndef MOERUN_TOOLS_PLACE_H
#define MOERUN_TOOLS_PLACE_H

#include <stdint.h>
#include <stdio.h>

#include "placement.h"

typedef enum {
    MOE_PLAN_EPLB = 0,
    MOE_PLAN_MOERUN = 1,
    MOE_PLAN_CONTIGUOUS = 2,
    MOE_PLAN_ROUND_ROBIN = 3
} moe_plan_policy_t;

typedef struct moe_place_input {
    int      experts, layers, nranks, nnodes, top_k;
    int     *node_of;         /* [P] node of each rank (of the measured run) */
    double  *load;            /* [L][E] routed pairs, summed over the steps */
    double  *coselect;        /* [L][E][E] tokens that chose both, or NULL */
    double   steps;           /* steps the loads cover (for per-step figures), >= 1 */
    int64_t  tokens_per_rank; /* T of the measured run (a token's rank is g / T), 0 unknown */
    /* routes (optional): nroutes rows of token id, [L][k] experts and kept flags */
    int64_t  nroutes;
    int64_t *route_token;
    int32_t *route_expert;
    uint8_t *route_kept;
    int      routes_complete; /* 1: every token of every step is recorded */
    double   row_bytes;       /* bytes of one token row on the wire (d_model * 4) */
    double   expert_bytes;    /* bytes of one expert's weights */
    moe_placement_t *current; /* the placement of the measured run, or NULL */
} moe_place_input_t;

typedef struct moe_place_target {
    int    nodes;        /* N */
    int    ranks_per_node;
    int    slots;        /* expert slots per rank; P * slots >= E */
    int    groups;       /* eplb: expert groups (0: one per node) */
    double balance;      /* moerun: weight of rank balance against co-location, >= 0 */
} moe_place_target_t;

typedef struct moe_place_pred {
    double max_load, mean_load;   /* rank load (pairs per step): most loaded rank, mean */
    double flat_copies;           /* inter-node copies per token with flat (pairs to ranks on other nodes) */
    double hier_copies;           /* ... with hier (distinct other nodes per token) */
    double flat_bytes, hier_bytes;/* predicted inter-node payload bytes per step, dispatch + combine
                                   * (flat: a row each way; hier: its unit of header, k entries
                                   * and row out, a row back) */
    double *node_rows;            /* [N] rows per step arriving at each node (flat) */
} moe_place_pred_t;

/* Frees what moe_place_input_* allocated. */
void moe_place_input_cleanup(moe_place_input_t *in);

/*
 * Reads telemetry files (one or more runs of the same shape; loads, co-selection and routes
 * are added up) into a caller-owned input. MOE_ERR_INVALID with the reason in err.
 */
moe_status_t moe_place_input_read(moe_place_input_t *in, const char *const *paths, int npaths,
                                  char *err, size_t errlen);

/*
 * Plans with `policy` for the target shape. The placement is caller-owned, freed by
 * moe_placement_cleanup. MOE_ERR_INVALID with the reason in err (e.g. too few slots).
 */
moe_status_t moe_place_plan(const moe_place_input_t *in, const moe_place_target_t *tg,
                            moe_plan_policy_t policy, moe_placement_t *out, char *err,
                            size_t errlen);

/*
 * Predictions per layer for placement pl (same E and L as the input; its own ranks and nodes,
 * node_of from pl). pred[L], each node_rows malloc'd [pl->nnodes]: free with
 * moe_place_pred_free(pred, L).
 */
moe_status_t moe_place_predict(const moe_place_input_t *in, const moe_placement_t *pl,
                               moe_place_pred_t **pred_p);
void         moe_place_pred_free(moe_place_pred_t *pred, int layers);

/* Bytes of expert weights that must move to go from `from` to `to` (copies on a rank that
 * did not hold that expert at that layer). -1 if the shapes differ. */
double moe_place_moved_bytes(const moe_place_input_t *in, const moe_placement_t *from,
                             const moe_placement_t *to);

/* Predictions summed over layers: mean of per-layer max/mean, sums of copies and bytes. */
typedef struct moe_place_total {
    double max_mean, flat_copies, hier_copies, flat_bytes, hier_bytes;
} moe_place_total_t;
void moe_place_total(const moe_place_pred_t *pred, int layers, moe_place_total_t *t);

/*
 * The target moerun-place uses unless told otherwise: the measured run's nodes and ranks per
 * node, and `replicas` extra copies per layer (< 0: one per rank), i.e. slots =
 * ceil((experts + replicas) / ranks), at most experts; slots > 0 overrides; balance 1.
 */
void moe_place_target_default(const moe_place_input_t *in, int nodes, int ranks_per_node,
                              int slots, int replicas, moe_place_target_t *tg);

/* Writes pl (with `comment`) to path as every moerun output is written
 * (include/moerun/base/fileio.h: exclusive temporary file next to it, fsync, rename; an
 * existing regular file is replaced; a symbolic link is refused unless flags has
 * MOE_OUT_FOLLOW, a device, FIFO or directory always); 0 on success, else -1 with one line
 * naming the path in err (n bytes) and nothing left behind. */
int moe_place_write_file(const char *path, const moe_placement_t *pl, const char *comment,
                         unsigned flags, char *err, size_t n);

/* How moe_place_predict will predict for this input: "routes", "sampled routes" or
 * "uniform origin" (no routes, or no token -> rank map as in imported logs). */
const char *moe_place_prediction_model(const moe_place_input_t *in);

/* Policy names for --policy and messages. */
const char *moe_plan_policy_name(moe_plan_policy_t p);
int         moe_plan_policy_parse(const char *name, moe_plan_policy_t *p);

#endif /* MOERUN_TOOLS_PLACE_H */
