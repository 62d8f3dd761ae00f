/* src/data/loader.h -- a prefetch thread that fills batches while the net computes, and the
 * cursor that decides which sample comes next.
 *
 * Loader: `depth` slots (2 = double buffering), each holding one batch of `num_bufs` float
 * arrays. A worker thread calls fill(user, slot) on every free slot in turn; the consumer takes
 * the ready slots in the same order. So batches arrive in exactly the order they were filled,
 * and results do not depend on timing:
 *
 *   worker:    fill(0) fill(1) [wait for a free slot] fill(0) ...
 *   consumer:          next -> slot 0     next -> slot 1     ...
 *
 * Cursor: which sample a reader takes next. The samples of all readers together form one
 * global stream, and position p of it (p = 0, 1, ...) is sample perm_e[(skip + p) mod N] of
 * epoch e = (skip + p) / N. Every epoch's permutation comes from one seeded stream in epoch
 * order, so readers that share a seed agree on every permutation. A reader takes the positions
 *
 *   p = base + start + k * stride     (k = 0, 1, 2, ...)
 *
 * where base is where the stream was last sought to (0 after init). With start = rank and
 * stride = world size, ranks take disjoint shards that together cover each epoch exactly once,
 * and W ranks of batch B read, pass by pass, what one reader of batch W * B reads: pass t covers
 * positions [t * W * B, (t + 1) * W * B). seek(position) names a position of the global stream,
 * not of the reader's own, so a run stopped at position P resumes at P whatever the world size
 * (P need not be a multiple of it).
 */
#ifndef MOKA_LOADER_H
#define MOKA_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rng.h"
#include "moka/ctx.h"
#include "moka/status.h"

typedef struct moka_loader moka_loader;

/* Fills one batch: bufs[i] has room for counts[i] floats (the counts given to create). Runs on
 * the worker thread, one call at a time, in batch order. A failure stops the worker; the error
 * is handed to the consumer by the moka_loader_next that would have received this batch. */
typedef moka_status (*moka_loader_fill_fn)(void *user, float *const *bufs, moka_err *err);

/* Allocates `depth` slots (depth >= 1; 2 double-buffers) of num_bufs arrays with counts[i]
 * floats each and starts the worker, which begins filling at once. `user` must stay valid, and
 * be touched by nobody else while fill may run, until moka_loader_free. Returns
 * MOKA_ERR_INVALID_ARG or MOKA_ERR_NOMEM (also when the thread cannot start). The worker blocks
 * all signals, so they keep going to the threads that handle them. Free with
 * moka_loader_free. */
moka_status moka_loader_create(int num_bufs, const int64_t *counts, int depth,
                               moka_loader_fill_fn fill, void *user, moka_loader **out,
                               moka_err *err);

/* Waits for the next batch and copies buffer i into dst[i] (counts[i] floats; a NULL dst[i] is
 * skipped), then hands the slot back to the worker. Returns the fill callback's error for a batch
 * that failed (and again on every later call). Call from one thread at a time. */
moka_status moka_loader_next(moka_loader *ld, float *const *dst, moka_err *err);

/* Zero-copy variant: waits for the next batch and returns its buffers (valid until
 * moka_loader_release, which must follow before the next acquire). */
moka_status moka_loader_acquire(moka_loader *ld, const float *const **bufs, moka_err *err);
void moka_loader_release(moka_loader *ld);

/* Stops the worker (letting a fill in progress finish), joins it and frees everything.
 * NULL does nothing. */
void moka_loader_free(moka_loader *ld);

typedef struct moka_cursor {
    int64_t n;      /* samples per epoch */
    int64_t start;  /* this reader's offset from base (the rank, for sharded reading) */
    int64_t stride; /* distance between its positions (the number of readers) */
    int64_t skip;   /* samples skipped by every reader before position 0 (rand_skip) */
    int64_t base;   /* the global position last sought to (0 after init) */
    int64_t k;      /* how many samples this reader has taken since init or seek */
    int64_t epoch;  /* the epoch whose order `perm` holds */
    bool shuffle;
    int64_t *perm;      /* n indices */
    moka_rng rng;       /* the shuffle stream; one permutation drawn per epoch */
    moka_rng rng0;      /* the stream as given to init, so seek can replay it */
    int64_t skip_bound; /* the bound moka_cursor_random_skip drew from (0: none) */
} moka_cursor;

/* Starts a cursor over n > 0 samples with the given shard, 0 <= start < stride (start = rank and
 * stride = world size for data-parallel reading; 0 and 1 alone). With shuffle, epoch 0 is
 * shuffled at once from `rng` (copied in; the cursor owns its copy). Caller owns *c; free with
 * moka_cursor_deinit. MOKA_ERR_INVALID_ARG or MOKA_ERR_NOMEM. */
moka_status moka_cursor_init(moka_cursor *c, int64_t n, int64_t start, int64_t stride, bool shuffle,
                             const moka_rng *rng, moka_err *err);
/* The index of the next sample (in [0, n)); advances the cursor, reshuffling at each epoch
 * boundary it crosses. */
int64_t moka_cursor_next(moka_cursor *c);
/* Caffe's rand_skip: the global stream starts `skip` samples in, skip drawn uniformly from
 * [0, bound) from the cursor's stream right after init (bound <= 0: no skip). Every reader
 * draws the same skip, since they share the seed. */
void moka_cursor_random_skip(moka_cursor *c, int64_t bound);
/* Puts the cursor where it would be had all readers together consumed the first `position`
 * (>= 0) samples of the global stream: this reader's next sample is position + start, then
 * + stride each. Replays init (and the random skip) and the same permutations; used when a run
 * resumes from a snapshot, possibly at another world size. */
void moka_cursor_seek(moka_cursor *c, int64_t position);
/* The global position (base + start + k * stride) of the sample the next moka_cursor_next
 * returns. A layer seeds per-sample random draws (crops, mirrors) from it, so they depend on the
 * sample's place in the global stream, not on the world size. */
int64_t moka_cursor_position(const moka_cursor *c);
void moka_cursor_deinit(moka_cursor *c);

/* The shard a data layer reads, from its context: *start = ctx->rank, *stride =
 * ctx->world_size. MOKA_ERR_INVALID_ARG ("layer '<layer>': ...") unless 0 <= rank < world_size;
 * moka_ctx_init sets 0 and 1. */
moka_status moka_loader_shard(const moka_ctx *ctx, const char *layer, int64_t *start,
                              int64_t *stride, moka_err *err);

#endif /* MOKA_LOADER_H */
