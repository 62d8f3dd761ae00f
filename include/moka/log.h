/* include/moka/log.h -- where the library's diagnostics go.
 *
 * The library never writes to stdout. Progress lines (Caffe's "Iteration 100, loss = 0.31") and
 * warnings go to one process-wide sink, stderr by default. `src` names the part of moka speaking
 * ("solver", "net") so a sink can format Caffe/glog-style prefixes.
 */
#ifndef MOKA_LOG_H
#define MOKA_LOG_H

#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum moka_log_level {
    MOKA_LOG_DEBUG = 0,
    MOKA_LOG_INFO,
    MOKA_LOG_WARN,
    MOKA_LOG_ERROR,
} moka_log_level;

typedef void (*moka_log_fn)(moka_log_level level, const char *src, const char *msg, void *user);

/* Installs fn as the sink (NULL restores the stderr default). Not thread-safe: call it before
 * starting work. Messages below min_level are dropped. */
MOKA_API void moka_log_set(moka_log_fn fn, void *user, moka_log_level min_level);

/* Formats one message (without trailing newline) and hands it to the sink. Thread-safe. */
MOKA_API void moka_logf(moka_log_level level, const char *src, const char *fmt, ...)
    MOKA_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif
#endif /* MOKA_LOG_H */
