/*
 * moerun/event.h — a monitor event, as the public API hands it out (moe_summary_t.events)
 * and as the telemetry file stores it (events dataset, docs/telemetry.md).
 *
 * The kinds (MOE_EVENT_MAP, moe_event_kind_t) and their names (moe_tel_event_kind_name)
 * are part of the telemetry schema, moerun/telemetry_schema.h.
 */
#ifndef MOERUN_EVENT_H
#define MOERUN_EVENT_H

#include "moerun/telemetry_schema.h"

#define MOE_EVENT_MSG_MAX MOE_TEL_MESSAGE_MAX

typedef struct moe_event {
    long             step;       /* step at which the condition was first seen */
    int              layer;      /* -1 if not layer-specific */
    int              expert;     /* -1 if not expert-specific */
    moe_event_kind_t kind;
    double           value;      /* the measured quantity */
    double           threshold;  /* the threshold it crossed */
    char             message[MOE_EVENT_MSG_MAX];
} moe_event_t;

#endif /* MOERUN_EVENT_H */
