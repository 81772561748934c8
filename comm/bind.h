/*
 * comm/bind.h — hwloc topology discovery and CPU/memory binding of one rank (docs/binding.md).
 *
 * Modes (config key `bind`):
 *   auto  keep a binding someone made (mpirun --bind-to, srun --cpu-bind: the process's CPU
 *         binding is smaller than the machine); otherwise like core when the node's ranks fit
 *         on its cores, and no binding when they do not (oversubscribed, as mpirun does);
 *   none  leave the process alone;
 *   core  local rank i of n gets one core: NUMA node i mod m (m NUMA nodes, so consecutive
 *         ranks spread over NUMA nodes), core number i div m within it (wrapping);
 *   numa  local rank i gets the whole NUMA node i mod m.
 * After a CPU binding, memory: hwloc_set_membind(BIND) to the binding's NUMA node(s) where
 * the system supports it, else Linux's default local policy puts each page on the NUMA node
 * of the CPU that first touches it — moerun allocates and first touches expert weights and
 * exchange buffers after binding, so both end up on the rank's node ("first-touch").
 *
 * The topology is hwloc's: the real machine, or what HWLOC_XMLFILE / HWLOC_SYNTHETIC (or
 * MOERUN_HWLOC_XML / MOERUN_HWLOC_SYNTHETIC, read by moerun only) describe. A topology that is
 * not this system is planned but never applied (action "planned").
 */
#ifndef MOERUN_COMM_BIND_H
#define MOERUN_COMM_BIND_H

#include <stdint.h>

#include <hwloc.h>

#include "moerun/base/log.h"

typedef enum {
    MOE_BIND_AUTO = 0,
    MOE_BIND_NONE = 1,
    MOE_BIND_CORE = 2,
    MOE_BIND_NUMA = 3
} moe_bind_mode_t;

#define MOE_BIND_TEXT_MAX 64

/* Cache levels reported per rank: L1 data, L2, L3 (unified or data caches). */
enum { MOE_CACHE_L1D = 0, MOE_CACHE_L2 = 1, MOE_CACHE_L3 = 2, MOE_CACHE_LEVELS = 3 };

typedef struct moe_bind_info {
    char cpuset[MOE_BIND_TEXT_MAX];  /* CPU binding after the decision, hwloc list syntax ("" unbound) */
    int  numa;                       /* first NUMA node (os index) of it, -1 unknown */
    char nic[MOE_BIND_TEXT_MAX];     /* nearest network device ("" none found) */
    char action[MOE_BIND_TEXT_MAX];  /* kept | bound | none | unbound | planned | failed */
    char membind[16];                /* bind | first-touch | none */
    char machine[MOE_BIND_TEXT_MAX]; /* "2 packages, 4 NUMA, 16 cores, 32 PUs, 1 NIC" */
    int64_t cache_bytes[MOE_CACHE_LEVELS]; /* caches above the binding's first PU, 0 none */
    int     cache_pus[MOE_CACHE_LEVELS];   /* PUs sharing each of them, 0 none */
} moe_bind_info_t;

/* Loads the topology moerun uses (I/O devices included). 0 on success; destroy with
 * hwloc_topology_destroy. */
int moe_bind_topology_load(hwloc_topology_t *t_p);

/*
 * The CPU set for local rank lr of ls under `mode` (core or numa; auto as core), into out.
 * Pure (no binding). 0 on success, -1 if the topology has no cores.
 */
int moe_bind_choose(hwloc_topology_t t, moe_bind_mode_t mode, int lr, int ls, hwloc_bitmap_t out);

/* The network device nearest to cpuset `set` (smallest non-I/O ancestor covering most of it),
 * its name into name (size n); 0 if found. */
int moe_bind_nearest_nic(hwloc_topology_t t, hwloc_const_bitmap_t set, char *name, size_t n);

/*
 * The L1d, L2 and L3 caches above the first PU of `set` (the whole machine when set is
 * empty): size in bytes and the number of PUs sharing each (its cpuset's weight); 0 and 0
 * for a level the topology does not declare. Instruction caches are skipped. Pure.
 */
void moe_bind_caches(hwloc_topology_t t, hwloc_const_bitmap_t set, int64_t *bytes, int *pus);

/* Decides and (on this system) applies the binding of this process; fills info. Never fails
 * the run: a refused binding is reported as action "failed". */
void moe_bind_apply(moe_bind_mode_t mode, int lr, int ls, moe_bind_info_t *info);

/* "auto" .. "numa" */
const char *moe_bind_mode_name(moe_bind_mode_t m);

#endif /* MOERUN_COMM_BIND_H */
