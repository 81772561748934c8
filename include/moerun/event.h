/*
 * moerun/event.h — a monitor event, as the public API hands it out (moe_summary_t.events)
 * and as the telemetry file stores it (events dataset, docs/telemetry.md).
 *
 * The kinds come from one X-macro; the enum and the names are both generated from it.
 * Kinds are only ever appended, so a kind's number never changes meaning.
 */
#ifndef MOERUN_EVENT_H
#define MOERUN_EVENT_H

/* Monitor event kinds. */
#define MOE_EVENT_MAP(X)                        \
    X(MOE_EVENT_STARVED, "starved_expert")      \
    X(MOE_EVENT_DEAD, "dead_expert")            \
    X(MOE_EVENT_DROP_RATE, "drop_rate")         \
    X(MOE_EVENT_LOW_ENTROPY, "low_entropy")     \
    X(MOE_EVENT_COLLAPSE, "collapse")           \
    X(MOE_EVENT_LOGIT_SATURATION, "logit_saturation")

#define MOE__EVENT_ENUM(name, str) name,
typedef enum { MOE_EVENT_MAP(MOE__EVENT_ENUM) MOE_EVENT_COUNT } moe_event_kind_t;
#undef MOE__EVENT_ENUM

#define MOE_EVENT_MSG_MAX 160

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
    switch (kind) {
#define MOE__EVENT_CASE(name, str) case name: return str;
    MOE_EVENT_MAP(MOE__EVENT_CASE)
#undef MOE__EVENT_CASE
    case MOE_EVENT_COUNT:
        break;
    }
    return "unknown";
}

#endif /* MOERUN_EVENT_H */
