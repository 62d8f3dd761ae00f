/* src/backend/cpu/transpose.h -- 16 x 16 transposes of 32-bit elements in AVX-512 registers,
 * for moving data between plain (N, C, H, W) planes and layouts that interleave 16 channels
 * per pixel (channels-last, nChw16c). Only with AVX-512 (MOKA_HAVE_TRANSPOSE16). */
#ifndef MOKA_TRANSPOSE_H
#define MOKA_TRANSPOSE_H

#if defined(__AVX512F__)
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define MOKA_HAVE_TRANSPOSE16 1

/* r[i] <- column i of the 16 x 16 matrix whose rows are r[0..15]. */
static inline void moka_transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* Then r[4 g + k], 128-bit block m: column 4 m + k of rows 4 g .. 4 g + 3. */
    for (int g = 0; g < 4; g++) {
        r[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

static inline __mmask16 moka_mask16(int64_t n)
{
    return (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u);
}

/* nc <= 16 channels of cnt <= 16 pixels (32-bit elements; pixel j at src + j * src_stride) to
 * nc planes (channel c of pixel j at dst + c * dst_stride + j), written, or added when `add`
 * (floats). */
static inline void moka_cl_to_planes(const void *src, int64_t src_stride, int64_t cnt, int64_t nc,
                                     void *dst, int64_t dst_stride, bool add)
{
    __m512 r[16];
    const __mmask16 mc = moka_mask16(nc), m = moka_mask16(cnt);
    for (int j = 0; j < 16; j++)
        r[j] = j < cnt ? _mm512_maskz_loadu_ps(mc, (const float *)src + j * src_stride)
                       : _mm512_setzero_ps();
    moka_transpose16(r);
    /* Sixteen planes are more streams than the hardware prefetcher follows: fetch ahead. */
    for (int c = 0; c < nc; c++) __builtin_prefetch((float *)dst + c * dst_stride + 64, 1);
    for (int c = 0; c < nc; c++) {
        float *d = (float *)dst + c * dst_stride;
        const __m512 v = add ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), r[c]) : r[c];
        _mm512_mask_storeu_ps(d, m, v);
    }
}

/* Loads nc <= 16 planes (channel c of pixel j at src + c * src_stride + j) of cnt <= 16 pixels
 * and transposes them: r[j] holds pixel j's channels (zero beyond nc, and for j >= cnt). */
static inline void moka_planes_load_cl(const void *src, int64_t src_stride, int64_t cnt,
                                       int64_t nc, __m512 r[16])
{
    const __mmask16 m = moka_mask16(cnt);
    for (int c = 0; c < nc; c++) __builtin_prefetch((const float *)src + c * src_stride + 64);
    for (int c = 0; c < 16; c++)
        r[c] = c < nc ? _mm512_maskz_loadu_ps(m, (const float *)src + c * src_stride)
                      : _mm512_setzero_ps();
    moka_transpose16(r);
}

/* The inverse of moka_cl_to_planes (written): nc <= 16 planes of cnt <= 16 pixels to cnt pixels
 * of nc channels (pixel j at dst + j * dst_stride). */
static inline void moka_planes_to_cl(const void *src, int64_t src_stride, int64_t cnt, int64_t nc,
                                     void *dst, int64_t dst_stride)
{
    __m512 r[16];
    moka_planes_load_cl(src, src_stride, cnt, nc, r);
    const __mmask16 mc = moka_mask16(nc);
    for (int j = 0; j < cnt; j++) _mm512_mask_storeu_ps((float *)dst + j * dst_stride, mc, r[j]);
}
#endif

#endif /* MOKA_TRANSPOSE_H */
