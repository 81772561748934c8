/*
 * tools/moerun_import.c — `moerun-import`: routing logs recorded from real models into a
 * moerun telemetry file. The program is the command line only; the importer is the
 * moerun_import library (tools/import/, docs/import.md).
 */
#include "import.h"

int main(int argc, char **argv)
{
    return moe_import_main(argc, argv);
}
