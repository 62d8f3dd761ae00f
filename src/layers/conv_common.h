/* src/layers/conv_common.h -- what Convolution (conv.c) and Deconvolution (deconv.c) share:
 * reading ConvolutionParameter, and a batched im2col + GEMM engine. Both are defined in conv.c.
 *
 * The engine works in "convolution space", as Caffe's BaseConvolutionLayer does:
 *   the im side   (channels, H, W) per image: what im2col unrolls (conv: bottom; deconv: top)
 *   the out side  (out_channels, out_h, out_w) per image (conv: top; deconv: bottom)
 *   weight        (out_channels, channels / group, kh, kw); group g maps im channels
 *                 [g C/G, (g+1) C/G) to out channels [g M/G, (g+1) M/G)
 *   out = W col,  col = im2col(im)          (conv forward)
 *   im += col2im(W^T out)                   (conv backward to data; deconv forward)
 *   dW += out col^T                         (both weight gradients)
 * Images are processed in chunks of B side by side in one col matrix (C kh kw, B out_h out_w),
 * so each GEMM has B times more columns than Caffe's per-image products; threads take
 * contiguous ranges of images, each with its own scratch and (for dW) its own partial sum,
 * added in thread order afterwards so results depend only on the thread count.
 */
#ifndef MOKA_CONV_COMMON_H
#define MOKA_CONV_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu/im2col.h"
#include "core/layer.h"

/* ConvolutionParameter after Caffe's checks, for 2-D spatial data. */
typedef struct moka_conv_param {
    int64_t num_output, group;
    int64_t kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
    bool bias_term;
} moka_conv_param;

/* Reads l->param (a ConvolutionParameter) with Caffe's rules (kernel_size or kernel_h/kernel_w,
 * one value or one per spatial axis, defaults stride 1, pad 0, dilation 1) and checks it
 * against bottom[0]: MOKA_ERR_CONFIG for bad values (zero kernel/stride/dilation/num_output/
 * group, group not dividing channels or num_output, both forms given), MOKA_ERR_UNSUPPORTED
 * for axis other than 1 or other than 2 spatial axes, MOKA_ERR_SHAPE for mismatched bottoms. */
MOKA_INTERNAL moka_status moka_conv_param_read(moka_layer *l, moka_conv_param *p, moka_err *err);

/* Checks that every bottom has bottom[0]'s shape and `channels` channels (Caffe's
 * "Input size incompatible with convolution kernel"). */
MOKA_INTERNAL moka_status moka_conv_check_bottoms(const moka_layer *l, int64_t channels,
                                                  moka_err *err);

typedef struct moka_conv_engine {
    moka_conv_geom g;     /* the im side and the output size */
    int64_t group;        /* G */
    int64_t out_channels; /* M */
    int64_t num;          /* images per batch */
    int64_t weight_count; /* M (C / G) kh kw */
    /* Scratch, sized by the last plan: per thread a col matrix and an out-side matrix. */
    int threads;
    int64_t chunk;           /* images per GEMM (B) */
    int64_t work_per_thread; /* floats */
    float *work;
    int64_t work_cap;
    float *part; /* (threads - 1) partial weight gradients */
    int64_t part_cap;
} moka_conv_engine;

/* Sets the geometry and plans scratch for `num` images with the current OpenMP thread count.
 * Reallocates only when more scratch is needed. MOKA_ERR_NOMEM on allocation failure. */
MOKA_INTERNAL moka_status moka_conv_engine_reshape(moka_conv_engine *e, const moka_conv_geom *g,
                                                   int64_t group, int64_t out_channels,
                                                   int64_t num, moka_err *err);
MOKA_INTERNAL void moka_conv_engine_free(moka_conv_engine *e);

/* One pass over all images; every pointer is a whole batch (image n at n * per-image count).
 * In each chunk, in this order:
 *   col = im2col(im)                       if im
 *   O = outside                            if outside (the out-side matrix, e.g. dy or x)
 *   dw += O col^T                          if dw (needs im and outside)
 *   out = W col (+ bias), or out += W col  if out (out_add chooses; needs im)
 *   im_grad (= 0 first if zero_im_grad) += col2im(W^T O)   if im_grad (needs outside)
 */
typedef struct moka_conv_job {
    const float *im, *outside, *w, *bias;
    float *dw, *out, *im_grad;
    bool out_add, zero_im_grad;
} moka_conv_job;

/* Runs a job; MOKA_ERR_NOMEM if the thread count grew and scratch cannot grow with it. */
MOKA_INTERNAL moka_status moka_conv_engine_run(moka_conv_engine *e, const moka_conv_job *job,
                                               moka_err *err);

/* x[n, c, i] += bias[c] over (num, channels, spatial). */
MOKA_INTERNAL void moka_conv_add_bias(float *x, int64_t num, int64_t channels, int64_t spatial,
                                      const float *bias);
/* db[c] += sum over n, i of dy[n, c, i]; deterministic (each channel summed in one order). */
MOKA_INTERNAL void moka_conv_bias_grad(const float *dy, int64_t num, int64_t channels,
                                       int64_t spatial, float *db);

#endif /* MOKA_CONV_COMMON_H */
