/* src/data/loader.c -- the prefetch thread and the sample cursor (see loader.h).
 *
 * Slots form a ring of `depth`. `produced` counts slots the worker has finished (filled or
 * failed), `taken` counts slots the consumer has handed back. The worker may fill slot
 * produced % depth while produced - taken < depth; the consumer may read slot taken % depth
 * while taken < produced. One mutex guards both counters; the fill itself and the consumer's copy
 * run unlocked, because each touches only a slot the other side cannot reach at that moment.
 */
#include "data/loader.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    float **bufs;
    moka_status status;
    moka_err err;
} slot;

struct moka_loader {
    int num_bufs, depth;
    int64_t *counts;
    slot *slots;
    moka_loader_fill_fn fill;
    void *user;

    pthread_mutex_t mu;
    pthread_cond_t ready; /* signalled when produced grows */
    pthread_cond_t freed; /* signalled when taken grows or stop is set */
    int64_t produced, taken;
    bool stop, acquired;
    bool thread_started, sync_made;
    pthread_t thread;
};

static void *worker(void *arg)
{
    moka_loader *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && ld->produced - ld->taken >= ld->depth)
            pthread_cond_wait(&ld->freed, &ld->mu);
        if (ld->stop) break;
        slot *s = &ld->slots[ld->produced % ld->depth];
        pthread_mutex_unlock(&ld->mu);
        s->err.code = MOKA_OK;
        s->err.msg[0] = '\0';
        s->status = ld->fill(ld->user, s->bufs, &s->err);
        pthread_mutex_lock(&ld->mu);
        ld->produced++;
        pthread_cond_signal(&ld->ready);
        /* After a failure there is nothing sensible to fill; the consumer gets the error. */
        if (s->status != MOKA_OK) break;
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

moka_status moka_loader_create(int num_bufs, const int64_t *counts, int depth,
                               moka_loader_fill_fn fill, void *user, moka_loader **out,
                               moka_err *err)
{
    *out = NULL;
    if (num_bufs < 1 || depth < 1 || !fill)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "loader: need num_bufs >= 1, depth >= 1 "
                         "and a fill function (got %d, %d)",
                         num_bufs, depth);
    for (int i = 0; i < num_bufs; i++)
        if (counts[i] < 0)
            return moka_errf(err, MOKA_ERR_INVALID_ARG, "loader: buffer %d has count %lld", i,
                             (long long)counts[i]);
    moka_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return moka_errf(err, MOKA_ERR_NOMEM, "loader: out of memory");
    ld->num_bufs = num_bufs;
    ld->depth = depth;
    ld->fill = fill;
    ld->user = user;
    ld->counts = malloc((size_t)num_bufs * sizeof *ld->counts);
    ld->slots = calloc((size_t)depth, sizeof *ld->slots);
    if (!ld->counts || !ld->slots) goto nomem;
    memcpy(ld->counts, counts, (size_t)num_bufs * sizeof *counts);
    for (int d = 0; d < depth; d++) {
        ld->slots[d].bufs = calloc((size_t)num_bufs, sizeof(float *));
        if (!ld->slots[d].bufs) goto nomem;
        for (int i = 0; i < num_bufs; i++) {
            ld->slots[d].bufs[i] = calloc((size_t)(counts[i] > 0 ? counts[i] : 1), sizeof(float));
            if (!ld->slots[d].bufs[i]) goto nomem;
        }
    }
    if (pthread_mutex_init(&ld->mu, NULL) != 0) goto nomem;
    if (pthread_cond_init(&ld->ready, NULL) != 0) {
        pthread_mutex_destroy(&ld->mu);
        goto nomem;
    }
    if (pthread_cond_init(&ld->freed, NULL) != 0) {
        pthread_cond_destroy(&ld->ready);
        pthread_mutex_destroy(&ld->mu);
        goto nomem;
    }
    ld->sync_made = true;

    /* The worker inherits the creating thread's signal mask: block everything while creating it
     * so that SIGINT and friends keep going to the threads that handle them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    const int rc = pthread_create(&ld->thread, NULL, worker, ld);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        moka_loader_free(ld);
        return moka_errf(err, MOKA_ERR_NOMEM, "loader: cannot start the prefetch thread: %s",
                         strerror(rc));
    }
    ld->thread_started = true;
    *out = ld;
    return MOKA_OK;

nomem:
    moka_loader_free(ld);
    return moka_errf(err, MOKA_ERR_NOMEM, "loader: out of memory");
}

moka_status moka_loader_acquire(moka_loader *ld, const float *const **bufs, moka_err *err)
{
    pthread_mutex_lock(&ld->mu);
    while (ld->taken == ld->produced) pthread_cond_wait(&ld->ready, &ld->mu);
    const slot *s = &ld->slots[ld->taken % ld->depth];
    pthread_mutex_unlock(&ld->mu);
    if (s->status != MOKA_OK) {
        /* The failed slot is never handed back, so every later call reports it again. */
        if (err) *err = s->err;
        return s->status;
    }
    ld->acquired = true;
    *bufs = (const float *const *)s->bufs;
    return MOKA_OK;
}

void moka_loader_release(moka_loader *ld)
{
    if (!ld->acquired) return;
    pthread_mutex_lock(&ld->mu);
    ld->acquired = false;
    ld->taken++;
    pthread_cond_signal(&ld->freed);
    pthread_mutex_unlock(&ld->mu);
}

moka_status moka_loader_next(moka_loader *ld, float *const *dst, moka_err *err)
{
    const float *const *bufs;
    MOKA_TRY(moka_loader_acquire(ld, &bufs, err));
    for (int i = 0; i < ld->num_bufs; i++)
        if (dst[i]) memcpy(dst[i], bufs[i], (size_t)ld->counts[i] * sizeof(float));
    moka_loader_release(ld);
    return MOKA_OK;
}

void moka_loader_free(moka_loader *ld)
{
    if (!ld) return;
    if (ld->thread_started) {
        pthread_mutex_lock(&ld->mu);
        ld->stop = true;
        pthread_cond_broadcast(&ld->freed);
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->thread, NULL);
    }
    if (ld->sync_made) {
        pthread_cond_destroy(&ld->freed);
        pthread_cond_destroy(&ld->ready);
        pthread_mutex_destroy(&ld->mu);
    }
    if (ld->slots)
        for (int d = 0; d < ld->depth; d++) {
            if (!ld->slots[d].bufs) continue;
            for (int i = 0; i < ld->num_bufs; i++) free(ld->slots[d].bufs[i]);
            free(ld->slots[d].bufs);
        }
    free(ld->slots);
    free(ld->counts);
    free(ld);
}

moka_status moka_cursor_init(moka_cursor *c, int64_t n, int64_t start, int64_t stride, bool shuffle,
                             const moka_rng *rng, moka_err *err)
{
    memset(c, 0, sizeof *c);
    if (n <= 0 || stride <= 0 || start < 0 || start >= stride)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "cursor: need n > 0 and 0 <= start < stride (got n %lld, start %lld, "
                         "stride %lld)",
                         (long long)n, (long long)start, (long long)stride);
    c->perm = malloc((size_t)n * sizeof *c->perm);
    if (!c->perm)
        return moka_errf(err, MOKA_ERR_NOMEM, "cursor: out of memory (%lld indices)", (long long)n);
    for (int64_t i = 0; i < n; i++) c->perm[i] = i;
    c->n = n;
    c->start = start;
    c->stride = stride;
    c->shuffle = shuffle;
    c->rng = *rng;
    c->rng0 = *rng;
    if (shuffle) moka_rng_shuffle(&c->rng, c->perm, n);
    return MOKA_OK;
}

void moka_cursor_random_skip(moka_cursor *c, int64_t bound)
{
    c->skip_bound = bound > 0 ? bound : 0;
    if (c->skip_bound > 0) c->skip = (int64_t)moka_rng_below(&c->rng, (uint64_t)c->skip_bound);
}

void moka_cursor_seek(moka_cursor *c, int64_t position)
{
    /* Replay init: the identity order, epoch 0's shuffle and the skip draw, from the same
     * stream; later epochs are reshuffled lazily by moka_cursor_next as usual. */
    for (int64_t i = 0; i < c->n; i++) c->perm[i] = i;
    c->rng = c->rng0;
    if (c->shuffle) moka_rng_shuffle(&c->rng, c->perm, c->n);
    c->skip = 0;
    moka_cursor_random_skip(c, c->skip_bound);
    c->epoch = 0;
    c->base = position > 0 ? position : 0;
    c->k = 0;
}

int64_t moka_cursor_position(const moka_cursor *c)
{
    return c->base + c->start + c->k * c->stride;
}

int64_t moka_cursor_next(moka_cursor *c)
{
    const int64_t p = c->skip + moka_cursor_position(c);
    c->k++;
    const int64_t e = p / c->n;
    /* One permutation per epoch, in epoch order, even for epochs this reader skips over, so
     * that all readers sharing the seed see the same order in every epoch. Each permutation
     * shuffles the previous one, as Caffe's ImageData layer does. */
    for (; c->epoch < e; c->epoch++)
        if (c->shuffle) moka_rng_shuffle(&c->rng, c->perm, c->n);
    return c->perm[p % c->n];
}

void moka_cursor_deinit(moka_cursor *c)
{
    if (!c) return;
    free(c->perm);
    c->perm = NULL;
}

moka_status moka_loader_shard(const moka_ctx *ctx, const char *layer, int64_t *start,
                              int64_t *stride, moka_err *err)
{
    if (ctx->world_size < 1 || ctx->rank < 0 || ctx->rank >= ctx->world_size)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "layer '%s': cannot read shard %d of %d (the context needs "
                         "0 <= rank < world_size; moka_ctx_init sets 0 and 1)",
                         layer, ctx->rank, ctx->world_size);
    *start = ctx->rank;
    *stride = ctx->world_size;
    return MOKA_OK;
}
