/*
 * runtime/metrics.c — the live metrics file (Prometheus text exposition format 0.0.4).
 *
 * What always holds:
 *  1. Every metric has one # HELP and one # TYPE line, names match [a-z_:][a-z0-9_:]*, and
 *     label values are escaped (\\, \", \n), so the node exporter's textfile collector
 *     accepts the file (tests/tools/check_metrics.py reads it back through the exporter).
 *  2. Counters end in _total and never decrease within a run; the file carries no sample
 *     timestamps (the textfile collector refuses them): the write time is a gauge.
 *  3. The file is replaced atomically (write PATH.tmp.<pid>, fsync-free fclose, rename).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "moerun/base/fileio.h"
#include "moerun/moerun.h"

/* A label value with the escapes of the exposition format. */
static void metrics_label(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP moerun_%s %s\n# TYPE moerun_%s %s\n", name, help, name, type);
}

static void metrics_num(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN\n", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf\n" : "-Inf\n", f);
    else
        fprintf(f, "%.17g\n", v);
}

/* A metric without labels. */
static void metrics_one(FILE *f, const char *name, const char *type, const char *help, double v)
{
    metrics_head(f, name, type, help);
    fprintf(f, "moerun_%s ", name);
    metrics_num(f, v);
}

static void metrics_emit(FILE *f, const moe_metrics_snap_t *m)
{
    struct timespec ts;
    int             i;

    metrics_head(f, "info", "gauge", "Run description (value 1).");
    fputs("moerun_info{version=", f);
    metrics_label(f, MOERUN_VERSION);
    fputs(",exchange=", f);
    metrics_label(f, m->exchange);
    fputs(",placement=", f);
    metrics_label(f, m->placement);
    fputs(",workload=", f);
    metrics_label(f, m->workload);
    fputs("} 1\n", f);
    metrics_head(f, "run_status", "gauge", "1 for the run's current status.");
    fputs("moerun_run_status{status=", f);
    metrics_label(f, m->status);
    fputs("} 1\n", f);
    metrics_one(f, "ranks", "gauge", "MPI ranks of the run.", m->ranks);
    metrics_one(f, "nodes", "gauge", "Nodes of the run.", m->nodes);
    metrics_one(f, "steps_done", "gauge", "Steps completed.", (double)m->steps_done);
    metrics_one(f, "steps_requested", "gauge", "Steps the run was asked for.", (double)m->steps_requested);
    metrics_one(f, "steps_flushed", "gauge",
                "Steps written to the telemetry file; the pair counters cover these.",
                (double)m->steps_flushed);
    metrics_one(f, "tokens_per_second", "gauge",
                "Global tokens per second of in-step time (end of run: the summary's tokens_per_s).",
                m->tokens_per_s);
    metrics_one(f, "routed_pairs_total", "counter", "(token, expert) pairs routed, all layers.",
                (double)m->routed);
    metrics_one(f, "processed_pairs_total", "counter", "(token, expert) pairs computed by experts.",
                (double)m->processed);
    metrics_one(f, "dropped_pairs_total", "counter", "(token, expert) pairs dropped over capacity.",
                (double)m->dropped);
    metrics_one(f, "drop_rate", "gauge", "Dropped / routed pairs.", m->drop_rate);
    metrics_one(f, "max_mean_load", "gauge",
                "Hottest expert's routed pairs over the mean, worst layer, since step 0.",
                m->max_mean_load);
    metrics_one(f, "load_entropy_norm", "gauge", "Mean normalised load entropy over steps and layers.",
                m->load_entropy_norm);
    metrics_one(f, "gate_entropy_norm", "gauge", "Mean normalised gate entropy over steps and layers.",
                m->gate_entropy_norm);
    metrics_one(f, "top1_prob", "gauge", "Mean top-1 gate probability.", m->top1_prob);
    metrics_one(f, "aux_loss", "gauge", "Mean load-balancing loss E * sum f * P.", m->aux_loss);
    metrics_one(f, "alerts_raised_total", "counter", "Monitor events raised.", (double)m->alerts);
    metrics_head(f, "phase_seconds_total", "counter",
                 "Seconds spent per phase on rank 0, all layers (dispatch_inter, combine_inter: part of dispatch, combine).");
    for (i = 0; i < MOE_PHASE_COUNT; i++) {
        fprintf(f, "moerun_phase_seconds_total{rank=\"0\",phase=");
        metrics_label(f, moe_phase_names[i]);
        fputs("} ", f);
        metrics_num(f, m->phase_s[i]);
    }
    metrics_head(f, "exchange_bytes_total", "counter",
                 "Exchange bytes sent by rank 0 (kind: sent = intra + inter).");
    fprintf(f, "moerun_exchange_bytes_total{rank=\"0\",kind=\"sent\"} %lld\n", (long long)m->bytes_sent);
    fprintf(f, "moerun_exchange_bytes_total{rank=\"0\",kind=\"intra\"} %lld\n", (long long)m->bytes_intra);
    fprintf(f, "moerun_exchange_bytes_total{rank=\"0\",kind=\"inter\"} %lld\n", (long long)m->bytes_inter);
    clock_gettime(CLOCK_REALTIME, &ts);
    metrics_one(f, "last_write_timestamp_seconds", "gauge", "Unix time of this write.",
                (double)ts.tv_sec + ts.tv_nsec * 1e-9);
}

moe_status_t moe_metrics_write(const char *path, const moe_metrics_snap_t *m, char *errbuf,
                               size_t errlen)
{
    char  tmp[4096];
    FILE *f;
    int   bad;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
        snprintf(errbuf, errlen, "metrics_file: path too long");
        return MOE_ERR_IO;
    }
    if ((f = moe_fopen_nowo(tmp, "w")) == NULL) {
        snprintf(errbuf, errlen, "metrics_file: cannot write %s: %s", path, strerror(errno));
        return MOE_ERR_IO;
    }
    metrics_emit(f, m);
    bad = ferror(f);
    bad |= fclose(f);
    if (bad != 0 || rename(tmp, path) != 0) {
        snprintf(errbuf, errlen, "metrics_file: cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return MOE_ERR_IO;
    }
    return MOE_OK;
}
