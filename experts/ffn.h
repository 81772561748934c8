/*
 * experts/ffn.h — one expert's feed-forward network on OpenBLAS.
 *
 *   gelu:   y = gelu(x W1) W2                 W1 [d][f], W2 [f][d]
 *   swiglu: y = (silu(x Wg) * (x Wu)) W2      Wg, Wu stored side by side as W1 [d][2f]
 * Weights are drawn from (seed, layer, expert, matrix), so an expert is the same on
 * whichever rank holds it. Rows are processed in blocks: one GEMM per block, the
 * activation applied to the block while it is still in cache, then the second GEMM.
 */
#ifndef MOERUN_EXPERTS_FFN_H
#define MOERUN_EXPERTS_FFN_H

#include <stddef.h>
#include <stdint.h>

#include "moerun/status.h"

typedef enum { MOE_FFN_GELU = 0, MOE_FFN_SWIGLU = 1 } moe_ffn_act_t;

typedef struct moe_ffn {
    int           d_model, d_ffn;
    moe_ffn_act_t act;
    float        *w1; /* [d][f] (gelu) or [d][2f] (swiglu: gate columns, then up columns) */
    float        *w2; /* [f][d] */
} moe_ffn_t;

/* Rows per block, and hidden columns per block (an L2-sized piece of the hidden activation:
 * MOE_FFN_BLOCK x MOE_FFN_COLS floats, twice that for swiglu). */
#define MOE_FFN_BLOCK 1024
#define MOE_FFN_COLS  256

/* FLOPs of one row through an expert: two GEMMs of 2 d f each for gelu, three for swiglu
 * (gate and up, then down). The one count behind moerun's modelled compute, summary rates
 * and moerun-bench's limits. */
static inline double moe_ffn_flops_per_row(int d_model, int d_ffn, int swiglu)
{
    return 2.0 * d_model * d_ffn * (swiglu ? 3 : 2);
}

/* Columns of the hidden activation (f for gelu, 2f for swiglu). */
int moe_ffn_hidden_cols(const moe_ffn_t *ffn);

/* Floats of scratch moe_ffn_forward needs (MOE_FFN_BLOCK x min(f, MOE_FFN_COLS), x 2 for
 * swiglu). */
size_t moe_ffn_scratch_floats(const moe_ffn_t *ffn);

/* Draws the weights into a caller-owned struct; freed by moe_ffn_cleanup. */
moe_status_t moe_ffn_init(moe_ffn_t *ffn, int d_model, int d_ffn, moe_ffn_act_t act,
                          uint64_t seed, int layer, int expert);
void         moe_ffn_cleanup(moe_ffn_t *ffn);

/* y [n][d] = FFN(x [n][d]); scratch as above. n may be 0. */
void moe_ffn_forward(const moe_ffn_t *ffn, const float *x, int64_t n, float *y, float *scratch);

/* Straightforward reference (triple loops, double accumulation) for tests. */
void moe_ffn_forward_ref(const moe_ffn_t *ffn, const float *x, int64_t n, float *y);

/* Activations, exposed for tests: in place on n floats. */
void moe_ffn_gelu(float *v, int64_t n);
float moe_ffn_gelu_ref(float v);

#endif /* MOERUN_EXPERTS_FFN_H */
