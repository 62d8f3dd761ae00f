/* tests/board/write_events.c -- writes a TensorBoard event file with moka's writer, for the
 * headless-browser test of `moka board` (tests/cli/test_board_browser.sh builds it).
 *
 *   write_events LOGDIR RUN FIRST_STEP COUNT [--extras] [--wait FILE COUNT2]
 *
 * Writes COUNT scalars "loss" at steps FIRST_STEP, FIRST_STEP + 10, ... (value 2 exp(-step/300)
 * plus a small wiggle), with "lr" and "test/accuracy" every 5th step. --extras adds a LeNet-shaped
 * graph, weight histograms every 5th step and one image. --wait then creates FILE.ready, waits
 * (up to 60 s) until FILE exists, and writes COUNT2 more "loss" scalars into the same, still open
 * file, so the test can watch the page grow while the file is being written.
 * Exit status 0 on success, 1 on a write failure, 2 on bad arguments.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/tfevents.h"

static int fail(const moka_err *err)
{
    fprintf(stderr, "write_events: %s\n", err->msg);
    return 1;
}

static moka_status write_graph(moka_tfevents *w, moka_err *err)
{
    static const char *const in_data[] = {"data"}, *const in_conv1[] = {"conv1"},
                             *const in_pool1[] = {"pool1"}, *const in_conv2[] = {"conv2"},
                             *const in_pool2[] = {"pool2"}, *const in_ip1[] = {"ip1"},
                             *const in_relu1[] = {"relu1"}, *const in_loss[] = {"ip2", "data"};
    static const char *const conv_keys[] = {"num_output", "kernel_size", "stride"};
    static const int64_t conv1_vals[] = {20, 5, 1}, conv2_vals[] = {50, 5, 1};
    static const char *const pool_keys[] = {"kernel_size", "stride"};
    static const int64_t pool_vals[] = {2, 2};
    static const char *const ip_keys[] = {"num_output"};
    static const int64_t ip1_vals[] = {500}, ip2_vals[] = {10};
    const moka_graph_node nodes[] = {
        {"data", "Input", 0, NULL, 0, NULL, NULL},
        {"conv1", "Convolution", 1, in_data, 3, conv_keys, conv1_vals},
        {"pool1", "Pooling", 1, in_conv1, 2, pool_keys, pool_vals},
        {"conv2", "Convolution", 1, in_pool1, 3, conv_keys, conv2_vals},
        {"pool2", "Pooling", 1, in_conv2, 2, pool_keys, pool_vals},
        {"ip1", "InnerProduct", 1, in_pool2, 1, ip_keys, ip1_vals},
        {"relu1", "ReLU", 1, in_ip1, 0, NULL, NULL},
        {"ip2", "InnerProduct", 1, in_relu1, 1, ip_keys, ip2_vals},
        {"loss", "SoftmaxWithLoss", 2, in_loss, 0, NULL, NULL},
    };
    return moka_tfevents_graph(w, nodes, (int)(sizeof nodes / sizeof nodes[0]), err);
}

static double loss_at(int64_t step) { return 2.0 * exp(-(double)step / 300.0) + 0.05 * sin(step); }

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: write_events LOGDIR RUN FIRST_STEP COUNT [--extras] "
                        "[--wait FILE COUNT2]\n");
        return 2;
    }
    const int64_t first = atoll(argv[3]), count = atoll(argv[4]);
    int extras = 0;
    const char *wait_file = NULL;
    int64_t count2 = 0;
    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "--extras") == 0) {
            extras = 1;
        } else if (strcmp(argv[i], "--wait") == 0 && i + 2 < argc) {
            wait_file = argv[i + 1];
            count2 = atoll(argv[i + 2]);
            i += 2;
        } else {
            fprintf(stderr, "write_events: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    moka_err err = {0};
    moka_tfevents *w;
    if (moka_tfevents_open(argv[1], argv[2], &w, &err) != MOKA_OK) return fail(&err);
    int rc = 0;
    if (extras && write_graph(w, &err) != MOKA_OK) goto fail;
    for (int64_t k = 0; k < count; k++) {
        const int64_t step = first + 10 * k;
        if (moka_tfevents_scalar(w, step, "loss", loss_at(step), &err) != MOKA_OK) goto fail;
        if (k % 5 == 0) {
            if (moka_tfevents_scalar(w, step, "lr", 0.01 * pow(1.0 + 1e-4 * step, -0.75), &err) ||
                moka_tfevents_scalar(w, step, "test/accuracy", 1.0 - 0.5 * loss_at(step) / 2.1,
                                     &err))
                goto fail;
        }
        if (extras && k % 5 == 0) {
            float v[500];
            for (int i = 0; i < 500; i++)
                v[i] = (float)((i - 250) / 250.0 * (0.1 + step / 2000.0) + 0.01 * sin(i * 7.0));
            if (moka_tfevents_histogram(w, step, "conv1/weights", v, 500, &err) ||
                moka_tfevents_histogram(w, step, "ip1/weights_grad", v, 250, &err))
                goto fail;
        }
    }
    if (extras) {
        float px[3 * 16 * 16];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++)
                    px[(c * 16 + y) * 16 + x] = c == 0 ? x / 15.0f : c == 1 ? y / 15.0f : 0.5f;
        if (moka_tfevents_image(w, first, "input/0", px, 3, 16, 16, &err)) goto fail;
    }
    if (wait_file) {
        char ready[4096];
        snprintf(ready, sizeof ready, "%s.ready", wait_file);
        FILE *f = fopen(ready, "w");
        if (f) fclose(f);
        for (int t = 0; t < 600 && access(wait_file, F_OK) != 0; t++) {
            const struct timespec tick = {0, 100 * 1000 * 1000};
            nanosleep(&tick, NULL);
        }
        for (int64_t k = count; k < count + count2; k++) {
            const int64_t step = first + 10 * k;
            if (moka_tfevents_scalar(w, step, "loss", loss_at(step), &err) != MOKA_OK) goto fail;
        }
    }
    moka_tfevents_close(w);
    return rc;
fail:
    moka_tfevents_close(w);
    return fail(&err);
}
