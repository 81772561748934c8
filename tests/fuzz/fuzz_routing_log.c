/*
 * tests/fuzz/fuzz_routing_log.c — libFuzzer target for the routing-log parsers
 * (tools/import/routing_log.c): the JSON-lines row parser, the CSV tokenizer with the header map and
 * the record parser, and the counts records.
 *
 * Input: the first byte picks the parser (0: JSON lines, 1: CSV routes, 2: counts); the rest
 * is the file text. For CSV, the first record is the header; a record whose quoted field is
 * still open continues over the next line, as in moerun-import.
 *
 * Beyond the sanitizers, the harness checks the parsers' contract (routing_log.h) on every
 * row and aborts if it is broken: an accepted row has 1..KMAX distinct experts >= 0, a layer
 * >= 0, finite probabilities in [0, 1] when it has any, NUL-terminated labels; a rejected
 * row has a message.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routing_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static moe_rlog_row_t fz_row;

static void fz_check(moe_rlog_result_t rc, const char *err)
{
    const moe_rlog_row_t *r = &fz_row;
    int                   i, j;

    if (rc == MOE_RLOG_BAD) {
        if (err[0] == '\0')
            abort();
        return;
    }
    if (rc != MOE_RLOG_OK || r->k < 1 || r->k > MOE_RLOG_KMAX || r->layer < 0 || r->count < 0 ||
        r->nlabels < 0 || r->nlabels > MOE_RLOG_LABELS_MAX)
        abort();
    for (i = 0; i < r->k; i++) {
        if (r->expert[i] < 0 || r->expert[i] >= MOE_RLOG_ID_MAX)
            abort();
        for (j = 0; j < i; j++)
            if (r->expert[i] == r->expert[j])
                abort();
        if ((r->has & MOE_RLOG_HAS_PROBS) &&
            (!isfinite(r->prob[i]) || r->prob[i] < 0 || r->prob[i] > 1 + 1e-6))
            abort();
    }
    for (i = 0; i < r->nlabels; i++)
        if (memchr(r->label[i].key, '\0', sizeof(r->label[i].key)) == NULL ||
            memchr(r->label[i].value, '\0', sizeof(r->label[i].value)) == NULL)
            abort();
}

static void fz_jsonl(const char *t, size_t n)
{
    char   err[MOE_RLOG_ERR_MAX];
    size_t a = 0;

    while (a < n) {
        const char *nl = memchr(t + a, '\n', n - a);
        size_t      b = nl ? (size_t)(nl - t) : n;
        err[0] = '\0';
        fz_check(moe_rlog_parse_json(t + a, b - a, &fz_row, err, sizeof(err)), err);
        a = b + 1;
    }
}

static void fz_csv(const char *t, size_t n, moe_rlog_format_t fmt)
{
    char               err[MOE_RLOG_ERR_MAX], *fields[MOE_RLOG_CSV_FIELDS_MAX];
    moe_rlog_csv_map_t map;
    int                nf, have_map = 0;
    size_t             a = 0, b;

    while (a < n) {
        moe_rlog_result_t rc;
        char             *buf;
        b = a;
        for (;;) { /* extend the record line by line while a quoted field is open */
            const char *nl = memchr(t + b, '\n', n - b);
            size_t      len;
            b = nl ? (size_t)(nl - t) : n;
            len = b - a;
            buf = malloc(len + 1);
            if (buf == NULL)
                return;
            err[0] = '\0';
            rc = moe_rlog_csv_split(t + a, len, buf, len + 1, fields, MOE_RLOG_CSV_FIELDS_MAX,
                                    &nf, err, sizeof(err));
            if (rc != MOE_RLOG_INCOMPLETE || b >= n)
                break;
            free(buf);
            b++;
        }
        if (rc == MOE_RLOG_OK) {
            err[0] = '\0';
            if (!have_map) {
                rc = moe_rlog_csv_header(fmt, fields, nf, &map, err, sizeof(err));
                if (rc == MOE_RLOG_BAD && err[0] == '\0')
                    abort();
                have_map = rc == MOE_RLOG_OK;
            } else {
                fz_check(moe_rlog_parse_csv(&map, fields, nf, &fz_row, err, sizeof(err)), err);
            }
        } else if (rc == MOE_RLOG_BAD && err[0] == '\0') {
            abort();
        }
        free(buf);
        if (!have_map && rc != MOE_RLOG_OK)
            return; /* no header: nothing more to parse */
        a = b + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data + 1;

    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: fz_jsonl(t, size - 1); break;
    case 1: fz_csv(t, size - 1, MOE_RLOG_CSV); break;
    default: fz_csv(t, size - 1, MOE_RLOG_COUNTS); break;
    }
    return 0;
}
