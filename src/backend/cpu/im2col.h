/* src/backend/cpu/im2col.h -- the patch unrolling behind convolution as a matrix product.
 *
 * For one image im (C, H, W) and a 2-D kernel (kh, kw) with pad, stride and dilation:
 *   out_h = (H + 2 pad_h - (dilation_h (kh - 1) + 1)) / stride_h + 1   (likewise out_w)
 *   col[(c kh + i) kw + j][oh out_w + ow] = im[c][oh stride_h - pad_h + i dilation_h]
 *                                               [ow stride_w - pad_w + j dilation_w]
 * with 0 where the index falls into the padding. col has C kh kw rows of out_h out_w values; a
 * row starts every `ld` floats (ld >= out_h out_w), so several images can sit side by side in
 * one matrix (image b at column offset b out_h out_w). Convolution is then W (M x C kh kw) times
 * col, as in Caffe's im2col_cpu / col2im_cpu (src/caffe/util/im2col.cpp).
 */
#ifndef MOKA_IM2COL_H
#define MOKA_IM2COL_H

#include <stdint.h>

typedef struct moka_conv_geom {
    int64_t channels, height, width; /* the image that is unrolled */
    int64_t kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
    int64_t out_h, out_w; /* the output size the formula above gives */
} moka_conv_geom;

/* Writes col (channels kernel_h kernel_w rows, row stride ld) from im (channels, height, width).
 * Every element of the first out_h out_w columns of each row is written. Thread-safe. */
void moka_im2col(const moka_conv_geom *g, const float *im, float *col, int64_t ld);

/* The adjoint of moka_im2col: adds every col element into the image pixel it was copied from
 * (elements that came from the padding are dropped). im is accumulated into, not cleared.
 * Thread-safe for distinct im. */
void moka_col2im_add(const moka_conv_geom *g, const float *col, int64_t ld, float *im);

#endif /* MOKA_IM2COL_H */
