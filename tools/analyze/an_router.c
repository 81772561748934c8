/*
 * tools/analyze/an_router.c — the analyses of the router's own statistics (docs/analysis.md):
 * gate confidence (top-1 probability, top-1/top-2 margin, histograms, drift), the auxiliary
 * balance loss against the measured imbalance, and the balance bias.
 *
 * What always holds:
 *  1. Numbers come from the streamed router columns (an_st_t, an_stream.c) and root
 *     attributes; a column the file lacks makes its section "missing", never a number.
 *  2. Means are token-weighted over the finite values (imported logs hold NaN where unknown).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

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

void an_gating(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a)
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
void an_balance_bias(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a)
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

void an_balance_loss(cJSON *an, cJSON *fnd, const an_st_t *a)
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
