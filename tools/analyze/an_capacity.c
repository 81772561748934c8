/*
 * tools/analyze/an_capacity.c — the capacity analysis (docs/analysis.md): drops per layer and
 * expert, capacity fill, and the capacity-factor what-if.
 *
 * What always holds:
 *  1. The what-if replays the recorded loads under each capacity factor of an_cfs (counted
 *     during streaming, an_stream.c); every recommendation carries that replayed number and
 *     its evidence.
 *  2. A capacity factor that is unknown or dropless is said so, never printed as a number.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

/* "1.25", "dropless" (cf <= 0) or "unknown" (not in the file): never "cf 0.00". */
static void an_cf_text(double cf, char *buf, size_t n)
{
    if (!isfinite(cf))
        snprintf(buf, n, "unknown");
    else if (cf <= 0)
        snprintf(buf, n, "dropless");
    else
        snprintf(buf, n, "%.2f", cf);
}

/*
 * Capacity on a log without drops (dropless, or drops not recorded): the replayed loads tell
 * the capacity factor that keeps drops <= AN_DROP_TARGET, and what it saves against buffers
 * sized for the largest expert load of each step (what a dropless run must hold).
 */
static void an_capacity_loads_only(cJSON *sec, cJSON *fnd, cJSON *rec, const an_st_t *a,
                                   double cf, int best)
{
    char   ev[400], t[160], cfs[32];
    double slots = a->max_slots / (double)(a->S * a->L), proj;

    an_cf_text(cf, cfs, sizeof(cfs));
    if (sec != NULL)
        cJSON_AddStringToObject(sec, "recorded_missing",
                                "steps/dropped absent: the log does not say which pairs were "
                                "dropped; the what-if replays its loads");
    if (best < 0) {
        an_finding(fnd, "capacity_needed", "info", "capacity", NAN, AN_DROP_TARGET,
                   "replaying the loads: no capacity factor up to %.0f keeps drops <= %.1f%% "
                   "(cf %.0f drops %.2f%%)", an_cfs[AN_NCF - 1], 100 * AN_DROP_TARGET,
                   an_cfs[AN_NCF - 1], 100.0 * (double)a->wi_drops[AN_NCF - 1] / (double)a->routed);
        return;
    }
    proj = a->wi_cap[best] / (double)(a->S * a->L);
    an_finding(fnd, "capacity_needed", "info", "capacity", an_cfs[best], AN_DROP_TARGET,
               "replaying the loads: capacity factor %.2f keeps drops <= %.1f%% (%lld of %lld "
               "pairs); cf 1.00 would drop %.2f%%", an_cfs[best], 100 * AN_DROP_TARGET,
               (long long)a->wi_drops[best], (long long)a->routed,
               100.0 * (double)a->wi_drops[2] / (double)a->routed);
    if (proj < 0.95 * slots) {
        snprintf(ev, sizeof(ev),
                 "replay of the recorded per-expert loads (%lld step x layer rows, cf %s): "
                 "buffers sized for each step's largest expert load need %.1f slots per step "
                 "and layer; cf %.2f needs %.1f and drops %lld of %lld pairs (%.3f%%)",
                 (long long)(a->S * a->L), cfs, slots, an_cfs[best], proj,
                 (long long)a->wi_drops[best], (long long)a->routed,
                 100.0 * (double)a->wi_drops[best] / (double)a->routed);
        snprintf(t, sizeof(t), "cap expert buffers with --capacity-factor %.2f (drops stay <= %.1f%%)",
                 an_cfs[best], 100 * AN_DROP_TARGET);
        an_recommend(rec, "capacity_factor", t, "expert slots per step and layer", slots, proj,
                     "pairs", "low (one option)", ev);
    }
}

void an_capacity(cJSON *an, cJSON *fnd, cJSON *rec, const an_st_t *a, double cf)
{
    cJSON  *sec, *pl, *wi, *hit, *rp;
    int64_t l, e, b, L = a->L, E = a->E;
    int     c, best = -1;
    double *ser, dr;
    char    ev[300], cfs[32];

    if (a->S == 0 || a->routed == 0) {
        an_section(an, "capacity", a->S == 0 ? "no steps in the file (empty run)"
                                             : "no (token, expert) pairs were routed");
        return;
    }
    sec = an_section(an, "capacity", NULL);
    an_cf_text(cf, cfs, sizeof(cfs));
    an_add_num(sec, "capacity_factor", cf);
    cJSON_AddStringToObject(sec, "capacity_factor_text", cfs);
    /* the what-if replays the recorded loads only: it needs no drop data */
    wi = cJSON_AddArrayToObject(sec, "what_if");
    for (c = 0; c < AN_NCF; c++) {
        cJSON *o = cJSON_CreateObject();
        double r = (double)a->wi_drops[c] / (double)a->routed;
        cJSON_AddNumberToObject(o, "capacity_factor", an_cfs[c]);
        cJSON_AddNumberToObject(o, "dropped", (double)a->wi_drops[c]);
        cJSON_AddNumberToObject(o, "drop_rate", r);
        cJSON_AddNumberToObject(o, "slots_per_step_layer", a->wi_cap[c] / (double)(a->S * L));
        cJSON_AddItemToArray(wi, o);
        if (best < 0 && r <= AN_DROP_TARGET)
            best = c;
    }
    an_add_num(sec, "capacity_factor_for_target", best >= 0 ? an_cfs[best] : NAN);
    cJSON_AddNumberToObject(sec, "target_drop_rate", AN_DROP_TARGET);
    an_add_num(sec, "dropless_slots_per_step_layer", a->max_slots / (double)(a->S * L));
    if (!a->has_dropped) {
        an_capacity_loads_only(sec, fnd, rec, a, cf, best);
        return;
    }
    dr = (double)a->dropped / (double)a->routed;
    an_add_num(sec, "drop_rate", dr);
    pl = cJSON_AddArrayToObject(sec, "layers");
    for (l = 0; l < L; l++) {
        int64_t rr = 0, dd = 0;
        cJSON  *o = cJSON_CreateObject();
        for (e = 0; e < E; e++) {
            rr += a->routed_le[l * E + e];
            dd += a->dropped_le[l * E + e];
        }
        cJSON_AddNumberToObject(o, "layer", (double)a->lid[l]);
        cJSON_AddNumberToObject(o, "dropped", (double)dd);
        an_add_num(o, "drop_rate", rr > 0 ? (double)dd / (double)rr : NAN);
        cJSON_AddItemToArray(pl, o);
    }
    ser = malloc((size_t)a->nb * 8);
    if (ser) {
        for (b = 0; b < a->nb; b++)
            ser[b] = a->b_routed[b] > 0 ? a->b_dropped[b] / a->b_routed[b] : NAN;
        cJSON_AddItemToObject(sec, "series_drop_rate", an_num_array(ser, a->nb));
        free(ser);
    }
    hit = cJSON_AddArrayToObject(sec, "experts_at_capacity");
    for (l = 0; l < L; l++)
        for (e = 0; e < E; e++)
            if (a->atcap_le[l * E + e] > 0) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "layer", (double)a->lid[l]);
                cJSON_AddNumberToObject(o, "expert", (double)e);
                cJSON_AddNumberToObject(o, "steps_at_capacity", (double)a->atcap_le[l * E + e]);
                cJSON_AddNumberToObject(o, "dropped", (double)a->dropped_le[l * E + e]);
                cJSON_AddItemToArray(hit, o);
            }
    an_add_num(sec, "capacity_fill", a->fill_cap > 0 ? a->fill_proc / a->fill_cap : NAN);
    rp = cJSON_AddObjectToObject(sec, "replay_check");
    cJSON_AddNumberToObject(rp, "rows_with_capacity", (double)a->cap_rows);
    cJSON_AddNumberToObject(rp, "replayed_dropped", (double)a->replay_drops);
    cJSON_AddNumberToObject(rp, "recorded_dropped", (double)a->dropped);
    cJSON_AddBoolToObject(rp, "match", a->replay_drops == a->dropped);
    if (dr > AN_DROP_WARN)
        an_finding(fnd, "drops", dr > AN_DROP_CRIT ? "critical" : "warning", "capacity", dr,
                   dr > AN_DROP_CRIT ? AN_DROP_CRIT : AN_DROP_WARN,
                   "%.2f%% of (token, expert) pairs dropped over capacity (cf %s); %d expert(s) hit capacity",
                   100 * dr, cfs, cJSON_GetArraySize(hit));
    else
        an_finding(fnd, "drops", "info", "capacity", dr, AN_DROP_WARN,
                   "drop rate %.4f%% (cf %s)", 100 * dr, cfs);
    if (!(cf > 0)) {
        an_capacity_loads_only(NULL, fnd, rec, a, cf, best);
        return;
    }
    /* recommendation: the smallest replayed cf that meets the drop target */
    if (best < 0 && dr > AN_DROP_TARGET &&
        (double)a->wi_drops[AN_NCF - 1] < 0.8 * (double)a->dropped && an_cfs[AN_NCF - 1] > cf)
        best = AN_NCF - 1; /* no factor meets the target: the largest replayed one */
    if (best >= 0 && dr > AN_DROP_TARGET && (!(cf > 0) || an_cfs[best] > cf)) {
        snprintf(ev, sizeof(ev),
                 "replay of recorded per-expert loads (%lld step x layer rows): cf %.2f drops "
                 "%lld of %lld pairs; recorded cf %s dropped %lld",
                 (long long)(a->S * L), an_cfs[best], (long long)a->wi_drops[best],
                 (long long)a->routed, cfs, (long long)a->dropped);
        {
            char t[160];
            snprintf(t, sizeof(t), "raise capacity factor to %.2f (expert buffers x%.2f)",
                     an_cfs[best], cf > 0 ? an_cfs[best] / cf : NAN);
            an_recommend(rec, "capacity_factor", t, "drop rate", dr,
                         (double)a->wi_drops[best] / (double)a->routed, "fraction of pairs",
                         "low (one option)", ev);
        }
    } else if (cf > 0 && dr <= AN_DROP_TARGET) {
        for (c = 0; c < AN_NCF && an_cfs[c] < cf; c++)
            if ((double)a->wi_drops[c] / (double)a->routed <= AN_DROP_TARGET) {
                char t[160];
                snprintf(ev, sizeof(ev),
                         "replay of recorded per-expert loads: cf %.2f drops %lld of %lld pairs "
                         "(%.4f%%)", an_cfs[c], (long long)a->wi_drops[c], (long long)a->routed,
                         100.0 * (double)a->wi_drops[c] / (double)a->routed);
                snprintf(t, sizeof(t), "lower capacity factor to %.2f (drops stay <= %.1f%%)",
                         an_cfs[c], 100 * AN_DROP_TARGET);
                an_recommend(rec, "capacity_factor", t, "expert slots per step and layer",
                             a->cap_rows > 0 ? a->fill_cap / (double)a->cap_rows : NAN,
                             a->wi_cap[c] / (double)(a->S * L), "pairs", "low (one option)", ev);
                break;
            }
    }
    /* recommendation: even routing */
    {
        double worst = 0;
        for (l = 0; l < L; l++)
            worst = fmax(worst, a->imb_sl_layer[l] / (double)a->S);
        if (worst >= AN_IMB_WARN && cf > 0) {
            int64_t even = 0;
            /* even loads: every expert gets pairs/E, capacity ceil(cf*pairs/E) >= that when cf >= 1 */
            if (cf < 1.0)
                even = (int64_t)llround((1.0 - cf) * (double)a->routed);
            snprintf(ev, sizeof(ev),
                     "per-step max/mean up to %.2f; replaying the same pairs spread evenly "
                     "over %lld experts at cf %.2f gives %lld drops instead of %lld",
                     worst, (long long)E, cf, (long long)even, (long long)a->dropped);
            an_recommend(rec, "balance_routing",
                         "strengthen load balancing (aux-loss coefficient or expert bias)",
                         "dropped pairs", (double)a->dropped, (double)even, "pairs",
                         "medium (training change)", ev);
        }
    }
}
