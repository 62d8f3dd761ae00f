/* src/layers/batch_norm.c -- Caffe's BatchNorm (Ioffe & Szegedy 2015), without scale and shift
 * (Caffe leaves those to a following Scale layer):
 *   y[n,c,i] = (x[n,c,i] - mean[c]) / sqrt(var[c] + eps)
 * With batch statistics (use_global_stats false, the TRAIN default), mean and var are the mean
 * and biased variance of channel c over n and i (m = N * I values), and the running sums update:
 *   w2     = w2 * maf + 1
 *   w0[c]  = w0[c] * maf + mean[c]
 *   w1[c]  = w1[c] * maf + var[c] * m / (m - 1)      (m / (m - 1) is 1 when m = 1)
 *   dx = (dy - mean(dy) - mean(dy * y) * y) / sqrt(var + eps)        (means over n, i)
 * With global statistics (the TEST default): mean = w0 / w2 and var = w1 / w2 (both 0 while
 * w2 is 0), nothing updates, and dx = dy / sqrt(var + eps).
 *   bottom[0]  x   (N, C, ...)  trailing dims are flattened into I; a 1-D x is (N) with C = 1
 *   top[0]     y   same shape as x (may be x itself, in place)
 *   weight[0]  w0  (C)  running sum of means       not learnable, starts at 0
 *   weight[1]  w1  (C)  running sum of variances   not learnable, starts at 0
 *   weight[2]  w2  (1)  running normaliser         not learnable, starts at 0
 * maf is batch_norm_param.moving_average_fraction (0.999), eps batch_norm_param.eps (1e-5).
 * Reference: Caffe's batch_norm_layer.cpp.
 */
#include <math.h>
#include <stdlib.h>

#include "core/layer.h"

#define PAR_MIN 32768

typedef struct {
    bool global; /* use_global_stats */
    float maf, eps;
    int64_t channels;
    int64_t num, inner; /* x seen as (N, C, I) */
    float *std;         /* (C) sqrt(var + eps) of the last forward */
    float *x_hat;       /* (N, C, I) normalised x of the last forward, for backward */
    int64_t std_cap, x_hat_cap;
} batch_norm;

static moka_status bn_setup(moka_layer *l, moka_err *err)
{
    batch_norm *s = l->state;
    const moka_tensor *x = l->bottom[0];
    if (x->ndim < 1)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "bottom must have at least 1 axis");
    s->global = moka_pt_has(l->param, "use_global_stats")
                    ? moka_pt_bool(l->param, "use_global_stats")
                    : l->phase == MOKA_TEST;
    s->maf = (float)moka_pt_float(l->param, "moving_average_fraction");
    s->eps = (float)moka_pt_float(l->param, "eps");
    if (!(s->eps >= 0.0f))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "eps", 0),
                            "layer '%s': batch_norm_param eps must be >= 0, got %g", l->name,
                            (double)s->eps);
    s->channels = x->ndim == 1 ? 1 : x->shape[1];
    MOKA_TRY(moka_layer_add_weight(l, "mean", MOKA_SHAPE(s->channels), MOKA_FILL_STATE(0.0f), err));
    MOKA_TRY(moka_layer_add_weight(l, "variance", MOKA_SHAPE(s->channels), MOKA_FILL_STATE(0.0f),
                                   err));
    return moka_layer_add_weight(l, "moving_average_factor", MOKA_SHAPE(1), MOKA_FILL_STATE(0.0f),
                                 err);
}

static moka_status bn_reshape(moka_layer *l, moka_err *err)
{
    batch_norm *s = l->state;
    const moka_tensor *x = l->bottom[0];
    const int64_t c = x->ndim == 1 ? 1 : x->shape[1];
    if (x->ndim < 1 || c != s->channels)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "bottom has %lld channels, the statistics have %lld",
                               (long long)c, (long long)s->channels);
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], x, err));
    s->num = x->shape[0];
    s->inner = moka_tensor_count_range(x, 2, x->ndim);
    const int64_t n = moka_tensor_count(x);
    MOKA_TRY(moka_layer_reserve(l, &s->std, &s->std_cap, c, "std", err));
    if (!s->global) MOKA_TRY(moka_layer_reserve(l, &s->x_hat, &s->x_hat_cap, n, "x_hat", err));
    return MOKA_OK;
}

static moka_status bn_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    batch_norm *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data, *x_hat = s->x_hat;
    float *w0 = l->weight[0]->data, *w1 = l->weight[1]->data, *w2 = l->weight[2]->data;
    const int64_t num = s->num, c = s->channels, inner = s->inner, m = num * inner;
    const bool global = s->global;
    const float maf = s->maf, eps = s->eps;
    /* Caffe's correction from the biased batch variance to an unbiased estimate. */
    const float bias_corr = m > 1 ? (float)m / (float)(m - 1) : 1.0f;
    const float stat_scale = w2[0] == 0.0f ? 0.0f : 1.0f / w2[0];
    /* Channels are independent, and each reads all of its x before writing y, so in place is
     * safe. Sums run in double in a fixed order: the result does not depend on threads. */
#pragma omp parallel for if (num * c * inner >= PAR_MIN) schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        float mean, var;
        if (global) {
            mean = stat_scale * w0[ch];
            var = stat_scale * w1[ch];
        } else {
            double sum = 0.0;
            for (int64_t b = 0; b < num; b++) {
                const float *xp = x + (b * c + ch) * inner;
                for (int64_t i = 0; i < inner; i++) sum += xp[i];
            }
            const double mu = m > 0 ? sum / (double)m : 0.0;
            double sq = 0.0;
            for (int64_t b = 0; b < num; b++) {
                const float *xp = x + (b * c + ch) * inner;
                for (int64_t i = 0; i < inner; i++) sq += (xp[i] - mu) * (xp[i] - mu);
            }
            mean = (float)mu;
            var = m > 0 ? (float)(sq / (double)m) : 0.0f;
            w0[ch] = w0[ch] * maf + mean;
            w1[ch] = w1[ch] * maf + var * bias_corr;
        }
        const float sd = sqrtf(var + eps);
        s->std[ch] = sd;
        for (int64_t b = 0; b < num; b++) {
            const int64_t off = (b * c + ch) * inner;
            for (int64_t i = off; i < off + inner; i++) {
                y[i] = (x[i] - mean) / sd;
                if (!global) x_hat[i] = y[i];
            }
        }
    }
    if (!global) w2[0] = w2[0] * maf + 1.0f;
    return MOKA_OK;
}

static moka_status bn_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const batch_norm *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *dy = l->top[0]->grad, *x_hat = s->x_hat;
    const int64_t num = s->num, c = s->channels, inner = s->inner, m = num * inner;
    const bool global = s->global;
#pragma omp parallel for if (num * c * inner >= PAR_MIN) schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        const float sd = s->std[ch];
        if (global) {
            for (int64_t b = 0; b < num; b++) {
                const int64_t off = (b * c + ch) * inner;
                for (int64_t i = off; i < off + inner; i++) dx[i] += dy[i] / sd;
            }
            continue;
        }
        double sum_dy = 0.0, sum_dy_y = 0.0;
        for (int64_t b = 0; b < num; b++) {
            const int64_t off = (b * c + ch) * inner;
            for (int64_t i = off; i < off + inner; i++) {
                sum_dy += dy[i];
                sum_dy_y += (double)dy[i] * x_hat[i];
            }
        }
        const float mean_dy = (float)(sum_dy / (double)m);
        const float mean_dy_y = (float)(sum_dy_y / (double)m);
        for (int64_t b = 0; b < num; b++) {
            const int64_t off = (b * c + ch) * inner;
            for (int64_t i = off; i < off + inner; i++)
                dx[i] += (dy[i] - mean_dy - mean_dy_y * x_hat[i]) / sd;
        }
    }
    return MOKA_OK;
}

static void bn_destroy(moka_layer *l)
{
    batch_norm *s = l->state;
    free(s->std);
    free(s->x_hat);
    s->std = s->x_hat = NULL;
}

const moka_layer_ops moka_layer_batch_norm = {
    .type = "BatchNorm",
    .param_field = "batch_norm_param",
    .state_size = sizeof(batch_norm),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = bn_setup,
    .reshape = bn_reshape,
    .forward_cpu = bn_forward_cpu,
    .backward_cpu = bn_backward_cpu,
    .destroy = bn_destroy,
};
