/* src/io/crc32c.h -- CRC-32C (Castagnoli) and the masked form TFRecord files store.
 *
 *   crc32c: reflected CRC-32 with polynomial 0x82F63B78 (0x1EDC6F41 bit-reversed), initial value
 *           and final xor 0xFFFFFFFF; crc32c("123456789") = 0xE3069283 (RFC 3720, B.4).
 *   mask:   ((crc >> 15) | (crc << 17)) + 0xa282ead8, as tensorflow/core/lib/hash/crc32c.h's Mask
 *           (a CRC of data that itself holds CRCs is otherwise weak).
 *
 * Thread-safe: the lookup tables are built once, on first use, under pthread_once.
 */
#ifndef MOKA_CRC32C_H
#define MOKA_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC-32C: crc is the value returned for the bytes before (0 to start). */
uint32_t moka_crc32c_extend(uint32_t crc, const void *data, size_t nbytes);

static inline uint32_t moka_crc32c(const void *data, size_t nbytes)
{
    return moka_crc32c_extend(0, data, nbytes);
}

static inline uint32_t moka_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static inline uint32_t moka_crc32c_unmask(uint32_t masked)
{
    const uint32_t rot = masked - 0xa282ead8u;
    return (rot >> 17) | (rot << 15);
}

#endif /* MOKA_CRC32C_H */
