/* src/layers/eltwise.c -- Caffe's Eltwise: element-wise SUM, PROD or MAX of K same-shaped bottoms.
 *   bottom[k]  x_k  any shape, the same for every k (K >= 2)
 *   top[0]     y    that shape
 *   SUM   y = sum_k c_k x_k               dx_k += c_k dy      (c_k = coeff[k], default 1)
 *   PROD  y = prod_k x_k                  dx_k += dy * prod_{j != k} x_j   (stable_prod_grad)
 *                                         dx_k += dy * y / x_k             (otherwise)
 *   MAX   y = max_k x_k, argmax m         dx_k += dy where m == k
 * MAX breaks ties as Caffe does: between x_0 and x_1 the later one wins (x_0 only if strictly
 * greater), and from x_2 on a bottom wins only if strictly greater than the running max.
 * Coefficients are for SUM only: one per bottom or none. Reference: Caffe's
 * src/caffe/layers/eltwise_layer.cpp.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

enum { OP_PROD, OP_SUM, OP_MAX };

typedef struct {
    int op;
    bool stable_prod_grad;
    float *coeff;    /* num_bottom values (all 1 without coeff) */
    int32_t *argmax; /* MAX: index of the winning bottom per element */
    int64_t argmax_count;
} eltwise;

static void eltwise_destroy(moka_layer *l)
{
    eltwise *s = l->state;
    free(s->coeff);
    free(s->argmax);
    s->coeff = NULL;
    s->argmax = NULL;
}

static moka_status eltwise_setup(moka_layer *l, moka_err *err)
{
    eltwise *s = l->state;
    const char *op = moka_pt_str(l->param, "operation");
    s->op = strcmp(op, "PROD") == 0 ? OP_PROD : strcmp(op, "MAX") == 0 ? OP_MAX : OP_SUM;
    s->stable_prod_grad = moka_pt_bool(l->param, "stable_prod_grad");
    const int nc = moka_pt_count(l->param, "coeff");
    /* Caffe rejects coeff with PROD; with MAX it would silently ignore them, so moka rejects
     * that too rather than drop a field the user wrote. */
    if (nc > 0 && s->op != OP_SUM)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "coeff", 0),
                            "layer '%s': coeff applies only to operation SUM, not %s", l->name,
                            op);
    if (nc != 0 && nc != l->num_bottom)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "coeff", 0),
                            "layer '%s': %d coeff value(s) for %d bottoms; give one per bottom",
                            l->name, nc, l->num_bottom);
    s->coeff = malloc((size_t)l->num_bottom * sizeof *s->coeff);
    if (!s->coeff) return moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory", l->name);
    for (int i = 0; i < l->num_bottom; i++)
        s->coeff[i] = nc ? (float)moka_pt_float_at(l->param, "coeff", i) : 1.0f;
    return MOKA_OK;
}

static moka_status eltwise_reshape(moka_layer *l, moka_err *err)
{
    eltwise *s = l->state;
    const moka_tensor *x0 = l->bottom[0];
    for (int i = 1; i < l->num_bottom; i++) {
        const moka_tensor *x = l->bottom[i];
        bool same = x->ndim == x0->ndim;
        for (int d = 0; same && d < x0->ndim; d++) same = x->shape[d] == x0->shape[d];
        if (!same) {
            char b0[128], bi[128];
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "bottom %d '%s' has shape %s but bottom 0 '%s' has %s; all "
                                   "bottoms must have the same shape",
                                   i, moka_pt_str_at(l->cfg, "bottom", i),
                                   moka_tensor_shape_str(x, bi, sizeof bi),
                                   moka_pt_str_at(l->cfg, "bottom", 0),
                                   moka_tensor_shape_str(x0, b0, sizeof b0));
        }
    }
    MOKA_TRY(moka_tensor_set_shape_like(l->top[0], x0, err));
    const int64_t n = moka_tensor_count(x0);
    if (s->op == OP_MAX && n != s->argmax_count) {
        int32_t *m = realloc(s->argmax, (size_t)(n > 0 ? n : 1) * sizeof *m);
        if (!m) return moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory", l->name);
        s->argmax = m;
        s->argmax_count = n;
    }
    return MOKA_OK;
}

static moka_status eltwise_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const eltwise *s = l->state;
    const int64_t n = moka_tensor_count(l->top[0]);
    const int nb = l->num_bottom;
    moka_tensor *const *b = l->bottom;
    float *y = l->top[0]->data;
    const float *coeff = s->coeff;
    int32_t *m = s->argmax;
    switch (s->op) {
    case OP_PROD:
#pragma omp parallel for if (n > (1 << 15))
        for (int64_t j = 0; j < n; j++) {
            float v = b[0]->data[j] * b[1]->data[j];
            for (int k = 2; k < nb; k++) v *= b[k]->data[j];
            y[j] = v;
        }
        break;
    case OP_SUM:
#pragma omp parallel for if (n > (1 << 15))
        for (int64_t j = 0; j < n; j++) {
            float v = 0.0f;
            for (int k = 0; k < nb; k++) v += coeff[k] * b[k]->data[j];
            y[j] = v;
        }
        break;
    default: /* OP_MAX */
#pragma omp parallel for if (n > (1 << 15))
        for (int64_t j = 0; j < n; j++) {
            const float a = b[0]->data[j], c = b[1]->data[j];
            float v = a > c ? a : c;
            int32_t w = a > c ? 0 : 1;
            for (int k = 2; k < nb; k++)
                if (b[k]->data[j] > v) v = b[k]->data[j], w = k;
            y[j] = v;
            m[j] = w;
        }
        break;
    }
    return MOKA_OK;
}

static moka_status eltwise_backward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const eltwise *s = l->state;
    const int64_t n = moka_tensor_count(l->top[0]);
    const int nb = l->num_bottom;
    moka_tensor *const *b = l->bottom;
    const float *y = l->top[0]->data, *dy = l->top[0]->grad;
    const int32_t *m = s->argmax;
    for (int k = 0; k < nb; k++) {
        float *dx = moka_layer_bottom_grad(l, k);
        if (!dx) continue;
        const float *x = b[k]->data, c = s->coeff[k];
        switch (s->op) {
        case OP_PROD:
            if (s->stable_prod_grad) {
#pragma omp parallel for if (n > (1 << 15))
                for (int64_t j = 0; j < n; j++) {
                    /* The product of the other bottoms in bottom order, then times dy. */
                    float p = 1.0f;
                    bool first = true;
                    for (int i = 0; i < nb; i++) {
                        if (i == k) continue;
                        p = first ? b[i]->data[j] : p * b[i]->data[j];
                        first = false;
                    }
                    dx[j] += p * dy[j];
                }
            } else {
#pragma omp parallel for if (n > (1 << 15))
                for (int64_t j = 0; j < n; j++) dx[j] += (y[j] / x[j]) * dy[j];
            }
            break;
        case OP_SUM:
#pragma omp parallel for if (n > (1 << 15))
            for (int64_t j = 0; j < n; j++) dx[j] += c * dy[j];
            break;
        default: /* OP_MAX */
#pragma omp parallel for if (n > (1 << 15))
            for (int64_t j = 0; j < n; j++)
                if (m[j] == k) dx[j] += dy[j];
            break;
        }
    }
    return MOKA_OK;
}

const moka_layer_ops moka_layer_eltwise = {
    .type = "Eltwise",
    .param_field = "eltwise_param",
    .state_size = sizeof(eltwise),
    .min_bottom = 2,
    .max_bottom = -1,
    .min_top = 1,
    .max_top = 1,
    .setup = eltwise_setup,
    .reshape = eltwise_reshape,
    .forward_cpu = eltwise_forward_cpu,
    .backward_cpu = eltwise_backward_cpu,
    .destroy = eltwise_destroy,
};
