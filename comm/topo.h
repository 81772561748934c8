/*
 * comm/topo.h — where each rank runs: host, node id, local rank, cores and NUMA node.
 *
 * Nodes are the groups of MPI_Comm_split_type(MPI_COMM_TYPE_SHARED); node ids are
 * numbered 0..nnodes-1 in the order of each node's lowest rank. The binding comes from
 * hwloc (the process's current CPU binding, in hwloc list syntax, and the NUMA node that
 * contains it). All arrays are global (allgathered), indexed by rank.
 */
#ifndef MOERUN_COMM_TOPO_H
#define MOERUN_COMM_TOPO_H

#include <stdint.h>

#include <mpi.h>

#include "moerun/base/log.h"

#define MOE_TOPO_HOST_MAX 64
#define MOE_TOPO_CPUSET_MAX 64
#define MOE_TOPO_NIC_MAX 64
#define MOE_TOPO_ACTION_MAX 64

typedef struct moe_topo {
    int   nranks, rank, nnodes;
    int  *node;                             /* [P] node id of each rank */
    int  *local_rank;                       /* [P] index within its node */
    int  *numa;                             /* [P] NUMA node of the binding, -1 unknown */
    char (*host)[MOE_TOPO_HOST_MAX];        /* [P] host names */
    char (*cpuset)[MOE_TOPO_CPUSET_MAX];    /* [P] bound cores, list syntax */
    char (*nic)[MOE_TOPO_NIC_MAX];          /* [P] nearest network device, "" none found */
    char (*bind_action)[MOE_TOPO_ACTION_MAX]; /* [P] kept|bound|none|unbound|planned|failed (bind.h) */
    char (*machine)[64];                    /* [P] each rank's host: packages, NUMA, cores, PUs, NICs */
    int64_t *cache_bytes;                   /* [P][3] L1d, L2, L3 above the binding's first PU, 0 none */
    int     *cache_pus;                     /* [P][3] PUs sharing each, 0 none (comm/bind.h) */
    char  membind[16];                      /* this rank's memory policy: bind|first-touch|none */
    char  hwloc_version[32];
} moe_topo_t;

/*
 * Collective. Fills a caller-owned struct; freed by moe_topo_cleanup. ranks_per_node > 0
 * imposes a node structure instead (node = rank / ranks_per_node), for studies and tests;
 * host names and bindings are still the real ones.
 */
moe_status_t moe_topo_discover(MPI_Comm comm, int ranks_per_node, moe_log_t *log,
                               moe_topo_t *topo);
/* The same, binding each rank first by bind_mode (moe_bind_mode_t, comm/bind.h; the local
 * rank is its index in the real shared-memory node). Call before allocating what should be
 * NUMA-local. */
moe_status_t moe_topo_discover_bind(MPI_Comm comm, int ranks_per_node, int bind_mode,
                                    moe_log_t *log, moe_topo_t *topo);
void         moe_topo_cleanup(moe_topo_t *topo);

#endif /* MOERUN_COMM_TOPO_H */
