/*
 * tools/import/routing_log.h — parsers for routing logs recorded from real models (docs/import.md):
 * one JSON-lines row, one CSV record (with a header map), one per-expert count record.
 *
 * What always holds:
 *  1. The parsers are pure: they read only the text they are given (never past `len`, no
 *     NUL terminator needed), keep no state between calls and allocate nothing that outlives
 *     a call. They are the fuzzing surface (tests/fuzz/fuzz_routing_log.c).
 *  2. A parse either fills the row completely and returns MOE_RLOG_OK, or returns
 *     MOE_RLOG_BAD with one message in `err` that names the field (e.g. "field 'experts':
 *     element 2 is not an integer"). The caller adds the file name and line number.
 *  3. Range checks that need the model shape (expert < E, layer < L, k consistent across
 *     rows, probabilities summing to 1) are the importer's, not the parser's; the parser
 *     checks what a single row can show: integers are integers, ids are >= 0, probabilities
 *     are finite and in [0, 1], lists have matching lengths and no repeated expert.
 */
#ifndef MOERUN_TOOLS_ROUTING_LOG_H
#define MOERUN_TOOLS_ROUTING_LOG_H

#include <stddef.h>
#include <stdint.h>

#define MOE_RLOG_KMAX        64    /* experts selected per row */
#define MOE_RLOG_LABELS_MAX  8     /* extra fields kept per row */
#define MOE_RLOG_KEY_MAX     64    /* bytes of a label key, NUL included */
#define MOE_RLOG_VALUE_MAX   128   /* bytes of a label value, NUL included (longer: truncated) */
#define MOE_RLOG_CSV_FIELDS_MAX 256
#define MOE_RLOG_ERR_MAX     256
#define MOE_RLOG_ID_MAX      ((int64_t)1 << 53) /* ids, steps and counts must stay below */

/* Parse outcomes. */
typedef enum {
    MOE_RLOG_OK = 0,
    MOE_RLOG_BAD = -1,        /* malformed row: message in err */
    MOE_RLOG_INCOMPLETE = 1   /* CSV only: a quoted field is still open at the end */
} moe_rlog_result_t;

typedef enum { MOE_RLOG_JSONL = 0, MOE_RLOG_CSV = 1, MOE_RLOG_COUNTS = 2 } moe_rlog_format_t;

/* Which optional fields a row carries. */
enum {
    MOE_RLOG_HAS_STEP  = 1u << 0,
    MOE_RLOG_HAS_TOKEN = 1u << 1,
    MOE_RLOG_HAS_PROBS = 1u << 2
};

typedef struct moe_rlog_label {
    char key[MOE_RLOG_KEY_MAX];
    char value[MOE_RLOG_VALUE_MAX];
} moe_rlog_label_t;

/* One parsed row: one token at one layer (jsonl, csv) or one count (counts). */
typedef struct moe_rlog_row {
    unsigned         has;                    /* MOE_RLOG_HAS_* bits */
    int64_t          layer;                  /* >= 0 */
    int64_t          step;                   /* >= 0 if HAS_STEP */
    int64_t          token;                  /* >= 0 if HAS_TOKEN */
    int              k;                      /* experts in the row, 1..MOE_RLOG_KMAX */
    int64_t          expert[MOE_RLOG_KMAX];  /* >= 0, distinct (counts: k = 1) */
    double           prob[MOE_RLOG_KMAX];    /* in [0, 1] if HAS_PROBS */
    int64_t          count;                  /* counts: pairs routed; otherwise 1 */
    int              nlabels;
    int              labels_dropped;         /* extra fields not kept (nested, too many, too long a key) */
    moe_rlog_label_t label[MOE_RLOG_LABELS_MAX];
} moe_rlog_row_t;

/* Column roles of a CSV header, built by moe_rlog_csv_header(). */
typedef struct moe_rlog_csv_map {
    moe_rlog_format_t format;     /* MOE_RLOG_CSV or MOE_RLOG_COUNTS */
    int nfields;                  /* columns in the header; every record must have as many */
    int layer, step, token;       /* column index or -1 */
    int experts, probs;           /* list columns ("5;1"), or -1 */
    int nexpert_cols, nprob_cols; /* expert_0.., prob_0.. columns */
    int expert_col[MOE_RLOG_KMAX], prob_col[MOE_RLOG_KMAX];
    int expert, count;            /* counts format */
    int nlabels;                  /* other columns, kept as labels */
    int label_col[MOE_RLOG_LABELS_MAX];
    char label_key[MOE_RLOG_LABELS_MAX][MOE_RLOG_KEY_MAX];
    int labels_dropped;           /* other columns beyond MOE_RLOG_LABELS_MAX */
} moe_rlog_csv_map_t;

/* Parses one JSON object (one line of a JSON-lines file). */
moe_rlog_result_t moe_rlog_parse_json(const char *text, size_t len, moe_rlog_row_t *row,
                                      char *err, size_t errlen);

/*
 * Splits one CSV record (RFC 4180: comma separated, fields may be quoted with '"', a quote
 * inside a quoted field is doubled, a trailing '\r' is ignored, spaces around unquoted
 * fields are trimmed) into at most maxfields fields. `buf` (at least len + 1 bytes) receives
 * the unquoted fields, NUL-terminated; fields[i] point into it. Returns MOE_RLOG_INCOMPLETE
 * if a quoted field is still open at the end of the text (the caller appends the next line
 * and calls again).
 */
moe_rlog_result_t moe_rlog_csv_split(const char *line, size_t len, char *buf, size_t bufsz,
                                     char **fields, int maxfields, int *nfields_p, char *err,
                                     size_t errlen);

/* Builds the column map of a header record for `format` (MOE_RLOG_CSV or MOE_RLOG_COUNTS). */
moe_rlog_result_t moe_rlog_csv_header(moe_rlog_format_t format, char *const *fields,
                                      int nfields, moe_rlog_csv_map_t *map, char *err,
                                      size_t errlen);

/* Parses one split CSV record with the header map (routes or counts, per map->format). */
moe_rlog_result_t moe_rlog_parse_csv(const moe_rlog_csv_map_t *map, char *const *fields,
                                     int nfields, moe_rlog_row_t *row, char *err,
                                     size_t errlen);

#endif /* MOERUN_TOOLS_ROUTING_LOG_H */
