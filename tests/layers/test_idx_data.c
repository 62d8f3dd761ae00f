/* tests/layers/test_idx_data.c -- the IDXData layer on IDX files this test writes: batches equal
 * the file contents (after scale/mean/crop), wrap around, shuffle per epoch reproducibly, and
 * every configuration or file problem is reported from setup with its message. IDXData has no
 * gradient, so there is no gradient check; the expected values are the file bytes themselves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "moka/log.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/moka_idxdata_XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(1);
        }
    }
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

/* Writes an IDX ubyte file (gzip when the name ends in .gz) with the given dims and data. */
static int write_idx(const char *name, int ndim, const uint32_t *dims, const uint8_t *data,
                     size_t ndata)
{
    uint8_t head[4 + 4 * 8] = {0, 0, 0x08, (uint8_t)ndim};
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++) head[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
    const size_t nhead = 4 + 4 * (size_t)ndim;
    const char *path = tmp_path(name);
    const size_t len = strlen(path);
    if (len > 3 && strcmp(path + len - 3, ".gz") == 0) {
        gzFile g = gzopen(path, "wb");
        if (!g) return 1;
        int ok = gzwrite(g, head, (unsigned)nhead) == (int)nhead;
        if (ndata) ok &= gzwrite(g, data, (unsigned)ndata) == (int)ndata;
        return (gzclose(g) == Z_OK && ok) ? 0 : 1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    int ok = fwrite(head, 1, nhead, f) == nhead;
    if (ndata) ok &= fwrite(data, 1, ndata, f) == ndata;
    return (fclose(f) == 0 && ok) ? 0 : 1;
}

/* The standard fixture: N = 10 images of 3 x 4, pixel (i, j) = (i * 12 + j) * 3 mod 256, and
 * label i = 9 - i, so a label names its image. */
enum { N = 10, H = 3, W = 4, HW = H * W };
static uint8_t pix(int i, int j) { return (uint8_t)((i * HW + j) * 3 % 256); }
static int image_of_label(float label) { return 9 - (int)label; }

static int write_standard(const char *images, const char *labels)
{
    uint8_t im[N * HW], lb[N];
    for (int i = 0; i < N; i++) {
        lb[i] = (uint8_t)(9 - i);
        for (int j = 0; j < HW; j++) im[i * HW + j] = pix(i, j);
    }
    if (write_idx(images, 3, (const uint32_t[]){N, H, W}, im, sizeof im)) return 1;
    return write_idx(labels, 1, (const uint32_t[]){N}, lb, sizeof lb);
}

/* A harness for an IDXData layer over tmp files `images`/`labels` with extra config text. */
static moka_status make_layer(moka_harness *h, const char *images, const char *labels,
                              const char *extra, const char *transform, moka_phase phase,
                              uint64_t seed, moka_err *err)
{
    char cfg[2048];
    char lab[600] = "";
    if (labels) snprintf(lab, sizeof lab, "labels: '%s' ", tmp_path(labels));
    snprintf(cfg, sizeof cfg,
             "name: 'mnist' type: 'IDXData' top: 'data' %s transform_param { %s } "
             "idx_data_param { images: '%s' %s %s }",
             labels ? "top: 'label'" : "", transform, images[0] == '/' ? images : tmp_path(images),
             lab, extra);
    MOKA_TRY(moka_harness_init(h, cfg, phase, seed, err));
    return moka_harness_setup(h, err);
}

static int batches_match_the_file_and_wrap_around(void)
{
    moka_err err = {0};
    moka_log_set(NULL, NULL, MOKA_LOG_WARN); /* no "N samples of ..." line per layer */
    CHECK_EQ(write_standard("im.idx", "lb.idx"), 0);
    moka_harness h;
    CHECK_OK(
        make_layer(&h, "im.idx", "lb.idx", "batch_size: 4", "scale: 0.5", MOKA_TRAIN, 1, &err));
    CHECK(h.layer->ops->backward_cpu == NULL);
    const moka_tensor *data = h.top[0], *label = h.top[1];
    CHECK_EQ(data->ndim, 4);
    CHECK(data->shape[0] == 4 && data->shape[1] == 1 && data->shape[2] == H && data->shape[3] == W);
    CHECK_EQ(label->ndim, 1);
    CHECK_EQ(label->shape[0], 4);
    /* File order, wrapping after sample 9: 0-3, 4-7, 8 9 0 1, 2-5. */
    for (int step = 0; step < 4; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 4; b++) {
            const int i = (step * 4 + b) % N;
            CHECK_EQ(label->data[b], 9 - i);
            for (int j = 0; j < HW; j++) CHECK(data->data[b * HW + j] == pix(i, j) * 0.5f);
        }
    }
    moka_harness_deinit(&h);
    return 0;
}

/* Reads `steps` batches of 4 and returns the image index of every sample (checking that each
 * sample's pixels are those of the image its label names). */
static int read_order(uint64_t seed, moka_phase phase, int steps, int *order)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(
        make_layer(&h, "im.idx", "lb.idx", "batch_size: 4 shuffle: true", "", phase, seed, &err));
    for (int step = 0; step < steps; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 4; b++) {
            const int i = image_of_label(h.top[1]->data[b]);
            CHECK(i >= 0 && i < N);
            for (int j = 0; j < HW; j++) CHECK(h.top[0]->data[b * HW + j] == pix(i, j));
            order[step * 4 + b] = i;
        }
    }
    moka_harness_deinit(&h);
    return 0;
}

static int shuffle_covers_every_index_once_per_epoch(void)
{
    enum { STEPS = 15, S = STEPS * 4, EPOCHS = S / N };
    CHECK_EQ(write_standard("im.idx", "lb.idx"), 0);
    int a[S], b[S], c[S], t[S];
    CHECK_EQ(read_order(7, MOKA_TRAIN, STEPS, a), 0);
    for (int e = 0; e < EPOCHS; e++) {
        int seen[N] = {0};
        for (int k = 0; k < N; k++) seen[a[e * N + k]]++;
        for (int i = 0; i < N; i++) CHECK_EQ(seen[i], 1);
    }
    int identity = 1, same_as_first = 1;
    for (int k = 0; k < N; k++) identity &= a[k] == k;
    for (int k = 0; k < N; k++) same_as_first &= a[N + k] == a[k];
    CHECK(!identity);      /* shuffled at all */
    CHECK(!same_as_first); /* reshuffled for epoch 1 */
    CHECK_EQ(read_order(7, MOKA_TRAIN, STEPS, b), 0);
    CHECK(memcmp(a, b, sizeof a) == 0); /* same seed, same order */
    CHECK_EQ(read_order(8, MOKA_TRAIN, STEPS, c), 0);
    CHECK(memcmp(a, c, sizeof a) != 0); /* another seed, another order */
    /* A TEST-phase layer shuffles too when asked (it has its own stream). */
    CHECK_EQ(read_order(7, MOKA_TEST, STEPS, t), 0);
    int seen[N] = {0};
    for (int k = 0; k < N; k++) seen[t[k]]++;
    for (int i = 0; i < N; i++) CHECK_EQ(seen[i], 1);
    return 0;
}

/* 4-D images (N, C, H, W), gzip-compressed, with one mean per channel: top (B, C, H, W) and
 * (x - mean[c]) * scale exactly. */
static int gzip_4d_images_with_channel_means(void)
{
    moka_err err = {0};
    enum { N4 = 6, C = 2, S = C * 3 * 3 };
    uint8_t im[N4 * S], lb[N4];
    for (int i = 0; i < N4 * S; i++) im[i] = (uint8_t)(i * 37 % 256);
    for (int i = 0; i < N4; i++) lb[i] = (uint8_t)(i * 40);
    CHECK_EQ(write_idx("im4.idx.gz", 4, (const uint32_t[]){N4, C, 3, 3}, im, sizeof im), 0);
    CHECK_EQ(write_idx("lb4.idx.gz", 1, (const uint32_t[]){N4}, lb, sizeof lb), 0);
    moka_harness h;
    CHECK_OK(make_layer(&h, "im4.idx.gz", "lb4.idx.gz", "batch_size: 4",
                        "scale: 0.25 mean_value: 10 mean_value: 200", MOKA_TEST, 1, &err));
    const moka_tensor *data = h.top[0];
    CHECK(data->shape[0] == 4 && data->shape[1] == C && data->shape[2] == 3 && data->shape[3] == 3);
    for (int step = 0; step < 2; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 4; b++) {
            const int i = (step * 4 + b) % N4;
            CHECK_EQ(h.top[1]->data[b], i * 40);
            for (int j = 0; j < S; j++) {
                const float mean = j < 9 ? 10.0f : 200.0f;
                CHECK(data->data[b * S + j] == ((float)im[i * S + j] - mean) * 0.25f);
            }
        }
    }
    /* Hand-computed: step 1, b = 0 is image 4; its byte 10 (channel 1) is (4*18+10)*37 mod 256
     * = 3034 mod 256 = 218, so (218 - 200) * 0.25 = 4.5. */
    CHECK(data->data[10] == 4.5f);
    moka_harness_deinit(&h);
    return 0;
}

static int test_phase_crops_the_centre(void)
{
    moka_err err = {0};
    uint8_t im[2 * 5 * 5];
    for (int i = 0; i < 50; i++) im[i] = (uint8_t)i;
    CHECK_EQ(write_idx("crop.idx", 3, (const uint32_t[]){2, 5, 5}, im, sizeof im), 0);
    moka_harness h;
    CHECK_OK(make_layer(&h, "crop.idx", NULL, "batch_size: 3", "crop_size: 3", MOKA_TEST, 1, &err));
    CHECK_EQ(h.num_top, 1);
    CHECK(h.top[0]->shape[0] == 3 && h.top[0]->shape[1] == 1 && h.top[0]->shape[2] == 3 &&
          h.top[0]->shape[3] == 3);
    CHECK_OK(moka_harness_forward(&h, &err));
    for (int b = 0; b < 3; b++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                CHECK_EQ(h.top[0]->data[b * 9 + y * 3 + x], (b % 2) * 25 + (1 + y) * 5 + 1 + x);
    moka_harness_deinit(&h);
    return 0;
}

/* rand_skip starts at a random sample in [0, rand_skip) and goes on in order from there. */
static int rand_skip_starts_inside_the_range(void)
{
    moka_err err = {0};
    CHECK_EQ(write_standard("im.idx", "lb.idx"), 0);
    int starts[N] = {0};
    for (uint64_t seed = 1; seed <= 40; seed++) {
        moka_harness h;
        CHECK_OK(make_layer(&h, "im.idx", "lb.idx", "batch_size: 4 rand_skip: 5", "", MOKA_TRAIN,
                            seed, &err));
        CHECK_OK(moka_harness_forward(&h, &err));
        const int s = image_of_label(h.top[1]->data[0]);
        CHECK(s >= 0 && s < 5);
        starts[s]++;
        for (int step = 0; step < 3; step++) {
            for (int b = 0; b < 4; b++)
                CHECK_EQ(image_of_label(h.top[1]->data[b]), (s + step * 4 + b) % N);
            if (step < 2) CHECK_OK(moka_harness_forward(&h, &err));
        }
        moka_harness_deinit(&h);
    }
    for (int s = 0; s < 5; s++) CHECK(starts[s] > 0);
    return 0;
}

/* Expects make_layer to fail with `code` and a message containing `want`. */
static int setup_fails(const char *images, const char *labels, const char *extra,
                       const char *transform, moka_status code, const char *want)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(make_layer(&h, images, labels, extra, transform, MOKA_TRAIN, 1, &err), code);
    CHECK_CONTAINS(err.msg, want);
    moka_harness_deinit(&h);
    return 0;
}

static int file_errors_are_reported_from_setup(void)
{
    CHECK_EQ(write_standard("im.idx", "lb.idx"), 0);
    if (setup_fails("/nonexistent-moka/train-images.gz", "lb.idx", "batch_size: 4", "", MOKA_ERR_IO,
                    "layer 'mnist': cannot open '/nonexistent-moka/train-images.gz': No such file "
                    "or directory"))
        return 1;
    char want[1024];
    snprintf(want, sizeof want, "layer 'mnist': cannot open '%s': No such file", tmp_path("no.gz"));
    if (setup_fails("im.idx", "no.gz", "batch_size: 4", "", MOKA_ERR_IO, want)) return 1;

    /* Count mismatch: 9 labels for 10 images. */
    const uint8_t nine[9] = {0};
    CHECK_EQ(write_idx("lb9.idx", 1, (const uint32_t[]){9}, nine, 9), 0);
    snprintf(want, sizeof want,
             "layer 'mnist': images file '%s' holds 10 images but labels file "
             "'%s' holds 9 labels",
             tmp_path("im.idx"), tmp_path("lb9.idx"));
    if (setup_fails("im.idx", "lb9.idx", "batch_size: 4", "", MOKA_ERR_IO, want)) return 1;

    /* Not an IDX file at all. */
    FILE *f = fopen(tmp_path("junk.idx"), "wb");
    CHECK(f != NULL);
    fputs("P5\n28 28\n255\n", f);
    fclose(f);
    snprintf(want, sizeof want, "layer 'mnist': '%s': not an IDX file: bad magic 50 35",
             tmp_path("junk.idx"));
    if (setup_fails("junk.idx", "lb.idx", "batch_size: 4", "", MOKA_ERR_IO, want)) return 1;

    /* Truncated images. */
    uint8_t part[100] = {0};
    CHECK_EQ(write_idx("short.idx.gz", 3, (const uint32_t[]){10, 28, 28}, part, 100), 0);
    snprintf(want, sizeof want,
             "layer 'mnist': '%s': truncated IDX file: header says 10 x 28 x 28 "
             "(7840 bytes of data), found 100",
             tmp_path("short.idx.gz"));
    if (setup_fails("short.idx.gz", "lb.idx", "batch_size: 4", "", MOKA_ERR_IO, want)) return 1;

    /* The labels file given as images, and images as labels. */
    if (setup_fails("lb.idx", NULL, "batch_size: 4", "", MOKA_ERR_IO,
                    "must be 3-D (N, H, W) or 4-D (N, C, H, W), got 1-D (10)"))
        return 1;
    snprintf(want, sizeof want, "labels file '%s' must be 1-D (N), got 3-D (10 x 3 x 4)",
             tmp_path("im.idx"));
    if (setup_fails("im.idx", "im.idx", "batch_size: 4", "", MOKA_ERR_IO, want)) return 1;
    CHECK_EQ(write_idx("empty.idx", 3, (const uint32_t[]){0, 28, 28}, NULL, 0), 0);
    return setup_fails("empty.idx", NULL, "batch_size: 4", "", MOKA_ERR_IO,
                       "holds no data (0 x 28 x 28)");
}

static int config_errors_are_reported_from_setup(void)
{
    CHECK_EQ(write_standard("im.idx", "lb.idx"), 0);
    if (setup_fails("im.idx", "lb.idx", "", "", MOKA_ERR_CONFIG,
                    "layer 'mnist' (IDXData): idx_data_param.batch_size must be positive, got 0"))
        return 1;
    if (setup_fails("im.idx", "lb.idx", "batch_size: 0", "", MOKA_ERR_CONFIG,
                    "batch_size must be positive"))
        return 1;
    if (setup_fails("im.idx", NULL, "batch_size: 2 labels: 'x'", "", MOKA_ERR_CONFIG,
                    "layer 'mnist': idx_data_param.labels is set but the layer has no label top"))
        return 1;
    if (setup_fails("im.idx", "lb.idx", "batch_size: 2", "mean_file: 'm.binaryproto'",
                    MOKA_ERR_IO, "layer 'mnist': cannot open mean_file 'm.binaryproto'"))
        return 1;
    if (setup_fails("im.idx", "lb.idx", "batch_size: 2", "force_gray: true", MOKA_ERR_UNSUPPORTED,
                    "transform_param.force_gray is not supported"))
        return 1;
    if (setup_fails("im.idx", "lb.idx", "batch_size: 2", "mean_value: 1 mean_value: 2",
                    MOKA_ERR_CONFIG, "2 mean_value entries; want 1 or one per channel (1)"))
        return 1;
    if (setup_fails("im.idx", "lb.idx", "batch_size: 2", "crop_size: 4", MOKA_ERR_CONFIG,
                    "crop_size 4 is larger than the 3 x 4 samples"))
        return 1;
    /* A misspelt field is the parser's error. */
    if (setup_fails("im.idx", "lb.idx", "batch_size: 2 shufle: true", "", MOKA_ERR_CONFIG,
                    "shufle"))
        return 1;

    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h,
                                   "name: 'mnist' type: 'IDXData' top: 'data' top: 'label' "
                                   "idx_data_param { batch_size: 2 }",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_OK);
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "layer 'mnist' (IDXData): idx_data_param.images is required");
    moka_harness_deinit(&h);
    CHECK_STATUS(moka_harness_init(&h,
                                   "name: 'mnist' type: 'IDXData' top: 'data' top: 'label' "
                                   "idx_data_param { images: 'a' batch_size: 2 }",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_OK);
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "has a label top but no idx_data_param.labels file");
    moka_harness_deinit(&h);
    return 0;
}

static int cleanup(void)
{
    static const char *const names[] = {"im.idx",     "lb.idx",       "im4.idx.gz",
                                        "lb4.idx.gz", "crop.idx",     "lb9.idx",
                                        "junk.idx",   "short.idx.gz", "empty.idx"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(tmp_path(names[i]));
    CHECK_EQ(rmdir(tmpdir), 0);
    return 0;
}

MOKA_TEST_MAIN(batches_match_the_file_and_wrap_around, shuffle_covers_every_index_once_per_epoch,
               gzip_4d_images_with_channel_means, test_phase_crops_the_centre,
               rand_skip_starts_inside_the_range, file_errors_are_reported_from_setup,
               config_errors_are_reported_from_setup, cleanup)
