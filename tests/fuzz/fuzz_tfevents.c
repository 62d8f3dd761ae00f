/* tests/fuzz/fuzz_tfevents.c -- libFuzzer target: arbitrary bytes as a TensorBoard event file
 * must give MOKA_OK or an error status from moka_tfevents_read, never a crash, leak or overflow.
 * Everything handed to the sink is touched, and the file is read again from the offset the first
 * read returned (as `moka board` follows a growing file) and from an offset taken from the input
 * (which may fall inside a record). The bytes go through a file because the reader takes a path.
 *
 * Random bytes rarely pass the record CRCs, so an input starting with 'F' is framed here instead:
 * the rest becomes the data of one record with valid CRCs, which reaches the Event decoding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/crc32c.h"
#include "io/tfevents.h"

static double g_sink; /* keeps the reads below from being optimised away */

static void on_scalar(void *user, const char *tag, int64_t step, double wt, double value)
{
    (void)user;
    g_sink += (double)strlen(tag) + (double)step + wt + value;
}

static void on_histogram(void *user, const char *tag, int64_t step, double wt, double mn, double mx,
                         double num, double sum, double sum_sq, int nb, const double *limit,
                         const double *count)
{
    (void)user;
    g_sink += (double)strlen(tag) + (double)step + wt + mn + mx + num + sum + sum_sq;
    for (int i = 0; i < nb; i++) g_sink += limit[i] + count[i];
}

static void on_graph(void *user, const moka_graph_node *nodes, int n)
{
    (void)user;
    for (int i = 0; i < n; i++) {
        g_sink += (double)(strlen(nodes[i].name) + strlen(nodes[i].op));
        for (int j = 0; j < nodes[i].num_inputs; j++) g_sink += (double)strlen(nodes[i].inputs[j]);
        for (int j = 0; j < nodes[i].num_attrs; j++)
            g_sink += (double)strlen(nodes[i].attr_keys[j]) + (double)nodes[i].attr_values[j];
    }
}

static void on_image(void *user, const char *tag, int64_t step, int h, int w,
                     const unsigned char *png, int64_t nbytes)
{
    (void)user;
    g_sink += (double)strlen(tag) + (double)step + h + w;
    for (int64_t i = 0; i < nbytes; i++) g_sink += png[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/moka_fuzz_tfevents.%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = 1;
    if (size > 0 && data[0] == 'F') {
        const size_t n = size - 1;
        uint8_t hdr[12], tail[4];
        for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)((uint64_t)n >> (8 * i));
        const uint32_t hc = moka_crc32c_mask(moka_crc32c(hdr, 8));
        const uint32_t dc = moka_crc32c_mask(moka_crc32c(data + 1, n));
        for (int i = 0; i < 4; i++) {
            hdr[8 + i] = (uint8_t)(hc >> (8 * i));
            tail[i] = (uint8_t)(dc >> (8 * i));
        }
        ok = fwrite(hdr, 1, 12, f) == 12 && (n == 0 || fwrite(data + 1, 1, n, f) == n) &&
             fwrite(tail, 1, 4, f) == 4;
    } else if (size) {
        ok = fwrite(data, 1, size, f) == size;
    }
    if (fclose(f) != 0 || !ok) return 0;
    const moka_tfevents_sink sink = {
        .scalar = on_scalar, .histogram = on_histogram, .graph = on_graph, .image = on_image};
    moka_err err = {0};
    int64_t off = 0;
    if (moka_tfevents_read(path, &off, &sink, &err) == MOKA_OK) {
        const int64_t end = off;
        if (moka_tfevents_read(path, &off, &sink, &err) != MOKA_OK || off != end) abort();
    }
    off = size ? (int64_t)(data[0] % (size + 1)) : 0;
    (void)moka_tfevents_read(path, &off, &sink, &err);
    return 0;
}
