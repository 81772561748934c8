/*
 * moerun/status.h — the one status type of moerun.
 *
 * Every fallible function returns moe_status_t: 0 is success, every error is negative.
 * The list below is the only place a status is defined; the enum and the message table
 * are both generated from it, so they cannot drift apart. Errors of MPI, HDF5, BLAS and
 * the C library are translated into one of these at the edge of the module that calls them,
 * with the detail kept as text in the caller's moe_log_t (see base/log.h).
 */
#ifndef MOERUN_STATUS_H
#define MOERUN_STATUS_H

#define MOE_STATUS_MAP(X)                                                   \
    X(MOE_OK,              0, "success")                                    \
    X(MOE_ERR_INVALID,    -1, "invalid argument or configuration")          \
    X(MOE_ERR_NOMEM,      -2, "out of memory")                              \
    X(MOE_ERR_IO,         -3, "input/output error")                         \
    X(MOE_ERR_MPI,        -4, "MPI error")                                  \
    X(MOE_ERR_HDF5,       -5, "HDF5 error")                                 \
    X(MOE_ERR_INVARIANT,  -6, "internal invariant violated")                \
    X(MOE_ERR_UNSUPPORTED,-7, "unsupported operation")                      \
    X(MOE_ERR_NOT_FOUND,  -8, "not found")                                  \
    X(MOE_ERR_INTERRUPTED,-9, "interrupted by signal")

typedef enum {
#define MOE__STATUS_ENUM(name, value, text) name = (value),
    MOE_STATUS_MAP(MOE__STATUS_ENUM)
#undef MOE__STATUS_ENUM
} moe_status_t;

/* Human-readable text for a status; never NULL. */
static inline const char *moe_status_str(moe_status_t status)
{
    switch (status) {
#define MOE__STATUS_CASE(name, value, text) case name: return text;
    MOE_STATUS_MAP(MOE__STATUS_CASE)
#undef MOE__STATUS_CASE
    }
    return "unknown status";
}

#endif /* MOERUN_STATUS_H */
