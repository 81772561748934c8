/*
 * runtime/placement.c — expert -> rank(s) maps, per layer, with replicas (see placement.h
 * for the invariants and docs/placement.md for the file format).
 *
 * Every map, built-in or read, goes through moe_placement_from_lists, the one place that
 * checks a map and derives slots from replica lists.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "moerun/base/log.h"
#include "placement.h"

#define PL_FILE_MAGIC "moerun-placement"

void moe_placement_cleanup(moe_placement_t *pl)
{
    free(pl->node_of);
    free(pl->nrep);
    free(pl->rep_rank);
    free(pl->rep_slot);
    free(pl->local_count);
    free(pl->first_local);
    free(pl->global_of);
    free(pl->owner);
    free(pl->local_index);
    memset(pl, 0, sizeof(*pl));
}

moe_status_t moe_placement_from_lists(moe_placement_t *pl, int experts, int layers, int nranks,
                                      int nnodes, const int *node_of, int slots,
                                      const int *nrep, const int *ranks, int max_rep, char *err,
                                      size_t errlen)
{
    int    E = experts, L = layers, P = nranks, R = 0, l, e, i, j, r, *held = NULL;
    size_t LE = (size_t)L * E;

    memset(pl, 0, sizeof(*pl));
    if (E < 1 || L < 1 || P < 1 || nnodes < 1 || max_rep < 1) {
        moe_say(err, errlen, "placement: shape experts %d, layers %d, ranks %d, nodes %d; "
               "allowed >= 1 each", E, L, P, nnodes);
        return MOE_ERR_INVALID;
    }
    if (slots < 1 || slots > E) {
        moe_say(err, errlen, "placement: slots %d is out of range; allowed 1..%d (experts)",
               slots, E);
        return MOE_ERR_INVALID;
    }
    for (i = 0; (size_t)i < LE; i++) {
        l = (int)((size_t)i / E);
        e = i % E;
        if (nrep[i] < 1) {
            moe_say(err, errlen, "placement: layer %d expert %d has no rank; allowed 1..%d ranks "
                   "per expert", l, e, P);
            return MOE_ERR_INVALID;
        }
        if (nrep[i] > max_rep || nrep[i] > P) {
            moe_say(err, errlen, "placement: layer %d expert %d has %d replicas; allowed 1..%d",
                   l, e, nrep[i], P);
            return MOE_ERR_INVALID;
        }
        for (j = 0; j < nrep[i]; j++) {
            r = ranks[(size_t)i * max_rep + j];
            if (r < 0 || r >= P) {
                moe_say(err, errlen, "placement: layer %d expert %d: rank %d is out of range; "
                       "allowed 0..%d", l, e, r, P - 1);
                return MOE_ERR_INVALID;
            }
            for (int k = 0; k < j; k++)
                if (ranks[(size_t)i * max_rep + k] == r) {
                    moe_say(err, errlen, "placement: layer %d expert %d lists rank %d twice; "
                           "replicas must be on distinct ranks", l, e, r);
                    return MOE_ERR_INVALID;
                }
        }
        if (nrep[i] > R)
            R = nrep[i];
    }
    if (node_of)
        for (r = 0; r < P; r++)
            if (node_of[r] < 0 || node_of[r] >= nnodes) {
                moe_say(err, errlen, "placement: rank %d is on node %d; allowed 0..%d", r,
                       node_of[r], nnodes - 1);
                return MOE_ERR_INVALID;
            }

    pl->experts = E;
    pl->layers = L;
    pl->nranks = P;
    pl->nnodes = nnodes;
    pl->slots = slots;
    pl->max_replicas = R;
    pl->node_of = calloc((size_t)P, sizeof(int));
    pl->nrep = calloc(LE, sizeof(int));
    pl->rep_rank = malloc(LE * R * sizeof(int));
    pl->rep_slot = malloc(LE * R * sizeof(int));
    pl->local_count = calloc((size_t)P, sizeof(int));
    pl->first_local = calloc((size_t)P + 1, sizeof(int));
    pl->owner = calloc((size_t)E, sizeof(int));
    pl->local_index = calloc((size_t)E, sizeof(int));
    held = calloc((size_t)P, sizeof(int));
    if (!pl->node_of || !pl->nrep || !pl->rep_rank || !pl->rep_slot || !pl->local_count ||
        !pl->first_local || !pl->owner || !pl->local_index || !held)
        goto nomem;
    if (node_of)
        memcpy(pl->node_of, node_of, (size_t)P * sizeof(int));
    for (i = 0; (size_t)i < LE * R; i++)
        pl->rep_rank[i] = pl->rep_slot[i] = -1;
    /* slots in increasing expert order within each (layer, rank) */
    for (l = 0; l < L; l++) {
        memset(held, 0, (size_t)P * sizeof(int));
        for (e = 0; e < E; e++) {
            size_t le = (size_t)l * E + e;
            pl->nrep[le] = nrep[le];
            for (j = 0; j < nrep[le]; j++) {
                r = ranks[le * max_rep + j];
                pl->rep_rank[le * R + j] = r;
                pl->rep_slot[le * R + j] = held[r]++;
            }
        }
        for (r = 0; r < P; r++) {
            if (held[r] > slots) {
                moe_say(err, errlen, "placement: rank %d holds %d experts at layer %d, more than "
                       "its %d slots; allowed at most slots experts per rank and layer",
                       r, held[r], l, slots);
                free(held);
                moe_placement_cleanup(pl);
                return MOE_ERR_INVALID;
            }
            if (held[r] > pl->local_count[r])
                pl->local_count[r] = held[r];
        }
    }
    for (r = 0; r < P; r++)
        pl->first_local[r + 1] = pl->first_local[r] + pl->local_count[r];
    pl->global_of = malloc(((size_t)L * pl->first_local[P] + 1) * sizeof(int));
    if (pl->global_of == NULL)
        goto nomem;
    for (i = 0; (size_t)i < (size_t)L * pl->first_local[P]; i++)
        pl->global_of[i] = -1;
    for (l = 0; l < L; l++)
        for (e = 0; e < E; e++)
            for (j = 0; j < pl->nrep[(size_t)l * E + e]; j++) {
                size_t q = ((size_t)l * E + e) * R + j;
                r = pl->rep_rank[q];
                pl->global_of[(size_t)l * pl->first_local[P] + pl->first_local[r] +
                              pl->rep_slot[q]] = e;
            }
    for (e = 0; e < E; e++) {
        pl->owner[e] = pl->rep_rank[(size_t)e * R];
        pl->local_index[e] = pl->rep_slot[(size_t)e * R];
    }
    free(held);
    return MOE_OK;
nomem:
    free(held);
    moe_placement_cleanup(pl);
    moe_say(err, errlen, "placement: out of memory");
    return MOE_ERR_NOMEM;
}

moe_status_t moe_placement_builtin(moe_placement_t *pl, moe_placement_kind_t kind, int experts,
                                   int layers, int nranks, int nnodes, const int *node_of)
{
    int         *ranks, *nrep, e, l, r, slots;
    moe_status_t st;

    if (experts < 1 || nranks < 1 || layers < 1)
        return MOE_ERR_INVALID;
    ranks = malloc((size_t)experts * layers * sizeof(int));
    nrep = malloc((size_t)experts * layers * sizeof(int));
    if (!ranks || !nrep) {
        free(ranks);
        free(nrep);
        return MOE_ERR_NOMEM;
    }
    for (e = 0; e < experts; e++) {
        if (kind == MOE_PLACE_ROUND_ROBIN) {
            r = e % nranks;
        } else {
            /* Largest r with floor(r*E/P) <= e. */
            r = (int)(((long long)(e + 1) * nranks - 1) / experts);
            while (r > 0 && (long long)r * experts / nranks > e)
                r--;
            while (r + 1 < nranks && (long long)(r + 1) * experts / nranks <= e)
                r++;
        }
        for (l = 0; l < layers; l++) {
            ranks[(size_t)l * experts + e] = r;
            nrep[(size_t)l * experts + e] = 1;
        }
    }
    slots = (experts + nranks - 1) / nranks;
    st = moe_placement_from_lists(pl, experts, layers, nranks, nnodes, node_of, slots, nrep,
                                  ranks, 1, NULL, 0);
    free(ranks);
    free(nrep);
    return st;
}

moe_status_t moe_placement_init(moe_placement_t *pl, moe_placement_kind_t kind, int experts,
                                int nranks)
{
    return moe_placement_builtin(pl, kind, experts, 1, nranks, 1, NULL);
}

int moe_placement_route(const moe_placement_t *pl, int l, int e, int node, int64_t g,
                        int *slot_p)
{
    size_t     le = (size_t)l * pl->experts + e, R = (size_t)pl->max_replicas;
    const int *rr = pl->rep_rank + le * R;
    int        n = pl->nrep[le], near = 0, j, pick;

    if (n == 1) {
        *slot_p = pl->rep_slot[le * R];
        return rr[0];
    }
    for (j = 0; j < n; j++)
        near += pl->node_of[rr[j]] == node;
    pick = (int)(g % (near > 0 ? near : n));
    for (j = 0; j < n; j++)
        if (near == 0 || pl->node_of[rr[j]] == node) {
            if (pick-- == 0)
                break;
        }
    *slot_p = pl->rep_slot[le * R + j];
    return rr[j];
}

int moe_placement_max_held(const moe_placement_t *pl)
{
    int    r, l, i, most = 0, n = pl->first_local[pl->nranks];

    for (r = 0; r < pl->nranks; r++) {
        int held = 0;
        for (l = 0; l < pl->layers; l++)
            for (i = pl->first_local[r]; i < pl->first_local[r + 1]; i++)
                held += pl->global_of[(size_t)l * n + i] >= 0;
        if (held > most)
            most = held;
    }
    return most;
}

int moe_placement_spec_check(const char *spec, char *err, size_t errlen)
{
    if (strcmp(spec, "contiguous") == 0 || strcmp(spec, "round-robin") == 0)
        return 0;
    if (strncmp(spec, "file:", 5) == 0 && spec[5] != '\0')
        return 0;
    moe_say(err, errlen, "placement: \"%s\" is not a known value; allowed contiguous, "
           "round-robin or file:PATH", spec);
    return -1;
}

/* ---- the file format -------------------------------------------------------------------- */

typedef struct pl_file {
    FILE       *f;
    const char *path;
    int         lineno;
    char       *line;
    size_t      cap;
} pl_file_t;

/* Next line that is not blank or a comment, trailing comment and blanks cut; NULL at EOF. */
static char *pl_next(pl_file_t *pf)
{
    char   *s, *h;
    ssize_t n;

    while ((n = getline(&pf->line, &pf->cap, pf->f)) >= 0) {
        pf->lineno++;
        s = pf->line;
        if ((h = strchr(s, '#')) != NULL)
            *h = '\0';
        n = (ssize_t)strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            s[--n] = '\0';
        while (isspace((unsigned char)*s))
            s++;
        if (*s)
            return s;
    }
    return NULL;
}

/* "KEY N" header line into *v; 0 on success. */
static int pl_header(pl_file_t *pf, const char *key, int *v, char *err, size_t errlen)
{
    char *s = pl_next(pf), *end;
    long  x;
    size_t n = strlen(key);

    if (s == NULL || strncmp(s, key, n) != 0 || !isspace((unsigned char)s[n])) {
        moe_say(err, errlen, "placement file %s:%d: expected \"%s N\"", pf->path, pf->lineno, key);
        return -1;
    }
    errno = 0;
    x = strtol(s + n, &end, 10);
    if (errno || *end != '\0' || x < 1 || x > 1 << 24) {
        moe_say(err, errlen, "placement file %s:%d: %s: \"%s\" is not a number in 1..%d",
               pf->path, pf->lineno, key, s + n + 1, 1 << 24);
        return -1;
    }
    *v = (int)x;
    return 0;
}

moe_status_t moe_placement_read(moe_placement_t *pl, const char *path, const int *node_of,
                                char *err, size_t errlen)
{
    pl_file_t    pf = {NULL, path, 0, NULL, 0};
    int          E, L, P, N, S, R, l, e, *nrep = NULL, *ranks = NULL, *seen = NULL, ver;
    char        *s, *tok, *save, *end;
    moe_status_t st = MOE_ERR_INVALID;

    memset(pl, 0, sizeof(*pl));
    pf.f = fopen(path, "r");
    if (pf.f == NULL) {
        moe_say(err, errlen, "placement file %s: cannot open: %s", path, strerror(errno));
        return MOE_ERR_IO;
    }
    s = pl_next(&pf);
    if (s == NULL || sscanf(s, PL_FILE_MAGIC " %d", &ver) != 1) {
        moe_say(err, errlen, "placement file %s:%d: not a placement file; the first line must be "
               "\"" PL_FILE_MAGIC " %d\"", path, pf.lineno, MOE_PLACEMENT_FORMAT_VERSION);
        goto out;
    }
    if (ver != MOE_PLACEMENT_FORMAT_VERSION) {
        moe_say(err, errlen, "placement file %s:%d: format version %d; allowed %d", path,
               pf.lineno, ver, MOE_PLACEMENT_FORMAT_VERSION);
        goto out;
    }
    if (pl_header(&pf, "experts", &E, err, errlen) || pl_header(&pf, "layers", &L, err, errlen) ||
        pl_header(&pf, "ranks", &P, err, errlen) || pl_header(&pf, "nodes", &N, err, errlen) ||
        pl_header(&pf, "slots", &S, err, errlen))
        goto out;
    if ((double)L * E * P > (double)(1 << 28)) { /* bounds the replica table below */
        moe_say(err, errlen, "placement file %s: experts %d x layers %d x ranks %d is too large; "
               "allowed at most 2^28", path, E, L, P);
        goto out;
    }
    R = P;
    nrep = calloc((size_t)L * E, sizeof(int));
    ranks = malloc((size_t)L * E * R * sizeof(int));
    seen = calloc((size_t)L, sizeof(int));
    if (!nrep || !ranks || !seen) {
        moe_say(err, errlen, "placement: out of memory");
        st = MOE_ERR_NOMEM;
        goto out;
    }
    while ((s = pl_next(&pf)) != NULL) {
        long ll;
        if (strncmp(s, "layer", 5) != 0 || !isspace((unsigned char)s[5])) {
            moe_say(err, errlen, "placement file %s:%d: expected \"layer N: RANKS...\"", path,
                   pf.lineno);
            goto out;
        }
        errno = 0;
        ll = strtol(s + 5, &end, 10);
        if (errno || end == s + 5 || *end != ':' || ll < 0 || ll >= L) {
            moe_say(err, errlen, "placement file %s:%d: layer number out of range; allowed 0..%d "
                   "followed by ':'", path, pf.lineno, L - 1);
            goto out;
        }
        l = (int)ll;
        if (seen[l]++) {
            moe_say(err, errlen, "placement file %s:%d: layer %d listed twice", path, pf.lineno, l);
            goto out;
        }
        e = 0;
        for (tok = strtok_r(end + 1, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save), e++) {
            char *p = tok;
            if (e >= E) {
                moe_say(err, errlen, "placement file %s:%d: layer %d lists more than %d experts",
                       path, pf.lineno, l, E);
                goto out;
            }
            if (strcmp(tok, "-") == 0)
                continue; /* no rank: reported by from_lists as "has no rank" */
            for (;;) {
                int n = nrep[(size_t)l * E + e];
                errno = 0;
                ll = strtol(p, &end, 10);
                if (errno || end == p || (*end != ',' && *end != '\0')) {
                    moe_say(err, errlen, "placement file %s:%d: layer %d expert %d: \"%s\" is not "
                           "a rank list; allowed ranks 0..%d separated by ','", path, pf.lineno,
                           l, e, tok, P - 1);
                    goto out;
                }
                if (n >= R) {
                    moe_say(err, errlen, "placement file %s:%d: layer %d expert %d has more than "
                           "%d replicas", path, pf.lineno, l, e, R);
                    goto out;
                }
                if (ll < 0 || ll >= P) {
                    moe_say(err, errlen, "placement file %s:%d: layer %d expert %d: rank %ld is out "
                           "of range; allowed 0..%d", path, pf.lineno, l, e, ll, P - 1);
                    goto out;
                }
                ranks[((size_t)l * E + e) * R + n] = (int)ll;
                nrep[(size_t)l * E + e] = n + 1;
                if (*end == '\0')
                    break;
                p = end + 1;
            }
        }
        if (e < E) {
            moe_say(err, errlen, "placement file %s:%d: layer %d lists %d experts; expected %d "
                   "(use - for none)", path, pf.lineno, l, e, E);
            goto out;
        }
    }
    if (ferror(pf.f)) {
        moe_say(err, errlen, "placement file %s: cannot read: %s", path, strerror(errno));
        st = MOE_ERR_IO;
        goto out;
    }
    for (l = 0; l < L; l++)
        if (!seen[l]) {
            moe_say(err, errlen, "placement file %s: layer %d is missing; every layer 0..%d needs "
                   "a line", path, l, L - 1);
            goto out;
        }
    st = moe_placement_from_lists(pl, E, L, P, N, node_of, S, nrep, ranks, R, err, errlen);
    if (st == MOE_ERR_INVALID && err && errlen > 0) {
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%s", err);
        moe_say(err, errlen, "placement file %s: %s", path,
               strncmp(tmp, "placement: ", 11) == 0 ? tmp + 11 : tmp);
    }
out:
    free(pf.line);
    fclose(pf.f);
    free(nrep);
    free(ranks);
    free(seen);
    return st;
}

moe_status_t moe_placement_build(moe_placement_t *pl, const char *spec, int experts, int layers,
                                 int nranks, int nnodes, const int *node_of, char *err,
                                 size_t errlen)
{
    moe_status_t st;
    const char  *path;

    memset(pl, 0, sizeof(*pl));
    if (strcmp(spec, "contiguous") == 0 || strcmp(spec, "round-robin") == 0) {
        st = moe_placement_builtin(pl, strcmp(spec, "contiguous") == 0 ? MOE_PLACE_CONTIGUOUS
                                                                       : MOE_PLACE_ROUND_ROBIN,
                                   experts, layers, nranks, nnodes, node_of);
        if (st != MOE_OK)
            moe_say(err, errlen, "placement: cannot build the %s map (%s)", spec,
                   moe_status_str(st));
        return st;
    }
    if (moe_placement_spec_check(spec, err, errlen) != 0)
        return MOE_ERR_INVALID;
    path = spec + 5;
    st = moe_placement_read(pl, path, NULL, err, errlen);
    if (st != MOE_OK)
        return st;
    if (pl->experts != experts || pl->layers != layers || pl->nranks != nranks ||
        pl->nnodes != nnodes) {
        moe_say(err, errlen, "placement file %s was made for experts %d, layers %d, ranks %d, "
               "nodes %d; this run has experts %d, layers %d, ranks %d, nodes %d", path,
               pl->experts, pl->layers, pl->nranks, pl->nnodes, experts, layers, nranks, nnodes);
        moe_placement_cleanup(pl);
        return MOE_ERR_INVALID;
    }
    if (node_of)
        memcpy(pl->node_of, node_of, (size_t)nranks * sizeof(int));
    return MOE_OK;
}

int moe_placement_write(const moe_placement_t *pl, FILE *out, const char *comment)
{
    int         l, e, j, E = pl->experts, R = pl->max_replicas;
    const char *c = comment, *nl;

    fprintf(out, PL_FILE_MAGIC " %d\n", MOE_PLACEMENT_FORMAT_VERSION);
    while (c && *c) {
        nl = strchr(c, '\n');
        fprintf(out, "# %.*s\n", nl ? (int)(nl - c) : (int)strlen(c), c);
        c = nl ? nl + 1 : NULL;
    }
    fprintf(out, "experts %d\nlayers %d\nranks %d\nnodes %d\nslots %d\n", pl->experts,
            pl->layers, pl->nranks, pl->nnodes, pl->slots);
    for (l = 0; l < pl->layers; l++) {
        fprintf(out, "layer %d:", l);
        for (e = 0; e < E; e++) {
            size_t le = (size_t)l * E + e;
            for (j = 0; j < pl->nrep[le]; j++)
                fprintf(out, "%c%d", j ? ',' : ' ', pl->rep_rank[le * R + j]);
        }
        fputc('\n', out);
    }
    return ferror(out) ? -1 : 0;
}
