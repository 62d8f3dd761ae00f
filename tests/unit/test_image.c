/* tests/unit/test_image.c -- image decoding, resizing, encoding and list files (src/io/image.c).
 *
 * Independent values: tests/ref/gen_images.py wrote the fixtures tests/data/images/ with PIL and
 * stored in tests/data/images_decode.bin what PIL decodes them to (in moka's (C, H, W) BGR
 * layout), and bilinear resizes computed there in floating point with OpenCV's pixel mapping
 * (plus cv2.resize's own output when python3-opencv was available). Broken files are made here
 * by cutting or damaging the fixtures: every one must give MOKA_ERR_IO, never a crash.
 */
#include <errno.h>
#include <unistd.h>

#include "harness.h"
#include "io/image.h"
#include "test.h"

#define IMAGES MOKA_TEST_DATA "/images/"

static uint8_t *slurp(const char *path, int64_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = len;
    return buf;
}

/* Decodes IMAGES/file with want channels and compares with fixture tensor `name` (C, H, W):
 * every pixel within `tol` grey levels. */
static int decodes_like(const moka_fixture *fx, const char *file, int want, const char *name,
                        int tol)
{
    moka_err err = {0};
    char path[512];
    snprintf(path, sizeof path, "%s%s", IMAGES, file);
    const moka_tensor *ref = moka_fixture_get(fx, name);
    CHECK(ref != NULL);
    uint8_t *pix = NULL;
    int c, h, w;
    CHECK_OK(moka_image_read(path, want, &pix, &c, &h, &w, &err));
    CHECK_EQ(c, ref->shape[0]);
    CHECK_EQ(h, ref->shape[1]);
    CHECK_EQ(w, ref->shape[2]);
    int worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < (int64_t)c * h * w; i++) {
        const int d = abs((int)pix[i] - (int)ref->data[i]);
        if (d > worst) worst = d, at = i;
    }
    free(pix);
    if (worst > tol)
        TEST_FAIL_("%s (want %d) vs %s: pixel %lld differs by %d > %d", file, want, name,
                   (long long)at, worst, tol);
    return 0;
}

static int png_matches_pil(void)
{
    moka_err err = {0};
    moka_fixture fx;
    CHECK_OK(moka_fixture_load(&fx, "images_decode", &err));
    int bad = 0;
    bad |= decodes_like(&fx, "rgb.png", 3, "rgb_png_color", 0);
    bad |= decodes_like(&fx, "rgb.png", 0, "rgb_png_color", 0);
    /* libpng's rgb_to_gray and PIL's convert("L") round the same weights differently. */
    bad |= decodes_like(&fx, "rgb.png", 1, "rgb_png_gray", 1);
    bad |= decodes_like(&fx, "gray.png", 1, "gray_png_gray", 0);
    bad |= decodes_like(&fx, "gray.png", 0, "gray_png_gray", 0);
    bad |= decodes_like(&fx, "gray.png", 3, "gray_png_color", 0);
    bad |= decodes_like(&fx, "rgba.png", 3, "rgba_png_color", 0);
    bad |= decodes_like(&fx, "palette.png", 3, "palette_png_color", 0);
    bad |= decodes_like(&fx, "gray16.png", 0, "gray16_png_gray", 0);
    moka_fixture_deinit(&fx);
    return bad;
}

static int jpeg_matches_pil(void)
{
    moka_err err = {0};
    moka_fixture fx;
    CHECK_OK(moka_fixture_load(&fx, "images_decode", &err));
    /* Both decode with libjpeg-turbo's default (islow DCT, fancy upsampling): exact. */
    int bad = 0;
    bad |= decodes_like(&fx, "rgb.jpg", 3, "rgb_jpg_color", 0);
    bad |= decodes_like(&fx, "rgb.jpg", 0, "rgb_jpg_color", 0);
    bad |= decodes_like(&fx, "rgb.jpg", 1, "rgb_jpg_gray", 0);
    bad |= decodes_like(&fx, "gray.jpg", 0, "gray_jpg_gray", 0);
    bad |= decodes_like(&fx, "gray.jpg", 3, "gray_jpg_color", 0);
    bad |= decodes_like(&fx, "progressive.jpg", 3, "progressive_jpg_color", 0);
    moka_fixture_deinit(&fx);
    return bad;
}

/* Resizes rgb.png's pixels to (oh, ow) and compares with the float reference (and cv2's). */
static int resize_case(const moka_fixture *fx, const uint8_t *src, int oh, int ow)
{
    moka_err err = {0};
    char name[64];
    snprintf(name, sizeof name, "resize_%dx%d", oh, ow);
    const moka_tensor *ref = moka_fixture_get(fx, name);
    CHECK(ref != NULL);
    uint8_t *dst = NULL;
    CHECK_OK(moka_image_resize(src, 3, 10, 14, oh, ow, &dst, &err));
    const int64_t n = 3 * (int64_t)oh * ow;
    CHECK_EQ(moka_tensor_count(ref), n);
    int64_t exact = 0;
    int worst = 0;
    for (int64_t i = 0; i < n; i++) {
        const int d = abs((int)dst[i] - (int)ref->data[i]);
        worst = d > worst ? d : worst;
        exact += d == 0;
    }
    /* 11-bit fixed-point weights (OpenCV's, and moka's) round differently from the float
     * reference now and then, by at most one level; most pixels agree exactly. */
    if (worst > 1 || exact * 10 < n * 9)
        TEST_FAIL_("%s: worst difference %d, %lld of %lld exact", name, worst, (long long)exact,
                   (long long)n);
    snprintf(name, sizeof name, "cv2_resize_%dx%d", oh, ow);
    const moka_tensor *cv = moka_fixture_find(fx, name);
    if (cv) /* cv2.resize's SIMD paths round their own way too: one level */
        for (int64_t i = 0; i < n; i++)
            if (abs((int)dst[i] - (int)cv->data[i]) > 1)
                TEST_FAIL_("%s: element %lld: %d vs %g", name, (long long)i, dst[i], cv->data[i]);
    free(dst);
    return 0;
}

static int resize_matches_opencv_bilinear(void)
{
    moka_err err = {0};
    moka_fixture fx;
    CHECK_OK(moka_fixture_load(&fx, "images_decode", &err));
    uint8_t *src = NULL;
    int c, h, w;
    CHECK_OK(moka_image_read(IMAGES "rgb.png", 3, &src, &c, &h, &w, &err));
    CHECK(c == 3 && h == 10 && w == 14);
    int bad = 0;
    bad |= resize_case(&fx, src, 5, 7);
    bad |= resize_case(&fx, src, 17, 23);
    bad |= resize_case(&fx, src, 4, 19);
    bad |= resize_case(&fx, src, 10, 14);
    bad |= resize_case(&fx, src, 1, 1);
    bad |= resize_case(&fx, src, 25, 3);
    /* The same size is an exact copy; an exact 2x reduction is the rounded 2 x 2 mean. */
    uint8_t *same = NULL, *half = NULL;
    CHECK_OK(moka_image_resize(src, 3, 10, 14, 10, 14, &same, &err));
    CHECK(memcmp(same, src, 3 * 10 * 14) == 0);
    CHECK_OK(moka_image_resize(src, 3, 10, 14, 5, 7, &half, &err));
    for (int k = 0; k < 3; k++)
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++) {
                const uint8_t *p = src + k * 140 + 2 * y * 14 + 2 * x;
                CHECK_EQ(half[k * 35 + y * 7 + x], (p[0] + p[1] + p[14] + p[15] + 2) / 4);
            }
    free(same);
    free(half);
    CHECK_STATUS(moka_image_resize(src, 3, 10, 14, 0, 5, &same, &err), MOKA_ERR_INVALID_ARG);
    CHECK(same == NULL);
    free(src);
    moka_fixture_deinit(&fx);
    return bad;
}

/* Every prefix of every fixture is an error (MOKA_ERR_IO), and so is damage the formats can
 * detect: a flipped byte under PNG's CRCs, or a JPEG whose markers are wiped. */
static int broken_files_give_errors(void)
{
    static const char *const files[] = {"rgb.png",    "gray.png", "rgba.png", "palette.png",
                                        "gray16.png", "rgb.jpg",  "gray.jpg", "progressive.jpg"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", IMAGES, files[f]);
        int64_t n = 0;
        uint8_t *buf = slurp(path, &n);
        CHECK(buf != NULL && n > 16);
        for (int64_t len = 0; len < n; len++) {
            moka_err err = {0};
            uint8_t *pix = (uint8_t *)1;
            int c, h, w;
            const moka_status st = moka_image_decode(buf, len, 0, &pix, &c, &h, &w, &err);
            if (st != MOKA_ERR_IO || pix != NULL)
                TEST_FAIL_("%s cut to %lld of %lld bytes: got %s (%s)", files[f], (long long)len,
                           (long long)n, moka_status_name(st), err.msg);
        }
        moka_err err = {0};
        uint8_t *pix = NULL;
        int c, h, w;
        if (strstr(files[f], ".png")) {
            CHECK_STATUS(moka_image_decode(buf, n - 1, 3, &pix, &c, &h, &w, &err), MOKA_ERR_IO);
            CHECK_CONTAINS(err.msg, "corrupt PNG: file is truncated");
            buf[n - 20] ^= 0x55; /* inside the last IDAT (or its CRC): the CRC check fails */
            CHECK_STATUS(moka_image_decode(buf, n, 3, &pix, &c, &h, &w, &err), MOKA_ERR_IO);
            CHECK_CONTAINS(err.msg, "corrupt PNG");
        } else {
            CHECK_STATUS(moka_image_decode(buf, n / 2, 3, &pix, &c, &h, &w, &err), MOKA_ERR_IO);
            CHECK_CONTAINS(err.msg, "corrupt JPEG: Premature end of JPEG file");
            memset(buf + 3, 0, (size_t)n - 3); /* magic, then nothing a decoder can use */
            CHECK_STATUS(moka_image_decode(buf, n, 3, &pix, &c, &h, &w, &err), MOKA_ERR_IO);
            CHECK_CONTAINS(err.msg, "corrupt JPEG");
        }
        CHECK(pix == NULL);
        free(buf);
    }
    return 0;
}

static int other_inputs_are_rejected_with_messages(void)
{
    moka_err err = {0};
    uint8_t *pix = NULL;
    int c, h, w;
    const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0};
    CHECK_STATUS(moka_image_decode(gif, sizeof gif, 0, &pix, &c, &h, &w, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "not a JPEG or PNG image (starts with bytes 47 49 46 38 39 61 01 00");
    CHECK_STATUS(moka_image_decode(gif, 0, 0, &pix, &c, &h, &w, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "empty file");
    CHECK_STATUS(moka_image_decode(gif, sizeof gif, 2, &pix, &c, &h, &w, &err),
                 MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "want_channels must be 0, 1 or 3, got 2");
    CHECK_STATUS(moka_image_read(IMAGES "no_such.png", 3, &pix, &c, &h, &w, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "'" IMAGES "no_such.png': cannot open: No such file or directory");
    CHECK(pix == NULL);
    /* A PNG header announcing 70000 x 1 pixels is refused before any allocation. */
    int64_t n = 0;
    uint8_t *buf = slurp(IMAGES "gray.png", &n);
    CHECK(buf != NULL);
    buf[16] = 0, buf[17] = 1, buf[18] = 0x11, buf[19] = 0x70; /* width 70000 (CRC now wrong) */
    CHECK_STATUS(moka_image_decode(buf, n, 0, &pix, &c, &h, &w, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "corrupt PNG");
    free(buf);
    return 0;
}

static int encode_round_trips(void)
{
    moka_err err = {0};
    uint8_t *src = NULL, *enc = NULL, *back = NULL;
    int c, h, w, c2, h2, w2;
    int64_t n = 0;
    CHECK_OK(moka_image_read(IMAGES "rgb.png", 3, &src, &c, &h, &w, &err));
    /* PNG is lossless: the BGR planes come back exactly. */
    CHECK_OK(moka_image_encode(src, c, h, w, "png", &enc, &n, &err));
    CHECK_OK(moka_image_decode(enc, n, 0, &back, &c2, &h2, &w2, &err));
    CHECK(c2 == 3 && h2 == h && w2 == w);
    CHECK(memcmp(back, src, (size_t)(c * h * w)) == 0);
    free(enc);
    free(back);
    /* JPEG at quality 95: close, and the channel order survives (B stays B). */
    CHECK_OK(moka_image_encode(src, c, h, w, "jpg", &enc, &n, &err));
    CHECK(n > 3 && enc[0] == 0xFF && enc[1] == 0xD8);
    CHECK_OK(moka_image_decode(enc, n, 3, &back, &c2, &h2, &w2, &err));
    CHECK(c2 == 3 && h2 == h && w2 == w);
    /* The noisy fixture loses much of its colour detail to 4:2:0 chroma subsampling (PIL's
     * encoder at quality 95 gives the same mean error, 23.6), so the colour check is relative:
     * the decoded planes are much nearer the source in B, G, R order than with B and R swapped.
     * The gray encoding below has no chroma and is checked absolutely. */
    double same = 0, swapped = 0;
    for (int i = 0; i < c * h * w; i++) {
        const int k = i / (h * w), j = i % (h * w);
        same += abs((int)back[i] - (int)src[i]);
        swapped += abs((int)back[i] - (int)src[(2 - k) * h * w + j]);
    }
    CHECK(same * 2 < swapped);
    free(enc);
    free(back);
    /* Gray. */
    CHECK_OK(moka_image_encode(src, 1, h, w, "jpeg", &enc, &n, &err));
    CHECK_OK(moka_image_decode(enc, n, 0, &back, &c2, &h2, &w2, &err));
    CHECK_EQ(c2, 1);
    double gray_err = 0;
    for (int i = 0; i < h * w; i++) gray_err += abs((int)back[i] - (int)src[i]);
    CHECK(gray_err / (h * w) < 4.0);
    free(enc);
    free(back);
    CHECK_STATUS(moka_image_encode(src, c, h, w, "bmp", &enc, &n, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "unknown format 'bmp'");
    free(src);
    return 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    fputs(text, f);
    return fclose(f) != 0;
}

static int list_files_parse_like_caffe(void)
{
    moka_err err = {0};
    char path[64];
    snprintf(path, sizeof path, "image_list_%d.txt", (int)getpid());
    CHECK_EQ(write_text(path, "a/b.png 3\r\n\n  \nwith space.jpg  -7 \nc.png\t12"), 0);
    moka_image_list list;
    CHECK_OK(moka_image_list_read(path, &list, &err));
    CHECK_EQ(list.count, 3);
    CHECK(strcmp(list.entries[0].path, "a/b.png") == 0);
    CHECK_EQ(list.entries[0].label, 3);
    CHECK_EQ(list.entries[0].line, 1);
    CHECK(strcmp(list.entries[1].path, "with space.jpg") == 0);
    CHECK_EQ(list.entries[1].label, -7);
    CHECK_EQ(list.entries[1].line, 4);
    CHECK(strcmp(list.entries[2].path, "c.png") == 0);
    CHECK_EQ(list.entries[2].label, 12);
    CHECK_EQ(list.entries[2].line, 5);
    moka_image_list_deinit(&list);

    char want[128];
    CHECK_EQ(write_text(path, "a.png 1\nb.png\n"), 0);
    CHECK_STATUS(moka_image_list_read(path, &list, &err), MOKA_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:2: expected 'path label', got 'b.png'", path);
    CHECK_CONTAINS(err.msg, want);
    CHECK(list.entries == NULL && list.count == 0);
    CHECK_EQ(write_text(path, "a.png 1\n\nb.png x3\n"), 0);
    CHECK_STATUS(moka_image_list_read(path, &list, &err), MOKA_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:3: label 'x3' is not an integer", path);
    CHECK_CONTAINS(err.msg, want);
    CHECK_EQ(write_text(path, "a.png 99999999999\n"), 0);
    CHECK_STATUS(moka_image_list_read(path, &list, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, ":1: label '99999999999' is not an integer");
    CHECK_EQ(write_text(path, "\n\n"), 0);
    CHECK_STATUS(moka_image_list_read(path, &list, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "the list holds no 'path label' lines");
    unlink(path);
    CHECK_STATUS(moka_image_list_read(path, &list, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "cannot open");
    return 0;
}

MOKA_TEST_MAIN(png_matches_pil, jpeg_matches_pil, resize_matches_opencv_bilinear,
               broken_files_give_errors, other_inputs_are_rejected_with_messages,
               encode_round_trips, list_files_parse_like_caffe)
