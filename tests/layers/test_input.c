/* tests/layers/test_input.c -- Input sets its top shapes from input_param, leaves the data the
 * caller wrote, keeps a shape the caller changed, has no backward, and rejects missing or
 * miscounted shapes. */
#include "harness.h"
#include "test.h"

static int one_shape_serves_every_top(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'in' type: 'Input' top: 'a' top: 'b' "
                               "input_param { shape { dim: 2 dim: 3 dim: 4 } }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    for (int t = 0; t < 2; t++) {
        CHECK_EQ(h.top[t]->ndim, 3);
        CHECK_EQ(h.top[t]->shape[0], 2);
        CHECK_EQ(h.top[t]->shape[1], 3);
        CHECK_EQ(h.top[t]->shape[2], 4);
    }
    CHECK(h.layer->ops->backward_cpu == NULL);
    moka_harness_deinit(&h);
    return 0;
}

static int one_shape_per_top_and_data_left_alone(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'in' type: 'Input' top: 'data' top: 'label' "
                               "input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } "
                               "shape { dim: 1 } }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->ndim, 4);
    CHECK_EQ(moka_tensor_count(h.top[0]), 4);
    CHECK_EQ(h.top[1]->ndim, 1);
    CHECK_EQ(h.top[1]->shape[0], 1);
    const float x[4] = {0.5f, -1, 2, 7};
    memcpy(h.top[0]->data, x, sizeof x);
    h.top[1]->data[0] = 3;
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, x, 4, 0.0);
    CHECK(h.top[1]->data[0] == 3.0f);
    /* A caller that reshapes the input (a different batch size) keeps its shape. */
    h.top[0]->shape[0] = 1;
    h.top[0]->shape[2] = 1;
    CHECK_OK(h.layer->ops->reshape(h.layer, &err));
    CHECK_EQ(h.top[0]->shape[2], 1);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_missing_and_miscounted_shapes(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 'in' type: 'Input' top: 'a'", MOKA_TEST, 1, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'in'");
    CHECK_CONTAINS(err.msg, "input_param has no shape");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'in' type: 'Input' top: 'a' top: 'b' top: 'c' "
                               "input_param { shape { dim: 1 } shape { dim: 2 } }",
                               MOKA_TEST, 1, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'in': 2 input_param shapes for 3 tops");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'in' type: 'Input' top: 'a' "
                               "input_param { shape { dim: 1 dim: -3 } }",
                               MOKA_TEST, 1, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'in': input dim -3 is negative");
    moka_harness_deinit(&h);

    CHECK_STATUS(moka_harness_init(&h,
                                   "name: 'in' type: 'Input' bottom: 'x' top: 'a' "
                                   "input_param { shape { dim: 1 } }",
                                   MOKA_TEST, 1, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'in' (Input)");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(one_shape_serves_every_top, one_shape_per_top_and_data_left_alone,
               rejects_missing_and_miscounted_shapes)
