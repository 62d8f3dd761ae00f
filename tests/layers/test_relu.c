/* tests/layers/test_relu.c -- ReLU against F.relu / F.leaky_relu (tests/ref/gen_relu.py), out of
 * place and in place, finite differences, and a configuration error. */
#include "harness.h"
#include "test.h"

#define RELU(param) "name: 'r' type: 'ReLU' bottom: 'x' top: 'y' " param
#define RELU_IN_PLACE(param) "name: 'r' type: 'ReLU' bottom: 'x' top: 'x' " param

static int matches_pytorch(void)
{
    CHECK(!moka_harness_check_fixture(RELU(""), MOKA_TRAIN, "relu_plain", 1e-6));
    CHECK(!moka_harness_check_fixture(RELU("relu_param { negative_slope: 0.1 }"), MOKA_TRAIN,
                                      "relu_leaky", 1e-6));
    CHECK(!moka_harness_check_fixture(RELU("relu_param { negative_slope: -0.5 engine: CAFFE }"),
                                      MOKA_TEST, "relu_negative", 1e-6));
    return 0;
}

/* In place, y overwrites x; backward must still see which inputs were positive. A negative
 * slope makes y > 0 for x < 0 too, which is the case that needs the layer's copy of x. */
static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(RELU_IN_PLACE(""), MOKA_TRAIN, "relu_plain", 1e-6));
    CHECK(!moka_harness_check_fixture(RELU_IN_PLACE("relu_param { negative_slope: 0.1 }"),
                                      MOKA_TRAIN, "relu_leaky", 1e-6));
    CHECK(!moka_harness_check_fixture(RELU_IN_PLACE("relu_param { negative_slope: -0.5 }"),
                                      MOKA_TRAIN, "relu_negative", 1e-6));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(RELU(""), MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(RELU("relu_param { negative_slope: 0.2 }"), MOKA_TRAIN,
                           MOKA_SHAPE(3, 7), 0, NULL));
    CHECK(!moka_harness_check_gradients(RELU_IN_PLACE("relu_param { negative_slope: -0.3 }"),
                                        MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    return 0;
}

/* Large enough for the threaded path; the result must be the same element-wise formula. */
static int large_input_matches_formula(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, RELU("relu_param { negative_slope: 0.25 }"), MOKA_TRAIN, 3,
                               &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(4, 50, 1000), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const int64_t n = moka_tensor_count(h.top[0]);
    const float *x = h.bottom[0]->data, *y = h.top[0]->data;
    for (int64_t i = 0; i < n; i++) CHECK(y[i] == (x[i] > 0.0f ? x[i] : 0.25f * x[i]));
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_two_bottoms_and_misspelt_fields(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h, "name: 'r1' type: 'ReLU' bottom: 'a' bottom: 'b' top: 'y'",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'r1' (ReLU) takes 1 bottom(s), got 2");
    moka_harness_deinit(&h);
    CHECK_STATUS(moka_harness_init(&h, RELU("relu_param { negative_slop: 0.1 }"), MOKA_TRAIN, 1,
                                   &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "negative_slop");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_pytorch_in_place, gradients_match_finite_differences,
               large_input_matches_formula, rejects_two_bottoms_and_misspelt_fields)
