/*
 * moerun/capacity.h — the expert capacity formula, the one definition that the runtime
 * (runtime/capacity.c) and the analyser's what-if (tools/analyze) both use, so that a
 * what-if at the run's own capacity factor replays exactly the capacity the run enforced.
 *
 *     C = ceil(cf * k * G / E)       per expert and step, over the whole expert-parallel group
 *
 * G is the step's global token count (ranks x tokens per rank), k the experts per token, so
 * k * G is the number of (token, expert) pairs routed; E the number of experts. cf <= 0 (or
 * NaN) means dropless and gives -1; a positive cf gives at least 1, as ceil does. The product k * G is formed in integers first, and the
 * ceiling forgives 1e-9 of rounding (1.1 * 1000 / 11 is 100, not 101). Header only, no libm.
 */
#ifndef MOERUN_CAPACITY_H
#define MOERUN_CAPACITY_H

#include <stdint.h>

/* Capacity per expert for `tokens` tokens routed to top_k experts each; -1 when dropless. */
static inline int64_t moe_capacity(double capacity_factor, int top_k, int64_t tokens,
                                   int64_t experts)
{
    double  x;
    int64_t c;

    if (!(capacity_factor > 0) || experts < 1)
        return -1;
    x = capacity_factor * (double)((int64_t)top_k * tokens) / (double)experts - 1e-9;
    c = (int64_t)x;                /* truncation; x > -1, so this is floor(x) or 0 */
    c += (double)c < x;            /* ceil */
    /* a product under the 1e-9 (cf 1e-12) must not give 0: a positive cf allows >= 1 */
    return c < 1 ? 1 : c;
}

#endif /* MOERUN_CAPACITY_H */
