/* tests/layers/test_batch_norm.c -- BatchNorm against F.batch_norm (tests/ref/gen_batch_norm.py)
 * with batch and with global statistics, the running sums updated by Caffe's rule, the phase
 * defaults and use_global_stats, in place, finite differences, and errors. */
#include "harness.h"
#include "test.h"

#define BN(param) "name: 'bn' type: 'BatchNorm' bottom: 'x' top: 'y' " \
    "batch_norm_param { moving_average_fraction: 0.9 eps: 1e-4 " param " }"
#define BN_IN_PLACE(param) "name: 'bn' type: 'BatchNorm' bottom: 'x' top: 'x' " \
    "batch_norm_param { moving_average_fraction: 0.9 eps: 1e-4 " param " }"

/* TRAIN defaults to batch statistics; the fixture holds the running sums Caffe's rule gives. */
static int matches_pytorch_batch_statistics(void)
{
    CHECK(!moka_harness_check_fixture(BN(""), MOKA_TRAIN, "batch_norm_train", 2e-5));
    CHECK(!moka_harness_check_fixture(BN(""), MOKA_TRAIN, "batch_norm_train_2d", 2e-5));
    /* use_global_stats: false forces batch statistics in TEST as well. */
    CHECK(!moka_harness_check_fixture(BN("use_global_stats: false"), MOKA_TEST, "batch_norm_train",
                                      2e-5));
    return 0;
}

/* TEST defaults to the stored statistics (divided by the factor w2; 0 while w2 is 0). */
static int matches_pytorch_global_statistics(void)
{
    CHECK(!moka_harness_check_fixture(BN(""), MOKA_TEST, "batch_norm_eval", 2e-5));
    CHECK(!moka_harness_check_fixture(BN(""), MOKA_TEST, "batch_norm_eval_zero_factor", 2e-5));
    CHECK(!moka_harness_check_fixture(BN("use_global_stats: true"), MOKA_TRAIN, "batch_norm_eval",
                                      2e-5));
    return 0;
}

/* In place y overwrites x; the layer keeps x_hat and the deviations for backward. */
static int matches_pytorch_in_place(void)
{
    CHECK(!moka_harness_check_fixture(BN_IN_PLACE(""), MOKA_TRAIN, "batch_norm_train", 2e-5));
    CHECK(!moka_harness_check_fixture(BN_IN_PLACE(""), MOKA_TEST, "batch_norm_eval", 2e-5));
    return 0;
}

/* Three non-learnable blobs in Caffe's order and shapes, starting at 0, without gradients. */
static int declares_caffes_three_statistics_blobs(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, BN(""), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 5, 3), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.num_weight, 3);
    const int64_t want[3] = {5, 5, 1};
    for (int w = 0; w < 3; w++) {
        CHECK_EQ(h.weight[w]->ndim, 1);
        CHECK_EQ(h.weight[w]->shape[0], want[w]);
        CHECK(!h.layer->weight_info[w].fill.learnable);
        CHECK(h.weight[w]->grad == NULL);
        for (int64_t i = 0; i < want[w]; i++) CHECK(h.weight[w]->data[i] == 0.0f);
    }
    CHECK(strcmp(h.layer->weight_info[0].name, "mean") == 0);
    CHECK(strcmp(h.layer->weight_info[1].name, "variance") == 0);
    /* Two forwards: w2 = (0 * 0.9 + 1) * 0.9 + 1 = 1.9. */
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_NEAR(h.weight[2]->data[0], 1.9, 1e-6);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    CHECK(!moka_harness_check_gradients(BN(""), MOKA_TRAIN, MOKA_SHAPE(2, 3, 3, 4), 0, NULL));
    CHECK(!moka_harness_check_gradients(BN_IN_PLACE(""), MOKA_TRAIN, MOKA_SHAPE(6, 4), 0, NULL));
    /* Global statistics: set some, then check dx = dy / sqrt(var + eps). */
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, BN_IN_PLACE(""), MOKA_TEST, 4, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 5), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    for (int c = 0; c < 3; c++) {
        h.weight[0]->data[c] = 0.2f * (float)c - 0.1f;
        h.weight[1]->data[c] = 0.5f + 0.3f * (float)c;
    }
    h.weight[2]->data[0] = 1.5f;
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3}), 0);
    moka_harness_deinit(&h);
    return 0;
}

/* Enough elements for the threaded path: compare against a plain double computation. */
static int large_input_matches_formula(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, BN(""), MOKA_TRAIN, 6, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(8, 4, 40, 40), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float *x = h.bottom[0]->data, *y = h.top[0]->data;
    for (int c = 0; c < 4; c++) {
        double sum = 0.0, sq = 0.0;
        for (int n = 0; n < 8; n++)
            for (int i = 0; i < 1600; i++) sum += x[(n * 4 + c) * 1600 + i];
        const double mean = sum / 12800.0;
        for (int n = 0; n < 8; n++)
            for (int i = 0; i < 1600; i++) {
                const double d = x[(n * 4 + c) * 1600 + i] - mean;
                sq += d * d;
            }
        const double var = sq / 12800.0, sd = sqrt(var + 1e-4);
        for (int n = 0; n < 8; n++)
            for (int i = 0; i < 1600; i++) {
                const int64_t k = (n * 4 + c) * 1600 + i;
                CHECK_NEAR(y[k], (x[k] - mean) / sd, 1e-5);
            }
        CHECK_NEAR(h.weight[0]->data[c], mean, 1e-6);
        CHECK_NEAR(h.weight[1]->data[c], var * 12800.0 / 12799.0, 1e-6);
    }
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_bad_channels_and_eps(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, "name: 'bn1' type: 'BatchNorm' bottom: 'x' top: 'y'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    h.bottom[0]->shape[1] = 4;
    h.bottom[0]->shape[2] = 3;
    CHECK_STATUS(h.layer->ops->reshape(h.layer, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'bn1' (BatchNorm): bottom has 4 channels, the statistics "
                            "have 3");
    moka_harness_deinit(&h);
    CHECK_OK(moka_harness_init(&h, "name: 'bn' type: 'BatchNorm' bottom: 'x' top: 'y' "
                                   "batch_norm_param { eps: -1e-3 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "<harness>:1:");
    CHECK_CONTAINS(err.msg, "layer 'bn': batch_norm_param eps must be >= 0, got -0.001");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_batch_statistics, matches_pytorch_global_statistics,
               matches_pytorch_in_place, declares_caffes_three_statistics_blobs,
               gradients_match_finite_differences, large_input_matches_formula,
               rejects_bad_channels_and_eps)
