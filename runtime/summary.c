/*
 * runtime/summary.c — the end-of-run summary, as text for people and JSON for scripts.
 *
 * JSON keys (documented in docs/summary.md): see moe_summary_to_json. Numbers are totals
 * over all steps, layers and ranks unless the key says otherwise.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "engine.h"
#include "moerun/base/fileio.h"

static cJSON *summary_build(const moe_engine_t *eng, const moe_summary_t *s)
{
    const moe_config_t *c = &eng->cfg;
    const moe_event_t  *ev = s->events;
    cJSON              *root = cJSON_CreateObject(), *o, *a;
    int                 i;

    if (root == NULL)
        return NULL;
    cJSON_AddStringToObject(root, "moerun_version", MOERUN_VERSION);
    cJSON_AddStringToObject(root, "status", s->status);
    cJSON_AddNumberToObject(root, "steps_completed", (double)s->steps);
    cJSON_AddNumberToObject(root, "steps_requested", (double)c->steps);
    cJSON_AddNumberToObject(root, "ranks", s->nranks);
    cJSON_AddNumberToObject(root, "nodes", s->nnodes);
    cJSON_AddNumberToObject(root, "experts", c->experts);
    cJSON_AddNumberToObject(root, "top_k", c->top_k);
    cJSON_AddNumberToObject(root, "layers", c->layers);
    cJSON_AddNumberToObject(root, "d_model", c->d_model);
    cJSON_AddNumberToObject(root, "d_ffn", c->d_ffn);
    cJSON_AddNumberToObject(root, "tokens_per_rank", c->tokens);
    cJSON_AddNumberToObject(root, "capacity_factor", c->capacity_factor);
    cJSON_AddNumberToObject(root, "capacity", (double)eng->capacity);
    cJSON_AddStringToObject(root, "drop_policy", moe_drop_policy_name(c->drop_policy));
    cJSON_AddStringToObject(root, "workload", c->workload);
    cJSON_AddStringToObject(root, "exchange", c->exchange);
    cJSON_AddStringToObject(root, "router", c->router);
    cJSON_AddStringToObject(root, "placement", c->placement);
    cJSON_AddNumberToObject(root, "elapsed_s", s->elapsed_s);
    cJSON_AddNumberToObject(root, "tokens_per_s", s->tokens_per_s);
    cJSON_AddNumberToObject(root, "warmup_steps", (double)s->warmup_steps);
    cJSON_AddNumberToObject(root, "step_time_p50_s", s->step_p50_s);
    cJSON_AddNumberToObject(root, "step_time_p99_s", s->step_p99_s);
    cJSON_AddNumberToObject(root, "compute_slots", s->compute_slots);
    cJSON_AddNumberToObject(root, "compute_slots_max_holders", s->compute_slots_max_holders);
    cJSON_AddNumberToObject(root, "compute_slots_wait_s", s->compute_slots_wait_s);
    cJSON_AddNumberToObject(root, "wait_sleep_us", s->wait_sleep_us);
    o = cJSON_AddObjectToObject(root, "expert_rows_per_rank");
    if (o) {
        cJSON_AddNumberToObject(o, "min", s->expert_rows[0]);
        cJSON_AddNumberToObject(o, "mean", s->expert_rows[1]);
        cJSON_AddNumberToObject(o, "max", s->expert_rows[2]);
    }
    o = cJSON_AddObjectToObject(root, "expert_cpu_gflops_per_rank");
    if (o) {
        cJSON_AddNumberToObject(o, "min", s->expert_gflops[0]);
        cJSON_AddNumberToObject(o, "mean", s->expert_gflops[1]);
        cJSON_AddNumberToObject(o, "max", s->expert_gflops[2]);
        cJSON_AddNumberToObject(o, "slowest_rank", s->expert_slowest_rank);
    }
    o = cJSON_AddObjectToObject(root, "phase_seconds_mean");
    for (i = 0; i < MOE_PHASE_COUNT && o; i++)
        cJSON_AddNumberToObject(o, moe_phase_names[i], s->phase_s[i]);
    o = cJSON_AddObjectToObject(root, "phase_seconds_max");
    for (i = 0; i < MOE_PHASE_COUNT && o; i++)
        cJSON_AddNumberToObject(o, moe_phase_names[i], s->phase_max_s[i]);
    cJSON_AddNumberToObject(root, "routed", (double)s->routed);
    cJSON_AddNumberToObject(root, "processed", (double)s->processed);
    cJSON_AddNumberToObject(root, "dropped", (double)s->dropped);
    cJSON_AddNumberToObject(root, "drop_rate", s->drop_rate);
    cJSON_AddNumberToObject(root, "unrouted", (double)s->unrouted);
    cJSON_AddNumberToObject(root, "max_mean_load", s->max_mean_load);
    cJSON_AddNumberToObject(root, "hottest_layer", s->hottest_layer);
    cJSON_AddNumberToObject(root, "hottest_expert", s->hottest_expert);
    cJSON_AddNumberToObject(root, "load_entropy_norm", s->load_entropy_norm);
    cJSON_AddNumberToObject(root, "gate_entropy_norm", s->gate_entropy_norm);
    cJSON_AddNumberToObject(root, "top1_prob", s->top1_prob);
    cJSON_AddNumberToObject(root, "aux_loss", s->aux_loss);
    cJSON_AddNumberToObject(root, "bytes_sent", (double)s->bytes_sent);
    cJSON_AddNumberToObject(root, "inter_node_bytes", (double)s->inter_node_bytes);
    cJSON_AddNumberToObject(root, "intra_node_bytes", (double)s->intra_node_bytes);
    o = cJSON_AddObjectToObject(root, "output_checksum");
    if (o) {
        cJSON_AddNumberToObject(o, "sum", s->out_sum);
        cJSON_AddNumberToObject(o, "sumsq", s->out_sumsq);
        cJSON_AddNumberToObject(o, "count", (double)s->out_count);
    }
    cJSON_AddNumberToObject(root, "alerts_raised", (double)s->alerts);
    a = cJSON_AddArrayToObject(root, "alerts");
    for (i = 0; i < s->n_events && a; i++) {
        cJSON *x = cJSON_CreateObject();
        if (x == NULL)
            break;
        cJSON_AddStringToObject(x, "kind", moe_event_names[ev[i].kind]);
        cJSON_AddNumberToObject(x, "step", (double)ev[i].step);
        cJSON_AddNumberToObject(x, "layer", ev[i].layer);
        cJSON_AddNumberToObject(x, "expert", ev[i].expert);
        cJSON_AddNumberToObject(x, "value", ev[i].value);
        cJSON_AddNumberToObject(x, "threshold", ev[i].threshold);
        cJSON_AddStringToObject(x, "message", ev[i].message);
        cJSON_AddItemToArray(a, x);
    }
    cJSON_AddStringToObject(root, "telemetry", c->telemetry);
    return root;
}

char *moe_summary_to_json(const moe_engine_t *eng, const moe_summary_t *s)
{
    cJSON *root = summary_build(eng, s);
    char  *txt;

    if (root == NULL)
        return NULL;
    txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return txt;
}

moe_status_t moe_summary_write_json(moe_engine_t *eng, const moe_summary_t *s,
                                    const char *path)
{
    cJSON    *root;
    char     *txt, err[MOE_PATH_MAX + 256];
    moe_out_t out;
    int       ok;

    if (path == NULL || path[0] == '\0')
        return MOE_OK;
    root = summary_build(eng, s);
    txt = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (txt == NULL)
        return MOE_ERROR_SET(&eng->log, MOE_ERR_NOMEM, "out of memory building the summary");
    if (moe_out_open(&out, path, eng->cfg.follow_symlinks ? MOE_OUT_FOLLOW : 0u, err,
                     sizeof(err)) != 0) {
        free(txt);
        return MOE_ERROR_SET(&eng->log, MOE_ERR_IO, "%s", err);
    }
    ok = fputs(txt, out.f) >= 0 && fputc('\n', out.f) != EOF;
    free(txt);
    if (!ok) {
        moe_out_abort(&out);
        return MOE_ERROR_SET(&eng->log, MOE_ERR_IO, "cannot write '%s': %s", path,
                             strerror(errno ? errno : EIO));
    }
    if (moe_out_commit(&out, err, sizeof(err)) != 0)
        return MOE_ERROR_SET(&eng->log, MOE_ERR_IO, "%s", err);
    return MOE_OK;
}

/* "%.3f", or "missing" for a value the run does not have (NaN: a replay's router statistics). */
static const char *sum_num(double v, char *buf, size_t n)
{
    if (isfinite(v))
        snprintf(buf, n, "%.3f", v);
    else
        snprintf(buf, n, "missing");
    return buf;
}

void moe_summary_print(const moe_engine_t *eng, const moe_summary_t *s, FILE *out)
{
    const moe_config_t *c = &eng->cfg;
    const moe_event_t  *ev = s->events;
    double              tot = s->phase_s[MOE_PHASE_TOTAL];
    int                 i;
    char                a[32], b[32], g[32];

    fprintf(out, "== moerun summary (%s) ==\n", s->status);
    fprintf(out, "run        %ld/%ld steps, %d ranks on %d node%s, E=%d top-%d, %d layer%s, "
                 "%d tokens/rank, d=%d ffn=%d %s\n",
            s->steps, c->steps, s->nranks, s->nnodes, s->nnodes == 1 ? "" : "s", c->experts,
            c->top_k, c->layers, c->layers == 1 ? "" : "s", c->tokens, c->d_model, c->d_ffn,
            moe_activation_name(c->activation));
    fprintf(out, "%s %s, exchange %s, placement %s, capacity factor %g (%s)\n",
            c->replay[0] ? "replay    " : "workload  ", c->replay[0] ? c->replay : c->workload,
            c->exchange, c->placement, c->capacity_factor,
            eng->capacity < 0 ? "dropless" : moe_drop_policy_name(c->drop_policy));
    fprintf(out, "throughput %.0f tokens/s (%.3f s in steps", s->tokens_per_s, s->elapsed_s);
    if (s->warmup_steps > 0)
        fprintf(out, "; the first %ld warm-up step%s not counted", s->warmup_steps,
                s->warmup_steps == 1 ? "" : "s");
    fprintf(out, ")\n");
    fprintf(out, "step time  p50 %.3f ms, p99 %.3f ms (slowest rank)\n", 1e3 * s->step_p50_s,
            1e3 * s->step_p99_s);
    if (s->compute_slots > 0)
        fprintf(out, "slots      at most %d rank%s of a node computing at once (--compute-slots %s): "
                     "%d at most seen, %.3f s per rank asleep waiting for a slot\n",
                s->compute_slots, s->compute_slots == 1 ? "" : "s",
                c->compute_slots < 0 ? "auto" : "set", s->compute_slots_max_holders,
                s->compute_slots_wait_s);
    if (s->wait_sleep_us > 0)
        fprintf(out, "waits      flat's overlapped waits sleep %d us between tests (--wait-sleep-us %s)\n",
                s->wait_sleep_us, c->wait_sleep_us < 0 ? "auto: more ranks than cores" : "set");
    fprintf(out, "phases     ");
    for (i = 0; i < MOE_PHASE_TOTAL; i++)
        fprintf(out, "%s %.1f%%%s", moe_phase_names[i],
                tot > 0 ? 100.0 * s->phase_s[i] / tot : 0.0, i < MOE_PHASE_TOTAL - 1 ? ", " : "");
    fprintf(out, " (of %.3f s per rank)\n", tot);
    fprintf(out, "stages     inter-node payload stage: %.1f%% of dispatch, %.1f%% of combine\n",
            s->phase_s[MOE_PHASE_DISPATCH] > 0
                ? 100.0 * s->phase_s[MOE_PHASE_DISPATCH_INTER] / s->phase_s[MOE_PHASE_DISPATCH]
                : 0.0,
            s->phase_s[MOE_PHASE_COMBINE] > 0
                ? 100.0 * s->phase_s[MOE_PHASE_COMBINE_INTER] / s->phase_s[MOE_PHASE_COMBINE]
                : 0.0);
    fprintf(out, "waiting    for other ranks: %.1f%% of counts (slowest gate), %.1f%% of combine "
                 "(slowest experts)\n",
            s->phase_s[MOE_PHASE_COUNTS] > 0
                ? 100.0 * s->phase_s[MOE_PHASE_COUNTS_WAIT] / s->phase_s[MOE_PHASE_COUNTS]
                : 0.0,
            s->phase_s[MOE_PHASE_COMBINE] > 0
                ? 100.0 * s->phase_s[MOE_PHASE_COMBINE_WAIT] / s->phase_s[MOE_PHASE_COMBINE]
                : 0.0);
    if (s->expert_slowest_rank >= 0 && s->expert_gflops[2] > 0)
        fprintf(out, "compute    expert calls per rank: %.0f-%.0f rows (mean %.0f), %.1f-%.1f GFLOP/s "
                     "in CPU time; rank %d slowest, %.3f of the fastest\n",
                s->expert_rows[0], s->expert_rows[2], s->expert_rows[1], s->expert_gflops[0],
                s->expert_gflops[2], s->expert_slowest_rank, s->expert_gflops[0] / s->expert_gflops[2]);
    fprintf(out, "routing    router %s: %lld pairs routed, %lld processed, %lld dropped "
                 "(%.3f%%), %lld tokens unrouted\n",
            c->router, (long long)s->routed, (long long)s->processed, (long long)s->dropped,
            100.0 * s->drop_rate, (long long)s->unrouted);
    fprintf(out, "balance    max/mean expert load %.2f (layer %d expert %d), "
                 "load entropy %.3f of max, aux loss %s\n",
            s->max_mean_load, s->hottest_layer, s->hottest_expert, s->load_entropy_norm,
            sum_num(s->aux_loss, a, sizeof(a)));
    /* a replay routes by the log's choices: the router's distribution is missing */
    fprintf(out, "gate       mean top-1 probability %s, gate entropy %s of max\n",
            sum_num(s->top1_prob, b, sizeof(b)), sum_num(s->gate_entropy_norm, g, sizeof(g)));
    fprintf(out, "traffic    %.3f MB sent between ranks: %.3f MB across nodes, %.3f MB inside nodes\n",
            s->bytes_sent / 1e6, s->inter_node_bytes / 1e6, s->intra_node_bytes / 1e6);
    if (s->alerts == 0) {
        fprintf(out, "alerts     none\n");
    } else {
        fprintf(out, "alerts     %ld raised%s\n", s->alerts,
                s->alerts > s->n_events ? " (first ones listed)" : "");
        for (i = 0; i < s->n_events && i < 12; i++)
            fprintf(out, "  step %-6ld %-17s %s\n", ev[i].step, moe_event_names[ev[i].kind],
                    ev[i].message);
        if (s->n_events > 12)
            fprintf(out, "  ... %d more in the telemetry file\n", s->n_events - 12);
    }
    fprintf(out, "checksum   sum %.9g sumsq %.9g over %lld floats\n", s->out_sum, s->out_sumsq,
            (long long)s->out_count);
    fprintf(out, "telemetry  %s\n", c->telemetry[0] ? c->telemetry : "(none)");
}
