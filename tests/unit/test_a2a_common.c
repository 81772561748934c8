/*
 * test_a2a_common.c — the exchange backends' shared base (comm/a2a_common.c): counts to
 * displacements and traffic accounting, against values worked out by hand.
 */
#include <stdint.h>
#include <string.h>

#include "a2a_common.h"
#include "testlib.h"

static void test_displs(void)
{
    int     cnt[4] = {3, 0, 5, 2}, dsp[4];
    int     units[3] = {2, 1, 4}, c[3], d[3];
    int64_t tot;

    tot = moe__a2a_displs(4, cnt, dsp);
    ASSERT_EQ_INT(tot, 10);
    ASSERT_EQ_INT(dsp[0], 0);
    ASSERT_EQ_INT(dsp[1], 3);
    ASSERT_EQ_INT(dsp[2], 3);
    ASSERT_EQ_INT(dsp[3], 8);
    tot = moe__a2a_layout(3, units, 16, c, d);
    ASSERT_EQ_INT(tot, 7);
    ASSERT_EQ_INT(c[0], 32);
    ASSERT_EQ_INT(c[2], 64);
    ASSERT_EQ_INT(d[1], 32);
    ASSERT_EQ_INT(d[2], 48);
}

/* Rank 1 of 4; ranks 0,1 on node 0, ranks 2,3 on node 1. */
static void test_traffic(void)
{
    int              node[4] = {0, 0, 1, 1};
    moe__a2a_peers_t me = {4, 1, node};
    int              scnt[4] = {2, 7, 0, 3}, rcnt[4] = {1, 9, 4, 0};
    int64_t          to_rank[4] = {0, 0, 0, 0};
    moe_a2a_stats_t  st;

    memset(&st, 0, sizeof(st));
    st.bytes_to_rank = to_rank;
    moe__a2a_traffic(&me, scnt, rcnt, 4, 1, &st);
    ASSERT_EQ_INT(st.bytes_sent, (2 + 3) * 4);      /* self (7) excluded */
    ASSERT_EQ_INT(st.bytes_recv, (1 + 4) * 4);
    ASSERT_EQ_INT(st.msgs_sent, 2);                 /* to 0 and 3; rank 2 gets nothing */
    ASSERT_EQ_INT(st.msgs_recv, 2);
    ASSERT_EQ_INT(st.bytes_intra, 2 * 4);
    ASSERT_EQ_INT(st.bytes_inter, 3 * 4);
    ASSERT_EQ_INT(st.msgs_intra, 1);
    ASSERT_EQ_INT(st.msgs_inter, 1);
    ASSERT_EQ_INT(to_rank[1], 7 * 4);               /* self counts in the matrix */
    ASSERT_EQ_INT(to_rank[3], 3 * 4);
    /* a count exchange: messages only, nothing in the matrix */
    moe__a2a_traffic(&me, scnt, rcnt, 0, 0, &st);
    ASSERT_EQ_INT(st.bytes_sent, 20);
    ASSERT_EQ_INT(st.msgs_sent, 4);
    ASSERT_EQ_INT(to_rank[3], 12);
}

int main(void)
{
    RUN_TEST(test_displs);
    RUN_TEST(test_traffic);
    TEST_MAIN_END();
}
