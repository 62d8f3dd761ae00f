/* tests/layers/test_data_shard.c -- data-parallel reading in the file-backed data layers
 * (IDXData, Data over LMDB, ImageData, HDF5Data). With ctx rank r of world_size W and batch B:
 *
 *   - at every pass t, rank r's sample b is exactly (pixels and label) sample r + b * W of the
 *     batch of W * B that one process (rank 0 of 1) reads at pass t, so the ranks' batches
 *     together are that batch; checked for W = 1, 2, 3 over 6 passes, which wrap the 10 samples
 *     of every fixture more than once, in file order and with shuffle, rand_skip and random
 *     mirroring (whichever the layer has);
 *   - seek(P) puts rank r on sample P + r of the single process's stream, then + W each, for
 *     W = 1, 2, 3 and P = 7 (no multiple of W = 2 or 3), on a layer that has already read;
 *   - the same through a whole net (moka_net_create_from_text + moka_net_seek);
 *   - a context that names no valid shard is an error from setup, and an HDF5 file that fails
 *     to open while the stream passes over it stops the layer with a message.
 *
 * The reference is always one process reading the same files with the same seed; what that
 * single process reads is checked against the file contents by test_idx_data.c, test_data.c,
 * test_image_data.c and test_hdf5_data.c. The fixtures are written here into a scratch
 * directory: 10 samples per layer, each carrying its own label, so a wrong shard shows up as a
 * wrong label, and images that are not left-right symmetric, so a mirror draw that depends on
 * the world size shows up in the pixels.
 */
#define _XOPEN_SOURCE 700 /* nftw (cleanup) */

#include <errno.h>
#include <ftw.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/net_internal.h"
#include "harness.h"
#include "io/datum.h"
#include "io/db.h"
#include "io/png.h"
#include "moka/log.h"
#include "test.h"

static char tmpdir[256];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void) { nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/moka_shard_XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(1);
        }
        atexit(remove_tmpdir);
    }
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

/* ---- fixtures: N samples of 1 x H x W for IDX, LMDB and PNG, label 100 + i ---- */

enum { N = 10, H = 3, W = 4, HW = H * W };
static uint8_t pix(int i, int j) { return (uint8_t)((i * HW + j) * 7 % 256); }

static int write_file(const char *name, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(tmp_path(name), "wb");
    if (!f) return 1;
    int ok = fwrite(a, 1, na, f) == na;
    if (nb) ok &= fwrite(b, 1, nb, f) == nb;
    return (fclose(f) == 0 && ok) ? 0 : 1;
}

static int write_idx(void)
{
    static const uint8_t im_head[16] = {0, 0, 8, 3, 0, 0, 0, N, 0, 0, 0, H, 0, 0, 0, W};
    static const uint8_t lb_head[8] = {0, 0, 8, 1, 0, 0, 0, N};
    uint8_t im[N * HW], lb[N];
    for (int i = 0; i < N; i++) {
        lb[i] = (uint8_t)(100 + i);
        for (int j = 0; j < HW; j++) im[i * HW + j] = pix(i, j);
    }
    CHECK_EQ(write_file("im.idx", im_head, sizeof im_head, im, sizeof im), 0);
    CHECK_EQ(write_file("lb.idx", lb_head, sizeof lb_head, lb, sizeof lb), 0);
    return 0;
}

static int write_lmdb(void)
{
    moka_err err = {0};
    moka_db_writer *w;
    CHECK_OK(moka_db_writer_create(tmp_path("db"), &w, &err));
    for (int i = 0; i < N; i++) {
        uint8_t px[HW];
        for (int j = 0; j < HW; j++) px[j] = pix(i, j);
        const moka_datum d = {.channels = 1,
                              .height = H,
                              .width = W,
                              .label = 100 + i,
                              .data = px,
                              .data_nbytes = HW};
        uint8_t *val;
        int64_t nb;
        CHECK_OK(moka_datum_encode(&d, &val, &nb, &err));
        char key[32];
        snprintf(key, sizeof key, "%08d", i);
        const moka_status st = moka_db_writer_put(w, key, val, nb, &err);
        free(val);
        CHECK_OK(st);
    }
    CHECK_OK(moka_db_writer_commit(w, &err));
    return 0;
}

static int write_images(void)
{
    moka_err err = {0};
    char list[1024] = "";
    for (int i = 0; i < N; i++) {
        uint8_t px[HW];
        for (int j = 0; j < HW; j++) px[j] = pix(i, j);
        uint8_t *png = NULL;
        size_t n = 0;
        CHECK_OK(moka_png_encode(px, 1, H, W, &png, &n, &err));
        char name[32];
        snprintf(name, sizeof name, "img%d.png", i);
        const int bad = write_file(name, png, n, NULL, 0);
        free(png);
        CHECK_EQ(bad, 0);
        char line[64];
        snprintf(line, sizeof line, "img%d.png %d\n", i, 100 + i);
        strcat(list, line);
    }
    CHECK_EQ(write_file("list.txt", list, strlen(list), NULL, 0), 0);
    return 0;
}

/* HDF5: files of 4, 1 and 5 rows (10 in all); row r of file f holds data (2 x 3) values
 * f * 100 + r * 10 + j and label f * 100 + r. The one-row file lies wholly in other ranks'
 * shards for W = 3 at some passes, so skipping over a file without reading it is covered. */
enum { H5_FILES = 3, H5_ROW = 6 };
static const int h5_rows[H5_FILES] = {4, 1, 5};

static int write_h5(void)
{
    FILE *list = fopen(tmp_path("h5.txt"), "w");
    CHECK(list != NULL);
    for (int f = 0; f < H5_FILES; f++) {
        char name[32];
        snprintf(name, sizeof name, "f%d.h5", f);
        fprintf(list, "%s\n", tmp_path(name));
        hid_t file = H5Fcreate(tmp_path(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(file >= 0);
        float d[5 * H5_ROW], lab[5];
        for (int r = 0; r < h5_rows[f]; r++) {
            lab[r] = (float)(f * 100 + r);
            for (int j = 0; j < H5_ROW; j++) d[r * H5_ROW + j] = (float)(f * 100 + r * 10 + j);
        }
        const hsize_t dd[3] = {(hsize_t)h5_rows[f], 2, 3}, ld[1] = {(hsize_t)h5_rows[f]};
        const hid_t ds_space = H5Screate_simple(3, dd, NULL);
        const hid_t l_space = H5Screate_simple(1, ld, NULL);
        const hid_t ds = H5Dcreate2(file, "data", H5T_IEEE_F32LE, ds_space, H5P_DEFAULT,
                                    H5P_DEFAULT, H5P_DEFAULT);
        const hid_t ls = H5Dcreate2(file, "label", H5T_IEEE_F32LE, l_space, H5P_DEFAULT,
                                    H5P_DEFAULT, H5P_DEFAULT);
        CHECK(ds >= 0 && ls >= 0);
        CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d) >= 0);
        CHECK(H5Dwrite(ls, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab) >= 0);
        H5Dclose(ls);
        H5Dclose(ds);
        H5Sclose(l_space);
        H5Sclose(ds_space);
        CHECK(H5Fclose(file) >= 0);
    }
    CHECK_EQ(fclose(list), 0);
    return 0;
}

static int fixtures(void)
{
    static int written;
    if (written) return 0;
    moka_log_set(NULL, NULL, MOKA_LOG_WARN); /* no "N samples of ..." line per layer */
    CHECK_EQ(write_idx(), 0);
    CHECK_EQ(write_lmdb(), 0);
    CHECK_EQ(write_images(), 0);
    CHECK_EQ(write_h5(), 0);
    written = 1;
    return 0;
}

/* ---- layers ---- */

typedef enum { IDX, LMDB, IMAGES, HDF5 } kind;

/* The LayerParameter text of `k` with batch `batch`. `random` turns on everything random the
 * layer has: shuffle (not Data), rand_skip (not HDF5Data) and mirror (not HDF5Data). */
static void layer_text(kind k, int64_t batch, bool random, char *cfg, size_t n)
{
    const char *mirror = random ? "transform_param { mirror: true }" : "";
    const long long b = (long long)batch;
    switch (k) {
    case IDX:
        snprintf(cfg, n,
                 "name: 'd' type: 'IDXData' top: 'data' top: 'label' %s idx_data_param { "
                 "images: '%s' labels: '%s' batch_size: %lld %s }",
                 mirror, tmp_path("im.idx"), tmp_path("lb.idx"), b,
                 random ? "shuffle: true rand_skip: 7" : "");
        break;
    case LMDB:
        snprintf(cfg, n,
                 "name: 'd' type: 'Data' top: 'data' top: 'label' %s data_param { source: '%s' "
                 "backend: LMDB batch_size: %lld %s }",
                 mirror, tmp_path("db"), b, random ? "rand_skip: 7" : "");
        break;
    case IMAGES:
        snprintf(cfg, n,
                 "name: 'd' type: 'ImageData' top: 'data' top: 'label' %s image_data_param { "
                 "source: '%s' root_folder: '%s/' is_color: false batch_size: %lld %s }",
                 mirror, tmp_path("list.txt"), tmpdir, b,
                 random ? "shuffle: true rand_skip: 7" : "");
        break;
    case HDF5:
        snprintf(cfg, n,
                 "name: 'd' type: 'HDF5Data' top: 'data' top: 'label' hdf5_data_param { "
                 "source: '%s' batch_size: %lld %s }",
                 tmp_path("h5.txt"), b, random ? "shuffle: true" : "");
        break;
    }
}

/* One harness of layer `k`, reader `rank` of `world`. The seed is the same for every reader. */
static moka_status make(moka_harness *h, kind k, int64_t batch, bool random, int rank, int world,
                        moka_err *err)
{
    char cfg[2048];
    layer_text(k, batch, random, cfg, sizeof cfg);
    MOKA_TRY(moka_harness_init(h, cfg, MOKA_TRAIN, 5, err));
    h->ctx.rank = rank;
    h->ctx.world_size = world;
    return moka_harness_setup(h, err);
}

enum { MAX_SAMPLES = 64, MAX_FLOATS = 12 };

/* What one reader read: `count` samples of `floats` floats each, and their labels. */
typedef struct {
    int64_t count, floats;
    float data[MAX_SAMPLES * MAX_FLOATS];
    float label[MAX_SAMPLES];
} reading;

/* Reads `passes` batches from reader `rank` of `world`. With seek >= 0, first reads one batch
 * (so the layer has state to throw away), then seeks to `seek`. */
static int read_shard(kind k, bool random, int64_t batch, int rank, int world, int64_t seek,
                      int passes, reading *out)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(make(&h, k, batch, random, rank, world, &err));
    out->floats = moka_tensor_count(h.top[0]) / batch;
    out->count = passes * batch;
    CHECK(out->floats <= MAX_FLOATS && out->count <= MAX_SAMPLES);
    CHECK_EQ(moka_tensor_count(h.top[1]), batch);
    if (seek >= 0) {
        CHECK_OK(moka_harness_forward(&h, &err));
        CHECK_OK(h.layer->ops->seek(h.layer, seek, &err));
    }
    for (int t = 0; t < passes; t++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        memcpy(out->data + t * batch * out->floats, h.top[0]->data,
               (size_t)(batch * out->floats) * sizeof(float));
        memcpy(out->label + t * batch, h.top[1]->data, (size_t)batch * sizeof(float));
    }
    moka_harness_deinit(&h);
    return 0;
}

/* Sample j of `got` equals sample i of `want`, pixels and label, bit for bit. */
static int same_sample(const reading *got, int64_t j, const reading *want, int64_t i)
{
    CHECK(i < want->count && j < got->count);
    CHECK_EQ(got->floats, want->floats);
    if (got->label[j] != want->label[i] ||
        memcmp(got->data + j * got->floats, want->data + i * want->floats,
               (size_t)got->floats * sizeof(float)) != 0) {
        fprintf(stderr, "sample %lld (label %g) differs from reference sample %lld (label %g)\n",
                (long long)j, got->label[j], (long long)i, want->label[i]);
        return 1;
    }
    return 0;
}

/* W readers of batch B against one reader of batch W * B, pass by pass. */
static int ranks_read_the_single_batch(kind k, bool random)
{
    enum { B = 2, T = 6 };
    static reading single, rank;
    for (int w = 1; w <= 3; w++) {
        CHECK_EQ(read_shard(k, random, w * B, 0, 1, -1, T, &single), 0);
        for (int r = 0; r < w; r++) {
            CHECK_EQ(read_shard(k, random, B, r, w, -1, T, &rank), 0);
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++) {
                    if (same_sample(&rank, t * B + b, &single, t * w * B + r + b * w)) {
                        fprintf(stderr, "  W = %d, rank %d, pass %d, sample %d\n", w, r, t, b);
                        return 1;
                    }
                }
        }
    }
    return 0;
}

/* seek(P) on reader r of W, then passes of B: the single process's samples from P on. */
static int seek_continues_the_single_stream(kind k, bool random)
{
    enum { B = 2, T = 4, P = 7 };
    static reading stream, rank;
    /* The reference: one process of batch 1 reading from the start, never seeking. */
    CHECK_EQ(read_shard(k, random, 1, 0, 1, -1, P + T * 3 * B, &stream), 0);
    for (int w = 1; w <= 3; w++)
        for (int r = 0; r < w; r++) {
            CHECK_EQ(read_shard(k, random, B, r, w, P, T, &rank), 0);
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++)
                    if (same_sample(&rank, t * B + b, &stream, P + t * w * B + r + b * w)) {
                        fprintf(stderr, "  seek %d, W = %d, rank %d, pass %d, sample %d\n", P, w, r,
                                t, b);
                        return 1;
                    }
        }
    return 0;
}

static int check_kind(kind k)
{
    CHECK_EQ(fixtures(), 0);
    for (int random = 0; random <= 1; random++) {
        CHECK_EQ(ranks_read_the_single_batch(k, random), 0);
        CHECK_EQ(seek_continues_the_single_stream(k, random), 0);
    }
    return 0;
}

static int idx_data_shards_the_single_order(void) { return check_kind(IDX); }
static int data_shards_the_single_order(void) { return check_kind(LMDB); }
static int image_data_shards_the_single_order(void) { return check_kind(IMAGES); }
static int hdf5_data_shards_the_single_order(void) { return check_kind(HDF5); }

/* The random settings really are in play: shuffled or skipped, the single reader's first
 * batch is not the file's first samples, and some mirrored sample differs from its file pixels
 * (so the mirror-draw checks above could fail). */
static int the_random_variant_is_random(void)
{
    CHECK_EQ(fixtures(), 0);
    static reading r;
    for (kind k = IDX; k <= IMAGES; k++) {
        CHECK_EQ(read_shard(k, true, 10, 0, 1, -1, 2, &r), 0);
        int in_order = 1, mirrored = 0;
        for (int i = 0; i < 10; i++) in_order &= r.label[i] == 100 + i;
        CHECK(!in_order);
        for (int i = 0; i < 20; i++) {
            const int s = (int)r.label[i] - 100;
            CHECK(s >= 0 && s < N);
            mirrored += r.data[i * HW] != pix(s, 0);
        }
        CHECK(mirrored > 0 && mirrored < 20);
    }
    CHECK_EQ(read_shard(HDF5, true, 10, 0, 1, -1, 1, &r), 0);
    int in_order = 1;
    for (int i = 0; i < 4; i++) in_order &= r.label[i] == i;
    CHECK(!in_order);
    return 0;
}

/* The path a resumed data-parallel run takes: a net built from prototxt text with the rank in
 * its ctx, positioned by moka_net_seek, read with moka_net_forward. */
static int a_net_seeks_by_global_position(void)
{
    CHECK_EQ(fixtures(), 0);
    moka_err err = {0};
    enum { B = 3, T = 4, P = 11, WORLD = 3 };
    static reading stream;
    CHECK_EQ(read_shard(IDX, true, 1, 0, 1, -1, P + T * WORLD * B, &stream), 0);
    char layer[2048], text[2400];
    layer_text(IDX, B, true, layer, sizeof layer);
    snprintf(text, sizeof text, "name: 'shard' layer { %s }", layer);
    for (int r = 0; r < WORLD; r++) {
        moka_ctx ctx;
        moka_ctx_init(&ctx);
        ctx.seed = 5;
        ctx.threads = 1;
        ctx.rank = r;
        ctx.world_size = WORLD;
        moka_net *net = NULL;
        CHECK_OK(moka_net_create_from_text(text, "shard.prototxt", NULL, &ctx, &net, &err));
        CHECK_OK(moka_net_forward(net, NULL, &err));
        CHECK_OK(moka_net_seek(net, P, &err));
        const moka_tensor *data = moka_net_blob(net, "data"), *label = moka_net_blob(net, "label");
        CHECK(data && label);
        for (int t = 0; t < T; t++) {
            CHECK_OK(moka_net_forward(net, NULL, &err));
            for (int b = 0; b < B; b++) {
                const int64_t i = P + t * WORLD * B + r + b * WORLD;
                CHECK_EQ(label->data[b], stream.label[i]);
                CHECK(memcmp(data->data + b * HW, stream.data + i * HW, HW * sizeof(float)) == 0);
            }
        }
        moka_net_free(net);
    }
    return 0;
}

static int a_context_without_a_valid_shard_is_an_error(void)
{
    CHECK_EQ(fixtures(), 0);
    moka_err err = {0};
    static const int bad[][2] = {{3, 3}, {-1, 2}, {0, 0}};
    for (kind k = IDX; k <= HDF5; k++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            moka_harness h;
            CHECK_STATUS(make(&h, k, 2, false, bad[i][0], bad[i][1], &err), MOKA_ERR_INVALID_ARG);
            CHECK_CONTAINS(err.msg, "layer 'd': cannot read shard");
            CHECK_CONTAINS(err.msg, "0 <= rank < world_size");
            moka_harness_deinit(&h);
        }
    return 0;
}

/* HDF5Data opens a file when the stream reaches it, even one whose rows all belong to other
 * ranks (for its row count); a missing one fails that pass, and every later pass says the
 * layer has nothing left to read instead of reading freed rows. */
static int hdf5_data_stops_after_a_failed_file(void)
{
    CHECK_EQ(fixtures(), 0);
    moka_err err = {0};
    FILE *f = fopen(tmp_path("gone.txt"), "w");
    CHECK(f != NULL);
    fprintf(f, "%s\n%s\n", tmp_path("f0.h5"), tmp_path("missing.h5"));
    CHECK_EQ(fclose(f), 0);
    for (int world = 1; world <= 3; world += 2) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg,
                 "name: 'd' type: 'HDF5Data' top: 'data' top: 'label' hdf5_data_param { "
                 "source: '%s' batch_size: 1 }",
                 tmp_path("gone.txt"));
        moka_harness h;
        CHECK_OK(moka_harness_init(&h, cfg, MOKA_TRAIN, 5, &err));
        h.ctx.rank = 0;
        h.ctx.world_size = world;
        CHECK_OK(moka_harness_setup(&h, &err));
        /* Rows 0..3 of f0.h5 hold 4 (W = 1) or 2 (rows 0 and 3, W = 3) of this rank's passes;
         * the pass that reads the last of them steps into missing.h5. */
        const int passes = world == 1 ? 4 : 2;
        for (int t = 0; t < passes - 1; t++) {
            CHECK_OK(moka_harness_forward(&h, &err));
            CHECK_EQ(h.top[1]->data[0], t * world);
        }
        CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_IO);
        CHECK_CONTAINS(err.msg, "cannot open HDF5 file");
        CHECK_CONTAINS(err.msg, "missing.h5");
        CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_IO);
        CHECK_CONTAINS(err.msg, "layer 'd'");
        CHECK_CONTAINS(err.msg, "no rows to read: an earlier HDF5 read failed");
        moka_harness_deinit(&h);
    }
    return 0;
}

MOKA_TEST_MAIN(idx_data_shards_the_single_order, data_shards_the_single_order,
               image_data_shards_the_single_order, hdf5_data_shards_the_single_order,
               the_random_variant_is_random, a_net_seeks_by_global_position,
               a_context_without_a_valid_shard_is_an_error, hdf5_data_stops_after_a_failed_file)
