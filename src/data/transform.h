/* src/data/transform.h -- Caffe's TransformationParameter, applied to one sample as Caffe's
 * DataTransformer::Transform(Datum) does (src/caffe/data_transformer.cpp):
 *
 *   out[c, h, w'] = (in[c, h + h_off, w + w_off] - mean[c, h + h_off, w + w_off]) * scale
 *   w' = (W' - 1 - w) when mirrored, else w;  (H', W') = (crop, crop) or (H, W) without crop
 *
 *   in    (C, H, W)   one sample, uint8 (moka_transform_u8) or float (moka_transform_f32)
 *   mean  (C, H, W)   from mean_file (a BlobProto of shape (1, C, H, W)), read at the input's
 *                     size: the mean is subtracted before cropping, at the crop offset;
 *                     or mean_value: one value for all channels or one per channel;
 *                     or none
 *   out   (C, H', W') float
 *
 * Offsets: TRAIN draws h_off in [0, H - crop] and w_off in [0, W - crop]; TEST takes the centre
 * ((H - crop) / 2, (W - crop) / 2). Mirroring, like Caffe's, is a coin flip per sample in both
 * phases when `mirror: true`.
 *
 * force_color / force_gray choose how an encoded image is decoded (3 channels, or 1); they mean
 * nothing for raw samples. A layer that decodes images reads them with
 * moka_transform_forced_channels before decoding and then calls moka_transform_init_encoded,
 * which records them in the struct; moka_transform_init (raw samples) rejects them.
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
    float *mean;     /* mean_value: `channels` values, or NULL */
    float *mean_img; /* mean_file: channels * height * width values, or NULL */
    bool force_color, force_gray; /* only ever set by moka_transform_init_encoded */
} moka_transform;

/* Reads `tp` (a TransformationParameter node; an empty node gives the identity) for raw samples
 * of shape (channels, height, width). `layer` names the layer in messages. mean_file is read
 * here (a .binaryproto BlobProto, path relative to the current directory as in Caffe). Returns
 * MOKA_ERR_CONFIG (a mean_value count that is neither 1 nor `channels`, mean_file together with
 * mean_value, crop_size larger than the sample), MOKA_ERR_IO (mean_file missing, not a BlobProto,
 * or of another shape than (1, channels, height, width)), MOKA_ERR_UNSUPPORTED (force_color or
 * force_gray: raw samples have no colour to convert) or MOKA_ERR_NOMEM. The caller owns *t;
 * free it with moka_transform_deinit (also safe after a failed init). */
moka_status moka_transform_init(moka_transform *t, const moka_pt_node *tp, moka_phase phase,
                                const char *layer, int64_t channels, int64_t height, int64_t width,
                                moka_err *err);

/* The channel count that force_color (3) or force_gray (1) asks an image decoder for, or 0 to
 * keep the image's own. Both set is an error, as in Caffe (MOKA_ERR_CONFIG). */
moka_status moka_transform_forced_channels(const moka_pt_node *tp, const char *layer,
                                           int *channels, moka_err *err);

/* moka_transform_init for samples decoded from encoded images: force_color and force_gray are
 * accepted and recorded in t (the caller decoded with moka_transform_forced_channels, so
 * `channels` must agree with them: MOKA_ERR_INVALID_ARG otherwise). Other errors as init. */
moka_status moka_transform_init_encoded(moka_transform *t, const moka_pt_node *tp,
                                        moka_phase phase, const char *layer, int64_t channels,
                                        int64_t height, int64_t width, moka_err *err);
/* Frees what init allocated and zeroes the means. NULL does nothing. */
void moka_transform_deinit(moka_transform *t);

/* The output sample's shape (C, H', W'). */
void moka_transform_out_dims(const moka_transform *t, int64_t *c, int64_t *h, int64_t *w);
/* Whether moka_transform_u8 draws random numbers (mirror, or a TRAIN-phase crop). */
bool moka_transform_is_random(const moka_transform *t);

/* Transforms one sample from `in` (C*H*W bytes) into `out` (C*H'*W' floats). rng supplies the
 * mirror flip and crop offsets; it may be NULL when !moka_transform_is_random(t). Reentrant: t
 * is only read, so threads may share it when each has its own rng. */
void moka_transform_u8(const moka_transform *t, const uint8_t *in, float *out, moka_rng *rng);
/* The same for float samples (Datum float_data): `in` holds C*H*W floats; same draws. */
void moka_transform_f32(const moka_transform *t, const float *in, float *out, moka_rng *rng);

#endif /* MOKA_TRANSFORM_H */
