/*
 * tools/analyze/render_html.c — the self-contained HTML report with inline SVG charts.
 *
 * What always holds:
 *  1. It reads only the cJSON report (analyze_run.c builds it); it computes nothing new
 *     except chart geometry, so it always agrees with the JSON.
 *  2. HTML is one self-contained file: inline CSS and SVG, no script, no external asset or
 *     URL; every text taken from the report is escaped (an__html_esc, the one HTML escaper,
 *     also used by analyze_compare.c). Each chart is an <svg> with a fixed id
 *     (docs/analysis.md lists them) that is present even when its data is missing, then
 *     holding the "missing: ..." text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

#define AR_MAX_PANELS    8    /* load histograms drawn per run (layers) */
#define AR_MAX_PHASES    32   /* phase columns drawn */

/* The HTML escaper: s with the five specials as entities, newline and tab as spaces, other
 * control characters (C0, DEL, C1) as U+FFFD (not allowed in XML). */
void an__html_esc(FILE *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        case '\'': fputs("&#39;", o); break;
        case '\n': case '\t': fputc(' ', o); break;
        default:
            if ((unsigned char)*s < 0x20 || *s == 0x7f)
                fputs("&#xfffd;", o); /* control characters are not allowed in XML */
            else if ((unsigned char)*s == 0xc2 && (unsigned char)s[1] >= 0x80 &&
                     (unsigned char)s[1] <= 0x9f)
                fputs("&#xfffd;", o), s++;
            else
                fputc(*s, o);
        }
    }
}

/* Sequential colour for t in [0, 1]: light to dark blue. */
static void ar_seq(double t, char out[8])
{
    int r, g, b;

    if (!isfinite(t))
        t = 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    r = (int)(247 + (8 - 247) * t);
    g = (int)(251 + (48 - 251) * t);
    b = (int)(255 + (107 - 255) * t);
    snprintf(out, 8, "#%02x%02x%02x", r & 255, g & 255, b & 255);
}

/* Categorical colour of expert e of E (hue wheel, alternating lightness). */
static void ar_cat(int e, int E, char *out, size_t n)
{
    snprintf(out, n, "hsl(%d,70%%,%d%%)", E > 0 ? (int)(360.0 * e / E) : 0, e % 2 ? 38 : 58);
}

static void ar_svg_open(FILE *o, const char *id, int run, int w, int h, const char *title)
{
    fprintf(o, "<figure><svg id=\"%s-%d\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\"><title>", id, run, w, h, w, h);
    an__html_esc(o, title);
    fprintf(o, "</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>", w, h);
}

static void ar_svg_close(FILE *o, const char *caption)
{
    fprintf(o, "</svg><figcaption>");
    an__html_esc(o, caption);
    fprintf(o, "</figcaption></figure>\n");
}

static void ar_svg_missing(FILE *o, const char *id, int run, const char *title, const char *why)
{
    ar_svg_open(o, id, run, 560, 60, title);
    fprintf(o, "<text x=\"10\" y=\"35\" class=\"miss\">missing: ");
    an__html_esc(o, why);
    fprintf(o, "</text>");
    ar_svg_close(o, title);
}

static void ar_text(FILE *o, double x, double y, const char *anchor, const char *extra,
                    const char *s)
{
    fprintf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra ? extra : "");
    an__html_esc(o, s);
    fprintf(o, "</text>");
}

/* Axes of a panel at (x, y, w, h): y ticks 0..ymax (5), labels. */
/*
 * A round axis maximum >= v with 4 equal round ticks: 4 x step, step one of 1, 2, 2.5, 5
 * times a power of ten (0.4 -> 0.4, 0.37 -> 0.4, 5.2 -> 6, 113 -> 200). 1 for v <= 0.
 */
static double ar_nice_max(double v)
{
    static const double m[4] = {1, 2, 2.5, 5};
    double              raw, p;
    int                 i;

    if (!(v > 0) || !isfinite(v))
        return 1;
    raw = v / 4;
    p = pow(10, floor(log10(raw)));
    for (i = 0; i < 4; i++)
        if (m[i] * p >= raw * (1 - 1e-12))
            return 4 * m[i] * p;
    return 40 * p;
}

static void ar_axes(FILE *o, double x, double y, double w, double h, double ymax,
                    const char *yfmt, const char *ylabel, const char *xlabel)
{
    int  i;
    char buf[64];

    fprintf(o, "<g class=\"ax\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, y, x, y + h, x, y + h,
            x + w, y + h);
    for (i = 0; i <= 4; i++) {
        double ty = y + h - h * i / 4.0;
        snprintf(buf, sizeof(buf), yfmt, ymax * i / 4.0);
        fprintf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x - 3, ty, x, ty);
        ar_text(o, x - 5, ty + 4, "end", NULL, buf);
    }
    fprintf(o, "</g>");
    if (ylabel) {
        fprintf(o, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\">",
                x - 42, y + h / 2);
        an__html_esc(o, ylabel);
        fprintf(o, "</text>");
    }
    if (xlabel)
        ar_text(o, x + w / 2, y + h + 30, "middle", NULL, xlabel);
}

static double ar_arr_max(const cJSON *a)
{
    const cJSON *v;
    double       m = 0;

    cJSON_ArrayForEach(v, a)
        if (cJSON_IsNumber(v) && v->valuedouble > m)
            m = v->valuedouble;
    return m;
}

/* x tick labels 0..n-1 (at most ~8 labels) under a panel; first value `base`, step `step`. */
static void ar_xticks(FILE *o, double x, double y, double w, int n, double base, double step)
{
    int  i, every = n > 8 ? (n + 7) / 8 : 1;
    char buf[32];

    for (i = 0; i < n; i += every) {
        snprintf(buf, sizeof(buf), "%.0f", base + step * i);
        ar_text(o, x + w * (i + 0.5) / n, y + 14, "middle", NULL, buf);
    }
}

static void ar_chart_load(FILE *o, const cJSON *run, int ri)
{
    const cJSON *s = an__sec(run, "utilisation"), *ly;
    int          nl, nall, i = 0, E, W = 600, PH = 170, q, pick[AR_MAX_PANELS];
    double       fair;
    char         cap[200];

    if (!an__ok(s)) {
        ar_svg_missing(o, "load-hist", ri, "expert load per layer", an_str(s, "missing"));
        return;
    }
    nall = cJSON_GetArraySize(an__get(s, "layers"));
    nl = nall > AR_MAX_PANELS ? AR_MAX_PANELS : nall;
    /* deep models: the AR_MAX_PANELS layers with the highest max/mean, in layer order */
    for (q = 0; q < nl; q++)
        pick[q] = -1;
    for (q = 0; q < nl; q++) {
        int j, best = -1;
        for (j = 0; j < nall; j++) {
            int z, taken = 0;
            for (z = 0; z < q; z++)
                taken |= pick[z] == j;
            if (!taken && (best < 0 || an_num(cJSON_GetArrayItem(an__get(s, "layers"), j), "max_mean") >
                                           an_num(cJSON_GetArrayItem(an__get(s, "layers"), best), "max_mean")))
                best = j;
        }
        pick[q] = best;
    }
    fair = an_num(s, "fair_share");
    ar_svg_open(o, "load-hist", ri, W, 30 + nl * (PH + 50), "expert load per layer");
    q = -1;
    cJSON_ArrayForEach(ly, an__get(s, "layers")) {
        const cJSON *sh = an__get(ly, "share"), *v;
        double       ymax = ar_nice_max(fmax(ar_arr_max(sh), fair) * 1.05), x0 = 70,
                     y0 = 30 + i * (PH + 50), w = W - 100;
        int          e = 0, z, shown = 0;
        char         t[96];
        q++;
        for (z = 0; z < nl; z++)
            shown |= pick[z] == q;
        if (!shown)
            continue;
        E = cJSON_GetArraySize(sh);
        snprintf(t, sizeof(t), "layer %g: share of pairs per expert (max/mean %.2f)", an_num(ly, "layer"),
                 an_num(ly, "max_mean"));
        ar_text(o, x0, y0 - 8, "start", " class=\"ttl\"", t);
        ar_axes(o, x0, y0, w, PH, ymax * 100, "%.1f%%", "share", "expert");
        cJSON_ArrayForEach(v, sh) {
            double bh = cJSON_IsNumber(v) ? PH * v->valuedouble / ymax : 0;
            fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4878a8\"/>",
                    x0 + w * e / E + 0.5, y0 + PH - bh, fmax(w / E - 1, 0.5), bh);
            e++;
        }
        ar_xticks(o, x0, y0 + PH, w, E, 0, 1);
        fprintf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
                   "stroke-dasharray=\"5,3\"/>", x0, x0 + w, y0 + PH - PH * fair / ymax, y0 + PH - PH * fair / ymax);
        ar_text(o, x0 + w, y0 + PH - PH * fair / ymax - 4, "end", " fill=\"#d62728\"", "fair share");
        i++;
    }
    if (nall > nl)
        snprintf(cap, sizeof(cap), "Share of (token, expert) pairs per expert, all steps; dashed line: "
                 "fair share 1/E. The %d of %d layers with the highest max/mean.", nl, nall);
    else
        snprintf(cap, sizeof(cap), "Share of (token, expert) pairs per expert, all steps; dashed line: "
                 "fair share 1/E.");
    ar_svg_close(o, cap);
}

static void ar_legend_seq(FILE *o, double x, double y, const char *lo, const char *hi)
{
    int  i;
    char c[8];

    for (i = 0; i < 10; i++) {
        ar_seq(i / 9.0, c);
        fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"%s\" stroke=\"#999\" stroke-width=\"0.3\"/>",
                x + 12 * i, y, c);
    }
    ar_text(o, x - 4, y + 9, "end", NULL, lo);
    ar_text(o, x + 124, y + 9, "start", NULL, hi);
}

static void ar_chart_heatmap(FILE *o, const cJSON *run, int ri)
{
    const cJSON *s = an__sec(run, "utilisation"), *hm, *rows, *row, *v, *bs, *ly;
    int          E, nb, e, b, W = 760, PH = 200, np, i = 0, H;
    double       mx, x0 = 70, w = W - 100;
    char         c[8], lo[32], hi[64], t[96];

    if (!an__ok(s)) {
        ar_svg_missing(o, "expert-step-heatmap", ri, "expert x step heatmap", an_str(s, "missing"));
        return;
    }
    hm = an__get(s, "heatmap");
    bs = an__get(hm, "bin_start_step");
    nb = cJSON_GetArraySize(bs);
    np = cJSON_GetArraySize(an__get(hm, "layers"));
    mx = an_num(hm, "max");
    if (np == 0 || nb == 0) {
        ar_svg_missing(o, "expert-step-heatmap", ri, "expert x step heatmap", "no layer with pairs");
        return;
    }
    H = 30 + np * (PH + 50) + 30;
    ar_svg_open(o, "expert-step-heatmap", ri, W, H, "expert x step heatmap");
    cJSON_ArrayForEach(ly, an__get(hm, "layers")) {
        double y0 = 30 + i * (PH + 50), h = PH;
        rows = an__get(ly, "values");
        E = cJSON_GetArraySize(rows);
        snprintf(t, sizeof(t), "layer %g", an_num(ly, "layer"));
        ar_text(o, x0, y0 - 8, "start", " class=\"ttl\"", t);
        e = 0;
        cJSON_ArrayForEach(row, rows) {
            b = 0;
            cJSON_ArrayForEach(v, row) {
                ar_seq(mx > 0 && cJSON_IsNumber(v) ? v->valuedouble / mx : 0, c);
                fprintf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>",
                        x0 + w * b / nb, y0 + h * e / E, w / nb + 0.3, h / E + 0.3, c);
                b++;
            }
            e++;
        }
        fprintf(o, "<g class=\"ax\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\"/></g>", x0, y0, w, h);
        for (e = 0; e < E; e += (E > 8 ? (E + 7) / 8 : 1)) {
            snprintf(lo, sizeof(lo), "%d", e);
            ar_text(o, x0 - 5, y0 + h * (e + 0.5) / E + 4, "end", NULL, lo);
        }
        for (b = 0; b < nb; b += (nb > 8 ? (nb + 7) / 8 : 1))
            if (cJSON_IsNumber(cJSON_GetArrayItem(bs, b))) {
                snprintf(lo, sizeof(lo), "%.0f", cJSON_GetArrayItem(bs, b)->valuedouble);
                ar_text(o, x0 + w * b / nb, y0 + h + 14, "middle", NULL, lo);
            }
        fprintf(o, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\">expert</text>", x0 - 40, y0 + h / 2);
        i++;
    }
    ar_text(o, x0 + w / 2, H - 40, "middle", NULL, "step (start of bin)");
    snprintf(hi, sizeof(hi), "%.4g pairs per step", mx);
    ar_legend_seq(o, x0 + 20, H - 22, "0", hi);
    ar_svg_close(o, "Mean pairs per step routed to each expert (rows) in each step bin (columns), one "
                    "panel per layer (the layers with the highest max/mean), one colour scale for all panels.");
}

static void ar_chart_routing_map(FILE *o, const cJSON *run, int ri)
{
    const cJSON *s = an__sec(run, "routing_map"), *ex, *row, *v;
    int          n, L, t = 0, l, E = (int)an_num(an__get(run, "config"), "experts"), W = 760, H;
    double       x0 = 70, y0 = 20, w = W - 100, h;
    char         c[40], buf[32];

    if (!an__ok(s)) {
        ar_svg_missing(o, "routing-map", ri, "routing map", an_str(s, "missing"));
        return;
    }
    ex = an__get(s, "experts");
    n = cJSON_GetArraySize(ex);
    L = n > 0 ? cJSON_GetArraySize(cJSON_GetArrayItem(ex, 0)) : 0;
    h = L * 18.0;
    H = (int)(h + 110);
    ar_svg_open(o, "routing-map", ri, W, H, "routing map");
    cJSON_ArrayForEach(row, ex) {
        l = 0;
        cJSON_ArrayForEach(v, row) {
            int e = cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
            ar_cat(e, E, c, sizeof(c));
            fprintf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"17\" fill=\"%s\"><title>token %d layer %d expert %d</title></rect>",
                    x0 + w * t / n, y0 + 18.0 * l, w / n - 0.5, c, t, l, e);
            l++;
        }
        t++;
    }
    for (l = 0; l < L; l++) {
        const cJSON *id = cJSON_GetArrayItem(an__get(s, "layer_ids"), l);
        snprintf(buf, sizeof(buf), "%.0f", cJSON_IsNumber(id) ? id->valuedouble : (double)l);
        ar_text(o, x0 - 5, y0 + 18.0 * l + 13, "end", NULL, buf);
    }
    ar_xticks(o, x0, y0 + h, w, n, 0, 1);
    fprintf(o, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\">layer</text>", x0 - 40, y0 + h / 2);
    ar_text(o, x0 + w / 2, y0 + h + 32, "middle", NULL, "sampled token (order in routes/)");
    for (l = 0; l < E && l < 64; l++) {
        ar_cat(l, E, c, sizeof(c));
        fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"10\" fill=\"%s\"/>",
                x0 + 20 + l * (400.0 / (E < 64 ? E : 64)), y0 + h + 48, 400.0 / (E < 64 ? E : 64), c);
    }
    ar_text(o, x0 + 15, y0 + h + 57, "end", NULL, "expert 0");
    snprintf(buf, sizeof(buf), "expert %d", (E < 64 ? E : 64) - 1);
    ar_text(o, x0 + 425, y0 + h + 57, "start", NULL, buf);
    ar_svg_close(o, "Top-1 expert (colour) of each sampled token (columns) in each layer (rows, by "
                    "layer id); one colour per expert id, the same in every layer.");
}

static void ar_chart_traffic(FILE *o, const cJSON *run, int ri)
{
    const cJSON *m = an__get(run, "traffic_matrix_bytes"), *row, *v;
    int          P, p = 0, q, W = 520, H = 520;
    double       mx = 0, x0 = 70, y0 = 20, w = 400, h = 400;
    char         c[8], buf[48];

    if (!m || (P = cJSON_GetArraySize(m)) == 0) {
        ar_svg_missing(o, "rank-traffic", ri, "rank x rank traffic",
                       "accumulated/traffic_matrix absent or too many ranks to draw");
        return;
    }
    cJSON_ArrayForEach(row, m) {
        q = 0;
        cJSON_ArrayForEach(v, row) {
            if (p != q && v->valuedouble > mx)
                mx = v->valuedouble;
            q++;
        }
        p++;
    }
    ar_svg_open(o, "rank-traffic", ri, W, H, "rank x rank traffic");
    p = 0;
    cJSON_ArrayForEach(row, m) {
        q = 0;
        cJSON_ArrayForEach(v, row) {
            ar_seq(mx > 0 ? v->valuedouble / mx : 0, c);
            fprintf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" stroke=\"#fff\" stroke-width=\"%.1f\"><title>%d -&gt; %d: %.0f bytes</title></rect>",
                    x0 + w * q / P, y0 + h * p / P, w / P, h / P, c, P <= 32 ? 1.0 : 0.0, p, q,
                    v->valuedouble);
            q++;
        }
        p++;
    }
    fprintf(o, "<g class=\"ax\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\"/></g>", x0, y0, w, h);
    for (p = 0; p < P; p += (P > 16 ? (P + 15) / 16 : 1)) {
        snprintf(buf, sizeof(buf), "%d", p);
        ar_text(o, x0 - 5, y0 + h * (p + 0.5) / P + 4, "end", NULL, buf);
        ar_text(o, x0 + w * (p + 0.5) / P, y0 + h + 14, "middle", NULL, buf);
    }
    fprintf(o, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\">sender rank</text>", x0 - 40, y0 + h / 2);
    ar_text(o, x0 + w / 2, y0 + h + 32, "middle", NULL, "receiver rank");
    snprintf(buf, sizeof(buf), "%.3g bytes (off-diagonal max)", mx);
    ar_legend_seq(o, x0 + 20, H - 22, "0", buf);
    ar_svg_close(o, "Payload bytes sent from rank (row) to rank (column) over the run; diagonal = self.");
}

static void ar_chart_phases(FILE *o, const cJSON *run, int ri)
{
    const cJSON *s = an__sec(run, "communication"), *pr, *cn, *row, *v;
    int          P, nc, p = 0, c, tot_col = -1, W = 760, H = 330, parent[AR_MAX_PHASES];
    double       mx = 0, x0 = 80, y0 = 20, w = 560, h = 230;
    char         col[40];

    pr = an__get(s, "phase_per_rank");
    cn = an__get(s, "phase_columns");
    if (!an__ok(s) || !pr || !cn || (P = cJSON_GetArraySize(pr)) == 0) {
        ar_svg_missing(o, "phase-breakdown", ri, "phase time per rank",
                       an__ok(s) ? an_str(s, "phases_missing") : an_str(s, "missing"));
        return;
    }
    if (P > AR_MAX_RANKS)
        P = AR_MAX_RANKS;
    nc = cJSON_GetArraySize(cn);
    for (c = 0; c < nc; c++)
        if (strcmp(cJSON_GetArrayItem(cn, c)->valuestring, "total") == 0)
            tot_col = c;
    /* sub-phases ("<phase>_<part>": dispatch_inter inside dispatch) are drawn inside their
     * phase's segment, never stacked on top of it */
    for (c = 0; c < nc && c < AR_MAX_PHASES; c++) {
        const char *nm = cJSON_GetArrayItem(cn, c)->valuestring;
        int         q;
        parent[c] = -1;
        for (q = 0; q < nc; q++) {
            const char *pn = cJSON_GetArrayItem(cn, q)->valuestring;
            size_t      n = strlen(pn);
            if (q != c && strncmp(nm, pn, n) == 0 && nm[n] == '_')
                parent[c] = q;
        }
    }
    cJSON_ArrayForEach(row, pr) {
        double sum = 0;
        c = 0;
        cJSON_ArrayForEach(v, row) {
            if (c != tot_col && c < AR_MAX_PHASES && parent[c] < 0 && cJSON_IsNumber(v))
                sum += v->valuedouble;
            c++;
        }
        mx = fmax(mx, sum);
    }
    mx = ar_nice_max(mx * 1.02);
    ar_svg_open(o, "phase-breakdown", ri, W, H, "phase time per rank");
    ar_axes(o, x0, y0, w, h, mx, "%.3g", "seconds (sum over steps, layers)", "rank");
    cJSON_ArrayForEach(row, pr) {
        double acc = 0, base[AR_MAX_PHASES];
        if (p >= P)
            break;
        c = 0;
        cJSON_ArrayForEach(v, row) {
            if (c < AR_MAX_PHASES && c != tot_col && parent[c] < 0 && cJSON_IsNumber(v)) {
                double bh = h * v->valuedouble / mx;
                ar_cat(c, nc, col, sizeof(col));
                fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>rank %d ",
                        x0 + w * p / P + 1, y0 + h - acc - bh, fmax(w / P - 2, 0.5), bh, col, p);
                an__html_esc(o, cJSON_GetArrayItem(cn, c)->valuestring);
                fprintf(o, " %.4g s</title></rect>", v->valuedouble);
                base[c] = acc;
                acc += bh;
            }
            c++;
        }
        /* sub-phases: a narrower bar at the bottom of their phase's segment */
        c = 0;
        cJSON_ArrayForEach(v, row) {
            if (c < AR_MAX_PHASES && parent[c] >= 0 && parent[c] != tot_col && cJSON_IsNumber(v)) {
                double bh = h * v->valuedouble / mx;
                ar_cat(c, nc, col, sizeof(col));
                fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#000\" stroke-width=\"0.5\"><title>rank %d %s %.4g s (part of %s)</title></rect>",
                        x0 + w * p / P + 1 + fmax(w / P - 2, 0.5) / 4, y0 + h - base[parent[c]] - bh,
                        fmax(w / P - 2, 0.5) / 2, bh, col, p,
                        cJSON_GetArrayItem(cn, c)->valuestring, v->valuedouble,
                        cJSON_GetArrayItem(cn, parent[c])->valuestring);
            }
            c++;
        }
        p++;
    }
    ar_xticks(o, x0, y0 + h, w, P, 0, 1);
    for (c = 0; c < nc; c++) {
        if (c == tot_col)
            continue;
        ar_cat(c, nc, col, sizeof(col));
        fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>", x0 + w + 20, y0 + 20.0 * c, col);
        ar_text(o, x0 + w + 37, y0 + 20.0 * c + 10, "start", NULL, cJSON_GetArrayItem(cn, c)->valuestring);
    }
    ar_svg_close(o, "Wall time per phase on each rank, stacked (the total column is their sum plus "
                    "overhead); a sub-phase (e.g. dispatch_inter) is the narrow bar inside its phase.");
}

/* A line of series values over [0, n) into a panel with y range [0, ymax]. */
static void ar_line(FILE *o, const cJSON *ser, double x0, double y0, double w, double h,
                    double ymax, double scale, const char *colour)
{
    const cJSON *v;
    int          n = cJSON_GetArraySize(ser), i = 0, pen = 0;

    fprintf(o, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" d=\"", colour);
    cJSON_ArrayForEach(v, ser) {
        if (cJSON_IsNumber(v)) {
            double x = x0 + (n > 1 ? w * i / (n - 1) : w / 2), y = y0 + h - h * fmin(v->valuedouble * scale / ymax, 1.0);
            fprintf(o, "%s%.1f %.1f ", pen ? "L" : "M", x, y);
            pen = 1;
        } else {
            pen = 0;
        }
        i++;
    }
    fprintf(o, "\"/>");
}

static void ar_chart_drop_entropy(FILE *o, const cJSON *run, int ri)
{
    const cJSON *cap = an__sec(run, "capacity"), *ent = an__sec(run, "entropy"), *ds, *es;
    double       x0 = 80, w = 620, h = 140, mx;
    char         lbl[64];
    double       steps = an_num(run, "steps_in_file");

    if (!an__ok(cap) && !an__ok(ent)) {
        ar_svg_missing(o, "drop-entropy", ri, "drop rate and entropy over steps", an_str(ent, "missing"));
        return;
    }
    ar_svg_open(o, "drop-entropy", ri, 760, 420, "drop rate and entropy over steps");
    ds = an__get(cap, "series_drop_rate");
    if (an__ok(cap) && ds) {
        mx = ar_arr_max(ds) * 100;
        mx = ar_nice_max(mx * 1.02);
        ar_text(o, x0, 22, "start", " class=\"ttl\"", "drop rate (% of pairs)");
        ar_axes(o, x0, 30, w, h, mx, "%.2g%%", "drop rate", NULL);
        ar_line(o, ds, x0, 30, w, h, mx, 100, "#d62728");
    } else {
        ar_text(o, x0, 60, "start", " class=\"miss\"", "missing: drop rate (steps/dropped absent or empty run)");
    }
    es = an__get(ent, "series_entropy_norm");
    if (an__ok(ent) && es) {
        ar_text(o, x0, 222, "start", " class=\"ttl\"", "routing entropy, normalised (1 = even)");
        ar_axes(o, x0, 230, w, h, 1.0, "%.2f", "entropy / log2 E", "step");
        ar_line(o, es, x0, 230, w, h, 1.0, 1, "#1f77b4");
    } else {
        ar_text(o, x0, 260, "start", " class=\"miss\"", "missing: entropy");
    }
    snprintf(lbl, sizeof(lbl), "0");
    ar_text(o, x0, 230 + h + 14, "middle", NULL, lbl);
    snprintf(lbl, sizeof(lbl), "%.0f", steps > 0 ? steps - 1 : 0);
    ar_text(o, x0 + w, 230 + h + 14, "middle", NULL, lbl);
    ar_svg_close(o, "Per step bin: dropped / routed pairs (top) and mean normalised load entropy over layers (bottom).");
}

static void ar_hist(FILE *o, const cJSON *counts, double x0, double y0, double w, double h,
                    const char *title, const char *colour)
{
    const cJSON *v;
    int          n = cJSON_GetArraySize(counts), i = 0;
    double       mx = ar_arr_max(counts);
    char         buf[16];

    mx = ar_nice_max(mx * 1.02);
    ar_text(o, x0, y0 - 8, "start", " class=\"ttl\"", title);
    ar_axes(o, x0, y0, w, h, mx, "%.0f", "step x layer samples", NULL);
    cJSON_ArrayForEach(v, counts) {
        double bh = h * v->valuedouble / mx;
        fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
                x0 + w * i / n + 0.5, y0 + h - bh, w / n - 1, bh, colour);
        i++;
    }
    for (i = 0; i <= 4; i++) {
        snprintf(buf, sizeof(buf), "%.2f", i / 4.0);
        ar_text(o, x0 + w * i / 4.0, y0 + h + 14, "middle", NULL, buf);
    }
}

static void ar_chart_gate(FILE *o, const cJSON *run, int ri)
{
    const cJSON *s = an__sec(run, "gating"), *hs;

    if (!an__ok(s)) {
        ar_svg_missing(o, "gate-confidence", ri, "gate confidence", an_str(s, "missing"));
        return;
    }
    hs = an__get(s, "histogram");
    ar_svg_open(o, "gate-confidence", ri, 760, 250, "gate confidence");
    ar_hist(o, an__get(hs, "top1_prob"), 80, 30, 280, 170, "top-1 probability", "#4878a8");
    if (an__get(hs, "top1_top2_margin"))
        ar_hist(o, an__get(hs, "top1_top2_margin"), 450, 30, 280, 170, "top-1 minus top-2 probability", "#e1812c");
    ar_text(o, 220, 240, "middle", NULL, "probability (mean over the step's tokens)");
    ar_text(o, 590, 240, "middle", NULL, "margin");
    ar_svg_close(o, "Distribution over step x layer samples of the gate's mean top-1 probability and top1-top2 margin.");
}

/* The load-balancing remedies (docs/analysis.md): one row per remedy, its kind and text. */
static void ar_html_remedies(FILE *o, const cJSON *run)
{
    const cJSON *s = an__sec(run, "balance_remedies"), *x;

    if (!an__ok(s))
        return;
    fprintf(o, "<h3>Load-balancing remedies</h3>\n<table id=\"balance-remedies\"><tr><th>remedy</th>"
               "<th>kind</th><th>what the log tells</th></tr>\n");
    cJSON_ArrayForEach(x, an__get(s, "remedies")) {
        fprintf(o, "<tr><td>");
        an__html_esc(o, an_str(x, "id"));
        fprintf(o, "</td><td>");
        an__html_esc(o, an_str(x, "kind"));
        fprintf(o, "</td><td>");
        an__html_esc(o, an_str(x, "text"));
        fprintf(o, "</td></tr>\n");
    }
    fprintf(o, "</table>\n");
}

static void ar_html_table_findings(FILE *o, const cJSON *run)
{
    const cJSON *x;

    fprintf(o, "<h3>Findings</h3><table><tr><th>severity</th><th>analysis</th><th>finding</th></tr>\n");
    cJSON_ArrayForEach(x, an__get(run, "findings")) {
        fprintf(o, "<tr class=\"%s\"><td>%s</td><td>", an_str(x, "severity"), an_str(x, "severity"));
        an__html_esc(o, an_str(x, "analysis"));
        fprintf(o, "</td><td>");
        an__html_esc(o, an_str(x, "title"));
        fprintf(o, "</td></tr>\n");
    }
    fprintf(o, "</table>\n<h3>Recommendations</h3>\n");
    if (cJSON_GetArraySize(an__get(run, "recommendations")) == 0) {
        fprintf(o, "<p>None: no change showed a gain when the recorded loads were replayed.</p>\n");
        return;
    }
    fprintf(o, "<table><tr><th>recommendation</th><th>metric</th><th>current</th><th>projected</th>"
               "<th>change</th><th>complexity</th><th>evidence</th></tr>\n");
    cJSON_ArrayForEach(x, an__get(run, "recommendations")) {
        const cJSON *im = an__get(x, "impact");
        fprintf(o, "<tr><td>");
        an__html_esc(o, an_str(x, "title"));
        fprintf(o, "</td><td>");
        an__html_esc(o, an_str(im, "metric"));
        fprintf(o, "</td><td>%.4g</td><td>%.4g</td><td>%+.1f%%</td><td>", an_num(im, "current"),
                an_num(im, "projected"), an_num(im, "change_pct"));
        an__html_esc(o, an_str(x, "complexity"));
        fprintf(o, "</td><td>");
        an__html_esc(o, an_str(x, "evidence"));
        fprintf(o, "</td></tr>\n");
    }
    fprintf(o, "</table>\n");
}

int an_render_html(const cJSON *root, FILE *o)
{
    const cJSON *run;
    int          ri = 0;

    fprintf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<title>moerun routing-efficiency report</title><style>\n"
               "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1100px}"
               "svg{font-size:11px;border:1px solid #ddd;margin:4px 0}"
               "svg .ax line,svg .ax rect{stroke:#444;stroke-width:1}"
               "svg .ttl{font-weight:bold}svg .miss{fill:#a00;font-size:13px}"
               "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
               "tr.critical td:first-child{background:#f4b6b6}tr.warning td:first-child{background:#fbe3a6}"
               "tr.info td:first-child{background:#dbe9f6}figure{margin:0.6em 0}figcaption{font-size:12px;color:#555}"
               "\n</style></head><body>\n<h1>moerun routing-efficiency report</h1>\n"
               "<p>Formulas and thresholds: docs/analysis.md. Charts with absent data say \"missing\".</p>\n");
    cJSON_ArrayForEach(run, an__get(root, "runs")) {
        fprintf(o, "<h2>Run %d: ", ri);
        an__html_esc(o, an_str(run, "file"));
        fprintf(o, "</h2>\n<p>status ");
        an__html_esc(o, an_str(run, "status"));
        fprintf(o, ", %.0f steps, %s experts, top-k %s, %s layers, %s ranks on %s node(s)</p>\n",
                an_num(run, "steps_in_file"), an__f(an__get(run, "config"), "experts", "%g"),
                an__f(an__get(run, "config"), "top_k", "%g"), an__f(an__get(run, "config"), "layers", "%g"),
                an__f(run, "ranks", "%g"), an__f(run, "nodes", "%g"));
        ar_html_table_findings(o, run);
        ar_html_remedies(o, run);
        fprintf(o, "<h3>Expert load</h3>\n");
        ar_chart_load(o, run, ri);
        ar_chart_heatmap(o, run, ri);
        fprintf(o, "<h3>Routing map</h3>\n");
        ar_chart_routing_map(o, run, ri);
        fprintf(o, "<h3>Communication</h3>\n");
        ar_chart_traffic(o, run, ri);
        ar_chart_phases(o, run, ri);
        fprintf(o, "<h3>Dropping and entropy over steps</h3>\n");
        ar_chart_drop_entropy(o, run, ri);
        fprintf(o, "<h3>Gate confidence</h3>\n");
        ar_chart_gate(o, run, ri);
        ri++;
    }
    if (ri > 1) {
        const cJSON *cn = an__get(an__get(root, "comparison"), "columns"), *row, *v;
        fprintf(o, "<h2>Comparison</h2><table id=\"comparison\"><tr>");
        cJSON_ArrayForEach(v, cn) {
            fprintf(o, "<th>");
            an__html_esc(o, v->valuestring);
            fprintf(o, "</th>");
        }
        fprintf(o, "</tr>\n");
        cJSON_ArrayForEach(row, an__get(an__get(root, "comparison"), "rows")) {
            fprintf(o, "<tr>");
            cJSON_ArrayForEach(v, row) {
                fprintf(o, "<td>");
                if (cJSON_IsString(v))
                    an__html_esc(o, v->valuestring);
                else if (cJSON_IsNumber(v))
                    fprintf(o, "%.4g", v->valuedouble);
                else
                    fprintf(o, "missing");
                fprintf(o, "</td>");
            }
            fprintf(o, "</tr>\n");
        }
        fprintf(o, "</table>\n");
    }
    an_render_diff_html(root, o);
    fprintf(o, "</body></html>\n");
    return ferror(o) ? -1 : 0;
}
