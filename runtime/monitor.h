/*
 * runtime/monitor.h — online routing-health alerts.
 *
 * Fed the global counts and router statistics of every step; raises an event when a
 * condition starts (edge-triggered: once per condition, again only after it has cleared):
 *   dead_expert / starved_expert  an expert's routed pairs over the last `window` steps are
 *                                 0 / under starved_share x its fair share (k G / E a step);
 *   drop_rate                     dropped / routed of a layer over drop_rate in a step;
 *   low_entropy                   normalised load entropy of a layer under entropy_min;
 *   collapse                      one expert routed more than s + (1 - s) k/E of the tokens,
 *                                 s = collapse_share (balanced top-k of E gives each k/E);
 *   logit_saturation              logit std over factor x its mean over the first window.
 * Events are kept until taken with moe_monitor_take and, when `speak` is set, logged once.
 */
#ifndef MOERUN_RUNTIME_MONITOR_H
#define MOERUN_RUNTIME_MONITOR_H

#include <stdint.h>

#include "moerun/base/log.h"
#include "moerun/config.h"
#include "telemetry.h"

typedef struct moe_monitor {
    const moe_config_t *cfg;
    moe_log_t          *log;
    int                 speak;       /* log raised events (rank 0) */
    int                 layers, experts, top_k;
    int64_t             global_tokens;
    int64_t            *ring;        /* [window][L][E] routed per step */
    int64_t            *window;      /* [L][E] sum over the ring */
    int                 ring_pos, ring_fill;
    uint8_t            *active;      /* [L][E + 1][MOE_EVENT_COUNT] condition currently on */
    double             *std_base;    /* [L] sum of logit std over the first window */
    int                 base_steps;
    moe_event_t        *pending;
    int                 npending, cap_pending;
    long                raised;      /* events raised in the whole run */
    long                said[MOE_EVENT_COUNT]; /* events of each kind in the open log window */
    long                said_from, said_to;    /* steps of the open log window */
} moe_monitor_t;

/* Caller-owned struct; freed by moe_monitor_cleanup. */
moe_status_t moe_monitor_init(moe_monitor_t *mon, const moe_config_t *cfg, int64_t global_tokens,
                              moe_log_t *log, int speak);
void         moe_monitor_cleanup(moe_monitor_t *mon);

/* routed [L][E], capacity [L] (-1 dropless), router [L][MOE_RSTAT_COUNT]: global values. */
moe_status_t moe_monitor_observe(moe_monitor_t *mon, long step, const int64_t *routed,
                                 const int64_t *capacity, const double *router);

/* The collapse threshold: share + (1 - share) * min(1, top_k / experts). */
double moe_monitor_collapse_threshold(double share, int top_k, int experts);

/* Events raised since the last take; valid until the next observe. */
const moe_event_t *moe_monitor_take(moe_monitor_t *mon, int *n_p);

#endif /* MOERUN_RUNTIME_MONITOR_H */
