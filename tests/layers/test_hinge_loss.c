/* tests/layers/test_hinge_loss.c -- HingeLoss (L1 and L2) against its definition evaluated in
 * PyTorch (tests/ref/gen_hinge_loss.py), a hand-derived case, finite differences, and its label
 * errors. */
#include "harness.h"
#include "test.h"

static int check_fixture(const char *name, const char *norm)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char fxname[128], cfg[256];
    snprintf(fxname, sizeof fxname, "hinge_loss_%s", name);
    snprintf(cfg, sizeof cfg,
             "name: 'hinge' type: 'HingeLoss' bottom: 'x' bottom: 'y' top: 'loss' %s", norm);
    CHECK_OK(moka_fixture_load(&fx, fxname, &err));
    const moka_tensor *x = moka_fixture_get(&fx, "x"), *label = moka_fixture_get(&fx, "label");
    const moka_tensor *loss = moka_fixture_get(&fx, "loss"), *w = moka_fixture_get(&fx, "weight");
    const moka_tensor *dx = moka_fixture_get(&fx, "dx");
    CHECK(x && label && loss && w && dx);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, label->ndim, label->shape, label->data, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK(h.layer->ops->is_loss);
    CHECK_EQ(h.top[0]->ndim, 0);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_NEAR(h.top[0]->data[0], loss->data[0], 1e-6);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){w->data}, &err));
    CHECK_CLOSE_N(h.bottom[0]->grad, dx->data, moka_tensor_count(x), 1e-6);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

static int matches_pytorch_l1_default(void) { return check_fixture("6x5_l1", ""); }
static int matches_pytorch_l1_explicit(void)
{
    return check_fixture("6x5_l1", "hinge_loss_param { norm: L1 }");
}
static int matches_pytorch_l2(void)
{
    return check_fixture("6x5_l2", "hinge_loss_param { norm: L2 }");
}
static int matches_pytorch_4d_l1_weighted(void) { return check_fixture("3x2x2x2_l1", ""); }
static int matches_pytorch_l2_weighted(void)
{
    return check_fixture("4x7_l2", "hinge_loss_param { norm: L2 }");
}

/* One item, scores (0.5, 2, -3), label 1: margins max(0, 1.5), max(0, 1 - 2), max(0, -2) =
 * (1.5, 0, 0). L1 loss 1.5 and gradient (1, 0, 0); L2 loss 2.25 and gradient (3, 0, 0). */
static int hand_derived_margins(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[3] = {0.5f, 2.0f, -3.0f};
    for (int l2 = 0; l2 < 2; l2++) {
        CHECK_OK(moka_harness_init(&h,
                                   l2 ? "name: 'hinge' type: 'HingeLoss' bottom: 'x' bottom: 'y' "
                                        "top: 'loss' hinge_loss_param { norm: L2 }"
                                      : "name: 'hinge' type: 'HingeLoss' bottom: 'x' bottom: 'y' "
                                        "top: 'loss'",
                                   MOKA_TRAIN, 1, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 3), x, true, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1), (const float[]){1}, false, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_OK(moka_harness_forward(&h, &err));
        CHECK_NEAR(h.top[0]->data[0], l2 ? 2.25 : 1.5, 1e-7);
        CHECK_OK(moka_harness_backward(&h, (const float *const[]){(const float[]){1.0f}}, &err));
        const float want[3] = {l2 ? 3.0f : 1.0f, 0.0f, 0.0f};
        CHECK_CLOSE_N(h.bottom[0]->grad, want, 3, 1e-7);
        moka_harness_deinit(&h);
    }
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    const float label[4] = {0, 3, 5, 2};
    for (int l2 = 0; l2 < 2; l2++) {
        CHECK_OK(moka_harness_init(&h,
                                   l2 ? "name: 'hinge' type: 'HingeLoss' bottom: 'x' bottom: 'y' "
                                        "top: 'loss' hinge_loss_param { norm: L2 }"
                                      : "name: 'hinge' type: 'HingeLoss' bottom: 'x' bottom: 'y' "
                                        "top: 'loss'",
                                   MOKA_TRAIN, 21, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(4, 6), NULL, true, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(4), label, false, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-3, .rel_tol = 1e-3,
                                                          .top_index = -1}),
                 0);
        moka_harness_deinit(&h);
    }
    return 0;
}

static int rejects_bad_labels(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'hinge' type: 'HingeLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), (const float[]){3, 4}, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'hinge' (HingeLoss)");
    CHECK_CONTAINS(err.msg, "label 4 of item 1 is outside [0, 4)");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'hinge' type: 'HingeLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "label (2 2 (4)) must hold one value per item of the data (2 4 (8))");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_l1_default, matches_pytorch_l1_explicit, matches_pytorch_l2,
               matches_pytorch_4d_l1_weighted, matches_pytorch_l2_weighted, hand_derived_margins,
               gradients_match_finite_differences, rejects_bad_labels)
