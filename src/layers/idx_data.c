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
#include "io/fetch.h"
#include "io/idx.h"
#include "layers/sample_feed.h"
#include "moka/log.h"

typedef struct {
    moka_idx images, labels;
    int64_t in_sample; /* bytes of one stored sample, C * H * W */
    moka_feed feed;
} idx_data;

static void idx_data_destroy(moka_layer *l)
{
    idx_data *s = l->state;
    /* The thread reads everything below, so it goes first. */
    moka_feed_deinit(&s->feed);
    moka_idx_deinit(&s->labels);
    moka_idx_deinit(&s->images);
}

/* Runs on the prefetch thread: sample i, transformed, and its label. */
static moka_status idx_sample(void *user, int64_t i, const moka_transform *tf, moka_rng *rng,
                              float *out, float *label, moka_err *err MOKA_UNUSED)
{
    const idx_data *s = user;
    moka_transform_u8(tf, s->images.data + i * s->in_sample, out, rng);
    if (label) *label = (float)s->labels.data[i];
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

static moka_status idx_data_setup(moka_layer *l, moka_err *err)
{
    idx_data *s = l->state;
    const moka_pt_node *p = l->param;
    const char *images = moka_pt_str(p, "images"), *labels = moka_pt_str(p, "labels");

    if (!images[0])
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "idx_data_param.images is required "
                               "(the path of an IDX images file)");
    const int64_t batch = moka_pt_int(p, "batch_size");
    if (batch <= 0)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "idx_data_param.batch_size must be "
                               "positive, got %lld",
                               (long long)batch);
    const bool has_labels = l->num_top == 2;
    if (has_labels && !labels[0])
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "has a label top but no "
                               "idx_data_param.labels file");
    if (!has_labels && labels[0])
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

    if (has_labels) {
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

    MOKA_TRY(moka_feed_init(&s->feed, l, n, batch, c, h, w, idx_sample, s, err));

    moka_logf(MOKA_LOG_INFO, "data", "layer '%s': %lld samples of %lld x %lld x %lld from '%s'%s",
              l->name, (long long)n, (long long)c, (long long)h, (long long)w, images,
              moka_pt_bool(p, "shuffle") ? ", shuffled each epoch" : "");

    return moka_feed_start(&s->feed, err);
}

static moka_status idx_data_reshape(moka_layer *l, moka_err *err)
{
    const idx_data *s = l->state;
    return moka_feed_reshape(&s->feed, l, err);
}

static moka_status idx_data_forward_cpu(moka_layer *l, moka_err *err)
{
    idx_data *s = l->state;
    return moka_feed_forward(&s->feed, l, err);
}

/* Positions the stream at sample `position` of the global order (sample_feed.h). */
static moka_status idx_data_seek(moka_layer *l, int64_t position, moka_err *err)
{
    idx_data *s = l->state;
    return moka_feed_seek(&s->feed, l, position, err);
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
