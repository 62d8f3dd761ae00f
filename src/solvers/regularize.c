/* src/solvers/regularize.c -- the steps between backward and the update rule (Caffe's
 * SGDSolver::ClipGradients, Normalize and Regularize), over slices of the flat gradient block.
 *
 *   clip        g *= c / ||g||_2 over all slots together, when ||g||_2 > c (c >= 0)
 *   normalize   g *= 1 / iter_size
 *   regularize  g += wd * decay_mult * w        (L2)
 *               g += wd * decay_mult * sign(w)  (L1)
 */
#include <math.h>

#include "core/reduce.h"
#include "solvers/update.h"

/* The sum of squares is split into fixed chunks whose partial sums are added in index order, so
 * the result is identical for any number of threads. */
#define CHUNK 16384

static void sumsq_chunk(const void *ctx, int64_t lo, int64_t hi, double *out)
{
    const float *x = ctx;
    double s = 0.0;
    for (int64_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
    out[0] = s;
}

static double sumsq(const float *x, int64_t count)
{
    double total;
    moka_reduce_chunks(count, CHUNK, 1, MOKA_UPDATE_OMP_MIN, sumsq_chunk, x, &total);
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
