/*
 * runtime/gate.h — the gate: logits = x . Wg (BLAS), temperature, softmax, the router's
 * selection (router.h: softmax top-k by default), and the per-rank sums the router
 * statistics are built from.
 *
 * Always: the k experts of a token are distinct and ordered by the router's score, best
 * first (ties: lower expert id first); statistics are sums over the rank's tokens, so adding
 * them over ranks gives the global value whatever the split.
 */
#ifndef MOERUN_RUNTIME_GATE_H
#define MOERUN_RUNTIME_GATE_H

#include <stdint.h>

#include "moerun/status.h"
#include "router.h"

/* Indices into the per-rank sum vector (all double, summed over ranks with MPI_SUM). */
enum {
    MOE_GSUM_TOKENS = 0,   /* tokens gated */
    MOE_GSUM_ENTROPY,      /* sum of per-token softmax entropy, nats */
    MOE_GSUM_TOP1,         /* sum of top-1 probability */
    MOE_GSUM_MARGIN,       /* sum of top-1 minus top-2 probability (0 when E = 1) */
    MOE_GSUM_LOGIT,        /* sum of raw logits (before temperature) */
    MOE_GSUM_LOGIT2,       /* sum of squared raw logits */
    MOE_GSUM_LSE2,         /* sum of logsumexp(logits / temperature)^2: z-loss */
    MOE_GSUM_FIXED         /* then E probability sums, then E routed counts, then the
                            * tokens routed to no expert (expert-choice; the caller fills it) */
};

#define MOE_GSUM_LEN(E) (MOE_GSUM_FIXED + 2 * (E) + 1)

typedef struct moe_gate_out {
    int32_t *expert;  /* [T][k] selected experts */
    float   *prob;    /* [T][k] router scores of those experts (softmax p; sigmoid s) */
    float   *weight;  /* [T][k] combine weights (softmax: p renormalised over the k) */
} moe_gate_out_t;

/*
 * Routes T tokens: logits [T][E] (scratch, caller-sized) = x [T][d] . wg [d][E];
 * pscratch holds E doubles. Fills out, adds into sums[MOE_GSUM_LEN(E)] and into *logit_max
 * (running max), and adds co-selection counts into coselect [E][E] (may be NULL).
 */
void moe_gate_route(const float *x, const float *wg, int T, int d, int E, int k,
                    double temperature, float *logits, double *pscratch, moe_gate_out_t *out,
                    double *sums, double *logit_max, int64_t *coselect);

/*
 * The same with router r choosing (moe_gate_route is r = softmax): token_id [T] are the
 * tokens' vocabulary ids (may be NULL: -1), rscratch holds MOE_ROUTER_SCRATCH(E) doubles.
 * For a global router (expert-choice, k = E) slot j of every token is expert j with score
 * and weight p_j; the caller chooses, counts routed pairs and co-selection.
 */
void moe_gate_route_with(const moe_router_t *r, const int64_t *token_id, const float *x,
                         const float *wg, int T, int d, float *logits, double *pscratch,
                         double *rscratch, moe_gate_out_t *out, double *sums, double *logit_max,
                         int64_t *coselect);

#endif /* MOERUN_RUNTIME_GATE_H */
