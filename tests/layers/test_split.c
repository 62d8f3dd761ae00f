/* tests/layers/test_split.c -- Split copies its bottom to every top and sums the top gradients
 * (hand-derived values), finite differences, and its bottom count check. */
#include "harness.h"
#include "test.h"

static int copies_forward_and_sums_backward(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[6] = {1, -2, 3, -4, 5, -6};
    CHECK_OK(moka_harness_init(&h,
                               "name: 'sp' type: 'Split' bottom: 'x' top: 'a' top: 'b' top: 'c'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), x, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    for (int t = 0; t < 3; t++) {
        CHECK_EQ(h.top[t]->ndim, 2);
        CHECK_EQ(h.top[t]->shape[0], 2);
        CHECK_EQ(h.top[t]->shape[1], 3);
    }
    CHECK_OK(moka_harness_forward(&h, &err));
    for (int t = 0; t < 3; t++) CHECK_CLOSE_N(h.top[t]->data, x, 6, 0.0);
    const float da[6] = {1, 2, 3, 4, 5, 6}, db[6] = {10, 20, 30, 40, 50, 60},
                dc[6] = {0.5f, 0, -1, 0, 0, 100};
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){da, db, dc}, &err));
    const float want[6] = {11.5f, 22, 32, 44, 55, 166};
    CHECK_CLOSE_N(h.bottom[0]->grad, want, 6, 0.0);
    /* Backward adds: a second pass doubles the gradient. */
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    for (int i = 0; i < 6; i++) CHECK_NEAR(h.bottom[0]->grad[i], 2 * want[i], 0.0);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 'sp' type: 'Split' bottom: 'x' top: 'a' top: 'b'",
                               MOKA_TRAIN, 9, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_two_bottoms(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h,
                                   "name: 'sp' type: 'Split' bottom: 'x' bottom: 'z' top: 'a'",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    /* The count check is layer.c's, from this layer's min/max bottom counts. */
    CHECK_CONTAINS(err.msg, "layer 'sp' (Split)");
    CHECK_CONTAINS(err.msg, "got 2");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(copies_forward_and_sums_backward, gradients_match_finite_differences,
               rejects_two_bottoms)
