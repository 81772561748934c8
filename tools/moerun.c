/*
 * tools/moerun.c — the moerun program: parse the configuration, run the engine, print
 * the summary. All work is in the engine (include/moerun/moerun.h).
 *
 * Exit codes: 0 run complete; 1 runtime error (message on stderr); 2 invalid configuration
 * or usage (one message from rank 0, before any compute, no file written);
 * 3 a step did not finish within --step-timeout (runtime/watchdog.h: the rank names itself
 * and exits; mpirun ends the others);
 * 128 + signal number when SIGINT, SIGTERM, SIGUSR1 or SIGUSR2 stopped the run early (telemetry
 * flushed and closed, summary printed, marked "interrupted").
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <mpi.h>

#include "import.h"           /* moe_import_load_routes: the log of --replay */
#include "moerun/moerun.h"
#include "moerun/replay.h"

extern char **environ;

static volatile sig_atomic_t moerun_stop_signal;

static void moerun_on_signal(int sig)
{
    moerun_stop_signal = sig;
}

static void moerun_install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = moerun_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL); /* mpirun forwards SIGUSR1 and SIGUSR2 alike */
}

/* Everything printed must have reached stdout (a full disk or /dev/full is an error). */
static int moerun_stdout_check(void)
{
    int bad = fflush(stdout) != 0 || ferror(stdout);

    if (bad)
        fprintf(stderr, "moerun: error: cannot write to standard output: %s\n",
                strerror(errno ? errno : EIO));
    return bad ? -1 : 0;
}

/* MemAvailable of this node in bytes (/proc/meminfo), or -1 if unknown. */
static double moerun_mem_available(void)
{
    FILE  *f = fopen("/proc/meminfo", "r");
    char   line[256];
    double kb = -1;

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/*
 * Before any allocation: what a rank needs (moe_config_memory) against --max-memory, or else
 * the node's available memory shared by the ranks on it. The same answer on every rank
 * (MPI_Allreduce of the smallest budget); one message from rank 0. Returns 0 or 2.
 */
static int moerun_check_memory(const moe_config_t *cfg, int rank, int nranks)
{
    moe_mem_estimate_t est;
    MPI_Comm           node;
    int                nlocal = 1;
    double             avail = -1, budget, min_budget;
    char               text[512];

    moe_config_memory(cfg, nranks, &est);
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &nlocal);
        MPI_Comm_free(&node);
    }
    if (cfg->max_memory > 0) {
        budget = (double)cfg->max_memory * 1024 * 1024;
    } else {
        avail = moerun_mem_available();
        budget = avail < 0 ? 1e300 : avail / nlocal;
    }
    MPI_Allreduce(&budget, &min_budget, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    if (est.total <= min_budget)
        return 0;
    if (rank == 0) {
        moe_config_memory_text(&est, text, sizeof(text));
        if (cfg->max_memory > 0)
            fprintf(stderr, "moerun: error: max_memory: the run needs about %s; over the budget "
                    "of %ld MiB per rank (--max-memory); lower the options named\n", text,
                    cfg->max_memory);
        else
            fprintf(stderr, "moerun: error: memory: the run needs about %s; only %.1f MiB per "
                    "rank are available (MemAvailable shared by the ranks of a node); lower the "
                    "options named, use more nodes, or set --max-memory\n", text,
                    min_budget / (1024.0 * 1024.0));
    }
    return 2;
}

static int moerun_configure(int argc, char **argv, int rank, int nranks, moe_config_t *cfg)
{
    moe_config_action_t action = MOE_CONFIG_RUN;
    char                err[512] = "";
    moe_status_t        st;

    st = moe_config_load(cfg, argc, argv, environ, &action, err, sizeof(err));
    if (st == MOE_OK && action == MOE_CONFIG_RUN)
        st = moe_config_validate(cfg, nranks, err, sizeof(err));
    if (st == MOE_OK && action == MOE_CONFIG_RUN) {
        /* the output paths, on rank 0 only (one file system view, one answer for all) */
        int code = 0;
        if (rank == 0)
            code = (int)moe_config_check_paths(cfg, moe_config_file(argc, argv, environ), err,
                                               sizeof(err));
        MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
        st = (moe_status_t)code;
    }
    if (st != MOE_OK) {
        if (rank == 0)
            fprintf(stderr, "moerun: error: %s\n", err);
        return 2;
    }
    if (rank == 0) {
        if (action == MOE_CONFIG_HELP)
            moe_config_help(stdout, argv[0]);
        else if (action == MOE_CONFIG_PRINT) {
            moe_mem_estimate_t est;
            char               text[512];
            moe_config_print(cfg, stdout);
            moe_config_memory(cfg, nranks, &est);
            moe_config_memory_text(&est, text, sizeof(text));
            printf("\n# estimated memory with %d rank%s: %s\n", nranks, nranks == 1 ? "" : "s",
                   text);
        }
        else if (action == MOE_CONFIG_VERSION)
            printf("moerun %s\n", MOERUN_VERSION);
        if (action != MOE_CONFIG_RUN && moerun_stdout_check() != 0)
            return 1;
    }
    if (action == MOE_CONFIG_RUN)
        return moerun_check_memory(cfg, rank, nranks) ? 2 : -1;
    return 0;
}

/*
 * --replay FILE: rank 0 reads the log (tools/import) and checks it against the configuration;
 * every rank gets the routes and the step count. Returns -1 to go on, or 2 after one message
 * from rank 0 (unreadable log, more experts, other layers or top-k than configured), before
 * any compute and before the telemetry file exists.
 */
static int moerun_replay_load(moe_config_t *cfg, int rank, int nranks, moe_replay_routes_t *rt)
{
    char  err[800] = "";
    int   bad = 0;
    long  steps = 0;

    if (cfg->replay_tokens > 0)
        cfg->tokens = cfg->replay_tokens;
    if (rank == 0) {
        /* --sequence-field as moerun-import's: "auto" detects, "none" or a NAME is passed on;
         * a telemetry file was imported already (its tokens are told apart) */
        const char *seq = strcmp(cfg->sequence_field, "auto") == 0 ? NULL : cfg->sequence_field;
        const char *dot = strrchr(cfg->replay, '.');
        if (seq != NULL && dot != NULL && (strcmp(dot, ".h5") == 0 || strcmp(dot, ".hdf5") == 0)) {
            snprintf(err, sizeof(err), "--sequence-field %.63s: %.400s is a telemetry file whose "
                     "tokens are already told apart (it applies to JSON lines and CSV logs): "
                     "leave --sequence-field auto, or give it to moerun-import", seq, cfg->replay);
            bad = 1;
        } else if (moe_import_load_routes(cfg->replay, seq, rt, err, sizeof(err)) != 0)
            bad = 1;
        else if (moe_replay_check(rt, cfg, nranks, &steps, err, sizeof(err)) != MOE_OK)
            bad = 1;
        if (bad)
            fprintf(stderr, "moerun: error: %s\n", err);
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (bad)
        return 2;
    MPI_Bcast(&steps, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    if (moe_replay_routes_bcast(MPI_COMM_WORLD, 0, rt) != MOE_OK) {
        if (rank == 0)
            fprintf(stderr, "moerun: error: replay: cannot share the routes (out of memory)\n");
        return 1;
    }
    cfg->steps = steps;
    if (rank == 0 && !cfg->quiet)
        printf("replay     %s: %lld tokens x %d layers, top-%d, %s; %ld steps of %d ranks x %d "
               "tokens%s%s\n", cfg->replay, (long long)rt->ntokens, rt->layers, rt->top_k,
               rt->has_weights ? "weights from the log" : "no probabilities in the log: weights 1/k",
               steps, nranks, cfg->tokens, cfg->replay_tokens > 0 ? " (tiled)" : " (the log once)",
               rt->incomplete > 0 ? "; tokens without every layer left out" : "");
    return -1;
}

int main(int argc, char **argv)
{
    moe_config_t  cfg;
    moe_replay_routes_t rt;
    moe_engine_t *eng = NULL;
    moe_summary_t sum;
    moe_status_t  st;
    int           rank, nranks, provided, rc;
    const char   *status = "complete";

    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    rc = moerun_configure(argc, argv, rank, nranks, &cfg);
    if (rc >= 0) {
        MPI_Finalize();
        return rc;
    }
    openblas_set_num_threads(1);
    moerun_install_signals();
    memset(&rt, 0, sizeof(rt));
    if (cfg.replay[0] != '\0' && (rc = moerun_replay_load(&cfg, rank, nranks, &rt)) >= 0) {
        moe_replay_routes_free(&rt);
        MPI_Finalize();
        return rc;
    }

    st = moe_engine_create(&cfg, MPI_COMM_WORLD, &eng);
    if (st == MOE_OK && cfg.replay[0] != '\0')
        st = moe_engine_set_replay(eng, &rt);
    if (st != MOE_OK) {
        if (rank == 0)
            fprintf(stderr, "moerun: error: %s\n", moe_engine_last_error(eng));
        moe_engine_destroy(eng);
        moe_replay_routes_free(&rt);
        MPI_Finalize();
        return st == MOE_ERR_INVALID ? 2 : 1;
    }
    st = moe_engine_run(eng, &moerun_stop_signal);
    if (st == MOE_ERR_INTERRUPTED) {
        status = "interrupted";
    } else if (st != MOE_OK) {
        fprintf(stderr, "moerun[%d]: error: %s\n", rank, moe_engine_last_error(eng));
        if (st != MOE_ERR_INVARIANT && st != MOE_ERR_IO && st != MOE_ERR_HDF5)
            MPI_Abort(MPI_COMM_WORLD, 1); /* a rank-local failure: the others cannot go on */
        status = "error";
    }
    rc = moe_engine_finish(eng, status, &sum);
    if (rc != MOE_OK && st == MOE_OK) {
        st = (moe_status_t)rc;
        if (rank == 0)
            fprintf(stderr, "moerun: error: %s\n", moe_engine_last_error(eng));
    }
    if (rank == 0) {
        if (!cfg.quiet || st == MOE_OK || st == MOE_ERR_INTERRUPTED)
            moe_summary_print(eng, &sum, stdout);
        if (st == MOE_ERR_INTERRUPTED)
            printf("run cut short by signal %d after %ld of %ld steps; telemetry is complete up "
                   "to that step\n", (int)moerun_stop_signal, sum.steps, cfg.steps);
        if (cfg.summary_json[0] && moe_summary_write_json(eng, &sum, cfg.summary_json) != MOE_OK) {
            fprintf(stderr, "moerun: error: summary_json: %s\n", moe_engine_last_error(eng));
            if (st == MOE_OK)
                st = MOE_ERR_IO;
        }
        if (moerun_stdout_check() != 0 && st == MOE_OK)
            st = MOE_ERR_IO;
    }
    moe_engine_destroy(eng);
    moe_replay_routes_free(&rt);
    MPI_Finalize();
    if (st == MOE_ERR_INTERRUPTED)
        return 128 + (int)moerun_stop_signal;
    return st == MOE_OK ? 0 : 1;
}
