/* src/layers/accuracy.c -- Caffe's Accuracy: the fraction of positions whose labelled class is
 * among the top_k scores.
 *   position (o, j) with class y = label[o, j] is correct when
 *       #{k : x[o, k, j] >= x[o, y, j]} <= top_k       (y itself included)
 *   top[0]     accuracy = correct / valid positions (0 when none is valid)
 *   top[1]     optional, (C): per class, correct / valid positions of that class (0 if none)
 *   bottom[0]  x      scores, seen as (outer, C, inner) around accuracy_param.axis
 *   bottom[1]  label  outer * inner values, integers in [0, C) or accuracy_param.ignore_label
 * A score equal to the labelled class's counts against it, as in Caffe, so ties are not
 * correct unless fewer than top_k scores tie or beat it. Positions whose label equals
 * ignore_label (when set) are skipped. Labels are read as Caffe does (static_cast<int>:
 * truncation toward zero); one outside [0, C) that is not ignored is an error. A NaN score for
 * the labelled class counts as wrong (Caffe's comparisons would count it right). No gradient.
 * Reference: Caffe's src/caffe/layers/accuracy_layer.cpp.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

typedef struct {
    int64_t top_k;
    bool has_ignore;
    int64_t ignore_label;
    int64_t outer, ch, inner; /* x seen as (outer, C, inner) */
    int64_t *class_count;     /* (2, C): valid, then correct positions per class, for top[1] */
    int64_t class_cap;
} accuracy;

static moka_status accuracy_setup(moka_layer *l, moka_err *err)
{
    accuracy *s = l->state;
    s->top_k = moka_pt_int(l->param, "top_k");
    if (s->top_k < 1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "top_k", 0),
                            "layer '%s': accuracy_param.top_k must be at least 1, got %lld",
                            l->name, (long long)s->top_k);
    s->has_ignore = moka_pt_has(l->param, "ignore_label");
    s->ignore_label = moka_pt_int(l->param, "ignore_label");
    return MOKA_OK;
}

static moka_status accuracy_reshape(moka_layer *l, moka_err *err)
{
    accuracy *s = l->state;
    const moka_tensor *x = l->bottom[0], *label = l->bottom[1];
    char bx[128], bl[128];
    const int64_t axis = moka_pt_int(l->param, "axis");
    if (axis < -x->ndim || axis >= x->ndim)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "accuracy_param.axis %lld is out of range for a %d-D bottom (%s)",
                               (long long)axis, x->ndim, moka_tensor_shape_str(x, bx, sizeof bx));
    const int ax = (int)(axis < 0 ? axis + x->ndim : axis);
    s->outer = moka_tensor_count_range(x, 0, ax);
    s->ch = x->shape[ax];
    s->inner = moka_tensor_count_range(x, ax + 1, x->ndim);
    if (moka_tensor_count(label) != s->outer * s->inner)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "label (%s) must have %lld values, one per position of the scores "
                               "(%s) outside axis %d",
                               moka_tensor_shape_str(label, bl, sizeof bl),
                               (long long)(s->outer * s->inner),
                               moka_tensor_shape_str(x, bx, sizeof bx), ax);
    if (s->top_k > s->ch)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "top_k", 0),
                            "layer '%s': accuracy_param.top_k %lld is more than the %lld classes",
                            l->name, (long long)s->top_k, (long long)s->ch);
    MOKA_TRY(moka_tensor_set_shape(l->top[0], 0, NULL, err));
    if (l->num_top > 1) {
        MOKA_TRY(moka_tensor_set_shape(l->top[1], MOKA_SHAPE(s->ch), err));
        if (2 * s->ch > s->class_cap) {
            int64_t *c = realloc(s->class_count, (size_t)(2 * s->ch) * sizeof *c);
            if (!c) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");
            s->class_count = c;
            s->class_cap = 2 * s->ch;
        }
    }
    return MOKA_OK;
}

static moka_status accuracy_forward_cpu(moka_layer *l, moka_err *err)
{
    accuracy *s = l->state;
    const float *x = l->bottom[0]->data, *label = l->bottom[1]->data;
    const int64_t outer = s->outer, ch = s->ch, inner = s->inner;
    float *per_class = l->num_top > 1 ? l->top[1]->data : NULL;
    if (per_class) memset(s->class_count, 0, (size_t)(2 * ch) * sizeof *s->class_count);
    int64_t correct = 0, valid = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float lv = label[o * inner + j];
            /* Caffe's static_cast<int>; NaN and values beyond the int range are no classes. */
            const bool in_int = lv > -2147483648.0f && lv < 2147483648.0f;
            const int64_t y = in_int ? (int64_t)lv : -1;
            if (in_int && s->has_ignore && y == s->ignore_label) continue;
            if (!in_int || y < 0 || y >= ch)
                return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                                       "label %g at position %lld is outside [0, %lld)%s", lv,
                                       (long long)(o * inner + j), (long long)ch,
                                       s->has_ignore ? " and is not accuracy_param.ignore_label"
                                                     : "");
            const float *xo = x + o * ch * inner + j;
            const float truth = xo[y * inner];
            int64_t better = 0; /* counts y itself */
            for (int64_t k = 0; k < ch && better <= s->top_k; k++) better += xo[k * inner] >= truth;
            /* A NaN score compares false with everything, so Caffe would count it correct; a net
             * that produced NaN has not classified anything, so moka counts it wrong. */
            const bool ok = better <= s->top_k && !isnan(truth);
            correct += ok;
            valid++;
            if (per_class) {
                s->class_count[y]++;
                s->class_count[ch + y] += ok;
            }
        }
    l->top[0]->data[0] = valid ? (float)((double)correct / (double)valid) : 0.0f;
    if (per_class)
        for (int64_t c = 0; c < ch; c++)
            per_class[c] = s->class_count[c] ? (float)((double)s->class_count[ch + c] /
                                                       (double)s->class_count[c])
                                             : 0.0f;
    return MOKA_OK;
}

static void accuracy_destroy(moka_layer *l)
{
    accuracy *s = l->state;
    free(s->class_count);
    s->class_count = NULL;
}

const moka_layer_ops moka_layer_accuracy = {
    .type = "Accuracy",
    .param_field = "accuracy_param",
    .state_size = sizeof(accuracy),
    .min_bottom = 2, .max_bottom = 2, .min_top = 1, .max_top = 2,
    .setup = accuracy_setup,
    .reshape = accuracy_reshape,
    .forward_cpu = accuracy_forward_cpu,
    .destroy = accuracy_destroy,
};
