/* src/solvers/lr_policy.c -- Caffe's learning-rate policies (SGDSolver::GetLearningRate).
 *
 *   fixed      base_lr
 *   step       base_lr * gamma ^ floor(iter / stepsize)
 *   exp        base_lr * gamma ^ iter
 *   inv        base_lr * (1 + gamma * iter) ^ (-power)
 *   multistep  base_lr * gamma ^ current_step, current_step advanced by one per call while it
 *              has not passed the last stepvalue and iter >= stepvalue[current_step]
 *   poly       base_lr * (1 - iter / max_iter) ^ power
 *   sigmoid    base_lr / (1 + exp(-gamma * (iter - stepsize)))
 *
 * The arithmetic follows Caffe's types: Caffe's float parameters meet `pow(float, int)`, which
 * C++ evaluates in double, and float expressions elsewhere, then the rate is stored as float.
 */
#include <math.h>
#include <string.h>

#include "solvers/update.h"

static const char *const policies[] = {"fixed", "step", "exp", "inv", "multistep", "poly",
                                       "sigmoid"};

bool moka_lr_policy_known(const char *policy)
{
    if (!policy) return false;
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
        if (strcmp(policy, policies[i]) == 0) return true;
    return false;
}

float moka_lr_rate(const moka_solver_hparams *hp, int64_t iter, int64_t *current_step)
{
    int64_t local_step = 0;
    int64_t *step = current_step ? current_step : &local_step;
    const char *p = hp->lr_policy ? hp->lr_policy : "";
    const double base_lr = hp->base_lr;

    if (strcmp(p, "step") == 0) {
        /* A stepsize of 0 is rejected by moka_update_check; the guard keeps this total. */
        *step = hp->stepsize > 0 ? iter / hp->stepsize : 0;
        return (float)(base_lr * pow(hp->gamma, (double)*step));
    }
    if (strcmp(p, "exp") == 0) return (float)(base_lr * pow(hp->gamma, (double)iter));
    if (strcmp(p, "inv") == 0) {
        const float b = 1.0f + hp->gamma * (float)iter;
        return hp->base_lr * (float)pow(b, -(double)hp->power);
    }
    if (strcmp(p, "multistep") == 0) {
        /* Caffe's `if`, not a loop: one step per call, which is what makes the saved
         * current_step meaningful when stepvalues repeat. */
        if (*step < hp->num_stepvalue && iter >= hp->stepvalue[*step]) ++*step;
        return (float)(base_lr * pow(hp->gamma, (double)*step));
    }
    if (strcmp(p, "poly") == 0) {
        const float frac = 1.0f - (float)iter / (float)hp->max_iter;
        return hp->base_lr * (float)pow(frac, (double)hp->power);
    }
    if (strcmp(p, "sigmoid") == 0) {
        const float z = -hp->gamma * ((float)iter - (float)hp->stepsize);
        return hp->base_lr * (1.0f / (1.0f + expf(z)));
    }
    return hp->base_lr; /* "fixed", and unknown names (checked by the caller) */
}
