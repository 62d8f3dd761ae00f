/* src/layers/tanh.c -- Caffe's TanH:
 *   y  = tanh(x)
 *   dx = dy * (1 - y^2)
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x (may be x itself: backward reads only y)
 * Reference: Caffe's tanh_layer.cpp (TanHParameter engine is accepted, no effect on CPU).
 */
#include <math.h>

#include "core/layer.h"

#define PAR_MIN 32768

/* Nothing to configure: the engine field only picks an implementation. */
static moka_status tanh_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status tanh_reshape(moka_layer *l, moka_err *err)
{
    return moka_tensor_set_shape_like(l->top[0], l->bottom[0], err);
}

static moka_status tanh_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
    return MOKA_OK;
}

static moka_status tanh_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *y = l->top[0]->data, *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
    return MOKA_OK;
}

const moka_layer_ops moka_layer_tanh = {
    .type = "TanH",
    .param_field = "tanh_param",
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = tanh_setup,
    .reshape = tanh_reshape,
    .forward_cpu = tanh_forward_cpu,
    .backward_cpu = tanh_backward_cpu,
};
