/* src/backend/cpu/dnnl_op.c -- convolution and inner product through oneDNN primitives (see
 * dnnl_op.h). oneDNN 2.6 C API: an operation descriptor per pass, a primitive descriptor that
 * picks the implementation and the memory layouts, then the primitive; "edges" move data between
 * moka's plain fp32 tensors and the layouts (and data types) a primitive wants.
 */
#include "backend/cpu/dnnl_op.h"
#include "backend/cpu/transpose.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moka/log.h"

/* One engine and stream for the process (oneDNN's CPU engine is stateless and thread-safe). */
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static dnnl_status_t g_init_status = dnnl_success;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_engine(void)
{
    g_init_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0);
    if (g_init_status == dnnl_success)
        g_init_status = dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags);
}

static moka_status dnnl_fail(moka_err *err, dnnl_status_t st, const char *what)
{
    if (st == dnnl_out_of_memory)
        return moka_errf(err, MOKA_ERR_NOMEM, "oneDNN: out of memory (%s)", what);
    return moka_errf(err, MOKA_ERR_BACKEND, "oneDNN: %s failed (status %d)", what, (int)st);
}

#define DNNL_TRY(call, what)                                                                       \
    do {                                                                                           \
        const dnnl_status_t st_ = (call);                                                          \
        if (st_ != dnnl_success) return dnnl_fail(err, st_, what);                                 \
    } while (0)

bool moka_dnnl_bf16_supported(const char **isa)
{
    const dnnl_cpu_isa_t got = dnnl_get_effective_cpu_isa();
    static const struct {
        dnnl_cpu_isa_t isa;
        const char *name;
    } names[] = {
        {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
        {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
        {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
        {dnnl_cpu_isa_avx512_core, "avx512_core"},
        {dnnl_cpu_isa_avx2, "avx2"},
        {dnnl_cpu_isa_avx, "avx"},
        {dnnl_cpu_isa_sse41, "sse41"},
    };
    const char *name = "no SIMD";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (((unsigned)got & (unsigned)names[i].isa) == (unsigned)names[i].isa) {
            name = names[i].name;
            break;
        }
    if (isa) *isa = name;
    return ((unsigned)got & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

/* ---- edges: a user (moka) buffer and the primitive's view of it ---- */

typedef struct edge {
    dnnl_memory_t user;  /* moka's buffer; its handle is set per call */
    dnnl_memory_t inner; /* what the primitive reads or writes (== user when direct) */
    dnnl_primitive_t
        reorder; /* user -> inner (inputs) or inner -> user (outputs); NULL if direct */
    /* Instead of `reorder`, moka's own NCHW <-> NHWC transpose (fp32, or fp32 -> bf16 for
     * inputs) of `nchw` = {N, C, H W}: oneDNN 2.6's reorder for it ran at a third of the memory
     * speed (LeNet conv2's dy, 64 x 50 x 8 x 8: 0.14 ms). */
    bool transpose, bf16;
    bool add; /* an output edge that adds into moka's buffer */
    int64_t nchw[3];
    /* Instead of `reorder`, moka's own element-by-element fp32 -> bf16 rounding of `count`
     * elements, when the primitive wants the user's layout in bf16 (oneDNN 2.6's reorder took
     * 0.33 ms for cifar10_quick's 100x3x32x32 input, ten times the memory time). */
    bool round_only;
    /* Input edges of dy: the held layout (src/core/layout.h) the primitive reads dy in, if any
     * (in fp32, fed directly through `held`, a handle-only memory; or in bf16, converted
     * element by element into `inner`), and dy's element count. */
    moka_layout held_layout;
    bool held_bf16;
    dnnl_memory_t held;
    int64_t count;
} edge;

#define to_bf16 moka_dnnl_to_bf16

/* (N, C, P) fp32 -> (N, P, C), fp32 or bf16; one image per thread step (an image of LeNet or
 * cifar10_quick fits in L1/L2), in 16 x 16 register transposes where there is AVX-512. */
static void nchw_to_nhwc(const float *src, void *dst, const int64_t *d, bool bf16)
{
    const int64_t N = d[0], C = d[1], P = d[2];
#pragma omp parallel for schedule(static) if (N * C * P >= (1 << 15))
    for (int64_t n = 0; n < N; n++) {
        const float *s = src + n * C * P;
#if defined(MOKA_HAVE_TRANSPOSE16)
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
            const int64_t nc = C - c0 < 16 ? C - c0 : 16;
            for (int64_t p = 0; p < P; p += 16) {
                const int64_t cnt = P - p < 16 ? P - p : 16;
                if (!bf16) {
                    moka_planes_to_cl(s + c0 * P + p, P, cnt, nc,
                                      (float *)dst + (n * P + p) * C + c0, C);
                    continue;
                }
                __m512 r[16];
                moka_planes_load_cl(s + c0 * P + p, P, cnt, nc, r);
                uint16_t *o = (uint16_t *)dst + (n * P + p) * C + c0;
                for (int64_t j = 0; j < cnt; j++) {
                    const __m256i v = moka_dnnl_to_bf16x16(r[j]);
                    if (nc == 16) {
                        _mm256_storeu_si256((__m256i *)(o + j * C), v);
                    } else {
                        uint16_t t[16];
                        _mm256_storeu_si256((__m256i *)t, v);
                        memcpy(o + j * C, t, (size_t)nc * sizeof *t);
                    }
                }
            }
        }
#else
        if (bf16) {
            uint16_t *o = (uint16_t *)dst + n * C * P;
            for (int64_t c = 0; c < C; c++)
                for (int64_t p = 0; p < P; p++) o[p * C + c] = to_bf16(s[c * P + p]);
        } else {
            float *o = (float *)dst + n * C * P;
            for (int64_t c = 0; c < C; c++)
                for (int64_t p = 0; p < P; p++) o[p * C + c] = s[c * P + p];
        }
#endif
    }
}

/* fp32 -> bf16 element by element. */
static void round_all(const float *src, uint16_t *dst, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n >= (1 << 15))
    for (int64_t i = 0; i < n; i++) dst[i] = to_bf16(src[i]);
}

/* (N, P, C) fp32 added into (N, C, P). (Written, not added, it is moka_layout_to_plain.) */
static void nhwc_add_to_nchw(const float *src, float *dst, const int64_t *d)
{
    const int64_t N = d[0], C = d[1], P = d[2];
#pragma omp parallel for schedule(static) if (N * C * P >= (1 << 15))
    for (int64_t n = 0; n < N; n++) {
        const float *s = src + n * C * P;
        float *o = dst + n * C * P;
#if defined(MOKA_HAVE_TRANSPOSE16)
        for (int64_t c0 = 0; c0 < C; c0 += 16)
            for (int64_t p = 0; p < P; p += 16)
                moka_cl_to_planes(s + p * C + c0, C, P - p < 16 ? P - p : 16,
                                  C - c0 < 16 ? C - c0 : 16, o + c0 * P + p, P, true);
#else
        for (int64_t c = 0; c < C; c++)
            for (int64_t p = 0; p < P; p++) o[c * P + p] += s[p * C + c];
#endif
    }
}

/* Whether `a` (4-D, plain NCHW fp32: moka's side) and `b` differ only in b being NHWC (fp32, or
 * bf16 when `bf16_ok`): then the edge transposes itself. */
static bool is_nhwc_of(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b, bool bf16_ok)
{
    if (a->ndims != 4 || a->data_type != dnnl_f32) return false;
    if (b->data_type != dnnl_f32 && !(bf16_ok && b->data_type == dnnl_bf16)) return false;
    dnnl_memory_desc_t nhwc;
    if (dnnl_memory_desc_init_by_tag(&nhwc, 4, a->dims, b->data_type, dnnl_nhwc) != dnnl_success)
        return false;
    return dnnl_memory_desc_equal(&nhwc, b);
}

static int64_t md_count(const dnnl_memory_desc_t *md)
{
    int64_t n = 1;
    for (int i = 0; i < md->ndims; i++) n *= md->dims[i];
    return n;
}

static void set_transpose(edge *e, const dnnl_memory_desc_t *user_md, bool bf16, bool add)
{
    e->transpose = true;
    e->bf16 = bf16;
    e->add = add;
    e->nchw[0] = user_md->dims[0];
    e->nchw[1] = user_md->dims[1];
    e->nchw[2] = user_md->dims[2] * user_md->dims[3];
}

static void edge_free(edge *e)
{
    if (e->held) dnnl_memory_destroy(e->held);
    if (e->reorder) dnnl_primitive_destroy(e->reorder);
    if (e->inner && e->inner != e->user) dnnl_memory_destroy(e->inner);
    if (e->user) dnnl_memory_destroy(e->user);
    memset(e, 0, sizeof *e);
}

/* An input edge: the primitive reads `want`; moka passes `user_md`. Direct when they are the
 * same; else a buffer of its own, filled by moka's transpose (NCHW -> NHWC) or a reorder. */
static moka_status edge_in(edge *e, const dnnl_memory_desc_t *user_md,
                           const dnnl_memory_desc_t *want, moka_err *err)
{
    DNNL_TRY(dnnl_memory_create(&e->user, user_md, g_engine, DNNL_MEMORY_NONE), "memory");
    if (dnnl_memory_desc_equal(user_md, want)) {
        e->inner = e->user;
        return MOKA_OK;
    }
    DNNL_TRY(dnnl_memory_create(&e->inner, want, g_engine, DNNL_MEMORY_ALLOCATE), "memory");
    if (is_nhwc_of(user_md, want, true)) {
        set_transpose(e, user_md, want->data_type == dnnl_bf16, false);
        return MOKA_OK;
    }
    dnnl_memory_desc_t as_bf16 = *user_md;
    as_bf16.data_type = dnnl_bf16;
    if (user_md->data_type == dnnl_f32 && dnnl_memory_desc_equal(&as_bf16, want)) {
        e->round_only = true;
        e->count = md_count(user_md);
        return MOKA_OK;
    }
    dnnl_primitive_desc_t pd;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, user_md, g_engine, want, g_engine, NULL),
             "reorder");
    const dnnl_status_t st = dnnl_primitive_create(&e->reorder, pd);
    dnnl_primitive_desc_destroy(pd);
    DNNL_TRY(st, "reorder");
    return MOKA_OK;
}

/* Primitive attributes that, when `sum`, add the result into the destination (a sum post-op).
 * Free *attr with dnnl_primitive_attr_destroy (it holds its own copy of the post-ops). */
static dnnl_status_t sum_attr(bool sum, dnnl_primitive_attr_t *attr)
{
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st != dnnl_success || !sum) return st;
    dnnl_post_ops_t po = NULL;
    st = dnnl_post_ops_create(&po);
    if (st == dnnl_success) st = dnnl_post_ops_append_sum(po, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*attr, po);
    if (po) dnnl_post_ops_destroy(po);
    return st;
}

/* An output edge: the primitive writes `have`; moka's buffer (`user_md`) is written, or added
 * into when `add` (then never direct: moka's transpose adds, or a reorder with a sum post-op). */
static moka_status edge_out(edge *e, const dnnl_memory_desc_t *have,
                            const dnnl_memory_desc_t *user_md, bool add, moka_err *err)
{
    DNNL_TRY(dnnl_memory_create(&e->user, user_md, g_engine, DNNL_MEMORY_NONE), "memory");
    if (!add && dnnl_memory_desc_equal(user_md, have)) {
        e->inner = e->user;
        return MOKA_OK;
    }
    DNNL_TRY(dnnl_memory_create(&e->inner, have, g_engine, DNNL_MEMORY_ALLOCATE), "memory");
    e->add = add;
    if (is_nhwc_of(user_md, have, false)) {
        set_transpose(e, user_md, false, add);
        return MOKA_OK;
    }
    dnnl_primitive_attr_t attr = NULL;
    dnnl_status_t st = sum_attr(add, &attr);
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&pd, have, g_engine, user_md, g_engine, attr);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->reorder, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    DNNL_TRY(st, "reorder");
    return MOKA_OK;
}

/* Points the edge at moka's buffer and, for an input, converts it. */
static moka_status edge_load(edge *e, const float *p, moka_err *err)
{
    DNNL_TRY(dnnl_memory_set_data_handle(e->user, (void *)p), "set handle");
    if (e->transpose) {
        void *in;
        DNNL_TRY(dnnl_memory_get_data_handle(e->inner, &in), "get handle");
        nchw_to_nhwc(p, in, e->nchw, e->bf16);
    } else if (e->round_only) {
        void *in;
        DNNL_TRY(dnnl_memory_get_data_handle(e->inner, &in), "get handle");
        round_all(p, in, e->count);
    } else if (e->reorder) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, e->user}, {DNNL_ARG_TO, e->inner}};
        DNNL_TRY(dnnl_primitive_execute(e->reorder, g_stream, 2, a), "reorder");
    }
    return MOKA_OK;
}

/* After the primitive ran: converts (or, for an adding edge, adds) its result into moka's
 * buffer; `whole`: an adding edge writes instead (p's old contents are to be ignored). */
static moka_status edge_store(edge *e, float *p, bool whole, moka_err *err)
{
    DNNL_TRY(dnnl_memory_set_data_handle(e->user, p), "set handle");
    if (e->transpose) {
        void *in;
        DNNL_TRY(dnnl_memory_get_data_handle(e->inner, &in), "get handle");
        if (e->add && !whole)
            nhwc_add_to_nchw(in, p, e->nchw);
        else
            moka_layout_to_plain(MOKA_LAYOUT_NHWC, in, p,
                                 (const int64_t[]){e->nchw[0], e->nchw[1], e->nchw[2], 1});
    } else if (e->reorder) {
        if (e->add && whole) {
            const dnnl_memory_desc_t *md;
            DNNL_TRY(dnnl_memory_get_memory_desc(e->user, &md), "memory desc");
            memset(p, 0, (size_t)md_count(md) * sizeof *p);
        }
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, e->inner}, {DNNL_ARG_TO, e->user}};
        DNNL_TRY(dnnl_primitive_execute(e->reorder, g_stream, 2, a), "reorder");
    }
    return MOKA_OK;
}

/* The held layout `md` is, in data type `dt`: channels-last, or nChw16c with whole blocks. */
static moka_layout layout_of(const dnnl_memory_desc_t *md, dnnl_data_type_t dt)
{
    if (md->ndims != 4 || md->data_type != dt) return MOKA_LAYOUT_PLAIN;
    dnnl_memory_desc_t t;
    if (dnnl_memory_desc_init_by_tag(&t, 4, md->dims, dt, dnnl_nhwc) == dnnl_success &&
        dnnl_memory_desc_equal(&t, md))
        return MOKA_LAYOUT_NHWC;
    if (md->dims[1] % 16 == 0 &&
        dnnl_memory_desc_init_by_tag(&t, 4, md->dims, dt, dnnl_nChw16c) == dnnl_success &&
        dnnl_memory_desc_equal(&t, md))
        return MOKA_LAYOUT_NCHW16C;
    return MOKA_LAYOUT_PLAIN;
}

/* For an input edge of dy: whether (and how) it can take dy held instead of plain. */
static moka_status edge_allow_held(edge *e, moka_err *err)
{
    if (e->inner == e->user) return MOKA_OK; /* the primitive reads plain dy */
    const dnnl_memory_desc_t *want;
    DNNL_TRY(dnnl_memory_get_memory_desc(e->inner, &want), "memory desc");
    e->count = md_count(want);
    e->held_layout = layout_of(want, dnnl_f32);
    if (e->held_layout != MOKA_LAYOUT_PLAIN)
        DNNL_TRY(dnnl_memory_create(&e->held, want, g_engine, DNNL_MEMORY_NONE), "memory");
    else if ((e->held_layout = layout_of(want, dnnl_bf16)) != MOKA_LAYOUT_PLAIN)
        e->held_bf16 = true;
    return MOKA_OK;
}

/* Feeds held dy to the edge; *use receives the memory the primitive reads. `staged`: the
 * caller already wrote the bf16 copy (moka_dnnl_op_dy_stage). */
static moka_status edge_load_held(edge *e, const moka_held *h, bool staged, dnnl_memory_t *use,
                                  moka_err *err)
{
    if (!e->held_bf16) {
        DNNL_TRY(dnnl_memory_set_data_handle(e->held, h->ptr), "set handle");
        *use = e->held;
        return MOKA_OK;
    }
    if (staged) {
        *use = e->inner;
        return MOKA_OK;
    }
    void *in;
    DNNL_TRY(dnnl_memory_get_data_handle(e->inner, &in), "get handle");
    round_all(h->ptr, in, e->count);
    *use = e->inner;
    return MOKA_OK;
}

/* ---- the op ---- */

enum { FWD, BWD_D, BWD_W, NPASS };

struct moka_dnnl_op {
    moka_dnnl_shape s;
    dnnl_primitive_t prim[NPASS];
    /* forward: x, W, b -> y;  backward data: dy, W -> dx;  backward weights: x, dy -> dW */
    edge f_x, f_w, f_b, f_y;
    edge d_dy, d_w, d_dx;
    edge w_x, w_dy, w_dw;
    /* Backward-weights reads dy in backward-data's layout: d_dy serves both and w_dy is unused. */
    bool share_dy;
    /* The held layout the forward writes y in (PLAIN when it writes plain y directly or in a
     * layout moka does not hold). */
    moka_layout y_layout;
    /* Backward-weights reads x in the forward's layout: when backward gets the x the last
     * forward converted (fx_last), it reads f_x's copy instead of converting x again. */
    bool share_x;
    const float *fx_last;
    dnnl_memory_t fx_mem; /* what the last forward read x from (f_x.inner, or x held) */
    /* The held layout backward-data writes dx in (PLAIN when moka does not hold it). */
    moka_layout dx_layout;
    /* Inner products run on matmul primitives instead (see mm_build). */
    struct mm_state *mm;
    char kernel[160];
};

/* op->kernel = "oneDNN [bf16 ]<what>fwd-impl[ / other impls]": each distinct implementation of
 * the built passes once (NULL or "" for a pass not built). */
static void set_kernel_name(moka_dnnl_op *op, const char *what, const char *const impl[NPASS])
{
    int len = snprintf(op->kernel, sizeof op->kernel, "oneDNN%s %s%s", op->s.bf16 ? " bf16" : "",
                       what, impl[FWD]);
    for (int p = BWD_D; p < NPASS; p++) {
        bool seen = !impl[p] || !impl[p][0];
        for (int q = 0; q < p && !seen; q++) seen = impl[q] && strcmp(impl[q], impl[p]) == 0;
        if (!seen && len > 0 && (size_t)len < sizeof op->kernel)
            len += snprintf(op->kernel + len, sizeof op->kernel - (size_t)len, " / %s", impl[p]);
    }
}

/* Frees the primitives and edges, leaving the op as calloc made it apart from its shape. */
static void op_release(moka_dnnl_op *op)
{
    for (int p = 0; p < NPASS; p++)
        if (op->prim[p]) dnnl_primitive_destroy(op->prim[p]);
    memset(op->prim, 0, sizeof op->prim);
    edge *edges[] = {&op->f_x, &op->f_w,  &op->f_b, &op->f_y,  &op->d_dy,
                     &op->d_w, &op->d_dx, &op->w_x, &op->w_dy, &op->w_dw};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) edge_free(edges[i]);
    op->share_dy = false;
    op->y_layout = MOKA_LAYOUT_PLAIN;
    op->share_x = false;
    op->fx_last = NULL;
    op->fx_mem = NULL;
    op->dx_layout = MOKA_LAYOUT_PLAIN;
}

static void mm_free(struct mm_state *mm);

void moka_dnnl_op_free(moka_dnnl_op *op)
{
    if (!op) return;
    op_release(op);
    mm_free(op->mm);
    free(op);
}

/* The user (moka) descriptors: x, W, b, y in plain fp32. */
typedef struct user_mds {
    dnnl_memory_desc_t x, w, b, y;
} user_mds;

static moka_status init_user_mds(const moka_dnnl_shape *s, user_mds *u, moka_err *err)
{
    const dnnl_dims_t bd = {s->out_channels};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&u->b, 1, bd, dnnl_f32, dnnl_x), "memory desc");
    const dnnl_dims_t xd = {s->num, s->channels, s->height, s->width};
    const dnnl_dims_t yd = {s->num, s->out_channels, s->out_h, s->out_w};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&u->x, 4, xd, dnnl_f32, dnnl_nchw), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&u->y, 4, yd, dnnl_f32, dnnl_nchw), "memory desc");
    const int64_t G = s->group;
    if (G == 1) {
        const dnnl_dims_t wd = {s->out_channels, s->channels, s->kernel_h, s->kernel_w};
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&u->w, 4, wd, dnnl_f32, dnnl_oihw), "memory desc");
    } else {
        const dnnl_dims_t wd = {G, s->out_channels / G, s->channels / G, s->kernel_h, s->kernel_w};
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&u->w, 5, wd, dnnl_f32, dnnl_goihw), "memory desc");
    }
    return MOKA_OK;
}

/* The descriptors handed to oneDNN: the same dims with layout `act` for activations ("any" or
 * nhwc) and "any" for weights; data types by precision and role. */
typedef struct prim_mds {
    dnnl_memory_desc_t x, w, b, y;
} prim_mds;

static moka_status init_prim_mds(const user_mds *u, bool nhwc, dnnl_data_type_t in_dt,
                                 dnnl_data_type_t w_dt, dnnl_data_type_t out_dt, prim_mds *m,
                                 moka_err *err)
{
    const dnnl_format_tag_t act = nhwc ? dnnl_nhwc : dnnl_format_tag_any;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->x, u->x.ndims, u->x.dims, in_dt, act), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->y, u->y.ndims, u->y.dims, out_dt, act),
             "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&m->w, u->w.ndims, u->w.dims, w_dt, dnnl_format_tag_any),
             "memory desc");
    m->b = u->b;
    return MOKA_OK;
}

/* Creates the primitive descriptor of one pass; dnnl_unimplemented comes back as is. */
static dnnl_status_t make_pd(const moka_dnnl_shape *s, int pass, const prim_mds *m,
                             const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd)
{
    const int64_t ext_h = s->dilation_h * (s->kernel_h - 1) + 1;
    const int64_t ext_w = s->dilation_w * (s->kernel_w - 1) + 1;
    const dnnl_dims_t strides = {s->stride_h, s->stride_w};
    const dnnl_dims_t dil = {s->dilation_h - 1, s->dilation_w - 1};
    const dnnl_dims_t pl = {s->pad_h, s->pad_w};
    /* Caffe rounds the output size down: the right/bottom padding actually used. */
    const dnnl_dims_t pr = {(s->out_h - 1) * s->stride_h + ext_h - s->height - s->pad_h,
                            (s->out_w - 1) * s->stride_w + ext_w - s->width - s->pad_w};
    dnnl_convolution_desc_t d;
    dnnl_status_t st;
    if (pass == FWD)
        st = dnnl_dilated_convolution_forward_desc_init(
            &d, dnnl_forward_training, dnnl_convolution_direct, &m->x, &m->w,
            s->bias ? &m->b : NULL, &m->y, strides, dil, pl, pr);
    else if (pass == BWD_D)
        st = dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &m->x,
                                                              &m->w, &m->y, strides, dil, pl, pr);
    else
        st = dnnl_dilated_convolution_backward_weights_desc_init(
            &d, dnnl_convolution_direct, &m->x, &m->w, NULL, &m->y, strides, dil, pl, pr);
    if (st != dnnl_success) return st;
    return dnnl_primitive_desc_create(pd, &d, NULL, g_engine, hint);
}

/* Whether an implementation is one moka wants: never oneDNN's reference loops; its GEMM-based
 * convolution (im2col + GEMM) only when `gemm_ok` (in fp32 moka's own engine matches it). */
static bool fast_impl(const char *impl, bool gemm_ok)
{
    if (!impl || strstr(impl, "ref")) return false;
    if (!gemm_ok && strstr(impl, "gemm") && !strstr(impl, "brg"))
        return false;
    return true;
}

static const dnnl_memory_desc_t *md_of(const_dnnl_primitive_desc_t pd, int arg)
{
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

/* Builds every pass with activations in layout `nhwc` (or "any"). MOKA_ERR_UNSUPPORTED when a
 * pass has no fast implementation; `why` then says which. */
static moka_status build(moka_dnnl_op *op, bool nhwc, bool gemm_ok, char *why, size_t why_len,
                         moka_err *err)
{
    const moka_dnnl_shape *s = &op->s;
    const dnnl_data_type_t lo = s->bf16 ? dnnl_bf16 : dnnl_f32;
    user_mds u;
    MOKA_TRY(init_user_mds(s, &u, err));
    /* fwd: x, W in `lo`, y f32;  bwd data: dy, W in `lo`, dx f32;  bwd weights: x, dy in `lo`,
     * dW f32. */
    prim_mds mf, md, mw;
    MOKA_TRY(init_prim_mds(&u, nhwc, lo, lo, dnnl_f32, &mf, err));
    MOKA_TRY(init_prim_mds(&u, nhwc, dnnl_f32, lo, lo, &md, err));
    MOKA_TRY(init_prim_mds(&u, nhwc, lo, dnnl_f32, lo, &mw, err));
    const prim_mds *mds[NPASS] = {&mf, &md, &mw};
    static const char *pass_name[NPASS] = {"forward", "backward-data", "backward-weights"};

    dnnl_primitive_desc_t pd[NPASS] = {NULL, NULL, NULL};
    const char *impl[NPASS] = {NULL, NULL, NULL};
    moka_status rc = MOKA_OK;
    for (int p = 0; p < NPASS && rc == MOKA_OK; p++) {
        if ((p == BWD_D && !s->backward_data) || (p == BWD_W && !s->backward_weights)) continue;
        const dnnl_status_t st = make_pd(s, p, mds[p], p == FWD ? NULL : pd[FWD], &pd[p]);
        if (st == dnnl_success)
            (void)dnnl_primitive_desc_query(pd[p], dnnl_query_impl_info_str, 0, &impl[p]);
        if (st == dnnl_unimplemented || st == dnnl_invalid_arguments ||
            (st == dnnl_success && !fast_impl(impl[p], gemm_ok))) {
            snprintf(why, why_len, "%s: %s", pass_name[p],
                     st == dnnl_success ? impl[p] : "no implementation");
            rc = MOKA_ERR_UNSUPPORTED;
        } else if (st != dnnl_success) {
            rc = dnnl_fail(err, st, "primitive descriptor");
        }
    }
    for (int p = 0; p < NPASS && rc == MOKA_OK; p++) {
        if (!pd[p]) continue;
        const dnnl_status_t st = dnnl_primitive_create(&op->prim[p], pd[p]);
        if (st != dnnl_success) rc = dnnl_fail(err, st, "primitive");
    }
    /* Edges. The backward passes take dy in their own layouts; x is converted again for the
     * weight gradient (the forward's copy would have to live until backward for every bottom). */
    if (rc == MOKA_OK) rc = edge_in(&op->f_x, &u.x, md_of(pd[FWD], DNNL_ARG_SRC), err);
    if (rc == MOKA_OK) rc = edge_allow_held(&op->f_x, err);
    if (rc == MOKA_OK) rc = edge_in(&op->f_w, &u.w, md_of(pd[FWD], DNNL_ARG_WEIGHTS), err);
    if (rc == MOKA_OK && s->bias) rc = edge_in(&op->f_b, &u.b, md_of(pd[FWD], DNNL_ARG_BIAS), err);
    if (rc == MOKA_OK) rc = edge_out(&op->f_y, md_of(pd[FWD], DNNL_ARG_DST), &u.y, false, err);
    if (rc == MOKA_OK && op->f_y.inner != op->f_y.user)
        op->y_layout = layout_of(md_of(pd[FWD], DNNL_ARG_DST), dnnl_f32);
    if (rc == MOKA_OK && pd[BWD_D]) {
        rc = edge_in(&op->d_dy, &u.y, md_of(pd[BWD_D], DNNL_ARG_DIFF_DST), err);
        if (rc == MOKA_OK) rc = edge_allow_held(&op->d_dy, err);
        if (rc == MOKA_OK) rc = edge_in(&op->d_w, &u.w, md_of(pd[BWD_D], DNNL_ARG_WEIGHTS), err);
        if (rc == MOKA_OK)
            rc = edge_out(&op->d_dx, md_of(pd[BWD_D], DNNL_ARG_DIFF_SRC), &u.x, true, err);
        if (rc == MOKA_OK && op->d_dx.inner != op->d_dx.user)
            op->dx_layout = layout_of(md_of(pd[BWD_D], DNNL_ARG_DIFF_SRC), dnnl_f32);
    }
    if (rc == MOKA_OK && pd[BWD_W]) {
        op->share_dy = pd[BWD_D] && dnnl_memory_desc_equal(md_of(pd[BWD_D], DNNL_ARG_DIFF_DST),
                                                           md_of(pd[BWD_W], DNNL_ARG_DIFF_DST));
        op->share_x = op->f_x.inner != op->f_x.user &&
                      dnnl_memory_desc_equal(md_of(pd[FWD], DNNL_ARG_SRC),
                                             md_of(pd[BWD_W], DNNL_ARG_SRC));
        rc = edge_in(&op->w_x, &u.x, md_of(pd[BWD_W], DNNL_ARG_SRC), err);
        if (rc == MOKA_OK && !op->share_dy) {
            rc = edge_in(&op->w_dy, &u.y, md_of(pd[BWD_W], DNNL_ARG_DIFF_DST), err);
            if (rc == MOKA_OK) rc = edge_allow_held(&op->w_dy, err);
        }
        if (rc == MOKA_OK)
            rc = edge_out(&op->w_dw, md_of(pd[BWD_W], DNNL_ARG_DIFF_WEIGHTS), &u.w, true, err);
    }
    if (rc == MOKA_OK) set_kernel_name(op, "", impl);
    for (int p = 0; p < NPASS; p++)
        if (pd[p]) dnnl_primitive_desc_destroy(pd[p]);
    return rc;
}

static moka_status run(dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args, moka_err *err)
{
    DNNL_TRY(dnnl_primitive_execute(prim, g_stream, nargs, args), "primitive");
    return MOKA_OK;
}

/* ---- bf16 inner products on matmul primitives ----
 *
 * oneDNN 2.6's bf16 inner-product primitive ran LeNet's ip1 (batch 256, 800 -> 500) at 0.49 ms
 * forward and 0.98 ms backward on 2 AVX512_BF16 cores; its matmul primitive does each of the
 * three products in ~0.22 ms (925 GFLOP/s) on moka's plain row-major matrices, read through
 * strides (no reorders); an AlexNet-sized 4096 -> 4096 layer went from 20 / 38 ms (forward /
 * backward, batch 256) to 13 / 30. The inputs are rounded to bf16 by moka's loop (x, W, dy), the
 * products accumulate in fp32, dx and dW are added into by a sum post-op. Backward reuses the
 * forward's bf16 x and W when it gets the same tensors (the layers' rule that backward sees what
 * forward saw; PyTorch's autocast likewise casts a weight once per forward and backward). With
 * M = num, K = channels, N = out_channels and W (N, K), or (K, N) when transposed:
 *   forward          y (M, N)  = x (M, K) . W^T (K, N)   + b
 *   backward data    dx (M, K) += dy (M, N) . W (N, K)
 *   backward weights dW (N, K) += dy^T (N, M) . x (M, K)  [transposed: dW (K, N) += x^T dy] */
enum { MM_A, MM_B, MM_C, MM_BIAS, MM_NMEM };
typedef struct mm_state {
    dnnl_primitive_t prim[NPASS];
    dnnl_memory_t mem[NPASS][MM_NMEM];
    uint16_t *xb, *wb, *dyb; /* the bf16 copies of x, W and dy */
    const float *xb_of;      /* the x the last forward rounded into xb */
    const float *wb_of;      /* the W the last forward rounded into wb */
} mm_state;

static void mm_free(mm_state *mm)
{
    if (!mm) return;
    for (int p = 0; p < NPASS; p++) {
        if (mm->prim[p]) dnnl_primitive_destroy(mm->prim[p]);
        for (int k = 0; k < MM_NMEM; k++)
            if (mm->mem[p][k]) dnnl_memory_destroy(mm->mem[p][k]);
    }
    free(mm->xb);
    free(mm->wb);
    free(mm->dyb);
    free(mm);
}

/* One pass: C (rows x cols, f32, row-major, added into when `sum`) = A (rows x inner, bf16,
 * strides sa) . B (inner x cols, bf16, strides sb) [+ bias (1 x cols, f32)]. `impl` gets the
 * implementation's name; MOKA_ERR_UNSUPPORTED for none or the reference one. */
static moka_status mm_pass(mm_state *mm, int p, int64_t rows, int64_t cols, int64_t inner,
                           const int64_t sa[2], const int64_t sb[2], bool bias, bool sum,
                           char impl[64], char *why, size_t why_len, moka_err *err)
{
    dnnl_memory_desc_t a, b, c, bm;
    const dnnl_dims_t da = {rows, inner}, db = {inner, cols}, dc = {rows, cols}, dbias = {1, cols};
    const dnnl_dims_t sta = {sa[0], sa[1]}, stb = {sb[0], sb[1]};
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&a, 2, da, dnnl_bf16, sta), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&b, 2, db, dnnl_bf16, stb), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab), "memory desc");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&bm, 2, dbias, dnnl_f32, dnnl_ab), "memory desc");
    dnnl_matmul_desc_t d;
    DNNL_TRY(dnnl_matmul_desc_init(&d, &a, &b, bias ? &bm : NULL, &c), "matmul desc");
    dnnl_primitive_attr_t attr = NULL;
    dnnl_status_t st = sum_attr(sum, &attr);
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &d, attr, g_engine, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st == dnnl_unimplemented) {
        snprintf(why, why_len, "matmul: no implementation");
        return MOKA_ERR_UNSUPPORTED;
    }
    DNNL_TRY(st, "matmul primitive descriptor");
    const char *name = NULL;
    (void)dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    if (!name || strstr(name, "ref")) {
        snprintf(why, why_len, "matmul: %s", name ? name : "no implementation");
        dnnl_primitive_desc_destroy(pd);
        return MOKA_ERR_UNSUPPORTED;
    }
    snprintf(impl, 64, "%s", name); /* name lives in pd */
    st = dnnl_primitive_create(&mm->prim[p], pd);
    dnnl_primitive_desc_destroy(pd);
    DNNL_TRY(st, "matmul primitive");
    const dnnl_memory_desc_t *mds[MM_NMEM] = {&a, &b, &c, &bm};
    for (int k = 0; k < MM_NMEM; k++)
        if (k != MM_BIAS || bias)
            DNNL_TRY(dnnl_memory_create(&mm->mem[p][k], mds[k], g_engine, DNNL_MEMORY_NONE),
                     "memory");
    return MOKA_OK;
}

static moka_status mm_build(moka_dnnl_op *op, char *why, size_t why_len, moka_err *err)
{
    const moka_dnnl_shape *s = &op->s;
    const int64_t M = s->num, K = s->channels, N = s->out_channels;
    const bool T = s->weights_transposed;
    /* fp32 inner products stay on moka's sgemm path (the layer's). */
    if (!s->bf16) {
        snprintf(why, why_len, "fp32 inner products use the sgemm");
        return MOKA_ERR_UNSUPPORTED;
    }
    mm_state *mm = calloc(1, sizeof *mm);
    if (!mm) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    op->mm = mm;
    mm->xb = malloc((size_t)(M * K) * sizeof *mm->xb);
    mm->wb = malloc((size_t)(N * K) * sizeof *mm->wb);
    mm->dyb = malloc((size_t)(M * N) * sizeof *mm->dyb);
    if (!mm->xb || !mm->wb || !mm->dyb) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    char impl[NPASS][64] = {"", "", ""};
    /* W^T (K, N) and W (N, K) as strided views of W as stored. */
    const int64_t wt[2] = {T ? N : 1, T ? 1 : K}, w[2] = {T ? 1 : K, T ? N : 1};
    MOKA_TRY(mm_pass(mm, FWD, M, N, K, (const int64_t[]){K, 1}, wt, s->bias, false, impl[FWD],
                     why, why_len, err));
    if (s->backward_data)
        MOKA_TRY(mm_pass(mm, BWD_D, M, K, N, (const int64_t[]){N, 1}, w, false, true, impl[BWD_D],
                         why, why_len, err));
    if (s->backward_weights && !T)
        MOKA_TRY(mm_pass(mm, BWD_W, N, K, M, (const int64_t[]){1, N}, (const int64_t[]){K, 1},
                         false, true, impl[BWD_W], why, why_len, err));
    if (s->backward_weights && T)
        MOKA_TRY(mm_pass(mm, BWD_W, K, N, M, (const int64_t[]){1, K}, (const int64_t[]){N, 1},
                         false, true, impl[BWD_W], why, why_len, err));
    const char *const names[NPASS] = {impl[FWD], impl[BWD_D], impl[BWD_W]};
    set_kernel_name(op, "matmul ", names);
    return MOKA_OK;
}

static moka_status mm_run(mm_state *mm, int p, const void *a, const void *b, const float *bias,
                          float *c, moka_err *err)
{
    DNNL_TRY(dnnl_memory_set_data_handle(mm->mem[p][MM_A], (void *)a), "set handle");
    DNNL_TRY(dnnl_memory_set_data_handle(mm->mem[p][MM_B], (void *)b), "set handle");
    DNNL_TRY(dnnl_memory_set_data_handle(mm->mem[p][MM_C], c), "set handle");
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, mm->mem[p][MM_A]},
                               {DNNL_ARG_WEIGHTS, mm->mem[p][MM_B]},
                               {DNNL_ARG_DST, mm->mem[p][MM_C]},
                               {DNNL_ARG_BIAS, mm->mem[p][MM_BIAS]}};
    int n = 3;
    if (bias) {
        DNNL_TRY(dnnl_memory_set_data_handle(mm->mem[p][MM_BIAS], (void *)bias), "set handle");
        n = 4;
    }
    return run(mm->prim[p], n, args, err);
}

static moka_status mm_forward(moka_dnnl_op *op, const float *x, const float *w, const float *b,
                              float *y, moka_err *err)
{
    mm_state *mm = op->mm;
    const moka_dnnl_shape *s = &op->s;
    round_all(x, mm->xb, s->num * s->channels);
    mm->xb_of = x;
    round_all(w, mm->wb, s->out_channels * s->channels);
    mm->wb_of = w;
    return mm_run(mm, FWD, mm->xb, mm->wb, s->bias ? b : NULL, y, err);
}

static moka_status mm_backward(moka_dnnl_op *op, const float *x, const float *w, const float *dy,
                               float *dx, bool dx_whole, float *dw, moka_err *err)
{
    mm_state *mm = op->mm;
    const moka_dnnl_shape *s = &op->s;
    const int64_t M = s->num, K = s->channels, N = s->out_channels;
    if ((dx && !mm->prim[BWD_D]) || (dw && !mm->prim[BWD_W]))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "backward pass was not built");
    if (!dx && !dw) return MOKA_OK;
    round_all(dy, mm->dyb, M * N);
    if (dx) {
        if (mm->wb_of != w) {
            round_all(w, mm->wb, N * K);
            mm->wb_of = w;
        }
        if (dx_whole) memset(dx, 0, (size_t)(M * K) * sizeof *dx);
        MOKA_TRY(mm_run(mm, BWD_D, mm->dyb, mm->wb, NULL, dx, err));
    }
    if (dw) {
        /* x as the last forward rounded it, when it is the same tensor (the layers' rule:
         * backward sees the bottoms forward saw). */
        if (mm->xb_of != x) {
            round_all(x, mm->xb, M * K);
            mm->xb_of = x;
        }
        if (!s->weights_transposed)
            MOKA_TRY(mm_run(mm, BWD_W, mm->dyb, mm->xb, NULL, dw, err));
        else
            MOKA_TRY(mm_run(mm, BWD_W, mm->xb, mm->dyb, NULL, dw, err));
    }
    return MOKA_OK;
}

moka_status moka_dnnl_op_create(const moka_dnnl_shape *s, moka_dnnl_op **out, moka_err *err)
{
    *out = NULL;
    pthread_once(&g_once, init_engine);
    if (g_init_status != dnnl_success) return dnnl_fail(err, g_init_status, "CPU engine");
    if (s->bf16 && !moka_dnnl_bf16_supported(NULL))
        return moka_errf(err, MOKA_ERR_UNSUPPORTED, "bf16 needs a CPU with AVX512_BF16 or AMX");
    moka_dnnl_op *op = calloc(1, sizeof *op);
    if (!op) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    op->s = *s;
    char why[200] = "";
    /* oneDNN's preferred (blocked) layouts first, or channels-last when asked; when one pass
     * then only has a GEMM-based implementation (e.g. bf16 weight gradients of a one-channel
     * input), the other; in bf16 at last GEMM-based passes too (they still compute in bf16;
     * shapes such as two channels per group have nothing else). */
    const bool ip = s->kind == MOKA_DNNL_IP;
    const bool first_nhwc = !ip && s->prefer_nhwc;
    moka_status rc = ip ? mm_build(op, why, sizeof why, err)
                        : build(op, first_nhwc, false, why, sizeof why, err);
    for (int attempt = 1; attempt <= 2 && rc == MOKA_ERR_UNSUPPORTED; attempt++) {
        if (ip || (attempt == 2 && !s->bf16)) break;
        op_release(op);
        rc = build(op, attempt == 1 ? !first_nhwc : first_nhwc, attempt == 2, why, sizeof why, err);
    }
    if (rc == MOKA_ERR_UNSUPPORTED)
        rc = moka_errf(err, MOKA_ERR_UNSUPPORTED, "oneDNN has no fast %s%s here (%s)",
                       s->kind == MOKA_DNNL_CONV ? "convolution" : "inner product",
                       s->bf16 ? " in bf16" : "", why);
    if (rc != MOKA_OK) {
        moka_dnnl_op_free(op);
        return rc;
    }
    *out = op;
    return MOKA_OK;
}

bool moka_dnnl_op_takes_x(const moka_dnnl_op *op, moka_layout layout)
{
    /* Backward-weights must be able to read the forward's copy. */
    return layout != MOKA_LAYOUT_PLAIN && op->f_x.held_layout == layout &&
           (!op->prim[BWD_W] || op->share_x);
}

bool moka_dnnl_op_reuses_x(const moka_dnnl_op *op, const float *x)
{
    return !op->prim[BWD_W] || (op->share_x && x == op->fx_last);
}

moka_layout moka_dnnl_op_dx_layout(const moka_dnnl_op *op) { return op->dx_layout; }

moka_status moka_dnnl_op_forward(moka_dnnl_op *op, const float *x, const moka_held *x_held,
                                 const float *w, const float *b, float *y, moka_held *hold,
                                 moka_err *err)
{
    if (op->mm) {
        if (hold) *hold = (moka_held){.layout = MOKA_LAYOUT_PLAIN, .ptr = NULL};
        if (x_held) return moka_errf(err, MOKA_ERR_INVALID_ARG, "forward cannot read x held");
        return mm_forward(op, x, w, b, y, err);
    }
    if (x_held && !moka_dnnl_op_takes_x(op, x_held->layout))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "forward cannot read x in this layout");
    const bool keep = hold && op->y_layout != MOKA_LAYOUT_PLAIN;
    if (hold) *hold = (moka_held){.layout = MOKA_LAYOUT_PLAIN, .ptr = NULL, .plain_stale = false};
    op->fx_last = NULL;
    if (x_held) {
        MOKA_TRY(edge_load_held(&op->f_x, x_held, false, &op->fx_mem, err));
    } else {
        MOKA_TRY(edge_load(&op->f_x, x, err));
        op->fx_mem = op->f_x.inner;
    }
    op->fx_last = x;
    MOKA_TRY(edge_load(&op->f_w, w, err));
    /* The forward writes y's inner buffer; for a direct edge that is y itself. */
    DNNL_TRY(dnnl_memory_set_data_handle(op->f_y.user, y), "set handle");
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, op->fx_mem},
                            {DNNL_ARG_WEIGHTS, op->f_w.inner},
                            {DNNL_ARG_DST, op->f_y.inner},
                            {DNNL_ARG_BIAS, NULL}};
    int n = 3;
    if (op->s.bias) {
        MOKA_TRY(edge_load(&op->f_b, b, err));
        a[n++].memory = op->f_b.inner;
    }
    MOKA_TRY(run(op->prim[FWD], n, a, err));
    if (!keep) return edge_store(&op->f_y, y, false, err);
    void *inner;
    DNNL_TRY(dnnl_memory_get_data_handle(op->f_y.inner, &inner), "get handle");
    *hold = (moka_held){.layout = op->y_layout, .ptr = inner, .plain_stale = true};
    return MOKA_OK;
}

bool moka_dnnl_op_takes_dy(const moka_dnnl_op *op, moka_layout layout)
{
    if (layout == MOKA_LAYOUT_PLAIN) return false;
    if (op->prim[BWD_D] && op->d_dy.held_layout != layout) return false;
    if (op->prim[BWD_W] && !op->share_dy && op->w_dy.held_layout != layout) return false;
    return op->prim[BWD_D] || op->prim[BWD_W];
}

/* Loads dy (plain, or held when h is not NULL) into a dy edge; *use receives the memory the
 * primitive reads. */
static moka_status load_dy(edge *e, const float *dy, const moka_held *h, bool staged,
                           dnnl_memory_t *use, moka_err *err)
{
    if (h) return edge_load_held(e, h, staged, use, err);
    MOKA_TRY(edge_load(e, dy, err));
    *use = e->inner;
    return MOKA_OK;
}

uint16_t *moka_dnnl_op_dy_stage(moka_dnnl_op *op, moka_layout layout)
{
    if (!moka_dnnl_op_takes_dy(op, layout)) return NULL;
    /* One bf16 buffer that every built pass reads dy from. */
    const edge *e = op->prim[BWD_D] ? &op->d_dy : &op->w_dy;
    if (!e->held_bf16 || (op->prim[BWD_D] && op->prim[BWD_W] && !op->share_dy)) return NULL;
    void *in = NULL;
    if (dnnl_memory_get_data_handle(e->inner, &in) != dnnl_success) return NULL;
    return in;
}

moka_status moka_dnnl_op_backward(moka_dnnl_op *op, const float *x, const float *w, const float *dy,
                                  const moka_held *dy_held, bool dy_staged, float *dx,
                                  bool dx_whole, moka_held *dx_hold, float *dw, moka_err *err)
{
    const bool keep_dx = dx_hold && op->dx_layout != MOKA_LAYOUT_PLAIN;
    if (dx_hold) *dx_hold = (moka_held){.layout = MOKA_LAYOUT_PLAIN, .ptr = NULL, .plain_stale = false};
    if (op->mm) {
        if (dy_held) return moka_errf(err, MOKA_ERR_INVALID_ARG, "backward cannot read dy held");
        return mm_backward(op, x, w, dy, dx, dx_whole, dw, err);
    }
    if (dy_held && !moka_dnnl_op_takes_dy(op, dy_held->layout))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "backward cannot read dy in this layout");
    if (dx && !op->prim[BWD_D])
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "backward to data was not built");
    dnnl_memory_t d_dy = NULL;
    if (dx) {
        MOKA_TRY(load_dy(&op->d_dy, dy, dy_held, dy_staged, &d_dy, err));
        MOKA_TRY(edge_load(&op->d_w, w, err));
        const dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, d_dy},
                                      {DNNL_ARG_WEIGHTS, op->d_w.inner},
                                      {DNNL_ARG_DIFF_SRC, op->d_dx.inner}};
        MOKA_TRY(run(op->prim[BWD_D], 3, a, err));
        if (keep_dx) {
            void *inner;
            DNNL_TRY(dnnl_memory_get_data_handle(op->d_dx.inner, &inner), "get handle");
            *dx_hold = (moka_held){.layout = op->dx_layout, .ptr = inner, .plain_stale = true};
        } else {
            MOKA_TRY(edge_store(&op->d_dx, dx, dx_whole, err));
        }
    }
    if (dw && !op->prim[BWD_W])
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "backward to weights was not built");
    if (dw) {
        /* x as the last forward converted it, when it is the same tensor (the layers' rule:
         * backward sees the bottoms forward saw); else converted here. */
        dnnl_memory_t w_x = op->fx_mem;
        if (!(op->share_x && x == op->fx_last)) {
            MOKA_TRY(edge_load(&op->w_x, x, err));
            w_x = op->w_x.inner;
        }
        /* With a shared layout, d_dy already holds dy when backward-data just ran. */
        dnnl_memory_t w_dy = d_dy;
        if (!(d_dy && op->share_dy))
            MOKA_TRY(load_dy(op->share_dy ? &op->d_dy : &op->w_dy, dy, dy_held, dy_staged, &w_dy,
                             err));
        const dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, w_x},
                                      {DNNL_ARG_DIFF_DST, w_dy},
                                      {DNNL_ARG_DIFF_WEIGHTS, op->w_dw.inner}};
        MOKA_TRY(run(op->prim[BWD_W], 3, a, err));
        MOKA_TRY(edge_store(&op->w_dw, dw, false, err));
    }
    return MOKA_OK;
}

const char *moka_dnnl_op_kernel(const moka_dnnl_op *op) { return op->kernel; }

moka_status moka_dnnl_slot_ensure(moka_dnnl_slot *slot, const moka_dnnl_shape *s, const char *layer,
                                  moka_err *err)
{
    if (slot->built && memcmp(s, &slot->shape, sizeof *s) == 0) return MOKA_OK;
    moka_dnnl_op_free(slot->op);
    slot->op = NULL;
    slot->shape = *s;
    slot->built = true;
    if (s->num == 0) return MOKA_OK;
    moka_err e2;
    const moka_status rc = moka_dnnl_op_create(s, &slot->op, &e2);
    if (rc == MOKA_ERR_UNSUPPORTED) {
        if (s->bf16)
            moka_logf(MOKA_LOG_INFO, "net", "layer '%s': %s; it computes in fp32", layer, e2.msg);
        return MOKA_OK;
    }
    if (rc != MOKA_OK && err) *err = e2;
    return rc;
}

void moka_dnnl_slot_free(moka_dnnl_slot *slot)
{
    moka_dnnl_op_free(slot->op);
    memset(slot, 0, sizeof *slot);
}
