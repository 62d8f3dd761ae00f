/* src/layers/log.c -- Caffe's Log:
 *   y  = log_base(shift + scale * x) = ln(shift + scale * x) / ln(base)   (base -1 means e)
 *   dx = dy * scale / (ln(base) * (shift + scale * x))
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x (may be x itself, in place)
 * Reference: Caffe's log_layer.cpp (LogParameter base -1, scale 1, shift 0).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

#define PAR_MIN 32768

typedef struct {
    float scale, shift;
    float base_scale; /* 1 / ln(base) */
    float *x_copy;    /* x kept for backward when running in place */
    int64_t x_cap;
} log_state;

static moka_status log_setup(moka_layer *l, moka_err *err)
{
    log_state *s = l->state;
    const double base = moka_pt_float(l->param, "base");
    if (base != -1.0 && !(base > 0.0))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "base", 0),
                            "layer '%s': log_param base must be positive or -1 (for e), got %g",
                            l->name, base);
    const double log_base = base == -1.0 ? 1.0 : log(base);
    /* Base 1 has ln(base) = 0: every output would be infinite. */
    if (!isfinite(log_base) || log_base == 0.0)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "base", 0),
                            "layer '%s': log_param base %g does not define a logarithm", l->name,
                            base);
    s->base_scale = (float)(1.0 / log_base);
    s->scale = (float)moka_pt_float(l->param, "scale");
    s->shift = (float)moka_pt_float(l->param, "shift");
    return MOKA_OK;
}

static moka_status log_reshape(moka_layer *l, moka_err *err)
{
    log_state *s = l->state;
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], l->bottom[0], err));
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->in_place) MOKA_TRY(moka_layer_reserve(l, &s->x_copy, &s->x_cap, n, "a copy of x", err));
    return MOKA_OK;
}

static moka_status log_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    log_state *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float a = s->scale, b = s->shift, k = s->base_scale;
    if (l->in_place) memcpy(s->x_copy, x, (size_t)n * sizeof *x);
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = logf(b + a * x[i]) * k;
    return MOKA_OK;
}

static moka_status log_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const log_state *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *x = l->in_place ? s->x_copy : l->bottom[0]->data, *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float a = s->scale, b = s->shift, k = s->scale * s->base_scale;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * k / (b + a * x[i]);
    return MOKA_OK;
}

static void log_destroy(moka_layer *l)
{
    log_state *s = l->state;
    free(s->x_copy);
    s->x_copy = NULL;
}

const moka_layer_ops moka_layer_log = {
    .type = "Log",
    .param_field = "log_param",
    .state_size = sizeof(log_state),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = log_setup,
    .reshape = log_reshape,
    .forward_cpu = log_forward_cpu,
    .backward_cpu = log_backward_cpu,
    .destroy = log_destroy,
};
