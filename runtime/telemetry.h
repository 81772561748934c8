/*
 * runtime/telemetry.h — the HDF5 telemetry writer (schema: docs/telemetry.md).
 *
 * The engine buffers a block of steps (config flush_interval) and hands it over with
 * moe_telemetry_write_block(); the writer extends its chunked datasets, writes the block,
 * rewrites the accumulated matrices and calls H5Fflush, so a run killed later is readable
 * up to this block. Memory held by the writer is bounded by one block.
 *
 * Two modes behind the same calls (moe_tel_mode_t):
 *   MOE_TEL_PARALLEL  every rank opens the file with the MPI-IO driver and writes its own
 *                     hyperslab collectively (rank-local data: its column; global data:
 *                     rank 0 selects the block, others select nothing);
 *   MOE_TEL_GATHER    rank-local data is gathered to rank 0 with MPI, and rank 0 alone
 *                     writes with the serial (sec2) driver: for clusters without a parallel
 *                     file system, and for SimGrid where MPI-IO does not exist.
 *
 * Every call here is collective over the communicator given at create time.
 * Data marked "global" is identical on every rank; only rank 0's copy is read.
 */
#ifndef MOERUN_RUNTIME_TELEMETRY_H
#define MOERUN_RUNTIME_TELEMETRY_H

#include <mpi.h>
#include <stdint.h>

#include "moerun/base/log.h"
#include "moerun/config.h"
#include "moerun/event.h" /* moe_event_t: public (moe_summary_t.events) */
#include "moerun/telemetry_schema.h"

/* The column X-macros (MOE_PHASE_MAP, MOE_TRAFFIC_MAP, MOE_RSTAT_MAP, MOE_EVENT_MAP), their
 * enums, the dataset paths (MOE_TEL_*) and the whole file layout: moerun/telemetry_schema.h. */

/* Column and kind names, indexed by the schema's enums (defined in telemetry.c). */
extern const char *const moe_phase_names[MOE_PHASE_COUNT];
extern const char *const moe_traffic_names[MOE_TRAFFIC_COUNT];
extern const char *const moe_rstat_names[MOE_RSTAT_COUNT];
extern const char *const moe_event_names[MOE_EVENT_COUNT];

#define MOE_HOST_MAX MOE_TEL_STRING_MAX
#define MOE_CPUSET_MAX MOE_TEL_STRING_MAX

/* What is known when the file is created; all arrays global, indexed by rank. */
typedef struct moe_tel_meta {
    const moe_config_t *cfg;
    const char *config_ini;            /* effective configuration, moe_config_to_ini() */
    int         nranks;
    int         nnodes;
    const char (*hostname)[MOE_HOST_MAX];  /* [nranks] */
    const int  *node;                  /* [nranks] node id, 0..nnodes-1 */
    const int  *local_rank;            /* [nranks] rank within its node */
    const char (*cpuset)[MOE_CPUSET_MAX];  /* [nranks] cores bound, hwloc list syntax, "" if unbound */
    const int  *numa_node;             /* [nranks] NUMA node of the binding, -1 if unknown */
    const int  *expert_owner;          /* [experts] rank that holds each expert */
    const int  *expert_ranks;          /* [layers][experts][max_replicas] ranks holding each expert, -1 padded; NULL: expert_owner at every layer */
    int         max_replicas;          /* last dimension of expert_ranks */
    const char (*nic)[MOE_TEL_STRING_MAX];         /* [nranks] nearest network device, "" none; may be NULL */
    const char (*bind_action)[MOE_TEL_STRING_MAX]; /* [nranks] what --bind did (comm/bind.h); may be NULL */
    const char (*machine)[MOE_TEL_STRING_MAX];     /* [nranks] the rank's host as hwloc sees it; may be NULL */
    const int64_t *cache_bytes;        /* [nranks][3] L1d, L2, L3 sizes (comm/bind.h), 0 none; may be NULL */
    const int     *cache_pus;          /* [nranks][3] PUs sharing each; may be NULL */
    const char *slurm_job_id;          /* NULL or "" if not under Slurm */
    const char *mpi_version;           /* MPI_Get_library_version text */
    const char *hwloc_version;
    const char *start_time;            /* ISO 8601 UTC */
} moe_tel_meta_t;

/* One flush worth of steps. Arrays are row-major in the order of their shape comment. */
typedef struct moe_tel_block {
    long           step0;        /* first step of the block */
    int            nsteps;       /* steps in the block, >= 1 */
    /* global */
    const int64_t *routed;       /* [nsteps][L][E] (token, expert) pairs routed */
    const int64_t *processed;    /* [nsteps][L][E] pairs computed by the expert */
    const int64_t *dropped;      /* [nsteps][L][E] pairs dropped, all reasons */
    const int64_t *dropped_capacity; /* [nsteps][L][E] pairs dropped over capacity */
    const int64_t *capacity;     /* [nsteps][L] per-expert capacity; -1 = dropless */
    const double  *router;       /* [nsteps][L][MOE_RSTAT_COUNT] */
    const int64_t *unrouted;     /* [nsteps][L] tokens routed to no expert (expert-choice) */
    const double  *expert_bias;  /* [nsteps][L][E] balancing bias used (zeros when off) */
    /* rank-local: this rank's values */
    const double  *phase;        /* [nsteps][L][MOE_PHASE_COUNT] seconds */
    const int64_t *traffic;      /* [nsteps][L][MOE_TRAFFIC_COUNT] */
    /* rank-local sampled routes: nroutes tokens held by this rank */
    int            nroutes;
    const int64_t *route_step;   /* [nroutes] */
    const int64_t *route_token;  /* [nroutes] global token index */
    const int64_t *route_token_id; /* [nroutes] vocabulary id of the token */
    const int32_t *route_expert; /* [nroutes][L][k] selected experts, best first */
    const float   *route_weight; /* [nroutes][L][k] normalised gate weights */
    const uint8_t *route_kept;   /* [nroutes][L][k] 1 = processed, 0 = dropped */
    /* accumulated since step 0, rewritten whole at every flush */
    const int64_t *coselect;     /* global [L][E][E]: tokens that selected both i and j (diagonal: i) */
    const int64_t *traffic_row;  /* rank-local [nranks]: payload bytes this rank sent to each rank */
    /* events raised since the previous block (global; only rank 0's are written) */
    int                nevents;
    const moe_event_t *events;
} moe_tel_block_t;

typedef struct moe_telemetry moe_telemetry_t;

/*
 * Creates (truncates) the HDF5 file at `path` and writes the metadata. Collective.
 * On failure nothing is left behind (a file that was created is removed) and no handle
 * is returned. The handle is freed by moe_telemetry_close().
 */
moe_status_t moe_telemetry_create(const char *path, moe_tel_mode_t mode, MPI_Comm comm,
                                  const moe_tel_meta_t *meta, moe_log_t *log,
                                  moe_telemetry_t **tel_p);

/* Appends one block and flushes the file. Collective. */
moe_status_t moe_telemetry_write_block(moe_telemetry_t *tel, const moe_tel_block_t *blk);

/*
 * Writes the run's end state as attributes (steps_completed, status: "complete",
 * "interrupted" or "error", end_time, and the final summary numbers given as a JSON
 * string, may be NULL), closes the file and frees the handle. Collective. Safe on NULL.
 */
moe_status_t moe_telemetry_close(moe_telemetry_t *tel, long steps_completed,
                                 const char *status, const char *summary_json);

#endif /* MOERUN_RUNTIME_TELEMETRY_H */
