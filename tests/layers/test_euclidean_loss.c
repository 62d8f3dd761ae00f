/* tests/layers/test_euclidean_loss.c -- EuclideanLoss against sum((a - b)^2) / (2N) in PyTorch
 * (tests/ref/gen_euclidean_loss.py) with gradients for both inputs and differently shaped
 * inputs of equal per-item count, finite differences, and its shape errors. */
#include <omp.h>

#include "harness.h"
#include "test.h"

static int check_fixture(const char *name)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char fxname[128];
    snprintf(fxname, sizeof fxname, "euclidean_loss_%s", name);
    CHECK_OK(moka_fixture_load(&fx, fxname, &err));
    const moka_tensor *a = moka_fixture_get(&fx, "a"), *b = moka_fixture_get(&fx, "b");
    const moka_tensor *loss = moka_fixture_get(&fx, "loss"), *w = moka_fixture_get(&fx, "weight");
    const moka_tensor *da = moka_fixture_get(&fx, "da"), *db = moka_fixture_get(&fx, "db");
    CHECK(a && b && loss && w && da && db);
    CHECK_OK(moka_harness_init(&h,
                               "name: 'l2' type: 'EuclideanLoss' bottom: 'a' bottom: 'b' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, a->ndim, a->shape, a->data, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, b->ndim, b->shape, b->data, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK(h.layer->ops->is_loss);
    CHECK_EQ(h.top[0]->ndim, 0);
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_NEAR(h.top[0]->data[0], loss->data[0], 1e-6);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){w->data}, &err));
    CHECK_CLOSE_N(h.bottom[0]->grad, da->data, moka_tensor_count(a), 1e-6);
    CHECK_CLOSE_N(h.bottom[1]->grad, db->data, moka_tensor_count(b), 1e-6);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

static int matches_pytorch_2d(void) { return check_fixture("4x10"); }
static int matches_pytorch_different_shapes(void) { return check_fixture("3x12_vs_3x1x3x4"); }
static int matches_pytorch_4d_weighted(void) { return check_fixture("2x3x4x5"); }

/* Only the bottoms that need a gradient get one, and backward adds into it. */
static int backward_respects_propagate_down_and_adds(void)
{
    moka_err err = {0};
    moka_harness h;
    const float a[4] = {1, 2, 3, 4}, b[4] = {0, 0, 1, 1};
    CHECK_OK(moka_harness_init(&h,
                               "name: 'l2' type: 'EuclideanLoss' bottom: 'a' bottom: 'b' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2), a, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 2), b, false, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    /* (1 + 4 + 4 + 9) / (2 * 2) */
    CHECK_NEAR(h.top[0]->data[0], 4.5, 1e-7);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){(const float[]){1.0f}}, &err));
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    const float want[4] = {1.0f, 2.0f, 2.0f, 3.0f}; /* twice (a - b) / N */
    CHECK_CLOSE_N(h.bottom[0]->grad, want, 4, 1e-7);
    for (int i = 0; i < 4; i++) CHECK(h.bottom[1]->grad[i] == 0.0f);
    moka_harness_deinit(&h);
    return 0;
}

/* 4 x 6000 elements span several fixed-size partial sums: the loss matches a plain double sum
 * and is bit-identical for 1 and 4 threads. */
static int large_input_is_exact_and_thread_count_independent(void)
{
    moka_err err = {0};
    moka_harness h;
    enum { N = 4, K = 6000 };
    CHECK_OK(moka_harness_init(&h,
                               "name: 'l2' type: 'EuclideanLoss' bottom: 'a' bottom: 'b' "
                               "top: 'loss'",
                               MOKA_TRAIN, 17, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(N, K), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(N, K), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_OK(moka_harness_forward(&h, &err));
    const float one = h.top[0]->data[0];
    omp_set_num_threads(4);
    CHECK_OK(moka_harness_forward(&h, &err));
    omp_set_num_threads(threads);
    CHECK(one == h.top[0]->data[0]);
    const float *a = h.bottom[0]->data, *b = h.bottom[1]->data;
    double want = 0.0;
    for (int i = 0; i < N * K; i++) want += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    CHECK_NEAR(one, want / N / 2, 1e-6);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'l2' type: 'EuclideanLoss' bottom: 'a' bottom: 'b' "
                               "top: 'loss'",
                               MOKA_TRAIN, 4, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 2, 5), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 10), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_mismatched_inputs(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'l2' type: 'EuclideanLoss' bottom: 'a' bottom: 'b' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 10), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 9), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'l2' (EuclideanLoss)");
    CHECK_CONTAINS(err.msg,
                   "bottoms (3 10 (30)) and (3 9 (27)) must have the same count per item");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h,
                               "name: 'l2' type: 'EuclideanLoss' bottom: 'a' bottom: 'b' "
                               "top: 'loss'",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 6), NULL, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 4), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg,
                   "bottoms (2 6 (12)) and (3 4 (12)) must have the same first dimension");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_2d, matches_pytorch_different_shapes, matches_pytorch_4d_weighted,
               backward_respects_propagate_down_and_adds,
               large_input_is_exact_and_thread_count_independent,
               gradients_match_finite_differences,
               rejects_mismatched_inputs)
