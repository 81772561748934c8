/*
 * dumpcmp.c — compares two raw float32 tensors written by `moerun --output-dump`.
 *
 * Usage: dumpcmp A B [TOL]. Passes (exit 0) when both have the same number of floats,
 * none is NaN, and ||A - B||_2 / ||B||_2 <= TOL (default 1e-5) and every element satisfies
 * |a - b| <= TOL * (1 + |b|). Prints both measures either way.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float *load(const char *path, long *n)
{
    FILE  *f = fopen(path, "rb");
    float *v;
    long   bytes;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (bytes = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fprintf(stderr, "dumpcmp: cannot read %s\n", path);
        exit(2);
    }
    *n = bytes / (long)sizeof(float);
    v = malloc((size_t)bytes + 1);
    if (v == NULL || fread(v, sizeof(float), (size_t)*n, f) != (size_t)*n) {
        fprintf(stderr, "dumpcmp: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    long   na, nb, i, worst = -1;
    float *a, *b;
    int    rc;
    double tol = argc > 3 ? atof(argv[3]) : 1e-5, num = 0, den = 0, wexcess = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: dumpcmp A B [TOL]\n");
        return 2;
    }
    a = load(argv[1], &na);
    b = load(argv[2], &nb);
    if (na != nb || na == 0) {
        printf("dumpcmp: sizes differ or empty: %ld vs %ld floats\n", na, nb);
        free(a);
        free(b);
        return 1;
    }
    for (i = 0; i < na; i++) {
        double d = (double)a[i] - b[i], lim = tol * (1 + fabs(b[i]));
        if (isnan(a[i]) || isnan(b[i])) {
            printf("dumpcmp: NaN at %ld\n", i);
            free(a);
            free(b);
            return 1;
        }
        num += d * d;
        den += (double)b[i] * b[i];
        if (fabs(d) - lim > wexcess) {
            wexcess = fabs(d) - lim;
            worst = i;
        }
    }
    printf("dumpcmp: %ld floats, relative L2 error %.3g (tol %g), %s\n", na, sqrt(num / den), tol,
           worst < 0 ? "all elements within tolerance" : "an element is out of tolerance");
    if (worst >= 0)
        printf("dumpcmp: element %ld: %.9g vs %.9g\n", worst, a[worst], b[worst]);
    rc = (sqrt(num / den) <= tol && worst < 0) ? 0 : 1;
    free(a);
    free(b);
    return rc;
}
