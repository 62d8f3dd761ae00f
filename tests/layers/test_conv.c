/* tests/layers/test_conv.c -- Convolution against torch conv2d fixtures (tests/ref/gen_conv.py)
 * at several thread counts, against a direct evaluation of the formula on an input large enough
 * to take the one-image-per-GEMM path, finite differences, shared weights over two bottoms,
 * determinism, and the configuration and shape errors. The oneDNN path (fp32 with 16-channel
 * blocks, and bf16) against the formula in double, bf16 against the formula on bf16-rounded
 * inputs, over odd shapes; the direct weight gradient of first layers against the formula. */
#include <omp.h>

#include "backend/cpu/conv_dw.h"
#include "backend/cpu/dnnl_op.h"
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

/* One convolution of geometry q (bias on, weights gaussian) on the fast engine in fp32 or bf16:
 * y, dx, dW and db against the formula in double, the bf16 run against the formula on inputs
 * rounded to bf16 (the products of bf16 numbers are exact in fp32, so only the summation order
 * differs). `need_kernel` "oneDNN" requires that the oneDNN path ran (its kernel name), else
 * under bf16 the layer must say it computes in fp32 and match the unrounded formula (other
 * `need_kernel` strings must appear in the kernel name too); a bottom without
 * gradient (`x_grad` false) is a net's first layer. Then the batch shrinks to 1 image and the
 * first image's output must be unchanged (the op is rebuilt for the new shape). */
static int dnnl_case(const geo *q, bool bf16, bool x_grad, const char *need_kernel)
{
    moka_err err = {0};
    moka_harness h;
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             CONV("num_output: %lld kernel_h: %lld kernel_w: %lld stride_h: %lld stride_w: %lld "
                  "pad_h: %lld pad_w: %lld dilation: %lld dilation: %lld group: %lld "
                  "weight_filler { type: 'gaussian' std: 0.3 } "
                  "bias_filler { type: 'uniform' min: -1 max: 1 }"),
             (long long)q->m, (long long)q->kh, (long long)q->kw, (long long)q->sh,
             (long long)q->sw, (long long)q->ph, (long long)q->pw, (long long)q->dh,
             (long long)q->dw, (long long)q->g);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 17, &err));
    h.ctx.precision = bf16 ? MOKA_PRECISION_BF16 : MOKA_PRECISION_FP32;
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(q->n, q->c, q->h, q->w), NULL, x_grad, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    const int64_t ny = q->n * q->m * q->oh * q->ow, nx = q->n * q->c * q->h * q->w;
    const int64_t nw = moka_tensor_count(h.weight[0]), P = q->oh * q->ow;
    CHECK_EQ(moka_tensor_count(h.top[0]), ny);
    float *dy = calloc((size_t)ny, sizeof *dy), *x = calloc((size_t)nx, sizeof *x);
    float *w = calloc((size_t)nw, sizeof *w), *dyr = calloc((size_t)ny, sizeof *dyr);
    double *y = calloc((size_t)ny, sizeof *y), *dx = calloc((size_t)nx, sizeof *dx);
    double *dw = calloc((size_t)nw, sizeof *dw), *y32 = calloc((size_t)ny, sizeof *y32);
    double *scratch_x = calloc((size_t)nx, sizeof *scratch_x);
    double *scratch_w = calloc((size_t)nw, sizeof *scratch_w);
    CHECK(dy && x && w && dyr && y && dx && dw && y32 && scratch_x && scratch_w);
    for (int64_t i = 0; i < ny; i++) dy[i] = (float)((i * 7919 % 201) - 100) / 100.0f;
    for (int64_t i = 0; i < nx; i++)
        x[i] = bf16 ? moka_test_bf16_round(h.bottom[0]->data[i]) : h.bottom[0]->data[i];
    for (int64_t i = 0; i < nw; i++)
        w[i] = bf16 ? moka_test_bf16_round(h.weight[0]->data[i]) : h.weight[0]->data[i];
    for (int64_t i = 0; i < ny; i++) dyr[i] = bf16 ? moka_test_bf16_round(dy[i]) : dy[i];
    direct(q, x, w, dyr, y, dx, dw);
    /* The unrounded formula, to see that bf16 really rounded. */
    direct(q, h.bottom[0]->data, h.weight[0]->data, dy, y32, scratch_x, scratch_w);
    const float *b = h.weight[1]->data;
    for (int64_t i = 0; i < ny; i++) {
        y[i] += b[i / P % q->m];
        y32[i] += b[i / P % q->m];
    }
    CHECK_OK(moka_harness_forward(&h, &err));
    const char *kernel = h.layer->ops->kernel(h.layer);
    if (need_kernel) CHECK_CONTAINS(kernel, need_kernel);
    if (need_kernel && strcmp(need_kernel, "oneDNN") == 0) {
        if (bf16) CHECK_CONTAINS(kernel, "bf16");
    } else if (bf16) {
        /* A layer left in fp32 under bf16 says so, and computes the unrounded formula. */
        CHECK_CONTAINS(kernel, "fp32");
        double *t;
        t = y, y = y32, y32 = t;
        t = dx, dx = scratch_x, scratch_x = t;
        t = dw, dw = scratch_w, scratch_w = t;
    }
    CHECK(!close_d(h.top[0]->data, y, ny, 1e-4));
    if (bf16 && strstr(kernel, "bf16")) {
        double worst = 0;
        for (int64_t i = 0; i < ny; i++) worst = fmax(worst, fabs(h.top[0]->data[i] - y32[i]));
        CHECK(worst > 1e-3);
    }
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    if (x_grad) CHECK(!close_d(h.bottom[0]->grad, dx, nx, 1e-4));
    CHECK(!close_d(h.weight[0]->grad, dw, nw, 1e-3));
    for (int64_t m = 0; m < q->m; m++) {
        double db = 0; /* the bias gradient stays fp32: sums of the unrounded dy */
        for (int64_t n = 0; n < q->n; n++)
            for (int64_t i = 0; i < P; i++) db += dy[(n * q->m + m) * P + i];
        CHECK_NEAR(h.weight[1]->grad[m], db, 1e-4 * fmax(1.0, fabs(db)));
    }
    /* Backward adds into the gradients: a second pass doubles them. */
    for (int64_t i = 0; i < nx; i++) dx[i] *= 2;
    for (int64_t i = 0; i < nw; i++) dw[i] *= 2;
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    if (x_grad) CHECK(!close_d(h.bottom[0]->grad, dx, nx, 1e-4));
    CHECK(!close_d(h.weight[0]->grad, dw, nw, 1e-3));
    /* A smaller batch: image 0 gives the same output. */
    h.bottom[0]->shape[0] = 1;
    CHECK_OK(h.layer->ops->reshape(h.layer, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(!close_d(h.top[0]->data, y, q->m * P, 1e-4));
    h.bottom[0]->shape[0] = q->n;
    CHECK_OK(h.layer->ops->reshape(h.layer, &err));
    free(dy);
    free(x);
    free(w);
    free(dyr);
    free(y);
    free(dx);
    free(dw);
    free(y32);
    free(scratch_x);
    free(scratch_w);
    moka_harness_deinit(&h);
    return 0;
}

/* Two bottoms through one oneDNN op (16 -> 16 channels, blocked): the op's buffers serve each
 * bottom in turn, and backward-weights reuses the forward's converted x only for the bottom the
 * last forward read. Outputs and every gradient against the reference engine. */
static int dnnl_two_bottoms_match_the_reference(void)
{
    moka_err err = {0};
    moka_harness h[2];
    const int64_t shape[] = {3, 16, 7, 6};
    const int64_t nx = 3 * 16 * 7 * 6;
    float *x = malloc((size_t)nx * sizeof *x), *z = malloc((size_t)nx * sizeof *z);
    float *dy = malloc((size_t)nx * sizeof *dy), *du = malloc((size_t)nx * sizeof *du);
    CHECK(x && z && dy && du);
    for (int64_t i = 0; i < nx; i++) {
        x[i] = (float)((i * 7919 % 401) - 200) / 100.0f;
        z[i] = (float)((i * 104729 % 307) - 150) / 75.0f;
        dy[i] = (float)((i * 31 % 23) - 11) / 11.0f;
        du[i] = (float)((i * 17 % 29) - 14) / 7.0f;
    }
    for (int e = 0; e < 2; e++) {
        CHECK_OK(moka_harness_init(&h[e],
                                   "name: 'c' type: 'Convolution' bottom: 'x' bottom: 'z' top: "
                                   "'y' top: 'u' convolution_param { num_output: 16 kernel_size: "
                                   "3 pad: 1 weight_filler { type: 'gaussian' std: 0.2 } "
                                   "bias_filler { type: 'uniform' min: -1 max: 1 } }",
                                   MOKA_TRAIN, 23, &err));
        h[e].ctx.engine = e ? MOKA_ENGINE_REFERENCE : MOKA_ENGINE_FAST;
        CHECK_OK(moka_harness_add_bottom(&h[e], 4, shape, x, true, &err));
        CHECK_OK(moka_harness_add_bottom(&h[e], 4, shape, z, true, &err));
        CHECK_OK(moka_harness_setup(&h[e], &err));
        CHECK_OK(moka_harness_forward(&h[e], &err));
        CHECK_OK(moka_harness_backward(&h[e], (const float *const[]){dy, du}, &err));
    }
    CHECK_CONTAINS(h[0].layer->ops->kernel(h[0].layer), "oneDNN");
    for (int t = 0; t < 2; t++) {
        CHECK_CLOSE_N(h[0].top[t]->data, h[1].top[t]->data, nx, 1e-4);
        CHECK_CLOSE_N(h[0].bottom[t]->grad, h[1].bottom[t]->grad, nx, 1e-4);
    }
    for (int j = 0; j < 2; j++)
        CHECK_CLOSE_N(h[0].weight[j]->grad, h[1].weight[j]->grad,
                      moka_tensor_count(h[0].weight[j]), 1e-4);
    for (int e = 0; e < 2; e++) moka_harness_deinit(&h[e]);
    free(x);
    free(z);
    free(dy);
    free(du);
    return 0;
}

#define GEO(n_, c_, h_, w_, m_, g_, kh_, kw_, sh_, sw_, ph_, pw_, dh_, dw_)                    \
    (geo)                                                                                    \
    {                                                                                        \
        .n = n_, .c = c_, .h = h_, .w = w_, .m = m_, .g = g_, .kh = kh_, .kw = kw_, .sh = sh_, \
        .sw = sw_, .ph = ph_, .pw = pw_, .dh = dh_, .dw = dw_,                               \
        .oh = (h_ + 2 * ph_ - (dh_ * (kh_ - 1) + 1)) / sh_ + 1,                              \
        .ow = (w_ + 2 * pw_ - (dw_ * (kw_ - 1) + 1)) / sw_ + 1                               \
    }

/* Shapes the fp32 fast engine sends to oneDNN (channels per group in 16-blocks, or 1-4 input
 * channels: blocked layouts; other channel counts: channels-last), and one whose floor-rounded
 * output leaves part of the last window unused. */
static int dnnl_fp32_matches_formula(void)
{
    omp_set_num_threads(2);
    const geo a = GEO(3, 16, 9, 7, 32, 1, 3, 2, 2, 1, 1, 0, 1, 2);
    const geo first = GEO(1, 3, 11, 10, 16, 1, 5, 5, 1, 1, 2, 2, 1, 1);
    const geo grouped = GEO(2, 32, 6, 6, 32, 2, 3, 3, 1, 1, 1, 1, 1, 1);
    const geo floor = GEO(2, 16, 8, 8, 16, 1, 3, 3, 2, 2, 0, 0, 1, 1);
    /* Channels outside 16-blocks: channels-last, with moka's own NCHW <-> NHWC transposes. */
    const geo lenet2 = GEO(3, 20, 12, 12, 50, 1, 5, 5, 1, 1, 0, 0, 1, 1);
    const geo odd = GEO(2, 5, 9, 8, 7, 1, 3, 2, 2, 1, 1, 1, 1, 2);
    CHECK_EQ(dnnl_case(&lenet2, false, true, "oneDNN"), 0);
    CHECK_EQ(dnnl_case(&odd, false, true, "oneDNN"), 0);
    CHECK_EQ(dnnl_case(&a, false, true, "oneDNN"), 0);
    CHECK_EQ(dnnl_case(&first, false, false, "oneDNN"), 0);
    CHECK_EQ(dnnl_case(&grouped, false, true, "oneDNN"), 0);
    CHECK_EQ(dnnl_case(&floor, false, true, NULL), 0);
    omp_set_num_threads(1);
    CHECK_EQ(dnnl_case(&a, false, true, "oneDNN"), 0);
    omp_set_num_threads(2);
    return 0;
}

/* bf16 on every shape with more than 4 input channels per group (it does not need 16-channel
 * blocks): odd channel counts, batch 1, non-square kernels, stride, pad, dilation, groups; a
 * first layer with outputs outside 16-blocks stays fp32. */
static int dnnl_bf16_matches_rounded_formula(void)
{
    if (!moka_dnnl_bf16_supported(NULL)) {
        printf("skipped: no bf16 instructions on this CPU\n");
        return 0;
    }
    omp_set_num_threads(2);
    const geo cases[] = {
        GEO(3, 16, 9, 7, 32, 1, 3, 2, 2, 1, 1, 0, 1, 2),
        GEO(1, 5, 7, 9, 7, 1, 3, 3, 1, 1, 1, 1, 1, 1),
        GEO(2, 20, 12, 12, 50, 1, 5, 5, 1, 1, 0, 0, 1, 1),
        GEO(2, 12, 8, 7, 10, 2, 2, 3, 2, 2, 1, 1, 2, 1),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (dnnl_case(&cases[i], true, true, "oneDNN")) {
            fprintf(stderr, "bf16 case %zu\n", i);
            return 1;
        }
    const geo first = GEO(2, 1, 28, 28, 20, 1, 5, 5, 1, 1, 0, 0, 1, 1);
    CHECK_EQ(dnnl_case(&first, true, false, NULL), 0);
    return 0;
}

/* First layers whose weight and bias gradients the fast engine computes directly
 * (src/backend/cpu/conv_dw.h), against the formula: LeNet's 5 x 5 on 28 x 28 (two 16-lane
 * vectors per output row, the last one 8 lanes, and an odd channel count for the two-channel
 * passes), padding of rows, non-square kernels from 1 to 7 wide, rows of exactly 32 and of 17
 * (one lane in the second vector), several input channels, one and two threads. */
static int direct_dw_matches_formula(void)
{
    const geo cases[] = {
        GEO(3, 1, 28, 28, 5, 1, 5, 5, 1, 1, 0, 0, 1, 1),
        GEO(2, 3, 9, 12, 4, 1, 3, 2, 1, 1, 1, 0, 1, 1),
        GEO(1, 2, 10, 38, 3, 1, 4, 7, 1, 1, 2, 0, 1, 1),
        GEO(5, 1, 5, 17, 1, 1, 5, 1, 1, 1, 0, 0, 1, 1),
    };
    /* Builds without AVX-512 have no direct kernel: the same cases then check the im2col
     * path. */
    const moka_conv_geom lenet = {.channels = 1, .height = 28, .width = 28, .kernel_h = 5,
                                  .kernel_w = 5, .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                                  .dilation_w = 1, .out_h = 24, .out_w = 24};
    const char *want = moka_conv_dw_fits(&lenet, 1) ? "direct dW" : NULL;
    if (!want) printf("no direct kernel in this build: the im2col path instead\n");
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            CHECK_EQ(dnnl_case(&cases[i], false, false, want), 0);
    }
    omp_set_num_threads(2);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_formula_on_large_input, gradients_match_finite_differences,
               two_bottoms_share_weights, dnnl_two_bottoms_match_the_reference,
               deterministic_for_a_thread_count,
               rejects_bad_configs_and_shapes, rejects_changed_or_mismatched_bottoms,
               dnnl_fp32_matches_formula, dnnl_bf16_matches_rounded_formula,
               direct_dw_matches_formula)
