/* src/core/reduce.h -- deterministic double-precision sums over an index range.
 *
 * [0, n) is cut into fixed chunks [k chunk, min((k + 1) chunk, n)). A callback sums each chunk
 * into one or more doubles (e.g. a loss and a count), chunks may run on different threads, and
 * the chunk sums are then added in chunk order:
 *   total[v] = (((0 + part_0[v]) + part_1[v]) + ...) + part_{K-1}[v]
 * The chunking depends only on n and chunk, never on the thread count, so the result is
 * bit-identical for every number of threads.
 */
#ifndef MOKA_REDUCE_H
#define MOKA_REDUCE_H

#include <stdint.h>

/* The most values one chunk callback may produce. */
#define MOKA_REDUCE_MAX_VALUES 4

/* Sums chunk [lo, hi) into out[0 .. nvalues). out is not cleared beforehand: write, don't add.
 * Called concurrently for different chunks with the same ctx, so the only things it may write
 * (through pointers held in ctx) are per-element outputs inside [lo, hi). */
typedef void (*moka_reduce_chunk_fn)(const void *ctx, int64_t lo, int64_t hi, double *out);

/* Fills total[0 .. nvalues) with the chunk sums of fn over [0, n), added in chunk order (all 0
 * when n is 0). chunk >= 1 and 1 <= nvalues <= MOKA_REDUCE_MAX_VALUES. Chunks run on OpenMP
 * threads when at least `par_min` elements remain; the result does not depend on that.
 * Needs no heap memory. */
void moka_reduce_chunks(int64_t n, int64_t chunk, int nvalues, int64_t par_min,
                        moka_reduce_chunk_fn fn, const void *ctx, double *total);

#endif /* MOKA_REDUCE_H */
