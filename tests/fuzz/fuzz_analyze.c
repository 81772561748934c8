/*
 * tests/fuzz/fuzz_analyze.c — libFuzzer target for the analyser on mutated *valid* files
 * (issue 15): the input is not a file but a list of mutations applied through HDF5 to a copy
 * of a valid telemetry file (MOE_FUZZ_BASE, tests/fuzz/corpus/telemetry_reader/small.h5), so
 * every mutation gets past the HDF5 signature and the reader's shape checks and reaches the
 * analyses and the three renderers: values (any int64 or special double in any element of any
 * dataset), declared sizes (a dataset's rows resized up or down), numeric root attributes,
 * and string attributes (arbitrary bytes). What must hold: no crash and no sanitizer report;
 * a refused file always comes with a message; an accepted one renders in every format.
 *
 * Input: records of 12 bytes: op, target, index (2 bytes, little-endian), value (8 bytes).
 *   op % 5: 0 set element index of dataset target to value (as int64, converted by HDF5);
 *           1 the same with a special double (NaN, inf, -inf, 1e308, -0, 5e-324, value);
 *           2 resize dataset target's rows to value % 2^16 (chunked datasets only);
 *           3 set root integer attribute target to value;
 *           4 set root string attribute target to the 8 value bytes (NUL-free prefix).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <hdf5.h>

#include "analyze.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fz_dsets[] = {
    "steps/step", "steps/routed", "steps/processed", "steps/dropped", "steps/dropped_capacity",
    "steps/capacity", "steps/router", "steps/phase_time", "steps/traffic", "routes/step",
    "routes/token", "routes/expert", "routes/weight", "routes/kept", "events",
    "accumulated/coselect", "accumulated/traffic_matrix", "topology/node",
    "topology/local_rank", "topology/numa_node", "placement/expert_owner"};
static const char *const fz_iattrs[] = {"experts", "top_k", "layers", "nranks", "nnodes",
                                        "d_model", "d_ffn", "tokens_per_rank", "flush_interval",
                                        "route_samples", "steps_completed", "schema_version"};
static const char *const fz_sattrs[] = {"status", "workload", "exchange", "placement",
                                        "moerun_version", "source", "drop_policy", "config"};
#define FZ_N(a) (sizeof(a) / sizeof(a[0]))

static char  fz_path[64];
static void *fz_base;
static long  fz_base_len;

static int fz_load_base(void)
{
    FILE *f = fopen(MOE_FUZZ_BASE, "rb");

    if (f == NULL)
        return -1;
    fseek(f, 0, SEEK_END);
    fz_base_len = ftell(f);
    rewind(f);
    fz_base = malloc((size_t)fz_base_len);
    if (fz_base == NULL || fread(fz_base, 1, (size_t)fz_base_len, f) != (size_t)fz_base_len)
        abort();
    fclose(f);
    return 0;
}

static void fz_set_elem(hid_t file, const char *path, uint32_t idx, hid_t mt, const void *v)
{
    hid_t    d = H5Dopen2(file, path, H5P_DEFAULT), sp = -1, ms = -1, ft = -1;
    hsize_t  dims[H5S_MAX_RANK], n = 1, coord[H5S_MAX_RANK], one = 1, rem;
    int      nd, i;

    if (d < 0)
        return;
    sp = H5Dget_space(d);
    ft = H5Dget_type(d);
    nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    for (i = 0; i < nd; i++)
        n *= dims[i];
    /* compound rows (events) and strings are left to the attribute ops */
    if (nd >= 1 && n > 0 && H5Tget_class(ft) != H5T_COMPOUND && H5Tget_class(ft) != H5T_STRING) {
        rem = idx % n;
        for (i = nd - 1; i >= 0; i--) {
            coord[i] = rem % dims[i];
            rem /= dims[i];
        }
        ms = H5Screate_simple(1, &one, NULL);
        H5Sselect_elements(sp, H5S_SELECT_SET, 1, coord);
        H5Dwrite(d, mt, ms, sp, H5P_DEFAULT, v);
    }
    if (ms >= 0)
        H5Sclose(ms);
    H5Tclose(ft);
    H5Sclose(sp);
    H5Dclose(d);
}

static void fz_resize(hid_t file, const char *path, uint64_t rows)
{
    hid_t   d = H5Dopen2(file, path, H5P_DEFAULT), sp;
    hsize_t dims[H5S_MAX_RANK];
    int     nd;

    if (d < 0)
        return;
    sp = H5Dget_space(d);
    nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    if (nd >= 1) {
        /* the base file is written by parallel HDF5, whose datasets allocate their chunks
         * early: growing events to 2^20 rows wrote 200 MB of fill in the harness (a 20 s
         * libFuzzer timeout under ASan); 2^16 rows are still far past any row count the
         * base file declares (a few steps, 2 events) */
        dims[0] = rows % (1u << 16);
        H5Dset_extent(d, dims);
    }
    H5Sclose(sp);
    H5Dclose(d);
}

static void fz_attr(hid_t file, const char *name, hid_t ft, hid_t mt, const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR), a;

    if (H5Aexists(file, name) > 0)
        H5Adelete(file, name);
    a = H5Acreate2(file, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, mt, v);
        H5Aclose(a);
    }
    H5Sclose(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double specials[] = {NAN, INFINITY, -INFINITY, 1e308, -0.0, 5e-324};
    an_opts_t opt;
    moe_log_t log;
    cJSON    *root, *runs, *run = NULL;
    FILE     *f;
    hid_t     file;
    size_t    off;

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* the mutations go through the HDF5 API: the metadata stays well formed, so the reader's
     * crash probe (a fork per file, fuzz_telemetry_reader's concern) only costs time */
    setenv("MOERUN_READER_PROBE", "0", 1);
    if (fz_base == NULL && fz_load_base() != 0)
        return 0;
    if (fz_path[0] == '\0')
        snprintf(fz_path, sizeof(fz_path), "/tmp/fuzz_analyze.%ld.h5", (long)getpid());
    if ((f = fopen(fz_path, "wb")) == NULL)
        return 0;
    fwrite(fz_base, 1, (size_t)fz_base_len, f);
    fclose(f);
    if ((file = H5Fopen(fz_path, H5F_ACC_RDWR, H5P_DEFAULT)) < 0)
        return 0;
    for (off = 0; off + 12 <= size && off < 12 * 64; off += 12) {
        const uint8_t *p = data + off;
        uint32_t       idx = (uint32_t)p[2] | (uint32_t)p[3] << 8;
        int64_t        v;
        double         x;
        char           s[9];
        memcpy(&v, p + 4, 8);
        switch (p[0] % 5) {
        case 0:
            fz_set_elem(file, fz_dsets[p[1] % FZ_N(fz_dsets)], idx, H5T_NATIVE_INT64, &v);
            break;
        case 1:
            x = p[4] % 7 < 6 ? specials[p[4] % 7] : (double)v;
            fz_set_elem(file, fz_dsets[p[1] % FZ_N(fz_dsets)], idx, H5T_NATIVE_DOUBLE, &x);
            break;
        case 2:
            fz_resize(file, fz_dsets[p[1] % FZ_N(fz_dsets)], (uint64_t)v);
            break;
        case 3:
            fz_attr(file, fz_iattrs[p[1] % FZ_N(fz_iattrs)], H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
            break;
        default: {
            hid_t st = H5Tcopy(H5T_C_S1);
            memcpy(s, p + 4, 8);
            s[8] = '\0';
            H5Tset_size(st, strlen(s) + 1);
            fz_attr(file, fz_sattrs[p[1] % FZ_N(fz_sattrs)], st, st, s);
            H5Tclose(st);
        }
        }
    }
    H5Fclose(file);
    H5Eclear2(H5E_DEFAULT);

    memset(&opt, 0, sizeof(opt));
    opt.dead_window = 3;
    moe_log_init(&log, 0, MOE_LOG_ERROR);
    if (an_run_analyse(fz_path, &opt, &log, &run) != MOE_OK) {
        if (log.last_error[0] == '\0')
            abort(); /* a refusal always says why */
        return 0;
    }
    root = cJSON_CreateObject();
    runs = cJSON_AddArrayToObject(root, "runs");
    cJSON_AddItemToArray(runs, run);
    an_compare(root);
    if ((f = fopen("/dev/null", "w")) != NULL) {
        an_render_terminal(root, f);
        if (an_render_markdown(root, f) != 0 || an_render_html(root, f) != 0)
            abort(); /* /dev/null takes every byte */
        fclose(f);
    }
    cJSON_Delete(root);
    return 0;
}
