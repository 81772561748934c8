/*
 * comm/bind.c — hwloc discovery and binding of one rank (see bind.h for the rules).
 *
 * Always: moe_bind_choose is a pure function of (topology, mode, local rank, local size), so
 * tests drive it with synthetic and XML topologies; moe_bind_apply binds only when the
 * topology is this system, and never stops a run (a refused binding is reported).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"

static const char *const bind_names[] = {"auto", "none", "core", "numa"};

const char *moe_bind_mode_name(moe_bind_mode_t m)
{
    return (unsigned)m < 4 ? bind_names[m] : "unknown";
}

int moe_bind_topology_load(hwloc_topology_t *t_p)
{
    hwloc_topology_t t;
    const char      *xml = getenv("MOERUN_HWLOC_XML"), *syn = getenv("MOERUN_HWLOC_SYNTHETIC");

    if (hwloc_topology_init(&t) != 0)
        return -1;
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if ((xml && xml[0] && hwloc_topology_set_xml(t, xml) != 0) ||
        (!(xml && xml[0]) && syn && syn[0] && hwloc_topology_set_synthetic(t, syn) != 0) ||
        hwloc_topology_load(t) != 0) {
        hwloc_topology_destroy(t);
        return -1;
    }
    *t_p = t;
    return 0;
}

int moe_bind_choose(hwloc_topology_t t, moe_bind_mode_t mode, int lr, int ls, hwloc_bitmap_t out)
{
    int         nnuma = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE), m, ncore, c, i;
    hwloc_obj_t numa, core;

    (void)ls;
    if (nnuma < 1)
        nnuma = 1;
    m = lr % nnuma;
    numa = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)m);
    if (mode == MOE_BIND_NUMA && numa) {
        hwloc_bitmap_copy(out, numa->cpuset);
        return 0;
    }
    /* the m-th NUMA node's cores, then core number lr div nnuma among them (wrapping) */
    ncore = 0;
    for (i = 0; (core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned)i)) != NULL; i++)
        if (numa == NULL || hwloc_bitmap_isincluded(core->cpuset, numa->cpuset))
            ncore++;
    if (ncore == 0)
        return -1;
    c = (lr / nnuma) % ncore;
    for (i = 0; (core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned)i)) != NULL; i++)
        if (numa == NULL || hwloc_bitmap_isincluded(core->cpuset, numa->cpuset)) {
            if (c-- == 0) {
                hwloc_bitmap_copy(out, core->cpuset);
                return 0;
            }
        }
    return -1;
}

int moe_bind_nearest_nic(hwloc_topology_t t, hwloc_const_bitmap_t set, char *name, size_t n)
{
    hwloc_obj_t os = NULL, best = NULL, anc;
    int         best_w = -1, best_sz = 0;

    name[0] = '\0';
    while ((os = hwloc_get_next_osdev(t, os)) != NULL) {
        int w, sz;
        if (os->attr->osdev.type != HWLOC_OBJ_OSDEV_NETWORK &&
            os->attr->osdev.type != HWLOC_OBJ_OSDEV_OPENFABRICS)
            continue;
        anc = hwloc_get_non_io_ancestor_obj(t, os);
        if (anc == NULL || anc->cpuset == NULL)
            continue;
        /* most of the binding's PUs local to the NIC, then the smallest locality */
        {
            hwloc_bitmap_t x = hwloc_bitmap_alloc();
            hwloc_bitmap_and(x, anc->cpuset, set);
            w = hwloc_bitmap_weight(x);
            hwloc_bitmap_free(x);
        }
        sz = hwloc_bitmap_weight(anc->cpuset);
        if (w > best_w || (w == best_w && sz < best_sz)) {
            best = os;
            best_w = w;
            best_sz = sz;
        }
    }
    if (best == NULL)
        return -1;
    snprintf(name, n, "%s", best->name ? best->name : "?");
    return 0;
}

void moe_bind_caches(hwloc_topology_t t, hwloc_const_bitmap_t set, int64_t *bytes, int *pus)
{
    int         first = hwloc_bitmap_first(set), lv;
    hwloc_obj_t o;

    for (lv = 0; lv < MOE_CACHE_LEVELS; lv++)
        bytes[lv] = pus[lv] = 0;
    o = first >= 0 ? hwloc_get_pu_obj_by_os_index(t, (unsigned)first)
                   : hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, 0);
    for (; o != NULL; o = o->parent) {
        if (!hwloc_obj_type_is_cache(o->type) || o->attr == NULL ||
            o->attr->cache.type == HWLOC_OBJ_CACHE_INSTRUCTION)
            continue;
        lv = (int)o->attr->cache.depth - 1;
        if (lv < 0 || lv >= MOE_CACHE_LEVELS || bytes[lv] != 0)
            continue; /* L4 and beyond; the nearest cache of a level counts */
        bytes[lv] = (int64_t)o->attr->cache.size;
        pus[lv] = o->cpuset ? hwloc_bitmap_weight(o->cpuset) : 0;
    }
}

static void bind_describe(hwloc_topology_t t, char *buf, size_t n)
{
    int         nic = 0;
    hwloc_obj_t os = NULL;

    while ((os = hwloc_get_next_osdev(t, os)) != NULL)
        nic += os->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK ||
               os->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS;
    snprintf(buf, n, "%d packages, %d NUMA, %d cores, %d PUs, %d NICs",
             hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE),
             hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE),
             hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE),
             hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU), nic);
}

void moe_bind_apply(moe_bind_mode_t mode, int lr, int ls, moe_bind_info_t *info)
{
    hwloc_topology_t t;
    hwloc_bitmap_t   cur, want, nodes;
    int              thissys, bound_already, ncore;

    memset(info, 0, sizeof(*info));
    info->numa = -1;
    snprintf(info->action, sizeof(info->action), "none");
    snprintf(info->membind, sizeof(info->membind), "none");
#ifdef MOERUN_SMPI
    /* simulated ranks have no binding of their own: the machine running the simulation is
     * not the simulated one (and loading its topology 1024 times costs minutes) */
    (void)mode, (void)lr, (void)ls, (void)t, (void)cur, (void)want, (void)nodes;
    (void)thissys, (void)bound_already, (void)ncore;
    return;
#endif
    if (moe_bind_topology_load(&t) != 0) {
        snprintf(info->action, sizeof(info->action), "failed");
        return;
    }
    bind_describe(t, info->machine, sizeof(info->machine));
    thissys = hwloc_topology_is_thissystem(t);
    cur = hwloc_bitmap_alloc();
    want = hwloc_bitmap_alloc();
    nodes = hwloc_bitmap_alloc();
    if (!cur || !want || !nodes)
        goto out;
    /* the current binding: the real one, or (not this system) the whole machine */
    if (!thissys || hwloc_get_cpubind(t, cur, HWLOC_CPUBIND_PROCESS) != 0)
        hwloc_bitmap_copy(cur, hwloc_topology_get_topology_cpuset(t));
    bound_already = !hwloc_bitmap_isincluded(hwloc_topology_get_topology_cpuset(t), cur);
    ncore = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    hwloc_bitmap_copy(want, cur);
    if (mode == MOE_BIND_AUTO && bound_already) {
        snprintf(info->action, sizeof(info->action), "kept");
    } else if (mode == MOE_BIND_AUTO && ls > ncore) {
        snprintf(info->action, sizeof(info->action), "unbound");
    } else if (mode != MOE_BIND_NONE) {
        if (moe_bind_choose(t, mode == MOE_BIND_NUMA ? MOE_BIND_NUMA : MOE_BIND_CORE, lr, ls,
                            want) != 0) {
            snprintf(info->action, sizeof(info->action), "failed");
            hwloc_bitmap_copy(want, cur);
        } else if (!thissys) {
            snprintf(info->action, sizeof(info->action), "planned");
        } else if (hwloc_set_cpubind(t, want, HWLOC_CPUBIND_PROCESS) != 0) {
            snprintf(info->action, sizeof(info->action), "failed");
            hwloc_bitmap_copy(want, cur);
        } else {
            snprintf(info->action, sizeof(info->action), "bound");
        }
    }
    if (!hwloc_bitmap_isincluded(hwloc_topology_get_topology_cpuset(t), want))
        hwloc_bitmap_list_snprintf(info->cpuset, sizeof(info->cpuset), want);
    hwloc_cpuset_to_nodeset(t, want, nodes);
    info->numa = hwloc_bitmap_first(nodes);
    moe_bind_nearest_nic(t, want, info->nic, sizeof(info->nic));
    moe_bind_caches(t, want, info->cache_bytes, info->cache_pus);
    if (strcmp(info->action, "bound") == 0 || strcmp(info->action, "kept") == 0) {
        /* memory next to the CPUs: an explicit policy where allowed, else first touch */
        if (hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) > 1 &&
            hwloc_set_membind(t, nodes, HWLOC_MEMBIND_BIND,
                              HWLOC_MEMBIND_PROCESS | HWLOC_MEMBIND_BYNODESET) == 0)
            snprintf(info->membind, sizeof(info->membind), "bind");
        else
            snprintf(info->membind, sizeof(info->membind), "first-touch");
    }
out:
    hwloc_bitmap_free(cur);
    hwloc_bitmap_free(want);
    hwloc_bitmap_free(nodes);
    hwloc_topology_destroy(t);
}
