/*
 * tools/analyze/an_routes.c — the analyses of sampled routes (docs/analysis.md): the routing
 * map, co-selection of experts, per-expert token specialisation and top tokens, and the
 * exchange what-ifs (hierarchical, node-limited) replayed over the routes.
 *
 * What always holds:
 *  1. Routes are read in blocks of AN_ROUTE_BLOCK rows and at most AN_ROUTES_MAX rows are used,
 *     so memory does not grow with the file.
 *  2. Every what-if is a replay of the recorded routes under the changed setting.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

moe_status_t an_routes(moe_tel_reader_t *r, cJSON *an, cJSON *rec, const an_st_t *a,
                       const an_opts_t *opt, const int32_t *own, const int32_t *node,
                       moe_log_t *log)
{
    moe_status_t          st = MOE_OK;
    const char           *path = a->path;
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    int64_t               N = in->nroutes < AN_ROUTES_MAX ? in->nroutes : AN_ROUTES_MAX;
    int64_t               L = a->L, K = a->K, E = a->E, P = a->P, i0, n, i, l, k, nkeys = 0;
    int32_t              *ex = NULL;
    float                *wt = NULL;
    int64_t              *tok = NULL, *keys = NULL, *tid = NULL;
    int                   has_w = moe_tel_reader_has(r, MOE_TEL_ROUTE_WEIGHT);
    int                   has_t = moe_tel_reader_has(r, MOE_TEL_ROUTE_TOKEN);
    /* specialisation keys on the vocabulary id when the run recorded one, else the index */
    int                   has_id = moe_tel_reader_has(r, MOE_TEL_ROUTE_TOKEN_ID);
    double                wk_sum = 0, w_n = 0, flat_remote = 0, flat_inter = 0, hier_inter = 0;
    double                nl_inter = 0, nl_mass = 0, tl_n = 0;
    int                   vocab_ids = 0;
    cJSON                *map = NULL, *mtok = NULL, *mexp = NULL, *sp;

    if (!moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT) || in->nroutes == 0) {
        an_section(an, "routing_map", !moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT)
                                          ? "routes/ absent" : "no sampled routes (route_samples 0)");
        an_section(an, "specialisation", !moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT)
                                             ? "routes/ absent" : "no sampled routes (route_samples 0)");
        return MOE_OK;
    }
    ex = malloc((size_t)(AN_ROUTE_BLOCK * L * K) * 4);
    wt = has_w ? malloc((size_t)(AN_ROUTE_BLOCK * L * K) * 4) : NULL;
    tok = malloc((size_t)AN_ROUTE_BLOCK * 8);
    tid = has_id ? malloc((size_t)AN_ROUTE_BLOCK * 8) : NULL;
    /* key = (layer * E + expert) << 40 | token: needs L * E < 2^22 and token < 2^40 */
    keys = (has_t || has_id) && L * E < (1LL << 22) ? malloc((size_t)(N * L) * 8) : NULL;
    if (!ex || (has_w && !wt) || !tok || (has_id && !tid))
        goto out;
    map = an_section(an, "routing_map", NULL);
    cJSON_AddStringToObject(map, "description", "top-1 expert of the first sampled tokens, per layer");
    mtok = cJSON_AddArrayToObject(map, "tokens");
    mexp = cJSON_AddArrayToObject(map, "experts"); /* [token][layer] */
    cJSON_AddItemToObject(map, "layer_ids", an_i64_array(a->lid, L));
    for (i0 = 0; i0 < N; i0 += AN_ROUTE_BLOCK) {
        n = N - i0 < AN_ROUTE_BLOCK ? N - i0 : AN_ROUTE_BLOCK;
        if (moe_tel_reader_read(r, MOE_TEL_ROUTE_EXPERT, MOE_TEL_I32, i0, n, ex) != MOE_OK ||
            (wt && moe_tel_reader_read(r, MOE_TEL_ROUTE_WEIGHT, MOE_TEL_F32, i0, n, wt) != MOE_OK) ||
            (has_t && moe_tel_reader_read(r, MOE_TEL_ROUTE_TOKEN, MOE_TEL_I64, i0, n, tok) != MOE_OK) ||
            (tid && moe_tel_reader_read(r, MOE_TEL_ROUTE_TOKEN_ID, MOE_TEL_I64, i0, n, tid) != MOE_OK))
            goto out;
        for (i = 0; i < n * L * K; i++) {
            /* an expert id is in [0, E) (-1: none); anything else is damage, not data */
            if (ex[i] < -1 || ex[i] >= E) {
                st = MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s row %lld holds "
                                    "expert %d (allowed 0..%lld, or -1)", path,
                                    MOE_TEL_ROUTE_EXPERT, (long long)(i0 + i / (L * K)),
                                    (int)ex[i], (long long)(E - 1));
                goto out;
            }
        }
        for (i = 0; i < n; i++) {
            int64_t src = -1;
            if (has_t && in->tokens_per_rank > 0 && tok[i] >= 0 &&
                tok[i] < in->tokens_per_rank * P)
                src = tok[i] / in->tokens_per_rank;
            if (i0 + i < AN_MAP_TOKENS) {
                cJSON *row = cJSON_CreateArray();
                for (l = 0; l < L; l++)
                    cJSON_AddItemToArray(row, cJSON_CreateNumber(ex[(i * L + l) * K]));
                cJSON_AddItemToArray(mexp, row);
                cJSON_AddItemToArray(mtok, cJSON_CreateNumber(has_t ? (double)tok[i] : (double)(i0 + i)));
            }
            for (l = 0; l < L; l++) {
                const int32_t *x = ex + (i * L + l) * K;
                const float   *ww = wt ? wt + (i * L + l) * K : NULL;
                if (x[0] < 0 || x[0] >= E)
                    continue;
                {
                    int64_t key_tok = tid ? tid[i] : has_t ? tok[i] : -1;
                    if (keys && key_tok >= 0 && key_tok < (1LL << 40))
                        keys[nkeys++] = ((l * E + x[0]) << 40) | key_tok;
                }
                if (ww && K >= 2) {
                    wk_sum += ww[K - 1];
                    w_n += 1;
                }
                if (own && src >= 0) {
                    /* per token: remote pairs (flat), inter-node pairs (flat), distinct remote
                     * nodes (hier, node-deduplicated), and node-limited(1) copies */
                    int64_t nodes_seen[64], ns = 0, j, z;
                    double  mass_node[64], best = 0, mass = 0;
                    for (k = 0; k < K; k++) {
                        int32_t e = x[k];
                        int64_t rk, nd;
                        if (e < 0 || e >= E)
                            continue;
                        rk = own[e];
                        nd = node ? node[rk] : 0;
                        if (rk != src)
                            flat_remote += 1;
                        if (nd != (node ? node[src] : 0))
                            flat_inter += 1;
                        for (j = 0; j < ns && nodes_seen[j] != nd; j++)
                            ;
                        if (j == ns && ns < 64) {
                            nodes_seen[ns] = nd;
                            mass_node[ns] = 0;
                            ns++;
                        }
                        if (j < 64)
                            mass_node[j] += ww ? ww[k] : 1.0 / (double)K;
                        mass += ww ? ww[k] : 1.0 / (double)K;
                    }
                    for (z = 0; z < ns; z++) {
                        if (nodes_seen[z] != (node ? node[src] : 0))
                            hier_inter += 1;
                        if (mass_node[z] > best)
                            best = mass_node[z];
                    }
                    /* node-limited(1): all k experts on the node with the largest gate mass */
                    {
                        int64_t bestn = -1;
                        for (z = 0; z < ns; z++)
                            if (mass_node[z] == best) {
                                bestn = nodes_seen[z];
                                break;
                            }
                        if (bestn != (node ? node[src] : 0))
                            nl_inter += 1;
                    }
                    nl_mass += mass > 0 ? (mass - best) / mass : 0;
                    tl_n += 1;
                }
            }
        }
    }
    cJSON_AddNumberToObject(map, "sampled_routes", (double)in->nroutes);
    cJSON_AddNumberToObject(map, "routes_used", (double)N);
    /* specialisation */
    if (keys && nkeys > 0) {
        cJSON  *arr;
        int64_t j;
        char *kind = NULL;
        sp = an_section(an, "specialisation", NULL);
        /* routes/token is a position (a run's global token index, an imported log's
         * token_idx), not a vocabulary id; routes/token_id (when written) is one, and a file
         * may declare its routes/token vocabulary ids (token_ids = "vocabulary") */
        if (tid != NULL || (moe_tel_reader_attr_str(r, "/", "token_ids", &kind) == MOE_OK &&
                            strcmp(kind, "vocabulary") == 0))
            vocab_ids = 1; /* routes/token_id: the run's vocabulary ids (docs/routers.md) */
        free(kind);
        cJSON_AddStringToObject(sp, "id_kind", vocab_ids ? "vocabulary" : "position");
        cJSON_AddStringToObject(sp, "description",
                                vocab_ids ? "most frequent token ids among the tokens whose top-1 expert it is"
                                          : "most frequent token positions (routes/token: a run's global "
                                            "token index, an imported log's token_idx; not vocabulary "
                                            "ids) among the tokens whose top-1 expert it is");
        cJSON_AddBoolToObject(sp, "decoded", opt->vocab != NULL && vocab_ids);
        if (opt->vocab != NULL && !vocab_ids)
            cJSON_AddStringToObject(sp, "decode_missing",
                                    "--vocab not applied: the ids are positions, not vocabulary ids");
        cJSON_AddStringToObject(sp, "id_source", tid ? "routes/token_id" : "routes/token");
        arr = cJSON_AddArrayToObject(sp, "experts");
        qsort(keys, (size_t)nkeys, 8, an_cmp_i64);
        for (i = 0; i < nkeys;) {
            int64_t grp = keys[i] >> 40, top_c[AN_TOP_TOKENS], top_t[AN_TOP_TOKENS], nt = 0, gtot = 0;
            cJSON  *o, *tl;
            for (j = i; j < nkeys && (keys[j] >> 40) == grp;) {
                int64_t t = keys[j] & ((1LL << 40) - 1), c = 0, z, q;
                for (; j < nkeys && (keys[j] >> 40) == grp && (keys[j] & ((1LL << 40) - 1)) == t; j++)
                    c++;
                gtot += c;
                for (z = 0; z < nt && top_c[z] >= c; z++)
                    ;
                if (z >= AN_TOP_TOKENS)
                    continue;
                for (q = (nt < AN_TOP_TOKENS ? nt : AN_TOP_TOKENS - 1); q > z; q--) {
                    top_c[q] = top_c[q - 1];
                    top_t[q] = top_t[q - 1];
                }
                top_c[z] = c;
                top_t[z] = t;
                if (nt < AN_TOP_TOKENS)
                    nt++;
            }
            i = j;
            o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "layer", (double)a->lid[grp / E]);
            cJSON_AddNumberToObject(o, "expert", (double)(grp % E));
            cJSON_AddNumberToObject(o, "samples", (double)gtot);
            tl = cJSON_AddArrayToObject(o, "top_tokens");
            for (k = 0; k < nt; k++) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddNumberToObject(t, "id", (double)top_t[k]);
                cJSON_AddNumberToObject(t, "count", (double)top_c[k]);
                if (opt->vocab && vocab_ids && top_t[k] < opt->nvocab)
                    cJSON_AddStringToObject(t, "text", opt->vocab[top_t[k]]);
                cJSON_AddItemToArray(tl, t);
            }
            cJSON_AddItemToArray(arr, o);
        }
    } else {
        an_section(an, "specialisation",
                   !has_t && !has_id ? "routes/token absent"
                          : L * E >= (1LL << 22) ? "more than 2^22 layer x expert pairs"
                                                  : "no sampled token id in range");
    }
    /* top-k what-if */
    if (K >= 2 && w_n > 0) {
        double mk = wk_sum / w_n;
        char   evd[300], t[120];
        cJSON_AddNumberToObject(map, "mean_weight_of_kth_expert", mk);
        snprintf(evd, sizeof(evd),
                 "%lld sampled routes: the k-th expert carries %.1f%% of the gate weight on "
                 "average; top-%lld sends %lld of %lld pairs per token",
                 (long long)N, 100 * mk, (long long)(K - 1), (long long)(K - 1), (long long)K);
        snprintf(t, sizeof(t), "reduce top-k from %lld to %lld", (long long)K, (long long)(K - 1));
        if (mk < 0.25)
            an_recommend(rec, "top_k", t, "expert FLOPs and exchange pairs per token",
                         (double)K, (double)(K - 1), "pairs per token",
                         "medium (model change; re-evaluate quality)", evd);
    }
    /* hierarchical and node-limited exchange what-if */
    if (tl_n > 0) {
        cJSON *xo = cJSON_AddObjectToObject(map, "exchange_what_if");
        cJSON_AddNumberToObject(xo, "routes", tl_n);
        cJSON_AddNumberToObject(xo, "flat_remote_pairs_per_token", flat_remote / tl_n);
        cJSON_AddNumberToObject(xo, "flat_inter_node_copies_per_token", flat_inter / tl_n);
        cJSON_AddNumberToObject(xo, "hier_inter_node_copies_per_token", hier_inter / tl_n);
        cJSON_AddNumberToObject(xo, "node_limited1_inter_node_copies_per_token", nl_inter / tl_n);
        cJSON_AddNumberToObject(xo, "node_limited1_rerouted_gate_mass", nl_mass / tl_n);
        if (in->nnodes > 1 && flat_inter > 0) {
            char evd[300];
            const char *exch = "?";
            char       *xs = NULL;
            if (moe_tel_reader_attr_str(r, "/", "exchange", &xs) == MOE_OK)
                exch = xs;
            snprintf(evd, sizeof(evd),
                     "%.0f sampled (token, layer) routes with source rank known: inter-node "
                     "copies per token flat %.3f, node-deduplicated %.3f (exchange in this run: %s)",
                     tl_n, flat_inter / tl_n, hier_inter / tl_n, exch);
            /* hier, ucx (hier over UCX) and 2dh already send a token once per node */
            if (hier_inter < 0.95 * flat_inter && strcmp(exch, "hier") != 0 &&
                strcmp(exch, "ucx") != 0 && strcmp(exch, "2dh") != 0)
                an_recommend(rec, "hier_exchange",
                             "use the node-deduplicated hierarchical exchange (--exchange hier)",
                             "inter-node payload copies per token", flat_inter / tl_n,
                             hier_inter / tl_n, "copies", "low (one option)", evd);
            snprintf(evd, sizeof(evd),
                     "same routes limited to the node with the largest gate mass: inter-node "
                     "copies %.3f -> %.3f per token, %.1f%% of gate mass re-routed",
                     hier_inter / tl_n, nl_inter / tl_n, 100 * nl_mass / tl_n);
            if (nl_inter < 0.95 * hier_inter)
                an_recommend(rec, "node_limited",
                             "node-limited routing (experts of one node per token)",
                             "inter-node payload copies per token", hier_inter / tl_n,
                             nl_inter / tl_n, "copies", "medium (router change; re-evaluate quality)",
                             evd);
            free(xs);
        }
    } else if (own == NULL) {
        cJSON_AddStringToObject(map, "exchange_what_if_missing",
                                in->imported
                                    ? "placement/expert_owner absent (an imported log has no cluster "
                                      "shape): replay it with moerun --replay at your ranks and nodes "
                                      "and analyse that telemetry for the hier and node-limited what-ifs"
                                    : "placement/expert_owner absent");
    } else {
        cJSON_AddStringToObject(map, "exchange_what_if_missing",
                                "source rank of sampled tokens unknown (routes/token or tokens_per_rank absent)");
    }
out:
    free(ex);
    free(wt);
    free(tok);
    free(tid);
    free(keys);
    return st;
}
