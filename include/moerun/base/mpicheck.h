/*
 * moerun/base/mpicheck.h — every MPI call goes through MOE_MPI_CHECK.
 *
 * On failure the MPI error string, the rank, file and line become the context's last
 * error, and the enclosing function returns MOE_ERR_MPI (or jumps to a label with
 * MOE_MPI_CHECK_GOTO, for functions that unwind).
 */
#ifndef MOERUN_BASE_MPICHECK_H
#define MOERUN_BASE_MPICHECK_H

#include <mpi.h>

#include "moerun/base/log.h"

static inline moe_status_t moe__mpi_status(moe_log_t *log, int rc, const char *call,
                                           const char *file, int line)
{
    char msg[MPI_MAX_ERROR_STRING];
    int  len = 0;

    if (rc == MPI_SUCCESS)
        return MOE_OK;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof(msg), "error code %d", rc);
    moe_log_set_error(log, file, line, "%s failed on rank %d (%s:%d): %s", call,
                      log ? log->rank : -1, file, line, msg);
    return MOE_ERR_MPI;
}

#define MOE_MPI_CHECK(log, call)                                                    \
    do {                                                                            \
        int moe__rc = (call);                                                       \
        if (moe__rc != MPI_SUCCESS)                                                 \
            return moe__mpi_status((log), moe__rc, #call, __FILE__, __LINE__);      \
    } while (0)

#define MOE_MPI_CHECK_GOTO(log, call, st, label)                                    \
    do {                                                                            \
        int moe__rc = (call);                                                       \
        if (moe__rc != MPI_SUCCESS) {                                               \
            (st) = moe__mpi_status((log), moe__rc, #call, __FILE__, __LINE__);      \
            goto label;                                                             \
        }                                                                           \
    } while (0)

#endif /* MOERUN_BASE_MPICHECK_H */
