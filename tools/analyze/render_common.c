/*
 * tools/analyze/render_common.c — helpers shared by the three renderings of a report
 * (render_term.c, render_md.c, render_html.c): report lookups and number formatting.
 *
 * What always holds:
 *  1. They only read the cJSON report (analyze_run.c builds it); nothing is computed anew.
 *  2. A value that is null or absent is reported as such ("missing", NULL, 0), never invented.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analyze_int.h"

const cJSON *an__get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

const cJSON *an__sec(const cJSON *run, const char *name)
{
    return an__get(an__get(run, "analyses"), name);
}

int an__ok(const cJSON *sec)
{
    return sec && strcmp(an_str(sec, "status"), "ok") == 0;
}

/* o[key] formatted with fmt, or "missing" when it is null or absent (e.g. ranks, top_k and
 * phase times of an imported routing log). Rotating buffers: up to 16 in one printf. */
const char *an__f(const cJSON *o, const char *key, const char *fmt)
{
    static char  buf[16][48];
    static int   next;
    const cJSON *v = an__get(o, key);
    char        *b = buf[next++ % 16];

    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return "missing";
    snprintf(b, sizeof(buf[0]), fmt, v->valuedouble);
    return b;
}
