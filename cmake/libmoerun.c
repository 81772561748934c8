/*
 * cmake/libmoerun.c — the one source file of libmoerun.so. The library's code is the
 * per-folder archives (comm, experts, runtime) linked whole (cmake/install.cmake); a shared
 * library target needs a source of its own, and this is it. It defines nothing.
 */
typedef int moe__libmoerun_anchor_t;
