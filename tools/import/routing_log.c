/*
 * tools/import/routing_log.c — parsers for routing logs (JSON lines, CSV, per-expert counts);
 * formats in docs/import.md, contract in routing_log.h.
 *
 * What always holds:
 *  1. No read outside [text, text + len): JSON is parsed with cJSON_ParseWithLength, the CSV
 *     tokenizer walks indices below len, numbers are copied to a bounded buffer before
 *     strtod/strtoll.
 *  2. Every rejection fills err with a message naming the field, and the row's contents are
 *     then unspecified (the caller must not use them).
 *  3. Integers (layer, step, token_idx, experts, count) are exact: JSON numbers must be
 *     integral and below 2^53; CSV integers are decimal digits with an optional '+'.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "routing_log.h"

#define RL_NUM_MAX 64 /* longest numeric text accepted in a CSV field */
#define RL_PROB_SLACK 1e-6

static moe_rlog_result_t rl_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static moe_rlog_result_t rl_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return MOE_RLOG_BAD;
}

static void rl_row_reset(moe_rlog_row_t *row)
{
    row->has = 0;
    row->layer = row->step = row->token = -1;
    row->k = 0;
    row->count = 1;
    row->nlabels = 0;
    row->labels_dropped = 0;
}

/* Copies a string into a fixed buffer, truncating; returns 1 if it was truncated. */
static int rl_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap) {
        memcpy(dst, src, cap - 1);
        dst[cap - 1] = '\0';
        return 1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

/* Adds a label (key, value) to the row; counts it as dropped if there is no room. */
static void rl_label_add(moe_rlog_row_t *row, const char *key, const char *value)
{
    moe_rlog_label_t *l;

    if (row->nlabels >= MOE_RLOG_LABELS_MAX || strlen(key) >= MOE_RLOG_KEY_MAX ||
        key[0] == '\0') {
        row->labels_dropped++;
        return;
    }
    l = &row->label[row->nlabels++];
    rl_copy(l->key, sizeof(l->key), key);
    rl_copy(l->value, sizeof(l->value), value);
}

/* Experts of a row must be distinct. */
static moe_rlog_result_t rl_check_distinct(const moe_rlog_row_t *row, const char *field,
                                           char *err, size_t errlen)
{
    int i, j;

    for (i = 0; i < row->k; i++)
        for (j = 0; j < i; j++)
            if (row->expert[i] == row->expert[j])
                return rl_fail(err, errlen, "field '%s': expert %lld selected twice", field,
                               (long long)row->expert[i]);
    return MOE_RLOG_OK;
}

static moe_rlog_result_t rl_check_prob(double p, const char *field, int i, char *err,
                                       size_t errlen)
{
    if (!isfinite(p))
        return rl_fail(err, errlen, "field '%s': element %d is not a finite number", field, i);
    if (p < 0)
        return rl_fail(err, errlen, "field '%s': element %d is negative (%g)", field, i, p);
    if (p > 1 + RL_PROB_SLACK)
        return rl_fail(err, errlen, "field '%s': element %d is %g, above 1", field, i, p);
    return MOE_RLOG_OK;
}

/* ---------------------------------------------------------------- JSON lines ---------- */

/* A JSON number that is a non-negative integer below 2^53. */
static moe_rlog_result_t rl_json_id(const cJSON *x, const char *field, int idx, int64_t *v,
                                    char *err, size_t errlen)
{
    char where[48] = "";

    if (idx >= 0)
        snprintf(where, sizeof(where), ": element %d", idx);
    if (!cJSON_IsNumber(x))
        return rl_fail(err, errlen, "field '%s'%s is not a number", field, where);
    if (!(x->valuedouble >= 0) || x->valuedouble >= (double)MOE_RLOG_ID_MAX ||
        x->valuedouble != floor(x->valuedouble))
        return rl_fail(err, errlen, "field '%s'%s: %g is not an integer in [0, 2^53)", field,
                       where, x->valuedouble);
    *v = (int64_t)x->valuedouble;
    return MOE_RLOG_OK;
}

/* The text of a scalar JSON value as a label; 0 if it is not kept (null, array, object). */
static int rl_json_label_value(const cJSON *x, char *buf, size_t cap)
{
    if (cJSON_IsString(x)) {
        rl_copy(buf, cap, x->valuestring);
        return 1;
    }
    if (cJSON_IsBool(x)) {
        rl_copy(buf, cap, cJSON_IsTrue(x) ? "true" : "false");
        return 1;
    }
    if (cJSON_IsNumber(x)) {
        double d = x->valuedouble;
        if (d == floor(d) && fabs(d) < 9.007199254740992e15)
            snprintf(buf, cap, "%lld", (long long)d);
        else
            snprintf(buf, cap, "%.17g", d);
        return 1;
    }
    return 0;
}

moe_rlog_result_t moe_rlog_parse_json(const char *text, size_t len, moe_rlog_row_t *row,
                                      char *err, size_t errlen)
{
    cJSON            *root, *x, *experts = NULL, *probs = NULL;
    const char       *end = NULL;
    moe_rlog_result_t rc = MOE_RLOG_OK;
    int               i, n;
    char              value[MOE_RLOG_VALUE_MAX];

    rl_row_reset(row);
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root != NULL) {
        /* nothing but white space may follow the object */
        size_t off = (size_t)(end - text);
        while (off < len && isspace((unsigned char)text[off]))
            off++;
        if (off < len) {
            cJSON_Delete(root);
            return rl_fail(err, errlen, "malformed JSON: text after the object at byte %zu",
                           off + 1);
        }
    } else {
        const char *at = end != NULL ? end : cJSON_GetErrorPtr();
        long        off = (at != NULL && at >= text && at <= text + len) ? (long)(at - text) : -1;
        if (off >= 0)
            return rl_fail(err, errlen, "malformed JSON at byte %ld", off + 1);
        return rl_fail(err, errlen, "malformed JSON");
    }
    if (!cJSON_IsObject(root)) {
        rc = rl_fail(err, errlen, "a row must be a JSON object");
        goto out;
    }
    cJSON_ArrayForEach(x, root) {
        const char *key = x->string ? x->string : "";
        if (strcmp(key, "layer") == 0) {
            if ((rc = rl_json_id(x, "layer", -1, &row->layer, err, errlen)) != MOE_RLOG_OK)
                goto out;
        } else if (strcmp(key, "step") == 0) {
            if ((rc = rl_json_id(x, "step", -1, &row->step, err, errlen)) != MOE_RLOG_OK)
                goto out;
            row->has |= MOE_RLOG_HAS_STEP;
        } else if (strcmp(key, "token_idx") == 0) {
            if ((rc = rl_json_id(x, "token_idx", -1, &row->token, err, errlen)) != MOE_RLOG_OK)
                goto out;
            row->has |= MOE_RLOG_HAS_TOKEN;
        } else if (strcmp(key, "experts") == 0) {
            experts = x;
        } else if (strcmp(key, "gating_probs") == 0) {
            probs = x;
        } else if (rl_json_label_value(x, value, sizeof(value))) {
            rl_label_add(row, key, value);
        } else if (!cJSON_IsNull(x)) {
            row->labels_dropped++;
        }
    }
    if (row->layer < 0) {
        rc = rl_fail(err, errlen, "field 'layer' missing");
        goto out;
    }
    if (experts == NULL) {
        rc = rl_fail(err, errlen, "field 'experts' missing");
        goto out;
    }
    if (!cJSON_IsArray(experts)) {
        rc = rl_fail(err, errlen, "field 'experts' is not a list");
        goto out;
    }
    n = cJSON_GetArraySize(experts);
    if (n < 1 || n > MOE_RLOG_KMAX) {
        rc = rl_fail(err, errlen, "field 'experts' has %d elements, want 1..%d", n,
                     MOE_RLOG_KMAX);
        goto out;
    }
    i = 0;
    cJSON_ArrayForEach(x, experts) {
        if ((rc = rl_json_id(x, "experts", i, &row->expert[i], err, errlen)) != MOE_RLOG_OK)
            goto out;
        i++;
    }
    row->k = n;
    if ((rc = rl_check_distinct(row, "experts", err, errlen)) != MOE_RLOG_OK)
        goto out;
    if (probs != NULL && !cJSON_IsNull(probs)) {
        if (!cJSON_IsArray(probs)) {
            rc = rl_fail(err, errlen, "field 'gating_probs' is not a list");
            goto out;
        }
        if (cJSON_GetArraySize(probs) != n) {
            rc = rl_fail(err, errlen, "field 'gating_probs' has %d elements, 'experts' has %d",
                         cJSON_GetArraySize(probs), n);
            goto out;
        }
        i = 0;
        cJSON_ArrayForEach(x, probs) {
            if (!cJSON_IsNumber(x)) {
                rc = rl_fail(err, errlen, "field 'gating_probs': element %d is not a number", i);
                goto out;
            }
            row->prob[i] = x->valuedouble;
            if ((rc = rl_check_prob(row->prob[i], "gating_probs", i, err, errlen)) != MOE_RLOG_OK)
                goto out;
            i++;
        }
        row->has |= MOE_RLOG_HAS_PROBS;
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- CSV ----------------- */

moe_rlog_result_t moe_rlog_csv_split(const char *line, size_t len, char *buf, size_t bufsz,
                                     char **fields, int maxfields, int *nfields_p, char *err,
                                     size_t errlen)
{
    size_t i = 0, o = 0;
    int    nf = 0;

    *nfields_p = 0;
    if (bufsz < len + 1)
        return rl_fail(err, errlen, "record too long");
    if (len > 0 && line[len - 1] == '\r')
        len--;
    for (;;) {
        size_t start_o = o;
        if (nf >= maxfields)
            return rl_fail(err, errlen, "more than %d fields", maxfields);
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i < len && line[i] == '"') {
            /* quoted field: up to the closing quote, "" is a quote */
            i++;
            for (;;) {
                if (i >= len)
                    return MOE_RLOG_INCOMPLETE;
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        buf[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                buf[o++] = line[i++];
            }
            while (i < len && (line[i] == ' ' || line[i] == '\t'))
                i++;
            if (i < len && line[i] != ',')
                return rl_fail(err, errlen, "field %d: text after the closing quote", nf + 1);
        } else {
            size_t end;
            while (i < len && line[i] != ',') {
                if (line[i] == '"')
                    return rl_fail(err, errlen,
                                   "field %d: quote inside an unquoted field", nf + 1);
                buf[o++] = line[i++];
            }
            end = o;
            while (end > start_o && (buf[end - 1] == ' ' || buf[end - 1] == '\t'))
                end--;
            o = end;
        }
        buf[o++] = '\0';
        fields[nf++] = buf + start_o;
        if (i >= len)
            break;
        i++; /* the comma */
    }
    *nfields_p = nf;
    return MOE_RLOG_OK;
}

/* "expert_12" -> 12 for prefix "expert_"; -1 if the name is not of that form. */
static int rl_indexed_name(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    long   v;
    char  *end;

    if (strncmp(name, prefix, n) != 0 || !isdigit((unsigned char)name[n]))
        return -1;
    errno = 0;
    v = strtol(name + n, &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v >= MOE_RLOG_KMAX)
        return -1;
    return (int)v;
}

static moe_rlog_result_t rl_set_col(int *slot, int col, const char *name, char *err,
                                    size_t errlen)
{
    if (*slot >= 0)
        return rl_fail(err, errlen, "header: column '%s' appears twice", name);
    *slot = col;
    return MOE_RLOG_OK;
}

moe_rlog_result_t moe_rlog_csv_header(moe_rlog_format_t format, char *const *fields,
                                      int nfields, moe_rlog_csv_map_t *map, char *err,
                                      size_t errlen)
{
    int               c, i, x;
    moe_rlog_result_t rc;

    memset(map, 0, sizeof(*map));
    map->format = format;
    map->nfields = nfields;
    map->layer = map->step = map->token = map->experts = map->probs = -1;
    map->expert = map->count = -1;
    for (i = 0; i < MOE_RLOG_KMAX; i++)
        map->expert_col[i] = map->prob_col[i] = -1;
    if (format != MOE_RLOG_CSV && format != MOE_RLOG_COUNTS)
        return rl_fail(err, errlen, "header: not a CSV format");
    for (c = 0; c < nfields; c++) {
        const char *f = fields[c];
        int        *slot = NULL;
        if (strcmp(f, "layer") == 0)
            slot = &map->layer;
        else if (strcmp(f, "step") == 0)
            slot = &map->step;
        else if (format == MOE_RLOG_CSV && strcmp(f, "token_idx") == 0)
            slot = &map->token;
        else if (format == MOE_RLOG_CSV && strcmp(f, "experts") == 0)
            slot = &map->experts;
        else if (format == MOE_RLOG_CSV && strcmp(f, "gating_probs") == 0)
            slot = &map->probs;
        else if (format == MOE_RLOG_COUNTS && strcmp(f, "expert") == 0)
            slot = &map->expert;
        else if (format == MOE_RLOG_COUNTS && strcmp(f, "count") == 0)
            slot = &map->count;
        else if (format == MOE_RLOG_CSV && (x = rl_indexed_name(f, "expert_")) >= 0)
            slot = &map->expert_col[x];
        else if (format == MOE_RLOG_CSV && (x = rl_indexed_name(f, "prob_")) >= 0)
            slot = &map->prob_col[x];
        if (slot != NULL) {
            if ((rc = rl_set_col(slot, c, f, err, errlen)) != MOE_RLOG_OK)
                return rc;
            continue;
        }
        if (f[0] == '\0')
            return rl_fail(err, errlen, "header: column %d has no name", c + 1);
        for (i = 0; i < map->nlabels; i++)
            if (strcmp(map->label_key[i], f) == 0)
                return rl_fail(err, errlen, "header: column '%s' appears twice", f);
        if (map->nlabels < MOE_RLOG_LABELS_MAX && strlen(f) < MOE_RLOG_KEY_MAX) {
            map->label_col[map->nlabels] = c;
            rl_copy(map->label_key[map->nlabels], MOE_RLOG_KEY_MAX, f);
            map->nlabels++;
        } else {
            map->labels_dropped++;
        }
    }
    if (map->layer < 0)
        return rl_fail(err, errlen, "header: column 'layer' missing");
    if (format == MOE_RLOG_COUNTS) {
        if (map->expert < 0)
            return rl_fail(err, errlen, "header: column 'expert' missing");
        if (map->count < 0)
            return rl_fail(err, errlen, "header: column 'count' missing");
        return MOE_RLOG_OK;
    }
    for (i = 0; i < MOE_RLOG_KMAX && map->expert_col[i] >= 0; i++)
        ;
    map->nexpert_cols = i;
    for (; i < MOE_RLOG_KMAX; i++)
        if (map->expert_col[i] >= 0)
            return rl_fail(err, errlen, "header: column 'expert_%d' without 'expert_%d'", i,
                           map->nexpert_cols);
    for (i = 0; i < MOE_RLOG_KMAX && map->prob_col[i] >= 0; i++)
        ;
    map->nprob_cols = i;
    for (; i < MOE_RLOG_KMAX; i++)
        if (map->prob_col[i] >= 0)
            return rl_fail(err, errlen, "header: column 'prob_%d' without 'prob_%d'", i,
                           map->nprob_cols);
    if (map->experts >= 0 && map->nexpert_cols > 0)
        return rl_fail(err, errlen, "header: both 'experts' and 'expert_0'.. columns; use one");
    if (map->experts < 0 && map->nexpert_cols == 0)
        return rl_fail(err, errlen, "header: column 'experts' (or 'expert_0'..) missing");
    if (map->probs >= 0 && map->nprob_cols > 0)
        return rl_fail(err, errlen, "header: both 'gating_probs' and 'prob_0'.. columns; use one");
    if (map->experts >= 0 && map->nprob_cols > 0)
        return rl_fail(err, errlen, "header: 'prob_0'.. columns go with 'expert_0'.. columns, "
                       "'gating_probs' with 'experts'");
    if (map->nexpert_cols > 0 && map->probs >= 0)
        return rl_fail(err, errlen, "header: 'gating_probs' goes with 'experts', "
                       "'prob_0'.. with 'expert_0'..");
    if (map->nprob_cols > 0 && map->nprob_cols != map->nexpert_cols)
        return rl_fail(err, errlen, "header: %d 'prob_i' columns for %d 'expert_i' columns",
                       map->nprob_cols, map->nexpert_cols);
    return MOE_RLOG_OK;
}

/* Copies a field into a bounded buffer, trimmed; 0 if empty or too long. */
static int rl_numtext(const char *s, size_t n, char *out)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || n >= RL_NUM_MAX)
        return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

/* A non-negative decimal integer below 2^53 in s[0..n). */
static moe_rlog_result_t rl_csv_id(const char *s, size_t n, const char *field, int idx,
                                   int64_t *v, char *err, size_t errlen)
{
    char       t[RL_NUM_MAX], where[48] = "";
    const char *p;
    long long  x;
    char      *end;

    if (idx >= 0)
        snprintf(where, sizeof(where), ": element %d", idx);
    if (!rl_numtext(s, n, t))
        return rl_fail(err, errlen, "field '%s'%s is empty", field, where);
    p = t[0] == '+' ? t + 1 : t;
    if (!isdigit((unsigned char)p[0]))
        return rl_fail(err, errlen, "field '%s'%s: '%s' is not a non-negative integer", field,
                       where, t);
    errno = 0;
    x = strtoll(p, &end, 10);
    if (*end != '\0')
        return rl_fail(err, errlen, "field '%s'%s: '%s' is not a non-negative integer", field,
                       where, t);
    if (errno != 0 || x >= MOE_RLOG_ID_MAX)
        return rl_fail(err, errlen, "field '%s'%s: '%s' is too large (limit 2^53)", field,
                       where, t);
    *v = (int64_t)x;
    return MOE_RLOG_OK;
}

static moe_rlog_result_t rl_csv_prob(const char *s, size_t n, const char *field, int idx,
                                     double *v, char *err, size_t errlen)
{
    char  t[RL_NUM_MAX];
    char *end;

    if (!rl_numtext(s, n, t))
        return rl_fail(err, errlen, "field '%s': element %d is empty", field, idx);
    *v = strtod(t, &end);
    if (*end != '\0')
        return rl_fail(err, errlen, "field '%s': element %d, '%s', is not a number", field, idx,
                       t);
    return rl_check_prob(*v, field, idx, err, errlen);
}

/* Splits a "a;b;c" list field; calls the element parser for each. Returns the count in *n_p. */
static moe_rlog_result_t rl_csv_list(const char *s, const char *field, int is_prob,
                                     moe_rlog_row_t *row, int *n_p, char *err, size_t errlen)
{
    int               n = 0;
    moe_rlog_result_t rc;
    const char       *p = s;

    for (;;) {
        const char *q = strchr(p, ';');
        size_t      len = q ? (size_t)(q - p) : strlen(p);
        if (n >= MOE_RLOG_KMAX)
            return rl_fail(err, errlen, "field '%s' has more than %d elements", field,
                           MOE_RLOG_KMAX);
        if (is_prob)
            rc = rl_csv_prob(p, len, field, n, &row->prob[n], err, errlen);
        else
            rc = rl_csv_id(p, len, field, n, &row->expert[n], err, errlen);
        if (rc != MOE_RLOG_OK)
            return rc;
        n++;
        if (q == NULL)
            break;
        p = q + 1;
    }
    *n_p = n;
    return MOE_RLOG_OK;
}

static moe_rlog_result_t rl_csv_routes(const moe_rlog_csv_map_t *map, char *const *fields,
                                       moe_rlog_row_t *row, char *err, size_t errlen)
{
    moe_rlog_result_t rc;
    int               i, n;

    if (map->experts >= 0) {
        if ((rc = rl_csv_list(fields[map->experts], "experts", 0, row, &row->k, err, errlen)) !=
            MOE_RLOG_OK)
            return rc;
        if (map->probs >= 0 && fields[map->probs][0] != '\0') {
            if ((rc = rl_csv_list(fields[map->probs], "gating_probs", 1, row, &n, err,
                                  errlen)) != MOE_RLOG_OK)
                return rc;
            if (n != row->k)
                return rl_fail(err, errlen,
                               "field 'gating_probs' has %d elements, 'experts' has %d", n,
                               row->k);
            row->has |= MOE_RLOG_HAS_PROBS;
        }
    } else {
        char name[32];
        for (i = 0; i < map->nexpert_cols; i++) {
            const char *f = fields[map->expert_col[i]];
            snprintf(name, sizeof(name), "expert_%d", i);
            if ((rc = rl_csv_id(f, strlen(f), name, -1, &row->expert[i], err, errlen)) !=
                MOE_RLOG_OK)
                return rc;
        }
        row->k = map->nexpert_cols;
        for (i = 0; i < map->nprob_cols; i++) {
            const char *f = fields[map->prob_col[i]];
            snprintf(name, sizeof(name), "prob_%d", i);
            if ((rc = rl_csv_prob(f, strlen(f), name, 0, &row->prob[i], err, errlen)) !=
                MOE_RLOG_OK)
                return rc;
        }
        if (map->nprob_cols > 0)
            row->has |= MOE_RLOG_HAS_PROBS;
    }
    if (map->token >= 0) {
        const char *f = fields[map->token];
        if ((rc = rl_csv_id(f, strlen(f), "token_idx", -1, &row->token, err, errlen)) !=
            MOE_RLOG_OK)
            return rc;
        row->has |= MOE_RLOG_HAS_TOKEN;
    }
    return rl_check_distinct(row, map->experts >= 0 ? "experts" : "expert_i", err, errlen);
}

moe_rlog_result_t moe_rlog_parse_csv(const moe_rlog_csv_map_t *map, char *const *fields,
                                     int nfields, moe_rlog_row_t *row, char *err,
                                     size_t errlen)
{
    moe_rlog_result_t rc;
    int               i;

    rl_row_reset(row);
    if (nfields != map->nfields)
        return rl_fail(err, errlen, "%d fields, the header has %d", nfields, map->nfields);
    if ((rc = rl_csv_id(fields[map->layer], strlen(fields[map->layer]), "layer", -1,
                        &row->layer, err, errlen)) != MOE_RLOG_OK)
        return rc;
    if (map->step >= 0) {
        const char *f = fields[map->step];
        if ((rc = rl_csv_id(f, strlen(f), "step", -1, &row->step, err, errlen)) != MOE_RLOG_OK)
            return rc;
        row->has |= MOE_RLOG_HAS_STEP;
    }
    if (map->format == MOE_RLOG_COUNTS) {
        const char *f = fields[map->expert];
        if ((rc = rl_csv_id(f, strlen(f), "expert", -1, &row->expert[0], err, errlen)) !=
            MOE_RLOG_OK)
            return rc;
        row->k = 1;
        f = fields[map->count];
        if ((rc = rl_csv_id(f, strlen(f), "count", -1, &row->count, err, errlen)) !=
            MOE_RLOG_OK)
            return rc;
    } else if ((rc = rl_csv_routes(map, fields, row, err, errlen)) != MOE_RLOG_OK) {
        return rc;
    }
    for (i = 0; i < map->nlabels; i++)
        if (fields[map->label_col[i]][0] != '\0')
            rl_label_add(row, map->label_key[i], fields[map->label_col[i]]);
    row->labels_dropped += map->labels_dropped;
    return MOE_RLOG_OK;
}
