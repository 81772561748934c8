/*
 * moerun/base/mpicheck.h — every MPI call goes through MOE_MPI_CHECK.
 *
 * On failure the MPI error string, the rank, file and line become the context's last
 * error, and the enclosing function returns MOE_ERR_MPI (or jumps to a label with
 * MOE_MPI_CHECK_GOTO, for functions that unwind). moe_mpi_agree() is the one way ranks
 * agree on the outcome of a collective operation.
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

/*
 * Status agreement across ranks (collective over comm): every rank returns the worst (most
 * negative) of all ranks' statuses, so all ranks fail or none. A rank that was fine but
 * learns of another rank's failure records "<what>: failed on another rank (<status>)" in
 * log (what may be NULL: no prefix). If the reduction itself fails: MOE_ERR_MPI.
 */
static inline moe_status_t moe_mpi_agree(MPI_Comm comm, moe_status_t st, moe_log_t *log,
                                         const char *what)
{
    int mine = (int)st, worst = mine;

    if (MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        worst = MOE_ERR_MPI;
    if (worst != MOE_OK && mine == MOE_OK)
        moe_log_set_error(log, __FILE__, __LINE__, "%s%sfailed on another rank (%s)",
                          what ? what : "", what ? ": " : "",
                          moe_status_str((moe_status_t)worst));
    return (moe_status_t)worst;
}

#endif /* MOERUN_BASE_MPICHECK_H */
