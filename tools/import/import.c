/*
 * tools/import/import.c — the importer behind `moerun-import`: routing logs recorded from real models (JSON lines,
 * CSV, per-expert counts) into a moerun telemetry file (docs/telemetry.md), so
 * moerun-analyze reads it like a run's file. Formats, options and the mapping: docs/import.md.
 *
 * What always holds:
 *  1. Nothing half-written: the file is built under a temporary name next to the output
 *     (mkstemp) and renamed over it only after it was closed successfully; on any error, and
 *     on SIGINT/SIGTERM, the temporary file is removed.
 *  2. Bad input stops the import at the first bad row with "FILE:LINE: <field>: <reason>"
 *     and exit 1, unless --skip-bad: then bad rows are skipped, counted and reported.
 *  3. Only what the log says is written. Routed counts, load entropy, co-selection and routes
 *     come from the rows; top-1 probability and margin only from raw softmax probabilities
 *     (--probs softmax); processed/dropped/capacity only under --assume-dropless. Phase times,
 *     traffic, topology, placement and events are absent, never invented. The file says so:
 *     root attribute source = "import:<format>".
 *  4. Serial HDF5 (sec2), no MPI: the runtime writer needs a run (config, topology, per-rank
 *     phases and traffic) and always writes every dataset; an import has none of that.
 *     Every telemetry dataset is created from its row of the schema
 *     (moerun/telemetry_schema.h: path, type, dimension labels, units, router columns), as
 *     the runtime writer does, so the layout cannot drift from the writer's.
 *
 * Exit codes: 0 written, 1 bad input or I/O error (nothing written), 2 usage error.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "moerun/base/escape.h"
#include "moerun/base/fileio.h"
#include "moerun/base/h5tel.h"
#include "moerun/base/log.h"
#include "moerun/telemetry_schema.h"
#include "import.h"
#include "routing_log.h"
#include "telemetry_reader.h"  /* moe_import_load_routes: routes/ of a telemetry file */

#define IMP_KEYS_MAX        8        /* label keys kept per file */
#define IMP_VALUES_MAX      4096     /* distinct values kept per label key */
#define IMP_LABEL_TABLE_MAX 256      /* keys with at most this many values get [V][L][E] counts */
#define IMP_OTHER_VALUE     "(other)"
#define IMP_DIM_MAX         (1 << 20) /* experts, layers, top_k upper bound */
#define IMP_COSELECT_MAX    ((int64_t)1 << 26) /* L*E*E entries above which coselect is skipped */
#define IMP_CHUNK_BYTES     (1u << 20)
#define IMP_WARN_MAX        10       /* bad rows listed with --skip-bad */
#define IMP_LINE_MAX        (1 << 20) /* bytes of one line (or quoted CSV record) */
#define IMP_SUM_MAX         ((int64_t)1 << 62) /* a step/layer/expert's summed count */
#define IMP_DEFAULT_TOL     1e-3
#define IMP_DEFAULT_MAX_SKIP 0.01    /* --skip-bad refuses to drop more than this share of rows */
#define IMP_SEQ_NONE        "none"

/* Field names taken as the sequence (prompt, document) field when --sequence-field is not
 * given, in this order of preference: the first one present in the first data row wins. */
static const char *const imp_seq_auto[] = {"problem_id", "doc_id", "sample", "sample_id",
                                           "seq_id", "sequence_id", "request_id", "prompt_id"};

/* Records the error text in c->log and evaluates to -1. */
#define IMP_FAIL(c, st, ...) ((void)MOE_ERROR_SET(&(c)->log, (st), __VA_ARGS__), -1)

typedef enum { IMP_PROBS_NORMALIZED = 0, IMP_PROBS_SOFTMAX = 1, IMP_PROBS_AUTO = 2 } imp_probs_t;
static const char *const imp_format_names[] = {"jsonl", "csv", "counts"};

typedef struct imp_opts {
    const char *input, *output;
    int         format;           /* moe_rlog_format_t, -1: from the extension / header */
    int64_t     experts, top_k, layers, tokens_per_step, route_samples; /* -1: not given */
    int         skip_bad, quiet, assume_dropless, follow;
    imp_probs_t probs;            /* IMP_PROBS_AUTO until the rows decide (imp_probs_decide) */
    double      prob_tol, max_skip;
    const char *sequence_field;   /* NULL: auto-detect (imp_seq_auto), "none": no sequence */
} imp_opts_t;

/* Distinct values of one label key. */
typedef struct imp_key {
    char     name[MOE_RLOG_KEY_MAX];
    char   **values;
    int64_t *rows;          /* rows carrying each value */
    int      nvalues, cap;
    int32_t *hash;          /* open addressing, value index or -1 */
    size_t   hcap;
    int      other;         /* index of IMP_OTHER_VALUE once the value cap is hit, else -1 */
    int      nocap;         /* 1: no value cap (the sequence table) */
} imp_key_t;

/* All accepted rows (structure of arrays); row i's experts at expert[i*k..]. */
typedef struct imp_data {
    size_t     n, cap;
    int        k;           /* experts per row, fixed by --top-k or the first row */
    unsigned   has;         /* MOE_RLOG_HAS_* bits of the first row; all rows agree */
    int        first;       /* no row accepted yet */
    int64_t   *step, *token, *count, *line;
    int64_t   *seq;         /* sequence index (order of first appearance), -1 = no sequence field */
    int32_t   *layer, *expert, *label;   /* label: [n][IMP_KEYS_MAX], -1 = absent */
    double    *prob;
    uint8_t   *dead;        /* dropped after reading (duplicates under --skip-bad) */
    int64_t    max_layer;
    imp_key_t  keys[IMP_KEYS_MAX];
    int        nkeys;
    int64_t    skipped, labels_dropped, keys_dropped;
    int64_t    live;        /* rows accepted and not dropped as duplicates */
    char       seq_field[MOE_RLOG_KEY_MAX]; /* the sequence field in use, "" = none */
    int        seq_auto;    /* 1: seq_field was auto-detected */
    imp_key_t  seqs;        /* distinct sequence values */
    double     prob_min_sum, prob_max_sum; /* over rows with probabilities */
    char       first_bad[MOE_ERRMSG_MAX];
} imp_data_t;

/* What the file holds, derived from the rows. */
typedef struct imp_out {
    int64_t  S, L, E, k;        /* k = 0: unknown (counts without --top-k) */
    int64_t *step_value;        /* [S] original step values */
    int64_t *routed;            /* [S][L][E] */
    double  *router;            /* [S][L][MOE_RSTAT_COUNT], NaN = not derivable */
    int64_t *coselect;          /* [L][E][E] or NULL */
    int64_t  nroutes;
    int64_t *r_step, *r_token;  /* [N] */
    int32_t *r_expert;          /* [N][L][k] */
    float   *r_weight;          /* [N][L][k] */
    int32_t *r_label;           /* [N][IMP_KEYS_MAX] */
    int64_t *label_routed[IMP_KEYS_MAX]; /* [V][L][E] or NULL */
    int64_t  incomplete_tokens; /* tokens without a row for every layer (not in routes) */
    int64_t *layer_id;          /* [L] the log's layer id of each file layer */
    int32_t *layer_index;       /* [max layer id + 1] file layer of a log layer id, -1 = absent */
    double   top1_weight_sum, top1_weight_n; /* largest normalised weight per (token, layer) */
} imp_out_t;

typedef struct imp_ctx {
    imp_opts_t opt;
    moe_log_t  log;
    imp_data_t d;
    imp_out_t  o;
    const char *fmt_name;
} imp_ctx_t;

/* The temporary output, removed by the signal handler and on every failure. */
static char imp_tmp_path[4096];
static volatile sig_atomic_t imp_tmp_live;

static void imp_on_signal(int sig)
{
    if (imp_tmp_live)
        unlink(imp_tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---------------------------------------------------------------- options ------------- */

static void imp_usage(FILE *out)
{
    fprintf(out,
        "usage: moerun-import INPUT -o OUT.h5 --experts E [options]\n"
        "Turns a routing log recorded from a real model into a moerun telemetry file\n"
        "(docs/import.md) that moerun-analyze reads.\n"
        "  INPUT                 JSON lines (.jsonl/.ndjson/.json), CSV (.csv) or a counts CSV\n"
        "  -o, --output FILE     the telemetry file (written under a temporary name, then renamed)\n"
        "  --format F            jsonl | csv | counts (default: from the extension; .csv files\n"
        "                        with 'expert' and 'count' columns are counts)\n"
        "  --experts E           number of experts per layer (required; ids must be in [0, E))\n"
        "  --top-k K             experts per row (default: the first row's; rows must agree)\n"
        "  --layers L            number of layers (default: largest layer + 1; larger ids are errors)\n"
        "  --tokens-per-step T   step = token_idx / T for rows without a 'step' field\n"
        "  --sequence-field NAME the field naming the sequence (prompt, document) of a row:\n"
        "                        token_idx restarts in every sequence. Default: the first of\n"
        "                        problem_id, doc_id, sample, sample_id, seq_id, sequence_id,\n"
        "                        request_id, prompt_id in the first row; 'none': no sequence\n"
        "  --probs P             auto (default): normalized if every row's gating_probs sum to\n"
        "                        1 +- tol, else softmax; normalized: the renormalised weights of\n"
        "                        the selected experts; softmax: the router's softmax\n"
        "                        probabilities of the selected experts (sum <= 1), which also give\n"
        "                        top1_prob and top1_top2_margin\n"
        "  --prob-tol X          tolerance of those sums (default 1e-3)\n"
        "  --max-skip X          with --skip-bad: refuse if more than this share of the rows is\n"
        "                        bad (default 0.01; 1 keeps whatever is good)\n"
        "  --route-samples N     tokens per step kept in routes/ (default: all; 0: none)\n"
        "  --assume-dropless     write processed = routed, dropped = 0, capacity = -1 (dropless)\n"
        "  --skip-bad            skip malformed rows, report how many (default: stop at the first)\n"
        "  --quiet               no warnings and no summary line\n"
        "  --follow-symlinks     an output path that is a symbolic link writes the file it names\n"
        "                        (otherwise refused, as are devices, FIFOs and the input file)\n"
        "  --help                this text\n"
        "Exit status: 0 written, 1 bad input or I/O error (no output written), 2 usage error.\n");
}

static int imp_parse_i64(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *v)
{
    char     *end;
    long long x;

    errno = 0;
    x = s ? strtoll(s, &end, 10) : 0;
    if (s == NULL || s[0] == '\0' || *end != '\0' || errno != 0 || x < lo || x > hi) {
        fprintf(stderr, "moerun-import: %s: '%s' is not an integer in [%lld, %lld]\n", flag,
                s ? s : "", (long long)lo, (long long)hi);
        return -1;
    }
    *v = x;
    return 0;
}

/* 1: the option takes a value, 0: a switch, -1: unknown. */
static int imp_option_kind(const char *name)
{
    static const char *const with_value[] = {"-o", "--output", "--format", "--experts",
                                             "--top-k", "--layers", "--tokens-per-step",
                                             "--route-samples", "--probs", "--prob-tol",
                                             "--sequence-field", "--max-skip"};
    static const char *const switches[] = {"-h", "--help", "--skip-bad", "--quiet",
                                           "--assume-dropless", "--follow-symlinks"};
    size_t i;

    for (i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(name, with_value[i]) == 0)
            return 1;
    for (i = 0; i < sizeof(switches) / sizeof(switches[0]); i++)
        if (strcmp(name, switches[i]) == 0)
            return 0;
    return -1;
}

/* Parses argv into o; returns 0, 1 for --help, or -1 after printing a usage error. */
static int imp_parse_args(int argc, char **argv, imp_opts_t *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->format = -1;
    o->experts = o->top_k = o->layers = o->tokens_per_step = o->route_samples = -1;
    o->prob_tol = IMP_DEFAULT_TOL;
    o->max_skip = IMP_DEFAULT_MAX_SKIP;
    o->probs = IMP_PROBS_AUTO;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL, *eq;
        char        name[64];
        int         takes;

        if (a[0] != '-' || a[1] == '\0') {
            if (o->input != NULL) {
                fprintf(stderr, "moerun-import: more than one input given ('%s')\n", a);
                return -1;
            }
            o->input = a;
            continue;
        }
        eq = strchr(a, '=');
        snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        takes = imp_option_kind(name);
        if (takes < 0) {
            fprintf(stderr, "moerun-import: unknown option '%s' (see --help)\n", name);
            return -1;
        }
        if (takes) {
            val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (val == NULL) {
                fprintf(stderr, "moerun-import: %s needs a value\n", name);
                return -1;
            }
        } else if (eq) {
            fprintf(stderr, "moerun-import: %s takes no value\n", name);
            return -1;
        }
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            return 1;
        } else if (strcmp(name, "-o") == 0 || strcmp(name, "--output") == 0) {
            o->output = val;
        } else if (strcmp(name, "--follow-symlinks") == 0) {
            o->follow = 1;
        } else if (strcmp(name, "--format") == 0) {
            for (o->format = 0; o->format < 3; o->format++)
                if (strcmp(val, imp_format_names[o->format]) == 0)
                    break;
            if (o->format == 3) {
                fprintf(stderr, "moerun-import: --format: '%s' is not one of jsonl, csv, counts\n",
                        val);
                return -1;
            }
        } else if (strcmp(name, "--experts") == 0) {
            if (imp_parse_i64(name, val, 1, IMP_DIM_MAX, &o->experts))
                return -1;
        } else if (strcmp(name, "--top-k") == 0) {
            if (imp_parse_i64(name, val, 1, MOE_RLOG_KMAX, &o->top_k))
                return -1;
        } else if (strcmp(name, "--layers") == 0) {
            if (imp_parse_i64(name, val, 1, IMP_DIM_MAX, &o->layers))
                return -1;
        } else if (strcmp(name, "--tokens-per-step") == 0) {
            if (imp_parse_i64(name, val, 1, MOE_RLOG_ID_MAX, &o->tokens_per_step))
                return -1;
        } else if (strcmp(name, "--route-samples") == 0) {
            if (imp_parse_i64(name, val, 0, MOE_RLOG_ID_MAX, &o->route_samples))
                return -1;
        } else if (strcmp(name, "--probs") == 0) {
            if (strcmp(val, "normalized") == 0)
                o->probs = IMP_PROBS_NORMALIZED;
            else if (strcmp(val, "softmax") == 0)
                o->probs = IMP_PROBS_SOFTMAX;
            else if (strcmp(val, "auto") == 0)
                o->probs = IMP_PROBS_AUTO;
            else {
                fprintf(stderr, "moerun-import: --probs: '%s' is not one of auto, normalized, "
                        "softmax\n", val);
                return -1;
            }
        } else if (strcmp(name, "--prob-tol") == 0) {
            char *end;
            o->prob_tol = strtod(val, &end);
            if (*end != '\0' || !(o->prob_tol >= 0 && o->prob_tol <= 1)) {
                fprintf(stderr, "moerun-import: --prob-tol: '%s' is not a number in [0, 1]\n",
                        val);
                return -1;
            }
        } else if (strcmp(name, "--max-skip") == 0) {
            char *end;
            o->max_skip = strtod(val, &end);
            if (*end != '\0' || !(o->max_skip >= 0 && o->max_skip <= 1)) {
                fprintf(stderr, "moerun-import: --max-skip: '%s' is not a number in [0, 1]\n",
                        val);
                return -1;
            }
        } else if (strcmp(name, "--sequence-field") == 0) {
            if (val[0] == '\0' || strlen(val) >= MOE_RLOG_KEY_MAX) {
                fprintf(stderr, "moerun-import: --sequence-field: a field name of 1..%d bytes, "
                        "or 'none'\n", MOE_RLOG_KEY_MAX - 1);
                return -1;
            }
            o->sequence_field = val;
        } else if (strcmp(name, "--skip-bad") == 0) {
            o->skip_bad = 1;
        } else if (strcmp(name, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(name, "--assume-dropless") == 0) {
            o->assume_dropless = 1;
        } else {
            fprintf(stderr, "moerun-import: unknown option '%s' (see --help)\n", name);
            return -1;
        }
    }
    if (o->input == NULL) {
        fprintf(stderr, "moerun-import: no input file given (see --help)\n");
        return -1;
    }
    if (o->output == NULL || o->output[0] == '\0') {
        fprintf(stderr, "moerun-import: no output given: -o OUT.h5\n");
        return -1;
    }
    if (o->experts < 0) {
        fprintf(stderr, "moerun-import: --experts is required: the number of experts cannot be "
                        "inferred from a log (experts never selected do not appear in it)\n");
        return -1;
    }
    if (o->top_k > o->experts) {
        fprintf(stderr, "moerun-import: --top-k %lld is larger than --experts %lld\n",
                (long long)o->top_k, (long long)o->experts);
        return -1;
    }
    return 0;
}

/* Format from the extension: .jsonl/.ndjson/.json -> jsonl, .csv -> csv (refined by the header). */
static int imp_format_from_name(const char *path)
{
    const char *dot = strrchr(path, '.');

    if (dot == NULL)
        return -1;
    if (strcmp(dot, ".jsonl") == 0 || strcmp(dot, ".ndjson") == 0 || strcmp(dot, ".json") == 0)
        return MOE_RLOG_JSONL;
    if (strcmp(dot, ".csv") == 0)
        return MOE_RLOG_CSV;
    return -1;
}

/* ---------------------------------------------------------------- labels -------------- */

static uint64_t imp_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static int imp_key_grow_hash(imp_key_t *k)
{
    size_t   ncap = k->hcap ? k->hcap * 2 : 64, i;
    int32_t *h = malloc(ncap * sizeof(int32_t));

    if (h == NULL)
        return -1;
    for (i = 0; i < ncap; i++)
        h[i] = -1;
    for (i = 0; i < (size_t)k->nvalues; i++) {
        size_t j = imp_hash(k->values[i]) & (ncap - 1);
        while (h[j] >= 0)
            j = (j + 1) & (ncap - 1);
        h[j] = (int32_t)i;
    }
    free(k->hash);
    k->hash = h;
    k->hcap = ncap;
    return 0;
}

/* Index of `value` in the key's table, adding it (or mapping it to "(other)"); -1 on ENOMEM. */
static int imp_key_value(imp_key_t *k, const char *value)
{
    size_t j;

    if (k->hcap == 0 || (size_t)(k->nvalues + 1) * 2 > k->hcap)
        if (imp_key_grow_hash(k))
            return -1;
    j = imp_hash(value) & (k->hcap - 1);
    while (k->hash[j] >= 0) {
        if (strcmp(k->values[k->hash[j]], value) == 0)
            return k->hash[j];
        j = (j + 1) & (k->hcap - 1);
    }
    if (k->nvalues >= IMP_VALUES_MAX && !k->nocap) {
        if (k->other < 0) {
            k->other = -2; /* guard against recursion */
            k->other = imp_key_value(k, IMP_OTHER_VALUE);
            if (k->other < 0)
                return -1;
        }
        return k->other;
    }
    if (k->nvalues == k->cap) {
        int      ncap = k->cap ? k->cap * 2 : 16;
        char   **v = realloc(k->values, (size_t)ncap * sizeof(char *));
        int64_t *r;
        if (v == NULL)
            return -1;
        k->values = v;
        r = realloc(k->rows, (size_t)ncap * sizeof(int64_t));
        if (r == NULL)
            return -1;
        k->rows = r;
        k->cap = ncap;
    }
    if ((k->values[k->nvalues] = strdup(value)) == NULL)
        return -1;
    k->rows[k->nvalues] = 0;
    k->hash[j] = k->nvalues;
    return k->nvalues++;
}

/* Records the row's labels in row slot `i`; returns -1 on ENOMEM. */
static int imp_labels_add(imp_data_t *d, size_t i, const moe_rlog_row_t *row)
{
    int32_t *lab = d->label + i * IMP_KEYS_MAX;
    int      j, q;

    for (q = 0; q < IMP_KEYS_MAX; q++)
        lab[q] = -1;
    d->labels_dropped += row->labels_dropped;
    for (j = 0; j < row->nlabels; j++) {
        int v;
        for (q = 0; q < d->nkeys && strcmp(d->keys[q].name, row->label[j].key) != 0; q++)
            ;
        if (q == d->nkeys) {
            if (d->nkeys == IMP_KEYS_MAX) {
                d->keys_dropped++;
                continue;
            }
            memset(&d->keys[q], 0, sizeof(d->keys[q]));
            d->keys[q].other = -1;
            snprintf(d->keys[q].name, sizeof(d->keys[q].name), "%s", row->label[j].key);
            d->nkeys++;
        }
        if ((v = imp_key_value(&d->keys[q], row->label[j].value)) < 0)
            return -1;
        d->keys[q].rows[v]++;
        lab[q] = v;
    }
    return 0;
}

/* ---------------------------------------------------------------- reading ------------- */

static int imp_data_grow(imp_data_t *d)
{
    size_t ncap = d->cap ? d->cap * 2 : 1024;
    size_t k = (size_t)d->k;

#define IMP_GROW(p, per)                                                  \
    do {                                                                  \
        void *q = realloc((p), ncap * (per) * sizeof(*(p)));              \
        if (q == NULL)                                                    \
            return -1;                                                    \
        (p) = q;                                                          \
    } while (0)
    IMP_GROW(d->step, 1);
    IMP_GROW(d->token, 1);
    IMP_GROW(d->count, 1);
    IMP_GROW(d->line, 1);
    IMP_GROW(d->seq, 1);
    IMP_GROW(d->layer, 1);
    IMP_GROW(d->dead, 1);
    IMP_GROW(d->expert, k);
    IMP_GROW(d->prob, k);
    IMP_GROW(d->label, IMP_KEYS_MAX);
#undef IMP_GROW
    d->cap = ncap;
    return 0;
}

/* The value of label `key` of a row, or NULL. */
static const char *imp_row_label(const moe_rlog_row_t *row, const char *key)
{
    int j;

    for (j = 0; j < row->nlabels; j++)
        if (strcmp(row->label[j].key, key) == 0)
            return row->label[j].value;
    return NULL;
}

/*
 * Chooses the sequence field from the first data row: --sequence-field NAME as given,
 * "none" for no sequence, else the first name of imp_seq_auto that the row carries.
 */
static void imp_seq_detect(imp_ctx_t *c, const moe_rlog_row_t *row)
{
    imp_data_t *d = &c->d;
    size_t      i;

    d->seq_field[0] = '\0';
    d->seq_auto = 0;
    if (c->opt.sequence_field != NULL) {
        if (strcmp(c->opt.sequence_field, IMP_SEQ_NONE) != 0)
            snprintf(d->seq_field, sizeof(d->seq_field), "%s", c->opt.sequence_field);
        return;
    }
    for (i = 0; i < sizeof(imp_seq_auto) / sizeof(imp_seq_auto[0]); i++)
        if (imp_row_label(row, imp_seq_auto[i]) != NULL) {
            snprintf(d->seq_field, sizeof(d->seq_field), "%s", imp_seq_auto[i]);
            d->seq_auto = 1;
            return;
        }
}

/*
 * Checks a parsed row against the options and the rows before it. Returns 0 if it is good,
 * else fills msg (the field and the reason).
 */
static int imp_row_check(imp_ctx_t *c, const moe_rlog_row_t *row, char *msg, size_t n)
{
    const imp_opts_t *o = &c->opt;
    imp_data_t       *d = &c->d;
    unsigned          want = d->has;
    int               i;
    double            sum = 0;

    if (o->layers > 0 && row->layer >= o->layers) {
        snprintf(msg, n, "field 'layer': %lld out of range [0, %lld) (--layers %lld)",
                 (long long)row->layer, (long long)o->layers, (long long)o->layers);
        return -1;
    }
    if (row->layer >= IMP_DIM_MAX) {
        snprintf(msg, n, "field 'layer': %lld is implausibly large (limit %d; give --layers)",
                 (long long)row->layer, IMP_DIM_MAX);
        return -1;
    }
    for (i = 0; i < row->k; i++)
        if (row->expert[i] >= o->experts) {
            snprintf(msg, n, "field '%s': expert %lld out of range [0, %lld) (--experts %lld)",
                     c->opt.format == MOE_RLOG_COUNTS ? "expert" : "experts",
                     (long long)row->expert[i], (long long)o->experts, (long long)o->experts);
            return -1;
        }
    if (o->format != MOE_RLOG_COUNTS) {
        int k = o->top_k > 0 ? (int)o->top_k : (d->first ? row->k : d->k);
        if (row->k != k) {
            snprintf(msg, n, "field 'experts': %d experts, expected %d (%s)", row->k, k,
                     o->top_k > 0 ? "--top-k" : "the first row's count; rows must agree");
            return -1;
        }
        if (row->k > o->experts) {
            snprintf(msg, n, "field 'experts': %d experts but --experts is %lld", row->k,
                     (long long)o->experts);
            return -1;
        }
    }
    if (o->format != MOE_RLOG_COUNTS && d->first)
        imp_seq_detect(c, row);
    if (d->seq_field[0] != '\0') {
        if (imp_row_label(row, d->seq_field) == NULL) {
            snprintf(msg, n, "field '%s' missing (the sequence field%s; all rows must have it)",
                     d->seq_field, d->seq_auto ? ", detected from the first row: give "
                     "--sequence-field none if token_idx does not restart per sequence" : "");
            return -1;
        }
        if (o->tokens_per_step > 0) {
            snprintf(msg, n, "--tokens-per-step cannot split a log with a sequence field ('%s'%s): "
                     "token_idx restarts in every sequence; give 'step' in the log, or "
                     "--sequence-field none if token_idx counts across the whole log",
                     d->seq_field, d->seq_auto ? ", detected" : "");
            return -1;
        }
    }
    if (o->tokens_per_step > 0) {
        if (row->has & MOE_RLOG_HAS_STEP) {
            snprintf(msg, n, "field 'step' present and --tokens-per-step given: use one of them");
            return -1;
        }
        if (!(row->has & MOE_RLOG_HAS_TOKEN)) {
            snprintf(msg, n, "field 'token_idx' missing (needed by --tokens-per-step)");
            return -1;
        }
    }
    if (!d->first) {
        static const struct { unsigned bit; const char *name; } f[] = {
            {MOE_RLOG_HAS_STEP, "step"}, {MOE_RLOG_HAS_TOKEN, "token_idx"},
            {MOE_RLOG_HAS_PROBS, "gating_probs"}};
        for (i = 0; i < 3; i++)
            if ((row->has & f[i].bit) != (want & f[i].bit)) {
                snprintf(msg, n, "field '%s' %s (the first row %s it; all rows must agree)",
                         f[i].name, (row->has & f[i].bit) ? "present" : "missing",
                         (want & f[i].bit) ? "has" : "does not have");
                return -1;
            }
    }
    if (row->has & MOE_RLOG_HAS_PROBS) {
        for (i = 0; i < row->k; i++)
            sum += row->prob[i];
        if (o->probs == IMP_PROBS_NORMALIZED && fabs(sum - 1) > o->prob_tol) {
            snprintf(msg, n, "field 'gating_probs': sum %.6g is not 1 +- %g (--probs normalized; "
                     "use --probs softmax if they are raw router probabilities)", sum,
                     o->prob_tol);
            return -1;
        }
        if (o->probs != IMP_PROBS_NORMALIZED && sum > 1 + o->prob_tol) {
            snprintf(msg, n, "field 'gating_probs': sum %.6g is above 1 + %g (--probs %s: "
                     "probabilities of one softmax sum to at most 1)", sum, o->prob_tol,
                     o->probs == IMP_PROBS_SOFTMAX ? "softmax" : "auto");
            return -1;
        }
    }
    return 0;
}

/* Records a bad row: error (returns -1) or, with --skip-bad, counts it (returns 0). */
static int imp_bad(imp_ctx_t *c, int64_t line, const char *msg)
{
    if (!c->opt.skip_bad) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s:%lld: %s", c->opt.input, (long long)line,
                      msg);
        return -1;
    }
    if (c->d.skipped == 0)
        snprintf(c->d.first_bad, sizeof(c->d.first_bad), "%s:%lld: %s", c->opt.input,
                 (long long)line, msg);
    if (c->d.skipped < IMP_WARN_MAX && !c->opt.quiet) {
        char where[64];
        snprintf(where, sizeof(where), ":%lld: ", (long long)line);
        fputs("moerun-import: warning: skipped ", stderr);
        moe_esc_term_line(stderr, c->opt.input);
        fputs(where, stderr);
        moe_esc_term_line(stderr, msg);
        fputc('\n', stderr);
    }
    c->d.skipped++;
    return 0;
}

/* Stores an accepted row; experts best first (by probability, stable) when probs are given. */
static int imp_store(imp_ctx_t *c, const moe_rlog_row_t *row, int64_t line)
{
    imp_data_t *d = &c->d;
    size_t      i = d->n, j, q;
    int         idx[MOE_RLOG_KMAX];

    if (d->first) {
        d->first = 0;
        d->has = row->has;
        d->k = row->k;
    }
    if (d->n == d->cap && imp_data_grow(d))
        return IMP_FAIL(c, MOE_ERR_NOMEM, "out of memory after %zu rows", d->n);
    for (j = 0; j < (size_t)row->k; j++)
        idx[j] = (int)j;
    if (row->has & MOE_RLOG_HAS_PROBS)
        for (j = 1; j < (size_t)row->k; j++) /* insertion sort: stable, k is small */
            for (q = j; q > 0 && row->prob[idx[q]] > row->prob[idx[q - 1]]; q--) {
                int t = idx[q];
                idx[q] = idx[q - 1];
                idx[q - 1] = t;
            }
    for (j = 0; j < (size_t)row->k; j++) {
        d->expert[i * d->k + j] = (int32_t)row->expert[idx[j]];
        d->prob[i * d->k + j] = (row->has & MOE_RLOG_HAS_PROBS) ? row->prob[idx[j]] : NAN;
    }
    d->layer[i] = (int32_t)row->layer;
    d->token[i] = (row->has & MOE_RLOG_HAS_TOKEN) ? row->token : -1;
    d->seq[i] = -1;
    if (d->seq_field[0] != '\0') {
        int v = imp_key_value(&d->seqs, imp_row_label(row, d->seq_field));
        if (v < 0)
            return IMP_FAIL(c, MOE_ERR_NOMEM, "out of memory in the sequence table");
        d->seq[i] = v;
    }
    if (row->has & MOE_RLOG_HAS_PROBS) {
        double sum = 0;
        for (j = 0; j < (size_t)row->k; j++)
            sum += row->prob[j];
        if (d->n == 0 || sum < d->prob_min_sum)
            d->prob_min_sum = sum;
        if (d->n == 0 || sum > d->prob_max_sum)
            d->prob_max_sum = sum;
    }
    /* step: the log's field, else token_idx / T, else the sequence (one step per sequence,
     * in order of first appearance), else 0 */
    if (row->has & MOE_RLOG_HAS_STEP)
        d->step[i] = row->step;
    else if (c->opt.tokens_per_step > 0)
        d->step[i] = row->token / c->opt.tokens_per_step;
    else if (d->seq[i] >= 0)
        d->step[i] = d->seq[i];
    else
        d->step[i] = 0;
    d->count[i] = row->count;
    d->line[i] = line;
    d->dead[i] = 0;
    if (row->layer > d->max_layer)
        d->max_layer = row->layer;
    if (imp_labels_add(d, i, row))
        return IMP_FAIL(c, MOE_ERR_NOMEM, "out of memory in the label tables");
    d->n++;
    return 0;
}

/* One parsed (or failed) row: check, then store or report. Returns -1 to stop. */
static int imp_take(imp_ctx_t *c, moe_rlog_result_t rc, const moe_rlog_row_t *row,
                    const char *err, int64_t line)
{
    char msg[MOE_RLOG_ERR_MAX + 128];

    if (rc != MOE_RLOG_OK)
        return imp_bad(c, line, err);
    if (imp_row_check(c, row, msg, sizeof(msg)))
        return imp_bad(c, line, msg);
    return imp_store(c, row, line);
}

static int imp_blank(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Reads the whole input into c->d. */
static int imp_read(imp_ctx_t *c)
{
    FILE              *fp;
    char              *line = NULL, *rec = NULL, *buf = NULL, *fields[MOE_RLOG_CSV_FIELDS_MAX];
    size_t             lcap = 0, rlen = 0, rcap = 0, bcap = 0;
    ssize_t            got;
    int64_t            lineno = 0, rec_line = 0;
    int                header_done = 0, nf, rv = -1;
    moe_rlog_csv_map_t map;
    moe_rlog_row_t    *row = malloc(sizeof(*row));
    char               err[MOE_RLOG_ERR_MAX];

    c->d.first = 1;
    c->d.max_layer = -1;
    c->d.seqs.other = -1;
    c->d.seqs.nocap = 1;
    if (row == NULL)
        return IMP_FAIL(c, MOE_ERR_NOMEM, "out of memory");
    if (strcmp(c->opt.input, "-") != 0 && stat(c->opt.input, &(struct stat){0}) == 0 &&
        moe_in_check(c->opt.input, err, sizeof(err)) != 0) {
        /* a regular file, or a FIFO read to its end with bounded lines; never a device */
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s", err);
        free(row);
        return -1;
    }
    fp = strcmp(c->opt.input, "-") == 0 ? stdin : fopen(c->opt.input, "r");
    if (fp == NULL) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_IO, "%s: cannot open: %s", c->opt.input, strerror(errno));
        free(row);
        return -1;
    }
    while ((got = moe_getline_max(&line, &lcap, IMP_LINE_MAX, fp)) != -1) {
        size_t n = (size_t)got;
        lineno++;
        if (got == -2 || (rlen > 0 && rlen + n > IMP_LINE_MAX)) {
            (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s:%lld: %s longer than %d bytes "
                                "(not a routing log?)", c->opt.input,
                                (long long)(rlen > 0 ? rec_line : lineno),
                                rlen > 0 ? "record" : "line", IMP_LINE_MAX);
            goto out;
        }
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            memmove(line, line + 3, n - 2); /* UTF-8 byte-order mark */
            n -= 3;
        }
        if (c->opt.format == MOE_RLOG_JSONL) {
            if (imp_blank(line, n))
                continue;
            if (imp_take(c, moe_rlog_parse_json(line, n, row, err, sizeof(err)), row, err,
                         lineno))
                goto out;
            continue;
        }
        /* CSV: a record may continue over lines inside a quoted field */
        if (rlen == 0) {
            if (imp_blank(line, n))
                continue;
            rec_line = lineno;
        }
        if (rlen + n + 2 > rcap) {
            size_t ncap = (rlen + n + 2) * 2;
            char  *q = realloc(rec, ncap), *b;
            if (q == NULL)
                goto nomem;
            rec = q;
            rcap = ncap;
            if ((b = realloc(buf, ncap)) == NULL)
                goto nomem;
            buf = b;
            bcap = ncap;
        }
        if (rlen > 0)
            rec[rlen++] = '\n';
        memcpy(rec + rlen, line, n);
        rlen += n;
        rec[rlen] = '\0';
        {
            moe_rlog_result_t rc = moe_rlog_csv_split(rec, rlen, buf, bcap, fields,
                                                      MOE_RLOG_CSV_FIELDS_MAX, &nf, err,
                                                      sizeof(err));
            if (rc == MOE_RLOG_INCOMPLETE)
                continue;
            rlen = 0;
            if (!header_done) {
                int fmt = c->opt.format;
                if (rc != MOE_RLOG_OK) {
                    (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s:%lld: header: %s", c->opt.input,
                                  (long long)rec_line, err);
                    goto out;
                }
                if (fmt < 0) { /* .csv: counts if it has 'expert' and 'count' columns */
                    int i, e = 0, cnt = 0;
                    for (i = 0; i < nf; i++) {
                        e |= strcmp(fields[i], "expert") == 0;
                        cnt |= strcmp(fields[i], "count") == 0;
                    }
                    fmt = e && cnt ? MOE_RLOG_COUNTS : MOE_RLOG_CSV;
                    c->opt.format = fmt;
                    c->fmt_name = imp_format_names[fmt];
                }
                if (moe_rlog_csv_header(fmt, fields, nf, &map, err, sizeof(err)) != MOE_RLOG_OK) {
                    (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s:%lld: %s", c->opt.input,
                                  (long long)rec_line, err);
                    goto out;
                }
                header_done = 1;
                continue;
            }
            if (rc == MOE_RLOG_OK)
                rc = moe_rlog_parse_csv(&map, fields, nf, row, err, sizeof(err));
            if (imp_take(c, rc, row, err, rec_line))
                goto out;
        }
    }
    if (ferror(fp)) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_IO, "%s: read error: %s", c->opt.input, strerror(errno));
        goto out;
    }
    if (rlen > 0 &&
        imp_take(c, MOE_RLOG_BAD, row, "unterminated quoted field at the end of the file",
                 rec_line))
        goto out;
    if (c->opt.format != MOE_RLOG_JSONL && !header_done) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s: empty input (no header row)", c->opt.input);
        goto out;
    }
    rv = 0;
    goto out;
nomem:
    (void)MOE_ERROR_SET(&c->log, MOE_ERR_NOMEM, "out of memory at line %lld", (long long)lineno);
out:
    if (fp != stdin)
        fclose(fp);
    free(line);
    free(rec);
    free(buf);
    free(row);
    return rv;
}

/* ---------------------------------------------------------------- deriving ------------ */

static const imp_data_t *imp_sort_data;

/* Orders rows by (step, sequence, token, layer, line). */
static int imp_cmp_rows(const void *a, const void *b)
{
    const imp_data_t *d = imp_sort_data;
    size_t            i = *(const size_t *)a, j = *(const size_t *)b;

#define IMP_CMP(x, y) if ((x) != (y)) return (x) < (y) ? -1 : 1
    IMP_CMP(d->step[i], d->step[j]);
    IMP_CMP(d->seq[i], d->seq[j]);
    IMP_CMP(d->token[i], d->token[j]);
    IMP_CMP(d->layer[i], d->layer[j]);
    IMP_CMP(d->line[i], d->line[j]);
#undef IMP_CMP
    return 0;
}

static int imp_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * The message for a second row b with the key of row a: which key, where the first was, and
 * what to do (a log whose token_idx restarts per prompt needs a sequence field).
 */
static void imp_dup_message(const imp_ctx_t *c, size_t a, size_t b, char *msg, size_t n)
{
    const imp_data_t *d = &c->d;
    char              keys[200] = "";
    size_t            off = 0;
    int               q;

    for (q = 0; q < d->nkeys && off + 8 < sizeof(keys); q++)
        off += (size_t)snprintf(keys + off, sizeof(keys) - off, "%s%s", q ? ", " : "",
                                d->keys[q].name);
    if (d->seq_field[0] != '\0')
        snprintf(msg, n, "duplicate row for step %lld, %s '%s', token_idx %lld, layer %d "
                 "(first at line %lld): the same token of the same sequence twice",
                 (long long)d->step[b], d->seq_field, d->seqs.values[d->seq[b]],
                 (long long)d->token[b], d->layer[b], (long long)d->line[a]);
    else
        snprintf(msg, n, "duplicate row for step %lld, token_idx %lld, layer %d (first at line "
                 "%lld): if token_idx restarts for every prompt or document, name the field "
                 "that tells them apart with --sequence-field NAME (other fields in this log: "
                 "%s)", (long long)d->step[b], (long long)d->token[b], d->layer[b],
                 (long long)d->line[a], keys[0] ? keys : "none");
}

/* Rows with a token index, sorted; duplicates of (step, sequence, token, layer) are bad rows. */
static int imp_dedup(imp_ctx_t *c, size_t **order_p, size_t *n_p)
{
    imp_data_t *d = &c->d;
    size_t     *ord = malloc((d->n ? d->n : 1) * sizeof(size_t)), n = 0, i;
    char        msg[256];

    *order_p = NULL;
    *n_p = 0;
    if (ord == NULL)
        return IMP_FAIL(c, MOE_ERR_NOMEM, "out of memory");
    for (i = 0; i < d->n; i++)
        if (d->token[i] >= 0)
            ord[n++] = i;
    imp_sort_data = d;
    qsort(ord, n, sizeof(size_t), imp_cmp_rows);
    for (i = 1; i < n; i++) {
        size_t a = ord[i - 1], b = ord[i];
        if (d->step[a] == d->step[b] && d->seq[a] == d->seq[b] && d->token[a] == d->token[b] &&
            d->layer[a] == d->layer[b]) {
            imp_dup_message(c, a, b, msg, sizeof(msg));
            if (imp_bad(c, d->line[b], msg)) {
                free(ord);
                return -1;
            }
            d->dead[b] = 1;
            ord[i] = a; /* later duplicates compare with the first */
        }
    }
    /* drop the dead ones from the order */
    for (i = 0, *n_p = 0; i < n; i++)
        if (!d->dead[ord[i]] && (i == 0 || ord[i] != ord[i - 1]))
            ord[(*n_p)++] = ord[i];
    for (i = 0, d->live = 0; i < d->n; i++)
        d->live += !d->dead[i];
    *order_p = ord;
    return 0;
}

static size_t imp_step_index(const imp_out_t *o, int64_t v)
{
    size_t lo = 0, hi = (size_t)o->S;

    while (lo + 1 < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->step_value[mid] <= v)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/*
 * The file's layers: with --layers L, ids 0..L-1 (layers without rows stay, empty); without
 * it, only the layer ids that have rows, in increasing order (a counts table of layers 0, 9
 * and 20 gives 3 layers). import/layer_id keeps the log's id of each file layer.
 */
static int imp_layers(imp_ctx_t *c)
{
    imp_data_t *d = &c->d;
    imp_out_t  *o = &c->o;
    size_t      i, nid = (size_t)(c->opt.layers > 0 ? c->opt.layers : d->max_layer + 1);
    int64_t     l;

    o->layer_index = malloc((nid ? nid : 1) * sizeof(int32_t));
    o->layer_id = malloc((nid ? nid : 1) * sizeof(int64_t));
    if (o->layer_index == NULL || o->layer_id == NULL)
        return -1;
    for (i = 0; i < nid; i++)
        o->layer_index[i] = c->opt.layers > 0 ? (int32_t)i : -1;
    if (c->opt.layers <= 0)
        for (i = 0; i < d->n; i++)
            if (!d->dead[i])
                o->layer_index[d->layer[i]] = 0;
    for (i = 0, l = 0; i < nid; i++)
        if (o->layer_index[i] >= 0) {
            o->layer_index[i] = (int32_t)l;
            o->layer_id[l++] = (int64_t)i;
        }
    o->L = l;
    return 0;
}

/* --probs auto: normalized if every row's probabilities sum to 1 within the tolerance. */
static void imp_probs_decide(imp_ctx_t *c)
{
    if (c->opt.probs != IMP_PROBS_AUTO || !(c->d.has & MOE_RLOG_HAS_PROBS))
        return;
    c->opt.probs = c->d.prob_max_sum <= 1 + c->opt.prob_tol && c->d.prob_min_sum >= 1 - c->opt.prob_tol
                       ? IMP_PROBS_NORMALIZED : IMP_PROBS_SOFTMAX;
}

/* Counts, router statistics, co-selection and label tables from the live rows. */
static int imp_aggregate(imp_ctx_t *c)
{
    imp_data_t *d = &c->d;
    imp_out_t  *o = &c->o;
    size_t      i, n = 0, s, l, e, j, q, SL;
    int64_t    *vals = malloc((d->n ? d->n : 1) * sizeof(int64_t));
    double     *ntok = NULL, *top1 = NULL, *margin = NULL;
    int         counts = c->opt.format == MOE_RLOG_COUNTS;
    int         softmax = (d->has & MOE_RLOG_HAS_PROBS) && c->opt.probs == IMP_PROBS_SOFTMAX;

    if (vals == NULL)
        goto nomem;
    for (i = 0; i < d->n; i++)
        if (!d->dead[i])
            vals[n++] = d->step[i];
    qsort(vals, n, sizeof(int64_t), imp_cmp_i64);
    for (i = 0, o->S = 0; i < n; i++)
        if (i == 0 || vals[i] != vals[i - 1])
            vals[o->S++] = vals[i];
    o->step_value = vals;
    if (imp_layers(c))
        goto nomem;
    o->E = c->opt.experts;
    o->k = counts ? (c->opt.top_k > 0 ? c->opt.top_k : 0) : d->k;
    SL = (size_t)(o->S * o->L);
    o->routed = calloc(SL * (size_t)o->E, sizeof(int64_t));
    o->router = malloc(SL * MOE_RSTAT_COUNT * sizeof(double));
    ntok = calloc(SL, sizeof(double));
    top1 = calloc(SL, sizeof(double));
    margin = calloc(SL, sizeof(double));
    if (!o->routed || !o->router || !ntok || !top1 || !margin)
        goto nomem;
    if (!counts && o->L * o->E * o->E <= IMP_COSELECT_MAX &&
        (o->coselect = calloc((size_t)(o->L * o->E * o->E), sizeof(int64_t))) == NULL)
        goto nomem;
    if (!counts && o->coselect == NULL && !c->opt.quiet)
        fprintf(stderr, "moerun-import: warning: layers x experts^2 = %lld is above %lld: "
                "accumulated/coselect not written\n", (long long)(o->L * o->E * o->E),
                (long long)IMP_COSELECT_MAX);
    for (q = 0; q < (size_t)d->nkeys; q++)
        if (d->keys[q].nvalues <= IMP_LABEL_TABLE_MAX &&
            (o->label_routed[q] = calloc((size_t)(d->keys[q].nvalues * o->L * o->E),
                                         sizeof(int64_t))) == NULL)
            goto nomem;
    for (i = 0; i < d->n; i++) {
        const int32_t *ex = d->expert + i * d->k;
        const double  *pr = d->prob + i * d->k;
        if (d->dead[i])
            continue;
        s = imp_step_index(o, d->step[i]);
        l = (size_t)o->layer_index[d->layer[i]];
        for (j = 0; j < (size_t)d->k; j++) {
            int64_t *cell = &o->routed[(s * o->L + l) * o->E + ex[j]];
            /* checked: counts are < 2^53 each, but their sums could pass 2^63; a label's
             * sum is a part of the cell's, so checking the cell covers it */
            if (__builtin_add_overflow(*cell, d->count[i], cell) || *cell > IMP_SUM_MAX) {
                free(ntok);
                free(top1);
                free(margin);
                return IMP_FAIL(c, MOE_ERR_INVALID, "%s:%lld: field 'count': the counts of "
                                "step %lld layer %zu expert %d sum past 2^62", c->opt.input,
                                (long long)d->line[i], (long long)d->step[i], l, (int)ex[j]);
            }
            for (q = 0; q < (size_t)d->nkeys; q++) {
                int32_t v = d->label[i * IMP_KEYS_MAX + q];
                if (v >= 0 && o->label_routed[q])
                    o->label_routed[q][((size_t)v * o->L + l) * o->E + ex[j]] += d->count[i];
            }
            if (o->coselect)
                for (e = 0; e < (size_t)d->k; e++)
                    o->coselect[(l * o->E + ex[j]) * o->E + ex[e]]++;
        }
        ntok[s * o->L + l] += 1;
        if (d->has & MOE_RLOG_HAS_PROBS) {
            double sum = 0;
            for (j = 0; j < (size_t)d->k; j++)
                sum += pr[j];
            if (sum > 0) {
                o->top1_weight_sum += pr[0] / sum; /* best first */
                o->top1_weight_n += 1;
            }
        }
        if (softmax) {
            top1[s * o->L + l] += pr[0]; /* best first */
            if (d->k >= 2)
                margin[s * o->L + l] += pr[0] - pr[1];
        }
    }
    for (s = 0; s < (size_t)o->S; s++)
        for (l = 0; l < (size_t)o->L; l++) {
            double        *rs = o->router + (s * o->L + l) * MOE_RSTAT_COUNT, tot = 0, h = 0;
            const int64_t *x = o->routed + (s * o->L + l) * o->E;
            for (j = 0; j < MOE_RSTAT_COUNT; j++)
                rs[j] = NAN;
            for (e = 0; e < (size_t)o->E; e++)
                tot += (double)x[e];
            if (tot > 0) {
                for (e = 0; e < (size_t)o->E; e++)
                    if (x[e] > 0)
                        h -= ((double)x[e] / tot) * log((double)x[e] / tot);
                rs[MOE_RSTAT_LOAD_ENTROPY] = h;
                rs[MOE_RSTAT_LOAD_ENTROPY_NORM] = o->E > 1 ? h / log((double)o->E) : 1;
            }
            if (softmax && ntok[s * o->L + l] > 0) {
                rs[MOE_RSTAT_TOP1_PROB] = top1[s * o->L + l] / ntok[s * o->L + l];
                if (d->k >= 2)
                    rs[MOE_RSTAT_MARGIN] = margin[s * o->L + l] / ntok[s * o->L + l];
            }
        }
    free(ntok);
    free(top1);
    free(margin);
    return 0;
nomem:
    free(ntok);
    free(top1);
    free(margin);
    return IMP_FAIL(c, MOE_ERR_NOMEM, "out of memory for %lld steps x %lld layers "
                         "x %lld experts", (long long)o->S, (long long)o->L, (long long)o->E);
}

/*
 * routes/: tokens with a row for every layer, in (step, token) order, at most
 * --route-samples per step. ord holds the live rows with a token index, sorted.
 */
static int imp_routes(imp_ctx_t *c, const size_t *ord, size_t n)
{
    imp_data_t *d = &c->d;
    imp_out_t  *o = &c->o;
    size_t      pass, a, b, i, j, L = (size_t)o->L, k = (size_t)d->k;
    int64_t     N = 0, per_step = 0, cur_step = -1;

    for (pass = 0; pass < 2; pass++) {
        N = 0;
        cur_step = -1;
        o->incomplete_tokens = 0;
        for (a = 0; a < n; a = b) {
            size_t r0 = ord[a];
            for (b = a + 1; b < n && d->step[ord[b]] == d->step[r0] &&
                            d->seq[ord[b]] == d->seq[r0] && d->token[ord[b]] == d->token[r0]; b++)
                ;
            if (b - a != L) { /* rows are distinct layers below L: L rows = all layers */
                o->incomplete_tokens++;
                continue;
            }
            if (d->step[r0] != cur_step) {
                cur_step = d->step[r0];
                per_step = 0;
            }
            if (c->opt.route_samples >= 0 && per_step >= c->opt.route_samples)
                continue;
            per_step++;
            if (pass == 1) {
                o->r_step[N] = (int64_t)imp_step_index(o, d->step[r0]);
                o->r_token[N] = d->token[r0];
                for (j = 0; j < (size_t)IMP_KEYS_MAX; j++)
                    o->r_label[N * IMP_KEYS_MAX + j] = d->label[r0 * IMP_KEYS_MAX + j];
                for (i = a; i < b; i++) {
                    size_t         r = ord[i], l = (size_t)o->layer_index[d->layer[r]];
                    const double  *pr = d->prob + r * k;
                    double         sum = 0;
                    for (j = 0; j < k; j++)
                        sum += pr[j];
                    for (j = 0; j < k; j++) {
                        o->r_expert[((size_t)N * L + l) * k + j] = d->expert[r * k + j];
                        o->r_weight[((size_t)N * L + l) * k + j] =
                            (float)(c->opt.probs == IMP_PROBS_SOFTMAX ? (sum > 0 ? pr[j] / sum : NAN)
                                                                      : pr[j]);
                    }
                }
            }
            N++;
        }
        if (pass == 0) {
            o->nroutes = N;
            o->r_step = malloc((size_t)(N ? N : 1) * sizeof(int64_t));
            o->r_token = malloc((size_t)(N ? N : 1) * sizeof(int64_t));
            o->r_label = malloc((size_t)(N ? N : 1) * IMP_KEYS_MAX * sizeof(int32_t));
            o->r_expert = malloc((size_t)(N ? N : 1) * L * k * sizeof(int32_t));
            o->r_weight = malloc((size_t)(N ? N : 1) * L * k * sizeof(float));
            if (!o->r_step || !o->r_token || !o->r_label || !o->r_expert || !o->r_weight)
                return IMP_FAIL(c, MOE_ERR_NOMEM, "out of memory for %lld routes",
                                     (long long)N);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- writing ------------- */

typedef struct imp_h5 {
    imp_ctx_t *c;
    hid_t      file;
    int        failed;
} imp_h5_t;

/* Records the first HDF5 failure with its innermost message. */
static void imp_h5_fail(imp_h5_t *w, const char *what, const char *path)
{
    char text[400];

    if (w->failed)
        return;
    moe_h5_error_text(text, sizeof(text));
    (void)MOE_ERROR_SET(&w->c->log, MOE_ERR_HDF5, "%s: %s %s%s%s", w->c->opt.output, what, path,
                  text[0] ? ": " : "", text);
    w->failed = 1;
}

static void imp_attr(imp_h5_t *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype,
                     hsize_t n, const void *buf)
{
    hid_t sp = -1, a = -1;

    if (w->failed)
        return;
    sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    if (sp < 0 || (a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, mtype, buf) < 0)
        imp_h5_fail(w, "cannot write attribute", name);
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
}

static void imp_attr_i64(imp_h5_t *w, hid_t loc, const char *name, int64_t v)
{
    imp_attr(w, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, &v);
}

static void imp_attr_f64(imp_h5_t *w, hid_t loc, const char *name, double v)
{
    imp_attr(w, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &v);
}

/* Variable-length UTF-8 strings (n = 0: a scalar), as the runtime writer writes them. */
static void imp_attr_str(imp_h5_t *w, hid_t loc, const char *name, const char *const *s,
                         hsize_t n)
{
    if (!w->failed && moe_h5_attr_strings(loc, name, s, n) < 0)
        imp_h5_fail(w, "cannot write attribute", name);
}

static void imp_attr_s(imp_h5_t *w, hid_t loc, const char *name, const char *s)
{
    imp_attr_str(w, loc, name, &s, 0);
}

/*
 * Creates dataset `path` with dims[nd] and writes buf. appended: first dimension unlimited
 * and chunked (as the runtime writer's appended datasets); else contiguous. Returns the
 * dataset (the caller closes it) or -1. Its attributes are the caller's (imp_dset_schema:
 * the schema's; imp_dset_put: units, description and dimension labels given).
 */
static hid_t imp_dset(imp_h5_t *w, const char *path, hid_t ftype, hid_t mtype, int nd,
                      const hsize_t *dims, int appended, const void *buf)
{
    hsize_t maxd[4], chunk[4], row = H5Tget_size(ftype), nelem = 1;
    hid_t   sp = -1, dcpl = H5P_DEFAULT, d = -1;
    int     i;

    if (w->failed)
        return -1;
    for (i = 0; i < nd; i++) {
        maxd[i] = chunk[i] = dims[i];
        nelem *= dims[i];
        if (i > 0)
            row *= dims[i];
    }
    if (appended) {
        maxd[0] = H5S_UNLIMITED;
        chunk[0] = row > 0 && IMP_CHUNK_BYTES / row > 0 ? IMP_CHUNK_BYTES / row : 1;
        if (dims[0] > 0 && chunk[0] > dims[0])
            chunk[0] = dims[0];
        for (i = 1; i < nd; i++)
            if (chunk[i] == 0)
                chunk[i] = 1;
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (dcpl < 0 || H5Pset_chunk(dcpl, nd, chunk) < 0) {
            imp_h5_fail(w, "cannot set the chunks of", path);
            goto out;
        }
    }
    if ((sp = H5Screate_simple(nd, dims, maxd)) < 0 ||
        (d = H5Dcreate2(w->file, path, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0) {
        imp_h5_fail(w, "cannot create dataset", path);
        goto out;
    }
    if (nelem > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        imp_h5_fail(w, "cannot write dataset", path);
        goto out;
    }
out:
    if (dcpl != H5P_DEFAULT && dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    if (w->failed && d >= 0) {
        H5Dclose(d);
        d = -1;
    }
    return d;
}

/* An import-only dataset (import/...): contiguous, with units, description and labels. */
static void imp_dset_put(imp_h5_t *w, const char *path, hid_t ftype, hid_t mtype, int nd,
                         const hsize_t *dims, const char *units, const char *desc,
                         const char *const *labels, const void *buf)
{
    hid_t d = imp_dset(w, path, ftype, mtype, nd, dims, 0, buf);
    int   i;

    if (d < 0)
        return;
    if (units)
        imp_attr_s(w, d, "units", units);
    if (desc)
        imp_attr_s(w, d, "description", desc);
    for (i = 0; i < nd && !w->failed; i++)
        if (H5DSset_label(d, (unsigned)i, labels[i]) < 0)
            imp_h5_fail(w, "cannot label a dimension of", path);
    H5Dclose(d);
}

/*
 * Schema dataset `id` (moerun/telemetry_schema.h) with dims[] and buf: its path, types,
 * appended or fixed, labels, units and description, followed by `note` (what the import
 * assumed or could not know; NULL: none).
 */
static void imp_dset_schema(imp_h5_t *w, int id, const hsize_t *dims, const void *buf,
                            const char *note)
{
    const moe_tel_dset_t *def = moe_tel_dset(id);
    hid_t                 ft = moe_h5_elem_type(def->elem, 1), mt = moe_h5_elem_type(def->elem, 0);
    hid_t                 d = -1;

    if (ft < 0 || mt < 0)
        imp_h5_fail(w, "cannot create the type of", def->path);
    else
        d = imp_dset(w, def->path, ft, mt, def->rank, dims, moe_tel_dset_appended(def), buf);
    if (d >= 0 && !w->failed && moe_h5_describe(d, def, note) < 0)
        imp_h5_fail(w, "cannot describe", def->path);
    if (d >= 0)
        H5Dclose(d);
    if (ft >= 0)
        H5Tclose(ft);
    if (mt >= 0)
        H5Tclose(mt);
}

static void imp_group(imp_h5_t *w, const char *path)
{
    hid_t g;

    if (w->failed)
        return;
    if ((g = H5Gcreate2(w->file, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        imp_h5_fail(w, "cannot create group", path);
    else
        H5Gclose(g);
}

static void imp_now(char *buf, size_t n)
{
    time_t    t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void imp_write_root(imp_h5_t *w, const char *start_time)
{
    imp_ctx_t       *c = w->c;
    const imp_out_t *o = &c->o;
    char             src[32], now[32], ver[32];
    unsigned         maj, min, rel;

    snprintf(src, sizeof(src), "import:%s", c->fmt_name);
    imp_now(now, sizeof(now));
    H5get_libversion(&maj, &min, &rel);
    snprintf(ver, sizeof(ver), "%u.%u.%u", maj, min, rel);
    imp_attr_i64(w, w->file, "schema_version", MOE_TEL_SCHEMA_VERSION);
    imp_attr_s(w, w->file, "moerun_version", MOERUN_VERSION);
    imp_attr_s(w, w->file, "hdf5_version", ver);
    imp_attr_s(w, w->file, "source", src);
    imp_attr_s(w, w->file, "import_input", c->opt.input);
    imp_attr_s(w, w->file, "import_probs",
               !(c->d.has & MOE_RLOG_HAS_PROBS) ? "none"
               : c->opt.probs == IMP_PROBS_SOFTMAX ? "softmax" : "normalized");
    imp_attr_i64(w, w->file, "import_rows", c->d.live);
    if (c->d.seq_field[0] != '\0') {
        imp_attr_s(w, w->file, "import_sequence_field", c->d.seq_field);
        imp_attr_i64(w, w->file, "import_sequences", c->d.seqs.nvalues);
    }
    if (o->top1_weight_n > 0)
        imp_attr_f64(w, w->file, "import_top1_weight_mean", o->top1_weight_sum / o->top1_weight_n);
    imp_attr_s(w, w->file, "import_token_ids", "position"); /* routes/token is token_idx */
    imp_attr_i64(w, w->file, "import_skipped", c->d.skipped);
    imp_attr_i64(w, w->file, "import_incomplete_tokens", o->incomplete_tokens);
    imp_attr_i64(w, w->file, "import_assume_dropless", c->opt.assume_dropless);
    if (c->opt.tokens_per_step > 0)
        imp_attr_i64(w, w->file, "import_tokens_per_step", c->opt.tokens_per_step);
    imp_attr_s(w, w->file, "start_time", start_time);
    imp_attr_s(w, w->file, "end_time", now);
    imp_attr_s(w, w->file, "status", "complete");
    imp_attr_i64(w, w->file, "steps_completed", o->S);
    imp_attr_i64(w, w->file, "experts", o->E);
    imp_attr_i64(w, w->file, "layers", o->L);
    if (o->k > 0)
        imp_attr_i64(w, w->file, "top_k", o->k);
    if (o->r_step != NULL)
        imp_attr_i64(w, w->file, "route_samples", c->opt.route_samples);
    if (c->opt.assume_dropless)
        imp_attr_f64(w, w->file, "capacity_factor", 0.0);
}

static void imp_write_steps(imp_h5_t *w)
{
    imp_ctx_t       *c = w->c;
    const imp_out_t *o = &c->o;
    hsize_t          d3[3] = {(hsize_t)o->S, (hsize_t)o->L, (hsize_t)o->E};
    hsize_t          dr[3] = {(hsize_t)o->S, (hsize_t)o->L, MOE_RSTAT_COUNT};
    size_t           SLE = (size_t)(o->S * o->L * o->E), i;
    int64_t         *steps = malloc((size_t)o->S * sizeof(int64_t));
    int64_t         *zero = NULL, *cap = NULL;

    if (steps == NULL) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_NOMEM, "out of memory");
        w->failed = 1;
        return;
    }
    for (i = 0; i < (size_t)o->S; i++)
        steps[i] = (int64_t)i;
    imp_group(w, "steps");
    imp_dset_schema(w, MOE_TEL_DS_STEP, d3, steps, NULL);
    imp_dset_schema(w, MOE_TEL_DS_ROUTED, d3, o->routed, NULL);
    imp_dset_schema(w, MOE_TEL_DS_ROUTER, dr, o->router, "NaN: not derivable from the log");
    if (c->opt.assume_dropless) {
        zero = calloc(SLE ? SLE : 1, sizeof(int64_t));
        cap = malloc((size_t)(o->S * o->L > 0 ? o->S * o->L : 1) * sizeof(int64_t));
        if (zero == NULL || cap == NULL) {
            (void)MOE_ERROR_SET(&c->log, MOE_ERR_NOMEM, "out of memory");
            w->failed = 1;
        } else {
            for (i = 0; i < (size_t)(o->S * o->L); i++)
                cap[i] = -1;
            imp_dset_schema(w, MOE_TEL_DS_PROCESSED, d3, o->routed, "assumed: all, dropless");
            imp_dset_schema(w, MOE_TEL_DS_DROPPED, d3, zero, "assumed: none, dropless");
            imp_dset_schema(w, MOE_TEL_DS_DROPPED_CAPACITY, d3, zero, "assumed: none");
            imp_dset_schema(w, MOE_TEL_DS_CAPACITY, d3, cap, "assumed: dropless");
        }
    }
    free(zero);
    free(cap);
    free(steps);
}

static void imp_write_routes(imp_h5_t *w)
{
    imp_ctx_t       *c = w->c;
    const imp_out_t *o = &c->o;
    hsize_t          dims[3] = {(hsize_t)o->nroutes, (hsize_t)o->L, (hsize_t)o->k};
    size_t           n = (size_t)(o->nroutes * o->L * o->k), i;
    uint8_t         *kept;

    if (o->r_step == NULL)
        return;
    imp_group(w, "routes");
    imp_dset_schema(w, MOE_TEL_DS_ROUTE_STEP, dims, o->r_step, NULL);
    imp_dset_schema(w, MOE_TEL_DS_ROUTE_TOKEN, dims, o->r_token, "here: token_idx of the log");
    imp_dset_schema(w, MOE_TEL_DS_ROUTE_EXPERT, dims, o->r_expert, NULL);
    imp_dset_schema(w, MOE_TEL_DS_ROUTE_WEIGHT, dims, o->r_weight, "NaN: not in the log");
    if (!c->opt.assume_dropless)
        return;
    if ((kept = malloc(n ? n : 1)) == NULL) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_NOMEM, "out of memory");
        w->failed = 1;
        return;
    }
    for (i = 0; i < n; i++)
        kept[i] = 1;
    imp_dset_schema(w, MOE_TEL_DS_ROUTE_KEPT, dims, kept, "assumed: dropless");
    free(kept);
}

/* Group name for a label key: '/' and a leading '.' are replaced, collisions get a suffix. */
static void imp_label_group(const imp_data_t *d, int q, char *out, size_t n)
{
    char name[MOE_RLOG_KEY_MAX + 16];
    int  i, clash;
    size_t j;

    snprintf(name, sizeof(name), "%s", d->keys[q].name);
    for (j = 0; name[j]; j++)
        if (name[j] == '/')
            name[j] = '_';
    if (name[0] == '.')
        name[0] = '_';
    clash = 0;
    for (i = 0; i < q; i++) {
        char other[MOE_RLOG_KEY_MAX + 16];
        imp_label_group(d, i, other, sizeof(other));
        clash |= strcmp(other, name) == 0;
    }
    if (clash)
        snprintf(out, n, "import/labels/%s~%d", name, q);
    else
        snprintf(out, n, "import/labels/%s", name);
}

/* Dimension labels of the import-only datasets. */
static const char *const imp_lab_step[] = {"step"};
static const char *const imp_lab_layer[] = {"layer"};
static const char *const imp_lab_value[] = {"value"};
static const char *const imp_lab_value_layer_expert[] = {"value", "layer", "expert"};
static const char *const imp_lab_route[] = {"route"};

static void imp_write_import(imp_h5_t *w)
{
    imp_ctx_t       *c = w->c;
    const imp_data_t *d = &c->d;
    const imp_out_t *o = &c->o;
    hsize_t          dims[3];
    char             g[MOE_RLOG_KEY_MAX + 64], p[MOE_RLOG_KEY_MAX + 96];
    int              q, v;
    int64_t          i;

    imp_group(w, "import");
    dims[0] = (hsize_t)o->S;
    imp_dset_put(w, "import/step_value", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dims, "step",
                 "the log's step value of each file step", imp_lab_step, o->step_value);
    dims[0] = (hsize_t)o->L;
    imp_dset_put(w, MOE_TEL_LAYER_ID, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dims, "layer",
                 "the log's layer id of each file layer", imp_lab_layer, o->layer_id);
    imp_group(w, "import/labels");
    for (q = 0; q < d->nkeys && !w->failed; q++) {
        const imp_key_t *k = &d->keys[q];
        size_t           width = 2;
        char            *s;
        hid_t            st;
        int32_t         *rv;

        imp_label_group(d, q, g, sizeof(g));
        imp_group(w, g);
        if (w->failed)
            break;
        {
            hid_t gid = H5Gopen2(w->file, g, H5P_DEFAULT);
            if (gid < 0) {
                imp_h5_fail(w, "cannot open group", g);
                break;
            }
            imp_attr_s(w, gid, "key", k->name);
            imp_attr_i64(w, gid, "truncated", k->other >= 0);
            H5Gclose(gid);
        }
        for (v = 0; v < k->nvalues; v++)
            if (strlen(k->values[v]) + 1 > width)
                width = strlen(k->values[v]) + 1;
        if ((s = calloc((size_t)(k->nvalues > 0 ? k->nvalues : 1), width)) == NULL) {
            (void)MOE_ERROR_SET(&c->log, MOE_ERR_NOMEM, "out of memory");
            w->failed = 1;
            break;
        }
        for (v = 0; v < k->nvalues; v++)
            memcpy(s + (size_t)v * width, k->values[v], strlen(k->values[v]));
        st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, width);
        H5Tset_strpad(st, H5T_STR_NULLPAD);
        dims[0] = (hsize_t)k->nvalues;
        snprintf(p, sizeof(p), "%s/values", g);
        imp_dset_put(w, p, st, st, 1, dims, NULL, "distinct values of the label", imp_lab_value,
                     s);
        H5Tclose(st);
        free(s);
        snprintf(p, sizeof(p), "%s/rows", g);
        imp_dset_put(w, p, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, dims, "rows",
                     "rows of the log with each value", imp_lab_value, k->rows);
        if (o->label_routed[q]) {
            dims[1] = (hsize_t)o->L;
            dims[2] = (hsize_t)o->E;
            snprintf(p, sizeof(p), "%s/routed", g);
            imp_dset_put(w, p, H5T_STD_I64LE, H5T_NATIVE_INT64, 3, dims, "pairs",
                         "pairs routed to each expert by rows with each value, all steps",
                         imp_lab_value_layer_expert, o->label_routed[q]);
        }
        if (o->r_label != NULL) {
            rv = malloc((size_t)(o->nroutes ? o->nroutes : 1) * sizeof(int32_t));
            if (rv == NULL) {
                (void)MOE_ERROR_SET(&c->log, MOE_ERR_NOMEM, "out of memory");
                w->failed = 1;
                break;
            }
            for (i = 0; i < o->nroutes; i++)
                rv[i] = o->r_label[i * IMP_KEYS_MAX + q];
            dims[0] = (hsize_t)o->nroutes;
            snprintf(p, sizeof(p), "%s/route_value", g);
            imp_dset_put(w, p, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, "index",
                         "value index of each routes/ row (its layer-0 row), -1 = absent",
                         imp_lab_route, rv);
            free(rv);
        }
    }
}

/* Writes the whole file at c->opt.output through a temporary name. */
static int imp_write(imp_ctx_t *c, const char *start_time)
{
    imp_h5_t  w = {c, -1, 0};
    moe_out_t out;
    char      err[MOE_OUT_PATH_MAX + 256];
    hsize_t   dims[3];

    if (moe_out_create(&out, c->opt.output, c->opt.follow ? MOE_OUT_FOLLOW : 0u, err,
                       sizeof(err)) != 0)
        return IMP_FAIL(c, MOE_ERR_IO, "%s", err);
    snprintf(imp_tmp_path, sizeof(imp_tmp_path), "%s", out.tmp);
    imp_tmp_live = 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    w.file = H5Fcreate(imp_tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w.file < 0)
        imp_h5_fail(&w, "cannot create", imp_tmp_path);
    imp_write_root(&w, start_time);
    imp_write_steps(&w);
    imp_write_routes(&w);
    if (c->o.coselect != NULL) {
        hid_t g;
        dims[0] = (hsize_t)c->o.L;
        dims[1] = dims[2] = (hsize_t)c->o.E;
        imp_group(&w, "accumulated");
        imp_dset_schema(&w, MOE_TEL_DS_COSELECT, dims, c->o.coselect, NULL);
        if (!w.failed && (g = H5Gopen2(w.file, "accumulated", H5P_DEFAULT)) >= 0) {
            imp_attr_i64(&w, g, "steps", c->o.S);
            H5Gclose(g);
        }
    }
    imp_write_import(&w);
    if (w.file >= 0 && H5Fclose(w.file) < 0)
        imp_h5_fail(&w, "cannot close", imp_tmp_path);
    if (!w.failed && moe_out_commit(&out, err, sizeof(err)) != 0) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_IO, "%s", err);
        w.failed = 1;
    }
    if (w.failed)
        moe_out_abort(&out);
    imp_tmp_live = 0;
    return w.failed ? -1 : 0;
}

/* ---------------------------------------------------------------- main ---------------- */

static void imp_free(imp_ctx_t *c)
{
    int q, v;

    free(c->d.step);
    free(c->d.token);
    free(c->d.count);
    free(c->d.line);
    free(c->d.layer);
    free(c->d.expert);
    free(c->d.prob);
    free(c->d.label);
    free(c->d.dead);
    free(c->d.seq);
    for (v = 0; v < c->d.seqs.nvalues; v++)
        free(c->d.seqs.values[v]);
    free(c->d.seqs.values);
    free(c->d.seqs.rows);
    free(c->d.seqs.hash);
    free(c->o.layer_id);
    free(c->o.layer_index);
    for (q = 0; q < c->d.nkeys; q++) {
        for (v = 0; v < c->d.keys[q].nvalues; v++)
            free(c->d.keys[q].values[v]);
        free(c->d.keys[q].values);
        free(c->d.keys[q].rows);
        free(c->d.keys[q].hash);
        free(c->o.label_routed[q]);
    }
    free(c->o.step_value);
    free(c->o.routed);
    free(c->o.router);
    free(c->o.coselect);
    free(c->o.r_step);
    free(c->o.r_token);
    free(c->o.r_expert);
    free(c->o.r_weight);
    free(c->o.r_label);
}

/* Routes of a telemetry file's routes/ (see moe_import_load_routes). */
static int imp_load_h5_routes(const char *path, moe_replay_routes_t *out, char *err, size_t errlen)
{
    moe_log_t         log;
    moe_tel_reader_t *r = NULL;
    int64_t           dims[4], n, i, l, j, N, L, K, E, keep = 0;
    int               nd = 0, rv = -1;
    int32_t          *ex = NULL;
    float            *wt = NULL;

    moe_log_init(&log, 0, MOE_LOG_ERROR);
    if (moe_tel_reader_open(path, &log, &r) != MOE_OK) {
        snprintf(err, errlen, "%s", log.last_error);
        return -1;
    }
    if (!moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT) ||
        moe_tel_reader_dims(r, MOE_TEL_ROUTE_EXPERT, dims, &nd) != MOE_OK || nd != 3) {
        snprintf(err, errlen, "%s: no routes/expert: a telemetry file needs per-token routes to "
                 "be replayed (an imported log, or a run with --route-samples)", path);
        goto out;
    }
    N = dims[0];
    L = dims[1];
    K = dims[2];
    E = moe_tel_reader_info(r)->experts;
    ex = malloc((size_t)(N * L * K > 0 ? N * L * K : 1) * sizeof(int32_t));
    wt = malloc((size_t)(N * L * K > 0 ? N * L * K : 1) * sizeof(float));
    memset(out, 0, sizeof(*out));
    out->layer_id = malloc((size_t)(L > 0 ? L : 1) * sizeof(int64_t));
    if (!ex || !wt || !out->layer_id) {
        snprintf(err, errlen, "%s: out of memory for %lld routes", path, (long long)N);
        goto out;
    }
    out->has_weights = moe_tel_reader_has(r, MOE_TEL_ROUTE_WEIGHT);
    if ((N > 0 && moe_tel_reader_read(r, MOE_TEL_ROUTE_EXPERT, MOE_TEL_I32, 0, N, ex) != MOE_OK) ||
        (N > 0 && out->has_weights &&
         moe_tel_reader_read(r, MOE_TEL_ROUTE_WEIGHT, MOE_TEL_F32, 0, N, wt) != MOE_OK)) {
        snprintf(err, errlen, "%s", log.last_error);
        goto out;
    }
    if (moe_tel_reader_layer_ids(r, out->layer_id) != MOE_OK)
        for (l = 0; l < L; l++)
            out->layer_id[l] = l;
    /* keep the tokens whose every expert id is in range; weights NaN (not in the log) -> 1/k */
    for (n = 0; n < N; n++) {
        const int32_t *x = ex + n * L * K;
        float         *w = wt + n * L * K;
        int            ok = 1;
        for (i = 0; i < L * K; i++)
            ok &= x[i] >= 0 && x[i] < E;
        if (!ok) {
            out->incomplete++;
            continue;
        }
        for (l = 0; l < L; l++) {
            double sum = 0;
            for (j = 0; j < K; j++)
                sum += out->has_weights && isfinite(w[l * K + j]) ? w[l * K + j] : 0;
            for (j = 0; j < K; j++)
                w[l * K + j] = sum > 0 ? (float)(isfinite(w[l * K + j]) ? w[l * K + j] / sum : 0)
                                       : (float)(1.0 / (double)K);
        }
        memmove(ex + keep * L * K, x, (size_t)(L * K) * sizeof(int32_t));
        memmove(wt + keep * L * K, w, (size_t)(L * K) * sizeof(float));
        keep++;
    }
    out->ntokens = keep;
    out->layers = (int)L;
    out->top_k = (int)K;
    for (i = 0; i < keep * L * K; i++)
        if (ex[i] + 1 > out->experts)
            out->experts = ex[i] + 1;
    out->expert = ex;
    out->weight = wt;
    ex = NULL;
    wt = NULL;
    rv = 0;
out:
    free(ex);
    free(wt);
    if (rv != 0)
        moe_replay_routes_free(out);
    moe_tel_reader_close(r);
    return rv;
}

int moe_import_load_routes(const char *path, const char *sequence_field,
                           moe_replay_routes_t *out, char *err, size_t errlen)
{
    imp_ctx_t *c;
    size_t    *ord = NULL, nord = 0, i, n;
    int        f, rv = -1;
    int64_t    maxe = -1;
    const char *dot = strrchr(path, '.');

    memset(out, 0, sizeof(*out));
    if (dot != NULL && (strcmp(dot, ".h5") == 0 || strcmp(dot, ".hdf5") == 0))
        return imp_load_h5_routes(path, out, err, errlen);
    f = imp_format_from_name(path);
    if (f < 0) {
        snprintf(err, errlen, "%s: cannot tell the format from the name (.jsonl, .ndjson, .json, "
                 ".csv, or a telemetry file .h5)", path);
        return -1;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->opt.input = path;
    c->opt.format = f == MOE_RLOG_CSV ? -1 : f;
    c->fmt_name = c->opt.format >= 0 ? imp_format_names[c->opt.format] : "csv";
    c->opt.experts = IMP_DIM_MAX; /* the replay checks the ids against --experts itself */
    c->opt.top_k = c->opt.layers = c->opt.tokens_per_step = c->opt.route_samples = -1;
    c->opt.prob_tol = IMP_DEFAULT_TOL;
    c->opt.max_skip = IMP_DEFAULT_MAX_SKIP;
    c->opt.probs = IMP_PROBS_AUTO;
    c->opt.sequence_field = sequence_field;
    c->opt.quiet = 1;
    moe_log_init(&c->log, 0, MOE_LOG_ERROR);
    if (imp_read(c))
        goto out;
    if (c->opt.format == MOE_RLOG_COUNTS) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s: a counts table has no per-token routes: "
                            "replay needs JSON lines or CSV with token_idx (or a telemetry file "
                            "with routes/)", path);
        goto out;
    }
    if (c->d.n == 0) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s: empty input (no data rows)", path);
        goto out;
    }
    if (!(c->d.has & MOE_RLOG_HAS_TOKEN)) {
        (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s: field 'token_idx' missing: replay "
                            "needs it to gather a token's rows of every layer", path);
        goto out;
    }
    if (imp_dedup(c, &ord, &nord))
        goto out;
    imp_probs_decide(c);
    n = c->d.n * (size_t)c->d.k;
    for (i = 0; i < n; i++)
        if (c->d.expert[i] > maxe)
            maxe = c->d.expert[i];
    c->opt.experts = maxe + 1;
    if (imp_aggregate(c) || imp_routes(c, ord, nord))
        goto out;
    out->ntokens = c->o.nroutes;
    out->layers = (int)c->o.L;
    out->top_k = c->d.k;
    out->experts = (int)(maxe + 1);
    out->incomplete = c->o.incomplete_tokens;
    out->has_weights = (c->d.has & MOE_RLOG_HAS_PROBS) != 0;
    out->expert = c->o.r_expert;
    out->weight = c->o.r_weight;
    out->layer_id = c->o.layer_id;
    c->o.r_expert = NULL;
    c->o.r_weight = NULL;
    c->o.layer_id = NULL;
    if (!out->has_weights)
        for (i = 0; i < (size_t)out->ntokens * (size_t)out->layers * (size_t)out->top_k; i++)
            out->weight[i] = (float)(1.0 / out->top_k);
    rv = 0;
out:
    if (rv != 0)
        snprintf(err, errlen, "%s", c->log.last_error[0] ? c->log.last_error : "cannot read the log");
    free(ord);
    imp_free(c);
    free(c);
    return rv;
}

/* Refuses an output that is the input (the rename would destroy the log). */
/* Reads, derives and writes; returns 0 or -1 with the message in c->log. */
static int imp_run(imp_ctx_t *c)
{
    char    start[32];
    size_t *ord = NULL, nord = 0;
    int64_t l;
    int     rv = -1;

    imp_now(start, sizeof(start));
    if (imp_read(c))
        return -1;
    if (c->d.n == 0) {
        if (c->d.skipped > 0)
            (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s: no valid rows (%lld bad rows skipped; "
                          "first: %s)", c->opt.input, (long long)c->d.skipped, c->d.first_bad);
        else
            (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s: empty input (no data rows)",
                          c->opt.input);
        return -1;
    }
    if (imp_dedup(c, &ord, &nord))
        goto out;
    if (c->d.skipped > 0) {
        double share = (double)c->d.skipped / (double)(c->d.skipped + c->d.live);
        if (share > c->opt.max_skip) {
            (void)MOE_ERROR_SET(&c->log, MOE_ERR_INVALID, "%s: %lld of %lld rows are bad (%.1f%%), "
                                "above --max-skip %g: not written. First: %s. Fix the log or "
                                "the options; --max-skip 1 keeps the good rows anyway",
                                c->opt.input, (long long)c->d.skipped,
                                (long long)(c->d.skipped + c->d.live), 100 * share,
                                c->opt.max_skip, c->d.first_bad);
            goto out;
        }
    }
    imp_probs_decide(c);
    if (imp_aggregate(c))
        goto out;
    if (c->opt.format != MOE_RLOG_COUNTS && (c->d.has & MOE_RLOG_HAS_TOKEN) &&
        c->opt.route_samples != 0 && imp_routes(c, ord, nord))
        goto out;
    if (!c->opt.quiet) {
        int64_t *seen = calloc((size_t)c->o.L, sizeof(int64_t));
        size_t   i;
        for (i = 0; seen && i < c->d.n; i++)
            if (!c->d.dead[i])
                seen[c->o.layer_index[c->d.layer[i]]]++;
        for (l = 0; seen && l < c->o.L; l++)
            if (seen[l] == 0)
                fprintf(stderr, "moerun-import: warning: layer %lld has no rows\n", (long long)l);
        free(seen);
        if (c->d.labels_dropped + c->d.keys_dropped > 0)
            fprintf(stderr, "moerun-import: warning: %lld extra field values not kept as labels "
                    "(nested values, keys over %d bytes, more than %d keys)\n",
                    (long long)(c->d.labels_dropped + c->d.keys_dropped), MOE_RLOG_KEY_MAX - 1,
                    IMP_KEYS_MAX);
        if (c->o.incomplete_tokens > 0)
            fprintf(stderr, "moerun-import: warning: %lld tokens lack a row for some layer: "
                    "counted, but not in routes/\n", (long long)c->o.incomplete_tokens);
    }
    if (imp_write(c, start))
        goto out;
    rv = 0;
out:
    free(ord);
    return rv;
}

int moe_import_main(int argc, char **argv)
{
    imp_ctx_t *c = calloc(1, sizeof(*c));
    int        rc;

    if (c == NULL) {
        fprintf(stderr, "moerun-import: out of memory\n");
        return 1;
    }
    rc = imp_parse_args(argc, argv, &c->opt);
    if (rc != 0) {
        if (rc > 0)
            imp_usage(stdout);
        free(c);
        return rc > 0 ? 0 : 2;
    }
    if (c->opt.format < 0) {
        /* from the name; a .csv file is csv or counts, decided by its header in imp_read */
        int f = strcmp(c->opt.input, "-") == 0 ? -1 : imp_format_from_name(c->opt.input);
        if (f < 0) {
            fprintf(stderr, "moerun-import: %s: cannot tell the format from the name: give "
                            "--format jsonl|csv|counts\n", c->opt.input);
            free(c);
            return 2;
        }
        c->opt.format = f == MOE_RLOG_CSV ? -1 : f;
    }
    c->fmt_name = c->opt.format >= 0 ? imp_format_names[c->opt.format] : "csv";
    {
        /* the output, before anything is read (include/moerun/base/fileio.h) */
        char err[MOE_OUT_PATH_MAX + 256];
        if (moe_out_check(c->opt.output, MOE_OUT_OVERWRITE | (c->opt.follow ? MOE_OUT_FOLLOW : 0u),
                          err, sizeof(err)) != 0) {
            fprintf(stderr, "moerun-import: --output: %s\n", err);
            free(c);
            return 2;
        }
        if (strcmp(c->opt.input, "-") != 0 && moe_path_same(c->opt.input, c->opt.output)) {
            fprintf(stderr, "moerun-import: --output: '%s' is the input file; refusing to "
                    "overwrite it\n", c->opt.output);
            free(c);
            return 2;
        }
    }
    moe_log_init(&c->log, 0, MOE_LOG_ERROR);
    signal(SIGINT, imp_on_signal);
    signal(SIGTERM, imp_on_signal);
    if (imp_run(c)) {
        /* the message may quote the log's own text: no terminal controls */
        fputs("moerun-import: ", stderr);
        moe_esc_term_line(stderr, c->log.last_error[0] ? c->log.last_error : "import failed");
        fputc('\n', stderr);
        imp_free(c);
        free(c);
        return 1;
    }
    if (!c->opt.quiet) {
        if (c->d.skipped > 0) {
            fprintf(stderr, "moerun-import: skipped %lld of %lld rows (%.2f%%, limit --max-skip "
                    "%g; first: ", (long long)c->d.skipped,
                    (long long)(c->d.skipped + c->d.live),
                    100.0 * (double)c->d.skipped / (double)(c->d.skipped + c->d.live),
                    c->opt.max_skip);
            moe_esc_term_line(stderr, c->d.first_bad);
            fputs(")\n", stderr);
        }
        if (c->d.seq_field[0] != '\0') {
            fputs("moerun-import: sequence field '", stderr);
            moe_esc_term_line(stderr, c->d.seq_field);
            fprintf(stderr, "'%s: %d sequences%s\n",
                    c->d.seq_auto ? " (detected; --sequence-field none to turn off)" : "",
                    c->d.seqs.nvalues, (c->d.has & MOE_RLOG_HAS_STEP) ? "" : ", one step each");
        }
        if (c->d.has & MOE_RLOG_HAS_PROBS)
            fprintf(stderr, "moerun-import: gating_probs are %s (row sums %.4g..%.4g)\n",
                    c->opt.probs == IMP_PROBS_SOFTMAX ? "softmax probabilities of the selected "
                    "experts (top1_prob, margin derived)" : "renormalised top-k weights (sum to 1: "
                    "top-1 weight reported, not the router's top-1 probability)",
                    c->d.prob_min_sum, c->d.prob_max_sum);
        printf("moerun-import: %s (%s): %lld rows, %lld skipped; %lld steps, %lld layers, "
               "%lld experts, top-k %lld; %lld routes -> %s\n",
               c->opt.input, c->fmt_name, (long long)c->d.live, (long long)c->d.skipped, (long long)c->o.S,
               (long long)c->o.L, (long long)c->o.E, (long long)c->o.k,
               (long long)c->o.nroutes, c->opt.output);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            /* the file is written; the summary line is lost: say so */
            fprintf(stderr, "moerun-import: cannot write to standard output: %s\n",
                    strerror(errno ? errno : EIO));
            imp_free(c);
            free(c);
            return 1;
        }
    }
    imp_free(c);
    free(c);
    return 0;
}
