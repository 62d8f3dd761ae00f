/* tests/layers/test_pooling.c -- Pooling against fixtures of Caffe's rules
 * (tests/ref/gen_pooling.py, cross-checked there with torch max_pool2d / avg_pool2d), the mask
 * top, hand-computed cases (a window that Caffe's ceil rounding leaves outside the image, AVE's
 * padded pool size, ties), finite differences, and the configuration and shape errors. */
#include <float.h>

#include "harness.h"
#include "test.h"

#define POOL(body) "name: 'p' type: 'Pooling' bottom: 'x' top: 'y' pooling_param { " body " }"
#define POOL2(body)                                                                                \
    "name: 'p' type: 'Pooling' bottom: 'x' top: 'y' top: 'm' pooling_param { " body " }"

static int matches_caffe_rules(void)
{
    static const struct {
        const char *name, *cfg;
    } cases[] = {
        {"pooling_max_k3s2", POOL("pool: MAX kernel_size: 3 stride: 2")},
        {"pooling_max_pad", POOL("kernel_size: 3 stride: 2 pad: 1")},
        {"pooling_max_pad", POOL2("pool: MAX kernel_size: 3 stride: 2 pad: 1 engine: CAFFE")},
        {"pooling_ave_pad", POOL("pool: AVE kernel_size: 3 stride: 2 pad: 1")},
        {"pooling_ave_edge", POOL("pool: AVE kernel_size: 3 stride: 2")},
        {"pooling_max_rect",
         POOL2("pool: MAX kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0")},
        {"pooling_ave_rect",
         POOL("pool: AVE kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0")},
        {"pooling_max_global", POOL2("pool: MAX global_pooling: true")},
        {"pooling_ave_global", POOL("pool: AVE global_pooling: true")},
        {"pooling_ave_floor", POOL("pool: AVE kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR")},
        {"pooling_max_clip", POOL2("kernel_size: 2 stride: 2 pad: 1")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (moka_harness_check_io_fixture(cases[i].cfg, cases[i].name, 1e-6, "mask")) {
            fprintf(stderr, "case %s: %s\n", cases[i].name, cases[i].cfg);
            return 1;
        }
    return 0;
}

/* H = W = 5, kernel 1, stride 3, no pad: Caffe's ceil rounding gives 3 x 3 outputs, and the
 * last row and column of windows start at 6, outside the image. */
static int keeps_caffes_empty_last_window(void)
{
    float x[25];
    for (int i = 0; i < 25; i++) x[i] = (float)i - 12.0f;
    static const char *const cfgs[] = {POOL2("pool: MAX kernel_size: 1 stride: 3"),
                                       POOL("pool: AVE kernel_size: 1 stride: 3")};
    for (int c = 0; c < 2; c++) {
        moka_err err = {0};
        moka_harness h;
        CHECK_OK(moka_harness_init(&h, cfgs[c], MOKA_TRAIN, 1, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 1, 5, 5), x, true, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_EQ(h.top[0]->shape[2], 3);
        CHECK_EQ(h.top[0]->shape[3], 3);
        CHECK_OK(moka_harness_forward(&h, &err));
        const float *y = h.top[0]->data;
        /* Windows (0, 0), (0, 3), (3, 0), (3, 3) hold one pixel each. */
        CHECK_NEAR(y[0], x[0], 0);
        CHECK_NEAR(y[1], x[3], 0);
        CHECK_NEAR(y[3], x[15], 0);
        CHECK_NEAR(y[4], x[18], 0);
        const float empty = c == 0 ? -FLT_MAX : 0.0f;
        for (int i = 0; i < 9; i++)
            if (i % 3 == 2 || i / 3 == 2) CHECK_NEAR(y[i], empty, 0);
        if (c == 0) {
            CHECK_NEAR(h.top[1]->data[4], 18, 0);
            CHECK_NEAR(h.top[1]->data[8], -1, 0);
        }
        float dy[9], dm[9] = {0};
        for (int i = 0; i < 9; i++) dy[i] = (float)(i + 1);
        CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy, dm}, &err));
        /* Only the four pixels read get a gradient; the empty windows add nothing anywhere. */
        for (int i = 0; i < 25; i++) {
            const float want = i == 0 ? 1 : i == 3 ? 2 : i == 15 ? 4 : i == 18 ? 5 : 0;
            CHECK_NEAR(h.bottom[0]->grad[i], want, 0);
        }
        moka_harness_deinit(&h);
    }
    return 0;
}

/* AVE with padding divides by the window clipped to the padded bounds: 2 x 2 input, kernel 3,
 * pad 1, stride 1 -> every window covers the whole input and counts 9 cells; a 3 x 3 kernel
 * at stride 2 on 4 x 4 with pad 1 has a last window clipped at H + pad = 5 (2 rows). */
static int ave_counts_padding_inside_the_padded_bounds(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[4] = {1, 2, 3, 4};
    CHECK_OK(moka_harness_init(&h, POOL("pool: AVE kernel_size: 3 pad: 1"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 1, 2, 2), x, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->shape[2], 2);
    CHECK_OK(moka_harness_forward(&h, &err));
    for (int i = 0; i < 4; i++) CHECK_NEAR(h.top[0]->data[i], 10.0 / 9.0, 1e-6);
    moka_harness_deinit(&h);

    float x16[16];
    for (int i = 0; i < 16; i++) x16[i] = 1.0f;
    CHECK_OK(moka_harness_init(&h, POOL("pool: AVE kernel_size: 3 stride: 2 pad: 1"), MOKA_TRAIN,
                               1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 1, 4, 4), x16, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    /* ceil((4 + 2 - 3) / 2) + 1 = 3; the last window starts at 3 < 4 + 1, so it stays. */
    CHECK_EQ(h.top[0]->shape[2], 3);
    CHECK_OK(moka_harness_forward(&h, &err));
    const float *y = h.top[0]->data;
    CHECK_NEAR(y[0], 4.0 / 9.0, 1e-6); /* rows -1..1 x cols -1..1: 4 real cells of 9 */
    CHECK_NEAR(y[1], 6.0 / 9.0, 1e-6); /* rows -1..1 x cols 1..3: 6 of 9 */
    CHECK_NEAR(y[2], 2.0 / 6.0, 1e-6); /* cols 3..4 (clipped at W + pad = 5): 2 of 3 x 2 */
    CHECK_NEAR(y[8], 1.0 / 4.0, 1e-6); /* rows 3..4 x cols 3..4: 1 of 2 x 2 */
    moka_harness_deinit(&h);
    return 0;
}

/* Ties go to the first maximum in row-major order (Caffe compares with >): on a constant input
 * every window's mask is its top-left pixel inside the image, which alone gets the gradient. */
static int ties_go_to_the_first_maximum(void)
{
    moka_err err = {0};
    moka_harness h;
    float x[36], dy[16], dm[16] = {0};
    for (int i = 0; i < 36; i++) x[i] = 0.5f;
    for (int i = 0; i < 16; i++) dy[i] = 1.0f;
    CHECK_OK(moka_harness_init(&h, POOL2("pool: MAX kernel_size: 3 stride: 2 pad: 1"), MOKA_TRAIN,
                               1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 1, 6, 6), x, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    /* ceil((6 + 2 - 3) / 2) + 1 = 4 windows per axis, starting at -1, 1, 3, 5. */
    CHECK_EQ(h.top[0]->shape[2], 4);
    CHECK_OK(moka_harness_forward(&h, &err));
    static const int first[4] = {0, 1, 3, 5};
    for (int i = 0; i < 16; i++) {
        CHECK_NEAR(h.top[0]->data[i], 0.5, 0);
        CHECK_NEAR(h.top[1]->data[i], first[i / 4] * 6 + first[i % 4], 0);
    }
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy, dm}, &err));
    for (int i = 0; i < 36; i++) {
        const int r = i / 6, c = i % 6;
        const bool hit = r != 2 && r != 4 && c != 2 && c != 4;
        CHECK_NEAR(h.bottom[0]->grad[i], hit ? 1 : 0, 0);
    }
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    static const char *const cfgs[] = {
        POOL("pool: MAX kernel_size: 3 stride: 2 pad: 1"),
        POOL("pool: AVE kernel_size: 3 stride: 2 pad: 1"),
        POOL("pool: AVE kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2"),
        POOL("pool: MAX global_pooling: true"),
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        moka_err err = {0};
        moka_harness h;
        CHECK_OK(moka_harness_init(&h, cfgs[i], MOKA_TRAIN, 7 + i, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 7, 6), NULL, true, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-3, .rel_tol = 1e-3,
                                                          .top_index = -1}),
                 0);
        moka_harness_deinit(&h);
    }
    return 0;
}

/* The fast kernels (engine FAST, the default) give bit for bit what the generic reference loops
 * give (engine REFERENCE), outputs, mask and input gradient, over odd shapes: batch 1, kernels
 * 2x2, 3x3 and 3x2, strides 1-3, padding, ceil and floor rounding, planes whose interior is
 * empty, rows of several 16-output blocks plus a partial one, and ties (inputs quantised to a
 * few levels). */
static int fast_kernels_equal_the_reference(void)
{
    static const char *const cfgs[] = {
        POOL2("pool: MAX kernel_size: 2 stride: 2"),
        POOL2("pool: MAX kernel_size: 3 stride: 2"),
        POOL2("pool: MAX kernel_size: 3 stride: 2 pad: 1"),
        POOL2("pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 3"),
        POOL2("pool: MAX kernel_size: 2 stride: 1 round_mode: FLOOR"),
        POOL("pool: AVE kernel_size: 3 stride: 2"),
        POOL("pool: AVE kernel_size: 2 stride: 2 pad: 1"),
        POOL("pool: AVE kernel_h: 2 kernel_w: 3 stride_h: 3 stride_w: 1"),
        POOL("pool: AVE kernel_size: 3 stride: 3 round_mode: FLOOR"),
    };
    static const int64_t shapes[][4] = {{1, 1, 2, 3}, {1, 3, 7, 9}, {2, 2, 12, 12}, {3, 1, 5, 13},
                                        {1, 2, 16, 16}, {1, 2, 9, 70}, {2, 1, 6, 33}};
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            moka_err err = {0};
            moka_harness h[2];
            const int64_t n = shapes[k][0] * shapes[k][1] * shapes[k][2] * shapes[k][3];
            float *x = malloc((size_t)n * sizeof *x);
            CHECK(x);
            for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 7919 + c * 31) % 5) - 2.0f;
            bool skip = false;
            for (int e = 0; e < 2; e++) {
                CHECK_OK(moka_harness_init(&h[e], cfgs[c], MOKA_TRAIN, 3, &err));
                h[e].ctx.engine = e ? MOKA_ENGINE_REFERENCE : MOKA_ENGINE_FAST;
                CHECK_OK(moka_harness_add_bottom(&h[e], 4, shapes[k], x, true, &err));
                if (moka_harness_setup(&h[e], &err) != MOKA_OK) {
                    skip = true; /* the kernel does not fit this input: nothing to compare */
                    break;
                }
                CHECK_OK(moka_harness_forward(&h[e], &err));
            }
            if (!skip) {
                for (int t = 0; t < h[0].num_top; t++) {
                    const int64_t m = moka_tensor_count(h[0].top[t]);
                    if (memcmp(h[0].top[t]->data, h[1].top[t]->data, (size_t)m * 4) != 0)
                        TEST_FAIL_("config %zu shape %zu: top %d differs", c, k, t);
                }
                const int64_t m = moka_tensor_count(h[0].top[0]);
                float *dy = malloc((size_t)m * sizeof *dy);
                CHECK(dy);
                for (int64_t i = 0; i < m; i++) dy[i] = (float)(i % 7) - 3.0f;
                for (int e = 0; e < 2; e++)
                    CHECK_OK(moka_harness_backward(&h[e], (const float *const[]){dy, dy}, &err));
                if (memcmp(h[0].bottom[0]->grad, h[1].bottom[0]->grad, (size_t)n * 4) != 0)
                    TEST_FAIL_("config %zu shape %zu: input gradient differs", c, k);
                free(dy);
            }
            for (int e = 0; e < 2; e++) moka_harness_deinit(&h[e]);
            free(x);
        }
    return 0;
}

static int rejects_bad_configs_and_shapes(void)
{
    const int64_t x[] = {1, 2, 5, 5}, x3[] = {2, 3, 5};
    const struct {
        const char *cfg;
        moka_status want;
        const char *text;
    } cases[] = {
        {POOL("pool: STOCHASTIC kernel_size: 2"), MOKA_ERR_UNSUPPORTED, "STOCHASTIC"},
        {POOL("kernel_size: 7"), MOKA_ERR_SHAPE, "larger than the padded input"},
        {POOL("kernel_size: 8 pad: 1"), MOKA_ERR_SHAPE, "kernel 8 x 8 is larger"},
        {POOL("pool: MAX"), MOKA_ERR_CONFIG, "needs kernel_size"},
        {POOL("kernel_size: 0"), MOKA_ERR_CONFIG, "kernel size must be nonzero"},
        {POOL("kernel_size: 2 kernel_h: 2 kernel_w: 2"), MOKA_ERR_CONFIG,
         "either kernel_size or both kernel_h and kernel_w"},
        {POOL("kernel_h: 2"), MOKA_ERR_CONFIG, "both kernel_h and kernel_w"},
        {POOL("kernel_size: 2 pad: 1 pad_h: 1 pad_w: 1"), MOKA_ERR_CONFIG,
         "either pad or both pad_h and pad_w"},
        {POOL("kernel_size: 2 stride_w: 2"), MOKA_ERR_CONFIG, "both stride_h and stride_w"},
        {POOL("kernel_size: 2 stride: 0"), MOKA_ERR_CONFIG, "stride must be nonzero"},
        {POOL("kernel_size: 2 pad: 2"), MOKA_ERR_CONFIG, "must be smaller than the kernel"},
        {POOL("global_pooling: true kernel_size: 2"), MOKA_ERR_CONFIG, "global_pooling takes"},
        {POOL("global_pooling: true stride: 2"), MOKA_ERR_CONFIG, "only pad 0 and stride 1"},
        {POOL2("pool: AVE kernel_size: 2"), MOKA_ERR_CONFIG, "only MAX pooling has a second"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (moka_harness_expect_setup_error(cases[i].cfg, 4, x, cases[i].want, "p", cases[i].text))
            return 1;
    if (moka_harness_expect_setup_error(POOL("kernel_size: 2"), 3, x3, MOKA_ERR_SHAPE, "p",
                                        "input must be 4-D"))
        return 1;
    return 0;
}

MOKA_TEST_MAIN(fast_kernels_equal_the_reference, matches_caffe_rules, keeps_caffes_empty_last_window,
               ave_counts_padding_inside_the_padded_bounds, ties_go_to_the_first_maximum,
               gradients_match_finite_differences,
               rejects_bad_configs_and_shapes)
