/*
 * tools/reader/telemetry_reader.h — the one module through which tools read a moerun telemetry file
 * (schema: docs/telemetry.md). Serial HDF5 (sec2 driver), no MPI needed.
 *
 * What always holds: moe_tel_reader_open() validates the file against the schema
 * (moerun/telemetry_schema.h) before returning a handle — schema_version is supported, the
 * required datasets exist, every other schema dataset that exists has the rank, element
 * class and inner shape the root attributes imply (datasets with a "columns" attribute: as
 * many columns as it names; from schema 2 also as many units, and the schema's dimension
 * labels), and the per-step (routes) datasets agree on their row count. Absent optional datasets (e.g. no routes, no phase times in an
 * imported routing log) are reported by moe_tel_reader_has(); reading one is an error. After that, every read is bounds-checked against the file's shapes, so a tool
 * never reads outside a dataset and never crashes on a malformed file: it gets a status and
 * a message in log->last_error.
 */
#ifndef MOERUN_TOOLS_TELEMETRY_READER_H
#define MOERUN_TOOLS_TELEMETRY_READER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "moerun/base/log.h"
#include "moerun/telemetry_schema.h"

/* The layout, the schema versions this reader understands (MOE_TEL_SCHEMA_MIN..MAX) and the
 * dataset paths (MOE_TEL_*): moerun/telemetry_schema.h. */

/* Element types a dataset can be read into (HDF5 converts). */
typedef enum {
    MOE_TEL_I64 = 0,
    MOE_TEL_F64 = 1,
    MOE_TEL_I32 = 2,
    MOE_TEL_F32 = 3,
    MOE_TEL_U8  = 4
} moe_tel_type_t;

/* The numbers of a file, from its root attributes and dataset shapes. */
/* Optional root attributes (d_model, d_ffn, tokens_per_rank, flush_interval, route_samples)
 * read as -1 when absent, capacity_factor as NAN. */
typedef struct moe_tel_info {
    int64_t schema_version;
    int64_t experts, top_k, layers, d_model, d_ffn, tokens_per_rank, nranks, nnodes;
    int64_t flush_interval, route_samples;
    int64_t steps_completed;   /* root attribute (updated at every flush and at close) */
    double  capacity_factor;
    int64_t steps;             /* rows of the per-step datasets */
    int64_t nroutes;           /* rows of the routes datasets (0 if absent) */
    int64_t nevents;           /* rows of the events dataset (0 if absent) */
    int64_t accumulated_steps; /* steps covered by the accumulated matrices */
    int     closed;            /* 1 if the end_time attribute exists (the writer closed it) */
    int     imported;          /* 1 if the root attribute source starts with "import:" */
    char    source[32];        /* that attribute ("" in files written by a run) */
} moe_tel_info_t;

/* One monitor event as read. */
typedef struct moe_tel_event {
    int64_t step;
    int32_t layer, expert, kind;
    double  value, threshold;
    char    kind_name[MOE_TEL_KIND_NAME_MAX];
    char    message[MOE_TEL_MESSAGE_MAX];
} moe_tel_event_t;

typedef struct moe_tel_reader moe_tel_reader_t;

/*
 * Opens and validates `path` read-only. On failure returns MOE_ERR_IO (missing, unreadable,
 * not HDF5, truncated) or MOE_ERR_INVALID (HDF5 but not a valid moerun telemetry file), with
 * the reason in log->last_error. The handle is freed by moe_tel_reader_close().
 */
moe_status_t moe_tel_reader_open(const char *path, moe_log_t *log, moe_tel_reader_t **r_p);

/* Closes the file and frees the handle. Safe on NULL. */
void moe_tel_reader_close(moe_tel_reader_t *r);

/*
 * The file's numbers (owned by the handle). Root numbers a file may omit read as -1
 * (d_model, d_ffn, tokens_per_rank, flush_interval, route_samples) and capacity_factor as NaN.
 * In an imported file (imported = 1, docs/import.md) top_k, nranks and nnodes may be absent
 * too (then -1, and the datasets they size must be absent); a file written by a run must
 * have them.
 */
const moe_tel_info_t *moe_tel_reader_info(const moe_tel_reader_t *r);

/*
 * A string attribute `name` of object `obj` ("/" for the root) in *s_p, malloc'd (the caller
 * frees it). MOE_ERR_NOT_FOUND if absent.
 */
moe_status_t moe_tel_reader_attr_str(moe_tel_reader_t *r, const char *obj, const char *name,
                                     char **s_p);

/* A numeric scalar attribute as int64 / double. MOE_ERR_NOT_FOUND if absent. */
moe_status_t moe_tel_reader_attr_i64(moe_tel_reader_t *r, const char *obj, const char *name,
                                     int64_t *v_p);
moe_status_t moe_tel_reader_attr_f64(moe_tel_reader_t *r, const char *obj, const char *name,
                                     double *v_p);

/*
 * A 1-D string-list attribute (e.g. "columns"): *list_p is an array of *n_p malloc'd strings,
 * freed with moe_tel_reader_strlist_free().
 */
moe_status_t moe_tel_reader_attr_strlist(moe_tel_reader_t *r, const char *obj, const char *name,
                                         char ***list_p, int *n_p);
void moe_tel_reader_strlist_free(char **list, int n);

/* 1 if the documented dataset `path` (an MOE_TEL_* path) exists in the file, else 0. */
int moe_tel_reader_has(const moe_tel_reader_t *r, const char *path);

/*
 * Index of the column `name` of a column dataset (steps/router, steps/phase_time,
 * steps/traffic) from its "columns" attribute; -1 if the dataset or the column is absent.
 */
int moe_tel_reader_column(const moe_tel_reader_t *r, const char *path, const char *name);

/* Number of columns of a column dataset (0 if absent or it has no "columns" attribute). */
int moe_tel_reader_ncolumns(const moe_tel_reader_t *r, const char *path);

/* Shape of dataset `path`: up to 4 dimensions in dims, their count in *ndims_p. */
moe_status_t moe_tel_reader_dims(moe_tel_reader_t *r, const char *path, int64_t dims[4],
                                 int *ndims_p);

/*
 * Reads rows [row0, row0 + nrows) of dataset `path` (whole rows: everything after the first
 * dimension) into buf, converted to `type`. buf holds nrows x row-size elements. Errors if
 * the range is outside the dataset.
 */
moe_status_t moe_tel_reader_read(moe_tel_reader_t *r, const char *path, moe_tel_type_t type,
                                 int64_t row0, int64_t nrows, void *buf);

/*
 * Reads a 1-D fixed-length string dataset (topology/hostname, topology/cpuset) into buf:
 * n strings of `width` bytes each, NUL-terminated (truncated if longer). n must equal the
 * dataset's length.
 */
moe_status_t moe_tel_reader_strings(moe_tel_reader_t *r, const char *path, int64_t n,
                                    size_t width, char *buf);

/* Reads events [row0, row0 + n) into ev (kind_name from the member kind_name, or in a
 * schema-1 file from the kind_names attribute). */
/* An imported file's layer id of each layer (dataset import/layer_id, docs/import.md: a log
 * of layers 0, 9, 20 has 3 layers) into ids[layers]. MOE_ERR_NOT_FOUND if the file has none
 * (a run's layers are 0..L-1); MOE_ERR_INVALID if it is not L increasing ids >= 0. */
#define MOE_TEL_LAYER_ID "import/layer_id"
moe_status_t moe_tel_reader_layer_ids(moe_tel_reader_t *r, int64_t *ids);

moe_status_t moe_tel_reader_events(moe_tel_reader_t *r, int64_t row0, int64_t n,
                                   moe_tel_event_t *ev);

/*
 * Prints the schema's tables (dimensions, datasets, columns with units, event members and
 * kinds) as the Markdown block of docs/telemetry.md, markers included
 * (telemetry_schema_doc.c).
 */
void moe_tel_schema_markdown(FILE *out);

#endif /* MOERUN_TOOLS_TELEMETRY_READER_H */
