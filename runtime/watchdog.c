/*
 * runtime/watchdog.c — the progress watchdog thread of a rank (watchdog.h, docs/signals.md).
 *
 * State shared with the engine's thread: `armed_ns` (CLOCK_MONOTONIC time of the last arm, 0
 * when disarmed), `step`, `where`, `layer`, all C11 atomics. The thread wakes every
 * min(timeout / 4, 0.25 s) on a condition variable (so that destroy returns at once) and,
 * once now - armed_ns > timeout, writes its line and _exits. It never takes a lock the
 * engine holds: the mutex is the watchdog's own, used only for the wait and for stop.
 */
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOE__WD_GAP_NS 1000000000LL /* a wake-up this late (or a quarter of the timeout,
                                       * if longer) means the process was stopped */

struct moe_watchdog {
    double          timeout_s;
    int             rank;
    char            host[64];
    atomic_llong    armed_ns;   /* 0: disarmed */
    atomic_long     step;
    atomic_int      where, layer;
    int             stop;       /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t  cv;         /* CLOCK_MONOTONIC */
    pthread_t       thread;
};

static long long wd_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#ifndef MOERUN_SMPI /* SMPI builds start no thread (watchdog.h, 3.) */
#define MOE__WD_TEXT(id, text) text,
static const char *const wd_where_text[MOE_WD_WHERE_COUNT] = {MOE_WD_WHERE_MAP(MOE__WD_TEXT)};
#undef MOE__WD_TEXT

/* What is armed, for the lines below: "engine creation" or "step N". */
static void wd_what(moe_watchdog_t *wd, char *what, size_t len)
{
    if (atomic_load(&wd->where) == MOE_WD_CREATE)
        snprintf(what, len, "engine creation");
    else
        snprintf(what, len, "step %ld", atomic_load(&wd->step));
}

/* The one line, then the end of this process: mpirun sees a rank exit without finalising
 * and aborts the job. */
static void wd_fire(moe_watchdog_t *wd, long long late_ns)
{
    char line[512];
    int  where = atomic_load(&wd->where), layer = atomic_load(&wd->layer), n;
    char at[96] = "", what[48];

    if (where < 0 || where >= MOE_WD_WHERE_COUNT)
        where = MOE_WD_START;
    if (layer >= 0)
        snprintf(at, sizeof(at), "layer %d, ", layer);
    wd_what(wd, what, sizeof(what));
    n = snprintf(line, sizeof(line),
                 "moerun[rank %d on %s]: error: %s (%s%s) has not finished after %.1f s "
                 "(--step-timeout %g): a rank, host or link this rank waits for is lost, "
                 "stopped or stalled; ending rank %d with exit %d (telemetry is readable up to "
                 "its last flush)\n",
                 wd->rank, wd->host, what, at, wd_where_text[where], (double)late_ns / 1e9,
                 wd->timeout_s, wd->rank, MOE_WATCHDOG_EXIT);
    if (n > 0) {
        size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
    }
    _exit(MOE_WATCHDOG_EXIT);
}

/* This process did not run for gap_ns (SIGSTOP, or starved): say so; the caller leaves the
 * gap out of the step's time. */
static void wd_stopped(moe_watchdog_t *wd, long long gap_ns)
{
    char line[384], what[48];
    int  n;

    wd_what(wd, what, sizeof(what));
    n = snprintf(line, sizeof(line),
                 "moerun[rank %d on %s]: warning: rank %d did not run for %.1f s during %s "
                 "(stopped by SIGSTOP or SIGTSTP, or not scheduled); the other ranks wait for "
                 "it\n",
                 wd->rank, wd->host, wd->rank, (double)gap_ns / 1e9, what);

    if (n > 0) {
        size_t  len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
    }
}

static void *wd_main(void *arg)
{
    moe_watchdog_t *wd = arg;
    long long       period = (long long)(wd->timeout_s * 1e9 / 4), last = wd_now_ns();
    long long       gap_min = period > MOE__WD_GAP_NS ? period : MOE__WD_GAP_NS;
    struct timespec until;

    if (period > 250000000LL)
        period = 250000000LL;
    if (period < 1000000LL)
        period = 1000000LL;
    pthread_mutex_lock(&wd->mu);
    while (!wd->stop) {
        long long t = wd_now_ns() + period, armed;
        until.tv_sec = (time_t)(t / 1000000000LL);
        until.tv_nsec = (long)(t % 1000000000LL);
        while (!wd->stop && pthread_cond_timedwait(&wd->cv, &wd->mu, &until) != ETIMEDOUT)
            ;
        if (wd->stop)
            break;
        armed = atomic_load(&wd->armed_ns);
        /* a wake-up over gap_min late: the whole process was stopped (all threads are), e.g.
         * SIGSTOP then SIGCONT; that time is not the step's fault */
        if (wd_now_ns() - last - period > gap_min && armed != 0) {
            long long gap = wd_now_ns() - last - period;
            wd_stopped(wd, gap);
            atomic_compare_exchange_strong(&wd->armed_ns, &armed, armed + gap);
            armed = atomic_load(&wd->armed_ns);
        }
        last = wd_now_ns();
        if (armed != 0 && (double)(last - armed) > wd->timeout_s * 1e9)
            wd_fire(wd, last - armed);
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}
#endif

moe_watchdog_t *moe_watchdog_create(double timeout_s, int rank, const char **err_p)
{
#ifdef MOERUN_SMPI
    (void)timeout_s;
    (void)rank;
    (void)err_p;
    return NULL;
#else
    moe_watchdog_t    *wd;
    pthread_condattr_t ca;

    if (!(timeout_s > 0))
        return NULL;
    wd = calloc(1, sizeof(*wd));
    if (wd == NULL) {
        if (err_p)
            *err_p = "watchdog: out of memory";
        return NULL;
    }
    wd->timeout_s = timeout_s;
    wd->rank = rank;
    if (gethostname(wd->host, sizeof(wd->host) - 1) != 0)
        strcpy(wd->host, "?");
    atomic_init(&wd->armed_ns, 0);
    atomic_init(&wd->step, 0);
    atomic_init(&wd->where, MOE_WD_START);
    atomic_init(&wd->layer, -1);
    pthread_mutex_init(&wd->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&wd->thread, NULL, wd_main, wd) != 0) {
        pthread_cond_destroy(&wd->cv);
        pthread_mutex_destroy(&wd->mu);
        free(wd);
        if (err_p)
            *err_p = "watchdog: cannot create its thread";
        return NULL;
    }
    return wd;
#endif
}

void moe_watchdog_arm(moe_watchdog_t *wd, long step)
{
    if (wd == NULL)
        return;
    atomic_store(&wd->step, step);
    atomic_store(&wd->where, MOE_WD_START);
    atomic_store(&wd->layer, -1);
    atomic_store(&wd->armed_ns, wd_now_ns());
}

void moe_watchdog_mark(moe_watchdog_t *wd, moe_wd_where_t where, int layer)
{
    if (wd == NULL)
        return;
    atomic_store(&wd->where, (int)where);
    atomic_store(&wd->layer, layer);
}

void moe_watchdog_disarm(moe_watchdog_t *wd)
{
    if (wd != NULL)
        atomic_store(&wd->armed_ns, 0);
}

void moe_watchdog_destroy(moe_watchdog_t *wd)
{
    if (wd == NULL)
        return;
    pthread_mutex_lock(&wd->mu);
    wd->stop = 1;
    pthread_cond_signal(&wd->cv);
    pthread_mutex_unlock(&wd->mu);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cv);
    pthread_mutex_destroy(&wd->mu);
    free(wd);
}
