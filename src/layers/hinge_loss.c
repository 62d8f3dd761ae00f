/* src/layers/hinge_loss.c -- Caffe's HingeLoss: one-vs-all hinge loss over K scores per item.
 *   t[n, k]  = -1 if k == label[n], else +1
 *   m[n, k]  = max(0, 1 + t[n, k] * x[n, k])
 *   loss     = sum m / N                 (hinge_loss_param.norm L1, the default)
 *            = sum m^2 / N               (L2)
 *   dx[n, k] += w / N * t[n, k] * [m > 0]      (L1)
 *   dx[n, k] += w / N * 2 * t[n, k] * m[n, k]  (L2)
 *   bottom[0]  x      (N, ...)  K = count(1) scores per item
 *   bottom[1]  label  N values, integers in [0, K)
 *   top[0]     loss   scalar (0-D); its gradient w is the loss weight the net writes there
 * Labels are read as Caffe does (static_cast<int>: truncation toward zero); one outside [0, K)
 * is an error, and so is a label count other than N (Caffe reads the first N values without
 * checking). The labels get no gradient. Caffe's HingeLoss does not read loss_param, so neither
 * does this layer (the net rejects one set on it).
 * Reference: Caffe's src/caffe/layers/hinge_loss_layer.cpp.
 */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

typedef struct {
    bool l2;
    int64_t num, dim;
    float *margin; /* (N, K): t * m, i.e. m with the label's entry negated; kept for backward */
    int64_t margin_cap;
} hinge_loss;

static moka_status hinge_setup(moka_layer *l, moka_err *err)
{
    hinge_loss *s = l->state;
    const char *norm = moka_pt_str(l->param, "norm");
    if (strcmp(norm, "L1") == 0) s->l2 = false;
    else if (strcmp(norm, "L2") == 0) s->l2 = true;
    else
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "norm", 0),
                            "layer '%s': unknown hinge_loss_param.norm '%s' (known: L1, L2)",
                            l->name, norm);
    return MOKA_OK;
}

static moka_status hinge_reshape(moka_layer *l, moka_err *err)
{
    hinge_loss *s = l->state;
    const moka_tensor *x = l->bottom[0], *label = l->bottom[1];
    char bx[128], bl[128];
    if (x->ndim < 1 || label->ndim < 1 || x->shape[0] != label->shape[0])
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "data (%s) and label (%s) must have the same first dimension",
                               moka_tensor_shape_str(x, bx, sizeof bx),
                               moka_tensor_shape_str(label, bl, sizeof bl));
    s->num = x->shape[0];
    s->dim = moka_tensor_count_range(x, 1, x->ndim);
    if (moka_tensor_count(label) != s->num)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "label (%s) must hold one value per item of the data (%s), "
                               "%lld in all", moka_tensor_shape_str(label, bl, sizeof bl),
                               moka_tensor_shape_str(x, bx, sizeof bx), (long long)s->num);
    const int64_t n = moka_tensor_count(x);
    MOKA_TRY(moka_layer_reserve(l, &s->margin, &s->margin_cap, n, "margins", err));
    return moka_tensor_set_shape(l->top[0], 0, NULL, err);
}

static moka_status hinge_forward_cpu(moka_layer *l, moka_err *err)
{
    hinge_loss *s = l->state;
    const float *x = l->bottom[0]->data, *label = l->bottom[1]->data;
    const int64_t num = s->num, dim = s->dim;
    float *m = s->margin;
    double loss = 0.0;
    for (int64_t n = 0; n < num; n++) {
        /* Caffe's static_cast<int>; NaN and values beyond the int range are not class indices. */
        const float lv = label[n];
        if (!(lv > -2147483648.0f && lv < 2147483648.0f) || (int64_t)lv < 0 ||
            (int64_t)lv >= dim)
            return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                                   "label %g of item %lld is outside [0, %lld)", lv, (long long)n,
                                   (long long)dim);
        const int64_t y = (int64_t)lv;
        for (int64_t k = 0; k < dim; k++) {
            const float xv = x[n * dim + k];
            const float mk = k == y ? 1.0f - xv : 1.0f + xv;
            const float mp = mk > 0.0f ? mk : 0.0f;
            loss += s->l2 ? (double)mp * mp : (double)mp;
            m[n * dim + k] = k == y ? -mp : mp;
        }
    }
    l->top[0]->data[0] = num > 0 ? (float)(loss / (double)num) : 0.0f;
    return MOKA_OK;
}

static moka_status hinge_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const hinge_loss *s = l->state;
    float *dx = moka_layer_bottom_grad(l, 0);
    if (!dx || !l->top[0]->grad || s->num == 0) return MOKA_OK;
    const float scale = l->top[0]->grad[0] / (float)s->num;
    const float *m = s->margin;
    const int64_t n = s->num * s->dim;
    if (s->l2) {
        for (int64_t i = 0; i < n; i++) dx[i] += scale * 2.0f * m[i];
    } else {
        /* sign(t * m): 0 where the margin is met, else t. */
        for (int64_t i = 0; i < n; i++)
            dx[i] += m[i] > 0.0f ? scale : m[i] < 0.0f ? -scale : 0.0f;
    }
    return MOKA_OK;
}

static void hinge_destroy(moka_layer *l)
{
    hinge_loss *s = l->state;
    free(s->margin);
    s->margin = NULL;
}

const moka_layer_ops moka_layer_hinge_loss = {
    .type = "HingeLoss",
    .param_field = "hinge_loss_param",
    .state_size = sizeof(hinge_loss),
    .min_bottom = 2, .max_bottom = 2, .min_top = 1, .max_top = 1,
    .is_loss = true,
    .setup = hinge_setup,
    .reshape = hinge_reshape,
    .forward_cpu = hinge_forward_cpu,
    .backward_cpu = hinge_backward_cpu,
    .destroy = hinge_destroy,
};
