/*
 * runtime/telemetry.c — the HDF5 telemetry writer: one schema (docs/telemetry.md), two modes.
 *
 * What always holds:
 *  1. One layout. Every dataset is described once, in moerun/telemetry_schema.h (path, element
 *     type, dimensions, units); each is created from its table row with its dimension labels
 *     and units (moe_h5_describe), and both modes create and extend the same datasets through
 *     the same functions. The modes
 *     differ only in who makes HDF5 calls ("io" ranks: all ranks in parallel mode, rank 0 in
 *     gather mode) and in what each io rank selects:
 *       global data        parallel: rank 0 selects the rows, others select none;
 *                          gather:   rank 0 writes the rows;
 *       rank-local columns parallel: each rank selects its column [.., rank, ..];
 *                          gather:   rank 0 gathers all columns (MPI_Gather) and writes them;
 *       routes, matrix rows parallel: each rank its own rows at offsets from MPI_Allgather;
 *                          gather:   rank 0 gathers (MPI_Gatherv) and writes all rows.
 *  2. Every HDF5 metadata operation (create, extend, attribute) is made by every io rank with
 *     identical arguments: strings and numbers written as attributes are broadcast from
 *     rank 0 first, extents are computed from values every rank holds.
 *  3. All MPI communication of a call happens before its HDF5 writes and never depends on
 *     the outcome of an HDF5 call, and every public call ends with an MPI_Allreduce of its
 *     status: no rank can be left waiting, and all ranks return the same status. After a
 *     failure the handle is "failed": later blocks are refused, close still frees everything.
 *  4. A block is followed by H5Fflush(H5F_SCOPE_GLOBAL): the file is readable up to the
 *     last block written. The root attribute steps_completed follows the flushed steps;
 *     status is "running" until close.
 *  5. Memory held is bounded by one block (gather buffers on rank 0, of the block's size)
 *     plus the [L][E][E] and [nranks][nranks] matrices; nothing grows with the step count.
 *  6. On a failed create no file is left: a file that was created is removed by rank 0
 *     (regular files only, and only the one this run made).
 *  7. The file is claimed before HDF5 opens it (tel_claim_path): never through a symbolic
 *     link unless follow_symlinks, never a device or FIFO, an existing file only with
 *     overwrite, and PATH.lock (flock) held by rank 0 from create to close, so a second run
 *     on the same path fails at once naming the first (host, pid).
 * Debug builds check 1 (rows written inside the dataset, the rank column inside its
 * dimension, fixed datasets never extended), 2 (the extents all io ranks set agree: one
 * MPI_Allreduce per appended dataset in parallel mode) and the events' kinds (MOE_ASSERT).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "moerun/base/assert.h"
#include "moerun/base/fileio.h"
#include "moerun/base/h5tel.h"
#include "moerun/base/mpicheck.h"
#include "telemetry.h"

#define MOE__NAME_ENTRY(name, ...) MOE__ARG1(__VA_ARGS__, 0),
const char *const moe_phase_names[MOE_PHASE_COUNT] = {MOE_PHASE_MAP(MOE__NAME_ENTRY)};
const char *const moe_traffic_names[MOE_TRAFFIC_COUNT] = {MOE_TRAFFIC_MAP(MOE__NAME_ENTRY)};
const char *const moe_rstat_names[MOE_RSTAT_COUNT] = {MOE_RSTAT_MAP(MOE__NAME_ENTRY)};
const char *const moe_event_names[MOE_EVENT_COUNT] = {MOE_EVENT_MAP(MOE__NAME_ENTRY)};
#undef MOE__NAME_ENTRY

#define TEL_NSTR            16 /* string root attributes from the run (tel_write_root_attrs) */
#define TEL_CHUNK_BYTES     (1u << 20)  /* upper bound on one chunk of an appended dataset */
#define TEL_EVENT_CHUNK     64
#define TEL_TIME_MAX        32

_Static_assert(MOE_EVENT_MSG_MAX == MOE_TEL_MESSAGE_MAX && MOE_HOST_MAX == MOE_TEL_STRING_MAX &&
                   MOE_CPUSET_MAX == MOE_TEL_STRING_MAX,
               "the meta and event strings are the schema's fixed-length strings");

/* Numbers written as root attributes; broadcast from rank 0 so all io ranks agree. */
typedef struct tel_nums {
    int64_t experts, top_k, layers, d_model, d_ffn, tokens_per_rank, nranks, nnodes;
    int64_t flush_interval, route_samples, steps_requested, seed;
    double  capacity_factor, temperature;
    int64_t replicas;   /* last dimension of placement/expert_ranks */
    int     sim_compute;        /* SMPI builds only */
    double  sim_gflops, sim_copy_gbs;
} tel_nums_t;

struct moe_telemetry {
    MPI_Comm       comm;
    int            rank, nranks;
    moe_tel_mode_t mode;
    int            io;            /* this rank makes HDF5 calls */
    moe_log_t     *log;
    char           path[MOE_PATH_MAX];
    int            L, E, k;
    int            R;             /* replicas dimension of placement/expert_ranks */
    hid_t          file, dxpl;
    hid_t          ds[MOE_TEL_DS_COUNT];    /* every dataset of the schema, by id */
    hid_t          mtype[MOE_TEL_DS_COUNT]; /* their memory types */
    hsize_t        dims[MOE_TEL_DS_COUNT][4]; /* their shapes at create (appended: 0 rows) */
    hid_t          accum;
    hsize_t        steps;         /* rows in the per-step datasets */
    hsize_t        nroutes;       /* rows in the route datasets */
    hsize_t        nevents;       /* rows in the events dataset */
    moe_status_t   failed;        /* first error, sticky */
    dev_t          dev;           /* rank 0: the file as created (vanishing check) */
    ino_t          ino;
    off_t          last_size;     /* rank 0: file size after the last block */
    off_t          last_growth;   /* rank 0: bytes the last block added */
    int            lock_fd;       /* rank 0: PATH.lock held for the run (fileio.h), or -1 */
};

/* ---------------------------------------------------------------- HDF5 errors --------- */

/*
 * Records "telemetry: WHAT 'path': <innermost HDF5 messages>" as the last error, clears the
 * HDF5 error stack and returns `st`.
 */
static moe_status_t tel_h5_fail(moe_telemetry_t *t, moe_status_t st, const char *what)
{
    int  err = errno;
    char text[400];

    if (moe_h5_error_text(text, sizeof(text)) == 0)
        snprintf(text, sizeof(text), "%s", err ? strerror(err) : "HDF5 error");
    moe_log_set_error(t->log, __FILE__, __LINE__, "telemetry: %s '%s' failed: %s", what, t->path,
                      text);
    return st;
}

/* Checks an HDF5 return value (negative = error) and jumps to `label` with st set. */
#define TEL_H5(t, call, what, st, label)                           \
    do {                                                           \
        if ((call) < 0) {                                          \
            (st) = tel_h5_fail((t), MOE_ERR_HDF5, (what));         \
            goto label;                                            \
        }                                                          \
    } while (0)

static void tel_close_id(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0)
        fn(*id);
    *id = -1;
}

/* ---------------------------------------------------------------- agreement ----------- */

/*
 * All ranks learn the worst (most negative) status; a rank that was fine but sees another
 * rank's failure records a text saying so. Returns the agreed status.
 */
static moe_status_t tel_agree(moe_telemetry_t *t, moe_status_t st)
{
    char what[MOE_PATH_MAX + 16];

    snprintf(what, sizeof(what), "telemetry: '%s'", t->path);
    return moe_mpi_agree(t->comm, st, t->log, what);
}

/* Broadcasts rank 0's string; *out_p is malloc'd on every rank, the caller frees it. */
static moe_status_t tel_bcast_str(moe_telemetry_t *t, const char *s, char **out_p)
{
    long  len = (t->rank == 0 && s) ? (long)strlen(s) : 0;
    char *buf;

    *out_p = NULL;
    MOE_MPI_CHECK(t->log, MPI_Bcast(&len, 1, MPI_LONG, 0, t->comm));
    buf = malloc((size_t)len + 1);
    if (buf == NULL)
        return MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "telemetry: out of memory");
    if (t->rank == 0 && len > 0)
        memcpy(buf, s, (size_t)len);
    buf[len] = '\0';
    if (len > 0 && MPI_Bcast(buf, (int)len, MPI_CHAR, 0, t->comm) != MPI_SUCCESS) {
        free(buf);
        return MOE_ERROR_SET(t->log, MOE_ERR_MPI, "telemetry: MPI_Bcast of a string failed");
    }
    *out_p = buf;
    return MOE_OK;
}

/* ---------------------------------------------------------------- attributes ---------- */

/* Creates or overwrites a scalar attribute of type `ftype` from `mtype` data. */
static moe_status_t tel_attr_write(moe_telemetry_t *t, hid_t loc, const char *name, hid_t ftype,
                                   hid_t mtype, const void *buf)
{
    hid_t        sp = -1, a = -1;
    moe_status_t st = MOE_OK;
    htri_t       ex;
    char         what[96];

    snprintf(what, sizeof(what), "writing attribute %s of", name);
    TEL_H5(t, ex = H5Aexists(loc, name), what, st, out);
    if (ex > 0)
        TEL_H5(t, H5Adelete(loc, name), what, st, out);
    TEL_H5(t, sp = H5Screate(H5S_SCALAR), what, st, out);
    TEL_H5(t, a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT), what, st, out);
    TEL_H5(t, H5Awrite(a, mtype, buf), what, st, out);
out:
    tel_close_id(&a, H5Aclose);
    tel_close_id(&sp, H5Sclose);
    return st;
}

/* A variable-length UTF-8 string attribute (h5py reads it as str). NULL writes "". */
static moe_status_t tel_attr_str(moe_telemetry_t *t, hid_t loc, const char *name, const char *s)
{
    const char *v = s ? s : "";
    char        what[96];

    if (moe_h5_attr_strings(loc, name, &v, 0) < 0) {
        snprintf(what, sizeof(what), "writing attribute %s of", name);
        return tel_h5_fail(t, MOE_ERR_HDF5, what);
    }
    return MOE_OK;
}

static moe_status_t tel_attr_i64(moe_telemetry_t *t, hid_t loc, const char *name, int64_t v)
{
    return tel_attr_write(t, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

static moe_status_t tel_attr_f64(moe_telemetry_t *t, hid_t loc, const char *name, double v)
{
    return tel_attr_write(t, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

/* ---------------------------------------------------------------- datasets ------------ */

/* The sizes of this file's dimensions at create time (appended datasets start empty). */
static void tel_sizes(const moe_telemetry_t *t, moe_tel_sizes_t *sz)
{
    memset(sz, 0, sizeof(*sz));
    sz->layers = t->L;
    sz->experts = t->E;
    sz->ranks = t->nranks;
    sz->top_k = t->k;
    sz->replicas = t->R;
}

/* Elements in one row (everything after the first dimension) of dataset d. */
static hsize_t tel_row_elems(const moe_telemetry_t *t, int d)
{
    hsize_t n = 1;
    int     i;

    for (i = 1; i < moe_tel_dset(d)->rank; i++)
        n *= t->dims[d][i];
    return n;
}

/*
 * Creates dataset d of the schema with its labels, units and description. Appended datasets
 * (first dimension step, route or event) start with 0 rows, unlimited, chunked by
 * `rows_hint` rows (bounded by TEL_CHUNK_BYTES); the others are contiguous, full size.
 */
static moe_status_t tel_dset_create(moe_telemetry_t *t, int d, hsize_t rows_hint)
{
    const moe_tel_dset_t *def = moe_tel_dset(d);
    moe_tel_sizes_t       sz;
    hsize_t               maxd[4], chunk[4], row_bytes, rows;
    hid_t                 sp = -1, dcpl = -1, ftype = -1;
    moe_status_t          st = MOE_OK;
    int                   i, app = moe_tel_dset_appended(def);

    tel_sizes(t, &sz);
    for (i = 0; i < def->rank; i++)
        t->dims[d][i] = maxd[i] = chunk[i] = (hsize_t)moe_tel_dim_size(def->dims[i], &sz);
    MOE_ASSERT(!app || t->dims[d][0] == 0);
    TEL_H5(t, ftype = moe_h5_elem_type(def->elem, 1), "creating a type in", st, out);
    TEL_H5(t, t->mtype[d] = moe_h5_elem_type(def->elem, 0), "creating a type in", st, out);
    TEL_H5(t, dcpl = H5Pcreate(H5P_DATASET_CREATE), "creating a dataset in", st, out);
    if (app) {
        row_bytes = tel_row_elems(t, d) * moe_tel_elem_size(def->elem);
        rows = rows_hint < 1 ? 1 : rows_hint;
        if (rows * row_bytes > TEL_CHUNK_BYTES)
            rows = TEL_CHUNK_BYTES / row_bytes < 1 ? 1 : TEL_CHUNK_BYTES / row_bytes;
        maxd[0] = H5S_UNLIMITED;
        chunk[0] = rows;
        TEL_H5(t, H5Pset_chunk(dcpl, def->rank, chunk), "setting the chunk size in", st, out);
    }
    TEL_H5(t, sp = H5Screate_simple(def->rank, t->dims[d], maxd), "creating a dataspace in", st,
           out);
    TEL_H5(t, t->ds[d] = H5Dcreate2(t->file, def->path, ftype, sp, H5P_DEFAULT, dcpl,
                                    H5P_DEFAULT),
           "creating a dataset in", st, out);
    TEL_H5(t, moe_h5_describe(t->ds[d], def, NULL), "describing a dataset in", st, out);
out:
    tel_close_id(&ftype, H5Tclose);
    tel_close_id(&dcpl, H5Pclose);
    tel_close_id(&sp, H5Sclose);
    return st;
}

/*
 * Extends appended dataset d to `total` rows (every io rank passes the same total) and
 * writes this rank's selection: rows [row0, row0+n) x columns [col0, col0+ncol) of the
 * dimension that is DIM_P (ncol = 0: whole rows), from `buf` laid out as the selection in
 * row-major order. n = 0 selects nothing (the rank still takes part in the collective write).
 */
/*
 * Writes nelem elements of buf into the hyperslab (start, count) of ds, whose file space
 * is fsp (not closed here). A rank with nothing to write (nelem 0) still takes part, with
 * empty selections, because parallel writes are collective.
 */
static moe_status_t tel_write_hyperslab(moe_telemetry_t *t, hid_t ds, hid_t mtype, hid_t fsp,
                                        const hsize_t *start, const hsize_t *count,
                                        hsize_t nelem, const void *buf, const char *what)
{
    static const char dummy = 0;
    hid_t             msp = -1;
    moe_status_t      st = MOE_OK;

    if (nelem > 0) {
        TEL_H5(t, H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL),
               "selecting rows in", st, out);
        TEL_H5(t, msp = H5Screate_simple(1, &nelem, NULL), "selecting rows in", st, out);
    } else {
        hsize_t one = 1;
        TEL_H5(t, H5Sselect_none(fsp), "selecting rows in", st, out);
        TEL_H5(t, msp = H5Screate_simple(1, &one, NULL), "selecting rows in", st, out);
        TEL_H5(t, H5Sselect_none(msp), "selecting rows in", st, out);
        buf = &dummy;
    }
    TEL_H5(t, H5Dwrite(ds, mtype, msp, fsp, t->dxpl, buf), what, st, out);
out:
    tel_close_id(&msp, H5Sclose);
    return st;
}

static moe_status_t tel_dset_append(moe_telemetry_t *t, int d, hsize_t total, hsize_t row0,
                                    hsize_t n, int pdim, hsize_t col0, hsize_t ncol,
                                    const void *buf)
{
    const moe_tel_dset_t *def = moe_tel_dset(d);
    hsize_t               dims[4], start[4], count[4], nelem = n;
    hid_t                 fsp = -1;
    moe_status_t          st = MOE_OK;
    int                   i;

    MOE_ASSERT(moe_tel_dset_appended(def) && row0 + n <= total);
    MOE_ASSERT(pdim == 0 || (pdim < def->rank && def->dims[pdim] == MOE_TEL_DIM_RANK &&
                             col0 + ncol <= t->dims[d][pdim]));
    dims[0] = total;
    start[0] = row0;
    count[0] = n;
    for (i = 1; i < def->rank; i++) {
        dims[i] = t->dims[d][i];
        start[i] = (i == pdim && ncol) ? col0 : 0;
        count[i] = (i == pdim && ncol) ? ncol : t->dims[d][i];
        nelem *= count[i];
    }
#if MOE_ASSERTS_ENABLED
    if (t->mode == MOE_TEL_PARALLEL) { /* invariant 2: every io rank extends identically */
        long long mm[2] = {(long long)total, -(long long)total}, all[2] = {0, 0};
        if (MPI_Allreduce(mm, all, 2, MPI_LONG_LONG, MPI_MIN, t->comm) == MPI_SUCCESS)
            MOE_ASSERT(all[0] == -all[1]);
    }
#endif
    TEL_H5(t, H5Dset_extent(t->ds[d], dims), "extending a dataset in", st, out);
    TEL_H5(t, fsp = H5Dget_space(t->ds[d]), "selecting rows in", st, out);
    st = tel_write_hyperslab(t, t->ds[d], t->mtype[d], fsp, start, count, nelem, buf,
                             "writing a block to");
out:
    tel_close_id(&fsp, H5Sclose);
    return st;
}

/*
 * Writes rows [row0, row0+n) (whole rows: all later dimensions) of a fixed-shape dataset
 * (n = 0: this rank selects nothing but takes part).
 */
static moe_status_t tel_fixed_write(moe_telemetry_t *t, int d, hsize_t row0, hsize_t n,
                                    const void *buf)
{
    hsize_t           dims[4], start[4] = {0, 0, 0, 0}, count[4], nelem = n;
    hid_t             fsp = -1, ds = t->ds[d];
    moe_status_t      st = MOE_OK;
    int               nd, i;

    MOE_ASSERT(!moe_tel_dset_appended(moe_tel_dset(d)) && row0 + n <= t->dims[d][0]);
    TEL_H5(t, fsp = H5Dget_space(ds), "selecting rows in", st, out);
    TEL_H5(t, nd = H5Sget_simple_extent_ndims(fsp), "selecting rows in", st, out);
    if (nd < 1 || nd > 4) {
        st = MOE_ERROR_SET(t->log, MOE_ERR_INVARIANT, "telemetry: '%s': bad dataset rank %d",
                           t->path, nd);
        goto out;
    }
    TEL_H5(t, H5Sget_simple_extent_dims(fsp, dims, NULL), "selecting rows in", st, out);
    start[0] = row0;
    count[0] = n;
    for (i = 1; i < nd; i++) {
        count[i] = dims[i];
        nelem *= dims[i];
    }
    st = tel_write_hyperslab(t, ds, t->mtype[d], fsp, start, count, nelem, buf,
                             "writing a dataset to");
out:
    tel_close_id(&fsp, H5Sclose);
    return st;
}

/* ---------------------------------------------------------------- create -------------- */

static void tel_nums_fill(tel_nums_t *n, const moe_tel_meta_t *meta)
{
    const moe_config_t *c = meta->cfg;

    memset(n, 0, sizeof(*n));
    n->experts = c->experts;
    n->top_k = c->top_k;
    n->layers = c->layers;
    n->d_model = c->d_model;
    n->d_ffn = c->d_ffn;
    n->tokens_per_rank = c->tokens;
    n->nranks = meta->nranks;
    n->nnodes = meta->nnodes;
    n->flush_interval = c->flush_interval;
    n->route_samples = c->route_samples;
    n->steps_requested = c->steps;
    n->seed = (int64_t)c->seed;
    n->capacity_factor = c->capacity_factor;
    n->temperature = c->temperature;
    n->replicas = meta->expert_ranks && meta->max_replicas > 0 ? meta->max_replicas : 1;
    n->sim_compute = (int)c->sim_compute;
    n->sim_gflops = c->sim_gflops;
    n->sim_copy_gbs = c->sim_copy_gbs;
}

/* Root attributes: versions, configuration, the main numbers, and the running state. */
static moe_status_t tel_write_root_attrs(moe_telemetry_t *t, const tel_nums_t *n,
                                         char *const *s)
{
    /* s[]: config, moerun(unused), mpi, hwloc, start, slurm, drop, workload, exchange,
     * placement, activation, mode, then the rest of the Slurm environment ("" outside) */
    static const char *const names[] = {"config",       "moerun_version_unused",
                                        "mpi_version",  "hwloc_version",
                                        "start_time",   "slurm_job_id",
                                        "drop_policy",  "workload",
                                        "exchange",     "placement",
                                        "activation",   "telemetry_mode",
                                        "slurm_array_job_id", "slurm_array_task_id",
                                        "slurm_job_nodelist", "slurm_job_partition"};
    const struct { const char *name; int64_t v; } ints[] = {
        {"experts", n->experts},         {"top_k", n->top_k},
        {"layers", n->layers},           {"d_model", n->d_model},
        {"d_ffn", n->d_ffn},             {"tokens_per_rank", n->tokens_per_rank},
        {"nranks", n->nranks},           {"nnodes", n->nnodes},
        {"flush_interval", n->flush_interval}, {"route_samples", n->route_samples},
        {"steps_requested", n->steps_requested}, {"seed", n->seed},
        {"steps_completed", 0}};
    hid_t        root = t->file;
    moe_status_t st;
    unsigned     maj = 0, min = 0, rel = 0;
    char         h5ver[32];
    size_t       i;

    H5get_libversion(&maj, &min, &rel);
    snprintf(h5ver, sizeof(h5ver), "%u.%u.%u", maj, min, rel);
    if ((st = tel_attr_i64(t, root, "schema_version", MOE_TEL_SCHEMA_VERSION)) != MOE_OK ||
        (st = tel_attr_str(t, root, "moerun_version", MOERUN_VERSION)) != MOE_OK ||
        (st = tel_attr_str(t, root, "hdf5_version", h5ver)) != MOE_OK ||
        (st = tel_attr_str(t, root, "status", "running")) != MOE_OK)
        return st;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (i == 1)
            continue;
        if ((st = tel_attr_str(t, root, names[i], s[i])) != MOE_OK)
            return st;
    }
    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if ((st = tel_attr_i64(t, root, ints[i].name, ints[i].v)) != MOE_OK)
            return st;
    if ((st = tel_attr_f64(t, root, "capacity_factor", n->capacity_factor)) != MOE_OK ||
        (st = tel_attr_f64(t, root, "temperature", n->temperature)) != MOE_OK)
        return st;
#ifdef MOERUN_SMPI
    /* A simulated run (docs/simulation.md): times are SimGrid's model, counts are real. */
    if ((st = tel_attr_str(t, root, "simulated", "smpi")) != MOE_OK ||
        (st = tel_attr_str(t, root, "sim_compute", moe_sim_compute_name(n->sim_compute))) != MOE_OK ||
        (st = tel_attr_f64(t, root, "sim_gflops", n->sim_gflops)) != MOE_OK ||
        (st = tel_attr_f64(t, root, "sim_copy_gbs", n->sim_copy_gbs)) != MOE_OK)
        return st;
#endif
    return MOE_OK;
}

/* Topology and placement datasets (global; rank 0's copy is written whole). */
static moe_status_t tel_write_topology(moe_telemetry_t *t, const moe_tel_meta_t *meta)
{
    static const int ids[] = {MOE_TEL_DS_HOSTNAME, MOE_TEL_DS_NODE, MOE_TEL_DS_LOCAL_RANK,
                              MOE_TEL_DS_CPUSET, MOE_TEL_DS_NUMA_NODE, MOE_TEL_DS_EXPERT_OWNER,
                              MOE_TEL_DS_EXPERT_RANKS, MOE_TEL_DS_NIC, MOE_TEL_DS_BIND_ACTION,
                              MOE_TEL_DS_MACHINE, MOE_TEL_DS_L1D_BYTES, MOE_TEL_DS_L2_BYTES,
                              MOE_TEL_DS_L3_BYTES, MOE_TEL_DS_L1D_PUS, MOE_TEL_DS_L2_PUS,
                              MOE_TEL_DS_L3_PUS};
    size_t       P = (size_t)t->nranks, LE = (size_t)t->L * t->E, i, lv;
    char       (*blank)[MOE_TEL_STRING_MAX] = NULL;
    int         *ranks = NULL, *cpus = NULL;
    int64_t     *cbytes = NULL;
    const void  *bufs[16];
    moe_status_t st = MOE_OK;

    /* caches: [P][3] in the meta, one [P] dataset per level and quantity (0: none known) */
    if (t->rank == 0) {
        cbytes = calloc(3 * P + 1, sizeof(int64_t));
        cpus = calloc(3 * P + 1, sizeof(int));
        if (!cbytes || !cpus)
            st = MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "telemetry: out of memory");
        for (i = 0; cbytes && cpus && i < P; i++)
            for (lv = 0; lv < 3; lv++) {
                cbytes[lv * P + i] = meta->cache_bytes ? meta->cache_bytes[i * 3 + lv] : 0;
                cpus[lv * P + i] = meta->cache_pus ? meta->cache_pus[i * 3 + lv] : 0;
            }
    }

    /* absent optional arrays: "" strings, and expert_owner at every layer */
    if (t->rank == 0 && (!meta->nic || !meta->bind_action || !meta->machine))
        blank = calloc(P, sizeof(*blank));
    if (t->rank == 0 && !meta->expert_ranks) {
        ranks = malloc(LE * sizeof(int) + 1);
        for (i = 0; ranks && i < LE; i++)
            ranks[i] = meta->expert_owner[i % (size_t)t->E];
    }
    if (t->rank == 0 && (((!meta->nic || !meta->bind_action || !meta->machine) && !blank) ||
                         (!meta->expert_ranks && !ranks)))
        st = MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "telemetry: out of memory");
    bufs[0] = meta->hostname;
    bufs[1] = meta->node;
    bufs[2] = meta->local_rank;
    bufs[3] = meta->cpuset;
    bufs[4] = meta->numa_node;
    bufs[5] = meta->expert_owner;
    bufs[6] = meta->expert_ranks ? (const void *)meta->expert_ranks : ranks;
    bufs[7] = meta->nic ? (const void *)meta->nic : blank;
    bufs[8] = meta->bind_action ? (const void *)meta->bind_action : blank;
    bufs[9] = meta->machine ? (const void *)meta->machine : blank;
    for (lv = 0; lv < 3; lv++) {
        bufs[10 + lv] = cbytes ? cbytes + lv * P : NULL;
        bufs[13 + lv] = cpus ? cpus + lv * P : NULL;
    }
    for (i = 0; i < sizeof(ids) / sizeof(ids[0]) && st == MOE_OK; i++)
        st = tel_fixed_write(t, ids[i], 0, t->rank == 0 ? t->dims[ids[i]][0] : 0, bufs[i]);
    free(blank);
    free(ranks);
    free(cbytes);
    free(cpus);
    return st;
}

/*
 * Creates the groups and every dataset of the schema (appended ones chunked by the rows a
 * block adds), with their labels and units.
 */
static moe_status_t tel_create_datasets(moe_telemetry_t *t, const tel_nums_t *n)
{
    hsize_t      step_rows = (hsize_t)(n->flush_interval > 0 ? n->flush_interval : 1);
    hsize_t      route_rows = step_rows * (hsize_t)(n->route_samples > 0 ? n->route_samples : 1);
    moe_status_t st = MOE_OK;
    hid_t        g;
    htri_t       ex;
    int          d;

    for (d = 0; d < MOE_TEL_DS_COUNT && st == MOE_OK; d++) {
        const moe_tel_dset_t *def = moe_tel_dset(d);
        if (def->group[0]) {
            TEL_H5(t, ex = H5Lexists(t->file, def->group, H5P_DEFAULT), "creating a group in",
                   st, out);
            if (!ex) {
                TEL_H5(t, g = H5Gcreate2(t->file, def->group, H5P_DEFAULT, H5P_DEFAULT,
                                         H5P_DEFAULT),
                       "creating a group in", st, out);
                H5Gclose(g);
            }
        }
        st = tel_dset_create(t, d, def->dims[0] == MOE_TEL_DIM_EVENT   ? TEL_EVENT_CHUNK
                                   : def->dims[0] == MOE_TEL_DIM_ROUTE ? route_rows
                                                                       : step_rows);
    }
    if (st != MOE_OK)
        return st;
    TEL_H5(t, t->accum = H5Gopen2(t->file, "accumulated", H5P_DEFAULT), "opening a group in", st,
           out);
    st = tel_attr_i64(t, t->accum, "steps", 0);
out:
    return st;
}

/* The io part of create: file, attributes, topology, datasets. */
static moe_status_t tel_create_file(moe_telemetry_t *t, const moe_tel_meta_t *meta,
                                    const tel_nums_t *n, char *const *s, int *created_p)
{
    hid_t        fapl = -1;
    moe_status_t st = MOE_OK;

    TEL_H5(t, fapl = H5Pcreate(H5P_FILE_ACCESS), "creating", st, out);
    TEL_H5(t, t->dxpl = H5Pcreate(H5P_DATASET_XFER), "creating", st, out);
    if (t->mode == MOE_TEL_PARALLEL) {
#ifdef H5_HAVE_PARALLEL
        TEL_H5(t, H5Pset_fapl_mpio(fapl, t->comm, MPI_INFO_NULL), "setting MPI-IO for", st, out);
        TEL_H5(t, H5Pset_dxpl_mpio(t->dxpl, H5FD_MPIO_COLLECTIVE), "setting MPI-IO for", st,
               out);
#else
        /* serial HDF5 (SimGrid SMPI builds): only the gather mode exists */
        st = MOE_ERROR_SET(t->log, MOE_ERR_INVALID, "telemetry: the parallel mode needs "
                           "parallel HDF5; use --telemetry-mode gather");
        goto out;
#endif
    }
#ifdef H5_HAVE_PARALLEL
    else {
        /* gather: rank 0 alone, through MPI-IO on MPI_COMM_SELF rather than the default sec2
         * driver. With sec2 and the 1.10 format (superblock v3), HDF5 marks the file "open
         * for write" until it is closed, so a file whose writer was killed (a lost host, the
         * watchdog, SIGKILL) could not be opened by any reader, h5dump or h5py before
         * `h5clear -s`; written through MPI-IO, it stays readable up to the last flush
         * (tests/system/faults_hosts.sh, docs/signals.md). */
        TEL_H5(t, H5Pset_fapl_mpio(fapl, MPI_COMM_SELF, MPI_INFO_NULL), "setting MPI-IO for",
               st, out);
    }
#endif
    /* Every chunk is written once, whole, and never read back: no raw-data chunk cache, so
     * memory does not grow with the number of chunks written (1 MB per dataset otherwise). */
    TEL_H5(t, H5Pset_cache(fapl, 0, 0, 0, 1.0), "setting the chunk cache of", st, out);
    /* HDF5 1.10 file format: appended datasets get extensible-array chunk indexes instead of
     * v1 B-trees, whose in-memory cost grew with every block over long runs
     * (bench/moerun_soak.c: +6 MB per rank over 140,000 steps before, <1 MB after). */
    TEL_H5(t, H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110),
           "setting the file format (HDF5 1.10) of", st, out);
    {
        /* Bound the metadata cache (chunk indexes grow with the run): 1 MB to start, 2 MB
         * at most, instead of HDF5's adaptive default that may reach 32 MB. */
        H5AC_cache_config_t mdc;
        memset(&mdc, 0, sizeof(mdc));
        mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
        TEL_H5(t, H5Pget_mdc_config(fapl, &mdc), "reading the metadata cache of", st, out);
        mdc.set_initial_size = 1;
        mdc.initial_size = (size_t)1 << 20;
        mdc.min_size = (size_t)1 << 20;
        mdc.max_size = (size_t)2 << 20;
        TEL_H5(t, H5Pset_mdc_config(fapl, &mdc), "setting the metadata cache of", st, out);
    }
    errno = 0;
    TEL_H5(t, t->file = H5Fcreate(t->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "creating", st,
           out);
    *created_p = 1;
    if (t->rank == 0) {
        struct stat sb;
        /* HDF5 opened the file by name: it must be the one tel_claim_path made */
        if (lstat(t->path, &sb) != 0 || sb.st_dev != t->dev || sb.st_ino != t->ino) {
            st = MOE_ERROR_SET(t->log, MOE_ERR_IO,
                               "telemetry: '%s' was replaced while it was being created", t->path);
            goto out;
        }
        t->last_size = sb.st_size;
    }
    if ((st = tel_write_root_attrs(t, n, s)) != MOE_OK ||
        (st = tel_create_datasets(t, n)) != MOE_OK ||
        (st = tel_write_topology(t, meta)) != MOE_OK)
        goto out;
    TEL_H5(t, H5Fflush(t->file, H5F_SCOPE_GLOBAL), "flushing", st, out);
out:
    tel_close_id(&fapl, H5Pclose);
    return st;
}

/* Closes every HDF5 object of the handle (io ranks; collective in parallel mode). */
static moe_status_t tel_close_file(moe_telemetry_t *t)
{
    moe_status_t st = MOE_OK;
    int          d;

    for (d = 0; d < MOE_TEL_DS_COUNT; d++) {
        tel_close_id(&t->ds[d], H5Dclose);
        tel_close_id(&t->mtype[d], H5Tclose);
    }
    tel_close_id(&t->accum, H5Gclose);
    tel_close_id(&t->dxpl, H5Pclose);
    /* HDF5 1.10 leaves a dangling file id when H5Fclose fails (e.g. the disk is still full
     * at close) and may then crash in its own exit-time cleanup; nothing can be done here */
    if (t->file >= 0 && H5Fclose(t->file) < 0)
        st = tel_h5_fail(t, MOE_ERR_HDF5, "closing");
    t->file = -1;
    return st;
}

static void tel_free(moe_telemetry_t *t)
{
    if (t == NULL)
        return;
    moe_out_unlock(t->path, &t->lock_fd);
    if (t->comm != MPI_COMM_NULL)
        MPI_Comm_free(&t->comm);
    free(t);
}

static moe_status_t tel_check_meta(moe_telemetry_t *t, const char *path,
                                   const moe_tel_meta_t *meta)
{
    const moe_config_t *c = meta ? meta->cfg : NULL;

    if (path == NULL || path[0] == '\0' || strlen(path) >= MOE_PATH_MAX)
        return MOE_ERROR_SET(t->log, MOE_ERR_INVALID, "telemetry: empty or too long path");
    if (c == NULL || c->layers < 1 || c->experts < 1 || c->top_k < 1 || c->top_k > c->experts)
        return MOE_ERROR_SET(t->log, MOE_ERR_INVALID,
                             "telemetry: '%s': invalid configuration (layers, experts, top_k)",
                             path);
    if (meta->nranks != t->nranks)
        return MOE_ERROR_SET(t->log, MOE_ERR_INVALID,
                             "telemetry: '%s': meta.nranks %d != communicator size %d", path,
                             meta->nranks, t->nranks);
    if (t->rank == 0 && (meta->hostname == NULL || meta->node == NULL ||
                         meta->local_rank == NULL || meta->cpuset == NULL ||
                         meta->numa_node == NULL || meta->expert_owner == NULL))
        return MOE_ERROR_SET(t->log, MOE_ERR_INVALID,
                             "telemetry: '%s': topology or placement arrays missing", path);
    if (t->mode != MOE_TEL_PARALLEL && t->mode != MOE_TEL_GATHER)
        return MOE_ERROR_SET(t->log, MOE_ERR_INVALID, "telemetry: '%s': unknown mode %d", path,
                             (int)t->mode);
    return MOE_OK;
}

/*
 * Rank 0: the file the run will write (include/moerun/base/fileio.h). The path must not be
 * a device, FIFO or directory, nor a symbolic link unless follow_symlinks (then the file it
 * names is written, and t->path becomes that file); an existing file is replaced only with
 * overwrite; the directory must exist and be writable. Then PATH.lock is taken for the run
 * (a second run on the same path fails here, naming this one), and a new empty file is made
 * at the path by this process: O_CREAT|O_EXCL|O_NOFOLLOW, or with overwrite an exclusively
 * created temporary file renamed over the old one. HDF5 then opens that file by name and
 * the device and inode are checked against it (tel_create_file).
 */
static moe_status_t tel_claim_path(moe_telemetry_t *t, const moe_config_t *c, int *created_p)
{
    unsigned    fl = (c->follow_symlinks ? MOE_OUT_FOLLOW : 0u) |
                     (c->overwrite ? MOE_OUT_OVERWRITE : 0u);
    char        real[MOE_OUT_PATH_MAX], why[MOE_PATH_MAX + 256], host[256] = "?", who[320];
    moe_out_t   tmp;
    struct stat sb;
    int         exists = 0, fd;

    if (t->rank != 0)
        return MOE_OK;
    if (moe__out_target(t->path, fl, real, &exists, why, sizeof(why)) != 0 ||
        moe__out_dir(t->path, real, why, sizeof(why)) != 0)
        return MOE_ERROR_SET(t->log, MOE_ERR_IO, "telemetry: %s", why);
    if (strlen(real) >= sizeof(t->path))
        return MOE_ERROR_SET(t->log, MOE_ERR_IO, "telemetry: '%s': path too long", real);
    snprintf(t->path, sizeof(t->path), "%s", real);
    gethostname(host, sizeof(host) - 1);
    snprintf(who, sizeof(who), "host %s pid %ld", host, (long)getpid());
    if (moe_out_lock(t->path, who, &t->lock_fd, why, sizeof(why)) != 0)
        return MOE_ERROR_SET(t->log, MOE_ERR_IO, "telemetry: %s", why);
    if (!exists) {
        fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0664);
        if (fd < 0)
            return MOE_ERROR_SET(t->log, MOE_ERR_IO, "telemetry: cannot create '%s': %s%s",
                                 t->path, strerror(errno),
                                 errno == EEXIST ? " (it appeared after the check)" : "");
        close(fd);
    } else if (moe_out_create(&tmp, t->path, fl, why, sizeof(why)) != 0) {
        return MOE_ERROR_SET(t->log, MOE_ERR_IO, "telemetry: %s", why);
    } else if (rename(tmp.tmp, t->path) != 0) {
        moe_out_abort(&tmp);
        return MOE_ERROR_SET(t->log, MOE_ERR_IO, "telemetry: cannot replace '%s': %s", t->path,
                             strerror(errno));
    }
    *created_p = 1;
    if (lstat(t->path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return MOE_ERROR_SET(t->log, MOE_ERR_IO, "telemetry: '%s' changed while it was created",
                             t->path);
    t->dev = sb.st_dev;
    t->ino = sb.st_ino;
    return MOE_OK;
}

/* Removes a file we created, if it is a regular file (rank 0). */
static void tel_remove(const moe_telemetry_t *t)
{
    struct stat sb;

    /* only the file this run made (never one put in its place) */
    if (t->rank == 0 && lstat(t->path, &sb) == 0 && S_ISREG(sb.st_mode) &&
        (t->ino == 0 || (sb.st_dev == t->dev && sb.st_ino == t->ino)))
        unlink(t->path);
}

moe_status_t moe_telemetry_create(const char *path, moe_tel_mode_t mode, MPI_Comm comm,
                                  const moe_tel_meta_t *meta, moe_log_t *log,
                                  moe_telemetry_t **tel_p)
{
    moe_telemetry_t *t;
    moe_status_t     st = MOE_OK;
    tel_nums_t       nums;
    char            *s[TEL_NSTR];
    const char      *src[TEL_NSTR];
    int              created = 0, any_created = 0, d, rc;
    size_t           i;

    *tel_p = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "telemetry: out of memory");
    t->comm = MPI_COMM_NULL;
    t->lock_fd = -1;
    t->log = log;
    t->mode = mode;
    t->file = t->dxpl = t->accum = -1;
    for (d = 0; d < MOE_TEL_DS_COUNT; d++)
        t->ds[d] = t->mtype[d] = -1;
    snprintf(t->path, sizeof(t->path), "%s", path ? path : "");
    rc = MPI_Comm_dup(comm, &t->comm);
    if (rc != MPI_SUCCESS) {
        free(t);
        return moe__mpi_status(log, rc, "MPI_Comm_dup", __FILE__, __LINE__);
    }
    MPI_Comm_rank(t->comm, &t->rank);
    MPI_Comm_size(t->comm, &t->nranks);
    t->io = mode == MOE_TEL_PARALLEL || t->rank == 0;

    st = tel_check_meta(t, path, meta);
    if (st == MOE_OK)
        st = tel_claim_path(t, meta->cfg, &created);
    st = tel_agree(t, st);
    if (st == MOE_OK && MPI_Bcast(t->path, (int)sizeof(t->path), MPI_CHAR, 0, t->comm) !=
                        MPI_SUCCESS)
        st = MOE_ERROR_SET(log, MOE_ERR_MPI, "telemetry: MPI_Bcast of the path failed");
    if (st != MOE_OK) {
        if (created)
            tel_remove(t);
        tel_free(t);
        return st;
    }
    t->L = meta->cfg->layers;
    t->E = meta->cfg->experts;
    t->k = meta->cfg->top_k;

    /* identical attribute values on every io rank: rank 0's */
    tel_nums_fill(&nums, meta);
    src[0] = meta->config_ini;
    src[1] = NULL;
    src[2] = meta->mpi_version;
    src[3] = meta->hwloc_version;
    src[4] = meta->start_time;
    src[5] = meta->slurm_job_id;
    src[6] = moe_drop_policy_name(meta->cfg->drop_policy);
    src[7] = meta->cfg->workload;
    src[8] = meta->cfg->exchange;
    src[9] = meta->cfg->placement;
    src[10] = moe_activation_name(meta->cfg->activation);
    src[11] = moe_tel_mode_name(mode);
    src[12] = getenv("SLURM_ARRAY_JOB_ID");
    src[13] = getenv("SLURM_ARRAY_TASK_ID");
    src[14] = getenv("SLURM_JOB_NODELIST");
    src[15] = getenv("SLURM_JOB_PARTITION");
    memset(s, 0, sizeof(s));
    for (i = 0; i < TEL_NSTR && st == MOE_OK; i++)
        st = tel_bcast_str(t, src[i], &s[i]);
    if (st == MOE_OK && MPI_Bcast(&nums, (int)sizeof(nums), MPI_BYTE, 0, t->comm) != MPI_SUCCESS)
        st = MOE_ERROR_SET(log, MOE_ERR_MPI, "telemetry: MPI_Bcast of the metadata failed");
    t->R = (int)nums.replicas;
    st = tel_agree(t, st);

    if (st == MOE_OK && t->io)
        st = tel_create_file(t, meta, &nums, s, &created);
    for (i = 0; i < TEL_NSTR; i++)
        free(s[i]);
    st = tel_agree(t, st);
    if (st != MOE_OK) {
        if (t->io)
            tel_close_file(t);
        if (MPI_Allreduce(&created, &any_created, 1, MPI_INT, MPI_MAX, t->comm) == MPI_SUCCESS &&
            any_created)
            tel_remove(t);
        H5Eclear2(H5E_DEFAULT);
        tel_free(t);
        return st;
    }
    *tel_p = t;
    return MOE_OK;
}

/* ---------------------------------------------------------------- blocks -------------- */

/* Indices of the buffers a gather-mode rank 0 owns for one block. */
enum { OWN_PHASE, OWN_TRAFFIC, OWN_RSTEP, OWN_RTOKEN, OWN_REXPERT, OWN_RWEIGHT, OWN_RKEPT,
       OWN_MATRIX, OWN_SCRATCH, OWN_COUNTS, OWN_DISPL, OWN_RTOKEN_ID, OWN_COUNT };

/* What this rank writes of one block, after the gathers (gather mode) or as given. */
typedef struct tel_io_block {
    /* rank-local columns: [n][L][ncol][X] */
    hsize_t        col0, ncol;
    const double  *phase;
    const int64_t *traffic;
    /* routes: rows [r0, r0 + rn) of a total of rtotal */
    hsize_t        r0, rn, rtotal;
    const int64_t *r_step, *r_token, *r_token_id;
    const int32_t *r_expert;
    const float   *r_weight;
    const uint8_t *r_kept;
    /* traffic matrix rows [m0, m0 + mn) */
    hsize_t        m0, mn;
    const int64_t *mrows;
    /* events */
    hsize_t             nev;
    moe_tel_event_rec_t *ev;
    /* owned buffers (gather mode, rank 0), indexed by OWN_* */
    void *own[OWN_COUNT];
} tel_io_block_t;

static void tel_io_block_free(tel_io_block_t *io)
{
    size_t i;

    for (i = 0; i < sizeof(io->own) / sizeof(io->own[0]); i++)
        free(io->own[i]);
    free(io->ev);
}

/*
 * Gathers rank-local [n][L][X] arrays to rank 0 (into `scratch`, [P][n][L][X]) and
 * transposes them into `out`, [n][L][P][X]. Buffers are rank 0's, preallocated.
 */
static moe_status_t tel_gather_columns(moe_telemetry_t *t, const void *mine, size_t n, size_t X,
                                       size_t esz, MPI_Datatype mt, char *scratch, char *out)
{
    size_t L = (size_t)t->L, P = (size_t)t->nranks, cnt = n * L * X, s, l, r;

    MOE_MPI_CHECK(t->log, MPI_Gather(mine, (int)cnt, mt, scratch, (int)cnt, mt, 0, t->comm));
    if (t->rank == 0)
        for (r = 0; r < P; r++)
            for (s = 0; s < n; s++)
                for (l = 0; l < L; l++)
                    memcpy(out + (((s * L + l) * P + r) * X) * esz,
                           scratch + ((r * n + s) * L + l) * X * esz, X * esz);
    return MOE_OK;
}

/* Gathers `cnt[r] * per` elements of every rank r to rank 0, in rank order, into `out`. */
static moe_status_t tel_gatherv(moe_telemetry_t *t, const void *mine, const int *cnt, int per,
                                MPI_Datatype mt, int *rc, int *dsp, void *out)
{
    static const char dummy = 0;
    int               r, tot = 0;

    if (t->rank == 0)
        for (r = 0; r < t->nranks; r++) {
            rc[r] = cnt[r] * per;
            dsp[r] = tot;
            tot += rc[r];
        }
    MOE_MPI_CHECK(t->log, MPI_Gatherv(mine ? mine : &dummy, cnt[t->rank] * per, mt,
                                      out ? out : (void *)&dummy, rc, dsp, mt, 0, t->comm));
    return MOE_OK;
}

/* Rank 0 of gather mode: allocates every buffer of the block's gathers. */
static moe_status_t tel_gather_alloc(moe_telemetry_t *t, size_t n, long nroutes,
                                     tel_io_block_t *io)
{
    size_t P = (size_t)t->nranks, L = (size_t)t->L, Lk = L * (size_t)t->k, R = (size_t)nroutes;
    size_t cols = n * L * P, sizes[OWN_COUNT];
    int    i, ok = 1;

    sizes[OWN_PHASE] = cols * MOE_PHASE_COUNT * sizeof(double);
    sizes[OWN_TRAFFIC] = cols * MOE_TRAFFIC_COUNT * sizeof(int64_t);
    sizes[OWN_SCRATCH] = sizes[OWN_PHASE] > sizes[OWN_TRAFFIC] ? sizes[OWN_PHASE]
                                                                : sizes[OWN_TRAFFIC];
    sizes[OWN_RSTEP] = sizes[OWN_RTOKEN] = sizes[OWN_RTOKEN_ID] = R * sizeof(int64_t);
    sizes[OWN_REXPERT] = R * Lk * sizeof(int32_t);
    sizes[OWN_RWEIGHT] = R * Lk * sizeof(float);
    sizes[OWN_RKEPT] = R * Lk;
    sizes[OWN_MATRIX] = P * P * sizeof(int64_t);
    sizes[OWN_COUNTS] = sizes[OWN_DISPL] = P * sizeof(int);
    for (i = 0; i < OWN_COUNT; i++) {
        io->own[i] = malloc(sizes[i] ? sizes[i] : 1);
        ok &= io->own[i] != NULL;
    }
    if (!ok)
        return MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "telemetry: out of memory for a block");
    return MOE_OK;
}

/*
 * Prepares what this rank writes: in parallel mode its own data, in gather mode (rank 0)
 * everything, gathered. All MPI traffic of a block happens here; every rank makes the same
 * sequence of collective calls whatever the outcome of its allocations (they are agreed on
 * before the gathers).
 */
static moe_status_t tel_prepare(moe_telemetry_t *t, const moe_tel_block_t *b, tel_io_block_t *io)
{
    size_t       n = (size_t)b->nsteps, Lk = (size_t)t->L * t->k;
    int         *cnt = NULL, r, nev = t->rank == 0 ? b->nevents : 0;
    long         before = 0, total = 0;
    moe_status_t st = MOE_OK;
    char        *scr;
    int         *rc, *dsp;

    memset(io, 0, sizeof(*io));
    cnt = malloc((size_t)t->nranks * sizeof(int));
    st = tel_agree(t, cnt ? MOE_OK : MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "telemetry: out of memory"));
    if (st != MOE_OK)
        goto out;
    MOE_MPI_CHECK_GOTO(t->log, MPI_Allgather(&b->nroutes, 1, MPI_INT, cnt, 1, MPI_INT, t->comm),
                       st, out);
    for (r = 0; r < t->nranks; r++) {
        if (r < t->rank)
            before += cnt[r];
        total += cnt[r];
    }
    MOE_MPI_CHECK_GOTO(t->log, MPI_Bcast(&nev, 1, MPI_INT, 0, t->comm), st, out);
    io->rtotal = t->nroutes + (hsize_t)total;
    io->nev = (hsize_t)nev;
    if (total * (long)Lk > INT32_MAX || n * t->L * (size_t)MOE_PHASE_COUNT > INT32_MAX)
        st = MOE_ERROR_SET(t->log, MOE_ERR_UNSUPPORTED, "telemetry: block too large");
    if (st == MOE_OK && t->rank == 0 && nev > 0) {
        io->ev = calloc((size_t)nev, sizeof(*io->ev));
        if (io->ev == NULL)
            st = MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "telemetry: out of memory");
        for (r = 0; r < nev && io->ev; r++) {
            const moe_event_t *e = &b->events[r];
            io->ev[r].step = e->step;
            io->ev[r].layer = e->layer;
            io->ev[r].expert = e->expert;
            io->ev[r].kind = (int32_t)e->kind;
            MOE_ASSERT(moe_tel_event_kind_name(e->kind) != NULL);
            snprintf(io->ev[r].kind_name, sizeof(io->ev[r].kind_name), "%s",
                     moe_tel_event_kind_name(e->kind) ? moe_tel_event_kind_name(e->kind) : "");
            io->ev[r].value = e->value;
            io->ev[r].threshold = e->threshold;
            snprintf(io->ev[r].message, sizeof(io->ev[r].message), "%s", e->message);
        }
    }
    if (st == MOE_OK && t->mode == MOE_TEL_GATHER && t->rank == 0)
        st = tel_gather_alloc(t, n, total, io);
    if ((st = tel_agree(t, st)) != MOE_OK)
        goto out;
    if (t->mode == MOE_TEL_PARALLEL) {
        io->col0 = (hsize_t)t->rank;
        io->ncol = 1;
        io->phase = b->phase;
        io->traffic = b->traffic;
        io->r0 = t->nroutes + (hsize_t)before;
        io->rn = (hsize_t)b->nroutes;
        io->r_step = b->route_step;
        io->r_token = b->route_token;
        io->r_token_id = b->route_token_id;
        io->r_expert = b->route_expert;
        io->r_weight = b->route_weight;
        io->r_kept = b->route_kept;
        io->m0 = (hsize_t)t->rank;
        io->mn = 1;
        io->mrows = b->traffic_row;
        goto out;
    }
    io->col0 = 0;
    io->ncol = (hsize_t)t->nranks;
    io->r0 = t->nroutes;
    io->rn = (hsize_t)total;
    io->m0 = 0;
    io->mn = (hsize_t)t->nranks;
    scr = io->own[OWN_SCRATCH];
    rc = io->own[OWN_COUNTS];
    dsp = io->own[OWN_DISPL];
    if ((st = tel_gather_columns(t, b->phase, n, MOE_PHASE_COUNT, sizeof(double), MPI_DOUBLE,
                                 scr, io->own[OWN_PHASE])) != MOE_OK ||
        (st = tel_gather_columns(t, b->traffic, n, MOE_TRAFFIC_COUNT, sizeof(int64_t),
                                 MPI_INT64_T, scr, io->own[OWN_TRAFFIC])) != MOE_OK ||
        (st = tel_gatherv(t, b->route_step, cnt, 1, MPI_INT64_T, rc, dsp,
                          io->own[OWN_RSTEP])) != MOE_OK ||
        (st = tel_gatherv(t, b->route_token, cnt, 1, MPI_INT64_T, rc, dsp,
                          io->own[OWN_RTOKEN])) != MOE_OK ||
        (st = tel_gatherv(t, b->route_token_id, cnt, 1, MPI_INT64_T, rc, dsp,
                          io->own[OWN_RTOKEN_ID])) != MOE_OK ||
        (st = tel_gatherv(t, b->route_expert, cnt, (int)Lk, MPI_INT32_T, rc, dsp,
                          io->own[OWN_REXPERT])) != MOE_OK ||
        (st = tel_gatherv(t, b->route_weight, cnt, (int)Lk, MPI_FLOAT, rc, dsp,
                          io->own[OWN_RWEIGHT])) != MOE_OK ||
        (st = tel_gatherv(t, b->route_kept, cnt, (int)Lk, MPI_UINT8_T, rc, dsp,
                          io->own[OWN_RKEPT])) != MOE_OK)
        goto out;
    MOE_MPI_CHECK_GOTO(t->log, MPI_Gather(b->traffic_row, t->nranks, MPI_INT64_T,
                                          io->own[OWN_MATRIX], t->nranks, MPI_INT64_T, 0,
                                          t->comm), st, out);
    io->phase = io->own[OWN_PHASE];
    io->traffic = io->own[OWN_TRAFFIC];
    io->r_step = io->own[OWN_RSTEP];
    io->r_token = io->own[OWN_RTOKEN];
    io->r_token_id = io->own[OWN_RTOKEN_ID];
    io->r_expert = io->own[OWN_REXPERT];
    io->r_weight = io->own[OWN_RWEIGHT];
    io->r_kept = io->own[OWN_RKEPT];
    io->mrows = io->own[OWN_MATRIX];
out:
    free(cnt);
    return st;
}

/* The HDF5 writes of one block (io ranks), then the flush. */
static moe_status_t tel_write(moe_telemetry_t *t, const moe_tel_block_t *b,
                              const tel_io_block_t *io)
{
    hsize_t      n = (hsize_t)b->nsteps, S = t->steps + n, i;
    hsize_t      g = t->rank == 0 ? n : 0; /* global data: rank 0's rows */
    int64_t     *steps = NULL;
    moe_status_t st = MOE_OK;

    steps = malloc(n * sizeof(*steps));
    if (steps == NULL)
        return MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "telemetry: out of memory");
    for (i = 0; i < n; i++)
        steps[i] = (int64_t)b->step0 + (int64_t)i;
    if ((st = tel_dset_append(t, MOE_TEL_DS_STEP, S, t->steps, g, 0, 0, 0, steps)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_ROUTED, S, t->steps, g, 0, 0, 0, b->routed)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_PROCESSED, S, t->steps, g, 0, 0, 0, b->processed)) !=
            MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_DROPPED, S, t->steps, g, 0, 0, 0, b->dropped)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_DROPPED_CAPACITY, S, t->steps, g, 0, 0, 0,
                              b->dropped_capacity)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_CAPACITY, S, t->steps, g, 0, 0, 0, b->capacity)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_ROUTER, S, t->steps, g, 0, 0, 0, b->router)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_UNROUTED, S, t->steps, g, 0, 0, 0, b->unrouted)) !=
            MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_EXPERT_BIAS, S, t->steps, g, 0, 0, 0,
                              b->expert_bias)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_ROUTE_TOKEN_ID, io->rtotal, io->r0, io->rn, 0, 0, 0,
                              io->r_token_id)) != MOE_OK ||
        /* rank-local columns: dimension 2 is the rank */
        (st = tel_dset_append(t, MOE_TEL_DS_PHASE, S, t->steps, io->ncol ? n : 0, 2, io->col0,
                              io->ncol, io->phase)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_TRAFFIC, S, t->steps, io->ncol ? n : 0, 2, io->col0,
                              io->ncol, io->traffic)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_ROUTE_STEP, io->rtotal, io->r0, io->rn, 0, 0, 0, io->r_step)) !=
            MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_ROUTE_TOKEN, io->rtotal, io->r0, io->rn, 0, 0, 0,
                              io->r_token)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_ROUTE_EXPERT, io->rtotal, io->r0, io->rn, 0, 0, 0,
                              io->r_expert)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_ROUTE_WEIGHT, io->rtotal, io->r0, io->rn, 0, 0, 0,
                              io->r_weight)) != MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_ROUTE_KEPT, io->rtotal, io->r0, io->rn, 0, 0, 0, io->r_kept)) !=
            MOE_OK ||
        (st = tel_dset_append(t, MOE_TEL_DS_EVENTS, t->nevents + io->nev, t->nevents,
                              t->rank == 0 ? io->nev : 0, 0, 0, 0, io->ev)) != MOE_OK)
        goto out;
    /* accumulated matrices, rewritten whole */
    if ((st = tel_fixed_write(t, MOE_TEL_DS_COSELECT, 0, t->rank == 0 ? (hsize_t)t->L : 0,
                              b->coselect)) != MOE_OK ||
        (st = tel_fixed_write(t, MOE_TEL_DS_TRAFFIC_MATRIX, io->m0, io->mn, io->mrows)) !=
            MOE_OK ||
        (st = tel_attr_i64(t, t->accum, "steps", (int64_t)S)) != MOE_OK ||
        (st = tel_attr_i64(t, t->file, "steps_completed", (int64_t)b->step0 + b->nsteps)) !=
            MOE_OK)
        goto out;
    TEL_H5(t, H5Fflush(t->file, H5F_SCOPE_GLOBAL), "flushing", st, out);
out:
    free(steps);
    return st;
}

/*
 * Rank 0, before a block: the file is still the one created (not removed or replaced), and
 * its file system has room for about twice the block plus 1 MiB. HDF5 1.10 does not recover
 * from a write that fails halfway (ENOSPC leaves a file id it can neither flush nor close,
 * and its exit-time cleanup may crash), so the run stops cleanly *before* the disk is full;
 * every block written so far stays readable.
 */
static moe_status_t tel_check_room(moe_telemetry_t *t, const moe_tel_block_t *blk)
{
    struct stat    sb;
    struct statvfs vb;
    char           dir[MOE_PATH_MAX];
    double         est, need, avail;
    int            d;

    if (t->rank != 0 || t->ino == 0)
        return MOE_OK;
    if (stat(t->path, &sb) != 0)
        return MOE_ERROR_SET(t->log, MOE_ERR_IO,
                             "telemetry: '%s' was removed during the run (%s); stopping: the "
                             "blocks written so far were in that file", t->path, strerror(errno));
    if (sb.st_dev != t->dev || sb.st_ino != t->ino)
        return MOE_ERROR_SET(t->log, MOE_ERR_IO,
                             "telemetry: '%s' was replaced by another file during the run; "
                             "stopping", t->path);
    if (sb.st_size > t->last_size)
        t->last_growth = sb.st_size - t->last_size;
    t->last_size = sb.st_size;
    moe_path_dirname(t->path, dir, sizeof(dir));
    if (statvfs(dir, &vb) != 0)
        return MOE_OK; /* no figure: let the write tell */
    /* the block's rows by the schema (moerun/telemetry_schema.h), or what the last block took */
    est = 0;
    for (d = 0; d < MOE_TEL_DS_COUNT; d++) {
        const moe_tel_dset_t *def = moe_tel_dset(d);
        double rows = def->dims[0] == MOE_TEL_DIM_STEP    ? blk->nsteps
                      : def->dims[0] == MOE_TEL_DIM_ROUTE ? (double)blk->nroutes * t->nranks
                      : def->dims[0] == MOE_TEL_DIM_EVENT ? blk->nevents : 0;
        est += rows * (double)tel_row_elems(t, d) * (double)moe_tel_elem_size(def->elem);
    }
    if ((double)t->last_growth > est)
        est = (double)t->last_growth;
    need = 2.0 * est + (double)(1 << 20);
    avail = (double)vb.f_bavail * (double)vb.f_frsize;
    if (avail < need)
        return MOE_ERROR_SET(t->log, MOE_ERR_IO,
                             "telemetry: '%s': only %.0f bytes free on its file system, the next "
                             "block needs about %.0f (with margin); stopping before the disk is "
                             "full: the %llu steps written stay readable", t->path, avail, need,
                             (unsigned long long)t->steps);
    return MOE_OK;
}

/* A copy of blk whose NULL optional arrays point into *mem (one malloc'd buffer, freed by
 * the caller): steps/unrouted and steps/expert_bias zeros, routes/token_id -1. */
static moe_status_t tel_block_defaults(moe_telemetry_t *t, const moe_tel_block_t *blk,
                                       moe_tel_block_t *full, void **mem)
{
    size_t   rows = (size_t)blk->nsteps * (size_t)t->L, nu = 0, nb = 0, ni = 0, i;
    int64_t *p;

    *full = *blk;
    *mem = NULL;
    if (blk->unrouted == NULL)
        nu = rows;
    if (blk->expert_bias == NULL)
        nb = rows * (size_t)t->E;
    if (blk->route_token_id == NULL)
        ni = (size_t)blk->nroutes;
    if (nu + nb + ni == 0)
        return MOE_OK;
    *mem = calloc(nu + nb + ni, 8); /* int64 and double zeros share the size */
    if (*mem == NULL)
        return MOE_ERROR_SET(t->log, MOE_ERR_NOMEM, "telemetry: out of memory");
    p = *mem;
    if (nu)
        full->unrouted = p;
    if (nb)
        full->expert_bias = (const double *)(p + nu);
    if (ni) {
        for (i = 0; i < ni; i++)
            p[nu + nb + i] = -1;
        full->route_token_id = p + nu + nb;
    }
    return MOE_OK;
}

moe_status_t moe_telemetry_write_block(moe_telemetry_t *tel, const moe_tel_block_t *blk)
{
    tel_io_block_t  io;
    moe_tel_block_t full;
    void           *dflt = NULL;
    moe_status_t    st = MOE_OK;
    int             ok[2], all[2];

    if (tel == NULL)
        return MOE_ERR_INVALID;
    if (tel->failed != MOE_OK)
        return MOE_ERROR_SET(tel->log, tel->failed,
                             "telemetry: '%s': an earlier write failed; no more blocks written",
                             tel->path);
    /* the block must have the same step count everywhere (extents are computed from it) */
    ok[0] = blk ? blk->nsteps : -1;
    ok[1] = -ok[0];
    if (MPI_Allreduce(ok, all, 2, MPI_INT, MPI_MIN, tel->comm) != MPI_SUCCESS)
        return tel->failed = MOE_ERROR_SET(tel->log, MOE_ERR_MPI, "telemetry: MPI_Allreduce failed");
    if (blk == NULL || all[0] < 1 || all[0] != -all[1] || blk->nroutes < 0)
        return tel->failed = tel_agree(tel, MOE_ERROR_SET(tel->log, MOE_ERR_INVALID,
                                       "telemetry: '%s': invalid block (nsteps %d..%d)",
                                       tel->path, all[0], -all[1]));
    if ((st = tel_agree(tel, tel_check_room(tel, blk))) != MOE_OK)
        return tel->failed = st;
    /* optional arrays a caller left NULL: zeros (unrouted, expert_bias), -1 (token ids) */
    st = tel_agree(tel, tel_block_defaults(tel, blk, &full, &dflt));
    if (st != MOE_OK) {
        free(dflt);
        return tel->failed = st;
    }
    blk = &full;
    /* HDF5 metadata calls must match on all io ranks: agree on the preparation first */
    st = tel_agree(tel, tel_prepare(tel, blk, &io));
    if (st == MOE_OK && tel->io)
        st = tel_write(tel, blk, &io);
    st = tel_agree(tel, st);
    tel_io_block_free(&io);
    free(dflt);
    if (st != MOE_OK) {
        tel->failed = st;
        return st;
    }
    tel->steps += (hsize_t)blk->nsteps;
    tel->nroutes = io.rtotal;
    tel->nevents += io.nev;
    return MOE_OK;
}

/* ---------------------------------------------------------------- close --------------- */

static moe_status_t tel_write_end(moe_telemetry_t *t, long steps, const char *status,
                                  const char *end, const char *summary)
{
    moe_status_t st;

    if ((st = tel_attr_i64(t, t->file, "steps_completed", (int64_t)steps)) != MOE_OK ||
        (st = tel_attr_str(t, t->file, "status", status)) != MOE_OK ||
        (st = tel_attr_str(t, t->file, "end_time", end)) != MOE_OK)
        return st;
    if (summary && summary[0] && (st = tel_attr_str(t, t->file, "summary", summary)) != MOE_OK)
        return st;
    if (H5Fflush(t->file, H5F_SCOPE_GLOBAL) < 0)
        return tel_h5_fail(t, MOE_ERR_HDF5, "flushing");
    return MOE_OK;
}

moe_status_t moe_telemetry_close(moe_telemetry_t *tel, long steps_completed, const char *status,
                                 const char *summary_json)
{
    moe_status_t st = MOE_OK, st2;
    char        *stat_s = NULL, *sum_s = NULL, *end_s = NULL, end[TEL_TIME_MAX] = "";
    long         steps = steps_completed;
    time_t       now = time(NULL);
    struct tm    tmv;

    if (tel == NULL)
        return MOE_OK;
    if (gmtime_r(&now, &tmv))
        strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", &tmv);
    /* rank 0's values, so that every io rank writes identical attributes */
    if (MPI_Bcast(&steps, 1, MPI_LONG, 0, tel->comm) != MPI_SUCCESS)
        st = MOE_ERROR_SET(tel->log, MOE_ERR_MPI, "telemetry: MPI_Bcast failed");
    if ((st2 = tel_bcast_str(tel, status ? status : "complete", &stat_s)) != MOE_OK && !st)
        st = st2;
    if ((st2 = tel_bcast_str(tel, summary_json, &sum_s)) != MOE_OK && !st)
        st = st2;
    if ((st2 = tel_bcast_str(tel, end, &end_s)) != MOE_OK && !st)
        st = st2;
    st = tel_agree(tel, st);
    /* after a failed block the end state is still attempted: "error" is worth recording */
    if (st == MOE_OK && tel->io && tel->file >= 0)
        st = tel_write_end(tel, steps, stat_s, end_s, sum_s);
    if (tel->io && (st2 = tel_close_file(tel)) != MOE_OK && st == MOE_OK)
        st = st2;
    st = tel_agree(tel, st);
    /* closed after a failed write: the file holds the blocks before it; last_error
     * still says what failed */
    if (st == MOE_OK && tel->failed != MOE_OK)
        st = tel->failed;
    H5Eclear2(H5E_DEFAULT);
    free(stat_s);
    free(sum_s);
    free(end_s);
    tel_free(tel);
    return st;
}
