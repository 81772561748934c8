/*
 * moerun/event.h — a monitor event, as the public API hands it out (moe_summary_t.events)
 * and as the telemetry file stores it (events dataset, docs/telemetry.md).
 *
 * The kinds come from one X-macro, MOE_EVENT_MAP in moerun/telemetry_schema.h (the one
 * definition of the file layout); the enum and the names are both generated from it.
 * Kinds are only ever appended, so a kind's number never changes meaning.
 */
#ifndef MOERUN_EVENT_H
#define MOERUN_EVENT_H

#include "moerun/telemetry_schema.h" /* MOE_EVENT_MAP, moe_event_kind_t, MOE_TEL_MESSAGE_MAX */

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

/* Name of an event kind ("collapse", ...); "unknown" outside the range. Never NULL. */
static inline const char *moe_event_kind_name(moe_event_kind_t kind)
{
    const char *n = moe_tel_event_kind_name((int)kind);

    return n ? n : "unknown";
}

#endif /* MOERUN_EVENT_H */
