/* tests/layers/test_data.c -- Caffe's Data layer over LMDBs: batches equal the DB's records (raw
 * data, float_data packed and not, encoded PNG) in key order, wrapping at the end; rand_skip
 * starts the stream at a record in [0, rand_skip); seek resumes exactly where an uninterrupted
 * run would be (random mirror draws included); transform_param applies; and every configuration
 * or data problem is one clear error. The expected values are the records themselves, computed
 * from the formulas that wrote them (tests/ref/gen_lmdb_fixture.py for the committed fixture).
 * Data layers have no gradient, so there is no gradient check.
 */
#define _XOPEN_SOURCE 700 /* nftw (cleanup) */

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "io/datum.h"
#include "io/db.h"
#include "io/image.h"
#include "moka/log.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/moka_data_XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(1);
        }
    }
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

/* The standard DB: N records of 1 x 3 x 4, pixel j of record i = (i * 12 + j) * 5 mod 256,
 * label 100 + i. */
enum { N = 10, H = 3, W = 4, HW = H * W };
static uint8_t pix(int i, int j) { return (uint8_t)((i * HW + j) * 5 % 256); }

/* Writes DB `name` of n records; record `odd` (if >= 0) gets shape 1 x 4 x 3 instead, and
 * record `garbage` (if >= 0) a value that is not a Datum. */
static int write_db(const char *name, int n, int odd, int garbage)
{
    moka_err err = {0};
    moka_db_writer *w;
    CHECK_OK(moka_db_writer_create(tmp_path(name), &w, &err));
    for (int i = 0; i < n; i++) {
        uint8_t px[HW];
        for (int j = 0; j < HW; j++) px[j] = pix(i, j);
        const moka_datum d = {.channels = 1,
                              .height = i == odd ? W : H,
                              .width = i == odd ? H : W,
                              .label = 100 + i,
                              .data = px,
                              .data_nbytes = HW};
        uint8_t *val;
        int64_t nb;
        CHECK_OK(moka_datum_encode(&d, &val, &nb, &err));
        char key[32];
        snprintf(key, sizeof key, "%08d", i);
        if (i == garbage)
            CHECK_OK(moka_db_writer_put(w, key, "\x22\x7f", 2, &err));
        else
            CHECK_OK(moka_db_writer_put(w, key, val, nb, &err));
        free(val);
    }
    CHECK_OK(moka_db_writer_commit(w, &err));
    return 0;
}

static moka_status make_layer(moka_harness *h, const char *source, const char *extra,
                              const char *transform, moka_phase phase, uint64_t seed, moka_err *err)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "name: 'mnist' type: 'Data' top: 'data' top: 'label' transform_param { %s } "
             "data_param { source: '%s' %s }",
             transform, source[0] == '/' ? source : tmp_path(source), extra);
    MOKA_TRY(moka_harness_init(h, cfg, phase, seed, err));
    return moka_harness_setup(h, err);
}

static int batches_match_the_db_and_wrap_around(void)
{
    moka_err err = {0};
    moka_log_set(NULL, NULL, MOKA_LOG_WARN); /* no "N records of ..." line per layer */
    CHECK(!write_db("std", N, -1, -1));
    moka_harness h;
    CHECK_OK(
        make_layer(&h, "std", "backend: LMDB batch_size: 4", "scale: 0.5", MOKA_TRAIN, 1, &err));
    CHECK(h.layer->ops->backward_cpu == NULL);
    const moka_tensor *data = h.top[0], *label = h.top[1];
    CHECK_EQ(data->ndim, 4);
    CHECK(data->shape[0] == 4 && data->shape[1] == 1 && data->shape[2] == H && data->shape[3] == W);
    CHECK_EQ(label->ndim, 1);
    CHECK_EQ(label->shape[0], 4);
    /* Key order, wrapping after record 9: 0-3, 4-7, 8 9 0 1, 2-5, 6-9. */
    for (int step = 0; step < 5; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 4; b++) {
            const int i = (step * 4 + b) % N;
            CHECK_EQ(label->data[b], 100 + i);
            for (int j = 0; j < HW; j++) CHECK(data->data[b * HW + j] == pix(i, j) * 0.5f);
        }
    }
    moka_harness_deinit(&h);
    return 0;
}

/* The committed python3-lmdb fixture: raw, unpacked-float and packed-float records, 2 x 3 x 4,
 * with mean_value per channel and a centre crop of 2 (TEST): rows 0-1, columns 1-2. */
static int reads_the_independent_fixture_with_mean_and_crop(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(make_layer(&h, MOKA_TEST_DATA "/lmdb_fixture", "backend: LMDB batch_size: 3",
                        "mean_value: 10 mean_value: 20 crop_size: 2 scale: 2", MOKA_TEST, 3, &err));
    const moka_tensor *data = h.top[0], *label = h.top[1];
    CHECK(data->shape[0] == 3 && data->shape[1] == 2 && data->shape[2] == 2 && data->shape[3] == 2);
    for (int step = 0; step < 4; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 3; b++) {
            const int i = (step * 3 + b) % 5;
            CHECK_EQ(label->data[b], i - 1);
            for (int c = 0; c < 2; c++)
                for (int y = 0; y < 2; y++)
                    for (int x = 0; x < 2; x++) {
                        const int j = c * 12 + y * 4 + x + 1;
                        const float v = i <= 2   ? (float)((i * 31 + j * 7) % 256)
                                        : i == 3 ? j * 0.5f - 3
                                                 : j * 0.25f + 1;
                        const float got = data->data[((b * 2 + c) * 2 + y) * 2 + x];
                        CHECK_NEAR(got, (v - (c ? 20.0f : 10.0f)) * 2.0f, 1e-6);
                    }
        }
    }
    moka_harness_deinit(&h);
    return 0;
}

/* Encoded records: PNG files made by moka_image_encode, decoded back by the layer in their own
 * channel count (3 here, BGR planes as encoded). */
static int decodes_encoded_records(void)
{
    moka_err err = {0};
    moka_db_writer *w;
    CHECK_OK(moka_db_writer_create(tmp_path("png"), &w, &err));
    for (int i = 0; i < 3; i++) {
        uint8_t px[3 * HW];
        for (int j = 0; j < 3 * HW; j++) px[j] = (uint8_t)(i * 50 + j * 3);
        uint8_t *png, *val;
        int64_t npng, nb;
        CHECK_OK(moka_image_encode(px, 3, H, W, "png", &png, &npng, &err));
        const moka_datum d = {.label = i, .encoded = true, .data = png, .data_nbytes = npng};
        CHECK_OK(moka_datum_encode(&d, &val, &nb, &err));
        char key[32];
        snprintf(key, sizeof key, "%08d", i);
        CHECK_OK(moka_db_writer_put(w, key, val, nb, &err));
        free(val);
        free(png);
    }
    CHECK_OK(moka_db_writer_commit(w, &err));
    moka_harness h;
    CHECK_OK(make_layer(&h, "png", "backend: LMDB batch_size: 2", "", MOKA_TRAIN, 1, &err));
    CHECK(h.top[0]->shape[1] == 3 && h.top[0]->shape[2] == H && h.top[0]->shape[3] == W);
    for (int step = 0; step < 2; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 2; b++) {
            const int i = (step * 2 + b) % 3;
            CHECK_EQ(h.top[1]->data[b], i);
            for (int j = 0; j < 3 * HW; j++)
                CHECK_EQ(h.top[0]->data[b * 3 * HW + j], (i * 50 + j * 3) % 256);
        }
    }
    moka_harness_deinit(&h);
    /* force_gray decodes the same records to one channel. */
    CHECK_OK(make_layer(&h, "png", "backend: LMDB batch_size: 2", "force_gray: true", MOKA_TRAIN, 1,
                        &err));
    CHECK(h.top[0]->shape[1] == 1 && h.top[0]->shape[2] == H && h.top[0]->shape[3] == W);
    CHECK_OK(moka_harness_forward(&h, &err));
    moka_harness_deinit(&h);
    return 0;
}

/* The label of the first record a layer with this config and seed reads. */
static int first_label(uint64_t seed, const char *extra, int *out)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(make_layer(&h, "std", extra, "", MOKA_TRAIN, seed, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    const int first = (int)h.top[1]->data[0] - 100;
    for (int b = 1; b < 4; b++) CHECK_EQ(h.top[1]->data[b], 100 + (first + b) % N);
    *out = first;
    moka_harness_deinit(&h);
    return 0;
}

static int rand_skip_starts_within_its_range(void)
{
    int seen[N] = {0};
    for (uint64_t seed = 1; seed <= 40; seed++) {
        int f;
        CHECK(!first_label(seed, "backend: LMDB batch_size: 4 rand_skip: 7", &f));
        CHECK(f >= 0 && f < 7);
        seen[f]++;
        int again;
        CHECK(!first_label(seed, "backend: LMDB batch_size: 4 rand_skip: 7", &again));
        CHECK_EQ(again, f); /* the same seed skips the same records */
        CHECK(!first_label(seed, "backend: LMDB batch_size: 4", &again));
        CHECK_EQ(again, 0);
    }
    int distinct = 0;
    for (int i = 0; i < N; i++) distinct += seen[i] > 0;
    CHECK(distinct >= 4); /* 40 draws from 7 values */
    return 0;
}

/* seek(step * B) gives what `step` forwards would have: the records, and the mirror draws. */
static int seek_resumes_exactly(void)
{
    moka_err err = {0};
    const char *extra = "backend: LMDB batch_size: 3 rand_skip: 5";
    float want[4][3 * HW], want_label[4][3];
    moka_harness h;
    CHECK_OK(make_layer(&h, "std", extra, "mirror: true", MOKA_TRAIN, 11, &err));
    int flips = 0;
    for (int step = 0; step < 4; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        memcpy(want[step], h.top[0]->data, sizeof want[step]);
        memcpy(want_label[step], h.top[1]->data, sizeof want_label[step]);
        for (int b = 0; b < 3; b++) {
            const int i = (int)h.top[1]->data[b] - 100;
            const float *x = h.top[0]->data + b * HW;
            const bool flipped = x[0] == pix(i, W - 1);
            flips += flipped;
            for (int y = 0; y < H; y++)
                for (int c = 0; c < W; c++)
                    CHECK_EQ(x[y * W + c], pix(i, y * W + (flipped ? W - 1 - c : c)));
        }
    }
    CHECK(flips > 0 && flips < 12);
    moka_harness_deinit(&h);

    for (int s = 0; s < 4; s++) {
        CHECK_OK(make_layer(&h, "std", extra, "mirror: true", MOKA_TRAIN, 11, &err));
        CHECK_OK(h.layer->ops->seek(h.layer, s * 3, &err));
        for (int step = s; step < 4; step++) {
            CHECK_OK(moka_harness_forward(&h, &err));
            CHECK(memcmp(h.top[0]->data, want[step], sizeof want[step]) == 0);
            CHECK(memcmp(h.top[1]->data, want_label[step], sizeof want_label[step]) == 0);
        }
        moka_harness_deinit(&h);
    }
    /* A seek past the end of the DB wraps: record 21 is DB record 21 mod 10 = 1. */
    CHECK_OK(make_layer(&h, "std", "backend: LMDB batch_size: 3", "", MOKA_TRAIN, 11, &err));
    CHECK_OK(h.layer->ops->seek(h.layer, 21, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    for (int b = 0; b < 3; b++) CHECK_EQ(h.top[1]->data[b], 100 + (21 + b) % N);
    moka_harness_deinit(&h);
    return 0;
}

static int expect_setup_error(const char *source, const char *extra, const char *transform,
                              moka_status want, const char *text)
{
    moka_err err = {0};
    moka_harness h;
    const moka_status st = make_layer(&h, source, extra, transform, MOKA_TRAIN, 1, &err);
    moka_harness_deinit(&h);
    if (st != want)
        TEST_FAIL_("%s: got %s (%s), want %s", extra, moka_status_name(st), err.msg,
                   moka_status_name(want));
    CHECK_CONTAINS(err.msg, "layer 'mnist'");
    CHECK_CONTAINS(err.msg, text);
    return 0;
}

static int config_problems_are_errors_from_setup(void)
{
    CHECK(!expect_setup_error("std", "batch_size: 4", "", MOKA_ERR_UNSUPPORTED,
                              "backend LEVELDB is not supported"));
    CHECK(!expect_setup_error("std", "backend: LEVELDB batch_size: 4", "", MOKA_ERR_UNSUPPORTED,
                              "convert the data to LMDB"));
    CHECK(!expect_setup_error("std", "backend: LMDB", "", MOKA_ERR_CONFIG,
                              "batch_size must be positive"));
    CHECK(!expect_setup_error("std", "backend: LMDB batch_size: 2 prefetch: 0", "", MOKA_ERR_CONFIG,
                              "prefetch must be in 1..1024"));
    CHECK(!expect_setup_error("std", "backend: LMDB batch_size: 2 scale: 0.5", "",
                              MOKA_ERR_UNSUPPORTED, "set transform_param.scale instead"));
    CHECK(!expect_setup_error("std", "backend: LMDB batch_size: 2", "crop_size: 5", MOKA_ERR_CONFIG,
                              "crop_size 5 is larger"));
    CHECK(!expect_setup_error("missing_db", "backend: LMDB batch_size: 2", "", MOKA_ERR_IO,
                              "missing_db': cannot open the LMDB"));
    CHECK(!expect_setup_error("std", "backend: LMDB batch_size: 2", "force_color: true",
                              MOKA_ERR_UNSUPPORTED, "force_color"));
    CHECK(!write_db("empty", 0, -1, -1));
    CHECK(!expect_setup_error("empty", "backend: LMDB batch_size: 2", "", MOKA_ERR_IO,
                              "holds no records"));
    CHECK(!write_db("garbage0", 3, -1, 0));
    CHECK(!expect_setup_error("garbage0", "backend: LMDB batch_size: 2", "", MOKA_ERR_IO,
                              "record '00000000' in '"));
    /* A source without one is reported, not read from the current directory. */
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(moka_harness_init(&h,
                               "name: 'mnist' type: 'Data' top: 'data' "
                               "data_param { backend: LMDB batch_size: 2 }",
                               MOKA_TRAIN, 1, &err));
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "data_param.source is required");
    moka_harness_deinit(&h);
    return 0;
}

/* Records that do not fit the first record's shape, or are not Datums, stop the run at the
 * forward that would use them, with the record's key. */
static int bad_records_are_errors_naming_the_key(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK(!write_db("odd5", N, 5, -1));
    CHECK_OK(make_layer(&h, "odd5", "backend: LMDB batch_size: 4", "", MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_forward(&h, &err)); /* records 0-3 */
    CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'mnist': record '00000005'");
    CHECK_CONTAINS(err.msg, "is 1 x 4 x 3; want 1 x 3 x 4");
    moka_harness_deinit(&h);

    CHECK(!write_db("garbage6", N, -1, 6));
    CHECK_OK(make_layer(&h, "garbage6", "backend: LMDB batch_size: 4", "", MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_forward(&h, &err));
    CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "record '00000006'");
    CHECK_CONTAINS(err.msg, "Datum: field 4 claims more bytes");
    moka_harness_deinit(&h);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Runs last: deletes everything the tests wrote. */
static int cleanup(void)
{
    CHECK_EQ(nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    return 0;
}

MOKA_TEST_MAIN(batches_match_the_db_and_wrap_around,
               reads_the_independent_fixture_with_mean_and_crop, decodes_encoded_records,
               rand_skip_starts_within_its_range, seek_resumes_exactly,
               config_problems_are_errors_from_setup, bad_records_are_errors_naming_the_key,
               cleanup)
