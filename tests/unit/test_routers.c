/*
 * test_routers.c — every router's selections and weights on small hand-made inputs (values
 * written here, probabilities as exact binary fractions so that ties are real ties), the tie
 * rules (lower expert id, lower group id, lower global token index), the balancing bias
 * (selection only), the group feasibility check, and expert-choice's global choice on one
 * rank (MPI_COMM_SELF).
 */
#include <mpi.h>
#include <stdint.h>

#include <cblas.h>

#include "capacity.h"
#include "gate.h"
#include "placement.h"
#include "router.h"
#include "router_expert_choice.h"
#include "testlib.h"

static double scratch[MOE_ROUTER_SCRATCH(16)];

/* Runs r on one token given its logits and probabilities. */
static void pick(const moe_router_t *r, const float *l, const double *p, int64_t id,
                 int32_t *sel, float *sc, float *w)
{
    moe_router_token_t tok = {l, p, id, 0};

    r->ops->select(r, &tok, scratch, sel, sc, w);
}

static void test_table(void)
{
    const char *names[] = {"softmax", "switch", "sigmoid", "group-limited", "node-limited",
                           "expert-choice", "hash"};
    int         i;

    for (i = 0; i < 7; i++) {
        ASSERT_TRUE(moe_router_find(names[i]) != NULL);
        ASSERT_STR_CONTAINS(moe_router_names(), names[i]);
    }
    ASSERT_TRUE(moe_router_find("topk") == NULL);
    ASSERT_TRUE(moe_router_find(NULL) == NULL);
    ASSERT_EQ_INT(moe_router_find("expert-choice")->global, 1);
    ASSERT_EQ_INT(moe_router_find("softmax")->global, 0);
}

static void test_softmax(void)
{
    float        l[4] = {0};
    double       p[4] = {0.125, 0.5, 0.125, 0.25}, tie[4] = {0.25, 0.25, 0.25, 0.25};
    int32_t      sel[3];
    float        sc[3], w[3];
    moe_router_t r = {&moe_router_softmax_ops, 4, 2, 1.0, 1.0, 0, 0, NULL, NULL, NULL, 0, 0, 0};

    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 1);
    ASSERT_EQ_INT(sel[1], 3);
    ASSERT_NEAR(sc[0], 0.5, 0);
    ASSERT_NEAR(sc[1], 0.25, 0);
    ASSERT_NEAR(w[0], 0.5 / 0.75, 1e-7);
    ASSERT_NEAR(w[1], 0.25 / 0.75, 1e-7);
    /* ties: experts 0 and 2 both 0.125 for the third slot -> 0 */
    r.k = 3;
    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[2], 0);
    /* all equal: lower ids first */
    pick(&r, l, tie, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 0);
    ASSERT_EQ_INT(sel[1], 1);
    ASSERT_EQ_INT(sel[2], 2);
    ASSERT_NEAR(w[0], 1.0 / 3, 1e-7);
}

/* The softmax router inside the gate: the same choice as the plain gate, and the bias
 * changes selection only. */
static void test_softmax_bias(void)
{
    float        l[3] = {0};
    double       p[3] = {0.5, 0.3125, 0.1875};
    float        bias[3] = {-0.25f, 0, 0};
    int32_t      sel[2];
    float        sc[2], w[2];
    moe_router_t r = {&moe_router_softmax_ops, 3, 1, 1.0, 1.0, 0, 0, NULL, bias, NULL, 0, 0, 0};

    pick(&r, l, p, -1, sel, sc, w); /* 0.5 - 0.25 = 0.25 < 0.3125 */
    ASSERT_EQ_INT(sel[0], 1);
    ASSERT_NEAR(sc[0], 0.3125, 0); /* unbiased score */
    ASSERT_NEAR(w[0], 1.0, 0);
    r.k = 2;
    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 1);
    ASSERT_EQ_INT(sel[1], 0); /* 0.25 > 0.1875 */
    ASSERT_NEAR(w[0], 0.3125 / 0.8125, 1e-7); /* weights from the unbiased p */
    ASSERT_NEAR(w[1], 0.5 / 0.8125, 1e-7);
}

static void test_switch(void)
{
    float        l[3] = {0};
    double       p[3] = {0.125, 0.625, 0.25}, tie[3] = {0.375, 0.375, 0.25};
    int32_t      sel[1];
    float        sc[1], w[1];
    moe_router_t r = {&moe_router_switch_ops, 3, 1, 1.0, 1.0, 0, 0, NULL, NULL, NULL, 0, 0, 0};

    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 1);
    ASSERT_NEAR(w[0], 0.625, 0); /* the probability itself, not renormalised to 1 */
    pick(&r, l, tie, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 0);
    ASSERT_NEAR(w[0], 0.375, 0);
}

static void test_sigmoid(void)
{
    float        l[4] = {0, 2, -1, 1}, ltie[3] = {1, 1, 0};
    double       p[4] = {0.25, 0.25, 0.25, 0.25};
    double       s1 = 1 / (1 + exp(-2.0)), s3 = 1 / (1 + exp(-1.0));
    int32_t      sel[2];
    float        sc[2], w[2];
    moe_router_t r = {&moe_router_sigmoid_ops, 4, 2, 1.0, 2.5, 0, 0, NULL, NULL, NULL, 0, 0, 0};

    pick(&r, l, p, -1, sel, sc, w); /* s = (0.5, 0.881, 0.269, 0.731) */
    ASSERT_EQ_INT(sel[0], 1);
    ASSERT_EQ_INT(sel[1], 3);
    ASSERT_NEAR(sc[0], s1, 1e-7);
    ASSERT_NEAR(sc[1], s3, 1e-7);
    ASSERT_NEAR(w[0], 2.5 * s1 / (s1 + s3), 1e-6);
    ASSERT_NEAR(w[1], 2.5 * s3 / (s1 + s3), 1e-6);
    ASSERT_NEAR(w[0] + w[1], 2.5, 1e-6); /* routed scaling */
    /* temperature 2: sigmoid(l / 2) */
    r.temperature = 2.0;
    r.routed_scaling = 1.0;
    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_NEAR(sc[0], 1 / (1 + exp(-1.0)), 1e-7);
    ASSERT_NEAR(w[0] + w[1], 1.0, 1e-6);
    /* tie: logits 1, 1 -> expert 0 first */
    r.E = 3;
    r.k = 1;
    pick(&r, ltie, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 0);
    ASSERT_NEAR(w[0], 1.0, 1e-7);
}

/*
 * p x 64 = (20, 0, 8, 8, 12, 4, 10, 2). Groups of two: scores (sum of top-2) 20, 16, 16, 12.
 * The best 2 groups: 0, then 1 (ties 2 at 16; lower group id). Top-3 inside {0,1,2,3}:
 * 0, then 2 and 3 (tie at 8, lower id first). A max-per-group score would have taken group
 * 2 (12) over group 1 (8): the sum of the top two decides. Unlimited top-3: 0, 4, 6.
 */
static void test_group_limited(void)
{
    float        l[8] = {0};
    double       p[8] = {20 / 64., 0, 8 / 64., 8 / 64., 12 / 64., 4 / 64., 10 / 64., 2 / 64.};
    int          grp[8] = {0, 0, 1, 1, 2, 2, 3, 3};
    int32_t      sel[3];
    float        sc[3], w[3];
    moe_router_t r = {&moe_router_group_ops, 8, 3, 1.0, 1.0, 4, 2, grp, NULL, NULL, 0, 0, 0};

    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 0);
    ASSERT_EQ_INT(sel[1], 2);
    ASSERT_EQ_INT(sel[2], 3);
    ASSERT_NEAR(w[0], 20.0 / 36, 1e-7);
    ASSERT_NEAR(w[1], 8.0 / 36, 1e-7);
    ASSERT_NEAR(w[2], 8.0 / 36, 1e-7);
    r.max_groups = 4; /* all groups: plain top-k */
    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 0);
    ASSERT_EQ_INT(sel[1], 4);
    ASSERT_EQ_INT(sel[2], 6);
    ASSERT_NEAR(w[0], 20.0 / 42, 1e-7);
    r.max_groups = 1; /* one group: group 0 only has experts 0 and 1 */
    r.k = 2;
    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 0);
    ASSERT_EQ_INT(sel[1], 1);
    ASSERT_NEAR(w[0], 1.0, 1e-7);
    ASSERT_NEAR(w[1], 0.0, 0);
}

/* Node-limited on an interleaved map: node 0 holds experts 0,1,4,5, node 1 holds 2,3,6,7.
 * Node scores: 20 + 12 = 32 and 10 + 8 = 18. M = 1: node 0, top-3 there 0, 4, 5. */
static void test_node_limited(void)
{
    float        l[8] = {0};
    double       p[8] = {20 / 64., 0, 8 / 64., 8 / 64., 12 / 64., 4 / 64., 10 / 64., 2 / 64.};
    int          node[8] = {0, 0, 1, 1, 0, 0, 1, 1}, j, nodes_hit;
    int32_t      sel[3];
    float        sc[3], w[3];
    moe_router_t r = {&moe_router_node_ops, 8, 3, 1.0, 1.0, 2, 1, node, NULL, NULL, 0, 0, 0};

    pick(&r, l, p, -1, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 0);
    ASSERT_EQ_INT(sel[1], 4);
    ASSERT_EQ_INT(sel[2], 5);
    ASSERT_NEAR(w[0], 20.0 / 36, 1e-7);
    ASSERT_NEAR(w[2], 4.0 / 36, 1e-7);
    for (j = 0, nodes_hit = 0; j < 3; j++)
        nodes_hit |= 1 << node[sel[j]];
    ASSERT_EQ_INT(nodes_hit, 1); /* one node touched */
}

/* Node-limited with a placement (3 nodes of one rank; E 8, k 2, M 1): the groups are, per
 * token, the nodes its pairs would go to by moe_placement_route. Experts 0,1 on rank 0;
 * 2,6 on rank 1; 4,7 on rank 2; 3 on ranks 1 and 2; 5 on ranks 0 and 2. A token on node 0:
 * expert 5 is on-node, expert 3 goes to rank 1 for even g and rank 2 for odd g, so the
 * best node (sum of its top-2 p) is node 1 (0.5) for even g and node 2 (0.45) for odd g.
 * Layer 0's primary node (rank 1 for expert 3) would give experts 3 and 2 for every token,
 * and odd tokens would reach 2 nodes. */
static void test_node_limited_map(void)
{
    float              l[8] = {0};
    double             p[8] = {.05, .05, .2, .3, .15, .1, .05, .1};
    int                node_of[3] = {0, 1, 2}, nrep[8] = {1, 1, 1, 2, 1, 2, 1, 1};
    int                ranks[16] = {0, -1, 0, -1, 1, -1, 1, 2, 2, -1, 0, 2, 1, -1, 2, -1};
    int32_t            sel[2];
    float              sc[2], w[2];
    char               err[256] = "";
    moe_placement_t    pl;
    moe_router_token_t tok = {l, p, -1, 0};
    moe_router_t r = {&moe_router_node_ops, 8, 2, 1.0, 1.0, 3, 1, NULL, NULL, NULL, 0, 0, 0};

    ASSERT_EQ_INT(moe_placement_from_lists(&pl, 8, 1, 3, 3, node_of, 4, nrep, ranks, 2, err,
                                           sizeof(err)), MOE_OK);
    r.place = &pl;
    ASSERT_EQ_INT(moe_router_check_groups(&r, err, sizeof(err)), MOE_OK);
    r.g0 = 10; /* token 0 is global token 10 (even), token 1 global 11 (odd) */
    r.ops->select(&r, &tok, scratch, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 3);
    ASSERT_EQ_INT(sel[1], 2);
    ASSERT_NEAR(w[0], 0.6, 1e-7);
    tok.index = 1;
    r.ops->select(&r, &tok, scratch, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 3);
    ASSERT_EQ_INT(sel[1], 4);
    r.node = 1; /* expert 3 on-node (rank 1): node 1 holds 2, 3, 6 */
    r.ops->select(&r, &tok, scratch, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 3);
    ASSERT_EQ_INT(sel[1], 2);
    r.node = 2; /* experts 3 and 5 on-node: node 2 holds 3, 4, 5, 7 */
    tok.index = 0;
    r.ops->select(&r, &tok, scratch, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 3);
    ASSERT_EQ_INT(sel[1], 4);
    /* k 3 on one node: node 1 and node 2 hold 2 experts for sure for a token on node 0 */
    r.k = 3;
    ASSERT_EQ_INT(moe_router_check_groups(&r, err, sizeof(err)), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "at layer 0 a token on node 0 may find only 2 experts");
    moe_placement_cleanup(&pl);
}

static void test_group_check(void)
{
    int          node[4] = {0, 1, 1, 1};
    char         err[256] = "";
    moe_router_t r = {&moe_router_node_ops, 4, 2, 1.0, 1.0, 2, 1, node, NULL, NULL, 0, 0, 0};

    /* node 0 holds one expert: a token limited to it cannot fill 2 slots */
    ASSERT_EQ_INT(moe_router_check_groups(&r, err, sizeof(err)), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "route_max_nodes");
    ASSERT_STR_CONTAINS(err, "top_k 2");
    r.max_groups = 2;
    ASSERT_EQ_INT(moe_router_check_groups(&r, err, sizeof(err)), MOE_OK);
    r.k = 1;
    r.max_groups = 1;
    ASSERT_EQ_INT(moe_router_check_groups(&r, err, sizeof(err)), MOE_OK);
}

/* splitmix64 of 0 is 0xE220A8397B1DCDAF (its well-known first output); the expert lists
 * below were computed from the formula documented in router_hash.c. */
static void test_hash(void)
{
    float        l[8] = {0};
    double       p[8] = {0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125};
    int32_t      sel[3];
    float        sc[3], w[3];
    moe_router_t r = {&moe_router_hash_ops, 8, 3, 1.0, 1.0, 0, 0, NULL, NULL, NULL, 0, 0, 0};

    ASSERT_TRUE(moe_router_hash64(0) == 0xE220A8397B1DCDAFull);
    pick(&r, l, p, 12345, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 0);
    ASSERT_EQ_INT(sel[1], 7);
    ASSERT_EQ_INT(sel[2], 5);
    ASSERT_NEAR(w[0], 1.0 / 3, 1e-7);
    pick(&r, l, p, 7, sel, sc, w);
    ASSERT_EQ_INT(sel[0], 7);
    ASSERT_EQ_INT(sel[1], 5);
    ASSERT_EQ_INT(sel[2], 0);
    r.k = 1;
    pick(&r, l, p, 0, sel, sc, w); /* 0xE220A8397B1DCDAF mod 8 = 7 */
    ASSERT_EQ_INT(sel[0], 7);
    ASSERT_NEAR(w[0], 1.0, 0);
}

/*
 * Expert-choice over 4 tokens and 2 experts on one rank. p(token, expert):
 *   t0 (0.75, 0.25)  t1 (0.5, 0.5)  t2 (0.875, 0.125)  t3 (0.5, 0.5)
 * C = 2: expert 0 takes t2, t0; expert 1 takes t1, t3. C = 1: expert 0 takes t2, expert 1
 * t1 (tie with t3 at 0.5: lower token index): t0 and t3 get no expert.
 */
static void test_expert_choice(void)
{
    int32_t           ex[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    float             pr[8] = {0.75f, 0.25f, 0.5f, 0.5f, 0.875f, 0.125f, 0.5f, 0.5f};
    uint8_t           keep[8];
    int64_t           scr[6];
    uint8_t           want2[8] = {1, 0, 0, 1, 1, 0, 0, 1}, want1[8] = {0, 0, 0, 1, 1, 0, 0, 0};
    moe_placement_t   pl;
    moe_capacity_ws_t ws;
    moe_log_t         log;
    int               i;

    moe_log_init(&log, 0, MOE_LOG_ERROR);
    ASSERT_EQ_INT(moe_placement_init(&pl, MOE_PLACE_CONTIGUOUS, 2, 1), MOE_OK);
    ASSERT_EQ_INT(moe_capacity_ws_init(&ws, 2, 1), MOE_OK);
    ASSERT_EQ_INT(moe_router_expert_choice_decide(MPI_COMM_SELF, &log, &pl, 2, 4, 0, 4, ex, pr,
                                                  scr, scr + 2, scr + 4, keep, &ws),
                  MOE_OK);
    for (i = 0; i < 8; i++)
        ASSERT_EQ_INT(keep[i], want2[i]);
    ASSERT_EQ_INT(moe_router_expert_choice_decide(MPI_COMM_SELF, &log, &pl, 1, 4, 0, 4, ex, pr,
                                                  scr, scr + 2, scr + 4, keep, &ws),
                  MOE_OK);
    for (i = 0; i < 8; i++)
        ASSERT_EQ_INT(keep[i], want1[i]);
    /* C >= G: every expert takes every token */
    ASSERT_EQ_INT(moe_router_expert_choice_decide(MPI_COMM_SELF, &log, &pl, 4, 4, 0, 4, ex, pr,
                                                  scr, scr + 2, scr + 4, keep, &ws),
                  MOE_OK);
    for (i = 0; i < 8; i++)
        ASSERT_EQ_INT(keep[i], 1);
    moe_capacity_ws_cleanup(&ws);
    moe_placement_cleanup(&pl);
}

/* The gate with a global router fills one candidate slot per expert with p. */
static void test_gate_expert_choice_slots(void)
{
    float          x[2] = {1, 0}, wg[4] = {2, 0, 0, 0}, logits[2], pr[2], w[2];
    double         ps[2], sums[MOE_GSUM_LEN(2)] = {0}, lmax = -1e300;
    int32_t        ex[2];
    moe_gate_out_t out = {ex, pr, w};
    moe_router_t   r = {&moe_router_expert_choice_ops, 2, 2, 1.0, 1.0, 0, 0, NULL, NULL, NULL, 0, 0, 0};

    moe_gate_route_with(&r, NULL, x, wg, 1, 2, logits, ps, scratch, &out, sums, &lmax, NULL);
    ASSERT_EQ_INT(ex[0], 0);
    ASSERT_EQ_INT(ex[1], 1);
    ASSERT_NEAR(pr[0], exp(2) / (exp(2) + 1), 1e-6);
    ASSERT_NEAR(w[1], 1 / (exp(2) + 1), 1e-6);
    ASSERT_NEAR(sums[MOE_GSUM_FIXED + 2], 0, 0); /* routed counts are the caller's */
    ASSERT_NEAR(sums[MOE_GSUM_TOP1], exp(2) / (exp(2) + 1), 1e-9);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    openblas_set_num_threads(1);
    RUN_TEST(test_table);
    RUN_TEST(test_softmax);
    RUN_TEST(test_softmax_bias);
    RUN_TEST(test_switch);
    RUN_TEST(test_sigmoid);
    RUN_TEST(test_group_limited);
    RUN_TEST(test_node_limited);
    RUN_TEST(test_node_limited_map);
    RUN_TEST(test_group_check);
    RUN_TEST(test_hash);
    RUN_TEST(test_expert_choice);
    RUN_TEST(test_gate_expert_choice_slots);
    MPI_Finalize();
    TEST_MAIN_END();
}
