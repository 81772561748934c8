/*
 * tools/reader/telemetry_schema_doc.c — the Markdown of the telemetry schema
 * (moerun/telemetry_schema.h): the dimension, dataset, column, event-member and event-kind
 * tables of docs/telemetry.md, between its "schema:begin" and "schema:end" markers.
 *
 * What always holds: the output is a function of the schema alone (no file, no locale), so
 * tests/unit/test_telemetry_schema.c can compare it byte for byte with the doc.
 */
#include <stdio.h>

#include "telemetry_reader.h"

/* "[S][L][E]": the doc's shape notation; a column dimension shows its count. */
static void tsd_shape(FILE *out, const moe_tel_dset_t *d)
{
    const moe_tel_column_t *c;
    int                     i, n;

    for (i = 0; i < d->rank; i++) {
        n = moe_tel_dim_columns(d->dims[i], &c);
        if (n > 0)
            fprintf(out, "[%d]", n);
        else
            fprintf(out, "[%s]", moe_tel_dim(d->dims[i])->symbol);
    }
}

void moe_tel_schema_markdown(FILE *out)
{
    const moe_tel_column_t *c;
    int                     i, j, n;

    fprintf(out, "<!-- schema:begin (generated from include/moerun/telemetry_schema.h by "
                 "moe_tel_schema_markdown; tests/unit/test_telemetry_schema.c keeps it in "
                 "step) -->\n\n");
    fprintf(out, "Dimensions (each dataset's dimensions carry these HDF5 dimension labels):\n\n");
    fprintf(out, "| label | size | meaning |\n|---|---|---|\n");
    for (i = 0; i < MOE_TEL_DIM_COUNT; i++) {
        const moe_tel_dim_def_t *d = moe_tel_dim((moe_tel_dim_t)i);
        n = moe_tel_dim_columns((moe_tel_dim_t)i, &c);
        if (n > 0)
            fprintf(out, "| `%s` | %d | %s |\n", d->label, n, d->meaning);
        else
            fprintf(out, "| `%s` | %s | %s |\n", d->label, d->symbol, d->meaning);
    }
    fprintf(out, "\nDatasets:\n\n");
    fprintf(out, "| path | shape | dimension labels | dtype | units | meaning |\n"
                 "|---|---|---|---|---|---|\n");
    for (i = 0; i < MOE_TEL_DS_COUNT; i++) {
        const moe_tel_dset_t *d = moe_tel_dset(i);
        fprintf(out, "| `%s` | ", d->path);
        tsd_shape(out, d);
        fprintf(out, " | ");
        for (j = 0; j < d->rank; j++)
            fprintf(out, "%s%s", j ? ", " : "", moe_tel_dim(d->dims[j])->label);
        fprintf(out, " | %s | %s | %s%s |\n", moe_tel_elem_name(d->elem),
                moe_tel_dset_column_dim(d) != MOE_TEL_DIM_NONE ? "per column" : d->units,
                d->description, d->flags & MOE_TEL_F_REQUIRED ? " (required in every file)" : "");
    }
    fprintf(out, "\nColumns (attribute `columns`; from schema 2 `units` is a list with one "
                 "entry per column):\n\n");
    fprintf(out, "| dataset | column | unit |\n|---|---|---|\n");
    for (i = 0; i < MOE_TEL_DS_COUNT; i++) {
        const moe_tel_dset_t *d = moe_tel_dset(i);
        moe_tel_dim_t         cd = moe_tel_dset_column_dim(d);
        if (cd == MOE_TEL_DIM_NONE)
            continue;
        n = moe_tel_dim_columns(cd, &c);
        for (j = 0; j < n; j++)
            fprintf(out, "| `%s` | `%s` | %s |\n", d->path, c[j].name, c[j].unit);
    }
    fprintf(out, "\nMembers of `%s` (a compound, packed, in this order):\n\n", MOE_TEL_EVENTS);
    fprintf(out, "| member | type | since schema | meaning |\n|---|---|---|---|\n");
#define TSD_MEMBER(field, elem, since, meaning) \
    fprintf(out, "| `%s` | %s | %d | %s |\n", #field, moe_tel_elem_name(elem), since, meaning);
    MOE_TEL_EVENT_MEMBER_MAP(TSD_MEMBER)
#undef TSD_MEMBER
    fprintf(out, "\nEvent kinds (value of `kind`, and `kind_name`): ");
    for (i = 0; i < MOE_EVENT_COUNT; i++)
        fprintf(out, "%s`%s` = %d", i ? ", " : "", moe_tel_event_kind_name(i), i);
    fprintf(out, ".\n\n<!-- schema:end -->\n");
}
