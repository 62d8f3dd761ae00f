/* src/solvers/nesterov.c -- Nesterov's accelerated gradient (Caffe's NesterovSolver).
 *
 *   h' <- momentum * h + local_rate * g
 *   g  <- (1 + momentum) * h' - momentum * h      (step back to h, then over-step along h')
 *
 * One history array h per parameter.
 */
#include "solvers/update.h"

static void nesterov_compute(const moka_solver_hparams *hp, int64_t iter MOKA_UNUSED,
                             float local_rate, int64_t count, float *diff, float *const *hist)
{
    const float momentum = hp->momentum, over = 1.0f + momentum;
    float *h = hist[0];
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
    for (int64_t i = 0; i < count; i++) {
        const float h_old = h[i];
        h[i] = local_rate * diff[i] + momentum * h[i];
        diff[i] = over * h[i] + -momentum * h_old;
    }
}

const moka_update_rule moka_update_nesterov = {
    .type = "Nesterov", .num_history = 1, .compute = nesterov_compute};
