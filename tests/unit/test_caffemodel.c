/* tests/unit/test_caffemodel.c -- .caffemodel and .solverstate files (src/io/caffemodel.c).
 *
 * Independent checks:
 *   - moka's bytes equal a canonical encoding made by a tiny protobuf encoder in this file (fields
 *     in number order, repeated scalars packed, as Caffe's C++ protobuf serialises them);
 *   - tests/ref/read_caffemodel.py, a hand-written wire-format decoder in Python, dumps moka's
 *     files and the dump must equal the one made here from the tensors that were written;
 *   - files built here from raw wire bytes (V1 `layers`, legacy 4-D blobs, unpacked floats,
 *     double_data) read back with the values that were encoded;
 *   - a writer killed mid-write (SIGKILL from the parent) leaves the previous file intact.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/caffemodel.h"
#include "moka/log.h"
#include "test.h"

#define READER MOKA_SOURCE_DIR "/tests/ref/read_caffemodel.py"

/* ---- a scratch directory, removed at the end ---------------------------------------------- */

static char g_dir[256];

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "caffemodel_test_XXXXXX");
        if (!mkdtemp(g_dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static void remove_dir(void)
{
    if (!g_dir[0]) return;
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(g_dir);
}

/* Counts the entries of the scratch directory whose name starts with prefix. */
static int count_files(const char *prefix)
{
    int n = 0;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    return n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    *len = n;
    return b;
}

static int spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* ---- a tiny protobuf wire encoder (independent of protobuf-c) ------------------------------ */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} wbuf;

static void wb_bytes(wbuf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) exit(1);
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void wb_varint(wbuf *b, uint64_t v)
{
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        if (v) c |= 0x80;
        wb_bytes(b, &c, 1);
    } while (v);
}

static void wb_key(wbuf *b, unsigned field, unsigned wire) { wb_varint(b, field << 3 | wire); }
static void wb_int(wbuf *b, unsigned field, int64_t v)
{
    wb_key(b, field, 0);
    wb_varint(b, (uint64_t)v); /* int32/int64: negative values take 10 bytes */
}
static void wb_len(wbuf *b, unsigned field, const void *d, size_t n)
{
    wb_key(b, field, 2);
    wb_varint(b, n);
    wb_bytes(b, d, n);
}
static void wb_msg(wbuf *b, unsigned field, wbuf *sub)
{
    wb_len(b, field, sub->p, sub->len);
    free(sub->p);
    *sub = (wbuf){0};
}
static void wb_str(wbuf *b, unsigned field, const char *s) { wb_len(b, field, s, strlen(s)); }
static void wb_packed_floats(wbuf *b, unsigned field, const float *v, size_t n)
{
    wb_len(b, field, v, n * sizeof(float)); /* little-endian host, as the wire wants */
}
static void wb_unpacked_floats(wbuf *b, unsigned field, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wb_key(b, field, 5);
        wb_bytes(b, &v[i], 4);
    }
}
static void wb_packed_dims(wbuf *b, unsigned field, const int64_t *d, int n)
{
    wbuf s = {0};
    for (int i = 0; i < n; i++) wb_varint(&s, (uint64_t)d[i]);
    wb_msg(b, field, &s);
}

/* BlobProto.shape (field 7): a BlobShape holding packed dims (field 1). */
static void wb_shape(wbuf *b, const int64_t *d, int n)
{
    wbuf shape = {0};
    wb_packed_dims(&shape, 1, d, n);
    wb_msg(b, 7, &shape);
}

/* A BlobProto with shape {dim...} and packed data, in field order (data 5, then shape 7). */
static void wb_blob(wbuf *b, unsigned field, const moka_tensor *t)
{
    wbuf blob = {0}, shape = {0};
    const int64_t n = moka_tensor_count(t);
    if (n) wb_packed_floats(&blob, 5, t->data, (size_t)n);
    if (t->ndim) wb_packed_dims(&shape, 1, t->shape, t->ndim);
    wb_msg(&blob, 7, &shape);
    wb_msg(b, field, &blob);
}

/* A BlobProto with legacy num/channels/height/width and the given data encoding. */
static void wb_legacy_blob(wbuf *b, unsigned field, int n, int c, int h, int w, const float *v,
                           size_t count, bool packed)
{
    wbuf blob = {0};
    wb_int(&blob, 1, n);
    wb_int(&blob, 2, c);
    wb_int(&blob, 3, h);
    wb_int(&blob, 4, w);
    if (packed)
        wb_packed_floats(&blob, 5, v, count);
    else
        wb_unpacked_floats(&blob, 5, v, count);
    wb_msg(b, field, &blob);
}

/* ---- test models ----------------------------------------------------------------------------- */

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

static void fill(moka_tensor *t, uint32_t seed)
{
    const int64_t n = moka_tensor_count(t);
    for (int64_t i = 0; i < n; i++) {
        const uint32_t r = lcg(&seed);
        t->data[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 4.0f;
    }
}

static moka_tensor *new_tensor(int ndim, const int64_t *shape)
{
    moka_tensor *t = calloc(1, sizeof *t);
    moka_tensor_set_shape(t, ndim, shape, NULL);
    t->data = calloc((size_t)moka_tensor_count(t) + 1, sizeof(float));
    return t;
}

static void free_tensor(moka_tensor *t)
{
    if (!t) return;
    free(t->data);
    free(t);
}

/* A small net's parameters: names, types, shapes like LeNet's plus edge cases. */
#define NL 6
typedef struct {
    moka_model_layer layers[NL];
    moka_tensor *blobs[NL][3];
} model;

static void model_init(model *m, bool with_values)
{
    static const char *names[NL] = {"conv1", "ip1", "relu1", "bn1", "scalar", "empty"};
    static const char *types[NL] = {"Convolution", "InnerProduct", "ReLU",
                                    "BatchNorm", "Parameter", "Parameter"};
    memset(m, 0, sizeof *m);
    m->blobs[0][0] = new_tensor(MOKA_SHAPE(4, 3, 3, 3));
    m->blobs[0][1] = new_tensor(MOKA_SHAPE(4));
    m->blobs[1][0] = new_tensor(MOKA_SHAPE(10, 36));
    m->blobs[1][1] = new_tensor(MOKA_SHAPE(10));
    m->blobs[3][0] = new_tensor(MOKA_SHAPE(4));
    m->blobs[3][1] = new_tensor(MOKA_SHAPE(4));
    m->blobs[3][2] = new_tensor(MOKA_SHAPE(1));
    m->blobs[4][0] = new_tensor(0, NULL); /* 0-D: one value, `shape {}` in the file */
    m->blobs[5][0] = new_tensor(MOKA_SHAPE(0, 5)); /* no values at all */
    static const int nb[NL] = {2, 2, 0, 3, 1, 1};
    for (int i = 0; i < NL; i++) {
        m->layers[i] = (moka_model_layer){names[i], types[i], nb[i], m->blobs[i]};
        if (with_values)
            for (int j = 0; j < nb[i]; j++) fill(m->blobs[i][j], (uint32_t)(17 * i + j + 1));
    }
    if (with_values) {
        /* Values whose bits must survive: -0, a denormal, infinities, a NaN with a payload. */
        const uint32_t special[] = {0x80000000u, 0x00000001u, 0x7f800000u, 0xff800000u,
                                    0x7fc12345u};
        for (int i = 0; i < 5; i++) memcpy(&m->blobs[0][0]->data[i], &special[i], 4);
    }
}

static void model_deinit(model *m)
{
    for (int i = 0; i < NL; i++)
        for (int j = 0; j < 3; j++) free_tensor(m->blobs[i][j]);
}

/* The dump read_caffemodel.py prints, made here from the tensors. */
static char *dump_layers(const char *net, const moka_model_layer *l, int n)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    fprintf(f, "net %s\n", net);
    for (int i = 0; i < n; i++) {
        fprintf(f, "layer %s %s %d\n", l[i].name, l[i].type, l[i].num_blobs);
        for (int j = 0; j < l[i].num_blobs; j++) {
            const moka_tensor *t = l[i].blobs[j];
            fprintf(f, "blob %d", t->ndim);
            for (int a = 0; a < t->ndim; a++) fprintf(f, " %lld", (long long)t->shape[a]);
            fprintf(f, " %lld\ndata", (long long)moka_tensor_count(t));
            for (int64_t k = 0; k < moka_tensor_count(t); k++) {
                uint32_t bits;
                memcpy(&bits, &t->data[k], 4);
                fprintf(f, " %08x", bits);
            }
            fputc('\n', f);
        }
    }
    fclose(f);
    return s;
}

/* Runs the Python reader on path; returns its stdout (malloc'd), *rc its exit status. */
static char *run_reader(const char *path, const char *flags, int *rc)
{
    char cmd[1024];
    *rc = -1;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s '%s'", READER, flags, path);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *out = malloc(cap);
    while ((r = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap) out = realloc(out, cap *= 2);
    }
    out[n] = '\0';
    const int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static int same_bits(const moka_tensor *a, const moka_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    const int64_t n = moka_tensor_count(a);
    return n == 0 || memcmp(a->data, b->data, (size_t)n * 4) == 0;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static int round_trip_is_bit_identical(void)
{
    moka_err err = {0};
    model src, dst;
    model_init(&src, true);
    model_init(&dst, false);
    const char *path = tmp_path("rt.caffemodel");
    CHECK_OK(moka_caffemodel_write(path, "LeNetish", src.layers, NL, &err));
    CHECK_EQ(count_files("rt.caffemodel.tmp"), 0); /* the temporary was renamed away */

    moka_caffemodel *m;
    CHECK_OK(moka_caffemodel_read(path, &m, &err));
    CHECK(strcmp(moka_caffemodel_name(m), "LeNetish") == 0);
    CHECK_EQ(moka_caffemodel_num_layers(m), NL);
    CHECK(moka_caffemodel_layer(m, NL) == NULL && moka_caffemodel_layer(m, -1) == NULL);
    for (int i = 0; i < NL; i++) {
        const moka_model_layer *l = moka_caffemodel_layer(m, i);
        CHECK(strcmp(l->name, src.layers[i].name) == 0);
        CHECK(strcmp(l->type, src.layers[i].type) == 0);
        CHECK_EQ(l->num_blobs, src.layers[i].num_blobs);
        for (int j = 0; j < l->num_blobs; j++) CHECK(same_bits(l->blobs[j], src.blobs[i][j]));
    }
    int copied = -1;
    CHECK_OK(moka_caffemodel_copy_into(m, dst.layers, NL, &copied, &err));
    CHECK_EQ(copied, NL);
    for (int i = 0; i < NL; i++)
        for (int j = 0; j < src.layers[i].num_blobs; j++)
            CHECK(same_bits(dst.blobs[i][j], src.blobs[i][j]));
    moka_caffemodel_free(m);

    /* A second write replaces the first completely. */
    fill(src.blobs[1][0], 999);
    CHECK_OK(moka_caffemodel_write(path, NULL, src.layers, 2, &err));
    CHECK_OK(moka_caffemodel_read(path, &m, &err));
    CHECK(strcmp(moka_caffemodel_name(m), "") == 0);
    CHECK_EQ(moka_caffemodel_num_layers(m), 2);
    CHECK(same_bits(moka_caffemodel_layer(m, 1)->blobs[0], src.blobs[1][0]));
    moka_caffemodel_free(m);
    moka_caffemodel_free(NULL);
    model_deinit(&dst);
    model_deinit(&src);
    return 0;
}

/* moka's file is exactly the canonical protobuf encoding: what Caffe's C++ writer produces. */
static int bytes_match_canonical_encoding(void)
{
    moka_err err = {0};
    model src;
    model_init(&src, true);
    const char *path = tmp_path("canon.caffemodel");
    CHECK_OK(moka_caffemodel_write(path, "canon", src.layers, NL, &err));

    wbuf want = {0};
    wb_str(&want, 1, "canon");
    for (int i = 0; i < NL; i++) {
        wbuf layer = {0};
        wb_str(&layer, 1, src.layers[i].name);
        wb_str(&layer, 2, src.layers[i].type);
        for (int j = 0; j < src.layers[i].num_blobs; j++) wb_blob(&layer, 7, src.blobs[i][j]);
        wb_msg(&want, 100, &layer);
    }
    size_t len;
    uint8_t *got = slurp(path, &len);
    CHECK(got != NULL);
    CHECK_EQ(len, want.len);
    CHECK(memcmp(got, want.p, len) == 0);
    free(got);
    free(want.p);
    model_deinit(&src);
    return 0;
}

static int python_reader_agrees(void)
{
    moka_err err = {0};
    model src;
    model_init(&src, true);
    const char *path = tmp_path("py.caffemodel");
    CHECK_OK(moka_caffemodel_write(path, "pynet", src.layers, NL, &err));
    int rc;
    char *got = run_reader(path, "", &rc);
    char *want = dump_layers("pynet", src.layers, NL);
    CHECK(got != NULL);
    CHECK_EQ(rc, 0);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "python reader:\n%.2000s\nexpected:\n%.2000s\n", got, want);
        CHECK(strcmp(got, want) == 0);
    }
    free(got);
    free(want);

    /* And the reader is not a rubber stamp: one flipped value changes its dump. */
    size_t len;
    uint8_t *bytes = slurp(path, &len);
    uint8_t *at = NULL;
    for (size_t i = 0; i + 8 <= len && !at; i++)
        if (memcmp(bytes + i, &src.blobs[1][0]->data[20], 8) == 0) at = bytes + i;
    CHECK(at != NULL);
    at[0] ^= 0x01; /* the lowest mantissa bit of ip1's weight 20 */
    CHECK_EQ(spit(path, bytes, len), 0);
    free(bytes);
    got = run_reader(path, "", &rc);
    want = dump_layers("pynet", src.layers, NL);
    CHECK_EQ(rc, 0);
    CHECK(strcmp(got, want) != 0);
    free(got);
    free(want);
    model_deinit(&src);
    return 0;
}

static int log_lines;
static char log_last[256];
static void capture_log(moka_log_level level, const char *src, const char *msg, void *user)
{
    (void)level, (void)src, (void)user;
    log_lines++;
    snprintf(log_last, sizeof log_last, "%s", msg);
}

/* A hand-encoded V1 file (field 2 `layers`) with legacy 4-D blobs, unpacked and packed floats,
 * double_data, and fields moka does not read. */
static uint8_t *v1_file(size_t *len)
{
    static const float w1[8] = {1, -2, 3.5f, -4, 5, 6.25f, -7, 8};
    static const float b1[2] = {0.5f, -0.25f};
    static const float w2[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static const double b2[3] = {0.1, -1e-3, 12345.678};
    wbuf net = {0}, l = {0};
    wb_str(&net, 1, "legacy_net");
    /* conv1: bottom/top strings (skipped), type CONVOLUTION (4), a legacy 2x1x2x2 weight with
     * unpacked floats, a legacy 1x1x1x2 bias with packed ones, blobs_lr (skipped). */
    wb_str(&l, 2, "data");
    wb_str(&l, 3, "conv1");
    wb_str(&l, 4, "conv1");
    wb_int(&l, 5, 4);
    wb_legacy_blob(&l, 6, 2, 1, 2, 2, w1, 8, false);
    wb_legacy_blob(&l, 6, 1, 1, 1, 2, b1, 2, true);
    wb_unpacked_floats(&l, 7, (const float[]){1.0f, 2.0f}, 2);
    wb_msg(&net, 2, &l);
    /* ip: type INNER_PRODUCT (14); weights legacy 1x1x3x4, bias double_data with shape {3}. */
    wb_int(&l, 5, 14);
    wb_str(&l, 4, "ip");
    wb_legacy_blob(&l, 6, 1, 1, 3, 4, w2, 12, true);
    {
        wbuf blob = {0};
        wb_shape(&blob, (const int64_t[]){3}, 1);
        wb_len(&blob, 8, b2, sizeof b2);
        wb_msg(&l, 6, &blob);
    }
    wb_msg(&net, 2, &l);
    /* relu: no blobs. */
    wb_str(&l, 4, "relu");
    wb_int(&l, 5, 18);
    wb_msg(&net, 2, &l);
    /* A layer the target net does not have. */
    wb_str(&l, 4, "extra_in_file");
    wb_int(&l, 5, 20);
    wb_legacy_blob(&l, 6, 1, 1, 1, 1, b1, 1, true);
    wb_msg(&net, 2, &l);
    *len = net.len;
    return net.p;
}

static int reads_hand_encoded_v1_file_with_legacy_blobs(void)
{
    moka_err err = {0};
    size_t len;
    uint8_t *bytes = v1_file(&len);
    const char *path = tmp_path("v1.caffemodel");
    CHECK_EQ(spit(path, bytes, len), 0);
    free(bytes);

    moka_caffemodel *m;
    CHECK_OK(moka_caffemodel_read(path, &m, &err));
    CHECK(strcmp(moka_caffemodel_name(m), "legacy_net") == 0);
    CHECK_EQ(moka_caffemodel_num_layers(m), 4);
    const moka_model_layer *conv = moka_caffemodel_layer(m, 0), *ip = moka_caffemodel_layer(m, 1);
    CHECK(strcmp(conv->name, "conv1") == 0 && strcmp(conv->type, "Convolution") == 0);
    CHECK(strcmp(ip->name, "ip") == 0 && strcmp(ip->type, "InnerProduct") == 0);
    CHECK(strcmp(moka_caffemodel_layer(m, 2)->type, "ReLU") == 0);
    CHECK(strcmp(moka_caffemodel_layer(m, 3)->type, "Softmax") == 0);
    CHECK_EQ(conv->num_blobs, 2);
    CHECK_EQ(moka_caffemodel_layer(m, 2)->num_blobs, 0);
    /* Legacy blobs come back 4-D, as Caffe's FromProto shapes them. */
    CHECK_EQ(conv->blobs[0]->ndim, 4);
    CHECK_EQ(conv->blobs[0]->shape[0], 2);
    CHECK_EQ(conv->blobs[0]->shape[3], 2);
    CHECK_EQ(ip->blobs[0]->shape[2], 3);
    CHECK_EQ(ip->blobs[1]->ndim, 1);
    CHECK(conv->blobs[0]->data[2] == 3.5f);
    CHECK(conv->blobs[0]->data[7] == 8.0f);
    CHECK(ip->blobs[1]->data[2] == (float)12345.678);

    /* Copy into a net whose blobs have the modern shapes: (2,1,2,2), (2), (3,4), (3). */
    moka_tensor *cw = new_tensor(MOKA_SHAPE(2, 1, 2, 2)), *cb = new_tensor(MOKA_SHAPE(2));
    moka_tensor *iw = new_tensor(MOKA_SHAPE(3, 4)), *ib = new_tensor(MOKA_SHAPE(3));
    moka_tensor *other = new_tensor(MOKA_SHAPE(5));
    other->data[0] = 42.0f;
    moka_model_layer net[] = {{"conv1", "Convolution", 2, (moka_tensor *[]){cw, cb}},
                              {"untouched", "Scale", 1, (moka_tensor *[]){other}},
                              {"ip", "InnerProduct", 2, (moka_tensor *[]){iw, ib}},
                              {"relu", "ReLU", 0, NULL}};
    int copied = -1;
    log_lines = 0;
    moka_log_set(capture_log, NULL, MOKA_LOG_DEBUG);
    const moka_status st = moka_caffemodel_copy_into(m, net, 4, &copied, &err);
    moka_log_set(NULL, NULL, MOKA_LOG_INFO);
    CHECK_OK(st);
    CHECK_EQ(copied, 3); /* conv1, ip, relu; "untouched" is not in the file */
    CHECK_EQ(log_lines, 1);
    CHECK_CONTAINS(log_last, "Ignoring source layer extra_in_file");
    const float w1[8] = {1, -2, 3.5f, -4, 5, 6.25f, -7, 8};
    CHECK(memcmp(cw->data, w1, sizeof w1) == 0);
    CHECK(cb->data[0] == 0.5f && cb->data[1] == -0.25f);
    for (int i = 0; i < 12; i++) CHECK(iw->data[i] == (float)(i + 1));
    CHECK(ib->data[0] == 0.1f && ib->data[1] == -1e-3f && ib->data[2] == (float)12345.678);
    CHECK(other->data[0] == 42.0f);

    /* ShapeEquals for legacy blobs: (4,3) has the right count but not the trailing shape, and a
     * 5-D net blob can never match a 4-D legacy one. */
    moka_tensor *iw_t = new_tensor(MOKA_SHAPE(4, 3)), *cw5 = new_tensor(MOKA_SHAPE(1, 2, 1, 2, 2));
    moka_model_layer bad1[] = {{"ip", "InnerProduct", 2, (moka_tensor *[]){iw_t, ib}}};
    CHECK_STATUS(moka_caffemodel_copy_into(m, bad1, 1, NULL, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "layer 'ip': cannot copy blob 0: shape mismatch, file has 1 1 3 4 "
                            "(12), net has 4 3 (12)");
    moka_model_layer bad2[] = {{"conv1", "Convolution", 2, (moka_tensor *[]){cw5, cb}}};
    CHECK_STATUS(moka_caffemodel_copy_into(m, bad2, 1, NULL, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "file has 2 1 2 2 (8), net has 1 2 1 2 2 (8)");
    free_tensor(iw_t);
    free_tensor(cw5);
    moka_caffemodel_free(m);

    /* The independent reader sees the same file the same way. */
    int rc;
    char *got = run_reader(path, "", &rc);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(got, "net legacy_net\nlayer conv1 #4 2\nblob legacy 4 2 1 2 2 8\n"
                        "data 3f800000 c0000000 40600000 c0800000 40a00000 40c80000 c0e00000 "
                        "41000000\nblob legacy 4 1 1 1 2 2\ndata 3f000000 be800000\n"
                        "layer ip #14 2\nblob legacy 4 1 1 3 4 12\n");
    CHECK_CONTAINS(got, "blob 1 3 3\ndata 3dcccccd ba83126f 4640e6b6\nlayer relu #18 0\n"
                        "layer extra_in_file #20 1\n");
    free(got);
    free_tensor(cw);
    free_tensor(cb);
    free_tensor(iw);
    free_tensor(ib);
    free_tensor(other);
    return 0;
}

static int copy_into_checks_counts_and_shapes_before_copying(void)
{
    moka_err err = {0};
    model src, dst;
    model_init(&src, true);
    model_init(&dst, false);
    const char *path = tmp_path("ci.caffemodel");
    CHECK_OK(moka_caffemodel_write(path, "n", src.layers, NL, &err));
    moka_caffemodel *m;
    CHECK_OK(moka_caffemodel_read(path, &m, &err));

    /* ip1 with one blob: conv1 (earlier in the file) must not have been copied either. */
    dst.layers[1].num_blobs = 1;
    CHECK_STATUS(moka_caffemodel_copy_into(m, dst.layers, NL, NULL, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "ci.caffemodel': layer 'ip1' has 2 blob(s) in the file but 1 in the "
                            "net");
    CHECK(dst.blobs[0][0]->data[10] == 0.0f);
    dst.layers[1].num_blobs = 2;

    /* conv1 with 5 input channels instead of 3. */
    moka_tensor *wide = new_tensor(MOKA_SHAPE(4, 5, 3, 3));
    moka_tensor *saved = dst.blobs[0][0];
    dst.blobs[0][0] = wide;
    int copied = 7;
    CHECK_STATUS(moka_caffemodel_copy_into(m, dst.layers, NL, &copied, &err), MOKA_ERR_SHAPE);
    CHECK_EQ(copied, 0);
    CHECK_CONTAINS(err.msg, "layer 'conv1': cannot copy blob 0: shape mismatch, file has 4 3 3 3 "
                            "(108), net has 4 5 3 3 (180)");
    dst.blobs[0][0] = saved;
    free_tensor(wide);

    /* A net with only some of the file's layers, one renamed: the rest are left alone. */
    moka_model_layer part[2] = {dst.layers[1], dst.layers[0]};
    part[1].name = "conv1_renamed";
    dst.blobs[0][0]->data[0] = 7.0f;
    CHECK_OK(moka_caffemodel_copy_into(m, part, 2, &copied, &err));
    CHECK_EQ(copied, 1);
    CHECK(same_bits(dst.blobs[1][0], src.blobs[1][0]));
    CHECK(dst.blobs[0][0]->data[0] == 7.0f);

    /* A net blob without data is the caller's bug. */
    float *keep = dst.blobs[3][1]->data;
    dst.blobs[3][1]->data = NULL;
    CHECK_STATUS(moka_caffemodel_copy_into(m, dst.layers, NL, NULL, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "'bn1' blob 1 has no data");
    dst.blobs[3][1]->data = keep;
    moka_caffemodel_free(m);
    model_deinit(&dst);
    model_deinit(&src);
    return 0;
}

static int write_rejects_bad_arguments(void)
{
    moka_err err = {0};
    model src;
    model_init(&src, true);
    const char *path = tmp_path("bad.caffemodel");
    src.layers[1].name = NULL;
    CHECK_STATUS(moka_caffemodel_write(path, "n", src.layers, NL, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "layer 1 has no name");
    src.layers[1].name = "ip1";
    float *keep = src.blobs[1][1]->data;
    src.blobs[1][1]->data = NULL;
    CHECK_STATUS(moka_caffemodel_write(path, "n", src.layers, NL, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "layer 'ip1' blob 1 has no data");
    src.blobs[1][1]->data = keep;
    CHECK_EQ(access(path, F_OK), -1); /* nothing was written */
    CHECK_STATUS(moka_caffemodel_write(tmp_path("no/such/dir.caffemodel"), "n", src.layers, NL,
                                       &err),
                 MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "cannot create '");
    CHECK_CONTAINS(err.msg, "no/such/dir.caffemodel.tmp.");
    model_deinit(&src);
    return 0;
}

static int missing_empty_garbage_and_truncated_files_fail_clearly(void)
{
    moka_err err = {0};
    moka_caffemodel *m = (moka_caffemodel *)&err; /* must come back NULL on failure */
    const char *missing = tmp_path("missing.caffemodel");
    CHECK_STATUS(moka_caffemodel_read(missing, &m, &err), MOKA_ERR_IO);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "cannot open '");
    CHECK_CONTAINS(err.msg, "missing.caffemodel': No such file or directory");

    CHECK_STATUS(moka_caffemodel_read(g_dir, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "is a directory");

    const char *empty = tmp_path("empty.caffemodel");
    CHECK_EQ(spit(empty, "", 0), 0);
    CHECK_STATUS(moka_caffemodel_read(empty, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "empty.caffemodel' is empty (not a Caffe NetParameter)");

    /* A prototxt handed where the weights belong. */
    const char *text = "name: \"LeNet\"\nlayer {\n  name: \"conv1\"\n  type: \"Convolution\"\n}\n";
    const char *x = tmp_path("x.caffemodel");
    CHECK_EQ(spit(x, text, strlen(text)), 0);
    CHECK_STATUS(moka_caffemodel_read(x, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "x.caffemodel' is not a Caffe NetParameter (protobuf decode failed)");

    /* A real file cut in the middle of its second layer. */
    model src;
    model_init(&src, true);
    const char *full = tmp_path("full.caffemodel"), *cut = tmp_path("cut.caffemodel");
    CHECK_OK(moka_caffemodel_write(full, "n", src.layers, NL, &err));
    size_t len;
    uint8_t *bytes = slurp(full, &len);
    CHECK_EQ(spit(cut, bytes, len * 2 / 3), 0);
    CHECK_STATUS(moka_caffemodel_read(cut, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "cut.caffemodel' is truncated: field 'layer' at byte ");
    CHECK_CONTAINS(err.msg, "(protobuf decode failed)");

    /* Every cut point: either a clear error, or (cut exactly between layers) fewer layers. */
    int failed = 0, shorter = 0, truncated = 0;
    for (size_t n = 1; n < len; n++) {
        CHECK_EQ(spit(cut, bytes, n), 0);
        const moka_status st = moka_caffemodel_read(cut, &m, &err);
        if (st == MOKA_OK) {
            CHECK(moka_caffemodel_num_layers(m) < NL);
            moka_caffemodel_free(m);
            shorter++;
        } else {
            CHECK_EQ(st, MOKA_ERR_IO);
            CHECK_CONTAINS(err.msg, "cut.caffemodel' is ");
            truncated += strstr(err.msg, "' is truncated: field 'layer' at byte ") != NULL;
            failed++;
        }
    }
    CHECK_EQ(shorter, NL); /* cut right after the name or after one of the first NL-1 layers */
    CHECK_EQ(failed, (int)len - 1 - NL);
    /* Only cuts inside the name, a key or a length prefix give the generic message. */
    CHECK(truncated > (int)len - 64);

    /* Random bytes, and the real file with random bytes overwritten: never a crash. */
    uint32_t seed = 12345;
    for (int rep = 0; rep < 300; rep++) {
        uint8_t junk[512];
        for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(lcg(&seed) >> 24);
        CHECK_EQ(spit(x, junk, 1 + lcg(&seed) % sizeof junk), 0);
        if (moka_caffemodel_read(x, &m, &err) == MOKA_OK) moka_caffemodel_free(m);
        uint8_t *mut = malloc(len);
        memcpy(mut, bytes, len);
        for (int k = 0; k < 4; k++) mut[lcg(&seed) % len] = (uint8_t)(lcg(&seed) >> 24);
        CHECK_EQ(spit(x, mut, len), 0);
        free(mut);
        if (moka_caffemodel_read(x, &m, &err) == MOKA_OK) moka_caffemodel_free(m);
    }
    free(bytes);
    model_deinit(&src);
    return 0;
}

static int bad_blobs_and_layouts_fail_clearly(void)
{
    moka_err err = {0};
    moka_caffemodel *m;
    const char *path = tmp_path("bb.caffemodel");
    const float v[6] = {1, 2, 3, 4, 5, 6};

    /* Shape (2,3) with 5 values. */
    wbuf net = {0}, l = {0}, blob = {0};
    wb_str(&l, 1, "fc7");
    wb_packed_floats(&blob, 5, v, 5);
    wb_shape(&blob, (const int64_t[]){2, 3}, 2);
    wb_msg(&l, 7, &blob);
    wb_msg(&net, 100, &l);
    CHECK_EQ(spit(path, net.p, net.len), 0);
    free(net.p);
    net = (wbuf){0};
    CHECK_STATUS(moka_caffemodel_read(path, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "bb.caffemodel': layer 'fc7': blob 0 has shape 2 3 (6) but holds 5 "
                            "values");

    /* Shape (2,3) with 7 values. */
    wb_str(&l, 1, "fc8");
    wb_packed_floats(&blob, 5, (const float[]){1, 2, 3, 4, 5, 6, 7}, 7);
    wb_shape(&blob, (const int64_t[]){2, 3}, 2);
    wb_msg(&l, 7, &blob);
    wb_msg(&net, 100, &l);
    CHECK_EQ(spit(path, net.p, net.len), 0);
    free(net.p);
    net = (wbuf){0};
    CHECK_STATUS(moka_caffemodel_read(path, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "layer 'fc8': blob 0 has shape 2 3 (6) but holds 7 values");

    /* Legacy blob with a negative channel count. */
    wb_str(&l, 1, "conv");
    wb_legacy_blob(&l, 7, 1, -3, 1, 2, v, 6, true);
    wb_msg(&net, 100, &l);
    CHECK_EQ(spit(path, net.p, net.len), 0);
    free(net.p);
    net = (wbuf){0};
    CHECK_STATUS(moka_caffemodel_read(path, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "layer 'conv': blob 0 has negative dimension -3 at axis 1");

    /* Nine axes. */
    wb_str(&l, 1, "deep");
    wb_packed_floats(&blob, 5, v, 1);
    wb_shape(&blob, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 9);
    wb_msg(&l, 7, &blob);
    wb_msg(&net, 100, &l);
    CHECK_EQ(spit(path, net.p, net.len), 0);
    free(net.p);
    net = (wbuf){0};
    CHECK_STATUS(moka_caffemodel_read(path, &m, &err), MOKA_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "layer 'deep': blob 0 has 9 axes (moka supports at most 8)");

    /* Both V2 `layer` and V1 `layers`. */
    wb_str(&l, 1, "a");
    wb_msg(&net, 100, &l);
    wb_str(&l, 4, "b");
    wb_msg(&net, 2, &l);
    CHECK_EQ(spit(path, net.p, net.len), 0);
    free(net.p);
    net = (wbuf){0};
    CHECK_STATUS(moka_caffemodel_read(path, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "has both V2 'layer' and V1 'layers' entries");

    /* A V0 layer inside a V1 entry. */
    wbuf v0 = {0};
    wb_str(&v0, 1, "old_conv");
    wb_str(&v0, 2, "conv");
    wb_msg(&l, 1, &v0);
    wb_msg(&net, 2, &l);
    CHECK_EQ(spit(path, net.p, net.len), 0);
    free(net.p);
    net = (wbuf){0};
    CHECK_STATUS(moka_caffemodel_read(path, &m, &err), MOKA_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "('old_conv') uses Caffe's V0 layer format");

    /* An unknown V1 type number. */
    wb_str(&l, 4, "weird");
    wb_int(&l, 5, 77);
    wb_msg(&net, 2, &l);
    CHECK_EQ(spit(path, net.p, net.len), 0);
    free(net.p);
    CHECK_STATUS(moka_caffemodel_read(path, &m, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "layer 'weird' has unknown V1 type 77");
    return 0;
}

/* ---- crash safety ---------------------------------------------------------------------------- */

static int notify_fd = -1;

/* The child's SIGXFSZ handler: the writer has just hit the file-size limit, i.e. it is in the
 * middle of writing the file. Tell the parent, then wait to be killed. */
static void on_xfsz(int sig)
{
    (void)sig;
    const char c = 'x';
    if (write(notify_fd, &c, 1) < 0) _exit(5);
    for (;;) pause();
}

/* A model of about `mb` MiB in one layer. */
static moka_tensor *big_tensor(int mb, uint32_t seed)
{
    moka_tensor *t = new_tensor(MOKA_SHAPE((int64_t)mb, 256, 1024));
    fill(t, seed);
    return t;
}

static int old_file_is_intact(const char *path, const uint8_t *old, size_t old_len,
                              const model *src)
{
    moka_err err = {0};
    size_t len;
    uint8_t *now = slurp(path, &len);
    CHECK(now != NULL);
    CHECK_EQ(len, old_len);
    CHECK(memcmp(now, old, len) == 0);
    free(now);
    moka_caffemodel *m;
    CHECK_OK(moka_caffemodel_read(path, &m, &err));
    CHECK_EQ(moka_caffemodel_num_layers(m), NL);
    for (int j = 0; j < 2; j++) CHECK(same_bits(moka_caffemodel_layer(m, 0)->blobs[j],
                                                src->blobs[0][j]));
    moka_caffemodel_free(m);
    return 0;
}

static int writer_killed_mid_write_leaves_old_file(void)
{
    moka_err err = {0};
    model src;
    model_init(&src, true);
    const char *path = tmp_path("snap.caffemodel");
    CHECK_OK(moka_caffemodel_write(path, "old", src.layers, NL, &err));
    size_t old_len;
    uint8_t *old = slurp(path, &old_len);

    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    fflush(NULL);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* Child: a 16 MiB model, with the file size capped at 2 MiB so that the kernel stops the
         * writer part way with SIGXFSZ. */
        close(pfd[0]);
        notify_fd = pfd[1];
        moka_tensor *t = big_tensor(16, 5);
        moka_model_layer l = {"big", "InnerProduct", 1, &t};
        signal(SIGXFSZ, on_xfsz);
        struct rlimit rl = {2 << 20, 2 << 20};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(6);
        moka_caffemodel_write(path, "new", &l, 1, NULL);
        _exit(7); /* not reached: the parent kills us inside the write */
    }
    close(pfd[1]);
    /* Wait until the child is stopped inside the write, then kill it there. The kill comes
     * before any check, so that a failing check never leaves a child behind. */
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    const int ready = poll(&p, 1, 60000);
    char c = 0;
    const ssize_t got = ready == 1 ? read(pfd[0], &c, 1) : -1;
    close(pfd[0]);
    kill(pid, SIGKILL);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(got, 1);
    CHECK(c == 'x');
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* The partial file the child was writing is the temporary one, cut at the 2 MiB limit. */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
    struct stat st;
    CHECK_EQ(stat(tmp, &st), 0);
    CHECK_EQ(st.st_size, 2 << 20);

    if (old_file_is_intact(path, old, old_len, &src)) return 1;
    CHECK_EQ(count_files("snap.caffemodel"), 2); /* the old file and the dead writer's temp */
    CHECK_EQ(unlink(tmp), 0);
    free(old);
    model_deinit(&src);
    return 0;
}

/* Kills a writer at arbitrary moments: `path` always holds a whole file, old or new. */
static int writer_killed_at_random_times_never_leaves_a_partial_file(void)
{
    moka_err err = {0};
    model src;
    model_init(&src, true);
    const char *path = tmp_path("race.caffemodel");
    CHECK_OK(moka_caffemodel_write(path, "old", src.layers, NL, &err));
    size_t old_len;
    uint8_t *old = slurp(path, &old_len);
    moka_tensor *t = big_tensor(8, 9);
    int saw_old = 0, saw_new = 0;
    for (int rep = 0; rep < 6; rep++) {
        fflush(NULL);
        const pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            moka_model_layer l = {"big", "InnerProduct", 1, &t};
            _exit(moka_caffemodel_write(path, "new", &l, 1, NULL) == MOKA_OK ? 0 : 1);
        }
        struct timespec d = {0, rep ? (1L << rep) * 500000L : 0}; /* 0, 1, 2, 4, 8, 16 ms */
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        moka_caffemodel *m;
        CHECK_OK(moka_caffemodel_read(path, &m, &err));
        if (strcmp(moka_caffemodel_name(m), "new") == 0) {
            CHECK(same_bits(moka_caffemodel_layer(m, 0)->blobs[0], t));
            saw_new++;
            moka_caffemodel_free(m);
            /* Put the old file back for the next round. */
            CHECK_EQ(spit(path, old, old_len), 0);
        } else {
            moka_caffemodel_free(m);
            if (old_file_is_intact(path, old, old_len, &src)) return 1;
            saw_old++;
        }
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
        unlink(tmp);
    }
    fprintf(stderr, "killed before rename %d times, after %d times\n", saw_old, saw_new);
    CHECK(saw_old > 0); /* the first kill lands at once, long before 8 MiB are written */
    free_tensor(t);
    free(old);
    model_deinit(&src);
    return 0;
}

/* A failed write (the file-size limit standing in for a full disk) reports the error, removes
 * its temporary file and leaves the old file. */
static int failed_write_removes_temp_and_keeps_old_file(void)
{
    moka_err err = {0};
    model src;
    model_init(&src, true);
    const char *path = tmp_path("full_disk.caffemodel");
    CHECK_OK(moka_caffemodel_write(path, "old", src.layers, NL, &err));
    size_t old_len;
    uint8_t *old = slurp(path, &old_len);
    fflush(NULL);
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        moka_tensor *t = big_tensor(4, 5);
        moka_model_layer l = {"big", "InnerProduct", 1, &t};
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1 << 20, 1 << 20};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(6);
        moka_err e = {0};
        const moka_status st = moka_caffemodel_write(path, "new", &l, 1, &e);
        if (st != MOKA_ERR_IO) _exit(2);
        if (!strstr(e.msg, "cannot write '") || !strstr(e.msg, "File too large")) {
            fprintf(stderr, "unexpected message: %s\n", e.msg);
            _exit(3);
        }
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    if (old_file_is_intact(path, old, old_len, &src)) return 1;
    CHECK_EQ(count_files("full_disk.caffemodel"), 1); /* no temporary left behind */
    free(old);
    model_deinit(&src);
    return 0;
}

/* ---- solver state ---------------------------------------------------------------------------- */

static int solverstate_round_trip(void)
{
    moka_err err = {0};
    moka_tensor *h[3] = {new_tensor(MOKA_SHAPE(4, 3, 3, 3)), new_tensor(MOKA_SHAPE(4)),
                         new_tensor(MOKA_SHAPE(10, 36))};
    for (int i = 0; i < 3; i++) fill(h[i], (uint32_t)(100 + i));
    const char *path = tmp_path("s.solverstate");
    CHECK_OK(moka_solverstate_write(path, 12345, 777, "lenet_iter_12345.caffemodel", 2, h, 3, &err));
    CHECK_EQ(count_files("s.solverstate.tmp"), 0);

    moka_solverstate s;
    CHECK_OK(moka_solverstate_read(path, &s, &err));
    CHECK_EQ(s.iter, 12345);
    CHECK_EQ(s.current_step, 2);
    CHECK_EQ(s.data_position, 777);
    CHECK(s.learned_net && strcmp(s.learned_net, "lenet_iter_12345.caffemodel") == 0);
    CHECK_EQ(s.num_history, 3);
    for (int i = 0; i < 3; i++) CHECK(same_bits(&s.history[i], h[i]));

    moka_tensor *r[3] = {new_tensor(MOKA_SHAPE(4, 3, 3, 3)), new_tensor(MOKA_SHAPE(4)),
                         new_tensor(MOKA_SHAPE(10, 36))};
    CHECK_OK(moka_solverstate_copy_history(&s, r, 3, &err));
    for (int i = 0; i < 3; i++) CHECK(same_bits(r[i], h[i]));
    moka_solverstate_deinit(&s);
    moka_solverstate_deinit(&s); /* harmless on a zeroed struct */

    /* The independent reader agrees. */
    int rc;
    char *got = run_reader(path, "--solverstate", &rc);
    CHECK_EQ(rc, 0);
    char *want = dump_layers("x", &(moka_model_layer){"x", "x", 3, h}, 1);
    const char *hdr = "solverstate 12345 2 lenet_iter_12345.caffemodel\n";
    CHECK(strncmp(got, hdr, strlen(hdr)) == 0);
    /* Same blob lines: skip the "net"/"layer" header lines of the model dump. */
    const char *want_blobs = strstr(want, "blob ");
    CHECK(strcmp(got + strlen(hdr), want_blobs) == 0);
    free(got);
    free(want);

    /* No learned_net, no history. */
    CHECK_OK(moka_solverstate_write(path, 0, -1, NULL, 0, NULL, 0, &err));
    CHECK_OK(moka_solverstate_read(path, &s, &err));
    CHECK(s.learned_net == NULL);
    CHECK_EQ(s.num_history, 0);
    CHECK_EQ(s.iter, 0);
    CHECK_EQ(s.data_position, -1); /* a file without moka's field, like Caffe's */
    moka_solverstate_deinit(&s);
    for (int i = 0; i < 3; i++) free_tensor(h[i]), free_tensor(r[i]);
    return 0;
}

static int solverstate_errors(void)
{
    moka_err err = {0};
    moka_tensor *h[2] = {new_tensor(MOKA_SHAPE(20)), new_tensor(MOKA_SHAPE(2, 5))};
    fill(h[0], 1);
    fill(h[1], 2);
    const char *path = tmp_path("e.solverstate");
    CHECK_STATUS(moka_solverstate_write(path, (int64_t)1 << 31, -1, NULL, 0, h, 2, &err),
                 MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "iter 2147483648 or current_step 0 does not fit");
    CHECK_OK(moka_solverstate_write(path, 7, -1, "m.caffemodel", 0, h, 2, &err));

    moka_solverstate s;
    CHECK_OK(moka_solverstate_read(path, &s, &err));
    moka_tensor *one[1] = {h[0]};
    CHECK_STATUS(moka_solverstate_copy_history(&s, one, 1, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "solver state has 2 history blob(s) but the solver keeps 1");
    moka_tensor *wrong = new_tensor(MOKA_SHAPE(5, 2));
    moka_tensor *two[2] = {h[0], wrong};
    CHECK_STATUS(moka_solverstate_copy_history(&s, two, 2, &err), MOKA_ERR_SHAPE);
    CHECK_CONTAINS(err.msg, "history blob 1 has shape 2 5 (10) but the solver's is 5 2 (10)");
    CHECK(wrong->data[0] == 0.0f); /* nothing copied */
    moka_solverstate_deinit(&s);
    free_tensor(wrong);

    moka_solverstate junk = {.iter = 99};
    CHECK_STATUS(moka_solverstate_read(tmp_path("nope.solverstate"), &junk, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "nope.solverstate': No such file or directory");
    CHECK_EQ(junk.iter, 0);

    /* A .caffemodel is not a SolverState: its name string sits where iter's varint belongs. */
    model src;
    model_init(&src, true);
    const char *cm = tmp_path("not_state.caffemodel");
    CHECK_OK(moka_caffemodel_write(cm, "net", src.layers, NL, &err));
    CHECK_STATUS(moka_solverstate_read(cm, &s, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "not_state.caffemodel' is not a Caffe SolverState (protobuf decode "
                            "failed)");
    model_deinit(&src);

    /* Cut inside the second history blob. */
    size_t len;
    uint8_t *bytes = slurp(path, &len);
    const char *cut = tmp_path("cut.solverstate");
    CHECK_EQ(spit(cut, bytes, len - 10), 0);
    CHECK_STATUS(moka_solverstate_read(cut, &s, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "cut.solverstate' is truncated: field 'history' at byte ");
    free(bytes);

    /* A history blob whose data does not fill its shape; and a legacy 1x1x1x20 history blob
     * that restores into a (20) solver blob, as Caffe's legacy snapshots do. */
    wbuf st = {0}, blob = {0};
    wb_int(&st, 1, 50);
    wb_packed_floats(&blob, 5, h[1]->data, 9);
    wb_shape(&blob, (const int64_t[]){2, 5}, 2);
    wb_msg(&st, 3, &blob);
    CHECK_EQ(spit(cut, st.p, st.len), 0);
    free(st.p);
    st = (wbuf){0};
    CHECK_STATUS(moka_solverstate_read(cut, &s, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "cut.solverstate': history: blob 0 has shape 2 5 (10) but holds 9 "
                            "values");
    wb_int(&st, 1, 50);
    wb_legacy_blob(&st, 3, 1, 1, 1, 20, h[0]->data, 20, false);
    wb_int(&st, 4, 3);
    CHECK_EQ(spit(cut, st.p, st.len), 0);
    free(st.p);
    CHECK_OK(moka_solverstate_read(cut, &s, &err));
    CHECK_EQ(s.iter, 50);
    CHECK_EQ(s.current_step, 3);
    moka_tensor *flat = new_tensor(MOKA_SHAPE(20));
    CHECK_OK(moka_solverstate_copy_history(&s, &flat, 1, &err));
    CHECK(memcmp(flat->data, h[0]->data, 20 * sizeof(float)) == 0);
    moka_solverstate_deinit(&s);
    free_tensor(flat);
    free_tensor(h[0]);
    free_tensor(h[1]);
    return 0;
}

static int cleanup(void)
{
    remove_dir();
    return 0;
}

MOKA_TEST_MAIN(round_trip_is_bit_identical, bytes_match_canonical_encoding, python_reader_agrees,
               reads_hand_encoded_v1_file_with_legacy_blobs,
               copy_into_checks_counts_and_shapes_before_copying, write_rejects_bad_arguments,
               missing_empty_garbage_and_truncated_files_fail_clearly,
               bad_blobs_and_layouts_fail_clearly, writer_killed_mid_write_leaves_old_file,
               writer_killed_at_random_times_never_leaves_a_partial_file,
               failed_write_removes_temp_and_keeps_old_file, solverstate_round_trip,
               solverstate_errors, cleanup)
