/* tests/layers/test_prelu.c -- PReLU against F.prelu (tests/ref/gen_prelu.py), out of place and
 * in place, finite differences of x and the slopes, the default filler, and shape errors. */
#include "harness.h"
#include "test.h"

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

#define PRELU(param) "name: 'p' type: 'PReLU' bottom: 'x' top: 'y' " param
#define PRELU_IN_PLACE(param) "name: 'p' type: 'PReLU' bottom: 'x' top: 'x' " param

static int matches_pytorch(void)
{
    CHECK(!check_fixture(PRELU(""), MOKA_TRAIN, "prelu_channels", 1e-6));
    CHECK(!check_fixture(PRELU("prelu_param { channel_shared: true }"), MOKA_TRAIN,
                         "prelu_shared", 1e-6));
    CHECK(!check_fixture(PRELU(""), MOKA_TRAIN, "prelu_2d", 1e-6));
    return 0;
}

static int matches_pytorch_in_place(void)
{
    CHECK(!check_fixture(PRELU_IN_PLACE(""), MOKA_TRAIN, "prelu_channels", 1e-6));
    CHECK(!check_fixture(PRELU_IN_PLACE("prelu_param { channel_shared: true }"), MOKA_TRAIN,
                         "prelu_shared", 1e-6));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!check_gradients(PRELU("prelu_param { filler { type: 'uniform' min: -0.5 max: 0.5 } }"),
                           MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!check_gradients(PRELU("prelu_param { channel_shared: true }"), MOKA_TRAIN,
                           MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!check_gradients(PRELU_IN_PLACE(""), MOKA_TRAIN, MOKA_SHAPE(5, 4), 0, NULL));
    return 0;
}

/* Caffe starts the slopes at 0.25 without a filler; one per channel, or one in all. */
static int default_slopes_are_a_quarter(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, PRELU(""), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4, 3), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.num_weight, 1);
    CHECK_EQ(h.weight[0]->ndim, 1);
    CHECK_EQ(h.weight[0]->shape[0], 4);
    for (int c = 0; c < 4; c++) CHECK(h.weight[0]->data[c] == 0.25f);
    CHECK_OK(moka_harness_forward(&h, &err));
    for (int i = 0; i < 24; i++) {
        const float x = h.bottom[0]->data[i];
        CHECK(h.top[0]->data[i] == (x > 0.0f ? x : 0.25f * x));
    }
    moka_harness_deinit(&h);
    CHECK_OK(moka_harness_init(&h, PRELU("prelu_param { channel_shared: true }"), MOKA_TRAIN, 1,
                               &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4, 3), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_tensor_count(h.weight[0]), 1);
    moka_harness_deinit(&h);
    return 0;
}

/* Large enough for the threaded path: the slope gradient must not depend on the split. */
static int large_input_slope_gradient(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, PRELU("prelu_param { channel_shared: true }"), MOKA_TRAIN, 3,
                               &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(8, 16, 400), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const int64_t n = moka_tensor_count(h.top[0]);
    float *dy = malloc((size_t)n * sizeof *dy);
    CHECK(dy);
    double want = 0.0;
    for (int64_t i = 0; i < n; i++) {
        dy[i] = (float)((i % 13) - 6) / 7.0f;
        const float x = h.bottom[0]->data[i];
        if (x <= 0.0f) want += (double)dy[i] * x;
    }
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    CHECK_NEAR(h.weight[0]->grad[0], want, 1e-5);
    free(dy);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_bad_shapes(void)
{
    moka_err err = {0};
    moka_harness h;
    /* One axis has no channels. */
    CHECK_OK(moka_harness_init(&h, "name: 'p1' type: 'PReLU' bottom: 'x' top: 'y'", MOKA_TRAIN,
                               1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(6), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'p1' (PReLU): bottom must have at least 2 axes");
    moka_harness_deinit(&h);
    /* The slopes are sized at setup; a later bottom with other channels does not fit them. */
    CHECK_OK(moka_harness_init(&h, "name: 'p2' type: 'PReLU' bottom: 'x' top: 'y'", MOKA_TRAIN,
                               1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    h.bottom[0]->shape[1] = 4;
    h.bottom[0]->shape[2] = 3;
    CHECK_STATUS(h.layer->ops->reshape(h.layer, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'p2' (PReLU): bottom has 4 channels but the slope has 3");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_pytorch_in_place, gradients_match_finite_differences,
               default_slopes_are_a_quarter, large_input_slope_gradient, rejects_bad_shapes)
