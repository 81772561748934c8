/*
 * comm/a2a_hier.c — node-deduplicated two-stage token exchange (DeepEP-style).
 *
 * A token that needs several experts on one remote node crosses the network once, to a
 * "forwarder" on that node (the rank with the sender's local index, modulo the node's
 * size), which hands it on inside the node; combine runs the reverse and reduces inside the
 * destination node, so it also sends one vector per (token, node). Units:
 *
 *   A-unit (origin -> forwarder on node N): header {token t, n}, k entries
 *          {dest rank, dest local expert, slot j, weight} (n used), the row (d floats).
 *          A token's pairs on the origin's own node form an "own" A-unit, kept locally.
 *   B-unit (forwarder -> destination rank R on the same node): header {A-unit index u, n},
 *          entries for R only, the row. A row reaches a rank once, whatever the number of
 *          its experts there.
 * A unit's metadata (header and entries, `mb` bytes) and its row live in separate buffers,
 * unit i's row at row i of the row buffer beside the metadata buffer, and travel as two
 * messages per peer (metadata, then rows): row buffers follow params.rows_opaque (a2a.h;
 * under the simulation model they are never touched and no row is copied or summed, while
 * every header, entry, count and message is that of a real run).
 *
 * dispatch: count and exchange A-units (MPI_Alltoall of counts, then the inter-node
 *   transport: only inter-node traffic), build and exchange B-units (only intra-node
 *   traffic, MPI point to point), then copy each B-unit row into the batch of every local
 *   expert it names.
 * combine: each destination rank sums w_j * y_j over the entries of each B-unit and
 *   returns one vector per B-unit; the forwarder sums the vectors of an A-unit in
 *   increasing destination rank order and returns one vector per A-unit; the origin adds
 *   the node partials of each token in increasing node order.
 *
 * Transport: the inter-node stage (A-units in dispatch, A-return vectors in combine) goes
 * through a moe__hier_transport_t (comm/a2a_hier.h); the intra-node stage (B-units and
 * B-returns) always through MPI. The "hier" backend plugs in the MPI transport below
 * (point to point, non-empty blocks only); "ucx" (comm/a2a_ucx.c) plugs in UCP puts. Counts
 * always go over MPI.
 *
 * Pipelined form (params->inter_chunks > 1 and a transport with the chunked form): the
 * inter-node stage goes in pieces and overlaps stage B (dispatch) and the node-level
 * reductions (combine); see "pipelined form" below. Same batch, same sums, same output.
 *
 * Always: every kept pair is computed exactly once; the output equals the flat exchange
 * up to floating-point summation order (partials grouped by node, then by rank); bytes
 * crossing nodes = (number of distinct (token, remote node) pairs) x unit size (metadata +
 * row).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "a2a_common.h"
#include "a2a_hier.h"
#include "moerun/base/mpicheck.h"
#include "moerun/base/touch.h"

typedef struct {
    int32_t t; /* A: origin token; B: A-unit index at the forwarder */
    int32_t n; /* entries in use */
} hier_hdr_t;

typedef struct {
    int32_t rank;   /* destination rank */
    int32_t expert; /* local expert at the destination */
    int32_t slot;   /* j */
    float   weight;
} hier_ent_t;

/* Point-to-point transfers (hier_p2p): the communicator, requests for 4 per rank, and the
 * sends in flight at most (params.window; 0: no bound). */
typedef struct hier_p2p {
    MPI_Comm     comm;
    moe_log_t   *log;
    int          P, rank, window;
    MPI_Request *rq; /* [4 * P] */
} hier_p2p_t;

typedef struct a2a_hier {
    MPI_Comm   comm;
    moe_log_t *log;
    const moe__hier_transport_t *inter; /* inter-node transport */
    void      *tp;           /* its state */
    int        P, rank, d, k, T, nnodes, mynode, n_local;
    int       *node;         /* [P] */
    moe__a2a_peers_t peers;  /* (P, rank, node) for traffic accounting */
    int       *peer;         /* [nnodes] my forwarder on each node */
    size_t     ub;           /* unit bytes: metadata + row (traffic) */
    size_t     mb;           /* metadata bytes of a unit: header + k entries */
    int        opaque;       /* params.rows_opaque: rows never copied or summed */
    hier_p2p_t x2;           /* the intra-node stage's point-to-point transfers */
    int       *a_scnt, *a_rcnt, *a_sdsp, *a_rdsp; /* [P] units, then metadata bytes */
    int       *b_scnt, *b_rcnt, *b_sdsp, *b_rdsp;
    int       *v_scnt, *v_rcnt, *v_sdsp, *v_rdsp; /* [P] floats for vector returns */
    int       *ucnt_s, *ucnt_r;                   /* [P] unit counts */
    int64_t   *cursor;       /* [P] packing cursors */
    int        n_own, n_asend, n_arecv, n_bsend, n_brecv;
    moe__hier_buf_t own, asend, arecv, bsend, brecv;   /* unit metadata buffers */
    moe__hier_buf_t own_r, asend_r, arecv_r, bsend_r, brecv_r; /* their rows */
    char      *arecv_p, *brecv_p; /* received units (in arecv/brecv, or transport space) */
    float     *arecv_rp, *brecv_rp; /* their rows (in arecv_r/brecv_r, or transport space) */
    moe__hier_buf_t bsend_u;      /* int32 [n_bsend]: A-unit index of each B-unit sent */
    moe__hier_buf_t brow;         /* int64 [n_brecv * k]: batch row of each B-unit entry */
    moe__hier_buf_t bx, by;       /* batch rows */
    moe__hier_buf_t vb, vret, npart, aret;             /* float vectors (rows) */
    moe__hier_buf_t tok_unit;     /* int32 [T * nnodes]: unit of token t on node N, -1 none */
    int64_t   *offset;       /* [n_local + 1] */
    int64_t   *ecnt;         /* [n_local] */
    /* pipelined form (chunks > 1): steps s = 0 (own units), 1..chunks (piece s-1 of the
     * received A-units); one B message per (step, rank of my node) each way */
    int        chunks;       /* pieces of the inter-node stage; 1: not pipelined */
    int        nl, li;       /* ranks on my node, my position among them */
    int       *lrank;        /* [nl] ranks of my node, increasing */
    int       *tr_s, *tr_r;  /* [P] traffic scratch */
    int       *bs_off, *bs_n;/* [(chunks+1) * nl] B-units sent per (step, node rank): first
                              * slot in bsend, count */
    int       *br_off, *br_n;/* [(chunks+1) * nl] the same for B-units received (index b of
                              * the received B-units, see bref) */
    int       *next_step;    /* [nl] next step expected from each node rank */
    MPI_Request *rq;         /* [2 * (chunks+1) * nl]: dispatch: metadata, rows sent;
                              * combine: returns received, sent */
    int        L;            /* most local experts of any rank */
    int       *pcnt_s;       /* [P * L] kept pairs I send to (rank, its local expert) */
    int       *xcnt_s, *xcnt_r; /* [P * (1 + L)] count exchange: A-units, then pcnt */
    int64_t   *bcur;         /* [P * L] batch row cursor of (origin, local expert): the batch is
                              * filled as B-units arrive, at the rows of the unpipelined order */
    int       *via;          /* [P] the rank of my node that forwards rank o's units to my node
                              * (o itself if o is on my node) */
    moe__hier_buf_t fresh;   /* char [U]: unit not yet added to in the node reduction */
    moe__hier_buf_t bref;    /* int64 [n_brecv]: where B-unit b is: i >= 0 unit i of brecv,
                              * i < 0 unit -i-1 of bsend (the forwarder's B-units for itself
                              * are used in place, not sent) */
    int        n_bphys;      /* units in brecv */
    moe__hier_xfer_t axf;    /* the pipelined A transfer (kept for the transport until finish) */
    int        asent;        /* A pieces sent so far */
} a2a_hier_t;

int moe__hier_buf_grow(moe__hier_buf_t *b, size_t bytes)
{
    void *p;

    if (bytes <= b->cap && b->p)
        return 0;
    /* a quarter over what is asked (and at least double): the step-to-step variation of the
     * routing then seldom grows a buffer again, since each growth page-faults fresh memory
     * (on the test bed a step whose buffers grew took several times a steady one) */
    bytes += bytes / 4;
    bytes = bytes < 2 * b->cap ? 2 * b->cap : bytes;
    if (b->opaque) { /* nothing to keep; floats, rounded up (+ 64 bytes as below) */
        p = moe__a2a_rows_alloc((bytes + 64 + sizeof(float) - 1) / sizeof(float), 1);
        if (p == NULL)
            return -1;
        moe__a2a_rows_free(b->p, 1);
    } else {
        size_t keep = b->p != NULL ? b->cap + 64 : 0;
        p = realloc(b->p, bytes + 64);
        if (p == NULL)
            return -1;
        moe_touch((char *)p + keep, bytes + 64 - keep); /* resident now, not row by row */
    }
    b->p = p;
    b->cap = bytes;
    return 0;
}

void moe__hier_buf_free(moe__hier_buf_t *b)
{
    if (b->opaque)
        moe__a2a_rows_free(b->p, 1);
    else
        free(b->p);
    b->p = NULL;
    b->cap = 0;
}

#define HIER_UNIT(base, i, mb) ((char *)(base) + (size_t)(i) * (mb))
#define HIER_ENT(u) ((hier_ent_t *)((char *)(u) + sizeof(hier_hdr_t)))
#define HIER_ROW(c, rows, i) ((float *)(rows) + (size_t)(i) * (size_t)(c)->d)

void moe__a2a_hier_destroy(void *vctx)
{
    a2a_hier_t *c = vctx;
    moe__hier_buf_t *bufs[] = {&c->own, &c->asend, &c->arecv, &c->bsend, &c->brecv, &c->bsend_u,
                          &c->brow, &c->bx, &c->by, &c->vb, &c->vret, &c->npart, &c->aret,
                          &c->tok_unit, &c->bref, &c->fresh, &c->own_r, &c->asend_r,
                          &c->arecv_r, &c->bsend_r, &c->brecv_r};
    size_t      i;

    if (c == NULL)
        return;
    if (c->inter && c->tp)
        c->inter->cleanup(c->tp);
    if (c->comm != MPI_COMM_NULL)
        MPI_Comm_free(&c->comm);
    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        moe__hier_buf_free(bufs[i]);
    free(c->node), free(c->peer), free(c->cursor), free(c->offset), free(c->ecnt);
    free(c->a_scnt), free(c->a_rcnt), free(c->a_sdsp), free(c->a_rdsp);
    free(c->b_scnt), free(c->b_rcnt), free(c->b_sdsp), free(c->b_rdsp);
    free(c->v_scnt), free(c->v_rcnt), free(c->v_sdsp), free(c->v_rdsp);
    free(c->ucnt_s), free(c->ucnt_r);
    free(c->lrank), free(c->tr_s), free(c->tr_r), free(c->bs_off), free(c->bs_n);
    free(c->br_off), free(c->br_n), free(c->next_step), free(c->rq);
    free(c->pcnt_s), free(c->xcnt_s), free(c->xcnt_r), free(c->bcur), free(c->via);
    free(c->x2.rq);
    free(c);
}

moe_status_t moe__a2a_hier_create(const moe_a2a_params_t *prm,
                                  const moe__hier_transport_t *inter, void **ctx_p)
{
    a2a_hier_t  *c = calloc(1, sizeof(*c));
    moe_status_t st = MOE_OK;
    int          P, r, n, *size = NULL, *first_li = NULL, li = 0;
    moe__hier_env_t env;

    if (c == NULL)
        return MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    c->comm = MPI_COMM_NULL;
    c->log = prm->log;
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_dup(prm->comm, &c->comm), st, err);
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_size(c->comm, &c->P), st, err);
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_rank(c->comm, &c->rank), st, err);
    P = c->P;
    c->d = prm->d_model;
    c->k = prm->top_k;
    c->T = prm->max_tokens;
    c->n_local = prm->local_experts[c->rank];
    c->mb = sizeof(hier_hdr_t) + (size_t)c->k * sizeof(hier_ent_t);
    c->ub = c->mb + (size_t)c->d * sizeof(float);
    c->opaque = prm->rows_opaque;
    {
        moe__hier_buf_t *rows[] = {&c->own_r, &c->asend_r, &c->arecv_r, &c->bsend_r, &c->brecv_r,
                                   &c->bx, &c->by, &c->vb, &c->vret, &c->npart, &c->aret};
        size_t           i;
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
            rows[i]->opaque = c->opaque;
    }
    c->node = calloc((size_t)P, sizeof(int));
#define HIER_ARR(x) ((x) = calloc((size_t)P + 1, sizeof(*(x)))) == NULL
    if (!c->node || HIER_ARR(c->a_scnt) || HIER_ARR(c->a_rcnt) || HIER_ARR(c->a_sdsp) ||
        HIER_ARR(c->a_rdsp) || HIER_ARR(c->b_scnt) || HIER_ARR(c->b_rcnt) ||
        HIER_ARR(c->b_sdsp) || HIER_ARR(c->b_rdsp) || HIER_ARR(c->v_scnt) ||
        HIER_ARR(c->v_rcnt) || HIER_ARR(c->v_sdsp) || HIER_ARR(c->v_rdsp) ||
        HIER_ARR(c->ucnt_s) || HIER_ARR(c->ucnt_r) || HIER_ARR(c->cursor) ||
        (c->x2.rq = malloc((size_t)4 * P * sizeof(MPI_Request))) == NULL)
        goto err_nomem;
#undef HIER_ARR
    for (r = 0; r < P; r++) {
        c->node[r] = prm->node_of_rank ? prm->node_of_rank[r] : 0;
        if (c->node[r] + 1 > c->nnodes)
            c->nnodes = c->node[r] + 1;
    }
    c->mynode = c->node[c->rank];
    c->x2.comm = c->comm;
    c->x2.log = c->log;
    c->x2.P = P;
    c->x2.rank = c->rank;
    c->x2.window = prm->window;
    c->peers.nranks = P;
    c->peers.rank = c->rank;
    c->peers.node = c->node;
    /* local index of each rank = its position among the ranks of its node */
    size = calloc((size_t)c->nnodes, sizeof(int));
    first_li = malloc((size_t)c->nnodes * sizeof(int));
    c->peer = malloc((size_t)c->nnodes * sizeof(int));
    c->offset = calloc((size_t)c->n_local + 1, sizeof(int64_t));
    c->ecnt = calloc((size_t)c->n_local + 1, sizeof(int64_t));
    if (!size || !first_li || !c->peer || !c->offset || !c->ecnt)
        goto err_nomem;
    for (r = 0; r < P; r++) {
        if (r == c->rank)
            li = size[c->node[r]];
        size[c->node[r]]++;
    }
    /* my forwarder on node N: its rank with local index li mod size(N) */
    for (n = 0; n < c->nnodes; n++) {
        int want = size[n] ? li % size[n] : 0, seen = 0;
        c->peer[n] = -1;
        for (r = 0; r < P && c->peer[n] < 0; r++)
            if (c->node[r] == n && seen++ == want)
                c->peer[n] = r;
    }
    if (moe__hier_buf_grow(&c->tok_unit, (size_t)c->T * c->nnodes * sizeof(int32_t)))
        goto err_nomem;
    /* pipelining: only over a transport with the chunked form */
    c->chunks = prm->inter_chunks > 1 && inter->start ? prm->inter_chunks : 1;
    c->nl = size[c->mynode];
    c->lrank = malloc((size_t)c->nl * sizeof(int));
    c->tr_s = calloc((size_t)P, sizeof(int));
    c->tr_r = calloc((size_t)P, sizeof(int));
    n = (c->chunks + 1) * c->nl;
    c->bs_off = calloc((size_t)n, sizeof(int));
    c->bs_n = calloc((size_t)n, sizeof(int));
    c->br_off = calloc((size_t)n, sizeof(int));
    c->br_n = calloc((size_t)n, sizeof(int));
    c->next_step = calloc((size_t)c->nl, sizeof(int));
    c->rq = malloc((size_t)2 * n * sizeof(MPI_Request));
    for (r = 0; r < P; r++)
        if (prm->local_experts[r] > c->L)
            c->L = prm->local_experts[r];
    c->pcnt_s = calloc((size_t)P * c->L + 1, sizeof(int));
    c->xcnt_s = calloc((size_t)P * (c->L + 1), sizeof(int));
    c->xcnt_r = calloc((size_t)P * (c->L + 1), sizeof(int));
    c->bcur = calloc((size_t)P * c->L + 1, sizeof(int64_t));
    c->via = calloc((size_t)P, sizeof(int));
    if (!c->lrank || !c->tr_s || !c->tr_r || !c->bs_off || !c->bs_n || !c->br_off ||
        !c->br_n || !c->next_step || !c->rq || !c->pcnt_s || !c->xcnt_s || !c->xcnt_r ||
        !c->bcur || !c->via)
        goto err_nomem;
    for (r = 0, n = 0; r < P; r++)
        if (c->node[r] == c->mynode) {
            if (r == c->rank)
                c->li = n;
            c->lrank[n++] = r;
        }
    /* rank o's forwarder on my node: my node's rank with o's local index modulo my node's
     * size (c->peer seen from the other side; first_li counts the ranks seen per node) */
    memset(first_li, 0, (size_t)c->nnodes * sizeof(int));
    for (r = 0; r < P; r++) {
        int lo = first_li[c->node[r]]++;
        c->via[r] = c->node[r] == c->mynode ? r : c->lrank[lo % c->nl];
    }
    env.comm = c->comm;
    env.nranks = P;
    env.rank = c->rank;
    env.node = c->node;
    env.log = c->log;
    env.window = prm->window;
    st = inter->init(&env, &c->tp);
    if (st != MOE_OK)
        goto err;
    c->inter = inter;
    free(size);
    free(first_li);
    *ctx_p = c;
    return MOE_OK;

err_nomem:
    st = MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
err:
    free(size);
    free(first_li);
    moe__a2a_hier_destroy(c);
    return st;
}

/* Tags of the MPI transfers; the pieces of different chunks, ids and parts apart. */
enum {
    HIER_TAG_INTER = 0x4c00,      /* + id * 0x80 + piece: chunked inter-node metadata */
    HIER_TAG_B = 0x4e00,          /* + step: pipelined B-units, metadata */
    HIER_TAG_BR = 0x4f00,         /* + step: pipelined B returns */
    HIER_TAG_BROWS = 0x5000,      /* + step: pipelined B-units, rows */
    HIER_TAG_INTER_ROWS = 0x5100, /* + id * 0x80 + piece: chunked inter-node rows */
    HIER_TAG_P2P = 0x5200,        /* hier_p2p, first part */
    HIER_TAG_P2P_ROWS = 0x5201    /* hier_p2p, rows */
};

/* Units [*first, *first + *n) (absolute, in units of xf->unit elements) of the block cnt/dsp
 * that piece c of nchunk covers. */
static void hier_piece_units(const moe__hier_xfer_t *xf, int cnt, int dsp, int c, int nchunk,
                             int *first, int *n)
{
    int units = cnt / xf->unit, lo = moe__hier_piece(units, c, nchunk);

    *first = dsp / xf->unit + lo;
    *n = moe__hier_piece(units, c + 1, nchunk) - lo;
}

/* One alltoallv-shaped transfer (both parts) point to point into rbuf (and xf->rrows), grown
 * as needed: a receive from every rank with a non-empty block for me, a send to every rank I
 * have a non-empty block for (in ring order from the next rank; with a window W, in rounds
 * of W peers, each round completed before the next: the receives are all posted first, so
 * a round never waits on its receivers' progress), my own block copied. Empty blocks cost
 * nothing (an MPI_Alltoallv under SMPI's pairwise algorithm simulates P^2 messages, empty
 * ones included). The own block's copy is skipped for opaque space. */
static moe_status_t hier_p2p(hier_p2p_t *x, const moe__hier_xfer_t *xf, moe__hier_buf_t *rbuf,
                             void **rdata_p)
{
    int    P = x->P, me = x->rank, i, r, n = 0, nr, np, R = xf->rows ? xf->row : 0, u = xf->unit;
    size_t es = xf->elem, fs = sizeof(float);
    char  *rb;
    float *rr = NULL;

    if (moe__hier_buf_grow(rbuf, xf->rtotal * es) ||
        (R && moe__hier_buf_grow(xf->rrows, xf->rtotal / (size_t)u * (size_t)R * fs)))
        return MOE_ERROR_SET(x->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    rb = rbuf->p;
    if (R)
        rr = xf->rrows->p;
    for (r = 0; r < P; r++) {
        if (r == me || xf->rcnt[r] == 0)
            continue;
        MOE_MPI_CHECK(x->log, MPI_Irecv(rb + (size_t)xf->rdsp[r] * es, xf->rcnt[r], xf->type, r,
                                        HIER_TAG_P2P, x->comm, &x->rq[n++]));
        if (R)
            MOE_MPI_CHECK(x->log, MPI_Irecv(rr + (size_t)(xf->rdsp[r] / u) * R,
                                            xf->rcnt[r] / u * R, MPI_FLOAT, r, HIER_TAG_P2P_ROWS,
                                            x->comm, &x->rq[n++]));
    }
    for (i = 1, nr = n, np = 0; i < P; i++) {
        r = (me + i) % P;
        if (xf->scnt[r] == 0)
            continue;
        if (x->window > 0 && np++ == x->window) { /* round full: complete it first */
            MOE_MPI_CHECK(x->log, MPI_Waitall(n - nr, x->rq + nr, MPI_STATUSES_IGNORE));
            n = nr;
            np = 1;
        }
        MOE_MPI_CHECK(x->log, MPI_Isend((const char *)xf->sbuf + (size_t)xf->sdsp[r] * es,
                                        xf->scnt[r], xf->type, r, HIER_TAG_P2P, x->comm,
                                        &x->rq[n++]));
        if (R)
            MOE_MPI_CHECK(x->log, MPI_Isend(xf->rows + (size_t)(xf->sdsp[r] / u) * R,
                                            xf->scnt[r] / u * R, MPI_FLOAT, r, HIER_TAG_P2P_ROWS,
                                            x->comm, &x->rq[n++]));
    }
    if (xf->scnt[me] > 0) {
        if (!rbuf->opaque)
            memcpy(rb + (size_t)xf->rdsp[me] * es, (const char *)xf->sbuf + (size_t)xf->sdsp[me] * es,
                   (size_t)xf->scnt[me] * es);
        if (R)
            moe__a2a_rows_copy(xf->rrows->opaque, rr + (size_t)(xf->rdsp[me] / u) * R,
                               xf->rows + (size_t)(xf->sdsp[me] / u) * R,
                               (size_t)(xf->scnt[me] / u) * R * fs);
    }
    MOE_MPI_CHECK(x->log, MPI_Waitall(n, x->rq, MPI_STATUSES_IGNORE));
    *rdata_p = rb;
    if (R)
        *xf->rrows_p = rr;
    return MOE_OK;
}

/* The MPI inter-node transport of "hier": point to point (hier_p2p), and for the chunked
 * form, per id, the transfer and its requests: HIER_RQ(tp, id, part, dir, c, r), part 0 the
 * first part and 1 the rows, dir 0 receives and 1 sends, piece c, rank r. With a window W
 * (env.window > 0) the sends of send_chunk are queued (piece c * P + rank, in call order)
 * and at most W (piece, peer) transfers are in flight: each later call of the transport
 * (send_chunk, test_chunk, finish) retires the completed ones and posts the next. Every
 * receive is posted by start, so a queued send never waits for its receiver to act. */
typedef struct hier_mpi_tp {
    hier_p2p_t x1;
    int        window;
    struct {
        moe__hier_xfer_t xf;
        int              nchunk;
        char            *rbase;
        float           *rrows;
        MPI_Request     *rq;
        size_t           cap; /* requests allocated */
        int             *q;   /* [nchunk * P] queued sends; q[qhead..qn) not posted yet */
        int              qn, qhead;
        int             *fl;  /* [window] sends in flight */
        int              nfl;
    } x[2];
} hier_mpi_tp_t;

#define HIER_RQ(tp, id, part, dir, c, r)                                                     \
    (tp)->x[id].rq[(((size_t)(part) * 2 + (dir)) * (size_t)(tp)->x[id].nchunk + (size_t)(c)) * \
                       (size_t)(tp)->x1.P + (size_t)(r)]

static moe_status_t hier_mpi_init(const moe__hier_env_t *env, void **tp_p)
{
    hier_mpi_tp_t *tp = calloc(1, sizeof(*tp));

    if (tp == NULL || (tp->x1.rq = malloc((size_t)4 * env->nranks * sizeof(MPI_Request))) == NULL) {
        free(tp);
        return MOE_ERROR_SET(env->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    }
    tp->x1.window = env->window;
    tp->x1.comm = env->comm;
    tp->x1.log = env->log;
    tp->x1.P = env->nranks;
    tp->x1.rank = env->rank;
    tp->window = env->window;
    *tp_p = tp;
    return MOE_OK;
}

static moe_status_t hier_mpi_exchange(void *vtp, const moe__hier_xfer_t *xf,
                                      moe__hier_buf_t *rbuf, void **rdata_p)
{
    hier_mpi_tp_t *tp = vtp;

    return hier_p2p(&tp->x1, xf, rbuf, rdata_p);
}

static moe_status_t hier_mpi_start(void *vtp, int id, const moe__hier_xfer_t *xf, int nchunk,
                                   moe__hier_buf_t *rbuf, void **rdata_p)
{
    hier_mpi_tp_t *tp = vtp;
    size_t         need = (size_t)4 * nchunk * tp->x1.P, i, fs = sizeof(float);
    int            c, r, first, n, P = tp->x1.P, R = xf->rows ? xf->row : 0;
    moe_log_t     *log = tp->x1.log;

    if (need > tp->x[id].cap) {
        MPI_Request *rq = realloc(tp->x[id].rq, need * sizeof(*rq));
        int         *q = realloc(tp->x[id].q, need / 4 * sizeof(*q));
        if (rq != NULL)
            tp->x[id].rq = rq;
        if (q != NULL)
            tp->x[id].q = q;
        if (rq == NULL || q == NULL)
            return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "hier exchange: out of memory");
        tp->x[id].cap = need;
    }
    if (tp->window > 0 && tp->x[id].fl == NULL &&
        (tp->x[id].fl = malloc((size_t)tp->window * sizeof(int))) == NULL)
        return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    tp->x[id].qn = tp->x[id].qhead = tp->x[id].nfl = 0;
    if (moe__hier_buf_grow(rbuf, xf->rtotal * xf->elem) ||
        (R && moe__hier_buf_grow(xf->rrows, xf->rtotal / (size_t)xf->unit * (size_t)R * fs)))
        return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    tp->x[id].xf = *xf;
    tp->x[id].nchunk = nchunk;
    tp->x[id].rbase = rbuf->p;
    tp->x[id].rrows = R ? xf->rrows->p : NULL;
    for (i = 0; i < need; i++)
        tp->x[id].rq[i] = MPI_REQUEST_NULL;
    for (c = 0; c < nchunk; c++)
        for (r = 0; r < P; r++) {
            hier_piece_units(xf, xf->rcnt[r], xf->rdsp[r], c, nchunk, &first, &n);
            if (n == 0)
                continue;
            MOE_MPI_CHECK(log, MPI_Irecv((char *)rbuf->p + (size_t)first * xf->unit * xf->elem,
                                         n * xf->unit, xf->type, r, HIER_TAG_INTER + id * 0x80 + c,
                                         tp->x1.comm, &HIER_RQ(tp, id, 0, 0, c, r)));
            if (R)
                MOE_MPI_CHECK(log, MPI_Irecv(tp->x[id].rrows + (size_t)first * R, n * R, MPI_FLOAT,
                                             r, HIER_TAG_INTER_ROWS + id * 0x80 + c, tp->x1.comm,
                                             &HIER_RQ(tp, id, 1, 0, c, r)));
        }
    *rdata_p = rbuf->p;
    if (R)
        *xf->rrows_p = tp->x[id].rrows;
    return MOE_OK;
}

/* Posts piece c to rank r (metadata, then rows). */
static moe_status_t hier_mpi_post(hier_mpi_tp_t *tp, int id, int c, int r)
{
    const moe__hier_xfer_t *xf = &tp->x[id].xf;
    int                     first, n, R = xf->rows ? xf->row : 0;

    hier_piece_units(xf, xf->scnt[r], xf->sdsp[r], c, tp->x[id].nchunk, &first, &n);
    MOE_MPI_CHECK(tp->x1.log,
                  MPI_Isend((const char *)xf->sbuf + (size_t)first * xf->unit * xf->elem,
                            n * xf->unit, xf->type, r, HIER_TAG_INTER + id * 0x80 + c,
                            tp->x1.comm, &HIER_RQ(tp, id, 0, 1, c, r)));
    if (R)
        MOE_MPI_CHECK(tp->x1.log, MPI_Isend(xf->rows + (size_t)first * R, n * R, MPI_FLOAT, r,
                                            HIER_TAG_INTER_ROWS + id * 0x80 + c, tp->x1.comm,
                                            &HIER_RQ(tp, id, 1, 1, c, r)));
    return MOE_OK;
}

/* Window: retires the sends in flight that completed and posts queued ones up to the
 * window; with `all`, until every queued send is posted (waiting for room). */
static moe_status_t hier_mpi_pump(hier_mpi_tp_t *tp, int id, int all)
{
    int          i, P = tp->x1.P, flag, *fl = tp->x[id].fl;
    moe_status_t e;

    for (;;) {
        for (i = 0; i < tp->x[id].nfl;) {
            int         c = fl[i] / P, r = fl[i] % P;
            MPI_Request two[2] = {HIER_RQ(tp, id, 0, 1, c, r), HIER_RQ(tp, id, 1, 1, c, r)};
            MOE_MPI_CHECK(tp->x1.log, MPI_Testall(2, two, &flag, MPI_STATUSES_IGNORE));
            HIER_RQ(tp, id, 0, 1, c, r) = two[0];
            HIER_RQ(tp, id, 1, 1, c, r) = two[1];
            if (flag)
                fl[i] = fl[--tp->x[id].nfl];
            else
                i++;
        }
        while (tp->x[id].nfl < tp->window && tp->x[id].qhead < tp->x[id].qn) {
            int cr = tp->x[id].q[tp->x[id].qhead++];
            if ((e = hier_mpi_post(tp, id, cr / P, cr % P)) != MOE_OK)
                return e;
            fl[tp->x[id].nfl++] = cr;
        }
        if (!all || tp->x[id].qhead == tp->x[id].qn)
            return MOE_OK;
        sched_yield();
    }
}

static moe_status_t hier_mpi_send_chunk(void *vtp, int id, int c)
{
    hier_mpi_tp_t          *tp = vtp;
    const moe__hier_xfer_t *xf = &tp->x[id].xf;
    int                     i, r, first, n, C = tp->x[id].nchunk, P = tp->x1.P;
    moe_status_t            e;

    for (i = 1; i <= P; i++) { /* starting after myself, so peers are not all hit at once */
        r = (tp->x1.rank + i) % P;
        hier_piece_units(xf, xf->scnt[r], xf->sdsp[r], c, C, &first, &n);
        if (n == 0)
            continue;
        if (tp->window > 0)
            tp->x[id].q[tp->x[id].qn++] = c * P + r;
        else if ((e = hier_mpi_post(tp, id, c, r)) != MOE_OK)
            return e;
    }
    return tp->window > 0 ? hier_mpi_pump(tp, id, 0) : MOE_OK;
}

static moe_status_t hier_mpi_test_chunk(void *vtp, int id, int c, int *done)
{
    hier_mpi_tp_t *tp = vtp;
    moe_status_t   e;

    if (tp->window > 0 && (e = hier_mpi_pump(tp, id, 0)) != MOE_OK)
        return e;
    MOE_MPI_CHECK(tp->x1.log, MPI_Testall(tp->x1.P, &HIER_RQ(tp, id, 0, 0, c, 0), done,
                                          MPI_STATUSES_IGNORE));
    if (*done && tp->x[id].rrows)
        MOE_MPI_CHECK(tp->x1.log, MPI_Testall(tp->x1.P, &HIER_RQ(tp, id, 1, 0, c, 0), done,
                                              MPI_STATUSES_IGNORE));
    return MOE_OK;
}

static moe_status_t hier_mpi_finish(void *vtp, int id)
{
    hier_mpi_tp_t *tp = vtp;
    moe_status_t   e;

    if (tp->window > 0 && (e = hier_mpi_pump(tp, id, 1)) != MOE_OK)
        return e;
    MOE_MPI_CHECK(tp->x1.log, MPI_Waitall(4 * tp->x[id].nchunk * tp->x1.P, tp->x[id].rq,
                                          MPI_STATUSES_IGNORE));
    return MOE_OK;
}

static void hier_mpi_cleanup(void *vtp)
{
    hier_mpi_tp_t *tp = vtp;

    if (tp == NULL)
        return;
    free(tp->x[0].rq), free(tp->x[1].rq), free(tp->x1.rq);
    free(tp->x[0].q), free(tp->x[1].q), free(tp->x[0].fl), free(tp->x[1].fl);
    free(tp);
}

static const moe__hier_transport_t hier_mpi_transport = {
    .name = "mpi",
    .init = hier_mpi_init,
    .exchange_units = hier_mpi_exchange,
    .exchange_vectors = hier_mpi_exchange,
    .cleanup = hier_mpi_cleanup,
    .start = hier_mpi_start,
    .send_chunk = hier_mpi_send_chunk,
    .test_chunk = hier_mpi_test_chunk,
    .finish = hier_mpi_finish,
};

/* Exchanges unit counts, then units: metadata from sbuf, rows from srows (inter-node stage
 * through the transport, intra-node stage over MPI). Received metadata at *rdata_p, rows at
 * *rrows_p; their number in *nrecv. */
static moe_status_t hier_exchange_units(a2a_hier_t *c, int inter, const void *sbuf,
                                        const float *srows, moe__hier_buf_t *rbuf,
                                        char **rdata_p, moe__hier_buf_t *rrows, float **rrows_p,
                                        int *scnt, int *sdsp, int *rcnt, int *rdsp, int *nrecv,
                                        moe_a2a_stats_t *st, double *t_counts)
{
    double           t0 = MPI_Wtime();
    moe__hier_xfer_t xf;
    void            *rdata = NULL;
    moe_status_t     s;

    MOE_MPI_CHECK(c->log, MPI_Alltoall(c->ucnt_s, 1, MPI_INT, c->ucnt_r, 1, MPI_INT, c->comm));
    moe__a2a_traffic(&c->peers, c->ucnt_s, c->ucnt_r, 0, 0, st); /* message counts only */
    *t_counts += MPI_Wtime() - t0;
    moe__a2a_layout(c->P, c->ucnt_s, c->mb, scnt, sdsp);
    *nrecv = (int)moe__a2a_layout(c->P, c->ucnt_r, c->mb, rcnt, rdsp);
    memset(&xf, 0, sizeof(xf));
    xf.sbuf = sbuf;
    xf.scnt = scnt;
    xf.sdsp = sdsp;
    xf.rcnt = rcnt;
    xf.rdsp = rdsp;
    xf.rtotal = (size_t)*nrecv * c->mb;
    xf.elem = 1;
    xf.type = MPI_BYTE;
    xf.unit = (int)c->mb;
    xf.rows = srows;
    xf.row = c->d;
    xf.rrows = rrows;
    xf.rrows_p = rrows_p;
    t0 = MPI_Wtime();
    s = inter ? c->inter->exchange_units(c->tp, &xf, rbuf, &rdata)
              : hier_p2p(&c->x2, &xf, rbuf, &rdata);
    if (s != MOE_OK)
        return s;
    if (inter)
        st->t_dispatch_inter += MPI_Wtime() - t0;
    *rdata_p = rdata;
    /* two messages per peer: metadata, rows */
    moe__a2a_traffic(&c->peers, c->ucnt_s, c->ucnt_r, c->mb, 1, st);
    moe__a2a_traffic(&c->peers, c->ucnt_s, c->ucnt_r, (size_t)c->d * sizeof(float), 1, st);
    return MOE_OK;
}

/* The u-th unit a forwarder handles: its own units first, then those it received. */
/*
 * The combine's inter-node return (both forms): the node-level partial sums of the A-units
 * this rank received go back to their origins, the A exchange's counts reversed, in floats.
 */
static void hier_areturn_xfer(a2a_hier_t *c, moe__hier_xfer_t *xf, float *np_, int d)
{
    int i;

    for (i = 0; i < c->P; i++) {
        c->v_scnt[i] = c->a_rcnt[i] / (int)c->mb * d;
        c->v_sdsp[i] = c->a_rdsp[i] / (int)c->mb * d;
        c->v_rcnt[i] = c->a_scnt[i] / (int)c->mb * d;
        c->v_rdsp[i] = c->a_sdsp[i] / (int)c->mb * d;
    }
    memset(xf, 0, sizeof(*xf));
    xf->sbuf = np_ + (size_t)c->n_own * d;
    xf->scnt = c->v_scnt;
    xf->sdsp = c->v_sdsp;
    xf->rcnt = c->v_rcnt;
    xf->rdsp = c->v_rdsp;
    xf->rtotal = (size_t)c->n_asend * d;
    xf->elem = sizeof(float);
    xf->type = MPI_FLOAT;
    xf->unit = d;
}

static char *hier_fwd_unit(const a2a_hier_t *c, int u)
{
    return u < c->n_own ? HIER_UNIT(c->own.p, u, c->mb)
                        : HIER_UNIT(c->arecv_p, u - c->n_own, c->mb);
}

/* The row of the u-th unit a forwarder handles. */
static const float *hier_fwd_row(const a2a_hier_t *c, int u)
{
    return u < c->n_own ? HIER_ROW(c, c->own_r.p, u) : HIER_ROW(c, c->arecv_rp, u - c->n_own);
}

/* Received B-unit b (pipelined: through bref). */
static char *hier_bunit(const a2a_hier_t *c, int b)
{
    int64_t i;

    if (c->chunks == 1)
        return HIER_UNIT(c->brecv_p, b, c->mb);
    i = ((const int64_t *)c->bref.p)[b];
    return i >= 0 ? HIER_UNIT(c->brecv.p, i, c->mb) : HIER_UNIT(c->bsend.p, -i - 1, c->mb);
}

/* The row of received B-unit b. A forwarder's B-units for itself (pipelined form) carry only
 * their header and entries: their row is read from the forwarded unit, never copied. */
static const float *hier_bunit_row(const a2a_hier_t *c, int b)
{
    int64_t i;

    if (c->chunks == 1)
        return HIER_ROW(c, c->brecv_rp, b);
    i = ((const int64_t *)c->bref.p)[b];
    return i >= 0 ? HIER_ROW(c, c->brecv_r.p, i)
                  : hier_fwd_row(c, ((const int32_t *)c->bsend_u.p)[-i - 1]);
}

/* Pipelined form, as B-unit b arrives: its row goes into the batch once per entry, at the
 * next row of the entry's (origin, local expert) range (the entries of a pipelined B-unit
 * carry the origin rank in `rank`), and brow notes where. */
static void hier_batch_take(a2a_hier_t *c, int b)
{
    const char       *bu = hier_bunit(c, b);
    const hier_ent_t *e = HIER_ENT(bu);
    const float      *row = hier_bunit_row(c, b);
    int               i, n = ((const hier_hdr_t *)bu)->n;

    for (i = 0; i < n; i++) {
        int64_t r = c->bcur[(size_t)e[i].rank * c->L + e[i].expert]++;
        ((int64_t *)c->brow.p)[(size_t)b * c->k + i] = r;
        moe__a2a_rows_copy(c->opaque, (float *)c->bx.p + r * c->d, row,
                           (size_t)c->d * sizeof(float));
    }
}

/* Whether entry i is the first of its unit for its destination rank (one B-unit per rank). */
static int hier_first_for_rank(const hier_ent_t *e, int i)
{
    int m;

    for (m = 0; m < i; m++)
        if (e[m].rank == e[i].rank)
            return 0;
    return 1;
}


/* ---- pipelined form (chunks > 1) ----
 * Step s = 0 forwards the own units, step s >= 1 piece s-1 of the A-units (of every source).
 * dispatch: the counts (A-units per forwarder, kept pairs per (rank, local expert)) are
 * exchanged and the A receives posted before packing; each A piece is sent once packed. As
 * piece s-1 arrives the forwarder builds the B-units of step s and sends one message per
 * rank of its node (empty ones too: receivers probe for exactly (chunks + 1) x (node size)
 * messages), while later pieces are on the wire. From the pair counts the receiver knows the
 * batch rows of every (origin, local expert) stream in the unpipelined order (forwarder
 * rank, unit index at the forwarder) and fills the batch as B-units arrive, so expert
 * inputs are exactly those of the unpipelined form.
 * combine: per step (1..chunks, then the own units), destinations return the partials of
 * that step's B-units; the forwarder reduces a step as soon as its returns are in
 * (destination ranks in increasing order, as unpipelined) and sends piece s-1 of the A
 * returns, while later steps are still reduced.
 * The sums are therefore bitwise those of the unpipelined form. */

/* Forwarded units [*lo, *hi) of step s that came from source r (r = -1: the own units). */
static int hier_step_range(const a2a_hier_t *c, int s, int r, int *lo, int *hi)
{
    int n, base;

    if (r < 0) {
        *lo = 0;
        *hi = s == 0 ? c->n_own : 0;
        return *hi > 0;
    }
    if (s == 0 || c->a_rcnt[r] == 0)
        return 0;
    n = c->a_rcnt[r] / (int)c->mb;
    base = c->n_own + c->a_rdsp[r] / (int)c->mb;
    *lo = base + moe__hier_piece(n, s - 1, c->chunks);
    *hi = base + moe__hier_piece(n, s, c->chunks);
    return *hi > *lo;
}

/* Every HIER_POKE units of CPU work the pipelined form lets the inter-node transport move
 * data: MPI over TCP (and UCX over tcp) push bytes and answer rendezvous only inside a
 * progress call, so without these the wire would idle while the forwarder works. */
#define HIER_POKE 16

static moe_status_t hier_poke(a2a_hier_t *c, int id)
{
    int done;

    return c->inter->test_chunk(c->tp, id, c->chunks - 1, &done);
}

/* Builds the B-units of step s (slots from *bcur on) and sends one message to every rank of
 * the node. bsend is large enough for every step (sized before the first). */
static moe_status_t hier_send_b_step(a2a_hier_t *c, int s, int *bcur, int *left,
                                     moe_a2a_stats_t *st)
{
    /* a B-unit's entries all name its destination; here `rank` carries the origin instead
     * (r = -1: the own units, whose origin is this rank), which the batch needs */
    int          qq, q, r, u, i, m, lo, hi, nl = c->nl;
    moe_status_t e_;

    for (qq = 1; qq <= nl; qq++) { /* the other ranks first, so their messages leave sooner */
        int dst, first = *bcur;
        q = (c->li + qq) % nl;
        dst = c->lrank[q];
        for (r = -1; r < c->P; r++) {
            if (!hier_step_range(c, s, r, &lo, &hi))
                continue;
            int org = r < 0 ? c->rank : r;
            for (u = lo; u < hi; u++) {
                char       *unit = hier_fwd_unit(c, u), *bu;
                hier_hdr_t *h = (hier_hdr_t *)unit, *bh;
                hier_ent_t *e = HIER_ENT(unit);
                for (i = 0; i < h->n && e[i].rank != dst; i++)
                    ;
                if (i == h->n)
                    continue;
                ((int32_t *)c->bsend_u.p)[*bcur] = u;
                bu = HIER_UNIT(c->bsend.p, *bcur, c->mb);
                (*bcur)++;
                bh = (hier_hdr_t *)bu;
                bh->t = u;
                bh->n = 0;
                for (m = i; m < h->n; m++) /* entries for this rank, in slot order */
                    if (e[m].rank == dst) {
                        HIER_ENT(bu)[bh->n] = e[m];
                        HIER_ENT(bu)[bh->n++].rank = org;
                    }
                if (q != c->li) /* my own B-units keep their row in the forwarded unit */
                    moe__a2a_rows_copy(c->opaque, HIER_ROW(c, c->bsend_r.p, *bcur - 1),
                                       hier_fwd_row(c, u), (size_t)c->d * sizeof(float));
                if ((*bcur - first) % HIER_POKE == 0 && (e_ = hier_poke(c, 0)) != MOE_OK)
                    return e_;
            }
        }
        c->bs_off[s * nl + q] = first;
        c->bs_n[s * nl + q] = *bcur - first;
        c->tr_s[dst] = *bcur - first; /* units */
        if (q == c->li) { /* my own B-units: received in place */
            int64_t *ref;
            if (moe__hier_buf_grow(&c->bref, (size_t)(c->n_brecv + *bcur - first) * sizeof(int64_t)))
                return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
            ref = (int64_t *)c->bref.p + c->n_brecv;
            for (u = first; u < *bcur; u++)
                ref[u - first] = -(int64_t)u - 1;
            c->br_off[s * nl + q] = c->n_brecv;
            c->br_n[s * nl + q] = *bcur - first;
            for (u = first; u < *bcur; u++)
                hier_batch_take(c, c->n_brecv + u - first);
            c->n_brecv += *bcur - first;
            c->next_step[q]++;
            (*left)--;
            c->rq[s * nl + q] = MPI_REQUEST_NULL;
            c->rq[(c->chunks + 1) * nl + s * nl + q] = MPI_REQUEST_NULL;
            continue;
        }
        /* metadata, then rows (both sent, empty ones too: the receiver probes the first) */
        MOE_MPI_CHECK(c->log, MPI_Isend(HIER_UNIT(c->bsend.p, first, c->mb),
                                        c->tr_s[dst] * (int)c->mb, MPI_BYTE, dst, HIER_TAG_B + s,
                                        c->comm, &c->rq[s * nl + q]));
        MOE_MPI_CHECK(c->log, MPI_Isend(HIER_ROW(c, c->bsend_r.p, first), c->tr_s[dst] * c->d,
                                        MPI_FLOAT, dst, HIER_TAG_BROWS + s, c->comm,
                                        &c->rq[(c->chunks + 1) * nl + s * nl + q]));
    }
    moe__a2a_traffic(&c->peers, c->tr_s, c->tr_r, c->mb, 1, st);
    moe__a2a_traffic(&c->peers, c->tr_s, c->tr_r, (size_t)c->d * sizeof(float), 1, st);
    for (q = 0; q < nl; q++)
        c->tr_s[c->lrank[q]] = 0;
    return MOE_OK;
}

/* Receives every B message that has arrived (per node rank, in step order); *left counts
 * the messages still expected, *got whether any came. */
static moe_status_t hier_drain_b(a2a_hier_t *c, int *left, int *got, moe_a2a_stats_t *st)
{
    int q, n, j, nl = c->nl;

    *got = 0;
    for (q = 0; q < nl; q++)
        while (q != c->li && c->next_step[q] <= c->chunks) {
            int        s = c->next_step[q], flag = 0, bytes = 0, src = c->lrank[q];
            MPI_Status mst;
            /* exactly one message per (source, step tag): probe, then receive that one
             * (MPI_Iprobe + MPI_Recv rather than MPI_Improbe: SimGrid SMPI lacks it) */
            MOE_MPI_CHECK(c->log, MPI_Iprobe(src, HIER_TAG_B + s, c->comm, &flag, &mst));
            if (!flag)
                break;
            MOE_MPI_CHECK(c->log, MPI_Get_count(&mst, MPI_BYTE, &bytes));
            n = bytes / (int)c->mb;
            if (moe__hier_buf_grow(&c->brecv, (size_t)c->n_bphys * c->mb + (size_t)bytes) ||
                moe__hier_buf_grow(&c->brecv_r,
                                   ((size_t)c->n_bphys + n) * c->d * sizeof(float)) ||
                moe__hier_buf_grow(&c->bref, (size_t)(c->n_brecv + n) * sizeof(int64_t)))
                return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
            /* the rows follow the metadata (sent together) */
            MOE_MPI_CHECK(c->log, MPI_Recv(HIER_UNIT(c->brecv.p, c->n_bphys, c->mb), bytes,
                                           MPI_BYTE, src, HIER_TAG_B + s, c->comm,
                                           MPI_STATUS_IGNORE));
            MOE_MPI_CHECK(c->log, MPI_Recv(HIER_ROW(c, c->brecv_r.p, c->n_bphys), n * c->d,
                                           MPI_FLOAT, src, HIER_TAG_BROWS + s, c->comm,
                                           MPI_STATUS_IGNORE));
            for (j = 0; j < n; j++)
                ((int64_t *)c->bref.p)[c->n_brecv + j] = c->n_bphys + j;
            c->n_bphys += n;
            c->br_off[s * nl + q] = c->n_brecv;
            c->br_n[s * nl + q] = n;
            for (j = 0; j < n; j++)
                hier_batch_take(c, c->n_brecv + j);
            c->n_brecv += n;
            c->next_step[q]++;
            (*left)--;
            *got = 1;
            c->tr_r[src] = n;
            moe__a2a_traffic(&c->peers, c->tr_s, c->tr_r, c->mb, 1, st);
            moe__a2a_traffic(&c->peers, c->tr_s, c->tr_r, (size_t)c->d * sizeof(float), 1, st);
            c->tr_r[src] = 0;
        }
    return MOE_OK;
}

/* Accounts the pieces of an inter-node transfer: per piece, one message of its units (and
 * one of their rows) to each peer. */
static void hier_piece_traffic(a2a_hier_t *c, const moe__hier_xfer_t *xf, moe_a2a_stats_t *st)
{
    int cc, r, first;

    for (cc = 0; cc < c->chunks; cc++) {
        for (r = 0; r < c->P; r++) {
            hier_piece_units(xf, xf->scnt[r], xf->sdsp[r], cc, c->chunks, &first, &c->tr_s[r]);
            hier_piece_units(xf, xf->rcnt[r], xf->rdsp[r], cc, c->chunks, &first, &c->tr_r[r]);
        }
        moe__a2a_traffic(&c->peers, c->tr_s, c->tr_r, (size_t)xf->unit * xf->elem, 1, st);
        if (xf->rows)
            moe__a2a_traffic(&c->peers, c->tr_s, c->tr_r, (size_t)xf->row * sizeof(float), 1, st);
    }
    memset(c->tr_s, 0, (size_t)c->P * sizeof(int));
    memset(c->tr_r, 0, (size_t)c->P * sizeof(int));
}

/* Pipelined dispatch, once the A-units are counted (before they are packed): the count
 * exchange, the batch layout, and the inter-node transfer started (receives posted); the
 * pieces are sent by hier_send_ready as the packing completes them. */
static moe_status_t hier_piped_begin(a2a_hier_t *c, moe_a2a_stats_t *st, double *tc)
{
    int              P = c->P, C = c->chunks, nl = c->nl, q, U, b, L = c->L, x, o;
    int64_t          rows = 0;
    double           t0 = MPI_Wtime();
    moe__hier_xfer_t *xf = &c->axf;
    void            *rdata = NULL;
    moe_status_t     e;

    /* counts: A-units to each forwarder, and kept pairs to each (rank, local expert), so
     * every destination knows the batch layout before the first row arrives */
    for (x = 0; x < P; x++) {
        c->xcnt_s[x * (L + 1)] = c->ucnt_s[x];
        memcpy(c->xcnt_s + x * (L + 1) + 1, c->pcnt_s + (size_t)x * L, (size_t)L * sizeof(int));
    }
    MOE_MPI_CHECK(c->log, MPI_Alltoall(c->xcnt_s, L + 1, MPI_INT, c->xcnt_r, L + 1, MPI_INT,
                                       c->comm));
    for (x = 0; x < P; x++)
        c->ucnt_r[x] = c->xcnt_r[x * (L + 1)];
    moe__a2a_traffic(&c->peers, c->ucnt_s, c->ucnt_r, 0, 0, st);
    *tc += MPI_Wtime() - t0;
    /* the batch: per local expert, rows in the unpipelined order — forwarder q of my node in
     * increasing rank; at q its own units (origin q) first, then the units it received, by
     * origin rank — so each (origin, local expert) stream owns one consecutive range */
    for (x = 0; x < c->n_local; x++) {
        c->offset[x] = rows;
        for (q = 0; q < nl; q++)
            for (o = -1; o < P; o++) {
                int org = o < 0 ? c->lrank[q] : o;
                if (o >= 0 && (o == c->lrank[q] || c->via[o] != c->lrank[q]))
                    continue;
                c->bcur[(size_t)org * L + x] = rows;
                rows += c->xcnt_r[org * (L + 1) + 1 + x];
            }
    }
    c->offset[c->n_local] = rows;
    if (moe__hier_buf_grow(&c->bx, (size_t)rows * c->d * sizeof(float)) ||
        moe__hier_buf_grow(&c->by, (size_t)rows * c->d * sizeof(float)) ||
        moe__hier_buf_grow(&c->brow, (size_t)rows * c->k * sizeof(int64_t)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    moe__a2a_layout(P, c->ucnt_s, c->mb, c->a_scnt, c->a_sdsp);
    c->n_arecv = (int)moe__a2a_layout(P, c->ucnt_r, c->mb, c->a_rcnt, c->a_rdsp);
    memset(xf, 0, sizeof(*xf));
    xf->sbuf = c->asend.p;
    xf->scnt = c->a_scnt;
    xf->sdsp = c->a_sdsp;
    xf->rcnt = c->a_rcnt;
    xf->rdsp = c->a_rdsp;
    xf->rtotal = (size_t)c->n_arecv * c->mb;
    xf->elem = 1;
    xf->type = MPI_BYTE;
    xf->unit = (int)c->mb;
    xf->rows = c->asend_r.p;
    xf->row = c->d;
    xf->rrows = &c->arecv_r;
    xf->rrows_p = &c->arecv_rp;
    U = c->n_own + c->n_arecv;
    /* a unit yields at most one B-unit per rank of the node, and at most k */
    b = c->k < nl ? c->k : nl;
    if (moe__hier_buf_grow(&c->bsend, (size_t)U * b * c->mb) ||
        moe__hier_buf_grow(&c->bsend_r, (size_t)U * b * c->d * sizeof(float)) ||
        moe__hier_buf_grow(&c->bsend_u, (size_t)U * b * sizeof(int32_t)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    t0 = MPI_Wtime();
    if ((e = c->inter->start(c->tp, 0, xf, C, &c->arecv, &rdata)) != MOE_OK)
        return e;
    st->t_dispatch_inter += MPI_Wtime() - t0;
    c->arecv_p = rdata;
    c->asent = 0;
    return MOE_OK;
}

/* Sends every A piece the packing has completed (piece c to rank r is complete once units
 * [0, moe__hier_piece(n, c + 1, chunks)) of r's block are packed: c->cursor[r] counts them
 * from the block's start), or, with `all`, every piece not sent yet. */
static moe_status_t hier_send_ready(a2a_hier_t *c, int all, moe_a2a_stats_t *st)
{
    int          r, n;
    double       t0 = MPI_Wtime();
    moe_status_t e;

    while (c->asent < c->chunks) {
        for (r = 0; r < c->P && !all; r++) {
            n = c->a_scnt[r] / (int)c->mb;
            if (c->cursor[r] - c->a_sdsp[r] / (int64_t)c->mb <
                moe__hier_piece(n, c->asent + 1, c->chunks))
                break;
        }
        if (!all && r < c->P)
            break;
        if ((e = c->inter->send_chunk(c->tp, 0, c->asent)) != MOE_OK)
            return e;
        c->asent++;
    }
    st->t_dispatch_inter += MPI_Wtime() - t0;
    return MOE_OK;
}

/* Pipelined dispatch after the A-units are packed: the last pieces sent, then stage B as the
 * pieces arrive; the batch is filled as the B-units arrive. */
static moe_status_t hier_dispatch_piped(a2a_hier_t *c, moe_a2a_stats_t *st)
{
    int          C = c->chunks, nl = c->nl, s, left, got, done, bcur = 0;
    double       t0, ti = 0;
    moe_status_t e;

    if ((e = hier_send_ready(c, 1, st)) != MOE_OK)
        return e;
    hier_piece_traffic(c, &c->axf, st);

    c->n_brecv = 0;
    c->n_bphys = 0;
    memset(c->next_step, 0, (size_t)nl * sizeof(int));
    left = (C + 1) * nl;
    for (s = 0; s <= C; s++) {
        if (s > 0) { /* wait for piece s-1, receiving B-units meanwhile; the wait is inter-node
                      * time, the B-units received during it are not */
            double tw = MPI_Wtime(), td;
            for (;;) {
                if ((e = c->inter->test_chunk(c->tp, 0, s - 1, &done)) != MOE_OK)
                    return e;
                if (done)
                    break;
                td = MPI_Wtime();
                if ((e = hier_drain_b(c, &left, &got, st)) != MOE_OK)
                    return e;
                if (got)
                    tw += MPI_Wtime() - td;
                else
                    sched_yield();
            }
            ti += MPI_Wtime() - tw;
        }
        if ((e = hier_send_b_step(c, s, &bcur, &left, st)) != MOE_OK ||
            (e = hier_drain_b(c, &left, &got, st)) != MOE_OK)
            return e;
    }
    while (left > 0) {
        if ((e = hier_drain_b(c, &left, &got, st)) != MOE_OK)
            return e;
        if (!got) { /* keep the transport progressing for the peers' sake */
            if ((e = c->inter->test_chunk(c->tp, 0, C - 1, &done)) != MOE_OK)
                return e;
            sched_yield();
        }
    }
    t0 = MPI_Wtime();
    if ((e = c->inter->finish(c->tp, 0)) != MOE_OK)
        return e;
    ti += MPI_Wtime() - t0;
    MOE_MPI_CHECK(c->log, MPI_Waitall(2 * (C + 1) * nl, c->rq, MPI_STATUSES_IGNORE));
    st->t_dispatch_inter += ti;
    c->n_bsend = bcur;
    c->brecv_p = c->brecv.p;
    return MOE_OK;
}

/* o = sum over the entries of B-unit bu, in slot order, of w * y[row]: 0 + w0*y0 + w1*y1 ...
 * (the first term written, not added to a zeroed o: one pass fewer, same bits). Nothing
 * with opaque rows. */
static void hier_partial(const a2a_hier_t *c, const char *bu, const int64_t *row,
                         const float *ybase, float *restrict o)
{
    const hier_ent_t *e = HIER_ENT(bu);
    int               i, m, d = c->d, n = ((const hier_hdr_t *)bu)->n;

    if (c->opaque)
        return;
    if (n == 0) {
        memset(o, 0, (size_t)d * sizeof(float));
        return;
    }
    {
        const float *restrict y = ybase + row[0] * d;
        float                 w = e[0].weight;
        for (m = 0; m < d; m++)
            o[m] = 0.0f + w * y[m];
    }
    for (i = 1; i < n; i++) {
        const float *restrict y = ybase + row[i] * d;
        float                 w = e[i].weight;
        for (m = 0; m < d; m++)
            o[m] += w * y[m];
    }
}

/* Weighted partial of received B-unit b (sum over its entries, in slot order). */
static void hier_b_partial(const a2a_hier_t *c, const moe_expert_batch_t *batch, int b, float *o)
{
    hier_partial(c, hier_bunit(c, b), (const int64_t *)c->brow.p + (size_t)b * c->k, batch->y,
                 o);
}

/* Forwarder, pipelined combine: reduces the steps from *next on (in the order 1..C, then 0)
 * while their B returns are all in and their place in that order is below `upto` (this
 * rank's own partials of those steps are written), and sends the A-return piece of each;
 * with `wait`, waits for the returns instead of stopping at the first step not yet in. The
 * node partial of a unit is 0 + its B returns in increasing rank order, as unpipelined (the
 * first written, not added to a zeroed row: `fresh` marks the units not yet touched). */
static moe_status_t hier_reduce_ready(a2a_hier_t *c, int upto, int wait, int *next,
                                      moe_a2a_stats_t *st, double *ti)
{
    int           C = c->chunks, nl = c->nl, d = c->d, q, b, m, flag, done;
    float        *vret = c->vret.p, *np_ = c->npart.p;
    char         *fresh = c->fresh.p;
    const int32_t *bu = c->bsend_u.p;
    moe_status_t  e;
    double        t0;

    while (*next < upto) {
        int r = *next % (C + 1);
        for (;;) {
            MOE_MPI_CHECK(c->log, MPI_Testall(nl, c->rq + r * nl, &flag, MPI_STATUSES_IGNORE));
            if (flag || !wait)
                break;
            if ((e = c->inter->test_chunk(c->tp, 1, 0, &done)) != MOE_OK) /* progress */
                return e;
            sched_yield();
        }
        if (!flag)
            return MOE_OK;
        for (q = 0; q < nl; q++) {
            c->tr_r[c->lrank[q]] = c->bs_n[r * nl + q] * d;
            for (b = c->bs_off[r * nl + q]; b < c->bs_off[r * nl + q] + c->bs_n[r * nl + q]; b++) {
                float *restrict       o = np_ + (size_t)bu[b] * d;
                const float *restrict v = vret + (size_t)b * d;
                if (c->opaque) /* no row is summed */
                    ;
                else if (fresh[bu[b]]) {
                    for (m = 0; m < d; m++)
                        o[m] = 0.0f + v[m];
                    fresh[bu[b]] = 0;
                } else
                    for (m = 0; m < d; m++)
                        o[m] += v[m];
                if ((b + 1) % (4 * HIER_POKE) == 0 && (e = hier_poke(c, 1)) != MOE_OK)
                    return e;
            }
        }
        moe__a2a_traffic(&c->peers, c->tr_s, c->tr_r, sizeof(float), 1, st);
        for (q = 0; q < nl; q++)
            c->tr_r[c->lrank[q]] = 0;
        if (r > 0) {
            t0 = MPI_Wtime();
            if ((e = c->inter->send_chunk(c->tp, 1, r - 1)) != MOE_OK)
                return e;
            *ti += MPI_Wtime() - t0;
        }
        (*next)++;
    }
    return MOE_OK;
}

/* Combine up to the origin's sum: B returns, node partials and A returns pipelined; the A
 * returns end up at *aret_p (laid out as the A-units this rank sent). */
static moe_status_t hier_combine_piped(a2a_hier_t *c, const moe_expert_batch_t *batch,
                                       moe_a2a_stats_t *st, float **aret_p)
{
    int              C = c->chunks, nl = c->nl, d = c->d, s, q, qq, b, i, nm, next, done;
    int              U = c->n_own + c->n_arecv;
    float           *vb = c->vb.p, *vret = c->vret.p, *np_ = c->npart.p;
    double           t0, ti = 0;
    moe__hier_xfer_t xf;
    void            *rdata = NULL;
    moe_status_t     e;

    nm = (C + 1) * nl;
    for (i = 0; i < 2 * nm; i++)
        c->rq[i] = MPI_REQUEST_NULL;
    for (s = 0; s <= C; s++) /* forwarder: the returns of every B message it sent */
        for (q = 0; q < nl; q++)
            if (c->bs_n[s * nl + q] > 0 && q != c->li)
                MOE_MPI_CHECK(c->log, MPI_Irecv(vret + (size_t)c->bs_off[s * nl + q] * d,
                                                c->bs_n[s * nl + q] * d, MPI_FLOAT, c->lrank[q],
                                                HIER_TAG_BR + s, c->comm, &c->rq[s * nl + q]));
    hier_areturn_xfer(c, &xf, np_, d);
    t0 = MPI_Wtime();
    if ((e = c->inter->start(c->tp, 1, &xf, C, &c->aret, &rdata)) != MOE_OK)
        return e;
    ti += MPI_Wtime() - t0;
    if (moe__hier_buf_grow(&c->fresh, (size_t)U + 1))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    memset(c->fresh.p, 1, (size_t)U + 1);
    /* steps in the order 1..C, then the own units (step 0): the returns of steps 1..C cross
     * the network. A rank computes and sends all its destination partials without waiting
     * for its peers; as forwarder it reduces every earlier step whose returns are in, at
     * every poke between partials and after each step; then it waits for the rest. Steps
     * are reduced and A pieces sent in step order. */
    for (i = 1, next = 1; i <= C + 1; i++) {
        s = i % (C + 1);
        /* destination: partials of step s, one message per forwarder (the other forwarders
         * first, so their returns leave sooner; my own last) */
        for (qq = 1; qq <= nl; qq++) {
            int off, n;
            q = (c->li + qq) % nl;
            off = c->br_off[s * nl + q];
            n = c->br_n[s * nl + q];
            if (n == 0)
                continue;
            for (b = off; b < off + n; b++) { /* my own B-units: straight into their return slot */
                float *o = q == c->li ? vret + (size_t)(c->bs_off[s * nl + q] + b - off) * d
                                      : vb + (size_t)b * d;
                hier_b_partial(c, batch, b, o);
                if ((b - off + 1) % HIER_POKE == 0 &&
                    ((e = hier_poke(c, 1)) != MOE_OK ||
                     (e = hier_reduce_ready(c, i, 0, &next, st, &ti)) != MOE_OK))
                    return e;
            }
            if (q == c->li)
                continue;
            MOE_MPI_CHECK(c->log, MPI_Isend(vb + (size_t)off * d, n * d, MPI_FLOAT, c->lrank[q],
                                            HIER_TAG_BR + s, c->comm, &c->rq[nm + s * nl + q]));
        }
        /* (accounted here, not per forwarder: the reductions at the pokes account theirs) */
        for (q = 0; q < nl; q++)
            c->tr_s[c->lrank[q]] = c->br_n[s * nl + q] * d;
        moe__a2a_traffic(&c->peers, c->tr_s, c->tr_r, sizeof(float), 1, st);
        for (q = 0; q < nl; q++)
            c->tr_s[c->lrank[q]] = 0;
        /* forwarder: every step done here whose returns are in; all of them after the last */
        if ((e = hier_reduce_ready(c, i + 1, i > C, &next, st, &ti)) != MOE_OK)
            return e;
    }
    hier_piece_traffic(c, &xf, st);
    /* origin: every piece of the A returns */
    t0 = MPI_Wtime();
    for (s = 0; s < C; s++)
        for (;;) {
            if ((e = c->inter->test_chunk(c->tp, 1, s, &done)) != MOE_OK)
                return e;
            if (done)
                break;
            sched_yield();
        }
    if ((e = c->inter->finish(c->tp, 1)) != MOE_OK)
        return e;
    ti += MPI_Wtime() - t0;
    MOE_MPI_CHECK(c->log, MPI_Waitall(2 * nm, c->rq, MPI_STATUSES_IGNORE));
    st->t_combine_inter += ti;
    *aret_p = rdata;
    return MOE_OK;
}

moe_status_t moe__a2a_hier_dispatch(void *vctx, const moe_a2a_plan_t *plan, const float *x,
                                    moe_expert_batch_t *batch, moe_a2a_stats_t *st)
{
    a2a_hier_t *c = vctx;
    int         P = c->P, k = plan->top_k, d = c->d, T = plan->tokens, t, j, i, r, n, u, U, b;
    int32_t    *tu;
    int64_t     rows, acc;
    double      t0 = MPI_Wtime(), tc = 0;
    moe_status_t s;

    /* 1. A-units: one per (token, node with kept pairs) */
    memset(c->ucnt_s, 0, (size_t)P * sizeof(int));
    memset(c->pcnt_s, 0, (size_t)P * c->L * sizeof(int));
    c->n_own = 0;
    for (t = 0; t < T; t++)
        for (j = 0; j < k; j++) {
            int p = t * k + j, dn, dup = 0;
            if (plan->dest_rank[p] < 0)
                continue;
            c->pcnt_s[(size_t)plan->dest_rank[p] * c->L + plan->dest_expert[p]]++;
            dn = c->node[plan->dest_rank[p]];
            for (i = 0; i < j; i++)
                dup |= plan->dest_rank[t * k + i] >= 0 && c->node[plan->dest_rank[t * k + i]] == dn;
            if (dup)
                continue;
            if (dn == c->mynode)
                c->n_own++;
            else
                c->ucnt_s[c->peer[dn]]++;
        }
    for (r = 0, c->n_asend = 0; r < P; r++) {
        c->cursor[r] = c->n_asend;
        c->n_asend += c->ucnt_s[r];
    }
    if (moe__hier_buf_grow(&c->asend, (size_t)c->n_asend * c->mb) ||
        moe__hier_buf_grow(&c->own, (size_t)c->n_own * c->mb) ||
        moe__hier_buf_grow(&c->asend_r, (size_t)c->n_asend * d * sizeof(float)) ||
        moe__hier_buf_grow(&c->own_r, (size_t)c->n_own * d * sizeof(float)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    /* pipelined: counts exchanged and receives posted before packing, pieces sent as the
     * packing completes them (the wire starts while later tokens are packed) */
    if (c->chunks > 1 && (s = hier_piped_begin(c, st, &tc)) != MOE_OK)
        return s;
    tu = c->tok_unit.p;
    for (i = 0; i < T * c->nnodes; i++)
        tu[i] = -1;
    for (t = 0, n = 0; t < T; t++)
        for (j = 0; j < k; j++) {
            int         p = t * k + j, dn, slot;
            char       *unit;
            hier_hdr_t *h;
            /* tokens before t are packed: send the pieces they complete */
            if (j == 0 && t > 0 && t % HIER_POKE == 0 && c->chunks > 1 &&
                (s = hier_send_ready(c, 0, st)) != MOE_OK)
                return s;
            if (plan->dest_rank[p] < 0)
                continue;
            dn = c->node[plan->dest_rank[p]];
            if (tu[t * c->nnodes + dn] < 0) { /* first pair of t on node dn: new unit */
                float *row;
                if (dn == c->mynode) {
                    slot = n++;
                    unit = HIER_UNIT(c->own.p, slot, c->mb);
                    row = HIER_ROW(c, c->own_r.p, slot);
                } else {
                    slot = (int)c->cursor[c->peer[dn]]++;
                    unit = HIER_UNIT(c->asend.p, slot, c->mb);
                    row = HIER_ROW(c, c->asend_r.p, slot);
                }
                tu[t * c->nnodes + dn] = slot;
                h = (hier_hdr_t *)unit;
                h->t = t;
                h->n = 0;
                moe__a2a_rows_copy(c->opaque, row, x + (size_t)t * d, (size_t)d * sizeof(float));
            } else {
                slot = tu[t * c->nnodes + dn];
                unit = dn == c->mynode ? HIER_UNIT(c->own.p, slot, c->mb)
                                       : HIER_UNIT(c->asend.p, slot, c->mb);
                h = (hier_hdr_t *)unit;
            }
            HIER_ENT(unit)[h->n].rank = plan->dest_rank[p];
            HIER_ENT(unit)[h->n].expert = plan->dest_expert[p];
            HIER_ENT(unit)[h->n].slot = j;
            HIER_ENT(unit)[h->n].weight = plan->weight[p];
            h->n++;
        }
    if (c->chunks > 1) { /* stages A and B pipelined */
        s = hier_dispatch_piped(c, st);
        if (s != MOE_OK)
            return s;
        goto done; /* the batch was filled as the B-units arrived */
    }
    s = hier_exchange_units(c, 1, c->asend.p, c->asend_r.p, &c->arecv, &c->arecv_p, &c->arecv_r,
                            &c->arecv_rp, c->a_scnt, c->a_sdsp, c->a_rcnt, c->a_rdsp,
                            &c->n_arecv, st, &tc);
    if (s != MOE_OK)
        return s;

    /* 2. B-units: forward every unit (own, then received) to each rank it names */
    U = c->n_own + c->n_arecv;
    memset(c->ucnt_s, 0, (size_t)P * sizeof(int));
    for (u = 0; u < U; u++) {
        char       *unit = hier_fwd_unit(c, u);
        hier_hdr_t *h = (hier_hdr_t *)unit;
        hier_ent_t *e = HIER_ENT(unit);
        for (i = 0; i < h->n; i++)
            if (hier_first_for_rank(e, i))
                c->ucnt_s[e[i].rank]++;
    }
    for (r = 0, c->n_bsend = 0; r < P; r++) {
        c->cursor[r] = c->n_bsend;
        c->n_bsend += c->ucnt_s[r];
    }
    if (moe__hier_buf_grow(&c->bsend, (size_t)c->n_bsend * c->mb) ||
        moe__hier_buf_grow(&c->bsend_r, (size_t)c->n_bsend * d * sizeof(float)) ||
        moe__hier_buf_grow(&c->bsend_u, (size_t)c->n_bsend * sizeof(int32_t)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    for (u = 0; u < U; u++) {
        char       *unit = hier_fwd_unit(c, u);
        hier_hdr_t *h = (hier_hdr_t *)unit;
        hier_ent_t *e = HIER_ENT(unit);
        for (i = 0; i < h->n; i++) {
            int         m, slot;
            char       *bu;
            hier_hdr_t *bh;
            if (!hier_first_for_rank(e, i))
                continue;
            slot = (int)c->cursor[e[i].rank]++;
            ((int32_t *)c->bsend_u.p)[slot] = u;
            bu = HIER_UNIT(c->bsend.p, slot, c->mb);
            bh = (hier_hdr_t *)bu;
            bh->t = u;
            bh->n = 0;
            for (m = i; m < h->n; m++) /* entries for this rank, in slot order */
                if (e[m].rank == e[i].rank)
                    HIER_ENT(bu)[bh->n++] = e[m];
            moe__a2a_rows_copy(c->opaque, HIER_ROW(c, c->bsend_r.p, slot), hier_fwd_row(c, u),
                               (size_t)d * sizeof(float));
        }
    }
    s = hier_exchange_units(c, 0, c->bsend.p, c->bsend_r.p, &c->brecv, &c->brecv_p, &c->brecv_r,
                            &c->brecv_rp, c->b_scnt, c->b_sdsp, c->b_rcnt, c->b_rdsp,
                            &c->n_brecv, st, &tc);
    if (s != MOE_OK)
        return s;

    /* 3. batch rows per local expert, ordered by (source rank, unit, entry) */
    memset(c->ecnt, 0, (size_t)(c->n_local + 1) * sizeof(int64_t));
    for (b = 0; b < c->n_brecv; b++) {
        char *bu = hier_bunit(c, b);
        for (i = 0; i < ((hier_hdr_t *)bu)->n; i++)
            c->ecnt[HIER_ENT(bu)[i].expert]++;
    }
    for (i = 0, acc = 0; i < c->n_local; i++) {
        c->offset[i] = acc;
        acc += c->ecnt[i];
        c->ecnt[i] = c->offset[i]; /* now a cursor */
    }
    c->offset[c->n_local] = rows = acc;
    if (moe__hier_buf_grow(&c->bx, (size_t)rows * d * sizeof(float)) ||
        moe__hier_buf_grow(&c->by, (size_t)rows * d * sizeof(float)) ||
        moe__hier_buf_grow(&c->brow, (size_t)c->n_brecv * k * sizeof(int64_t)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    for (b = 0; b < c->n_brecv; b++) {
        char *bu = hier_bunit(c, b);
        for (i = 0; i < ((hier_hdr_t *)bu)->n; i++) {
            int64_t row = c->ecnt[HIER_ENT(bu)[i].expert]++;
            ((int64_t *)c->brow.p)[(size_t)b * k + i] = row;
            moe__a2a_rows_copy(c->opaque, (float *)c->bx.p + row * d, hier_bunit_row(c, b),
                               (size_t)d * sizeof(float));
        }
    }
done:
    batch->n_local = c->n_local;
    batch->offset = c->offset;
    batch->x = c->bx.p;
    batch->y = c->by.p;
    st->t_counts += tc;
    st->t_dispatch += MPI_Wtime() - t0 - tc;
    return MOE_OK;
}

moe_status_t moe__a2a_hier_combine(void *vctx, const moe_a2a_plan_t *plan,
                                   const moe_expert_batch_t *batch, float *out,
                                   moe_a2a_stats_t *st)
{
    a2a_hier_t *c = vctx;
    int         P = c->P, d = c->d, b, i, U = c->n_own + c->n_arecv, t, nd;
    int32_t    *tu = c->tok_unit.p;
    double      t0 = MPI_Wtime(), tx;
    float      *vb, *vret, *np_, *aret = NULL;
    void       *rdata = NULL;
    moe__hier_xfer_t xf;
    moe_status_t     s;

    if (moe__hier_buf_grow(&c->vb, (size_t)c->n_brecv * d * sizeof(float)) ||
        moe__hier_buf_grow(&c->vret, (size_t)c->n_bsend * d * sizeof(float)) ||
        moe__hier_buf_grow(&c->npart, (size_t)U * d * sizeof(float)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "hier exchange: out of memory");
    vb = c->vb.p;
    vret = c->vret.p;
    np_ = c->npart.p;
    if (c->chunks > 1) { /* B returns, node reductions and A returns pipelined */
        s = hier_combine_piped(c, batch, st, &aret);
        if (s != MOE_OK)
            return s;
        goto origin;
    }

    /* 1. destination rank: one weighted partial per B-unit */
    for (b = 0; b < c->n_brecv; b++)
        hier_b_partial(c, batch, b, vb + (size_t)b * d);
    for (i = 0; i < P; i++) { /* B returns: reverse of the B exchange, in floats */
        c->v_scnt[i] = c->b_rcnt[i] / (int)c->mb * d;
        c->v_sdsp[i] = c->b_rdsp[i] / (int)c->mb * d;
        c->v_rcnt[i] = c->b_scnt[i] / (int)c->mb * d;
        c->v_rdsp[i] = c->b_sdsp[i] / (int)c->mb * d;
    }
    memset(&xf, 0, sizeof(xf));
    xf.sbuf = vb;
    xf.scnt = c->v_scnt;
    xf.sdsp = c->v_sdsp;
    xf.rcnt = c->v_rcnt;
    xf.rdsp = c->v_rdsp;
    xf.rtotal = (size_t)c->n_bsend * d;
    xf.elem = sizeof(float);
    xf.type = MPI_FLOAT;
    xf.unit = d;
    if ((s = hier_p2p(&c->x2, &xf, &c->vret, &rdata)) != MOE_OK)
        return s;
    vret = rdata;
    moe__a2a_traffic(&c->peers, c->v_scnt, c->v_rcnt, sizeof(float), 1, st);

    /* 2. forwarder: node partial per A-unit, destination ranks in increasing order */
    if (!c->opaque) {
        memset(np_, 0, (size_t)U * d * sizeof(float));
        for (b = 0; b < c->n_bsend; b++) {
            float       *o = np_ + (size_t)((int32_t *)c->bsend_u.p)[b] * d;
            const float *v = vret + (size_t)b * d;
            int          m;
            for (m = 0; m < d; m++)
                o[m] += v[m];
        }
    }
    hier_areturn_xfer(c, &xf, np_, d);
    tx = MPI_Wtime();
    s = c->inter->exchange_vectors(c->tp, &xf, &c->aret, &rdata);
    if (s != MOE_OK)
        return s;
    st->t_combine_inter += MPI_Wtime() - tx;
    aret = rdata;
    moe__a2a_traffic(&c->peers, c->v_scnt, c->v_rcnt, sizeof(float), 1, st);

origin:
    /* 3. origin: node partials of each token in increasing node order (none when opaque) */
    for (t = 0; t < (c->opaque ? 0 : plan->tokens); t++) {
        float *o = out + (size_t)t * d;
        for (nd = 0; nd < c->nnodes; nd++) {
            int          slot = tu[t * c->nnodes + nd], m;
            const float *v;
            if (slot < 0)
                continue;
            v = nd == c->mynode ? np_ + (size_t)slot * d : aret + (size_t)slot * d;
            for (m = 0; m < d; m++)
                o[m] += v[m];
        }
    }
    st->t_combine += MPI_Wtime() - t0;
    return MOE_OK;
}

static moe_status_t hier_create(const moe_a2a_params_t *prm, void **ctx_p)
{
    return moe__a2a_hier_create(prm, &hier_mpi_transport, ctx_p);
}

const moe_a2a_ops_t moe_a2a_hier_ops = {
    .name = "hier",
    .doc = "node-deduplicated two-stage exchange: one copy of a token per remote node, "
           "forwarded inside the node; combine reduces inside the node",
    .create = hier_create,
    .dispatch = moe__a2a_hier_dispatch,
    .combine = moe__a2a_hier_combine,
    .destroy = moe__a2a_hier_destroy,
};
