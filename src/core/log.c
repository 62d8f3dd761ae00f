/* src/core/log.c -- the process-wide diagnostic sink (stderr by default). */
#include "moka/log.h"

#include <stdarg.h>
#include <stdio.h>

static void stderr_sink(moka_log_level level, const char *src, const char *msg, void *user)
{
    (void)user;
    static const char tag[] = "DIWE";
    fprintf(stderr, "%c %s] %s\n", tag[level & 3], src, msg);
}

static moka_log_fn sink = stderr_sink;
static void *sink_user;
static moka_log_level sink_min = MOKA_LOG_INFO;

void moka_log_set(moka_log_fn fn, void *user, moka_log_level min_level)
{
    sink = fn ? fn : stderr_sink;
    sink_user = user;
    sink_min = min_level;
}

void moka_logf(moka_log_level level, const char *src, const char *fmt, ...)
{
    if (level < sink_min) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sink(level, src, msg, sink_user);
}
