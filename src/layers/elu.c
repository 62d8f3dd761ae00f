/* src/layers/elu.c -- Caffe's ELU (Clevert et al. 2015):
 *   y  = x   if x > 0,   alpha * (exp(x) - 1)  otherwise
 *   dx = dy  if x > 0,   dy * (y + alpha)      otherwise  (alpha * exp(x) = y + alpha)
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x (may be x itself, in place)
 * Reference: Caffe's elu_layer.cpp (ELUParameter alpha, default 1).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

#define PAR_MIN 32768

typedef struct {
    float alpha;
    /* In place with alpha < 0, y > 0 no longer means x > 0, so forward keeps x for backward. */
    float *x_copy;
    int64_t x_cap;
} elu;

static moka_status elu_setup(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    elu *s = l->state;
    s->alpha = (float)moka_pt_float(l->param, "alpha");
    return MOKA_OK;
}

static moka_status elu_reshape(moka_layer *l, moka_err *err)
{
    elu *s = l->state;
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], l->bottom[0], err));
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->in_place && s->alpha < 0.0f)
        MOKA_TRY(moka_layer_reserve(l, &s->x_copy, &s->x_cap, n, "a copy of x", err));
    return MOKA_OK;
}

static moka_status elu_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    elu *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float alpha = s->alpha;
    if (l->in_place && alpha < 0.0f) memcpy(s->x_copy, x, (size_t)n * sizeof *x);
    /* expm1 keeps precision for small |x|, where exp(x) - 1 cancels. */
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
    return MOKA_OK;
}

static moka_status elu_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const elu *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *y = l->top[0]->data, *dy = l->top[0]->grad;
    /* In place with alpha >= 0, y > 0 exactly when x > 0, so y stands in for x's sign. */
    const float *x = !l->in_place ? l->bottom[0]->data : s->alpha < 0.0f ? s->x_copy : y;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float alpha = s->alpha;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : dy[i] * (y[i] + alpha);
    return MOKA_OK;
}

static void elu_destroy(moka_layer *l)
{
    elu *s = l->state;
    free(s->x_copy);
    s->x_copy = NULL;
}

const moka_layer_ops moka_layer_elu = {
    .type = "ELU",
    .param_field = "elu_param",
    .state_size = sizeof(elu),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = elu_setup,
    .reshape = elu_reshape,
    .forward_cpu = elu_forward_cpu,
    .backward_cpu = elu_backward_cpu,
    .destroy = elu_destroy,
};
