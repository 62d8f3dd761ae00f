/* src/io/tfevents.c -- TensorBoard event files: TFRecord framing around serialized
 * tensorflow.Event messages (protobuf-c code generated from proto/tensorflow/).
 *
 *   record = uint64 LE n | uint32 LE masked_crc32c(n's 8 bytes) | n bytes | uint32 LE
 *            masked_crc32c(the n bytes)
 *   write:  Event -> protobuf_c pack into the writer's buffer after a 12-byte header -> CRCs ->
 *           one fwrite of the whole record on an unbuffered stream (one write(2)) -> fflush
 *   read:   header -> length CRC -> (partial tail? stop) -> data CRC -> Event unpack -> sink
 *
 * Histograms follow tensorflow/core/lib/histogram/histogram.cc: default bucket limits built by
 * repeated multiplication by 1.1 from 1e-12 while below 1e20, mirrored, with 0 and +-DBL_MAX;
 * Add() puts v into the bucket of the first limit > v (std::upper_bound); EncodeToProto with
 * preserve_zero_buckets = false collapses each run of empty buckets into one entry.
 */
#include "io/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/crc32c.h"
#include "io/png.h"
#include "tensorflow/event.pb-c.h"
#include "tensorflow/graph.pb-c.h"

/* TensorFlow's GraphDef producer version of its 1.x era; TensorBoard only checks it is there. */
#define GRAPH_PRODUCER       22
#define RECORD_HEADER_NBYTES 12
#define RECORD_FOOTER_NBYTES 4

struct moka_tfevents {
    FILE *f;
    char *path;
    double *limits; /* TensorFlow's default bucket limits, ascending */
    double *counts; /* one per limit, scratch for moka_tfevents_histogram */
    int nlimits;
    uint8_t *buf; /* record staging buffer: header, Event bytes, footer */
    size_t cap;
};

/* ---- small helpers ------------------------------------------------------------------------- */

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static double wall_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mkdir -p: creates every missing directory of `path` (a writable copy is modified in place and
 * restored). */
static moka_status make_dirs(char *path, moka_err *err)
{
    const size_t len = strlen(path);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        const char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            const int e = errno;
            path[i] = saved;
            return moka_errf(err, MOKA_ERR_IO, "tfevents: cannot create directory '%.*s': %s",
                             (int)i, path, strerror(e));
        }
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            path[i] = saved;
            return moka_errf(err, MOKA_ERR_IO, "tfevents: '%.*s' exists and is not a directory",
                             (int)i, path);
        }
        path[i] = saved;
    }
    return MOKA_OK;
}

/* A run name may nest ("a/b") but never climbs out of log_dir. */
static bool run_name_ok(const char *run)
{
    for (const char *p = run; *p;) {
        const char *slash = strchr(p, '/');
        const size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        p += n;
        if (*p == '/') p++;
    }
    return true;
}

/* ---- writer -------------------------------------------------------------------------------- */

/* Frames the packed event as one record and writes it with a single fwrite + fflush. */
static moka_status write_event(moka_tfevents *w, const Tensorflow__Event *ev, moka_err *err)
{
    const size_t n = tensorflow__event__get_packed_size(ev);
    const size_t need = RECORD_HEADER_NBYTES + n + RECORD_FOOTER_NBYTES;
    if (need > w->cap) {
        uint8_t *b = realloc(w->buf, need);
        if (!b)
            return moka_errf(err, MOKA_ERR_NOMEM, "tfevents: out of memory for a %zu-byte record",
                             n);
        w->buf = b;
        w->cap = need;
    }
    uint8_t *p = w->buf;
    put_le64(p, (uint64_t)n);
    put_le32(p + 8, moka_crc32c_mask(moka_crc32c(p, 8)));
    tensorflow__event__pack(ev, p + RECORD_HEADER_NBYTES);
    put_le32(p + RECORD_HEADER_NBYTES + n,
             moka_crc32c_mask(moka_crc32c(p + RECORD_HEADER_NBYTES, n)));
    if (fwrite(p, 1, need, w->f) != need || fflush(w->f) != 0)
        return moka_errf(err, MOKA_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    return MOKA_OK;
}

static void init_event(Tensorflow__Event *ev, int64_t step)
{
    tensorflow__event__init(ev);
    ev->wall_time = wall_time_now();
    ev->step = step;
}

/* Builds TensorFlow's default bucket limits (histogram.cc, InitDefaultBucketsInner). */
static moka_status build_limits(moka_tfevents *w, moka_err *err)
{
    int npos = 0;
    for (double v = 1e-12; v < 1e20; v *= 1.1) npos++;
    w->nlimits = 2 * (npos + 1) + 1;
    w->limits = malloc(sizeof(double) * (size_t)w->nlimits);
    w->counts = malloc(sizeof(double) * (size_t)w->nlimits);
    if (!w->limits || !w->counts)
        return moka_errf(err, MOKA_ERR_NOMEM, "tfevents: out of memory for histogram buckets");
    const int zero = npos + 1; /* index of the 0 limit */
    w->limits[zero] = 0.0;
    double v = 1e-12;
    for (int k = 0; k < npos; k++, v *= 1.1) {
        w->limits[zero + 1 + k] = v;
        w->limits[zero - 1 - k] = -v;
    }
    w->limits[w->nlimits - 1] = DBL_MAX;
    w->limits[0] = -DBL_MAX;
    return MOKA_OK;
}

moka_status moka_tfevents_open(const char *log_dir, const char *run, moka_tfevents **out,
                               moka_err *err)
{
    if (!out) return moka_errf(err, MOKA_ERR_INVALID_ARG, "tfevents: NULL output pointer");
    *out = NULL;
    if (!log_dir || !log_dir[0])
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "tfevents: empty log directory");
    if (!run) run = "";
    if (!run_name_ok(run))
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "tfevents: run name '%s' must not contain a '..' component", run);

    moka_tfevents *w = calloc(1, sizeof *w);
    if (!w) return moka_errf(err, MOKA_ERR_NOMEM, "tfevents: out of memory");
    moka_status st = build_limits(w, err);
    if (st != MOKA_OK) goto fail;

    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *h = host; *h; h++)
        if (*h == '/') *h = '_';

    const size_t cap = strlen(log_dir) + strlen(run) + strlen(host) + 64;
    w->path = malloc(cap);
    if (!w->path) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "tfevents: out of memory");
        goto fail;
    }
    snprintf(w->path, cap, "%s%s%s", log_dir, run[0] ? "/" : "", run);
    st = make_dirs(w->path, err);
    if (st != MOKA_OK) goto fail;

    const size_t dir_len = strlen(w->path);
    const long long secs = (long long)time(NULL);
    int fd = -1;
    for (int k = 0; k < 1000 && fd < 0; k++) {
        if (k == 0)
            snprintf(w->path + dir_len, cap - dir_len, "/events.out.tfevents.%010lld.%s", secs,
                     host);
        else
            snprintf(w->path + dir_len, cap - dir_len, "/events.out.tfevents.%010lld.%s.%d", secs,
                     host, k);
        /* O_EXCL: an existing file (a second writer in the same second) is never reused. */
        fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) {
            st = moka_errf(err, MOKA_ERR_IO, "%s: cannot create: %s", w->path, strerror(errno));
            goto fail;
        }
    }
    if (fd < 0) {
        st =
            moka_errf(err, MOKA_ERR_IO, "%s: 1000 event files of this name exist already", w->path);
        goto fail;
    }
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        close(fd);
        st = moka_errf(err, MOKA_ERR_IO, "%s: fdopen: %s", w->path, strerror(errno));
        goto fail;
    }
    /* Unbuffered: each record's fwrite becomes one write(2), so a reader of the growing file sees
     * whole records more often than not, and a crash cannot leave a record half in a buffer. */
    setvbuf(w->f, NULL, _IONBF, 0);

    Tensorflow__Event ev;
    init_event(&ev, 0);
    ev.what_case = TENSORFLOW__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    st = write_event(w, &ev, err);
    if (st != MOKA_OK) goto fail;
    *out = w;
    return MOKA_OK;

fail:
    moka_tfevents_close(w);
    return st;
}

const char *moka_tfevents_path(const moka_tfevents *w) { return w ? w->path : NULL; }

int moka_tfevents_bucket_limits(const moka_tfevents *w, const double **limits)
{
    *limits = w->limits;
    return w->nlimits;
}

void moka_tfevents_close(moka_tfevents *w)
{
    if (!w) return;
    if (w->f) fclose(w->f);
    free(w->buf);
    free(w->limits);
    free(w->counts);
    free(w->path);
    free(w);
}

/* Writes one Event holding a Summary with the single value v. */
static moka_status write_value(moka_tfevents *w, int64_t step, Tensorflow__Summary__Value *v,
                               moka_err *err)
{
    Tensorflow__Summary__Value *values[1] = {v};
    Tensorflow__Summary sum;
    tensorflow__summary__init(&sum);
    sum.n_value = 1;
    sum.value = values;
    Tensorflow__Event ev;
    init_event(&ev, step);
    ev.what_case = TENSORFLOW__EVENT__WHAT_SUMMARY;
    ev.summary = &sum;
    return write_event(w, &ev, err);
}

static moka_status check_writer(const moka_tfevents *w, const char *tag, const char *what,
                                moka_err *err)
{
    if (!w) return moka_errf(err, MOKA_ERR_INVALID_ARG, "tfevents: %s: NULL writer", what);
    if (!tag || !tag[0])
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "%s: %s with an empty tag", w->path, what);
    return MOKA_OK;
}

moka_status moka_tfevents_scalar(moka_tfevents *w, int64_t step, const char *tag, double value,
                                 moka_err *err)
{
    MOKA_TRY(check_writer(w, tag, "scalar", err));
    Tensorflow__Summary__Value v;
    tensorflow__summary__value__init(&v);
    v.tag = (char *)tag;
    v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = (float)value;
    return write_value(w, step, &v, err);
}

moka_status moka_tfevents_histogram(moka_tfevents *w, int64_t step, const char *tag,
                                    const float *values, int64_t n, moka_err *err)
{
    MOKA_TRY(check_writer(w, tag, "histogram", err));
    if (n < 0 || (n > 0 && !values))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "%s: histogram '%s': %lld values at %p",
                         w->path, tag, (long long)n, (const void *)values);
    const int nl = w->nlimits;
    const double *lim = w->limits;
    double *cnt = w->counts;
    memset(cnt, 0, sizeof(double) * (size_t)nl);
    /* Large blobs (a 400k-weight layer) are counted by the OpenMP team, each thread over one
     * contiguous chunk with counts of its own; the partial results are combined in thread
     * order, so the same thread count always gives the same sums. */
    const int nt = n >= 65536 ? omp_get_max_threads() : 1;
    const int zero = (nl - 3) / 2 + 1; /* index of the 0 limit (see build_limits) */
    const double inv_log11 = 1.0 / log(1.1);
    double *part = calloc((size_t)nt * ((size_t)nl + 5), sizeof(double));
    if (!part)
        return moka_errf(err, MOKA_ERR_NOMEM, "%s: histogram '%s': out of memory", w->path, tag);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        double *pc = part + (size_t)t * ((size_t)nl + 5), *stat = pc + nl;
        const int64_t begin = n * t / team, end = n * (t + 1) / team;
        double lmn = DBL_MAX, lmx = -DBL_MAX, lnum = 0, lsum = 0, lsq = 0;
        for (int64_t i = begin; i < end; i++) {
            const double v = values[i];
            if (!isfinite(v)) continue;
            /* upper_bound: the first limit > v (a finite float is below DBL_MAX, so it exists).
             * The limits are 0 and +-1e-12 * 1.1^k, so a logarithm lands within a step or two
             * of the answer; the two loops then settle it exactly against the table. */
            const double a = fabs(v);
            int lo;
            if (a < 1e-12) {
                lo = v < 0 ? zero : zero + 1;
            } else {
                int k = (int)(log(a * 1e12) * inv_log11);
                k = k < 0 ? 0 : k > nl ? nl : k;
                lo = v > 0 ? zero + 2 + k : zero - 1 - k;
                lo = lo < 0 ? 0 : lo > nl - 1 ? nl - 1 : lo;
            }
            while (lim[lo] <= v) lo++;
            while (lo > 0 && lim[lo - 1] > v) lo--;
            pc[lo] += 1.0;
            lmn = v < lmn ? v : lmn;
            lmx = v > lmx ? v : lmx;
            lnum += 1.0;
            lsum += v;
            lsq += v * v;
        }
        stat[0] = lmn;
        stat[1] = lmx;
        stat[2] = lnum;
        stat[3] = lsum;
        stat[4] = lsq;
    }
    double mn = DBL_MAX, mx = -DBL_MAX, num = 0, sum = 0, sum_sq = 0;
    for (int t = 0; t < nt; t++) {
        const double *pc = part + (size_t)t * ((size_t)nl + 5), *stat = pc + nl;
        for (int b = 0; b < nl; b++) cnt[b] += pc[b];
        if (stat[2] == 0) continue;
        mn = stat[0] < mn ? stat[0] : mn;
        mx = stat[1] > mx ? stat[1] : mx;
        num += stat[2];
        sum += stat[3];
        sum_sq += stat[4];
    }
    free(part);

    /* EncodeToProto(preserve_zero_buckets = false): runs of empty buckets become one entry with
     * the last limit of the run. At most nl entries. */
    double *out_lim = malloc(sizeof(double) * 2 * (size_t)nl);
    if (!out_lim)
        return moka_errf(err, MOKA_ERR_NOMEM, "%s: histogram '%s': out of memory", w->path, tag);
    double *out_cnt = out_lim + nl;
    size_t nb = 0;
    for (int i = 0; i < nl;) {
        double end = lim[i], count = cnt[i];
        i++;
        if (count <= 0.0) {
            while (i < nl && cnt[i] <= 0.0) {
                end = lim[i];
                count = cnt[i];
                i++;
            }
        }
        out_lim[nb] = end;
        out_cnt[nb] = count;
        nb++;
    }

    Tensorflow__HistogramProto h;
    tensorflow__histogram_proto__init(&h);
    h.min = mn;
    h.max = mx;
    h.num = num;
    h.sum = sum;
    h.sum_squares = sum_sq;
    h.n_bucket_limit = h.n_bucket = nb;
    h.bucket_limit = out_lim;
    h.bucket = out_cnt;
    Tensorflow__Summary__Value v;
    tensorflow__summary__value__init(&v);
    v.tag = (char *)tag;
    v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_HISTO;
    v.histo = &h;
    const moka_status st = write_value(w, step, &v, err);
    free(out_lim);
    return st;
}

moka_status moka_tfevents_image(moka_tfevents *w, int64_t step, const char *tag,
                                const float *pixels, int c, int h, int wdt, moka_err *err)
{
    MOKA_TRY(check_writer(w, tag, "image", err));
    if (!pixels || (c != 1 && c != 3) || h < 1 || h > 65535 || wdt < 1 || wdt > 65535)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "%s: image '%s': want (C, H, W) pixels with C 1 or 3 and sides in "
                         "1..65535, got (%d, %d, %d)%s",
                         w->path, tag, c, h, wdt, pixels ? "" : " and NULL pixels");
    const size_t plane = (size_t)h * (size_t)wdt;
    uint8_t *hwc = malloc(plane * (size_t)c);
    if (!hwc) return moka_errf(err, MOKA_ERR_NOMEM, "%s: image '%s': out of memory", w->path, tag);
    for (int ch = 0; ch < c; ch++)
        for (size_t i = 0; i < plane; i++) {
            float v = pixels[(size_t)ch * plane + i];
            if (!(v > 0.0f)) v = 0.0f; /* also NaN */
            if (v > 1.0f) v = 1.0f;
            hwc[i * (size_t)c + (size_t)ch] = (uint8_t)floorf(v * 255.0f + 0.5f);
        }
    uint8_t *png = NULL;
    size_t png_nbytes = 0;
    moka_status st = moka_png_encode(hwc, c, h, wdt, &png, &png_nbytes, err);
    free(hwc);
    if (st != MOKA_OK) {
        moka_err_prefix(err, "%s: image '%s'", w->path, tag);
        return st;
    }
    Tensorflow__Summary__Image img;
    tensorflow__summary__image__init(&img);
    img.height = h;
    img.width = wdt;
    img.colorspace = c;
    img.encoded_image_string.data = png;
    img.encoded_image_string.len = png_nbytes;
    Tensorflow__Summary__Value v;
    tensorflow__summary__value__init(&v);
    v.tag = (char *)tag;
    v.value_case = TENSORFLOW__SUMMARY__VALUE__VALUE_IMAGE;
    v.image = &img;
    st = write_value(w, step, &v, err);
    free(png);
    return st;
}

moka_status moka_tfevents_graph(moka_tfevents *w, const moka_graph_node *nodes, int n,
                                moka_err *err)
{
    if (!w) return moka_errf(err, MOKA_ERR_INVALID_ARG, "tfevents: graph: NULL writer");
    if (n < 0 || (n > 0 && !nodes))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "%s: graph: %d nodes at %p", w->path, n,
                         (const void *)nodes);
    size_t nattrs = 0;
    for (int i = 0; i < n; i++) {
        const moka_graph_node *g = &nodes[i];
        if (!g->name || !g->name[0] || !g->op || !g->op[0])
            return moka_errf(err, MOKA_ERR_INVALID_ARG, "%s: graph: node %d has no name or op",
                             w->path, i);
        if (g->num_inputs < 0 || g->num_attrs < 0 || (g->num_inputs > 0 && !g->inputs) ||
            (g->num_attrs > 0 && (!g->attr_keys || !g->attr_values)))
            return moka_errf(err, MOKA_ERR_INVALID_ARG,
                             "%s: graph: node '%s': bad input or attr arrays", w->path, g->name);
        for (int j = 0; j < g->num_inputs; j++)
            if (!g->inputs[j])
                return moka_errf(err, MOKA_ERR_INVALID_ARG, "%s: graph: node '%s': input %d NULL",
                                 w->path, g->name, j);
        for (int j = 0; j < g->num_attrs; j++)
            if (!g->attr_keys[j])
                return moka_errf(err, MOKA_ERR_INVALID_ARG,
                                 "%s: graph: node '%s': attr key %d NULL", w->path, g->name, j);
        nattrs += (size_t)g->num_attrs;
    }

    /* All messages live in a few arrays that point at the caller's strings. */
    Tensorflow__NodeDef *defs = calloc((size_t)n + 1, sizeof *defs);
    Tensorflow__NodeDef **def_ptrs = calloc((size_t)n + 1, sizeof *def_ptrs);
    Tensorflow__NodeDef__AttrEntry *entries = calloc(nattrs + 1, sizeof *entries);
    Tensorflow__NodeDef__AttrEntry **entry_ptrs = calloc(nattrs + 1, sizeof *entry_ptrs);
    Tensorflow__AttrValue *vals = calloc(nattrs + 1, sizeof *vals);
    moka_status st = MOKA_OK;
    if (!defs || !def_ptrs || !entries || !entry_ptrs || !vals) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "%s: graph: out of memory", w->path);
        goto done;
    }
    size_t a = 0;
    for (int i = 0; i < n; i++) {
        const moka_graph_node *g = &nodes[i];
        Tensorflow__NodeDef *d = &defs[i];
        tensorflow__node_def__init(d);
        d->name = (char *)g->name;
        d->op = (char *)g->op;
        d->n_input = (size_t)g->num_inputs;
        d->input = (char **)g->inputs;
        d->n_attr = (size_t)g->num_attrs;
        d->attr = entry_ptrs + a;
        for (int j = 0; j < g->num_attrs; j++, a++) {
            tensorflow__attr_value__init(&vals[a]);
            vals[a].value_case = TENSORFLOW__ATTR_VALUE__VALUE_I;
            vals[a].i = g->attr_values[j];
            tensorflow__node_def__attr_entry__init(&entries[a]);
            entries[a].key = (char *)g->attr_keys[j];
            entries[a].value = &vals[a];
            entry_ptrs[a] = &entries[a];
        }
        def_ptrs[i] = d;
    }
    Tensorflow__VersionDef ver;
    tensorflow__version_def__init(&ver);
    ver.producer = GRAPH_PRODUCER;
    Tensorflow__GraphDef gd;
    tensorflow__graph_def__init(&gd);
    gd.n_node = (size_t)n;
    gd.node = def_ptrs;
    gd.versions = &ver;

    const size_t gbytes = tensorflow__graph_def__get_packed_size(&gd);
    uint8_t *gbuf = malloc(gbytes ? gbytes : 1);
    if (!gbuf) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "%s: graph: out of memory", w->path);
        goto done;
    }
    tensorflow__graph_def__pack(&gd, gbuf);
    Tensorflow__Event ev;
    init_event(&ev, 0);
    ev.what_case = TENSORFLOW__EVENT__WHAT_GRAPH_DEF;
    ev.graph_def.data = gbuf;
    ev.graph_def.len = gbytes;
    st = write_event(w, &ev, err);
    free(gbuf);
done:
    free(vals);
    free(entry_ptrs);
    free(entries);
    free(def_ptrs);
    free(defs);
    return st;
}

moka_status moka_tfevents_session_start(moka_tfevents *w, int64_t step, moka_err *err)
{
    if (!w) return moka_errf(err, MOKA_ERR_INVALID_ARG, "tfevents: session_start: NULL writer");
    Tensorflow__SessionLog log;
    tensorflow__session_log__init(&log);
    log.status = TENSORFLOW__SESSION_LOG__SESSION_STATUS__START;
    Tensorflow__Event ev;
    init_event(&ev, step);
    ev.what_case = TENSORFLOW__EVENT__WHAT_SESSION_LOG;
    ev.session_log = &log;
    return write_event(w, &ev, err);
}

/* ---- reader -------------------------------------------------------------------------------- */

/* A tensor holding exactly one float or double (TensorFlow 2's scalar summaries). */
static bool tensor_scalar(const Tensorflow__TensorProto *t, double *out)
{
    if (!t) return false;
    if (t->tensor_shape)
        for (size_t i = 0; i < t->tensor_shape->n_dim; i++)
            if (!t->tensor_shape->dim[i] || t->tensor_shape->dim[i]->size != 1) return false;
    if (t->dtype == TENSORFLOW__DATA_TYPE__DT_FLOAT) {
        if (t->n_float_val == 1 && t->tensor_content.len == 0) {
            *out = t->float_val[0];
            return true;
        }
        if (t->n_float_val == 0 && t->tensor_content.len == 4) {
            const uint32_t bits = get_le32(t->tensor_content.data);
            float f;
            memcpy(&f, &bits, 4);
            *out = f;
            return true;
        }
    } else if (t->dtype == TENSORFLOW__DATA_TYPE__DT_DOUBLE) {
        if (t->n_double_val == 1 && t->tensor_content.len == 0) {
            *out = t->double_val[0];
            return true;
        }
        if (t->n_double_val == 0 && t->tensor_content.len == 8) {
            const uint64_t bits = get_le64(t->tensor_content.data);
            double d;
            memcpy(&d, &bits, 8);
            *out = d;
            return true;
        }
    }
    return false;
}

static moka_status deliver_summary(const char *path, int64_t at, const Tensorflow__Event *ev,
                                   const moka_tfevents_sink *s, moka_err *err)
{
    const Tensorflow__Summary *sum = ev->summary;
    for (size_t i = 0; sum && i < sum->n_value; i++) {
        const Tensorflow__Summary__Value *v = sum->value[i];
        const char *tag = v->tag ? v->tag : "";
        double x;
        switch (v->value_case) {
        case TENSORFLOW__SUMMARY__VALUE__VALUE_SIMPLE_VALUE:
            if (s->scalar) s->scalar(s->user, tag, ev->step, ev->wall_time, v->simple_value);
            break;
        case TENSORFLOW__SUMMARY__VALUE__VALUE_TENSOR:
            if (s->scalar && tensor_scalar(v->tensor, &x))
                s->scalar(s->user, tag, ev->step, ev->wall_time, x);
            break;
        case TENSORFLOW__SUMMARY__VALUE__VALUE_HISTO: {
            const Tensorflow__HistogramProto *h = v->histo;
            if (!h) break;
            if (h->n_bucket != h->n_bucket_limit || h->n_bucket > (size_t)INT32_MAX)
                return moka_errf(err, MOKA_ERR_IO,
                                 "%s: record at byte %lld: histogram '%s' has %zu bucket limits "
                                 "but %zu buckets",
                                 path, (long long)at, tag, h->n_bucket_limit, h->n_bucket);
            if (s->histogram)
                s->histogram(s->user, tag, ev->step, ev->wall_time, h->min, h->max, h->num, h->sum,
                             h->sum_squares, (int)h->n_bucket, h->bucket_limit, h->bucket);
            break;
        }
        case TENSORFLOW__SUMMARY__VALUE__VALUE_IMAGE:
            if (s->image && v->image)
                s->image(s->user, tag, ev->step, v->image->height, v->image->width,
                         v->image->encoded_image_string.data,
                         (int64_t)v->image->encoded_image_string.len);
            break;
        default: break; /* audio, old-style histograms, empty values: not shown by moka */
        }
    }
    return MOKA_OK;
}

static moka_status deliver_graph(const char *path, int64_t at, const Tensorflow__Event *ev,
                                 const moka_tfevents_sink *s, moka_err *err)
{
    Tensorflow__GraphDef *gd =
        tensorflow__graph_def__unpack(NULL, ev->graph_def.len, ev->graph_def.data);
    if (!gd)
        return moka_errf(err, MOKA_ERR_IO, "%s: record at byte %lld: graph_def is not a GraphDef",
                         path, (long long)at);
    size_t nattrs = 0;
    for (size_t i = 0; i < gd->n_node; i++) nattrs += gd->node[i]->n_attr;
    moka_status st = MOKA_OK;
    moka_graph_node *nodes = calloc(gd->n_node + 1, sizeof *nodes);
    const char **keys = calloc(nattrs + 1, sizeof *keys);
    int64_t *vals = calloc(nattrs + 1, sizeof *vals);
    if (!nodes || !keys || !vals || gd->n_node > (size_t)INT32_MAX) {
        st = moka_errf(err, MOKA_ERR_NOMEM,
                       "%s: record at byte %lld: out of memory for a graph "
                       "of %zu nodes",
                       path, (long long)at, gd->n_node);
        goto done;
    }
    size_t a = 0;
    for (size_t i = 0; i < gd->n_node; i++) {
        const Tensorflow__NodeDef *d = gd->node[i];
        moka_graph_node *g = &nodes[i];
        g->name = d->name ? d->name : "";
        g->op = d->op ? d->op : "";
        g->num_inputs = d->n_input > (size_t)INT32_MAX ? INT32_MAX : (int)d->n_input;
        g->inputs = (const char *const *)d->input;
        g->attr_keys = keys + a;
        g->attr_values = vals + a;
        for (size_t j = 0; j < d->n_attr; j++) {
            const Tensorflow__NodeDef__AttrEntry *e = d->attr[j];
            if (!e->value || e->value->value_case != TENSORFLOW__ATTR_VALUE__VALUE_I) continue;
            keys[a] = e->key ? e->key : "";
            vals[a] = e->value->i;
            a++;
            g->num_attrs++;
        }
    }
    if (s->graph) s->graph(s->user, nodes, (int)gd->n_node);
done:
    free(vals);
    free(keys);
    free(nodes);
    tensorflow__graph_def__free_unpacked(gd, NULL);
    return st;
}

moka_status moka_tfevents_read(const char *path, int64_t *offset, const moka_tfevents_sink *sink,
                               moka_err *err)
{
    if (!path || !offset)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "tfevents: read: NULL path or offset");
    static const moka_tfevents_sink no_sink = {0};
    const moka_tfevents_sink *s = sink ? sink : &no_sink;
    FILE *f = fopen(path, "rb");
    if (!f) return moka_errf(err, MOKA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st_;
    if (fstat(fileno(f), &st_) != 0) {
        const int e = errno;
        fclose(f);
        return moka_errf(err, MOKA_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    const int64_t size = (int64_t)st_.st_size;
    int64_t off = *offset;
    if (off < 0 || off > size) {
        fclose(f);
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "%s: offset %lld outside the file (%lld bytes)",
                         path, (long long)off, (long long)size);
    }
    if (fseeko(f, (off_t)off, SEEK_SET) != 0) {
        const int e = errno;
        fclose(f);
        return moka_errf(err, MOKA_ERR_IO, "%s: cannot seek to %lld: %s", path, (long long)off,
                         strerror(e));
    }
    moka_status st = MOKA_OK;
    uint8_t *data = NULL;
    size_t cap = 0;
    for (;;) {
        /* Everything below that runs short is a record still being written: stop before it. */
        uint8_t hdr[RECORD_HEADER_NBYTES];
        if (size - off < RECORD_HEADER_NBYTES + RECORD_FOOTER_NBYTES) break;
        if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr) break;
        const uint64_t len = get_le64(hdr);
        const uint32_t want_hdr = get_le32(hdr + 8);
        const uint32_t got_hdr = moka_crc32c_mask(moka_crc32c(hdr, 8));
        if (want_hdr != got_hdr) {
            st = moka_errf(err, MOKA_ERR_IO,
                           "%s: record at byte %lld: length CRC mismatch (stored 0x%08x, computed "
                           "0x%08x)",
                           path, (long long)off, want_hdr, got_hdr);
            break;
        }
        if (len > (uint64_t)(size - off - RECORD_HEADER_NBYTES - RECORD_FOOTER_NBYTES)) break;
        const size_t need = (size_t)len + RECORD_FOOTER_NBYTES;
        if (need > cap) {
            uint8_t *d = realloc(data, need);
            if (!d) {
                st = moka_errf(err, MOKA_ERR_NOMEM,
                               "%s: record at byte %lld: out of memory for "
                               "%llu bytes",
                               path, (long long)off, (unsigned long long)len);
                break;
            }
            data = d;
            cap = need;
        }
        if (fread(data, 1, need, f) != need) break;
        const uint32_t want = get_le32(data + len), got = moka_crc32c_mask(moka_crc32c(data, len));
        if (want != got) {
            st = moka_errf(err, MOKA_ERR_IO,
                           "%s: record at byte %lld: data CRC mismatch (stored 0x%08x, computed "
                           "0x%08x)",
                           path, (long long)off, want, got);
            break;
        }
        Tensorflow__Event *ev = tensorflow__event__unpack(NULL, (size_t)len, data);
        if (!ev) {
            st = moka_errf(err, MOKA_ERR_IO, "%s: record at byte %lld: not a tensorflow.Event",
                           path, (long long)off);
            break;
        }
        if (ev->what_case == TENSORFLOW__EVENT__WHAT_SUMMARY)
            st = deliver_summary(path, off, ev, s, err);
        else if (ev->what_case == TENSORFLOW__EVENT__WHAT_GRAPH_DEF)
            st = deliver_graph(path, off, ev, s, err);
        tensorflow__event__free_unpacked(ev, NULL);
        if (st != MOKA_OK) break;
        off += RECORD_HEADER_NBYTES + (int64_t)len + RECORD_FOOTER_NBYTES;
        *offset = off;
    }
    free(data);
    fclose(f);
    return st;
}
