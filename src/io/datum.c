/* src/io/datum.c -- Caffe's Datum (see datum.h): a small hand-written wire-format reader, so that
 * `data` is borrowed straight from the record (an LMDB value is mmap'ed, and copying every image
 * through protobuf-c's unpack would cost a malloc and a memcpy per sample), and protobuf-c's
 * Caffe__Datum for writing, so that what moka writes is exactly what Caffe's tools write.
 *
 * Wire format (https://protobuf.dev/programming-guides/encoding/): each field is a varint key
 * (field_number << 3 | wire_type) followed by a varint (type 0), 8 bytes (type 1), a varint
 * length and that many bytes (type 2) or 4 bytes (type 5). A scalar field given twice keeps the
 * last value, and a repeated float arrives either one fixed32 per element (type 5, what Caffe
 * writes) or packed in one length-delimited run (type 2); both forms may be mixed.
 */
#include "io/datum.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"

/* float_data is copied out of the wire bytes (fixed32 elements are interleaved with keys) into a
 * per-thread scratch buffer, freed when the thread ends. */
typedef struct {
    float *buf;
    int64_t cap;
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *p)
{
    scratch *s = p;
    if (s) free(s->buf);
    free(s);
}

static void scratch_make_key(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* Room for count > 0 floats in this thread's scratch buffer; NULL when out of memory. */
static float *scratch_get(int64_t count)
{
    pthread_once(&scratch_once, scratch_make_key);
    if (!scratch_key_ok) return NULL;
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (count > s->cap) {
        float *nb = realloc(s->buf, (size_t)count * sizeof(float));
        if (!nb) return NULL;
        s->buf = nb;
        s->cap = count;
    }
    return s->buf;
}

/* Reads a varint at *p (before end); returns 0 when it is truncated or longer than 10 bytes. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*p >= end) return 0;
        const uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static float load_f32le(const uint8_t *p)
{
    const uint32_t u =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One pass over the record. With floats == NULL it only validates and counts float_data;
 * otherwise it also copies the floats there. */
static moka_status scan(const uint8_t *buf, int64_t nbytes, moka_datum *d, float *floats,
                        int64_t *nfloats, moka_err *err)
{
    const uint8_t *p = buf, *end = buf + nbytes;
    int64_t nf = 0;
    while (p < end) {
        const int64_t at = p - buf;
        uint64_t key, v = 0;
        if (!read_varint(&p, end, &key))
            return moka_errf(err, MOKA_ERR_IO, "Datum: truncated field key at byte %lld",
                             (long long)at);
        const unsigned field = (unsigned)(key >> 3), wire = (unsigned)(key & 7);
        if (field == 0)
            return moka_errf(err, MOKA_ERR_IO, "Datum: invalid field number 0 at byte %lld",
                             (long long)at);
        const uint8_t *payload = NULL;
        uint64_t len = 0;
        switch (wire) {
        case 0:
            if (!read_varint(&p, end, &v))
                return moka_errf(err, MOKA_ERR_IO, "Datum: truncated varint of field %u", field);
            break;
        case 1:
            if (end - p < 8)
                return moka_errf(err, MOKA_ERR_IO, "Datum: truncated fixed64 of field %u", field);
            p += 8;
            break;
        case 2:
            if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return moka_errf(err, MOKA_ERR_IO,
                                 "Datum: field %u claims more bytes than the record holds (%lld "
                                 "bytes)",
                                 field, (long long)nbytes);
            payload = p;
            p += len;
            break;
        case 5:
            if (end - p < 4)
                return moka_errf(err, MOKA_ERR_IO, "Datum: truncated fixed32 of field %u", field);
            payload = p;
            p += 4;
            break;
        default:
            return moka_errf(err, MOKA_ERR_IO,
                             "Datum: field %u has wire type %u, which is not valid here "
                             "(not a Datum?)",
                             field, wire);
        }
        const unsigned want = field == 4 ? 2u : field == 6 ? (wire == 2 ? 2u : 5u) : 0u;
        if (field <= 7 && wire != want)
            return moka_errf(err, MOKA_ERR_IO,
                             "Datum: field %u has wire type %u, expected %u (not a Datum?)", field,
                             wire, want);
        switch (field) {
        case 1: d->channels = (int)(int32_t)v; break;
        case 2: d->height = (int)(int32_t)v; break;
        case 3: d->width = (int)(int32_t)v; break;
        case 5: d->label = (int)(int32_t)v; break;
        case 7: d->encoded = v != 0; break;
        case 4:
            d->data = payload;
            d->data_nbytes = (int64_t)len;
            break;
        case 6: {
            if (wire == 2 && len % 4 != 0)
                return moka_errf(err, MOKA_ERR_IO,
                                 "Datum: packed float_data of %llu bytes is not a whole number "
                                 "of floats",
                                 (unsigned long long)len);
            const int64_t k = wire == 2 ? (int64_t)(len / 4) : 1;
            if (floats)
                for (int64_t i = 0; i < k; i++) floats[nf + i] = load_f32le(payload + 4 * i);
            nf += k;
            break;
        }
        default: break; /* an unknown field: skipped, as protobuf readers do */
        }
    }
    *nfloats = nf;
    return MOKA_OK;
}

moka_status moka_datum_decode(const void *bytes, int64_t nbytes, moka_datum *out, moka_err *err)
{
    if (!out || nbytes < 0 || (!bytes && nbytes > 0))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_datum_decode: bad arguments");
    moka_datum d = {0};
    int64_t nf = 0;
    MOKA_TRY(scan(bytes, nbytes, &d, NULL, &nf, err));
    if (nf > 0) {
        float *f = scratch_get(nf);
        if (!f)
            return moka_errf(err, MOKA_ERR_NOMEM, "Datum: no memory for %lld floats",
                             (long long)nf);
        moka_datum again = {0};
        MOKA_TRY(scan(bytes, nbytes, &again, f, &nf, err));
        d.float_data = f;
        d.float_count = nf;
    }
    *out = d;
    return MOKA_OK;
}

moka_status moka_datum_encode(const moka_datum *d, uint8_t **out, int64_t *nbytes, moka_err *err)
{
    if (!d || !out || !nbytes || d->data_nbytes < 0 || d->float_count < 0 ||
        (d->data_nbytes > 0 && !d->data) || (d->float_count > 0 && !d->float_data))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_datum_encode: bad arguments");
    Caffe__Datum m = CAFFE__DATUM__INIT;
    m.has_channels = m.has_height = m.has_width = m.has_label = 1;
    m.channels = d->channels;
    m.height = d->height;
    m.width = d->width;
    m.label = d->label;
    if (d->data) {
        m.has_data = 1;
        m.data.data = (uint8_t *)d->data; /* only read by pack */
        m.data.len = (size_t)d->data_nbytes;
    }
    if (d->encoded) m.has_encoded = m.encoded = 1;
    if (d->float_count > 0) {
        m.n_float_data = (size_t)d->float_count;
        m.float_data = (float *)d->float_data; /* only read by pack */
    }
    const size_t n = caffe__datum__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return moka_errf(err, MOKA_ERR_NOMEM, "Datum: no memory for %zu bytes", n);
    caffe__datum__pack(&m, buf);
    *out = buf;
    *nbytes = (int64_t)n;
    return MOKA_OK;
}
