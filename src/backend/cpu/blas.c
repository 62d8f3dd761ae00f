/* src/backend/cpu/blas.c -- thin wrappers over CBLAS (OpenBLAS). */
#include "backend/cpu/blas.h"

#include <cblas.h>

void moka_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, const float *b, float beta, float *c)
{
    const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda, b,
                (int)ldb, beta, c, (int)n);
}

void moka_sgemv(bool trans_a, int64_t m, int64_t n, float alpha, const float *a, const float *x,
                float beta, float *y)
{
    cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, (int)m, (int)n, alpha, a,
                (int)n, x, 1, beta, y, 1);
}

void moka_saxpy(int64_t n, float alpha, const float *x, float *y)
{
    cblas_saxpy((int)n, alpha, x, 1, y, 1);
}

float moka_sdot(int64_t n, const float *x, const float *y) { return cblas_sdot((int)n, x, 1, y, 1); }

extern void openblas_set_num_threads(int num_threads);

void moka_blas_set_threads(int n) { openblas_set_num_threads(n); }
