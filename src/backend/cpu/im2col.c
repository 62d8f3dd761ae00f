/* src/backend/cpu/im2col.c -- im2col and its adjoint col2im (see im2col.h for the layout).
 *
 * Each col row is one kernel tap (c, i, j); along it, output row oh reads image row
 * ih = oh stride_h - pad_h + i dilation_h and columns ow stride_w + j dilation_w - pad_w. The
 * outputs that land inside the image form one contiguous range per tap row i and one per tap
 * column j; both are computed once per call (the divisions would otherwise cost more than the
 * copies on small images), so the inner loops have no bounds tests and vectorise.
 */
#include "backend/cpu/im2col.h"

#include <stdlib.h>
#include <string.h>

/* The outputs o in [0, n_out) whose input o stride + off lies in [0, n_in): [lo, hi). */
static void valid_range(int64_t n_out, int64_t n_in, int64_t stride, int64_t off, int64_t *lo,
                        int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = n_in - 1 - off < 0 ? 0 : (n_in - 1 - off) / stride + 1;
    if (a > n_out) a = n_out;
    if (b > n_out) b = n_out;
    *lo = a;
    *hi = b < a ? a : b;
}

/* Ranges for kernels up to this size live on the stack; larger ones are computed per row. */
enum { CACHED_TAPS = 32 };

typedef struct ranges {
    int64_t h_lo[CACHED_TAPS], h_hi[CACHED_TAPS], w_lo[CACHED_TAPS], w_hi[CACHED_TAPS];
} ranges;

static void ranges_init(const moka_conv_geom *g, ranges *r)
{
    for (int64_t i = 0; i < g->kernel_h && i < CACHED_TAPS; i++)
        valid_range(g->out_h, g->height, g->stride_h, i * g->dilation_h - g->pad_h, &r->h_lo[i],
                    &r->h_hi[i]);
    for (int64_t j = 0; j < g->kernel_w && j < CACHED_TAPS; j++)
        valid_range(g->out_w, g->width, g->stride_w, j * g->dilation_w - g->pad_w, &r->w_lo[j],
                    &r->w_hi[j]);
}

static void range_h(const moka_conv_geom *g, const ranges *r, int64_t i, int64_t *lo, int64_t *hi)
{
    if (i < CACHED_TAPS) {
        *lo = r->h_lo[i];
        *hi = r->h_hi[i];
    } else {
        valid_range(g->out_h, g->height, g->stride_h, i * g->dilation_h - g->pad_h, lo, hi);
    }
}

static void range_w(const moka_conv_geom *g, const ranges *r, int64_t j, int64_t *lo, int64_t *hi)
{
    if (j < CACHED_TAPS) {
        *lo = r->w_lo[j];
        *hi = r->w_hi[j];
    } else {
        valid_range(g->out_w, g->width, g->stride_w, j * g->dilation_w - g->pad_w, lo, hi);
    }
}

void moka_im2col(const moka_conv_geom *g, const float *im, float *col, int64_t ld)
{
    const int64_t H = g->height, W = g->width, OH = g->out_h, OW = g->out_w;
    const int64_t sh = g->stride_h, sw = g->stride_w;
    ranges r;
    ranges_init(g, &r);
    int64_t row = 0;
    for (int64_t c = 0; c < g->channels; c++) {
        const float *plane = im + c * H * W;
        for (int64_t i = 0; i < g->kernel_h; i++) {
            const int64_t off_h = i * g->dilation_h - g->pad_h;
            int64_t oh_lo, oh_hi;
            range_h(g, &r, i, &oh_lo, &oh_hi);
            for (int64_t j = 0; j < g->kernel_w; j++, row++) {
                const int64_t off_w = j * g->dilation_w - g->pad_w;
                int64_t lo, hi;
                range_w(g, &r, j, &lo, &hi);
                float *dst = col + row * ld;
                if (hi == lo) {
                    memset(dst, 0, (size_t)(OH * OW) * sizeof(float));
                    continue;
                }
                memset(dst, 0, (size_t)(oh_lo * OW) * sizeof(float));
                for (int64_t oh = oh_lo; oh < oh_hi; oh++) {
                    float *d = dst + oh * OW;
                    /* Input column of output column lo; never before the row start. */
                    const float *src = plane + (oh * sh + off_h) * W + lo * sw + off_w;
                    for (int64_t ow = 0; ow < lo; ow++) d[ow] = 0.0f;
                    if (sw == 1) {
#pragma omp simd
                        for (int64_t k = 0; k < hi - lo; k++) d[lo + k] = src[k];
                    } else {
#pragma omp simd
                        for (int64_t k = 0; k < hi - lo; k++) d[lo + k] = src[k * sw];
                    }
                    for (int64_t ow = hi; ow < OW; ow++) d[ow] = 0.0f;
                }
                memset(dst + oh_hi * OW, 0, (size_t)((OH - oh_hi) * OW) * sizeof(float));
            }
        }
    }
}

void moka_col2im_add(const moka_conv_geom *g, const float *col, int64_t ld, float *im)
{
    const int64_t H = g->height, W = g->width, OW = g->out_w;
    const int64_t sh = g->stride_h, sw = g->stride_w;
    ranges r;
    ranges_init(g, &r);
    int64_t row = 0;
    for (int64_t c = 0; c < g->channels; c++) {
        float *plane = im + c * H * W;
        for (int64_t i = 0; i < g->kernel_h; i++) {
            const int64_t off_h = i * g->dilation_h - g->pad_h;
            int64_t oh_lo, oh_hi;
            range_h(g, &r, i, &oh_lo, &oh_hi);
            for (int64_t j = 0; j < g->kernel_w; j++, row++) {
                const int64_t off_w = j * g->dilation_w - g->pad_w;
                int64_t lo, hi;
                range_w(g, &r, j, &lo, &hi);
                if (hi == lo) continue;
                const float *src = col + row * ld;
                for (int64_t oh = oh_lo; oh < oh_hi; oh++) {
                    float *dst = plane + (oh * sh + off_h) * W + lo * sw + off_w;
                    const float *s = src + oh * OW + lo;
                    /* Within one row distinct k hit distinct pixels, so the adds vectorise. */
                    if (sw == 1) {
#pragma omp simd
                        for (int64_t k = 0; k < hi - lo; k++) dst[k] += s[k];
                    } else {
#pragma omp simd
                        for (int64_t k = 0; k < hi - lo; k++) dst[k * sw] += s[k];
                    }
                }
            }
        }
    }
}
