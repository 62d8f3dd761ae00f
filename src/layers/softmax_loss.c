/* src/layers/softmax_loss.c -- Caffe's SoftmaxWithLoss: softmax along one axis, then the mean
 * negative log-likelihood of the labelled class.
 *   p[o, c, j] = softmax over c of x[o, c, j]                (softmax_kernel.h, as in Softmax)
 *   loss       = -sum_{(o, j) valid} log(max(p[o, label[o, j], j], FLT_MIN)) / normalizer
 *   dx[o, c, j] += w / normalizer * (p[o, c, j] - [c == label[o, j]])   for valid (o, j), else 0
 *   bottom[0]  x      any shape, seen as (outer, C, inner) around softmax_param.axis
 *   bottom[1]  label  outer * inner values, integers in [0, C) or loss_param.ignore_label
 *   top[0]     loss   scalar (0-D); its gradient w is the loss weight the net writes there
 *   top[1]     p      optional, same shape as x: the probabilities
 * Position (o, j) is valid unless loss_param.ignore_label is set and equals its label. The
 * normalizer is loss_param.normalization: FULL outer * inner, VALID the number of valid
 * positions, BATCH_SIZE outer, NONE 1; at least 1 in every mode, so a batch with every label
 * ignored gives loss 0 instead of NaN. Without `normalization`, the legacy bool `normalize`
 * picks VALID (true) or BATCH_SIZE (false); with neither the default is VALID.
 * Labels are floats read as Caffe does (static_cast<int>: truncation toward zero). A label
 * outside [0, C) that is not ignore_label is an error (Caffe only checks it in debug builds).
 * As in Caffe, backward sends nothing to the labels and ignores any gradient arriving at top[1]:
 * the probabilities are an output for inspection, not part of the objective.
 * Reference: Caffe's src/caffe/layers/softmax_loss_layer.cpp.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "layers/softmax_kernel.h"

/* Element counts below this run on one thread: spawning the team would cost more. */
#define PAR_MIN 32768

typedef enum { NORM_FULL, NORM_VALID, NORM_BATCH_SIZE, NORM_NONE } norm_mode;

typedef struct {
    norm_mode norm;
    bool has_ignore;
    int64_t ignore_label;
    int64_t outer, ch, inner; /* x seen as (outer, C, inner) */
    float *prob;              /* (outer, C, inner), kept for backward */
    int32_t *cls;             /* (outer, inner): label class, or -1 where ignored */
    int64_t prob_cap, cls_cap;
    double normalizer; /* of the last forward */
} softmax_loss;

/* Caffe reads a label with static_cast<int>, truncating toward zero. NaN, infinities and values
 * beyond the int range have no such meaning; the caller reports them. */
static bool label_to_int(float v, int64_t *out)
{
    if (!(v > -2147483648.0f && v < 2147483648.0f)) return false;
    *out = (int64_t)v;
    return true;
}

static moka_status softmax_loss_setup(moka_layer *l, moka_err *err)
{
    softmax_loss *s = l->state;
    const moka_pt_node *lp = moka_pt_msg(l->cfg, "loss_param");
    s->has_ignore = moka_pt_has(lp, "ignore_label");
    s->ignore_label = moka_pt_int(lp, "ignore_label");
    if (!moka_pt_has(lp, "normalization") && moka_pt_has(lp, "normalize")) {
        s->norm = moka_pt_bool(lp, "normalize") ? NORM_VALID : NORM_BATCH_SIZE;
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

static moka_status softmax_loss_reshape(moka_layer *l, moka_err *err)
{
    softmax_loss *s = l->state;
    const moka_tensor *x = l->bottom[0], *label = l->bottom[1];
    char bx[128], bl[128];
    const int64_t axis = moka_pt_int(l->param, "axis");
    if (axis < -x->ndim || axis >= x->ndim)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "softmax_param.axis %lld is out of range for a %d-D bottom (%s)",
                               (long long)axis, x->ndim, moka_tensor_shape_str(x, bx, sizeof bx));
    const int ax = (int)(axis < 0 ? axis + x->ndim : axis);
    s->outer = moka_tensor_count_range(x, 0, ax);
    s->ch = x->shape[ax];
    s->inner = moka_tensor_count_range(x, ax + 1, x->ndim);
    /* Caffe's LossLayer insists on equal first dimensions, then on one label per position. */
    if (label->ndim < 1 || label->shape[0] != x->shape[0])
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "data (%s) and label (%s) must have the same first dimension",
                               moka_tensor_shape_str(x, bx, sizeof bx),
                               moka_tensor_shape_str(label, bl, sizeof bl));
    if (moka_tensor_count(label) != s->outer * s->inner)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "label (%s) must have %lld values, one per position of the data "
                               "(%s) outside softmax axis %d",
                               moka_tensor_shape_str(label, bl, sizeof bl),
                               (long long)(s->outer * s->inner),
                               moka_tensor_shape_str(x, bx, sizeof bx), ax);
    if (s->ch > INT32_MAX)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "%lld classes is more than supported",
                               (long long)s->ch);
    const int64_t n = moka_tensor_count(x), npos = s->outer * s->inner;
    MOKA_TRY(moka_layer_reserve(l, &s->prob, &s->prob_cap, n, "probabilities", err));
    if (npos > s->cls_cap) {
        int32_t *c = realloc(s->cls, (size_t)npos * sizeof *c);
        if (!c) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory for labels");
        s->cls = c;
        s->cls_cap = npos;
    }
    MOKA_TRY(moka_tensor_set_shape(l->top[0], 0, NULL, err));
    if (l->num_top > 1) MOKA_TRY(moka_tensor_set_shape_like(l->top[1], x, err));
    return MOKA_OK;
}

static moka_status softmax_loss_forward_cpu(moka_layer *l, moka_err *err)
{
    softmax_loss *s = l->state;
    const int64_t outer = s->outer, ch = s->ch, inner = s->inner, npos = outer * inner;
    const float *label = l->bottom[1]->data;
    /* Labels first, so a bad one fails before any work and backward never sees one. */
    int64_t valid = 0;
    for (int64_t i = 0; i < npos; i++) {
        int64_t v;
        if (!label_to_int(label[i], &v))
            return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                                   "label %g at position %lld is not a class index", label[i],
                                   (long long)i);
        if (s->has_ignore && v == s->ignore_label) {
            s->cls[i] = -1;
            continue;
        }
        if (v < 0 || v >= ch)
            return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                                   "label %lld at position %lld is outside [0, %lld)%s",
                                   (long long)v, (long long)i, (long long)ch,
                                   s->has_ignore ? " and is not loss_param.ignore_label" : "");
        s->cls[i] = (int32_t)v;
        valid++;
    }
    if (npos * ch > 0) moka_softmax_forward(l->bottom[0]->data, s->prob, outer, ch, inner);
    double loss = 0.0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const int32_t c = s->cls[o * inner + j];
            if (c < 0) continue;
            loss -= log(fmax((double)s->prob[(o * ch + c) * inner + j], (double)FLT_MIN));
        }
    double norm = 1.0;
    switch (s->norm) {
    case NORM_FULL: norm = (double)npos; break;
    case NORM_VALID: norm = (double)valid; break;
    case NORM_BATCH_SIZE: norm = (double)outer; break;
    case NORM_NONE: norm = 1.0; break;
    }
    s->normalizer = fmax(norm, 1.0);
    l->top[0]->data[0] = (float)(loss / s->normalizer);
    if (l->num_top > 1)
        memcpy(l->top[1]->data, s->prob, (size_t)(outer * ch * inner) * sizeof(float));
    return MOKA_OK;
}

static moka_status softmax_loss_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const softmax_loss *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx || !l->top[0]->grad) return MOKA_OK;
    const int64_t outer = s->outer, ch = s->ch, inner = s->inner;
    const float scale = (float)(l->top[0]->grad[0] / s->normalizer);
    const float *p = s->prob;
    const int32_t *cls = s->cls;
#pragma omp parallel for if (outer * ch * inner >= PAR_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        const int32_t *co = cls + o * inner;
        for (int64_t c = 0; c < ch; c++) {
            const int64_t off = (o * ch + c) * inner;
            for (int64_t j = 0; j < inner; j++)
                if (co[j] >= 0) dx[off + j] += scale * (p[off + j] - (co[j] == c ? 1.0f : 0.0f));
        }
    }
    return MOKA_OK;
}

static void softmax_loss_destroy(moka_layer *l)
{
    softmax_loss *s = l->state;
    free(s->prob);
    free(s->cls);
    s->prob = NULL;
    s->cls = NULL;
}

static const char *const softmax_loss_extra[] = {"loss_param", NULL};

const moka_layer_ops moka_layer_softmax_loss = {
    .type = "SoftmaxWithLoss",
    .param_field = "softmax_param",
    .extra_fields = softmax_loss_extra,
    .state_size = sizeof(softmax_loss),
    .min_bottom = 2, .max_bottom = 2, .min_top = 1, .max_top = 2,
    .is_loss = true,
    .setup = softmax_loss_setup,
    .reshape = softmax_loss_reshape,
    .forward_cpu = softmax_loss_forward_cpu,
    .backward_cpu = softmax_loss_backward_cpu,
    .destroy = softmax_loss_destroy,
};
