/* src/layers/sigmoid_cross_entropy_loss.c -- Caffe's SigmoidCrossEntropyLoss: binary cross-entropy
 * of sigmoid(x) against targets t in [0, 1], computed from x without forming log(sigmoid(x)):
 *   l_i   = -(t_i log s_i + (1 - t_i) log(1 - s_i)),  s_i = sigmoid(x_i)
 *         = max(x_i, 0) - x_i t_i + log(1 + exp(-|x_i|))      (no overflow for any x)
 *   loss  = sum_{i valid} l_i / normalizer
 *   dx_i += w / normalizer * (s_i - t_i)  for valid i, else 0
 *   bottom[0]  x     (N, ...)  logits
 *   bottom[1]  t     (N, ...)  targets, the same count as x
 *   top[0]     loss  scalar (0-D); its gradient w is the loss weight the net writes there
 * Element i is valid unless loss_param.ignore_label is set and equals static_cast<int>(t_i)
 * (Caffe's test: a target of 0.5 truncates to 0). The normalizer is loss_param.normalization:
 * FULL count(x), VALID the number of valid elements, BATCH_SIZE N, NONE 1; at least 1 in every
 * mode. Without `normalization` the legacy bool `normalize` picks VALID (true) or BATCH_SIZE
 * (false); with neither the default is BATCH_SIZE (unlike SoftmaxWithLoss, whose default is
 * VALID). Targets get no gradient, as in Caffe.
 * Reference: Caffe's src/caffe/layers/sigmoid_cross_entropy_loss_layer.cpp.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "core/reduce.h"

/* Elements per partial sum. Fixed, so the loss is the same for every thread count. */
#define CHUNK 4096

typedef enum { NORM_FULL, NORM_VALID, NORM_BATCH_SIZE, NORM_NONE } norm_mode;

typedef struct {
    norm_mode norm;
    bool has_ignore;
    int64_t ignore_label;
    int64_t num, count;
    float *diff;       /* (count): s - t, or 0 where ignored; kept for backward */
    int64_t diff_cap;
    double normalizer; /* of the last forward */
} sce_loss;

/* Caffe compares static_cast<int>(t) with ignore_label. NaN, infinities and values beyond the
 * int range have no such meaning and never match. */
static bool target_is_ignored(const sce_loss *s, float t)
{
    if (!s->has_ignore || !(t > -2147483648.0f && t < 2147483648.0f)) return false;
    return (int64_t)t == s->ignore_label;
}

static moka_status sce_setup(moka_layer *l, moka_err *err)
{
    sce_loss *s = l->state;
    const moka_pt_node *lp = moka_pt_msg(l->cfg, "loss_param");
    s->has_ignore = moka_pt_has(lp, "ignore_label");
    s->ignore_label = moka_pt_int(lp, "ignore_label");
    if (!moka_pt_has(lp, "normalization")) {
        s->norm = moka_pt_has(lp, "normalize") && moka_pt_bool(lp, "normalize") ? NORM_VALID
                                                                                : NORM_BATCH_SIZE;
        return MOKA_OK;
    }
    const char *mode = moka_pt_str(lp, "normalization");
    if (strcmp(mode, "FULL") == 0) s->norm = NORM_FULL;
    else if (strcmp(mode, "VALID") == 0) s->norm = NORM_VALID;
    else if (strcmp(mode, "BATCH_SIZE") == 0) s->norm = NORM_BATCH_SIZE;
    else if (strcmp(mode, "NONE") == 0) s->norm = NORM_NONE;
    else
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(lp, "normalization", 0),
                            "layer '%s': unknown loss_param.normalization '%s' (known: FULL, "
                            "VALID, BATCH_SIZE, NONE)", l->name, mode);
    return MOKA_OK;
}

static moka_status sce_reshape(moka_layer *l, moka_err *err)
{
    sce_loss *s = l->state;
    const moka_tensor *x = l->bottom[0], *t = l->bottom[1];
    char bx[128], bt[128];
    if (x->ndim < 1 || t->ndim < 1 || x->shape[0] != t->shape[0])
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "data (%s) and targets (%s) must have the same first dimension",
                               moka_tensor_shape_str(x, bx, sizeof bx),
                               moka_tensor_shape_str(t, bt, sizeof bt));
    if (moka_tensor_count(x) != moka_tensor_count(t))
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "data (%s) and targets (%s) must have the same count",
                               moka_tensor_shape_str(x, bx, sizeof bx),
                               moka_tensor_shape_str(t, bt, sizeof bt));
    s->num = x->shape[0];
    s->count = moka_tensor_count(x);
    MOKA_TRY(moka_layer_reserve(l, &s->diff, &s->diff_cap, s->count, "the gradient", err));
    return moka_tensor_set_shape(l->top[0], 0, NULL, err);
}

typedef struct {
    const sce_loss *s;
    const float *x, *t;
} sce_chunk_ctx;

/* One chunk of the forward pass: writes diff, sums the loss into out[0] and counts the valid
 * elements into out[1] (a count of at most CHUNK, so exact as a double). */
static void sce_chunk(const void *ctx, int64_t lo, int64_t hi, double *out)
{
    const sce_chunk_ctx *c = ctx;
    const float *x = c->x, *t = c->t;
    float *diff = c->s->diff;
    double loss = 0.0;
    int64_t valid = 0;
    for (int64_t i = lo; i < hi; i++) {
        if (target_is_ignored(c->s, t[i])) {
            diff[i] = 0.0f;
            continue;
        }
        const double xi = x[i];
        loss += fmax(xi, 0.0) - xi * t[i] + log1p(exp(-fabs(xi)));
        /* sigmoid(x) without overflow: exp of a non-positive number only. */
        const float e = expf(-fabsf(x[i]));
        const float sig = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        diff[i] = sig - t[i];
        valid++;
    }
    out[0] = loss;
    out[1] = (double)valid;
}

static moka_status sce_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    sce_loss *s = l->state;
    const int64_t count = s->count;
    sce_chunk_ctx c = {s, l->bottom[0]->data, l->bottom[1]->data};
    double sums[2];
    moka_reduce_chunks(count, CHUNK, 2, 0, sce_chunk, &c, sums);
    /* Sums of whole numbers below 2^53 are exact, so this is the true count. */
    const double loss = sums[0];
    const int64_t valid = (int64_t)sums[1];
    double norm = 1.0;
    switch (s->norm) {
    case NORM_FULL: norm = (double)count; break;
    case NORM_VALID: norm = (double)valid; break;
    case NORM_BATCH_SIZE: norm = (double)s->num; break;
    case NORM_NONE: norm = 1.0; break;
    }
    s->normalizer = fmax(norm, 1.0);
    l->top[0]->data[0] = (float)(loss / s->normalizer);
    return MOKA_OK;
}

static moka_status sce_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const sce_loss *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx || !l->top[0]->grad) return MOKA_OK;
    const float scale = (float)(l->top[0]->grad[0] / s->normalizer);
    const float *diff = s->diff;
    const int64_t count = s->count;
#pragma omp parallel for if (count >= 32768) schedule(static)
    for (int64_t i = 0; i < count; i++) dx[i] += scale * diff[i];
    return MOKA_OK;
}

static void sce_destroy(moka_layer *l)
{
    sce_loss *s = l->state;
    free(s->diff);
    s->diff = NULL;
}

static const char *const sce_extra[] = {"loss_param", NULL};

const moka_layer_ops moka_layer_sigmoid_cross_entropy_loss = {
    .type = "SigmoidCrossEntropyLoss",
    .extra_fields = sce_extra,
    .state_size = sizeof(sce_loss),
    .min_bottom = 2, .max_bottom = 2, .min_top = 1, .max_top = 1,
    .is_loss = true,
    .setup = sce_setup,
    .reshape = sce_reshape,
    .forward_cpu = sce_forward_cpu,
    .backward_cpu = sce_backward_cpu,
    .destroy = sce_destroy,
};
