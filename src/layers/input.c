/* src/layers/input.c -- Caffe's Input: tops whose data the caller sets (deploy nets).
 *   no bottoms
 *   top[i]  shape input_param.shape[i], or input_param.shape[0] for every top
 * Forward leaves the data as the caller wrote it; there is no gradient. The shapes are set once
 * in setup, so a caller may change a top's shape and reshape the net without the config
 * putting it back. Caffe also accepts no shape at all (the caller reshapes before the first
 * forward); moka needs every shape when the net is built, so it asks for one.
 * Reference: Caffe's src/caffe/layers/input_layer.cpp.
 */
#include "core/layer.h"

static moka_status input_setup(moka_layer *l, moka_err *err)
{
    const int ns = moka_pt_count(l->param, "shape");
    if (ns == 0)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "input_param has no shape; give input_param { shape { dim: ... } } "
                               "once for all tops or once per top");
    if (ns != 1 && ns != l->num_top)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->param, "shape", 0),
                            "layer '%s': %d input_param shapes for %d tops; give one shape for "
                            "all tops or one per top",
                            l->name, ns, l->num_top);
    for (int i = 0; i < l->num_top; i++) {
        const moka_pt_node *shape = moka_pt_msg_at(l->param, "shape", ns == 1 ? 0 : i);
        const int nd = moka_pt_count(shape, "dim");
        if (nd > MOKA_MAX_NDIM)
            return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, shape,
                                "layer '%s': input shape has %d dims; moka supports at most %d",
                                l->name, nd, MOKA_MAX_NDIM);
        int64_t dims[MOKA_MAX_NDIM];
        for (int d = 0; d < nd; d++) {
            dims[d] = moka_pt_int_at(shape, "dim", d);
            if (dims[d] < 0)
                return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(shape, "dim", d),
                                    "layer '%s': input dim %lld is negative", l->name,
                                    (long long)dims[d]);
        }
        MOKA_TRY(moka_tensor_set_shape(l->top[i], nd, dims, err));
    }
    return MOKA_OK;
}

/* Shapes belong to the caller after setup; see the file comment. */
static moka_status input_reshape(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

static moka_status input_forward_cpu(moka_layer *l MOKA_UNUSED, moka_err *err MOKA_UNUSED)
{
    return MOKA_OK;
}

const moka_layer_ops moka_layer_input = {
    .type = "Input",
    .param_field = "input_param",
    .min_bottom = 0,
    .max_bottom = 0,
    .min_top = 1,
    .max_top = -1,
    .setup = input_setup,
    .reshape = input_reshape,
    .forward_cpu = input_forward_cpu,
};
