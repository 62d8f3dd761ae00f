/* src/core/filler.c -- Caffe's weight fillers (include/caffe/filler.hpp), over a blob of any
 * shape, row-major, with rows = shape[0] (1 for a 0-d blob):
 *
 *   constant           w = value
 *   uniform            w ~ U(min, max)
 *   gaussian           w ~ N(mean, std); sparse = s >= 0 then keeps each w with probability
 *                      s / shape[0] and zeroes the rest (s = mean nonzeros per output row)
 *   positive_unitball  w ~ U(0, 1), then each row divided by its sum
 *   xavier             w ~ U(-a, a), a = sqrt(3 / n)
 *   msra               w ~ N(0, sqrt(2 / n))
 *                      n = fan_in = count / shape[0], fan_out = count / shape[1] (count for a
 *                      1-D blob), or (fan_in + fan_out) / 2, by variance_norm
 *   bilinear           4-D (N, C, K, K): w[n, c, y, x] = (1 - |x / f - c0|) * (1 - |y / f - c0|),
 *                      f = ceil(K / 2), c0 = (K - 1) / (2 f)
 *
 * Bilinear uses the centre of Caffe's current filler.hpp (BVLC/caffe#5713). Caffe 1.0 and
 * earlier had c0 = (2f - 1 - f % 2) / (2f), which gives the same kernel for every K except
 * K = 3, 6, 7, 10, 11, ... (f odd with K even, or f even with K odd), where its kernel is
 * lopsided; the symmetric one is what upsampling nets expect.
 *
 * What Caffe CHECKs (an empty blob, sparse on a filler other than gaussian, min > max, std <= 0,
 * sparse outside [-1, shape[0]], bilinear on a non-4-D or non-square blob) is a MOKA_ERR_CONFIG
 * here, pointing at the filler in the config. Random values come from the caller's stream in
 * element order, so a fill is reproducible from the seed (though not the numbers Caffe's
 * Mersenne twister would draw).
 */
#include "core/filler.h"

#include <math.h>
#include <string.h>

typedef struct fill_args {
    const moka_pt_node *node;
    const char *what; /* "weight_filler", for messages */
    moka_tensor *t;
    int64_t count, rows;
    moka_rng *rng;
} fill_args;

typedef moka_status (*fill_fn)(const fill_args *a, moka_err *err);

static moka_status fill_constant(const fill_args *a, moka_err *err MOKA_UNUSED)
{
    const float value = (float)moka_pt_float(a->node, "value");
    for (int64_t i = 0; i < a->count; i++) a->t->data[i] = value;
    return MOKA_OK;
}

static moka_status fill_uniform(const fill_args *a, moka_err *err)
{
    const float lo = (float)moka_pt_float(a->node, "min");
    const float hi = (float)moka_pt_float(a->node, "max");
    if (!(lo <= hi))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, a->node,
                            "%s: uniform filler needs min <= max, got min %g, max %g", a->what,
                            (double)lo, (double)hi);
    for (int64_t i = 0; i < a->count; i++) a->t->data[i] = moka_rng_uniform(a->rng, lo, hi);
    return MOKA_OK;
}

static moka_status fill_gaussian(const fill_args *a, moka_err *err)
{
    const float mean = (float)moka_pt_float(a->node, "mean");
    const float std = (float)moka_pt_float(a->node, "std");
    const int64_t sparse = moka_pt_int(a->node, "sparse");
    if (!(std > 0.0f))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, a->node,
                            "%s: gaussian filler needs std > 0, got %g", a->what, (double)std);
    if (sparse < -1 || sparse > a->rows)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, a->node,
                            "%s: gaussian filler sparse must be -1 (off) or between 0 and the "
                            "%lld output rows (shape[0]), got %lld",
                            a->what, (long long)a->rows, (long long)sparse);
    if (sparse >= 0 && a->t->ndim < 1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, a->node,
                            "%s: sparse gaussian filler needs a blob with at least 1 axis (the "
                            "output rows), got a 0-D blob",
                            a->what);
    float *w = a->t->data;
    for (int64_t i = 0; i < a->count; i++) w[i] = moka_rng_gaussian(a->rng, mean, std);
    if (sparse >= 0) {
        /* Caffe draws the whole Bernoulli mask after the values; so does this. */
        const float keep = (float)sparse / (float)a->rows;
        for (int64_t i = 0; i < a->count; i++)
            if (!(moka_rng_uniform(a->rng, 0.0f, 1.0f) < keep)) w[i] = 0.0f;
    }
    return MOKA_OK;
}

static moka_status fill_positive_unitball(const fill_args *a, moka_err *err MOKA_UNUSED)
{
    float *w = a->t->data;
    for (int64_t i = 0; i < a->count; i++) w[i] = moka_rng_uniform(a->rng, 0.0f, 1.0f);
    const int64_t dim = a->count / a->rows;
    for (int64_t r = 0; r < a->rows; r++) {
        float sum = 0.0f; /* Caffe sums in the blob's type */
        for (int64_t j = 0; j < dim; j++) sum += w[r * dim + j];
        for (int64_t j = 0; j < dim; j++) w[r * dim + j] /= sum;
    }
    return MOKA_OK;
}

/* n of xavier and msra, with Caffe's int fans and float average. */
static float fan(const fill_args *a)
{
    const int64_t fan_in = a->count / a->rows;
    const int64_t fan_out = a->t->ndim > 1 ? a->count / a->t->shape[1] : a->count;
    const char *norm = moka_pt_str(a->node, "variance_norm");
    if (strcmp(norm, "AVERAGE") == 0) return (float)(fan_in + fan_out) / 2.0f;
    if (strcmp(norm, "FAN_OUT") == 0) return (float)fan_out;
    return (float)fan_in;
}

static moka_status fill_xavier(const fill_args *a, moka_err *err MOKA_UNUSED)
{
    const float scale = sqrtf(3.0f / fan(a));
    for (int64_t i = 0; i < a->count; i++) a->t->data[i] = moka_rng_uniform(a->rng, -scale, scale);
    return MOKA_OK;
}

static moka_status fill_msra(const fill_args *a, moka_err *err MOKA_UNUSED)
{
    const float std = sqrtf(2.0f / fan(a));
    for (int64_t i = 0; i < a->count; i++) a->t->data[i] = moka_rng_gaussian(a->rng, 0.0f, std);
    return MOKA_OK;
}

static moka_status fill_bilinear(const fill_args *a, moka_err *err)
{
    const moka_tensor *t = a->t;
    char shape[160];
    if (t->ndim != 4)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, a->node,
                            "%s: bilinear filler needs a 4-D blob (N, C, K, K), got %d-D (%s)",
                            a->what, t->ndim, moka_tensor_shape_str(t, shape, sizeof shape));
    if (t->shape[2] != t->shape[3])
        return moka_pt_errf(err, MOKA_ERR_CONFIG, a->node,
                            "%s: bilinear filler needs a square kernel, got %lld x %lld", a->what,
                            (long long)t->shape[2], (long long)t->shape[3]);
    const int64_t k = t->shape[3];
    const float f = (float)ceil((double)k / 2.0);
    const float c = (float)((double)(k - 1) / (2.0 * f));
    for (int64_t i = 0; i < a->count; i++) {
        const float x = (float)(i % k), y = (float)((i / k) % k);
        t->data[i] = (1.0f - fabsf(x / f - c)) * (1.0f - fabsf(y / f - c));
    }
    return MOKA_OK;
}

static const struct {
    const char *name;
    fill_fn fn;
} fillers[] = {
    {"bilinear", fill_bilinear}, {"constant", fill_constant},
    {"gaussian", fill_gaussian}, {"msra", fill_msra},
    {"positive_unitball", fill_positive_unitball}, {"uniform", fill_uniform},
    {"xavier", fill_xavier},
};

moka_status moka_filler_fill(const moka_pt_node *filler, moka_tensor *t, moka_rng *rng,
                             moka_err *err)
{
    const char *type = moka_pt_str(filler, "type");
    const char *what = filler->name && filler->name[0] ? filler->name : "FillerParameter";
    fill_fn fn = NULL;
    for (size_t i = 0; i < sizeof fillers / sizeof fillers[0]; i++)
        if (strcmp(type, fillers[i].name) == 0) fn = fillers[i].fn;
    if (!fn) {
        const moka_pt_node *at = moka_pt_node_at(filler, "type", 0);
        return moka_pt_errf(err, MOKA_ERR_CONFIG, at ? at : filler,
                            "%s: unknown filler type '%s' (known: bilinear, constant, gaussian, "
                            "msra, positive_unitball, uniform, xavier)",
                            what, type);
    }
    const int64_t sparse = moka_pt_int(filler, "sparse");
    if (sparse != -1 && fn != fill_gaussian) {
        const moka_pt_node *at = moka_pt_node_at(filler, "sparse", 0);
        return moka_pt_errf(err, MOKA_ERR_CONFIG, at ? at : filler,
                            "%s: sparse is only supported by the gaussian filler, not '%s'", what,
                            type);
    }
    fill_args a = {.node = filler, .what = what, .t = t, .count = moka_tensor_count(t),
                   .rows = t->ndim > 0 ? t->shape[0] : 1, .rng = rng};
    if (a.count == 0) {
        char shape[160];
        return moka_pt_errf(err, MOKA_ERR_CONFIG, filler,
                            "%s: cannot fill an empty blob (shape %s) with the %s filler", what,
                            moka_tensor_shape_str(t, shape, sizeof shape), type);
    }
    return fn(&a, err);
}
