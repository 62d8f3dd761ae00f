/* tests/layers/test_sigmoid_cross_entropy_loss.c -- SigmoidCrossEntropyLoss against
 * F.binary_cross_entropy_with_logits (tests/ref/gen_sigmoid_cross_entropy_loss.py) in every
 * normalization mode and with ignore_label, Caffe's default and legacy normalization, logits
 * that overflow a naive formula, finite differences, and its shape error. */
#include <omp.h>

#include "harness.h"
#include "test.h"

/* Runs fixture sigmoid_cross_entropy_loss_<name> with `params` (loss_param text). */
static int check_fixture(const char *name, const char *params)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char fxname[128], cfg[512];
    snprintf(fxname, sizeof fxname, "sigmoid_cross_entropy_loss_%s", name);
    snprintf(cfg, sizeof cfg,
             "name: 'xent' type: 'SigmoidCrossEntropyLoss' bottom: 'x' bottom: 't' "
             "top: 'loss' %s", params);
    CHECK_OK(moka_fixture_load(&fx, fxname, &err));
    const moka_tensor *x = moka_fixture_get(&fx, "x"), *t = moka_fixture_get(&fx, "t");
    const moka_tensor *loss = moka_fixture_get(&fx, "loss"), *w = moka_fixture_get(&fx, "weight");
    const moka_tensor *dx = moka_fixture_get(&fx, "dx");
    CHECK(x && t && loss && w && dx);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, t->ndim, t->shape, t->data, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK(h.layer->ops->is_loss);
    CHECK_EQ(h.top[0]->ndim, 0);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK(isfinite(h.top[0]->data[0]));
    CHECK_NEAR(h.top[0]->data[0], loss->data[0], 1e-5);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){w->data}, &err));
    CHECK_CLOSE_N(h.bottom[0]->grad, dx->data, moka_tensor_count(x), 1e-5);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

/* Caffe's default for this layer is BATCH_SIZE (not VALID as for SoftmaxWithLoss). The fixture
 * holds logits of +-120, +95.5 and -88.25, where log(sigmoid) computed naively overflows. */
static int matches_pytorch_default_batch_size_with_extreme_logits(void)
{
    return check_fixture("4x6_batch", "");
}

static int matches_pytorch_ignore_valid(void)
{
    return check_fixture("2x3x4x4_ignore_valid",
                         "loss_param { ignore_label: -1 normalization: VALID }");
}

static int matches_pytorch_ignore_full(void)
{
    return check_fixture("2x3x4x4_ignore_full",
                         "loss_param { ignore_label: -1 normalization: FULL }");
}

static int matches_pytorch_ignore_none(void)
{
    return check_fixture("2x3x4x4_ignore_none",
                         "loss_param { ignore_label: -1 normalization: NONE }");
}

static int matches_pytorch_ignore_default_batch_size(void)
{
    return check_fixture("5x7_batch_ignore", "loss_param { ignore_label: -1 }");
}

/* normalize: true is VALID, false BATCH_SIZE; an explicit normalization wins. */
static int legacy_normalize_flag(void)
{
    if (check_fixture("2x3x4x4_ignore_valid", "loss_param { ignore_label: -1 normalize: true }"))
        return 1;
    if (check_fixture("5x7_batch_ignore", "loss_param { ignore_label: -1 normalize: false }"))
        return 1;
    return check_fixture("2x3x4x4_ignore_full",
                         "loss_param { ignore_label: -1 normalize: false normalization: FULL }");
}

/* Caffe compares static_cast<int>(target) with ignore_label, so with ignore_label 0 every target
 * in (-1, 1) is ignored; only the target 1 counts. Hand-derived: x = 2, t = 1 gives
 * log(1 + exp(-2)), normalized by N = 2. */
static int ignore_label_matches_truncated_targets(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[4] = {0.5f, -1.0f, 3.0f, 2.0f}, t[4] = {0.0f, 0.7f, -0.5f, 1.0f};
    CHECK_OK(moka_harness_init(&h,
                               "name: 'xent' type: 'SigmoidCrossEntropyLoss' bottom: 'x' "
                               "bottom: 't' top: 'loss' loss_param { ignore_label: 0 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2), x, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2), t, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_NEAR(h.top[0]->data[0], log1p(exp(-2.0)) / 2.0, 1e-6);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){(const float[]){1.0f}}, &err));
    const float want[4] = {0, 0, 0, (float)((1.0 / (1.0 + exp(-2.0)) - 1.0) / 2.0)};
    CHECK_CLOSE_N(h.bottom[0]->grad, want, 4, 1e-6);
    moka_harness_deinit(&h);
    return 0;
}

/* 3 x 5000 elements span several fixed-size partial sums: the loss matches a plain double sum
 * and is bit-identical for 1 and 4 threads. */
static int large_input_is_exact_and_thread_count_independent(void)
{
    moka_err err = {0};
    moka_harness h;
    enum { N = 3, K = 5000 };
    float *t = malloc(sizeof(float) * N * K);
    CHECK(t);
    for (int i = 0; i < N * K; i++) t[i] = (float)((i * 7919) % 1000) / 999.0f;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'xent' type: 'SigmoidCrossEntropyLoss' bottom: 'x' "
                               "bottom: 't' top: 'loss'",
                               MOKA_TRAIN, 13, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(N, K), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(N, K), t, false, &err));
    free(t);
    CHECK_OK(moka_harness_setup(&h, &err));
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_OK(moka_harness_forward(&h, &err));
    const float one = h.top[0]->data[0];
    omp_set_num_threads(4);
    CHECK_OK(moka_harness_forward(&h, &err));
    omp_set_num_threads(threads);
    CHECK(one == h.top[0]->data[0]);
    const float *x = h.bottom[0]->data, *tt = h.bottom[1]->data;
    double want = 0.0;
    for (int i = 0; i < N * K; i++) {
        const double p = 1.0 / (1.0 + exp(-(double)x[i]));
        want -= tt[i] * log(p) + (1.0 - tt[i]) * log(1.0 - p);
    }
    CHECK_NEAR(one, want / N, 1e-6);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    float t[24];
    for (int i = 0; i < 24; i++) t[i] = i % 7 == 2 ? -1.0f : (float)((i * 37) % 11) / 10.0f;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'xent' type: 'SigmoidCrossEntropyLoss' bottom: 'x' "
                               "bottom: 't' top: 'loss' "
                               "loss_param { ignore_label: -1 normalization: VALID }",
                               MOKA_TRAIN, 9, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 12), t, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_count_mismatch(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'xent' type: 'SigmoidCrossEntropyLoss' bottom: 'x' "
                               "bottom: 't' top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 6), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 5), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'xent' (SigmoidCrossEntropyLoss)");
    CHECK_CONTAINS(err.msg, "data (2 6 (12)) and targets (2 5 (10)) must have the same count");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'xent' type: 'SigmoidCrossEntropyLoss' bottom: 'x' "
                               "bottom: 't' top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 6), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 4), NULL, false, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "must have the same first dimension");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_default_batch_size_with_extreme_logits,
               matches_pytorch_ignore_valid, matches_pytorch_ignore_full,
               matches_pytorch_ignore_none, matches_pytorch_ignore_default_batch_size,
               legacy_normalize_flag, ignore_label_matches_truncated_targets,
               large_input_is_exact_and_thread_count_independent,
               gradients_match_finite_differences, rejects_count_mismatch)
