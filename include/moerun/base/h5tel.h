/*
 * moerun/base/h5tel.h — HDF5 pieces shared by the telemetry writer (runtime/telemetry.c),
 * the reader (tools/reader) and the importer (tools/import): the HDF5 error text, the HDF5
 * types of the schema's element types (moerun/telemetry_schema.h), the events compound, and
 * the self-description every dataset carries (dimension labels, units, description,
 * columns). Internal: it needs hdf5.h and hdf5_hl.h (link hdf5_hl), not part of the C API.
 *
 * What always holds: every function returns a negative value on failure and leaves the
 * HDF5 error stack for moe_h5_error_text(); every hid_t returned is the caller's to close
 * (types are copies, never the library's predefined ids).
 */
#ifndef MOERUN_BASE_H5TEL_H
#define MOERUN_BASE_H5TEL_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <hdf5.h>
#include <hdf5_hl.h>

#include "moerun/telemetry_schema.h"

_Static_assert(MOE_EVENT_COUNT <= 64 && MOE_PHASE_COUNT <= 64 && MOE_TRAFFIC_COUNT <= 64 &&
                   MOE_RSTAT_COUNT <= 64,
               "moe_h5_describe lists at most 64 columns or kinds");

typedef struct moe__h5_errwalk {
    char  *buf;
    size_t len;
    int    n;
} moe__h5_errwalk_t;

static inline herr_t moe__h5_errwalk_cb(unsigned n, const H5E_error2_t *err, void *data)
{
    moe__h5_errwalk_t *w = data;
    size_t             used;

    (void)n;
    if (w->n < 2 && err->desc && err->desc[0]) {
        used = strlen(w->buf);
        snprintf(w->buf + used, w->len - used, "%s%s", w->n ? "; " : "", err->desc);
        w->n++;
    }
    return 0;
}

/*
 * Writes the two innermost messages of HDF5's error stack ("a; b") into buf, clears the
 * stack and returns how many were found (0: buf is "").
 */
static inline int moe_h5_error_text(char *buf, size_t len)
{
    moe__h5_errwalk_t w = {buf, len, 0};

    if (len == 0)
        return 0;
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, moe__h5_errwalk_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    return w.n;
}

/* A fixed-length, NUL-terminated string type of `size` bytes. */
static inline hid_t moe_h5_string_type(size_t size)
{
    hid_t t = H5Tcopy(H5T_C_S1);

    if (t >= 0 && (H5Tset_size(t, size) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0)) {
        H5Tclose(t);
        t = -1;
    }
    return t;
}

/* The event kind type: an enum over int32 named by MOE_EVENT_MAP (file: little-endian). */
static inline hid_t moe_h5_kind_type(int file)
{
    hid_t   t = H5Tenum_create(file ? H5T_STD_I32LE : H5T_NATIVE_INT32);
    int32_t v;

    for (v = 0; t >= 0 && v < MOE_EVENT_COUNT; v++)
        if (H5Tenum_insert(t, moe_tel_event_kind_name(v), &v) < 0) {
            H5Tclose(t);
            t = -1;
        }
    return t;
}

static inline hid_t moe_h5_event_type(int file);

/*
 * The HDF5 type of element type e: file = 1 the file type (little-endian, packed), 0 the
 * memory type (native; the events compound laid out as moe_tel_event_rec_t).
 */
static inline hid_t moe_h5_elem_type(moe_tel_elem_t e, int file)
{
    switch (e) {
    case MOE_TEL_ELEM_I64: return H5Tcopy(file ? H5T_STD_I64LE : H5T_NATIVE_INT64);
    case MOE_TEL_ELEM_F64: return H5Tcopy(file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE);
    case MOE_TEL_ELEM_I32: return H5Tcopy(file ? H5T_STD_I32LE : H5T_NATIVE_INT32);
    case MOE_TEL_ELEM_F32: return H5Tcopy(file ? H5T_IEEE_F32LE : H5T_NATIVE_FLOAT);
    case MOE_TEL_ELEM_U8: return H5Tcopy(file ? H5T_STD_U8LE : H5T_NATIVE_UINT8);
    case MOE_TEL_ELEM_S64: case MOE_TEL_ELEM_S32: case MOE_TEL_ELEM_S160:
        return moe_h5_string_type(moe_tel_elem_size(e));
    case MOE_TEL_ELEM_KIND: return moe_h5_kind_type(file);
    case MOE_TEL_ELEM_EVENT: return moe_h5_event_type(file);
    default: return -1;
    }
}

/*
 * The events compound of MOE_TEL_EVENT_MEMBER_MAP: file = 1 packed in member order,
 * 0 native, over moe_tel_event_rec_t.
 */
static inline hid_t moe_h5_event_type(int file)
{
    hid_t  t = H5Tcreate(H5T_COMPOUND, file ? moe_tel_elem_size(MOE_TEL_ELEM_EVENT)
                                            : sizeof(moe_tel_event_rec_t));
    hid_t  m;
    size_t off = 0;
    int    ok = t >= 0;

#define MOE__H5_MEMBER(field, elem, since, meaning)                                       \
    m = ok ? moe_h5_elem_type(elem, file) : -1;                                           \
    ok = m >= 0 && H5Tinsert(t, #field, file ? off : offsetof(moe_tel_event_rec_t, field), \
                             m) >= 0;                                                     \
    off += moe_tel_elem_size(elem);                                                       \
    if (m >= 0)                                                                           \
        H5Tclose(m);
    MOE_TEL_EVENT_MEMBER_MAP(MOE__H5_MEMBER)
#undef MOE__H5_MEMBER
    if (!ok && t >= 0) {
        H5Tclose(t);
        t = -1;
    }
    return t;
}

/* A variable-length UTF-8 string attribute (h5py reads str): n = 0 a scalar, else a list. */
static inline herr_t moe_h5_attr_strings(hid_t loc, const char *name, const char *const *s,
                                         hsize_t n)
{
    hid_t  ty = H5Tcopy(H5T_C_S1), sp = -1, a = -1;
    herr_t rc = -1;

    if (ty >= 0 && H5Tset_size(ty, H5T_VARIABLE) >= 0 && H5Tset_cset(ty, H5T_CSET_UTF8) >= 0 &&
        (sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL)) >= 0 &&
        (H5Aexists(loc, name) <= 0 || H5Adelete(loc, name) >= 0) &&
        (a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
        rc = H5Awrite(a, ty, s);
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    if (ty >= 0)
        H5Tclose(ty);
    return rc;
}

/*
 * What makes dataset `ds` (schema entry def) self-describing: a dimension label on every
 * dimension, "description" (def's, followed by "; note" when note is given), "units" (a
 * string, or on a column dataset a list with one unit per column beside the "columns" list)
 * and, on the events, "kind_names". Every writer of telemetry calls it after creating a
 * dataset.
 */
static inline herr_t moe_h5_describe(hid_t ds, const moe_tel_dset_t *def, const char *note)
{
    const moe_tel_column_t *cols;
    const char             *names[64], *units[64], *desc = def->description;
    char                    text[512];
    int                     i, n;

    for (i = 0; i < def->rank; i++)
        if (H5DSset_label(ds, (unsigned)i, moe_tel_dim(def->dims[i])->label) < 0)
            return -1;
    if (note && note[0]) {
        snprintf(text, sizeof(text), "%s; %s", def->description, note);
        desc = text;
    }
    if (moe_h5_attr_strings(ds, "description", &desc, 0) < 0)
        return -1;
    n = moe_tel_dim_columns(def->dims[def->rank - 1], &cols);
    if (n > 64)
        return -1;
    if (n > 0) {
        for (i = 0; i < n; i++) {
            names[i] = cols[i].name;
            units[i] = cols[i].unit;
        }
        if (moe_h5_attr_strings(ds, "columns", names, (hsize_t)n) < 0 ||
            moe_h5_attr_strings(ds, "units", units, (hsize_t)n) < 0)
            return -1;
    } else if (def->units[0] && moe_h5_attr_strings(ds, "units", &def->units, 0) < 0) {
        return -1;
    }
    if (def->elem == MOE_TEL_ELEM_EVENT) {
        for (i = 0; i < MOE_EVENT_COUNT; i++)
            names[i] = moe_tel_event_kind_name(i);
        if (moe_h5_attr_strings(ds, "kind_names", names, MOE_EVENT_COUNT) < 0)
            return -1;
    }
    return 0;
}

#endif /* MOERUN_BASE_H5TEL_H */
