/*
 * runtime/capacity.c — capacity formula and global drop order (see capacity.h).
 *
 * position: one MPI_Exscan of the per-expert pair counts gives each rank the number of
 *   pairs of lower ranks, i.e. of lower global token indices; pair number i (in local
 *   token order) of expert e is kept iff prefix[e] + i < C.
 * probs: only experts over capacity matter. Each rank sends (prob, token) of its pairs for
 *   such an expert to the expert's owner (one MPI_Alltoallv), the owner sorts them by
 *   (prob desc, token asc) and takes the C-th as the cutoff, and one MPI_Allreduce(MAX)
 *   tells every rank every cutoff. A pair is kept iff it sorts at or before the cutoff.
 *
 * What always holds after moe_capacity_decide, on every rank and for every expert e: each of
 * this rank's pairs of e is kept or dropped, exactly once (the local part of routed =
 * processed + dropped: local_count[e] = kept pairs + the drops added to dropped_local[e]);
 * with the position policy, kept pairs of e over all ranks are at most the capacity. Debug
 * builds check the local part (MOE_ASSERT); the engine checks the global sum at every flush.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "capacity.h"
#include "moerun/base/assert.h"
#include "moerun/base/mpicheck.h"

typedef struct {
    float   prob;
    int32_t expert;
    int64_t token;
} cap_rec_t;

int64_t moe_capacity_compute(double capacity_factor, int top_k, int64_t global_tokens,
                             int experts)
{
    return moe_capacity(capacity_factor, top_k, global_tokens, experts);
}

moe_status_t moe_capacity_ws_init(moe_capacity_ws_t *ws, int experts, int nranks)
{
    memset(ws, 0, sizeof(*ws));
    ws->prefix = calloc((size_t)experts, sizeof(int64_t));
    ws->cut = calloc(2 * (size_t)experts, sizeof(double));
    ws->scount = calloc((size_t)nranks, sizeof(int));
    ws->sdispl = calloc((size_t)nranks, sizeof(int));
    ws->rcount = calloc((size_t)nranks, sizeof(int));
    ws->rdispl = calloc((size_t)nranks, sizeof(int));
    if (!ws->prefix || !ws->cut || !ws->scount || !ws->sdispl || !ws->rcount || !ws->rdispl) {
        moe_capacity_ws_cleanup(ws);
        return MOE_ERR_NOMEM;
    }
    return MOE_OK;
}

void moe_capacity_ws_cleanup(moe_capacity_ws_t *ws)
{
    free(ws->prefix);
    free(ws->cut);
    free(ws->send);
    free(ws->recv);
    free(ws->scount);
    free(ws->sdispl);
    free(ws->rcount);
    free(ws->rdispl);
    memset(ws, 0, sizeof(*ws));
}

static int cap_grow(void **buf, size_t *cap, size_t need)
{
    void *p;

    if (need <= *cap)
        return 0;
    need = need < 2 * *cap ? 2 * *cap : need;
    p = realloc(*buf, need);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = need;
    return 0;
}

/* Order of the probs policy: higher probability first, then lower token index. */
static int cap_rec_cmp(const void *a, const void *b)
{
    const cap_rec_t *x = a, *y = b;

    if (x->expert != y->expert)
        return x->expert < y->expert ? -1 : 1;
    if (x->prob != y->prob)
        return x->prob > y->prob ? -1 : 1;
    return (x->token > y->token) - (x->token < y->token);
}

static moe_status_t cap_probs_cutoffs(MPI_Comm comm, moe_log_t *log, const moe_placement_t *pl,
                                      int64_t capacity, int T, int k, int64_t g0,
                                      const int32_t *expert, const float *prob,
                                      const int64_t *routed_global, moe_capacity_ws_t *ws)
{
    int        P = pl->nranks, E = pl->experts, r, p, e, me;
    size_t     nsend = 0, nrecv = 0, i, start;
    cap_rec_t *rec;

    MOE_MPI_CHECK(log, MPI_Comm_rank(comm, &me));
    memset(ws->scount, 0, (size_t)P * sizeof(int));
    for (p = 0; p < T * k; p++)
        if (routed_global[expert[p]] > capacity) {
            ws->scount[pl->owner[expert[p]]] += (int)sizeof(cap_rec_t);
            nsend++;
        }
    if (cap_grow(&ws->send, &ws->send_cap, (nsend + 1) * sizeof(cap_rec_t)))
        return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "capacity: out of memory");
    for (r = 0, ws->sdispl[0] = 0; r + 1 < P; r++)
        ws->sdispl[r + 1] = ws->sdispl[r] + ws->scount[r];
    {
        int *fill = ws->rdispl; /* borrowed as a cursor until the count exchange */
        memcpy(fill, ws->sdispl, (size_t)P * sizeof(int));
        for (p = 0; p < T * k; p++) {
            e = expert[p];
            if (routed_global[e] > capacity) {
                cap_rec_t *dst = (cap_rec_t *)((char *)ws->send + fill[pl->owner[e]]);
                dst->prob = prob[p];
                dst->expert = e;
                dst->token = g0 + p / k;
                fill[pl->owner[e]] += (int)sizeof(cap_rec_t);
            }
        }
    }
    MOE_MPI_CHECK(log, MPI_Alltoall(ws->scount, 1, MPI_INT, ws->rcount, 1, MPI_INT, comm));
    for (r = 0, ws->rdispl[0] = 0; r < P; r++) {
        if (r + 1 < P)
            ws->rdispl[r + 1] = ws->rdispl[r] + ws->rcount[r];
        nrecv += (size_t)ws->rcount[r] / sizeof(cap_rec_t);
    }
    if (cap_grow(&ws->recv, &ws->recv_cap, (nrecv + 1) * sizeof(cap_rec_t)))
        return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "capacity: out of memory");
    MOE_MPI_CHECK(log, MPI_Alltoallv(ws->send, ws->scount, ws->sdispl, MPI_BYTE, ws->recv,
                                     ws->rcount, ws->rdispl, MPI_BYTE, comm));
    rec = ws->recv;
    qsort(rec, nrecv, sizeof(cap_rec_t), cap_rec_cmp);
    for (e = 0; e < E; e++) {
        ws->cut[e] = -1.0;         /* probability cutoff: MAX over ranks */
        ws->cut[E + e] = -1.0;     /* token cutoff */
    }
    for (i = 0; i < nrecv; i = start) {
        e = rec[i].expert;
        for (start = i; start < nrecv && rec[start].expert == e; start++)
            ;
        if ((int64_t)(start - i) != routed_global[e])
            return MOE_ERROR_SET(log, MOE_ERR_INVARIANT,
                                 "capacity: owner of expert %d got %zu pairs, %lld routed", e,
                                 start - i, (long long)routed_global[e]);
        ws->cut[e] = rec[i + (size_t)capacity - 1].prob;
        ws->cut[E + e] = (double)rec[i + (size_t)capacity - 1].token;
    }
    MOE_MPI_CHECK(log, MPI_Allreduce(MPI_IN_PLACE, ws->cut, 2 * E, MPI_DOUBLE, MPI_MAX, comm));
    return MOE_OK;
}

#if MOE_ASSERTS_ENABLED
/*
 * Debug builds: every pair of this rank went to a valid expert, was counted in local_count,
 * and is kept or dropped exactly once: kept + (dropped_local - dropped_before) = local_count
 * for every expert. `before` is a copy of dropped_local made before the decision (freed here).
 */
static void cap_assert_conserved(int E, int npairs, const int32_t *expert, const uint8_t *keep,
                                 const int64_t *local_count, int64_t *before,
                                 const int64_t *dropped_local)
{
    int64_t *seen = calloc(2 * (size_t)E, sizeof(int64_t));
    int      p, e;

    if (seen == NULL || before == NULL) {
        free(seen);
        free(before);
        return;
    }
    for (p = 0; p < npairs; p++) {
        MOE_ASSERT(expert[p] >= 0 && expert[p] < E && keep[p] <= 1);
        seen[expert[p]]++;
        seen[E + expert[p]] += keep[p];
    }
    for (e = 0; e < E; e++) {
        MOE_ASSERT(seen[e] == local_count[e]);
        MOE_ASSERT(seen[E + e] + (dropped_local[e] - before[e]) == seen[e]);
    }
    free(seen);
    free(before);
}
#endif

static moe_status_t cap_decide(MPI_Comm comm, moe_log_t *log, const moe_placement_t *pl,
                               moe_drop_policy_t policy, int64_t capacity, int T, int k,
                               int64_t g0, const int32_t *expert, const float *prob,
                               const int64_t *local_count, const int64_t *routed_global,
                               uint8_t *keep, int64_t *dropped_local, moe_capacity_ws_t *ws);

moe_status_t moe_capacity_decide(MPI_Comm comm, moe_log_t *log, const moe_placement_t *pl,
                                 moe_drop_policy_t policy, int64_t capacity, int T, int k,
                                 int64_t g0, const int32_t *expert, const float *prob,
                                 const int64_t *local_count, const int64_t *routed_global,
                                 uint8_t *keep, int64_t *dropped_local, moe_capacity_ws_t *ws)
{
    moe_status_t st;
#if MOE_ASSERTS_ENABLED
    int64_t *before = malloc((size_t)pl->experts * sizeof(int64_t));

    if (before)
        memcpy(before, dropped_local, (size_t)pl->experts * sizeof(int64_t));
#endif
    st = cap_decide(comm, log, pl, policy, capacity, T, k, g0, expert, prob, local_count,
                    routed_global, keep, dropped_local, ws);
#if MOE_ASSERTS_ENABLED
    if (st == MOE_OK)
        cap_assert_conserved(pl->experts, T * k, expert, keep, local_count, before,
                             dropped_local);
    else
        free(before);
#endif
    return st;
}

/* The decision itself (see the top of the file). */
static moe_status_t cap_decide(MPI_Comm comm, moe_log_t *log, const moe_placement_t *pl,
                               moe_drop_policy_t policy, int64_t capacity, int T, int k,
                               int64_t g0, const int32_t *expert, const float *prob,
                               const int64_t *local_count, const int64_t *routed_global,
                               uint8_t *keep, int64_t *dropped_local, moe_capacity_ws_t *ws)
{
    int          E = pl->experts, p, e, rank, over = 0;
    moe_status_t st;

    for (e = 0; e < E; e++)
        over |= capacity >= 0 && routed_global[e] > capacity;
    if (!over) { /* nothing to drop anywhere: every rank sees the same global counts */
        memset(keep, 1, (size_t)T * (size_t)k);
        return MOE_OK;
    }
    if (policy == MOE_DROP_POSITION) {
        MOE_MPI_CHECK(log, MPI_Comm_rank(comm, &rank));
        MOE_MPI_CHECK(log, MPI_Exscan(local_count, ws->prefix, E, MPI_INT64_T, MPI_SUM, comm));
        if (rank == 0)
            memset(ws->prefix, 0, (size_t)E * sizeof(int64_t));
        for (p = 0; p < T * k; p++) { /* p runs in token order: the global order */
            e = expert[p];
            keep[p] = ws->prefix[e]++ < capacity;
            dropped_local[e] += !keep[p];
        }
        return MOE_OK;
    }
    st = cap_probs_cutoffs(comm, log, pl, capacity, T, k, g0, expert, prob, routed_global, ws);
    if (st != MOE_OK)
        return st;
    for (p = 0; p < T * k; p++) {
        e = expert[p];
        if (routed_global[e] <= capacity) {
            keep[p] = 1;
        } else {
            double pc = ws->cut[e], tc = ws->cut[E + e];
            float  pr = prob[p];
            keep[p] = pr > (float)pc || (pr == (float)pc && (double)(g0 + p / k) <= tc);
        }
        dropped_local[e] += !keep[p];
    }
    return MOE_OK;
}
