/*
 * tests/fuzz/fuzz_telemetry_reader.c — libFuzzer target for tools/reader/telemetry_reader.c.
 *
 * The input is written to a private temporary file and opened with moe_tel_reader_open; if it
 * validates, every dataset the reader knows is read in full (bounded sizes) and the events
 * are decoded, so every bounds check of the reader is exercised. Seed it with real telemetry
 * files (tests/fuzz/corpus/telemetry/): mutations of a valid file reach the shape checks, a
 * random file stops at the HDF5 signature. What must hold: no crash, no sanitizer report in
 * the reader, and a failed open always comes with a message.
 * Note: crashes inside libhdf5 itself (not this reader) are possible on hostile files; they
 * are reported upstream and kept out of the regression corpus (docs/fuzzing.md).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "telemetry_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_ELEMS (1 << 20)

static const char *const fz_dsets[] = {
    MOE_TEL_STEP,        MOE_TEL_ROUTED,       MOE_TEL_PROCESSED,    MOE_TEL_DROPPED,
    MOE_TEL_DROPPED_CAPACITY, MOE_TEL_CAPACITY, MOE_TEL_ROUTER,      MOE_TEL_PHASE,
    MOE_TEL_TRAFFIC,     MOE_TEL_ROUTE_STEP,   MOE_TEL_ROUTE_TOKEN,  MOE_TEL_ROUTE_EXPERT,
    MOE_TEL_ROUTE_WEIGHT, MOE_TEL_ROUTE_KEPT,  MOE_TEL_COSELECT,     MOE_TEL_TRAFFIC_MATRIX,
    MOE_TEL_NODE,        MOE_TEL_LOCAL_RANK,   MOE_TEL_NUMA_NODE,    MOE_TEL_EXPERT_OWNER};

static char fz_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    moe_tel_reader_t *r = NULL;
    moe_log_t         log;
    FILE             *f;
    size_t            i;

    if (fz_path[0] == '\0')
        snprintf(fz_path, sizeof(fz_path), "/tmp/fuzz_tel.%ld.h5", (long)getpid());
    if ((f = fopen(fz_path, "wb")) == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    moe_log_init(&log, 0, MOE_LOG_ERROR);
    if (moe_tel_reader_open(fz_path, &log, &r) != MOE_OK) {
        if (log.last_error[0] == '\0')
            abort();
        return 0;
    }
    for (i = 0; i < sizeof(fz_dsets) / sizeof(fz_dsets[0]); i++) {
        int64_t dims[4], n = 1, rows;
        int     nd, d;
        double *buf;
        if (moe_tel_reader_dims(r, fz_dsets[i], dims, &nd) != MOE_OK || nd < 1)
            continue;
        for (d = 1; d < nd; d++)
            n *= dims[d] > 0 ? dims[d] : 1;
        rows = dims[0] < 64 ? dims[0] : 64;
        if (n <= 0 || n * (rows + 1) > FZ_MAX_ELEMS)
            continue;
        buf = malloc((size_t)(n * (rows + 1)) * sizeof(double));
        if (buf == NULL)
            continue;
        (void)moe_tel_reader_read(r, fz_dsets[i], MOE_TEL_F64, 0, rows, buf);
        (void)moe_tel_reader_read(r, fz_dsets[i], MOE_TEL_F64, dims[0], 1, buf); /* past the end */
        free(buf);
    }
    {
        int64_t np = moe_tel_reader_info(r)->nranks;
        char   *hosts;
        if (np > 0 && np <= 4096 && (hosts = malloc((size_t)np * 64)) != NULL) {
            (void)moe_tel_reader_strings(r, MOE_TEL_HOSTNAME, np, 64, hosts);
            (void)moe_tel_reader_strings(r, MOE_TEL_CPUSET, np, 64, hosts);
            free(hosts);
        }
    }
    {
        moe_tel_event_t ev[8];
        int64_t         nev = moe_tel_reader_info(r)->nevents;
        (void)moe_tel_reader_events(r, 0, nev < 8 ? nev : 8, ev);
    }
    moe_tel_reader_close(r);
    return 0;
}
