/* tests/layers/test_inner_product.c -- InnerProduct against torch linear fixtures
 * (tests/ref/gen_inner_product.py): flattening from axis 1 and axis 2, transpose, no bias;
 * finite differences; and the configuration and shape errors. bf16 precision against the
 * formula on bf16-rounded inputs. */
#include <omp.h>

#include "backend/cpu/dnnl_op.h"
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

/* bf16 precision: y, dx, dW against the formula in double on bf16-rounded x, W and dy (products
 * of bf16 numbers are exact in fp32), db from the unrounded dy; a second backward doubles the
 * gradients (they are added into). x (shape) is seen as (rows, k), split at `axis`. */
static int bf16_case(int ndim, const int64_t *shape, int axis, int64_t n, bool transpose,
                     bool bias)
{
    moka_err err = {0};
    moka_harness h;
    char cfg[300];
    int64_t rows = 1, k = 1;
    for (int d = 0; d < ndim; d++) *(d < axis ? &rows : &k) *= shape[d];
    snprintf(cfg, sizeof cfg,
             IP("num_output: %lld transpose: %s bias_term: %s axis: %d "
                "weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'gaussian' }"),
             (long long)n, transpose ? "true" : "false", bias ? "true" : "false", axis);
    CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 23, &err));
    h.ctx.precision = MOKA_PRECISION_BF16;
    CHECK_OK(moka_harness_add_bottom(&h, ndim, shape, NULL, true, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK_EQ(moka_tensor_count(h.top[0]), rows * n);
    const float *x = h.bottom[0]->data, *w = h.weight[0]->data;
    double *y = calloc((size_t)(rows * n), sizeof *y);
    double *y32 = calloc((size_t)(rows * n), sizeof *y32);
    double *dx = calloc((size_t)(rows * k), sizeof *dx), *dw = calloc((size_t)(n * k), sizeof *dw);
    float *dy = calloc((size_t)(rows * n), sizeof *dy);
    CHECK(y && y32 && dx && dw && dy);
    for (int64_t i = 0; i < rows * n; i++) dy[i] = (float)((i * 37 % 19) - 9) / 7.0f;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {
            double acc = bias ? h.weight[1]->data[j] : 0.0, acc32 = acc;
            const float g = moka_test_bf16_round(dy[r * n + j]);
            for (int64_t c = 0; c < k; c++) {
                const int64_t wi = transpose ? c * n + j : j * k + c;
                const double xr = moka_test_bf16_round(x[r * k + c]);
                const double wr = moka_test_bf16_round(w[wi]);
                acc += xr * wr;
                acc32 += (double)x[r * k + c] * w[wi];
                dx[r * k + c] += g * wr;
                dw[wi] += g * xr;
            }
            y[r * n + j] = acc;
            y32[r * n + j] = acc32;
        }
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_CONTAINS(h.layer->ops->kernel(h.layer), "oneDNN bf16 matmul");
    double worst = 0;
    for (int64_t i = 0; i < rows * n; i++) {
        CHECK_NEAR(h.top[0]->data[i], y[i], 1e-4 * fmax(1.0, fabs(y[i])));
        worst = fmax(worst, fabs(h.top[0]->data[i] - y32[i]));
    }
    CHECK(worst > 1e-3); /* the inputs were rounded */
    for (int pass = 1; pass <= 2; pass++) {
        if (pass == 1)
            CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err));
        else
            CHECK_OK(h.layer->ops->backward_cpu(h.layer, &err));
        for (int64_t i = 0; i < rows * k; i++)
            CHECK_NEAR(h.bottom[0]->grad[i], pass * dx[i], 1e-4 * fmax(1.0, fabs(pass * dx[i])));
        for (int64_t i = 0; i < n * k; i++)
            CHECK_NEAR(h.weight[0]->grad[i], pass * dw[i], 1e-4 * fmax(1.0, fabs(pass * dw[i])));
        for (int64_t j = 0; bias && j < n; j++) {
            double db = 0;
            for (int64_t r = 0; r < rows; r++) db += dy[r * n + j];
            CHECK_NEAR(h.weight[1]->grad[j], pass * db, 1e-5 * fmax(1.0, fabs(db)));
        }
    }
    free(y);
    free(y32);
    free(dx);
    free(dw);
    free(dy);
    moka_harness_deinit(&h);
    return 0;
}

static int bf16_matches_rounded_formula(void)
{
    if (!moka_dnnl_bf16_supported(NULL)) {
        printf("skipped: no bf16 instructions on this CPU\n");
        return 0;
    }
    omp_set_num_threads(2);
    CHECK_EQ(bf16_case(MOKA_SHAPE(3, 37), 1, 5, false, true), 0);
    CHECK_EQ(bf16_case(MOKA_SHAPE(1, 20), 1, 16, true, false), 0);
    CHECK_EQ(bf16_case(MOKA_SHAPE(2, 3, 4, 5), 1, 7, false, true), 0);
    CHECK_EQ(bf16_case(MOKA_SHAPE(2, 3, 4, 5), 2, 9, true, true), 0);
    return 0;
}

MOKA_TEST_MAIN(matches_pytorch, gradients_match_finite_differences, rejects_bad_configs_and_shapes,
               bf16_matches_rounded_formula)
