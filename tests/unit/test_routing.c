/*
 * test_routing.c — gate, capacity formula, placement, workload skew and expert FFN, each
 * against values computed independently here (by hand or by a straightforward loop).
 */
#include <float.h>
#include <stdint.h>

#include <cblas.h>

#include "capacity.h"
#include "ffn.h"
#include "gate.h"
#include "moerun/base/rng.h"
#include "placement.h"
#include "testlib.h"
#include "workload.h"

/* Two tokens, d = 2, E = 3 with an identity-like router: logits are hand-made. */
static void test_gate_hand_computed(void)
{
    /* x . Wg with Wg = [[1,0,2],[0,1,0]]: token0 x=(1,0) -> logits (1,0,2); token1 x=(0,3) -> (0,3,0) */
    float          x[4] = {1, 0, 0, 3}, wg[6] = {1, 0, 2, 0, 1, 0}, logits[6];
    double         ps[3], sums[MOE_GSUM_LEN(3)] = {0}, lmax = -DBL_MAX;
    int32_t        ex[4];
    float          pr[4], w[4];
    int64_t        cos[9] = {0};
    moe_gate_out_t out = {ex, pr, w};
    double         z0 = exp(1) + exp(0) + exp(2), z1 = 2 + exp(3);

    moe_gate_route(x, wg, 2, 2, 3, 2, 1.0, logits, ps, &out, sums, &lmax, cos);
    ASSERT_EQ_INT(ex[0], 2);
    ASSERT_EQ_INT(ex[1], 0);
    ASSERT_NEAR(pr[0], exp(2) / z0, 1e-6);
    ASSERT_NEAR(pr[1], exp(1) / z0, 1e-6);
    ASSERT_NEAR(w[0], exp(2) / (exp(2) + exp(1)), 1e-6);
    ASSERT_NEAR(w[0] + w[1], 1.0, 1e-6);
    /* token 1: expert 1 best; experts 0 and 2 tie, lower id wins */
    ASSERT_EQ_INT(ex[2], 1);
    ASSERT_EQ_INT(ex[3], 0);
    ASSERT_NEAR(pr[2], exp(3) / z1, 1e-6);
    ASSERT_NEAR(lmax, 3.0, 0);
    ASSERT_NEAR(sums[MOE_GSUM_TOKENS], 2, 0);
    ASSERT_NEAR(sums[MOE_GSUM_TOP1], exp(2) / z0 + exp(3) / z1, 1e-9);
    ASSERT_NEAR(sums[MOE_GSUM_MARGIN], (exp(2) - exp(1)) / z0 + (exp(3) - 1) / z1, 1e-9);
    ASSERT_NEAR(sums[MOE_GSUM_LOGIT], 1 + 0 + 2 + 0 + 3 + 0, 1e-9);
    ASSERT_NEAR(sums[MOE_GSUM_LOGIT2], 1 + 4 + 9, 1e-9);
    ASSERT_NEAR(sums[MOE_GSUM_LSE2], pow(log(z0), 2) + pow(log(z1), 2), 1e-9);
    {
        double h0 = 0, h1 = 0, p0[3] = {exp(1) / z0, 1 / z0, exp(2) / z0},
               p1[3] = {1 / z1, exp(3) / z1, 1 / z1};
        for (int i = 0; i < 3; i++) {
            h0 -= p0[i] * log(p0[i]);
            h1 -= p1[i] * log(p1[i]);
        }
        ASSERT_NEAR(sums[MOE_GSUM_ENTROPY], h0 + h1, 1e-9);
        ASSERT_NEAR(sums[MOE_GSUM_FIXED + 0], p0[0] + p1[0], 1e-9); /* probability sums */
    }
    /* routed counts: expert 0 twice, 1 once, 2 once */
    ASSERT_NEAR(sums[MOE_GSUM_FIXED + 3 + 0], 2, 0);
    ASSERT_NEAR(sums[MOE_GSUM_FIXED + 3 + 1], 1, 0);
    ASSERT_NEAR(sums[MOE_GSUM_FIXED + 3 + 2], 1, 0);
    /* co-selection: token0 {2,0}, token1 {1,0} */
    ASSERT_EQ_INT(cos[0 * 3 + 0], 2);
    ASSERT_EQ_INT(cos[0 * 3 + 2], 1);
    ASSERT_EQ_INT(cos[2 * 3 + 0], 1);
    ASSERT_EQ_INT(cos[1 * 3 + 0], 1);
    ASSERT_EQ_INT(cos[1 * 3 + 2], 0);
}

static void test_gate_temperature(void)
{
    float          x[2] = {1, 0}, wg[4] = {2, 0, 0, 0}, logits[2];
    double         ps[2], sums[MOE_GSUM_LEN(2)] = {0}, lmax = -DBL_MAX;
    int32_t        ex[1];
    float          pr[1], w[1];
    moe_gate_out_t out = {ex, pr, w};

    /* logits (2, 0); temperature 2 -> softmax of (1, 0) */
    moe_gate_route(x, wg, 1, 2, 2, 1, 2.0, logits, ps, &out, sums, &lmax, NULL);
    ASSERT_NEAR(pr[0], exp(1) / (exp(1) + 1), 1e-6);
    ASSERT_NEAR(w[0], 1.0, 0);
    ASSERT_NEAR(lmax, 2.0, 0); /* raw logits, before temperature */
}

static void test_capacity_formula(void)
{
    /* ceil(cf k G / E) */
    ASSERT_EQ_INT(moe_capacity_compute(1.25, 2, 1024, 8), 320);
    ASSERT_EQ_INT(moe_capacity_compute(1.0, 2, 100, 8), 25);
    ASSERT_EQ_INT(moe_capacity_compute(1.0, 1, 10, 3), 4);
    ASSERT_EQ_INT(moe_capacity_compute(0.01, 1, 10, 3), 1);
    /* a product under the 1e-9 guard must still give ceil's 1, never 0 (issue 15) */
    ASSERT_EQ_INT(moe_capacity_compute(1e-12, 1, 8, 8), 1);
    ASSERT_EQ_INT(moe_capacity_compute(1e-6, 1, 1, 65536), 1);
    ASSERT_EQ_INT(moe_capacity_compute(0.0, 2, 1024, 8), -1);
    ASSERT_EQ_INT(moe_capacity_compute(-1.0, 2, 1024, 8), -1);
}

static void check_placement(moe_placement_kind_t kind, int E, int P)
{
    moe_placement_t pl;
    int             e, r, total = 0;

    ASSERT_EQ_INT(moe_placement_init(&pl, kind, E, P), MOE_OK);
    for (r = 0; r < P; r++) {
        total += pl.local_count[r];
        /* contiguous blocks differ by at most one expert */
        ASSERT_TRUE(pl.local_count[r] >= E / P && pl.local_count[r] <= (E + P - 1) / P);
    }
    ASSERT_EQ_INT(total, E);
    for (e = 0; e < E; e++) {
        int want = kind == MOE_PLACE_ROUND_ROBIN ? e % P : -1;
        if (kind == MOE_PLACE_CONTIGUOUS) /* independent formula: r*E/P <= e < (r+1)*E/P */
            for (r = 0; r < P; r++)
                if ((long)r * E / P <= e && e < (long)(r + 1) * E / P)
                    want = r;
        ASSERT_EQ_INT(pl.owner[e], want);
        ASSERT_EQ_INT(pl.global_of[pl.first_local[pl.owner[e]] + pl.local_index[e]], e);
    }
    moe_placement_cleanup(&pl);
}

static void test_placement(void)
{
    int Es[] = {1, 3, 8, 10, 64}, Ps[] = {1, 2, 3, 4, 8, 16}, i, j;

    for (i = 0; i < 5; i++)
        for (j = 0; j < 6; j++) {
            check_placement(MOE_PLACE_CONTIGUOUS, Es[i], Ps[j]);
            check_placement(MOE_PLACE_ROUND_ROBIN, Es[i], Ps[j]);
        }
    /* the built-in maps: the busiest rank holds L x ceil(E/P) copies (the memory estimate) */
    for (i = 0; i < 5; i++)
        for (j = 0; j < 6; j++) {
            moe_placement_t pl;
            int             k;
            for (k = 0; k < 2; k++) {
                ASSERT_EQ_INT(moe_placement_builtin(&pl, k ? MOE_PLACE_ROUND_ROBIN
                                                           : MOE_PLACE_CONTIGUOUS,
                                                    Es[i], 3, Ps[j], 1, NULL), MOE_OK);
                ASSERT_EQ_INT(moe_placement_max_held(&pl), 3 * ((Es[i] + Ps[j] - 1) / Ps[j]));
                moe_placement_cleanup(&pl);
            }
        }
}

/*
 * Replicas and per-layer maps, by hand: E 4, L 2, P 4 on 2 nodes (ranks 0-1, 2-3), 2 slots.
 * layer 0: e0 on {0, 3}, e1 on 1, e2 on 2, e3 on {3, 2, 1}; layer 1: e0 on 1, e1 on 0,
 * e2 on 3, e3 on 2.
 */
static void test_placement_replicas(void)
{
    int             nrep[8] = {2, 1, 1, 3, 1, 1, 1, 1}, node[4] = {0, 0, 1, 1};
    int             ranks[8 * 3] = {0, 3, -1, 1, -1, -1, 2, -1, -1, 3, 2, 1,
                                    1, -1, -1, 0, -1, -1, 3, -1, -1, 2, -1, -1};
    moe_placement_t pl, rd;
    char            err[256] = "", path[] = "/tmp/moerun-test-placement.XXXXXX";
    int             slot = -1, fd, l, e, j;
    FILE           *f;

    ASSERT_EQ_INT(moe_placement_from_lists(&pl, 4, 2, 4, 2, node, 2, nrep, ranks, 3, err,
                                           sizeof(err)), MOE_OK);
    /* slots: rank 3 holds e0 then e3 at layer 0 (slots 0, 1); rank 2 holds e2, e3; rank 1 e1, e3 */
    ASSERT_EQ_INT(pl.local_count[0], 1);
    ASSERT_EQ_INT(pl.local_count[1], 2);
    ASSERT_EQ_INT(pl.local_count[2], 2);
    ASSERT_EQ_INT(pl.local_count[3], 2);
    ASSERT_EQ_INT(pl.max_replicas, 3);
    ASSERT_EQ_INT(pl.global_of[pl.first_local[3] + 1], 3);       /* layer 0, rank 3, slot 1 */
    ASSERT_EQ_INT(pl.global_of[7 + pl.first_local[3] + 1], -1);  /* layer 1: rank 3 holds e2 only */
    ASSERT_EQ_INT(pl.global_of[7 + pl.first_local[3]], 2);
    ASSERT_EQ_INT(pl.owner[3], 3);
    /* copies over both layers: rank 0 holds 1 + 1, ranks 1-3 hold 2 + 1 */
    ASSERT_EQ_INT(moe_placement_max_held(&pl), 3);
    /* e0 at layer 0 from node 0: the only node-0 replica is rank 0, for every token */
    ASSERT_EQ_INT(moe_placement_route(&pl, 0, 0, 0, 5, &slot), 0);
    ASSERT_EQ_INT(slot, 0);
    ASSERT_EQ_INT(moe_placement_route(&pl, 0, 0, 1, 6, &slot), 3);
    ASSERT_EQ_INT(slot, 0);
    /* e3 from node 1: candidates ranks 3, 2 (file order); token 6 -> 6 mod 2 = 0 -> rank 3 */
    ASSERT_EQ_INT(moe_placement_route(&pl, 0, 3, 1, 6, &slot), 3);
    ASSERT_EQ_INT(slot, 1);
    ASSERT_EQ_INT(moe_placement_route(&pl, 0, 3, 1, 7, &slot), 2);
    ASSERT_EQ_INT(slot, 1);
    /* e3 from node 0: only rank 1 */
    ASSERT_EQ_INT(moe_placement_route(&pl, 0, 3, 0, 7, &slot), 1);
    ASSERT_EQ_INT(slot, 1);
    ASSERT_EQ_INT(moe_placement_route(&pl, 1, 0, 1, 7, &slot), 1);

    /* the text format round-trips */
    fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    f = fdopen(fd, "w");
    ASSERT_EQ_INT(moe_placement_write(&pl, f, "hand-made\nsecond line"), 0);
    fclose(f);
    ASSERT_EQ_INT(moe_placement_read(&rd, path, node, err, sizeof(err)), MOE_OK);
    ASSERT_EQ_INT(rd.experts, 4);
    ASSERT_EQ_INT(rd.layers, 2);
    ASSERT_EQ_INT(rd.nnodes, 2);
    ASSERT_EQ_INT(rd.slots, 2);
    for (l = 0; l < 2; l++)
        for (e = 0; e < 4; e++) {
            ASSERT_EQ_INT(rd.nrep[l * 4 + e], nrep[l * 4 + e]);
            for (j = 0; j < nrep[l * 4 + e]; j++)
                ASSERT_EQ_INT(rd.rep_rank[(l * 4 + e) * rd.max_replicas + j], ranks[(l * 4 + e) * 3 + j]);
        }
    moe_placement_cleanup(&rd);
    /* one slot is too few for rank 3 at layer 0 */
    ASSERT_EQ_INT(moe_placement_from_lists(&rd, 4, 2, 4, 2, node, 1, nrep, ranks, 3, err,
                                           sizeof(err)), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "more than its 1 slots");
    /* the file made for 2 nodes does not fit a run on 1 node */
    {
        char spec[64];
        snprintf(spec, sizeof(spec), "file:%s", path);
        ASSERT_EQ_INT(moe_placement_build(&rd, spec, 4, 2, 4, 1, NULL, err, sizeof(err)),
                      MOE_ERR_INVALID);
        ASSERT_STR_CONTAINS(err, "was made for experts 4, layers 2, ranks 4, nodes 2");
    }
    remove(path);
    moe_placement_cleanup(&pl);
}

static void test_workload_parse(void)
{
    moe_workload_spec_t s;
    char                err[256];

    ASSERT_EQ_INT(moe_workload_parse("uniform", 8, &s, err, sizeof(err)), MOE_OK);
    ASSERT_EQ_INT(s.kind, MOE_WL_UNIFORM);
    ASSERT_EQ_INT(moe_workload_parse("zipf:1.2", 8, &s, err, sizeof(err)), MOE_OK);
    ASSERT_NEAR(s.param, 1.2, 0);
    ASSERT_EQ_INT(moe_workload_parse("domains:4", 8, &s, err, sizeof(err)), MOE_OK);
    ASSERT_EQ_INT(moe_workload_parse("domains:9", 8, &s, err, sizeof(err)), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "workload");
    ASSERT_EQ_INT(moe_workload_parse("domains:2.5", 8, &s, err, sizeof(err)), MOE_ERR_INVALID);
    ASSERT_EQ_INT(moe_workload_parse("collapse:1.5", 8, &s, err, sizeof(err)), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "[0, 1]");
    ASSERT_EQ_INT(moe_workload_parse("zipf", 8, &s, err, sizeof(err)), MOE_ERR_INVALID);
    ASSERT_EQ_INT(moe_workload_parse("zipf:nan", 8, &s, err, sizeof(err)), MOE_ERR_INVALID);
    ASSERT_EQ_INT(moe_workload_parse("bogus", 8, &s, err, sizeof(err)), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "uniform | zipf:S");
    ASSERT_EQ_INT(moe_workload_parse("uniform:3", 8, &s, err, sizeof(err)), MOE_ERR_INVALID);
}

/* Routes n tokens of a workload through the real gate at `layer`; returns top-1 counts. */
static void route_counts(const char *spec, int layer, int E, int n, long step, int64_t *cnt)
{
    moe_workload_spec_t s;
    moe_workload_t      wl;
    char                err[256];
    int                 d = 64, t;
    float              *x = malloc((size_t)n * d * sizeof(float)), *wg = malloc((size_t)d * E * 4);
    float              *lg = malloc((size_t)n * E * 4), *pr = malloc((size_t)n * 4), *w = malloc((size_t)n * 4);
    int32_t            *ex = malloc((size_t)n * 4);
    double             *ps = malloc((size_t)E * 8), *sums = calloc(MOE_GSUM_LEN(E), 8), lmax = 0;
    moe_gate_out_t      out = {ex, pr, w};

    moe_workload_parse(spec, E, &s, err, sizeof(err));
    moe_workload_init(&wl, &s, 7, d, E);
    moe_workload_router(&wl, layer, wg);
    moe_workload_tokens(&wl, step, 1000, n, x);
    moe_gate_route(x, wg, n, d, E, 1, 1.0, lg, ps, &out, sums, &lmax, NULL);
    memset(cnt, 0, (size_t)E * sizeof(int64_t));
    for (t = 0; t < n; t++)
        cnt[ex[t]]++;
    moe_workload_cleanup(&wl);
    free(x), free(wg), free(lg), free(pr), free(w), free(ex), free(ps), free(sums);
}

static void test_workload_skew_through_gate(void)
{
    int64_t c[16], maxc = 0, minc = 1 << 30;
    int     e, n = 4000;

    route_counts("uniform", 0, 8, n, 0, c);
    for (e = 0; e < 8; e++) {
        maxc = c[e] > maxc ? c[e] : maxc;
        minc = c[e] < minc ? c[e] : minc;
    }
    ASSERT_TRUE(maxc < 2.0 * n / 8 && minc > 0.4 * n / 8); /* roughly balanced */
    route_counts("collapse:0.9", 0, 8, n, 0, c);
    ASSERT_TRUE(c[0] + c[1] > 0.75 * n);                   /* pulled to experts 0 and 1 */
    route_counts("zipf:2", 0, 8, n, 0, c);
    ASSERT_TRUE(c[0] > c[3] && c[0] > 0.4 * n);           /* Zipf head is expert 0 at layer 0 */
    route_counts("drift:2", 0, 16, n, 3, c);               /* centre at 6 for step 3 */
    ASSERT_TRUE(c[6] + c[5] + c[7] > 0.4 * n);
    route_counts("drift:2", 0, 16, n, 5, c);               /* centre moved to 10 */
    ASSERT_TRUE(c[10] + c[9] + c[11] > 0.4 * n);
}

static void test_workload_deterministic(void)
{
    moe_workload_spec_t s;
    moe_workload_t      wl;
    char                err[64];
    float               a[3 * 16], b[16];

    moe_workload_parse("zipf:1", 8, &s, err, sizeof(err));
    moe_workload_init(&wl, &s, 11, 16, 8);
    moe_workload_tokens(&wl, 4, 100, 3, a);       /* tokens 100, 101, 102 */
    moe_workload_tokens(&wl, 4, 101, 1, b);       /* token 101 alone */
    ASSERT_TRUE(memcmp(a + 16, b, sizeof(b)) == 0);
    moe_workload_tokens(&wl, 5, 101, 1, b);       /* another step differs */
    ASSERT_TRUE(memcmp(a + 16, b, sizeof(b)) != 0);
    moe_workload_cleanup(&wl);
}

/* The uniform workload's hidden states (no preferred feature) against the scalar
 * SplitMix64 walk of each token's stream (workload.c's WL_STREAM_TOKEN = 4), bit for bit:
 * the vectorised noise loop must not change a value. d 37 leaves a remainder after every
 * vector width; d 512 is the standard configuration's. */
static void test_workload_noise_bits(void)
{
    int                 ds[2] = {37, 512}, k, t, i, n = 5;
    moe_workload_spec_t s;
    moe_workload_t      wl;
    char                err[64];

    for (k = 0; k < 2; k++) {
        int    d = ds[k];
        float *x = malloc((size_t)n * d * sizeof(float)), *ref = malloc((size_t)d * sizeof(float));
        ASSERT_EQ_INT(moe_workload_parse("uniform", 8, &s, err, sizeof(err)), MOE_OK);
        ASSERT_EQ_INT(moe_workload_init(&wl, &s, 19, d, 8), MOE_OK);
        moe_workload_tokens(&wl, 6, 1000, n, x);
        for (t = 0; t < n; t++) {
            moe_rng_t rng;
            moe_rng_seed(&rng, moe_rng_key(19, 4, 6, (uint64_t)(1000 + t)));
            for (i = 0; i < d; i++) {
                uint64_t r = moe_rng_next(&rng);
                float    u = (float)((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) +
                                     (r >> 48)) / 65536.0f;
                ref[i] = (u - 2.0f) * 1.7320508f;
            }
            ASSERT_TRUE(memcmp(x + (size_t)t * d, ref, (size_t)d * sizeof(float)) == 0);
        }
        moe_workload_cleanup(&wl);
        free(x), free(ref);
    }
}

/* Token ids (guide-table search) against the plain inverse CDF: the first rank whose CDF
 * exceeds u (the last rank if none), u from the token's own stream (workload.c's
 * WL_STREAM_VOCAB = 7); 20,000 tokens for each vocabulary size, over and under the guide's
 * 65,536 buckets. */
static void test_token_ids_inverse_cdf(void)
{
    int64_t             vocabs[5] = {1, 2, 7, 32000, 200003}, ids[2000];
    int                 v, t, c, bad = 0;
    moe_workload_spec_t s;
    moe_workload_t      wl;
    char                err[64];

    ASSERT_EQ_INT(moe_workload_parse("uniform", 8, &s, err, sizeof(err)), MOE_OK);
    for (v = 0; v < 5; v++) {
        ASSERT_EQ_INT(moe_workload_init(&wl, &s, 23, 4, 8), MOE_OK);
        ASSERT_EQ_INT(moe_workload_vocab_init(&wl, vocabs[v]), MOE_OK);
        for (c = 0; c < 10; c++) {
            moe_workload_token_ids(&wl, 3, (int64_t)c * 2000, 2000, ids);
            for (t = 0; t < 2000; t++) {
                moe_rng_t rng;
                int64_t   r = 0;
                double    u;
                moe_rng_seed(&rng, moe_rng_key(23, 7, 3, (uint64_t)(c * 2000 + t)));
                u = moe_rng_uniform(&rng);
                while (r < vocabs[v] - 1 && !(wl.vocab_cdf[r] > u))
                    r++;
                bad += ids[t] != r;
            }
        }
        moe_workload_cleanup(&wl);
    }
    ASSERT_EQ_INT(bad, 0);
}

static void test_ffn_against_reference(void)
{
    /* n over two row blocks, f over two hidden-column blocks (the second partial) */
    int             acts[2] = {MOE_FFN_GELU, MOE_FFN_SWIGLU}, a, i, n = MOE_FFN_BLOCK + 76, d = 24;
    int             f = MOE_FFN_COLS + 44;
    float          *x = malloc((size_t)n * d * 4), *y = malloc((size_t)n * d * 4);
    float          *yr = malloc((size_t)n * d * 4), *scr = malloc(MOE_FFN_BLOCK * 2 * (size_t)f * 4);
    moe_ffn_t       ffn;
    moe_ffn_t       again;

    for (i = 0; i < n * d; i++)
        x[i] = (float)sin(i * 0.37) * 1.5f;
    for (a = 0; a < 2; a++) {
        double num = 0, den = 0;
        ASSERT_EQ_INT(moe_ffn_init(&ffn, d, f, (moe_ffn_act_t)acts[a], 5, 1, 3), MOE_OK);
        ASSERT_TRUE(moe_ffn_scratch_floats(&ffn) <= MOE_FFN_BLOCK * 2 * (size_t)f);
        moe_ffn_forward(&ffn, x, n, y, scr);
        moe_ffn_forward_ref(&ffn, x, n, yr);
        for (i = 0; i < n * d; i++) {
            num += (y[i] - yr[i]) * (double)(y[i] - yr[i]);
            den += (double)yr[i] * yr[i];
        }
        ASSERT_TRUE(den > 0);
        ASSERT_TRUE(sqrt(num / den) < 1e-5);
        /* same (seed, layer, expert) -> same weights */
        moe_ffn_init(&again, d, f, (moe_ffn_act_t)acts[a], 5, 1, 3);
        ASSERT_TRUE(memcmp(again.w2, ffn.w2, (size_t)f * d * 4) == 0);
        moe_ffn_cleanup(&again);
        moe_ffn_cleanup(&ffn);
    }
    {
        float v[7] = {-9, -3, -0.5f, 0, 0.5f, 3, 9}, ref[7], w[64], wref[64];
        for (i = 0; i < 7; i++)
            ref[i] = moe_ffn_gelu_ref(v[i]);
        moe_ffn_gelu(v, 7);
        for (i = 0; i < 7; i++)
            ASSERT_NEAR(v[i], ref[i], 1e-6 * (1 + fabs(ref[i])));
        /* relative accuracy also where gelu is tiny (x in -5.5 .. 0.8, vector and tail) */
        for (i = 0; i < 64; i++) {
            w[i] = -5.5f + 0.1f * (float)i;
            wref[i] = moe_ffn_gelu_ref(w[i]);
        }
        moe_ffn_gelu(w, 64);
        for (i = 0; i < 64; i++)
            ASSERT_NEAR(w[i], wref[i], 2e-6 * fabs(wref[i]) + 1e-30);
    }
    free(x), free(y), free(yr), free(scr);
}

int main(void)
{
    openblas_set_num_threads(1);
    RUN_TEST(test_gate_hand_computed);
    RUN_TEST(test_gate_temperature);
    RUN_TEST(test_capacity_formula);
    RUN_TEST(test_placement);
    RUN_TEST(test_placement_replicas);
    RUN_TEST(test_workload_parse);
    RUN_TEST(test_workload_skew_through_gate);
    RUN_TEST(test_workload_deterministic);
    RUN_TEST(test_workload_noise_bits);
    RUN_TEST(test_token_ids_inverse_cdf);
    RUN_TEST(test_ffn_against_reference);
    TEST_MAIN_END();
}
