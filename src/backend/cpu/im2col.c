/* src/backend/cpu/im2col.c -- im2col and its adjoint col2im (see im2col.h for the layout).
 *
 * Each col row is one kernel tap (c, i, j); along it, output row oh reads image row
 * ih = oh stride_h - pad_h + i dilation_h and columns ow stride_w + off_w. The columns that land
 * inside the image form one contiguous range [lo, hi) of ow, computed once per row, so the inner
 * loop has no bounds tests (and is a plain copy when stride_w is 1).
 */
#include "backend/cpu/im2col.h"

#include <string.h>

/* The ow range whose input column ow stride + off lies in [0, width). */
static void valid_range(int64_t out_w, int64_t width, int64_t stride, int64_t off, int64_t *lo,
                        int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = width - 1 - off < 0 ? 0 : (width - 1 - off) / stride + 1;
    if (a > out_w) a = out_w;
    if (b > out_w) b = out_w;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

void moka_im2col(const moka_conv_geom *g, const float *im, float *col, int64_t ld)
{
    const int64_t H = g->height, W = g->width, oh_n = g->out_h, ow_n = g->out_w;
    const int64_t sh = g->stride_h, sw = g->stride_w;
    int64_t row = 0;
    for (int64_t c = 0; c < g->channels; c++) {
        const float *plane = im + c * H * W;
        for (int64_t i = 0; i < g->kernel_h; i++) {
            const int64_t off_h = i * g->dilation_h - g->pad_h;
            for (int64_t j = 0; j < g->kernel_w; j++, row++) {
                const int64_t off_w = j * g->dilation_w - g->pad_w;
                int64_t lo, hi;
                valid_range(ow_n, W, sw, off_w, &lo, &hi);
                float *dst = col + row * ld;
                for (int64_t oh = 0; oh < oh_n; oh++, dst += ow_n) {
                    const int64_t ih = oh * sh + off_h;
                    if (ih < 0 || ih >= H || hi == lo) {
                        memset(dst, 0, (size_t)ow_n * sizeof(float));
                        continue;
                    }
                    /* Input column of output column lo; never before the row start. */
                    const float *src = plane + ih * W + lo * sw + off_w;
                    for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (sw == 1) {
                        memcpy(dst + lo, src, (size_t)(hi - lo) * sizeof(float));
                    } else {
                        for (int64_t k = 0; k < hi - lo; k++) dst[lo + k] = src[k * sw];
                    }
                    for (int64_t ow = hi; ow < ow_n; ow++) dst[ow] = 0.0f;
                }
            }
        }
    }
}

void moka_col2im_add(const moka_conv_geom *g, const float *col, int64_t ld, float *im)
{
    const int64_t H = g->height, W = g->width, oh_n = g->out_h, ow_n = g->out_w;
    const int64_t sh = g->stride_h, sw = g->stride_w;
    int64_t row = 0;
    for (int64_t c = 0; c < g->channels; c++) {
        float *plane = im + c * H * W;
        for (int64_t i = 0; i < g->kernel_h; i++) {
            const int64_t off_h = i * g->dilation_h - g->pad_h;
            for (int64_t j = 0; j < g->kernel_w; j++, row++) {
                const int64_t off_w = j * g->dilation_w - g->pad_w;
                int64_t lo, hi;
                valid_range(ow_n, W, sw, off_w, &lo, &hi);
                const float *src = col + row * ld;
                for (int64_t oh = 0; oh < oh_n; oh++, src += ow_n) {
                    const int64_t ih = oh * sh + off_h;
                    if (ih < 0 || ih >= H || hi == lo) continue;
                    float *dst = plane + ih * W + lo * sw + off_w;
                    const float *s = src + lo;
                    if (sw == 1) {
                        for (int64_t k = 0; k < hi - lo; k++) dst[k] += s[k];
                    } else {
                        for (int64_t k = 0; k < hi - lo; k++) dst[k * sw] += s[k];
                    }
                }
            }
        }
    }
}
