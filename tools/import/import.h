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

#endif /* MOERUN_TOOLS_IMPORT_H */
