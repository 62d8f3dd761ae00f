/* tests/solvers/test_regularize.c -- weight decay (L2, L1), iter_size normalization and global
 * gradient clipping over slots of a flat block, against values worked out by hand.
 */
#include <stdlib.h>

#include "solvers/update.h"
#include "test.h"

static moka_solver_hparams hparams(void)
{
    return (moka_solver_hparams){.type = "SGD", .lr_policy = "fixed", .base_lr = 0.1f,
                                 .iter_size = 1, .clip_gradients = -1.0f};
}

static int l2_adds_decay_times_weight(void)
{
    moka_solver_hparams hp = hparams();
    hp.weight_decay = 0.01f;
    /* The slot covers elements 1..3 of the block; 0 and 4 belong to other slots. */
    const float data[5] = {100.0f, 2.0f, -4.0f, 0.0f, 100.0f};
    float diff[5] = {7.0f, 1.0f, 1.0f, -1.0f, 7.0f};
    const moka_param_slot s = {.offset = 1, .count = 3, .lr_mult = 1.0f, .decay_mult = 2.0f};
    moka_update_regularize(&hp, &s, data, diff);
    const float want[5] = {7.0f, 1.04f, 0.92f, -1.0f, 7.0f}; /* 0.02 * w added */
    CHECK_CLOSE_N(diff, want, 5, 1e-6);
    return 0;
}

static int l1_adds_decay_times_sign_with_sign_of_zero_zero(void)
{
    moka_solver_hparams hp = hparams();
    hp.weight_decay = 0.5f;
    hp.l1 = true;
    const float data[4] = {3.0f, -0.001f, 0.0f, -0.0f};
    float diff[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    const moka_param_slot s = {.offset = 0, .count = 4, .lr_mult = 1.0f, .decay_mult = 1.0f};
    moka_update_regularize(&hp, &s, data, diff);
    const float want[4] = {1.5f, 0.5f, 1.0f, 1.0f};
    CHECK_CLOSE_N(diff, want, 4, 1e-7);
    return 0;
}

static int zero_decay_leaves_the_gradient_alone(void)
{
    moka_solver_hparams hp = hparams();
    hp.weight_decay = 0.01f;
    const float data[2] = {5.0f, -5.0f};
    float diff[2] = {0.25f, 0.5f};
    const moka_param_slot s = {.offset = 0, .count = 2, .lr_mult = 1.0f, .decay_mult = 0.0f};
    moka_update_regularize(&hp, &s, data, diff);
    CHECK(diff[0] == 0.25f && diff[1] == 0.5f);
    hp.weight_decay = 0.0f;
    hp.l1 = true;
    const moka_param_slot s1 = {.offset = 0, .count = 2, .lr_mult = 1.0f, .decay_mult = 1.0f};
    moka_update_regularize(&hp, &s1, data, diff);
    CHECK(diff[0] == 0.25f && diff[1] == 0.5f);
    return 0;
}

static int normalize_divides_by_iter_size(void)
{
    moka_solver_hparams hp = hparams();
    float diff[4] = {4.0f, -2.0f, 1.0f, 8.0f};
    const moka_param_slot s = {.offset = 1, .count = 2, .lr_mult = 1.0f, .decay_mult = 1.0f};
    moka_update_normalize(&hp, &s, diff); /* iter_size 1: nothing */
    const float same[4] = {4.0f, -2.0f, 1.0f, 8.0f};
    CHECK_CLOSE_N(diff, same, 4, 0.0);
    hp.iter_size = 4;
    moka_update_normalize(&hp, &s, diff);
    const float want[4] = {4.0f, -0.5f, 0.25f, 8.0f};
    CHECK_CLOSE_N(diff, want, 4, 0.0);
    return 0;
}

/* Two slots with a gap between them: slot A = {3, 4}, slot B = {12}; global norm 13. */
static int clip_scales_all_slots_by_the_global_norm(void)
{
    moka_solver_hparams hp = hparams();
    const moka_param_slot slots[2] = {{.offset = 0, .count = 2, .lr_mult = 1, .decay_mult = 1},
                                      {.offset = 3, .count = 1, .lr_mult = 1, .decay_mult = 1}};
    float diff[4] = {3.0f, 4.0f, 99.0f, 12.0f};

    /* Off (the schema default -1): untouched, returns 0. */
    CHECK_NEAR(moka_update_clip(&hp, slots, 2, diff), 0.0, 0.0);
    const float orig[4] = {3.0f, 4.0f, 99.0f, 12.0f};
    CHECK_CLOSE_N(diff, orig, 4, 0.0);

    /* Under the threshold: untouched, returns the norm. */
    hp.clip_gradients = 20.0f;
    CHECK_NEAR(moka_update_clip(&hp, slots, 2, diff), 13.0, 1e-12);
    CHECK_CLOSE_N(diff, orig, 4, 0.0);

    /* Over it: everything halves; the element outside the slots does not. */
    hp.clip_gradients = 6.5f;
    CHECK_NEAR(moka_update_clip(&hp, slots, 2, diff), 13.0, 1e-12);
    const float half[4] = {1.5f, 2.0f, 99.0f, 6.0f};
    CHECK_CLOSE_N(diff, half, 4, 1e-7);

    /* Caffe clips at 0 too (only a negative value turns it off). */
    hp.clip_gradients = 0.0f;
    CHECK_NEAR(moka_update_clip(&hp, slots, 2, diff), 6.5, 1e-12);
    const float zero[4] = {0.0f, 0.0f, 99.0f, 0.0f};
    CHECK_CLOSE_N(diff, zero, 4, 0.0);
    return 0;
}

/* A block long enough for the chunked, parallel sum: the norm is exact to double rounding. */
static int clip_norm_of_a_large_block(void)
{
    const int64_t n = 5 * MOKA_UPDATE_OMP_MIN + 3;
    float *diff = malloc((size_t)n * sizeof(float));
    CHECK(diff != NULL);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diff[i] = (float)((i % 7) - 3) * 0.5f; /* exact in float */
        sum += (double)diff[i] * diff[i];
    }
    moka_solver_hparams hp = hparams();
    hp.clip_gradients = 1.0f;
    const moka_param_slot s = {.offset = 0, .count = n, .lr_mult = 1.0f, .decay_mult = 1.0f};
    const double norm = moka_update_clip(&hp, &s, 1, diff);
    int bad = fabs(norm - sqrt(sum)) > 1e-9 * sqrt(sum);
    double after = 0.0;
    for (int64_t i = 0; i < n; i++) after += (double)diff[i] * diff[i];
    bad |= fabs(sqrt(after) - 1.0) > 1e-5;
    free(diff);
    CHECK(!bad);
    return 0;
}

MOKA_TEST_MAIN(l2_adds_decay_times_weight, l1_adds_decay_times_sign_with_sign_of_zero_zero,
               zero_decay_leaves_the_gradient_alone, normalize_divides_by_iter_size,
               clip_scales_all_slots_by_the_global_norm, clip_norm_of_a_large_block)
