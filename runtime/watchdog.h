/*
 * runtime/watchdog.h — the progress watchdog of a rank (--step-timeout, docs/signals.md).
 *
 * A rank that waits forever in an MPI call (a peer stopped, its host gone, a link down or
 * stalled) cannot notice it itself. The watchdog is one thread per rank that makes no MPI
 * call (SimGrid SMPI and MPI_THREAD_FUNNELED allow none from other threads): the engine arms
 * it with a step number before a step and marks where it is inside the step (and during
 * engine creation, marked MOE_WD_CREATE: its collectives wait for every rank); when one armed
 * step has taken longer than the timeout, the thread writes one line naming the rank, its
 * host, the step (or "engine creation"), the layer and the phase, and ends the process with
 * _exit(MOE_WATCHDOG_EXIT)
 * so that mpirun (or srun) tears the job down. Telemetry stays readable up to the last flush.
 *
 * Always:
 *  1. the thread only reads the clock and atomics, formats into a local buffer and calls
 *     write(2) and _exit(2): no MPI, no HDF5, no allocation, no lock held by the engine;
 *  2. a disarmed watchdog never fires (between engine calls of a library user, after the
 *     run); a run without --step-timeout (0) starts no thread;
 *  3. SMPI builds start no thread (simulated time is not wall time; _exit would end the
 *     whole simulation).
 */
#ifndef MOERUN_RUNTIME_WATCHDOG_H
#define MOERUN_RUNTIME_WATCHDOG_H

/* exit code of a rank ended by the watchdog (docs/signals.md, moerun --help) */
#define MOE_WATCHDOG_EXIT 3

/* Where a step is (the phases of runtime/engine.c, and the telemetry flush). */
#define MOE_WD_WHERE_MAP(X)                      \
    X(MOE_WD_CREATE, "topology, placement, exchange setup, telemetry file") \
    X(MOE_WD_START, "at the start of the step")  \
    X(MOE_WD_GATE, "gate")                       \
    X(MOE_WD_COUNTS, "counts (MPI_Allreduce)")   \
    X(MOE_WD_DISPATCH, "dispatch (exchange)")    \
    X(MOE_WD_EXPERT, "experts")                  \
    X(MOE_WD_COMBINE, "combine (exchange)")      \
    X(MOE_WD_FLUSH, "telemetry flush")           \
    X(MOE_WD_FINISH, "finish (final flush, summary reductions, file close)")

#define MOE__WD_ENUM(id, text) id,
typedef enum { MOE_WD_WHERE_MAP(MOE__WD_ENUM) MOE_WD_WHERE_COUNT } moe_wd_where_t;
#undef MOE__WD_ENUM

typedef struct moe_watchdog moe_watchdog_t;

/*
 * Starts the thread of a watchdog with `timeout_s` > 0 seconds for rank `rank`. Returns NULL
 * (and starts nothing) when timeout_s <= 0, in SMPI builds, or when the thread cannot be
 * created (then *err_p, if given, is set to a static message). moe_watchdog_destroy frees it.
 */
moe_watchdog_t *moe_watchdog_create(double timeout_s, int rank, const char **err_p);

/* Arms the watchdog for step `step` (restarts its clock); wd may be NULL. */
void moe_watchdog_arm(moe_watchdog_t *wd, long step);

/* Marks where the armed step is (layer -1: not in a layer); does not restart the clock. */
void moe_watchdog_mark(moe_watchdog_t *wd, moe_wd_where_t where, int layer);

/* Disarms it: nothing fires until the next arm. */
void moe_watchdog_disarm(moe_watchdog_t *wd);

/* Stops and joins the thread, frees wd (NULL is fine). */
void moe_watchdog_destroy(moe_watchdog_t *wd);

#endif /* MOERUN_RUNTIME_WATCHDOG_H */
