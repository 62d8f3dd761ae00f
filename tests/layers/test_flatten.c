/* tests/layers/test_flatten.c -- Flatten's top shapes for Caffe's axis/end_axis cases
 * (hand-derived), data and gradient passed through unchanged, finite differences, errors. */
#include "harness.h"
#include "test.h"

/* Flattens a random (2, 3, 4, 5) bottom with `param`; checks the top shape against want. */
static int check_shape(const char *param, int ndim, const int64_t *want)
{
    moka_err err = {0};
    moka_harness h;
    char cfg[256];
    snprintf(cfg, sizeof cfg, "name: 'f' type: 'Flatten' bottom: 'x' top: 'y' %s", param);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 2, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4, 5), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->ndim, ndim);
    for (int d = 0; d < ndim; d++) CHECK_EQ(h.top[0]->shape[d], want[d]);
    /* Row-major order is unchanged: the data and the gradient pass through as they are. */
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, h.bottom[0]->data, 120, 0.0);
    float dy[120];
    for (int i = 0; i < 120; i++) dy[i] = (float)i - 60.0f;
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err)); /* adds a second time */
    for (int i = 0; i < 120; i++) CHECK_NEAR(h.bottom[0]->grad[i], 2 * dy[i], 0.0);
    moka_harness_deinit(&h);
    return 0;
}

static int top_shapes_follow_axis_and_end_axis(void)
{
    if (check_shape("", MOKA_SHAPE(2, 60))) return 1;
    if (check_shape("flatten_param { axis: 2 }", MOKA_SHAPE(2, 3, 20))) return 1;
    if (check_shape("flatten_param { axis: 0 end_axis: 1 }", MOKA_SHAPE(6, 4, 5))) return 1;
    if (check_shape("flatten_param { axis: -3 end_axis: -2 }", MOKA_SHAPE(2, 12, 5))) return 1;
    if (check_shape("flatten_param { axis: 3 }", MOKA_SHAPE(2, 3, 4, 5))) return 1;
    /* Caffe: end_axis just before axis flattens nothing and inserts an axis of length 1. */
    if (check_shape("flatten_param { axis: 2 end_axis: 1 }", MOKA_SHAPE(2, 3, 1, 4, 5))) return 1;
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 'f' type: 'Flatten' bottom: 'x' top: 'y'", MOKA_TRAIN, 4,
                               &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 2), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static moka_status setup_flatten(moka_harness *h, const char *param, moka_err *err)
{
    char cfg[256];
    snprintf(cfg, sizeof cfg, "name: 'f' type: 'Flatten' bottom: 'x' top: 'y' %s", param);
    MOKA_TRY(moka_harness_init(h, cfg, MOKA_TRAIN, 1, err));
    MOKA_TRY(moka_harness_add_bottom(h, MOKA_SHAPE(2, 3, 4), NULL, true, err));
    return moka_harness_setup(h, err);
}

static int rejects_bad_axes(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(setup_flatten(&h, "flatten_param { axis: 3 }", &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'f'");
    CHECK_CONTAINS(err.msg, "axis 3 or end_axis -1 is out of range for a 3-D bottom (2 3 4 (24))");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_flatten(&h, "flatten_param { axis: 2 end_axis: 0 }", &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "end_axis 0 (axis 0 of the bottom 2 3 4 (24)) is more than one axis "
                            "before axis 2");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(top_shapes_follow_axis_and_end_axis, gradients_match_finite_differences,
               rejects_bad_axes)
