/* src/data/transform.c -- Caffe's DataTransformer (see transform.h):
 *   out[c, h, w'] = (in[c, h + h_off, w + w_off] - mean[c, h + h_off, w + w_off]) * scale
 */
#include "data/transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"

/* Reads the BlobProto at `path` into t->mean_img after checking that it holds one
 * (C, H, W) image of the samples' size. */
static moka_status read_mean_file(moka_transform *t, const moka_pt_node *tp, const char *layer,
                                  moka_err *err)
{
    const char *path = moka_pt_str(tp, "mean_file");
    const moka_pt_node *at = moka_pt_node_at(tp, "mean_file", 0);
    FILE *f = fopen(path, "rb");
    if (!f)
        return moka_pt_errf(err, MOKA_ERR_IO, at, "layer '%s': cannot open mean_file '%s'", layer,
                            path);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory reading '%s'",
                                 layer, path);
            }
            buf = grown;
        }
        const size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    const bool read_error = ferror(f) != 0;
    fclose(f);
    if (read_error) {
        free(buf);
        return moka_pt_errf(err, MOKA_ERR_IO, at, "layer '%s': error reading mean_file '%s'", layer,
                            path);
    }
    Caffe__BlobProto *b = len ? caffe__blob_proto__unpack(NULL, len, buf) : NULL;
    free(buf);
    if (!b)
        return moka_pt_errf(err, MOKA_ERR_IO, at,
                            "layer '%s': mean_file '%s' is not a Caffe BlobProto (%s)", layer,
                            path, len ? "protobuf decode failed" : "empty file");

    /* The blob's shape: `shape` when present, else the legacy num/channels/height/width, padded
     * on the left with 1s to 4 axes as Caffe's legacy accessors see it. */
    int64_t dims[4] = {1, 1, 1, 1};
    moka_status st = MOKA_OK;
    if (b->shape) {
        if (b->shape->n_dim > 4) {
            st = moka_pt_errf(err, MOKA_ERR_IO, at,
                              "layer '%s': mean_file '%s' has %zu axes; want (1, C, H, W)", layer,
                              path, b->shape->n_dim);
            goto done;
        }
        for (size_t i = 0; i < b->shape->n_dim; i++)
            dims[4 - b->shape->n_dim + i] = b->shape->dim[i];
    } else {
        dims[0] = b->num;
        dims[1] = b->channels;
        dims[2] = b->height;
        dims[3] = b->width;
    }
    const int64_t want = t->channels * t->height * t->width;
    if (dims[0] != 1 || dims[1] != t->channels || dims[2] != t->height || dims[3] != t->width) {
        st = moka_pt_errf(err, MOKA_ERR_IO, at,
                          "layer '%s': mean_file '%s' has shape %lld %lld %lld %lld but the "
                          "samples are 1 %lld %lld %lld (N C H W, before cropping: the mean is "
                          "subtracted at the crop offset)",
                          layer, path, (long long)dims[0], (long long)dims[1], (long long)dims[2],
                          (long long)dims[3], (long long)t->channels, (long long)t->height,
                          (long long)t->width);
        goto done;
    }
    const size_t nvals = b->n_data ? b->n_data : b->n_double_data;
    if ((int64_t)nvals != want) {
        st = moka_pt_errf(err, MOKA_ERR_IO, at,
                          "layer '%s': mean_file '%s' has shape 1 %lld %lld %lld (%lld) but "
                          "holds %zu values",
                          layer, path, (long long)t->channels, (long long)t->height,
                          (long long)t->width, (long long)want, nvals);
        goto done;
    }
    t->mean_img = malloc((size_t)want * sizeof *t->mean_img);
    if (!t->mean_img) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory", layer);
        goto done;
    }
    for (int64_t i = 0; i < want; i++)
        t->mean_img[i] = b->n_data ? b->data[i] : (float)b->double_data[i];
done:
    caffe__blob_proto__free_unpacked(b, NULL);
    return st;
}

static moka_status init(moka_transform *t, const moka_pt_node *tp, moka_phase phase,
                        const char *layer, int64_t channels, int64_t height, int64_t width,
                        bool encoded, moka_err *err)
{
    memset(t, 0, sizeof *t);
    t->channels = channels;
    t->height = height;
    t->width = width;
    t->scale = (float)moka_pt_float(tp, "scale");
    t->mirror = moka_pt_bool(tp, "mirror");
    t->crop = moka_pt_int(tp, "crop_size");
    t->random_crop = phase == MOKA_TRAIN;

    int forced = 0;
    MOKA_TRY(moka_transform_forced_channels(tp, layer, &forced, err));
    if (forced && !encoded) {
        const char *which = forced == 3 ? "force_color" : "force_gray";
        return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(tp, which, 0),
                            "layer '%s': transform_param.%s is not supported (it converts "
                            "encoded images; these samples are raw %lld-channel data)",
                            layer, which, (long long)channels);
    }
    if (forced && forced != channels)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "layer '%s': transform_param asks for %d-channel images but the decoded "
                         "samples have %lld channels",
                         layer, forced, (long long)channels);
    t->force_color = forced == 3;
    t->force_gray = forced == 1;

    if (t->crop > 0 && (t->crop > height || t->crop > width))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(tp, "crop_size", 0),
                            "layer '%s': crop_size %lld is larger than the %lld x %lld samples",
                            layer, (long long)t->crop, (long long)height, (long long)width);

    const int nmean = moka_pt_count(tp, "mean_value");
    if (moka_pt_has(tp, "mean_file")) {
        if (nmean > 0)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(tp, "mean_value", 0),
                                "layer '%s': transform_param cannot have both mean_file and "
                                "mean_value",
                                layer);
        return read_mean_file(t, tp, layer, err);
    }
    if (nmean > 0) {
        /* Caffe: one value is used for every channel, otherwise one value per channel. */
        if (nmean != 1 && nmean != channels)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(tp, "mean_value", 0),
                                "layer '%s': transform_param has %d mean_value entries; want 1 or "
                                "one per channel (%lld)",
                                layer, nmean, (long long)channels);
        t->mean = malloc((size_t)channels * sizeof *t->mean);
        if (!t->mean) return moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory", layer);
        for (int64_t c = 0; c < channels; c++)
            t->mean[c] = (float)moka_pt_float_at(tp, "mean_value", nmean == 1 ? 0 : (int)c);
    }
    return MOKA_OK;
}

moka_status moka_transform_init(moka_transform *t, const moka_pt_node *tp, moka_phase phase,
                                const char *layer, int64_t channels, int64_t height, int64_t width,
                                moka_err *err)
{
    return init(t, tp, phase, layer, channels, height, width, false, err);
}

moka_status moka_transform_init_encoded(moka_transform *t, const moka_pt_node *tp,
                                        moka_phase phase, const char *layer, int64_t channels,
                                        int64_t height, int64_t width, moka_err *err)
{
    return init(t, tp, phase, layer, channels, height, width, true, err);
}

moka_status moka_transform_forced_channels(const moka_pt_node *tp, const char *layer,
                                           int *channels, moka_err *err)
{
    const bool color = moka_pt_bool(tp, "force_color"), gray = moka_pt_bool(tp, "force_gray");
    *channels = color ? 3 : gray ? 1 : 0;
    if (color && gray)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(tp, "force_gray", 0),
                            "layer '%s': transform_param cannot have both force_color and "
                            "force_gray",
                            layer);
    return MOKA_OK;
}

void moka_transform_deinit(moka_transform *t)
{
    if (!t) return;
    free(t->mean);
    t->mean = NULL;
    free(t->mean_img);
    t->mean_img = NULL;
}

void moka_transform_out_dims(const moka_transform *t, int64_t *c, int64_t *h, int64_t *w)
{
    *c = t->channels;
    *h = t->crop > 0 ? t->crop : t->height;
    *w = t->crop > 0 ? t->crop : t->width;
}

bool moka_transform_is_random(const moka_transform *t)
{
    return t->mirror || (t->crop > 0 && t->random_crop);
}

/* The per-sample draws, in Caffe's order: the mirror coin first, then the crop offsets. */
static void draw(const moka_transform *t, moka_rng *rng, bool *flip, int64_t *h_off,
                 int64_t *w_off)
{
    *flip = t->mirror && moka_rng_below(rng, 2) == 1;
    *h_off = *w_off = 0;
    if (t->crop > 0) {
        if (t->random_crop) {
            *h_off = (int64_t)moka_rng_below(rng, (uint64_t)(t->height - t->crop + 1));
            *w_off = (int64_t)moka_rng_below(rng, (uint64_t)(t->width - t->crop + 1));
        } else {
            *h_off = (t->height - t->crop) / 2;
            *w_off = (t->width - t->crop) / 2;
        }
    }
}

/* One body for both input types: SRC_T is the element type of `in`. */
#define TRANSFORM_BODY(SRC_T)                                                                     \
    do {                                                                                          \
        const int64_t H = t->height, W = t->width;                                                \
        int64_t C, oh, ow, h_off, w_off;                                                          \
        bool flip;                                                                                \
        moka_transform_out_dims(t, &C, &oh, &ow);                                                 \
        draw(t, rng, &flip, &h_off, &w_off);                                                      \
        const float scale = t->scale;                                                             \
        for (int64_t c = 0; c < C; c++) {                                                         \
            const float mean_c = t->mean ? t->mean[c] : 0.0f;                                     \
            for (int64_t h = 0; h < oh; h++) {                                                    \
                const int64_t at = (c * H + h + h_off) * W + w_off;                               \
                const SRC_T *src = in + at;                                                       \
                const float *mimg = t->mean_img ? t->mean_img + at : NULL;                        \
                float *dst = out + (c * oh + h) * ow;                                             \
                for (int64_t w = 0; w < ow; w++) {                                                \
                    const float m = mimg ? mimg[w] : mean_c;                                      \
                    dst[flip ? ow - 1 - w : w] = ((float)src[w] - m) * scale;                     \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    } while (0)

void moka_transform_u8(const moka_transform *t, const uint8_t *in, float *out, moka_rng *rng)
{
    TRANSFORM_BODY(uint8_t);
}

void moka_transform_f32(const moka_transform *t, const float *in, float *out, moka_rng *rng)
{
    TRANSFORM_BODY(float);
}
