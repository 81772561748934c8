/*
 * tools/analyze/an_stream.c — the streaming state of one run (an_st_t) and the pass over the
 * per-step datasets that fills it: per (step, layer, expert) counts accumulated into per-layer,
 * per-expert, per-bin and what-if totals. Every analysis reads this state afterwards.
 *
 * What always holds:
 *  1. Per-step datasets are read through tools/reader/telemetry_reader in blocks of rows (at
 *     most AN_BLOCK_BYTES of buffers): memory is bounded by the file's dimensions and the
 *     bin count, never by its step count.
 *  2. Every block is checked (an_check_block) before it is accumulated: counts in
 *     0..AN_COUNT_MAX, dropped <= routed, running totals representable; a damaged file is an
 *     error naming the dataset, the step and the value, never a wrong number or an overflow.
 *  3. Compiled with -O3 (CMakeLists.txt): this is the loop over every (step, layer, expert).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

void an_st_free(an_st_t *a)
{
    free(a->routed_le);
    free(a->dropped_le);
    free(a->processed_le);
    free(a->atcap_le);
    free(a->zrun_le);
    free(a->zstart_le);
    free(a->dead_le);
    free(a->crun_l);
    free(a->cstart_l);
    free(a->cbegan_l);
    free(a->cshare_l);
    free(a->ctok_l);
    free(a->crest_l);
    free(a->ctop_l);
    free(a->b_routed);
    free(a->b_dropped);
    free(a->b_ent);
    free(a->b_imb);
    free(a->b_n);
    free(a->b_rc);
    free(a->b_rcn);
    free(a->heat);
    free(a->phase_rank);
    free(a->traffic_rank);
    free(a->imb_sl_layer);
    free(a->lid);
}

int an_st_alloc(an_st_t *a)
{
    size_t LE = (size_t)(a->L * a->E), L = (size_t)a->L, nb = (size_t)a->nb;
    size_t i;

    a->routed_le = calloc(LE, 8);
    a->dropped_le = calloc(LE, 8);
    a->processed_le = calloc(LE, 8);
    a->atcap_le = calloc(LE, 8);
    a->zrun_le = calloc(LE, 8);
    a->zstart_le = calloc(LE, 8);
    a->dead_le = malloc(LE * 8);
    a->crun_l = calloc(L, 8);
    a->cstart_l = calloc(L, 8);
    a->cbegan_l = malloc(L * 8);
    a->cshare_l = calloc(L, 8);
    a->ctok_l = calloc(L, 8);
    a->crest_l = calloc(L, 8);
    a->ctop_l = calloc(L, 8);
    a->b_routed = calloc(nb + 1, 8);
    a->b_dropped = calloc(nb + 1, 8);
    a->b_ent = calloc(nb + 1, 8);
    a->b_imb = calloc(nb + 1, 8);
    a->b_n = calloc(nb + 1, 8);
    a->b_rc = calloc((nb + 1) * RC_COUNT, 8);
    a->b_rcn = calloc((nb + 1) * RC_COUNT, 8);
    a->hb = (int64_t)nb;
    if (a->hb * a->L * a->E > AN_HEAT_CELLS)
        a->hb = AN_HEAT_CELLS / (a->L * a->E > 0 ? a->L * a->E : 1);
    if (a->hb < 1)
        a->hb = 1;
    a->heat = calloc((size_t)(a->hb + 1) * LE, 8);
    a->imb_sl_layer = calloc(L, 8);
    if (!a->routed_le || !a->dropped_le || !a->processed_le || !a->atcap_le || !a->zrun_le ||
        !a->zstart_le || !a->dead_le || !a->crun_l || !a->cstart_l || !a->cbegan_l ||
        !a->cshare_l || !a->ctok_l || !a->crest_l || !a->ctop_l || !a->b_routed || !a->b_dropped || !a->b_ent || !a->b_imb || !a->b_n ||
        !a->b_rc || !a->b_rcn || !a->heat || !a->imb_sl_layer)
        return -1;
    for (i = 0; i < LE; i++)
        a->dead_le[i] = -1;
    for (i = 0; i < L; i++)
        a->cbegan_l[i] = -1;
    return 0;
}

/* Normalised entropy of the loads x[0..E) without expert `skip` (NAN with fewer than 2 left). */
static double an_rest_entropy(const int64_t *x, int64_t E, int64_t skip)
{
    double  tot = 0, h = 0;
    int64_t e;

    if (E < 3)
        return NAN;
    for (e = 0; e < E; e++)
        if (e != skip)
            tot += (double)x[e];
    if (!(tot > 0))
        return NAN;
    for (e = 0; e < E; e++)
        if (e != skip && x[e] > 0)
            h -= ((double)x[e] / tot) * log2((double)x[e] / tot);
    return h / log2((double)(E - 1));
}

/* Accumulates one step s of one layer l. x: routed[E], d: dropped[E] or NULL, cap: -2 absent. */
static void an_step_layer(an_st_t *a, int64_t s, int64_t l, const int64_t *x, const int64_t *d,
                          int64_t cap, const double *rcv)
{
    const int64_t E = a->E, W = a->W, b = s * a->nb / a->S;
    int64_t       e, tot = 0, m1 = 0, m2 = 0, dsum = 0, xl_n, atcap = cap >= 0 ? cap : INT64_MAX;
    int64_t      *rl = a->routed_le + l * E, *zr = a->zrun_le + l * E, *zs = a->zstart_le + l * E;
    int64_t      *dl = a->dropped_le + l * E, *pl = a->processed_le + l * E;
    int64_t      *ac = a->atcap_le + l * E, *dead = a->dead_le + l * E;
    int64_t      *heat = a->heat + ((s * a->hb / a->S) * a->L + l) * E, rep = 0, e1 = 0;
    double        slog = 0, ent, imb = NAN;
    const double *xl = am_xlog2x_table(&xl_n);
    int           c;

    /* locals, not fields of *a, carry the sums: stores through int64_t pointers could alias
     * them and serialise the loop */
    for (e = 0; e < E; e++) {
        int64_t v = x[e];
        tot += v;
        rl[e] += v;
        heat[e] += v;
        if (v > m1) {
            m2 = m1;
            m1 = v;
            e1 = e;
        } else if (v > m2) {
            m2 = v;
        }
        slog += v < xl_n ? xl[v] : am_xlog2x(v);
    }
    /* a layer that routed nothing in this step (a sparse imported log) has no data for it:
     * its experts' zero-load runs neither grow nor end */
    for (e = 0; e < E; e++) {
        int64_t v = x[e];
        if (tot == 0)
            break;
        if (v == 0) {
            if (zr[e] == 0)
                zs[e] = s;
            if (++zr[e] == W && dead[e] < 0)
                dead[e] = zs[e];
        } else {
            zr[e] = 0;
        }
        if (v >= atcap) {
            ac[e]++;
            rep += v - atcap; /* replay of the recorded capacity */
        }
    }
    if (d != NULL) {
        for (e = 0; e < E; e++) {
            dl[e] += d[e];
            pl[e] += x[e] - d[e];
            dsum += d[e];
        }
        a->dropped += dsum;
        a->b_dropped[b] += (double)dsum;
    }
    a->routed += tot;
    a->b_routed[b] += (double)tot;
    if (tot > 0) {
        ent = (log2((double)tot) - slog / (double)tot) / (E > 1 ? log2((double)E) : 1.0);
        imb = (double)m1 * (double)E / (double)tot;
        a->b_ent[b] += ent;
        a->b_imb[b] += imb;
        a->max_slots += (double)m1 * (double)E;
        a->b_n[b] += 1;
        a->imb_sl_layer[l] += imb;
        /* collapse: the top two experts take AN_COLLAPSE_SHARE of the layer's pairs, or one
         * expert is selected by AN_COLLAPSE_TOKENS of the tokens (token share k*m1/tot) and
         * by AN_COLLAPSE_FAIR times its fair token share k/E */
        if ((E > 2 && (double)(m1 + m2) >= a->cthr_pairs * (double)tot) ||
            (a->K > 0 && (double)(a->K * m1) >= a->cthr_tokens * (double)tot)) {
            if (a->crun_l[l] == 0)
                a->cstart_l[l] = s;
            if (++a->crun_l[l] == a->CW && a->cbegan_l[l] < 0) {
                a->cbegan_l[l] = a->cstart_l[l];
                a->cshare_l[l] = (double)(m1 + m2) / (double)tot;
                a->ctok_l[l] = (double)(a->K * m1) / (double)tot;
                a->ctop_l[l] = e1;
                a->crest_l[l] = an_rest_entropy(x, E, e1);
            }
        } else {
            a->crun_l[l] = 0;
        }
        /* capacity what-if: replay these loads under other capacity factors (capacities
         * grow with the factor, so an expert under one is under all larger ones) */
        {
            int64_t cw[AN_NCF], wd[AN_NCF] = {0};
            for (c = 0; c < AN_NCF; c++) {
                cw[c] = am_capacity(an_cfs[c], tot, E);
                a->wi_cap[c] += (double)cw[c] * (double)E;
            }
            /* sum max(0, x - C) = (sum of loads above C) - C * (count above C). Capacities
             * grow with the factor, so each load falls in one bucket j = number of capacities
             * below it (branch-free), and suffix sums of the buckets give every factor */
            if (m1 > cw[0]) {
                int64_t cnt[AN_NCF + 1] = {0}, sum[AN_NCF + 1] = {0}, ca = 0, sa = 0;
                for (e = 0; e < E; e++) {
                    const int64_t v = x[e];
                    int           j = 0;
                    for (c = 0; c < AN_NCF; c++)
                        j += v > cw[c];
                    cnt[j]++;
                    sum[j] += v;
                }
                for (c = AN_NCF - 1; c >= 0; c--) {
                    ca += cnt[c + 1];
                    sa += sum[c + 1];
                    wd[c] = sa - cw[c] * ca;
                }
            }
            for (c = 0; c < AN_NCF; c++)
                a->wi_drops[c] += wd[c];
        }
    }
    if (cap >= 0) {
        a->replay_drops += rep;
        a->cap_rows++;
        if (d != NULL) {
            a->fill_proc += (double)(tot - dsum);
            a->fill_cap += (double)cap * (double)E;
        }
    }
    if (rcv != NULL) {
        /* router statistics are means over the step's tokens: weighting each step x layer
         * value by its pairs (= tokens x k) gives token-weighted (pooled) means */
        const double wt = (double)tot;
        for (c = 0; c < RC_COUNT; c++) {
            double v = rcv[c];
            if (!isfinite(v) || tot == 0)
                continue;
            a->b_rc[b * RC_COUNT + c] += v * wt;
            a->b_rcn[b * RC_COUNT + c] += wt;
            a->rc_sum[c] += v * wt;
            a->rc_cnt[c] += wt;
            if (s < (a->S + 9) / 10) {
                a->dec_first[c] += v * wt;
                a->dec_first_n[c] += wt;
            }
            if (s >= a->S - (a->S + 9) / 10) {
                a->dec_last[c] += v * wt;
                a->dec_last_n[c] += wt;
            }
        }
        if (s < (a->S + 9) / 10)
            a->n_first += 1;
        if (s >= a->S - (a->S + 9) / 10)
            a->n_last += 1;
        a->rc_n += 1;
        am_corr_add(&a->corr_aux, rcv[RC_AUX], imb);
        am_corr_add(&a->corr_z, rcv[RC_Z], rcv[RC_LMAX]);
        if (isfinite(rcv[RC_TOP1])) {
            int h = (int)fmin(fmax(floor(rcv[RC_TOP1] * AN_HIST_BINS), -1), AN_HIST_BINS);
            a->hist_top1[h < 0 ? 0 : h >= AN_HIST_BINS ? AN_HIST_BINS - 1 : h]++;
            a->hist_n++;
        }
        if (isfinite(rcv[RC_MARGIN])) {
            int h = (int)fmin(fmax(floor(rcv[RC_MARGIN] * AN_HIST_BINS), -1), AN_HIST_BINS);
            a->hist_margin[h < 0 ? 0 : h >= AN_HIST_BINS ? AN_HIST_BINS - 1 : h]++;
        }
    }
}

/*
 * The counts of one block, before any of them is summed: every routed and dropped count in
 * 0..AN_COUNT_MAX (2^40) with dropped <= routed, capacities >= -1, traffic in
 * 0..AN_COUNT_MAX, and
 * the file's running total of routed pairs (and of traffic) still representable
 * (checked additions): every later sum is bounded by these totals, so none can overflow.
 * A violation is "damaged file: ..." naming the dataset, the step and the value.
 */
#define AN_COUNT_MAX (INT64_C(1) << 40) /* per cell and step; a run has at most 2^31 */
static moe_status_t an_check_block(an_st_t *a, moe_log_t *log, const char *path, int64_t s0,
                                   int64_t n, const int64_t *x, const int64_t *d,
                                   const int64_t *cap, const int64_t *tr)
{
    int64_t LE = a->L * a->E, i, m = n * LE;

    for (i = 0; i < m; i++) {
        if (x[i] < 0 || x[i] > AN_COUNT_MAX)
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s at step row %lld, "
                                 "layer %lld, expert %lld is %lld (allowed 0..2^40)", path,
                                 MOE_TEL_ROUTED, (long long)(s0 + i / LE),
                                 (long long)(i % LE / a->E), (long long)(i % a->E),
                                 (long long)x[i]);
        if (d && (d[i] < 0 || d[i] > x[i]))
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s at step row %lld, "
                                 "layer %lld, expert %lld is %lld (allowed 0..routed %lld)",
                                 path, MOE_TEL_DROPPED, (long long)(s0 + i / LE),
                                 (long long)(i % LE / a->E), (long long)(i % a->E),
                                 (long long)d[i], (long long)x[i]);
        if (__builtin_add_overflow(a->checked_routed, x[i], &a->checked_routed) ||
            a->checked_routed > INT64_MAX / 4)
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: routed pairs sum "
                                 "past 2^61 by step row %lld", path, (long long)(s0 + i / LE));
    }
    for (i = 0; cap && i < n * a->L; i++)
        if (cap[i] < -1 || cap[i] > AN_COUNT_MAX)
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s at step row %lld "
                                 "is %lld (allowed -1..2^40)", path, MOE_TEL_CAPACITY,
                                 (long long)(s0 + i / a->L), (long long)cap[i]);
    for (i = 0; tr && i < n * a->L * a->P * a->ntc; i++)
        if (tr[i] < 0 || tr[i] > AN_COUNT_MAX ||
            __builtin_add_overflow(a->checked_traffic, tr[i], &a->checked_traffic) ||
            a->checked_traffic > INT64_MAX / 4)
            return MOE_ERROR_SET(log, MOE_ERR_INVALID, "%s: damaged file: %s at step row %lld "
                                 "is %lld (allowed 0..2^40, sum below 2^61)", path,
                                 MOE_TEL_TRAFFIC,
                                 (long long)(s0 + i / (a->L * a->P * a->ntc)), (long long)tr[i]);
    return MOE_OK;
}

/* Streams every per-step dataset in blocks of rows. */
moe_status_t an_stream(moe_tel_reader_t *r, moe_log_t *log, an_st_t *a)
{
    int64_t      L = a->L, E = a->E, P = a->P, s0, n, s, l;
    int          nrc = moe_tel_reader_ncolumns(r, MOE_TEL_ROUTER), c;
    size_t       row = (size_t)(L * E) * 8 * 2 + (size_t)L * 8 + (size_t)L * (size_t)nrc * 8 +
                 (size_t)(L * P) * (size_t)(a->nph + a->ntc) * 8;
    int64_t      blk = (int64_t)(AN_BLOCK_BYTES / (row ? row : 1));
    int64_t     *x = NULL, *d = NULL, *cap = NULL, *tr = NULL;
    double      *rs = NULL, *ph = NULL, rcv[RC_COUNT];
    moe_status_t st = MOE_OK;

    if (blk < 1)
        blk = 1;
    if (blk > a->S)
        blk = a->S > 0 ? a->S : 1;
    x = malloc((size_t)(blk * L * E) * 8);
    d = a->has_dropped ? malloc((size_t)(blk * L * E) * 8) : NULL;
    cap = a->has_capacity ? malloc((size_t)(blk * L) * 8) : NULL;
    rs = a->has_router ? malloc((size_t)(blk * L) * (size_t)nrc * 8) : NULL;
    ph = a->has_phase ? malloc((size_t)(blk * L * P) * (size_t)a->nph * 8) : NULL;
    tr = a->has_traffic ? malloc((size_t)(blk * L * P) * (size_t)a->ntc * 8) : NULL;
    if (!x || (a->has_dropped && !d) || (a->has_capacity && !cap) || (a->has_router && !rs) ||
        (a->has_phase && !ph) || (a->has_traffic && !tr)) {
        st = MOE_ERROR_SET(log, MOE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (s0 = 0; s0 < a->S; s0 += blk) {
        n = a->S - s0 < blk ? a->S - s0 : blk;
        if ((st = moe_tel_reader_read(r, MOE_TEL_ROUTED, MOE_TEL_I64, s0, n, x)) != MOE_OK ||
            (d && (st = moe_tel_reader_read(r, MOE_TEL_DROPPED, MOE_TEL_I64, s0, n, d))) ||
            (cap && (st = moe_tel_reader_read(r, MOE_TEL_CAPACITY, MOE_TEL_I64, s0, n, cap))) ||
            (rs && (st = moe_tel_reader_read(r, MOE_TEL_ROUTER, MOE_TEL_F64, s0, n, rs))) ||
            (ph && (st = moe_tel_reader_read(r, MOE_TEL_PHASE, MOE_TEL_F64, s0, n, ph))) ||
            (tr && (st = moe_tel_reader_read(r, MOE_TEL_TRAFFIC, MOE_TEL_I64, s0, n, tr))) ||
            (st = an_check_block(a, log, a->path, s0, n, x, d, cap, tr)) != MOE_OK)
            goto out;
        for (s = 0; s < n; s++) {
            for (l = 0; l < L; l++) {
                const double *rv = rs ? rs + ((size_t)(s * L + l)) * (size_t)nrc : NULL;
                for (c = 0; c < RC_COUNT; c++)
                    rcv[c] = rv && a->rc[c] >= 0 ? rv[a->rc[c]] : NAN;
                an_step_layer(a, s0 + s, l, x + (s * L + l) * E, d ? d + (s * L + l) * E : NULL,
                              cap ? cap[s * L + l] : -2, rv ? rcv : NULL);
            }
            if (ph) {
                const double *p0 = ph + (size_t)(s * L * P) * (size_t)a->nph;
                int64_t       i, p;
                for (l = 0; l < L; l++)
                    for (p = 0; p < P; p++)
                        for (i = 0; i < a->nph; i++)
                            a->phase_rank[p * a->nph + i] += p0[(l * P + p) * a->nph + i];
            }
            if (tr) {
                const int64_t *t0 = tr + (size_t)(s * L * P) * (size_t)a->ntc;
                int64_t        i, p;
                for (l = 0; l < L; l++)
                    for (p = 0; p < P; p++)
                        for (i = 0; i < a->ntc; i++)
                            a->traffic_rank[p * a->ntc + i] += t0[(l * P + p) * a->ntc + i];
            }
        }
    }
out:
    free(x);
    free(d);
    free(cap);
    free(rs);
    free(ph);
    free(tr);
    return st;
}

/* a->lid: the layer id of each file layer (an imported log keeps its own ids, e.g. 0, 9, 20). */
int an_layer_ids(moe_tel_reader_t *r, an_st_t *a)
{
    int64_t l;

    if ((a->lid = malloc((size_t)(a->L > 0 ? a->L : 1) * 8)) == NULL)
        return -1;
    if (moe_tel_reader_layer_ids(r, a->lid) == MOE_OK)
        return 0;
    for (l = 0; l < a->L; l++)
        a->lid[l] = l;
    return 0;
}

/* Pair-weighted mean over the layers of each layer's pooled normalised load entropy. */
double an_pooled_entropy(an_st_t *a)
{
    double  num = 0, den = 0;
    int64_t l;

    a->empty_layers = 0;
    for (l = 0; l < a->L; l++) {
        am_balance_t bb;
        am_balance(a->routed_le + l * a->E, (size_t)a->E, &bb);
        if (!(bb.total > 0)) {
            a->empty_layers++;
            continue;
        }
        if (!isfinite(bb.entropy_norm))
            continue;
        num += bb.total * bb.entropy_norm;
        den += bb.total;
    }
    return den > 0 ? num / den : NAN;
}
