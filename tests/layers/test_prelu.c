/* tests/layers/test_prelu.c -- PReLU against F.prelu (tests/ref/gen_prelu.py), out of place and
 * in place, finite differences of x and the slopes, the default filler, and shape errors. */
#include "harness.h"
#include "test.h"

#define PRELU(param) "name: 'p' type: 'PReLU' bottom: 'x' top: 'y' " param
#define PRELU_IN_PLACE(param) "name: 'p' type: 'PReLU' bottom: 'x' top: 'x' " param

static int matches_pytorch(void)
{
    CHECK(!moka_harness_check_fixture(PRELU(""), MOKA_TRAIN, "prelu_channels", 1e-6));
    CHECK(!moka_harness_check_fixture(PRELU("prelu_param { channel_shared: true }"), MOKA_TRAIN,
                         "prelu_shared", 1e-6));
    CHECK(!moka_harness_check_fixture(PRELU(""), MOKA_TRAIN, "prelu_2d", 1e-6));
    return 0;
}

static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(PRELU_IN_PLACE(""), MOKA_TRAIN, "prelu_channels", 1e-6));
    CHECK(!moka_harness_check_fixture(PRELU_IN_PLACE("prelu_param { channel_shared: true }"),
                                      MOKA_TRAIN, "prelu_shared", 1e-6));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(
        PRELU("prelu_param { filler { type: 'uniform' min: -0.5 max: 0.5 } }"), MOKA_TRAIN,
        MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(PRELU("prelu_param { channel_shared: true }"), MOKA_TRAIN,
                           MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(PRELU_IN_PLACE(""), MOKA_TRAIN, MOKA_SHAPE(5, 4), 0, NULL));
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
