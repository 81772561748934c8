/*
 * runtime/gate.h — the router: logits = x . Wg (BLAS), temperature, softmax, top-k,
 * renormalised weights, and the per-rank sums the router statistics are built from.
 *
 * Always: the k experts of a token are distinct and ordered by probability, best first
 * (ties: lower expert id first); weights of a token sum to 1; statistics are sums over the
 * rank's tokens, so adding them over ranks gives the global value whatever the split.
 */
#ifndef MOERUN_RUNTIME_GATE_H
#define MOERUN_RUNTIME_GATE_H

#include <stdint.h>

#include "moerun/status.h"

/* Indices into the per-rank sum vector (all double, summed over ranks with MPI_SUM). */
enum {
    MOE_GSUM_TOKENS = 0,   /* tokens gated */
    MOE_GSUM_ENTROPY,      /* sum of per-token softmax entropy, nats */
    MOE_GSUM_TOP1,         /* sum of top-1 probability */
    MOE_GSUM_MARGIN,       /* sum of top-1 minus top-2 probability (0 when E = 1) */
    MOE_GSUM_LOGIT,        /* sum of raw logits (before temperature) */
    MOE_GSUM_LOGIT2,       /* sum of squared raw logits */
    MOE_GSUM_LSE2,         /* sum of logsumexp(logits / temperature)^2: z-loss */
    MOE_GSUM_FIXED         /* then E probability sums, then E routed counts */
};

#define MOE_GSUM_LEN(E) (MOE_GSUM_FIXED + 2 * (E))

typedef struct moe_gate_out {
    int32_t *expert;  /* [T][k] selected experts */
    float   *prob;    /* [T][k] softmax probabilities of those experts */
    float   *weight;  /* [T][k] prob renormalised over the k selected */
} moe_gate_out_t;

/*
 * Routes T tokens: logits [T][E] (scratch, caller-sized) = x [T][d] . wg [d][E];
 * pscratch holds E doubles. Fills out, adds into sums[MOE_GSUM_LEN(E)] and into *logit_max
 * (running max), and adds co-selection counts into coselect [E][E] (may be NULL).
 */
void moe_gate_route(const float *x, const float *wg, int T, int d, int E, int k,
                    double temperature, float *logits, double *pscratch, moe_gate_out_t *out,
                    double *sums, double *logit_max, int64_t *coselect);

#endif /* MOERUN_RUNTIME_GATE_H */
