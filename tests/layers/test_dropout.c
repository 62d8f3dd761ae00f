/* tests/layers/test_dropout.c -- Dropout: the share of kept elements, the exact 1 / (1 - p)
 * scale, the same mask for the same seed (and for any thread count), a new mask each forward,
 * TEST-phase identity, in place, finite differences, and ratio errors. */
#include <omp.h>

#include "harness.h"
#include "test.h"

#define DROP(ratio) "name: 'd' type: 'Dropout' bottom: 'x' top: 'y' " \
    "dropout_param { dropout_ratio: " ratio " }"
#define DROP_IN_PLACE(ratio) "name: 'd' type: 'Dropout' bottom: 'x' top: 'x' " \
    "dropout_param { dropout_ratio: " ratio " }"

/* 100000 inputs, all nonzero, so y == 0 means dropped. Large enough for the threaded path. */
#define N_BIG 100000

static float *big_input(void)
{
    float *x = malloc(N_BIG * sizeof *x);
    if (x)
        for (int i = 0; i < N_BIG; i++) x[i] = (float)(i % 17 + 1) * ((i & 1) ? 0.37f : -0.53f);
    return x;
}

static int setup_big(moka_harness *h, const char *cfg, moka_phase phase, uint64_t seed,
                     const float *x)
{
    moka_err err = {0};
    CHECK_OK(moka_harness_init(h, cfg, phase, seed, &err));
    CHECK_OK(moka_harness_add_bottom(h, MOKA_SHAPE(100, 1000), x, true, &err));
    CHECK_OK(moka_harness_setup(h, &err));
    return 0;
}

/* p = 0.3: about 70% kept (5 standard deviations: 0.7 +- 0.0073), each kept y exactly
 * x * (1 / (1 - p)) in float as Caffe computes it, and backward passes dy through the same
 * mask with the same scale. */
static int keeps_the_right_share_with_the_exact_scale(void)
{
    moka_err err = {0};
    moka_harness h;
    float *x = big_input(), *dy = malloc(N_BIG * sizeof *dy);
    CHECK(x && dy);
    CHECK(!setup_big(&h, DROP("0.3"), MOKA_TRAIN, 7, x));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float scale = 1.0f / (1.0f - 0.3f);
    int64_t kept = 0;
    for (int i = 0; i < N_BIG; i++) {
        const float y = h.top[0]->data[i];
        if (y != 0.0f) {
            CHECK(y == x[i] * scale);
            kept++;
        }
        dy[i] = (float)(i % 5) - 2.5f;
    }
    CHECK(fabs((double)kept / N_BIG - 0.7) < 0.0073);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    for (int i = 0; i < N_BIG; i++)
        CHECK(h.bottom[0]->grad[i] == (h.top[0]->data[i] != 0.0f ? dy[i] * scale : 0.0f));
    moka_harness_deinit(&h);
    /* A different ratio changes the share: p = 0.8 keeps about 20%. */
    CHECK(!setup_big(&h, DROP("0.8"), MOKA_TRAIN, 7, x));
    CHECK_OK(moka_harness_forward(&h, &err));
    kept = 0;
    for (int i = 0; i < N_BIG; i++) kept += h.top[0]->data[i] != 0.0f;
    CHECK(fabs((double)kept / N_BIG - 0.2) < 0.0064);
    moka_harness_deinit(&h);
    free(x);
    free(dy);
    return 0;
}

/* The mask is a function of the seed and layer name only: same seed, same mask, whatever the
 * thread count; another seed, another mask; and each forward draws a fresh one. */
static int same_seed_same_mask(void)
{
    moka_err err = {0};
    moka_harness a, b, c;
    float *x = big_input(), *first = malloc(N_BIG * sizeof *first);
    CHECK(x && first);
    CHECK(!setup_big(&a, DROP("0.5"), MOKA_TRAIN, 11, x));
    CHECK(!setup_big(&b, DROP("0.5"), MOKA_TRAIN, 11, x));
    CHECK(!setup_big(&c, DROP("0.5"), MOKA_TRAIN, 12, x));
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_OK(moka_harness_forward(&a, &err));
    omp_set_num_threads(threads > 1 ? threads : 2);
    CHECK_OK(moka_harness_forward(&b, &err));
    CHECK_OK(moka_harness_forward(&c, &err));
    omp_set_num_threads(threads);
    CHECK(memcmp(a.top[0]->data, b.top[0]->data, N_BIG * sizeof(float)) == 0);
    int64_t differ = 0;
    for (int i = 0; i < N_BIG; i++) differ += a.top[0]->data[i] != c.top[0]->data[i];
    CHECK(differ > N_BIG / 4); /* independent masks differ in about half the places */
    /* Forward again without the harness resetting the stream: a new mask. */
    memcpy(first, a.top[0]->data, N_BIG * sizeof(float));
    CHECK_OK(a.layer->ops->forward_cpu(a.layer, &err));
    differ = 0;
    for (int i = 0; i < N_BIG; i++) differ += a.top[0]->data[i] != first[i];
    CHECK(differ > N_BIG / 4);
    moka_harness_deinit(&a);
    moka_harness_deinit(&b);
    moka_harness_deinit(&c);
    free(x);
    free(first);
    return 0;
}

/* In place: the same seed and name give the same mask, so y and dx match out of place. */
static int in_place_matches_out_of_place(void)
{
    moka_err err = {0};
    moka_harness a, b;
    float *x = big_input(), *dy = malloc(N_BIG * sizeof *dy);
    CHECK(x && dy);
    for (int i = 0; i < N_BIG; i++) dy[i] = (float)(i % 3) + 0.5f;
    CHECK(!setup_big(&a, DROP("0.4"), MOKA_TRAIN, 5, x));
    CHECK(!setup_big(&b, DROP_IN_PLACE("0.4"), MOKA_TRAIN, 5, x));
    CHECK(b.top[0]->data == b.bottom[0]->data);
    CHECK_OK(moka_harness_forward(&a, &err));
    CHECK_OK(moka_harness_forward(&b, &err));
    CHECK(memcmp(a.top[0]->data, b.top[0]->data, N_BIG * sizeof(float)) == 0);
    CHECK_OK(moka_harness_backward(&a, (const float *const[]){dy}, &err));
    CHECK_OK(moka_harness_backward(&b, (const float *const[]){dy}, &err));
    CHECK(memcmp(a.bottom[0]->grad, b.bottom[0]->grad, N_BIG * sizeof(float)) == 0);
    moka_harness_deinit(&a);
    moka_harness_deinit(&b);
    free(x);
    free(dy);
    return 0;
}

/* TEST phase, and p = 0 in TRAIN: y = x and dx = dy exactly (backward adds, so twice is 2 dy). */
static int identity_in_test_phase_and_at_ratio_zero(void)
{
    moka_err err = {0};
    moka_harness h;
    float *x = big_input(), *dy = malloc(N_BIG * sizeof *dy);
    CHECK(x && dy);
    for (int i = 0; i < N_BIG; i++) dy[i] = (float)(i % 9) - 4.25f;
    const char *const cfgs[] = {DROP("0.5"), DROP_IN_PLACE("0.5"), DROP("0")};
    const moka_phase phases[] = {MOKA_TEST, MOKA_TEST, MOKA_TRAIN};
    for (int k = 0; k < 3; k++) {
        CHECK(!setup_big(&h, cfgs[k], phases[k], 3, x));
        CHECK_OK(moka_harness_forward(&h, &err));
        CHECK(memcmp(h.top[0]->data, x, N_BIG * sizeof(float)) == 0);
        CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
        CHECK(memcmp(h.bottom[0]->grad, dy, N_BIG * sizeof(float)) == 0);
        CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
        for (int i = 0; i < N_BIG; i++) CHECK(h.bottom[0]->grad[i] == 2.0f * dy[i]);
        moka_harness_deinit(&h);
    }
    free(x);
    free(dy);
    return 0;
}

/* The harness replays the same mask on every forward, so y is linear in x and checkable. */
static int gradients_match_finite_differences(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, DROP("0.5"), MOKA_TRAIN, 2, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4, 5), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3}), 0);
    moka_harness_deinit(&h);
    return 0;
}

static int rejects_ratios_outside_0_to_1(void)
{
    moka_err err = {0};
    moka_harness h;
    const char *const bad[] = {DROP("1"), DROP("1.5"), DROP("-0.1")};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(moka_harness_init(&h, bad[i], MOKA_TRAIN, 1, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
        CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
        CHECK_CONTAINS(err.msg, "<harness>:1:");
        CHECK_CONTAINS(err.msg, "layer 'd': dropout_ratio must be in [0, 1), got");
        moka_harness_deinit(&h);
    }
    return 0;
}

MOKA_TEST_MAIN(keeps_the_right_share_with_the_exact_scale, same_seed_same_mask,
               in_place_matches_out_of_place, identity_in_test_phase_and_at_ratio_zero,
               gradients_match_finite_differences, rejects_ratios_outside_0_to_1)
