/* src/layers/slice.c -- Caffe's Slice: cuts its bottom into consecutive pieces along one axis.
 *   bottom[0]  x    (d0, ..., A, ..., dk)
 *   top[i]     y_i  (d0, ..., A_i, ..., dk)  with sum_i A_i = A
 * Seen as (outer, A, inner): y_i[o, a, j] = x[o, off_i + a, j], off_i = A_0 + ... + A_{i-1},
 * and backward adds dx[o, off_i + a, j] += dy_i[o, a, j].
 * slice_point lists the cut positions (one fewer than the tops, strictly increasing); without it
 * the axis is split into equal parts, which must divide A. The axis comes from slice_param.axis
 * or the legacy slice_dim, never both. Reference: Caffe's src/caffe/layers/slice_layer.cpp.
 */
#include <string.h>

#include "core/layer.h"

typedef struct {
    int axis;
    int64_t outer, inner, bottom_axis; /* bottom seen as (outer, bottom_axis, inner) */
} slice;

static moka_status slice_setup(moka_layer *l, moka_err *err)
{
    if (moka_pt_has(l->param, "axis") && moka_pt_has(l->param, "slice_dim"))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "slice_dim", 0),
                            "layer '%s': give either axis or slice_dim in slice_param, not both",
                            l->name);
    const int np = moka_pt_count(l->param, "slice_point");
    if (np != 0 && np != l->num_top - 1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "slice_point", 0),
                            "layer '%s': %d slice_point value(s) for %d tops; give one fewer "
                            "than the tops, or none to split equally",
                            l->name, np, l->num_top);
    int64_t prev = 0;
    for (int i = 0; i < np; i++) {
        const int64_t p = moka_pt_int_at(l->param, "slice_point", i);
        if (p <= prev)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "slice_point", i),
                                "layer '%s': slice_point %lld must be greater than %lld; the "
                                "points must be positive and strictly increasing",
                                l->name, (long long)p, (long long)prev);
        prev = p;
    }
    return MOKA_OK;
}

static moka_status slice_reshape(moka_layer *l, moka_err *err)
{
    slice *s = l->state;
    const moka_tensor *x = l->bottom[0];
    const int ndim = x->ndim;
    char bs[128];
    if (moka_pt_has(l->param, "slice_dim")) {
        const int64_t dim = moka_pt_int(l->param, "slice_dim");
        if (dim >= ndim)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "slice_dim %lld is out of range for a %d-D bottom (%s)",
                                   (long long)dim, ndim, moka_tensor_shape_str(x, bs, sizeof bs));
        s->axis = (int)dim;
    } else {
        const int64_t axis = moka_pt_int(l->param, "axis");
        if (axis < -ndim || axis >= ndim)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "axis %lld is out of range for a %d-D bottom (%s)",
                                   (long long)axis, ndim, moka_tensor_shape_str(x, bs, sizeof bs));
        s->axis = (int)(axis < 0 ? axis + ndim : axis);
    }
    const int64_t A = x->shape[s->axis];
    s->bottom_axis = A;
    s->outer = moka_tensor_count_range(x, 0, s->axis);
    s->inner = moka_tensor_count_range(x, s->axis + 1, ndim);
    int64_t shape[MOKA_MAX_NDIM];
    for (int d = 0; d < ndim; d++) shape[d] = x->shape[d];
    const int np = moka_pt_count(l->param, "slice_point");
    if (np > 0) {
        /* Caffe wants no more tops than the axis is long; the last point may equal A, which
         * leaves the last top empty, as in Caffe. */
        const int64_t last = moka_pt_int_at(l->param, "slice_point", np - 1);
        if (l->num_top > A || last > A)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "cannot cut axis %d of length %lld (bottom %s) into %d tops at "
                                   "slice_point up to %lld",
                                   s->axis, (long long)A, moka_tensor_shape_str(x, bs, sizeof bs),
                                   l->num_top, (long long)last);
        int64_t prev = 0;
        for (int i = 0; i < l->num_top; i++) {
            const int64_t p = i < np ? moka_pt_int_at(l->param, "slice_point", i) : A;
            shape[s->axis] = p - prev;
            prev = p;
            MOKA_TRY(moka_tensor_set_shape(l->top[i], ndim, shape, err));
        }
    } else {
        if (A % l->num_top != 0)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "%d tops do not evenly divide axis %d of length %lld (bottom "
                                   "%s); give slice_point",
                                   l->num_top, s->axis, (long long)A,
                                   moka_tensor_shape_str(x, bs, sizeof bs));
        shape[s->axis] = A / l->num_top;
        for (int i = 0; i < l->num_top; i++)
            MOKA_TRY(moka_tensor_set_shape(l->top[i], ndim, shape, err));
    }
    return MOKA_OK;
}

static moka_status slice_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const slice *s = l->state;
    const float *x = l->bottom[0]->data;
    int64_t off = 0; /* offset of top i along the axis */
    for (int i = 0; i < l->num_top; i++) {
        float *y = l->top[i]->data;
        const int64_t rows = l->top[i]->shape[s->axis] * s->inner; /* floats per outer step */
        const int64_t outer = s->outer;
#pragma omp parallel for if (outer * rows > (1 << 16))
        for (int64_t o = 0; o < outer; o++)
            memcpy(y + o * rows, x + (o * s->bottom_axis + off) * s->inner,
                   (size_t)rows * sizeof(float));
        off += l->top[i]->shape[s->axis];
    }
    return MOKA_OK;
}

static moka_status slice_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const slice *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    int64_t off = 0;
    for (int i = 0; i < l->num_top; i++) {
        const float *dy = l->top[i]->grad;
        const int64_t rows = l->top[i]->shape[s->axis] * s->inner;
        const int64_t outer = s->outer;
        if (dy) {
#pragma omp parallel for if (outer * rows > (1 << 16))
            for (int64_t o = 0; o < outer; o++) {
                const float *src = dy + o * rows;
                float *dst = dx + (o * s->bottom_axis + off) * s->inner;
                for (int64_t j = 0; j < rows; j++) dst[j] += src[j];
            }
        }
        off += l->top[i]->shape[s->axis];
    }
    return MOKA_OK;
}

const moka_layer_ops moka_layer_slice = {
    .type = "Slice",
    .param_field = "slice_param",
    .state_size = sizeof(slice),
    .min_bottom = 1,
    .max_bottom = 1,
    .min_top = 1,
    .max_top = -1,
    .setup = slice_setup,
    .reshape = slice_reshape,
    .forward_cpu = slice_forward_cpu,
    .backward_cpu = slice_backward_cpu,
};
