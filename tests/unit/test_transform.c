/* tests/unit/test_transform.c -- transform_param's mean_file (a .binaryproto BlobProto this test
 * writes byte by byte, in both the legacy num/channels/height/width form that Caffe's
 * compute_image_mean writes and the `shape` form), the float-sample path, force_color /
 * force_gray for decoded images, and the configuration errors, against hand-computed values.
 * (scale, mean_value, crop and mirror on uint8 samples are covered in test_loader.c.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "data/transform.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/moka_transform_XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(1);
        }
    }
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static int write_bytes(const char *name, const uint8_t *bytes, size_t n)
{
    FILE *f = fopen(tmp_path(name), "wb");
    if (!f) return 1;
    const size_t put = n ? fwrite(bytes, 1, n, f) : 0;
    return (fclose(f) != 0) | (put != n);
}

/* A BlobProto in protobuf wire format, built by hand. With legacy, fields num = 1 (tag 0x08),
 * channels = 2 (0x10), height = 3 (0x18), width = 4 (0x20) carry the dims; otherwise field
 * shape = 7 (0x3a) holds a BlobShape whose packed dim field (0x0a) lists them. Then packed
 * data = 5 (0x2a): `count` little-endian floats. Returns the length. */
static size_t blob_bytes(uint8_t *out, bool legacy, const int *dims, int ndim, const float *vals,
                         int count)
{
    size_t n = 0;
    if (legacy) {
        for (int i = 0; i < 4; i++) {
            out[n++] = (uint8_t)((i + 1) << 3);
            out[n++] = (uint8_t)dims[i];
        }
    } else {
        out[n++] = 0x3a;
        out[n++] = (uint8_t)(ndim + 2);
        out[n++] = 0x0a;
        out[n++] = (uint8_t)ndim;
        for (int i = 0; i < ndim; i++) out[n++] = (uint8_t)dims[i];
    }
    out[n++] = 0x2a;
    /* The length as a varint: 7 bits a byte, low bits first, high bit set on all but the last. */
    for (unsigned len = 4u * (unsigned)count;; len >>= 7) {
        out[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
        if (len <= 0x7f) break;
    }
    for (int i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &vals[i], 4);
        for (int k = 0; k < 4; k++) out[n++] = (uint8_t)(u >> (8 * k));
    }
    return n;
}

static moka_status make(moka_transform *t, const char *text, moka_phase phase, int64_t c, int64_t h,
                        int64_t w, bool encoded, moka_err *err)
{
    moka_pt_doc *doc = NULL;
    MOKA_TRY(moka_pt_parse(text, (int64_t)strlen(text), "t.prototxt",
                           &caffe__transformation_parameter__descriptor, &doc, err));
    const moka_pt_node *tp = moka_pt_root(doc);
    const moka_status st = encoded
                               ? moka_transform_init_encoded(t, tp, phase, "d", c, h, w, err)
                               : moka_transform_init(t, tp, phase, "d", c, h, w, err);
    moka_pt_doc_free(doc);
    return st;
}

enum { C = 2, H = 4, W = 4, N = C * H * W };

/* Input x[i] = 3 i, mean m[i] = i + 0.5 (i = c*16 + h*4 + w, the source index), scale 0.5:
 * (x - m) * 0.5 = i - 0.25. A centre crop of 2 starts at (1, 1), so the output holds sources
 * 5 6 9 10 | 21 22 25 26, each minus 0.25. */
static int mean_file_is_subtracted_before_the_crop(void)
{
    moka_err err = {0};
    float mean[N];
    for (int i = 0; i < N; i++) mean[i] = (float)i + 0.5f;
    uint8_t bytes[512];
    for (int legacy = 0; legacy < 2; legacy++) {
        const int dims[4] = {1, C, H, W};
        const size_t nb = blob_bytes(bytes, legacy, dims, 4, mean, N);
        CHECK_EQ(write_bytes("mean.binaryproto", bytes, nb), 0);
        char text[700];
        snprintf(text, sizeof text, "mean_file: '%s' scale: 0.5 crop_size: 2",
                 tmp_path("mean.binaryproto"));
        moka_transform t;
        CHECK_OK(make(&t, text, MOKA_TEST, C, H, W, false, &err));
        CHECK(t.mean_img != NULL && t.mean == NULL);
        uint8_t x[N];
        for (int i = 0; i < N; i++) x[i] = (uint8_t)(3 * i);
        float out[8];
        moka_transform_u8(&t, x, out, NULL);
        static const float want[8] = {4.75f, 5.75f, 8.75f, 9.75f, 20.75f, 21.75f, 24.75f, 25.75f};
        for (int i = 0; i < 8; i++) CHECK(out[i] == want[i]);
        /* The float path gives the same for the same values. */
        float xf[N];
        for (int i = 0; i < N; i++) xf[i] = (float)(3 * i);
        moka_transform_f32(&t, xf, out, NULL);
        for (int i = 0; i < 8; i++) CHECK(out[i] == want[i]);
        moka_transform_deinit(&t);
    }
    return 0;
}

/* Mirroring flips the output but the mean still comes from the source pixel: a mirrored row of
 * the crop above reads 5.75 4.75 (a mean taken at the output pixel would give 6.25 4.25), as
 * Caffe indexes the mean by the source's data_index. */
static int mirrored_samples_take_the_mean_at_the_source_pixel(void)
{
    moka_err err = {0};
    float mean[N];
    for (int i = 0; i < N; i++) mean[i] = (float)i + 0.5f;
    uint8_t bytes[512];
    const size_t nb = blob_bytes(bytes, true, (const int[]){1, C, H, W}, 4, mean, N);
    CHECK_EQ(write_bytes("mean.binaryproto", bytes, nb), 0);
    char text[700];
    snprintf(text, sizeof text, "mean_file: '%s' scale: 0.5 crop_size: 2 mirror: true",
             tmp_path("mean.binaryproto"));
    moka_transform t;
    CHECK_OK(make(&t, text, MOKA_TEST, C, H, W, false, &err));
    uint8_t x[N];
    for (int i = 0; i < N; i++) x[i] = (uint8_t)(3 * i);
    static const float straight[8] = {4.75f, 5.75f, 8.75f, 9.75f, 20.75f, 21.75f, 24.75f, 25.75f};
    static const float flipped[8] = {5.75f, 4.75f, 9.75f, 8.75f, 21.75f, 20.75f, 25.75f, 24.75f};
    moka_rng rng;
    moka_rng_seed(&rng, 3, 0);
    int nflip = 0, nstraight = 0;
    for (int k = 0; k < 40; k++) {
        float out[8];
        moka_transform_u8(&t, x, out, &rng);
        if (memcmp(out, straight, sizeof out) == 0)
            nstraight++;
        else if (memcmp(out, flipped, sizeof out) == 0)
            nflip++;
        else
            TEST_FAIL_("sample %d is neither the straight nor the mirrored crop", k);
    }
    CHECK(nflip > 5 && nstraight > 5);
    moka_transform_deinit(&t);
    return 0;
}

/* Float samples with one mean_value per channel, scale 2: out = (0.5 i - m_c) * 2. */
static int float_samples_with_channel_means(void)
{
    moka_err err = {0};
    moka_transform t;
    CHECK_OK(make(&t, "mean_value: 1 mean_value: 2 scale: 2", MOKA_TRAIN, C, H, W, false, &err));
    float x[N], out[N];
    for (int i = 0; i < N; i++) x[i] = 0.5f * (float)i;
    moka_transform_f32(&t, x, out, NULL);
    CHECK(out[0] == -2.0f);  /* (0 - 1) * 2 */
    CHECK(out[15] == 13.0f); /* (7.5 - 1) * 2 */
    CHECK(out[16] == 12.0f); /* (8 - 2) * 2 */
    CHECK(out[31] == 27.0f); /* (15.5 - 2) * 2 */
    moka_transform_deinit(&t);
    return 0;
}

static int force_color_and_gray_apply_to_decoded_images(void)
{
    moka_err err = {0};
    moka_pt_doc *doc = NULL;
    static const struct {
        const char *text;
        int want;
    } cases[] = {{"", 0}, {"force_color: true", 3}, {"force_gray: true", 1}};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(moka_pt_parse(cases[i].text, (int64_t)strlen(cases[i].text), "t.prototxt",
                               &caffe__transformation_parameter__descriptor, &doc, &err));
        int ch = -1;
        CHECK_OK(moka_transform_forced_channels(moka_pt_root(doc), "d", &ch, &err));
        CHECK_EQ(ch, cases[i].want);
        moka_pt_doc_free(doc);
    }
    moka_transform t;
    CHECK_OK(make(&t, "force_gray: true", MOKA_TRAIN, 1, 4, 4, true, &err));
    CHECK(t.force_gray && !t.force_color);
    moka_transform_deinit(&t);
    CHECK_OK(make(&t, "force_color: true", MOKA_TRAIN, 3, 4, 4, true, &err));
    CHECK(t.force_color && !t.force_gray);
    moka_transform_deinit(&t);
    /* Decoded to the wrong channel count: the caller's bug, not the user's. */
    CHECK_STATUS(make(&t, "force_color: true", MOKA_TRAIN, 1, 4, 4, true, &err),
                 MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "asks for 3-channel images but the decoded samples have 1 channels");
    /* Both at once, as in Caffe, is an error; on raw samples either is. */
    CHECK_STATUS(make(&t, "force_color: true force_gray: true", MOKA_TRAIN, 3, 4, 4, true, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "t.prototxt:1:19: layer 'd': transform_param cannot have both "
                            "force_color and force_gray");
    CHECK_STATUS(make(&t, "force_gray: true", MOKA_TRAIN, 1, 4, 4, false, &err),
                 MOKA_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "transform_param.force_gray is not supported");
    return 0;
}

/* Expects init with `text` (%s: the mean file's path) to fail with code and message. */
static int mean_error(const char *text, moka_status code, const char *want)
{
    moka_err err = {0};
    char buf[800];
    snprintf(buf, sizeof buf, text, tmp_path("bad.binaryproto"));
    moka_transform t;
    CHECK_STATUS(make(&t, buf, MOKA_TRAIN, C, H, W, false, &err), code);
    CHECK_CONTAINS(err.msg, "layer 'd'");
    CHECK_CONTAINS(err.msg, want);
    moka_transform_deinit(&t);
    return 0;
}

static int mean_file_errors(void)
{
    float vals[N] = {0};
    uint8_t bytes[512];
    /* mean_file together with mean_value. */
    CHECK_EQ(mean_error("mean_file: '%s' mean_value: 3", MOKA_ERR_CONFIG,
                        "cannot have both mean_file and mean_value"),
             0);
    /* Missing file. */
    CHECK_EQ(mean_error("mean_file: '%s.gone'", MOKA_ERR_IO, "cannot open mean_file"), 0);
    /* Another image size: (1, 2, 3, 3) for samples of 2 x 4 x 4 (a crop does not change that). */
    size_t nb = blob_bytes(bytes, true, (const int[]){1, 2, 3, 3}, 4, vals, 18);
    CHECK_EQ(write_bytes("bad.binaryproto", bytes, nb), 0);
    CHECK_EQ(mean_error("mean_file: '%s' crop_size: 3", MOKA_ERR_IO,
                        "has shape 1 2 3 3 but the samples are 1 2 4 4"),
             0);
    /* A 3-D shape (C, H, W) is read as (1, C, H, W); a 2-D one is not the samples' size. */
    nb = blob_bytes(bytes, false, (const int[]){C, H, W}, 3, vals, N);
    CHECK_EQ(write_bytes("bad.binaryproto", bytes, nb), 0);
    char text[700];
    snprintf(text, sizeof text, "mean_file: '%s'", tmp_path("bad.binaryproto"));
    moka_err err = {0};
    moka_transform t;
    CHECK_OK(make(&t, text, MOKA_TRAIN, C, H, W, false, &err));
    moka_transform_deinit(&t);
    nb = blob_bytes(bytes, false, (const int[]){H, W}, 2, vals, H * W);
    CHECK_EQ(write_bytes("bad.binaryproto", bytes, nb), 0);
    CHECK_EQ(mean_error("mean_file: '%s'", MOKA_ERR_IO, "has shape 1 1 4 4"), 0);
    /* The right shape but one value short. */
    nb = blob_bytes(bytes, true, (const int[]){1, C, H, W}, 4, vals, N - 1);
    CHECK_EQ(write_bytes("bad.binaryproto", bytes, nb), 0);
    CHECK_EQ(mean_error("mean_file: '%s'", MOKA_ERR_IO, "(32) but holds 31 values"), 0);
    /* Empty, garbage, and cut in the middle of the data. */
    CHECK_EQ(write_bytes("bad.binaryproto", bytes, 0), 0);
    CHECK_EQ(mean_error("mean_file: '%s'", MOKA_ERR_IO, "is not a Caffe BlobProto (empty file)"),
             0);
    CHECK_EQ(write_bytes("bad.binaryproto", (const uint8_t *)"\xff\xff\xff garbage", 11), 0);
    CHECK_EQ(mean_error("mean_file: '%s'", MOKA_ERR_IO, "is not a Caffe BlobProto"), 0);
    nb = blob_bytes(bytes, true, (const int[]){1, C, H, W}, 4, vals, N);
    CHECK_EQ(write_bytes("bad.binaryproto", bytes, nb - 10), 0);
    CHECK_EQ(mean_error("mean_file: '%s'", MOKA_ERR_IO, "is not a Caffe BlobProto"), 0);
    return 0;
}

MOKA_TEST_MAIN(mean_file_is_subtracted_before_the_crop,
               mirrored_samples_take_the_mean_at_the_source_pixel, float_samples_with_channel_means,
               force_color_and_gray_apply_to_decoded_images, mean_file_errors)
