/* src/layers/data.c -- Caffe's Data layer: batches of Datum records from an LMDB.
 *   no bottoms
 *   top[0]  data   (B, C, H', W'), the records' pixels after transform_param
 *   top[1]  label  (B), each record's Datum.label as a float (optional top)
 *   B = data_param.batch_size; (C, H, W) is the first record's shape, which every record must
 *   have; (H', W') = (crop_size, crop_size) with a crop, else (H, W)
 *   data = (pixel - mean) * scale, cropped and mirrored as src/data/transform.h says (mean_value
 *          or mean_file)
 *
 * Records are read in key order by a cursor that wraps around at the end of the DB, as Caffe's
 * DataLayer does; with rand_skip the first skip = U[0, rand_skip) records are passed over once.
 * Record j of the stream (j = 0, 1, ...) is therefore DB record (skip + j) mod count, which is
 * what seek uses to resume exactly. With ctx world_size W > 1, rank r takes stream records
 * r, r + W, r + 2W, ... (stepping the LMDB cursor W records per sample), so the ranks' batches of
 * B at pass t together are one process's batch of W * B at pass t, and seek(position) puts rank r
 * on stream record position + r, whatever W is. A Datum holds raw uint8 `data`, `float_data`, or an
 * `encoded` JPEG/PNG file, decoded here with src/io/image.h in its own channel count, as Caffe's
 * DecodeDatumToCVMatNative does (or in 3 or 1 with transform_param.force_color/force_gray). A
 * prefetch thread (src/data/loader.h) assembles the next `prefetch` batches while the net
 * computes. No gradient.
 *
 * Config (Caffe's DataParameter): data_param { source: "examples/mnist/mnist_train_lmdb"
 *   backend: LMDB batch_size: 64 rand_skip: 0 prefetch: 4 }. Relative paths are taken relative
 * to the current directory, as Caffe does. LevelDB (Caffe's default backend) is rejected.
 * Reference: Caffe's src/caffe/layers/data_layer.cpp and data_transformer.cpp.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "data/loader.h"
#include "data/transform.h"
#include "io/fetch.h"
#include "io/datum.h"
#include "io/db.h"
#include "io/image.h"
#include "moka/log.h"

typedef struct {
    moka_db_reader *db;
    const char *source; /* borrowed from the config */
    int64_t count;      /* records in the DB */
    int64_t batch;      /* B */
    int64_t c, h, w;    /* every record's shape */
    int64_t out_c, out_h, out_w, out_sample;
    bool has_labels;
    int depth;         /* batches prefetched */
    int want_channels; /* for encoded records: 3 (force_color), 1 (force_gray), 0 (own) */
    moka_transform tf;
    int64_t skip;   /* records passed over at the start (rand_skip) */
    int64_t start;  /* this reader's first stream record after a seek: the rank */
    int64_t stride; /* stream records between two it takes: the world size */
    uint64_t tf_seed;
    /* Owned by the prefetch thread once it runs. */
    int64_t base; /* the stream record last sought to */
    int64_t k;    /* records this reader has taken since then */
    moka_rng tf_rng;
    uint8_t *pixels; /* one decoded encoded record, or NULL */
    moka_loader *loader;
} data_layer;

static void data_destroy(moka_layer *l)
{
    data_layer *s = l->state;
    /* The thread reads everything below, so it goes first. */
    moka_loader_free(s->loader);
    s->loader = NULL;
    moka_transform_deinit(&s->tf);
    moka_db_reader_close(s->db);
    s->db = NULL;
    free(s->pixels);
    s->pixels = NULL;
}

/* A decoded record: exactly one of u8 and f32 is set, holding c * h * w values. */
typedef struct {
    const uint8_t *u8;
    const float *f32;
    int64_t c, h, w;
    int label;
    bool encoded;
} record;

/* Decodes the record `key` into *rec (its shape checked only for self-consistency).
 * *pixels receives the decoded image of an encoded record (freed by the caller). */
static moka_status decode_record(const moka_layer *l, const data_layer *s, const char *key,
                                 const void *val, int64_t nbytes, record *rec, uint8_t **pixels,
                                 moka_err *err)
{
    moka_datum d;
    moka_status st = moka_datum_decode(val, nbytes, &d, err);
    if (st != MOKA_OK) {
        moka_err_prefix(err, "layer '%s': record '%s' in '%s'", l->name, key, s->source);
        return st;
    }
    memset(rec, 0, sizeof *rec);
    rec->label = d.label;
    rec->encoded = d.encoded;
    if (d.encoded) {
        int c = 0, h = 0, w = 0;
        st = moka_image_decode(d.data, d.data_nbytes, s->want_channels, pixels, &c, &h, &w, err);
        if (st != MOKA_OK) {
            moka_err_prefix(err, "layer '%s': encoded record '%s' in '%s'", l->name, key,
                            s->source);
            return st;
        }
        rec->u8 = *pixels;
        rec->c = c;
        rec->h = h;
        rec->w = w;
        return MOKA_OK;
    }
    rec->c = d.channels;
    rec->h = d.height;
    rec->w = d.width;
    if (rec->c <= 0 || rec->h <= 0 || rec->w <= 0)
        return moka_errf(err, MOKA_ERR_IO,
                         "layer '%s': record '%s' in '%s' has shape %lld x %lld x %lld; every "
                         "dimension must be positive",
                         l->name, key, s->source, (long long)rec->c, (long long)rec->h,
                         (long long)rec->w);
    const int64_t n = rec->c * rec->h * rec->w;
    if (d.data_nbytes > 0) {
        if (d.data_nbytes != n)
            return moka_errf(err, MOKA_ERR_IO,
                             "layer '%s': record '%s' in '%s' holds %lld data bytes; its shape "
                             "%lld x %lld x %lld needs %lld",
                             l->name, key, s->source, (long long)d.data_nbytes, (long long)rec->c,
                             (long long)rec->h, (long long)rec->w, (long long)n);
        rec->u8 = d.data;
    } else {
        if (d.float_count != n)
            return moka_errf(err, MOKA_ERR_IO,
                             "layer '%s': record '%s' in '%s' holds %lld float_data values (and "
                             "no data bytes); its shape %lld x %lld x %lld needs %lld",
                             l->name, key, s->source, (long long)d.float_count, (long long)rec->c,
                             (long long)rec->h, (long long)rec->w, (long long)n);
        rec->f32 = d.float_data;
    }
    return MOKA_OK;
}

/* Runs on the prefetch thread: the next B records, transformed, and their labels. */
static moka_status fill_batch(void *user, float *const *bufs, moka_err *err)
{
    moka_layer *l = user;
    data_layer *s = l->state;
    for (int64_t b = 0; b < s->batch; b++) {
        const void *val;
        int64_t nbytes;
        const char *key;
        MOKA_TRY(moka_db_reader_next(s->db, &val, &nbytes, &key, err));
        free(s->pixels);
        s->pixels = NULL;
        record rec;
        MOKA_TRY(decode_record(l, s, key, val, nbytes, &rec, &s->pixels, err));
        if (rec.c != s->c || rec.h != s->h || rec.w != s->w)
            return moka_errf(err, MOKA_ERR_SHAPE,
                             "layer '%s': record '%s' in '%s' is %lld x %lld x %lld; want "
                             "%lld x %lld x %lld, the shape of the first record",
                             l->name, key, s->source, (long long)rec.c, (long long)rec.h,
                             (long long)rec.w, (long long)s->c, (long long)s->h, (long long)s->w);
        /* The transform's random draws depend only on the record's place in the stream, so a
         * run positioned by seek, or read by another number of ranks, draws exactly what an
         * uninterrupted single process would. */
        moka_rng_seed(&s->tf_rng, s->tf_seed, (uint64_t)(s->base + s->start + s->k * s->stride));
        s->k++;
        float *out = bufs[0] + b * s->out_sample;
        if (rec.u8)
            moka_transform_u8(&s->tf, rec.u8, out, &s->tf_rng);
        else
            moka_transform_f32(&s->tf, rec.f32, out, &s->tf_rng);
        if (s->has_labels) bufs[1][b] = (float)rec.label;
        /* The other ranks' records: the cursor walks on to this reader's next one. Only after
         * the record is used, since the reader's value pointer lasts until its next call. */
        for (int64_t i = 0; i < (s->stride - 1) % s->count; i++)
            MOKA_TRY(moka_db_reader_next(s->db, &val, &nbytes, NULL, err));
    }
    return MOKA_OK;
}

/* Stops nothing; puts this reader on stream record position + start (DB record
 * (skip + position + start) mod count) and starts the prefetch thread. */
static moka_status start_loader(moka_layer *l, int64_t position, moka_err *err)
{
    data_layer *s = l->state;
    s->base = position;
    s->k = 0;
    moka_status st = moka_db_reader_seek(s->db, (s->skip + position + s->start) % s->count, err);
    if (st == MOKA_OK) {
        const int64_t counts[2] = {s->batch * s->out_sample, s->batch};
        st = moka_loader_create(s->has_labels ? 2 : 1, counts, s->depth, fill_batch, l, &s->loader,
                                err);
    }
    if (st != MOKA_OK) moka_err_prefix(err, "layer '%s'", l->name);
    return st;
}

/* The DataParameter fields that Caffe moved to transform_param long ago. */
static const char *const moved_fields[] = {"scale", "mean_file", "crop_size", "mirror"};

static moka_status data_setup(moka_layer *l, moka_err *err)
{
    data_layer *s = l->state;
    const moka_pt_node *p = l->param;
    s->source = moka_pt_str(p, "source");

    for (size_t i = 0; i < sizeof moved_fields / sizeof moved_fields[0]; i++)
        if (moka_pt_has(p, moved_fields[i]))
            return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(p, moved_fields[i], 0),
                                "layer '%s': data_param.%s is not supported; set "
                                "transform_param.%s instead (as Caffe's upgraded nets do)",
                                l->name, moved_fields[i], moved_fields[i]);
    if (moka_pt_has(p, "force_encoded_color"))
        return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(p, "force_encoded_color", 0),
                            "layer '%s': data_param.force_encoded_color is not supported (use "
                            "transform_param.force_color)",
                            l->name);
    if (strcmp(moka_pt_str(p, "backend"), "LMDB") != 0)
        return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED,
                            moka_pt_has(p, "backend") ? moka_pt_node_at(p, "backend", 0) : l->cfg,
                            "layer '%s': data_param.backend %s is not supported: moka reads "
                            "LMDB only; convert the data to LMDB (e.g. with moka "
                            "convert_imageset or convert_mnist_data) and set backend: LMDB",
                            l->name, moka_pt_str(p, "backend"));
    if (!s->source[0])
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "data_param.source is required (the path of an LMDB directory)");
    s->batch = moka_pt_int(p, "batch_size");
    if (s->batch <= 0)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "data_param.batch_size must be positive, got %lld",
                               (long long)s->batch);
    const int64_t prefetch = moka_pt_int(p, "prefetch");
    if (prefetch <= 0 || prefetch > 1024)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(p, "prefetch", 0),
                            "layer '%s': data_param.prefetch must be in 1..1024, got %lld", l->name,
                            (long long)prefetch);
    s->depth = (int)prefetch;
    s->has_labels = l->num_top == 2;
    MOKA_TRY(moka_loader_shard(l->ctx, l->name, &s->start, &s->stride, err));

    /* An s3:// or qs:// source names an LMDB directory, i.e. a prefix: every object under it is
     * fetched into the cache (the trailing '/' is added when missing). */
    char url[4096], local[4096];
    const size_t slen = strlen(s->source);
    const bool add_slash = moka_fetch_is_url(s->source) && s->source[slen - 1] != '/';
    if (snprintf(url, sizeof url, "%s%s", s->source, add_slash ? "/" : "") >= (int)sizeof url)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG, "data_param.source is too long");
    moka_status st = moka_fetch_source(l->ctx, url, local, sizeof local, err);
    if (st == MOKA_OK) st = moka_db_reader_open(local, &s->db, err);
    if (st != MOKA_OK) {
        moka_err_prefix(err, "layer '%s'", l->name);
        const moka_pt_node *at = moka_pt_node_at(p, "source", 0);
        if (at && at->file && at->line > 0)
            moka_err_prefix(err, "%s:%d:%d", at->file, at->line, at->col);
        return st;
    }
    s->count = moka_db_reader_count(s->db);
    if (s->count == 0)
        return moka_pt_errf(err, MOKA_ERR_IO, moka_pt_node_at(p, "source", 0),
                            "layer '%s': the LMDB '%s' holds no records", l->name, s->source);

    const moka_pt_node *tp = moka_pt_msg(l->cfg, "transform_param");
    MOKA_TRY(moka_transform_forced_channels(tp, l->name, &s->want_channels, err));

    /* The batch shape comes from the first record, as Caffe's DataLayerSetUp does. */
    const void *val;
    int64_t nbytes;
    const char *key;
    record rec;
    MOKA_TRY(moka_db_reader_next(s->db, &val, &nbytes, &key, err));
    st = decode_record(l, s, key, val, nbytes, &rec, &s->pixels, err);
    free(s->pixels);
    s->pixels = NULL;
    if (st != MOKA_OK) return st;
    s->c = rec.c;
    s->h = rec.h;
    s->w = rec.w;

    /* force_color/force_gray apply to encoded images only; raw records reject them. */
    if (rec.encoded)
        MOKA_TRY(moka_transform_init_encoded(&s->tf, tp, l->phase, l->name, s->c, s->h, s->w, err));
    else
        MOKA_TRY(moka_transform_init(&s->tf, tp, l->phase, l->name, s->c, s->h, s->w, err));
    moka_transform_out_dims(&s->tf, &s->out_c, &s->out_h, &s->out_w);
    s->out_sample = s->out_c * s->out_h * s->out_w;

    /* The prefetch thread gets a stream of its own: l->rng belongs to the calling thread. The
     * layer's stream does not depend on the rank, so all ranks skip the same records. */
    const int64_t rand_skip = moka_pt_int(p, "rand_skip");
    if (rand_skip > 0) s->skip = (int64_t)moka_rng_below(&l->rng, (uint64_t)rand_skip);
    s->tf_seed = moka_rng_u64(&l->rng);

    moka_logf(MOKA_LOG_INFO, "data",
              "layer '%s': %lld records of %lld x %lld x %lld from LMDB '%s'%s", l->name,
              (long long)s->count, (long long)s->c, (long long)s->h, (long long)s->w, s->source,
              s->skip ? " (skipping the first records, rand_skip)" : "");
    return start_loader(l, 0, err);
}

static moka_status data_reshape(moka_layer *l, moka_err *err)
{
    const data_layer *s = l->state;
    MOKA_TRY(
        moka_tensor_set_shape(l->top[0], MOKA_SHAPE(s->batch, s->out_c, s->out_h, s->out_w), err));
    if (s->has_labels) MOKA_TRY(moka_tensor_set_shape(l->top[1], MOKA_SHAPE(s->batch), err));
    return MOKA_OK;
}

static moka_status data_forward_cpu(moka_layer *l, moka_err *err)
{
    data_layer *s = l->state;
    float *const dst[2] = {l->top[0]->data, s->has_labels ? l->top[1]->data : NULL};
    return moka_loader_next(s->loader, dst, err);
}

/* Positions the stream as if all ranks together had read its first `position` records (this
 * rank's next is stream record position + rank, i.e. DB record (skip + position + rank) mod
 * count): stops the prefetch thread, moves the cursor and starts the thread again. Used when
 * training resumes from a snapshot. */
static moka_status data_seek(moka_layer *l, int64_t position, moka_err *err)
{
    data_layer *s = l->state;
    if (position < 0)
        return moka_layer_errf(l, err, MOKA_ERR_INVALID_ARG,
                               "cannot seek to record %lld (want >= 0)", (long long)position);
    moka_loader_free(s->loader);
    s->loader = NULL;
    return start_loader(l, position, err);
}

static const char *const data_extra[] = {"transform_param", NULL};

const moka_layer_ops moka_layer_data = {
    .type = "Data",
    .param_field = "data_param",
    .extra_fields = data_extra,
    .state_size = sizeof(data_layer),
    .min_bottom = 0,
    .max_bottom = 0,
    .min_top = 1,
    .max_top = 2,
    .setup = data_setup,
    .reshape = data_reshape,
    .forward_cpu = data_forward_cpu,
    .destroy = data_destroy,
    .seek = data_seek,
};
