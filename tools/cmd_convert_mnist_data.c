/* tools/cmd_convert_mnist_data.c -- `moka convert_mnist_data IMAGES LABELS DB`: Caffe's
 * convert_mnist_data tool. Reads an MNIST-format IDX images file (N, H, W) and labels file (N),
 * plain or gzip, and writes an LMDB whose record "%08d" of item i is the Datum
 * { channels: 1, height: H, width: W, data: the H * W pixel bytes, label: label[i] }, exactly as
 * Caffe's examples/mnist/convert_mnist_data.cpp does. The DB is written under a temporary name
 * and renamed when complete; an existing DB is an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/datum.h"
#include "io/db.h"
#include "io/idx.h"

static int convert(const char *images_path, const char *labels_path, const char *db_path)
{
    static const char *cmd = "convert_mnist_data";
    moka_err err = {0};
    moka_idx images = {0}, labels = {0};
    moka_db_writer *w = NULL;
    uint8_t *val = NULL;
    int rc = 1;
    char dims[160];

    if (moka_idx_read(images_path, &images, &err) != MOKA_OK ||
        moka_idx_read(labels_path, &labels, &err) != MOKA_OK) {
        rc = moka_cli_fail(cmd, &err);
        goto done;
    }
    if (images.ndim != 3) {
        fprintf(stderr, "moka %s: '%s': an images file must be 3-D (N, H, W), got %s\n", cmd,
                images_path, moka_idx_dims_str(&images, dims, sizeof dims));
        goto done;
    }
    if (labels.ndim != 1) {
        fprintf(stderr, "moka %s: '%s': a labels file must be 1-D (N), got %s\n", cmd, labels_path,
                moka_idx_dims_str(&labels, dims, sizeof dims));
        goto done;
    }
    const int64_t n = images.dims[0], h = images.dims[1], wd = images.dims[2];
    if (labels.dims[0] != n) {
        fprintf(stderr, "moka %s: '%s' holds %lld images but '%s' holds %lld labels\n", cmd,
                images_path, (long long)n, labels_path, (long long)labels.dims[0]);
        goto done;
    }
    if (n > 99999999 || h > 0x7fffffff || wd > 0x7fffffff) {
        fprintf(stderr, "moka %s: '%s' is too large (%s)\n", cmd, images_path,
                moka_idx_dims_str(&images, dims, sizeof dims));
        goto done;
    }
    if (moka_db_writer_create(db_path, &w, &err) != MOKA_OK) {
        rc = moka_cli_fail(cmd, &err);
        goto done;
    }
    fprintf(stderr, "moka %s: %lld items, rows %lld, cols %lld\n", cmd, (long long)n, (long long)h,
            (long long)wd);
    for (int64_t i = 0; i < n; i++) {
        const moka_datum d = {.channels = 1,
                              .height = (int)h,
                              .width = (int)wd,
                              .label = labels.data[i],
                              .data = images.data + i * h * wd,
                              .data_nbytes = h * wd};
        int64_t nbytes;
        char key[32];
        snprintf(key, sizeof key, "%08lld", (long long)i);
        if (moka_datum_encode(&d, &val, &nbytes, &err) != MOKA_OK ||
            moka_db_writer_put(w, key, val, nbytes, &err) != MOKA_OK) {
            rc = moka_cli_fail(cmd, &err);
            goto done;
        }
        free(val);
        val = NULL;
    }
    moka_db_writer *committing = w;
    w = NULL; /* commit frees it, whatever it returns */
    if (moka_db_writer_commit(committing, &err) != MOKA_OK) {
        rc = moka_cli_fail(cmd, &err);
        goto done;
    }
    fprintf(stderr, "moka %s: wrote %lld records to '%s'\n", cmd, (long long)n, db_path);
    rc = 0;
done:
    free(val);
    moka_db_writer_abort(w);
    moka_idx_deinit(&labels);
    moka_idx_deinit(&images);
    return rc;
}

int cmd_convert_mnist_data(int argc, char **argv)
{
    flag flags[] = {{"backend", NULL}};
    const char *pos[3];
    int npos;
    bool help;
    int rc = moka_cli_parse_flags("convert_mnist_data", argc, argv, flags, 1, pos, &npos, 3, &help);
    if (rc) return rc;
    if (help) {
        printf("usage: moka convert_mnist_data [--backend=lmdb] IMAGES LABELS DB\n"
               "  Converts MNIST-format IDX files (plain or .gz) to an LMDB of Caffe Datums\n"
               "  (keys %%08d), as Caffe's convert_mnist_data does. DB must not exist yet.\n"
               "  --backend=lmdb   the only backend moka writes (Caffe's leveldb is not "
               "supported)\n");
        return 0;
    }
    if (flags[0].value && strcmp(flags[0].value, "lmdb") != 0)
        return moka_cli_usage_error("convert_mnist_data",
                                    "--backend=%s is not supported: moka writes lmdb only",
                                    flags[0].value);
    if (npos != 3)
        return moka_cli_usage_error("convert_mnist_data", "%s",
                                    "want three arguments: IMAGES LABELS DB");
    return convert(pos[0], pos[1], pos[2]);
}
