/* src/layers/sample_feed.h -- what the data layers that read numbered samples share (IDXData,
 * ImageData): the order they read them in, the transform, the prefetch thread and the
 * layer-side calls.
 *
 * A feed reads samples 0 .. n-1 in a moka_cursor's order (src/data/loader.h: file order or a
 * fresh permutation per epoch with the layer's `shuffle`, `rand_skip`, sharded over the ranks of
 * ctx) and turns each into C' x H' x W' floats through the layer's transform_param. The layer
 * supplies one function, which produces sample i (decoding it as it must) through the feed's
 * transform; the feed seeds the transform's random draws (crop, mirror) from the sample's
 * position in the global stream, so a run positioned by seek, or read by another number of
 * ranks, draws what one uninterrupted process would. A prefetch thread fills the next batches
 * while the net computes; forward copies a ready batch into the tops (data, and the optional
 * label top).
 */
#ifndef MOKA_SAMPLE_FEED_H
#define MOKA_SAMPLE_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "core/layer.h"
#include "data/loader.h"
#include "data/transform.h"

/* Writes sample i, transformed by `tf` with random draws from `rng`, into out (C' H' W' floats),
 * and its label into *label when label is not NULL. Runs on the prefetch thread. */
typedef moka_status (*moka_feed_sample_fn)(void *user, int64_t i, const moka_transform *tf,
                                           moka_rng *rng, float *out, float *label,
                                           moka_err *err);

typedef struct moka_feed {
    moka_transform tf;
    int64_t batch;      /* B */
    int64_t out_sample; /* floats of one transformed sample, C' H' W' */
    int64_t out_c, out_h, out_w;
    bool has_labels;
    moka_feed_sample_fn sample;
    void *user;
    const char *name; /* the layer's, for messages */
    /* Owned by the prefetch thread once it runs: nothing else may touch them. */
    moka_cursor cursor;
    moka_rng tf_rng;
    moka_loader *loader;
    uint64_t tf_seed;
} moka_feed;

/* Sets the feed up for layer l (inside its setup): n samples of (c, h, w) before the transform
 * (l->cfg's transform_param), batches of `batch`, labels when the layer has a second top; the
 * cursor from l->param's shuffle and rand_skip and l->rng (every rank draws the same order and
 * reads its own shard of it), then the transform's seed from l->rng. The thread starts with
 * moka_feed_start. Free with moka_feed_deinit (also after a failure). */
moka_status moka_feed_init(moka_feed *f, moka_layer *l, int64_t n, int64_t batch, int64_t c,
                           int64_t h, int64_t w, moka_feed_sample_fn sample, void *user,
                           moka_err *err);
/* Starts the prefetch thread at the cursor's position. */
moka_status moka_feed_start(moka_feed *f, moka_err *err);
/* The layer's reshape: top[0] (B, C', H', W'), top[1] (B). */
moka_status moka_feed_reshape(const moka_feed *f, moka_layer *l, moka_err *err);
/* The layer's forward: the next batch into the tops. */
moka_status moka_feed_forward(moka_feed *f, moka_layer *l, moka_err *err);
/* The layer's seek: positions the stream as if all ranks together had read its first
 * `position` samples (this rank's next is position + rank): stops the thread, rebuilds the
 * cursor from its setup-time state at that position and restarts the thread. Used when
 * training resumes from a snapshot. */
moka_status moka_feed_seek(moka_feed *f, moka_layer *l, int64_t position, moka_err *err);
/* Stops the thread first (it reads everything else), then frees the cursor and transform. */
void moka_feed_deinit(moka_feed *f);

#endif /* MOKA_SAMPLE_FEED_H */
