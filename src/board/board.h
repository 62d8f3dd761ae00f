/* src/board/board.h -- `moka board`: a live dashboard over TensorBoard event files.
 *
 * An HTTP server (libmicrohttpd, one internal polling thread, GET and HEAD only) over a log
 * directory laid out as `moka train --log_dir` writes it:
 *
 *   LOGDIR/<run>/events.out.tfevents.<unix time>.<host>   one run per subdirectory
 *   LOGDIR/events.out.tfevents.*                          the run named "." (if present)
 *
 * Endpoints (all JSON is UTF-8; NaN and infinities are written as null):
 *   /                          the page (web/board.html, compiled into the binary)
 *   /static/<asset>            board.js, board.css, uPlot.iife.min.js, uPlot.min.css
 *   /api/runs                  [{"run": R, "scalars": [tags], "histograms": [tags],
 *                                "images": [tags], "graph": true|false}, ...]
 *   /api/scalars?run=R&tag=T   [[step, wall_time, value], ...] sorted by step
 *   /api/histograms?run=R&tag=T[&buckets=0][&last=N]
 *                              [{"step", "wall_time", "min", "max", "num", "sum", "sum_squares",
 *                                "bucket_limit": [...], "bucket": [...]}, ...] sorted by step
 *   /api/graph?run=R           {"nodes": [{"name", "op", "inputs": [...], "attrs": {k: v}}]}
 *   /api/images?run=R&tag=T    [{"index", "step", "width", "height"}, ...] (the last 16 kept)
 *   /api/image?run=R&tag=T&index=I   one of those images as image/png
 *
 * Event files are read incrementally: each file's byte offset is remembered, new files in a run
 * directory are picked up, and a file still being written is read up to its last complete
 * record (moka_tfevents_read stops at a partial tail). Run names in URLs are only ever compared
 * with the names found by listing LOGDIR; URL text is never joined into a path, and /static/
 * names are looked up in the table of compiled-in assets, so no URL reaches outside LOGDIR.
 *
 * With a token (given, or generated when the host is not a loopback address, as Jupyter does)
 * every request must carry it: `?token=T` (which also sets an HttpOnly cookie for the page's
 * assets), the cookie, or the header `Authorization: token T`; otherwise 403. Without a token
 * on a loopback address, requests whose Host header names another machine are refused (403),
 * so a web page cannot read the dashboard through DNS rebinding.
 */
#ifndef MOKA_BOARD_H
#define MOKA_BOARD_H

#include <signal.h>
#include <stdint.h>

#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* opts.port value asking for any free port (the bound one is passed to `ready`). */
#define MOKA_BOARD_PORT_ANY (-1)

typedef struct moka_board_opts {
    const char *logdir; /* required; must be an existing directory */
    const char *host;   /* address to bind; NULL means "127.0.0.1" */
    int port;           /* 1..65535; 0 means 6006; MOKA_BOARD_PORT_ANY picks a free one */
    const char *token;  /* NULL: none on loopback, a generated one elsewhere; "" is rejected */
    /* Polled every 100 ms; serving stops once *stop is nonzero (a SIGINT handler sets it).
     * NULL serves until the process ends. */
    volatile sig_atomic_t *stop;
    /* Called once, from the calling thread, when the server is listening: url is
     * "http://HOST:PORT/" (plus "?token=T" when a token is in force) and port the bound port.
     * The line "serving LOGDIR at URL" is also logged (moka_logf, source "board"). */
    void (*ready)(void *user, const char *url, int port);
    void *user;
} moka_board_opts;

/* Serves opts->logdir until *opts->stop becomes nonzero, then shuts the server down and frees
 * everything. Blocks the calling thread. Returns MOKA_ERR_INVALID_ARG for a missing logdir, a
 * port out of range or an empty token, MOKA_ERR_IO when logdir is not a directory or the address
 * cannot be bound (e.g. the port is taken), MOKA_ERR_NOMEM. Reading errors in event files (a
 * CRC mismatch) are logged as warnings and that file is read no further; they do not stop the
 * server. Thread-safe with respect to other calls (no globals). */
moka_status moka_board_serve(const moka_board_opts *opts, moka_err *err);

/* The compiled-in web assets (generated from web/ and third_party/uplot/ by
 * cmake/embed_assets.cmake into build/gen/board_assets.c). */
typedef struct moka_board_asset {
    const char *name; /* file name, e.g. "board.js" */
    const unsigned char *data;
    int64_t nbytes;
} moka_board_asset;
extern const moka_board_asset moka_board_assets[];
extern const int moka_board_num_assets;

#ifdef __cplusplus
}
#endif
#endif /* MOKA_BOARD_H */
