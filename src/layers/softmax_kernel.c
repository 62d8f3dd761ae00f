/* src/layers/softmax_kernel.c -- the softmax kernels of softmax_kernel.h (formulas there). */
#include "layers/softmax_kernel.h"

#include <math.h>

/* Element counts below this run on one thread: spawning the team would cost more. */
#define PAR_MIN 32768
/* Positions along `inner` handled together, so the loops over C run over contiguous memory. */
#define BLOCK 64

void moka_softmax_forward(const float *x, float *y, int64_t outer, int64_t ch, int64_t inner)
{
    if (outer * ch * inner == 0) return;
    const int64_t nblk = (inner + BLOCK - 1) / BLOCK;
#pragma omp parallel for if (outer * ch * inner >= PAR_MIN) schedule(static)
    for (int64_t t = 0; t < outer * nblk; t++) {
        const int64_t o = t / nblk, j0 = (t % nblk) * BLOCK;
        const int64_t w = inner - j0 < BLOCK ? inner - j0 : BLOCK;
        const float *xo = x + o * ch * inner + j0;
        float *yo = y + o * ch * inner + j0;
        float mx[BLOCK], sum[BLOCK];
        for (int64_t j = 0; j < w; j++) mx[j] = xo[j], sum[j] = 0.0f;
        for (int64_t c = 1; c < ch; c++)
            for (int64_t j = 0; j < w; j++) mx[j] = fmaxf(mx[j], xo[c * inner + j]);
        for (int64_t c = 0; c < ch; c++)
            for (int64_t j = 0; j < w; j++) {
                const float e = expf(xo[c * inner + j] - mx[j]);
                yo[c * inner + j] = e;
                sum[j] += e;
            }
        for (int64_t c = 0; c < ch; c++)
            for (int64_t j = 0; j < w; j++) yo[c * inner + j] /= sum[j];
    }
}

void moka_softmax_backward_add(const float *y, const float *dy, float *dx, int64_t outer,
                               int64_t ch, int64_t inner)
{
    if (outer * ch * inner == 0) return;
    const int64_t nblk = (inner + BLOCK - 1) / BLOCK;
#pragma omp parallel for if (outer * ch * inner >= PAR_MIN) schedule(static)
    for (int64_t t = 0; t < outer * nblk; t++) {
        const int64_t o = t / nblk, j0 = (t % nblk) * BLOCK;
        const int64_t w = inner - j0 < BLOCK ? inner - j0 : BLOCK;
        const int64_t off = o * ch * inner + j0;
        float dot[BLOCK];
        for (int64_t j = 0; j < w; j++) dot[j] = 0.0f;
        for (int64_t c = 0; c < ch; c++)
            for (int64_t j = 0; j < w; j++) {
                const int64_t i = off + c * inner + j;
                dot[j] += dy[i] * y[i];
            }
        for (int64_t c = 0; c < ch; c++)
            for (int64_t j = 0; j < w; j++) {
                const int64_t i = off + c * inner + j;
                dx[i] += y[i] * (dy[i] - dot[j]);
            }
    }
}
