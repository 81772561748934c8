/*
 * moerun/base/clones.h — MOE_CLONES: a function built three times, for AVX-512 (x86-64-v4),
 * AVX2 with FMA (x86-64-v3) and the x86-64 baseline; the loader picks one (ifunc). For the
 * few loops that must vectorise on every machine (the expert activations, the synthetic
 * tokens' noise); elsewhere a plain function.
 *
 * Always: a cloned loop gives the same bits in every clone only when it has no add after a
 * multiply the compiler could fuse differently (ISO C builds do not contract: -std=c11).
 */
#ifndef MOERUN_BASE_CLONES_H
#define MOERUN_BASE_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__)
#define MOE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MOE_CLONES
#endif

#endif /* MOERUN_BASE_CLONES_H */
