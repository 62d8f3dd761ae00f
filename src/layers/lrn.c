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
    /* (N, C, H, W) each: the scale from forward, and scratch (x^2 in the WITHIN_CHANNEL
     * forward, dy y / scale in backward). */
    float *scale, *ratio;
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

/* out = sum over the (2 half + 1)^2 box around every pixel of one H x W plane of f (zero
 * outside); the inner loop runs along a row, which vectorises. */
static void box_sum(const float *f, int64_t H, int64_t W, int64_t half, float *out)
{
    for (int64_t i = 0; i < H * W; i++) out[i] = 0.0f;
    for (int64_t h = 0; h < H; h++) {
        const int64_t h0 = h - half < 0 ? 0 : h - half, h1 = h + half + 1 > H ? H : h + half + 1;
        float *o = out + h * W;
        for (int64_t r = h0; r < h1; r++)
            for (int64_t d = -half; d <= half; d++) {
                /* o[w] += f[r][w + d] for the w that keep w + d inside the row. */
                const int64_t w0 = d < 0 ? -d : 0, w1 = d > 0 ? W - d : W;
                if (w1 <= w0) continue;
                const float *src = f + r * W + w0 + d;
                float *dst = o + w0;
#pragma omp simd
                for (int64_t w = 0; w < w1 - w0; w++) dst[w] += src[w];
            }
    }
}

/* dst = sum over channels [c0, c1) of the planes of f (plane stride HW); vectorised along the
 * plane. */
static void channel_sum(const float *f, int64_t c0, int64_t c1, int64_t HW, bool square,
                        float *dst)
{
    for (int64_t i = 0; i < HW; i++) dst[i] = 0.0f;
    for (int64_t j = c0; j < c1; j++) {
        const float *fj = f + j * HW;
        if (square) {
#pragma omp simd
            for (int64_t i = 0; i < HW; i++) dst[i] += fj[i] * fj[i];
        } else {
#pragma omp simd
            for (int64_t i = 0; i < HW; i++) dst[i] += fj[i];
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
    /* ACROSS_CHANNELS: k + alpha / n * (sum over the channel window); WITHIN_CHANNEL:
     * 1 + alpha / n^2 * (sum over the spatial box). */
    const float shift = s->within ? 1.0f : s->k;
    const float a = s->alpha / (float)(s->within ? s->size * s->size : s->size);
#pragma omp parallel for schedule(static) if (planes * HW >= (1 << 14))
    for (int64_t nc = 0; nc < planes; nc++) {
        const float *xp = x + nc * HW;
        float *sc = scale + nc * HW, *yp = y + nc * HW;
        if (s->within) {
            float *q = sq + nc * HW;
#pragma omp simd
            for (int64_t i = 0; i < HW; i++) q[i] = xp[i] * xp[i];
            box_sum(q, s->height, s->width, s->half, sc);
        } else {
            const int64_t c = nc % C, base = nc - c;
            const int64_t c0 = c - s->half < 0 ? 0 : c - s->half;
            const int64_t c1 = c + s->half + 1 > C ? C : c + s->half + 1;
            channel_sum(x + base * HW, c0, c1, HW, true, sc);
        }
#pragma omp simd
        for (int64_t i = 0; i < HW; i++) sc[i] = shift + a * sc[i];
        for (int64_t i = 0; i < HW; i++) yp[i] = xp[i] * pow_neg_beta(sc[i], beta);
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
    /* First the local term and every pixel's dy y / scale, then the window sums of the latter. */
#pragma omp parallel for schedule(static) if (n >= (1 << 14))
    for (int64_t i = 0; i < n; i++) {
        ratio[i] = dy[i] * y[i] / scale[i];
        dx[i] += dy[i] * pow_neg_beta(scale[i], beta);
    }
    /* dx -= cache x (window sum of ratio), one window term at a time so every loop runs along
     * a plane or row and vectorises. */
#pragma omp parallel for schedule(static) if (n >= (1 << 14))
    for (int64_t nc = 0; nc < planes; nc++) {
        const float *xp = x + nc * HW;
        float *dxp = dx + nc * HW;
        const int64_t H = s->height, W = s->width, half = s->half;
        if (!s->within) {
            const int64_t c = nc % C, base = nc - c;
            const int64_t c0 = c - half < 0 ? 0 : c - half;
            const int64_t c1 = c + half + 1 > C ? C : c + half + 1;
            for (int64_t j = c0; j < c1; j++) {
                const float *rj = ratio + (base + j) * HW;
#pragma omp simd
                for (int64_t i = 0; i < HW; i++) dxp[i] -= cache * xp[i] * rj[i];
            }
            continue;
        }
        const float *rp = ratio + nc * HW;
        for (int64_t h = 0; h < H; h++) {
            const int64_t h0 = h - half < 0 ? 0 : h - half;
            const int64_t h1 = h + half + 1 > H ? H : h + half + 1;
            for (int64_t r = h0; r < h1; r++)
                for (int64_t d = -half; d <= half; d++) {
                    const int64_t w0 = d < 0 ? -d : 0, w1 = d > 0 ? W - d : W;
                    if (w1 <= w0) continue;
                    const float *src = rp + r * W + w0 + d, *xr = xp + h * W + w0;
                    float *dst = dxp + h * W + w0;
#pragma omp simd
                    for (int64_t w = 0; w < w1 - w0; w++) dst[w] -= cache * xr[w] * src[w];
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
