/* src/layers/silence.c -- Caffe's Silence: consumes bottoms that nothing else uses.
 *   bottom[i]  x_i  any shapes (one or more)
 *   no tops
 * A net reports every top no layer consumes as an output; Silence marks such blobs as used on
 * purpose. Its gradient is zero: Caffe's backward zeroes the bottom diffs, and under moka's
 * convention (backward adds into gradients the net has zeroed) adding nothing is the same.
 * Reference: Caffe's src/caffe/layers/silence_layer.cpp.
 */
#include "core/layer.h"

static moka_status silence_setup(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status silence_reshape(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status silence_forward_cpu(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

/* Present (rather than NULL) because the gradient exists and is zero. */
static moka_status silence_backward_cpu(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

const moka_layer_ops moka_layer_silence = {
    .type = "Silence",
    .min_bottom = 1,
    .max_bottom = -1,
    .min_top = 0,
    .max_top = 0,
    .setup = silence_setup,
    .reshape = silence_reshape,
    .forward_cpu = silence_forward_cpu,
    .backward_cpu = silence_backward_cpu,
};
