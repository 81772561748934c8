/*
 * moerun/config.h — the run configuration and its one table of options.
 *
 * Every option is one row of the table in runtime/config.c: INI key, CLI flag, MOERUN_*
 * environment variable, default, doc line, validator. Help text, --print-config, the
 * environment, INI files and the copy stored in every telemetry file all come from it.
 *
 * Precedence, lowest to highest: built-in defaults < INI file (--config FILE or
 * MOERUN_CONFIG) < MOERUN_* environment variables < command-line flags.
 */
#ifndef MOERUN_CONFIG_H
#define MOERUN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "moerun/status.h"

#define MOE_PATH_MAX 1024
#define MOE_SPEC_MAX 128

typedef enum { MOE_ACT_GELU = 0, MOE_ACT_SWIGLU = 1 } moe_activation_t;
typedef enum { MOE_DROP_POSITION = 0, MOE_DROP_PROBS = 1 } moe_drop_policy_t;
typedef enum { MOE_PLACE_CONTIGUOUS = 0, MOE_PLACE_ROUND_ROBIN = 1 } moe_placement_kind_t;
typedef enum { MOE_TEL_PARALLEL = 0, MOE_TEL_GATHER = 1 } moe_tel_mode_t;
typedef enum { MOE_SIM_MODEL = 0, MOE_SIM_REAL = 1 } moe_sim_compute_t;

typedef struct moe_config {
    /* model */
    int                  experts;          /* E >= 1 */
    int                  top_k;            /* 1 <= k <= E */
    int                  d_model;          /* hidden width d >= 1 */
    int                  d_ffn;            /* expert inner width >= 1 */
    moe_activation_t     activation;
    int                  layers;           /* MoE layers routed one after another, >= 1 */
    /* run */
    int                  tokens;           /* tokens per rank per step, >= 1 */
    long                 steps;            /* >= 1 */
    long                 warmup;           /* first steps left out of throughput, 0..steps-1 */
    double               capacity_factor;  /* <= 0: dropless; finite */
    moe_drop_policy_t    drop_policy;
    double               temperature;      /* router temperature, > 0 */
    char                 router[32];       /* router name (runtime/router.h) */
    double               routed_scaling;   /* sigmoid router: weights times this, > 0 */
    int                  route_groups;     /* group-limited: groups of experts, divides experts */
    int                  route_max_nodes;  /* group/node-limited: groups or nodes a token may touch; 0: all */
    double               balance_bias;     /* aux-loss-free balancing bias step per step; 0: off */
    int                  shared_experts;   /* experts every token passes through on its own rank */
    uint64_t             seed;
    char                 workload[MOE_SPEC_MAX]; /* uniform | zipf:S | collapse:P | drift:R | domains:N */
    int                  vocab_size;       /* token ids drawn from this many (Zipf), >= 1 */
    char                 placement[MOE_PATH_MAX]; /* contiguous | round-robin | file:PATH (docs/placement.md) */
    char                 exchange[32];     /* token exchange backend name: flat | hier */
    int                  overlap;          /* 1: exchange overlapped with expert compute (flat) */
    int                  overlap_window;   /* flat --overlap 1: transfers in flight per lane */
    int                  hier_chunks;      /* hier, ucx: pipelined pieces of the inter-node stage */
    int                  compute_slots;    /* ranks of a node computing at once: -1 auto, 0 off, N (comm/slots.h) */
    int                  wait_sleep_us;    /* flat overlapped waits: sleep between tests (us), 0: MPI's wait */
    int                  ranks_per_node;   /* > 0: impose nodes of this many consecutive ranks; 0: discover */
    int                  bind;             /* CPU/memory binding: 0 auto, 1 none, 2 core, 3 numa (comm/bind.h) */
    int                  report_bindings;  /* one line per rank: host, node, local rank, cpuset, NUMA node, NIC */
    char                 replay[MOE_PATH_MAX]; /* routing log replayed instead of the gate; empty: none */
    int                  replay_tokens;    /* 0: the whole log once; N: tiled to N tokens per rank per step */
    char                 sequence_field[64]; /* --replay: sequence field; "auto": detected, "none": none */
    moe_sim_compute_t    sim_compute;      /* SMPI builds: model (charge, do not compute) or real */
    double               sim_gflops;       /* SMPI builds: GFLOP/s per rank charged for GEMMs, > 0 */
    double               sim_copy_gbs;     /* SMPI builds: GB/s charged for payload copies, > 0 */
    /* output */
    char                 telemetry[MOE_PATH_MAX];    /* HDF5 file; empty: no telemetry */
    moe_tel_mode_t       telemetry_mode;   /* parallel: collective MPI-IO; gather: rank 0 writes serially */
    int                  flush_interval;   /* steps buffered between HDF5 flushes, >= 1 */
    int                  route_samples;    /* tokens per step whose routes are recorded, >= 0 */
    char                 summary_json[MOE_PATH_MAX]; /* empty: none */
    char                 output_dump[MOE_PATH_MAX];  /* last layer output of the last step, raw float32 in global token order; empty: none */
    int                  overwrite;        /* an existing telemetry file may be replaced */
    int                  follow_symlinks;  /* an output path that is a symbolic link writes the file it names */
    long                 max_memory;       /* MiB a rank may use; 0: the node's available memory shared by its ranks */
    char                 metrics_file[MOE_PATH_MAX]; /* live Prometheus text metrics, rank 0; empty: none */
    double               metrics_interval; /* seconds between metrics writes, 0: every step */
    int                  quiet;            /* no progress lines */
    double               progress_interval;/* seconds between progress lines */
    double               step_timeout;     /* seconds a step may take before the watchdog ends the rank; 0: no watchdog */
    int                  log_level;        /* 0 error .. 3 debug */
    /* monitor thresholds */
    int                  monitor_window;        /* steps per utilisation window, >= 1 */
    double               monitor_starved_share; /* fraction of fair share under which an expert is starved */
    double               monitor_drop_rate;     /* drop rate over which an event is raised */
    double               monitor_entropy_min;   /* normalised load entropy under which an event is raised */
    double               monitor_collapse_share;/* fraction of tokens routed to one expert over which collapse is raised */
    double               monitor_logit_std_factor; /* logit std over baseline x factor raises saturation */
} moe_config_t;

/* What the command line asked for besides running. */
typedef enum {
    MOE_CONFIG_RUN = 0,
    MOE_CONFIG_HELP = 1,
    MOE_CONFIG_PRINT = 2,
    MOE_CONFIG_VERSION = 3
} moe_config_action_t;

/* Fills cfg with the built-in defaults of the table. */
void moe_config_defaults(moe_config_t *cfg);

/*
 * Builds the effective configuration: defaults, then the INI file named by --config (or
 * MOERUN_CONFIG), then MOERUN_* variables from `envp` (NULL-terminated, may be NULL), then
 * the flags in argv[1..argc-1]. Does not validate cross-field constraints (see
 * moe_config_validate). On error writes one line naming the field, the bad value and the
 * allowed values to err (errlen bytes) and returns MOE_ERR_INVALID (or MOE_ERR_IO for an
 * unreadable file); cfg is then unspecified. *action_p says whether --help, --print-config
 * or --version was given.
 */
moe_status_t moe_config_load(moe_config_t *cfg, int argc, char **argv, char **envp,
                             moe_config_action_t *action_p, char *err, size_t errlen);

/* Parses one INI file into cfg (keys may sit in a [moerun] section or none). */
moe_status_t moe_config_load_ini(moe_config_t *cfg, const char *path, char *err, size_t errlen);

/* Sets one option by its INI key from a string, with the option's validator. */
moe_status_t moe_config_set(moe_config_t *cfg, const char *key, const char *value,
                            char *err, size_t errlen);

/*
 * Cross-field and run-time checks: top_k <= experts, workload spec parses and is in range,
 * exchange backend exists, nranks (> 0) can be served. Same message style as load.
 */
moe_status_t moe_config_validate(const moe_config_t *cfg, int nranks, char *err, size_t errlen);

/*
 * Checks the output paths (telemetry, summary_json, output_dump) before any work: writable
 * directory, no device/FIFO/directory, no symbolic link unless follow_symlinks, an existing
 * telemetry file only with overwrite and not in use by another run, no two outputs on one
 * file, no output on config_file (may be NULL). Touches no file. MOE_ERR_INVALID with one line
 * in err naming the option and the path.
 */
moe_status_t moe_config_check_paths(const moe_config_t *cfg, const char *config_file, char *err,
                                    size_t errlen);

/* What one rank of a run needs, in bytes (moe_config_memory): the model weights (router and
 * local experts of every layer: the most expert copies one rank holds over the layers, from
 * a --placement file when it reads and fits the run, replicas included), token buffers (activations, gate, exchange and expert
 * scratch), one telemetry block (plus rank 0's gather buffers) with the accumulated
 * matrices, and the monitor's windows. An estimate from the configuration alone, made before
 * anything is allocated; the allocations follow the same formulas (runtime/engine.c). */
typedef struct moe_mem_estimate {
    double weights, buffers, telemetry, monitor, total;
} moe_mem_estimate_t;

void moe_config_memory(const moe_config_t *cfg, int nranks, moe_mem_estimate_t *est);

/* Writes the estimate as one line ("... MiB per rank: weights ..., ...") into buf. */
void moe_config_memory_text(const moe_mem_estimate_t *est, char *buf, size_t len);

/* The INI file moe_config_load reads for these arguments (--config, else MOERUN_CONFIG), or
 * NULL. Points into argv or envp. */
const char *moe_config_file(int argc, char **argv, char **envp);

/* Writes the effective configuration as an INI file that moe_config_load_ini reads back. */
void moe_config_print(const moe_config_t *cfg, FILE *out);

/* The same text as moe_config_print in a malloc'd string; the caller frees it. NULL on OOM. */
char *moe_config_to_ini(const moe_config_t *cfg);

/* Usage text: every option with flag, env var, default and doc line. */
void moe_config_help(FILE *out, const char *argv0);

/* The configuration reference in markdown, from the same table: docs/config.md is its output. */
void moe_config_help_markdown(FILE *out);

/* Names of enum values, for summaries. */
const char *moe_activation_name(moe_activation_t a);
const char *moe_drop_policy_name(moe_drop_policy_t p);
const char *moe_placement_name(moe_placement_kind_t p);
const char *moe_tel_mode_name(moe_tel_mode_t m);
const char *moe_sim_compute_name(moe_sim_compute_t m);

#endif /* MOERUN_CONFIG_H */
