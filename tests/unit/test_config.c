/*
 * test_config.c — the configuration table (runtime/config.c) from outside: defaults; every
 * option through each source (flag, --flag=value, MOERUN_* variable, INI file,
 * moe_config_set) checked against the struct field written here by hand; precedence;
 * one-line errors naming field, source and allowed values for each class of bad input;
 * unknown flags, keys, sections and variables; unreadable files; print -> load_ini
 * round-trip of every field; the cross-field checks of moe_config_validate; help text; and
 * docs/config.md equal to moe_config_help_markdown().
 *
 * Usage: test_config [DOCS_CONFIG_MD]. Without an argument the reference is looked for at
 * MOERUN_SOURCE_DIR/docs/config.md (compile definition) or ../../docs/config.md. Temporary
 * INI files are written to the working directory and removed.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moerun/config.h"
#include "testlib.h"

#define ERRLEN 512

/* ---- helpers -------------------------------------------------------------------------------- */

/* Writes text to a temporary INI file in the working directory; the caller removes it. */
static const char *write_ini(const char *name, const char *text)
{
    FILE *f = fopen(name, "w");

    if (f == NULL) {
        fprintf(stderr, "cannot write %s\n", name);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return name;
}

/* moe_config_load over a NULL-terminated argument list (argv[0] added) and environment. */
static moe_status_t load(moe_config_t *cfg, char **env, moe_config_action_t *action, char *err,
                         const char *arg0, ...)
{
    char              *argv[32];
    int                argc = 0;
    va_list            ap;
    const char        *a;
    moe_config_action_t dummy;

    argv[argc++] = (char *)"moerun";
    va_start(ap, arg0);
    for (a = arg0; a != NULL && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return moe_config_load(cfg, argc, argv, env, action ? action : &dummy, err, ERRLEN);
}

/* What moe_config_help prints; the caller frees it. */
static char *capture_help(void)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *f = open_memstream(&buf, &len);

    moe_config_help(f, "/some/where/moerun");
    fclose(f);
    return buf;
}

/* What moe_config_help_markdown prints; the caller frees it. */
static char *capture_markdown(void)
{
    char  *buf = NULL;
    size_t len = 0;
    FILE  *f = open_memstream(&buf, &len);

    moe_config_help_markdown(f);
    fclose(f);
    return buf;
}

/* Field by field, so a failure names the field; then bytewise (both sides come from
 * moe_config_defaults, which clears the struct), so a field missing here is noticed. */
static void assert_config_eq(const moe_config_t *a, const moe_config_t *b, const char *what)
{
    int before = moe_test_failures;

    ASSERT_EQ_INT(a->experts, b->experts);
    ASSERT_EQ_INT(a->top_k, b->top_k);
    ASSERT_EQ_INT(a->d_model, b->d_model);
    ASSERT_EQ_INT(a->d_ffn, b->d_ffn);
    ASSERT_EQ_INT(a->activation, b->activation);
    ASSERT_EQ_INT(a->layers, b->layers);
    ASSERT_EQ_INT(a->tokens, b->tokens);
    ASSERT_EQ_INT(a->steps, b->steps);
    ASSERT_TRUE(a->capacity_factor == b->capacity_factor);
    ASSERT_EQ_INT(a->drop_policy, b->drop_policy);
    ASSERT_TRUE(a->temperature == b->temperature);
    ASSERT_TRUE(a->seed == b->seed);
    ASSERT_TRUE(strcmp(a->workload, b->workload) == 0);
    ASSERT_EQ_INT(a->placement, b->placement);
    ASSERT_TRUE(strcmp(a->exchange, b->exchange) == 0);
    ASSERT_EQ_INT(a->ranks_per_node, b->ranks_per_node);
    ASSERT_TRUE(strcmp(a->telemetry, b->telemetry) == 0);
    ASSERT_EQ_INT(a->telemetry_mode, b->telemetry_mode);
    ASSERT_EQ_INT(a->flush_interval, b->flush_interval);
    ASSERT_EQ_INT(a->route_samples, b->route_samples);
    ASSERT_TRUE(strcmp(a->summary_json, b->summary_json) == 0);
    ASSERT_TRUE(strcmp(a->output_dump, b->output_dump) == 0);
    ASSERT_EQ_INT(a->quiet, b->quiet);
    ASSERT_TRUE(a->progress_interval == b->progress_interval);
    ASSERT_EQ_INT(a->log_level, b->log_level);
    ASSERT_EQ_INT(a->monitor_window, b->monitor_window);
    ASSERT_TRUE(a->monitor_starved_share == b->monitor_starved_share);
    ASSERT_TRUE(a->monitor_drop_rate == b->monitor_drop_rate);
    ASSERT_TRUE(a->monitor_entropy_min == b->monitor_entropy_min);
    ASSERT_TRUE(a->monitor_collapse_share == b->monitor_collapse_share);
    ASSERT_TRUE(a->monitor_logit_std_factor == b->monitor_logit_std_factor);
    ASSERT_TRUE(memcmp(a, b, sizeof(*a)) == 0);
    if (moe_test_failures != before)
        fprintf(stderr, "  (in %s)\n", what);
}

/* ---- one sample value per option, with the field it must land in --------------------------- */

typedef enum { K_INT, K_LONG, K_DOUBLE, K_U64, K_STR } kind_t;

typedef struct sample {
    const char *key, *flag, *env, *text;
    size_t      offset;
    kind_t      kind;
    long long   i;
    double      d;
    uint64_t    u;
    const char *s;
} sample_t;

#define S_INT(f, flag, env, text, v) {#f, flag, env, text, offsetof(moe_config_t, f), K_INT, v, 0, 0, NULL}
#define S_LONG(f, flag, env, text, v) {#f, flag, env, text, offsetof(moe_config_t, f), K_LONG, v, 0, 0, NULL}
#define S_DBL(f, flag, env, text, v) {#f, flag, env, text, offsetof(moe_config_t, f), K_DOUBLE, 0, v, 0, NULL}
#define S_U64(f, flag, env, text, v) {#f, flag, env, text, offsetof(moe_config_t, f), K_U64, 0, 0, v, NULL}
/* for strings, i is the size of the field (config.c clears all of it when it stores one) */
#define S_STR(f, flag, env, text, v) \
    {#f, flag, env, text, offsetof(moe_config_t, f), K_STR, sizeof(((moe_config_t *)0)->f), 0, 0, v}

/* Every value differs from the default. */
static const sample_t samples[] = {
    S_INT(experts, "--experts", "MOERUN_EXPERTS", "16", 16),
    S_INT(top_k, "--top-k", "MOERUN_TOP_K", "4", 4),
    S_INT(d_model, "--d-model", "MOERUN_D_MODEL", "64", 64),
    S_INT(d_ffn, "--d-ffn", "MOERUN_D_FFN", "96", 96),
    S_INT(activation, "--activation", "MOERUN_ACTIVATION", "swiglu", MOE_ACT_SWIGLU),
    S_INT(layers, "--layers", "MOERUN_LAYERS", "3", 3),
    S_INT(tokens, "--tokens", "MOERUN_TOKENS", "1000", 1000),
    S_LONG(steps, "--steps", "MOERUN_STEPS", "1000000000000", 1000000000000LL),
    S_DBL(capacity_factor, "--capacity-factor", "MOERUN_CAPACITY_FACTOR", "-0.5", -0.5),
    S_INT(drop_policy, "--drop-policy", "MOERUN_DROP_POLICY", "probs", MOE_DROP_PROBS),
    S_DBL(temperature, "--temperature", "MOERUN_TEMPERATURE", "0.7", 0.7),
    S_U64(seed, "--seed", "MOERUN_SEED", "18446744073709551615", UINT64_MAX),
    S_STR(workload, "--workload", "MOERUN_WORKLOAD", "zipf:1.2", "zipf:1.2"),
    S_INT(placement, "--placement", "MOERUN_PLACEMENT", "round-robin", MOE_PLACE_ROUND_ROBIN),
    S_STR(exchange, "--exchange", "MOERUN_EXCHANGE", "hier", "hier"),
    S_INT(ranks_per_node, "--ranks-per-node", "MOERUN_RANKS_PER_NODE", "2", 2),
    S_STR(telemetry, "--telemetry", "MOERUN_TELEMETRY", "none", ""),
    S_INT(telemetry_mode, "--telemetry-mode", "MOERUN_TELEMETRY_MODE", "gather", MOE_TEL_GATHER),
    S_INT(flush_interval, "--flush-interval", "MOERUN_FLUSH_INTERVAL", "1", 1),
    S_INT(route_samples, "--route-samples", "MOERUN_ROUTE_SAMPLES", "0", 0),
    S_STR(summary_json, "--summary-json", "MOERUN_SUMMARY_JSON", "out dir/s.json", "out dir/s.json"),
    S_STR(output_dump, "--output-dump", "MOERUN_OUTPUT_DUMP", "/tmp/x.bin", "/tmp/x.bin"),
    S_INT(quiet, "--quiet", "MOERUN_QUIET", "yes", 1),
    S_DBL(progress_interval, "--progress-interval", "MOERUN_PROGRESS_INTERVAL", "0", 0),
    S_INT(log_level, "--log-level", "MOERUN_LOG_LEVEL", "debug", 3),
    S_INT(monitor_window, "--monitor-window", "MOERUN_MONITOR_WINDOW", "1000000", 1000000),
    S_DBL(monitor_starved_share, "--monitor-starved-share", "MOERUN_MONITOR_STARVED_SHARE", "0", 0),
    S_DBL(monitor_drop_rate, "--monitor-drop-rate", "MOERUN_MONITOR_DROP_RATE", "1", 1),
    S_DBL(monitor_entropy_min, "--monitor-entropy-min", "MOERUN_MONITOR_ENTROPY_MIN", "0.125", 0.125),
    S_DBL(monitor_collapse_share, "--monitor-collapse-share", "MOERUN_MONITOR_COLLAPSE_SHARE", "0.9", 0.9),
    S_DBL(monitor_logit_std_factor, "--monitor-logit-std-factor", "MOERUN_MONITOR_LOGIT_STD_FACTOR", "1e6", 1e6),
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

/* Defaults with the sample's field written directly (not through config.c). */
static void expected_for(const sample_t *s, moe_config_t *cfg)
{
    char *field;

    moe_config_defaults(cfg);
    field = (char *)cfg + s->offset;
    switch (s->kind) {
    case K_INT: {
        int v = (int)s->i;
        memcpy(field, &v, sizeof(v));
        break;
    }
    case K_LONG: {
        long v = (long)s->i;
        memcpy(field, &v, sizeof(v));
        break;
    }
    case K_DOUBLE:
        memcpy(field, &s->d, sizeof(s->d));
        break;
    case K_U64:
        memcpy(field, &s->u, sizeof(s->u));
        break;
    case K_STR:
        strncpy(field, s->s, (size_t)s->i);
        break;
    }
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_defaults(void)
{
    moe_config_t c;

    moe_config_defaults(&c);
    ASSERT_EQ_INT(c.experts, 8);
    ASSERT_EQ_INT(c.top_k, 2);
    ASSERT_EQ_INT(c.d_model, 256);
    ASSERT_EQ_INT(c.d_ffn, 512);
    ASSERT_EQ_INT(c.activation, MOE_ACT_GELU);
    ASSERT_EQ_INT(c.layers, 2);
    ASSERT_EQ_INT(c.tokens, 256);
    ASSERT_EQ_INT(c.steps, 20);
    ASSERT_NEAR(c.capacity_factor, 1.25, 0);
    ASSERT_EQ_INT(c.drop_policy, MOE_DROP_POSITION);
    ASSERT_NEAR(c.temperature, 1.0, 0);
    ASSERT_TRUE(c.seed == 42);
    ASSERT_STR_CONTAINS(c.workload, "uniform");
    ASSERT_TRUE(strcmp(c.workload, "uniform") == 0);
    ASSERT_EQ_INT(c.placement, MOE_PLACE_CONTIGUOUS);
    ASSERT_TRUE(strcmp(c.exchange, "flat") == 0);
    ASSERT_EQ_INT(c.ranks_per_node, 0);
    ASSERT_TRUE(strcmp(c.telemetry, "moerun.h5") == 0);
    ASSERT_EQ_INT(c.telemetry_mode, MOE_TEL_PARALLEL);
    ASSERT_EQ_INT(c.flush_interval, 10);
    ASSERT_EQ_INT(c.route_samples, 8);
    ASSERT_TRUE(c.summary_json[0] == '\0');
    ASSERT_TRUE(c.output_dump[0] == '\0');
    ASSERT_EQ_INT(c.quiet, 0);
    ASSERT_NEAR(c.progress_interval, 5, 0);
    ASSERT_EQ_INT(c.log_level, 2);
    ASSERT_EQ_INT(c.monitor_window, 10);
    ASSERT_NEAR(c.monitor_starved_share, 0.05, 0);
    ASSERT_NEAR(c.monitor_drop_rate, 0.01, 0);
    ASSERT_NEAR(c.monitor_entropy_min, 0.8, 0);
    ASSERT_NEAR(c.monitor_collapse_share, 0.5, 0);
    ASSERT_NEAR(c.monitor_logit_std_factor, 3, 0);

    /* load with nothing given = defaults, action RUN, and the defaults validate */
    {
        moe_config_t        l;
        moe_config_action_t act = MOE_CONFIG_HELP;
        char                err[ERRLEN];

        ASSERT_EQ_INT(load(&l, NULL, &act, err, NULL), MOE_OK);
        ASSERT_EQ_INT(act, MOE_CONFIG_RUN);
        assert_config_eq(&l, &c, "load without arguments");
        ASSERT_EQ_INT(moe_config_validate(&c, 4, err, ERRLEN), MOE_OK);
    }
}

static void test_every_option_every_source(void)
{
    size_t i;
    char   err[ERRLEN], arg[256], envv[256], ini[512], what[128];

    for (i = 0; i < NSAMPLES; i++) {
        const sample_t *s = &samples[i];
        moe_config_t    want, got, def;
        char           *env[3] = {envv, (char *)"PATH=/usr/bin", NULL};
        int             is_bool = strcmp(s->key, "quiet") == 0;

        expected_for(s, &want);
        moe_config_defaults(&def);
        snprintf(what, sizeof(what), "%s differs from its default", s->key);
        ASSERT_TRUE(memcmp(&want, &def, sizeof(def)) != 0);

        /* --flag value (a bool flag takes no separate value) */
        snprintf(what, sizeof(what), "%s value", s->flag);
        err[0] = '\0';
        if (is_bool)
            ASSERT_EQ_INT(load(&got, NULL, NULL, err, s->flag, NULL), MOE_OK);
        else
            ASSERT_EQ_INT(load(&got, NULL, NULL, err, s->flag, s->text, NULL), MOE_OK);
        if (err[0])
            fprintf(stderr, "  %s: %s\n", what, err);
        assert_config_eq(&got, &want, what);

        /* --flag=value */
        snprintf(arg, sizeof(arg), "%s=%s", s->flag, s->text);
        err[0] = '\0';
        ASSERT_EQ_INT(load(&got, NULL, NULL, err, arg, NULL), MOE_OK);
        if (err[0])
            fprintf(stderr, "  %s: %s\n", arg, err);
        assert_config_eq(&got, &want, arg);

        /* MOERUN_KEY=value */
        snprintf(envv, sizeof(envv), "%s=%s", s->env, s->text);
        err[0] = '\0';
        ASSERT_EQ_INT(load(&got, env, NULL, err, NULL), MOE_OK);
        if (err[0])
            fprintf(stderr, "  %s: %s\n", envv, err);
        assert_config_eq(&got, &want, envv);

        /* INI, no section and in [moerun] */
        snprintf(ini, sizeof(ini), "; comment\n# comment\n%s = %s\n", s->key, s->text);
        write_ini("test_config_every.ini", ini);
        moe_config_defaults(&got);
        err[0] = '\0';
        ASSERT_EQ_INT(moe_config_load_ini(&got, "test_config_every.ini", err, ERRLEN), MOE_OK);
        if (err[0])
            fprintf(stderr, "  ini %s: %s\n", s->key, err);
        assert_config_eq(&got, &want, "INI without section");
        snprintf(ini, sizeof(ini), "[moerun]\n%s=%s\n", s->key, s->text);
        write_ini("test_config_every.ini", ini);
        err[0] = '\0';
        ASSERT_EQ_INT(load(&got, NULL, NULL, err, "--config", "test_config_every.ini", NULL), MOE_OK);
        if (err[0])
            fprintf(stderr, "  ini [moerun] %s: %s\n", s->key, err);
        assert_config_eq(&got, &want, "INI [moerun] via --config");
        remove("test_config_every.ini");

        /* moe_config_set */
        moe_config_defaults(&got);
        ASSERT_EQ_INT(moe_config_set(&got, s->key, s->text, err, ERRLEN), MOE_OK);
        assert_config_eq(&got, &want, "moe_config_set");
    }
}

static void test_bool_forms(void)
{
    moe_config_t c;
    char         err[ERRLEN];
    char        *env_off[] = {(char *)"MOERUN_QUIET=off", NULL};
    char        *env_on[] = {(char *)"MOERUN_QUIET=TRUE", NULL};

    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--quiet", "--steps", "3", NULL), MOE_OK);
    ASSERT_EQ_INT(c.quiet, 1);
    ASSERT_EQ_INT(c.steps, 3);
    ASSERT_EQ_INT(load(&c, env_on, NULL, err, "--quiet=false", NULL), MOE_OK);
    ASSERT_EQ_INT(c.quiet, 0);
    ASSERT_EQ_INT(load(&c, env_on, NULL, err, NULL), MOE_OK);
    ASSERT_EQ_INT(c.quiet, 1);
    ASSERT_EQ_INT(load(&c, env_off, NULL, err, NULL), MOE_OK);
    ASSERT_EQ_INT(c.quiet, 0);
    ASSERT_EQ_INT(moe_config_set(&c, "quiet", "1", err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(c.quiet, 1);
    ASSERT_EQ_INT(moe_config_set(&c, "quiet", "no", err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(c.quiet, 0);
    /* "--quiet x": x is not quiet's value but a stray argument */
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--quiet", "true", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unexpected argument \"true\"");
    /* "none" clears the telemetry path; "" too */
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--telemetry", "", NULL), MOE_OK);
    ASSERT_TRUE(c.telemetry[0] == '\0');
}

static void test_precedence(void)
{
    moe_config_t c;
    char         err[ERRLEN];
    char        *env[] = {(char *)"MOERUN_EXPERTS=11", (char *)"MOERUN_TOKENS=101",
                          (char *)"HOME=/root", NULL};
    char        *env_cfg[] = {(char *)"MOERUN_CONFIG=test_config_prec_env.ini", NULL};

    write_ini("test_config_prec.ini", "experts = 10\ntokens = 100\nsteps = 5\n");
    write_ini("test_config_prec_env.ini", "steps = 6\nlayers = 4\n");

    ASSERT_EQ_INT(load(&c, env, NULL, err, "--experts", "12", "--config", "test_config_prec.ini",
                       NULL), MOE_OK);
    ASSERT_EQ_INT(c.experts, 12); /* CLI over env over INI */
    ASSERT_EQ_INT(c.tokens, 101); /* env over INI */
    ASSERT_EQ_INT(c.steps, 5);    /* INI over default */
    ASSERT_EQ_INT(c.layers, 2);   /* default */

    /* MOERUN_CONFIG names the file; --config overrides it */
    ASSERT_EQ_INT(load(&c, env_cfg, NULL, err, NULL), MOE_OK);
    ASSERT_EQ_INT(c.steps, 6);
    ASSERT_EQ_INT(c.layers, 4);
    ASSERT_EQ_INT(load(&c, env_cfg, NULL, err, "--config=test_config_prec.ini", NULL), MOE_OK);
    ASSERT_EQ_INT(c.steps, 5);
    ASSERT_EQ_INT(c.layers, 2);

    /* the last of repeated flags wins */
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--experts", "3", "--experts=5", NULL), MOE_OK);
    ASSERT_EQ_INT(c.experts, 5);

    remove("test_config_prec.ini");
    remove("test_config_prec_env.ini");
}

typedef struct bad {
    const char *flag, *value;   /* given as --flag value */
    const char *field, *problem, *allowed;
} bad_t;

static const bad_t bads[] = {
    {"--experts", "0", "experts", "is out of range", "allowed 1..65536"},
    {"--experts", "65537", "experts", "is out of range", "allowed 1..65536"},
    {"--experts", "12abc", "experts", "is not an integer", "allowed 1..65536"},
    {"--experts", "", "experts", "is not an integer", "allowed 1..65536"},
    {"--experts", " 8", "experts", "is not an integer", "allowed 1..65536"},
    {"--experts", "1e99999", "experts", "is not an integer", "allowed 1..65536"},
    {"--experts", "0x10", "experts", "is not an integer", "allowed 1..65536"},
    {"--experts", "99999999999999999999", "experts", "is out of range", "allowed 1..65536"},
    {"--top-k", "65", "top_k", "is out of range", "allowed 1..64"},
    {"--d-model", "-5", "d_model", "is out of range", "allowed 1..65536"},
    {"--d-ffn", "262145", "d_ffn", "is out of range", "allowed 1..262144"},
    {"--layers", "0", "layers", "is out of range", "allowed 1..1024"},
    {"--tokens", "16777217", "tokens", "is out of range", "allowed 1..16777216"},
    {"--steps", "12abc", "steps", "is not an integer", "allowed 1..1000000000000"},
    {"--steps", "1000000000001", "steps", "is out of range", "allowed 1..1000000000000"},
    {"--capacity-factor", "nan", "capacity_factor", "is not a finite number", "<= 0 means dropless"},
    {"--capacity-factor", "inf", "capacity_factor", "is not a finite number", "allowed a finite number"},
    {"--capacity-factor", "-inf", "capacity_factor", "is not a finite number", "-1000000..1000000"},
    {"--capacity-factor", "1e99999", "capacity_factor", "is not a finite number", "-1000000..1000000"},
    {"--capacity-factor", "2e6", "capacity_factor", "is out of range", "-1000000..1000000"},
    {"--capacity-factor", "1.5x", "capacity_factor", "is not a number", "-1000000..1000000"},
    {"--temperature", "0", "temperature", "is out of range", "1e-06..1000"},
    {"--temperature", "1e-7", "temperature", "is out of range", "z-loss overflows"},
    {"--temperature", "-1", "temperature", "is out of range", "1e-06..1000"},
    {"--temperature", "1000.5", "temperature", "is out of range", "1e-06..1000"},
    {"--temperature", "NaN", "temperature", "is not a finite number", "1e-06..1000"},
    {"--seed", "-1", "seed", "is not an unsigned integer", "0..18446744073709551615"},
    {"--seed", "18446744073709551616", "seed", "is out of range", "0..18446744073709551615"},
    {"--seed", "4x", "seed", "is not an unsigned integer", "0..18446744073709551615"},
    {"--drop-policy", "random", "drop_policy", "is not a known value", "allowed position, probs"},
    {"--activation", "relu", "activation", "is not a known value", "allowed gelu, swiglu"},
    {"--placement", "random", "placement", "is not a known value", "contiguous, round-robin"},
    {"--telemetry-mode", "async", "telemetry_mode", "is not a known value", "parallel, gather"},
    {"--log-level", "verbose", "log_level", "is not a known value", "error, warn, info, debug"},
    {"--quiet=maybe", NULL, "quiet", "is not a boolean", "true/false"},
    {"--progress-interval", "-1", "progress_interval", "is out of range", "0..86400"},
    {"--flush-interval", "0", "flush_interval", "is out of range", "1..1000000"},
    {"--route-samples", "-1", "route_samples", "is out of range", "0..65536"},
    {"--monitor-window", "0", "monitor_window", "is out of range", "1..1000000"},
    {"--monitor-starved-share", "1.5", "monitor_starved_share", "is out of range", "0..1"},
    {"--monitor-drop-rate", "-0.1", "monitor_drop_rate", "is out of range", "0..1"},
    {"--monitor-entropy-min", "2", "monitor_entropy_min", "is out of range", "0..1"},
    {"--monitor-collapse-share", "1.01", "monitor_collapse_share", "is out of range", "0..1"},
    {"--monitor-logit-std-factor", "0.5", "monitor_logit_std_factor", "is out of range", "1..1000000"},
    {"--ranks-per-node", "-1", "ranks_per_node", "is out of range", "0..65536"},
    {"--telemetry", "a\nb.h5", "telemetry", "control character", "allowed a path"},
    {"--summary-json", " lead.json", "summary_json", "leading or trailing blanks", "allowed a path"},
    {"--output-dump", "x ;y", "output_dump", "INI comment", "allowed a path"},
    {"--workload", ";zipf", "workload", "INI comment", "allowed uniform, zipf:S"},
    {"--exchange", "a-name-that-is-longer-than-31-chars", "exchange", "is too long", "flat|hier"},
};

static void test_bad_values(void)
{
    size_t       i;
    moe_config_t c;
    char         err[ERRLEN], src[128];

    for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        const bad_t *b = &bads[i];
        const char  *flag = b->flag;
        size_t       n = strcspn(flag, "=");

        err[0] = '\0';
        if (b->value)
            ASSERT_EQ_INT(load(&c, NULL, NULL, err, flag, b->value, NULL), MOE_ERR_INVALID);
        else
            ASSERT_EQ_INT(load(&c, NULL, NULL, err, flag, NULL), MOE_ERR_INVALID);
        ASSERT_TRUE(strncmp(err, b->field, strlen(b->field)) == 0 && err[strlen(b->field)] == ':');
        ASSERT_STR_CONTAINS(err, b->problem);
        ASSERT_STR_CONTAINS(err, b->allowed);
        snprintf(src, sizeof(src), "(from %.*s)", (int)n, flag);
        ASSERT_STR_CONTAINS(err, src);
        ASSERT_TRUE(strchr(err, '\n') == NULL);
    }

    /* the exact forms of the brief */
    load(&c, NULL, NULL, err, "--experts", "0", NULL);
    ASSERT_STR_CONTAINS(err, "experts: \"0\" is out of range (from --experts); allowed 1..65536");

    /* the same checks from the environment and from an INI file, with their sources */
    {
        char *env[] = {(char *)"MOERUN_EXPERTS=abc", NULL};
        ASSERT_EQ_INT(load(&c, env, NULL, err, NULL), MOE_ERR_INVALID);
        ASSERT_STR_CONTAINS(err, "experts: \"abc\" is not an integer (from MOERUN_EXPERTS); allowed 1..65536");
    }
    write_ini("test_config_bad.ini", "[moerun]\nexperts = 4\n\ncapacity_factor = nan\n");
    ASSERT_EQ_INT(moe_config_load_ini(&c, "test_config_bad.ini", err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "capacity_factor: \"nan\" is not a finite number (from config file "
                             "test_config_bad.ini:4); allowed a finite number");
    ASSERT_STR_CONTAINS(err, "<= 0 means dropless");
    remove("test_config_bad.ini");

    /* moe_config_set: same checks, no source */
    moe_config_defaults(&c);
    ASSERT_EQ_INT(moe_config_set(&c, "temperature", "0", err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "temperature: \"0\" is out of range; allowed");
    ASSERT_EQ_INT(moe_config_set(&c, "tokens", NULL, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "tokens");
    ASSERT_EQ_INT(moe_config_set(&c, "nope", "1", err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unknown key \"nope\"");

    /* a missing value */
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--experts", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "experts: missing value after --experts; allowed 1..65536");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--telemetry", "--quiet", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "telemetry: missing value");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--config", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "--config: missing value");
    /* a negative number is a value, not a flag */
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--capacity-factor", "-1", NULL), MOE_OK);
    ASSERT_NEAR(c.capacity_factor, -1, 0);

    /* a message never overflows the caller's buffer, and errlen 0 / NULL are allowed */
    {
        char small[16];
        ASSERT_EQ_INT(moe_config_set(&c, "experts", "0", small, sizeof(small)), MOE_ERR_INVALID);
        ASSERT_EQ_INT(strlen(small), sizeof(small) - 1);
        ASSERT_EQ_INT(moe_config_set(&c, "experts", "0", NULL, 0), MOE_ERR_INVALID);
    }
}

static void test_strings_fit_ini_lines(void)
{
    moe_config_t c, back;
    char         err[ERRLEN], path[200], *ini;

    /* the longest path allowed round-trips through an INI file; one more is refused */
    memset(path, 'p', sizeof(path));
    path[180] = '\0';
    moe_config_defaults(&c);
    ASSERT_EQ_INT(moe_config_set(&c, "summary_json", path, err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_set(&c, "telemetry", path, err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_set(&c, "output_dump", path, err, ERRLEN), MOE_OK);
    ini = moe_config_to_ini(&c);
    write_ini("test_config_long.ini", ini);
    free(ini);
    moe_config_defaults(&back);
    ASSERT_EQ_INT(moe_config_load_ini(&back, "test_config_long.ini", err, ERRLEN), MOE_OK);
    assert_config_eq(&back, &c, "180-character paths");
    path[180] = 'p';
    path[181] = '\0';
    ASSERT_EQ_INT(moe_config_set(&c, "summary_json", path, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "summary_json: \"pppp");
    ASSERT_STR_CONTAINS(err, "is too long (181 characters, at most 180); allowed a path of at most 180 characters");

    /* an INI line libinih would cut in two is refused, naming the line; a long comment is not */
    {
        char line[400];
        FILE *f = fopen("test_config_long.ini", "w");

        memset(line, 'c', sizeof(line));
        line[0] = '#';
        line[300] = '\0';
        fprintf(f, "experts = 4\n%s\n", line);
        memset(line, 'q', sizeof(line));
        memcpy(line, "workload = ", 11);
        line[300] = '\0';
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    moe_config_defaults(&back);
    ASSERT_EQ_INT(moe_config_load_ini(&back, "test_config_long.ini", err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "config file test_config_long.ini:3: line longer than 198 characters");
    ASSERT_EQ_INT(back.experts, 4);
    remove("test_config_long.ini");
}

static void test_unknown_names(void)
{
    moe_config_t        c;
    moe_config_action_t act;
    char                err[ERRLEN];

    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--foo", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unknown option --foo; see --help");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--foo=3", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unknown option --foo; see --help");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--expert", "8", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unknown option --expert (did you mean --experts?)");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "-x", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unknown option -x");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "stray", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unexpected argument \"stray\"");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--version=2", NULL), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "option --version takes no value");

    write_ini("test_config_unknown.ini", "[moerun]\nexperts = 4\n\n; comment\n\n\nfooo = 1\n");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--config", "test_config_unknown.ini", NULL),
                  MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unknown key \"fooo\" in config file test_config_unknown.ini:7");
    write_ini("test_config_unknown.ini", "experts = 4\n[model]\ntop_k = 2\n");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--config", "test_config_unknown.ini", NULL),
                  MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "unknown section [model] in config file test_config_unknown.ini:3");
    write_ini("test_config_unknown.ini", "experts = 4\nthis line has no equals sign\n");
    ASSERT_EQ_INT(moe_config_load_ini(&c, "test_config_unknown.ini", err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "config file test_config_unknown.ini:2: syntax error");
    remove("test_config_unknown.ini");

    {
        char *env[] = {(char *)"MOERUN_FOO=1", NULL};
        char *env_ok[] = {(char *)"MOERUNX=1", (char *)"MOERUN_BUILD_DIR=/b", (char *)"OTHER=1", NULL};
        char  big[4096];
        char *argv[] = {(char *)"moerun", NULL};

        ASSERT_EQ_INT(load(&c, env, NULL, err, NULL), MOE_ERR_INVALID);
        ASSERT_STR_CONTAINS(err, "MOERUN_FOO: unknown environment variable; known: MOERUN_EXPERTS, ");
        ASSERT_TRUE(strlen(err) < ERRLEN - 1); /* the list is cut at a name, not mid-word */
        ASSERT_STR_CONTAINS(err, "(see --help)");
        ASSERT_EQ_INT(moe_config_load(&c, 1, argv, env, &act, big, sizeof(big)), MOE_ERR_INVALID);
        ASSERT_STR_CONTAINS(big, "MOERUN_MONITOR_LOGIT_STD_FACTOR, MOERUN_CONFIG");
        ASSERT_EQ_INT(load(&c, env_ok, NULL, err, NULL), MOE_OK);
    }
}

static void test_unreadable_file(void)
{
    moe_config_t c;
    char         err[ERRLEN];
    char        *env[] = {(char *)"MOERUN_CONFIG=test_config_missing.ini", NULL};

    remove("test_config_missing.ini");
    ASSERT_EQ_INT(load(&c, NULL, NULL, err, "--config", "test_config_missing.ini", NULL), MOE_ERR_IO);
    ASSERT_STR_CONTAINS(err, "config file test_config_missing.ini: cannot open: No such file or directory");
    ASSERT_EQ_INT(load(&c, env, NULL, err, NULL), MOE_ERR_IO);
    ASSERT_STR_CONTAINS(err, "config file test_config_missing.ini: cannot open");
    ASSERT_EQ_INT(moe_config_load_ini(&c, ".", err, ERRLEN) != MOE_OK, 1); /* a directory */
    ASSERT_STR_CONTAINS(err, "config file .");
}

static void test_actions(void)
{
    moe_config_t        c;
    moe_config_action_t act = MOE_CONFIG_RUN;
    char                err[ERRLEN];
    char               *bad_env[] = {(char *)"MOERUN_BOGUS=1", NULL};

    ASSERT_EQ_INT(load(&c, NULL, &act, err, "--help", NULL), MOE_OK);
    ASSERT_EQ_INT(act, MOE_CONFIG_HELP);
    ASSERT_EQ_INT(load(&c, NULL, &act, err, "-h", NULL), MOE_OK);
    ASSERT_EQ_INT(act, MOE_CONFIG_HELP);
    ASSERT_EQ_INT(load(&c, NULL, &act, err, "--version", NULL), MOE_OK);
    ASSERT_EQ_INT(act, MOE_CONFIG_VERSION);
    ASSERT_EQ_INT(load(&c, NULL, &act, err, "--experts", "5", "--print-config", NULL), MOE_OK);
    ASSERT_EQ_INT(act, MOE_CONFIG_PRINT);
    ASSERT_EQ_INT(c.experts, 5);
    /* help is always reachable, even next to mistakes */
    ASSERT_EQ_INT(load(&c, bad_env, &act, err, "--bogus", "--help", NULL), MOE_OK);
    ASSERT_EQ_INT(act, MOE_CONFIG_HELP);
    /* print-config reports mistakes */
    ASSERT_EQ_INT(load(&c, NULL, &act, err, "--print-config", "--experts", "0", NULL), MOE_ERR_INVALID);
}

static void test_print_roundtrip(void)
{
    moe_config_t c, back;
    char         err[ERRLEN], *ini, *ini2;
    size_t       i;

    /* every field off its default at once, with doubles that need 17 digits */
    moe_config_defaults(&c);
    for (i = 0; i < NSAMPLES; i++)
        ASSERT_EQ_INT(moe_config_set(&c, samples[i].key, samples[i].text, err, ERRLEN), MOE_OK);
    c.temperature = 1.0 / 3.0;
    c.monitor_drop_rate = 0.1 + 0.2;
    c.capacity_factor = -1e-300;
    ASSERT_EQ_INT(moe_config_set(&c, "telemetry", "/scratch/run 7/t.h5", err, ERRLEN), MOE_OK);

    ini = moe_config_to_ini(&c);
    ASSERT_TRUE(ini != NULL);
    ASSERT_STR_CONTAINS(ini, "[moerun]\n");
    ASSERT_STR_CONTAINS(ini, "\nexperts = 16\n");
    ASSERT_STR_CONTAINS(ini, "\nactivation = swiglu\n");
    ASSERT_STR_CONTAINS(ini, "\nquiet = true\n");
    ASSERT_STR_CONTAINS(ini, "\nseed = 18446744073709551615\n");
    ASSERT_STR_CONTAINS(ini, "\nlog_level = debug\n");
    ASSERT_STR_CONTAINS(ini, "\nsummary_json = out dir/s.json\n");
    for (i = 0; i < NSAMPLES; i++) { /* every key is printed */
        char line[80];
        snprintf(line, sizeof(line), "\n%s = ", samples[i].key);
        ASSERT_STR_CONTAINS(ini, line);
    }
    write_ini("test_config_rt.ini", ini);
    moe_config_defaults(&back);
    ASSERT_EQ_INT(moe_config_load_ini(&back, "test_config_rt.ini", err, ERRLEN), MOE_OK);
    assert_config_eq(&back, &c, "print -> load_ini");
    ini2 = moe_config_to_ini(&back);
    ASSERT_TRUE(ini2 != NULL && strcmp(ini, ini2) == 0);
    free(ini);
    free(ini2);

    /* the defaults round-trip too (empty strings included) */
    moe_config_defaults(&c);
    ini = moe_config_to_ini(&c);
    ASSERT_STR_CONTAINS(ini, "\ncapacity_factor = 1.25\n");
    ASSERT_STR_CONTAINS(ini, "\noutput_dump =\n");
    write_ini("test_config_rt.ini", ini);
    ASSERT_EQ_INT(moe_config_set(&back, "experts", "7", err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_load_ini(&back, "test_config_rt.ini", err, ERRLEN), MOE_OK);
    moe_config_defaults(&back);
    ASSERT_EQ_INT(moe_config_load_ini(&back, "test_config_rt.ini", err, ERRLEN), MOE_OK);
    assert_config_eq(&back, &c, "defaults print -> load_ini");
    free(ini);
    remove("test_config_rt.ini");
}

static void test_validate(void)
{
    moe_config_t c;
    char         err[ERRLEN];

    moe_config_defaults(&c);
    ASSERT_EQ_INT(moe_config_validate(&c, 1, err, ERRLEN), MOE_OK);

    c.top_k = 9;
    ASSERT_EQ_INT(moe_config_validate(&c, 4, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "top_k: 9 exceeds experts (8); allowed 1..8");

    moe_config_defaults(&c);
    ASSERT_EQ_INT(moe_config_validate(&c, 0, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "nranks");

    ASSERT_EQ_INT(moe_config_set(&c, "workload", "zipf:99", err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_validate(&c, 2, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "workload:");
    ASSERT_STR_CONTAINS(err, "zipf:99");
    ASSERT_EQ_INT(moe_config_set(&c, "workload", "domains:9", err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_validate(&c, 2, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "workload:");
    ASSERT_EQ_INT(moe_config_set(&c, "workload", "domains:8", err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_validate(&c, 2, err, ERRLEN), MOE_OK);

    moe_config_defaults(&c);
    ASSERT_EQ_INT(moe_config_set(&c, "exchange", "nccl", err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_validate(&c, 2, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "exchange: \"nccl\" is not a known backend; allowed flat|hier");
    ASSERT_EQ_INT(moe_config_set(&c, "exchange", "hier", err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_validate(&c, 2, err, ERRLEN), MOE_OK);

    /* MPI int counts */
    moe_config_defaults(&c);
    c.tokens = 16777216;
    c.d_model = 65536;
    ASSERT_EQ_INT(moe_config_validate(&c, 1, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "tokens:");
    ASSERT_STR_CONTAINS(err, "lower tokens or d_model");
    c.d_model = 64; /* tokens * d = 2^30 fits, times top_k 2 = 2^31 does not */
    ASSERT_EQ_INT(moe_config_validate(&c, 1, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "top_k 2");
    ASSERT_STR_CONTAINS(err, "lower tokens or d_model");
    c.d_model = 32;
    ASSERT_EQ_INT(moe_config_validate(&c, 1, err, ERRLEN), MOE_OK);
    ASSERT_EQ_INT(moe_config_validate(&c, 128, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "global tokens per step");
    ASSERT_EQ_INT(moe_config_validate(&c, 127, err, ERRLEN), MOE_OK);

    /* fields set by code are checked like text */
    moe_config_defaults(&c);
    c.experts = 0;
    ASSERT_EQ_INT(moe_config_validate(&c, 1, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "experts: \"0\" is out of range");
    moe_config_defaults(&c);
    c.capacity_factor = NAN;
    ASSERT_EQ_INT(moe_config_validate(&c, 1, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "capacity_factor:");
    moe_config_defaults(&c);
    c.activation = (moe_activation_t)7;
    ASSERT_EQ_INT(moe_config_validate(&c, 1, err, ERRLEN), MOE_ERR_INVALID);
    ASSERT_STR_CONTAINS(err, "activation: \"7\" is not a known value");
}

static void test_names_and_help(void)
{
    char  *help = capture_help();
    size_t i;

    ASSERT_TRUE(strcmp(moe_activation_name(MOE_ACT_GELU), "gelu") == 0);
    ASSERT_TRUE(strcmp(moe_activation_name(MOE_ACT_SWIGLU), "swiglu") == 0);
    ASSERT_TRUE(strcmp(moe_drop_policy_name(MOE_DROP_POSITION), "position") == 0);
    ASSERT_TRUE(strcmp(moe_drop_policy_name(MOE_DROP_PROBS), "probs") == 0);
    ASSERT_TRUE(strcmp(moe_placement_name(MOE_PLACE_CONTIGUOUS), "contiguous") == 0);
    ASSERT_TRUE(strcmp(moe_placement_name(MOE_PLACE_ROUND_ROBIN), "round-robin") == 0);
    ASSERT_TRUE(strcmp(moe_tel_mode_name(MOE_TEL_PARALLEL), "parallel") == 0);
    ASSERT_TRUE(strcmp(moe_tel_mode_name(MOE_TEL_GATHER), "gather") == 0);

    ASSERT_STR_CONTAINS(help, "Usage: moerun [options]\n");
    ASSERT_STR_CONTAINS(help, "mpirun -np N moerun");
    ASSERT_STR_CONTAINS(help, "defaults < INI file < environment < command line");
    ASSERT_STR_CONTAINS(help, "Exit codes: 0 success; 1 runtime error; 2 invalid configuration");
    ASSERT_STR_CONTAINS(help, "--config FILE");
    ASSERT_STR_CONTAINS(help, "MOERUN_CONFIG");
    ASSERT_STR_CONTAINS(help, "--print-config");
    ASSERT_STR_CONTAINS(help, "-h, --help");
    ASSERT_STR_CONTAINS(help, "--version");
    ASSERT_STR_CONTAINS(help, "\nModel:\n");
    ASSERT_STR_CONTAINS(help, "\nRun:\n");
    ASSERT_STR_CONTAINS(help, "\nOutput:\n");
    ASSERT_STR_CONTAINS(help, "\nMonitor");
    ASSERT_STR_CONTAINS(help, "1..65536 [8]  MOERUN_EXPERTS\n");
    ASSERT_STR_CONTAINS(help, "--activation gelu|swiglu");
    for (i = 0; i < NSAMPLES; i++) {
        ASSERT_STR_CONTAINS(help, samples[i].flag);
        ASSERT_STR_CONTAINS(help, samples[i].env);
    }
    free(help);
}

static void test_docs_match(const char *path)
{
    char  *want = capture_markdown(), *have = NULL;
    FILE  *f = fopen(path, "rb");
    long   n = 0;

    ASSERT_TRUE(want != NULL && strstr(want, "| `experts` |") != NULL);
    if (f == NULL) {
        fprintf(stderr, "cannot open %s (pass docs/config.md as argv[1])\n", path);
        ASSERT_TRUE(f != NULL);
    } else {
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        have = calloc((size_t)n + 1, 1);
        if (have && fread(have, 1, (size_t)n, f) != (size_t)n)
            have[0] = '\0';
        fclose(f);
        ASSERT_TRUE(have != NULL && strcmp(have, want) == 0);
    }
    remove("config.md.generated");
    if (have == NULL || strcmp(have, want) != 0) {
        FILE *g = fopen("config.md.generated", "w");
        if (g) {
            fputs(want, g);
            fclose(g);
        }
        fprintf(stderr, "%s is not what moe_config_help_markdown() prints; regenerate it: "
                        "cp config.md.generated %s\n", path, path);
    }
    free(have);
    free(want);
}

int main(int argc, char **argv)
{
#ifdef MOERUN_SOURCE_DIR
    const char *docs = MOERUN_SOURCE_DIR "/docs/config.md";
#else
    const char *docs = "../../docs/config.md";
#endif
    int         before;

    if (argc > 1)
        docs = argv[1];
    RUN_TEST(test_defaults);
    RUN_TEST(test_every_option_every_source);
    RUN_TEST(test_bool_forms);
    RUN_TEST(test_precedence);
    RUN_TEST(test_bad_values);
    RUN_TEST(test_strings_fit_ini_lines);
    RUN_TEST(test_unknown_names);
    RUN_TEST(test_unreadable_file);
    RUN_TEST(test_actions);
    RUN_TEST(test_print_roundtrip);
    RUN_TEST(test_validate);
    RUN_TEST(test_names_and_help);
    before = moe_test_failures;
    test_docs_match(docs);
    printf("%s test_docs_match (%s)\n", moe_test_failures == before ? "ok  " : "FAIL", docs);
    TEST_MAIN_END();
}
