/* src/layers/euclidean_loss.c -- Caffe's EuclideanLoss: half the mean over the batch of the squared
 * distance between two inputs.
 *   d     = a - b                      (elementwise over the flattened inputs)
 *   loss  = sum_i d_i^2 / (2 N)
 *   da_i += w / N * d_i,   db_i -= w / N * d_i
 *   bottom[0]  a     (N, ...)
 *   bottom[1]  b     (N, ...)  same N and the same count per item as a; the shapes may differ
 *                    otherwise, e.g. (N, 784) against (N, 1, 28, 28)
 *   top[0]     loss  scalar (0-D); its gradient w is the loss weight the net writes there
 * Both inputs get gradients. The sum of squares is accumulated in double. Caffe's EuclideanLoss
 * does not read loss_param, so neither does this layer (the net rejects one set on it).
 * Reference: Caffe's src/caffe/layers/euclidean_loss_layer.cpp.
 */
#include <stdlib.h>

#include "core/layer.h"
#include "core/reduce.h"

/* Elements per partial sum. Fixed, so the loss is the same for every thread count. */
#define CHUNK 4096

typedef struct {
    int64_t num, count;
    float *diff; /* (count): a - b, kept for backward */
    int64_t diff_cap;
} euclidean_loss;

static moka_status euclidean_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK; /* no parameters */
}

static moka_status euclidean_reshape(moka_layer *l, moka_err *err)
{
    euclidean_loss *s = l->state;
    const moka_tensor *a = l->bottom[0], *b = l->bottom[1];
    char ba[128], bb[128];
    if (a->ndim < 1 || b->ndim < 1 || a->shape[0] != b->shape[0])
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "bottoms (%s) and (%s) must have the same first dimension",
                               moka_tensor_shape_str(a, ba, sizeof ba),
                               moka_tensor_shape_str(b, bb, sizeof bb));
    if (moka_tensor_count(a) != moka_tensor_count(b))
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "bottoms (%s) and (%s) must have the same count per item",
                               moka_tensor_shape_str(a, ba, sizeof ba),
                               moka_tensor_shape_str(b, bb, sizeof bb));
    s->num = a->shape[0];
    s->count = moka_tensor_count(a);
    MOKA_TRY(moka_layer_reserve(l, &s->diff, &s->diff_cap, s->count, "a - b", err));
    return moka_tensor_set_shape(l->top[0], 0, NULL, err);
}

typedef struct {
    const float *a, *b;
    float *diff;
} euclidean_chunk_ctx;

/* One chunk of the forward pass: writes diff and sums its squares. */
static void euclidean_chunk(const void *ctx, int64_t lo, int64_t hi, double *out)
{
    const euclidean_chunk_ctx *c = ctx;
    double sum = 0.0;
    for (int64_t i = lo; i < hi; i++) {
        c->diff[i] = c->a[i] - c->b[i];
        sum += (double)c->diff[i] * c->diff[i];
    }
    out[0] = sum;
}

static moka_status euclidean_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    euclidean_loss *s = l->state;
    euclidean_chunk_ctx c = {l->bottom[0]->data, l->bottom[1]->data, s->diff};
    double sum;
    moka_reduce_chunks(s->count, CHUNK, 1, 0, euclidean_chunk, &c, &sum);
    /* N >= 1 unless the batch is empty, where the sum is 0 too; keep 0 / 0 out of the result. */
    l->top[0]->data[0] = s->num > 0 ? (float)(sum / (double)s->num / 2.0) : 0.0f;
    return MOKA_OK;
}

static moka_status euclidean_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const euclidean_loss *s = l->state;
    if (!l->top[0]->grad || s->num == 0) return MOKA_OK;
    const float alpha = l->top[0]->grad[0] / (float)s->num;
    const float *diff = s->diff;
    const int64_t count = s->count;
    for (int i = 0; i < 2; i++) {
        float *dx = moka_layer_bottom_grad(l, i);
        if (!dx) continue;
        const float a = i == 0 ? alpha : -alpha;
#pragma omp parallel for if (count >= 32768) schedule(static)
        for (int64_t j = 0; j < count; j++) dx[j] += a * diff[j];
    }
    return MOKA_OK;
}

static void euclidean_destroy(moka_layer *l)
{
    euclidean_loss *s = l->state;
    free(s->diff);
    s->diff = NULL;
}

const moka_layer_ops moka_layer_euclidean_loss = {
    .type = "EuclideanLoss",
    .state_size = sizeof(euclidean_loss),
    .min_bottom = 2, .max_bottom = 2, .min_top = 1, .max_top = 1,
    .is_loss = true,
    .setup = euclidean_setup,
    .reshape = euclidean_reshape,
    .forward_cpu = euclidean_forward_cpu,
    .backward_cpu = euclidean_backward_cpu,
    .destroy = euclidean_destroy,
};
