/*
 * tests/telemetry/config_names_stub.c — TEMPORARY: the four enum-name functions of
 * moerun/config.h, linked into tel_roundtrip only while runtime/config.c is still a
 * placeholder (tests/telemetry/CMakeLists.txt checks). Delete once config.c is in.
 */
#include "moerun/config.h"

const char *moe_activation_name(moe_activation_t a)
{
    return a == MOE_ACT_SWIGLU ? "swiglu" : "gelu";
}

const char *moe_drop_policy_name(moe_drop_policy_t p)
{
    return p == MOE_DROP_PROBS ? "probs" : "position";
}

const char *moe_placement_name(moe_placement_kind_t p)
{
    return p == MOE_PLACE_ROUND_ROBIN ? "round-robin" : "contiguous";
}

const char *moe_tel_mode_name(moe_tel_mode_t m)
{
    return m == MOE_TEL_GATHER ? "gather" : "parallel";
}
