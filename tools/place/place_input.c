/*
 * tools/place/place_input.c — the planner's input from telemetry files (tools/reader).
 *
 * Several files must have the same experts, layers, top_k and ranks; their loads,
 * co-selection and routes add up. Imported routing logs (docs/import.md) have loads and
 * co-selection but no ranks, no token-to-rank map and no placement: predictions then use
 * the uniform-origin model and there is no "before" map unless the caller builds one.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "moerun/base/log.h"
#include "place.h"
#include "telemetry_reader.h"

void moe_place_input_cleanup(moe_place_input_t *in)
{
    free(in->node_of);
    free(in->load);
    free(in->coselect);
    free(in->route_token);
    free(in->route_expert);
    free(in->route_kept);
    if (in->current) {
        moe_placement_cleanup(in->current);
        free(in->current);
    }
    memset(in, 0, sizeof(*in));
}

/* The measured run's placement: placement/expert_ranks, else expert_owner at every layer. */
static moe_status_t pi_current(moe_place_input_t *in, moe_tel_reader_t *r, char *err,
                               size_t errlen)
{
    int64_t      dims[4];
    int          nd, E = in->experts, L = in->layers, P = in->nranks, R = 1, l, e, j;
    int         *buf = NULL, *nrep = NULL, *ranks = NULL, slots = 1, *held = NULL;
    moe_status_t st = MOE_OK;

    if (moe_tel_reader_has(r, MOE_TEL_EXPERT_RANKS)) {
        if ((st = moe_tel_reader_dims(r, MOE_TEL_EXPERT_RANKS, dims, &nd)) != MOE_OK)
            return st;
        R = (int)dims[2];
        if (R < 1 || R > P)
            return MOE_ERR_INVALID;
        buf = malloc((size_t)L * E * R * sizeof(int));
        if (buf == NULL)
            return MOE_ERR_NOMEM;
        st = moe_tel_reader_read(r, MOE_TEL_EXPERT_RANKS, MOE_TEL_I32, 0, L, buf);
    } else if (moe_tel_reader_has(r, MOE_TEL_EXPERT_OWNER)) {
        buf = malloc((size_t)L * E * sizeof(int));
        if (buf == NULL)
            return MOE_ERR_NOMEM;
        st = moe_tel_reader_read(r, MOE_TEL_EXPERT_OWNER, MOE_TEL_I32, 0, E, buf);
        for (l = 1; l < L && st == MOE_OK; l++)
            memcpy(buf + (size_t)l * E, buf, (size_t)E * sizeof(int));
    } else {
        return MOE_OK;
    }
    nrep = calloc((size_t)L * E, sizeof(int));
    ranks = malloc((size_t)L * E * R * sizeof(int) + 1);
    held = calloc((size_t)L * P, sizeof(int));
    in->current = calloc(1, sizeof(*in->current));
    if (!nrep || !ranks || !held || !in->current)
        st = MOE_ERR_NOMEM;
    for (l = 0; l < L && st == MOE_OK; l++)
        for (e = 0; e < E; e++)
            for (j = 0; j < R; j++) {
                int x = buf[((size_t)l * E + e) * R + j];
                if (x < 0 || x >= P)
                    continue;
                ranks[((size_t)l * E + e) * R + nrep[(size_t)l * E + e]++] = x;
                if (++held[(size_t)l * P + x] > slots)
                    slots = held[(size_t)l * P + x];
            }
    if (st == MOE_OK)
        st = moe_placement_from_lists(in->current, E, L, P, in->nnodes, in->node_of, slots, nrep,
                                      ranks, R, err, errlen);
    if (st != MOE_OK && in->current) {
        free(in->current);
        in->current = NULL;
    }
    free(buf), free(nrep), free(ranks), free(held);
    return st;
}

static moe_status_t pi_read_one(moe_place_input_t *in, const char *path, int first, char *err,
                                size_t errlen)
{
    moe_log_t             log;
    moe_tel_reader_t     *r = NULL;
    const moe_tel_info_t *fi;
    moe_status_t          st;
    int64_t               s, n, i;
    int                   E, L, k, hc;
    int64_t              *row = NULL;
    char                 *act = NULL;

    moe_log_init(&log, 0, MOE_LOG_ERROR);
    st = moe_tel_reader_open(path, &log, &r);
    if (st != MOE_OK) {
        moe_say(err, errlen, "%s", log.last_error);
        return st;
    }
    fi = moe_tel_reader_info(r);
    E = (int)fi->experts;
    L = (int)fi->layers;
    k = (int)fi->top_k;
    if (first) {
        in->experts = E;
        in->layers = L;
        in->top_k = k > 0 ? k : 1;
        in->nranks = fi->nranks > 0 ? (int)fi->nranks : 1;
        in->nnodes = fi->nnodes > 0 ? (int)fi->nnodes : 1;
        in->tokens_per_rank = fi->tokens_per_rank > 0 && fi->nranks > 0 ? fi->tokens_per_rank : 0;
        in->row_bytes = fi->d_model > 0 ? 4.0 * (double)fi->d_model : 4.0;
        hc = (int)(fi->d_ffn > 0 ? fi->d_ffn : 0);
        if (moe_tel_reader_attr_str(r, "/", "activation", &act) == MOE_OK && strcmp(act, "swiglu") == 0)
            hc *= 2;
        free(act);
        in->expert_bytes = 4.0 * (double)(fi->d_model > 0 ? fi->d_model : 0) *
                           (double)(hc + (fi->d_ffn > 0 ? fi->d_ffn : 0));
        in->load = calloc((size_t)L * E, sizeof(double));
        in->node_of = calloc((size_t)in->nranks, sizeof(int));
        if (!in->load || !in->node_of) {
            st = MOE_ERR_NOMEM;
            goto out;
        }
        if (moe_tel_reader_has(r, MOE_TEL_NODE) &&
            (st = moe_tel_reader_read(r, MOE_TEL_NODE, MOE_TEL_I32, 0, in->nranks,
                                      in->node_of)) != MOE_OK)
            goto out;
        if ((st = pi_current(in, r, err, errlen)) != MOE_OK)
            goto out;
    } else if (E != in->experts || L != in->layers || (k > 0 && k != in->top_k) ||
               (fi->nranks > 0 && fi->nranks != in->nranks)) {
        moe_say(err, errlen, "%s: experts %d, layers %d, top_k %d, ranks %lld differ from the "
               "first file's %d, %d, %d, %d", path, E, L, k, (long long)fi->nranks, in->experts,
               in->layers, in->top_k, in->nranks);
        st = MOE_ERR_INVALID;
        goto out;
    }
    row = malloc((size_t)L * E * sizeof(int64_t) + 1);
    if (row == NULL) {
        st = MOE_ERR_NOMEM;
        goto out;
    }
    for (s = 0; s < fi->steps; s++) {
        if ((st = moe_tel_reader_read(r, MOE_TEL_ROUTED, MOE_TEL_I64, s, 1, row)) != MOE_OK)
            goto out;
        for (i = 0; i < (int64_t)L * E; i++)
            in->load[i] += (double)row[i];
    }
    in->steps += (double)fi->steps;
    if (moe_tel_reader_has(r, MOE_TEL_COSELECT)) {
        size_t nn = (size_t)L * E * E;
        int64_t *cs = malloc(nn * sizeof(int64_t));
        if (in->coselect == NULL)
            in->coselect = calloc(nn, sizeof(double));
        if (!cs || !in->coselect) {
            free(cs);
            st = MOE_ERR_NOMEM;
            goto out;
        }
        st = moe_tel_reader_read(r, MOE_TEL_COSELECT, MOE_TEL_I64, 0, L, cs);
        for (size_t q = 0; q < nn && st == MOE_OK; q++)
            in->coselect[q] += (double)cs[q];
        free(cs);
        if (st != MOE_OK)
            goto out;
    }
    n = fi->nroutes;
    if (n > 0 && k > 0 && moe_tel_reader_has(r, MOE_TEL_ROUTE_TOKEN) &&
        moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT) && moe_tel_reader_has(r, MOE_TEL_ROUTE_KEPT)) {
        int64_t  old = in->nroutes;
        int64_t *t = realloc(in->route_token, (size_t)(old + n) * sizeof(int64_t));
        int32_t *x;
        uint8_t *kp;
        if (t)
            in->route_token = t;
        x = realloc(in->route_expert, (size_t)(old + n) * L * k * sizeof(int32_t));
        if (x)
            in->route_expert = x;
        kp = realloc(in->route_kept, (size_t)(old + n) * L * k);
        if (kp)
            in->route_kept = kp;
        if (!t || !x || !kp) {
            st = MOE_ERR_NOMEM;
            goto out;
        }
        if ((st = moe_tel_reader_read(r, MOE_TEL_ROUTE_TOKEN, MOE_TEL_I64, 0, n,
                                      in->route_token + old)) != MOE_OK ||
            (st = moe_tel_reader_read(r, MOE_TEL_ROUTE_EXPERT, MOE_TEL_I32, 0, n,
                                      in->route_expert + (size_t)old * L * k)) != MOE_OK ||
            (st = moe_tel_reader_read(r, MOE_TEL_ROUTE_KEPT, MOE_TEL_U8, 0, n,
                                      in->route_kept + (size_t)old * L * k)) != MOE_OK)
            goto out;
        for (i = 0; i < n; i++) { /* untrusted: a token index names its source rank */
            int64_t g = in->route_token[old + i];
            if (in->tokens_per_rank > 0 && (g < 0 || g / in->tokens_per_rank >= in->nranks)) {
                moe_say(err, errlen,
                        "%s: routes/token[%" PRId64 "] = %" PRId64 " is outside the allowed "
                        "range [0, tokens_per_rank %" PRId64 " x ranks %d)",
                        path, i, g, in->tokens_per_rank, in->nranks);
                st = MOE_ERR_INVALID;
                goto out;
            }
        }
        in->nroutes += n;
        {
            int64_t all; /* steps x T x ranks from untrusted attributes: may overflow */
            int     ovf = __builtin_mul_overflow(fi->steps, in->tokens_per_rank, &all) ||
                      __builtin_mul_overflow(all, (int64_t)in->nranks, &all);
            in->routes_complete = (first || in->routes_complete) && in->tokens_per_rank > 0 &&
                                  !ovf && n == all;
        }
    } else {
        in->routes_complete = 0;
    }
out:
    if (st != MOE_OK && err && err[0] == '\0')
        moe_say(err, errlen, "%s: %s", path, log.last_error[0] ? log.last_error
                                                                : moe_status_str(st));
    free(row);
    moe_tel_reader_close(r);
    return st;
}

moe_status_t moe_place_input_read(moe_place_input_t *in, const char *const *paths, int npaths,
                                  char *err, size_t errlen)
{
    moe_status_t st = MOE_OK;
    int          i;

    memset(in, 0, sizeof(*in));
    if (err && errlen)
        err[0] = '\0';
    for (i = 0; i < npaths && st == MOE_OK; i++)
        st = pi_read_one(in, paths[i], i == 0, err, errlen);
    if (st == MOE_OK && in->nroutes > 0 && in->routes_complete == 0 && npaths > 1)
        in->routes_complete = 0;
    if (st != MOE_OK)
        moe_place_input_cleanup(in);
    return st;
}
