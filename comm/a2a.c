/*
 * comm/a2a.c — the table of token-exchange backends. Builds under SimGrid SMPI
 * (MOERUN_SMPI) leave out ucx: UCX cannot run inside a simulation.
 */
#include <string.h>

#include "a2a.h"

static const moe_a2a_ops_t *const a2a_backends[] = {
    &moe_a2a_flat_ops,
    &moe_a2a_hier_ops,
    &moe_a2a_2dh_ops,
#ifndef MOERUN_SMPI
    &moe_a2a_ucx_ops,
#endif
};

const moe_a2a_ops_t *moe_a2a_find(const char *name)
{
    size_t i;

    for (i = 0; name && i < sizeof(a2a_backends) / sizeof(a2a_backends[0]); i++)
        if (strcmp(a2a_backends[i]->name, name) == 0)
            return a2a_backends[i];
    return NULL;
}

const char *moe_a2a_names(void)
{
#ifdef MOERUN_SMPI
    return "flat|hier|2dh";
#else
    return "flat|hier|2dh|ucx";
#endif
}
