/* src/core/rng.h -- explicit, seedable random streams (xoshiro256**, seeded with splitmix64).
 *
 * Each consumer (a layer, a filler, a data shuffle) owns a moka_rng derived from the context seed
 * and a stream id, so runs are reproducible and independent of the order streams are created in.
 * A moka_rng is not thread-safe; give each thread its own stream.
 */
#ifndef MOKA_RNG_H
#define MOKA_RNG_H

#include <stdint.h>

typedef struct moka_rng {
    uint64_t s[4];
} moka_rng;

/* Seeds from (seed, stream): different streams of one seed are independent. */
void moka_rng_seed(moka_rng *r, uint64_t seed, uint64_t stream);
/* FNV-1a of a string, for deriving stream ids from names ("conv1"). */
uint64_t moka_rng_hash(const char *s);
uint64_t moka_rng_u64(moka_rng *r);
uint32_t moka_rng_u32(moka_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t moka_rng_below(moka_rng *r, uint64_t n);
/* Uniform float in [a, b). */
float moka_rng_uniform(moka_rng *r, float a, float b);
/* Normal(mean, std) by Box-Muller (double precision inside). */
float moka_rng_gaussian(moka_rng *r, float mean, float std);
/* Fisher-Yates shuffle of n int64 indices. */
void moka_rng_shuffle(moka_rng *r, int64_t *idx, int64_t n);

#endif /* MOKA_RNG_H */
