/* tests/layers/test_inner_product.c -- InnerProduct against torch linear fixtures
 * (tests/ref/gen_inner_product.py): flattening from axis 1 and axis 2, transpose, no bias;
 * finite differences; and the configuration and shape errors. */
#include "harness.h"
#include "test.h"

static const moka_tensor *fx_opt(const moka_fixture *fx, const char *key)
{
    for (int i = 0; i < fx->count; i++)
        if (strcmp(fx->names[i], key) == 0) return &fx->tensors[i];
    return NULL;
}

static int same_shape(const moka_tensor *a, const moka_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

#define IP(body)                                                                                   \
    "name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'y' inner_product_param { " body " }"

static int check_fixture(const char *cfg, const char *name)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    CHECK_OK(moka_fixture_load(&fx, name, &err));
    const moka_tensor *x = fx_opt(&fx, "x"), *w = fx_opt(&fx, "w"), *b = fx_opt(&fx, "b");
    const moka_tensor *y = fx_opt(&fx, "y"), *dy = fx_opt(&fx, "dy"), *dx = fx_opt(&fx, "dx");
    const moka_tensor *dw = fx_opt(&fx, "dw"), *db = fx_opt(&fx, "db");
    CHECK(x && w && y && dy && dx && dw);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 5, &err));
    CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(h.num_weight, b ? 2 : 1);
    CHECK(same_shape(h.weight[0], w));
    memcpy(h.weight[0]->data, w->data, (size_t)moka_tensor_count(w) * sizeof(float));
    if (b) memcpy(h.weight[1]->data, b->data, (size_t)moka_tensor_count(b) * sizeof(float));
    CHECK(same_shape(h.top[0], y));
    /* Two forwards: the second must give the same top (forward writes, never adds). */
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, y->data, moka_tensor_count(y), 1e-5);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy->data}, &err));
    CHECK_CLOSE_N(h.bottom[0]->grad, dx->data, moka_tensor_count(dx), 1e-5);
    CHECK_CLOSE_N(h.weight[0]->grad, dw->data, moka_tensor_count(dw), 1e-5);
    if (b) CHECK_CLOSE_N(h.weight[1]->grad, db->data, moka_tensor_count(db), 1e-5);
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    for (int64_t i = 0; i < moka_tensor_count(dw); i++)
        CHECK_NEAR(h.weight[0]->grad[i], 2 * dw->data[i], 2e-5);
    for (int64_t i = 0; i < moka_tensor_count(dx); i++)
        CHECK_NEAR(h.bottom[0]->grad[i], 2 * dx->data[i], 2e-5);
    if (b)
        for (int64_t i = 0; i < moka_tensor_count(db); i++)
            CHECK_NEAR(h.weight[1]->grad[i], 2 * db->data[i], 2e-5);
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

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
        if (check_fixture(cases[i].cfg, cases[i].name)) {
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
