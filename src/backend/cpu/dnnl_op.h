/* src/backend/cpu/dnnl_op.h -- convolution and inner product through oneDNN primitives.
 *
 * moka's tensors are plain (N, C, H, W) fp32; an op converts at its edges, except where the layer
 * hands y, x or the gradients over held in the op's own layout (src/core/layout.h). Each
 * pass (forward, backward to data, backward to weights) is one oneDNN primitive built once per
 * shape with the memory layouts oneDNN prefers ("any": blocked nChw16c and friends), plus the
 * reorders between those layouts and moka's. For convolutions whose channels fill oneDNN's
 * 16-wide blocks this runs 2-3x faster than im2col + GEMM even with the reorders (cifar10_quick
 * conv2: 2.6 ms against 6.7 at batch 100, 2 cores), and it is where bf16 computes. Inner
 * products (bf16 only; fp32 ones stay on moka's sgemm) run on matmul primitives reading moka's
 * row-major matrices through strides, about twice as fast as oneDNN's inner-product primitive
 * here (dnnl_op.c).
 *
 * Precision: with bf16, the inputs of every product (x, W, dy) are rounded to bf16 (round to
 * nearest even) and the products accumulate in fp32; what the op returns (y, dx, dW) is fp32,
 * and the master weights, the bias and its gradient never leave fp32. That is mixed precision
 * as PyTorch's autocast does it on CPUs.
 *
 * Semantics follow the layers (src/core/layer.h): forward writes y (bias added), backward ADDS
 * into dx and dW. The bias gradient is left to the caller (a plain fp32 sum). Not thread-safe per
 * op; the primitives thread over the OpenMP pool.
 */
#ifndef MOKA_DNNL_OP_H
#define MOKA_DNNL_OP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/layout.h"
#include "moka/status.h"

typedef enum moka_dnnl_kind { MOKA_DNNL_CONV, MOKA_DNNL_IP } moka_dnnl_kind;

typedef struct moka_dnnl_shape {
    moka_dnnl_kind kind;
    bool bf16;             /* bf16 products with fp32 accumulation; else fp32 throughout */
    bool bias;             /* forward adds b (out_channels) */
    bool backward_data;    /* build the backward-to-data pass (not for a net's first layer) */
    bool backward_weights; /* build the backward-to-weights pass (not for inference) */
    /* Convolution: try channels-last (nhwc) activations before oneDNN's blocked layouts (better
     * when the channel counts do not fill 16-wide blocks). */
    bool prefer_nhwc;
    /* Convolution: x (num, channels, height, width), W (out_channels, channels / group, kernel_h,
     * kernel_w), y (num, out_channels, out_h, out_w), with Caffe's pad/stride/dilation.
     * Inner product: x (num, channels), y (num, out_channels), W (out_channels, channels), or
     * (channels, out_channels) when weights_transposed. */
    int64_t num, channels, out_channels, group;
    int64_t height, width, out_h, out_w;
    int64_t kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
    bool weights_transposed;
} moka_dnnl_shape;

typedef struct moka_dnnl_op moka_dnnl_op;

/* Builds the primitives. MOKA_ERR_UNSUPPORTED when oneDNN has no fast implementation for the
 * shape (only its reference loops or a GEMM-based one, which moka's own path beats; also bf16
 * on a CPU without bf16 instructions): the caller then keeps its own kernels. MOKA_ERR_NOMEM,
 * MOKA_ERR_BACKEND for the rest. */
moka_status moka_dnnl_op_create(const moka_dnnl_shape *s, moka_dnnl_op **out, moka_err *err);
void moka_dnnl_op_free(moka_dnnl_op *op);

/* y = op(x, W) (+ b). With `hold` not NULL and the primitive writing y in one of moka's held
 * layouts (src/core/layout.h: channels-last or nChw16c fp32), y is not converted: *hold gets
 * that layout and the op's buffer holding y (valid until the next forward), and y is left
 * untouched. Otherwise y is written and hold->layout is MOKA_LAYOUT_PLAIN. */
moka_status moka_dnnl_op_forward(moka_dnnl_op *op, const float *x, const moka_held *x_held,
                                 const float *w, const float *b, float *y, moka_held *hold,
                                 moka_err *err);
/* Whether forward takes x held in `layout` (x_held; fp32) instead of plain: the primitive reads
 * that layout (directly, or rounded to bf16 element by element) and backward-weights can reuse
 * what forward read. x then still names the tensor (for moka_dnnl_op_reuses_x). */
bool moka_dnnl_op_takes_x(const moka_dnnl_op *op, moka_layout layout);
/* Whether backward with this x needs no plain copy of it (it reuses the forward's, or computes
 * no weight gradient). */
bool moka_dnnl_op_reuses_x(const moka_dnnl_op *op, const float *x);
/* The held layout backward-data computes dx in (PLAIN: one moka does not hold). */
moka_layout moka_dnnl_op_dx_layout(const moka_dnnl_op *op);
/* Whether backward takes dy held in `layout` (fp32) without a conversion to plain. */
bool moka_dnnl_op_takes_dy(const moka_dnnl_op *op, moka_layout layout);
/* Under bf16 with dy held in `layout`: the bf16 buffer (N C H W elements, same layout) the
 * backward passes read dy from, for a caller that reads dy anyway (the bias gradient) to write
 * the rounded copy (moka_dnnl_to_bf16) in the same pass; then backward gets dy_staged. NULL
 * when backward converts dy itself (fp32, another layout, or passes reading different
 * layouts). */
uint16_t *moka_dnnl_op_dy_stage(moka_dnnl_op *op, moka_layout layout);
/* dx += d/dx, dW += d/dW of <dy, y>; either may be NULL (skipped), and must be when its pass
 * was not built. x is needed for dW only; when it is the tensor the last forward read, the op
 * reuses its converted copy (layers' backward sees the bottoms their forward saw). dy is plain,
 * or, when dy_held is not NULL, in dy_held->layout at dy_held->ptr (a layout
 * moka_dnnl_op_takes_dy accepts), already rounded into moka_dnnl_op_dy_stage's buffer when
 * dy_staged. With dx_hold not NULL and dx_layout not PLAIN, dx is not added into: *dx_hold gets
 * the layout and the op's buffer holding the whole gradient (valid until the next backward);
 * else dx is added into (written, its old contents ignored, when dx_whole) and
 * dx_hold->layout is PLAIN. */
moka_status moka_dnnl_op_backward(moka_dnnl_op *op, const float *x, const float *w, const float *dy,
                                  const moka_held *dy_held, bool dy_staged, float *dx,
                                  bool dx_whole, moka_held *dx_hold, float *dw, moka_err *err);

/* fp32 -> bf16, round to nearest even, NaN kept quiet: what oneDNN's conversion does. */
static inline uint16_t moka_dnnl_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#if defined(__AVX512F__)
#include <immintrin.h>
/* moka_dnnl_to_bf16 on 16 floats. */
static inline __m256i moka_dnnl_to_bf16x16(__m512 v)
{
    const __m512i u = _mm512_castps_si512(v);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i r = _mm512_add_epi32(
        u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                            _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    const __m512i q = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(q, 16));
}
#endif

/* "oneDNN jit:avx512_core" or "oneDNN bf16 brgconv:avx512_core_bf16 / jit_bf16:..." (the
 * implementations of the passes). */
const char *moka_dnnl_op_kernel(const moka_dnnl_op *op);

/* A layer's op for its current shape, rebuilt when the shape changes. */
typedef struct moka_dnnl_slot {
    moka_dnnl_op *op; /* NULL when oneDNN has no fast implementation for `shape` */
    moka_dnnl_shape shape;
    bool built;
} moka_dnnl_slot;

/* Makes slot->op the op for *s (zero-filled before its fields are set: shapes are compared
 * bytewise), building it when the shape differs from the last one. A shape oneDNN has no fast
 * implementation for leaves slot->op NULL and returns MOKA_OK (the layer keeps its own kernels;
 * under bf16 that is logged once, naming `layer`, since the layer then computes in fp32). */
moka_status moka_dnnl_slot_ensure(moka_dnnl_slot *slot, const moka_dnnl_shape *s, const char *layer,
                                  moka_err *err);
void moka_dnnl_slot_free(moka_dnnl_slot *slot);

/* Whether oneDNN can compute in bf16 on this CPU (AVX512_BF16 or AMX); `isa` receives the
 * instruction set oneDNN will use, e.g. "avx512_core_bf16", "avx512_core_amx", "avx2". */
bool moka_dnnl_bf16_supported(const char **isa);

#endif /* MOKA_DNNL_OP_H */
