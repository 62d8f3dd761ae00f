/* src/layers/split.c -- Caffe's Split: hands one blob to several consumers.
 *   bottom[0]  x    any shape
 *   top[i]     y_i  same shape as x, y_i = x
 *   dx += dy_0 + dy_1 + ... (summed in top order, as Caffe does)
 * The net inserts a Split wherever one top feeds several layers, so that each consumer adds its
 * gradient into a buffer of its own. Caffe shares the data of the tops with the bottom; moka
 * copies it. Reference: Caffe's src/caffe/layers/split_layer.cpp.
 */
#include <string.h>

#include "core/layer.h"

static moka_status split_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status split_reshape(moka_layer *l, moka_err *err)
{
    for (int i = 0; i < l->num_top; i++)
        MOKA_TRY(moka_tensor_set_shape_like(l->top[i], l->bottom[0], err));
    return MOKA_OK;
}

static moka_status split_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const int64_t n = moka_tensor_count(l->bottom[0]);
    for (int i = 0; i < l->num_top; i++)
        memcpy(l->top[i]->data, l->bottom[0]->data, (size_t)n * sizeof(float));
    return MOKA_OK;
}

static moka_status split_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const int nt = l->num_top;
    moka_tensor *const *top = l->top;
#pragma omp parallel for if (n * nt > (1 << 16))
    for (int64_t j = 0; j < n; j++) {
        /* The sum of the top gradients first, then one add into dx: Caffe's order. */
        float s = 0.0f;
        for (int i = 0; i < nt; i++)
            if (top[i]->grad) s += top[i]->grad[j];
        dx[j] += s;
    }
    return MOKA_OK;
}

const moka_layer_ops moka_layer_split = {
    .type = "Split",
    .min_bottom = 1,
    .max_bottom = 1,
    .min_top = 1,
    .max_top = -1,
    .setup = split_setup,
    .reshape = split_reshape,
    .forward_cpu = split_forward_cpu,
    .backward_cpu = split_backward_cpu,
};
