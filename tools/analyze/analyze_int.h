/*
 * tools/analyze/analyze_int.h — declarations private to the analyser library (tools/analyze):
 * what the analysis files and the rendering files share. Not installed, not used outside
 * tools/analyze; the public interface is analyze.h.
 *
 * What always holds:
 *  1. Names shared between files are declared here: the renderers' with the an__ prefix, the
 *     analyses' with their existing an_ name (they were static in the one analyze_run.c).
 *  2. There is one escaping function per output format: an__html_esc for HTML (render_html.c),
 *     moe_esc_term for the terminal (render_term.c), ar_md for Markdown (render_md.c).
 */
#ifndef MOERUN_TOOLS_ANALYZE_INT_H
#define MOERUN_TOOLS_ANALYZE_INT_H

#include <stdint.h>
#include <stdio.h>

#include <cJSON.h>

#include "analysis_math.h"
#include "analyze.h"
#include "place.h"
#include "telemetry_reader.h"

/* ---------------------------------------------------------------- analyses ------------ */

#define AN_BLOCK_BYTES     (8u << 20) /* per-step buffers of one block */
#define AN_BINS            240        /* points of the over-steps series and heatmap columns */
#define AN_HIST_BINS       20         /* gate-confidence histograms over [0, 1] */
#define AN_ROUTES_MAX      200000     /* sampled routes used (map, specialisation, what-ifs) */
#define AN_ROUTE_BLOCK     4096
#define AN_MAP_TOKENS      64         /* tokens shown in the routing map */
#define AN_TOP_TOKENS      5          /* top tokens per expert */
#define AN_EVENT_CHUNK     4096       /* events per read: HDF5 callocs a 1 MiB conversion buffer per read */
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
extern const double       an_cfs[AN_NCF];      /* capacity factors of the what-if */
extern const char *const  an_rc_names[RC_COUNT]; /* router column names */

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

/* analyze_run.c: report helpers shared by every analysis (a number or null, arrays, a section
 * {"status", "missing"}, a finding, a recommendation with its replayed impact). */
void an_add_num(cJSON *o, const char *key, double v);
cJSON *an_num_array(const double *v, int64_t n);
cJSON *an_i64_array(const int64_t *v, int64_t n);
cJSON *an_section(cJSON *analyses, const char *name, const char *missing);
void an_finding(cJSON *arr, const char *id, const char *sev, const char *analysis,
                double value, double threshold, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
void an_recommend(cJSON *arr, const char *id, const char *title, const char *metric,
                  double current, double projected, const char *unit,
                  const char *complexity, const char *evidence);

/* an_stream.c: the streaming state and the pass over the per-step datasets. */
void an_st_free(an_st_t *a);
int an_st_alloc(an_st_t *a);
moe_status_t an_stream(moe_tel_reader_t *r, moe_log_t *log, an_st_t *a);
int an_layer_ids(moe_tel_reader_t *r, an_st_t *a);
double an_pooled_entropy(an_st_t *a);

/* an_events.c: the event log into root["events"]. */
moe_status_t an_events(moe_tel_reader_t *r, cJSON *root, int64_t nevents);

/* an_load.c: utilisation and balance; load entropy, dead experts, collapse. */
int an_cmp_desc_share(const void *x, const void *y); /* qsort: descending by the first double */
void an_utilisation(cJSON *an, cJSON *root, cJSON *fnd, const an_st_t *a);
void an_entropy(cJSON *an, cJSON *fnd, const an_st_t *a);
/* The load-balancing remedies for collapse, an always-on expert or imbalance, from the other
 * sections (run after them): numbers only where replayed from the log or recorded in it. */
void an_remedies(cJSON *an, cJSON *fnd, const an_st_t *a);

/* an_router.c: gate confidence, aux loss vs imbalance, balance bias. */
void an_gating(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a);
void an_balance_bias(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a);
void an_balance_loss(cJSON *an, cJSON *fnd, const an_st_t *a);

/* an_capacity.c: drops and the capacity-factor what-if. */
void an_capacity(cJSON *an, cJSON *fnd, cJSON *rec, const an_st_t *a, double cf);

/* an_comm.c: communication, compute, hotspots and placement. */
int an_owner_node(moe_tel_reader_t *r, int64_t E, int64_t P, int32_t **own_p,
                  int32_t **node_p);
void an_communication(moe_tel_reader_t *r, cJSON *an, cJSON *root, cJSON *fnd,
                      const an_st_t *a, const int32_t *node);
void an_compute(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a,
                const an_opts_t *opt, const int32_t *own, const int32_t *node);
void an_hotspots(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, cJSON *rec,
                 const an_st_t *a, const int32_t *own, const int32_t *node,
                 const an_opts_t *opt);
int an_cmp_i64(const void *x, const void *y); /* qsort: ascending int64_t */
void an_placement_plan(const char *path, cJSON *an, cJSON *rec, const an_opts_t *opt);

/* an_routes.c: routing map, co-selection, specialisation, exchange what-ifs. */
moe_status_t an_routes(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, cJSON *rec, const an_st_t *a,
                       const an_opts_t *opt, const int32_t *own, const int32_t *node,
                       moe_log_t *log);

/* ---------------------------------------------------------------- renderers ----------- */

#define AR_MAX_RANKS 64 /* ranks drawn in the traffic heatmap and phase bars, listed in tables */

/* render_common.c: o[k]; run's analyses[name]; 1 if the section's status is "ok"; o[key]
 * formatted with fmt, or "missing" when null or absent (rotating buffers: up to 16 in one
 * printf). */
const cJSON *an__get(const cJSON *o, const char *k);
const cJSON *an__sec(const cJSON *run, const char *name);
int          an__ok(const cJSON *sec);
const char  *an__f(const cJSON *o, const char *key, const char *fmt);

/* render_html.c: s as HTML text (specials as entities, controls as U+FFFD). */
void an__html_esc(FILE *o, const char *s);

#endif /* MOERUN_TOOLS_ANALYZE_INT_H */
