/* src/layers/concat.c -- Caffe's Concat: joins its bottoms along one axis.
 *   bottom[i]  x_i  (d0, ..., A_i, ..., dk)  all dims equal except the concat axis
 *   top[0]     y    (d0, ..., sum_i A_i, ..., dk)
 * Seen as (outer, A, inner) with outer = count(0, axis) and inner = count(axis + 1):
 *   y[o, off_i + a, j] = x_i[o, a, j],  off_i = A_0 + ... + A_{i-1}
 *   dx_i[o, a, j] += dy[o, off_i + a, j]
 * The axis comes from concat_param.axis (negative counts from the end) or the legacy
 * concat_dim (non-negative), never both. Reference: Caffe's src/caffe/layers/concat_layer.cpp.
 * Caffe shares memory when there is a single bottom; moka copies, which gives the same values.
 */
#include <string.h>

#include "core/layer.h"

typedef struct {
    int axis;
    int64_t outer, inner, top_axis; /* top seen as (outer, top_axis, inner) */
} concat;

static moka_status concat_setup(moka_layer *l, moka_err *err)
{
    if (moka_pt_has(l->param, "axis") && moka_pt_has(l->param, "concat_dim"))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "concat_dim", 0),
                            "layer '%s': give either axis or concat_dim in concat_param, not both",
                            l->name);
    return MOKA_OK;
}

static moka_status concat_reshape(moka_layer *l, moka_err *err)
{
    concat *s = l->state;
    const moka_tensor *x0 = l->bottom[0];
    const int ndim = x0->ndim;
    char b0[128], bi[128];
    if (moka_pt_has(l->param, "concat_dim")) {
        const int64_t dim = moka_pt_int(l->param, "concat_dim");
        if (dim >= ndim)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "concat_dim %lld is out of range for a %d-D bottom (%s)",
                                   (long long)dim, ndim, moka_tensor_shape_str(x0, b0, sizeof b0));
        s->axis = (int)dim;
    } else {
        const int64_t axis = moka_pt_int(l->param, "axis");
        if (axis < -ndim || axis >= ndim)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "axis %lld is out of range for a %d-D bottom (%s)",
                                   (long long)axis, ndim, moka_tensor_shape_str(x0, b0, sizeof b0));
        s->axis = (int)(axis < 0 ? axis + ndim : axis);
    }
    int64_t shape[MOKA_MAX_NDIM];
    for (int d = 0; d < ndim; d++) shape[d] = x0->shape[d];
    for (int i = 1; i < l->num_bottom; i++) {
        const moka_tensor *x = l->bottom[i];
        bool same = x->ndim == ndim;
        for (int d = 0; same && d < ndim; d++)
            if (d != s->axis && x->shape[d] != x0->shape[d]) same = false;
        if (!same)
            return moka_layer_errf(
                l, err, MOKA_ERR_SHAPE,
                "bottom %d '%s' has shape %s but bottom 0 '%s' has %s; all bottoms must have the "
                "same shape except at the concat axis %d",
                i, moka_pt_str_at(l->cfg, "bottom", i), moka_tensor_shape_str(x, bi, sizeof bi),
                moka_pt_str_at(l->cfg, "bottom", 0), moka_tensor_shape_str(x0, b0, sizeof b0),
                s->axis);
        shape[s->axis] += x->shape[s->axis];
    }
    MOKA_TRY(moka_tensor_set_shape(l->top[0], ndim, shape, err));
    s->outer = moka_tensor_count_range(x0, 0, s->axis);
    s->inner = moka_tensor_count_range(x0, s->axis + 1, ndim);
    s->top_axis = shape[s->axis];
    return MOKA_OK;
}

static moka_status concat_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const concat *s = l->state;
    float *y = l->top[0]->data;
    int64_t off = 0; /* offset of bottom i along the axis */
    for (int i = 0; i < l->num_bottom; i++) {
        const float *x = l->bottom[i]->data;
        const int64_t rows = l->bottom[i]->shape[s->axis] * s->inner; /* floats per outer step */
        const int64_t outer = s->outer;
#pragma omp parallel for if (outer * rows > (1 << 16))
        for (int64_t o = 0; o < outer; o++)
            memcpy(y + (o * s->top_axis + off) * s->inner, x + o * rows,
                   (size_t)rows * sizeof(float));
        off += l->bottom[i]->shape[s->axis];
    }
    return MOKA_OK;
}

static moka_status concat_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const concat *s = l->state;
    const float *dy = l->top[0]->grad;
    int64_t off = 0;
    for (int i = 0; i < l->num_bottom; i++) {
        float *dx = moka_layer_bottom_grad(l, i);
        const int64_t rows = l->bottom[i]->shape[s->axis] * s->inner;
        const int64_t outer = s->outer;
        if (dx) {
#pragma omp parallel for if (outer * rows > (1 << 16))
            for (int64_t o = 0; o < outer; o++) {
                const float *src = dy + (o * s->top_axis + off) * s->inner;
                float *dst = dx + o * rows;
                for (int64_t j = 0; j < rows; j++) dst[j] += src[j];
            }
        }
        off += l->bottom[i]->shape[s->axis];
    }
    return MOKA_OK;
}

const moka_layer_ops moka_layer_concat = {
    .type = "Concat",
    .param_field = "concat_param",
    .state_size = sizeof(concat),
    .min_bottom = 1,
    .max_bottom = -1,
    .min_top = 1,
    .max_top = 1,
    .setup = concat_setup,
    .reshape = concat_reshape,
    .forward_cpu = concat_forward_cpu,
    .backward_cpu = concat_backward_cpu,
};
