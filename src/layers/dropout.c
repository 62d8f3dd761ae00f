/* src/layers/dropout.c -- Caffe's Dropout (inverted dropout, Srivastava et al. 2014):
 *   TRAIN:  m[i] ~ Bernoulli(1 - p),  y = x * m * s,  dx = dy * m * s,  s = 1 / (1 - p)
 *   TEST:   y = x,  dx = dy
 *   bottom[0]  x  any shape
 *   top[0]     y  same shape as x (may be x itself: backward reads only the mask)
 * p is dropout_param.dropout_ratio (default 0.5), accepted in [0, 1).
 * Reference: Caffe's dropout_layer.cpp.
 *
 * The mask comes from l->rng: each forward draws one 64-bit seed from it, and block b of
 * MASK_BLOCK elements uses its own stream moka_rng_seed(seed, b). Blocks can then be drawn by
 * any number of threads and the mask is still a function of the layer's stream alone.
 */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

#define PAR_MIN 32768
#define MASK_BLOCK 4096

typedef struct {
    float ratio, scale;
    uint64_t threshold; /* keep element i when a uniform 32-bit draw is >= threshold */
    uint8_t *mask;      /* 1 = kept, from the last TRAIN forward */
    int64_t mask_cap;
} dropout;

static moka_status dropout_setup(moka_layer *l, moka_err *err)
{
    dropout *s = l->state;
    const double p = moka_pt_float(l->param, "dropout_ratio");
    if (!(p >= 0.0 && p < 1.0))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "dropout_ratio", 0),
                            "layer '%s': dropout_ratio must be in [0, 1), got %g", l->name, p);
    s->ratio = (float)p;
    /* Caffe computes the scale in the blob's precision; so do we, so the values match. */
    s->scale = 1.0f / (1.0f - s->ratio);
    s->threshold = (uint64_t)((double)s->ratio * 4294967296.0);
    return MOKA_OK;
}

static moka_status dropout_reshape(moka_layer *l, moka_err *err)
{
    dropout *s = l->state;
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], l->bottom[0], err));
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->phase == MOKA_TRAIN && n > s->mask_cap) {
        uint8_t *p = realloc(s->mask, (size_t)n);
        if (!p) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory for the mask");
        s->mask = p;
        s->mask_cap = n;
    }
    return MOKA_OK;
}

static moka_status dropout_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    dropout *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->phase != MOKA_TRAIN) {
        if (y != x) memcpy(y, x, (size_t)n * sizeof *x);
        return MOKA_OK;
    }
    const uint64_t seed = moka_rng_u64(&l->rng), threshold = s->threshold;
    const int64_t blocks = (n + MASK_BLOCK - 1) / MASK_BLOCK;
    const float scale = s->scale;
    uint8_t *mask = s->mask;
#pragma omp parallel for if (n >= PAR_MIN) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        moka_rng r;
        moka_rng_seed(&r, seed, (uint64_t)b);
        const int64_t end = (b + 1) * MASK_BLOCK < n ? (b + 1) * MASK_BLOCK : n;
        for (int64_t i = b * MASK_BLOCK; i < end; i++) {
            mask[i] = (uint64_t)moka_rng_u32(&r) >= threshold;
            /* x * mask * scale as Caffe writes it, so a dropped inf or NaN still gives NaN. */
            y[i] = x[i] * (float)mask[i] * scale;
        }
    }
    return MOKA_OK;
}

static moka_status dropout_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const dropout *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx) return MOKA_OK;
    const float *dy = l->top[0]->grad;
    const int64_t n = moka_tensor_count(l->bottom[0]);
    if (l->phase != MOKA_TRAIN) {
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
        return MOKA_OK;
    }
    const uint8_t *mask = s->mask;
    const float scale = s->scale;
#pragma omp parallel for simd if (n >= PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (float)mask[i] * scale;
    return MOKA_OK;
}

static void dropout_destroy(moka_layer *l)
{
    dropout *s = l->state;
    free(s->mask);
    s->mask = NULL;
}

const moka_layer_ops moka_layer_dropout = {
    .type = "Dropout",
    .param_field = "dropout_param",
    .state_size = sizeof(dropout),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .in_place_ok = true,
    .setup = dropout_setup,
    .reshape = dropout_reshape,
    .forward_cpu = dropout_forward_cpu,
    .backward_cpu = dropout_backward_cpu,
    .destroy = dropout_destroy,
};
