/* src/layers/broadcast.h -- what Bias (bias.c) and Scale (scale.c) share: an operand p that
 * covers some consecutive axes of x and is broadcast over the others.
 *   x seen as (O, D, I): O = product of x's dims before `axis`, D = p's dims, I = the rest
 *   p          x's dims axis .. axis + p.ndim - 1
 * The layer's *_param (l->param) holds `axis` (may be negative, counted from the end) and, for a
 * learned p, `num_axes` (-1: every axis from `axis` on). A p with no axes is one scalar and
 * applies the same way from any axis; Caffe then uses axis 0. Reference: Caffe's
 * bias_layer.cpp and scale_layer.cpp.
 */
#ifndef MOKA_BROADCAST_H
#define MOKA_BROADCAST_H

#include <stdint.h>

#include "core/layer.h"

typedef struct moka_broadcast {
    int64_t outer, dim, inner; /* x seen as (O, D, I) */
    double *rows;              /* (O, D) per-row sums, so reductions run in a fixed order */
    int64_t rows_cap;
} moka_broadcast;

/* The shape of a learned p from the config's axis and num_axes, checked against bottom[0].
 * `what` names p in messages ("bias", "scale"; the param message is "<what>_param").
 * MOKA_ERR_SHAPE for an axis out of range or axes past the end of x, MOKA_ERR_CONFIG for
 * num_axes below -1. */
MOKA_INTERNAL moka_status moka_broadcast_learned_shape(moka_layer *l, const char *what,
                                                       int *ndim, int64_t shape[MOKA_MAX_NDIM],
                                                       moka_err *err);

/* Checks that p (ndim, shape) fits bottom[0] from the config's axis and sets b->outer, dim and
 * inner. MOKA_ERR_SHAPE, naming the mismatched axis, when it does not. */
MOKA_INTERNAL moka_status moka_broadcast_fit(moka_layer *l, const char *what, int ndim,
                                             const int64_t *shape, moka_broadcast *b,
                                             moka_err *err);

/* Grows b->rows to O D sums (never shrinks). MOKA_ERR_NOMEM on allocation failure. */
MOKA_INTERNAL moka_status moka_broadcast_reserve(moka_layer *l, moka_broadcast *b, moka_err *err);

/* g[d] += sum over o, i of dy[o, d, i] (times x[o, d, i] when x is not NULL), in double: first
 * along each row, then down each column in order of o, so the result does not depend on the
 * thread count. Needs moka_broadcast_reserve first. */
MOKA_INTERNAL void moka_broadcast_reduce_add(moka_broadcast *b, const float *dy, const float *x,
                                             float *g);

/* Frees b->rows; b may be reused after another moka_broadcast_reserve. */
MOKA_INTERNAL void moka_broadcast_deinit(moka_broadcast *b);

#endif /* MOKA_BROADCAST_H */
