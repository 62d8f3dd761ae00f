/* src/layers/sigmoid.c -- Caffe's Sigmoid:
 *   y  = 1 / (1 + exp(-x)) = 0.5 * tanh(0.5 * x) + 0.5   (the tanh form cannot overflow)
 *   dx = dy * y * (1 - y)
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x (may be x itself: backward reads only y)
 * Reference: Caffe's sigmoid_layer.cpp (SigmoidParameter engine is accepted, no effect on CPU).
 */
#include <math.h>

#include "core/layer.h"

#define PAR_MIN 32768

/* Nothing to configure: the engine field only picks an implementation. */
static moka_status sigmoid_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status sigmoid_reshape(moka_layer *l, moka_err *err)
{
    return moka_tensor_set_shape_like(l->top[0], l->bottom[0], err);
}

static moka_status sigmoid_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * tanhf(0.5f * x[i]) + 0.5f;
    return MOKA_OK;
}

static moka_status sigmoid_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *y = l->top[0]->data, *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
    return MOKA_OK;
}

const moka_layer_ops moka_layer_sigmoid = {
    .type = "Sigmoid",
    .param_field = "sigmoid_param",
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = sigmoid_setup,
    .reshape = sigmoid_reshape,
    .forward_cpu = sigmoid_forward_cpu,
    .backward_cpu = sigmoid_backward_cpu,
};
