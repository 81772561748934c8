/*
 * comm/a2a_common.c — counts to displacements and traffic accounting, shared by every
 * exchange backend (see a2a_common.h).
 */
#include <stdlib.h>

#include "a2a_common.h"
#include "moerun/base/touch.h"

float *moe__a2a_rows_alloc(size_t floats, int opaque)
{
    size_t bytes = (floats + 1) * sizeof(float);
    float *p;

#ifdef MOERUN_SMPI
    if (opaque)
        return SMPI_SHARED_MALLOC(bytes);
#endif
    /* zeroed and touched: malloc + memset is compiled into calloc, whose large blocks are
     * mapped lazily (the first step then page-faulted on every row buffer, ~2,000 faults at
     * the standard configuration); moe_touch's volatile stores make the pages resident now */
    p = calloc(1, bytes);
    if (p != NULL && !opaque)
        moe_touch(p, bytes);
    return p;
}

void moe__a2a_add_scaled(float *restrict o, const float *restrict y, float w, int n)
{
    int i;

    for (i = 0; i < n; i++)
        o[i] += w * y[i];
}

void moe__a2a_rows_free(float *p, int opaque)
{
#ifdef MOERUN_SMPI
    if (opaque) {
        if (p != NULL)
            SMPI_SHARED_FREE(p);
        return;
    }
#endif
    (void)opaque;
    free(p);
}

int moe__a2a_rows_grow(float **buf, size_t *cap_rows, int64_t rows, int d, int opaque)
{
    size_t want = (size_t)rows;
    float *p;

    if (want <= *cap_rows && *buf != NULL)
        return 0;
    /* a quarter of headroom, at least double: see moe__hier_buf_grow */
    want += want / 4;
    want = want < 2 * *cap_rows ? 2 * *cap_rows : want;
    if (opaque) { /* nothing to keep */
        p = moe__a2a_rows_alloc(want * (size_t)d, 1);
        if (p == NULL)
            return -1;
        moe__a2a_rows_free(*buf, 1);
    } else {
        size_t keep = *buf != NULL ? (*cap_rows + 1) * (size_t)d * sizeof(float) : 0,
               bytes = (want + 1) * (size_t)d * sizeof(float);
        p = realloc(*buf, bytes);
        if (p == NULL)
            return -1;
        moe_touch((char *)p + keep, bytes - keep); /* resident now, not row by row */
    }
    *buf = p;
    *cap_rows = want;
    return 0;
}

int64_t moe__a2a_displs(int P, const int *cnt, int *dsp)
{
    int64_t acc = 0;
    int     r;

    for (r = 0; r < P; r++) {
        dsp[r] = (int)acc;
        acc += cnt[r];
    }
    return acc;
}

int64_t moe__a2a_layout(int P, const int *units, size_t elem, int *cnt, int *dsp)
{
    int64_t tot = 0;
    int     r;

    for (r = 0; r < P; r++) {
        cnt[r] = (int)((size_t)units[r] * elem);
        dsp[r] = (int)((size_t)tot * elem);
        tot += units[r];
    }
    return tot;
}

void moe__a2a_traffic(const moe__a2a_peers_t *me, const int *scnt, const int *rcnt,
                      size_t elem, int payload, moe_a2a_stats_t *st)
{
    int r, mynode = me->node[me->rank];

    for (r = 0; r < me->nranks; r++) {
        int64_t sb = (int64_t)scnt[r] * (int64_t)elem;
        if (payload && st->bytes_to_rank)
            st->bytes_to_rank[r] += sb;
        if (r == me->rank)
            continue;
        st->bytes_sent += sb;
        st->bytes_recv += (int64_t)rcnt[r] * (int64_t)elem;
        st->msgs_sent += scnt[r] > 0;
        st->msgs_recv += rcnt[r] > 0;
        if (me->node[r] == mynode) {
            st->bytes_intra += sb;
            st->msgs_intra += scnt[r] > 0;
        } else {
            st->bytes_inter += sb;
            st->msgs_inter += scnt[r] > 0;
        }
    }
}
