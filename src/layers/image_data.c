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
#include "io/fetch.h"
#include "io/image.h"
#include "layers/sample_feed.h"
#include "moka/log.h"

typedef struct {
    const char *name; /* the layer's, for messages from the prefetch thread */
    char *source;     /* the list file */
    char *root;       /* root_folder */
    moka_image_list list;
    int want_channels; /* 3 colour, 1 gray */
    int new_h, new_w;  /* 0, 0: no resize */
    int64_t c, h, w;   /* one image as it enters the transform */
    moka_feed feed;
} image_data;

static void image_data_destroy(moka_layer *l)
{
    image_data *s = l->state;
    /* The thread reads everything below, so it goes first. */
    moka_feed_deinit(&s->feed);
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

/* Runs on the prefetch thread: entry i, decoded and transformed, and its label. */
static moka_status image_sample(void *user, int64_t i, const moka_transform *tf, moka_rng *rng,
                                float *out, float *label, moka_err *err)
{
    const image_data *s = user;
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
    moka_transform_u8(tf, pix, out, rng);
    free(pix);
    if (label) *label = (float)s->list.entries[i].label;
    return MOKA_OK;
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
    const int64_t batch = moka_pt_int(p, "batch_size");
    if (batch <= 0)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "image_data_param.batch_size must be positive, got %lld",
                               (long long)batch);
    const int64_t nh = moka_pt_int(p, "new_height"), nw = moka_pt_int(p, "new_width");
    if ((nh > 0) != (nw > 0) || nh > MOKA_IMAGE_MAX_SIDE || nw > MOKA_IMAGE_MAX_SIDE)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "image_data_param new_height and new_width must be set together "
                               "(each 1..%d) or not at all, got %lld and %lld",
                               MOKA_IMAGE_MAX_SIDE, (long long)nh, (long long)nw);
    s->new_h = (int)nh;
    s->new_w = (int)nw;
    s->want_channels = moka_pt_bool(p, "is_color") ? 3 : 1;
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

    MOKA_TRY(moka_feed_init(&s->feed, l, n, batch, s->c, s->h, s->w, image_sample, s, err));

    moka_logf(MOKA_LOG_INFO, "data", "layer '%s': %lld images of %lld x %lld x %lld from '%s'%s",
              l->name, (long long)n, (long long)s->c, (long long)s->h, (long long)s->w, source,
              moka_pt_bool(p, "shuffle") ? ", shuffled each epoch" : "");

    return moka_feed_start(&s->feed, err);
}

static moka_status image_data_reshape(moka_layer *l, moka_err *err)
{
    const image_data *s = l->state;
    return moka_feed_reshape(&s->feed, l, err);
}

static moka_status image_data_forward_cpu(moka_layer *l, moka_err *err)
{
    image_data *s = l->state;
    return moka_feed_forward(&s->feed, l, err);
}

/* Positions the stream at entry `position` of the global order (sample_feed.h). */
static moka_status image_data_seek(moka_layer *l, int64_t position, moka_err *err)
{
    image_data *s = l->state;
    return moka_feed_seek(&s->feed, l, position, err);
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
