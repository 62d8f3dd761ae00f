/* tests/unit/test_datum.c -- Caffe's Datum (src/io/datum.c): what moka writes is byte for byte the
 * protobuf encoding worked out by hand from the wire-format rules; records built by hand in every
 * form a protobuf writer may use (negative labels, unknown fields, packed and unpacked floats,
 * fields out of order) decode to the values put in; protobuf-c's own parser agrees with moka's;
 * and truncated or garbage records give one clear error each.
 */
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "io/datum.h"
#include "test.h"

/* Datum { channels: 1 height: 2 width: 3 data: "\x00\x07\xff\x80\x01\x02" label: 7 }, encoded by
 * hand: key = field << 3 | wire type; varints below 128 are one byte. */
static const uint8_t small_raw[] = {0x08, 1,    0x10, 2,    0x18, 3,    0x22, 6,
                                    0x00, 0x07, 0xff, 0x80, 0x01, 0x02, 0x28, 7};

static int encode_matches_the_wire_format(void)
{
    moka_err err = {0};
    static const uint8_t px[6] = {0x00, 0x07, 0xff, 0x80, 0x01, 0x02};
    const moka_datum d = {
        .channels = 1, .height = 2, .width = 3, .label = 7, .data = px, .data_nbytes = 6};
    uint8_t *buf = NULL;
    int64_t n = 0;
    CHECK_OK(moka_datum_encode(&d, &buf, &n, &err));
    CHECK_EQ(n, (int64_t)sizeof small_raw);
    CHECK(memcmp(buf, small_raw, sizeof small_raw) == 0);
    free(buf);

    /* encoded: true adds field 7 (varint 1) after the label; a negative label is a 10-byte
     * varint (int32 values are sign-extended to 64 bits). */
    static const uint8_t jpg[3] = {0xff, 0xd8, 0xff};
    const moka_datum e = {.channels = 0,
                          .height = 0,
                          .width = 0,
                          .label = -2,
                          .encoded = true,
                          .data = jpg,
                          .data_nbytes = 3};
    static const uint8_t want[] = {0x08, 0,    0x10, 0,    0x18, 0,    0x22, 3,
                                   0xff, 0xd8, 0xff, 0x28, 0xfe, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x38, 1};
    CHECK_OK(moka_datum_encode(&e, &buf, &n, &err));
    CHECK_EQ(n, (int64_t)sizeof want);
    CHECK(memcmp(buf, want, sizeof want) == 0);
    free(buf);
    return 0;
}

static int decodes_a_raw_record(void)
{
    moka_err err = {0};
    moka_datum d;
    CHECK_OK(moka_datum_decode(small_raw, sizeof small_raw, &d, &err));
    CHECK_EQ(d.channels, 1);
    CHECK_EQ(d.height, 2);
    CHECK_EQ(d.width, 3);
    CHECK_EQ(d.label, 7);
    CHECK(!d.encoded);
    CHECK_EQ(d.data_nbytes, 6);
    CHECK(d.data == small_raw + 8); /* borrowed, not copied */
    CHECK(d.float_data == NULL);
    CHECK_EQ(d.float_count, 0);
    return 0;
}

/* float_data: two unpacked elements (key 0x35 = field 6, wire type 5), then a packed run (key
 * 0x32, length 8) of two more; label -1 (10 bytes), an unknown length-delimited field 9 and an
 * unknown fixed64 field 10 that must be skipped; width given twice (the last one counts). */
static int decodes_floats_in_both_forms_and_skips_unknown_fields(void)
{
    uint8_t b[128];
    size_t n = 0;
    const float f[4] = {1.5f, -2.25f, 3e-3f, 1e6f};
    b[n++] = 0x18, b[n++] = 9;                             /* width 9, overridden below */
    b[n++] = 0x4a, b[n++] = 2, b[n++] = 'h', b[n++] = 'i'; /* field 9, wire 2 */
    for (int i = 0; i < 2; i++) {
        b[n++] = 0x35;
        memcpy(b + n, &f[i], 4); /* the test machine is little-endian, like the wire format */
        n += 4;
    }
    b[n++] = 0x51; /* field 10, wire 1: 8 bytes */
    memset(b + n, 0xab, 8);
    n += 8;
    b[n++] = 0x32, b[n++] = 8;
    memcpy(b + n, &f[2], 8);
    n += 8;
    b[n++] = 0x28;
    for (int i = 0; i < 9; i++) b[n++] = 0xff;
    b[n++] = 0x01;
    b[n++] = 0x08, b[n++] = 4, b[n++] = 0x10, b[n++] = 1, b[n++] = 0x18, b[n++] = 1;

    moka_err err = {0};
    moka_datum d;
    CHECK_OK(moka_datum_decode(b, (int64_t)n, &d, &err));
    CHECK_EQ(d.channels, 4);
    CHECK_EQ(d.height, 1);
    CHECK_EQ(d.width, 1);
    CHECK_EQ(d.label, -1);
    CHECK(d.data == NULL);
    CHECK_EQ(d.float_count, 4);
    for (int i = 0; i < 4; i++) CHECK(d.float_data[i] == f[i]);

    /* protobuf-c's parser, an independent reader, sees the same record. */
    Caffe__Datum *m = caffe__datum__unpack(NULL, n, b);
    CHECK(m != NULL);
    CHECK_EQ(m->channels, 4);
    CHECK_EQ(m->width, 1);
    CHECK_EQ(m->label, -1);
    CHECK_EQ(m->n_float_data, 4);
    for (int i = 0; i < 4; i++) CHECK(m->float_data[i] == f[i]);
    caffe__datum__free_unpacked(m, NULL);
    return 0;
}

static int float_records_round_trip_through_protobuf_c(void)
{
    moka_err err = {0};
    float f[30];
    for (int i = 0; i < 30; i++) f[i] = (float)i * 0.1f - 1.0f;
    const moka_datum d = {.channels = 3,
                          .height = 2,
                          .width = 5,
                          .label = 123456,
                          .float_data = f,
                          .float_count = 30};
    uint8_t *buf;
    int64_t n;
    CHECK_OK(moka_datum_encode(&d, &buf, &n, &err));
    Caffe__Datum *m = caffe__datum__unpack(NULL, (size_t)n, buf);
    CHECK(m != NULL);
    CHECK_EQ(m->n_float_data, 30);
    CHECK(!m->has_data);
    CHECK_EQ(m->label, 123456);
    moka_datum back;
    CHECK_OK(moka_datum_decode(buf, n, &back, &err));
    CHECK_EQ(back.channels, 3);
    CHECK_EQ(back.height, 2);
    CHECK_EQ(back.width, 5);
    CHECK_EQ(back.label, 123456);
    CHECK_EQ(back.float_count, 30);
    for (int i = 0; i < 30; i++) {
        CHECK(back.float_data[i] == f[i]);
        CHECK(m->float_data[i] == f[i]);
    }
    caffe__datum__free_unpacked(m, NULL);
    free(buf);
    return 0;
}

static int empty_record_is_all_defaults(void)
{
    moka_err err = {0};
    moka_datum d;
    CHECK_OK(moka_datum_decode("", 0, &d, &err));
    CHECK_EQ(d.channels, 0);
    CHECK_EQ(d.data_nbytes, 0);
    CHECK(!d.encoded);
    return 0;
}

static int expect_bad(const uint8_t *b, size_t n, const char *text)
{
    moka_err err = {0};
    moka_datum d;
    CHECK_STATUS(moka_datum_decode(b, (int64_t)n, &d, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "Datum: ");
    CHECK_CONTAINS(err.msg, text);
    return 0;
}

static int truncated_and_garbage_records_are_errors(void)
{
    /* Every proper prefix of a record that ends inside a field is an error. */
    for (size_t cut = 1; cut < sizeof small_raw; cut++) {
        const bool at_field_end = cut == 2 || cut == 4 || cut == 6 || cut == 14;
        moka_err err = {0};
        moka_datum d;
        const moka_status st = moka_datum_decode(small_raw, (int64_t)cut, &d, &err);
        if (at_field_end) {
            CHECK_OK(st);
        } else if (st != MOKA_ERR_IO) {
            TEST_FAIL_("prefix of %zu bytes decoded: %s", cut, err.msg);
        }
    }
    CHECK(!expect_bad((const uint8_t[]){0x22, 10, 1, 2}, 4, "field 4 claims more bytes"));
    CHECK(!expect_bad((const uint8_t[]){0x08, 0x80, 0x80}, 3, "truncated varint of field 1"));
    CHECK(!expect_bad((const uint8_t[]){0x35, 1, 2}, 3, "truncated fixed32 of field 6"));
    CHECK(!expect_bad((const uint8_t[]){0x51, 1, 2}, 3, "truncated fixed64 of field 10"));
    CHECK(!expect_bad((const uint8_t[]){0x0b}, 1, "wire type 3")); /* a group */
    CHECK(!expect_bad((const uint8_t[]){0x20, 5}, 2, "field 4 has wire type 0, expected 2"));
    CHECK(!expect_bad((const uint8_t[]){0x32, 3, 0, 0, 0}, 5, "not a whole number of floats"));
    CHECK(!expect_bad((const uint8_t[]){0x00, 1}, 2, "invalid field number 0"));
    /* Eleven continuation bytes: longer than any varint. */
    static const uint8_t longv[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(!expect_bad(longv, sizeof longv, "truncated varint"));
    /* Text is not a Datum ('P' = field 10 with wire type 0, then 'N' 'G' ... ). */
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    moka_err err = {0};
    moka_datum d;
    CHECK_STATUS(moka_datum_decode(png, sizeof png, &d, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "Datum: ");
    return 0;
}

MOKA_TEST_MAIN(encode_matches_the_wire_format, decodes_a_raw_record,
               decodes_floats_in_both_forms_and_skips_unknown_fields,
               float_records_round_trip_through_protobuf_c, empty_record_is_all_defaults,
               truncated_and_garbage_records_are_errors)
