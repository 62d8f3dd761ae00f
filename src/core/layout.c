/* src/core/layout.c -- held copies of activations (see layout.h). */
#include "core/layout.h"

#include <stddef.h>

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
    if (!h || h->layout == MOKA_LAYOUT_PLAIN || !h->plain_stale) return;
    moka_layout_to_plain(h->layout, h->ptr, grad ? t->grad : t->data, t->shape);
    h->plain_stale = false;
}

void moka_layout_to_plain(moka_layout layout, const float *src, float *dst, const int64_t *nchw)
{
    const int64_t N = nchw[0], C = nchw[1], P = nchw[2] * nchw[3];
    if (layout == MOKA_LAYOUT_NHWC) {
        /* One image per step: (P, C) -> (C, P). */
#pragma omp parallel for schedule(static) if (N * C * P >= (1 << 15))
        for (int64_t n = 0; n < N; n++) {
            const float *s = src + n * C * P;
            float *d = dst + n * C * P;
            for (int64_t c = 0; c < C; c++)
                for (int64_t p = 0; p < P; p++) d[c * P + p] = s[p * C + c];
        }
    } else if (layout == MOKA_LAYOUT_NCHW16C) {
        /* One block of 16 channels per step: (P, 16) -> (16, P). */
        const int64_t CB = C / 16;
#pragma omp parallel for schedule(static) if (N * C * P >= (1 << 15))
        for (int64_t nb = 0; nb < N * CB; nb++) {
            const float *s = src + nb * 16 * P;
            float *d = dst + nb * 16 * P;
            for (int64_t c = 0; c < 16; c++)
                for (int64_t p = 0; p < P; p++) d[c * P + p] = s[p * 16 + c];
        }
    }
}
