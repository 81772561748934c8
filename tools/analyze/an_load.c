/*
 * tools/analyze/an_load.c — the analyses of expert load (docs/analysis.md): utilisation and
 * balance per layer (max/mean, CV, Gini, heatmap), load entropy, dead experts, collapse and
 * always-on experts.
 *
 * What always holds:
 *  1. Numbers come from the streamed counts (an_st_t, an_stream.c), never from the file again.
 *  2. A section whose data is absent says "status": "missing" with the reason; no number is
 *     invented.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

int an_cmp_desc_share(const void *x, const void *y)
{
    const double *p = x, *q = y;
    return (p[0] < q[0]) - (p[0] > q[0]);
}

void an_utilisation(cJSON *an, cJSON *root, cJSON *fnd, const an_st_t *a)
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

void an_entropy(cJSON *an, cJSON *fnd, const an_st_t *a)
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

/* One remedy of balance_remedies: kind "replayed" (numbers replayed from the log's loads),
 * "recorded" (numbers the file itself holds) or "qualitative" (no number: the log cannot
 * tell). Returns the object to add numbers to. */
static cJSON *an_remedy(cJSON *arr, const char *id, const char *kind, const char *text)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddItemToArray(arr, o);
    return o;
}

/* what_if[] entry of capacity factor cf, or NULL */
static const cJSON *an_whatif_at(const cJSON *cap, double cf)
{
    const cJSON *x;

    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(cap, "what_if"))
        if (an_num(x, "capacity_factor") == cf)
            return x;
    return NULL;
}

void an_remedies(cJSON *an, cJSON *fnd, const an_st_t *a)
{
    const cJSON *ut = cJSON_GetObjectItemCaseSensitive(an, "utilisation");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(an, "entropy");
    const cJSON *cap = cJSON_GetObjectItemCaseSensitive(an, "capacity");
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(an, "hotspots");
    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(an, "balance_loss");
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(an, "balance_bias");
    const cJSON *x, *col = cJSON_GetObjectItemCaseSensitive(en, "collapse");
    const cJSON *aon = cJSON_GetObjectItemCaseSensitive(en, "always_on");
    cJSON       *sec, *arr, *o, *ls;
    double       worst = -1, wl = NAN;
    const char  *trigger;
    char         t[600], ft[400];
    size_t       off;

    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(ut, "layers"))
        if (an_num(x, "max_mean") > worst) {
            worst = an_num(x, "max_mean");
            wl = an_num(x, "layer");
        }
    trigger = cJSON_GetArraySize(col) > 0 ? "collapse"
              : cJSON_GetArraySize(aon) > 0 ? "always_on"
              : worst >= AN_IMB_WARN ? "imbalance" : NULL;
    if (trigger == NULL) {
        an_section(an, "balance_remedies", "not needed: no collapse, no always-on expert and "
                                           "every layer's max/mean load below 1.5");
        return;
    }
    sec = an_section(an, "balance_remedies", NULL);
    cJSON_AddStringToObject(sec, "trigger", trigger);
    an_add_num(sec, "worst_layer", wl);
    an_add_num(sec, "worst_max_mean", worst);
    cJSON_AddStringToObject(sec, "description",
                            "replayed: computed from the log's own loads; recorded: values the "
                            "file holds; qualitative: what the remedy does, with no number, "
                            "because a routing log (top-k choices) cannot tell its effect");
    arr = cJSON_AddArrayToObject(sec, "remedies");
    off = (size_t)snprintf(ft, sizeof(ft), "load-balancing remedies for %s (worst layer %.0f, "
                           "max/mean %.2f): replayed", trigger, wl, worst);
    /* capacity factor: drops at this routing, replayed from the loads */
    if (an__ok(cap)) {
        const cJSON *w1 = an_whatif_at(cap, 1.0), *w125 = an_whatif_at(cap, 1.25);
        double       ct = an_num(cap, "capacity_factor_for_target");
        snprintf(t, sizeof(t), "capacity factor: bounds the drops, does not balance; replayed on "
                 "the log's loads: drop rate %.4f%% at cf 1, %.4f%% at cf 1.25; <= 0.1%% drops "
                 "need cf %s", 100 * an_num(w1, "drop_rate"), 100 * an_num(w125, "drop_rate"),
                 an__f(cap, "capacity_factor_for_target", "%g"));
        o = an_remedy(arr, "capacity_factor", "replayed", t);
        an_add_num(o, "drop_rate_cf1", an_num(w1, "drop_rate"));
        an_add_num(o, "drop_rate_cf1_25", an_num(w125, "drop_rate"));
        an_add_num(o, "capacity_factor_for_target", ct);
        if (off < sizeof(ft))
            off += (size_t)snprintf(ft + off, sizeof(ft) - off, " drop rate %.4f%% at cf 1, "
                                    "cf %s for <= 0.1%%;", 100 * an_num(w1, "drop_rate"),
                                    an__f(cap, "capacity_factor_for_target", "%g"));
    }
    /* placement and replication: max/mean rank load, replayed */
    if (an__ok(hs) && isfinite(an_num(hs, "rebalance_max_rank_load_current")) && a->routed > 0) {
        double P = isfinite(an_num(hs, "assumed_ranks")) ? an_num(hs, "assumed_ranks") : (double)a->P;
        double mean = (double)a->routed / P, cur = an_num(hs, "rebalance_max_rank_load_current") / mean;
        double lpt = an_num(hs, "rebalance_max_rank_load_projected") / mean;
        double rep = an_num(hs, "replicate_max_rank_load_projected") / mean;
        snprintf(t, sizeof(t), "placement: max/mean rank load over %.0f ranks%s %.4f; placed by "
                 "load (greedy largest-first) %.4f; hottest expert %.0f replicated on a second "
                 "rank %.4f (replayed from the per-expert loads, all layers)", P,
                 isfinite(an_num(hs, "assumed_ranks")) ? " (assumed, contiguous blocks)" : "", cur,
                 lpt, an_num(hs, "replicate_expert"), rep);
        o = an_remedy(arr, "placement", "replayed", t);
        cJSON_AddNumberToObject(o, "ranks", P);
        an_add_num(o, "max_mean_rank_load", cur);
        an_add_num(o, "max_mean_rank_load_rebalanced", lpt);
        an_add_num(o, "max_mean_rank_load_replicated", rep);
        an_add_num(o, "replicated_expert", an_num(hs, "replicate_expert"));
        if (off < sizeof(ft))
            off += (size_t)snprintf(ft + off, sizeof(ft) - off, " max/mean rank load %.2f -> %.2f "
                                    "placed by load, %.2f replicating expert %.0f;", cur, lpt, rep,
                                    an_num(hs, "replicate_expert"));
    }
    /* a dominant expert as a shared expert: the other experts' max/mean without it */
    if (cJSON_GetArraySize(col) > 0 || cJSON_GetArraySize(aon) > 0) {
        int    which;
        o = NULL;
        for (which = 0; which < 2; which++)
            cJSON_ArrayForEach(x, (which ? aon : col)) {
                double  lid = an_num(x, "layer"), ex = an_num(x, "expert"), tot = 0, mx = 0;
                int64_t l, e, n = 0;
                cJSON  *lo;
                for (l = 0; l < a->L && (double)a->lid[l] != lid; l++)
                    ;
                if (l == a->L || !(ex >= 0) || ex >= (double)a->E)
                    continue;
                for (e = 0; e < a->E; e++)
                    if ((double)e != ex) {
                        double v = (double)a->routed_le[l * a->E + e];
                        tot += v;
                        mx = v > mx ? v : mx;
                        n++;
                    }
                if (o == NULL) {
                    o = an_remedy(arr, "shared_expert", "replayed",
                                  "a dominant expert made a shared expert (every token, no "
                                  "routing; --shared-experts 1): the max/mean load of the other "
                                  "experts of the layer without it, replayed from the loads");
                    ls = cJSON_AddArrayToObject(o, "layers");
                }
                lo = cJSON_CreateObject();
                cJSON_AddNumberToObject(lo, "layer", lid);
                cJSON_AddNumberToObject(lo, "expert", ex);
                cJSON_AddStringToObject(lo, "pattern", which ? "always_on" : "collapse");
                an_add_num(lo, "expert_token_share", an_num(x, "expert_token_share"));
                an_add_num(lo, "max_mean_without_expert", tot > 0 ? mx * (double)n / tot : NAN);
                cJSON_AddItemToArray(ls, lo);
                if (off < sizeof(ft))
                    off += (size_t)snprintf(ft + off, sizeof(ft) - off, " layer %.0f without "
                                            "expert %.0f: max/mean %.2f;", lid, ex,
                                            tot > 0 ? mx * (double)n / tot : NAN);
            }
    }
    /* the rest: what they do, and only numbers the file holds */
    o = an_remedy(arr, "aux_loss_coefficient", "qualitative",
                  "raise the load-balancing (aux) loss coefficient: needs retraining; how much "
                  "it would balance cannot be told from a routing log");
    if (an__ok(bl)) {
        cJSON_ReplaceItemInObject(o, "kind", cJSON_CreateString("recorded"));
        an_add_num(o, "aux_loss_mean", an_num(bl, "aux_loss_mean"));
        an_add_num(o, "corr_aux_vs_max_mean", an_num(bl, "corr_aux_vs_max_mean"));
    }
    o = an_remedy(arr, "balance_bias", "qualitative",
                  "aux-loss-free balancing (a per-expert selection bias, DeepSeek-V3; moerun "
                  "--balance-bias RATE): it changes which experts are chosen from the gate "
                  "scores, and a log of top-k choices lacks the scores of the experts not "
                  "chosen, so its effect is not replayable");
    if (an__ok(bb)) {
        cJSON_ReplaceItemInObject(o, "kind", cJSON_CreateString("recorded"));
        cJSON_AddBoolToObject(o, "converged", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bb, "converged")));
    }
    o = an_remedy(arr, "router_z_loss", "qualitative",
                  "router z-loss: keeps the gate logits small (training stability, less "
                  "saturation); it does not target balance, and its effect cannot be told from "
                  "a routing log");
    if (an__ok(bl) && isfinite(an_num(bl, "z_loss_mean"))) {
        cJSON_ReplaceItemInObject(o, "kind", cJSON_CreateString("recorded"));
        an_add_num(o, "z_loss_mean", an_num(bl, "z_loss_mean"));
    }
    an_remedy(arr, "expert_choice", "qualitative",
              "expert-choice routing (each expert takes its top-C tokens; --router "
              "expert-choice): balanced by construction (not a replay); how many tokens it "
              "leaves without an expert needs the full gate scores, which the log lacks");
    if (off < sizeof(ft))
        snprintf(ft + off, sizeof(ft) - off, " qualitative (not replayable from a routing log): "
                 "aux-loss coefficient, loss-free balance bias, router z-loss, expert-choice");
    an_finding(fnd, "balance_remedies", "info", "balance_remedies", worst, AN_IMB_WARN, "%s", ft);
}
