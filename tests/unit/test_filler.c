/* tests/unit/test_filler.c -- Caffe's fillers: exact values (constant, bilinear, unit-ball row
 * sums), moments of the random ones on large blobs against the closed forms, the sparsity of
 * sparse gaussian, reproducibility from the seed, and every error with its position.
 */
#include <stdlib.h>

#include "caffe.pb-c.h"
#include "core/filler.h"
#include "test.h"

/* Parses `weight_filler { body }` as a ConvolutionParameter (so the filler has a position in
 * "f.prototxt"), fills a fresh blob of the given shape from stream (seed, 1) and hands back its
 * data (caller frees; NULL on failure). The blob starts full of 12345 so a fill that skips
 * elements shows. */
static moka_status run_fill(const char *body, int ndim, const int64_t *shape, uint64_t seed,
                            float **out, moka_err *err)
{
    char text[512];
    snprintf(text, sizeof text, "weight_filler { %s }", body);
    *out = NULL;
    moka_pt_doc *doc = NULL;
    MOKA_TRY(moka_pt_parse(text, (int64_t)strlen(text), "f.prototxt",
                           &caffe__convolution_parameter__descriptor, &doc, err));
    moka_tensor t = {0};
    moka_status st = moka_tensor_set_shape(&t, ndim, shape, err);
    if (st == MOKA_OK) {
        const int64_t n = moka_tensor_count(&t);
        t.data = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
        if (!t.data) st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; t.data && i < n; i++) t.data[i] = 12345.0f;
    }
    if (st == MOKA_OK) {
        moka_rng rng;
        moka_rng_seed(&rng, seed, 1);
        st = moka_filler_fill(moka_pt_msg(moka_pt_root(doc), "weight_filler"), &t, &rng, err);
    }
    moka_pt_doc_free(doc);
    if (st != MOKA_OK) {
        free(t.data);
        return st;
    }
    *out = t.data;
    return MOKA_OK;
}

typedef struct moments {
    double mean, var, min, max;
} moments;

static moments stats(const float *x, int64_t n)
{
    moments m = {0, 0, x[0], x[0]};
    for (int64_t i = 0; i < n; i++) {
        m.mean += x[i];
        m.min = fmin(m.min, x[i]);
        m.max = fmax(m.max, x[i]);
    }
    m.mean /= (double)n;
    for (int64_t i = 0; i < n; i++) m.var += (x[i] - m.mean) * (x[i] - m.mean);
    m.var /= (double)n;
    return m;
}

/* |got - want| <= rel * |want|; the tolerances below are 5+ standard errors of the estimate. */
#define CHECK_REL(got, want, rel)                                                                  \
    do {                                                                                           \
        const double g_ = (got), w_ = (want);                                                      \
        if (!(fabs(g_ - w_) <= (rel) * fabs(w_)))                                                  \
            TEST_FAIL_("CHECK_REL(%s, %s, %g): %.9g vs %.9g", #got, #want, (double)(rel), g_,     \
                       w_);                                                                        \
    } while (0)

static int constant_fills_every_element_with_value(void)
{
    moka_err err = {0};
    float *w;
    CHECK_OK(run_fill("type: 'constant' value: 2.5", MOKA_SHAPE(3, 4), 1, &w, &err));
    for (int i = 0; i < 12; i++) CHECK(w[i] == 2.5f);
    free(w);
    /* An empty FillerParameter is Caffe's default: constant 0. */
    CHECK_OK(run_fill("", MOKA_SHAPE(7), 1, &w, &err));
    for (int i = 0; i < 7; i++) CHECK(w[i] == 0.0f);
    free(w);
    return 0;
}

static int uniform_has_the_moments_of_u_min_max(void)
{
    moka_err err = {0};
    float *w;
    const int64_t n = 100000;
    CHECK_OK(run_fill("type: 'uniform' min: -2 max: 3", MOKA_SHAPE(100, 1000), 3, &w, &err));
    const moments m = stats(w, n);
    free(w);
    CHECK(m.min >= -2.0 && m.max < 3.0);
    CHECK(m.min < -1.99 && m.max > 2.99);
    CHECK_NEAR(m.mean, 0.5, 0.025);   /* standard error 0.0046 */
    CHECK_REL(m.var, 25.0 / 12.0, 0.02); /* (max - min)^2 / 12; relative s.e. 0.0028 */
    return 0;
}

static int gaussian_has_the_moments_of_n_mean_std(void)
{
    moka_err err = {0};
    float *w;
    const int64_t n = 100000;
    CHECK_OK(run_fill("type: 'gaussian' mean: 1 std: 2", MOKA_SHAPE(n), 4, &w, &err));
    const moments m = stats(w, n);
    free(w);
    CHECK_NEAR(m.mean, 1.0, 0.035); /* standard error 0.0063 */
    CHECK_REL(m.var, 4.0, 0.03);    /* relative s.e. 0.0045 */
    CHECK(m.min < -5.0 && m.max > 7.0); /* 3 std each way: certain in 1e5 draws */
    return 0;
}

/* Xavier: U(-a, a) with a = sqrt(3 / n), so var = 1 / n. MSRA: N(0, 2 / n). For a (128, 64, 3, 3)
 * blob fan_in = 64 * 9 = 576, fan_out = 128 * 9 = 1152, their mean 864. */
static int xavier_and_msra_scale_by_the_chosen_fan(void)
{
    moka_err err = {0};
    static const struct {
        const char *norm;
        double n;
    } cases[] = {{"", 576.0}, {"variance_norm: FAN_IN", 576.0},
                 {"variance_norm: FAN_OUT", 1152.0}, {"variance_norm: AVERAGE", 864.0}};
    const int64_t count = 128 * 64 * 9;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char body[128];
        float *w;
        snprintf(body, sizeof body, "type: 'xavier' %s", cases[c].norm);
        CHECK_OK(run_fill(body, MOKA_SHAPE(128, 64, 3, 3), 5 + c, &w, &err));
        moments m = stats(w, count);
        free(w);
        const double a = sqrt(3.0 / cases[c].n);
        CHECK(m.min >= -a * (1 + 1e-6) && m.max <= a * (1 + 1e-6));
        CHECK(m.min < -0.99 * a && m.max > 0.99 * a);
        CHECK_REL(m.var, 1.0 / cases[c].n, 0.025); /* relative s.e. 0.0033 */
        CHECK(fabs(m.mean) < 5.0 * sqrt(1.0 / cases[c].n / (double)count));

        snprintf(body, sizeof body, "type: 'msra' %s", cases[c].norm);
        CHECK_OK(run_fill(body, MOKA_SHAPE(128, 64, 3, 3), 9 + c, &w, &err));
        m = stats(w, count);
        free(w);
        CHECK_REL(m.var, 2.0 / cases[c].n, 0.03); /* relative s.e. 0.0052 */
        CHECK(fabs(m.mean) < 5.0 * sqrt(2.0 / cases[c].n / (double)count));
    }
    return 0;
}

/* Fans of 2-D and 1-D blobs: (200, 300) has fan_in 300, fan_out 200; a 1-D blob of 1000 has
 * fan_in 1 and (Caffe's ND rule) fan_out = count = 1000. */
static int fans_of_2d_and_1d_blobs_follow_caffe(void)
{
    moka_err err = {0};
    float *w;
    CHECK_OK(run_fill("type: 'xavier' variance_norm: FAN_OUT", MOKA_SHAPE(200, 300), 21, &w, &err));
    moments m = stats(w, 60000);
    free(w);
    CHECK_REL(m.max, sqrt(3.0 / 200.0), 0.01);
    CHECK_REL(m.var, 1.0 / 200.0, 0.03);
    CHECK_OK(run_fill("type: 'xavier'", MOKA_SHAPE(200, 300), 22, &w, &err));
    m = stats(w, 60000);
    free(w);
    CHECK_REL(m.max, sqrt(3.0 / 300.0), 0.01);
    CHECK_OK(run_fill("type: 'xavier' variance_norm: AVERAGE", MOKA_SHAPE(1000), 23, &w, &err));
    m = stats(w, 1000);
    free(w);
    const double a = sqrt(3.0 / 500.5); /* (1 + 1000) / 2 */
    CHECK(m.max <= a * (1 + 1e-6) && m.max > 0.95 * a && m.min < -0.95 * a);
    return 0;
}

/* Bilinear kernels worked by hand: f = ceil(K / 2), c = (K - 1) / (2 f), and per axis
 * 1 - |x / f - c|. */
static int bilinear_is_the_upsampling_kernel(void)
{
    moka_err err = {0};
    float *w;
    /* K = 4: f = 2, c = 0.75 -> 0.25 0.75 0.75 0.25. */
    const double k4[4] = {0.25, 0.75, 0.75, 0.25};
    CHECK_OK(run_fill("type: 'bilinear'", MOKA_SHAPE(2, 3, 4, 4), 1, &w, &err));
    for (int ch = 0; ch < 6; ch++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) CHECK_NEAR(w[ch * 16 + y * 4 + x], k4[y] * k4[x], 1e-7);
    free(w);
    /* K = 3: f = 2, c = 0.5 -> 0.5 1 0.5 (symmetric; Caffe 1.0's old centre gave
     * 0.25 0.75 0.75). */
    const double k3[3] = {0.5, 1.0, 0.5};
    CHECK_OK(run_fill("type: 'bilinear'", MOKA_SHAPE(1, 1, 3, 3), 1, &w, &err));
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) CHECK_NEAR(w[y * 3 + x], k3[y] * k3[x], 1e-7);
    free(w);
    /* K = 5: f = 3, c = 2/3 -> 1/3 2/3 1 2/3 1/3. */
    const double k5[5] = {1.0 / 3, 2.0 / 3, 1.0, 2.0 / 3, 1.0 / 3};
    CHECK_OK(run_fill("type: 'bilinear'", MOKA_SHAPE(1, 2, 5, 5), 1, &w, &err));
    for (int ch = 0; ch < 2; ch++)
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 5; x++) CHECK_NEAR(w[ch * 25 + y * 5 + x], k5[y] * k5[x], 1e-6);
    free(w);
    return 0;
}

static int positive_unitball_rows_sum_to_one(void)
{
    moka_err err = {0};
    float *w;
    CHECK_OK(run_fill("type: 'positive_unitball'", MOKA_SHAPE(5, 7), 31, &w, &err));
    for (int r = 0; r < 5; r++) {
        double sum = 0.0;
        for (int j = 0; j < 7; j++) {
            CHECK(w[r * 7 + j] >= 0.0f && w[r * 7 + j] <= 1.0f);
            sum += w[r * 7 + j];
        }
        CHECK_NEAR(sum, 1.0, 1e-6);
    }
    free(w);
    /* Rows are shape[0]: a (4, 2, 3) blob has 4 rows of 6. */
    CHECK_OK(run_fill("type: 'positive_unitball'", MOKA_SHAPE(4, 2, 3), 32, &w, &err));
    for (int r = 0; r < 4; r++) {
        double sum = 0.0;
        for (int j = 0; j < 6; j++) sum += w[r * 6 + j];
        CHECK_NEAR(sum, 1.0, 1e-6);
    }
    free(w);
    return 0;
}

static int sparse_gaussian_keeps_sparse_over_rows_of_each_column(void)
{
    moka_err err = {0};
    float *w;
    /* 50 output rows, sparse 10: each weight survives with probability 10 / 50 = 0.2. */
    const int64_t n = 50 * 2000;
    CHECK_OK(run_fill("type: 'gaussian' std: 1 sparse: 10", MOKA_SHAPE(50, 2000), 41, &w, &err));
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++) zeros += w[i] == 0.0f;
    CHECK_NEAR((double)zeros / (double)n, 0.8, 0.01); /* standard error 0.0013 */
    /* The survivors are still N(0, 1). */
    double var = 0.0;
    for (int64_t i = 0; i < n; i++) var += (double)w[i] * w[i];
    CHECK_REL(var / (double)(n - zeros), 1.0, 0.05);
    free(w);

    CHECK_OK(run_fill("type: 'gaussian' sparse: 0", MOKA_SHAPE(8, 9), 42, &w, &err));
    for (int i = 0; i < 72; i++) CHECK(w[i] == 0.0f);
    free(w);
    CHECK_OK(run_fill("type: 'gaussian' sparse: 8", MOKA_SHAPE(8, 9), 43, &w, &err));
    for (int i = 0; i < 72; i++) CHECK(w[i] != 0.0f && w[i] != 12345.0f);
    free(w);
    return 0;
}

static int same_seed_same_values_other_seed_other_values(void)
{
    moka_err err = {0};
    static const char *const bodies[] = {"type: 'uniform'", "type: 'gaussian'",
                                         "type: 'xavier'", "type: 'msra'",
                                         "type: 'positive_unitball'",
                                         "type: 'gaussian' sparse: 2"};
    for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
        float *a, *a2, *c;
        CHECK_OK(run_fill(bodies[b], MOKA_SHAPE(6, 5, 2), 77, &a, &err));
        CHECK_OK(run_fill(bodies[b], MOKA_SHAPE(6, 5, 2), 77, &a2, &err));
        CHECK_OK(run_fill(bodies[b], MOKA_SHAPE(6, 5, 2), 78, &c, &err));
        const int same = memcmp(a, a2, 60 * sizeof(float)) == 0;
        const int differs = memcmp(a, c, 60 * sizeof(float)) != 0;
        free(a);
        free(a2);
        free(c);
        if (!same || !differs) TEST_FAIL_("%s: same seed same %d, other seed differs %d",
                                          bodies[b], same, differs);
    }
    return 0;
}

static int errors_name_the_filler_and_its_position(void)
{
    moka_err err = {0};
    float *w;
    CHECK_STATUS(run_fill("type: 'gausian'", MOKA_SHAPE(3, 3), 1, &w, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "f.prototxt:1:17: weight_filler: unknown filler type 'gausian' "
                            "(known: bilinear, constant, gaussian, msra, positive_unitball, "
                            "uniform, xavier)");

    CHECK_STATUS(run_fill("type: 'bilinear'", MOKA_SHAPE(4, 4), 1, &w, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "f.prototxt:1:1: weight_filler: bilinear filler needs a 4-D blob "
                            "(N, C, K, K), got 2-D (4 4 (16))");

    CHECK_STATUS(run_fill("type: 'bilinear'", MOKA_SHAPE(1, 1, 3, 4), 1, &w, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "f.prototxt:1:1: weight_filler: bilinear filler needs a square "
                            "kernel, got 3 x 4");

    CHECK_STATUS(run_fill("type: 'xavier' sparse: 3", MOKA_SHAPE(4, 4), 1, &w, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "f.prototxt:1:32: weight_filler: sparse is only supported by the "
                            "gaussian filler, not 'xavier'");

    CHECK_STATUS(run_fill("type: 'gaussian' sparse: 5", MOKA_SHAPE(4, 4), 1, &w, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "weight_filler: gaussian filler sparse must be -1 (off) or between 0 "
                            "and the 4 output rows (shape[0]), got 5");
    CHECK_STATUS(run_fill("type: 'gaussian' sparse: -2", MOKA_SHAPE(4, 4), 1, &w, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "got -2");
    CHECK_STATUS(run_fill("type: 'gaussian' sparse: 1", 0, NULL, 1, &w, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "sparse gaussian filler needs a blob with at least 1 axis");

    CHECK_STATUS(run_fill("type: 'gaussian' std: 0", MOKA_SHAPE(4), 1, &w, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "weight_filler: gaussian filler needs std > 0, got 0");

    CHECK_STATUS(run_fill("type: 'uniform' min: 1 max: -1", MOKA_SHAPE(4), 1, &w, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "weight_filler: uniform filler needs min <= max, got min 1, max -1");

    CHECK_STATUS(run_fill("type: 'positive_unitball'", MOKA_SHAPE(0, 3), 1, &w, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "weight_filler: cannot fill an empty blob (shape 0 3 (0)) with the "
                            "positive_unitball filler");
    CHECK_STATUS(run_fill("type: 'xavier'", MOKA_SHAPE(5, 0), 1, &w, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "cannot fill an empty blob");
    return 0;
}

/* A FillerParameter parsed on its own: the root has no position, its fields do. */
static int filler_parameter_as_a_document_root(void)
{
    moka_err err = {0};
    moka_pt_doc *doc = NULL;
    const char *text = "type: 'constant' value: -1.5";
    CHECK_OK(moka_pt_parse(text, (int64_t)strlen(text), "filler.prototxt",
                           &caffe__filler_parameter__descriptor, &doc, &err));
    float data[6] = {0};
    moka_tensor t = {.ndim = 2, .shape = {2, 3}, .data = data};
    moka_rng rng;
    moka_rng_seed(&rng, 1, 1);
    const moka_status st = moka_filler_fill(moka_pt_root(doc), &t, &rng, &err);
    moka_pt_doc_free(doc);
    CHECK_OK(st);
    for (int i = 0; i < 6; i++) CHECK(data[i] == -1.5f);

    text = "value: 1\ntype: 'nope'";
    CHECK_OK(moka_pt_parse(text, (int64_t)strlen(text), "filler.prototxt",
                           &caffe__filler_parameter__descriptor, &doc, &err));
    const moka_status st2 = moka_filler_fill(moka_pt_root(doc), &t, &rng, &err);
    moka_pt_doc_free(doc);
    CHECK_STATUS(st2, MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "filler.prototxt:2:1: FillerParameter: unknown filler type 'nope'");
    return 0;
}

MOKA_TEST_MAIN(constant_fills_every_element_with_value, uniform_has_the_moments_of_u_min_max,
               gaussian_has_the_moments_of_n_mean_std, xavier_and_msra_scale_by_the_chosen_fan,
               fans_of_2d_and_1d_blobs_follow_caffe, bilinear_is_the_upsampling_kernel,
               positive_unitball_rows_sum_to_one,
               sparse_gaussian_keeps_sparse_over_rows_of_each_column,
               same_seed_same_values_other_seed_other_values,
               errors_name_the_filler_and_its_position, filler_parameter_as_a_document_root)
