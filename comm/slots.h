/*
 * comm/slots.h — compute slots: at most C ranks of a node run expert compute at once
 * (config key compute_slots; docs/binding.md, "Compute slots").
 *
 * When a node's ranks outnumber the cores they can run on, the kernel time-slices them:
 * two ranks sharing a core preempt each other in the middle of a GEMM and evict each
 * other's cache-resident blocks. With slots, a rank takes one of C slots right before an
 * expert GEMM call and gives it back right after; a rank finding none free sleeps (a
 * process-shared POSIX semaphore: futex, no spinning) until one is given back.
 *
 * The node's ranks share one small page (shm_open by the node's lowest rank, mapped by
 * all, unlinked as soon as all have it: nothing is left in /dev/shm, even after a crash)
 * holding the semaphore (sem_init pshared, value C) and the count of current holders.
 *
 * Always:
 *  1. a holder only computes (moe_slots_acquire ... moe_slots_release brackets one
 *     expert call, no communication inside): every wait for a slot ends once the holders'
 *     calls end, so slots add no deadlock to any exchange; a waiting rank sleeps in
 *     sem_timedwait and every 0.5 ms makes one progress call on init's comm (MPI_Iprobe,
 *     which matches nothing), so its transfers in flight move on while it waits;
 *  2. slots change who computes when, never what: outputs are bitwise the same;
 *  3. at most C ranks of a node hold a slot at once; max_holders is the largest number of
 *     holders (this one included) any acquisition of this rank saw, so the maximum over a
 *     node's ranks is the node's largest concurrency;
 *  4. off (limit 0) every call is a no-op; SimGrid builds (MOERUN_SMPI) are always off
 *     (simulated ranks charge their compute to the simulated host, runtime/sim.h).
 */
#ifndef MOERUN_COMM_SLOTS_H
#define MOERUN_COMM_SLOTS_H

#include <stdint.h>

#include <mpi.h>

#include "moerun/base/log.h"

/* compute_slots = auto: slots on when the node's ranks outnumber its cores. */
#define MOE_SLOTS_AUTO (-1)

/* With slots on, the flat exchange's blocking waits sleep this long between tests of their
 * requests (moe_a2a_params_t.idle_sleep_ns) instead of spinning in MPI, which would take
 * the core from a slot holder. */
#define MOE_SLOTS_IDLE_SLEEP_NS 50000L

typedef struct moe_slots_shm moe_slots_shm_t;

typedef struct moe_slots {
    moe_slots_shm_t *shm;        /* the node's shared page; NULL: off */
    MPI_Comm         comm;       /* init's comm (not owned): progress calls while waiting */
    int              limit;      /* C on this rank's node; 0: off */
    int              node_ranks; /* ranks on this rank's node (MPI_COMM_TYPE_SHARED) */
    int              node_cores; /* cores they can run on (union of their affinity masks);
                                  * 0: not counted (explicit N, or one rank) */
    int              held;       /* 1 between a successful acquire and its release */
    int              max_holders;/* see invariant 3 */
    int64_t          waits;      /* acquisitions that had to sleep */
    double           wait_s;     /* seconds asleep waiting for a slot */
} moe_slots_t;

/*
 * Collective over comm, which must outlive s (acquire makes progress calls on it).
 * request: MOE_SLOTS_AUTO, 0 (off) or N > 0 (C = N on every node). count != 0: node_ranks
 * and node_cores are filled even with slots off (--wait-sleep-us auto asks whether the
 * node's ranks outnumber its cores).
 * Fills a caller-owned struct; moe_slots_cleanup undoes it (local, not collective). A node
 * whose shared page cannot be made runs without slots (a warning in log): never an error
 * beyond MPI failures.
 */
moe_status_t moe_slots_init(moe_slots_t *s, MPI_Comm comm, int request, int count,
                            moe_log_t *log);

/* Takes a slot (sleeps until one is free; comm must still be valid). No-op when off. */
void moe_slots_acquire(moe_slots_t *s);

/* Gives the slot back. No-op when off. */
void moe_slots_release(moe_slots_t *s);

/* Unmaps the page; the node's last rank to leave destroys the semaphore. Local. */
void moe_slots_cleanup(moe_slots_t *s);

#endif /* MOERUN_COMM_SLOTS_H */
