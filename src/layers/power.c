/* src/layers/power.c -- Caffe's Power:
 *   y  = (shift + scale * x) ^ power
 *   dx = dy * power * scale * (shift + scale * x) ^ (power - 1)
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x (may be x itself, in place)
 * Reference: Caffe's power_layer.cpp (PowerParameter power 1, scale 1, shift 0). Caffe's
 * backward writes the general case as power * y / (shift + scale * x), which is 0/0 where the
 * base is 0; moka evaluates the derivative directly, which agrees everywhere else.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

#define PAR_MIN 32768

typedef struct {
    float power, scale, shift;
    float diff_scale; /* power * scale: the derivative's constant factor */
    /* Backward needs x unless the derivative is constant (power 1, or power * scale 0); in place
     * forward then keeps a copy. */
    bool needs_x;
    float *x_copy;
    int64_t x_cap;
} power;

static moka_status power_setup(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    power *s = l->state;
    s->power = (float)moka_pt_float(l->param, "power");
    s->scale = (float)moka_pt_float(l->param, "scale");
    s->shift = (float)moka_pt_float(l->param, "shift");
    s->diff_scale = s->power * s->scale;
    s->needs_x = !(s->diff_scale == 0.0f || s->power == 1.0f);
    return MOKA_OK;
}

static moka_status power_reshape(moka_layer *l, moka_err *err)
{
    power *s = l->state;
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], l->bottom[0], err));
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->in_place && s->needs_x)
        MOKA_TRY(moka_layer_reserve(l, &s->x_copy, &s->x_cap, n, "a copy of x", err));
    return MOKA_OK;
}

static moka_status power_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    power *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float p = s->power, a = s->scale, b = s->shift;
    if (l->in_place && s->needs_x) memcpy(s->x_copy, x, (size_t)n * sizeof *x);
    /* The common powers skip powf: exact and much faster. powf(v, 0) is 1 for every v, so
     * power 0 needs no case of its own. */
    if (p == 1.0f) {
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = b + a * x[i];
    } else if (p == 2.0f) {
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            const float v = b + a * x[i];
            y[i] = v * v;
        }
    } else {
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = powf(b + a * x[i], p);
    }
    return MOKA_OK;
}

static moka_status power_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const power *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float p = s->power, a = s->scale, b = s->shift, k = s->diff_scale;
    if (!s->needs_x) {
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] += k * dy[i];
        return MOKA_OK;
    }
    const float *x = l->in_place ? s->x_copy : l->bottom[0]->data;
    if (p == 2.0f) {
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * k * (b + a * x[i]);
    } else {
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * k * powf(b + a * x[i], p - 1.0f);
    }
    return MOKA_OK;
}

static void power_destroy(moka_layer *l)
{
    power *s = l->state;
    free(s->x_copy);
    s->x_copy = NULL;
}

const moka_layer_ops moka_layer_power = {
    .type = "Power",
    .param_field = "power_param",
    .state_size = sizeof(power),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = power_setup,
    .reshape = power_reshape,
    .forward_cpu = power_forward_cpu,
    .backward_cpu = power_backward_cpu,
    .destroy = power_destroy,
};
