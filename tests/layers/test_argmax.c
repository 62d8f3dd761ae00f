/* tests/layers/test_argmax.c -- ArgMax against torch.topk (tests/ref/gen_argmax.py) with and
 * without an axis and with out_max_val; Caffe's tie order by hand; and its configuration
 * errors. */
#include "harness.h"
#include "test.h"

static int check_fixture(const char *name, const char *params)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char fxname[128], cfg[512];
    snprintf(fxname, sizeof fxname, "argmax_%s", name);
    snprintf(cfg, sizeof cfg, "name: 'am' type: 'ArgMax' bottom: 'x' top: 'y' %s", params);
    CHECK_OK(moka_fixture_load(&fx, fxname, &err));
    const moka_tensor *x = moka_fixture_get(&fx, "x"), *y = moka_fixture_get(&fx, "y");
    CHECK(x && y);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK(h.layer->ops->backward_cpu == NULL);
    CHECK_EQ(h.top[0]->ndim, y->ndim);
    for (int d = 0; d < y->ndim; d++) CHECK_EQ(h.top[0]->shape[d], y->shape[d]);
    CHECK_OK(moka_harness_forward(&h, &err));
    /* Indices and copied values: exact. */
    CHECK_CLOSE_N(h.top[0]->data, y->data, moka_tensor_count(y), 0.0);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

static int matches_pytorch_flat_top1(void) { return check_fixture("5x10_k1", ""); }
static int matches_pytorch_flat_top3_values(void)
{
    return check_fixture("4x12_k3_val", "argmax_param { top_k: 3 out_max_val: true }");
}
static int matches_pytorch_flat_4d(void)
{
    return check_fixture("2x3x4x5_k2", "argmax_param { top_k: 2 }");
}
static int matches_pytorch_axis1(void)
{
    return check_fixture("2x6x3x4_axis1_k2", "argmax_param { top_k: 2 axis: 1 }");
}
static int matches_pytorch_axis1_values(void)
{
    return check_fixture("2x6x3x4_axis1_k3_val",
                         "argmax_param { top_k: 3 axis: 1 out_max_val: true }");
}
static int matches_pytorch_negative_axis(void)
{
    return check_fixture("3x4x8_axisneg1_k1", "argmax_param { axis: -1 }");
}

/* Caffe ranks (value, index) pairs with std::greater: among equal values the later index wins.
 * x = (1, 3, 3, 0): top 3 are indices 2, 1, 0. */
static int ties_rank_the_later_index_first(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'am' type: 'ArgMax' bottom: 'x' top: 'y' "
                               "argmax_param { top_k: 3 out_max_val: true }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 4), (const float[]){1, 3, 3, 0}, false,
                                     &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->ndim, 3);
    CHECK_EQ(h.top[0]->shape[0], 1);
    CHECK_EQ(h.top[0]->shape[1], 2);
    CHECK_EQ(h.top[0]->shape[2], 3);
    CHECK_OK(moka_harness_forward(&h, &err));
    const float want[6] = {2, 1, 0, 3, 3, 1};
    CHECK_CLOSE_N(h.top[0]->data, want, 6, 0.0);
    moka_harness_deinit(&h);
    return 0;
}

/* (4, 10, 1000) along axis 1: 4000 rows in 64 blocks on the multi-threaded path; compare the
 * argmax of every row with a plain scan written here. */
static int large_input_matches_naive_reference(void)
{
    moka_err err = {0};
    moka_harness h;
    enum { O = 4, C = 10, I = 1000 };
    CHECK_OK(moka_harness_init(&h,
                               "name: 'am' type: 'ArgMax' bottom: 'x' top: 'y' "
                               "argmax_param { axis: 1 }",
                               MOKA_TEST, 3, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(O, C, I), NULL, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float *x = h.bottom[0]->data, *y = h.top[0]->data;
    for (int o = 0; o < O; o++)
        for (int j = 0; j < I; j++) {
            int best = 0;
            for (int c = 1; c < C; c++)
                if (x[(o * C + c) * I + j] >= x[(o * C + best) * I + j]) best = c;
            CHECK_EQ(y[o * I + j], best);
        }
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_bad_top_k_and_axis(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'am' type: 'ArgMax' bottom: 'x' top: 'y' "
                               "argmax_param { top_k: 4 axis: 1 }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 5), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'am': argmax_param.top_k 4 is more than the 3 values along "
                            "axis 1 of the bottom (2 3 5 (30))");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'am' type: 'ArgMax' bottom: 'x' top: 'y' "
                               "argmax_param { top_k: 16 }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 5), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "argmax_param.top_k 16 is more than the 15 values per item");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'am' type: 'ArgMax' bottom: 'x' top: 'y' "
                               "argmax_param { top_k: 0 }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "argmax_param.top_k must be at least 1, got 0");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'am' type: 'ArgMax' bottom: 'x' top: 'y' "
                               "argmax_param { axis: 3 }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 5), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'am' (ArgMax)");
    CHECK_CONTAINS(err.msg, "argmax_param.axis 3 is out of range for a 3-D bottom");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_flat_top1, matches_pytorch_flat_top3_values,
               matches_pytorch_flat_4d, matches_pytorch_axis1, matches_pytorch_axis1_values,
               matches_pytorch_negative_axis, ties_rank_the_later_index_first,
               large_input_matches_naive_reference,
               rejects_bad_top_k_and_axis)
