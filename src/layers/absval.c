/* src/layers/absval.c -- Caffe's AbsVal:
 *   y  = |x|
 *   dx = dy * sign(x)    (sign(0) = 0, as Caffe's caffe_cpu_sign)
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x
 * Reference: Caffe's absval_layer.cpp. Like Caffe, moka does not run AbsVal in place: y = |x|
 * has lost the sign that backward needs.
 */
#include <math.h>

#include "core/layer.h"

#define PAR_MIN 32768

static moka_status absval_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status absval_reshape(moka_layer *l, moka_err *err)
{
    return moka_tensor_set_shape_like(l->top[0], l->bottom[0], err);
}

static moka_status absval_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
    return MOKA_OK;
}

static moka_status absval_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *x = l->bottom[0]->data, *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float sign = (float)((x[i] > 0.0f) - (x[i] < 0.0f));
        dx[i] += sign * dy[i];
    }
    return MOKA_OK;
}

const moka_layer_ops moka_layer_absval = {
    .type = "AbsVal",
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = false,
    .setup = absval_setup,
    .reshape = absval_reshape,
    .forward_cpu = absval_forward_cpu,
    .backward_cpu = absval_backward_cpu,
};
