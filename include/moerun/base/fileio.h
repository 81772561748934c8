/*
 * include/moerun/base/fileio.h — how every moerun tool writes an output file (header-only).
 *
 * What always holds for a file written through moe_out_open/moe_out_commit (the summary
 * JSON, the output dump, moerun-analyze's reports, moerun-import's output):
 *  1. It is written under a temporary name in the target's own directory, created with
 *     O_CREAT|O_EXCL|O_NOFOLLOW and an unpredictable suffix (PATH.tmp.<16 hex digits>), so
 *     no link planted at a guessable name is followed and no other file is touched.
 *  2. It is flushed, fsync'ed and then renamed over the target: the target is either the old
 *     file or the complete new one, never half-written. On any failure the temporary file is
 *     removed.
 *  3. A target that exists and is not a regular file (a device, a FIFO, a directory) is
 *     refused; a target that is a symbolic link is refused unless MOE_OUT_FOLLOW is given,
 *     then the file the link names is replaced (the link stays).
 *  4. Created files get mode 0664 & ~umask: never world-writable.
 * moe_out_check() makes the same checks without writing, so that tools refuse a bad output
 * path before doing any work; moe_path_same() finds two names for one file (an output that
 * names an input or another output). moe_out_lock() is the lock a long-running writer (the
 * telemetry file) holds next to its file (PATH.lock, flock'ed, holding "host pid").
 * Every function returns 0 on success or -1 with one line in err (which names the path).
 */
#ifndef MOERUN_BASE_FILEIO_H
#define MOERUN_BASE_FILEIO_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* realpath is XSI: declared by glibc only beyond the project's _POSIX_C_SOURCE */
#if defined(__GLIBC__) && !defined(__USE_MISC) && !defined(__USE_XOPEN_EXTENDED)
extern char *realpath(const char *__restrict name, char *__restrict resolved);
#endif

#define MOE_OUT_FOLLOW    1u /* a symbolic link as target is allowed: its file is replaced */
#define MOE_OUT_OVERWRITE 2u /* an existing regular file may be replaced (moe_out_check) */
#define MOE_OUT_PATH_MAX  4096

/* fopen(path, mode) for writing ("w" or "wb"), created 0664 & ~umask instead of 0666. */
static inline FILE *moe_fopen_nowo(const char *path, const char *mode)
{
    int   fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0664);
    FILE *f;

    if (fd < 0)
        return NULL;
    if ((f = fdopen(fd, mode)) == NULL)
        close(fd);
    return f;
}

static inline void moe__out_say(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void moe__out_say(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || n == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

/* The directory part of path ("." without a slash, "/" for a file in the root). */
static inline void moe_path_dirname(const char *path, char *dir, size_t len)
{
    char *slash;

    snprintf(dir, len, "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, len, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
}

/* What kind of file st is, in words. */
static inline const char *moe__out_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
         : S_ISLNK(m) ? "a symbolic link" : "not a regular file";
}

/*
 * The file an output path will replace, in *real (MOE_OUT_PATH_MAX bytes): path itself, or
 * with MOE_OUT_FOLLOW and a link at path, the file the link names. Checks rule 3 above and,
 * without MOE_OUT_OVERWRITE, that no file exists there; *exists_p says whether one does.
 */
static inline int moe__out_target(const char *path, unsigned flags, char *real, int *exists_p,
                                  char *err, size_t n)
{
    struct stat sb;

    *exists_p = 0;
    if (path == NULL || path[0] == '\0' || strlen(path) >= MOE_OUT_PATH_MAX - 32) {
        moe__out_say(err, n, "'%s': empty or too long path", path ? path : "");
        return -1;
    }
    snprintf(real, MOE_OUT_PATH_MAX, "%s", path);
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        moe__out_say(err, n, "'%s': %s", path, strerror(errno));
        return -1;
    }
    if (S_ISLNK(sb.st_mode)) {
        if (!(flags & MOE_OUT_FOLLOW)) {
            moe__out_say(err, n, "'%s' is a symbolic link; refusing to write through it "
                         "(--follow-symlinks allows it)", path);
            return -1;
        }
        if (realpath(path, real) == NULL) {
            moe__out_say(err, n, "'%s' is a symbolic link to a file that cannot be resolved: %s",
                         path, strerror(errno));
            return -1;
        }
        if (stat(real, &sb) != 0) {
            moe__out_say(err, n, "'%s' -> '%s': %s", path, real, strerror(errno));
            return -1;
        }
    }
    if (!S_ISREG(sb.st_mode)) {
        moe__out_say(err, n, "'%s' exists and is %s; refusing to replace it", path,
                     moe__out_kind(sb.st_mode));
        return -1;
    }
    if (!(flags & MOE_OUT_OVERWRITE)) {
        moe__out_say(err, n, "'%s' exists; refusing to overwrite it (--overwrite allows it)",
                     path);
        return -1;
    }
    *exists_p = 1;
    return 0;
}

/* The directory of `real` must exist and be writable. */
static inline int moe__out_dir(const char *path, const char *real, char *err, size_t n)
{
    char        dir[MOE_OUT_PATH_MAX];
    struct stat sb;

    moe_path_dirname(real, dir, sizeof(dir));
    if (stat(dir, &sb) != 0) {
        moe__out_say(err, n, "cannot create '%s': directory '%s': %s", path, dir,
                     strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        moe__out_say(err, n, "cannot create '%s': '%s' is not a directory", path, dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        moe__out_say(err, n, "cannot create '%s': directory '%s' is not writable: %s", path, dir,
                     strerror(errno));
        return -1;
    }
    return 0;
}

/* Checks, without writing, that path can be written as an output (see the top). */
static inline int moe_out_check(const char *path, unsigned flags, char *err, size_t n)
{
    char real[MOE_OUT_PATH_MAX];
    int  exists;

    if (moe__out_target(path, flags, real, &exists, err, n) != 0)
        return -1;
    return moe__out_dir(path, real, err, n);
}

/*
 * 1 if a and b name the same file: the same device and inode when both exist (after links),
 * else the same canonical directory and the same last component. 0 otherwise.
 */
static inline int moe_path_same(const char *a, const char *b)
{
    struct stat sa, sb;
    char        da[MOE_OUT_PATH_MAX], db[MOE_OUT_PATH_MAX];
    char        ra[PATH_MAX], rb[PATH_MAX];
    const char *ba, *bb;

    if (a == NULL || b == NULL || !a[0] || !b[0])
        return 0;
    if (strcmp(a, b) == 0)
        return 1;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    moe_path_dirname(a, da, sizeof(da));
    moe_path_dirname(b, db, sizeof(db));
    ba = strrchr(a, '/') ? strrchr(a, '/') + 1 : a;
    bb = strrchr(b, '/') ? strrchr(b, '/') + 1 : b;
    if (strcmp(ba, bb) != 0 || realpath(da, ra) == NULL || realpath(db, rb) == NULL)
        return 0;
    return strcmp(ra, rb) == 0;
}

/* One output being written; moe_out_commit or moe_out_abort ends it. */
typedef struct moe_out {
    char  path[MOE_OUT_PATH_MAX]; /* as given, for messages */
    char  real[MOE_OUT_PATH_MAX]; /* the file replaced at commit */
    char  tmp[MOE_OUT_PATH_MAX];  /* the temporary name; "" when none exists */
    FILE *f;                      /* open on tmp (moe_out_open), or NULL (moe_out_create) */
} moe_out_t;

/*
 * Creates o->tmp exclusively next to the target, empty, and closes it: for writers that open
 * files by name (HDF5). The caller writes it, then calls moe_out_commit or moe_out_abort.
 */
static inline int moe_out_create(moe_out_t *o, const char *path, unsigned flags, char *err,
                                 size_t n)
{
    unsigned char rnd[8];
    int           exists, fd = -1, tries, i;
    size_t        len;

    memset(o, 0, sizeof(*o));
    snprintf(o->path, sizeof(o->path), "%s", path ? path : "");
    if (moe__out_target(path, flags | MOE_OUT_OVERWRITE, o->real, &exists, err, n) != 0 ||
        moe__out_dir(path, o->real, err, n) != 0)
        return -1;
    for (tries = 0; tries < 16 && fd < 0; tries++) {
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            /* no entropy source: time and address bits, still checked by O_EXCL */
            unsigned long long v = (unsigned long long)time(NULL) ^
                                   ((unsigned long long)getpid() << 20) ^
                                   (unsigned long long)(uintptr_t)o ^ (unsigned long long)tries;
            memcpy(rnd, &v, sizeof(rnd));
        }
        len = (size_t)snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.", o->real);
        for (i = 0; i < 8 && len + 2 < sizeof(o->tmp); i++)
            len += (size_t)snprintf(o->tmp + len, sizeof(o->tmp) - len, "%02x", rnd[i]);
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0664);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        moe__out_say(err, n, "cannot create '%s' (temporary file next to it): %s", path,
                     strerror(errno));
        o->tmp[0] = '\0';
        return -1;
    }
    close(fd);
    return 0;
}

/* As moe_out_create, and opens o->f on the temporary file for writing. */
static inline int moe_out_open(moe_out_t *o, const char *path, unsigned flags, char *err,
                               size_t n)
{
    int fd;

    if (moe_out_create(o, path, flags, err, n) != 0)
        return -1;
    fd = open(o->tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || (o->f = fdopen(fd, "w")) == NULL) {
        moe__out_say(err, n, "cannot write '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(o->tmp);
        o->tmp[0] = '\0';
        return -1;
    }
    return 0;
}

/* Removes the temporary file; the target is left as it was. */
static inline void moe_out_abort(moe_out_t *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp[0])
        unlink(o->tmp);
    o->tmp[0] = '\0';
}

/*
 * Flushes, syncs and closes the temporary file and renames it over the target (and syncs the
 * directory). On failure the temporary file is removed and the target left as it was.
 */
static inline int moe_out_commit(moe_out_t *o, char *err, size_t n)
{
    char dir[MOE_OUT_PATH_MAX];
    int  fd, rc = 0, e = 0;

    if (o->tmp[0] == '\0') {
        moe__out_say(err, n, "cannot write '%s': no temporary file", o->path);
        return -1;
    }
    if (o->f) {
        if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0)
            rc = -1, e = errno ? errno : EIO;
        if (fclose(o->f) != 0 && rc == 0)
            rc = -1, e = errno;
        o->f = NULL;
    } else {
        fd = open(o->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0)
            rc = -1, e = errno;
        if (fd >= 0)
            close(fd);
    }
    if (rc == 0 && rename(o->tmp, o->real) != 0)
        rc = -1, e = errno;
    if (rc != 0) {
        moe__out_say(err, n, "cannot write '%s': %s", o->path, strerror(e));
        unlink(o->tmp);
        o->tmp[0] = '\0';
        return -1;
    }
    o->tmp[0] = '\0';
    moe_path_dirname(o->real, dir, sizeof(dir));
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    return 0;
}

/*
 * Takes the lock of a file written for a long time: PATH.lock, created if needed (never
 * through a link), flock'ed exclusively and holding "host HOST pid PID". When another
 * process holds it, returns -1 with err naming that process. *fd_p is released by
 * moe_out_unlock. `who` is written into the lock (e.g. "host n1 pid 42").
 */
static inline int moe_out_lock(const char *path, const char *who, int *fd_p, char *err, size_t n)
{
    char        lk[MOE_OUT_PATH_MAX + 8], other[256];
    struct stat a, b;
    int         fd, tries;
    ssize_t     got;

    *fd_p = -1;
    snprintf(lk, sizeof(lk), "%s.lock", path);
    for (tries = 0; tries < 8; tries++) {
        fd = open(lk, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0664);
        if (fd < 0) {
            moe__out_say(err, n, "'%s': cannot create the lock file '%s': %s", path, lk,
                         strerror(errno));
            return -1;
        }
        if (fstat(fd, &a) != 0 || !S_ISREG(a.st_mode) || a.st_nlink != 1 ||
            a.st_uid != geteuid()) {
            moe__out_say(err, n, "'%s': the lock file '%s' is not a regular file of ours; "
                         "remove it", path, lk);
            close(fd);
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            got = pread(fd, other, sizeof(other) - 1, 0);
            other[got > 0 ? got : 0] = '\0';
            other[strcspn(other, "\n")] = '\0';
            close(fd);
            if (e == EWOULDBLOCK)
                moe__out_say(err, n, "'%s' is in use by another run (%s; lock '%s')", path,
                             other[0] ? other : "unknown process", lk);
            else
                moe__out_say(err, n, "'%s': cannot lock '%s': %s", path, lk, strerror(e));
            return -1;
        }
        /* the file we locked must still be the one at lk (a finishing run unlinks it) */
        if (stat(lk, &b) == 0 && b.st_dev == a.st_dev && b.st_ino == a.st_ino)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        moe__out_say(err, n, "'%s': cannot lock '%s': it keeps changing", path, lk);
        return -1;
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, who, strlen(who), 0) < 0 ||
        pwrite(fd, "\n", 1, (off_t)strlen(who)) < 0) {
        /* the lock is held; its text is only for the message of a second run */
    }
    *fd_p = fd;
    return 0;
}

/* Whether another process holds PATH.lock (its "host pid" text in other): 1 held, 0 not. */
static inline int moe_out_locked(const char *path, char *other, size_t n)
{
    char    lk[MOE_OUT_PATH_MAX + 8];
    int     fd, held = 0;
    ssize_t got;

    snprintf(lk, sizeof(lk), "%s.lock", path);
    if ((fd = open(lk, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        held = 1;
        got = n > 0 ? pread(fd, other, n - 1, 0) : 0;
        if (n > 0) {
            other[got > 0 ? got : 0] = '\0';
            other[strcspn(other, "\n")] = '\0';
        }
    }
    close(fd); /* releases a shared lock taken above */
    return held;
}

/* Releases a lock taken by moe_out_lock and removes the lock file. */
static inline void moe_out_unlock(const char *path, int *fd_p)
{
    char lk[MOE_OUT_PATH_MAX + 8];

    if (*fd_p < 0)
        return;
    snprintf(lk, sizeof(lk), "%s.lock", path);
    unlink(lk);
    close(*fd_p);
    *fd_p = -1;
}

/*
 * getline with a bound, for inputs from elsewhere: one line (NUL bytes included, newline
 * kept) of at most max bytes in *buf (realloc'd; the caller frees it). Returns the length,
 * -1 at the end of the input, -2 for a line longer than max (or no memory): a 100 MB line or
 * /dev/zero costs at most max bytes.
 */
static inline ssize_t moe_getline_max(char **buf, size_t *cap, size_t max, FILE *fp)
{
    size_t n = 0;
    int    ch;

    for (;;) {
        if (n + 2 > *cap) {
            size_t ncap = *cap < 4096 ? 4096 : *cap * 2;
            char  *q;
            if (n >= max)
                return -2;
            if (ncap > max + 2)
                ncap = max + 2;
            if ((q = realloc(*buf, ncap)) == NULL)
                return -2;
            *buf = q;
            *cap = ncap;
        }
        if ((ch = getc_unlocked(fp)) == EOF)
            break;
        (*buf)[n++] = (char)ch;
        if (ch == '\n')
            break;
    }
    if (n == 0)
        return -1;
    (*buf)[n] = '\0';
    return (ssize_t)n;
}

/* 0 if path is a regular file or a FIFO (inputs read to their end); else -1 and why. */
static inline int moe_in_check(const char *path, char *err, size_t n)
{
    struct stat sb;

    if (stat(path, &sb) != 0) {
        moe__out_say(err, n, "'%s': %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode)) {
        moe__out_say(err, n, "'%s': not a regular file or FIFO (%s)", path,
                     moe__out_kind(sb.st_mode));
        return -1;
    }
    return 0;
}

#endif /* MOERUN_BASE_FILEIO_H */
