/* src/backend/cpu/conv_dw.c -- direct weight and bias gradients of first-layer convolutions
 * (conv_dw.h). */
#include "backend/cpu/conv_dw.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define HAVE_DIRECT 1
#endif

enum { LANES = 16, MAX_KW = 7, MAX_V = 2 };

bool moka_conv_dw_fits(const moka_conv_geom *g, int64_t group)
{
#if defined(HAVE_DIRECT)
    return group == 1 && g->stride_h == 1 && g->stride_w == 1 && g->dilation_h == 1 &&
           g->dilation_w == 1 && g->pad_w == 0 && g->out_w >= 1 && g->out_w <= LANES * MAX_V &&
           g->kernel_w >= 1 && g->kernel_w <= MAX_KW && g->out_h >= 1;
#else
    (void)g;
    (void)group;
    return false;
#endif
}

void moka_conv_dw_free(moka_conv_dw *k)
{
    free(k->work);
    memset(k, 0, sizeof *k);
}

#if defined(HAVE_DIRECT)
/* Output channels per pass: two while their sums fit in registers with the rows they need. */
static int channels_per_pass(int64_t kw, int64_t v) { return 2 * kw * v <= 20 ? 2 : 1; }

/* Adds, for MB output channels, the products of `rows` rows of dy (channel b's row r at
 * d[b] + r * OW) with the kw shifted rows of x (row r at xr + r * W) into their sums
 * (channel b's kernel column kx, vector v at acc[b] + (kx V + v) 16). The sums live in
 * registers over the rows; `tail` masks the last vector's lanes (output columns past OW). */
static inline __attribute__((always_inline)) void rows_kernel(const int KW, const int V,
                                                              const int MB, float *const acc[2],
                                                              const float *xr, int64_t W,
                                                              const float *const d[2], int64_t OW,
                                                              int64_t rows, __mmask16 tail)
{
    __m512 a[2][MAX_KW][MAX_V];
#pragma GCC unroll 2
    for (int b = 0; b < MB; b++)
#pragma GCC unroll 7
        for (int kx = 0; kx < KW; kx++)
#pragma GCC unroll 2
            for (int v = 0; v < V; v++)
                a[b][kx][v] = _mm512_loadu_ps(acc[b] + (kx * V + v) * LANES);
    for (int64_t r = 0; r < rows; r++) {
        __m512 dv[2][MAX_V];
#pragma GCC unroll 2
        for (int b = 0; b < MB; b++)
#pragma GCC unroll 2
            for (int v = 0; v < V; v++)
                dv[b][v] = _mm512_maskz_loadu_ps(v == V - 1 ? tail : (__mmask16)0xffff,
                                                 d[b] + r * OW + v * LANES);
        const float *x = xr + r * W;
#pragma GCC unroll 7
        for (int kx = 0; kx < KW; kx++)
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) {
                /* Lanes past OW are masked: they would read past the row (and the buffer). */
                const __m512 xv = _mm512_maskz_loadu_ps(v == V - 1 ? tail : (__mmask16)0xffff,
                                                        x + kx + v * LANES);
#pragma GCC unroll 2
                for (int b = 0; b < MB; b++)
                    a[b][kx][v] = _mm512_fmadd_ps(dv[b][v], xv, a[b][kx][v]);
            }
    }
#pragma GCC unroll 2
    for (int b = 0; b < MB; b++)
#pragma GCC unroll 7
        for (int kx = 0; kx < KW; kx++)
#pragma GCC unroll 2
            for (int v = 0; v < V; v++)
                _mm512_storeu_ps(acc[b] + (kx * V + v) * LANES, a[b][kx][v]);
}

/* rows_kernel with its shape as constants, so its sums become registers. */
static void rows_dispatch(int64_t kw, int64_t v, int mb, float *const acc[2], const float *xr,
                          int64_t W, const float *const d[2], int64_t OW, int64_t rows,
                          __mmask16 tail)
{
#define MOKA_DW_CASE(K)                                                                            \
    case K:                                                                                        \
        if (v == 1 && mb == 2) rows_kernel(K, 1, 2, acc, xr, W, d, OW, rows, tail);                \
        else if (v == 1) rows_kernel(K, 1, 1, acc, xr, W, d, OW, rows, tail);                      \
        else if (mb == 2) rows_kernel(K, 2, 2, acc, xr, W, d, OW, rows, tail);                     \
        else rows_kernel(K, 2, 1, acc, xr, W, d, OW, rows, tail);                                  \
        break;
    switch (kw) {
        MOKA_DW_CASE(1)
        MOKA_DW_CASE(2)
        MOKA_DW_CASE(3)
        MOKA_DW_CASE(4)
        MOKA_DW_CASE(5)
        MOKA_DW_CASE(6)
        MOKA_DW_CASE(7)
    default:
        break;
    }
#undef MOKA_DW_CASE
}

/* One thread's images [n0, n1): vector sums `acc` (out_channels C kh kw kernel positions, then
 * out_channels bias sums; V vectors each) accumulated from zero. */
static void thread_sums(const moka_conv_geom *g, int64_t M, const float *x, const float *dy,
                        int64_t n0, int64_t n1, float *acc, bool bias)
{
    const int64_t C = g->channels, H = g->height, W = g->width, KH = g->kernel_h,
                  KW = g->kernel_w, OH = g->out_h, OW = g->out_w, P = OH * OW;
    const int64_t V = (OW + LANES - 1) / LANES;
    const int64_t vec = V * LANES; /* floats per sum */
    const __mmask16 tail = (__mmask16)((1u << (OW - (V - 1) * LANES)) - 1u);
    const int mbmax = channels_per_pass(KW, V);
    float *bacc = acc + M * C * KH * KW * vec;
    for (int64_t n = n0; n < n1; n++) {
        const float *xn = x + n * C * H * W, *dyn = dy + n * M * P;
        for (int64_t m0 = 0; m0 < M; m0 += mbmax) {
            const int mb = M - m0 < mbmax ? (int)(M - m0) : mbmax;
            const float *d0[2] = {dyn + m0 * P, dyn + (m0 + mb - 1) * P};
            for (int64_t c = 0; c < C; c++)
                for (int64_t ky = 0; ky < KH; ky++) {
                    /* Output rows whose input row oy + ky - pad_h is inside the image. */
                    int64_t r0 = g->pad_h - ky, r1 = H + g->pad_h - ky;
                    if (r0 < 0) r0 = 0;
                    if (r1 > OH) r1 = OH;
                    if (r1 <= r0) continue;
                    float *const a[2] = {acc + (((m0 * C + c) * KH + ky) * KW) * vec,
                                         acc + ((((m0 + mb - 1) * C + c) * KH + ky) * KW) * vec};
                    const float *const d[2] = {d0[0] + r0 * OW, d0[1] + r0 * OW};
                    rows_dispatch(KW, V, mb, a, xn + (c * H + r0 + ky - g->pad_h) * W, W, d, OW,
                                  r1 - r0, tail);
                }
            if (!bias) continue;
            for (int b = 0; b < mb; b++) {
                float *s = bacc + (m0 + b) * vec;
                const float *p = dyn + (m0 + b) * P;
                for (int64_t v = 0; v < V; v++) {
                    const __mmask16 mk = v == V - 1 ? tail : (__mmask16)0xffff;
                    __m512 t = _mm512_loadu_ps(s + v * LANES);
                    for (int64_t r = 0; r < OH; r++)
                        t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(mk, p + r * OW + v * LANES));
                    _mm512_storeu_ps(s + v * LANES, t);
                }
            }
        }
    }
}
#endif

moka_status moka_conv_dw_run(moka_conv_dw *k, const moka_conv_geom *g, int64_t out_channels,
                             int64_t num, const float *x, const float *dy, float *dw, float *db,
                             moka_err *err)
{
#if defined(HAVE_DIRECT)
    if (!moka_conv_dw_fits(g, 1))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "direct weight gradient: geometry not fitted");
    if (num <= 0) return MOKA_OK;
    const int64_t M = out_channels, wc = M * g->channels * g->kernel_h * g->kernel_w;
    const int64_t V = (g->out_w + LANES - 1) / LANES;
    /* Per thread: the vector sums (weights, then bias), then its reduced weight and bias
     * gradients. */
    const int64_t sums = (wc + M) * V * LANES, per = sums + wc + M;
    int64_t T = omp_get_max_threads();
    if (T > num) T = num;
    if (T < 1) T = 1;
    if (per * T > k->work_cap) {
        float *w = realloc(k->work, (size_t)(per * T) * sizeof(float));
        if (!w) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for convolution scratch");
        k->work = w;
        k->work_cap = per * T;
    }
    int used = 1;
#pragma omp parallel num_threads((int)T) if (T > 1)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        if (t == 0) used = nt;
        float *acc = k->work + t * per, *red = acc + sums;
        memset(acc, 0, (size_t)sums * sizeof(float));
        thread_sums(g, M, x, dy, num * t / nt, num * (t + 1) / nt, acc, db != NULL);
        /* Lanes in a fixed order: vector 0's lanes 0..15, then vector 1's. */
        for (int64_t i = 0; i < wc + M; i++) {
            const float *s = acc + i * V * LANES;
            float r = 0.0f;
            for (int64_t l = 0; l < V * LANES; l++) r += s[l];
            red[i] = r;
        }
    }
    /* Threads' gradients in thread order. */
    for (int64_t i = 0; i < wc + M; i++) {
        if (i >= wc && !db) break;
        float *out = i < wc ? dw + i : db + (i - wc);
        float s = *out;
        for (int t = 0; t < used; t++) s += k->work[t * per + sums + i];
        *out = s;
    }
    return MOKA_OK;
#else
    (void)k;
    (void)g;
    (void)out_channels;
    (void)num;
    (void)x;
    (void)dy;
    (void)dw;
    (void)db;
    return moka_errf(err, MOKA_ERR_UNSUPPORTED, "direct weight gradient needs AVX-512");
#endif
}
