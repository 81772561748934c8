/*
 * comm/a2a.h — token exchange (dispatch and combine) behind one ops table.
 *
 * The runtime decides, for each local (token, slot) pair, which rank and which of that
 * rank's local experts receives it, or that it is dropped (moe_a2a_plan_t). A backend
 * moves the rows there, hands the experts their inputs grouped per local expert
 * (moe_expert_batch_t), and after expert compute brings the outputs back and adds
 * weight * output into the token's output row. Backends: flat (MPI_Alltoallv), hier
 * (node-deduplicated two stages over MPI), 2dh (Tutel-style two hops: intra-node to a relay,
 * then inter-node along a rail; comm/a2a_2dh.c) and ucx (hier with the inter-node stage over
 * UCX UCP; see comm/a2a_hier.h). comm/ knows nothing of runtime/.
 *
 * Always true, for every backend:
 *  1. every pair with dest_rank >= 0 is delivered exactly once to (dest_rank, dest_expert);
 *  2. a dropped pair (dest_rank < 0) sends nothing and contributes nothing;
 *  3. combine adds w_j * y_j of every kept slot of a token into its output row.
 * flat and 2dh also deliver the rows of one expert ordered by (source rank, source slot
 * position) and add the k contributions in slot order j = 0..k-1, so their output is bitwise
 * independent of the number of ranks and of each other. hier and ucx reduce inside the
 * destination node first (that is how they save bytes), so their rows arrive grouped by
 * forwarder and their sums differ from flat's in the last bits (relative ~1e-7).
 */
#ifndef MOERUN_COMM_A2A_H
#define MOERUN_COMM_A2A_H

#include <mpi.h>
#include <stdint.h>

#include "moerun/base/log.h"

/* Where each local (token, slot) pair goes; index p = t * k + j. */
typedef struct moe_a2a_plan {
    int            tokens;      /* T local tokens */
    int            top_k;       /* k slots per token */
    const int32_t *dest_rank;   /* [T*k] destination rank, -1 = dropped */
    const int32_t *dest_expert; /* [T*k] local expert index at the destination */
    const float   *weight;      /* [T*k] combine weight */
} moe_a2a_plan_t;

/* Expert inputs and outputs on the receiving rank, grouped per local expert. */
typedef struct moe_expert_batch {
    int            n_local;  /* experts held by this rank */
    const int64_t *offset;   /* [n_local + 1] first row of each expert; offset[n_local] = rows */
    float         *x;        /* [rows][d] inputs */
    float         *y;        /* [rows][d] outputs, written by the experts before combine */
} moe_expert_batch_t;

/* Per-call accounting, filled by dispatch and combine (added to, never reset). */
typedef struct moe_a2a_stats {
    double   t_counts;      /* seconds in the count exchange */
    double   t_dispatch;    /* seconds in the payload exchange of dispatch */
    double   t_combine;     /* seconds in combine (exchange and weighted sum) */
    double   t_dispatch_inter; /* of t_dispatch: seconds in the stage that carries inter-node
                                * payload (flat: its one MPI_Alltoallv; hier: the inter stage) */
    double   t_combine_inter;  /* of t_combine: the same for combine */
    double   t_expert;         /* forward only: seconds in expert compute */
    double   t_combine_wait;   /* of t_combine: waiting for other ranks' expert outputs, not
                                * moving them (a backend that overlaps combine with compute
                                * fills it; otherwise the caller times a barrier before it) */
    int64_t  bytes_sent, bytes_recv;   /* payload and count bytes, self excluded */
    int64_t  msgs_sent, msgs_recv;     /* non-empty point-to-point transfers, self excluded */
    int64_t  bytes_inter, msgs_inter;  /* of bytes_sent / msgs_sent: to ranks on other nodes */
    int64_t  bytes_intra, msgs_intra;  /* of bytes_sent / msgs_sent: to other ranks on this node */
    int64_t *bytes_to_rank; /* [nranks] payload bytes sent to each rank (self included); may be NULL */
} moe_a2a_stats_t;

/* Expert compute handed to an overlapping backend: y [rows][d] = expert(local_expert)(x).
 * Called from the thread that calls forward, never concurrently. */
typedef void (*moe_a2a_expert_fn)(void *arg, int local_expert, const float *x, int64_t rows,
                                  float *y);

typedef struct moe_a2a_params {
    MPI_Comm   comm;         /* duplicated by create */
    int        d_model;      /* floats per row */
    int        max_tokens;   /* upper bound on plan->tokens */
    int        top_k;
    const int *local_experts;/* [nranks] experts held by each rank */
    const int *node_of_rank; /* [nranks] node id of each rank (for hierarchical backends) */
    moe_log_t *log;          /* error text goes here */
    int        expert_block; /* forward: the expert callback may be called on pieces of this
                              * many rows without changing any result (0: whole experts) */
    int        inter_chunks; /* hier, ucx: pieces of the inter-node stage, pipelined with the
                              * intra-node stage (0 or 1: one piece, stages in sequence) */
    int64_t    max_rows_in;  /* rows this rank's experts can receive in a step at most (local
                              * experts x capacity), 0: unknown; a hint for sizing buffers */
    int        rows_opaque;  /* 1: row contents are never read (simulation model, runtime/sim.h):
                              * row buffers are left untouched (SMPI: shared between simulated
                              * ranks), rows are neither copied nor summed; counts, layouts,
                              * headers and messages are exactly those of 0 */
    int        window;       /* flat forward: transfers in flight per lane (0: 8); hier
                              * pipelined over MPI: inter-node piece transfers in flight per
                              * rank and direction (0: no bound) */
    long       idle_sleep_ns;/* flat forward: > 0, a blocking wait tests its requests and sleeps
                              * this long between tests instead of spinning in MPI (more ranks
                              * than cores: the waiting rank leaves its core to those computing;
                              * comm/slots.h); 0: MPI_Waitsome */
} moe_a2a_params_t;

typedef struct moe_a2a_ops {
    const char *name;
    const char *doc;
    /* Allocates the backend context (buffers sized from params). Freed by destroy. */
    moe_status_t (*create)(const moe_a2a_params_t *params, void **ctx_p);
    /* Exchanges counts, then rows. batch points into ctx buffers valid until the next dispatch. */
    moe_status_t (*dispatch)(void *ctx, const moe_a2a_plan_t *plan, const float *x,
                             moe_expert_batch_t *batch, moe_a2a_stats_t *st);
    /* Returns batch->y to the token owners; out[t] += weight * y in slot order. */
    moe_status_t (*combine)(void *ctx, const moe_a2a_plan_t *plan,
                            const moe_expert_batch_t *batch, float *out, moe_a2a_stats_t *st);
    /* Optional (NULL if the backend has none): dispatch, experts and combine in one call,
     * the exchange overlapped with expert compute; out[t] += weight * y in slot order, the
     * same sums in the same order as dispatch + experts + combine. Fills t_counts,
     * t_dispatch, t_expert, t_combine (and their parts) in st. */
    moe_status_t (*forward)(void *ctx, const moe_a2a_plan_t *plan, const float *x,
                            moe_a2a_expert_fn expert, void *arg, float *out, moe_a2a_stats_t *st);
    void (*destroy)(void *ctx);
} moe_a2a_ops_t;

/* The backend called `name`, or NULL. */
const moe_a2a_ops_t *moe_a2a_find(const char *name);

/* Names of all backends separated by '|', for messages and help. */
const char *moe_a2a_names(void);

extern const moe_a2a_ops_t moe_a2a_flat_ops;
extern const moe_a2a_ops_t moe_a2a_hier_ops;
extern const moe_a2a_ops_t moe_a2a_2dh_ops;
extern const moe_a2a_ops_t moe_a2a_ucx_ops;

#endif /* MOERUN_COMM_A2A_H */
