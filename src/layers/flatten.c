/* src/layers/flatten.c -- Caffe's Flatten: merges the axes [axis, end_axis] into one.
 *   bottom[0]  x  (d0, ..., d_{a-1}, d_a, ..., d_e, d_{e+1}, ...)
 *   top[0]     y  (d0, ..., d_{a-1}, d_a * ... * d_e, d_{e+1}, ...)
 *   y = x element for element (row-major order is unchanged), dx += dy
 * axis and end_axis may be negative (counted from the end; end_axis -1 is the last axis). As in
 * Caffe, end_axis = axis - 1 is allowed and inserts an axis of length 1. Caffe shares memory
 * between top and bottom; moka copies. Reference: Caffe's src/caffe/layers/flatten_layer.cpp.
 */
#include <string.h>

#include "core/layer.h"

static moka_status flatten_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status flatten_reshape(moka_layer *l, moka_err *err)
{
    const moka_tensor *x = l->bottom[0];
    const int ndim = x->ndim;
    const int64_t axis = moka_pt_int(l->param, "axis"), end = moka_pt_int(l->param, "end_axis");
    char bs[128];
    if (axis < -ndim || axis >= ndim || end < -ndim || end >= ndim)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "axis %lld or end_axis %lld is out of range for a %d-D bottom (%s)",
                               (long long)axis, (long long)end, ndim,
                               moka_tensor_shape_str(x, bs, sizeof bs));
    const int a = (int)(axis < 0 ? axis + ndim : axis), e = (int)(end < 0 ? end + ndim : end);
    if (e < a - 1)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "end_axis %lld (axis %d of the bottom %s) is more than one "
                               "axis before axis %lld (axis %d)",
                               (long long)end, e, moka_tensor_shape_str(x, bs, sizeof bs),
                               (long long)axis, a);
    int64_t shape[MOKA_MAX_NDIM];
    int nd = 0;
    for (int d = 0; d < a; d++) shape[nd++] = x->shape[d];
    shape[nd++] = moka_tensor_count_range(x, a, e + 1);
    for (int d = e + 1; d < ndim; d++) {
        if (nd == MOKA_MAX_NDIM)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "the top would have more than %d axes",
                                   MOKA_MAX_NDIM);
        shape[nd++] = x->shape[d];
    }
    return moka_tensor_set_shape(l->top[0], nd, shape, err);
}

static moka_status flatten_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    memcpy(l->top[0]->data, l->bottom[0]->data,
           (size_t)moka_tensor_count(l->bottom[0]) * sizeof(float));
    return MOKA_OK;
}

static moka_status flatten_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
#pragma omp parallel for if (n > (1 << 16))
    for (int64_t j = 0; j < n; j++) dx[j] += dy[j];
    return MOKA_OK;
}

const moka_layer_ops moka_layer_flatten = {
    .type = "Flatten",
    .param_field = "flatten_param",
    .min_bottom = 1,
    .max_bottom = 1,
    .min_top = 1,
    .max_top = 1,
    .setup = flatten_setup,
    .reshape = flatten_reshape,
    .forward_cpu = flatten_forward_cpu,
    .backward_cpu = flatten_backward_cpu,
};
