/*
 * comm/topo.c — node discovery (MPI shared-memory split); binding and hwloc discovery are
 * comm/bind.c, applied here before anything is allocated (so first touch is NUMA-local).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hwloc.h>

#include "bind.h"
#include "moerun/base/mpicheck.h"
#include "topo.h"

moe_status_t moe_topo_discover(MPI_Comm comm, int ranks_per_node, moe_log_t *log,
                               moe_topo_t *topo)
{
    return moe_topo_discover_bind(comm, ranks_per_node, MOE_BIND_NONE, log, topo);
}

moe_status_t moe_topo_discover_bind(MPI_Comm comm, int ranks_per_node, int bind_mode,
                                    moe_log_t *log, moe_topo_t *topo)
{
    MPI_Comm        node_comm = MPI_COMM_NULL, shm_comm = MPI_COMM_NULL;
    int             P, r, leader, nn = 0, *leaders = NULL, *ids = NULL;
    char            host[MOE_TOPO_HOST_MAX] = {0};
    int             lrank, shm_rank = 0, shm_size = 1;
    moe_bind_info_t bi;
    unsigned     hv = hwloc_get_api_version();
    moe_status_t st = MOE_OK;

    memset(topo, 0, sizeof(*topo));
    MOE_MPI_CHECK(log, MPI_Comm_size(comm, &P));
    MOE_MPI_CHECK(log, MPI_Comm_rank(comm, &topo->rank));
    topo->nranks = P;
    snprintf(topo->hwloc_version, sizeof(topo->hwloc_version), "%u.%u.%u", hv >> 16,
             (hv >> 8) & 0xff, hv & 0xff);
    topo->node = calloc((size_t)P, sizeof(int));
    topo->local_rank = calloc((size_t)P, sizeof(int));
    topo->numa = calloc((size_t)P, sizeof(int));
    topo->host = calloc((size_t)P, sizeof(*topo->host));
    topo->cpuset = calloc((size_t)P, sizeof(*topo->cpuset));
    topo->nic = calloc((size_t)P, sizeof(*topo->nic));
    topo->bind_action = calloc((size_t)P, sizeof(*topo->bind_action));
    topo->machine = calloc((size_t)P, sizeof(*topo->machine));
    topo->cache_bytes = calloc((size_t)P * MOE_CACHE_LEVELS, sizeof(int64_t));
    topo->cache_pus = calloc((size_t)P * MOE_CACHE_LEVELS, sizeof(int));
    leaders = calloc((size_t)P, sizeof(int));
    ids = calloc((size_t)P, sizeof(int));
    if (!topo->node || !topo->local_rank || !topo->numa || !topo->host || !topo->cpuset ||
        !topo->nic || !topo->bind_action || !topo->machine || !topo->cache_bytes ||
        !topo->cache_pus || !leaders || !ids) {
        st = MOE_ERROR_SET(log, MOE_ERR_NOMEM, "topology: out of memory");
        goto out;
    }
    gethostname(host, sizeof(host) - 1);
    /* binding uses the real shared-memory node (not --ranks-per-node, a study device) */
    MOE_MPI_CHECK_GOTO(log, MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, topo->rank,
                                                MPI_INFO_NULL, &shm_comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Comm_rank(shm_comm, &shm_rank), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Comm_size(shm_comm, &shm_size), st, out);
    moe_bind_apply((moe_bind_mode_t)bind_mode, shm_rank, shm_size, &bi);
    snprintf(topo->membind, sizeof(topo->membind), "%s", bi.membind);
    if (ranks_per_node > 0)
        MOE_MPI_CHECK_GOTO(log, MPI_Comm_split(comm, topo->rank / ranks_per_node, topo->rank,
                                               &node_comm), st, out);
    else
        MOE_MPI_CHECK_GOTO(log, MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, topo->rank,
                                                    MPI_INFO_NULL, &node_comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Comm_rank(node_comm, &lrank), st, out);
    leader = topo->rank;
    MOE_MPI_CHECK_GOTO(log, MPI_Allreduce(MPI_IN_PLACE, &leader, 1, MPI_INT, MPI_MIN, node_comm),
                       st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(&leader, 1, MPI_INT, leaders, 1, MPI_INT, comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(&lrank, 1, MPI_INT, topo->local_rank, 1, MPI_INT, comm),
                       st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(&bi.numa, 1, MPI_INT, topo->numa, 1, MPI_INT, comm),
                       st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(bi.nic, MOE_TOPO_NIC_MAX, MPI_CHAR, topo->nic,
                                          MOE_TOPO_NIC_MAX, MPI_CHAR, comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(bi.action, MOE_TOPO_ACTION_MAX, MPI_CHAR,
                                          topo->bind_action, MOE_TOPO_ACTION_MAX, MPI_CHAR, comm),
                       st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(bi.machine, 64, MPI_CHAR, topo->machine, 64, MPI_CHAR,
                                          comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(bi.cache_bytes, MOE_CACHE_LEVELS, MPI_INT64_T,
                                          topo->cache_bytes, MOE_CACHE_LEVELS, MPI_INT64_T,
                                          comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(bi.cache_pus, MOE_CACHE_LEVELS, MPI_INT,
                                          topo->cache_pus, MOE_CACHE_LEVELS, MPI_INT, comm),
                       st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(host, MOE_TOPO_HOST_MAX, MPI_CHAR, topo->host,
                                          MOE_TOPO_HOST_MAX, MPI_CHAR, comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(bi.cpuset, MOE_TOPO_CPUSET_MAX, MPI_CHAR, topo->cpuset,
                                          MOE_TOPO_CPUSET_MAX, MPI_CHAR, comm), st, out);
    /* a leader is its own lowest rank; number nodes by increasing leader rank */
    for (r = 0; r < P; r++)
        ids[r] = -1;
    for (r = 0; r < P; r++)
        if (leaders[r] == r)
            ids[r] = nn++;
    for (r = 0; r < P; r++)
        topo->node[r] = ids[leaders[r]];
    topo->nnodes = nn;
out:
    if (node_comm != MPI_COMM_NULL)
        MPI_Comm_free(&node_comm);
    if (shm_comm != MPI_COMM_NULL)
        MPI_Comm_free(&shm_comm);
    free(leaders);
    free(ids);
    if (st != MOE_OK)
        moe_topo_cleanup(topo);
    return st;
}

void moe_topo_cleanup(moe_topo_t *topo)
{
    free(topo->node);
    free(topo->local_rank);
    free(topo->numa);
    free(topo->host);
    free(topo->cpuset);
    free(topo->nic);
    free(topo->bind_action);
    free(topo->machine);
    free(topo->cache_bytes);
    free(topo->cache_pus);
    memset(topo, 0, sizeof(*topo));
}
