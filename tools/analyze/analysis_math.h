/*
 * tools/analyze/analysis_math.h — the pure arithmetic of moerun-analyze (formulas: docs/analysis.md).
 *
 * No I/O, no allocation except where a function says so, no HDF5: every function here is a
 * formula over small arrays, unit-tested against hand-computed values in
 * tests/analyze/test_analysis_math.c. Conventions: a "load" is a count of (token, expert)
 * pairs; an empty or all-zero load vector gives NAN for ratios (never a division by zero).
 */
#ifndef MOERUN_TOOLS_ANALYSIS_MATH_H
#define MOERUN_TOOLS_ANALYSIS_MATH_H

#include <stddef.h>
#include <stdint.h>

/* Summary numbers of one load vector x[0..n). */
typedef struct am_balance {
    double  total;      /* sum x */
    double  mean;       /* total / n */
    double  max_mean;   /* max x / mean (1 = perfectly even) */
    double  cv;         /* population standard deviation / mean */
    double  gini;       /* Gini coefficient, 0 even .. (n-1)/n one expert takes all */
    double  entropy;    /* Shannon entropy of x / total, bits */
    double  entropy_norm; /* entropy / log2(n), 1 = even; NAN for n < 2 */
    double  eff_experts;  /* 2^entropy: effective number of experts */
    int64_t argmin, argmax;
} am_balance_t;

/* Fills *b for the loads x[0..n) (n >= 1). */
void am_balance(const int64_t *x, size_t n, am_balance_t *b);

/* Shannon entropy (bits) of the distribution x / sum(x); 0 when sum is 0. */
double am_entropy_bits(const int64_t *x, size_t n);

/* Gini coefficient of x[0..n) (non-negative): sum_i sum_j |xi - xj| / (2 n^2 mean). */
double am_gini(const int64_t *x, size_t n);

/*
 * Percentile p in [0, 100] of v[0..n) by linear interpolation between closest ranks
 * (the "linear" method of numpy.percentile). Sorts v in place. NAN if n == 0.
 */
double am_percentile(double *v, size_t n, double p);

/*
 * Capacity per expert for capacity factor cf when `pairs` (token, expert) pairs are routed
 * over `experts` experts: ceil(cf * pairs / experts); -1 (dropless) when cf <= 0. Same
 * formula as the runtime: moe_capacity() of moerun/capacity.h with pairs = top_k * global_tokens.
 */
int64_t am_capacity(double cf, int64_t pairs, int64_t experts);

/* Pairs dropped when loads x[0..n) meet a per-expert capacity c: sum max(0, x - c). */
int64_t am_drops(const int64_t *x, size_t n, int64_t c);

/* Streaming Pearson correlation. */
typedef struct am_corr {
    double n, sx, sy, sxx, syy, sxy;
} am_corr_t;

void   am_corr_add(am_corr_t *c, double x, double y);
/* Pearson r of the pairs added; NAN with fewer than 3 pairs or a constant series. */
double am_corr_r(const am_corr_t *c);

/*
 * Placement what-if: assigns n items with weights w to `bins` bins of at most `per_bin`
 * items each (per_bin * bins >= n), heaviest first onto the lightest bin with room (LPT).
 * owner[i] receives the bin of item i. Returns the largest bin weight.
 */
double am_rebalance_lpt(const double *w, size_t n, int bins, int per_bin, int *owner);

/* Largest bin weight of an existing assignment (owner[i] in [0, bins)). */
double am_bin_max(const double *w, size_t n, const int *owner, int bins);

/*
 * Tokens expected to select both experts i and j by chance when each of `ntok` tokens picks
 * k distinct experts, expert i being picked by n_i tokens and j by n_j (docs/analysis.md,
 * "Co-selection"). The picks are made without replacement: given that a token picked i, its
 * other k-1 picks fall on j with probability (k-1) q_j / (1 - q_i), q = n / (k ntok) being
 * the share of pairs. Symmetrised over i and j:
 *   expected = (k-1)/2 * (n_i q_j / (1 - q_i) + n_j q_i / (1 - q_j)).
 * For uniform loads (n = k ntok / E) this is ntok k(k-1) / (E(E-1)), the exact chance count.
 * NAN if k < 2 or ntok <= 0.
 */
double am_coselect_expected(double n_i, double n_j, double ntok, int64_t k);

/*
 * Chance co-selection for unequal loads, exact for its null: the conditional-Poisson
 * (maximum-entropy) design, the distribution over k-subsets of the E experts with the
 * observed marginals pi_i = n[i] / ntok (a token's chance to pick i) and no association
 * beyond them: P(subset S) proportional to prod_{i in S} w_i, the weights w fitted so the
 * inclusion probabilities are pi (odds-ratio fixed point, w_i <- w_i odds(pi_i) /
 * odds(pi_i(w)), to max |pi(w) - pi| <= 1e-10). Then
 *   expected(i, j) = ntok * w_i w_j e_{k-2}(w without i, j) / e_k(w),
 * e_r the elementary symmetric polynomials (sums of positive terms only: prefix, middle and
 * suffix products). Experts with pi = 1 are in every token (expected(i, j) = n[j]), experts
 * with pi = 0 in none. For equal loads it equals am_coselect_expected, for k = 2 it is
 * ntok w_i w_j / e_2(w). out[i * E + j] (i != j) receives expected(i, j); the diagonal n[i].
 * Returns 0, or -1 (out untouched) when the marginals admit no such design (sum of pi != k
 * beyond 1e-6 relative: tokens with fewer than k experts), k < 2, E > 4096 or no memory, or
 * the fit does not converge in 2000 iterations.
 */
int am_coselect_null(const double *n, int64_t E, double ntok, int64_t k, double *out);

/* x * log2(x) for x >= 0 (0 at 0), with a table for small integers (thread-unsafe init). */
double am_xlog2x(int64_t x);

/* The table behind am_xlog2x: t[x] = x log2 x for 0 <= x < *n_p (initialised on first use). */
const double *am_xlog2x_table(int64_t *n_p);

#endif /* MOERUN_TOOLS_ANALYSIS_MATH_H */
