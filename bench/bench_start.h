/*
 * bench/bench_start.h — the common start of the benchmark programs (moerun-bench,
 * moerun-soak, a2a-bench): MPI, one OpenBLAS thread per rank, --help, and, for the programs
 * that run the engine, the configuration from the program's defaults overridden by the
 * user's moerun options (the one config table, runtime/config.c).
 *
 * Always: only rank 0 prints; usage goes to stdout with exit 0 (so help2man can read it),
 * errors to stderr with exit 2, after MPI_Finalize; nothing is measured before the
 * configuration is known to be valid on every rank.
 */
#ifndef MOERUN_BENCH_START_H
#define MOERUN_BENCH_START_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <mpi.h>

#include "moerun/config.h"

extern char **environ;

/* MPI_Init, this rank and the rank count of MPI_COMM_WORLD, one BLAS thread per rank. */
static inline void bench_init(int *argc, char ***argv, int *rank_p, int *nranks_p)
{
    MPI_Init(argc, argv);
    MPI_Comm_size(MPI_COMM_WORLD, nranks_p);
    MPI_Comm_rank(MPI_COMM_WORLD, rank_p);
    openblas_set_num_threads(1);
}

/* 1 if argv[1..argc-1] holds --help or -h. */
static inline int bench_help_requested(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/*
 * Effective configuration: argv0, then the program's defaults[0..nd-1], then the user's
 * options user[0..nuser-1] (later flags win), loaded and validated for nranks. Returns -1
 * to go on and run; 0 after printing `usage` for --help (the configuration for
 * --print-config, the version for --version); 2 after printing "<prog>: error:
 * <message naming the option>" (rank 0 prints). On 0 and 2 the caller calls MPI_Finalize
 * and exits with that code.
 */
static inline int bench_config(const char *prog, const char *usage, char *argv0,
                               const char *const *defaults, int nd, char **user, int nuser,
                               int rank, int nranks, moe_config_t *cfg)
{
    char              **args = calloc((size_t)(1 + nd + nuser + 1), sizeof(char *));
    char                err[512] = "out of memory";
    moe_config_action_t action = MOE_CONFIG_RUN;
    int                 i, n = 0, rc = -1;

    if (args) {
        args[n++] = argv0;
        for (i = 0; i < nd; i++)
            args[n++] = (char *)defaults[i];
        for (i = 0; i < nuser; i++)
            args[n++] = user[i];
    }
    if (!args || moe_config_load(cfg, n, args, environ, &action, err, sizeof(err)) != MOE_OK ||
        (action == MOE_CONFIG_RUN && moe_config_validate(cfg, nranks, err, sizeof(err)) != MOE_OK)) {
        if (rank == 0)
            fprintf(stderr, "%s: error: %s\n", prog, err);
        rc = 2;
    } else if (action != MOE_CONFIG_RUN) {
        if (rank == 0 && action == MOE_CONFIG_PRINT)
            moe_config_print(cfg, stdout);
        else if (rank == 0 && action == MOE_CONFIG_VERSION)
            printf("%s (moerun) %s\n", prog, MOERUN_VERSION);
        else if (rank == 0)
            fputs(usage, stdout);
        rc = 0;
    }
    free(args);
    return rc;
}

#endif /* MOERUN_BENCH_START_H */
