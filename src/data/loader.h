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
 * Cursor: which sample a reader takes next. A reader takes the global positions
 * p = skip + start + k * stride (k = 0, 1, 2, ...), and position p is sample perm_e[p mod N] of
 * epoch e = p / N. Every epoch's permutation comes from one seeded stream in epoch order, so
 * readers that share a seed agree on every permutation; with start = rank and stride = size,
 * ranks read disjoint shards that together cover each epoch exactly once.
 */
#ifndef MOKA_LOADER_H
#define MOKA_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/rng.h"
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
    int64_t start;  /* this reader's first position (the rank, for sharded reading) */
    int64_t stride; /* distance between its positions (the number of readers) */
    int64_t skip;   /* positions skipped by every reader (rand_skip; 0 after init) */
    int64_t k;      /* how many samples this reader has taken */
    int64_t epoch;  /* the epoch whose order `perm` holds */
    bool shuffle;
    int64_t *perm; /* n indices */
    moka_rng rng;  /* the shuffle stream; one permutation drawn per epoch */
    moka_rng rng0;      /* the stream as given to init, so seek can replay it */
    int64_t skip_bound; /* the bound moka_cursor_random_skip drew from (0: none) */
} moka_cursor;

/* Starts a cursor over n > 0 samples with the given shard (0 <= start < stride). With shuffle,
 * epoch 0 is shuffled at once from `rng` (copied in; the cursor owns its copy). Caller owns *c;
 * free with moka_cursor_deinit. MOKA_ERR_INVALID_ARG or MOKA_ERR_NOMEM. */
moka_status moka_cursor_init(moka_cursor *c, int64_t n, int64_t start, int64_t stride, bool shuffle,
                             const moka_rng *rng, moka_err *err);
/* The index of the next sample (in [0, n)); advances the cursor, reshuffling at each epoch
 * boundary it crosses. */
int64_t moka_cursor_next(moka_cursor *c);
/* Caffe's rand_skip: every reader skips a position drawn uniformly from [0, bound), taken from
 * the cursor's stream right after init (bound <= 0: no skip). */
void moka_cursor_random_skip(moka_cursor *c, int64_t bound);
/* Puts the cursor where it would be after `k` samples had been taken since init (and the
 * random skip), replaying the same permutations: used when a run resumes from a snapshot. */
void moka_cursor_seek(moka_cursor *c, int64_t k);
void moka_cursor_deinit(moka_cursor *c);

#endif /* MOKA_LOADER_H */
