/* src/core/reduce.c -- the chunked sums of reduce.h (contract there). */
#include "core/reduce.h"

/* Chunks run per parallel round, so their partial sums fit on the stack. Rounds change only how
 * often a team starts, not the order of any addition. */
#define CHUNKS_PER_ROUND 64

void moka_reduce_chunks(int64_t n, int64_t chunk, int nvalues, int64_t par_min,
                        moka_reduce_chunk_fn fn, const void *ctx, double *total)
{
    for (int v = 0; v < nvalues; v++) total[v] = 0.0;
    for (int64_t base = 0; base < n; base += chunk * CHUNKS_PER_ROUND) {
        double part[CHUNKS_PER_ROUND][MOKA_REDUCE_MAX_VALUES];
        const int64_t left = n - base;
        const int nchunks = (int)(left >= chunk * CHUNKS_PER_ROUND ? CHUNKS_PER_ROUND
                                                                   : (left + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (nchunks > 1 && left >= par_min)
        for (int c = 0; c < nchunks; c++) {
            const int64_t lo = base + (int64_t)c * chunk;
            const int64_t hi = lo + chunk < n ? lo + chunk : n;
            fn(ctx, lo, hi, part[c]);
        }
        for (int c = 0; c < nchunks; c++)
            for (int v = 0; v < nvalues; v++) total[v] += part[c][v];
    }
}
