/* tests/layers/test_image_data.c -- the ImageData layer over PNG files this test writes (with
 * moka's own PNG encoder; libpng decodes them): batches equal the pixels and labels of the list
 * (gray, and colour in BGR order), new_height/new_width resize, shuffle covers every image once
 * per epoch, seek resumes the stream, and every bad list line or image is an error naming the
 * list file and line. ImageData has no gradient, so there is no gradient check.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/image.h"
#include "io/png.h"
#include "moka/log.h"
#include "test.h"

static char tmpdir[256];

/* Removes the scratch directory and the files the test wrote into it. */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/moka_imagedata_XXXXXX",
                 base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(1);
        }
        atexit(remove_tmpdir);
    }
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static int write_bytes(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(tmp_path(name), "wb");
    if (!f) return 1;
    const int ok = fwrite(data, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : 1;
}

/* Image i: H x W, channel k (R, G, B in the file) of pixel (y, x) = pix(i, k, y, x). */
enum { N = 10, H = 3, W = 4, HW = H * W };
static uint8_t pix(int i, int k, int y, int x)
{
    return (uint8_t)((i * 37 + k * 71 + y * 13 + x * 5) % 256);
}

/* Writes img<i>.png (c = 1 gray or 3 RGB) of h x w pixels. */
static int write_png(int i, int c, int h, int w)
{
    uint8_t px[3 * 64 * 64];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) px[(y * w + x) * c + k] = pix(i, k, y, x);
    uint8_t *png = NULL;
    size_t n = 0;
    moka_err err = {0};
    if (moka_png_encode(px, c, h, w, &png, &n, &err) != MOKA_OK) return 1;
    char name[32];
    snprintf(name, sizeof name, "img%d.png", i);
    const int r = write_bytes(name, png, n);
    free(png);
    return r;
}

/* N images and list.txt with lines "img<i>.png <100 + i>". */
static int write_standard(int c)
{
    char list[1024] = "";
    for (int i = 0; i < N; i++) {
        if (write_png(i, c, H, W)) return 1;
        char line[64];
        snprintf(line, sizeof line, "img%d.png %d\n", i, 100 + i);
        strcat(list, line);
    }
    return write_bytes("list.txt", list, strlen(list));
}

static moka_status make_layer(moka_harness *h, const char *extra, const char *transform,
                              uint64_t seed, moka_err *err)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "name: 'images' type: 'ImageData' top: 'data' top: 'label' transform_param { %s } "
             "image_data_param { source: '%s' root_folder: '%s/' %s }",
             transform, tmp_path("list.txt"), tmpdir, extra);
    MOKA_TRY(moka_harness_init(h, cfg, MOKA_TRAIN, seed, err));
    return moka_harness_setup(h, err);
}

static int gray_batches_equal_the_pixels_in_list_order(void)
{
    moka_err err = {0};
    moka_log_set(NULL, NULL, MOKA_LOG_WARN); /* no "N images of ..." line per layer */
    CHECK_EQ(write_standard(1), 0);
    moka_harness h;
    CHECK_OK(make_layer(&h, "batch_size: 4 is_color: false", "scale: 0.5", 1, &err));
    CHECK(h.layer->ops->backward_cpu == NULL);
    const moka_tensor *data = h.top[0], *label = h.top[1];
    CHECK(data->ndim == 4 && data->shape[0] == 4 && data->shape[1] == 1 && data->shape[2] == H &&
          data->shape[3] == W);
    CHECK(label->ndim == 1 && label->shape[0] == 4);
    /* List order, wrapping after image 9: 0-3, 4-7, 8 9 0 1, 2-5. */
    for (int step = 0; step < 4; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 4; b++) {
            const int i = (step * 4 + b) % N;
            CHECK_EQ(label->data[b], 100 + i);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    CHECK(data->data[b * HW + y * W + x] == pix(i, 0, y, x) * 0.5f);
        }
    }
    moka_harness_deinit(&h);
    return 0;
}

static int colour_images_come_out_in_bgr_order(void)
{
    moka_err err = {0};
    CHECK_EQ(write_standard(3), 0);
    moka_harness h;
    CHECK_OK(make_layer(&h, "batch_size: 2", "", 1, &err));
    const moka_tensor *data = h.top[0];
    CHECK(data->shape[0] == 2 && data->shape[1] == 3 && data->shape[2] == H && data->shape[3] == W);
    CHECK_OK(moka_harness_forward(&h, &err));
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 3; k++) /* plane k holds file channel 2 - k */
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    CHECK(data->data[(b * 3 + k) * HW + y * W + x] == pix(b, 2 - k, y, x));
    moka_harness_deinit(&h);
    /* is_color: false on colour files gives one (luminance) plane. */
    CHECK_OK(make_layer(&h, "batch_size: 2 is_color: false", "", 1, &err));
    CHECK_EQ(h.top[0]->shape[1], 1);
    moka_harness_deinit(&h);
    return 0;
}

static int new_size_resizes_every_image(void)
{
    moka_err err = {0};
    /* Images of two sizes, both brought to 5 x 2 by the layer. */
    CHECK_EQ(write_png(0, 1, 3, 4) | write_png(1, 1, 7, 6), 0);
    const char *list = "img0.png 0\nimg1.png 1\n";
    CHECK_EQ(write_bytes("list.txt", list, strlen(list)), 0);
    moka_harness h;
    CHECK_OK(
        make_layer(&h, "batch_size: 2 is_color: false new_height: 5 new_width: 2", "", 1, &err));
    CHECK(h.top[0]->shape[2] == 5 && h.top[0]->shape[3] == 2);
    CHECK_OK(moka_harness_forward(&h, &err));
    for (int b = 0; b < 2; b++) {
        uint8_t src[7 * 6], *want = NULL;
        const int hh = b ? 7 : 3, ww = b ? 6 : 4;
        for (int y = 0; y < hh; y++)
            for (int x = 0; x < ww; x++) src[y * ww + x] = pix(b, 0, y, x);
        CHECK_OK(moka_image_resize(src, 1, hh, ww, 5, 2, &want, &err));
        for (int j = 0; j < 10; j++) CHECK(h.top[0]->data[b * 10 + j] == want[j]);
        free(want);
    }
    moka_harness_deinit(&h);
    return 0;
}

static int shuffle_covers_every_image_once_per_epoch(void)
{
    moka_err err = {0};
    CHECK_EQ(write_standard(1), 0);
    moka_harness h;
    CHECK_OK(make_layer(&h, "batch_size: 5 is_color: false shuffle: true", "", 3, &err));
    int order[3][N], differs_from_file = 0, differs_between_epochs = 0;
    for (int epoch = 0; epoch < 3; epoch++) {
        int seen[N] = {0};
        for (int half = 0; half < 2; half++) {
            CHECK_OK(moka_harness_forward(&h, &err));
            for (int b = 0; b < 5; b++) {
                const int i = (int)h.top[1]->data[b] - 100;
                CHECK(i >= 0 && i < N);
                seen[i]++;
                order[epoch][half * 5 + b] = i;
                /* The pixels belong to the labelled image. */
                CHECK(h.top[0]->data[b * HW + 5] == pix(i, 0, 1, 1));
            }
        }
        for (int i = 0; i < N; i++) CHECK_EQ(seen[i], 1);
        for (int j = 0; j < N; j++) differs_from_file |= order[epoch][j] != j;
        if (epoch) differs_between_epochs |= memcmp(order[epoch], order[0], sizeof order[0]) != 0;
    }
    CHECK(differs_from_file && differs_between_epochs);
    moka_harness_deinit(&h);
    return 0;
}

static int seek_and_rand_skip_resume_the_stream(void)
{
    moka_err err = {0};
    CHECK_EQ(write_standard(1), 0);
    const char *cfg = "batch_size: 3 is_color: false shuffle: true rand_skip: 5";
    moka_harness a, b;
    CHECK_OK(make_layer(&a, cfg, "mirror: true", 4, &err));
    CHECK_OK(make_layer(&b, cfg, "mirror: true", 4, &err));
    float labels[7][3], data[7][3 * HW];
    for (int step = 0; step < 7; step++) {
        CHECK_OK(moka_harness_forward(&a, &err));
        memcpy(labels[step], a.top[1]->data, sizeof labels[step]);
        memcpy(data[step], a.top[0]->data, sizeof data[step]);
    }
    CHECK_OK(b.layer->ops->seek(b.layer, 4 * 3, &err)); /* 4 batches of 3 */
    for (int step = 4; step < 7; step++) {
        CHECK_OK(moka_harness_forward(&b, &err));
        CHECK(memcmp(labels[step], b.top[1]->data, sizeof labels[step]) == 0);
        CHECK(memcmp(data[step], b.top[0]->data, sizeof data[step]) == 0);
    }
    moka_harness_deinit(&a);
    moka_harness_deinit(&b);
    /* Without shuffle, rand_skip starts the list at some entry in [0, rand_skip). */
    int starts_seen = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        CHECK_OK(make_layer(&a, "batch_size: 2 is_color: false rand_skip: 4", "", seed, &err));
        CHECK_OK(moka_harness_forward(&a, &err));
        const int first = (int)a.top[1]->data[0] - 100;
        CHECK(first >= 0 && first < 4);
        CHECK_EQ(a.top[1]->data[1], 100 + first + 1);
        starts_seen |= 1 << first;
        moka_harness_deinit(&a);
    }
    CHECK(starts_seen != 1); /* not always the first entry */
    return 0;
}

/* Expects setup (or, with at_forward, the first forward) to fail with `want` and `text`. */
static int expect_error(const char *list, const char *extra, bool at_forward, moka_status want,
                        const char *text)
{
    moka_err err = {0};
    if (list) CHECK_EQ(write_bytes("list.txt", list, strlen(list)), 0);
    moka_harness h;
    moka_status st = make_layer(&h, extra, "", 1, &err);
    if (at_forward) {
        CHECK_OK(st);
        st = moka_harness_forward(&h, &err);
    }
    moka_harness_deinit(&h);
    if (st != want)
        TEST_FAIL_("got %s, want %s (%s)", moka_status_name(st), moka_status_name(want), err.msg);
    CHECK_CONTAINS(err.msg, "layer 'images'");
    CHECK_CONTAINS(err.msg, text);
    return 0;
}

static int bad_lists_and_images_name_the_list_line(void)
{
    CHECK_EQ(write_standard(1), 0);
    char want[1024];
    const char *list = tmp_path("list.txt");
    snprintf(want, sizeof want, "%s:2: expected 'path label', got 'img1.png'", list);
    CHECK_EQ(expect_error("img0.png 0\nimg1.png\n", "", false, MOKA_ERR_CONFIG, want), 0);
    snprintf(want, sizeof want, "%s:3: label '1.5' is not an integer", list);
    CHECK_EQ(expect_error("img0.png 0\n\nimg1.png 1.5\n", "", false, MOKA_ERR_CONFIG, want), 0);
    /* A missing file is found at setup. */
    snprintf(want, sizeof want, "%s:2: image '%s/nope.png': No such file or directory", list,
             tmpdir);
    CHECK_EQ(expect_error("img0.png 0\nnope.png 1\n", "", false, MOKA_ERR_IO, want), 0);
    /* A corrupt or truncated image, and one of another size, when its batch is read. */
    CHECK_EQ(write_bytes("bad.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), 0);
    snprintf(want, sizeof want, "%s:3: '%s/bad.png': corrupt PNG: file is truncated", list, tmpdir);
    CHECK_EQ(expect_error("img0.png 0\nimg1.png 1\nbad.png 2\n", "batch_size: 4 is_color: false",
                          true, MOKA_ERR_IO, want),
             0);
    CHECK_EQ(write_bytes("text.png", "hello", 5), 0);
    snprintf(want, sizeof want, "%s:2: '%s/text.png': not a JPEG or PNG image", list, tmpdir);
    CHECK_EQ(expect_error("img0.png 0\ntext.png 1\n", "batch_size: 2", true, MOKA_ERR_IO, want), 0);
    CHECK_EQ(write_png(5, 1, 4, 4), 0);
    snprintf(want, sizeof want,
             "%s:2: image '%s/img5.png' is 4 x 4 but the first image of the list is 3 x 4 (set "
             "image_data_param new_height and new_width",
             list, tmpdir);
    CHECK_EQ(expect_error("img0.png 0\nimg5.png 1\n", "batch_size: 2 is_color: false", true,
                          MOKA_ERR_IO, want),
             0);
    /* The first image is decoded at setup. */
    snprintf(want, sizeof want, "%s:1: '%s/text.png': not a JPEG or PNG", list, tmpdir);
    CHECK_EQ(expect_error("text.png 0\n", "", false, MOKA_ERR_IO, want), 0);
    return 0;
}

static int bad_configs_are_rejected(void)
{
    CHECK_EQ(write_standard(1), 0);
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(moka_harness_init(&h,
                                   "name: 'images' type: 'ImageData' top: 'data' "
                                   "image_data_param { batch_size: 2 }",
                                   MOKA_TRAIN, 1, &err),
                 MOKA_OK);
    CHECK_STATUS(moka_harness_setup(&h, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "image_data_param.source is required");
    moka_harness_deinit(&h);
    CHECK_EQ(expect_error(NULL, "batch_size: 0", false, MOKA_ERR_CONFIG,
                          "batch_size must be positive, got 0"),
             0);
    CHECK_EQ(expect_error(NULL, "new_height: 5", false, MOKA_ERR_CONFIG,
                          "new_height and new_width must be set together"),
             0);
    CHECK_EQ(expect_error(NULL, "scale: 0.5", false, MOKA_ERR_UNSUPPORTED,
                          "image_data_param.scale is deprecated (Caffe's ImageData ignores it); "
                          "set transform_param { scale: ... } instead"),
             0);
    CHECK_STATUS(make_layer(&h, "source: 'x'", "", 1, &err), MOKA_ERR_CONFIG);
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(gray_batches_equal_the_pixels_in_list_order, colour_images_come_out_in_bgr_order,
               new_size_resizes_every_image, shuffle_covers_every_image_once_per_epoch,
               seek_and_rand_skip_resume_the_stream, bad_lists_and_images_name_the_list_line,
               bad_configs_are_rejected)
