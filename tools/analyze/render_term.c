/*
 * tools/analyze/render_term.c — the terminal summary of an analysis report.
 *
 * What always holds:
 *  1. It reads only the cJSON report (analyze_run.c builds it), so it agrees with the JSON.
 *  2. The summary is rendered to memory, then written with every terminal control escaped
 *     (moe_esc_term): strings from the file cannot act on the terminal.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"
#include "moerun/base/escape.h"

#define AR_TERM_FINDINGS 8

static void ar_terminal(const cJSON *root, FILE *out);

/* The terminal summary: rendered to memory, then written with every terminal control
 * escaped (moe_esc_term): strings from the file cannot act on the terminal. */
void an_render_terminal(const cJSON *root, FILE *out)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *m = open_memstream(&buf, &len);

    if (m == NULL) {
        fprintf(out, "(out of memory rendering the summary)\n");
        return;
    }
    ar_terminal(root, m);
    if (fclose(m) == 0)
        moe_esc_term(out, buf);
    free(buf);
}

static void ar_terminal(const cJSON *root, FILE *out)
{
    const cJSON *run, *x, *y;

    cJSON_ArrayForEach(run, an__get(root, "runs")) {
        const cJSON *cfg = an__get(run, "config");
        int          i = 0;
        fprintf(out, "# moerun telemetry: %s (schema %g, moerun %s)\n", an_str(run, "file"),
                an_num(run, "schema_version"), an_str(run, "moerun_version"));
        fprintf(out, "status            %s, %.0f steps completed (%.0f in the file)\n",
                an_str(run, "status"), an_num(run, "steps_completed"), an_num(run, "steps_in_file"));
        fprintf(out, "model             experts %s, top_k %s, layers %s, d_model %s, d_ffn %s\n",
                an__f(cfg, "experts", "%g"), an__f(cfg, "top_k", "%g"), an__f(cfg, "layers", "%g"),
                an__f(cfg, "d_model", "%g"), an__f(cfg, "d_ffn", "%g"));
        fprintf(out, "run               router %s, capacity factor %s, workload %s, exchange %s, "
                     "placement %s\n",
                an_str(cfg, "router"), an__f(cfg, "capacity_factor", "%g"), an_str(cfg, "workload"),
                an_str(cfg, "exchange"), an_str(cfg, "placement"));
        if (cJSON_IsTrue(an__get(run, "imported")))
            fprintf(out, "source            %s (imported routing log: absent data is reported missing)\n",
                    an_str(run, "source"));
        fprintf(out, "ranks             %s on %s node(s); hosts:", an__f(run, "ranks", "%g"),
                an__f(run, "nodes", "%g"));
        cJSON_ArrayForEach(x, an__get(run, "hosts"))
            fprintf(out, " %s", x->valuestring);
        fprintf(out, "\nrouted            %s pairs; processed %s; dropped %s (drop rate %s)\n",
                an__f(run, "routed", "%.0f"), an__f(run, "processed", "%.0f"),
                an__f(run, "dropped", "%.0f"), an__f(run, "drop_rate", "%.4f"));
        fprintf(out, "# layer  routed  max/mean  most loaded (share)  least loaded (share)\n");
        cJSON_ArrayForEach(x, an__get(run, "layers_load")) {
            const cJSON *hi = an__get(x, "most_loaded"), *lo = an__get(x, "least_loaded");
            fprintf(out, "  %5g  %6.0f  %8.3f  expert %g (%.3f)  expert %g (%.3f)\n",
                    an_num(x, "layer"), an_num(x, "routed"), an_num(x, "max_mean_load"),
                    an_num(hi, "expert"), an_num(hi, "share"), an_num(lo, "expert"),
                    an_num(lo, "share"));
        }
        fprintf(out, "router            load entropy (norm.) %s, top-1 prob %s, aux loss %s\n",
                an__f(run, "load_entropy_norm_mean", "%.4f"), an__f(run, "top1_prob_mean", "%.4f"),
                an__f(run, "aux_loss_mean", "%.4f"));
        fprintf(out, "# phase      seconds (mean over ranks)  share of total (sub-phases: of their phase)\n");
        cJSON_ArrayForEach(x, an__get(run, "phase_seconds")) {
            if (an__get(x, "parent") != NULL)
                continue;
            fprintf(out, "  %-10s %12.6f  %12s\n", x->string, an_num(x, "mean_over_ranks_s"),
                    an__f(x, "share_of_total", "%.3f"));
            cJSON_ArrayForEach(y, an__get(run, "phase_seconds"))
                if (strcmp(an_str(y, "parent"), x->string) == 0)
                    fprintf(out, "    %-14s %10.6f  %9s of %s\n", y->string,
                            an_num(y, "mean_over_ranks_s"), an__f(y, "share_of_parent", "%.3f"),
                            x->string);
        }
        y = NULL;
        fprintf(out, "bytes sent        %s (all ranks, self excluded)\n", an__f(run, "bytes_sent", "%.0f"));
        y = an__get(run, "traffic_matrix_bytes");
        if (y && cJSON_GetArraySize(y) <= 16) {
            fprintf(out, "# traffic matrix, payload bytes, row = sender, column = receiver\n");
            cJSON_ArrayForEach(x, y) {
                const cJSON *v;
                fprintf(out, " ");
                cJSON_ArrayForEach(v, x)
                    fprintf(out, " %12.0f", v->valuedouble);
                fprintf(out, "\n");
            }
        }
        y = an__get(run, "events");
        fprintf(out, "# monitor events: %d", cJSON_GetArraySize(y));
        cJSON_ArrayForEach(x, y) {
            if (i++ == 5)
                break;
            fprintf(out, "%s %s@%g", i == 1 ? " (first:" : ",", an_str(x, "kind"), an_num(x, "step"));
        }
        fprintf(out, "%s\n", i > 0 ? ")" : "");
        fprintf(out, "# findings (severity, top %d)\n", AR_TERM_FINDINGS);
        i = 0;
        cJSON_ArrayForEach(x, an__get(run, "findings")) {
            if (i++ == AR_TERM_FINDINGS)
                break;
            fprintf(out, "  %-8s %s\n", an_str(x, "severity"), an_str(x, "title"));
        }
        fprintf(out, "# recommendations\n");
        cJSON_ArrayForEach(x, an__get(run, "recommendations")) {
            const cJSON *im = an__get(x, "impact");
            fprintf(out, "  %s: %s %.4g -> %.4g (%+.1f%%) [%s]\n", an_str(x, "title"),
                    an_str(im, "metric"), an_num(im, "current"), an_num(im, "projected"),
                    an_num(im, "change_pct"), an_str(x, "complexity"));
            if (an__get(x, "measured"))
                fprintf(out, "    measured with the real router (%s): %.4g\n",
                        an_str(an__get(x, "measured"), "file"),
                        an_num(an__get(x, "measured"), "inter_node_copies_per_token"));
        }
        if (cJSON_GetArraySize(an__get(run, "recommendations")) == 0)
            fprintf(out, "  none (no change with a replayed gain)\n");
    }
    y = an__get(an__get(root, "comparison"), "rows");
    if (cJSON_GetArraySize(an__get(root, "runs")) > 1 && y) {
        const cJSON *cn = an__get(an__get(root, "comparison"), "columns"), *row, *v;
        fprintf(out, "# comparison\n ");
        cJSON_ArrayForEach(v, cn)
            fprintf(out, " %s", v->valuestring);
        fprintf(out, "\n");
        cJSON_ArrayForEach(row, y) {
            fprintf(out, " ");
            cJSON_ArrayForEach(v, row) {
                if (cJSON_IsString(v))
                    fprintf(out, " %s", v->valuestring);
                else if (cJSON_IsNumber(v))
                    fprintf(out, " %.4g", v->valuedouble);
                else
                    fprintf(out, " -");
            }
            fprintf(out, "\n");
        }
    }
}
