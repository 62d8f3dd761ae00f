/* src/io/fetch.c -- data-layer sources from s3:// and qs:// URLs, cached by URL + ETag.
 *
 * See fetch.h for the cache layout. A single object costs one HEAD when cached and HEAD + GET
 * otherwise; a prefix costs the LIST pages plus one GET per object missing from its directory.
 */
#include "io/fetch.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/s3.h"
#include "moka/log.h"

#define FETCH_PATH_MAX 4096

bool moka_fetch_is_url(const char *source)
{
    return source && (strncmp(source, "s3://", 5) == 0 || strncmp(source, "qs://", 5) == 0);
}

static moka_status copy_out(const char *s, char *out, size_t n, moka_err *err)
{
    if (strlen(s) >= n) return moka_errf(err, MOKA_ERR_INVALID_ARG, "path too long: '%s'", s);
    memcpy(out, s, strlen(s) + 1);
    return MOKA_OK;
}

/* The cache root: ctx->cache_dir, else $HOME/.cache/moka. */
static moka_status cache_root(const moka_ctx *ctx, char *out, size_t n, moka_err *err)
{
    if (ctx && ctx->cache_dir && ctx->cache_dir[0]) return copy_out(ctx->cache_dir, out, n, err);
    const char *home = getenv("HOME");
    if (!home || !home[0])
        return moka_errf(err, MOKA_ERR_CONFIG,
                         "no cache directory for s3:// sources: HOME is not set (pass "
                         "--cache_dir=DIR)");
    if (snprintf(out, n, "%s/.cache/moka", home) >= (int)n)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "cache directory path too long");
    return MOKA_OK;
}

/* mkdir -p of every directory in `path` (the whole path when `last` is true, else up to the last
 * '/'). */
static moka_status make_dirs(const char *path, bool last, moka_err *err)
{
    char buf[FETCH_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "path too long: '%s'", path);
    size_t len = strlen(buf);
    if (!last) {
        char *slash = strrchr(buf, '/');
        if (!slash) return MOKA_OK;
        len = (size_t)(slash - buf);
        buf[len] = '\0';
    }
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        const char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            const int e = errno;
            buf[i] = c;
            return moka_errf(err, MOKA_ERR_IO, "cannot create cache directory '%s': %s", buf,
                             strerror(e));
        }
        buf[i] = c;
    }
    return MOKA_OK;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Incremental SHA-256 into 64 hex digits + NUL. */
typedef struct hasher {
    EVP_MD_CTX *md;
} hasher;

static moka_status hash_begin(hasher *h, moka_err *err)
{
    h->md = EVP_MD_CTX_new();
    if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->md);
        h->md = NULL;
        return moka_errf(err, MOKA_ERR_NOMEM, "cannot start a SHA-256 digest");
    }
    return MOKA_OK;
}

static void hash_add(hasher *h, const char *s) { EVP_DigestUpdate(h->md, s, strlen(s)); }

static void hash_end(hasher *h, char hex[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->md, d, &n);
    EVP_MD_CTX_free(h->md);
    h->md = NULL;
    for (unsigned int i = 0; i < n && i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    hex[64] = '\0';
}

/* Rejects relative paths that would leave the cache directory. */
static bool safe_relative(const char *rel)
{
    if (!rel[0] || rel[0] == '/') return false;
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        if ((len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.')) return false;
        p += len;
        if (*p == '/') p++;
    }
    return true;
}

/* Downloads bucket/key to path unless a whole copy is already there, logging either way. */
static moka_status fetch_one(moka_s3 *c, const char *scheme, const char *bucket, const char *key,
                             int64_t size, const char *path, moka_err *err)
{
    if (is_file(path)) {
        moka_logf(MOKA_LOG_INFO, "fetch", "using cached %s://%s/%s (%lld bytes) at %s", scheme,
                  bucket, key, (long long)size, path);
        return MOKA_OK;
    }
    MOKA_TRY(make_dirs(path, false, err));
    MOKA_TRY(moka_s3_get_file(c, bucket, key, path, NULL, NULL, err));
    moka_logf(MOKA_LOG_INFO, "fetch", "fetched %s://%s/%s (%lld bytes) into %s", scheme, bucket,
              key, (long long)size, path);
    return MOKA_OK;
}

static moka_status fetch_object(moka_s3 *c, const char *url, const char *scheme,
                                const char *bucket, const char *key, const char *root, char *local,
                                size_t local_n, moka_err *err)
{
    moka_s3_object obj = {0};
    MOKA_TRY(moka_s3_head(c, bucket, key, &obj, err));
    hasher h;
    MOKA_TRY(hash_begin(&h, err));
    hash_add(&h, url);
    hash_add(&h, "\n");
    hash_add(&h, obj.etag);
    char hex[65];
    hash_end(&h, hex);
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    char path[FETCH_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s/%s", root, hex, base) >= (int)sizeof path)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "cache path for %s is too long", url);
    MOKA_TRY(fetch_one(c, scheme, bucket, key, obj.size, path, err));
    return copy_out(path, local, local_n, err);
}

static moka_status fetch_prefix(moka_s3 *c, const char *url, const char *scheme,
                                const char *bucket, const char *prefix, const char *root,
                                char *local, size_t local_n, moka_err *err)
{
    moka_s3_object *objs = NULL;
    int64_t n = 0;
    MOKA_TRY(moka_s3_list(c, bucket, prefix, &objs, &n, err));
    moka_status st = MOKA_OK;
    int64_t files = 0;
    hasher h;
    if ((st = hash_begin(&h, err)) != MOKA_OK) goto done;
    hash_add(&h, url);
    hash_add(&h, "\n");
    for (int64_t i = 0; i < n; i++) {
        hash_add(&h, objs[i].key);
        hash_add(&h, "\t");
        hash_add(&h, objs[i].etag);
        hash_add(&h, "\n");
    }
    char hex[65], dir[FETCH_PATH_MAX];
    hash_end(&h, hex);
    if (snprintf(dir, sizeof dir, "%s/%s", root, hex) >= (int)sizeof dir) {
        st = moka_errf(err, MOKA_ERR_INVALID_ARG, "cache path for %s is too long", url);
        goto done;
    }
    if ((st = make_dirs(dir, true, err)) != MOKA_OK) goto done;
    const size_t plen = strlen(prefix);
    for (int64_t i = 0; i < n; i++) {
        const char *key = objs[i].key;
        const char *rel = key + (strncmp(key, prefix, plen) == 0 ? plen : 0);
        if (!rel[0] || rel[strlen(rel) - 1] == '/') continue; /* folder markers */
        if (!safe_relative(rel)) {
            st = moka_errf(err, MOKA_ERR_IO, "refusing to fetch %s://%s/%s: its key leaves the "
                           "prefix directory", scheme, bucket, key);
            goto done;
        }
        char path[FETCH_PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path) {
            st = moka_errf(err, MOKA_ERR_INVALID_ARG, "cache path for %s://%s/%s is too long",
                           scheme, bucket, key);
            goto done;
        }
        if ((st = fetch_one(c, scheme, bucket, key, objs[i].size, path, err)) != MOKA_OK)
            goto done;
        files++;
    }
    if (files == 0) {
        st = moka_errf(err, MOKA_ERR_IO, "no objects under %s", url);
        goto done;
    }
    st = copy_out(dir, local, local_n, err);
done:
    moka_s3_objects_free(objs, n);
    return st;
}

moka_status moka_fetch_source(const moka_ctx *ctx, const char *source, char *local, size_t local_n,
                              moka_err *err)
{
    if (!moka_fetch_is_url(source)) return copy_out(source ? source : "", local, local_n, err);
    char scheme[8], bucket[256], key[2048], root[FETCH_PATH_MAX];
    MOKA_TRY(moka_s3_parse_url(source, scheme, sizeof scheme, bucket, sizeof bucket, key,
                               sizeof key, err));
    MOKA_TRY(cache_root(ctx, root, sizeof root, err));
    moka_s3_config cfg;
    MOKA_TRY(moka_s3_config_resolve(scheme, NULL, &cfg, err));
    moka_s3 *c = NULL;
    MOKA_TRY(moka_s3_create(&cfg, &c, err));
    const size_t klen = strlen(key);
    moka_status st = (klen == 0 || key[klen - 1] == '/')
                         ? fetch_prefix(c, source, scheme, bucket, key, root, local, local_n, err)
                         : fetch_object(c, source, scheme, bucket, key, root, local, local_n, err);
    moka_s3_free(c);
    return st;
}
