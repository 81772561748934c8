/*
 * tools/reader/telemetry_reader.c — reads moerun telemetry files (docs/telemetry.md) for tools.
 *
 * What always holds:
 *  1. Only the serial sec2 driver is used; MPI is never initialised or called.
 *  2. HDF5's automatic error printing is off; every HDF5 failure becomes one message in
 *     log->last_error naming the file and the reason.
 *  3. A handle exists only for a validated file (see tel_validate): the inner shapes of all
 *     documented datasets match the root attributes, so callers can size buffers from
 *     moe_tel_reader_info() alone, and every read is range-checked against the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "moerun/base/h5tel.h"
#include "telemetry_reader.h"

/* Upper bounds that keep a malformed file from asking for absurd buffers. */
#define TR_MAX_DIM      (1LL << 24)
#define TR_MAX_KINDS    64
#define TR_MAX_EXPAND   1100        /* bytes declared per byte of file, filtered datasets */
#define TR_UNWRITTEN_MAX (64 << 20) /* declared bytes of a dataset never written (fill) */

struct moe_tel_reader {
    hid_t          file;
    moe_log_t     *log;
    char           path[1024];
    moe_tel_info_t info;
    char         **kind_names;
    int            nkinds;
    hid_t          dapl;          /* dataset access: no chunk cache (see moe_tel_reader_open) */
    unsigned char  present[MOE_TEL_DS_COUNT]; /* per schema dataset: 1 if it exists */
    char         **cols[MOE_TEL_DS_COUNT];    /* per schema dataset: its "columns", if any */
    int            ncols[MOE_TEL_DS_COUNT];
};

/* The row counts the appended datasets must agree on, by their first dimension. */
enum { TR_ROWS_STEPS, TR_ROWS_ROUTES, TR_ROWS_EVENTS, TR_ROWS_COUNT };

/* ---------------------------------------------------------------- errors -------------- */

/* Records "PATH: WHAT: <innermost HDF5 messages>" and returns st. */
static moe_status_t tr_h5_fail(moe_log_t *log, const char *path, moe_status_t st,
                               const char *what)
{
    char text[400];
    int  found = moe_h5_error_text(text, sizeof(text));

    return MOE_ERROR_SET(log, st, "%s: %s%s%s", path, what, found ? ": " : "", text);
}

static hid_t tr_mem_type(moe_tel_type_t t)
{
    switch (t) {
    case MOE_TEL_I64: return H5T_NATIVE_INT64;
    case MOE_TEL_F64: return H5T_NATIVE_DOUBLE;
    case MOE_TEL_I32: return H5T_NATIVE_INT32;
    case MOE_TEL_F32: return H5T_NATIVE_FLOAT;
    case MOE_TEL_U8: return H5T_NATIVE_UINT8;
    }
    return H5T_NATIVE_INT64;
}

/* ---------------------------------------------------------------- attributes ---------- */

static moe_status_t tr_attr_open(moe_tel_reader_t *r, const char *obj, const char *name,
                                 hid_t *a_p)
{
    htri_t ex = H5Aexists_by_name(r->file, obj, name, H5P_DEFAULT);

    *a_p = -1;
    if (ex <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return MOE_ERROR_SET(r->log, MOE_ERR_NOT_FOUND, "%s: attribute %s of %s missing",
                             r->path, name, obj);
    }
    *a_p = H5Aopen_by_name(r->file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (*a_p < 0)
        return tr_h5_fail(r->log, r->path, MOE_ERR_INVALID, "cannot open an attribute");
    return MOE_OK;
}

/* Reads a scalar (or 1-element) numeric attribute converted to `mtype`. */
static moe_status_t tr_attr_num(moe_tel_reader_t *r, const char *obj, const char *name,
                                hid_t mtype, void *v)
{
    hid_t        a, sp = -1, ty = -1;
    moe_status_t st = tr_attr_open(r, obj, name, &a);
    char         what[128];

    if (st != MOE_OK)
        return st;
    snprintf(what, sizeof(what), "attribute %s of %s is not a number", name, obj);
    sp = H5Aget_space(a);
    ty = H5Aget_type(a);
    if (sp < 0 || ty < 0 || H5Sget_simple_extent_npoints(sp) != 1 ||
        (H5Tget_class(ty) != H5T_INTEGER && H5Tget_class(ty) != H5T_FLOAT) ||
        H5Aread(a, mtype, v) < 0)
        st = tr_h5_fail(r->log, r->path, MOE_ERR_INVALID, what);
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    return st;
}

moe_status_t moe_tel_reader_attr_i64(moe_tel_reader_t *r, const char *obj, const char *name,
                                     int64_t *v_p)
{
    return tr_attr_num(r, obj, name, H5T_NATIVE_INT64, v_p);
}

moe_status_t moe_tel_reader_attr_f64(moe_tel_reader_t *r, const char *obj, const char *name,
                                     double *v_p)
{
    return tr_attr_num(r, obj, name, H5T_NATIVE_DOUBLE, v_p);
}

/*
 * Reads a string attribute with n elements (n = 1 for scalars), variable- or fixed-length,
 * into n malloc'd strings in out[].
 */
static moe_status_t tr_attr_strings(moe_tel_reader_t *r, hid_t a, hssize_t n, char **out)
{
    hid_t        ty = H5Aget_type(a), mt = -1;
    moe_status_t st = MOE_OK;
    hssize_t     i;

    if (ty < 0 || H5Tget_class(ty) != H5T_STRING) {
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: a string attribute is not a string",
                           r->path);
        goto out;
    }
    mt = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(ty) > 0) {
        char **v = calloc((size_t)n, sizeof(char *));
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ty));
        if (v == NULL || H5Aread(a, mt, v) < 0) {
            free(v);
            st = tr_h5_fail(r->log, r->path, MOE_ERR_INVALID, "cannot read a string attribute");
            goto out;
        }
        for (i = 0; i < n; i++) {
            out[i] = strdup(v[i] ? v[i] : "");
            if (out[i] == NULL)
                st = MOE_ERROR_SET(r->log, MOE_ERR_NOMEM, "out of memory");
        }
        {
            hid_t sp = H5Aget_space(a);
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
            H5Sclose(sp);
        }
        free(v);
    } else {
        size_t w = H5Tget_size(ty);
        char  *buf = (w > 0 && w < (1u << 24)) ? calloc((size_t)n, w + 1) : NULL;
        H5Tset_size(mt, w + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        if (buf == NULL || H5Aread(a, mt, buf) < 0) {
            free(buf);
            st = tr_h5_fail(r->log, r->path, MOE_ERR_INVALID, "cannot read a string attribute");
            goto out;
        }
        for (i = 0; i < n; i++) {
            buf[(size_t)i * (w + 1) + w] = '\0';
            out[i] = strdup(buf + (size_t)i * (w + 1));
            if (out[i] == NULL)
                st = MOE_ERROR_SET(r->log, MOE_ERR_NOMEM, "out of memory");
        }
        free(buf);
    }
out:
    if (mt >= 0)
        H5Tclose(mt);
    if (ty >= 0)
        H5Tclose(ty);
    return st;
}

moe_status_t moe_tel_reader_attr_str(moe_tel_reader_t *r, const char *obj, const char *name,
                                     char **s_p)
{
    hid_t        a, sp;
    moe_status_t st = tr_attr_open(r, obj, name, &a);

    *s_p = NULL;
    if (st != MOE_OK)
        return st;
    sp = H5Aget_space(a);
    if (sp < 0 || H5Sget_simple_extent_npoints(sp) != 1)
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: attribute %s is not a scalar string",
                           r->path, name);
    else
        st = tr_attr_strings(r, a, 1, s_p);
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    return st;
}

void moe_tel_reader_strlist_free(char **list, int n)
{
    int i;

    if (list == NULL)
        return;
    for (i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

moe_status_t moe_tel_reader_attr_strlist(moe_tel_reader_t *r, const char *obj, const char *name,
                                         char ***list_p, int *n_p)
{
    hid_t        a, sp;
    hssize_t     n;
    char       **list = NULL;
    moe_status_t st = tr_attr_open(r, obj, name, &a);

    *list_p = NULL;
    *n_p = 0;
    if (st != MOE_OK)
        return st;
    sp = H5Aget_space(a);
    n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (n < 1 || n > 4096)
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: attribute %s has a bad length",
                           r->path, name);
    else if ((list = calloc((size_t)n, sizeof(char *))) == NULL)
        st = MOE_ERROR_SET(r->log, MOE_ERR_NOMEM, "out of memory");
    else
        st = tr_attr_strings(r, a, n, list);
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    if (st != MOE_OK) {
        moe_tel_reader_strlist_free(list, list ? (int)n : 0);
        return st;
    }
    *list_p = list;
    *n_p = (int)n;
    return MOE_OK;
}

/* ---------------------------------------------------------------- datasets ------------ */

static moe_status_t tr_open_dset(moe_tel_reader_t *r, const char *path, hid_t *d_p)
{
    htri_t ok = H5Lexists(r->file, path, H5P_DEFAULT);

    *d_p = -1;
    if (ok > 0) {
        /* every component exists; the link must lead to a dataset */
        H5O_info_t oi;
        if (H5Oget_info_by_name(r->file, path, &oi, H5P_DEFAULT) >= 0 &&
            oi.type == H5O_TYPE_DATASET)
            *d_p = H5Dopen2(r->file, path, r->dapl);
    }
    if (*d_p < 0) {
        H5Eclear2(H5E_DEFAULT);
        return MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: dataset %s missing", r->path, path);
    }
    return MOE_OK;
}

moe_status_t moe_tel_reader_dims(moe_tel_reader_t *r, const char *path, int64_t dims[4],
                                 int *ndims_p)
{
    hid_t        d, sp;
    hsize_t      hd[H5S_MAX_RANK];
    int          nd, i;
    moe_status_t st = tr_open_dset(r, path, &d);

    if (st != MOE_OK)
        return st;
    sp = H5Dget_space(d);
    nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd < 0 || nd > 4 || H5Sget_simple_extent_dims(sp, hd, NULL) < 0) {
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: dataset %s has a bad shape", r->path,
                           path);
    } else {
        for (i = 0; i < nd; i++)
            dims[i] = (int64_t)hd[i];
        for (; i < 4; i++)
            dims[i] = 1;
        *ndims_p = nd;
    }
    H5Eclear2(H5E_DEFAULT);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    return st;
}

/* Reads rows of an open dataset with memory type mt. */
static moe_status_t tr_read_rows(moe_tel_reader_t *r, const char *path, hid_t mt, int64_t row0,
                                 int64_t nrows, void *buf)
{
    hid_t        d, fsp = -1, msp = -1;
    hsize_t      dims[H5S_MAX_RANK], start[H5S_MAX_RANK], count[H5S_MAX_RANK];
    int          nd, i;
    moe_status_t st = tr_open_dset(r, path, &d);

    if (st != MOE_OK)
        return st;
    fsp = H5Dget_space(d);
    nd = fsp >= 0 ? H5Sget_simple_extent_ndims(fsp) : -1;
    if (nd < 1 || nd > 4 || H5Sget_simple_extent_dims(fsp, dims, NULL) < 0) {
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: dataset %s has a bad shape", r->path,
                           path);
        goto out;
    }
    if (row0 < 0 || nrows < 0 || (hsize_t)(row0 + nrows) > dims[0]) {
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                           "%s: rows %lld..%lld of %s requested, it has %llu", r->path,
                           (long long)row0, (long long)(row0 + nrows), path,
                           (unsigned long long)dims[0]);
        goto out;
    }
    if (nrows == 0)
        goto out;
    start[0] = (hsize_t)row0;
    count[0] = (hsize_t)nrows;
    for (i = 1; i < nd; i++) {
        start[i] = 0;
        count[i] = dims[i];
    }
    /* The memory space has the selection's own shape (not 1-D): HDF5 then maps chunks to
     * memory with its "same shape" fast path instead of iterating element by element. */
    if (H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (msp = H5Screate_simple(nd, count, NULL)) < 0 ||
        H5Dread(d, mt, msp, fsp, H5P_DEFAULT, buf) < 0) {
        char what[160];
        snprintf(what, sizeof(what), "cannot read %s", path);
        st = tr_h5_fail(r->log, r->path, MOE_ERR_IO, what);
    }
out:
    if (msp >= 0)
        H5Sclose(msp);
    if (fsp >= 0)
        H5Sclose(fsp);
    H5Dclose(d);
    return st;
}

moe_status_t moe_tel_reader_read(moe_tel_reader_t *r, const char *path, moe_tel_type_t type,
                                 int64_t row0, int64_t nrows, void *buf)
{
    return tr_read_rows(r, path, tr_mem_type(type), row0, nrows, buf);
}

moe_status_t moe_tel_reader_strings(moe_tel_reader_t *r, const char *path, int64_t n,
                                    size_t width, char *buf)
{
    int64_t      dims[4];
    int          nd, i;
    hid_t        mt;
    moe_status_t st = moe_tel_reader_dims(r, path, dims, &nd);

    if (st != MOE_OK)
        return st;
    if (nd != 1 || dims[0] != n || width < 2)
        return MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: %s is not a list of %lld strings",
                             r->path, path, (long long)n);
    mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, width);
    H5Tset_strpad(mt, H5T_STR_NULLTERM);
    st = tr_read_rows(r, path, mt, 0, n, buf);
    H5Tclose(mt);
    for (i = 0; st == MOE_OK && i < n; i++)
        buf[(size_t)i * width + width - 1] = '\0';
    return st;
}

moe_status_t moe_tel_reader_layer_ids(moe_tel_reader_t *r, int64_t *ids)
{
    hid_t   d, sp = -1;
    hsize_t n = 0;
    int     ok, l;

    if (!r->info.imported || H5Lexists(r->file, "import", H5P_DEFAULT) <= 0 ||
        H5Lexists(r->file, MOE_TEL_LAYER_ID, H5P_DEFAULT) <= 0)
        return MOE_ERR_NOT_FOUND;
    if ((d = H5Dopen2(r->file, MOE_TEL_LAYER_ID, H5P_DEFAULT)) < 0)
        return MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: cannot open %s", r->path, MOE_TEL_LAYER_ID);
    ok = (sp = H5Dget_space(d)) >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
         H5Sget_simple_extent_dims(sp, &n, NULL) == 1 && (int64_t)n == r->info.layers &&
         H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0;
    for (l = 0; ok && l < r->info.layers; l++) /* increasing ids >= 0 */
        ok = ids[l] >= 0 && (l == 0 || ids[l] > ids[l - 1]);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    return ok ? MOE_OK
              : MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: %s is not %lld increasing layer ids",
                              r->path, MOE_TEL_LAYER_ID, (long long)r->info.layers);
}

moe_status_t moe_tel_reader_events(moe_tel_reader_t *r, int64_t row0, int64_t n,
                                   moe_tel_event_t *ev)
{
    hid_t                d, ft = -1, kt = -1, kmem = -1, mt = -1, smem = -1, nmem = -1;
    moe_tel_event_rec_t *rec = NULL;
    moe_status_t    st = tr_open_dset(r, MOE_TEL_EVENTS, &d);
    int                  idx, has_name;
    int64_t              i;

    if (st != MOE_OK)
        return st;
    if (n <= 0) {
        H5Dclose(d);
        return row0 >= 0 && row0 <= r->info.nevents ? MOE_OK
                                                     : MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                                                                     "%s: bad event range",
                                                                     r->path);
    }
    ft = H5Dget_type(d);
    idx = ft >= 0 && H5Tget_class(ft) == H5T_COMPOUND ? H5Tget_member_index(ft, "kind") : -1;
    kt = idx >= 0 ? H5Tget_member_type(ft, (unsigned)idx) : -1;
    kmem = kt >= 0 ? H5Tget_native_type(kt, H5T_DIR_DEFAULT) : -1;
    if (kmem < 0 || H5Tget_size(kmem) != sizeof(int32_t)) {
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: events dataset has a bad type", r->path);
        goto out;
    }
    /* the kind as the file's own enum (converted by name); kind_name only if the file has
     * it (schema 2; schema 1 names kinds in the kind_names attribute) */
    has_name = H5Tget_member_index(ft, "kind_name") >= 0;
    smem = moe_h5_string_type(sizeof(rec->message));
    nmem = moe_h5_string_type(sizeof(rec->kind_name));
    mt = H5Tcreate(H5T_COMPOUND, sizeof(moe_tel_event_rec_t));
    H5Tinsert(mt, "step", offsetof(moe_tel_event_rec_t, step), H5T_NATIVE_INT64);
    H5Tinsert(mt, "layer", offsetof(moe_tel_event_rec_t, layer), H5T_NATIVE_INT32);
    H5Tinsert(mt, "expert", offsetof(moe_tel_event_rec_t, expert), H5T_NATIVE_INT32);
    H5Tinsert(mt, "kind", offsetof(moe_tel_event_rec_t, kind), kmem);
    if (has_name)
        H5Tinsert(mt, "kind_name", offsetof(moe_tel_event_rec_t, kind_name), nmem);
    H5Tinsert(mt, "value", offsetof(moe_tel_event_rec_t, value), H5T_NATIVE_DOUBLE);
    H5Tinsert(mt, "threshold", offsetof(moe_tel_event_rec_t, threshold), H5T_NATIVE_DOUBLE);
    H5Tinsert(mt, "message", offsetof(moe_tel_event_rec_t, message), smem);
    rec = calloc((size_t)n, sizeof(*rec));
    if (rec == NULL) {
        st = MOE_ERROR_SET(r->log, MOE_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = tr_read_rows(r, MOE_TEL_EVENTS, mt, row0, n, rec)) != MOE_OK)
        goto out;
    for (i = 0; i < n; i++) {
        ev[i].step = rec[i].step;
        ev[i].layer = rec[i].layer;
        ev[i].expert = rec[i].expert;
        ev[i].kind = rec[i].kind;
        ev[i].value = rec[i].value;
        ev[i].threshold = rec[i].threshold;
        rec[i].message[sizeof(rec[i].message) - 1] = '\0';
        snprintf(ev[i].message, sizeof(ev[i].message), "%s", rec[i].message);
        rec[i].kind_name[sizeof(rec[i].kind_name) - 1] = '\0';
        if (has_name && rec[i].kind_name[0])
            snprintf(ev[i].kind_name, sizeof(ev[i].kind_name), "%s", rec[i].kind_name);
        else if (ev[i].kind >= 0 && ev[i].kind < r->nkinds)
            snprintf(ev[i].kind_name, sizeof(ev[i].kind_name), "%s", r->kind_names[ev[i].kind]);
        else
            snprintf(ev[i].kind_name, sizeof(ev[i].kind_name), "kind%d", (int)ev[i].kind);
    }
out:
    H5Eclear2(H5E_DEFAULT);
    free(rec);
    if (mt >= 0)
        H5Tclose(mt);
    if (smem >= 0)
        H5Tclose(smem);
    if (nmem >= 0)
        H5Tclose(nmem);
    if (kmem >= 0)
        H5Tclose(kmem);
    if (kt >= 0)
        H5Tclose(kt);
    if (ft >= 0)
        H5Tclose(ft);
    H5Dclose(d);
    return st;
}

/* ---------------------------------------------------------------- open ---------------- */

/* The HDF5 class a schema element type has in a file. */
static H5T_class_t tr_elem_class(moe_tel_elem_t e)
{
    switch (e) {
    case MOE_TEL_ELEM_F64: case MOE_TEL_ELEM_F32: return H5T_FLOAT;
    case MOE_TEL_ELEM_S64: case MOE_TEL_ELEM_S32: case MOE_TEL_ELEM_S160: return H5T_STRING;
    case MOE_TEL_ELEM_EVENT: return H5T_COMPOUND;
    default: return H5T_INTEGER;
    }
}

/*
 * The element class of schema dataset x, and from schema 2 its dimension labels and (on a
 * column dataset) one unit per column.
 */
static moe_status_t tr_check_dset(moe_tel_reader_t *r, int x)
{
    const moe_tel_dset_t *def = moe_tel_dset(x);
    hid_t                 d, ty;
    H5T_class_t           cl;
    moe_status_t          st = tr_open_dset(r, def->path, &d);
    char                **units = NULL, label[64];
    int                   i, nunits = 0;
    ssize_t               n;

    if (st != MOE_OK)
        return st;
    ty = H5Dget_type(d);
    cl = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    if (ty >= 0)
        H5Tclose(ty);
    if (cl != tr_elem_class(def->elem)) {
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: %s has element class %d, want %s",
                           r->path, def->path, (int)cl, moe_tel_elem_name(def->elem));
        goto out;
    }
    if (r->info.schema_version < 2)
        goto out;
    for (i = 0; i < def->rank && st == MOE_OK; i++) {
        n = H5DSget_label(d, (unsigned)i, label, sizeof(label));
        if (n < 0 || strcmp(label, moe_tel_dim(def->dims[i])->label) != 0)
            st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                               "%s: %s dimension %d is labelled '%s', want '%s'", r->path,
                               def->path, i, n < 0 ? "" : label,
                               moe_tel_dim(def->dims[i])->label);
    }
    if (st == MOE_OK && r->cols[x]) {
        st = moe_tel_reader_attr_strlist(r, def->path, "units", &units, &nunits);
        if (st == MOE_OK && nunits != r->ncols[x])
            st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                               "%s: %s names %d columns but %d units", r->path, def->path,
                               r->ncols[x], nunits);
        moe_tel_reader_strlist_free(units, nunits);
    }
out:
    H5Eclear2(H5E_DEFAULT);
    H5Dclose(d);
    return st;
}

/*
 * A dataset's declared size against what the file really holds: without filters, the
 * declared elements must fit in the bytes allocated for it (chunks are allocated whole, so
 * the last one may be partly used) and those bytes in the file itself. So a small file
 * cannot declare 10^12 steps (hours of reading fill values) or events (gigabytes).
 * With a filter (compression), the declared size is held against TR_MAX_EXPAND times the
 * file size instead. A dataset with no storage at all (created, never written) may declare
 * up to TR_UNWRITTEN_MAX bytes. "damaged file: ..." with MOE_ERR_INVALID.
 */
static moe_status_t tr_check_extent(moe_tel_reader_t *r, const char *path, const int64_t *dims,
                                    int nd, off_t file_size)
{
    hid_t        d = -1, dcpl = -1, ty = -1;
    hsize_t      chunk[H5S_MAX_RANK], storage, elems = 1, decl, chunk_bytes = 0, tsz;
    int          i, nf = 0, cnd;
    moe_status_t st = MOE_OK;

    if ((st = tr_open_dset(r, path, &d)) != MOE_OK)
        return st;
    ty = H5Dget_type(d);
    dcpl = H5Dget_create_plist(d);
    tsz = ty >= 0 ? (hsize_t)H5Tget_size(ty) : 0;
    storage = H5Dget_storage_size(d);
    for (i = 0; i < nd; i++)
        if (__builtin_mul_overflow(elems, (hsize_t)dims[i], &elems))
            elems = (hsize_t)-1;
    if (__builtin_mul_overflow(elems, tsz, &decl))
        decl = (hsize_t)-1;
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        nf = H5Pget_nfilters(dcpl);
        cnd = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
        chunk_bytes = tsz;
        for (i = 0; i < cnd; i++)
            if (__builtin_mul_overflow(chunk_bytes, chunk[i], &chunk_bytes))
                chunk_bytes = (hsize_t)-1;
    }
    H5Eclear2(H5E_DEFAULT);
    if (storage == 0 && decl <= TR_UNWRITTEN_MAX)
        ; /* created, never written (a run killed before its first flush): reads as fill */
    else if (decl > 0 && nf == 0 &&
             (decl > storage + chunk_bytes || storage > (hsize_t)file_size + chunk_bytes))
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                           "%s: damaged file: %s declares %llu bytes (%lld rows) but %llu bytes "
                           "are stored for it in a file of %lld bytes", r->path, path,
                           (unsigned long long)decl, (long long)dims[0],
                           (unsigned long long)storage, (long long)file_size);
    else if (nf > 0 && decl / TR_MAX_EXPAND > (hsize_t)file_size)
        st = MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                           "%s: damaged file: %s declares %llu bytes (%lld rows), over %d times "
                           "the file's %lld bytes", r->path, path, (unsigned long long)decl,
                           (long long)dims[0], TR_MAX_EXPAND, (long long)file_size);
    if (ty >= 0)
        H5Tclose(ty);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    H5Dclose(d);
    return st;
}

/* Reads the root numbers and checks every dataset's shape against them. */
static moe_status_t tr_validate(moe_tel_reader_t *r)
{
    static const struct { const char *name; size_t off; int optional; } ints[] = {
        /* optional 1: may be absent in any file; 2: only in an imported file */
        {"experts", offsetof(moe_tel_info_t, experts), 0},
        {"top_k", offsetof(moe_tel_info_t, top_k), 2},
        {"layers", offsetof(moe_tel_info_t, layers), 0},
        {"d_model", offsetof(moe_tel_info_t, d_model), 1},
        {"d_ffn", offsetof(moe_tel_info_t, d_ffn), 1},
        {"tokens_per_rank", offsetof(moe_tel_info_t, tokens_per_rank), 1},
        {"nranks", offsetof(moe_tel_info_t, nranks), 2},
        {"nnodes", offsetof(moe_tel_info_t, nnodes), 2},
        {"flush_interval", offsetof(moe_tel_info_t, flush_interval), 1},
        {"route_samples", offsetof(moe_tel_info_t, route_samples), 1},
        {"steps_completed", offsetof(moe_tel_info_t, steps_completed), 0},
    };
    moe_tel_info_t *in = &r->info;
    moe_tel_sizes_t sz;
    moe_status_t    st;
    int64_t         dims[4], rows[TR_ROWS_COUNT] = {-1, -1, -1}, want;
    int             nd, i, j, x;
    size_t          q;
    char           *source = NULL;
    struct stat     sb;
    off_t           file_size = stat(r->path, &sb) == 0 ? sb.st_size : 0;

    st = moe_tel_reader_attr_i64(r, "/", "schema_version", &in->schema_version);
    if (st != MOE_OK)
        return MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                             "%s: not a moerun telemetry file (no schema_version attribute)",
                             r->path);
    if (in->schema_version < MOE_TEL_SCHEMA_MIN || in->schema_version > MOE_TEL_SCHEMA_MAX)
        return MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                             "%s: schema_version %lld not supported (this reader: %d..%d)",
                             r->path, (long long)in->schema_version, MOE_TEL_SCHEMA_MIN,
                             MOE_TEL_SCHEMA_MAX);
    /* source = "import:<format>": written by moerun-import (docs/import.md) */
    st = moe_tel_reader_attr_str(r, "/", "source", &source);
    if (st == MOE_OK) {
        in->imported = strncmp(source, "import:", 7) == 0;
        snprintf(in->source, sizeof(in->source), "%s", source);
        free(source);
    } else if (st != MOE_ERR_NOT_FOUND) {
        return st;
    }
    for (q = 0; q < sizeof(ints) / sizeof(ints[0]); q++) {
        int64_t *v = (int64_t *)((char *)in + ints[q].off);
        st = moe_tel_reader_attr_i64(r, "/", ints[q].name, v);
        if (st == MOE_ERR_NOT_FOUND &&
            (ints[q].optional == 1 || (ints[q].optional == 2 && in->imported))) {
            *v = -1; /* unknown (e.g. an imported routing log without model dimensions) */
            st = MOE_OK;
        }
        if (st != MOE_OK)
            return st;
    }
    st = moe_tel_reader_attr_f64(r, "/", "capacity_factor", &in->capacity_factor);
    if (st == MOE_ERR_NOT_FOUND) {
        in->capacity_factor = NAN;
        st = MOE_OK;
    }
    if (st != MOE_OK)
        return st;
    /* -1 (absent) passes only in imported files: only they may omit top_k, nranks, nnodes */
    if (in->experts < 1 || in->experts > TR_MAX_DIM || in->layers < 1 ||
        in->layers > TR_MAX_DIM ||
        (!(in->imported && in->top_k == -1) && (in->top_k < 1 || in->top_k > in->experts)) ||
        (!(in->imported && in->nranks == -1) && (in->nranks < 1 || in->nranks > TR_MAX_DIM)) ||
        (!(in->imported && in->nnodes == -1) &&
         (in->nnodes < 1 || (in->nranks != -1 && in->nnodes > in->nranks))) ||
        in->experts * in->experts * in->layers > (1LL << 40))
        return MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                             "%s: implausible sizes (experts %lld, top_k %lld, layers %lld, "
                             "nranks %lld, nnodes %lld)", r->path, (long long)in->experts,
                             (long long)in->top_k, (long long)in->layers, (long long)in->nranks,
                             (long long)in->nnodes);
    /* appended dimensions (-1) are checked against each other, not against a size */
    sz.steps = sz.routes = sz.events = -1;
    sz.layers = in->layers;
    sz.experts = in->experts;
    sz.ranks = in->nranks;
    sz.top_k = in->top_k;
    sz.replicas = -1; /* a free dimension: the file's own (placement/expert_ranks) */
    if (H5Lexists(r->file, "placement", H5P_DEFAULT) > 0 &&
        H5Lexists(r->file, MOE_TEL_EXPERT_RANKS, H5P_DEFAULT) > 0 &&
        moe_tel_reader_dims(r, MOE_TEL_EXPERT_RANKS, dims, &nd) == MOE_OK && nd == 3 &&
        dims[2] >= 1 && dims[2] <= TR_MAX_DIM)
        sz.replicas = dims[2];
    H5Eclear2(H5E_DEFAULT);
    for (x = 0; x < MOE_TEL_DS_COUNT; x++) {
        const moe_tel_dset_t *ds = moe_tel_dset(x);
        int                   app = moe_tel_dset_appended(ds);
        if (!(ds->flags & MOE_TEL_F_REQUIRED) && H5Lexists(r->file, ds->path, H5P_DEFAULT) <= 0) {
            /* an optional dataset (or its group) is absent: tools report it as missing */
            H5Eclear2(H5E_DEFAULT);
            continue;
        }
        if ((st = moe_tel_reader_dims(r, ds->path, dims, &nd)) != MOE_OK ||
            (st = tr_check_extent(r, ds->path, dims, nd, file_size)) != MOE_OK)
            return st;
        if (nd != ds->rank)
            return MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: %s has %d dimensions, want %d",
                                 r->path, ds->path, nd, ds->rank);
        if (moe_tel_dset_column_dim(ds) != MOE_TEL_DIM_NONE &&
            H5Aexists_by_name(r->file, ds->path, "columns", H5P_DEFAULT) > 0) {
            /* column datasets: the inner dimension is the length of "columns" */
            if ((st = moe_tel_reader_attr_strlist(r, ds->path, "columns", &r->cols[x],
                                                  &r->ncols[x])) != MOE_OK)
                return st;
            if (r->ncols[x] != dims[nd - 1])
                return MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                                     "%s: %s has %lld columns but its columns attribute names "
                                     "%d", r->path, ds->path, (long long)dims[nd - 1],
                                     r->ncols[x]);
        }
        H5Eclear2(H5E_DEFAULT);
        for (i = app ? 1 : 0; i < nd; i++) {
            if (r->cols[x] && i == nd - 1)
                continue;
            want = moe_tel_dim_size(ds->dims[i], &sz);
            if (want < 0)
                return MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                                     "%s: %s is present but the root attribute that sizes its "
                                     "dimension %d (top_k or nranks) is missing", r->path,
                                     ds->path, i);
            if (dims[i] != want)
                return MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                                     "%s: %s dimension %d is %lld, want %lld", r->path,
                                     ds->path, i, (long long)dims[i], (long long)want);
        }
        if (app) {
            j = ds->dims[0] == MOE_TEL_DIM_STEP    ? TR_ROWS_STEPS
                : ds->dims[0] == MOE_TEL_DIM_ROUTE ? TR_ROWS_ROUTES
                                                   : TR_ROWS_EVENTS;
            if (rows[j] >= 0 && rows[j] != dims[0])
                return MOE_ERROR_SET(r->log, MOE_ERR_INVALID,
                                     "%s: %s has %lld rows, other datasets of its group %lld",
                                     r->path, ds->path, (long long)dims[0], (long long)rows[j]);
            rows[j] = dims[0];
        }
        if ((st = tr_check_dset(r, x)) != MOE_OK)
            return st;
        r->present[x] = 1;
    }
    for (j = 0; j < TR_ROWS_COUNT; j++)
        if (rows[j] < 0)
            rows[j] = 0;
    in->steps = rows[TR_ROWS_STEPS];
    in->nroutes = rows[TR_ROWS_ROUTES];
    in->nevents = rows[TR_ROWS_EVENTS];
    if (moe_tel_reader_attr_i64(r, "accumulated", "steps", &in->accumulated_steps) != MOE_OK)
        in->accumulated_steps = -1;
    in->closed = H5Aexists(r->file, "end_time") > 0;
    H5Eclear2(H5E_DEFAULT);
    if (moe_tel_reader_attr_strlist(r, MOE_TEL_EVENTS, "kind_names", &r->kind_names,
                                    &r->nkinds) != MOE_OK) {
        r->kind_names = NULL;
        r->nkinds = 0;
    }
    if (r->nkinds > TR_MAX_KINDS)
        return MOE_ERROR_SET(r->log, MOE_ERR_INVALID, "%s: too many event kinds", r->path);
    return MOE_OK;
}

/* ------------------------------------------------------------- probe ---------------- */

/* Reads every attribute of one object in full (strings included). */
static herr_t tr_probe_attr(hid_t obj, const char *name, const H5A_info_t *info, void *op)
{
    hid_t    a = H5Aopen(obj, name, H5P_DEFAULT), ft = -1, mt = -1, sp = -1;
    hssize_t n;
    size_t   sz;
    void    *buf = NULL;

    (void)info;
    (void)op;
    if (a < 0)
        return 0;
    if ((ft = H5Aget_type(a)) >= 0 && (sp = H5Aget_space(a)) >= 0 &&
        (n = H5Sget_simple_extent_npoints(sp)) > 0 && n < (1 << 20) &&
        (mt = H5Tget_native_type(ft, H5T_DIR_ASCEND)) >= 0 && (sz = H5Tget_size(mt)) > 0 &&
        (buf = calloc((size_t)n, sz)) != NULL && H5Aread(a, mt, buf) >= 0) {
        if (H5Tdetect_class(mt, H5T_VLEN) > 0 || H5Tis_variable_str(mt) > 0)
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
    }
    free(buf);
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    H5Aclose(a);
    return 0;
}

/* Attributes of every object, and the first and last row of every dataset. */
static herr_t tr_probe_obj(hid_t file, const char *name, const H5O_info_t *info, void *op)
{
    hid_t   o = H5Oopen(file, name, H5P_DEFAULT), sp = -1, ms = -1, mt = -1, ft = -1;
    hsize_t dims[8], start[8] = {0}, count[8];
    int     nd, i, end;

    (void)op;
    if (o < 0)
        return 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, tr_probe_attr, NULL);
    if (info->type == H5O_TYPE_DATASET && (sp = H5Dget_space(o)) >= 0 &&
        (nd = H5Sget_simple_extent_dims(sp, dims, NULL)) > 0 && nd <= 8 && dims[0] > 0 &&
        (ft = H5Dget_type(o)) >= 0 && (mt = H5Tget_native_type(ft, H5T_DIR_ASCEND)) >= 0) {
        size_t row = H5Tget_size(mt);
        for (i = 1; i < nd; i++)
            row *= dims[i];
        for (end = 0; end < 2 && row > 0 && row < ((size_t)64 << 20); end++) {
            void *buf = calloc(1, row);
            start[0] = end ? dims[0] - 1 : 0;
            count[0] = 1;
            for (i = 1; i < nd; i++)
                count[i] = dims[i];
            if (buf && H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
                (ms = H5Screate_simple(nd, count, NULL)) >= 0 &&
                H5Dread(o, mt, ms, sp, H5P_DEFAULT, buf) >= 0 &&
                (H5Tdetect_class(mt, H5T_VLEN) > 0 || H5Tis_variable_str(mt) > 0))
                H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, buf);
            if (ms >= 0)
                H5Sclose(ms);
            ms = -1;
            free(buf);
        }
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    H5Oclose(o);
    return 0;
}

/*
 * libhdf5 itself can crash on a hostile or randomly damaged file (fuzzing found a wild
 * memcpy in its global-heap reader, H5HG_read, reached from a string attribute). So the
 * first pass over a file's metadata — open, validation, every attribute, the first and
 * last row of every dataset — runs in a forked child with stderr closed. A child killed by
 * a signal or a sanitizer, or still running after TR_PROBE_SECONDS (fuzzing also found an
 * endless loop in libhdf5's global-heap reader), means a damaged file: a clean error here
 * instead of a crash or a hang of the tool. MOERUN_READER_PROBE=0 skips the probe.
 */
/* Present only in sanitizer builds: the child drops the parent's death callback (a fuzzer's
 * crash reporter) so that a crash it contains is not reported as the parent's. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* Exit codes of the probe child; anything else (a sanitizer's exit, abort) means damage. */
#define TR_PROBE_OK      0
#define TR_PROBE_SECONDS 10 /* a valid file's metadata reads in well under a second */
#define TR_PROBE_NOOPEN 3

static moe_status_t tr_probe(const char *path, moe_log_t *log)
{
    const char *env = getenv("MOERUN_READER_PROBE");
    pid_t       pid;
    int         ws = 0;

    if (env && strcmp(env, "0") == 0)
        return MOE_OK;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return MOE_OK; /* no probe possible: read directly */
    if (pid == 0) {
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM};
        int              devnull = open("/dev/null", O_WRONLY), rc = TR_PROBE_NOOPEN;
        hid_t            f;
        size_t           i;
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO);
        if (__sanitizer_set_death_callback)
            __sanitizer_set_death_callback(NULL);
        for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        alarm(TR_PROBE_SECONDS); /* libhdf5 can also loop forever on a damaged heap */
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f >= 0) {
            /* the parent's own validation first, then everything else */
            moe_tel_reader_t *r = calloc(1, sizeof(*r));
            moe_log_t         plog;
            moe_log_init(&plog, 0, MOE_LOG_ERROR);
            if (r) {
                r->log = &plog;
                r->file = f;
                snprintf(r->path, sizeof(r->path), "%s", path);
                (void)tr_validate(r);
            }
            H5Ovisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, tr_probe_obj, NULL);
            if (r)
                moe_tel_reader_close(r); /* closes f */
            else
                H5Fclose(f);
            rc = TR_PROBE_OK;
        }
        _exit(rc);
    }
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM)
        return MOE_ERROR_SET(log, MOE_ERR_IO,
                             "%s: damaged file: the HDF5 library did not finish reading its "
                             "metadata in %d s", path, TR_PROBE_SECONDS);
    if (WIFSIGNALED(ws))
        return MOE_ERROR_SET(log, MOE_ERR_IO,
                             "%s: damaged file: the HDF5 library crashed (signal %d) reading "
                             "its metadata", path, WTERMSIG(ws));
    if (WIFEXITED(ws) && WEXITSTATUS(ws) != TR_PROBE_OK && WEXITSTATUS(ws) != TR_PROBE_NOOPEN)
        return MOE_ERROR_SET(log, MOE_ERR_IO,
                             "%s: damaged file: the HDF5 library failed (exit %d) reading its "
                             "metadata", path, WEXITSTATUS(ws));
    return MOE_OK;
}

moe_status_t moe_tel_reader_open(const char *path, moe_log_t *log, moe_tel_reader_t **r_p)
{
    moe_tel_reader_t *r;
    htri_t            is;
    moe_status_t      st;

    *r_p = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (path == NULL || path[0] == '\0')
        return MOE_ERROR_SET(log, MOE_ERR_INVALID, "no telemetry file given");
    if (access(path, R_OK) != 0)
        return MOE_ERROR_SET(log, MOE_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    {
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            return MOE_ERROR_SET(log, MOE_ERR_IO, "%s: not a regular file%s", path,
                                 S_ISDIR(sb.st_mode) ? " (a directory)" : "");
    }
    is = H5Fis_hdf5(path);
    if (is == 0)
        return MOE_ERROR_SET(log, MOE_ERR_IO, "%s: not an HDF5 file", path);
    if (is < 0)
        return tr_h5_fail(log, path, MOE_ERR_IO, "cannot open as HDF5");
    if ((st = tr_probe(path, log)) != MOE_OK)
        return st;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return MOE_ERROR_SET(log, MOE_ERR_NOMEM, "out of memory");
    r->log = log;
    snprintf(r->path, sizeof(r->path), "%s", path);
    /* Readers stream each chunk once: without a chunk cache HDF5 reads whole chunks straight
     * into the caller's buffer instead of through the cache and a copy. */
    r->dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (r->dapl >= 0)
        H5Pset_chunk_cache(r->dapl, 0, 0, 1.0);
    else
        r->dapl = H5P_DEFAULT;
    r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->file < 0) {
        st = tr_h5_fail(log, path, MOE_ERR_IO, "cannot open (damaged or truncated file?)");
        if (r->dapl != H5P_DEFAULT)
            H5Pclose(r->dapl);
        free(r);
        return st;
    }
    st = tr_validate(r);
    if (st != MOE_OK) {
        moe_tel_reader_close(r);
        return st;
    }
    *r_p = r;
    return MOE_OK;
}

void moe_tel_reader_close(moe_tel_reader_t *r)
{
    int i;

    if (r == NULL)
        return;
    if (r->file >= 0)
        H5Fclose(r->file);
    if (r->dapl != H5P_DEFAULT && r->dapl >= 0)
        H5Pclose(r->dapl);
    H5Eclear2(H5E_DEFAULT);
    moe_tel_reader_strlist_free(r->kind_names, r->nkinds);
    for (i = 0; i < MOE_TEL_DS_COUNT; i++)
        moe_tel_reader_strlist_free(r->cols[i], r->ncols[i]);
    free(r);
}

const moe_tel_info_t *moe_tel_reader_info(const moe_tel_reader_t *r)
{
    return &r->info;
}

/* Index of a dataset in the schema, -1 if it is not a documented one. */
static int tr_dset_index(const char *path)
{
    return moe_tel_dset_find(path);
}

int moe_tel_reader_has(const moe_tel_reader_t *r, const char *path)
{
    int i = tr_dset_index(path);

    return i >= 0 && r->present[i];
}

int moe_tel_reader_column(const moe_tel_reader_t *r, const char *path, const char *name)
{
    int i = tr_dset_index(path), c;

    if (i < 0 || !r->present[i] || r->cols[i] == NULL)
        return -1;
    for (c = 0; c < r->ncols[i]; c++)
        if (strcmp(r->cols[i][c], name) == 0)
            return c;
    return -1;
}

int moe_tel_reader_ncolumns(const moe_tel_reader_t *r, const char *path)
{
    int i = tr_dset_index(path);

    return i >= 0 && r->present[i] && r->cols[i] ? r->ncols[i] : 0;
}
