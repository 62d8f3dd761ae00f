/* src/core/layout.c -- held copies of activations (see layout.h). */
#include "core/layout.h"

#include <stddef.h>

#include "backend/cpu/transpose.h"

bool moka_held_possible(const moka_tensor *t)
{
    return t->held_data && t->held_grad && t->ndim == 4;
}

const moka_held *moka_held_get(const moka_tensor *t, bool grad)
{
    const moka_held *h = grad ? t->held_grad : t->held_data;
    return h && h->layout != MOKA_LAYOUT_PLAIN ? h : NULL;
}

bool moka_held_set(moka_tensor *t, bool grad, moka_layout layout, float *ptr)
{
    if (!moka_held_possible(t) || layout == MOKA_LAYOUT_PLAIN || !ptr) return false;
    moka_held *h = grad ? t->held_grad : t->held_data;
    h->layout = layout;
    h->ptr = ptr;
    h->plain_stale = true;
    h->zero_pending = false;
    return true;
}

void moka_held_drop(moka_tensor *t, bool grad)
{
    moka_held *h = grad ? t->held_grad : t->held_data;
    if (!h) return;
    h->layout = MOKA_LAYOUT_PLAIN;
    h->ptr = NULL;
    h->plain_stale = false;
}

void moka_tensor_sync(moka_tensor *t, bool grad)
{
    moka_held *h = grad ? t->held_grad : t->held_data;
    if (!h) return;
    if (h->layout != MOKA_LAYOUT_PLAIN && h->plain_stale) {
        moka_layout_to_plain(h->layout, h->ptr, grad ? t->grad : t->data, t->shape);
        h->plain_stale = false;
        h->zero_pending = false;
    } else if (h->zero_pending) {
        moka_zero_floats(t->grad, moka_tensor_count(t));
        h->zero_pending = false;
    }
}

void moka_zero_floats(float *p, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= (1 << 16))
    for (int64_t i = 0; i < n; i++) p[i] = 0.0f;
}

/* Channels [c0, c0 + nc) of P pixels (pixel p at src + p * cs) to planes dst + c * P. */
static void group_to_planes(const float *src, int64_t cs, int64_t nc, int64_t P, float *dst)
{
#if defined(MOKA_HAVE_TRANSPOSE16)
    for (int64_t p = 0; p < P; p += 16)
        moka_cl_to_planes(src + p * cs, cs, P - p < 16 ? P - p : 16, nc, dst + p, P, false);
#else
    for (int64_t c = 0; c < nc; c++)
        for (int64_t p = 0; p < P; p++) dst[c * P + p] = src[p * cs + c];
#endif
}

void moka_layout_to_plain(moka_layout layout, const float *src, float *dst, const int64_t *nchw)
{
    const int64_t N = nchw[0], C = nchw[1], P = nchw[2] * nchw[3];
    if (layout == MOKA_LAYOUT_NHWC) {
        /* One image per step, in groups of 16 channels. */
#pragma omp parallel for schedule(static) if (N * C * P >= (1 << 15))
        for (int64_t n = 0; n < N; n++)
            for (int64_t c0 = 0; c0 < C; c0 += 16)
                group_to_planes(src + n * C * P + c0, C, C - c0 < 16 ? C - c0 : 16, P,
                                dst + (n * C + c0) * P);
    } else if (layout == MOKA_LAYOUT_NCHW16C) {
        /* One block of 16 channels per step. */
        const int64_t CB = C / 16;
#pragma omp parallel for schedule(static) if (N * C * P >= (1 << 15))
        for (int64_t nb = 0; nb < N * CB; nb++)
            group_to_planes(src + nb * 16 * P, 16, 16, P, dst + nb * 16 * P);
    }
}
