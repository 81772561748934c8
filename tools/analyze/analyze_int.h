/*
 * tools/analyze/analyze_int.h — declarations private to the analyser library (tools/analyze):
 * what the analysis files and the rendering files share. Not installed, not used outside
 * tools/analyze; the public interface is analyze.h.
 *
 * What always holds:
 *  1. Names shared between files here carry the an__ prefix (or their existing an_ name).
 *  2. There is one escaping function per output format: an__html_esc for HTML (render_html.c),
 *     moe_esc_term for the terminal (render_term.c), ar_md for Markdown (render_md.c).
 */
#ifndef MOERUN_TOOLS_ANALYZE_INT_H
#define MOERUN_TOOLS_ANALYZE_INT_H

#include <stdio.h>

#include <cJSON.h>

#include "analyze.h"

/* ---------------------------------------------------------------- renderers ----------- */

#define AR_MAX_RANKS 64 /* ranks drawn in the traffic heatmap and phase bars, listed in tables */

/* render_common.c: o[k]; run's analyses[name]; 1 if the section's status is "ok"; o[key]
 * formatted with fmt, or "missing" when null or absent (rotating buffers: up to 16 in one
 * printf). */
const cJSON *an__get(const cJSON *o, const char *k);
const cJSON *an__sec(const cJSON *run, const char *name);
int          an__ok(const cJSON *sec);
const char  *an__f(const cJSON *o, const char *key, const char *fmt);

/* render_html.c: s as HTML text (specials as entities, controls as U+FFFD). */
void an__html_esc(FILE *o, const char *s);

#endif /* MOERUN_TOOLS_ANALYZE_INT_H */
