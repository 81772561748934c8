/*
 * tests/fuzz/fuzz_import.c — libFuzzer target for moerun-import end to end (issue 15): the
 * input is a JSON-lines routing log (seeds: tests/fuzz/corpus/import/, rows with label
 * fields) run through moe_import_main with --skip-bad, so the importer's own code — label
 * keys and values (interning, the value cap, "(other)"), step and token bookkeeping, the
 * checked count sums and the HDF5 writer — sees hostile rows, not only the row parsers
 * (fuzz_routing_log). What must hold: no crash, no sanitizer report, exit 0 or 1 (2 would
 * be a usage error, impossible with fixed arguments), and a failed import leaves no file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_in[64], fz_out[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[] = {"moerun-import", fz_in, "-o", fz_out, "--experts", "8", "--skip-bad",
                    "--quiet", "--format", "jsonl", NULL};
    FILE *f;
    int   rc;

    if (fz_in[0] == '\0') {
        snprintf(fz_in, sizeof(fz_in), "/tmp/fuzz_import.%ld.jsonl", (long)getpid());
        snprintf(fz_out, sizeof(fz_out), "/tmp/fuzz_import.%ld.h5", (long)getpid());
    }
    if ((f = fopen(fz_in, "wb")) == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    unlink(fz_out);
    rc = moe_import_main(10, argv);
    if (rc != 0 && rc != 1)
        abort();
    if (rc != 0 && access(fz_out, F_OK) == 0)
        abort(); /* a failed import must leave nothing */
    return 0;
}
