/* src/layers/broadcast.c -- the broadcast-operand helpers of broadcast.h (contract there). */
#include "layers/broadcast.h"

#include <stdlib.h>
#include <string.h>

/* Element counts below this run on one thread: spawning the team would cost more. */
#define PAR_MIN 32768

/* The config's axis mapped into [0, ndim), or an error at the axis field. */
static moka_status config_axis(moka_layer *l, const char *what, const moka_tensor *x, int *axis,
                               moka_err *err)
{
    const int64_t a = moka_pt_int(l->param, "axis");
    if (a < -x->ndim || a >= x->ndim)
        return moka_pt_errf(err, MOKA_ERR_SHAPE, moka_pt_node_at(l->param, "axis", 0),
                            "layer '%s': %s_param axis %lld is out of range for a %d-D bottom",
                            l->name, what, (long long)a, x->ndim);
    *axis = (int)(a < 0 ? a + x->ndim : a);
    return MOKA_OK;
}

moka_status moka_broadcast_learned_shape(moka_layer *l, const char *what, int *ndim,
                                         int64_t shape[MOKA_MAX_NDIM], moka_err *err)
{
    const moka_tensor *x = l->bottom[0];
    int axis;
    MOKA_TRY(config_axis(l, what, x, &axis, err));
    const int64_t num_axes = moka_pt_int(l->param, "num_axes");
    if (num_axes < -1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "num_axes", 0),
                            "layer '%s': %s_param num_axes must be >= 0, or -1 for all axes "
                            "from axis on, got %lld",
                            l->name, what, (long long)num_axes);
    if (num_axes > x->ndim - axis)
        return moka_pt_errf(err, MOKA_ERR_SHAPE, moka_pt_node_at(l->param, "num_axes", 0),
                            "layer '%s': a %s of %lld axes from axis %d extends past the %d-D "
                            "bottom",
                            l->name, what, (long long)num_axes, axis, x->ndim);
    *ndim = num_axes == -1 ? x->ndim - axis : (int)num_axes;
    memcpy(shape, x->shape + axis, (size_t)*ndim * sizeof(int64_t));
    return MOKA_OK;
}

moka_status moka_broadcast_fit(moka_layer *l, const char *what, int ndim, const int64_t *shape,
                               moka_broadcast *b, moka_err *err)
{
    const moka_tensor *x = l->bottom[0];
    /* A scalar applies the same way from any axis; Caffe then uses axis 0. */
    int axis = 0;
    if (ndim > 0) MOKA_TRY(config_axis(l, what, x, &axis, err));
    if (axis + ndim > x->ndim)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "a %d-D %s from axis %d extends past the %d-D bottom", ndim, what,
                               axis, x->ndim);
    for (int i = 0; i < ndim; i++)
        if (x->shape[axis + i] != shape[i])
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "dimension mismatch between bottom[0] shape(%d) = %lld and "
                                   "%s shape(%d) = %lld",
                                   axis + i, (long long)x->shape[axis + i], what, i,
                                   (long long)shape[i]);
    b->outer = moka_tensor_count_range(x, 0, axis);
    b->inner = moka_tensor_count_range(x, axis + ndim, x->ndim);
    b->dim = 1;
    for (int i = 0; i < ndim; i++) b->dim *= shape[i];
    return MOKA_OK;
}

moka_status moka_broadcast_reserve(moka_layer *l, moka_broadcast *b, moka_err *err)
{
    if (b->outer * b->dim > b->rows_cap) {
        double *p = realloc(b->rows, (size_t)(b->outer * b->dim) * sizeof *p);
        if (!p) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");
        b->rows = p;
        b->rows_cap = b->outer * b->dim;
    }
    return MOKA_OK;
}

void moka_broadcast_reduce_add(moka_broadcast *b, const float *dy, const float *x, float *g)
{
    const int64_t outer = b->outer, dim = b->dim, inner = b->inner, rows = outer * dim;
    double *sums = b->rows;
#pragma omp parallel for if (rows * inner >= PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        double acc = 0.0;
        if (x)
            for (int64_t i = r * inner; i < (r + 1) * inner; i++) acc += (double)dy[i] * x[i];
        else
            for (int64_t i = r * inner; i < (r + 1) * inner; i++) acc += dy[i];
        sums[r] = acc;
    }
    /* Then down the columns, each in order of o. */
#pragma omp parallel for if (rows >= PAR_MIN) schedule(static)
    for (int64_t d = 0; d < dim; d++) {
        double acc = 0.0;
        for (int64_t o = 0; o < outer; o++) acc += sums[o * dim + d];
        g[d] += (float)acc;
    }
}

void moka_broadcast_deinit(moka_broadcast *b)
{
    free(b->rows);
    b->rows = NULL;
    b->rows_cap = 0;
}
