/*
 * runtime/config.c — the one table of options (opt_table) and everything derived from it:
 * defaults, INI files (libinih), MOERUN_* environment variables, command-line flags,
 * checks of single values, --help, --print-config (INI) and the markdown reference
 * docs/config.md.
 *
 * A row names the INI key (= the field of moe_config_t), the flag, the environment
 * variable, the type, the default as text, the doc line, the field's offset and the
 * allowed values. The special flags (--config, --print-config, --help, --version) are in
 * opt_specials; they set nothing in moe_config_t.
 *
 * Always true:
 *  1. Every value reaches a moe_config_t through opt_parse(), which checks it against its
 *     row: defaults, INI, environment, flags and moe_config_set accept and reject the same
 *     texts with the same message.
 *  2. opt_format() of a value opt_parse() accepted parses back to the same value (doubles
 *     are printed with as many digits as needed), and the INI line it makes fits libinih's
 *     200-byte line buffer (OPT_STR_MAX): moe_config_print output loads back unchanged.
 *  3. Every error is one line: the field, the bad value (quoted, control characters
 *     replaced), where it came from, and what is allowed.
 *  4. Nothing here keeps state between calls; all working memory is on the stack, except
 *     the string moe_config_to_ini returns.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "moerun/base/log.h"
#include "a2a.h"
#include "router.h"
#include "moerun/config.h"
#include "placement.h"
#include "moerun/base/fileio.h"
#include "workload.h"

#ifndef MOERUN_VERSION
#define MOERUN_VERSION "unknown"
#endif

/*
 * libinih (Debian build) reads at most INI_MAX_LINE - 1 = 199 bytes per line, '\n'
 * included; longer lines would be cut into two. The reader below refuses them, and string
 * options are capped so that "summary_json = " plus the value still fits with CRLF endings.
 */
#define OPT_INI_LINE_MAX 198
#define OPT_STR_MAX      180

#define OPT_ENV_PREFIX "MOERUN_"
#define OPT_SECTION    "moerun"

typedef enum {
    OPT_INT,    /* int, decimal, min..max */
    OPT_LONG,   /* long, decimal, min..max */
    OPT_DOUBLE, /* double, finite, min..max (min excluded with OPT_MIN_EXCLUSIVE) */
    OPT_U64,    /* uint64_t, decimal, full range */
    OPT_STRING, /* char[size], at most max characters, INI-safe */
    OPT_ENUM,   /* an enum or int field holding the index of the name in names[] */
    OPT_BOOL    /* int field, 0 or 1 */
} opt_type_t;

typedef enum {
    OPT_GROUP_MODEL,
    OPT_GROUP_RUN,
    OPT_GROUP_OUTPUT,
    OPT_GROUP_MONITOR,
    OPT_GROUP_COUNT
} opt_group_t;

#define OPT_MIN_EXCLUSIVE 0x1u /* the minimum itself is not allowed */
#define OPT_NONE_IS_EMPTY 0x2u /* the string "none" is stored as "" */
#define OPT_AUTO_IS_NEG1  0x4u /* OPT_INT: the string "auto" is stored as -1 */

typedef struct opt {
    const char        *key;    /* INI key, moe_config_set key, field name */
    const char        *flag;   /* command-line flag */
    const char        *env;    /* environment variable: MOERUN_ + upper-case key */
    opt_type_t         type;
    opt_group_t        group;  /* section of --help and docs/config.md */
    const char        *def;    /* default, parsed by opt_parse like any other value */
    const char        *meta;   /* value placeholder in --help; NULL: from the type */
    const char        *doc;    /* one line */
    size_t             offset; /* offsetof(moe_config_t, key) */
    size_t             size;   /* sizeof the field */
    double             min;    /* numbers: smallest allowed value */
    double             max;    /* numbers: largest; strings: most characters */
    const char *const *names;  /* enums: NULL-terminated, value i is names[i] */
    const char        *note;   /* appended to the allowed text; may be NULL */
    const char *(*allowed_fn)(void); /* allowed values known only at run time; may be NULL */
    unsigned           flags;
} opt_t;

/* The forms runtime/workload.c accepts (it checks them in moe_config_validate). */
static const char *opt_workload_forms(void)
{
    return "uniform, zipf:S (0..8), collapse:P (0..1), drift:R (0..1000) or domains:N "
           "(1..experts)";
}

/* The forms runtime/placement.c accepts (checked in moe_config_validate; the file itself when
 * the engine starts). */
static const char *opt_placement_forms(void)
{
    return "contiguous, round-robin or file:PATH";
}

static const char *const opt_activation_names[] = {"gelu", "swiglu", NULL};
static const char *const opt_drop_names[] = {"position", "probs", NULL};
static const char *const opt_placement_names[] = {"contiguous", "round-robin", NULL};
static const char *const opt_bind_names[] = {"auto", "none", "core", "numa", NULL};
static const char *const opt_tel_mode_names[] = {"parallel", "gather", NULL};
static const char *const opt_sim_compute_names[] = {"model", "real", NULL};
static const char *const opt_log_level_names[] = {"error", "warn", "info", "debug", NULL};

/* Enum fields are written as int; the enums must have int's size. */
_Static_assert(sizeof(moe_activation_t) == sizeof(int), "enum size");
_Static_assert(sizeof(moe_drop_policy_t) == sizeof(int), "enum size");
_Static_assert(sizeof(moe_tel_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(moe_sim_compute_t) == sizeof(int), "enum size");

/* SMPI has no MPI-IO: simulated runs gather telemetry to rank 0 (docs/simulation.md). */
#ifdef MOERUN_SMPI
#define MOE__TEL_MODE_DEFAULT "gather"
#else
#define MOE__TEL_MODE_DEFAULT "parallel"
#endif

#define OPT_FIELD(f) offsetof(moe_config_t, f), sizeof(((moe_config_t *)0)->f)

#define OPT_I(g, f, flag, env, def, lo, hi, doc) \
    {#f, flag, env, OPT_INT, g, def, "N", doc, OPT_FIELD(f), lo, hi, NULL, NULL, NULL, 0}
#define OPT_L(g, f, flag, env, def, lo, hi, doc) \
    {#f, flag, env, OPT_LONG, g, def, "N", doc, OPT_FIELD(f), lo, hi, NULL, NULL, NULL, 0}
#define OPT_D(g, f, flag, env, def, lo, hi, fl, note, doc) \
    {#f, flag, env, OPT_DOUBLE, g, def, "X", doc, OPT_FIELD(f), lo, hi, NULL, note, NULL, fl}
#define OPT_U(g, f, flag, env, def, doc) \
    {#f, flag, env, OPT_U64, g, def, "N", doc, OPT_FIELD(f), 0, 0, NULL, NULL, NULL, 0}
#define OPT_S(g, f, flag, env, def, meta, maxlen, fl, note, fn, doc) \
    {#f, flag, env, OPT_STRING, g, def, meta, doc, OPT_FIELD(f), 0, maxlen, NULL, note, fn, fl}
#define OPT_E(g, f, flag, env, def, names, doc) \
    {#f, flag, env, OPT_ENUM, g, def, NULL, doc, OPT_FIELD(f), 0, 0, names, NULL, NULL, 0}
#define OPT_B(g, f, flag, env, def, doc) \
    {#f, flag, env, OPT_BOOL, g, def, NULL, doc, OPT_FIELD(f), 0, 1, NULL, NULL, NULL, 0}

#define M OPT_GROUP_MODEL
#define R OPT_GROUP_RUN
#define O OPT_GROUP_OUTPUT
#define W OPT_GROUP_MONITOR

static const opt_t opt_table[] = {
    OPT_I(M, experts, "--experts", "MOERUN_EXPERTS", "8", 1, 65536,
          "experts per MoE layer, spread over the ranks"),
    OPT_I(M, top_k, "--top-k", "MOERUN_TOP_K", "2", 1, 64,
          "experts each token is routed to (at most experts)"),
    OPT_I(M, d_model, "--d-model", "MOERUN_D_MODEL", "256", 1, 65536, "hidden width of a token"),
    OPT_I(M, d_ffn, "--d-ffn", "MOERUN_D_FFN", "512", 1, 262144,
          "inner width of each expert's feed-forward network"),
    OPT_E(M, activation, "--activation", "MOERUN_ACTIVATION", "gelu", opt_activation_names,
          "activation function of the experts"),
    OPT_I(M, layers, "--layers", "MOERUN_LAYERS", "2", 1, 1024,
          "MoE layers each token passes through, one after another"),

    OPT_I(R, tokens, "--tokens", "MOERUN_TOKENS", "256", 1, 16777216, "tokens per rank per step"),
    OPT_L(R, steps, "--steps", "MOERUN_STEPS", "20", 1, 1e12, "steps to run"),
    OPT_L(R, warmup, "--warmup", "MOERUN_WARMUP", "0", 0, 1e12,
          "first steps left out of the summary's throughput and step-time percentiles (< steps)"),
    OPT_D(R, capacity_factor, "--capacity-factor", "MOERUN_CAPACITY_FACTOR", "1.25", -1e6, 1e6,
          0, "<= 0 means dropless",
          "expert capacity = ceil(factor * top_k * global tokens / experts) per layer and step"),
    OPT_E(R, drop_policy, "--drop-policy", "MOERUN_DROP_POLICY", "position", opt_drop_names,
          "which pairs a full expert drops: the latest tokens, or the lowest gate probabilities"),
    OPT_D(R, temperature, "--temperature", "MOERUN_TEMPERATURE", "1.0", 1e-6, 1000, 0,
          "below 1e-6 the z-loss overflows", "router softmax temperature"),
    OPT_S(R, router, "--router", "MOERUN_ROUTER", "softmax", "NAME",
          sizeof(((moe_config_t *)0)->router) - 1, 0, NULL, moe_router_names,
          "router: which experts a token goes to, with which weights (docs/routers.md)"),
    OPT_D(R, routed_scaling, "--routed-scaling", "MOERUN_ROUTED_SCALING", "1", 0, 1e6,
          OPT_MIN_EXCLUSIVE, NULL, "sigmoid router: combine weights are multiplied by this"),
    OPT_I(R, route_groups, "--route-groups", "MOERUN_ROUTE_GROUPS", "1", 1, 65536,
          "group-limited router: experts form this many contiguous groups (divides experts)"),
    OPT_I(R, route_max_nodes, "--route-max-nodes", "MOERUN_ROUTE_MAX_NODES", "0", 0, 65536,
          "group-limited / node-limited router: groups or nodes a token may touch; 0: all"),
    OPT_D(R, balance_bias, "--balance-bias", "MOERUN_BALANCE_BIAS", "0", 0, 1e6, 0, "0: off",
          "aux-loss-free balancing: per-expert selection bias += RATE * sign(mean - load) per step"),
    OPT_I(M, shared_experts, "--shared-experts", "MOERUN_SHARED_EXPERTS", "0", 0, 64,
          "shared experts: every token also passes through these on its own rank, no exchange"),
    OPT_U(R, seed, "--seed", "MOERUN_SEED", "42", "seed of the weights and the tokens"),
    OPT_S(R, workload, "--workload", "MOERUN_WORKLOAD", "uniform", "SPEC", MOE_SPEC_MAX - 1, 0,
          NULL, opt_workload_forms,
          "synthetic token distribution, shaped through the real gate"),
    OPT_I(R, vocab_size, "--vocab-size", "MOERUN_VOCAB_SIZE", "32000", 1, 16777216,
          "token ids come from a vocabulary of this many ids with Zipfian frequency (hash router, "
          "routes/token_id)"),
    OPT_S(R, placement, "--placement", "MOERUN_PLACEMENT", "contiguous", "SPEC", OPT_STR_MAX, 0,
          NULL, opt_placement_forms,
          "which rank(s) hold which expert: contiguous blocks, round-robin, or a placement file "
          "with per-layer maps and replicas (docs/placement.md)"),
    OPT_S(R, exchange, "--exchange", "MOERUN_EXCHANGE", "flat", "NAME",
          sizeof(((moe_config_t *)0)->exchange) - 1, 0, NULL, moe_a2a_names,
          "token exchange backend (see docs/exchange.md)"),
    OPT_I(R, overlap, "--overlap", "MOERUN_OVERLAP", "1", 0, 1,
          "1: overlap the exchange with expert compute where the backend can (flat); 0: "
          "exchange, then compute, then exchange back. The output is bitwise the same"),
    OPT_I(R, overlap_window, "--overlap-window", "MOERUN_OVERLAP_WINDOW", "8", 1, 64,
          "flat with --overlap 1: transfers in flight per rank and direction (rows and outputs, "
          "out and in); 2dh: per rank, stage and direction; hier: inter-node peers (pieces when "
          "pipelined) in flight per rank; fewer bound the messages in flight (and a simulation's "
          "cost at 1000 ranks). The output is bitwise the same"),
    OPT_I(R, hier_chunks, "--hier-chunks", "MOERUN_HIER_CHUNKS", "4", 1, 64,
          "hier, ucx: pieces of the inter-node stage, pipelined with intra-node forwarding and "
          "the node-level reductions; 1: stages one after the other. The output is bitwise the same"),
    {"compute_slots", "--compute-slots", "MOERUN_COMPUTE_SLOTS", OPT_INT, R, "0", "N|auto",
     "at most N ranks of a node run expert compute at once, the others sleep until a slot frees "
     "(docs/binding.md); auto: the cores the node's ranks can run on, when they outnumber them. "
     "The output is bitwise the same", OPT_FIELD(compute_slots), 0, 4096, NULL,
     "auto, 0: off", NULL, OPT_AUTO_IS_NEG1},
    {"wait_sleep_us", "--wait-sleep-us", "MOERUN_WAIT_SLEEP_US", OPT_INT, R, "0", "N|auto",
     "flat with --overlap 1: a blocking wait tests its requests and sleeps N us between tests "
     "instead of waiting in MPI (which spins, yielding: with more ranks than cores it takes the "
     "core from ranks computing); 0: MPI's wait (50 us when compute slots are on); auto: 50 us "
     "when the node's ranks outnumber the cores they can run on. The output is bitwise the same",
     OPT_FIELD(wait_sleep_us), 0, 100000, NULL, "auto", NULL, OPT_AUTO_IS_NEG1},
    OPT_I(R, ranks_per_node, "--ranks-per-node", "MOERUN_RANKS_PER_NODE", "0", 0, 65536,
          "impose nodes of N consecutive ranks on the exchange; 0: discover shared-memory nodes"),
    OPT_E(R, bind, "--bind", "MOERUN_BIND", "auto", opt_bind_names,
          "CPU and memory binding: auto keeps mpirun/srun's, else one core per local rank if they "
          "fit (docs/binding.md)"),
    OPT_B(R, report_bindings, "--report-bindings", "MOERUN_REPORT_BINDINGS", "false",
          "print one line per rank: host, node, local rank, cpuset, NUMA node, nearest NIC"),
    OPT_S(R, replay, "--replay", "MOERUN_REPLAY", "", "FILE", OPT_STR_MAX, OPT_NONE_IS_EMPTY,
          "\"\" or none: the gate routes", NULL,
          "routing log (a moerun-import format or telemetry with routes/) replayed instead of the gate (docs/replay.md)"),
    OPT_I(R, replay_tokens, "--replay-tokens", "MOERUN_REPLAY_TOKENS", "0", 0, 16777216,
          "with --replay: 0 runs the whole log once (--tokens per rank per step); N tiles it to N tokens per rank per step for --steps steps"),
    OPT_S(R, sequence_field, "--sequence-field", "MOERUN_SEQUENCE_FIELD", "auto", "NAME", 63, 0,
          "auto: detected; none: no sequence", NULL,
          "with --replay of JSON lines/CSV: the field telling sequences apart when token_idx restarts per prompt (as moerun-import's; docs/import.md)"),
    OPT_E(R, sim_compute, "--sim-compute", "MOERUN_SIM_COMPUTE", "model", opt_sim_compute_names,
          "SMPI builds only (docs/simulation.md): model charges expert FLOPs as simulated time "
          "without computing them; real computes them too"),
    OPT_D(R, sim_gflops, "--sim-gflops", "MOERUN_SIM_GFLOPS", "100", 0, 1e6, OPT_MIN_EXCLUSIVE,
          NULL, "SMPI builds only: GFLOP/s per rank charged for gate and expert GEMMs"),
    OPT_D(R, sim_copy_gbs, "--sim-copy-gbs", "MOERUN_SIM_COPY_GBS", "10", 0, 1e5,
          OPT_MIN_EXCLUSIVE, NULL,
          "SMPI builds only: GB/s charged for packing and unpacking exchange payload"),

    OPT_S(O, telemetry, "--telemetry", "MOERUN_TELEMETRY", "moerun.h5", "PATH", OPT_STR_MAX,
          OPT_NONE_IS_EMPTY, "\"\" or none: no telemetry", NULL, "HDF5 telemetry file"),
    OPT_E(O, telemetry_mode, "--telemetry-mode", "MOERUN_TELEMETRY_MODE", MOE__TEL_MODE_DEFAULT,
          opt_tel_mode_names,
          "parallel: every rank writes through collective MPI-IO; gather: rank 0 writes"),
    OPT_I(O, flush_interval, "--flush-interval", "MOERUN_FLUSH_INTERVAL", "10", 1, 1000000,
          "steps buffered between telemetry flushes"),
    OPT_I(O, route_samples, "--route-samples", "MOERUN_ROUTE_SAMPLES", "8", 0, 65536,
          "tokens per step whose routes are recorded in the telemetry"),
    OPT_S(O, summary_json, "--summary-json", "MOERUN_SUMMARY_JSON", "", "PATH", OPT_STR_MAX, 0,
          "\"\": none", NULL, "file for the run summary as JSON (docs/summary.md)"),
    OPT_S(O, output_dump, "--output-dump", "MOERUN_OUTPUT_DUMP", "", "PATH", OPT_STR_MAX, 0,
          "\"\": none", NULL,
          "file for the last layer's output of the last step (raw float32, global token order)"),
    OPT_B(O, overwrite, "--overwrite", "MOERUN_OVERWRITE", "false",
          "replace an existing telemetry file (without it the run refuses to start)"),
    OPT_B(O, follow_symlinks, "--follow-symlinks", "MOERUN_FOLLOW_SYMLINKS", "false",
          "an output path that is a symbolic link writes the file it names (else refused)"),
    OPT_L(R, max_memory, "--max-memory", "MOERUN_MAX_MEMORY", "0", 0, 1e9,
          "MiB one rank may use (estimated before any allocation); 0: the node's available "
          "memory shared by its ranks"),
    OPT_S(O, metrics_file, "--metrics-file", "MOERUN_METRICS_FILE", "", "PATH", OPT_STR_MAX, 0,
          "\"\": none", NULL, "live metrics of rank 0 in the Prometheus text format (docs/metrics.md)"),
    OPT_D(O, metrics_interval, "--metrics-interval", "MOERUN_METRICS_INTERVAL", "5", 0, 86400,
          0, "0 means every step", "seconds between metrics file writes"),
    OPT_B(O, quiet, "--quiet", "MOERUN_QUIET", "false", "no progress lines"),
    OPT_D(O, progress_interval, "--progress-interval", "MOERUN_PROGRESS_INTERVAL", "5", 0, 86400,
          0, "0 means every step", "seconds between progress lines"),
    OPT_D(O, step_timeout, "--step-timeout", "MOERUN_STEP_TIMEOUT", "300", 0, 86400, 0,
          "0: no watchdog", "seconds one step (or the final flush) may take; then the rank "
          "names itself, its host, the step and phase, and exits 3 (docs/signals.md)"),
    OPT_E(O, log_level, "--log-level", "MOERUN_LOG_LEVEL", "info", opt_log_level_names,
          "log verbosity; per-rank messages only at debug"),

    OPT_I(W, monitor_window, "--monitor-window", "MOERUN_MONITOR_WINDOW", "10", 1, 1000000,
          "steps per utilisation window"),
    OPT_D(W, monitor_starved_share, "--monitor-starved-share", "MOERUN_MONITOR_STARVED_SHARE",
          "0.05", 0, 1, 0, NULL,
          "an expert under this fraction of its fair share in a window is starved"),
    OPT_D(W, monitor_drop_rate, "--monitor-drop-rate", "MOERUN_MONITOR_DROP_RATE", "0.01", 0, 1,
          0, NULL, "a drop rate over this raises an event"),
    OPT_D(W, monitor_entropy_min, "--monitor-entropy-min", "MOERUN_MONITOR_ENTROPY_MIN", "0.8",
          0, 1, 0, NULL, "a normalised load entropy under this raises an event"),
    OPT_D(W, monitor_collapse_share, "--monitor-collapse-share", "MOERUN_MONITOR_COLLAPSE_SHARE",
          "0.5", 0, 1, 0, NULL, "collapse event when one expert takes over X + (1-X)k/E of the tokens (k/E: its balanced share)"),
    OPT_D(W, monitor_logit_std_factor, "--monitor-logit-std-factor",
          "MOERUN_MONITOR_LOGIT_STD_FACTOR", "3", 1, 1000000, 0, NULL,
          "a logit std over its baseline times this raises a saturation event"),
};

#undef M
#undef R
#undef O
#undef W

#define OPT_COUNT (sizeof(opt_table) / sizeof(opt_table[0]))

static const char *const opt_group_titles[OPT_GROUP_COUNT] = {
    "Model", "Run", "Output", "Monitor (routing-health thresholds)"};

/* Flags that set nothing in moe_config_t. */
typedef struct opt_special {
    const char         *flag;
    const char         *alias; /* short form, or NULL */
    const char         *meta;  /* value placeholder; NULL: takes no value */
    const char         *env;   /* environment variable, or NULL */
    moe_config_action_t action;
    const char         *doc;
} opt_special_t;

static const opt_special_t opt_specials[] = {
    {"--config", NULL, "FILE", "MOERUN_CONFIG", MOE_CONFIG_RUN,
     "read options from an INI file (keys as --print-config writes them)"},
    {"--print-config", NULL, NULL, NULL, MOE_CONFIG_PRINT,
     "print the effective configuration as an INI file and exit"},
    {"--help", "-h", NULL, NULL, MOE_CONFIG_HELP, "print this help and exit"},
    {"--version", NULL, NULL, NULL, MOE_CONFIG_VERSION, "print the version and exit"},
};

#define OPT_SPECIAL_COUNT (sizeof(opt_specials) / sizeof(opt_specials[0]))

/* MOERUN_* variables that are not options but are set by moerun's own scripts. */
static const char *const opt_env_ignored[] = {
    "MOERUN_BUILD_DIR",      /* read by the scripts in jobs/ */
    "MOERUN_ASAN_BUILD_DIR", /* jobs/test-sanitize.sh */
    "MOERUN_FUZZ_BUILD_DIR", /* jobs/test-fuzz.sh */
    "MOERUN_SMPI_BUILD_DIR", /* jobs/smpi/build.sh and run.sh */
    "MOERUN_READER_PROBE",   /* read by the telemetry reader of the tools */
    "MOERUN_HWLOC_XML",      /* comm/bind.c: an hwloc XML topology instead of this machine */
    "MOERUN_HWLOC_SYNTHETIC",/* comm/bind.c: an hwloc synthetic topology */
};

/* ---- small helpers -------------------------------------------------------------------- */

/* A value as it may appear in a one-line message: control characters become '?', and
 * long values are cut with "...". */
static const char *opt_quote(const char *text, char *buf, size_t n)
{
    size_t i, len = strlen(text), keep = len < n - 1 ? len : n - 4;

    for (i = 0; i < keep; i++)
        buf[i] = iscntrl((unsigned char)text[i]) ? '?' : text[i];
    if (keep < len)
        memcpy(buf + keep, "...", 3), keep += 3;
    buf[keep] = '\0';
    return buf;
}

static const opt_t *opt_by_key(const char *key)
{
    size_t i;

    for (i = 0; i < OPT_COUNT; i++)
        if (strcmp(opt_table[i].key, key) == 0)
            return &opt_table[i];
    return NULL;
}

static const opt_t *opt_by_env(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < OPT_COUNT; i++)
        if (strlen(opt_table[i].env) == len && strncmp(opt_table[i].env, name, len) == 0)
            return &opt_table[i];
    return NULL;
}

static void *opt_field(moe_config_t *cfg, const opt_t *o)
{
    return (char *)cfg + o->offset;
}

static const void *opt_cfield(const moe_config_t *cfg, const opt_t *o)
{
    return (const char *)cfg + o->offset;
}

/* A number as short as it can be while strtod reads back the same double. */
static void opt_format_double(double v, char *buf, size_t n)
{
    int prec;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* Appends names joined by sep to buf (size n, already a string). */
static void opt_join(char *buf, size_t n, const char *const *names, const char *sep)
{
    size_t i, len = strlen(buf);

    for (i = 0; names[i] && len < n; i++) {
        snprintf(buf + len, n - len, "%s%s", i ? sep : "", names[i]);
        len += strlen(buf + len);
    }
}

/* The allowed values of a row, as the end of a message: "1..65536". */
static const char *opt_allowed(const opt_t *o, char *buf, size_t n)
{
    char lo[32], hi[32];

    buf[0] = '\0';
    switch (o->type) {
    case OPT_INT:
    case OPT_LONG:
        snprintf(buf, n, "%.0f..%.0f", o->min, o->max);
        break;
    case OPT_DOUBLE:
        snprintf(lo, sizeof(lo), "%.15g", o->min);
        snprintf(hi, sizeof(hi), "%.15g", o->max);
        if (o->flags & OPT_MIN_EXCLUSIVE)
            snprintf(buf, n, "a finite number > %s and <= %s", lo, hi);
        else
            snprintf(buf, n, "a finite number %s..%s", lo, hi);
        break;
    case OPT_U64:
        snprintf(buf, n, "0..%" PRIu64, UINT64_MAX);
        break;
    case OPT_STRING:
        if (o->allowed_fn)
            snprintf(buf, n, "%s", o->allowed_fn());
        else
            snprintf(buf, n, "%s of at most %.0f characters",
                     strcmp(o->meta, "PATH") == 0 ? "a path" : "text", o->max);
        break;
    case OPT_ENUM:
        opt_join(buf, n, o->names, ", ");
        break;
    case OPT_BOOL:
        snprintf(buf, n, "true/false, 1/0, yes/no, on/off");
        break;
    }
    if (o->note) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, ", %s", o->note);
    }
    return buf;
}

static moe_status_t opt_reject(const opt_t *o, const char *text, const char *problem,
                               const char *src, char *err, size_t errlen)
{
    char q[80], allowed[256];

    moe_say(err, errlen, "%s: \"%s\" %s%s%s%s; allowed %s", o->key,
            opt_quote(text, q, sizeof(q)), problem, src ? " (from " : "", src ? src : "",
            src ? ")" : "", opt_allowed(o, allowed, sizeof(allowed)));
    return MOE_ERR_INVALID;
}

/* Why a string cannot be stored in an INI line and read back unchanged, or NULL. */
static const char *opt_string_problem(const char *s)
{
    size_t i, n = strlen(s);

    for (i = 0; i < n; i++)
        if (iscntrl((unsigned char)s[i]))
            return "contains a control character";
    if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
        return "has leading or trailing blanks";
    if (s[0] == ';' || strstr(s, " ;"))
        return "contains \" ;\" or starts with \";\" (an INI comment)";
    return NULL;
}

/* ---- one value: parse (with checks) and format ------------------------------------------ */

/*
 * Parses `text` for row o and stores it in cfg. src says where the text came from
 * ("--experts", "MOERUN_EXPERTS", "config file run.ini:4"), or NULL.
 */
static moe_status_t opt_parse(const opt_t *o, const char *text, moe_config_t *cfg,
                              const char *src, char *err, size_t errlen)
{
    void     *field = opt_field(cfg, o);
    char     *end = NULL;
    long long ll;
    double    d;
    uint64_t  u;
    size_t    i, len;
    int       b;

    switch (o->type) {
    case OPT_INT:
    case OPT_LONG:
        if ((o->flags & OPT_AUTO_IS_NEG1) && strcmp(text, "auto") == 0) {
            int v = -1;
            memcpy(field, &v, sizeof(v));
            return MOE_OK;
        }
        if (text[0] == '\0' || isspace((unsigned char)text[0]))
            return opt_reject(o, text, "is not an integer", src, err, errlen);
        errno = 0;
        ll = strtoll(text, &end, 10);
        if (*end != '\0')
            return opt_reject(o, text, "is not an integer", src, err, errlen);
        if (errno == ERANGE || (double)ll < o->min || (double)ll > o->max ||
            (o->type == OPT_INT && (ll < INT_MIN || ll > INT_MAX)) ||
            (o->type == OPT_LONG && (ll < LONG_MIN || ll > LONG_MAX)))
            return opt_reject(o, text, "is out of range", src, err, errlen);
        if (o->type == OPT_INT) {
            int v = (int)ll;
            memcpy(field, &v, sizeof(v));
        } else {
            long v = (long)ll;
            memcpy(field, &v, sizeof(v));
        }
        return MOE_OK;
    case OPT_DOUBLE:
        if (text[0] == '\0' || isspace((unsigned char)text[0]))
            return opt_reject(o, text, "is not a number", src, err, errlen);
        errno = 0;
        d = strtod(text, &end);
        if (*end != '\0')
            return opt_reject(o, text, "is not a number", src, err, errlen);
        if (!isfinite(d))
            return opt_reject(o, text, "is not a finite number", src, err, errlen);
        if (d > o->max || d < o->min || ((o->flags & OPT_MIN_EXCLUSIVE) && d == o->min))
            return opt_reject(o, text, "is out of range", src, err, errlen);
        memcpy(field, &d, sizeof(d));
        return MOE_OK;
    case OPT_U64:
        if (!isdigit((unsigned char)text[0]))
            return opt_reject(o, text, "is not an unsigned integer", src, err, errlen);
        errno = 0;
        u = (uint64_t)strtoull(text, &end, 10);
        if (*end != '\0')
            return opt_reject(o, text, "is not an unsigned integer", src, err, errlen);
        if (errno == ERANGE)
            return opt_reject(o, text, "is out of range", src, err, errlen);
        memcpy(field, &u, sizeof(u));
        return MOE_OK;
    case OPT_STRING: {
        const char *problem = opt_string_problem(text);

        len = strlen(text);
        if ((double)len > o->max || len >= o->size) {
            char what[64];
            snprintf(what, sizeof(what), "is too long (%zu characters, at most %.0f)", len,
                     (double)len > o->max ? o->max : (double)(o->size - 1));
            return opt_reject(o, text, what, src, err, errlen);
        }
        if (problem)
            return opt_reject(o, text, problem, src, err, errlen);
        if ((o->flags & OPT_NONE_IS_EMPTY) && strcmp(text, "none") == 0)
            len = 0;
        memset(field, 0, o->size);
        memcpy(field, text, len);
        return MOE_OK;
    }
    case OPT_ENUM:
        for (i = 0; o->names[i]; i++) {
            if (strcmp(o->names[i], text) == 0) {
                int v = (int)i;
                memcpy(field, &v, sizeof(v));
                return MOE_OK;
            }
        }
        return opt_reject(o, text, "is not a known value", src, err, errlen);
    case OPT_BOOL:
        if (!strcasecmp(text, "1") || !strcasecmp(text, "true") || !strcasecmp(text, "yes") ||
            !strcasecmp(text, "on"))
            b = 1;
        else if (!strcasecmp(text, "0") || !strcasecmp(text, "false") ||
                 !strcasecmp(text, "no") || !strcasecmp(text, "off"))
            b = 0;
        else
            return opt_reject(o, text, "is not a boolean", src, err, errlen);
        memcpy(field, &b, sizeof(b));
        return MOE_OK;
    }
    return MOE_ERR_INVARIANT;
}

/* The value of row o in cfg as opt_parse reads it back (buf of n >= 64 bytes). */
static const char *opt_format(const opt_t *o, const moe_config_t *cfg, char *buf, size_t n)
{
    const void *field = opt_cfield(cfg, o);
    int         iv;
    long        lv;
    double      dv;
    uint64_t    uv;
    size_t      i, len;

    switch (o->type) {
    case OPT_INT:
        memcpy(&iv, field, sizeof(iv));
        if ((o->flags & OPT_AUTO_IS_NEG1) && iv == -1)
            snprintf(buf, n, "auto");
        else
            snprintf(buf, n, "%d", iv);
        break;
    case OPT_LONG:
        memcpy(&lv, field, sizeof(lv));
        snprintf(buf, n, "%ld", lv);
        break;
    case OPT_DOUBLE:
        memcpy(&dv, field, sizeof(dv));
        opt_format_double(dv, buf, n);
        break;
    case OPT_U64:
        memcpy(&uv, field, sizeof(uv));
        snprintf(buf, n, "%" PRIu64, uv);
        break;
    case OPT_STRING:
        len = strnlen((const char *)field, o->size);
        if (len >= n)
            len = n - 1;
        memcpy(buf, field, len);
        buf[len] = '\0';
        break;
    case OPT_ENUM:
        memcpy(&iv, field, sizeof(iv));
        for (i = 0; o->names[i] && (int)i != iv; i++)
            ;
        if (iv >= 0 && o->names[i])
            snprintf(buf, n, "%s", o->names[i]);
        else
            snprintf(buf, n, "%d", iv);
        break;
    case OPT_BOOL:
        memcpy(&iv, field, sizeof(iv));
        snprintf(buf, n, "%s", iv == 0 ? "false" : iv == 1 ? "true" : "invalid");
        break;
    }
    return buf;
}

/* ---- public: defaults, set, names --------------------------------------------------------- */

void moe_config_defaults(moe_config_t *cfg)
{
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    for (i = 0; i < OPT_COUNT; i++)
        (void)opt_parse(&opt_table[i], opt_table[i].def, cfg, NULL, NULL, 0);
}

moe_status_t moe_config_set(moe_config_t *cfg, const char *key, const char *value, char *err,
                            size_t errlen)
{
    const opt_t *o = key ? opt_by_key(key) : NULL;
    char         q[80];

    if (o == NULL) {
        moe_say(err, errlen, "unknown key \"%s\"; see --help",
                opt_quote(key ? key : "(null)", q, sizeof(q)));
        return MOE_ERR_INVALID;
    }
    return opt_parse(o, value ? value : "", cfg, NULL, err, errlen);
}

const char *moe_activation_name(moe_activation_t a)
{
    return (unsigned)a < 2 ? opt_activation_names[a] : "unknown";
}

const char *moe_drop_policy_name(moe_drop_policy_t p)
{
    return (unsigned)p < 2 ? opt_drop_names[p] : "unknown";
}

const char *moe_placement_name(moe_placement_kind_t p)
{
    return (unsigned)p < 2 ? opt_placement_names[p] : "unknown";
}

const char *moe_tel_mode_name(moe_tel_mode_t m)
{
    return (unsigned)m < 2 ? opt_tel_mode_names[m] : "unknown";
}

const char *moe_sim_compute_name(moe_sim_compute_t m)
{
    return (unsigned)m < 2 ? opt_sim_compute_names[m] : "unknown";
}

/* ---- INI files ------------------------------------------------------------------------------ */

typedef struct opt_ini {
    moe_config_t *cfg;
    const char   *path;
    FILE         *file;
    int           lineno; /* line the handler is looking at (counted by the reader) */
    moe_status_t  st;     /* first error; later lines are not read */
    char         *err;
    size_t        errlen;
} opt_ini_t;

/* fgets for libinih that counts lines and refuses lines libinih would cut in two (a cut
 * comment line is still a comment: its rest is skipped). */
static char *opt_ini_read(char *str, int num, void *stream)
{
    opt_ini_t *ini = stream;
    size_t     n;
    int        c;

    if (ini->st != MOE_OK || fgets(str, num, ini->file) == NULL)
        return NULL;
    ini->lineno++;
    n = strlen(str);
    if (n == 0 || str[n - 1] == '\n')
        return str;
    c = getc(ini->file);
    if (c == EOF || c == '\n')
        return str;
    ungetc(c, ini->file);
    n = strspn(str, " \t");
    if (str[n] == ';' || str[n] == '#') {
        while ((c = getc(ini->file)) != EOF && c != '\n')
            ;
        return str;
    }
    moe_say(ini->err, ini->errlen, "config file %s:%d: line longer than %d characters", ini->path,
            ini->lineno, OPT_INI_LINE_MAX);
    ini->st = MOE_ERR_INVALID;
    return NULL;
}

static int opt_ini_value(void *user, const char *section, const char *name, const char *value)
{
    opt_ini_t   *ini = user;
    const opt_t *o;
    char         src[MOE_PATH_MAX + 64], q[80];

    if (ini->st != MOE_OK)
        return 0;
    if (section[0] != '\0' && strcmp(section, OPT_SECTION) != 0) {
        moe_say(ini->err, ini->errlen,
                "unknown section [%s] in config file %s:%d; keys go before any section or in "
                "[" OPT_SECTION "]",
                opt_quote(section, q, sizeof(q)), ini->path, ini->lineno);
        ini->st = MOE_ERR_INVALID;
        return 0;
    }
    o = opt_by_key(name);
    if (o == NULL) {
        moe_say(ini->err, ini->errlen, "unknown key \"%s\" in config file %s:%d",
                opt_quote(name, q, sizeof(q)), ini->path, ini->lineno);
        ini->st = MOE_ERR_INVALID;
        return 0;
    }
    snprintf(src, sizeof(src), "config file %s:%d", ini->path, ini->lineno);
    ini->st = opt_parse(o, value, ini->cfg, src, ini->err, ini->errlen);
    return ini->st == MOE_OK;
}

moe_status_t moe_config_load_ini(moe_config_t *cfg, const char *path, char *err, size_t errlen)
{
    char      shown[256]; /* the path as messages show it */
    opt_ini_t ini = {cfg, shown, NULL, 0, MOE_OK, err, errlen};
    int       rc;

    opt_quote(path, shown, sizeof(shown));
    ini.file = fopen(path, "r");
    if (ini.file == NULL) {
        moe_say(err, errlen, "config file %s: cannot open: %s", shown, strerror(errno));
        return MOE_ERR_IO;
    }
    rc = ini_parse_stream(opt_ini_read, &ini, opt_ini_value, &ini);
    if (ini.st == MOE_OK && ferror(ini.file)) {
        moe_say(err, errlen, "config file %s: cannot read: %s", shown, strerror(errno));
        ini.st = MOE_ERR_IO;
    } else if (ini.st == MOE_OK && rc == -2) {
        moe_say(err, errlen, "config file %s: out of memory", shown);
        ini.st = MOE_ERR_NOMEM;
    } else if (ini.st == MOE_OK && rc != 0) {
        moe_say(err, errlen,
                "config file %s:%d: syntax error; allowed \"key = value\", \"[" OPT_SECTION
                "]\" or a comment starting with # or ;",
                shown, rc);
        ini.st = MOE_ERR_INVALID;
    }
    fclose(ini.file);
    return ini.st;
}

/* ---- environment ------------------------------------------------------------------------------ */

static int opt_env_is_ignored(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(opt_env_ignored) / sizeof(opt_env_ignored[0]); i++)
        if (strlen(opt_env_ignored[i]) == len && strncmp(opt_env_ignored[i], name, len) == 0)
            return 1;
    return 0;
}

static int opt_env_is_config(const char *name, size_t len)
{
    return strlen(opt_specials[0].env) == len && strncmp(opt_specials[0].env, name, len) == 0;
}

/* The value of MOERUN_CONFIG in envp, or NULL. */
static const char *opt_env_config(char **envp)
{
    size_t i, len;

    for (i = 0; envp && envp[i]; i++) {
        len = strcspn(envp[i], "=");
        if (envp[i][len] == '=' && opt_env_is_config(envp[i], len))
            return envp[i] + len + 1;
    }
    return NULL;
}

static moe_status_t opt_env_unknown(const char *name, size_t len, char *err, size_t errlen)
{
    char   known[2048] = "";
    size_t i, used = 0;
    int    cut = 0;

    for (i = 0; i <= OPT_COUNT && !cut; i++) {
        const char *env = i < OPT_COUNT ? opt_table[i].env : opt_specials[0].env;
        /* keep room for the name the caller prints and for ", ..." */
        if (errlen > 0 && used + strlen(env) + 2 + len + 80 > errlen) {
            cut = 1;
            break;
        }
        used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", env);
    }
    moe_say(err, errlen, "%.*s: unknown environment variable; known: %s%s", (int)len, name, known,
            !cut ? "" : used ? ", ... (see --help)" : "see --help");
    return MOE_ERR_INVALID;
}

static moe_status_t opt_env_apply(moe_config_t *cfg, char **envp, char *err, size_t errlen)
{
    const size_t plen = strlen(OPT_ENV_PREFIX);
    size_t       i, len;
    const opt_t *o;
    char         src[64];
    moe_status_t st;

    for (i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];

        if (strncmp(e, OPT_ENV_PREFIX, plen) != 0)
            continue;
        len = strcspn(e, "=");
        if (e[len] != '=' || opt_env_is_config(e, len) || opt_env_is_ignored(e, len))
            continue;
        o = opt_by_env(e, len);
        if (o == NULL)
            return opt_env_unknown(e, len, err, errlen);
        snprintf(src, sizeof(src), "%s", o->env);
        st = opt_parse(o, e + len + 1, cfg, src, err, errlen);
        if (st != MOE_OK)
            return st;
    }
    return MOE_OK;
}

/* ---- command line ------------------------------------------------------------------------------ */

typedef struct opt_arg {
    const opt_t         *opt;     /* an option row, or NULL */
    const opt_special_t *special; /* a special flag, or NULL */
    const char          *value;   /* its value; NULL for a special flag without one */
} opt_arg_t;

/* Reads the flag at argv[*i] and its value, advancing *i past both (always by >= 1). */
static moe_status_t opt_cli_next(int argc, char **argv, int *i, opt_arg_t *a, char *err,
                                 size_t errlen)
{
    const char *arg = argv[*i], *eq;
    size_t      n, k, matches = 0, guess = 0;
    char        q[80], allowed[256];

    (*i)++;
    memset(a, 0, sizeof(*a));
    if (arg[0] != '-' || arg[1] == '\0') {
        moe_say(err, errlen, "unexpected argument \"%s\"; options start with --; see --help",
                opt_quote(arg, q, sizeof(q)));
        return MOE_ERR_INVALID;
    }
    eq = strchr(arg, '=');
    n = eq ? (size_t)(eq - arg) : strlen(arg);
    for (k = 0; k < OPT_SPECIAL_COUNT; k++) {
        const opt_special_t *s = &opt_specials[k];
        if ((strlen(s->flag) == n && strncmp(s->flag, arg, n) == 0) ||
            (s->alias && strlen(s->alias) == n && strncmp(s->alias, arg, n) == 0))
            a->special = s;
    }
    for (k = 0; k < OPT_COUNT && !a->special; k++)
        if (strlen(opt_table[k].flag) == n && strncmp(opt_table[k].flag, arg, n) == 0)
            a->opt = &opt_table[k];
    if (a->special == NULL && a->opt == NULL) {
        for (k = 0; n > 2 && k < OPT_COUNT; k++)
            if (strncmp(opt_table[k].flag, arg, n) == 0)
                matches++, guess = k;
        if (matches == 1)
            moe_say(err, errlen, "unknown option %.*s (did you mean %s?); see --help",
                    (int)(n < 64 ? n : 64), arg, opt_table[guess].flag);
        else
            moe_say(err, errlen, "unknown option %.*s; see --help", (int)(n < 64 ? n : 64), arg);
        return MOE_ERR_INVALID;
    }
    if (a->special && a->special->meta == NULL) {
        if (eq) {
            moe_say(err, errlen, "option %s takes no value; see --help", a->special->flag);
            return MOE_ERR_INVALID;
        }
        return MOE_OK;
    }
    if (eq) {
        a->value = eq + 1;
        return MOE_OK;
    }
    if (a->opt && a->opt->type == OPT_BOOL) {
        a->value = "true";
        return MOE_OK;
    }
    if (*i >= argc || (argv[*i][0] == '-' && argv[*i][1] == '-' && argv[*i][2] != '\0')) {
        if (a->opt)
            moe_say(err, errlen, "%s: missing value after %s; allowed %s", a->opt->key,
                    a->opt->flag, opt_allowed(a->opt, allowed, sizeof(allowed)));
        else
            moe_say(err, errlen, "%s: missing value; allowed %s", a->special->flag,
                    a->special->meta);
        return MOE_ERR_INVALID;
    }
    a->value = argv[(*i)++];
    return MOE_OK;
}

moe_status_t moe_config_load(moe_config_t *cfg, int argc, char **argv, char **envp,
                             moe_config_action_t *action_p, char *err, size_t errlen)
{
    moe_config_action_t action = MOE_CONFIG_RUN;
    moe_status_t        st, scan_st = MOE_OK;
    const char         *ini = NULL;
    opt_arg_t           a;
    int                 i, help = 0, version = 0;

    if (err && errlen)
        err[0] = '\0';
    moe_config_defaults(cfg);

    /* Pass 1: the shape of the command line, --config, and the actions. --help and
     * --version win over any error (the help must always be reachable). */
    for (i = 1; i < argc;) {
        st = opt_cli_next(argc, argv, &i, &a, scan_st == MOE_OK ? err : NULL, errlen);
        if (st != MOE_OK) {
            if (scan_st == MOE_OK)
                scan_st = st;
            continue;
        }
        if (a.special && a.special->action == MOE_CONFIG_HELP)
            help = 1;
        else if (a.special && a.special->action == MOE_CONFIG_VERSION)
            version = 1;
        else if (a.special && a.special->action == MOE_CONFIG_PRINT)
            action = MOE_CONFIG_PRINT;
        else if (a.special)
            ini = a.value;
    }
    if (help || version) {
        if (err && errlen)
            err[0] = '\0';
        if (action_p)
            *action_p = help ? MOE_CONFIG_HELP : MOE_CONFIG_VERSION;
        return MOE_OK;
    }
    if (scan_st != MOE_OK)
        return scan_st;

    if (ini == NULL)
        ini = opt_env_config(envp);
    if (ini) {
        st = moe_config_load_ini(cfg, ini, err, errlen);
        if (st != MOE_OK)
            return st;
    }
    st = opt_env_apply(cfg, envp, err, errlen);
    if (st != MOE_OK)
        return st;
    for (i = 1; i < argc;) {
        st = opt_cli_next(argc, argv, &i, &a, err, errlen);
        if (st == MOE_OK && a.opt)
            st = opt_parse(a.opt, a.value, cfg, a.opt->flag, err, errlen);
        if (st != MOE_OK)
            return st;
    }
    if (action_p)
        *action_p = action;
    return MOE_OK;
}

/* ---- cross-field checks ------------------------------------------------------------------------ */

moe_status_t moe_config_validate(const moe_config_t *cfg, int nranks, char *err, size_t errlen)
{
    moe_config_t        scratch;
    moe_workload_spec_t wl;
    char                text[MOE_PATH_MAX + 64];
    long long           t = cfg->tokens, k = cfg->top_k, d = cfg->d_model;
    moe_status_t        st;
    size_t              i;

    /* Every field once more through its row: catches values set by code, not by text. */
    for (i = 0; i < OPT_COUNT; i++) {
        st = opt_parse(&opt_table[i], opt_format(&opt_table[i], cfg, text, sizeof(text)),
                       &scratch, "the configuration", err, errlen);
        if (st != MOE_OK)
            return st;
    }
    if (nranks < 1) {
        moe_say(err, errlen, "nranks: %d is out of range; allowed >= 1", nranks);
        return MOE_ERR_INVALID;
    }
    if (cfg->warmup >= cfg->steps) {
        moe_say(err, errlen, "warmup: %ld is out of range; allowed 0..%ld (steps - 1)",
                cfg->warmup, cfg->steps - 1);
        return MOE_ERR_INVALID;
    }
    if (cfg->top_k > cfg->experts) {
        moe_say(err, errlen, "top_k: %d exceeds experts (%d); allowed 1..%d", cfg->top_k,
                cfg->experts, cfg->experts);
        return MOE_ERR_INVALID;
    }
    st = moe_workload_parse(cfg->workload, cfg->experts, &wl, err, errlen);
    if (st != MOE_OK)
        return st;
    if (moe_placement_spec_check(cfg->placement, err, errlen) != 0)
        return MOE_ERR_INVALID;
#ifdef MOERUN_SMPI
    if (cfg->telemetry_mode == MOE_TEL_PARALLEL) {
        moe_say(err, errlen, "telemetry_mode: parallel needs MPI-IO, which a SimGrid SMPI "
                             "build does not have; allowed gather");
        return MOE_ERR_INVALID;
    }
#endif
    if (moe_a2a_find(cfg->exchange) == NULL) {
        moe_say(err, errlen, "exchange: \"%s\" is not a known backend; allowed %s",
                opt_quote(cfg->exchange, text, 80), moe_a2a_names());
        return MOE_ERR_INVALID;
    }
    if (moe_router_find(cfg->router) == NULL) {
        moe_say(err, errlen, "router: \"%s\" is not a known router; allowed %s",
                opt_quote(cfg->router, text, 80), moe_router_names());
        return MOE_ERR_INVALID;
    }
    if (strcmp(cfg->router, "switch") == 0 && cfg->top_k != 1) {
        moe_say(err, errlen, "top_k: %d with router switch; allowed 1 (switch routes top-1)",
                cfg->top_k);
        return MOE_ERR_INVALID;
    }
    if (strcmp(cfg->router, "group-limited") == 0) {
        int gs = cfg->experts / cfg->route_groups, m = cfg->route_max_nodes;
        if (cfg->experts % cfg->route_groups != 0) {
            moe_say(err, errlen, "route_groups: %d does not divide experts (%d); allowed a "
                    "divisor of experts", cfg->route_groups, cfg->experts);
            return MOE_ERR_INVALID;
        }
        if (m > 0 && m < cfg->route_groups && (long long)gs * m < k) {
            moe_say(err, errlen, "route_max_nodes: %d groups of %d experts hold fewer than "
                    "top_k (%lld); allowed %lld..%d or 0 (all)", m, gs, k,
                    (k + gs - 1) / gs, cfg->route_groups);
            return MOE_ERR_INVALID;
        }
    }
    if (strcmp(cfg->router, "expert-choice") == 0 && !(cfg->capacity_factor > 0)) {
        moe_say(err, errlen, "capacity_factor: %g with router expert-choice; allowed > 0 (each "
                "expert takes ceil(factor * top_k * global tokens / experts) tokens)",
                cfg->capacity_factor);
        return MOE_ERR_INVALID;
    }
    if (t * d > INT_MAX) {
        moe_say(err, errlen,
                "tokens: %lld tokens x d_model %lld = %lld floats exceeds %d (MPI int counts); "
                "lower tokens or d_model",
                t, d, t * d, INT_MAX);
        return MOE_ERR_INVALID;
    }
    if (strcmp(cfg->router, "expert-choice") == 0)
        k = cfg->experts; /* one candidate slot per expert */
    if (t * k * d > INT_MAX) {
        moe_say(err, errlen,
                "tokens: %lld tokens x top_k %lld x d_model %lld = %lld floats exceeds %d "
                "(MPI int counts; expert-choice: experts slots); lower tokens or d_model",
                t, k, d, t * k * d, INT_MAX);
        return MOE_ERR_INVALID;
    }
    if ((long long)nranks * t > INT_MAX) {
        moe_say(err, errlen,
                "tokens: %d ranks x %lld tokens = %lld global tokens per step exceeds %d; lower "
                "tokens",
                nranks, t, (long long)nranks * t, INT_MAX);
        return MOE_ERR_INVALID;
    }
    return MOE_OK;
}

/*
 * The output paths, checked on one rank before any work (include/moerun/base/fileio.h):
 * each can be written (directory exists and is writable; not a device, FIFO or directory;
 * not a symbolic link unless follow_symlinks; an existing telemetry file only with
 * overwrite, and not while another run holds its lock), no two outputs name the same file,
 * and no output names the configuration file read.
 */
void moe_config_memory(const moe_config_t *cfg, int nranks, moe_mem_estimate_t *est)
{
    double P = nranks > 0 ? nranks : 1, L = cfg->layers, E = cfg->experts, k = cfg->top_k;
    double d = cfg->d_model, f = cfg->d_ffn, T = cfg->tokens, B = cfg->flush_interval;
    double hc = cfg->activation == MOE_ACT_SWIGLU ? 2 * f : f; /* w1 columns */
    double held = L * ceil(E / P), G = P * T, S = cfg->route_samples < G ? cfg->route_samples : G;
    double Sl = ceil(S / P), W = cfg->monitor_window, blk;
    moe_placement_t pl;
    char            err[512];

    memset(est, 0, sizeof(*est));
    /* expert copies of the rank holding the most, over all layers: L x ceil(E/P) for the
     * built-in maps; a placement file's own (replicas included) when it reads and fits the
     * run (a file that does not is refused later, with its message, by the engine) */
    if (strncmp(cfg->placement, "file:", 5) == 0 &&
        moe_placement_read(&pl, cfg->placement + 5, NULL, err, sizeof(err)) == MOE_OK) {
        if (pl.experts == cfg->experts && pl.layers == cfg->layers && pl.nranks == (int)P)
            held = moe_placement_max_held(&pl);
        moe_placement_cleanup(&pl);
    }
    /* router [L][d][E] and every held expert's w1 [d][hc] and w2 [f][d], float */
    est->weights = 4 * (L * d * E + held * (d * hc + f * d));
    /* activations (4 x T x d), logits, gate arrays, the exchange's send and return buffers
     * (T x k x d each, float) and its three receive-side buffers (local experts x capacity
     * ~ cf x T x k rows, at least T x k), expert scratch (1024 rows x 256 hidden columns) */
    est->buffers = 4 * (4 * T * d + T * E) + 8 * 6 * T * k +
                   4 * (2 + 3 * fmax(1.0, cfg->capacity_factor)) * T * k * d +
                   4 * 1024 * fmin(f, 256) * (hc / f) + 8 * 8 * E + 8 * 8 * P;
    /* one block: 5 [B][L][E] int64 counters, per-layer rows, sampled routes; rank 0 gathers
     * the rank columns (x P in gather mode); the [L][E][E] and [P][P] matrices (twice) */
    blk = 8 * (5 * B * L * E + B * L * (1 + 11 + 6 + 6)) + B * Sl * (16 + L * k * 9);
    est->telemetry = cfg->telemetry[0] ? blk * (cfg->telemetry_mode == MOE_TEL_GATHER ? P : 2) +
                                             8 * (2 * L * E * E + 2 * P * P)
                                       : blk + 8 * 2 * L * E * E;
    /* the monitor's ring of W windows, the open window, event flags */
    est->monitor = 8 * (W * L * E + L * E + L) + L * (E + 1) * 6;
    est->total = est->weights + est->buffers + est->telemetry + est->monitor;
}

void moe_config_memory_text(const moe_mem_estimate_t *est, char *buf, size_t len)
{
    const double M = 1024.0 * 1024.0;

    snprintf(buf, len, "%.1f MiB per rank: weights %.1f (layers x experts per rank x d_model x "
             "d_ffn), buffers %.1f (tokens x top_k x d_model), telemetry %.1f (flush_interval "
             "x layers x experts, experts^2), monitor %.1f (monitor_window x layers x experts)",
             est->total / M, est->weights / M, est->buffers / M, est->telemetry / M,
             est->monitor / M);
}

const char *moe_config_file(int argc, char **argv, char **envp)
{
    const char *ini = NULL;
    opt_arg_t   a;
    int         i;

    for (i = 1; i < argc;)
        if (opt_cli_next(argc, argv, &i, &a, NULL, 0) == MOE_OK && a.special &&
            a.special->action == MOE_CONFIG_RUN)
            ini = a.value;
    return ini ? ini : opt_env_config(envp);
}

moe_status_t moe_config_check_paths(const moe_config_t *cfg, const char *config_file, char *err,
                                    size_t errlen)
{
    const struct { const char *key, *path; unsigned flags; } out[] = {
        {"telemetry", cfg->telemetry, cfg->overwrite ? MOE_OUT_OVERWRITE : 0u},
        {"summary_json", cfg->summary_json, MOE_OUT_OVERWRITE},
        {"output_dump", cfg->output_dump, MOE_OUT_OVERWRITE},
        {"metrics_file", cfg->metrics_file, MOE_OUT_OVERWRITE},
    };
    char   why[MOE_PATH_MAX + 256], other[256];
    size_t i, j, n = sizeof(out) / sizeof(out[0]);

    for (i = 0; i < n; i++) {
        unsigned fl = out[i].flags | (cfg->follow_symlinks ? MOE_OUT_FOLLOW : 0u);
        if (out[i].path[0] == '\0')
            continue;
        if (i == 0 && moe_out_locked(out[i].path, other, sizeof(other))) {
            moe_say(err, errlen, "telemetry: '%s' is in use by another run (%s)", out[i].path,
                    other[0] ? other : "unknown process");
            return MOE_ERR_INVALID;
        }
        if (moe_out_check(out[i].path, fl, why, sizeof(why)) != 0) {
            moe_say(err, errlen, "%s: %s", out[i].key, why);
            return MOE_ERR_INVALID;
        }
        if (moe_path_same(out[i].path, config_file)) {
            moe_say(err, errlen, "%s: '%s' is the configuration file being read", out[i].key,
                    out[i].path);
            return MOE_ERR_INVALID;
        }
        for (j = 0; j < i; j++) {
            if (out[j].path[0] && moe_path_same(out[i].path, out[j].path)) {
                moe_say(err, errlen, "%s: '%s' is the same file as %s '%s'; give each output "
                        "its own file", out[i].key, out[i].path, out[j].key, out[j].path);
                return MOE_ERR_INVALID;
            }
        }
    }
    return MOE_OK;
}

/* ---- output: INI, help, markdown --------------------------------------------------------------- */

void moe_config_print(const moe_config_t *cfg, FILE *out)
{
    char   text[MOE_PATH_MAX + 64];
    size_t i;
    int    g;

    fprintf(out, "# moerun %s configuration; run it again with: moerun --config FILE\n",
            MOERUN_VERSION);
    fprintf(out, "[" OPT_SECTION "]\n");
    for (g = 0; g < OPT_GROUP_COUNT; g++) {
        fprintf(out, "\n# %s\n", opt_group_titles[g]);
        for (i = 0; i < OPT_COUNT; i++) {
            if (opt_table[i].group == (opt_group_t)g) {
                opt_format(&opt_table[i], cfg, text, sizeof(text));
                fprintf(out, "%s =%s%s\n", opt_table[i].key, text[0] ? " " : "", text);
            }
        }
    }
}

/* Returns a malloc'd string; the caller frees it with free(). */
char *moe_config_to_ini(const moe_config_t *cfg)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *f = open_memstream(&buf, &len);

    if (f == NULL)
        return NULL;
    moe_config_print(cfg, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* "--experts N", "--activation gelu|swiglu", "--quiet". */
static const char *opt_flag_usage(const opt_t *o, char *buf, size_t n)
{
    if (o->type == OPT_BOOL) {
        snprintf(buf, n, "%s", o->flag);
    } else if (o->type == OPT_ENUM) {
        snprintf(buf, n, "%s ", o->flag);
        opt_join(buf, n, o->names, "|");
    } else {
        snprintf(buf, n, "%s %s", o->flag, o->meta);
    }
    return buf;
}

static const char *opt_default_text(const opt_t *o)
{
    return o->def[0] ? o->def : "\"\"";
}

void moe_config_help(FILE *out, const char *argv0)
{
    const char *prog = "moerun", *slash;
    char        usage[128], allowed[256], left[160];
    size_t      i;
    int         g;

    if (argv0 && argv0[0]) {
        slash = strrchr(argv0, '/');
        prog = slash ? slash + 1 : argv0;
    }
    fprintf(out,
            "Usage: %s [options]\n"
            "\n"
            "moerun runs a stack of expert-parallel Mixture-of-Experts layers under MPI: launch\n"
            "it with `mpirun -np N %s [options]`. The experts are spread over the N ranks and\n"
            "every step exchanges tokens between them; moerun writes per-step HDF5 telemetry\n"
            "(routing, drops, timings, traffic) and prints a routing-health summary at the end.\n"
            "\n"
            "Options take values as --flag VALUE or --flag=VALUE. Every option is also a\n"
            "MOERUN_* environment variable and a key of an INI file (--config FILE). Precedence,\n"
            "lowest to highest: built-in defaults < INI file < environment < command line.\n"
            "Each line: flag, doc, allowed values, [default], environment variable.\n"
            "\n"
            "General:\n",
            prog, prog);
    for (i = 0; i < OPT_SPECIAL_COUNT; i++) {
        const opt_special_t *s = &opt_specials[i];
        snprintf(left, sizeof(left), "%s%s%s%s%s", s->alias ? s->alias : "",
                 s->alias ? ", " : "", s->flag, s->meta ? " " : "", s->meta ? s->meta : "");
        fprintf(out, "  %-36s %s%s%s\n", left, s->doc, s->env ? "  " : "", s->env ? s->env : "");
    }
    for (g = 0; g < OPT_GROUP_COUNT; g++) {
        fprintf(out, "\n%s:\n", opt_group_titles[g]);
        for (i = 0; i < OPT_COUNT; i++) {
            const opt_t *o = &opt_table[i];
            if (o->group != (opt_group_t)g)
                continue;
            /* an enum's values are in its usage already */
            fprintf(out, "  %-36s %s%s%s [%s]  %s\n", opt_flag_usage(o, usage, sizeof(usage)),
                    o->doc, o->type == OPT_ENUM ? "" : "; ",
                    o->type == OPT_ENUM ? "" : opt_allowed(o, allowed, sizeof(allowed)),
                    opt_default_text(o), o->env);
        }
    }
    fprintf(out,
            "\n"
            "Exit codes: 0 success; 1 runtime error; 2 invalid configuration or usage (one\n"
            "message naming the field, the bad value, where it came from and what is allowed);\n"
            "3 a step did not finish within --step-timeout (the watchdog ended the rank);\n"
            "128 + signal number when SIGINT, SIGTERM, SIGUSR1 or SIGUSR2 stopped the run early.\n"
            "Reference: docs/config.md.\n");
}

/* A markdown table cell: '|' escaped. */
static void opt_md_cell(FILE *out, const char *text)
{
    for (; *text; text++) {
        if (*text == '|')
            fputc('\\', out);
        fputc(*text, out);
    }
}

void moe_config_help_markdown(FILE *out)
{
    char   usage[128], allowed[256];
    size_t i;
    int    g;

    fprintf(out,
            "# moerun configuration reference\n"
            "\n"
            "<!-- Generated by moe_config_help_markdown() from the option table in "
            "runtime/config.c;\n"
            "     do not edit by hand. tests/unit/test_config.c checks that this file matches. -->\n"
            "\n"
            "Every option is one row of one table in `runtime/config.c`: INI key, command-line "
            "flag,\n"
            "`MOERUN_*` environment variable, default, allowed values and doc line. `moerun "
            "--help`,\n"
            "`moerun --print-config` and this page are generated from it.\n"
            "\n"
            "Precedence, lowest to highest: built-in defaults < INI file (`--config FILE` or\n"
            "`MOERUN_CONFIG`) < `MOERUN_*` environment variables < command-line flags.\n"
            "\n"
            "- Flags take values as `--flag VALUE` or `--flag=VALUE`; `--quiet` alone sets "
            "`quiet`\n"
            "  (`--quiet=false` clears it). Booleans in INI files and the environment accept\n"
            "  `1/0`, `true/false`, `yes/no`, `on/off`.\n"
            "- INI files hold `key = value` lines, before any section or in `[" OPT_SECTION
            "]`;\n"
            "  comments start with `#` or `;`. Lines are at most %d characters. `moerun\n"
            "  --print-config > run.ini` writes every key; `moerun --config run.ini` reads it "
            "back.\n"
            "- Numbers must parse completely (`12abc` is an error); doubles must be finite.\n"
            "  Strings hold no control characters, no leading or trailing blanks and no ` ;`.\n"
            "- Every `MOERUN_*` variable must be an option (or `MOERUN_CONFIG`); a misspelt one\n"
            "  is an error rather than silently ignored.\n"
            "- `moe_config_validate` also checks, at startup: `top_k <= experts`; the workload\n"
            "  spec parses (`domains:N` needs `N <= experts`); the exchange backend exists;\n"
            "  `tokens * top_k * d_model` and `ranks * tokens` fit MPI's `int` counts.\n"
            "\n"
            "Errors are one line naming the field, the bad value, where it came from and what is\n"
            "allowed, e.g. `experts: \"0\" is out of range (from --experts); allowed 1..65536`.\n"
            "Exit codes of `moerun`: 0 success, 1 runtime error, 2 invalid configuration or "
            "usage,\n3 a step over `--step-timeout`, 128 + the signal's number when SIGINT, "
            "SIGTERM,\nSIGUSR1 or SIGUSR2 stopped the run (docs/signals.md).\n"
            "\n"
            "## Command line only\n"
            "\n"
            "| flag | environment | meaning |\n"
            "|---|---|---|\n",
            OPT_INI_LINE_MAX);
    for (i = 0; i < OPT_SPECIAL_COUNT; i++) {
        const opt_special_t *s = &opt_specials[i];
        fprintf(out, "| `%s%s%s`%s%s%s | %s%s%s | %s |\n", s->flag, s->meta ? " " : "",
                s->meta ? s->meta : "", s->alias ? ", `" : "", s->alias ? s->alias : "",
                s->alias ? "`" : "", s->env ? "`" : "", s->env ? s->env : "", s->env ? "`" : "",
                s->doc);
    }
    for (g = 0; g < OPT_GROUP_COUNT; g++) {
        fprintf(out,
                "\n## %s\n\n| key | flag | environment | default | allowed | meaning |\n"
                "|---|---|---|---|---|---|\n",
                opt_group_titles[g]);
        for (i = 0; i < OPT_COUNT; i++) {
            const opt_t *o = &opt_table[i];
            if (o->group != (opt_group_t)g)
                continue;
            fprintf(out, "| `%s` | `", o->key);
            opt_md_cell(out, opt_flag_usage(o, usage, sizeof(usage)));
            fprintf(out, "` | `%s` | `%s` | ", o->env, opt_default_text(o));
            opt_md_cell(out, opt_allowed(o, allowed, sizeof(allowed)));
            fprintf(out, " | ");
            opt_md_cell(out, o->doc);
            fprintf(out, " |\n");
        }
    }
}
