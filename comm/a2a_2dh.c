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
 * itself). No deduplication: the rows are flat's, but a rank sends (L-1) + (N-1) payload
 * messages instead of P-1: fewer, larger messages, which pays when there are many ranks per
 * node and per-message cost dominates; the price is an extra intra-node hop and copy of
 * every inter-node row.
 *
 * Rows and metadata travel apart. Rows are blocks of d floats in row buffers only
 * (moe__a2a_rows_*: with params.rows_opaque never touched, so under the simulation model
 * they are shared between simulated ranks and no row byte is copied or summed). Metadata
 * are counts, in their own int buffers, always exact:
 *   stage 1: source s -> relay R: for each q that R relays (rank order), one count per
 *            local expert of q (sum over those q of local_experts[q] ints: fixed by the
 *            placement, so no count exchange is needed before it);
 *   stage 2: relay R -> q: for each source on R's node (rank order), one count per local
 *            expert of q (size(node(R)) x local_experts[q] ints, fixed too).
 * Each stage sends the metadata to its peers, then the rows to the peers with rows. The rows
 * of a message are grouped by (destination, expert) in stage 1 and by (source, expert) in
 * stage 2, each group in the source's pair order, so the destination knows from the counts
 * alone where the rows of every (source, expert) lie and assembles its batch in flat's
 * order (expert, source rank, pair index) with block copies (comm/a2a.h): expert
 * inputs, outputs and the slot-order combine sum are bitwise those of flat.
 *
 * combine runs both stages backwards with the same layouts (no metadata): the destination
 * returns each output block to the relay it came from (stage 2) or straight to its source
 * (rows that came in stage 1), the relay puts them back in its stage-1 receive layout and
 * returns that to the sources (stage 1), and the source adds w_j * y_j in slot order j =
 * 0..k-1 (skipped when rows are opaque).
 *
 * Communication: point to point, only to peers the stage has anything for, at most
 * params.window sends and params.window receives in flight per rank (ring-distance order
 * on both ends of every transfer, so the smallest pending transfer can always complete);
 * a rank with more sends than its window sends synchronously, so no receiver holds more
 * than its senders' windows of unexpected messages. No collective: at 1024 simulated ranks
 * SimGrid sees ~(L + N) flows per rank and stage, never P^2.
 *
 * Accounting: bytes and messages per hop as they cross the wire: the metadata as count
 * bytes (not payload), the rows as payload; bytes_to_rank counts each hop's rows at its
 * receiver, so a2a-bench's busiest-link bound sees the real link load. t_counts times the
 * metadata transfers, t_dispatch_inter / t_combine_inter the rows of stage 2.
 * Buffers grow to the largest step seen and are reused.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "a2a_common.h"
#include "moerun/base/mpicheck.h"

enum { DH_TAG_META1 = 11, DH_TAG_ROWS1, DH_TAG_META2, DH_TAG_ROWS2, DH_TAG_RET2, DH_TAG_RET1 };
#define DH_WINDOW 8

/* One point-to-point transfer of a stage: peer, buffer, count of `type`. */
typedef struct dh_io {
    int   peer, count;
    void *buf;
} dh_io_t;

typedef struct a2a_2dh {
    MPI_Comm   comm;
    moe_log_t *log;
    int        P, rank, d, k, max_tokens, n_local, opaque, window;
    int       *node;         /* [P] */
    int       *nl;           /* [P] local experts of each rank */
    moe__a2a_peers_t peers;  /* (P, rank, node) for traffic accounting */
    /* my node: L ranks mem[0..L-1] in rank order, I am mem[me_j] */
    int        L, me_j, *mem;
    int       *jof;          /* [P] local index of each rank on its node */
    /* stage 1, send side: peer j gets the counts of the q it relays, q1_list[q1_off[j] ..
     * q1_off[j+1]) in rank order; send_cnt[soff[q] + e] rows of (q, expert e) */
    int       *q1_off, *q1_list, *soff, *send_cnt, n_cnt;
    int       *m1_off;       /* [L+1] ints of send_cnt going to each local peer */
    /* stage 1, relay side: I relay myq[0..nmyq-1]; moff[i] = their offset in a source's
     * metadata (M1 ints per source), r1meta[j * M1 + moff[i] + e] */
    int        nmyq, *myq, *moff, M1, *r1meta;
    int64_t   *r1blk;        /* [L * nmyq] first r1 row of block (source j, myq[i]) */
    int64_t   *r1row;        /* [L + 1] first r1 row of source j */
    /* stage 2, receive side: one relay per remote node (n2 of them, node order); relay
     * rly[i] forwards the rows of sources src2[src2_off[i] .. src2_off[i+1]) */
    int        n2, *rly, *src2_off, *src2, *r2meta; /* r2meta[(src2 index) * n_local + e] */
    int64_t   *r2row;        /* [n2 + 1] first r2 row of relay i */
    /* stage 2, send side: the myq on other nodes holding experts: s2q[i] = index into myq */
    int        ns2, *s2q, *s2meta, *s2m_off; /* s2meta[s2m_off[i] ..]: L x nl(q) ints */
    int64_t   *s2row;        /* [ns2 + 1] first s2 row of destination i */
    /* destination: rows of (source s, local expert e): where they arrived (r1 or r2 row,
     * src_at), how many (src_n), and their batch row (bpos) */
    int64_t   *src_at, *bpos;
    int       *src_n;
    unsigned char *src_in2;  /* [P] 1: source s's rows arrived in stage 2 */
    int64_t   *pos;          /* [max_tokens*k] s1 row of each pair, -1 dropped */
    int64_t   *cur;          /* [n_cnt] packing cursors */
    int64_t   *s1row;        /* [L + 1] first s1 row of local peer j */
    float     *s1, *r1, *s2, *r2, *bx, *by; /* row buffers */
    size_t     s1cap, r1cap, s2cap, r2cap, bxcap, bycap;
    int64_t   *offset;       /* [n_local + 1] */
    /* per-stage transfer lists and the window's requests */
    dh_io_t   *snd, *rcv;    /* [P] */
    MPI_Request *req;        /* [2 * window] */
    int       *req_idx;      /* [2 * window] */
    int       *scnt, *rcnt;  /* [P] bytes per peer, for moe__a2a_traffic */
} a2a_2dh_t;

static void dh_destroy(void *vctx)
{
    a2a_2dh_t *c = vctx;

    if (c == NULL)
        return;
    if (c->comm != MPI_COMM_NULL)
        MPI_Comm_free(&c->comm);
    moe__a2a_rows_free(c->s1, c->opaque), moe__a2a_rows_free(c->r1, c->opaque);
    moe__a2a_rows_free(c->s2, c->opaque), moe__a2a_rows_free(c->r2, c->opaque);
    moe__a2a_rows_free(c->bx, c->opaque), moe__a2a_rows_free(c->by, c->opaque);
    free(c->node), free(c->nl), free(c->mem), free(c->jof);
    free(c->q1_off), free(c->q1_list), free(c->soff), free(c->send_cnt), free(c->m1_off);
    free(c->myq), free(c->moff), free(c->r1meta), free(c->r1blk), free(c->r1row);
    free(c->rly), free(c->src2_off), free(c->src2), free(c->r2meta), free(c->r2row);
    free(c->s2q), free(c->s2meta), free(c->s2m_off), free(c->s2row);
    free(c->src_at), free(c->bpos), free(c->src_n), free(c->src_in2);
    free(c->pos), free(c->cur), free(c->s1row), free(c->offset);
    free(c->snd), free(c->rcv), free(c->req), free(c->req_idx), free(c->scnt), free(c->rcnt);
    free(c);
}

/* The static layout: nodes, relays, metadata sizes (they depend on the placement only). */
static moe_status_t dh_layout(a2a_2dh_t *c, const moe_a2a_params_t *prm)
{
    int P = c->P, r, q, j, i, n, nnodes = 0, mynode;
    int *size = NULL, *nmem_off = NULL, *nmem = NULL, *fill = NULL;

    for (r = 0; r < P; r++) {
        c->node[r] = prm->node_of_rank ? prm->node_of_rank[r] : 0;
        if (c->node[r] < 0 || c->node[r] >= P)
            return MOE_ERROR_SET(prm->log, MOE_ERR_INVALID, "2dh exchange: rank %d has node id "
                                 "%d, outside 0..%d", r, c->node[r], P - 1);
        nnodes = c->node[r] + 1 > nnodes ? c->node[r] + 1 : nnodes;
    }
    size = calloc((size_t)nnodes + 1, sizeof(int));
    nmem_off = calloc((size_t)nnodes + 1, sizeof(int));
    fill = calloc((size_t)P + 1, sizeof(int)); /* per node, then per local peer */
    nmem = calloc((size_t)P, sizeof(int));
    if (!size || !nmem_off || !fill || !nmem)
        goto nomem;
    /* members of every node, in rank order, and local indices */
    for (r = 0; r < P; r++)
        c->jof[r] = size[c->node[r]]++;
    for (n = 0; n < nnodes; n++)
        nmem_off[n + 1] = nmem_off[n] + size[n];
    for (r = 0; r < P; r++)
        nmem[nmem_off[c->node[r]] + fill[c->node[r]]++] = r;
    mynode = c->node[c->rank];
    c->L = size[mynode];
    c->me_j = c->jof[c->rank];
    c->mem = malloc((size_t)c->L * sizeof(int));
    c->q1_off = calloc((size_t)c->L + 1, sizeof(int));
    c->m1_off = calloc((size_t)c->L + 1, sizeof(int));
    c->soff = calloc((size_t)P, sizeof(int));
    if (!c->mem || !c->q1_off || !c->m1_off || !c->soff)
        goto nomem;
    memcpy(c->mem, nmem + nmem_off[mynode], (size_t)c->L * sizeof(int));
    /* stage 1: the relay for q is my node's member with local index li(q) mod L */
    for (q = 0; q < P; q++)
        c->q1_off[c->jof[q] % c->L + 1]++;
    for (j = 0; j < c->L; j++)
        c->q1_off[j + 1] += c->q1_off[j];
    memset(fill, 0, ((size_t)P + 1) * sizeof(int));
    for (q = 0; q < P; q++) {
        j = c->jof[q] % c->L;
        c->q1_list[c->q1_off[j] + fill[j]++] = q;
    }
    for (j = 0, c->n_cnt = 0; j < c->L; j++) {
        c->m1_off[j] = c->n_cnt;
        for (i = c->q1_off[j]; i < c->q1_off[j + 1]; i++) {
            c->soff[c->q1_list[i]] = c->n_cnt;
            c->n_cnt += c->nl[c->q1_list[i]];
        }
    }
    c->m1_off[c->L] = c->n_cnt;
    /* what I relay: the same lists on every rank of my node */
    c->nmyq = c->q1_off[c->me_j + 1] - c->q1_off[c->me_j];
    c->myq = malloc(((size_t)c->nmyq + 1) * sizeof(int));
    c->moff = malloc(((size_t)c->nmyq + 1) * sizeof(int));
    c->s2q = malloc(((size_t)c->nmyq + 1) * sizeof(int));
    c->s2m_off = calloc((size_t)c->nmyq + 2, sizeof(int));
    c->s2row = calloc((size_t)c->nmyq + 2, sizeof(int64_t));
    if (!c->myq || !c->moff || !c->s2q || !c->s2m_off || !c->s2row)
        goto nomem;
    for (i = 0, c->M1 = 0; i < c->nmyq; i++) {
        q = c->myq[i] = c->q1_list[c->q1_off[c->me_j] + i];
        c->moff[i] = c->M1;
        c->M1 += c->nl[q];
        if (c->node[q] != mynode && c->nl[q] > 0) {
            c->s2q[c->ns2] = i;
            c->s2m_off[c->ns2 + 1] = c->s2m_off[c->ns2] + c->L * c->nl[q];
            c->ns2++;
        }
    }
    c->r1meta = calloc((size_t)c->L * c->M1 + 1, sizeof(int));
    c->r1blk = calloc((size_t)c->L * c->nmyq + 1, sizeof(int64_t));
    c->r1row = calloc((size_t)c->L + 1, sizeof(int64_t));
    c->s2meta = calloc((size_t)c->s2m_off[c->ns2] + 1, sizeof(int));
    /* stage 2, receive side: from each other node, the member with my local index mod its
     * size relays the rows of all its members (if I hold experts) */
    c->rly = calloc((size_t)nnodes + 1, sizeof(int));
    c->src2_off = calloc((size_t)nnodes + 2, sizeof(int));
    c->src2 = calloc((size_t)P + 1, sizeof(int));
    c->r2row = calloc((size_t)nnodes + 2, sizeof(int64_t));
    if (!c->r1meta || !c->r1blk || !c->r1row || !c->s2meta || !c->rly || !c->src2_off ||
        !c->src2 || !c->r2row)
        goto nomem;
    for (n = 0, c->n2 = 0; n < nnodes && c->n_local > 0; n++) {
        if (n == mynode || size[n] == 0)
            continue;
        c->rly[c->n2] = nmem[nmem_off[n] + c->me_j % size[n]];
        memcpy(c->src2 + c->src2_off[c->n2], nmem + nmem_off[n], (size_t)size[n] * sizeof(int));
        c->src2_off[c->n2 + 1] = c->src2_off[c->n2] + size[n];
        c->n2++;
    }
    c->r2meta = calloc((size_t)c->src2_off[c->n2] * c->n_local + 1, sizeof(int));
    c->send_cnt = calloc((size_t)c->n_cnt + 1, sizeof(int));
    c->cur = calloc((size_t)c->n_cnt + 1, sizeof(int64_t));
    if (!c->r2meta || !c->send_cnt || !c->cur)
        goto nomem;
    free(size), free(nmem_off), free(nmem), free(fill);
    return MOE_OK;
nomem:
    free(size), free(nmem_off), free(nmem), free(fill);
    return MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
}

static moe_status_t dh_create(const moe_a2a_params_t *prm, void **ctx_p)
{
    a2a_2dh_t   *c = calloc(1, sizeof(*c));
    int          P;
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
    c->opaque = prm->rows_opaque;
    c->window = prm->window > 0 ? prm->window : DH_WINDOW;
    /* MPI counts are ints: a rank may send at most every pair in one message */
    if ((double)c->max_tokens * c->k * (double)c->d > (double)INT_MAX) {
        st = MOE_ERROR_SET(prm->log, MOE_ERR_INVALID,
                           "2dh exchange: tokens %d x top_k %d x d_model %d floats exceeds "
                           "MPI's int counts; lower tokens or d_model", c->max_tokens, c->k,
                           c->d);
        goto err;
    }
    c->node = calloc((size_t)P, sizeof(int));
    c->nl = malloc((size_t)P * sizeof(int));
    c->jof = calloc((size_t)P, sizeof(int));
    c->q1_list = calloc((size_t)P, sizeof(int));
    c->src_at = calloc((size_t)P * c->n_local + 1, sizeof(int64_t));
    c->bpos = calloc((size_t)P * c->n_local + 1, sizeof(int64_t));
    c->src_n = calloc((size_t)P * c->n_local + 1, sizeof(int));
    c->src_in2 = calloc((size_t)P, 1);
    c->pos = malloc(((size_t)c->max_tokens * c->k + 1) * sizeof(int64_t));
    c->offset = calloc((size_t)c->n_local + 1, sizeof(int64_t));
    c->snd = calloc((size_t)P, sizeof(dh_io_t));
    c->rcv = calloc((size_t)P, sizeof(dh_io_t));
    c->req = malloc(2 * (size_t)c->window * sizeof(MPI_Request));
    c->req_idx = calloc(2 * (size_t)c->window, sizeof(int));
    c->scnt = calloc((size_t)P, sizeof(int));
    c->rcnt = calloc((size_t)P, sizeof(int));
    if (!c->node || !c->nl || !c->jof || !c->q1_list || !c->src_at || !c->bpos || !c->src_n ||
        !c->src_in2 || !c->pos || !c->offset || !c->snd || !c->rcv || !c->req || !c->req_idx ||
        !c->scnt || !c->rcnt) {
        st = MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
        goto err;
    }
    memcpy(c->nl, prm->local_experts, (size_t)P * sizeof(int));
    c->peers.nranks = P;
    c->peers.rank = c->rank;
    c->peers.node = c->node;
    c->s1row = calloc((size_t)P + 1, sizeof(int64_t)); /* L + 1 <= P + 1 */
    if (c->s1row == NULL) {
        st = MOE_ERROR_SET(prm->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
        goto err;
    }
    if ((st = dh_layout(c, prm)) != MOE_OK)
        goto err;
    *ctx_p = c;
    return MOE_OK;
err:
    dh_destroy(c);
    return st;
}

/* Ring distance of a transfer between `from` and `to`: the same on both ends. */
static int dh_dist(const a2a_2dh_t *c, int from, int to)
{
    return (to - from + c->P) % c->P;
}

/* Sorts a transfer list by ring distance (insertion sort: lists are built nearly sorted
 * and short: L or N entries). recv: distances from the peer to me. */
static void dh_sort(const a2a_2dh_t *c, dh_io_t *io, int n, int recv)
{
    int i, j;

    for (i = 1; i < n; i++) {
        dh_io_t x = io[i];
        for (j = i; j > 0; j--) {
            int less = recv ? dh_dist(c, x.peer, c->rank) < dh_dist(c, io[j - 1].peer, c->rank)
                            : dh_dist(c, c->rank, x.peer) < dh_dist(c, c->rank, io[j - 1].peer);
            if (!less)
                break;
            io[j] = io[j - 1];
        }
        io[j] = x;
    }
}

/*
 * Runs one stage's transfers: c->snd[0..ns) and c->rcv[0..nr) (count elements of `type`
 * each, none to or from this rank), at most c->window of each in flight, posted in
 * ring-distance order (both lists sorted here). A rank with more sends than its window
 * sends synchronously (see the file comment). Accounts them (elem bytes per element;
 * payload as moe__a2a_traffic) plus `self` elements this rank moved to itself.
 */
static moe_status_t dh_transfer(a2a_2dh_t *c, int ns, int nr, MPI_Datatype type, size_t elem,
                                int tag, int payload, int64_t self, moe_a2a_stats_t *st)
{
    int W = c->window, si = 0, ri = 0, sact = 0, ract = 0, n, i, sync = ns > W;

    dh_sort(c, c->snd, ns, 0);
    dh_sort(c, c->rcv, nr, 1);
    for (i = 0; i < 2 * W; i++)
        c->req[i] = MPI_REQUEST_NULL;
    while (si < ns || ri < nr || sact + ract > 0) {
        for (i = 0; i < W && si < ns && sact < W; i++) /* sends: slots 0..W-1 */
            if (c->req[i] == MPI_REQUEST_NULL) {
                const dh_io_t *o = &c->snd[si++];
                if (sync)
                    MOE_MPI_CHECK(c->log, MPI_Issend(o->buf, o->count, type, o->peer, tag,
                                                     c->comm, &c->req[i]));
                else
                    MOE_MPI_CHECK(c->log, MPI_Isend(o->buf, o->count, type, o->peer, tag,
                                                    c->comm, &c->req[i]));
                sact++;
            }
        for (i = W; i < 2 * W && ri < nr && ract < W; i++) /* receives: slots W..2W-1 */
            if (c->req[i] == MPI_REQUEST_NULL) {
                const dh_io_t *o = &c->rcv[ri++];
                MOE_MPI_CHECK(c->log, MPI_Irecv(o->buf, o->count, type, o->peer, tag, c->comm,
                                                &c->req[i]));
                ract++;
            }
        if (sact + ract == 0)
            break;
        MOE_MPI_CHECK(c->log, MPI_Waitsome(2 * W, c->req, &n, c->req_idx, MPI_STATUSES_IGNORE));
        for (i = 0; n != MPI_UNDEFINED && i < n; i++) {
            if (c->req_idx[i] < W)
                sact--;
            else
                ract--;
        }
    }
    memset(c->scnt, 0, (size_t)c->P * sizeof(int));
    memset(c->rcnt, 0, (size_t)c->P * sizeof(int));
    for (i = 0; i < ns; i++)
        c->scnt[c->snd[i].peer] = c->snd[i].count;
    for (i = 0; i < nr; i++)
        c->rcnt[c->rcv[i].peer] = c->rcv[i].count;
    c->scnt[c->rank] = c->rcnt[c->rank] = (int)self;
    moe__a2a_traffic(&c->peers, c->scnt, c->rcnt, elem, payload, st);
    return MOE_OK;
}

/* Rows of `rows` rows as an MPI count of floats, or an error naming the stage. */
static moe_status_t dh_count(a2a_2dh_t *c, int64_t rows, const char *what, int *count_p)
{
    if ((double)rows * c->d > (double)INT_MAX)
        return MOE_ERROR_SET(c->log, MOE_ERR_INVALID, "2dh exchange: %s of %lld rows x "
                             "d_model %d floats exceeds MPI's int counts; lower tokens",
                             what, (long long)rows, c->d);
    *count_p = (int)(rows * c->d);
    return MOE_OK;
}

static int dh_rows_grow(const a2a_2dh_t *c, float **buf, size_t *cap, int64_t rows)
{
    return moe__a2a_rows_grow(buf, cap, rows, c->d, c->opaque);
}

/* A relay's rows between its stage-1 receive layout r1 (source j, then destination q) and
 * its stage-2 send layout s2 (destination q, then source j): to_s2 = 1 packs stage 2's rows
 * (dispatch), 0 puts the returned outputs back where they came from (combine). */
static void dh_relay_rows(a2a_2dh_t *c, int to_s2)
{
    int     i, j, d = c->d;
    size_t  row = (size_t)d * sizeof(float);

    for (i = 0; i < c->ns2; i++) {
        int     qi = c->s2q[i];
        int64_t at = c->s2row[i];
        for (j = 0; j < c->L; j++) {
            int64_t b = c->r1blk[(size_t)j * c->nmyq + qi];
            int64_t end = qi + 1 < c->nmyq ? c->r1blk[(size_t)j * c->nmyq + qi + 1]
                                           : c->r1row[j + 1];
            float  *s2 = c->s2 + at * d, *r1 = c->r1 + b * d;
            moe__a2a_rows_copy(c->opaque, to_s2 ? s2 : r1, to_s2 ? r1 : s2,
                               (size_t)(end - b) * row);
            at += end - b;
        }
    }
}

/* Stage 1 of dispatch: counts, packing (pos[]), metadata and rows to the relays. */
static moe_status_t dh_stage1(a2a_2dh_t *c, const moe_a2a_plan_t *plan, const float *x,
                              moe_a2a_stats_t *st)
{
    int          L = c->L, d = c->d, k = plan->top_k, j, i, e, ns = 0, nr = 0;
    int64_t      npairs = (int64_t)plan->tokens * k, p, acc;
    const int   *nl = c->nl;
    double       t0;
    moe_status_t s;

    memset(c->send_cnt, 0, (size_t)c->n_cnt * sizeof(int));
    for (p = 0; p < npairs; p++) {
        int q = plan->dest_rank[p], pe = plan->dest_expert[p];
        if (q < 0)
            continue;
        if (q >= c->P || pe < 0 || pe >= nl[q])
            return MOE_ERROR_SET(c->log, MOE_ERR_INVARIANT, "2dh exchange: pair for rank %d "
                                 "local expert %d", q, pe);
        c->send_cnt[c->soff[q] + pe]++;
    }
    /* s1 layout: local peer j, then the q it relays, then expert, then pair order */
    for (j = 0, acc = 0; j < L; j++) {
        c->s1row[j] = acc;
        for (i = c->m1_off[j]; i < c->m1_off[j + 1]; i++) {
            c->cur[i] = acc;
            acc += c->send_cnt[i];
        }
    }
    c->s1row[L] = acc;
    if (dh_rows_grow(c, &c->s1, &c->s1cap, acc))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    for (p = 0; p < npairs; p++) {
        int q = plan->dest_rank[p];
        if (q < 0) {
            c->pos[p] = -1;
            continue;
        }
        c->pos[p] = c->cur[c->soff[q] + plan->dest_expert[p]]++;
        moe__a2a_rows_copy(c->opaque, c->s1 + c->pos[p] * d, x + (size_t)(p / k) * d,
                           (size_t)d * sizeof(float));
    }
    /* metadata to every local peer (sizes fixed by the placement) */
    t0 = MPI_Wtime();
    for (j = 0; j < L; j++) {
        int n1 = c->m1_off[j + 1] - c->m1_off[j];
        if (j == c->me_j) {
            memcpy(c->r1meta + (size_t)j * c->M1, c->send_cnt + c->m1_off[j],
                   (size_t)n1 * sizeof(int));
            continue;
        }
        if (n1 > 0)
            c->snd[ns++] = (dh_io_t){c->mem[j], n1, c->send_cnt + c->m1_off[j]};
        if (c->M1 > 0)
            c->rcv[nr++] = (dh_io_t){c->mem[j], c->M1, c->r1meta + (size_t)j * c->M1};
    }
    if ((s = dh_transfer(c, ns, nr, MPI_INT, sizeof(int), DH_TAG_META1, 0, 0, st)) != MOE_OK)
        return s;
    st->t_counts += MPI_Wtime() - t0;
    /* r1 layout: source j, then the q I relay, then expert */
    for (j = 0, acc = 0; j < L; j++) {
        const int *m = c->r1meta + (size_t)j * c->M1;
        c->r1row[j] = acc;
        for (i = 0; i < c->nmyq; i++) {
            c->r1blk[(size_t)j * c->nmyq + i] = acc;
            for (e = 0; e < nl[c->myq[i]]; e++) {
                if (m[c->moff[i] + e] < 0)
                    return MOE_ERROR_SET(c->log, MOE_ERR_INVARIANT, "2dh exchange: %d rows "
                                         "from rank %d", m[c->moff[i] + e], c->mem[j]);
                acc += m[c->moff[i] + e];
            }
        }
    }
    c->r1row[L] = acc;
    if (dh_rows_grow(c, &c->r1, &c->r1cap, acc))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    for (j = 0, ns = nr = 0; j < L; j++) {
        int64_t sn = c->s1row[j + 1] - c->s1row[j], rn = c->r1row[j + 1] - c->r1row[j];
        if (j == c->me_j) {
            moe__a2a_rows_copy(c->opaque, c->r1 + c->r1row[j] * d, c->s1 + c->s1row[j] * d,
                               (size_t)sn * d * sizeof(float));
            continue;
        }
        if (sn > 0) {
            if ((s = dh_count(c, sn, "stage-1 message", &c->snd[ns].count)) != MOE_OK)
                return s;
            c->snd[ns].peer = c->mem[j], c->snd[ns++].buf = c->s1 + c->s1row[j] * d;
        }
        if (rn > 0) {
            if ((s = dh_count(c, rn, "stage-1 message", &c->rcv[nr].count)) != MOE_OK)
                return s;
            c->rcv[nr].peer = c->mem[j], c->rcv[nr++].buf = c->r1 + c->r1row[j] * d;
        }
    }
    return dh_transfer(c, ns, nr, MPI_FLOAT, sizeof(float), DH_TAG_ROWS1, 1,
                       (c->s1row[c->me_j + 1] - c->s1row[c->me_j]) * d, st);
}

/* Stage 2 of dispatch: the relay forwards (source, expert) blocks to the destinations on
 * other nodes; this rank receives its rows from one relay per other node. */
static moe_status_t dh_stage2(a2a_2dh_t *c, moe_a2a_stats_t *st)
{
    int          L = c->L, d = c->d, nloc = c->n_local, i, j, ns = 0, nr = 0;
    int64_t      acc;
    double       t0 = MPI_Wtime(), tx;
    moe_status_t s;

    /* metadata: to each destination, per source j of my node, its counts per expert */
    for (i = 0; i < c->ns2; i++) {
        int qi = c->s2q[i], q = c->myq[qi], nq = c->nl[q], *m = c->s2meta + c->s2m_off[i];
        for (j = 0; j < L; j++)
            memcpy(m + (size_t)j * nq, c->r1meta + (size_t)j * c->M1 + c->moff[qi],
                   (size_t)nq * sizeof(int));
        c->snd[ns++] = (dh_io_t){q, L * nq, m};
    }
    for (i = 0; i < c->n2; i++) {
        int ni = c->src2_off[i + 1] - c->src2_off[i];
        c->rcv[nr++] = (dh_io_t){c->rly[i], ni * nloc, c->r2meta + (size_t)c->src2_off[i] * nloc};
    }
    if ((s = dh_transfer(c, ns, nr, MPI_INT, sizeof(int), DH_TAG_META2, 0, 0, st)) != MOE_OK)
        return s;
    st->t_counts += MPI_Wtime() - t0;
    /* s2: destination, then source j, then expert: the (j, q) blocks of r1 */
    for (i = 0, acc = 0; i < c->ns2; i++) {
        int qi = c->s2q[i];
        c->s2row[i] = acc;
        for (j = 0; j < L; j++) {
            int64_t b = c->r1blk[(size_t)j * c->nmyq + qi];
            int64_t end = qi + 1 < c->nmyq ? c->r1blk[(size_t)j * c->nmyq + qi + 1]
                                           : c->r1row[j + 1];
            acc += end - b;
        }
    }
    c->s2row[c->ns2] = acc;
    if (dh_rows_grow(c, &c->s2, &c->s2cap, acc))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    dh_relay_rows(c, 1);
    /* r2: relay, then its sources, then expert */
    for (i = 0, acc = 0; i < c->n2; i++) {
        int64_t sb;
        c->r2row[i] = acc;
        for (sb = (int64_t)c->src2_off[i] * nloc; sb < (int64_t)c->src2_off[i + 1] * nloc; sb++) {
            if (c->r2meta[sb] < 0)
                return MOE_ERROR_SET(c->log, MOE_ERR_INVARIANT, "2dh exchange: %d rows "
                                     "relayed by rank %d", c->r2meta[sb], c->rly[i]);
            acc += c->r2meta[sb];
        }
    }
    c->r2row[c->n2] = acc;
    if (dh_rows_grow(c, &c->r2, &c->r2cap, acc))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    for (i = 0, ns = nr = 0; i < c->ns2; i++) {
        int64_t n = c->s2row[i + 1] - c->s2row[i];
        if (n == 0)
            continue;
        if ((s = dh_count(c, n, "stage-2 message", &c->snd[ns].count)) != MOE_OK)
            return s;
        c->snd[ns].peer = c->myq[c->s2q[i]], c->snd[ns++].buf = c->s2 + c->s2row[i] * d;
    }
    for (i = 0; i < c->n2; i++) {
        int64_t n = c->r2row[i + 1] - c->r2row[i];
        if (n == 0)
            continue;
        if ((s = dh_count(c, n, "stage-2 message", &c->rcv[nr].count)) != MOE_OK)
            return s;
        c->rcv[nr].peer = c->rly[i], c->rcv[nr++].buf = c->r2 + c->r2row[i] * d;
    }
    tx = MPI_Wtime();
    s = dh_transfer(c, ns, nr, MPI_FLOAT, sizeof(float), DH_TAG_ROWS2, 1, 0, st);
    st->t_dispatch_inter += MPI_Wtime() - tx;
    return s;
}

/* Where the rows of (source s, my expert e) arrived, and the batch in flat's order. */
static moe_status_t dh_assemble(a2a_2dh_t *c)
{
    int     P = c->P, d = c->d, nloc = c->n_local, i, j, e, s, mi = -1;
    int64_t at, b;

    for (i = 0; i < c->nmyq; i++) /* I relay myself */
        if (c->myq[i] == c->rank)
            mi = i;
    if (nloc > 0 && mi < 0)
        return MOE_ERROR_SET(c->log, MOE_ERR_INVARIANT, "2dh exchange: rank %d is not its "
                             "own relay", c->rank);
    for (j = 0; j < c->L && nloc > 0; j++) { /* stage 1: sources on my node */
        const int *m = c->r1meta + (size_t)j * c->M1 + c->moff[mi];
        s = c->mem[j];
        at = c->r1blk[(size_t)j * c->nmyq + mi];
        c->src_in2[s] = 0;
        for (e = 0; e < nloc; e++) {
            c->src_at[(size_t)s * nloc + e] = at;
            c->src_n[(size_t)s * nloc + e] = m[e];
            at += m[e];
        }
    }
    for (i = 0; i < c->n2; i++) { /* stage 2: one relay per other node */
        at = c->r2row[i];
        for (j = c->src2_off[i]; j < c->src2_off[i + 1]; j++) {
            s = c->src2[j];
            c->src_in2[s] = 1;
            for (e = 0; e < nloc; e++) {
                c->src_at[(size_t)s * nloc + e] = at;
                c->src_n[(size_t)s * nloc + e] = c->r2meta[(size_t)j * nloc + e];
                at += c->r2meta[(size_t)j * nloc + e];
            }
        }
    }
    /* batch: expert, then source rank, each block in the source's pair order */
    for (e = 0, b = 0; e < nloc; e++) {
        c->offset[e] = b;
        for (s = 0; s < P; s++)
            b += c->src_n[(size_t)s * nloc + e];
    }
    c->offset[nloc] = b;
    if (moe__a2a_rows_grow(&c->bx, &c->bxcap, b, d, c->opaque) ||
        moe__a2a_rows_grow(&c->by, &c->bycap, b, d, c->opaque))
        return MOE_ERROR_SET(c->log, MOE_ERR_NOMEM, "2dh exchange: out of memory");
    for (e = 0, b = 0; e < nloc; e++)
        for (s = 0; s < P; s++) {
            size_t  si = (size_t)s * nloc + e;
            int64_t n = c->src_n[si];
            c->bpos[si] = b;
            moe__a2a_rows_copy(c->opaque, c->bx + b * d,
                               (c->src_in2[s] ? c->r2 : c->r1) + c->src_at[si] * d,
                               (size_t)n * d * sizeof(float));
            b += n;
        }
    return MOE_OK;
}

static moe_status_t dh_dispatch(void *vctx, const moe_a2a_plan_t *plan, const float *x,
                                moe_expert_batch_t *batch, moe_a2a_stats_t *st)
{
    a2a_2dh_t   *c = vctx;
    double       t0 = MPI_Wtime(), tc0 = st->t_counts;
    moe_status_t s;

    if ((s = dh_stage1(c, plan, x, st)) != MOE_OK || (s = dh_stage2(c, st)) != MOE_OK ||
        (s = dh_assemble(c)) != MOE_OK)
        return s;
    batch->n_local = c->n_local;
    batch->offset = c->offset;
    batch->x = c->bx;
    batch->y = c->by;
    st->t_dispatch += MPI_Wtime() - t0 - (st->t_counts - tc0);
    return MOE_OK;
}

static moe_status_t dh_combine(void *vctx, const moe_a2a_plan_t *plan,
                               const moe_expert_batch_t *batch, float *out, moe_a2a_stats_t *st)
{
    a2a_2dh_t    *c = vctx;
    int           P = c->P, L = c->L, d = c->d, nloc = c->n_local, k = plan->top_k;
    int           i, j, e, s, t, ns = 0, nr = 0;
    const float  *y = batch->y;
    double        t0 = MPI_Wtime(), tx;
    moe_status_t  status;

    /* outputs back into the receive layouts: r2 (to the relays) and r1 (my node's sources;
     * the dispatch buffers are free now and take the returns) */
    for (s = 0; s < P && nloc > 0; s++)
        for (e = 0; e < nloc; e++) {
            size_t si = (size_t)s * nloc + e;
            moe__a2a_rows_copy(c->opaque, (c->src_in2[s] ? c->r2 : c->r1) + c->src_at[si] * d,
                               y + c->bpos[si] * d, (size_t)c->src_n[si] * d * sizeof(float));
        }
    /* stage 2 backwards: r2 blocks to the relays, into s2 */
    for (i = 0; i < c->n2; i++) {
        int64_t n = c->r2row[i + 1] - c->r2row[i];
        if (n > 0)
            c->snd[ns++] = (dh_io_t){c->rly[i], (int)(n * d), c->r2 + c->r2row[i] * d};
    }
    for (i = 0; i < c->ns2; i++) {
        int64_t n = c->s2row[i + 1] - c->s2row[i];
        if (n > 0)
            c->rcv[nr++] = (dh_io_t){c->myq[c->s2q[i]], (int)(n * d), c->s2 + c->s2row[i] * d};
    }
    tx = MPI_Wtime();
    if ((status = dh_transfer(c, ns, nr, MPI_FLOAT, sizeof(float), DH_TAG_RET2, 1, 0, st)) != MOE_OK)
        return status;
    st->t_combine_inter += MPI_Wtime() - tx;
    /* relay: returned blocks back into r1 at the (j, q) blocks they left from */
    dh_relay_rows(c, 0);
    /* stage 1 backwards: r1 region of source j back to it, into s1 */
    for (j = 0, ns = nr = 0; j < L; j++) {
        int64_t rn = c->r1row[j + 1] - c->r1row[j], sn = c->s1row[j + 1] - c->s1row[j];
        if (j == c->me_j) {
            moe__a2a_rows_copy(c->opaque, c->s1 + c->s1row[j] * d, c->r1 + c->r1row[j] * d,
                               (size_t)sn * d * sizeof(float));
            continue;
        }
        if (rn > 0)
            c->snd[ns++] = (dh_io_t){c->mem[j], (int)(rn * d), c->r1 + c->r1row[j] * d};
        if (sn > 0)
            c->rcv[nr++] = (dh_io_t){c->mem[j], (int)(sn * d), c->s1 + c->s1row[j] * d};
    }
    if ((status = dh_transfer(c, ns, nr, MPI_FLOAT, sizeof(float), DH_TAG_RET1, 1,
                           (c->r1row[c->me_j + 1] - c->r1row[c->me_j]) * d, st)) != MOE_OK)
        return status;
    /* source: weighted sum in slot order */
    for (t = 0; t < plan->tokens && !c->opaque; t++) {
        float *o = out + (size_t)t * d;
        for (j = 0; j < k; j++) {
            int64_t p = (int64_t)t * k + j;
            if (c->pos[p] >= 0)
                moe__a2a_add_scaled(o, c->s1 + c->pos[p] * d, plan->weight[p], d);
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
