/*
 * tests/testlib.h — a minimal test harness: each test binary is one process holding a few
 * named checks; every assertion prints both sides on failure (integers, doubles with a
 * tolerance, strings, memory), values of a larger set say where they differ
 * (EXPECT_VALUE_*), and main() returns non-zero if any check failed. Registered with ctest by tests/CMakeLists.txt (label "unit").
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

#define ASSERT_EQ_STR(a, b)                                                             \
    do {                                                                                \
        const char *moe__a = (a), *moe__b = (b);                                        \
        moe_test_checks++;                                                              \
        if (moe__a == NULL || moe__b == NULL || strcmp(moe__a, moe__b) != 0) {          \
            fprintf(stderr, "%s:%d: ASSERT_EQ_STR(%s, %s) failed: \"%s\" != \"%s\"\n",   \
                    __FILE__, __LINE__, #a, #b, moe__a ? moe__a : "(null)",             \
                    moe__b ? moe__b : "(null)");                                        \
            moe_test_failures++;                                                        \
        }                                                                               \
    } while (0)

/* Doubles equal within an absolute tolerance (0: exactly); two NaNs are equal. */
#define ASSERT_EQ_DBL(a, b, tol)                                                        \
    do {                                                                                \
        double moe__a = (double)(a), moe__b = (double)(b);                              \
        moe_test_checks++;                                                              \
        if (!(fabs(moe__a - moe__b) <= (tol) || (isnan(moe__a) && isnan(moe__b)))) {    \
            fprintf(stderr, "%s:%d: ASSERT_EQ_DBL(%s, %s, %g) failed: %.17g != %.17g "  \
                    "(difference %.3g)\n", __FILE__, __LINE__, #a, #b, (double)(tol),   \
                    moe__a, moe__b, moe__a - moe__b);                                   \
            moe_test_failures++;                                                        \
        }                                                                               \
    } while (0)

/* n bytes equal; on failure the first differing offset and both bytes there. */
#define ASSERT_EQ_MEM(a, b, n)                                                          \
    do {                                                                                \
        const unsigned char *moe__a = (const unsigned char *)(a);                       \
        const unsigned char *moe__b = (const unsigned char *)(b);                       \
        size_t               moe__n = (size_t)(n), moe__i = 0;                          \
        moe_test_checks++;                                                              \
        while (moe__i < moe__n && moe__a[moe__i] == moe__b[moe__i])                     \
            moe__i++;                                                                   \
        if (moe__i < moe__n) {                                                          \
            fprintf(stderr, "%s:%d: ASSERT_EQ_MEM(%s, %s, %zu) failed: first difference " \
                    "at byte %zu: 0x%02x != 0x%02x\n", __FILE__, __LINE__, #a, #b,      \
                    moe__n, moe__i, moe__a[moe__i], moe__b[moe__i]);                    \
            moe_test_failures++;                                                        \
        }                                                                               \
    } while (0)

/*
 * One value of a larger set (a dataset, an array): on a mismatch counts it in `bad` and,
 * for the first MOE_TEST_DIFF_MAX of that counter, prints where it is (printf-style, e.g.
 * "steps/routed[%ld][%d][%d]", s, l, e), the expected and the value got. The caller ends
 * with ASSERT_EQ_INT(bad, 0).
 */
#define MOE_TEST_DIFF_MAX 10
#define EXPECT_VALUE_INT(bad, want, got, ...)                                           \
    do {                                                                                \
        long long moe__w = (long long)(want), moe__g = (long long)(got);                \
        if (moe__w != moe__g && ++(bad) <= MOE_TEST_DIFF_MAX) {                         \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                             \
            fprintf(stderr, __VA_ARGS__);                                               \
            fprintf(stderr, ": expected %lld, got %lld\n", moe__w, moe__g);             \
        }                                                                               \
    } while (0)

#define EXPECT_VALUE_DBL(bad, want, got, tol, ...)                                      \
    do {                                                                                \
        double moe__w = (double)(want), moe__g = (double)(got);                         \
        if (!(fabs(moe__w - moe__g) <= (tol) || (isnan(moe__w) && isnan(moe__g))) &&    \
            ++(bad) <= MOE_TEST_DIFF_MAX) {                                             \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                             \
            fprintf(stderr, __VA_ARGS__);                                               \
            fprintf(stderr, ": expected %.17g, got %.17g\n", moe__w, moe__g);           \
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
