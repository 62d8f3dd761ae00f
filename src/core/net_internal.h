/* src/core/net_internal.h -- what the solver and the I/O code see of a net beyond the public API. */
#ifndef MOKA_NET_INTERNAL_H
#define MOKA_NET_INTERNAL_H

#include "core/layer.h"
#include "io/prototxt.h"
#include "moka/net.h"

/* One parameter blob owned by the net (shared ones appear once, at their owner). */
typedef struct moka_net_param {
    int layer, index;      /* owner layer and its weight index */
    int64_t offset, count; /* in floats, within the parameter block */
    float lr_mult, decay_mult;
    bool learnable; /* false for running statistics: no gradient, no update */
} moka_net_param;

/* Builds a net from an already validated NetParameter node (e.g. a solver's net_param). When
 * share_from is not NULL, weights of layers with the same name (and blob shapes) alias
 * share_from's memory instead of getting their own: Caffe's test nets sharing the train net's
 * weights. `file_for_paths` is unused today and may be NULL. The node's document must outlive
 * the net. */
MOKA_INTERNAL moka_status moka_net_create_from_node(const moka_pt_node *net_param,
                                                    const moka_net_state *state,
                                                    const moka_ctx *ctx,
                                                    const moka_net *share_from, moka_net **out,
                                                    moka_err *err);
MOKA_INTERNAL int moka_net_num_params(const moka_net *net);
MOKA_INTERNAL const moka_net_param *moka_net_params(const moka_net *net);
MOKA_INTERNAL moka_layer *moka_net_layer(const moka_net *net, int i);
/* Whether layer i runs backward (it leads to a loss and something below it needs a gradient). */
MOKA_INTERNAL bool moka_net_layer_needs_backward(const moka_net *net, int i);

/* Re-derives every layer's random stream from (ctx->seed, layer name, phase, step), so the
 * draws of forward pass number `step` (dropout masks, random fillers) do not depend on what ran
 * before: a resumed run repeats them exactly. */
MOKA_INTERNAL void moka_net_reseed(moka_net *net, uint64_t step);
/* Positions data layers as if all readers together had consumed the first `position` samples
 * of the global order (resume; see moka_layer_ops.seek). */
MOKA_INTERNAL moka_status moka_net_seek(moka_net *net, int64_t position, moka_err *err);
/* Called during moka_net_backward each time the parameter gradients from offset `lo` to the
 * end of the block have become final for this pass (lo only decreases; the last call has lo 0).
 * Data-parallel training starts reducing a bucket there while backward goes on. NULL: none. */
typedef void (*moka_net_grads_final_fn)(void *user, int64_t lo);
MOKA_INTERNAL void moka_net_set_grads_final_hook(moka_net *net, moka_net_grads_final_fn fn,
                                                 void *user);
#endif /* MOKA_NET_INTERNAL_H */
