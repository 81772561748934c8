/*
 * test_analysis_math.c — tools/analyze/analysis_math.c against values computed by hand (the
 * arithmetic is written next to each check), so a wrong formula cannot pass by agreeing
 * with itself: entropy, max/mean, CV, Gini, percentiles, capacity and the capacity
 * what-if, Pearson r, and the LPT placement what-if.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "analysis_math.h"
#include "testlib.h"

static void test_balance_skewed(void)
{
    /* loads 32, 16, 16, 0: total 64, mean 16 */
    const int64_t x[4] = {32, 16, 16, 0};
    am_balance_t  b;

    am_balance(x, 4, &b);
    ASSERT_NEAR(b.total, 64, 0);
    ASSERT_NEAR(b.mean, 16, 0);
    ASSERT_NEAR(b.max_mean, 2.0, 1e-12);              /* 32 / 16 */
    ASSERT_NEAR(b.cv, sqrt(128.0) / 16.0, 1e-12);     /* var = (256+0+0+256)/4 = 128 */
    ASSERT_NEAR(b.cv, 0.7071067811865476, 1e-12);
    /* sorted 0,16,16,32: sum (2i-n+1) s_i = -3*0 - 1*16 + 1*16 + 3*32 = 96; 96/(4*64) */
    ASSERT_NEAR(b.gini, 0.375, 1e-12);
    /* p = 1/2, 1/4, 1/4: H = 0.5*1 + 0.25*2 + 0.25*2 = 1.5 bits */
    ASSERT_NEAR(b.entropy, 1.5, 1e-12);
    ASSERT_NEAR(b.entropy_norm, 0.75, 1e-12);         /* 1.5 / log2 4 */
    ASSERT_NEAR(b.eff_experts, 2.8284271247461903, 1e-12); /* 2^1.5 */
    ASSERT_EQ_INT(b.argmax, 0);
    ASSERT_EQ_INT(b.argmin, 3);
}

static void test_balance_even_and_empty(void)
{
    const int64_t even[4] = {5, 5, 5, 5}, zero[3] = {0, 0, 0}, one[4] = {0, 0, 9, 0};
    am_balance_t  b;

    am_balance(even, 4, &b);
    ASSERT_NEAR(b.max_mean, 1.0, 1e-12);
    ASSERT_NEAR(b.cv, 0.0, 1e-12);
    ASSERT_NEAR(b.gini, 0.0, 1e-12);
    ASSERT_NEAR(b.entropy, 2.0, 1e-12);
    ASSERT_NEAR(b.entropy_norm, 1.0, 1e-12);
    ASSERT_NEAR(b.eff_experts, 4.0, 1e-12);
    am_balance(zero, 3, &b);
    ASSERT_TRUE(isnan(b.max_mean) && isnan(b.cv) && isnan(b.gini) && isnan(b.entropy_norm));
    /* one expert takes all: Gini (n-1)/n = 0.75, entropy 0, max/mean 4, CV sqrt(3) */
    am_balance(one, 4, &b);
    ASSERT_NEAR(b.gini, 0.75, 1e-12);
    ASSERT_NEAR(b.entropy, 0.0, 1e-12);
    ASSERT_NEAR(b.max_mean, 4.0, 1e-12);
    ASSERT_NEAR(b.cv, sqrt(3.0), 1e-12);     /* mean 2.25, var = (3*2.25^2 + 6.75^2)/4 = 15.1875 */
    ASSERT_NEAR(b.eff_experts, 1.0, 1e-12);
}

static void test_entropy_large_counts(void)
{
    /* beyond the x log x table: 100000 and 300000 -> p = 1/4, 3/4 */
    const int64_t x[2] = {100000, 300000};
    double        h = -(0.25 * log2(0.25) + 0.75 * log2(0.75)); /* 0.8112781244591328 */

    ASSERT_NEAR(am_entropy_bits(x, 2), h, 1e-12);
    ASSERT_NEAR(h, 0.8112781244591328, 1e-15);
}

static void test_percentile(void)
{
    double v[2] = {2.0, 1.0}, w[5] = {5, 1, 4, 2, 3};

    /* numpy.percentile([1, 2], 50) = 1.5, 90 -> 1.9, 95 -> 1.95 */
    ASSERT_NEAR(am_percentile(v, 2, 50), 1.5, 1e-12);
    ASSERT_NEAR(am_percentile(v, 2, 90), 1.9, 1e-12);
    ASSERT_NEAR(am_percentile(v, 2, 95), 1.95, 1e-12);
    /* [1..5]: p50 = 3, p90 = 1 + 0.9*4 = 4.6 -> 4.6, p0 = 1, p100 = 5 */
    ASSERT_NEAR(am_percentile(w, 5, 50), 3.0, 1e-12);
    ASSERT_NEAR(am_percentile(w, 5, 90), 4.6, 1e-12);
    ASSERT_NEAR(am_percentile(w, 5, 0), 1.0, 0);
    ASSERT_NEAR(am_percentile(w, 5, 100), 5.0, 0);
    ASSERT_TRUE(isnan(am_percentile(w, 0, 50)));
}

static void test_capacity_what_if(void)
{
    /* 16 pairs over 4 experts: cf 1 -> 4, 1.25 -> 5, 0.5 -> 2, 0.75 -> 3, 1.1 -> ceil(4.4) = 5 */
    const int64_t x[4] = {8, 4, 4, 0};

    ASSERT_EQ_INT(am_capacity(1.0, 16, 4), 4);
    ASSERT_EQ_INT(am_capacity(1.25, 16, 4), 5);
    ASSERT_EQ_INT(am_capacity(0.5, 16, 4), 2);
    ASSERT_EQ_INT(am_capacity(0.75, 16, 4), 3);
    ASSERT_EQ_INT(am_capacity(1.1, 16, 4), 5);
    ASSERT_EQ_INT(am_capacity(0.0, 16, 4), -1);
    ASSERT_EQ_INT(am_capacity(-1.0, 16, 4), -1);
    /* same formula as runtime/capacity.c: cf 1.25, k 2, 1000 tokens, 8 experts -> 313 */
    ASSERT_EQ_INT(am_capacity(1.25, 2 * 1000, 8), 313);
    /* drops: C 4 -> (8-4) = 4; C 2 -> 6+2+2 = 10; C 3 -> 5+1+1 = 7; C 8 -> 0; dropless 0 */
    ASSERT_EQ_INT(am_drops(x, 4, 4), 4);
    ASSERT_EQ_INT(am_drops(x, 4, 2), 10);
    ASSERT_EQ_INT(am_drops(x, 4, 3), 7);
    ASSERT_EQ_INT(am_drops(x, 4, 8), 0);
    ASSERT_EQ_INT(am_drops(x, 4, -1), 0);
}

static void test_corr(void)
{
    am_corr_t c = {0}, d = {0}, k = {0};
    int       i;

    /* y = 2x + 1 exactly: r = 1; y = -x: r = -1 */
    for (i = 0; i < 5; i++) {
        am_corr_add(&c, i, 2.0 * i + 1);
        am_corr_add(&d, i, -i);
        am_corr_add(&k, i, 3.0);
    }
    ASSERT_NEAR(am_corr_r(&c), 1.0, 1e-12);
    ASSERT_NEAR(am_corr_r(&d), -1.0, 1e-12);
    ASSERT_TRUE(isnan(am_corr_r(&k))); /* constant series */
    /* x = 1,2,3, y = 1,3,2: sxy dev = (-1)(-1) + 0 + (1)(0) = 1; sxx = 2, syy = 2 -> r = 0.5 */
    {
        am_corr_t e = {0};
        am_corr_add(&e, 1, 1);
        am_corr_add(&e, 2, 3);
        am_corr_add(&e, 3, 2);
        ASSERT_NEAR(am_corr_r(&e), 0.5, 1e-12);
    }
}

static void test_rebalance(void)
{
    /* weights 48, 32, 32, 16 on 2 ranks of 2: current {0,1},{2,3} -> 80 / 48;
     * LPT: 48->r0, 32->r1, 32->r1 (32 < 48), 16->r0 -> 64 / 64 */
    const double w[4] = {48, 32, 32, 16};
    const int    cur[4] = {0, 0, 1, 1};
    int          own[4];

    ASSERT_NEAR(am_bin_max(w, 4, cur, 2), 80, 0);
    ASSERT_NEAR(am_rebalance_lpt(w, 4, 2, 2, own), 64, 0);
    ASSERT_EQ_INT(own[0], 0);
    ASSERT_EQ_INT(own[3], 0);
    ASSERT_EQ_INT(own[1], 1);
    ASSERT_EQ_INT(own[2], 1);
    /* the per-rank count bound binds: 10, 1, 1, 1 on 2 ranks of 2 -> {10, 1}, {1, 1} = 11 */
    {
        const double v[4] = {10, 1, 1, 1};
        ASSERT_NEAR(am_rebalance_lpt(v, 4, 2, 2, own), 11, 0);
    }
}

/* The conditional-Poisson null: E = 3, k = 2 has one design per marginals, P({i, j}) ~ w_i w_j
 * with w = (2, 1, 1): products 2, 2, 1 of 5, so pi = (0.8, 0.6, 0.6), and 100 tokens give
 * expected (0,1) = (0,2) = 40, (1,2) = 20 (the first-order formula gives 37.14 for (0,1)). */
static void test_coselect_null(void)
{
    double n3[3] = {80, 60, 60}, o3[9], n4[4] = {100, 50, 30, 20}, o4[16], u[25], nu[5];
    double n2[3] = {80, 60, 50}, o2[9];
    int    i;

    ASSERT_TRUE(am_coselect_null(n3, 3, 100, 2, o3) == 0);
    ASSERT_NEAR(o3[0 * 3 + 1], 40, 1e-7);
    ASSERT_NEAR(o3[2 * 3 + 0], 40, 1e-7);
    ASSERT_NEAR(o3[1 * 3 + 2], 20, 1e-7);
    ASSERT_NEAR(o3[1 * 3 + 1], 60, 0);
    ASSERT_TRUE(fabs(am_coselect_expected(80, 60, 100, 2) - 40) > 2); /* it is not exact here */
    /* expert 0 in every token: its pairs are the other's tokens; the others one pick each */
    ASSERT_TRUE(am_coselect_null(n4, 4, 100, 2, o4) == 0);
    ASSERT_NEAR(o4[0 * 4 + 1], 50, 1e-9);
    ASSERT_NEAR(o4[3 * 4 + 0], 20, 1e-9);
    ASSERT_NEAR(o4[1 * 4 + 2], 0, 1e-9);
    /* equal loads: N k (k-1) / (E (E-1)) = 560 * 6 / 20 = 168 for top-3 of 5 */
    for (i = 0; i < 5; i++)
        nu[i] = 336;
    ASSERT_TRUE(am_coselect_null(nu, 5, 560, 3, u) == 0);
    ASSERT_NEAR(u[1 * 5 + 4], 168, 1e-6);
    ASSERT_NEAR(u[1 * 5 + 4], am_coselect_expected(336, 336, 560, 3), 1e-6);
    /* marginals that sum to more or less than k: no design */
    ASSERT_TRUE(am_coselect_null(n2, 3, 100, 2, o2) == -1);
    ASSERT_TRUE(am_coselect_null(n3, 3, 100, 1, o3) == -1);
}

static void test_coselect_expected(void)
{
    /* uniform: E = 4, k = 2, 600 tokens, every expert picked by 300: chance count of a pair
     * is N k(k-1) / (E(E-1)) = 600 * 2 / 12 = 100 (sampling without replacement), not the
     * independent product N (k/E)^2 = 150 */
    ASSERT_NEAR(am_coselect_expected(300, 300, 600, 2), 100, 1e-9);
    /* top-2 of 3, uniform: every pair by 1/3 of the tokens: 300 tokens -> 100 */
    ASSERT_NEAR(am_coselect_expected(200, 200, 300, 2), 100, 1e-9);
    /* top-3 of 8, uniform: N k(k-1)/(E(E-1)) = 560 * 6 / 56 = 60 */
    ASSERT_NEAR(am_coselect_expected(210, 210, 560, 3), 60, 1e-9);
    /* non-uniform by hand: n = 3 and 1 of N = 4, k = 2: q = 3/8, 1/8:
     * 0.5 (3 (1/8)/(5/8) + 1 (3/8)/(7/8)) = 0.5 (3/5 + 3/7) = 18/35 */
    ASSERT_NEAR(am_coselect_expected(3, 1, 4, 2), 18.0 / 35.0, 1e-12);
    ASSERT_TRUE(isnan(am_coselect_expected(3, 1, 4, 1)));
}

int main(void)
{
    RUN_TEST(test_coselect_expected);
    RUN_TEST(test_coselect_null);
    RUN_TEST(test_balance_skewed);
    RUN_TEST(test_balance_even_and_empty);
    RUN_TEST(test_entropy_large_counts);
    RUN_TEST(test_percentile);
    RUN_TEST(test_capacity_what_if);
    RUN_TEST(test_corr);
    RUN_TEST(test_rebalance);
    TEST_MAIN_END();
}
