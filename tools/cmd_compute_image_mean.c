/* tools/cmd_compute_image_mean.c -- `moka compute_image_mean DB [MEAN.binaryproto]`: Caffe's
 * compute_image_mean tool. Over the N Datums of an LMDB, all of one shape (C, H, W):
 *
 *   mean[c, h, w] = (1 / N) * sum_n x_n[c, h, w]
 *
 * where x_n is the record's uint8 `data`, its `float_data`, or, for an encoded record, the
 * decoded image (with the file's own channel count, as Caffe's DecodeDatumNative). The mean is
 * written as a BlobProto of shape (1, C, H, W): Caffe's legacy num/channels/height/width fields,
 * which Caffe's compute_image_mean writes and its readers take first, and the same shape in
 * `shape`. The sum is kept in double. The file is written under a temporary name and renamed
 * when complete. Like Caffe, it also prints each channel's mean value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "cli.h"
#include "io/datum.h"
#include "io/db.h"
#include "io/image.h"

static const char *const cmd = "compute_image_mean";

/* Writes the mean as a BlobProto to path, through "<path>.tmp.<pid>". */
static int write_mean(const char *path, const double *sum, int64_t n, int c, int h, int w)
{
    const int64_t count = (int64_t)c * h * w;
    float *data = malloc(sizeof(float) * (size_t)count);
    if (!data) {
        fprintf(stderr, "moka %s: out of memory\n", cmd);
        return 1;
    }
    for (int64_t i = 0; i < count; i++) data[i] = (float)(sum[i] / (double)n);
    int64_t dims[4] = {1, c, h, w};
    Caffe__BlobShape shape = CAFFE__BLOB_SHAPE__INIT;
    shape.n_dim = 4;
    shape.dim = dims;
    Caffe__BlobProto blob = CAFFE__BLOB_PROTO__INIT;
    blob.shape = &shape;
    blob.n_data = (size_t)count;
    blob.data = data;
    blob.has_num = blob.has_channels = blob.has_height = blob.has_width = 1;
    blob.num = 1;
    blob.channels = c;
    blob.height = h;
    blob.width = w;
    const size_t nbytes = caffe__blob_proto__get_packed_size(&blob);
    uint8_t *buf = malloc(nbytes ? nbytes : 1);
    if (!buf) {
        free(data);
        fprintf(stderr, "moka %s: out of memory\n", cmd);
        return 1;
    }
    caffe__blob_proto__pack(&blob, buf);
    free(data);

    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp) {
        free(buf);
        fprintf(stderr, "moka %s: output path too long\n", cmd);
        return 1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(buf);
        perror("moka compute_image_mean: cannot create the output");
        return 1;
    }
    const bool ok = fwrite(buf, 1, nbytes, f) == nbytes;
    free(buf);
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        fprintf(stderr, "moka %s: cannot write '%s'\n", cmd, path);
        unlink(tmp);
        return 1;
    }
    return 0;
}

static int compute(const char *db_path, const char *out_path)
{
    moka_err err = {0};
    moka_db_reader *r = NULL;
    double *sum = NULL;
    uint8_t *pix = NULL;
    int rc = 1;
    if (moka_db_reader_open(db_path, &r, &err) != MOKA_OK) {
        rc = moka_cli_fail(cmd, &err);
        goto done;
    }
    const int64_t n = moka_db_reader_count(r);
    if (n == 0) {
        fprintf(stderr, "moka %s: '%s' holds no records\n", cmd, db_path);
        goto done;
    }
    int c0 = 0, h0 = 0, w0 = 0;
    int64_t count = 0;
    for (int64_t k = 0; k < n; k++) {
        const void *val;
        int64_t nbytes;
        const char *key;
        moka_datum d;
        if (moka_db_reader_next(r, &val, &nbytes, &key, &err) != MOKA_OK ||
            moka_datum_decode(val, nbytes, &d, &err) != MOKA_OK) {
            rc = moka_cli_fail(cmd, &err);
            goto done;
        }
        int c = d.channels, h = d.height, w = d.width;
        const uint8_t *bytes = d.data;
        if (d.encoded) {
            free(pix);
            pix = NULL;
            if (moka_image_decode(d.data, d.data_nbytes, 0, &pix, &c, &h, &w, &err) != MOKA_OK) {
                moka_err_prefix(&err, "'%s': record '%s'", db_path, key);
                rc = moka_cli_fail(cmd, &err);
                goto done;
            }
            bytes = pix;
        }
        if (k == 0) {
            c0 = c, h0 = h, w0 = w;
            count = (int64_t)c * h * w;
            if (c < 1 || h < 1 || w < 1) {
                fprintf(stderr, "moka %s: '%s': record '%s' has shape %d x %d x %d\n", cmd, db_path,
                        key, c, h, w);
                goto done;
            }
            sum = calloc((size_t)count, sizeof *sum);
            if (!sum) {
                fprintf(stderr, "moka %s: out of memory\n", cmd);
                goto done;
            }
        } else if (c != c0 || h != h0 || w != w0) {
            fprintf(stderr,
                    "moka %s: '%s': record '%s' is %d x %d x %d but the first is %d x %d x %d\n",
                    cmd, db_path, key, c, h, w, c0, h0, w0);
            goto done;
        }
        if (d.encoded || (d.data && d.data_nbytes == count)) {
            for (int64_t i = 0; i < count; i++) sum[i] += bytes[i];
        } else if (d.float_data && d.float_count == count) {
            for (int64_t i = 0; i < count; i++) sum[i] += d.float_data[i];
        } else {
            fprintf(stderr,
                    "moka %s: '%s': record '%s' holds %lld data bytes and %lld floats, wanted "
                    "%lld (%d x %d x %d)\n",
                    cmd, db_path, key, (long long)d.data_nbytes, (long long)d.float_count,
                    (long long)count, c, h, w);
            goto done;
        }
        if ((k + 1) % 10000 == 0)
            fprintf(stderr, "moka %s: processed %lld files\n", cmd, (long long)(k + 1));
    }
    fprintf(stderr, "moka %s: processed %lld files\n", cmd, (long long)n);
    const int64_t plane = (int64_t)h0 * w0;
    for (int k = 0; k < c0; k++) {
        double s = 0;
        for (int64_t i = 0; i < plane; i++) s += sum[k * plane + i];
        fprintf(stderr, "moka %s: mean_value channel [%d]: %g\n", cmd, k,
                s / (double)n / (double)plane);
    }
    rc = out_path ? write_mean(out_path, sum, n, c0, h0, w0) : 0;
    if (rc == 0 && out_path)
        fprintf(stderr, "moka %s: wrote the (1, %d, %d, %d) mean to '%s'\n", cmd, c0, h0, w0,
                out_path);
done:
    free(pix);
    free(sum);
    moka_db_reader_close(r);
    return rc;
}

int cmd_compute_image_mean(int argc, char **argv)
{
    flag flags[] = {{"backend", NULL}};
    const char *pos[2];
    int npos;
    bool help;
    int rc = moka_cli_parse_flags(cmd, argc, argv, flags, 1, pos, &npos, 2, &help);
    if (rc) return rc;
    if (help) {
        printf("usage: moka compute_image_mean [--backend=lmdb] DB [MEAN.binaryproto]\n"
               "  The per-pixel mean of the Datums in DB, written as a (1, C, H, W) BlobProto\n"
               "  (for transform_param { mean_file }), as Caffe's compute_image_mean does.\n"
               "  Without an output file it only prints each channel's mean.\n");
        return 0;
    }
    if (flags[0].value && strcmp(flags[0].value, "lmdb") != 0)
        return moka_cli_usage_error(cmd, "--backend=%s is not supported: moka reads lmdb only",
                                    flags[0].value);
    if (npos < 1) return moka_cli_usage_error(cmd, "%s", "want DB [MEAN.binaryproto]");
    return compute(pos[0], npos > 1 ? pos[1] : NULL);
}
