/* tests/layers/test_elu.c -- ELU against the formula in PyTorch (tests/ref/gen_elu.py), out of
 * place and in place, finite differences, and a configuration error. */
#include "harness.h"
#include "test.h"

#define ELU(param) "name: 'e' type: 'ELU' bottom: 'x' top: 'y' " param
#define ELU_IN_PLACE(param) "name: 'e' type: 'ELU' bottom: 'x' top: 'x' " param

static int matches_pytorch(void)
{
    CHECK(!moka_harness_check_fixture(ELU(""), MOKA_TRAIN, "elu_alpha1", 1e-6));
    CHECK(!moka_harness_check_fixture(ELU("elu_param { alpha: 0.5 }"), MOKA_TRAIN, "elu_alpha05",
                                      1e-6));
    CHECK(!moka_harness_check_fixture(ELU("elu_param { alpha: -0.7 }"), MOKA_TRAIN, "elu_negative",
                                      1e-6));
    return 0;
}

/* With alpha < 0, y > 0 for some x < 0: in place, backward needs the layer's copy of x. */
static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(ELU_IN_PLACE(""), MOKA_TRAIN, "elu_alpha1", 1e-6));
    CHECK(!moka_harness_check_fixture(ELU_IN_PLACE("elu_param { alpha: -0.7 }"), MOKA_TRAIN,
                                      "elu_negative", 1e-6));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(ELU(""), MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(ELU_IN_PLACE("elu_param { alpha: 2 }"), MOKA_TRAIN,
                           MOKA_SHAPE(4, 9), 0, NULL));
    CHECK(!moka_harness_check_gradients(ELU_IN_PLACE("elu_param { alpha: -0.4 }"), MOKA_TRAIN,
                           MOKA_SHAPE(4, 9), 0, NULL));
    return 0;
}

static int rejects_a_non_number_alpha(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h, ELU("elu_param { alpha: 'one' }"), MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "<harness>:1:");
    CHECK_CONTAINS(err.msg, "alpha");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_pytorch_in_place, gradients_match_finite_differences,
               rejects_a_non_number_alpha)
