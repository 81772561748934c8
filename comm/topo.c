/*
 * comm/topo.c — node discovery (MPI shared-memory split) and binding (hwloc).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hwloc.h>

#include "moerun/base/mpicheck.h"
#include "topo.h"

/* This process's binding as a list ("0-3,8") and the first NUMA node covering it. */
static void topo_binding(char *cpuset, size_t len, int *numa)
{
    hwloc_topology_t t;
    hwloc_bitmap_t   set, nodes;

    cpuset[0] = '\0';
    *numa = -1;
#ifdef MOERUN_SMPI
    /* simulated ranks have no binding of their own: the machine running the simulation is
     * not the simulated one (and loading its topology 1024 times costs minutes) */
    (void)len, (void)t, (void)set, (void)nodes;
    return;
#endif
    if (hwloc_topology_init(&t) != 0)
        return;
    if (hwloc_topology_load(t) == 0) {
        set = hwloc_bitmap_alloc();
        nodes = hwloc_bitmap_alloc();
        if (set && nodes && hwloc_get_cpubind(t, set, HWLOC_CPUBIND_PROCESS) == 0) {
            hwloc_bitmap_list_snprintf(cpuset, len, set);
            hwloc_cpuset_to_nodeset(t, set, nodes);
            *numa = hwloc_bitmap_first(nodes);
        }
        hwloc_bitmap_free(set);
        hwloc_bitmap_free(nodes);
    }
    hwloc_topology_destroy(t);
}

moe_status_t moe_topo_discover(MPI_Comm comm, int ranks_per_node, moe_log_t *log,
                               moe_topo_t *topo)
{
    MPI_Comm     node_comm = MPI_COMM_NULL;
    int          P, r, leader, nn = 0, *leaders = NULL, *ids = NULL;
    char         host[MOE_TOPO_HOST_MAX] = {0}, cpus[MOE_TOPO_CPUSET_MAX] = {0};
    int          numa, lrank;
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
    leaders = calloc((size_t)P, sizeof(int));
    ids = calloc((size_t)P, sizeof(int));
    if (!topo->node || !topo->local_rank || !topo->numa || !topo->host || !topo->cpuset ||
        !leaders || !ids) {
        st = MOE_ERROR_SET(log, MOE_ERR_NOMEM, "topology: out of memory");
        goto out;
    }
    {
        /* the MPI library's name of this host: the real one under Open MPI, the simulated
         * host's under SimGrid SMPI */
        char pname[MPI_MAX_PROCESSOR_NAME + 1] = "";
        int  plen = 0;
        if (MPI_Get_processor_name(pname, &plen) != MPI_SUCCESS || pname[0] == '\0')
            gethostname(pname, sizeof(pname) - 1);
        snprintf(host, sizeof(host), "%s", pname);
    }
    topo_binding(cpus, sizeof(cpus), &numa);
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
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(&numa, 1, MPI_INT, topo->numa, 1, MPI_INT, comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(host, MOE_TOPO_HOST_MAX, MPI_CHAR, topo->host,
                                          MOE_TOPO_HOST_MAX, MPI_CHAR, comm), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Allgather(cpus, MOE_TOPO_CPUSET_MAX, MPI_CHAR, topo->cpuset,
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
    memset(topo, 0, sizeof(*topo));
}
