/* tests/layers/test_lrn.c -- LRN against fixtures (tests/ref/gen_lrn.py: torch
 * local_response_norm for ACROSS_CHANNELS, Caffe's composition written out for WITHIN_CHANNEL),
 * a hand-computed value, finite differences, and the configuration and shape errors. */
#include "harness.h"
#include "moka/log.h"
#include "test.h"

#define LRN(body) "name: 'n' type: 'LRN' bottom: 'x' top: 'y' lrn_param { " body " }"

static int matches_reference(void)
{
    static const struct {
        const char *name, *cfg;
    } cases[] = {
        {"lrn_across5", LRN("local_size: 5 alpha: 0.3 beta: 0.75 k: 2")},
        {"lrn_across3", LRN("local_size: 3 alpha: 0.5 beta: 0.6 norm_region: ACROSS_CHANNELS")},
        {"lrn_within3", LRN("local_size: 3 alpha: 0.4 norm_region: WITHIN_CHANNEL")},
        {"lrn_within5", LRN("local_size: 5 alpha: 0.8 beta: 1.3 norm_region: WITHIN_CHANNEL")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (moka_harness_check_io_fixture(cases[i].cfg, cases[i].name, 1e-5, NULL)) {
            fprintf(stderr, "case %s\n", cases[i].name);
            return 1;
        }
    return 0;
}

/* One pixel, three channels 1, 2, 3, local_size 3, alpha 3, beta 1, k 1: channel 0 sees
 * 1 + 4 = 5 -> scale 1 + 5 = 6, channel 1 sees 14 -> 15, channel 2 sees 13 -> 14. */
static int matches_a_hand_computed_value(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x[3] = {1, 2, 3};
    CHECK_OK(moka_harness_init(&h, LRN("local_size: 3 alpha: 3 beta: 1"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 3, 1, 1), x, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_NEAR(h.top[0]->data[0], 1.0 / 6.0, 1e-6);
    CHECK_NEAR(h.top[0]->data[1], 2.0 / 15.0, 1e-6);
    CHECK_NEAR(h.top[0]->data[2], 3.0 / 14.0, 1e-6);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    static const char *const cfgs[] = {
        LRN("local_size: 5 alpha: 0.5 beta: 0.75 k: 1.5"),
        LRN("local_size: 3 alpha: 1.0 beta: 0.4"),
        LRN("local_size: 3 alpha: 0.6 norm_region: WITHIN_CHANNEL"),
        LRN("local_size: 5 alpha: 1.2 beta: 1.1 norm_region: WITHIN_CHANNEL"),
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        moka_err err = {0};
        moka_harness h;
        CHECK_OK(moka_harness_init(&h, cfgs[i], MOKA_TRAIN, 3 + i, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 6, 4, 5), NULL, true, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                          .top_index = -1}),
                 0);
        moka_harness_deinit(&h);
    }
    return 0;
}

static char logged[512];

static void capture(moka_log_level level, const char *src, const char *msg, void *user)
{
    (void)src;
    (void)user;
    if (level == MOKA_LOG_WARN) snprintf(logged, sizeof logged, "%s", msg);
}

/* Caffe's WITHIN_CHANNEL adds 1 whatever k says; moka matches it and says so. */
static int within_channel_ignores_k_with_a_warning(void)
{
    moka_log_set(capture, NULL, MOKA_LOG_DEBUG);
    logged[0] = '\0';
    const int r = moka_harness_check_io_fixture(
        LRN("local_size: 3 alpha: 0.4 k: 2 norm_region: WITHIN_CHANNEL"), "lrn_within3", 1e-5,
        NULL);
    moka_log_set(NULL, NULL, MOKA_LOG_INFO);
    CHECK_EQ(r, 0);
    CHECK_CONTAINS(logged, "layer 'n' (LRN): k = 2 has no effect");
    logged[0] = '\0';
    moka_log_set(capture, NULL, MOKA_LOG_DEBUG);
    const int r2 = moka_harness_check_io_fixture(LRN("local_size: 5 alpha: 0.3 beta: 0.75 k: 2"),
                                                 "lrn_across5", 1e-5, NULL);
    moka_log_set(NULL, NULL, MOKA_LOG_INFO);
    CHECK_EQ(r2, 0);
    CHECK_EQ(logged[0], '\0');
    return 0;
}

static int rejects_even_sizes_and_non_4d_input(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, LRN("local_size: 4"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(1, 6, 3, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'n'");
    CHECK_CONTAINS(err.msg, "local_size must be odd, got 4");
    CHECK_CONTAINS(err.msg, "<harness>:1:");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h, LRN("local_size: 3"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 6, 9), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'n'");
    CHECK_CONTAINS(err.msg, "input must be 4-D");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_reference, matches_a_hand_computed_value,
               gradients_match_finite_differences, within_channel_ignores_k_with_a_warning,
               rejects_even_sizes_and_non_4d_input)
