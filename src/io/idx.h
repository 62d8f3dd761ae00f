/* src/io/idx.h -- reader for IDX files, the format of MNIST and Fashion-MNIST.
 *
 * Layout (all integers big-endian):
 *   bytes 0-1   0x00 0x00
 *   byte  2     element type: 0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32,
 *               0x0E float64 (moka reads only 0x08)
 *   byte  3     ndim
 *   ndim x u32  dims, outermost first: images (N, H, W), labels (N)
 *   then        prod(dims) elements, row-major
 * The file may be gzip-compressed (.gz, as the datasets are distributed); both forms are read
 * through zlib. Reference: http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS").
 *
 * A file must hold exactly the bytes its header announces: fewer is "truncated", more is
 * "trailing data". Every problem comes back as a status with a one-line message naming the file.
 */
#ifndef MOKA_IDX_H
#define MOKA_IDX_H

#include <stdint.h>

#include "moka/status.h"
#include "moka/tensor.h"

/* The most dims moka accepts in an IDX header (the format allows 255). */
#define MOKA_IDX_MAX_NDIM MOKA_MAX_NDIM

/* One IDX file held in memory. The caller owns the struct (moka_idx_read fills it); the reader
 * owns `data` until moka_idx_deinit. */
typedef struct moka_idx {
    int ndim;
    int64_t dims[MOKA_IDX_MAX_NDIM];
    int64_t count; /* prod(dims) elements, each one uint8_t */
    uint8_t *data;
} moka_idx;

/* Reads the whole file at `path` (plain or gzip; a relative path is taken relative to the
 * current directory, as Caffe does) into *out. Returns MOKA_ERR_IO when the file cannot be
 * opened or read, has a bad magic, or holds fewer or more bytes than its header says;
 * MOKA_ERR_UNSUPPORTED for element types other than ubyte or more than MOKA_IDX_MAX_NDIM dims;
 * MOKA_ERR_NOMEM. Messages start with "'<path>': ". On failure *out is left empty (nothing to
 * free). Thread-safe (no shared state). */
moka_status moka_idx_read(const char *path, moka_idx *out, moka_err *err);

/* Same as moka_idx_read, from nbytes bytes at buf (plain IDX, or gzip when buf starts with the
 * gzip magic 0x1f 0x8b). `name` stands in for the path in messages. buf is only read. */
moka_status moka_idx_read_mem(const void *buf, int64_t nbytes, const char *name, moka_idx *out,
                              moka_err *err);

/* Frees the data and empties the struct; safe on an empty or already deinited struct. */
void moka_idx_deinit(moka_idx *idx);

/* Writes the dims as "60000 x 28 x 28" into buf (nbytes long); returns buf. */
char *moka_idx_dims_str(const moka_idx *idx, char *buf, int nbytes);

#endif /* MOKA_IDX_H */
