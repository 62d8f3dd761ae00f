/* tests/layers/test_power.c -- Power against torch.pow (tests/ref/gen_power.py) for general,
 * square, linear, cube, inverse and zero powers, out of place and in place, finite differences,
 * the derivative where the base is 0, and a count error. */
#include "harness.h"
#include "test.h"

#define POWER(param) "name: 'p' type: 'Power' bottom: 'x' top: 'y' power_param { " param " }"
#define POWER_IN_PLACE(param) "name: 'p' type: 'Power' bottom: 'x' top: 'x' power_param { " \
    param " }"

static const char *const cases[][2] = {
    {"power_general", "power: 2.5 scale: 0.5 shift: 2"},
    {"power_square", "power: 2 scale: -1.5 shift: 0.3"},
    {"power_linear", "power: 1 scale: 2 shift: -1"},
    {"power_cube", "power: 3 scale: 1.2"},
    {"power_inverse", "power: -1 shift: 2"},
    {"power_zero", "power: 0 scale: 3 shift: 1"},
};

static int matches_pytorch(void)
{
    char cfg[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cfg, sizeof cfg, POWER("%s"), cases[i][1]);
        if (moka_harness_check_fixture(cfg, MOKA_TRAIN, cases[i][0], 1e-5))
            TEST_FAIL_("case %s", cases[i][0]);
    }
    return 0;
}

/* Every power but 1 and 0 needs x in backward: in place, the layer's copy. */
static int matches_pytorch_in_place(void)
{
    char cfg[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cfg, sizeof cfg, POWER_IN_PLACE("%s"), cases[i][1]);
        if (moka_harness_check_fixture(cfg, MOKA_TRAIN, cases[i][0], 1e-5))
            TEST_FAIL_("case %s", cases[i][0]);
    }
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(POWER("power: 1.5 scale: 0.7 shift: 2"), MOKA_TRAIN,
                           MOKA_SHAPE(2, 3, 4, 5), 0, NULL));
    CHECK(!moka_harness_check_gradients(POWER("power: 2 scale: 2 shift: -0.5"), MOKA_TRAIN,
                                        MOKA_SHAPE(30), 0, NULL));
    CHECK(!moka_harness_check_gradients(POWER_IN_PLACE("power: 3 scale: -1"), MOKA_TRAIN,
                                        MOKA_SHAPE(5, 6), 0, NULL));
    CHECK(!moka_harness_check_gradients(POWER_IN_PLACE("power: -2 shift: 3"), MOKA_TRAIN,
                                        MOKA_SHAPE(5, 6), 0, NULL));
    return 0;
}

/* Where shift + scale * x is 0 the derivative of a cube is 0; Caffe's y / x form would give
 * 0 / 0 there. */
static int derivative_at_a_zero_base(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[4] = {0.0f, 1.0f, -2.0f, 0.5f}, dy[4] = {1.0f, 1.0f, 1.0f, 2.0f};
    CHECK_OK(moka_harness_init(&h, POWER("power: 3 scale: 2"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(4), x, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float want_y[4] = {0.0f, 8.0f, -64.0f, 1.0f}, want_dx[4] = {0.0f, 24.0f, 96.0f, 12.0f};
    CHECK_CLOSE_N(h.top[0]->data, want_y, 4, 1e-6);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    CHECK_CLOSE_N(h.bottom[0]->grad, want_dx, 4, 1e-6);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_two_bottoms(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h, "name: 'p1' type: 'Power' bottom: 'a' bottom: 'b' top: 'y'",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'p1' (Power) takes 1 bottom(s), got 2");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, matches_pytorch_in_place, gradients_match_finite_differences,
               derivative_at_a_zero_base, rejects_two_bottoms)
