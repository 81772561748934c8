/*
 * runtime/engine.h — the engine's state, shared by engine.c and summary.c only.
 * Not a public header: embedders use include/moerun/moerun.h.
 */
#ifndef MOERUN_RUNTIME_ENGINE_H
#define MOERUN_RUNTIME_ENGINE_H

#include "a2a.h"
#include "capacity.h"
#include "ffn.h"
#include "gate.h"
#include "monitor.h"
#include "moerun/base/log.h"
#include "moerun/moerun.h"
#include "moerun/replay.h"
#include "placement.h"
#include "router.h"
#include "router_expert_choice.h"
#include "slots.h"
#include "telemetry.h"
#include "topo.h"
#include "watchdog.h"
#include "workload.h"

#define MOE_SUMMARY_EVENTS_MAX 64

struct moe_engine {
    moe_config_t         cfg;
    MPI_Comm             comm;
    int                  rank, nranks;
    moe_log_t            log;
    moe_topo_t           topo;
    moe_placement_t      place;
    moe_workload_t       wl;
    const moe_a2a_ops_t *a2a;
    void                *a2a_ctx;
    int                  L, E, k, d, T, n_local;
    int64_t              G, g0;        /* global tokens per step, this rank's first token */
    int64_t              capacity;     /* per expert per step, -1 dropless */
    const moe_replay_routes_t *rp;     /* replayed routes instead of the gate, or NULL */
    int                  T_act;        /* tokens this rank routes this step (replay: <= T) */
    int64_t              rp_first;     /* replay: log index of this rank's first token this step */
    moe_router_t         router;       /* the configured router (router.h) */
    int                  S;            /* slots per token: k, or E for expert-choice */
    int                 *router_group; /* [E] group of each expert (group/node-limited) */
    double              *rscratch;     /* [MOE_ROUTER_SCRATCH(max(E, nodes))] */
    int64_t             *token_id;     /* [T] vocabulary ids of the step's tokens */
    int64_t             *ec_scratch;   /* [3E] expert-choice counts */
    float               *bias;         /* [L][E] aux-loss-free balancing bias (selection only) */
    int                  use_bias;     /* balance_bias > 0 and the router scores (not EC/hash) */
    double              *b_bias;       /* [B][L][E] the bias each step selected with */
    moe_ffn_t           *shared;       /* [L][shared_experts] shared experts */
    float               *shared_y;     /* [T][d] output of one shared expert */

    /* model */
    float               *wg;           /* [L][d][E] router weights */
    moe_ffn_t           *ffn;          /* [L][n_local] local experts */

    /* per-step working buffers (allocated once) */
    float               *xin, *xa, *xb, *xout; /* [T][d] */
    float               *logits;       /* [T][E] */
    double              *pscratch;     /* [E] */
    moe_gate_out_t       gate;         /* [T][S] */
    uint8_t             *keep;         /* [T][S] */
    int32_t             *dest_rank, *dest_expert; /* [T][S] */
    double              *gsum;         /* [MOE_GSUM_LEN(E)] */
    int64_t             *local_count, *routed_global; /* [E] */
    float               *ffn_scratch;  /* moe_ffn_scratch_floats() floats */
    moe_capacity_ws_t    capws;
    const float         *last_out;     /* output of the last step or forward */

    /* telemetry block (flush_interval steps) */
    int                  B, nblk;
    long                 blk_step0;
    int64_t             *b_routed, *b_processed, *b_dropped, *b_processed_g, *b_dropped_g;
    int64_t             *b_capacity;   /* [B][L] */
    int64_t             *b_unrouted;   /* [B][L] tokens routed to no expert (global) */
    double              *b_router;     /* [B][L][MOE_RSTAT_COUNT] */
    double              *b_phase;      /* [B][L][MOE_PHASE_COUNT] */
    int64_t             *b_traffic;    /* [B][L][MOE_TRAFFIC_COUNT] */
    int                  n_route_local;/* sampled tokens held by this rank */
    int                 *route_t;      /* [n_route_local] local token index */
    int64_t             *b_route_step, *b_route_token;  /* [B * n_route_local] */
    int64_t             *b_route_token_id;              /* [B * n_route_local] */
    int32_t             *b_route_expert;                /* [B * n_route_local][L][k] */
    float               *b_route_weight;
    uint8_t             *b_route_kept;
    int64_t             *coselect, *coselect_g;         /* [L][E][E] */
    int64_t             *traffic_row;                   /* [P] */
    moe_event_t         *b_events;
    int                  n_b_events, cap_b_events;
    moe_monitor_t        mon;
    moe_telemetry_t     *tel;
    moe_watchdog_t      *wd;           /* --step-timeout; NULL: none (watchdog.h) */
    moe_slots_t          slots;        /* --compute-slots (comm/slots.h); off: limit 0 */
    long                 wait_sleep_ns; /* flat's overlapped waits: sleep between tests, 0: MPI's */

    /* run totals */
    long                 step;         /* next step index */
    double               elapsed;      /* seconds spent in steps */
    double               elapsed_warm; /* of elapsed: in the first cfg.warmup steps */
    double              *step_s;       /* [cap_step_s] wall time of each measured step, a ring
                                        * holding the last cap_step_s of them */
    long                 n_step_s, cap_step_s; /* measured steps seen; ring size */
    double               phase_tot[MOE_PHASE_COUNT];
    int64_t             *routed_tot;   /* [L][E] global */
    int64_t              processed_tot, dropped_tot, unrouted_tot;
    int64_t              routed_flushed;  /* routed pairs of the flushed steps (metrics) */
    double               metrics_last;    /* MPI_Wtime of the last metrics write (rank 0) */
    double               sum_load_ent, sum_gate_ent, sum_top1, sum_aux;
    long                 n_stat;
    int64_t              bytes_sent_tot, bytes_inter_tot, bytes_intra_tot;
    int64_t              rows_in_tot;  /* rows this rank's routed experts computed, all steps
                                        * (counted each step, not at flush: moerun-bench reads
                                        * it at its warm-up's end) */
    double               expert_cpu_tot; /* thread CPU seconds inside those experts' calls
                                          * (moe_ffn_forward), all steps: with rows_in_tot the
                                          * kernel's rate on this rank's core in the run */
    moe_event_t          events[MOE_SUMMARY_EVENTS_MAX];
    int                  n_events;
    long                 alerts;
};

/* Over comm, from each rank's rows computed by its routed experts and the thread CPU seconds
 * of those calls: min/mean/max of the rows; min/mean/max over the ranks with rows and CPU
 * time of their GFLOP/s (flop_row per row), all 0 when none has; the slowest such rank (-1:
 * none). The summary's expert_rows/expert_gflops and moerun-bench's measured-step figures.
 * Collective. */
moe_status_t moe__engine_rates_over_ranks(MPI_Comm comm, moe_log_t *log, double rows, double cpu,
                                          double flop_row, double rows_out[3],
                                          double gflops_out[3], int *slowest);

/* The summary as a JSON document (summary.c); malloc'd, the caller frees it. NULL on OOM. */
char *moe_summary_to_json(const moe_engine_t *eng, const moe_summary_t *s);

#endif /* MOERUN_RUNTIME_ENGINE_H */
