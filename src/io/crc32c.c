/* src/io/crc32c.c -- CRC-32C by slicing-by-8: table[0] is the classic byte-at-a-time table for
 * the reflected polynomial 0x82F63B78, and table[k][b] is the CRC of byte b followed by k zero
 * bytes, so eight input bytes are folded with eight lookups per step.
 * Reference: Kounavis and Berry, "A Systematic Approach to Building High Performance
 * Software-based CRC Generators" (2005).
 */
#include "io/crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        table[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (uint32_t b = 0; b < 256; b++)
            table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xFF];
}

uint32_t moka_crc32c_extend(uint32_t crc, const void *data, size_t nbytes)
{
    pthread_once(&table_once, build_tables);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    /* Byte-wise until the rest is a multiple of 8; each 8-byte step reads the bytes one by one,
     * so the result does not depend on alignment or host byte order. */
    while (nbytes % 8 != 0) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xFF];
        nbytes--;
    }
    for (; nbytes >= 8; nbytes -= 8, p += 8) {
        const uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                 (uint32_t)p[3] << 24);
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
    }
    return ~c;
}
