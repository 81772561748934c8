/*
 * tools/import/import.h — the routing-log importer (library moerun_import) behind the
 * `moerun-import` program: JSON lines, CSV and per-expert count tables into a moerun
 * telemetry file. Formats, options and mapping: docs/import.md.
 */
#ifndef MOERUN_TOOLS_IMPORT_H
#define MOERUN_TOOLS_IMPORT_H

/*
 * Runs the importer on the command line argv[0..argc): parses the options, reads the log,
 * writes the telemetry file (nothing half-written), prints its one-line report.
 * Returns the process exit code: 0 written, 1 bad input or I/O error, 2 usage error.
 */
int moe_import_main(int argc, char **argv);

/*
 * Reads the per-token routes of a routing log for `moerun --replay` (docs/replay.md) into
 * *out (moe_replay_routes_free frees it): any format moerun-import reads (JSON lines or CSV
 * with token_idx, read with the importer's rules: sequence field, --probs auto, duplicates
 * are errors; `sequence_field` as --sequence-field, NULL = auto-detect), or a telemetry file
 * (.h5) with routes/ (an imported log, or a run's sampled routes). Tokens without a row for
 * every layer are left out and counted in out->incomplete. Returns 0, or -1 with one message
 * in err naming the file, line and field.
 */
#include "moerun/replay.h"
int moe_import_load_routes(const char *path, const char *sequence_field,
                           moe_replay_routes_t *out, char *err, size_t errlen);

#endif /* MOERUN_TOOLS_IMPORT_H */
