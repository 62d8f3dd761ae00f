/* src/io/image.h -- JPEG and PNG decoding, bilinear resizing and the "path label" list files of
 * Caffe's image tools, with OpenCV's conventions (Caffe reads images through cv::imread):
 *
 *   decode:  file bytes -> pixels (C, H, W) uint8, C = 3 in BGR order or C = 1 (gray)
 *   resize:  dst[c, y, x] = bilinear sample of src at ((y + 0.5) * H / H' - 0.5,
 *                                                   (x + 0.5) * W / W' - 0.5)
 *            (OpenCV's INTER_LINEAR: half-pixel centres, edge samples clamped)
 *   list:    one "path label" entry per line; the label is the integer after the last space,
 *            so a path may itself hold spaces (as in Caffe's convert_imageset and ImageData)
 *
 * The format is chosen by the file's magic bytes, not its name: JPEG (FF D8 FF) is decoded by
 * libjpeg(-turbo), PNG (89 'P' 'N' 'G' 0D 0A 1A 0A) by libpng. Both libraries report errors by
 * longjmp from their error handlers here, so a corrupt or truncated file is a MOKA_ERR_IO, never
 * an exit() or a crash. Colour conversions are the libraries' own, as OpenCV asks for them:
 * JPEG gray output is libjpeg's luminance, PNG gray is libpng's rgb_to_gray (0.299 R + 0.587 G
 * + 0.114 B), 16-bit PNG samples keep their high byte, alpha is dropped, palettes are expanded.
 *
 * All functions are thread-safe (no shared state).
 */
#ifndef MOKA_IMAGE_H
#define MOKA_IMAGE_H

#include <stdint.h>

#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest side moka accepts (far below what the formats allow; it keeps every byte count of
 * a decoded image well inside int64 and rejects absurd headers before allocating). */
#define MOKA_IMAGE_MAX_SIDE 65535

/* Decodes a JPEG or PNG file held in memory. want_channels: 0 keeps the file's own (1 for gray
 * files, 3 otherwise), 1 converts to gray, 3 to colour. On success *pixels holds
 * (*channels) * (*height) * (*width) bytes in CHW order (colour planes B, G, R, as OpenCV keeps
 * them), malloc'ed; the caller frees it. Returns MOKA_ERR_INVALID_ARG (NULL pointers,
 * want_channels not 0/1/3), MOKA_ERR_IO (not a JPEG or PNG, or corrupt, truncated or too large:
 * the message says what the decoder found), MOKA_ERR_NOMEM. On failure *pixels is NULL. */
moka_status moka_image_decode(const void *bytes, int64_t nbytes, int want_channels,
                              uint8_t **pixels, int *channels, int *height, int *width,
                              moka_err *err);

/* moka_image_decode on the whole file at `path`; messages start with "'<path>': ". */
moka_status moka_image_read(const char *path, int want_channels, uint8_t **pixels, int *channels,
                            int *height, int *width, moka_err *err);

/* Bilinear resize of `src` (c, h, w) to (c, new_h, new_w), as OpenCV's cv::resize with
 * INTER_LINEAR on 8-bit images: the weights are rounded to 11 fractional bits and the result is
 * rounded to nearest. *dst is malloc'ed (caller frees). MOKA_ERR_INVALID_ARG for NULL pointers
 * or sizes outside 1..MOKA_IMAGE_MAX_SIDE (c in 1..4), MOKA_ERR_NOMEM. */
moka_status moka_image_resize(const uint8_t *src, int c, int h, int w, int new_h, int new_w,
                              uint8_t **dst, moka_err *err);

/* Encodes `pixels` (c, h, w) CHW, c = 1 (gray) or 3 (BGR, as decode returns them) as a file in
 * memory: `format` "png" or "jpg"/"jpeg" (baseline JPEG of quality 95, OpenCV's default for
 * cv::imencode). *out is malloc'ed (caller frees). MOKA_ERR_INVALID_ARG for another format or
 * shape, MOKA_ERR_IO if the encoder fails, MOKA_ERR_NOMEM. */
moka_status moka_image_encode(const uint8_t *pixels, int c, int h, int w, const char *format,
                              uint8_t **out, int64_t *nbytes, moka_err *err);

/* One entry of a list file. */
typedef struct moka_image_entry {
    char *path; /* as written, without root folder */
    int label;
    int line; /* 1-based line in the list file */
} moka_image_entry;

typedef struct moka_image_list {
    moka_image_entry *entries;
    int64_t count;
} moka_image_list;

/* Reads a list file of "path label" lines (blank lines are skipped; trailing spaces and "\r"
 * are ignored). Returns MOKA_ERR_IO when the file cannot be read or holds no entry, and
 * MOKA_ERR_CONFIG "<file>:<line>: ..." for a line without a label or with a label that is not an
 * integer in int range. The caller owns *out; free with moka_image_list_deinit (also safe after
 * a failure). */
moka_status moka_image_list_read(const char *path, moka_image_list *out, moka_err *err);
void moka_image_list_deinit(moka_image_list *list);

#ifdef __cplusplus
}
#endif

#endif /* MOKA_IMAGE_H */
