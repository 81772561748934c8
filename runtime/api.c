/*
 * runtime/api.c — the small public calls that belong to no module: the library's version
 * and the names of the summary's phase columns (moerun/moerun.h).
 */
#include <stddef.h>

#include "moerun/moerun.h"
#include "telemetry.h"

const char *moe_version(int *major_p, int *minor_p, int *patch_p)
{
    if (major_p)
        *major_p = MOERUN_VERSION_MAJOR;
    if (minor_p)
        *minor_p = MOERUN_VERSION_MINOR;
    if (patch_p)
        *patch_p = MOERUN_VERSION_PATCH;
    return MOERUN_VERSION_STRING;
}

const char *moe_summary_phase_name(int phase)
{
    return phase >= 0 && phase < MOE_PHASE_COUNT ? moe_phase_names[phase] : NULL;
}
