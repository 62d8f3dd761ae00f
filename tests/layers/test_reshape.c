/* tests/layers/test_reshape.c -- Reshape's top shapes for the cases in Caffe's documentation of
 * ReshapeParameter (0 copies, -1 infers, axis/num_axes pick the replaced range; hand-derived),
 * data and gradient passed through unchanged, finite differences, and its errors. */
#include "harness.h"
#include "test.h"

/* Reshapes a random bottom of shape (bnd, bshape) with `param`; checks the top shape. */
static int check_shape(int bnd, const int64_t *bshape, const char *param, int ndim,
                       const int64_t *want)
{
    moka_err err = {0};
    moka_harness h;
    char cfg[256];
    snprintf(cfg, sizeof cfg, "name: 'r' type: 'Reshape' bottom: 'x' top: 'y' %s", param);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 2, &err));
    CHECK_OK(moka_harness_add_bottom(&h, bnd, bshape, NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->ndim, ndim);
    for (int d = 0; d < ndim; d++) CHECK_EQ(h.top[0]->shape[d], want[d]);
    const int64_t n = moka_tensor_count(h.bottom[0]);
    CHECK_EQ(moka_tensor_count(h.top[0]), n);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, h.bottom[0]->data, n, 0.0);
    float dy[64];
    CHECK(n <= 64);
    for (int64_t i = 0; i < n; i++) dy[i] = 0.25f * (float)i - 3.0f;
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err)); /* adds a second time */
    for (int64_t i = 0; i < n; i++) CHECK_NEAR(h.bottom[0]->grad[i], 2 * dy[i], 0.0);
    moka_harness_deinit(&h);
    return 0;
}

static int top_shapes_follow_caffe_rules(void)
{
    /* 0 copies the bottom's dim, -1 takes what is left. */
    if (check_shape(MOKA_SHAPE(2, 3, 4), "reshape_param { shape { dim: 0 dim: -1 } }",
                    MOKA_SHAPE(2, 12)))
        return 1;
    if (check_shape(MOKA_SHAPE(2, 3, 4), "reshape_param { shape { dim: -1 dim: 0 dim: 2 } }",
                    MOKA_SHAPE(4, 3, 2)))
        return 1;
    if (check_shape(MOKA_SHAPE(2, 3, 4), "reshape_param { shape { dim: 4 dim: 6 } }",
                    MOKA_SHAPE(4, 6)))
        return 1;
    /* Replace axis 1 only: (2, 4, 3) -> (2, 2, 2, 3). */
    if (check_shape(MOKA_SHAPE(2, 4, 3),
                    "reshape_param { axis: 1 num_axes: 1 shape { dim: 2 dim: -1 } }",
                    MOKA_SHAPE(2, 2, 2, 3)))
        return 1;
    /* num_axes 0 inserts: a 1 before axis 1. */
    if (check_shape(MOKA_SHAPE(2, 3, 4), "reshape_param { axis: 1 num_axes: 0 shape { dim: 1 } }",
                    MOKA_SHAPE(2, 1, 3, 4)))
        return 1;
    /* axis -1 is after the last axis: appends. */
    if (check_shape(MOKA_SHAPE(2, 3, 4), "reshape_param { axis: -1 num_axes: 0 shape { dim: 1 } }",
                    MOKA_SHAPE(2, 3, 4, 1)))
        return 1;
    /* axis -2 with num_axes -1 replaces the last axis. */
    if (check_shape(MOKA_SHAPE(2, 3, 4), "reshape_param { axis: -2 shape { dim: 2 dim: 2 } }",
                    MOKA_SHAPE(2, 3, 2, 2)))
        return 1;
    /* The same in protobuf's list syntax. */
    if (check_shape(MOKA_SHAPE(2, 3, 4), "reshape_param { shape { dim: [0, -1] } }",
                    MOKA_SHAPE(2, 12)))
        return 1;
    /* 0 copies relative to axis: position 0 of the new dims is bottom axis 1. */
    if (check_shape(MOKA_SHAPE(2, 3, 4),
                    "reshape_param { axis: 1 shape { dim: 0 dim: 2 dim: -1 } }",
                    MOKA_SHAPE(2, 3, 2, 2)))
        return 1;
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'r' type: 'Reshape' bottom: 'x' top: 'y' "
                               "reshape_param { shape { dim: -1 dim: 3 } }",
                               MOKA_TRAIN, 4, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 2), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static moka_status setup_reshape(moka_harness *h, const char *param, moka_err *err)
{
    char cfg[256];
    snprintf(cfg, sizeof cfg, "name: 'r' type: 'Reshape' bottom: 'x' top: 'y' %s", param);
    MOKA_TRY(moka_harness_init(h, cfg, MOKA_TRAIN, 1, err));
    MOKA_TRY(moka_harness_add_bottom(h, MOKA_SHAPE(2, 3, 4), NULL, true, err));
    return moka_harness_setup(h, err);
}

static int rejects_impossible_shapes(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(setup_reshape(&h, "reshape_param { shape { dim: 5 dim: -1 } }", &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'r'");
    CHECK_CONTAINS(err.msg, "cannot reshape 2 3 4 (24) to 5 -1");
    CHECK_CONTAINS(err.msg, "not divisible by the product 5");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_reshape(&h, "reshape_param { shape { dim: 5 dim: 5 } }", &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "cannot reshape 2 3 4 (24) to 5 5: the top would hold 25 elements");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_reshape(&h, "reshape_param { shape { dim: -1 dim: 2 dim: -1 } }", &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'r': reshape_param.shape has more than one -1 dim");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_reshape(&h, "reshape_param { shape { dim: 2 dim: -2 } }", &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "reshape dim -2 is invalid");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_reshape(&h, "reshape_param { shape { dim: 0 dim: 0 dim: 0 dim: 0 } }",
                               &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "dim 3 is 0 (copy) but the bottom has no axis 3");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_reshape(&h, "reshape_param { axis: 4 shape { dim: 1 } }", &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "(axis 4, num_axes -1): axis 4 is out of range for a 3-D bottom");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_reshape(&h, "reshape_param { axis: 2 num_axes: 2 shape { dim: 4 } }", &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "axis + num_axes = 4 is past the bottom's 3 axes");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_reshape(&h, "reshape_param { num_axes: -2 shape { dim: 4 } }", &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "num_axes -2 is invalid");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(top_shapes_follow_caffe_rules, gradients_match_finite_differences,
               rejects_impossible_shapes)
