/*
 * tools/place/place.c — planning policies and predictions (see place.h).
 *
 * Always: every plan gives every expert at least one copy per layer, copies of one expert on
 * distinct ranks, at most `slots` experts per rank and layer — the result goes through
 * moe_placement_from_lists, which checks exactly that. Predictions use the runtime's own
 * replica rule (moe_placement_route), so planner and runtime cannot disagree about which copy
 * serves a pair.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moerun/base/fileio.h"
#include "moerun/base/log.h"
#include "place.h"

static const char *const plan_names[] = {"eplb", "moerun", "contiguous", "round-robin"};

const char *moe_plan_policy_name(moe_plan_policy_t p)
{
    return (unsigned)p < 4 ? plan_names[p] : "unknown";
}

int moe_plan_policy_parse(const char *name, moe_plan_policy_t *p)
{
    int i;

    for (i = 0; i < 4; i++)
        if (strcmp(name, plan_names[i]) == 0) {
            *p = (moe_plan_policy_t)i;
            return 0;
        }
    return -1;
}

/* ---- building blocks ---------------------------------------------------------------------- */

/* Copies per expert: one each, then each extra copy to the highest load per copy (ties: lower
 * index). n experts, total copies `phys` >= n, at most `cap` copies of one expert. */
static void pp_replicate(const double *w, int n, int phys, int cap, int *count)
{
    int i, x, best;

    for (i = 0; i < n; i++)
        count[i] = 1;
    for (x = n; x < phys; x++) {
        best = -1;
        for (i = 0; i < n; i++)
            if (count[i] < cap && (best < 0 || w[i] / count[i] > w[best] / count[best]))
                best = i;
        if (best < 0)
            return;
        count[best]++;
    }
}

typedef struct {
    double w;
    int    id;   /* item id (expert, group) */
} pp_item_t;

static int pp_item_desc(const void *a, const void *b)
{
    const pp_item_t *x = a, *y = b;

    if (x->w != y->w)
        return x->w > y->w ? -1 : 1;
    return x->id - y->id;
}

/*
 * EPLB's balanced packing: items sorted by weight (heaviest first) each go to the lightest
 * pack that still has room (`per_pack` items per pack). With `held` (a packs x n_ids table)
 * a pack already holding an item's id is skipped when another pack has room. pack_of[i]
 * gets the pack of item i (in the caller's order); -1 if nothing had room.
 */
static void pp_pack(const pp_item_t *items, int n, int npacks, const int *room, int *pack_of,
                    unsigned char *held, int n_ids, double *pack_load)
{
    pp_item_t *s = malloc((size_t)n * sizeof(*s) + 1);
    int       *cnt = calloc((size_t)npacks + 1, sizeof(int)), *idx = malloc((size_t)n * sizeof(int) + 1);
    int        i, j, p, best;

    if (!s || !cnt || !idx) {
        for (i = 0; i < n; i++)
            pack_of[i] = -1;
        free(s), free(cnt), free(idx);
        return;
    }
    for (i = 0; i < n; i++) {
        s[i] = items[i];
        s[i].id = i; /* sort positions, ids looked up in items */
        s[i].w = items[i].w;
    }
    qsort(s, (size_t)n, sizeof(*s), pp_item_desc);
    for (i = 0; i < n; i++)
        idx[i] = s[i].id;
    for (j = 0; j < n; j++) {
        int it = idx[j], id = items[it].id;
        best = -1;
        for (int pass = 0; pass < 2 && best < 0; pass++)
            for (p = 0; p < npacks; p++) {
                if (cnt[p] >= room[p])
                    continue;
                if (pass == 0 && held && held[(size_t)p * n_ids + id])
                    continue;
                if (best < 0 || pack_load[p] < pack_load[best])
                    best = p;
            }
        pack_of[it] = best;
        if (best >= 0) {
            cnt[best]++;
            pack_load[best] += items[it].w;
            if (held)
                held[(size_t)best * n_ids + id] = 1;
        }
    }
    free(s);
    free(cnt);
    free(idx);
}

/* Lists of one layer -> nrep/ranks rows (ranks sorted by node then rank: primary first). */
static void pp_sort_ranks(int *ranks, int n, const int *node_of)
{
    int i, j, t;

    for (i = 1; i < n; i++)
        for (j = i; j > 0 && (node_of[ranks[j - 1]] > node_of[ranks[j]] ||
                              (node_of[ranks[j - 1]] == node_of[ranks[j]] &&
                               ranks[j - 1] > ranks[j])); j--) {
            t = ranks[j];
            ranks[j] = ranks[j - 1];
            ranks[j - 1] = t;
        }
}

/* ---- eplb ------------------------------------------------------------------------------- */

/* One layer of EPLB's hierarchical policy. ranks[e * P + i], nrep[e]. */
static int pp_eplb_layer(const double *w, int E, int P, int N, const int *node_of, int slots,
                         int groups, int *nrep, int *ranks)
{
    int        rpn = P / N, G = groups, gs, e, g, m, i, r, *gnode, *cnt, *pack, *room;
    int        global = G < 1 || E % G != 0 || G % N != 0 || P % N != 0;
    pp_item_t *items;
    double    *pl;
    unsigned char *held;
    int        ok = 1;

    if (global) { /* EPLB's global variant: one node holding every rank */
        G = 1;
        N = 1;
        rpn = P;
    }
    gs = E / G;
    gnode = calloc((size_t)G, sizeof(int));
    cnt = calloc((size_t)E, sizeof(int));
    items = calloc((size_t)E * P + G + 1, sizeof(*items));
    pack = calloc((size_t)E * P + G + 1, sizeof(int));
    room = calloc((size_t)P + G + 1, sizeof(int));
    pl = calloc((size_t)P + G + 1, sizeof(double));
    held = calloc((size_t)P * E + 1, 1);
    if (!gnode || !cnt || !items || !pack || !room || !pl || !held) {
        ok = 0;
        goto out;
    }
    /* 1. groups onto nodes, G/N groups each, by group load */
    for (g = 0; g < G; g++) {
        items[g].id = g;
        items[g].w = 0;
        for (e = g * gs; e < (g + 1) * gs; e++)
            items[g].w += w[e];
    }
    for (m = 0; m < N; m++)
        room[m] = G / N;
    pp_pack(items, G, N, room, gnode, NULL, 0, pl);
    for (e = 0; e < E; e++)
        nrep[e] = 0;
    for (m = 0; m < N; m++) {
        /* 2. inside node m: its experts, replicated to rpn * slots copies */
        int    nl = 0, *lg = calloc((size_t)E + 1, sizeof(int)), nphys = 0;
        double *lw = calloc((size_t)E + 1, sizeof(double));
        int    *node_ranks = calloc((size_t)rpn + 1, sizeof(int)), nr = 0;
        if (!lg || !lw || !node_ranks) {
            free(lg), free(lw), free(node_ranks);
            ok = 0;
            goto out;
        }
        for (g = 0; g < G; g++)
            if (gnode[g] == m)
                for (e = g * gs; e < (g + 1) * gs; e++) {
                    lg[nl] = e;
                    lw[nl++] = w[e];
                }
        pp_replicate(lw, nl, rpn * slots, rpn, cnt);
        /* the node's ranks: in the global variant all; else those with node_of == m-th node */
        for (r = 0; r < P; r++)
            if (global || node_of[r] == m)
                node_ranks[nr++] = r;
        /* 3. copies onto the node's ranks, slots each, heaviest first to the lightest */
        for (i = 0; i < nl; i++)
            for (int c = 0; c < cnt[i]; c++) {
                items[nphys].id = lg[i];
                items[nphys++].w = lw[i] / cnt[i];
            }
        for (i = 0; i < nr; i++) {
            room[i] = slots;
            pl[i] = 0;
        }
        memset(held, 0, (size_t)P * E);
        pp_pack(items, nphys, nr, room, pack, held, E, pl);
        for (i = 0; i < nphys; i++) {
            if (pack[i] < 0)
                continue;
            e = items[i].id;
            r = node_ranks[pack[i]];
            ranks[(size_t)e * P + nrep[e]++] = r;
        }
        free(lg), free(lw), free(node_ranks);
    }
out:
    free(gnode), free(cnt), free(items), free(pack), free(room), free(pl), free(held);
    return ok ? 0 : -1;
}

/* ---- moerun ----------------------------------------------------------------------------- */

/* Load of one copy of expert e on node m (uniform origin, the runtime's replica rule). */
static double pp_copy_load(double w, const int *held_n, int E, int N, const int *nranks_of, int P,
                           int e, int m)
{
    double orphan = 0;
    int    tot = 0, n;

    for (n = 0; n < N; n++) {
        tot += held_n[(size_t)n * E + e];
        if (held_n[(size_t)n * E + e] == 0)
            orphan += (double)nranks_of[n] / P;
    }
    if (tot == 0 || held_n[(size_t)m * E + e] == 0)
        return 0;
    return w * ((double)nranks_of[m] / P / held_n[(size_t)m * E + e] + orphan / tot);
}

/*
 * One layer of moerun's policy. w[E] loads, cs[E][E] co-selection (may be NULL).
 */
static int pp_moerun_layer(const double *w, const double *cs, int E, int k, int P, int N,
                           const int *node_of, int slots, double balance, int *nrep, int *ranks)
{
    int       *cnt = calloc((size_t)E, sizeof(int)), *ncap = calloc((size_t)N, sizeof(int));
    int       *nranks_of = calloc((size_t)N, sizeof(int)), *held_n = calloc((size_t)N * E, sizeof(int));
    double    *nload = calloc((size_t)N, sizeof(double)), *rload = calloc((size_t)P, sizeof(double));
    int       *rcnt = calloc((size_t)P, sizeof(int));
    unsigned char *rheld = calloc((size_t)P * E, 1);
    pp_item_t *order = calloc((size_t)E, sizeof(*order));
    double     total = 0, mean_node;
    int        e, m, r, i, c, ok = 1;

    if (!cnt || !ncap || !nranks_of || !held_n || !nload || !rload || !rcnt || !rheld ||
        !order) {
        ok = 0;
        goto out;
    }
    for (r = 0; r < P; r++) {
        ncap[node_of[r]] += slots;
        nranks_of[node_of[r]]++;
    }
    for (e = 0; e < E; e++) {
        total += w[e];
        order[e].id = e;
        order[e].w = w[e];
        nrep[e] = 0;
    }
    mean_node = total > 0 ? total / N : 1;
    pp_replicate(w, E, P * slots, P, cnt);
    qsort(order, (size_t)E, sizeof(*order), pp_item_desc);

    /* 1. copies onto nodes: distinct nodes first, by affinity minus balance penalty */
    for (i = 0; i < E; i++) {
        e = order[i].id;
        for (c = 0; c < cnt[e]; c++) {
            /* a copy's load: its node's own tokens, split over that node's copies; as the
             * copies are spread evenly, W * ranks_on_node / P per node, or W / cnt if fewer
             * copies than nodes */
            int    best = -1;
            double best_s = -HUGE_VAL;
            for (m = 0; m < N; m++) {
                double aff = 0, add, s;
                if (held_n[(size_t)m * E + e] >= nranks_of[m] || ncap[m] <= 0)
                    continue;
                add = cnt[e] >= N ? w[e] * nranks_of[m] / P / ((cnt[e] + N - 1) / N)
                                  : w[e] / cnt[e];
                if (cs && w[e] > 0 && k > 1) /* share of e's co-selected pairs already on m */
                    for (int f = 0; f < E; f++)
                        if (f != e && held_n[(size_t)m * E + f])
                            aff += cs[(size_t)e * E + f] / (w[e] * (k - 1));
                /* a second copy on a node that already has one gains no locality */
                s = (held_n[(size_t)m * E + e] ? -1e9 : 0) + aff -
                    balance * (nload[m] + add) / mean_node;
                if (s > best_s) {
                    best_s = s;
                    best = m;
                }
            }
            if (best < 0)
                break; /* no room left: fewer copies (the first copy always fits: P*slots >= E) */
            held_n[(size_t)best * E + e]++;
            ncap[best]--;
            nload[best] += cnt[e] >= N ? w[e] * nranks_of[best] / P / ((cnt[e] + N - 1) / N)
                                       : w[e] / cnt[e];
        }
    }
    /* 2. inside each node: LPT of its copies onto its ranks, then swaps and moves between
     *    the node's ranks while they lower the node's most loaded rank (node-local changes:
     *    what crosses nodes stays the same). A copy's load under the uniform-origin model:
     *    its node's tokens split over the node's copies, plus the tokens of nodes without a
     *    copy split over all copies. */
    for (m = 0; m < N; m++) {
        pp_item_t *it = calloc((size_t)P * slots + 1, sizeof(*it));
        int        n = 0, iter;
        if (it == NULL) {
            ok = 0;
            goto out;
        }
        for (e = 0; e < E; e++)
            for (c = 0; c < held_n[(size_t)m * E + e]; c++) {
                it[n].id = e;
                it[n++].w = pp_copy_load(w[e], held_n, E, N, nranks_of, P, e, m);
            }
        qsort(it, (size_t)n, sizeof(*it), pp_item_desc);
        for (i = 0; i < n; i++) {
            int best = -1;
            e = it[i].id;
            for (r = 0; r < P; r++)
                if (node_of[r] == m && rcnt[r] < slots && !rheld[(size_t)r * E + e] &&
                    (best < 0 || rload[r] < rload[best]))
                    best = r;
            if (best < 0)
                continue;
            rheld[(size_t)best * E + e] = 1;
            rcnt[best]++;
            rload[best] += it[i].w;
        }
        free(it);
        for (iter = 0; iter < 4 * P * slots; iter++) {
            int    rmax = -1, be1 = -1, be2 = -1, br = -1;
            double gain = 1e-9;
            for (r = 0; r < P; r++)
                if (node_of[r] == m && (rmax < 0 || rload[r] > rload[rmax]))
                    rmax = r;
            if (rmax < 0)
                break;
            for (int e1 = 0; e1 < E; e1++) {
                double w1;
                if (!rheld[(size_t)rmax * E + e1])
                    continue;
                w1 = pp_copy_load(w[e1], held_n, E, N, nranks_of, P, e1, m);
                for (r = 0; r < P; r++) {
                    if (node_of[r] != m || r == rmax || rheld[(size_t)r * E + e1])
                        continue;
                    if (rcnt[r] < slots) { /* move e1 to r */
                        double nm = rload[rmax] - w1 > rload[r] + w1 ? rload[rmax] - w1
                                                                      : rload[r] + w1;
                        if (rload[rmax] - nm > gain) {
                            gain = rload[rmax] - nm;
                            be1 = e1, be2 = -1, br = r;
                        }
                    }
                    for (int e2 = 0; e2 < E; e2++) { /* swap e1 with r's e2 */
                        double w2, a, b;
                        if (!rheld[(size_t)r * E + e2] || rheld[(size_t)rmax * E + e2])
                            continue;
                        w2 = pp_copy_load(w[e2], held_n, E, N, nranks_of, P, e2, m);
                        a = rload[rmax] - w1 + w2;
                        b = rload[r] + w1 - w2;
                        if (rload[rmax] - (a > b ? a : b) > gain) {
                            gain = rload[rmax] - (a > b ? a : b);
                            be1 = e1, be2 = e2, br = r;
                        }
                    }
                }
            }
            if (be1 < 0)
                break;
            {
                double w1 = pp_copy_load(w[be1], held_n, E, N, nranks_of, P, be1, m);
                double w2 = be2 >= 0 ? pp_copy_load(w[be2], held_n, E, N, nranks_of, P, be2, m) : 0;
                rheld[(size_t)rmax * E + be1] = 0;
                rheld[(size_t)br * E + be1] = 1;
                rload[rmax] += w2 - w1;
                rload[br] += w1 - w2;
                if (be2 >= 0) {
                    rheld[(size_t)br * E + be2] = 0;
                    rheld[(size_t)rmax * E + be2] = 1;
                } else {
                    rcnt[rmax]--;
                    rcnt[br]++;
                }
            }
        }
    }
    for (r = 0; r < P; r++)
        for (e = 0; e < E; e++)
            if (rheld[(size_t)r * E + e])
                ranks[(size_t)e * P + nrep[e]++] = r;
out:
    free(cnt), free(ncap), free(nranks_of), free(held_n), free(nload), free(rload), free(rcnt);
    free(rheld), free(order);
    return ok ? 0 : -1;
}

moe_status_t moe_place_plan(const moe_place_input_t *in, const moe_place_target_t *tg,
                            moe_plan_policy_t policy, moe_placement_t *out, char *err,
                            size_t errlen)
{
    int          E = in->experts, L = in->layers, N = tg->nodes, P = N * tg->ranks_per_node;
    int          S = tg->slots, l, e, r, *node_of, *nrep, *ranks, rc = 0;
    moe_status_t st;

    memset(out, 0, sizeof(*out));
    if (N < 1 || tg->ranks_per_node < 1 || S < 1 || (long)P * S < E || S > E) {
        moe_say(err, errlen, "target: %d nodes x %d ranks x %d slots cannot hold %d experts; "
               "allowed nodes >= 1, ranks per node >= 1, 1 <= slots <= experts, "
               "ranks x slots >= experts", N, tg->ranks_per_node, S, E);
        return MOE_ERR_INVALID;
    }
    if (policy == MOE_PLAN_CONTIGUOUS || policy == MOE_PLAN_ROUND_ROBIN) {
        node_of = malloc((size_t)P * sizeof(int));
        if (!node_of)
            return MOE_ERR_NOMEM;
        for (r = 0; r < P; r++)
            node_of[r] = r / tg->ranks_per_node;
        st = moe_placement_builtin(out, policy == MOE_PLAN_CONTIGUOUS ? MOE_PLACE_CONTIGUOUS
                                                                      : MOE_PLACE_ROUND_ROBIN,
                                   E, L, P, N, node_of);
        free(node_of);
        return st;
    }
    node_of = malloc((size_t)P * sizeof(int));
    nrep = calloc((size_t)L * E, sizeof(int));
    ranks = malloc((size_t)L * E * P * sizeof(int));
    if (!node_of || !nrep || !ranks) {
        free(node_of), free(nrep), free(ranks);
        return MOE_ERR_NOMEM;
    }
    for (r = 0; r < P; r++)
        node_of[r] = r / tg->ranks_per_node;
    for (l = 0; l < L && rc == 0; l++) {
        const double *w = in->load + (size_t)l * E;
        if (policy == MOE_PLAN_EPLB)
            rc = pp_eplb_layer(w, E, P, N, node_of, S, tg->groups > 0 ? tg->groups : N,
                               nrep + (size_t)l * E, ranks + (size_t)l * E * P);
        else
            rc = pp_moerun_layer(w, in->coselect ? in->coselect + (size_t)l * E * E : NULL, E,
                                 in->top_k, P, N, node_of, S, tg->balance, nrep + (size_t)l * E,
                                 ranks + (size_t)l * E * P);
        for (e = 0; e < E && rc == 0; e++)
            pp_sort_ranks(ranks + ((size_t)l * E + e) * P, nrep[(size_t)l * E + e], node_of);
    }
    if (rc != 0) {
        free(node_of), free(nrep), free(ranks);
        moe_say(err, errlen, "planner: out of memory");
        return MOE_ERR_NOMEM;
    }
    st = moe_placement_from_lists(out, E, L, P, N, node_of, S, nrep, ranks, P, err, errlen);
    free(node_of), free(nrep), free(ranks);
    return st;
}

/* ---- predictions ------------------------------------------------------------------------- */

void moe_place_pred_free(moe_place_pred_t *pred, int layers)
{
    int l;

    if (pred == NULL)
        return;
    for (l = 0; l < layers; l++)
        free(pred[l].node_rows);
    free(pred);
}

moe_status_t moe_place_predict(const moe_place_input_t *in, const moe_placement_t *pl,
                               moe_place_pred_t **pred_p)
{
    int               E = in->experts, L = in->layers, k = in->top_k, P = pl->nranks;
    int               N = pl->nnodes, l, e, r, n, m, j;
    double           *rl = calloc((size_t)P, sizeof(double)), *hit = calloc((size_t)N, sizeof(double));
    double           *nshare = calloc((size_t)N, sizeof(double));
    moe_place_pred_t *pred = calloc((size_t)L, sizeof(*pred));
    double            steps = in->steps >= 1 ? in->steps : 1;
    double            G = (double)in->tokens_per_rank * in->nranks;
    moe_status_t      st = MOE_OK;

    *pred_p = NULL;
    if (!rl || !hit || !nshare || !pred) {
        st = MOE_ERR_NOMEM;
        goto out;
    }
    for (l = 0; l < L; l++)
        if ((pred[l].node_rows = calloc((size_t)N, sizeof(double))) == NULL) {
            st = MOE_ERR_NOMEM;
            goto out;
        }
    for (r = 0; r < P; r++)
        nshare[pl->node_of[r]] += 1.0 / P;
    if (G <= 0) { /* tokens per step from the loads */
        double tot = 0;
        for (e = 0; e < E; e++)
            tot += in->load[e];
        G = k > 0 ? tot / k / steps : 1;
    }
    for (l = 0; l < L; l++) {
        moe_place_pred_t *p = &pred[l];
        double            flat = 0, hier = 0, tokens = 0, scale = 1, routed = 0, sampled = 0;
        memset(rl, 0, (size_t)P * sizeof(double));
        if (in->nroutes > 0 && in->tokens_per_rank > 0) {
            double Gall = (double)in->tokens_per_rank * in->nranks, per = Gall / P;
            int64_t i;
            for (e = 0; e < E; e++)
                routed += in->load[(size_t)l * E + e];
            for (i = 0; i < in->nroutes; i++) {
                int64_t g = in->route_token[i];
                int     src, nh = 0, slot;
                if (g < 0 || (double)g >= Gall) /* moe_place_input_read refuses these */
                    continue;
                src = (int)((double)g / per);
                if (src >= P)
                    src = P - 1;
                n = pl->node_of[src];
                memset(hit, 0, (size_t)N * sizeof(double));
                tokens++;
                for (j = 0; j < k; j++) {
                    size_t q = ((size_t)i * L + l) * k + j;
                    sampled++;
                    if (!in->route_kept[q])
                        continue;
                    e = in->route_expert[q];
                    if (e < 0 || e >= E)
                        continue;
                    r = moe_placement_route(pl, l, e, n, g, &slot);
                    rl[r] += 1;
                    m = pl->node_of[r];
                    p->node_rows[m] += 1;
                    if (m != n) {
                        flat += 1;
                        if (!hit[m]++)
                            nh++;
                    }
                }
                hier += nh;
            }
            scale = in->routes_complete || sampled <= 0 ? 1.0 / steps : routed / sampled / steps;
            for (r = 0; r < P; r++)
                rl[r] *= scale;
            for (m = 0; m < N; m++)
                p->node_rows[m] *= scale;
            p->flat_copies = tokens > 0 ? flat / tokens : 0;
            p->hier_copies = tokens > 0 ? hier / tokens : 0;
        } else {
            /* uniform origin, independent choices */
            double *miss = calloc((size_t)N * N, sizeof(double));
            if (!miss) {
                st = MOE_ERR_NOMEM;
                goto out;
            }
            for (n = 0; n < N * N; n++)
                miss[n] = 1;
            for (e = 0; e < E; e++) {
                double W = in->load[(size_t)l * E + e] / steps;
                size_t le = (size_t)l * E + e, R = (size_t)pl->max_replicas;
                int    nr = pl->nrep[le];
                for (n = 0; n < N; n++) {
                    int near = 0;
                    if (nshare[n] <= 0)
                        continue;
                    for (j = 0; j < nr; j++)
                        near += pl->node_of[pl->rep_rank[le * R + j]] == n;
                    for (j = 0; j < nr; j++) {
                        int rr = pl->rep_rank[le * R + j], mm = pl->node_of[rr];
                        double share;
                        if (near > 0 && mm != n)
                            continue;
                        share = W * nshare[n] / (near > 0 ? near : nr);
                        rl[rr] += share;
                        p->node_rows[mm] += share;
                        if (mm != n) {
                            flat += share;
                            miss[(size_t)n * N + mm] *= 1 - share / (G * nshare[n]);
                        }
                    }
                }
            }
            for (n = 0; n < N; n++)
                for (m = 0; m < N; m++)
                    if (m != n)
                        hier += nshare[n] * (1 - miss[(size_t)n * N + m]);
            free(miss);
            p->flat_copies = G > 0 ? flat / G : 0;
            p->hier_copies = hier;
        }
        p->max_load = 0;
        p->mean_load = 0;
        for (r = 0; r < P; r++) {
            p->mean_load += rl[r] / P;
            if (rl[r] > p->max_load)
                p->max_load = rl[r];
        }
        p->flat_bytes = 2 * p->flat_copies * G * in->row_bytes;
        /* hier's inter-node unit (comm/a2a_hier.c): an 8-byte header, k 16-byte entries and
         * the row out; one row back */
        p->hier_bytes = p->hier_copies * G * (2 * in->row_bytes + 8.0 + 16.0 * k);
    }
    *pred_p = pred;
    pred = NULL;
out:
    moe_place_pred_free(pred, L);
    free(rl), free(hit), free(nshare);
    return st;
}

double moe_place_moved_bytes(const moe_place_input_t *in, const moe_placement_t *from,
                             const moe_placement_t *to)
{
    int    l, e, i, j, E = in->experts;
    double copies = 0;

    if (from == NULL || to == NULL || from->experts != to->experts ||
        from->layers != to->layers || from->nranks != to->nranks)
        return -1;
    for (l = 0; l < to->layers; l++)
        for (e = 0; e < E; e++) {
            size_t le = (size_t)l * E + e;
            for (i = 0; i < to->nrep[le]; i++) {
                int r = to->rep_rank[le * to->max_replicas + i], had = 0;
                for (j = 0; j < from->nrep[le]; j++)
                    had |= from->rep_rank[le * from->max_replicas + j] == r;
                copies += !had;
            }
        }
    return copies * in->expert_bytes;
}

const char *moe_place_prediction_model(const moe_place_input_t *in)
{
    if (in->nroutes > 0 && in->tokens_per_rank > 0)
        return in->routes_complete ? "routes" : "sampled routes";
    return "uniform origin";
}

void moe_place_total(const moe_place_pred_t *pred, int layers, moe_place_total_t *t)
{
    int l;

    memset(t, 0, sizeof(*t));
    for (l = 0; l < layers; l++) {
        t->max_mean += pred[l].mean_load > 0 ? pred[l].max_load / pred[l].mean_load / layers : 0;
        t->flat_copies += pred[l].flat_copies;
        t->hier_copies += pred[l].hier_copies;
        t->flat_bytes += pred[l].flat_bytes;
        t->hier_bytes += pred[l].hier_bytes;
    }
}

void moe_place_target_default(const moe_place_input_t *in, int nodes, int ranks_per_node,
                              int slots, int replicas, moe_place_target_t *tg)
{
    int P;

    memset(tg, 0, sizeof(*tg));
    tg->balance = 1.0;
    tg->nodes = nodes > 0 ? nodes : in->nnodes > 0 ? in->nnodes : 1;
    tg->ranks_per_node = ranks_per_node > 0 ? ranks_per_node
                                            : (in->nranks + tg->nodes - 1) / tg->nodes;
    P = tg->nodes * tg->ranks_per_node;
    if (replicas < 0)
        replicas = P;
    tg->slots = slots > 0 ? slots : (in->experts + replicas + P - 1) / P;
    if (slots <= 0 && tg->slots > in->experts)
        tg->slots = in->experts;
}

int moe_place_write_file(const char *path, const moe_placement_t *pl, const char *comment,
                         unsigned flags, char *err, size_t n)
{
    moe_out_t o;

    if (moe_out_open(&o, path, flags | MOE_OUT_OVERWRITE, err, n) != 0)
        return -1;
    if (moe_placement_write(pl, o.f, comment) != 0) {
        moe_out_abort(&o);
        snprintf(err, n, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
        return -1;
    }
    return moe_out_commit(&o, err, n);
}
