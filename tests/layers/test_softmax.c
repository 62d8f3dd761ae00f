/* tests/layers/test_softmax.c -- Softmax against torch.softmax (tests/ref/gen_softmax.py) along
 * several axes, in place, with extreme inputs, by finite differences, and its axis error. */
#include <float.h>

#include "harness.h"
#include "test.h"

/* Runs fixture softmax_<name> (x -> y, dy -> dx) through a Softmax along `axis`. */
static int check_fixture(const char *name, int axis, bool in_place)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char fxname[128], cfg[256];
    snprintf(fxname, sizeof fxname, "softmax_%s", name);
    snprintf(cfg, sizeof cfg, "name: 'sm' type: 'Softmax' bottom: 'x' top: '%s' "
             "softmax_param { axis: %d }", in_place ? "x" : "y", axis);
    CHECK_OK(moka_fixture_load(&fx, fxname, &err));
    const moka_tensor *x = moka_fixture_get(&fx, "x"), *y = moka_fixture_get(&fx, "y");
    const moka_tensor *dy = moka_fixture_get(&fx, "dy"), *dx = moka_fixture_get(&fx, "dx");
    CHECK(x && y && dy && dx);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.layer->in_place, in_place);
    CHECK_EQ(h.top[0]->ndim, x->ndim);
    for (int d = 0; d < x->ndim; d++) CHECK_EQ(h.top[0]->shape[d], x->shape[d]);
    const int64_t n = moka_tensor_count(x);
    CHECK_OK(moka_harness_forward(&h, &err));
    /* float32 exp and sum against float64 PyTorch: a few ulps of 1. */
    CHECK_CLOSE_N(h.top[0]->data, y->data, n, 1e-6);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy->data}, &err));
    CHECK_CLOSE_N(h.bottom[0]->grad, dx->data, n, 1e-5);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

static int matches_pytorch_2d(void) { return check_fixture("2x7_axis1", 1, false); }
static int matches_pytorch_spatial(void) { return check_fixture("2x3x4x5_axis1", 1, false); }
static int matches_pytorch_axis2(void) { return check_fixture("2x3x4x5_axis2", 2, false); }
static int matches_pytorch_negative_axis(void)
{
    return check_fixture("3x4x6_axisneg1", -1, false);
}
static int matches_pytorch_axis0(void) { return check_fixture("5x3_axis0", 0, false); }
static int matches_pytorch_in_place(void) { return check_fixture("2x3x4x5_axis1", 1, true); }

/* Logits of +-1000 overflow exp without the max subtraction; hand-derived results. */
static int extreme_logits_stay_finite(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[6] = {1000.0f, 1000.0f, -1000.0f, -1000.0f, -1000.0f, -1000.0f};
    CHECK_OK(moka_harness_init(&h, "name: 'sm' type: 'Softmax' bottom: 'x' top: 'y'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), x, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float want[6] = {0.5f, 0.5f, 0.0f, 1.0f / 3, 1.0f / 3, 1.0f / 3};
    CHECK_CLOSE_N(h.top[0]->data, want, 6, 1e-7);
    moka_harness_deinit(&h);
    return 0;
}

/* Backward adds into dx (the net zeroes gradients once per pass) and skips it when not needed. */
static int backward_adds_into_dx(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 'sm' type: 'Softmax' bottom: 'x' top: 'y'",
                               MOKA_TRAIN, 3, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    float dy[12], once[12];
    for (int i = 0; i < 12; i++) dy[i] = (float)(i % 5) - 2.0f;
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    memcpy(once, h.bottom[0]->grad, sizeof once);
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    for (int i = 0; i < 12; i++) CHECK_NEAR(h.bottom[0]->grad[i], 2.0f * once[i], 1e-6);
    h.layer->propagate_down[0] = false;
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    for (int i = 0; i < 12; i++) CHECK(h.bottom[0]->grad[i] == 0.0f);
    moka_harness_deinit(&h);
    return 0;
}

/* A (3, 10, 1500) input takes the multi-threaded path and splits `inner` into blocks, the last
 * one partial; compare with a plain double-precision softmax written here. */
static int large_input_matches_naive_reference(void)
{
    moka_err err = {0};
    moka_harness h;
    enum { O = 3, C = 10, I = 1500 };
    CHECK_OK(moka_harness_init(&h, "name: 'sm' type: 'Softmax' bottom: 'x' top: 'y'",
                               MOKA_TRAIN, 8, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(O, C, I), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float *x = h.bottom[0]->data, *y = h.top[0]->data;
    for (int o = 0; o < O; o++)
        for (int j = 0; j < I; j++) {
            double mx = -INFINITY, sum = 0.0;
            for (int c = 0; c < C; c++) mx = fmax(mx, x[(o * C + c) * I + j]);
            for (int c = 0; c < C; c++) sum += exp(x[(o * C + c) * I + j] - mx);
            for (int c = 0; c < C; c++) {
                const int i = (o * C + c) * I + j;
                CHECK_NEAR(y[i], exp(x[i] - mx) / sum, 1e-6);
            }
        }
    moka_harness_deinit(&h);
    return 0;
}

static int gradcheck_axis(int ndim, const int64_t *shape, int axis)
{
    moka_err err = {0};
    moka_harness h;
    char cfg[200];
    snprintf(cfg, sizeof cfg,
             "name: 'sm' type: 'Softmax' bottom: 'x' top: 'y' softmax_param { axis: %d }", axis);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 11, &err));
    CHECK_OK(moka_harness_add_bottom(&h, ndim, shape, NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    if (gradcheck_axis(MOKA_SHAPE(2, 3, 4, 5), 1)) return 1;
    if (gradcheck_axis(MOKA_SHAPE(2, 3, 4, 5), -2)) return 1;
    return gradcheck_axis(MOKA_SHAPE(4, 6), 1);
}

static int rejects_axis_out_of_range(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'sm' type: 'Softmax' bottom: 'x' top: 'y' "
                               "softmax_param { axis: 4 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4, 5), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'sm' (Softmax)");
    CHECK_CONTAINS(err.msg,
                   "softmax_param.axis 4 is out of range for a 4-D bottom (2 3 4 5 (120))");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'sm' type: 'Softmax' bottom: 'x' top: 'y' "
                               "softmax_param { axis: -3 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "softmax_param.axis -3 is out of range for a 2-D bottom");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_2d, matches_pytorch_spatial, matches_pytorch_axis2,
               matches_pytorch_negative_axis, matches_pytorch_axis0, matches_pytorch_in_place,
               extreme_logits_stay_finite, backward_adds_into_dx,
               large_input_matches_naive_reference,
               gradients_match_finite_differences, rejects_axis_out_of_range)
