/*
 * tools/analyze/analyze_run.c — the analyses of one telemetry file (formulas: docs/analysis.md).
 *
 * What always holds:
 *  1. Everything is read through tools/reader/telemetry_reader (validated file, bounds-checked
 *     reads). Per-step datasets are streamed in blocks of rows (at most AN_BLOCK_BYTES of
 *     buffers), so memory is bounded by the file's dimensions (layers, experts, ranks) and
 *     the number of chart bins, never by its step count. Routes are read in blocks too and
 *     at most AN_ROUTES_MAX rows are used.
 *  2. Data that is absent (a dataset, a column, a step range, an attribute) makes its section
 *     "status": "missing" with the reason in "missing"; no number is invented.
 *  3. Every recommendation carries a number computed by replaying the recorded loads or
 *     routes under the changed setting, and the evidence it came from.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_math.h"
#include "analyze.h"
#include "telemetry_reader.h"

#define AN_BLOCK_BYTES     (8u << 20) /* per-step buffers of one block */
#define AN_BINS            240        /* points of the over-steps series and heatmap columns */
#define AN_HIST_BINS       20         /* gate-confidence histograms over [0, 1] */
#define AN_ROUTES_MAX      200000     /* sampled routes used (map, specialisation, what-ifs) */
#define AN_ROUTE_BLOCK     4096
#define AN_MAP_TOKENS      64         /* tokens shown in the routing map */
#define AN_TOP_TOKENS      5          /* top tokens per expert */
#define AN_EVENT_CHUNK     256
#define AN_MATRIX_MAX_RANKS 64        /* traffic matrix copied into the report up to this */
#define AN_COLLAPSE_SHARE  0.8        /* top-2 experts' share of a layer's pairs = collapse */
#define AN_COLLAPSE_TOKENS 0.5        /* ... or one expert selected by this share of tokens */
/* Both shares scale with the balanced value b (2/E for the top two's pair share, k/E for one
 * expert's token share): threshold = s + (1 - s) b, as the monitor's (runtime/monitor.c) */
#define AN_ALWAYS_ON_REST  0.9        /* collapse vs always-on: the other experts' normalised
                                       * entropy at or above this = one always-on expert */
#define AN_COLLAPSE_STEPS  10         /* ... for this many consecutive steps */
#define AN_NCF             10
#define AN_ASSUMED_RANKS   8          /* placement what-if of a file without placement */
#define AN_HEAT_CELLS      (1 << 22)  /* heatmap counts kept: bins x layers x experts */
#define AN_HEAT_LAYERS     4          /* layers in the report's heatmap (highest max/mean) */
static const double an_cfs[AN_NCF] = {0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0};

/* Severity thresholds (docs/analysis.md, "Severities"). */
#define AN_IMB_WARN        1.5
#define AN_IMB_CRIT        3.0
#define AN_ENT_WARN        0.8
#define AN_ENT_CRIT        0.5
#define AN_DROP_WARN       0.001
#define AN_DROP_CRIT       0.05
#define AN_EXCH_WARN       0.2
#define AN_EXCH_CRIT       0.5
#define AN_TOP1_SAT        0.95
#define AN_RANK_WARN       1.25
#define AN_FLOPS_WARN      0.3
#define AN_DROP_TARGET     0.001      /* what-if target drop rate */

enum { RC_TOP1, RC_MARGIN, RC_LMEAN, RC_LSTD, RC_LMAX, RC_AUX, RC_Z, RC_ENT, RC_COUNT };
static const char *const an_rc_names[RC_COUNT] = {
    "top1_prob", "top1_top2_margin", "logit_mean", "logit_std", "logit_max", "aux_loss",
    "z_loss", "load_entropy_norm"};

/* Streaming state of one run, sized by L, E, P and the bin count. */
typedef struct an_st {
    int64_t L, E, P, S, K, nb, W, CW;
    /* per layer x expert */
    int64_t *routed_le, *dropped_le, *processed_le, *atcap_le, *zrun_le, *zstart_le, *dead_le;
    /* per layer */
    int64_t *crun_l, *cstart_l, *cbegan_l;
    double  *cshare_l, *ctok_l, *crest_l; /* at the step the collapse window completed */
    int64_t *ctop_l;
    /* per bin */
    double  *b_routed, *b_dropped, *b_ent, *b_imb, *b_n, *b_rc, *b_rcn;
    int64_t *heat;          /* [hb][L][E] pairs per heatmap bin, layer, expert */
    int64_t  hb;            /* heatmap bins: <= nb, hb * L * E <= AN_HEAT_CELLS */
    /* what-if and replay */
    int64_t  wi_drops[AN_NCF], replay_drops, cap_rows;
    double   max_slots;     /* sum over step x layer of E x the largest expert load */
    double   wi_cap[AN_NCF];
    double   fill_proc, fill_cap;
    am_corr_t corr_aux, corr_z;
    int64_t  hist_top1[AN_HIST_BINS], hist_margin[AN_HIST_BINS], hist_n;
    double   dec_first[RC_COUNT], dec_last[RC_COUNT], n_first, n_last;
    double   rc_sum[RC_COUNT], rc_n;
    double   rc_cnt[RC_COUNT]; /* pairs behind the finite values per column (imports hold NaN
                                 * where unknown): rc_sum / rc_cnt is the token-weighted mean */
    double   dec_first_n[RC_COUNT], dec_last_n[RC_COUNT]; /* the same weights per window */
    double   cthr_pairs, cthr_tokens; /* collapse thresholds (AN_COLLAPSE_*, scaled by 2/E, k/E) */
    int64_t *lid;           /* [L] layer id of each file layer (import/layer_id, else 0..L-1) */
    int64_t  empty_layers;  /* layers that routed no pair in the whole file */
    /* phases and traffic per rank */
    double  *phase_rank;
    int      nph;
    int64_t *traffic_rank;
    int      ntc;
    int64_t  routed, processed, dropped;
    int64_t  checked_routed, checked_traffic; /* running totals of an_check_block */
    const char *path;                         /* the file, for messages */
    /* which columns exist (-1 absent) */
    int      rc[RC_COUNT];
    int      has_dropped, has_processed, has_capacity, has_router, has_phase, has_traffic;
    double  *imb_sl_layer;  /* per layer: sum of per-step max/mean */
} an_st_t;

/* ---------------------------------------------------------------- small helpers -------- */

double an_num(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

const char *an_str(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : "-";
}

/* Adds a number, or null when it is not finite. */
static void an_add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* A count or size, null when the file does not know it (-1: absent root attribute). */
static void an_add_count(cJSON *o, const char *key, int64_t v)
{
    if (v >= 0)
        cJSON_AddNumberToObject(o, key, (double)v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *an_num_array(const double *v, int64_t n)
{
    cJSON  *a = cJSON_CreateArray();
    int64_t i;

    for (i = 0; i < n && a; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

static cJSON *an_i64_array(const int64_t *v, int64_t n)
{
    cJSON  *a = cJSON_CreateArray();
    int64_t i;

    for (i = 0; i < n && a; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

/* A section object: {"status": "ok"} or {"status": "missing", "missing": why}. */
static cJSON *an_section(cJSON *analyses, const char *name, const char *missing)
{
    cJSON *o = cJSON_AddObjectToObject(analyses, name);

    cJSON_AddStringToObject(o, "status", missing ? "missing" : "ok");
    if (missing)
        cJSON_AddStringToObject(o, "missing", missing);
    return o;
}

/* Adds a finding {id, severity, analysis, title, value, threshold, evidence}. */
static void an_finding(cJSON *arr, const char *id, const char *sev, const char *analysis,
                       double value, double threshold, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void an_finding(cJSON *arr, const char *id, const char *sev, const char *analysis,
                       double value, double threshold, const char *fmt, ...)
{
    cJSON  *o = cJSON_CreateObject();
    char    buf[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "severity", sev);
    cJSON_AddStringToObject(o, "analysis", analysis);
    cJSON_AddStringToObject(o, "title", buf);
    an_add_num(o, "value", value);
    an_add_num(o, "threshold", threshold);
    cJSON_AddItemToArray(arr, o);
}

/* Adds a recommendation with its replayed impact. */
static void an_recommend(cJSON *arr, const char *id, const char *title, const char *metric,
                         double current, double projected, const char *unit,
                         const char *complexity, const char *evidence)
{
    cJSON *o = cJSON_CreateObject(), *im;

    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "title", title);
    im = cJSON_AddObjectToObject(o, "impact");
    cJSON_AddStringToObject(im, "metric", metric);
    an_add_num(im, "current", current);
    an_add_num(im, "projected", projected);
    an_add_num(im, "change_pct",
               current != 0 && isfinite(current) ? 100.0 * (projected - current) / fabs(current)
                                                 : NAN);
    cJSON_AddStringToObject(im, "unit", unit);
    cJSON_AddStringToObject(o, "complexity", complexity);
    cJSON_AddStringToObject(o, "evidence", evidence);
    cJSON_AddItemToArray(arr, o);
}

static void an_add_str_attr(moe_tel_reader_t *r, cJSON *o, const char *key)
{
    char *s = NULL;

    if (moe_tel_reader_attr_str(r, "/", key, &s) == MOE_OK)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
    free(s);
}

static void an_st_free(an_st_t *a)
{
    free(a->routed_le);
    free(a->dropped_le);
    free(a->processed_le);
    free(a->atcap_le);
    free(a->zrun_le);
    free(a->zstart_le);
    free(a->dead_le);
    free(a->crun_l);
    free(a->cstart_l);
    free(a->cbegan_l);
    free(a->cshare_l);
    free(a->ctok_l);
    free(a->crest_l);
    free(a->ctop_l);
    free(a->b_routed);
    free(a->b_dropped);
    free(a->b_ent);
    free(a->b_imb);
    free(a->b_n);
    free(a->b_rc);
    free(a->b_rcn);
    free(a->heat);
    free(a->phase_rank);
    free(a->traffic_rank);
    free(a->imb_sl_layer);
    free(a->lid);
}

static int an_st_alloc(an_st_t *a)
{
    size_t LE = (size_t)(a->L * a->E), L = (size_t)a->L, nb = (size_t)a->nb;
    size_t i;

    a->routed_le = calloc(LE, 8);
    a->dropped_le = calloc(LE, 8);
    a->processed_le = calloc(LE, 8);
    a->atcap_le = calloc(LE, 8);
    a->zrun_le = calloc(LE, 8);
    a->zstart_le = calloc(LE, 8);
    a->dead_le = malloc(LE * 8);
    a->crun_l = calloc(L, 8);
    a->cstart_l = calloc(L, 8);
    a->cbegan_l = malloc(L * 8);
    a->cshare_l = calloc(L, 8);
    a->ctok_l = calloc(L, 8);
    a->crest_l = calloc(L, 8);
    a->ctop_l = calloc(L, 8);
    a->b_routed = calloc(nb + 1, 8);
    a->b_dropped = calloc(nb + 1, 8);
    a->b_ent = calloc(nb + 1, 8);
    a->b_imb = calloc(nb + 1, 8);
    a->b_n = calloc(nb + 1, 8);
    a->b_rc = calloc((nb + 1) * RC_COUNT, 8);
    a->b_rcn = calloc((nb + 1) * RC_COUNT, 8);
    a->hb = (int64_t)nb;
    if (a->hb * a->L * a->E > AN_HEAT_CELLS)
        a->hb = AN_HEAT_CELLS / (a->L * a->E > 0 ? a->L * a->E : 1);
    if (a->hb < 1)
        a->hb = 1;
    a->heat = calloc((size_t)(a->hb + 1) * LE, 8);
    a->imb_sl_layer = calloc(L, 8);
    if (!a->routed_le || !a->dropped_le || !a->processed_le || !a->atcap_le || !a->zrun_le ||
        !a->zstart_le || !a->dead_le || !a->crun_l || !a->cstart_l || !a->cbegan_l ||
        !a->cshare_l || !a->ctok_l || !a->crest_l || !a->ctop_l || !a->b_routed || !a->b_dropped || !a->b_ent || !a->b_imb || !a->b_n ||
        !a->b_rc || !a->b_rcn || !a->heat || !a->imb_sl_layer)
        return -1;
    for (i = 0; i < LE; i++)
        a->dead_le[i] = -1;
    for (i = 0; i < L; i++)
        a->cbegan_l[i] = -1;
    return 0;
}

/* ---------------------------------------------------------------- streaming ----------- */

/* Normalised entropy of the loads x[0..E) without expert `skip` (NAN with fewer than 2 left). */
static double an_rest_entropy(const int64_t *x, int64_t E, int64_t skip)
{
    double  tot = 0, h = 0;
    int64_t e;

    if (E < 3)
        return NAN;
    for (e = 0; e < E; e++)
        if (e != skip)
            tot += (double)x[e];
    if (!(tot > 0))
        return NAN;
    for (e = 0; e < E; e++)
        if (e != skip && x[e] > 0)
            h -= ((double)x[e] / tot) * log2((double)x[e] / tot);
    return h / log2((double)(E - 1));
}

/* Accumulates one step s of one layer l. x: routed[E], d: dropped[E] or NULL, cap: -2 absent. */
static void an_step_layer(an_st_t *a, int64_t s, int64_t l, const int64_t *x, const int64_t *d,
                          int64_t cap, const double *rcv)
{
    const int64_t E = a->E, W = a->W, b = s * a->nb / a->S;
    int64_t       e, tot = 0, m1 = 0, m2 = 0, dsum = 0, xl_n, atcap = cap >= 0 ? cap : INT64_MAX;
    int64_t      *rl = a->routed_le + l * E, *zr = a->zrun_le + l * E, *zs = a->zstart_le + l * E;
    int64_t      *dl = a->dropped_le + l * E, *pl = a->processed_le + l * E;
    int64_t      *ac = a->atcap_le + l * E, *dead = a->dead_le + l * E;
    int64_t      *heat = a->heat + ((s * a->hb / a->S) * a->L + l) * E, rep = 0, e1 = 0;
    double        slog = 0, ent, imb = NAN;
    const double *xl = am_xlog2x_table(&xl_n);
    int           c;

    /* locals, not fields of *a, carry the sums: stores through int64_t pointers could alias
     * them and serialise the loop */
    for (e = 0; e < E; e++) {
        int64_t v = x[e];
        tot += v;
        rl[e] += v;
        heat[e] += v;
        if (v > m1) {
            m2 = m1;
            m1 = v;
            e1 = e;
        } else if (v > m2) {
            m2 = v;
        }
        slog += v < xl_n ? xl[v] : am_xlog2x(v);
    }
    /* a layer that routed nothing in this step (a sparse imported log) has no data for it:
     * its experts' zero-load runs neither grow nor end */
    for (e = 0; e < E; e++) {
        int64_t v = x[e];
        if (tot == 0)
            break;
        if (v == 0) {
            if (zr[e] == 0)
                zs[e] = s;
            if (++zr[e] == W && dead[e] < 0)
                dead[e] = zs[e];
        } else {
            zr[e] = 0;
        }
        if (v >= atcap) {
            ac[e]++;
            rep += v - atcap; /* replay of the recorded capacity */
        }
    }
    if (d != NULL) {
        for (e = 0; e < E; e++) {
            dl[e] += d[e];
            pl[e] += x[e] - d[e];
            dsum += d[e];
        }
        a->dropped += dsum;
        a->b_dropped[b] += (double)dsum;
    }
    a->routed += tot;
    a->b_routed[b] += (double)tot;
    if (tot > 0) {
        ent = (log2((double)tot) - slog / (double)tot) / (E > 1 ? log2((double)E) : 1.0);
        imb = (double)m1 * (double)E / (double)tot;
        a->b_ent[b] += ent;
        a->b_imb[b] += imb;
        a->max_slots += (double)m1 * (double)E;
        a->b_n[b] += 1;
        a->imb_sl_layer[l] += imb;
        /* collapse: the top two experts take AN_COLLAPSE_SHARE of the layer's pairs, or one
         * expert is selected by AN_COLLAPSE_TOKENS of the tokens (token share k*m1/tot) and
         * by AN_COLLAPSE_FAIR times its fair token share k/E */
        if ((E > 2 && (double)(m1 + m2) >= a->cthr_pairs * (double)tot) ||
            (a->K > 0 && (double)(a->K * m1) >= a->cthr_tokens * (double)tot)) {
            if (a->crun_l[l] == 0)
                a->cstart_l[l] = s;
            if (++a->crun_l[l] == a->CW && a->cbegan_l[l] < 0) {
                a->cbegan_l[l] = a->cstart_l[l];
                a->cshare_l[l] = (double)(m1 + m2) / (double)tot;
                a->ctok_l[l] = (double)(a->K * m1) / (double)tot;
                a->ctop_l[l] = e1;
                a->crest_l[l] = an_rest_entropy(x, E, e1);
            }
        } else {
            a->crun_l[l] = 0;
        }
        /* capacity what-if: replay these loads under other capacity factors (capacities
         * grow with the factor, so an expert under one is under all larger ones) */
        {
            int64_t cw[AN_NCF], wd[AN_NCF] = {0};
            for (c = 0; c < AN_NCF; c++) {
                cw[c] = am_capacity(an_cfs[c], tot, E);
                a->wi_cap[c] += (double)cw[c] * (double)E;
            }
            /* sum max(0, x - C) = (sum of loads above C) - C * (count above C). Capacities
             * grow with the factor, so each load falls in one bucket j = number of capacities
             * below it (branch-free), and suffix sums of the buckets give every factor */
            if (m1 > cw[0]) {
                int64_t cnt[AN_NCF + 1] = {0}, sum[AN_NCF + 1] = {0}, ca = 0, sa = 0;
                for (e = 0; e < E; e++) {
                    const int64_t v = x[e];
                    int           j = 0;
                    for (c = 0; c < AN_NCF; c++)
                        j += v > cw[c];
                    cnt[j]++;
                    sum[j] += v;
                }
                for (c = AN_NCF - 1; c >= 0; c--) {
                    ca += cnt[c + 1];
                    sa += sum[c + 1];
                    wd[c] = sa - cw[c] * ca;
                }
            }
            for (c = 0; c < AN_NCF; c++)
                a->wi_drops[c] += wd[c];
        }
    }
    if (cap >= 0) {
        a->replay_drops += rep;
        a->cap_rows++;
        if (d != NULL) {
            a->fill_proc += (double)(tot - dsum);
            a->fill_cap += (double)cap * (double)E;
        }
    }
    if (rcv != NULL) {
        /* router statistics are means over the step's tokens: weighting each step x layer
         * value by its pairs (= tokens x k) gives token-weighted (pooled) means */
        const double wt = (double)tot;
        for (c = 0; c < RC_COUNT; c++) {
            double v = rcv[c];
            if (!isfinite(v) || tot == 0)
                continue;
            a->b_rc[b * RC_COUNT + c] += v * wt;
            a->b_rcn[b * RC_COUNT + c] += wt;
            a->rc_sum[c] += v * wt;
            a->rc_cnt[c] += wt;
            if (s < (a->S + 9) / 10) {
                a->dec_first[c] += v * wt;
                a->dec_first_n[c] += wt;
            }
            if (s >= a->S - (a->S + 9) / 10) {
                a->dec_last[c] += v * wt;
                a->dec_last_n[c] += wt;
            }
        }
        if (s < (a->S + 9) / 10)
            a->n_first += 1;
        if (s >= a->S - (a->S + 9) / 10)
            a->n_last += 1;
        a->rc_n += 1;
        am_corr_add(&a->corr_aux, rcv[RC_AUX], imb);
        am_corr_add(&a->corr_z, rcv[RC_Z], rcv[RC_LMAX]);
        if (isfinite(rcv[RC_TOP1])) {
            int h = (int)fmin(fmax(floor(rcv[RC_TOP1] * AN_HIST_BINS), -1), AN_HIST_BINS);
            a->hist_top1[h < 0 ? 0 : h >= AN_HIST_BINS ? AN_HIST_BINS - 1 : h]++;
            a->hist_n++;
        }
        if (isfinite(rcv[RC_MARGIN])) {
            int h = (int)fmin(fmax(floor(rcv[RC_MARGIN] * AN_HIST_BINS), -1), AN_HIST_BINS);
            a->hist_margin[h < 0 ? 0 : h >= AN_HIST_BINS ? AN_HIST_BINS - 1 : h]++;
        }
    }
}

/*
 * The counts of one block, before any of them is summed: every routed and dropped count in
 * 0..AN_COUNT_MAX (2^40) with dropped <= routed, capacities >= -1, traffic in
 * 0..AN_COUNT_MAX, and
 * the file's running total of routed pairs (and of traffic) still representable
 * (checked additions): every later sum is bounded by these totals, so none can overflow.
 * A violation is "damaged file: ..." naming the dataset, the step and the value.
 */
#define AN_COUNT_MAX (INT64_C(1) << 40) /* per cell and step; a run has at most 2^31 */
static moe_status_t an_check_block(an_st_t *a, moe_log_t *log, const char *path, int64_t s0,
                                   int64_t n, const int64_t *x, const int64_t *d,
                                   const int64_t *cap, const int64_t *tr)
{
    int64_t LE = a->L * a->E, i, m = n * LE;

    for (i = 0; i < m; i++) {
        if (x[i] < 0 || x[i] > AN_COUNT_MAX)
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s at step row %lld, "
                                 "layer %lld, expert %lld is %lld (allowed 0..2^40)", path,
                                 MOE_TEL_ROUTED, (long long)(s0 + i / LE),
                                 (long long)(i % LE / a->E), (long long)(i % a->E),
                                 (long long)x[i]);
        if (d && (d[i] < 0 || d[i] > x[i]))
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s at step row %lld, "
                                 "layer %lld, expert %lld is %lld (allowed 0..routed %lld)",
                                 path, MOE_TEL_DROPPED, (long long)(s0 + i / LE),
                                 (long long)(i % LE / a->E), (long long)(i % a->E),
                                 (long long)d[i], (long long)x[i]);
        if (__builtin_add_overflow(a->checked_routed, x[i], &a->checked_routed) ||
            a->checked_routed > INT64_MAX / 4)
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: routed pairs sum "
                                 "past 2^61 by step row %lld", path, (long long)(s0 + i / LE));
    }
    for (i = 0; cap && i < n * a->L; i++)
        if (cap[i] < -1 || cap[i] > AN_COUNT_MAX)
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s at step row %lld "
                                 "is %lld (allowed -1..2^40)", path, MOE_TEL_CAPACITY,
                                 (long long)(s0 + i / a->L), (long long)cap[i]);
    for (i = 0; tr && i < n * a->L * a->P * a->ntc; i++)
        if (tr[i] < 0 || tr[i] > AN_COUNT_MAX ||
            __builtin_add_overflow(a->checked_traffic, tr[i], &a->checked_traffic) ||
            a->checked_traffic > INT64_MAX / 4)
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s at step row %lld "
                                 "is %lld (allowed 0..2^40, sum below 2^61)", path,
                                 MOE_TEL_TRAFFIC,
                                 (long long)(s0 + i / (a->L * a->P * a->ntc)), (long long)tr[i]);
    return MOE_OK;
}

/* Streams every per-step dataset in blocks of rows. */
static moe_status_t an_stream(moe_tel_reader_t *r, moe_log_t *log, an_st_t *a)
{
    int64_t      L = a->L, E = a->E, P = a->P, s0, n, s, l;
    int          nrc = moe_tel_reader_ncolumns(r, MOE_TEL_ROUTER), c;
    size_t       row = (size_t)(L * E) * 8 * 2 + (size_t)L * 8 + (size_t)L * (size_t)nrc * 8 +
                 (size_t)(L * P) * (size_t)(a->nph + a->ntc) * 8;
    int64_t      blk = (int64_t)(AN_BLOCK_BYTES / (row ? row : 1));
    int64_t     *x = NULL, *d = NULL, *cap = NULL, *tr = NULL;
    double      *rs = NULL, *ph = NULL, rcv[RC_COUNT];
    moe_status_t st = MOE_OK;

    if (blk < 1)
        blk = 1;
    if (blk > a->S)
        blk = a->S > 0 ? a->S : 1;
    x = malloc((size_t)(blk * L * E) * 8);
    d = a->has_dropped ? malloc((size_t)(blk * L * E) * 8) : NULL;
    cap = a->has_capacity ? malloc((size_t)(blk * L) * 8) : NULL;
    rs = a->has_router ? malloc((size_t)(blk * L) * (size_t)nrc * 8) : NULL;
    ph = a->has_phase ? malloc((size_t)(blk * L * P) * (size_t)a->nph * 8) : NULL;
    tr = a->has_traffic ? malloc((size_t)(blk * L * P) * (size_t)a->ntc * 8) : NULL;
    if (!x || (a->has_dropped && !d) || (a->has_capacity && !cap) || (a->has_router && !rs) ||
        (a->has_phase && !ph) || (a->has_traffic && !tr)) {
        st = MOE_ERROR_SET(log, MOE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (s0 = 0; s0 < a->S; s0 += blk) {
        n = a->S - s0 < blk ? a->S - s0 : blk;
        if ((st = moe_tel_reader_read(r, MOE_TEL_ROUTED, MOE_TEL_I64, s0, n, x)) != MOE_OK ||
            (d && (st = moe_tel_reader_read(r, MOE_TEL_DROPPED, MOE_TEL_I64, s0, n, d))) ||
            (cap && (st = moe_tel_reader_read(r, MOE_TEL_CAPACITY, MOE_TEL_I64, s0, n, cap))) ||
            (rs && (st = moe_tel_reader_read(r, MOE_TEL_ROUTER, MOE_TEL_F64, s0, n, rs))) ||
            (ph && (st = moe_tel_reader_read(r, MOE_TEL_PHASE, MOE_TEL_F64, s0, n, ph))) ||
            (tr && (st = moe_tel_reader_read(r, MOE_TEL_TRAFFIC, MOE_TEL_I64, s0, n, tr))) ||
            (st = an_check_block(a, log, a->path, s0, n, x, d, cap, tr)) != MOE_OK)
            goto out;
        for (s = 0; s < n; s++) {
            for (l = 0; l < L; l++) {
                const double *rv = rs ? rs + ((size_t)(s * L + l)) * (size_t)nrc : NULL;
                for (c = 0; c < RC_COUNT; c++)
                    rcv[c] = rv && a->rc[c] >= 0 ? rv[a->rc[c]] : NAN;
                an_step_layer(a, s0 + s, l, x + (s * L + l) * E, d ? d + (s * L + l) * E : NULL,
                              cap ? cap[s * L + l] : -2, rv ? rcv : NULL);
            }
            if (ph) {
                const double *p0 = ph + (size_t)(s * L * P) * (size_t)a->nph;
                int64_t       i, p;
                for (l = 0; l < L; l++)
                    for (p = 0; p < P; p++)
                        for (i = 0; i < a->nph; i++)
                            a->phase_rank[p * a->nph + i] += p0[(l * P + p) * a->nph + i];
            }
            if (tr) {
                const int64_t *t0 = tr + (size_t)(s * L * P) * (size_t)a->ntc;
                int64_t        i, p;
                for (l = 0; l < L; l++)
                    for (p = 0; p < P; p++)
                        for (i = 0; i < a->ntc; i++)
                            a->traffic_rank[p * a->ntc + i] += t0[(l * P + p) * a->ntc + i];
            }
        }
    }
out:
    free(x);
    free(d);
    free(cap);
    free(rs);
    free(ph);
    free(tr);
    return st;
}

/* a->lid: the layer id of each file layer (an imported log keeps its own ids, e.g. 0, 9, 20). */
static int an_layer_ids(moe_tel_reader_t *r, an_st_t *a)
{
    int64_t l;

    if ((a->lid = malloc((size_t)(a->L > 0 ? a->L : 1) * 8)) == NULL)
        return -1;
    if (moe_tel_reader_layer_ids(r, a->lid) == MOE_OK)
        return 0;
    for (l = 0; l < a->L; l++)
        a->lid[l] = l;
    return 0;
}

/* Pair-weighted mean over the layers of each layer's pooled normalised load entropy. */
static double an_pooled_entropy(an_st_t *a)
{
    double  num = 0, den = 0;
    int64_t l;

    a->empty_layers = 0;
    for (l = 0; l < a->L; l++) {
        am_balance_t bb;
        am_balance(a->routed_le + l * a->E, (size_t)a->E, &bb);
        if (!(bb.total > 0)) {
            a->empty_layers++;
            continue;
        }
        if (!isfinite(bb.entropy_norm))
            continue;
        num += bb.total * bb.entropy_norm;
        den += bb.total;
    }
    return den > 0 ? num / den : NAN;
}

/* ---------------------------------------------------------------- legacy summary ------ */

/*
 * The router of the run: the "router = NAME" line of the stored configuration (root attribute
 * "config"); a run file without one predates the router option and used softmax; an imported
 * log's router is unknown (null).
 */
static void an_router_name(moe_tel_reader_t *r, cJSON *cfg, int imported)
{
    char *ini = NULL, *p, name[40] = "";

    if (moe_tel_reader_attr_str(r, "/", "config", &ini) == MOE_OK && ini) {
        for (p = ini; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            if (strncmp(p, "router", 6) == 0 && sscanf(p, "router = %39[^\n ]", name) == 1)
                break;
            name[0] = '\0';
        }
    }
    free(ini);
    if (name[0])
        cJSON_AddStringToObject(cfg, "router", name);
    else if (imported)
        cJSON_AddNullToObject(cfg, "router");
    else
        cJSON_AddStringToObject(cfg, "router", "softmax");
}

static void an_legacy(moe_tel_reader_t *r, cJSON *root, const an_st_t *a, const char *path)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    static const char    *cfg_strs[] = {"drop_policy", "workload", "exchange", "placement",
                                        "activation", "telemetry_mode"};
    cJSON                *cfg;
    size_t                i;

    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddNumberToObject(root, "schema_version", (double)in->schema_version);
    an_add_str_attr(r, root, "moerun_version");
    an_add_str_attr(r, root, "status");
    cJSON_AddNumberToObject(root, "steps_completed", (double)in->steps_completed);
    cJSON_AddNumberToObject(root, "steps_in_file", (double)in->steps);
    an_add_str_attr(r, root, "start_time");
    an_add_str_attr(r, root, "end_time");
    cfg = cJSON_AddObjectToObject(root, "config");
    cJSON_AddNumberToObject(cfg, "experts", (double)in->experts);
    an_add_count(cfg, "top_k", in->top_k);
    cJSON_AddNumberToObject(cfg, "layers", (double)in->layers);
    an_add_count(cfg, "d_model", in->d_model);
    an_add_count(cfg, "d_ffn", in->d_ffn);
    an_add_count(cfg, "tokens_per_rank", in->tokens_per_rank);
    an_add_num(cfg, "capacity_factor", in->capacity_factor);
    for (i = 0; i < sizeof(cfg_strs) / sizeof(cfg_strs[0]); i++)
        an_add_str_attr(r, cfg, cfg_strs[i]);
    an_router_name(r, cfg, in->imported);
    an_add_count(root, "ranks", in->nranks);
    an_add_count(root, "nodes", in->nnodes);
    /* where the file came from: "" for a run, "import:<format>" for moerun-import */
    cJSON_AddStringToObject(root, "source", in->source[0] ? in->source : "run");
    cJSON_AddBoolToObject(root, "imported", in->imported);
    /* throughput as the run measured it: the summary attribute written at close */
    {
        char  *sj = NULL;
        cJSON *sum = NULL;
        if (moe_tel_reader_attr_str(r, "/", "summary", &sj) == MOE_OK)
            sum = cJSON_Parse(sj);
        an_add_num(root, "tokens_per_s", an_num(sum, "tokens_per_s"));
        an_add_num(root, "elapsed_s", an_num(sum, "elapsed_s"));
        cJSON_Delete(sum);
        free(sj);
    }
}

static void an_hosts(moe_tel_reader_t *r, cJSON *root, int64_t P)
{
    char (*host)[64];
    cJSON  *arr = cJSON_AddArrayToObject(root, "hosts");
    int64_t i, j;

    if (!moe_tel_reader_has(r, MOE_TEL_HOSTNAME) || (host = calloc((size_t)P, 64)) == NULL)
        return;
    if (moe_tel_reader_strings(r, MOE_TEL_HOSTNAME, P, 64, &host[0][0]) == MOE_OK)
        for (i = 0; i < P; i++) {
            for (j = 0; j < i && strcmp(host[j], host[i]) != 0; j++)
                ;
            if (j == i)
                cJSON_AddItemToArray(arr, cJSON_CreateString(host[i]));
        }
    free(host);
}

#define AN_EVENTS_MAX 100000 /* events kept in the report (about 100 MB of JSON tree) */
static moe_status_t an_events(moe_tel_reader_t *r, cJSON *root, int64_t nevents)
{
    moe_tel_event_t *ev = malloc(AN_EVENT_CHUNK * sizeof(*ev));
    cJSON           *arr = cJSON_AddArrayToObject(root, "events");
    int64_t          i0, i, n;
    moe_status_t     st = MOE_OK;

    if (ev == NULL)
        return MOE_ERR_NOMEM;
    /* memory bound: the report keeps the first AN_EVENTS_MAX events and counts the rest */
    if (nevents > AN_EVENTS_MAX) {
        cJSON_AddNumberToObject(root, "events_omitted", (double)(nevents - AN_EVENTS_MAX));
        nevents = AN_EVENTS_MAX;
    }
    for (i0 = 0; i0 < nevents && st == MOE_OK; i0 += AN_EVENT_CHUNK) {
        n = nevents - i0 < AN_EVENT_CHUNK ? nevents - i0 : AN_EVENT_CHUNK;
        st = moe_tel_reader_events(r, i0, n, ev);
        for (i = 0; st == MOE_OK && i < n && arr; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "step", (double)ev[i].step);
            cJSON_AddNumberToObject(o, "layer", ev[i].layer);
            cJSON_AddNumberToObject(o, "expert", ev[i].expert);
            cJSON_AddStringToObject(o, "kind", ev[i].kind_name);
            an_add_num(o, "value", ev[i].value);
            an_add_num(o, "threshold", ev[i].threshold);
            cJSON_AddStringToObject(o, "message", ev[i].message);
            cJSON_AddItemToArray(arr, o);
        }
    }
    free(ev);
    return st;
}

/* ---------------------------------------------------------------- analyses ------------ */

static int an_cmp_desc_share(const void *x, const void *y)
{
    const double *p = x, *q = y;
    return (p[0] < q[0]) - (p[0] > q[0]);
}

static void an_utilisation(cJSON *an, cJSON *root, cJSON *fnd, const an_st_t *a)
{
    cJSON  *sec, *layers, *legacy, *bal, *empty;
    int64_t nl = 0;
    double *mm, *cvv, *gv, worst = 0;
    int64_t l, e, L = a->L, E = a->E, worst_l = 0, worst_e = 0, b;
    static const double pct[3] = {50, 90, 95};
    static const char  *pname[3] = {"p50", "p90", "p95"};

    if (a->S == 0 || a->routed == 0) {
        an_section(an, "utilisation", a->S == 0 ? "no steps in the file (empty run)"
                                                : "no (token, expert) pairs were routed");
        cJSON_AddArrayToObject(root, "layers_load");
        return;
    }
    sec = an_section(an, "utilisation", NULL);
    layers = cJSON_AddArrayToObject(sec, "layers");
    legacy = cJSON_AddArrayToObject(root, "layers_load");
    mm = malloc((size_t)L * 8 * 3);
    if (mm == NULL)
        return;
    cvv = mm + L;
    gv = mm + 2 * L;
    cJSON_AddNumberToObject(sec, "fair_share", 1.0 / (double)E);
    empty = cJSON_AddArrayToObject(sec, "empty_layers");
    for (l = 0; l < L; l++) {
        const int64_t *x = a->routed_le + l * E;
        am_balance_t   bb;
        cJSON         *o, *g, *under, *over, *m;
        double        *sh;

        am_balance(x, (size_t)E, &bb);
        if (!(bb.total > 0)) {
            /* no rows for this layer (a sparse log): missing data, not dead experts */
            cJSON_AddItemToArray(empty, cJSON_CreateNumber((double)a->lid[l]));
            continue;
        }
        o = cJSON_CreateObject();
        sh = malloc((size_t)E * 8);
        mm[nl] = bb.max_mean;
        cvv[nl] = bb.cv;
        gv[nl] = bb.gini;
        nl++;
        if (isfinite(bb.max_mean) && bb.max_mean > worst) {
            worst = bb.max_mean;
            worst_l = l;
            worst_e = bb.argmax;
        }
        cJSON_AddNumberToObject(o, "layer", (double)a->lid[l]);
        cJSON_AddItemToObject(o, "tokens", an_i64_array(x, E));
        for (e = 0; sh && e < E; e++)
            sh[e] = bb.total > 0 ? (double)x[e] / bb.total : NAN;
        if (sh)
            cJSON_AddItemToObject(o, "share", an_num_array(sh, E));
        free(sh);
        cJSON_AddNumberToObject(o, "total", bb.total);
        an_add_num(o, "max_mean", bb.max_mean);
        an_add_num(o, "cv", bb.cv);
        an_add_num(o, "gini", bb.gini);
        g = cJSON_AddObjectToObject(o, "min");
        cJSON_AddNumberToObject(g, "expert", (double)bb.argmin);
        cJSON_AddNumberToObject(g, "tokens", (double)x[bb.argmin]);
        g = cJSON_AddObjectToObject(o, "max");
        cJSON_AddNumberToObject(g, "expert", (double)bb.argmax);
        cJSON_AddNumberToObject(g, "tokens", (double)x[bb.argmax]);
        an_add_num(o, "min_max_ratio", x[bb.argmax] > 0 ? (double)x[bb.argmin] / (double)x[bb.argmax] : NAN);
        /* under-loaded: share < 0.5 fair; over-loaded: share > 1.5 fair */
        under = cJSON_AddArrayToObject(o, "underloaded");
        over = cJSON_AddArrayToObject(o, "overloaded");
        for (e = 0; e < E; e++) {
            double r = bb.total > 0 ? (double)x[e] * (double)E / bb.total : NAN;
            cJSON *u;
            if (!(r < 0.5) && !(r > 1.5))
                continue;
            u = cJSON_CreateObject();
            cJSON_AddNumberToObject(u, "expert", (double)e);
            cJSON_AddNumberToObject(u, "share_over_fair", r);
            cJSON_AddItemToArray(r < 0.5 ? under : over, u);
        }
        cJSON_AddItemToArray(layers, o);
        /* legacy per-layer summary (first --json format) */
        m = cJSON_CreateObject();
        cJSON_AddNumberToObject(m, "layer", (double)a->lid[l]);
        cJSON_AddNumberToObject(m, "routed", bb.total);
        an_add_num(m, "max_mean_load", bb.max_mean);
        g = cJSON_AddObjectToObject(m, "most_loaded");
        cJSON_AddNumberToObject(g, "expert", (double)bb.argmax);
        cJSON_AddNumberToObject(g, "routed", (double)x[bb.argmax]);
        an_add_num(g, "share", bb.total > 0 ? (double)x[bb.argmax] / bb.total : NAN);
        g = cJSON_AddObjectToObject(m, "least_loaded");
        cJSON_AddNumberToObject(g, "expert", (double)bb.argmin);
        cJSON_AddNumberToObject(g, "routed", (double)x[bb.argmin]);
        an_add_num(g, "share", bb.total > 0 ? (double)x[bb.argmin] / bb.total : NAN);
        cJSON_AddItemToArray(legacy, m);
    }
    bal = cJSON_AddObjectToObject(sec, "across_layers");
    {
        const char *names[3] = {"max_mean", "cv", "gini"};
        double     *vv[3] = {mm, cvv, gv};
        int         k, q;
        for (k = 0; k < 3; k++) {
            cJSON *o = cJSON_AddObjectToObject(bal, names[k]);
            double mn = INFINITY, mx = -INFINITY;
            for (l = 0; l < nl; l++)
                if (isfinite(vv[k][l])) {
                    mn = fmin(mn, vv[k][l]);
                    mx = fmax(mx, vv[k][l]);
                }
            an_add_num(o, "min", mn);
            an_add_num(o, "max", mx);
            for (q = 0; q < 3; q++)
                an_add_num(o, pname[q], am_percentile(vv[k], (size_t)nl, pct[q]));
        }
    }
    /* heatmap: expert x step bin per layer (summing expert e of different layers means
     * nothing), for the AN_HEAT_LAYERS layers with the highest max/mean, one scale (max) */
    {
        cJSON  *hm = cJSON_AddObjectToObject(sec, "heatmap"), *starts, *hl;
        int64_t hb = a->hb, pick[AN_HEAT_LAYERS], np = 0, q, z;
        double *st = malloc((size_t)hb * 8), mxv = 0;
        cJSON_AddStringToObject(hm, "description",
                                "mean pairs per step, per expert (rows) and step bin (columns), one "
                                "panel per layer: the layers with the highest max/mean");
        starts = cJSON_AddArrayToObject(hm, "bin_start_step");
        for (b = 0; b < hb; b++)
            cJSON_AddItemToArray(starts, cJSON_CreateNumber((double)((b * a->S + hb - 1) / hb)));
        for (q = 0; q < AN_HEAT_LAYERS; q++) {
            int64_t best = -1;
            double  bv = -1;
            for (l = 0; l < L; l++) {
                am_balance_t bb;
                int          taken = 0;
                for (z = 0; z < np; z++)
                    taken |= pick[z] == l;
                am_balance(a->routed_le + l * E, (size_t)E, &bb);
                if (!taken && bb.total > 0 && isfinite(bb.max_mean) && bb.max_mean > bv) {
                    bv = bb.max_mean;
                    best = l;
                }
            }
            if (best < 0)
                break;
            pick[np++] = best;
        }
        hl = cJSON_AddArrayToObject(hm, "layers");
        for (q = 0; st && q < np; q++) {
            cJSON *lo = cJSON_CreateObject(), *rows;
            l = pick[q];
            cJSON_AddNumberToObject(lo, "layer", (double)a->lid[l]);
            rows = cJSON_AddArrayToObject(lo, "values");
            for (e = 0; e < E; e++) {
                for (b = 0; b < hb; b++) {
                    /* bin b holds steps s with s * hb / S == b: [ceil(b S/hb), ceil((b+1) S/hb)) */
                    int64_t n = ((b + 1) * a->S + hb - 1) / hb - (b * a->S + hb - 1) / hb;
                    st[b] = n > 0 ? (double)a->heat[(b * L + l) * E + e] / (double)n : NAN;
                    if (isfinite(st[b]) && st[b] > mxv)
                        mxv = st[b];
                }
                cJSON_AddItemToArray(rows, an_num_array(st, hb));
            }
            cJSON_AddItemToArray(hl, lo);
        }
        cJSON_AddNumberToObject(hm, "max", mxv);
        free(st);
    }
    if (worst >= AN_IMB_WARN)
        an_finding(fnd, "imbalance", worst >= AN_IMB_CRIT ? "critical" : "warning",
                   "utilisation", worst, worst >= AN_IMB_CRIT ? AN_IMB_CRIT : AN_IMB_WARN,
                   "expert load imbalance: layer %lld max/mean %.2f (expert %lld takes %.1f%%)",
                   (long long)a->lid[worst_l], worst, (long long)worst_e, 100.0 * worst / (double)E);
    else
        an_finding(fnd, "imbalance", "info", "utilisation", worst, AN_IMB_WARN,
                   "expert load is balanced: worst layer max/mean %.2f", worst);
    free(mm);
}

static void an_entropy(cJSON *an, cJSON *fnd, const an_st_t *a)
{
    cJSON  *sec, *arr, *dead, *col, *aon;
    int64_t l, e, L = a->L, E = a->E, ndead = 0, worst_dead = 0;
    double  worst = 1.0, *ser;
    int64_t b;

    if (a->S == 0 || a->routed == 0) {
        an_section(an, "entropy", a->S == 0 ? "no steps in the file (empty run)"
                                            : "no (token, expert) pairs were routed");
        return;
    }
    sec = an_section(an, "entropy", NULL);
    arr = cJSON_AddArrayToObject(sec, "layers");
    for (l = 0; l < L; l++) {
        am_balance_t bb;
        cJSON       *o;
        am_balance(a->routed_le + l * E, (size_t)E, &bb);
        if (!(bb.total > 0))
            continue; /* empty layer: listed under utilisation.empty_layers */
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", (double)a->lid[l]);
        an_add_num(o, "entropy_bits", bb.entropy);
        an_add_num(o, "entropy_norm", bb.entropy_norm);
        an_add_num(o, "effective_experts", bb.eff_experts);
        if (isfinite(bb.entropy_norm) && bb.entropy_norm < worst)
            worst = bb.entropy_norm;
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddNumberToObject(sec, "dead_window_steps", (double)a->W);
    dead = cJSON_AddArrayToObject(sec, "dead_experts");
    for (l = 0; l < L; l++) {
        int64_t nl = 0;
        for (e = 0; e < E; e++) {
            int64_t i = l * E + e;
            cJSON  *o;
            if (a->dead_le[i] < 0)
                continue;
            o = cJSON_CreateObject();
            nl++;
            cJSON_AddNumberToObject(o, "layer", (double)a->lid[l]);
            cJSON_AddNumberToObject(o, "expert", (double)e);
            cJSON_AddNumberToObject(o, "since_step", (double)a->dead_le[i]);
            cJSON_AddBoolToObject(o, "dead_at_end", a->zrun_le[i] >= a->W);
            cJSON_AddNumberToObject(o, "zero_steps_at_end", (double)a->zrun_le[i]);
            cJSON_AddItemToArray(dead, o);
        }
        ndead += nl;
        if (nl > worst_dead)
            worst_dead = nl;
    }
    cJSON_AddNumberToObject(sec, "collapse_share", a->cthr_pairs);
    cJSON_AddNumberToObject(sec, "collapse_token_share", a->cthr_tokens);
    cJSON_AddNumberToObject(sec, "collapse_window_steps", (double)a->CW);
    cJSON_AddNumberToObject(sec, "always_on_rest_entropy", AN_ALWAYS_ON_REST);
    col = cJSON_AddArrayToObject(sec, "collapse");
    aon = cJSON_AddArrayToObject(sec, "always_on");
    for (l = 0; l < L; l++)
        if (a->cbegan_l[l] >= 0) {
            /* collapse or always-on: at the step the condition had held for the whole
             * window, does the rest of the layer's load spread evenly over the other E - 1
             * experts (normalised entropy >= AN_ALWAYS_ON_REST)? Then one expert is always
             * on (a shared-expert pattern), not a collapse of routing onto few experts */
            const int64_t *x = a->routed_le + l * E;
            int64_t        top = a->ctop_l[l], q;
            double         hrest = a->crest_l[l], tot = 0;
            cJSON         *o = cJSON_CreateObject();
            for (e = 0; e < E; e++)
                tot += (double)x[e];
            q = isfinite(hrest) && hrest >= AN_ALWAYS_ON_REST;
            cJSON_AddNumberToObject(o, "layer", (double)a->lid[l]);
            cJSON_AddNumberToObject(o, "began_step", (double)a->cbegan_l[l]);
            cJSON_AddNumberToObject(o, "top2_share", a->cshare_l[l]);
            cJSON_AddNumberToObject(o, "top1_token_share", a->ctok_l[l]);
            cJSON_AddNumberToObject(o, "expert", (double)top);
            an_add_num(o, "expert_token_share",
                       tot > 0 && a->K > 0 ? (double)a->K * (double)x[top] / tot : NAN);
            an_add_num(o, "expert_pair_share", tot > 0 ? (double)x[top] / tot : NAN);
            an_add_num(o, "rest_entropy_norm", hrest);
            cJSON_AddItemToArray(q ? aon : col, o);
        }
    ser = malloc((size_t)a->nb * 8);
    if (ser) {
        for (b = 0; b < a->nb; b++)
            ser[b] = a->b_n[b] > 0 ? a->b_ent[b] / a->b_n[b] : NAN;
        cJSON_AddItemToObject(sec, "series_entropy_norm", an_num_array(ser, a->nb));
        for (b = 0; b < a->nb; b++)
            ser[b] = a->b_n[b] > 0 ? a->b_imb[b] / a->b_n[b] : NAN;
        cJSON_AddItemToObject(sec, "series_max_mean", an_num_array(ser, a->nb));
        free(ser);
    }
    if (E >= 2)
        an_finding(fnd, "entropy", worst < AN_ENT_CRIT ? "critical" : worst < AN_ENT_WARN ? "warning" : "info",
                   "entropy", worst, AN_ENT_WARN,
                   "lowest normalised routing entropy %.3f (effective experts %.1f of %lld)", worst,
                   exp2(worst * log2((double)E)), (long long)E);
    if (ndead > 0)
        an_finding(fnd, "dead_experts", 4 * worst_dead >= E ? "critical" : "warning", "entropy",
                   (double)ndead, 0, "%lld dead expert(s) (no tokens for %lld consecutive steps)",
                   (long long)ndead, (long long)a->W);
    if (cJSON_GetArraySize(aon) > 0) {
        const cJSON *c0 = cJSON_GetArrayItem(aon, 0);
        double       ts = an_num(c0, "expert_token_share");
        an_finding(fnd, "always_on", "warning", "entropy", isfinite(ts) ? ts : an_num(c0, "expert_pair_share"),
                   isfinite(ts) ? a->cthr_tokens : a->cthr_pairs,
                   "always-on expert in %d layer(s): layer %g expert %g %s %.0f%% of %s while "
                   "the other %lld experts stay evenly used (normalised entropy %.2f): a "
                   "shared-expert pattern, not a collapse",
                   cJSON_GetArraySize(aon), an_num(c0, "layer"), an_num(c0, "expert"),
                   isfinite(ts) ? "is chosen by" : "takes",
                   100 * (isfinite(ts) ? ts : an_num(c0, "expert_pair_share")),
                   isfinite(ts) ? "tokens" : "pairs", (long long)(E - 1),
                   an_num(c0, "rest_entropy_norm"));
    }
    if (cJSON_GetArraySize(col) > 0) {
        const cJSON *c0 = cJSON_GetArrayItem(col, 0);
        an_finding(fnd, "collapse", "critical", "entropy", an_num(c0, "top2_share"), AN_COLLAPSE_SHARE,
                   "routing collapse in %d layer(s): layer %g from step %g: top-2 experts take "
                   "%.0f%% of pairs, the top expert is chosen by %.0f%% of tokens",
                   cJSON_GetArraySize(col), an_num(c0, "layer"), an_num(c0, "began_step"),
                   100 * an_num(c0, "top2_share"), 100 * an_num(c0, "top1_token_share"));
    }
}

/* Token-weighted mean of router column c over the first (w = 0) / last (w = 1) 10% of steps. */
static double an_window_mean(const an_st_t *a, int c, int w)
{
    double n = w ? a->dec_last_n[c] : a->dec_first_n[c];
    return a->rc[c] >= 0 && n > 0 ? (w ? a->dec_last[c] : a->dec_first[c]) / n : NAN;
}

/*
 * Gate confidence of an imported log whose gating_probs are renormalised top-k weights (they
 * sum to 1): the router's top-1 probability is unknown, the top-1 weight is reported instead.
 */
static int an_gating_normalised(moe_tel_reader_t *r, cJSON *an, cJSON *fnd)
{
    char  *probs = NULL;
    double w1;
    cJSON *sec;
    int    is_norm;

    if (moe_tel_reader_attr_str(r, "/", "import_probs", &probs) != MOE_OK)
        return 0;
    is_norm = strcmp(probs, "normalized") == 0;
    free(probs);
    if (!is_norm || moe_tel_reader_attr_f64(r, "/", "import_top1_weight_mean", &w1) != MOE_OK)
        return 0;
    sec = an_section(an, "gating", NULL);
    cJSON_AddStringToObject(sec, "probs", "renormalised top-k");
    cJSON_AddStringToObject(sec, "description",
                            "the log's gating_probs sum to 1 per token: they are the selected "
                            "experts' renormalised weights, not the router's probabilities");
    an_add_num(sec, "top1_weight_mean", w1);
    cJSON_AddNullToObject(sec, "top1_prob_mean");
    cJSON_AddStringToObject(sec, "top1_prob_missing",
                            "missing: renormalised weights do not give the router's top-1 probability");
    an_finding(fnd, "saturation", "info", "gating", w1, AN_TOP1_SAT,
               "gate weights are renormalised top-k (sum 1): mean top-1 weight %.3f over all "
               "(token, layer) rows; the router's top-1 probability is not in the log", w1);
    return 1;
}

static void an_gating(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a)
{
    cJSON  *sec, *dr, *h;
    int     c;
    int64_t b, i;
    double *ser, first_top1, last_top1, mean_top1;

    if ((!a->has_router || a->rc[RC_TOP1] < 0 || a->rc_cnt[RC_TOP1] == 0) &&
        an_gating_normalised(r, an, fnd))
        return;
    if (!a->has_router || a->rc[RC_TOP1] < 0) {
        an_section(an, "gating", !a->has_router ? "steps/router absent"
                                                : "steps/router has no top1_prob column");
        return;
    }
    if (a->rc_n == 0) {
        an_section(an, "gating", "no steps in the file (empty run)");
        return;
    }
    if (a->rc_cnt[RC_TOP1] == 0) {
        an_section(an, "gating", "steps/router top1_prob holds no values (not in the log)");
        return;
    }
    sec = an_section(an, "gating", NULL);
    for (c = 0; c < RC_COUNT; c++) {
        char key[64];
        snprintf(key, sizeof(key), "%s_mean", an_rc_names[c]);
        an_add_num(sec, key, a->rc[c] >= 0 && a->rc_cnt[c] > 0 ? a->rc_sum[c] / a->rc_cnt[c] : NAN);
    }
    cJSON_AddStringToObject(sec, "means", "token-weighted over all steps and layers");
    dr = cJSON_AddObjectToObject(sec, "drift");
    cJSON_AddStringToObject(dr, "description",
                            "window means: token-weighted over the first and last 10% of steps");
    for (c = 0; c < RC_COUNT; c++) {
        cJSON *o;
        if (a->rc[c] < 0 || a->rc_cnt[c] == 0)
            continue;
        o = cJSON_AddObjectToObject(dr, an_rc_names[c]);
        an_add_num(o, "first", an_window_mean(a, c, 0));
        an_add_num(o, "last", an_window_mean(a, c, 1));
        an_add_num(o, "change", an_window_mean(a, c, 1) - an_window_mean(a, c, 0));
    }
    first_top1 = an_window_mean(a, RC_TOP1, 0);
    last_top1 = an_window_mean(a, RC_TOP1, 1);
    mean_top1 = a->rc_sum[RC_TOP1] / a->rc_cnt[RC_TOP1];
    {
        double ls0 = an_window_mean(a, RC_LSTD, 0), ls1 = an_window_mean(a, RC_LSTD, 1);
        char   lstd[96] = "";
        int    sat = (isfinite(last_top1) && last_top1 >= AN_TOP1_SAT) ||
                  (isfinite(ls0) && isfinite(ls1) && ls0 > 0 && ls1 >= 2 * ls0);
        if (isfinite(ls0) && isfinite(ls1))
            snprintf(lstd, sizeof(lstd), ", logit std %.3g -> %.3g (first -> last 10%%)", ls0, ls1);
        cJSON_AddBoolToObject(sec, "saturation", sat);
        if (sat)
            an_finding(fnd, "saturation", "warning", "gating", last_top1, AN_TOP1_SAT,
                       "gate saturation: mean top-1 probability %.3f (all tokens); %.3f in the "
                       "last 10%% of steps, %.3f in the first 10%%%s",
                       mean_top1, last_top1, first_top1, lstd);
        else
            an_finding(fnd, "saturation", "info", "gating", mean_top1, AN_TOP1_SAT,
                       "gate confidence: mean top-1 probability %.3f (all tokens); last 10%% of "
                       "steps %.3f, first 10%% %.3f", mean_top1, last_top1, first_top1);
    }
    ser = malloc((size_t)a->nb * 8);
    for (c = 0; ser && c < RC_COUNT; c++) {
        char key[64];
        if (a->rc[c] < 0 || c == RC_ENT)
            continue;
        for (b = 0; b < a->nb; b++)
            ser[b] = a->b_rcn[b * RC_COUNT + c] > 0 ? a->b_rc[b * RC_COUNT + c] / a->b_rcn[b * RC_COUNT + c] : NAN;
        snprintf(key, sizeof(key), "series_%s", an_rc_names[c]);
        cJSON_AddItemToObject(sec, key, an_num_array(ser, a->nb));
    }
    free(ser);
    h = cJSON_AddObjectToObject(sec, "histogram");
    {
        double edges[AN_HIST_BINS + 1];
        for (i = 0; i <= AN_HIST_BINS; i++)
            edges[i] = (double)i / AN_HIST_BINS;
        cJSON_AddItemToObject(h, "edges", an_num_array(edges, AN_HIST_BINS + 1));
        cJSON_AddItemToObject(h, "top1_prob", an_i64_array(a->hist_top1, AN_HIST_BINS));
        if (a->rc[RC_MARGIN] >= 0)
            cJSON_AddItemToObject(h, "top1_top2_margin", an_i64_array(a->hist_margin, AN_HIST_BINS));
        cJSON_AddStringToObject(h, "unit", "step x layer samples");
    }
}

/*
 * Aux-loss-free balancing bias (steps/expert_bias, --balance-bias RATE): over the last
 * window W = clamp(S / 4, 2, 1000) steps, the step size RATE is the largest change of any
 * expert's bias between two steps, and a layer has converged when no expert's bias moved by
 * more than a quarter of what W - 1 steps in one direction would give: max_e |b_end - b_start|
 * <= 0.25 * RATE * (W - 1) (a settled bias oscillates around its value). max/mean load over
 * the window is reported next to it.
 */
static void an_balance_bias(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a)
{
    int64_t  L = a->L, E = a->E, S = a->S, W, s0, s, l, e, not_conv = 0;
    double  *b = NULL, rate = 0;
    int64_t *ld = NULL;
    cJSON   *sec, *arr;

    if (!moe_tel_reader_has(r, MOE_TEL_EXPERT_BIAS) || S < 2) {
        an_section(an, "balance_bias", S < 2 ? "fewer than 2 steps" : "steps/expert_bias absent");
        return;
    }
    W = S / 4 < 2 ? 2 : S / 4 > 1000 ? 1000 : S / 4;
    s0 = S - W;
    b = malloc((size_t)(W * L * E) * sizeof(double));
    ld = malloc((size_t)(W * L * E) * sizeof(int64_t));
    if (!b || !ld || moe_tel_reader_read(r, MOE_TEL_EXPERT_BIAS, MOE_TEL_F64, s0, W, b) != MOE_OK ||
        moe_tel_reader_read(r, MOE_TEL_ROUTED, MOE_TEL_I64, s0, W, ld) != MOE_OK) {
        an_section(an, "balance_bias", "steps/expert_bias unreadable");
        goto out;
    }
    for (s = 1; s < W; s++)
        for (e = 0; e < L * E; e++)
            rate = fmax(rate, fabs(b[s * L * E + e] - b[(s - 1) * L * E + e]));
    if (rate == 0) {
        an_section(an, "balance_bias", "balancing bias off (constant bias)");
        goto out;
    }
    sec = an_section(an, "balance_bias", NULL);
    cJSON_AddNumberToObject(sec, "rate", rate);
    cJSON_AddNumberToObject(sec, "window_steps", (double)W);
    arr = cJSON_AddArrayToObject(sec, "layers");
    for (l = 0; l < L; l++) {
        double drift = 0, mm = 0;
        cJSON *o = cJSON_CreateObject();
        for (e = 0; e < E; e++)
            drift = fmax(drift, fabs(b[((W - 1) * L + l) * E + e] - b[l * E + e]));
        for (s = 0; s < W; s++) {
            double mx = 0, tot = 0;
            for (e = 0; e < E; e++) {
                double v = (double)ld[(s * L + l) * E + e];
                mx = fmax(mx, v);
                tot += v;
            }
            mm += tot > 0 ? mx * E / tot : 0;
        }
        cJSON_AddNumberToObject(o, "layer", (double)l);
        cJSON_AddNumberToObject(o, "drift", drift);
        cJSON_AddBoolToObject(o, "converged", drift <= 0.25 * rate * (double)(W - 1));
        cJSON_AddNumberToObject(o, "max_mean_load", mm / W);
        not_conv += drift > 0.25 * rate * (double)(W - 1);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddBoolToObject(sec, "converged", not_conv == 0);
    if (not_conv > 0)
        an_finding(fnd, "balance_bias_drifting", "info", "balance_bias", (double)not_conv, 0,
                   "balancing bias still drifting in %lld of %lld layers over the last %lld "
                   "steps (rate %.3g): the run ended before it converged",
                   (long long)not_conv, (long long)L, (long long)W, rate);
out:
    free(b);
    free(ld);
}

static void an_balance_loss(cJSON *an, cJSON *fnd, const an_st_t *a)
{
    cJSON *sec;
    double r, rz, imb;

    if (!a->has_router || a->rc[RC_AUX] < 0) {
        an_section(an, "balance_loss", !a->has_router ? "steps/router absent"
                                                      : "steps/router has no aux_loss column");
        return;
    }
    if (a->rc_n == 0) {
        an_section(an, "balance_loss", "no steps in the file (empty run)");
        return;
    }
    if (a->rc_cnt[RC_AUX] == 0) {
        an_section(an, "balance_loss", "steps/router aux_loss holds no values (not in the log)");
        return;
    }
    sec = an_section(an, "balance_loss", NULL);
    r = am_corr_r(&a->corr_aux);
    rz = am_corr_r(&a->corr_z);
    imb = a->corr_aux.n > 0 ? a->corr_aux.sy / a->corr_aux.n : NAN;
    an_add_num(sec, "aux_loss_mean", a->rc_cnt[RC_AUX] > 0 ? a->rc_sum[RC_AUX] / a->rc_cnt[RC_AUX] : NAN);
    an_add_num(sec, "z_loss_mean", a->rc[RC_Z] >= 0 && a->rc_cnt[RC_Z] > 0 ? a->rc_sum[RC_Z] / a->rc_cnt[RC_Z] : NAN);
    an_add_num(sec, "max_mean_per_step_mean", imb);
    an_add_num(sec, "corr_aux_vs_max_mean", r);
    an_add_num(sec, "corr_z_vs_logit_max", rz);
    cJSON_AddNumberToObject(sec, "samples", a->corr_aux.n);
    if (isfinite(imb) && imb >= AN_IMB_WARN && !(r >= 0.3))
        an_finding(fnd, "aux_loss", "warning", "balance_loss", r, 0.3,
                   "aux loss does not track the measured imbalance (r = %.2f, per-step max/mean "
                   "%.2f): the balancing term is too weak or not acting", r, imb);
    else
        an_finding(fnd, "aux_loss", "info", "balance_loss", r, 0.3,
                   "aux loss vs per-step imbalance: r = %.2f (mean max/mean %.2f)", r, imb);
}

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

static void an_capacity(cJSON *an, cJSON *fnd, cJSON *rec, const an_st_t *a, double cf)
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

/* Reads expert_owner [E] and node [P]; returns 0 if both exist. */
static int an_owner_node(moe_tel_reader_t *r, int64_t E, int64_t P, int32_t **own_p,
                         int32_t **node_p)
{
    int32_t *own = malloc((size_t)E * 4), *node = malloc((size_t)P * 4);
    int64_t  i;

    *own_p = *node_p = NULL;
    if (!own || !node || !moe_tel_reader_has(r, MOE_TEL_EXPERT_OWNER) ||
        moe_tel_reader_read(r, MOE_TEL_EXPERT_OWNER, MOE_TEL_I32, 0, E, own) != MOE_OK) {
        free(own);
        free(node);
        return -1;
    }
    for (i = 0; i < E; i++)
        if (own[i] < 0 || own[i] >= P)
            own[i] = 0;
    if (!moe_tel_reader_has(r, MOE_TEL_NODE) ||
        moe_tel_reader_read(r, MOE_TEL_NODE, MOE_TEL_I32, 0, P, node) != MOE_OK) {
        for (i = 0; i < P; i++)
            node[i] = 0;
    }
    *own_p = own;
    *node_p = node;
    return 0;
}

static void an_communication(moe_tel_reader_t *r, cJSON *an, cJSON *root, cJSON *fnd,
                             const an_st_t *a, const int32_t *node)
{
    cJSON  *sec, *ph, *pr, *by, *mx;
    int     i, total = -1, xch[3], nx = 0, ex = -1;
    int64_t p, P = a->P;
    double  tot = 0, xs = 0, es = 0;
    char    miss[200] = "";

    if (!a->has_phase && !a->has_traffic && !moe_tel_reader_has(r, MOE_TEL_TRAFFIC_MATRIX)) {
        an_section(an, "communication", "steps/phase_time, steps/traffic and "
                                        "accumulated/traffic_matrix absent");
        return;
    }
    sec = an_section(an, "communication", NULL);
    /* phases */
    ph = cJSON_AddObjectToObject(root, "phase_seconds");
    if (a->has_phase && a->S > 0) {
        total = moe_tel_reader_column(r, MOE_TEL_PHASE, "total");
        ex = moe_tel_reader_column(r, MOE_TEL_PHASE, "expert");
        xch[0] = moe_tel_reader_column(r, MOE_TEL_PHASE, "dispatch");
        xch[1] = moe_tel_reader_column(r, MOE_TEL_PHASE, "combine");
        xch[2] = moe_tel_reader_column(r, MOE_TEL_PHASE, "counts");
        for (p = 0; p < P; p++) {
            if (total >= 0)
                tot += a->phase_rank[p * a->nph + total] / (double)P;
            for (i = 0; i < 3; i++)
                if (xch[i] >= 0)
                    xs += a->phase_rank[p * a->nph + xch[i]] / (double)P;
            if (ex >= 0)
                es += a->phase_rank[p * a->nph + ex] / (double)P;
        }
        nx = (xch[0] >= 0) + (xch[1] >= 0) + (xch[2] >= 0);
        for (i = 0; i < a->nph; i++) {
            double mean = 0;
            char **cols = NULL;
            int    nc = 0;
            cJSON *x;
            if (moe_tel_reader_attr_strlist(r, MOE_TEL_PHASE, "columns", &cols, &nc) != MOE_OK || i >= nc) {
                moe_tel_reader_strlist_free(cols, nc);
                break;
            }
            x = cJSON_AddObjectToObject(ph, cols[i]);
            for (p = 0; p < P; p++)
                mean += a->phase_rank[p * a->nph + i] / (double)P;
            cJSON_AddNumberToObject(x, "mean_over_ranks_s", mean);
            an_add_num(x, "share_of_total", tot > 0 ? mean / tot : NAN);
            /* a column "<phase>_<part>" (dispatch_inter, combine_inter) is part of the time
             * of column "<phase>": a sub-phase, shown inside it, never added to the others */
            {
                int    j;
                size_t n;
                for (j = 0; j < nc; j++) {
                    n = strlen(cols[j]);
                    if (j != i && strncmp(cols[i], cols[j], n) == 0 && cols[i][n] == '_') {
                        double pm = 0;
                        for (p = 0; p < P; p++)
                            pm += a->phase_rank[p * a->nph + j] / (double)P;
                        cJSON_AddStringToObject(x, "parent", cols[j]);
                        an_add_num(x, "share_of_parent", pm > 0 ? mean / pm : NAN);
                        break;
                    }
                }
            }
            moe_tel_reader_strlist_free(cols, nc);
        }
        pr = cJSON_AddArrayToObject(sec, "phase_per_rank");
        for (p = 0; p < P && p < 1024; p++)
            cJSON_AddItemToArray(pr, an_num_array(a->phase_rank + p * a->nph, a->nph));
        {
            char **cols = NULL;
            int    nc = 0;
            if (moe_tel_reader_attr_strlist(r, MOE_TEL_PHASE, "columns", &cols, &nc) == MOE_OK) {
                cJSON *cn = cJSON_AddArrayToObject(sec, "phase_columns");
                for (i = 0; i < nc; i++)
                    cJSON_AddItemToArray(cn, cJSON_CreateString(cols[i]));
                moe_tel_reader_strlist_free(cols, nc);
            }
        }
        an_add_num(sec, "exchange_share", nx > 0 && tot > 0 ? xs / tot : NAN);
        an_add_num(sec, "expert_share", ex >= 0 && tot > 0 ? es / tot : NAN);
        an_add_num(sec, "step_seconds_mean_over_ranks", tot);
        if (nx > 0 && tot > 0) {
            double sh = xs / tot;
            an_finding(fnd, "exchange_share",
                       sh >= AN_EXCH_CRIT ? "critical" : sh >= AN_EXCH_WARN ? "warning" : "info",
                       "communication", sh, AN_EXCH_WARN,
                       "token exchange (counts + dispatch + combine) takes %.1f%% of step time, "
                       "expert compute %.1f%%", 100 * sh, ex >= 0 ? 100 * es / tot : NAN);
        }
    } else {
        snprintf(miss, sizeof(miss), "phase times: %s", a->has_phase ? "no steps" : "steps/phase_time absent");
        cJSON_AddStringToObject(sec, "phases_missing", miss);
    }
    /* bytes: steps/traffic columns by name */
    by = cJSON_AddObjectToObject(sec, "bytes");
    {
        static const char *names[] = {"bytes_sent", "bytes_recv", "msgs_sent", "msgs_recv",
                                      "bytes_intra", "bytes_inter", "msgs_intra", "msgs_inter"};
        cJSON             *miss_arr = cJSON_AddArrayToObject(by, "missing");
        size_t             k;
        double             bsent = 0;
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            int col = a->has_traffic ? moe_tel_reader_column(r, MOE_TEL_TRAFFIC, names[k]) : -1;
            if (col < 0) {
                cJSON_AddItemToArray(miss_arr, cJSON_CreateString(names[k]));
                continue;
            }
            {
                double s = 0;
                for (p = 0; p < P; p++)
                    s += (double)a->traffic_rank[p * a->ntc + col];
                cJSON_AddNumberToObject(by, names[k], s);
                if (k == 0)
                    bsent = s;
            }
        }
        cJSON_AddNumberToObject(root, "bytes_sent", bsent);
        {
            int ci = moe_tel_reader_column(r, MOE_TEL_TRAFFIC, "bytes_intra");
            int cx = moe_tel_reader_column(r, MOE_TEL_TRAFFIC, "bytes_inter");
            if (ci >= 0 && cx >= 0) {
                double bi = an_num(by, "bytes_intra"), bx = an_num(by, "bytes_inter");
                an_add_num(by, "inter_share", bi + bx > 0 ? bx / (bi + bx) : NAN);
            }
        }
    }
    /* rank x rank matrix: intra/inter node and hotspots */
    mx = cJSON_AddObjectToObject(sec, "matrix");
    if (moe_tel_reader_has(r, MOE_TEL_TRAFFIC_MATRIX)) {
        int64_t *m = malloc((size_t)(P * P) * 8), q;
        if (m && moe_tel_reader_read(r, MOE_TEL_TRAFFIC_MATRIX, MOE_TEL_I64, 0, P, m) == MOE_OK) {
            double intra = 0, inter = 0, off = 0, mean;
            cJSON *hs = NULL, *lm;
            for (p = 0; p < P; p++)
                for (q = 0; q < P; q++) {
                    if (p == q)
                        continue;
                    off += (double)m[p * P + q];
                    if (node && node[p] == node[q])
                        intra += (double)m[p * P + q];
                    else
                        inter += (double)m[p * P + q];
                }
            cJSON_AddNumberToObject(mx, "offdiag_bytes", off);
            cJSON_AddNumberToObject(mx, "intra_node_bytes", intra);
            cJSON_AddNumberToObject(mx, "inter_node_bytes", inter);
            mean = P > 1 ? off / (double)(P * (P - 1)) : NAN;
            an_add_num(mx, "mean_pair_bytes", mean);
            hs = cJSON_AddArrayToObject(mx, "hotspots");
            /* the 5 largest off-diagonal pairs, with their ratio to the mean pair */
            {
                int64_t top[5][2];
                int     nt = 0, k, z;
                for (p = 0; p < P; p++)
                    for (q = 0; q < P; q++) {
                        if (p == q)
                            continue;
                        for (k = 0; k < nt && m[top[k][0] * P + top[k][1]] >= m[p * P + q]; k++)
                            ;
                        if (k >= 5)
                            continue;
                        for (z = (nt < 5 ? nt : 4); z > k; z--) {
                            top[z][0] = top[z - 1][0];
                            top[z][1] = top[z - 1][1];
                        }
                        top[k][0] = p;
                        top[k][1] = q;
                        if (nt < 5)
                            nt++;
                    }
                for (k = 0; k < nt; k++) {
                    cJSON *o = cJSON_CreateObject();
                    double v = (double)m[top[k][0] * P + top[k][1]];
                    cJSON_AddNumberToObject(o, "src", (double)top[k][0]);
                    cJSON_AddNumberToObject(o, "dst", (double)top[k][1]);
                    cJSON_AddNumberToObject(o, "bytes", v);
                    an_add_num(o, "ratio_to_mean", mean > 0 ? v / mean : NAN);
                    cJSON_AddItemToArray(hs, o);
                }
            }
            if (P <= AN_MATRIX_MAX_RANKS) {
                lm = cJSON_AddArrayToObject(root, "traffic_matrix_bytes");
                for (p = 0; p < P; p++)
                    cJSON_AddItemToArray(lm, an_i64_array(m + p * P, P));
            }
        } else {
            cJSON_AddStringToObject(mx, "missing", "accumulated/traffic_matrix unreadable");
        }
        free(m);
    } else {
        cJSON_AddStringToObject(mx, "missing", "accumulated/traffic_matrix absent");
    }
}

static void an_compute(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a,
                       const an_opts_t *opt, const int32_t *own)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    cJSON                *sec, *mem;
    char                 *act = NULL;
    double                mats, fpp, peak = opt->peak_gflops, flops, tmax = 0, tsum = 0, ach;
    const char           *peak_src = "--peak-gflops";
    int                   ex = moe_tel_reader_column(r, MOE_TEL_PHASE, "expert");
    int64_t               p, e, l;

    if (in->d_model < 1 || in->d_ffn < 1) {
        an_section(an, "compute", "d_model / d_ffn attributes absent");
        return;
    }
    if (!a->has_dropped) {
        an_section(an, "compute", "steps/dropped absent (processed pairs unknown)");
        return;
    }
    sec = an_section(an, "compute", NULL);
    mats = 2;
    if (moe_tel_reader_attr_str(r, "/", "activation", &act) == MOE_OK && strcmp(act, "swiglu") == 0)
        mats = 3;
    free(act);
    fpp = 2.0 * (double)in->d_model * (double)in->d_ffn * mats;
    flops = fpp * (double)a->processed;
    cJSON_AddNumberToObject(sec, "flops_per_pair", fpp);
    cJSON_AddNumberToObject(sec, "expert_flops", flops);
    if (!(peak > 0)) {
        if (moe_tel_reader_attr_f64(r, "/", "peak_gflops", &peak) == MOE_OK && peak > 0)
            peak_src = "file attribute peak_gflops";
        else
            peak = NAN;
    }
    if (a->has_phase && ex >= 0 && a->S > 0) {
        double *pf = calloc((size_t)a->P, 8);
        for (p = 0; p < a->P; p++) {
            tsum += a->phase_rank[p * a->nph + ex];
            tmax = fmax(tmax, a->phase_rank[p * a->nph + ex]);
        }
        /* per-rank FLOPs from the owner of each expert */
        if (pf && own) {
            cJSON *arr = cJSON_AddArrayToObject(sec, "gflops_per_rank");
            for (l = 0; l < a->L; l++)
                for (e = 0; e < a->E; e++)
                    pf[own[e]] += fpp * (double)a->processed_le[l * a->E + e];
            for (p = 0; p < a->P; p++) {
                double t = a->phase_rank[p * a->nph + ex];
                cJSON_AddItemToArray(arr, t > 0 ? cJSON_CreateNumber(pf[p] / t / 1e9) : cJSON_CreateNull());
            }
        }
        free(pf);
        ach = tsum > 0 ? flops / tsum / 1e9 : NAN;
        an_add_num(sec, "expert_seconds_sum_over_ranks", tsum);
        an_add_num(sec, "achieved_gflops_per_rank", ach);
        an_add_num(sec, "peak_gflops_per_rank", peak);
        if (isfinite(peak)) {
            cJSON_AddStringToObject(sec, "peak_source", peak_src);
            an_add_num(sec, "flops_utilisation", ach / peak);
            an_finding(fnd, "flops", ach / peak < AN_FLOPS_WARN ? "warning" : "info", "compute",
                       ach / peak, AN_FLOPS_WARN,
                       "expert phase reaches %.4g GFLOP/s per rank, %.3g%% of the %.4g GFLOP/s peak",
                       ach, 100 * ach / peak, peak);
        } else {
            cJSON_AddStringToObject(sec, "utilisation_missing",
                                    "missing: no peak (file attribute peak_gflops or --peak-gflops)");
        }
    } else {
        cJSON_AddStringToObject(sec, "utilisation_missing",
                                "missing: steps/phase_time or its expert column absent");
    }
    mem = cJSON_AddObjectToObject(sec, "memory_per_expert");
    cJSON_AddNumberToObject(mem, "weight_bytes", mats * (double)in->d_model * (double)in->d_ffn * 4);
    cJSON_AddStringToObject(mem, "weight_dtype", "float32");
    if (a->fill_cap > 0) {
        double capmean = a->fill_cap / (double)a->E / (double)a->cap_rows;
        an_add_num(mem, "capacity_pairs_mean", capmean);
        an_add_num(mem, "activation_bytes_at_capacity",
                   capmean * (2.0 * (double)in->d_model + (mats - 1) * (double)in->d_ffn) * 4);
        an_add_num(mem, "capacity_fill", a->fill_proc / a->fill_cap);
    } else {
        cJSON_AddStringToObject(mem, "capacity_missing", "dropless run or steps/capacity absent");
    }
}

/*
 * Placement what-ifs on the per-expert loads w[E] (all layers, all steps) over P ranks with
 * the placement own[E] (assumed = 1: not the file's, contiguous blocks over --ranks):
 *  - rebalance: greedy largest-first (LPT) with at most ceil(E/P) experts per rank;
 *  - replicate the hottest expert: a second copy on the least-loaded other rank, its load
 *    split half and half (the split an even router between two copies gives).
 * Both report the max rank load before and after; a recommendation when it drops >= 5 %.
 * (A simple documented greedy, to be replaced by the placement planner's.)
 */
static void an_place_whatif(cJSON *sec, cJSON *rec, const double *w, int64_t E,
                            const int32_t *own, int64_t P, int assumed, int64_t L)
{
    int     per = (int)((E + P - 1) / P), *o32 = malloc((size_t)E * sizeof(int));
    int    *newown = malloc((size_t)E * sizeof(int));
    double *rl = calloc((size_t)P, sizeof(double)), cur, nw, rep, tot = 0, mean;
    int64_t e, p, hot = 0, q = -1;
    char    evd[400], shape[160], t[160];

    if (!o32 || !newown || !rl)
        goto out;
    for (e = 0; e < E; e++) {
        o32[e] = own[e];
        rl[own[e]] += w[e];
        tot += w[e];
        if (w[e] > w[hot])
            hot = e;
    }
    mean = tot / (double)P;
    snprintf(shape, sizeof(shape), "%s%lld ranks%s", assumed ? "an assumed placement: " : "",
             (long long)P, assumed ? " with contiguous expert blocks (--ranks; the log has no placement)" : "");
    cur = am_bin_max(w, (size_t)E, o32, (int)P);
    nw = am_rebalance_lpt(w, (size_t)E, (int)P, per, newown);
    if (assumed) {
        cJSON_AddNumberToObject(sec, "assumed_ranks", (double)P);
        cJSON_AddStringToObject(sec, "assumed_placement", "contiguous");
    }
    cJSON_AddNumberToObject(sec, "rebalance_max_rank_load_current", cur);
    cJSON_AddNumberToObject(sec, "rebalance_max_rank_load_projected", nw);
    if (isfinite(cur) && isfinite(nw) && nw < 0.95 * cur) {
        snprintf(evd, sizeof(evd),
                 "replay of recorded per-expert loads (all steps, %lld layers) over %s, at most "
                 "%d experts per rank (greedy largest-first): max/mean rank load %.2f -> %.2f",
                 (long long)L, shape, per, cur / mean, nw / mean);
        an_recommend(rec, "placement", "rebalance expert placement by measured load",
                     "max rank load (pairs)", cur, nw, "pairs", "low (placement file)", evd);
    }
    /* replication of the hottest expert */
    for (p = 0; p < P; p++)
        if (p != own[hot] && (q < 0 || rl[p] < rl[q]))
            q = p;
    if (q >= 0) {
        rl[own[hot]] -= w[hot] / 2;
        rl[q] += w[hot] / 2;
        for (p = 0, rep = 0; p < P; p++)
            rep = fmax(rep, rl[p]);
        cJSON_AddNumberToObject(sec, "replicate_expert", (double)hot);
        cJSON_AddNumberToObject(sec, "replicate_to_rank", (double)q);
        cJSON_AddNumberToObject(sec, "replicate_max_rank_load_projected", rep);
        if (rep < 0.95 * cur) {
            snprintf(evd, sizeof(evd),
                     "replay of recorded per-expert loads over %s: expert %lld carries %.1f%% of "
                     "all pairs; a second copy on rank %lld taking half its tokens gives max/mean "
                     "rank load %.2f -> %.2f", shape, (long long)hot, 100 * w[hot] / tot,
                     (long long)q, cur / mean, rep / mean);
            snprintf(t, sizeof(t), "replicate hot expert %lld on a second rank", (long long)hot);
            an_recommend(rec, "replicate_hot_expert", t, "max rank load (pairs)", cur, rep,
                         "pairs", "medium (needs expert replication, EPLB-style)", evd);
        }
    }
out:
    free(o32);
    free(newown);
    free(rl);
}

static void an_hotspots(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, cJSON *rec,
                        const an_st_t *a, const int32_t *own, const int32_t *node,
                        const an_opts_t *opt)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    cJSON                *sec, *ex, *rk, *nd, *cs;
    int64_t               l, e, p, E = a->E, P = a->P, L = a->L;
    double               *w, *rl, tot = 0, worst = 0;
    int                  *cnt, *newown;
    int64_t               worst_r = 0;

    if (a->S == 0 || a->routed == 0) {
        an_section(an, "hotspots", a->S == 0 ? "no steps in the file (empty run)"
                                             : "no (token, expert) pairs were routed");
        return;
    }
    sec = an_section(an, "hotspots", NULL);
    w = calloc((size_t)E, 8);
    rl = calloc((size_t)P, 8);
    cnt = calloc((size_t)P, sizeof(int));
    newown = calloc((size_t)E, sizeof(int));
    if (!w || !rl || !cnt || !newown)
        goto out;
    for (l = 0; l < L; l++)
        for (e = 0; e < E; e++)
            w[e] += (double)a->routed_le[l * E + e];
    for (e = 0; e < E; e++)
        tot += w[e];
    ex = cJSON_AddArrayToObject(sec, "experts");
    {
        /* experts over 1.5x their fair share (all layers), largest first, at most 10 */
        double (*lst)[2] = malloc((size_t)E * sizeof(*lst));
        int64_t n = 0, i;
        for (e = 0; lst && e < E; e++)
            if (w[e] * (double)E / tot > 1.5) {
                lst[n][0] = w[e] * (double)E / tot;
                lst[n][1] = (double)e;
                n++;
            }
        if (lst)
            qsort(lst, (size_t)n, sizeof(*lst), an_cmp_desc_share);
        for (i = 0; i < n && i < 10; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "expert", lst[i][1]);
            cJSON_AddNumberToObject(o, "share_over_fair", lst[i][0]);
            cJSON_AddItemToArray(ex, o);
        }
        free(lst);
    }
    if (own == NULL) {
        /* no placement in the file (an imported log): the what-if on an assumed one */
        int64_t Pa = opt->ranks > 0 ? opt->ranks : (E < AN_ASSUMED_RANKS ? E : AN_ASSUMED_RANKS);
        int32_t *ao = malloc((size_t)E * sizeof(int32_t));
        cJSON_AddStringToObject(sec, "ranks_missing", "placement/expert_owner absent");
        if (ao != NULL && Pa > 1) {
            for (e = 0; e < E; e++)
                ao[e] = (int32_t)(e * Pa / E); /* contiguous blocks */
            an_place_whatif(sec, rec, w, E, ao, Pa, 1, L);
        }
        free(ao);
        goto coselect;
    }
    for (e = 0; e < E; e++) {
        rl[own[e]] += w[e];
        cnt[own[e]]++;
    }
    rk = cJSON_AddArrayToObject(sec, "ranks");
    for (p = 0; p < P; p++) {
        cJSON *o = cJSON_CreateObject();
        double fair = (double)cnt[p] / (double)E, sh = rl[p] / tot;
        cJSON_AddNumberToObject(o, "rank", (double)p);
        cJSON_AddNumberToObject(o, "experts", cnt[p]);
        cJSON_AddNumberToObject(o, "share", sh);
        an_add_num(o, "share_over_fair", fair > 0 ? sh / fair : NAN);
        an_add_num(o, "load_over_mean", rl[p] * (double)P / tot);
        if (rl[p] * (double)P / tot > worst) {
            worst = rl[p] * (double)P / tot;
            worst_r = p;
        }
        cJSON_AddItemToArray(rk, o);
    }
    if (worst >= AN_RANK_WARN)
        an_finding(fnd, "rank_hotspot", "warning", "hotspots", worst, AN_RANK_WARN,
                   "rank %lld carries %.2fx the mean rank load (experts it owns)",
                   (long long)worst_r, worst);
    if (node) {
        int64_t nn = in->nnodes, q;
        double *nl = calloc((size_t)nn, 8);
        nd = cJSON_AddArrayToObject(sec, "nodes");
        for (p = 0; nl && p < P; p++)
            if (node[p] >= 0 && node[p] < nn)
                nl[node[p]] += rl[p];
        for (q = 0; nl && q < nn; q++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "node", (double)q);
            cJSON_AddNumberToObject(o, "load_over_mean", nl[q] * (double)nn / tot);
            cJSON_AddItemToArray(nd, o);
        }
        free(nl);
    }
    if (P > 1)
        an_place_whatif(sec, rec, w, E, own, P, 0, L);
coselect:
    cs = cJSON_AddArrayToObject(sec, "coselect");
    if (moe_tel_reader_has(r, MOE_TEL_COSELECT) && a->K >= 2) {
        int64_t *m = malloc((size_t)(E * E) * 8), i, j;
        for (l = 0; m && l < L; l++) {
            double ntok = 0;
            cJSON *lo, *pairs;
            int64_t top[5][2];
            double  tl[5];
            int     nt = 0, k, z;
            if (moe_tel_reader_read(r, MOE_TEL_COSELECT, MOE_TEL_I64, l, 1, m) != MOE_OK)
                break;
            for (i = 0; i < E; i++)
                ntok += (double)m[i * E + i];
            ntok /= (double)a->K;
            if (ntok <= 0)
                continue;
            lo = cJSON_CreateObject();
            cJSON_AddNumberToObject(lo, "layer", (double)a->lid[l]);
            pairs = cJSON_AddArrayToObject(lo, "pairs");
            /* lift = tokens that chose both i and j / the count expected by chance for k
             * distinct experts (am_coselect_expected: sampling without replacement; 1 =
             * chance); pairs with at least 0.1% of tokens */
            for (i = 0; i < E; i++)
                for (j = i + 1; j < E; j++) {
                    double c = (double)m[i * E + j], lift;
                    if (c < fmax(1.0, 0.001 * ntok) || m[i * E + i] == 0 || m[j * E + j] == 0)
                        continue;
                    lift = c / am_coselect_expected((double)m[i * E + i], (double)m[j * E + j],
                                                    ntok, a->K);
                    for (k = 0; k < nt && tl[k] >= lift; k++)
                        ;
                    if (k >= 5)
                        continue;
                    for (z = (nt < 5 ? nt : 4); z > k; z--) {
                        tl[z] = tl[z - 1];
                        top[z][0] = top[z - 1][0];
                        top[z][1] = top[z - 1][1];
                    }
                    tl[k] = lift;
                    top[k][0] = i;
                    top[k][1] = j;
                    if (nt < 5)
                        nt++;
                }
            for (k = 0; k < nt; k++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "a", (double)top[k][0]);
                cJSON_AddNumberToObject(o, "b", (double)top[k][1]);
                cJSON_AddNumberToObject(o, "tokens", (double)m[top[k][0] * E + top[k][1]]);
                cJSON_AddNumberToObject(o, "expected",
                                        am_coselect_expected((double)m[top[k][0] * E + top[k][0]],
                                                             (double)m[top[k][1] * E + top[k][1]],
                                                             ntok, a->K));
                cJSON_AddNumberToObject(o, "lift", tl[k]);
                cJSON_AddItemToArray(pairs, o);
            }
            cJSON_AddItemToArray(cs, lo);
        }
        free(m);
    } else {
        cJSON_AddStringToObject(sec, "coselect_missing",
                                !moe_tel_reader_has(r, MOE_TEL_COSELECT) ? "accumulated/coselect absent"
                                                                         : "top_k 1: no co-selection");
    }
out:
    free(w);
    free(rl);
    free(cnt);
    free(newown);
}

static int an_cmp_i64(const void *x, const void *y)
{
    int64_t p = *(const int64_t *)x, q = *(const int64_t *)y;
    return (p > q) - (p < q);
}

/* Sampled routes: routing map, specialisation, top-k and node what-ifs. */
static moe_status_t an_routes(moe_tel_reader_t *r, cJSON *an, cJSON *rec, const an_st_t *a,
                              const an_opts_t *opt, const int32_t *own, const int32_t *node,
                              moe_log_t *log)
{
    moe_status_t          st = MOE_OK;
    const char           *path = a->path;
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    int64_t               N = in->nroutes < AN_ROUTES_MAX ? in->nroutes : AN_ROUTES_MAX;
    int64_t               L = a->L, K = a->K, E = a->E, P = a->P, i0, n, i, l, k, nkeys = 0;
    int32_t              *ex = NULL;
    float                *wt = NULL;
    int64_t              *tok = NULL, *keys = NULL, *tid = NULL;
    int                   has_w = moe_tel_reader_has(r, MOE_TEL_ROUTE_WEIGHT);
    int                   has_t = moe_tel_reader_has(r, MOE_TEL_ROUTE_TOKEN);
    /* specialisation keys on the vocabulary id when the run recorded one, else the index */
    int                   has_id = moe_tel_reader_has(r, MOE_TEL_ROUTE_TOKEN_ID);
    double                wk_sum = 0, w_n = 0, flat_remote = 0, flat_inter = 0, hier_inter = 0;
    double                nl_inter = 0, nl_mass = 0, tl_n = 0;
    int                   vocab_ids = 0;
    cJSON                *map = NULL, *mtok = NULL, *mexp = NULL, *sp;

    if (!moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT) || in->nroutes == 0) {
        an_section(an, "routing_map", !moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT)
                                          ? "routes/ absent" : "no sampled routes (route_samples 0)");
        an_section(an, "specialisation", !moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT)
                                             ? "routes/ absent" : "no sampled routes (route_samples 0)");
        return MOE_OK;
    }
    ex = malloc((size_t)(AN_ROUTE_BLOCK * L * K) * 4);
    wt = has_w ? malloc((size_t)(AN_ROUTE_BLOCK * L * K) * 4) : NULL;
    tok = malloc((size_t)AN_ROUTE_BLOCK * 8);
    tid = has_id ? malloc((size_t)AN_ROUTE_BLOCK * 8) : NULL;
    /* key = (layer * E + expert) << 40 | token: needs L * E < 2^22 and token < 2^40 */
    keys = (has_t || has_id) && L * E < (1LL << 22) ? malloc((size_t)(N * L) * 8) : NULL;
    if (!ex || (has_w && !wt) || !tok || (has_id && !tid))
        goto out;
    map = an_section(an, "routing_map", NULL);
    cJSON_AddStringToObject(map, "description", "top-1 expert of the first sampled tokens, per layer");
    mtok = cJSON_AddArrayToObject(map, "tokens");
    mexp = cJSON_AddArrayToObject(map, "experts"); /* [token][layer] */
    cJSON_AddItemToObject(map, "layer_ids", an_i64_array(a->lid, L));
    for (i0 = 0; i0 < N; i0 += AN_ROUTE_BLOCK) {
        n = N - i0 < AN_ROUTE_BLOCK ? N - i0 : AN_ROUTE_BLOCK;
        if (moe_tel_reader_read(r, MOE_TEL_ROUTE_EXPERT, MOE_TEL_I32, i0, n, ex) != MOE_OK ||
            (wt && moe_tel_reader_read(r, MOE_TEL_ROUTE_WEIGHT, MOE_TEL_F32, i0, n, wt) != MOE_OK) ||
            (has_t && moe_tel_reader_read(r, MOE_TEL_ROUTE_TOKEN, MOE_TEL_I64, i0, n, tok) != MOE_OK) ||
            (tid && moe_tel_reader_read(r, MOE_TEL_ROUTE_TOKEN_ID, MOE_TEL_I64, i0, n, tid) != MOE_OK))
            goto out;
        for (i = 0; i < n * L * K; i++) {
            /* an expert id is in [0, E) (-1: none); anything else is damage, not data */
            if (ex[i] < -1 || ex[i] >= E) {
                st = MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s row %lld holds "
                                    "expert %d (allowed 0..%lld, or -1)", path,
                                    MOE_TEL_ROUTE_EXPERT, (long long)(i0 + i / (L * K)),
                                    (int)ex[i], (long long)(E - 1));
                goto out;
            }
        }
        for (i = 0; i < n; i++) {
            int64_t src = -1;
            if (has_t && in->tokens_per_rank > 0 && tok[i] >= 0 &&
                tok[i] < in->tokens_per_rank * P)
                src = tok[i] / in->tokens_per_rank;
            if (i0 + i < AN_MAP_TOKENS) {
                cJSON *row = cJSON_CreateArray();
                for (l = 0; l < L; l++)
                    cJSON_AddItemToArray(row, cJSON_CreateNumber(ex[(i * L + l) * K]));
                cJSON_AddItemToArray(mexp, row);
                cJSON_AddItemToArray(mtok, cJSON_CreateNumber(has_t ? (double)tok[i] : (double)(i0 + i)));
            }
            for (l = 0; l < L; l++) {
                const int32_t *x = ex + (i * L + l) * K;
                const float   *ww = wt ? wt + (i * L + l) * K : NULL;
                if (x[0] < 0 || x[0] >= E)
                    continue;
                {
                    int64_t key_tok = tid ? tid[i] : has_t ? tok[i] : -1;
                    if (keys && key_tok >= 0 && key_tok < (1LL << 40))
                        keys[nkeys++] = ((l * E + x[0]) << 40) | key_tok;
                }
                if (ww && K >= 2) {
                    wk_sum += ww[K - 1];
                    w_n += 1;
                }
                if (own && src >= 0) {
                    /* per token: remote pairs (flat), inter-node pairs (flat), distinct remote
                     * nodes (hier, node-deduplicated), and node-limited(1) copies */
                    int64_t nodes_seen[64], ns = 0, j, z;
                    double  mass_node[64], best = 0, mass = 0;
                    for (k = 0; k < K; k++) {
                        int32_t e = x[k];
                        int64_t rk, nd;
                        if (e < 0 || e >= E)
                            continue;
                        rk = own[e];
                        nd = node ? node[rk] : 0;
                        if (rk != src)
                            flat_remote += 1;
                        if (nd != (node ? node[src] : 0))
                            flat_inter += 1;
                        for (j = 0; j < ns && nodes_seen[j] != nd; j++)
                            ;
                        if (j == ns && ns < 64) {
                            nodes_seen[ns] = nd;
                            mass_node[ns] = 0;
                            ns++;
                        }
                        if (j < 64)
                            mass_node[j] += ww ? ww[k] : 1.0 / (double)K;
                        mass += ww ? ww[k] : 1.0 / (double)K;
                    }
                    for (z = 0; z < ns; z++) {
                        if (nodes_seen[z] != (node ? node[src] : 0))
                            hier_inter += 1;
                        if (mass_node[z] > best)
                            best = mass_node[z];
                    }
                    /* node-limited(1): all k experts on the node with the largest gate mass */
                    {
                        int64_t bestn = -1;
                        for (z = 0; z < ns; z++)
                            if (mass_node[z] == best) {
                                bestn = nodes_seen[z];
                                break;
                            }
                        if (bestn != (node ? node[src] : 0))
                            nl_inter += 1;
                    }
                    nl_mass += mass > 0 ? (mass - best) / mass : 0;
                    tl_n += 1;
                }
            }
        }
    }
    cJSON_AddNumberToObject(map, "sampled_routes", (double)in->nroutes);
    cJSON_AddNumberToObject(map, "routes_used", (double)N);
    /* specialisation */
    if (keys && nkeys > 0) {
        cJSON  *arr;
        int64_t j;
        char *kind = NULL;
        sp = an_section(an, "specialisation", NULL);
        /* routes/token is a position (a run's global token index, an imported log's
         * token_idx), not a vocabulary id; routes/token_id (when written) is one, and a file
         * may declare its routes/token vocabulary ids (token_ids = "vocabulary") */
        if (tid != NULL || (moe_tel_reader_attr_str(r, "/", "token_ids", &kind) == MOE_OK &&
                            strcmp(kind, "vocabulary") == 0))
            vocab_ids = 1; /* routes/token_id: the run's vocabulary ids (docs/routers.md) */
        free(kind);
        cJSON_AddStringToObject(sp, "id_kind", vocab_ids ? "vocabulary" : "position");
        cJSON_AddStringToObject(sp, "description",
                                vocab_ids ? "most frequent token ids among the tokens whose top-1 expert it is"
                                          : "most frequent token positions (routes/token: a run's global "
                                            "token index, an imported log's token_idx; not vocabulary "
                                            "ids) among the tokens whose top-1 expert it is");
        cJSON_AddBoolToObject(sp, "decoded", opt->vocab != NULL && vocab_ids);
        if (opt->vocab != NULL && !vocab_ids)
            cJSON_AddStringToObject(sp, "decode_missing",
                                    "--vocab not applied: the ids are positions, not vocabulary ids");
        cJSON_AddStringToObject(sp, "id_source", tid ? "routes/token_id" : "routes/token");
        arr = cJSON_AddArrayToObject(sp, "experts");
        qsort(keys, (size_t)nkeys, 8, an_cmp_i64);
        for (i = 0; i < nkeys;) {
            int64_t grp = keys[i] >> 40, top_c[AN_TOP_TOKENS], top_t[AN_TOP_TOKENS], nt = 0, gtot = 0;
            cJSON  *o, *tl;
            for (j = i; j < nkeys && (keys[j] >> 40) == grp;) {
                int64_t t = keys[j] & ((1LL << 40) - 1), c = 0, z, q;
                for (; j < nkeys && (keys[j] >> 40) == grp && (keys[j] & ((1LL << 40) - 1)) == t; j++)
                    c++;
                gtot += c;
                for (z = 0; z < nt && top_c[z] >= c; z++)
                    ;
                if (z >= AN_TOP_TOKENS)
                    continue;
                for (q = (nt < AN_TOP_TOKENS ? nt : AN_TOP_TOKENS - 1); q > z; q--) {
                    top_c[q] = top_c[q - 1];
                    top_t[q] = top_t[q - 1];
                }
                top_c[z] = c;
                top_t[z] = t;
                if (nt < AN_TOP_TOKENS)
                    nt++;
            }
            i = j;
            o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "layer", (double)a->lid[grp / E]);
            cJSON_AddNumberToObject(o, "expert", (double)(grp % E));
            cJSON_AddNumberToObject(o, "samples", (double)gtot);
            tl = cJSON_AddArrayToObject(o, "top_tokens");
            for (k = 0; k < nt; k++) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddNumberToObject(t, "id", (double)top_t[k]);
                cJSON_AddNumberToObject(t, "count", (double)top_c[k]);
                if (opt->vocab && vocab_ids && top_t[k] < opt->nvocab)
                    cJSON_AddStringToObject(t, "text", opt->vocab[top_t[k]]);
                cJSON_AddItemToArray(tl, t);
            }
            cJSON_AddItemToArray(arr, o);
        }
    } else {
        an_section(an, "specialisation",
                   !has_t && !has_id ? "routes/token absent"
                          : L * E >= (1LL << 22) ? "more than 2^22 layer x expert pairs"
                                                  : "no sampled token id in range");
    }
    /* top-k what-if */
    if (K >= 2 && w_n > 0) {
        double mk = wk_sum / w_n;
        char   evd[300], t[120];
        cJSON_AddNumberToObject(map, "mean_weight_of_kth_expert", mk);
        snprintf(evd, sizeof(evd),
                 "%lld sampled routes: the k-th expert carries %.1f%% of the gate weight on "
                 "average; top-%lld sends %lld of %lld pairs per token",
                 (long long)N, 100 * mk, (long long)(K - 1), (long long)(K - 1), (long long)K);
        snprintf(t, sizeof(t), "reduce top-k from %lld to %lld", (long long)K, (long long)(K - 1));
        if (mk < 0.25)
            an_recommend(rec, "top_k", t, "expert FLOPs and exchange pairs per token",
                         (double)K, (double)(K - 1), "pairs per token",
                         "medium (model change; re-evaluate quality)", evd);
    }
    /* hierarchical and node-limited exchange what-if */
    if (tl_n > 0) {
        cJSON *xo = cJSON_AddObjectToObject(map, "exchange_what_if");
        cJSON_AddNumberToObject(xo, "routes", tl_n);
        cJSON_AddNumberToObject(xo, "flat_remote_pairs_per_token", flat_remote / tl_n);
        cJSON_AddNumberToObject(xo, "flat_inter_node_copies_per_token", flat_inter / tl_n);
        cJSON_AddNumberToObject(xo, "hier_inter_node_copies_per_token", hier_inter / tl_n);
        cJSON_AddNumberToObject(xo, "node_limited1_inter_node_copies_per_token", nl_inter / tl_n);
        cJSON_AddNumberToObject(xo, "node_limited1_rerouted_gate_mass", nl_mass / tl_n);
        if (in->nnodes > 1 && flat_inter > 0) {
            char evd[300];
            const char *exch = "?";
            char       *xs = NULL;
            if (moe_tel_reader_attr_str(r, "/", "exchange", &xs) == MOE_OK)
                exch = xs;
            snprintf(evd, sizeof(evd),
                     "%.0f sampled (token, layer) routes with source rank known: inter-node "
                     "copies per token flat %.3f, node-deduplicated %.3f (exchange in this run: %s)",
                     tl_n, flat_inter / tl_n, hier_inter / tl_n, exch);
            /* hier, ucx (hier over UCX) and 2dh already send a token once per node */
            if (hier_inter < 0.95 * flat_inter && strcmp(exch, "hier") != 0 &&
                strcmp(exch, "ucx") != 0 && strcmp(exch, "2dh") != 0)
                an_recommend(rec, "hier_exchange",
                             "use the node-deduplicated hierarchical exchange (--exchange hier)",
                             "inter-node payload copies per token", flat_inter / tl_n,
                             hier_inter / tl_n, "copies", "low (one option)", evd);
            snprintf(evd, sizeof(evd),
                     "same routes limited to the node with the largest gate mass: inter-node "
                     "copies %.3f -> %.3f per token, %.1f%% of gate mass re-routed",
                     hier_inter / tl_n, nl_inter / tl_n, 100 * nl_mass / tl_n);
            if (nl_inter < 0.95 * hier_inter)
                an_recommend(rec, "node_limited",
                             "node-limited routing (experts of one node per token)",
                             "inter-node payload copies per token", hier_inter / tl_n,
                             nl_inter / tl_n, "copies", "medium (router change; re-evaluate quality)",
                             evd);
            free(xs);
        }
    } else if (own == NULL) {
        cJSON_AddStringToObject(map, "exchange_what_if_missing",
                                in->imported
                                    ? "placement/expert_owner absent (an imported log has no cluster "
                                      "shape): replay it with moerun --replay at your ranks and nodes "
                                      "and analyse that telemetry for the hier and node-limited what-ifs"
                                    : "placement/expert_owner absent");
    } else {
        cJSON_AddStringToObject(map, "exchange_what_if_missing",
                                "source rank of sampled tokens unknown (routes/token or tokens_per_rank absent)");
    }
out:
    free(ex);
    free(wt);
    free(tok);
    free(tid);
    free(keys);
    return st;
}

/* Orders findings: critical, warning, info (stable). */
static void an_sort_findings(cJSON *fnd)
{
    static const char *order[3] = {"critical", "warning", "info"};
    cJSON             *tmp = cJSON_CreateArray();
    int                k;

    while (cJSON_GetArraySize(fnd) > 0)
        cJSON_AddItemToArray(tmp, cJSON_DetachItemFromArray(fnd, 0));
    for (k = 0; k < 3; k++) {
        int i;
        for (i = 0; i < cJSON_GetArraySize(tmp);) {
            cJSON *f = cJSON_GetArrayItem(tmp, i);
            if (strcmp(an_str(f, "severity"), order[k]) == 0)
                cJSON_AddItemToArray(fnd, cJSON_DetachItemFromArray(tmp, i));
            else
                i++;
        }
    }
    cJSON_Delete(tmp);
}

moe_status_t an_run_analyse(const char *path, const an_opts_t *opt, moe_log_t *log,
                            cJSON **run_p)
{
    moe_tel_reader_t     *r = NULL;
    const moe_tel_info_t *in;
    cJSON                *root = NULL, *an, *fnd, *rec;
    an_st_t               a;
    moe_status_t          st;
    int32_t              *own = NULL, *node = NULL;
    int                   c;

    *run_p = NULL;
    memset(&a, 0, sizeof(a));
    if ((st = moe_tel_reader_open(path, log, &r)) != MOE_OK)
        return st;
    in = moe_tel_reader_info(r);
    a.path = path;
    a.L = in->layers;
    a.E = in->experts;
    /* -1: an imported file does not know them (the datasets they size are then absent) */
    a.P = in->nranks > 0 ? in->nranks : 0;
    a.S = in->steps;
    a.K = in->top_k > 0 ? in->top_k : 0;
    a.nb = a.S < AN_BINS ? (a.S > 0 ? a.S : 1) : AN_BINS;
    a.W = opt->dead_window < a.S ? opt->dead_window : a.S;
    if (a.W < 1)
        a.W = 1;
    a.CW = AN_COLLAPSE_STEPS < a.S ? AN_COLLAPSE_STEPS : (a.S > 0 ? a.S : 1);
    a.cthr_pairs = AN_COLLAPSE_SHARE + (1 - AN_COLLAPSE_SHARE) * fmin(1.0, 2.0 / (double)(a.E > 0 ? a.E : 1));
    a.cthr_tokens = AN_COLLAPSE_TOKENS + (1 - AN_COLLAPSE_TOKENS) * fmin(1.0, (double)a.K / (double)(a.E > 0 ? a.E : 1));
    a.has_dropped = moe_tel_reader_has(r, MOE_TEL_DROPPED);
    a.has_processed = moe_tel_reader_has(r, MOE_TEL_PROCESSED);
    a.has_capacity = moe_tel_reader_has(r, MOE_TEL_CAPACITY);
    a.has_router = moe_tel_reader_has(r, MOE_TEL_ROUTER) &&
                   moe_tel_reader_ncolumns(r, MOE_TEL_ROUTER) > 0;
    a.has_phase = moe_tel_reader_has(r, MOE_TEL_PHASE) &&
                  moe_tel_reader_ncolumns(r, MOE_TEL_PHASE) > 0;
    a.has_traffic = moe_tel_reader_has(r, MOE_TEL_TRAFFIC) &&
                    moe_tel_reader_ncolumns(r, MOE_TEL_TRAFFIC) > 0;
    a.nph = a.has_phase ? moe_tel_reader_ncolumns(r, MOE_TEL_PHASE) : 0;
    a.ntc = a.has_traffic ? moe_tel_reader_ncolumns(r, MOE_TEL_TRAFFIC) : 0;
    for (c = 0; c < RC_COUNT; c++)
        a.rc[c] = moe_tel_reader_column(r, MOE_TEL_ROUTER, an_rc_names[c]);
    root = cJSON_CreateObject();
    a.phase_rank = calloc((size_t)a.P * (size_t)(a.nph + 1), 8);
    a.traffic_rank = calloc((size_t)a.P * (size_t)(a.ntc + 1), 8);
    if (root == NULL || !a.phase_rank || !a.traffic_rank || an_st_alloc(&a) != 0 ||
        an_layer_ids(r, &a) != 0) {
        st = MOE_ERROR_SET(log, MOE_ERR_NOMEM, "out of memory");
        goto out;
    }
    an_legacy(r, root, &a, path);
    an_hosts(r, root, a.P);
    if ((st = an_stream(r, log, &a)) != MOE_OK)
        goto out;
    a.processed = a.routed - a.dropped;
    cJSON_AddNumberToObject(root, "routed", (double)a.routed);
    if (a.has_dropped) {
        cJSON_AddNumberToObject(root, "processed", (double)a.processed);
        cJSON_AddNumberToObject(root, "dropped", (double)a.dropped);
        an_add_num(root, "drop_rate", a.routed > 0 ? (double)a.dropped / (double)a.routed : NAN);
    } else {
        cJSON_AddNullToObject(root, "processed");
        cJSON_AddNullToObject(root, "dropped");
        cJSON_AddNullToObject(root, "drop_rate");
    }
    /* headline: the pooled load entropy (each layer's loads summed over all steps),
     * pair-weighted over layers; the mean of per-step values is labelled as such */
    an_add_num(root, "load_entropy_norm_mean", an_pooled_entropy(&a));
    an_add_num(root, "load_entropy_norm_per_step_mean",
               a.rc[RC_ENT] >= 0 && a.rc_cnt[RC_ENT] > 0 ? a.rc_sum[RC_ENT] / a.rc_cnt[RC_ENT] : NAN);
    an_add_num(root, "top1_prob_mean", a.rc[RC_TOP1] >= 0 && a.rc_cnt[RC_TOP1] > 0 ? a.rc_sum[RC_TOP1] / a.rc_cnt[RC_TOP1] : NAN);
    an_add_num(root, "aux_loss_mean", a.rc[RC_AUX] >= 0 && a.rc_cnt[RC_AUX] > 0 ? a.rc_sum[RC_AUX] / a.rc_cnt[RC_AUX] : NAN);
    an_owner_node(r, a.E, a.P, &own, &node);
    an = cJSON_AddObjectToObject(root, "analyses");
    fnd = cJSON_AddArrayToObject(root, "findings");
    rec = cJSON_AddArrayToObject(root, "recommendations");
    if (a.S == 0)
        an_finding(fnd, "empty", "warning", "run", 0, 1, "the file holds no steps (empty run)");
    an_utilisation(an, root, fnd, &a);
    an_entropy(an, fnd, &a);
    an_gating(r, an, fnd, &a);
    an_balance_loss(an, fnd, &a);
    an_balance_bias(r, an, fnd, &a);
    an_capacity(an, fnd, rec, &a, in->capacity_factor);
    an_communication(r, an, root, fnd, &a, node);
    an_compute(r, an, fnd, &a, opt, own);
    an_hotspots(r, an, fnd, rec, &a, own, node, opt);
    if ((st = an_routes(r, an, rec, &a, opt, own, node, log)) != MOE_OK)
        goto out;
    if (moe_tel_reader_has(r, MOE_TEL_EVENTS)) {
        if ((st = an_events(r, root, in->nevents)) != MOE_OK)
            goto out;
    } else {
        cJSON_AddArrayToObject(root, "events");
    }
    an_sort_findings(fnd);
out:
    free(own);
    free(node);
    an_st_free(&a);
    moe_tel_reader_close(r);
    if (st != MOE_OK) {
        cJSON_Delete(root);
        return st;
    }
    *run_p = root;
    return MOE_OK;
}

/* ---------------------------------------------------------------- comparison ---------- */

/*
 * A node_limited recommendation (projected from replayed routes) next to what a run with the
 * real node-limited router measured, when such a run is among the files: its node-deduplicated
 * inter-node copies per token from its own sampled routes, its drop rate and its worst
 * max/mean load. Added as "measured" and appended to the evidence.
 */
static void an_node_limited_measured(cJSON *root)
{
    cJSON       *run, *nl = NULL;
    const cJSON *x;

    cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(root, "runs")) {
        const char *rt = an_str(cJSON_GetObjectItemCaseSensitive(run, "config"), "router");
        if (strcmp(rt, "node-limited") == 0 && nl == NULL)
            nl = run;
    }
    if (nl == NULL)
        return;
    x = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(nl, "analyses"), "routing_map"),
            "exchange_what_if"),
        "hier_inter_node_copies_per_token");
    cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(root, "runs")) {
        cJSON *rc;
        if (run == nl)
            continue;
        cJSON_ArrayForEach(rc, cJSON_GetObjectItemCaseSensitive(run, "recommendations")) {
            cJSON      *m, *ev;
            char        buf[700];
            double      copies = cJSON_IsNumber(x) ? x->valuedouble : NAN;
            double      mm = an_num(cJSON_GetObjectItemCaseSensitive(
                                   cJSON_GetObjectItemCaseSensitive(
                                       cJSON_GetObjectItemCaseSensitive(
                                           cJSON_GetObjectItemCaseSensitive(nl, "analyses"),
                                           "utilisation"),
                                       "across_layers"),
                                   "max_mean"),
                               "max");
            if (strcmp(an_str(rc, "id"), "node_limited") != 0)
                continue;
            m = cJSON_AddObjectToObject(rc, "measured");
            cJSON_AddStringToObject(m, "file", an_str(nl, "file"));
            cJSON_AddStringToObject(m, "router", "node-limited");
            an_add_num(m, "inter_node_copies_per_token", copies);
            an_add_num(m, "drop_rate", an_num(nl, "drop_rate"));
            an_add_num(m, "worst_max_mean", mm);
            snprintf(buf, sizeof(buf),
                     "%s; measured with --router node-limited (%s): inter-node copies %.3f per "
                     "token, drop rate %.2f%%, worst max/mean load %.2f",
                     an_str(rc, "evidence"), an_str(nl, "file"), copies,
                     100 * an_num(nl, "drop_rate"), mm);
            ev = cJSON_CreateString(buf);
            if (ev)
                cJSON_ReplaceItemInObjectCaseSensitive(rc, "evidence", ev);
        }
    }
}

void an_compare(cJSON *root)
{
    static const struct { const char *name; const char *section; const char *key; } cols[] = {
        {"steps", NULL, "steps_in_file"},
        {"routed", NULL, "routed"},
        {"drop_rate", NULL, "drop_rate"},
        {"load_entropy_norm", NULL, "load_entropy_norm_mean"},
        {"top1_prob", NULL, "top1_prob_mean"},
        {"aux_loss", NULL, "aux_loss_mean"},
        {"worst_max_mean", "utilisation", "max_mean"},
        {"worst_cv", "utilisation", "cv"},
        {"worst_gini", "utilisation", "gini"},
        {"exchange_share", "communication", "exchange_share"},
        {"expert_share", "communication", "expert_share"},
        {"achieved_gflops_per_rank", "compute", "achieved_gflops_per_rank"},
    };
    cJSON       *cmp = cJSON_AddObjectToObject(root, "comparison"), *cn, *rows;
    const cJSON *run;
    size_t       i;

    an_node_limited_measured(root);
    cn = cJSON_AddArrayToObject(cmp, "columns");
    cJSON_AddItemToArray(cn, cJSON_CreateString("file"));
    for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        cJSON_AddItemToArray(cn, cJSON_CreateString(cols[i].name));
    rows = cJSON_AddArrayToObject(cmp, "rows");
    cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(root, "runs")) {
        cJSON       *row = cJSON_CreateArray();
        const cJSON *an = cJSON_GetObjectItemCaseSensitive(run, "analyses");
        cJSON_AddItemToArray(row, cJSON_CreateString(an_str(run, "file")));
        for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
            double v;
            if (cols[i].section == NULL) {
                v = an_num(run, cols[i].key);
            } else if (strcmp(cols[i].section, "utilisation") == 0) {
                const cJSON *al = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(an, "utilisation"), "across_layers"),
                    cols[i].key);
                v = an_num(al, "max");
            } else {
                v = an_num(cJSON_GetObjectItemCaseSensitive(an, cols[i].section), cols[i].key);
            }
            cJSON_AddItemToArray(row, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(rows, row);
    }
}
