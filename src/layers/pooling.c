/* src/layers/pooling.c -- 2-D max and average pooling, as Caffe's PoolingLayer.
 *   window (ph, pw): rows [ph s_h - p_h, ph s_h - p_h + k_h) clipped to [0, H), likewise columns
 *   MAX  y = max over the window; the flat index h W + w of the first maximum is kept (argmax)
 *   AVE  y = sum over the window / pool_size, where pool_size counts the window clipped to the
 *        padded bounds [-p, H + p) (so padding inside those bounds counts, as in Caffe)
 *   PH = ceil((H + 2 p_h - k_h) / s_h) + 1 (floor with round_mode FLOOR); with padding, a last
 *        window that would start in the bottom/right padding is dropped (PH - 1)
 *   bottom[0]  x     (N, C, H, W)
 *   top[0]     y     (N, C, PH, PW)
 *   top[1]     mask  (N, C, PH, PW)  MAX only, optional: the argmax indices as floats
 * global_pooling makes the window the whole image (k = H x W, pad 0, stride 1).
 * With stride > kernel and no padding Caffe's ceil rounding can leave a last window entirely
 * outside the image; it is kept (same output shape as Caffe) and reads as -FLT_MAX with mask -1
 * (MAX) or 0 (AVE, where Caffe divides 0 by a non-positive pool size), and gets no gradient.
 * Reference: Caffe's pooling_layer.cpp.
 */
#include <float.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "backend/cpu/transpose.h"
#include "core/layout.h"

typedef struct pool_state {
    bool max, global, floor_mode;
    int64_t kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w;
    int64_t num, channels, height, width, pooled_h, pooled_w;
    int32_t *argmax; /* (N, C, PH, PW) for MAX */
    int64_t argmax_cap;
    /* Outputs whose window lies wholly inside the image, [oh0, oh1) x [ow0, ow1): the fast
     * kernels take these, the generic code the border (empty ranges when none). */
    int64_t oh0, oh1, ow0, ow1;
    bool fast; /* engine FAST and a shape the vectorised kernel takes (fast_shape) */
    /* The last forward read x held in this layout (src/core/layout.h; PLAIN: it read plain x). */
    moka_layout held_in;
    float *dx_held; /* the input gradient in held_in's layout, when backward writes it so */
    int64_t dx_held_cap;
    float *y_held; /* the output in held_in's layout, when forward holds it */
    int64_t y_held_cap;
} pool_state;

/* Like moka_layer_errf, positioned at `field` of pooling_param when the config sets it. */
static moka_status param_errf(const moka_layer *l, moka_err *err, moka_status code,
                              const char *field, const char *fmt, ...) MOKA_PRINTF(5, 6);
static moka_status param_errf(const moka_layer *l, moka_err *err, moka_status code,
                              const char *field, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const moka_pt_node *at = field ? moka_pt_node_at(l->param, field, 0) : NULL;
    if (at) return moka_pt_errf(err, code, at, "layer '%s' (%s): %s", l->name, l->ops->type, msg);
    return moka_layer_errf(l, err, code, "%s", msg);
}

/* Caffe's rule for pad and stride: the single field, or both _h and _w, never a mix. */
static moka_status read_pair(const moka_layer *l, const char *f, const char *fh, const char *fw,
                             int64_t *h, int64_t *w, moka_err *err)
{
    const moka_pt_node *p = l->param;
    const bool has = moka_pt_has(p, f), has_h = moka_pt_has(p, fh), has_w = moka_pt_has(p, fw);
    if (has_h || has_w) {
        if (has || !(has_h && has_w))
            return param_errf(l, err, MOKA_ERR_CONFIG, has_h ? fh : fw,
                              "give either %s or both %s and %s", f, fh, fw);
        *h = moka_pt_int(p, fh);
        *w = moka_pt_int(p, fw);
    } else {
        *h = *w = moka_pt_int(p, f);
    }
    return MOKA_OK;
}

static moka_status pool_setup(moka_layer *l, moka_err *err)
{
    pool_state *s = l->state;
    const moka_pt_node *p = l->param;
    const char *method = moka_pt_str(p, "pool");
    if (strcmp(method, "STOCHASTIC") == 0)
        return param_errf(l, err, MOKA_ERR_UNSUPPORTED, "pool",
                          "pool: STOCHASTIC is not supported (only MAX and AVE)");
    s->max = strcmp(method, "MAX") == 0;
    if (!s->max && l->num_top > 1)
        return param_errf(l, err, MOKA_ERR_CONFIG, "pool",
                          "only MAX pooling has a second (mask) top; %s takes one top", method);
    s->global = moka_pt_bool(p, "global_pooling");
    s->floor_mode = strcmp(moka_pt_str(p, "round_mode"), "FLOOR") == 0;

    const bool has_k = moka_pt_has(p, "kernel_size"), has_kh = moka_pt_has(p, "kernel_h"),
               has_kw = moka_pt_has(p, "kernel_w");
    if (s->global) {
        if (has_k || has_kh || has_kw)
            return param_errf(l, err, MOKA_ERR_CONFIG,
                              has_k ? "kernel_size" : has_kh ? "kernel_h" : "kernel_w",
                              "global_pooling takes the kernel from the input; do not give "
                              "kernel_size or kernel_h/kernel_w");
    } else if (has_kh || has_kw) {
        if (has_k || !(has_kh && has_kw))
            return param_errf(l, err, MOKA_ERR_CONFIG, has_kh ? "kernel_h" : "kernel_w",
                              "give either kernel_size or both kernel_h and kernel_w");
        s->kernel_h = moka_pt_int(p, "kernel_h");
        s->kernel_w = moka_pt_int(p, "kernel_w");
    } else {
        if (!has_k)
            return param_errf(l, err, MOKA_ERR_CONFIG, NULL,
                              "pooling_param needs kernel_size (or kernel_h and kernel_w, or "
                              "global_pooling)");
        s->kernel_h = s->kernel_w = moka_pt_int(p, "kernel_size");
    }
    MOKA_TRY(read_pair(l, "pad", "pad_h", "pad_w", &s->pad_h, &s->pad_w, err));
    MOKA_TRY(read_pair(l, "stride", "stride_h", "stride_w", &s->stride_h, &s->stride_w, err));
    if (!s->global && (s->kernel_h <= 0 || s->kernel_w <= 0))
        return param_errf(l, err, MOKA_ERR_CONFIG, has_k ? "kernel_size" : "kernel_h",
                          "kernel size must be nonzero, got %lld x %lld", (long long)s->kernel_h,
                          (long long)s->kernel_w);
    if (s->stride_h <= 0 || s->stride_w <= 0)
        return param_errf(l, err, MOKA_ERR_CONFIG,
                          moka_pt_has(p, "stride_h") ? "stride_h" : "stride",
                          "stride must be nonzero, got %lld x %lld", (long long)s->stride_h,
                          (long long)s->stride_w);
    if (s->global && (s->pad_h || s->pad_w || s->stride_h != 1 || s->stride_w != 1))
        return param_errf(l, err, MOKA_ERR_CONFIG, "global_pooling",
                          "global_pooling allows only pad 0 and stride 1");
    if (!s->global && (s->pad_h >= s->kernel_h || s->pad_w >= s->kernel_w))
        return param_errf(l, err, MOKA_ERR_CONFIG,
                          moka_pt_has(p, "pad_h") ? "pad_h" : "pad",
                          "pad (%lld x %lld) must be smaller than the kernel (%lld x %lld)",
                          (long long)s->pad_h, (long long)s->pad_w, (long long)s->kernel_h,
                          (long long)s->kernel_w);
    return MOKA_OK;
}

/* Caffe's output size: ceil (or floor) rounding, then the "starts inside" clip with padding. */
static int64_t pooled_size(int64_t in, int64_t k, int64_t pad, int64_t stride, bool floor_mode,
                           bool padded)
{
    const int64_t span = in + 2 * pad - k;
    int64_t out = (floor_mode ? span / stride : (span + stride - 1) / stride) + 1;
    if (padded && (out - 1) * stride >= in + pad) out--;
    return out;
}

static bool fast_shape(const pool_state *s);

/* The outputs o in [lo, hi) whose window [o s - pad, o s - pad + k) lies inside [0, n). */
static void interior(int64_t n, int64_t k, int64_t pad, int64_t stride, int64_t out, int64_t *lo,
                     int64_t *hi)
{
    *lo = (pad + stride - 1) / stride;
    *hi = n + pad - k >= 0 ? (n + pad - k) / stride + 1 : 0;
    if (*hi > out) *hi = out;
    if (*lo > *hi) *lo = *hi;
}

static moka_status pool_reshape(moka_layer *l, moka_err *err)
{
    pool_state *s = l->state;
    const moka_tensor *x = l->bottom[0];
    char buf[128];
    if (x->ndim != 4)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "input must be 4-D (N, C, H, W), got %s",
                               moka_tensor_shape_str(x, buf, sizeof buf));
    s->num = x->shape[0];
    s->channels = x->shape[1];
    s->height = x->shape[2];
    s->width = x->shape[3];
    if (s->global) {
        s->kernel_h = s->height;
        s->kernel_w = s->width;
    }
    if (s->height + 2 * s->pad_h < s->kernel_h || s->width + 2 * s->pad_w < s->kernel_w ||
        s->height < 1 || s->width < 1)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "kernel %lld x %lld is larger than the padded input %lld x %lld",
                               (long long)s->kernel_h, (long long)s->kernel_w,
                               (long long)(s->height + 2 * s->pad_h),
                               (long long)(s->width + 2 * s->pad_w));
    if (s->height * s->width > INT32_MAX)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE, "input plane of %lld x %lld is too large",
                               (long long)s->height, (long long)s->width);
    const bool padded = s->pad_h || s->pad_w;
    s->pooled_h = pooled_size(s->height, s->kernel_h, s->pad_h, s->stride_h, s->floor_mode, padded);
    s->pooled_w = pooled_size(s->width, s->kernel_w, s->pad_w, s->stride_w, s->floor_mode, padded);
    for (int i = 0; i < l->num_top; i++)
        MOKA_TRY(moka_tensor_set_shape(l->top[i],
                                       MOKA_SHAPE(s->num, s->channels, s->pooled_h, s->pooled_w),
                                       err));
    interior(s->height, s->kernel_h, s->pad_h, s->stride_h, s->pooled_h, &s->oh0, &s->oh1);
    interior(s->width, s->kernel_w, s->pad_w, s->stride_w, s->pooled_w, &s->ow0, &s->ow1);
    s->fast = l->ctx->engine == MOKA_ENGINE_FAST;
    s->fast = fast_shape(s);
    if (s->max) {
        const int64_t n = s->num * s->channels * s->pooled_h * s->pooled_w;
        if (n > s->argmax_cap) {
            int32_t *a = realloc(s->argmax, (size_t)n * sizeof *a);
            if (!a) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for pooling indices");
            s->argmax = a;
            s->argmax_cap = n;
        }
    }
    return MOKA_OK;
}

/* Caffe's AVE pool size along one axis: the window clipped to the padded bounds [-pad, n + pad).
 * Zero or negative only for the empty windows described at the top. */
static inline int64_t padded_extent(int64_t start, int64_t k, int64_t n, int64_t pad)
{
    const int64_t end = start + k < n + pad ? start + k : n + pad;
    return end - start;
}

/* One window: its rows [h0, h1) and columns [w0, w1) inside the image, and Caffe's AVE size. */
typedef struct window {
    int64_t h0, h1, w0, w1, size;
} window;

static inline window window_at(const pool_state *s, int64_t oh, int64_t ow)
{
    const int64_t hs = oh * s->stride_h - s->pad_h, ws = ow * s->stride_w - s->pad_w;
    window r;
    r.size = padded_extent(hs, s->kernel_h, s->height, s->pad_h) *
             padded_extent(ws, s->kernel_w, s->width, s->pad_w);
    r.h0 = hs < 0 ? 0 : hs;
    r.w0 = ws < 0 ? 0 : ws;
    r.h1 = hs + s->kernel_h > s->height ? s->height : hs + s->kernel_h;
    r.w1 = ws + s->kernel_w > s->width ? s->width : ws + s->kernel_w;
    return r;
}

/* The generic code, one output at a time (the reference, and the border of the fast kernel).
 * The window is scanned in row-major order with the running maximum and its index in registers;
 * the selects (not branches) keep random data from mispredicting. The first maximum wins ties,
 * and AVE sums in the same order, as Caffe does. `arg` is unused for AVE. */
static void pool_one(const pool_state *s, const float *x, int64_t oh, int64_t ow, float *y,
                     int32_t *arg)
{
    const window r = window_at(s, oh, ow);
    const int64_t W = s->width;
    if (s->max) {
        float m = -FLT_MAX;
        int64_t a = -1;
        for (int64_t h = r.h0; h < r.h1; h++)
            for (int64_t w = r.w0; w < r.w1; w++) {
                const float v = x[h * W + w];
                const bool gt = v > m;
                m = gt ? v : m;
                a = gt ? h * W + w : a;
            }
        y[oh * s->pooled_w + ow] = m;
        arg[oh * s->pooled_w + ow] = (int32_t)a;
    } else {
        float sum = 0.0f;
        for (int64_t h = r.h0; h < r.h1; h++)
            for (int64_t w = r.w0; w < r.w1; w++) sum += x[h * W + w];
        y[oh * s->pooled_w + ow] = r.size > 0 ? sum / (float)r.size : 0.0f;
    }
}

static void pool_plane(const pool_state *s, const float *x, float *y, int32_t *arg)
{
    for (int64_t oh = 0; oh < s->pooled_h; oh++)
        for (int64_t ow = 0; ow < s->pooled_w; ow++) pool_one(s, x, oh, ow, y, arg);
}

/* The fast kernel: 2x2 and 3x3 windows at stride 2 along rows (LeNet's and cifar10_quick's
 * pools), AVX-512, 16 outputs of a row at a time. For each window row, the even and odd columns
 * (and for 3x3 the columns two further on) are pulled out of two 16-float loads with one
 * permute each, so every window element is one vector; the scan then runs exactly as the
 * generic code's, element by element in row-major window order: the same first-maximum rule
 * (compare greater, ordered, so NaN never wins), the same starting -FLT_MAX and index -1, the
 * same AVE summation order and division. Loads are masked to the row, so a partial block of a
 * short row (LeNet's 12 outputs) reads nothing outside it. Other shapes, the image border and
 * builds without AVX-512 use the generic per-window code.
 * The window size and the method are compile-time constants of each instance (row_s2 is
 * inlined into four kernels below), so the window's vectors stay in registers: with them as
 * run-time values the compiler kept them on the stack and the kernel ran 7x slower. */
#if defined(__AVX512F__)
/* The lanes j < n of a 16-float load (n clipped to [0, 16]). */
static inline __mmask16 lanes_below(int64_t n)
{
    return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u);
}

static inline __attribute__((always_inline)) void row_s2(const pool_state *s, const float *x,
                                                         int64_t oh, float *y, int32_t *arg,
                                                         const int k, const bool max)
{
    const int64_t W = s->width, h0 = oh * s->stride_h - s->pad_h;
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i lane2 = _mm512_slli_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
    const __m512 size = _mm512_set1_ps((float)(k * k));
    for (int64_t o = s->ow0; o < s->ow1; o += 16) {
        const __mmask16 active = lanes_below(s->ow1 - o);
        const int64_t c = o * s->stride_w - s->pad_w;
        /* Lanes j of a load at column p are read only when p + j < W. */
        const __mmask16 m0 = lanes_below(W - c), m1 = lanes_below(W - c - 16),
                        m2 = lanes_below(W - c - 2), m3 = lanes_below(W - c - 18);
        __m512 m = _mm512_set1_ps(-FLT_MAX), sum = _mm512_setzero_ps();
        __m512i a = _mm512_set1_epi32(-1);
        for (int i = 0; i < k; i++) {
            const float *r = x + (h0 + i) * W + c;
            const __m512 x0 = _mm512_maskz_loadu_ps(m0, r), x1 = _mm512_maskz_loadu_ps(m1, r + 16);
            __m512 v[3];
            v[0] = _mm512_permutex2var_ps(x0, ev, x1);
            v[1] = _mm512_permutex2var_ps(x0, od, x1);
            if (k == 3)
                v[2] = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m2, r + 2), ev,
                                              _mm512_maskz_loadu_ps(m3, r + 18));
            const __m512i idx =
                _mm512_add_epi32(_mm512_set1_epi32((int32_t)((h0 + i) * W + c)), lane2);
            for (int j = 0; j < k; j++) {
                if (max) {
                    const __mmask16 gt = _mm512_cmp_ps_mask(v[j], m, _CMP_GT_OQ);
                    m = _mm512_mask_mov_ps(m, gt, v[j]);
                    a = _mm512_mask_mov_epi32(a, gt, _mm512_add_epi32(idx, _mm512_set1_epi32(j)));
                } else {
                    sum = _mm512_add_ps(sum, v[j]);
                }
            }
        }
        if (max) {
            _mm512_mask_storeu_ps(y + o, active, m);
            _mm512_mask_storeu_epi32(arg + o, active, a);
        } else {
            _mm512_mask_storeu_ps(y + o, active, _mm512_div_ps(sum, size));
        }
    }
}

static void row_max2(const pool_state *s, const float *x, int64_t oh, float *y, int32_t *arg)
{
    row_s2(s, x, oh, y, arg, 2, true);
}
static void row_max3(const pool_state *s, const float *x, int64_t oh, float *y, int32_t *arg)
{
    row_s2(s, x, oh, y, arg, 3, true);
}
static void row_ave2(const pool_state *s, const float *x, int64_t oh, float *y, int32_t *arg)
{
    row_s2(s, x, oh, y, arg, 2, false);
}
static void row_ave3(const pool_state *s, const float *x, int64_t oh, float *y, int32_t *arg)
{
    row_s2(s, x, oh, y, arg, 3, false);
}
#endif

/* Whether the vectorised kernel takes this layer's interior rows. */
static bool fast_shape(const pool_state *s)
{
#if defined(__AVX512F__)
    return s->fast && s->kernel_h == s->kernel_w && (s->kernel_h == 2 || s->kernel_h == 3) &&
           s->stride_w == 2 && s->oh0 < s->oh1 && s->ow0 < s->ow1 &&
           s->height * s->width < INT32_MAX - 64;
#else
    (void)s;
    return false;
#endif
}

static void pool_plane_fast(const pool_state *s, const float *x, float *y, int32_t *arg)
{
    const int64_t PW = s->pooled_w, PH = s->pooled_h;
    /* The planes come from memory (a convolution just wrote them) and are small: fetch the next
     * plane a slice per output row, so it is in cache when its turn comes. */
    const int64_t lines = (s->height * s->width + 15) / 16;
    const float *next = x + s->height * s->width;
    for (int64_t oh = 0; oh < PH; oh++) {
        for (int64_t i = oh * lines / PH; i < (oh + 1) * lines / PH; i++)
            __builtin_prefetch(next + i * 16);
        const bool inner = oh >= s->oh0 && oh < s->oh1;
        for (int64_t ow = 0; ow < PW; ow++) {
            if (inner && ow == s->ow0) ow = s->ow1;
            if (ow >= PW) break;
            pool_one(s, x, oh, ow, y, arg);
        }
#if defined(__AVX512F__)
        if (inner) {
            float *yr = y + oh * PW;
            int32_t *ar = arg ? arg + oh * PW : NULL;
            if (s->max)
                (s->kernel_h == 2 ? row_max2 : row_max3)(s, x, oh, yr, ar);
            else
                (s->kernel_h == 2 ? row_ave2 : row_ave3)(s, x, oh, yr, ar);
        }
#endif
    }
}

/* dx += dy / pool_size over each window (the adjoint of AVE forward). */
static void ave_plane_backward(const pool_state *s, const float *dy, float *dx)
{
    const int64_t W = s->width;
    for (int64_t oh = 0; oh < s->pooled_h; oh++)
        for (int64_t ow = 0; ow < s->pooled_w; ow++) {
            const window r = window_at(s, oh, ow);
            if (r.size <= 0) continue;
            const float g = dy[oh * s->pooled_w + ow] / (float)r.size;
            for (int64_t h = r.h0; h < r.h1; h++)
                for (int64_t w = r.w0; w < r.w1; w++) dx[h * W + w] += g;
        }
}

/* ---- x held channels-last or in 16-channel blocks (src/core/layout.h) ----
 * The input is read where the producing convolution left it; the output stays in that layout
 * when the net lets it (else it is written plain) and the argmax is plain. A group of up to 16 channels of one image is one task: element (h, w, c) of the group
 * sits at g[(h W + w) cs + c], with cs = C (NHWC) or 16 (nChw16c). Every output runs the generic
 * code's window scan (same order, same rules), one lane per channel, so the results are the
 * generic code's bit for bit; the 16 lanes of a step are independent and vectorise. */
enum { GROUP = 16 };

typedef struct held_geom {
    int64_t groups; /* channel groups per image */
    int64_t cs;     /* stride between the pixels of a group */
} held_geom;

static held_geom held_geometry(const pool_state *s, moka_layout layout)
{
    held_geom g;
    g.groups = (s->channels + GROUP - 1) / GROUP;
    g.cs = layout == MOKA_LAYOUT_NHWC ? s->channels : GROUP;
    return g;
}

/* The first element of group `cg` of image n, for images of HW pixels. */
static inline int64_t group_base(const pool_state *s, moka_layout layout, int64_t n, int64_t cg,
                                 int64_t HW)
{
    return layout == MOKA_LAYOUT_NHWC ? n * HW * s->channels + cg * GROUP
                                      : (n * (s->channels / GROUP) + cg) * HW * GROUP;
}

/* Writes the outputs [o0, o0 + cnt) of nc channels from tile[j][c] into the plain planes. */
static inline void store_tile(const float (*ty)[GROUP], const int32_t (*ta)[GROUP], int64_t cnt,
                              int64_t nc, int64_t PHW, int64_t o0, float *y, int32_t *arg)
{
#if defined(__AVX512F__)
    if (y) moka_cl_to_planes(ty, GROUP, cnt, nc, y + o0, PHW, false);
    if (arg) moka_cl_to_planes(ta, GROUP, cnt, nc, arg + o0, PHW, false);
#else
    for (int64_t c = 0; c < nc; c++) {
        float *yc = y ? y + c * PHW + o0 : NULL;
        for (int64_t j = 0; j < cnt && yc; j++) yc[j] = ty[j][c];
        if (arg) {
            int32_t *ac = arg + c * PHW + o0;
            for (int64_t j = 0; j < cnt; j++) ac[j] = ta[j][c];
        }
    }
#endif
}

/* One group: y and the argmax into plain planes, or y held (yh not NULL: output pixel o at
 * yh + o * cs, the input's layout) and the argmax plain. */
static void pool_group_held(const pool_state *s, const float *g, int64_t cs, int64_t nc, float *y,
                            int32_t *arg, float *yh)
{
    enum { TILE = 16 };
    const int64_t W = s->width, PHW = s->pooled_h * s->pooled_w;
    float ty[TILE][GROUP];
    int32_t ta[TILE][GROUP];
    int64_t o0 = 0, cnt = 0;
    for (int64_t oh = 0; oh < s->pooled_h; oh++) {
        /* The input streams from memory (a convolution just wrote it): ask for the rows the
         * next output row adds while this one is computed. */
        if (oh + 1 < s->pooled_h) {
            const window cur = window_at(s, oh, 0), next = window_at(s, oh + 1, 0);
            for (int64_t h = cur.h1 > next.h0 ? cur.h1 : next.h0; h < next.h1; h++)
                for (int64_t i = 0; i < W * cs; i += 16) __builtin_prefetch(g + h * W * cs + i);
        }
        for (int64_t ow = 0; ow < s->pooled_w; ow++) {
            const window r = window_at(s, oh, ow);
            float *acc = ty[cnt];
            int32_t *a = ta[cnt];
#if defined(__AVX512F__)
            if (nc == GROUP) {
                __m512 m = _mm512_set1_ps(s->max ? -FLT_MAX : 0.0f);
                __m512i am = _mm512_set1_epi32(-1);
                for (int64_t h = r.h0; h < r.h1; h++)
                    for (int64_t w = r.w0; w < r.w1; w++) {
                        const __m512 v = _mm512_loadu_ps(g + (h * W + w) * cs);
                        if (s->max) {
                            const __mmask16 gt = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ);
                            m = _mm512_mask_mov_ps(m, gt, v);
                            am = _mm512_mask_mov_epi32(am, gt, _mm512_set1_epi32((int)(h * W + w)));
                        } else {
                            m = _mm512_add_ps(m, v);
                        }
                    }
                if (!s->max)
                    m = r.size > 0 ? _mm512_div_ps(m, _mm512_set1_ps((float)r.size))
                                   : _mm512_setzero_ps();
                _mm512_storeu_ps(acc, m);
                _mm512_storeu_si512(a, am);
            } else
#endif
            if (s->max) {
                for (int64_t c = 0; c < nc; c++) acc[c] = -FLT_MAX, a[c] = -1;
                for (int64_t h = r.h0; h < r.h1; h++)
                    for (int64_t w = r.w0; w < r.w1; w++) {
                        const float *v = g + (h * W + w) * cs;
                        for (int64_t c = 0; c < nc; c++) {
                            const bool gt = v[c] > acc[c];
                            acc[c] = gt ? v[c] : acc[c];
                            a[c] = gt ? (int32_t)(h * W + w) : a[c];
                        }
                    }
            } else {
                for (int64_t c = 0; c < nc; c++) acc[c] = 0.0f;
                for (int64_t h = r.h0; h < r.h1; h++)
                    for (int64_t w = r.w0; w < r.w1; w++) {
                        const float *v = g + (h * W + w) * cs;
                        for (int64_t c = 0; c < nc; c++) acc[c] += v[c];
                    }
                for (int64_t c = 0; c < nc; c++)
                    acc[c] = r.size > 0 ? acc[c] / (float)r.size : 0.0f;
            }
            if (yh) {
                float *q = yh + (o0 + cnt) * cs;
                for (int64_t c = 0; c < nc; c++) q[c] = acc[c];
            }
            if (++cnt == TILE) {
                store_tile((const float(*)[GROUP])ty, (const int32_t(*)[GROUP])ta, cnt, nc, PHW,
                           o0, yh ? NULL : y, arg);
                o0 += cnt;
                cnt = 0;
            }
        }
    }
    if (cnt)
        store_tile((const float(*)[GROUP])ty, (const int32_t(*)[GROUP])ta, cnt, nc, PHW, o0,
                   yh ? NULL : y, arg);
}

static void pool_forward_held(const pool_state *s, moka_layout layout, const float *x, float *y,
                              int32_t *argmax, float *yh)
{
    const held_geom hg = held_geometry(s, layout);
    const int64_t HW = s->height * s->width, PHW = s->pooled_h * s->pooled_w;
    const int64_t tasks = s->num * hg.groups;
#pragma omp parallel for schedule(static) if (tasks * PHW * GROUP >= (1 << 14))
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t n = t / hg.groups, cg = t % hg.groups, c0 = cg * GROUP;
        const int64_t nc = s->channels - c0 < GROUP ? s->channels - c0 : GROUP;
        const int64_t plane = (n * s->channels + c0) * PHW;
        pool_group_held(s, x + group_base(s, layout, n, cg, HW), hg.cs, nc, y + plane,
                        s->max ? argmax + plane : NULL,
                        yh ? yh + group_base(s, layout, n, cg, PHW) : NULL);
    }
}

/* Reads the outputs [o0, o0 + cnt) of nc channels of the plain planes into tile[j][c]. */
static inline void load_tile(const float *dy, const int32_t *arg, int64_t cnt, int64_t nc,
                             int64_t PHW, int64_t o0, float (*ty)[GROUP], int32_t (*ta)[GROUP])
{
#if defined(__AVX512F__)
    if (dy) moka_planes_to_cl(dy + o0, PHW, cnt, nc, ty, GROUP);
    if (arg) moka_planes_to_cl(arg + o0, PHW, cnt, nc, ta, GROUP);
#else
    for (int64_t c = 0; c < nc; c++) {
        const float *dc = dy ? dy + c * PHW + o0 : NULL;
        for (int64_t j = 0; j < cnt && dc; j++) ty[j][c] = dc[j];
        if (arg) {
            const int32_t *ac = arg + c * PHW + o0;
            for (int64_t j = 0; j < cnt; j++) ta[j][c] = ac[j];
        }
    }
#endif
}

/* One group's input gradient, added into g (zeroed by the caller): per channel the generic
 * code's additions in the generic code's order (outputs in order; for MAX dy to the argmax, for
 * AVE dy / size over the window). */
static void unpool_group_held(const pool_state *s, const float *dy, const int32_t *arg,
                              int64_t cs, int64_t nc, float *g, const float *dyh)
{
    enum { TILE = 16 };
    const int64_t W = s->width, PW = s->pooled_w, PHW = s->pooled_h * s->pooled_w;
    float ty[TILE][GROUP];
    int32_t ta[TILE][GROUP];
    for (int64_t o0 = 0; o0 < PHW; o0 += TILE) {
        const int64_t cnt = PHW - o0 < TILE ? PHW - o0 : TILE;
        load_tile(dyh ? NULL : dy, s->max ? arg : NULL, cnt, nc, PHW, o0, ty, ta);
        for (int64_t j = 0; j < cnt; j++) {
            const int64_t o = o0 + j;
            const window r = window_at(s, o / PW, o % PW);
            /* dy of this output's nc channels: held (output pixel o in the input's layout), or
             * read into the tile from the plain planes. */
            const float *drow = dyh ? dyh + o * cs : ty[j];
#if defined(__AVX512F__)
            if (nc == GROUP) {
                const __m512 d = _mm512_loadu_ps(drow);
                if (s->max) {
                    const __m512i am = _mm512_loadu_si512(ta[j]);
                    for (int64_t h = r.h0; h < r.h1; h++)
                        for (int64_t w = r.w0; w < r.w1; w++) {
                            /* No branch on `hit`: it is data-dependent and mispredicts. */
                            const __mmask16 hit = _mm512_cmpeq_epi32_mask(
                                am, _mm512_set1_epi32((int)(h * W + w)));
                            float *q = g + (h * W + w) * cs;
                            _mm512_storeu_ps(q, _mm512_mask_add_ps(_mm512_loadu_ps(q), hit,
                                                                   _mm512_loadu_ps(q), d));
                        }
                } else if (r.size > 0) {
                    const __m512 v = _mm512_div_ps(d, _mm512_set1_ps((float)r.size));
                    for (int64_t h = r.h0; h < r.h1; h++)
                        for (int64_t w = r.w0; w < r.w1; w++) {
                            float *q = g + (h * W + w) * cs;
                            _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), v));
                        }
                }
                continue;
            }
#endif
            if (s->max) {
                for (int64_t c = 0; c < nc; c++)
                    if (ta[j][c] >= 0) g[ta[j][c] * cs + c] += drow[c];
            } else if (r.size > 0) {
                for (int64_t h = r.h0; h < r.h1; h++)
                    for (int64_t w = r.w0; w < r.w1; w++)
                        for (int64_t c = 0; c < nc; c++)
                            g[(h * W + w) * cs + c] += drow[c] / (float)r.size;
            }
        }
    }
}

/* The input gradient written whole into dx (the held layout), from dy and the argmax (plain).
 * A step is one image channels-last (its pixels interleave all groups) or one 16-channel block;
 * it zeroes its part of dx first, so that part stays in cache for the additions. */
static void pool_backward_held(const pool_state *s, moka_layout layout, const float *dy,
                               const int32_t *argmax, float *dx, const float *dyh)
{
    const held_geom hg = held_geometry(s, layout);
    const int64_t HW = s->height * s->width, PHW = s->pooled_h * s->pooled_w;
    const bool nhwc = layout == MOKA_LAYOUT_NHWC;
    const int64_t steps = nhwc ? s->num : s->num * hg.groups;
    const int64_t per = nhwc ? HW * s->channels : HW * GROUP;
#pragma omp parallel for schedule(static) if (steps * per >= (1 << 15))
    for (int64_t t = 0; t < steps; t++) {
        memset(dx + t * per, 0, (size_t)per * sizeof *dx);
        const int64_t n = nhwc ? t : t / hg.groups;
        const int64_t cg0 = nhwc ? 0 : t % hg.groups, cg1 = nhwc ? hg.groups : cg0 + 1;
        for (int64_t cg = cg0; cg < cg1; cg++) {
            const int64_t c0 = cg * GROUP;
            const int64_t nc = s->channels - c0 < GROUP ? s->channels - c0 : GROUP;
            const int64_t plane = (n * s->channels + c0) * PHW;
            unpool_group_held(s, dy + plane, argmax ? argmax + plane : NULL, hg.cs, nc,
                              dx + group_base(s, layout, n, cg, HW),
                              dyh ? dyh + group_base(s, layout, n, cg, PHW) : NULL);
        }
    }
}

static moka_status pool_forward_cpu(moka_layer *l, moka_err *err)
{
    pool_state *s = l->state;
    const int64_t HW = s->height * s->width, PHW = s->pooled_h * s->pooled_w;
    const float *x = l->bottom[0]->data;
    float *y = l->top[0]->data, *mask = l->num_top > 1 ? l->top[1]->data : NULL;
    int32_t *argmax = s->argmax;
    const int64_t planes = s->num * s->channels;
    const moka_held *h = moka_held_get(l->bottom[0], false);
    s->held_in = h && l->ctx->engine == MOKA_ENGINE_FAST ? h->layout : MOKA_LAYOUT_PLAIN;
    if (s->held_in != MOKA_LAYOUT_PLAIN) {
        /* The output stays in the input's layout too (for a convolution below, through ReLU),
         * unless there is a mask top to write. */
        float *yh = NULL;
        if (!mask && !l->ctx->plain_layouts && moka_held_possible(l->top[0])) {
            MOKA_TRY(moka_layer_reserve(l, &s->y_held, &s->y_held_cap, planes * PHW, "y", err));
            yh = s->y_held;
        }
        pool_forward_held(s, s->held_in, h->ptr, y, argmax, yh);
        if (yh) moka_held_set(l->top[0], false, s->held_in, yh);
        if (mask)
#pragma omp parallel for schedule(static) if (planes * PHW >= (1 << 14))
            for (int64_t o = 0; o < planes * PHW; o++) mask[o] = (float)argmax[o];
        return MOKA_OK;
    }
    moka_tensor_sync(l->bottom[0], false);
#pragma omp parallel for schedule(static) if (planes * PHW >= (1 << 14))
    for (int64_t nc = 0; nc < planes; nc++) {
        const float *xp = x + nc * HW;
        float *yp = y + nc * PHW;
        int32_t *ap = s->max ? argmax + nc * PHW : NULL;
        if (s->fast)
            pool_plane_fast(s, xp, yp, ap);
        else
            pool_plane(s, xp, yp, ap);
        if (mask)
            for (int64_t o = 0; o < PHW; o++) mask[nc * PHW + o] = (float)ap[o];
    }
    return MOKA_OK;
}

static moka_status pool_backward_cpu(moka_layer *l, moka_err *err)
{
    pool_state *s = l->state;
    if (!moka_layer_needs_bottom_grad(l, 0)) return MOKA_OK;
    const int64_t HW = s->height * s->width, PHW = s->pooled_h * s->pooled_w;
    const float *dy = l->top[0]->grad;
    /* Forward read x held and the producer still holds it: the gradient goes back in its
     * layout, written whole (layout.h), for the producer to read without a conversion; dy is
     * read held too when the layer above left it in that layout. */
    const moka_held *h = moka_held_get(l->bottom[0], false);
    const bool held = s->held_in != MOKA_LAYOUT_PLAIN && h && h->layout == s->held_in;
    const moka_held *hdy = moka_held_get(l->top[0], true);
    if (hdy && !(held && hdy->layout == s->held_in)) hdy = NULL;
    if (!hdy) moka_tensor_sync(l->top[0], true);
    if (held) {
        MOKA_TRY(moka_layer_reserve(l, &s->dx_held, &s->dx_held_cap,
                                    moka_tensor_count(l->bottom[0]), "the input gradient", err));
        pool_backward_held(s, s->held_in, dy, s->argmax, s->dx_held, hdy ? hdy->ptr : NULL);
        if (moka_held_set(l->bottom[0], true, s->held_in, s->dx_held)) return MOKA_OK;
    }
    moka_tensor_sync(l->top[0], true);
    bool whole;
    float *dx = moka_layer_bottom_grad_whole(l, 0, &whole);
    const int32_t *argmax = s->argmax;
    const int64_t planes = s->num * s->channels;
    /* Each plane's windows touch only that plane, so planes run in parallel without races. A
     * gradient written whole is zeroed plane by plane, while the plane is in cache. */
#pragma omp parallel for schedule(static) if (planes * PHW >= (1 << 14))
    for (int64_t nc = 0; nc < planes; nc++) {
        float *dxp = dx + nc * HW;
        const float *dyp = dy + nc * PHW;
        if (whole) memset(dxp, 0, (size_t)HW * sizeof *dxp);
        if (s->max) {
            const int32_t *ap = argmax + nc * PHW;
            for (int64_t o = 0; o < PHW; o++)
                if (ap[o] >= 0) dxp[ap[o]] += dyp[o];
        } else {
            ave_plane_backward(s, dyp, dxp);
        }
    }
    return MOKA_OK;
}

static void pool_destroy(moka_layer *l)
{
    pool_state *s = l->state;
    free(s->argmax);
    free(s->dx_held);
    free(s->y_held);
}

static const char *pool_kernel(const moka_layer *l)
{
    const pool_state *s = l->state;
    return s->fast ? "AVX-512 windows" : "reference";
}

const moka_layer_ops moka_layer_pooling = {
    .type = "Pooling", .param_field = "pooling_param", .state_size = sizeof(pool_state),
    .min_bottom = 1, .max_bottom = 1, .min_top = 1, .max_top = 2,
    .reads_held = true,
    .setup = pool_setup, .reshape = pool_reshape,
    .forward_cpu = pool_forward_cpu, .backward_cpu = pool_backward_cpu, .destroy = pool_destroy,
    .kernel = pool_kernel,
};
