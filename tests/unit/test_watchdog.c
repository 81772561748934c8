/*
 * tests/unit/test_watchdog.c — runtime/watchdog.h in a child process each: an armed step
 * over the timeout ends the process with exit 3 and one line naming rank, host, step, layer
 * and phase, within the timeout plus the thread's period; a disarmed watchdog, or steps
 * re-armed before the timeout, never fire; a process stopped (SIGSTOP) and continued says
 * so and does not count the stopped time against its step.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "watchdog.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

    nanosleep(&ts, NULL);
}

typedef void (*child_fn)(void);

/* Runs fn in a child with stderr into *text; returns its wait status, *secs its lifetime.
 * With stop_at > 0: SIGSTOP at stop_at s, SIGCONT stop_for s later. */
static int run_child(child_fn fn, double stop_at, double stop_for, char *text, size_t len,
                     double *secs)
{
    int    fd[2], status = -1;
    pid_t  pid;
    double t0 = now_s();
    size_t n = 0;
    ssize_t r;

    text[0] = '\0';
    if (pipe(fd) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDERR_FILENO);
        fn();
        _exit(0);
    }
    close(fd[1]);
    if (stop_at > 0) {
        sleep_s(stop_at);
        kill(pid, SIGSTOP);
        sleep_s(stop_for);
        kill(pid, SIGCONT);
    }
    while (n + 1 < len && (r = read(fd[0], text + n, len - 1 - n)) > 0)
        n += (size_t)r;
    text[n] = '\0';
    close(fd[0]);
    waitpid(pid, &status, 0);
    *secs = now_s() - t0;
    return status;
}

static void child_hangs(void)
{
    moe_watchdog_t *wd = moe_watchdog_create(0.3, 5, NULL);

    moe_watchdog_arm(wd, 42);
    moe_watchdog_mark(wd, MOE_WD_DISPATCH, 1);
    sleep_s(5); /* the watchdog ends it long before */
}

/* Runs `child` (a watchdog of 0.3 s that fires), checks the exit and that the line holds
 * `rank_text` and `what`; the line into text. */
static void check_fired(void (*child)(void), const char *rank_text, const char *what,
                        char *text, size_t len)
{
    double secs;
    int    st = run_child(child, 0, 0, text, len, &secs);

    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ_INT(WEXITSTATUS(st), MOE_WATCHDOG_EXIT);
    ASSERT_TRUE(secs >= 0.3 && secs < 2.0); /* timeout + period (0.075 s) + start-up */
    ASSERT_STR_CONTAINS(text, rank_text);
    ASSERT_STR_CONTAINS(text, what);
    ASSERT_STR_CONTAINS(text, "(--step-timeout 0.3)");
    ASSERT_STR_CONTAINS(text, "exit 3");
}

static void test_fires(void)
{
    char text[1024];

    check_fired(child_hangs, "moerun[rank 5 on ",
                "step 42 (layer 1, dispatch (exchange)) has not finished after", text,
                sizeof(text));
}

static void child_hangs_creating(void)
{
    moe_watchdog_t *wd = moe_watchdog_create(0.3, 2, NULL);

    moe_watchdog_arm(wd, 0); /* as moe_engine_create */
    moe_watchdog_mark(wd, MOE_WD_CREATE, -1);
    sleep_s(5);
}

/* A rank lost before the first step: the line says engine creation, not a step. */
static void test_fires_in_creation(void)
{
    char text[1024];

    check_fired(child_hangs_creating, "moerun[rank 2 on ",
                "error: engine creation (topology, placement, exchange setup, telemetry file) "
                "has not finished after", text, sizeof(text));
    ASSERT_TRUE(strstr(text, "step 0") == NULL);
}

static void child_disarmed(void)
{
    moe_watchdog_t *wd = moe_watchdog_create(0.3, 0, NULL);
    long            s;

    /* steps of 0.1 s re-armed each time, then a disarmed second */
    for (s = 0; s < 8; s++) {
        moe_watchdog_arm(wd, s);
        sleep_s(0.1);
    }
    moe_watchdog_disarm(wd);
    sleep_s(1.0);
    moe_watchdog_destroy(wd);
}

static void test_quiet_when_disarmed_or_rearmed(void)
{
    char   text[1024];
    double secs;
    int    st = run_child(child_disarmed, 0, 0, text, sizeof(text), &secs);

    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ_INT(WEXITSTATUS(st), 0);
    ASSERT_EQ_STR(text, "");
    /* none at all: 0 turns it off */
    ASSERT_TRUE(moe_watchdog_create(0, 0, NULL) == NULL);
}

static void child_stopped(void)
{
    moe_watchdog_t *wd = moe_watchdog_create(1.0, 7, NULL);
    int             i;

    moe_watchdog_arm(wd, 3);
    for (i = 0; i < 60; i++) /* 0.6 s of its own running time, stopped for 2 s inside */
        sleep_s(0.01);
    moe_watchdog_disarm(wd);
    moe_watchdog_destroy(wd);
}

static void test_stopped_process(void)
{
    char   text[1024];
    double secs;
    int    st = run_child(child_stopped, 0.15, 2.0, text, sizeof(text), &secs);

    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ_INT(WEXITSTATUS(st), 0); /* 2 s stopped: over the 1 s timeout, not counted */
    ASSERT_TRUE(secs > 2.0);
    ASSERT_STR_CONTAINS(text, "moerun[rank 7 on ");
    ASSERT_STR_CONTAINS(text, "warning: rank 7 did not run for ");
    ASSERT_STR_CONTAINS(text, "during step 3 (stopped by SIGSTOP");
}

int main(void)
{
    RUN_TEST(test_fires);
    RUN_TEST(test_fires_in_creation);
    RUN_TEST(test_quiet_when_disarmed_or_rearmed);
    RUN_TEST(test_stopped_process);
    TEST_MAIN_END();
}
