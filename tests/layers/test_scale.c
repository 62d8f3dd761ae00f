/* tests/layers/test_scale.c -- Scale against x * s (+ b) in PyTorch (tests/ref/gen_scale.py):
 * learned scale over one axis, trailing axes and as a scalar, scale as bottom[1], with and
 * without bias, out of place and in place; finite differences of x, s and b; default fillers;
 * shape and configuration errors. */
#include "harness.h"
#include "moka/log.h"
#include "test.h"

#define SCALE(param) "name: 's' type: 'Scale' bottom: 'x' top: 'y' " param
#define SCALE_IN_PLACE(param) "name: 's' type: 'Scale' bottom: 'x' top: 'x' " param
#define SCALE2(param) "name: 's' type: 'Scale' bottom: 'x' bottom: 'x1' top: 'y' " param
#define SCALE2_IN_PLACE(param) "name: 's' type: 'Scale' bottom: 'x' bottom: 'x1' top: 'x' " param

static int matches_pytorch_learned_scale(void)
{
    CHECK(!moka_harness_check_fixture(SCALE("scale_param { bias_term: true }"), MOKA_TRAIN,
                         "scale_axis1_bias", 1e-5));
    CHECK(!moka_harness_check_fixture(SCALE(""), MOKA_TRAIN, "scale_axis1", 1e-5));
    CHECK(!moka_harness_check_fixture(SCALE("scale_param { axis: -2 num_axes: -1 }"), MOKA_TRAIN,
                         "scale_tail", 1e-5));
    CHECK(!moka_harness_check_fixture(SCALE("scale_param { axis: 3 num_axes: 0 bias_term: true }"),
                         MOKA_TRAIN, "scale_scalar", 1e-5));
    return 0;
}

static int matches_pytorch_scale_from_bottom(void)
{
    CHECK(!moka_harness_check_fixture(SCALE2("scale_param { axis: 0 }"), MOKA_TRAIN, "scale_bottom",
                                      1e-5));
    CHECK(!moka_harness_check_fixture(SCALE2("scale_param { bias_term: true }"), MOKA_TRAIN,
                         "scale_bottom_bias", 1e-5));
    return 0;
}

/* In place the layer keeps x: the scale's gradient needs it and y has overwritten it. */
static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(SCALE_IN_PLACE("scale_param { bias_term: true }"), MOKA_TRAIN,
                         "scale_axis1_bias", 1e-5));
    CHECK(!moka_harness_check_fixture(SCALE_IN_PLACE("scale_param { num_axes: 0 bias_term: true }"),
                         MOKA_TRAIN, "scale_scalar", 1e-5));
    CHECK(!moka_harness_check_fixture(SCALE2_IN_PLACE("scale_param { axis: 0 }"), MOKA_TRAIN,
                                      "scale_bottom", 1e-5));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    const char *const filled = "filler { type: 'uniform' min: -1 max: 1 } "
                               "bias_filler { type: 'uniform' min: -1 max: 1 }";
    char cfg[512];
    snprintf(cfg, sizeof cfg, SCALE("scale_param { bias_term: true %s }"), filled);
    CHECK(!moka_harness_check_gradients(cfg, MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(SCALE_IN_PLACE("scale_param { axis: 0 num_axes: 2 "
                                          "filler { type: 'uniform' min: -1 max: 1 } }"),
                           MOKA_TRAIN, MOKA_SHAPE(3, 4, 5), 0, NULL));
    snprintf(cfg, sizeof cfg, SCALE("scale_param { num_axes: 0 bias_term: true %s }"), filled);
    CHECK(!moka_harness_check_gradients(cfg, MOKA_TRAIN, MOKA_SHAPE(4, 6), 0, NULL));
    CHECK(!moka_harness_check_gradients(SCALE2("scale_param { bias_term: true }"), MOKA_TRAIN,
                           MOKA_SHAPE(2, 3, 4), MOKA_SHAPE(3)));
    CHECK(!moka_harness_check_gradients(SCALE2_IN_PLACE("scale_param { axis: 0 }"), MOKA_TRAIN,
                           MOKA_SHAPE(2, 3, 4), MOKA_SHAPE(2, 3)));
    return 0;
}

/* Without fillers: scale 1 and bias 0, so y = x; given fillers are used. */
static int default_fillers_give_identity(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, SCALE("scale_param { bias_term: true }"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.num_weight, 2);
    CHECK_EQ(h.weight[0]->shape[0], 3);
    CHECK_EQ(h.weight[1]->shape[0], 3);
    for (int c = 0; c < 3; c++) CHECK(h.weight[0]->data[c] == 1.0f && h.weight[1]->data[c] == 0.0f);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(memcmp(h.top[0]->data, h.bottom[0]->data, 24 * sizeof(float)) == 0);
    moka_harness_deinit(&h);
    CHECK_OK(moka_harness_init(&h, SCALE("scale_param { filler { value: 3 } bias_term: true "
                                         "bias_filler { value: -2 } }"),
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    for (int c = 0; c < 3; c++)
        CHECK(h.weight[0]->data[c] == 3.0f && h.weight[1]->data[c] == -2.0f);
    moka_harness_deinit(&h);
    return 0;
}

/* Large enough for the threaded paths: the reductions against a plain double sum. */
static int large_input_gradients(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, SCALE("scale_param { bias_term: true filler { value: 0.5 } }"),
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(16, 8, 300), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const int64_t n = moka_tensor_count(h.top[0]);
    float *dy = malloc((size_t)n * sizeof *dy);
    CHECK(dy);
    for (int64_t i = 0; i < n; i++) dy[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    const float *x = h.bottom[0]->data;
    for (int c = 0; c < 8; c++) {
        double ds = 0.0, db = 0.0;
        for (int o = 0; o < 16; o++)
            for (int i = 0; i < 300; i++) {
                const int64_t k = ((int64_t)o * 8 + c) * 300 + i;
                ds += (double)dy[k] * x[k];
                db += dy[k];
            }
        CHECK_NEAR(h.weight[0]->grad[c], ds, 1e-5);
        CHECK_NEAR(h.weight[1]->grad[c], db, 1e-5);
    }
    for (int64_t i = 0; i < n; i++) CHECK(h.bottom[0]->grad[i] == 0.5f * dy[i]);
    free(dy);
    moka_harness_deinit(&h);
    return 0;
}

static char last_warning[512];
static void capture(moka_log_level level, const char *src, const char *msg, void *user)
{
    (void)src;
    (void)user;
    if (level == MOKA_LOG_WARN) snprintf(last_warning, sizeof last_warning, "%s", msg);
}

/* Caffe ignores filler and num_axes when the scale is a bottom; moka says so. */
static int warns_about_fields_unused_with_two_bottoms(void)
{
    moka_err err = {0};
    moka_harness h;
    last_warning[0] = '\0';
    moka_log_set(capture, NULL, MOKA_LOG_WARN);
    CHECK_OK(moka_harness_init(&h, SCALE2("scale_param { filler { value: 2 } }"), MOKA_TRAIN, 1,
                               &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    moka_log_set(NULL, NULL, MOKA_LOG_INFO);
    CHECK_CONTAINS(last_warning, "layer 's' (Scale): filler and num_axes are unused");
    moka_harness_deinit(&h);
    return 0;
}

/* Sets up `cfg` on bottoms of the given shapes and expects `code` with `msg` in the message. */
static int expect_error(const char *cfg, int ndim0, const int64_t *shape0, int ndim1,
                        const int64_t *shape1, moka_status code, const char *msg)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, ndim0, shape0, NULL, true, &err));
    if (shape1) CHECK_OK(moka_harness_add_bottom(&h, ndim1, shape1, NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), code);
    CHECK_CONTAINS(err.msg, msg);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_bad_shapes_and_axes(void)
{
    CHECK(!expect_error(SCALE2(""), MOKA_SHAPE(2, 3, 4, 5), MOKA_SHAPE(3, 5), MOKA_ERR_SHAPE,
                        "layer 's' (Scale): dimension mismatch between bottom[0] shape(2) = 4 "
                        "and scale shape(1) = 5"));
    CHECK(!expect_error(SCALE2(""), MOKA_SHAPE(2, 3), MOKA_SHAPE(3, 4), MOKA_ERR_SHAPE,
                        "a 2-D scale from axis 1 extends past the 2-D bottom"));
    CHECK(!expect_error(SCALE("scale_param { num_axes: 2 }"), MOKA_SHAPE(2, 3), 0, NULL,
                        MOKA_ERR_SHAPE,
                        "layer 's': a scale of 2 axes from axis 1 extends past the 2-D bottom"));
    CHECK(!expect_error(SCALE("scale_param { axis: 4 }"), MOKA_SHAPE(2, 3, 4, 5), 0, NULL,
                        MOKA_ERR_SHAPE,
                        "layer 's': scale_param axis 4 is out of range for a 4-D bottom"));
    CHECK(!expect_error(SCALE("scale_param { num_axes: -2 }"), MOKA_SHAPE(2, 3), 0, NULL,
                        MOKA_ERR_CONFIG, "scale_param num_axes must be >= 0, or -1"));
    CHECK(!expect_error(SCALE("scale_param { num_axes: -2 }"), MOKA_SHAPE(2, 3), 0, NULL,
                        MOKA_ERR_CONFIG, "<harness>:1:"));
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_learned_scale, matches_pytorch_scale_from_bottom,
               matches_pytorch_in_place, gradients_match_finite_differences,
               default_fillers_give_identity, large_input_gradients,
               warns_about_fields_unused_with_two_bottoms, rejects_bad_shapes_and_axes)
