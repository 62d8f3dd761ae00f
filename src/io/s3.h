/* src/io/s3.h -- an S3 client (AWS S3, QingStor's S3-compatible endpoint) over libcurl.
 *
 * Requests are signed with AWS Signature V4 by libcurl (CURLOPT_AWS_SIGV4, "aws:amz:<region>:s3");
 * moka supplies what curl leaves to the caller: the x-amz-content-sha256 header (SHA-256 of the
 * body), canonical query strings (pairs sorted by encoded name, RFC 3986 encoded) and
 * percent-encoded key paths ('/' kept). URLs are path style (endpoint/bucket/key) for custom
 * endpoints and QingStor, virtual-hosted (bucket.s3.<region>.amazonaws.com/key) for AWS.
 *
 * Listing uses ListObjects V1 with `marker` and always sends `max-keys` (QingStor documents only
 * V1). Downloads go to "<path>.moka-part" and are renamed only once complete and verified; an
 * existing part file is resumed with Range + If-Match on the ETag. Uploads at or above the part
 * size are multipart, and every returned ETag is checked against the MD5 of what was sent
 * (md5-of-part-md5s "-N" for the whole multipart object).
 *
 * Messages never contain secrets: credentials travel only in curl options and signed headers.
 */
#ifndef MOKA_S3_H
#define MOKA_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moka/status.h"

/* Resolved credentials and endpoint. */
typedef struct moka_s3_config {
    char scheme[8]; /* "s3" or "qs" */
    char access_key[128], secret_key[256], session_token[2048];
    char region[64];    /* SigV4 region (QingStor: the zone) */
    char endpoint[512]; /* e.g. "http://127.0.0.1:9000" or "https://s3.pek3b.qingstor.com" */
    bool path_style;    /* true for custom endpoints (test server), QingStor */
} moka_s3_config;

/* Resolves credentials/endpoint for a URL scheme ("s3" or "qs") from (in order)
 * `endpoint_override` (the --endpoint flag, may be NULL), the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION/AWS_DEFAULT_REGION, AWS_ENDPOINT_URL,
 * AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE; for qs:// QSCTL_ACCESS_KEY_ID,
 * QSCTL_SECRET_ACCESS_KEY, QSCTL_ZONE, QSCTL_HOST, QSCTL_PORT, QSCTL_PROTOCOL, QSCTL_CONFIG) and
 * files (~/.aws/credentials, ~/.aws/config; ~/.qingstor/config.yaml). With no credentials:
 * MOKA_ERR_CONFIG listing what was looked at. */
moka_status moka_s3_config_resolve(const char *scheme, const char *endpoint_override,
                                   moka_s3_config *out, moka_err *err);

/* Parses "s3://bucket/key/prefix" (or qs://) into scheme, bucket and key (key may be ""). */
moka_status moka_s3_parse_url(const char *url, char *scheme, size_t scheme_n, char *bucket,
                              size_t bucket_n, char *key, size_t key_n, moka_err *err);

/* RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - . _ ~ (and '/' when keep_slash) becomes
 * %XX with upper-case hex. False when out (n bytes) is too small. */
bool moka_s3_uri_encode(const char *in, bool keep_slash, char *out, size_t n);

/* The canonical query string of n (name, value) pairs (value may be NULL for "name="): each
 * encoded, sorted by encoded name then value, joined "a=1&b=2". False when out is too small. */
bool moka_s3_canonical_query(const char *const *names, const char *const *values, int n, char *out,
                             size_t out_n);

/* Maps a failed response (HTTP status, S3 XML error body, may be NULL) for `method` on
 * <scheme>://bucket/key to a one-line message in err and returns its status (MOKA_ERR_IO). */
moka_status moka_s3_error_from_response(long http_status, const char *body, const char *method,
                                        const char *scheme, const char *bucket, const char *key,
                                        moka_err *err);

typedef struct moka_s3 moka_s3; /* one client; NOT thread-safe: one per worker thread */

/* Creates a client for cfg (copied); free with moka_s3_free. */
moka_status moka_s3_create(const moka_s3_config *cfg, moka_s3 **out, moka_err *err);
void moka_s3_free(moka_s3 *c);

/* Tuning, mostly for tests: retries after the first try (default 5) with exponential backoff
 * from base_ms (default 200) plus jitter; multipart part size (default 8 MiB, at least 5 MiB
 * unless allow_small, which the test server permits with --min-part-size); keys per list page
 * (default 1000). */
void moka_s3_set_retries(moka_s3 *c, int max_retries, int base_ms);
void moka_s3_set_part_size(moka_s3 *c, int64_t part_size, bool allow_small);
void moka_s3_set_max_keys(moka_s3 *c, int max_keys);
/* Body bytes received and requests sent by this client so far (for tests and summaries). */
int64_t moka_s3_bytes_received(const moka_s3 *c);
int64_t moka_s3_requests(const moka_s3 *c);

typedef struct moka_s3_object {
    char *key;
    int64_t size;
    char etag[80];
} moka_s3_object;

/* Lists every key under prefix (ListObjects V1 with marker, max-keys always sent, all pages).
 * *objs malloc'ed (free with moka_s3_objects_free). */
moka_status moka_s3_list(moka_s3 *c, const char *bucket, const char *prefix, moka_s3_object **objs,
                         int64_t *n, moka_err *err);
void moka_s3_objects_free(moka_s3_object *objs, int64_t n);
/* Size and ETag of one object; out->key is NULL. MOKA_ERR_IO "no such key s3://b/k" when
 * missing. */
moka_status moka_s3_head(moka_s3 *c, const char *bucket, const char *key, moka_s3_object *out,
                         moka_err *err);
/* Downloads to `path`: into "<path>.moka-part" (resumed with Range + If-Match on the ETag when
 * it exists from an interrupted run), verified (size; MD5 when the ETag is a plain MD5), then
 * renamed to path. `progress` (may be NULL) is called with bytes done so far. */
moka_status moka_s3_get_file(moka_s3 *c, const char *bucket, const char *key, const char *path,
                             void (*progress)(void *user, int64_t bytes), void *user,
                             moka_err *err);
/* The same when the caller already knows the object's size and ETag (from a listing or a HEAD
 * of its own): saves the HEAD request. If the object changed since, the If-Match/size/MD5
 * checks fail and nothing is written at `path`. */
moka_status moka_s3_get_file_known(moka_s3 *c, const char *bucket, const char *key,
                                   const moka_s3_object *known, const char *path,
                                   void (*progress)(void *user, int64_t bytes), void *user,
                                   moka_err *err);
/* Uploads a file: single PUT below part_size, else multipart (parts >= 5 MiB), checking the
 * returned ETags (MD5, and md5-of-md5s "-N" for multipart). */
moka_status moka_s3_put_file(moka_s3 *c, const char *path, const char *bucket, const char *key,
                             void (*progress)(void *user, int64_t bytes), void *user,
                             moka_err *err);
moka_status moka_s3_delete(moka_s3 *c, const char *bucket, const char *key, moka_err *err);

#endif /* MOKA_S3_H */
