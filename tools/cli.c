/* tools/cli.c -- flag parsing and error exits shared by the `moka` subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int moka_cli_usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "moka %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see 'moka %s --help')\n", cmd);
    return 2;
}

/* Parses --name=value / --name value into flags (names listed by the caller); positional
 * arguments are returned in pos. Returns 0, or the exit code for a usage error. */
int moka_cli_parse_flags(const char *cmd, int argc, char **argv, flag *flags, int nflags,
                         const char **pos, int *npos, int max_pos, bool *help)
{
    *npos = 0;
    *help = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 && !(a[0] == '-' && a[1] && a[1] != '-')) {
            if (*npos >= max_pos) return moka_cli_usage_error(cmd, "unexpected argument '%s'", a);
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        const size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int f = -1;
        for (int k = 0; k < nflags; k++)
            if (strlen(flags[k].name) == nlen && strncmp(flags[k].name, name, nlen) == 0) f = k;
        if (f < 0) return moka_cli_usage_error(cmd, "unknown flag '%s'", a);
        if (eq) {
            flags[f].value = eq + 1;
        } else {
            if (i + 1 >= argc) return moka_cli_usage_error(cmd, "flag '%s' needs a value", a);
            flags[f].value = argv[++i];
        }
    }
    return 0;
}

int moka_cli_parse_int(const char *cmd, const char *name, const char *v, long lo, long hi,
                       long *out)
{
    char *end;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "moka %s: --%s must be an integer in [%ld, %ld], got '%s'\n", cmd, name, lo,
                hi, v);
        return 2;
    }
    *out = x;
    return 0;
}

int moka_cli_fail(const char *cmd, const moka_err *err)
{
    fprintf(stderr, "moka %s: %s\n", cmd, err->msg);
    switch (err->code) {
    case MOKA_ERR_CONFIG:
    case MOKA_ERR_UNSUPPORTED:
    case MOKA_ERR_INVALID_ARG:
    case MOKA_ERR_SHAPE: return 2;
    default: return 1;
    }
}
