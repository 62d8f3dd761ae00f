/* src/layers/conv.c -- 2-D convolution, as Caffe's ConvolutionLayer:
 *   y[n, m, oh, ow] = b[m] + sum_{c in group(m), i, j} W[m, c', i, j]
 *                            x[n, c, oh s_h - p_h + i d_h, ow s_w - p_w + j d_w]   (0 outside x)
 *   out_h = (H + 2 p_h - (d_h (k_h - 1) + 1)) / s_h + 1   (likewise out_w)
 *   bottom[i]  x  (N, C, H, W)          every bottom has the same shape and shares the weights
 *   top[i]     y  (N, M, out_h, out_w)  M = num_output
 *   weight[0]  W  (M, C / G, k_h, k_w)  G = group
 *   weight[1]  b  (M)                   only with bias_term
 * Computed as W times im2col(x) (src/backend/cpu/im2col.h); the batched GEMM engine declared in
 * conv_common.h lives here too and is shared with deconv.c. The fast engine sends most
 * convolutions to oneDNN's direct kernels instead (src/backend/cpu/dnnl_op.h; see use_dnnl),
 * which is also where bf16 precision computes.
 * Reference: Caffe's base_conv_layer.cpp and conv_layer.cpp.
 */
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/blas.h"
#include "backend/cpu/conv_dw.h"
#include "backend/cpu/dnnl_op.h"
#include "layers/conv_common.h"

/* ---- ConvolutionParameter ---- */

/* Like moka_layer_errf, but positioned at `field` of l->param when the config sets it. */
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

/* One of Caffe's per-axis settings: `rep` (repeated: once, or once per spatial axis) or the
 * 2-D pair fh/fw, never both; `def` when neither is given (-1: required). */
static moka_status read_pair(const moka_layer *l, const char *rep, const char *fh, const char *fw,
                             int64_t def, int64_t *h, int64_t *w, moka_err *err)
{
    const moka_pt_node *p = l->param;
    const int n = moka_pt_count(p, rep);
    if (fh && (moka_pt_has(p, fh) || moka_pt_has(p, fw))) {
        if (n > 0)
            return param_errf(l, err, MOKA_ERR_CONFIG, moka_pt_has(p, fh) ? fh : fw,
                              "either %s or %s/%s may be given, not both", rep, fh, fw);
        *h = moka_pt_int(p, fh);
        *w = moka_pt_int(p, fw);
        return MOKA_OK;
    }
    if (n == 0) {
        if (def < 0)
            return param_errf(l, err, MOKA_ERR_CONFIG, NULL,
                              "convolution_param needs kernel_size (or kernel_h and kernel_w)");
        *h = *w = def;
        return MOKA_OK;
    }
    if (n > 2)
        return param_errf(l, err, MOKA_ERR_CONFIG, rep,
                          "%s must be given once or once per spatial axis (given %d times; 2 "
                          "spatial axes)",
                          rep, n);
    *h = moka_pt_int_at(p, rep, 0);
    *w = moka_pt_int_at(p, rep, n == 2 ? 1 : 0);
    return MOKA_OK;
}

moka_status moka_conv_param_read(moka_layer *l, moka_conv_param *p, moka_err *err)
{
    const moka_pt_node *cp = l->param;
    const moka_tensor *x = l->bottom[0];
    memset(p, 0, sizeof *p);

    /* `engine` and `force_nd_im2col` pick Caffe's implementation, not the result, so any value
     * is accepted. Only the channel axis 1 and two spatial axes are: Caffe's N-D path is not
     * built. */
    const int64_t axis = moka_pt_int(cp, "axis");
    if (axis != 1 && !(axis < 0 && axis + x->ndim == 1))
        return param_errf(l, err, MOKA_ERR_UNSUPPORTED, "axis",
                          "axis %lld is not supported (only the channel axis 1)",
                          (long long)axis);
    if (x->ndim != 4)
        return param_errf(l, err, MOKA_ERR_UNSUPPORTED, NULL,
                          "only 2-D convolution is supported: input must be 4-D (N, C, H, W), "
                          "got %d-D (%d spatial axes)",
                          x->ndim, x->ndim >= 2 ? x->ndim - 2 : 0);
    if (l->num_top != l->num_bottom)
        return param_errf(l, err, MOKA_ERR_CONFIG, NULL,
                          "needs as many tops as bottoms, got %d bottoms and %d tops",
                          l->num_bottom, l->num_top);

    MOKA_TRY(read_pair(l, "kernel_size", "kernel_h", "kernel_w", -1, &p->kernel_h, &p->kernel_w,
                       err));
    MOKA_TRY(read_pair(l, "stride", "stride_h", "stride_w", 1, &p->stride_h, &p->stride_w, err));
    MOKA_TRY(read_pair(l, "pad", "pad_h", "pad_w", 0, &p->pad_h, &p->pad_w, err));
    MOKA_TRY(read_pair(l, "dilation", NULL, NULL, 1, &p->dilation_h, &p->dilation_w, err));
    if (p->kernel_h <= 0 || p->kernel_w <= 0)
        return param_errf(l, err, MOKA_ERR_CONFIG,
                          moka_pt_has(cp, "kernel_h") || moka_pt_has(cp, "kernel_w")
                              ? (moka_pt_has(cp, "kernel_h") ? "kernel_h" : "kernel_w")
                              : "kernel_size",
                          "kernel size must be nonzero, got %lld x %lld", (long long)p->kernel_h,
                          (long long)p->kernel_w);
    if (p->stride_h <= 0 || p->stride_w <= 0)
        return param_errf(l, err, MOKA_ERR_CONFIG,
                          moka_pt_has(cp, "stride_h") ? "stride_h"
                          : moka_pt_has(cp, "stride_w") ? "stride_w"
                                                        : "stride",
                          "stride must be nonzero, got %lld x %lld", (long long)p->stride_h,
                          (long long)p->stride_w);
    if (p->dilation_h <= 0 || p->dilation_w <= 0)
        return param_errf(l, err, MOKA_ERR_CONFIG, "dilation",
                          "dilation must be nonzero, got %lld x %lld", (long long)p->dilation_h,
                          (long long)p->dilation_w);

    p->num_output = moka_pt_int(cp, "num_output");
    p->group = moka_pt_int(cp, "group");
    p->bias_term = moka_pt_bool(cp, "bias_term");
    const int64_t channels = x->shape[1];
    if (p->num_output <= 0)
        return param_errf(l, err, MOKA_ERR_CONFIG, "num_output",
                          "num_output must be positive, got %lld", (long long)p->num_output);
    if (p->group <= 0)
        return param_errf(l, err, MOKA_ERR_CONFIG, "group", "group must be positive, got %lld",
                          (long long)p->group);
    if (channels % p->group != 0)
        return param_errf(l, err, MOKA_ERR_CONFIG, "group",
                          "group %lld does not divide the %lld input channels",
                          (long long)p->group, (long long)channels);
    if (p->num_output % p->group != 0)
        return param_errf(l, err, MOKA_ERR_CONFIG, "group",
                          "group %lld does not divide num_output %lld", (long long)p->group,
                          (long long)p->num_output);
    return moka_conv_check_bottoms(l, channels, err);
}

moka_status moka_conv_check_bottoms(const moka_layer *l, int64_t channels, moka_err *err)
{
    const moka_tensor *x = l->bottom[0];
    char a[128], b[128];
    if (x->ndim != 4)
        return moka_layer_errf(l, err, MOKA_ERR_UNSUPPORTED,
                               "only 2-D convolution is supported: input must be 4-D (N, C, H, W), "
                               "got %s",
                               moka_tensor_shape_str(x, a, sizeof a));
    if (x->shape[1] != channels)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "input has %lld channels, the weights were made for %lld",
                               (long long)x->shape[1], (long long)channels);
    for (int i = 1; i < l->num_bottom; i++) {
        const moka_tensor *y = l->bottom[i];
        bool same = y->ndim == x->ndim;
        for (int d = 0; same && d < x->ndim; d++) same = y->shape[d] == x->shape[d];
        if (!same)
            return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                   "all bottoms must have one shape: bottom 0 is %s, bottom %d is "
                                   "%s",
                                   moka_tensor_shape_str(x, a, sizeof a), i,
                                   moka_tensor_shape_str(y, b, sizeof b));
    }
    return MOKA_OK;
}

/* ---- the batched im2col + GEMM engine ---- */

/* Target size of one thread's col matrix: small images are batched until their col matrix is
 * about this big, so it stays in the per-core L2 cache between im2col and the product while the
 * GEMMs get long rows. (Measured on LeNet at batch 64: per-image GEMMs are about as fast with
 * OpenBLAS, so this matters mainly for layers with few output pixels; 128 KB to 1 MB were all
 * within noise, 8 MB was 10% slower.) */
#define CHUNK_BYTES ((int64_t)256 << 10)

static int64_t col_rows(const moka_conv_engine *e)
{
    return e->g.channels * e->g.kernel_h * e->g.kernel_w;
}

/* Chooses threads and chunk for the current OpenMP thread count and grows scratch to fit. */
static moka_status plan(moka_conv_engine *e, moka_err *err)
{
    int64_t t = omp_get_max_threads();
    if (t > e->num) t = e->num;
    if (t < 1) t = 1;
    const int64_t P = e->g.out_h * e->g.out_w, rows = col_rows(e);
    const int64_t per_thread = e->num > 0 ? (e->num + t - 1) / t : 1;
    int64_t b = CHUNK_BYTES / (int64_t)sizeof(float) / (rows * P > 0 ? rows * P : 1);
    if (b < 1) b = 1;
    if (b > per_thread) b = per_thread;
    /* Even chunks: 10 images in chunks of at most 8 run as 5 + 5, not 8 + 2. */
    const int64_t nchunks = (per_thread + b - 1) / b;
    b = (per_thread + nchunks - 1) / nchunks;
    const int64_t wpt = rows * b * P + (b > 1 ? e->out_channels * b * P : 0);
    const int64_t work = wpt * t, part = (t - 1) * e->weight_count;
    if (work > e->work_cap) {
        float *w = realloc(e->work, (size_t)work * sizeof(float));
        if (!w) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for convolution scratch");
        e->work = w;
        e->work_cap = work;
    }
    if (part > e->part_cap) {
        float *w = realloc(e->part, (size_t)part * sizeof(float));
        if (!w) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for convolution scratch");
        e->part = w;
        e->part_cap = part;
    }
    e->threads = (int)t;
    e->chunk = b;
    e->work_per_thread = wpt;
    return MOKA_OK;
}

moka_status moka_conv_engine_reshape(moka_conv_engine *e, const moka_conv_geom *g, int64_t group,
                                     int64_t out_channels, int64_t num, moka_err *err)
{
    e->g = *g;
    e->group = group;
    e->out_channels = out_channels;
    e->num = num;
    e->weight_count = out_channels * (g->channels / group) * g->kernel_h * g->kernel_w;
    return plan(e, err);
}

void moka_conv_engine_free(moka_conv_engine *e)
{
    free(e->work);
    free(e->part);
    memset(e, 0, sizeof *e);
}

/* (b, C, P) -> (C, b P): image k's channel c becomes columns [k P, (k+1) P) of row c. */
static void gather(const float *src, int64_t b, int64_t C, int64_t P, float *dst)
{
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < b; k++)
            memcpy(dst + (c * b + k) * P, src + (k * C + c) * P, (size_t)P * sizeof(float));
}

/* (C, b P) -> (b, C, P), written (plus bias[c] when given) or added. */
static void scatter(const float *src, int64_t b, int64_t C, int64_t P, const float *bias, bool add,
                    float *dst)
{
    for (int64_t k = 0; k < b; k++)
        for (int64_t c = 0; c < C; c++) {
            const float *s = src + (c * b + k) * P;
            float *d = dst + (k * C + c) * P;
            if (add) {
#pragma omp simd
                for (int64_t i = 0; i < P; i++) d[i] += s[i];
            } else {
                const float bc = bias ? bias[c] : 0.0f;
#pragma omp simd
                for (int64_t i = 0; i < P; i++) d[i] = s[i] + bc;
            }
        }
}

/* Images [n, n + b) of a job; col and obuf are this thread's scratch, dw its gradient sum. */
static void run_chunk(const moka_conv_engine *e, const moka_conv_job *job, int64_t n, int64_t b,
                      float *col, float *obuf, float *dw)
{
    const moka_conv_geom *g = &e->g;
    const int64_t P = g->out_h * g->out_w, bp = b * P, G = e->group;
    const int64_t M = e->out_channels, mg = M / G, kg = col_rows(e) / G;
    const int64_t im_count = g->channels * g->height * g->width, out_count = M * P;
    const float *w = job->w;

    if (job->im)
        for (int64_t k = 0; k < b; k++)
            moka_im2col(g, job->im + (n + k) * im_count, col + k * P, bp);
    const float *o = NULL;
    if (job->outside) {
        const float *src = job->outside + n * out_count;
        if (b == 1) {
            o = src;
        } else {
            gather(src, b, M, P, obuf);
            o = obuf;
        }
    }
    if (dw)
        for (int64_t q = 0; q < G; q++)
            moka_sgemm(false, true, mg, kg, bp, 1.0f, o + q * mg * bp, col + q * kg * bp, 1.0f,
                       dw + q * mg * kg);
    if (job->out) {
        float *dst = job->out + n * out_count;
        if (b == 1) {
            for (int64_t q = 0; q < G; q++)
                moka_sgemm(false, false, mg, P, kg, 1.0f, w + q * mg * kg, col + q * kg * P,
                           job->out_add ? 1.0f : 0.0f, dst + q * mg * P);
            if (job->bias && !job->out_add)
                for (int64_t m = 0; m < M; m++) {
                    const float bm = job->bias[m];
                    float *d = dst + m * P;
#pragma omp simd
                    for (int64_t i = 0; i < P; i++) d[i] += bm;
                }
        } else {
            for (int64_t q = 0; q < G; q++)
                moka_sgemm(false, false, mg, bp, kg, 1.0f, w + q * mg * kg, col + q * kg * bp,
                           0.0f, obuf + q * mg * bp);
            scatter(obuf, b, M, P, job->bias, job->out_add, dst);
        }
    }
    if (job->im_grad) {
        for (int64_t q = 0; q < G; q++)
            moka_sgemm(true, false, kg, bp, mg, 1.0f, w + q * mg * kg, o + q * mg * bp, 0.0f,
                       col + q * kg * bp);
        for (int64_t k = 0; k < b; k++) {
            float *im = job->im_grad + (n + k) * im_count;
            if (job->zero_im_grad) memset(im, 0, (size_t)im_count * sizeof(float));
            moka_col2im_add(g, col + k * P, bp, im);
        }
    }
}

moka_status moka_conv_engine_run(moka_conv_engine *e, const moka_conv_job *job, moka_err *err)
{
    MOKA_TRY(plan(e, err));
    const int T = e->threads;
    const int64_t num = e->num, chunk = e->chunk, wc = e->weight_count;
    const int64_t rows_bp = col_rows(e) * chunk * e->g.out_h * e->g.out_w;
    /* Parallel over images, one GEMM thread each: measured on LeNet (batch 64, 2 threads) this
     * is about 3x faster than images in turn with BLAS threading the products, whose GEMMs are
     * too small to split well. With one thread (or one image) BLAS may use the threads itself;
     * inside the parallel region OpenBLAS runs single-threaded. The team may come out smaller
     * than asked (OMP_DYNAMIC, thread limits), so images are split by the team's real size. */
    int used = 1;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        if (t == 0) used = nt;
        float *col = e->work + t * e->work_per_thread, *obuf = col + rows_bp;
        float *dw = NULL;
        if (job->dw) {
            dw = t == 0 ? job->dw : e->part + (t - 1) * wc;
            if (t > 0) memset(dw, 0, (size_t)wc * sizeof(float));
        }
        const int64_t n0 = num * t / nt, n1 = num * (t + 1) / nt;
        for (int64_t n = n0; n < n1; n += chunk)
            run_chunk(e, job, n, n1 - n < chunk ? n1 - n : chunk, col, obuf, dw);
    }
    /* Thread 0 added into dw itself; the others' sums follow in thread order. */
    if (job->dw && used > 1) {
        float *dw = job->dw;
        const float *part = e->part;
#pragma omp parallel for schedule(static) if (wc >= (1 << 16))
        for (int64_t i = 0; i < wc; i++) {
            float s = dw[i];
            for (int t = 1; t < used; t++) s += part[(t - 1) * wc + i];
            dw[i] = s;
        }
    }
    return MOKA_OK;
}

void moka_conv_add_bias(float *x, int64_t num, int64_t channels, int64_t spatial,
                        const float *bias)
{
#pragma omp parallel for schedule(static) if (num * channels * spatial >= (1 << 15))
    for (int64_t nc = 0; nc < num * channels; nc++) {
        const float b = bias[nc % channels];
        float *p = x + nc * spatial;
#pragma omp simd
        for (int64_t i = 0; i < spatial; i++) p[i] += b;
    }
}

void moka_conv_bias_grad(const float *dy, int64_t num, int64_t channels, int64_t spatial,
                         float *db)
{
    /* Eight running sums in a fixed pattern, so the loop vectorises without reassociating
     * (a single float accumulator would serialise on the add latency). */
    enum { LANES = 8 };
#pragma omp parallel for schedule(static) if (num * channels * spatial >= (1 << 15))
    for (int64_t c = 0; c < channels; c++) {
        float acc[LANES] = {0};
        float tail = 0.0f;
        const int64_t body = spatial - spatial % LANES;
        for (int64_t n = 0; n < num; n++) {
            const float *p = dy + (n * channels + c) * spatial;
            for (int64_t i = 0; i < body; i += LANES)
                for (int j = 0; j < LANES; j++) acc[j] += p[i + j];
            for (int64_t i = body; i < spatial; i++) tail += p[i];
        }
        float s = tail;
        for (int j = 0; j < LANES; j++) s += acc[j];
        db[c] += s;
    }
}

#if defined(__AVX512F__)
/* The 16 floats at p + k, also written rounded to q + k when q is not NULL. */
static inline __m512 take16(const float *p, uint16_t *q, int64_t k)
{
    const __m512 v = _mm512_loadu_ps(p + k);
    if (q) _mm256_storeu_si256((__m256i *)(q + k), moka_dnnl_to_bf16x16(v));
    return v;
}
#endif

/* moka_conv_bias_grad on dy held in `layout` (src/core/layout.h), with the same arithmetic per
 * channel (the same eight running sums over the same elements in the same order, then the
 * tail), so both give the same bits; the channels of a pixel are adjacent here, so the loops
 * run across 16 channels at a time. With `bf16` not NULL, the pass also writes dy rounded to
 * bf16 there, in the same layout (what the bf16 backward passes read). */
static void bias_grad_held(moka_layout layout, const float *dy, int64_t num, int64_t channels,
                           int64_t spatial, float *db, uint16_t *bf16)
{
    enum { LANES = 8, CB = 16 };
    /* Channels [c0, c0 + nc) of pixel i of image n sit at dy + n nstride + base + i pstride. */
    const bool blocked = layout == MOKA_LAYOUT_NCHW16C;
    const int64_t pstride = blocked ? CB : channels;
    const int64_t nstride = channels * spatial;
    const int64_t nblocks = (channels + CB - 1) / CB;
    const int64_t body = spatial - spatial % LANES;
#pragma omp parallel for schedule(static) if (num * channels * spatial >= (1 << 15))
    for (int64_t cb = 0; cb < nblocks; cb++) {
        const int64_t c0 = cb * CB, nc = channels - c0 < CB ? channels - c0 : CB;
        const int64_t base = blocked ? c0 * spatial : c0;
        float acc[LANES][CB] = {{0}}, tail[CB] = {0};
#if defined(__AVX512F__)
        if (nc == CB) {
            /* The same sums with the eight accumulators in registers. */
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
                   a6 = a0, a7 = a0, t = a0;
            for (int64_t n = 0; n < num; n++) {
                const int64_t at = n * nstride + base;
                const float *p = dy + at;
                uint16_t *q = bf16 ? bf16 + at : NULL;
                for (int64_t i = 0; i < body; i += LANES) {
                    const int64_t k = i * pstride;
                    a0 = _mm512_add_ps(a0, take16(p, q, k));
                    a1 = _mm512_add_ps(a1, take16(p, q, k + pstride));
                    a2 = _mm512_add_ps(a2, take16(p, q, k + 2 * pstride));
                    a3 = _mm512_add_ps(a3, take16(p, q, k + 3 * pstride));
                    a4 = _mm512_add_ps(a4, take16(p, q, k + 4 * pstride));
                    a5 = _mm512_add_ps(a5, take16(p, q, k + 5 * pstride));
                    a6 = _mm512_add_ps(a6, take16(p, q, k + 6 * pstride));
                    a7 = _mm512_add_ps(a7, take16(p, q, k + 7 * pstride));
                }
                for (int64_t i = body; i < spatial; i++)
                    t = _mm512_add_ps(t, take16(p, q, i * pstride));
            }
            _mm512_storeu_ps(acc[0], a0);
            _mm512_storeu_ps(acc[1], a1);
            _mm512_storeu_ps(acc[2], a2);
            _mm512_storeu_ps(acc[3], a3);
            _mm512_storeu_ps(acc[4], a4);
            _mm512_storeu_ps(acc[5], a5);
            _mm512_storeu_ps(acc[6], a6);
            _mm512_storeu_ps(acc[7], a7);
            _mm512_storeu_ps(tail, t);
        } else
#endif
        for (int64_t n = 0; n < num; n++) {
            const int64_t at = n * nstride + base;
            const float *p = dy + at;
            uint16_t *q = bf16 ? bf16 + at : NULL;
            for (int64_t i = 0; i < body; i += LANES)
                for (int j = 0; j < LANES; j++) {
                    const float *v = p + (i + j) * pstride;
#pragma omp simd
                    for (int64_t c = 0; c < nc; c++) acc[j][c] += v[c];
                    if (q) {
                        uint16_t *o = q + (i + j) * pstride;
#pragma omp simd
                        for (int64_t c = 0; c < nc; c++) o[c] = moka_dnnl_to_bf16(v[c]);
                    }
                }
            for (int64_t i = body; i < spatial; i++)
                for (int64_t c = 0; c < nc; c++) {
                    tail[c] += p[i * pstride + c];
                    if (q) q[i * pstride + c] = moka_dnnl_to_bf16(p[i * pstride + c]);
                }
        }
        for (int64_t c = 0; c < nc; c++) {
            float s = tail[c];
            for (int j = 0; j < LANES; j++) s += acc[j][c];
            db[c0 + c] += s;
        }
    }
}

/* ---- the Convolution layer ---- */

typedef struct conv_state {
    moka_conv_param p;
    int64_t channels;
    moka_conv_engine e;
    /* The oneDNN path, built at the first forward pass of a shape, when the net knows which
     * gradients it needs. */
    moka_dnnl_slot dnnl;
    moka_conv_dw dwk; /* the direct weight gradient's scratch (direct_dw) */
} conv_state;

/* Whether a convolution's channels per group fill oneDNN's 16-wide blocks (a first layer's 1 to
 * 4 input channels count as filling). */
static bool fills_blocks(const conv_state *s)
{
    const int64_t ic = s->channels / s->p.group, oc = s->p.num_output / s->p.group;
    return oc % 16 == 0 && (ic % 16 == 0 || ic <= 4);
}

/* Whether the fast engine hands this convolution to oneDNN: unless it is a first layer (1 to 4
 * input channels) whose outputs do not fill 16-wide blocks, which im2col + GEMM does faster in
 * fp32 than oneDNN does in either precision (so such a layer computes in fp32 under bf16 too,
 * as moka time's kernel column says). Channels that fill the blocks run in oneDNN's blocked
 * layouts, the others channels-last. Measured on 2 AVX-512 cores, forward + both backward
 * passes, with the conversions at the layer's edges, against im2col + GEMM: cifar10_quick's
 * 3->32, 32->32 and 32->64 convolutions (batch 100) 4.7 / 7.8 / 4.5 ms against 9.8 / 18.5 / 9.7
 * (blocked; channels-last 5.0 / 8.3 / 3.6); LeNet's 20->50 (batch 64) 2.1 against 2.5 ms
 * (channels-last; blocked 3.3); LeNet's 1->20 0.8 (channels-last) and 0.7 ms (blocked) against
 * 0.6, and in bf16 at batch 256 3.8 against 3.0. */
static bool use_dnnl(const moka_layer *l, const conv_state *s)
{
    if (l->ctx->engine != MOKA_ENGINE_FAST) return false;
    return fills_blocks(s) || s->channels / s->p.group > 4;
}

/* Whether the fast engine computes the weight and bias gradients of this im2col-engine
 * convolution directly (src/backend/cpu/conv_dw.h): a first layer (no input gradient) of a
 * geometry the direct kernel fits. LeNet's 1 -> 20 at batch 256 on 2 AVX-512 cores: backward
 * 2.0 ms with im2col + GEMM and a separate bias sum, against ~0.8. */
static bool direct_dw(const moka_layer *l, const conv_state *s)
{
    if (l->ctx->engine != MOKA_ENGINE_FAST || s->dnnl.op || !l->weight[0]->grad) return false;
    for (int i = 0; i < l->num_bottom; i++)
        if (moka_layer_needs_bottom_grad(l, i)) return false;
    return moka_conv_dw_fits(&s->e.g, s->p.group);
}

/* Builds (or rebuilds, after a reshape) the oneDNN op. A shape oneDNN cannot run fast stays on
 * the im2col engine; in bf16 that is said once in the log, since that layer then runs fp32. */
static moka_status ensure_op(moka_layer *l, moka_err *err)
{
    conv_state *s = l->state;
    if (!use_dnnl(l, s)) return MOKA_OK;
    const moka_conv_engine *e = &s->e;
    const moka_conv_param *p = &s->p;
    moka_dnnl_shape sh;
    memset(&sh, 0, sizeof sh); /* compared bytewise below */
    sh.kind = MOKA_DNNL_CONV;
    sh.bf16 = l->ctx->precision == MOKA_PRECISION_BF16;
    sh.bias = p->bias_term;
    sh.backward_data = false;
    for (int i = 0; i < l->num_bottom; i++) sh.backward_data |= l->propagate_down[i];
    sh.backward_weights = l->weight[0]->grad != NULL;
    sh.prefer_nhwc = !fills_blocks(s);
    sh.num = e->num;
    sh.channels = s->channels;
    sh.out_channels = p->num_output;
    sh.group = p->group;
    sh.height = e->g.height;
    sh.width = e->g.width;
    sh.out_h = e->g.out_h;
    sh.out_w = e->g.out_w;
    sh.kernel_h = p->kernel_h;
    sh.kernel_w = p->kernel_w;
    sh.pad_h = p->pad_h;
    sh.pad_w = p->pad_w;
    sh.stride_h = p->stride_h;
    sh.stride_w = p->stride_w;
    sh.dilation_h = p->dilation_h;
    sh.dilation_w = p->dilation_w;
    return moka_dnnl_slot_ensure(&s->dnnl, &sh, l->name, err);
}

static moka_status conv_setup(moka_layer *l, moka_err *err)
{
    conv_state *s = l->state;
    MOKA_TRY(moka_conv_param_read(l, &s->p, err));
    s->channels = l->bottom[0]->shape[1];
    const moka_conv_param *p = &s->p;
    MOKA_TRY(moka_layer_add_weight(
        l, "weight", MOKA_SHAPE(p->num_output, s->channels / p->group, p->kernel_h, p->kernel_w),
        MOKA_FILL_FROM(moka_pt_msg(l->param, "weight_filler")), err));
    if (p->bias_term)
        MOKA_TRY(moka_layer_add_weight(l, "bias", MOKA_SHAPE(p->num_output),
                                       MOKA_FILL_FROM(moka_pt_msg(l->param, "bias_filler")), err));
    return MOKA_OK;
}

static moka_status conv_reshape(moka_layer *l, moka_err *err)
{
    conv_state *s = l->state;
    const moka_conv_param *p = &s->p;
    MOKA_TRY(moka_conv_check_bottoms(l, s->channels, err));
    const moka_tensor *x = l->bottom[0];
    const int64_t H = x->shape[2], W = x->shape[3];
    const int64_t ext_h = p->dilation_h * (p->kernel_h - 1) + 1;
    const int64_t ext_w = p->dilation_w * (p->kernel_w - 1) + 1;
    if (H + 2 * p->pad_h < ext_h || W + 2 * p->pad_w < ext_w)
        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                               "kernel (extent %lld x %lld) is larger than the padded input "
                               "(%lld x %lld)",
                               (long long)ext_h, (long long)ext_w, (long long)(H + 2 * p->pad_h),
                               (long long)(W + 2 * p->pad_w));
    const moka_conv_geom g = {
        .channels = s->channels, .height = H, .width = W,
        .kernel_h = p->kernel_h, .kernel_w = p->kernel_w, .pad_h = p->pad_h, .pad_w = p->pad_w,
        .stride_h = p->stride_h, .stride_w = p->stride_w,
        .dilation_h = p->dilation_h, .dilation_w = p->dilation_w,
        .out_h = (H + 2 * p->pad_h - ext_h) / p->stride_h + 1,
        .out_w = (W + 2 * p->pad_w - ext_w) / p->stride_w + 1,
    };
    for (int i = 0; i < l->num_top; i++)
        MOKA_TRY(moka_tensor_set_shape(l->top[i], MOKA_SHAPE(x->shape[0], p->num_output, g.out_h,
                                                             g.out_w),
                                       err));
    return moka_conv_engine_reshape(&s->e, &g, p->group, p->num_output, x->shape[0], err);
}

static moka_status conv_forward_cpu(moka_layer *l, moka_err *err)
{
    conv_state *s = l->state;
    MOKA_TRY(ensure_op(l, err));
    if (s->dnnl.op) {
        const float *b = s->p.bias_term ? l->weight[1]->data : NULL;
        /* One bottom: y may stay in the op's layout (held) for layers that read it there, and x
         * is read held when the layer above left it in the layout the op reads. With several,
         * the op's buffers serve each in turn, so everything goes through plain tensors. */
        const bool one = l->num_bottom == 1;
        const bool hold = one && !l->ctx->plain_layouts && moka_held_possible(l->top[0]);
        for (int i = 0; i < l->num_bottom; i++) {
            const moka_held *hx = moka_held_get(l->bottom[i], false);
            if (hx && !(one && moka_dnnl_op_takes_x(s->dnnl.op, hx->layout))) {
                moka_tensor_sync(l->bottom[i], false);
                hx = NULL;
            }
            moka_held h;
            MOKA_TRY(moka_dnnl_op_forward(s->dnnl.op, l->bottom[i]->data, hx, l->weight[0]->data,
                                          b, l->top[i]->data, hold ? &h : NULL, err));
            if (hold && h.layout != MOKA_LAYOUT_PLAIN)
                moka_held_set(l->top[i], false, h.layout, h.ptr);
        }
        return MOKA_OK;
    }
    for (int i = 0; i < l->num_bottom; i++) {
        moka_tensor_sync(l->bottom[i], false);
        const moka_conv_job job = {
            .im = l->bottom[i]->data, .w = l->weight[0]->data, .out = l->top[i]->data,
            .bias = s->p.bias_term ? l->weight[1]->data : NULL,
        };
        MOKA_TRY(moka_conv_engine_run(&s->e, &job, err));
    }
    return MOKA_OK;
}

static moka_status conv_backward_cpu(moka_layer *l, moka_err *err)
{
    conv_state *s = l->state;
    const moka_conv_engine *e = &s->e;
    float *dw = l->weight[0]->grad, *db = s->p.bias_term ? l->weight[1]->grad : NULL;
    const bool direct = direct_dw(l, s);
    for (int i = 0; i < l->num_bottom; i++) {
        /* x plain, unless the op reads the copy its forward made (x may be held). */
        if (!(s->dnnl.op && moka_dnnl_op_reuses_x(s->dnnl.op, l->bottom[i]->data)))
            moka_tensor_sync(l->bottom[i], false);
        /* dy held by the layer above (in the layout this op's forward wrote y in): read there
         * when the backward passes take it, else brought back to plain. */
        const moka_held *h = moka_held_get(l->top[i], true);
        if (h && !(s->dnnl.op && moka_dnnl_op_takes_dy(s->dnnl.op, h->layout))) {
            moka_tensor_sync(l->top[i], true);
            h = NULL;
        }
        const float *dy = l->top[i]->grad;
        /* dx goes back held when the oneDNN op computes it in the layout the layer below holds
         * x in (written whole, as layout.h says); else it goes into the plain gradient, written
         * whole when its zeroing is pending, else added. */
        const moka_held *hx = moka_held_get(l->bottom[i], false);
        const bool keep_dx = s->dnnl.op && moka_layer_needs_bottom_grad(l, i) &&
                             l->num_bottom == 1 && hx &&
                             hx->layout == moka_dnnl_op_dx_layout(s->dnnl.op);
        bool dx_whole = false;
        float *dx = keep_dx ? l->bottom[i]->grad : moka_layer_bottom_grad_whole(l, i, &dx_whole);
        const int64_t P = e->g.out_h * e->g.out_w;
        /* Under bf16 the bias sum also rounds held dy for the backward passes (one read). */
        uint16_t *stage = h && db && (dw || dx) ? moka_dnnl_op_dy_stage(s->dnnl.op, h->layout)
                                                : NULL;
        if (db && h) bias_grad_held(h->layout, h->ptr, e->num, e->out_channels, P, db, stage);
        if (direct) {
            MOKA_TRY(moka_conv_dw_run(&s->dwk, &e->g, e->out_channels, e->num,
                                      l->bottom[i]->data, dy, dw, db, err));
            continue;
        }
        if (db && !h) moka_conv_bias_grad(dy, e->num, e->out_channels, P, db);
        if (!dw && !dx) continue;
        if (s->dnnl.op) {
            moka_held hdx;
            MOKA_TRY(moka_dnnl_op_backward(s->dnnl.op, l->bottom[i]->data, l->weight[0]->data,
                                           dy, h, stage != NULL, dx, dx_whole,
                                           keep_dx ? &hdx : NULL, dw, err));
            if (keep_dx && hdx.layout != MOKA_LAYOUT_PLAIN)
                moka_held_set(l->bottom[i], true, hdx.layout, hdx.ptr);
            continue;
        }
        const moka_conv_job job = {
            .im = dw ? l->bottom[i]->data : NULL, .outside = dy, .w = l->weight[0]->data,
            .dw = dw, .im_grad = dx, .zero_im_grad = dx_whole,
        };
        MOKA_TRY(moka_conv_engine_run(&s->e, &job, err));
    }
    return MOKA_OK;
}

static void conv_destroy(moka_layer *l)
{
    conv_state *s = l->state;
    moka_conv_engine_free(&s->e);
    moka_dnnl_slot_free(&s->dnnl);
    moka_conv_dw_free(&s->dwk);
}

static double conv_flops(const moka_layer *l, bool backward)
{
    const conv_state *s = l->state;
    const moka_conv_engine *e = &s->e;
    const double one = 2.0 * (double)e->num * (double)e->weight_count *
                       (double)(e->g.out_h * e->g.out_w) * (double)l->num_bottom;
    if (!backward) return one;
    return (l->weight[0]->grad ? one : 0.0) + (moka_layer_needs_bottom_grad(l, 0) ? one : 0.0);
}

static const char *conv_kernel(const moka_layer *l)
{
    const conv_state *s = l->state;
    if (s->dnnl.op) return moka_dnnl_op_kernel(s->dnnl.op);
    const bool bf16 = l->ctx->precision == MOKA_PRECISION_BF16;
    if (direct_dw(l, s))
        return bf16 ? "im2col+sgemm (oneDNN jit), direct dW (AVX-512), fp32"
                    : "im2col+sgemm (oneDNN jit), direct dW (AVX-512)";
    return bf16 ? "im2col+sgemm (oneDNN jit), fp32" : "im2col+sgemm (oneDNN jit)";
}

const moka_layer_ops moka_layer_convolution = {
    .type = "Convolution", .param_field = "convolution_param", .state_size = sizeof(conv_state),
    .min_bottom = 1, .max_bottom = -1, .min_top = 1, .max_top = -1,
    .reads_held = true,
    .setup = conv_setup, .reshape = conv_reshape,
    .forward_cpu = conv_forward_cpu, .backward_cpu = conv_backward_cpu, .destroy = conv_destroy,
    .flops = conv_flops, .kernel = conv_kernel,
};
