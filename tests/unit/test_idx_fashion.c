/* tests/unit/test_idx_fashion.c -- the real Fashion-MNIST test set, read by the IDX reader and
 * by the IDXData layer. Skipped (exit 77) when /usr/share/datasets/fashion-mnist is absent.
 * Known facts checked: 10000 images of 28 x 28, labels in 0..9 with exactly 1000 of each class.
 */
#include <stdio.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "io/idx.h"
#include "moka/log.h"
#include "test.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define IMAGES FASHION_DIR "/t10k-images-idx3-ubyte.gz"
#define LABELS FASHION_DIR "/t10k-labels-idx1-ubyte.gz"

static int reader_loads_the_test_set(void)
{
    moka_err err = {0};
    moka_idx im, lb;
    CHECK_OK(moka_idx_read(IMAGES, &im, &err));
    CHECK_OK(moka_idx_read(LABELS, &lb, &err));
    CHECK_EQ(im.ndim, 3);
    CHECK_EQ(im.dims[0], 10000);
    CHECK_EQ(im.dims[1], 28);
    CHECK_EQ(im.dims[2], 28);
    CHECK_EQ(lb.ndim, 1);
    CHECK_EQ(lb.dims[0], 10000);
    int per_class[10] = {0};
    for (int i = 0; i < 10000; i++) {
        CHECK(lb.data[i] <= 9);
        per_class[lb.data[i]]++;
    }
    for (int c = 0; c < 10; c++) CHECK_EQ(per_class[c], 1000);
    /* Checked against Python's gzip module: the first labels, the sum and the CRC-32 of all
     * 7840000 pixel bytes. */
    const int first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++) CHECK_EQ(lb.data[i], first[i]);
    int64_t sum = 0;
    for (int64_t i = 0; i < im.count; i++) sum += im.data[i];
    CHECK_EQ(sum, 573469082);
    CHECK_EQ(crc32(0L, im.data, (uInt)im.count), 309494841UL);
    moka_idx_deinit(&lb);
    moka_idx_deinit(&im);
    return 0;
}

static int layer_reads_the_test_set(void)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(
        moka_harness_init(&h,
                          "name: 'mnist' type: 'IDXData' top: 'data' top: 'label' "
                          "transform_param { scale: 0.00390625 } idx_data_param { images: '" IMAGES
                          "' labels: '" LABELS "' batch_size: 100 }",
                          MOKA_TEST, 1, &err));
    CHECK_OK(moka_harness_setup(&h, &err));
    CHECK(h.top[0]->shape[0] == 100 && h.top[0]->shape[1] == 1 && h.top[0]->shape[2] == 28 &&
          h.top[0]->shape[3] == 28);
    /* One epoch plus one batch: every label in 0..9, pixels in [0, 1). */
    for (int step = 0; step <= 100; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 100; b++) {
            const float y = h.top[1]->data[b];
            CHECK(y >= 0 && y <= 9 && y == (float)(int)y);
        }
        for (int i = 0; i < 100 * 784; i++)
            CHECK(h.top[0]->data[i] >= 0.0f && h.top[0]->data[i] < 1.0f);
    }
    moka_harness_deinit(&h);
    return 0;
}

/* MOKA_TEST_MAIN defines main(); rename it so the real main can skip without the dataset. */
#define main fashion_main
MOKA_TEST_MAIN(reader_loads_the_test_set, layer_reads_the_test_set)
#undef main

int main(void)
{
    if (access(IMAGES, R_OK) != 0 || access(LABELS, R_OK) != 0) {
        fprintf(stderr, "skipped: %s not found\n", FASHION_DIR);
        return 77;
    }
    moka_log_set(NULL, NULL, MOKA_LOG_WARN);
    return fashion_main();
}
