/*
 * comm/a2a_2dh.c — two-dimensional hierarchical exchange (Tutel's 2DH, for tokens).
 *
 * Ranks sit on a grid: node n, local index i (position among the ranks of its node, in
 * rank order). A row for destination rank q leaves its source s in two hops:
 *   stage 1 (intra-node): to the relay on s's node with local index li(q) mod size(node(s)),
 *            one message per local peer;
 *   stage 2 (inter-node): from the relay to q, one message per remote node (for nodes of
 *            equal size the relay and q share their local index: a "rail").
 * Rows whose destination is on the source's node reach it in stage 1 (the relay is q
 * itself). No deduplication: the bytes are flat's (plus a 16-byte header per row), but a
 * rank sends (L-1) + (N-1) payload messages instead of P-1: fewer, larger messages, which
 * pays when there are many ranks per node and per-message cost dominates; the price is an
 * extra intra-node hop and copy of every inter-node row.
 *
 * Every row travels as a packet: {dest rank, dest expert, source rank, source pair index}
 * followed by d floats. The destination sorts its packets by (expert, source rank, pair
 * index), which is exactly the order flat delivers (invariant 1), so expert inputs, expert
 * outputs and the slot-order combine sum are bitwise those of flat.
 *
 * combine runs both stages backwards with the counts swapped: the destination returns each
 * output row to the relay it came from (stage 2) or straight to its source (rows that came
 * in stage 1), the relay passes them on in the order it received them (stage 1), and the
 * source adds w_j * y_j in slot order j = 0..k-1.
 *
 * Accounting: bytes and messages per hop as they cross the wire (headers included);
 * bytes_to_rank counts each hop's payload at its receiver, so a2a-bench's busiest-link
 * bound sees the real link load. t_dispatch_inter / t_combine_inter time stage 2.
 * Buffers grow to the largest step seen and are reused.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "a2a_common.h"
#include "moerun/base/mpicheck.h"

typedef struct dh_hdr {
    int32_t dest, expert, src, pair;
} dh_hdr_t;

typedef struct dh_buf {
    char  *p;
    size_t cap;
} dh_buf_t;

typedef struct a2a_2dh {
    MPI_Comm   comm;
    moe_log_t *log;
    int        P, rank, d, k, max_tokens, n_local, nnodes;
    size_t     pk;           /* packet bytes: header + d floats */
    int       *node;         /* [P] */
    moe__a2a_peers_t peers;  /* (P, rank, node) for traffic accounting */
    int       *relay;        /* [P] relay on my node for destination q */
    int       *s1cnt, *s1dsp, *r1cnt, *r1dsp; /* [P] stage 1, in packets then bytes */
    int       *s2cnt, *s2dsp, *r2cnt, *r2dsp; /* [P] stage 2 */
    int       *vcnt_s, *vdsp_s, *vcnt_r, *vdsp_r; /* [P] return exchanges, in floats */
    int64_t   *pos;          /* [max_tokens*k] stage-1 send packet of each pair, -1 dropped */
    int64_t   *cur;          /* [P] packing cursors */
    dh_buf_t   s1, r1, s2, r2; /* packet buffers */
    dh_buf_t   fwd;          /* [n_r1] int64: stage-2 send slot of each stage-1 packet, or
                              * -1 - batch row when the packet is for this rank */
    dh_buf_t   arrive;       /* [n_r2] int64: batch row of each stage-2 packet */
    dh_buf_t   order;        /* [n_mine] sort index */
    dh_buf_t   bx, by;       /* batch rows */
    dh_buf_t   ret2, ret1s, ret1r; /* return rows (floats) */
    int64_t   *offset;       /* [n_local + 1] */
    int64_t    n_s1, n_r1, n_s2, n_r2, n_mine;
} a2a_2dh_t;

static int dh_grow(dh_buf_t *b, size_t bytes)
{
    char  *p;
    size_t want = bytes + 1;

    if (want <= b->cap && b->p)
        return 0;
    want = want < 2 * b->cap ? 2 * b->cap : want;
    if ((p = realloc(b->p, want)) == NULL)
        return -1;
    b->p = p;
    b->cap = want;
    return 0;
}

static void dh_destroy(void *vctx)
{
    a2a_2dh_t *c = vctx;
    dh_buf_t  *bufs[12];
    size_t     i;

    if (c == NULL)
        return;
    if (c->comm != MPI_COMM_NULL)
        MPI_Comm_free(&c->comm);
    bufs[0] = &c->s1, bufs[1] = &c->r1, bufs[2] = &c->s2, bufs[3] = &c->r2;
    bufs[4] = &c->fwd, bufs[5] = &c->arrive, bufs[6] = &c->order, bufs[7] = &c->bx;
    bufs[8] = &c->by, bufs[9] = &c->ret2, bufs[10] = &c->ret1s, bufs[11] = &c->ret1r;
    for (i = 0; i < 12; i++)
        free(bufs[i]->p);
    free(c->node), free(c->relay);
    free(c->s1cnt), free(c->s1dsp), free(c->r1cnt), free(c->r1dsp);
    free(c->s2cnt), free(c->s2dsp), free(c->r2cnt), free(c->r2dsp);
    free(c->vcnt_s), free(c->vdsp_s), free(c->vcnt_r), free(c->vdsp_r);
    free(c->pos), free(c->cur), free(c->offset);
    free(c);
}

static moe_status_t dh_create(const moe_a2a_params_t *prm, void **ctx_p)
{
    a2a_2dh_t   *c = calloc(1, sizeof(*c));
    int          P, r, q, *size = NULL, *li = NULL, **members = NULL;
    moe_status_t st = MOE_OK;

    if (c == NULL)
        return MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    c->comm = MPI_COMM_NULL;
    c->log = prm->log;
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_dup(prm->comm, &c->comm), st, err);
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_size(c->comm, &c->P), st, err);
    MOE_MPI_CHECK_GOTO(prm->log, MPI_Comm_rank(c->comm, &c->rank), st, err);
    P = c->P;
    c->d = prm->d_model;
    c->k = prm->top_k;
    c->max_tokens = prm->max_tokens;
    c->n_local = prm->local_experts[c->rank];
    c->pk = sizeof(dh_hdr_t) + (size_t)c->d * sizeof(float);
    /* MPI counts are ints: a rank may send at most every pair in one message */
    if ((double)c->max_tokens * c->k * (double)c->pk > (double)INT_MAX) {
        st = MOE_ERROR_SET(prm->log, MOE_ERR_INVALID,
                           "2dh exchange: tokens %d x top_k %d x %zu bytes per row exceeds "
                           "MPI's int counts; lower tokens or d_model", c->max_tokens, c->k,
                           c->pk);
        goto err;
    }
    c->node = calloc((size_t)P, sizeof(int));
    c->relay = calloc((size_t)P, sizeof(int));
    c->s1cnt = calloc((size_t)P, sizeof(int)), c->s1dsp = calloc((size_t)P, sizeof(int));
    c->r1cnt = calloc((size_t)P, sizeof(int)), c->r1dsp = calloc((size_t)P, sizeof(int));
    c->s2cnt = calloc((size_t)P, sizeof(int)), c->s2dsp = calloc((size_t)P, sizeof(int));
    c->r2cnt = calloc((size_t)P, sizeof(int)), c->r2dsp = calloc((size_t)P, sizeof(int));
    c->vcnt_s = calloc((size_t)P, sizeof(int)), c->vdsp_s = calloc((size_t)P, sizeof(int));
    c->vcnt_r = calloc((size_t)P, sizeof(int)), c->vdsp_r = calloc((size_t)P, sizeof(int));
    c->pos = malloc(((size_t)c->max_tokens * c->k + 1) * sizeof(int64_t));
    c->cur = calloc((size_t)P, sizeof(int64_t));
    c->offset = calloc((size_t)c->n_local + 1, sizeof(int64_t));
    size = calloc((size_t)P, sizeof(int));
    li = calloc((size_t)P, sizeof(int));
    members = calloc((size_t)P, sizeof(int *));
    if (!c->node || !c->relay || !c->s1cnt || !c->s1dsp || !c->r1cnt || !c->r1dsp ||
        !c->s2cnt || !c->s2dsp || !c->r2cnt || !c->r2dsp || !c->vcnt_s || !c->vdsp_s ||
        !c->vcnt_r || !c->vdsp_r || !c->pos || !c->cur || !c->offset || !size || !li ||
        !members) {
        st = MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
        goto err;
    }
    for (r = 0; r < P; r++) {
        c->node[r] = prm->node_of_rank ? prm->node_of_rank[r] : 0;
        if (c->node[r] < 0 || c->node[r] >= P) {
            st = MOE_ERROR_SET(prm->log, MOE_ERR_INVALID, "2dh exchange: rank %d has node id "
                               "%d, outside 0..%d", r, c->node[r], P - 1);
            goto err;
        }
    }
    c->peers.nranks = P;
    c->peers.rank = c->rank;
    c->peers.node = c->node;
    /* local indices and members of each node, in rank order */
    for (r = 0; r < P; r++) {
        li[r] = size[c->node[r]]++;
        c->nnodes = c->node[r] + 1 > c->nnodes ? c->node[r] + 1 : c->nnodes;
    }
    {
        int n = c->node[c->rank], j = 0;
        members[n] = calloc((size_t)size[n], sizeof(int));
        if (members[n] == NULL) {
            st = MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
            goto err;
        }
        for (r = 0; r < P; r++)
            if (c->node[r] == n)
                members[n][j++] = r;
        /* the relay for q: my node's rank whose local index is li(q) mod (my node's size) */
        for (q = 0; q < P; q++)
            c->relay[q] = members[n][li[q] % size[n]];
        free(members[n]);
    }
    free(size), free(li), free(members);
    *ctx_p = c;
    return MOE_OK;
err:
    free(size), free(li), free(members);
    dh_destroy(c);
    return st;
}

/* Exchanges packet counts (scnt -> rcnt), makes displacements, returns packets to receive. */
static moe_status_t dh_counts(a2a_2dh_t *c, int *scnt, int *sdsp, int *rcnt, int *rdsp,
                              int64_t *nrecv, moe_a2a_stats_t *st)
{
    double t0 = MPI_Wtime();

    MOE_MPI_CHECK(c->log, MPI_Alltoall(scnt, 1, MPI_INT, rcnt, 1, MPI_INT, c->comm));
    moe__a2a_traffic(&c->peers, scnt, rcnt, 0, 0, st); /* messages only */
    moe__a2a_displs(c->P, scnt, sdsp);
    *nrecv = moe__a2a_displs(c->P, rcnt, rdsp);
    st->t_counts += MPI_Wtime() - t0;
    return MOE_OK;
}

/* Packet counts and displacements to bytes, in place. */
static void dh_to_bytes(const a2a_2dh_t *c, int *cnt, int *dsp)
{
    int r;

    for (r = 0; r < c->P; r++)
        cnt[r] *= (int)c->pk, dsp[r] *= (int)c->pk;
}

static void dh_to_packets(const a2a_2dh_t *c, int *cnt, int *dsp)
{
    int r;

    for (r = 0; r < c->P; r++)
        cnt[r] /= (int)c->pk, dsp[r] /= (int)c->pk;
}

#define DH_PKT(buf, i, pk) ((buf) + (size_t)(i) * (pk))

/* Packets for this rank, located as (buffer, index); sorted by (expert, src, pair). */
typedef struct dh_mine {
    const dh_hdr_t *h;
    int64_t         slot; /* >= 0: stage-2 receive index; < 0: -1 - stage-1 receive index */
} dh_mine_t;

static int dh_cmp(const void *a, const void *b)
{
    const dh_hdr_t *x = ((const dh_mine_t *)a)->h, *y = ((const dh_mine_t *)b)->h;

    if (x->expert != y->expert)
        return x->expert < y->expert ? -1 : 1;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return x->pair < y->pair ? -1 : x->pair > y->pair;
}

static moe_status_t dh_dispatch(void *vctx, const moe_a2a_plan_t *plan, const float *x,
                                moe_expert_batch_t *batch, moe_a2a_stats_t *st)
{
    a2a_2dh_t *c = vctx;
    int        P = c->P, d = c->d, k = plan->top_k, r, e;
    int64_t    npairs = (int64_t)plan->tokens * k, p, i, acc;
    size_t     pk = c->pk;
    double     t0 = MPI_Wtime(), tc0, tx;
    dh_mine_t *mine;
    int64_t   *fwd, *arrive;
    moe_status_t s;

    /* stage 1: pack packets by relay, then destination, then pair order */
    memset(c->s1cnt, 0, (size_t)P * sizeof(int));
    for (p = 0; p < npairs; p++)
        if (plan->dest_rank[p] >= 0)
            c->s1cnt[c->relay[plan->dest_rank[p]]]++;
    tc0 = st->t_counts;
    if ((s = dh_counts(c, c->s1cnt, c->s1dsp, c->r1cnt, c->r1dsp, &c->n_r1, st)) != MOE_OK)
        return s;
    for (r = 0, acc = 0; r < P; r++)
        acc += c->s1cnt[r];
    c->n_s1 = acc;
    if (dh_grow(&c->s1, (size_t)c->n_s1 * pk) || dh_grow(&c->r1, (size_t)c->n_r1 * pk) ||
        dh_grow(&c->fwd, (size_t)c->n_r1 * sizeof(int64_t)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    /* within a relay's block: destination order, then pair order (one pass per relay
     * would be quadratic; a counting pass over (relay, destination) keeps it linear) */
    {
        int64_t *dcnt = c->cur; /* reuse: packets per destination */
        memset(dcnt, 0, (size_t)P * sizeof(int64_t));
        for (p = 0; p < npairs; p++)
            if (plan->dest_rank[p] >= 0)
                dcnt[plan->dest_rank[p]]++;
        /* start of each destination: relays in rank order, destinations in rank order */
        {
            int64_t *start = malloc((size_t)P * sizeof(int64_t)), rel_acc;
            if (start == NULL)
                return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
            for (r = 0; r < P; r++) {
                int q;
                rel_acc = c->s1dsp[r];
                for (q = 0; q < P; q++)
                    if (c->relay[q] == r) {
                        start[q] = rel_acc;
                        rel_acc += dcnt[q];
                    }
            }
            memcpy(dcnt, start, (size_t)P * sizeof(int64_t));
            free(start);
        }
        for (p = 0; p < npairs; p++) {
            int       q = plan->dest_rank[p];
            dh_hdr_t *h;
            if (q < 0) {
                c->pos[p] = -1;
                continue;
            }
            c->pos[p] = dcnt[q]++;
            h = (dh_hdr_t *)DH_PKT(c->s1.p, c->pos[p], pk);
            h->dest = q;
            h->expert = plan->dest_expert[p];
            h->src = c->rank;
            h->pair = (int32_t)p;
            memcpy(h + 1, x + (size_t)(p / k) * d, (size_t)d * sizeof(float));
        }
    }
    dh_to_bytes(c, c->s1cnt, c->s1dsp);
    dh_to_bytes(c, c->r1cnt, c->r1dsp);
    MOE_MPI_CHECK(c->log, MPI_Alltoallv(c->s1.p, c->s1cnt, c->s1dsp, MPI_BYTE, c->r1.p,
                                        c->r1cnt, c->r1dsp, MPI_BYTE, c->comm));
    moe__a2a_traffic(&c->peers, c->s1cnt, c->r1cnt, 1, 1, st);
    dh_to_packets(c, c->s1cnt, c->s1dsp);
    dh_to_packets(c, c->r1cnt, c->r1dsp);

    /* relay: packets for this rank stay; the others go on in stage 2, by destination in
     * the order they arrived (source rank order, then each source's order) */
    memset(c->s2cnt, 0, (size_t)P * sizeof(int));
    for (i = 0; i < c->n_r1; i++) {
        const dh_hdr_t *h = (const dh_hdr_t *)DH_PKT(c->r1.p, i, pk);
        if (h->dest < 0 || h->dest >= P)
            return MOE_ERROR_SET(c->log, MOE_ERR_INVARIANT,
                                 "2dh exchange: relayed packet for rank %d", (int)h->dest);
        if (h->dest != c->rank)
            c->s2cnt[h->dest]++;
    }
    if ((s = dh_counts(c, c->s2cnt, c->s2dsp, c->r2cnt, c->r2dsp, &c->n_r2, st)) != MOE_OK)
        return s;
    for (r = 0, acc = 0; r < P; r++)
        acc += c->s2cnt[r];
    c->n_s2 = acc;
    if (dh_grow(&c->s2, (size_t)c->n_s2 * pk) || dh_grow(&c->r2, (size_t)c->n_r2 * pk))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    fwd = (int64_t *)c->fwd.p;
    for (r = 0; r < P; r++)
        c->cur[r] = c->s2dsp[r];
    for (i = 0; i < c->n_r1; i++) {
        const dh_hdr_t *h = (const dh_hdr_t *)DH_PKT(c->r1.p, i, pk);
        if (h->dest == c->rank) {
            fwd[i] = -1; /* batch row filled in below */
            continue;
        }
        fwd[i] = c->cur[h->dest]++;
        memcpy(DH_PKT(c->s2.p, fwd[i], pk), h, pk);
    }
    dh_to_bytes(c, c->s2cnt, c->s2dsp);
    dh_to_bytes(c, c->r2cnt, c->r2dsp);
    tx = MPI_Wtime();
    MOE_MPI_CHECK(c->log, MPI_Alltoallv(c->s2.p, c->s2cnt, c->s2dsp, MPI_BYTE, c->r2.p,
                                        c->r2cnt, c->r2dsp, MPI_BYTE, c->comm));
    st->t_dispatch_inter += MPI_Wtime() - tx;
    moe__a2a_traffic(&c->peers, c->s2cnt, c->r2cnt, 1, 1, st);
    dh_to_packets(c, c->s2cnt, c->s2dsp);
    dh_to_packets(c, c->r2cnt, c->r2dsp);

    /* destination: packets from stage 1 (this rank as its own relay) and stage 2, sorted
     * into flat's order: (expert, source rank, pair index) */
    c->n_mine = c->n_r2;
    for (i = 0; i < c->n_r1; i++)
        c->n_mine += fwd[i] < 0;
    if (dh_grow(&c->order, (size_t)c->n_mine * sizeof(dh_mine_t)) ||
        dh_grow(&c->arrive, (size_t)c->n_r2 * sizeof(int64_t)) ||
        dh_grow(&c->bx, (size_t)c->n_mine * d * sizeof(float)) ||
        dh_grow(&c->by, (size_t)c->n_mine * d * sizeof(float)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    mine = (dh_mine_t *)c->order.p;
    arrive = (int64_t *)c->arrive.p;
    for (i = 0, acc = 0; i < c->n_r1; i++)
        if (fwd[i] < 0) {
            mine[acc].h = (const dh_hdr_t *)DH_PKT(c->r1.p, i, pk);
            mine[acc++].slot = -1 - i;
        }
    for (i = 0; i < c->n_r2; i++) {
        mine[acc].h = (const dh_hdr_t *)DH_PKT(c->r2.p, i, pk);
        mine[acc++].slot = i;
    }
    qsort(mine, (size_t)c->n_mine, sizeof(dh_mine_t), dh_cmp);
    memset(c->offset, 0, ((size_t)c->n_local + 1) * sizeof(int64_t));
    for (i = 0; i < c->n_mine; i++) {
        const dh_hdr_t *h = mine[i].h;
        if (h->expert < 0 || h->expert >= c->n_local)
            return MOE_ERROR_SET(c->log, MOE_ERR_INVARIANT,
                                 "2dh exchange: packet for local expert %d of %d",
                                 (int)h->expert, c->n_local);
        c->offset[h->expert + 1]++;
        memcpy((float *)c->bx.p + (size_t)i * d, h + 1, (size_t)d * sizeof(float));
        if (mine[i].slot >= 0)
            arrive[mine[i].slot] = i;
        else
            fwd[-1 - mine[i].slot] = -1 - i;
    }
    for (e = 0; e < c->n_local; e++)
        c->offset[e + 1] += c->offset[e];
    batch->n_local = c->n_local;
    batch->offset = c->offset;
    batch->x = (float *)c->bx.p;
    batch->y = (float *)c->by.p;
    st->t_dispatch += MPI_Wtime() - t0 - (st->t_counts - tc0);
    return MOE_OK;
}

static moe_status_t dh_combine(void *vctx, const moe_a2a_plan_t *plan,
                               const moe_expert_batch_t *batch, float *out, moe_a2a_stats_t *st)
{
    a2a_2dh_t     *c = vctx;
    int            P = c->P, d = c->d, k = plan->top_k, r, t, j, m;
    int64_t        i, *fwd = (int64_t *)c->fwd.p, *arrive = (int64_t *)c->arrive.p;
    double         t0 = MPI_Wtime(), tx;
    const float   *y = batch->y;
    float         *ret2, *r1s, *r1r;

    if (dh_grow(&c->ret2, (size_t)c->n_s2 * d * sizeof(float)) ||
        dh_grow(&c->ret1s, (size_t)c->n_r1 * d * sizeof(float)) ||
        dh_grow(&c->ret1r, (size_t)c->n_s1 * d * sizeof(float)))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    ret2 = (float *)c->ret2.p;
    r1s = (float *)c->ret1s.p;
    r1r = (float *)c->ret1r.p;

    /* stage 2 backwards: output rows in stage-2 receive order, to the relays */
    {
        float *s = (float *)c->bx.p; /* the inputs are no longer needed: reuse as send */
        for (i = 0; i < c->n_r2; i++)
            memcpy(s + (size_t)i * d, y + (size_t)arrive[i] * d, (size_t)d * sizeof(float));
        for (r = 0; r < P; r++) {
            c->vcnt_s[r] = c->r2cnt[r] * d, c->vdsp_s[r] = c->r2dsp[r] * d;
            c->vcnt_r[r] = c->s2cnt[r] * d, c->vdsp_r[r] = c->s2dsp[r] * d;
        }
        tx = MPI_Wtime();
        MOE_MPI_CHECK(c->log, MPI_Alltoallv(s, c->vcnt_s, c->vdsp_s, MPI_FLOAT, ret2,
                                            c->vcnt_r, c->vdsp_r, MPI_FLOAT, c->comm));
        st->t_combine_inter += MPI_Wtime() - tx;
        moe__a2a_traffic(&c->peers, c->vcnt_s, c->vcnt_r, sizeof(float), 1, st);
    }
    /* stage 1 backwards: the relay returns rows in stage-1 receive order */
    for (i = 0; i < c->n_r1; i++) {
        const float *src = fwd[i] >= 0 ? ret2 + (size_t)fwd[i] * d : y + (size_t)(-1 - fwd[i]) * d;
        memcpy(r1s + (size_t)i * d, src, (size_t)d * sizeof(float));
    }
    for (r = 0; r < P; r++) {
        c->vcnt_s[r] = c->r1cnt[r] * d, c->vdsp_s[r] = c->r1dsp[r] * d;
        c->vcnt_r[r] = c->s1cnt[r] * d, c->vdsp_r[r] = c->s1dsp[r] * d;
    }
    MOE_MPI_CHECK(c->log, MPI_Alltoallv(r1s, c->vcnt_s, c->vdsp_s, MPI_FLOAT, r1r, c->vcnt_r,
                                        c->vdsp_r, MPI_FLOAT, c->comm));
    moe__a2a_traffic(&c->peers, c->vcnt_s, c->vcnt_r, sizeof(float), 1, st);
    /* source: weighted sum in slot order */
    for (t = 0; t < plan->tokens; t++) {
        float *o = out + (size_t)t * d;
        for (j = 0; j < k; j++) {
            int64_t      p = (int64_t)t * k + j;
            const float *v;
            float        w;
            if (c->pos[p] < 0)
                continue;
            v = r1r + (size_t)c->pos[p] * d;
            w = plan->weight[p];
            for (m = 0; m < d; m++)
                o[m] += w * v[m];
        }
    }
    st->t_combine += MPI_Wtime() - t0;
    return MOE_OK;
}

const moe_a2a_ops_t moe_a2a_2dh_ops = {
    .name = "2dh",
    .doc = "two-dimensional hierarchical exchange (Tutel 2DH): intra-node to the relay with "
           "the destination's local index, then inter-node along that rail; flat's bytes in "
           "(L-1)+(N-1) messages per rank",
    .create = dh_create,
    .dispatch = dh_dispatch,
    .combine = dh_combine,
    .destroy = dh_destroy,
};
