/* tests/layers/test_softmax_loss.c -- SoftmaxWithLoss against F.cross_entropy
 * (tests/ref/gen_softmax_loss.py) in every normalization mode, with ignore_label, axis != 1,
 * the legacy `normalize` flag and the probability top; Caffe's FLT_MIN clamp and all-ignored
 * batches by hand; finite differences; and its shape and label errors. */
#include <float.h>

#include "harness.h"
#include "test.h"

/* Runs fixture softmax_loss_<name> with `params` (loss_param/softmax_param text). */
static int check_fixture(const char *name, const char *params, bool two_tops)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char fxname[128], cfg[512];
    snprintf(fxname, sizeof fxname, "softmax_loss_%s", name);
    snprintf(cfg, sizeof cfg,
             "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'label' top: 'loss' %s %s",
             two_tops ? "top: 'prob'" : "", params);
    CHECK_OK(moka_fixture_load(&fx, fxname, &err));
    const moka_tensor *x = moka_fixture_get(&fx, "x"), *label = moka_fixture_get(&fx, "label");
    const moka_tensor *loss = moka_fixture_get(&fx, "loss"), *w = moka_fixture_get(&fx, "weight");
    const moka_tensor *dx = moka_fixture_get(&fx, "dx"), *prob = moka_fixture_get(&fx, "prob");
    CHECK(x && label && loss && w && dx && prob);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, label->ndim, label->shape, label->data, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK(h.layer->ops->is_loss);
    CHECK_EQ(h.top[0]->ndim, 0); /* a scalar, as Caffe's loss blobs */
    const int64_t n = moka_tensor_count(x);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_NEAR(h.top[0]->data[0], loss->data[0], 1e-5);
    /* The loss weight arrives as the top's gradient; the probability top's gradient is unused. */
    float *dprob = calloc((size_t)n, sizeof(float));
    CHECK(dprob);
    for (int64_t i = 0; i < n; i++) dprob[i] = 1.0f;
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){w->data, dprob}, &err));
    free(dprob);
    CHECK_CLOSE_N(h.bottom[0]->grad, dx->data, n, 1e-5);
    if (two_tops) {
        CHECK_EQ(h.top[1]->ndim, x->ndim);
        for (int d = 0; d < x->ndim; d++) CHECK_EQ(h.top[1]->shape[d], x->shape[d]);
        CHECK_CLOSE_N(h.top[1]->data, prob->data, n, 1e-6);
    }
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

static int matches_pytorch_default_valid(void)
{
    return check_fixture("6x5_valid", "", false);
}

static int matches_pytorch_spatial_ignore_valid(void)
{
    return check_fixture("2x4x3x3_ignore_valid",
                         "loss_param { ignore_label: 255 normalization: VALID }", true);
}

static int matches_pytorch_spatial_ignore_full(void)
{
    return check_fixture("2x4x3x3_ignore_full",
                         "loss_param { ignore_label: 255 normalization: FULL }", true);
}

static int matches_pytorch_spatial_ignore_batch_size(void)
{
    return check_fixture("2x4x3x3_ignore_batch",
                         "loss_param { ignore_label: 255 normalization: BATCH_SIZE }", true);
}

static int matches_pytorch_spatial_ignore_none(void)
{
    return check_fixture("2x4x3x3_ignore_none",
                         "loss_param { ignore_label: 255 normalization: NONE }", true);
}

static int matches_pytorch_axis2(void)
{
    return check_fixture("2x3x5_axis2", "softmax_param { axis: 2 }", true);
}

static int matches_pytorch_negative_axis(void)
{
    return check_fixture("3x4x2x2_axisneg2",
                         "softmax_param { axis: -2 } "
                         "loss_param { ignore_label: 255 normalization: BATCH_SIZE }",
                         false);
}

/* Caffe's legacy flag: normalize true is VALID, false BATCH_SIZE; normalization wins over it. */
static int legacy_normalize_flag(void)
{
    if (check_fixture("2x4x3x3_ignore_valid", "loss_param { ignore_label: 255 normalize: true }",
                      false))
        return 1;
    if (check_fixture("2x4x3x3_ignore_batch",
                      "loss_param { ignore_label: 255 normalize: false }", false))
        return 1;
    return check_fixture("2x4x3x3_ignore_full",
                         "loss_param { ignore_label: 255 normalize: true normalization: FULL }",
                         false);
}

/* A probability that underflows to 0 is clamped at FLT_MIN before the log, as in Caffe, so the
 * loss is -log(FLT_MIN) = 87.3365 rather than the exact 200 or infinity. */
static int log_is_clamped_at_flt_min(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[2] = {0.0f, -200.0f}, label[1] = {1.0f};
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 2), x, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1), label, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_NEAR(h.top[0]->data[0], -log((double)FLT_MIN), 1e-6);
    CHECK(isfinite(h.top[0]->data[0]));
    /* p = (1, 0): dx = p - onehot(1). */
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){(const float[]){1.0f}}, &err));
    const float want[2] = {1.0f, -1.0f};
    CHECK_CLOSE_N(h.bottom[0]->grad, want, 2, 1e-7);
    moka_harness_deinit(&h);
    return 0;
}

/* Every label ignored: the normalizer is max(1, 0) = 1, so loss and gradient are 0, not NaN. */
static int all_ignored_gives_zero(void)
{
    moka_err err = {0};
    moka_harness h;
    const float label[3] = {-1.0f, -1.0f, -1.0f};
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss' loss_param { ignore_label: -1 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3), label, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(h.top[0]->data[0] == 0.0f);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){(const float[]){1.0f}}, &err));
    for (int i = 0; i < 12; i++) CHECK(h.bottom[0]->grad[i] == 0.0f);
    moka_harness_deinit(&h);
    return 0;
}

/* Labels are truncated toward zero as by Caffe's static_cast<int>: 2.9 is class 2. */
static int fractional_labels_truncate(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[3] = {0.1f, 0.2f, 0.3f};
    double e[3], sum = 0;
    for (int i = 0; i < 3; i++) sum += e[i] = exp((double)x[i]);
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 3), x, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1), (const float[]){2.9f}, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_NEAR(h.top[0]->data[0], -log(e[2] / sum), 1e-6);
    moka_harness_deinit(&h);
    return 0;
}

/* A (2, 10, 2000) input with every third label ignored takes the multi-threaded paths; loss and
 * gradient match a plain double-precision computation written here. */
static int large_input_matches_naive_reference(void)
{
    moka_err err = {0};
    moka_harness h;
    enum { O = 2, C = 10, I = 2000 };
    float *label = malloc(sizeof(float) * O * I);
    CHECK(label);
    for (int i = 0; i < O * I; i++) label[i] = i % 3 == 1 ? -1.0f : (float)((i * 31) % C);
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss' loss_param { ignore_label: -1 }",
                               MOKA_TRAIN, 8, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(O, C, I), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(O, I), label, false, &err));
    free(label);
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){(const float[]){1.0f}}, &err));
    const float *x = h.bottom[0]->data, *lab = h.bottom[1]->data, *dx = h.bottom[0]->grad;
    double loss = 0.0;
    int valid = 0;
    for (int i = 0; i < O * I; i++) valid += lab[i] >= 0;
    for (int o = 0; o < O; o++)
        for (int j = 0; j < I; j++) {
            const int y = (int)lab[o * I + j];
            double mx = -INFINITY, sum = 0.0;
            for (int c = 0; c < C; c++) mx = fmax(mx, x[(o * C + c) * I + j]);
            for (int c = 0; c < C; c++) sum += exp(x[(o * C + c) * I + j] - mx);
            for (int c = 0; c < C; c++) {
                const int i = (o * C + c) * I + j;
                const double p = exp(x[i] - mx) / sum;
                CHECK_NEAR(dx[i], y < 0 ? 0.0 : (p - (c == y)) / valid, 1e-6);
                if (c == y) loss -= log(p);
            }
        }
    CHECK_NEAR(h.top[0]->data[0], loss / valid, 1e-6);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    /* Labels for (2, 4, 3, 3): 18 positions, a few ignored (7). */
    float label[18];
    for (int i = 0; i < 18; i++) label[i] = i % 5 == 3 ? 7.0f : (float)(i % 4);
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss' top: 'prob' loss_param { ignore_label: 7 }",
                               MOKA_TRAIN, 5, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4, 3, 3), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 3), label, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    /* Only the loss is differentiated: Caffe sends no gradient back from the probability top. */
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = 0}),
             0);
    moka_harness_deinit(&h);

    /* Softmax along the last axis, FULL normalization. */
    float label2[6] = {0, 4, 2, 1, 3, 0};
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss' softmax_param { axis: -1 } "
                               "loss_param { normalization: FULL }",
                               MOKA_TRAIN, 6, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 5), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), label2, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = 0}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_label_count_mismatch(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4, 3, 3), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'loss' (SoftmaxWithLoss)");
    CHECK_CONTAINS(err.msg, "label (2 3 (6)) must have 18 values");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(4, 5), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "must have the same first dimension");
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_label_out_of_range(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss' loss_param { ignore_label: -1 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3), (const float[]){1, -1, 4}, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'loss' (SoftmaxWithLoss)");
    CHECK_CONTAINS(err.msg, "label 4 at position 2 is outside [0, 4) and is not "
                            "loss_param.ignore_label");
    moka_harness_deinit(&h);

    /* Without ignore_label, -1 is simply out of range; NaN is no class at all. */
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), (const float[]){-1, 0}, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "label -1 at position 0 is outside [0, 4)");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), (const float[]){0, NAN}, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "label nan at position 1 is not a class index");
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_axis_out_of_range(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'loss' type: 'SoftmaxWithLoss' bottom: 'x' bottom: 'y' "
                               "top: 'loss' softmax_param { axis: 2 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "softmax_param.axis 2 is out of range for a 2-D bottom");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_default_valid, matches_pytorch_spatial_ignore_valid,
               matches_pytorch_spatial_ignore_full, matches_pytorch_spatial_ignore_batch_size,
               matches_pytorch_spatial_ignore_none, matches_pytorch_axis2,
               matches_pytorch_negative_axis, legacy_normalize_flag, log_is_clamped_at_flt_min,
               all_ignored_gives_zero, fractional_labels_truncate,
               large_input_matches_naive_reference,
               gradients_match_finite_differences, rejects_label_count_mismatch,
               rejects_label_out_of_range, rejects_axis_out_of_range)
