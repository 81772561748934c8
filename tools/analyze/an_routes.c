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
#include "router.h" /* the node-limited router's own selection (runtime/router_limited.c) */

#define AN_NL_MAX_M     8         /* node-limited what-if for M = 1 .. this many nodes */
#define AN_NL_MAX_CALLS 2000000.0 /* router calls of the exchange what-if (routes x M values) */

/* The cluster shape of the exchange what-ifs: the file's placement and nodes, or an assumed one. */
typedef struct an_shape {
    const int32_t *own;     /* [E] rank of each expert (layer 0's primary) */
    const int32_t *lranks;  /* [L][E][R] each layer's replicas, primary first, -1 padded;
                             * NULL: own[] at every layer */
    int64_t        L, E, R;
    const int32_t *node;    /* [P] node of each rank (NULL: one node) */
    int64_t        P, nodes;
    double        *node_share; /* [nodes] ranks of the node / P: a token's chance to start there */
    int64_t        ranks_per_node; /* assumed shapes: ranks of each node (the last may have fewer) */
    int            assumed;  /* 1: contiguous blocks over opt->ranks, opt->ranks_per_node */
} an_shape_t;

/*
 * The rank that serves expert e at layer l for global token g starting on node snode: the
 * runtime's replica rule (docs/placement.md, moe_placement_route): the replicas on the
 * token's node if any, else all of them, the g-th of those modulo their count. Without a
 * known token (g < 0) the layer's primary; without per-layer maps the file's expert_owner.
 */
static int64_t an_rank_of(const an_shape_t *sh, int64_t l, int64_t e, int64_t snode, int64_t g)
{
    const int32_t *rr;
    int64_t        j, nnear = 0, nall = 0, first = -1;

    if (sh->lranks == NULL || l < 0 || l >= sh->L)
        return sh->own[e];
    rr = sh->lranks + (l * sh->E + e) * sh->R;
    for (j = 0; j < sh->R; j++) {
        if (rr[j] < 0 || rr[j] >= sh->P)
            continue;
        if (first < 0)
            first = rr[j];
        nall++;
        nnear += snode >= 0 && sh->node != NULL && sh->node[rr[j]] == snode;
    }
    if (first < 0)
        return sh->own[e];
    if (g < 0)
        return first;
    {
        int64_t pick = g % (nnear > 0 ? nnear : nall), c = 0;
        for (j = 0; j < sh->R; j++) {
            if (rr[j] < 0 || rr[j] >= sh->P)
                continue;
            if (nnear > 0 && sh->node[rr[j]] != snode)
                continue;
            if (c++ == pick)
                return rr[j];
        }
    }
    return first;
}

/* Node-limited replay scratch: a compact router over the route's own experts. */
typedef struct an_nl {
    int64_t  K, emax;
    double  *prob, *scratch;
    int     *group_of;
    int32_t *sel;
    float   *score, *weight;
    int64_t  gnode[64];     /* compact group -> node id, ascending */
} an_nl_t;

/*
 * Replays node-limited routing with M nodes on one (token, layer) route of the log with the
 * node-limited router's own selection (moe_router_node_ops.select, runtime/router_limited.c):
 * the log holds the k chosen experts and their weights, not the full distribution, so the
 * router sees the route's experts with their weights (1/k each without weights) and, per
 * node, k filler experts of probability 0 (every expert the log did not choose scores at
 * most the k-th weight; counted as 0, the lower bound). Group score = sum of the two highest
 * weights on the node, the best M nodes (ties to the lower node id), top-k inside. Writes
 * the nodes the token then touches (a chosen filler stands for "another expert of an allowed
 * node") into nodes_out and returns their count; *lost = weight of the route's experts that
 * the limit re-routes, over the route's total weight.
 */
static int64_t an_nl_route(an_nl_t *w, const int32_t *x, const float *ww, int64_t E,
                           const an_shape_t *sh, int64_t l, int64_t snode, int64_t gtok,
                           int M, int64_t *nodes_out, double *lost)
{
    int64_t     k, nk = 0, D = 0, j, g, ne;
    double      tot = 0, kept = 0, wk[64];
    int         gk[64];
    moe_router_t r;
    moe_router_token_t tok;

    for (k = 0; k < w->K && k < 64; k++) {
        int64_t nd, e = x[k];
        double  v = ww ? (double)ww[k] : 1.0 / (double)w->K;
        if (e < 0 || e >= E)
            continue;
        if (!(v > 0) || !isfinite(v))
            v = 0;
        nd = sh->node ? sh->node[an_rank_of(sh, l, e, snode, gtok)] : 0;
        for (g = 0; g < D && w->gnode[g] != nd; g++)
            ;
        if (g == D)
            w->gnode[D++] = nd;
        gk[nk] = (int)g;
        wk[nk++] = v;
        tot += v;
    }
    *lost = 0;
    if (nk == 0)
        return 0;
    if (!(tot > 0)) { /* no usable weight: equal weights */
        for (j = 0; j < nk; j++)
            wk[j] = 1.0;
        tot = (double)nk;
    }
    /* compact group ids in increasing node id, so group ties go to the lower node id */
    {
        int64_t newid[64], tmp[64], h;
        for (g = 0; g < D; g++) {
            newid[g] = 0;
            for (h = 0; h < D; h++)
                newid[g] += w->gnode[h] < w->gnode[g];
        }
        for (j = 0; j < nk; j++)
            gk[j] = (int)newid[gk[j]];
        for (g = 0; g < D; g++)
            tmp[newid[g]] = w->gnode[g];
        memcpy(w->gnode, tmp, (size_t)D * sizeof(int64_t));
    }
    /* the route's experts first (ties among equal weights to the earlier one), then k
     * fillers of probability 0 per node */
    ne = 0;
    for (j = 0; j < nk; j++) {
        w->prob[ne] = wk[j];
        w->group_of[ne++] = gk[j];
    }
    for (g = 0; g < D; g++)
        for (j = 0; j < nk; j++) {
            w->prob[ne] = 0;
            w->group_of[ne++] = (int)g;
        }
    memset(&r, 0, sizeof(r));
    r.ops = &moe_router_node_ops;
    r.E = (int)ne;
    r.k = (int)nk;
    r.ngroups = (int)D;
    r.max_groups = M;
    r.group_of = w->group_of;
    memset(&tok, 0, sizeof(tok));
    tok.prob = w->prob;
    tok.id = -1;
    r.ops->select(&r, &tok, w->scratch, w->sel, w->score, w->weight);
    {
        int64_t n = 0, h;
        for (j = 0; j < nk; j++) {
            int64_t s = w->sel[j], nd;
            if (s < 0 || s >= ne)
                continue;
            if (s < nk)
                kept += wk[s];
            nd = w->gnode[w->group_of[s]];
            for (h = 0; h < n && nodes_out[h] != nd; h++)
                ;
            if (h == n)
                nodes_out[n++] = nd;
        }
        *lost = (tot - kept) / tot;
        return n;
    }
}

/* Inter-node copies of a token touching nodes[n]: those other than its source node, or,
 * when the source is not known, the expected count with the source uniform over ranks. */
static double an_copies(const int64_t *nodes, int64_t n, int64_t srcnode, const an_shape_t *sh)
{
    double  c = 0;
    int64_t i;

    for (i = 0; i < n; i++)
        c += srcnode >= 0 ? (nodes[i] != srcnode) : 1.0 - sh->node_share[nodes[i]];
    return c;
}

moe_status_t an_routes(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, cJSON *rec, const an_st_t *a,
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
    double                tl_n = 0, nl_copies[AN_NL_MAX_M], nl_lost[AN_NL_MAX_M], xcap = 0;
    int                   vocab_ids = 0, nM = 0, m, src_seen = 0, src_unknown = 0;
    cJSON                *map = NULL, *mtok = NULL, *mexp = NULL, *sp;
    an_shape_t            sh;
    an_nl_t               nlw;
    int32_t              *aown = NULL, *anode = NULL, *lranks = NULL;
    int64_t               nodes_tmp[64];

    if (!moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT) || in->nroutes == 0) {
        an_section(an, "routing_map", !moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT)
                                          ? "routes/ absent" : "no sampled routes (route_samples 0)");
        an_section(an, "specialisation", !moe_tel_reader_has(r, MOE_TEL_ROUTE_EXPERT)
                                             ? "routes/ absent" : "no sampled routes (route_samples 0)");
        return MOE_OK;
    }
    /* the cluster shape of the exchange what-ifs: the file's, or an assumed one */
    memset(&sh, 0, sizeof(sh));
    memset(&nlw, 0, sizeof(nlw));
    memset(nl_copies, 0, sizeof(nl_copies));
    memset(nl_lost, 0, sizeof(nl_lost));
    if (own != NULL && P > 0) {
        int64_t dims[4];
        int     nd = 0;
        sh.own = own;
        sh.node = node;
        sh.P = P;
        /* each layer's own map and replicas where the file has them (schema 2) */
        if (moe_tel_reader_has(r, MOE_TEL_EXPERT_RANKS) &&
            moe_tel_reader_dims(r, MOE_TEL_EXPERT_RANKS, dims, &nd) == MOE_OK && nd == 3 &&
            dims[0] == L && dims[1] == E && dims[2] >= 1 && dims[2] <= P) {
            lranks = malloc((size_t)(L * E * dims[2]) * sizeof(int32_t));
            if (lranks != NULL &&
                moe_tel_reader_read(r, MOE_TEL_EXPERT_RANKS, MOE_TEL_I32, 0, L, lranks) == MOE_OK) {
                sh.lranks = lranks;
                sh.L = L;
                sh.E = E;
                sh.R = dims[2];
            }
        }
    } else if (own == NULL && E > 0) {
        int64_t Pa = opt->ranks > 0 ? opt->ranks : (E < AN_ASSUMED_RANKS ? E : AN_ASSUMED_RANKS);
        int64_t Ra = opt->ranks_per_node > 0 ? opt->ranks_per_node : (Pa + 1) / 2;
        aown = malloc((size_t)E * sizeof(int32_t));
        anode = malloc((size_t)Pa * sizeof(int32_t));
        if (aown && anode) {
            for (i = 0; i < E; i++)
                aown[i] = (int32_t)(i * Pa / E); /* contiguous blocks, as the placement what-if */
            for (i = 0; i < Pa; i++)
                anode[i] = (int32_t)(i / Ra);
            sh.own = aown;
            sh.node = anode;
            sh.P = Pa;
            sh.ranks_per_node = Ra;
            sh.assumed = 1;
        }
    }
    if (sh.own != NULL) {
        for (i = 0; i < sh.P; i++) {
            int64_t nd = sh.node ? sh.node[i] : 0;
            if (nd < 0 || nd >= sh.P) /* node ids are 0..nodes-1 <= ranks; else one node */
                sh.node = NULL;
        }
        sh.nodes = 1;
        for (i = 0; sh.node && i < sh.P; i++)
            if (sh.node[i] + 1 > sh.nodes)
                sh.nodes = sh.node[i] + 1;
        sh.node_share = calloc((size_t)sh.nodes, sizeof(double));
        if (sh.node_share == NULL)
            goto out;
        for (i = 0; i < sh.P; i++)
            sh.node_share[sh.node ? sh.node[i] : 0] += 1.0 / (double)sh.P;
        nM = (int)((K < sh.nodes ? K : sh.nodes) - 1);
        if (nM > AN_NL_MAX_M)
            nM = AN_NL_MAX_M;
        if (nM < 0 || K > 64)
            nM = 0;
        xcap = nM > 0 ? AN_NL_MAX_CALLS / nM : 1e300;
        nlw.K = K;
        nlw.emax = K + K * K;
        nlw.prob = malloc((size_t)nlw.emax * sizeof(double));
        nlw.scratch = malloc(MOE_ROUTER_SCRATCH(nlw.emax) * sizeof(double));
        nlw.group_of = malloc((size_t)nlw.emax * sizeof(int));
        nlw.sel = malloc((size_t)(K > 0 ? K : 1) * sizeof(int32_t));
        nlw.score = malloc((size_t)(K > 0 ? K : 1) * sizeof(float));
        nlw.weight = malloc((size_t)(K > 0 ? K : 1) * sizeof(float));
        if (!nlw.prob || !nlw.scratch || !nlw.group_of || !nlw.sel || !nlw.score || !nlw.weight)
            goto out;
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
                tok[i] / in->tokens_per_rank < P) /* no product: T comes from the file */
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
                if (sh.own && K <= 64 && tl_n < xcap) {
                    /* per (token, layer): remote pairs (flat), inter-node pairs (flat),
                     * distinct remote nodes (hier, node-deduplicated) and node-limited(M)
                     * copies; against the token's source rank when the file knows it (a
                     * run: routes/token / tokens_per_rank), else the expectation with the
                     * source uniform over the ranks */
                    int64_t srank = !sh.assumed && src >= 0 && src < sh.P ? src : -1;
                    int64_t snode = srank >= 0 ? (sh.node ? sh.node[srank] : 0) : -1, ns = 0, j;
                    double  lost;
                    for (k = 0; k < K; k++) {
                        int32_t e = x[k];
                        int64_t rk, nd;
                        if (e < 0 || e >= E)
                            continue;
                        rk = an_rank_of(&sh, l, e, snode, srank >= 0 ? tok[i] : -1);
                        nd = sh.node ? sh.node[rk] : 0;
                        flat_remote += srank >= 0 ? (rk != srank) : 1.0 - 1.0 / (double)sh.P;
                        flat_inter += snode >= 0 ? (nd != snode) : 1.0 - sh.node_share[nd];
                        for (j = 0; j < ns && nodes_tmp[j] != nd; j++)
                            ;
                        if (j == ns)
                            nodes_tmp[ns++] = nd;
                    }
                    hier_inter += an_copies(nodes_tmp, ns, snode, &sh);
                    for (m = 1; m <= nM; m++) {
                        int64_t nn = an_nl_route(&nlw, x, ww, E, &sh, l, snode,
                                                 srank >= 0 ? tok[i] : -1, m, nodes_tmp, &lost);
                        nl_copies[m - 1] += an_copies(nodes_tmp, nn, snode, &sh);
                        nl_lost[m - 1] += lost;
                    }
                    src_seen += srank >= 0;
                    src_unknown += srank < 0;
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
        cJSON *xo = cJSON_AddObjectToObject(map, "exchange_what_if"), *so, *nl;
        char   shape[300], evd[800], ftxt[400];
        size_t off;
        double h = hier_inter / tl_n;
        double n1 = nM >= 1 ? nl_copies[0] / tl_n : h, l1 = nM >= 1 ? nl_lost[0] / tl_n : 0;
        so = cJSON_AddObjectToObject(xo, "shape");
        cJSON_AddBoolToObject(so, "assumed", sh.assumed);
        cJSON_AddNumberToObject(so, "ranks", (double)sh.P);
        cJSON_AddNumberToObject(so, "nodes", (double)sh.nodes);
        if (sh.assumed)
            cJSON_AddNumberToObject(so, "ranks_per_node", (double)sh.ranks_per_node);
        cJSON_AddStringToObject(so, "placement",
                                sh.assumed ? "assumed: contiguous expert blocks"
                                : sh.lranks ? "the file's, per layer with replicas (placement/expert_ranks)"
                                            : "the file's (placement/expert_owner)");
        cJSON_AddStringToObject(so, "token_source",
                                src_unknown == 0 ? "recorded (routes/token / tokens_per_rank)"
                                : src_seen == 0 ? "assumed: uniform over the ranks (expected copies)"
                                                : "recorded where known, else uniform over the ranks");
        if (sh.assumed)
            snprintf(shape, sizeof(shape), "assumed shape: %lld ranks, %lld per node (%lld nodes), "
                     "contiguous expert blocks, token sources uniform over ranks (--ranks, "
                     "--ranks-per-node)", (long long)sh.P,
                     (long long)sh.ranks_per_node,
                     (long long)sh.nodes);
        else
            snprintf(shape, sizeof(shape), "the file's shape: %lld ranks on %lld nodes, its placement, "
                     "token sources %s", (long long)sh.P, (long long)sh.nodes,
                     src_unknown == 0 ? "recorded" : "uniform over ranks where not recorded");
        cJSON_AddStringToObject(so, "description", shape);
        cJSON_AddNumberToObject(xo, "routes", tl_n);
        cJSON_AddNumberToObject(xo, "flat_remote_pairs_per_token", flat_remote / tl_n);
        cJSON_AddNumberToObject(xo, "flat_inter_node_copies_per_token", flat_inter / tl_n);
        cJSON_AddNumberToObject(xo, "hier_inter_node_copies_per_token", h);
        cJSON_AddNumberToObject(xo, "node_limited1_inter_node_copies_per_token", n1);
        cJSON_AddNumberToObject(xo, "node_limited1_rerouted_gate_mass", l1);
        nl = cJSON_AddArrayToObject(xo, "node_limited");
        off = (size_t)snprintf(ftxt, sizeof(ftxt), "node-limited routing replayed on %.0f routes (%s): "
                               "inter-node copies per (token, layer) %.4f node-deduplicated",
                               tl_n, shape, h);
        for (m = 1; m <= nM; m++) {
            cJSON *o = cJSON_CreateObject();
            double c = nl_copies[m - 1] / tl_n;
            cJSON_AddNumberToObject(o, "max_nodes", m);
            cJSON_AddNumberToObject(o, "inter_node_copies_per_token", c);
            cJSON_AddNumberToObject(o, "copies_saved_per_token", h - c);
            an_add_num(o, "saved_share", h > 0 ? (h - c) / h : NAN);
            cJSON_AddNumberToObject(o, "rerouted_gate_mass", nl_lost[m - 1] / tl_n);
            cJSON_AddItemToArray(nl, o);
            if (off < sizeof(ftxt))
                off += (size_t)snprintf(ftxt + off, sizeof(ftxt) - off,
                                        "; %d node(s) %.4f (saves %.4f, re-routes %.1f%% of gate weight)",
                                        m, c, h - c, 100 * nl_lost[m - 1] / tl_n);
        }
        if (nM >= 1)
            an_finding(fnd, "node_limited", "info", "routing_map", h - n1, NAN, "%s", ftxt);
        if (!sh.assumed && in->nnodes > 1 && flat_inter > 0) {
            const char *exch = "?";
            char       *xs = NULL;
            if (moe_tel_reader_attr_str(r, "/", "exchange", &xs) == MOE_OK)
                exch = xs;
            snprintf(evd, sizeof(evd),
                     "%.0f sampled (token, layer) routes (%s): inter-node copies per token flat "
                     "%.3f, node-deduplicated %.3f (exchange in this run: %.60s)",
                     tl_n, shape, flat_inter / tl_n, h, exch);
            /* hier, ucx (hier over UCX) and 2dh already send a token once per node */
            if (hier_inter < 0.95 * flat_inter && strcmp(exch, "hier") != 0 &&
                strcmp(exch, "ucx") != 0 && strcmp(exch, "2dh") != 0)
                an_recommend(rec, "hier_exchange",
                             "use the node-deduplicated hierarchical exchange (--exchange hier)",
                             "inter-node payload copies per token", flat_inter / tl_n, h, "copies",
                             "low (one option)", evd);
            snprintf(evd, sizeof(evd),
                     "same routes with the node-limited router's rule (--router node-limited "
                     "--route-max-nodes 1): inter-node copies %.3f -> %.3f per token, %.1f%% of "
                     "gate weight re-routed", h, n1, 100 * l1);
            if (nM >= 1 && n1 < 0.95 * h)
                an_recommend(rec, "node_limited",
                             "node-limited routing (experts of one node per token)",
                             "inter-node payload copies per token", h, n1, "copies",
                             "medium (router change; re-evaluate quality)", evd);
            free(xs);
        }
    } else if (sh.own == NULL) {
        cJSON_AddStringToObject(map, "exchange_what_if_missing",
                                "placement/expert_owner absent and no experts to assume a placement for");
    } else {
        cJSON_AddStringToObject(map, "exchange_what_if_missing",
                                "no sampled route with a valid expert");
    }
out:
    free(lranks);
    free(aown);
    free(anode);
    free(sh.node_share);
    free(nlw.prob);
    free(nlw.scratch);
    free(nlw.group_of);
    free(nlw.sel);
    free(nlw.score);
    free(nlw.weight);
    free(ex);
    free(wt);
    free(tok);
    free(tid);
    free(keys);
    return st;
}
