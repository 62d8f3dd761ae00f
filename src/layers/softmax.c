/* src/layers/softmax.c -- Caffe's Softmax along one axis:
 *   y[o, c, j]  = exp(x[o, c, j] - m[o, j]) / sum_k exp(x[o, k, j] - m[o, j])
 *   m[o, j]     = max_k x[o, k, j]
 *   dx[o, c, j] += y[o, c, j] * (dy[o, c, j] - sum_k dy[o, k, j] * y[o, k, j])
 *   bottom[0]  x  any shape, seen as (outer, C, inner) around softmax_param.axis
 *   top[0]     y  same shape as x (may be x itself: Caffe allows Softmax in place)
 * outer = count(0, axis), C = shape[axis], inner = count(axis + 1). The axis may be negative
 * (counted from the end). Subtracting the maximum keeps exp from overflowing; the result is the
 * same. Backward reads only y and dy, as Caffe's does, so in-place use needs no copy of x.
 * Reference: Caffe's src/caffe/layers/softmax_layer.cpp (SoftmaxParameter engine is accepted and
 * has no effect on the CPU).
 */
#include "core/layer.h"
#include "layers/softmax_kernel.h"

typedef struct {
    int axis;                   /* canonical (non-negative) */
    int64_t outer, ch, inner;   /* x seen as (outer, C, inner) */
} softmax;

static moka_status softmax_reshape(moka_layer *l, moka_err *err)
{
    softmax *s = l->state;
    const moka_tensor *x = l->bottom[0];
    const int64_t axis = moka_pt_int(l->param, "axis");
    if (axis < -x->ndim || axis >= x->ndim) {
        char buf[128];
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "softmax_param.axis %lld is out of range for a %d-D bottom (%s)",
                               (long long)axis, x->ndim, moka_tensor_shape_str(x, buf, sizeof buf));
    }
    s->axis = (int)(axis < 0 ? axis + x->ndim : axis);
    s->outer = moka_tensor_count_range(x, 0, s->axis);
    s->ch = x->shape[s->axis];
    s->inner = moka_tensor_count_range(x, s->axis + 1, x->ndim);
    return moka_tensor_set_shape_like(l->top[0], x, err);
}

static moka_status softmax_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const softmax *s = l->state;
    moka_softmax_forward(l->bottom[0]->data, l->top[0]->data, s->outer, s->ch, s->inner);
    return MOKA_OK;
}

static moka_status softmax_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const softmax *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    moka_softmax_backward_add(l->top[0]->data, l->top[0]->grad, dx, s->outer, s->ch, s->inner);
    return MOKA_OK;
}

static moka_status softmax_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    /* Both fields of SoftmaxParameter are understood: axis is read in reshape, where the bottom's
     * rank is known, and engine only picks an implementation in Caffe. */
    return MOKA_OK;
}

const moka_layer_ops moka_layer_softmax = {
    .type = "Softmax",
    .param_field = "softmax_param",
    .state_size = sizeof(softmax),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = softmax_setup,
    .reshape = softmax_reshape,
    .forward_cpu = softmax_forward_cpu,
    .backward_cpu = softmax_backward_cpu,
};
