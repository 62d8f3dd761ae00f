/* src/layers/exp.c -- Caffe's Exp:
 *   y  = base ^ (shift + scale * x)      (base -1 means e)
 *      = outer * exp(inner * x),  inner = ln(base) * scale,  outer = base ^ shift
 *   dx = dy * inner * y
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x (may be x itself: backward reads only y)
 * Reference: Caffe's exp_layer.cpp (ExpParameter base -1, scale 1, shift 0).
 */
#include <math.h>

#include "core/layer.h"

#define PAR_MIN 32768

typedef struct {
    float inner, outer;
} exp_state;

static moka_status exp_setup(moka_layer *l, moka_err *err)
{
    exp_state *s = l->state;
    const double base = moka_pt_float(l->param, "base");
    const double scale = moka_pt_float(l->param, "scale"), shift = moka_pt_float(l->param, "shift");
    if (base != -1.0 && !(base > 0.0))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "base", 0),
                            "layer '%s': exp_param base must be positive or -1 (for e), got %g",
                            l->name, base);
    const double log_base = base == -1.0 ? 1.0 : log(base);
    if (!isfinite(log_base))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "base", 0),
                            "layer '%s': exp_param base %g has no finite logarithm", l->name,
                            base);
    s->inner = (float)(log_base * scale);
    s->outer = (float)(shift == 0.0 ? 1.0 : base == -1.0 ? exp(shift) : pow(base, shift));
    return MOKA_OK;
}

static moka_status exp_reshape(moka_layer *l, moka_err *err)
{
    return moka_tensor_set_shape_like(l->top[0], l->bottom[0], err);
}

static moka_status exp_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const exp_state *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float inner = s->inner, outer = s->outer;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = outer * expf(inner * x[i]);
    return MOKA_OK;
}

static moka_status exp_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const exp_state *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *y = l->top[0]->data, *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float inner = s->inner;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * inner;
    return MOKA_OK;
}

const moka_layer_ops moka_layer_exp = {
    .type = "Exp",
    .param_field = "exp_param",
    .state_size = sizeof(exp_state),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = exp_setup,
    .reshape = exp_reshape,
    .forward_cpu = exp_forward_cpu,
    .backward_cpu = exp_backward_cpu,
};
