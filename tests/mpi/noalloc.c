/*
 * tests/mpi/noalloc.c — the expert kernel and the engine's steps allocate nothing: every
 * buffer is made at create.
 *
 * This program is linked with -Wl,--wrap for malloc, calloc, realloc, posix_memalign and
 * aligned_alloc, so every allocation made by moerun's own (statically linked) code is
 * counted here; MPI's, HDF5's and OpenBLAS's own heaps (shared libraries) are not. Checks:
 *   1. moe_ffn_forward (gelu and swiglu, rows over two row blocks and hidden columns over
 *      two column blocks): 0 allocations over 3 calls, and the output equals that of the
 *      same rows split at MOE_FFN_BLOCK (bitwise: what the overlapped exchange relies on);
 *   2. the engine (flat, --overlap 0 and 1, no telemetry, drops at capacity): 0 allocations
 *      on every rank in steps 1..8 (the exchange's receive buffers are sized at create for
 *      local experts x capacity rows, a2a params max_rows_in), and fewer than
 *      NOALLOC_MAX_FAULTS minor page faults on every rank in those steps (the buffers made
 *      at create are resident: the first step was the slow outlier of every run).
 * With MOE_ASSERT compiled in (Debug and sanitizer builds) the invariant checks allocate per
 * step: only part 1 runs. Exit 1 with the counts on a failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>
#include <mpi.h>

#include "moerun/base/assert.h"
#include "moerun/moerun.h"
#include "ffn.h"

static long noalloc_count; /* allocations made through the wrapped functions */

/* Minor page faults allowed per rank in an engine's steps 1..8 (noalloc_engine). */
#define NOALLOC_MAX_FAULTS 256

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
int   __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t s);
void *__wrap_realloc(void *p, size_t n);
int   __wrap_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);

void *__wrap_malloc(size_t n)
{
    noalloc_count++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t s)
{
    noalloc_count++;
    return __real_calloc(n, s);
}
void *__wrap_realloc(void *p, size_t n)
{
    noalloc_count++;
    return __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    noalloc_count++;
    return __real_posix_memalign(p, a, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n)
{
    noalloc_count++;
    return __real_aligned_alloc(a, n);
}

static int noalloc_kernel(void)
{
    enum { D = 16, F = MOE_FFN_COLS + 44, N = MOE_FFN_BLOCK + 77 };
    int    a, bad = 0;
    float *x = malloc((size_t)N * D * 4), *y = malloc((size_t)N * D * 4);
    float *y2 = malloc((size_t)N * D * 4), *scr = malloc(2 * (size_t)MOE_FFN_BLOCK * F * 4);
    long   i;

    for (i = 0; i < (long)N * D; i++)
        x[i] = (float)((i * 37) % 101) * 0.03f - 1.5f;
    for (a = 0; a < 2; a++) {
        moe_ffn_t ffn;
        long      before;
        before = noalloc_count;
        moe_ffn_init(&ffn, D, F, a ? MOE_FFN_SWIGLU : MOE_FFN_GELU, 7, 0, 1);
        if (noalloc_count - before != 2) { /* w1 and w2: the wrap works */
            fprintf(stderr, "noalloc: moe_ffn_init: %ld allocations counted, want 2\n",
                    noalloc_count - before);
            bad = 1;
        }
        before = noalloc_count;
        for (i = 0; i < 3; i++)
            moe_ffn_forward(&ffn, x, N, y, scr);
        if (noalloc_count != before) {
            fprintf(stderr, "noalloc: moe_ffn_forward (%s): %ld allocations in 3 calls, want 0\n",
                    a ? "swiglu" : "gelu", noalloc_count - before);
            bad = 1;
        }
        moe_ffn_forward(&ffn, x, MOE_FFN_BLOCK, y2, scr);
        moe_ffn_forward(&ffn, x + (size_t)MOE_FFN_BLOCK * D, N - MOE_FFN_BLOCK,
                        y2 + (size_t)MOE_FFN_BLOCK * D, scr);
        if (memcmp(y, y2, (size_t)N * D * 4) != 0) {
            fprintf(stderr, "noalloc: moe_ffn_forward (%s): rows split at MOE_FFN_BLOCK give "
                            "different bits than one call\n", a ? "swiglu" : "gelu");
            bad = 1;
        }
        moe_ffn_cleanup(&ffn);
    }
    free(x), free(y), free(y2), free(scr);
    return bad;
}

static int noalloc_engine(int rank, const char *overlap)
{
    const char *kv[][2] = {{"tokens", "512"}, {"d_model", "256"}, {"d_ffn", "300"},
                           {"experts", "4"}, {"top_k", "2"}, {"steps", "8"},
                           {"telemetry", ""}, {"overlap", overlap}, {"quiet", "true"}};
    moe_config_t  cfg;
    moe_engine_t *eng = NULL;
    char          err[512] = "";
    long          before = 0, delta, worst, at_create = noalloc_count, faults;
    struct rusage ru0, ru1;
    int           i, ok = 1;

    moe_config_defaults(&cfg);
    for (i = 0; i < (int)(sizeof(kv) / sizeof(kv[0])) && ok; i++)
        ok = moe_config_set(&cfg, kv[i][0], kv[i][1], err, sizeof(err)) == MOE_OK;
    if (!ok || moe_engine_create(&cfg, MPI_COMM_WORLD, &eng) != MOE_OK) {
        fprintf(stderr, "noalloc: setup: %s\n", ok ? moe_engine_last_error(eng) : err);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (noalloc_count - at_create < 10) { /* create allocates its buffers: the wrap works */
        fprintf(stderr, "noalloc[%d]: only %ld allocations counted in create: the --wrap "
                        "counting is not in effect\n", rank, noalloc_count - at_create);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    getrusage(RUSAGE_SELF, &ru0);
    for (i = 1; i <= 8; i++) {
        if (i == 1)
            before = noalloc_count;
        if (moe_engine_step(eng) != MOE_OK) {
            fprintf(stderr, "noalloc[%d]: step %d: %s\n", rank, i, moe_engine_last_error(eng));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    faults = ru1.ru_minflt - ru0.ru_minflt;
    if (rank == 0)
        printf("noalloc: engine (overlap %s): %ld minor page faults on rank 0 in steps 1..8\n",
               overlap, faults);
    /* MPI's and OpenBLAS's first uses fault some pages too (1-100 seen); one of the
     * exchange's row buffers alone is 512 x 2 x 256 floats = 256 pages, and with the row
     * buffers left unmapped until first use (malloc + memset compiled into calloc) steps
     * 1..8 faulted ~1,050 pages */
    if (faults >= NOALLOC_MAX_FAULTS)
        fprintf(stderr, "noalloc[%d]: engine (overlap %s): %ld minor page faults in steps "
                        "1..8, want < %d: buffers made at create are not resident\n", rank,
                overlap, faults, NOALLOC_MAX_FAULTS);
    delta = noalloc_count - before;
    if (delta != 0)
        fprintf(stderr, "noalloc[%d]: engine (overlap %s): %ld allocations in steps 1..8, "
                        "want 0\n", rank, overlap, delta);
    delta = delta != 0 || faults >= NOALLOC_MAX_FAULTS;
    MPI_Allreduce(&delta, &worst, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    moe_engine_destroy(eng);
    return worst != 0;
}

int main(int argc, char **argv)
{
    int rank, bad = 0;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    openblas_set_num_threads(1);
    bad |= noalloc_kernel();
    if (MOE_ASSERTS_ENABLED) { /* the kernel checks above still ran */
        if (rank == 0)
            printf("noalloc: engine part skipped: MOE_ASSERT checks allocate per step in this "
                   "build\n");
    } else {
        bad |= noalloc_engine(rank, "0");
        bad |= noalloc_engine(rank, "1");
    }
    if (rank == 0 && !bad)
        printf("noalloc: ok: no allocation in the kernel%s\n",
               MOE_ASSERTS_ENABLED ? "" : " nor in the engine's steps");
    MPI_Finalize();
    return bad;
}
