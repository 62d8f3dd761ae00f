/* tests/solvers/test_update_rules.c -- each update rule over three steps against reference
 * arithmetic written here in double from the published rules (Caffe's *_solver.cpp), plus a few
 * values worked out by hand, and a large array that takes the OpenMP path.
 */
#include <stdlib.h>

#include "solvers/update.h"
#include "test.h"

#define N 5
#define STEPS 3
/* Float updates against double references: a few float roundings per step. */
#define TOL 2e-6

/* Gradients per step; they include a zero, negatives and differing magnitudes. */
static const double grads[STEPS][N] = {
    {0.5, -1.25, 0.0, 2.0, 1e-3},
    {0.25, -0.5, 0.75, -3.0, 1e-3},
    {-0.125, 1.0, 0.5, 0.5, -2e-3},
};

static moka_solver_hparams hparams(const char *type)
{
    return (moka_solver_hparams){.type = type, .lr_policy = "fixed", .base_lr = 0.1f,
                                 .momentum = 0.9f, .momentum2 = 0.999f, .delta = 1e-8f,
                                 .rms_decay = 0.98f, .iter_size = 1, .clip_gradients = -1.0f};
}

/* The reference: one step of `type` in double for element values g, history h0/h1. */
static double ref_step(const char *type, const moka_solver_hparams *hp, int64_t iter,
                       double rate, double g, double *h0, double *h1)
{
    const double mom = hp->momentum, delta = hp->delta;
    if (strcmp(type, "SGD") == 0) {
        *h0 = mom * *h0 + rate * g;
        return *h0;
    }
    if (strcmp(type, "Nesterov") == 0) {
        const double prev = *h0;
        *h0 = mom * *h0 + rate * g;
        return (1.0 + mom) * *h0 - mom * prev;
    }
    if (strcmp(type, "AdaGrad") == 0) {
        *h0 += g * g;
        return rate * g / (sqrt(*h0) + delta);
    }
    if (strcmp(type, "RMSProp") == 0) {
        const double d = hp->rms_decay;
        *h0 = d * *h0 + (1.0 - d) * g * g;
        return rate * g / (sqrt(*h0) + delta);
    }
    if (strcmp(type, "AdaDelta") == 0) {
        *h0 = mom * *h0 + (1.0 - mom) * g * g;
        const double u = g * sqrt((*h1 + delta) / (*h0 + delta));
        *h1 = mom * *h1 + (1.0 - mom) * u * u;
        return rate * u;
    }
    if (strcmp(type, "Adam") == 0) {
        const double b1 = hp->momentum, b2 = hp->momentum2;
        const double t = (double)(iter + 1);
        *h0 = b1 * *h0 + (1.0 - b1) * g;
        *h1 = b2 * *h1 + (1.0 - b2) * g * g;
        /* Caffe's form of the bias correction: sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps),
         * which puts eps outside the correction (not Kingma & Ba's m_hat / (sqrt(v_hat) + eps)). */
        return rate * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t)) * *h0 / (sqrt(*h1) + delta);
    }
    return NAN;
}

/* Runs `type` for three steps (iterations 10, 11, 12) and compares step and history per element. */
static int three_steps_match_reference(const char *type, moka_solver_hparams hp, float lr_mult)
{
    const moka_update_rule *rule = moka_update_rule_find(type);
    CHECK(rule != NULL);
    CHECK(strcmp(rule->type, type) == 0);
    float h0[N] = {0}, h1[N] = {0}, diff[N];
    float *hist[2] = {h0, h1};
    double rh0[N] = {0}, rh1[N] = {0};
    for (int s = 0; s < STEPS; s++) {
        const int64_t iter = 10 + s; /* not 0, so Adam's t = iter + 1 matters */
        const float local_rate = hp.base_lr * lr_mult;
        for (int i = 0; i < N; i++) diff[i] = (float)grads[s][i];
        rule->compute(&hp, iter, local_rate, N, diff, hist);
        for (int i = 0; i < N; i++) {
            const double want = ref_step(type, &hp, iter, (double)local_rate, grads[s][i],
                                         &rh0[i], &rh1[i]);
            /* Steps are compared relative to local_rate at least: Nesterov's
             * (1 + m) h - m h_old cancels, so a small step carries the float error of its
             * larger terms. */
            if (!(fabs(diff[i] - want) <= TOL * fmax(fabs(want), local_rate)))
                TEST_FAIL_("%s step %d element %d: diff %.9g, want %.9g", type, s, i, diff[i],
                           want);
            if (!(fabs(h0[i] - rh0[i]) <= TOL * fmax(fabs(rh0[i]), 1e-3)))
                TEST_FAIL_("%s step %d element %d: history %.9g, want %.9g", type, s, i, h0[i],
                           rh0[i]);
            if (rule->num_history == 2 && !(fabs(h1[i] - rh1[i]) <= TOL * fmax(fabs(rh1[i]), 1e-6)))
                TEST_FAIL_("%s step %d element %d: second history %.9g, want %.9g", type, s, i,
                           h1[i], rh1[i]);
        }
    }
    return 0;
}

static int sgd_matches_reference(void)
{
    return three_steps_match_reference("SGD", hparams("SGD"), 1.0f);
}

static int nesterov_matches_reference(void)
{
    return three_steps_match_reference("Nesterov", hparams("Nesterov"), 2.0f);
}

static int adagrad_matches_reference(void)
{
    moka_solver_hparams hp = hparams("AdaGrad");
    hp.momentum = 0.0f;
    return three_steps_match_reference("AdaGrad", hp, 1.0f);
}

static int rmsprop_matches_reference(void)
{
    moka_solver_hparams hp = hparams("RMSProp");
    hp.momentum = 0.0f;
    return three_steps_match_reference("RMSProp", hp, 0.5f);
}

static int adadelta_matches_reference(void)
{
    moka_solver_hparams hp = hparams("AdaDelta");
    hp.momentum = 0.95f;
    hp.delta = 1e-6f;
    hp.base_lr = 1.0f;
    return three_steps_match_reference("AdaDelta", hp, 1.0f);
}

static int adam_matches_reference(void)
{
    moka_solver_hparams hp = hparams("Adam");
    hp.base_lr = 0.001f;
    return three_steps_match_reference("Adam", hp, 1.0f);
}

/* Values worked by hand for a constant gradient of 1, momentum 0.9, rate 0.1. */
static int hand_worked_values(void)
{
    moka_solver_hparams hp = hparams("SGD");
    float h[1] = {0}, h2[1] = {0}, g[1];
    float *hist[2] = {h, h2};

    /* SGD: h = 0.1, 0.19, 0.271. */
    const double sgd[3] = {0.1, 0.19, 0.271};
    for (int s = 0; s < 3; s++) {
        g[0] = 1.0f;
        moka_update_sgd.compute(&hp, s, 0.1f, 1, g, hist);
        CHECK_NEAR(g[0], sgd[s], 1e-6);
    }
    /* Nesterov: 1.9 h_t - 0.9 h_{t-1} = 0.19, 0.271, 0.3439. */
    const double nag[3] = {0.19, 0.271, 0.3439};
    h[0] = 0.0f;
    for (int s = 0; s < 3; s++) {
        g[0] = 1.0f;
        moka_update_nesterov.compute(&hp, s, 0.1f, 1, g, hist);
        CHECK_NEAR(g[0], nag[s], 1e-6);
    }
    /* AdaGrad, delta 0: h = 1, 2, 3, step = 0.1 / sqrt(h). */
    hp.delta = 0.0f;
    h[0] = 0.0f;
    const double ada[3] = {0.1, 0.07071067811865475, 0.05773502691896258};
    for (int s = 0; s < 3; s++) {
        g[0] = 1.0f;
        moka_update_adagrad.compute(&hp, s, 0.1f, 1, g, hist);
        CHECK_NEAR(g[0], ada[s], 1e-6);
    }
    /* RMSProp, decay 0.9, delta 0: h = 0.1, 0.19, 0.271, step = 0.1 / sqrt(h). */
    hp.rms_decay = 0.9f;
    h[0] = 0.0f;
    const double rms[3] = {0.31622776601683794, 0.22941573387056177, 0.19209468759882464};
    for (int s = 0; s < 3; s++) {
        g[0] = 1.0f;
        moka_update_rmsprop.compute(&hp, s, 0.1f, 1, g, hist);
        CHECK_NEAR(g[0], rms[s], 1e-6);
    }
    /* Adam with a constant gradient: the bias-corrected step is the rate itself, up to eps. */
    hp.momentum = 0.9f;
    hp.momentum2 = 0.999f;
    hp.delta = 1e-8f;
    h[0] = h2[0] = 0.0f;
    for (int s = 0; s < 3; s++) {
        g[0] = 1.0f;
        moka_update_adam.compute(&hp, s, 0.001f, 1, g, hist);
        CHECK_NEAR(g[0] / 0.001f, 1.0, 1e-5);
    }
    CHECK_NEAR(h[0], 0.271, 1e-6);  /* m = 1 - 0.9^3 */
    CHECK_NEAR(h2[0], 0.002997001, 1e-6); /* v = 1 - 0.999^3 */
    return 0;
}

static int registry_knows_every_rule_and_its_history_count(void)
{
    static const struct {
        const char *type;
        int num_history;
    } want[] = {{"SGD", 1}, {"Nesterov", 1}, {"AdaGrad", 1},
                {"RMSProp", 1}, {"AdaDelta", 2}, {"Adam", 2}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const moka_update_rule *r = moka_update_rule_find(want[i].type);
        CHECK(r != NULL);
        CHECK(strcmp(r->type, want[i].type) == 0);
        CHECK_EQ(r->num_history, want[i].num_history);
        CHECK(r->compute != NULL);
    }
    CHECK(moka_update_rule_find("sgd") == NULL); /* Caffe's names are case-sensitive */
    CHECK(moka_update_rule_find("Adamax") == NULL);
    CHECK(moka_update_rule_find("") == NULL);
    CHECK(moka_update_rule_find(NULL) == NULL);
    return 0;
}

/* An array long enough for the OpenMP team: every element must still follow the rule. */
static int large_arrays_take_the_parallel_path_correctly(void)
{
    const int64_t n = 3 * MOKA_UPDATE_OMP_MIN + 17;
    const char *types[] = {"SGD", "Adam"};
    for (int k = 0; k < 2; k++) {
        const moka_update_rule *rule = moka_update_rule_find(types[k]);
        moka_solver_hparams hp = hparams(types[k]);
        float *buf = calloc((size_t)n * 3, sizeof(float));
        double *ref = calloc((size_t)n * 2, sizeof(double));
        CHECK(buf && ref);
        float *diff = buf, *hist[2] = {buf + n, buf + 2 * n};
        for (int s = 0; s < 2; s++) {
            for (int64_t i = 0; i < n; i++)
                diff[i] = (float)(((i * 37 + s * 11) % 201) - 100) / 64.0f;
            rule->compute(&hp, s, 0.01f, n, diff, hist);
            for (int64_t i = 0; i < n; i++) {
                const double g = (double)(((i * 37 + s * 11) % 201) - 100) / 64.0;
                const double want = ref_step(types[k], &hp, s, (double)0.01f, g, &ref[i],
                                             &ref[n + i]);
                const double got = diff[i];
                if (!(fabs(got - want) <= 1e-5 * fmax(fabs(want), 1e-3))) {
                    free(buf);
                    free(ref);
                    TEST_FAIL_("%s element %lld step %d: %.9g vs %.9g", types[k], (long long)i,
                               s, got, want);
                }
            }
        }
        free(buf);
        free(ref);
    }
    return 0;
}

MOKA_TEST_MAIN(sgd_matches_reference, nesterov_matches_reference, adagrad_matches_reference,
               rmsprop_matches_reference, adadelta_matches_reference, adam_matches_reference,
               hand_worked_values, registry_knows_every_rule_and_its_history_count,
               large_arrays_take_the_parallel_path_correctly)
