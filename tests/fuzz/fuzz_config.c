/*
 * tests/fuzz/fuzz_config.c — libFuzzer target for the configuration parser (runtime/config.c).
 *
 * The first byte chooses the input path, the rest is the text:
 *   even: an INI file (written to a private temporary file, read by moe_config_load_ini);
 *   odd:  a command line, one argument per line, plus MOERUN_* variables from lines of the
 *         form "MOERUN_KEY=VALUE" (moe_config_load with that argv and environment).
 * Then moe_config_validate for 1..8 ranks and moe_config_print. Anything goes in; what must
 * hold: no crash, no sanitizer report, and a failure always comes with an error message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "moerun/config.h"

#define FZ_MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_ini_path[64];

static void fz_check(moe_status_t st, const char *err)
{
    if (st != MOE_OK && err[0] == '\0') {
        fprintf(stderr, "fuzz_config: failure (status %d) without an error message\n", (int)st);
        abort();
    }
}

static void fz_ini(const char *text, size_t len)
{
    moe_config_t cfg;
    char         err[512] = "";
    FILE        *f;

    if (fz_ini_path[0] == '\0') {
        int fd;
        snprintf(fz_ini_path, sizeof(fz_ini_path), "/tmp/fuzz_config.%ld.ini", (long)getpid());
        fd = open(fz_ini_path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd >= 0)
            close(fd);
    }
    if ((f = fopen(fz_ini_path, "wb")) == NULL)
        return;
    fwrite(text, 1, len, f);
    fclose(f);
    moe_config_defaults(&cfg);
    fz_check(moe_config_load_ini(&cfg, fz_ini_path, err, sizeof(err)), err);
}

static void fz_cmdline(char *text)
{
    char               *argv[FZ_MAX_ARGS + 2], *envp[FZ_MAX_ARGS + 1], *save = NULL, *line;
    int                 argc = 1, envc = 0, np;
    moe_config_t        cfg;
    moe_config_action_t action = MOE_CONFIG_RUN;
    char                err[512] = "";
    moe_status_t        st;

    argv[0] = "moerun";
    for (line = strtok_r(text, "\n", &save); line && argc < FZ_MAX_ARGS;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "MOERUN_", 7) == 0 && strchr(line, '=') && envc < FZ_MAX_ARGS)
            envp[envc++] = line;
        else
            argv[argc++] = line;
    }
    argv[argc] = NULL;
    envp[envc] = NULL;
    st = moe_config_load(&cfg, argc, argv, envp, &action, err, sizeof(err));
    fz_check(st, err);
    if (st != MOE_OK)
        return;
    for (np = 1; np <= 8; np *= 2) {
        err[0] = '\0';
        fz_check(moe_config_validate(&cfg, np, err, sizeof(err)), err);
    }
    {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            moe_config_print(&cfg, devnull);
            fclose(devnull);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size < 1 || size > 1 << 16)
        return 0;
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] % 2 == 0)
        fz_ini(text, size - 1);
    else
        fz_cmdline(text);
    free(text);
    return 0;
}
