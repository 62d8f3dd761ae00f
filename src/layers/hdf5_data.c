/* src/layers/hdf5_data.c -- HDF5Data, Caffe's data layer over a list of HDF5 files.
 *   no bottoms
 *   top[k]  (B, d1, d2, ...)  row block of the dataset named like top k, for a dataset of shape
 *                             (N, d1, d2, ...) in the current file; B = hdf5_data_param.batch_size
 *
 * Config: hdf5_data_param { source: "train.txt" batch_size: 64 shuffle: false }. `source` is a
 * text file listing .h5 paths separated by whitespace (one per line in practice); the paths, like
 * the source itself, are taken relative to the current directory, as Caffe does.
 *
 * Order, as Caffe's HDF5DataLayer has it (src/caffe/layers/hdf5_data_layer.cpp): the files are
 * visited in list order, or with `shuffle` in a permutation redrawn each time the list wraps
 * around; inside a file the rows go in order, or with `shuffle` in a permutation drawn when the
 * file is loaded (and redrawn on each pass when the list holds a single file). A batch may span
 * the end of one file and the start of the next. Only the current file is held in memory.
 *
 * That order is the global row stream. With ctx world_size W > 1, rank r takes its rows r,
 * r + W, r + 2W, ... (every rank replays the same shuffles: the layer's stream does not depend
 * on the rank), so the ranks' batches of B at pass t together are one process's batch of W * B
 * at pass t. Files whose rows all belong to other ranks are only opened for their row counts.
 * seek(position) puts rank r on row position + r of the stream, whatever W is.
 *
 * Datasets must be float or integer (integers are converted to float, as Caffe's loader does),
 * at least 1-D, with the same first dimension across the tops of one file, and the same trailing
 * dimensions in every file. Every problem (missing dataset, mismatched rows, unreadable file) is
 * an error naming the file and dataset; nothing is read lazily behind the caller's back except
 * the next file at a file boundary, whose errors come back from forward. No gradient.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "data/loader.h"
#include "io/fetch.h"
#include "moka/log.h"

typedef struct {
    int64_t batch; /* B */
    bool shuffle;
    int num_files;
    char **files;       /* the paths listed in source */
    int64_t *file_perm; /* visiting order of the files */
    int64_t cur_file;   /* position in file_perm */

    int num_tops;
    const char **names; /* dataset name of each top (borrowed from the config) */
    int *ndim;          /* per top: rank of the dataset, from the first file */
    int64_t (*dims)[MOKA_MAX_NDIM];
    int64_t *row_size; /* per top: floats in one row, d1 * d2 * ... */
    float **data;      /* per top: the current file's dataset (rows * row_size floats) */
    int64_t rows;      /* N of the current file */
    int64_t *row_perm; /* rows entries */
    int64_t cur_row;
    bool have_data; /* data holds the current file's rows (false after a count-only load) */
    int64_t start;  /* this reader's first row of the stream after a seek: the rank */
    int64_t stride; /* rows of the stream from one it takes to the next: the world size */

    /* The shuffle stream, a copy of the layer's taken at setup (l->rng belongs to whoever
     * drives the layer), and that copy's starting state, so seek can replay the draws. */
    moka_rng rng, rng0;
} hdf5_data;

static void free_file_data(hdf5_data *s)
{
    for (int k = 0; s->data && k < s->num_tops; k++) {
        free(s->data[k]);
        s->data[k] = NULL;
    }
    free(s->row_perm);
    s->row_perm = NULL;
    s->rows = 0;
    s->have_data = false;
}

static void hdf5_data_destroy(moka_layer *l)
{
    hdf5_data *s = l->state;
    free_file_data(s);
    for (int i = 0; i < s->num_files; i++) free(s->files[i]);
    free(s->files);
    free(s->file_perm);
    free(s->names);
    free(s->ndim);
    free(s->dims);
    free(s->row_size);
    free(s->data);
}

/* Reads the source list: whitespace-separated paths. The list and the files it names may be
 * s3:// or qs:// URLs; they are fetched into the cache and replaced by their local paths. */
static moka_status read_source(moka_layer *l, hdf5_data *s, const char *source, moka_err *err)
{
    const moka_pt_node *at = moka_pt_node_at(l->param, "source", 0);
    char list_local[4096];
    MOKA_TRY(moka_fetch_source(l->ctx, source, list_local, sizeof list_local, err));
    FILE *f = fopen(list_local, "r");
    if (!f)
        return moka_pt_errf(err, MOKA_ERR_IO, at, "layer '%s': cannot open HDF5 source list '%s'",
                            l->name, source);
    char tok[4096];
    int cap = 0;
    moka_status st = MOKA_OK;
    while (fscanf(f, "%4095s", tok) == 1) {
        if (strlen(tok) == sizeof tok - 1) {
            st = moka_pt_errf(err, MOKA_ERR_IO, at,
                              "layer '%s': HDF5 source list '%s' has a path of 4095 or more "
                              "characters",
                              l->name, source);
            break;
        }
        if (s->num_files == cap) {
            cap = cap ? 2 * cap : 8;
            char **grown = realloc(s->files, (size_t)cap * sizeof *grown);
            if (!grown) {
                st = moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory", l->name);
                break;
            }
            s->files = grown;
        }
        s->files[s->num_files] = strdup(tok);
        if (!s->files[s->num_files]) {
            st = moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory", l->name);
            break;
        }
        s->num_files++;
        if (moka_fetch_is_url(tok)) {
            char local[4096];
            st = moka_fetch_source(l->ctx, tok, local, sizeof local, err);
            if (st != MOKA_OK) {
                moka_err_prefix(err, "layer '%s': HDF5 source list '%s'", l->name, source);
                break;
            }
            char *copy = strdup(local);
            if (!copy) {
                st = moka_errf(err, MOKA_ERR_NOMEM, "layer '%s': out of memory", l->name);
                break;
            }
            free(s->files[s->num_files - 1]);
            s->files[s->num_files - 1] = copy;
        }
    }
    if (st == MOKA_OK && ferror(f))
        st = moka_pt_errf(err, MOKA_ERR_IO, at, "layer '%s': error reading HDF5 source list '%s'",
                          l->name, source);
    fclose(f);
    if (st == MOKA_OK && s->num_files == 0)
        st = moka_pt_errf(err, MOKA_ERR_IO, at,
                          "layer '%s': HDF5 source list '%s' names no files (want one .h5 path "
                          "per line)",
                          l->name, source);
    return st;
}

/* Reads one dataset of an open file: its shape into (ndim, dims) and, when `out` is not NULL,
 * its values converted to float into a new buffer. */
static moka_status read_dataset(const moka_layer *l, hid_t file, const char *path,
                                const char *name, int *ndim, int64_t *dims, float **out,
                                moka_err *err)
{
    /* H5Lexists fails (negative) for a path through a missing group and 0 for a missing link. */
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return moka_layer_errf(l, err, MOKA_ERR_IO,
                               "HDF5 file '%s' has no dataset '%s' (each top reads the dataset "
                               "of its own name)",
                               path, name);
    moka_status st = MOKA_OK;
    hid_t ds = H5Dopen2(file, name, H5P_DEFAULT), type = -1, space = -1;
    if (ds < 0) {
        st = moka_layer_errf(l, err, MOKA_ERR_IO, "HDF5 file '%s': '%s' is not a dataset", path,
                             name);
        goto done;
    }
    type = H5Dget_type(ds);
    const H5T_class_t cls = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        st = moka_layer_errf(l, err, MOKA_ERR_IO,
                             "HDF5 file '%s': dataset '%s' holds neither floats nor integers",
                             path, name);
        goto done;
    }
    space = H5Dget_space(ds);
    const int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    if (rank < 1 || rank > MOKA_MAX_NDIM) {
        st = moka_layer_errf(l, err, MOKA_ERR_IO,
                             "HDF5 file '%s': dataset '%s' has %d dimensions; want 1 to %d", path,
                             name, rank, MOKA_MAX_NDIM);
        goto done;
    }
    hsize_t hd[MOKA_MAX_NDIM];
    H5Sget_simple_extent_dims(space, hd, NULL);
    int64_t count = 1;
    for (int i = 0; i < rank; i++) {
        dims[i] = (int64_t)hd[i];
        count *= dims[i];
    }
    *ndim = rank;
    if (out) {
        *out = malloc((size_t)(count > 0 ? count : 1) * sizeof **out);
        if (!*out) {
            st = moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory reading dataset '%s' of "
                                 "'%s' (%lld values)", name, path, (long long)count);
            goto done;
        }
        if (count > 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
            free(*out);
            *out = NULL;
            st = moka_layer_errf(l, err, MOKA_ERR_IO, "HDF5 file '%s': cannot read dataset '%s'",
                                 path, name);
        }
    }
done:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (ds >= 0) H5Dclose(ds);
    return st;
}

static void shuffle_rows(hdf5_data *s)
{
    if (s->shuffle) moka_rng_shuffle(&s->rng, s->row_perm, s->rows);
}

/* Makes file_perm[cur_file] the current file: checks every top's dataset and, with
 * `with_data`, reads them; without it only the row count is learnt (seek's replay). The first
 * load (no shapes known yet) records each top's shape; later ones must match it. */
static moka_status load_file(moka_layer *l, hdf5_data *s, bool with_data, moka_err *err)
{
    const char *path = s->files[s->file_perm[s->cur_file]];
    free_file_data(s);
    /* The library must not print: HDF5's own error stack printer is off while we read. */
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    moka_status st = MOKA_OK;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        st = moka_layer_errf(l, err, MOKA_ERR_IO,
                             "cannot open HDF5 file '%s' (missing, or not an HDF5 file)", path);
        goto done;
    }
    const bool first = s->ndim[0] == 0;
    for (int k = 0; k < s->num_tops; k++) {
        int nd = 0;
        int64_t d[MOKA_MAX_NDIM];
        st = read_dataset(l, file, path, s->names[k], &nd, d, with_data ? &s->data[k] : NULL, err);
        if (st != MOKA_OK) goto done;
        if (k == 0) s->rows = d[0];
        if (d[0] != s->rows) {
            st = moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                 "HDF5 file '%s': dataset '%s' has %lld rows but dataset '%s' "
                                 "has %lld (all tops need the same first dimension)",
                                 path, s->names[k], (long long)d[0], s->names[0],
                                 (long long)s->rows);
            goto done;
        }
        if (first) {
            s->ndim[k] = nd;
            memcpy(s->dims[k], d, sizeof d);
        } else {
            bool same = nd == s->ndim[k];
            for (int i = 1; same && i < nd; i++) same = d[i] == s->dims[k][i];
            if (!same) {
                char want[160] = "", got[160] = "";
                for (int i = 1, n = 0; i < s->ndim[k]; i++)
                    n += snprintf(want + n, sizeof want - (size_t)n, " %lld",
                                  (long long)s->dims[k][i]);
                for (int i = 1, n = 0; i < nd; i++)
                    n += snprintf(got + n, sizeof got - (size_t)n, " %lld", (long long)d[i]);
                st = moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                     "HDF5 file '%s': dataset '%s' has rows of shape (%s ) but "
                                     "the first file's are (%s )",
                                     path, s->names[k], got, want);
                goto done;
            }
        }
    }
    if (s->rows <= 0) {
        st = moka_layer_errf(l, err, MOKA_ERR_IO, "HDF5 file '%s': dataset '%s' has no rows",
                             path, s->names[0]);
        goto done;
    }
    s->row_perm = malloc((size_t)s->rows * sizeof *s->row_perm);
    if (!s->row_perm) {
        st = moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < s->rows; i++) s->row_perm[i] = i;
    shuffle_rows(s);
    s->cur_row = 0;
    s->have_data = with_data;
done:
    if (file >= 0) H5Fclose(file);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (st != MOKA_OK) free_file_data(s);
    return st;
}

/* Moves to the next row, rolling over to the next file (and reshuffling) at the end of one, as
 * Caffe's HDF5DataLayer::Next does. */
static moka_status next_row(moka_layer *l, hdf5_data *s, bool with_data, moka_err *err)
{
    if (++s->cur_row < s->rows) return MOKA_OK;
    if (s->num_files > 1) {
        if (++s->cur_file == s->num_files) {
            s->cur_file = 0;
            if (s->shuffle) moka_rng_shuffle(&s->rng, s->file_perm, s->num_files);
        }
        return load_file(l, s, with_data, err); /* starts at row 0 with fresh order */
    }
    s->cur_row = 0;
    shuffle_rows(s);
    return MOKA_OK;
}

/* Loads the current file's data after a count-only load, keeping the row order, position and
 * shuffle stream the replay reached (loading draws a fresh row order, which is undone). */
static moka_status reload_data(moka_layer *l, hdf5_data *s, moka_err *err)
{
    int64_t *perm = s->row_perm;
    const int64_t row = s->cur_row;
    const moka_rng rng = s->rng;
    s->row_perm = NULL;
    moka_status st = load_file(l, s, true, err);
    if (st == MOKA_OK) {
        memcpy(s->row_perm, perm, (size_t)s->rows * sizeof *perm);
        s->cur_row = row;
        s->rng = rng;
    }
    free(perm);
    return st;
}

/* Moves n rows on along the stream, reading the data only of the file it stops in: the files
 * passed over on the way hold other ranks' rows (or ones a seek skips). */
static moka_status advance(moka_layer *l, hdf5_data *s, int64_t n, moka_err *err)
{
    for (int64_t i = 0; i < n; i++) MOKA_TRY(next_row(l, s, i == n - 1, err));
    return s->have_data ? MOKA_OK : reload_data(l, s, err);
}

/* Puts the layer at its starting point: file order drawn from the setup-time stream, first
 * file loaded (data only when `with_data`). */
static moka_status start(moka_layer *l, hdf5_data *s, bool with_data, moka_err *err)
{
    s->rng = s->rng0;
    for (int i = 0; i < s->num_files; i++) s->file_perm[i] = i;
    if (s->shuffle) moka_rng_shuffle(&s->rng, s->file_perm, s->num_files);
    s->cur_file = 0;
    return load_file(l, s, with_data, err);
}

static moka_status hdf5_data_setup(moka_layer *l, moka_err *err)
{
    hdf5_data *s = l->state;
    const moka_pt_node *p = l->param;
    const char *source = moka_pt_str(p, "source");
    if (!source[0])
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "hdf5_data_param.source is required (a text file listing .h5 "
                               "files)");
    s->batch = moka_pt_int(p, "batch_size");
    if (s->batch <= 0)
        return moka_layer_errf(l, err, MOKA_ERR_CONFIG,
                               "hdf5_data_param.batch_size must be positive, got %lld",
                               (long long)s->batch);
    s->shuffle = moka_pt_bool(p, "shuffle");

    s->num_tops = l->num_top;
    const size_t nt = (size_t)s->num_tops;
    s->names = calloc(nt, sizeof *s->names);
    s->ndim = calloc(nt, sizeof *s->ndim);
    s->dims = calloc(nt, sizeof *s->dims);
    s->row_size = calloc(nt, sizeof *s->row_size);
    s->data = calloc(nt, sizeof *s->data);
    if (!s->names || !s->ndim || !s->dims || !s->row_size || !s->data)
        return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");
    for (int k = 0; k < s->num_tops; k++) s->names[k] = moka_pt_str_at(l->cfg, "top", k);

    MOKA_TRY(read_source(l, s, source, err));
    s->file_perm = malloc((size_t)s->num_files * sizeof *s->file_perm);
    if (!s->file_perm) return moka_layer_errf(l, err, MOKA_ERR_NOMEM, "out of memory");
    MOKA_TRY(moka_loader_shard(l->ctx, l->name, &s->start, &s->stride, err));
    s->rng0 = l->rng;
    MOKA_TRY(start(l, s, true, err));
    for (int k = 0; k < s->num_tops; k++) {
        s->row_size[k] = 1;
        for (int i = 1; i < s->ndim[k]; i++) s->row_size[k] *= s->dims[k][i];
    }
    MOKA_TRY(advance(l, s, s->start, err));
    moka_logf(MOKA_LOG_INFO, "data", "layer '%s': %d HDF5 file(s) from '%s', first has %lld rows%s",
              l->name, s->num_files, source, (long long)s->rows,
              s->shuffle ? ", shuffled" : "");
    return MOKA_OK;
}

static moka_status hdf5_data_reshape(moka_layer *l, moka_err *err)
{
    const hdf5_data *s = l->state;
    for (int k = 0; k < s->num_tops; k++) {
        int64_t shape[MOKA_MAX_NDIM];
        memcpy(shape, s->dims[k], sizeof shape);
        shape[0] = s->batch;
        MOKA_TRY(moka_tensor_set_shape(l->top[k], s->ndim[k], shape, err));
    }
    return MOKA_OK;
}

static moka_status hdf5_data_forward_cpu(moka_layer *l, moka_err *err)
{
    hdf5_data *s = l->state;
    for (int64_t b = 0; b < s->batch; b++) {
        /* After a failed file load nothing is left to read; every later pass says so. */
        if (!s->have_data)
            return moka_layer_errf(l, err, MOKA_ERR_IO,
                                   "no rows to read: an earlier HDF5 read failed");
        const int64_t r = s->row_perm[s->cur_row];
        for (int k = 0; k < s->num_tops; k++)
            memcpy(l->top[k]->data + b * s->row_size[k], s->data[k] + r * s->row_size[k],
                   (size_t)s->row_size[k] * sizeof(float));
        MOKA_TRY(advance(l, s, s->stride, err));
    }
    return MOKA_OK;
}

/* Positions the layer as if all ranks together had read the first `position` rows of the
 * stream (this rank's next is row position + rank): replays the order from setup, reading only
 * the row counts of the files passed over, then loads the current file. */
static moka_status hdf5_data_seek(moka_layer *l, int64_t position, moka_err *err)
{
    hdf5_data *s = l->state;
    if (position < 0)
        return moka_layer_errf(l, err, MOKA_ERR_INVALID_ARG,
                               "cannot seek to row %lld (want >= 0)", (long long)position);
    MOKA_TRY(start(l, s, false, err));
    return advance(l, s, position + s->start, err);
}

const moka_layer_ops moka_layer_hdf5_data = {
    .type = "HDF5Data",
    .param_field = "hdf5_data_param",
    .state_size = sizeof(hdf5_data),
    .min_bottom = 0,
    .max_bottom = 0,
    .min_top = 1,
    .max_top = -1,
    .setup = hdf5_data_setup,
    .reshape = hdf5_data_reshape,
    .forward_cpu = hdf5_data_forward_cpu,
    .destroy = hdf5_data_destroy,
    .seek = hdf5_data_seek,
};
