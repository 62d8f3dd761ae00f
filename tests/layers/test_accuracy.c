/* tests/layers/test_accuracy.c -- Accuracy against torch.topk (tests/ref/gen_accuracy.py) with
 * top_k, ignore_label, axis != 1 and the per-class top; Caffe's tie rule by hand; and its
 * configuration and label errors. */
#include "harness.h"
#include "test.h"

static int check_fixture(const char *name, const char *params, bool per_class)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char fxname[128], cfg[512];
    snprintf(fxname, sizeof fxname, "accuracy_%s", name);
    snprintf(cfg, sizeof cfg,
             "name: 'acc' type: 'Accuracy' bottom: 'x' bottom: 'y' top: 'acc' %s %s",
             per_class ? "top: 'per_class'" : "", params);
    CHECK_OK(moka_fixture_load(&fx, fxname, &err));
    const moka_tensor *x = moka_fixture_get(&fx, "x"), *label = moka_fixture_get(&fx, "label");
    const moka_tensor *acc = moka_fixture_get(&fx, "accuracy");
    const moka_tensor *pc = moka_fixture_get(&fx, "per_class");
    CHECK(x && label && acc && pc);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, false, &err));
    CHECK_OK(moka_harness_add_bottom(&h, label->ndim, label->shape, label->data, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK(!h.layer->ops->is_loss);
    CHECK(h.layer->ops->backward_cpu == NULL);
    CHECK_EQ(h.top[0]->ndim, 0);
    CHECK_OK(moka_harness_forward(&h, &err));
    /* A ratio of small integers: exact up to float rounding. */
    CHECK_NEAR(h.top[0]->data[0], acc->data[0], 1e-7);
    if (per_class) {
        CHECK_EQ(h.top[1]->ndim, 1);
        CHECK_EQ(h.top[1]->shape[0], pc->shape[0]);
        CHECK_CLOSE_N(h.top[1]->data, pc->data, pc->shape[0], 1e-7);
    }
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

static int matches_pytorch_top1(void) { return check_fixture("20x6_top1", "", true); }
static int matches_pytorch_top3_ignore(void)
{
    return check_fixture("20x6_top3_ignore", "accuracy_param { top_k: 3 ignore_label: -1 }",
                         true);
}
static int matches_pytorch_spatial_ignore(void)
{
    return check_fixture("2x5x3x4_top1_ignore", "accuracy_param { ignore_label: -1 }", true);
}
static int matches_pytorch_axis2_top2(void)
{
    return check_fixture("4x3x7_axis2_top2", "accuracy_param { axis: 2 top_k: 2 }", true);
}
static int matches_pytorch_negative_axis(void)
{
    return check_fixture("6x9_axisneg1_top1", "accuracy_param { axis: -1 }", false);
}

/* Caffe counts every score >= the true class's against it, so a tie at the top is wrong for
 * top_k 1 and right for top_k 2. Classes never labelled get per-class accuracy 0. */
static int ties_count_against_the_label(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[6] = {0.5f, 0.5f, 0.1f, 0.2f, 0.9f, 0.9f};
    const float label[2] = {0, 2};
    for (int k = 1; k <= 2; k++) {
        char cfg[256];
        snprintf(cfg, sizeof cfg,
                 "name: 'acc' type: 'Accuracy' bottom: 'x' bottom: 'y' top: 'acc' top: 'pc' "
                 "accuracy_param { top_k: %d }", k);
        CHECK_OK(moka_harness_init(&h, cfg, MOKA_TEST, 1, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), x, false, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), label, false, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_OK(moka_harness_forward(&h, &err));
        CHECK_NEAR(h.top[0]->data[0], k == 1 ? 0.0 : 1.0, 0);
        const float want[3] = {k == 1 ? 0.0f : 1.0f, 0.0f, k == 1 ? 0.0f : 1.0f};
        CHECK_CLOSE_N(h.top[1]->data, want, 3, 0.0);
        moka_harness_deinit(&h);
    }
    return 0;
}

/* All positions ignored: accuracy 0, as Caffe reports, not NaN. */
static int all_ignored_gives_zero(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'acc' type: 'Accuracy' bottom: 'x' bottom: 'y' top: 'acc' "
                               "accuracy_param { ignore_label: 9 }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, false, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), (const float[]){9, 9}, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(h.top[0]->data[0] == 0.0f);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_bad_config_and_labels(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'acc' type: 'Accuracy' bottom: 'x' bottom: 'y' top: 'acc' "
                               "accuracy_param { top_k: 4 }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, false, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'acc': accuracy_param.top_k 4 is more than the 3 classes");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'acc' type: 'Accuracy' bottom: 'x' bottom: 'y' top: 'acc' "
                               "accuracy_param { top_k: 0 }",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, false, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "accuracy_param.top_k must be at least 1, got 0");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'acc' type: 'Accuracy' bottom: 'x' bottom: 'y' top: 'acc'",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 2), NULL, false, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'acc' (Accuracy)");
    CHECK_CONTAINS(err.msg, "label (2 (2)) must have 4 values");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'acc' type: 'Accuracy' bottom: 'x' bottom: 'y' top: 'acc'",
                               MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, false, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), (const float[]){0, 3}, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "label 3 at position 1 is outside [0, 3)");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_top1, matches_pytorch_top3_ignore, matches_pytorch_spatial_ignore,
               matches_pytorch_axis2_top2, matches_pytorch_negative_axis,
               ties_count_against_the_label, all_ignored_gives_zero,
               rejects_bad_config_and_labels)
