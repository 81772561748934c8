/*
 * moerun/base/log.h — levelled logging with a rank prefix, and the last-error text.
 *
 * There is no global logger: each engine owns one moe_log_t and hands a pointer to the
 * modules it drives. Messages go to stderr as "moerun[rank]: level: text". Rank 0 speaks at
 * info level; other ranks are quiet unless the level is debug. MOE_ERROR_SET records the
 * message as the context's last error (what moe_engine_last_error() returns) and logs it at
 * debug level only, because errors are reported once, by rank 0, at the top.
 */
#ifndef MOERUN_BASE_LOG_H
#define MOERUN_BASE_LOG_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "moerun/status.h"

typedef enum {
    MOE_LOG_ERROR = 0,
    MOE_LOG_WARN  = 1,
    MOE_LOG_INFO  = 2,
    MOE_LOG_DEBUG = 3
} moe_log_level_t;

#define MOE_ERRMSG_MAX 512

typedef struct moe_log {
    int             rank;                       /* rank in the engine's communicator */
    moe_log_level_t level;                      /* messages above this are dropped */
    char            last_error[MOE_ERRMSG_MAX]; /* text of the most recent MOE_ERROR_SET */
} moe_log_t;

static inline void moe_log_init(moe_log_t *log, int rank, moe_log_level_t level)
{
    log->rank = rank;
    log->level = level;
    log->last_error[0] = '\0';
}

static inline int moe_log_enabled(const moe_log_t *log, moe_log_level_t level)
{
    if (log == NULL)
        return level <= MOE_LOG_WARN;
    if (level > log->level)
        return 0;
    /* Non-zero ranks speak only for errors and at debug level. */
    return log->rank == 0 || level == MOE_LOG_ERROR || log->level >= MOE_LOG_DEBUG;
}

static inline void moe_log_write(const moe_log_t *log, moe_log_level_t level,
                                 const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static inline void moe_log_write(const moe_log_t *log, moe_log_level_t level,
                                 const char *file, int line, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    char    buf[1024];
    va_list ap;

    if (!moe_log_enabled(log, level))
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (level >= MOE_LOG_DEBUG)
        fprintf(stderr, "moerun[%d]: %s: %s (%s:%d)\n", log ? log->rank : -1, names[level],
                buf, file, line);
    else
        fprintf(stderr, "moerun[%d]: %s: %s\n", log ? log->rank : -1, names[level], buf);
}

/* Records an error text in log->last_error (printf-style). Returns nothing. */
static inline void moe_log_set_error(moe_log_t *log, const char *file, int line,
                                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline void moe_log_set_error(moe_log_t *log, const char *file, int line,
                                     const char *fmt, ...)
{
    va_list ap;

    if (log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(log->last_error, sizeof(log->last_error), fmt, ap);
    va_end(ap);
    moe_log_write(log, MOE_LOG_DEBUG, file, line, "%s", log->last_error);
}

/* Writes one error line (printf-style) into a caller's buffer err[errlen]; nothing when err
 * is NULL or errlen 0. The "char *err, size_t errlen" convention of the config, placement
 * and planner APIs. */
static inline void moe_say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void moe_say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#define MOE_LOG(log, lvl, ...)   moe_log_write((log), (lvl), __FILE__, __LINE__, __VA_ARGS__)
#define MOE_ERROR(log, ...)      MOE_LOG(log, MOE_LOG_ERROR, __VA_ARGS__)
#define MOE_WARN(log, ...)       MOE_LOG(log, MOE_LOG_WARN, __VA_ARGS__)
#define MOE_INFO(log, ...)       MOE_LOG(log, MOE_LOG_INFO, __VA_ARGS__)
#define MOE_DEBUG(log, ...)      MOE_LOG(log, MOE_LOG_DEBUG, __VA_ARGS__)

/* Sets the last error and evaluates to `status`: `return MOE_ERROR_SET(log, st, "...")`. */
#define MOE_ERROR_SET(log, status, ...) \
    (moe_log_set_error((log), __FILE__, __LINE__, __VA_ARGS__), (status))

#endif /* MOERUN_BASE_LOG_H */
