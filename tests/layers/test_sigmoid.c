/* tests/layers/test_sigmoid.c -- Sigmoid against torch.sigmoid (tests/ref/gen_sigmoid.py),
 * including saturated inputs, out of place and in place, finite differences, and a config error. */
#include "harness.h"
#include "test.h"

#define LAYER "name: 's' type: 'Sigmoid' bottom: 'x' top: 'y' "
#define LAYER_IN_PLACE "name: 's' type: 'Sigmoid' bottom: 'x' top: 'x' "

static int matches_pytorch(void)
{
    CHECK(!moka_harness_check_fixture(LAYER, MOKA_TRAIN, "sigmoid_basic", 1e-6));
    CHECK(!moka_harness_check_fixture(LAYER "sigmoid_param { engine: CAFFE }", MOKA_TEST,
                                      "sigmoid_basic", 1e-6));
    return 0;
}

/* Backward reads only y, which in place is all that is left. */
static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(LAYER_IN_PLACE, MOKA_TRAIN, "sigmoid_basic", 1e-6));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(LAYER, MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(LAYER_IN_PLACE, MOKA_TRAIN, MOKA_SHAPE(6, 7), 0, NULL));
    return 0;
}

static int rejects_an_unknown_engine(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h, LAYER "sigmoid_param { engine: FAST }", MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "FAST");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_pytorch_in_place, gradients_match_finite_differences,
               rejects_an_unknown_engine)
