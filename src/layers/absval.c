/* src/layers/absval.c -- Caffe's AbsVal:
 *   y  = |x|
 *   dx = dy * sign(x)    (sign(0) = 0, as Caffe's caffe_cpu_sign)
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x
 * Reference: Caffe's absval_layer.cpp. Caffe refuses to run AbsVal in place; moka allows it and
 * keeps a copy of x for backward, since y = |x| has lost the sign.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

#define PAR_MIN 32768

typedef struct {
    float *x_copy; /* x kept for backward when running in place */
    int64_t x_cap;
} absval;

static moka_status absval_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status absval_reshape(moka_layer *l, moka_err *err)
{
    absval *s = l->state;
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], l->bottom[0], err));
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->in_place && n > s->x_cap) {
        float *p = realloc(s->x_copy, (size_t)n * sizeof *p);
        if (!p) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory for a copy of x");
        s->x_copy = p;
        s->x_cap = n;
    }
    return MOKA_OK;
}

static moka_status absval_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    absval *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->in_place) memcpy(s->x_copy, x, (size_t)n * sizeof *x);
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
    return MOKA_OK;
}

static moka_status absval_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const absval *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *x = l->in_place ? s->x_copy : l->bottom[0]->data, *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float sign = (float)((x[i] > 0.0f) - (x[i] < 0.0f));
        dx[i] += sign * dy[i];
    }
    return MOKA_OK;
}

static void absval_destroy(moka_layer *l)
{
    absval *s = l->state;
    free(s->x_copy);
    s->x_copy = NULL;
}

const moka_layer_ops moka_layer_absval = {
    .type = "AbsVal",
    .state_size = sizeof(absval),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = absval_setup,
    .reshape = absval_reshape,
    .forward_cpu = absval_forward_cpu,
    .backward_cpu = absval_backward_cpu,
    .destroy = absval_destroy,
};
