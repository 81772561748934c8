/*
 * include/moerun/base/fileio.h — output files created with the user's umask, never
 * world-writable (header-only).
 */
#ifndef MOERUN_BASE_FILEIO_H
#define MOERUN_BASE_FILEIO_H

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* fopen(path, mode) for writing ("w" or "wb"), created 0664 & ~umask instead of 0666. */
static inline FILE *moe_fopen_nowo(const char *path, const char *mode)
{
    int   fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0664);
    FILE *f;

    if (fd < 0)
        return NULL;
    if ((f = fdopen(fd, mode)) == NULL)
        close(fd);
    return f;
}

#endif /* MOERUN_BASE_FILEIO_H */
