/*
 * tools/analyze/analyze_run.c — the driver of the analyses of one telemetry file
 * (an_run_analyse; formulas: docs/analysis.md): opens the file, streams it (an_stream.c), runs
 * each analysis family (an_load.c, an_router.c, an_capacity.c, an_comm.c, an_routes.c,
 * an_events.c) and orders the findings; plus the report helpers they share (analyze_int.h).
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
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

const double an_cfs[AN_NCF] = {0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0};

const char *const an_rc_names[RC_COUNT] = {
    "top1_prob", "top1_top2_margin", "logit_mean", "logit_std", "logit_max", "aux_loss",
    "z_loss", "load_entropy_norm"};

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
void an_add_num(cJSON *o, const char *key, double v)
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

cJSON *an_num_array(const double *v, int64_t n)
{
    cJSON  *a = cJSON_CreateArray();
    int64_t i;

    for (i = 0; i < n && a; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

cJSON *an_i64_array(const int64_t *v, int64_t n)
{
    cJSON  *a = cJSON_CreateArray();
    int64_t i;

    for (i = 0; i < n && a; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

/* A section object: {"status": "ok"} or {"status": "missing", "missing": why}. */
cJSON *an_section(cJSON *analyses, const char *name, const char *missing)
{
    cJSON *o = cJSON_AddObjectToObject(analyses, name);

    cJSON_AddStringToObject(o, "status", missing ? "missing" : "ok");
    if (missing)
        cJSON_AddStringToObject(o, "missing", missing);
    return o;
}

/* Adds a finding {id, severity, analysis, title, value, threshold, evidence}. */
void an_finding(cJSON *arr, const char *id, const char *sev, const char *analysis,
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
void an_recommend(cJSON *arr, const char *id, const char *title, const char *metric,
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
    an_compute(r, an, fnd, &a, opt, own, node);
    an_hotspots(r, an, fnd, rec, &a, own, node, opt);
    an_placement_plan(path, an, rec, opt);
    if ((st = an_routes(r, an, fnd, rec, &a, opt, own, node, log)) != MOE_OK)
        goto out;
    an_remedies(an, fnd, &a);
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
