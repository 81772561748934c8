/*
 * tests/testlib.h — a minimal test harness: each test binary is one process holding a few
 * named checks; every assertion prints both sides on failure, and main() returns non-zero
 * if any check failed. Registered with ctest by tests/CMakeLists.txt (label "unit").
 */
#ifndef MOERUN_TESTLIB_H
#define MOERUN_TESTLIB_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int moe_test_failures;
static int moe_test_checks;

#define ASSERT_TRUE(c)                                                                  \
    do {                                                                                \
        moe_test_checks++;                                                              \
        if (!(c)) {                                                                     \
            fprintf(stderr, "%s:%d: ASSERT_TRUE(%s) failed\n", __FILE__, __LINE__, #c); \
            moe_test_failures++;                                                        \
        }                                                                               \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                             \
    do {                                                                                \
        long long moe__a = (long long)(a), moe__b = (long long)(b);                     \
        moe_test_checks++;                                                              \
        if (moe__a != moe__b) {                                                         \
            fprintf(stderr, "%s:%d: ASSERT_EQ(%s, %s) failed: %lld != %lld\n", __FILE__, \
                    __LINE__, #a, #b, moe__a, moe__b);                                  \
            moe_test_failures++;                                                        \
        }                                                                               \
    } while (0)

#define ASSERT_NEAR(a, b, tol)                                                          \
    do {                                                                                \
        double moe__a = (double)(a), moe__b = (double)(b);                              \
        moe_test_checks++;                                                              \
        if (!(fabs(moe__a - moe__b) <= (tol))) {                                        \
            fprintf(stderr, "%s:%d: ASSERT_NEAR(%s, %s, %g) failed: %.9g vs %.9g\n",     \
                    __FILE__, __LINE__, #a, #b, (double)(tol), moe__a, moe__b);         \
            moe_test_failures++;                                                        \
        }                                                                               \
    } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                                \
    do {                                                                                \
        const char *moe__h = (hay), *moe__n = (needle);                                 \
        moe_test_checks++;                                                              \
        if (moe__h == NULL || strstr(moe__h, moe__n) == NULL) {                         \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,         \
                    __LINE__, moe__h ? moe__h : "(null)", moe__n);                      \
            moe_test_failures++;                                                        \
        }                                                                               \
    } while (0)

#define RUN_TEST(fn)                                                                    \
    do {                                                                                \
        int moe__before = moe_test_failures;                                            \
        fn();                                                                           \
        printf("%s %s\n", moe_test_failures == moe__before ? "ok  " : "FAIL", #fn);     \
    } while (0)

#define TEST_MAIN_END()                                                                 \
    do {                                                                                \
        printf("%d checks, %d failed\n", moe_test_checks, moe_test_failures);           \
        return moe_test_failures ? 1 : 0;                                               \
    } while (0)

#endif /* MOERUN_TESTLIB_H */
