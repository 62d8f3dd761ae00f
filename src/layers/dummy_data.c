/* src/layers/dummy_data.c -- Caffe's DummyData: tops filled by fillers, for tests and benchmarks.
 *   no bottoms
 *   top[i]  shape dummy_data_param.shape[i] (or shape[0] for every top), or the legacy 4-D
 *           (num, channels, height, width), each given once for all tops or once per top
 *   data    data_filler[i] (or data_filler[0] for every top; without one, constant 0)
 * Caffe fills constant tops once and refills the others on every forward. moka fills every top
 * on every forward from the layer's own random stream: a constant filler writes the same
 * values each time, so the result is the same unless a later in-place layer wrote into the top
 * (Caffe would then keep the changed values). There is no gradient.
 * Reference: Caffe's src/caffe/layers/dummy_data_layer.cpp.
 */
#include <stdlib.h>

#include "core/filler.h"
#include "core/layer.h"

typedef struct {
    moka_tensor *shape; /* num_top shapes (only ndim and shape are used) */
    int num_filler;     /* data_filler entries: 0, 1 or num_top */
} dummy_data;

static void dummy_data_destroy(moka_layer *l)
{
    dummy_data *s = l->state;
    free(s->shape);
    s->shape = NULL;
}

/* Legacy num/channels/height/width: each must be given once or once per top. */
static moka_status legacy_dim(moka_layer *l, const char *field, int top, int64_t *out,
                              moka_err *err)
{
    const int n = moka_pt_count(l->param, field);
    if (n != 1 && n != l->num_top)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "dummy_data_param has %d '%s' value(s) for %d tops; give it once "
                               "or once per top",
                               n, field, l->num_top);
    *out = moka_pt_int_at(l->param, field, n == 1 ? 0 : top);
    return MOKA_OK;
}

static moka_status dummy_data_setup(moka_layer *l, moka_err *err)
{
    dummy_data *s = l->state;
    const moka_pt_node *p = l->param;
    const int nt = l->num_top, nf = moka_pt_count(p, "data_filler");
    if (nf != 0 && nf != 1 && nf != nt)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(p, "data_filler", 0),
                            "layer '%s': %d data_filler entries for %d tops; give none, one for "
                            "all tops or one per top",
                            l->name, nf, nt);
    s->num_filler = nf;
    const bool legacy = moka_pt_count(p, "num") || moka_pt_count(p, "channels") ||
                        moka_pt_count(p, "height") || moka_pt_count(p, "width");
    const int ns = moka_pt_count(p, "shape");
    if (legacy && ns > 0)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(p, "shape", 0),
                            "layer '%s': dummy_data_param gives both shape and the legacy "
                            "num/channels/height/width; use one",
                            l->name);
    if (!legacy && ns != 1 && ns != nt) {
        if (ns == 0)
            return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                                   "dummy_data_param has no shape; give shape { dim: ... } once "
                                   "for all tops or once per top");
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(p, "shape", 0),
                            "layer '%s': %d dummy_data_param shapes for %d tops; give one shape "
                            "for all tops or one per top",
                            l->name, ns, nt);
    }
    s->shape = calloc((size_t)nt, sizeof *s->shape);
    if (!s->shape) return moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory", l->name);
    for (int i = 0; i < nt; i++) {
        moka_tensor *t = &s->shape[i];
        if (legacy) {
            t->ndim = 4;
            MOKA_TRY(legacy_dim(l, "num", i, &t->shape[0], err));
            MOKA_TRY(legacy_dim(l, "channels", i, &t->shape[1], err));
            MOKA_TRY(legacy_dim(l, "height", i, &t->shape[2], err));
            MOKA_TRY(legacy_dim(l, "width", i, &t->shape[3], err));
            continue;
        }
        const moka_pt_node *shape = moka_pt_msg_at(p, "shape", ns == 1 ? 0 : i);
        const int nd = moka_pt_count(shape, "dim");
        if (nd > MOKA_MAX_NDIM)
            return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, shape,
                                "layer '%s': dummy data shape has %d dims; moka supports at most "
                                "%d",
                                l->name, nd, MOKA_MAX_NDIM);
        t->ndim = nd;
        for (int d = 0; d < nd; d++) {
            t->shape[d] = moka_pt_int_at(shape, "dim", d);
            if (t->shape[d] < 0)
                return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(shape, "dim", d),
                                    "layer '%s': dummy data dim %lld is negative", l->name,
                                    (long long)t->shape[d]);
        }
    }
    return MOKA_OK;
}

static moka_status dummy_data_reshape(moka_layer *l, moka_err *err)
{
    const dummy_data *s = l->state;
    for (int i = 0; i < l->num_top; i++)
        MOKA_TRY(moka_tensor_set_shape_like(l->top[i], &s->shape[i], err));
    return MOKA_OK;
}

static moka_status dummy_data_forward_cpu(moka_layer *l, moka_err *err)
{
    const dummy_data *s = l->state;
    for (int i = 0; i < l->num_top; i++) {
        /* With no data_filler, moka_pt_msg gives an empty FillerParameter: constant 0. */
        const moka_pt_node *f = s->num_filler > 1 ? moka_pt_msg_at(l->param, "data_filler", i)
                                                  : moka_pt_msg(l->param, "data_filler");
        MOKA_TRY(moka_filler_fill(f, l->top[i], &l->rng, err));
    }
    return MOKA_OK;
}

const moka_layer_ops moka_layer_dummy_data = {
    .type = "DummyData",
    .param_field = "dummy_data_param",
    .state_size = sizeof(dummy_data),
    .min_bottom = 0,
    .max_bottom = 0,
    .min_top = 1,
    .max_top = -1,
    .setup = dummy_data_setup,
    .reshape = dummy_data_reshape,
    .forward_cpu = dummy_data_forward_cpu,
    .destroy = dummy_data_destroy,
};
