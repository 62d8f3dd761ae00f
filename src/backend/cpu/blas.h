/* src/backend/cpu/blas.h -- the BLAS calls layers use (oneDNN's sgemm, OpenBLAS's CBLAS for the
 * rest).
 *
 * Row-major, as Caffe's caffe_cpu_gemm: C(m x n) = alpha * op(A)(m x k) * op(B)(k x n) + beta * C,
 * with op(A) = A (m x k, lda = k) or A^T (A stored k x m, lda = m); likewise B. Thread-safe; the
 * BLAS threads come from the OpenMP pool sized by moka_ctx_apply_threads.
 */
#ifndef MOKA_BLAS_H
#define MOKA_BLAS_H

#include <stdbool.h>
#include <stdint.h>

void moka_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float *a, const float *b, float beta, float *c);
/* y(m or n) = alpha * op(A) x + beta * y, A stored m x n row-major. */
void moka_sgemv(bool trans_a, int64_t m, int64_t n, float alpha, const float *a, const float *x,
                float beta, float *y);
/* y += alpha * x */
void moka_saxpy(int64_t n, float alpha, const float *x, float *y);
float moka_sdot(int64_t n, const float *x, const float *y);
/* Sets the BLAS library's own thread count (called by moka_ctx_apply_threads). */
void moka_blas_set_threads(int n);

#endif /* MOKA_BLAS_H */
