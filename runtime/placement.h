/*
 * runtime/placement.h — which rank(s) hold which expert, per layer (docs/placement.md).
 *
 * A placement is, for every layer l and expert e, the list of ranks holding a replica of e
 * (the first is its primary). Each rank has a fixed number of expert slots (local_count,
 * the most experts it holds in any layer); in layer l its slot s holds global_of[l][...] or
 * nothing (-1). The exchanges only see (rank, slot), so per-layer maps and replicas need no
 * exchange changes.
 *
 * Built-in maps (one replica each, the same for every layer):
 *   contiguous:  rank r holds experts [floor(r*E/P), floor((r+1)*E/P)) — blocks that differ
 *                by at most one expert; with E < P some ranks hold none.
 *   round-robin: expert e lives on rank e mod P, as local expert e div P.
 *   file:PATH:   the text file documented in docs/placement.md (moe_placement_read).
 *
 * Replica choice (moe_placement_route), deterministic: the replicas on the token's own
 * node are the candidates if there are any, otherwise all replicas; the pair of global
 * token g goes to candidate number g mod (number of candidates), candidates in file order.
 *
 * Always, after a successful build:
 *  1. every expert has at least one replica in every layer, all on distinct ranks in 0..P-1;
 *  2. no rank holds more experts in a layer than its slots, and slots >= 1 ... <= E;
 *  3. within a rank and layer, slots are filled in increasing global expert order;
 *  4. weights are a function of (seed, layer, global expert): replicas are identical, so
 *     the output does not depend on the map (capacity stays per logical expert).
 */
#ifndef MOERUN_RUNTIME_PLACEMENT_H
#define MOERUN_RUNTIME_PLACEMENT_H

#include <stdio.h>

#include "moerun/config.h"

#define MOE_PLACEMENT_FORMAT_VERSION 1

typedef struct moe_placement {
    int  experts;       /* E */
    int  layers;        /* L */
    int  nranks;        /* P */
    int  nnodes;        /* nodes the map was made for (node_of gives each rank's node) */
    int  slots;         /* expert slots per rank the map allows */
    int  max_replicas;  /* R: the most replicas of one expert in any layer */
    int *node_of;       /* [P] node of each rank */
    int *nrep;          /* [L][E] replicas of each expert */
    int *rep_rank;      /* [L][E][R] ranks holding each expert, -1 padded; first = primary */
    int *rep_slot;      /* [L][E][R] the slot of that replica on its rank */
    int *local_count;   /* [P] slots used by each rank: the most experts it holds in a layer */
    int *first_local;   /* [P+1] prefix sums of local_count */
    int *global_of;     /* [L][first_local[P]] global expert in (rank, slot), -1 = empty */
    /* layer-0 views kept for older readers: */
    int *owner;         /* [E] primary rank of each expert at layer 0 */
    int *local_index;   /* [E] its slot there */
} moe_placement_t;

/*
 * Builds a built-in map (contiguous or round-robin, the same for all L layers) into a
 * caller-owned struct; freed by moe_placement_cleanup. node_of (may be NULL: all on node
 * 0) is copied.
 */
moe_status_t moe_placement_init(moe_placement_t *pl, moe_placement_kind_t kind, int experts,
                                int nranks);
moe_status_t moe_placement_builtin(moe_placement_t *pl, moe_placement_kind_t kind, int experts,
                                   int layers, int nranks, int nnodes, const int *node_of);

/*
 * Builds from replica lists: ranks[(l*E + e)*R + i] for i < nrep[l*E + e] (R = max_rep).
 * Checks invariants 1-2; on failure writes one line into err (naming layer, expert, rank)
 * and returns MOE_ERR_INVALID. Caller-owned struct; freed by moe_placement_cleanup.
 */
moe_status_t moe_placement_from_lists(moe_placement_t *pl, int experts, int layers, int nranks,
                                      int nnodes, const int *node_of, int slots,
                                      const int *nrep, const int *ranks, int max_rep, char *err,
                                      size_t errlen);

/*
 * The map of the --placement spec ("contiguous", "round-robin" or "file:PATH") for this
 * run's shape. A file made for another E, L, rank or node count, or any invalid map, gets
 * MOE_ERR_INVALID and one line in err; an unreadable file MOE_ERR_IO.
 */
moe_status_t moe_placement_build(moe_placement_t *pl, const char *spec, int experts, int layers,
                                 int nranks, int nnodes, const int *node_of, char *err,
                                 size_t errlen);

/* Reads a placement file (docs/placement.md) without a run to check it against. */
moe_status_t moe_placement_read(moe_placement_t *pl, const char *path, const int *node_of,
                                char *err, size_t errlen);

/* Writes pl in the file format (with `comment` as # lines if not NULL); 0 on success. */
int moe_placement_write(const moe_placement_t *pl, FILE *out, const char *comment);

/* Checks a --placement spec's form only (no file access): 0 if fine, else fills err. */
int moe_placement_spec_check(const char *spec, char *err, size_t errlen);

/*
 * Where the pair of global token g, expert e, layer l goes when the token's rank is on
 * node `node`: returns the rank and stores the slot in *slot_p (the rule in the header).
 */
int moe_placement_route(const moe_placement_t *pl, int l, int e, int node, int64_t g,
                        int *slot_p);

/* The most expert copies one rank holds, summed over the layers (replicas included; empty
 * slots of a layer do not count): what its expert weights take. L x ceil(E/P) for the
 * built-in maps. */
int moe_placement_max_held(const moe_placement_t *pl);

void moe_placement_cleanup(moe_placement_t *pl);

#endif /* MOERUN_RUNTIME_PLACEMENT_H */
