/* src/layers/relu.c -- Caffe's ReLU, with an optional leak for negative inputs:
 *   y  = x                   if x > 0,  negative_slope * x   otherwise
 *   dx = dy                  if x > 0,  negative_slope * dy  otherwise
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x (may be x itself: Caffe's in-place `bottom: "a" top: "a"`)
 * Reference: Caffe's relu_layer.cpp (ReLUParameter negative_slope; engine is accepted and has
 * no effect on the CPU).
 */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "core/layout.h"

/* Element counts below this run on one thread: spawning the team would cost more. */
#define PAR_MIN 4096

typedef struct {
    float slope;
    /* In place with a negative slope, y > 0 no longer tells whether x > 0 (a negative x times a
     * negative slope is positive), so forward keeps a copy of x for backward. */
    float *x_copy;
    int64_t x_cap;
    float *dx_held; /* dx in a held layout (see relu_backward_cpu) */
    int64_t dx_held_cap;
} relu;

static moka_status relu_setup(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    relu *s = l->state;
    s->slope = (float)moka_pt_float(l->param, "negative_slope");
    return MOKA_OK;
}

static moka_status relu_reshape(moka_layer *l, moka_err *err)
{
    relu *s = l->state;
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], l->bottom[0], err));
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->in_place && s->slope < 0.0f)
        MOKA_TRY(moka_layer_reserve(l, &s->x_copy, &s->x_cap, n, "a copy of x", err));
    return MOKA_OK;
}

/* In place on data a convolution holds in its layout (src/core/layout.h), ReLU works there (one
 * value per element whatever the order), and so does backward when the layer above held dy in
 * the same layout. With a negative slope in place, forward keeps a copy of x, so it works on
 * plain data. */
static bool works_held(const moka_layer *l, const relu *s)
{
    return l->in_place && s->slope >= 0.0f;
}

static moka_status relu_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    relu *s = l->state;
    const moka_held *h = moka_held_get(l->bottom[0], false);
    if (h && !works_held(l, s)) {
        moka_tensor_sync(l->bottom[0], false);
        moka_held_drop(l->top[0], false);
        h = NULL;
    }
    const float *x = h ? h->ptr : l->bottom[0]->data;
    float *y = h ? h->ptr : l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float slope = s->slope;
    /* Writing the held copy leaves the plain one stale. */
    if (h) moka_held_set(l->top[0], false, h->layout, h->ptr);
    if (l->in_place && slope < 0.0f) memcpy(s->x_copy, x, (size_t)n * sizeof *x);
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
    return MOKA_OK;
}

static moka_status relu_backward_cpu(moka_layer *l, moka_err *err)
{
    relu *s = l->state;
    if (!moka_layer_needs_bottom_grad(l, 0)) return MOKA_OK;
    const moka_held *hd = moka_held_get(l->top[0], false), *hg = moka_held_get(l->top[0], true);
    if (hg && hd && hd->layout == hg->layout && works_held(l, s) &&
        moka_held_possible(l->bottom[0])) {
        /* y and dy held in one layout: dx is written whole in it, in a buffer of the layer's
         * own (dy stays what it was, as on the plain path), and becomes the bottom's held
         * gradient. 0 + (...) as the plain path adds into zeroed dx (so -0 comes out +0). */
        const int64_t n = moka_tensor_count(l->bottom[0]);
        MOKA_TRY(moka_layer_reserve(l, &s->dx_held, &s->dx_held_cap, n, "dx", err));
        const float *y = hd->ptr, *g = hg->ptr;
        float *d = s->dx_held;
        const float slope = s->slope;
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) d[i] = 0.0f + (y[i] > 0.0f ? g[i] : slope * g[i]);
        moka_held_set(l->bottom[0], true, hg->layout, d);
        return MOKA_OK;
    }
    moka_tensor_sync(l->top[0], true);
    moka_tensor_sync(l->top[0], false);
    moka_tensor_sync(l->bottom[0], false);
    bool whole;
    float *dx = moka_layer_bottom_grad_whole(l, 0, &whole);
    /* Out of place x is the bottom. In place with slope >= 0, y > 0 exactly when x > 0, so y
     * serves as x's sign; with slope < 0 forward kept x. */
    const float *x = !l->in_place ? l->bottom[0]->data : s->slope < 0.0f ? s->x_copy
                                                                         : l->top[0]->data;
    const float *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    const float slope = s->slope;
    if (whole) {
        /* 0 + (...), as adding into zeroed dx gives (-0 comes out +0). */
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] = 0.0f + (x[i] > 0.0f ? dy[i] : slope * dy[i]);
    } else {
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0.0f ? dy[i] : slope * dy[i];
    }
    return MOKA_OK;
}

static void relu_destroy(moka_layer *l)
{
    relu *s = l->state;
    free(s->x_copy);
    s->x_copy = NULL;
    free(s->dx_held);
    s->dx_held = NULL;
}

const moka_layer_ops moka_layer_relu = {
    .type = "ReLU",
    .param_field = "relu_param",
    .state_size = sizeof(relu),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .reads_held = true,
    .setup = relu_setup,
    .reshape = relu_reshape,
    .forward_cpu = relu_forward_cpu,
    .backward_cpu = relu_backward_cpu,
    .destroy = relu_destroy,
};
