/* src/io/png.c -- PNG encoding: signature, IHDR, one IDAT holding the zlib-compressed
 * filtered rows (filter None on every row), IEND; chunk CRCs are zlib's CRC-32 over type + data.
 * See png.h for the layout.
 */
#include "io/png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes one chunk at p (length, type, data, CRC) and returns the byte after it. */
static uint8_t *put_chunk(uint8_t *p, const char type[4], const uint8_t *data, uint32_t nbytes)
{
    put_be32(p, nbytes);
    memcpy(p + 4, type, 4);
    if (nbytes) memmove(p + 8, data, nbytes);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, p + 4, (uInt)(4 + nbytes));
    put_be32(p + 8 + nbytes, (uint32_t)crc);
    return p + 12 + nbytes;
}

moka_status moka_png_encode(const uint8_t *pixels, int channels, int height, int width,
                            uint8_t **out, size_t *out_nbytes, moka_err *err)
{
    static const uint8_t color_type[5] = {0, 0, 4, 2, 6}; /* by channel count */
    if (!pixels || !out || !out_nbytes)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "png: NULL pixels or output");
    if (channels < 1 || channels > 4)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "png: %d channels, want 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)",
                         channels);
    if (height < 1 || height > 65535 || width < 1 || width > 65535)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "png: size %dx%d outside 1..65535", height,
                         width);
    *out = NULL;
    *out_nbytes = 0;

    /* The raw image: per row a filter byte (0) followed by the row's samples. */
    const size_t row_nbytes = (size_t)width * (size_t)channels;
    const size_t raw_nbytes = (size_t)height * (row_nbytes + 1);
    const uLong bound = compressBound((uLong)raw_nbytes);
    uint8_t *raw = malloc(raw_nbytes);
    /* One buffer for the whole file: signature (8), IHDR (12 + 13), IDAT (12 + data), IEND (12).
     * The IDAT data is compressed straight into its place. */
    uint8_t *file = malloc(8 + 25 + 12 + (size_t)bound + 12);
    if (!raw || !file) {
        free(raw);
        free(file);
        return moka_errf(err, MOKA_ERR_NOMEM, "png: out of memory for a %dx%dx%d image", height,
                         width, channels);
    }
    for (int y = 0; y < height; y++) {
        uint8_t *r = raw + (size_t)y * (row_nbytes + 1);
        r[0] = 0;
        memcpy(r + 1, pixels + (size_t)y * row_nbytes, row_nbytes);
    }

    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    memcpy(file, signature, 8);
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8; /* bit depth */
    ihdr[9] = color_type[channels];
    ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filtering, no interlace */
    uint8_t *p = put_chunk(file + 8, "IHDR", ihdr, 13);

    uLongf zlen = bound;
    const int zst = compress2(p + 8, &zlen, raw, (uLong)raw_nbytes, 6);
    free(raw);
    if (zst != Z_OK) {
        free(file);
        return moka_errf(err, zst == Z_MEM_ERROR ? MOKA_ERR_NOMEM : MOKA_ERR_IO,
                         "png: zlib compress2 failed (%d)", zst);
    }
    p = put_chunk(p, "IDAT", p + 8, (uint32_t)zlen);
    p = put_chunk(p, "IEND", NULL, 0);
    *out = file;
    *out_nbytes = (size_t)(p - file);
    return MOKA_OK;
}
