/*
 * moerun/base/touch.h — moe_touch(): makes a fresh buffer resident now, at create, instead of
 * page by page in the first steps (calloc and large mallocs map pages lazily; a memset of
 * calloc'd memory may be dropped by the compiler as redundant).
 *
 * Always: writes 0 to one byte per 4 KiB page and to the last byte, through a volatile
 * pointer (so it is never optimised away); use it only on zeroed memory or memory whose
 * contents do not matter yet.
 */
#ifndef MOERUN_BASE_TOUCH_H
#define MOERUN_BASE_TOUCH_H

#include <stddef.h>

static inline void moe_touch(void *p, size_t bytes)
{
    volatile char *c = p;
    size_t         i;

    if (p == NULL || bytes == 0)
        return;
    for (i = 0; i < bytes; i += 4096)
        c[i] = 0;
    c[bytes - 1] = 0;
}

#endif /* MOERUN_BASE_TOUCH_H */
