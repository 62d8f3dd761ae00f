/* tests/layers/test_silence.c -- Silence takes any bottoms, writes nothing, and its (zero)
 * gradient adds nothing; it refuses tops. */
#include "harness.h"
#include "test.h"

static int consumes_bottoms_and_adds_no_gradient(void)
{
    moka_err err = {0};
    moka_harness h;
    const float a[3] = {1, 2, 3};
    CHECK_OK(moka_harness_init(&h, "name: 'si' type: 'Silence' bottom: 'a' bottom: 'b'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3), a, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.num_top, 0);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.bottom[0]->data, a, 3, 0.0); /* the input is untouched */
    /* Gradients already there (from other consumers) stay as they are. */
    for (int i = 0; i < 3; i++) h.bottom[0]->grad[i] = (float)(i + 7);
    for (int i = 0; i < 4; i++) h.bottom[1]->grad[i] = -1.0f;
    CHECK(h.layer->ops->backward_cpu != NULL);
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    const float ga[3] = {7, 8, 9}, gb[4] = {-1, -1, -1, -1};
    CHECK_CLOSE_N(h.bottom[0]->grad, ga, 3, 0.0);
    CHECK_CLOSE_N(h.bottom[1]->grad, gb, 4, 0.0);
    /* With no tops the objective is constant: every gradient must be 0, which the checker
     * confirms against finite differences. */
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    for (int i = 0; i < 3; i++) CHECK(h.bottom[0]->grad[i] == 0.0f);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_a_top(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h, "name: 'si' type: 'Silence' bottom: 'a' top: 'b'",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    /* The count check is layer.c's, from this layer's min/max top counts. */
    CHECK_CONTAINS(err.msg, "layer 'si' (Silence)");
    CHECK_CONTAINS(err.msg, "tops, got 1");
    moka_harness_deinit(&h);
    CHECK_STATUS(moka_harness_init(&h, "name: 'si' type: 'Silence'", MOKA_TRAIN, 1, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "bottom(s), got 0");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(consumes_bottoms_and_adds_no_gradient, rejects_a_top)
