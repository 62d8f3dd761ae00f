/* src/io/png.h -- a minimal PNG encoder (8-bit grayscale, gray + alpha, RGB or RGBA, no
 * interlace), for image summaries in TensorBoard event files.
 *
 *   file  = 89 50 4E 47 0D 0A 1A 0A | IHDR | IDAT | IEND
 *   chunk = uint32 length (big-endian) | 4-byte type | data | uint32 CRC-32 of type + data
 *   IHDR  = width, height (uint32 BE), bit depth 8, colour type (0 gray, 4 gray+alpha, 2 RGB,
 *           6 RGBA), compression 0, filter 0, interlace 0
 *   IDAT  = zlib stream of the rows, each preceded by its filter byte (0: None)
 * CRC-32 and the zlib stream come from zlib. Reference: PNG specification (ISO/IEC 15948),
 * sections 5 (chunks), 11.2 (IHDR), 9 (filtering), 10 (compression).
 *
 * Thread-safe (no shared state).
 */
#ifndef MOKA_PNG_H
#define MOKA_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "moka/status.h"

/* Encodes `pixels`, interleaved (H, W, C) 8-bit samples with C = 1 (gray), 2 (gray + alpha),
 * 3 (RGB) or 4 (RGBA), as a PNG file in memory. On success *out holds *out_nbytes bytes that the
 * caller frees with free(). Returns MOKA_ERR_INVALID_ARG for NULL pointers, another C, or a side
 * outside 1..65535 (moka's limit, far below PNG's own); MOKA_ERR_NOMEM; MOKA_ERR_IO if zlib
 * fails. */
moka_status moka_png_encode(const uint8_t *pixels, int channels, int height, int width,
                            uint8_t **out, size_t *out_nbytes, moka_err *err);

#endif /* MOKA_PNG_H */
