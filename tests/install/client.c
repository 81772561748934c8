/*
 * tests/install/client.c — a client of the installed libmoerun, built by tests/install
 * against an installed prefix with find_package(moerun) and with pkg-config.
 *
 * It uses only the public API: the version (header and library), the configuration table
 * (moe_config_set per option, then moe_config_validate), one engine run on MPI_COMM_WORLD,
 * the summary and its phase names. Rank 0 prints key=value lines that install_test.sh
 * checks against the expected version and against the installed moerun program's summary
 * JSON for the same configuration.
 *
 * Usage: mpirun -np N client KEY=VALUE...   (INI keys, e.g. experts=4 top_k=2)
 * Exit: 0 ok; 1 engine error; 2 bad option (message names it).
 */
#include <stdio.h>
#include <string.h>

#include <mpi.h>
#include <moerun/moerun.h>

int main(int argc, char **argv)
{
    moe_config_t  cfg;
    moe_engine_t *eng = NULL;
    moe_summary_t sum;
    char          err[512] = "";
    int           rank, nranks, i, major = -1, minor = -1, patch = -1, rc = 0;
    const char   *lib;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    lib = moe_version(&major, &minor, &patch);
    moe_config_defaults(&cfg);
    for (i = 1; i < argc && rc == 0; i++) {
        char  key[64];
        char *eq = strchr(argv[i], '=');
        if (!eq || (size_t)(eq - argv[i]) >= sizeof(key)) {
            snprintf(err, sizeof(err), "argument '%s': want KEY=VALUE", argv[i]);
            rc = 2;
            break;
        }
        memcpy(key, argv[i], (size_t)(eq - argv[i]));
        key[eq - argv[i]] = '\0';
        if (moe_config_set(&cfg, key, eq + 1, err, sizeof(err)) != MOE_OK)
            rc = 2;
    }
    if (rc == 0 && moe_config_validate(&cfg, nranks, err, sizeof(err)) != MOE_OK)
        rc = 2;
    if (rc != 0) {
        if (rank == 0)
            fprintf(stderr, "client: %s\n", err);
        MPI_Finalize();
        return rc;
    }
    if (moe_engine_create(&cfg, MPI_COMM_WORLD, &eng) != MOE_OK ||
        moe_engine_run(eng, NULL) != MOE_OK ||
        moe_engine_finish(eng, "complete", &sum) != MOE_OK) {
        fprintf(stderr, "client: rank %d: %s\n", rank, eng ? moe_engine_last_error(eng) : "no engine");
        rc = 1;
    }
    if (rc == 0 && rank == 0) {
        printf("header_version=%s\n", MOERUN_VERSION_STRING);
        printf("header_numbers=%d.%d.%d\n", MOERUN_VERSION_MAJOR, MOERUN_VERSION_MINOR,
               MOERUN_VERSION_PATCH);
        printf("library_version=%s\n", lib);
        printf("library_numbers=%d.%d.%d\n", major, minor, patch);
        printf("status=%s\n", sum.status);
        printf("steps=%ld\nnranks=%d\n", sum.steps, sum.nranks);
        printf("routed=%lld\nprocessed=%lld\ndropped=%lld\n", (long long)sum.routed,
               (long long)sum.processed, (long long)sum.dropped);
        printf("out_sum=%.9g\n", sum.out_sum);
        printf("phases=");
        for (i = 0; moe_summary_phase_name(i); i++)
            printf("%s%s", i ? "," : "", moe_summary_phase_name(i));
        printf("\nn_events=%d\n", sum.n_events);
        if (sum.n_events > 0)
            printf("first_event=%s\n", moe_tel_event_kind_name(sum.events[0].kind));
    }
    moe_engine_destroy(eng);
    MPI_Finalize();
    return rc;
}
