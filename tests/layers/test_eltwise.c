/* tests/layers/test_eltwise.c -- Eltwise SUM/PROD/MAX against PyTorch (tests/ref/gen_eltwise.py),
 * Caffe's MAX tie-breaking (hand-derived), finite differences, and configuration errors. */
#include "harness.h"
#include "test.h"

#define BOTTOMS "bottom: 'x0' bottom: 'x1' bottom: 'x2' top: 'y' "

/* Runs fixture `name` (x0, x1, x2 -> y, dy -> dx0..dx2) through an Eltwise with `param`. */
static int check_fixture(const char *name, const char *param, double tol)
{
    moka_err err = {0};
    moka_fixture fx;
    moka_harness h;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "name: 'e' type: 'Eltwise' " BOTTOMS "%s", param);
    CHECK_OK(moka_fixture_load(&fx, name, &err));
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 1, &err));
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "x%d", i);
        const moka_tensor *x = moka_fixture_get(&fx, key);
        CHECK(x);
        CHECK_OK(moka_harness_add_bottom(&h, x->ndim, x->shape, x->data, true, &err));
    }
    CHECK_OK(moka_harness_setup(&h, &err));
    const moka_tensor *y = moka_fixture_get(&fx, "y"), *dy = moka_fixture_get(&fx, "dy");
    CHECK(y && dy);
    CHECK_EQ(moka_tensor_count(h.top[0]), moka_tensor_count(y));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CLOSE_N(h.top[0]->data, y->data, moka_tensor_count(y), tol);
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy->data}, &err));
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "dx%d", i);
        const moka_tensor *dx = moka_fixture_get(&fx, key);
        CHECK(dx);
        CHECK_CLOSE_N(h.bottom[i]->grad, dx->data, moka_tensor_count(dx), tol);
    }
    moka_harness_deinit(&h);
    moka_fixture_deinit(&fx);
    return 0;
}

/* float32 arithmetic against a float64 reference: a few ulps. */
static int matches_pytorch_sum_with_coeff(void)
{
    return check_fixture("eltwise_sum", "eltwise_param { coeff: 0.5 coeff: -2 coeff: 1.5 }", 1e-6);
}

static int matches_pytorch_prod_stable(void)
{
    return check_fixture("eltwise_prod", "eltwise_param { operation: PROD }", 1e-6);
}

static int matches_pytorch_prod_unstable(void)
{
    return check_fixture("eltwise_prod",
                         "eltwise_param { operation: PROD stable_prod_grad: false }", 1e-6);
}

static int matches_pytorch_max(void)
{
    return check_fixture("eltwise_max", "eltwise_param { operation: MAX }", 0.0);
}

/* Caffe: x1 wins a tie with x0; from x2 on a bottom must be strictly greater to win. */
static int max_breaks_ties_as_caffe(void)
{
    moka_err err = {0};
    moka_harness h;
    const float x0[4] = {1, 2, 3, 5}, x1[4] = {1, 3, 3, 0}, x2[4] = {1, 3, 4, 5};
    CHECK_OK(moka_harness_init(&h,
                               "name: 'e' type: 'Eltwise' " BOTTOMS
                               "eltwise_param { operation: MAX }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(4), x0, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(4), x1, true, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(4), x2, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float y[4] = {1, 3, 4, 5};
    CHECK_CLOSE_N(h.top[0]->data, y, 4, 0.0);
    const float dy[4] = {1, 2, 3, 4};
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    const float dx0[4] = {0, 0, 0, 4}, dx1[4] = {1, 2, 0, 0}, dx2[4] = {0, 0, 3, 0};
    CHECK_CLOSE_N(h.bottom[0]->grad, dx0, 4, 0.0);
    CHECK_CLOSE_N(h.bottom[1]->grad, dx1, 4, 0.0);
    CHECK_CLOSE_N(h.bottom[2]->grad, dx2, 4, 0.0);
    moka_harness_deinit(&h);
    return 0;
}

/* Two bottoms, a bottom without gradient, and backward adding on top of what is there. */
static int backward_adds_and_respects_propagate_down(void)
{
    moka_err err = {0};
    moka_harness h;
    const float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
    CHECK_OK(moka_harness_init(&h,
                               "name: 'e' type: 'Eltwise' bottom: 'a' bottom: 'b' top: 'y' "
                               "eltwise_param { operation: PROD }",
                               MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3), a, false, &err));
    CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(3), b, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const float y[3] = {4, 10, 18};
    CHECK_CLOSE_N(h.top[0]->data, y, 3, 0.0);
    const float dy[3] = {1, -1, 2};
    CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
    CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
    const float db[3] = {2, -4, 12}, zero[3] = {0, 0, 0};
    CHECK_CLOSE_N(h.bottom[1]->grad, db, 3, 0.0);
    CHECK_CLOSE_N(h.bottom[0]->grad, zero, 3, 0.0);
    moka_harness_deinit(&h);
    return 0;
}

static int gradcheck_op(const char *param)
{
    moka_err err = {0};
    moka_harness h;
    char cfg[256];
    snprintf(cfg, sizeof cfg, "name: 'e' type: 'Eltwise' " BOTTOMS "%s", param);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 17, &err));
    for (int i = 0; i < 3; i++)
        CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 2, 3), NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    /* MAX: points within `step` of a tie are kinks and skipped by the checker. */
    CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3,
                                                      .top_index = -1}),
             0);
    moka_harness_deinit(&h);
    return 0;
}

static int gradients_match_finite_differences(void)
{
    if (gradcheck_op("")) return 1;
    if (gradcheck_op("eltwise_param { coeff: 1 coeff: -0.5 coeff: 3 }")) return 1;
    if (gradcheck_op("eltwise_param { operation: PROD }")) return 1;
    if (gradcheck_op("eltwise_param { operation: PROD stable_prod_grad: false }")) return 1;
    if (gradcheck_op("eltwise_param { operation: MAX }")) return 1;
    return 0;
}

static moka_status setup_two(moka_harness *h, const char *param, int nda, const int64_t *sa,
                             int ndb, const int64_t *sb, moka_err *err)
{
    char cfg[256];
    snprintf(cfg, sizeof cfg, "name: 'e' type: 'Eltwise' bottom: 'a' bottom: 'b' top: 'y' %s",
             param);
    MOKA_TRY(moka_harness_init(h, cfg, MOKA_TRAIN, 1, err));
    MOKA_TRY(moka_harness_add_bottom(h, nda, sa, NULL, true, err));
    MOKA_TRY(moka_harness_add_bottom(h, ndb, sb, NULL, true, err));
    return moka_harness_setup(h, err);
}

static int rejects_bad_configs_and_shapes(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(setup_two(&h, "eltwise_param { coeff: 1 coeff: 2 coeff: 3 }", MOKA_SHAPE(2, 3),
                           MOKA_SHAPE(2, 3), &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'e': 3 coeff value(s) for 2 bottoms");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_two(&h, "eltwise_param { operation: PROD coeff: 1 coeff: 2 }",
                           MOKA_SHAPE(2, 3), MOKA_SHAPE(2, 3), &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "coeff applies only to operation SUM, not PROD");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_two(&h, "eltwise_param { operation: MAX coeff: 1 coeff: 2 }",
                           MOKA_SHAPE(2, 3), MOKA_SHAPE(2, 3), &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "not MAX");
    moka_harness_deinit(&h);

    CHECK_STATUS(setup_two(&h, "", MOKA_SHAPE(2, 3), MOKA_SHAPE(3, 2), &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'e'");
    CHECK_CONTAINS(err.msg, "bottom 1 'b' has shape 3 2 (6) but bottom 0 'a' has 2 3 (6)");
    moka_harness_deinit(&h);
    return 0;
}

/* Big enough for the OpenMP branches: MAX and PROD checked element by element. */
static int large_inputs_take_the_threaded_path(void)
{
    for (int op = 0; op < 2; op++) {
        moka_err err = {0};
        moka_harness h;
        CHECK_OK(moka_harness_init(&h,
                                   op ? "name: 'e' type: 'Eltwise' " BOTTOMS
                                        "eltwise_param { operation: PROD }"
                                      : "name: 'e' type: 'Eltwise' " BOTTOMS
                                        "eltwise_param { operation: MAX }",
                                   MOKA_TRAIN, 6, &err));
        for (int i = 0; i < 3; i++)
            CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(200, 200), NULL, true, &err));
        CHECK_OK(moka_harness_setup(&h, &err));
        CHECK_OK(moka_harness_forward(&h, &err));
        const int64_t n = 40000;
        float *dy = malloc((size_t)n * sizeof *dy);
        CHECK(dy);
        for (int64_t j = 0; j < n; j++) dy[j] = (float)(j % 7) - 3.0f;
        CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
        const float *a = h.bottom[0]->data, *b = h.bottom[1]->data, *c = h.bottom[2]->data;
        for (int64_t j = 0; j < n; j++) {
            if (op) {
                CHECK(h.top[0]->data[j] == a[j] * b[j] * c[j]);
                CHECK(h.bottom[0]->grad[j] == b[j] * c[j] * dy[j]);
                CHECK(h.bottom[1]->grad[j] == a[j] * c[j] * dy[j]);
                CHECK(h.bottom[2]->grad[j] == a[j] * b[j] * dy[j]);
            } else {
                const int w = a[j] > b[j] ? (c[j] > a[j] ? 2 : 0) : (c[j] > b[j] ? 2 : 1);
                CHECK(h.top[0]->data[j] == h.bottom[w]->data[j]);
                for (int k = 0; k < 3; k++)
                    CHECK(h.bottom[k]->grad[j] == (k == w ? dy[j] : 0.0f));
            }
        }
        free(dy);
        moka_harness_deinit(&h);
    }
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch_sum_with_coeff, matches_pytorch_prod_stable,
               matches_pytorch_prod_unstable, matches_pytorch_max, max_breaks_ties_as_caffe,
               backward_adds_and_respects_propagate_down, gradients_match_finite_differences,
               rejects_bad_configs_and_shapes, large_inputs_take_the_threaded_path)
