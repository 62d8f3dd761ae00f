/* src/io/transfer.c -- planning for `moka cp` (see transfer.h): MD5, ETags, path mapping, plans.
 *
 * MD5 is RFC 1321: 64-byte blocks, four rounds of 16 steps a = b + ((a + F(b,c,d) + M[g] + K[i])
 * <<< s[i]), little-endian words, the message padded with 0x80, zeros and its bit length.
 */
#include "io/transfer.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- MD5 ---- */

static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391};
static const uint8_t md5_s[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                  5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_block(uint32_t h[4], const uint8_t *p)
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++)
        m[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16)
            f = (b & c) | (~b & d), g = i;
        else if (i < 32)
            f = (d & b) | (~d & c), g = (5 * i + 1) & 15;
        else if (i < 48)
            f = b ^ c ^ d, g = (3 * i + 5) & 15;
        else
            f = c ^ (b | ~d), g = (7 * i) & 15;
        const uint32_t t = d;
        d = c;
        c = b;
        const uint32_t x = a + f + md5_k[i] + m[g];
        b = b + (x << md5_s[i] | x >> (32 - md5_s[i]));
        a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d;
}

void moka_transfer_md5_init(moka_transfer_md5 *m)
{
    m->h[0] = 0x67452301, m->h[1] = 0xefcdab89, m->h[2] = 0x98badcfe, m->h[3] = 0x10325476;
    m->nbytes = 0;
}

void moka_transfer_md5_update(moka_transfer_md5 *m, const void *data, size_t n)
{
    const uint8_t *p = data;
    size_t have = (size_t)(m->nbytes & 63);
    m->nbytes += n;
    if (have) {
        const size_t take = n < 64 - have ? n : 64 - have;
        memcpy(m->buf + have, p, take);
        p += take, n -= take, have += take;
        if (have < 64) return;
        md5_block(m->h, m->buf);
    }
    for (; n >= 64; p += 64, n -= 64) md5_block(m->h, p);
    memcpy(m->buf, p, n);
}

void moka_transfer_md5_final(moka_transfer_md5 *m, uint8_t out[16])
{
    const uint64_t bits = m->nbytes * 8;
    static const uint8_t pad[64] = {0x80};
    const size_t have = (size_t)(m->nbytes & 63);
    moka_transfer_md5_update(m, pad, have < 56 ? 56 - have : 120 - have);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (8 * i));
    moka_transfer_md5_update(m, len, 8);
    for (int i = 0; i < 16; i++) out[i] = (uint8_t)(m->h[i / 4] >> (8 * (i % 4)));
}

void moka_transfer_hex(const uint8_t d[16], char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) out[2 * i] = hx[d[i] >> 4], out[2 * i + 1] = hx[d[i] & 15];
    out[32] = '\0';
}

moka_status moka_transfer_file_etag(const char *path, int64_t part_size, char *out, size_t out_n,
                                    moka_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return moka_errf(err, MOKA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    enum { BUF = 1 << 16 };
    uint8_t *buf = malloc(BUF);
    if (!buf) {
        fclose(f);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory hashing %s", path);
    }
    /* `whole` hashes the file (plain ETag) or the concatenated part digests (multipart). */
    moka_transfer_md5 whole, part;
    moka_transfer_md5_init(&whole);
    moka_transfer_md5_init(&part);
    int64_t in_part = 0, nparts = 0;
    size_t got;
    uint8_t d[16];
    while ((got = fread(buf, 1, BUF, f)) > 0) {
        size_t off = 0;
        while (off < got) {
            size_t take = got - off;
            if (part_size > 0 && (int64_t)take > part_size - in_part)
                take = (size_t)(part_size - in_part);
            moka_transfer_md5_update(part_size > 0 ? &part : &whole, buf + off, take);
            off += take;
            in_part += (int64_t)take;
            if (part_size > 0 && in_part == part_size) {
                moka_transfer_md5_final(&part, d);
                moka_transfer_md5_update(&whole, d, 16);
                moka_transfer_md5_init(&part);
                in_part = 0;
                nparts++;
            }
        }
    }
    const bool bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) return moka_errf(err, MOKA_ERR_IO, "cannot read %s", path);
    /* A trailing partial part, or the single (empty) part of an empty file. */
    if (part_size > 0 && (in_part > 0 || nparts == 0)) {
        moka_transfer_md5_final(&part, d);
        moka_transfer_md5_update(&whole, d, 16);
        nparts++;
    }
    moka_transfer_md5_final(&whole, d);
    char hex[33];
    moka_transfer_hex(d, hex);
    const int w = part_size > 0 ? snprintf(out, out_n, "%s-%lld", hex, (long long)nparts)
                                : snprintf(out, out_n, "%s", hex);
    if (w < 0 || (size_t)w >= out_n)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "ETag buffer too small");
    return MOKA_OK;
}

int moka_transfer_etag_parts(const char *etag, char *out, size_t out_n)
{
    if (strncmp(etag, "W/", 2) == 0) etag += 2;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') etag++, n -= 2;
    if (n >= out_n) n = out_n - 1;
    memcpy(out, etag, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (out[i] >= 'A' && out[i] <= 'F') out[i] = (char)(out[i] - 'A' + 'a');
    for (int i = 0; i < 32; i++)
        if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'))) return -1;
    if (out[32] == '\0') return 0;
    if (out[32] != '-' || !out[33]) return -1;
    char *end;
    const long parts = strtol(out + 33, &end, 10);
    return *end || parts < 1 || parts > 100000 ? -1 : (int)parts;
}

moka_status moka_transfer_compare(const char *path, int64_t local_size, int64_t size,
                                  const char *etag, int64_t part_size_hint,
                                  moka_transfer_cmp *out, moka_err *err)
{
    *out = MOKA_CMP_DIFFERENT;
    if (local_size != size) return MOKA_OK;
    char want[96], got[48];
    const int parts = moka_transfer_etag_parts(etag, want, sizeof want);
    if (parts < 0) {
        *out = MOKA_CMP_SAME_SIZE_ONLY;
        return MOKA_OK;
    }
    if (parts == 0) {
        MOKA_TRY(moka_transfer_file_etag(path, 0, got, sizeof got, err));
        *out = strcmp(got, want) == 0 ? MOKA_CMP_SAME_MD5 : MOKA_CMP_DIFFERENT;
        return MOKA_OK;
    }
    const int64_t mib = 1 << 20;
    int64_t cand[12] = {part_size_hint, 5 * mib,   8 * mib,   16 * mib,  32 * mib, 64 * mib,
                        128 * mib,      256 * mib, 512 * mib, 0};
    cand[9] = (size + parts - 1) / parts;
    cand[9] = (cand[9] + mib - 1) / mib * mib;
    bool tried = false;
    for (int i = 0; i < 10; i++) {
        const int64_t p = cand[i];
        if (p <= 0) continue;
        bool dup = false;
        for (int j = 0; j < i; j++) dup = dup || cand[j] == p;
        const int64_t n = size == 0 ? 1 : (size + p - 1) / p;
        if (dup || n != parts) continue;
        tried = true;
        MOKA_TRY(moka_transfer_file_etag(path, p, got, sizeof got, err));
        if (strcmp(got, want) == 0) {
            *out = MOKA_CMP_SAME_MULTIPART;
            return MOKA_OK;
        }
    }
    /* With a part size that gives N parts tried and no match, the content differs (for those part
     * sizes); with none that fits, only the sizes can decide. */
    *out = tried ? MOKA_CMP_DIFFERENT : MOKA_CMP_SAME_SIZE_ONLY;
    return MOKA_OK;
}

/* ---- path mapping ---- */

const char *moka_transfer_basename(const char *p, size_t *len)
{
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && p[b - 1] != '/') b--;
    if (len) *len = n - b;
    return p + b;
}

moka_status moka_transfer_join(const char *dir, const char *rel, char *out, size_t out_n,
                               moka_err *err)
{
    size_t dn = strlen(dir);
    while (dn > 0 && dir[dn - 1] == '/') dn--;
    while (*rel == '/') rel++;
    int w;
    if (dn == 0 && dir[0] == '/')
        w = snprintf(out, out_n, "/%s", rel);
    else if (dn == 0)
        w = snprintf(out, out_n, "%s", rel);
    else if (!*rel)
        w = snprintf(out, out_n, "%.*s", (int)dn, dir);
    else
        w = snprintf(out, out_n, "%.*s/%s", (int)dn, dir, rel);
    if (w < 0 || (size_t)w >= out_n)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "path too long: %s/%s", dir, rel);
    return MOKA_OK;
}

moka_status moka_transfer_root(const char *src, char *walk, size_t walk_n, char *rel_prefix,
                               size_t rel_n, moka_err *err)
{
    const size_t n = strlen(src);
    if (n + 2 > walk_n || n + 2 > rel_n)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "path too long: %s", src);
    if (n == 0) {
        walk[0] = rel_prefix[0] = '\0';
        return MOKA_OK;
    }
    snprintf(walk, walk_n, "%s%s", src, src[n - 1] == '/' ? "" : "/");
    size_t bl;
    const char *base = moka_transfer_basename(src, &bl);
    const bool contents = src[n - 1] == '/' || (bl == 1 && base[0] == '.') ||
                          (bl == 2 && base[0] == '.' && base[1] == '.');
    if (contents)
        rel_prefix[0] = '\0';
    else
        snprintf(rel_prefix, rel_n, "%.*s/", (int)bl, base);
    return MOKA_OK;
}

moka_status moka_transfer_single_dest(const char *src, const char *dst, bool dst_is_dir,
                                      char *out, size_t out_n, moka_err *err)
{
    const size_t n = strlen(dst);
    if (n == 0 || dst[n - 1] == '/' || dst_is_dir) {
        size_t bl;
        const char *b = moka_transfer_basename(src, &bl);
        if (bl == 0) return moka_errf(err, MOKA_ERR_INVALID_ARG, "no file name in '%s'", src);
        char name[4096];
        if (bl >= sizeof name) return moka_errf(err, MOKA_ERR_INVALID_ARG, "name too long");
        memcpy(name, b, bl);
        name[bl] = '\0';
        return moka_transfer_join(dst, name, out, out_n, err);
    }
    if (n >= out_n) return moka_errf(err, MOKA_ERR_INVALID_ARG, "path too long: %s", dst);
    memcpy(out, dst, n + 1);
    return MOKA_OK;
}

bool moka_transfer_rel_ok(const char *rel)
{
    if (!rel[0] || rel[0] == '/') return false;
    const char *p = rel;
    for (;;) {
        const char *e = strchr(p, '/');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!e) return true;
        p = e + 1;
    }
}

/* ---- plans ---- */

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const moka_transfer_entry *)a)->rel, ((const moka_transfer_entry *)b)->rel);
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const moka_transfer_item *)a)->rel, ((const moka_transfer_item *)b)->rel);
}

void moka_transfer_plan_free(moka_transfer_item *items, int64_t n)
{
    if (!items) return;
    for (int64_t i = 0; i < n; i++) {
        free(items[i].rel);
        free(items[i].src_rel);
    }
    free(items);
}

moka_status moka_transfer_plan(const moka_transfer_entry *src, int64_t nsrc,
                               const moka_transfer_entry *dst, int64_t ndst,
                               const char *rel_prefix, const moka_transfer_opts *opts,
                               moka_transfer_same_fn same, void *user, moka_transfer_item **items,
                               int64_t *nitems, moka_err *err)
{
    *items = NULL;
    *nitems = 0;
    /* A sorted copy of the destination listing, searched with bsearch; `used` marks the names a
     * source maps to, so that the rest can be deleted. */
    moka_transfer_entry *d = NULL;
    bool *used = calloc((size_t)ndst + 1, 1);
    moka_transfer_item *it = calloc((size_t)(nsrc + ndst) + 1, sizeof *it);
    if (ndst > 0) d = malloc((size_t)ndst * sizeof *d);
    if (!used || !it || (ndst > 0 && !d)) {
        free(used), free(it), free(d);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory planning the copy");
    }
    if (ndst > 0) memcpy(d, dst, (size_t)ndst * sizeof *d);
    if (ndst > 0) qsort(d, (size_t)ndst, sizeof *d, cmp_rel);
    int64_t n = 0;
    moka_status st = MOKA_OK;
    const size_t plen = strlen(rel_prefix);
    for (int64_t i = 0; i < nsrc && !st; i++) {
        const size_t len = plen + strlen(src[i].rel) + 1;
        char *rel = malloc(len);
        char *srel = strdup(src[i].rel);
        if (!rel || !srel) {
            free(rel), free(srel);
            st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory planning the copy");
            break;
        }
        snprintf(rel, len, "%s%s", rel_prefix, src[i].rel);
        moka_transfer_item *x = &it[n++];
        x->rel = rel, x->src_rel = srel, x->size = src[i].size, x->op = MOKA_OP_COPY;
        const moka_transfer_entry key = {.rel = rel};
        const moka_transfer_entry *hit =
            ndst > 0 ? bsearch(&key, d, (size_t)ndst, sizeof *d, cmp_rel) : NULL;
        if (!hit) continue;
        used[hit - d] = true;
        x->overwrite = true;
        if (opts->force && !opts->sync) continue;
        bool eq = false;
        st = same(user, &src[i], hit, &eq, err);
        if (st) break;
        if (eq)
            x->op = MOKA_OP_SKIP;
        else if (!opts->sync && !opts->force)
            st = moka_errf(err, MOKA_ERR_IO,
                           "%s exists and differs from the source (use -f to overwrite or "
                           "--sync to copy what differs)",
                           rel);
    }
    if (!st && opts->delete_extra)
        for (int64_t j = 0; j < ndst; j++) {
            if (used[j] || strncmp(d[j].rel, rel_prefix, plen) != 0) continue;
            moka_transfer_item *x = &it[n++];
            x->op = MOKA_OP_DELETE;
            x->size = d[j].size;
            x->rel = strdup(d[j].rel);
            if (!x->rel) st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory planning the copy");
        }
    free(used);
    free(d);
    if (st) {
        moka_transfer_plan_free(it, n);
        return st;
    }
    qsort(it, (size_t)n, sizeof *it, cmp_item);
    *items = it;
    *nitems = n;
    return MOKA_OK;
}

/* ---- local files ---- */

void moka_transfer_entries_free(moka_transfer_entry *e, int64_t n)
{
    if (!e) return;
    for (int64_t i = 0; i < n; i++) free(e[i].rel);
    free(e);
}

typedef struct walk_state {
    moka_transfer_entry *e;
    int64_t n, cap;
} walk_state;

static moka_status walk(const char *root, const char *rel, walk_state *w, int depth, moka_err *err)
{
    char dir[8192];
    MOKA_TRY(moka_transfer_join(root, rel, dir, sizeof dir, err));
    if (depth > 64) return moka_errf(err, MOKA_ERR_IO, "%s: directories nested too deep", dir);
    DIR *dp = opendir(dir);
    if (!dp) return moka_errf(err, MOKA_ERR_IO, "cannot open directory %s: %s", dir,
                              strerror(errno));
    moka_status st = MOKA_OK;
    struct dirent *de;
    while (!st && (de = readdir(dp))) {
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
        const size_t nl = strlen(nm);
        if (nl >= 10 && strcmp(nm + nl - 10, ".moka-part") == 0) continue;
        char r[8192], full[8192];
        if ((st = moka_transfer_join(rel, nm, r, sizeof r, err))) break;
        if ((st = moka_transfer_join(root, r, full, sizeof full, err))) break;
        struct stat sb;
        if (stat(full, &sb) != 0) continue; /* a dangling link: nothing to copy */
        if (S_ISDIR(sb.st_mode)) {
            st = walk(root, r, w, depth + 1, err);
        } else if (S_ISREG(sb.st_mode)) {
            if (w->n == w->cap) {
                const int64_t cap = w->cap ? 2 * w->cap : 64;
                moka_transfer_entry *ne = realloc(w->e, (size_t)cap * sizeof *ne);
                if (!ne) {
                    st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory listing %s", root);
                    break;
                }
                w->e = ne, w->cap = cap;
            }
            moka_transfer_entry *x = &w->e[w->n];
            memset(x, 0, sizeof *x);
            x->rel = strdup(r);
            x->size = (int64_t)sb.st_size;
            if (!x->rel) st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory listing %s", root);
            else w->n++;
        }
    }
    closedir(dp);
    return st;
}

moka_status moka_transfer_list_local(const char *dir, moka_transfer_entry **out, int64_t *n,
                                     moka_err *err)
{
    *out = NULL;
    *n = 0;
    struct stat sb;
    if (stat(dir[0] ? dir : ".", &sb) != 0) return MOKA_OK;
    if (!S_ISDIR(sb.st_mode)) return moka_errf(err, MOKA_ERR_IO, "%s is not a directory", dir);
    walk_state w = {0};
    const moka_status st = walk(dir[0] ? dir : ".", "", &w, 0, err);
    if (st) {
        moka_transfer_entries_free(w.e, w.n);
        return st;
    }
    if (w.n > 0) qsort(w.e, (size_t)w.n, sizeof *w.e, cmp_rel);
    *out = w.e;
    *n = w.n;
    return MOKA_OK;
}

moka_status moka_transfer_mkdirs_for(const char *path, moka_err *err)
{
    char p[8192];
    const size_t n = strlen(path);
    if (n >= sizeof p) return moka_errf(err, MOKA_ERR_INVALID_ARG, "path too long: %s", path);
    memcpy(p, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (p[i] != '/') continue;
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            const int e = errno;
            p[i] = '/';
            return moka_errf(err, MOKA_ERR_IO, "cannot create directory for %s: %s", path,
                             strerror(e));
        }
        p[i] = '/';
    }
    return MOKA_OK;
}
