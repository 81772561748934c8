/*
 * moerun/moerun.h — the C API a framework embeds.
 *
 *   moe_config_t cfg;  moe_config_defaults(&cfg);  ... set fields ...
 *   moe_engine_t *eng;
 *   if (moe_engine_create(&cfg, comm, &eng) != MOE_OK) { report moe_engine_last_error(eng)... }
 *   moe_engine_run(eng, &stop_flag);          // or moe_engine_step() / moe_engine_forward()
 *   moe_engine_finish(eng, "complete", &summary);
 *   moe_engine_destroy(eng);
 *
 * Every call is collective over the communicator given to create (the engine works on a
 * duplicate of it; nothing uses MPI_COMM_WORLD). Only the calling thread makes MPI calls.
 */
#ifndef MOERUN_MOERUN_H
#define MOERUN_MOERUN_H

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>

#include "moerun/config.h"
#include "moerun/event.h"
#include "moerun/status.h"
#include "moerun/version.h"

typedef struct moe_engine moe_engine_t;

/*
 * Version of the library loaded at run time, e.g. "0.1.0"; the numbers go to the pointers
 * that are not NULL. Compare with MOERUN_VERSION_* (moerun/version.h), the headers' version.
 */
const char  *moe_version(int *major_p, int *minor_p, int *patch_p);

/* Run totals, identical on every rank after moe_engine_finish. */
typedef struct moe_summary {
    const char *status;          /* "complete", "interrupted" or "error" */
    long        steps;           /* steps completed */
    int         nranks, nnodes;
    double      elapsed_s;       /* wall time of the steps */
    double      tokens_per_s;    /* global tokens per second through all layers, over the
                                    steps after warm-up (all steps if none came after it) */
    double      phase_s[16];     /* per phase (names: moe_summary_phase_name; room for more
                                    columns), summed over steps and layers, mean over ranks */
    double      phase_max_s[16]; /* same, max over ranks */
    int64_t     routed, processed, dropped; /* (token, expert) pairs, all steps and layers */
    double      drop_rate;       /* dropped / routed */
    int64_t     unrouted;        /* tokens routed to no expert (expert-choice), steps x layers */
    double      max_mean_load;   /* max over layers of max/mean routed per expert, whole run */
    int         hottest_layer, hottest_expert;
    double      load_entropy_norm; /* mean over steps and layers */
    double      gate_entropy_norm; /* mean over steps and layers */
    double      top1_prob;       /* mean over steps and layers */
    double      aux_loss;        /* mean over steps and layers */
    int64_t     bytes_sent;      /* payload + count bytes sent to other ranks, all ranks */
    int64_t     inter_node_bytes;/* of bytes_sent: to ranks on other nodes */
    int64_t     intra_node_bytes;/* of bytes_sent: to other ranks on the same node */
    double      out_sum, out_sumsq; /* last layer output of the last step, all tokens */
    int64_t     out_count;       /* floats in that tensor */
    long        alerts;          /* monitor events raised */
    long        warmup_steps;    /* first steps left out of tokens_per_s and the percentiles */
    double      step_p50_s, step_p99_s; /* per-step wall time after warm-up, percentile on
                                           each rank (last 2^20 steps), max over ranks */
    const moe_event_t *events;   /* [n_events] the first events raised (moerun/event.h) */
    int         n_events;
    int         compute_slots;   /* --compute-slots in effect: C of the nodes (largest), 0 off */
    int         compute_slots_max_holders; /* most ranks of one node holding a slot at once */
    double      compute_slots_wait_s; /* seconds asleep waiting for a slot, mean over ranks */
    int         wait_sleep_us;   /* flat's overlapped waits in effect: us asleep between tests
                                  * (largest over ranks), 0: MPI's wait (--wait-sleep-us) */
    double      expert_rows[3];  /* rows each rank's routed experts computed, all steps and
                                  * layers: min, mean, max over ranks (mean x nranks = processed) */
    double      expert_gflops[3];/* those experts' calls in thread CPU time, GFLOP/s of each
                                  * rank: min, mean, max over the ranks that computed rows
                                  * (0: none did, or the simulation model computes none). With
                                  * even rows, min < max is cores of unequal speed */
    int         expert_slowest_rank; /* the rank of expert_gflops[0]; -1 when none */
} moe_summary_t;

/*
 * Creates an engine on `comm` from a validated configuration (moe_config_validate): draws
 * weights, builds the placement and the exchange backend, creates the telemetry file.
 * Collective; fails on every rank or on none. On failure *engine_p is still set when
 * possible so moe_engine_last_error() can be read; destroy it as usual.
 */
moe_status_t moe_engine_create(const moe_config_t *cfg, MPI_Comm comm, moe_engine_t **engine_p);

/* Runs one step of the synthetic workload through all layers. Collective. */
moe_status_t moe_engine_step(moe_engine_t *eng);

/*
 * Runs steps until cfg->steps are done or *stop becomes non-zero on any rank (checked
 * once a step, collectively, so all ranks stop after the same step). Prints progress on
 * rank 0 unless quiet. stop may be NULL.
 */
moe_status_t moe_engine_run(moe_engine_t *eng, volatile sig_atomic_t *stop);

/*
 * Runs the layer stack on caller tokens: x [T][d] in, out [T][d] (may alias x), T =
 * cfg->tokens, rows are this rank's tokens with global indices rank*T .. rank*T+T-1.
 * Counters and telemetry are recorded as for a step. Collective.
 */
moe_status_t moe_engine_forward(moe_engine_t *eng, const float *x, float *out);

/* Flushes telemetry, closes the file with `status`, fills *summary (may be NULL). */
moe_status_t moe_engine_finish(moe_engine_t *eng, const char *status, moe_summary_t *summary);

/* Writes the summary as text (rank 0 calls it) and as JSON to `json_path` (may be NULL). */
void         moe_summary_print(const moe_engine_t *eng, const moe_summary_t *s, FILE *out);
moe_status_t moe_summary_write_json(moe_engine_t *eng, const moe_summary_t *s,
                                    const char *json_path);

/* Name of column i of moe_summary_t.phase_s ("gate", "counts", ...); NULL past the last. */
const char  *moe_summary_phase_name(int phase);

/* Last layer output of the last step: this rank's T x d floats. */
const float *moe_engine_output(const moe_engine_t *eng);

/* Text of the last error on this rank ("" if none). */
const char  *moe_engine_last_error(const moe_engine_t *eng);

/*
 * Replaces the gate by the routes of a recorded log (include/moerun/replay.h) from the next
 * step on. `routes` must have passed moe_replay_check() for this configuration and must
 * outlive the engine. Local call (every rank makes it with the same routes).
 */
struct moe_replay_routes;
moe_status_t moe_engine_set_replay(moe_engine_t *eng, const struct moe_replay_routes *routes);

void         moe_engine_destroy(moe_engine_t *eng);

#endif /* MOERUN_MOERUN_H */
