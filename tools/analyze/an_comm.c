/*
 * tools/analyze/an_comm.c — the analyses of where work and traffic land (docs/analysis.md):
 * communication (exchange share, traffic matrix, inter-node bytes), compute (FLOPs
 * utilisation per rank), hotspots with the placement what-if, and the placement plan
 * (tools/place).
 *
 * What always holds:
 *  1. Placement what-ifs replay the recorded loads under the changed placement; every
 *     recommendation carries that number and its evidence.
 *  2. Data that is absent (placement, phases, traffic, hosts) makes its section "missing".
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

/* Reads expert_owner [E] and node [P]; returns 0 if both exist. */
int an_owner_node(moe_tel_reader_t *r, int64_t E, int64_t P, int32_t **own_p,
                  int32_t **node_p)
{
    int32_t *own = malloc((size_t)E * 4), *node = malloc((size_t)P * 4);
    int64_t  i;

    *own_p = *node_p = NULL;
    if (!own || !node || !moe_tel_reader_has(r, MOE_TEL_EXPERT_OWNER) ||
        moe_tel_reader_read(r, MOE_TEL_EXPERT_OWNER, MOE_TEL_I32, 0, E, own) != MOE_OK) {
        free(own);
        free(node);
        return -1;
    }
    for (i = 0; i < E; i++)
        if (own[i] < 0 || own[i] >= P)
            own[i] = 0;
    if (!moe_tel_reader_has(r, MOE_TEL_NODE) ||
        moe_tel_reader_read(r, MOE_TEL_NODE, MOE_TEL_I32, 0, P, node) != MOE_OK) {
        for (i = 0; i < P; i++)
            node[i] = 0;
    }
    *own_p = own;
    *node_p = node;
    return 0;
}

/*
 * Rank loads under the file's placement: each layer's map and replicas
 * (placement/expert_ranks [L][E][R], schema 2) with the runtime's replica rule
 * (docs/placement.md) for tokens spread evenly over the ranks, i.e. in expectation: the
 * tokens of node n (its share of the ranks) go in equal parts to the replicas of the expert
 * on n if it has any, else to all its replicas. Without per-layer maps (or for a damaged
 * row) all of an expert's load goes to expert_owner.
 */
typedef struct an_rankmap {
    int32_t       *lr;    /* [L][E][R], or NULL */
    int64_t        L, E, R, P, nn;
    const int32_t *own, *node;
    int64_t       *nid;   /* [nn] node ids present, ascending */
    double        *nfrac; /* [nn] share of the ranks on each */
    int64_t       *rep;   /* [2 R] scratch: (node, rank) of one expert's replicas */
} an_rankmap_t;

static void an_rankmap_free(an_rankmap_t *m)
{
    free(m->lr);
    free(m->nid);
    free(m->nfrac);
    free(m->rep);
    memset(m, 0, sizeof(*m));
}

/* own and node as an_owner_node returns them (own validated to [0, P)). */
static void an_rankmap_load(moe_tel_reader_t *r, const an_st_t *a, const int32_t *own,
                            const int32_t *node, an_rankmap_t *m)
{
    int64_t dims[4], p, i;
    int     nd = 0;

    memset(m, 0, sizeof(*m));
    m->own = own;
    m->node = node;
    m->L = a->L;
    m->E = a->E;
    m->P = a->P;
    if (!moe_tel_reader_has(r, MOE_TEL_EXPERT_RANKS) ||
        moe_tel_reader_dims(r, MOE_TEL_EXPERT_RANKS, dims, &nd) != MOE_OK || nd != 3 ||
        dims[0] != a->L || dims[1] != a->E || dims[2] < 1 || dims[2] > a->P)
        return;
    m->R = dims[2];
    m->lr = malloc((size_t)(a->L * a->E * m->R) * sizeof(int32_t));
    m->nid = malloc((size_t)a->P * sizeof(int64_t));
    m->nfrac = calloc((size_t)a->P, sizeof(double));
    m->rep = malloc((size_t)(2 * m->R) * sizeof(int64_t));
    if (!m->lr || !m->nid || !m->nfrac || !m->rep ||
        moe_tel_reader_read(r, MOE_TEL_EXPERT_RANKS, MOE_TEL_I32, 0, a->L, m->lr) != MOE_OK) {
        an_rankmap_free(m);
        m->own = own, m->node = node, m->L = a->L, m->E = a->E, m->P = a->P;
        return;
    }
    for (p = 0; p < a->P; p++) /* distinct node ids, and each one's share of the ranks */
        m->nid[p] = node[p];
    qsort(m->nid, (size_t)a->P, sizeof(int64_t), an_cmp_i64);
    for (p = 0, i = -1; p < a->P; p++) {
        if (i < 0 || m->nid[i] != m->nid[p])
            m->nid[++i] = m->nid[p];
        m->nfrac[i] += 1.0 / (double)a->P;
    }
    m->nn = i + 1;
}

/* Share of the ranks on node id n (0 if no rank is). */
static double an_node_frac(const an_rankmap_t *m, int64_t n)
{
    int64_t lo = 0, hi = m->nn;

    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->nid[mid] < n)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->nn && m->nid[lo] == n ? m->nfrac[lo] : 0;
}

static int an_cmp_pair(const void *x, const void *y)
{
    const int64_t *a = x, *b = y;
    return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1];
}

/* Adds load w of expert e at layer l to the ranks that take it (rl[P]). */
static void an_rank_add(const an_rankmap_t *m, int64_t l, int64_t e, double w, double *rl)
{
    int64_t i, j, nrep = 0;
    double  none = 1; /* share of the ranks on nodes without a replica */

    for (i = 0; m->lr != NULL && i < m->R; i++) {
        int32_t c = m->lr[(l * m->E + e) * m->R + i];
        if (c >= 0 && c < m->P) {
            m->rep[2 * nrep] = m->node[c];
            m->rep[2 * nrep + 1] = c;
            nrep++;
        }
    }
    if (nrep == 0) {
        rl[m->own[e]] += w;
        return;
    }
    qsort(m->rep, (size_t)nrep, 2 * sizeof(int64_t), an_cmp_pair);
    for (i = 0; i < nrep; i = j) { /* a node's tokens to its own replicas */
        double f = an_node_frac(m, m->rep[2 * i]);
        for (j = i; j < nrep && m->rep[2 * j] == m->rep[2 * i]; j++)
            ;
        for (int64_t q = i; q < j; q++)
            rl[m->rep[2 * q + 1]] += w * f / (double)(j - i);
        none -= f;
    }
    for (i = 0; none > 1e-12 && i < nrep; i++) /* the other nodes' tokens to all of them */
        rl[m->rep[2 * i + 1]] += w * none / (double)nrep;
}

/* Copies of experts rank p holds, summed over layers (into held[P]). */
static void an_rank_held(const an_rankmap_t *m, double *held)
{
    int64_t l, e, i;

    for (l = 0; l < m->L; l++)
        for (e = 0; e < m->E; e++) {
            const int32_t *c = m->lr ? m->lr + (l * m->E + e) * m->R : NULL;
            int64_t        n = 0;
            for (i = 0; c && i < m->R; i++)
                if (c[i] >= 0 && c[i] < m->P) {
                    held[c[i]] += 1;
                    n++;
                }
            if (n == 0)
                held[m->own[e]] += 1;
        }
}

void an_communication(moe_tel_reader_t *r, cJSON *an, cJSON *root, cJSON *fnd,
                      const an_st_t *a, const int32_t *node)
{
    cJSON  *sec, *ph, *pr, *by, *mx;
    int     i, total = -1, xch[3], nx = 0, ex = -1;
    int64_t p, P = a->P;
    double  tot = 0, xs = 0, es = 0;
    char    miss[200] = "";

    if (!a->has_phase && !a->has_traffic && !moe_tel_reader_has(r, MOE_TEL_TRAFFIC_MATRIX)) {
        an_section(an, "communication", "steps/phase_time, steps/traffic and "
                                        "accumulated/traffic_matrix absent");
        return;
    }
    sec = an_section(an, "communication", NULL);
    /* phases */
    ph = cJSON_AddObjectToObject(root, "phase_seconds");
    if (a->has_phase && a->S > 0) {
        total = moe_tel_reader_column(r, MOE_TEL_PHASE, "total");
        ex = moe_tel_reader_column(r, MOE_TEL_PHASE, "expert");
        xch[0] = moe_tel_reader_column(r, MOE_TEL_PHASE, "dispatch");
        xch[1] = moe_tel_reader_column(r, MOE_TEL_PHASE, "combine");
        xch[2] = moe_tel_reader_column(r, MOE_TEL_PHASE, "counts");
        for (p = 0; p < P; p++) {
            if (total >= 0)
                tot += a->phase_rank[p * a->nph + total] / (double)P;
            for (i = 0; i < 3; i++)
                if (xch[i] >= 0)
                    xs += a->phase_rank[p * a->nph + xch[i]] / (double)P;
            if (ex >= 0)
                es += a->phase_rank[p * a->nph + ex] / (double)P;
        }
        nx = (xch[0] >= 0) + (xch[1] >= 0) + (xch[2] >= 0);
        for (i = 0; i < a->nph; i++) {
            double mean = 0;
            char **cols = NULL;
            int    nc = 0;
            cJSON *x;
            if (moe_tel_reader_attr_strlist(r, MOE_TEL_PHASE, "columns", &cols, &nc) != MOE_OK || i >= nc) {
                moe_tel_reader_strlist_free(cols, nc);
                break;
            }
            x = cJSON_AddObjectToObject(ph, cols[i]);
            for (p = 0; p < P; p++)
                mean += a->phase_rank[p * a->nph + i] / (double)P;
            cJSON_AddNumberToObject(x, "mean_over_ranks_s", mean);
            an_add_num(x, "share_of_total", tot > 0 ? mean / tot : NAN);
            /* a column "<phase>_<part>" (dispatch_inter, combine_inter) is part of the time
             * of column "<phase>": a sub-phase, shown inside it, never added to the others */
            {
                int    j;
                size_t n;
                for (j = 0; j < nc; j++) {
                    n = strlen(cols[j]);
                    if (j != i && strncmp(cols[i], cols[j], n) == 0 && cols[i][n] == '_') {
                        double pm = 0;
                        for (p = 0; p < P; p++)
                            pm += a->phase_rank[p * a->nph + j] / (double)P;
                        cJSON_AddStringToObject(x, "parent", cols[j]);
                        an_add_num(x, "share_of_parent", pm > 0 ? mean / pm : NAN);
                        break;
                    }
                }
            }
            moe_tel_reader_strlist_free(cols, nc);
        }
        pr = cJSON_AddArrayToObject(sec, "phase_per_rank");
        for (p = 0; p < P && p < 1024; p++)
            cJSON_AddItemToArray(pr, an_num_array(a->phase_rank + p * a->nph, a->nph));
        {
            char **cols = NULL;
            int    nc = 0;
            if (moe_tel_reader_attr_strlist(r, MOE_TEL_PHASE, "columns", &cols, &nc) == MOE_OK) {
                cJSON *cn = cJSON_AddArrayToObject(sec, "phase_columns");
                for (i = 0; i < nc; i++)
                    cJSON_AddItemToArray(cn, cJSON_CreateString(cols[i]));
                moe_tel_reader_strlist_free(cols, nc);
            }
        }
        an_add_num(sec, "exchange_share", nx > 0 && tot > 0 ? xs / tot : NAN);
        an_add_num(sec, "expert_share", ex >= 0 && tot > 0 ? es / tot : NAN);
        an_add_num(sec, "step_seconds_mean_over_ranks", tot);
        if (nx > 0 && tot > 0) {
            double sh = xs / tot;
            an_finding(fnd, "exchange_share",
                       sh >= AN_EXCH_CRIT ? "critical" : sh >= AN_EXCH_WARN ? "warning" : "info",
                       "communication", sh, AN_EXCH_WARN,
                       "token exchange (counts + dispatch + combine) takes %.1f%% of step time, "
                       "expert compute %.1f%%", 100 * sh, ex >= 0 ? 100 * es / tot : NAN);
        }
    } else {
        snprintf(miss, sizeof(miss), "phase times: %s", a->has_phase ? "no steps" : "steps/phase_time absent");
        cJSON_AddStringToObject(sec, "phases_missing", miss);
    }
    /* bytes: steps/traffic columns by name */
    by = cJSON_AddObjectToObject(sec, "bytes");
    {
        static const char *names[] = {"bytes_sent", "bytes_recv", "msgs_sent", "msgs_recv",
                                      "bytes_intra", "bytes_inter", "msgs_intra", "msgs_inter"};
        cJSON             *miss_arr = cJSON_AddArrayToObject(by, "missing");
        size_t             k;
        double             bsent = 0;
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            int col = a->has_traffic ? moe_tel_reader_column(r, MOE_TEL_TRAFFIC, names[k]) : -1;
            if (col < 0) {
                cJSON_AddItemToArray(miss_arr, cJSON_CreateString(names[k]));
                continue;
            }
            {
                double s = 0;
                for (p = 0; p < P; p++)
                    s += (double)a->traffic_rank[p * a->ntc + col];
                cJSON_AddNumberToObject(by, names[k], s);
                if (k == 0)
                    bsent = s;
            }
        }
        cJSON_AddNumberToObject(root, "bytes_sent", bsent);
        {
            int ci = moe_tel_reader_column(r, MOE_TEL_TRAFFIC, "bytes_intra");
            int cx = moe_tel_reader_column(r, MOE_TEL_TRAFFIC, "bytes_inter");
            if (ci >= 0 && cx >= 0) {
                double bi = an_num(by, "bytes_intra"), bx = an_num(by, "bytes_inter");
                an_add_num(by, "inter_share", bi + bx > 0 ? bx / (bi + bx) : NAN);
            }
        }
    }
    /* rank x rank matrix: intra/inter node and hotspots */
    mx = cJSON_AddObjectToObject(sec, "matrix");
    if (moe_tel_reader_has(r, MOE_TEL_TRAFFIC_MATRIX)) {
        int64_t *m = malloc((size_t)(P * P) * 8), q;
        if (m && moe_tel_reader_read(r, MOE_TEL_TRAFFIC_MATRIX, MOE_TEL_I64, 0, P, m) == MOE_OK) {
            double intra = 0, inter = 0, off = 0, mean;
            cJSON *hs = NULL, *lm;
            for (p = 0; p < P; p++)
                for (q = 0; q < P; q++) {
                    if (p == q)
                        continue;
                    off += (double)m[p * P + q];
                    if (node && node[p] == node[q])
                        intra += (double)m[p * P + q];
                    else
                        inter += (double)m[p * P + q];
                }
            cJSON_AddNumberToObject(mx, "offdiag_bytes", off);
            cJSON_AddNumberToObject(mx, "intra_node_bytes", intra);
            cJSON_AddNumberToObject(mx, "inter_node_bytes", inter);
            mean = P > 1 ? off / (double)(P * (P - 1)) : NAN;
            an_add_num(mx, "mean_pair_bytes", mean);
            hs = cJSON_AddArrayToObject(mx, "hotspots");
            /* the 5 largest off-diagonal pairs, with their ratio to the mean pair */
            {
                int64_t top[5][2];
                int     nt = 0, k, z;
                for (p = 0; p < P; p++)
                    for (q = 0; q < P; q++) {
                        if (p == q)
                            continue;
                        for (k = 0; k < nt && m[top[k][0] * P + top[k][1]] >= m[p * P + q]; k++)
                            ;
                        if (k >= 5)
                            continue;
                        for (z = (nt < 5 ? nt : 4); z > k; z--) {
                            top[z][0] = top[z - 1][0];
                            top[z][1] = top[z - 1][1];
                        }
                        top[k][0] = p;
                        top[k][1] = q;
                        if (nt < 5)
                            nt++;
                    }
                for (k = 0; k < nt; k++) {
                    cJSON *o = cJSON_CreateObject();
                    double v = (double)m[top[k][0] * P + top[k][1]];
                    cJSON_AddNumberToObject(o, "src", (double)top[k][0]);
                    cJSON_AddNumberToObject(o, "dst", (double)top[k][1]);
                    cJSON_AddNumberToObject(o, "bytes", v);
                    an_add_num(o, "ratio_to_mean", mean > 0 ? v / mean : NAN);
                    cJSON_AddItemToArray(hs, o);
                }
            }
            if (P <= AN_MATRIX_MAX_RANKS) {
                lm = cJSON_AddArrayToObject(root, "traffic_matrix_bytes");
                for (p = 0; p < P; p++)
                    cJSON_AddItemToArray(lm, an_i64_array(m + p * P, P));
            }
        } else {
            cJSON_AddStringToObject(mx, "missing", "accumulated/traffic_matrix unreadable");
        }
        free(m);
    } else {
        cJSON_AddStringToObject(mx, "missing", "accumulated/traffic_matrix absent");
    }
}

void an_compute(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, const an_st_t *a,
                const an_opts_t *opt, const int32_t *own, const int32_t *node)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    cJSON                *sec, *mem;
    char                 *act = NULL;
    double                mats, fpp, peak = opt->peak_gflops, flops, tmax = 0, tsum = 0, ach;
    const char           *peak_src = "--peak-gflops";
    int                   ex = moe_tel_reader_column(r, MOE_TEL_PHASE, "expert");
    int64_t               p, e, l;

    if (in->d_model < 1 || in->d_ffn < 1) {
        an_section(an, "compute", "d_model / d_ffn attributes absent");
        return;
    }
    if (!a->has_dropped) {
        an_section(an, "compute", "steps/dropped absent (processed pairs unknown)");
        return;
    }
    sec = an_section(an, "compute", NULL);
    mats = 2;
    if (moe_tel_reader_attr_str(r, "/", "activation", &act) == MOE_OK && strcmp(act, "swiglu") == 0)
        mats = 3;
    free(act);
    fpp = 2.0 * (double)in->d_model * (double)in->d_ffn * mats;
    flops = fpp * (double)a->processed;
    cJSON_AddNumberToObject(sec, "flops_per_pair", fpp);
    cJSON_AddNumberToObject(sec, "expert_flops", flops);
    if (!(peak > 0)) {
        if (moe_tel_reader_attr_f64(r, "/", "peak_gflops", &peak) == MOE_OK && peak > 0)
            peak_src = "file attribute peak_gflops";
        else
            peak = NAN;
    }
    if (a->has_phase && ex >= 0 && a->S > 0) {
        double *pf = calloc((size_t)a->P, 8);
        for (p = 0; p < a->P; p++) {
            tsum += a->phase_rank[p * a->nph + ex];
            tmax = fmax(tmax, a->phase_rank[p * a->nph + ex]);
        }
        /* per-rank FLOPs: each layer's map and replicas (an_rank_add), else the owners */
        if (pf && own && node) {
            cJSON       *arr = cJSON_AddArrayToObject(sec, "gflops_per_rank");
            an_rankmap_t m;
            an_rankmap_load(r, a, own, node, &m);
            for (l = 0; l < a->L; l++)
                for (e = 0; e < a->E; e++)
                    an_rank_add(&m, l, e, fpp * (double)a->processed_le[l * a->E + e], pf);
            for (p = 0; p < a->P; p++) {
                double t = a->phase_rank[p * a->nph + ex];
                cJSON_AddItemToArray(arr, t > 0 ? cJSON_CreateNumber(pf[p] / t / 1e9) : cJSON_CreateNull());
            }
            cJSON_AddStringToObject(sec, "gflops_per_rank_placement",
                                    m.lr ? "each layer's map and replicas (placement/expert_ranks), "
                                           "tokens spread evenly over the ranks"
                                         : "placement/expert_owner");
            an_rankmap_free(&m);
        }
        free(pf);
        ach = tsum > 0 ? flops / tsum / 1e9 : NAN;
        an_add_num(sec, "expert_seconds_sum_over_ranks", tsum);
        an_add_num(sec, "achieved_gflops_per_rank", ach);
        an_add_num(sec, "peak_gflops_per_rank", peak);
        if (isfinite(peak)) {
            cJSON_AddStringToObject(sec, "peak_source", peak_src);
            an_add_num(sec, "flops_utilisation", ach / peak);
            an_finding(fnd, "flops", ach / peak < AN_FLOPS_WARN ? "warning" : "info", "compute",
                       ach / peak, AN_FLOPS_WARN,
                       "expert phase reaches %.4g GFLOP/s per rank, %.3g%% of the %.4g GFLOP/s peak",
                       ach, 100 * ach / peak, peak);
        } else {
            cJSON_AddStringToObject(sec, "utilisation_missing",
                                    "missing: no peak (file attribute peak_gflops or --peak-gflops)");
        }
    } else {
        cJSON_AddStringToObject(sec, "utilisation_missing",
                                "missing: steps/phase_time or its expert column absent");
    }
    mem = cJSON_AddObjectToObject(sec, "memory_per_expert");
    cJSON_AddNumberToObject(mem, "weight_bytes", mats * (double)in->d_model * (double)in->d_ffn * 4);
    cJSON_AddStringToObject(mem, "weight_dtype", "float32");
    if (a->fill_cap > 0) {
        double capmean = a->fill_cap / (double)a->E / (double)a->cap_rows;
        an_add_num(mem, "capacity_pairs_mean", capmean);
        an_add_num(mem, "activation_bytes_at_capacity",
                   capmean * (2.0 * (double)in->d_model + (mats - 1) * (double)in->d_ffn) * 4);
        an_add_num(mem, "capacity_fill", a->fill_proc / a->fill_cap);
    } else {
        cJSON_AddStringToObject(mem, "capacity_missing", "dropless run or steps/capacity absent");
    }
}

/*
 * Placement what-ifs on the per-expert loads w[E] (all layers, all steps) over P ranks with
 * the placement own[E] (assumed = 1: not the file's, contiguous blocks over --ranks):
 *  - rebalance: greedy largest-first (LPT) with at most ceil(E/P) experts per rank;
 *  - replicate the hottest expert: a second copy on the least-loaded other rank, its load
 *    split half and half (the split an even router between two copies gives).
 * Both report the max rank load before and after; a recommendation when it drops >= 5 %.
 * (A simple documented greedy, to be replaced by the placement planner's.)
 */
static void an_place_whatif(cJSON *sec, cJSON *rec, const double *w, int64_t E,
                            const int32_t *own, int64_t P, int assumed, int64_t L)
{
    int     per = (int)((E + P - 1) / P), *o32 = malloc((size_t)E * sizeof(int));
    int    *newown = malloc((size_t)E * sizeof(int));
    double *rl = calloc((size_t)P, sizeof(double)), cur, nw, rep, tot = 0, mean;
    int64_t e, p, hot = 0, q = -1;
    char    evd[400], shape[160], t[160];

    if (!o32 || !newown || !rl)
        goto out;
    for (e = 0; e < E; e++) {
        o32[e] = own[e];
        rl[own[e]] += w[e];
        tot += w[e];
        if (w[e] > w[hot])
            hot = e;
    }
    mean = tot / (double)P;
    snprintf(shape, sizeof(shape), "%s%lld ranks%s", assumed ? "an assumed placement: " : "",
             (long long)P, assumed ? " with contiguous expert blocks (--ranks; the log has no placement)" : "");
    cur = am_bin_max(w, (size_t)E, o32, (int)P);
    nw = am_rebalance_lpt(w, (size_t)E, (int)P, per, newown);
    if (assumed) {
        cJSON_AddNumberToObject(sec, "assumed_ranks", (double)P);
        cJSON_AddStringToObject(sec, "assumed_placement", "contiguous");
    }
    cJSON_AddNumberToObject(sec, "rebalance_max_rank_load_current", cur);
    cJSON_AddNumberToObject(sec, "rebalance_max_rank_load_projected", nw);
    if (isfinite(cur) && isfinite(nw) && nw < 0.95 * cur) {
        snprintf(evd, sizeof(evd),
                 "replay of recorded per-expert loads (all steps, %lld layers) over %s, at most "
                 "%d experts per rank (greedy largest-first): max/mean rank load %.2f -> %.2f",
                 (long long)L, shape, per, cur / mean, nw / mean);
        an_recommend(rec, "placement", "rebalance expert placement by measured load",
                     "max rank load (pairs)", cur, nw, "pairs", "low (placement file)", evd);
    }
    /* replication of the hottest expert */
    for (p = 0; p < P; p++)
        if (p != own[hot] && (q < 0 || rl[p] < rl[q]))
            q = p;
    if (q >= 0) {
        rl[own[hot]] -= w[hot] / 2;
        rl[q] += w[hot] / 2;
        for (p = 0, rep = 0; p < P; p++)
            rep = fmax(rep, rl[p]);
        cJSON_AddNumberToObject(sec, "replicate_expert", (double)hot);
        cJSON_AddNumberToObject(sec, "replicate_to_rank", (double)q);
        cJSON_AddNumberToObject(sec, "replicate_max_rank_load_projected", rep);
        if (rep < 0.95 * cur) {
            snprintf(evd, sizeof(evd),
                     "replay of recorded per-expert loads over %s: expert %lld carries %.1f%% of "
                     "all pairs; a second copy on rank %lld taking half its tokens gives max/mean "
                     "rank load %.2f -> %.2f", shape, (long long)hot, 100 * w[hot] / tot,
                     (long long)q, cur / mean, rep / mean);
            snprintf(t, sizeof(t), "replicate hot expert %lld on a second rank", (long long)hot);
            an_recommend(rec, "replicate_hot_expert", t, "max rank load (pairs)", cur, rep,
                         "pairs", "medium (needs expert replication, EPLB-style)", evd);
        }
    }
out:
    free(o32);
    free(newown);
    free(rl);
}

void an_hotspots(moe_tel_reader_t *r, cJSON *an, cJSON *fnd, cJSON *rec,
                 const an_st_t *a, const int32_t *own, const int32_t *node,
                 const an_opts_t *opt)
{
    const moe_tel_info_t *in = moe_tel_reader_info(r);
    cJSON                *sec, *ex, *rk, *nd, *cs;
    int64_t               l, e, p, E = a->E, P = a->P, L = a->L;
    double               *w, *rl, *held, tot = 0, worst = 0, held_tot = 0;
    int                  *newown;
    int64_t               worst_r = 0;
    an_rankmap_t          rmap;

    if (a->S == 0 || a->routed == 0) {
        an_section(an, "hotspots", a->S == 0 ? "no steps in the file (empty run)"
                                             : "no (token, expert) pairs were routed");
        return;
    }
    sec = an_section(an, "hotspots", NULL);
    w = calloc((size_t)E, 8);
    rl = calloc((size_t)P, 8);
    held = calloc((size_t)P, sizeof(double));
    newown = calloc((size_t)E, sizeof(int));
    memset(&rmap, 0, sizeof(rmap));
    if (!w || !rl || !held || !newown)
        goto out;
    for (l = 0; l < L; l++)
        for (e = 0; e < E; e++)
            w[e] += (double)a->routed_le[l * E + e];
    for (e = 0; e < E; e++)
        tot += w[e];
    ex = cJSON_AddArrayToObject(sec, "experts");
    {
        /* experts over 1.5x their fair share (all layers), largest first, at most 10 */
        double (*lst)[2] = malloc((size_t)E * sizeof(*lst));
        int64_t n = 0, i;
        for (e = 0; lst && e < E; e++)
            if (w[e] * (double)E / tot > 1.5) {
                lst[n][0] = w[e] * (double)E / tot;
                lst[n][1] = (double)e;
                n++;
            }
        if (lst)
            qsort(lst, (size_t)n, sizeof(*lst), an_cmp_desc_share);
        for (i = 0; i < n && i < 10; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "expert", lst[i][1]);
            cJSON_AddNumberToObject(o, "share_over_fair", lst[i][0]);
            cJSON_AddItemToArray(ex, o);
        }
        free(lst);
    }
    if (own == NULL) {
        /* no placement in the file (an imported log): the what-if on an assumed one */
        int64_t Pa = opt->ranks > 0 ? opt->ranks : (E < AN_ASSUMED_RANKS ? E : AN_ASSUMED_RANKS);
        int32_t *ao = malloc((size_t)E * sizeof(int32_t));
        cJSON_AddStringToObject(sec, "ranks_missing", "placement/expert_owner absent");
        if (ao != NULL && Pa > 1) {
            for (e = 0; e < E; e++)
                ao[e] = (int32_t)(e * Pa / E); /* contiguous blocks */
            an_place_whatif(sec, rec, w, E, ao, Pa, 1, L);
        }
        free(ao);
        goto coselect;
    }
    /* rank loads under each layer's map and replicas (an_rank_add); fair share = the
     * rank's share of all expert copies */
    an_rankmap_load(r, a, own, node, &rmap);
    for (l = 0; l < L; l++)
        for (e = 0; e < E; e++)
            an_rank_add(&rmap, l, e, (double)a->routed_le[l * E + e], rl);
    an_rank_held(&rmap, held);
    for (p = 0; p < P; p++)
        held_tot += held[p];
    cJSON_AddStringToObject(sec, "ranks_placement",
                            rmap.lr ? "each layer's map and replicas (placement/expert_ranks), "
                                   "tokens spread evenly over the ranks"
                                 : "placement/expert_owner");
    rk = cJSON_AddArrayToObject(sec, "ranks");
    for (p = 0; p < P; p++) {
        cJSON *o = cJSON_CreateObject();
        double fair = held_tot > 0 ? held[p] / held_tot : 0, sh = rl[p] / tot;
        cJSON_AddNumberToObject(o, "rank", (double)p);
        cJSON_AddNumberToObject(o, "experts", held[p] / (double)(L > 0 ? L : 1));
        cJSON_AddNumberToObject(o, "share", sh);
        an_add_num(o, "share_over_fair", fair > 0 ? sh / fair : NAN);
        an_add_num(o, "load_over_mean", rl[p] * (double)P / tot);
        if (rl[p] * (double)P / tot > worst) {
            worst = rl[p] * (double)P / tot;
            worst_r = p;
        }
        cJSON_AddItemToArray(rk, o);
    }
    if (worst >= AN_RANK_WARN)
        an_finding(fnd, "rank_hotspot", "warning", "hotspots", worst, AN_RANK_WARN,
                   "rank %lld carries %.2fx the mean rank load (experts it owns)",
                   (long long)worst_r, worst);
    if (node) {
        int64_t nn = in->nnodes, q;
        double *nl = calloc((size_t)nn, 8);
        nd = cJSON_AddArrayToObject(sec, "nodes");
        for (p = 0; nl && p < P; p++)
            if (node[p] >= 0 && node[p] < nn)
                nl[node[p]] += rl[p];
        for (q = 0; nl && q < nn; q++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "node", (double)q);
            cJSON_AddNumberToObject(o, "load_over_mean", nl[q] * (double)nn / tot);
            cJSON_AddItemToArray(nd, o);
        }
        free(nl);
    }
    if (P > 1) /* an_placement_plan then replaces the LPT "placement" recommendation */
        an_place_whatif(sec, rec, w, E, own, P, 0, L);
coselect:
    cs = cJSON_AddArrayToObject(sec, "coselect");
    if (moe_tel_reader_has(r, MOE_TEL_COSELECT) && a->K >= 2) {
        int64_t *m = malloc((size_t)(E * E) * 8), i, j;
        double  *ndiag = malloc((size_t)E * sizeof(double)), *ex2 = malloc((size_t)(E * E) * sizeof(double));
        for (l = 0; m && ndiag && ex2 && l < L; l++) {
            double ntok = 0;
            int    cps;
            cJSON *lo, *pairs;
            int64_t top[5][2];
            double  tl[5];
            int     nt = 0, k, z;
            if (moe_tel_reader_read(r, MOE_TEL_COSELECT, MOE_TEL_I64, l, 1, m) != MOE_OK)
                break;
            for (i = 0; i < E; i++)
                ntok += (double)m[i * E + i];
            ntok /= (double)a->K;
            if (ntok <= 0)
                continue;
            /* chance: the conditional-Poisson null with these marginals (am_coselect_null,
             * exact for unequal loads); the first-order approximation only when no such
             * design exists (tokens with fewer than k experts) */
            for (i = 0; i < E; i++)
                ndiag[i] = (double)m[i * E + i];
            cps = am_coselect_null(ndiag, E, ntok, a->K, ex2) == 0;
            for (i = 0; !cps && i < E; i++)
                for (j = 0; j < E; j++)
                    ex2[i * E + j] = i == j ? ndiag[i] : am_coselect_expected(ndiag[i], ndiag[j], ntok, a->K);
            lo = cJSON_CreateObject();
            cJSON_AddNumberToObject(lo, "layer", (double)a->lid[l]);
            cJSON_AddStringToObject(lo, "null", cps ? "conditional_poisson" : "first_order");
            pairs = cJSON_AddArrayToObject(lo, "pairs");
            /* lift = tokens that chose both i and j / the count expected by chance for k
             * distinct experts (1 = chance); pairs with at least 0.1% of tokens */
            for (i = 0; i < E; i++)
                for (j = i + 1; j < E; j++) {
                    double c = (double)m[i * E + j], lift;
                    if (c < fmax(1.0, 0.001 * ntok) || m[i * E + i] == 0 || m[j * E + j] == 0)
                        continue;
                    if (!(ex2[i * E + j] > 0))
                        continue;
                    lift = c / ex2[i * E + j];
                    for (k = 0; k < nt && tl[k] >= lift; k++)
                        ;
                    if (k >= 5)
                        continue;
                    for (z = (nt < 5 ? nt : 4); z > k; z--) {
                        tl[z] = tl[z - 1];
                        top[z][0] = top[z - 1][0];
                        top[z][1] = top[z - 1][1];
                    }
                    tl[k] = lift;
                    top[k][0] = i;
                    top[k][1] = j;
                    if (nt < 5)
                        nt++;
                }
            for (k = 0; k < nt; k++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "a", (double)top[k][0]);
                cJSON_AddNumberToObject(o, "b", (double)top[k][1]);
                cJSON_AddNumberToObject(o, "tokens", (double)m[top[k][0] * E + top[k][1]]);
                cJSON_AddNumberToObject(o, "expected", ex2[top[k][0] * E + top[k][1]]);
                cJSON_AddNumberToObject(o, "lift", tl[k]);
                cJSON_AddItemToArray(pairs, o);
            }
            cJSON_AddItemToArray(cs, lo);
        }
        free(m);
        free(ndiag);
        free(ex2);
    } else {
        cJSON_AddStringToObject(sec, "coselect_missing",
                                !moe_tel_reader_has(r, MOE_TEL_COSELECT) ? "accumulated/coselect absent"
                                                                         : "top_k 1: no co-selection");
    }
out:
    free(w);
    free(rl);
    free(held);
    an_rankmap_free(&rmap);
    free(newown);
}

int an_cmp_i64(const void *x, const void *y)
{
    int64_t p = *(const int64_t *)x, q = *(const int64_t *)y;
    return (p > q) - (p < q);
}

/* Sampled routes: routing map, specialisation, top-k and node what-ifs. */
/*
 * Placement recommendation: the planner of moerun-place (tools/place, policy moerun, its
 * default target: this run's nodes and ranks, one extra copy per rank), predicted before
 * (this run's map) and after from the recorded loads and routes. The recommendation names
 * the file and the commands that act on it; with --write-placement the file is written.
 */
void an_placement_plan(const char *path, cJSON *an, cJSON *rec, const an_opts_t *opt)
{
    cJSON             *sec = cJSON_GetObjectItem(an, "hotspots"), *pp, *o;
    moe_place_input_t  in;
    moe_place_target_t tg;
    moe_placement_t    plan;
    moe_place_pred_t  *before = NULL, *after = NULL;
    moe_place_total_t  tb, ta;
    char               err[512] = "", evd[600], comment[600];
    const char        *file = opt->write_placement ? opt->write_placement : "placement.txt";
    const char *const  paths[1] = {path};

    if (sec == NULL)
        return;
    pp = cJSON_AddObjectToObject(sec, "placement_plan");
    if (moe_place_input_read(&in, paths, 1, err, sizeof(err)) != MOE_OK) {
        cJSON_AddStringToObject(pp, "missing", err[0] ? err : "cannot read the planner's input");
        return;
    }
    moe_place_target_default(&in, 0, 0, 0, -1, &tg);
    if (in.current == NULL || in.nranks < 2 ||
        moe_place_plan(&in, &tg, MOE_PLAN_MOERUN, &plan, err, sizeof(err)) != MOE_OK) {
        cJSON_AddStringToObject(pp, "missing", in.current == NULL ? "placement/expert_owner absent"
                                               : in.nranks < 2 ? "one rank: nothing to place"
                                                               : err);
        moe_place_input_cleanup(&in);
        return;
    }
    if (moe_place_predict(&in, &plan, &after) != MOE_OK ||
        moe_place_predict(&in, in.current, &before) != MOE_OK) {
        cJSON_AddStringToObject(pp, "missing", "out of memory");
        goto out;
    }
    moe_place_total(before, in.layers, &tb);
    moe_place_total(after, in.layers, &ta);
    cJSON_AddStringToObject(pp, "policy", "moerun");
    cJSON_AddNumberToObject(pp, "nodes", tg.nodes);
    cJSON_AddNumberToObject(pp, "ranks_per_node", tg.ranks_per_node);
    cJSON_AddNumberToObject(pp, "slots", tg.slots);
    cJSON_AddStringToObject(pp, "prediction", moe_place_prediction_model(&in));
    o = cJSON_AddObjectToObject(pp, "before");
    an_add_num(o, "max_mean", tb.max_mean);
    an_add_num(o, "flat_inter_bytes_per_step", tb.flat_bytes);
    an_add_num(o, "hier_inter_bytes_per_step", tb.hier_bytes);
    o = cJSON_AddObjectToObject(pp, "after");
    an_add_num(o, "max_mean", ta.max_mean);
    an_add_num(o, "flat_inter_bytes_per_step", ta.flat_bytes);
    an_add_num(o, "hier_inter_bytes_per_step", ta.hier_bytes);
    an_add_num(pp, "weight_bytes_moved", moe_place_moved_bytes(&in, in.current, &plan));
    cJSON_AddStringToObject(pp, "file", file);
    if (opt->write_placement) {
        snprintf(comment, sizeof(comment), "written by moerun-analyze --write-placement from %s",
                 path);
        char werr[1024];
        if (moe_place_write_file(opt->write_placement, &plan, comment, opt->write_flags, werr,
                                 sizeof(werr)) != 0)
            cJSON_AddStringToObject(pp, "write_error", werr);
        else
            cJSON_AddBoolToObject(pp, "written", 1);
    }
    if (ta.max_mean < 0.95 * tb.max_mean || ta.hier_bytes < 0.95 * tb.hier_bytes) {
        snprintf(evd, sizeof(evd),
                 "moerun-place's planner on the recorded loads%s (%d nodes x %d ranks, %d slots): "
                 "max/mean rank load %.2f -> %.2f, inter-node bytes per step flat %.0f -> %.0f, "
                 "hier %.0f -> %.0f; act: moerun-place %s -o %s (or moerun-analyze "
                 "--write-placement %s), then moerun --placement file:%s",
                 in.nroutes > 0 ? " and routes" : "", tg.nodes, tg.ranks_per_node, tg.slots,
                 tb.max_mean, ta.max_mean, tb.flat_bytes, ta.flat_bytes, tb.hier_bytes,
                 ta.hier_bytes, path, file, file, file);
        int i, n = cJSON_GetArraySize(rec);
        for (i = n - 1; i >= 0; i--) { /* one placement recommendation: the planner's */
            cJSON *id = cJSON_GetObjectItem(cJSON_GetArrayItem(rec, i), "id");
            if (cJSON_IsString(id) && strcmp(id->valuestring, "placement") == 0)
                cJSON_DeleteItemFromArray(rec, i);
        }
        an_recommend(rec, "placement", "run the planned expert placement (replicas, co-location)",
                     "max/mean rank load", tb.max_mean, ta.max_mean, "x",
                     "low (placement file)", evd);
    }
out:
    moe_place_pred_free(before, in.layers);
    moe_place_pred_free(after, in.layers);
    moe_placement_cleanup(&plan);
    moe_place_input_cleanup(&in);
}
