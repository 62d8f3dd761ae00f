/* tests/unit/test_idx.c -- the IDX reader (src/io/idx.c) on files this test writes itself:
 * plain and gzip round trips from disk and from memory, and every way a file can be wrong
 * (bad magic, unsupported type, truncated header or data, trailing data, corrupt gzip, random
 * garbage, every truncation length of a small file).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "io/idx.h"
#include "test.h"

static char tmpdir[256];

/* A fresh directory under $TMPDIR (or /tmp) for this process's files. */
static const char *tmp_path(const char *name)
{
    static char buf[512];
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/moka_idx_XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(1);
        }
    }
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* Builds an IDX image in memory: magic 00 00 type ndim, big-endian dims, then `ndata` bytes of
 * `data` (which need not match the dims: tests lie on purpose). Returns its length. */
static size_t make_idx(uint8_t *out, int type, int ndim, const uint32_t *dims, const uint8_t *data,
                       size_t ndata)
{
    size_t n = 0;
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = (uint8_t)type;
    out[n++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        out[n++] = (uint8_t)(dims[i] >> 24);
        out[n++] = (uint8_t)(dims[i] >> 16);
        out[n++] = (uint8_t)(dims[i] >> 8);
        out[n++] = (uint8_t)dims[i];
    }
    if (ndata) memcpy(out + n, data, ndata);
    return n + ndata;
}

static int write_plain(const char *path, const uint8_t *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    const size_t w = fwrite(bytes, 1, n, f);
    return (fclose(f) != 0 || w != n) ? 1 : 0;
}

static int write_gz(const char *path, const uint8_t *bytes, size_t n)
{
    gzFile g = gzopen(path, "wb9");
    if (!g) return 1;
    const int w = n ? gzwrite(g, bytes, (unsigned)n) : 0;
    return (gzclose(g) != Z_OK || w != (int)n) ? 1 : 0;
}

/* Reads a whole file into a malloc'd buffer. */
static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* 5 images of 3 x 4 with byte (i*12 + j) * 7 mod 256: every byte distinct from its neighbours. */
static uint8_t pixels[60];
static void fill_pixels(void)
{
    for (int i = 0; i < 60; i++) pixels[i] = (uint8_t)(i * 7 % 256);
}

static int check_images(const moka_idx *idx)
{
    CHECK_EQ(idx->ndim, 3);
    CHECK_EQ(idx->dims[0], 5);
    CHECK_EQ(idx->dims[1], 3);
    CHECK_EQ(idx->dims[2], 4);
    CHECK_EQ(idx->count, 60);
    CHECK(idx->data != NULL);
    for (int i = 0; i < 60; i++) CHECK_EQ(idx->data[i], pixels[i]);
    return 0;
}

static int round_trips_plain_and_gzip_files(void)
{
    moka_err err = {0};
    uint8_t buf[256];
    fill_pixels();
    const size_t n = make_idx(buf, 0x08, 3, (const uint32_t[]){5, 3, 4}, pixels, 60);
    CHECK_EQ(n, 4 + 12 + 60);
    CHECK_EQ(write_plain(tmp_path("img.idx"), buf, n), 0);
    CHECK_EQ(write_gz(tmp_path("img.idx.gz"), buf, n), 0);
    moka_idx idx;
    CHECK_OK(moka_idx_read(tmp_path("img.idx"), &idx, &err));
    if (check_images(&idx)) return 1;
    moka_idx_deinit(&idx);
    CHECK(idx.data == NULL);
    moka_idx_deinit(&idx); /* twice is harmless */

    CHECK_OK(moka_idx_read(tmp_path("img.idx.gz"), &idx, &err));
    if (check_images(&idx)) return 1;
    moka_idx_deinit(&idx);

    /* The gzip file really is compressed (starts with the gzip magic), and the memory path
     * reads both forms too. */
    size_t gzn = 0;
    uint8_t *gz = slurp(tmp_path("img.idx.gz"), &gzn);
    CHECK(gz != NULL);
    CHECK(gzn > 2 && gz[0] == 0x1f && gz[1] == 0x8b);
    CHECK_OK(moka_idx_read_mem(gz, (int64_t)gzn, "mem.gz", &idx, &err));
    if (check_images(&idx)) return 1;
    moka_idx_deinit(&idx);
    CHECK_OK(moka_idx_read_mem(buf, (int64_t)n, "mem", &idx, &err));
    if (check_images(&idx)) return 1;
    moka_idx_deinit(&idx);
    free(gz);

    /* A 1-D labels file. */
    const uint8_t labels[5] = {9, 0, 3, 3, 7};
    const size_t ln = make_idx(buf, 0x08, 1, (const uint32_t[]){5}, labels, 5);
    CHECK_EQ(write_gz(tmp_path("lab.gz"), buf, ln), 0);
    CHECK_OK(moka_idx_read(tmp_path("lab.gz"), &idx, &err));
    CHECK_EQ(idx.ndim, 1);
    CHECK_EQ(idx.dims[0], 5);
    for (int i = 0; i < 5; i++) CHECK_EQ(idx.data[i], labels[i]);
    char dims[64];
    CHECK(strcmp(moka_idx_dims_str(&idx, dims, sizeof dims), "5") == 0);
    moka_idx_deinit(&idx);

    /* A zero dim means no data at all, however large the other dims are. */
    const size_t en =
        make_idx(buf, 0x08, 3, (const uint32_t[]){0xFFFFFFFFu, 0, 0xFFFFFFFFu}, NULL, 0);
    CHECK_OK(moka_idx_read_mem(buf, (int64_t)en, "empty", &idx, &err));
    CHECK_EQ(idx.count, 0);
    CHECK_EQ(idx.dims[0], 0xFFFFFFFFu);
    CHECK_EQ(idx.dims[1], 0);
    CHECK(strcmp(moka_idx_dims_str(&idx, dims, sizeof dims), "4294967295 x 0 x 4294967295") == 0);
    moka_idx_deinit(&idx);
    return 0;
}

/* Two gzip members back to back (what `cat a.gz b.gz` makes) read as one stream, on disk and in
 * memory, as gzread does. */
static int reads_concatenated_gzip_members(void)
{
    moka_err err = {0};
    uint8_t buf[256];
    fill_pixels();
    const size_t n = make_idx(buf, 0x08, 3, (const uint32_t[]){5, 3, 4}, pixels, 60);
    CHECK_EQ(write_gz(tmp_path("part1.gz"), buf, 30), 0);
    CHECK_EQ(write_gz(tmp_path("part2.gz"), buf + 30, n - 30), 0);
    size_t n1, n2;
    uint8_t *a = slurp(tmp_path("part1.gz"), &n1), *b = slurp(tmp_path("part2.gz"), &n2);
    CHECK(a && b);
    uint8_t *cat = malloc(n1 + n2);
    memcpy(cat, a, n1);
    memcpy(cat + n1, b, n2);
    CHECK_EQ(write_plain(tmp_path("cat.gz"), cat, n1 + n2), 0);
    moka_idx idx;
    CHECK_OK(moka_idx_read(tmp_path("cat.gz"), &idx, &err));
    if (check_images(&idx)) return 1;
    moka_idx_deinit(&idx);
    CHECK_OK(moka_idx_read_mem(cat, (int64_t)(n1 + n2), "cat", &idx, &err));
    if (check_images(&idx)) return 1;
    moka_idx_deinit(&idx);
    free(a);
    free(b);
    free(cat);
    return 0;
}

static int relative_paths_are_taken_from_the_current_directory(void)
{
    moka_err err = {0};
    uint8_t buf[256];
    fill_pixels();
    const size_t n = make_idx(buf, 0x08, 3, (const uint32_t[]){5, 3, 4}, pixels, 60);
    CHECK_EQ(write_plain(tmp_path("rel.idx"), buf, n), 0);
    char cwd[1024];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_EQ(chdir(tmpdir), 0);
    moka_idx idx;
    const moka_status st = moka_idx_read("rel.idx", &idx, &err);
    CHECK_EQ(chdir(cwd), 0);
    CHECK_OK(st);
    if (check_images(&idx)) return 1;
    moka_idx_deinit(&idx);
    return 0;
}

static int missing_file_names_path_and_reason(void)
{
    moka_err err = {0};
    moka_idx idx;
    CHECK_STATUS(moka_idx_read("/nonexistent-moka/train-images.gz", &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg,
                   "cannot open '/nonexistent-moka/train-images.gz': No such file or directory");
    CHECK(idx.data == NULL);
    /* A directory opens but cannot be read. */
    CHECK_STATUS(moka_idx_read(tmpdir, &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "Is a directory");
    return 0;
}

/* Writes `bytes` plain and gzip-compressed, and checks file and memory reads all fail with
 * `code` and a message containing "'<name>': " + want. */
static int fails_everywhere(const uint8_t *bytes, size_t n, moka_status code, const char *want)
{
    moka_err err = {0};
    moka_idx idx;
    char expect[1024];
    const char *plain = "bad.idx", *gz = "bad.idx.gz";
    CHECK_EQ(write_plain(tmp_path(plain), bytes, n), 0);
    CHECK_EQ(write_gz(tmp_path(gz), bytes, n), 0);
    const char *names[2] = {plain, gz};
    for (int i = 0; i < 2; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s", tmp_path(names[i]));
        CHECK_STATUS(moka_idx_read(path, &idx, &err), code);
        snprintf(expect, sizeof expect, "'%s': %s", path, want);
        CHECK_CONTAINS(err.msg, expect);
        CHECK(idx.data == NULL);
        size_t fn = 0;
        uint8_t *fb = slurp(path, &fn);
        CHECK_STATUS(moka_idx_read_mem(fb, (int64_t)fn, "m", &idx, &err), code);
        free(fb);
        snprintf(expect, sizeof expect, "'m': %s", want);
        CHECK_CONTAINS(err.msg, expect);
    }
    return 0;
}

static int truncated_data_reports_header_and_bytes_found(void)
{
    static uint8_t buf[4 + 12 + 1234];
    memset(buf, 0x55, sizeof buf);
    const size_t n = make_idx(buf, 0x08, 3, (const uint32_t[]){60000, 28, 28}, NULL, 0) + 1234;
    return fails_everywhere(buf, n, MOKA_ERR_IO,
                            "truncated IDX file: header says 60000 x 28 x 28 (47040000 bytes of "
                            "data), found 1234");
}

static int trailing_data_is_an_error(void)
{
    uint8_t buf[256];
    fill_pixels();
    const size_t n = make_idx(buf, 0x08, 3, (const uint32_t[]){2, 3, 4}, pixels, 30);
    return fails_everywhere(buf, n, MOKA_ERR_IO,
                            "IDX file has trailing data: header says 2 x 3 x 4 (24 bytes of data), "
                            "found 30");
}

static int header_errors_have_messages(void)
{
    uint8_t buf[64];
    size_t n = make_idx(buf, 0x08, 1, (const uint32_t[]){3}, (const uint8_t[]){1, 2, 3}, 3);
    buf[0] = 'P';
    buf[1] = 'K';
    if (fails_everywhere(buf, n, MOKA_ERR_IO, "not an IDX file: bad magic 50 4b")) return 1;
    n = make_idx(buf, 0x07, 1, (const uint32_t[]){3}, (const uint8_t[]){1, 2, 3}, 3);
    if (fails_everywhere(buf, n, MOKA_ERR_IO,
                         "not an IDX file: bad magic, unknown element type 0x07"))
        return 1;
    n = make_idx(buf, 0x0D, 1, (const uint32_t[]){1}, (const uint8_t[]){0, 0, 0x80, 0x3f}, 4);
    if (fails_everywhere(buf, n, MOKA_ERR_UNSUPPORTED,
                         "IDX element type 0x0D (float32) is not supported (moka reads only 0x08, "
                         "unsigned byte)"))
        return 1;
    n = make_idx(buf, 0x08, 0, NULL, NULL, 0);
    if (fails_everywhere(buf, n, MOKA_ERR_IO, "IDX header has 0 dimensions")) return 1;
    n = make_idx(buf, 0x08, 9, (const uint32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, (const uint8_t[]){7},
                 1);
    if (fails_everywhere(buf, n, MOKA_ERR_UNSUPPORTED,
                         "IDX file has 9 dimensions, moka reads at "
                         "most 8"))
        return 1;
    /* Three dims announced, two given. */
    n = make_idx(buf, 0x08, 3, (const uint32_t[]){5, 3, 4}, NULL, 0) - 4;
    if (fails_everywhere(buf, n, MOKA_ERR_IO,
                         "truncated IDX file: the header announces 3 dims (16 bytes), found 12"))
        return 1;
    if (fails_everywhere(buf, 0, MOKA_ERR_IO, "empty file, not an IDX file")) return 1;
    if (fails_everywhere(buf, 3, MOKA_ERR_IO,
                         "truncated IDX file: 3 bytes, shorter than the 4-byte"))
        return 1;
    /* A header that claims far more than could exist is refused before any allocation. */
    n = make_idx(buf, 0x08, 3, (const uint32_t[]){0xFFFFFFFFu, 0xFFFFFFFFu, 2}, NULL, 0);
    if (fails_everywhere(buf, n, MOKA_ERR_IO,
                         "IDX header says 4294967295 x 4294967295 x 2, too large to be real"))
        return 1;
    /* A big but plausible claim with no data behind it costs only what is read. */
    n = make_idx(buf, 0x08, 3, (const uint32_t[]){65535, 65535, 100}, (const uint8_t[]){1, 2}, 2);
    return fails_everywhere(buf, n, MOKA_ERR_IO,
                            "truncated IDX file: header says 65535 x 65535 x 100 (429483622500 "
                            "bytes of data), found 2");
}

static int corrupt_gzip_is_reported(void)
{
    moka_err err = {0};
    uint8_t buf[256];
    fill_pixels();
    const size_t n = make_idx(buf, 0x08, 3, (const uint32_t[]){5, 3, 4}, pixels, 60);
    CHECK_EQ(write_gz(tmp_path("c.gz"), buf, n), 0);
    size_t gzn = 0;
    uint8_t *gz = slurp(tmp_path("c.gz"), &gzn);
    CHECK(gz && gzn > 20);
    /* Keep the 10-byte gzip header and make the first deflate block an invalid type (BTYPE 11):
     * inflate must stop before producing a byte. */
    gz[10] = 0x07;
    CHECK_EQ(write_plain(tmp_path("c.gz"), gz, gzn), 0);
    moka_idx idx;
    char expect[1024];
    snprintf(expect, sizeof expect, "'%s': gzip data is corrupt: invalid block type",
             tmp_path("c.gz"));
    CHECK_STATUS(moka_idx_read(tmp_path("c.gz"), &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, expect);
    CHECK_STATUS(moka_idx_read_mem(gz, (int64_t)gzn, "m.gz", &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "'m.gz': gzip data is corrupt: invalid block type");
    /* Without a moka_err the status alone still says what went wrong. */
    CHECK_EQ(moka_idx_read_mem(gz, (int64_t)gzn, "m.gz", &idx, NULL), MOKA_ERR_IO);
    CHECK_EQ(moka_idx_read(tmp_path("c.gz"), &idx, NULL), MOKA_ERR_IO);
    /* A wrong checksum in the trailer: every data byte decodes, the CRC check fails. */
    CHECK_EQ(write_gz(tmp_path("c.gz"), buf, n), 0);
    free(gz);
    gz = slurp(tmp_path("c.gz"), &gzn);
    gz[gzn - 8] ^= 0xFF;
    CHECK_STATUS(moka_idx_read_mem(gz, (int64_t)gzn, "m.gz", &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "'m.gz': gzip data is corrupt: incorrect data check");
    CHECK_EQ(write_plain(tmp_path("c.gz"), gz, gzn), 0);
    CHECK_STATUS(moka_idx_read(tmp_path("c.gz"), &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "gzip data is corrupt: incorrect data check");
    free(gz);
    return 0;
}

/* Every proper prefix of a valid file, plain or gzip, fails with MOKA_ERR_IO; the whole file
 * reads. */
static int every_truncation_fails(void)
{
    moka_err err = {0};
    uint8_t buf[256];
    fill_pixels();
    const size_t n = make_idx(buf, 0x08, 3, (const uint32_t[]){5, 3, 4}, pixels, 60);
    CHECK_EQ(write_gz(tmp_path("t.gz"), buf, n), 0);
    size_t gzn = 0;
    uint8_t *gz = slurp(tmp_path("t.gz"), &gzn);
    CHECK(gz != NULL);
    moka_idx idx;
    for (size_t len = 0; len < n; len++) {
        CHECK_STATUS(moka_idx_read_mem(buf, (int64_t)len, "p", &idx, &err), MOKA_ERR_IO);
        CHECK(idx.data == NULL);
    }
    for (size_t len = 0; len < gzn; len++) {
        err.msg[0] = '\0';
        if (moka_idx_read_mem(gz, (int64_t)len, "g", &idx, &err) != MOKA_ERR_IO)
            TEST_FAIL_("prefix of %zu of %zu gzip bytes: %s", len, gzn, err.msg);
        CHECK(idx.data == NULL);
    }
    /* Only the 8-byte trailer (CRC and length) missing: the data is complete but unchecked. */
    CHECK_STATUS(moka_idx_read_mem(gz, (int64_t)gzn - 4, "g", &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "'g': truncated gzip file: the compressed stream ends before its "
                            "checksum");
    CHECK_EQ(write_plain(tmp_path("t.gz"), gz, gzn - 4), 0);
    CHECK_STATUS(moka_idx_read(tmp_path("t.gz"), &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "truncated gzip file");
    /* Half a gzip file on disk: the data found is counted. */
    CHECK_EQ(write_plain(tmp_path("t.gz"), gz, gzn / 2), 0);
    CHECK_STATUS(moka_idx_read(tmp_path("t.gz"), &idx, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "truncated IDX file");
    free(gz);
    return 0;
}

/* Random bytes and random mutations of a valid file never crash the reader (ASan/UBSan builds
 * check memory errors), and a success always describes consistent data. */
static int garbage_input_never_crashes(void)
{
    moka_err err = {0};
    uint8_t buf[256], mut[256];
    fill_pixels();
    const size_t n = make_idx(buf, 0x08, 3, (const uint32_t[]){5, 3, 4}, pixels, 60);
    uint64_t x = 12345;
    int ok = 0;
    for (int trial = 0; trial < 20000; trial++) {
        memcpy(mut, buf, n);
        size_t len = n;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        if (trial % 2) {
            /* Flip 1-3 bytes, mostly in the header. */
            for (int k = 0; k < 1 + (int)(x >> 60) % 3; k++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                const size_t at = (x >> 33) % (k == 0 ? 16 : n);
                mut[at] ^= (uint8_t)(x >> 20);
            }
        } else {
            len = (x >> 40) % sizeof mut;
            for (size_t i = 0; i < len; i++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                mut[i] = (uint8_t)(x >> 56);
            }
            if (trial % 4 == 0 && len >= 4) mut[0] = mut[1] = 0; /* get past the magic */
        }
        moka_idx idx;
        const moka_status st = moka_idx_read_mem(mut, (int64_t)len, "r", &idx, &err);
        if (st == MOKA_OK) {
            int64_t count = 1; /* a zero dim empties the file, whatever the others say */
            for (int d = 0; d < idx.ndim; d++)
                if (idx.dims[d] == 0) count = 0;
            for (int d = 0; d < idx.ndim && count; d++) count *= idx.dims[d];
            CHECK_EQ(count, idx.count);
            CHECK_EQ((int64_t)len, 4 + 4 * idx.ndim + idx.count);
            ok++;
            moka_idx_deinit(&idx);
        } else {
            CHECK(st == MOKA_ERR_IO || st == MOKA_ERR_UNSUPPORTED);
            CHECK(strncmp(err.msg, "'r': ", 5) == 0);
            CHECK(idx.data == NULL);
        }
    }
    CHECK(ok > 0); /* some mutations (in the data bytes) leave a valid file */
    return 0;
}

static int cleanup(void)
{
    static const char *const names[] = {"img.idx",    "img.idx.gz", "lab.gz",  "part1.gz",
                                        "part2.gz",   "cat.gz",     "rel.idx", "bad.idx",
                                        "bad.idx.gz", "c.gz",       "t.gz"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(tmp_path(names[i]));
    CHECK_EQ(rmdir(tmpdir), 0);
    return 0;
}

MOKA_TEST_MAIN(round_trips_plain_and_gzip_files, reads_concatenated_gzip_members,
               relative_paths_are_taken_from_the_current_directory,
               missing_file_names_path_and_reason, truncated_data_reports_header_and_bytes_found,
               trailing_data_is_an_error, header_errors_have_messages, corrupt_gzip_is_reported,
               every_truncation_fails, garbage_input_never_crashes, cleanup)
