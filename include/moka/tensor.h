/* include/moka/tensor.h -- an n-d float32 array with an optional gradient of the same shape.
 *
 * Tensors in a net are views: `data` and `grad` point into the net's arenas and stay valid until
 * the next moka_net_reshape or moka_net_free. Layout is row-major (N, C, H, W) as in Caffe.
 */
#ifndef MOKA_TENSOR_H
#define MOKA_TENSOR_H

#include <stdint.h>

#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MOKA_MAX_NDIM 8

struct moka_held;

typedef struct moka_tensor {
    int ndim;
    int64_t shape[MOKA_MAX_NDIM];
    float *data; /* count() floats, or NULL before allocation */
    float *grad; /* same shape as data; NULL when no gradient is kept */
    /* Inside a net: where a layer keeps data / grad in a memory layout of its own between
     * layers (internal to moka; NULL elsewhere). Nets bring data and grad back to `data` and
     * `grad` before handing a tensor out (moka_net_blob, moka_net_output, moka_net_input). */
    struct moka_held *held_data, *held_grad;
} moka_tensor;

/* Expands to the two arguments (ndim, shape array) that shape-taking functions expect:
 * moka_tensor_set_shape(t, MOKA_SHAPE(64, 1, 28, 28), err). */
#define MOKA_SHAPE(...)                                                                            \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* Product of all dims (1 for a 0-d tensor). */
MOKA_API int64_t moka_tensor_count(const moka_tensor *t);
/* Product of dims [start, end); end is clamped to ndim. Negative start counts from the end. */
MOKA_API int64_t moka_tensor_count_range(const moka_tensor *t, int start, int end);
/* Caffe's CanonicalAxisIndex: maps axis in [-ndim, ndim) to [0, ndim); MOKA_ERR_SHAPE otherwise. */
MOKA_API moka_status moka_tensor_axis(const moka_tensor *t, int axis, int *out, moka_err *err);
/* Sets the shape (does not touch data/grad). MOKA_ERR_SHAPE for ndim > MOKA_MAX_NDIM or a
 * negative dim. */
MOKA_API moka_status moka_tensor_set_shape(moka_tensor *t, int ndim, const int64_t *shape,
                                           moka_err *err);
MOKA_API moka_status moka_tensor_set_shape_like(moka_tensor *t, const moka_tensor *like,
                                                moka_err *err);
/* Writes "64 1 28 28 (50176)" as Caffe's shape_string does; returns buf. */
MOKA_API char *moka_tensor_shape_str(const moka_tensor *t, char *buf, int nbytes);

#ifdef __cplusplus
}
#endif
#endif /* MOKA_TENSOR_H */
