/*
 * comm/slots.c — compute slots (see slots.h for what always holds).
 *
 * Setup, collective over the node (MPI_COMM_TYPE_SHARED, the real shared-memory node, never
 * --ranks-per-node's study nodes): with auto, the union of the node's ranks' affinity masks
 * (sched_getaffinity, OR-reduced) and the cores it touches (hwloc, counted by the node's
 * lowest rank; PUs when the topology is not this system's); then the shared page.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_SET */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <hwloc.h>

#include "moerun/base/mpicheck.h"
#include "slots.h"

#ifdef MOERUN_SMPI
/* simulated ranks: always off (slots.h invariant 4) */
struct moe_slots_shm {
    int unused;
};

moe_status_t moe_slots_init(moe_slots_t *s, MPI_Comm comm, int request, int count,
                            moe_log_t *log)
{
    (void)comm, (void)request, (void)count, (void)log;
    memset(s, 0, sizeof(*s));
    return MOE_OK;
}

void moe_slots_acquire(moe_slots_t *s)
{
    (void)s;
}

void moe_slots_release(moe_slots_t *s)
{
    (void)s;
}

void moe_slots_cleanup(moe_slots_t *s)
{
    memset(s, 0, sizeof(*s));
}
#else
struct moe_slots_shm {
    sem_t      sem;      /* C slots; sem_init pshared by the node's lowest rank */
    atomic_int holders;  /* ranks holding a slot now */
    atomic_int attached; /* ranks with the page mapped; the last to leave destroys sem */
};

#define SLOTS_MASK_WORDS (CPU_SETSIZE / 64)
#define SLOTS_NAME_MAX   64
/* A rank waiting for a slot wakes this often to make MPI progress (its sends in flight move
 * on while it waits: shared-memory rendezvous and UCX over TCP need the sender's calls). */
#define SLOTS_POLL_NS    500000L

static double slots_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Cores of this system with a PU in mask (OS indices); the PUs in it when the topology is
 * not this system's (HWLOC_XMLFILE, HWLOC_SYNTHETIC) or has no cores. */
static int slots_count_cores(const uint64_t *mask)
{
    hwloc_topology_t t;
    hwloc_bitmap_t   u;
    hwloc_obj_t      core;
    int              i, pus = 0, n = 0;

    for (i = 0; i < SLOTS_MASK_WORDS * 64; i++)
        pus += (int)((mask[i / 64] >> (i % 64)) & 1u);
    if (hwloc_topology_init(&t) != 0)
        return pus;
    if (hwloc_topology_load(t) != 0 || !hwloc_topology_is_thissystem(t) ||
        (u = hwloc_bitmap_alloc()) == NULL) {
        hwloc_topology_destroy(t);
        return pus;
    }
    for (i = 0; i < SLOTS_MASK_WORDS * 64; i++)
        if ((mask[i / 64] >> (i % 64)) & 1u)
            hwloc_bitmap_set(u, (unsigned)i);
    for (i = 0; (core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned)i)) != NULL; i++)
        n += core->cpuset != NULL && hwloc_bitmap_intersects(core->cpuset, u);
    hwloc_bitmap_free(u);
    hwloc_topology_destroy(t);
    return n > 0 ? n : pus;
}

/* The cores the node's ranks can run on (collective over node; the result on every rank). */
static moe_status_t slots_node_cores(MPI_Comm node, int node_rank, moe_log_t *log, int *cores_p)
{
    uint64_t  mask[SLOTS_MASK_WORDS] = {0};
    cpu_set_t set;
    int       i, cores = 0;

    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &set))
                mask[i / 64] |= (uint64_t)1 << (i % 64);
    } else { /* unknown: every CPU the system has online */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (i = 0; i < n && i < CPU_SETSIZE; i++)
            mask[i / 64] |= (uint64_t)1 << (i % 64);
    }
    MOE_MPI_CHECK(log, MPI_Allreduce(MPI_IN_PLACE, mask, SLOTS_MASK_WORDS, MPI_UINT64_T, MPI_BOR,
                                     node));
    if (node_rank == 0)
        cores = slots_count_cores(mask);
    MOE_MPI_CHECK(log, MPI_Bcast(&cores, 1, MPI_INT, 0, node));
    *cores_p = cores;
    return MOE_OK;
}

/* Drops this rank's mapping; the last rank of the node destroys the semaphore. */
static void slots_detach(moe_slots_shm_t *sh)
{
    if (sh == NULL)
        return;
    if (atomic_fetch_sub(&sh->attached, 1) == 1)
        sem_destroy(&sh->sem);
    munmap(sh, sizeof(*sh));
}

/* The node's shared page: made by node rank 0, mapped by all, then unlinked. *sh_p stays
 * NULL on every rank of the node if any of them failed (warned in log). Collective. */
static moe_status_t slots_map(MPI_Comm node, int node_rank, int limit, moe_log_t *log,
                              moe_slots_shm_t **sh_p)
{
    char             name[SLOTS_NAME_MAX] = "";
    moe_slots_shm_t *sh = NULL;
    int              fd = -1, ok = 1, all = 0, created = 0, err = 0;
    struct timespec  ts;
    moe_status_t     st = MOE_OK;

    *sh_p = NULL;
    if (node_rank == 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(name, sizeof(name), "/moerun-slots-%ld-%ld-%ld", (long)getpid(), (long)ts.tv_sec,
                 (long)ts.tv_nsec);
        fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
        created = fd >= 0;
        if (fd < 0 || ftruncate(fd, (off_t)sizeof(*sh)) != 0 ||
            (sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
                MAP_FAILED) {
            err = errno;
            sh = NULL;
        } else if (sem_init(&sh->sem, 1, (unsigned)limit) != 0) {
            err = errno;
            munmap(sh, sizeof(*sh));
            sh = NULL;
        } else {
            atomic_init(&sh->holders, 0);
            atomic_init(&sh->attached, 1);
        }
        ok = sh != NULL;
    }
    MOE_MPI_CHECK_GOTO(log, MPI_Bcast(&ok, 1, MPI_INT, 0, node), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Bcast(name, SLOTS_NAME_MAX, MPI_CHAR, 0, node), st, out);
    if (node_rank != 0 && ok) {
        fd = shm_open(name, O_RDWR, 0);
        if (fd < 0 || (sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
                          MAP_FAILED) {
            err = errno;
            sh = NULL;
            ok = 0;
        } else {
            atomic_fetch_add(&sh->attached, 1);
        }
    }
    /* every rank has mapped it (or failed): the name can go, the mappings stay */
    MOE_MPI_CHECK_GOTO(log, MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, node), st, out);
    if (!all && err != 0)
        MOE_WARN(log, "compute_slots: cannot share a page between the node's ranks (%s): "
                      "running without compute slots", strerror(err));
out:
    if (fd >= 0)
        close(fd);
    if (created)
        shm_unlink(name);
    if (st != MOE_OK || !all)
        slots_detach(sh);
    else
        *sh_p = sh;
    return st;
}

moe_status_t moe_slots_init(moe_slots_t *s, MPI_Comm comm, int request, int count,
                            moe_log_t *log)
{
    MPI_Comm     node = MPI_COMM_NULL;
    int          nr = 0, nn = 1, limit = 0;
    moe_status_t st = MOE_OK;

    memset(s, 0, sizeof(*s));
    if (request == 0 && !count)
        return MOE_OK;
    MOE_MPI_CHECK(log, MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    MOE_MPI_CHECK_GOTO(log, MPI_Comm_rank(node, &nr), st, out);
    MOE_MPI_CHECK_GOTO(log, MPI_Comm_size(node, &nn), st, out);
    s->node_ranks = nn;
    s->comm = comm;
    if (request == MOE_SLOTS_AUTO || count) {
        if (nn > 1 && (st = slots_node_cores(node, nr, log, &s->node_cores)) != MOE_OK)
            goto out;
    }
    if (request == 0) {
        limit = 0;
    } else if (request == MOE_SLOTS_AUTO) {
        limit = nn > 1 && s->node_cores > 0 && nn > s->node_cores ? s->node_cores : 0;
    } else {
        limit = request;
    }
    if (limit > 0 && (st = slots_map(node, nr, limit, log, &s->shm)) != MOE_OK)
        goto out;
    s->limit = s->shm ? limit : 0;
out:
    MPI_Comm_free(&node);
    return st;
}

void moe_slots_acquire(moe_slots_t *s)
{
    struct timespec ts;
    int             h, rc, flag;
    double          t0;

    if (s->shm == NULL)
        return;
    if (sem_trywait(&s->shm->sem) != 0) {
        t0 = slots_now();
        for (;;) { /* asleep, waking every SLOTS_POLL_NS for one progress call */
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += SLOTS_POLL_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if ((rc = sem_timedwait(&s->shm->sem, &ts)) == 0 || (errno != ETIMEDOUT &&
                                                                 errno != EINTR))
                break;
            if (errno == ETIMEDOUT) /* probes nothing: only drives the progress engine */
                MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->comm, &flag, MPI_STATUS_IGNORE);
        }
        s->wait_s += slots_now() - t0;
        s->waits++;
        if (rc != 0) /* cannot happen with a valid semaphore; compute without one */
            return;
    }
    s->held = 1;
    h = atomic_fetch_add(&s->shm->holders, 1) + 1;
    if (h > s->max_holders)
        s->max_holders = h;
}

void moe_slots_release(moe_slots_t *s)
{
    if (s->shm == NULL || !s->held)
        return;
    s->held = 0;
    atomic_fetch_sub(&s->shm->holders, 1);
    sem_post(&s->shm->sem);
}

void moe_slots_cleanup(moe_slots_t *s)
{
    slots_detach(s->shm);
    memset(s, 0, sizeof(*s));
}
#endif /* MOERUN_SMPI */
