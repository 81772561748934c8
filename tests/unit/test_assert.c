/*
 * tests/unit/test_assert.c — MOE_ASSERT (include/moerun/base/assert.h) does what the build
 * says: with MOERUN_ASSERTS (Debug builds, or -DMOERUN_ASSERTS=ON) a false condition prints
 * the condition, file and line and aborts the process; without, the condition is not even
 * evaluated.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moerun/base/assert.h"
#include "testlib.h"

static int evaluated;

static int touch(int v)
{
    evaluated++;
    return v;
}

static void test_true_passes(void)
{
    evaluated = 0;
    MOE_ASSERT(touch(1) == 1);
    ASSERT_EQ_INT(evaluated, MOE_ASSERTS_ENABLED ? 1 : 0);
}

/* A false condition in a child: aborts with the condition in the message, or does nothing. */
static void test_false_aborts(void)
{
    int   fds[2], ws = 0;
    char  msg[512] = "";
    pid_t pid;
    ssize_t n;

    ASSERT_EQ_INT(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        MOE_ASSERT(touch(2) == 3);
        _exit(0);
    }
    close(fds[1]);
    n = read(fds[0], msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    waitpid(pid, &ws, 0);
    if (MOE_ASSERTS_ENABLED) {
        ASSERT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT);
        ASSERT_STR_CONTAINS(msg, "invariant violated: touch(2) == 3");
        ASSERT_STR_CONTAINS(msg, "test_assert.c:");
    } else {
        ASSERT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
        ASSERT_EQ_STR(msg, "");
    }
}

int main(void)
{
    printf("MOE_ASSERT is %s in this build\n", MOE_ASSERTS_ENABLED ? "on" : "off");
    RUN_TEST(test_true_passes);
    RUN_TEST(test_false_aborts);
    TEST_MAIN_END();
}
