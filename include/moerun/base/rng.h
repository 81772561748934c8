/*
 * moerun/base/rng.h — counter-based random numbers.
 *
 * Every random quantity in moerun is a pure function of (seed, stream, counter): a token's
 * hidden state of (seed, step, global token index), an expert's weights of (seed, layer,
 * expert, matrix). Nothing depends on which rank draws it or in what order, which is what
 * makes a P-rank run equal a 1-rank run. The mixer is SplitMix64's finaliser applied to a
 * combined key; a stream is then walked with a SplitMix64 sequence.
 */
#ifndef MOERUN_BASE_RNG_H
#define MOERUN_BASE_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t moe_rng_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A key from up to four words; distinct tuples give independent streams. */
static inline uint64_t moe_rng_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    return moe_rng_mix(moe_rng_mix(moe_rng_mix(moe_rng_mix(a) ^ b) ^ c) ^ d);
}

typedef struct {
    uint64_t state;
} moe_rng_t;

static inline void moe_rng_seed(moe_rng_t *rng, uint64_t key)
{
    rng->state = key;
}

static inline uint64_t moe_rng_next(moe_rng_t *rng)
{
    rng->state += 0x9e3779b97f4a7c15ULL;
    return moe_rng_mix(rng->state);
}

/* Draw i (from 0) of the stream seeded with `key`, without walking it: what the (i + 1)-th
 * moe_rng_next returns. No draw depends on another, so loops over i vectorise. */
static inline uint64_t moe_rng_draw(uint64_t key, int64_t i)
{
    return moe_rng_mix(key + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double moe_rng_uniform(moe_rng_t *rng)
{
    return (double)(moe_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * Two standard normal floats from one 64-bit draw (Box-Muller on two 32-bit halves).
 * Precision is that of a float, which is all hidden states and weights need.
 */
static inline void moe_rng_normal2f(moe_rng_t *rng, float *a, float *b)
{
    uint64_t r = moe_rng_next(rng);
    double   u1 = ((double)(r >> 32) + 0.5) * (1.0 / 4294967296.0);
    double   u2 = (double)(r & 0xffffffffu) * (1.0 / 4294967296.0);
    double   rad = sqrt(-2.0 * log(u1));
    double   th = 6.283185307179586 * u2;
    *a = (float)(rad * cos(th));
    *b = (float)(rad * sin(th));
}

/* Fills n floats with N(0, scale^2). */
static inline void moe_rng_fill_normal(moe_rng_t *rng, float *x, long n, float scale)
{
    long  i;
    float a, b;

    for (i = 0; i + 1 < n; i += 2) {
        moe_rng_normal2f(rng, &a, &b);
        x[i] = a * scale;
        x[i + 1] = b * scale;
    }
    if (i < n) {
        moe_rng_normal2f(rng, &a, &b);
        x[i] = a * scale;
    }
}

#endif /* MOERUN_BASE_RNG_H */
