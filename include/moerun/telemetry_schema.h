/*
 * moerun/telemetry_schema.h — the one definition of the telemetry file's layout
 * (docs/telemetry.md): dimensions, element types, datasets (path, group, element type,
 * dimension names, units, description), the column lists of steps/router, steps/phase_time
 * and steps/traffic with a unit per column, the members of an event and the event kinds.
 *
 * The writer (runtime/telemetry.c), the reader (tools/reader/telemetry_reader.c, its
 * validation included) and the importer (tools/import/import.c) take every path, type,
 * shape, unit and label from here; the dataset table of docs/telemetry.md is generated from
 * it and a test (tests/unit/test_telemetry_schema.c) keeps the two in step. Header only: it
 * needs neither HDF5 nor MPI nor any moerun library.
 *
 * What always holds:
 *  1. Every dataset has one row in MOE_TEL_DATASET_MAP; its dimensions are named by
 *     MOE_TEL_DIM_MAP labels (written to the file as HDF5 dimension labels), and its rank is
 *     the number of dimensions given (MOE_TEL_DIM_NONE pads the row to four).
 *  2. A column dimension (stat, phase, counter) has exactly the columns of its X-macro, in
 *     that order; each column has a name and a unit. Column lists grow only by appending.
 *  3. Paths are unique and start with their group ("" for a dataset at the root).
 *
 * Adding a column: one line at the end of its X-macro, X(ENUM, "name", "unit").
 * Adding a dataset: one line in MOE_TEL_DATASET_MAP (the writer creates it, the reader
 * validates its shape, the doc test asks for its row in docs/telemetry.md). Writing its data
 * is then the writer's business (moe_tel_block_t). A new dimension: one line in
 * MOE_TEL_DIM_MAP and one case in moe_tel_dim_size().
 */
#ifndef MOERUN_TELEMETRY_SCHEMA_H
#define MOERUN_TELEMETRY_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

/* The layout written today, and the range the reader accepts. Version 2 added dimension
 * labels, one unit per column (units is then a list on column datasets) and the events'
 * kind_name member; version 1 files stay readable. */
#define MOE_TEL_SCHEMA_VERSION 2
#define MOE_TEL_SCHEMA_MIN     1
#define MOE_TEL_SCHEMA_MAX     2

/* ------------------------------------------------------------------ columns ----------- */
/* X(ENUM, "name", "unit"). A line without the unit still compiles; the schema test then
 * fails until it has one. Consumers take (id, ...) and pick the name and unit with
 * MOE__ARG1/MOE__ARG2, so both forms are ISO C (no empty variadic argument). */
#define MOE__ARG1(a, ...)    a
#define MOE__ARG2(a, b, ...) b

/* Phases timed per step x layer x rank, seconds. gate..combine add up to total; the
 * columns after total are "of which" parts, not further phases: of dispatch and combine
 * the stage that carries inter-node payload; of counts and combine the wait for other
 * ranks. */
#define MOE_PHASE_MAP(X)                               \
    X(MOE_PHASE_GATE, "gate", "s")                     \
    X(MOE_PHASE_COUNTS, "counts", "s")                 \
    X(MOE_PHASE_DISPATCH, "dispatch", "s")             \
    X(MOE_PHASE_EXPERT, "expert", "s")                 \
    X(MOE_PHASE_COMBINE, "combine", "s")               \
    X(MOE_PHASE_TOTAL, "total", "s")                   \
    X(MOE_PHASE_DISPATCH_INTER, "dispatch_inter", "s") \
    X(MOE_PHASE_COMBINE_INTER, "combine_inter", "s")   \
    X(MOE_PHASE_COUNTS_WAIT, "counts_wait", "s")       \
    X(MOE_PHASE_COMBINE_WAIT, "combine_wait", "s")

/* Traffic counters per step x layer x rank (dispatch + combine payload and count messages).
 * The intra/inter columns split bytes_sent and msgs_sent by whether the peer is on this
 * rank's node. rows_in: (token, expert) rows this rank's experts received (self included)
 * and computed — the rank's expert load (docs/placement.md). */
#define MOE_TRAFFIC_MAP(X)                                \
    X(MOE_TRAFFIC_BYTES_SENT, "bytes_sent", "bytes")      \
    X(MOE_TRAFFIC_BYTES_RECV, "bytes_recv", "bytes")      \
    X(MOE_TRAFFIC_MSGS_SENT, "msgs_sent", "messages")     \
    X(MOE_TRAFFIC_MSGS_RECV, "msgs_recv", "messages")     \
    X(MOE_TRAFFIC_BYTES_INTRA, "bytes_intra", "bytes")    \
    X(MOE_TRAFFIC_BYTES_INTER, "bytes_inter", "bytes")    \
    X(MOE_TRAFFIC_MSGS_INTRA, "msgs_intra", "messages")   \
    X(MOE_TRAFFIC_MSGS_INTER, "msgs_inter", "messages")   \
    X(MOE_TRAFFIC_ROWS_IN, "rows_in", "rows")

/* Router statistics per step x layer, over all tokens of the step (global). Entropies in
 * nats; "1" is dimensionless (probabilities, normalised entropies, logits, losses). */
#define MOE_RSTAT_MAP(X)                                        \
    X(MOE_RSTAT_GATE_ENTROPY, "gate_entropy", "nat")            \
    X(MOE_RSTAT_GATE_ENTROPY_NORM, "gate_entropy_norm", "1")    \
    X(MOE_RSTAT_LOAD_ENTROPY, "load_entropy", "nat")            \
    X(MOE_RSTAT_LOAD_ENTROPY_NORM, "load_entropy_norm", "1")    \
    X(MOE_RSTAT_TOP1_PROB, "top1_prob", "1")                    \
    X(MOE_RSTAT_MARGIN, "top1_top2_margin", "1")                \
    X(MOE_RSTAT_LOGIT_MEAN, "logit_mean", "1")                  \
    X(MOE_RSTAT_LOGIT_STD, "logit_std", "1")                    \
    X(MOE_RSTAT_LOGIT_MAX, "logit_max", "1")                    \
    X(MOE_RSTAT_AUX_LOSS, "aux_loss", "1")                      \
    X(MOE_RSTAT_Z_LOSS, "z_loss", "1")

/* Monitor event kinds: X(ENUM, "name"). Stored in the file as the enum value (member kind,
 * an HDF5 enum type with these names) and as the name (member kind_name). */
#define MOE_EVENT_MAP(X)                        \
    X(MOE_EVENT_STARVED, "starved_expert")      \
    X(MOE_EVENT_DEAD, "dead_expert")            \
    X(MOE_EVENT_DROP_RATE, "drop_rate")         \
    X(MOE_EVENT_LOW_ENTROPY, "low_entropy")     \
    X(MOE_EVENT_COLLAPSE, "collapse")           \
    X(MOE_EVENT_LOGIT_SATURATION, "logit_saturation")

#define MOE__ENUM_ENTRY(name, ...) name,
typedef enum { MOE_PHASE_MAP(MOE__ENUM_ENTRY) MOE_PHASE_COUNT } moe_phase_t;
typedef enum { MOE_TRAFFIC_MAP(MOE__ENUM_ENTRY) MOE_TRAFFIC_COUNT } moe_traffic_kind_t;
typedef enum { MOE_RSTAT_MAP(MOE__ENUM_ENTRY) MOE_RSTAT_COUNT } moe_rstat_t;
typedef enum { MOE_EVENT_MAP(MOE__ENUM_ENTRY) MOE_EVENT_COUNT } moe_event_kind_t;
#undef MOE__ENUM_ENTRY

/* One column of a column dataset. */
typedef struct moe_tel_column {
    const char *name;
    const char *unit;
} moe_tel_column_t;

/* A line without a unit gives "" (the schema test refuses it). */
#define MOE__TEL_COLUMN(id, ...) {MOE__ARG1(__VA_ARGS__, 0), MOE__ARG2(__VA_ARGS__, "", 0)},
static inline const moe_tel_column_t *moe_tel_phase_columns(void)
{
    static const moe_tel_column_t c[MOE_PHASE_COUNT] = {MOE_PHASE_MAP(MOE__TEL_COLUMN)};
    return c;
}
static inline const moe_tel_column_t *moe_tel_traffic_columns(void)
{
    static const moe_tel_column_t c[MOE_TRAFFIC_COUNT] = {MOE_TRAFFIC_MAP(MOE__TEL_COLUMN)};
    return c;
}
static inline const moe_tel_column_t *moe_tel_rstat_columns(void)
{
    static const moe_tel_column_t c[MOE_RSTAT_COUNT] = {MOE_RSTAT_MAP(MOE__TEL_COLUMN)};
    return c;
}
#undef MOE__TEL_COLUMN

/* Event kind names, indexed by moe_event_kind_t; NULL outside the range. */
static inline const char *moe_tel_event_kind_name(int kind)
{
#define MOE__TEL_KIND(id, ...) MOE__ARG1(__VA_ARGS__, 0),
    static const char *const n[MOE_EVENT_COUNT] = {MOE_EVENT_MAP(MOE__TEL_KIND)};
#undef MOE__TEL_KIND
    return kind >= 0 && kind < MOE_EVENT_COUNT ? n[kind] : NULL;
}

/* ------------------------------------------------------------------ dimensions -------- */
/* X(ENUM, "label", "symbol", "meaning"): the label is the HDF5 dimension label (h5py:
 * dset.dims[i].label); the symbol is the doc's shape notation. */
#define MOE_TEL_DIM_MAP(X)                                                              \
    X(MOE_TEL_DIM_STEP, "step", "S", "rows of the per-step datasets (appended per block)") \
    X(MOE_TEL_DIM_ROUTE, "route", "N", "sampled routes (appended per block)")           \
    X(MOE_TEL_DIM_EVENT, "event", "M", "monitor events (appended per block)")           \
    X(MOE_TEL_DIM_LAYER, "layer", "L", "MoE layer")                                     \
    X(MOE_TEL_DIM_EXPERT, "expert", "E", "expert")                                      \
    X(MOE_TEL_DIM_EXPERT_J, "expert_j", "E", "the other expert of a pair")              \
    X(MOE_TEL_DIM_RANK, "rank", "P", "MPI rank")                                        \
    X(MOE_TEL_DIM_PEER, "peer", "P", "the rank data was sent to")                      \
    X(MOE_TEL_DIM_SLOT, "slot", "k", "position among a token's top-k experts, best first") \
    X(MOE_TEL_DIM_STAT, "stat", "", "router statistic (columns)")                       \
    X(MOE_TEL_DIM_PHASE, "phase", "", "phase (columns)")                                \
    X(MOE_TEL_DIM_COUNTER, "counter", "", "traffic counter (columns)")                  \
    X(MOE_TEL_DIM_REPLICA, "replica", "R", "copies of one expert: the most any expert has")

#define MOE__TEL_DIM_ENUM(id, ...) id,
typedef enum {
    MOE_TEL_DIM_NONE = -1,
    MOE_TEL_DIM_MAP(MOE__TEL_DIM_ENUM) MOE_TEL_DIM_COUNT
} moe_tel_dim_t;
#undef MOE__TEL_DIM_ENUM

typedef struct moe_tel_dim_def {
    const char *label;
    const char *symbol;   /* "" for a column dimension: its size is its column count */
    const char *meaning;
} moe_tel_dim_def_t;

static inline const moe_tel_dim_def_t *moe_tel_dim(moe_tel_dim_t d)
{
#define MOE__TEL_DIM_DEF(id, label, symbol, meaning) {label, symbol, meaning},
    static const moe_tel_dim_def_t t[MOE_TEL_DIM_COUNT] = {MOE_TEL_DIM_MAP(MOE__TEL_DIM_DEF)};
#undef MOE__TEL_DIM_DEF
    return d >= 0 && d < MOE_TEL_DIM_COUNT ? &t[d] : NULL;
}

/*
 * The columns of a column dimension in *cols_p, their count returned; 0 (and NULL) for any
 * other dimension.
 */
static inline int moe_tel_dim_columns(moe_tel_dim_t d, const moe_tel_column_t **cols_p)
{
    switch (d) {
    case MOE_TEL_DIM_STAT: *cols_p = moe_tel_rstat_columns(); return MOE_RSTAT_COUNT;
    case MOE_TEL_DIM_PHASE: *cols_p = moe_tel_phase_columns(); return MOE_PHASE_COUNT;
    case MOE_TEL_DIM_COUNTER: *cols_p = moe_tel_traffic_columns(); return MOE_TRAFFIC_COUNT;
    default: *cols_p = NULL; return 0;
    }
}

/* The sizes a file's dimensions take (from its root attributes and row counts). */
typedef struct moe_tel_sizes {
    int64_t steps, routes, events; /* rows of the appended datasets */
    int64_t layers, experts, ranks, top_k;
    int64_t replicas;              /* R: the writer's placement; a reader takes the file's */
} moe_tel_sizes_t;

/* Size of dimension d in a file of sizes s (-1 if s does not know it, e.g. -1 there). */
static inline int64_t moe_tel_dim_size(moe_tel_dim_t d, const moe_tel_sizes_t *s)
{
    const moe_tel_column_t *c;

    switch (d) {
    case MOE_TEL_DIM_STEP: return s->steps;
    case MOE_TEL_DIM_ROUTE: return s->routes;
    case MOE_TEL_DIM_EVENT: return s->events;
    case MOE_TEL_DIM_LAYER: return s->layers;
    case MOE_TEL_DIM_EXPERT: case MOE_TEL_DIM_EXPERT_J: return s->experts;
    case MOE_TEL_DIM_RANK: case MOE_TEL_DIM_PEER: return s->ranks;
    case MOE_TEL_DIM_SLOT: return s->top_k;
    case MOE_TEL_DIM_REPLICA: return s->replicas;
    case MOE_TEL_DIM_STAT: case MOE_TEL_DIM_PHASE: case MOE_TEL_DIM_COUNTER:
        return moe_tel_dim_columns(d, &c);
    default: return -1;
    }
}

/* ------------------------------------------------------------------ element types ----- */
/* X(ENUM, "doc name", bytes in the file). Numbers are little-endian; strings fixed-length,
 * NUL-terminated ASCII; the event record is the compound of MOE_TEL_EVENT_MEMBER_MAP. */
#define MOE_TEL_KIND_NAME_MAX 32
#define MOE_TEL_MESSAGE_MAX   160
#define MOE_TEL_STRING_MAX    64  /* hostname, cpuset */

#define MOE_TEL_ELEM_MAP(X)                                       \
    X(MOE_TEL_ELEM_I64, "int64", 8)                               \
    X(MOE_TEL_ELEM_F64, "float64", 8)                             \
    X(MOE_TEL_ELEM_I32, "int32", 4)                               \
    X(MOE_TEL_ELEM_F32, "float32", 4)                             \
    X(MOE_TEL_ELEM_U8, "uint8", 1)                                \
    X(MOE_TEL_ELEM_S64, "S64", MOE_TEL_STRING_MAX)                \
    X(MOE_TEL_ELEM_S32, "S32", MOE_TEL_KIND_NAME_MAX)             \
    X(MOE_TEL_ELEM_S160, "S160", MOE_TEL_MESSAGE_MAX)             \
    X(MOE_TEL_ELEM_KIND, "enum int32", 4)                         \
    X(MOE_TEL_ELEM_EVENT, "compound", 8 + 4 + 4 + 4 + MOE_TEL_KIND_NAME_MAX + 8 + 8 + MOE_TEL_MESSAGE_MAX)

#define MOE__TEL_ELEM_ENUM(id, ...) id,
typedef enum { MOE_TEL_ELEM_MAP(MOE__TEL_ELEM_ENUM) MOE_TEL_ELEM_COUNT } moe_tel_elem_t;
#undef MOE__TEL_ELEM_ENUM

static inline const char *moe_tel_elem_name(moe_tel_elem_t e)
{
#define MOE__TEL_ELEM_NAME(id, name, size) name,
    static const char *const n[MOE_TEL_ELEM_COUNT] = {MOE_TEL_ELEM_MAP(MOE__TEL_ELEM_NAME)};
#undef MOE__TEL_ELEM_NAME
    return e >= 0 && e < MOE_TEL_ELEM_COUNT ? n[e] : "?";
}

/* Bytes of one element in the file. */
static inline size_t moe_tel_elem_size(moe_tel_elem_t e)
{
#define MOE__TEL_ELEM_SIZE(id, name, size) (size),
    static const size_t n[MOE_TEL_ELEM_COUNT] = {MOE_TEL_ELEM_MAP(MOE__TEL_ELEM_SIZE)};
#undef MOE__TEL_ELEM_SIZE
    return e >= 0 && e < MOE_TEL_ELEM_COUNT ? n[e] : 0;
}

/* ------------------------------------------------------------------ events ------------ */

/* One event record in memory (the writer's and the reader's buffer; native layout). */
typedef struct moe_tel_event_rec {
    int64_t step;
    int32_t layer;
    int32_t expert;
    int32_t kind;
    char    kind_name[MOE_TEL_KIND_NAME_MAX];
    double  value;
    double  threshold;
    char    message[MOE_TEL_MESSAGE_MAX];
} moe_tel_event_rec_t;

/* Members of the events compound, in file order: X(field, element type, since schema
 * version, meaning). The file layout is packed, in this order. */
#define MOE_TEL_EVENT_MEMBER_MAP(X)                                                         \
    X(step, MOE_TEL_ELEM_I64, 1, "step at which the condition was first seen")              \
    X(layer, MOE_TEL_ELEM_I32, 1, "layer, -1: not layer-specific")                         \
    X(expert, MOE_TEL_ELEM_I32, 1, "expert, -1: not expert-specific")                      \
    X(kind, MOE_TEL_ELEM_KIND, 1, "kind, an HDF5 enum named by MOE_EVENT_MAP")             \
    X(kind_name, MOE_TEL_ELEM_S32, 2, "the kind's name")                                   \
    X(value, MOE_TEL_ELEM_F64, 1, "the measured quantity")                                 \
    X(threshold, MOE_TEL_ELEM_F64, 1, "the threshold it crossed")                          \
    X(message, MOE_TEL_ELEM_S160, 1, "what happened, in words")

/* ------------------------------------------------------------------ datasets ---------- */

/* Dataset paths (the names other code uses; a new dataset may use its table row alone). */
#define MOE_TEL_STEP             "steps/step"
#define MOE_TEL_ROUTED           "steps/routed"
#define MOE_TEL_PROCESSED        "steps/processed"
#define MOE_TEL_DROPPED          "steps/dropped"
#define MOE_TEL_DROPPED_CAPACITY "steps/dropped_capacity"
#define MOE_TEL_CAPACITY         "steps/capacity"
#define MOE_TEL_ROUTER           "steps/router"
#define MOE_TEL_PHASE            "steps/phase_time"
#define MOE_TEL_TRAFFIC          "steps/traffic"
#define MOE_TEL_ROUTE_STEP       "routes/step"
#define MOE_TEL_ROUTE_TOKEN      "routes/token"
#define MOE_TEL_ROUTE_EXPERT     "routes/expert"
#define MOE_TEL_ROUTE_WEIGHT     "routes/weight"
#define MOE_TEL_ROUTE_KEPT       "routes/kept"
#define MOE_TEL_EVENTS           "events"
#define MOE_TEL_COSELECT         "accumulated/coselect"
#define MOE_TEL_TRAFFIC_MATRIX   "accumulated/traffic_matrix"
#define MOE_TEL_HOSTNAME         "topology/hostname"
#define MOE_TEL_NODE             "topology/node"
#define MOE_TEL_LOCAL_RANK       "topology/local_rank"
#define MOE_TEL_CPUSET           "topology/cpuset"
#define MOE_TEL_NUMA_NODE        "topology/numa_node"
#define MOE_TEL_EXPERT_OWNER     "placement/expert_owner"
#define MOE_TEL_EXPERT_RANKS     "placement/expert_ranks"
#define MOE_TEL_NIC              "topology/nic"
#define MOE_TEL_BIND_ACTION      "topology/bind_action"
#define MOE_TEL_MACHINE          "topology/machine"
#define MOE_TEL_L1D_BYTES        "topology/l1d_bytes"
#define MOE_TEL_L1D_PUS          "topology/l1d_pus"
#define MOE_TEL_L2_BYTES         "topology/l2_bytes"
#define MOE_TEL_L2_PUS           "topology/l2_pus"
#define MOE_TEL_L3_BYTES         "topology/l3_bytes"
#define MOE_TEL_L3_PUS           "topology/l3_pus"
#define MOE_TEL_UNROUTED         "steps/unrouted"
#define MOE_TEL_EXPERT_BIAS      "steps/expert_bias"
#define MOE_TEL_ROUTE_TOKEN_ID   "routes/token_id"

/* Flags of a dataset. */
#define MOE_TEL_F_REQUIRED 1u /* in every file (imported ones too); others may be absent */
#define MOE_TEL_F_PER_RANK 2u /* written by every rank (its column or rows), not by rank 0 */

/*
 * X(ID, path, group, element type, dim0, dim1, dim2, dim3, units, flags, description).
 * A dataset whose first dimension is step, route or event is appended (unlimited, one block
 * per flush); the others have a fixed shape. units: "" for none (strings, the events
 * compound); "columns" on a dataset whose last dimension is a column dimension (the file
 * then has one unit per column). The order is the doc table's.
 */
#define MOE_TEL_DATASET_MAP(X)                                                                          \
    X(MOE_TEL_DS_STEP, MOE_TEL_STEP, "steps", I64, STEP, NONE, NONE, NONE, "step",                     \
      MOE_TEL_F_REQUIRED, "step index of each row: 0..S-1")                                            \
    X(MOE_TEL_DS_ROUTED, MOE_TEL_ROUTED, "steps", I64, STEP, LAYER, EXPERT, NONE, "pairs",             \
      MOE_TEL_F_REQUIRED, "(token, expert) pairs routed to the expert, all ranks")                     \
    X(MOE_TEL_DS_PROCESSED, MOE_TEL_PROCESSED, "steps", I64, STEP, LAYER, EXPERT, NONE, "pairs", 0,    \
      "pairs computed by the expert")                                                                  \
    X(MOE_TEL_DS_DROPPED, MOE_TEL_DROPPED, "steps", I64, STEP, LAYER, EXPERT, NONE, "pairs", 0,        \
      "pairs dropped, all reasons (routed = processed + dropped)")                                     \
    X(MOE_TEL_DS_DROPPED_CAPACITY, MOE_TEL_DROPPED_CAPACITY, "steps", I64, STEP, LAYER, EXPERT, NONE,  \
      "pairs", 0, "pairs dropped because the expert was over capacity")                                \
    X(MOE_TEL_DS_CAPACITY, MOE_TEL_CAPACITY, "steps", I64, STEP, LAYER, NONE, NONE, "pairs", 0,        \
      "per-expert capacity, -1 = dropless")                                                            \
    X(MOE_TEL_DS_ROUTER, MOE_TEL_ROUTER, "steps", F64, STEP, LAYER, STAT, NONE, "columns", 0,          \
      "router statistics over all tokens of the step")                                                 \
    X(MOE_TEL_DS_PHASE, MOE_TEL_PHASE, "steps", F64, STEP, LAYER, RANK, PHASE, "columns",              \
      MOE_TEL_F_PER_RANK, "wall time of each phase on each rank")                                      \
    X(MOE_TEL_DS_TRAFFIC, MOE_TEL_TRAFFIC, "steps", I64, STEP, LAYER, RANK, COUNTER, "columns",        \
      MOE_TEL_F_PER_RANK, "exchange traffic of each rank, self excluded, payload and count messages")  \
    X(MOE_TEL_DS_ROUTE_STEP, MOE_TEL_ROUTE_STEP, "routes", I64, ROUTE, NONE, NONE, NONE, "step",       \
      MOE_TEL_F_PER_RANK, "step of the sampled token")                                                 \
    X(MOE_TEL_DS_ROUTE_TOKEN, MOE_TEL_ROUTE_TOKEN, "routes", I64, ROUTE, NONE, NONE, NONE, "token",    \
      MOE_TEL_F_PER_RANK, "global token index (rank x tokens_per_rank + local index)")                 \
    X(MOE_TEL_DS_ROUTE_EXPERT, MOE_TEL_ROUTE_EXPERT, "routes", I32, ROUTE, LAYER, SLOT, NONE, "expert", \
      MOE_TEL_F_PER_RANK, "selected experts per layer, best first; a (token, layer) row of -1: an empty slot (replay past its log's end, docs/replay.md)") \
    X(MOE_TEL_DS_ROUTE_WEIGHT, MOE_TEL_ROUTE_WEIGHT, "routes", F32, ROUTE, LAYER, SLOT, NONE, "1",     \
      MOE_TEL_F_PER_RANK, "normalised gate weights of the selected experts")                           \
    X(MOE_TEL_DS_ROUTE_KEPT, MOE_TEL_ROUTE_KEPT, "routes", U8, ROUTE, LAYER, SLOT, NONE, "bool",       \
      MOE_TEL_F_PER_RANK, "1 = processed, 0 = dropped")                                                \
    X(MOE_TEL_DS_EVENTS, MOE_TEL_EVENTS, "", EVENT, EVENT, NONE, NONE, NONE, "", 0,                    \
      "monitor events (members below)")                                                                \
    X(MOE_TEL_DS_COSELECT, MOE_TEL_COSELECT, "accumulated", I64, LAYER, EXPERT, EXPERT_J, NONE,        \
      "tokens", 0, "tokens that selected both expert and expert_j since step 0 (diagonal: tokens that selected it); symmetric") \
    X(MOE_TEL_DS_TRAFFIC_MATRIX, MOE_TEL_TRAFFIC_MATRIX, "accumulated", I64, RANK, PEER, NONE, NONE,   \
      "bytes", MOE_TEL_F_PER_RANK, "payload bytes each rank sent to each peer since step 0, self included") \
    X(MOE_TEL_DS_HOSTNAME, MOE_TEL_HOSTNAME, "topology", S64, RANK, NONE, NONE, NONE, "", 0,           \
      "host of each rank")                                                                             \
    X(MOE_TEL_DS_NODE, MOE_TEL_NODE, "topology", I32, RANK, NONE, NONE, NONE, "node", 0,               \
      "node id of each rank, 0..nnodes-1")                                                             \
    X(MOE_TEL_DS_LOCAL_RANK, MOE_TEL_LOCAL_RANK, "topology", I32, RANK, NONE, NONE, NONE, "rank", 0,   \
      "rank within its node")                                                                          \
    X(MOE_TEL_DS_CPUSET, MOE_TEL_CPUSET, "topology", S64, RANK, NONE, NONE, NONE, "", 0,               \
      "cores bound, hwloc list syntax, empty if unbound")                                              \
    X(MOE_TEL_DS_NUMA_NODE, MOE_TEL_NUMA_NODE, "topology", I32, RANK, NONE, NONE, NONE, "NUMA node", 0, \
      "NUMA node of the binding, -1 unknown")                                                          \
    X(MOE_TEL_DS_EXPERT_OWNER, MOE_TEL_EXPERT_OWNER, "placement", I32, EXPERT, NONE, NONE, NONE,       \
      "rank", 0, "rank that holds each expert (per-layer maps, replicas: its layer-0 primary)")       \
    X(MOE_TEL_DS_EXPERT_RANKS, MOE_TEL_EXPERT_RANKS, "placement", I32, LAYER, EXPERT, REPLICA, NONE,   \
      "rank", 0, "ranks holding each expert at each layer, primary first, -1 padded (docs/placement.md)") \
    X(MOE_TEL_DS_NIC, MOE_TEL_NIC, "topology", S64, RANK, NONE, NONE, NONE, "", 0,                     \
      "nearest network device of the binding, empty if none found (docs/binding.md)")                 \
    X(MOE_TEL_DS_BIND_ACTION, MOE_TEL_BIND_ACTION, "topology", S64, RANK, NONE, NONE, NONE, "", 0,     \
      "what --bind did: kept, bound, none, unbound, planned or failed")                                \
    X(MOE_TEL_DS_MACHINE, MOE_TEL_MACHINE, "topology", S64, RANK, NONE, NONE, NONE, "", 0,             \
      "the rank's host as hwloc sees it: packages, NUMA nodes, cores, PUs, NICs")                                 \
    X(MOE_TEL_DS_L1D_BYTES, MOE_TEL_L1D_BYTES, "topology", I64, RANK, NONE, NONE, NONE, "bytes", 0,    \
      "L1 data cache above the binding's first PU, 0 if hwloc declares none (docs/binding.md)")         \
    X(MOE_TEL_DS_L1D_PUS, MOE_TEL_L1D_PUS, "topology", I32, RANK, NONE, NONE, NONE, "PUs", 0,          \
      "PUs sharing that L1 data cache, 0 if none")                                                      \
    X(MOE_TEL_DS_L2_BYTES, MOE_TEL_L2_BYTES, "topology", I64, RANK, NONE, NONE, NONE, "bytes", 0,      \
      "L2 cache above the binding's first PU, 0 if none")                                               \
    X(MOE_TEL_DS_L2_PUS, MOE_TEL_L2_PUS, "topology", I32, RANK, NONE, NONE, NONE, "PUs", 0,            \
      "PUs sharing that L2 cache, 0 if none")                                                           \
    X(MOE_TEL_DS_L3_BYTES, MOE_TEL_L3_BYTES, "topology", I64, RANK, NONE, NONE, NONE, "bytes", 0,      \
      "L3 cache above the binding's first PU, 0 if none")                                               \
    X(MOE_TEL_DS_L3_PUS, MOE_TEL_L3_PUS, "topology", I32, RANK, NONE, NONE, NONE, "PUs", 0,            \
      "PUs sharing that L3 cache, 0 if none")                                                           \
    X(MOE_TEL_DS_UNROUTED, MOE_TEL_UNROUTED, "steps", I64, STEP, LAYER, NONE, NONE, "tokens", 0,        \
      "tokens routed to no expert (expert-choice router; 0 otherwise)")                                \
    X(MOE_TEL_DS_EXPERT_BIAS, MOE_TEL_EXPERT_BIAS, "steps", F64, STEP, LAYER, EXPERT, NONE, "score", 0, \
      "aux-loss-free balancing bias each expert was selected with (zeros without --balance-bias)")     \
    X(MOE_TEL_DS_ROUTE_TOKEN_ID, MOE_TEL_ROUTE_TOKEN_ID, "routes", I64, ROUTE, NONE, NONE, NONE, "id", \
      MOE_TEL_F_PER_RANK, "vocabulary id of the sampled token (--vocab-size)")

#define MOE__TEL_DS_ENUM(id, ...) id,
typedef enum { MOE_TEL_DATASET_MAP(MOE__TEL_DS_ENUM) MOE_TEL_DS_COUNT } moe_tel_dset_id_t;
#undef MOE__TEL_DS_ENUM

typedef struct moe_tel_dset {
    const char     *path;
    const char     *group;        /* "" at the root */
    moe_tel_elem_t  elem;
    int             rank;         /* number of dimensions, 1..4 */
    moe_tel_dim_t   dims[4];      /* MOE_TEL_DIM_NONE after the last */
    const char     *units;        /* "" none; "columns": one per column */
    unsigned        flags;        /* MOE_TEL_F_* */
    const char     *description;
} moe_tel_dset_t;

/* The table, indexed by moe_tel_dset_id_t; NULL outside the range. */
static inline const moe_tel_dset_t *moe_tel_dset(int id)
{
#define MOE__TEL_NDIM(d) (MOE_TEL_DIM_##d != MOE_TEL_DIM_NONE)
#define MOE__TEL_DS_DEF(id, path, group, elem, d0, d1, d2, d3, units, flags, desc)           \
    {path, group, MOE_TEL_ELEM_##elem,                                                       \
     MOE__TEL_NDIM(d0) + MOE__TEL_NDIM(d1) + MOE__TEL_NDIM(d2) + MOE__TEL_NDIM(d3),          \
     {MOE_TEL_DIM_##d0, MOE_TEL_DIM_##d1, MOE_TEL_DIM_##d2, MOE_TEL_DIM_##d3}, units, flags, \
     desc},
    static const moe_tel_dset_t t[MOE_TEL_DS_COUNT] = {MOE_TEL_DATASET_MAP(MOE__TEL_DS_DEF)};
#undef MOE__TEL_DS_DEF
#undef MOE__TEL_NDIM
    return id >= 0 && id < MOE_TEL_DS_COUNT ? &t[id] : NULL;
}

/* The id of the dataset at `path`, -1 if the schema has none there. */
static inline int moe_tel_dset_find(const char *path)
{
    int i, j;

    for (i = 0; i < MOE_TEL_DS_COUNT; i++) {
        const char *p = moe_tel_dset(i)->path;
        for (j = 0; p[j] && p[j] == path[j]; j++)
            ;
        if (p[j] == '\0' && path[j] == '\0')
            return i;
    }
    return -1;
}

/* 1 if dataset d is appended (its first dimension grows by one block per flush). */
static inline int moe_tel_dset_appended(const moe_tel_dset_t *d)
{
    return d->dims[0] == MOE_TEL_DIM_STEP || d->dims[0] == MOE_TEL_DIM_ROUTE ||
           d->dims[0] == MOE_TEL_DIM_EVENT;
}

/* The column dimension of d (its last dimension), or MOE_TEL_DIM_NONE. */
static inline moe_tel_dim_t moe_tel_dset_column_dim(const moe_tel_dset_t *d)
{
    const moe_tel_column_t *c;
    moe_tel_dim_t           last = d->dims[d->rank - 1];

    return moe_tel_dim_columns(last, &c) > 0 ? last : MOE_TEL_DIM_NONE;
}

#endif /* MOERUN_TELEMETRY_SCHEMA_H */
