/* src/solvers/adam.c -- Adam (Kingma & Ba, 2015; Caffe's AdamSolver), with Caffe's `momentum`
 * as beta1, `momentum2` as beta2 and `delta` as epsilon.
 *
 *   m <- beta1 * m + (1 - beta1) * g
 *   v <- beta2 * v + (1 - beta2) * g^2
 *   g <- local_rate * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + delta),  t = iter + 1
 *
 * Two history arrays per parameter: hist[0] = m, hist[1] = v (Caffe's second history set).
 */
#include <math.h>

#include "solvers/update.h"

static void adam_compute(const moka_solver_hparams *hp, int64_t iter, float local_rate,
                         int64_t count, float *diff, float *const *hist)
{
    const float beta1 = hp->momentum, beta2 = hp->momentum2, eps = hp->delta;
    const double t = (double)(iter + 1);
    /* Caffe evaluates the bias correction in double (pow of a float and an int), then stores
     * it as float. */
    const float correction = (float)(sqrt(1.0 - pow(beta2, t)) / (1.0 - pow(beta1, t)));
    const float step = local_rate * correction;
    float *m = hist[0], *v = hist[1];
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
    for (int64_t i = 0; i < count; i++) {
        const float g = diff[i];
        m[i] = (1.0f - beta1) * g + beta1 * m[i];
        v[i] = (1.0f - beta2) * (g * g) + beta2 * v[i];
        diff[i] = step * (m[i] / (sqrtf(v[i]) + eps));
    }
}

const moka_update_rule moka_update_adam = {
    .type = "Adam", .num_history = 2, .compute = adam_compute};
