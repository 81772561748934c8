/*
 * comm/a2a_flat.c — flat token exchange: every (token, expert) pair goes straight to the
 * rank of its expert with MPI_Alltoallv.
 *
 * dispatch: (1) count kept pairs per (destination rank, local expert) and exchange those
 *   counts with MPI_Alltoallv (each rank receives one count per local expert from every
 *   source; point to point to the ranks holding experts when some hold none,
 *   flat_counts_sparse); (2) pack rows by destination, then expert, then slot order, and remember
 *   where each pair went (pos[p]); (3) MPI_Alltoallv of the rows; (4) regroup the received
 *   rows per local expert (source-rank order inside an expert).
 * combine: the reverse: scatter expert outputs back into source-major order, one
 *   MPI_Alltoallv with the counts swapped, which lands every output row at the position its
 *   input row left from; then out[t] += w_j * y for j = 0..k-1.
 * Buffers grow to the largest step seen and are reused: no allocation in a steady state.
 * With params.rows_opaque (the simulation model) the row buffers are never touched and no
 * row is copied or summed; counts, layouts and every message (peer, size) are unchanged.
 * Counts are conserved: the rows packed are the kept pairs, every received row is placed in
 * exactly one expert's batch, and combine returns as many rows as dispatch received (checked
 * with MOE_ASSERT in debug builds).
 * With params.idle_sleep_ns (compute slots on: more ranks than cores) the overlapped
 * forward's blocking waits test their requests and sleep between tests instead of
 * MPI_Waitsome, which spins (yielding) and takes the core from the ranks computing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "a2a_common.h"
#include "moerun/base/assert.h"
#include "moerun/base/mpicheck.h"

/* Overlapped forward: four lanes of point-to-point transfers, each with at most
 * `window` requests in flight (params.window, FLAT_WINDOW if 0: a rank never has more
 * than 4 x window messages posted, whatever P), and expert compute in chunks of at most
 * FLAT_CHUNK rows with a progress call (MPI_Testsome) between chunks. */
enum { FLAT_ROWS_RECV, FLAT_ROWS_SEND, FLAT_OUT_RECV, FLAT_OUT_SEND, FLAT_LANES };
enum { FLAT_TAG_ROWS = 1, FLAT_TAG_OUT = 2, FLAT_TAG_COUNTS = 3 };
#define FLAT_WINDOW 8
#define FLAT_CHUNK  256
/* Sparse count exchange (some ranks hold no expert): ring distances per round of waits. */
#define FLAT_COUNT_WINDOW 16

typedef struct a2a_flat {
    MPI_Comm   comm;
    moe_log_t *log;
    int        nranks, rank, d, top_k, max_tokens;
    int       *local_experts;  /* [P] */
    int       *node;           /* [P] node of each rank */
    moe__a2a_peers_t peers;    /* (P, rank, node) for traffic accounting */
    int       *cnt_off;        /* [P+1] offset of rank r's experts in send count vector */
    int        n_local;
    int        opaque;         /* params.rows_opaque: rows never copied or summed */
    int       *send_cnt;       /* [sum local_experts] pairs per (dest, local expert) */
    int       *recv_cnt;       /* [P * n_local] pairs per (source, my local expert) */
    int       *scnt, *sdsp, *rcnt, *rdsp;   /* [P] MPI counts/displacements (ints or floats) */
    int       *icnt_s, *idsp_s, *icnt_r, *idsp_r; /* [P] for the count exchange */
    int        sparse_counts;  /* some rank holds no expert: counts go point to point, only
                                * to ranks that hold experts (flat_counts_sparse) */
    MPI_Request *creq;         /* [2 * FLAT_COUNT_WINDOW] requests of one count round */
    int64_t   *pos;            /* [max_tokens * k] send row of each pair */
    int64_t   *offset;         /* [n_local + 1] batch offsets */
    int64_t   *cursor;         /* [sum local_experts] packing cursor */
    float     *sendbuf;        /* [max_tokens * k][d] */
    float     *recvbuf;        /* [rows][d], grows */
    float     *bx, *by;        /* batch inputs and outputs, grow */
    size_t     recv_rows_cap, bx_rows_cap, by_rows_cap;
    int64_t    recv_rows;      /* rows received in the current dispatch */
    /* overlapped forward (flat_forward) */
    float       *retbuf;       /* [max_tokens * k][d] outputs coming back, send layout */
    int          window;       /* requests in flight per lane (params.window) */
    MPI_Request *req;          /* [FLAT_LANES * window] */
    int         *req_peer;     /* [FLAT_LANES * window] peer of each request */
    int         *queue;        /* [FLAT_LANES][P] peers of each lane, in posting order */
    int          qcap;         /* items one lane's queue holds */
    int          expert_block; /* rows per expert call piece (params), 0: whole expert */
    long         idle_sleep_ns;/* blocking waits: sleep between tests (params), 0: Waitsome */
    int64_t     *rseg;         /* [P * n_local] first batch row of each (source, expert) */
    int         *missing;      /* [n_local] row segments of each local expert not arrived */
    int         *unsent;       /* [max local experts] row segments this rank sends to other
                                * ranks' local expert e, not posted yet */
    int64_t     *self_delta;   /* [n_local] batch row - sendbuf row of this rank's own pairs */
    unsigned char *seg_back;   /* [sum local_experts] outputs of (dest, expert) back */
    unsigned char *tok_done;   /* [max_tokens] token's weighted sum done */
    int         *done_idx;     /* [FLAT_LANES * window] Testsome/Waitsome output */
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
    free(c->creq);
    free(c->pos);
    free(c->offset);
    free(c->cursor);
    moe__a2a_rows_free(c->sendbuf, c->opaque);
    moe__a2a_rows_free(c->recvbuf, c->opaque);
    moe__a2a_rows_free(c->bx, c->opaque);
    moe__a2a_rows_free(c->by, c->opaque);
    moe__a2a_rows_free(c->retbuf, c->opaque);
    free(c->req);
    free(c->req_peer);
    free(c->queue);
    free(c->rseg);
    free(c->missing);
    free(c->unsent);
    free(c->self_delta);
    free(c->seg_back);
    free(c->tok_done);
    free(c->done_idx);
    free(c);
}

static moe_status_t flat_create(const moe_a2a_params_t *prm, void **ctx_p)
{
    a2a_flat_t  *c = calloc(1, sizeof(*c));
    int          P, r, total;
    int64_t      rows0;
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
    c->expert_block = prm->expert_block;
    c->idle_sleep_ns = prm->idle_sleep_ns;
    c->opaque = prm->rows_opaque;
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
    c->creq = malloc(2 * FLAT_COUNT_WINDOW * sizeof(MPI_Request));
    c->pos = malloc((size_t)c->max_tokens * c->top_k * sizeof(int64_t) + 1);
    c->offset = calloc((size_t)c->n_local + 1, sizeof(int64_t));
    c->sendbuf = moe__a2a_rows_alloc((size_t)c->max_tokens * c->top_k * c->d, c->opaque);
    c->retbuf = moe__a2a_rows_alloc((size_t)c->max_tokens * c->top_k * c->d, c->opaque);
    c->window = prm->window > 0 ? prm->window : FLAT_WINDOW;
    c->req = malloc((size_t)FLAT_LANES * c->window * sizeof(MPI_Request));
    c->req_peer = calloc((size_t)FLAT_LANES * c->window, sizeof(int));
    c->done_idx = calloc((size_t)FLAT_LANES * c->window, sizeof(int));
    c->qcap = total > P * c->n_local ? total : P * c->n_local;
    c->queue = calloc((size_t)FLAT_LANES * c->qcap + 1, sizeof(int));
    c->rseg = calloc((size_t)P * c->n_local + 1, sizeof(int64_t));
    c->missing = calloc((size_t)c->n_local + 1, sizeof(int));
    c->unsent = calloc((size_t)total + 1, sizeof(int)); /* total >= any rank's expert count */
    c->self_delta = calloc((size_t)c->n_local + 1, sizeof(int64_t));
    c->seg_back = calloc((size_t)total + 1, 1);
    c->tok_done = calloc((size_t)c->max_tokens + 1, 1);
    for (r = 0; r < FLAT_LANES * c->window && c->req; r++)
        c->req[r] = MPI_REQUEST_NULL;
    /* receive-side buffers sized for the most rows this rank's experts can get (params
     * max_rows_in; a balanced step's T * k rows when unknown) and touched now (unless opaque:
     * moe__a2a_rows_alloc), so the first steps neither allocate nor page-fault; they grow
     * only past that */
    rows0 = (int64_t)c->max_tokens * c->top_k;
    if (prm->max_rows_in > rows0 && prm->max_rows_in <= rows0 * P)
        rows0 = prm->max_rows_in;
    c->recvbuf = moe__a2a_rows_alloc((size_t)rows0 * c->d, c->opaque);
    c->bx = moe__a2a_rows_alloc((size_t)rows0 * c->d, c->opaque);
    c->by = moe__a2a_rows_alloc((size_t)rows0 * c->d, c->opaque);
    if (!c->recvbuf || !c->bx || !c->by)
        goto err_nomem;
    c->recv_rows_cap = c->bx_rows_cap = c->by_rows_cap = (size_t)rows0;
    if (!c->retbuf || !c->req || !c->req_peer || !c->done_idx || !c->queue || !c->rseg ||
        !c->missing || !c->unsent || !c->self_delta || !c->seg_back || !c->tok_done)
        goto err_nomem;
    /* retbuf: zeroed, so resident, by moe__a2a_rows_alloc unless opaque */
    if (!c->send_cnt || !c->cursor || !c->recv_cnt || !c->scnt || !c->sdsp || !c->rcnt ||
        !c->rdsp || !c->icnt_s || !c->idsp_s || !c->icnt_r || !c->idsp_r || !c->creq ||
        !c->pos ||
        !c->offset || !c->sendbuf)
        goto err_nomem;
    /* count exchange layout: to rank r go local_experts[r] ints; from each rank come n_local */
    for (r = 0; r < P; r++) {
        c->icnt_s[r] = c->local_experts[r];
        c->idsp_s[r] = c->cnt_off[r];
        c->icnt_r[r] = c->n_local;
        c->idsp_r[r] = r * c->n_local;
        c->sparse_counts |= c->local_experts[r] == 0;
    }
    *ctx_p = c;
    return MOE_OK;

err_nomem:
    st = MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "flat exchange: out of memory");
err:
    flat_destroy(c);
    return st;
}


/*
 * The count exchange when some ranks hold no expert (E < P): rank r gets local_experts[r]
 * counts from every rank, so only ranks holding experts receive anything, and an
 * MPI_Alltoallv would still post (or, pairwise, simulate) P^2 mostly empty messages. Here
 * exactly the non-empty ones go point to point (the messages moe__a2a_traffic counts):
 * ring distance i = 1..P-1 sends to me + i and receives from me - i, FLAT_COUNT_WINDOW
 * distances per round, each round waited for before the next. A transfer has the same
 * distance, so the same round, on both ends: every round completes, and no rank has more
 * than 2 x FLAT_COUNT_WINDOW transfers in flight whatever P. Synchronous sends: a sender's
 * round ends when its counts are received, so a receiver never holds more than a round's
 * unexpected messages (without, every rank's counts reach the expert ranks at once and
 * each receive searches ~P of them: SimGrid's matching at 1024 ranks).
 */
static moe_status_t flat_counts_sparse(a2a_flat_t *c)
{
    int P = c->nranks, me = c->rank, nl = c->n_local, i, n = 0;

    memcpy(c->recv_cnt + (size_t)me * nl, c->send_cnt + c->cnt_off[me], (size_t)nl * sizeof(int));
    for (i = 1; i < P; i++) {
        int to = (me + i) % P, from = (me - i + P) % P;
        if (c->local_experts[to] > 0)
            MOE_MPI_CHECK(c->log, MPI_Issend(c->send_cnt + c->cnt_off[to], c->local_experts[to],
                                             MPI_INT, to, FLAT_TAG_COUNTS, c->comm, &c->creq[n++]));
        if (nl > 0)
            MOE_MPI_CHECK(c->log, MPI_Irecv(c->recv_cnt + (size_t)from * nl, nl, MPI_INT, from,
                                            FLAT_TAG_COUNTS, c->comm, &c->creq[n++]));
        if (n > 0 && (i % FLAT_COUNT_WINDOW == 0 || i == P - 1)) {
            MOE_MPI_CHECK(c->log, MPI_Waitall(n, c->creq, MPI_STATUSES_IGNORE));
            n = 0;
        }
    }
    return MOE_OK;
}

/* Steps 1 and 2 of dispatch (shared with the overlapped forward): the count exchange, the
 * packed send buffer, pos[], and both layouts (scnt/sdsp, rcnt/rdsp in floats). Grows
 * recvbuf, bx and by to the rows received. With self_direct (the overlapped forward) the
 * batch layout (offset, rseg) and self_delta are set too and the pairs this rank keeps are
 * not packed: flat_pack_own copies them straight into their batch rows in bx (same rows,
 * same order as through sendbuf; their sendbuf rows stay unused), after the rows for the
 * other ranks are posted. */
static moe_status_t flat_prepare(a2a_flat_t *c, const moe_a2a_plan_t *plan, const float *x,
                                 int self_direct, moe_a2a_stats_t *st)
{
    int     P = c->nranks, d = c->d, k = plan->top_k, r, e, npairs = plan->tokens * k, p;
    int64_t rows = 0, acc, kept = 0;
    double  t0 = MPI_Wtime(), t1;

    /* 1. counts per (dest, local expert), exchanged before the payload */
    memset(c->send_cnt, 0, (size_t)c->cnt_off[P] * sizeof(int));
    for (p = 0; p < npairs; p++)
        if (plan->dest_rank[p] >= 0) {
            MOE_ASSERT(plan->dest_rank[p] < P && plan->dest_expert[p] >= 0 &&
                       plan->dest_expert[p] < c->local_experts[plan->dest_rank[p]]);
            c->send_cnt[c->cnt_off[plan->dest_rank[p]] + plan->dest_expert[p]]++;
            kept++;
        }
    if (c->sparse_counts) {
        moe_status_t s = flat_counts_sparse(c);
        if (s != MOE_OK)
            return s;
    } else {
        MOE_MPI_CHECK(c->log, MPI_Alltoallv(c->send_cnt, c->icnt_s, c->idsp_s, MPI_INT,
                                            c->recv_cnt, c->icnt_r, c->idsp_r, MPI_INT, c->comm));
    }
    moe__a2a_traffic(&c->peers, c->icnt_s, c->icnt_r, sizeof(int), 0, st);
    t1 = MPI_Wtime();
    st->t_counts += t1 - t0;

    /* receive layout: source-major, then my local expert */
    for (r = 0; r < P; r++) {
        int64_t n = 0;
        for (e = 0; e < c->n_local; e++)
            n += c->recv_cnt[r * c->n_local + e];
        c->rcnt[r] = (int)(n * d);
    }
    rows = moe__a2a_displs(P, c->rcnt, c->rdsp) / d;
    c->recv_rows = rows;
    if (moe__a2a_rows_grow(&c->recvbuf, &c->recv_rows_cap, rows, d, c->opaque) ||
        moe__a2a_rows_grow(&c->bx, &c->bx_rows_cap, rows, d, c->opaque) ||
        moe__a2a_rows_grow(&c->by, &c->by_rows_cap, rows, d, c->opaque))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "flat exchange: out of memory for %lld rows",
                             (long long)rows);
    if (self_direct) { /* batch layout: expert-major, source order inside */
        for (e = 0, acc = 0; e < c->n_local; e++) {
            c->offset[e] = acc;
            for (r = 0; r < P; r++) {
                c->rseg[r * c->n_local + e] = acc;
                acc += c->recv_cnt[r * c->n_local + e];
            }
        }
        c->offset[c->n_local] = acc;
    }

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
    MOE_ASSERT(acc == kept); /* every kept pair has one send row */
    for (e = 0; e < c->n_local; e++) /* own pairs: sendbuf row + self_delta = batch row */
        c->self_delta[e] = self_direct ? c->rseg[c->rank * c->n_local + e] -
                                             c->cursor[c->cnt_off[c->rank] + e] : 0;
    for (p = 0; p < npairs; p++) {
        int dr = plan->dest_rank[p];
        if (dr < 0) {
            c->pos[p] = -1;
            continue;
        }
        c->pos[p] = c->cursor[c->cnt_off[dr] + plan->dest_expert[p]]++;
        if (self_direct && dr == c->rank)
            continue; /* flat_pack_own, once the other ranks' rows are posted */
        moe__a2a_rows_copy(c->opaque, c->sendbuf + c->pos[p] * d, x + (size_t)(p / k) * d,
                           (size_t)d * sizeof(float));
    }
    moe__a2a_displs(P, c->scnt, c->sdsp);
    st->t_dispatch += MPI_Wtime() - t1;
    return MOE_OK;
}

static moe_status_t flat_dispatch(void *vctx, const moe_a2a_plan_t *plan, const float *x,
                                  moe_expert_batch_t *batch, moe_a2a_stats_t *st)
{
    a2a_flat_t  *c = vctx;
    int          P = c->nranks, d = c->d, r, e;
    int64_t      acc;
    double       t1, tx;
    moe_status_t s;

    if ((s = flat_prepare(c, plan, x, 0, st)) != MOE_OK)
        return s;
    t1 = MPI_Wtime();

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
                moe__a2a_rows_copy(c->opaque, c->bx + c->cursor[e] * d, c->recvbuf + src * d,
                                   (size_t)n * d * sizeof(float));
                c->cursor[e] += n;
                src += n;
            }
        MOE_ASSERT(src == c->recv_rows && acc == c->recv_rows); /* every row placed once */
        for (e = 0; e < c->n_local; e++)
            MOE_ASSERT(c->cursor[e] == c->offset[e + 1]);
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
    int         P = c->nranks, d = c->d, k = plan->top_k, r, e, t, j;
    int64_t     dst = 0;
    double      t0 = MPI_Wtime(), tx;

    /* scatter outputs back to source-major order (the receive layout of dispatch) */
    for (e = 0; e < c->n_local; e++)
        c->cursor[e] = batch->offset[e];
    for (r = 0; r < P; r++)
        for (e = 0; e < c->n_local; e++) {
            int64_t n = c->recv_cnt[r * c->n_local + e];
            moe__a2a_rows_copy(c->opaque, c->recvbuf + dst * d, batch->y + c->cursor[e] * d,
                               (size_t)n * d * sizeof(float));
            c->cursor[e] += n;
            dst += n;
        }
    MOE_ASSERT(dst == c->recv_rows); /* as many rows go back as came in */
    tx = MPI_Wtime();
    MOE_MPI_CHECK(c->log, MPI_Alltoallv(c->recvbuf, c->rcnt, c->rdsp, MPI_FLOAT, c->sendbuf,
                                        c->scnt, c->sdsp, MPI_FLOAT, c->comm));
    st->t_combine_inter += MPI_Wtime() - tx;
    moe__a2a_traffic(&c->peers, c->rcnt, c->scnt, sizeof(float), 1, st);
    /* weighted sum in slot order */
    for (t = 0; t < plan->tokens && !c->opaque; t++) {
        float *o = out + (size_t)t * d;
        for (j = 0; j < k; j++) {
            int          p = t * k + j;
            const float *y;
            float        w;
            if (c->pos[p] < 0)
                continue;
            y = c->sendbuf + c->pos[p] * d;
            w = plan->weight[p];
            moe__a2a_add_scaled(o, y, w, d);
        }
    }
    st->t_combine += MPI_Wtime() - t0;
    return MOE_OK;
}

/* One overlapped forward in progress: per lane, the segments queued (c->queue, each
 * item = local expert * P + peer), the next to post and the requests in flight. */
typedef struct flat_ovl {
    int    n[FLAT_LANES], next[FLAT_LANES], active[FLAT_LANES];
    int    outstanding;         /* requests in flight, all lanes */
    int    ecomputed;           /* local experts computed so far (in order 0, 1, ...) */
    int    back_new;            /* outputs came back since the last flat_sum_ready */
    double t_blocked_rows;      /* in Waitsome with experts still to compute */
    double t_blocked_out;       /* in Waitsome after the last expert */
    double t_expert;            /* in the expert callback */
} flat_ovl_t;

/* Rows of the (peer, expert) segment of a lane, and where it lives. Sends and receives of
 * rows: sendbuf (dest-major, then the dest's local expert) and bx (my expert, then source);
 * outputs: by (as bx) back into retbuf (as sendbuf). */
static float *flat_seg(a2a_flat_t *c, int lane, int peer, int e, int64_t *rows_p)
{
    if (lane == FLAT_ROWS_SEND || lane == FLAT_OUT_RECV) {
        int64_t n = c->send_cnt[c->cnt_off[peer] + e];
        *rows_p = n;
        return (lane == FLAT_ROWS_SEND ? c->sendbuf : c->retbuf) +
               (c->cursor[c->cnt_off[peer] + e] - n) * c->d; /* cursor: end after packing */
    }
    *rows_p = c->recv_cnt[peer * c->n_local + e];
    return (lane == FLAT_ROWS_RECV ? c->bx : c->by) + c->rseg[peer * c->n_local + e] * c->d;
}

/* Posts the lane's next transfers while its window has room. Every lane walks its segments
 * by (local expert of the receiving side, ring distance), the same key on both ends of
 * every transfer, so the smallest pending key can always complete (no deadlock with
 * bounded windows); outputs of an expert are posted once it is computed. */
static moe_status_t flat_post(a2a_flat_t *c, flat_ovl_t *o, int lane)
{
    const int *q = c->queue + (size_t)lane * c->qcap;

    while (o->active[lane] < c->window && o->next[lane] < o->n[lane]) {
        int          item = q[o->next[lane]], peer = item % c->nranks, e = item / c->nranks;
        int          slot = lane * c->window, tag;
        int64_t      rows;
        float       *buf = flat_seg(c, lane, peer, e, &rows);
        MPI_Request *rq;
        if (lane == FLAT_OUT_SEND && e >= o->ecomputed)
            break;
        while (c->req[slot] != MPI_REQUEST_NULL)
            slot++;
        rq = &c->req[slot];
        c->req_peer[slot] = item;
        o->next[lane]++;
        if (lane == FLAT_ROWS_SEND)
            c->unsent[e]--;
        tag = lane == FLAT_ROWS_RECV || lane == FLAT_ROWS_SEND ? FLAT_TAG_ROWS : FLAT_TAG_OUT;
        if (lane == FLAT_ROWS_RECV || lane == FLAT_OUT_RECV)
            MOE_MPI_CHECK(c->log, MPI_Irecv(buf, (int)(rows * c->d), MPI_FLOAT, peer, tag,
                                            c->comm, rq));
        else
            MOE_MPI_CHECK(c->log, MPI_Isend(buf, (int)(rows * c->d), MPI_FLOAT, peer, tag,
                                            c->comm, rq));
        o->active[lane]++;
        o->outstanding++;
    }
    return MOE_OK;
}

/* Tests (wait = 0) or waits for (wait = 1, time into *blocked) completions; arrived rows
 * count down their expert's missing segments; every lane with room posts more. */
static moe_status_t flat_progress(a2a_flat_t *c, flat_ovl_t *o, int wait, double *blocked)
{
    int          n = 0, i, lane;
    double       t0 = MPI_Wtime();
    moe_status_t s;

    if (o->outstanding == 0)
        return MOE_OK;
    if (wait && c->idle_sleep_ns > 0) { /* asleep between tests: the core to the others */
        struct timespec nap = {c->idle_sleep_ns / 1000000000L, c->idle_sleep_ns % 1000000000L};
        for (;;) {
            MOE_MPI_CHECK(c->log, MPI_Testsome(FLAT_LANES * c->window, c->req, &n, c->done_idx,
                                               MPI_STATUSES_IGNORE));
            if (n != 0)
                break;
            nanosleep(&nap, NULL);
        }
        *blocked += MPI_Wtime() - t0;
    } else if (wait) {
        MOE_MPI_CHECK(c->log, MPI_Waitsome(FLAT_LANES * c->window, c->req, &n, c->done_idx,
                                           MPI_STATUSES_IGNORE));
        *blocked += MPI_Wtime() - t0;
    } else {
        MOE_MPI_CHECK(c->log, MPI_Testsome(FLAT_LANES * c->window, c->req, &n, c->done_idx,
                                           MPI_STATUSES_IGNORE));
    }
    for (i = 0; n != MPI_UNDEFINED && i < n; i++) {
        int slot = c->done_idx[i];
        lane = slot / c->window;
        o->active[lane]--;
        o->outstanding--;
        if (lane == FLAT_ROWS_RECV)
            c->missing[c->req_peer[slot] / c->nranks]--;
        if (lane == FLAT_OUT_RECV) { /* item = expert * P + peer */
            int item = c->req_peer[slot];
            c->seg_back[c->cnt_off[item % c->nranks] + item / c->nranks] = 1;
            o->back_new = 1;
        }
    }
    for (lane = 0; lane < FLAT_LANES; lane++)
        if ((s = flat_post(c, o, lane)) != MOE_OK)
            return s;
    return MOE_OK;
}

/* Whether row segments this rank sends to other ranks' experts 0..e are not all posted. */
static int flat_unsent_upto(const a2a_flat_t *c, int e)
{
    int i;

    for (i = 0; i <= e; i++)
        if (c->unsent[i] > 0)
            return 1;
    return 0;
}

/* The overlapped forward's own pairs: x rows into their batch rows (flat_prepare's
 * self_direct layout), in slot order as the packing would have placed them. */
static void flat_pack_own(a2a_flat_t *c, const moe_a2a_plan_t *plan, const float *x)
{
    int p, k = plan->top_k, npairs = plan->tokens * k, d = c->d;

    for (p = 0; p < npairs && !c->opaque; p++)
        if (plan->dest_rank[p] == c->rank)
            memcpy(c->bx + (c->pos[p] + c->self_delta[plan->dest_expert[p]]) * d,
                   x + (size_t)(p / k) * d, (size_t)d * sizeof(float));
}

/* Adds, in slot order, the weighted outputs of every token not summed yet whose outputs are
 * all here (all = 1: every token, all being back); marks it done. Own outputs are read from
 * by, returned ones from retbuf. Each token's sum is the same arithmetic whenever it runs,
 * so the order of tokens changes no bit. */
static void flat_sum_ready(a2a_flat_t *c, const moe_a2a_plan_t *plan, const flat_ovl_t *o,
                           float *out, int all)
{
    int t, j, k = plan->top_k, d = c->d, me = c->rank;

    for (t = 0; t < plan->tokens && !c->opaque; t++) {
        const int *dr = plan->dest_rank + (size_t)t * k, *de = plan->dest_expert + (size_t)t * k;
        float     *ot = out + (size_t)t * d;
        if (c->tok_done[t])
            continue;
        for (j = 0; j < k && !all; j++)
            if (dr[j] >= 0 && (dr[j] == me ? de[j] >= o->ecomputed
                                           : !c->seg_back[c->cnt_off[dr[j]] + de[j]]))
                break;
        if (j < k && !all)
            continue;
        for (j = 0; j < k; j++) {
            int64_t pp = c->pos[(size_t)t * k + j];
            if (pp < 0)
                continue;
            moe__a2a_add_scaled(ot, dr[j] == me ? c->by + (pp + c->self_delta[de[j]]) * d
                                                : c->retbuf + pp * d,
                                plan->weight[(size_t)t * k + j], d);
        }
        c->tok_done[t] = 1;
    }
}

/*
 * dispatch + experts + combine with the exchange overlapped (moe_a2a_ops_t.forward).
 * Counts and packing as in dispatch; then every (peer, local expert) segment of rows is
 * posted point to point straight into the expert-grouped batch (bounded windows); this
 * rank's own pairs were packed straight into it (flat_prepare's self_direct) and their
 * outputs are summed from where the expert wrote them (no copy either way). Local expert e runs as soon as all its segments have
 * arrived, on exactly the rows and in exactly the blocks of the non-overlapped path (the
 * same expert calls: BLAS results depend on the row count of a call, so nothing is split
 * differently), with progress calls between pieces of params->expert_block rows (the
 * block the experts split into anyway); its outputs go back
 * at once, segment by segment, to where flat_combine's MPI_Alltoallv would put them. The
 * weighted sum in slot order is then the same arithmetic on the same values: the output
 * is bitwise that of dispatch + experts + combine.
 */
static moe_status_t flat_forward(void *vctx, const moe_a2a_plan_t *plan, const float *x,
                                 moe_a2a_expert_fn fn, void *arg, float *out,
                                 moe_a2a_stats_t *st)
{
    a2a_flat_t  *c = vctx;
    int          P = c->nranks, me = c->rank, d = c->d, i, r, e, lane;
    int          maxl = 0;
    int64_t      blk = c->expert_block > 0 ? c->expert_block : INT64_MAX;
    flat_ovl_t   o;
    double       t0, tc;
    moe_status_t s;

    if ((s = flat_prepare(c, plan, x, 1, st)) != MOE_OK) /* own rows already in bx */
        return s;
    t0 = MPI_Wtime();
    memset(&o, 0, sizeof(o));
    memset(c->missing, 0, (size_t)c->n_local * sizeof(int));
    for (r = 0, maxl = 0; r < P; r++)
        maxl = c->local_experts[r] > maxl ? c->local_experts[r] : maxl;
    memset(c->unsent, 0, (size_t)maxl * sizeof(int));
    memset(c->seg_back, 0, (size_t)c->cnt_off[P]);
    for (e = 0; e < maxl; e++)
        for (i = 1; i < P; i++) {
            int from = (me - i + P) % P, to = (me + i) % P;
            int *q = c->queue;
            if (e < c->n_local && c->recv_cnt[from * c->n_local + e] > 0) {
                q[FLAT_ROWS_RECV * c->qcap + o.n[FLAT_ROWS_RECV]++] = e * P + from;
                q[FLAT_OUT_SEND * c->qcap + o.n[FLAT_OUT_SEND]++] = e * P + from;
                c->missing[e]++;
            }
            if (e < c->local_experts[to] && c->send_cnt[c->cnt_off[to] + e] > 0) {
                q[FLAT_ROWS_SEND * c->qcap + o.n[FLAT_ROWS_SEND]++] = e * P + to;
                q[FLAT_OUT_RECV * c->qcap + o.n[FLAT_OUT_RECV]++] = e * P + to;
                c->unsent[e]++;
            }
        }
    for (lane = 0; lane < FLAT_LANES; lane++)
        if ((s = flat_post(c, &o, lane)) != MOE_OK)
            return s;
    flat_pack_own(c, plan, x); /* while the other ranks' rows are on their way */
    st->t_dispatch += MPI_Wtime() - t0;
    t0 = MPI_Wtime();

    for (e = 0; e < c->n_local; e++) {
        int64_t n = c->offset[e + 1] - c->offset[e], r0, rows;
        /* expert e runs once its rows are here and this rank's rows for the other ranks'
         * experts 0..e are all posted: a rank computing posts nothing (a window refills
         * only at a progress call, one per expert block), and with small windows at E ~ P
         * the others' experts then waited on its compute (simulated at 64 ranks, window 2:
         * a step 1.7x the unoverlapped one). With a window as large as the segments (2
         * ranks, 8 experts) nothing waits here */
        while (c->missing[e] > 0 || flat_unsent_upto(c, e)) /* e < n_local <= maxl */
            if ((s = flat_progress(c, &o, 1, &o.t_blocked_rows)) != MOE_OK)
                return s;
        for (r0 = 0; r0 < n; r0 += blk) {
            rows = n - r0 < blk ? n - r0 : blk;
            tc = MPI_Wtime();
            fn(arg, e, c->bx + (c->offset[e] + r0) * d, rows, c->by + (c->offset[e] + r0) * d);
            o.t_expert += MPI_Wtime() - tc;
            if ((s = flat_progress(c, &o, 0, NULL)) != MOE_OK)
                return s;
        }
        o.ecomputed = e + 1; /* own outputs stay in by: the sum reads them there */
        if ((s = flat_post(c, &o, FLAT_OUT_SEND)) != MOE_OK)
            return s;
    }
    /* weighted sum in slot order (as flat_combine), token by token: while outputs are still
     * on their way, the tokens whose outputs are all here (swept again after each arrival) */
    memset(c->tok_done, 0, (size_t)plan->tokens);
    while (o.outstanding > 0) {
        if (o.back_new) { /* combine's own time, not blocked */
            o.back_new = 0;
            flat_sum_ready(c, plan, &o, out, 0);
        }
        if ((s = flat_progress(c, &o, 1, &o.t_blocked_out)) != MOE_OK)
            return s;
    }
    flat_sum_ready(c, plan, &o, out, 1);
    moe__a2a_traffic(&c->peers, c->scnt, c->rcnt, sizeof(float), 1, st);
    moe__a2a_traffic(&c->peers, c->rcnt, c->scnt, sizeof(float), 1, st);
    /* phases: waiting for rows is dispatch's wire; compute is expert; the rest (progress,
     * returns, waiting for outputs, the sum) is combine, of which the blocked wait for
     * outputs is both its wire stage and its wait for other ranks */
    st->t_dispatch += o.t_blocked_rows;
    st->t_dispatch_inter += o.t_blocked_rows;
    st->t_expert += o.t_expert;
    st->t_combine += (MPI_Wtime() - t0) - o.t_blocked_rows - o.t_expert;
    st->t_combine_inter += o.t_blocked_out;
    st->t_combine_wait += o.t_blocked_out;
    return MOE_OK;
}

const moe_a2a_ops_t moe_a2a_flat_ops = {
    .name = "flat",
    .doc = "MPI_Alltoallv of counts, then of rows, straight to each expert's rank",
    .create = flat_create,
    .dispatch = flat_dispatch,
    .combine = flat_combine,
    .forward = flat_forward,
    .destroy = flat_destroy,
};
