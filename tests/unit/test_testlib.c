/*
 * tests/unit/test_testlib.c — the harness itself (tests/testlib.h): each assertion passes on
 * equal values and, on different ones, counts a failure and prints both values (a child
 * process runs the failing cases with stderr into a pipe; the parent reads what it said).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

static void test_equal_values_pass(void)
{
    const unsigned char a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4};
    int                 before = moe_test_failures, bad = 0;

    ASSERT_EQ_INT(3, 3);
    ASSERT_EQ_STR("abc", "abc");
    ASSERT_EQ_DBL(1.0, 1.0 + 1e-12, 1e-9);
    ASSERT_EQ_DBL(NAN, NAN, 0);
    ASSERT_EQ_MEM(a, b, sizeof(a));
    EXPECT_VALUE_INT(bad, 7, 7, "x[%d]", 0);
    EXPECT_VALUE_DBL(bad, 0.5, 0.5, 0, "y[%d]", 0);
    ASSERT_EQ_INT(bad, 0);
    ASSERT_EQ_INT(moe_test_failures, before);
}

/* Runs the failing cases in a child; returns its stderr (malloc'd) and failure count. */
static char *run_failing(int *failures_p)
{
    int    fds[2], ws = 0;
    char  *out = calloc(1, 8192);
    size_t used = 0;
    ssize_t n;
    pid_t  pid;

    if (out == NULL || pipe(fds) != 0)
        return out;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        const unsigned char a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 9, 4};
        int                 bad = 0, bad2 = 0, i;
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        moe_test_failures = 0;
        ASSERT_EQ_INT(3, 4);
        ASSERT_EQ_STR("abc", "abd");
        ASSERT_EQ_STR(NULL, "x");
        ASSERT_EQ_DBL(1.0, 1.5, 0.1);
        ASSERT_EQ_MEM(a, b, sizeof(a));
        for (i = 0; i < 24; i++)
            EXPECT_VALUE_INT(bad, 10, 10 + (i % 2), "steps/routed[%d]", i);
        EXPECT_VALUE_DBL(bad, 0.25, 0.5, 0, "steps/router[%d]", 98); /* the 13th: counted only */
        EXPECT_VALUE_DBL(bad2, 0.25, 0.5, 0, "steps/router[%d]", 99);
        _exit(moe_test_failures * 32 + bad + bad2 * 16);
    }
    close(fds[1]);
    while (used < 8191 && (n = read(fds[0], out + used, 8191 - used)) > 0)
        used += (size_t)n;
    close(fds[0]);
    waitpid(pid, &ws, 0);
    *failures_p = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    return out;
}

static void test_different_values_fail_and_say_so(void)
{
    int   code = -1;
    char *err = run_failing(&code);

    /* 5 failed assertions; 12 differing values of 24, plus one double: all counted, only
     * the first MOE_TEST_DIFF_MAX (10) printed */
    ASSERT_EQ_INT(code, 5 * 32 + 13 + 16);
    ASSERT_STR_CONTAINS(err, "3 != 4");
    ASSERT_STR_CONTAINS(err, "\"abc\" != \"abd\"");
    ASSERT_STR_CONTAINS(err, "\"(null)\" != \"x\"");
    ASSERT_STR_CONTAINS(err, "1 != 1.5");
    ASSERT_STR_CONTAINS(err, "first difference at byte 2: 0x03 != 0x09");
    ASSERT_STR_CONTAINS(err, "steps/routed[1]: expected 10, got 11");
    ASSERT_STR_CONTAINS(err, "steps/routed[19]: expected 10, got 11");
    ASSERT_TRUE(err && strstr(err, "steps/routed[21]") == NULL);
    ASSERT_TRUE(err && strstr(err, "steps/router[98]") == NULL);
    ASSERT_STR_CONTAINS(err, "steps/router[99]: expected 0.25, got 0.5");
    free(err);
}

int main(void)
{
    RUN_TEST(test_equal_values_pass);
    RUN_TEST(test_different_values_fail_and_say_so);
    TEST_MAIN_END();
}
