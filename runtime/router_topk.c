/*
 * runtime/router_topk.c — the top-k helper every per-token router shares (router.h).
 *
 * Its own file so that runtime/router_limited.c and this one form a library without MPI
 * (moerun_router_limited): moerun-analyze replays node-limited routing on a log with the
 * router's own selection rule (tools/analyze/an_routes.c).
 */
#include "router.h"

void moe__router_topk(const double *s, const float *bias, const uint8_t *allowed, int E, int k,
                      int32_t *sel)
{
    int    j, e, i, best;
    double bv = 0, v;

    for (j = 0; j < k; j++) {
        best = -1;
        for (e = 0; e < E; e++) {
            int taken = 0;
            if (allowed && !allowed[e])
                continue;
            for (i = 0; i < j; i++)
                taken |= sel[i] == e;
            if (taken)
                continue;
            v = bias ? s[e] + bias[e] : s[e];
            if (best < 0 || v > bv) { /* strictly greater: ties keep the lower id */
                best = e;
                bv = v;
            }
        }
        sel[j] = best;
    }
}
