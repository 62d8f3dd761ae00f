/* src/core/filler.h -- Caffe's weight fillers (FillerParameter).
 *
 *   constant          every element = value
 *   uniform           U(min, max)
 *   gaussian          N(mean, std); with sparse = s > 0 each element is kept with probability
 *                     s / num_outputs (num_outputs = shape[0]) and zeroed otherwise
 *   positive_unitball U(0, 1) then each row (shape[0] rows) divided by its sum
 *   xavier            U(-a, a), a = sqrt(3 / n)
 *   msra              N(0, sqrt(2 / n))
 *       n = fan_in (count / shape[0]), fan_out (count / shape[1]) or their mean, by variance_norm
 *   bilinear          the bilinear upsampling kernel of Deconvolution (4-D, square kernel)
 */
#ifndef MOKA_FILLER_H
#define MOKA_FILLER_H

#include "core/rng.h"
#include "io/prototxt.h"
#include "moka/tensor.h"

/* Fills t->data (t->shape) per the FillerParameter node `filler`. MOKA_ERR_CONFIG (with the
 * filler's file:line:col) for an unknown type or bad values, e.g. bilinear on a 2-D blob. */
moka_status moka_filler_fill(const moka_pt_node *filler, moka_tensor *t, moka_rng *rng,
                             moka_err *err);

#endif /* MOKA_FILLER_H */
