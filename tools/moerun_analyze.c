/*
 * tools/moerun_analyze.c — `moerun-analyze RUN.h5 [more runs] [options]`: the routing-
 * efficiency report of one or more telemetry files (docs/analysis.md).
 *
 * What always holds:
 *  1. Each file is analysed once into a cJSON tree (analyze_run.c); the terminal summary,
 *     Markdown, JSON and HTML are renderings of that one tree (render_*.c).
 *  2. Outputs are written through include/moerun/base/fileio.h (an exclusively created
 *     FILE.tmp.<random>, fsync, rename) only when complete: a failure leaves no half-written
 *     report. Before any file is read, an output that is a device, FIFO, directory or
 *     (without --follow-symlinks) a symbolic link, that names an input, or that names the
 *     same file as another output is refused (exit 2). A failed write to stdout is exit 1.
 *  3. Exit codes: 0 ok, 1 a file is missing, unreadable, not a moerun telemetry file, of an
 *     unsupported schema version or damaged, or an output cannot be written (one clear
 *     message on stderr, nothing written), 2 usage error. Never a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "analyze.h"
#include "moerun/base/escape.h"
#include "moerun/base/fileio.h"

#define MA_MAX_RUNS      256
#define MA_DIR_DEPTH     4           /* folder levels searched for *.h5 */
#define MA_VOCAB_MAX     (1 << 24)   /* lines read from --vocab */
#define MA_VOCAB_LINE    4096        /* bytes of one --vocab line */
#define MA_DEAD_WINDOW   100         /* default --dead-window */
#define MA_MMAP_THRESHOLD (64 << 20) /* see main() */

/*
 * The file being read, for the fault handler below. HDF5 1.10 can fault on some corrupted
 * files (e.g. a damaged global heap behind a variable-length string attribute) before any
 * check of ours can run; the handler turns that into the usual one-line error and exit 1.
 * No report has been written at that point (outputs are written after all files are read).
 */
static const char *volatile ma_current;

static void ma_fault(int sig)
{
    static const char pre[] = "moerun-analyze: ", post[] =
        ": damaged file (the HDF5 library faulted while reading it)\n";
    const char *f = ma_current ? ma_current : "(no file)";

    (void)sig;
    if (write(2, pre, sizeof(pre) - 1) < 0 || write(2, f, strlen(f)) < 0 ||
        write(2, post, sizeof(post) - 1) < 0)
        _exit(1);
    _exit(1);
}

static void ma_usage(FILE *out, const char *argv0)
{
    fprintf(out,
            "usage: %s RUN.h5|FOLDER [RUN2.h5 ...] [--markdown FILE] [--json FILE] [--html FILE]\n"
            "          [--peak-gflops X] [--vocab FILE] [--dead-window N] [--trace FILE.json]\n"
            "          [--write-placement FILE]\n"
            "Routing-efficiency report of moerun telemetry files (docs/analysis.md): expert\n"
            "utilisation, entropy, dead experts and collapse, gate confidence, load-balancing\n"
            "loss, capacity what-if, communication, compute, hotspots, specialisation and\n"
            "recommendations with replayed impact. Several runs: also a comparison table and\n"
            "the columns that differ from the first run with deltas. A FOLDER stands for the\n"
            "*.h5 files under it (sorted by path; a jobs/moerun-sweep folder: its points in\n"
            "grid order).\n"
            "  --markdown FILE     findings report in Markdown\n"
            "  --json FILE         the same as JSON ('-': stdout, then no terminal summary)\n"
            "  --html FILE         self-contained HTML with inline SVG charts\n"
            "  --peak-gflops X     per-rank peak GFLOP/s for FLOPs utilisation (X > 0; default:\n"
            "                      the file's peak_gflops attribute, else reported missing)\n"
            "  --vocab FILE        token texts, one per line (line i = token id i)\n"
            "  --dead-window N     steps of zero load that make an expert dead (1..1e9, default %d)\n"
            "  --follow-symlinks   an output path that is a symbolic link writes the file it names\n"
            "  --ranks P           placement what-if for files without a placement (imported logs):\n"
            "                      P ranks, experts in contiguous blocks (default: min(experts, 8))\n"
            "  --ranks-per-node R  nodes of R consecutive ranks of that assumed placement, for the\n"
            "                      exchange and node-limited what-ifs (default: ceil(P / 2), 2 nodes)\n"
            "  --trace FILE.json   per-rank phase timeline (Chrome trace events: Perfetto,\n"
            "                      chrome://tracing) of the one RUN.h5 given\n"
            "  --write-placement FILE  write the placement the recommendation plans (one run;\n"
            "                      the same planner as moerun-place; docs/placement.md)\n"
            "  --help              this text\n"
            "Without --json -, a short summary with the top findings goes to stdout.\n"
            "Exit status: 0 ok, 1 unreadable or invalid file or unwritable output, 2 usage error\n"
            "(including an output that names an input, another output, a device or a link).\n",
            argv0, MA_DEAD_WINDOW);
}

/* Reads the vocabulary: one token per line, trailing newline removed. Untrusted: a regular
 * file or FIFO, lines of at most MA_VOCAB_LINE bytes, at most MA_VOCAB_MAX lines. */
static int ma_vocab_read(const char *path, an_opts_t *opt)
{
    FILE   *f;
    char   *line = NULL, err[MOE_OUT_PATH_MAX + 64];
    size_t  cap = 0, n = 0, alloc = 0;
    ssize_t len;

    if (moe_in_check(path, err, sizeof(err)) != 0) {
        fprintf(stderr, "moerun-analyze: --vocab %s\n", err);
        return -1;
    }
    if ((f = fopen(path, "r")) == NULL) {
        fprintf(stderr, "moerun-analyze: --vocab %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((len = moe_getline_max(&line, &cap, MA_VOCAB_LINE, f)) != -1 && n < MA_VOCAB_MAX) {
        if (len == -2) {
            fprintf(stderr, "moerun-analyze: --vocab %s:%zu: line longer than %d bytes\n", path,
                    n + 1, MA_VOCAB_LINE);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (n == alloc) {
            char **v = realloc(opt->vocab, (alloc ? alloc * 2 : 1024) * sizeof(char *));
            if (v == NULL)
                break;
            opt->vocab = v;
            alloc = alloc ? alloc * 2 : 1024;
        }
        if ((opt->vocab[n] = strdup(line)) == NULL)
            break;
        n++;
    }
    free(line);
    fclose(f);
    opt->nvocab = (int64_t)n;
    return len == -2 ? -1 : 0;
}

/* Writes one output through an exclusive temporary file renamed into place (fileio.h). */
static int ma_write(const char *path, const cJSON *root, int kind, unsigned flags)
{
    moe_out_t out;
    char      err[MOE_OUT_PATH_MAX + 256];
    FILE     *f;
    int       rc = 0;

    if (strcmp(path, "-") == 0) {
        f = stdout;
    } else {
        if (moe_out_open(&out, path, flags, err, sizeof(err)) != 0) {
            fprintf(stderr, "moerun-analyze: %s\n", err);
            return -1;
        }
        f = out.f;
    }
    errno = 0;
    if (kind == 0) {
        char *txt = cJSON_Print(root);
        if (txt == NULL || fprintf(f, "%s\n", txt) < 0)
            rc = -1;
        free(txt);
    } else if (kind == 1) {
        rc = an_render_markdown(root, f);
        if (rc == 0)
            an_render_diff_markdown(root, f);
    } else {
        rc = an_render_html(root, f);
    }
    if (f == stdout) {
        if (fflush(stdout) != 0 || ferror(stdout) || rc != 0) {
            fprintf(stderr, "moerun-analyze: cannot write to standard output: %s\n",
                    strerror(errno ? errno : EIO));
            return -1;
        }
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "moerun-analyze: cannot write '%s': %s\n", path,
                strerror(errno ? errno : EIO));
        moe_out_abort(&out);
        return -1;
    }
    if (moe_out_commit(&out, err, sizeof(err)) != 0) {
        fprintf(stderr, "moerun-analyze: %s\n", err);
        return -1;
    }
    return 0;
}

/*
 * Before anything is read: every output can be written (fileio.h rules), no two outputs
 * name one file, and no output names an input (a run file or --vocab). 0 or -1 (message).
 */
static int ma_check_outputs(const char *const *outs, const char *const *keys, int nouts,
                            const char *const *ins, int nins, unsigned flags)
{
    char err[MOE_OUT_PATH_MAX + 256];
    int  i, j;

    for (i = 0; i < nouts; i++) {
        if (outs[i] == NULL || strcmp(outs[i], "-") == 0)
            continue;
        if (moe_out_check(outs[i], flags | MOE_OUT_OVERWRITE, err, sizeof(err)) != 0) {
            fprintf(stderr, "moerun-analyze: %s: %s\n", keys[i], err);
            return -1;
        }
        for (j = 0; j < nins; j++) {
            if (ins[j] && moe_path_same(outs[i], ins[j])) {
                fprintf(stderr, "moerun-analyze: %s: '%s' is an input file ('%s'); refusing "
                        "to overwrite it\n", keys[i], outs[i], ins[j]);
                return -1;
            }
        }
        for (j = 0; j < i; j++) {
            if (outs[j] && strcmp(outs[j], "-") != 0 && moe_path_same(outs[i], outs[j])) {
                fprintf(stderr, "moerun-analyze: %s: '%s' is the same file as %s '%s'; give "
                        "each output its own file\n", keys[i], outs[i], keys[j], outs[j]);
                return -1;
            }
        }
    }
    return 0;
}

/*
 * Adds the *.h5 files under folder `dir` (depth-limited, hidden entries skipped) to paths,
 * sorted by path; for a sweep folder, its points' files in grid order. The strings are
 * malloc'd; main frees them (owned[]).
 */
static int ma_path_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A jobs/moerun-sweep folder (it holds grid.json): its points' run.h5 in grid order.
 * Returns 1 if `dir` is such a folder (files added), 0 if not, -1 on error.
 */
static int ma_collect_sweep(const char *dir, const char **paths, char **owned, int *np,
                            int *nowned)
{
    char         path[4096], *text = NULL;
    FILE        *f;
    long         len;
    cJSON       *grid, *pt;
    int          rc = 0;

    if ((size_t)snprintf(path, sizeof(path), "%s/grid.json", dir) >= sizeof(path) ||
        (f = fopen(path, "r")) == NULL)
        return 0;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && len < (64L << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (text = calloc(1, (size_t)len + 1)) != NULL &&
        fread(text, 1, (size_t)len, f) != (size_t)len) {
        free(text);
        text = NULL;
    }
    fclose(f);
    grid = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(grid, "points")) {
        const cJSON *name = cJSON_GetArrayItem(pt, 0);
        struct stat  st;
        if (!cJSON_IsString(name) || strchr(name->valuestring, '/') != NULL ||
            (size_t)snprintf(path, sizeof(path), "%s/%s/run.h5", dir, name->valuestring) >= sizeof(path) ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;   /* a point not run (yet) */
        if (*np == MA_MAX_RUNS) {
            fprintf(stderr, "moerun-analyze: more than %d files given\n", MA_MAX_RUNS);
            rc = -1;
            break;
        }
        if ((owned[*nowned] = strdup(path)) == NULL) {
            rc = -1;
            break;
        }
        paths[(*np)++] = owned[(*nowned)++];
        rc = 1;
    }
    cJSON_Delete(grid);
    return rc;
}

static int ma_collect(const char *dir, int depth, const char **paths, char **owned, int *np,
                      int *nowned)
{
    DIR           *d;
    struct dirent *e;
    int            first = *np, rc;

    if ((rc = ma_collect_sweep(dir, paths, owned, np, nowned)) != 0)
        return rc < 0 ? -1 : 0;
    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "moerun-analyze: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char        path[4096];
        struct stat st;
        size_t      n = strlen(e->d_name);
        if (e->d_name[0] == '.' ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path) ||
            stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 1) {
            rc = ma_collect(path, depth - 1, paths, owned, np, nowned);
        } else if (S_ISREG(st.st_mode) && n > 3 && strcmp(e->d_name + n - 3, ".h5") == 0) {
            if (*np == MA_MAX_RUNS) {
                fprintf(stderr, "moerun-analyze: more than %d files given\n", MA_MAX_RUNS);
                rc = -1;
            } else if ((owned[*nowned] = strdup(path)) == NULL) {
                rc = -1;
            } else {
                paths[(*np)++] = owned[(*nowned)++];
            }
        }
    }
    closedir(d);
    if (rc == 0)
        qsort(paths + first, (size_t)(*np - first), sizeof(*paths), ma_path_cmp);
    return rc;
}

/* Flag value or usage error. */
/* An integer option value in 1..hi: 0, or prints the error naming the option and -1. */
static int ma_int(const char *opt, const char *v, long long hi, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(v, &end, 10);
    if (errno || *end || end == v || *out < 1 || *out > hi) {
        fprintf(stderr, "moerun-analyze: %s '%s': want an integer in 1..%lld\n", opt, v, hi);
        return -1;
    }
    return 0;
}

static const char *ma_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "moerun-analyze: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int main(int argc, char **argv)
{
    const char *paths[MA_MAX_RUNS], *md = NULL, *js = NULL, *html = NULL, *vocab = NULL, *v;
    const char *trace = NULL;
    char       *owned[MA_MAX_RUNS];
    int         nowned = 0;
    int         npaths = 0, i, rc = 0;
    unsigned    oflags = 0;
    an_opts_t   opt;
    moe_log_t   log;
    cJSON      *root, *runs;
    char       *end;

    /* HDF5 allocates a buffer per chunk it reads; above glibc's default mmap threshold
     * (128 KiB) each one is a fresh mmap whose pages the kernel zeroes, which cost a third
     * of the run time on a long file. Keep such buffers on the heap. */
    mallopt(M_MMAP_THRESHOLD, MA_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, 4 * MA_MMAP_THRESHOLD);
    memset(&opt, 0, sizeof(opt));
    opt.dead_window = MA_DEAD_WINDOW;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            ma_usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(a, "--markdown") == 0 || strcmp(a, "--json") == 0 ||
                   strcmp(a, "--html") == 0 || strcmp(a, "--vocab") == 0 ||
                   strcmp(a, "--trace") == 0 || strcmp(a, "--write-placement") == 0) {
            if ((v = ma_value(argc, argv, &i)) == NULL)
                return 2;
            if (strcmp(a, "--write-placement") == 0)
                opt.write_placement = v;
            else
                *(strcmp(a, "--markdown") == 0 ? &md : strcmp(a, "--json") == 0 ? &js
              : strcmp(a, "--html") == 0 ? &html : strcmp(a, "--trace") == 0 ? &trace : &vocab) = v;
        } else if (strcmp(a, "--follow-symlinks") == 0) {
            oflags |= MOE_OUT_FOLLOW;
        } else if (strcmp(a, "--peak-gflops") == 0) {
            if ((v = ma_value(argc, argv, &i)) == NULL)
                return 2;
            errno = 0;
            opt.peak_gflops = strtod(v, &end);
            if (errno || *end || end == v || !(opt.peak_gflops > 0) || !isfinite(opt.peak_gflops)) {
                fprintf(stderr, "moerun-analyze: --peak-gflops '%s': want a number > 0\n", v);
                return 2;
            }
        } else if (strcmp(a, "--dead-window") == 0) {
            long long n;
            if ((v = ma_value(argc, argv, &i)) == NULL || ma_int(a, v, 1000000000LL, &n) != 0)
                return 2;
            opt.dead_window = n;
        } else if (strcmp(a, "--ranks") == 0) {
            long long n;
            if ((v = ma_value(argc, argv, &i)) == NULL || ma_int(a, v, 65536, &n) != 0)
                return 2;
            opt.ranks = n;
        } else if (strcmp(a, "--ranks-per-node") == 0) {
            long long n;
            if ((v = ma_value(argc, argv, &i)) == NULL || ma_int(a, v, 65536, &n) != 0)
                return 2;
            opt.ranks_per_node = n;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "moerun-analyze: unknown option '%s'\n", a);
            ma_usage(stderr, argv[0]);
            return 2;
        } else if (npaths == MA_MAX_RUNS) {
            fprintf(stderr, "moerun-analyze: more than %d files given\n", MA_MAX_RUNS);
            return 2;
        } else {
            paths[npaths++] = a;
        }
    }
    if (npaths == 0) {
        ma_usage(stderr, argv[0]);
        return 2;
    }
    /* folders stand for the *.h5 files under them */
    {
        const char *given[MA_MAX_RUNS];
        int         ngiven = npaths, j;
        memcpy(given, paths, sizeof(*paths) * (size_t)ngiven);
        npaths = 0;
        for (j = 0; j < ngiven && rc == 0; j++) {
            struct stat st;
            if (stat(given[j], &st) == 0 && S_ISDIR(st.st_mode)) {
                int before = npaths;
                if (ma_collect(given[j], MA_DIR_DEPTH, paths, owned, &npaths, &nowned) != 0)
                    rc = 1;
                else if (npaths == before) {
                    fprintf(stderr, "moerun-analyze: %s: no *.h5 file in this folder\n", given[j]);
                    rc = 1;
                }
            } else if (npaths == MA_MAX_RUNS) {
                fprintf(stderr, "moerun-analyze: more than %d files given\n", MA_MAX_RUNS);
                rc = 2;
            } else {
                paths[npaths++] = given[j];
            }
        }
    }
    if (rc == 0 && opt.write_placement && npaths != 1) {
        fprintf(stderr, "moerun-analyze: --write-placement takes exactly one run (%d given)\n",
                npaths);
        rc = 2;
    }
    if (rc == 0 && trace && npaths != 1) {
        fprintf(stderr, "moerun-analyze: --trace takes exactly one RUN.h5 (%d given)\n", npaths);
        rc = 2;
    }
    if (rc == 0 && trace && strcmp(trace, "-") == 0) {
        fprintf(stderr, "moerun-analyze: --trace wants a file name, not '-'\n");
        rc = 2;
    }
    if (rc != 0) {
        while (nowned > 0)
            free(owned[--nowned]);
        return rc;
    }
    {
        /* the outputs, before any file is read (include/moerun/base/fileio.h) */
        const char *outs[5] = {md, js, html, trace, opt.write_placement};
        const char *keys[5] = {"--markdown", "--json", "--html", "--trace", "--write-placement"};
        const char *ins[MA_MAX_RUNS + 1];
        for (i = 0; i < npaths; i++)
            ins[i] = paths[i];
        ins[npaths] = vocab;
        opt.write_flags = oflags;
        if (ma_check_outputs(outs, keys, 5, ins, npaths + 1, oflags) != 0) {
            while (nowned > 0)
                free(owned[--nowned]);
            return 2;
        }
    }
    if (vocab && ma_vocab_read(vocab, &opt) != 0) {
        while (nowned > 0)
            free(owned[--nowned]);
        return 2;
    }
    moe_log_init(&log, 0, MOE_LOG_ERROR);
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = ma_fault;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        sigaction(SIGFPE, &sa, NULL);
    }
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "moerun-analyze");
    cJSON_AddNumberToObject(root, "analysis_schema", AN_JSON_SCHEMA);
    runs = cJSON_AddArrayToObject(root, "runs");
    for (i = 0; i < npaths && rc == 0; i++) {
        cJSON *run = NULL;
        ma_current = paths[i];
        if (an_run_analyse(paths[i], &opt, &log, &run) != MOE_OK) {
            /* the message may quote the file's own strings: no terminal controls */
            fputs("moerun-analyze: ", stderr);
            moe_esc_term_line(stderr, log.last_error[0] ? log.last_error : "cannot read the file");
            fputc('\n', stderr);
            rc = 1;
        } else {
            cJSON_AddItemToArray(runs, run);
        }
    }
    ma_current = NULL;
    if (rc == 0) {
        an_compare(root);
        an_compare_diff(root);
        if ((md && ma_write(md, root, 1, oflags) != 0) ||
            (js && ma_write(js, root, 0, oflags) != 0) ||
            (html && ma_write(html, root, 2, oflags) != 0)) {
            rc = 1;
        } else if (trace && an_trace_write(paths[0], trace, &log) != MOE_OK) {
            fputs("moerun-analyze: --trace: ", stderr);
            moe_esc_term_line(stderr, log.last_error);
            fputc('\n', stderr);
            rc = 1;
        } else if (!(js && strcmp(js, "-") == 0)) {
            errno = 0;
            an_render_terminal(root, stdout);
            {
                /* the comparison quotes file names: terminal controls escaped too */
                char  *buf = NULL;
                size_t len = 0;
                FILE  *m = open_memstream(&buf, &len);
                if (m != NULL) {
                    an_render_diff_terminal(root, m);
                    if (fclose(m) == 0)
                        moe_esc_term(stdout, buf);
                    free(buf);
                }
            }
            if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "moerun-analyze: cannot write to standard output: %s\n",
                        strerror(errno ? errno : EIO));
                rc = 1;
            }
        }
    }
    cJSON_Delete(root);
    for (i = 0; i < opt.nvocab; i++)
        free(opt.vocab[i]);
    free(opt.vocab);
    while (nowned > 0)
        free(owned[--nowned]);
    return rc;
}
