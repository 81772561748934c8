/*
 * runtime/workload.h — synthetic workloads with controlled routing skew.
 *
 * A workload never bypasses the gate: it shapes the hidden states (and the router weights
 * are built so that they read the shaped directions), and the real gate (x.Wg, temperature,
 * softmax, top-k) produces the skew. See workload.c for the construction.
 */
#ifndef MOERUN_RUNTIME_WORKLOAD_H
#define MOERUN_RUNTIME_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "moerun/status.h"

typedef enum {
    MOE_WL_UNIFORM = 0,  /* "uniform" */
    MOE_WL_ZIPF,         /* "zipf:S", S in [0, 8]: preferred expert ~ Zipf(S) */
    MOE_WL_COLLAPSE,     /* "collapse:P", P in [0, 1]: fraction P pulled to experts 0 and 1 */
    MOE_WL_DRIFT,        /* "drift:R", R in [0, 1000]: popular experts move R experts per step */
    MOE_WL_DOMAINS       /* "domains:N", N in [1, experts]: N domains, each with its own experts */
} moe_workload_kind_t;

typedef struct moe_workload_spec {
    moe_workload_kind_t kind;
    double              param;
} moe_workload_spec_t;

/*
 * Parses a workload spec. On error writes "workload: ..." naming the allowed forms and
 * ranges into err and returns MOE_ERR_INVALID. `experts` bounds domains:N (pass 0 to skip).
 */
moe_status_t moe_workload_parse(const char *spec, int experts, moe_workload_spec_t *out,
                                char *err, size_t errlen);

#endif /* MOERUN_RUNTIME_WORKLOAD_H */

/*
 * Generator state for one run. Feature directions v_0..v_{E-1} are unit vectors drawn
 * from the seed; a token that "prefers" feature j carries alpha * v_j on top of N(0, I)
 * noise, and the router of layer l gives expert e the column noise + beta * v_{pi_l(e)},
 * where pi_0 is the identity and pi_l (l >= 1) a seeded permutation. The gate therefore
 * sends the token to expert pi_l^-1(j) with high probability, at every layer, because the
 * residual stream carries the direction forward.
 */
typedef struct moe_workload {
    moe_workload_spec_t spec;
    uint64_t            seed;
    int                 d_model;
    int                 experts;
    float              *features; /* [E][d] unit vectors */
    double             *cdf;      /* [E] preference CDF of the current step */
    long                cdf_step; /* step the CDF was built for (drift changes per step) */
    int64_t             vocab;     /* vocabulary size of the token ids; 0: no ids */
    double             *vocab_cdf; /* [vocab] Zipf(1) CDF over id ranks */
    int32_t            *vocab_guide; /* [nguide + 1] first rank whose CDF exceeds b / nguide */
    int32_t             nguide;
} moe_workload_t;

/* Initialises caller-owned state; freed by moe_workload_cleanup. */
moe_status_t moe_workload_init(moe_workload_t *wl, const moe_workload_spec_t *spec,
                               uint64_t seed, int d_model, int experts);
void         moe_workload_cleanup(moe_workload_t *wl);

/* Router weights of `layer`, [d][E] row-major (logits = x . wg). */
void moe_workload_router(const moe_workload_t *wl, int layer, float *wg);

/* Hidden states of global tokens [g0, g0 + n) at `step`, [n][d]: a function of
 * (seed, step, global index) only. */
void moe_workload_tokens(moe_workload_t *wl, long step, int64_t g0, int n, float *x);

/*
 * Token ids: a vocabulary of `vocab` ids with Zipfian frequency (exponent 1: the id of rank r
 * has probability ~ 1 / (r + 1)). Plain workloads use rank r = id; domains:N workloads give
 * a document of domain j the ids (r + j * vocab / N) mod vocab, so every domain has its own
 * frequent ids. Allocates the CDF (freed by moe_workload_cleanup).
 */
moe_status_t moe_workload_vocab_init(moe_workload_t *wl, int64_t vocab);

/* Vocabulary ids of global tokens [g0, g0 + n) at `step`: a function of (seed, step, g). */
void moe_workload_token_ids(const moe_workload_t *wl, long step, int64_t g0, int n,
                            int64_t *ids);

/* The feature a token prefers, or -1 for none (exposed for tests). */
int moe_workload_preference(moe_workload_t *wl, long step, int64_t g);
