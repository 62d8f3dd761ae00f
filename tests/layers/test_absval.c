/* tests/layers/test_absval.c -- AbsVal against torch.abs (tests/ref/gen_absval.py), finite
 * differences, and the errors for two tops and for running in place (which Caffe refuses). */
#include "harness.h"
#include "test.h"

extern const moka_layer_ops moka_layer_absval;

/* The fixture tensor `key`, or NULL when the fixture has none (no message). */
static const moka_tensor *fx_opt(const moka_fixture *fx, const char *key)
{
    for (int i = 0; i < fx->count; i++)
        if (strcmp(fx->names[i], key) == 0) return &fx->tensors[i];
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

/* Runs the layer `cfg` on the fixture `name`: bottoms x (and x1), weights w0.. loaded when the
 * fixture has them, forward compared with y (and the weights with w0_new.. if present), backward
 * with dy compared with dx, dx1, dw0... A second backward must add the same gradients again. */
static int check_fixture(const char *cfg, moka_phase phase, const char *name, double tol)
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
        const moka_tensor *x = fx_opt(&fx, bottoms[b]);
        if (x) CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    }
    CHECK_OK(moka_harness_setup(&h, &err));
    for (int w = 0; w < h.num_weight && w < 3; w++) {
        const moka_tensor *v = fx_opt(&fx, weights[w]);
        CHECK(v);
        CHECK_EQ(moka_tensor_count(h.weight[w]), moka_tensor_count(v));
        memcpy(h.weight[w]->data, v->data, (size_t)moka_tensor_count(v) * sizeof(float));
    }
    const moka_tensor *y = fx_opt(&fx, "y"), *dy = fx_opt(&fx, "dy");
    CHECK(y && dy);
    CHECK_EQ(h.top[0]->ndim, y->ndim);
    CHECK_EQ(moka_tensor_count(h.top[0]), moka_tensor_count(y));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, y->data, moka_tensor_count(y), tol);
    for (int w = 0; w < h.num_weight && w < 3; w++) {
        const moka_tensor *v = fx_opt(&fx, new_weights[w]);
        if (v) CHECK_CLOSE_N(h.weight[w]->data, v->data, moka_tensor_count(v), tol);
    }
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy->data}, &err));
    for (int pass = 1; pass <= 2; pass++) {
        for (int b = 0; b < h.num_bottom; b++) {
            const moka_tensor *d = fx_opt(&fx, dbottoms[b]);
            CHECK(d);
            CHECK(close_scaled(h.bottom[b]->grad, d->data, moka_tensor_count(d), (float)pass,
                               tol));
        }
        for (int w = 0; w < h.num_weight && w < 3; w++) {
            const moka_tensor *d = fx_opt(&fx, dweights[w]);
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

/* Finite differences of every bottom and learnable weight of `cfg` on random U(-1, 1) bottoms
 * of the given shapes (shape1 NULL: one bottom). */
static int check_gradients(const char *cfg, moka_phase phase, int ndim0, const int64_t *shape0,
                           int ndim1, const int64_t *shape1)
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

#define ABS "name: 'a' type: 'AbsVal' bottom: 'x' top: 'y' "
#define ABS_IN_PLACE "name: 'a' type: 'AbsVal' bottom: 'x' top: 'x' "

static int matches_pytorch(void)
{
    CHECK(!check_fixture(ABS, MOKA_TRAIN, "absval_basic", 0.0)); /* |x| and sign: exact */
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!check_gradients(ABS, MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!check_gradients(ABS, MOKA_TRAIN, MOKA_SHAPE(3, 11), 0, NULL));
    return 0;
}

static int rejects_two_tops(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h, "name: 'a1' type: 'AbsVal' bottom: 'x' top: 'y' top: 'z'",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'a1' (AbsVal) takes 1 to 1 tops, got 2");
    moka_harness_deinit(&h);
    return 0;
}

/* y = |x| has lost the sign backward needs, so AbsVal, as in Caffe, does not run in place. */
static int refuses_to_run_in_place(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK(!moka_layer_absval.in_place_ok);
    CHECK_OK(moka_harness_init(&h, ABS_IN_PLACE, MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'a' (AbsVal): cannot run in place");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, gradients_match_finite_differences, rejects_two_tops,
               refuses_to_run_in_place)
