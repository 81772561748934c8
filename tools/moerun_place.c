/*
 * tools/moerun_place.c — `moerun-place RUN.h5 [more runs] [options]`: a placement file from
 * measured telemetry, with predicted before/after figures per layer (docs/placement.md).
 *
 * What always holds:
 *  1. The planning and the predictions are tools/place (the same code moerun-analyze's
 *     placement recommendation uses); this file parses arguments and prints.
 *  2. Outputs are written to FILE.tmp.<pid> and renamed into place when complete.
 *  3. Exit codes: 0 ok, 1 unreadable or invalid input file or unwritable output, 2 usage
 *     error or a target that cannot hold the experts. One message on stderr.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "moerun/base/fileio.h"
#include "place.h"

#define MP_MAX_RUNS 64

static void mp_usage(FILE *out, const char *argv0)
{
    fprintf(out,
            "usage: %s RUN.h5 [RUN2.h5 ...] [-o PLACEMENT] [--json FILE] [--policy NAME]\n"
            "          [--nodes N] [--ranks-per-node R] [--slots S | --replicas B]\n"
            "          [--groups G] [--balance X] [--follow-symlinks]\n"
            "Plans a placement (docs/placement.md) from measured per-layer expert loads,\n"
            "co-selection and routes, and predicts per layer, before (the measured run's map)\n"
            "and after: max/mean rank load, inter-node copies per token for flat and hier,\n"
            "rows per destination node, inter-node bytes, expert weight bytes moved.\n"
            "  -o, --output FILE   the placement file (run it: moerun --placement file:FILE)\n"
            "  --json FILE         predictions as JSON ('-': stdout, then no table)\n"
            "  --policy NAME       moerun (default), eplb, contiguous or round-robin\n"
            "  --nodes N           target nodes (default: the run's)\n"
            "  --ranks-per-node R  target ranks per node (default: the run's ranks / nodes)\n"
            "  --slots S           expert slots per rank (1..experts); the replica budget is\n"
            "                      ranks x S - experts\n"
            "  --replicas B        or: extra copies per layer (default: one per rank); slots =\n"
            "                      ceil((experts + B) / ranks)\n"
            "  --groups G          eplb: expert groups (default: one per node)\n"
            "  --balance X         moerun: weight of rank balance against co-location (>= 0,\n"
            "                      default 1)\n"
            "  --follow-symlinks   an output path that is a symbolic link writes the file it names\n"
            "                      (without it such a path is refused)\n"
            "  --help              this text\n"
            "Outputs are written through a temporary file renamed into place; an output that is\n"
            "a device, FIFO or directory, names an input or names the other output is refused.\n"
            "Exit status: 0 ok, 1 unreadable input or unwritable output, 2 usage error.\n",
            argv0);
}

static int mp_int(const char *s, long lo, long hi, int *v)
{
    char *end;
    long  x;

    errno = 0;
    x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi)
        return -1;
    *v = (int)x;
    return 0;
}

static cJSON *mp_pred_json(const moe_place_pred_t *p, int N)
{
    cJSON *o = cJSON_CreateObject(), *nr = cJSON_CreateArray();
    int    m;

    cJSON_AddNumberToObject(o, "max_rank_load", p->max_load);
    cJSON_AddNumberToObject(o, "mean_rank_load", p->mean_load);
    cJSON_AddNumberToObject(o, "max_mean", p->mean_load > 0 ? p->max_load / p->mean_load : 0);
    cJSON_AddNumberToObject(o, "flat_copies_per_token", p->flat_copies);
    cJSON_AddNumberToObject(o, "hier_copies_per_token", p->hier_copies);
    cJSON_AddNumberToObject(o, "flat_inter_bytes_per_step", p->flat_bytes);
    cJSON_AddNumberToObject(o, "hier_inter_bytes_per_step", p->hier_bytes);
    for (m = 0; m < N; m++)
        cJSON_AddItemToArray(nr, cJSON_CreateNumber(p->node_rows[m]));
    cJSON_AddItemToObject(o, "rows_per_node", nr);
    return o;
}

/* Sums over layers: mean of max/mean, sums of copies and bytes. */
static cJSON *mp_total_json(const moe_place_pred_t *p, int L)
{
    cJSON            *o = cJSON_CreateObject();
    moe_place_total_t t;

    moe_place_total(p, L, &t);
    cJSON_AddNumberToObject(o, "max_mean", t.max_mean);
    cJSON_AddNumberToObject(o, "flat_copies_per_token", t.flat_copies);
    cJSON_AddNumberToObject(o, "hier_copies_per_token", t.hier_copies);
    cJSON_AddNumberToObject(o, "flat_inter_bytes_per_step", t.flat_bytes);
    cJSON_AddNumberToObject(o, "hier_inter_bytes_per_step", t.hier_bytes);
    return o;
}

static void mp_table(FILE *out, const moe_place_input_t *in, const moe_place_pred_t *before,
                     const moe_place_pred_t *after, int N, double moved, const char *policy)
{
    int l, m;

    const char *model = moe_place_prediction_model(in);

    fprintf(out, "# moerun-place: policy %s, %d layers, %d experts, predictions per step (%s)\n",
            policy, in->layers, in->experts,
            strcmp(model, "routes") == 0           ? "replayed from every recorded route"
            : strcmp(model, "sampled routes") == 0 ? "replayed from sampled routes, scaled"
                                                   : "uniform-origin model");
    fprintf(out, "# %5s %6s %9s %9s %9s %9s %12s %12s  %s\n", "layer", "map", "max_load",
            "max/mean", "flat_cpt", "hier_cpt", "flat_B", "hier_B", "rows per node");
    for (l = 0; l < in->layers; l++)
        for (int w = 0; w < 2; w++) {
            const moe_place_pred_t *p = w ? &after[l] : before ? &before[l] : NULL;
            if (p == NULL)
                continue;
            fprintf(out, "  %5d %6s %9.1f %9.3f %9.3f %9.3f %12.0f %12.0f ", l,
                    w ? "after" : "before", p->max_load,
                    p->mean_load > 0 ? p->max_load / p->mean_load : 0, p->flat_copies,
                    p->hier_copies, p->flat_bytes, p->hier_bytes);
            for (m = 0; m < N; m++)
                fprintf(out, " %.0f", p->node_rows[m]);
            fputc('\n', out);
        }
    if (moved >= 0)
        fprintf(out, "# expert weight bytes moved from the measured map: %.0f\n", moved);
}

/* Writes text through an exclusive temporary file renamed into place (fileio.h); 0 on
 * success, else -1 with the reason in err. */
static int mp_write_text(const char *path, const char *text, unsigned flags, char *err,
                         size_t n)
{
    moe_out_t o;

    if (moe_out_open(&o, path, flags | MOE_OUT_OVERWRITE, err, n) != 0)
        return -1;
    if (fputs(text, o.f) < 0) {
        moe_out_abort(&o);
        snprintf(err, n, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
        return -1;
    }
    return moe_out_commit(&o, err, n);
}

int main(int argc, char **argv)
{
    const char        *runs[MP_MAX_RUNS], *out = NULL, *json = NULL, *pol = "moerun";
    int                nruns = 0, i, nodes = 0, rpn = 0, slots = 0, replicas = -1, rc = 0;
    unsigned           oflags = 0;
    moe_place_target_t tg;
    moe_plan_policy_t  policy;
    moe_place_input_t  in;
    moe_placement_t    plan;
    moe_place_pred_t  *before = NULL, *after = NULL;
    char               err[1024] = "", comment[2048];
    double             moved;
    moe_status_t       st;

    memset(&tg, 0, sizeof(tg));
    tg.balance = 1.0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int         bad = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            mp_usage(stdout, argv[0]);
            return 0;
        }
        if (strcmp(a, "--follow-symlinks") == 0) {
            oflags |= MOE_OUT_FOLLOW;
            continue;
        }
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            if (nruns == MP_MAX_RUNS) {
                fprintf(stderr, "moerun-place: at most %d files\n", MP_MAX_RUNS);
                return 2;
            }
            runs[nruns++] = a;
            continue;
        }
        if (strcmp(a, "-o") && strcmp(a, "--output") && strcmp(a, "--json") &&
            strcmp(a, "--policy") && strcmp(a, "--nodes") && strcmp(a, "--ranks-per-node") &&
            strcmp(a, "--slots") && strcmp(a, "--replicas") && strcmp(a, "--groups") &&
            strcmp(a, "--balance")) {
            fprintf(stderr, "moerun-place: unknown option '%s'; see --help\n", a);
            return 2;
        }
        if (v == NULL) {
            fprintf(stderr, "moerun-place: %s needs a value; see --help\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            out = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--policy"))
            pol = v;
        else if (!strcmp(a, "--nodes"))
            bad = mp_int(v, 1, 1 << 20, &nodes);
        else if (!strcmp(a, "--ranks-per-node"))
            bad = mp_int(v, 1, 1 << 20, &rpn);
        else if (!strcmp(a, "--slots"))
            bad = mp_int(v, 1, 1 << 20, &slots);
        else if (!strcmp(a, "--replicas"))
            bad = mp_int(v, 0, 1 << 24, &replicas);
        else if (!strcmp(a, "--groups"))
            bad = mp_int(v, 1, 1 << 20, &tg.groups);
        else if (!strcmp(a, "--balance")) {
            char *end;
            tg.balance = strtod(v, &end);
            bad = *end || !(tg.balance >= 0) || !isfinite(tg.balance);
        }
        if (bad) {
            fprintf(stderr, "moerun-place: %s: \"%s\" is out of range; see --help for the "
                            "allowed values\n", a, v);
            return 2;
        }
    }
    if (moe_plan_policy_parse(pol, &policy) != 0) {
        fprintf(stderr, "moerun-place: --policy: \"%s\" is not a known policy; allowed moerun, "
                        "eplb, contiguous, round-robin\n", pol);
        return 2;
    }
    if (nruns == 0) {
        mp_usage(stderr, argv[0]);
        return 2;
    }
    /* the outputs, before any input is read (fileio.h rules; not an input, not each other) */
    for (i = 0; i < 2; i++) {
        const char *o = i ? json : out, *key = i ? "--json" : "-o";
        int         j;
        if (o == NULL || (i && strcmp(o, "-") == 0))
            continue;
        if (moe_out_check(o, oflags | MOE_OUT_OVERWRITE, err, sizeof(err)) != 0) {
            fprintf(stderr, "moerun-place: %s: %s\n", key, err);
            return 2;
        }
        for (j = 0; j < nruns; j++)
            if (moe_path_same(o, runs[j])) {
                fprintf(stderr, "moerun-place: %s: '%s' is an input file; refusing to overwrite "
                                "it\n", key, o);
                return 2;
            }
        if (i && out && moe_path_same(json, out)) {
            fprintf(stderr, "moerun-place: --json: '%s' is the same file as -o '%s'; give each "
                            "output its own file\n", json, out);
            return 2;
        }
    }
    st = moe_place_input_read(&in, runs, nruns, err, sizeof(err));
    if (st != MOE_OK) {
        fprintf(stderr, "moerun-place: %s\n", err[0] ? err : moe_status_str(st));
        return 1;
    }
    {
        int    groups = tg.groups;
        double balance = tg.balance;
        moe_place_target_default(&in, nodes, rpn, slots, replicas, &tg);
        tg.groups = groups;
        tg.balance = balance;
    }
    st = moe_place_plan(&in, &tg, policy, &plan, err, sizeof(err));
    if (st != MOE_OK) {
        fprintf(stderr, "moerun-place: %s\n", err[0] ? err : moe_status_str(st));
        moe_place_input_cleanup(&in);
        return st == MOE_ERR_INVALID ? 2 : 1;
    }
    st = moe_place_predict(&in, &plan, &after);
    if (st == MOE_OK && in.current && in.current->nranks == plan.nranks)
        st = moe_place_predict(&in, in.current, &before);
    if (st != MOE_OK) {
        fprintf(stderr, "moerun-place: out of memory\n");
        rc = 1;
        goto done;
    }
    moved = moe_place_moved_bytes(&in, in.current, &plan);
    snprintf(comment, sizeof(comment),
             "written by moerun-place --policy %s (%d nodes x %d ranks, %d slots, balance %g)\n"
             "from %s%s", moe_plan_policy_name(policy), tg.nodes, tg.ranks_per_node, tg.slots,
             tg.balance, runs[0], nruns > 1 ? " and more" : "");
    if (out && moe_place_write_file(out, &plan, comment, oflags, err, sizeof(err)) != 0) {
        fprintf(stderr, "moerun-place: -o: %s\n", err);
        rc = 1;
        goto done;
    }
    if (json) {
        cJSON *root = cJSON_CreateObject(), *ls = cJSON_CreateArray(), *t;
        char  *text;
        cJSON_AddStringToObject(root, "policy", moe_plan_policy_name(policy));
        t = cJSON_AddObjectToObject(root, "target");
        cJSON_AddNumberToObject(t, "nodes", tg.nodes);
        cJSON_AddNumberToObject(t, "ranks_per_node", tg.ranks_per_node);
        cJSON_AddNumberToObject(t, "slots", tg.slots);
        cJSON_AddNumberToObject(t, "replicas_per_layer",
                                (double)tg.nodes * tg.ranks_per_node * tg.slots - in.experts);
        cJSON_AddNumberToObject(t, "balance", tg.balance);
        cJSON_AddStringToObject(root, "prediction", moe_place_prediction_model(&in));
        cJSON_AddNumberToObject(root, "steps", in.steps);
        for (i = 0; i < in.layers; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "layer", i);
            if (before)
                cJSON_AddItemToObject(o, "before", mp_pred_json(&before[i], in.current->nnodes));
            cJSON_AddItemToObject(o, "after", mp_pred_json(&after[i], plan.nnodes));
            cJSON_AddItemToArray(ls, o);
        }
        cJSON_AddItemToObject(root, "layers", ls);
        t = cJSON_AddObjectToObject(root, "total");
        if (before)
            cJSON_AddItemToObject(t, "before", mp_total_json(before, in.layers));
        cJSON_AddItemToObject(t, "after", mp_total_json(after, in.layers));
        if (moved >= 0)
            cJSON_AddNumberToObject(root, "weight_bytes_moved", moved);
        else
            cJSON_AddNullToObject(root, "weight_bytes_moved");
        cJSON_AddStringToObject(root, "placement_file", out ? out : "");
        text = cJSON_Print(root);
        cJSON_Delete(root);
        if (text == NULL) {
            rc = 1;
        } else if (strcmp(json, "-") == 0) {
            printf("%s\n", text);
        } else {
            size_t n = strlen(text);
            char  *t2 = realloc(text, n + 2);
            if (t2)
                text = t2, strcat(text, "\n");
            if (t2 == NULL) {
                fprintf(stderr, "moerun-place: --json: out of memory\n");
                rc = 1;
            } else if (mp_write_text(json, text, oflags, err, sizeof(err)) != 0) {
                fprintf(stderr, "moerun-place: --json: %s\n", err);
                rc = 1;
            }
        }
        free(text);
    }
    if (!json || strcmp(json, "-") != 0)
        mp_table(stdout, &in, before, after, plan.nnodes, moved, moe_plan_policy_name(policy));
done:
    moe_place_pred_free(before, in.layers);
    moe_place_pred_free(after, in.layers);
    moe_placement_cleanup(&plan);
    moe_place_input_cleanup(&in);
    return rc;
}
