/* src/layers/inner_product.c -- fully connected layer, as Caffe's InnerProductLayer.
 *   x seen as (M, K): M = product of dims before `axis`, K = product of dims from `axis` on
 *   y (M, N) = x W^T + b        W (N, K); with transpose: y = x W, W stored (K, N)
 *   dW += dy^T x  (transpose: x^T dy),  db += column sums of dy,  dx += dy W  (transpose: dy W^T)
 *   bottom[0]  x  (d_0, ..., d_{axis-1}, d_axis, ...)  trailing dims flattened into K
 *   top[0]     y  (d_0, ..., d_{axis-1}, N)             N = num_output
 *   weight[0]  W  (N, K), or (K, N) with transpose
 *   weight[1]  b  (N)          only with bias_term
 * The products go to BLAS, which threads them; in bf16 precision to oneDNN's inner product
 * (src/backend/cpu/dnnl_op.h). Reference: Caffe's inner_product_layer.cpp.
 */
#include <stdio.h>
#include <string.h>

#include "backend/cpu/blas.h"
#include "backend/cpu/dnnl_op.h"
#include "core/layer.h"

typedef struct ip_state {
    int64_t n, k, m; /* num_output, inputs per row, rows */
    bool bias_term, transpose;
    /* bf16: the oneDNN op, built at the first forward pass of a shape. */
    moka_dnnl_slot dnnl;
} ip_state;

static moka_status ensure_op(moka_layer *l, moka_err *err)
{
    ip_state *s = l->state;
    if (l->ctx->engine != MOKA_ENGINE_FAST || l->ctx->precision != MOKA_PRECISION_BF16)
        return MOKA_OK;
    moka_dnnl_shape sh;
    memset(&sh, 0, sizeof sh); /* compared bytewise below */
    sh.kind = MOKA_DNNL_IP;
    sh.bf16 = true;
    sh.bias = s->bias_term;
    sh.backward_data = l->propagate_down[0];
    sh.backward_weights = l->weight[0]->grad != NULL;
    sh.num = s->m;
    sh.channels = s->k;
    sh.out_channels = s->n;
    sh.group = 1;
    sh.weights_transposed = s->transpose;
    return moka_dnnl_slot_ensure(&s->dnnl, &sh, l->name, err);
}

/* Canonical axis of the config's `axis` for x, as Caffe's CanonicalAxisIndex. */
static moka_status ip_axis(const moka_layer *l, int *axis, moka_err *err)
{
    const int64_t a = moka_pt_int(l->param, "axis");
    const int nd = l->bottom[0]->ndim;
    if (a < -nd || a >= nd) {
        const moka_pt_node *at = moka_pt_node_at(l->param, "axis", 0);
        if (at)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, at,
                                "layer '%s' (InnerProduct): axis %lld is out of range for a %d-D "
                                "input",
                                l->name, (long long)a, nd);
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "axis %lld is out of range for a %d-D input",
                               (long long)a, nd);
    }
    *axis = (int)(a < 0 ? a + nd : a);
    return MOKA_OK;
}

static moka_status ip_setup(moka_layer *l, moka_err *err)
{
    ip_state *s = l->state;
    s->n = moka_pt_int(l->param, "num_output");
    s->bias_term = moka_pt_bool(l->param, "bias_term");
    s->transpose = moka_pt_bool(l->param, "transpose");
    if (s->n <= 0) {
        const moka_pt_node *at = moka_pt_node_at(l->param, "num_output", 0);
        if (at)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, at,
                                "layer '%s' (InnerProduct): num_output must be positive, got %lld",
                                l->name, (long long)s->n);
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG, "num_output must be given and positive");
    }
    int axis;
    MOKA_TRY(ip_axis(l, &axis, err));
    s->k = moka_tensor_count_range(l->bottom[0], axis, l->bottom[0]->ndim);
    if (s->k <= 0)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "input has no elements from axis %d on",
                               axis);
    const moka_fill wf = MOKA_FILL_FROM(moka_pt_msg(l->param, "weight_filler"));
    if (s->transpose)
        MOKA_TRY(moka_layer_add_weight(l, "weight", MOKA_SHAPE(s->k, s->n), wf, err));
    else
        MOKA_TRY(moka_layer_add_weight(l, "weight", MOKA_SHAPE(s->n, s->k), wf, err));
    if (s->bias_term)
        MOKA_TRY(moka_layer_add_weight(l, "bias", MOKA_SHAPE(s->n),
                                       MOKA_FILL_FROM(moka_pt_msg(l->param, "bias_filler")), err));
    return MOKA_OK;
}

static moka_status ip_reshape(moka_layer *l, moka_err *err)
{
    ip_state *s = l->state;
    const moka_tensor *x = l->bottom[0];
    int axis;
    MOKA_TRY(ip_axis(l, &axis, err));
    const int64_t k = moka_tensor_count_range(x, axis, x->ndim);
    if (k != s->k) {
        char buf[128];
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "input %s has %lld values per row from axis %d, the weights were "
                               "made for %lld",
                               moka_tensor_shape_str(x, buf, sizeof buf), (long long)k, axis,
                               (long long)s->k);
    }
    s->m = moka_tensor_count_range(x, 0, axis);
    moka_tensor *y = l->top[0];
    int64_t shape[MOKA_MAX_NDIM];
    for (int i = 0; i < axis; i++) shape[i] = x->shape[i];
    shape[axis] = s->n;
    return moka_tensor_set_shape(y, axis + 1, shape, err);
}

static moka_status ip_forward_cpu(moka_layer *l, moka_err *err)
{
    const ip_state *s = l->state;
    const float *x = l->bottom[0]->data, *w = l->weight[0]->data;
    float *y = l->top[0]->data;
    if (s->m == 0) return MOKA_OK;
    MOKA_TRY(ensure_op(l, err));
    if (s->dnnl.op)
        return moka_dnnl_op_forward(s->dnnl.op, x, NULL, w,
                                    s->bias_term ? l->weight[1]->data : NULL, y, NULL, err);
    moka_sgemm(false, !s->transpose, s->m, s->n, s->k, 1.0f, x, w, 0.0f, y);
    if (s->bias_term) {
        const float *b = l->weight[1]->data;
        for (int64_t i = 0; i < s->m; i++)
            for (int64_t j = 0; j < s->n; j++) y[i * s->n + j] += b[j];
    }
    return MOKA_OK;
}

static moka_status ip_backward_cpu(moka_layer *l, moka_err *err)
{
    const ip_state *s = l->state;
    const float *x = l->bottom[0]->data, *w = l->weight[0]->data, *dy = l->top[0]->grad;
    bool whole;
    float *dx = moka_layer_bottom_grad_whole(l, 0, &whole), *dw = l->weight[0]->grad;
    float *db = s->bias_term ? l->weight[1]->grad : NULL;
    if (s->m == 0) return MOKA_OK;
    if (db)
        for (int64_t i = 0; i < s->m; i++)
            for (int64_t j = 0; j < s->n; j++) db[j] += dy[i * s->n + j];
    if (s->dnnl.op)
        return moka_dnnl_op_backward(s->dnnl.op, x, w, dy, NULL, false, dx, whole, NULL, dw, err);
    if (dw) {
        if (s->transpose)
            moka_sgemm(true, false, s->k, s->n, s->m, 1.0f, x, dy, 1.0f, dw);
        else
            moka_sgemm(true, false, s->n, s->k, s->m, 1.0f, dy, x, 1.0f, dw);
    }
    if (dx) moka_sgemm(false, s->transpose, s->m, s->k, s->n, 1.0f, dy, w, whole ? 0.0f : 1.0f, dx);
    return MOKA_OK;
}

static double ip_flops(const moka_layer *l, bool backward)
{
    const ip_state *s = l->state;
    const double one = 2.0 * (double)s->m * (double)s->n * (double)s->k;
    if (!backward) return one;
    return (l->weight[0]->grad ? one : 0.0) + (moka_layer_needs_bottom_grad(l, 0) ? one : 0.0);
}

static const char *ip_kernel(const moka_layer *l)
{
    const ip_state *s = l->state;
    if (s->dnnl.op) return moka_dnnl_op_kernel(s->dnnl.op);
    const bool bf16 = l->ctx->precision == MOKA_PRECISION_BF16;
    return bf16 ? "sgemm (oneDNN jit), fp32" : "sgemm (oneDNN jit)";
}

static void ip_destroy(moka_layer *l)
{
    ip_state *s = l->state;
    moka_dnnl_slot_free(&s->dnnl);
}

const moka_layer_ops moka_layer_inner_product = {
    .type = "InnerProduct", .param_field = "inner_product_param", .state_size = sizeof(ip_state),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .setup = ip_setup, .reshape = ip_reshape,
    .forward_cpu = ip_forward_cpu, .backward_cpu = ip_backward_cpu, .destroy = ip_destroy,
    .flops = ip_flops, .kernel = ip_kernel,
};
