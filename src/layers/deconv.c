/* src/layers/deconv.c -- 2-D deconvolution (transposed convolution), as Caffe's
 * DeconvolutionLayer: the adjoint of Convolution with the same ConvolutionParameter, so its
 * forward is convolution's backward-to-data and the other way round.
 *   y = col2im(W^T x) + b     every input pixel spreads a k_h x k_w patch into the output
 *   out_h = s_h (H - 1) + d_h (k_h - 1) + 1 - 2 p_h   (likewise out_w)
 *   bottom[i]  x  (N, C, H, W)          every bottom has the same shape and shares the weights
 *   top[i]     y  (N, M, out_h, out_w)  M = num_output
 *   weight[0]  W  (C, M / G, k_h, k_w)  Caffe's layout: input channels first
 *   weight[1]  b  (M)                   only with bias_term
 * In the engine's convolution space (conv_common.h) the top is the unrolled image side and the
 * bottom the output side. Reference: Caffe's deconv_layer.cpp.
 */
#include <stdlib.h>

#include "layers/conv_common.h"

typedef struct deconv_state {
    moka_conv_param p;
    int64_t channels;
    moka_conv_engine e;
} deconv_state;

static moka_status deconv_setup(moka_layer *l, moka_err *err)
{
    deconv_state *s = l->state;
    MOKA_TRY(moka_conv_param_read(l, &s->p, err));
    s->channels = l->bottom[0]->shape[1];
    const moka_conv_param *p = &s->p;
    MOKA_TRY(moka_layer_add_weight(
        l, "weight", MOKA_SHAPE(s->channels, p->num_output / p->group, p->kernel_h, p->kernel_w),
        MOKA_FILL_FROM(moka_pt_msg(l->param, "weight_filler")), err));
    if (p->bias_term)
        MOKA_TRY(moka_layer_add_weight(l, "bias", MOKA_SHAPE(p->num_output),
                                       MOKA_FILL_FROM(moka_pt_msg(l->param, "bias_filler")), err));
    return MOKA_OK;
}

static moka_status deconv_reshape(moka_layer *l, moka_err *err)
{
    deconv_state *s = l->state;
    const moka_conv_param *p = &s->p;
    MOKA_TRY(moka_conv_check_bottoms(l, s->channels, err));
    const moka_tensor *x = l->bottom[0];
    const int64_t H = x->shape[2], W = x->shape[3];
    const int64_t ext_h = p->dilation_h * (p->kernel_h - 1) + 1;
    const int64_t ext_w = p->dilation_w * (p->kernel_w - 1) + 1;
    const int64_t out_h = p->stride_h * (H - 1) + ext_h - 2 * p->pad_h;
    const int64_t out_w = p->stride_w * (W - 1) + ext_w - 2 * p->pad_w;
    if (H < 1 || W < 1 || out_h < 1 || out_w < 1)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "output would be %lld x %lld for a %lld x %lld input (padding %lld "
                               "x %lld eats the whole kernel extent %lld x %lld)",
                               (long long)out_h, (long long)out_w, (long long)H, (long long)W,
                               (long long)p->pad_h, (long long)p->pad_w, (long long)ext_h,
                               (long long)ext_w);
    /* Convolution space: the top is unrolled and the bottom is the output of that convolution. */
    const moka_conv_geom g = {
        .channels = p->num_output, .height = out_h, .width = out_w,
        .kernel_h = p->kernel_h, .kernel_w = p->kernel_w, .pad_h = p->pad_h, .pad_w = p->pad_w,
        .stride_h = p->stride_h, .stride_w = p->stride_w,
        .dilation_h = p->dilation_h, .dilation_w = p->dilation_w, .out_h = H, .out_w = W,
    };
    for (int i = 0; i < l->num_top; i++)
        MOKA_TRY(moka_tensor_set_shape(l->top[i], MOKA_SHAPE(x->shape[0], p->num_output, out_h,
                                                             out_w),
                                       err));
    return moka_conv_engine_reshape(&s->e, &g, p->group, s->channels, x->shape[0], err);
}

static moka_status deconv_forward_cpu(moka_layer *l, moka_err *err)
{
    deconv_state *s = l->state;
    const moka_conv_engine *e = &s->e;
    for (int i = 0; i < l->num_bottom; i++) {
        const moka_conv_job job = {
            .outside = l->bottom[i]->data, .w = l->weight[0]->data, .im_grad = l->top[i]->data,
            .zero_im_grad = true,
        };
        MOKA_TRY(moka_conv_engine_run(&s->e, &job, err));
        if (s->p.bias_term)
            moka_conv_add_bias(l->top[i]->data, e->num, s->p.num_output, e->g.height * e->g.width,
                               l->weight[1]->data);
    }
    return MOKA_OK;
}

static moka_status deconv_backward_cpu(moka_layer *l, moka_err *err)
{
    deconv_state *s = l->state;
    const moka_conv_engine *e = &s->e;
    float *dw = l->weight[0]->grad, *db = s->p.bias_term ? l->weight[1]->grad : NULL;
    for (int i = 0; i < l->num_bottom; i++) {
        const float *dy = l->top[i]->grad;
        float *dx = moka_layer_bottom_grad(l, i);
        if (db) moka_conv_bias_grad(dy, e->num, s->p.num_output, e->g.height * e->g.width, db);
        if (!dw && !dx) continue;
        /* dy is unrolled once and serves both dW (with x) and dx (with W). */
        const moka_conv_job job = {
            .im = dy, .outside = dw ? l->bottom[i]->data : NULL, .w = l->weight[0]->data,
            .dw = dw, .out = dx, .out_add = true,
        };
        MOKA_TRY(moka_conv_engine_run(&s->e, &job, err));
    }
    return MOKA_OK;
}

static void deconv_destroy(moka_layer *l)
{
    deconv_state *s = l->state;
    moka_conv_engine_free(&s->e);
}

const moka_layer_ops moka_layer_deconvolution = {
    .type = "Deconvolution", .param_field = "convolution_param",
    .state_size = sizeof(deconv_state), .min_bottom = 1, .max_bottom = -1, .min_top = 1,
    .max_top = -1, .setup = deconv_setup, .reshape = deconv_reshape,
    .forward_cpu = deconv_forward_cpu, .backward_cpu = deconv_backward_cpu,
    .destroy = deconv_destroy,
};
