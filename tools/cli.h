/* tools/cli.h -- what every `moka` subcommand shares: flag parsing and exit codes.
 *
 * A subcommand is `int cmd_x(int argc, char **argv)` (argv without "moka x"), registered in the
 * table in tools/moka.c. Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef MOKA_CLI_H
#define MOKA_CLI_H

#include <stdbool.h>

#include "moka/status.h"

typedef struct flag {
    const char *name;
    const char *value; /* NULL when not given */
} flag;

/* Prints "moka CMD: <message>" and the --help hint; returns 2. fmt takes one %s (arg). */
int moka_cli_usage_error(const char *cmd, const char *fmt, const char *arg);
/* Parses --name=value / --name value into flags (names listed by the caller); positional
 * arguments (at most max_pos) are returned in pos. --help/-h sets *help. Returns 0, or the exit
 * code of a usage error (already printed). */
int moka_cli_parse_flags(const char *cmd, int argc, char **argv, flag *flags, int nflags,
                         const char **pos, int *npos, int max_pos, bool *help);
/* strtol with an end-pointer and range check; prints the error and returns 2 when it fails. */
int moka_cli_parse_int(const char *cmd, const char *name, const char *v, long lo, long hi,
                       long *out);
/* Prints "moka CMD: <err->msg>" and returns the exit code for err->code (2 for config/shape/
 * unsupported/argument errors, 1 otherwise). */
int moka_cli_fail(const char *cmd, const moka_err *err);

#endif /* MOKA_CLI_H */
