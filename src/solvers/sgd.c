/* src/solvers/sgd.c -- stochastic gradient descent with momentum (Caffe's SGDSolver).
 *
 *   h <- momentum * h + local_rate * g
 *   g <- h                                 (the step: w -= g)
 *
 * One history array h per parameter.
 */
#include "solvers/update.h"

static void sgd_compute(const moka_solver_hparams *hp, int64_t iter MOKA_UNUSED, float local_rate,
                        int64_t count, float *diff, float *const *hist)
{
    const float momentum = hp->momentum;
    float *h = hist[0];
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
    for (int64_t i = 0; i < count; i++) {
        h[i] = local_rate * diff[i] + momentum * h[i];
        diff[i] = h[i];
    }
}

const moka_update_rule moka_update_sgd = {.type = "SGD", .num_history = 1, .compute = sgd_compute};
