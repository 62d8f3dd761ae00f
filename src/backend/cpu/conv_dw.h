/* src/backend/cpu/conv_dw.h -- the weight and bias gradients of a first-layer convolution,
 * computed directly from x and dy.
 *
 * A convolution with one to a few input channels (LeNet's 1 -> 20, 5 x 5) has a weight gradient
 * dW = dy col^T whose product is tiny (20 x 25) and very deep (every output pixel of the batch):
 * im2col + GEMM spends most of its time unrolling and re-reading, and ran at ~70 GFLOP/s on 2
 * AVX-512 cores, reading dy once more for the bias sum. Here each output row of dy is multiplied
 * into kernel_w shifted rows of x in AVX-512 registers (16 output columns per lane vector), the
 * per-lane sums stay in registers over the output rows, and the bias sum rides along on the dy
 * rows already loaded; one read of dy, no scratch matrices.
 *
 * Fits one-group convolutions with stride 1, no dilation and no padding across rows (W), output
 * rows of at most 32 pixels and kernel_w in 1..7 (padding of rows (H) is fine). Threads take
 * contiguous ranges of images, each with its own sums, added in thread order afterwards, so the
 * result depends only on the thread count (as for the im2col engine).
 */
#ifndef MOKA_CONV_DW_H
#define MOKA_CONV_DW_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu/im2col.h"
#include "moka/status.h"

typedef struct moka_conv_dw {
    float *work; /* per thread: vector sums, then its weight and bias gradients */
    int64_t work_cap;
} moka_conv_dw;

/* Whether the direct kernel handles this geometry (and this build has AVX-512). */
bool moka_conv_dw_fits(const moka_conv_geom *g, int64_t group);

/* dw (out_channels, channels, kh, kw) += dL/dW and, when db is not NULL, db (out_channels) +=
 * dL/db, for x (num, channels, height, width) and dy (num, out_channels, out_h, out_w). Scratch
 * grows in `k` (MOKA_ERR_NOMEM when it cannot). */
moka_status moka_conv_dw_run(moka_conv_dw *k, const moka_conv_geom *g, int64_t out_channels,
                             int64_t num, const float *x, const float *dy, float *dw, float *db,
                             moka_err *err);

void moka_conv_dw_free(moka_conv_dw *k);

#endif /* MOKA_CONV_DW_H */
