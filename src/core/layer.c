/* src/core/layer.c -- creating layers from config and the helpers layer files call. */
#include "core/layer.h"
#include "core/layout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

moka_status moka_layer_create(const moka_pt_node *cfg, const moka_ctx *ctx, moka_phase phase,
                              int index, moka_layer **out, moka_err *err)
{
    *out = NULL;
    const char *name = moka_pt_str(cfg, "name"), *type = moka_pt_str(cfg, "type");
    if (!type[0])
        return moka_pt_errf(err, MOKA_ERR_CONFIG, cfg, "layer '%s' has no type (known: %s)", name,
                            moka_layer_type_list());
    const moka_layer_ops *ops = moka_layer_find(type);
    if (!ops && moka_layer_is_caffe_type(type))
        return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(cfg, "type", 0),
                            "layer '%s': Caffe layer type '%s' is not supported by moka yet "
                            "(supported: %s)",
                            name, type, moka_layer_type_list());
    if (!ops)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(cfg, "type", 0),
                            "layer '%s': unknown layer type '%s' (known: %s)", name, type,
                            moka_layer_type_list());
    const int nb = moka_pt_count(cfg, "bottom"), nt = moka_pt_count(cfg, "top");
    if (nb < ops->min_bottom || (ops->max_bottom >= 0 && nb > ops->max_bottom)) {
        if (ops->min_bottom == ops->max_bottom)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, cfg,
                                "layer '%s' (%s) takes %d bottom(s), got %d", name, type,
                                ops->min_bottom, nb);
        if (ops->max_bottom < 0)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, cfg,
                                "layer '%s' (%s) takes at least %d bottom(s), got %d", name, type,
                                ops->min_bottom, nb);
        return moka_pt_errf(err, MOKA_ERR_CONFIG, cfg,
                            "layer '%s' (%s) takes %d to %d bottoms, got %d", name, type,
                            ops->min_bottom, ops->max_bottom, nb);
    }
    if (nt < ops->min_top || (ops->max_top >= 0 && nt > ops->max_top)) {
        if (ops->max_top < 0)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, cfg,
                                "layer '%s' (%s) takes at least %d top(s), got %d", name, type,
                                ops->min_top, nt);
        return moka_pt_errf(err, MOKA_ERR_CONFIG, cfg,
                            "layer '%s' (%s) takes %d to %d tops, got %d", name, type, ops->min_top,
                            ops->max_top, nt);
    }
    moka_layer *l = calloc(1, sizeof *l);
    if (!l) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory creating layer '%s'", name);
    l->name = dup_str(name);
    l->state = calloc(1, ops->state_size ? ops->state_size : 1);
    l->bottom = calloc((size_t)nb + 1, sizeof *l->bottom);
    l->top = calloc((size_t)nt + 1, sizeof *l->top);
    l->propagate_down = calloc((size_t)nb + 1, sizeof *l->propagate_down);
    l->loss_weight = calloc((size_t)nt + 1, sizeof *l->loss_weight);
    if (!l->name || !l->state || !l->bottom || !l->top || !l->propagate_down || !l->loss_weight) {
        moka_layer_free(l);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory creating layer '%s'", name);
    }
    l->ops = ops;
    l->cfg = cfg;
    l->param = ops->param_field ? moka_pt_msg(cfg, ops->param_field) : NULL;
    l->ctx = ctx;
    l->phase = phase;
    l->index = index;
    l->num_bottom = nb;
    l->num_top = nt;
    moka_rng_seed(&l->rng, ctx->seed, moka_rng_hash(name) ^ (uint64_t)phase);
    *out = l;
    return MOKA_OK;
}

void moka_layer_free(moka_layer *l)
{
    if (!l) return;
    if (l->ops && l->ops->destroy) l->ops->destroy(l);
    for (int i = 0; i < l->num_weight; i++) {
        free(l->weight[i]);
        free(l->weight_info[i].name);
        free(l->weight_info[i].share_name);
    }
    free(l->weight);
    free(l->weight_info);
    free(l->bottom);
    free(l->top);
    free(l->propagate_down);
    free(l->loss_weight);
    free(l->state);
    free(l->name);
    free(l);
}

moka_status moka_layer_add_weight(moka_layer *l, const char *name, int ndim, const int64_t *shape,
                                  moka_fill fill, moka_err *err)
{
    /* ndim 0 is a scalar (one value), as Caffe's PReLU channel_shared slope and a Scale with
     * num_axes 0: snapshots must keep its empty shape for Caffe to load them. */
    if (ndim < 0 || ndim > MOKA_MAX_NDIM)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "weight '%s' has %d dims", name, ndim);
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "weight '%s' would have dimension %lld",
                                   name, (long long)shape[i]);
    const int n = l->num_weight;
    moka_tensor **w = realloc(l->weight, (size_t)(n + 1) * sizeof *w);
    if (!w) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    l->weight = w;
    moka_weight_info *wi = realloc(l->weight_info, (size_t)(n + 1) * sizeof *wi);
    if (!wi) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    l->weight_info = wi;
    moka_tensor *t = calloc(1, sizeof *t);
    char *nm = dup_str(name);
    if (!t || !nm) {
        free(t);
        free(nm);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    memset(&wi[n], 0, sizeof wi[n]);
    wi[n].name = nm;
    wi[n].lr_mult = fill.learnable ? 1.0f : 0.0f;
    wi[n].decay_mult = fill.learnable ? 1.0f : 0.0f;
    wi[n].fill = fill;
    wi[n].ndim = ndim;
    for (int i = 0; i < ndim; i++) wi[n].shape[i] = shape[i];
    wi[n].owner_layer = wi[n].owner_index = -1;
    w[n] = t;
    l->num_weight = n + 1;
    return MOKA_OK;
}

float *moka_layer_bottom_grad(const moka_layer *l, int i)
{
    if (!l->propagate_down[i]) return NULL;
    moka_tensor *t = l->bottom[i];
    if (t->held_grad && t->held_grad->zero_pending) {
        moka_zero_floats(t->grad, moka_tensor_count(t));
        t->held_grad->zero_pending = false;
    }
    return t->grad;
}

float *moka_layer_bottom_grad_whole(const moka_layer *l, int i, bool *whole)
{
    *whole = false;
    if (!l->propagate_down[i]) return NULL;
    moka_tensor *t = l->bottom[i];
    if (t->held_grad && t->held_grad->zero_pending) {
        t->held_grad->zero_pending = false;
        *whole = true;
    }
    return t->grad;
}

bool moka_layer_needs_bottom_grad(const moka_layer *l, int i) { return l->propagate_down[i]; }

moka_status moka_layer_reserve(const moka_layer *l, float **buf, int64_t *cap, int64_t n,
                               const char *what, moka_err *err)
{
    if (n <= *cap) return MOKA_OK;
    float *p = realloc(*buf, (size_t)n * sizeof *p);
    if (!p) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory for %s", what);
    *buf = p;
    *cap = n;
    return MOKA_OK;
}

moka_status moka_layer_errf(const moka_layer *l, moka_err *err, moka_status code, const char *fmt,
                            ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return moka_pt_errf(err, code, l->cfg, "layer '%s' (%s): %s", l->name, l->ops->type, msg);
}
