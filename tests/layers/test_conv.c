/* tests/layers/test_conv.c -- Convolution against torch conv2d fixtures (tests/ref/gen_conv.py)
 * at several thread counts, against a direct evaluation of the formula on an input large enough
 * to take the one-image-per-GEMM path, finite differences, shared weights over two bottoms,
 * determinism, and the configuration and shape errors. */
#include <omp.h>

#include "harness.h"
#include "test.h"

#define CONV(body)                                                                                 \
    "name: 'c' type: 'Convolution' bottom: 'x' top: 'y' convolution_param { " body " }"

static int matches_pytorch(void)
{
    static const struct {
        const char *name, *cfg;
    } cases[] = {
        {"conv_basic", CONV("num_output: 4 kernel_size: 3 pad: 1")},
        {"conv_group_dilation",
         CONV("num_output: 6 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 2 "
              "dilation: 2 dilation: 1 group: 2")},
        /* The same geometry through the repeated (h, w) forms. */
        {"conv_group_dilation",
         CONV("num_output: 6 kernel_size: 3 kernel_size: 2 stride: 2 stride: 1 pad: 1 pad: 2 "
              "dilation: 2 dilation: 1 group: 2 engine: CAFFE")},
        {"conv_pointwise", CONV("num_output: 3 kernel_size: 1 bias_term: false")},
        {"conv_batch9_stride2", CONV("num_output: 3 kernel_size: 3 stride: 2")},
    };
    /* One, two and three threads split the batch differently (and chunk it differently). */
    for (int t = 1; t <= 3; t++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            omp_set_num_threads(t);
            if (moka_harness_check_io_fixture(cases[i].cfg, cases[i].name, 1e-5, NULL)) {
                fprintf(stderr, "case %s with %d threads\n", cases[i].name, t);
                return 1;
            }
        }
    omp_set_num_threads(2);
    return 0;
}

/* y, dx, dw by the formula, in double, for x (N, C, H, W), w (M, C/G, kh, kw), no bias. */
typedef struct geo {
    int64_t n, c, h, w, m, g, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
} geo;

static void direct(const geo *q, const float *x, const float *w, const float *dy, double *y,
                   double *dx, double *dw)
{
    const int64_t cg = q->c / q->g, mg = q->m / q->g;
    for (int64_t n = 0; n < q->n; n++)
        for (int64_t m = 0; m < q->m; m++)
            for (int64_t oh = 0; oh < q->oh; oh++)
                for (int64_t ow = 0; ow < q->ow; ow++) {
                    const int64_t yi = ((n * q->m + m) * q->oh + oh) * q->ow + ow;
                    double acc = 0;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t i = 0; i < q->kh; i++)
                            for (int64_t j = 0; j < q->kw; j++) {
                                const int64_t ih = oh * q->sh - q->ph + i * q->dh;
                                const int64_t iw = ow * q->sw - q->pw + j * q->dw;
                                if (ih < 0 || ih >= q->h || iw < 0 || iw >= q->w) continue;
                                const int64_t ci = (m / mg) * cg + c;
                                const int64_t xi = ((n * q->c + ci) * q->h + ih) * q->w + iw;
                                const int64_t wi = ((m * cg + c) * q->kh + i) * q->kw + j;
                                acc += (double)w[wi] * x[xi];
                                dx[xi] += (double)w[wi] * dy[yi];
                                dw[wi] += (double)x[xi] * dy[yi];
                            }
                    y[yi] = acc;
                }
}

static int close_d(const float *a, const double *b, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= tol * fmax(1.0, fabs(b[i])))) {
            fprintf(stderr, "element %lld: %.9g vs %.9g\n", (long long)i, a[i], b[i]);
            return 1;
        }
    return 0;
}

/* 16 x 40 x 40 inputs unroll to ~0.9 MB per image, so each GEMM takes one image. */
static int matches_formula_on_large_input(void)
{
    moka_err err = {0};
    moka_harness h;
    const geo q = {.n = 5, .c = 16, .h = 40, .w = 40, .m = 8, .g = 2, .kh = 3, .kw = 3,
                   .sh = 1, .sw = 1, .ph = 1, .pw = 1, .dh = 1, .dw = 1, .oh = 40, .ow = 40};
    omp_set_num_threads(2);
    CHECK_OK(moka_harness_init(&h,
                               CONV("num_output: 8 kernel_size: 3 pad: 1 group: 2 "
                                    "bias_term: false weight_filler { type: 'gaussian' std: 0.3 }"),
                               MOKA_TRAIN, 11, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(q.n, q.c, q.h, q.w), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    const int64_t ny = q.n * q.m * q.oh * q.ow, nx = q.n * q.c * q.h * q.w;
    const int64_t nw = moka_tensor_count(h.weight[0]);
    CHECK_EQ(moka_tensor_count(h.top[0]), ny);
    float *dy = malloc((size_t)ny * sizeof *dy);
    double *y = calloc((size_t)ny, sizeof *y), *dx = calloc((size_t)nx, sizeof *dx);
    double *dw = calloc((size_t)nw, sizeof *dw);
    CHECK(dy && y && dx && dw);
    for (int64_t i = 0; i < ny; i++) dy[i] = (float)((i * 7919 % 201) - 100) / 100.0f;
    direct(&q, h.bottom[0]->data, h.weight[0]->data, dy, y, dx, dw);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(!close_d(h.top[0]->data, y, ny, 1e-4));
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    CHECK(!close_d(h.bottom[0]->grad, dx, nx, 1e-4));
    /* dW sums 8000 products per element; float accumulation needs a looser bound. */
    CHECK(!close_d(h.weight[0]->grad, dw, nw, 1e-3));
    free(dy);
    free(y);
    free(dx);
    free(dw);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    static const char *const cfgs[] = {
        CONV("num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2 "
             "weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'gaussian' }"),
        CONV("num_output: 3 kernel_h: 2 kernel_w: 3 dilation: 2 pad_h: 2 pad_w: 0 "
             "weight_filler { type: 'uniform' min: -1 max: 1 } bias_filler { type: 'uniform' }"),
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        moka_err err = {0};
        moka_harness h;
        CHECK_OK(moka_harness_init(&h, cfgs[i], MOKA_TRAIN, 3 + i, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 4, 5, 6), NULL, true, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                          .top_index = -1}),
                 0);
        moka_harness_deinit(&h);
    }
    return 0;
}

/* Two bottoms share the weights: each top is the convolution of its bottom, and the weight
 * gradient is the sum over both. */
static int two_bottoms_share_weights(void)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    CHECK_OK(moka_fixture_load(&fx, "conv_basic", &err));
    const moka_tensor *x = moka_fixture_find(&fx, "x"), *w = moka_fixture_find(&fx, "w"),
                      *b = moka_fixture_find(&fx, "b");
    const moka_tensor *y = moka_fixture_find(&fx, "y"), *dy = moka_fixture_find(&fx, "dy"),
                      *dw = moka_fixture_find(&fx, "dw");
    const moka_tensor *db = moka_fixture_find(&fx, "db");
    CHECK_OK(moka_harness_init(&h,
                               "name: 'c' type: 'Convolution' bottom: 'x' bottom: 'z' top: 'y' "
                               "top: 'u' convolution_param { num_output: 4 kernel_size: 3 pad: 1 }",
                               MOKA_TRAIN, 5, &err));
    const int64_t nx = moka_tensor_count(x), ny = moka_tensor_count(y);
    float *zero = calloc((size_t)nx, sizeof *zero), *dy0 = calloc((size_t)ny, sizeof *dy0);
    CHECK(zero && dy0);
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, zero, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    memcpy(h.weight[0]->data, w->data, (size_t)moka_tensor_count(w) * sizeof(float));
    memcpy(h.weight[1]->data, b->data, (size_t)moka_tensor_count(b) * sizeof(float));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[1]->data, y->data, ny, 1e-5);
    /* Zero input: every output is its channel's bias. */
    for (int64_t i = 0; i < ny; i++) CHECK_NEAR(h.top[0]->data[i], b->data[i / 42 % 4], 1e-6);
    /* dy only on the second top: dW and db are the fixture's; dy on both: the first top's input
     * is zero, so dW is unchanged and db doubles. */
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy0, dy->data}, &err));
    CHECK_CLOSE_N(h.weight[0]->grad, dw->data, moka_tensor_count(dw), 1e-5);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy->data, dy->data}, &err));
    CHECK_CLOSE_N(h.weight[0]->grad, dw->data, moka_tensor_count(dw), 1e-5);
    for (int i = 0; i < 4; i++) CHECK_NEAR(h.weight[1]->grad[i], 2 * db->data[i], 1e-5);
    free(zero);
    free(dy0);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

/* Same thread count, same bits: the per-thread weight-gradient partial sums are added in a fixed
 * order. */
static int deterministic_for_a_thread_count(void)
{
    moka_err err = {0};
    moka_harness h;
    omp_set_num_threads(2);
    CHECK_OK(moka_harness_init(&h, CONV("num_output: 5 kernel_size: 3 "
                                        "weight_filler { type: 'xavier' }"),
                               MOKA_TRAIN, 9, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(16, 3, 12, 12), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    const int64_t ny = moka_tensor_count(h.top[0]), nw = moka_tensor_count(h.weight[0]);
    float *dy = malloc((size_t)ny * sizeof *dy), *first = malloc((size_t)nw * sizeof *first);
    CHECK(dy && first);
    for (int64_t i = 0; i < ny; i++) dy[i] = (float)((i * 31 % 17) - 8) / 8.0f;
    for (int run = 0; run < 3; run++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
        if (run == 0) memcpy(first, h.weight[0]->grad, (size_t)nw * sizeof(float));
        else CHECK(memcmp(first, h.weight[0]->grad, (size_t)nw * sizeof(float)) == 0);
    }
    free(dy);
    free(first);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_bad_configs_and_shapes(void)
{
    const int64_t x4[] = {1, 4, 5, 5}, x3[] = {1, 3, 5, 5}, x5[] = {1, 1, 3, 3, 3};
    const int64_t small[] = {1, 4, 3, 3}, vec[] = {2, 4, 7};
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 5"), 4, small,
                                        MOKA_ERR_SHAPE, "c", "larger than the padded input"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 3 dilation: 2"), 4, small,
                                        MOKA_ERR_SHAPE, "c", "kernel (extent 5 x 5)"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 0 kernel_size: 3"), 4, x4,
                                        MOKA_ERR_CONFIG, "c", "num_output must be positive"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("kernel_size: 3"), 4, x4, MOKA_ERR_CONFIG, "c",
                                        "num_output"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 4 kernel_size: 3 group: 2"), 4, x3,
                                        MOKA_ERR_CONFIG, "c",
                                        "group 2 does not divide the 3 input channels"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 3 kernel_size: 3 group: 2"), 4, x4,
                                        MOKA_ERR_CONFIG, "c",
                                        "group 2 does not divide num_output 3"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 4 kernel_size: 3 group: 0"), 4, x4,
                                        MOKA_ERR_CONFIG, "c", "group must be positive"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2"), 4, x4, MOKA_ERR_CONFIG, "c",
                                        "needs kernel_size"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 0"), 4, x4,
                                        MOKA_ERR_CONFIG, "c", "kernel size must be nonzero"))
        return 1;
    if (moka_harness_expect_setup_error(
            CONV("num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3"), 4, x4, MOKA_ERR_CONFIG,
            "c", "either kernel_size or kernel_h/kernel_w"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_h: 3"), 4, x4, MOKA_ERR_CONFIG,
                                        "c", "kernel size must be nonzero, got 3 x 0"))
        return 1;
    if (moka_harness_expect_setup_error(
            CONV("num_output: 2 kernel_size: 1 kernel_size: 2 kernel_size: 3"), 4, x4,
            MOKA_ERR_CONFIG, "c", "kernel_size must be given once or once per spatial axis"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 3 stride: 0"), 4, x4,
                                        MOKA_ERR_CONFIG, "c", "stride must be nonzero"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 3 dilation: 0"), 4, x4,
                                        MOKA_ERR_CONFIG, "c", "dilation must be nonzero"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 3 axis: 2"), 4, x4,
                                        MOKA_ERR_UNSUPPORTED, "c", "axis 2 is not supported"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 1"), 5, x5,
                                        MOKA_ERR_UNSUPPORTED, "c", "only 2-D convolution"))
        return 1;
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 1"), 3, vec,
                                        MOKA_ERR_UNSUPPORTED, "c", "only 2-D convolution"))
        return 1;
    /* The position of the offending field is in the message. */
    if (moka_harness_expect_setup_error(CONV("num_output: 2 kernel_size: 3 stride: 0"), 4, x4,
                                        MOKA_ERR_CONFIG, "c", "<harness>:1:"))
        return 1;
    /* axis -3 of a 4-D input is the channel axis. */
    {
        moka_err err = {0};
        moka_harness h;
        CHECK_OK(moka_harness_init(&h, CONV("num_output: 2 kernel_size: 3 axis: -3"), MOKA_TRAIN,
                                   1, &err));
        CHECK_OK(moka_harness_add_bottom(&h, 4, x4, NULL, true, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        moka_harness_deinit(&h);
    }
    return 0;
}

static int rejects_changed_or_mismatched_bottoms(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'c' type: 'Convolution' bottom: 'x' bottom: 'z' top: 'y' "
                               "top: 'u' convolution_param { num_output: 2 kernel_size: 3 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 3, 5, 5), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 3, 5, 6), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "all bottoms must have one shape");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h, CONV("num_output: 2 kernel_size: 3"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 5, 5), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    /* A later reshape may change N, H, W but not the channels the weights were made for. */
    h.bottom[0]->shape[0] = 1;
    h.bottom[0]->shape[2] = 4;
    CHECK_OK(h.layer->ops->reshape(h.layer, &err));
    CHECK_EQ(h.top[0]->shape[0], 1);
    CHECK_EQ(h.top[0]->shape[2], 2);
    h.bottom[0]->shape[1] = 4;
    CHECK_STATUS(h.layer->ops->reshape(h.layer, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "input has 4 channels, the weights were made for 3");
    h.bottom[0]->shape[0] = 2;
    h.bottom[0]->shape[1] = 3;
    h.bottom[0]->shape[2] = 5;
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'c' type: 'Convolution' bottom: 'x' top: 'y' top: 'u' "
                               "convolution_param { num_output: 2 kernel_size: 3 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 3, 5, 5), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "as many tops as bottoms");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_formula_on_large_input, gradients_match_finite_differences,
               two_bottoms_share_weights, deterministic_for_a_thread_count,
               rejects_bad_configs_and_shapes, rejects_changed_or_mismatched_bottoms)
