/*
 * runtime/gate.c — the gate: logits, softmax, router statistics; the router (router.h)
 * selects (see gate.h for what always holds).
 *
 * Per token: l = x . Wg; s = l / temperature; p = softmax(s) computed in double with the
 * max subtracted; the router picks k experts and their weights. Entropy H = -sum p ln p.
 * z-loss term = logsumexp(s)^2 (ST-MoE). The statistics are those of p whatever the router
 * (top-1 probability and margin are of the highest p, ties to the lower id), so routers can
 * be compared on the same scale.
 */
#include <float.h>
#include <math.h>

#include <cblas.h>

#include "gate.h"

void moe_gate_route_with(const moe_router_t *r, const int64_t *token_id, const float *x,
                         const float *wg, int T, int d, float *logits, double *pscratch,
                         double *rscratch, moe_gate_out_t *out, double *sums, double *logit_max,
                         int64_t *coselect)
{
    int    E = r->E, k = r->k, global = r->ops->global;
    double *psum = sums + MOE_GSUM_FIXED;
    double *cnt = sums + MOE_GSUM_FIXED + E;
    double  inv_t = 1.0 / r->temperature;
    double  lmax = *logit_max;
    int     t, e, j, i;

    if (T <= 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, E, d, 1.0f, x, d, wg, E, 0.0f,
                logits, E);

    for (t = 0; t < T; t++) {
        const float       *l = logits + (size_t)t * E;
        int32_t           *sel = out->expert + (size_t)t * k;
        float             *sp = out->prob + (size_t)t * k;
        float             *sw = out->weight + (size_t)t * k;
        double             smax = -DBL_MAX, z = 0, h = 0, lse;
        double            *pp = pscratch;
        int                top = 0;
        moe_router_token_t tok;

        for (e = 0; e < E; e++) {
            double s = l[e] * inv_t;
            sums[MOE_GSUM_LOGIT] += l[e];
            sums[MOE_GSUM_LOGIT2] += (double)l[e] * l[e];
            if (l[e] > lmax)
                lmax = l[e];
            if (s > smax)
                smax = s;
        }
        for (e = 0; e < E; e++) {
            pp[e] = exp(l[e] * inv_t - smax);
            z += pp[e];
        }
        lse = smax + log(z);
        for (e = 0; e < E; e++) {
            pp[e] /= z;
            if (pp[e] > 0)
                h -= pp[e] * log(pp[e]);
            psum[e] += pp[e];
            if (pp[e] > pp[top])
                top = e;
        }
        if (global) {
            /* expert-choice: every expert is a candidate slot; the choice is made over the
             * global batch by the caller, which also counts and co-selects */
            for (j = 0; j < k; j++) {
                sel[j] = j;
                sp[j] = (float)pp[j];
                sw[j] = (float)pp[j];
            }
        } else {
            tok.logit = l;
            tok.prob = pp;
            tok.id = token_id ? token_id[t] : -1;
            tok.index = t;
            r->ops->select(r, &tok, rscratch, sel, sp, sw);
            for (j = 0; j < k; j++)
                cnt[sel[j]] += 1;
        }
        sums[MOE_GSUM_TOKENS] += 1;
        sums[MOE_GSUM_ENTROPY] += h;
        sums[MOE_GSUM_TOP1] += pp[top];
        if (E > 1) {
            /* second-best probability overall, whether or not k >= 2 */
            double second = -1;
            for (e = 0; e < E; e++)
                if (e != top && pp[e] > second)
                    second = pp[e];
            sums[MOE_GSUM_MARGIN] += pp[top] - second;
        }
        sums[MOE_GSUM_LSE2] += lse * lse;
        if (coselect && !global) {
            for (j = 0; j < k; j++)
                for (i = 0; i < k; i++)
                    coselect[(size_t)sel[j] * E + sel[i]]++;
        }
    }
    *logit_max = lmax;
}

void moe_gate_route(const float *x, const float *wg, int T, int d, int E, int k,
                    double temperature, float *logits, double *pscratch, moe_gate_out_t *out,
                    double *sums, double *logit_max, int64_t *coselect)
{
    moe_router_t r = {&moe_router_softmax_ops, E, k, temperature, 1.0, 0, 0, NULL, NULL,
                      NULL, 0, 0, 0};

    moe_gate_route_with(&r, NULL, x, wg, T, d, logits, pscratch, NULL, out, sums, logit_max,
                        coselect);
}
