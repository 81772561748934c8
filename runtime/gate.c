/*
 * runtime/gate.c — softmax top-k router (see gate.h for what always holds).
 *
 * Per token: l = x . Wg; s = l / temperature; p = softmax(s) computed in double with the
 * max subtracted; top-k by repeated selection (k is small); weights w_j = p_j / sum p.
 * Entropy H = -sum p ln p. z-loss term = logsumexp(s)^2 (ST-MoE).
 */
#include <float.h>
#include <math.h>

#include <cblas.h>

#include "gate.h"

void moe_gate_route(const float *x, const float *wg, int T, int d, int E, int k,
                    double temperature, float *logits, double *pscratch, moe_gate_out_t *out,
                    double *sums, double *logit_max, int64_t *coselect)
{
    double *psum = sums + MOE_GSUM_FIXED;
    double *cnt = sums + MOE_GSUM_FIXED + E;
    double  inv_t = 1.0 / temperature;
    double  lmax = *logit_max;
    int     t, e, j, i;

    if (T <= 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, E, d, 1.0f, x, d, wg, E, 0.0f,
                logits, E);

    for (t = 0; t < T; t++) {
        const float *l = logits + (size_t)t * E;
        int32_t     *sel = out->expert + (size_t)t * k;
        float       *sp = out->prob + (size_t)t * k;
        float       *sw = out->weight + (size_t)t * k;
        double       smax = -DBL_MAX, z = 0, h = 0, lse, ksum = 0;
        double      *pp = pscratch;

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
        }
        /* top-k by selection: best first, ties to the lower id */
        for (j = 0; j < k; j++) {
            int best = -1;
            for (e = 0; e < E; e++) {
                int taken = 0;
                for (i = 0; i < j; i++)
                    taken |= sel[i] == e;
                if (!taken && (best < 0 || pp[e] > pp[best]))
                    best = e;
            }
            sel[j] = best;
            sp[j] = (float)pp[best];
            ksum += pp[best];
            cnt[best] += 1;
        }
        for (j = 0; j < k; j++)
            sw[j] = (float)(sp[j] / ksum);
        sums[MOE_GSUM_TOKENS] += 1;
        sums[MOE_GSUM_ENTROPY] += h;
        sums[MOE_GSUM_TOP1] += pp[sel[0]];
        if (E > 1) {
            /* second-best probability overall, whether or not k >= 2 */
            double second = -1;
            for (e = 0; e < E; e++)
                if (e != sel[0] && pp[e] > second)
                    second = pp[e];
            sums[MOE_GSUM_MARGIN] += pp[sel[0]] - second;
        }
        sums[MOE_GSUM_LSE2] += lse * lse;
        if (coselect) {
            for (j = 0; j < k; j++)
                for (i = 0; i < k; i++)
                    coselect[(size_t)sel[j] * E + sel[i]]++;
        }
    }
    *logit_max = lmax;
}
