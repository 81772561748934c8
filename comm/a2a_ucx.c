/*
 * comm/a2a_ucx.c — the "ucx" exchange: the hierarchical algorithm of comm/a2a_hier.c with
 * its inter-node stage carried by UCX UCP one-sided puts instead of MPI.
 *
 * Only the transport lives here (a moe__hier_transport_t); the algorithm, the count exchange,
 * the intra-node stage and the traffic accounting are those of "hier". UCX is bootstrapped
 * over MPI: one context (features RMA | AMO64) and one worker (single-threaded) per rank;
 * worker addresses are allgathered; endpoints exist to every rank on another node, and to
 * no other (same-node traffic is MPI's).
 *
 * Registered memory (ucp_mem_map with UCP_MEM_MAP_ALLOCATE), three regions per rank:
 *   units    receive space of exchange_units    (grown on demand; a two-part transfer's
 *            rows after its first part, at the next multiple of 64 bytes),
 *   vectors  receive space of exchange_vectors  (grown on demand),
 *   signal   uint64 arrival counters [P], one per source rank (fixed size).
 * Each region's rkey and base address are allgathered; every rank holds the unpacked rkeys
 * of the ranks it has an endpoint to.
 *
 * One exchange (collective, same order on all ranks):
 *  1. MPI_Alltoall of {where source s's bytes go in my receive space, where its rows go,
 *     my total need}: every
 *     sender learns its remote offsets, and every rank learns every rank's need, so all agree
 *     whether to grow a region (then re-map and re-exchange rkeys, collectively), size =
 *     max(largest need, twice the current size);
 *  2. ucp_put_nbx of each non-empty block (and its rows) into the destination's region at
 *     its offset;
 *  3. ucp_worker_fence, then ucp_atomic_op_nbx(ADD 1) on signal[me] at each destination;
 *  4. progress the worker until my requests are complete and, for every source s that sends
 *     to me, signal[s] has reached expect[s] (the counters only grow: expect[s] += 1 for each
 *     exchange in which s sends to me, so nothing is ever reset);
 *  5. MPI_Ibarrier, polled together with ucp_worker_progress: over tcp (and shm with
 *     registered user memory) puts are active messages that need the target's progress, so
 *     no rank may block in MPI while a peer still waits on it.
 * Always: a region is written only between steps 1 and 4 of an exchange, by puts whose
 * offsets the receiver handed out; the receiver reads it only after step 4; no remote
 * operation is in flight outside an exchange (step 5), which is what makes re-mapping in
 * step 1 and teardown safe. Poll loops yield the CPU (ranks may outnumber cores).
 *
 * Environment: unless the user set them (or chose UCX_TLS without tcp), UCX_TCP_TX_SEG_SIZE
 * and UCX_TCP_RX_SEG_SIZE are set to 256K (setenv, in this process) before the UCX
 * configuration is read: puts over tcp are emulated with active messages, and the default
 * 8K segments make them slow. Do not set UCX_PROTO_ENABLE=y with UCX 1.13: the new protocols
 * break the put/fence/atomic ordering this file relies on. All other UCX_* are the user's.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <ucp/api/ucp.h>

#include "a2a_common.h"
#include "a2a_hier.h"
#include "moerun/base/mpicheck.h"

enum {
    UCX_REG_UNITS = 0,
    UCX_REG_VECTORS,
    UCX_REG_SIGNAL,
    UCX_NREG
};

#define UCX_REGION_MIN  (64u * 1024u)   /* first size of a receive region, bytes */
#define UCX_REGION_ALIGN 4096u          /* region sizes are multiples of this */

static const char *const ucx_region_names[UCX_NREG] = {"units", "vectors", "signal"};

typedef struct ucx_region {
    ucp_mem_h   memh;   /* NULL when not mapped */
    void       *base;
    size_t      size;
    uint64_t   *raddr;  /* [P] base address of each rank's region */
    ucp_rkey_h *rkey;   /* [P] unpacked rkeys, NULL where there is no endpoint */
} ucx_region_t;

typedef struct a2a_ucx {
    MPI_Comm      comm;   /* borrowed from the algorithm */
    moe_log_t    *log;
    int           P, rank;
    ucp_context_h ucp;
    ucp_worker_h  worker;
    ucp_ep_h     *ep;     /* [P] NULL for ranks on this node (and self) */
    ucx_region_t  reg[UCX_NREG];
    uint64_t     *expect; /* [P] arrivals expected from each source, cumulative */
    uint64_t      one;    /* operand of the arrival add; lives as long as the requests */
    int64_t      *xs, *xr;/* [3P] alltoall scratch: {offset for the peer, its rows' offset,
                           * my need} */
    void        **req;    /* [nreq_cap] outstanding requests of one exchange */
    int           nreq, nreq_cap;
    moe__hier_xfer_t cx;  /* chunked form: the transfer under way, its region and pieces */
    int           cid, cchunks;
    int           failed; /* an exchange failed: tear down without waiting for peers */
} a2a_ucx_t;

/* ucs_status_t -> moe_status_t, with the UCX text in the log. */
static moe_status_t ucx_error(a2a_ucx_t *t, ucs_status_t us, const char *what)
{
    moe_status_t st;

    switch (us) {
    case UCS_ERR_NO_MEMORY:
        st = MOE_ERR_NOMEM;
        break;
    case UCS_ERR_INVALID_PARAM:
        st = MOE_ERR_INVALID;
        break;
    case UCS_ERR_UNSUPPORTED:
    case UCS_ERR_NO_DEVICE:
    case UCS_ERR_UNREACHABLE:
        st = MOE_ERR_UNSUPPORTED;
        break;
    default:
        st = MOE_ERR_IO;
        break;
    }
    return MOE_ERROR_SET(t->log, st, "ucx exchange: %s failed on rank %d: %s", what, t->rank,
                         ucs_status_string(us));
}

/* Progresses until the collective `rq` completes, serving peers' operations meanwhile. */
static moe_status_t ucx_mpi_wait(a2a_ucx_t *t, MPI_Request *rq)
{
    int flag = 0;

    for (;;) {
        unsigned n = ucp_worker_progress(t->worker);
        MOE_MPI_CHECK(t->log, MPI_Test(rq, &flag, MPI_STATUS_IGNORE));
        if (flag)
            return MOE_OK;
        if (n == 0)
            sched_yield();
    }
}

/* Keeps a request returned by a *_nbx call; returns the immediate error, if any. */
static ucs_status_t ucx_track(a2a_ucx_t *t, ucs_status_ptr_t sp)
{
    if (UCS_PTR_IS_ERR(sp))
        return UCS_PTR_STATUS(sp);
    if (sp != NULL)
        t->req[t->nreq++] = sp;
    return UCS_OK;
}

/* Progresses until every tracked request is complete (and freed) and, if `arrivals`, every
 * expected arrival counter is reached. Returns the first request error. */
static ucs_status_t ucx_progress_until(a2a_ucx_t *t, int arrivals)
{
    const volatile uint64_t *sig = t->reg[UCX_REG_SIGNAL].base;
    ucs_status_t             first = UCS_OK;
    int                      i, s;

    for (;;) {
        int done = 1;
        for (i = 0; i < t->nreq; i++) {
            ucs_status_t rs;
            if (t->req[i] == NULL)
                continue;
            rs = ucp_request_check_status(t->req[i]);
            if (rs == UCS_INPROGRESS) {
                done = 0;
                continue;
            }
            if (rs != UCS_OK && first == UCS_OK)
                first = rs;
            ucp_request_free(t->req[i]);
            t->req[i] = NULL;
        }
        for (s = 0; arrivals && done && s < t->P; s++)
            done = sig[s] >= t->expect[s];
        if (done)
            break;
        if (ucp_worker_progress(t->worker) == 0)
            sched_yield();
    }
    t->nreq = 0;
    atomic_thread_fence(memory_order_acquire); /* the data is read after the signal */
    return first;
}

static void ucx_region_unmap(a2a_ucx_t *t, ucx_region_t *rg)
{
    int r;

    if (rg->rkey)
        for (r = 0; r < t->P; r++)
            if (rg->rkey[r])
                ucp_rkey_destroy(rg->rkey[r]);
    if (rg->memh)
        ucp_mem_unmap(t->ucp, rg->memh);
    free(rg->rkey);
    free(rg->raddr);
    memset(rg, 0, sizeof(*rg));
}

/* Collective. Maps `size` bytes (zeroed if `zero`), allgathers base addresses and rkeys.
 * On failure nothing stays mapped. Undone by ucx_region_unmap. */
static moe_status_t ucx_region_map(a2a_ucx_t *t, ucx_region_t *rg, size_t size, int zero,
                                   const char *name)
{
    ucp_mem_map_params_t mp;
    ucp_mem_attr_t       ma;
    ucs_status_t         us;
    moe_status_t         st = MOE_OK;
    void                *packed = NULL;
    size_t               plen = 0;
    int                 *len = NULL, *dsp = NULL, r, mylen, tot;
    char                *all = NULL;
    uint64_t             mybase;

    memset(rg, 0, sizeof(*rg));
    rg->raddr = calloc((size_t)t->P, sizeof(*rg->raddr));
    rg->rkey = calloc((size_t)t->P, sizeof(*rg->rkey));
    len = calloc((size_t)t->P, sizeof(int));
    dsp = calloc((size_t)t->P, sizeof(int));
    if (!rg->raddr || !rg->rkey || !len || !dsp) {
        st = MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "ucx exchange: out of memory");
        goto err;
    }
    memset(&mp, 0, sizeof(mp));
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_LENGTH | UCP_MEM_MAP_PARAM_FIELD_FLAGS;
    mp.length = size;
    mp.flags = UCP_MEM_MAP_ALLOCATE;
    us = ucp_mem_map(t->ucp, &mp, &rg->memh);
    if (us != UCS_OK) {
        rg->memh = NULL;
        st = ucx_error(t, us, "ucp_mem_map");
        goto err;
    }
    ma.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH;
    us = ucp_mem_query(rg->memh, &ma);
    if (us != UCS_OK) {
        st = ucx_error(t, us, "ucp_mem_query");
        goto err;
    }
    rg->base = ma.address;
    rg->size = ma.length < size ? ma.length : size;
    if (zero)
        memset(rg->base, 0, rg->size); /* before anyone holds the rkey */
    us = ucp_rkey_pack(t->ucp, rg->memh, &packed, &plen);
    if (us != UCS_OK) {
        packed = NULL;
        st = ucx_error(t, us, "ucp_rkey_pack");
        goto err;
    }
    mylen = (int)plen;
    mybase = (uint64_t)(uintptr_t)rg->base;
    MOE_MPI_CHECK_GOTO(t->log, MPI_Allgather(&mybase, 1, MPI_UINT64_T, rg->raddr, 1,
                                             MPI_UINT64_T, t->comm), st, err);
    MOE_MPI_CHECK_GOTO(t->log, MPI_Allgather(&mylen, 1, MPI_INT, len, 1, MPI_INT, t->comm),
                       st, err);
    tot = (int)moe__a2a_displs(t->P, len, dsp);
    all = malloc((size_t)tot + 1);
    if (all == NULL) {
        st = MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "ucx exchange: out of memory");
        goto err;
    }
    MOE_MPI_CHECK_GOTO(t->log, MPI_Allgatherv(packed, mylen, MPI_BYTE, all, len, dsp, MPI_BYTE,
                                              t->comm), st, err);
    for (r = 0; r < t->P; r++) {
        if (t->ep[r] == NULL)
            continue;
        us = ucp_ep_rkey_unpack(t->ep[r], all + dsp[r], &rg->rkey[r]);
        if (us != UCS_OK) {
            rg->rkey[r] = NULL;
            st = ucx_error(t, us, "ucp_ep_rkey_unpack");
            goto err;
        }
    }
    MOE_DEBUG(t->log, "ucx exchange: %s region mapped, %zu bytes", name, rg->size);
    ucp_rkey_buffer_release(packed);
    free(all), free(len), free(dsp);
    return MOE_OK;

err:
    if (packed)
        ucp_rkey_buffer_release(packed);
    free(all), free(len), free(dsp);
    ucx_region_unmap(t, rg);
    return st;
}

/* Collective; every rank passes the same `need`. Replaces the region by a larger one. */
static moe_status_t ucx_region_grow(a2a_ucx_t *t, int id, size_t need)
{
    ucx_region_t *rg = &t->reg[id];
    size_t        size = 2 * rg->size > need ? 2 * rg->size : need;

    size = (size + UCX_REGION_ALIGN - 1) / UCX_REGION_ALIGN * UCX_REGION_ALIGN;
    ucx_region_unmap(t, rg);
    return ucx_region_map(t, rg, size, 0, ucx_region_names[id]);
}

/* Closes every endpoint (forced if `force`), progressing until the closes complete. */
static void ucx_eps_close(a2a_ucx_t *t, int force)
{
    ucp_request_param_t prm;
    int                 r;

    if (t->ep == NULL)
        return;
    memset(&prm, 0, sizeof(prm));
    if (force) {
        prm.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        prm.flags = UCP_EP_CLOSE_FLAG_FORCE;
    }
    t->nreq = 0;
    for (r = 0; r < t->P; r++) {
        if (t->ep[r] == NULL)
            continue;
        (void)ucx_track(t, ucp_ep_close_nbx(t->ep[r], &prm)); /* errors: nothing to undo */
        t->ep[r] = NULL;
        if (t->nreq == 2 * t->P) /* bound the requests in flight */
            (void)ucx_progress_until(t, 0);
    }
    (void)ucx_progress_until(t, 0);
}

/* Collective. Creates the worker's endpoints to every rank on another node. */
static moe_status_t ucx_eps_create(a2a_ucx_t *t, const int *node)
{
    ucp_address_t  *addr = NULL;
    size_t          alen = 0;
    ucs_status_t    us;
    moe_status_t    st = MOE_OK;
    int            *len = NULL, *dsp = NULL, r, mylen, tot;
    char           *all = NULL;
    ucp_ep_params_t ep;

    us = ucp_worker_get_address(t->worker, &addr, &alen);
    if (us != UCS_OK)
        return ucx_error(t, us, "ucp_worker_get_address");
    len = calloc((size_t)t->P, sizeof(int));
    dsp = calloc((size_t)t->P, sizeof(int));
    if (!len || !dsp) {
        st = MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "ucx exchange: out of memory");
        goto out;
    }
    mylen = (int)alen;
    MOE_MPI_CHECK_GOTO(t->log, MPI_Allgather(&mylen, 1, MPI_INT, len, 1, MPI_INT, t->comm),
                       st, out);
    tot = (int)moe__a2a_displs(t->P, len, dsp);
    all = malloc((size_t)tot + 1);
    if (all == NULL) {
        st = MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "ucx exchange: out of memory");
        goto out;
    }
    MOE_MPI_CHECK_GOTO(t->log, MPI_Allgatherv(addr, mylen, MPI_BYTE, all, len, dsp, MPI_BYTE,
                                              t->comm), st, out);
    for (r = 0; r < t->P; r++) {
        if (node[r] == node[t->rank])
            continue;
        memset(&ep, 0, sizeof(ep));
        ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
        ep.address = (const ucp_address_t *)(all + dsp[r]);
        us = ucp_ep_create(t->worker, &ep, &t->ep[r]);
        if (us != UCS_OK) {
            t->ep[r] = NULL;
            st = ucx_error(t, us, "ucp_ep_create");
            goto out;
        }
    }
out:
    free(all), free(len), free(dsp);
    ucp_worker_release_address(t->worker, addr);
    return st;
}

static void ucx_free(a2a_ucx_t *t)
{
    free(t->ep), free(t->expect), free(t->xs), free(t->xr), free(t->req);
    free(t);
}

/* tcp: large segments unless the user chose, and only when tcp may be used (UCX warns
 * about variables of unused transports). See the file comment. */
static void ucx_tcp_defaults(void)
{
    const char *tls = getenv("UCX_TLS");

    if (tls && tls[0] != '^' && !strstr(tls, "tcp") && !strstr(tls, "all"))
        return;
    setenv("UCX_TCP_TX_SEG_SIZE", "256K", 0);
    setenv("UCX_TCP_RX_SEG_SIZE", "256K", 0);
}

static moe_status_t ucx_init(const moe__hier_env_t *env, void **tp_p)
{
    a2a_ucx_t         *t = calloc(1, sizeof(*t));
    ucp_config_t      *cfg = NULL;
    ucp_params_t       up;
    ucp_worker_params_t wp;
    ucs_status_t       us;
    moe_status_t       st;
    size_t             P = (size_t)env->nranks;
    int                i;

    if (t == NULL)
        return MOE_ERROR_SET(env->log, MOE_ERR_NOMEM, "ucx exchange: out of memory");
    t->comm = env->comm;
    t->log = env->log;
    t->P = env->nranks;
    t->rank = env->rank;
    t->one = 1;
    t->ep = calloc(P, sizeof(*t->ep));
    t->expect = calloc(P, sizeof(*t->expect));
    t->xs = calloc(3 * P, sizeof(*t->xs));
    t->xr = calloc(3 * P, sizeof(*t->xr));
    t->req = calloc(3 * P, sizeof(*t->req));
    t->nreq_cap = 3 * P; /* puts, rows puts, arrival adds */
    if (!t->ep || !t->expect || !t->xs || !t->xr || !t->req) {
        st = MOE_ERROR_SET(env->log, MOE_ERR_NOMEM, "ucx exchange: out of memory");
        goto err_free;
    }
    ucx_tcp_defaults();
    us = ucp_config_read(NULL, NULL, &cfg);
    if (us != UCS_OK) {
        st = ucx_error(t, us, "ucp_config_read");
        goto err_free;
    }
    memset(&up, 0, sizeof(up));
    up.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_ESTIMATED_NUM_EPS;
    up.features = UCP_FEATURE_RMA | UCP_FEATURE_AMO64;
    up.estimated_num_eps = P;
    us = ucp_init(&up, cfg, &t->ucp);
    ucp_config_release(cfg);
    if (us != UCS_OK) {
        st = ucx_error(t, us, "ucp_init");
        goto err_free;
    }
    memset(&wp, 0, sizeof(wp));
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SINGLE;
    us = ucp_worker_create(t->ucp, &wp, &t->worker);
    if (us != UCS_OK) {
        st = ucx_error(t, us, "ucp_worker_create");
        goto err_context;
    }
    st = ucx_eps_create(t, env->node);
    if (st != MOE_OK)
        goto err_eps;
    for (i = 0; i < UCX_NREG; i++) {
        size_t size = i == UCX_REG_SIGNAL ? P * sizeof(uint64_t) : UCX_REGION_MIN;
        st = ucx_region_map(t, &t->reg[i], size, i == UCX_REG_SIGNAL, ucx_region_names[i]);
        if (st != MOE_OK)
            goto err_regions;
    }
    *tp_p = t;
    return MOE_OK;

err_regions:
    while (i-- > 0)
        ucx_region_unmap(t, &t->reg[i]);
err_eps:
    ucx_eps_close(t, 1);
    ucp_worker_destroy(t->worker);
err_context:
    ucp_cleanup(t->ucp);
err_free:
    ucx_free(t);
    return st;
}

static void ucx_cleanup(void *vtp)
{
    a2a_ucx_t  *t = vtp;
    MPI_Request rq;
    int         i;

    if (t == NULL)
        return;
    /* rkeys go before their endpoints; the memory after every peer is done with it */
    for (i = 0; i < UCX_NREG; i++) {
        ucx_region_t *rg = &t->reg[i];
        int           r;
        for (r = 0; rg->rkey && r < t->P; r++)
            if (rg->rkey[r]) {
                ucp_rkey_destroy(rg->rkey[r]);
                rg->rkey[r] = NULL;
            }
    }
    ucx_eps_close(t, t->failed);
    if (!t->failed && MPI_Ibarrier(t->comm, &rq) == MPI_SUCCESS)
        (void)ucx_mpi_wait(t, &rq); /* peers may need our progress to finish closing */
    for (i = UCX_NREG; i-- > 0;)
        ucx_region_unmap(t, &t->reg[i]);
    ucp_worker_destroy(t->worker);
    ucp_cleanup(t->ucp);
    ucx_free(t);
}

/* Bytes of the rows of a block of cnt elements of xf (0 without rows). */
static size_t ucx_rows_bytes(const moe__hier_xfer_t *xf, int cnt)
{
    return xf->rows ? (size_t)(cnt / xf->unit) * (size_t)xf->row * sizeof(float) : 0;
}

/* Step 1 of an exchange into region rid: offsets (xs: for each sender, where its block and its
 * rows go in my region; my need) exchanged, the region grown if any rank needs more. The rows
 * start at *roff, after the first part. */
static moe_status_t ucx_offsets(a2a_ucx_t *t, int rid, const moe__hier_xfer_t *xf, size_t *roff)
{
    size_t       first = xf->rtotal * xf->elem, most = 0, need;
    moe_status_t st;
    int          r;

    *roff = (first + 63) / 64 * 64;
    need = xf->rows ? *roff + ucx_rows_bytes(xf, (int)xf->rtotal) : first;
    for (r = 0; r < t->P; r++) {
        t->xs[3 * r] = (int64_t)xf->rdsp[r] * (int64_t)xf->elem;
        t->xs[3 * r + 1] = (int64_t)(*roff + ucx_rows_bytes(xf, xf->rdsp[r]));
        t->xs[3 * r + 2] = (int64_t)need;
    }
    MOE_MPI_CHECK(t->log, MPI_Alltoall(t->xs, 3, MPI_INT64_T, t->xr, 3, MPI_INT64_T, t->comm));
    for (r = 0; r < t->P; r++)
        if ((size_t)t->xr[3 * r + 2] > most)
            most = (size_t)t->xr[3 * r + 2];
    if (most > t->reg[rid].size) {
        st = ucx_region_grow(t, rid, most);
        if (st != MOE_OK) {
            t->failed = 1;
            return st;
        }
    }
    return MOE_OK;
}

/* One exchange into region `id` (see the file comment for the steps). */
static moe_status_t ucx_exchange(a2a_ucx_t *t, int id, const moe__hier_xfer_t *xf,
                                 void **rdata_p)
{
    ucx_region_t       *rg = &t->reg[id], *sg = &t->reg[UCX_REG_SIGNAL];
    ucp_request_param_t prm, aprm;
    ucs_status_t        us = UCS_OK;
    moe_status_t        st;
    MPI_Request         rq;
    const char         *sbuf = xf->sbuf, *what = "ucp_put_nbx";
    const char         *srows = (const char *)xf->rows;
    size_t              roff;
    int                 r;

    /* 1. offsets for the senders, needs for everyone */
    if ((st = ucx_offsets(t, id, xf, &roff)) != MOE_OK)
        return st;
    /* 2. puts, 3. fence and arrival signals */
    if (xf->scnt[t->rank] > 0) {
        memcpy((char *)rg->base + (size_t)xf->rdsp[t->rank] * xf->elem,
               sbuf + (size_t)xf->sdsp[t->rank] * xf->elem, (size_t)xf->scnt[t->rank] * xf->elem);
        if (srows)
            memcpy((char *)rg->base + (size_t)t->xr[3 * t->rank + 1],
                   srows + ucx_rows_bytes(xf, xf->sdsp[t->rank]),
                   ucx_rows_bytes(xf, xf->scnt[t->rank]));
    }
    memset(&prm, 0, sizeof(prm));
    memset(&aprm, 0, sizeof(aprm));
    aprm.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE;
    aprm.datatype = ucp_dt_make_contig(sizeof(uint64_t));
    t->nreq = 0;
    for (r = 0; r < t->P && us == UCS_OK; r++) {
        if (r == t->rank || xf->scnt[r] == 0)
            continue;
        if (t->ep[r] == NULL) {
            (void)ucx_progress_until(t, 0);
            t->failed = 1;
            return MOE_ERROR_SET(t->log, MOE_ERR_INVARIANT,
                                 "ucx exchange: rank %d sends to rank %d on its own node "
                                 "through the inter-node transport", t->rank, r);
        }
        us = ucx_track(t, ucp_put_nbx(t->ep[r], sbuf + (size_t)xf->sdsp[r] * xf->elem,
                                      (size_t)xf->scnt[r] * xf->elem,
                                      rg->raddr[r] + (uint64_t)t->xr[3 * r], rg->rkey[r], &prm));
        if (srows && us == UCS_OK)
            us = ucx_track(t, ucp_put_nbx(t->ep[r], srows + ucx_rows_bytes(xf, xf->sdsp[r]),
                                          ucx_rows_bytes(xf, xf->scnt[r]),
                                          rg->raddr[r] + (uint64_t)t->xr[3 * r + 1], rg->rkey[r],
                                          &prm));
    }
    if (us == UCS_OK) {
        what = "ucp_worker_fence";
        us = ucp_worker_fence(t->worker);
    }
    for (r = 0; r < t->P && us == UCS_OK; r++) {
        if (r == t->rank || xf->scnt[r] == 0)
            continue;
        what = "ucp_atomic_op_nbx";
        us = ucx_track(t, ucp_atomic_op_nbx(t->ep[r], UCP_ATOMIC_OP_ADD, &t->one, 1,
                                            sg->raddr[r] + (uint64_t)t->rank * sizeof(uint64_t),
                                            sg->rkey[r], &aprm));
    }
    /* 4. my requests done, my arrivals in */
    for (r = 0; r < t->P; r++)
        if (r != t->rank && xf->rcnt[r] > 0)
            t->expect[r]++;
    if (us != UCS_OK) {
        (void)ucx_progress_until(t, 0);
        t->failed = 1;
        return ucx_error(t, us, what);
    }
    us = ucx_progress_until(t, 1);
    if (us != UCS_OK) {
        t->failed = 1;
        return ucx_error(t, us, "a put or arrival signal");
    }
    /* 5. leave together, progressing */
    MOE_MPI_CHECK(t->log, MPI_Ibarrier(t->comm, &rq));
    st = ucx_mpi_wait(t, &rq);
    if (st != MOE_OK)
        return st;
    *rdata_p = rg->base;
    if (srows)
        *xf->rrows_p = (float *)((char *)rg->base + roff);
    return MOE_OK;
}

static moe_status_t ucx_exchange_units(void *tp, const moe__hier_xfer_t *xf,
                                       moe__hier_buf_t *rbuf, void **rdata_p)
{
    return ucx_exchange(tp, UCX_REG_UNITS, xf, rdata_p);
}

static moe_status_t ucx_exchange_vectors(void *tp, const moe__hier_xfer_t *xf,
                                         moe__hier_buf_t *rbuf, void **rdata_p)
{
    return ucx_exchange(tp, UCX_REG_VECTORS, xf, rdata_p);
}

/* Chunked form (comm/a2a_hier.h). start is step 1 of an exchange; send_chunk(c) does steps 2
 * and 3 for piece c (puts of piece c to every destination, a fence, then one arrival add per
 * destination that gets a non-empty block, empty pieces included), so after piece c a
 * source s has added c + 1 to signal[s] at each of its destinations; test_chunk(c) checks
 * that; finish is steps 4 and 5 (expect[s] += nchunk). */
static moe_status_t ucx_start(void *vtp, int id, const moe__hier_xfer_t *xf, int nchunk,
                              moe__hier_buf_t *rbuf, void **rdata_p)
{
    a2a_ucx_t   *t = vtp;
    int          rid = id ? UCX_REG_VECTORS : UCX_REG_UNITS;
    size_t       roff;
    moe_status_t st;

    (void)rbuf;
    if ((size_t)3 * t->P * nchunk > (size_t)t->nreq_cap) {
        void **rq = realloc(t->req, (size_t)3 * t->P * nchunk * sizeof(*rq));
        if (rq == NULL)
            return MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "ucx exchange: out of memory");
        t->req = rq;
        t->nreq_cap = 3 * t->P * nchunk;
    }
    if ((st = ucx_offsets(t, rid, xf, &roff)) != MOE_OK)
        return st;
    t->cx = *xf;
    t->cid = rid;
    t->cchunks = nchunk;
    t->nreq = 0;
    *rdata_p = t->reg[rid].base;
    if (xf->rows)
        *xf->rrows_p = (float *)((char *)t->reg[rid].base + roff);
    return MOE_OK;
}

static moe_status_t ucx_send_chunk(void *vtp, int id, int c)
{
    a2a_ucx_t              *t = vtp;
    const moe__hier_xfer_t *xf = &t->cx;
    ucx_region_t           *rg = &t->reg[t->cid], *sg = &t->reg[UCX_REG_SIGNAL];
    ucp_request_param_t     prm, aprm;
    ucs_status_t            us = UCS_OK;
    const char             *sbuf = xf->sbuf, *what = "ucp_put_nbx";
    const char             *srows = (const char *)xf->rows;
    int                     r, i;

    (void)id;
    memset(&prm, 0, sizeof(prm));
    memset(&aprm, 0, sizeof(aprm));
    aprm.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE;
    aprm.datatype = ucp_dt_make_contig(sizeof(uint64_t));
    for (i = 1; i <= t->P && us == UCS_OK; i++) { /* after myself first: spread the peers */
        int    units, lo, hi;
        size_t off, len, roff, rlen;
        r = (t->rank + i) % t->P;
        if (xf->scnt[r] == 0)
            continue;
        units = xf->scnt[r] / xf->unit;
        lo = moe__hier_piece(units, c, t->cchunks);
        hi = moe__hier_piece(units, c + 1, t->cchunks);
        off = (size_t)lo * xf->unit * xf->elem;
        len = (size_t)(hi - lo) * xf->unit * xf->elem;
        roff = ucx_rows_bytes(xf, lo * xf->unit);
        rlen = ucx_rows_bytes(xf, (hi - lo) * xf->unit);
        if (len == 0)
            continue;
        if (r == t->rank) {
            memcpy((char *)rg->base + (size_t)xf->rdsp[r] * xf->elem + off,
                   sbuf + (size_t)xf->sdsp[r] * xf->elem + off, len);
            if (srows)
                memcpy((char *)rg->base + (size_t)t->xr[3 * r + 1] + roff,
                       srows + ucx_rows_bytes(xf, xf->sdsp[r]) + roff, rlen);
            continue;
        }
        if (t->ep[r] == NULL) {
            t->failed = 1;
            return MOE_ERROR_SET(t->log, MOE_ERR_INVARIANT,
                                 "ucx exchange: rank %d sends to rank %d on its own node "
                                 "through the inter-node transport", t->rank, r);
        }
        us = ucx_track(t, ucp_put_nbx(t->ep[r], sbuf + (size_t)xf->sdsp[r] * xf->elem + off, len,
                                      rg->raddr[r] + (uint64_t)t->xr[3 * r] + off, rg->rkey[r],
                                      &prm));
        if (srows && us == UCS_OK)
            us = ucx_track(t, ucp_put_nbx(t->ep[r], srows + ucx_rows_bytes(xf, xf->sdsp[r]) + roff,
                                          rlen, rg->raddr[r] + (uint64_t)t->xr[3 * r + 1] + roff,
                                          rg->rkey[r], &prm));
    }
    if (us == UCS_OK) {
        what = "ucp_worker_fence";
        us = ucp_worker_fence(t->worker);
    }
    for (r = 0; r < t->P && us == UCS_OK; r++) {
        if (r == t->rank || xf->scnt[r] == 0)
            continue;
        what = "ucp_atomic_op_nbx";
        us = ucx_track(t, ucp_atomic_op_nbx(t->ep[r], UCP_ATOMIC_OP_ADD, &t->one, 1,
                                            sg->raddr[r] + (uint64_t)t->rank * sizeof(uint64_t),
                                            sg->rkey[r], &aprm));
    }
    if (us != UCS_OK) {
        t->failed = 1;
        return ucx_error(t, us, what);
    }
    return MOE_OK;
}

static moe_status_t ucx_test_chunk(void *vtp, int id, int c, int *done)
{
    a2a_ucx_t               *t = vtp;
    const volatile uint64_t *sig = t->reg[UCX_REG_SIGNAL].base;
    int                      s;

    (void)id;
    ucp_worker_progress(t->worker);
    *done = 1;
    for (s = 0; s < t->P && *done; s++)
        if (s != t->rank && t->cx.rcnt[s] > 0)
            *done = sig[s] >= t->expect[s] + (uint64_t)c + 1;
    if (*done)
        atomic_thread_fence(memory_order_acquire); /* the data is read after the signal */
    return MOE_OK;
}

static moe_status_t ucx_finish(void *vtp, int id)
{
    a2a_ucx_t   *t = vtp;
    ucs_status_t us;
    MPI_Request  rq;
    int          s;

    (void)id;
    for (s = 0; s < t->P; s++)
        if (s != t->rank && t->cx.rcnt[s] > 0)
            t->expect[s] += (uint64_t)t->cchunks;
    us = ucx_progress_until(t, 1);
    if (us != UCS_OK) {
        t->failed = 1;
        return ucx_error(t, us, "a put or arrival signal");
    }
    MOE_MPI_CHECK(t->log, MPI_Ibarrier(t->comm, &rq));
    return ucx_mpi_wait(t, &rq);
}

static const moe__hier_transport_t ucx_transport = {
    .name = "ucx",
    .init = ucx_init,
    .exchange_units = ucx_exchange_units,
    .exchange_vectors = ucx_exchange_vectors,
    .cleanup = ucx_cleanup,
    .start = ucx_start,
    .send_chunk = ucx_send_chunk,
    .test_chunk = ucx_test_chunk,
    .finish = ucx_finish,
};

static moe_status_t ucx_create(const moe_a2a_params_t *prm, void **ctx_p)
{
    return moe__a2a_hier_create(prm, &ucx_transport, ctx_p);
}

const moe_a2a_ops_t moe_a2a_ucx_ops = {
    .name = "ucx",
    .doc = "as hier, with the inter-node stage as UCX UCP puts into registered memory "
           "(arrival signalled by a fenced atomic add); intra-node stage over MPI",
    .create = ucx_create,
    .dispatch = moe__a2a_hier_dispatch,
    .combine = moe__a2a_hier_combine,
    .destroy = moe__a2a_hier_destroy,
};
