/* src/solvers/regularize.c -- the steps between backward and the update rule (Caffe's
 * SGDSolver::ClipGradients, Normalize and Regularize), over slices of the flat gradient block.
 *
 *   clip        g *= c / ||g||_2 over all slots together, when ||g||_2 > c (c >= 0)
 *   normalize   g *= 1 / iter_size
 *   regularize  g += wd * decay_mult * w        (L2)
 *               g += wd * decay_mult * sign(w)  (L1)
 */
#include <math.h>

#include "solvers/update.h"

/* The sum of squares is split into fixed chunks whose partial sums are added in index order, so
 * the result is identical for any number of threads. */
#define CHUNK 16384
#define CHUNKS_PER_ROUND 64

static double sumsq(const float *x, int64_t count)
{
    double total = 0.0;
    for (int64_t base = 0; base < count; base += (int64_t)CHUNK * CHUNKS_PER_ROUND) {
        double part[CHUNKS_PER_ROUND] = {0};
        const int64_t left = count - base;
        const int nchunks = (int)(left >= (int64_t)CHUNK * CHUNKS_PER_ROUND
                                      ? CHUNKS_PER_ROUND
                                      : (left + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) if (left >= MOKA_UPDATE_OMP_MIN)
        for (int c = 0; c < nchunks; c++) {
            const int64_t lo = base + (int64_t)c * CHUNK;
            const int64_t hi = lo + CHUNK < count ? lo + CHUNK : count;
            double s = 0.0;
            for (int64_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
            part[c] = s;
        }
        for (int c = 0; c < nchunks; c++) total += part[c];
    }
    return total;
}

static void scale(float *x, int64_t count, float a)
{
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
    for (int64_t i = 0; i < count; i++) x[i] *= a;
}

double moka_update_clip(const moka_solver_hparams *hp, const moka_param_slot *slots, int n,
                        float *diff)
{
    const float clip = hp->clip_gradients;
    /* Caffe returns early only for a negative threshold: 0 is a real (if odd) setting. */
    if (!(clip >= 0.0f)) return 0.0;
    double total = 0.0;
    for (int k = 0; k < n; k++) total += sumsq(diff + slots[k].offset, slots[k].count);
    const double norm = sqrt(total);
    const float l2norm = (float)norm;
    if (l2norm > clip) {
        const float factor = clip / l2norm;
        for (int k = 0; k < n; k++) scale(diff + slots[k].offset, slots[k].count, factor);
    }
    return norm;
}

void moka_update_normalize(const moka_solver_hparams *hp, const moka_param_slot *s, float *diff)
{
    if (hp->iter_size <= 1) return;
    scale(diff + s->offset, s->count, 1.0f / (float)hp->iter_size);
}

void moka_update_regularize(const moka_solver_hparams *hp, const moka_param_slot *s,
                            const float *data, float *diff)
{
    const float decay = hp->weight_decay * s->decay_mult;
    if (decay == 0.0f) return;
    const float *w = data + s->offset;
    float *g = diff + s->offset;
    const int64_t count = s->count;
    if (hp->l1) {
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
        for (int64_t i = 0; i < count; i++) {
            const float sign = (float)((0.0f < w[i]) - (w[i] < 0.0f));
            g[i] += decay * sign;
        }
    } else {
#pragma omp parallel for schedule(static) if (count >= MOKA_UPDATE_OMP_MIN)
        for (int64_t i = 0; i < count; i++) g[i] += decay * w[i];
    }
}
