/* src/core/status.c -- status names and error formatting. */
#include "moka/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *moka_status_name(moka_status s)
{
    switch (s) {
    case MOKA_OK: return "MOKA_OK";
    case MOKA_ERR_INVALID_ARG: return "MOKA_ERR_INVALID_ARG";
    case MOKA_ERR_CONFIG: return "MOKA_ERR_CONFIG";
    case MOKA_ERR_SHAPE: return "MOKA_ERR_SHAPE";
    case MOKA_ERR_IO: return "MOKA_ERR_IO";
    case MOKA_ERR_NOMEM: return "MOKA_ERR_NOMEM";
    case MOKA_ERR_UNSUPPORTED: return "MOKA_ERR_UNSUPPORTED";
    case MOKA_ERR_BACKEND: return "MOKA_ERR_BACKEND";
    case MOKA_ERR_INTERRUPTED: return "MOKA_ERR_INTERRUPTED";
    }
    return "MOKA_ERR_UNKNOWN";
}

moka_status moka_errf(moka_err *err, moka_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        /* A message is one line: control characters quoted from user input (a newline inside a
         * config string, bytes of a binary file) become '?'. */
        for (char *c = err->msg; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    }
    return code;
}

void moka_err_prefix(moka_err *err, const char *fmt, ...)
{
    if (!err) return;
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof err->msg - 2) return;
    err->msg[n++] = ':';
    err->msg[n++] = ' ';
    const size_t room = sizeof err->msg - (size_t)n - 1, len = strlen(old);
    memcpy(err->msg + n, old, len < room ? len : room);
    err->msg[n + (len < room ? len : room)] = '\0';
    for (char *c = err->msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
}
