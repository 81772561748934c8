/*
 * runtime/workload.c — synthetic hidden states and router weights with controlled skew.
 *
 * Construction (see workload.h): token x = z + ALPHA * v_j, z ~ N(0, I) (Irwin-Hall
 * approximation, 4 uniforms), j = the token's preferred feature or none; router column
 * w_e = n_e + BETA * v_{pi_l(e)}, n_e ~ N(0, I/d). The preference distribution per kind:
 *   uniform      no preference: routing comes from the noise alone, balanced in expectation;
 *   zipf:S       P(j) ~ (j + 1)^-S;
 *   collapse:P   with probability P, j = 0 or 1 (2:1); otherwise no preference;
 *   drift:R      P(j) ~ exp(-dist(j, c)^2 / 2 sigma^2), c = R * step mod E (circular),
 *                sigma = max(0.5, E / 16): the popular experts move R experts per step;
 *   domains:N    tokens come in documents of 64; a document's domain is drawn from the
 *                seed; domain n prefers features [n E / N, (n + 1) E / N) uniformly.
 * Token ids (moe_workload_token_ids): Zipf(1) over a vocabulary of `vocab` ids by inverse CDF
 * (binary search), from their own stream; domains:N shifts domain j's ids by j * vocab / N.
 * The ids do not shape the hidden state (the routing of the gate is unchanged by them).
 * Everything is a function of (seed, step, global token index): never of the rank.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moerun/base/clones.h"
#include "moerun/base/rng.h"
#include "workload.h"

#define WL_ALPHA 4.0f          /* strength of the preferred direction in a token */
#define WL_BETA 1.0f           /* strength of the feature direction in a router column */
#define WL_DOC_TOKENS 64       /* tokens per document for domains:N */
#define WL_GUIDE_MAX 65536     /* buckets of the token-id guide table */

enum { WL_STREAM_FEATURE = 1, WL_STREAM_ROUTER, WL_STREAM_PERM, WL_STREAM_TOKEN,
       WL_STREAM_PREF, WL_STREAM_DOMAIN, WL_STREAM_VOCAB };

static const struct {
    const char         *name;
    moe_workload_kind_t kind;
    int                 has_param;
    double              lo, hi;
    int                 integer;
    const char         *meaning;
} wl_kinds[] = {
    {"uniform", MOE_WL_UNIFORM, 0, 0, 0, 0, ""},
    {"zipf", MOE_WL_ZIPF, 1, 0, 8, 0, "Zipf exponent S in [0, 8]"},
    {"collapse", MOE_WL_COLLAPSE, 1, 0, 1, 0, "fraction P in [0, 1]"},
    {"drift", MOE_WL_DRIFT, 1, 0, 1000, 0, "experts per step R in [0, 1000]"},
    {"domains", MOE_WL_DOMAINS, 1, 1, 65536, 1, "domain count N in [1, experts]"},
};

#define WL_FORMS "uniform | zipf:S | collapse:P | drift:R | domains:N"

moe_status_t moe_workload_parse(const char *spec, int experts, moe_workload_spec_t *out,
                                char *err, size_t errlen)
{
    size_t      i, n;
    const char *colon;
    char       *end;
    double      v;

    if (spec == NULL)
        spec = "";
    colon = strchr(spec, ':');
    n = colon ? (size_t)(colon - spec) : strlen(spec);
    for (i = 0; i < sizeof(wl_kinds) / sizeof(wl_kinds[0]); i++) {
        if (strlen(wl_kinds[i].name) != n || strncmp(spec, wl_kinds[i].name, n) != 0)
            continue;
        out->kind = wl_kinds[i].kind;
        out->param = 0;
        if (!wl_kinds[i].has_param) {
            if (colon) {
                snprintf(err, errlen, "workload: \"%s\" takes no parameter; allowed %s", spec,
                         WL_FORMS);
                return MOE_ERR_INVALID;
            }
            return MOE_OK;
        }
        if (!colon || colon[1] == '\0') {
            snprintf(err, errlen, "workload: \"%s\" needs a parameter (%s:X, %s); allowed %s",
                     spec, wl_kinds[i].name, wl_kinds[i].meaning, WL_FORMS);
            return MOE_ERR_INVALID;
        }
        errno = 0;
        v = strtod(colon + 1, &end);
        if (errno != 0 || *end != '\0' || !isfinite(v) || v < wl_kinds[i].lo ||
            v > wl_kinds[i].hi || (wl_kinds[i].integer && v != floor(v)) ||
            (out->kind == MOE_WL_DOMAINS && experts > 0 && v > experts)) {
            snprintf(err, errlen, "workload: \"%s\": parameter out of range; allowed %s:X with %s%s",
                     spec, wl_kinds[i].name, wl_kinds[i].meaning,
                     out->kind == MOE_WL_DOMAINS ? " (an integer)" : "");
            return MOE_ERR_INVALID;
        }
        out->param = v;
        return MOE_OK;
    }
    snprintf(err, errlen, "workload: unknown spec \"%s\"; allowed %s", spec, WL_FORMS);
    return MOE_ERR_INVALID;
}

moe_status_t moe_workload_init(moe_workload_t *wl, const moe_workload_spec_t *spec,
                               uint64_t seed, int d_model, int experts)
{
    int       e, i;
    moe_rng_t rng;
    double    norm;

    memset(wl, 0, sizeof(*wl));
    wl->spec = *spec;
    wl->seed = seed;
    wl->d_model = d_model;
    wl->experts = experts;
    wl->cdf_step = -1;
    wl->features = malloc((size_t)experts * (size_t)d_model * sizeof(float));
    wl->cdf = malloc((size_t)experts * sizeof(double));
    if (!wl->features || !wl->cdf) {
        moe_workload_cleanup(wl);
        return MOE_ERR_NOMEM;
    }
    for (e = 0; e < experts; e++) {
        float *v = wl->features + (size_t)e * d_model;
        moe_rng_seed(&rng, moe_rng_key(seed, WL_STREAM_FEATURE, (uint64_t)e, 0));
        moe_rng_fill_normal(&rng, v, d_model, 1.0f);
        norm = 0;
        for (i = 0; i < d_model; i++)
            norm += (double)v[i] * v[i];
        norm = sqrt(norm);
        for (i = 0; i < d_model; i++)
            v[i] = (float)(v[i] / (norm > 0 ? norm : 1.0));
    }
    return MOE_OK;
}

void moe_workload_cleanup(moe_workload_t *wl)
{
    free(wl->features);
    free(wl->cdf);
    free(wl->vocab_cdf);
    free(wl->vocab_guide);
    memset(wl, 0, sizeof(*wl));
}

void moe_workload_router(const moe_workload_t *wl, int layer, float *wg)
{
    int       d = wl->d_model, E = wl->experts, e, i;
    int      *perm = malloc((size_t)E * sizeof(int));
    moe_rng_t rng;

    for (e = 0; e < E; e++)
        perm[e] = e;
    if (layer > 0) { /* Fisher-Yates with the layer's own stream */
        moe_rng_seed(&rng, moe_rng_key(wl->seed, WL_STREAM_PERM, (uint64_t)layer, 0));
        for (e = E - 1; e > 0; e--) {
            int j = (int)(moe_rng_next(&rng) % (uint64_t)(e + 1)), t = perm[e];
            perm[e] = perm[j];
            perm[j] = t;
        }
    }
    moe_rng_seed(&rng, moe_rng_key(wl->seed, WL_STREAM_ROUTER, (uint64_t)layer, 0));
    moe_rng_fill_normal(&rng, wg, (long)d * E, (float)(1.0 / sqrt((double)d)));
    for (e = 0; e < E; e++) {
        const float *v = wl->features + (size_t)perm[e] * d;
        for (i = 0; i < d; i++)
            wg[(size_t)i * E + e] += WL_BETA * v[i];
    }
    free(perm);
}

/* Builds the per-step preference CDF for zipf and drift. */
static void wl_build_cdf(moe_workload_t *wl, long step)
{
    int    E = wl->experts, j;
    double acc = 0, c, sigma, dist;

    if (wl->cdf_step == step)
        return;
    for (j = 0; j < E; j++) {
        double w;
        if (wl->spec.kind == MOE_WL_ZIPF) {
            w = pow((double)(j + 1), -wl->spec.param);
        } else { /* drift */
            c = fmod(wl->spec.param * (double)step, (double)E);
            sigma = E / 16.0 > 0.5 ? E / 16.0 : 0.5;
            dist = fabs((double)j - c);
            if (dist > E - dist)
                dist = E - dist;
            w = exp(-dist * dist / (2 * sigma * sigma));
        }
        acc += w;
        wl->cdf[j] = acc;
    }
    for (j = 0; j < E; j++)
        wl->cdf[j] /= acc;
    wl->cdf_step = step;
}

moe_status_t moe_workload_vocab_init(moe_workload_t *wl, int64_t vocab)
{
    double  acc = 0;
    int64_t r;
    int32_t b, G = vocab < WL_GUIDE_MAX ? (int32_t)(vocab > 0 ? vocab : 1) : WL_GUIDE_MAX;

    free(wl->vocab_cdf);
    free(wl->vocab_guide);
    wl->vocab = 0;
    wl->vocab_cdf = malloc((size_t)(vocab > 0 ? vocab : 1) * sizeof(double));
    wl->vocab_guide = malloc((size_t)(G + 1) * sizeof(int32_t));
    if (wl->vocab_cdf == NULL || wl->vocab_guide == NULL)
        return MOE_ERR_NOMEM;
    for (r = 0; r < vocab; r++) {
        acc += 1.0 / (double)(r + 1);
        wl->vocab_cdf[r] = acc;
    }
    for (r = 0; r < vocab; r++)
        wl->vocab_cdf[r] /= acc;
    /* guide[b]: the first rank whose CDF exceeds b / G (vocab - 1 if none) */
    for (b = 0, r = 0; b <= G; b++) {
        while (r < vocab - 1 && !(wl->vocab_cdf[r] > (double)b / G))
            r++;
        wl->vocab_guide[b] = (int32_t)(vocab > 0 ? r : 0);
    }
    wl->nguide = G;
    wl->vocab = vocab;
    return MOE_OK;
}

/* The domain of global token g's document (domains:N workloads). */
static int wl_domain(const moe_workload_t *wl, long step, int64_t g)
{
    moe_rng_t rng;

    moe_rng_seed(&rng, moe_rng_key(wl->seed, WL_STREAM_DOMAIN, (uint64_t)step,
                                   (uint64_t)(g / WL_DOC_TOKENS)));
    return (int)(moe_rng_next(&rng) % (uint64_t)(int)wl->spec.param);
}

void moe_workload_token_ids(const moe_workload_t *wl, long step, int64_t g0, int n,
                            int64_t *ids)
{
    moe_rng_t rng;
    int       t;

    for (t = 0; t < n; t++) {
        int64_t lo = 0, hi = wl->vocab - 1, r;
        double  u;
        if (wl->vocab <= 0) {
            ids[t] = -1;
            continue;
        }
        moe_rng_seed(&rng, moe_rng_key(wl->seed, WL_STREAM_VOCAB, (uint64_t)step,
                                       (uint64_t)(g0 + t)));
        u = moe_rng_uniform(&rng);
        {   /* the guide's bucket of u bounds the search when it brackets the answer (its
             * rounding may not: then the whole range, as before) */
            int     gb = (int)(u * wl->nguide);
            int64_t glo, ghi;
            gb = gb < wl->nguide ? gb : wl->nguide - 1;
            glo = wl->vocab_guide[gb];
            ghi = wl->vocab_guide[gb + 1];
            if ((glo == 0 || !(wl->vocab_cdf[glo - 1] > u)) &&
                (ghi == wl->vocab - 1 || wl->vocab_cdf[ghi] > u) && glo <= ghi)
                lo = glo, hi = ghi;
        }
        while (lo < hi) { /* first rank whose CDF exceeds u */
            int64_t mid = lo + (hi - lo) / 2;
            if (wl->vocab_cdf[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        r = lo;
        if (wl->spec.kind == MOE_WL_DOMAINS) {
            int nd = (int)wl->spec.param;
            r = (r + (int64_t)wl_domain(wl, step, g0 + t) * (wl->vocab / nd)) % wl->vocab;
        }
        ids[t] = r;
    }
}

int moe_workload_preference(moe_workload_t *wl, long step, int64_t g)
{
    moe_rng_t rng;
    double    u;
    int       E = wl->experts, j, n, lo, hi;

    moe_rng_seed(&rng, moe_rng_key(wl->seed, WL_STREAM_PREF, (uint64_t)step, (uint64_t)g));
    u = moe_rng_uniform(&rng);
    switch (wl->spec.kind) {
    case MOE_WL_UNIFORM:
        return -1;
    case MOE_WL_COLLAPSE:
        if (u >= wl->spec.param)
            return -1;
        return (u < wl->spec.param * (2.0 / 3.0) || E < 2) ? 0 : 1;
    case MOE_WL_ZIPF:
    case MOE_WL_DRIFT:
        wl_build_cdf(wl, step);
        for (j = 0; j < E - 1 && wl->cdf[j] <= u; j++)
            ;
        return j;
    case MOE_WL_DOMAINS:
        n = (int)wl->spec.param;
        j = wl_domain(wl, step, g); /* the document's domain */
        lo = (int)((long long)j * E / n);
        hi = (int)((long long)(j + 1) * E / n);
        return lo + (int)(u * (hi - lo));
    }
    return -1;
}

/*
 * A token's noise z: row[i] = (s_i - 2) sqrt(3), s_i the Irwin-Hall sum of the four 16-bit
 * quarters of draw i / 2^16 (unit variance). Draw i comes straight from the key
 * (moe_rng_draw: moe_rng_next's walk written out), so no draw depends on the one before
 * and the loop vectorises (64-bit multiplies need AVX-512DQ: the v4 clone); the
 * sum of the quarters (< 2^18) is exact in int32 and in float, so every clone gives the bits
 * of the scalar walk. This file is built with -O3 (CMakeLists.txt).
 */
MOE_CLONES
static void wl_noise(uint64_t key, int d, float *row)
{
    int i;

    for (i = 0; i < d; i++) {
        uint64_t r = moe_rng_draw(key, i);
        uint32_t q = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) +
                     (uint32_t)((r >> 32) & 0xffff) + (uint32_t)(r >> 48);
        row[i] = ((float)(int32_t)q * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
    }
}

void moe_workload_tokens(moe_workload_t *wl, long step, int64_t g0, int n, float *x)
{
    int d = wl->d_model, t, i, j;

    for (t = 0; t < n; t++) {
        float *row = x + (size_t)t * d;
        wl_noise(moe_rng_key(wl->seed, WL_STREAM_TOKEN, (uint64_t)step, (uint64_t)(g0 + t)), d,
                 row);
        j = moe_workload_preference(wl, step, g0 + t);
        if (j >= 0) {
            const float *v = wl->features + (size_t)j * d;
            for (i = 0; i < d; i++)
                row[i] += WL_ALPHA * v[i];
        }
    }
}
