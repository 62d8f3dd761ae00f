/* src/io/caffemodel.c -- Caffe's .caffemodel (NetParameter) and .solverstate (SolverState)
 * binary files through the protobuf-c code generated from proto/caffe.proto.
 *
 *   write: tensors -> Caffe__NetParameter whose BlobProto.data point at the tensors' floats
 *          (no copy) -> protobuf_c_message_pack_to_buffer into a buffered fd sink ->
 *          "<path>.tmp.<pid>" -> fsync -> rename(tmp, path) -> fsync(dir)
 *   read:  mmap(path) -> protobuf_c_message_unpack -> per-blob shape/count checks -> tensors
 *          whose data point into the unpacked message (caffemodel) or own its arrays (history)
 *
 * Caffe semantics followed: Blob::ToProto (shape + data), Blob::FromProto and ShapeEquals
 * (legacy num/channels/height/width blobs are 4-D and match a net blob padded with leading 1s),
 * Net::CopyTrainedLayersFrom (match by name, skip unknown file layers, equal blob counts),
 * UpgradeV1LayerType (V1 enum -> V2 type string), SGDSolver snapshot/restore for SolverState.
 */
#include "io/caffemodel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "moka/log.h"

/* Caffe reads protobuf files through a CodedInputStream limited to INT_MAX bytes, and protobuf-c
 * writes length prefixes as 32-bit values, so no file of ours may reach 2 GiB. */
#define MAX_FILE_BYTES ((size_t)INT_MAX)

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                     */

/* A ProtobufCBuffer that streams into a file descriptor through a 1 MiB staging buffer. Large
 * appends (the packed float arrays of big blobs) go straight to write(2), so the model is never
 * copied. protobuf-c's append callback cannot fail, so the first errno is kept and checked after
 * packing. */
typedef struct {
    ProtobufCBuffer base; /* first member: protobuf-c calls base.append with &base */
    int fd;
    uint8_t *buf;
    size_t len, cap;
    int error; /* first errno seen; 0 while every write succeeded */
} fd_sink;

static void write_all(fd_sink *s, const uint8_t *p, size_t n)
{
    while (n > 0 && !s->error) {
        /* Linux writes at most about 2 GiB per call; stay well below. */
        const ssize_t w = write(s->fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0) {
            if (errno != EINTR) s->error = errno;
            continue;
        }
        if (w == 0) s->error = EIO; /* a regular file never accepts 0 bytes of a non-empty write */
        p += w;
        n -= (size_t)w;
    }
}

static void sink_flush(fd_sink *s)
{
    write_all(s, s->buf, s->len);
    s->len = 0;
}

static void sink_append(ProtobufCBuffer *b, size_t n, const uint8_t *data)
{
    fd_sink *s = (fd_sink *)b;
    if (s->error) return;
    if (s->len + n > s->cap) sink_flush(s);
    if (n >= s->cap) {
        write_all(s, data, n);
        return;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
}

/* Makes the rename durable: without fsync of the directory a power cut may forget the new name
 * even though the data reached the disk. Some file systems refuse fsync on a directory (EINVAL);
 * the file itself is already safe then, so failures here are not errors. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (!slash) {
        dir = strdup(".");
    } else {
        const size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) return;
    const int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Packs msg into "<path>.tmp.<pid>", syncs it and renames it over path. On any failure the
 * temporary file is removed and path is untouched. */
static moka_status write_atomic(const char *path, const ProtobufCMessage *msg, moka_err *err)
{
    const size_t nbytes = protobuf_c_message_get_packed_size(msg);
    if (nbytes >= MAX_FILE_BYTES)
        return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                         "cannot write '%s': %zu bytes reach the 2 GiB limit of Caffe's protobuf "
                         "reader", path, nbytes);

    moka_status st = MOKA_OK;
    fd_sink sink = {.base = {.append = sink_append}, .fd = -1, .cap = (size_t)1 << 20};
    const size_t tmp_len = strlen(path) + 32;
    char *tmp = malloc(tmp_len);
    sink.buf = malloc(sink.cap);
    if (!tmp || !sink.buf) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "cannot write '%s': out of memory", path);
        goto fail_nofile;
    }
    snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());

    sink.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (sink.fd < 0) {
        st = moka_errf(err, MOKA_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto fail_nofile;
    }
    protobuf_c_message_pack_to_buffer(msg, &sink.base);
    sink_flush(&sink);
    if (sink.error) {
        st = moka_errf(err, MOKA_ERR_IO, "cannot write '%s': %s", tmp, strerror(sink.error));
        goto fail;
    }
    if (fsync(sink.fd) != 0) {
        st = moka_errf(err, MOKA_ERR_IO, "cannot sync '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    const int fd = sink.fd;
    sink.fd = -1;
    if (close(fd) != 0) {
        st = moka_errf(err, MOKA_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = moka_errf(err, MOKA_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                       strerror(errno));
        goto fail;
    }
    sync_parent_dir(path);
    free(sink.buf);
    free(tmp);
    return MOKA_OK;

fail:
    if (sink.fd >= 0) close(sink.fd);
    unlink(tmp);
fail_nofile:
    free(sink.buf);
    free(tmp);
    return st;
}

/* Checks one tensor handed to a writer. `what` names it for the message ("layer 'conv1' blob 0",
 * "history blob 3"). */
static moka_status check_out_blob(const char *path, const moka_tensor *t, const char *what,
                                  moka_err *err)
{
    if (!t)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "cannot write '%s': %s is NULL", path, what);
    if (t->ndim < 0 || t->ndim > MOKA_MAX_NDIM)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "cannot write '%s': %s has %d axes", path,
                         what, t->ndim);
    for (int a = 0; a < t->ndim; a++)
        if (t->shape[a] < 0)
            return moka_errf(err, MOKA_ERR_INVALID_ARG,
                             "cannot write '%s': %s has negative dimension %lld at axis %d", path,
                             what, (long long)t->shape[a], a);
    if (moka_tensor_count(t) > 0 && !t->data)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "cannot write '%s': %s has no data", path,
                         what);
    return MOKA_OK;
}

/* Fills bp/bs so that bp describes t as Caffe's Blob::ToProto does (shape, then data), pointing
 * at the tensor's own shape and data arrays: packing only reads them. */
static void blob_to_proto(moka_tensor *t, Caffe__BlobProto *bp, Caffe__BlobShape *bs)
{
    caffe__blob_proto__init(bp);
    caffe__blob_shape__init(bs);
    bs->n_dim = (size_t)t->ndim;
    bs->dim = t->shape;
    bp->shape = bs;
    bp->n_data = (size_t)moka_tensor_count(t);
    bp->data = bp->n_data ? t->data : NULL;
}

moka_status moka_caffemodel_write(const char *path, const char *net_name,
                                  const moka_model_layer *layers, int num_layers, moka_err *err)
{
    if (!path) return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_caffemodel_write: path is NULL");
    if (num_layers < 0 || (num_layers > 0 && !layers))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "cannot write '%s': %d layers given", path,
                         num_layers);
    size_t total_blobs = 0;
    for (int i = 0; i < num_layers; i++) {
        const moka_model_layer *l = &layers[i];
        if (!l->name)
            return moka_errf(err, MOKA_ERR_INVALID_ARG, "cannot write '%s': layer %d has no name",
                             path, i);
        if (l->num_blobs < 0 || (l->num_blobs > 0 && !l->blobs))
            return moka_errf(err, MOKA_ERR_INVALID_ARG,
                             "cannot write '%s': layer '%s' has %d blobs", path, l->name,
                             l->num_blobs);
        for (int j = 0; j < l->num_blobs; j++) {
            char what[320];
            snprintf(what, sizeof what, "layer '%s' blob %d", l->name, j);
            MOKA_TRY(check_out_blob(path, l->blobs[j], what, err));
        }
        total_blobs += (size_t)l->num_blobs;
    }

    /* One allocation per kind; +1 keeps calloc away from size 0. */
    Caffe__LayerParameter *lp = calloc((size_t)num_layers + 1, sizeof *lp);
    Caffe__LayerParameter **lpp = calloc((size_t)num_layers + 1, sizeof *lpp);
    Caffe__BlobProto *bp = calloc(total_blobs + 1, sizeof *bp);
    Caffe__BlobProto **bpp = calloc(total_blobs + 1, sizeof *bpp);
    Caffe__BlobShape *bs = calloc(total_blobs + 1, sizeof *bs);
    moka_status st;
    if (!lp || !lpp || !bp || !bpp || !bs) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "cannot write '%s': out of memory", path);
        goto done;
    }
    size_t k = 0;
    for (int i = 0; i < num_layers; i++) {
        const moka_model_layer *l = &layers[i];
        caffe__layer_parameter__init(&lp[i]);
        /* protobuf-c's structs are not const-correct; packing never writes through them. */
        lp[i].name = (char *)l->name;
        lp[i].type = (char *)l->type;
        lp[i].n_blobs = (size_t)l->num_blobs;
        lp[i].blobs = bpp + k;
        for (int j = 0; j < l->num_blobs; j++, k++) {
            blob_to_proto(l->blobs[j], &bp[k], &bs[k]);
            bpp[k] = &bp[k];
        }
        lpp[i] = &lp[i];
    }
    Caffe__NetParameter np;
    caffe__net_parameter__init(&np);
    np.name = (char *)net_name;
    np.n_layer = (size_t)num_layers;
    np.layer = lpp;
    st = write_atomic(path, &np.base, err);
done:
    free(bs);
    free(bpp);
    free(bp);
    free(lpp);
    free(lp);
    return st;
}

moka_status moka_solverstate_write(const char *path, int64_t iter, int64_t data_position,
                                   const char *learned_net,
                                   int64_t current_step, moka_tensor *const *history,
                                   int num_history, moka_err *err)
{
    if (!path)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_solverstate_write: path is NULL");
    if (iter < INT32_MIN || iter > INT32_MAX || current_step < INT32_MIN ||
        current_step > INT32_MAX)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "cannot write '%s': iter %lld or current_step %lld does not fit "
                         "SolverState's int32 fields", path, (long long)iter,
                         (long long)current_step);
    if (num_history < 0 || (num_history > 0 && !history))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "cannot write '%s': %d history blobs given",
                         path, num_history);
    for (int i = 0; i < num_history; i++) {
        char what[64];
        snprintf(what, sizeof what, "history blob %d", i);
        MOKA_TRY(check_out_blob(path, history[i], what, err));
    }
    Caffe__BlobProto *bp = calloc((size_t)num_history + 1, sizeof *bp);
    Caffe__BlobProto **bpp = calloc((size_t)num_history + 1, sizeof *bpp);
    Caffe__BlobShape *bs = calloc((size_t)num_history + 1, sizeof *bs);
    moka_status st;
    if (!bp || !bpp || !bs) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "cannot write '%s': out of memory", path);
        goto done;
    }
    for (int i = 0; i < num_history; i++) {
        blob_to_proto(history[i], &bp[i], &bs[i]);
        bpp[i] = &bp[i];
    }
    Caffe__SolverState ss;
    caffe__solver_state__init(&ss);
    ss.has_iter = 1;
    ss.iter = (int32_t)iter;
    ss.learned_net = (char *)learned_net;
    ss.n_history = (size_t)num_history;
    ss.history = bpp;
    ss.has_current_step = 1;
    ss.current_step = (int32_t)current_step;
    if (data_position >= 0) {
        ss.has_data_position = 1;
        ss.data_position = data_position;
    }
    st = write_atomic(path, &ss.base, err);
done:
    free(bs);
    free(bpp);
    free(bp);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                     */

/* The bytes of a file: mapped when it is a regular file (no heap copy of a 240 MB model),
 * otherwise read into `heap` (pipes, /dev/stdin). The mapping lives only while protobuf-c
 * decodes it. moka's writers replace files by rename and never shrink one in place, so the
 * mapping cannot lose pages under us; another program truncating the file during those
 * milliseconds would (as for any mmap reader) raise SIGBUS. */
typedef struct {
    const uint8_t *data;
    size_t len;
    void *map;
    uint8_t *heap;
} file_bytes;

static void file_bytes_release(file_bytes *fb)
{
    if (fb->map) munmap(fb->map, fb->len);
    free(fb->heap);
    memset(fb, 0, sizeof *fb);
}

static moka_status file_bytes_load(const char *path, file_bytes *fb, moka_err *err)
{
    memset(fb, 0, sizeof *fb);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return moka_errf(err, MOKA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        const int e = errno;
        close(fd);
        return moka_errf(err, MOKA_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return moka_errf(err, MOKA_ERR_IO, "cannot read '%s': it is a directory", path);
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size >= MAX_FILE_BYTES) {
        close(fd);
        return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                         "'%s' is %lld bytes, beyond the 2 GiB limit of Caffe's protobuf files",
                         path, (long long)st.st_size);
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            (void)posix_madvise(p, (size_t)st.st_size, POSIX_MADV_SEQUENTIAL);
            close(fd);
            fb->map = p;
            fb->data = p;
            fb->len = (size_t)st.st_size;
            return MOKA_OK;
        }
    }
    /* Not mappable: read it whole, growing the buffer geometrically. */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return moka_errf(err, MOKA_ERR_NOMEM, "cannot read '%s': out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_BYTES) {
                free(buf);
                close(fd);
                return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                                 "'%s' exceeds the 2 GiB limit of Caffe's protobuf files", path);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return moka_errf(err, MOKA_ERR_NOMEM, "cannot read '%s': out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        const ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            free(buf);
            close(fd);
            return moka_errf(err, MOKA_ERR_IO, "cannot read '%s': %s", path, strerror(e));
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    fb->heap = buf;
    fb->data = buf;
    fb->len = len;
    return MOKA_OK;
}

/* Reads a base-128 varint at *pos. Returns 1 on success, 0 when the data ends inside it, -1 when
 * it is longer than 10 bytes. */
static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*pos >= len) return 0;
        const uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return -1;
}

/* After protobuf-c refused the bytes, tells a cut-off file from one that is not this message
 * at all: walks the top-level fields and reports a field of a message type the schema declares
 * (a `layer`, a `history` blob) whose length prefix runs past the end of the file. Garbage
 * rarely starts with such a field, so it keeps the plain "not a ..." message. */
static bool find_truncation(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                            char *detail, size_t detail_len)
{
    size_t pos = 0;
    while (pos < len) {
        const size_t start = pos;
        uint64_t tag, v;
        if (read_varint(p, len, &pos, &tag) != 1 || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
            return false;
        switch (tag & 7) {
        case 0:
            if (read_varint(p, len, &pos, &v) != 1) return false;
            break;
        case 1:
            if (len - pos < 8) return false;
            pos += 8;
            break;
        case 5:
            if (len - pos < 4) return false;
            pos += 4;
            break;
        case 2: {
            if (read_varint(p, len, &pos, &v) != 1) return false;
            if (v <= len - pos) {
                pos += (size_t)v;
                break;
            }
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
            if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || v >= MAX_FILE_BYTES) return false;
            snprintf(detail, detail_len,
                     "field '%s' at byte %zu declares %llu bytes but only %zu remain", f->name,
                     start, (unsigned long long)v, len - pos);
            return true;
        }
        default:
            return false;
        }
    }
    return false;
}

/* Loads path and unpacks it as `desc` (what = "NetParameter"/"SolverState" for messages). */
static moka_status decode_file(const char *path, const ProtobufCMessageDescriptor *desc,
                               const char *what, ProtobufCMessage **out, moka_err *err)
{
    *out = NULL;
    file_bytes fb;
    MOKA_TRY(file_bytes_load(path, &fb, err));
    if (fb.len == 0) {
        file_bytes_release(&fb);
        return moka_errf(err, MOKA_ERR_IO, "'%s' is empty (not a Caffe %s)", path, what);
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, fb.len, fb.data);
    moka_status st = MOKA_OK;
    if (!msg) {
        char detail[256];
        if (find_truncation(desc, fb.data, fb.len, detail, sizeof detail))
            st = moka_errf(err, MOKA_ERR_IO, "'%s' is truncated: %s (protobuf decode failed)",
                           path, detail);
        else
            st = moka_errf(err, MOKA_ERR_IO, "'%s' is not a Caffe %s (protobuf decode failed)",
                           path, what);
    }
    file_bytes_release(&fb);
    *out = msg;
    return st;
}

/* Turns a BlobProto into a tensor as Caffe's Blob::FromProto(reshape = true) does: the legacy
 * num/channels/height/width fields, when any is present, make a 4-D shape; otherwise `shape`.
 * t->data points at bp->data (not copied) unless the blob stores double_data, which is converted
 * into a new array (*owned = true). The value count must equal the shape's count. Messages
 * start with "blob <index>" for the caller to prefix with the file and layer. */
static moka_status blob_from_proto(const Caffe__BlobProto *bp, int index, moka_tensor *t,
                                   bool *legacy, bool *owned, moka_err *err)
{
    memset(t, 0, sizeof *t);
    *legacy = bp->has_num || bp->has_channels || bp->has_height || bp->has_width;
    *owned = false;
    if (*legacy) {
        t->ndim = 4;
        t->shape[0] = bp->num;
        t->shape[1] = bp->channels;
        t->shape[2] = bp->height;
        t->shape[3] = bp->width;
    } else if (bp->shape) {
        if (bp->shape->n_dim > MOKA_MAX_NDIM)
            return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                             "blob %d has %zu axes (moka supports at most %d)", index,
                             bp->shape->n_dim, MOKA_MAX_NDIM);
        t->ndim = (int)bp->shape->n_dim;
        for (int a = 0; a < t->ndim; a++) t->shape[a] = bp->shape->dim[a];
    }
    int64_t count = 1;
    for (int a = 0; a < t->ndim; a++) {
        const int64_t d = t->shape[a];
        if (d < 0)
            return moka_errf(err, MOKA_ERR_IO, "blob %d has negative dimension %lld at axis %d",
                             index, (long long)d, a);
        if (d > 0 && count > INT64_MAX / d)
            return moka_errf(err, MOKA_ERR_IO, "blob %d: the shape's element count overflows",
                             index);
        count *= d;
    }
    char shape[200];
    const bool use_double = bp->n_double_data > 0;
    const size_t have = use_double ? bp->n_double_data : bp->n_data;
    if ((uint64_t)have != (uint64_t)count)
        return moka_errf(err, MOKA_ERR_IO, "blob %d has shape %s but holds %zu %svalues", index,
                         moka_tensor_shape_str(t, shape, sizeof shape), have,
                         use_double ? "double_data " : "");
    if (count == 0) return MOKA_OK;
    if (!use_double) {
        t->data = bp->data;
        return MOKA_OK;
    }
    float *f = malloc((size_t)count * sizeof *f);
    if (!f) return moka_errf(err, MOKA_ERR_NOMEM, "blob %d: out of memory", index);
    for (int64_t i = 0; i < count; i++) f[i] = (float)bp->double_data[i];
    t->data = f;
    *owned = true;
    return MOKA_OK;
}

/* Caffe's V2 type string for a V1 enum value (util/upgrade_proto.cpp, UpgradeV1LayerType). */
static const char *v1_type_name(Caffe__V1LayerParameter__LayerType t)
{
    switch (t) {
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__NONE: return "";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ABSVAL: return "AbsVal";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ACCURACY: return "Accuracy";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ARGMAX: return "ArgMax";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__BNLL: return "BNLL";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONCAT: return "Concat";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONTRASTIVE_LOSS: return "ContrastiveLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONVOLUTION: return "Convolution";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DECONVOLUTION: return "Deconvolution";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA: return "Data";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DROPOUT: return "Dropout";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DUMMY_DATA: return "DummyData";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__EUCLIDEAN_LOSS: return "EuclideanLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ELTWISE: return "Eltwise";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__EXP: return "Exp";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__FLATTEN: return "Flatten";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_DATA: return "HDF5Data";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_OUTPUT: return "HDF5Output";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HINGE_LOSS: return "HingeLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IM2COL: return "Im2col";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA: return "ImageData";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INFOGAIN_LOSS: return "InfogainLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INNER_PRODUCT: return "InnerProduct";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__LRN: return "LRN";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MEMORY_DATA: return "MemoryData";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MULTINOMIAL_LOGISTIC_LOSS:
        return "MultinomialLogisticLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MVN: return "MVN";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__POOLING: return "Pooling";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__POWER: return "Power";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__RELU: return "ReLU";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SIGMOID: return "Sigmoid";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SIGMOID_CROSS_ENTROPY_LOSS:
        return "SigmoidCrossEntropyLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SILENCE: return "Silence";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX: return "Softmax";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX_LOSS: return "SoftmaxWithLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SPLIT: return "Split";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SLICE: return "Slice";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__TANH: return "TanH";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA: return "WindowData";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__THRESHOLD: return "Threshold";
    default: return NULL; /* protobuf-c keeps unknown enum numbers as they are */
    }
}

struct moka_caffemodel {
    Caffe__NetParameter *msg; /* owns the names and the float arrays the tensors point into */
    char *path;               /* for messages */
    int num_layers;
    moka_model_layer *layers;  /* num_layers views, in file order */
    moka_tensor *tensors;      /* every blob of every layer, in order */
    moka_tensor **tensor_ptrs; /* layers[i].blobs points into this */
    bool *legacy;              /* per tensor: shape came from num/channels/height/width */
    bool *owned;               /* per tensor: data converted from double_data, freed by us */
    size_t num_tensors;
};

void moka_caffemodel_free(moka_caffemodel *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->num_tensors; i++)
        if (m->owned && m->owned[i]) free(m->tensors[i].data);
    free(m->owned);
    free(m->legacy);
    free(m->tensor_ptrs);
    free(m->tensors);
    free(m->layers);
    if (m->msg) caffe__net_parameter__free_unpacked(m->msg, NULL);
    free(m->path);
    free(m);
}

/* Fills m->layers from the unpacked message, V2 or V1. */
static moka_status build_layers(moka_caffemodel *m, moka_err *err)
{
    const Caffe__NetParameter *np = m->msg;
    if (np->n_layer > 0 && np->n_layers > 0)
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s' has both V2 'layer' and V1 'layers' entries (Caffe refuses such "
                         "files too)", m->path);
    const bool v1 = np->n_layers > 0;
    const size_t n = v1 ? np->n_layers : np->n_layer;
    if (n > INT_MAX)
        return moka_errf(err, MOKA_ERR_IO, "'%s' has %zu layers", m->path, n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += v1 ? np->layers[i]->n_blobs : np->layer[i]->n_blobs;

    m->layers = calloc(n + 1, sizeof *m->layers);
    m->tensors = calloc(total + 1, sizeof *m->tensors);
    m->tensor_ptrs = calloc(total + 1, sizeof *m->tensor_ptrs);
    m->legacy = calloc(total + 1, sizeof *m->legacy);
    m->owned = calloc(total + 1, sizeof *m->owned);
    if (!m->layers || !m->tensors || !m->tensor_ptrs || !m->legacy || !m->owned)
        return moka_errf(err, MOKA_ERR_NOMEM, "reading '%s': out of memory", m->path);
    m->num_layers = (int)n;

    for (size_t i = 0; i < n; i++) {
        moka_model_layer *l = &m->layers[i];
        size_t nb;
        Caffe__BlobProto **blobs;
        if (v1) {
            const Caffe__V1LayerParameter *v = np->layers[i];
            l->name = v->name ? v->name : "";
            if (v->layer)
                return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                                 "'%s': layer %zu ('%s') uses Caffe's V0 layer format "
                                 "(pre-2014), which moka does not read; upgrade the file with "
                                 "Caffe's upgrade_net_proto_binary", m->path, i,
                                 v->layer->name ? v->layer->name : l->name);
            l->type = v->has_type ? v1_type_name(v->type) : "";
            if (!l->type)
                return moka_errf(err, MOKA_ERR_IO, "'%s': layer '%s' has unknown V1 type %d",
                                 m->path, l->name, (int)v->type);
            nb = v->n_blobs;
            blobs = v->blobs;
        } else {
            const Caffe__LayerParameter *v = np->layer[i];
            l->name = v->name ? v->name : "";
            l->type = v->type ? v->type : "";
            nb = v->n_blobs;
            blobs = v->blobs;
        }
        if (nb > INT_MAX)
            return moka_errf(err, MOKA_ERR_IO, "'%s': layer '%s' has %zu blobs", m->path,
                             l->name, nb);
        l->num_blobs = (int)nb;
        l->blobs = m->tensor_ptrs + m->num_tensors;
        for (size_t j = 0; j < nb; j++) {
            const size_t k = m->num_tensors;
            const moka_status st =
                blob_from_proto(blobs[j], (int)j, &m->tensors[k], &m->legacy[k], &m->owned[k],
                                err);
            if (st != MOKA_OK) {
                moka_err_prefix(err, "'%s': layer '%s'", m->path, l->name);
                return st;
            }
            m->tensor_ptrs[k] = &m->tensors[k];
            m->num_tensors++;
        }
    }
    return MOKA_OK;
}

moka_status moka_caffemodel_read(const char *path, moka_caffemodel **out, moka_err *err)
{
    if (!out) return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_caffemodel_read: out is NULL");
    *out = NULL;
    if (!path) return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_caffemodel_read: path is NULL");
    moka_caffemodel *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return moka_errf(err, MOKA_ERR_NOMEM, "reading '%s': out of memory", path);
    }
    ProtobufCMessage *msg;
    moka_status st = decode_file(path, &caffe__net_parameter__descriptor, "NetParameter", &msg,
                                 err);
    if (st != MOKA_OK) goto fail;
    m->msg = (Caffe__NetParameter *)msg;
    if ((st = build_layers(m, err)) != MOKA_OK) goto fail;
    *out = m;
    return MOKA_OK;
fail:
    moka_caffemodel_free(m);
    return st;
}

const char *moka_caffemodel_name(const moka_caffemodel *m)
{
    return m->msg->name ? m->msg->name : "";
}

int moka_caffemodel_num_layers(const moka_caffemodel *m) { return m->num_layers; }

const moka_model_layer *moka_caffemodel_layer(const moka_caffemodel *m, int i)
{
    return i >= 0 && i < m->num_layers ? &m->layers[i] : NULL;
}

/* Caffe's Blob::ShapeEquals(BlobProto): a legacy 4-D file blob matches a net blob of at most 4
 * axes whose shape, padded on the left with 1s (Caffe's LegacyShape), equals it; otherwise the
 * shapes must be identical. */
static bool shape_equals(const moka_tensor *net, const moka_tensor *file, bool legacy)
{
    if (legacy) {
        if (net->ndim > 4 || file->ndim != 4) return false;
        for (int a = 0; a < 4; a++) {
            const int na = net->ndim - 4 + a;
            if ((na >= 0 ? net->shape[na] : 1) != file->shape[a]) return false;
        }
        return true;
    }
    if (net->ndim != file->ndim) return false;
    for (int a = 0; a < net->ndim; a++)
        if (net->shape[a] != file->shape[a]) return false;
    return true;
}

static int find_layer(const moka_model_layer *layers, int num_layers, const char *name)
{
    for (int j = 0; j < num_layers; j++)
        if (strcmp(layers[j].name, name) == 0) return j;
    return -1;
}

moka_status moka_caffemodel_copy_into(const moka_caffemodel *m, const moka_model_layer *layers,
                                      int num_layers, int *num_copied, moka_err *err)
{
    if (num_copied) *num_copied = 0;
    if (!m || num_layers < 0 || (num_layers > 0 && !layers))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_caffemodel_copy_into: bad arguments");
    for (int j = 0; j < num_layers; j++)
        if (!layers[j].name || layers[j].num_blobs < 0 ||
            (layers[j].num_blobs > 0 && !layers[j].blobs))
            return moka_errf(err, MOKA_ERR_INVALID_ARG,
                             "moka_caffemodel_copy_into: net layer %d has no name or bad blobs",
                             j);

    /* Pass 1 checks every pair, so that an error leaves the net untouched. */
    size_t k = 0; /* index of the file layer's first tensor */
    for (int i = 0; i < m->num_layers; k += (size_t)m->layers[i].num_blobs, i++) {
        const moka_model_layer *fl = &m->layers[i];
        const int j = find_layer(layers, num_layers, fl->name);
        if (j < 0) continue;
        const moka_model_layer *nl = &layers[j];
        if (nl->num_blobs != fl->num_blobs)
            return moka_errf(err, MOKA_ERR_SHAPE,
                             "'%s': layer '%s' has %d blob(s) in the file but %d in the net",
                             m->path, fl->name, fl->num_blobs, nl->num_blobs);
        for (int b = 0; b < fl->num_blobs; b++) {
            const moka_tensor *nt = nl->blobs[b], *ft = fl->blobs[b];
            if (!nt || (moka_tensor_count(nt) > 0 && !nt->data))
                return moka_errf(err, MOKA_ERR_INVALID_ARG,
                                 "moka_caffemodel_copy_into: net layer '%s' blob %d has no data",
                                 nl->name, b);
            if (!shape_equals(nt, ft, m->legacy[k + (size_t)b])) {
                char fs[200], ns[200];
                return moka_errf(err, MOKA_ERR_SHAPE,
                                 "'%s': layer '%s': cannot copy blob %d: shape mismatch, file has "
                                 "%s, net has %s (rename the layer to learn it from scratch)",
                                 m->path, fl->name, b, moka_tensor_shape_str(ft, fs, sizeof fs),
                                 moka_tensor_shape_str(nt, ns, sizeof ns));
            }
        }
    }

    bool *copied = calloc((size_t)num_layers + 1, sizeof *copied);
    if (!copied) return moka_errf(err, MOKA_ERR_NOMEM, "copying '%s': out of memory", m->path);
    int n = 0;
    for (int i = 0; i < m->num_layers; i++) {
        const moka_model_layer *fl = &m->layers[i];
        const int j = find_layer(layers, num_layers, fl->name);
        if (j < 0) {
            moka_logf(MOKA_LOG_INFO, "caffemodel", "Ignoring source layer %s", fl->name);
            continue;
        }
        for (int b = 0; b < fl->num_blobs; b++) {
            const int64_t count = moka_tensor_count(fl->blobs[b]);
            if (count > 0)
                memcpy(layers[j].blobs[b]->data, fl->blobs[b]->data,
                       (size_t)count * sizeof(float));
        }
        if (!copied[j]) n++;
        copied[j] = true;
    }
    free(copied);
    if (num_copied) *num_copied = n;
    return MOKA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Solver state                                                                                */

void moka_solverstate_deinit(moka_solverstate *s)
{
    if (!s) return;
    for (int i = 0; i < s->num_history; i++) free(s->history[i].data);
    free(s->history);
    free(s->learned_net);
    memset(s, 0, sizeof *s);
}

moka_status moka_solverstate_read(const char *path, moka_solverstate *out, moka_err *err)
{
    if (!out) return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_solverstate_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_solverstate_read: path is NULL");
    ProtobufCMessage *msg;
    MOKA_TRY(decode_file(path, &caffe__solver_state__descriptor, "SolverState", &msg, err));
    Caffe__SolverState *ss = (Caffe__SolverState *)msg;
    moka_status st = MOKA_OK;
    if (ss->n_history > INT_MAX) {
        st = moka_errf(err, MOKA_ERR_IO, "'%s' has %zu history blobs", path, ss->n_history);
        goto fail;
    }
    out->iter = ss->has_iter ? ss->iter : 0;
    out->current_step = ss->has_current_step ? ss->current_step : 0;
    out->data_position = ss->has_data_position ? ss->data_position : -1;
    if (ss->learned_net && !(out->learned_net = strdup(ss->learned_net))) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "reading '%s': out of memory", path);
        goto fail;
    }
    out->history = calloc(ss->n_history + 1, sizeof *out->history);
    if (!out->history) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "reading '%s': out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < ss->n_history; i++) {
        Caffe__BlobProto *bp = ss->history[i];
        bool legacy, owned;
        st = blob_from_proto(bp, (int)i, &out->history[i], &legacy, &owned, err);
        if (st != MOKA_OK) {
            moka_err_prefix(err, "'%s': history", path);
            goto fail;
        }
        /* The float array was malloc'd by protobuf-c's default allocator: take it over rather
         * than copy it, and leave the message without it. */
        if (!owned) {
            bp->data = NULL;
            bp->n_data = 0;
        }
        out->num_history = (int)i + 1;
    }
    caffe__solver_state__free_unpacked(ss, NULL);
    return MOKA_OK;
fail:
    caffe__solver_state__free_unpacked(ss, NULL);
    moka_solverstate_deinit(out);
    return st;
}

moka_status moka_solverstate_copy_history(const moka_solverstate *s, moka_tensor *const *history,
                                          int num_history, moka_err *err)
{
    if (!s || num_history < 0 || (num_history > 0 && !history))
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "moka_solverstate_copy_history: bad arguments");
    if (s->num_history != num_history)
        return moka_errf(err, MOKA_ERR_SHAPE,
                         "solver state has %d history blob(s) but the solver keeps %d (was it "
                         "written for another net or solver type?)", s->num_history, num_history);
    for (int i = 0; i < num_history; i++) {
        const moka_tensor *h = history[i], *f = &s->history[i];
        if (!h || (moka_tensor_count(h) > 0 && !h->data))
            return moka_errf(err, MOKA_ERR_INVALID_ARG,
                             "moka_solverstate_copy_history: history blob %d has no data", i);
        if (!shape_equals(h, f, false) && !(f->ndim == 4 && shape_equals(h, f, true))) {
            char fs[200], hs[200];
            return moka_errf(err, MOKA_ERR_SHAPE,
                             "solver state history blob %d has shape %s but the solver's is %s",
                             i, moka_tensor_shape_str(f, fs, sizeof fs),
                             moka_tensor_shape_str(h, hs, sizeof hs));
        }
    }
    for (int i = 0; i < num_history; i++) {
        const int64_t count = moka_tensor_count(history[i]);
        if (count > 0)
            memcpy(history[i]->data, s->history[i].data, (size_t)count * sizeof(float));
    }
    return MOKA_OK;
}
