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

/* The fused step (see update.h): the branches on the settings sit outside the loops, so each
 * loop is one streaming pass over data, diff and history. */
static void sgd_fused(const moka_solver_hparams *hp, int64_t iter MOKA_UNUSED, float local_rate,
                      float decay, float grad_scale, int64_t count, float *data, float *diff,
                      float *const *hist)
{
    const float momentum = hp->momentum;
    float *h = hist[0];
    if (grad_scale != 1.0f)
#pragma omp simd
        for (int64_t i = 0; i < count; i++) diff[i] *= grad_scale;
    if (decay == 0.0f) {
#pragma omp simd
        for (int64_t i = 0; i < count; i++) {
            h[i] = local_rate * diff[i] + momentum * h[i];
            data[i] -= h[i];
        }
    } else if (hp->l1) {
#pragma omp simd
        for (int64_t i = 0; i < count; i++) {
            const float sign = (float)((0.0f < data[i]) - (data[i] < 0.0f));
            const float g = diff[i] + decay * sign;
            h[i] = local_rate * g + momentum * h[i];
            data[i] -= h[i];
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < count; i++) {
            const float g = diff[i] + decay * data[i];
            h[i] = local_rate * g + momentum * h[i];
            data[i] -= h[i];
        }
    }
}

const moka_update_rule moka_update_sgd = {
    .type = "SGD", .num_history = 1, .compute = sgd_compute, .fused = sgd_fused};
