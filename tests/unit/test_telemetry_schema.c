/*
 * tests/unit/test_telemetry_schema.c — the telemetry schema (include/moerun/telemetry_schema.h)
 * is well formed, docs/telemetry.md holds exactly the tables generated from it, and a
 * schema-1 file still reads.
 *
 * Usage: test_telemetry_schema [DOCS.md [V1_FILE.h5]]
 *        test_telemetry_schema --update-doc DOCS.md   (rewrites the generated block in place)
 *
 * Checks:
 *  - the table: unique paths under their group, rank 1..4 padded with none, every dimension
 *    and element type known, appended datasets only by their first dimension, units (or
 *    "columns" on a column dataset, "" only on strings and the events) and a description on
 *    every dataset; steps/step and steps/routed required;
 *  - columns: names unique within their dataset, a unit each; kind names unique and shorter
 *    than their fixed-length member; the event record's file size is the sum of its members;
 *  - docs: the block between "<!-- schema:begin" and "<!-- schema:end -->" in
 *    docs/telemetry.md equals moe_tel_schema_markdown() byte for byte (on a mismatch the
 *    generated block is written to telemetry_schema.md.generated);
 *  - schema 1: tests/fuzz/corpus/telemetry_reader/small.h5 (written before dimension labels,
 *    per-column units and kind_name) opens, and its events get their kind names from the
 *    kind_names attribute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moerun/telemetry_schema.h"
#include "telemetry_reader.h"
#include "testlib.h"

#define BEGIN_MARK "<!-- schema:begin"
#define END_MARK   "<!-- schema:end -->\n"

static void test_datasets(void)
{
    int i, j, app, has_step = 0, has_routed = 0;

    for (i = 0; i < MOE_TEL_DS_COUNT; i++) {
        const moe_tel_dset_t *d = moe_tel_dset(i);
        size_t                glen = strlen(d->group);
        int                   strings = d->elem == MOE_TEL_ELEM_S64 || d->elem == MOE_TEL_ELEM_EVENT;

        ASSERT_TRUE(d->rank >= 1 && d->rank <= 4);
        for (j = 0; j < 4; j++)
            if (j < d->rank)
                ASSERT_TRUE(moe_tel_dim(d->dims[j]) != NULL);
            else
                ASSERT_EQ_INT(d->dims[j], MOE_TEL_DIM_NONE);
        ASSERT_TRUE(d->elem >= 0 && d->elem < MOE_TEL_ELEM_COUNT && d->elem != MOE_TEL_ELEM_KIND);
        if (glen > 0) {
            ASSERT_TRUE(strncmp(d->path, d->group, glen) == 0 && d->path[glen] == '/');
            ASSERT_TRUE(strchr(d->path + glen + 1, '/') == NULL);
        } else {
            ASSERT_TRUE(strchr(d->path, '/') == NULL);
        }
        for (j = 0; j < i; j++)
            if (strcmp(moe_tel_dset(j)->path, d->path) == 0)
                ASSERT_EQ_STR(d->path, "(a path used twice)");
        ASSERT_EQ_INT(moe_tel_dset_find(d->path), i);
        /* only the first dimension may grow */
        app = moe_tel_dset_appended(d);
        for (j = 1; j < d->rank; j++)
            ASSERT_TRUE(d->dims[j] != MOE_TEL_DIM_STEP && d->dims[j] != MOE_TEL_DIM_ROUTE &&
                        d->dims[j] != MOE_TEL_DIM_EVENT);
        /* a column dimension is the last */
        for (j = 0; j + 1 < d->rank; j++) {
            const moe_tel_column_t *c;
            ASSERT_EQ_INT(moe_tel_dim_columns(d->dims[j], &c), 0);
        }
        if (moe_tel_dset_column_dim(d) != MOE_TEL_DIM_NONE)
            ASSERT_EQ_STR(d->units, "columns");
        else if (strings)
            ASSERT_EQ_STR(d->units, "");
        else
            ASSERT_TRUE(d->units[0] != '\0' && strcmp(d->units, "columns") != 0);
        ASSERT_TRUE(d->description[0] != '\0' && strchr(d->description, '|') == NULL);
        ASSERT_TRUE(!app || (d->flags & MOE_TEL_F_PER_RANK) || d->dims[0] != MOE_TEL_DIM_ROUTE);
        if (d->flags & MOE_TEL_F_REQUIRED) {
            ASSERT_TRUE(app);
            has_step |= strcmp(d->path, MOE_TEL_STEP) == 0;
            has_routed |= strcmp(d->path, MOE_TEL_ROUTED) == 0;
        }
    }
    ASSERT_TRUE(has_step && has_routed);
    ASSERT_EQ_INT(moe_tel_dset_find("steps/no_such"), -1);
    ASSERT_TRUE(moe_tel_dset(-1) == NULL && moe_tel_dset(MOE_TEL_DS_COUNT) == NULL);
    ASSERT_EQ_STR(moe_tel_dset(MOE_TEL_DS_TRAFFIC)->path, MOE_TEL_TRAFFIC);
    ASSERT_EQ_INT(moe_tel_dset(MOE_TEL_DS_TRAFFIC)->rank, 4);
}

static void test_columns_and_kinds(void)
{
    int    d, i, j, n;
    size_t member_sum = 0;

    for (d = 0; d < MOE_TEL_DIM_COUNT; d++) {
        const moe_tel_column_t *c;
        const moe_tel_dim_def_t *def = moe_tel_dim((moe_tel_dim_t)d);
        ASSERT_TRUE(def->label[0] != '\0' && def->meaning[0] != '\0');
        for (j = 0; j < d; j++)
            ASSERT_TRUE(strcmp(moe_tel_dim((moe_tel_dim_t)j)->label, def->label) != 0);
        n = moe_tel_dim_columns((moe_tel_dim_t)d, &c);
        ASSERT_TRUE(n > 0 ? def->symbol[0] == '\0' : def->symbol[0] != '\0');
        for (i = 0; i < n; i++) {
            if (c[i].unit[0] == '\0')
                fprintf(stderr, "column %s of dimension %s has no unit: X(ENUM, \"%s\", \"unit\")\n",
                        c[i].name, def->label, c[i].name);
            ASSERT_TRUE(c[i].name[0] != '\0' && c[i].unit[0] != '\0');
            for (j = 0; j < i; j++)
                ASSERT_TRUE(strcmp(c[i].name, c[j].name) != 0);
        }
    }
    for (i = 0; i < MOE_EVENT_COUNT; i++) {
        const char *k = moe_tel_event_kind_name(i);
        ASSERT_TRUE(k != NULL && k[0] != '\0' && strlen(k) < MOE_TEL_KIND_NAME_MAX);
        for (j = 0; j < i; j++)
            ASSERT_TRUE(strcmp(k, moe_tel_event_kind_name(j)) != 0);
    }
    ASSERT_TRUE(moe_tel_event_kind_name(-1) == NULL);
    ASSERT_TRUE(moe_tel_event_kind_name(MOE_EVENT_COUNT) == NULL);
#define SUM_MEMBER(field, elem, since, meaning) member_sum += moe_tel_elem_size(elem);
    MOE_TEL_EVENT_MEMBER_MAP(SUM_MEMBER)
#undef SUM_MEMBER
    ASSERT_EQ_INT(member_sum, moe_tel_elem_size(MOE_TEL_ELEM_EVENT));
}

/* The generated block, malloc'd. */
static char *generated(void)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *f = open_memstream(&buf, &len);

    if (f == NULL)
        return NULL;
    moe_tel_schema_markdown(f);
    fclose(f);
    return buf;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long  n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = calloc((size_t)n + 1, 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

/* The doc's block [*b, *e) between the markers (end marker included); 0 if absent. */
static int find_block(const char *doc, const char **b, const char **e)
{
    *b = doc ? strstr(doc, BEGIN_MARK) : NULL;
    *e = *b ? strstr(*b, END_MARK) : NULL;
    if (*e)
        *e += strlen(END_MARK);
    return *b && *e;
}

static void test_docs_match(const char *path)
{
    char       *want = generated(), *doc = slurp(path);
    const char *b, *e;
    int         same;

    ASSERT_TRUE(want != NULL);
    if (doc == NULL)
        fprintf(stderr, "cannot read %s (pass docs/telemetry.md as argv[1])\n", path);
    ASSERT_TRUE(doc != NULL && find_block(doc, &b, &e));
    same = doc && want && find_block(doc, &b, &e) && (size_t)(e - b) == strlen(want) &&
           memcmp(b, want, strlen(want)) == 0;
    ASSERT_TRUE(same);
    remove("telemetry_schema.md.generated");
    if (!same && want) {
        FILE *g = fopen("telemetry_schema.md.generated", "w");
        if (g) {
            fputs(want, g);
            fclose(g);
        }
        fprintf(stderr, "%s: the block between '%s' and '%s' is not what the schema generates "
                        "(telemetry_schema.md.generated); update it with: "
                        "test_telemetry_schema --update-doc %s\n", path, BEGIN_MARK,
                "<!-- schema:end -->", path);
    }
    free(doc);
    free(want);
}

/* Replaces the doc's block by the generated one. */
static int update_doc(const char *path)
{
    char       *want = generated(), *doc = slurp(path);
    const char *b, *e;
    FILE       *f;

    if (want == NULL || doc == NULL || !find_block(doc, &b, &e)) {
        fprintf(stderr, "%s: unreadable, or no '%s' ... '%s' block\n", path, BEGIN_MARK,
                "<!-- schema:end -->");
        return 1;
    }
    f = fopen(path, "w");
    if (f == NULL)
        return 1;
    fwrite(doc, 1, (size_t)(b - doc), f);
    fputs(want, f);
    fputs(e, f);
    fclose(f);
    free(doc);
    free(want);
    printf("%s: schema block rewritten\n", path);
    return 0;
}

static void test_schema1_file(const char *path)
{
    moe_log_t             log;
    moe_tel_reader_t     *r = NULL;
    const moe_tel_info_t *in;
    moe_tel_event_t       ev[2];
    int                   i;

    moe_log_init(&log, 0, MOE_LOG_ERROR);
    ASSERT_EQ_INT(moe_tel_reader_open(path, &log, &r), MOE_OK);
    if (r == NULL) {
        fprintf(stderr, "%s: %s\n", path, log.last_error);
        return;
    }
    in = moe_tel_reader_info(r);
    ASSERT_EQ_INT(in->schema_version, 1);
    ASSERT_EQ_INT(in->nevents, 2);
    ASSERT_TRUE(moe_tel_reader_has(r, MOE_TEL_PHASE) && moe_tel_reader_has(r, MOE_TEL_TRAFFIC));
    ASSERT_TRUE(moe_tel_reader_column(r, MOE_TEL_TRAFFIC, "bytes_sent") == 0);
    if (in->nevents == 2 && moe_tel_reader_events(r, 0, 2, ev) == MOE_OK)
        for (i = 0; i < 2; i++) {
            ASSERT_TRUE(moe_tel_event_kind_name(ev[i].kind) != NULL);
            ASSERT_EQ_STR(ev[i].kind_name, moe_tel_event_kind_name(ev[i].kind));
        }
    moe_tel_reader_close(r);
}

int main(int argc, char **argv)
{
    const char *docs = MOERUN_SOURCE_DIR "/docs/telemetry.md";
    const char *v1 = MOERUN_SOURCE_DIR "/tests/fuzz/corpus/telemetry_reader/small.h5";
    int         before;

    if (argc == 3 && strcmp(argv[1], "--update-doc") == 0)
        return update_doc(argv[2]);
    if (argc > 1)
        docs = argv[1];
    if (argc > 2)
        v1 = argv[2];
    RUN_TEST(test_datasets);
    RUN_TEST(test_columns_and_kinds);
    before = moe_test_failures;
    test_docs_match(docs);
    printf("%s test_docs_match (%s)\n", moe_test_failures == before ? "ok  " : "FAIL", docs);
    before = moe_test_failures;
    test_schema1_file(v1);
    printf("%s test_schema1_file (%s)\n", moe_test_failures == before ? "ok  " : "FAIL", v1);
    TEST_MAIN_END();
}
