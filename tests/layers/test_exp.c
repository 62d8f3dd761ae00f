/* tests/layers/test_exp.c -- Exp against torch.exp / torch.pow (tests/ref/gen_exp.py), out of
 * place and in place, finite differences, and base errors. */
#include "harness.h"
#include "test.h"

#define EXP(param) "name: 'e' type: 'Exp' bottom: 'x' top: 'y' " param
#define EXP_IN_PLACE(param) "name: 'e' type: 'Exp' bottom: 'x' top: 'x' " param

static int matches_pytorch(void)
{
    CHECK(!moka_harness_check_fixture(EXP("exp_param { scale: 0.5 shift: 0.2 }"), MOKA_TRAIN,
                                      "exp_e", 1e-5));
    CHECK(!moka_harness_check_fixture(EXP("exp_param { base: 2 scale: 1.5 shift: -1 }"), MOKA_TRAIN,
                         "exp_base2", 1e-5));
    CHECK(!moka_harness_check_fixture(EXP(""), MOKA_TRAIN, "exp_plain", 1e-5));
    return 0;
}

static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(EXP_IN_PLACE("exp_param { base: 2 scale: 1.5 shift: -1 }"),
                                      MOKA_TRAIN, "exp_base2", 1e-5));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(EXP("exp_param { base: 3 scale: -0.8 shift: 0.5 }"),
                                        MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(EXP_IN_PLACE(""), MOKA_TRAIN, MOKA_SHAPE(4, 7), 0, NULL));
    return 0;
}

static int rejects_a_base_that_is_not_positive(void)
{
    moka_err err = {0};
    moka_harness h;
    const char *const bad[] = {EXP("exp_param { base: 0 }"), EXP("exp_param { base: -2 }")};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(moka_harness_init(&h, bad[i], MOKA_TRAIN, 1, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
        CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, "<harness>:1:");
        CHECK_CONTAINS(err.msg, "layer 'e': exp_param base must be positive or -1 (for e), got");
        moka_harness_deinit(&h);
    }
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_pytorch_in_place, gradients_match_finite_differences,
               rejects_a_base_that_is_not_positive)
