/* tests/layers/test_bias.c -- Bias against x + b in PyTorch (tests/ref/gen_bias.py): learned
 * bias over one axis, two leading axes and as a scalar, bias as bottom[1], out of place and in
 * place; finite differences of x and b; the default filler; shape and configuration errors. */
#include "harness.h"
#include "test.h"

#define BIAS(param) "name: 'b' type: 'Bias' bottom: 'x' top: 'y' " param
#define BIAS_IN_PLACE(param) "name: 'b' type: 'Bias' bottom: 'x' top: 'x' " param
#define BIAS2(param) "name: 'b' type: 'Bias' bottom: 'x' bottom: 'x1' top: 'y' " param

static int matches_pytorch(void)
{
    CHECK(!moka_harness_check_fixture(BIAS(""), MOKA_TRAIN, "bias_axis1", 1e-6));
    CHECK(!moka_harness_check_fixture(BIAS("bias_param { num_axes: 0 }"), MOKA_TRAIN, "bias_scalar",
                                      1e-6));
    CHECK(!moka_harness_check_fixture(BIAS("bias_param { axis: 0 num_axes: 2 }"), MOKA_TRAIN,
                                      "bias_first2", 1e-6));
    CHECK(!moka_harness_check_fixture(BIAS2(""), MOKA_TRAIN, "bias_bottom", 1e-6));
    return 0;
}

static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(BIAS_IN_PLACE(""), MOKA_TRAIN, "bias_axis1", 1e-6));
    CHECK(!moka_harness_check_fixture("name: 'b' type: 'Bias' bottom: 'x' bottom: 'x1' top: 'x'",
                                      MOKA_TRAIN, "bias_bottom", 1e-6));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(BIAS("bias_param { filler { type: 'gaussian' } }"),
                                        MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(BIAS_IN_PLACE("bias_param { axis: 1 num_axes: -1 }"),
                                        MOKA_TRAIN, MOKA_SHAPE(3, 4, 2), 0, NULL));
    CHECK(!moka_harness_check_gradients(BIAS("bias_param { num_axes: 0 }"), MOKA_TRAIN,
                                        MOKA_SHAPE(4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(BIAS2("bias_param { axis: 0 }"), MOKA_TRAIN,
                                        MOKA_SHAPE(2, 3, 4), MOKA_SHAPE(2, 3)));
    return 0;
}

/* The filler defaults to constant 0, so y = x; a given one is used. */
static int default_filler_is_zero(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, BIAS(""), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.num_weight, 1);
    CHECK_EQ(h.weight[0]->shape[0], 3);
    for (int c = 0; c < 3; c++) CHECK(h.weight[0]->data[c] == 0.0f);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(memcmp(h.top[0]->data, h.bottom[0]->data, 24 * sizeof(float)) == 0);
    moka_harness_deinit(&h);
    CHECK_OK(moka_harness_init(&h, BIAS("bias_param { filler { value: 1.5 } }"), MOKA_TRAIN, 1,
                               &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    for (int c = 0; c < 3; c++) CHECK(h.weight[0]->data[c] == 1.5f);
    moka_harness_deinit(&h);
    return 0;
}

/* Large enough for the threaded paths: the bias gradient against a plain double sum. */
static int large_input_gradients(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, BIAS(""), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(16, 8, 300), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const int64_t n = moka_tensor_count(h.top[0]);
    float *dy = malloc((size_t)n * sizeof *dy);
    CHECK(dy);
    for (int64_t i = 0; i < n; i++) dy[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    for (int c = 0; c < 8; c++) {
        double db = 0.0;
        for (int o = 0; o < 16; o++)
            for (int i = 0; i < 300; i++) db += dy[((int64_t)o * 8 + c) * 300 + i];
        CHECK_NEAR(h.weight[0]->grad[c], db, 1e-5);
    }
    CHECK(memcmp(h.bottom[0]->grad, dy, (size_t)n * sizeof(float)) == 0);
    free(dy);
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
    CHECK(!expect_error(BIAS2(""), MOKA_SHAPE(2, 3, 4, 5), MOKA_SHAPE(3, 5), MOKA_ERR_SHAPE,
                        "layer 'b' (Bias): dimension mismatch between bottom[0] shape(2) = 4 "
                        "and bias shape(1) = 5"));
    CHECK(!expect_error(BIAS("bias_param { num_axes: 3 }"), MOKA_SHAPE(2, 3), 0, NULL,
                        MOKA_ERR_SHAPE,
                        "layer 'b': a bias of 3 axes from axis 1 extends past the 2-D bottom"));
    CHECK(!expect_error(BIAS("bias_param { axis: -3 }"), MOKA_SHAPE(2, 3), 0, NULL,
                        MOKA_ERR_SHAPE,
                        "layer 'b': bias_param axis -3 is out of range for a 2-D bottom"));
    CHECK(!expect_error(BIAS("bias_param { num_axes: -5 }"), MOKA_SHAPE(2, 3), 0, NULL,
                        MOKA_ERR_CONFIG, "bias_param num_axes must be >= 0, or -1"));
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_pytorch_in_place, gradients_match_finite_differences,
               default_filler_is_zero, large_input_gradients, rejects_bad_shapes_and_axes)
