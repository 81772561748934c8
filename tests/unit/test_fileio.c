/*
 * tests/unit/test_fileio.c — include/moerun/base/fileio.h against the attacks of issue 15:
 * links planted at the target and at guessable temporary names, devices, FIFOs and
 * directories as targets, two names for one file, a second writer while the lock is held,
 * and a full device under a write (/dev/full). Every check compares file contents before
 * and after: nothing may be lost.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "moerun/base/fileio.h"
#include "testlib.h"

static char dir[256];

static void put(const char *name, const char *text)
{
    char  p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The file's text ("" when missing), in a static buffer. */
static const char *get(const char *name)
{
    static char buf[4][256];
    static int  k;
    char        p[512];
    FILE       *f;
    size_t      n = 0;

    k = (k + 1) % 4;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    buf[k][0] = '\0';
    if ((f = fopen(p, "r")) != NULL) {
        n = fread(buf[k], 1, sizeof(buf[k]) - 1, f);
        fclose(f);
    }
    buf[k][n] = '\0';
    return buf[k];
}

static const char *path(const char *name)
{
    static char p[4][512];
    static int  k;

    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

/* Entries of dir whose name contains ".tmp." (left-over temporary files). */
static int tmp_left(void)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    int            n = 0;

    while (d && (e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static int write_out(const char *name, unsigned flags, const char *text, char *err, size_t n)
{
    moe_out_t o;

    if (moe_out_open(&o, path(name), flags, err, n) != 0)
        return -1;
    fputs(text, o.f);
    return moe_out_commit(&o, err, n);
}

static void test_plain_and_replace(void)
{
    char err[8192];

    ASSERT_EQ_INT(moe_out_check(path("new.txt"), 0, err, sizeof(err)), 0);
    ASSERT_EQ_INT(write_out("new.txt", 0, "one\n", err, sizeof(err)), 0);
    ASSERT_TRUE(strcmp(get("new.txt"), "one\n") == 0);
    /* an existing regular file: refused by the check unless OVERWRITE; replaced by open */
    ASSERT_EQ_INT(moe_out_check(path("new.txt"), 0, err, sizeof(err)), -1);
    ASSERT_STR_CONTAINS(err, "--overwrite");
    ASSERT_EQ_INT(moe_out_check(path("new.txt"), MOE_OUT_OVERWRITE, err, sizeof(err)), 0);
    ASSERT_EQ_INT(write_out("new.txt", 0, "two\n", err, sizeof(err)), 0);
    ASSERT_TRUE(strcmp(get("new.txt"), "two\n") == 0);
    ASSERT_EQ_INT(tmp_left(), 0);
    {
        struct stat sb;
        mode_t      old = umask(0);
        ASSERT_EQ_INT(write_out("mode.txt", 0, "m\n", err, sizeof(err)), 0);
        umask(old);
        ASSERT_EQ_INT(stat(path("mode.txt"), &sb), 0);
        ASSERT_EQ_INT(sb.st_mode & 0777, 0664); /* never world-writable, even with umask 0 */
    }
}

static void test_links(void)
{
    char err[8192];

    put("victim", "victim\n");
    ASSERT_EQ_INT(symlink("victim", path("link")), 0);
    ASSERT_EQ_INT(moe_out_check(path("link"), MOE_OUT_OVERWRITE, err, sizeof(err)), -1);
    ASSERT_STR_CONTAINS(err, "symbolic link");
    ASSERT_EQ_INT(write_out("link", 0, "evil\n", err, sizeof(err)), -1);
    ASSERT_TRUE(strcmp(get("victim"), "victim\n") == 0);
    /* allowed: the file the link names is replaced, the link stays */
    ASSERT_EQ_INT(write_out("link", MOE_OUT_FOLLOW, "through\n", err, sizeof(err)), 0);
    ASSERT_TRUE(strcmp(get("victim"), "through\n") == 0);
    {
        struct stat sb;
        ASSERT_EQ_INT(lstat(path("link"), &sb), 0);
        ASSERT_TRUE(S_ISLNK(sb.st_mode));
    }
    /* a dangling link */
    ASSERT_EQ_INT(symlink("nowhere", path("dangling")), 0);
    ASSERT_EQ_INT(write_out("dangling", MOE_OUT_FOLLOW, "x\n", err, sizeof(err)), -1);
    /* the old guessable temporary names, planted as links: never followed */
    put("victim2", "victim2\n");
    ASSERT_EQ_INT(symlink("victim2", path("out.json.tmp")), 0);
    ASSERT_EQ_INT(write_out("out.json", 0, "{}\n", err, sizeof(err)), 0);
    ASSERT_TRUE(strcmp(get("victim2"), "victim2\n") == 0);
    ASSERT_TRUE(strcmp(get("out.json"), "{}\n") == 0);
    unlink(path("out.json.tmp"));
    ASSERT_EQ_INT(tmp_left(), 0);
}

static void test_not_regular(void)
{
    char err[8192];

    ASSERT_EQ_INT(moe_out_check("/dev/null", MOE_OUT_OVERWRITE, err, sizeof(err)), -1);
    ASSERT_STR_CONTAINS(err, "character device");
    ASSERT_EQ_INT(mkfifo(path("fifo"), 0600), 0);
    ASSERT_EQ_INT(moe_out_check(path("fifo"), MOE_OUT_OVERWRITE, err, sizeof(err)), -1);
    ASSERT_STR_CONTAINS(err, "FIFO");
    ASSERT_EQ_INT(write_out("fifo", 0, "x", err, sizeof(err)), -1);
    {
        struct stat sb;
        ASSERT_EQ_INT(lstat(path("fifo"), &sb), 0);
        ASSERT_TRUE(S_ISFIFO(sb.st_mode));
    }
    ASSERT_EQ_INT(moe_out_check(dir, MOE_OUT_OVERWRITE, err, sizeof(err)), -1);
    ASSERT_STR_CONTAINS(err, "directory");
    ASSERT_EQ_INT(moe_out_check(path("no-such-dir/x"), 0, err, sizeof(err)), -1);
    ASSERT_STR_CONTAINS(err, "no-such-dir");
    /* a link to a device, even when links are allowed */
    ASSERT_EQ_INT(symlink("/dev/null", path("devlink")), 0);
    ASSERT_EQ_INT(moe_out_check(path("devlink"), MOE_OUT_FOLLOW | MOE_OUT_OVERWRITE, err,
                                sizeof(err)), -1);
    ASSERT_STR_CONTAINS(err, "character device");
}

static void test_same(void)
{
    char a[600], b[600];

    put("same", "s\n");
    snprintf(a, sizeof(a), "%s/./same", dir);
    ASSERT_EQ_INT(moe_path_same(path("same"), a), 1);
    ASSERT_EQ_INT(link(path("same"), path("hard")), 0);
    ASSERT_EQ_INT(moe_path_same(path("same"), path("hard")), 1);
    ASSERT_EQ_INT(moe_path_same(path("same"), path("victim")), 0);
    /* neither exists: the same directory and name */
    snprintf(a, sizeof(a), "%s/../%s/ghost", dir, strrchr(dir, '/') + 1);
    snprintf(b, sizeof(b), "%s/ghost", dir);
    ASSERT_EQ_INT(moe_path_same(a, b), 1);
    ASSERT_EQ_INT(moe_path_same(b, path("ghost2")), 0);
}

static void test_lock(void)
{
    char  err[8192], other[256];
    int   fd = -1, fd2 = -1, st = 0;
    pid_t pid;

    ASSERT_EQ_INT(moe_out_lock(path("t.h5"), "host here pid 1", &fd, err, sizeof(err)), 0);
    /* flock is per open file: even this process sees the lock through a new open */
    ASSERT_EQ_INT(moe_out_locked(path("t.h5"), other, sizeof(other)), 1);
    ASSERT_TRUE(strcmp(other, "host here pid 1") == 0);
    pid = fork();
    if (pid == 0) {
        int c = -1;
        char e[8192];
        int held = moe_out_locked(path("t.h5"), other, sizeof(other));
        int r = moe_out_lock(path("t.h5"), "host there pid 2", &c, e, sizeof(e));
        _exit(held == 1 && strcmp(other, "host here pid 1") == 0 && r == -1 &&
              strstr(e, "in use by another run (host here pid 1") ? 0 : 1);
    }
    ASSERT_TRUE(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    moe_out_unlock(path("t.h5"), &fd);
    ASSERT_EQ_INT(fd, -1);
    ASSERT_EQ_INT(access(path("t.h5.lock"), F_OK), -1);
    ASSERT_EQ_INT(moe_out_lock(path("t.h5"), "again", &fd2, err, sizeof(err)), 0);
    moe_out_unlock(path("t.h5"), &fd2);
    /* a lock file that is a link is refused */
    ASSERT_EQ_INT(symlink("victim", path("l.h5.lock")), 0);
    ASSERT_EQ_INT(moe_out_lock(path("l.h5"), "x", &fd, err, sizeof(err)), -1);
    ASSERT_TRUE(strcmp(get("victim"), "through\n") == 0);
}

static void test_full_device(void)
{
    moe_out_t o;
    char      err[8192], big[65536];
    FILE     *f = fopen("/dev/full", "w");

    /* a full device under a stream: the error is seen at flush */
    if (f != NULL) {
        fputs("x", f);
        ASSERT_TRUE(fflush(f) != 0 || ferror(f));
        fclose(f);
    }
    /* a write that fails before commit leaves the old file and no temporary */
    put("keep", "keep\n");
    ASSERT_EQ_INT(moe_out_open(&o, path("keep"), 0, err, sizeof(err)), 0);
    memset(big, 'a', sizeof(big));
    fwrite(big, 1, sizeof(big), o.f);
    moe_out_abort(&o);
    ASSERT_TRUE(strcmp(get("keep"), "keep\n") == 0);
    ASSERT_EQ_INT(tmp_left(), 0);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "%s/moe-fileio.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR")
                                                                        : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN_TEST(test_plain_and_replace);
    RUN_TEST(test_links);
    RUN_TEST(test_not_regular);
    RUN_TEST(test_same);
    RUN_TEST(test_lock);
    RUN_TEST(test_full_device);
    {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    TEST_MAIN_END();
}
