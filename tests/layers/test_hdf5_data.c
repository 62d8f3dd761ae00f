/* tests/layers/test_hdf5_data.c -- the HDF5Data layer on .h5 files this test writes with the
 * HDF5 C API: batches are the dataset rows in Caffe's order (across file boundaries, wrapping
 * around the list), shuffling permutes files and rows reproducibly while keeping tops paired,
 * seek lands where forward passes would, and every file problem is an error naming the file and
 * dataset. Row r of file f holds data values f*100 + r*10 + j and label f*100 + r, so every value
 * read says where it came from.
 */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "moka/log.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/moka_hdf5data_XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(1);
        }
    }
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

/* Adds dataset `name` of shape dims (float32 or int32 storage) to an open file. */
static int add_dataset(hid_t file, const char *name, int ndim, const hsize_t *dims,
                       const float *vals, bool as_int)
{
    hsize_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t type = as_int ? H5T_STD_I32LE : H5T_IEEE_F32LE;
    hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (space < 0 || ds < 0) return 1;
    herr_t st;
    if (as_int) {
        int *iv = malloc(n * sizeof *iv);
        for (hsize_t i = 0; i < n; i++) iv[i] = (int)vals[i];
        st = H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, iv);
        free(iv);
    } else {
        st = H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals);
    }
    H5Dclose(ds);
    H5Sclose(space);
    return st < 0;
}

enum { D1 = 2, D2 = 3, ROW = D1 * D2 };

/* Writes file f: `data` (rows, 2, 3) and `label` (label_rows) as above; label_rows < 0 leaves
 * the label dataset out. */
static int write_h5(const char *name, int f, int rows, int label_rows, bool label_int)
{
    hid_t file = H5Fcreate(tmp_path(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) return 1;
    float *d = malloc((size_t)rows * ROW * sizeof *d), lab[64];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < ROW; j++) d[r * ROW + j] = (float)(f * 100 + r * 10 + j);
    for (int r = 0; r < label_rows; r++) lab[r] = (float)(f * 100 + r);
    int bad = add_dataset(file, "data", 3, (const hsize_t[]){(hsize_t)rows, D1, D2}, d, false);
    if (label_rows >= 0)
        bad |= add_dataset(file, "label", 1, (const hsize_t[]){(hsize_t)label_rows}, lab,
                           label_int);
    free(d);
    return (H5Fclose(file) < 0) | bad;
}

/* Writes a source list naming the given tmp files, one per line. */
static int write_list(const char *list, int n, const char *const *files)
{
    FILE *f = fopen(tmp_path(list), "w");
    if (!f) return 1;
    for (int i = 0; i < n; i++) fprintf(f, "%s\n", tmp_path(files[i]));
    return fclose(f) != 0;
}

static moka_status make_layer(moka_harness *h, const char *list, const char *params,
                              const char *tops, moka_phase phase, uint64_t seed, moka_err *err)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "name: 'h5' type: 'HDF5Data' %s hdf5_data_param { source: '%s' %s }",
             tops ? tops : "top: 'data' top: 'label'", tmp_path(list), params);
    MOKA_TRY(moka_harness_init(h, cfg, phase, seed, err));
    return moka_harness_setup(h, err);
}

/* Checks one batch: every sample b is (file, row) = src[b] and its data/label match. */
static int check_batch(const moka_harness *h, int batch, const int (*src)[2])
{
    for (int b = 0; b < batch; b++) {
        const int f = src[b][0], r = src[b][1];
        CHECK_EQ(h->top[1]->data[b], f * 100 + r);
        for (int j = 0; j < ROW; j++) CHECK_EQ(h->top[0]->data[b * ROW + j], f * 100 + r * 10 + j);
    }
    return 0;
}

/* Two files of 3 and 2 rows, batch 4, no shuffle: rows go f1:0 1 2, f2:0 | f2:1, f1:0 1 2 |
 * f2:0 1, f1:0 1 -- across the file boundary and around the list. */
static int batches_follow_the_files_in_order(void)
{
    moka_err err = {0};
    moka_log_set(NULL, NULL, MOKA_LOG_WARN);
    CHECK_EQ(write_h5("a.h5", 1, 3, 3, false), 0);
    CHECK_EQ(write_h5("b.h5", 2, 2, 2, true), 0); /* integer labels convert to float */
    CHECK_EQ(write_list("ab.txt", 2, (const char *const[]){"a.h5", "b.h5"}), 0);
    moka_harness h;
    CHECK_OK(make_layer(&h, "ab.txt", "batch_size: 4", NULL, MOKA_TRAIN, 1, &err));
    CHECK(h.layer->ops->backward_cpu == NULL);
    CHECK_EQ(h.top[0]->ndim, 3);
    CHECK(h.top[0]->shape[0] == 4 && h.top[0]->shape[1] == D1 && h.top[0]->shape[2] == D2);
    CHECK_EQ(h.top[1]->ndim, 1);
    CHECK_EQ(h.top[1]->shape[0], 4);
    static const int want[3][4][2] = {{{1, 0}, {1, 1}, {1, 2}, {2, 0}},
                                      {{2, 1}, {1, 0}, {1, 1}, {1, 2}},
                                      {{2, 0}, {2, 1}, {1, 0}, {1, 1}}};
    for (int step = 0; step < 3; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        CHECK_EQ(check_batch(&h, 4, want[step]), 0);
    }
    moka_harness_deinit(&h);
    return 0;
}

/* One top only: the layer reads just the dataset of that name. */
static int a_single_top_reads_its_own_dataset(void)
{
    moka_err err = {0};
    CHECK_EQ(write_h5("c.h5", 3, 5, 5, false), 0);
    CHECK_EQ(write_list("c.txt", 1, (const char *const[]){"c.h5"}), 0);
    moka_harness h;
    CHECK_OK(make_layer(&h, "c.txt", "batch_size: 2", "top: 'label'", MOKA_TEST, 1, &err));
    CHECK_EQ(h.top[0]->ndim, 1);
    for (int step = 0; step < 3; step++) { /* rows 0 1, 2 3, 4 0 */
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 2; b++) CHECK_EQ(h.top[0]->data[b], 300 + (step * 2 + b) % 5);
    }
    moka_harness_deinit(&h);
    return 0;
}

/* Reads `steps` batches of 3 from list `list` with shuffle and returns (file, row) per sample,
 * checking that data and label stay paired. */
static int read_shuffled(const char *list, uint64_t seed, int steps, int (*order)[2])
{
    moka_err err = {0};
    moka_harness h;
    CHECK_OK(make_layer(&h, list, "batch_size: 3 shuffle: true", NULL, MOKA_TRAIN, seed, &err));
    for (int step = 0; step < steps; step++) {
        CHECK_OK(moka_harness_forward(&h, &err));
        for (int b = 0; b < 3; b++) {
            const int lab = (int)h.top[1]->data[b], f = lab / 100, r = lab % 100;
            for (int j = 0; j < ROW; j++)
                CHECK_EQ(h.top[0]->data[b * ROW + j], f * 100 + r * 10 + j);
            order[step * 3 + b][0] = f;
            order[step * 3 + b][1] = r;
        }
    }
    moka_harness_deinit(&h);
    return 0;
}

/* Files d (4 rows) and e (5 rows), shuffled: each pass over the list is one whole file after the
 * other, each file's rows a permutation; orders differ between passes and seeds, not runs. */
static int shuffle_permutes_files_and_rows(void)
{
    CHECK_EQ(write_h5("d.h5", 4, 4, 4, false), 0);
    CHECK_EQ(write_h5("e.h5", 5, 5, 5, false), 0);
    CHECK_EQ(write_list("de.txt", 2, (const char *const[]){"d.h5", "e.h5"}), 0);
    enum { STEPS = 24, S = STEPS * 3, PASS = 9 }; /* 8 passes over 9 rows */
    int a[S][2], b[S][2], c[S][2];
    CHECK_EQ(read_shuffled("de.txt", 5, STEPS, a), 0);
    int first_files[S / PASS], identity_rows = 0;
    for (int p = 0; p < S / PASS; p++) {
        const int *s0 = a[p * PASS];
        const int f0 = s0[0], n0 = f0 == 4 ? 4 : 5;
        first_files[p] = f0;
        int seen[2][5] = {{0}}, in_order = 1;
        for (int k = 0; k < PASS; k++) {
            const int f = a[p * PASS + k][0], r = a[p * PASS + k][1];
            CHECK_EQ(f, k < n0 ? f0 : 9 - f0); /* the whole first file, then the other */
            CHECK(r >= 0 && r < (f == 4 ? 4 : 5));
            seen[f - 4][r]++;
            in_order &= r == (k < n0 ? k : k - n0);
        }
        for (int r = 0; r < 5; r++) {
            if (r < 4) CHECK_EQ(seen[0][r], 1);
            CHECK_EQ(seen[1][r], 1);
        }
        identity_rows += in_order;
    }
    CHECK(identity_rows < S / PASS); /* rows are shuffled at all */
    int both_first = 0;
    for (int p = 1; p < S / PASS; p++) both_first |= first_files[p] != first_files[0];
    CHECK(both_first); /* the file order is redrawn (deterministic for a seed; 1 seed in 128 would
                       * keep one order by chance) */
    CHECK_EQ(read_shuffled("de.txt", 5, STEPS, b), 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_EQ(read_shuffled("de.txt", 6, STEPS, c), 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    return 0;
}

/* seek(k * B) then forward gives the batch that k + 1 forward passes give, shuffled and not. */
static int seek_lands_where_forward_would(void)
{
    moka_err err = {0};
    CHECK_EQ(write_h5("d.h5", 4, 4, 4, false), 0);
    CHECK_EQ(write_h5("e.h5", 5, 5, 5, false), 0);
    CHECK_EQ(write_list("de.txt", 2, (const char *const[]){"d.h5", "e.h5"}), 0);
    static const char *const params[] = {"batch_size: 3", "batch_size: 3 shuffle: true"};
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 8; k += 3) {
            moka_harness run, jump;
            CHECK_OK(make_layer(&run, "de.txt", params[p], NULL, MOKA_TRAIN, 11, &err));
            CHECK_OK(make_layer(&jump, "de.txt", params[p], NULL, MOKA_TRAIN, 11, &err));
            for (int i = 0; i <= k; i++) CHECK_OK(moka_harness_forward(&run, &err));
            CHECK_OK(jump.layer->ops->seek(jump.layer, k * 3, &err));
            for (int extra = 0; extra < 3; extra++) {
                if (extra) CHECK_OK(moka_harness_forward(&run, &err));
                CHECK_OK(moka_harness_forward(&jump, &err));
                CHECK(memcmp(run.top[0]->data, jump.top[0]->data, 3 * ROW * sizeof(float)) == 0);
                CHECK(memcmp(run.top[1]->data, jump.top[1]->data, 3 * sizeof(float)) == 0);
            }
            moka_harness_deinit(&jump);
            moka_harness_deinit(&run);
        }
    return 0;
}

static int expect_setup_error(const char *list, const char *params, moka_status want,
                              const char *text)
{
    moka_err err = {0};
    moka_harness h;
    CHECK_STATUS(make_layer(&h, list, params, NULL, MOKA_TRAIN, 1, &err), want);
    CHECK_CONTAINS(err.msg, "layer 'h5'");
    CHECK_CONTAINS(err.msg, text);
    moka_harness_deinit(&h);
    return 0;
}

static int file_problems_are_errors_naming_file_and_dataset(void)
{
    /* No label dataset in the file. */
    CHECK_EQ(write_h5("nolabel.h5", 1, 3, -1, false), 0);
    CHECK_EQ(write_list("nolabel.txt", 1, (const char *const[]){"nolabel.h5"}), 0);
    CHECK_EQ(expect_setup_error("nolabel.txt", "batch_size: 2", MOKA_ERR_IO,
                                "nolabel.h5' has no dataset 'label'"),
             0);
    /* 3 data rows but 2 labels. */
    CHECK_EQ(write_h5("short.h5", 1, 3, 2, false), 0);
    CHECK_EQ(write_list("short.txt", 1, (const char *const[]){"short.h5"}), 0);
    CHECK_EQ(expect_setup_error("short.txt", "batch_size: 2", MOKA_ERR_SHAPE,
                                "dataset 'label' has 2 rows but dataset 'data' has 3"),
             0);
    /* A listed file that does not exist, and one that is not HDF5 at all. */
    CHECK_EQ(write_list("gone.txt", 1, (const char *const[]){"gone.h5"}), 0);
    CHECK_EQ(expect_setup_error("gone.txt", "batch_size: 2", MOKA_ERR_IO,
                                "cannot open HDF5 file '"),
             0);
    FILE *f = fopen(tmp_path("junk.h5"), "w");
    CHECK(f != NULL);
    fputs("not hdf5 at all\n", f);
    fclose(f);
    CHECK_EQ(write_list("junk.txt", 1, (const char *const[]){"junk.h5"}), 0);
    CHECK_EQ(expect_setup_error("junk.txt", "batch_size: 2", MOKA_ERR_IO, "junk.h5"), 0);
    /* The source list: missing, empty; and the parameters. */
    CHECK_EQ(expect_setup_error("nosuch.txt", "batch_size: 2", MOKA_ERR_IO,
                                "cannot open HDF5 source list"),
             0);
    CHECK_EQ(write_list("empty.txt", 0, NULL), 0);
    CHECK_EQ(expect_setup_error("empty.txt", "batch_size: 2", MOKA_ERR_IO, "names no files"), 0);
    CHECK_EQ(expect_setup_error("short.txt", "", MOKA_ERR_CONFIG, "batch_size must be positive"),
             0);
    return 0;
}

/* A later file whose rows have another shape fails at the forward that reaches it. */
static int a_later_file_with_other_row_shape_fails_in_forward(void)
{
    moka_err err = {0};
    CHECK_EQ(write_h5("a.h5", 1, 3, 3, false), 0);
    hid_t file = H5Fcreate(tmp_path("wide.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(file >= 0);
    float d[2 * 4] = {0}, lab[2] = {0};
    CHECK_EQ(add_dataset(file, "data", 3, (const hsize_t[]){2, 1, 4}, d, false), 0);
    CHECK_EQ(add_dataset(file, "label", 1, (const hsize_t[]){2}, lab, false), 0);
    H5Fclose(file);
    CHECK_EQ(write_list("aw.txt", 2, (const char *const[]){"a.h5", "wide.h5"}), 0);
    moka_harness h;
    CHECK_OK(make_layer(&h, "aw.txt", "batch_size: 2", NULL, MOKA_TRAIN, 1, &err));
    CHECK_OK(moka_harness_forward(&h, &err)); /* rows 0 1 of a.h5 */
    CHECK_STATUS(moka_harness_forward(&h, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "wide.h5': dataset 'data' has rows of shape ( 1 4 ) but the first "
                            "file's are ( 2 3 )");
    moka_harness_deinit(&h);
    return 0;
}

MOKA_TEST_MAIN(batches_follow_the_files_in_order, a_single_top_reads_its_own_dataset,
               shuffle_permutes_files_and_rows, seek_lands_where_forward_would,
               file_problems_are_errors_naming_file_and_dataset,
               a_later_file_with_other_row_shape_fails_in_forward)
