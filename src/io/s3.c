/* src/io/s3.c -- S3 client over libcurl: configuration, signing inputs, list/head/get/put/delete.
 *
 * Request flow: build URL (endpoint + /bucket/encoded-key + ?canonical-query) -> curl with
 * CURLOPT_AWS_SIGV4 signs it (host, x-amz-date, x-amz-* headers, payload hash taken from our
 * x-amz-content-sha256 header) -> 5xx, timeouts and resets are retried with exponential backoff
 * and jitter (each try signed afresh, so x-amz-date stays current) -> a 307 is re-issued to the
 * Location host (signed again for that host) -> other failures map to one-line messages.
 */
#include "io/s3.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PART_SIZE (8 << 20)
#define MIN_PART_SIZE     (5 << 20)
#define MAX_PARTS         10000

struct moka_s3 {
    moka_s3_config cfg;
    CURL *curl;
    int max_retries, base_ms, max_keys;
    int64_t part_size;
    int64_t bytes_received, requests;
    unsigned rng;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static void copy_str(char *dst, size_t n, const char *src)
{
    if (n == 0) return;
    size_t len = strlen(src);
    if (len >= n) len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* One-shot digest (EVP_sha256 or EVP_md5) of a buffer into raw bytes; returns the length. */
static unsigned digest(const EVP_MD *md, const void *data, size_t n, unsigned char *out)
{
    unsigned len = 0;
    EVP_Digest(data, n, out, &len, md, NULL);
    return len;
}

static void digest_hex(const EVP_MD *md, const void *data, size_t n, char *out)
{
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned len = digest(md, data, n, raw);
    hex(raw, len, out);
}

/* A growable byte buffer, always NUL-terminated so XML can be scanned as a string. */
typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

static bool buf_append(buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

/* ---- pure parts: encoding, query strings, URLs --------------------------------------------- */

bool moka_s3_uri_encode(const char *in, bool keep_slash, char *out, size_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        const bool plain = isalnum(*p) && *p < 128;
        if (plain || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
            (keep_slash && *p == '/')) {
            if (o + 1 >= n) return false;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= n) return false;
            out[o++] = '%';
            out[o++] = digits[*p >> 4];
            out[o++] = digits[*p & 15];
        }
    }
    if (o >= n) return false;
    out[o] = '\0';
    return true;
}

typedef struct qpair {
    char *name, *value;
} qpair;

static int qpair_cmp(const void *a, const void *b)
{
    const qpair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

bool moka_s3_canonical_query(const char *const *names, const char *const *values, int n, char *out,
                             size_t out_n)
{
    bool ok = false;
    qpair *pairs = calloc(n > 0 ? (size_t)n : 1, sizeof *pairs);
    if (!pairs) return false;
    for (int i = 0; i < n; i++) {
        const char *v = values[i] ? values[i] : "";
        size_t nn = strlen(names[i]) * 3 + 1, vn = strlen(v) * 3 + 1;
        pairs[i].name = malloc(nn);
        pairs[i].value = malloc(vn);
        if (!pairs[i].name || !pairs[i].value) goto fail;
        moka_s3_uri_encode(names[i], false, pairs[i].name, nn);
        moka_s3_uri_encode(v, false, pairs[i].value, vn);
    }
    qsort(pairs, (size_t)n, sizeof *pairs, qpair_cmp);
    size_t o = 0;
    if (out_n == 0) goto fail;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        int w =
            snprintf(out + o, out_n - o, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
        if (w < 0 || (size_t)w >= out_n - o) goto fail;
        o += (size_t)w;
    }
    ok = true;
fail:
    for (int i = 0; i < n; i++) free(pairs[i].name), free(pairs[i].value);
    free(pairs);
    return ok;
}

moka_status moka_s3_parse_url(const char *url, char *scheme, size_t scheme_n, char *bucket,
                              size_t bucket_n, char *key, size_t key_n, moka_err *err)
{
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!sep)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "'%s': not an s3:// or qs:// URL",
                         url ? url : "(null)");
    size_t sl = (size_t)(sep - url);
    if (!((sl == 2 && strncmp(url, "s3", 2) == 0) || (sl == 2 && strncmp(url, "qs", 2) == 0)))
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "'%s': unknown URL scheme (want s3:// or qs://)", url);
    const char *b = sep + 3;
    const char *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (bl == 0) return moka_errf(err, MOKA_ERR_INVALID_ARG, "'%s': no bucket name", url);
    const char *k = slash ? slash + 1 : "";
    if (sl >= scheme_n || bl >= bucket_n || strlen(k) >= key_n)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "'%s': URL too long", url);
    for (size_t i = 0; i < bl; i++) {
        const char ch = b[i];
        if (!(isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_'))
            return moka_errf(err, MOKA_ERR_INVALID_ARG,
                             "'%s': bucket name may hold only letters, digits, '-', '.', '_'", url);
    }
    memcpy(scheme, url, sl);
    scheme[sl] = '\0';
    memcpy(bucket, b, bl);
    bucket[bl] = '\0';
    copy_str(key, key_n, k);
    return MOKA_OK;
}

/* ---- error messages ------------------------------------------------------------------------ */

/* Copies the text of the first <tag>...</tag> in xml into out; false when absent. XML entities
 * for the five predefined characters are decoded. */
static bool xml_text(const char *xml, const char *tag, char *out, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *s = xml ? strstr(xml, open) : NULL;
    if (!s) return false;
    s += strlen(open);
    const char *e = strstr(s, close);
    if (!e) return false;
    size_t o = 0;
    static const struct {
        const char *ent;
        char ch;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    while (s < e && o + 1 < n) {
        bool done = false;
        if (*s == '&') {
            for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
                size_t l = strlen(ents[i].ent);
                if ((size_t)(e - s) >= l && strncmp(s, ents[i].ent, l) == 0) {
                    out[o++] = ents[i].ch;
                    s += l;
                    done = true;
                    break;
                }
            }
        }
        if (!done) out[o++] = *s++;
    }
    out[o] = '\0';
    return true;
}

moka_status moka_s3_error_from_response(long http_status, const char *body, const char *method,
                                        const char *scheme, const char *bucket, const char *key,
                                        moka_err *err)
{
    char code[128] = "", message[256] = "", url[1200];
    xml_text(body, "Code", code, sizeof code);
    xml_text(body, "Message", message, sizeof message);
    snprintf(url, sizeof url, "%s://%s%s%s", scheme, bucket, key && *key ? "/" : "",
             key ? key : "");
    /* Responses to HEAD carry no body: the status alone names the problem. */
    if (!code[0] && http_status == 404)
        copy_str(code, sizeof code, key && *key ? "NoSuchKey" : "NoSuchBucket");
    if (!code[0] && http_status == 403) copy_str(code, sizeof code, "AccessDenied");

    if (strcmp(code, "SignatureDoesNotMatch") == 0)
        return moka_errf(err, MOKA_ERR_IO,
                         "access denied for %s: the secret key does not match "
                         "(SignatureDoesNotMatch)",
                         url);
    if (strcmp(code, "InvalidAccessKeyId") == 0)
        return moka_errf(err, MOKA_ERR_IO,
                         "access denied for %s: the access key id is not known to the server "
                         "(InvalidAccessKeyId)",
                         url);
    if (strcmp(code, "AccessDenied") == 0)
        return moka_errf(err, MOKA_ERR_IO,
                         "access denied for %s: the credentials lack permission (AccessDenied)",
                         url);
    if (strcmp(code, "RequestTimeTooSkewed") == 0)
        return moka_errf(err, MOKA_ERR_IO,
                         "%s for %s: this machine's clock differs too much from the server's; "
                         "correct the system time (RequestTimeTooSkewed)",
                         method, url);
    if (strcmp(code, "NoSuchBucket") == 0)
        return moka_errf(err, MOKA_ERR_IO, "no such bucket %s://%s (NoSuchBucket)", scheme, bucket);
    if (strcmp(code, "NoSuchKey") == 0) return moka_errf(err, MOKA_ERR_IO, "no such key %s", url);
    if (strcmp(code, "PreconditionFailed") == 0)
        return moka_errf(err, MOKA_ERR_IO,
                         "%s for %s: the object changed during the transfer "
                         "(PreconditionFailed)",
                         method, url);
    if (code[0])
        return moka_errf(err, MOKA_ERR_IO, "%s %s failed: HTTP %ld %s%s%s", method, url,
                         http_status, code, message[0] ? ": " : "", message);
    return moka_errf(err, MOKA_ERR_IO, "%s %s failed: HTTP %ld", method, url, http_status);
}

/* ---- configuration ------------------------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* Finds `name` in section `section` of an INI file (the AWS credentials/config format) and copies
 * its value; false when the file, section or name is absent. */
static bool ini_get(const char *path, const char *section, const char *name, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[4096];
    bool in = false, found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (*s == '#' || *s == ';' || !*s) continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (e) *e = '\0';
            in = strcmp(trim(s + 1), section) == 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || !eq) continue;
        *eq = '\0';
        if (strcmp(trim(s), name) == 0) {
            copy_str(out, n, trim(eq + 1));
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* Reads `name: value` from qsctl's flat YAML config (quotes around the value are dropped). */
static bool yaml_get(const char *path, const char *name, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *s = trim(line);
        char *colon = strchr(s, ':');
        if (*s == '#' || !colon) continue;
        *colon = '\0';
        if (strcmp(trim(s), name) != 0) continue;
        char *v = trim(colon + 1);
        size_t l = strlen(v);
        if (l >= 2 && (v[0] == '\'' || v[0] == '"') && v[l - 1] == v[0]) {
            v[l - 1] = '\0';
            v++;
        }
        copy_str(out, n, v);
        found = true;
    }
    fclose(f);
    return found;
}

static void set_from(char *dst, size_t n, const char *v)
{
    if (v && !*dst) copy_str(dst, n, v);
}

static void strip_trailing_slash(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/') s[--n] = '\0';
}

static moka_status resolve_s3(const char *override, moka_s3_config *c, moka_err *err)
{
    const char *home = env("HOME");
    const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
    char cred_path[1024], conf_path[1024], conf_section[300], endpoint[512] = "";
    snprintf(cred_path, sizeof cred_path, "%s",
             env("AWS_SHARED_CREDENTIALS_FILE") ? env("AWS_SHARED_CREDENTIALS_FILE") : "");
    if (!cred_path[0])
        snprintf(cred_path, sizeof cred_path, "%s/.aws/credentials", home ? home : "");
    snprintf(conf_path, sizeof conf_path, "%s",
             env("AWS_CONFIG_FILE") ? env("AWS_CONFIG_FILE") : "");
    if (!conf_path[0]) snprintf(conf_path, sizeof conf_path, "%s/.aws/config", home ? home : "");
    /* ~/.aws/config names profiles "[profile x]" except the default one. */
    if (strcmp(profile, "default") == 0)
        snprintf(conf_section, sizeof conf_section, "default");
    else
        snprintf(conf_section, sizeof conf_section, "profile %s", profile);

    /* Keys come as a pair from one place: the environment, else the credentials file, else the
     * config file, so a key id from one source is never paired with a secret from another. */
    if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
        copy_str(c->access_key, sizeof c->access_key, env("AWS_ACCESS_KEY_ID"));
        copy_str(c->secret_key, sizeof c->secret_key, env("AWS_SECRET_ACCESS_KEY"));
        set_from(c->session_token, sizeof c->session_token, env("AWS_SESSION_TOKEN"));
    } else {
        const char *paths[2] = {cred_path, conf_path};
        const char *sections[2] = {profile, conf_section};
        for (int i = 0; i < 2 && !c->access_key[0]; i++) {
            char id[128] = "", secret[256] = "";
            if (ini_get(paths[i], sections[i], "aws_access_key_id", id, sizeof id) &&
                ini_get(paths[i], sections[i], "aws_secret_access_key", secret, sizeof secret)) {
                copy_str(c->access_key, sizeof c->access_key, id);
                copy_str(c->secret_key, sizeof c->secret_key, secret);
                ini_get(paths[i], sections[i], "aws_session_token", c->session_token,
                        sizeof c->session_token);
            }
        }
    }
    if (!c->access_key[0])
        return moka_errf(err, MOKA_ERR_CONFIG,
                         "no credentials for s3://: looked at AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY, profile '%s' in %s and %s",
                         profile, cred_path, conf_path);

    set_from(c->region, sizeof c->region, env("AWS_REGION"));
    set_from(c->region, sizeof c->region, env("AWS_DEFAULT_REGION"));
    if (!c->region[0]) ini_get(conf_path, conf_section, "region", c->region, sizeof c->region);
    if (!c->region[0]) copy_str(c->region, sizeof c->region, "us-east-1");

    set_from(endpoint, sizeof endpoint, override);
    set_from(endpoint, sizeof endpoint, env("AWS_ENDPOINT_URL_S3"));
    set_from(endpoint, sizeof endpoint, env("AWS_ENDPOINT_URL"));
    if (!endpoint[0]) ini_get(conf_path, conf_section, "endpoint_url", endpoint, sizeof endpoint);
    if (endpoint[0]) {
        copy_str(c->endpoint, sizeof c->endpoint, endpoint);
        c->path_style = true;
    } else {
        snprintf(c->endpoint, sizeof c->endpoint, "https://s3.%s.amazonaws.com", c->region);
        c->path_style = false;
    }
    return MOKA_OK;
}

static moka_status resolve_qs(const char *override, moka_s3_config *c, moka_err *err)
{
    const char *home = env("HOME");
    char path[1024], host[256] = "", port[16] = "", protocol[16] = "";
    if (env("QSCTL_CONFIG"))
        copy_str(path, sizeof path, env("QSCTL_CONFIG"));
    else
        snprintf(path, sizeof path, "%s/.qingstor/config.yaml", home ? home : "");

    if (env("QSCTL_ACCESS_KEY_ID") && env("QSCTL_SECRET_ACCESS_KEY")) {
        copy_str(c->access_key, sizeof c->access_key, env("QSCTL_ACCESS_KEY_ID"));
        copy_str(c->secret_key, sizeof c->secret_key, env("QSCTL_SECRET_ACCESS_KEY"));
    } else {
        char id[128] = "", secret[256] = "";
        if (yaml_get(path, "access_key_id", id, sizeof id) &&
            yaml_get(path, "secret_access_key", secret, sizeof secret)) {
            copy_str(c->access_key, sizeof c->access_key, id);
            copy_str(c->secret_key, sizeof c->secret_key, secret);
        }
    }
    if (!c->access_key[0])
        return moka_errf(err, MOKA_ERR_CONFIG,
                         "no credentials for qs://: looked at QSCTL_ACCESS_KEY_ID and "
                         "QSCTL_SECRET_ACCESS_KEY, and access_key_id/secret_access_key in %s",
                         path);
    set_from(c->region, sizeof c->region, env("QSCTL_ZONE"));
    if (!c->region[0]) yaml_get(path, "zone", c->region, sizeof c->region);
    if (!c->region[0]) copy_str(c->region, sizeof c->region, "pek3b");
    set_from(host, sizeof host, env("QSCTL_HOST"));
    if (!host[0]) yaml_get(path, "host", host, sizeof host);
    if (!host[0]) copy_str(host, sizeof host, "qingstor.com");
    set_from(port, sizeof port, env("QSCTL_PORT"));
    if (!port[0]) yaml_get(path, "port", port, sizeof port);
    set_from(protocol, sizeof protocol, env("QSCTL_PROTOCOL"));
    if (!protocol[0]) yaml_get(path, "protocol", protocol, sizeof protocol);
    if (!protocol[0]) copy_str(protocol, sizeof protocol, "https");
    if (strcmp(protocol, "http") != 0 && strcmp(protocol, "https") != 0)
        return moka_errf(err, MOKA_ERR_CONFIG, "%s: protocol '%s' is neither http nor https", path,
                         protocol);
    if (override && *override) {
        copy_str(c->endpoint, sizeof c->endpoint, override);
    } else {
        const bool default_port = !port[0] ||
                                  (strcmp(protocol, "https") == 0 && strcmp(port, "443") == 0) ||
                                  (strcmp(protocol, "http") == 0 && strcmp(port, "80") == 0);
        snprintf(c->endpoint, sizeof c->endpoint, "%s://s3.%s.%s%s%s", protocol, c->region, host,
                 default_port ? "" : ":", default_port ? "" : port);
    }
    c->path_style = true;
    return MOKA_OK;
}

moka_status moka_s3_config_resolve(const char *scheme, const char *endpoint_override,
                                   moka_s3_config *out, moka_err *err)
{
    memset(out, 0, sizeof *out);
    if (!scheme || (strcmp(scheme, "s3") != 0 && strcmp(scheme, "qs") != 0))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "unknown URL scheme '%s' (want s3 or qs)",
                         scheme ? scheme : "(null)");
    copy_str(out->scheme, sizeof out->scheme, scheme);
    moka_status st = strcmp(scheme, "s3") == 0 ? resolve_s3(endpoint_override, out, err)
                                               : resolve_qs(endpoint_override, out, err);
    if (st != MOKA_OK) return st;
    strip_trailing_slash(out->endpoint);
    if (strncmp(out->endpoint, "http://", 7) != 0 && strncmp(out->endpoint, "https://", 8) != 0)
        return moka_errf(err, MOKA_ERR_CONFIG, "endpoint '%s' must start with http:// or https://",
                         out->endpoint);
    return MOKA_OK;
}

/* ---- the client ---------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

moka_status moka_s3_create(const moka_s3_config *cfg, moka_s3 **out, moka_err *err)
{
    *out = NULL;
    /* curl_global_init is not thread-safe, and workers may create their clients at once. */
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return moka_errf(err, MOKA_ERR_BACKEND, "libcurl failed to initialise");
    moka_s3 *c = calloc(1, sizeof *c);
    if (!c) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory creating an S3 client");
    c->cfg = *cfg;
    strip_trailing_slash(c->cfg.endpoint);
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        return moka_errf(err, MOKA_ERR_BACKEND, "libcurl could not create a handle");
    }
    c->max_retries = 5;
    c->base_ms = 200;
    c->max_keys = 1000;
    c->part_size = DEFAULT_PART_SIZE;
    c->rng = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)c;
    *out = c;
    return MOKA_OK;
}

void moka_s3_free(moka_s3 *c)
{
    if (!c) return;
    curl_easy_cleanup(c->curl);
    /* The secret should not outlive the client in freed heap memory. */
    volatile char *p = (volatile char *)&c->cfg;
    for (size_t i = 0; i < sizeof c->cfg; i++) p[i] = 0;
    free(c);
}

void moka_s3_set_retries(moka_s3 *c, int max_retries, int base_ms)
{
    c->max_retries = max_retries < 0 ? 0 : max_retries;
    c->base_ms = base_ms < 1 ? 1 : base_ms;
}

void moka_s3_set_part_size(moka_s3 *c, int64_t part_size, bool allow_small)
{
    if (!allow_small && part_size < MIN_PART_SIZE) part_size = MIN_PART_SIZE;
    c->part_size = part_size < 1 ? 1 : part_size;
}

void moka_s3_set_max_keys(moka_s3 *c, int max_keys)
{
    c->max_keys = max_keys < 1 ? 1 : (max_keys > 1000 ? 1000 : max_keys);
}

int64_t moka_s3_bytes_received(const moka_s3 *c) { return c->bytes_received; }
int64_t moka_s3_requests(const moka_s3 *c) { return c->requests; }

/* One request's description and its outcome. The body comes from memory (body, body_len) or is
 * empty; the response body goes to `sink` (a file) when set, else into `resp`. */
/* MD5 of a file being written, computed by a thread that reads it behind the writer. */
typedef struct hasher {
    pthread_t thread;
    int fd;
    atomic_llong avail; /* bytes of the file that are written and may be hashed */
    atomic_int done, invalid;
    int64_t pos;
    bool failed;
    EVP_MD_CTX *ctx;
} hasher;

static void hasher_publish(hasher *h, int64_t bytes) { atomic_store(&h->avail, (long long)bytes); }
/* The file was rewritten from the start: the digest no longer describes it. */
static void hasher_invalidate(hasher *h) { atomic_store(&h->invalid, 1); }

static void *hasher_main(void *u)
{
    hasher *h = u;
    const size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    if (!buf) h->failed = true;
    while (!h->failed && !atomic_load(&h->invalid)) {
        const int64_t avail = (int64_t)atomic_load(&h->avail);
        if (h->pos < avail) {
            const size_t want = (size_t)(avail - h->pos) < cap ? (size_t)(avail - h->pos) : cap;
            const ssize_t got = pread(h->fd, buf, want, (off_t)h->pos);
            if (got <= 0 || EVP_DigestUpdate(h->ctx, buf, (size_t)got) != 1) h->failed = true;
            else h->pos += got;
        } else if (atomic_load(&h->done)) {
            break;
        } else {
            struct timespec ts = {0, 100000}; /* 0.1 ms: the writer is a network transfer */
            nanosleep(&ts, NULL);
        }
    }
    free(buf);
    return NULL;
}

/* Starts hashing `path` from byte 0. false (and nothing to stop) when it cannot. */
static bool hasher_start(hasher *h, const char *path)
{
    memset(h, 0, sizeof *h);
    h->fd = open(path, O_RDONLY);
    h->ctx = EVP_MD_CTX_new();
    if (h->fd < 0 || !h->ctx || EVP_DigestInit_ex(h->ctx, EVP_md5(), NULL) != 1 ||
        pthread_create(&h->thread, NULL, hasher_main, h) != 0) {
        if (h->fd >= 0) close(h->fd);
        EVP_MD_CTX_free(h->ctx);
        return false;
    }
    return true;
}

/* Waits for the thread to hash up to `size` bytes; writes the hex MD5 and returns true when
 * the digest covers exactly the file's `size` bytes. Always releases the hasher. */
static bool hasher_finish(hasher *h, int64_t size, char *out_hex)
{
    hasher_publish(h, size);
    atomic_store(&h->done, 1);
    pthread_join(h->thread, NULL);
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    const bool ok = !h->failed && !atomic_load(&h->invalid) && h->pos == size &&
                    EVP_DigestFinal_ex(h->ctx, raw, &len) == 1;
    if (ok) hex(raw, len, out_hex);
    close(h->fd);
    EVP_MD_CTX_free(h->ctx);
    return ok;
}

typedef struct req {
    const char *method, *bucket, *key, *query; /* query: canonical, without '?' (may be "") */
    const char *body;
    size_t body_len;
    const char *range, *if_match;
    FILE *sink;
    int64_t sink_done; /* bytes already in sink before this request (for progress) */
    void (*progress)(void *user, int64_t bytes);
    void *user;
    /* Outcome. */
    long status;
    buf resp;
    char etag[80], location[1024], upload_id[512];
    int64_t content_length, received; /* received: body bytes written to sink by this try */
    bool sink_checked;
    /* Downloads: a thread hashing the part file (MD5) right behind the writer, so the check
     * after the download needs no second pass over the file and the hashing overlaps the
     * transfer. NULL when not hashing (no MD5 ETag, or a download resumed from an earlier run). */
    struct hasher *hash;
    char curl_error[CURL_ERROR_SIZE];
    size_t body_pos;
} req;

typedef struct xfer {
    req *r;
    moka_s3 *c;
} xfer;

static size_t on_read(char *dst, size_t size, size_t nmemb, void *user)
{
    req *r = user;
    size_t want = size * nmemb, left = r->body_len - r->body_pos;
    if (want > left) want = left;
    memcpy(dst, r->body + r->body_pos, want);
    r->body_pos += want;
    return want;
}

static size_t on_write(char *src, size_t size, size_t nmemb, void *user)
{
    xfer *x = user;
    req *r = x->r;
    size_t n = size * nmemb;
    /* Only a success body goes to the file; an error body is kept for its message. */
    if (r->sink && r->status == 0)
        curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->sink && (r->status == 200 || r->status == 206)) {
        /* A server that ignores Range sends the whole object: start the file over. */
        if (!r->sink_checked) {
            r->sink_checked = true;
            if (r->status == 200 && r->sink_done > 0) {
                if (fseeko(r->sink, 0, SEEK_SET) != 0 || ftruncate(fileno(r->sink), 0) != 0)
                    return 0;
                r->sink_done = 0;
                if (r->hash) hasher_invalidate(r->hash);
            }
        }
        if (fwrite(src, 1, n, r->sink) != n) return 0;
        if (r->hash) {
            /* The hasher reads the file: the bytes must be in it, not in the stream's buffer. */
            if (fflush(r->sink) != 0) return 0;
            hasher_publish(r->hash, (int64_t)ftello(r->sink));
        }
        r->received += (int64_t)n;
        x->c->bytes_received += (int64_t)n;
        if (r->progress) r->progress(r->user, r->sink_done + r->received);
        return n;
    }
    if (!buf_append(&r->resp, src, n)) return 0;
    x->c->bytes_received += (int64_t)n;
    return n;
}

static size_t on_header(char *src, size_t size, size_t nmemb, void *user)
{
    req *r = user;
    size_t n = size * nmemb;
    char line[1100];
    size_t l = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, src, l);
    line[l] = '\0';
    /* A new status line (after a 100 Continue, say) starts a fresh set of headers. */
    if (strncmp(line, "HTTP/", 5) == 0) {
        r->etag[0] = r->location[0] = '\0';
        r->content_length = -1;
        r->status = 0;
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon) return n;
    *colon = '\0';
    char *v = trim(colon + 1);
    if (strcasecmp(line, "ETag") == 0) {
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') v[vl - 1] = '\0', v++;
        copy_str(r->etag, sizeof r->etag, v);
    } else if (strcasecmp(line, "Location") == 0) {
        copy_str(r->location, sizeof r->location, v);
    } else if (strcasecmp(line, "Content-Length") == 0) {
        r->content_length = strtoll(v, NULL, 10);
    }
    return n;
}

/* scheme://host[:port] of a URL (the part before the path). */
static void url_origin(const char *url, char *out, size_t n)
{
    const char *s = strstr(url, "://");
    const char *p = s ? strchr(s + 3, '/') : NULL;
    size_t l = p ? (size_t)(p - url) : strlen(url);
    if (l >= n) l = n - 1;
    memcpy(out, url, l);
    out[l] = '\0';
}

static bool build_url(const moka_s3 *c, const char *origin, const req *r, char *url, size_t n)
{
    char *enc = malloc(strlen(r->key) * 3 + 1);
    if (!enc) return false;
    moka_s3_uri_encode(r->key, true, enc, strlen(r->key) * 3 + 1);
    int w;
    if (c->cfg.path_style) {
        w = snprintf(url, n, "%s/%s%s%s%s%s", origin, r->bucket, *r->key ? "/" : "", enc,
                     *r->query ? "?" : "", r->query);
    } else {
        /* Virtual-hosted style: the bucket becomes the first label of the host. */
        const char *s = strstr(origin, "://");
        w = snprintf(url, n, "%.*s%s.%s/%s%s%s", (int)(s - origin + 3), origin, r->bucket, s + 3,
                     enc, *r->query ? "?" : "", r->query);
    }
    free(enc);
    return w > 0 && (size_t)w < n;
}

static bool retryable_curl(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_PARTIAL_FILE ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_COULDNT_RESOLVE_HOST;
}

static void backoff(moka_s3 *c, int attempt)
{
    /* Exponential growth, capped, plus up to 50% jitter so parallel workers spread out. */
    long ms = (long)c->base_ms << (attempt < 10 ? attempt : 10);
    if (ms > 20000) ms = 20000;
    c->rng = c->rng * 1103515245u + 12345u;
    ms += (long)((c->rng >> 8) % (unsigned)(ms / 2 + 1));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends one request once (following a 307 by re-issuing to the Location host). Returns the curl
 * code; r->status holds the HTTP status. */
static CURLcode send_once(moka_s3 *c, req *r)
{
    char origin[600], url[8192];
    copy_str(origin, sizeof origin, c->cfg.endpoint);
    CURLcode rc = CURLE_OK;
    for (int redirect = 0; redirect < 4; redirect++) {
        if (!build_url(c, origin, r, url, sizeof url)) return CURLE_URL_MALFORMAT;
        CURL *h = c->curl;
        curl_easy_reset(h);
        char sigv4[128], payload_hdr[128], range_hdr[128], ifm_hdr[200], token_hdr[2100];
        snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", c->cfg.region);
        char sha[65];
        digest_hex(EVP_sha256(), r->body ? r->body : "", r->body_len, sha);
        snprintf(payload_hdr, sizeof payload_hdr, "x-amz-content-sha256: %s", sha);
        struct curl_slist *hdrs = curl_slist_append(NULL, payload_hdr);
        /* No "Expect:" blanking here: curl 7.88 would sign the empty header without sending it,
         * and the server rejects the signature. */
        if (r->range) {
            snprintf(range_hdr, sizeof range_hdr, "Range: %s", r->range);
            hdrs = curl_slist_append(hdrs, range_hdr);
        }
        if (r->if_match) {
            snprintf(ifm_hdr, sizeof ifm_hdr, "If-Match: \"%s\"", r->if_match);
            hdrs = curl_slist_append(hdrs, ifm_hdr);
        }
        if (c->cfg.session_token[0]) {
            snprintf(token_hdr, sizeof token_hdr, "x-amz-security-token: %s", c->cfg.session_token);
            hdrs = curl_slist_append(hdrs, token_hdr);
        }
        if (r->body) hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
        xfer x = {r, c};
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->cfg.access_key);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->cfg.secret_key);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        /* A stalled transfer (under 1 KB/s for 60 s) counts as a timeout and is retried. */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_error);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        /* Large receive chunks: fewer callbacks, writes and hasher wake-ups per object. */
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024L);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        if (strcmp(r->method, "HEAD") == 0) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (r->body) {
            r->body_pos = 0;
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, r);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
            if (strcmp(r->method, "PUT") != 0)
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        } else if (strcmp(r->method, "GET") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        }
        r->status = 0;
        r->received = 0;
        r->sink_checked = false;
        r->resp.len = 0;
        if (r->resp.data) r->resp.data[0] = '\0';
        r->curl_error[0] = '\0';
        r->content_length = -1;
        c->requests++;
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        curl_slist_free_all(hdrs);
        /* Clear the credentials from the handle as soon as they are no longer needed. */
        curl_easy_setopt(h, CURLOPT_USERNAME, "");
        curl_easy_setopt(h, CURLOPT_PASSWORD, "");
        if (rc != CURLE_OK || r->status != 307 || !r->location[0]) return rc;
        url_origin(r->location, origin, sizeof origin);
    }
    return rc;
}

/* Sends a request with retries. On success (2xx) returns MOKA_OK; else an error mapped from
 * the response, or "cannot reach <endpoint>" for transport failures. `retry_hook` (may be NULL)
 * runs before each retry so a download can move its Range forward. */
static moka_status perform(moka_s3 *c, req *r, bool (*retry_hook)(req *r, void *u), void *hook_u,
                           moka_err *err)
{
    for (int attempt = 0;; attempt++) {
        CURLcode rc = send_once(c, r);
        const bool transport = rc != CURLE_OK;
        if (!transport && r->status >= 200 && r->status < 300) return MOKA_OK;
        const bool retry = transport ? retryable_curl(rc) : (r->status >= 500 || r->status == 429);
        if (retry && attempt < c->max_retries && (!retry_hook || retry_hook(r, hook_u))) {
            backoff(c, attempt);
            continue;
        }
        if (transport) {
            const char *why = r->curl_error[0] ? r->curl_error : curl_easy_strerror(rc);
            if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                rc == CURLE_OPERATION_TIMEDOUT)
                return moka_errf(err, MOKA_ERR_IO, "cannot reach %s: %s (after %d tries)",
                                 c->cfg.endpoint, why, attempt + 1);
            return moka_errf(err, MOKA_ERR_IO,
                             "%s %s://%s/%s: transfer failed: %s (after %d tries)", r->method,
                             c->cfg.scheme, r->bucket, r->key, why, attempt + 1);
        }
        return moka_s3_error_from_response(r->status, r->resp.data, r->method, c->cfg.scheme,
                                           r->bucket, r->key, err);
    }
}

/* ---- operations ---------------------------------------------------------------------------- */

void moka_s3_objects_free(moka_s3_object *objs, int64_t n)
{
    if (!objs) return;
    for (int64_t i = 0; i < n; i++) free(objs[i].key);
    free(objs);
}

moka_status moka_s3_list(moka_s3 *c, const char *bucket, const char *prefix, moka_s3_object **objs,
                         int64_t *n, moka_err *err)
{
    *objs = NULL;
    *n = 0;
    moka_status st = MOKA_OK;
    moka_s3_object *list = NULL;
    int64_t count = 0, cap = 0;
    char *marker = strdup("");
    req r = {0};
    char *query = NULL;
    if (!marker) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory listing %s", bucket);
    for (;;) {
        char max_keys[16];
        snprintf(max_keys, sizeof max_keys, "%d", c->max_keys);
        const char *names[3] = {"max-keys", "prefix", "marker"};
        const char *values[3] = {max_keys, prefix ? prefix : "", marker};
        const int nq = marker[0] ? 3 : 2;
        size_t qn = (strlen(values[1]) + strlen(marker)) * 3 + 64;
        free(query);
        query = malloc(qn);
        if (!query || !moka_s3_canonical_query(names, values, nq, query, qn)) {
            st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory listing %s", bucket);
            goto fail;
        }
        r.method = "GET";
        r.bucket = bucket;
        r.key = "";
        r.query = query;
        st = perform(c, &r, NULL, NULL, err);
        if (st != MOKA_OK) goto fail;
        /* Walk <Contents> entries; keys are XML-escaped. */
        const char *p = r.resp.data ? r.resp.data : "";
        char last[2048] = "";
        while ((p = strstr(p, "<Contents>")) != NULL) {
            const char *end = strstr(p, "</Contents>");
            if (!end) break;
            size_t elen = (size_t)(end - p);
            char *entry = malloc(elen + 1);
            char *key = malloc(elen + 1);
            if (!entry || !key) {
                free(entry), free(key);
                st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory listing %s", bucket);
                goto fail;
            }
            memcpy(entry, p, elen);
            entry[elen] = '\0';
            char size[32] = "0", etag[96] = "";
            xml_text(entry, "Key", key, elen + 1);
            xml_text(entry, "Size", size, sizeof size);
            xml_text(entry, "ETag", etag, sizeof etag);
            free(entry);
            if (count == cap) {
                cap = cap ? cap * 2 : 256;
                moka_s3_object *nl = realloc(list, (size_t)cap * sizeof *list);
                if (!nl) {
                    free(key);
                    st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory listing %s", bucket);
                    goto fail;
                }
                list = nl;
            }
            moka_s3_object *o = &list[count++];
            o->key = key;
            o->size = strtoll(size, NULL, 10);
            const char *e = etag;
            size_t el = strlen(e);
            if (el >= 2 && e[0] == '"' && e[el - 1] == '"') {
                etag[el - 1] = '\0';
                e++;
            }
            copy_str(o->etag, sizeof o->etag, e);
            copy_str(last, sizeof last, key);
            p = end;
        }
        char truncated[16] = "false", next[2048] = "";
        xml_text(r.resp.data, "IsTruncated", truncated, sizeof truncated);
        if (strcmp(truncated, "true") != 0) break;
        /* V1 returns NextMarker only with a delimiter; otherwise the last key is the marker. */
        if (!xml_text(r.resp.data, "NextMarker", next, sizeof next) || !next[0])
            copy_str(next, sizeof next, last);
        if (!next[0] || strcmp(next, marker) == 0) {
            st =
                moka_errf(err, MOKA_ERR_IO, "listing %s://%s/%s: the server's pages do not advance",
                          c->cfg.scheme, bucket, prefix ? prefix : "");
            goto fail;
        }
        free(marker);
        marker = strdup(next);
        if (!marker) {
            st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory listing %s", bucket);
            goto fail;
        }
    }
    *objs = list;
    *n = count;
    list = NULL;
fail:
    moka_s3_objects_free(list, count);
    free(marker);
    free(query);
    free(r.resp.data);
    return st;
}

moka_status moka_s3_head(moka_s3 *c, const char *bucket, const char *key, moka_s3_object *out,
                         moka_err *err)
{
    memset(out, 0, sizeof *out);
    req r = {.method = "HEAD", .bucket = bucket, .key = key, .query = ""};
    moka_status st = perform(c, &r, NULL, NULL, err);
    free(r.resp.data);
    if (st != MOKA_OK && r.status == 404) {
        /* A HEAD answer has no body to say whether the key or the whole bucket is missing: ask
         * the bucket, so an unknown bucket gets its own message. */
        req b = {.method = "GET", .bucket = bucket, .key = "", .query = "max-keys=1"};
        moka_err berr;
        if (perform(c, &b, NULL, NULL, &berr) != MOKA_OK && strstr(berr.msg, "(NoSuchBucket)"))
            if (err) *err = berr;
        free(b.resp.data);
        return st;
    }
    if (st != MOKA_OK) return st;
    out->size = r.content_length;
    copy_str(out->etag, sizeof out->etag, r.etag);
    return MOKA_OK;
}

/* True when an ETag is a plain MD5 (32 hex digits), as for objects not uploaded in parts. */
static bool etag_is_md5(const char *etag)
{
    if (strlen(etag) != 32) return false;
    for (int i = 0; i < 32; i++)
        if (!isxdigit((unsigned char)etag[i])) return false;
    return true;
}

static bool file_md5(const char *path, char *out_hex)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    unsigned char chunk[1 << 16];
    size_t got;
    while (ok && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = EVP_DigestUpdate(ctx, chunk, got);
    ok = ok && !ferror(f);
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, raw, &len);
    if (ok) hex(raw, len, out_hex);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return ok;
}

typedef struct get_state {
    char range[64];
    int64_t total;
} get_state;

/* Before a retry of a ranged GET: continue from what the part file already holds. */
static bool get_retry(req *r, void *u)
{
    get_state *g = u;
    fflush(r->sink);
    r->sink_done += r->received;
    if (r->sink_done >= g->total) return false;
    snprintf(g->range, sizeof g->range, "bytes=%lld-", (long long)r->sink_done);
    r->range = g->range;
    return true;
}

moka_status moka_s3_get_file(moka_s3 *c, const char *bucket, const char *key, const char *path,
                             void (*progress)(void *user, int64_t bytes), void *user, moka_err *err)
{
    moka_s3_object head;
    MOKA_TRY(moka_s3_head(c, bucket, key, &head, err));
    return moka_s3_get_file_known(c, bucket, key, &head, path, progress, user, err);
}

moka_status moka_s3_get_file_known(moka_s3 *c, const char *bucket, const char *key,
                                   const moka_s3_object *known, const char *path,
                                   void (*progress)(void *user, int64_t bytes), void *user,
                                   moka_err *err)
{
    moka_s3_object head = *known;
    size_t pl = strlen(path) + 16;
    char *part = malloc(pl);
    if (!part) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory downloading to '%s'", path);
    snprintf(part, pl, "%s.moka-part", path);
    moka_status st = MOKA_OK;
    hasher hash;
    bool hashing = false;
    req r = {.method = "GET",
             .bucket = bucket,
             .key = key,
             .query = "",
             .progress = progress,
             .user = user};
    get_state g = {.total = head.size};
    FILE *f = NULL;
    struct stat sb;
    int64_t have = stat(part, &sb) == 0 ? (int64_t)sb.st_size : 0;
    /* A part file larger than the object belongs to some other object: start over. */
    if (have > head.size) have = 0;
    f = fopen(part, have > 0 ? "r+b" : "wb");
    if (!f) {
        st = moka_errf(err, MOKA_ERR_IO, "'%s': cannot create: %s", part, strerror(errno));
        goto fail;
    }
    for (int restart = 0; restart < 2; restart++) {
        /* Hash while downloading only a file written from its first byte in this call. */
        if (hashing) {
            hasher_invalidate(&hash);
        } else if (have == 0 && etag_is_md5(head.etag) && hasher_start(&hash, part)) {
            hashing = true;
            r.hash = &hash;
        }
        if (fseeko(f, (off_t)have, SEEK_SET) != 0 || ftruncate(fileno(f), (off_t)have) != 0) {
            st = moka_errf(err, MOKA_ERR_IO, "'%s': cannot seek: %s", part, strerror(errno));
            goto fail;
        }
        r.sink = f;
        r.sink_done = have;
        r.range = NULL;
        r.if_match = head.etag[0] ? head.etag : NULL;
        if (have > 0) {
            snprintf(g.range, sizeof g.range, "bytes=%lld-", (long long)have);
            r.range = g.range;
        }
        if (have == head.size) break; /* complete from an earlier run: only verify */
        st = perform(c, &r, get_retry, &g, err);
        if (st == MOKA_OK) break;
        /* The object changed since the part file was written (If-Match failed): refetch it. */
        if (r.status == 412 && restart == 0 && have > 0) {
            have = 0;
            continue;
        }
        goto fail;
    }
    /* No fsync: the guarantee is against interrupted processes (the file only gets its name
     * once complete and verified), as with curl or aws s3 cp; syncing a 200 MiB download would
     * cost more than the transfer itself. */
    if (fflush(f) != 0) {
        st = moka_errf(err, MOKA_ERR_IO, "'%s': write failed: %s", part, strerror(errno));
        goto fail;
    }
    fclose(f);
    f = NULL;
    if (stat(part, &sb) != 0 || (int64_t)sb.st_size != head.size) {
        st = moka_errf(err, MOKA_ERR_IO, "%s://%s/%s: got %lld bytes, want %lld", c->cfg.scheme,
                       bucket, key, (long long)(stat(part, &sb) == 0 ? sb.st_size : -1),
                       (long long)head.size);
        goto fail;
    }
    if (etag_is_md5(head.etag)) {
        char md5[33];
        unsigned char raw[EVP_MAX_MD_SIZE];
        unsigned rawlen = 0;
        (void)raw;
        (void)rawlen;
        const bool streamed = hashing && hasher_finish(&hash, head.size, md5);
        hashing = false;
        if (!streamed && !file_md5(part, md5)) {
            st = moka_errf(err, MOKA_ERR_IO, "'%s': cannot read back: %s", part, strerror(errno));
            goto fail;
        }
        if (strcasecmp(md5, head.etag) != 0) {
            /* Corrupt data must not be resumed next time either. */
            unlink(part);
            st = moka_errf(err, MOKA_ERR_IO,
                           "%s://%s/%s: downloaded data has MD5 %s, the ETag "
                           "says %s",
                           c->cfg.scheme, bucket, key, md5, head.etag);
            goto fail;
        }
    }
    if (rename(part, path) != 0) {
        st = moka_errf(err, MOKA_ERR_IO, "cannot rename '%s' to '%s': %s", part, path,
                       strerror(errno));
        goto fail;
    }
    if (progress) progress(user, head.size);
fail:
    if (hashing) {
        char ignored[33];
        hasher_invalidate(&hash);
        (void)hasher_finish(&hash, 0, ignored);
    }
    if (f) fclose(f);
    free(r.resp.data);
    free(part);
    return st;
}

static moka_status put_single(moka_s3 *c, const char *bucket, const char *key, const char *data,
                              size_t len, moka_err *err)
{
    req r = {.method = "PUT",
             .bucket = bucket,
             .key = key,
             .query = "",
             .body = data ? data : "",
             .body_len = len};
    moka_status st = perform(c, &r, NULL, NULL, err);
    char md5[33];
    digest_hex(EVP_md5(), data ? data : "", len, md5);
    if (st == MOKA_OK && strcasecmp(r.etag, md5) != 0)
        st = moka_errf(err, MOKA_ERR_IO,
                       "PUT %s://%s/%s: the server's ETag '%s' is not the MD5 "
                       "%s of the data sent",
                       c->cfg.scheme, bucket, key, r.etag, md5);
    free(r.resp.data);
    return st;
}

static moka_status put_multipart(moka_s3 *c, FILE *f, const char *path, int64_t size,
                                 const char *bucket, const char *key,
                                 void (*progress)(void *user, int64_t bytes), void *user,
                                 moka_err *err)
{
    int64_t part_size = c->part_size;
    while ((size + part_size - 1) / part_size > MAX_PARTS) part_size *= 2;
    const int nparts = (int)((size + part_size - 1) / part_size);
    moka_status st = MOKA_OK;
    char *data = malloc((size_t)part_size);
    unsigned char *md5s = malloc((size_t)nparts * 16);
    buf xml = {0};
    req r = {0};
    char upload_id[512] = "", query[1024];
    if (!data || !md5s) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory uploading '%s'", path);
        goto fail;
    }
    const char *n_uploads[1] = {"uploads"};
    const char *v_uploads[1] = {""};
    moka_s3_canonical_query(n_uploads, v_uploads, 1, query, sizeof query);
    r = (req){
        .method = "POST", .bucket = bucket, .key = key, .query = query, .body = "", .body_len = 0};
    st = perform(c, &r, NULL, NULL, err);
    if (st != MOKA_OK) goto fail;
    if (!xml_text(r.resp.data, "UploadId", upload_id, sizeof upload_id) || !upload_id[0]) {
        st = moka_errf(err, MOKA_ERR_IO, "POST %s://%s/%s?uploads: no UploadId in the answer",
                       c->cfg.scheme, bucket, key);
        goto fail;
    }
    buf_append(&xml, "<CompleteMultipartUpload>", 25);
    for (int i = 0; i < nparts; i++) {
        const int64_t off = (int64_t)i * part_size;
        const size_t len = (size_t)(size - off < part_size ? size - off : part_size);
        if (fread(data, 1, len, f) != len) {
            st = moka_errf(err, MOKA_ERR_IO, "'%s': read failed (file changed during upload?)",
                           path);
            goto abort;
        }
        char num[16], md5[33];
        snprintf(num, sizeof num, "%d", i + 1);
        const char *names[2] = {"partNumber", "uploadId"};
        const char *values[2] = {num, upload_id};
        moka_s3_canonical_query(names, values, 2, query, sizeof query);
        free(r.resp.data);
        r = (req){.method = "PUT",
                  .bucket = bucket,
                  .key = key,
                  .query = query,
                  .body = data,
                  .body_len = len};
        st = perform(c, &r, NULL, NULL, err);
        if (st != MOKA_OK) goto abort;
        digest(EVP_md5(), data, len, md5s + 16 * i);
        hex(md5s + 16 * i, 16, md5);
        if (strcasecmp(r.etag, md5) != 0) {
            st = moka_errf(err, MOKA_ERR_IO,
                           "PUT %s://%s/%s part %d: the server's ETag '%s' is "
                           "not the MD5 %s of the data sent",
                           c->cfg.scheme, bucket, key, i + 1, r.etag, md5);
            goto abort;
        }
        char entry[128];
        int w = snprintf(entry, sizeof entry,
                         "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1, md5);
        if (!buf_append(&xml, entry, (size_t)w)) {
            st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory uploading '%s'", path);
            goto abort;
        }
        if (progress) progress(user, off + (int64_t)len);
    }
    if (!buf_append(&xml, "</CompleteMultipartUpload>", 26)) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory uploading '%s'", path);
        goto abort;
    }
    {
        const char *names[1] = {"uploadId"};
        const char *values[1] = {upload_id};
        moka_s3_canonical_query(names, values, 1, query, sizeof query);
        free(r.resp.data);
        r = (req){.method = "POST",
                  .bucket = bucket,
                  .key = key,
                  .query = query,
                  .body = xml.data,
                  .body_len = xml.len};
        st = perform(c, &r, NULL, NULL, err);
        if (st != MOKA_OK) goto abort;
        /* A 200 can still carry an <Error> body for CompleteMultipartUpload. */
        char code[128] = "", etag[96] = "", want[48];
        if (xml_text(r.resp.data, "Code", code, sizeof code)) {
            st = moka_s3_error_from_response(500, r.resp.data, "POST", c->cfg.scheme, bucket, key,
                                             err);
            goto abort;
        }
        xml_text(r.resp.data, "ETag", etag, sizeof etag);
        char whole[33];
        digest_hex(EVP_md5(), md5s, (size_t)nparts * 16, whole);
        snprintf(want, sizeof want, "%s-%d", whole, nparts);
        const char *e = etag;
        size_t el = strlen(e);
        if (el >= 2 && e[0] == '"' && e[el - 1] == '"') etag[el - 1] = '\0', e++;
        if (strcasecmp(e, want) != 0) {
            st = moka_errf(err, MOKA_ERR_IO,
                           "multipart upload of %s://%s/%s: the server's ETag "
                           "'%s' is not '%s'",
                           c->cfg.scheme, bucket, key, e, want);
            goto fail;
        }
    }
    goto fail;
abort : {
    /* Leave no orphaned parts behind; a failure here changes nothing for the caller. */
    const char *names[1] = {"uploadId"};
    const char *values[1] = {upload_id};
    moka_s3_canonical_query(names, values, 1, query, sizeof query);
    req a = {.method = "DELETE", .bucket = bucket, .key = key, .query = query};
    send_once(c, &a);
    free(a.resp.data);
}
fail:
    free(r.resp.data);
    free(xml.data);
    free(md5s);
    free(data);
    return st;
}

moka_status moka_s3_put_file(moka_s3 *c, const char *path, const char *bucket, const char *key,
                             void (*progress)(void *user, int64_t bytes), void *user, moka_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return moka_errf(err, MOKA_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
    struct stat sb;
    moka_status st = MOKA_OK;
    char *data = NULL;
    if (fstat(fileno(f), &sb) != 0) {
        st = moka_errf(err, MOKA_ERR_IO, "'%s': cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    const int64_t size = (int64_t)sb.st_size;
    if (size >= c->part_size && size > 0) {
        st = put_multipart(c, f, path, size, bucket, key, progress, user, err);
        goto fail;
    }
    data = malloc(size > 0 ? (size_t)size : 1);
    if (!data) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory uploading '%s'", path);
        goto fail;
    }
    if (fread(data, 1, (size_t)size, f) != (size_t)size) {
        st = moka_errf(err, MOKA_ERR_IO, "'%s': read failed", path);
        goto fail;
    }
    st = put_single(c, bucket, key, data, (size_t)size, err);
    if (st == MOKA_OK && progress) progress(user, size);
fail:
    free(data);
    fclose(f);
    return st;
}

moka_status moka_s3_delete(moka_s3 *c, const char *bucket, const char *key, moka_err *err)
{
    req r = {.method = "DELETE", .bucket = bucket, .key = key, .query = ""};
    moka_status st = perform(c, &r, NULL, NULL, err);
    free(r.resp.data);
    return st;
}
