/* tests/layers/test_log.c -- Log against torch.log (tests/ref/gen_log.py), out of place and in
 * place, finite differences, and base errors. */
#include "harness.h"
#include "test.h"

#define LOG(param) "name: 'g' type: 'Log' bottom: 'x' top: 'y' " param
#define LOG_IN_PLACE(param) "name: 'g' type: 'Log' bottom: 'x' top: 'x' " param

static int matches_pytorch(void)
{
    CHECK(!moka_harness_check_fixture(LOG(""), MOKA_TRAIN, "log_e", 1e-5));
    CHECK(!moka_harness_check_fixture(LOG("log_param { base: 10 scale: 2 shift: 3 }"), MOKA_TRAIN,
                         "log_base10", 1e-5));
    CHECK(!moka_harness_check_fixture(LOG("log_param { base: 2 scale: -0.5 shift: 1 }"), MOKA_TRAIN,
                         "log_base2", 1e-5));
    return 0;
}

/* Backward needs x, which y overwrote: in place uses the layer's copy. */
static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(LOG_IN_PLACE(""), MOKA_TRAIN, "log_e", 1e-5));
    CHECK(!moka_harness_check_fixture(LOG_IN_PLACE("log_param { base: 10 scale: 2 shift: 3 }"),
                                      MOKA_TRAIN, "log_base10", 1e-5));
    return 0;
}

static int gradients_match_finite_differences(void)
{
    /* Bottoms are U(-1, 1): shift 2 keeps every argument in [1, 3]. */
    CHECK(!moka_harness_check_gradients(LOG("log_param { base: 10 shift: 2 }"), MOKA_TRAIN,
                           MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(LOG_IN_PLACE("log_param { scale: -0.5 shift: 1.5 }"),
                                        MOKA_TRAIN, MOKA_SHAPE(6, 5), 0, NULL));
    return 0;
}

static int rejects_bases_without_a_logarithm(void)
{
    moka_err err = {0};
    moka_harness h;
    const char *const bad[] = {LOG("log_param { base: 0 }"), LOG("log_param { base: -3 }")};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(moka_harness_init(&h, bad[i], MOKA_TRAIN, 1, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
        CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, "<harness>:1:");
        CHECK_CONTAINS(err.msg, "layer 'g': log_param base must be positive or -1 (for e), got");
        moka_harness_deinit(&h);
    }
    /* Base 1: ln(1) = 0 leaves nothing to divide by. */
    CHECK_OK(moka_harness_init(&h, LOG("log_param { base: 1 }"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "log_param base 1 does not define a logarithm");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_pytorch_in_place, gradients_match_finite_differences,
               rejects_bases_without_a_logarithm)
