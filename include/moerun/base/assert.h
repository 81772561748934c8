/*
 * moerun/base/assert.h — MOE_ASSERT(cond): checks an invariant that a file's header states.
 *
 * Compiled in when MOERUN_ASSERTS is defined (CMake: on in Debug builds, or with
 * -DMOERUN_ASSERTS=ON), compiled out otherwise: then the condition is not evaluated, so it
 * must have no side effects. A failed check prints the condition, file and line to stderr
 * and aborts: an invariant that does not hold is a bug, not an input error (bad input gets
 * a status and a message, never an assert).
 */
#ifndef MOERUN_BASE_ASSERT_H
#define MOERUN_BASE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#ifdef MOERUN_ASSERTS
#define MOE_ASSERTS_ENABLED 1
static inline void moe__assert_fail(const char *cond, const char *file, int line,
                                    const char *func)
{
    fprintf(stderr, "moerun: invariant violated: %s (%s:%d, %s)\n", cond, file, line, func);
    fflush(stderr);
    abort();
}
#define MOE_ASSERT(cond)                                                 \
    do {                                                                 \
        if (!(cond))                                                     \
            moe__assert_fail(#cond, __FILE__, __LINE__, __func__);       \
    } while (0)
#else
#define MOE_ASSERTS_ENABLED 0
/* not evaluated, but still compiled (names stay checked; no unused-variable warnings) */
#define MOE_ASSERT(cond)            \
    do {                            \
        if (0 && (cond)) {          \
        }                           \
    } while (0)
#endif

#endif /* MOERUN_BASE_ASSERT_H */
