/* src/io/datum.h -- Caffe's Datum record, the value stored under each key of a Caffe LMDB:
 *
 *   Datum { channels 1, height 2, width 3, data 4 (bytes), label 5, float_data 6 (repeated
 *           float), encoded 7 (bool) }            (proto/caffe.proto, Caffe's field numbers)
 *
 *   data        channels * height * width uint8 pixels in CHW order, or, with encoded, the bytes
 *               of a JPEG/PNG file
 *   float_data  channels * height * width floats, used instead of data by some Caffe tools
 *
 * Decoding and encoding go through protobuf-c (Caffe__Datum), so the wire format is exactly
 * Caffe's.
 */
#ifndef MOKA_DATUM_H
#define MOKA_DATUM_H

#include <stdbool.h>
#include <stdint.h>

#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moka_datum {
    int channels, height, width, label;
    bool encoded;        /* data holds a JPEG/PNG file's bytes */
    const uint8_t *data; /* raw CHW uint8 pixels, or the encoded bytes; NULL when absent */
    int64_t data_nbytes;
    const float *float_data; /* NULL when absent */
    int64_t float_count;
} moka_datum; /* pointers borrow from the buffer passed to decode */

/* Parses a serialized Datum. The pointers in *out borrow from `bytes` (data) or from a
 * thread-local scratch buffer (float_data, which the wire format does not keep aligned); both
 * stay valid until the next moka_datum_decode on the same thread or until `bytes` changes.
 * Returns MOKA_ERR_IO for bytes that are not a Datum, or MOKA_ERR_NOMEM. Thread-safe. */
moka_status moka_datum_decode(const void *bytes, int64_t nbytes, moka_datum *out, moka_err *err);

/* Serializes `d` (raw uint8 CHW data, encoded bytes, or float_data). *out is malloc'ed; the
 * caller frees it. Returns MOKA_ERR_INVALID_ARG (negative sizes) or MOKA_ERR_NOMEM. */
moka_status moka_datum_encode(const moka_datum *d, uint8_t **out, int64_t *nbytes, moka_err *err);

#ifdef __cplusplus
}
#endif

#endif /* MOKA_DATUM_H */
