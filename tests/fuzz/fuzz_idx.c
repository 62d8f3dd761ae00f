/* tests/fuzz/fuzz_idx.c -- libFuzzer target for the IDX reader (src/io/idx.c): feeds arbitrary
 * bytes through moka_idx_read_mem, plain or (when they start with 1f 8b) gzip. The reader must
 * return a status for every input, never crash, leak or read out of bounds, and a success must
 * describe exactly the bytes given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink; /* keeps the byte sum from being optimised away */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    moka_err err;
    moka_idx idx;
    if (moka_idx_read_mem(data, (int64_t)size, "fuzz", &idx, &err) != MOKA_OK) {
        /* A failure leaves nothing behind and always says something. */
        if (idx.data != NULL || err.msg[0] == '\0') abort();
        return 0;
    }
    /* A zero dim means no data, however large the other dims are. */
    int64_t count = 1;
    for (int i = 0; i < idx.ndim; i++)
        if (idx.dims[i] == 0) count = 0;
    for (int i = 0; i < idx.ndim && count; i++) count *= idx.dims[i];
    if (idx.ndim < 1 || count != idx.count) abort();
    /* Touch every byte so the sanitizers see any short allocation. */
    unsigned sum = 0;
    for (int64_t i = 0; i < idx.count; i++) sum += idx.data[i];
    if (size > 0 && data[0] == 0x00 && (size_t)(4 + 4 * idx.ndim + idx.count) != size) abort();
    sink = sum;
    moka_idx_deinit(&idx);
    return 0;
}
