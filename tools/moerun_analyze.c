/*
 * tools/moerun_analyze.c — `moerun-analyze FILE [--json]`: the summary of a telemetry file.
 *
 * What always holds:
 *  1. Everything is read through tools/telemetry_reader (validated file, bounds-checked
 *     reads); per-step data is streamed one step at a time, so memory does not grow with
 *     the number of steps.
 *  2. One analysis, two renderings: the numbers are computed once into a cJSON tree; --json
 *     prints the tree, the text output is printed from the same tree.
 *  3. Exit codes: 0 ok, 1 the file is missing, unreadable, not a moerun telemetry file or
 *     damaged (one clear message on stderr), 2 usage error. Never a crash.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "telemetry_reader.h"

#define AN_MATRIX_MAX_RANKS 16  /* the rank x rank matrix is printed up to this many ranks */
#define AN_TEXT_EVENTS_MAX  50  /* events listed in the text output */
#define AN_EVENT_CHUNK      256

/* Per-run accumulators, sized by the file's dimensions (not by its step count). */
typedef struct an_acc {
    int64_t  L, E, P, S;
    int64_t *routed_le;  /* [L][E] routed summed over steps */
    int64_t  routed, processed, dropped;
    double  *phase_rank; /* [P][nph] seconds summed over steps and layers */
    int      nph;
    int64_t  bytes_sent;
    double   ent_sum, top1_sum, aux_sum;
    int64_t  ent_n, top1_n, aux_n; /* finite values summed (imports hold NaN where unknown) */
    int      ent_col, top1_col, aux_col;
    int      has_pd, has_router, has_phase, has_traffic; /* datasets present */
} an_acc_t;

static void an_usage(FILE *out, const char *argv0)
{
    fprintf(out,
            "usage: %s FILE [--json]\n"
            "Prints the summary of a moerun telemetry file (HDF5, docs/telemetry.md):\n"
            "configuration, ranks and hosts, steps and status, routed/processed/dropped,\n"
            "expert load per layer, router statistics, phase times, traffic and monitor events.\n"
            "  --json   print the same as JSON\n"
            "  --help   this text\n"
            "Exit status: 0 ok, 1 unreadable or invalid file, 2 usage error.\n",
            argv0);
}

/* Index of `name` in a string list, -1 if absent. */
static int an_index(char **list, int n, const char *name)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return i;
    return -1;
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

/* Adds a number, or null when it is not finite (e.g. a mean over zero steps). */
static void an_add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* Adds row[col] to *sum and counts it, if col exists and the value is finite. */
static void an_sum_finite(int col, const double *row, double *sum, int64_t *n)
{
    if (col >= 0 && isfinite(row[col])) {
        *sum += row[col];
        (*n)++;
    }
}

/* A count, or null when the file does not know it (-1: an imported file). */
static void an_add_count(cJSON *o, const char *key, int64_t v)
{
    if (v >= 0)
        cJSON_AddNumberToObject(o, key, (double)v);
    else
        cJSON_AddNullToObject(o, key);
}

/* "missing": the documented datasets the file does not hold (only imported files omit any). */
static void an_missing(moe_tel_reader_t *r, cJSON *root)
{
    static const char *const paths[] = {
        MOE_TEL_PROCESSED, MOE_TEL_DROPPED, MOE_TEL_DROPPED_CAPACITY, MOE_TEL_CAPACITY,
        MOE_TEL_ROUTER, MOE_TEL_PHASE, MOE_TEL_TRAFFIC, MOE_TEL_ROUTE_STEP, MOE_TEL_ROUTE_TOKEN,
        MOE_TEL_ROUTE_EXPERT, MOE_TEL_ROUTE_WEIGHT, MOE_TEL_ROUTE_KEPT, MOE_TEL_EVENTS,
        MOE_TEL_COSELECT, MOE_TEL_TRAFFIC_MATRIX, MOE_TEL_HOSTNAME, MOE_TEL_NODE,
        MOE_TEL_LOCAL_RANK, MOE_TEL_CPUSET, MOE_TEL_NUMA_NODE, MOE_TEL_EXPERT_OWNER};
    cJSON *arr = cJSON_AddArrayToObject(root, "missing");
    size_t i;

    for (i = 0; arr && i < sizeof(paths) / sizeof(paths[0]); i++)
        if (!moe_tel_reader_has(r, paths[i]))
            cJSON_AddItemToArray(arr, cJSON_CreateString(paths[i]));
}

/* Streams the per-step datasets into the accumulators (absent datasets are skipped). */
static moe_status_t an_stream_steps(moe_tel_reader_t *r, moe_log_t *log, an_acc_t *a)
{
    size_t       LE = (size_t)(a->L * a->E), LP;
    int64_t     *ri = malloc(LE * sizeof(int64_t)), *tr = NULL;
    double      *rs = NULL, *ph = NULL;
    char       **cols = NULL;
    int          ncols = 0, tcol = -1, tcols = 0, ntn = 0;
    moe_status_t st = MOE_OK;
    int64_t      s;
    size_t       i, l, p;

    a->has_pd = moe_tel_reader_has(r, MOE_TEL_PROCESSED) && moe_tel_reader_has(r, MOE_TEL_DROPPED);
    a->has_router = moe_tel_reader_has(r, MOE_TEL_ROUTER);
    a->has_phase = moe_tel_reader_has(r, MOE_TEL_PHASE);
    a->has_traffic = moe_tel_reader_has(r, MOE_TEL_TRAFFIC);
    st = a->has_router ? moe_tel_reader_attr_strlist(r, MOE_TEL_ROUTER, "columns", &cols, &ncols)
                       : MOE_ERR_NOT_FOUND;
    if (st == MOE_OK) {
        a->ent_col = an_index(cols, ncols, "load_entropy_norm");
        a->top1_col = an_index(cols, ncols, "top1_prob");
        a->aux_col = an_index(cols, ncols, "aux_loss");
        moe_tel_reader_strlist_free(cols, ncols);
    } else {
        a->ent_col = a->top1_col = a->aux_col = -1;
    }
    {
        int64_t dims[4];
        int     nd;
        st = MOE_OK;
        ncols = tcols = a->nph = 0;
        if (a->has_router && (st = moe_tel_reader_dims(r, MOE_TEL_ROUTER, dims, &nd)) != MOE_OK)
            goto out;
        if (a->has_router)
            ncols = (int)dims[2];
        if (a->has_traffic && (st = moe_tel_reader_dims(r, MOE_TEL_TRAFFIC, dims, &nd)) != MOE_OK)
            goto out;
        if (a->has_traffic)
            tcols = (int)dims[3];
        if (a->has_phase && (st = moe_tel_reader_dims(r, MOE_TEL_PHASE, dims, &nd)) != MOE_OK)
            goto out;
        if (a->has_phase)
            a->nph = (int)dims[3];
    }
    if (a->has_traffic &&
        moe_tel_reader_attr_strlist(r, MOE_TEL_TRAFFIC, "columns", &cols, &ntn) == MOE_OK) {
        tcol = an_index(cols, ntn, "bytes_sent");
        moe_tel_reader_strlist_free(cols, ntn);
        if (tcol >= tcols)
            tcol = -1;
    }
    if (a->P < 0)
        a->P = 0; /* imported: no ranks */
    LP = (size_t)(a->L * a->P);
    rs = malloc((size_t)a->L * (size_t)ncols * sizeof(double) + 1);
    ph = malloc(LP * (size_t)a->nph * sizeof(double) + 1);
    tr = malloc(LP * (size_t)tcols * sizeof(int64_t) + 1);
    a->phase_rank = calloc((size_t)a->P * (size_t)a->nph + 1, sizeof(double));
    if (!ri || !rs || !ph || !tr || !a->phase_rank) {
        st = MOE_ERROR_SET(log, MOE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (s = 0; s < a->S; s++) {
        if ((st = moe_tel_reader_read(r, MOE_TEL_ROUTED, MOE_TEL_I64, s, 1, ri)) != MOE_OK)
            goto out;
        for (i = 0; i < LE; i++) {
            a->routed_le[i] += ri[i];
            a->routed += ri[i];
        }
        if (a->has_pd) {
            if ((st = moe_tel_reader_read(r, MOE_TEL_PROCESSED, MOE_TEL_I64, s, 1, ri)) != MOE_OK)
                goto out;
            for (i = 0; i < LE; i++)
                a->processed += ri[i];
            if ((st = moe_tel_reader_read(r, MOE_TEL_DROPPED, MOE_TEL_I64, s, 1, ri)) != MOE_OK)
                goto out;
            for (i = 0; i < LE; i++)
                a->dropped += ri[i];
        }
        if (a->has_router) {
            if ((st = moe_tel_reader_read(r, MOE_TEL_ROUTER, MOE_TEL_F64, s, 1, rs)) != MOE_OK)
                goto out;
            for (l = 0; l < (size_t)a->L; l++) {
                an_sum_finite(a->ent_col, rs + l * ncols, &a->ent_sum, &a->ent_n);
                an_sum_finite(a->top1_col, rs + l * ncols, &a->top1_sum, &a->top1_n);
                an_sum_finite(a->aux_col, rs + l * ncols, &a->aux_sum, &a->aux_n);
            }
        }
        if (a->has_phase) {
            if ((st = moe_tel_reader_read(r, MOE_TEL_PHASE, MOE_TEL_F64, s, 1, ph)) != MOE_OK)
                goto out;
            for (l = 0; l < (size_t)a->L; l++)
                for (p = 0; p < (size_t)a->P; p++)
                    for (i = 0; i < (size_t)a->nph; i++)
                        a->phase_rank[p * a->nph + i] += ph[(l * a->P + p) * a->nph + i];
        }
        if (a->has_traffic) {
            if ((st = moe_tel_reader_read(r, MOE_TEL_TRAFFIC, MOE_TEL_I64, s, 1, tr)) != MOE_OK)
                goto out;
            for (i = 0; tcol >= 0 && i < LP; i++)
                a->bytes_sent += tr[i * tcols + tcol];
        }
    }
out:
    free(ri);
    free(rs);
    free(ph);
    free(tr);
    return st;
}

static void an_layers(cJSON *root, const an_acc_t *a)
{
    cJSON  *arr = cJSON_AddArrayToObject(root, "layers_load");
    int64_t l, e;

    for (l = 0; l < a->L && arr; l++) {
        const int64_t *x = a->routed_le + l * a->E;
        int64_t        tot = 0, hi = 0, lo = 0;
        cJSON         *o = cJSON_CreateObject(), *m;
        double         mean;

        for (e = 0; e < a->E; e++) {
            tot += x[e];
            if (x[e] > x[hi])
                hi = e;
            if (x[e] < x[lo])
                lo = e;
        }
        mean = (double)tot / (double)a->E;
        cJSON_AddNumberToObject(o, "layer", (double)l);
        cJSON_AddNumberToObject(o, "routed", (double)tot);
        an_add_num(o, "max_mean_load", tot > 0 ? (double)x[hi] / mean : NAN);
        m = cJSON_AddObjectToObject(o, "most_loaded");
        cJSON_AddNumberToObject(m, "expert", (double)hi);
        cJSON_AddNumberToObject(m, "routed", (double)x[hi]);
        an_add_num(m, "share", tot > 0 ? (double)x[hi] / (double)tot : NAN);
        m = cJSON_AddObjectToObject(o, "least_loaded");
        cJSON_AddNumberToObject(m, "expert", (double)lo);
        cJSON_AddNumberToObject(m, "routed", (double)x[lo]);
        an_add_num(m, "share", tot > 0 ? (double)x[lo] / (double)tot : NAN);
        cJSON_AddItemToArray(arr, o);
    }
}

static moe_status_t an_phases(moe_tel_reader_t *r, cJSON *root, const an_acc_t *a)
{
    char       **names = NULL;
    int          n = 0, i, total_col;
    int64_t      p;
    cJSON       *o = cJSON_AddObjectToObject(root, "phase_seconds");
    double       total = 0;
    moe_status_t st;

    if (!a->has_phase) {
        cJSON_DeleteItemFromObject(root, "phase_seconds");
        cJSON_AddNullToObject(root, "phase_seconds");
        return MOE_OK;
    }
    st = moe_tel_reader_attr_strlist(r, MOE_TEL_PHASE, "columns", &names, &n);
    if (st != MOE_OK)
        return st;
    total_col = an_index(names, n, "total");
    if (total_col >= 0 && total_col < a->nph)
        for (p = 0; p < a->P; p++)
            total += a->phase_rank[p * a->nph + total_col] / (double)a->P;
    for (i = 0; i < n && i < a->nph && o; i++) {
        double mean = 0;
        cJSON *x = cJSON_AddObjectToObject(o, names[i]);
        for (p = 0; p < a->P; p++)
            mean += a->phase_rank[p * a->nph + i] / (double)a->P;
        cJSON_AddNumberToObject(x, "mean_over_ranks_s", mean);
        an_add_num(x, "share_of_total", total > 0 ? mean / total : NAN);
    }
    moe_tel_reader_strlist_free(names, n);
    return MOE_OK;
}

static moe_status_t an_topology(moe_tel_reader_t *r, cJSON *root, const moe_tel_info_t *in)
{
    char (*host)[64];
    cJSON       *arr;
    int64_t      i, j;
    moe_status_t st;

    if (!moe_tel_reader_has(r, MOE_TEL_HOSTNAME)) {
        cJSON_AddNullToObject(root, "hosts");
        return MOE_OK;
    }
    host = calloc((size_t)in->nranks, sizeof(*host));
    if (host == NULL)
        return MOE_ERR_NOMEM;
    st = moe_tel_reader_strings(r, MOE_TEL_HOSTNAME, in->nranks, sizeof(host[0]), &host[0][0]);
    if (st == MOE_OK && (arr = cJSON_AddArrayToObject(root, "hosts")) != NULL)
        for (i = 0; i < in->nranks; i++) {
            for (j = 0; j < i && strcmp(host[j], host[i]) != 0; j++)
                ;
            if (j == i)
                cJSON_AddItemToArray(arr, cJSON_CreateString(host[i]));
        }
    free(host);
    return st;
}

static moe_status_t an_matrix(moe_tel_reader_t *r, cJSON *root, const moe_tel_info_t *in)
{
    int64_t     *m, i, j, P = in->nranks;
    cJSON       *arr;
    moe_status_t st;

    if (P > AN_MATRIX_MAX_RANKS || !moe_tel_reader_has(r, MOE_TEL_TRAFFIC_MATRIX))
        return MOE_OK;
    m = malloc((size_t)(P * P) * sizeof(int64_t));
    if (m == NULL)
        return MOE_ERR_NOMEM;
    st = moe_tel_reader_read(r, MOE_TEL_TRAFFIC_MATRIX, MOE_TEL_I64, 0, P, m);
    if (st == MOE_OK && (arr = cJSON_AddArrayToObject(root, "traffic_matrix_bytes")) != NULL)
        for (i = 0; i < P; i++) {
            cJSON *row = cJSON_CreateArray();
            for (j = 0; j < P && row; j++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)m[i * P + j]));
            cJSON_AddItemToArray(arr, row);
        }
    free(m);
    return st;
}

static moe_status_t an_events(moe_tel_reader_t *r, cJSON *root, const moe_tel_info_t *in)
{
    moe_tel_event_t *ev;
    cJSON           *arr;
    int64_t          i0, i, n;
    moe_status_t     st = MOE_OK;

    if (!moe_tel_reader_has(r, MOE_TEL_EVENTS)) {
        cJSON_AddNullToObject(root, "events");
        return MOE_OK;
    }
    ev = malloc(AN_EVENT_CHUNK * sizeof(*ev));
    arr = cJSON_AddArrayToObject(root, "events");
    if (ev == NULL)
        return MOE_ERR_NOMEM;
    for (i0 = 0; i0 < in->nevents && st == MOE_OK; i0 += AN_EVENT_CHUNK) {
        n = in->nevents - i0 < AN_EVENT_CHUNK ? in->nevents - i0 : AN_EVENT_CHUNK;
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

/* Builds the whole analysis as a cJSON tree in *root_p (cJSON_Delete frees it). */
static moe_status_t an_build(moe_tel_reader_t *r, const char *path, moe_log_t *log,
                             cJSON **root_p)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    static const char    *cfg_strs[] = {"drop_policy", "workload", "exchange", "placement",
                                        "activation", "telemetry_mode"};
    cJSON                *root = cJSON_CreateObject(), *cfg;
    an_acc_t              a;
    moe_status_t          st;
    size_t                i;

    *root_p = NULL;
    memset(&a, 0, sizeof(a));
    if (root == NULL)
        return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "out of memory");
    a.L = in->layers;
    a.E = in->experts;
    a.P = in->nranks;
    a.S = in->steps;
    a.routed_le = calloc((size_t)(a.L * a.E), sizeof(int64_t));
    if (a.routed_le == NULL) {
        cJSON_Delete(root);
        return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddNumberToObject(root, "schema_version", (double)in->schema_version);
    an_add_str_attr(r, root, "moerun_version");
    an_add_str_attr(r, root, "source");
    an_missing(r, root);
    an_add_str_attr(r, root, "status");
    cJSON_AddNumberToObject(root, "steps_completed", (double)in->steps_completed);
    cJSON_AddNumberToObject(root, "steps_in_file", (double)in->steps);
    an_add_str_attr(r, root, "start_time");
    an_add_str_attr(r, root, "end_time");
    cfg = cJSON_AddObjectToObject(root, "config");
    an_add_count(cfg, "experts", in->experts);
    an_add_count(cfg, "top_k", in->top_k);
    an_add_count(cfg, "layers", in->layers);
    an_add_count(cfg, "d_model", in->d_model);
    an_add_count(cfg, "d_ffn", in->d_ffn);
    an_add_count(cfg, "tokens_per_rank", in->tokens_per_rank);
    an_add_num(cfg, "capacity_factor", in->capacity_factor);
    for (i = 0; i < sizeof(cfg_strs) / sizeof(cfg_strs[0]); i++)
        an_add_str_attr(r, cfg, cfg_strs[i]);
    an_add_count(root, "ranks", in->nranks);
    an_add_count(root, "nodes", in->nnodes);
    if ((st = an_topology(r, root, in)) != MOE_OK || (st = an_stream_steps(r, log, &a)) != MOE_OK)
        goto out;
    cJSON_AddNumberToObject(root, "routed", (double)a.routed);
    an_add_num(root, "processed", a.has_pd ? (double)a.processed : NAN);
    an_add_num(root, "dropped", a.has_pd ? (double)a.dropped : NAN);
    an_add_num(root, "drop_rate",
               a.has_pd && a.routed > 0 ? (double)a.dropped / (double)a.routed : NAN);
    an_layers(root, &a);
    /* means over the steps x layers whose value is finite (all of them in a run's file) */
    an_add_num(root, "load_entropy_norm_mean", a.ent_n > 0 ? a.ent_sum / (double)a.ent_n : NAN);
    an_add_num(root, "top1_prob_mean", a.top1_n > 0 ? a.top1_sum / (double)a.top1_n : NAN);
    an_add_num(root, "aux_loss_mean", a.aux_n > 0 ? a.aux_sum / (double)a.aux_n : NAN);
    if ((st = an_phases(r, root, &a)) != MOE_OK)
        goto out;
    an_add_num(root, "bytes_sent", a.has_traffic ? (double)a.bytes_sent : NAN);
    if ((st = an_matrix(r, root, in)) != MOE_OK || (st = an_events(r, root, in)) != MOE_OK)
        goto out;
out:
    free(a.routed_le);
    free(a.phase_rank);
    if (st != MOE_OK) {
        cJSON_Delete(root);
        return st;
    }
    *root_p = root;
    return MOE_OK;
}

/* ---------------------------------------------------------------- text rendering ------ */

static const char *an_s(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : "-";
}

static double an_n(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void an_print_text(const cJSON *root, FILE *out)
{
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config"), *x, *y;

    fprintf(out, "# moerun telemetry: %s (schema %g, moerun %s)\n", an_s(root, "file"),
            an_n(root, "schema_version"), an_s(root, "moerun_version"));
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "source")))
        fprintf(out, "source            %s\n", an_s(root, "source"));
    x = cJSON_GetObjectItemCaseSensitive(root, "missing");
    if (cJSON_GetArraySize(x) > 0) {
        fprintf(out, "missing           (not in this file; their numbers show as nan):");
        cJSON_ArrayForEach(y, x)
            fprintf(out, " %s", y->valuestring);
        fprintf(out, "\n");
    }
    fprintf(out, "status            %s, %.0f steps completed (%.0f in the file)\n",
            an_s(root, "status"), an_n(root, "steps_completed"), an_n(root, "steps_in_file"));
    fprintf(out, "time              %s .. %s\n", an_s(root, "start_time"), an_s(root, "end_time"));
    fprintf(out, "model             experts %g, top_k %g, layers %g, d_model %g, d_ffn %g\n",
            an_n(cfg, "experts"), an_n(cfg, "top_k"), an_n(cfg, "layers"), an_n(cfg, "d_model"),
            an_n(cfg, "d_ffn"));
    fprintf(out, "run               tokens/rank %g, capacity factor %g, drop policy %s, "
                 "workload %s, exchange %s, placement %s, telemetry %s\n",
            an_n(cfg, "tokens_per_rank"), an_n(cfg, "capacity_factor"), an_s(cfg, "drop_policy"),
            an_s(cfg, "workload"), an_s(cfg, "exchange"), an_s(cfg, "placement"),
            an_s(cfg, "telemetry_mode"));
    fprintf(out, "ranks             %g on %g node(s); hosts:", an_n(root, "ranks"),
            an_n(root, "nodes"));
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(root, "hosts"))
        fprintf(out, " %s", x->valuestring);
    fprintf(out, "\n");
    fprintf(out, "routed            %.0f pairs\nprocessed         %.0f\ndropped           %.0f "
                 "(drop rate %.4f)\n",
            an_n(root, "routed"), an_n(root, "processed"), an_n(root, "dropped"),
            an_n(root, "drop_rate"));
    fprintf(out, "# layer  routed  max/mean  most loaded (share)  least loaded (share)\n");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(root, "layers_load")) {
        const cJSON *hi = cJSON_GetObjectItemCaseSensitive(x, "most_loaded");
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(x, "least_loaded");
        fprintf(out, "  %5g  %6.0f  %8.3f  expert %g (%.3f)  expert %g (%.3f)\n",
                an_n(x, "layer"), an_n(x, "routed"), an_n(x, "max_mean_load"),
                an_n(hi, "expert"), an_n(hi, "share"), an_n(lo, "expert"), an_n(lo, "share"));
    }
    fprintf(out, "router            load entropy (norm.) %.4f, top-1 prob %.4f, aux loss %.4f "
                 "(means over steps x layers)\n",
            an_n(root, "load_entropy_norm_mean"), an_n(root, "top1_prob_mean"),
            an_n(root, "aux_loss_mean"));
    fprintf(out, "# phase      seconds (mean over ranks)  share of total\n");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(root, "phase_seconds"))
        fprintf(out, "  %-10s %12.6f  %12.3f\n", x->string, an_n(x, "mean_over_ranks_s"),
                an_n(x, "share_of_total"));
    fprintf(out, "bytes sent        %.0f (all ranks, self excluded)\n", an_n(root, "bytes_sent"));
    y = cJSON_GetObjectItemCaseSensitive(root, "traffic_matrix_bytes");
    if (y) {
        fprintf(out, "# traffic matrix, payload bytes, row = sender, column = receiver\n");
        cJSON_ArrayForEach(x, y) {
            const cJSON *v;
            fprintf(out, " ");
            cJSON_ArrayForEach(v, x)
                fprintf(out, " %12.0f", v->valuedouble);
            fprintf(out, "\n");
        }
    }
    y = cJSON_GetObjectItemCaseSensitive(root, "events");
    if (cJSON_IsNull(y))
        fprintf(out, "# monitor events: - (not in this file)\n");
    else
        fprintf(out, "# monitor events: %d\n", cJSON_GetArraySize(y));
    {
        int i = 0;
        cJSON_ArrayForEach(x, y) {
            if (i++ == AN_TEXT_EVENTS_MAX) {
                fprintf(out, "  ... %d more (--json lists all)\n",
                        cJSON_GetArraySize(y) - AN_TEXT_EVENTS_MAX);
                break;
            }
            fprintf(out, "  step %5g  layer %3g  expert %4g  %-16s value %g threshold %g  %s\n",
                    an_n(x, "step"), an_n(x, "layer"), an_n(x, "expert"), an_s(x, "kind"),
                    an_n(x, "value"), an_n(x, "threshold"), an_s(x, "message"));
        }
    }
}

/* ---------------------------------------------------------------- main ---------------- */

int main(int argc, char **argv)
{
    const char       *path = NULL;
    int               json = 0, i, rc = 0;
    moe_tel_reader_t *r = NULL;
    moe_log_t         log;
    cJSON            *root = NULL;
    char             *txt;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            an_usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "moerun-analyze: unknown option '%s'\n", argv[i]);
            an_usage(stderr, argv[0]);
            return 2;
        } else if (path == NULL) {
            path = argv[i];
        } else {
            fprintf(stderr, "moerun-analyze: more than one file given ('%s')\n", argv[i]);
            return 2;
        }
    }
    if (path == NULL) {
        an_usage(stderr, argv[0]);
        return 2;
    }
    moe_log_init(&log, 0, MOE_LOG_ERROR);
    if (moe_tel_reader_open(path, &log, &r) != MOE_OK ||
        an_build(r, path, &log, &root) != MOE_OK) {
        fprintf(stderr, "moerun-analyze: %s\n",
                log.last_error[0] ? log.last_error : "cannot read the file");
        moe_tel_reader_close(r);
        return 1;
    }
    moe_tel_reader_close(r);
    if (json) {
        txt = cJSON_Print(root);
        if (txt == NULL) {
            fprintf(stderr, "moerun-analyze: out of memory\n");
            rc = 1;
        } else {
            printf("%s\n", txt);
            free(txt);
        }
    } else {
        an_print_text(root, stdout);
    }
    cJSON_Delete(root);
    return rc;
}
