/*
 * tests/sanitize/keep_dlopen.c — LD_PRELOAD shim for sanitizer runs: dlclose() does nothing.
 *
 * Open MPI loads its components with dlopen and unloads them in MPI_Finalize, so the leak
 * report printed at exit cannot name the library that made an allocation ("<unknown
 * module>") and no suppression can match it. Keeping every library mapped lets
 * LeakSanitizer symbolise those stacks, so tests/sanitize/lsan.supp can suppress Open MPI's
 * own leaks by library name while leaks in moerun's code are still reported. Only for
 * tests: never shipped, never linked into moerun.
 */
int dlclose(void *handle);

int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
