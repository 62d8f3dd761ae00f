/* src/layers/scale.c -- Caffe's Scale: multiplies x by a scale broadcast over the axes it lacks,
 * optionally adding a bias of the same shape.
 *   x seen as (O, D, I): O = product of x's dims before `axis`, D = the scale's dims, I = the rest
 *   y[o,d,i]  = x[o,d,i] * s[d] (+ b[d])
 *   dx       += dy * s[d]
 *   ds[d]    += sum over o, i of dy * x
 *   db[d]    += sum over o, i of dy
 *   bottom[0]  x  any shape
 *   bottom[1]  s  (optional) the scale, shaped like x's dims axis .. axis + s.ndim - 1
 *   top[0]     y  same shape as x (may be x itself, in place: forward keeps a copy of x)
 *   weight[0]  s  (learned form only) x's dims axis .. axis + num_axes - 1 (num_axes -1: to the
 *                 end); filler defaults to constant 1
 *   weight[-1] b  (bias_term only) same shape as s; bias_filler defaults to constant 0
 * A scale with no axes (num_axes 0) is one scalar; Caffe stores it as a 0-d blob, moka as (1).
 * Reference: Caffe's scale_layer.cpp and bias_layer.cpp.
 */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "layers/broadcast.h"
#include "moka/log.h"

#define PAR_MIN 32768

typedef struct {
    bool bias_term;
    int s_ndim;                    /* axes of the learned scale (0: a scalar) */
    int64_t s_shape[MOKA_MAX_NDIM];
    moka_broadcast bc;             /* x seen as (O, D, I), and scratch for the reductions */
    float *x_copy;                 /* x kept for backward when running in place */
    int64_t x_cap;
} scale;

static moka_status scale_setup(moka_layer *l, moka_err *err)
{
    scale *s = l->state;
    s->bias_term = moka_pt_bool(l->param, "bias_term");
    if (l->num_bottom == 2) {
        /* Caffe ignores these when the scale is a bottom; say so rather than stay silent. */
        if (moka_pt_has(l->param, "filler") || moka_pt_has(l->param, "num_axes"))
            moka_logf(MOKA_LOG_WARN, "layer",
                      "layer '%s' (Scale): filler and num_axes are unused when the scale is "
                      "bottom[1]", l->name);
        s->s_ndim = l->bottom[1]->ndim;
        memcpy(s->s_shape, l->bottom[1]->shape, sizeof s->s_shape);
    } else {
        MOKA_TRY(moka_broadcast_learned_shape(l, "scale", &s->s_ndim, s->s_shape, err));
        const moka_fill fill = moka_pt_has(l->param, "filler")
                                   ? MOKA_FILL_FROM(moka_pt_msg(l->param, "filler"))
                                   : MOKA_FILL_CONST(1.0f);
        MOKA_TRY(moka_layer_add_weight(l, "scale", s->s_ndim, s->s_shape, fill, err));
    }
    if (!s->bias_term) {
        if (moka_pt_has(l->param, "bias_filler"))
            moka_logf(MOKA_LOG_WARN, "layer",
                      "layer '%s' (Scale): bias_filler is unused without bias_term", l->name);
        return MOKA_OK;
    }
    const moka_fill bias_fill = MOKA_FILL_FROM(moka_pt_msg(l->param, "bias_filler"));
    return moka_layer_add_weight(l, "bias", s->s_ndim, s->s_shape, bias_fill, err);
}

static moka_status scale_reshape(moka_layer *l, moka_err *err)
{
    scale *s = l->state;
    const moka_tensor *x = l->bottom[0];
    int s_ndim = s->s_ndim;
    const int64_t *s_shape = s->s_shape;
    if (l->num_bottom == 2) {
        s_ndim = l->bottom[1]->ndim;
        s_shape = l->bottom[1]->shape;
    }
    MOKA_TRY(moka_broadcast_fit(l, "scale", s_ndim, s_shape, &s->bc, err));
    /* With the scale a bottom, the bias was sized from its first shape and cannot follow. */
    if (s->bias_term && moka_tensor_count(l->weight[l->num_weight - 1]) != s->bc.dim)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "bottom[1] now has %lld elements but the bias has %lld",
                               (long long)s->bc.dim,
                               (long long)moka_tensor_count(l->weight[l->num_weight - 1]));
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], x, err));
    const int64_t n = moka_tensor_count(x);
    if (l->in_place) MOKA_TRY(moka_layer_reserve(l, &s->x_copy, &s->x_cap, n, "a copy of x", err));
    return moka_broadcast_reserve(l, &s->bc, err);
}

static moka_status scale_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    scale *s = l->state;
    const float *x = l->bottom[0]->data;
    const float *sc = l->num_bottom == 2 ? l->bottom[1]->data : l->weight[0]->data;
    const float *b = s->bias_term ? l->weight[l->num_weight - 1]->data : NULL;
    float *y = l->top[0]->data;
    const int64_t dim = s->bc.dim, inner = s->bc.inner, rows = s->bc.outer * s->bc.dim;
    if (l->in_place) memcpy(s->x_copy, x, (size_t)(rows * inner) * sizeof *x);
#pragma omp parallel for if (rows * inner >= PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float k = sc[r % dim];
        const int64_t off = r * inner;
        if (b) {
            const float c = b[r % dim];
            for (int64_t i = off; i < off + inner; i++) y[i] = x[i] * k + c;
        } else {
            for (int64_t i = off; i < off + inner; i++) y[i] = x[i] * k;
        }
    }
    return MOKA_OK;
}

static moka_status scale_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    scale *s = l->state;
    const bool from_bottom = l->num_bottom == 2;
    const float *dy = l->top[0]->grad;
    const float *x = l->in_place ? s->x_copy : l->bottom[0]->data;
    const float *sc = from_bottom ? l->bottom[1]->data : l->weight[0]->data;
    float *dx = moka_layer_bottom_grad(l, 0);
    float *ds = from_bottom ? moka_layer_bottom_grad(l, 1) : l->weight[0]->grad;
    float *db = s->bias_term ? l->weight[l->num_weight - 1]->grad : NULL;
    const int64_t dim = s->bc.dim, inner = s->bc.inner, rows = s->bc.outer * s->bc.dim;
    if (db) moka_broadcast_reduce_add(&s->bc, dy, NULL, db);
    if (ds) moka_broadcast_reduce_add(&s->bc, dy, x, ds);
    if (dx) {
#pragma omp parallel for if (rows * inner >= PAR_MIN) schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            const float k = sc[r % dim];
            for (int64_t i = r * inner; i < (r + 1) * inner; i++) dx[i] += dy[i] * k;
        }
    }
    return MOKA_OK;
}

static void scale_destroy(moka_layer *l)
{
    scale *s = l->state;
    free(s->x_copy);
    s->x_copy = NULL;
    moka_broadcast_deinit(&s->bc);
}

const moka_layer_ops moka_layer_scale = {
    .type = "Scale",
    .param_field = "scale_param",
    .state_size = sizeof(scale),
    .min_bottom = 1, .max_bottom = 2, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = scale_setup,
    .reshape = scale_reshape,
    .forward_cpu = scale_forward_cpu,
    .backward_cpu = scale_backward_cpu,
    .destroy = scale_destroy,
};
