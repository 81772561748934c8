/*
 * test_place.c — the placement planner (tools/place) on small hand-made loads; every
 * expected map and number is worked out by hand in the comments.
 */
#include <stdlib.h>
#include <string.h>

#include "place.h"
#include "testlib.h"

/* The ranks holding expert e at layer l, as a bit mask. */
static unsigned mask_of(const moe_placement_t *pl, int l, int e)
{
    size_t   le = (size_t)l * pl->experts + e;
    unsigned m = 0;
    int      j;

    for (j = 0; j < pl->nrep[le]; j++)
        m |= 1u << pl->rep_rank[le * pl->max_replicas + j];
    return m;
}

/*
 * EPLB, hierarchical: E 4 with loads 10, 6, 3, 1 (k 1, one step, no routes), 2 nodes x 2
 * ranks, 2 slots (8 copies), 2 groups {0,1} (16) and {2,3} (4).
 * 1. groups onto nodes: {0,1} -> node 0 (ranks 0, 1), {2,3} -> node 1 (ranks 2, 3).
 * 2. node 0 replicates its 2 experts to 4 copies: e0 (10/1 highest) -> 2, then e1 (6 > 5)
 *    -> 2; node 1 likewise e2 -> 2, e3 -> 2.
 * 3. copies of 5, 5, 3, 3 onto ranks 0, 1: each rank one copy of e0 and one of e1.
 * Map: e0 {0,1}, e1 {0,1}, e2 {2,3}, e3 {2,3}.
 * Predicted (uniform origin): e0's 10 pairs: half from node 0 -> 2.5 to each of ranks 0, 1;
 * half from node 1 (no copy there) -> 2.5 to each: rank 0 gets 5 + 3 (e1) = 8, rank 1 8,
 * ranks 2 and 3 1.5 + 0.5 = 2. Max 8, mean 5. Inter-node pairs: half of every expert's
 * pairs = 10 of 20 tokens -> 0.5 copies per token.
 */
static void test_eplb_hand(void)
{
    double            load[4] = {10, 6, 3, 1};
    moe_place_input_t in;
    moe_place_target_t tg = {2, 2, 2, 2, 1.0};
    moe_placement_t   pl;
    moe_place_pred_t *pr = NULL;
    char              err[256] = "";

    memset(&in, 0, sizeof(in));
    in.experts = 4;
    in.layers = 1;
    in.nranks = 4;
    in.nnodes = 2;
    in.top_k = 1;
    in.load = load;
    in.steps = 1;
    in.row_bytes = 4;
    ASSERT_EQ_INT(moe_place_plan(&in, &tg, MOE_PLAN_EPLB, &pl, err, sizeof(err)), MOE_OK);
    ASSERT_EQ_INT(mask_of(&pl, 0, 0), 0x3);
    ASSERT_EQ_INT(mask_of(&pl, 0, 1), 0x3);
    ASSERT_EQ_INT(mask_of(&pl, 0, 2), 0xc);
    ASSERT_EQ_INT(mask_of(&pl, 0, 3), 0xc);
    ASSERT_EQ_INT(moe_place_predict(&in, &pl, &pr), MOE_OK);
    ASSERT_NEAR(pr[0].max_load, 8.0, 1e-12);
    ASSERT_NEAR(pr[0].mean_load, 5.0, 1e-12);
    ASSERT_NEAR(pr[0].flat_copies, 0.5, 1e-12);
    ASSERT_NEAR(pr[0].node_rows[0], 16.0, 1e-12);
    ASSERT_NEAR(pr[0].node_rows[1], 4.0, 1e-12);
    moe_place_pred_free(pr, 1);
    moe_placement_cleanup(&pl);
}

/*
 * Co-selection: E 4, loads 2 each, k 2; tokens 0 and 2 choose {0, 2}, tokens 1 and 3
 * choose {1, 3}; 2 ranks on 2 nodes, 2 slots (no room for copies), tokens 0, 1 on rank 0.
 * contiguous puts {0,1} on rank 0 and {2,3} on rank 1: every token has one pair on the
 * other node -> flat 1 copy per token, hier 1.
 * moerun (balance 1), experts by load then index: e0 -> node 0 (both empty, first); e1 ->
 * node 1 (no affinity, node 0 more loaded); e2 -> node 0 (affinity 2/2 = 1 beats the
 * balance penalty 1 - (2+2)/4 = 0 vs 0 - (2+2)/4 = -1); e3 -> node 1 (node 0 full).
 * Map {0,2} on rank 0, {1,3} on rank 1. Replayed: token 0 all local, token 1 (node 0)
 * both pairs remote (flat 2, hier 1), token 2 likewise, token 3 local: flat 4/4 = 1.0,
 * hier 2/4 = 0.5. Rank loads 4 and 4. Weight bytes moved from contiguous: e2 to rank 0 and
 * e1 to rank 1 = 2 experts x 100 bytes.
 * eplb with 2 groups {0,1}, {2,3} keeps contiguous's node split: hier 1.0.
 */
static void test_moerun_coselect_hand(void)
{
    double            load[4] = {2, 2, 2, 2}, cs[16] = {0};
    int64_t           tok[4] = {0, 1, 2, 3};
    int32_t           ex[8] = {0, 2, 1, 3, 0, 2, 1, 3};
    uint8_t           kept[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    moe_place_input_t in;
    moe_place_target_t tg = {2, 1, 2, 0, 1.0};
    moe_placement_t   pl, cont, ep;
    moe_place_pred_t *pr = NULL, *pc = NULL, *pe = NULL;
    char              err[256] = "";

    cs[0 * 4 + 2] = cs[2 * 4 + 0] = 2;
    cs[1 * 4 + 3] = cs[3 * 4 + 1] = 2;
    memset(&in, 0, sizeof(in));
    in.experts = 4;
    in.layers = 1;
    in.nranks = 2;
    in.nnodes = 2;
    in.top_k = 2;
    in.load = load;
    in.coselect = cs;
    in.steps = 1;
    in.tokens_per_rank = 2;
    in.nroutes = 4;
    in.route_token = tok;
    in.route_expert = ex;
    in.route_kept = kept;
    in.routes_complete = 1;
    in.row_bytes = 4;
    in.expert_bytes = 100;
    ASSERT_EQ_INT(moe_place_plan(&in, &tg, MOE_PLAN_MOERUN, &pl, err, sizeof(err)), MOE_OK);
    ASSERT_EQ_INT(mask_of(&pl, 0, 0), 0x1);
    ASSERT_EQ_INT(mask_of(&pl, 0, 2), 0x1);
    ASSERT_EQ_INT(mask_of(&pl, 0, 1), 0x2);
    ASSERT_EQ_INT(mask_of(&pl, 0, 3), 0x2);
    ASSERT_EQ_INT(moe_place_predict(&in, &pl, &pr), MOE_OK);
    ASSERT_NEAR(pr[0].flat_copies, 1.0, 1e-12);
    ASSERT_NEAR(pr[0].hier_copies, 0.5, 1e-12);
    ASSERT_NEAR(pr[0].max_load, 4.0, 1e-12);
    ASSERT_NEAR(pr[0].mean_load, 4.0, 1e-12);
    /* hier bytes: 0.5 x 4 tokens x (2 x 4 + 8 + 16 x 2) = 96 */
    ASSERT_NEAR(pr[0].hier_bytes, 96.0, 1e-9);

    ASSERT_EQ_INT(moe_place_plan(&in, &tg, MOE_PLAN_CONTIGUOUS, &cont, err, sizeof(err)), MOE_OK);
    ASSERT_EQ_INT(moe_place_predict(&in, &cont, &pc), MOE_OK);
    ASSERT_NEAR(pc[0].flat_copies, 1.0, 1e-12);
    ASSERT_NEAR(pc[0].hier_copies, 1.0, 1e-12);
    ASSERT_NEAR(moe_place_moved_bytes(&in, &cont, &pl), 200.0, 1e-12);

    tg.groups = 2;
    ASSERT_EQ_INT(moe_place_plan(&in, &tg, MOE_PLAN_EPLB, &ep, err, sizeof(err)), MOE_OK);
    ASSERT_EQ_INT(moe_place_predict(&in, &ep, &pe), MOE_OK);
    ASSERT_NEAR(pe[0].hier_copies, 1.0, 1e-12);

    moe_placement_cleanup(&ep);
    /* a target that cannot hold the experts */
    tg.slots = 1;
    ASSERT_EQ_INT(moe_place_plan(&in, &tg, MOE_PLAN_MOERUN, &ep, err, sizeof(err)) == MOE_OK, 0);
    ASSERT_STR_CONTAINS(err, "cannot hold 4 experts");
    moe_place_pred_free(pr, 1);
    moe_place_pred_free(pc, 1);
    moe_place_pred_free(pe, 1);
    moe_placement_cleanup(&pl);
    moe_placement_cleanup(&cont);
}

int main(void)
{
    RUN_TEST(test_eplb_hand);
    RUN_TEST(test_moerun_coselect_hand);
    TEST_MAIN_END();
}
