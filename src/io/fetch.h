/* src/io/fetch.h -- resolves a data-layer source that may be an s3:// or qs:// URL to a local path.
 *
 * Cache layout (cache_dir from the ctx, default "$HOME/.cache/moka"):
 *   one object   s3://b/dir/k    -> <cache>/<hex sha256("s3://b/dir/k\n" + etag)>/k
 *   a prefix     s3://b/dir/     -> <cache>/<hex sha256(url + "\n" + key "\t" etag "\n" ...)>/
 *                                   with every object below the prefix at its relative path
 * The key includes the ETag, so a replaced object lands in a new directory and is fetched again,
 * while an unchanged one is found in place and costs only the HEAD (or LIST) request. Downloads
 * go through moka_s3_get_file, which writes "<path>.moka-part" and renames it only when complete,
 * so a file present at the cache path is always a whole copy.
 */
#ifndef MOKA_FETCH_H
#define MOKA_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "moka/ctx.h"
#include "moka/status.h"

/* True when `source` names an object store URL (s3:// or qs://). */
bool moka_fetch_is_url(const char *source);

/* Copies a plain path to `local` unchanged; fetches an s3:// or qs:// URL into the cache (see
 * above; credentials as moka_s3_config_resolve) and writes the local file (or, for a URL ending
 * in '/', the local directory, without the trailing '/') to `local`. Logs one INFO line per
 * fetched or reused object. ctx may be NULL (default cache directory). */
moka_status moka_fetch_source(const moka_ctx *ctx, const char *source, char *local, size_t local_n,
                              moka_err *err);

#endif /* MOKA_FETCH_H */
