/*
 * tools/analyze/analyze_compare.c — the analyses across runs (docs/analysis.md): the report
 * root's "comparison" table (an_compare: key numbers per run, with a node_limited
 * recommendation set next to what a node-limited run measured) and what differs between
 * runs, with deltas against the first: the "differences" object and its terminal, Markdown
 * and HTML renderings.
 *
 * What always holds:
 *  1. In "differences" only columns whose value differs from run 0's in at least one run are
 *     listed (strings compared exactly, numbers by value; a value one run lacks and another
 *     has differs).
 *  2. For numbers, delta = value - run 0's value and delta_pct = 100 * delta / |run 0's|
 *     (null when run 0's is 0 or either is missing); run 0's own deltas are 0.
 *  3. Values are taken from the per-run JSON tree (never the files), so every rendering
 *     agrees with --json.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analyze_int.h"

/* A column: where it lives in a run's tree (up to three keys deep) and whether it is text. */
typedef struct cmp_col {
    const char *name;
    const char *k1, *k2, *k3, *k4;
    int         text;
} cmp_col_t;

static const cmp_col_t cmp_cols[] = {
    {"exchange", "config", "exchange", NULL, NULL, 1},
    {"placement", "config", "placement", NULL, NULL, 1},
    {"workload", "config", "workload", NULL, NULL, 1},
    {"drop_policy", "config", "drop_policy", NULL, NULL, 1},
    {"activation", "config", "activation", NULL, NULL, 1},
    {"telemetry_mode", "config", "telemetry_mode", NULL, NULL, 1},
    {"ranks", "ranks", NULL, NULL, NULL, 0},
    {"nodes", "nodes", NULL, NULL, NULL, 0},
    {"experts", "config", "experts", NULL, NULL, 0},
    {"top_k", "config", "top_k", NULL, NULL, 0},
    {"layers", "config", "layers", NULL, NULL, 0},
    {"d_model", "config", "d_model", NULL, NULL, 0},
    {"d_ffn", "config", "d_ffn", NULL, NULL, 0},
    {"tokens_per_rank", "config", "tokens_per_rank", NULL, NULL, 0},
    {"capacity_factor", "config", "capacity_factor", NULL, NULL, 0},
    {"steps", "steps_in_file", NULL, NULL, NULL, 0},
    {"tokens_per_s", "tokens_per_s", NULL, NULL, NULL, 0},
    {"routed", "routed", NULL, NULL, NULL, 0},
    {"dropped", "dropped", NULL, NULL, NULL, 0},
    {"drop_rate", "drop_rate", NULL, NULL, NULL, 0},
    {"bytes_sent", "bytes_sent", NULL, NULL, NULL, 0},
    {"inter_node_bytes", "analyses", "communication", "bytes", "bytes_inter", 0},
    {"intra_node_bytes", "analyses", "communication", "bytes", "bytes_intra", 0},
    {"exchange_share", "analyses", "communication", "exchange_share", NULL, 0},
    {"load_entropy_norm", "load_entropy_norm_mean", NULL, NULL, NULL, 0},
    {"aux_loss", "aux_loss_mean", NULL, NULL, NULL, 0},
};
#define CMP_NCOLS ((int)(sizeof(cmp_cols) / sizeof(cmp_cols[0])))

static const cJSON *cmp_value(const cJSON *run, const cmp_col_t *c)
{
    const char  *k[4] = {c->k1, c->k2, c->k3, c->k4};
    const cJSON *x = run;
    int          i;

    for (i = 0; i < 4 && k[i] && x; i++)
        x = cJSON_GetObjectItemCaseSensitive(x, k[i]);
    return x;
}

/* 1 if a and b differ as values of column c (a missing or null value differs from a present one). */
static int cmp_differs(const cJSON *a, const cJSON *b, const cmp_col_t *c)
{
    if (c->text) {
        const char *sa = cJSON_IsString(a) ? a->valuestring : NULL;
        const char *sb = cJSON_IsString(b) ? b->valuestring : NULL;
        return (sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0);
    }
    if (cJSON_IsNumber(a) != cJSON_IsNumber(b))
        return 1;
    return cJSON_IsNumber(a) && a->valuedouble != b->valuedouble;
}

void an_compare_diff(cJSON *root)
{
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(root, "runs"), *r0, *run;
    cJSON       *diff, *cols;
    int          n = cJSON_GetArraySize(runs), c;

    if (n < 2)
        return;
    r0 = cJSON_GetArrayItem(runs, 0);
    diff = cJSON_AddObjectToObject(root, "differences");
    cJSON_AddStringToObject(diff, "baseline", an_str(r0, "file"));
    {
        cJSON *files = cJSON_AddArrayToObject(diff, "files");
        cJSON_ArrayForEach(run, runs)
            cJSON_AddItemToArray(files, cJSON_CreateString(an_str(run, "file")));
    }
    cols = cJSON_AddArrayToObject(diff, "columns");
    for (c = 0; c < CMP_NCOLS; c++) {
        const cmp_col_t *col = &cmp_cols[c];
        const cJSON     *v0 = cmp_value(r0, col);
        cJSON           *o, *vals, *d = NULL, *dp = NULL;
        int              differs = 0;

        cJSON_ArrayForEach(run, runs)
            differs |= cmp_differs(v0, cmp_value(run, col), col);
        if (!differs)
            continue;
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "column", col->name);
        vals = cJSON_AddArrayToObject(o, "values");
        if (!col->text) {
            d = cJSON_AddArrayToObject(o, "delta");
            dp = cJSON_AddArrayToObject(o, "delta_pct");
        }
        cJSON_ArrayForEach(run, runs) {
            const cJSON *v = cmp_value(run, col);
            if (col->text) {
                cJSON_AddItemToArray(vals, cJSON_IsString(v) ? cJSON_CreateString(v->valuestring)
                                                             : cJSON_CreateNull());
            } else if (cJSON_IsNumber(v)) {
                cJSON_AddItemToArray(vals, cJSON_CreateNumber(v->valuedouble));
                if (cJSON_IsNumber(v0)) {
                    double delta = v->valuedouble - v0->valuedouble;
                    cJSON_AddItemToArray(d, cJSON_CreateNumber(delta));
                    cJSON_AddItemToArray(dp, v0->valuedouble != 0
                                                 ? cJSON_CreateNumber(100 * delta / fabs(v0->valuedouble))
                                                 : cJSON_CreateNull());
                } else {
                    cJSON_AddItemToArray(d, cJSON_CreateNull());
                    cJSON_AddItemToArray(dp, cJSON_CreateNull());
                }
            } else {
                cJSON_AddItemToArray(vals, cJSON_CreateNull());
                cJSON_AddItemToArray(d, cJSON_CreateNull());
                cJSON_AddItemToArray(dp, cJSON_CreateNull());
            }
        }
        cJSON_AddItemToArray(cols, o);
    }
}

/* One cell: value, and for runs after the first the delta ("+1.2e+06, +35.0%"). */
static void cmp_cell(char *buf, size_t len, const cJSON *col, int i)
{
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(col, "values"), i);
    const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(col, "delta"), i);
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(col, "delta_pct"), i);
    int          k;

    if (cJSON_IsString(v))
        k = snprintf(buf, len, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        k = snprintf(buf, len, "%.4g", v->valuedouble);
    else
        k = snprintf(buf, len, "-");
    if (i == 0 || !cJSON_IsNumber(d) || k < 0 || (size_t)k >= len)
        return;
    if (cJSON_IsNumber(p))
        snprintf(buf + k, len - (size_t)k, " (%+.4g, %+.1f%%)", d->valuedouble, p->valuedouble);
    else
        snprintf(buf + k, len - (size_t)k, " (%+.4g)", d->valuedouble);
}

void an_render_diff_terminal(const cJSON *root, FILE *out)
{
    const cJSON *diff = cJSON_GetObjectItemCaseSensitive(root, "differences"), *col, *f;
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(diff, "columns");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(diff, "files");
    int          n = cJSON_GetArraySize(files), i;
    char         cell[160];

    if (diff == NULL)
        return;
    fprintf(out, "# differences against run 0 (delta, %%)\n");
    i = 0;
    cJSON_ArrayForEach(f, files)
        fprintf(out, "  run %d: %s\n", i++, cJSON_IsString(f) ? f->valuestring : "-");
    if (cJSON_GetArraySize(cols) == 0) {
        fprintf(out, "  no compared column differs\n");
        return;
    }
    cJSON_ArrayForEach(col, cols) {
        fprintf(out, "  %-18s", an_str(col, "column"));
        for (i = 0; i < n; i++) {
            cmp_cell(cell, sizeof(cell), col, i);
            fprintf(out, " | %s", cell);
        }
        fprintf(out, "\n");
    }
}

void an_render_diff_markdown(const cJSON *root, FILE *out)
{
    const cJSON *diff = cJSON_GetObjectItemCaseSensitive(root, "differences"), *col, *f;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(diff, "files");
    int          n = cJSON_GetArraySize(files), i;
    char         cell[160];

    if (diff == NULL)
        return;
    fprintf(out, "\n## Differences against run 0\n\n");
    i = 0;
    cJSON_ArrayForEach(f, files)
        fprintf(out, "- run %d: `%s`\n", i++, cJSON_IsString(f) ? f->valuestring : "-");
    fprintf(out, "\n| column |");
    for (i = 0; i < n; i++)
        fprintf(out, " run %d |", i);
    fprintf(out, "\n|---|");
    for (i = 0; i < n; i++)
        fprintf(out, "---|");
    fprintf(out, "\n");
    cJSON_ArrayForEach(col, cJSON_GetObjectItemCaseSensitive(diff, "columns")) {
        fprintf(out, "| %s |", an_str(col, "column"));
        for (i = 0; i < n; i++) {
            char *c;
            cmp_cell(cell, sizeof(cell), col, i);
            for (c = cell; *c; c++)     /* file text in a table cell */
                if (*c == '|' || *c == '\n')
                    *c = ' ';
            fprintf(out, " %s |", cell);
        }
        fprintf(out, "\n");
    }
}

void an_render_diff_html(const cJSON *root, FILE *out)
{
    const cJSON *diff = cJSON_GetObjectItemCaseSensitive(root, "differences"), *col, *f;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(diff, "files");
    int          n = cJSON_GetArraySize(files), i;
    char         cell[160];

    if (diff == NULL)
        return;
    fprintf(out, "<h2>Differences against run 0</h2>\n<ol start=\"0\">");
    cJSON_ArrayForEach(f, files) {
        fprintf(out, "<li>");
        an__html_esc(out, cJSON_IsString(f) ? f->valuestring : "-");
        fprintf(out, "</li>");
    }
    fprintf(out, "</ol>\n<table id=\"differences\"><tr><th>column</th>");
    for (i = 0; i < n; i++)
        fprintf(out, "<th>run %d</th>", i);
    fprintf(out, "</tr>\n");
    cJSON_ArrayForEach(col, cJSON_GetObjectItemCaseSensitive(diff, "columns")) {
        fprintf(out, "<tr><td>");
        an__html_esc(out, an_str(col, "column"));
        fprintf(out, "</td>");
        for (i = 0; i < n; i++) {
            cmp_cell(cell, sizeof(cell), col, i);
            fprintf(out, "<td>");
            an__html_esc(out, cell);
            fprintf(out, "</td>");
        }
        fprintf(out, "</tr>\n");
    }
    fprintf(out, "</table>\n");
}

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
