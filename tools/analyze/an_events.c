/*
 * tools/analyze/an_events.c — the run's event log (events/) copied into the report's "events".
 *
 * What always holds:
 *  1. Events are read in chunks of AN_EVENT_CHUNK; at most AN_EVENTS_MAX are kept and the rest
 *     are counted in "events_omitted", so the report's size is bounded.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze_int.h"

#define AN_EVENTS_MAX 100000 /* events kept in the report (about 100 MB of JSON tree) */
moe_status_t an_events(moe_tel_reader_t *r, cJSON *root, int64_t nevents)
{
    moe_tel_event_t *ev = malloc(AN_EVENT_CHUNK * sizeof(*ev));
    cJSON           *arr = cJSON_AddArrayToObject(root, "events");
    int64_t          i0, i, n;
    moe_status_t     st = MOE_OK;

    if (ev == NULL)
        return MOE_ERR_NOMEM;
    /* memory bound: the report keeps the first AN_EVENTS_MAX events and counts the rest */
    if (nevents > AN_EVENTS_MAX) {
        cJSON_AddNumberToObject(root, "events_omitted", (double)(nevents - AN_EVENTS_MAX));
        nevents = AN_EVENTS_MAX;
    }
    for (i0 = 0; i0 < nevents && st == MOE_OK; i0 += AN_EVENT_CHUNK) {
        n = nevents - i0 < AN_EVENT_CHUNK ? nevents - i0 : AN_EVENT_CHUNK;
        st = moe_tel_reader_events(r, i0, n, ev);
        for (i = 0; st == MOE_OK && i < n && arr; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "step", (double)ev[i].step);
            cJSON_AddNumberToObject(o, "layer", ev[i].layer);
            cJSON_AddNumberToObject(o, "expert", ev[i].expert);
            cJSON_AddStringToObject(o, "kind", ev[i].kind_name);
            an_add_num(o, "value", ev[i].value);
            an_add_num(o, "threshold", ev[i].threshold);
            cJSON_AddStringToObject(o, "message", ev[i].message);
            cJSON_AddItemToArray(arr, o);
        }
    }
    free(ev);
    return st;
}
