/* src/solvers/rmsprop.c -- RMSProp (Tieleman & Hinton, 2012; Caffe's RMSPropSolver).
 *
 *   h <- rms_decay * h + (1 - rms_decay) * g^2
 *   g <- local_rate * g / (sqrt(h) + delta)
 *
 * One history array h per parameter. Caffe forbids momentum here (moka_update_check).
 */
#include <math.h>

#include "solvers/update.h"

static void rmsprop_compute(const moka_solver_hparams *hp, int64_t iter MOKA_UNUSED,
                            float local_rate, int64_t count, float *diff, float *const *hist)
{
    const float decay = hp->rms_decay, keep = 1.0f - decay, delta = hp->delta;
    float *h = hist[0];
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
    for (int64_t i = 0; i < count; i++) {
        h[i] = keep * (diff[i] * diff[i]) + decay * h[i];
        diff[i] = local_rate * (diff[i] / (sqrtf(h[i]) + delta));
    }
}

const moka_update_rule moka_update_rmsprop = {
    .type = "RMSProp", .num_history = 1, .compute = rmsprop_compute};
