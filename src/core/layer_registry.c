/* src/core/layer_registry.c -- every layer type moka knows, one line each, sorted by type name.
 * Configs name layer types by Caffe's strings; they are looked up here. */
#include <stdio.h>
#include <string.h>

#include "core/layer.h"

#define LAYER(sym) extern const moka_layer_ops sym;
LAYER(moka_layer_absval)
LAYER(moka_layer_accuracy)
LAYER(moka_layer_argmax)
LAYER(moka_layer_batch_norm)
LAYER(moka_layer_bias)
LAYER(moka_layer_concat)
LAYER(moka_layer_convolution)
LAYER(moka_layer_data)
LAYER(moka_layer_deconvolution)
LAYER(moka_layer_dropout)
LAYER(moka_layer_dummy_data)
LAYER(moka_layer_elu)
LAYER(moka_layer_eltwise)
LAYER(moka_layer_euclidean_loss)
LAYER(moka_layer_exp)
LAYER(moka_layer_flatten)
LAYER(moka_layer_hdf5_data)
LAYER(moka_layer_hinge_loss)
LAYER(moka_layer_idx_data)
LAYER(moka_layer_image_data)
LAYER(moka_layer_inner_product)
LAYER(moka_layer_input)
LAYER(moka_layer_log)
LAYER(moka_layer_lrn)
LAYER(moka_layer_pooling)
LAYER(moka_layer_power)
LAYER(moka_layer_prelu)
LAYER(moka_layer_relu)
LAYER(moka_layer_reshape)
LAYER(moka_layer_scale)
LAYER(moka_layer_sigmoid)
LAYER(moka_layer_sigmoid_cross_entropy_loss)
LAYER(moka_layer_silence)
LAYER(moka_layer_slice)
LAYER(moka_layer_softmax)
LAYER(moka_layer_softmax_loss)
LAYER(moka_layer_split)
LAYER(moka_layer_tanh)
#undef LAYER

static const moka_layer_ops *const layer_types[] = {
    &moka_layer_absval,
    &moka_layer_accuracy,
    &moka_layer_argmax,
    &moka_layer_batch_norm,
    &moka_layer_bias,
    &moka_layer_concat,
    &moka_layer_convolution,
    &moka_layer_data,
    &moka_layer_deconvolution,
    &moka_layer_dropout,
    &moka_layer_dummy_data,
    &moka_layer_elu,
    &moka_layer_eltwise,
    &moka_layer_euclidean_loss,
    &moka_layer_exp,
    &moka_layer_flatten,
    &moka_layer_hdf5_data,
    &moka_layer_hinge_loss,
    &moka_layer_idx_data,
    &moka_layer_image_data,
    &moka_layer_inner_product,
    &moka_layer_input,
    &moka_layer_log,
    &moka_layer_lrn,
    &moka_layer_pooling,
    &moka_layer_power,
    &moka_layer_prelu,
    &moka_layer_relu,
    &moka_layer_reshape,
    &moka_layer_scale,
    &moka_layer_sigmoid,
    &moka_layer_sigmoid_cross_entropy_loss,
    &moka_layer_silence,
    &moka_layer_slice,
    &moka_layer_softmax,
    &moka_layer_softmax_loss,
    &moka_layer_split,
    &moka_layer_tanh,
};
#define NUM_TYPES (sizeof layer_types / sizeof layer_types[0])

const moka_layer_ops *moka_layer_find(const char *type)
{
    for (size_t i = 0; i < NUM_TYPES; i++)
        if (layer_types[i] && strcmp(layer_types[i]->type, type) == 0) return layer_types[i];
    return NULL;
}

/* Caffe layer types moka does not implement yet: naming them gives "not supported" rather than
 * "unknown", so a user can tell a typo from a missing feature. */
static const char *const caffe_only_types[] = {
    "BNLL",
    "BatchReindex",
    "Clip",
    "ContrastiveLoss",
    "Crop",
    "Embed",
    "Filter",
    "HDF5Output",
    "Im2col",
    "InfogainLoss",
    "LSTM",
    "MVN",
    "MemoryData",
    "MultinomialLogisticLoss",
    "Parameter",
    "Python",
    "RNN",
    "Recurrent",
    "Reduction",
    "SPP",
    "Swish",
    "Threshold",
    "Tile",
    "WindowData",
};

bool moka_layer_is_caffe_type(const char *type)
{
    for (size_t i = 0; i < sizeof caffe_only_types / sizeof caffe_only_types[0]; i++)
        if (strcmp(caffe_only_types[i], type) == 0) return true;
    return false;
}

const char *moka_layer_type_list(void)
{
    static char list[1024];
    if (!list[0]) {
        /* Sorted by Caffe type name (case-sensitive order as written in configs). */
        const moka_layer_ops *sorted[NUM_TYPES];
        size_t n = 0;
        for (size_t i = 0; i < NUM_TYPES; i++)
            if (layer_types[i]) sorted[n++] = layer_types[i];
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && strcmp(sorted[j - 1]->type, sorted[j]->type) > 0; j--) {
                const moka_layer_ops *t = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = t;
            }
        size_t len = 0;
        for (size_t i = 0; i < n && len < sizeof list - 64; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                                    sorted[i]->type);
    }
    return list;
}
