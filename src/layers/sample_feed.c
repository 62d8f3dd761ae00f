/* src/layers/sample_feed.c -- the numbered-sample stream of IDXData and ImageData
 * (sample_feed.h). */
#include "layers/sample_feed.h"

#include "moka/log.h"

/* Batches prefetched ahead of the net: two buffers, one filling while the other is consumed. */
#define FEED_PREFETCH_DEPTH 2

/* Runs on the prefetch thread: the next B samples and their labels. */
static moka_status fill_batch(void *user, float *const *bufs, moka_err *err)
{
    moka_feed *f = user;
    for (int64_t b = 0; b < f->batch; b++) {
        moka_rng_seed(&f->tf_rng, f->tf_seed, (uint64_t)moka_cursor_position(&f->cursor));
        const int64_t i = moka_cursor_next(&f->cursor);
        MOKA_TRY(f->sample(f->user, i, &f->tf, &f->tf_rng, bufs[0] + b * f->out_sample,
                           f->has_labels ? bufs[1] + b : NULL, err));
    }
    return MOKA_OK;
}

moka_status moka_feed_init(moka_feed *f, moka_layer *l, int64_t n, int64_t batch, int64_t c,
                           int64_t h, int64_t w, moka_feed_sample_fn sample, void *user,
                           moka_err *err)
{
    f->batch = batch;
    f->has_labels = l->num_top == 2;
    f->sample = sample;
    f->user = user;
    f->name = l->name;
    MOKA_TRY(moka_transform_init(&f->tf, moka_pt_msg(l->cfg, "transform_param"), l->phase, l->name,
                                 c, h, w, err));
    moka_transform_out_dims(&f->tf, &f->out_c, &f->out_h, &f->out_w);
    f->out_sample = f->out_c * f->out_h * f->out_w;
    /* The prefetch thread gets streams of its own: l->rng belongs to the calling thread. The
     * shuffle stream is a copy of the layer's, which does not depend on the rank, so every rank
     * draws the same permutations and the same skip and reads its own shard of one order. */
    int64_t start, stride;
    MOKA_TRY(moka_loader_shard(l->ctx, l->name, &start, &stride, err));
    MOKA_TRY(moka_cursor_init(&f->cursor, n, start, stride, moka_pt_bool(l->param, "shuffle"),
                              &l->rng, err));
    moka_cursor_random_skip(&f->cursor, moka_pt_int(l->param, "rand_skip"));
    f->tf_seed = moka_rng_u64(&l->rng);
    return MOKA_OK;
}

moka_status moka_feed_start(moka_feed *f, moka_err *err)
{
    const int64_t counts[2] = {f->batch * f->out_sample, f->batch};
    const moka_status st = moka_loader_create(f->has_labels ? 2 : 1, counts, FEED_PREFETCH_DEPTH,
                                              fill_batch, f, &f->loader, err);
    if (st != MOKA_OK) moka_err_prefix(err, "layer '%s'", f->name);
    return st;
}

moka_status moka_feed_reshape(const moka_feed *f, moka_layer *l, moka_err *err)
{
    MOKA_TRY(
        moka_tensor_set_shape(l->top[0], MOKA_SHAPE(f->batch, f->out_c, f->out_h, f->out_w), err));
    if (f->has_labels) MOKA_TRY(moka_tensor_set_shape(l->top[1], MOKA_SHAPE(f->batch), err));
    return MOKA_OK;
}

moka_status moka_feed_forward(moka_feed *f, moka_layer *l, moka_err *err)
{
    float *const dst[2] = {l->top[0]->data, f->has_labels ? l->top[1]->data : NULL};
    return moka_loader_next(f->loader, dst, err);
}

moka_status moka_feed_seek(moka_feed *f, moka_layer *l, int64_t position, moka_err *err)
{
    if (position < 0)
        return moka_layer_errf(l, err, MOKA_ERR_INVALID_ARG,
                               "cannot seek to sample %lld (want >= 0)", (long long)position);
    moka_loader_free(f->loader);
    f->loader = NULL;
    moka_cursor_seek(&f->cursor, position);
    return moka_feed_start(f, err);
}

void moka_feed_deinit(moka_feed *f)
{
    moka_loader_free(f->loader);
    f->loader = NULL;
    moka_cursor_deinit(&f->cursor);
    moka_transform_deinit(&f->tf);
}
