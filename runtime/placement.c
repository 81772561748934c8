/*
 * runtime/placement.c — expert -> rank maps (see placement.h for the two layouts).
 */
#include <stdlib.h>
#include <string.h>

#include "placement.h"

moe_status_t moe_placement_init(moe_placement_t *pl, moe_placement_kind_t kind, int experts,
                                int nranks)
{
    int e, r;

    if (experts < 1 || nranks < 1)
        return MOE_ERR_INVALID;
    memset(pl, 0, sizeof(*pl));
    pl->experts = experts;
    pl->nranks = nranks;
    pl->owner = calloc((size_t)experts, sizeof(int));
    pl->local_index = calloc((size_t)experts, sizeof(int));
    pl->global_of = calloc((size_t)experts, sizeof(int));
    pl->local_count = calloc((size_t)nranks, sizeof(int));
    pl->first_local = calloc((size_t)nranks + 1, sizeof(int));
    if (!pl->owner || !pl->local_index || !pl->global_of || !pl->local_count ||
        !pl->first_local) {
        moe_placement_cleanup(pl);
        return MOE_ERR_NOMEM;
    }
    for (e = 0; e < experts; e++) {
        if (kind == MOE_PLACE_ROUND_ROBIN) {
            pl->owner[e] = e % nranks;
        } else {
            /* Largest r with floor(r*E/P) <= e. */
            r = (int)(((long long)(e + 1) * nranks - 1) / experts);
            while (r > 0 && (long long)r * experts / nranks > e)
                r--;
            while (r + 1 < nranks && (long long)(r + 1) * experts / nranks <= e)
                r++;
            pl->owner[e] = r;
        }
        pl->local_index[e] = pl->local_count[pl->owner[e]]++;
    }
    for (r = 0; r < nranks; r++)
        pl->first_local[r + 1] = pl->first_local[r] + pl->local_count[r];
    for (e = 0; e < experts; e++)
        pl->global_of[pl->first_local[pl->owner[e]] + pl->local_index[e]] = e;
    return MOE_OK;
}

void moe_placement_cleanup(moe_placement_t *pl)
{
    free(pl->owner);
    free(pl->local_index);
    free(pl->local_count);
    free(pl->first_local);
    free(pl->global_of);
    memset(pl, 0, sizeof(*pl));
}
