/* src/layers/lrn.c -- local response normalization, as Caffe's LRNLayer.
 *   y = x scale^-beta
 *   ACROSS_CHANNELS  scale[n,c,h,w] = k + alpha / n_size * sum_{|c'-c| <= r} x[n,c',h,w]^2
 *   WITHIN_CHANNEL   scale[n,c,h,w] = 1 + alpha / n_size^2
 *                                       * sum_{|h'-h| <= r, |w'-w| <= r} x[n,c,h',w']^2
 *   r = (n_size - 1) / 2 (n_size = local_size, odd); terms outside the blob are 0.
 *   dx = dy scale^-beta - (2 alpha beta / window) x sum_{window around} dy y / scale
 *   (window = n_size across channels, n_size^2 within: the windows are symmetric).
 *   bottom[0]  x  (N, C, H, W)
 *   top[0]     y  (N, C, H, W)
 * WITHIN_CHANNEL adds 1, not k: Caffe builds it from Power layers with shift 1 and never reads
 * k, so moka does the same and warns when k is set to something else. The average in Caffe's
 * inner AVE pooling always divides by n_size^2 here (stride 1, pad r).
 * Reference: Caffe's lrn_layer.cpp.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "moka/log.h"

typedef struct lrn_state {
    bool within;
    int64_t size, half;
    float alpha, beta, k;
    int64_t num, channels, height, width;
    float *scale, *ratio; /* (N, C, H, W) each: scale from forward, dy y / scale in backward */
    int64_t cap;
} lrn_state;

static moka_status lrn_setup(moka_layer *l, moka_err *err)
{
    lrn_state *s = l->state;
    const moka_pt_node *p = l->param;
    s->size = moka_pt_int(p, "local_size");
    s->alpha = (float)moka_pt_float(p, "alpha");
    s->beta = (float)moka_pt_float(p, "beta");
    s->k = (float)moka_pt_float(p, "k");
    s->within = strcmp(moka_pt_str(p, "norm_region"), "WITHIN_CHANNEL") == 0;
    if (s->size <= 0 || s->size % 2 != 1) {
        const moka_pt_node *at = moka_pt_node_at(p, "local_size", 0);
        if (at)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, at,
                                "layer '%s' (LRN): local_size must be odd, got %lld", l->name,
                                (long long)s->size);
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG, "local_size must be odd, got %lld",
                               (long long)s->size);
    }
    s->half = (s->size - 1) / 2;
    if (s->within && s->k != 1.0f)
        moka_logf(MOKA_LOG_WARN, "layer",
                  "layer '%s' (LRN): k = %g has no effect with norm_region WITHIN_CHANNEL (Caffe "
                  "always adds 1)",
                  l->name, (double)s->k);
    return MOKA_OK;
}

static moka_status lrn_reshape(moka_layer *l, moka_err *err)
{
    lrn_state *s = l->state;
    const moka_tensor *x = l->bottom[0];
    char buf[128];
    if (x->ndim != 4)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "input must be 4-D (N, C, H, W), got %s",
                               moka_tensor_shape_str(x, buf, sizeof buf));
    s->num = x->shape[0];
    s->channels = x->shape[1];
    s->height = x->shape[2];
    s->width = x->shape[3];
    const int64_t n = moka_tensor_count(x);
    if (n > s->cap) {
        float *a = realloc(s->scale, (size_t)n * sizeof(float));
        if (!a) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for LRN scale");
        s->scale = a;
        float *b = realloc(s->ratio, (size_t)n * sizeof(float));
        if (!b) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for LRN scale");
        s->ratio = b;
        s->cap = n;
    }
    return moka_tensor_set_shape_like(l->top[0], x, err);
}

/* scale^-beta; the common beta = 0.75 without powf (1 / (sqrt(s) sqrt(sqrt(s)))). */
static inline float pow_neg_beta(float s, float beta)
{
    if (beta == 0.75f) {
        const float r = sqrtf(s);
        return 1.0f / (r * sqrtf(r));
    }
    return powf(s, -beta);
}

/* sum over the (2 half + 1)^2 box around every pixel of one H x W plane of f (zero outside). */
static void box_sum(const float *f, int64_t H, int64_t W, int64_t half, float *out)
{
    for (int64_t h = 0; h < H; h++) {
        const int64_t h0 = h - half < 0 ? 0 : h - half, h1 = h + half + 1 > H ? H : h + half + 1;
        for (int64_t w = 0; w < W; w++) out[h * W + w] = 0.0f;
        for (int64_t i = h0; i < h1; i++)
            for (int64_t w = 0; w < W; w++) {
                const int64_t w0 = w - half < 0 ? 0 : w - half;
                const int64_t w1 = w + half + 1 > W ? W : w + half + 1;
                float acc = 0.0f;
                for (int64_t j = w0; j < w1; j++) acc += f[i * W + j];
                out[h * W + w] += acc;
            }
    }
}

static moka_status lrn_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    lrn_state *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data, *scale = s->scale, *sq = s->ratio;
    const int64_t C = s->channels, HW = s->height * s->width, planes = s->num * C;
    const float beta = s->beta;
    if (!s->within) {
        const float a = s->alpha / (float)s->size, k = s->k;
#pragma omp parallel for schedule(static) if (planes * HW >= (1 << 14))
        for (int64_t nc = 0; nc < planes; nc++) {
            const int64_t c = nc % C, base = nc - c;
            const int64_t c0 = c - s->half < 0 ? 0 : c - s->half;
            const int64_t c1 = c + s->half + 1 > C ? C : c + s->half + 1;
            float *sc = scale + nc * HW;
            for (int64_t i = 0; i < HW; i++) sc[i] = 0.0f;
            for (int64_t j = c0; j < c1; j++) {
                const float *xj = x + (base + j) * HW;
                for (int64_t i = 0; i < HW; i++) sc[i] += xj[i] * xj[i];
            }
            const float *xp = x + nc * HW;
            float *yp = y + nc * HW;
            for (int64_t i = 0; i < HW; i++) {
                sc[i] = k + a * sc[i];
                yp[i] = xp[i] * pow_neg_beta(sc[i], beta);
            }
        }
        return MOKA_OK;
    }
    const float a = s->alpha / (float)(s->size * s->size);
#pragma omp parallel for schedule(static) if (planes * HW >= (1 << 14))
    for (int64_t nc = 0; nc < planes; nc++) {
        const float *xp = x + nc * HW;
        float *q = sq + nc * HW, *sc = scale + nc * HW, *yp = y + nc * HW;
        for (int64_t i = 0; i < HW; i++) q[i] = xp[i] * xp[i];
        box_sum(q, s->height, s->width, s->half, sc);
        for (int64_t i = 0; i < HW; i++) {
            sc[i] = 1.0f + a * sc[i];
            yp[i] = xp[i] * pow_neg_beta(sc[i], beta);
        }
    }
    return MOKA_OK;
}

static moka_status lrn_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    lrn_state *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *x = l->bottom[0]->data, *y = l->top[0]->data, *dy = l->top[0]->grad;
    const float *scale = s->scale;
    float *ratio = s->ratio;
    const int64_t C = s->channels, HW = s->height * s->width, n = s->num * C * HW;
    const int64_t planes = s->num * C;
    const float beta = s->beta;
    const float window = (float)(s->within ? s->size * s->size : s->size);
    const float cache = 2.0f * s->alpha * beta / window;
#pragma omp parallel for schedule(static) if (n >= (1 << 14))
    for (int64_t i = 0; i < n; i++) ratio[i] = dy[i] * y[i] / scale[i];
#pragma omp parallel for schedule(static) if (n >= (1 << 14))
    for (int64_t nc = 0; nc < planes; nc++) {
        const float *xp = x + nc * HW, *dyp = dy + nc * HW, *sc = scale + nc * HW;
        float *dxp = dx + nc * HW;
        if (!s->within) {
            const int64_t c = nc % C, base = nc - c;
            const int64_t c0 = c - s->half < 0 ? 0 : c - s->half;
            const int64_t c1 = c + s->half + 1 > C ? C : c + s->half + 1;
            for (int64_t i = 0; i < HW; i++) {
                float acc = 0.0f;
                for (int64_t j = c0; j < c1; j++) acc += ratio[(base + j) * HW + i];
                dxp[i] += dyp[i] * pow_neg_beta(sc[i], beta) - cache * xp[i] * acc;
            }
        } else {
            /* The box sums of ratio are needed whole before dx; compute them pixel by pixel
             * into dx's update directly (ratio is read-only here). */
            const int64_t H = s->height, W = s->width, half = s->half;
            const float *rp = ratio + nc * HW;
            for (int64_t h = 0; h < H; h++) {
                const int64_t h0 = h - half < 0 ? 0 : h - half;
                const int64_t h1 = h + half + 1 > H ? H : h + half + 1;
                for (int64_t w = 0; w < W; w++) {
                    const int64_t w0 = w - half < 0 ? 0 : w - half;
                    const int64_t w1 = w + half + 1 > W ? W : w + half + 1;
                    float acc = 0.0f;
                    for (int64_t i = h0; i < h1; i++)
                        for (int64_t j = w0; j < w1; j++) acc += rp[i * W + j];
                    const int64_t o = h * W + w;
                    dxp[o] += dyp[o] * pow_neg_beta(sc[o], beta) - cache * xp[o] * acc;
                }
            }
        }
    }
    return MOKA_OK;
}

static void lrn_destroy(moka_layer *l)
{
    lrn_state *s = l->state;
    free(s->scale);
    free(s->ratio);
}

const moka_layer_ops moka_layer_lrn = {
    .type = "LRN", .param_field = "lrn_param", .state_size = sizeof(lrn_state),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .setup = lrn_setup, .reshape = lrn_reshape,
    .forward_cpu = lrn_forward_cpu, .backward_cpu = lrn_backward_cpu, .destroy = lrn_destroy,
};
