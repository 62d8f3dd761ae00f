/* src/layers/image_data.c -- ImageData, Caffe's data layer over a list of image files.
 *   no bottoms
 *   top[0]  data   (B, C, H', W'): transform_param applied to each decoded image (C, H, W)
 *   top[1]  label  (B), the integer labels of the list as floats (optional top)
 *   B = image_data_param.batch_size; C = 3 (BGR, as Caffe reads through OpenCV) or 1 when
 *   is_color is false; (H, W) = (new_height, new_width) when both are set (bilinear resize,
 *   OpenCV's INTER_LINEAR), else the size of the images themselves, which must then all agree.
 *
 * The list file (`source`) holds "path label" lines (src/io/image.h); each image is read from
 * root_folder + path, concatenated as Caffe does (so root_folder usually ends in '/'), relative
 * to the current directory. Setup reads the list, checks that every image file can be opened and
 * decodes the first one for the shape. A prefetch thread decodes the next batch while the net
 * computes. Samples come in list order, or with `shuffle: true` in a fresh permutation every
 * epoch (a moka_cursor, src/data/loader.h); rand_skip skips a random number of entries in
 * [0, rand_skip) at the start, as in Caffe. With ctx world_size W > 1, rank r takes entries
 * r, r + W, ... of the order one process would read (same shuffles, same skip), so the ranks'
 * batches of B at pass t together are one process's batch of W * B at pass t; seek(position)
 * resumes at entry `position` of that order, whatever W is.
 *
 * Errors name the list file and line: a malformed line, a missing file (at setup), a corrupt or
 * truncated image or one of another size (when the batch holding it is read; the error stops
 * training with that message). Caffe's deprecated image_data_param fields scale, mean_file,
 * crop_size and mirror (which its ImageData layer ignores) are rejected, pointing to
 * transform_param. No gradient.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/layer.h"
#include "data/loader.h"
#include "data/transform.h"
#include "io/fetch.h"
#include "io/image.h"
#include "moka/log.h"

/* Batches prefetched ahead of the net: two buffers, one filling while the other is consumed. */
#define IMAGE_PREFETCH_DEPTH 2

typedef struct {
    const char *name; /* the layer's, for messages from the prefetch thread */
    char *source;     /* the list file */
    char *root;       /* root_folder */
    moka_image_list list;
    int want_channels; /* 3 colour, 1 gray */
    int new_h, new_w;  /* 0, 0: no resize */
    int64_t c, h, w;   /* one image as it enters the transform */
    bool has_labels;
    int64_t batch;      /* B */
    int64_t out_sample; /* floats of one transformed sample, C * H' * W' */
    int64_t out_c, out_h, out_w;
    moka_transform tf;
    /* Owned by the prefetch thread once it runs: nothing else may touch them. */
    moka_cursor cursor;
    moka_rng tf_rng;
    moka_loader *loader;
    /* Whether the cursor shuffles; the cursor itself keeps what seek needs to replay its order. */
    bool shuffle;
    uint64_t tf_seed;
} image_data;

static void image_data_destroy(moka_layer *l)
{
    image_data *s = l->state;
    /* The thread reads everything below, so it goes first. */
    moka_loader_free(s->loader);
    s->loader = NULL;
    moka_cursor_deinit(&s->cursor);
    moka_transform_deinit(&s->tf);
    moka_image_list_deinit(&s->list);
    free(s->source);
    free(s->root);
    s->source = s->root = NULL;
}

/* root_folder + path into buf; false when it does not fit. */
static bool image_path(const image_data *s, const moka_image_entry *e, char *buf, size_t n)
{
    return (size_t)snprintf(buf, n, "%s%s", s->root, e->path) < n;
}

/* Decodes list entry i into (c, h, w) uint8 CHW pixels, resized when asked. On failure the
 * message names the layer, list file and line. *pixels is malloc'ed. */
static moka_status load_image(const image_data *s, int64_t i, uint8_t **pixels, int *c, int *h,
                              int *w, moka_err *err)
{
    const moka_image_entry *e = &s->list.entries[i];
    char path[4096];
    *pixels = NULL;
    if (!image_path(s, e, path, sizeof path))
        return moka_errf(err, MOKA_ERR_IO, "layer '%s': %s:%d: image path too long", s->name,
                         s->source, e->line);
    moka_status st = moka_image_read(path, s->want_channels, pixels, c, h, w, err);
    if (st == MOKA_OK && s->new_h > 0 && (*h != s->new_h || *w != s->new_w)) {
        uint8_t *resized = NULL;
        st = moka_image_resize(*pixels, *c, *h, *w, s->new_h, s->new_w, &resized, err);
        free(*pixels);
        *pixels = resized;
        *h = s->new_h;
        *w = s->new_w;
    }
    if (st != MOKA_OK) {
        free(*pixels);
        *pixels = NULL;
        moka_err_prefix(err, "layer '%s': %s:%d", s->name, s->source, e->line);
    }
    return st;
}

/* Runs on the prefetch thread: the next B samples, decoded and transformed, and their labels. */
static moka_status fill_batch(void *user, float *const *bufs, moka_err *err)
{
    image_data *s = user;
    for (int64_t b = 0; b < s->batch; b++) {
        /* The transform's random draws depend only on the sample's position in the global
         * stream, so a run positioned by seek, or read by another number of ranks, draws
         * exactly what an uninterrupted single process would. */
        moka_rng_seed(&s->tf_rng, s->tf_seed, (uint64_t)moka_cursor_position(&s->cursor));
        const int64_t i = moka_cursor_next(&s->cursor);
        uint8_t *pix;
        int c, h, w;
        MOKA_TRY(load_image(s, i, &pix, &c, &h, &w, err));
        if (h != s->h || w != s->w) {
            free(pix);
            return moka_errf(err, MOKA_ERR_IO,
                             "layer '%s': %s:%d: image '%s%s' is %d x %d but the first image of "
                             "the list is %lld x %lld (set image_data_param new_height and "
                             "new_width to resize them all)",
                             s->name, s->source, s->list.entries[i].line, s->root,
                             s->list.entries[i].path, h, w, (long long)s->h, (long long)s->w);
        }
        moka_transform_u8(&s->tf, pix, bufs[0] + b * s->out_sample, &s->tf_rng);
        free(pix);
        if (s->has_labels) bufs[1][b] = (float)s->list.entries[i].label;
    }
    return MOKA_OK;
}

/* Starts the prefetch thread, which fills batches from the cursor's current position. */
static moka_status start_loader(moka_layer *l, moka_err *err)
{
    image_data *s = l->state;
    const int64_t counts[2] = {s->batch * s->out_sample, s->batch};
    const moka_status st = moka_loader_create(s->has_labels ? 2 : 1, counts, IMAGE_PREFETCH_DEPTH,
                                              fill_batch, s, &s->loader, err);
    if (st != MOKA_OK) moka_err_prefix(err, "layer '%s'", l->name);
    return st;
}

static moka_status image_data_setup(moka_layer *l, moka_err *err)
{
    image_data *s = l->state;
    const moka_pt_node *p = l->param;
    s->name = l->name;
    static const char *const deprecated[] = {"scale", "mean_file", "crop_size", "mirror"};
    for (size_t k = 0; k < sizeof deprecated / sizeof deprecated[0]; k++)
        if (moka_pt_has(p, deprecated[k]))
            return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(p, deprecated[k], 0),
                                "layer '%s': image_data_param.%s is deprecated (Caffe's ImageData "
                                "ignores it); set transform_param { %s: ... } instead",
                                l->name, deprecated[k], deprecated[k]);
    const char *source = moka_pt_str(p, "source");
    if (!source[0])
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "image_data_param.source is required (a list file of "
                               "'path label' lines)");
    s->batch = moka_pt_int(p, "batch_size");
    if (s->batch <= 0)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "image_data_param.batch_size must be positive, got %lld",
                               (long long)s->batch);
    const int64_t nh = moka_pt_int(p, "new_height"), nw = moka_pt_int(p, "new_width");
    if ((nh > 0) != (nw > 0) || nh > MOKA_IMAGE_MAX_SIDE || nw > MOKA_IMAGE_MAX_SIDE)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "image_data_param new_height and new_width must be set together "
                               "(each 1..%d) or not at all, got %lld and %lld",
                               MOKA_IMAGE_MAX_SIDE, (long long)nh, (long long)nw);
    s->new_h = (int)nh;
    s->new_w = (int)nw;
    s->want_channels = moka_pt_bool(p, "is_color") ? 3 : 1;
    s->has_labels = l->num_top == 2;
    s->source = strdup(source);
    if (!s->source) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");

    /* An s3:// root_folder is fetched whole (every object under the prefix) into the cache and
     * the images are read from there; the list file may be a URL of its own. */
    const char *root = moka_pt_str(p, "root_folder");
    char local_root[4096];
    if (moka_fetch_is_url(root)) {
        char url[4096];
        const bool slash = root[strlen(root) - 1] == '/';
        if (snprintf(url, sizeof url, "%s%s", root, slash ? "" : "/") >= (int)sizeof url)
            return moka_layer_errf(l, err, MOKA_ERR_CONFIG, "image_data_param.root_folder is "
                                   "too long");
        moka_status fst = moka_fetch_source(l->ctx, url, local_root, sizeof local_root - 1, err);
        if (fst != MOKA_OK) {
            moka_err_prefix(err, "layer '%s': image_data_param.root_folder", l->name);
            return fst;
        }
        strcat(local_root, "/");
        root = local_root;
    }
    s->root = strdup(root);
    if (!s->root) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");

    char list_local[4096];
    moka_status st = moka_fetch_source(l->ctx, source, list_local, sizeof list_local, err);
    if (st == MOKA_OK) st = moka_image_list_read(list_local, &s->list, err);
    if (st != MOKA_OK) {
        moka_err_prefix(err, "layer '%s': image_data_param.source", l->name);
        const moka_pt_node *at = moka_pt_node_at(p, "source", 0);
        if (at && at->file && at->line > 0)
            moka_err_prefix(err, "%s:%d:%d", at->file, at->line, at->col);
        return st;
    }
    const int64_t n = s->list.count;
    /* A missing file is found now rather than some epochs into training. */
    for (int64_t i = 0; i < n; i++) {
        char path[4096];
        const moka_image_entry *e = &s->list.entries[i];
        if (!image_path(s, e, path, sizeof path))
            return moka_errf(err, MOKA_ERR_IO, "layer '%s': %s:%d: image path too long", l->name,
                             source, e->line);
        if (access(path, R_OK) != 0)
            return moka_errf(err, MOKA_ERR_IO, "layer '%s': %s:%d: image '%s': %s", l->name, source,
                             e->line, path, strerror(errno));
    }
    uint8_t *first;
    int c, h, w;
    MOKA_TRY(load_image(s, 0, &first, &c, &h, &w, err));
    free(first);
    s->c = c;
    s->h = h;
    s->w = w;

    MOKA_TRY(moka_transform_init(&s->tf, moka_pt_msg(l->cfg, "transform_param"), l->phase, l->name,
                                 s->c, s->h, s->w, err));
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

    moka_logf(MOKA_LOG_INFO, "data", "layer '%s': %lld images of %lld x %lld x %lld from '%s'%s",
              l->name, (long long)n, (long long)s->c, (long long)s->h, (long long)s->w, source,
              s->shuffle ? ", shuffled each epoch" : "");

    return start_loader(l, err);
}

static moka_status image_data_reshape(moka_layer *l, moka_err *err)
{
    const image_data *s = l->state;
    MOKA_TRY(
        moka_tensor_set_shape(l->top[0], MOKA_SHAPE(s->batch, s->out_c, s->out_h, s->out_w), err));
    if (s->has_labels) MOKA_TRY(moka_tensor_set_shape(l->top[1], MOKA_SHAPE(s->batch), err));
    return MOKA_OK;
}

static moka_status image_data_forward_cpu(moka_layer *l, moka_err *err)
{
    image_data *s = l->state;
    float *const dst[2] = {l->top[0]->data, s->has_labels ? l->top[1]->data : NULL};
    return moka_loader_next(s->loader, dst, err);
}

/* Positions the stream as if all ranks together had read its first `position` entries (this
 * rank's next is position + rank; training resumed from a snapshot): stops the prefetch thread,
 * rebuilds the cursor from its setup-time state at that position and restarts the thread. */
static moka_status image_data_seek(moka_layer *l, int64_t position, moka_err *err)
{
    image_data *s = l->state;
    if (position < 0)
        return moka_layer_errf(l, err, MOKA_ERR_INVALID_ARG,
                               "cannot seek to sample %lld (want >= 0)", (long long)position);
    moka_loader_free(s->loader);
    s->loader = NULL;
    moka_cursor_seek(&s->cursor, position);
    return start_loader(l, err);
}

static const char *const image_data_extra[] = {"transform_param", NULL};

const moka_layer_ops moka_layer_image_data = {
    .type = "ImageData",
    .param_field = "image_data_param",
    .extra_fields = image_data_extra,
    .state_size = sizeof(image_data),
    .min_bottom = 0,
    .max_bottom = 0,
    .min_top = 1,
    .max_top = 2,
    .setup = image_data_setup,
    .reshape = image_data_reshape,
    .forward_cpu = image_data_forward_cpu,
    .destroy = image_data_destroy,
    .seek = image_data_seek,
};
