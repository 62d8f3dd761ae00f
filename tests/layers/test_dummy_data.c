/* tests/layers/test_dummy_data.c -- DummyData shapes (BlobShape and legacy 4-D, once or per top),
 * fillers (none = 0, one for all, one per top), refilling on every forward, and its errors. */
#include "harness.h"
#include "test.h"

static int all_equal(const moka_tensor *t, float v)
{
    for (int64_t i = 0; i < moka_tensor_count(t); i++)
        if (t->data[i] != v) return 0;
    return 1;
}

static int legacy_dims_and_one_constant_filler_for_all_tops(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'd' type: 'DummyData' top: 'a' top: 'b' "
                               "dummy_data_param { num: 2 channels: 3 height: 1 width: 2 "
                               "data_filler { type: 'constant' value: 3 } }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    for (int t = 0; t < 2; t++) {
        CHECK_EQ(h.top[t]->ndim, 4);
        CHECK_EQ(h.top[t]->shape[0], 2);
        CHECK_EQ(h.top[t]->shape[1], 3);
        CHECK_EQ(h.top[t]->shape[2], 1);
        CHECK_EQ(h.top[t]->shape[3], 2);
    }
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(all_equal(h.top[0], 3.0f));
    CHECK(all_equal(h.top[1], 3.0f));
    CHECK(h.layer->ops->backward_cpu == NULL);
    moka_harness_deinit(&h);
    return 0;
}

static int no_filler_means_zeros_every_forward(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'd' type: 'DummyData' top: 'a' "
                               "dummy_data_param { shape { dim: 3 dim: 5 } }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->ndim, 2);
    CHECK_EQ(h.top[0]->shape[1], 5);
    for (int i = 0; i < 15; i++) h.top[0]->data[i] = 9.0f;
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(all_equal(h.top[0], 0.0f));
    moka_harness_deinit(&h);
    return 0;
}

/* A filler per top: the constant top stays, the uniform top is redrawn on every forward. */
static int random_fillers_refill_on_every_forward(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'd' type: 'DummyData' top: 'c' top: 'u' "
                               "dummy_data_param { shape { dim: 4 } shape { dim: 2 dim: 50 } "
                               "data_filler { type: 'constant' value: 1.5 } "
                               "data_filler { type: 'uniform' min: -2 max: -1 } }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_tensor_count(h.top[0]), 4);
    CHECK_EQ(moka_tensor_count(h.top[1]), 100);
    moka_layer *l = h.layer;
    float first[100];
    CHECK_OK(l->ops->forward_cpu(l, &err));
    memcpy(first, h.top[1]->data, sizeof first);
    CHECK(all_equal(h.top[0], 1.5f));
    int distinct = 0;
    for (int i = 0; i < 100; i++) {
        CHECK(first[i] >= -2.0f && first[i] <= -1.0f);
        distinct += i > 0 && first[i] != first[0];
    }
    CHECK(distinct > 90);
    CHECK_OK(l->ops->forward_cpu(l, &err));
    CHECK(all_equal(h.top[0], 1.5f));
    int changed = 0;
    for (int i = 0; i < 100; i++) {
        CHECK(h.top[1]->data[i] >= -2.0f && h.top[1]->data[i] <= -1.0f);
        changed += h.top[1]->data[i] != first[i];
    }
    CHECK(changed > 90);
    moka_harness_deinit(&h);
    return 0;
}

/* One gaussian filler for two tops (legacy dims given per top): each top gets its own draws
 * with the filler's mean and std. */
static int one_random_filler_for_all_tops(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'd' type: 'DummyData' top: 'a' top: 'b' "
                               "dummy_data_param { num: 2 num: 1 channels: 1 height: 40 "
                               "width: 50 data_filler { type: 'gaussian' mean: 2 std: 0.5 } }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->shape[0], 2);
    CHECK_EQ(h.top[1]->shape[0], 1);
    CHECK_OK(moka_harness_forward(&h, &err));
    for (int t = 0; t < 2; t++) {
        const int64_t n = moka_tensor_count(h.top[t]);
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) s += h.top[t]->data[i];
        const double mean = s / (double)n;
        for (int64_t i = 0; i < n; i++) {
            const double d = h.top[t]->data[i] - mean;
            s2 += d * d;
        }
        const double sd = sqrt(s2 / (double)(n - 1));
        /* n >= 2000: the sample mean is within 0.05 and the sd within 0.05 with near certainty. */
        CHECK(fabs(mean - 2.0) < 0.05);
        CHECK(fabs(sd - 0.5) < 0.05);
    }
    CHECK(h.top[0]->data[0] != h.top[1]->data[0]);
    moka_harness_deinit(&h);
    return 0;
}

static moka_status setup_dummy(moka_harness *h, const char *tops_and_param, moka_err *err)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, "name: 'd' type: 'DummyData' %s", tops_and_param);
    MOKA_TRY(moka_harness_init(h, cfg, MOKA_TRAIN, 1, err));
    return moka_harness_setup(h, err);
}

static int rejects_miscounted_shapes_and_fillers(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(setup_dummy(&h,
                             "top: 'a' top: 'b' top: 'c' dummy_data_param { shape { dim: 1 } "
                             "data_filler { value: 1 } data_filler { value: 2 } }",
                             &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'd': 2 data_filler entries for 3 tops");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_dummy(&h,
                             "top: 'a' top: 'b' top: 'c' dummy_data_param { shape { dim: 1 } "
                             "shape { dim: 2 } }",
                             &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'd': 2 dummy_data_param shapes for 3 tops");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_dummy(&h, "top: 'a'", &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'd'");
    CHECK_CONTAINS(err.msg, "dummy_data_param has no shape");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_dummy(&h,
                             "top: 'a' dummy_data_param { shape { dim: 1 } num: 1 channels: 1 "
                             "height: 1 width: 1 }",
                             &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "gives both shape and the legacy num/channels/height/width");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_dummy(&h,
                             "top: 'a' top: 'b' top: 'c' dummy_data_param { num: 1 num: 2 "
                             "channels: 1 height: 1 width: 1 }",
                             &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "2 'num' value(s) for 3 tops");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_dummy(&h, "top: 'a' dummy_data_param { num: 1 height: 1 width: 1 }", &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "0 'channels' value(s) for 1 tops");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_dummy(&h, "top: 'a' dummy_data_param { shape { dim: 2 dim: -1 } }", &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "dummy data dim -1 is negative");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_dummy(&h, "bottom: 'x' top: 'a' dummy_data_param { shape { dim: 2 } }",
                             &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'd' (DummyData)");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(legacy_dims_and_one_constant_filler_for_all_tops,
               no_filler_means_zeros_every_forward, random_fillers_refill_on_every_forward,
               one_random_filler_for_all_tops, rejects_miscounted_shapes_and_fillers)
