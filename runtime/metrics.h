/*
 * runtime/metrics.h — live run metrics in the Prometheus text exposition format, for the
 * node exporter's textfile collector (docs/metrics.md).
 *
 * Rank 0 alone writes: no MPI call is made here. The engine fills a snapshot after a step
 * when --metrics-interval seconds have passed since the last write, and once more at the
 * end of the run from the summary's numbers. Each write goes to PATH.tmp.<pid> and is
 * renamed onto PATH, so a reader (the exporter) never sees a half-written file.
 */
#ifndef MOERUN_RUNTIME_METRICS_H
#define MOERUN_RUNTIME_METRICS_H

#include <stdint.h>

#include "moerun/status.h"
#include "telemetry.h"

typedef struct moe_metrics_snap {
    const char *status;            /* "starting", "running", or the run's end status */
    const char *exchange, *placement, *workload;
    int         ranks, nodes;
    long        steps_done, steps_requested, steps_flushed;
    double      tokens_per_s;      /* global tokens / in-step seconds */
    int64_t     routed, processed, dropped;   /* global, over the flushed steps */
    double      drop_rate;         /* dropped / routed over the flushed steps */
    double      max_mean_load;     /* worst layer's hottest expert / mean, over steps done */
    double      load_entropy_norm, gate_entropy_norm, top1_prob, aux_loss; /* means */
    long        alerts;            /* monitor events raised */
    double      phase_s[MOE_PHASE_COUNT];     /* rank 0's seconds per phase */
    int64_t     bytes_sent, bytes_intra, bytes_inter; /* rank 0's exchange bytes */
} moe_metrics_snap_t;

/*
 * Writes the snapshot to `path` (temporary file, then rename). On failure returns
 * MOE_ERR_IO with the reason in errbuf; the previous file, if any, is left as it was.
 */
moe_status_t moe_metrics_write(const char *path, const moe_metrics_snap_t *m, char *errbuf,
                               size_t errlen);

#endif /* MOERUN_RUNTIME_METRICS_H */
