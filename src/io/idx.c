/* src/io/idx.c -- IDX reader (MNIST's format), plain or gzip, from a file or from memory.
 *
 *   header: 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 dims; then prod(dims) ubytes.
 *
 * Files go through zlib's gzopen/gzread, which read plain and gzip files alike. Memory buffers
 * (the fuzz target's path) are inflated with zlib's stream API when they carry the gzip magic.
 * The data buffer grows with the bytes actually read rather than trusting the header, so a
 * header announcing terabytes costs nothing until the data is really there.
 */
#include "io/idx.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* A byte source: a gzFile, or a memory buffer that is either plain or gzip. */
typedef struct src {
    const char *name;
    gzFile gz;
    const uint8_t *mem;
    int64_t mem_len, mem_pos;
    bool mem_gz, zs_live, zs_end;
    bool in_member;     /* inside a gzip member whose end has not been seen */
    bool cut_short;     /* the gzip data stopped inside a member */
    moka_status failed; /* why a read returned -1 (err may be NULL, so it is kept here) */
    z_stream zs;
} src;

/* Chunk size for one gzread call and the first data allocation. */
#define IDX_CHUNK ((int64_t)1 << 20)

static int64_t read_gzfile(src *s, uint8_t *buf, int64_t n, moka_err *err)
{
    int64_t got = 0;
    while (got < n) {
        const int64_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
        const int r = gzread(s->gz, buf + got, (unsigned)want);
        if (r < 0) {
            int errnum = 0;
            const char *msg = gzerror(s->gz, &errnum);
            /* gzerror starts its message with the path, which ours already names. */
            const size_t plen = strlen(s->name);
            if (strncmp(msg, s->name, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
                msg += plen + 2;
            if (errnum == Z_ERRNO)
                s->failed =
                    moka_errf(err, MOKA_ERR_IO, "'%s': cannot read: %s", s->name, strerror(errno));
            else if (errnum == Z_MEM_ERROR)
                s->failed =
                    moka_errf(err, MOKA_ERR_NOMEM, "'%s': out of memory inflating", s->name);
            else
                s->failed =
                    moka_errf(err, MOKA_ERR_IO, "'%s': gzip data is corrupt: %s", s->name, msg);
            return -1;
        }
        if (r == 0) {
            /* gzread reports a gzip stream that stops inside a member as a plain end of file
             * and leaves Z_BUF_ERROR behind; remember it so the file is not taken as whole. */
            int errnum = 0;
            gzerror(s->gz, &errnum);
            if (errnum == Z_BUF_ERROR) s->cut_short = true;
            break;
        }
        got += r;
    }
    return got;
}

static int64_t read_mem_gz(src *s, uint8_t *buf, int64_t n, moka_err *err)
{
    int64_t got = 0;
    while (got < n && !s->zs_end) {
        if (s->zs.avail_in == 0) {
            /* zlib counts input in uInt; feed large buffers a piece at a time. */
            const int64_t left = s->mem_len - s->mem_pos;
            if (left == 0) {
                s->cut_short = s->in_member;
                break;
            }
            const int64_t feed = left < IDX_CHUNK ? left : IDX_CHUNK;
            s->zs.next_in = (Bytef *)(uintptr_t)(s->mem + s->mem_pos);
            s->zs.avail_in = (uInt)feed;
            s->mem_pos += feed;
        }
        const int64_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
        s->zs.next_out = buf + got;
        s->zs.avail_out = (uInt)want;
        const int r = inflate(&s->zs, Z_NO_FLUSH);
        got += want - (int64_t)s->zs.avail_out;
        if (r == Z_STREAM_END) {
            /* Like gzread: another gzip member may follow; anything else after a complete
             * member is ignored. */
            const int64_t rest = (int64_t)s->zs.avail_in + (s->mem_len - s->mem_pos);
            const uint8_t *next = s->zs.avail_in ? s->zs.next_in : s->mem + s->mem_pos;
            /* next_in points into mem, so next[1] is in bounds whenever rest >= 2. */
            const bool more = rest >= 2 && next[0] == 0x1f && next[1] == 0x8b;
            if (more && inflateReset(&s->zs) != Z_OK) {
                s->failed = moka_errf(err, MOKA_ERR_IO, "'%s': cannot restart inflate", s->name);
                return -1;
            }
            s->zs_end = !more;
            s->in_member = more;
        } else if (r == Z_MEM_ERROR) {
            s->failed = moka_errf(err, MOKA_ERR_NOMEM, "'%s': out of memory inflating", s->name);
            return -1;
        } else if (r == Z_DATA_ERROR || r == Z_NEED_DICT || r == Z_STREAM_ERROR) {
            s->failed = moka_errf(err, MOKA_ERR_IO, "'%s': gzip data is corrupt: %s", s->name,
                                  s->zs.msg ? s->zs.msg : "invalid stream");
            return -1;
        }
        /* Z_OK and Z_BUF_ERROR: progress was made or more input is needed; loop. */
    }
    return got;
}

/* Reads up to n bytes into buf. Returns the count read (less than n only at the end of the
 * data), or -1 with err filled and s->failed set. */
static int64_t src_read(src *s, uint8_t *buf, int64_t n, moka_err *err)
{
    if (s->gz) return read_gzfile(s, buf, n, err);
    if (s->mem_gz) return read_mem_gz(s, buf, n, err);
    const int64_t left = s->mem_len - s->mem_pos, k = n < left ? n : left;
    if (k > 0) memcpy(buf, s->mem + s->mem_pos, (size_t)k);
    s->mem_pos += k;
    return k;
}

static const char *type_name(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return NULL;
}

char *moka_idx_dims_str(const moka_idx *idx, char *buf, int nbytes)
{
    int len = 0;
    buf[0] = '\0';
    for (int i = 0; i < idx->ndim && len < nbytes; i++)
        len += snprintf(buf + len, (size_t)(nbytes - len), "%s%lld", i ? " x " : "",
                        (long long)idx->dims[i]);
    return buf;
}

/* Parses the header, then reads exactly the announced data and checks that nothing follows. */
static moka_status parse(src *s, moka_idx *out, moka_err *err)
{
    uint8_t head[4 + 4 * 255];
    int64_t got = src_read(s, head, 4, err);
    if (got < 0) return s->failed;
    if (got == 0) return moka_errf(err, MOKA_ERR_IO, "'%s': empty file, not an IDX file", s->name);
    if (head[0] != 0 || (got >= 2 && head[1] != 0))
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s': not an IDX file: bad magic %02x %02x (want 00 00 <type> <ndim>)",
                         s->name, head[0], got >= 2 ? head[1] : 0);
    if (got < 4)
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s': truncated IDX file: %lld bytes, shorter than the 4-byte magic",
                         s->name, (long long)got);
    const int type = head[2], ndim = head[3];
    if (!type_name(type))
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s': not an IDX file: bad magic, unknown element type 0x%02x", s->name,
                         type);
    if (type != 0x08)
        return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                         "'%s': IDX element type 0x%02X (%s) is not supported (moka reads only "
                         "0x08, unsigned byte)",
                         s->name, type, type_name(type));
    if (ndim == 0) return moka_errf(err, MOKA_ERR_IO, "'%s': IDX header has 0 dimensions", s->name);
    if (ndim > MOKA_IDX_MAX_NDIM)
        return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                         "'%s': IDX file has %d dimensions, moka reads at most %d", s->name, ndim,
                         MOKA_IDX_MAX_NDIM);
    got = src_read(s, head + 4, 4 * ndim, err);
    if (got < 0) return s->failed;
    if (got < 4 * ndim)
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s': truncated IDX file: the header announces %d dims (%d bytes), "
                         "found %lld",
                         s->name, ndim, 4 + 4 * ndim, (long long)(4 + got));

    moka_idx idx = {.ndim = ndim, .count = 1};
    bool too_big = false, empty = false;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *p = head + 4 + 4 * i;
        idx.dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                                (uint32_t)p[3]);
        empty |= idx.dims[i] == 0;
    }
    /* 2^48 bytes is far beyond any real dataset; checking each step against it keeps the
     * product from overflowing. A zero dim makes the whole file empty, whatever the others say. */
    for (int i = 0; i < ndim && !empty && !too_big; i++) {
        if (idx.count > ((int64_t)1 << 48) / idx.dims[i])
            too_big = true;
        else
            idx.count *= idx.dims[i];
    }
    if (empty) idx.count = 0;
    char dims[160];
    moka_idx_dims_str(&idx, dims, sizeof dims);
    if (too_big)
        return moka_errf(err, MOKA_ERR_IO, "'%s': IDX header says %s, too large to be real",
                         s->name, dims);

    /* Grow the buffer as bytes arrive, so a lying header cannot make us allocate its claim. */
    int64_t cap = idx.count < IDX_CHUNK ? idx.count : IDX_CHUNK, have = 0;
    uint8_t *data = malloc((size_t)(cap > 0 ? cap : 1));
    if (!data) return moka_errf(err, MOKA_ERR_NOMEM, "'%s': out of memory", s->name);
    while (have < idx.count) {
        if (have == cap) {
            const int64_t ncap = cap * 2 < idx.count ? cap * 2 : idx.count;
            uint8_t *nd = realloc(data, (size_t)ncap);
            if (!nd) {
                free(data);
                return moka_errf(err, MOKA_ERR_NOMEM, "'%s': out of memory (%lld bytes)", s->name,
                                 (long long)ncap);
            }
            data = nd;
            cap = ncap;
        }
        const int64_t r = src_read(s, data + have, cap - have, err);
        if (r < 0) {
            free(data);
            return s->failed;
        }
        if (r == 0) break;
        have += r;
    }
    if (have < idx.count) {
        free(data);
        return moka_errf(
            err, MOKA_ERR_IO,
            "'%s': truncated IDX file: header says %s (%lld bytes of data), found %lld", s->name,
            dims, (long long)idx.count, (long long)have);
    }

    /* Count whatever follows, so the message can say how much there is. */
    int64_t extra = 0;
    uint8_t scratch[4096];
    for (;;) {
        const int64_t r = src_read(s, scratch, (int64_t)sizeof scratch, err);
        if (r < 0) {
            free(data);
            return s->failed;
        }
        if (r == 0) break;
        extra += r;
    }
    if (extra > 0) {
        free(data);
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s': IDX file has trailing data: header says %s (%lld bytes of data), "
                         "found %lld",
                         s->name, dims, (long long)idx.count, (long long)(idx.count + extra));
    }
    if (s->cut_short) {
        /* All the data is there, but the gzip trailer (CRC and length) is not. */
        free(data);
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s': truncated gzip file: the compressed stream ends before its "
                         "checksum",
                         s->name);
    }
    idx.data = data;
    *out = idx;
    return MOKA_OK;
}

moka_status moka_idx_read(const char *path, moka_idx *out, moka_err *err)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    src s = {.name = path};
    s.gz = gzopen(path, "rb");
    if (!s.gz) {
        /* gzopen leaves errno 0 only when its own allocation failed. */
        if (errno == 0 || errno == ENOMEM)
            return moka_errf(err, MOKA_ERR_NOMEM, "cannot open '%s': out of memory", path);
        return moka_errf(err, MOKA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    gzbuffer(s.gz, 1 << 17);
    const moka_status st = parse(&s, out, err);
    gzclose(s.gz);
    return st;
}

moka_status moka_idx_read_mem(const void *buf, int64_t nbytes, const char *name, moka_idx *out,
                              moka_err *err)
{
    memset(out, 0, sizeof *out);
    if (nbytes < 0 || (nbytes > 0 && !buf))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "'%s': bad buffer", name);
    src s = {.name = name, .mem = buf, .mem_len = nbytes};
    s.mem_gz = nbytes >= 2 && s.mem[0] == 0x1f && s.mem[1] == 0x8b;
    if (s.mem_gz) {
        /* 16 + MAX_WBITS: expect a gzip wrapper, as gzread does for .gz files. */
        if (inflateInit2(&s.zs, 16 + MAX_WBITS) != Z_OK)
            return moka_errf(err, MOKA_ERR_NOMEM, "'%s': cannot start inflate", name);
        s.zs_live = true;
        s.in_member = true;
    }
    const moka_status st = parse(&s, out, err);
    if (s.zs_live) inflateEnd(&s.zs);
    return st;
}

void moka_idx_deinit(moka_idx *idx)
{
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
