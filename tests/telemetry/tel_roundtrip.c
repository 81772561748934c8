/*
 * tests/telemetry/tel_roundtrip.c — writes a telemetry file from synthetic, deterministic
 * blocks and reads every value back through tools/reader/telemetry_reader.
 *
 * Usage: mpiexec -np N tel_roundtrip parallel|gather OUT.h5 [SUMMARY.json]
 *
 * What it checks (each value's formula is a function of step, layer, expert, rank, so the
 * reader's values can be compared with what was written, and rank mix-ups show):
 *  - 3 blocks of 3, 1 and 4 steps; routes with per-rank counts that include zero; events
 *    from rank 0 only (other ranks pass junk counts that must be ignored); accumulated
 *    matrices rewritten at each flush (the file holds the last);
 *  - root attributes, topology, placement, columns with their units and kind names;
 *  - a value that differs is named: dataset, index, expected and got (EXPECT_VALUE_*);
 *  - a create on a path whose directory is a regular file fails on every rank with the path
 *    in the message, and leaves nothing behind;
 *  - a write that runs out of file size (RLIMIT_FSIZE) returns an error on every rank, later
 *    blocks are refused, and close (with room again) releases everything and reports it.
 * The exit code is the same on every rank: 0 if every check passed.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>

#include "telemetry.h"
#include "telemetry_reader.h"
#include "testlib.h"

enum { RT_L = 2, RT_E = 5, RT_K = 2, RT_NBLK = 3, RT_STEPS = 8 };

static const int rt_block_steps[RT_NBLK] = {3, 1, 4};

/* ---------------------------------------------------------------- the synthetic run --- */

static int64_t rt_routed(long s, int l, int e)
{
    return 100 + s * 31 + l * 7 + e * 3;
}

static int64_t rt_capacity(long s, int l)
{
    return s % 2 == 0 ? 110 + s + l : -1;
}

static int64_t rt_dropped(long s, int l, int e)
{
    int64_t c = rt_capacity(s, l), r = rt_routed(s, l, e);
    return c >= 0 && r > c ? r - c : 0;
}

static double rt_router(long s, int l, int c)
{
    return (double)s + 0.1 * l + 0.01 * c;
}

/* Phase times consistent with the schema: the five phases add up to total, and the
 * inter-node stage columns are half of their phase, the wait columns a quarter. */
static double rt_phase(long s, int l, int r, int c)
{
    double v = 0;
    int    i;

    switch (c) {
    case MOE_PHASE_TOTAL:
        for (i = 0; i < MOE_PHASE_TOTAL; i++)
            v += rt_phase(s, l, r, i);
        return v;
    case MOE_PHASE_DISPATCH_INTER: return 0.5 * rt_phase(s, l, r, MOE_PHASE_DISPATCH);
    case MOE_PHASE_COMBINE_INTER: return 0.5 * rt_phase(s, l, r, MOE_PHASE_COMBINE);
    case MOE_PHASE_COUNTS_WAIT: return 0.25 * rt_phase(s, l, r, MOE_PHASE_COUNTS);
    case MOE_PHASE_COMBINE_WAIT: return 0.25 * rt_phase(s, l, r, MOE_PHASE_COMBINE);
    default: return 1e-3 * (double)(s + 1) + 1e-4 * l + 1e-5 * r + 1e-6 * c;
    }
}

static int rt_nranks; /* set once in main; nodes are pairs of ranks (rt_meta_init) */

/* Traffic consistent with the schema: intra + inter = sent. With one node everything is
 * intra-node; with several, everything is counted inter-node (an upper bound that keeps the
 * traffic matrix's payload to other nodes below it). */
static int64_t rt_traffic(long s, int l, int r, int c)
{
    int multi = rt_nranks > 2;

    switch (c) {
    case MOE_TRAFFIC_BYTES_INTRA: return multi ? 0 : rt_traffic(s, l, r, MOE_TRAFFIC_BYTES_SENT);
    case MOE_TRAFFIC_MSGS_INTRA: return multi ? 0 : rt_traffic(s, l, r, MOE_TRAFFIC_MSGS_SENT);
    case MOE_TRAFFIC_BYTES_INTER: return multi ? rt_traffic(s, l, r, MOE_TRAFFIC_BYTES_SENT) : 0;
    case MOE_TRAFFIC_MSGS_INTER: return multi ? rt_traffic(s, l, r, MOE_TRAFFIC_MSGS_SENT) : 0;
    case MOE_TRAFFIC_ROWS_IN: { /* rank 0 computed every processed pair of the layer */
        int64_t v = 0;
        int     e;
        for (e = 0; r == 0 && e < RT_E; e++)
            v += rt_routed(s, l, e) - rt_dropped(s, l, e);
        return v;
    }
    default: return 1000 * s + 100 * l + 10 * r + c;
    }
}

static int rt_nroutes(int r, int b)
{
    return (r + b) % 3;
}

static int64_t rt_coselect(int b, int l, int i, int j)
{
    return (int64_t)(b + 1) * (l * 100 + i * j + i + j); /* symmetric, as co-selection is */
}

static int64_t rt_tmatrix(int b, int r, int c, int P)
{
    return (int64_t)(b + 1) * (r * P + c) * 8;
}

/* Route i of rank r in block b. */
static void rt_route(int r, int b, long step0, int nsteps, int i, int64_t *step, int64_t *tok,
                     int32_t *ex, float *w, uint8_t *kept)
{
    int l, j;

    *step = step0 + i % nsteps;
    *tok = (int64_t)r * 1000 + b * 10 + i;
    for (l = 0; l < RT_L; l++)
        for (j = 0; j < RT_K; j++) {
            ex[l * RT_K + j] = (i + l + j + r) % RT_E;
            w[l * RT_K + j] = 0.5f / (float)(j + 1) + 0.01f * (float)l;
            kept[l * RT_K + j] = (uint8_t)((i + j + l) % 2);
        }
}

static void rt_event(int b, int i, long step0, moe_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->step = step0 + i;
    ev->layer = i % 2 ? -1 : i % RT_L;
    ev->expert = (b + i) % RT_E;
    ev->kind = (moe_event_kind_t)((b + i) % MOE_EVENT_COUNT);
    ev->value = 0.25 * (b + 1) + i;
    ev->threshold = 0.125 * (i + 1);
    snprintf(ev->message, sizeof(ev->message), "event %d of block %d", i, b);
}

/* Buffers of one block (this rank's view). */
typedef struct rt_block {
    int64_t *routed, *processed, *dropped, *capacity, *traffic, *coselect, *trow;
    double  *router, *phase;
    int64_t *r_step, *r_token;
    int32_t *r_expert;
    float   *r_weight;
    uint8_t *r_kept;
    moe_event_t ev[RT_NBLK];
} rt_block_t;

static void rt_block_fill(rt_block_t *bb, moe_tel_block_t *blk, int b, long step0, int rank,
                          int P)
{
    int n = rt_block_steps[b], s, l, e, c, i, nr = rt_nroutes(rank, b);

    memset(blk, 0, sizeof(*blk));
    for (s = 0; s < n; s++)
        for (l = 0; l < RT_L; l++) {
            long st = step0 + s;
            bb->capacity[s * RT_L + l] = rt_capacity(st, l);
            for (e = 0; e < RT_E; e++) {
                size_t x = ((size_t)s * RT_L + l) * RT_E + e;
                bb->routed[x] = rt_routed(st, l, e);
                bb->dropped[x] = rt_dropped(st, l, e);
                bb->processed[x] = bb->routed[x] - bb->dropped[x];
            }
            for (c = 0; c < MOE_RSTAT_COUNT; c++)
                bb->router[((size_t)s * RT_L + l) * MOE_RSTAT_COUNT + c] = rt_router(st, l, c);
            for (c = 0; c < MOE_PHASE_COUNT; c++)
                bb->phase[((size_t)s * RT_L + l) * MOE_PHASE_COUNT + c] =
                    rt_phase(st, l, rank, c);
            for (c = 0; c < MOE_TRAFFIC_COUNT; c++)
                bb->traffic[((size_t)s * RT_L + l) * MOE_TRAFFIC_COUNT + c] =
                    rt_traffic(st, l, rank, c);
        }
    for (i = 0; i < nr; i++)
        rt_route(rank, b, step0, n, i, &bb->r_step[i], &bb->r_token[i],
                 &bb->r_expert[i * RT_L * RT_K], &bb->r_weight[i * RT_L * RT_K],
                 &bb->r_kept[i * RT_L * RT_K]);
    for (l = 0; l < RT_L; l++)
        for (i = 0; i < RT_E; i++)
            for (e = 0; e < RT_E; e++)
                bb->coselect[(l * RT_E + i) * RT_E + e] = rt_coselect(b, l, i, e);
    for (c = 0; c < P; c++)
        bb->trow[c] = rt_tmatrix(b, rank, c, P);
    for (i = 0; i < b; i++)
        rt_event(b, i, step0, &bb->ev[i]);

    blk->step0 = step0;
    blk->nsteps = n;
    blk->routed = bb->routed;
    blk->processed = bb->processed;
    blk->dropped = bb->dropped;
    blk->dropped_capacity = bb->dropped;
    blk->capacity = bb->capacity;
    blk->router = bb->router;
    blk->phase = bb->phase;
    blk->traffic = bb->traffic;
    blk->nroutes = nr;
    blk->route_step = bb->r_step;
    blk->route_token = bb->r_token;
    blk->route_expert = bb->r_expert;
    blk->route_weight = bb->r_weight;
    blk->route_kept = bb->r_kept;
    blk->coselect = bb->coselect;
    blk->traffic_row = bb->trow;
    /* only rank 0's events count; the others pass a count with no array */
    blk->nevents = rank == 0 ? b : 7;
    blk->events = rank == 0 ? bb->ev : NULL;
}

static int rt_block_alloc(rt_block_t *bb, int P)
{
    size_t S = 4, LE = (size_t)RT_L * RT_E, R = 3, Lk = (size_t)RT_L * RT_K;

    memset(bb, 0, sizeof(*bb));
    bb->routed = calloc(S * LE, 8);
    bb->processed = calloc(S * LE, 8);
    bb->dropped = calloc(S * LE, 8);
    bb->capacity = calloc(S * RT_L, 8);
    bb->router = calloc(S * RT_L * MOE_RSTAT_COUNT, 8);
    bb->phase = calloc(S * RT_L * MOE_PHASE_COUNT, 8);
    bb->traffic = calloc(S * RT_L * MOE_TRAFFIC_COUNT, 8);
    bb->coselect = calloc(LE * RT_E, 8);
    bb->trow = calloc((size_t)P, 8);
    bb->r_step = calloc(R, 8);
    bb->r_token = calloc(R, 8);
    bb->r_expert = calloc(R * Lk, 4);
    bb->r_weight = calloc(R * Lk, 4);
    bb->r_kept = calloc(R * Lk, 1);
    return bb->routed && bb->processed && bb->dropped && bb->capacity && bb->router &&
           bb->phase && bb->traffic && bb->coselect && bb->trow && bb->r_step && bb->r_token &&
           bb->r_expert && bb->r_weight && bb->r_kept;
}

static void rt_block_free(rt_block_t *bb)
{
    free(bb->routed);
    free(bb->processed);
    free(bb->dropped);
    free(bb->capacity);
    free(bb->router);
    free(bb->phase);
    free(bb->traffic);
    free(bb->coselect);
    free(bb->trow);
    free(bb->r_step);
    free(bb->r_token);
    free(bb->r_expert);
    free(bb->r_weight);
    free(bb->r_kept);
}

/* Metadata of the synthetic run; arrays sized for P ranks, freed by rt_meta_free. */
typedef struct rt_meta {
    moe_config_t   cfg;
    moe_tel_meta_t meta;
    char (*host)[MOE_HOST_MAX];
    char (*cpus)[MOE_CPUSET_MAX];
    int  *node, *local, *numa, owner[RT_E];
} rt_meta_t;

static const char rt_config_ini[] = "[moerun]\nexperts = 5\ntop_k = 2\nlayers = 2\n";

static int rt_meta_init(rt_meta_t *m, int P)
{
    int r;

    memset(m, 0, sizeof(*m));
    m->cfg.experts = RT_E;
    m->cfg.top_k = RT_K;
    m->cfg.d_model = 8;
    m->cfg.d_ffn = 16;
    m->cfg.layers = RT_L;
    m->cfg.tokens = 7;
    m->cfg.steps = RT_STEPS;
    m->cfg.overwrite = 1; /* the test is run again on the same build directory */
    m->cfg.capacity_factor = 1.25;
    m->cfg.drop_policy = MOE_DROP_PROBS;
    m->cfg.temperature = 1.0;
    m->cfg.seed = 42;
    snprintf(m->cfg.workload, sizeof(m->cfg.workload), "zipf:1.2");
    snprintf(m->cfg.exchange, sizeof(m->cfg.exchange), "flat");
    m->cfg.flush_interval = 4;
    m->cfg.route_samples = 3;
    m->host = calloc((size_t)P, sizeof(*m->host));
    m->cpus = calloc((size_t)P, sizeof(*m->cpus));
    m->node = calloc((size_t)P, sizeof(int));
    m->local = calloc((size_t)P, sizeof(int));
    m->numa = calloc((size_t)P, sizeof(int));
    if (!m->host || !m->cpus || !m->node || !m->local || !m->numa)
        return 0;
    for (r = 0; r < P; r++) {
        snprintf(m->host[r], MOE_HOST_MAX, "host-%d", r / 2);
        snprintf(m->cpus[r], MOE_CPUSET_MAX, "%d-%d", 4 * r, 4 * r + 3);
        m->node[r] = r / 2;
        m->local[r] = r % 2;
        m->numa[r] = r % 2 ? -1 : r / 2;
    }
    for (r = 0; r < RT_E; r++)
        m->owner[r] = r % P;
    m->meta.cfg = &m->cfg;
    m->meta.config_ini = rt_config_ini;
    m->meta.nranks = P;
    m->meta.nnodes = (P + 1) / 2;
    m->meta.hostname = (const char(*)[MOE_HOST_MAX])m->host;
    m->meta.node = m->node;
    m->meta.local_rank = m->local;
    m->meta.cpuset = (const char(*)[MOE_CPUSET_MAX])m->cpus;
    m->meta.numa_node = m->numa;
    m->meta.expert_owner = m->owner;
    m->meta.slurm_job_id = "";
    m->meta.mpi_version = "synthetic MPI 1.0";
    m->meta.hwloc_version = "2.9.0";
    m->meta.start_time = "2026-01-01T00:00:00Z";
    return 1;
}

static void rt_meta_free(rt_meta_t *m)
{
    free(m->host);
    free(m->cpus);
    free(m->node);
    free(m->local);
    free(m->numa);
}

/* Writes the whole synthetic run; returns the status of the last call. */
static moe_status_t rt_write(const char *path, moe_tel_mode_t mode, rt_meta_t *m, int rank,
                             int P, moe_log_t *log, const char *summary)
{
    moe_telemetry_t *tel = NULL;
    moe_tel_block_t  blk;
    rt_block_t       bb;
    moe_status_t     st;
    long             step0 = 0;
    int              b;

    if (!rt_block_alloc(&bb, P)) {
        rt_block_free(&bb);
        return MOE_ERR_NOMEM;
    }
    st = moe_telemetry_create(path, mode, MPI_COMM_WORLD, &m->meta, log, &tel);
    for (b = 0; b < RT_NBLK && st == MOE_OK; b++) {
        rt_block_fill(&bb, &blk, b, step0, rank, P);
        st = moe_telemetry_write_block(tel, &blk);
        step0 += rt_block_steps[b];
    }
    if (tel) {
        moe_status_t st2 = moe_telemetry_close(tel, step0, st == MOE_OK ? "complete" : "error",
                                               rank == 0 ? summary : NULL);
        if (st == MOE_OK)
            st = st2;
    }
    rt_block_free(&bb);
    return st;
}

/* ---------------------------------------------------------------- reading back -------- */

static void rt_check_attrs(moe_tel_reader_t *r, const char *mode, const char *summary)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    static const struct { const char *name, *want; } strs[] = {
        {"moerun_version", MOERUN_VERSION}, {"mpi_version", "synthetic MPI 1.0"},
        {"hwloc_version", "2.9.0"},         {"start_time", "2026-01-01T00:00:00Z"},
        {"slurm_job_id", ""},               {"workload", "zipf:1.2"},
        {"exchange", "flat"},               {"status", "complete"},
        {"config", rt_config_ini},
    };
    char  *s = NULL, **cols = NULL;
    int    n = 0, d;
    size_t i;

    ASSERT_EQ_INT(in->schema_version, MOE_TEL_SCHEMA_VERSION);
    ASSERT_EQ_INT(in->experts, RT_E);
    ASSERT_EQ_INT(in->top_k, RT_K);
    ASSERT_EQ_INT(in->layers, RT_L);
    ASSERT_EQ_INT(in->d_model, 8);
    ASSERT_EQ_INT(in->d_ffn, 16);
    ASSERT_EQ_INT(in->tokens_per_rank, 7);
    ASSERT_EQ_INT(in->flush_interval, 4);
    ASSERT_EQ_INT(in->route_samples, 3);
    ASSERT_EQ_INT(in->steps_completed, RT_STEPS);
    ASSERT_EQ_INT(in->steps, RT_STEPS);
    ASSERT_EQ_INT(in->nevents, 0 + 1 + 2);
    ASSERT_EQ_INT(in->accumulated_steps, RT_STEPS);
    ASSERT_EQ_INT(in->closed, 1);
    ASSERT_EQ_DBL(in->capacity_factor, 1.25, 0);
    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        ASSERT_EQ_INT(moe_tel_reader_attr_str(r, "/", strs[i].name, &s), MOE_OK);
        if (s && strcmp(s, strs[i].want) != 0)
            fprintf(stderr, "root attribute %s:\n", strs[i].name);
        ASSERT_EQ_STR(s, strs[i].want);
        free(s);
        s = NULL;
    }
    ASSERT_EQ_INT(moe_tel_reader_attr_str(r, "/", "telemetry_mode", &s), MOE_OK);
    ASSERT_STR_CONTAINS(s, mode);
    free(s);
    ASSERT_EQ_INT(moe_tel_reader_attr_str(r, "/", "summary", &s), MOE_OK);
    ASSERT_STR_CONTAINS(s, summary);
    free(s);
    ASSERT_EQ_INT(moe_tel_reader_attr_str(r, "/", "hdf5_version", &s), MOE_OK);
    ASSERT_TRUE(s && strlen(s) >= 5);
    free(s);
    ASSERT_EQ_INT(moe_tel_reader_attr_str(r, "/", "end_time", &s), MOE_OK);
    ASSERT_TRUE(s && strlen(s) == 20);
    free(s);
    ASSERT_EQ_INT(moe_tel_reader_attr_str(r, "/", "no_such_attribute", &s), MOE_ERR_NOT_FOUND);
    /* the column datasets: names and one unit per column, as the schema says */
    for (d = 0; d < MOE_TEL_DS_COUNT; d++) {
        const moe_tel_dset_t   *def = moe_tel_dset(d);
        const moe_tel_column_t *c;
        int                     nc = moe_tel_dim_columns(moe_tel_dset_column_dim(def), &c);
        char                  **units = NULL;
        int                     nu = 0;
        if (nc == 0)
            continue;
        ASSERT_EQ_INT(moe_tel_reader_attr_strlist(r, def->path, "columns", &cols, &n), MOE_OK);
        ASSERT_EQ_INT(moe_tel_reader_attr_strlist(r, def->path, "units", &units, &nu), MOE_OK);
        ASSERT_EQ_INT(n, nc);
        ASSERT_EQ_INT(nu, nc);
        for (i = 0; cols && units && i < (size_t)n && i < (size_t)nu && i < (size_t)nc; i++) {
            ASSERT_EQ_STR(cols[i], c[i].name);
            ASSERT_EQ_STR(units[i], c[i].unit);
        }
        moe_tel_reader_strlist_free(cols, n);
        moe_tel_reader_strlist_free(units, nu);
    }
    ASSERT_EQ_STR(moe_phase_names[MOE_PHASE_TOTAL], "total");
    ASSERT_EQ_STR(moe_traffic_names[MOE_TRAFFIC_BYTES_INTER], "bytes_inter");
    ASSERT_EQ_STR(moe_rstat_names[MOE_RSTAT_Z_LOSS], "z_loss");
}

static void rt_check_topology(moe_tel_reader_t *r, const rt_meta_t *m, int P)
{
    char (*host)[MOE_HOST_MAX] = calloc((size_t)P, sizeof(*host));
    char (*cpus)[MOE_CPUSET_MAX] = calloc((size_t)P, sizeof(*cpus));
    int32_t *iv = calloc((size_t)(P > RT_E ? P : RT_E), sizeof(int32_t));
    int      i;

    ASSERT_TRUE(host && cpus && iv);
    if (!host || !cpus || !iv)
        goto out;
    ASSERT_EQ_INT(moe_tel_reader_strings(r, MOE_TEL_HOSTNAME, P, MOE_HOST_MAX, &host[0][0]),
                  MOE_OK);
    ASSERT_EQ_INT(moe_tel_reader_strings(r, MOE_TEL_CPUSET, P, MOE_CPUSET_MAX, &cpus[0][0]),
                  MOE_OK);
    for (i = 0; i < P; i++) {
        ASSERT_EQ_STR(host[i], m->host[i]);
        ASSERT_EQ_STR(cpus[i], m->cpus[i]);
    }
    ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_NODE, MOE_TEL_I32, 0, P, iv), MOE_OK);
    for (i = 0; i < P; i++)
        ASSERT_EQ_INT(iv[i], m->node[i]);
    ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_LOCAL_RANK, MOE_TEL_I32, 0, P, iv), MOE_OK);
    for (i = 0; i < P; i++)
        ASSERT_EQ_INT(iv[i], m->local[i]);
    ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_NUMA_NODE, MOE_TEL_I32, 0, P, iv), MOE_OK);
    for (i = 0; i < P; i++)
        ASSERT_EQ_INT(iv[i], m->numa[i]);
    ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_EXPERT_OWNER, MOE_TEL_I32, 0, RT_E, iv), MOE_OK);
    for (i = 0; i < RT_E; i++)
        ASSERT_EQ_INT(iv[i], i % P);
out:
    free(host);
    free(cpus);
    free(iv);
}

/* Per-step datasets, read one step at a time (as a tool would). */
static void rt_check_steps(moe_tel_reader_t *r, int P)
{
    int64_t i64[RT_L * RT_E], cap[RT_L], stepv;
    double  rs[RT_L * MOE_RSTAT_COUNT];
    double *ph = calloc((size_t)RT_L * P * MOE_PHASE_COUNT, sizeof(double));
    int64_t *tr = calloc((size_t)RT_L * P * MOE_TRAFFIC_COUNT, sizeof(int64_t));
    long    s;
    int     l, e, c, rk, bad = 0;

    ASSERT_TRUE(ph && tr);
    for (s = 0; s < RT_STEPS && ph && tr; s++) {
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_STEP, MOE_TEL_I64, s, 1, &stepv), MOE_OK);
        EXPECT_VALUE_INT(bad, s, stepv, "%s[%ld]", MOE_TEL_STEP, s);
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_ROUTED, MOE_TEL_I64, s, 1, i64), MOE_OK);
        for (l = 0; l < RT_L; l++)
            for (e = 0; e < RT_E; e++)
                EXPECT_VALUE_INT(bad, rt_routed(s, l, e), i64[l * RT_E + e], "%s[%ld][%d][%d]",
                                 MOE_TEL_ROUTED, s, l, e);
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_PROCESSED, MOE_TEL_I64, s, 1, i64), MOE_OK);
        for (l = 0; l < RT_L; l++)
            for (e = 0; e < RT_E; e++)
                EXPECT_VALUE_INT(bad, rt_routed(s, l, e) - rt_dropped(s, l, e), i64[l * RT_E + e],
                                 "%s[%ld][%d][%d]", MOE_TEL_PROCESSED, s, l, e);
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_DROPPED, MOE_TEL_I64, s, 1, i64), MOE_OK);
        for (l = 0; l < RT_L; l++)
            for (e = 0; e < RT_E; e++)
                EXPECT_VALUE_INT(bad, rt_dropped(s, l, e), i64[l * RT_E + e], "%s[%ld][%d][%d]",
                                 MOE_TEL_DROPPED, s, l, e);
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_DROPPED_CAPACITY, MOE_TEL_I64, s, 1, i64),
                      MOE_OK);
        for (l = 0; l < RT_L; l++)
            for (e = 0; e < RT_E; e++)
                EXPECT_VALUE_INT(bad, rt_dropped(s, l, e), i64[l * RT_E + e], "%s[%ld][%d][%d]",
                                 MOE_TEL_DROPPED_CAPACITY, s, l, e);
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_CAPACITY, MOE_TEL_I64, s, 1, cap), MOE_OK);
        for (l = 0; l < RT_L; l++)
            EXPECT_VALUE_INT(bad, rt_capacity(s, l), cap[l], "%s[%ld][%d]", MOE_TEL_CAPACITY, s, l);
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_ROUTER, MOE_TEL_F64, s, 1, rs), MOE_OK);
        for (l = 0; l < RT_L; l++)
            for (c = 0; c < MOE_RSTAT_COUNT; c++)
                EXPECT_VALUE_DBL(bad, rt_router(s, l, c), rs[l * MOE_RSTAT_COUNT + c], 0,
                                 "%s[%ld][%d][%d]", MOE_TEL_ROUTER, s, l, c);
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_PHASE, MOE_TEL_F64, s, 1, ph), MOE_OK);
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_TRAFFIC, MOE_TEL_I64, s, 1, tr), MOE_OK);
        for (l = 0; l < RT_L; l++)
            for (rk = 0; rk < P; rk++) {
                for (c = 0; c < MOE_PHASE_COUNT; c++)
                    EXPECT_VALUE_DBL(bad, rt_phase(s, l, rk, c),
                                     ph[((size_t)l * P + rk) * MOE_PHASE_COUNT + c], 0,
                                     "%s[%ld][%d][%d][%d]", MOE_TEL_PHASE, s, l, rk, c);
                for (c = 0; c < MOE_TRAFFIC_COUNT; c++)
                    EXPECT_VALUE_INT(bad, rt_traffic(s, l, rk, c),
                                     tr[((size_t)l * P + rk) * MOE_TRAFFIC_COUNT + c],
                                     "%s[%ld][%d][%d][%d]", MOE_TEL_TRAFFIC, s, l, rk, c);
            }
    }
    ASSERT_EQ_INT(bad, 0);
    /* reading past the end is an error, not a crash */
    ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_ROUTED, MOE_TEL_I64, RT_STEPS, 1, i64),
                  MOE_ERR_INVALID);
    free(ph);
    free(tr);
}

/* Routes: blocks in order, within a block ranks in order. */
static void rt_check_routes(moe_tel_reader_t *r, int P)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    int64_t  total = 0, row = 0, st, tok;
    int32_t  ex[RT_L * RT_K], fex[RT_L * RT_K];
    float    w[RT_L * RT_K], fw[RT_L * RT_K];
    uint8_t  k[RT_L * RT_K], fk[RT_L * RT_K];
    int64_t  fst, ftok;
    long     step0 = 0;
    int      b, rk, i, j, bad = 0;

    for (b = 0; b < RT_NBLK; b++)
        for (rk = 0; rk < P; rk++)
            total += rt_nroutes(rk, b);
    ASSERT_EQ_INT(in->nroutes, total);
    if (in->nroutes != total)
        return;
    for (b = 0; b < RT_NBLK; b++) {
        for (rk = 0; rk < P; rk++)
            for (i = 0; i < rt_nroutes(rk, b); i++, row++) {
                rt_route(rk, b, step0, rt_block_steps[b], i, &st, &tok, ex, w, k);
                ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_ROUTE_STEP, MOE_TEL_I64, row, 1,
                                                  &fst), MOE_OK);
                ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_ROUTE_TOKEN, MOE_TEL_I64, row, 1,
                                                  &ftok), MOE_OK);
                ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_ROUTE_EXPERT, MOE_TEL_I32, row, 1,
                                                  fex), MOE_OK);
                ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_ROUTE_WEIGHT, MOE_TEL_F32, row, 1,
                                                  fw), MOE_OK);
                ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_ROUTE_KEPT, MOE_TEL_U8, row, 1, fk),
                              MOE_OK);
                EXPECT_VALUE_INT(bad, st, fst, "%s[%lld]", MOE_TEL_ROUTE_STEP, (long long)row);
                EXPECT_VALUE_INT(bad, tok, ftok, "%s[%lld]", MOE_TEL_ROUTE_TOKEN, (long long)row);
                for (j = 0; j < RT_L * RT_K; j++) {
                    EXPECT_VALUE_INT(bad, ex[j], fex[j], "%s[%lld][%d][%d]", MOE_TEL_ROUTE_EXPERT,
                                     (long long)row, j / RT_K, j % RT_K);
                    EXPECT_VALUE_DBL(bad, w[j], fw[j], 0, "%s[%lld][%d][%d]", MOE_TEL_ROUTE_WEIGHT,
                                     (long long)row, j / RT_K, j % RT_K);
                    EXPECT_VALUE_INT(bad, k[j], fk[j], "%s[%lld][%d][%d]", MOE_TEL_ROUTE_KEPT,
                                     (long long)row, j / RT_K, j % RT_K);
                }
            }
        step0 += rt_block_steps[b];
    }
    ASSERT_EQ_INT(bad, 0);
}

static void rt_check_accumulated(moe_tel_reader_t *r, int P)
{
    int64_t  cs[RT_L * RT_E * RT_E];
    int64_t *tm = calloc((size_t)P * P, sizeof(int64_t));
    int      l, i, j, bad = 0, last = RT_NBLK - 1;

    ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_COSELECT, MOE_TEL_I64, 0, RT_L, cs), MOE_OK);
    for (l = 0; l < RT_L; l++)
        for (i = 0; i < RT_E; i++)
            for (j = 0; j < RT_E; j++)
                EXPECT_VALUE_INT(bad, rt_coselect(last, l, i, j), cs[(l * RT_E + i) * RT_E + j],
                                 "%s[%d][%d][%d]", MOE_TEL_COSELECT, l, i, j);
    ASSERT_TRUE(tm != NULL);
    if (tm) {
        ASSERT_EQ_INT(moe_tel_reader_read(r, MOE_TEL_TRAFFIC_MATRIX, MOE_TEL_I64, 0, P, tm),
                      MOE_OK);
        for (i = 0; i < P; i++)
            for (j = 0; j < P; j++)
                EXPECT_VALUE_INT(bad, rt_tmatrix(last, i, j, P), tm[i * P + j], "%s[%d][%d]",
                                 MOE_TEL_TRAFFIC_MATRIX, i, j);
    }
    ASSERT_EQ_INT(bad, 0);
    free(tm);
}

static void rt_check_events(moe_tel_reader_t *r)
{
    moe_tel_event_t got[3];
    moe_event_t     want;
    long            step0 = 0;
    int             b, i, row = 0;

    ASSERT_EQ_INT(moe_tel_reader_events(r, 0, 3, got), MOE_OK);
    for (b = 0; b < RT_NBLK; b++) {
        for (i = 0; i < b; i++, row++) {
            rt_event(b, i, step0, &want);
            ASSERT_EQ_INT(got[row].step, want.step);
            ASSERT_EQ_INT(got[row].layer, want.layer);
            ASSERT_EQ_INT(got[row].expert, want.expert);
            ASSERT_EQ_INT(got[row].kind, want.kind);
            ASSERT_EQ_STR(got[row].kind_name, moe_event_names[want.kind]);
            ASSERT_EQ_DBL(got[row].value, want.value, 0);
            ASSERT_EQ_DBL(got[row].threshold, want.threshold, 0);
            ASSERT_EQ_STR(got[row].message, want.message);
        }
        step0 += rt_block_steps[b];
    }
}

/* ---------------------------------------------------------------- failure cases ------- */

/* A path under a regular file cannot be created: error on all ranks, nothing left. */
static void rt_check_create_failure(const char *out, rt_meta_t *m, int rank)
{
    char             notdir[1100], bad[1200];
    moe_telemetry_t *tel = (moe_telemetry_t *)&tel;
    moe_log_t        log;
    moe_status_t     st;
    int              mine, all;
    struct stat      sb;
    moe_tel_mode_t   modes[2] = {MOE_TEL_PARALLEL, MOE_TEL_GATHER};
    int              i;

    moe_log_init(&log, rank, MOE_LOG_ERROR);
    snprintf(notdir, sizeof(notdir), "%s.notadir", out);
    snprintf(bad, sizeof(bad), "%s/telemetry.h5", notdir);
    if (rank == 0) {
        FILE *f = fopen(notdir, "w");
        if (f)
            fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    for (i = 0; i < 2; i++) {
        st = moe_telemetry_create(bad, modes[i], MPI_COMM_WORLD, &m->meta, &log, &tel);
        mine = st != MOE_OK && tel == NULL;
        MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        ASSERT_EQ_INT(all, 1);
        ASSERT_TRUE(st == MOE_ERR_HDF5 || st == MOE_ERR_IO);
        if (rank == 0) {
            ASSERT_STR_CONTAINS(log.last_error, bad);
            printf("expected create failure (%s mode): %s\n", moe_tel_mode_name(modes[i]),
                   log.last_error);
        }
        ASSERT_TRUE(stat(bad, &sb) != 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        unlink(notdir);
}

/*
 * A write that cannot grow the file (RLIMIT_FSIZE, SIGXFSZ ignored) fails on every rank
 * with an error, later blocks are refused, and close reports the error and frees all.
 */
static void rt_check_write_failure(const char *out, moe_tel_mode_t mode, rt_meta_t *m, int rank,
                                   int P)
{
    char             path[1100];
    moe_telemetry_t *tel = NULL;
    moe_tel_block_t  blk;
    rt_block_t       bb;
    moe_log_t        log;
    struct rlimit    old, lim;
    struct stat      sb;
    moe_status_t     st = MOE_OK, st2;
    int              b, mine, all;
    long             step0 = 0;

    moe_log_init(&log, rank, MOE_LOG_ERROR);
    snprintf(path, sizeof(path), "%s.full.h5", out);
    if (!rt_block_alloc(&bb, P)) {
        ASSERT_TRUE(0);
        rt_block_free(&bb);
        return;
    }
    ASSERT_EQ_INT(moe_telemetry_create(path, mode, MPI_COMM_WORLD, &m->meta, &log, &tel), MOE_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    /* the file may not grow past its current size any more */
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = stat(path, &sb) == 0 ? (rlim_t)sb.st_size : 4096;
    setrlimit(RLIMIT_FSIZE, &lim);
    for (b = 0; b < 40 && st == MOE_OK && tel; b++) {
        rt_block_fill(&bb, &blk, b % RT_NBLK, step0, rank, P);
        st = moe_telemetry_write_block(tel, &blk);
        step0 += blk.nsteps;
    }
    mine = st != MOE_OK;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    ASSERT_EQ_INT(all, 1);
    if (rank == 0)
        printf("expected write failure (%s mode) after %d blocks: %s\n", moe_tel_mode_name(mode),
               b, log.last_error);
    if (tel) {
        rt_block_fill(&bb, &blk, 0, step0, rank, P);
        ASSERT_TRUE(moe_telemetry_write_block(tel, &blk) != MOE_OK);
        /* room again before close: HDF5 1.10 cannot survive a failed H5Fclose (it leaves a
         * dangling id that its exit-time cleanup trips over), see docs/telemetry.md */
        setrlimit(RLIMIT_FSIZE, &old);
        st2 = moe_telemetry_close(tel, step0, "error", NULL);
        ASSERT_TRUE(st2 != MOE_OK);
    }
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        unlink(path);
    rt_block_free(&bb);
}

/* ---------------------------------------------------------------- main ---------------- */

static int rt_parse_mode(const char *s, moe_tel_mode_t *m)
{
    if (strcmp(s, "parallel") == 0)
        *m = MOE_TEL_PARALLEL;
    else if (strcmp(s, "gather") == 0)
        *m = MOE_TEL_GATHER;
    else
        return 0;
    return 1;
}

/* The summary the synthetic run would print: totals over all steps. */
static void rt_summary(char *buf, size_t len, int P)
{
    int64_t routed = 0, dropped = 0, intra = 0, inter = 0;
    long    s;
    int     l, e, r;

    for (s = 0; s < RT_STEPS; s++)
        for (l = 0; l < RT_L; l++) {
            for (e = 0; e < RT_E; e++) {
                routed += rt_routed(s, l, e);
                dropped += rt_dropped(s, l, e);
            }
            for (r = 0; r < P; r++) {
                intra += rt_traffic(s, l, r, MOE_TRAFFIC_BYTES_INTRA);
                inter += rt_traffic(s, l, r, MOE_TRAFFIC_BYTES_INTER);
            }
        }
    snprintf(buf, len,
             "{\"status\":\"complete\",\"steps_completed\":%d,\"routed\":%lld,"
             "\"processed\":%lld,\"dropped\":%lld,\"inter_node_bytes\":%lld,"
             "\"intra_node_bytes\":%lld}",
             RT_STEPS, (long long)routed, (long long)(routed - dropped), (long long)dropped,
             (long long)inter, (long long)intra);
}

int main(int argc, char **argv)
{
    moe_tel_mode_t    mode = MOE_TEL_PARALLEL;
    moe_tel_reader_t *r = NULL;
    moe_log_t         log;
    rt_meta_t         m;
    moe_status_t      st;
    char              summary[512];
    int               rank, P, fails, all;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    if (argc < 3 || !rt_parse_mode(argv[1], &mode)) {
        if (rank == 0)
            fprintf(stderr, "usage: %s parallel|gather OUT.h5 [SUMMARY.json]\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    moe_log_init(&log, rank, MOE_LOG_ERROR);
    if (!rt_meta_init(&m, P)) {
        fprintf(stderr, "out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    rt_nranks = P;
    rt_summary(summary, sizeof(summary), P);

    st = rt_write(argv[2], mode, &m, rank, P, &log, summary);
    if (st != MOE_OK)
        fprintf(stderr, "rank %d: writing %s failed: %s\n", rank, argv[2], log.last_error);
    ASSERT_EQ_INT(st, MOE_OK);
    MPI_Barrier(MPI_COMM_WORLD);

    if (rank == 0 && st == MOE_OK) {
        moe_log_t rlog;
        moe_log_init(&rlog, 0, MOE_LOG_ERROR);
        st = moe_tel_reader_open(argv[2], &rlog, &r);
        if (st != MOE_OK)
            fprintf(stderr, "reading %s failed: %s\n", argv[2], rlog.last_error);
        ASSERT_EQ_INT(st, MOE_OK);
        if (r) {
            ASSERT_EQ_INT(moe_tel_reader_info(r)->nranks, P);
            ASSERT_EQ_INT(moe_tel_reader_info(r)->nnodes, (P + 1) / 2);
            rt_check_attrs(r, argv[1], summary);
            rt_check_topology(r, &m, P);
            rt_check_steps(r, P);
            rt_check_routes(r, P);
            rt_check_accumulated(r, P);
            rt_check_events(r);
            moe_tel_reader_close(r);
        }
        if (argc > 3) {
            FILE *f = fopen(argv[3], "w");
            ASSERT_TRUE(f != NULL);
            if (f) {
                fprintf(f, "%s\n", summary);
                fclose(f);
            }
        }
    }
    rt_check_create_failure(argv[2], &m, rank);
    /* In parallel mode a failed write on some ranks can hang inside HDF5's own collective
     * I/O (outside the writer's reach): the disk-full case is run where it cannot. */
    if (mode == MOE_TEL_GATHER || P == 1)
        rt_check_write_failure(argv[2], mode, &m, rank, P);

    fails = moe_test_failures;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("tel_roundtrip %s np %d: %d checks on rank 0, %d failed over all ranks\n",
               argv[1], P, moe_test_checks, all);
    rt_meta_free(&m);
    MPI_Finalize();
    return all ? 1 : 0;
}
