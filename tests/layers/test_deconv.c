/* tests/layers/test_deconv.c -- Deconvolution against torch conv_transpose2d fixtures
 * (tests/ref/gen_deconv.py) at several thread counts, as the adjoint of Convolution on random
 * data, finite differences, and the configuration and shape errors. */
#include <omp.h>

#include "harness.h"
#include "test.h"

/* The fixture tensor `key`, or NULL when the fixture has none. */
static const moka_tensor *fx_opt(const moka_fixture *fx, const char *key)
{
    for (int i = 0; i < fx->count; i++)
        if (strcmp(fx->names[i], key) == 0) return &fx->tensors[i];
    return NULL;
}

static int same_shape(const moka_tensor *a, const moka_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* Runs cfg on fixture `name` (x, w, b -> y; dy -> dx, dw, db) with `threads` OpenMP threads,
 * then runs backward once more without zeroing to check that gradients are added. */
static int check_fixture(const char *cfg, const char *name, int threads, double tol)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    omp_set_num_threads(threads);
    CHECK_OK(moka_fixture_load(&fx, name, &err));
    const moka_tensor *x = fx_opt(&fx, "x"), *w = fx_opt(&fx, "w"), *b = fx_opt(&fx, "b");
    const moka_tensor *y = fx_opt(&fx, "y"), *dy = fx_opt(&fx, "dy"), *dx = fx_opt(&fx, "dx");
    const moka_tensor *dw = fx_opt(&fx, "dw"), *db = fx_opt(&fx, "db");
    CHECK(x && w && y && dy && dx && dw);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 5, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.num_weight, b ? 2 : 1);
    CHECK(same_shape(h.weight[0], w));
    memcpy(h.weight[0]->data, w->data, (size_t)moka_tensor_count(w) * sizeof(float));
    if (b) {
        CHECK(same_shape(h.weight[1], b));
        memcpy(h.weight[1]->data, b->data, (size_t)moka_tensor_count(b) * sizeof(float));
    }
    CHECK(same_shape(h.top[0], y));
    /* Two forwards: the second must give the same top (forward writes, never adds). */
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, y->data, moka_tensor_count(y), tol);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy->data}, &err));
    CHECK_CLOSE_N(h.bottom[0]->grad, dx->data, moka_tensor_count(dx), tol);
    CHECK_CLOSE_N(h.weight[0]->grad, dw->data, moka_tensor_count(dw), tol);
    if (b) CHECK_CLOSE_N(h.weight[1]->grad, db->data, moka_tensor_count(db), tol);

    /* Backward adds: a second pass without zeroing doubles every gradient. */
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    for (int64_t i = 0; i < moka_tensor_count(dx); i++)
        CHECK_NEAR(h.bottom[0]->grad[i], 2 * dx->data[i], 2 * tol);
    for (int64_t i = 0; i < moka_tensor_count(dw); i++)
        CHECK_NEAR(h.weight[0]->grad[i], 2 * dw->data[i], 2 * tol);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

#define DECONV(body)                                                                               \
    "name: 'c' type: 'Deconvolution' bottom: 'x' top: 'y' convolution_param { " body " }"

static int matches_pytorch(void)
{
    static const struct {
        const char *name, *cfg;
    } cases[] = {
        {"deconv_basic", DECONV("num_output: 4 kernel_size: 3 stride: 2 pad: 1")},
        {"deconv_group_dilation",
         DECONV("num_output: 6 kernel_h: 2 kernel_w: 3 stride: 1 stride: 2 pad_h: 0 pad_w: 1 "
                "dilation: 2 dilation: 1 group: 2 bias_term: false")},
        {"deconv_batch7", DECONV("num_output: 3 kernel_size: 4 stride: 2 pad: 1")},
        {"deconv_stride1", DECONV("num_output: 2 kernel_h: 3 kernel_w: 2 pad: 1 pad: 0")},
    };
    for (int t = 1; t <= 3; t++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            if (check_fixture(cases[i].cfg, cases[i].name, t, 1e-5)) {
                fprintf(stderr, "case %s with %d threads\n", cases[i].name, t);
                return 1;
            }
    omp_set_num_threads(2);
    return 0;
}

/* <deconv(x; W), v> == <x, conv(v; W)> for the same W and geometry: Deconvolution is the adjoint
 * of Convolution (no bias). */
static int is_the_adjoint_of_convolution(void)
{
    moka_err err = {0};
    moka_harness d, c;
    const char *geom = "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad: 1 dilation: 1 "
                       "dilation: 2 bias_term: false weight_filler { type: 'gaussian' std: 0.5 }";
    char cfg[512], cfg2[512];
    snprintf(cfg, sizeof cfg,
             "name: 'c' type: 'Deconvolution' bottom: 'x' top: 'y' convolution_param { "
             "num_output: 5 %s }",
             geom);
    CHECK_OK(moka_harness_init(&d, cfg, MOKA_TRAIN, 21, &err));
    CHECK_OK(moka_harness_add_bottom(&d, MOKA_SHAPE(6, 2, 5, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&d, &err));
    CHECK_OK(moka_harness_forward(&d, &err));
    const moka_tensor *y = d.top[0];
    CHECK_EQ(y->shape[1], 5);
    /* Convolution from the deconvolution's output space back to its input space. Its weight
     * (M, C, kh, kw) = (2, 5, 3, 2) is the deconvolution's (C_in, M, kh, kw): the same array. */
    snprintf(cfg2, sizeof cfg2,
             "name: 'c' type: 'Convolution' bottom: 'x' top: 'y' convolution_param { "
             "num_output: 2 %s }",
             geom);
    CHECK_OK(moka_harness_init(&c, cfg2, MOKA_TRAIN, 22, &err));
    CHECK_OK(moka_harness_add_bottom(&c, y->ndim, y->shape, NULL, true, &err));
    CHECK_OK(moka_harness_setup(&c, &err));
    CHECK_EQ(moka_tensor_count(c.weight[0]), moka_tensor_count(d.weight[0]));
    memcpy(c.weight[0]->data, d.weight[0]->data,
           (size_t)moka_tensor_count(d.weight[0]) * sizeof(float));
    CHECK_OK(moka_harness_forward(&c, &err));
    CHECK_EQ(moka_tensor_count(c.top[0]), moka_tensor_count(d.bottom[0]));
    double lhs = 0, rhs = 0;
    for (int64_t i = 0; i < moka_tensor_count(y); i++)
        lhs += (double)y->data[i] * c.bottom[0]->data[i];
    for (int64_t i = 0; i < moka_tensor_count(c.top[0]); i++)
        rhs += (double)d.bottom[0]->data[i] * c.top[0]->data[i];
    CHECK_NEAR(lhs, rhs, 1e-4);
    moka_harness_deinit(&c);
    moka_harness_deinit(&d);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    static const char *const cfgs[] = {
        DECONV("num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2 "
               "weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'gaussian' }"),
        DECONV("num_output: 3 kernel_h: 2 kernel_w: 3 dilation: 2 stride_h: 1 stride_w: 2 "
               "pad_h: 1 pad_w: 0 weight_filler { type: 'uniform' min: -1 max: 1 } "
               "bias_filler { type: 'uniform' }"),
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        moka_err err = {0};
        moka_harness h;
        CHECK_OK(moka_harness_init(&h, cfgs[i], MOKA_TRAIN, 3 + i, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 4, 3, 4), NULL, true, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                          .top_index = -1}),
                 0);
        moka_harness_deinit(&h);
    }
    return 0;
}

/* Sets up cfg on one bottom of `shape` and expects status `want` with `text` in the message. */
static int expect_error(const char *cfg, int ndim, const int64_t *shape, moka_status want,
                        const char *text)
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
    CHECK_CONTAINS(err.msg, "layer 'c'");
    CHECK_CONTAINS(err.msg, text);
    return 0;
}

static int rejects_bad_configs_and_shapes(void)
{
    const int64_t x4[] = {1, 4, 5, 5}, one[] = {1, 2, 1, 1}, x5[] = {1, 1, 3, 3, 3};
    /* 1 x 1 input, kernel 1, pad 1: s (1 - 1) + 1 - 2 = -1 rows. */
    if (expect_error(DECONV("num_output: 2 kernel_size: 1 pad: 1"), 4, one, MOKA_ERR_SHAPE,
                     "output would be -1 x -1"))
        return 1;
    if (expect_error(DECONV("num_output: 0 kernel_size: 3"), 4, x4, MOKA_ERR_CONFIG,
                     "num_output must be positive"))
        return 1;
    if (expect_error(DECONV("num_output: 2 kernel_size: 3 group: 3"), 4, x4, MOKA_ERR_CONFIG,
                     "group 3 does not divide the 4 input channels"))
        return 1;
    if (expect_error(DECONV("num_output: 3 kernel_size: 3 group: 2"), 4, x4, MOKA_ERR_CONFIG,
                     "group 2 does not divide num_output 3"))
        return 1;
    if (expect_error(DECONV("num_output: 2 kernel_size: 3 stride: 1 stride_h: 1 stride_w: 1"), 4,
                     x4, MOKA_ERR_CONFIG, "either stride or stride_h/stride_w"))
        return 1;
    if (expect_error(DECONV("num_output: 2 kernel_size: 1"), 5, x5, MOKA_ERR_UNSUPPORTED,
                     "only 2-D convolution"))
        return 1;
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, is_the_adjoint_of_convolution, gradients_match_finite_differences,
               rejects_bad_configs_and_shapes)
