/* tests/harness.c -- one layer built from config text, run alone, checked by finite differences. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "core/filler.h"
#include "test.h"

typedef struct harness_priv {
    moka_pt_doc *doc;
    float *saved_bottom[MOKA_HARNESS_MAX]; /* inputs as given, restored before each forward */
    moka_rng layer_rng;                    /* the layer's stream as it was after setup */
    bool set_up;
} harness_priv;

static float *falloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

moka_status moka_harness_init(moka_harness *h, const char *layer_cfg, moka_phase phase,
                              uint64_t seed, moka_err *err)
{
    memset(h, 0, sizeof *h);
    moka_ctx_init(&h->ctx);
    h->ctx.seed = seed;
    harness_priv *p = calloc(1, sizeof *p);
    if (!p) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    h->priv = p;
    MOKA_TRY(moka_pt_parse(layer_cfg, (int64_t)strlen(layer_cfg), "<harness>",
                           &caffe__layer_parameter__descriptor, &p->doc, err));
    const moka_pt_node *cfg = moka_pt_root(p->doc);
    MOKA_TRY(moka_layer_create(cfg, &h->ctx, phase, 0, &h->layer, err));
    return MOKA_OK;
}

moka_status moka_harness_add_bottom(moka_harness *h, int ndim, const int64_t *shape,
                                    const float *data, bool needs_grad, moka_err *err)
{
    if (h->num_bottom >= MOKA_HARNESS_MAX || h->num_bottom >= h->layer->num_bottom)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "harness: more bottoms than the config names");
    harness_priv *p = h->priv;
    moka_tensor *t = calloc(1, sizeof *t);
    if (!t) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    h->bottom[h->num_bottom] = t;
    MOKA_TRY(moka_tensor_set_shape(t, ndim, shape, err));
    const int64_t n = moka_tensor_count(t);
    t->data = falloc(n);
    t->grad = falloc(n);
    p->saved_bottom[h->num_bottom] = falloc(n);
    if (!t->data || !t->grad || !p->saved_bottom[h->num_bottom])
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    moka_rng r;
    moka_rng_seed(&r, h->ctx.seed, 1000 + (uint64_t)h->num_bottom);
    for (int64_t i = 0; i < n; i++) t->data[i] = data ? data[i] : moka_rng_uniform(&r, -1.0f, 1.0f);
    memcpy(p->saved_bottom[h->num_bottom], t->data, (size_t)n * sizeof(float));
    h->bottom_needs_grad[h->num_bottom] = needs_grad;
    h->num_bottom++;
    return MOKA_OK;
}

static void restore_bottoms(moka_harness *h)
{
    harness_priv *p = h->priv;
    for (int i = 0; i < h->num_bottom; i++)
        memcpy(h->bottom[i]->data, p->saved_bottom[i],
               (size_t)moka_tensor_count(h->bottom[i]) * sizeof(float));
}

moka_status moka_harness_setup(moka_harness *h, moka_err *err)
{
    harness_priv *p = h->priv;
    moka_layer *l = h->layer;
    if (h->num_bottom != l->num_bottom)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "harness: config names %d bottoms, %d added",
                         l->num_bottom, h->num_bottom);
    for (int i = 0; i < l->num_bottom; i++) {
        l->bottom[i] = h->bottom[i];
        l->propagate_down[i] = h->bottom_needs_grad[i];
    }
    /* Tops: a top named like bottom 0 is in place (shares data, separate gradient). */
    h->num_top = l->num_top;
    for (int i = 0; i < l->num_top; i++) {
        moka_tensor *t = calloc(1, sizeof *t);
        if (!t) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        h->top[i] = t;
        l->top[i] = t;
        if (l->num_bottom > 0 &&
            strcmp(moka_pt_str_at(l->cfg, "top", i), moka_pt_str_at(l->cfg, "bottom", 0)) == 0) {
            if (!l->ops->in_place_ok)
                return moka_layer_errf(l, err, MOKA_ERR_CONFIG, "cannot run in place");
            l->in_place = true;
        }
        l->loss_weight[i] = (i == 0 && l->ops->is_loss) ? 1.0f : 0.0f;
        if (i < moka_pt_count(l->cfg, "loss_weight"))
            l->loss_weight[i] = (float)moka_pt_float_at(l->cfg, "loss_weight", i);
    }
    MOKA_TRY(l->ops->setup(l, err));
    h->num_weight = l->num_weight;
    moka_rng fill_rng;
    moka_rng_seed(&fill_rng, h->ctx.seed, 77);
    for (int i = 0; i < l->num_weight; i++) {
        moka_tensor *w = l->weight[i];
        const int64_t n = moka_tensor_count(w);
        w->data = falloc(n);
        w->grad = l->weight_info[i].fill.learnable ? falloc(n) : NULL;
        if (!w->data) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        const moka_fill *f = &l->weight_info[i].fill;
        if (f->filler) {
            MOKA_TRY(moka_filler_fill(f->filler, w, &fill_rng, err));
        } else {
            for (int64_t j = 0; j < n; j++) w->data[j] = f->value;
        }
        if (i < MOKA_HARNESS_MAX) h->weight[i] = w;
    }
    MOKA_TRY(l->ops->reshape(l, err));
    for (int i = 0; i < l->num_top; i++) {
        moka_tensor *t = l->top[i];
        const int64_t n = moka_tensor_count(t);
        t->data = l->in_place && i == 0 ? l->bottom[0]->data : falloc(n);
        t->grad = falloc(n);
        if (!t->data || !t->grad) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    }
    p->layer_rng = l->rng;
    p->set_up = true;
    return MOKA_OK;
}

moka_status moka_harness_forward(moka_harness *h, moka_err *err)
{
    harness_priv *p = h->priv;
    restore_bottoms(h);
    h->layer->rng = p->layer_rng; /* the same random draws (dropout) on every forward */
    return h->layer->ops->forward_cpu(h->layer, err);
}

static void zero_grads(moka_harness *h)
{
    moka_layer *l = h->layer;
    for (int i = 0; i < h->num_bottom; i++)
        memset(h->bottom[i]->grad, 0, (size_t)moka_tensor_count(h->bottom[i]) * sizeof(float));
    for (int i = 0; i < l->num_weight; i++)
        if (l->weight[i]->grad)
            memset(l->weight[i]->grad, 0, (size_t)moka_tensor_count(l->weight[i]) * sizeof(float));
}

moka_status moka_harness_backward(moka_harness *h, const float *const *dy, moka_err *err)
{
    moka_layer *l = h->layer;
    zero_grads(h);
    for (int i = 0; i < l->num_top; i++)
        memcpy(l->top[i]->grad, dy[i], (size_t)moka_tensor_count(l->top[i]) * sizeof(float));
    if (!l->ops->backward_cpu)
        return moka_layer_errf(l, err, MOKA_ERR_INVALID_ARG, "has no backward");
    return l->ops->backward_cpu(l, err);
}

void moka_harness_deinit(moka_harness *h)
{
    harness_priv *p = h->priv;
    moka_layer *l = h->layer;
    if (l) {
        /* Weight memory was allocated by the harness; the tensors themselves by the layer. */
        for (int i = 0; i < l->num_weight; i++) {
            free(l->weight[i]->data);
            free(l->weight[i]->grad);
        }
        for (int i = 0; i < h->num_top; i++) {
            if (!h->top[i]) continue;
            if (!(l->in_place && i == 0)) free(h->top[i]->data);
            free(h->top[i]->grad);
            free(h->top[i]);
        }
        moka_layer_free(l);
    }
    for (int i = 0; i < h->num_bottom; i++) {
        free(h->bottom[i]->data);
        free(h->bottom[i]->grad);
        free(h->bottom[i]);
        if (p) free(p->saved_bottom[i]);
    }
    if (p) {
        moka_pt_doc_free(p->doc);
        free(p);
    }
    memset(h, 0, sizeof *h);
}

/* L = sum_t sum(dy_t * top_t), in double. Runs a forward from the saved inputs. */
static double objective(moka_harness *h, float *const *dy, int top_index, int *failed)
{
    moka_err err = {0};
    if (moka_harness_forward(h, &err) != MOKA_OK) {
        fprintf(stderr, "gradcheck: forward failed: %s\n", err.msg);
        *failed = 1;
        return 0;
    }
    double L = 0;
    for (int t = 0; t < h->num_top; t++) {
        if (top_index >= 0 && t != top_index) continue;
        const moka_tensor *y = h->layer->top[t];
        for (int64_t i = 0; i < moka_tensor_count(y); i++) L += (double)dy[t][i] * y->data[i];
    }
    return L;
}

typedef struct check_state {
    int mismatches, reported;
    int64_t checked, skipped; /* points compared, and points skipped as kinks */
} check_state;

/* Perturbs x[i] (a saved bottom, restored into the layer before every forward, or a weight). */
static void check_point(moka_harness *h, float *x, int64_t i, double analytic, float *const *dy,
                        const moka_gradcheck_opts *o, const char *what, int which, check_state *cs)
{
    int failed = 0;
    const float x0 = x[i];
    const double step = o->step;
    x[i] = (float)(x0 + step);
    const double lp = objective(h, dy, o->top_index, &failed);
    x[i] = (float)(x0 - step);
    const double lm = objective(h, dy, o->top_index, &failed);
    x[i] = x0;
    const double l0 = objective(h, dy, o->top_index, &failed);
    if (failed) {
        cs->mismatches++;
        return;
    }
    const double numeric = (lp - lm) / (2 * step);
    const double scale = fmax(fmax(fabs(analytic), fabs(numeric)), 1.0);
    cs->checked++;
    if (fabs(analytic - numeric) <= o->rel_tol * scale) return;
    /* A mismatch at a kink inside [x - step, x + step] (ReLU at 0, max ties) says nothing about
     * the analytic gradient: there the one-sided slopes disagree. Such points are skipped. */
    const double right = (lp - l0) / step, left = (l0 - lm) / step;
    const double kink_tol = o->kink_tol > 0 ? o->kink_tol : 10 * o->rel_tol;
    if (fabs(right - left) > kink_tol * fmax(fmax(fabs(right), fabs(left)), 1.0)) {
        cs->skipped++;
        return;
    }
    cs->mismatches++;
    if (cs->reported++ < 10)
        fprintf(stderr, "gradcheck: %s %d element %lld: analytic %.7g numeric %.7g\n", what, which,
                (long long)i, analytic, numeric);
}

int moka_gradcheck(moka_harness *h, moka_gradcheck_opts opts)
{
    harness_priv *p = h->priv;
    moka_layer *l = h->layer;
    moka_err err = {0};
    check_state cs = {0, 0, 0, 0};
    if (!p->set_up || !l->ops->backward_cpu) {
        fprintf(stderr, "gradcheck: layer not set up or without backward\n");
        return 1;
    }
    float *dy[MOKA_HARNESS_MAX] = {0};
    moka_rng r;
    moka_rng_seed(&r, opts.seed ? opts.seed : 4242, 99);
    for (int t = 0; t < l->num_top; t++) {
        const int64_t n = moka_tensor_count(l->top[t]);
        dy[t] = falloc(n);
        const bool use = opts.top_index < 0 || opts.top_index == t;
        for (int64_t i = 0; i < n; i++) dy[t][i] = use ? moka_rng_uniform(&r, -1.0f, 1.0f) : 0.0f;
        if (use && l->ops->is_loss && t == 0) dy[t][0] = 1.0f;
    }
    int failed = 0;
    (void)objective(h, dy, opts.top_index, &failed);
    if (failed || moka_harness_backward(h, (const float *const *)dy, &err) != MOKA_OK) {
        fprintf(stderr, "gradcheck: %s\n", err.msg);
        cs.mismatches++;
        goto done;
    }
    /* Keep the analytic gradients: the finite-difference forwards may overwrite buffers. */
    for (int b = 0; b < h->num_bottom; b++) {
        if (!h->bottom_needs_grad[b]) continue;
        const int64_t n = moka_tensor_count(h->bottom[b]);
        float *g = falloc(n);
        memcpy(g, h->bottom[b]->grad, (size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            check_point(h, p->saved_bottom[b], i, g[i], dy, &opts, "bottom", b, &cs);
        free(g);
    }
    for (int w = 0; w < l->num_weight; w++) {
        if (!l->weight[w]->grad) continue;
        const int64_t n = moka_tensor_count(l->weight[w]);
        float *g = falloc(n);
        memcpy(g, l->weight[w]->grad, (size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            check_point(h, l->weight[w]->data, i, g[i], dy, &opts, "weight", w, &cs);
        free(g);
    }
    /* A forward that is not a pure function of its inputs (stale state, uncleared output) makes
     * every point look like a kink; skipping most points would hide that, so it is a failure. */
    if (cs.checked > 0 && cs.skipped * 2 > cs.checked) {
        fprintf(stderr, "gradcheck: %lld of %lld points skipped as kinks: the forward is not a "
                "smooth function of its inputs\n", (long long)cs.skipped, (long long)cs.checked);
        cs.mismatches++;
    }
done:
    for (int t = 0; t < l->num_top; t++) free(dy[t]);
    return cs.mismatches;
}

/* ---- fixtures ---- */

static bool read_exact(FILE *f, void *buf, size_t n) { return fread(buf, 1, n, f) == n; }

moka_status moka_fixture_load(moka_fixture *fx, const char *name, moka_err *err)
{
    memset(fx, 0, sizeof *fx);
    char path[1024];
    const char *dir = getenv("MOKA_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s.bin", dir ? dir : MOKA_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    if (!f) return moka_errf(err, MOKA_ERR_IO, "cannot open fixture '%s'", path);
    char magic[8];
    uint32_t count, vlen;
    moka_status st = MOKA_ERR_IO;
    if (!read_exact(f, magic, 8) || memcmp(magic, "MOKAFIX1", 8) != 0 ||
        !read_exact(f, &count, 4) || !read_exact(f, &vlen, 4) || count > 4096 || vlen > 256)
        goto bad;
    char ver[257];
    if (!read_exact(f, ver, vlen)) goto bad;
    fx->names = calloc(count ? count : 1, sizeof *fx->names);
    fx->tensors = calloc(count ? count : 1, sizeof *fx->tensors);
    if (!fx->names || !fx->tensors) goto bad;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t nlen, ndim;
        if (!read_exact(f, &nlen, 4) || nlen > 255) goto bad;
        fx->names[i] = calloc(nlen + 1, 1);
        fx->count = (int)i + 1;
        if (!fx->names[i] || !read_exact(f, fx->names[i], nlen)) goto bad;
        if (!read_exact(f, &ndim, 4) || ndim > MOKA_MAX_NDIM) goto bad;
        moka_tensor *t = &fx->tensors[i];
        t->ndim = (int)ndim;
        if (ndim && !read_exact(f, t->shape, ndim * sizeof(int64_t))) goto bad;
        const int64_t n = moka_tensor_count(t);
        if (n < 0 || n > (1 << 26)) goto bad;
        t->data = falloc(n);
        if (!t->data || !read_exact(f, t->data, (size_t)n * sizeof(float))) goto bad;
    }
    fclose(f);
    return MOKA_OK;
bad:
    fclose(f);
    moka_fixture_deinit(fx);
    return moka_errf(err, st, "fixture '%s' is truncated or malformed", path);
}

const moka_tensor *moka_fixture_get(const moka_fixture *fx, const char *name)
{
    for (int i = 0; i < fx->count; i++)
        if (strcmp(fx->names[i], name) == 0) return &fx->tensors[i];
    fprintf(stderr, "fixture has no tensor '%s'\n", name);
    return NULL;
}

void moka_fixture_deinit(moka_fixture *fx)
{
    for (int i = 0; i < fx->count; i++) {
        free(fx->names[i]);
        free(fx->tensors[i].data);
    }
    free(fx->names);
    free(fx->tensors);
    memset(fx, 0, sizeof *fx);
}

const moka_tensor *moka_fixture_find(const moka_fixture *fx, const char *name)
{
    for (int i = 0; i < fx->count; i++)
        if (strcmp(fx->names[i], name) == 0) return &fx->tensors[i];
    return NULL;
}

/* |a[i] - k * b[i]| <= tol * max(1, |k * b[i]|) for all i. */
static int close_scaled(const float *a, const float *b, int64_t n, float k, double tol)
{
    for (int64_t i = 0; i < n; i++) {
        const double want = (double)k * b[i];
        if (!(fabs(a[i] - want) <= tol * fmax(1.0, fabs(want)))) {
            fprintf(stderr, "element %lld: %.9g vs %.9g\n", (long long)i, a[i], want);
            return 0;
        }
    }
    return 1;
}

int moka_harness_check_fixture(const char *cfg, moka_phase phase, const char *name, double tol)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    CHECK_OK(moka_fixture_load(&fx, name, &err));
    CHECK_OK(moka_harness_init(&h, cfg, phase, 5, &err));
    static const char *const bottoms[] = {"x", "x1"}, *const dbottoms[] = {"dx", "dx1"};
    static const char *const weights[] = {"w0", "w1", "w2"}, *const dweights[] = {"dw0", "dw1",
                                                                                   "dw2"};
    static const char *const new_weights[] = {"w0_new", "w1_new", "w2_new"};
    for (int b = 0; b < 2; b++) {
        const moka_tensor *x = moka_fixture_find(&fx, bottoms[b]);
        if (x) CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    }
    CHECK_OK(moka_harness_setup(&h, &err));
    for (int w = 0; w < h.num_weight && w < 3; w++) {
        const moka_tensor *v = moka_fixture_find(&fx, weights[w]);
        CHECK(v);
        CHECK_EQ(moka_tensor_count(h.weight[w]), moka_tensor_count(v));
        memcpy(h.weight[w]->data, v->data, (size_t)moka_tensor_count(v) * sizeof(float));
    }
    const moka_tensor *y = moka_fixture_find(&fx, "y"), *dy = moka_fixture_find(&fx, "dy");
    CHECK(y && dy);
    CHECK_EQ(h.top[0]->ndim, y->ndim);
    CHECK_EQ(moka_tensor_count(h.top[0]), moka_tensor_count(y));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, y->data, moka_tensor_count(y), tol);
    for (int w = 0; w < h.num_weight && w < 3; w++) {
        const moka_tensor *v = moka_fixture_find(&fx, new_weights[w]);
        if (v) CHECK_CLOSE_N(h.weight[w]->data, v->data, moka_tensor_count(v), tol);
    }
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy->data}, &err));
    for (int pass = 1; pass <= 2; pass++) {
        for (int b = 0; b < h.num_bottom; b++) {
            const moka_tensor *d = moka_fixture_find(&fx, dbottoms[b]);
            CHECK(d);
            CHECK(close_scaled(h.bottom[b]->grad, d->data, moka_tensor_count(d), (float)pass,
                               tol));
        }
        for (int w = 0; w < h.num_weight && w < 3; w++) {
            const moka_tensor *d = moka_fixture_find(&fx, dweights[w]);
            if (!h.weight[w]->grad) continue;
            CHECK(d);
            CHECK(close_scaled(h.weight[w]->grad, d->data, moka_tensor_count(d), (float)pass,
                               tol));
        }
        /* Backward adds: running it again must double every gradient. */
        if (pass == 1) CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    }
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

int moka_harness_check_gradients(const char *cfg, moka_phase phase, int ndim0,
                                 const int64_t *shape0, int ndim1, const int64_t *shape1)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, cfg, phase, 9, &err));
    CHECK_OK(moka_harness_add_bottom(&h, ndim0, shape0, NULL, true, &err));
    if (shape1) CHECK_OK(moka_harness_add_bottom(&h, ndim1, shape1, NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3}), 0);
    moka_harness_deinit(&h);
    return 0;
}

static int same_shape(const moka_tensor *a, const moka_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

int moka_harness_check_io_fixture(const char *cfg, const char *name, double tol, const char *top1)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    CHECK_OK(moka_fixture_load(&fx, name, &err));
    const moka_tensor *x = moka_fixture_find(&fx, "x"), *y = moka_fixture_find(&fx, "y");
    const moka_tensor *dy = moka_fixture_find(&fx, "dy"), *dx = moka_fixture_find(&fx, "dx");
    const moka_tensor *w = moka_fixture_find(&fx, "w"), *b = moka_fixture_find(&fx, "b");
    const moka_tensor *dw = moka_fixture_find(&fx, "dw"), *db = moka_fixture_find(&fx, "db");
    CHECK(x && y && dy && dx);
    CHECK(!w || dw);
    CHECK(!b || (w && db));
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 5, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.num_weight, (w ? 1 : 0) + (b ? 1 : 0));
    if (w) {
        CHECK(same_shape(h.weight[0], w));
        memcpy(h.weight[0]->data, w->data, (size_t)moka_tensor_count(w) * sizeof(float));
    }
    if (b) {
        CHECK(same_shape(h.weight[1], b));
        memcpy(h.weight[1]->data, b->data, (size_t)moka_tensor_count(b) * sizeof(float));
    }
    CHECK(same_shape(h.top[0], y));
    /* Two forwards: the second must give the same top (forward writes, never adds). */
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, y->data, moka_tensor_count(y), tol);
    CHECK(h.num_top <= 2);
    if (h.num_top > 1) {
        const moka_tensor *t1 = top1 ? moka_fixture_find(&fx, top1) : NULL;
        CHECK(t1);
        CHECK(same_shape(h.top[1], t1));
        CHECK_CLOSE_N(h.top[1]->data, t1->data, moka_tensor_count(t1), 0);
    }
    /* dy on the first top only; a second top gets a zero gradient. */
    float *zero = calloc((size_t)(h.num_top > 1 ? moka_tensor_count(h.top[1]) : 1), sizeof *zero);
    CHECK(zero);
    const moka_status st = moka_harness_backward(&h, (const float *const[]){dy->data, zero}, &err);
    free(zero);
    CHECK_OK(st);
    CHECK_CLOSE_N(h.bottom[0]->grad, dx->data, moka_tensor_count(dx), tol);
    if (w) CHECK_CLOSE_N(h.weight[0]->grad, dw->data, moka_tensor_count(dw), tol);
    if (b) CHECK_CLOSE_N(h.weight[1]->grad, db->data, moka_tensor_count(db), tol);
    /* Backward adds: a second pass without zeroing doubles every gradient. */
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    for (int64_t i = 0; i < moka_tensor_count(dx); i++)
        CHECK_NEAR(h.bottom[0]->grad[i], 2 * dx->data[i], 2 * tol);
    if (w)
        for (int64_t i = 0; i < moka_tensor_count(dw); i++)
            CHECK_NEAR(h.weight[0]->grad[i], 2 * dw->data[i], 2 * tol);
    if (b)
        for (int64_t i = 0; i < moka_tensor_count(db); i++)
            CHECK_NEAR(h.weight[1]->grad[i], 2 * db->data[i], 2 * tol);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

int moka_harness_expect_setup_error(const char *cfg, int ndim, const int64_t *shape,
                                    moka_status want, const char *layer, const char *text)
{
    moka_err err = {0};
    moka_harness h;
    moka_status st = moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err);
    if (st == MOKA_OK) st = moka_harness_add_bottom(&h, ndim, shape, NULL, true, &err);
    if (st == MOKA_OK) st = moka_harness_setup(&h, &err);
    moka_harness_deinit(&h);
    if (st != want)
        TEST_FAIL_("%s: got %s, want %s (%s)", cfg, moka_status_name(st), moka_status_name(want),
                   err.msg);
    char who[128];
    snprintf(who, sizeof who, "layer '%s'", layer);
    CHECK_CONTAINS(err.msg, who);
    CHECK_CONTAINS(err.msg, text);
    return 0;
}
