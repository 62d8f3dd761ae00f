/* tests/layers/test_concat.c -- Concat against torch.cat (tests/ref/gen_concat.py), finite
 * differences, and its configuration and shape errors. */
#include "harness.h"
#include "test.h"

static int same_shape(const moka_tensor *a, const moka_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

/* Runs the fixture `name` (x0..x{nb-1} -> y, dy -> dx0..) through a Concat with `param`. */
static int check_fixture(const char *name, int nb, const char *param)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "name: 'c' type: 'Concat' %s top: 'y' %s",
             nb == 2 ? "bottom: 'x0' bottom: 'x1'" : "bottom: 'x0' bottom: 'x1' bottom: 'x2'",
             param);
    CHECK_OK(moka_fixture_load(&fx, name, &err));
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err));
    for (int i = 0; i < nb; i++) {
        char key[8];
        snprintf(key, sizeof key, "x%d", i);
        const moka_tensor *x = moka_fixture_get(&fx, key);
        CHECK(x);
        CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    }
    CHECK_OK(moka_harness_setup(&h, &err));
    const moka_tensor *y = moka_fixture_get(&fx, "y"), *dy = moka_fixture_get(&fx, "dy");
    CHECK(same_shape(h.top[0], y));
    CHECK_OK(moka_harness_forward(&h, &err));
    /* A copy: exact. */
    CHECK_CLOSE_N(h.top[0]->data, y->data, moka_tensor_count(y), 0.0);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy->data}, &err));
    for (int i = 0; i < nb; i++) {
        char key[8];
        snprintf(key, sizeof key, "dx%d", i);
        const moka_tensor *dx = moka_fixture_get(&fx, key);
        CHECK(dx);
        CHECK_CLOSE_N(h.bottom[i]->grad, dx->data, moka_tensor_count(dx), 0.0);
    }
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

static int matches_pytorch_axis1(void) { return check_fixture("concat_axis1", 3, ""); }

static int matches_pytorch_negative_axis(void)
{
    return check_fixture("concat_axisn1", 2, "concat_param { axis: -1 }");
}

static int matches_pytorch_legacy_concat_dim(void)
{
    return check_fixture("concat_dim0", 2, "concat_param { concat_dim: 0 }");
}

/* Backward adds into the bottom gradients, and skips a bottom that needs none. */
static int backward_adds_and_respects_propagate_down(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 'c' type: 'Concat' bottom: 'a' bottom: 'b' top: 'y'",
                               MOKA_TRAIN, 3, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 1, 2), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2, 2), NULL, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->shape[1], 3);
    CHECK_OK(moka_harness_forward(&h, &err));
    float dy[12];
    for (int i = 0; i < 12; i++) dy[i] = (float)(i + 1);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err)); /* a second pass adds again */
    /* a is rows 0 of each outer step: dy[0..1] and dy[6..7]. */
    const float want[4] = {2, 4, 14, 16};
    CHECK_CLOSE_N(h.bottom[0]->grad, want, 4, 0.0);
    for (int i = 0; i < 8; i++) CHECK(h.bottom[1]->grad[i] == 0.0f);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'c' type: 'Concat' bottom: 'a' bottom: 'b' top: 'y' "
                               "concat_param { axis: 2 }",
                               MOKA_TRAIN, 5, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 2, 2), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 3, 2), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_mismatched_shapes_naming_bottom_and_axis(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 'c' type: 'Concat' bottom: 'a' bottom: 'b' top: 'y'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 5), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'c'");
    CHECK_CONTAINS(err.msg, "bottom 1 'b' has shape 2 3 5 (30)");
    CHECK_CONTAINS(err.msg, "bottom 0 'a' has 2 3 4 (24)");
    CHECK_CONTAINS(err.msg, "concat axis 1");
    moka_harness_deinit(&h);

    /* A different number of axes is a mismatch too. */
    CHECK_OK(moka_harness_init(&h, "name: 'c' type: 'Concat' bottom: 'a' bottom: 'b' top: 'y'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "bottom 1 'b' has shape 2 3 (6)");
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_bad_axis_config(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'c' type: 'Concat' bottom: 'a' bottom: 'b' top: 'y' "
                               "concat_param { axis: 1 concat_dim: 1 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'c': give either axis or concat_dim");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'c' type: 'Concat' bottom: 'a' bottom: 'b' top: 'y' "
                               "concat_param { axis: -3 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "axis -3 is out of range for a 2-D bottom");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'c' type: 'Concat' bottom: 'a' bottom: 'b' top: 'y' "
                               "concat_param { concat_dim: 2 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "concat_dim 2 is out of range for a 2-D bottom");
    moka_harness_deinit(&h);
    return 0;
}

/* Big enough for the OpenMP branch: every element checked by index against the bottoms. */
static int large_inputs_take_the_threaded_path(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 'c' type: 'Concat' bottom: 'a' bottom: 'b' top: 'y'",
                               MOKA_TRAIN, 8, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(300, 100, 3), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(300, 200, 3), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const int64_t n = 300 * 300 * 3;
    float *dy = malloc((size_t)n * sizeof *dy);
    CHECK(dy);
    for (int64_t i = 0; i < n; i++) dy[i] = (float)(i % 1000);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    for (int64_t o = 0; o < 300; o++)
        for (int64_t a = 0; a < 300; a++)
            for (int64_t j = 0; j < 3; j++) {
                const int64_t t = (o * 300 + a) * 3 + j;
                const moka_tensor *x = a < 100 ? h.bottom[0] : h.bottom[1];
                const int64_t len = a < 100 ? 100 : 200, ai = a < 100 ? a : a - 100;
                const int64_t k = (o * len + ai) * 3 + j;
                CHECK(h.top[0]->data[t] == x->data[k]);
                CHECK(x->grad[k] == dy[t]);
            }
    free(dy);
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_axis1, matches_pytorch_negative_axis,
               matches_pytorch_legacy_concat_dim, backward_adds_and_respects_propagate_down,
               gradients_match_finite_differences,
               rejects_mismatched_shapes_naming_bottom_and_axis, rejects_bad_axis_config,
               large_inputs_take_the_threaded_path)
