/*
 * runtime/engine.c — the step loop: gate, plan (capacity), dispatch, experts, combine,
 * record.
 *
 * Per layer l and rank, with T local tokens whose global indices are g0 .. g0+T-1:
 *   gate     logits = x . Wg_l, softmax top-k, local sums of router statistics;
 *   counts   MPI_Allreduce of the sums (global routed counts per expert and statistics),
 *            capacity decisions in global order (capacity.c), the plan per pair;
 *   dispatch the exchange backend's count exchange and row exchange;
 *   expert   one FFN call per local expert on all its rows;
 *   combine  out = x + sum_j w_j * expert_j(x) over kept pairs, in slot order.
 * The output of layer l is the input of layer l+1.
 *
 * Always:
 *  1. every random quantity is a function of (seed, step, global index): a P-rank run
 *     computes the same tensors as a 1-rank run of the same global batch;
 *  2. for every step, layer and expert: routed = processed + dropped. routed is counted
 *     by the gate at the token's rank, processed by the expert's rank from the rows it
 *     computed, dropped by the capacity step at the token's rank; the three are summed
 *     over ranks and compared at every flush, and a mismatch stops the run with
 *     MOE_ERR_INVARIANT; debug builds (MOE_ASSERT) also check, after every dispatch, that
 *     the rows each expert received over all ranks are the pairs kept for it over all ranks
 *     (a2a.h invariant 1, for every backend), and that every traffic split adds up;
 *  3. after create, no step allocates, except buffers that grow to a new maximum (and the
 *     debug builds' checks, which free what they take).
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bind.h"
#include "engine.h"
#include "metrics.h"
#include "moerun/base/assert.h"
#include "moerun/base/fileio.h"
#include "moerun/base/mpicheck.h"
#include "moerun/base/touch.h"
#include "sim.h"

_Static_assert(MOE_PHASE_COUNT <= (int)(sizeof(((moe_summary_t *)0)->phase_s) / sizeof(double)),
               "moe_summary_t.phase_s holds every phase column");

static moe_status_t engine_metrics(moe_engine_t *e, const char *status, const moe_summary_t *sum);

#if MOE_ASSERTS_ENABLED
/*
 * Debug builds, after a dispatch (collective): the rows each expert received, summed over
 * ranks, equal the pairs routed to it and kept, summed over ranks; the traffic splits add up.
 */
static void engine_assert_delivered(moe_engine_t *e, int l, const moe_a2a_plan_t *plan,
                                    const moe_expert_batch_t *batch, const moe_a2a_stats_t *ast)
{
    const moe_placement_t *pl = &e->place;
    int      E = e->E, p, i, ok, all = 0;
    int64_t *v = calloc(2 * (size_t)E, sizeof(int64_t));

    MOE_ASSERT(ast->bytes_intra + ast->bytes_inter == ast->bytes_sent);
    MOE_ASSERT(ast->msgs_intra + ast->msgs_inter == ast->msgs_sent);
    ok = v != NULL;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, e->comm) != MPI_SUCCESS || !all) {
        free(v);
        return;
    }
    for (p = 0; p < plan->tokens * plan->top_k; p++)
        if (plan->dest_rank[p] >= 0)
            v[e->gate.expert[p]]++;
    MOE_ASSERT(batch->n_local == 0 || batch->offset[0] == 0);
    for (i = 0; i < batch->n_local; i++) {
        MOE_ASSERT(batch->offset[i] <= batch->offset[i + 1]);
        int g = pl->global_of[(size_t)l * pl->first_local[pl->nranks] +
                              pl->first_local[e->rank] + i]; /* -1: an empty slot, no rows */
        MOE_ASSERT(g >= 0 || batch->offset[i + 1] == batch->offset[i]);
        if (g >= 0)
            v[E + g] += batch->offset[i + 1] - batch->offset[i];
    }
    if (MPI_Allreduce(MPI_IN_PLACE, v, 2 * E, MPI_INT64_T, MPI_SUM, e->comm) == MPI_SUCCESS)
        for (i = 0; i < E; i++)
            MOE_ASSERT(v[i] == v[E + i]);
    free(v);
}
#endif

/* Collective agreement: the worst status of all ranks (base/mpicheck.h). */
static moe_status_t engine_agree(moe_engine_t *e, moe_status_t st)
{
    return moe_mpi_agree(e->comm, st, &e->log, "engine");
}

/* Step times kept for the summary's percentiles: the last this many measured steps. */
#define ENG_STEP_TIMES_MAX (1L << 20)

#define ENG_ALLOC(ptr, n) ((ptr) = calloc((size_t)(n) + 1, sizeof(*(ptr))), (ptr) != NULL)

static moe_status_t engine_alloc(moe_engine_t *e)
{
    size_t L = (size_t)e->L, E = (size_t)e->E, k = (size_t)e->k, d = (size_t)e->d, nn;
    size_t K = (size_t)e->S;
    size_t T = (size_t)e->T, B = (size_t)e->B, P = (size_t)e->nranks;
    size_t S = (size_t)e->n_route_local;
    int    ok = 1;

    ok &= ENG_ALLOC(e->wg, L * d * E);
    ok &= ENG_ALLOC(e->ffn, L * (size_t)e->n_local);
#ifdef MOERUN_SMPI
    /* (calloc): not SimGrid's shared-malloc interception — the gate reads these tokens in
     * every layer, across MPI calls, so they must stay private to the simulated rank */
    ok &= (e->xin = (calloc)(T * d + 1, sizeof(float))) != NULL;
#else
    ok &= ENG_ALLOC(e->xin, T * d);
#endif
    ok &= ENG_ALLOC(e->xa, T * d);
    ok &= ENG_ALLOC(e->xb, T * d);
    ok &= ENG_ALLOC(e->xout, T * d);
    ok &= ENG_ALLOC(e->logits, T * E);
    ok &= ENG_ALLOC(e->pscratch, E);
    ok &= ENG_ALLOC(e->gate.expert, T * K);
    ok &= ENG_ALLOC(e->gate.prob, T * K);
    ok &= ENG_ALLOC(e->gate.weight, T * K);
    ok &= ENG_ALLOC(e->keep, T * K);
    ok &= ENG_ALLOC(e->dest_rank, T * K);
    ok &= ENG_ALLOC(e->dest_expert, T * K);
    nn = (size_t)e->topo.nnodes; /* the node-limited router's groups */
    ok &= ENG_ALLOC(e->rscratch, MOE_ROUTER_SCRATCH(E > nn ? E : nn));
    ok &= ENG_ALLOC(e->router_group, E);
    ok &= ENG_ALLOC(e->token_id, T);
    ok &= ENG_ALLOC(e->ec_scratch, 3 * E);
    ok &= ENG_ALLOC(e->bias, L * E);
    ok &= ENG_ALLOC(e->b_bias, B * L * E);
    ok &= ENG_ALLOC(e->shared, L * (size_t)e->cfg.shared_experts);
    ok &= ENG_ALLOC(e->shared_y, e->cfg.shared_experts > 0 ? 2 * T * d : 0);
    ok &= ENG_ALLOC(e->gsum, MOE_GSUM_LEN(E));
    ok &= ENG_ALLOC(e->local_count, E);
    ok &= ENG_ALLOC(e->routed_global, E);
    ok &= ENG_ALLOC(e->b_routed, B * L * E);
    ok &= ENG_ALLOC(e->b_processed, B * L * E);
    ok &= ENG_ALLOC(e->b_dropped, B * L * E);
    ok &= ENG_ALLOC(e->b_processed_g, B * L * E);
    ok &= ENG_ALLOC(e->b_dropped_g, B * L * E);
    ok &= ENG_ALLOC(e->b_capacity, B * L);
    ok &= ENG_ALLOC(e->b_unrouted, B * L);
    ok &= ENG_ALLOC(e->b_router, B * L * MOE_RSTAT_COUNT);
    ok &= ENG_ALLOC(e->b_phase, B * L * MOE_PHASE_COUNT);
    ok &= ENG_ALLOC(e->b_traffic, B * L * MOE_TRAFFIC_COUNT);
    ok &= ENG_ALLOC(e->b_route_step, B * S);
    ok &= ENG_ALLOC(e->b_route_token, B * S);
    ok &= ENG_ALLOC(e->b_route_token_id, B * S);
    ok &= ENG_ALLOC(e->b_route_expert, B * S * L * k);
    ok &= ENG_ALLOC(e->b_route_weight, B * S * L * k);
    ok &= ENG_ALLOC(e->b_route_kept, B * S * L * k);
    ok &= ENG_ALLOC(e->coselect, L * E * E);
    ok &= ENG_ALLOC(e->coselect_g, L * E * E);
    ok &= ENG_ALLOC(e->traffic_row, P);
    ok &= ENG_ALLOC(e->routed_tot, L * E);
    e->cap_step_s = e->cfg.steps - e->cfg.warmup;
    if (e->cap_step_s > ENG_STEP_TIMES_MAX || e->cap_step_s < 1)
        e->cap_step_s = ENG_STEP_TIMES_MAX;
    ok &= ENG_ALLOC(e->step_s, e->cap_step_s);
    if (!ok)
        return MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "engine: out of memory");
    /* the activation buffers (T x d each) made resident now, not page by page in the
     * first steps (a slow first step); under the simulation model only the step's tokens
     * are ever read or written (sim.h): the others stay untouched, so never resident */
    moe_touch(e->xin, T * d * sizeof(float));
    if (moe_sim_model(&e->cfg))
        return MOE_OK;
    moe_touch(e->xa, T * d * sizeof(float));
    moe_touch(e->xb, T * d * sizeof(float));
    moe_touch(e->xout, T * d * sizeof(float));
    if (e->cfg.shared_experts > 0)
        moe_touch(e->shared_y, 2 * T * d * sizeof(float));
    return MOE_OK;
}

/* Global token indices sampled for route records: floor(i * G / S), i < S. */
static moe_status_t engine_routes_init(moe_engine_t *e)
{
    int64_t S = e->cfg.route_samples < e->G ? e->cfg.route_samples : e->G, i;
    int     n = 0;

    e->route_t = calloc((size_t)S + 1, sizeof(int));
    if (e->route_t == NULL)
        return MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "engine: out of memory");
    for (i = 0; i < S; i++) {
        int64_t g = i * e->G / S;
        if (g >= e->g0 && g < e->g0 + e->T)
            e->route_t[n++] = (int)(g - e->g0);
    }
    e->n_route_local = n;
    return MOE_OK;
}

/* The global expert in this rank's slot i at layer l, or -1 (empty slot). */
static int engine_slot_expert(const moe_engine_t *e, int l, int i)
{
    const moe_placement_t *pl = &e->place;

    return pl->global_of[(size_t)l * pl->first_local[pl->nranks] + pl->first_local[e->rank] + i];
}

/* The router of the run; group/node-limited get their expert -> group map here. */
static moe_status_t engine_router_init(moe_engine_t *e)
{
    moe_router_t *r = &e->router;
    char          err[256];
    int           x, M = e->cfg.route_max_nodes;

    memset(r, 0, sizeof(*r));
    r->ops = moe_router_find(e->cfg.router);
    r->E = e->E;
    r->k = e->S;
    r->temperature = e->cfg.temperature;
    r->routed_scaling = e->cfg.routed_scaling;
    if (r->ops == &moe_router_group_ops) {
        r->ngroups = e->cfg.route_groups;
        for (x = 0; x < e->E; x++)
            e->router_group[x] = x / (e->E / r->ngroups);
    } else if (r->ops == &moe_router_node_ops) {
        /* groups per token and layer: the node of the replica the placement's rule picks */
        r->ngroups = e->topo.nnodes;
        r->place = &e->place;
        r->node = e->topo.node[e->rank];
        r->g0 = e->g0;
    }
    /* expert-choice and hash select without scores: the bias would change nothing */
    e->use_bias = e->cfg.balance_bias > 0 && !r->ops->global && r->ops != &moe_router_hash_ops;
    if (r->ngroups > 0) {
        r->group_of = r->place ? NULL : e->router_group;
        r->max_groups = M > 0 && M < r->ngroups ? M : r->ngroups;
        if (moe_router_check_groups(r, err, sizeof(err)) != MOE_OK)
            return MOE_ERROR_SET(&e->log, MOE_ERR_INVALID, "%s", err);
    }
    return MOE_OK;
}

static moe_status_t engine_model_init(moe_engine_t *e)
{
    int          l, i;
    size_t       nscr = 0; /* floats of expert scratch */
    moe_status_t st;

    for (l = 0; l < e->L; l++)
        moe_workload_router(&e->wl, l, e->wg + (size_t)l * e->d * e->E);
    for (l = 0; l < e->L && !moe_sim_model(&e->cfg); l++)
        for (i = 0; i < e->n_local; i++) {
            int g = engine_slot_expert(e, l, i);
            if (g < 0)
                continue; /* an empty slot in this layer: no weights, never gets rows */
            st = moe_ffn_init(&e->ffn[(size_t)l * e->n_local + i], e->d, e->cfg.d_ffn,
                              e->cfg.activation == MOE_ACT_SWIGLU ? MOE_FFN_SWIGLU : MOE_FFN_GELU,
                              e->cfg.seed, l, g);
            if (st != MOE_OK)
                return MOE_ERROR_SET(&e->log, st, "engine: out of memory for expert weights");
            nscr = moe_ffn_scratch_floats(&e->ffn[(size_t)l * e->n_local + i]);
        }
    /* shared experts: ids E, E+1, ... so their weights differ from every routed expert's */
    for (l = 0; l < e->L && !moe_sim_model(&e->cfg); l++)
        for (i = 0; i < e->cfg.shared_experts; i++) {
            st = moe_ffn_init(&e->shared[(size_t)l * e->cfg.shared_experts + i], e->d,
                              e->cfg.d_ffn,
                              e->cfg.activation == MOE_ACT_SWIGLU ? MOE_FFN_SWIGLU : MOE_FFN_GELU,
                              e->cfg.seed, l, e->E + i);
            if (st != MOE_OK)
                return MOE_ERROR_SET(&e->log, st, "engine: out of memory for shared experts");
        }
    if (nscr == 0 && e->cfg.shared_experts > 0 && !moe_sim_model(&e->cfg))
        nscr = moe_ffn_scratch_floats(&e->shared[0]);
    if (nscr == 0)
        nscr = 1;
    e->ffn_scratch = malloc(nscr * sizeof(float)); /* floats moe_ffn_forward needs */
    if (e->ffn_scratch == NULL)
        return MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "engine: out of memory");
    memset(e->ffn_scratch, 0, nscr * sizeof(float));
    moe_touch(e->ffn_scratch, nscr * sizeof(float)); /* resident now (memset may become calloc) */
    return MOE_OK;
}

static moe_status_t engine_telemetry_open(moe_engine_t *e)
{
    moe_tel_meta_t meta;
    char           mpiver[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    char           start[32];
    int            len = 0;
    time_t         now = time(NULL);
    struct tm      tmv;
    char          *ini;
    moe_status_t   st;

    if (e->cfg.telemetry[0] == '\0')
        return MOE_OK;
    MPI_Get_library_version(mpiver, &len);
    mpiver[strcspn(mpiver, "\n")] = '\0';
    gmtime_r(&now, &tmv);
    strftime(start, sizeof(start), "%Y-%m-%dT%H:%M:%SZ", &tmv);
    ini = moe_config_to_ini(&e->cfg);
    if (ini == NULL)
        return MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "engine: out of memory");
    memset(&meta, 0, sizeof(meta));
    meta.cfg = &e->cfg;
    meta.config_ini = ini;
    meta.nranks = e->nranks;
    meta.nnodes = e->topo.nnodes;
    meta.hostname = (const char(*)[MOE_HOST_MAX])e->topo.host;
    meta.node = e->topo.node;
    meta.local_rank = e->topo.local_rank;
    meta.cpuset = (const char(*)[MOE_CPUSET_MAX])e->topo.cpuset;
    meta.numa_node = e->topo.numa;
    meta.nic = (const char(*)[MOE_TEL_STRING_MAX])e->topo.nic;
    meta.bind_action = (const char(*)[MOE_TEL_STRING_MAX])e->topo.bind_action;
    meta.machine = (const char(*)[MOE_TEL_STRING_MAX])e->topo.machine;
    meta.cache_bytes = e->topo.cache_bytes;
    meta.cache_pus = e->topo.cache_pus;
    meta.expert_owner = e->place.owner;
    meta.expert_ranks = e->place.rep_rank;
    meta.max_replicas = e->place.max_replicas;
    meta.slurm_job_id = getenv("SLURM_JOB_ID");
    meta.mpi_version = mpiver;
    meta.hwloc_version = e->topo.hwloc_version;
    meta.start_time = start;
    st = moe_telemetry_create(e->cfg.telemetry, e->cfg.telemetry_mode, e->comm, &meta, &e->log,
                              &e->tel);
    free(ini);
    return st;
}

/* A cache as "SIZE/PUS" (size in KiB or MiB when whole, else bytes), "-" when absent. */
static void engine_cache_text(int64_t bytes, int pus, char *buf, size_t n)
{
    if (bytes <= 0)
        snprintf(buf, n, "-");
    else if (bytes % (1024 * 1024) == 0)
        snprintf(buf, n, "%" PRId64 "MiB/%d", bytes / (1024 * 1024), pus);
    else if (bytes % 1024 == 0)
        snprintf(buf, n, "%" PRId64 "KiB/%d", bytes / 1024, pus);
    else
        snprintf(buf, n, "%" PRId64 "B/%d", bytes, pus);
}

/* --report-bindings: one line per rank, from rank 0, in rank order (stderr, like mpirun's). */
static void engine_report_bindings(const moe_engine_t *e)
{
    const moe_topo_t *t = &e->topo;
    int               r, lv;
    char              c[3][40];

    for (r = 0; r < t->nranks; r++) {
        for (lv = 0; lv < 3; lv++)
            engine_cache_text(t->cache_bytes[r * 3 + lv], t->cache_pus[r * 3 + lv], c[lv],
                              sizeof(c[lv]));
        fprintf(stderr, "moerun: binding rank %d host %s node %d local %d cpuset %s numa %d nic %s "
                        "caches L1d %s L2 %s L3 %s (bind %s: %s; %s)\n", r, t->host[r], t->node[r],
                t->local_rank[r], t->cpuset[r][0] ? t->cpuset[r] : "unbound", t->numa[r],
                t->nic[r][0] ? t->nic[r] : "none", c[0], c[1], c[2],
                moe_bind_mode_name((moe_bind_mode_t)e->cfg.bind), t->bind_action[r], t->machine[r]);
    }
    fprintf(stderr, "moerun: memory on rank 0: %s\n", t->membind);
}

static moe_status_t engine_create(const moe_config_t *cfg, MPI_Comm comm, moe_engine_t **engine_p);

/* (Re)starts the watchdog's clock for engine creation (nothing without --step-timeout). */
static void engine_arm_create(moe_engine_t *e)
{
    moe_watchdog_arm(e->wd, 0);
    moe_watchdog_mark(e->wd, MOE_WD_CREATE, -1);
}

/* The watchdog (when --step-timeout is on) covers creation too: its collectives wait for
 * every rank, so a rank lost or stopped before the first step would otherwise hang the
 * others forever (watchdog.h). Disarmed on every way out. */
moe_status_t moe_engine_create(const moe_config_t *cfg, MPI_Comm comm, moe_engine_t **engine_p)
{
    moe_status_t st = engine_create(cfg, comm, engine_p);

    if (*engine_p != NULL)
        moe_watchdog_disarm((*engine_p)->wd);
    return st;
}

static moe_status_t engine_create(const moe_config_t *cfg, MPI_Comm comm, moe_engine_t **engine_p)
{
    moe_engine_t       *e = calloc(1, sizeof(*e));
    moe_workload_spec_t spec;
    moe_a2a_params_t    prm;
    char                err[256];
    moe_status_t        st;

    *engine_p = NULL;
    if (e == NULL)
        return MOE_ERR_NOMEM;
    *engine_p = e;
    e->cfg = *cfg;
    e->comm = MPI_COMM_NULL;
    moe_log_init(&e->log, 0, (moe_log_level_t)cfg->log_level);
    MOE_MPI_CHECK(&e->log, MPI_Comm_dup(comm, &e->comm));
    MOE_MPI_CHECK(&e->log, MPI_Comm_rank(e->comm, &e->rank));
    MOE_MPI_CHECK(&e->log, MPI_Comm_size(e->comm, &e->nranks));
    e->log.rank = e->rank;

    st = moe_config_validate(cfg, e->nranks, err, sizeof(err));
    if (st != MOE_OK)
        return MOE_ERROR_SET(&e->log, st, "%s", err);
    if (cfg->step_timeout > 0) { /* armed by moe_engine_run and finish (watchdog.h) */
        const char *werr = NULL;
        e->wd = moe_watchdog_create(cfg->step_timeout, e->rank, &werr);
        if (werr != NULL)
            return MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "%s", werr);
        engine_arm_create(e);
    }
    moe_workload_parse(cfg->workload, cfg->experts, &spec, err, sizeof(err));
    e->L = cfg->layers;
    e->E = cfg->experts;
    e->k = cfg->top_k;
    e->d = cfg->d_model;
    e->T = cfg->tokens;
    e->B = cfg->flush_interval;
    e->G = (int64_t)e->nranks * e->T;
    e->g0 = (int64_t)e->rank * e->T;
    e->capacity = moe_capacity_compute(cfg->capacity_factor, e->k, e->G, e->E);
    e->a2a = moe_a2a_find(cfg->exchange);
    e->S = moe_router_find(cfg->router)->global ? e->E : e->k;

    st = moe_topo_discover_bind(e->comm, cfg->ranks_per_node, cfg->bind, &e->log, &e->topo);
    if (st == MOE_OK && cfg->report_bindings && e->rank == 0)
        engine_report_bindings(e);
    if (st == MOE_OK) {
        st = moe_placement_build(&e->place, cfg->placement, e->E, e->L, e->nranks,
                                 e->topo.nnodes, e->topo.node, err, sizeof(err));
        if (st != MOE_OK)
            st = MOE_ERROR_SET(&e->log, st, "%s", err);
    }
    if ((st = engine_agree(e, st)) != MOE_OK)
        return st;
    /* collective over each node (comm/slots.h), so only once every rank got this far */
    st = moe_slots_init(&e->slots, e->comm, cfg->compute_slots, cfg->wait_sleep_us < 0, &e->log);
    if ((st = engine_agree(e, st)) != MOE_OK)
        return st;
    e->n_local = e->place.local_count[e->rank];
    /* local work (route buffers, buffers, expert weights: no peer to wait for) is not timed;
     * re-armed before the agreement, which waits for every rank */
    moe_watchdog_disarm(e->wd);
    st = engine_routes_init(e);
    if (st == MOE_OK)
        st = engine_alloc(e);
    if (st == MOE_OK && (moe_workload_init(&e->wl, &spec, cfg->seed, e->d, e->E) != MOE_OK ||
                         moe_workload_vocab_init(&e->wl, cfg->vocab_size) != MOE_OK))
        st = MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "engine: out of memory");
    if (st == MOE_OK)
        st = engine_router_init(e);
    if (st == MOE_OK)
        st = engine_model_init(e);
    if (st == MOE_OK && moe_capacity_ws_init(&e->capws, e->E, e->nranks) != MOE_OK)
        st = MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "engine: out of memory");
    if (st == MOE_OK && moe_monitor_init(&e->mon, &e->cfg, e->G, &e->log, e->rank == 0) != MOE_OK)
        st = MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "engine: out of memory");
    engine_arm_create(e);
    if ((st = engine_agree(e, st)) != MOE_OK)
        return st;

    memset(&prm, 0, sizeof(prm));
    prm.comm = e->comm;
    prm.d_model = e->d;
    prm.max_tokens = e->T;
    prm.top_k = e->S;
    prm.local_experts = e->place.local_count;
    prm.node_of_rank = e->topo.node;
    prm.log = &e->log;
    prm.expert_block = MOE_FFN_BLOCK;
    prm.inter_chunks = e->cfg.hier_chunks;
    prm.window = e->cfg.overlap_window;
    {   /* wait_sleep_us: auto (-1) sleeps when the node's ranks outnumber its cores */
        int over = e->slots.node_cores > 0 && e->slots.node_ranks > e->slots.node_cores;
        long ws = e->cfg.wait_sleep_us >= 0 ? e->cfg.wait_sleep_us * 1000L
                                            : over ? MOE_SLOTS_IDLE_SLEEP_NS : 0;
        prm.idle_sleep_ns = ws > 0 ? ws : e->slots.limit > 0 ? MOE_SLOTS_IDLE_SLEEP_NS : 0;
        e->wait_sleep_ns = prm.idle_sleep_ns;
    }
    if (e->capacity > 0)
        prm.max_rows_in = (int64_t)e->n_local * e->capacity;
    prm.rows_opaque = moe_sim_model(&e->cfg); /* sim.h: no row is read under the model */
    st = e->a2a->create(&prm, &e->a2a_ctx);
    if ((st = engine_agree(e, st)) != MOE_OK)
        return st;
    /* the metrics file is checked by a first write ("starting") before the telemetry file,
     * which comes last: a failure before it leaves no file behind */
    if (e->rank == 0 && cfg->metrics_file[0])
        st = engine_metrics(e, "starting", NULL);
    if ((st = engine_agree(e, st)) != MOE_OK)
        return st;
    st = engine_telemetry_open(e);
    if (st != MOE_OK && e->rank == 0 && cfg->metrics_file[0])
        unlink(cfg->metrics_file);
    return st;
}

/* Router statistics of one layer from the globally summed gate sums. */
static void engine_router_stats(const moe_engine_t *e, const double *gs, double logit_max,
                                double *rs)
{
    int    E = e->E, i;
    double n = gs[MOE_GSUM_TOKENS], pairs = 0, lnE = log((double)E), h = 0, aux = 0;
    double mean = gs[MOE_GSUM_LOGIT] / (n * E);
    double var = gs[MOE_GSUM_LOGIT2] / (n * E) - mean * mean;

    for (i = 0; i < E; i++) /* n * k for the per-token routers */
        pairs += gs[MOE_GSUM_FIXED + E + i];
    if (pairs <= 0)
        pairs = 1;

    for (i = 0; i < E; i++) {
        double f = gs[MOE_GSUM_FIXED + E + i] / pairs;   /* share of routed pairs */
        double pm = gs[MOE_GSUM_FIXED + i] / n;          /* mean router probability */
        if (f > 0)
            h -= f * log(f);
        aux += f * pm;
    }
    rs[MOE_RSTAT_GATE_ENTROPY] = gs[MOE_GSUM_ENTROPY] / n;
    rs[MOE_RSTAT_GATE_ENTROPY_NORM] = E > 1 ? rs[MOE_RSTAT_GATE_ENTROPY] / lnE : 0;
    rs[MOE_RSTAT_LOAD_ENTROPY] = h;
    rs[MOE_RSTAT_LOAD_ENTROPY_NORM] = E > 1 ? h / lnE : 1;
    rs[MOE_RSTAT_TOP1_PROB] = gs[MOE_GSUM_TOP1] / n;
    rs[MOE_RSTAT_MARGIN] = gs[MOE_GSUM_MARGIN] / n;
    rs[MOE_RSTAT_LOGIT_MEAN] = mean;
    rs[MOE_RSTAT_LOGIT_STD] = var > 0 ? sqrt(var) : 0;
    rs[MOE_RSTAT_LOGIT_MAX] = logit_max;
    rs[MOE_RSTAT_AUX_LOSS] = E * aux;
    rs[MOE_RSTAT_Z_LOSS] = gs[MOE_GSUM_LSE2] / n;
}

/* This thread's CPU time (s): an expert call's cost on its core without the time slices
 * other processes took from it (one syscall; a call is milliseconds of GEMM). */
static double engine_thread_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What the overlapping backends call for expert compute: one local expert of one layer. */
typedef struct engine_expert_arg {
    moe_engine_t *e;
    int           layer;
    int64_t      *processed; /* [E] this step and layer */
    int64_t      *rows_in;   /* rows this rank's experts computed (steps/traffic rows_in) */
} engine_expert_arg_t;

static void engine_expert(void *varg, int local_expert, const float *x, int64_t rows, float *y)
{
    engine_expert_arg_t *a = varg;
    moe_engine_t        *e = a->e;
    int                  g = engine_slot_expert(e, a->layer, local_expert);

    if (g < 0 || rows == 0) /* an empty slot of this layer's map gets no rows */
        return;
    *a->rows_in += rows;
    if (!moe_sim_model(&e->cfg)) { /* as the non-overlapped path: sim.h */
        double c0;
        moe_slots_acquire(&e->slots); /* one piece of rows: the backend progresses between */
        c0 = engine_thread_cpu();
        moe_ffn_forward(&e->ffn[(size_t)a->layer * e->n_local + local_expert], x, rows, y,
                        e->ffn_scratch);
        e->expert_cpu_tot += engine_thread_cpu() - c0;
        moe_slots_release(&e->slots);
    }
    moe_sim_flops(&e->cfg, (double)rows * moe_ffn_flops_per_row(e->d, e->cfg.d_ffn,
                                                                 e->cfg.activation == MOE_ACT_SWIGLU));
    a->processed[g] += rows;
}

/*
 * Replay: the gate's outputs for this rank's T_act tokens from the log (tokens rp_first ..
 * rp_first + T_act - 1, modulo the log's length when tiled), and the gate sums the rest of
 * the layer reads: tokens and routed counts. Probability and logit sums stay 0; the router
 * statistics they feed are set to NaN (engine_layer). Co-selection counted as the gate does.
 */
static void engine_replay_gate(moe_engine_t *e, int l)
{
    const moe_replay_routes_t *rp = e->rp;
    int                        E = e->E, k = e->k, t, j, i;
    int64_t                   *cos = e->coselect + (size_t)l * E * E;

    for (t = 0; t < e->T_act; t++) {
        int64_t        n = (e->rp_first + t) % rp->ntokens;
        const int32_t *ex = rp->expert + ((size_t)n * rp->layers + (size_t)l) * (size_t)k;
        const float   *w = rp->weight + ((size_t)n * rp->layers + (size_t)l) * (size_t)k;
        for (j = 0; j < k; j++) {
            e->gate.expert[t * k + j] = ex[j];
            e->gate.weight[t * k + j] = w[j];
            e->gate.prob[t * k + j] = w[j]; /* --drop-policy probs ranks by the log's weight */
            e->gsum[MOE_GSUM_FIXED + E + ex[j]] += 1;
            for (i = 0; i < k; i++)
                cos[(size_t)ex[j] * E + ex[i]]++;
        }
    }
    for (t = e->T_act * k; t < e->T * k; t++) { /* tokens beyond the log: no route */
        e->gate.expert[t] = -1;
        e->gate.weight[t] = 0;
        e->gate.prob[t] = 0;
        e->keep[t] = 0;
    }
    e->gsum[MOE_GSUM_TOKENS] = e->T_act;
}

/*
 * Expert-choice (router_expert_choice.c): the global choice over the candidate slots the gate
 * filled, then the routed counts, co-selection and the unrouted tokens of this rank (into
 * gsum, summed over ranks with the rest). keep[] holds the choice; nothing is dropped.
 */
static moe_status_t engine_expert_choice(moe_engine_t *e, int l)
{
    int          E = e->E, T = e->T, t, i, j;
    int64_t     *cos = e->coselect + (size_t)l * E * E;
    moe_status_t st;

    st = moe_router_expert_choice_decide(e->comm, &e->log, &e->place, e->capacity, T, e->g0,
                                         e->G, e->gate.expert, e->gate.prob, e->ec_scratch,
                                         e->ec_scratch + E, e->ec_scratch + 2 * E, e->keep,
                                         &e->capws);
    if (st != MOE_OK)
        return st;
    e->gsum[MOE_GSUM_FIXED + E + E] = 0; /* unrouted tokens, after the E counts */
    for (t = 0; t < T; t++) {
        const uint8_t *c = e->keep + (size_t)t * E;
        int            n = 0;
        for (i = 0; i < E; i++) {
            if (!c[i])
                continue;
            n++;
            e->gsum[MOE_GSUM_FIXED + E + i] += 1;
            for (j = 0; j < E; j++)
                cos[(size_t)i * E + j] += c[j];
        }
        e->gsum[MOE_GSUM_FIXED + 2 * E] += n == 0;
    }
    return MOE_OK;
}

/*
 * A sampled route of an expert-choice token: its chosen experts by p, best first (kept 1),
 * then the unchosen ones by p (kept 0), as many as top_k slots hold.
 */
static void engine_ec_route_record(moe_engine_t *e, size_t t, size_t row)
{
    int            E = e->E, kr = e->k, j, x;
    const uint8_t *c = e->keep + t * E;
    const float   *p = e->gate.prob + t * E;
    int32_t       *ex = e->b_route_expert + row * kr;

    for (j = 0; j < kr; j++) {
        int best = -1;
        for (x = 0; x < E; x++) {
            int taken = 0, i;
            for (i = 0; i < j; i++)
                taken |= ex[i] == x;
            if (taken)
                continue;
            if (best < 0 || c[x] > c[best] || (c[x] == c[best] && p[x] > p[best]))
                best = x;
        }
        ex[j] = best;
        e->b_route_weight[row * kr + j] = c[best] ? p[best] : 0.0f;
        e->b_route_kept[row * kr + j] = c[best];
    }
}

/*
 * Aux-loss-free balancing (DeepSeek-V3): after layer l's global counts are known, every
 * expert's bias moves by rate towards the mean load: bias += rate * sign(mean - load). The
 * counts are global, so every rank makes the same update; the next step selects with it.
 */
static void engine_balance_update(moe_engine_t *e, int l)
{
    int     E = e->E, i;
    double  mean = 0, rate = e->cfg.balance_bias;
    float  *bias = e->bias + (size_t)l * E;

    for (i = 0; i < E; i++)
        mean += (double)e->routed_global[i];
    mean /= E;
    for (i = 0; i < E; i++) {
        double load = (double)e->routed_global[i];
        bias[i] += (float)(load < mean ? rate : load > mean ? -rate : 0.0);
    }
}

/* Adds the shared experts' sum to the first T rows of the layer output after combine
 * (T < e->T: a replay's last, short step); the sum sits in the second half of shared_y, at
 * e->T rows, where engine_shared_experts puts it. Nothing without shared experts or under
 * the simulation model. */
static void engine_add_shared(moe_engine_t *e, float *out, int64_t T)
{
    const float *acc;
    size_t       n = (size_t)T * e->d, q;

    if (e->cfg.shared_experts <= 0 || moe_sim_model(&e->cfg))
        return;
    acc = e->shared_y + (size_t)e->T * e->d;
    for (q = 0; q < n; q++)
        out[q] += acc[q];
}

/*
 * Shared experts of layer l: every local token through each of them, on this rank, no
 * exchange; their outputs summed (in shared-expert order) into the second half of
 * shared_y, added to the layer output after combine. Timed in the expert phase.
 */
static void engine_shared_experts(moe_engine_t *e, int l, const float *x)
{
    int    N = e->cfg.shared_experts, j;
    size_t n = (size_t)e->T * e->d, q;
    float *y = e->shared_y, *acc = e->shared_y + n;

    for (j = 0; j < N; j++) {
        moe_sim_flops(&e->cfg, (double)e->T * moe_ffn_flops_per_row(e->d, e->cfg.d_ffn,
                                                                     e->cfg.activation == MOE_ACT_SWIGLU));
        if (moe_sim_model(&e->cfg)) /* not computed: sim.h */
            continue;
        moe_slots_acquire(&e->slots);
        moe_ffn_forward(&e->shared[(size_t)l * N + j], x, e->T, j == 0 ? acc : y,
                        e->ffn_scratch);
        moe_slots_release(&e->slots);
        if (j > 0)
            for (q = 0; q < n; q++)
                acc[q] += y[q];
    }
}

/* One layer: x -> out (out may equal x only when both are caller buffers of the last layer). */
static moe_status_t engine_layer(moe_engine_t *e, int l, const float *x, float *out)
{
    size_t             LE = (size_t)e->L * e->E, b = (size_t)e->nblk;
    int64_t           *routed = e->b_routed + b * LE + (size_t)l * e->E;
    int64_t           *processed = e->b_processed + b * LE + (size_t)l * e->E;
    int64_t           *dropped = e->b_dropped + b * LE + (size_t)l * e->E;
    double            *phase = e->b_phase + (b * e->L + l) * MOE_PHASE_COUNT;
    int64_t           *traffic = e->b_traffic + (b * e->L + l) * MOE_TRAFFIC_COUNT;
    double            *rs = e->b_router + (b * e->L + l) * MOE_RSTAT_COUNT;
    double             lmax = -HUGE_VAL, t0, t1, t2, t3, t4, t5, tw, tb;
    int                E = e->E, k = e->S, kr = e->k, T = e->rp ? e->T_act : e->T, i, p, s, j;
    int64_t            rows_in = 0;
    moe_a2a_stats_t    ast;
    moe_a2a_plan_t     plan;
    moe_expert_batch_t batch;
    moe_status_t       st;

    t0 = MPI_Wtime();
    moe_watchdog_mark(e->wd, MOE_WD_GATE, l);
    memset(e->gsum, 0, MOE_GSUM_LEN(E) * sizeof(double));
    if (e->rp != NULL) {
        engine_replay_gate(e, l);
    } else {
        e->router.layer = l;
        if (e->use_bias) {
            e->router.bias = e->bias + (size_t)l * E;
            for (i = 0; i < E; i++)
                e->b_bias[(b * e->L + l) * E + i] = e->bias[(size_t)l * E + i];
        }
        /* modelled compute (sim.h): expert outputs are not computed, so every layer
         * is gated on the step's tokens, which the residual stream would carry forward */
        moe_gate_route_with(&e->router, e->token_id, moe_sim_model(&e->cfg) ? e->xin : x,
                            e->wg + (size_t)l * e->d * E, T, e->d, e->logits, e->pscratch,
                            e->rscratch, &e->gate, e->gsum, &lmax,
                            e->coselect + (size_t)l * E * E);
        if (e->router.ops->global) {
            st = engine_expert_choice(e, l);
            if (st != MOE_OK)
                return st;
        }
    }
    for (i = 0; i < E; i++)
        e->local_count[i] = (int64_t)e->gsum[MOE_GSUM_FIXED + E + i];
    moe_sim_flops(&e->cfg, 2.0 * T * e->d * E);
    t1 = MPI_Wtime();
    moe_watchdog_mark(e->wd, MOE_WD_COUNTS, l);

    /* the first collective after the gate: a few hundred bytes, so its time is the wait for
     * the slowest rank's gate (plus one small-message latency): counts_wait */
    MOE_MPI_CHECK(&e->log, MPI_Allreduce(MPI_IN_PLACE, e->gsum, MOE_GSUM_LEN(E), MPI_DOUBLE,
                                         MPI_SUM, e->comm));
    tw = MPI_Wtime() - t1;
    MOE_MPI_CHECK(&e->log, MPI_Allreduce(MPI_IN_PLACE, &lmax, 1, MPI_DOUBLE, MPI_MAX, e->comm));
    for (i = 0; i < E; i++) {
        e->routed_global[i] = (int64_t)e->gsum[MOE_GSUM_FIXED + E + i];
        routed[i] = e->routed_global[i];
        e->routed_tot[(size_t)l * E + i] += routed[i];
    }
    engine_router_stats(e, e->gsum, lmax, rs);
    if (e->rp != NULL) { /* a replay knows the log's choices, not the router's distribution */
        for (i = 0; i < MOE_RSTAT_COUNT; i++)
            if (i != MOE_RSTAT_LOAD_ENTROPY && i != MOE_RSTAT_LOAD_ENTROPY_NORM)
                rs[i] = NAN;
    } else {
        /* A non-finite value in this layer's input or gate reaches the globally summed gate
         * statistics, identical on every rank: all ranks stop here together, naming it. */
        for (i = 0; i < MOE_RSTAT_COUNT + 1; i++) {
            double v = i < MOE_RSTAT_COUNT ? rs[i] : lmax;
            if (!isfinite(v))
                return MOE_ERROR_SET(&e->log, MOE_ERR_INVARIANT,
                                     "step %ld layer %d: router statistic %s is %g: a "
                                     "non-finite value in the layer's input or gate (run "
                                     "stopped; the telemetry holds the steps before it)",
                                     e->step, l,
                                     i < MOE_RSTAT_COUNT ? moe_rstat_names[i] : "logit_max", v);
        }
    }
    e->b_capacity[b * e->L + l] = e->capacity;
    if (e->use_bias)
        engine_balance_update(e, l);
    e->b_unrouted[b * e->L + l] = (int64_t)e->gsum[MOE_GSUM_FIXED + 2 * E];
    if (!e->router.ops->global) { /* expert-choice decided above: nothing over capacity */
        st = moe_capacity_decide(e->comm, &e->log, &e->place, e->cfg.drop_policy, e->capacity,
                                 T, k, e->g0, e->gate.expert, e->gate.prob, e->local_count,
                                 e->routed_global, e->keep, dropped, &e->capws);
        if (st != MOE_OK)
            return st;
    }
    for (p = 0; p < T * k; p++) { /* which replica: moe_placement_route's documented rule */
        int slot = 0, r = -1;
        if (e->keep[p])
            r = moe_placement_route(&e->place, l, e->gate.expert[p], e->topo.node[e->rank],
                                    e->g0 + p / k, &slot);
        e->dest_rank[p] = r;
        e->dest_expert[p] = slot;
    }
    plan.tokens = T;
    plan.top_k = k;
    plan.dest_rank = e->dest_rank;
    plan.dest_expert = e->dest_expert;
    plan.weight = e->gate.weight;
    t2 = MPI_Wtime();
    moe_watchdog_mark(e->wd, MOE_WD_DISPATCH, l); /* with --overlap: experts and combine too */

    memset(&ast, 0, sizeof(ast));
    ast.bytes_to_rank = e->traffic_row;
    if (e->cfg.overlap && e->a2a->forward) {
        /* exchange overlapped with the experts: one call, phases from the backend */
        engine_expert_arg_t ea = {e, l, processed, &rows_in};
        double              tsh = MPI_Wtime();
        engine_shared_experts(e, l, x); /* local only: before the exchange starts */
        tsh = MPI_Wtime() - tsh;
        if (out != x && !moe_sim_model(&e->cfg)) /* all T rows: a replay's rows beyond T_act
                                                   * pass through unchanged */
            memcpy(out, x, (size_t)e->T * e->d * sizeof(float));
        st = e->a2a->forward(e->a2a_ctx, &plan, x, engine_expert, &ea, out, &ast);
        if (st != MOE_OK)
            return st;
        engine_add_shared(e, out, T); /* out = x + routed + shared, as below */
        t5 = MPI_Wtime();
        MOE_ASSERT(ast.bytes_intra + ast.bytes_inter == ast.bytes_sent &&
                   ast.msgs_intra + ast.msgs_inter == ast.msgs_sent);
        /* phase boundaries from the backend's times (shared experts count as expert); what
         * it did not attribute (call overhead) goes to dispatch, so phases add up */
        t4 = t5 - ast.t_combine;
        t3 = t4 - ast.t_expert - tsh;
        goto record;
    }
    st = e->a2a->dispatch(e->a2a_ctx, &plan, x, &batch, &ast);
    if (st != MOE_OK)
        return st;
    moe_sim_copy(&e->cfg, (double)(ast.bytes_sent + ast.bytes_recv));
    t3 = MPI_Wtime();
    moe_watchdog_mark(e->wd, MOE_WD_EXPERT, l);
#if MOE_ASSERTS_ENABLED
    engine_assert_delivered(e, l, &plan, &batch, &ast);
    t3 = MPI_Wtime(); /* the check is not the exchange's time */
#endif

    for (i = 0; i < batch.n_local; i++) {
        int64_t rows = batch.offset[i + 1] - batch.offset[i];
        int     g = engine_slot_expert(e, l, i);
        if (g < 0 || rows == 0)
            continue;
        rows_in += rows;
        if (!moe_sim_model(&e->cfg)) {
            double c0;
            moe_slots_acquire(&e->slots); /* held for one expert call only (slots.h) */
            c0 = engine_thread_cpu();
            moe_ffn_forward(&e->ffn[(size_t)l * e->n_local + i],
                            batch.x + batch.offset[i] * e->d, rows,
                            batch.y + batch.offset[i] * e->d, e->ffn_scratch);
            e->expert_cpu_tot += engine_thread_cpu() - c0;
            moe_slots_release(&e->slots);
        }
        moe_sim_flops(&e->cfg, (double)rows * moe_ffn_flops_per_row(e->d, e->cfg.d_ffn,
                                                                     e->cfg.activation == MOE_ACT_SWIGLU));
        processed[g] += rows;
    }
    engine_shared_experts(e, l, x);
    t4 = MPI_Wtime();

    if (out != x && !moe_sim_model(&e->cfg)) /* all T rows: a replay's rows beyond T_act pass
                                               * through unchanged; none read by the model */
        memcpy(out, x, (size_t)e->T * e->d * sizeof(float));
    /* combine_wait: the wait for the slowest rank's experts, made explicit by a barrier so
     * that the exchange after it times only moving and summing */
    tb = MPI_Wtime();
    moe_watchdog_mark(e->wd, MOE_WD_COMBINE, l);
    MOE_MPI_CHECK(&e->log, MPI_Barrier(e->comm));
    ast.t_combine_wait += MPI_Wtime() - tb;
    {
        int64_t sent0 = ast.bytes_sent, recv0 = ast.bytes_recv;
        st = e->a2a->combine(e->a2a_ctx, &plan, &batch, out, &ast);
        if (st != MOE_OK)
            return st;
        moe_sim_copy(&e->cfg, (double)(ast.bytes_sent - sent0 + ast.bytes_recv - recv0));
    }
    engine_add_shared(e, out, T); /* out = x + routed + shared */
    t5 = MPI_Wtime();
    MOE_ASSERT(ast.bytes_intra + ast.bytes_inter == ast.bytes_sent &&
               ast.msgs_intra + ast.msgs_inter == ast.msgs_sent);

record:
    phase[MOE_PHASE_GATE] = t1 - t0;
    phase[MOE_PHASE_COUNTS] = (t2 - t1) + ast.t_counts;
    phase[MOE_PHASE_DISPATCH] = (t3 - t2) - ast.t_counts;
    phase[MOE_PHASE_EXPERT] = t4 - t3;
    phase[MOE_PHASE_COMBINE] = t5 - t4;
    phase[MOE_PHASE_TOTAL] = t5 - t0;
    phase[MOE_PHASE_DISPATCH_INTER] = ast.t_dispatch_inter;
    phase[MOE_PHASE_COMBINE_INTER] = ast.t_combine_inter;
    phase[MOE_PHASE_COUNTS_WAIT] = tw;
    phase[MOE_PHASE_COMBINE_WAIT] = ast.t_combine_wait;
    for (i = 0; i < MOE_PHASE_COUNT; i++)
        e->phase_tot[i] += phase[i];
    traffic[MOE_TRAFFIC_BYTES_SENT] = ast.bytes_sent;
    traffic[MOE_TRAFFIC_BYTES_RECV] = ast.bytes_recv;
    traffic[MOE_TRAFFIC_MSGS_SENT] = ast.msgs_sent;
    traffic[MOE_TRAFFIC_MSGS_RECV] = ast.msgs_recv;
    traffic[MOE_TRAFFIC_BYTES_INTRA] = ast.bytes_intra;
    traffic[MOE_TRAFFIC_BYTES_INTER] = ast.bytes_inter;
    traffic[MOE_TRAFFIC_MSGS_INTRA] = ast.msgs_intra;
    traffic[MOE_TRAFFIC_MSGS_INTER] = ast.msgs_inter;
    traffic[MOE_TRAFFIC_ROWS_IN] = rows_in;
    e->rows_in_tot += rows_in;
    e->bytes_sent_tot += ast.bytes_sent;
    e->bytes_inter_tot += ast.bytes_inter;
    e->bytes_intra_tot += ast.bytes_intra;

    /* sampled routes */
    for (s = 0; s < e->n_route_local; s++) {
        size_t row = (b * e->n_route_local + s) * e->L + l, t = (size_t)e->route_t[s];
        if (e->router.ops->global) {
            engine_ec_route_record(e, t, row);
            continue;
        }
        for (j = 0; j < kr; j++) {
            e->b_route_expert[row * kr + j] = e->gate.expert[t * k + j];
            e->b_route_weight[row * kr + j] = e->gate.weight[t * k + j];
            e->b_route_kept[row * kr + j] = e->keep[t * k + j];
        }
    }
    return MOE_OK;
}

/* Reduces the block, checks the invariant, writes telemetry. Collective. */
static moe_status_t engine_flush(moe_engine_t *e)
{
    size_t          n = (size_t)e->nblk * e->L * e->E, i;
    moe_tel_block_t blk;
    moe_status_t    st = MOE_OK;

    if (e->nblk == 0)
        return MOE_OK;
    moe_watchdog_mark(e->wd, MOE_WD_FLUSH, -1);
    MOE_MPI_CHECK(&e->log, MPI_Allreduce(e->b_processed, e->b_processed_g, (int)n, MPI_INT64_T,
                                         MPI_SUM, e->comm));
    MOE_MPI_CHECK(&e->log, MPI_Allreduce(e->b_dropped, e->b_dropped_g, (int)n, MPI_INT64_T,
                                         MPI_SUM, e->comm));
    MOE_MPI_CHECK(&e->log, MPI_Allreduce(e->coselect, e->coselect_g, e->L * e->E * e->E,
                                         MPI_INT64_T, MPI_SUM, e->comm));
    for (i = 0; i < n; i++) {
        int64_t r = e->b_routed[i], pr = e->b_processed_g[i], dr = e->b_dropped_g[i];
        int64_t cap = e->b_capacity[i / e->E];
        int64_t want_drop = cap >= 0 && r > cap ? r - cap : 0;
        /* expert-choice: every expert takes exactly min(C, G) tokens */
        int     ec_bad = e->router.ops->global && r != (cap < e->G ? cap : e->G);
        if (r != pr + dr || dr != want_drop || ec_bad) {
            size_t s = i / ((size_t)e->L * e->E), l = (i / e->E) % e->L, x = i % e->E;
            return MOE_ERROR_SET(&e->log, MOE_ERR_INVARIANT,
                                 "invariant violated at step %ld layer %zu expert %zu: routed %lld, "
                                 "processed %lld, dropped %lld (capacity %lld)",
                                 e->blk_step0 + (long)s, l, x, (long long)r, (long long)pr,
                                 (long long)dr, (long long)cap);
        }
        e->processed_tot += pr;
        e->dropped_tot += dr;
        e->routed_flushed += r;
    }
    for (i = 0; i < (size_t)e->nblk * e->L; i++)
        e->unrouted_tot += e->b_unrouted[i];
    if (e->tel) {
        memset(&blk, 0, sizeof(blk));
        blk.step0 = e->blk_step0;
        blk.nsteps = e->nblk;
        blk.routed = e->b_routed;
        blk.processed = e->b_processed_g;
        blk.dropped = e->b_dropped_g;
        blk.dropped_capacity = e->b_dropped_g;
        blk.capacity = e->b_capacity;
        blk.router = e->b_router;
        blk.unrouted = e->b_unrouted;
        blk.expert_bias = e->b_bias;
        blk.phase = e->b_phase;
        blk.traffic = e->b_traffic;
        blk.nroutes = e->nblk * e->n_route_local;
        blk.route_step = e->b_route_step;
        blk.route_token = e->b_route_token;
        blk.route_token_id = e->b_route_token_id;
        blk.route_expert = e->b_route_expert;
        blk.route_weight = e->b_route_weight;
        blk.route_kept = e->b_route_kept;
        blk.coselect = e->coselect_g;
        blk.traffic_row = e->traffic_row;
        blk.nevents = e->rank == 0 ? e->n_b_events : 0;
        blk.events = e->b_events;
        st = moe_telemetry_write_block(e->tel, &blk);
    }
    memset(e->b_processed, 0, n * sizeof(int64_t));
    memset(e->b_dropped, 0, n * sizeof(int64_t));
    e->nblk = 0;
    e->n_b_events = 0;
    return st;
}

/* Bookkeeping after all layers of a step: routes, monitor, totals, flush. */
static moe_status_t engine_record_step(moe_engine_t *e)
{
    size_t             b = (size_t)e->nblk, LE = (size_t)e->L * e->E;
    const moe_event_t *ev;
    int                nev = 0, s, l, i;
    moe_status_t       st;

    if (e->nblk == 0)
        e->blk_step0 = e->step;
    for (s = 0; s < e->n_route_local; s++) {
        e->b_route_step[b * e->n_route_local + s] = e->step;
        e->b_route_token[b * e->n_route_local + s] = e->g0 + e->route_t[s];
        e->b_route_token_id[b * e->n_route_local + s] = e->token_id[e->route_t[s]];
    }
    for (l = 0; l < e->L; l++) {
        const double *rs = e->b_router + (b * e->L + l) * MOE_RSTAT_COUNT;
        e->sum_load_ent += rs[MOE_RSTAT_LOAD_ENTROPY_NORM];
        e->sum_gate_ent += rs[MOE_RSTAT_GATE_ENTROPY_NORM];
        e->sum_top1 += rs[MOE_RSTAT_TOP1_PROB];
        e->sum_aux += rs[MOE_RSTAT_AUX_LOSS];
        e->n_stat++;
    }
    if (e->rank == 0) {
        st = moe_monitor_observe(&e->mon, e->step, e->b_routed + b * LE,
                                 e->b_capacity + b * e->L, e->b_router + b * e->L * MOE_RSTAT_COUNT);
        if (st != MOE_OK)
            return MOE_ERROR_SET(&e->log, st, "monitor: out of memory");
        ev = moe_monitor_take(&e->mon, &nev);
        if (nev > 0 && e->n_b_events + nev > e->cap_b_events) {
            int          cap = (e->n_b_events + nev) * 2;
            moe_event_t *p = realloc(e->b_events, (size_t)cap * sizeof(*p));
            if (p == NULL)
                return MOE_ERROR_SET(&e->log, MOE_ERR_NOMEM, "engine: out of memory");
            e->b_events = p;
            e->cap_b_events = cap;
        }
        for (i = 0; i < nev; i++) {
            e->b_events[e->n_b_events++] = ev[i];
            if (e->n_events < MOE_SUMMARY_EVENTS_MAX)
                e->events[e->n_events++] = ev[i];
        }
        e->alerts += nev;
    }
    e->nblk++;
    e->step++;
    if (e->nblk == e->B)
        return engine_flush(e);
    return MOE_OK;
}

moe_status_t moe_engine_forward(moe_engine_t *eng, const float *x, float *out)
{
    const float *cur = x;
    float       *nxt;
    int          l;
    moe_status_t st;
    double       t0 = MPI_Wtime();

    for (l = 0; l < eng->L; l++) {
        nxt = l == eng->L - 1 ? out : (cur == eng->xa ? eng->xb : eng->xa);
        st = engine_layer(eng, l, cur, nxt);
        if (st != MOE_OK)
            return st;
        cur = nxt;
    }
    eng->last_out = out;
    t0 = MPI_Wtime() - t0;
    eng->elapsed += t0;
    if (eng->step < eng->cfg.warmup)
        eng->elapsed_warm += t0;
    else
        eng->step_s[eng->n_step_s++ % eng->cap_step_s] = t0;
    return engine_record_step(eng);
}

moe_status_t moe_engine_set_replay(moe_engine_t *eng, const struct moe_replay_routes *routes)
{
    if (routes != NULL && eng->S != eng->k)
        return MOE_ERROR_SET(&eng->log, MOE_ERR_INVALID,
                             "replay: the log's routes replace the router; --router %s gives "
                             "%d slots per token, a replay needs top-k routing (the default router)",
                             eng->cfg.router, eng->S);
    if (routes != NULL && (routes->layers != eng->L || routes->top_k != eng->k ||
                           routes->experts > eng->E || routes->ntokens < 1))
        return MOE_ERROR_SET(&eng->log, MOE_ERR_INVALID,
                             "replay: routes of %d layers, top-%d, %d experts do not fit this "
                             "engine (%d, %d, %d): check them with moe_replay_check",
                             routes->layers, routes->top_k, routes->experts, eng->L, eng->k,
                             eng->E);
    eng->rp = routes;
    return MOE_OK;
}

/*
 * Replay order: step s, rank r routes the log's tokens from (s P + r) T on, T per rank per
 * step; once through the log (the last step may be partial, ranks past the end route none),
 * or, with --replay-tokens, tiled (indices modulo the log's length).
 */
static void engine_replay_window(moe_engine_t *e)
{
    int64_t first = ((int64_t)e->step * e->nranks + e->rank) * e->T, left;

    if (e->cfg.replay_tokens > 0) {
        e->rp_first = first % e->rp->ntokens;
        e->T_act = e->T;
        return;
    }
    left = e->rp->ntokens - first;
    e->rp_first = first;
    e->T_act = left <= 0 ? 0 : left < e->T ? (int)left : e->T;
    /* capacity from the tokens this step really routes (the last step may be partial) */
    left = e->rp->ntokens - (int64_t)e->step * e->nranks * e->T;
    e->capacity = moe_capacity_compute(e->cfg.capacity_factor, e->k, left < e->G ? left : e->G,
                                       e->E);
}

moe_status_t moe_engine_step(moe_engine_t *eng)
{
    if (eng->rp != NULL)
        engine_replay_window(eng);
    moe_workload_tokens(&eng->wl, eng->step, eng->g0, eng->T, eng->xin);
    moe_workload_token_ids(&eng->wl, eng->step, eng->g0, eng->T, eng->token_id);
    return moe_engine_forward(eng, eng->xin, eng->xout);
}

/*
 * Rank 0: writes the live metrics file (runtime/metrics.h) from this rank's state; with
 * `sum` (end of run) the global numbers come from the summary. No MPI call.
 */
static moe_status_t engine_metrics(moe_engine_t *e, const char *status, const moe_summary_t *sum)
{
    moe_metrics_snap_t m;
    char               err[512];
    int                l, i;

    memset(&m, 0, sizeof(m));
    m.status = status;
    m.exchange = e->cfg.exchange;
    m.placement = e->cfg.placement;
    m.workload = e->cfg.workload;
    m.ranks = e->nranks;
    m.nodes = e->topo.nnodes;
    m.steps_done = e->step;
    m.steps_requested = e->cfg.steps;
    m.steps_flushed = e->step - e->nblk;
    m.tokens_per_s = e->elapsed > 0 ? (double)e->G * e->step / e->elapsed : 0;
    m.routed = e->routed_flushed;
    m.processed = e->processed_tot;
    m.dropped = e->dropped_tot;
    m.drop_rate = m.routed ? (double)m.dropped / m.routed : 0;
    for (l = 0; l < e->L; l++) {
        int64_t mx = 0, tot = 0;
        for (i = 0; i < e->E; i++) {
            int64_t v = e->routed_tot[(size_t)l * e->E + i];
            tot += v;
            mx = v > mx ? v : mx;
        }
        if (tot > 0 && (double)mx * e->E / tot > m.max_mean_load)
            m.max_mean_load = (double)mx * e->E / tot;
    }
    if (e->n_stat > 0) {
        m.load_entropy_norm = e->sum_load_ent / e->n_stat;
        m.gate_entropy_norm = e->sum_gate_ent / e->n_stat;
        m.top1_prob = e->sum_top1 / e->n_stat;
        m.aux_loss = e->sum_aux / e->n_stat;
    }
    m.alerts = e->alerts;
    for (i = 0; i < MOE_PHASE_COUNT; i++)
        m.phase_s[i] = e->phase_tot[i];
    m.bytes_sent = e->bytes_sent_tot;
    m.bytes_intra = e->bytes_intra_tot;
    m.bytes_inter = e->bytes_inter_tot;
    if (sum) {
        m.tokens_per_s = sum->tokens_per_s;
        m.routed = sum->routed;
        m.processed = sum->processed;
        m.dropped = sum->dropped;
        m.drop_rate = sum->drop_rate;
        m.max_mean_load = sum->max_mean_load;
        m.alerts = sum->alerts;
    }
    e->metrics_last = MPI_Wtime();
    if (moe_metrics_write(e->cfg.metrics_file, &m, err, sizeof(err)) != MOE_OK)
        return MOE_ERROR_SET(&e->log, MOE_ERR_IO, "%s", err);
    return MOE_OK;
}

static void engine_progress(moe_engine_t *e, double t_start, long first, int final)
{
    long   done = e->step - first, total = e->cfg.steps - first;
    double el = MPI_Wtime() - t_start, rate = el > 0 ? done * (double)e->G / el : 0;
    double eta = done > 0 ? el / done * (double)(total - done) : 0;
    int    tty = isatty(STDERR_FILENO);

    fprintf(stderr, "%smoerun: step %ld/%ld (%.0f%%)  %.0f tokens/s  elapsed %.1fs  ETA %.1fs%s",
            tty ? "\r" : "", e->step, e->cfg.steps, 100.0 * e->step / e->cfg.steps, rate, el, eta,
            tty ? (final ? "\n" : "   ") : "\n");
    fflush(stderr);
}

moe_status_t moe_engine_run(moe_engine_t *eng, volatile sig_atomic_t *stop)
{
    double       t_start = MPI_Wtime(), last = t_start;
    long         first = eng->step;
    int          flag;
    moe_status_t st = MOE_OK;
    int          speak = eng->rank == 0 && !eng->cfg.quiet;
    int          metrics_warned = 0;

    while (eng->step < eng->cfg.steps) {
        moe_watchdog_arm(eng->wd, eng->step);
        flag = stop ? (int)*stop : 0;
        MOE_MPI_CHECK(&eng->log, MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX,
                                               eng->comm));
        if (flag) { /* every rank reports the agreed signal, not only the rank that got it */
            moe_watchdog_disarm(eng->wd);
            if (stop)
                *stop = (sig_atomic_t)flag;
            return MOE_ERR_INTERRUPTED;
        }
        st = moe_engine_step(eng);
        if (st != MOE_OK) {
            moe_watchdog_disarm(eng->wd);
            return st;
        }
        if (eng->rank == 0 && eng->cfg.metrics_file[0] &&
            MPI_Wtime() - eng->metrics_last >= eng->cfg.metrics_interval &&
            engine_metrics(eng, "running", NULL) != MOE_OK && !metrics_warned) {
            MOE_WARN(&eng->log, "%s (the run goes on; retried at the next interval)",
                     eng->log.last_error);
            metrics_warned = 1;
        }
        if (speak && (MPI_Wtime() - last >= eng->cfg.progress_interval ||
                      eng->step == eng->cfg.steps)) {
            engine_progress(eng, t_start, first, eng->step == eng->cfg.steps);
            last = MPI_Wtime();
        }
    }
    moe_watchdog_disarm(eng->wd);
    return st;
}

static moe_status_t engine_dump_output(moe_engine_t *e)
{
    size_t       n = (size_t)e->T * e->d;
    float       *all = NULL;
    int          ok = 1;
    moe_status_t st = MOE_OK;

    if (e->rank == 0) {
        all = malloc(n * (size_t)e->nranks * sizeof(float));
        ok = all != NULL;
    }
    if ((st = engine_agree(e, ok ? MOE_OK : MOE_ERR_NOMEM)) != MOE_OK) {
        free(all);
        return st;
    }
    MOE_MPI_CHECK(&e->log, MPI_Gather(e->last_out, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, 0,
                                      e->comm));
    if (e->rank == 0) {
        moe_out_t out;
        char      err[MOE_PATH_MAX + 256];
        if (moe_out_open(&out, e->cfg.output_dump, e->cfg.follow_symlinks ? MOE_OUT_FOLLOW : 0u,
                         err, sizeof(err)) != 0) {
            st = MOE_ERROR_SET(&e->log, MOE_ERR_IO, "output_dump: %s", err);
        } else if (fwrite(all, sizeof(float), n * e->nranks, out.f) != n * e->nranks) {
            st = MOE_ERROR_SET(&e->log, MOE_ERR_IO, "output_dump: cannot write '%s': %s",
                               e->cfg.output_dump, strerror(errno ? errno : EIO));
            moe_out_abort(&out);
        } else if (moe_out_commit(&out, err, sizeof(err)) != 0) {
            st = MOE_ERROR_SET(&e->log, MOE_ERR_IO, "output_dump: %s", err);
        }
        free(all);
    }
    return engine_agree(e, st);
}

static int engine_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank p50 and p99 of this rank's measured step times (sorts the ring: called once,
 * at finish). 0 when no step was measured. */
static void engine_step_percentiles(moe_engine_t *e, double *p50, double *p99)
{
    long n = e->n_step_s < e->cap_step_s ? e->n_step_s : e->cap_step_s;

    *p50 = *p99 = 0;
    if (n == 0)
        return;
    qsort(e->step_s, (size_t)n, sizeof(double), engine_cmp_double);
    *p50 = e->step_s[(n * 50 + 99) / 100 - 1];
    *p99 = e->step_s[(n * 99 + 99) / 100 - 1];
}

moe_status_t moe__engine_rates_over_ranks(MPI_Comm comm, moe_log_t *log, double rows, double cpu,
                                          double flop_row, double rows_out[3],
                                          double gflops_out[3], int *slowest)
{
    int    have = rows > 0 && cpu > 0, cnt = 0, P;
    double rate = have ? flop_row * rows / cpu / 1e9 : 0;
    double mx[2] = {-rows, rows}, mx_all[2], sm[2] = {rows, rate}, sm_all[2], hi;
    struct {
        double v;
        int    rank;
    } lo = {have ? rate : HUGE_VAL, 0}, lo_all;

    MOE_MPI_CHECK(log, MPI_Comm_size(comm, &P));
    MOE_MPI_CHECK(log, MPI_Comm_rank(comm, &lo.rank));
    MOE_MPI_CHECK(log, MPI_Allreduce(mx, mx_all, 2, MPI_DOUBLE, MPI_MAX, comm));
    MOE_MPI_CHECK(log, MPI_Allreduce(sm, sm_all, 2, MPI_DOUBLE, MPI_SUM, comm));
    MOE_MPI_CHECK(log, MPI_Allreduce(&rate, &hi, 1, MPI_DOUBLE, MPI_MAX, comm));
    MOE_MPI_CHECK(log, MPI_Allreduce(&lo, &lo_all, 1, MPI_DOUBLE_INT, MPI_MINLOC, comm));
    MOE_MPI_CHECK(log, MPI_Allreduce(&have, &cnt, 1, MPI_INT, MPI_SUM, comm));
    rows_out[0] = -mx_all[0];
    rows_out[1] = sm_all[0] / P;
    rows_out[2] = mx_all[1];
    gflops_out[0] = cnt > 0 ? lo_all.v : 0;
    gflops_out[1] = cnt > 0 ? sm_all[1] / cnt : 0;
    gflops_out[2] = cnt > 0 ? hi : 0;
    *slowest = cnt > 0 ? lo_all.rank : -1;
    return MOE_OK;
}

moe_status_t moe_engine_finish(moe_engine_t *eng, const char *status, moe_summary_t *s)
{
    moe_summary_t sum;
    moe_status_t  st, st2;
    double        buf[5], elapsed = eng->elapsed, measured[3];
    long          nmeas = eng->step > eng->cfg.warmup ? eng->step - eng->cfg.warmup : 0;
    int           l, i;
    size_t        n;

    moe_watchdog_arm(eng->wd, eng->step);
    moe_watchdog_mark(eng->wd, MOE_WD_FINISH, -1);
    st = engine_flush(eng);
    moe_watchdog_mark(eng->wd, MOE_WD_FINISH, -1);
    memset(&sum, 0, sizeof(sum));
    sum.status = status;
    sum.steps = eng->step;
    sum.nranks = eng->nranks;
    sum.nnodes = eng->topo.nnodes;
    MOE_MPI_CHECK(&eng->log, MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX,
                                           eng->comm));
    sum.elapsed_s = elapsed;
    {
        /* a replay of the whole log routes its tokens, not P x T in the partial last step */
        double ntok = (double)eng->G * eng->step;
        if (eng->rp != NULL && eng->cfg.replay_tokens == 0 && ntok > (double)eng->rp->ntokens)
            ntok = (double)eng->rp->ntokens;
        sum.tokens_per_s = elapsed > 0 ? ntok / elapsed : 0;
    }
    /* with --warmup, throughput and percentiles over the steps after it (when there are
     * some) */
    engine_step_percentiles(eng, &measured[1], &measured[2]);
    measured[0] = eng->elapsed - eng->elapsed_warm;
    MOE_MPI_CHECK(&eng->log, MPI_Allreduce(MPI_IN_PLACE, measured, 3, MPI_DOUBLE, MPI_MAX,
                                           eng->comm));
    sum.warmup_steps = eng->step < eng->cfg.warmup ? eng->step : eng->cfg.warmup;
    if (eng->cfg.warmup > 0 && nmeas > 0 && measured[0] > 0)
        sum.tokens_per_s = (double)eng->G * nmeas / measured[0];
    sum.step_p50_s = measured[1];
    sum.step_p99_s = measured[2];
    MOE_MPI_CHECK(&eng->log, MPI_Allreduce(eng->phase_tot, sum.phase_s, MOE_PHASE_COUNT,
                                           MPI_DOUBLE, MPI_SUM, eng->comm));
    MOE_MPI_CHECK(&eng->log, MPI_Allreduce(eng->phase_tot, sum.phase_max_s, MOE_PHASE_COUNT,
                                           MPI_DOUBLE, MPI_MAX, eng->comm));
    for (i = 0; i < MOE_PHASE_COUNT; i++)
        sum.phase_s[i] /= eng->nranks;
    for (l = 0; l < eng->L; l++)
        for (i = 0; i < eng->E; i++)
            sum.routed += eng->routed_tot[(size_t)l * eng->E + i];
    sum.processed = eng->processed_tot;
    sum.dropped = eng->dropped_tot;
    sum.drop_rate = sum.routed ? (double)sum.dropped / sum.routed : 0;
    sum.unrouted = eng->unrouted_tot;
    for (l = 0; l < eng->L; l++) {
        int64_t mx = -1, tot = 0;
        int     me = 0;
        for (i = 0; i < eng->E; i++) {
            int64_t v = eng->routed_tot[(size_t)l * eng->E + i];
            tot += v;
            if (v > mx) {
                mx = v;
                me = i;
            }
        }
        if (tot > 0 && (double)mx * eng->E / tot > sum.max_mean_load) {
            sum.max_mean_load = (double)mx * eng->E / tot;
            sum.hottest_layer = l;
            sum.hottest_expert = me;
        }
    }
    if (eng->n_stat > 0) {
        sum.load_entropy_norm = eng->sum_load_ent / eng->n_stat;
        sum.gate_entropy_norm = eng->sum_gate_ent / eng->n_stat;
        sum.top1_prob = eng->sum_top1 / eng->n_stat;
        sum.aux_loss = eng->sum_aux / eng->n_stat;
    }
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (double)eng->bytes_sent_tot;
    buf[3] = (double)eng->bytes_inter_tot;
    buf[4] = (double)eng->bytes_intra_tot;
    if (eng->last_out) {
        /* under the simulation model the outputs are never written (sim.h): all zero,
         * untouched, and not read here (it would map T x d pages per simulated rank) */
        n = moe_sim_model(&eng->cfg) ? 0 : (size_t)eng->T * eng->d;
        for (i = 0; (size_t)i < n; i++) {
            buf[0] += eng->last_out[i];
            buf[1] += (double)eng->last_out[i] * eng->last_out[i];
        }
        sum.out_count = (int64_t)n * eng->nranks;
    }
    MOE_MPI_CHECK(&eng->log, MPI_Allreduce(MPI_IN_PLACE, buf, 5, MPI_DOUBLE, MPI_SUM, eng->comm));
    sum.out_sum = buf[0];
    sum.out_sumsq = buf[1];
    sum.bytes_sent = (int64_t)buf[2];
    sum.inter_node_bytes = (int64_t)buf[3];
    sum.intra_node_bytes = (int64_t)buf[4];
    {
        long alerts = eng->alerts;
        MOE_MPI_CHECK(&eng->log, MPI_Bcast(&alerts, 1, MPI_LONG, 0, eng->comm));
        sum.alerts = alerts;
    }
    sum.events = eng->events;
    sum.n_events = eng->rank == 0 ? eng->n_events : 0;
    {
        int    sl[3] = {eng->slots.limit, eng->slots.max_holders, (int)(eng->wait_sleep_ns / 1000)};
        double w = eng->slots.wait_s;
        MOE_MPI_CHECK(&eng->log, MPI_Allreduce(MPI_IN_PLACE, sl, 3, MPI_INT, MPI_MAX, eng->comm));
        MOE_MPI_CHECK(&eng->log, MPI_Allreduce(MPI_IN_PLACE, &w, 1, MPI_DOUBLE, MPI_SUM, eng->comm));
        sum.compute_slots = sl[0];
        sum.compute_slots_max_holders = sl[1];
        sum.compute_slots_wait_s = w / eng->nranks;
        sum.wait_sleep_us = sl[2];
    }
    st2 = moe__engine_rates_over_ranks(eng->comm, &eng->log, (double)eng->rows_in_tot,
                                       eng->expert_cpu_tot,
                                       moe_ffn_flops_per_row(eng->d, eng->cfg.d_ffn,
                                                             eng->cfg.activation == MOE_ACT_SWIGLU),
                                       sum.expert_rows, sum.expert_gflops,
                                       &sum.expert_slowest_rank);
    if (st2 != MOE_OK)
        return st2;
    if (eng->rank == 0 && eng->cfg.metrics_file[0] &&
        engine_metrics(eng, st == MOE_OK ? status : "error", &sum) != MOE_OK)
        MOE_WARN(&eng->log, "%s", eng->log.last_error);

    if (st == MOE_OK && eng->cfg.output_dump[0] && eng->last_out)
        st = engine_dump_output(eng);
    if (eng->tel) {
        char *json = NULL;
        if (eng->rank == 0)
            json = moe_summary_to_json(eng, &sum);
        st2 = moe_telemetry_close(eng->tel, eng->step, st == MOE_OK ? status : "error", json);
        free(json);
        eng->tel = NULL;
        if (st == MOE_OK)
            st = st2;
    }
    moe_watchdog_disarm(eng->wd);
    if (s)
        *s = sum;
    return st;
}

const float *moe_engine_output(const moe_engine_t *eng)
{
    return eng->last_out;
}

const char *moe_engine_last_error(const moe_engine_t *eng)
{
    return eng ? eng->log.last_error : "out of memory";
}

void moe_engine_destroy(moe_engine_t *e)
{
    int i;

    if (e == NULL)
        return;
    moe_watchdog_destroy(e->wd);
    if (e->tel)
        moe_telemetry_close(e->tel, e->step, "error", NULL);
    if (e->a2a && e->a2a_ctx)
        e->a2a->destroy(e->a2a_ctx);
    if (e->ffn)
        for (i = 0; i < e->L * e->n_local; i++)
            moe_ffn_cleanup(&e->ffn[i]);
    free(e->ffn);
    free(e->wg);
#ifdef MOERUN_SMPI
    (free)(e->xin);
#else
    free(e->xin);
#endif
    free(e->xa);
    free(e->xb);
    free(e->xout);
    free(e->logits);
    free(e->pscratch);
    free(e->gate.expert);
    free(e->gate.prob);
    free(e->gate.weight);
    free(e->keep);
    free(e->dest_rank);
    free(e->dest_expert);
    free(e->rscratch);
    free(e->router_group);
    free(e->token_id);
    free(e->ec_scratch);
    free(e->bias);
    free(e->b_bias);
    if (e->shared)
        for (i = 0; i < e->L * e->cfg.shared_experts; i++)
            moe_ffn_cleanup(&e->shared[i]);
    free(e->shared);
    free(e->shared_y);
    free(e->gsum);
    free(e->local_count);
    free(e->routed_global);
    free(e->ffn_scratch);
    free(e->b_routed);
    free(e->b_processed);
    free(e->b_dropped);
    free(e->b_processed_g);
    free(e->b_dropped_g);
    free(e->b_capacity);
    free(e->b_unrouted);
    free(e->b_route_token_id);
    free(e->b_router);
    free(e->b_phase);
    free(e->b_traffic);
    free(e->route_t);
    free(e->b_route_step);
    free(e->b_route_token);
    free(e->b_route_expert);
    free(e->b_route_weight);
    free(e->b_route_kept);
    free(e->coselect);
    free(e->coselect_g);
    free(e->traffic_row);
    free(e->routed_tot);
    free(e->step_s);
    free(e->b_events);
    moe_capacity_ws_cleanup(&e->capws);
    moe_monitor_cleanup(&e->mon);
    moe_workload_cleanup(&e->wl);
    moe_placement_cleanup(&e->place);
    moe_topo_cleanup(&e->topo);
    moe_slots_cleanup(&e->slots);
    if (e->comm != MPI_COMM_NULL)
        MPI_Comm_free(&e->comm);
    free(e);
}
