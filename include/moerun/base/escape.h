/*
 * include/moerun/base/escape.h — text from files (attributes, log fields, paths) written to
 * a terminal (header-only). Terminal is one of the three output formats of the tools; the
 * HTML and Markdown escapers live with their renderer (tools/analyze/render_html.c, render_md.c).
 *
 * What always holds: moe_esc_term writes every byte of s except those a terminal would act
 * on: C0 controls other than newline and tab, DEL, and the UTF-8 encoding of the C1
 * controls (U+0080..U+009F, e.g. CSI) are written as visible \xHH / \u00HH escapes. So a
 * string carrying ESC [ ... sequences cannot recolour, retitle or rewrite the terminal.
 */
#ifndef MOERUN_BASE_ESCAPE_H
#define MOERUN_BASE_ESCAPE_H

#include <stdio.h>

/* Writes s to o with terminal controls escaped (see above). */
static inline void moe_esc_term(FILE *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    for (; *p; p++) {
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
            fprintf(o, "\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            fprintf(o, "\\u%04x", *++p);
        else
            fputc(*p, o);
    }
}

/* The same for a one-line message: newlines and tabs are escaped too. */
static inline void moe_esc_term_line(FILE *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    for (; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(o, "\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            fprintf(o, "\\u%04x", *++p);
        else
            fputc(*p, o);
    }
}

#endif /* MOERUN_BASE_ESCAPE_H */
