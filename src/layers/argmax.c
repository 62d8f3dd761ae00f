/* src/layers/argmax.c -- Caffe's ArgMax: the indices (or values) of the top_k largest entries.
 * With argmax_param.axis set, x is seen as (outer, D, inner) around that axis and
 *   top[0]  (shape of x with D replaced by top_k)
 *           y[o, r, j] = index (or, with out_max_val, value) of the r-th largest x[o, :, j]
 * Without axis, each item's count(1) values are ranked together and
 *   top[0]  (N, 1, top_k, 1, ...)   indices;  with out_max_val (N, 2, top_k, 1, ...): the
 *           indices, then the values. The top has max(3, ndim(x)) dims, as in Caffe.
 * Ranking is by value, then by index, both descending (Caffe sorts (value, index) pairs with
 * std::greater), so among equal values the later index comes first. Indices are stored as
 * floats. No gradient. Reference: Caffe's src/caffe/layers/argmax_layer.cpp.
 */
#include <stdlib.h>

#include "core/layer.h"

/* Rows are split into at most this many contiguous blocks, each with its own ranking buffer. */
#define MAX_BLOCKS 64

typedef struct {
    float v;
    int64_t i;
} ranked;

typedef struct {
    bool out_max_val, has_axis;
    int64_t top_k;
    int64_t num, dim, axis_dist; /* num rows of dim values, axis_dist apart */
    ranked *scratch;             /* (MAX_BLOCKS, top_k) */
    int64_t scratch_cap;
} argmax;

static moka_status argmax_setup(moka_layer *l, moka_err *err)
{
    argmax *s = l->state;
    s->out_max_val = moka_pt_bool(l->param, "out_max_val");
    s->top_k = moka_pt_int(l->param, "top_k");
    s->has_axis = moka_pt_has(l->param, "axis");
    if (s->top_k < 1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "top_k", 0),
                            "layer '%s': argmax_param.top_k must be at least 1, got %lld",
                            l->name, (long long)s->top_k);
    return MOKA_OK;
}

static moka_status argmax_reshape(moka_layer *l, moka_err *err)
{
    argmax *s = l->state;
    const moka_tensor *x = l->bottom[0];
    char bx[128];
    int64_t shape[MOKA_MAX_NDIM];
    int ndim;
    if (s->has_axis) {
        const int64_t axis = moka_pt_int(l->param, "axis");
        if (axis < -x->ndim || axis >= x->ndim)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "argmax_param.axis %lld is out of range for a %d-D bottom (%s)",
                                   (long long)axis, x->ndim,
                                   moka_tensor_shape_str(x, bx, sizeof bx));
        const int ax = (int)(axis < 0 ? axis + x->ndim : axis);
        s->dim = x->shape[ax];
        s->axis_dist = moka_tensor_count_range(x, ax + 1, x->ndim);
        if (s->top_k > s->dim)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "top_k", 0),
                                "layer '%s': argmax_param.top_k %lld is more than the %lld "
                                "values along axis %d of the bottom (%s)", l->name,
                                (long long)s->top_k, (long long)s->dim, ax,
                                moka_tensor_shape_str(x, bx, sizeof bx));
        ndim = x->ndim;
        for (int d = 0; d < ndim; d++) shape[d] = x->shape[d];
        shape[ax] = s->top_k;
    } else {
        if (x->ndim < 1)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "bottom must have a first dimension");
        s->dim = moka_tensor_count_range(x, 1, x->ndim);
        s->axis_dist = 1;
        if (s->top_k > s->dim)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "top_k", 0),
                                "layer '%s': argmax_param.top_k %lld is more than the %lld "
                                "values per item of the bottom (%s)", l->name,
                                (long long)s->top_k, (long long)s->dim,
                                moka_tensor_shape_str(x, bx, sizeof bx));
        ndim = x->ndim < 3 ? 3 : x->ndim;
        for (int d = 0; d < ndim; d++) shape[d] = 1;
        shape[0] = x->shape[0];
        shape[1] = s->out_max_val ? 2 : 1;
        shape[2] = s->top_k;
    }
    s->num = s->dim ? moka_tensor_count(x) / s->dim : 0;
    if (MAX_BLOCKS * s->top_k > s->scratch_cap) {
        ranked *r = realloc(s->scratch, (size_t)(MAX_BLOCKS * s->top_k) * sizeof *r);
        if (!r) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory for ranking");
        s->scratch = r;
        s->scratch_cap = MAX_BLOCKS * s->top_k;
    }
    return moka_tensor_set_shape(l->top[0], ndim, shape, err);
}

/* std::greater on (value, index) pairs. */
static inline bool ranks_above(ranked a, ranked b)
{
    return a.v > b.v || (a.v == b.v && a.i > b.i);
}

static moka_status argmax_forward_cpu(moka_layer *l, moka_err *err MOKA_UNUSED)
{
    const argmax *s = l->state;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data;
    const int64_t num = s->num, dim = s->dim, dist = s->axis_dist, k = s->top_k;
    const int64_t nblk = num < MAX_BLOCKS ? num : MAX_BLOCKS;
#pragma omp parallel for if (num * dim >= 32768) schedule(static)
    for (int64_t b = 0; b < nblk; b++) {
        ranked *best = s->scratch + b * k;
        for (int64_t i = num * b / nblk; i < num * (b + 1) / nblk; i++) {
            const int64_t base = i / dist * dim * dist + i % dist;
            /* Insertion into the sorted list of the k best so far. */
            int64_t n = 0;
            for (int64_t j = 0; j < dim; j++) {
                const ranked c = {x[base + j * dist], j};
                if (n == k && !ranks_above(c, best[k - 1])) continue;
                int64_t p = n < k ? n++ : k - 1;
                for (; p > 0 && ranks_above(c, best[p - 1]); p--) best[p] = best[p - 1];
                best[p] = c;
            }
            for (int64_t r = 0; r < k; r++) {
                if (s->has_axis) {
                    y[(i / dist * k + r) * dist + i % dist] =
                        s->out_max_val ? best[r].v : (float)best[r].i;
                } else if (s->out_max_val) {
                    y[2 * i * k + r] = (float)best[r].i;
                    y[2 * i * k + k + r] = best[r].v;
                } else {
                    y[i * k + r] = (float)best[r].i;
                }
            }
        }
    }
    return MOKA_OK;
}

static void argmax_destroy(moka_layer *l)
{
    argmax *s = l->state;
    free(s->scratch);
    s->scratch = NULL;
}

const moka_layer_ops moka_layer_argmax = {
    .type = "ArgMax",
    .param_field = "argmax_param",
    .state_size = sizeof(argmax),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 1,
    .setup = argmax_setup,
    .reshape = argmax_reshape,
    .forward_cpu = argmax_forward_cpu,
    .destroy = argmax_destroy,
};
