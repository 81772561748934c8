/*
 * include/moerun/replay.h — routing decisions of a recorded log, replayed through the engine
 * instead of the gate (moerun --replay FILE; docs/replay.md).
 *
 * The routes are plain data: who fills them (tools/import: moe_import_load_routes() reads
 * every format moerun-import reads, and telemetry files with routes/) is not the engine's
 * business, so the runtime never depends on tools/. The engine reads them through
 * moe_engine_set_replay().
 *
 * What always holds for a filled moe_replay_routes_t:
 *  1. expert[(n * layers + l) * top_k + j] is in [0, experts) and the top_k experts of a
 *     (token, layer) are distinct; weight[...] are finite, >= 0 and sum to 1 per (token, layer).
 *  2. Tokens are in the log's order (step, then sequence, then token_idx); layer l is the
 *     log's layer layer_id[l] (ids in increasing order; a log of layers 0, 9, 20 has 3).
 */
#ifndef MOERUN_REPLAY_H
#define MOERUN_REPLAY_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "moerun/config.h"
#include "moerun/status.h"

typedef struct moe_replay_routes {
    int64_t  ntokens;      /* tokens with a row for every layer */
    int      layers, top_k;
    int      experts;      /* largest expert id in the log + 1 */
    int32_t *expert;       /* [ntokens][layers][top_k] */
    float   *weight;       /* [ntokens][layers][top_k] */
    int64_t *layer_id;     /* [layers] the log's layer ids */
    int64_t  incomplete;   /* tokens of the log left out: no row for some layer */
    int      has_weights;  /* 0: the log had no probabilities; weights are 1/top_k */
} moe_replay_routes_t;

/* Frees the arrays of r (not r itself) and zeroes it. Safe on a zeroed struct. */
void moe_replay_routes_free(moe_replay_routes_t *r);

/*
 * Sends root's routes to every rank of comm (collective). On the other ranks r is filled
 * (arrays malloc'd; moe_replay_routes_free frees them).
 */
moe_status_t moe_replay_routes_bcast(MPI_Comm comm, int root, moe_replay_routes_t *r);

/*
 * Checks the routes against the configuration of a run on nranks ranks and gives the number
 * of steps the replay runs: with replay_tokens = 0 the whole log once, `tokens` tokens per
 * rank per step, ceil(ntokens / (nranks * tokens)) steps; with replay_tokens = N the log
 * tiled to N tokens per rank per step for cfg->steps steps. On a mismatch (more experts,
 * other layer count or top-k than configured, no tokens) writes one message naming the
 * option to change into err and returns MOE_ERR_INVALID.
 */
moe_status_t moe_replay_check(const moe_replay_routes_t *r, const moe_config_t *cfg, int nranks,
                              long *steps_p, char *err, size_t errlen);

#endif /* MOERUN_REPLAY_H */
