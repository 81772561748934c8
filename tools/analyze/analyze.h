/*
 * tools/analyze/analyze.h — moerun-analyze's analyses and renderings (docs/analysis.md).
 *
 * One analysis, several renderings: an_run_analyse() reads one telemetry file through
 * tools/reader/telemetry_reader and builds one cJSON object (the per-run part of the JSON report);
 * the renderers (render_term.c, render_md.c, render_html.c) print the terminal summary,
 * Markdown and HTML from the same tree, never from the file.
 */
#ifndef MOERUN_TOOLS_ANALYZE_H
#define MOERUN_TOOLS_ANALYZE_H

#include <stdint.h>
#include <stdio.h>

#include <cJSON.h>

#include "moerun/base/log.h"

/* Version of the analysis JSON (docs/analysis.md, "JSON schema"). */
#define AN_JSON_SCHEMA 1

typedef struct an_opts {
    double  peak_gflops;   /* per-rank peak for FLOPs utilisation; <= 0: file attribute or missing */
    int64_t dead_window;   /* steps of zero load that make an expert dead */
    char  **vocab;         /* token id -> text (NULL: no vocabulary) */
    int64_t nvocab;
    const char *write_placement; /* write the planned placement here (NULL: only name it) */
    unsigned    write_flags;     /* fileio.h flags of write_placement (MOE_OUT_FOLLOW) */
    int64_t ranks;         /* placement what-if without a placement: assumed ranks (<= 0: min(E, 8)) */
    int64_t ranks_per_node; /* ... and ranks per node of that assumed shape (<= 0: ceil(ranks / 2)) */
} an_opts_t;

/*
 * Analyses the telemetry file `path` into *run_p (cJSON_Delete frees it). On a file that
 * cannot be opened or read returns an error with the reason in log->last_error; data that
 * is absent gives sections with "status": "missing".
 */
moe_status_t an_run_analyse(const char *path, const an_opts_t *opt, moe_log_t *log,
                            cJSON **run_p);

/* Adds the comparison table of all runs to the report root (rows = runs; analyze_compare.c). */
void an_compare(cJSON *root);

/*
 * Adds "differences" to the report root (analyze_compare.c): with two runs or more, the
 * columns (configuration and key numbers) whose value differs from run 0's, with each run's
 * value, delta and delta_pct against run 0. Rendered by the two functions below.
 */
void an_compare_diff(cJSON *root);
void an_render_diff_terminal(const cJSON *root, FILE *out);
void an_render_diff_markdown(const cJSON *root, FILE *out);
void an_render_diff_html(const cJSON *root, FILE *out);

/* Renderers of the report root {"runs": [...], "comparison": {...}}. */
void an_render_terminal(const cJSON *root, FILE *out);
int  an_render_markdown(const cJSON *root, FILE *out);
int  an_render_html(const cJSON *root, FILE *out);

/*
 * Writes the per-rank phase timeline of telemetry file `tel_path` to `out_path` in the Chrome
 * trace-event format (analyze_trace.c), through a temporary file renamed into place. Errors
 * (unreadable file, no phase times, unwritable output) leave nothing and put the reason in
 * log->last_error.
 */
moe_status_t an_trace_write(const char *tel_path, const char *out_path, moe_log_t *log);

/* Helpers shared by the renderers: a number or NAN, a string or "-". */
double      an_num(const cJSON *o, const char *key);
const char *an_str(const cJSON *o, const char *key);

#endif /* MOERUN_TOOLS_ANALYZE_H */
