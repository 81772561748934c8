/*
 * comm/a2a_flat.c — flat token exchange: every (token, expert) pair goes straight to the
 * rank of its expert with MPI_Alltoallv.
 *
 * dispatch: (1) count kept pairs per (destination rank, local expert) and exchange those
 *   counts with MPI_Alltoallv (each rank receives one count per local expert from every
 *   source); (2) pack rows by destination, then expert, then slot order, and remember
 *   where each pair went (pos[p]); (3) MPI_Alltoallv of the rows; (4) regroup the received
 *   rows per local expert (source-rank order inside an expert).
 * combine: the reverse: scatter expert outputs back into source-major order, one
 *   MPI_Alltoallv with the counts swapped, which lands every output row at the position its
 *   input row left from; then out[t] += w_j * y for j = 0..k-1.
 * Buffers grow to the largest step seen and are reused: no allocation in a steady state.
 */
#include <stdlib.h>
#include <string.h>

#include "a2a_common.h"
#include "moerun/base/mpicheck.h"

typedef struct a2a_flat {
    MPI_Comm   comm;
    moe_log_t *log;
    int        nranks, rank, d, top_k, max_tokens;
    int       *local_experts;  /* [P] */
    int       *node;           /* [P] node of each rank */
    moe__a2a_peers_t peers;    /* (P, rank, node) for traffic accounting */
    int       *cnt_off;        /* [P+1] offset of rank r's experts in send count vector */
    int        n_local;
    int       *send_cnt;       /* [sum local_experts] pairs per (dest, local expert) */
    int       *recv_cnt;       /* [P * n_local] pairs per (source, my local expert) */
    int       *scnt, *sdsp, *rcnt, *rdsp;   /* [P] MPI counts/displacements (ints or floats) */
    int       *icnt_s, *idsp_s, *icnt_r, *idsp_r; /* [P] for the count exchange */
    int64_t   *pos;            /* [max_tokens * k] send row of each pair */
    int64_t   *offset;         /* [n_local + 1] batch offsets */
    int64_t   *cursor;         /* [sum local_experts] packing cursor */
    float     *sendbuf;        /* [max_tokens * k][d] */
    float     *recvbuf;        /* [rows][d], grows */
    float     *bx, *by;        /* batch inputs and outputs, grow */
    size_t     recv_rows_cap, bx_rows_cap, by_rows_cap;
    int64_t    recv_rows;      /* rows received in the current dispatch */
} a2a_flat_t;

static void flat_destroy(void *vctx)
{
    a2a_flat_t *c = vctx;

    if (c == NULL)
        return;
    if (c->comm != MPI_COMM_NULL)
        MPI_Comm_free(&c->comm);
    free(c->local_experts);
    free(c->node);
    free(c->cnt_off);
    free(c->send_cnt);
    free(c->recv_cnt);
    free(c->scnt);
    free(c->sdsp);
    free(c->rcnt);
    free(c->rdsp);
    free(c->icnt_s);
    free(c->idsp_s);
    free(c->icnt_r);
    free(c->idsp_r);
    free(c->pos);
    free(c->offset);
    free(c->cursor);
    free(c->sendbuf);
    free(c->recvbuf);
    free(c->bx);
    free(c->by);
    free(c);
}

static moe_status_t flat_create(const moe_a2a_params_t *prm, void **ctx_p)
{
    a2a_flat_t  *c = calloc(1, sizeof(*c));
    int          P, r, total;
    moe_status_t st = MOE_OK;

    if (c == NULL)
        return MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "flat exchange: out of memory");
    c->comm = MPI_COMM_NULL;
    c->log = prm->log;
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_dup(prm->comm, &c->comm), st, err);
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_size(c->comm, &c->nranks), st, err);
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_rank(c->comm, &c->rank), st, err);
    P = c->nranks;
    c->d = prm->d_model;
    c->top_k = prm->top_k;
    c->max_tokens = prm->max_tokens;
    c->local_experts = malloc((size_t)P * sizeof(int));
    c->cnt_off = malloc(((size_t)P + 1) * sizeof(int));
    c->node = calloc((size_t)P, sizeof(int));
    if (!c->local_experts || !c->cnt_off || !c->node)
        goto err_nomem;
    memcpy(c->local_experts, prm->local_experts, (size_t)P * sizeof(int));
    if (prm->node_of_rank)
        memcpy(c->node, prm->node_of_rank, (size_t)P * sizeof(int));
    c->peers.nranks = P;
    c->peers.rank = c->rank;
    c->peers.node = c->node;
    for (r = 0, c->cnt_off[0] = 0; r < P; r++)
        c->cnt_off[r + 1] = c->cnt_off[r] + c->local_experts[r];
    total = c->cnt_off[P];
    c->n_local = c->local_experts[c->rank];
    c->send_cnt = calloc((size_t)total + 1, sizeof(int));
    c->cursor = calloc((size_t)total + 1, sizeof(int64_t));
    c->recv_cnt = calloc((size_t)P * c->n_local + 1, sizeof(int));
    c->scnt = calloc((size_t)P, sizeof(int));
    c->sdsp = calloc((size_t)P, sizeof(int));
    c->rcnt = calloc((size_t)P, sizeof(int));
    c->rdsp = calloc((size_t)P, sizeof(int));
    c->icnt_s = calloc((size_t)P, sizeof(int));
    c->idsp_s = calloc((size_t)P, sizeof(int));
    c->icnt_r = calloc((size_t)P, sizeof(int));
    c->idsp_r = calloc((size_t)P, sizeof(int));
    c->pos = malloc((size_t)c->max_tokens * c->top_k * sizeof(int64_t) + 1);
    c->offset = calloc((size_t)c->n_local + 1, sizeof(int64_t));
    c->sendbuf = malloc((size_t)c->max_tokens * c->top_k * c->d * sizeof(float) + 1);
    if (!c->send_cnt || !c->cursor || !c->recv_cnt || !c->scnt || !c->sdsp || !c->rcnt ||
        !c->rdsp || !c->icnt_s || !c->idsp_s || !c->icnt_r || !c->idsp_r || !c->pos ||
        !c->offset || !c->sendbuf)
        goto err_nomem;
    /* count exchange layout: to rank r go local_experts[r] ints; from each rank come n_local */
    for (r = 0; r < P; r++) {
        c->icnt_s[r] = c->local_experts[r];
        c->idsp_s[r] = c->cnt_off[r];
        c->icnt_r[r] = c->n_local;
        c->idsp_r[r] = r * c->n_local;
    }
    *ctx_p = c;
    return MOE_OK;

err_nomem:
    st = MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "flat exchange: out of memory");
err:
    flat_destroy(c);
    return st;
}

/* Grows *buf to hold rows x d floats. */
static int flat_grow(float **buf, size_t *cap_rows, int64_t rows, int d)
{
    float *p;
    size_t want = (size_t)rows;

    if (want <= *cap_rows && *buf != NULL)
        return 0;
    want = want < 2 * *cap_rows ? 2 * *cap_rows : want;
    p = realloc(*buf, (want + 1) * (size_t)d * sizeof(float));
    if (p == NULL)
        return -1;
    *buf = p;
    *cap_rows = want;
    return 0;
}

static moe_status_t flat_dispatch(void *vctx, const moe_a2a_plan_t *plan, const float *x,
                                  moe_expert_batch_t *batch, moe_a2a_stats_t *st)
{
    a2a_flat_t *c = vctx;
    int         P = c->nranks, d = c->d, k = plan->top_k, r, e, npairs = plan->tokens * k, p;
    int64_t     rows = 0, acc;
    double      t0 = MPI_Wtime(), t1, tx;

    /* 1. counts per (dest, local expert), exchanged before the payload */
    memset(c->send_cnt, 0, (size_t)c->cnt_off[P] * sizeof(int));
    for (p = 0; p < npairs; p++)
        if (plan->dest_rank[p] >= 0)
            c->send_cnt[c->cnt_off[plan->dest_rank[p]] + plan->dest_expert[p]]++;
    MOE_MPI_CHECK(c->log, MPI_Alltoallv(c->send_cnt, c->icnt_s, c->idsp_s, MPI_INT, c->recv_cnt,
                                        c->icnt_r, c->idsp_r, MPI_INT, c->comm));
    moe__a2a_traffic(&c->peers, c->icnt_s, c->icnt_r, sizeof(int), 0, st);
    t1 = MPI_Wtime();
    st->t_counts += t1 - t0;

    /* 2. pack rows: destination-major, then local expert, then slot order */
    for (r = 0, acc = 0; r < P; r++) {
        int64_t n = 0;
        for (e = 0; e < c->local_experts[r]; e++) {
            c->cursor[c->cnt_off[r] + e] = acc + n;
            n += c->send_cnt[c->cnt_off[r] + e];
        }
        c->scnt[r] = (int)(n * d);
        acc += n;
    }
    for (p = 0; p < npairs; p++) {
        int dr = plan->dest_rank[p];
        if (dr < 0) {
            c->pos[p] = -1;
            continue;
        }
        c->pos[p] = c->cursor[c->cnt_off[dr] + plan->dest_expert[p]]++;
        memcpy(c->sendbuf + c->pos[p] * d, x + (size_t)(p / k) * d, (size_t)d * sizeof(float));
    }
    /* receive layout: source-major, then my local expert */
    for (r = 0; r < P; r++) {
        int64_t n = 0;
        for (e = 0; e < c->n_local; e++)
            n += c->recv_cnt[r * c->n_local + e];
        c->rcnt[r] = (int)(n * d);
    }
    moe__a2a_displs(P, c->scnt, c->sdsp);
    rows = moe__a2a_displs(P, c->rcnt, c->rdsp) / d;
    c->recv_rows = rows;
    if (flat_grow(&c->recvbuf, &c->recv_rows_cap, rows, d) ||
        flat_grow(&c->bx, &c->bx_rows_cap, rows, d) || flat_grow(&c->by, &c->by_rows_cap, rows, d))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "flat exchange: out of memory for %lld rows",
                             (long long)rows);

    /* 3. payload */
    tx = MPI_Wtime();
    MOE_MPI_CHECK(c->log, MPI_Alltoallv(c->sendbuf, c->scnt, c->sdsp, MPI_FLOAT, c->recvbuf,
                                        c->rcnt, c->rdsp, MPI_FLOAT, c->comm));
    st->t_dispatch_inter += MPI_Wtime() - tx;
    moe__a2a_traffic(&c->peers, c->scnt, c->rcnt, sizeof(float), 1, st);

    /* 4. regroup per local expert */
    for (e = 0, acc = 0; e < c->n_local; e++) {
        c->offset[e] = acc;
        for (r = 0; r < P; r++)
            acc += c->recv_cnt[r * c->n_local + e];
    }
    c->offset[c->n_local] = acc;
    {
        int64_t src = 0;
        for (r = 0; r < P; r++)
            for (e = 0; e < c->n_local; e++) {
                int64_t n = c->recv_cnt[r * c->n_local + e];
                /* cursor reused per expert: rows of expert e already placed */
                if (r == 0)
                    c->cursor[e] = c->offset[e];
                memcpy(c->bx + c->cursor[e] * d, c->recvbuf + src * d,
                       (size_t)n * d * sizeof(float));
                c->cursor[e] += n;
                src += n;
            }
    }
    batch->n_local = c->n_local;
    batch->offset = c->offset;
    batch->x = c->bx;
    batch->y = c->by;
    st->t_dispatch += MPI_Wtime() - t1;
    return MOE_OK;
}

static moe_status_t flat_combine(void *vctx, const moe_a2a_plan_t *plan,
                                 const moe_expert_batch_t *batch, float *out,
                                 moe_a2a_stats_t *st)
{
    a2a_flat_t *c = vctx;
    int         P = c->nranks, d = c->d, k = plan->top_k, r, e, t, j, i;
    int64_t     dst = 0;
    double      t0 = MPI_Wtime(), tx;

    /* scatter outputs back to source-major order (the receive layout of dispatch) */
    for (e = 0; e < c->n_local; e++)
        c->cursor[e] = batch->offset[e];
    for (r = 0; r < P; r++)
        for (e = 0; e < c->n_local; e++) {
            int64_t n = c->recv_cnt[r * c->n_local + e];
            memcpy(c->recvbuf + dst * d, batch->y + c->cursor[e] * d,
                   (size_t)n * d * sizeof(float));
            c->cursor[e] += n;
            dst += n;
        }
    tx = MPI_Wtime();
    MOE_MPI_CHECK(c->log, MPI_Alltoallv(c->recvbuf, c->rcnt, c->rdsp, MPI_FLOAT, c->sendbuf,
                                        c->scnt, c->sdsp, MPI_FLOAT, c->comm));
    st->t_combine_inter += MPI_Wtime() - tx;
    moe__a2a_traffic(&c->peers, c->rcnt, c->scnt, sizeof(float), 1, st);
    /* weighted sum in slot order */
    for (t = 0; t < plan->tokens; t++) {
        float *o = out + (size_t)t * d;
        for (j = 0; j < k; j++) {
            int          p = t * k + j;
            const float *y;
            float        w;
            if (c->pos[p] < 0)
                continue;
            y = c->sendbuf + c->pos[p] * d;
            w = plan->weight[p];
            for (i = 0; i < d; i++)
                o[i] += w * y[i];
        }
    }
    st->t_combine += MPI_Wtime() - t0;
    return MOE_OK;
}

const moe_a2a_ops_t moe_a2a_flat_ops = {
    .name = "flat",
    .doc = "MPI_Alltoallv of counts, then of rows, straight to each expert's rank",
    .create = flat_create,
    .dispatch = flat_dispatch,
    .combine = flat_combine,
    .destroy = flat_destroy,
};
