/* src/data/transform.h -- the part of Caffe's TransformationParameter that moka applies to
 * uint8 samples, as Caffe's DataTransformer::Transform(Datum) does:
 *
 *   out[c, h, w'] = (in[c, h + h_off, w + w_off] - mean[c]) * scale
 *   w' = (W' - 1 - w) when mirrored, else w;  (H', W') = (crop, crop) or (H, W) without crop
 *
 *   in   (C, H, W)   one sample, uint8
 *   out  (C, H', W') float
 *
 * Offsets: TRAIN draws h_off in [0, H - crop] and w_off in [0, W - crop]; TEST takes the centre
 * ((H - crop) / 2, (W - crop) / 2). Mirroring, like Caffe's, is a coin flip per sample in both
 * phases when `mirror: true`.
 *
 * Supported fields: scale, mean_value (one value for all channels or one per channel), mirror,
 * crop_size. mean_file, force_color and force_gray are rejected with MOKA_ERR_UNSUPPORTED.
 */
#ifndef MOKA_TRANSFORM_H
#define MOKA_TRANSFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/layer.h"
#include "core/rng.h"
#include "io/prototxt.h"
#include "moka/status.h"

typedef struct moka_transform {
    int64_t channels, height, width; /* input sample (C, H, W) */
    int64_t crop;                    /* crop_size; 0 = none */
    bool mirror;
    bool random_crop; /* TRAIN: random offsets; TEST: centre crop */
    float scale;
    float *mean; /* `channels` values, or NULL when no mean_value is given */
} moka_transform;

/* Reads `tp` (a TransformationParameter node; an empty node gives the identity) for samples of
 * shape (channels, height, width). `layer` names the layer in messages. Returns MOKA_ERR_CONFIG
 * (a mean_value count that is neither 1 nor `channels`, crop_size larger than the sample),
 * MOKA_ERR_UNSUPPORTED (mean_file, force_color, force_gray) or MOKA_ERR_NOMEM. The caller owns
 * *t; free it with moka_transform_deinit (also safe after a failed init). */
moka_status moka_transform_init(moka_transform *t, const moka_pt_node *tp, moka_phase phase,
                                const char *layer, int64_t channels, int64_t height, int64_t width,
                                moka_err *err);
void moka_transform_deinit(moka_transform *t);

/* The output sample's shape (C, H', W'). */
void moka_transform_out_dims(const moka_transform *t, int64_t *c, int64_t *h, int64_t *w);
/* Whether moka_transform_u8 draws random numbers (mirror, or a TRAIN-phase crop). */
bool moka_transform_is_random(const moka_transform *t);

/* Transforms one sample from `in` (C*H*W bytes) into `out` (C*H'*W' floats). rng supplies the
 * mirror flip and crop offsets; it may be NULL when !moka_transform_is_random(t). Reentrant: t
 * is only read, so threads may share it when each has its own rng. */
void moka_transform_u8(const moka_transform *t, const uint8_t *in, float *out, moka_rng *rng);

#endif /* MOKA_TRANSFORM_H */
