/* tests/layers/test_slice.c -- Slice against torch.split (tests/ref/gen_slice.py), finite
 * differences, and its configuration and shape errors. */
#include "harness.h"
#include "test.h"

/* Runs fixture `name` (x -> y0..y{nt-1}, dy0.. -> dx) through a Slice with `param`. */
static int check_fixture(const char *name, int nt, const char *param)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "name: 's' type: 'Slice' bottom: 'x' top: 'y0' top: 'y1' %s %s",
             nt == 3 ? "top: 'y2'" : "", param);
    CHECK_OK(moka_fixture_load(&fx, name, &err));
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err));
    const moka_tensor *x = moka_fixture_get(&fx, "x"), *dx = moka_fixture_get(&fx, "dx");
    CHECK(x && dx);
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float *dys[3];
    for (int i = 0; i < nt; i++) {
        char key[8];
        snprintf(key, sizeof key, "y%d", i);
        const moka_tensor *y = moka_fixture_get(&fx, key);
        snprintf(key, sizeof key, "dy%d", i);
        const moka_tensor *dy = moka_fixture_get(&fx, key);
        CHECK(y && dy);
        CHECK_EQ(h.top[i]->ndim, y->ndim);
        for (int d = 0; d < y->ndim; d++) CHECK_EQ(h.top[i]->shape[d], y->shape[d]);
        CHECK_CLOSE_N(h.top[i]->data, y->data, moka_tensor_count(y), 0.0); /* a copy: exact */
        dys[i] = dy->data;
    }
    CHECK_OK(moka_harness_backward(&h, dys, &err));
    CHECK_CLOSE_N(h.bottom[0]->grad, dx->data, moka_tensor_count(dx), 0.0);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

static int matches_pytorch_slice_points(void)
{
    return check_fixture("slice_points", 3, "slice_param { slice_point: 1 slice_point: 4 }");
}

static int matches_pytorch_equal_split(void)
{
    return check_fixture("slice_equal", 3, "slice_param { axis: -1 }");
}

static int matches_pytorch_legacy_slice_dim(void)
{
    return check_fixture("slice_dim0", 2, "slice_param { slice_dim: 0 slice_point: 3 }");
}

static int backward_adds_into_the_bottom_gradient(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b'",
                               MOKA_TRAIN, 3, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float da[2] = {1, 2}, db[2] = {3, 4};
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){da, db}, &err));
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    const float want[4] = {2, 4, 6, 8};
    CHECK_CLOSE_N(h.bottom[0]->grad, want, 4, 0.0);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b' top: 'c' "
                               "slice_param { axis: 2 slice_point: 2 slice_point: 3 }",
                               MOKA_TRAIN, 5, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2, 5, 2), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[2]->shape[2], 2);
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static moka_status setup_slice(moka_harness *h, const char *cfg, int ndim, const int64_t *shape,
                               moka_err *err)
{
    MOKA_TRY(moka_harness_init(h, cfg, MOKA_TRAIN, 1, err));
    MOKA_TRY(moka_harness_add_bottom(h, ndim, shape, NULL, true, err));
    return moka_harness_setup(h, err);
}

static int rejects_bad_slice_points(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(setup_slice(&h,
                             "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b' top: 'c' "
                             "slice_param { slice_point: 3 slice_point: 2 }",
                             MOKA_SHAPE(2, 6), &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 's': slice_point 2 must be greater than 3");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_slice(&h,
                             "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b' "
                             "slice_param { slice_point: 0 }",
                             MOKA_SHAPE(2, 6), &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "slice_point 0 must be greater than 0");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_slice(&h,
                             "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b' "
                             "slice_param { slice_point: 1 slice_point: 2 }",
                             MOKA_SHAPE(2, 6), &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "2 slice_point value(s) for 2 tops");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_slice(&h,
                             "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b' "
                             "slice_param { slice_point: 7 }",
                             MOKA_SHAPE(2, 6), &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "cannot cut axis 1 of length 6");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_slice(&h,
                             "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b' top: 'c' "
                             "top: 'd'",
                             MOKA_SHAPE(2, 6), &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "4 tops do not evenly divide axis 1 of length 6");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_slice(&h,
                             "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b' "
                             "slice_param { axis: 0 slice_dim: 0 }",
                             MOKA_SHAPE(2, 6), &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "give either axis or slice_dim");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_slice(&h,
                             "name: 's' type: 'Slice' bottom: 'x' top: 'a' top: 'b' "
                             "slice_param { axis: 2 }",
                             MOKA_SHAPE(2, 6), &err),
                 MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "axis 2 is out of range for a 2-D bottom");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_slice_points, matches_pytorch_equal_split,
               matches_pytorch_legacy_slice_dim, backward_adds_into_the_bottom_gradient,
               gradients_match_finite_differences, rejects_bad_slice_points)
