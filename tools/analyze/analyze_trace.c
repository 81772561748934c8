/*
 * tools/analyze/analyze_trace.c — `moerun-analyze --trace FILE.json`: the per-rank, per-step
 * phase timeline of a telemetry file in the Chrome trace-event format (JSON object form,
 * loadable in Perfetto and chrome://tracing; docs/analysis.md, "Timeline").
 *
 * Layout: one process (pid 0, the run), one thread track per rank (tid = rank, named
 * "rank R (host)"). The file records durations, not start times, so each rank's slices are
 * laid end to end from t = 0 in file order: for every step a "step N" slice, inside it a
 * "layer L" slice per layer, inside that one complete ("X") slice per phase (gate, counts,
 * dispatch, expert, combine, in the engine's order). A phase column named "P_inter" or
 * "P_wait" whose "P" is a phase (dispatch_inter, combine_inter, counts_wait, combine_wait) is
 * an "of which" part of P and is nested at the start of P's slice. Bytes are counters ("C", one series per rank: "bytes rank R"
 * with sent/recv/intra/inter) at the start of each layer slice; monitor events are global
 * instant events on rank 0's track at the start of their step.
 *
 * What always holds:
 *  1. Times are laid out in whole nanoseconds and printed as microseconds with 3 decimals;
 *     every phase slice's dur is its recorded seconds rounded to 1 ns, so the durations of a
 *     phase's slices add up to the sum of that column of steps/phase_time (within 0.5 ns
 *     per slice).
 *  2. A layer slice lasts the "total" column (or, without it, the sum of the top-level
 *     phases), lengthened to the sum of its phases when rounding makes that a few ns
 *     longer, so children never overrun it; a step slice lasts the sum of its layers. Columns are found by name through
 *     the "columns" attribute, so files with more or fewer phase columns are traced too;
 *     a column that is neither a top-level phase, "total" nor an "_inter"/"_wait" part becomes an
 *     argument of the layer slice.
 *  3. The output is written through include/moerun/base/fileio.h (exclusive temporary
 *     name, fsync, rename) only when complete.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze.h"
#include "analyze_int.h"
#include "moerun/base/fileio.h"
#include "telemetry_reader.h"

#define TRACE_ROWS  64   /* step rows read per chunk */
#define TRACE_HOST  64

/* The engine's top-level phases, in execution order. */
static const char *const trace_top[] = {"gate", "counts", "dispatch", "expert", "combine"};
#define TRACE_NTOP ((int)(sizeof(trace_top) / sizeof(trace_top[0])))

typedef struct trace_cols {
    int   nc;              /* columns of steps/phase_time */
    char **names;
    int   top[TRACE_NTOP]; /* column of each top-level phase, -1 if absent */
    int   total;           /* column "total", -1 if absent */
    int  *parent;          /* [nc]: for an "_inter"/"_wait" column the top index it nests in, else -1 */
    int  *extra;           /* [nc]: 1 if the column goes to the layer slice's args */
} trace_cols_t;

/* Writes a JSON string (names come from the file: escape them). */
static void trace_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Seconds as whole nanoseconds (all times are laid out in integer ns, so children never
 * overrun their parent by rounding); non-finite or negative values become 0. */
static int64_t trace_ns(double s)
{
    return isfinite(s) && s > 0 && s < 9e9 ? (int64_t)llround(s * 1e9) : 0;
}

/* Nanoseconds as microseconds with 3 decimals, exactly. */
static void trace_put_us(FILE *f, const char *key, int64_t ns)
{
    fprintf(f, ",\"%s\":%lld.%03lld", key, (long long)(ns / 1000), (long long)(ns % 1000));
}

static void trace_cols_free(trace_cols_t *c)
{
    moe_tel_reader_strlist_free(c->names, c->nc);
    free(c->parent);
    free(c->extra);
}

static moe_status_t trace_cols_init(moe_tel_reader_t *r, trace_cols_t *c, moe_log_t *log)
{
    int i, j;

    memset(c, 0, sizeof(*c));
    if (moe_tel_reader_attr_strlist(r, MOE_TEL_PHASE, "columns", &c->names, &c->nc) != MOE_OK ||
        c->nc != moe_tel_reader_ncolumns(r, MOE_TEL_PHASE)) {
        moe_log_set_error(log, __FILE__, __LINE__, "steps/phase_time has no usable columns attribute");
        return MOE_ERR_INVALID;
    }
    c->parent = malloc((size_t)c->nc * sizeof(int));
    c->extra = calloc((size_t)c->nc, sizeof(int));
    if (c->parent == NULL || c->extra == NULL)
        return MOE_ERR_NOMEM;
    for (j = 0; j < TRACE_NTOP; j++)
        c->top[j] = moe_tel_reader_column(r, MOE_TEL_PHASE, trace_top[j]);
    c->total = moe_tel_reader_column(r, MOE_TEL_PHASE, "total");
    for (i = 0; i < c->nc; i++) {
        size_t n = strlen(c->names[i]);
        int    is_top = 0;
        c->parent[i] = -1;
        for (j = 0; j < TRACE_NTOP; j++)
            is_top |= c->top[j] == i;
        if (is_top || i == c->total)
            continue;
        for (j = 0; j < TRACE_NTOP; j++) {
            size_t k = strlen(trace_top[j]);
            if (c->top[j] >= 0 && n > k && strncmp(c->names[i], trace_top[j], k) == 0 &&
                (strcmp(c->names[i] + k, "_inter") == 0 || strcmp(c->names[i] + k, "_wait") == 0))
                c->parent[i] = j;
        }
        c->extra[i] = c->parent[i] < 0;
    }
    return MOE_OK;
}

/* Opens one complete slice (ts, dur in ns); the caller adds args and closes with "}}". */
static void trace_slice(FILE *f, int tid, const char *name, const char *cat, int64_t ts,
                        int64_t dur, long step, int layer, int *first)
{
    fprintf(f, "%s\n{\"ph\":\"X\",\"pid\":0,\"tid\":%d,\"name\":", *first ? "" : ",", tid);
    trace_json_str(f, name);
    fprintf(f, ",\"cat\":\"%s\"", cat);
    trace_put_us(f, "ts", ts);
    trace_put_us(f, "dur", dur);
    fprintf(f, ",\"args\":{\"step\":%ld", step);
    if (layer >= 0)
        fprintf(f, ",\"layer\":%d", layer);
    *first = 0;
}

/* A layer slice's length: the "total" column, but never shorter than its phases laid end
 * to end (they can exceed it by a few ns of rounding). */
static int64_t trace_layer_ns(const trace_cols_t *c, const double *row)
{
    int64_t sum = 0, tot;
    int     j;

    for (j = 0; j < TRACE_NTOP; j++)
        sum += c->top[j] >= 0 ? trace_ns(row[c->top[j]]) : 0;
    tot = c->total >= 0 ? trace_ns(row[c->total]) : sum;
    return tot > sum ? tot : sum;
}

/* Writes the trace of the open file r to f. */
static moe_status_t trace_emit(moe_tel_reader_t *r, const char *tel_path, FILE *f, moe_log_t *log)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    int64_t      L = in->layers, P = in->nranks, S = in->steps, s0, n, s;
    int          tr_cols[4], first = 1, i, j, l, p;
    static const char *const tr_names[4] = {"bytes_sent", "bytes_recv", "bytes_intra", "bytes_inter"};
    static const char *const tr_keys[4] = {"sent", "recv", "intra", "inter"};
    int          has_tr = moe_tel_reader_has(r, MOE_TEL_TRAFFIC);
    trace_cols_t c;
    double      *ph = NULL;
    int64_t     *cursor = NULL, *start0 = NULL;   /* ns */
    int64_t     *tr = NULL, *stepno = NULL, *allstep = NULL;
    char       (*host)[TRACE_HOST] = NULL;
    moe_status_t st;

    if (!moe_tel_reader_has(r, MOE_TEL_PHASE) || P <= 0 || L <= 0) {
        moe_log_set_error(log, __FILE__, __LINE__,
                          "%s: no phase times (steps/phase_time) to trace", tel_path);
        return MOE_ERR_INVALID;
    }
    if ((st = trace_cols_init(r, &c, log)) != MOE_OK) {
        trace_cols_free(&c);
        return st;
    }
    for (j = 0; j < 4; j++)
        tr_cols[j] = has_tr ? moe_tel_reader_column(r, MOE_TEL_TRAFFIC, tr_names[j]) : -1;
    ph = malloc((size_t)TRACE_ROWS * L * P * c.nc * sizeof(double));
    tr = has_tr ? malloc((size_t)TRACE_ROWS * L * P * moe_tel_reader_ncolumns(r, MOE_TEL_TRAFFIC) *
                         sizeof(int64_t)) : NULL;
    stepno = malloc(TRACE_ROWS * sizeof(int64_t));
    cursor = calloc((size_t)P, sizeof(int64_t));
    host = calloc((size_t)P, TRACE_HOST);
    start0 = malloc(((size_t)S + 1) * sizeof(int64_t));   /* rank 0's start of each row's step */
    allstep = malloc(((size_t)S + 1) * sizeof(int64_t));
    if (start0 == NULL || allstep == NULL ||
        ph == NULL || (has_tr && tr == NULL) || stepno == NULL || cursor == NULL || host == NULL) {
        st = MOE_ERR_NOMEM;
        goto out;
    }
    if (!moe_tel_reader_has(r, MOE_TEL_HOSTNAME) ||
        moe_tel_reader_strings(r, MOE_TEL_HOSTNAME, P, TRACE_HOST, &host[0][0]) != MOE_OK)
        memset(host, 0, (size_t)P * TRACE_HOST);

    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"tool\":\"moerun-analyze\",\"file\":");
    trace_json_str(f, tel_path);
    fprintf(f, ",\"steps\":%lld,\"layers\":%lld,\"ranks\":%lld,\"layout\":\"slices laid end to end "
               "per rank from t=0; durations as recorded\"},\n\"traceEvents\":[",
            (long long)S, (long long)L, (long long)P);
    fprintf(f, "\n{\"ph\":\"M\",\"pid\":0,\"name\":\"process_name\",\"args\":{\"name\":");
    trace_json_str(f, tel_path);
    fprintf(f, "}}");
    first = 0;
    for (p = 0; p < P; p++) {
        char name[TRACE_HOST + 32];
        snprintf(name, sizeof(name), host[p][0] ? "rank %d (%s)" : "rank %d", (int)p, host[p]);
        fprintf(f, ",\n{\"ph\":\"M\",\"pid\":0,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":", (int)p);
        trace_json_str(f, name);
        fprintf(f, "}},\n{\"ph\":\"M\",\"pid\":0,\"tid\":%d,\"name\":\"thread_sort_index\","
                   "\"args\":{\"sort_index\":%d}}", (int)p, (int)p);
    }

    for (s0 = 0; s0 < S; s0 += n) {
        int64_t ntr = has_tr ? moe_tel_reader_ncolumns(r, MOE_TEL_TRAFFIC) : 0;
        n = S - s0 < TRACE_ROWS ? S - s0 : TRACE_ROWS;
        if ((st = moe_tel_reader_read(r, MOE_TEL_STEP, MOE_TEL_I64, s0, n, stepno)) != MOE_OK ||
            (st = moe_tel_reader_read(r, MOE_TEL_PHASE, MOE_TEL_F64, s0, n, ph)) != MOE_OK ||
            (has_tr && (st = moe_tel_reader_read(r, MOE_TEL_TRAFFIC, MOE_TEL_I64, s0, n, tr)) != MOE_OK))
            goto out;
        for (s = 0; s < n; s++) {
            for (p = 0; p < P; p++) {
                int64_t step_dur = 0, t;
                char    name[64];
                /* the step slice encloses its layers: sum them first */
                for (l = 0; l < L; l++)
                    step_dur += trace_layer_ns(&c, ph + ((s * L + l) * P + p) * c.nc);
                snprintf(name, sizeof(name), "step %lld", (long long)stepno[s]);
                trace_slice(f, (int)p, name, "step", cursor[p], step_dur, (long)stepno[s], -1, &first);
                fprintf(f, "}}");
                t = cursor[p];
                for (l = 0; l < L; l++) {
                    const double *row = ph + ((s * L + l) * P + p) * c.nc;
                    int64_t       tot = trace_layer_ns(&c, row), pt = t;
                    snprintf(name, sizeof(name), "layer %d", l);
                    trace_slice(f, (int)p, name, "layer", t, tot, (long)stepno[s], l, &first);
                    for (i = 0; i < c.nc; i++)
                        if (c.extra[i]) {
                            char key[80];
                            snprintf(key, sizeof(key), "%s_us", c.names[i]);
                            trace_put_us(f, key, trace_ns(row[i]));
                        }
                    fprintf(f, "}}");
                    if (has_tr) {
                        const int64_t *trow = tr + ((s * L + l) * P + p) * ntr;
                        fprintf(f, ",\n{\"ph\":\"C\",\"pid\":0,\"tid\":%d,\"name\":\"bytes rank %d\"",
                                (int)p, (int)p);
                        trace_put_us(f, "ts", t);
                        fprintf(f, ",\"args\":{");
                        for (j = 0, i = 0; j < 4; j++)
                            if (tr_cols[j] >= 0)
                                fprintf(f, "%s\"%s\":%lld", i++ ? "," : "", tr_keys[j],
                                        (long long)trow[tr_cols[j]]);
                        fprintf(f, "}}");
                    }
                    for (j = 0; j < TRACE_NTOP; j++) {
                        int64_t d;
                        if (c.top[j] < 0)
                            continue;
                        d = trace_ns(row[c.top[j]]);
                        trace_slice(f, (int)p, trace_top[j], "phase", pt, d, (long)stepno[s], l, &first);
                        fprintf(f, "}}");
                        for (i = 0; i < c.nc; i++)
                            if (c.parent[i] == j) {
                                trace_slice(f, (int)p, c.names[i], "phase_part", pt,
                                            trace_ns(row[i]), (long)stepno[s], l, &first);
                                fprintf(f, "}}");
                            }
                        pt += d;
                    }
                    t += tot;
                }
                if (p == 0) {
                    allstep[s0 + s] = stepno[s];
                    start0[s0 + s] = cursor[0];
                }
                cursor[p] += step_dur;
            }
        }
    }
    /* monitor events: instant, global scope, at the start of their step on rank 0 */
    if (moe_tel_reader_has(r, MOE_TEL_EVENTS) && in->nevents > 0) {
        /* in blocks: one HDF5 read per event cost a compound conversion each (seconds for
         * 65,000 events under ASan, found by fuzz_analyze) */
        moe_tel_event_t *evs = malloc(AN_EVENT_CHUNK * sizeof(*evs));
        int64_t          e0, e, nb, lo, hi;
        if (evs == NULL) {
            st = MOE_ERR_NOMEM;
            goto out;
        }
        for (e0 = 0; e0 < in->nevents; e0 += nb) {
            nb = in->nevents - e0 < AN_EVENT_CHUNK ? in->nevents - e0 : AN_EVENT_CHUNK;
            if ((st = moe_tel_reader_events(r, e0, nb, evs)) != MOE_OK) {
                free(evs);
                goto out;
            }
            for (e = 0; e < nb; e++) {
                const moe_tel_event_t *ev = &evs[e];
                /* first row whose step is >= the event's (rows are in step order) */
                for (lo = 0, hi = S; lo < hi;) {
                    int64_t mid = lo + (hi - lo) / 2;
                    if (allstep[mid] < ev->step)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                fprintf(f, ",\n{\"ph\":\"i\",\"s\":\"g\",\"pid\":0,\"tid\":0,\"name\":");
                trace_json_str(f, ev->kind_name[0] ? ev->kind_name : "event");
                fprintf(f, ",\"cat\":\"event\"");
                trace_put_us(f, "ts", lo < S ? start0[lo] : cursor[0]);
                fprintf(f, ",\"args\":{\"step\":%lld,\"layer\":%d,\"expert\":%d,\"value\":%.17g,"
                           "\"threshold\":%.17g,\"message\":",
                        (long long)ev->step, (int)ev->layer, (int)ev->expert,
                        isfinite(ev->value) ? ev->value : 0,
                        isfinite(ev->threshold) ? ev->threshold : 0);
                trace_json_str(f, ev->message);
                fprintf(f, "}}");
            }
        }
        free(evs);
    }
    fprintf(f, "\n]}\n");
    st = MOE_OK;
out:
    trace_cols_free(&c);
    free(ph);
    free(tr);
    free(stepno);
    free(cursor);
    free(host);
    free(start0);
    free(allstep);
    return st;
}

moe_status_t an_trace_write(const char *tel_path, const char *out_path, moe_log_t *log)
{
    moe_tel_reader_t *r = NULL;
    moe_status_t      st;
    moe_out_t         out;
    char              err[MOE_OUT_PATH_MAX + 256];

    if ((st = moe_tel_reader_open(tel_path, log, &r)) != MOE_OK)
        return st;
    /* moerun-analyze checked the path (no link unless --follow-symlinks): follow here */
    if (moe_out_open(&out, out_path, MOE_OUT_FOLLOW, err, sizeof(err)) != 0) {
        moe_log_set_error(log, __FILE__, __LINE__, "%s", err);
        moe_tel_reader_close(r);
        return MOE_ERR_IO;
    }
    st = trace_emit(r, tel_path, out.f, log);
    moe_tel_reader_close(r);
    if (st != MOE_OK) {
        moe_out_abort(&out);
        return st;
    }
    if (moe_out_commit(&out, err, sizeof(err)) != 0) {
        moe_log_set_error(log, __FILE__, __LINE__, "%s", err);
        return MOE_ERR_IO;
    }
    return MOE_OK;
}
