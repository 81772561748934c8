/*
 * test_monitor.c — the online collapse alert scales with k/E: a balanced top-2-of-3 run (every
 * expert sees 2/3 of the tokens by construction) raises no collapse; one expert taking the
 * tokens does. Thresholds computed here by hand.
 */
#include <stdint.h>
#include <string.h>

#include "monitor.h"
#include "testlib.h"

/* Feeds `steps` steps of the same routed[L=1][E] counts; returns the collapse events raised. */
static int collapse_events(int E, int k, int64_t tokens, const int64_t *routed, int steps)
{
    moe_config_t  cfg;
    moe_monitor_t mon;
    moe_log_t     log;
    int64_t       cap = -1;
    double        router[MOE_RSTAT_COUNT];
    int           s, n, i, found = 0;

    moe_config_defaults(&cfg);
    cfg.layers = 1;
    cfg.experts = E;
    cfg.top_k = k;
    moe_log_init(&log, 0, MOE_LOG_ERROR);
    memset(router, 0, sizeof(router));
    router[MOE_RSTAT_LOAD_ENTROPY_NORM] = 1.0;
    router[MOE_RSTAT_LOGIT_STD] = 1.0;
    ASSERT_EQ_INT(moe_monitor_init(&mon, &cfg, tokens, &log, 0), MOE_OK);
    for (s = 0; s < steps; s++) {
        const moe_event_t *ev;
        ASSERT_EQ_INT(moe_monitor_observe(&mon, s, routed, &cap, router), MOE_OK);
        ev = moe_monitor_take(&mon, &n);
        for (i = 0; i < n; i++)
            found += ev[i].kind == MOE_EVENT_COLLAPSE;
    }
    moe_monitor_cleanup(&mon);
    return found;
}

static void test_collapse_threshold(void)
{
    /* s = 0.5: top-1 of 8 -> 0.5 + 0.5/8 = 0.5625; top-2 of 3 -> 0.5 + 0.5 * 2/3 = 5/6 */
    ASSERT_NEAR(moe_monitor_collapse_threshold(0.5, 1, 8), 0.5625, 1e-12);
    ASSERT_NEAR(moe_monitor_collapse_threshold(0.5, 2, 3), 5.0 / 6.0, 1e-12);
    ASSERT_NEAR(moe_monitor_collapse_threshold(0.5, 8, 8), 1.0, 1e-12);
}

static void test_balanced_top2_of_3(void)
{
    /* 300 tokens, top-2 of 3, balanced: 200 pairs per expert = 2/3 of the tokens each */
    const int64_t even[3] = {200, 200, 200};
    /* skewed: expert 0 chosen by 290 of 300 tokens (0.967 > 5/6) */
    const int64_t skew[3] = {290, 160, 150};

    ASSERT_EQ_INT(collapse_events(3, 2, 300, even, 5), 0);
    ASSERT_EQ_INT(collapse_events(3, 2, 300, skew, 5), 1); /* edge-triggered: once */
}

static void test_top1_of_8(void)
{
    /* top-1 of 8, 800 tokens: 480 on one expert = 0.6 > 0.5625 raises; 440 = 0.55 does not */
    const int64_t hot[8] = {480, 40, 40, 40, 50, 50, 50, 50};
    const int64_t warm[8] = {440, 60, 60, 60, 45, 45, 45, 45};

    ASSERT_EQ_INT(collapse_events(8, 1, 800, hot, 3), 1);
    ASSERT_EQ_INT(collapse_events(8, 1, 800, warm, 3), 0);
}

int main(void)
{
    RUN_TEST(test_collapse_threshold);
    RUN_TEST(test_balanced_top2_of_3);
    RUN_TEST(test_top1_of_8);
    TEST_MAIN_END();
}
