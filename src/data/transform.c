/* src/data/transform.c -- Caffe's DataTransformer for uint8 samples (see transform.h):
 *   out[c, h, w'] = (in[c, h + h_off, w + w_off] - mean[c]) * scale
 */
#include "data/transform.h"

#include <stdlib.h>
#include <string.h>

moka_status moka_transform_init(moka_transform *t, const moka_pt_node *tp, moka_phase phase,
                                const char *layer, int64_t channels, int64_t height, int64_t width,
                                moka_err *err)
{
    memset(t, 0, sizeof *t);
    t->channels = channels;
    t->height = height;
    t->width = width;
    t->scale = (float)moka_pt_float(tp, "scale");
    t->mirror = moka_pt_bool(tp, "mirror");
    t->crop = moka_pt_int(tp, "crop_size");
    t->random_crop = phase == MOKA_TRAIN;

    if (moka_pt_has(tp, "mean_file"))
        return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(tp, "mean_file", 0),
                            "layer '%s': transform_param.mean_file is not supported yet (use "
                            "mean_value)",
                            layer);
    static const char *const forced[] = {"force_color", "force_gray"};
    for (int i = 0; i < 2; i++)
        if (moka_pt_bool(tp, forced[i]))
            return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(tp, forced[i], 0),
                                "layer '%s': transform_param.%s is not supported (it converts "
                                "encoded images; these samples are raw %lld-channel data)",
                                layer, forced[i], (long long)channels);
    if (t->crop > 0 && (t->crop > height || t->crop > width))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(tp, "crop_size", 0),
                            "layer '%s': crop_size %lld is larger than the %lld x %lld samples",
                            layer, (long long)t->crop, (long long)height, (long long)width);

    const int nmean = moka_pt_count(tp, "mean_value");
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

void moka_transform_deinit(moka_transform *t)
{
    if (!t) return;
    free(t->mean);
    t->mean = NULL;
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

void moka_transform_u8(const moka_transform *t, const uint8_t *in, float *out, moka_rng *rng)
{
    const int64_t H = t->height, W = t->width;
    int64_t C, oh, ow;
    moka_transform_out_dims(t, &C, &oh, &ow);
    /* Draw in Caffe's order: the mirror coin first, then the crop offsets. */
    const bool flip = t->mirror && moka_rng_below(rng, 2) == 1;
    int64_t h_off = 0, w_off = 0;
    if (t->crop > 0) {
        if (t->random_crop) {
            h_off = (int64_t)moka_rng_below(rng, (uint64_t)(H - t->crop + 1));
            w_off = (int64_t)moka_rng_below(rng, (uint64_t)(W - t->crop + 1));
        } else {
            h_off = (H - t->crop) / 2;
            w_off = (W - t->crop) / 2;
        }
    }
    const float scale = t->scale;
    for (int64_t c = 0; c < C; c++) {
        const float mean = t->mean ? t->mean[c] : 0.0f;
        for (int64_t h = 0; h < oh; h++) {
            const uint8_t *src = in + (c * H + h + h_off) * W + w_off;
            float *dst = out + (c * oh + h) * ow;
            if (flip)
                for (int64_t w = 0; w < ow; w++) dst[ow - 1 - w] = ((float)src[w] - mean) * scale;
            else
                for (int64_t w = 0; w < ow; w++) dst[w] = ((float)src[w] - mean) * scale;
        }
    }
}
