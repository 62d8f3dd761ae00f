/* src/io/image.c -- JPEG/PNG decoding (libjpeg-turbo, libpng), OpenCV-style bilinear resizing,
 * JPEG/PNG encoding and list files. See image.h for the conventions.
 *
 * Error handling in both libraries ends in a longjmp back into the function that called
 * setjmp. Everything such a function allocates after its setjmp is reached through `volatile`
 * pointers (or through the library's own structs, whose addresses are taken), so the cleanup
 * after the jump sees the current values (C11 7.13.2.1).
 */
#include "io/image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jpeglib.h needs size_t and FILE declared first. */
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "io/png.h"

static const uint8_t jpeg_magic[3] = {0xFF, 0xD8, 0xFF};
static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

/* Copies one interleaved row (w pixels of c samples) into row y of the c planes of a CHW
 * image. */
static void scatter_row(const uint8_t *row, uint8_t *chw, int c, int h, int w, int y)
{
    const size_t plane = (size_t)h * (size_t)w;
    for (int k = 0; k < c; k++) {
        uint8_t *dst = chw + (size_t)k * plane + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++) dst[x] = row[(size_t)x * (size_t)c + (size_t)k];
    }
}

/* ---------------------------------------------------------------------------------------- */
/* JPEG                                                                                     */

typedef struct jpeg_jump {
    struct jpeg_error_mgr pub; /* first, so the library's pointer to it is a pointer to us */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_jump;

/* libjpeg's default error_exit prints and calls exit(); this one returns to the setjmp. */
static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_jump *j = (jpeg_jump *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, j->msg);
    longjmp(j->jump, 1);
}

/* Warnings (msg_level -1) that mean the scan data is damaged or cut off are errors: libjpeg
 * would otherwise fill the rest of the image with gray and report success. Other warnings
 * (e.g. stray bytes between markers, common in real data sets and accepted by OpenCV) and
 * trace messages are dropped. */
static void jpeg_message(j_common_ptr cinfo, int msg_level)
{
    if (msg_level != -1) return;
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC: jpeg_fail(cinfo); break;
    default: break;
    }
}

static void jpeg_quiet(j_common_ptr cinfo) { (void)cinfo; }

static moka_status decode_jpeg(const uint8_t *bytes, int64_t nbytes, int want, uint8_t **pixels,
                               int *channels, int *height, int *width, moka_err *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_jump jj;
    uint8_t *volatile pix = NULL;
    uint8_t *volatile row = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jj.pub);
    jj.pub.error_exit = jpeg_fail;
    jj.pub.emit_message = jpeg_message;
    jj.pub.output_message = jpeg_quiet;
    jj.msg[0] = '\0';
    if (setjmp(jj.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pix);
        free(row);
        return moka_errf(err, MOKA_ERR_IO, "corrupt JPEG: %s", jj.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)nbytes);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.image_width < 1 || cinfo.image_height < 1 ||
        cinfo.image_width > MOKA_IMAGE_MAX_SIDE || cinfo.image_height > MOKA_IMAGE_MAX_SIDE) {
        const unsigned w = cinfo.image_width, h = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return moka_errf(err, MOKA_ERR_IO, "JPEG of %u x %u pixels (moka reads sides of 1..%d)", w,
                         h, MOKA_IMAGE_MAX_SIDE);
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                         "CMYK JPEG files are not supported (convert to RGB first)");
    }
    const int c = want ? want : (cinfo.jpeg_color_space == JCS_GRAYSCALE ? 1 : 3);
    /* libjpeg-turbo writes BGR itself; gray output is the decoder's own luminance (Y of YCbCr,
     * or the weighted sum for RGB files), which is what OpenCV asks libjpeg for too. */
    cinfo.out_color_space = c == 1 ? JCS_GRAYSCALE : JCS_EXT_BGR;
    jpeg_start_decompress(&cinfo);
    const int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (cinfo.output_components != c) {
        const int got = cinfo.output_components;
        jpeg_destroy_decompress(&cinfo);
        return moka_errf(err, MOKA_ERR_IO, "JPEG decoder gave %d channels, wanted %d", got, c);
    }
    pix = malloc((size_t)c * (size_t)h * (size_t)w);
    row = malloc((size_t)c * (size_t)w);
    if (!pix || !row) {
        jpeg_destroy_decompress(&cinfo);
        free(pix);
        free(row);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for a %d x %d JPEG", h, w);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = {row};
        const int y = (int)cinfo.output_scanline;
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) break;
        scatter_row(row, pix, c, h, w, y);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    *pixels = pix;
    *channels = c;
    *height = h;
    *width = w;
    return MOKA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* PNG                                                                                      */

typedef struct png_src {
    const uint8_t *p;
    size_t left;
    char msg[200];
} png_src;

static void png_fail(png_structp png, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_quiet(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    png_src *s = png_get_io_ptr(png);
    if (n > s->left) png_error(png, "file is truncated");
    memcpy(out, s->p, n);
    s->p += n;
    s->left -= n;
}

static moka_status decode_png(const uint8_t *bytes, int64_t nbytes, int want, uint8_t **pixels,
                              int *channels, int *height, int *width, moka_err *err)
{
    png_src src = {bytes, (size_t)nbytes, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_quiet);
    if (!png) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory starting libpng");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory starting libpng");
    }
    uint8_t *volatile pix = NULL;
    uint8_t *volatile img = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pix);
        free(img);
        free(rows);
        return moka_errf(err, MOKA_ERR_IO, "corrupt PNG: %s", src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    const png_uint_32 pw = png_get_image_width(png, info), ph = png_get_image_height(png, info);
    if (pw < 1 || ph < 1 || pw > MOKA_IMAGE_MAX_SIDE || ph > MOKA_IMAGE_MAX_SIDE) {
        png_destroy_read_struct(&png, &info, NULL);
        return moka_errf(err, MOKA_ERR_IO, "PNG of %u x %u pixels (moka reads sides of 1..%d)",
                         (unsigned)pw, (unsigned)ph, MOKA_IMAGE_MAX_SIDE);
    }
    const int color_type = png_get_color_type(png, info);
    const int bit_depth = png_get_bit_depth(png, info);
    const int is_color = (color_type & PNG_COLOR_MASK_COLOR) != 0;
    const int c = want ? want : (is_color ? 3 : 1);
    /* The transformations OpenCV's PNG decoder requests for 8-bit gray or BGR output. */
    if (bit_depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (!is_color && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (is_color && c == 3)
        png_set_bgr(png);
    else if (c == 3)
        png_set_gray_to_rgb(png);
    else if (is_color)
        png_set_rgb_to_gray_fixed(png, PNG_ERROR_ACTION_NONE, 29900, 58700);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int w = (int)pw, h = (int)ph;
    const size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_channels(png, info) != c || png_get_bit_depth(png, info) != 8 ||
        rowbytes != (size_t)c * (size_t)w) {
        const int got = png_get_channels(png, info);
        png_destroy_read_struct(&png, &info, NULL);
        return moka_errf(err, MOKA_ERR_IO,
                         "PNG (colour type %d, %d-bit) decodes to %d channels, "
                         "wanted %d",
                         color_type, bit_depth, got, c);
    }
    pix = malloc((size_t)c * (size_t)h * (size_t)w);
    img = malloc(rowbytes * (size_t)h);
    rows = malloc(sizeof(png_bytep) * (size_t)h);
    if (!pix || !img || !rows) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pix);
        free(img);
        free(rows);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for a %d x %d PNG", h, w);
    }
    for (int y = 0; y < h; y++) rows[y] = img + (size_t)y * rowbytes;
    png_read_image(png, rows);
    /* Reading to IEND checks the rest of the file, so one cut after the pixel data fails too. */
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    for (int y = 0; y < h; y++) scatter_row(img + (size_t)y * rowbytes, pix, c, h, w, y);
    free(img);
    free(rows);
    *pixels = pix;
    *channels = c;
    *height = h;
    *width = w;
    return MOKA_OK;
}

/* ---------------------------------------------------------------------------------------- */

moka_status moka_image_decode(const void *bytes, int64_t nbytes, int want_channels,
                              uint8_t **pixels, int *channels, int *height, int *width,
                              moka_err *err)
{
    if (!pixels || !channels || !height || !width || (!bytes && nbytes > 0) || nbytes < 0)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "image decode: NULL pointer or bad size");
    *pixels = NULL;
    if (want_channels != 0 && want_channels != 1 && want_channels != 3)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "image decode: want_channels must be 0, 1 or 3, got %d", want_channels);
    const uint8_t *b = bytes;
    if (nbytes >= (int64_t)sizeof jpeg_magic && memcmp(b, jpeg_magic, sizeof jpeg_magic) == 0)
        return decode_jpeg(b, nbytes, want_channels, pixels, channels, height, width, err);
    if (nbytes >= (int64_t)sizeof png_magic && memcmp(b, png_magic, sizeof png_magic) == 0)
        return decode_png(b, nbytes, want_channels, pixels, channels, height, width, err);
    if (nbytes == 0) return moka_errf(err, MOKA_ERR_IO, "empty file, not a JPEG or PNG image");
    char first[3 * 8 + 1] = "";
    for (int i = 0, len = 0; i < 8 && i < nbytes; i++)
        len += snprintf(first + len, sizeof first - (size_t)len, "%s%02x", i ? " " : "", b[i]);
    return moka_errf(err, MOKA_ERR_IO,
                     "not a JPEG or PNG image (starts with bytes %s; JPEG starts ff d8 ff, PNG "
                     "89 50 4e 47)",
                     first);
}

moka_status moka_image_read(const char *path, int want_channels, uint8_t **pixels, int *channels,
                            int *height, int *width, moka_err *err)
{
    if (!path || !pixels)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "image read: NULL path or output");
    *pixels = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return moka_errf(err, MOKA_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return moka_errf(err, MOKA_ERR_NOMEM, "'%s': out of memory reading the file", path);
            }
            buf = nb;
        }
        const size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    const int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return moka_errf(err, MOKA_ERR_IO, "'%s': read error", path);
    }
    const moka_status st =
        moka_image_decode(buf, (int64_t)len, want_channels, pixels, channels, height, width, err);
    free(buf);
    if (st != MOKA_OK) moka_err_prefix(err, "'%s'", path);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Resize                                                                                   */

/* OpenCV's fixed-point bilinear weights: INTER_RESIZE_COEF_BITS = 11. */
enum { COEF_BITS = 11, COEF_ONE = 1 << COEF_BITS };

/* For each output coordinate d in [0, dst): the source index i and the integer weights (a0, a1)
 * of samples i and i + 1, as OpenCV computes them: s = (d + 0.5) * scale - 0.5 in float,
 * i = floor(s), f = s - i; left of the first sample and right of the last the edge sample is
 * taken alone (f = 0). */
static void linear_coeffs(int src, int dst, int *idx, int *a0, int *a1)
{
    const double scale = 1.0 / ((double)dst / (double)src);
    for (int d = 0; d < dst; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int i = (int)floorf(f);
        f -= (float)i;
        if (i < 0) i = 0, f = 0.0f;
        if (i >= src - 1) i = src - 1, f = 0.0f;
        idx[d] = i;
        a0[d] = (int)lrintf((1.0f - f) * COEF_ONE);
        a1[d] = (int)lrintf(f * COEF_ONE);
    }
}

moka_status moka_image_resize(const uint8_t *src, int c, int h, int w, int new_h, int new_w,
                              uint8_t **dst, moka_err *err)
{
    if (!src || !dst) return moka_errf(err, MOKA_ERR_INVALID_ARG, "image resize: NULL pointer");
    *dst = NULL;
    if (c < 1 || c > 4 || h < 1 || w < 1 || new_h < 1 || new_w < 1 || h > MOKA_IMAGE_MAX_SIDE ||
        w > MOKA_IMAGE_MAX_SIDE || new_h > MOKA_IMAGE_MAX_SIDE || new_w > MOKA_IMAGE_MAX_SIDE)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "image resize: (%d, %d, %d) to %d x %d: channels must be 1..4 and sides "
                         "1..%d",
                         c, h, w, new_h, new_w, MOKA_IMAGE_MAX_SIDE);
    uint8_t *out = malloc((size_t)c * (size_t)new_h * (size_t)new_w);
    int *xi = malloc(sizeof(int) * 3 * (size_t)new_w);
    int *yi = malloc(sizeof(int) * 3 * (size_t)new_h);
    int32_t *tmp = malloc(sizeof(int32_t) * 2 * (size_t)new_w);
    if (!out || !xi || !yi || !tmp) {
        free(out);
        free(xi);
        free(yi);
        free(tmp);
        return moka_errf(err, MOKA_ERR_NOMEM, "image resize: out of memory");
    }
    int *xa0 = xi + new_w, *xa1 = xi + 2 * new_w;
    int *ya0 = yi + new_h, *ya1 = yi + 2 * new_h;
    linear_coeffs(w, new_w, xi, xa0, xa1);
    linear_coeffs(h, new_h, yi, ya0, ya1);
    int32_t *t0 = tmp, *t1 = tmp + new_w;
    for (int k = 0; k < c; k++) {
        const uint8_t *plane = src + (size_t)k * (size_t)h * (size_t)w;
        uint8_t *oplane = out + (size_t)k * (size_t)new_h * (size_t)new_w;
        for (int y = 0; y < new_h; y++) {
            /* Rows sy and sy + 1 resampled horizontally (values scaled by 2^11), then blended
             * vertically and brought back with rounding: (t0 b0 + t1 b1 + 2^21) >> 22. */
            const int sy = yi[y], sy1 = sy + 1 < h ? sy + 1 : sy;
            const uint8_t *r0 = plane + (size_t)sy * (size_t)w,
                          *r1 = plane + (size_t)sy1 * (size_t)w;
            for (int x = 0; x < new_w; x++) {
                const int sx = xi[x], sx1 = sx + 1 < w ? sx + 1 : sx;
                t0[x] = r0[sx] * xa0[x] + r0[sx1] * xa1[x];
                t1[x] = r1[sx] * xa0[x] + r1[sx1] * xa1[x];
            }
            const int32_t b0 = ya0[y], b1 = ya1[y];
            for (int x = 0; x < new_w; x++) {
                int32_t v =
                    (t0[x] * b0 + t1[x] * b1 + (1 << (2 * COEF_BITS - 1))) >> (2 * COEF_BITS);
                oplane[(size_t)y * (size_t)new_w + (size_t)x] = (uint8_t)(v < 0     ? 0
                                                                          : v > 255 ? 255
                                                                                    : v);
            }
        }
    }
    free(xi);
    free(yi);
    free(tmp);
    *dst = out;
    return MOKA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Encode                                                                                   */

static moka_status encode_jpeg(const uint8_t *pixels, int c, int h, int w, uint8_t **out,
                               int64_t *nbytes, moka_err *err)
{
    struct jpeg_compress_struct cinfo;
    jpeg_jump jj;
    /* libjpeg's memory destination mallocs (and grows) the buffer; the caller frees it, also
     * after an error. */
    unsigned char *mem = NULL;
    unsigned long size = 0;
    uint8_t *volatile row = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jj.pub);
    jj.pub.error_exit = jpeg_fail;
    jj.pub.output_message = jpeg_quiet;
    jj.msg[0] = '\0';
    if (setjmp(jj.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(mem);
        free(row);
        return moka_errf(err, MOKA_ERR_IO, "JPEG encoder: %s", jj.msg);
    }
    row = malloc((size_t)c * (size_t)w);
    if (!row) return moka_errf(err, MOKA_ERR_NOMEM, "JPEG encoder: out of memory");
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &mem, &size);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = c;
    cinfo.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_EXT_BGR;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    const size_t plane = (size_t)h * (size_t)w;
    while (cinfo.next_scanline < cinfo.image_height) {
        const size_t y = cinfo.next_scanline;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                row[(size_t)x * (size_t)c + (size_t)k] =
                    pixels[(size_t)k * plane + y * (size_t)w + (size_t)x];
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(row);
    *out = mem;
    *nbytes = (int64_t)size;
    return MOKA_OK;
}

moka_status moka_image_encode(const uint8_t *pixels, int c, int h, int w, const char *format,
                              uint8_t **out, int64_t *nbytes, moka_err *err)
{
    if (!pixels || !format || !out || !nbytes)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "image encode: NULL pointer");
    *out = NULL;
    *nbytes = 0;
    if ((c != 1 && c != 3) || h < 1 || w < 1 || h > MOKA_IMAGE_MAX_SIDE || w > MOKA_IMAGE_MAX_SIDE)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "image encode: shape (%d, %d, %d): want 1 or 3 channels, sides 1..%d", c,
                         h, w, MOKA_IMAGE_MAX_SIDE);
    if (strcmp(format, "jpg") == 0 || strcmp(format, "jpeg") == 0)
        return encode_jpeg(pixels, c, h, w, out, nbytes, err);
    if (strcmp(format, "png") != 0)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "image encode: unknown format '%s' (want png or jpg)", format);
    /* moka_png_encode takes interleaved RGB: reorder the BGR planes. */
    const size_t plane = (size_t)h * (size_t)w;
    uint8_t *hwc = malloc((size_t)c * plane);
    if (!hwc) return moka_errf(err, MOKA_ERR_NOMEM, "image encode: out of memory");
    for (size_t i = 0; i < plane; i++)
        for (int k = 0; k < c; k++)
            hwc[i * (size_t)c + (size_t)k] = pixels[(size_t)(c - 1 - k) * plane + i];
    size_t n = 0;
    const moka_status st = moka_png_encode(hwc, c, h, w, out, &n, err);
    free(hwc);
    if (st == MOKA_OK) *nbytes = (int64_t)n;
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* List files                                                                               */

void moka_image_list_deinit(moka_image_list *list)
{
    if (!list) return;
    for (int64_t i = 0; i < list->count; i++) free(list->entries[i].path);
    free(list->entries);
    list->entries = NULL;
    list->count = 0;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

moka_status moka_image_list_read(const char *path, moka_image_list *out, moka_err *err)
{
    if (!path || !out) return moka_errf(err, MOKA_ERR_INVALID_ARG, "image list: NULL pointer");
    out->entries = NULL;
    out->count = 0;
    FILE *f = fopen(path, "r");
    if (!f) return moka_errf(err, MOKA_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
    moka_status st = MOKA_OK;
    char *line = NULL;
    size_t line_cap = 0;
    int64_t cap = 0;
    int lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        if ((size_t)len != strlen(line)) {
            st = moka_errf(err, MOKA_ERR_CONFIG, "%s:%d: line holds a NUL byte", path, lineno);
            goto fail;
        }
        while (len > 0 && is_blank(line[len - 1])) line[--len] = '\0';
        if (len == 0) continue;
        char *sep = line + len - 1;
        while (sep > line && *sep != ' ' && *sep != '\t') sep--;
        if (sep == line) {
            st = moka_errf(err, MOKA_ERR_CONFIG, "%s:%d: expected 'path label', got '%.200s'", path,
                           lineno, line);
            goto fail;
        }
        char *end;
        errno = 0;
        const long label = strtol(sep + 1, &end, 10);
        if (errno || *end || end == sep + 1 || label < INT_MIN || label > INT_MAX) {
            st = moka_errf(err, MOKA_ERR_CONFIG,
                           "%s:%d: label '%.60s' is not an integer (expected 'path label')", path,
                           lineno, sep + 1);
            goto fail;
        }
        char *pend = sep;
        while (pend > line && is_blank(pend[-1])) pend--;
        *pend = '\0';
        if (out->count == cap) {
            cap = cap ? 2 * cap : 256;
            moka_image_entry *ne = realloc(out->entries, sizeof *ne * (size_t)cap);
            if (!ne) {
                st = moka_errf(err, MOKA_ERR_NOMEM, "'%s': out of memory", path);
                goto fail;
            }
            out->entries = ne;
        }
        char *p = strdup(line);
        if (!p) {
            st = moka_errf(err, MOKA_ERR_NOMEM, "'%s': out of memory", path);
            goto fail;
        }
        out->entries[out->count++] = (moka_image_entry){p, (int)label, lineno};
    }
    if (ferror(f)) {
        st = moka_errf(err, MOKA_ERR_IO, "'%s': read error", path);
        goto fail;
    }
    if (out->count == 0) {
        st = moka_errf(err, MOKA_ERR_IO, "'%s': the list holds no 'path label' lines", path);
        goto fail;
    }
    free(line);
    fclose(f);
    return MOKA_OK;
fail:
    free(line);
    fclose(f);
    moka_image_list_deinit(out);
    return st;
}
