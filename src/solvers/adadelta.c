/* src/solvers/adadelta.c -- AdaDelta (Zeiler, 2012; Caffe's AdaDeltaSolver), with Caffe's
 * `momentum` as the decay rho and `delta` as epsilon.
 *
 *   h0 <- rho * h0 + (1 - rho) * g^2                 (history of squared gradients)
 *   u  <- g * sqrt((h1 + delta) / (h0 + delta))      (h1 still from the previous step)
 *   h1 <- rho * h1 + (1 - rho) * u^2                 (history of squared updates)
 *   g  <- local_rate * u
 *
 * Two history arrays per parameter: hist[0] = h0 (Caffe's first history set), hist[1] = h1
 * (the set Caffe appends after all the h0s).
 */
#include <math.h>

#include "solvers/update.h"

static void adadelta_compute(const moka_solver_hparams *hp, int64_t iter MOKA_UNUSED,
                             float local_rate, int64_t count, float *diff, float *const *hist)
{
    const float rho = hp->momentum, keep = 1.0f - rho, delta = hp->delta;
    float *h0 = hist[0], *h1 = hist[1];
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
    for (int64_t i = 0; i < count; i++) {
        h0[i] = keep * (diff[i] * diff[i]) + rho * h0[i];
        const float u = diff[i] * sqrtf((delta + h1[i]) / (delta + h0[i]));
        h1[i] = keep * (u * u) + rho * h1[i];
        diff[i] = local_rate * u;
    }
}

const moka_update_rule moka_update_adadelta = {
    .type = "AdaDelta", .num_history = 2, .compute = adadelta_compute};
