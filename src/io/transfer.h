/* src/io/transfer.h -- planning for `moka cp`: path mapping, sync decisions, MD5 and ETags.
 *
 * Nothing here touches the network. A recursive copy is planned from two listings of relative
 * names (source and destination), each entry {rel, size, etag}; the plan says, per name, copy,
 * skip or delete. Path mapping follows rsync/qsctl: a source ending in '/' (or a bucket root)
 * copies its contents, one without copies the directory itself:
 *   cp -r s3://b/     data/  ->  key a/b.jpg at data/a/b.jpg
 *   cp -r s3://b/dir  data/  ->  key dir/a.jpg at data/dir/a.jpg
 * ETags: a plain one is the MD5 of the object (32 hex digits); a multipart one is
 * md5(md5(part 1) || ... || md5(part N)) in hex followed by "-N".
 */
#ifndef MOKA_IO_TRANSFER_H
#define MOKA_IO_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moka/status.h"

/* ---- MD5 (RFC 1321) ---- */

typedef struct moka_transfer_md5 {
    uint32_t h[4];
    uint64_t nbytes;
    uint8_t buf[64];
} moka_transfer_md5;

void moka_transfer_md5_init(moka_transfer_md5 *m);
void moka_transfer_md5_update(moka_transfer_md5 *m, const void *data, size_t n);
void moka_transfer_md5_final(moka_transfer_md5 *m, uint8_t out[16]);
/* Lower-case hex of 16 bytes into out (33 bytes with the terminator). */
void moka_transfer_hex(const uint8_t d[16], char out[33]);

/* The ETag a file would get: with part_size <= 0 its plain MD5 in hex; otherwise the multipart
 * form "hex-N" for parts of part_size bytes (N >= 1). out needs 48 bytes. */
moka_status moka_transfer_file_etag(const char *path, int64_t part_size, char *out, size_t out_n,
                                    moka_err *err);

/* Strips surrounding quotes (and a W/ prefix) from an ETag into out. Returns the part count of a
 * multipart ETag ("hex-N" -> N), 0 for a plain 32-hex-digit MD5, -1 for anything else. */
int moka_transfer_etag_parts(const char *etag, char *out, size_t out_n);

/* How a local file compares with an object of size `size` and ETag `etag`. */
typedef enum moka_transfer_cmp {
    MOKA_CMP_SAME_MD5,       /* same size and the plain ETag equals the file's MD5 */
    MOKA_CMP_SAME_MULTIPART, /* same size and md5-of-md5s recomputed with a matching part size */
    MOKA_CMP_SAME_SIZE_ONLY, /* same size; the ETag could not be checked (unknown part size or
                                a non-MD5 ETag), so the sizes alone decided */
    MOKA_CMP_DIFFERENT,
} moka_transfer_cmp;

/* Compares the local file `path` (of size local_size) with (size, etag). part_size_hint is the
 * uploader's part size if known (<= 0: unknown); for a "-N" ETag every candidate part size p with
 * ceil(size / p) == N among the hint, 5, 8, 16, 32, 64, 128, 256, 512 MiB and size / N rounded up
 * to a MiB is tried; if no candidate gives N parts the sizes decide (MOKA_CMP_SAME_SIZE_ONLY). */
moka_status moka_transfer_compare(const char *path, int64_t local_size, int64_t size,
                                  const char *etag, int64_t part_size_hint,
                                  moka_transfer_cmp *out, moka_err *err);

/* ---- path mapping ---- */

/* For a recursive copy from `src` (a key prefix, or a local directory path): `walk` gets what to
 * list (src with exactly one trailing '/', or "" for the bucket root / an empty src) and
 * `rel_prefix` what to put before every listed relative name at the destination: "" when src
 * ends in '/', is empty, ".", ".." or ends in "/." ; else the last component of src plus '/'. */
moka_status moka_transfer_root(const char *src, char *walk, size_t walk_n, char *rel_prefix,
                               size_t rel_n, moka_err *err);

/* Joins dir and rel with exactly one '/' (dir "" gives rel). MOKA_ERR_INVALID_ARG if too long. */
moka_status moka_transfer_join(const char *dir, const char *rel, char *out, size_t out_n,
                               moka_err *err);

/* The last path component of p ("a/b.jpg" -> "b.jpg"; a trailing '/' is ignored). */
const char *moka_transfer_basename(const char *p, size_t *len);

/* Destination of a single-object copy: dst itself, or dst/<basename of src> when dst ends in '/'
 * or dst_is_dir (an existing local directory). For an upload, dst is a key: "" or "dir/" gets
 * the basename appended. */
moka_status moka_transfer_single_dest(const char *src, const char *dst, bool dst_is_dir,
                                      char *out, size_t out_n, moka_err *err);

/* Whether a relative name is safe to write under a local directory: not empty, no leading '/',
 * and no "", "." or ".." segment (so a key like "../x" cannot escape the destination). */
bool moka_transfer_rel_ok(const char *rel);

/* ---- plans ---- */

typedef struct moka_transfer_entry {
    char *rel; /* relative name: the part of the key/path below the listed root */
    int64_t size;
    char etag[80]; /* remote entries only; "" for local files */
} moka_transfer_entry;

typedef enum moka_transfer_op { MOKA_OP_COPY, MOKA_OP_SKIP, MOKA_OP_DELETE } moka_transfer_op;

typedef struct moka_transfer_item {
    moka_transfer_op op;
    char *rel;    /* relative destination name (rel_prefix included) */
    char *src_rel; /* relative source name (NULL for deletions) */
    int64_t size;
    bool overwrite; /* a destination file of that name exists */
} moka_transfer_item;

typedef struct moka_transfer_opts {
    bool sync;   /* copy only what differs */
    bool force;  /* overwrite a differing destination without asking */
    bool delete_extra; /* delete destination names absent from the source */
} moka_transfer_opts;

/* Says whether source entry s and the destination entry d hold the same bytes. */
typedef moka_status (*moka_transfer_same_fn)(void *user, const moka_transfer_entry *s,
                                             const moka_transfer_entry *d, bool *same,
                                             moka_err *err);

/* Plans a copy of src[0..nsrc) (names relative to the source root) to a destination whose
 * existing names (relative to the destination root) are dst[0..ndst). Each source name r goes to
 * rel_prefix + r. An existing destination name is compared with `same` (unless force): equal ->
 * skip; different -> copy with --sync or -f, else MOKA_ERR_IO "... exists and differs ... (use
 * -f or --sync)". With delete_extra, destination names under rel_prefix that no source maps to
 * get MOKA_OP_DELETE. Items come sorted by destination name; free with moka_transfer_plan_free. */
moka_status moka_transfer_plan(const moka_transfer_entry *src, int64_t nsrc,
                               const moka_transfer_entry *dst, int64_t ndst,
                               const char *rel_prefix, const moka_transfer_opts *opts,
                               moka_transfer_same_fn same, void *user, moka_transfer_item **items,
                               int64_t *nitems, moka_err *err);
void moka_transfer_plan_free(moka_transfer_item *items, int64_t n);

/* Lists every regular file under the local directory `dir` (following links to files, skipping
 * "*.moka-part" temporaries) as entries relative to dir, sorted by name. A missing dir gives 0
 * entries. Free with moka_transfer_entries_free. */
moka_status moka_transfer_list_local(const char *dir, moka_transfer_entry **out, int64_t *n,
                                     moka_err *err);
void moka_transfer_entries_free(moka_transfer_entry *e, int64_t n);

/* mkdir -p of the directory part of path ("a/b/c.jpg" makes a/ and a/b/). */
moka_status moka_transfer_mkdirs_for(const char *path, moka_err *err);

#endif /* MOKA_IO_TRANSFER_H */
