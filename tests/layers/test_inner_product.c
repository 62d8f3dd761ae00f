/* tests/layers/test_inner_product.c -- InnerProduct against torch linear fixtures
 * (tests/ref/gen_inner_product.py): flattening from axis 1 and axis 2, transpose, no bias;
 * finite differences; and the configuration and shape errors. */
#include "harness.h"
#include "test.h"

#define IP(body)                                                                                   \
    "name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'y' inner_product_param { " body " }"

static int matches_pytorch(void)
{
    static const struct {
        const char *name, *cfg;
    } cases[] = {
        {"inner_product_basic", IP("num_output: 7")},
        {"inner_product_transpose", IP("num_output: 4 bias_term: false transpose: true")},
        {"inner_product_axis2", IP("num_output: 5 axis: 2")},
        {"inner_product_axis2", IP("num_output: 5 axis: -2")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (moka_harness_check_io_fixture(cases[i].cfg, cases[i].name, 1e-5, NULL)) {
            fprintf(stderr, "case %s: %s\n", cases[i].name, cases[i].cfg);
            return 1;
        }
    return 0;
}

static int gradients_match_finite_differences(void)
{
    static const char *const cfgs[] = {
        IP("num_output: 5 weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' }"),
        IP("num_output: 3 transpose: true weight_filler { type: 'xavier' } "
           "bias_filler { type: 'uniform' }"),
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        moka_err err = {0};
        moka_harness h;
        CHECK_OK(moka_harness_init(&h, cfgs[i], MOKA_TRAIN, 3 + i, &err));
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3, 2, 2, 3), NULL, true, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                          .top_index = -1}),
                 0);
        moka_harness_deinit(&h);
    }
    return 0;
}

static int rejects_bad_configs_and_shapes(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h, IP("num_output: 0"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'ip'");
    CHECK_CONTAINS(err.msg, "num_output must be positive, got 0");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h, IP("bias_term: false"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "num_output must be given");
    moka_harness_deinit(&h);

    CHECK_OK(moka_harness_init(&h, IP("num_output: 2 axis: 3"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "axis 3 is out of range for a 3-D input");
    moka_harness_deinit(&h);

    /* A later input with another row length does not fit the weights. */
    CHECK_OK(moka_harness_init(&h, IP("num_output: 2"), MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 4), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.top[0]->ndim, 2);
    CHECK_EQ(h.top[0]->shape[1], 2);
    h.bottom[0]->shape[2] = 2;
    h.bottom[0]->shape[0] = 4; /* same count, 6 values per row */
    CHECK_STATUS(h.layer->ops->reshape(h.layer, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "has 6 values per row from axis 1, the weights were made for 12");
    h.bottom[0]->shape[0] = 2;
    h.bottom[0]->shape[2] = 4;
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, gradients_match_finite_differences, rejects_bad_configs_and_shapes)
