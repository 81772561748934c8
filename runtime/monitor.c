/*
 * runtime/monitor.c — threshold alerts on routing health (see monitor.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

moe_status_t moe_monitor_init(moe_monitor_t *mon, const moe_config_t *cfg, int64_t global_tokens,
                              moe_log_t *log, int speak)
{
    size_t L = (size_t)cfg->layers, E = (size_t)cfg->experts, W = (size_t)cfg->monitor_window;

    memset(mon, 0, sizeof(*mon));
    mon->cfg = cfg;
    mon->log = log;
    mon->speak = speak;
    mon->layers = cfg->layers;
    mon->experts = cfg->experts;
    mon->top_k = cfg->top_k;
    mon->global_tokens = global_tokens;
    mon->ring = calloc(W * L * E, sizeof(int64_t));
    mon->window = calloc(L * E, sizeof(int64_t));
    mon->active = calloc(L * (E + 1) * MOE_EVENT_COUNT, 1);
    mon->std_base = calloc(L, sizeof(double));
    if (!mon->ring || !mon->window || !mon->active || !mon->std_base) {
        moe_monitor_cleanup(mon);
        return MOE_ERR_NOMEM;
    }
    return MOE_OK;
}

/*
 * The log speaks once per kind per window of monitor_window steps: the first event of a kind
 * in full, then (at the window's end, or at cleanup) one line with how many more there were;
 * every event is still in the telemetry. So a run with thousands of experts starving does
 * not print thousands of lines.
 */
static void mon_say_summary(moe_monitor_t *mon)
{
    int k;

    for (k = 0; k < MOE_EVENT_COUNT; k++) {
        if (mon->speak && mon->said[k] > 1)
            MOE_WARN(mon->log, "alerts at steps %ld-%ld: %s raised %ld more time%s (every event "
                     "is in the telemetry's events dataset)", mon->said_from, mon->said_to,
                     moe_event_names[k], mon->said[k] - 1, mon->said[k] == 2 ? "" : "s");
        mon->said[k] = 0;
    }
}

void moe_monitor_cleanup(moe_monitor_t *mon)
{
    if (mon->log)
        mon_say_summary(mon);
    free(mon->ring);
    free(mon->window);
    free(mon->active);
    free(mon->std_base);
    free(mon->pending);
    memset(mon, 0, sizeof(*mon));
}

static uint8_t *mon_flag(moe_monitor_t *mon, int layer, int expert, moe_event_kind_t kind)
{
    /* expert -1 (layer-wide conditions) uses slot E */
    size_t e = expert < 0 ? (size_t)mon->experts : (size_t)expert;
    return mon->active + (((size_t)layer * (mon->experts + 1) + e) * MOE_EVENT_COUNT + kind);
}

__attribute__((format(printf, 8, 9)))
static moe_status_t mon_set(moe_monitor_t *mon, int on, long step, int layer, int expert,
                            moe_event_kind_t kind, double value_threshold[2], const char *fmt,
                            ...)
{
    uint8_t     *flag = mon_flag(mon, layer, expert, kind);
    moe_event_t *ev;
    va_list      ap;

    if (!on || *flag) {
        *flag = (uint8_t)on;
        return MOE_OK;
    }
    *flag = 1;
    if (mon->npending == mon->cap_pending) {
        int          cap = mon->cap_pending ? 2 * mon->cap_pending : 16;
        moe_event_t *p = realloc(mon->pending, (size_t)cap * sizeof(*p));
        if (p == NULL)
            return MOE_ERR_NOMEM;
        mon->pending = p;
        mon->cap_pending = cap;
    }
    ev = &mon->pending[mon->npending++];
    memset(ev, 0, sizeof(*ev));
    ev->step = step;
    ev->layer = layer;
    ev->expert = expert;
    ev->kind = kind;
    ev->value = value_threshold[0];
    ev->threshold = value_threshold[1];
    va_start(ap, fmt);
    vsnprintf(ev->message, sizeof(ev->message), fmt, ap);
    va_end(ap);
    mon->raised++;
    if (mon->speak && mon->said[kind] == 0)
        MOE_WARN(mon->log, "alert at step %ld: %s: %s", step, moe_event_names[kind], ev->message);
    mon->said[kind]++;
    return MOE_OK;
}

moe_status_t moe_monitor_observe(moe_monitor_t *mon, long step, const int64_t *routed,
                                 const int64_t *capacity, const double *router)
{
    const moe_config_t *cfg = mon->cfg;
    int                 L = mon->layers, E = mon->experts, W = cfg->monitor_window, l, e;
    double              G = (double)mon->global_tokens;
    double              fair_window = (double)W * mon->top_k * G / E;
    int64_t            *slot = mon->ring + (size_t)mon->ring_pos * L * E;
    moe_status_t        st = MOE_OK;

    /* slide the window */
    for (l = 0; l < L * E; l++) {
        mon->window[l] += routed[l] - slot[l];
        slot[l] = routed[l];
    }
    mon->ring_pos = (mon->ring_pos + 1) % W;
    if (mon->ring_fill < W)
        mon->ring_fill++;

    for (l = 0; l < L && st == MOE_OK; l++) {
        const int64_t *rl = routed + (size_t)l * E;
        const double  *rs = router + (size_t)l * MOE_RSTAT_COUNT;
        int64_t        sum = 0, dropped = 0, maxv = -1;
        int            maxe = 0;
        double         vt[2];

        for (e = 0; e < E; e++) {
            sum += rl[e];
            if (capacity[l] >= 0 && rl[e] > capacity[l])
                dropped += rl[e] - capacity[l];
            if (rl[e] > maxv) {
                maxv = rl[e];
                maxe = e;
            }
        }
        /* dead and starved experts over a full window */
        for (e = 0; e < E && mon->ring_fill == W && st == MOE_OK; e++) {
            int64_t w = mon->window[(size_t)l * E + e];
            double  share = w / fair_window;
            vt[0] = share;
            vt[1] = 0;
            st = mon_set(mon, w == 0, step, l, e, MOE_EVENT_DEAD, vt,
                         "layer %d expert %d: no tokens in the last %d steps", l, e, W);
            vt[1] = cfg->monitor_starved_share;
            if (st == MOE_OK)
                st = mon_set(mon, w > 0 && share < cfg->monitor_starved_share, step, l, e,
                             MOE_EVENT_STARVED, vt,
                             "layer %d expert %d: %.1f%% of its fair share over the last %d steps (threshold %.1f%%)",
                             l, e, 100 * share, W, 100 * cfg->monitor_starved_share);
        }
        if (st != MOE_OK)
            break;
        vt[0] = sum ? (double)dropped / sum : 0;
        vt[1] = cfg->monitor_drop_rate;
        st = mon_set(mon, vt[0] > vt[1], step, l, -1, MOE_EVENT_DROP_RATE, vt,
                     "layer %d: %.2f%% of routed pairs dropped over capacity %lld (threshold %.2f%%)",
                     l, 100 * vt[0], (long long)capacity[l], 100 * vt[1]);
        if (st != MOE_OK)
            break;
        vt[0] = rs[MOE_RSTAT_LOAD_ENTROPY_NORM];
        vt[1] = cfg->monitor_entropy_min;
        st = mon_set(mon, E > 1 && vt[0] < vt[1], step, l, -1, MOE_EVENT_LOW_ENTROPY, vt,
                     "layer %d: normalised load entropy %.3f (threshold %.3f)", l, vt[0], vt[1]);
        if (st != MOE_OK)
            break;
        /* with top-k of E every expert sees k/E of the tokens when balanced (top-2 of 3:
         * 2/3 each), so the threshold moves from the configured share toward 1 as k/E
         * grows: s + (1 - s) k / E (moe_monitor_collapse_threshold) */
        vt[0] = maxv / G;
        vt[1] = moe_monitor_collapse_threshold(cfg->monitor_collapse_share, mon->top_k, E);
        st = mon_set(mon, E > 1 && vt[0] > vt[1], step, l, maxe, MOE_EVENT_COLLAPSE, vt,
                     "layer %d expert %d: routed %.1f%% of tokens (threshold %.1f%%)", l, maxe,
                     100 * vt[0], 100 * vt[1]);
        if (st != MOE_OK)
            break;
        if (mon->base_steps < W) {
            mon->std_base[l] += rs[MOE_RSTAT_LOGIT_STD];
        } else {
            double base = mon->std_base[l] / W;
            vt[0] = base > 0 ? rs[MOE_RSTAT_LOGIT_STD] / base : 0;
            vt[1] = cfg->monitor_logit_std_factor;
            st = mon_set(mon, vt[0] > vt[1], step, l, -1, MOE_EVENT_LOGIT_SATURATION, vt,
                         "layer %d: logit std %.3g is %.1fx its early-run baseline %.3g (threshold %.1fx)",
                         l, rs[MOE_RSTAT_LOGIT_STD], vt[0], base, vt[1]);
        }
    }
    if (mon->base_steps < W)
        mon->base_steps++;
    mon->said_to = step;
    if (step + 1 - mon->said_from >= W) {
        mon_say_summary(mon);
        mon->said_from = step + 1;
    }
    return st;
}

double moe_monitor_collapse_threshold(double share, int top_k, int experts)
{
    double fair = experts > 0 ? (double)top_k / (double)experts : 1.0;

    if (fair > 1)
        fair = 1;
    return share + (1.0 - share) * fair;
}

const moe_event_t *moe_monitor_take(moe_monitor_t *mon, int *n_p)
{
    *n_p = mon->npending;
    mon->npending = 0;
    return mon->pending;
}
