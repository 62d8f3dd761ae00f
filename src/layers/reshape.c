/* src/layers/reshape.c -- Caffe's Reshape: gives the bottom's data a new shape.
 *   bottom[0]  x  (d0, ..., dn-1), count N
 *   top[0]     y  the bottom's axes [axis, axis + num_axes) replaced by reshape_param.shape,
 *                 count N; y = x element for element, dx += dy
 * In shape, a dim of 0 copies the bottom's dim at the same position (counted from axis), and
 * one dim of -1 is inferred so that the count stays N. axis may be negative: -1 means after the
 * last axis (so shape is appended), -2 before the last, and so on; num_axes -1 means all axes
 * from axis on. Caffe shares memory between top and bottom; moka copies.
 * Reference: Caffe's src/caffe/layers/reshape_layer.cpp.
 */
#include <stdio.h>
#include <string.h>

#include "core/layer.h"

typedef struct {
    int ndim;                   /* dims in reshape_param.shape */
    int64_t dim[MOKA_MAX_NDIM]; /* as written: > 0, 0 (copy) or -1 (infer) */
    int inferred;               /* index of the -1, or -1 */
    char spec[160];             /* the dims as written, for messages: "5 -1" */
} reshape;

static moka_status reshape_setup(moka_layer *l, moka_err *err)
{
    reshape *s = l->state;
    const moka_pt_node *shape = moka_pt_msg(l->param, "shape");
    const int n = moka_pt_count(shape, "dim");
    if (n > MOKA_MAX_NDIM)
        return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(shape, "dim", 0),
                            "layer '%s': reshape_param.shape has %d dims; moka supports at most %d",
                            l->name, n, MOKA_MAX_NDIM);
    s->ndim = n;
    s->inferred = -1;
    int len = 0;
    s->spec[0] = '\0';
    for (int i = 0; i < n; i++) {
        const int64_t d = moka_pt_int_at(shape, "dim", i);
        if (d < -1)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(shape, "dim", i),
                                "layer '%s': reshape dim %lld is invalid; use a positive size, 0 "
                                "to copy the bottom's dim or -1 to infer it",
                                l->name, (long long)d);
        if (d == -1) {
            if (s->inferred >= 0)
                return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(shape, "dim", i),
                                    "layer '%s': reshape_param.shape has more than one -1 dim; at "
                                    "most one can be inferred",
                                    l->name);
            s->inferred = i;
        }
        s->dim[i] = d;
        if (len < (int)sizeof s->spec)
            len += snprintf(s->spec + len, sizeof s->spec - (size_t)len, "%s%lld", i ? " " : "",
                            (long long)d);
    }
    if (n == 0) snprintf(s->spec, sizeof s->spec, "(no dims)");
    if (moka_pt_int(l->param, "num_axes") < -1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "num_axes", 0),
                            "layer '%s': num_axes %lld is invalid; use a count >= 0, or -1 for "
                            "all axes from axis on",
                            l->name, (long long)moka_pt_int(l->param, "num_axes"));
    return MOKA_OK;
}

static moka_status reshape_reshape(moka_layer *l, moka_err *err)
{
    const reshape *s = l->state;
    const moka_tensor *x = l->bottom[0];
    const int ndim = x->ndim;
    const int64_t axis = moka_pt_int(l->param, "axis");
    const int64_t num_axes = moka_pt_int(l->param, "num_axes");
    char bs[128], where[64] = "";
    moka_tensor_shape_str(x, bs, sizeof bs);
    if (axis != 0 || num_axes != -1)
        snprintf(where, sizeof where, " (axis %lld, num_axes %lld)", (long long)axis,
                 (long long)num_axes);
    const int64_t start = axis >= 0 ? axis : ndim + axis + 1;
    if (start < 0 || start > ndim)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "cannot reshape %s to %s%s: axis %lld is out of range for a %d-D "
                               "bottom",
                               bs, s->spec, where, (long long)axis, ndim);
    const int64_t end = num_axes == -1 ? ndim : start + num_axes;
    if (end > ndim)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "cannot reshape %s to %s%s: axis + num_axes = %lld is past the "
                               "bottom's %d axes",
                               bs, s->spec, where, (long long)end, ndim);
    const int top_ndim = ndim - (int)(end - start) + s->ndim;
    if (top_ndim > MOKA_MAX_NDIM)
        return moka_layer_errf(l, err, MOKA_ERR_UNSUPPORTED,
                               "cannot reshape %s to %s%s: the top would have %d axes; moka "
                               "supports at most %d",
                               bs, s->spec, where, top_ndim, MOKA_MAX_NDIM);
    int64_t shape[MOKA_MAX_NDIM];
    int k = 0;
    for (int d = 0; d < start; d++) shape[k++] = x->shape[d];
    for (int i = 0; i < s->ndim; i++) {
        int64_t d = s->dim[i];
        if (d == 0) {
            if (start + i >= ndim)
                return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                       "cannot reshape %s to %s%s: dim %d is 0 (copy) but the "
                                       "bottom has no axis %lld to copy",
                                       bs, s->spec, where, i, (long long)(start + i));
            d = x->shape[start + i];
        }
        shape[k++] = d;
    }
    for (int64_t d = end; d < ndim; d++) shape[k++] = x->shape[d];
    const int64_t count = moka_tensor_count(x);
    if (s->inferred >= 0) {
        int64_t known = 1;
        for (int d = 0; d < top_ndim; d++)
            if (d != start + s->inferred) known *= shape[d];
        if (known == 0 || count % known != 0)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "cannot reshape %s to %s%s: the count %lld is not divisible by "
                                   "the product %lld of the other dims",
                                   bs, s->spec, where, (long long)count, (long long)known);
        shape[start + s->inferred] = count / known;
    }
    int64_t top_count = 1;
    for (int d = 0; d < top_ndim; d++) top_count *= shape[d];
    if (top_count != count)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "cannot reshape %s to %s%s: the top would hold %lld elements, the "
                               "bottom holds %lld",
                               bs, s->spec, where, (long long)top_count, (long long)count);
    return moka_tensor_set_shape(l->top[0], top_ndim, shape, err);
}

static moka_status reshape_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    memcpy(l->top[0]->data, l->bottom[0]->data,
           (size_t)moka_tensor_count(l->bottom[0]) * sizeof(float));
    return MOKA_OK;
}

static moka_status reshape_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t j = 0; j < n; j++) dx[j] += dy[j];
    return MOKA_OK;
}

const moka_layer_ops moka_layer_reshape = {
    .type = "Reshape",
    .param_field = "reshape_param",
    .state_size = sizeof(reshape),
    .min_bottom = 1,
    .max_bottom = 1,
    .min_top = 1,
    .max_top = 1,
    .setup = reshape_setup,
    .reshape = reshape_reshape,
    .forward_cpu = reshape_forward_cpu,
    .backward_cpu = reshape_backward_cpu,
};
