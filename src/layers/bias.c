/* src/layers/bias.c -- Caffe's Bias: adds a bias broadcast over the axes it lacks.
 *   x seen as (O, D, I): O = product of x's dims before `axis`, D = the bias's dims, I = the rest
 *   y[o,d,i]  = x[o,d,i] + b[d]
 *   dx       += dy
 *   db[d]    += sum over o, i of dy
 *   bottom[0]  x  any shape
 *   bottom[1]  b  (optional) the bias, shaped like x's dims axis .. axis + b.ndim - 1
 *   top[0]     y  same shape as x (may be x itself, in place)
 *   weight[0]  b  (learned form only) x's dims axis .. axis + num_axes - 1 (num_axes -1: to the
 *                 end); filler defaults to constant 0
 * A bias with no axes (num_axes 0) is one scalar; Caffe stores it as a 0-d blob, moka as (1).
 * Reference: Caffe's bias_layer.cpp.
 */
#include "core/layer.h"
#include "layers/broadcast.h"
#include "moka/log.h"

#define PAR_MIN 32768

typedef struct {
    int b_ndim;                    /* axes of the learned bias (0: a scalar) */
    int64_t b_shape[MOKA_MAX_NDIM];
    moka_broadcast bc;             /* x seen as (O, D, I), and scratch for the reduction */
} bias;

static moka_status bias_setup(moka_layer *l, moka_err *err)
{
    bias *s = l->state;
    if (l->num_bottom == 2) {
        /* Caffe ignores these when the bias is a bottom; say so rather than stay silent. */
        if (moka_pt_has(l->param, "filler") || moka_pt_has(l->param, "num_axes"))
            moka_logf(MOKA_LOG_WARN, "layer",
                      "layer '%s' (Bias): filler and num_axes are unused when the bias is "
                      "bottom[1]", l->name);
        return MOKA_OK;
    }
    MOKA_TRY(moka_broadcast_learned_shape(l, "bias", &s->b_ndim, s->b_shape, err));
    const moka_fill fill = MOKA_FILL_FROM(moka_pt_msg(l->param, "filler"));
    return moka_layer_add_weight(l, "bias", s->b_ndim, s->b_shape, fill, err);
}

static moka_status bias_reshape(moka_layer *l, moka_err *err)
{
    bias *s = l->state;
    const moka_tensor *x = l->bottom[0];
    int b_ndim = s->b_ndim;
    const int64_t *b_shape = s->b_shape;
    if (l->num_bottom == 2) {
        b_ndim = l->bottom[1]->ndim;
        b_shape = l->bottom[1]->shape;
    }
    MOKA_TRY(moka_broadcast_fit(l, "bias", b_ndim, b_shape, &s->bc, err));
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], x, err));
    return moka_broadcast_reserve(l, &s->bc, err);
}

static moka_status bias_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const bias *s = l->state;
    const float *x = l->bottom[0]->data;
    const float *b = l->num_bottom == 2 ? l->bottom[1]->data : l->weight[0]->data;
    float *y = l->top[0]->data;
    const int64_t dim = s->bc.dim, inner = s->bc.inner, rows = s->bc.outer * s->bc.dim;
    /* Element by element, so y may be x. */
#pragma omp parallel for if (rows * inner >= PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float c = b[r % dim];
        for (int64_t i = r * inner; i < (r + 1) * inner; i++) y[i] = x[i] + c;
    }
    return MOKA_OK;
}

static moka_status bias_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    bias *s = l->state;
    const float *dy = l->top[0]->grad;
    float *dx = moka_layer_bottom_grad(l, 0);
    float *db = l->num_bottom == 2 ? moka_layer_bottom_grad(l, 1) : l->weight[0]->grad;
    if (dx) {
        const int64_t n = s->bc.outer * s->bc.dim * s->bc.inner;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
    }
    if (db) moka_broadcast_reduce_add(&s->bc, dy, NULL, db);
    return MOKA_OK;
}

static void bias_destroy(moka_layer *l)
{
    bias *s = l->state;
    moka_broadcast_deinit(&s->bc);
}

const moka_layer_ops moka_layer_bias = {
    .type = "Bias",
    .param_field = "bias_param",
    .state_size = sizeof(bias),
    .min_bottom = 1, .max_bottom = 2, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = bias_setup,
    .reshape = bias_reshape,
    .forward_cpu = bias_forward_cpu,
    .backward_cpu = bias_backward_cpu,
    .destroy = bias_destroy,
};
