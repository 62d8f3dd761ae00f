/* src/solvers/update_registry.c -- the update rules by Caffe's solver type name, and the checks
 * Caffe makes on the solver values before (or while) it uses them.
 */
#include <string.h>

#include "solvers/update.h"

static const moka_update_rule *const rules[] = {
    &moka_update_adadelta, &moka_update_adagrad, &moka_update_adam,
    &moka_update_nesterov, &moka_update_rmsprop, &moka_update_sgd,
};
#define NUM_RULES ((int)(sizeof rules / sizeof rules[0]))

const moka_update_rule *moka_update_rule_find(const char *type)
{
    if (!type) return NULL;
    for (int i = 0; i < NUM_RULES; i++)
        if (strcmp(type, rules[i]->type) == 0) return rules[i];
    return NULL;
}

static bool is(const char *s, const char *want) { return s && strcmp(s, want) == 0; }

moka_status moka_update_check(const moka_solver_hparams *hp, moka_err *err)
{
    if (!moka_update_rule_find(hp->type))
        return moka_errf(err, MOKA_ERR_CONFIG,
                         "unknown solver type '%s' (known: AdaDelta, AdaGrad, Adam, Nesterov, "
                         "RMSProp, SGD)",
                         hp->type ? hp->type : "");
    const char *p = hp->lr_policy;
    if (!moka_lr_policy_known(p))
        return moka_errf(err, MOKA_ERR_CONFIG,
                         "unknown lr_policy '%s' (known: exp, fixed, inv, multistep, poly, "
                         "sigmoid, step)",
                         p ? p : "");
    if ((is(p, "step") || is(p, "sigmoid")) && hp->stepsize <= 0)
        return moka_errf(err, MOKA_ERR_CONFIG, "lr_policy '%s' needs stepsize > 0, got %lld", p,
                         (long long)hp->stepsize);
    if ((is(p, "step") || is(p, "exp") || is(p, "inv") || is(p, "multistep") ||
         is(p, "sigmoid")) &&
        !(hp->gamma >= 0.0f))
        return moka_errf(err, MOKA_ERR_CONFIG, "lr_policy '%s' needs gamma >= 0, got %g", p,
                         (double)hp->gamma);
    if ((is(hp->type, "AdaGrad") || is(hp->type, "RMSProp")) && hp->momentum != 0.0f)
        return moka_errf(err, MOKA_ERR_CONFIG,
                         "solver type '%s' does not use momentum; remove it (got %g)", hp->type,
                         (double)hp->momentum);
    if (is(hp->type, "RMSProp") && !(hp->rms_decay >= 0.0f && hp->rms_decay < 1.0f))
        return moka_errf(err, MOKA_ERR_CONFIG, "rms_decay must be in [0, 1), got %g",
                         (double)hp->rms_decay);
    if (hp->iter_size < 1)
        return moka_errf(err, MOKA_ERR_CONFIG, "iter_size must be >= 1, got %lld",
                         (long long)hp->iter_size);
    return MOKA_OK;
}
