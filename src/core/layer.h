/* src/core/layer.h -- the layer interface every file in src/layers/ implements.
 *
 * Life of a layer inside a net (src/core/net.c drives it):
 *   1. setup(l)    once. Bottom shapes are known. Read and check the config (l->param, the layer's
 *                  *_param message, and l->cfg, the whole LayerParameter), declare learnable and
 *                  state blobs with moka_layer_add_weight (their memory comes later, in the net's
 *                  parameter arena), start threads a data layer needs.
 *   2. reshape(l)  after setup and whenever bottom shapes change. Set every top's shape and
 *                  (re)allocate the layer's private buffers (col buffers, masks, argmax indices).
 *                  Weight shapes may not change here.
 *   3. forward_cpu(l)  writes every top from the bottoms and weights.
 *   4. backward_cpu(l) ADDS into gradients: for each bottom i with moka_layer_bottom_grad(l, i)
 *                  != NULL, and for each weight whose `grad` is not NULL. Activation gradients
 *                  start each backward pass at zero (the net zeroes them lazily, and a layer may
 *                  write one whole instead of adding: moka_layer_bottom_grad_whole); the solver
 *                  zeroes weight gradients once per iteration (so iter_size accumulation and
 *                  shared weights work by addition). NULL when the layer has no gradient (data,
 *                  accuracy).
 *   5. destroy(l)  frees what setup/reshape allocated (optional).
 *
 * In-place layers (Caffe's `bottom: "x" top: "x"`) are allowed only when ops->in_place_ok.
 * Then top[0]->data == bottom[0]->data but the gradients are separate buffers, so "add into
 * dx" stays correct. Forward must be safe when y overwrites x element by element, and backward
 * must not read bottom[0]->data expecting x (it holds y). l->in_place tells the layer, so one
 * that needs x (e.g. Scale) can keep a copy.
 *
 * Held copies: a layer with ops->reads_held may find bottoms (and top gradients) held in another
 * layer's memory layout, and may leave its outputs or its bottoms' gradients held in turn; see
 * src/core/layout.h. Every other layer sees plain tensors only.
 *
 * Loss: the net's objective is sum over tops of loss_weight[t] * sum(top[t]->data). Before
 * backward the net fills each top gradient that carries a loss weight with that weight, so a
 * loss layer's backward scales by top[0]->grad[0].
 */
#ifndef MOKA_LAYER_H
#define MOKA_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "io/prototxt.h"
#include "moka/ctx.h"
#include "moka/net.h"
#include "moka/status.h"
#include "moka/tensor.h"

#if defined(__GNUC__)
#define MOKA_INTERNAL __attribute__((visibility("hidden")))
#else
#define MOKA_INTERNAL
#endif


typedef struct moka_layer moka_layer;

typedef struct moka_layer_ops {
    const char *type;        /* Caffe's type string: "Convolution" */
    const char *param_field; /* the LayerParameter field it reads ("convolution_param") or NULL */
    /* Other *_param fields of LayerParameter it reads ("transform_param", "loss_param"),
     * NULL-terminated, or NULL. Any *_param field set in a layer that is neither this nor
     * param_field is an error ("layer 'relu1' (ReLU) does not read convolution_param"). */
    const char *const *extra_fields;
    size_t state_size; /* bytes of zeroed l->state */
    int min_bottom, max_bottom; /* max -1: unlimited */
    int min_top, max_top;
    bool in_place_ok;
    /* The layer reads held copies itself (src/core/layout.h): the net does not sync its bottoms
     * before forward nor its tops' gradients before backward, and in place leaves its top's
     * held data to it. */
    bool reads_held;
    /* Loss layers: top[0] gets loss_weight 1 unless the config says otherwise. */
    bool is_loss;
    moka_status (*setup)(moka_layer *l, moka_err *err);
    moka_status (*reshape)(moka_layer *l, moka_err *err);
    moka_status (*forward_cpu)(moka_layer *l, moka_err *err);
    moka_status (*backward_cpu)(moka_layer *l, moka_err *err); /* NULL: no gradient */
    void (*destroy)(moka_layer *l);                            /* optional */
    /* Data layers (optional): position the layer as if all readers together (ctx->world_size
     * of them, each taking its shard) had consumed the first `position` samples of the global
     * order, so a resumed run, at any world size, reads the samples an uninterrupted one would.
     * With one reader and batch B, position = passes * B. */
    moka_status (*seek)(moka_layer *l, int64_t position, moka_err *err);
    /* Optional, for `moka time`: floating-point operations of one forward (backward = false) or
     * backward pass at the current shapes (backward counts only the gradients the net asks
     * for), and the name of the kernel that runs ("im2col+sgemm (oneDNN jit)"). */
    double (*flops)(const moka_layer *l, bool backward);
    const char *(*kernel)(const moka_layer *l);
} moka_layer_ops;

/* How a weight starts. `filler` is a FillerParameter node (e.g. moka_pt_msg(l->param,
 * "weight_filler")); with filler NULL every element is `value`. Non-learnable blobs (BatchNorm's
 * running statistics) are saved in snapshots but get no gradient and no solver update. */
typedef struct moka_fill {
    const moka_pt_node *filler;
    float value;
    bool learnable;
} moka_fill;
#define MOKA_FILL_FROM(node) ((moka_fill){(node), 0.0f, true})
#define MOKA_FILL_CONST(v) ((moka_fill){NULL, (v), true})
#define MOKA_FILL_STATE(v) ((moka_fill){NULL, (v), false})

/* Per weight, from the layer's `param { name lr_mult decay_mult }` entries. */
typedef struct moka_weight_info {
    char *name;         /* blob name as declared by the layer ("weight", "bias") */
    char *share_name;   /* param { name } or NULL */
    float lr_mult, decay_mult;
    moka_fill fill;
    int ndim;
    int64_t shape[MOKA_MAX_NDIM];
    int owner_layer, owner_index; /* -1 if this layer owns it, else the layer/weight it shares */
} moka_weight_info;

struct moka_layer {
    char *name;
    const moka_layer_ops *ops;
    void *state;               /* ops->state_size zeroed bytes, private to the layer */
    const moka_pt_node *cfg;   /* the LayerParameter */
    const moka_pt_node *param; /* moka_pt_msg(cfg, ops->param_field), or NULL if none */
    const moka_ctx *ctx;
    moka_phase phase;
    int index; /* position in the net's execution order */

    int num_bottom, num_top, num_weight;
    moka_tensor **bottom, **top;
    moka_tensor **weight; /* valid from forward on; data/grad point into the param arenas */
    moka_weight_info *weight_info;
    bool *propagate_down; /* per bottom */
    float *loss_weight;   /* per top */
    bool in_place;
    moka_rng rng; /* this layer's own stream (dropout masks, data shuffles) */
};

/* Creates a layer from its LayerParameter node: looks up the type, allocates l->state and the
 * bottom/top pointer arrays (num_bottom/num_top from the config's bottom/top entries, all
 * NULL), sets l->param, the RNG stream (seeded from ctx->seed and the layer name) and phase.
 * Does not call setup. Free with moka_layer_free. MOKA_ERR_CONFIG for an unknown type (listing
 * the known ones) or a bottom/top count outside the type's range. */
MOKA_INTERNAL moka_status moka_layer_create(const moka_pt_node *cfg, const moka_ctx *ctx,
                                            moka_phase phase, int index, moka_layer **out,
                                            moka_err *err);
/* Calls ops->destroy, frees the weight tensor structs and everything moka_layer_create made.
 * Tensors reached through bottom/top and the memory behind weights are not freed. NULL ok. */
MOKA_INTERNAL void moka_layer_free(moka_layer *l);

/* Declares weight number l->num_weight (in call order: Caffe's blob order) with the given shape.
 * Only valid inside setup. ndim 0 declares a scalar (one value). MOKA_ERR_SHAPE for a zero or
 * negative dimension or more than MOKA_MAX_NDIM dims. */
MOKA_INTERNAL moka_status moka_layer_add_weight(moka_layer *l, const char *name, int ndim,
                                                const int64_t *shape, moka_fill fill,
                                                moka_err *err);

/* The gradient buffer to add bottom i's gradient into, or NULL when no one needs it
 * (propagate_down false, or the bottom is data/labels). Zeroed on this first use when the net
 * left its zeroing pending (src/core/layout.h). */
MOKA_INTERNAL float *moka_layer_bottom_grad(const moka_layer *l, int i);
/* Like moka_layer_bottom_grad, for a layer that can also write the whole gradient instead of
 * adding into it: *whole becomes true when the net left the buffer's zeroing pending (the caller
 * must then write every element, 0.0f + g where adding g into zero would turn -0 into +0 and
 * bit-identity matters), false when it must add (the buffer is current: zeroed, or holding
 * another writer's part). */
MOKA_INTERNAL float *moka_layer_bottom_grad_whole(const moka_layer *l, int i, bool *whole);
/* Whether bottom i gets a gradient, without touching the buffer (for layers that may write
 * the gradient held instead). */
MOKA_INTERNAL bool moka_layer_needs_bottom_grad(const moka_layer *l, int i);

/* Makes *buf hold at least n floats (a layer's own buffer, *cap floats so far; grown with
 * realloc, kept as it was on failure). MOKA_ERR_NOMEM "out of memory for <what>". */
MOKA_INTERNAL moka_status moka_layer_reserve(const moka_layer *l, float **buf, int64_t *cap,
                                             int64_t n, const char *what, moka_err *err);

/* "layer 'conv1' (Convolution): " + message, with file:line:col of the layer when known. */
MOKA_INTERNAL moka_status moka_layer_errf(const moka_layer *l, moka_err *err, moka_status code,
                                          const char *fmt, ...) MOKA_PRINTF(4, 5);

/* Lookup by Caffe type name; NULL if unknown. moka_layer_types lists all names, comma-separated,
 * sorted (for "unknown layer type 'Convolutin' (known: ...)"). */
MOKA_INTERNAL const moka_layer_ops *moka_layer_find(const char *type);
MOKA_INTERNAL const char *moka_layer_type_list(void);
/* True for a layer type Caffe has and moka does not implement (e.g. "Data"). */
MOKA_INTERNAL bool moka_layer_is_caffe_type(const char *type);

/* Every layer file defines one `const moka_layer_ops moka_layer_<name>` and registers it in
 * src/core/layer_registry.c. */

#endif /* MOKA_LAYER_H */
