/* tests/solvers/test_lr_policy.c -- every lr_policy against its closed form, written out here
 * from Caffe's definitions (SGDSolver::GetLearningRate), at iterations on both sides of each
 * boundary; and the solver checks of moka_update_check with their messages.
 */
#include "solvers/update.h"
#include "test.h"

/* Rates are float, as in Caffe; the closed forms below are double. */
#define RATE_TOL 1e-6

static moka_solver_hparams base(const char *policy)
{
    return (moka_solver_hparams){.type = "SGD", .lr_policy = policy, .base_lr = 0.01f,
                                 .iter_size = 1, .clip_gradients = -1.0f};
}

static double rel_rate(const moka_solver_hparams *hp, int64_t iter, int64_t *step)
{
    return (double)moka_lr_rate(hp, iter, step);
}

/* |got - want| <= tol * |want| (rates are tiny, so CHECK_NEAR's absolute floor of 1 is useless). */
#define CHECK_RATE(got, want)                                                                      \
    do {                                                                                           \
        const double g_ = (got), w_ = (want);                                                      \
        if (!(fabs(g_ - w_) <= RATE_TOL * fabs(w_) + 1e-12))                                       \
            TEST_FAIL_("CHECK_RATE(%s): %.10g vs %.10g", #got, g_, w_);                            \
    } while (0)

static int fixed_is_base_lr_at_every_iteration(void)
{
    moka_solver_hparams hp = base("fixed");
    hp.gamma = 0.5f;
    CHECK_RATE(rel_rate(&hp, 0, NULL), 0.01);
    CHECK_RATE(rel_rate(&hp, 1, NULL), 0.01);
    CHECK_RATE(rel_rate(&hp, 123456, NULL), 0.01);
    return 0;
}

static int step_drops_by_gamma_every_stepsize_and_sets_current_step(void)
{
    moka_solver_hparams hp = base("step");
    hp.gamma = 0.1f;
    hp.stepsize = 100;
    int64_t cur = -7;
    CHECK_RATE(rel_rate(&hp, 0, &cur), 0.01);
    CHECK_EQ(cur, 0);
    CHECK_RATE(rel_rate(&hp, 99, &cur), 0.01);
    CHECK_RATE(rel_rate(&hp, 100, &cur), 0.001);
    CHECK_EQ(cur, 1);
    CHECK_RATE(rel_rate(&hp, 199, &cur), 0.001);
    CHECK_RATE(rel_rate(&hp, 250, &cur), 0.0001);
    CHECK_EQ(cur, 2);
    hp.gamma = 0.5f;
    CHECK_RATE(rel_rate(&hp, 399, &cur), 0.01 * 0.125);
    CHECK_EQ(cur, 3);
    return 0;
}

static int exp_decays_by_gamma_every_iteration(void)
{
    moka_solver_hparams hp = base("exp");
    hp.gamma = 0.5f;
    CHECK_RATE(rel_rate(&hp, 0, NULL), 0.01);
    CHECK_RATE(rel_rate(&hp, 1, NULL), 0.005);
    CHECK_RATE(rel_rate(&hp, 3, NULL), 0.00125);
    hp.gamma = 0.999f;
    CHECK_RATE(rel_rate(&hp, 1000, NULL), 0.01 * pow((double)0.999f, 1000.0));
    return 0;
}

static int inv_follows_one_plus_gamma_iter_to_minus_power(void)
{
    moka_solver_hparams hp = base("inv");
    hp.gamma = 1e-4f;
    hp.power = 0.75f;
    CHECK_RATE(rel_rate(&hp, 0, NULL), 0.01);
    /* 1 + 1e-4 * 10000 = 2, and 2^-0.75 = 0.59460355750136... */
    CHECK_RATE(rel_rate(&hp, 10000, NULL), 0.01 * 0.5946035575013605);
    /* 1 + 1e-4 * 30000 = 4, and 4^-0.75 = 2^-1.5 = 0.35355339059327... */
    CHECK_RATE(rel_rate(&hp, 30000, NULL), 0.01 * 0.3535533905932738);
    CHECK_RATE(rel_rate(&hp, 500, NULL), 0.01 * pow(1.05, -0.75));
    return 0;
}

static int multistep_walks_the_stepvalues_one_per_call(void)
{
    const int64_t steps[] = {100, 300, 600};
    moka_solver_hparams hp = base("multistep");
    hp.gamma = 0.1f;
    hp.stepvalue = steps;
    hp.num_stepvalue = 3;
    int64_t cur = 0;
    /* Caffe calls GetLearningRate once per iteration; so does this loop. */
    for (int64_t it = 0; it <= 700; it++) {
        const double got = rel_rate(&hp, it, &cur);
        double want = 0.01;
        if (it >= 100) want = 0.001;
        if (it >= 300) want = 0.0001;
        if (it >= 600) want = 0.00001;
        CHECK_RATE(got, want);
    }
    CHECK_EQ(cur, 3);

    /* Resumed with current_step 0 at iteration 650, Caffe advances a single step per call
     * (its `if`), catching up over the next calls. */
    cur = 0;
    CHECK_RATE(rel_rate(&hp, 650, &cur), 0.001);
    CHECK_EQ(cur, 1);
    CHECK_RATE(rel_rate(&hp, 651, &cur), 0.0001);
    CHECK_RATE(rel_rate(&hp, 652, &cur), 0.00001);
    CHECK_RATE(rel_rate(&hp, 653, &cur), 0.00001);
    CHECK_EQ(cur, 3);

    /* No stepvalues: stays at base_lr. */
    hp.num_stepvalue = 0;
    cur = 0;
    CHECK_RATE(rel_rate(&hp, 5000, &cur), 0.01);
    CHECK_EQ(cur, 0);
    return 0;
}

static int poly_reaches_zero_at_max_iter(void)
{
    moka_solver_hparams hp = base("poly");
    hp.max_iter = 1000;
    hp.power = 0.5f;
    CHECK_RATE(rel_rate(&hp, 0, NULL), 0.01);
    CHECK_RATE(rel_rate(&hp, 750, NULL), 0.005); /* sqrt(0.25) */
    CHECK_RATE(rel_rate(&hp, 1000, NULL), 0.0);
    hp.power = 2.0f;
    CHECK_RATE(rel_rate(&hp, 500, NULL), 0.0025); /* 0.5^2 */
    CHECK_RATE(rel_rate(&hp, 900, NULL), 0.0001); /* 0.1^2 */
    hp.power = 1.0f;
    CHECK_RATE(rel_rate(&hp, 250, NULL), 0.0075);
    return 0;
}

static int sigmoid_is_half_base_lr_at_stepsize(void)
{
    moka_solver_hparams hp = base("sigmoid");
    hp.gamma = 0.05f;
    hp.stepsize = 100;
    CHECK_RATE(rel_rate(&hp, 100, NULL), 0.005);
    /* gamma * (iter - stepsize) = +-1: 1 / (1 + e^-1) = 0.7310585786300049. */
    CHECK_RATE(rel_rate(&hp, 120, NULL), 0.01 * 0.7310585786300049);
    CHECK_RATE(rel_rate(&hp, 80, NULL), 0.01 * 0.2689414213699951);
    CHECK_RATE(rel_rate(&hp, 0, NULL), 0.01 / (1.0 + exp(5.0)));
    return 0;
}

static int unknown_policy_is_reported_and_rate_falls_back_to_base_lr(void)
{
    CHECK(moka_lr_policy_known("fixed"));
    CHECK(moka_lr_policy_known("multistep"));
    CHECK(moka_lr_policy_known("sigmoid"));
    CHECK(!moka_lr_policy_known("Fixed"));
    CHECK(!moka_lr_policy_known("cosine"));
    CHECK(!moka_lr_policy_known(""));
    CHECK(!moka_lr_policy_known(NULL));
    moka_solver_hparams hp = base("cosine");
    CHECK_RATE(rel_rate(&hp, 10, NULL), 0.01);
    return 0;
}

static int check_accepts_a_valid_solver(void)
{
    moka_err err = {0};
    moka_solver_hparams hp = base("step");
    hp.gamma = 0.1f;
    hp.stepsize = 10;
    hp.momentum = 0.9f;
    CHECK_OK(moka_update_check(&hp, &err));
    hp.type = "RMSProp";
    hp.momentum = 0.0f;
    hp.rms_decay = 0.98f;
    CHECK_OK(moka_update_check(&hp, &err));
    return 0;
}

static int check_rejects_what_caffe_rejects(void)
{
    moka_err err = {0};
    moka_solver_hparams hp = base("fixed");

    hp.type = "sgd";
    CHECK_STATUS(moka_update_check(&hp, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "unknown solver type 'sgd' (known: AdaDelta, AdaGrad, Adam, "
                            "Nesterov, RMSProp, SGD)");

    hp = base("cosine");
    CHECK_STATUS(moka_update_check(&hp, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "unknown lr_policy 'cosine' (known: exp, fixed, inv, multistep, "
                            "poly, sigmoid, step)");

    hp = base("step");
    hp.gamma = 0.1f;
    CHECK_STATUS(moka_update_check(&hp, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "lr_policy 'step' needs stepsize > 0, got 0");

    hp = base("sigmoid");
    hp.stepsize = -5;
    CHECK_STATUS(moka_update_check(&hp, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "lr_policy 'sigmoid' needs stepsize > 0, got -5");

    hp = base("exp");
    hp.gamma = -0.5f;
    CHECK_STATUS(moka_update_check(&hp, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "lr_policy 'exp' needs gamma >= 0, got -0.5");

    hp = base("fixed");
    hp.gamma = -0.5f; /* fixed ignores gamma, as in Caffe */
    CHECK_OK(moka_update_check(&hp, &err));

    hp.type = "AdaGrad";
    hp.momentum = 0.9f;
    CHECK_STATUS(moka_update_check(&hp, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "solver type 'AdaGrad' does not use momentum");

    hp.type = "RMSProp";
    hp.momentum = 0.0f;
    hp.rms_decay = 1.0f;
    CHECK_STATUS(moka_update_check(&hp, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "rms_decay must be in [0, 1), got 1");

    hp.type = "SGD";
    hp.iter_size = 0;
    CHECK_STATUS(moka_update_check(&hp, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "iter_size must be >= 1, got 0");
    return 0;
}

MOKA_TEST_MAIN(fixed_is_base_lr_at_every_iteration,
               step_drops_by_gamma_every_stepsize_and_sets_current_step,
               exp_decays_by_gamma_every_iteration, inv_follows_one_plus_gamma_iter_to_minus_power,
               multistep_walks_the_stepvalues_one_per_call, poly_reaches_zero_at_max_iter,
               sigmoid_is_half_base_lr_at_stepsize,
               unknown_policy_is_reported_and_rate_falls_back_to_base_lr,
               check_accepts_a_valid_solver, check_rejects_what_caffe_rejects)
