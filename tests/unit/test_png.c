/* tests/unit/test_png.c -- the PNG encoder (src/io/png.c).
 *
 * Independent checks: tests/ref/read_tfevents.py --png decodes each file with its own chunk
 * parser, zlib.crc32 on every chunk, zlib.decompress and PNG unfiltering, and the pixels must be
 * exactly those encoded; the chunk layout is checked here byte by byte against the PNG
 * specification (signature, IHDR fields, the constant IEND chunk).
 */
#include <sys/wait.h>
#include <unistd.h>

#include "io/png.h"
#include "test.h"

#define READER MOKA_SOURCE_DIR "/tests/ref/read_tfevents.py"

static char g_path[64];

static void remove_file(void)
{
    if (g_path[0]) unlink(g_path);
}

static const char *scratch_file(void)
{
    if (!g_path[0]) {
        snprintf(g_path, sizeof g_path, "png_test_%d.png", (int)getpid());
        atexit(remove_file);
    }
    return g_path;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Writes the PNG to a file, decodes it in Python and compares with the pixels. */
static int decodes_to(const uint8_t *png, size_t nbytes, const uint8_t *pixels, int c, int h, int w)
{
    const char *path = scratch_file();
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK_EQ(fwrite(png, 1, nbytes, f), nbytes);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' --png '%s' 2>&1", READER, path);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    const size_t npix = (size_t)c * (size_t)h * (size_t)w;
    char *got = calloc(2 * npix + 256, 1);
    const size_t n = fread(got, 1, 2 * npix + 255, p);
    const int st = pclose(p);
    got[n] = '\0';
    char *want = malloc(2 * npix + 64);
    int k = snprintf(want, 64, "png %d %d %d ", w, h, c);
    for (size_t i = 0; i < npix; i++) k += snprintf(want + k, 3, "%02x", pixels[i]);
    want[k++] = '\n';
    want[k] = '\0';
    const int same = WIFEXITED(st) && WEXITSTATUS(st) == 0 && strcmp(got, want) == 0;
    if (!same) fprintf(stderr, "python decoder:\n%.400s\nexpected:\n%.400s\n", got, want);
    free(got);
    free(want);
    CHECK(same);
    return 0;
}

static int layout_follows_the_specification(void)
{
    moka_err err = {0};
    const uint8_t px[2 * 3 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    uint8_t *png = NULL;
    size_t n = 0;
    CHECK_OK(moka_png_encode(px, 3, 2, 3, &png, &n, &err));
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    CHECK(n > 8 + 25 + 12 + 12);
    CHECK(memcmp(png, sig, 8) == 0);
    CHECK_EQ(be32(png + 8), 13);
    CHECK(memcmp(png + 12, "IHDR", 4) == 0);
    CHECK_EQ(be32(png + 16), 3); /* width */
    CHECK_EQ(be32(png + 20), 2); /* height */
    CHECK_EQ(png[24], 8);        /* bit depth */
    CHECK_EQ(png[25], 2);        /* colour type RGB */
    CHECK_EQ(png[26] | png[27] | png[28], 0);
    CHECK(memcmp(png + 37, "IDAT", 4) == 0);
    CHECK_EQ(be32(png + 33) + 12 + 33 + 12, n);
    /* IEND is always the same 12 bytes: length 0, "IEND", CRC-32("IEND") = 0xAE426082. */
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    CHECK(memcmp(png + n - 12, iend, 12) == 0);
    if (decodes_to(png, n, px, 3, 2, 3)) return 1;
    free(png);
    return 0;
}

static int every_channel_count_decodes_pixel_exact(void)
{
    moka_err err = {0};
    static const int sizes[][2] = {{1, 1}, {5, 7}, {33, 64}, {2, 300}};
    static uint8_t px[4 * 300 * 64];
    uint32_t x = 99;
    for (int c = 1; c <= 4; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            const int h = sizes[s][0], w = sizes[s][1];
            for (int i = 0; i < c * h * w; i++)
                px[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 23);
            uint8_t *png = NULL;
            size_t n = 0;
            CHECK_OK(moka_png_encode(px, c, h, w, &png, &n, &err));
            CHECK_EQ(png[25], c == 1 ? 0 : c == 2 ? 4 : c == 3 ? 2 : 6);
            if (decodes_to(png, n, px, c, h, w)) return 1;
            free(png);
        }
    return 0;
}

static int smooth_images_compress(void)
{
    moka_err err = {0};
    enum { H = 100, W = 120 };
    static uint8_t px[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) px[y * W + x] = (uint8_t)(x * 2);
    uint8_t *png = NULL;
    size_t n = 0;
    CHECK_OK(moka_png_encode(px, 1, H, W, &png, &n, &err));
    CHECK(n < H * W / 4);
    if (decodes_to(png, n, px, 1, H, W)) return 1;
    free(png);
    return 0;
}

static int bad_arguments_are_rejected(void)
{
    moka_err err = {0};
    const uint8_t px[4] = {0};
    uint8_t *png = (uint8_t *)1;
    size_t n = 7;
    CHECK_STATUS(moka_png_encode(px, 5, 1, 1, &png, &n, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "5 channels");
    CHECK_STATUS(moka_png_encode(px, 0, 1, 1, &png, &n, &err), MOKA_ERR_INVALID_ARG);
    CHECK_STATUS(moka_png_encode(px, 1, 0, 1, &png, &n, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "size 0x1 outside 1..65535");
    CHECK_STATUS(moka_png_encode(px, 1, 1, 70000, &png, &n, &err), MOKA_ERR_INVALID_ARG);
    CHECK_STATUS(moka_png_encode(NULL, 1, 1, 1, &png, &n, &err), MOKA_ERR_INVALID_ARG);
    CHECK_STATUS(moka_png_encode(px, 1, 1, 1, NULL, &n, &err), MOKA_ERR_INVALID_ARG);
    return 0;
}

MOKA_TEST_MAIN(layout_follows_the_specification, every_channel_count_decodes_pixel_exact,
               smooth_images_compress, bad_arguments_are_rejected)
