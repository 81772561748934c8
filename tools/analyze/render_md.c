/*
 * tools/analyze/render_md.c — the Markdown findings report of an analysis report.
 *
 * What always holds:
 *  1. It reads only the cJSON report (analyze_run.c builds it), so it agrees with the JSON.
 *  2. Every string that may come from a file goes through the one Markdown escaper (ar_md,
 *     ar_mds for printf): table/inline/HTML specials backslash-escaped, controls replaced.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

/* The Markdown escaper: s with table/inline/HTML specials backslash-escaped, newlines as
 * spaces, other control characters (ESC, ...) as U+FFFD. Every string that may come from a
 * file goes through it (ar_md to a stream, ar_mds into a rotating buffer for printf). */
static void ar_md(FILE *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    for (; *p; p++) {
        if (*p && strchr("|\\`*_[]<>#&!()~", *p))
            fputc('\\', o);
        if (*p == '\n' || *p == '\r' || *p == '\t')
            fputc(' ', o);
        else if (*p < 0x20 || *p == 0x7f)
            fputs("\xef\xbf\xbd", o);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            fputs("\xef\xbf\xbd", o), p++;
        else
            fputc(*p, o);
    }
}

static const char *ar_mds(const char *s)
{
    static char buf[8][1024];
    static int  k;
    FILE       *m;

    k = (k + 1) % 8;
    buf[k][0] = '\0';
    if ((m = fmemopen(buf[k], sizeof(buf[k]), "w")) != NULL) {
        ar_md(m, s);
        fputc('\0', m);
        fclose(m);
        buf[k][sizeof(buf[k]) - 1] = '\0';
    }
    return buf[k];
}

static void ar_md_num(FILE *o, double v)
{
    if (isfinite(v))
        fprintf(o, "%.4g", v);
    else
        fprintf(o, "missing");
}

/* "missing: why" paragraph if the section is not ok; returns 1 then. */
static int ar_md_missing(FILE *o, const cJSON *sec)
{
    if (an__ok(sec))
        return 0;
    fprintf(o, "missing: ");
    ar_md(o, sec ? an_str(sec, "missing") : "section not computed");
    fprintf(o, "\n\n");
    return 1;
}

static void ar_md_run(FILE *o, const cJSON *run)
{
    const cJSON *s, *x, *y;
    int          i;

    fprintf(o, "## Run: ");
    ar_md(o, an_str(run, "file"));
    fprintf(o, "\n\nstatus %s, router %s, %.0f steps in the file, %s experts, top-k %s, %s layers, %s ranks on %s node(s), "
               "capacity factor ", ar_mds(an_str(run, "status")), ar_mds(an_str(an__get(run, "config"), "router")),
            an_num(run, "steps_in_file"),
            an__f(an__get(run, "config"), "experts", "%g"), an__f(an__get(run, "config"), "top_k", "%g"),
            an__f(an__get(run, "config"), "layers", "%g"), an__f(run, "ranks", "%g"), an__f(run, "nodes", "%g"));
    ar_md_num(o, an_num(an__get(run, "config"), "capacity_factor"));
    fprintf(o, ".\n\n### Findings\n\n| severity | analysis | finding |\n|---|---|---|\n");
    cJSON_ArrayForEach(x, an__get(run, "findings")) {
        fprintf(o, "| %s | %s | ", ar_mds(an_str(x, "severity")), ar_mds(an_str(x, "analysis")));
        ar_md(o, an_str(x, "title"));
        fprintf(o, " |\n");
    }
    fprintf(o, "\n### Recommendations\n\n");
    if (cJSON_GetArraySize(an__get(run, "recommendations")) == 0)
        fprintf(o, "None: no change showed a gain when the recorded loads were replayed.\n\n");
    else
        fprintf(o, "| recommendation | metric | current | projected | change | complexity | evidence |\n"
                   "|---|---|---|---|---|---|---|\n");
    cJSON_ArrayForEach(x, an__get(run, "recommendations")) {
        const cJSON *im = an__get(x, "impact");
        fprintf(o, "| ");
        ar_md(o, an_str(x, "title"));
        fprintf(o, " | ");
        ar_md(o, an_str(im, "metric"));
        fprintf(o, " | ");
        ar_md_num(o, an_num(im, "current"));
        fprintf(o, " | ");
        ar_md_num(o, an_num(im, "projected"));
        fprintf(o, " | %+.1f%% | ", an_num(im, "change_pct"));
        ar_md(o, an_str(x, "complexity"));
        fprintf(o, " | ");
        ar_md(o, an_str(x, "evidence"));
        fprintf(o, " |\n");
    }

    fprintf(o, "\n### Utilisation\n\n");
    s = an__sec(run, "utilisation");
    if (!ar_md_missing(o, s)) {
        fprintf(o, "Fair share per expert %.4g.\n\n| layer | pairs | max/mean | CV | Gini | min (expert: pairs) | max (expert: pairs) | under-loaded (<0.5 fair) | over-loaded (>1.5 fair) |\n|---|---|---|---|---|---|---|---|---|\n",
                an_num(s, "fair_share"));
        cJSON_ArrayForEach(x, an__get(s, "layers")) {
            const cJSON *u;
            fprintf(o, "| %g | %.0f | %.3f | %.3f | %.3f | %g: %.0f | %g: %.0f | ", an_num(x, "layer"),
                    an_num(x, "total"), an_num(x, "max_mean"), an_num(x, "cv"), an_num(x, "gini"),
                    an_num(an__get(x, "min"), "expert"), an_num(an__get(x, "min"), "tokens"),
                    an_num(an__get(x, "max"), "expert"), an_num(an__get(x, "max"), "tokens"));
            i = 0;
            cJSON_ArrayForEach(u, an__get(x, "underloaded"))
                fprintf(o, "%s%g (%.2f)", i++ ? ", " : "", an_num(u, "expert"), an_num(u, "share_over_fair"));
            fprintf(o, " | ");
            i = 0;
            cJSON_ArrayForEach(u, an__get(x, "overloaded"))
                fprintf(o, "%s%g (%.2f)", i++ ? ", " : "", an_num(u, "expert"), an_num(u, "share_over_fair"));
            fprintf(o, " |\n");
        }
        fprintf(o, "\nAcross layers:\n\n| metric | min | p50 | p90 | p95 | max |\n|---|---|---|---|---|---|\n");
        cJSON_ArrayForEach(x, an__get(s, "across_layers"))
            fprintf(o, "| %s | %.4g | %.4g | %.4g | %.4g | %.4g |\n", ar_mds(x->string), an_num(x, "min"),
                    an_num(x, "p50"), an_num(x, "p90"), an_num(x, "p95"), an_num(x, "max"));
        fprintf(o, "\n");
    }

    fprintf(o, "### Routing entropy, dead experts, collapse\n\n");
    s = an__sec(run, "entropy");
    if (!ar_md_missing(o, s)) {
        fprintf(o, "| layer | entropy (bits) | normalised | effective experts |\n|---|---|---|---|\n");
        cJSON_ArrayForEach(x, an__get(s, "layers"))
            fprintf(o, "| %g | %.4f | %.4f | %.2f |\n", an_num(x, "layer"), an_num(x, "entropy_bits"),
                    an_num(x, "entropy_norm"), an_num(x, "effective_experts"));
        fprintf(o, "\nDead experts (zero pairs for %g consecutive steps): ", an_num(s, "dead_window_steps"));
        i = 0;
        cJSON_ArrayForEach(x, an__get(s, "dead_experts"))
            fprintf(o, "%slayer %g expert %g since step %g%s", i++ ? "; " : "", an_num(x, "layer"),
                    an_num(x, "expert"), an_num(x, "since_step"),
                    cJSON_IsTrue(an__get(x, "dead_at_end")) ? " (still dead at the end)" : "");
        fprintf(o, "%s.\n\nCollapse (top-2 experts >= %.0f%% of a layer's pairs, or one expert chosen by "
                   ">= %.0f%% of tokens, for %g steps): ",
                i ? "" : "none", 100 * an_num(s, "collapse_share"), 100 * an_num(s, "collapse_token_share"),
                an_num(s, "collapse_window_steps"));
        i = 0;
        cJSON_ArrayForEach(x, an__get(s, "collapse"))
            fprintf(o, "%slayer %g from step %g (top-2 share %.3f, top expert chosen by %.1f%% of tokens)",
                    i++ ? "; " : "", an_num(x, "layer"), an_num(x, "began_step"), an_num(x, "top2_share"),
                    100 * an_num(x, "top1_token_share"));
        fprintf(o, "%s.\n\n", i ? "" : "none");
    }

    fprintf(o, "### Gating confidence\n\n");
    s = an__sec(run, "gating");
    if (!ar_md_missing(o, s)) {
        fprintf(o, "| statistic | mean | first 10%% of steps | last 10%% | change |\n|---|---|---|---|---|\n");
        cJSON_ArrayForEach(x, an__get(s, "drift")) {
            char key[80];
            if (!cJSON_IsObject(x))
                continue;
            snprintf(key, sizeof(key), "%s_mean", x->string);
            fprintf(o, "| %s | %.4g | %.4g | %.4g | %+.4g |\n", ar_mds(x->string), an_num(s, key),
                    an_num(x, "first"), an_num(x, "last"), an_num(x, "change"));
        }
        fprintf(o, "\nSaturation: %s.\n\n", cJSON_IsTrue(an__get(s, "saturation")) ? "yes" : "no");
    }

    fprintf(o, "### Load-balancing loss effectiveness\n\n");
    s = an__sec(run, "balance_loss");
    if (!ar_md_missing(o, s))
        fprintf(o, "aux loss mean %.4g, z-loss mean %.4g; Pearson r(aux loss, per-step max/mean) = %.3f "
                   "over %g step x layer samples; r(z-loss, logit max) = %.3f.\n\n",
                an_num(s, "aux_loss_mean"), an_num(s, "z_loss_mean"), an_num(s, "corr_aux_vs_max_mean"),
                an_num(s, "samples"), an_num(s, "corr_z_vs_logit_max"));

    fprintf(o, "### Load-balancing remedies\n\n");
    s = an__sec(run, "balance_remedies");
    if (!ar_md_missing(o, s)) {
        fprintf(o, "For %s (worst layer %.0f, max/mean %.2f). ", ar_mds(an_str(s, "trigger")),
                an_num(s, "worst_layer"), an_num(s, "worst_max_mean"));
        ar_md(o, an_str(s, "description"));
        fprintf(o, ".\n\n| remedy | kind | what the log tells |\n|---|---|---|\n");
        cJSON_ArrayForEach(x, an__get(s, "remedies")) {
            fprintf(o, "| %s | %s | ", ar_mds(an_str(x, "id")), ar_mds(an_str(x, "kind")));
            ar_md(o, an_str(x, "text"));
            cJSON_ArrayForEach(y, an__get(x, "layers"))
                fprintf(o, "; layer %.0f, expert %.0f (%s, token share %s): max/mean without it %s",
                        an_num(y, "layer"), an_num(y, "expert"), ar_mds(an_str(y, "pattern")),
                        an__f(y, "expert_token_share", "%.4f"), an__f(y, "max_mean_without_expert", "%.4f"));
            if (an__get(x, "aux_loss_mean"))
                fprintf(o, "; recorded aux loss mean %s, r(aux, max/mean) %s",
                        an__f(x, "aux_loss_mean", "%.4g"), an__f(x, "corr_aux_vs_max_mean", "%.3f"));
            if (an__get(x, "z_loss_mean"))
                fprintf(o, "; recorded z-loss mean %s", an__f(x, "z_loss_mean", "%.4g"));
            if (an__get(x, "converged"))
                fprintf(o, "; recorded bias %s", cJSON_IsTrue(an__get(x, "converged")) ? "converged" : "not converged");
            fprintf(o, " |\n");
        }
        fprintf(o, "\n");
    }

    fprintf(o, "### Capacity and dropping\n\n");
    s = an__sec(run, "capacity");
    if (!ar_md_missing(o, s)) {
        const cJSON *rp = an__get(s, "replay_check");
        fprintf(o, "Capacity factor of the file: %s. ", an_str(s, "capacity_factor_text"));
        if (an__get(s, "recorded_missing")) {
            fprintf(o, "Recorded drops: missing (");
            ar_md(o, an_str(s, "recorded_missing"));
            fprintf(o, ").\n\n");
        } else {
            fprintf(o, "Drop rate %.4f%%; capacity fill ", 100 * an_num(s, "drop_rate"));
            ar_md_num(o, an_num(s, "capacity_fill"));
            fprintf(o, "; %d expert(s) reached capacity at least once. Replay at the recorded "
                       "capacity gives %.0f drops, recorded %.0f (%s).\n\n",
                    cJSON_GetArraySize(an__get(s, "experts_at_capacity")),
                    an_num(rp, "replayed_dropped"), an_num(rp, "recorded_dropped"),
                    cJSON_IsTrue(an__get(rp, "match")) ? "match" : "differ");
        }
        fprintf(o, "Smallest capacity factor with drops <= %g%% (replayed loads): %s.\n\n",
                100 * an_num(s, "target_drop_rate"), an__f(s, "capacity_factor_for_target", "%.2f"));
        fprintf(o, "| capacity factor (what-if) | dropped pairs | drop rate | slots per step x layer |\n|---|---|---|---|\n");
        cJSON_ArrayForEach(x, an__get(s, "what_if"))
            fprintf(o, "| %.2f | %.0f | %.4f%% | %.1f |\n", an_num(x, "capacity_factor"),
                    an_num(x, "dropped"), 100 * an_num(x, "drop_rate"), an_num(x, "slots_per_step_layer"));
        fprintf(o, "\n| layer | dropped | drop rate |\n|---|---|---|\n");
        cJSON_ArrayForEach(x, an__get(s, "layers"))
            fprintf(o, "| %g | %.0f | %.4f%% |\n", an_num(x, "layer"), an_num(x, "dropped"),
                    100 * an_num(x, "drop_rate"));
        fprintf(o, "\n");
    }

    fprintf(o, "### Communication\n\n");
    s = an__sec(run, "communication");
    if (!ar_md_missing(o, s)) {
        const cJSON *by = an__get(s, "bytes"), *mx = an__get(s, "matrix"), *v;
        if (an__get(s, "phases_missing"))
            fprintf(o, "missing: %s\n\n", ar_mds(an_str(s, "phases_missing")));
        else
            fprintf(o, "Exchange (counts + dispatch + combine) %.1f%% of step time, expert compute %.1f%%.\n\n",
                    100 * an_num(s, "exchange_share"), 100 * an_num(s, "expert_share"));
        fprintf(o, "| phase | seconds (mean over ranks) | share of total |\n|---|---|---|\n");
        cJSON_ArrayForEach(x, an__get(run, "phase_seconds")) {
            const cJSON *sub;
            if (an__get(x, "parent") != NULL || strcmp(x->string, "total") == 0)
                continue;
            fprintf(o, "| %s | %.6f | %s |\n", ar_mds(x->string), an_num(x, "mean_over_ranks_s"),
                    an__f(x, "share_of_total", "%.3f"));
            /* sub-phases inside their phase: their share is of the phase, not of the total */
            cJSON_ArrayForEach(sub, an__get(run, "phase_seconds"))
                if (strcmp(an_str(sub, "parent"), x->string) == 0)
                    fprintf(o, "| &nbsp;&nbsp;of which %s | %.6f | %s of %s |\n", ar_mds(sub->string),
                            an_num(sub, "mean_over_ranks_s"), an__f(sub, "share_of_parent", "%.3f"),
                            ar_mds(x->string));
        }
        cJSON_ArrayForEach(x, an__get(run, "phase_seconds"))
            if (strcmp(x->string, "total") == 0)
                fprintf(o, "| total (phases + time outside them) | %.6f | 1 |\n",
                        an_num(x, "mean_over_ranks_s"));
        fprintf(o, "\nBytes (steps/traffic): ");
        cJSON_ArrayForEach(v, by)
            if (cJSON_IsNumber(v))
                fprintf(o, "%s %.0f; ", ar_mds(v->string), v->valuedouble);
        fprintf(o, "missing: ");
        i = 0;
        cJSON_ArrayForEach(v, an__get(by, "missing"))
            fprintf(o, "%s%s", i++ ? ", " : "", ar_mds(v->valuestring));
        fprintf(o, "%s.\n\n", i ? "" : "none");
        if (an__get(mx, "missing")) {
            fprintf(o, "Traffic matrix: missing: %s.\n\n", ar_mds(an_str(mx, "missing")));
        } else {
            fprintf(o, "Traffic matrix (payload): intra-node %.0f bytes, inter-node %.0f bytes. Hotspot pairs: ",
                    an_num(mx, "intra_node_bytes"), an_num(mx, "inter_node_bytes"));
            i = 0;
            cJSON_ArrayForEach(v, an__get(mx, "hotspots"))
                fprintf(o, "%s%g->%g %.0f B (%.2fx mean)", i++ ? ", " : "", an_num(v, "src"),
                        an_num(v, "dst"), an_num(v, "bytes"), an_num(v, "ratio_to_mean"));
            fprintf(o, "%s.\n\n", i ? "" : "none");
        }
    }

    fprintf(o, "### Compute\n\n");
    s = an__sec(run, "compute");
    if (!ar_md_missing(o, s)) {
        const cJSON *m = an__get(s, "memory_per_expert");
        fprintf(o, "%.4g FLOPs per processed pair, %.4g expert FLOPs in total. ", an_num(s, "flops_per_pair"),
                an_num(s, "expert_flops"));
        if (an__get(s, "utilisation_missing"))
            fprintf(o, "FLOPs utilisation: %s. ", ar_mds(an_str(s, "utilisation_missing")));
        else
            fprintf(o, "Achieved %.3f GFLOP/s per rank in the expert phase, %.1f%% of %.3f GFLOP/s (%s). ",
                    an_num(s, "achieved_gflops_per_rank"), 100 * an_num(s, "flops_utilisation"),
                    an_num(s, "peak_gflops_per_rank"), ar_mds(an_str(s, "peak_source")));
        fprintf(o, "Memory per expert: weights %.0f bytes (float32)", an_num(m, "weight_bytes"));
        if (an__get(m, "capacity_missing"))
            fprintf(o, "; capacity buffers: missing: %s.\n\n", ar_mds(an_str(m, "capacity_missing")));
        else
            fprintf(o, ", activations at capacity %.0f bytes (mean capacity %.1f pairs), capacity fill %.3f.\n\n",
                    an_num(m, "activation_bytes_at_capacity"), an_num(m, "capacity_pairs_mean"),
                    an_num(m, "capacity_fill"));
    }

    fprintf(o, "### Hotspots\n\n");
    s = an__sec(run, "hotspots");
    if (!ar_md_missing(o, s)) {
        fprintf(o, "Experts over 1.5x fair share (all layers): ");
        i = 0;
        cJSON_ArrayForEach(x, an__get(s, "experts"))
            fprintf(o, "%s%g (%.2fx)", i++ ? ", " : "", an_num(x, "expert"), an_num(x, "share_over_fair"));
        fprintf(o, "%s.\n\n", i ? "" : "none");
        if (an__get(s, "ranks_missing")) {
            fprintf(o, "Ranks: missing: %s.\n\n", ar_mds(an_str(s, "ranks_missing")));
        } else {
            fprintf(o, "| rank | experts | load / mean rank load |\n|---|---|---|\n");
            i = 0;
            cJSON_ArrayForEach(x, an__get(s, "ranks"))
                if (i++ < AR_MAX_RANKS)
                    fprintf(o, "| %g | %g | %.3f |\n", an_num(x, "rank"), an_num(x, "experts"),
                            an_num(x, "load_over_mean"));
            fprintf(o, "\nNodes (load / mean node load): ");
            i = 0;
            cJSON_ArrayForEach(x, an__get(s, "nodes"))
                fprintf(o, "%snode %g %.3f", i++ ? ", " : "", an_num(x, "node"), an_num(x, "load_over_mean"));
            fprintf(o, ".\n\n");
        }
        if (an__get(s, "coselect_missing")) {
            fprintf(o, "Co-selection: missing: %s.\n\n", ar_mds(an_str(s, "coselect_missing")));
        } else {
            fprintf(o, "Co-selection (pairs chosen together more than chance, lift = P(a,b) / P(a)P(b)):\n\n");
            cJSON_ArrayForEach(x, an__get(s, "coselect")) {
                fprintf(o, "- layer %g:", an_num(x, "layer"));
                cJSON_ArrayForEach(y, an__get(x, "pairs"))
                    fprintf(o, " (%g, %g) lift %.2f, %.0f tokens;", an_num(y, "a"), an_num(y, "b"),
                            an_num(y, "lift"), an_num(y, "tokens"));
                fprintf(o, "\n");
            }
            fprintf(o, "\n");
        }
    }

    fprintf(o, "### Specialisation\n\n");
    s = an__sec(run, "specialisation");
    if (!ar_md_missing(o, s)) {
        int shown = 0;
        fprintf(o, "Most frequent token ids per expert (top-1 routes; first layer shown, all in the JSON):\n\n"
                   "| layer | expert | samples | top tokens (id: count) |\n|---|---|---|---|\n");
        cJSON_ArrayForEach(x, an__get(s, "experts")) {
            const cJSON *t;
            if (an_num(x, "layer") > 0 || shown++ >= 64)
                continue;
            fprintf(o, "| %g | %g | %.0f | ", an_num(x, "layer"), an_num(x, "expert"), an_num(x, "samples"));
            i = 0;
            cJSON_ArrayForEach(t, an__get(x, "top_tokens")) {
                fprintf(o, "%s%g", i++ ? ", " : "", an_num(t, "id"));
                if (an__get(t, "text")) {
                    fprintf(o, " \"");
                    ar_md(o, an_str(t, "text"));
                    fprintf(o, "\"");
                }
                fprintf(o, ": %.0f", an_num(t, "count"));
            }
            fprintf(o, " |\n");
        }
        fprintf(o, "\n");
    }

    fprintf(o, "### Routing map and exchange what-ifs\n\n");
    s = an__sec(run, "routing_map");
    if (!ar_md_missing(o, s)) {
        const cJSON *xo = an__get(s, "exchange_what_if");
        fprintf(o, "%.0f sampled routes (%.0f used); the HTML report draws the map.\n\n",
                an_num(s, "sampled_routes"), an_num(s, "routes_used"));
        if (xo) {
            fprintf(o, "Shape: ");
            ar_md(o, an_str(an__get(xo, "shape"), "description"));
            fprintf(o, ".\n\nInter-node payload copies per (token, layer): flat %.4f, node-deduplicated %.4f, "
                       "node-limited to 1 node %.4f (re-routes %.1f%% of gate mass); remote pairs (flat) %.4f.\n\n",
                    an_num(xo, "flat_inter_node_copies_per_token"), an_num(xo, "hier_inter_node_copies_per_token"),
                    an_num(xo, "node_limited1_inter_node_copies_per_token"),
                    100 * an_num(xo, "node_limited1_rerouted_gate_mass"), an_num(xo, "flat_remote_pairs_per_token"));
            if (cJSON_GetArraySize(an__get(xo, "node_limited")) > 0)
                fprintf(o, "| node-limited to M nodes | inter-node copies per token | saved | saved share | re-routed gate weight |\n"
                           "|---|---|---|---|---|\n");
            cJSON_ArrayForEach(x, an__get(xo, "node_limited"))
                fprintf(o, "| %.0f | %.4f | %.4f | %s | %.4f |\n", an_num(x, "max_nodes"),
                        an_num(x, "inter_node_copies_per_token"), an_num(x, "copies_saved_per_token"),
                        an__f(x, "saved_share", "%.4f"), an_num(x, "rerouted_gate_mass"));
            if (cJSON_GetArraySize(an__get(xo, "node_limited")) > 0)
                fprintf(o, "\n");
        } else
            fprintf(o, "Exchange what-if: missing: %s.\n\n", ar_mds(an_str(s, "exchange_what_if_missing")));
    }

    fprintf(o, "### Monitor events\n\n");
    i = 0;
    cJSON_ArrayForEach(x, an__get(run, "events")) {
        if (i++ >= 50)
            break;
        fprintf(o, "- step %g layer %g expert %g %s: ", an_num(x, "step"), an_num(x, "layer"),
                an_num(x, "expert"), ar_mds(an_str(x, "kind")));
        ar_md(o, an_str(x, "message"));
        fprintf(o, "\n");
    }
    fprintf(o, "%s\n", i ? "" : "None recorded.\n");
}

int an_render_markdown(const cJSON *root, FILE *o)
{
    const cJSON *run, *cn, *row, *v;

    fprintf(o, "# moerun routing-efficiency report\n\nFormulas and thresholds: docs/analysis.md. "
               "A section whose data is absent from the file says \"missing\".\n\n");
    cJSON_ArrayForEach(run, an__get(root, "runs"))
        ar_md_run(o, run);
    if (cJSON_GetArraySize(an__get(root, "runs")) > 1) {
        fprintf(o, "## Comparison\n\n|");
        cn = an__get(an__get(root, "comparison"), "columns");
        cJSON_ArrayForEach(v, cn)
            fprintf(o, " %s |", ar_mds(v->valuestring));
        fprintf(o, "\n|");
        cJSON_ArrayForEach(v, cn)
            fprintf(o, "---|");
        fprintf(o, "\n");
        cJSON_ArrayForEach(row, an__get(an__get(root, "comparison"), "rows")) {
            fprintf(o, "|");
            cJSON_ArrayForEach(v, row) {
                fprintf(o, " ");
                if (cJSON_IsString(v))
                    ar_md(o, v->valuestring);
                else
                    ar_md_num(o, cJSON_IsNumber(v) ? v->valuedouble : NAN);
                fprintf(o, " |");
            }
            fprintf(o, "\n");
        }
    }
    return ferror(o) ? -1 : 0;
}
