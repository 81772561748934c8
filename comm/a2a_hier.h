/*
 * comm/a2a_hier.h — internal: the hierarchical exchange with a pluggable inter-node transport.
 *
 * There is one hierarchical algorithm (comm/a2a_hier.c). Its inter-node stage — the A-unit
 * exchange of dispatch and the A-return vectors of combine — goes through a transport
 * table, moe__hier_transport_t; the intra-node stages always use MPI. Backends built on it:
 *   hier  (comm/a2a_hier.c): the transport is MPI point to point (non-empty blocks only,
 *                            at most params.window peers in flight);
 *   ucx   (comm/a2a_ucx.c):  the transport is UCP one-sided puts with an atomic arrival signal.
 *
 * A transport moves an alltoallv-shaped exchange (moe__hier_xfer_t) whose counts are already
 * known on both sides (the algorithm exchanges them first over MPI). Always:
 *  1. exchange_units and exchange_vectors are collective over the algorithm's communicator and
 *     are called in the same order on every rank;
 *  2. on return, every byte addressed to this rank is in place at *rdata_p, laid out by
 *     xfer->rdsp (the rows of a two-part transfer at *xfer->rrows_p), and stays valid until
 *     the next call of the same function (units and vectors use separate receive space);
 *  3. the send buffer may be reused as soon as the call returns.
 * Not for use outside comm/.
 */
#ifndef MOERUN_COMM_A2A_HIER_H
#define MOERUN_COMM_A2A_HIER_H

#include <stddef.h>

#include "a2a.h"

/* A growable heap buffer, freed by the owner with moe__hier_buf_free. opaque = 1 (set before
 * the first grow): a row buffer under params.rows_opaque, never touched (SMPI: shared between
 * simulated ranks, comm/a2a_common.h), its contents not kept when it grows. */
typedef struct moe__hier_buf {
    void  *p;
    size_t cap;
    int    opaque;
} moe__hier_buf_t;

/* Ensures b holds at least `bytes` bytes (contents kept unless opaque). Returns 0, or -1 out
 * of memory. */
int  moe__hier_buf_grow(moe__hier_buf_t *b, size_t bytes);
void moe__hier_buf_free(moe__hier_buf_t *b);

/* One alltoallv-shaped transfer; counts and displacements in elements of `elem` bytes. */
typedef struct moe__hier_xfer {
    const void  *sbuf;
    const int   *scnt, *sdsp;  /* [P] elements to each rank, offsets in sbuf */
    const int   *rcnt, *rdsp;  /* [P] elements from each rank, offsets in the receive space */
    size_t       rtotal;       /* elements received in all */
    size_t       elem;         /* bytes per element */
    MPI_Datatype type;         /* MPI type of one element (MPI_BYTE, MPI_FLOAT) */
    int          unit;         /* elements per unit (chunked form, or rows set); pieces split
                                * blocks at unit boundaries (moe__hier_piece) */
    /* Optional second part, moved with the first (rows == NULL: none): the rows of the units
     * (dispatch's units carry their metadata in the first part), `row` floats per unit; the
     * rows of block r are those of block r's units, in the same order, so its counts and
     * offsets are the first part's / unit * row floats. The transport puts the received rows
     * at *rrows_p, laid out the same way; rrows is heap space it may use for them (the
     * rows' own, e.g. opaque: a transport that copies rows skips it when rrows->opaque). */
    const float     *rows;
    int              row;
    moe__hier_buf_t *rrows;
    float          **rrows_p;
} moe__hier_xfer_t;

/* Chunked form: the block of n units between two ranks is cut into `nchunk` pieces; piece c
 * holds units [moe__hier_piece(n, c, nchunk), moe__hier_piece(n, c + 1, nchunk)). */
static inline int moe__hier_piece(int n, int c, int nchunk)
{
    return (int)((int64_t)n * c / nchunk);
}

/* Everything a transport is given at init; the arrays are borrowed from the algorithm. */
typedef struct moe__hier_env {
    MPI_Comm   comm;           /* the algorithm's (already duplicated) communicator */
    int        nranks, rank;
    const int *node;           /* [nranks] node id of each rank */
    moe_log_t *log;
    int        window;         /* chunked form: (piece, peer) transfers a rank has in flight
                                * per id at most (params.window; 0: no bound) */
} moe__hier_env_t;

typedef struct moe__hier_transport {
    const char *name;
    /* Collective. Allocates the transport state *tp_p; freed by cleanup. */
    moe_status_t (*init)(const moe__hier_env_t *env, void **tp_p);
    /* Collective. Moves xfer; received units at *rdata_p. rbuf is heap space the transport
     * may use for them (grown as needed, owned by the algorithm). */
    moe_status_t (*exchange_units)(void *tp, const moe__hier_xfer_t *xfer,
                                   moe__hier_buf_t *rbuf, void **rdata_p);
    /* Collective. As exchange_units, for the return vectors, into separate receive space. */
    moe_status_t (*exchange_vectors)(void *tp, const moe__hier_xfer_t *xfer,
                                     moe__hier_buf_t *rbuf, void **rdata_p);
    /* Collective on success paths; releases everything init made. NULL is accepted. */
    void (*cleanup)(void *tp);
    /* Chunked, nonblocking form (all four NULL: the algorithm does not pipeline over this
     * transport). `id` 0 is the unit space (dispatch), 1 the vector space (combine); one
     * transfer per id at a time, its xfer and send buffer kept valid until finish.
     *  start       collective: prepares xfer in nchunk pieces (receive space at *rdata_p,
     *              grown into rbuf as needed, as exchange_units/vectors); sends nothing;
     *  send_chunk  sends piece c to every rank (every rank calls it for c = 0..nchunk-1, in
     *              order; the pieces may be sent at different times);
     *  test_chunk  progresses; *done = 1 once piece c from every source is in place;
     *  finish      collective: every piece sent and received; the send buffer is free. */
    moe_status_t (*start)(void *tp, int id, const moe__hier_xfer_t *xfer, int nchunk,
                          moe__hier_buf_t *rbuf, void **rdata_p);
    moe_status_t (*send_chunk)(void *tp, int id, int c);
    moe_status_t (*test_chunk)(void *tp, int id, int c, int *done);
    moe_status_t (*finish)(void *tp, int id);
} moe__hier_transport_t;

/* The algorithm, parameterised by its inter-node transport (the ops of a backend). */
moe_status_t moe__a2a_hier_create(const moe_a2a_params_t *params,
                                  const moe__hier_transport_t *inter, void **ctx_p);
moe_status_t moe__a2a_hier_dispatch(void *ctx, const moe_a2a_plan_t *plan, const float *x,
                                    moe_expert_batch_t *batch, moe_a2a_stats_t *st);
moe_status_t moe__a2a_hier_combine(void *ctx, const moe_a2a_plan_t *plan,
                                   const moe_expert_batch_t *batch, float *out,
                                   moe_a2a_stats_t *st);
void         moe__a2a_hier_destroy(void *ctx);

#endif /* MOERUN_COMM_A2A_HIER_H */
