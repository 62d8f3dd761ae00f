/* src/layers/softmax_kernel.h -- the softmax along one axis that Softmax (softmax.c) and
 * SoftmaxWithLoss (softmax_loss.c) share, on data seen as (outer, C, inner):
 *   y[o, c, j]   = exp(x[o, c, j] - m[o, j]) / sum_k exp(x[o, k, j] - m[o, j])
 *   m[o, j]      = max_k x[o, k, j]
 *   dx[o, c, j] += y[o, c, j] * (dy[o, c, j] - sum_k dy[o, k, j] * y[o, k, j])
 * Subtracting the maximum keeps exp from overflowing; the result is the same. Positions along
 * `inner` are processed in blocks, so the loops over C run over contiguous memory, and each
 * position is computed by one thread in a fixed order: the result does not depend on the
 * thread count. Reference: Caffe's src/caffe/layers/softmax_layer.cpp.
 */
#ifndef MOKA_SOFTMAX_KERNEL_H
#define MOKA_SOFTMAX_KERNEL_H

#include <stdint.h>

/* Writes y from x, both (outer, ch, inner). Each element of y is written only after the same
 * element of x was read, so y may be x. Does nothing when any extent is 0. */
void moka_softmax_forward(const float *x, float *y, int64_t outer, int64_t ch, int64_t inner);

/* Adds the gradient of the softmax into dx from its output y and the output gradient dy, all
 * (outer, ch, inner). Reads only y and dy, so an in-place softmax needs no copy of x. */
void moka_softmax_backward_add(const float *y, const float *dy, float *dx, int64_t outer,
                               int64_t ch, int64_t inner);

#endif /* MOKA_SOFTMAX_KERNEL_H */
