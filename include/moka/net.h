/* include/moka/net.h -- a network built from a Caffe NetParameter (prototxt), run forward and
 * backward on the CPU.
 *
 * Construction follows Caffe's Net::Init: layers are filtered by the NetState (phase, level,
 * stages) against their include/exclude rules, a Split layer is inserted where one blob feeds
 * several layers, in-place layers (top == bottom) share the blob, `param { name }` shares weights,
 * and the layers that need a backward pass are found from the loss (loss_weight) and
 * propagate_down/force_backward. Parameters live in one contiguous block and their gradients in
 * another with the same layout.
 *
 * A moka_net is not thread-safe; use one per thread.
 */
#ifndef MOKA_NET_H
#define MOKA_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "moka/ctx.h"
#include "moka/status.h"
#include "moka/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Caffe's Phase. */
typedef enum moka_phase { MOKA_TRAIN = 0, MOKA_TEST = 1 } moka_phase;

/* Caffe's NetState: which layers a net file yields. */
typedef struct moka_net_state {
    moka_phase phase;
    int level;
    int num_stages;
    const char *const *stages;
} moka_net_state;

typedef struct moka_net moka_net;

/* Reads a NetParameter prototxt and builds the net for `state` (NULL: TRAIN, level 0, no
 * stages; the file's own `state { }` is merged as Caffe does). Weights start from their
 * fillers, seeded from ctx->seed. `ctx` must outlive the net. Free with moka_net_free.
 * Returns MOKA_ERR_IO, MOKA_ERR_CONFIG, MOKA_ERR_UNSUPPORTED, MOKA_ERR_SHAPE or MOKA_ERR_NOMEM. */
MOKA_API moka_status moka_net_create_from_file(const char *path, const moka_net_state *state,
                                               const moka_ctx *ctx, moka_net **out,
                                               moka_err *err);
/* Same from prototxt text; `name` is used in messages in place of a file name. */
MOKA_API moka_status moka_net_create_from_text(const char *text, const char *name,
                                               const moka_net_state *state, const moka_ctx *ctx,
                                               moka_net **out, moka_err *err);
MOKA_API void moka_net_free(moka_net *net);

/* Runs every layer forward; *loss (may be NULL) receives sum of loss_weight * top over the
 * loss tops. */
MOKA_API moka_status moka_net_forward(moka_net *net, float *loss, moka_err *err);
/* Zeroes the activation gradients, seeds the loss tops with their loss weights and runs the
 * layers that need it backward, ADDING into the parameter gradients (see
 * moka_net_zero_param_grads). */
MOKA_API moka_status moka_net_backward(moka_net *net, moka_err *err);
MOKA_API void moka_net_zero_param_grads(moka_net *net);

MOKA_API const char *moka_net_name(const moka_net *net);
/* Samples per forward pass: the batch dimension of the first layer's first top (0 if none). */
MOKA_API int64_t moka_net_batch_size(const moka_net *net);
MOKA_API int moka_net_num_layers(const moka_net *net);
MOKA_API const char *moka_net_layer_name(const moka_net *net, int i);
MOKA_API const char *moka_net_layer_type(const moka_net *net, int i);
/* The latest blob with this name (after in-place layers), or NULL. Valid until moka_net_free;
 * its data and grad are current as of this call (layers may keep activations in a layout of
 * their own between passes, and the net converts them back here), so call it again after the
 * next forward or backward. The caller may write the data before the next forward. The same
 * holds for moka_net_output and moka_net_input. */
MOKA_API moka_tensor *moka_net_blob(moka_net *net, const char *name);

/* Outputs: blobs no layer consumes, in Caffe's order; loss weight 0 for non-loss outputs. */
MOKA_API int moka_net_num_outputs(const moka_net *net);
MOKA_API const char *moka_net_output_name(const moka_net *net, int i);
MOKA_API moka_tensor *moka_net_output(moka_net *net, int i);
MOKA_API float moka_net_output_loss_weight(const moka_net *net, int i);

/* Inputs: blobs of Input layers and legacy `input:` fields, for callers to fill. */
MOKA_API int moka_net_num_inputs(const moka_net *net);
MOKA_API moka_tensor *moka_net_input(moka_net *net, int i);

/* The parameter block: total floats and the data/gradient base pointers (one contiguous block
 * each, same layout). Valid until moka_net_free. */
MOKA_API int64_t moka_net_param_count(const moka_net *net);
MOKA_API float *moka_net_param_data(moka_net *net);
MOKA_API float *moka_net_param_grad(moka_net *net);

/* Caffe .caffemodel I/O: copy weights from a file by layer name (Caffe's CopyTrainedLayersFrom;
 * layers absent from the file keep their values), or write all layers' blobs. */
MOKA_API moka_status moka_net_load_weights(moka_net *net, const char *path, moka_err *err);
MOKA_API moka_status moka_net_save_weights(const moka_net *net, const char *path, moka_err *err);

/* Validates a NetParameter file without building it: the schema, every layer's type, its
 * bottom/top counts and *_param fields. MOKA_OK or the first problem found. */
MOKA_API moka_status moka_net_check_file(const char *path, moka_err *err);

/* Per-layer timings of the last forward/backward passes in milliseconds (for `moka time`);
 * timing is collected only after moka_net_set_timing(net, true). */
MOKA_API void moka_net_set_timing(moka_net *net, bool on);
MOKA_API double moka_net_layer_forward_ms(const moka_net *net, int i);
MOKA_API double moka_net_layer_backward_ms(const moka_net *net, int i);
/* Floating-point operations of layer i's forward or backward pass at the current shapes (0 when
 * the layer does not count them), and the kernel it runs ("reference" unless the layer says). */
MOKA_API double moka_net_layer_flops(const moka_net *net, int i, bool backward);
MOKA_API const char *moka_net_layer_kernel(const moka_net *net, int i);

#ifdef __cplusplus
}
#endif
#endif /* MOKA_NET_H */
