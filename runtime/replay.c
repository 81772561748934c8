/*
 * runtime/replay.c — the routes of a recorded log (include/moerun/replay.h): freeing,
 * broadcasting from the rank that read them, checking them against a configuration.
 * The engine's use of them (instead of the gate) is in engine.c (engine_replay_gate).
 *
 * What always holds: moe_replay_check() accepts only routes the engine can run unchanged:
 * the log's layer count and top-k equal the configuration's, every expert id is below
 * --experts, and there is at least one token. A mismatch is an error naming the option to
 * change, never a silent remapping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moerun/replay.h"

void moe_replay_routes_free(moe_replay_routes_t *r)
{
    if (r == NULL)
        return;
    free(r->expert);
    free(r->weight);
    free(r->layer_id);
    memset(r, 0, sizeof(*r));
}

moe_status_t moe_replay_routes_bcast(MPI_Comm comm, int root, moe_replay_routes_t *r)
{
    int64_t hdr[6];
    int     rank, ok = 1;
    size_t  n;

    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS)
        return MOE_ERR_MPI;
    if (rank == root) {
        hdr[0] = r->ntokens;
        hdr[1] = r->layers;
        hdr[2] = r->top_k;
        hdr[3] = r->experts;
        hdr[4] = r->incomplete;
        hdr[5] = r->has_weights;
    }
    if (MPI_Bcast(hdr, 6, MPI_INT64_T, root, comm) != MPI_SUCCESS)
        return MOE_ERR_MPI;
    n = (size_t)hdr[0] * (size_t)hdr[1] * (size_t)hdr[2];
    if (rank != root) {
        memset(r, 0, sizeof(*r));
        r->ntokens = hdr[0];
        r->layers = (int)hdr[1];
        r->top_k = (int)hdr[2];
        r->experts = (int)hdr[3];
        r->incomplete = hdr[4];
        r->has_weights = (int)hdr[5];
        r->expert = malloc((n ? n : 1) * sizeof(int32_t));
        r->weight = malloc((n ? n : 1) * sizeof(float));
        r->layer_id = malloc((size_t)(r->layers > 0 ? r->layers : 1) * sizeof(int64_t));
        ok = r->expert && r->weight && r->layer_id;
    }
    if (MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return MOE_ERR_MPI;
    if (!ok)
        return MOE_ERR_NOMEM;
    /* in chunks: MPI counts are int */
    {
        size_t off, chunk = (size_t)1 << 28;
        for (off = 0; off < n; off += chunk) {
            int c = (int)(n - off < chunk ? n - off : chunk);
            if (MPI_Bcast(r->expert + off, c, MPI_INT32_T, root, comm) != MPI_SUCCESS ||
                MPI_Bcast(r->weight + off, c, MPI_FLOAT, root, comm) != MPI_SUCCESS)
                return MOE_ERR_MPI;
        }
    }
    if (MPI_Bcast(r->layer_id, r->layers, MPI_INT64_T, root, comm) != MPI_SUCCESS)
        return MOE_ERR_MPI;
    return MOE_OK;
}

moe_status_t moe_replay_check(const moe_replay_routes_t *r, const moe_config_t *cfg, int nranks,
                              long *steps_p, char *err, size_t errlen)
{
    int64_t per_step;

    if (r->ntokens < 1) {
        snprintf(err, errlen, "replay: %s has no token with a row for every layer (%lld left "
                 "out)", cfg->replay, (long long)r->incomplete);
        return MOE_ERR_INVALID;
    }
    if (r->experts > cfg->experts) {
        snprintf(err, errlen, "replay: %s routes to expert %d, --experts is %d: give --experts "
                 "%d (or more)", cfg->replay, r->experts - 1, cfg->experts, r->experts);
        return MOE_ERR_INVALID;
    }
    if (r->layers != cfg->layers) {
        char ids[160] = "";
        size_t off = 0;
        int    l;
        for (l = 0; l < r->layers && off + 24 < sizeof(ids); l++)
            off += (size_t)snprintf(ids + off, sizeof(ids) - off, "%s%lld", l ? ", " : "",
                                    (long long)r->layer_id[l]);
        snprintf(err, errlen, "replay: %s has %d layer(s) (ids %s%s), --layers is %d: give "
                 "--layers %d (the log's layers run in increasing id order)", cfg->replay,
                 r->layers, ids, l < r->layers ? ", ..." : "", cfg->layers, r->layers);
        return MOE_ERR_INVALID;
    }
    if (r->top_k != cfg->top_k) {
        snprintf(err, errlen, "replay: %s selects %d expert(s) per token, --top-k is %d: give "
                 "--top-k %d", cfg->replay, r->top_k, cfg->top_k, r->top_k);
        return MOE_ERR_INVALID;
    }
    if (cfg->replay_tokens > 0) {
        *steps_p = cfg->steps;
        return MOE_OK;
    }
    per_step = (int64_t)nranks * cfg->tokens;
    *steps_p = (long)((r->ntokens + per_step - 1) / per_step);
    return MOE_OK;
}
