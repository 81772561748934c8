/*
 * tools/analyze/analysis_math.c — formulas of moerun-analyze (see analysis_math.h, docs/analysis.md).
 *
 * What always holds: no function divides by zero or returns a value computed from an empty
 * set — such cases give NAN (ratios) or 0 (sums), as each comment says.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_math.h"
#include "moerun/capacity.h"

#define AM_XLOGX_TABLE 65536

static double am_xlogx_tab[AM_XLOGX_TABLE];
static int    am_xlogx_ready;

double am_xlog2x(int64_t x)
{
    int64_t i;

    if (x <= 0)
        return 0.0;
    if (x < AM_XLOGX_TABLE) {
        if (!am_xlogx_ready) {
            am_xlogx_tab[0] = 0.0;
            for (i = 1; i < AM_XLOGX_TABLE; i++)
                am_xlogx_tab[i] = (double)i * log2((double)i);
            am_xlogx_ready = 1;
        }
        return am_xlogx_tab[x];
    }
    return (double)x * log2((double)x);
}

const double *am_xlog2x_table(int64_t *n_p)
{
    (void)am_xlog2x(1); /* initialises the table */
    *n_p = AM_XLOGX_TABLE;
    return am_xlogx_tab;
}

double am_entropy_bits(const int64_t *x, size_t n)
{
    double  s = 0.0;
    int64_t tot = 0;
    size_t  i;

    for (i = 0; i < n; i++)
        if (x[i] > 0) {
            tot += x[i];
            s += am_xlog2x(x[i]);
        }
    if (tot <= 0)
        return 0.0;
    /* H = -sum p log2 p = log2 T - (1/T) sum x log2 x */
    return log2((double)tot) - s / (double)tot;
}

static int am_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double am_gini(const int64_t *x, size_t n)
{
    int64_t *s;
    double   tot = 0.0, acc = 0.0;
    size_t   i;

    if (n == 0)
        return NAN;
    s = malloc(n * sizeof(int64_t));
    if (s == NULL)
        return NAN;
    memcpy(s, x, n * sizeof(int64_t));
    qsort(s, n, sizeof(int64_t), am_cmp_i64);
    /* sorted ascending: G = sum_i (2i - n + 1) s_i / (n * sum s), i from 0 */
    for (i = 0; i < n; i++) {
        tot += (double)s[i];
        acc += (2.0 * (double)i - (double)n + 1.0) * (double)s[i];
    }
    free(s);
    return tot > 0 ? acc / ((double)n * tot) : NAN;
}

void am_balance(const int64_t *x, size_t n, am_balance_t *b)
{
    double var = 0.0, d;
    size_t i;

    memset(b, 0, sizeof(*b));
    b->argmin = b->argmax = 0;
    for (i = 0; i < n; i++) {
        b->total += (double)x[i];
        if (x[i] > x[b->argmax])
            b->argmax = (int64_t)i;
        if (x[i] < x[b->argmin])
            b->argmin = (int64_t)i;
    }
    b->mean = n > 0 ? b->total / (double)n : NAN;
    for (i = 0; i < n; i++) {
        d = (double)x[i] - b->mean;
        var += d * d;
    }
    var = n > 0 ? var / (double)n : NAN;
    if (b->total > 0) {
        b->max_mean = (double)x[b->argmax] / b->mean;
        b->cv = sqrt(var) / b->mean;
        b->gini = am_gini(x, n);
        b->entropy = am_entropy_bits(x, n);
        b->entropy_norm = n >= 2 ? b->entropy / log2((double)n) : NAN;
        b->eff_experts = exp2(b->entropy);
    } else {
        b->max_mean = b->cv = b->gini = b->entropy = b->entropy_norm = b->eff_experts = NAN;
    }
}

static int am_cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double am_percentile(double *v, size_t n, double p)
{
    double pos, frac;
    size_t lo;

    if (n == 0)
        return NAN;
    qsort(v, n, sizeof(double), am_cmp_dbl);
    if (p <= 0)
        return v[0];
    if (p >= 100)
        return v[n - 1];
    pos = p / 100.0 * (double)(n - 1);
    lo = (size_t)floor(pos);
    frac = pos - (double)lo;
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + frac * (v[lo + 1] - v[lo]);
}

int64_t am_capacity(double cf, int64_t pairs, int64_t experts)
{
    return moe_capacity(cf, 1, pairs, experts); /* pairs = k * G: the runtime's formula */
}

int64_t am_drops(const int64_t *x, size_t n, int64_t c)
{
    int64_t d = 0;
    size_t  i;

    if (c < 0)
        return 0;
    for (i = 0; i < n; i++)
        if (x[i] > c)
            d += x[i] - c;
    return d;
}

void am_corr_add(am_corr_t *c, double x, double y)
{
    if (!isfinite(x) || !isfinite(y))
        return;
    c->n += 1;
    c->sx += x;
    c->sy += y;
    c->sxx += x * x;
    c->syy += y * y;
    c->sxy += x * y;
}

double am_corr_r(const am_corr_t *c)
{
    double vx, vy, cov;

    if (c->n < 3)
        return NAN;
    vx = c->sxx - c->sx * c->sx / c->n;
    vy = c->syy - c->sy * c->sy / c->n;
    cov = c->sxy - c->sx * c->sy / c->n;
    if (!(vx > 1e-12 * (c->sxx + 1e-300)) || !(vy > 1e-12 * (c->syy + 1e-300)))
        return NAN;
    return cov / sqrt(vx * vy);
}

double am_rebalance_lpt(const double *w, size_t n, int bins, int per_bin, int *owner)
{
    size_t *ord = malloc(n * sizeof(size_t));
    double *load = calloc((size_t)(bins > 0 ? bins : 1), sizeof(double));
    int    *cnt = calloc((size_t)(bins > 0 ? bins : 1), sizeof(int));
    double  mx = 0.0;
    size_t  i, j;
    int     b, best;

    if (ord == NULL || load == NULL || cnt == NULL || bins < 1) {
        free(ord);
        free(load);
        free(cnt);
        return NAN;
    }
    for (i = 0; i < n; i++)
        ord[i] = i;
    /* insertion sort by weight descending, ties by index (n is an expert count) */
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && w[ord[j]] > w[ord[j - 1]]; j--) {
            size_t t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    for (i = 0; i < n; i++) {
        best = -1;
        for (b = 0; b < bins; b++)
            if (cnt[b] < per_bin && (best < 0 || load[b] < load[best]))
                best = b;
        if (best < 0)
            best = 0; /* per_bin * bins < n: caller's error; keep going deterministically */
        load[best] += w[ord[i]];
        cnt[best]++;
        owner[ord[i]] = best;
    }
    for (b = 0; b < bins; b++)
        if (load[b] > mx)
            mx = load[b];
    free(ord);
    free(load);
    free(cnt);
    return mx;
}

double am_bin_max(const double *w, size_t n, const int *owner, int bins)
{
    double *load = calloc((size_t)(bins > 0 ? bins : 1), sizeof(double)), mx = 0.0;
    size_t  i;
    int     b;

    if (load == NULL)
        return NAN;
    for (i = 0; i < n; i++)
        if (owner[i] >= 0 && owner[i] < bins)
            load[owner[i]] += w[i];
    for (b = 0; b < bins; b++)
        if (load[b] > mx)
            mx = load[b];
    free(load);
    return mx;
}

double am_coselect_expected(double n_i, double n_j, double ntok, int64_t k)
{
    double qi, qj;

    if (k < 2 || !(ntok > 0))
        return NAN;
    qi = n_i / ((double)k * ntok);
    qj = n_j / ((double)k * ntok);
    if (!(qi < 1) || !(qj < 1))
        return NAN;
    return 0.5 * (double)(k - 1) * (n_i * qj / (1 - qi) + n_j * qi / (1 - qj));
}

/* e[0..k] = elementary symmetric polynomials of w[0..m-1] up to degree k */
static void am_esym(const double *w, int64_t m, int64_t k, double *e)
{
    int64_t i, r;

    e[0] = 1;
    for (r = 1; r <= k; r++)
        e[r] = 0;
    for (i = 0; i < m; i++)
        for (r = k; r >= 1; r--)
            e[r] += w[i] * e[r - 1];
}

int am_coselect_null(const double *n, int64_t E, double ntok, int64_t k, double *out)
{
    int64_t *idx = NULL, m = 0, na = 0, i, j, r, a, it, K;
    double  *pi = NULL, *w = NULL, *pre = NULL, *suf = NULL, *mid = NULL, *pm = NULL;
    double   sum = 0, ek = 0;
    int      rc = -1;

    if (k < 2 || E < 1 || E > 4096 || !(ntok > 0))
        return -1;
    idx = malloc((size_t)E * sizeof(int64_t));
    pi = malloc((size_t)E * sizeof(double));
    w = malloc((size_t)E * sizeof(double));
    if (!idx || !pi || !w)
        goto out;
    for (i = 0; i < E; i++) {
        double p = n[i] / ntok;
        if (!(p >= 0) || p > 1 + 1e-9)
            goto out;
        sum += p;
        if (p >= 1 - 1e-12)
            na++; /* in every token */
        else if (p > 0)
            idx[m++] = i; /* the free experts */
    }
    if (fabs(sum - (double)k) > 1e-6 * (double)k)
        goto out;
    K = k - na; /* picks among the free experts */
    if (K < 0 || K > m)
        goto out;
    pre = malloc((size_t)(m + 1) * (size_t)(K + 1) * sizeof(double));
    suf = malloc((size_t)(m + 2) * (size_t)(K + 1) * sizeof(double));
    mid = malloc((size_t)(K + 1) * sizeof(double));
    pm = malloc((size_t)(K + 1) * sizeof(double));
    if (!pre || !suf || !mid || !pm)
        goto out;
    for (a = 0; a < m; a++) {
        pi[a] = n[idx[a]] / ntok;
        w[a] = pi[a] / (1 - pi[a]);
    }
    /* fit: pre[a] = e(w[0..a-1]), suf[a] = e(w[a..m-1]); pi_a(w) = w_a e_{K-1}(w without a) / e_K */
    for (it = 0; K >= 1 && m > 0; it++) {
        double err = 0, s = 0;
        for (a = 0; a < m; a++)
            s += w[a];
        for (a = 0; a < m; a++)
            w[a] *= (double)m / s; /* scale: e_r ratios are invariant */
        for (r = 0; r <= K; r++) {
            pre[r] = r == 0;
            suf[(size_t)m * (size_t)(K + 1) + (size_t)r] = r == 0;
        }
        for (a = 0; a < m; a++)
            for (r = 0; r <= K; r++)
                pre[(size_t)(a + 1) * (size_t)(K + 1) + (size_t)r] =
                    pre[(size_t)a * (size_t)(K + 1) + (size_t)r] +
                    (r > 0 ? w[a] * pre[(size_t)a * (size_t)(K + 1) + (size_t)r - 1] : 0);
        for (a = m - 1; a >= 0; a--)
            for (r = 0; r <= K; r++)
                suf[(size_t)a * (size_t)(K + 1) + (size_t)r] =
                    suf[(size_t)(a + 1) * (size_t)(K + 1) + (size_t)r] +
                    (r > 0 ? w[a] * suf[(size_t)(a + 1) * (size_t)(K + 1) + (size_t)r - 1] : 0);
        ek = pre[(size_t)m * (size_t)(K + 1) + (size_t)K];
        if (!(ek > 0) || !isfinite(ek))
            goto out;
        for (a = 0; a < m; a++) {
            double e1 = 0, p;
            for (r = 0; r <= K - 1; r++)
                e1 += pre[(size_t)a * (size_t)(K + 1) + (size_t)r] *
                      suf[(size_t)(a + 1) * (size_t)(K + 1) + (size_t)(K - 1 - r)];
            p = w[a] * e1 / ek;
            err = fmax(err, fabs(p - pi[a]));
            if (p > 0 && p < 1)
                w[a] *= (pi[a] / (1 - pi[a])) / (p / (1 - p));
        }
        if (err <= 1e-10)
            break;
        if (it >= 2000)
            goto out;
    }
    /* the fitted w: prefix and suffix are those of the last check (w scaled after it only by
     * the odds update, so recompute them once for the final w) */
    if (K >= 2) {
        am_esym(w, m, K, mid);
        ek = mid[K];
        for (r = 0; r <= K; r++)
            pre[r] = r == 0;
        for (a = 0; a < m; a++)
            for (r = 0; r <= K; r++)
                pre[(size_t)(a + 1) * (size_t)(K + 1) + (size_t)r] =
                    pre[(size_t)a * (size_t)(K + 1) + (size_t)r] +
                    (r > 0 ? w[a] * pre[(size_t)a * (size_t)(K + 1) + (size_t)r - 1] : 0);
        for (r = 0; r <= K; r++)
            suf[(size_t)m * (size_t)(K + 1) + (size_t)r] = r == 0;
        for (a = m - 1; a >= 0; a--)
            for (r = 0; r <= K; r++)
                suf[(size_t)a * (size_t)(K + 1) + (size_t)r] =
                    suf[(size_t)(a + 1) * (size_t)(K + 1) + (size_t)r] +
                    (r > 0 ? w[a] * suf[(size_t)(a + 1) * (size_t)(K + 1) + (size_t)r - 1] : 0);
    }
    for (i = 0; i < E; i++)
        for (j = 0; j < E; j++)
            out[i * E + j] = i == j ? n[i] : 0;
    for (i = 0; i < E; i++) /* experts in every token */
        if (n[i] / ntok >= 1 - 1e-12)
            for (j = 0; j < E; j++)
                if (j != i) {
                    out[i * E + j] = n[j];
                    out[j * E + i] = n[j];
                }
    for (a = 0; K >= 2 && a < m; a++) {
        /* mid = e(w[a+1 .. b-1]) grown one expert at a time */
        for (r = 0; r <= K; r++)
            mid[r] = r == 0;
        for (j = a + 1; j < m; j++) {
            double e2 = 0, v;
            /* pm = pre[a] * mid up to degree K-2, then dot with suf[j+1] */
            for (r = 0; r <= K - 2; r++) {
                int64_t q;
                pm[r] = 0;
                for (q = 0; q <= r; q++)
                    pm[r] += pre[(size_t)a * (size_t)(K + 1) + (size_t)q] * mid[r - q];
            }
            for (r = 0; r <= K - 2; r++)
                e2 += pm[r] * suf[(size_t)(j + 1) * (size_t)(K + 1) + (size_t)(K - 2 - r)];
            v = ntok * w[a] * w[j] * e2 / ek;
            out[idx[a] * E + idx[j]] = v;
            out[idx[j] * E + idx[a]] = v;
            for (r = K; r >= 1; r--) /* add expert j to the middle */
                mid[r] += w[j] * mid[r - 1];
        }
    }
    rc = 0;
out:
    free(idx);
    free(pi);
    free(w);
    free(pre);
    free(suf);
    free(mid);
    free(pm);
    return rc;
}
