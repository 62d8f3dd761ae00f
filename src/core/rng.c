/* src/core/rng.c -- xoshiro256** (Blackman & Vigna, 2018) seeded by splitmix64. */
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void moka_rng_seed(moka_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t moka_rng_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t moka_rng_u64(moka_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t moka_rng_u32(moka_rng *r) { return (uint32_t)(moka_rng_u64(r) >> 32); }

uint64_t moka_rng_below(moka_rng *r, uint64_t n)
{
    /* Rejection sampling on the top of the range keeps the result unbiased. */
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = moka_rng_u64(r);
    while (x >= limit);
    return x % n;
}

float moka_rng_uniform(moka_rng *r, float a, float b)
{
    const double u = (double)(moka_rng_u64(r) >> 11) * 0x1.0p-53; /* [0, 1) */
    float v = (float)(a + (double)(b - a) * u);
    return v < b ? v : a; /* rounding to float can reach b */
}

float moka_rng_gaussian(moka_rng *r, float mean, float std)
{
    double u1;
    do u1 = (double)(moka_rng_u64(r) >> 11) * 0x1.0p-53;
    while (u1 <= 0.0);
    const double u2 = (double)(moka_rng_u64(r) >> 11) * 0x1.0p-53;
    const double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return (float)(mean + std * z);
}

void moka_rng_shuffle(moka_rng *r, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = (int64_t)moka_rng_below(r, (uint64_t)i + 1);
        const int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
