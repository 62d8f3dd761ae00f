/* tests/layers/test_deconv.c -- Deconvolution against torch conv_transpose2d fixtures
 * (tests/ref/gen_deconv.py) at several thread counts, as the adjoint of Convolution on random
 * data, finite differences, and the configuration and shape errors. */
#include <omp.h>

#include "harness.h"
#include "test.h"

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

static int rejects_bad_configs_and_shapes(void)
{
    const int64_t x4[] = {1, 4, 5, 5}, one[] = {1, 2, 1, 1}, x5[] = {1, 1, 3, 3, 3};
    /* 1 x 1 input, kernel 1, pad 1: s (1 - 1) + 1 - 2 = -1 rows. */
    if (moka_harness_expect_setup_error(DECONV("num_output: 2 kernel_size: 1 pad: 1"), 4, one,
                                        MOKA_ERR_SHAPE, "c", "output would be -1 x -1"))
        return 1;
    if (moka_harness_expect_setup_error(DECONV("num_output: 0 kernel_size: 3"), 4, x4,
                                        MOKA_ERR_CONFIG, "c", "num_output must be positive"))
        return 1;
    if (moka_harness_expect_setup_error(DECONV("num_output: 2 kernel_size: 3 group: 3"), 4, x4,
                                        MOKA_ERR_CONFIG, "c",
                                        "group 3 does not divide the 4 input channels"))
        return 1;
    if (moka_harness_expect_setup_error(DECONV("num_output: 3 kernel_size: 3 group: 2"), 4, x4,
                                        MOKA_ERR_CONFIG, "c",
                                        "group 2 does not divide num_output 3"))
        return 1;
    if (moka_harness_expect_setup_error(
            DECONV("num_output: 2 kernel_size: 3 stride: 1 stride_h: 1 stride_w: 1"), 4, x4,
            MOKA_ERR_CONFIG, "c", "either stride or stride_h/stride_w"))
        return 1;
    if (moka_harness_expect_setup_error(DECONV("num_output: 2 kernel_size: 1"), 5, x5,
                                        MOKA_ERR_UNSUPPORTED, "c", "only 2-D convolution"))
        return 1;
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, is_the_adjoint_of_convolution, gradients_match_finite_differences,
               rejects_bad_configs_and_shapes)
