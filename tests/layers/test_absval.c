/* tests/layers/test_absval.c -- AbsVal against torch.abs (tests/ref/gen_absval.py), finite
 * differences, and the errors for two tops and for running in place (which Caffe refuses). */
#include "harness.h"
#include "test.h"

extern const moka_layer_ops moka_layer_absval;

#define ABS "name: 'a' type: 'AbsVal' bottom: 'x' top: 'y' "
#define ABS_IN_PLACE "name: 'a' type: 'AbsVal' bottom: 'x' top: 'x' "

static int matches_pytorch(void)
{
    CHECK(!moka_harness_check_fixture(ABS, MOKA_TRAIN, "absval_basic",
                                      0.0)); /* |x| and sign: exact */
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(ABS, MOKA_TRAIN, MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(ABS, MOKA_TRAIN, MOKA_SHAPE(3, 11), 0, NULL));
    return 0;
}

static int rejects_two_tops(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h, "name: 'a1' type: 'AbsVal' bottom: 'x' top: 'y' top: 'z'",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'a1' (AbsVal) takes 1 to 1 tops, got 2");
    moka_harness_deinit(&h);
    return 0;
}

/* y = |x| has lost the sign backward needs, so AbsVal, as in Caffe, does not run in place. */
static int refuses_to_run_in_place(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK(!moka_layer_absval.in_place_ok);
    CHECK_OK(moka_harness_init(&h, ABS_IN_PLACE, MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'a' (AbsVal): cannot run in place");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, gradients_match_finite_differences, rejects_two_tops,
               refuses_to_run_in_place)
