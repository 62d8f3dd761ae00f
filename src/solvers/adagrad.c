/* src/solvers/adagrad.c -- AdaGrad (Duchi et al., 2011; Caffe's AdaGradSolver).
 *
 *   h <- h + g^2
 *   g <- local_rate * g / (sqrt(h) + delta)
 *
 * One history array h per parameter. Caffe forbids momentum here (moka_update_check).
 */
#include <math.h>

#include "solvers/update.h"

static void adagrad_compute(const moka_solver_hparams *hp, int64_t iter MOKA_UNUSED,
                            float local_rate, int64_t count, float *diff, float *const *hist)
{
    const float delta = hp->delta;
    float *h = hist[0];
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
    for (int64_t i = 0; i < count; i++) {
        h[i] = diff[i] * diff[i] + h[i];
        diff[i] = local_rate * (diff[i] / (sqrtf(h[i]) + delta));
    }
}

const moka_update_rule moka_update_adagrad = {
    .type = "AdaGrad", .num_history = 1, .compute = adagrad_compute};
