/*
 * experts/ffn.c — expert FFN compute (see ffn.h).
 *
 * The forward pass is fused in cache-sized blocks (moe_ffn_forward): for each block of rows
 * and each block of MOE_FFN_COLS hidden columns, the first GEMM, the activation on its
 * output while it is in L2, and the second GEMM accumulating into y; no allocation, the
 * caller's scratch is the only working memory.
 *
 * GELU is the tanh form 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))), computed as
 * v / (1 + exp(-2 sqrt(2/pi) (v + 0.044715 v^3))) with exp evaluated by range reduction to
 * 2^n * e^r and a degree-6 polynomial: no libm call in the loop, so the compiler vectorises
 * it (this file is built with -O3 -fno-trapping-math, and cloned for AVX-512 and AVX2+FMA).
 * Relative error of the fast GELU and SiLU against the libm forms: < 1e-6.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "ffn.h"
#include "moerun/base/clones.h"
#include "moerun/base/rng.h"

enum { FFN_STREAM = 0xFF17 };

int moe_ffn_hidden_cols(const moe_ffn_t *ffn)
{
    return ffn->act == MOE_FFN_SWIGLU ? 2 * ffn->d_ffn : ffn->d_ffn;
}

moe_status_t moe_ffn_init(moe_ffn_t *ffn, int d_model, int d_ffn, moe_ffn_act_t act,
                          uint64_t seed, int layer, int expert)
{
    moe_rng_t rng;
    size_t    n1, n2;

    memset(ffn, 0, sizeof(*ffn));
    ffn->d_model = d_model;
    ffn->d_ffn = d_ffn;
    ffn->act = act;
    n1 = (size_t)d_model * (size_t)moe_ffn_hidden_cols(ffn);
    n2 = (size_t)d_ffn * (size_t)d_model;
    ffn->w1 = malloc(n1 * sizeof(float));
    ffn->w2 = malloc(n2 * sizeof(float));
    if (!ffn->w1 || !ffn->w2) {
        moe_ffn_cleanup(ffn);
        return MOE_ERR_NOMEM;
    }
    moe_rng_seed(&rng, moe_rng_key(seed, FFN_STREAM, (uint64_t)layer, (uint64_t)expert * 2));
    moe_rng_fill_normal(&rng, ffn->w1, (long)n1, (float)(1.0 / sqrt((double)d_model)));
    moe_rng_seed(&rng, moe_rng_key(seed, FFN_STREAM, (uint64_t)layer, (uint64_t)expert * 2 + 1));
    /* Small output scale: the residual stream dominates, so routing skew set by the
     * workload survives through the layers. */
    moe_rng_fill_normal(&rng, ffn->w2, (long)n2, (float)(0.5 / sqrt((double)d_ffn)));
    return MOE_OK;
}

void moe_ffn_cleanup(moe_ffn_t *ffn)
{
    free(ffn->w1);
    free(ffn->w2);
    memset(ffn, 0, sizeof(*ffn));
}

/* e^v for v in a range where it neither overflows nor denormalises (clamped). */
static inline float ffn_expf(float v)
{
    float r, p, n;
    union {
        float    f;
        uint32_t u;
    } s;

    v = v < 80.0f ? v : 80.0f; /* each form maps to one min/max instruction */
    v = v > -80.0f ? v : -80.0f;
    /* round to nearest with the 1.5 * 2^23 trick: no floor call, so the loop vectorises */
    n = (v * 1.44269504f + 12582912.0f) - 12582912.0f;
    r = v - n * 0.693145752f - n * 1.42860677e-6f;
    p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666418f +
                r * (0.00833349116f + r * 0.00138820114f)))));
    s.u = (uint32_t)((int32_t)n + 127) << 23;
    return p * s.f;
}

float moe_ffn_gelu_ref(float v)
{
    double x = v;
    return (float)(0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
}


/* gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3):
 * one exp and one division, and no cancellation for negative x (relative error < 1e-6). */
MOE_CLONES
void moe_ffn_gelu(float *v, int64_t n)
{
    int64_t i;

    for (i = 0; i < n; i++) {
        float x = v[i];
        v[i] = x / (1.0f + ffn_expf(-1.5957691216f * (x + 0.044715f * x * x * x)));
    }
}

/* g[i][0..c) = silu(g[i][0..c)) * u[i][0..c) for `rows` rows of stride ld (both). */
MOE_CLONES
static void ffn_swiglu(float *g, const float *u, int64_t rows, int c, int ld)
{
    int64_t r;
    int     i;

    for (r = 0; r < rows; r++)
        for (i = 0; i < c; i++)
            g[r * ld + i] = g[r * ld + i] / (1.0f + ffn_expf(-g[r * ld + i])) * u[r * ld + i];
}

size_t moe_ffn_scratch_floats(const moe_ffn_t *ffn)
{
    int c = ffn->d_ffn < MOE_FFN_COLS ? ffn->d_ffn : MOE_FFN_COLS;

    return (size_t)MOE_FFN_BLOCK * (size_t)c * (ffn->act == MOE_FFN_SWIGLU ? 2 : 1);
}

/*
 * Rows in blocks of MOE_FFN_BLOCK; in each, the hidden columns in blocks of c =
 * MOE_FFN_COLS: h = x W1[:, c-block] (for swiglu the gate and the up columns of the block,
 * side by side in h), the activation on h while it is in cache, then y += h W2[c-block, :]
 * (the first block with beta 0, so y needs no clearing). Every row's result depends only on
 * its own values and its place in its row block, never on n: a caller may split the rows at
 * multiples of MOE_FFN_BLOCK (a2a expert_block) without changing any output bit.
 */
void moe_ffn_forward(const moe_ffn_t *ffn, const float *x, int64_t n, float *y, float *scratch)
{
    int     d = ffn->d_model, f = ffn->d_ffn, hc = moe_ffn_hidden_cols(ffn), c0, c;
    int     sw = ffn->act == MOE_FFN_SWIGLU;
    int64_t r0;

    for (r0 = 0; r0 < n; r0 += MOE_FFN_BLOCK) {
        int          rows = (int)(n - r0 < MOE_FFN_BLOCK ? n - r0 : MOE_FFN_BLOCK);
        const float *xb = x + r0 * d;
        float       *yb = y + r0 * d;
        for (c0 = 0; c0 < f; c0 += c) {
            int ld;
            c = f - c0 < MOE_FFN_COLS ? f - c0 : MOE_FFN_COLS;
            ld = sw ? 2 * c : c;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, c, d, 1.0f, xb, d,
                        ffn->w1 + c0, hc, 0.0f, scratch, ld);
            if (sw) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, c, d, 1.0f, xb, d,
                            ffn->w1 + f + c0, hc, 0.0f, scratch + c, ld);
                ffn_swiglu(scratch, scratch + c, rows, c, ld);
            } else {
                moe_ffn_gelu(scratch, (int64_t)rows * c);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, c, 1.0f, scratch, ld,
                        ffn->w2 + (size_t)c0 * d, d, c0 > 0 ? 1.0f : 0.0f, yb, d);
        }
    }
}

void moe_ffn_forward_ref(const moe_ffn_t *ffn, const float *x, int64_t n, float *y)
{
    int     d = ffn->d_model, f = ffn->d_ffn, hc = moe_ffn_hidden_cols(ffn);
    int64_t r;
    int     i, j;
    double *h = malloc((size_t)hc * sizeof(double));

    for (r = 0; r < n; r++) {
        for (j = 0; j < hc; j++) {
            double acc = 0;
            for (i = 0; i < d; i++)
                acc += (double)x[r * d + i] * ffn->w1[(size_t)i * hc + j];
            h[j] = acc;
        }
        for (j = 0; j < f; j++) {
            if (ffn->act == MOE_FFN_SWIGLU)
                h[j] = h[j] / (1.0 + exp(-h[j])) * h[f + j];
            else
                h[j] = moe_ffn_gelu_ref((float)h[j]);
        }
        for (i = 0; i < d; i++) {
            double acc = 0;
            for (j = 0; j < f; j++)
                acc += h[j] * ffn->w2[(size_t)j * d + i];
            y[r * d + i] = (float)acc;
        }
    }
    free(h);
}
