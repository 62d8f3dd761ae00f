/* src/core/layout.h -- activations a layer keeps in a memory layout of its own between layers.
 *
 * moka's tensors are plain (N, C, H, W) fp32. oneDNN's convolutions compute in channels-last
 * (NHWC) or channel-blocked (nChw16c: (N, C/16, H, W, 16)) layouts, and converting their output
 * to plain and the gradient back costs as much memory traffic as a layer (cifar10_quick's conv1
 * output, 100 x 32 x 32 x 32: ~0.9 ms each way on 2 cores). So a producer may leave its output
 * "held": the values live in its own buffer, in its layout, and tensor->data is stale until
 * someone needs it plain. Layers that can read the layout (ReLU, Pooling) use the held copy;
 * for every other layer the net brings the data back to plain first (moka_tensor_sync). The
 * same goes for gradients in the other direction: a consumer that read held data may write
 * the bottom's gradient held, in the same layout, for the producer to read without a
 * conversion.
 *
 * Rules (src/core/net.c enforces the net's part):
 *   - A held copy lives in the buffer of the layer that wrote it and stays valid until that
 *     layer's next forward (data) or backward (gradient) pass.
 *   - Held data is written whole by its producer (or in place by a layer that reads it, such
 *     as ReLU); a held gradient is written whole, never added into: the plain gradient the net
 *     zeroed before backward is then not used, and a sync copies over it.
 *   - Before a layer whose ops->reads_held is false runs forward, the net syncs its bottoms'
 *     data; before it runs backward, its tops' gradients and the data of its bottoms and tops.
 *     Layers with reads_held sync whatever they cannot read themselves.
 *   - Every layer's tops start a forward pass plain (the net drops what they held), except in
 *     place, where a layer reading held data keeps it held or syncs and drops it.
 * Only 4-D tensors are held. Tensors outside a net (held_* NULL) are always plain.
 */
#ifndef MOKA_LAYOUT_H
#define MOKA_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/layer.h"
#include "moka/tensor.h"

typedef enum moka_layout {
    MOKA_LAYOUT_PLAIN = 0, /* nothing held: tensor->data (grad) is the only copy */
    MOKA_LAYOUT_NHWC,      /* (N, H, W, C) */
    MOKA_LAYOUT_NCHW16C,   /* (N, C / 16, H, W, 16); C a multiple of 16 */
} moka_layout;

typedef struct moka_held {
    moka_layout layout;
    float *ptr;       /* the values in `layout` (current whenever layout != PLAIN) */
    bool plain_stale; /* tensor->data (grad) is not current */
    /* Gradients only. Instead of zeroing the activation gradients before backward, the net
     * sets zero_pending on each: the plain gradient is zeroed on first use (moka_layer_bottom_grad,
     * moka_tensor_sync), or never, when its writer writes it whole (moka_layer_bottom_grad_whole)
     * or holds it. */
    bool zero_pending;
} moka_held;

/* The held copy of t's data (grad = false) or gradient, or NULL when there is none. */
MOKA_INTERNAL const moka_held *moka_held_get(const moka_tensor *t, bool grad);
/* Declares that `ptr` now holds t's data (or gradient) in `layout` and the plain copy is stale.
 * False, and nothing changes, when t cannot hold (not 4-D, or not in a net): the caller then
 * writes the plain copy itself. */
MOKA_INTERNAL bool moka_held_set(moka_tensor *t, bool grad, moka_layout layout, float *ptr);
/* Forgets the held copy (after the caller made the plain copy current). */
MOKA_INTERNAL void moka_held_drop(moka_tensor *t, bool grad);
/* Makes t->data (grad) current: converts the held copy into it when the plain copy is stale
 * (or, for a gradient, zeroes it when its zeroing is pending). The held copy stays valid. */
MOKA_INTERNAL void moka_tensor_sync(moka_tensor *t, bool grad);
/* Whether t can hold copies (in a net, 4-D). */
MOKA_INTERNAL bool moka_held_possible(const moka_tensor *t);

/* p[0 .. n) = 0, threaded for large n. */
MOKA_INTERNAL void moka_zero_floats(float *p, int64_t n);

/* Converts `src` in `layout` to plain (N, C, H, W) `dst` of dims nchw[4] (overwriting). */
MOKA_INTERNAL void moka_layout_to_plain(moka_layout layout, const float *src, float *dst,
                                        const int64_t *nchw);

#endif /* MOKA_LAYOUT_H */
