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
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "moka/log.h"

#define PAR_MIN 32768

typedef struct {
    int b_ndim;                    /* axes of the learned bias (0: a scalar) */
    int64_t b_shape[MOKA_MAX_NDIM];
    int64_t outer, dim, inner;     /* x seen as (O, D, I) */
    double *rows; /* (O, D) per-row sums for the reduction, so it runs in a fixed order */
    int64_t rows_cap;
} bias;

/* The config's axis mapped into [0, ndim), or an error at the axis field. */
static moka_status config_axis(moka_layer *l, const moka_tensor *x, int *axis, moka_err *err)
{
    const int64_t a = moka_pt_int(l->param, "axis");
    if (a < -x->ndim || a >= x->ndim)
        return moka_pt_errf(err, MOKA_ERR_SHAPE, moka_pt_node_at(l->param, "axis", 0),
                            "layer '%s': bias_param axis %lld is out of range for a %d-D bottom",
                            l->name, (long long)a, x->ndim);
    *axis = (int)(a < 0 ? a + x->ndim : a);
    return MOKA_OK;
}

static moka_status bias_setup(moka_layer *l, moka_err *err)
{
    bias *s = l->state;
    const moka_tensor *x = l->bottom[0];
    if (l->num_bottom == 2) {
        /* Caffe ignores these when the bias is a bottom; say so rather than stay silent. */
        if (moka_pt_has(l->param, "filler") || moka_pt_has(l->param, "num_axes"))
            moka_logf(MOKA_LOG_WARN, "layer",
                      "layer '%s' (Bias): filler and num_axes are unused when the bias is "
                      "bottom[1]", l->name);
        return MOKA_OK;
    }
    int axis;
    MOKA_TRY(config_axis(l, x, &axis, err));
    const int64_t num_axes = moka_pt_int(l->param, "num_axes");
    if (num_axes < -1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "num_axes", 0),
                            "layer '%s': bias_param num_axes must be >= 0, or -1 for all axes "
                            "from axis on, got %lld",
                            l->name, (long long)num_axes);
    if (num_axes > x->ndim - axis)
        return moka_pt_errf(err, MOKA_ERR_SHAPE, moka_pt_node_at(l->param, "num_axes", 0),
                            "layer '%s': a bias of %lld axes from axis %d extends past the %d-D "
                            "bottom",
                            l->name, (long long)num_axes, axis, x->ndim);
    s->b_ndim = num_axes == -1 ? x->ndim - axis : (int)num_axes;
    memcpy(s->b_shape, x->shape + axis, (size_t)s->b_ndim * sizeof(int64_t));
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
    /* A scalar bias applies the same way from any axis; Caffe then uses axis 0. */
    int axis = 0;
    if (b_ndim > 0) MOKA_TRY(config_axis(l, x, &axis, err));
    if (axis + b_ndim > x->ndim)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "a %d-D bias from axis %d extends past the %d-D bottom", b_ndim,
                               axis, x->ndim);
    for (int i = 0; i < b_ndim; i++)
        if (x->shape[axis + i] != b_shape[i])
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "dimension mismatch between bottom[0] shape(%d) = %lld and "
                                   "bias shape(%d) = %lld",
                                   axis + i, (long long)x->shape[axis + i], i,
                                   (long long)b_shape[i]);
    s->outer = moka_tensor_count_range(x, 0, axis);
    s->inner = moka_tensor_count_range(x, axis + b_ndim, x->ndim);
    s->dim = 1;
    for (int i = 0; i < b_ndim; i++) s->dim *= b_shape[i];
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], x, err));
    if (s->outer * s->dim > s->rows_cap) {
        double *p = realloc(s->rows, (size_t)(s->outer * s->dim) * sizeof *p);
        if (!p) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");
        s->rows = p;
        s->rows_cap = s->outer * s->dim;
    }
    return MOKA_OK;
}

static moka_status bias_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const bias *s = l->state;
    const float *x = l->bottom[0]->data;
    const float *b = l->num_bottom == 2 ? l->bottom[1]->data : l->weight[0]->data;
    float *y = l->top[0]->data;
    const int64_t dim = s->dim, inner = s->inner, rows = s->outer * s->dim;
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
    const int64_t outer = s->outer, dim = s->dim, inner = s->inner, rows = outer * dim;
    if (dx) {
        const int64_t n = rows * inner;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
    }
    if (!db) return MOKA_OK;
#pragma omp parallel for if (rows * inner >= PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        double acc = 0.0;
        for (int64_t i = r * inner; i < (r + 1) * inner; i++) acc += dy[i];
        s->rows[r] = acc;
    }
    /* Then down the columns, each in order of o. */
#pragma omp parallel for if (rows >= PAR_MIN) schedule(static)
    for (int64_t d = 0; d < dim; d++) {
        double acc = 0.0;
        for (int64_t o = 0; o < outer; o++) acc += s->rows[o * dim + d];
        db[d] += (float)acc;
    }
    return MOKA_OK;
}

static void bias_destroy(moka_layer *l)
{
    bias *s = l->state;
    free(s->rows);
    s->rows = NULL;
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
