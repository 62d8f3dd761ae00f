/* src/layers/prelu.c -- Caffe's PReLU: a ReLU whose negative slope is learned per channel.
 *   y[n,c,i]  = x            if x > 0,  a[c] * x   otherwise
 *   dx        = dy           if x > 0,  a[c] * dy  otherwise
 *   da[c]    += sum over n, i of dy * x where x <= 0
 *   bottom[0]  x  (N, C, ...)  trailing dims are flattened into I
 *   top[0]     y  same shape as x (may be x itself, in place)
 *   weight[0]  a  (C), or (1) with channel_shared; filler defaults to constant 0.25
 * Reference: Caffe's prelu_layer.cpp (He et al. 2015). Caffe stores the shared slope as a 0-d
 * blob; moka's weights have at least one dim, so it is (1) here.
 */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

#define PAR_MIN 32768

typedef struct {
    bool shared;
    int64_t channels; /* slopes: C, or 1 when shared */
    float *x_copy;    /* x kept for backward when running in place */
    int64_t x_cap;
    double *partial; /* per-channel sums of the shared slope's gradient, reduced in order */
    int64_t partial_cap;
} prelu;

static moka_status prelu_setup(moka_layer *l, moka_err *err)
{
    prelu *s = l->state;
    const moka_tensor *x = l->bottom[0];
    if (x->ndim < 2)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "bottom must have at least 2 axes (N, C, ...), got %d", x->ndim);
    s->shared = moka_pt_bool(l->param, "channel_shared");
    s->channels = s->shared ? 1 : x->shape[1];
    /* Caffe starts the slopes at 0.25 unless a filler is given. */
    const moka_fill fill = moka_pt_has(l->param, "filler")
                               ? MOKA_FILL_FROM(moka_pt_msg(l->param, "filler"))
                               : MOKA_FILL_CONST(0.25f);
    /* A shared slope is a 0-d blob in Caffe's files. */
    if (s->shared) return moka_layer_add_weight(l, "slope", 0, NULL, fill, err);
    return moka_layer_add_weight(l, "slope", MOKA_SHAPE(s->channels), fill, err);
}

static moka_status prelu_reshape(moka_layer *l, moka_err *err)
{
    prelu *s = l->state;
    const moka_tensor *x = l->bottom[0];
    if (x->ndim < 2)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "bottom must have at least 2 axes (N, C, ...), got %d", x->ndim);
    if (!s->shared && x->shape[1] != s->channels)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "bottom has %lld channels but the slope has %lld (set "
                               "channel_shared for one slope)",
                               (long long)x->shape[1], (long long)s->channels);
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], x, err));
    const int64_t n = moka_tensor_count(x);
    if (l->in_place) MOKA_TRY(moka_layer_reserve(l, &s->x_copy, &s->x_cap, n, "a copy of x", err));
    if (x->shape[1] > s->partial_cap) {
        double *p = realloc(s->partial, (size_t)x->shape[1] * sizeof *p);
        if (!p) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");
        s->partial = p;
        s->partial_cap = x->shape[1];
    }
    return MOKA_OK;
}

static moka_status prelu_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    prelu *s = l->state;
    const moka_tensor *xt = l->bottom[0];
    const float *x = xt->data, *a = l->weight[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(xt), c = xt->shape[1];
    const int64_t inner = moka_tensor_count_range(xt, 2, xt->ndim);
    if (l->in_place) memcpy(s->x_copy, x, (size_t)n * sizeof *x);
    /* One (n, c) plane at a time; planes are disjoint, so in place is safe. */
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t nc = 0; nc < xt->shape[0] * c; nc++) {
        const float slope = a[s->shared ? 0 : nc % c];
        const int64_t off = nc * inner;
        for (int64_t i = off; i < off + inner; i++) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
    }
    return MOKA_OK;
}

static moka_status prelu_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    prelu *s = l->state;
    const moka_tensor *xt = l->bottom[0];
    const float *x = l->in_place ? s->x_copy : xt->data;
    const float *dy = l->top[0]->grad, *a = l->weight[0]->data;
    float *dx = moka_layer_bottom_grad(l, 0), *da = l->weight[0]->grad;
    if (!dx && !da) return MOKA_OK;
    const int64_t num = xt->shape[0], c = xt->shape[1];
    const int64_t inner = moka_tensor_count_range(xt, 2, xt->ndim);
    /* Parallel over channels: each channel sums its own elements in a fixed order, so the
     * result does not depend on the thread count. */
#pragma omp parallel for if (num * c * inner >= PAR_MIN) schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        const float slope = a[s->shared ? 0 : ch];
        double acc = 0.0;
        for (int64_t b = 0; b < num; b++) {
            const int64_t off = (b * c + ch) * inner;
            for (int64_t i = 0; i < inner; i++) {
                const float xv = x[off + i], g = dy[off + i];
                if (xv <= 0.0f) acc += (double)g * xv;
                if (dx) dx[off + i] += xv > 0.0f ? g : slope * g;
            }
        }
        s->partial[ch] = acc;
    }
    if (da) {
        if (s->shared) {
            double acc = 0.0;
            for (int64_t ch = 0; ch < c; ch++) acc += s->partial[ch];
            da[0] += (float)acc;
        } else {
            for (int64_t ch = 0; ch < c; ch++) da[ch] += (float)s->partial[ch];
        }
    }
    return MOKA_OK;
}

static void prelu_destroy(moka_layer *l)
{
    prelu *s = l->state;
    free(s->x_copy);
    free(s->partial);
    s->x_copy = NULL;
    s->partial = NULL;
}

const moka_layer_ops moka_layer_prelu = {
    .type = "PReLU",
    .param_field = "prelu_param",
    .state_size = sizeof(prelu),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = prelu_setup,
    .reshape = prelu_reshape,
    .forward_cpu = prelu_forward_cpu,
    .backward_cpu = prelu_backward_cpu,
    .destroy = prelu_destroy,
};
