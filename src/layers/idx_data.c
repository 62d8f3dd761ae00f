/* src/layers/idx_data.c -- IDXData, moka's own data layer (not in Caffe): batches from
 * MNIST-format IDX files, plain or gzip.
 *   no bottoms
 *   top[0]  data   (B, 1, H', W') for an images file of (N, H, W), (B, C, H', W') for (N, C, H, W)
 *   top[1]  label  (B), the label bytes as floats (optional top; needs idx_data_param.labels)
 *   data    = transform_param applied to the uint8 pixels (scale, mean_value, mirror, crop_size;
 *             see src/data/transform.h), B = idx_data_param.batch_size
 *
 * Both files are read into memory once at setup. Samples come in the order of a moka_cursor
 * (src/data/loader.h): file order, or with `shuffle: true` a fresh permutation every epoch;
 * reading wraps around at the end of the data, and rand_skip skips a random number of samples
 * in [0, rand_skip) at the start, as Caffe's data layers do. A prefetch thread assembles the next
 * batch while the net computes; forward copies the ready batch into the tops. No gradient.
 *
 * Data-parallel reading: with ctx world_size W > 1, rank r takes samples r, r + W, r + 2W, ... of
 * the order one process would read (same shuffles, same skip), so the W ranks' batches of B at
 * pass t together are the batch of W * B one process reads at pass t. seek(position) resumes at
 * sample `position` of that order, whatever W is.
 *
 * Config (moka's extension of caffe.proto, LayerParameter field 10001):
 *   idx_data_param { images: "train-images-idx3-ubyte.gz" labels: "..." batch_size: 64
 *                    shuffle: true rand_skip: 0 }
 * Relative paths are taken relative to the current directory, as Caffe does.
 */
#include <stdlib.h>

#include "core/layer.h"
#include "data/loader.h"
#include "data/transform.h"
#include "io/fetch.h"
#include "io/idx.h"
#include "moka/log.h"

/* Batches prefetched ahead of the net: two buffers, one filling while the other is consumed. */
#define IDX_PREFETCH_DEPTH 2

typedef struct {
    moka_idx images, labels;
    bool has_labels;
    int64_t batch;      /* B */
    int64_t in_sample;  /* bytes of one stored sample, C * H * W */
    int64_t out_sample; /* floats of one transformed sample, C * H' * W' */
    int64_t out_c, out_h, out_w;
    moka_transform tf;
    /* Owned by the prefetch thread once it runs: nothing else may touch them. */
    moka_cursor cursor;
    moka_rng tf_rng;
    moka_loader *loader;
    /* Whether the cursor shuffles, and the seed of the per-sample transform streams (crop and
     * mirror draws); the cursor itself keeps what seek needs to replay its order. */
    bool shuffle;
    uint64_t tf_seed;
} idx_data;

static void idx_data_destroy(moka_layer *l)
{
    idx_data *s = l->state;
    /* The thread reads everything below, so it goes first. */
    moka_loader_free(s->loader);
    s->loader = NULL;
    moka_cursor_deinit(&s->cursor);
    moka_transform_deinit(&s->tf);
    moka_idx_deinit(&s->labels);
    moka_idx_deinit(&s->images);
}

/* Runs on the prefetch thread: the next B samples, transformed, and their labels. */
static moka_status fill_batch(void *user, float *const *bufs, moka_err *err MOKA_UNUSED)
{
    idx_data *s = user;
    for (int64_t b = 0; b < s->batch; b++) {
        /* The transform's random draws depend only on the sample's position in the global
         * stream, so a run positioned by seek, or read by another number of ranks, draws
         * exactly what an uninterrupted single process would. */
        moka_rng_seed(&s->tf_rng, s->tf_seed, (uint64_t)moka_cursor_position(&s->cursor));
        const int64_t i = moka_cursor_next(&s->cursor);
        moka_transform_u8(&s->tf, s->images.data + i * s->in_sample, bufs[0] + b * s->out_sample,
                          &s->tf_rng);
        if (s->has_labels) bufs[1][b] = (float)s->labels.data[i];
    }
    return MOKA_OK;
}

/* Adds "file:line:col: layer 'name': " to a reader's message, pointing at `field`. */
static moka_status read_failed(const moka_layer *l, const char *field, moka_status st,
                               moka_err *err)
{
    moka_err_prefix(err, "layer '%s'", l->name);
    const moka_pt_node *at = moka_pt_node_at(l->param, field, 0);
    if (at && at->file && at->line > 0)
        moka_err_prefix(err, "%s:%d:%d", at->file, at->line, at->col);
    return st;
}

/* Starts the prefetch thread, which fills batches from the cursor's current position. */
static moka_status start_loader(moka_layer *l, moka_err *err)
{
    idx_data *s = l->state;
    const int64_t counts[2] = {s->batch * s->out_sample, s->batch};
    const moka_status st = moka_loader_create(s->has_labels ? 2 : 1, counts, IDX_PREFETCH_DEPTH,
                                              fill_batch, s, &s->loader, err);
    if (st != MOKA_OK) moka_err_prefix(err, "layer '%s'", l->name);
    return st;
}

static moka_status idx_data_setup(moka_layer *l, moka_err *err)
{
    idx_data *s = l->state;
    const moka_pt_node *p = l->param;
    const char *images = moka_pt_str(p, "images"), *labels = moka_pt_str(p, "labels");

    if (!images[0])
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "idx_data_param.images is required "
                               "(the path of an IDX images file)");
    s->batch = moka_pt_int(p, "batch_size");
    if (s->batch <= 0)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "idx_data_param.batch_size must be "
                               "positive, got %lld",
                               (long long)s->batch);
    s->has_labels = l->num_top == 2;
    if (s->has_labels && !labels[0])
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "has a label top but no "
                               "idx_data_param.labels file");
    if (!s->has_labels && labels[0])
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(p, "labels", 0),
                            "layer '%s': idx_data_param.labels is set but the layer has no "
                            "label top (add a second top)",
                            l->name);

    /* s3:// and qs:// sources are fetched into the cache first; plain paths pass through. */
    char images_local[4096], labels_local[4096];
    moka_status st = moka_fetch_source(l->ctx, images, images_local, sizeof images_local, err);
    if (st == MOKA_OK) st = moka_idx_read(images_local, &s->images, err);
    if (st != MOKA_OK) return read_failed(l, "images", st, err);
    const moka_idx *im = &s->images;
    char dims[160];
    moka_idx_dims_str(im, dims, sizeof dims);
    if (im->ndim != 3 && im->ndim != 4)
        return moka_pt_errf(err, MOKA_ERR_IO, moka_pt_node_at(p, "images", 0),
                            "layer '%s': images file '%s' must be 3-D (N, H, W) or 4-D "
                            "(N, C, H, W), got %d-D (%s)",
                            l->name, images, im->ndim, dims);
    if (im->count == 0)
        return moka_pt_errf(err, MOKA_ERR_IO, moka_pt_node_at(p, "images", 0),
                            "layer '%s': images file '%s' holds no data (%s)", l->name, images,
                            dims);
    const int64_t n = im->dims[0], c = im->ndim == 4 ? im->dims[1] : 1;
    const int64_t h = im->dims[im->ndim - 2], w = im->dims[im->ndim - 1];
    s->in_sample = c * h * w;

    if (s->has_labels) {
        st = moka_fetch_source(l->ctx, labels, labels_local, sizeof labels_local, err);
        if (st == MOKA_OK) st = moka_idx_read(labels_local, &s->labels, err);
        if (st != MOKA_OK) return read_failed(l, "labels", st, err);
        char ldims[160];
        moka_idx_dims_str(&s->labels, ldims, sizeof ldims);
        if (s->labels.ndim != 1)
            return moka_pt_errf(err, MOKA_ERR_IO, moka_pt_node_at(p, "labels", 0),
                                "layer '%s': labels file '%s' must be 1-D (N), got %d-D (%s)",
                                l->name, labels, s->labels.ndim, ldims);
        if (s->labels.dims[0] != n)
            return moka_pt_errf(err, MOKA_ERR_IO, moka_pt_node_at(p, "labels", 0),
                                "layer '%s': images file '%s' holds %lld images but labels file "
                                "'%s' holds %lld labels",
                                l->name, images, (long long)n, labels,
                                (long long)s->labels.dims[0]);
    }

    MOKA_TRY(moka_transform_init(&s->tf, moka_pt_msg(l->cfg, "transform_param"), l->phase, l->name,
                                 c, h, w, err));
    moka_transform_out_dims(&s->tf, &s->out_c, &s->out_h, &s->out_w);
    s->out_sample = s->out_c * s->out_h * s->out_w;

    /* The prefetch thread gets streams of its own: l->rng belongs to the calling thread. The
     * shuffle stream is a copy of the layer's, which does not depend on the rank, so every rank
     * draws the same permutations and the same skip and reads its own shard of one order. */
    int64_t start, stride;
    MOKA_TRY(moka_loader_shard(l->ctx, l->name, &start, &stride, err));
    s->shuffle = moka_pt_bool(p, "shuffle");
    MOKA_TRY(moka_cursor_init(&s->cursor, n, start, stride, s->shuffle, &l->rng, err));
    moka_cursor_random_skip(&s->cursor, moka_pt_int(p, "rand_skip"));
    s->tf_seed = moka_rng_u64(&l->rng);

    moka_logf(MOKA_LOG_INFO, "data", "layer '%s': %lld samples of %lld x %lld x %lld from '%s'%s",
              l->name, (long long)n, (long long)c, (long long)h, (long long)w, images,
              moka_pt_bool(p, "shuffle") ? ", shuffled each epoch" : "");

    return start_loader(l, err);
}

static moka_status idx_data_reshape(moka_layer *l, moka_err *err)
{
    const idx_data *s = l->state;
    MOKA_TRY(
        moka_tensor_set_shape(l->top[0], MOKA_SHAPE(s->batch, s->out_c, s->out_h, s->out_w), err));
    if (s->has_labels) MOKA_TRY(moka_tensor_set_shape(l->top[1], MOKA_SHAPE(s->batch), err));
    return MOKA_OK;
}

static moka_status idx_data_forward_cpu(moka_layer *l, moka_err *err)
{
    idx_data *s = l->state;
    float *const dst[2] = {l->top[0]->data, s->has_labels ? l->top[1]->data : NULL};
    return moka_loader_next(s->loader, dst, err);
}

/* Positions the stream as if all ranks together had read its first `position` samples (this
 * rank's next is position + rank): stops the prefetch thread, rebuilds the cursor from its
 * setup-time state at that position and restarts the thread. Used when training resumes from a
 * snapshot. */
static moka_status idx_data_seek(moka_layer *l, int64_t position, moka_err *err)
{
    idx_data *s = l->state;
    if (position < 0)
        return moka_layer_errf(l, err, MOKA_ERR_INVALID_ARG,
                               "cannot seek to sample %lld (want >= 0)", (long long)position);
    moka_loader_free(s->loader);
    s->loader = NULL;
    moka_cursor_seek(&s->cursor, position);
    return start_loader(l, err);
}

static const char *const idx_data_extra[] = {"transform_param", NULL};

const moka_layer_ops moka_layer_idx_data = {
    .type = "IDXData",
    .param_field = "idx_data_param",
    .extra_fields = idx_data_extra,
    .state_size = sizeof(idx_data),
    .min_bottom = 0,
    .max_bottom = 0,
    .min_top = 1,
    .max_top = 2,
    .setup = idx_data_setup,
    .reshape = idx_data_reshape,
    .forward_cpu = idx_data_forward_cpu,
    .destroy = idx_data_destroy,
    .seek = idx_data_seek,
};
