/* src/board/board.c -- `moka board`: serves a live dashboard over TensorBoard event files.
 *
 * Layout (see board.h for the endpoints):
 *   request -> check method (GET/HEAD) -> check token or Host -> route
 *   /api/... -> refresh the run(s) from disk (incremental) -> JSON built in a growable buffer
 *
 * libmicrohttpd runs one internal polling thread (select/poll/epoll, whichever it picks) and no
 * thread per connection, so every handler call runs on that one thread, one at a time: the cache
 * of runs below is touched by nothing else and needs no lock. The calling thread only waits for
 * the stop flag.
 *
 * The cache: per run, the event files seen so far with the byte offset read up to, and the data
 * decoded from them (scalars and histograms per tag, kept sorted by step; the latest graph; the
 * last IMAGES_KEPT images per tag). Each API request re-lists the directory and reads what was
 * appended since the last request, so a training run writing into LOGDIR shows up live.
 */
#include "board/board.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/tfevents.h"
#include "moka/log.h"

#define IMAGES_KEPT  16
#define TOKEN_COOKIE "moka_board_token"

/* ---- a growable byte buffer; `oom` sticks so callers check once at the end ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) MOKA_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    free(big);
}

/* JSON has no NaN or infinity, so those become null. Scalars are float32 on the wire, so a value
 * that is exactly a float prints as the shortest decimal that reads back to that float (0.1, not
 * 0.10000000149011612); any other double (wall times) as the shortest of %.15g / %.17g that
 * reads back to the same double. */
static void sb_num(sbuf *b, double v)
{
    if (!isfinite(v)) {
        sb_str(b, "null");
        return;
    }
    char tmp[40];
    if ((double)(float)v == v) {
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, v);
            if (strtof(tmp, NULL) == (float)v) break;
        }
    } else {
        snprintf(tmp, sizeof tmp, "%.15g", v);
        if (strtod(tmp, NULL) != v) snprintf(tmp, sizeof tmp, "%.17g", v);
    }
    sb_str(b, tmp);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if it is not valid UTF-8. */
static int utf8_len(const unsigned char *s, size_t n)
{
    int len;
    unsigned min;
    unsigned cp;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, min = 0x80, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, min = 0x800, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A JSON string. Tags and node names come from files, so anything may be in them: quotes,
 * control characters and invalid UTF-8 (replaced by U+FFFD) must not break the document. The
 * characters <, > and & are escaped too, so no value can close a <script> if embedded in HTML. */
static void sb_jstr(sbuf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    const size_t n = strlen(s);
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        const unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            const char esc[2] = {'\\', (char)c};
            sb_put(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) {
            sb_printf(b, "\\u%04x", c);
            i++;
        } else {
            const int len = utf8_len(u + i, n - i);
            if (len == 0) {
                sb_str(b, "\\ufffd");
                i++;
            } else {
                sb_put(b, s + i, (size_t)len);
                i += (size_t)len;
            }
        }
    }
    sb_put(b, "\"", 1);
}

/* ---- the cache of runs ---- */

typedef struct scalar_pt {
    int64_t step;
    double wall_time, value;
} scalar_pt;

typedef struct scalar_series {
    char *tag;
    scalar_pt *pts;
    int64_t n, cap;
} scalar_series;

typedef struct hist_pt {
    int64_t step;
    double wall_time, min, max, num, sum, sum_squares;
    int nbuckets;
    double *limit_and_count; /* nbuckets limits, then nbuckets counts */
} hist_pt;

typedef struct hist_series {
    char *tag;
    hist_pt *pts;
    int64_t n, cap;
} hist_series;

typedef struct image_pt {
    int64_t step, index;
    int height, width;
    unsigned char *png;
    int64_t png_nbytes;
} image_pt;

typedef struct image_series {
    char *tag;
    image_pt kept[IMAGES_KEPT]; /* a ring: image number i lives in kept[i % IMAGES_KEPT] */
    int64_t total;              /* images seen; numbers total - IMAGES_KEPT .. total - 1 kept */
} image_series;

typedef struct graph_node_copy {
    char *name, *op;
    int num_inputs, num_attrs;
    char **inputs, **attr_keys;
    int64_t *attr_values;
} graph_node_copy;

typedef struct event_file {
    char *name;     /* the file name inside the run directory */
    int64_t offset; /* read up to here */
    bool broken;    /* a CRC mismatch was found: read no further */
} event_file;

typedef struct run {
    char *name; /* "." for LOGDIR itself */
    event_file *files;
    int nfiles, cap_files;
    scalar_series *scalars;
    int nscalars, cap_scalars;
    hist_series *hists;
    int nhists, cap_hists;
    image_series *images;
    int nimages, cap_images;
    graph_node_copy *graph;
    int ngraph;
    bool has_graph;
    bool oom;  /* a sink callback could not allocate */
    bool seen; /* still listed by the latest scan of LOGDIR */
} run;

typedef struct board {
    const char *logdir;
    run **runs; /* sorted by name */
    int nruns, cap_runs;
    char token[80]; /* empty when none is required */
    bool loopback;  /* bound to a loopback address */
} board;

static char *dup_str(const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Grows *p (an array of *cap elements of size elem) to hold at least need elements. */
static bool grow(void **p, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap) return true;
    int64_t c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool grow_int(void **p, int *cap, int need, size_t elem)
{
    int64_t c = *cap;
    if (!grow(p, &c, need, elem)) return false;
    *cap = (int)c;
    return true;
}

static void free_graph(run *r)
{
    for (int i = 0; i < r->ngraph; i++) {
        graph_node_copy *g = &r->graph[i];
        free(g->name);
        free(g->op);
        for (int k = 0; k < g->num_inputs; k++) free(g->inputs[k]);
        for (int k = 0; k < g->num_attrs; k++) free(g->attr_keys[k]);
        free(g->inputs);
        free(g->attr_keys);
        free(g->attr_values);
    }
    free(r->graph);
    r->graph = NULL;
    r->ngraph = 0;
    r->has_graph = false;
}

static void free_run(run *r)
{
    if (!r) return;
    for (int i = 0; i < r->nfiles; i++) free(r->files[i].name);
    free(r->files);
    for (int i = 0; i < r->nscalars; i++) {
        free(r->scalars[i].tag);
        free(r->scalars[i].pts);
    }
    free(r->scalars);
    for (int i = 0; i < r->nhists; i++) {
        for (int64_t k = 0; k < r->hists[i].n; k++) free(r->hists[i].pts[k].limit_and_count);
        free(r->hists[i].tag);
        free(r->hists[i].pts);
    }
    free(r->hists);
    for (int i = 0; i < r->nimages; i++) {
        for (int k = 0; k < IMAGES_KEPT; k++) free(r->images[i].kept[k].png);
        free(r->images[i].tag);
    }
    free(r->images);
    free_graph(r);
    free(r->name);
    free(r);
}

/* ---- sink callbacks: decoded records go into the run ---- */

static scalar_series *scalar_tag(run *r, const char *tag)
{
    for (int i = 0; i < r->nscalars; i++)
        if (strcmp(r->scalars[i].tag, tag) == 0) return &r->scalars[i];
    if (!grow_int((void **)&r->scalars, &r->cap_scalars, r->nscalars + 1, sizeof *r->scalars))
        return NULL;
    scalar_series *s = &r->scalars[r->nscalars];
    memset(s, 0, sizeof *s);
    if (!(s->tag = dup_str(tag))) return NULL;
    r->nscalars++;
    return s;
}

static void on_scalar(void *user, const char *tag, int64_t step, double wall_time, double value)
{
    run *r = user;
    scalar_series *s = scalar_tag(r, tag);
    if (!s || !grow((void **)&s->pts, &s->cap, s->n + 1, sizeof *s->pts)) {
        r->oom = true;
        return;
    }
    /* Steps usually arrive in order; a restarted run (a new file starting over) is merged in so
     * the series stays sorted by step, which the charts need. Equal steps keep arrival order. */
    int64_t at = s->n;
    while (at > 0 && s->pts[at - 1].step > step) at--;
    memmove(&s->pts[at + 1], &s->pts[at], (size_t)(s->n - at) * sizeof *s->pts);
    s->pts[at] = (scalar_pt){step, wall_time, value};
    s->n++;
}

static void on_histogram(void *user, const char *tag, int64_t step, double wall_time, double min,
                         double max, double num, double sum, double sum_squares, int nbuckets,
                         const double *bucket_limit, const double *bucket)
{
    run *r = user;
    hist_series *h = NULL;
    for (int i = 0; i < r->nhists && !h; i++)
        if (strcmp(r->hists[i].tag, tag) == 0) h = &r->hists[i];
    if (!h) {
        if (!grow_int((void **)&r->hists, &r->cap_hists, r->nhists + 1, sizeof *r->hists)) {
            r->oom = true;
            return;
        }
        h = &r->hists[r->nhists];
        memset(h, 0, sizeof *h);
        if (!(h->tag = dup_str(tag))) {
            r->oom = true;
            return;
        }
        r->nhists++;
    }
    if (nbuckets < 0) nbuckets = 0;
    double *lc = NULL;
    if (nbuckets > 0) {
        lc = malloc(2 * (size_t)nbuckets * sizeof *lc);
        if (!lc) {
            r->oom = true;
            return;
        }
        memcpy(lc, bucket_limit, (size_t)nbuckets * sizeof *lc);
        memcpy(lc + nbuckets, bucket, (size_t)nbuckets * sizeof *lc);
    }
    if (!grow((void **)&h->pts, &h->cap, h->n + 1, sizeof *h->pts)) {
        free(lc);
        r->oom = true;
        return;
    }
    int64_t at = h->n;
    while (at > 0 && h->pts[at - 1].step > step) at--;
    memmove(&h->pts[at + 1], &h->pts[at], (size_t)(h->n - at) * sizeof *h->pts);
    h->pts[at] = (hist_pt){step, wall_time, min, max, num, sum, sum_squares, nbuckets, lc};
    h->n++;
}

static void on_graph(void *user, const moka_graph_node *nodes, int n)
{
    run *r = user;
    /* A later graph (a resumed run writes one again) replaces the earlier one. */
    free_graph(r);
    r->has_graph = true;
    if (n <= 0) return;
    r->graph = calloc((size_t)n, sizeof *r->graph);
    if (!r->graph) goto oom;
    r->ngraph = n;
    for (int i = 0; i < n; i++) {
        const moka_graph_node *s = &nodes[i];
        graph_node_copy *d = &r->graph[i];
        if (!(d->name = dup_str(s->name ? s->name : "")) || !(d->op = dup_str(s->op ? s->op : "")))
            goto oom;
        if (s->num_inputs > 0) {
            if (!(d->inputs = calloc((size_t)s->num_inputs, sizeof *d->inputs))) goto oom;
            d->num_inputs = s->num_inputs;
            for (int k = 0; k < s->num_inputs; k++)
                if (!(d->inputs[k] = dup_str(s->inputs[k] ? s->inputs[k] : ""))) goto oom;
        }
        if (s->num_attrs > 0) {
            if (!(d->attr_keys = calloc((size_t)s->num_attrs, sizeof *d->attr_keys))) goto oom;
            d->num_attrs = s->num_attrs;
            if (!(d->attr_values = malloc((size_t)s->num_attrs * sizeof *d->attr_values))) goto oom;
            for (int k = 0; k < s->num_attrs; k++) {
                if (!(d->attr_keys[k] = dup_str(s->attr_keys[k] ? s->attr_keys[k] : ""))) goto oom;
                d->attr_values[k] = s->attr_values[k];
            }
        }
    }
    return;
oom:
    free_graph(r);
    r->oom = true;
}

static void on_image(void *user, const char *tag, int64_t step, int height, int width,
                     const unsigned char *png, int64_t png_nbytes)
{
    run *r = user;
    image_series *s = NULL;
    for (int i = 0; i < r->nimages && !s; i++)
        if (strcmp(r->images[i].tag, tag) == 0) s = &r->images[i];
    if (!s) {
        if (!grow_int((void **)&r->images, &r->cap_images, r->nimages + 1, sizeof *r->images)) {
            r->oom = true;
            return;
        }
        s = &r->images[r->nimages];
        memset(s, 0, sizeof *s);
        if (!(s->tag = dup_str(tag))) {
            r->oom = true;
            return;
        }
        r->nimages++;
    }
    if (png_nbytes < 0) png_nbytes = 0;
    unsigned char *copy = malloc(png_nbytes ? (size_t)png_nbytes : 1);
    if (!copy) {
        r->oom = true;
        return;
    }
    if (png_nbytes) memcpy(copy, png, (size_t)png_nbytes);
    image_pt *slot = &s->kept[s->total % IMAGES_KEPT];
    free(slot->png);
    *slot = (image_pt){step, s->total, height, width, copy, png_nbytes};
    s->total++;
}

/* ---- reading LOGDIR ---- */

static bool is_event_file(const char *name) { return strstr(name, "tfevents") != NULL; }

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names in dir accepted by keep (regular event files, or run directories), sorted. Hidden
 * entries (starting with '.') are skipped. *out is a malloc'd array of malloc'd names. */
static moka_status list_dir(const char *dir, bool want_dirs, char ***out, int *n, moka_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return moka_errf(err, MOKA_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    char **names = NULL;
    int cap = 0, count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !is_event_file(e->d_name)) continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
        if (!grow_int((void **)&names, &cap, count + 1, sizeof *names) ||
            !(names[count] = dup_str(e->d_name))) {
            for (int i = 0; i < count; i++) free(names[i]);
            free(names);
            closedir(d);
            return moka_errf(err, MOKA_ERR_NOMEM, "%s: out of memory listing", dir);
        }
        count++;
    }
    closedir(d);
    if (count > 1) qsort(names, (size_t)count, sizeof *names, cmp_str);
    *out = names;
    *n = count;
    return MOKA_OK;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int run_dir(const board *b, const run *r, char *path, size_t size)
{
    if (strcmp(r->name, ".") == 0) return snprintf(path, size, "%s", b->logdir);
    return snprintf(path, size, "%s/%s", b->logdir, r->name);
}

/* Picks up new event files of r and reads what was appended to each since the last call. */
static moka_status refresh_run(board *b, run *r, moka_err *err)
{
    char dir[4096];
    if (run_dir(b, r, dir, sizeof dir) >= (int)sizeof dir)
        return moka_errf(err, MOKA_ERR_IO, "run '%s': path too long", r->name);
    char **names;
    int n;
    moka_status st = list_dir(dir, false, &names, &n, err);
    if (st == MOKA_ERR_IO) return MOKA_OK; /* removed meanwhile: keep what was read */
    if (st != MOKA_OK) return st;
    for (int i = 0; i < n; i++) {
        bool known = false;
        for (int k = 0; k < r->nfiles && !known; k++)
            known = strcmp(r->files[k].name, names[i]) == 0;
        if (known) continue;
        if (!grow_int((void **)&r->files, &r->cap_files, r->nfiles + 1, sizeof *r->files)) {
            free_names(names, n);
            return moka_errf(err, MOKA_ERR_NOMEM, "run '%s': out of memory", r->name);
        }
        r->files[r->nfiles++] = (event_file){names[i], 0, false};
        names[i] = NULL;
    }
    free_names(names, n);

    const moka_tfevents_sink sink = {.user = r,
                                     .scalar = on_scalar,
                                     .histogram = on_histogram,
                                     .graph = on_graph,
                                     .image = on_image};
    for (int i = 0; i < r->nfiles; i++) {
        event_file *f = &r->files[i];
        if (f->broken) continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, f->name) >= (int)sizeof path) continue;
        struct stat sb;
        if (stat(path, &sb) != 0 || sb.st_size <= f->offset) continue; /* nothing new */
        moka_err rerr = {0};
        st = moka_tfevents_read(path, &f->offset, &sink, &rerr);
        if (r->oom) return moka_errf(err, MOKA_ERR_NOMEM, "run '%s': out of memory", r->name);
        if (st == MOKA_ERR_NOMEM) {
            moka_errf(err, st, "%s", rerr.msg);
            return st;
        }
        if (st != MOKA_OK) {
            /* A damaged record: what came before it stays, the rest of this file is skipped
             * (re-reading would fail at the same place on every request). */
            moka_logf(MOKA_LOG_WARN, "board", "%s; the rest of this file is ignored", rerr.msg);
            f->broken = true;
        }
    }
    return MOKA_OK;
}

static run *find_run(const board *b, const char *name)
{
    for (int i = 0; i < b->nruns; i++)
        if (strcmp(b->runs[i]->name, name) == 0) return b->runs[i];
    return NULL;
}

static moka_status add_run(board *b, const char *name, moka_err *err)
{
    run *r = calloc(1, sizeof *r);
    if (!r || !(r->name = dup_str(name)) ||
        !grow_int((void **)&b->runs, &b->cap_runs, b->nruns + 1, sizeof *b->runs)) {
        free_run(r);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory adding run '%s'", name);
    }
    r->seen = true;
    int at = b->nruns;
    while (at > 0 && strcmp(b->runs[at - 1]->name, name) > 0) at--;
    memmove(&b->runs[at + 1], &b->runs[at], (size_t)(b->nruns - at) * sizeof *b->runs);
    b->runs[at] = r;
    b->nruns++;
    return MOKA_OK;
}

/* Re-lists LOGDIR: a run is LOGDIR itself (named ".") or a subdirectory, when it holds at least
 * one event file. Runs no longer there are dropped. Then every run is read up to date. */
static moka_status refresh_all(board *b, moka_err *err)
{
    for (int i = 0; i < b->nruns; i++) b->runs[i]->seen = false;
    char **names, **files;
    int n, nfiles;
    MOKA_TRY(list_dir(b->logdir, false, &files, &nfiles, err));
    free_names(files, nfiles);
    moka_status st = MOKA_OK;
    if (nfiles > 0) {
        run *r = find_run(b, ".");
        if (r)
            r->seen = true;
        else
            MOKA_TRY(add_run(b, ".", err));
    }
    MOKA_TRY(list_dir(b->logdir, true, &names, &n, err));
    for (int i = 0; i < n && st == MOKA_OK; i++) {
        run *r = find_run(b, names[i]);
        if (r) {
            r->seen = true;
            continue;
        }
        char dir[4096];
        if (snprintf(dir, sizeof dir, "%s/%s", b->logdir, names[i]) >= (int)sizeof dir) continue;
        st = list_dir(dir, false, &files, &nfiles, err);
        if (st == MOKA_ERR_IO) { /* gone or unreadable: not a run */
            st = MOKA_OK;
            continue;
        }
        if (st != MOKA_OK) break;
        free_names(files, nfiles);
        if (nfiles > 0) st = add_run(b, names[i], err);
    }
    free_names(names, n);
    if (st != MOKA_OK) return st;
    int kept = 0;
    for (int i = 0; i < b->nruns; i++) {
        if (b->runs[i]->seen)
            b->runs[kept++] = b->runs[i];
        else
            free_run(b->runs[i]);
    }
    b->nruns = kept;
    for (int i = 0; i < b->nruns; i++) MOKA_TRY(refresh_run(b, b->runs[i], err));
    return MOKA_OK;
}

/* ---- JSON documents ---- */

static void json_runs(const board *b, sbuf *o)
{
    sb_str(o, "[");
    for (int i = 0; i < b->nruns; i++) {
        const run *r = b->runs[i];
        sb_str(o, i ? ",\n{\"run\":" : "\n{\"run\":");
        sb_jstr(o, r->name);
        sb_str(o, ",\"scalars\":[");
        for (int k = 0; k < r->nscalars; k++) {
            if (k) sb_str(o, ",");
            sb_jstr(o, r->scalars[k].tag);
        }
        sb_str(o, "],\"histograms\":[");
        for (int k = 0; k < r->nhists; k++) {
            if (k) sb_str(o, ",");
            sb_jstr(o, r->hists[k].tag);
        }
        sb_str(o, "],\"images\":[");
        for (int k = 0; k < r->nimages; k++) {
            if (k) sb_str(o, ",");
            sb_jstr(o, r->images[k].tag);
        }
        sb_printf(o, "],\"graph\":%s}", r->has_graph ? "true" : "false");
    }
    sb_str(o, "\n]\n");
}

static void json_scalars(const scalar_series *s, sbuf *o)
{
    sb_str(o, "[");
    for (int64_t i = 0; i < s->n; i++) {
        sb_printf(o, "%s[%lld,", i ? "," : "", (long long)s->pts[i].step);
        sb_num(o, s->pts[i].wall_time);
        sb_str(o, ",");
        sb_num(o, s->pts[i].value);
        sb_str(o, "]");
    }
    sb_str(o, "]\n");
}

static void json_histograms(const hist_series *h, int64_t last, bool buckets, sbuf *o)
{
    const int64_t first = last >= 0 && last < h->n ? h->n - last : 0;
    sb_str(o, "[");
    for (int64_t i = first; i < h->n; i++) {
        const hist_pt *p = &h->pts[i];
        sb_printf(o, "%s\n{\"step\":%lld,\"wall_time\":", i > first ? "," : "", (long long)p->step);
        sb_num(o, p->wall_time);
        const char *keys[] = {"min", "max", "num", "sum", "sum_squares"};
        const double vals[] = {p->min, p->max, p->num, p->sum, p->sum_squares};
        for (int k = 0; k < 5; k++) {
            sb_printf(o, ",\"%s\":", keys[k]);
            sb_num(o, vals[k]);
        }
        if (buckets) {
            for (int part = 0; part < 2; part++) {
                sb_str(o, part ? "],\"bucket\":[" : ",\"bucket_limit\":[");
                for (int k = 0; k < p->nbuckets; k++) {
                    if (k) sb_str(o, ",");
                    sb_num(o, p->limit_and_count[part * p->nbuckets + k]);
                }
            }
            sb_str(o, "]");
        }
        sb_str(o, "}");
    }
    sb_str(o, "\n]\n");
}

static void json_graph(const run *r, sbuf *o)
{
    sb_str(o, "{\"nodes\":[");
    for (int i = 0; i < r->ngraph; i++) {
        const graph_node_copy *g = &r->graph[i];
        sb_str(o, i ? ",\n{\"name\":" : "\n{\"name\":");
        sb_jstr(o, g->name);
        sb_str(o, ",\"op\":");
        sb_jstr(o, g->op);
        sb_str(o, ",\"inputs\":[");
        for (int k = 0; k < g->num_inputs; k++) {
            if (k) sb_str(o, ",");
            sb_jstr(o, g->inputs[k]);
        }
        sb_str(o, "],\"attrs\":{");
        for (int k = 0; k < g->num_attrs; k++) {
            if (k) sb_str(o, ",");
            sb_jstr(o, g->attr_keys[k]);
            sb_printf(o, ":%lld", (long long)g->attr_values[k]);
        }
        sb_str(o, "}}");
    }
    sb_str(o, "\n]}\n");
}

static void json_images(const image_series *s, sbuf *o)
{
    const int64_t first = s->total > IMAGES_KEPT ? s->total - IMAGES_KEPT : 0;
    sb_str(o, "[");
    for (int64_t i = first; i < s->total; i++) {
        const image_pt *p = &s->kept[i % IMAGES_KEPT];
        sb_printf(o, "%s{\"index\":%lld,\"step\":%lld,\"width\":%d,\"height\":%d}",
                  i > first ? "," : "", (long long)p->index, (long long)p->step, p->width,
                  p->height);
    }
    sb_str(o, "]\n");
}

/* ---- HTTP ---- */

static const char *mime_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (strcmp(dot, ".html") == 0) return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    if (strcmp(dot, ".png") == 0) return "image/png";
    return "application/octet-stream";
}

/* Queues a response. body is copied by MHD unless persistent (the compiled-in assets). */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *mime,
                             const void *body, size_t nbytes, bool persistent,
                             const char *set_cookie)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        nbytes, (void *)body, persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, mime);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    /* The page uses only its own scripts and styles; uPlot sets inline styles from script. */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; "
                            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(resp, "Allow", "GET, HEAD");
    if (set_cookie) MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, set_cookie);
    const enum MHD_Result ok = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *fmt, ...)
    MOKA_PRINTF(3, 4);
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sbuf o = {0};
    sb_str(&o, "{\"error\":");
    sb_jstr(&o, msg);
    sb_str(&o, "}\n");
    const enum MHD_Result r =
        o.oom ? MHD_NO : reply(c, code, "application/json", o.p, o.len, false, NULL);
    free(o.p);
    return r;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, sbuf *o, const char *set_cookie)
{
    enum MHD_Result r;
    if (o->oom)
        r = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    else
        r = reply(c, MHD_HTTP_OK, "application/json", o->p, o->len, false, set_cookie);
    free(o->p);
    return r;
}

/* Equal strings, in time that does not depend on where they differ. */
static bool token_equal(const char *a, const char *b)
{
    const size_t na = strlen(a), nb = strlen(b);
    unsigned diff = na != nb;
    for (size_t i = 0; i < na; i++) diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (nb + 1)];
    return diff == 0;
}

/* Whether a Host header names this machine by a loopback name ("localhost", "127.x.y.z",
 * "[::1]", each with an optional ":port"). */
static bool host_is_loopback(const char *host)
{
    char name[256];
    size_t n = strlen(host);
    if (n == 0 || n >= sizeof name) return false;
    memcpy(name, host, n + 1);
    if (name[0] == '[') {
        char *end = strchr(name, ']');
        if (!end) return false;
        *end = '\0';
        return strcmp(name + 1, "::1") == 0;
    }
    char *colon = strchr(name, ':');
    if (colon) *colon = '\0';
    if (strcasecmp(name, "localhost") == 0) return true;
    struct in_addr a;
    return inet_pton(AF_INET, name, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* A query value, as decoded by MHD; NULL when absent. *bad is set when the value holds a NUL
 * byte (%00), which would otherwise make "run%00x" look like the run "run". */
static const char *query_arg(struct MHD_Connection *c, const char *key, bool *bad)
{
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v, &n) !=
            MHD_YES ||
        !v)
        return NULL;
    if (strlen(v) != n) *bad = true;
    return v;
}

/* 0 when the request may proceed (*set_cookie filled when it came with ?token=), else the HTTP
 * status to refuse it with. */
static unsigned check_access(const board *b, struct MHD_Connection *c, char *set_cookie,
                             size_t size)
{
    set_cookie[0] = '\0';
    if (!b->token[0]) {
        const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        return (!b->loopback || !host || host_is_loopback(host)) ? 0 : MHD_HTTP_FORBIDDEN;
    }
    bool bad = false;
    const char *q = query_arg(c, "token", &bad);
    if (q && !bad && token_equal(q, b->token)) {
        snprintf(set_cookie, size, TOKEN_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict", b->token);
        return 0;
    }
    const char *k = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, TOKEN_COOKIE);
    if (k && token_equal(k, b->token)) return 0;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && (strncasecmp(h, "token ", 6) == 0 || strncasecmp(h, "bearer ", 7) == 0)) {
        h = strchr(h, ' ');
        while (*h == ' ') h++;
        if (token_equal(h, b->token)) return 0;
    }
    return MHD_HTTP_FORBIDDEN;
}

static const moka_board_asset *find_asset(const char *name)
{
    for (int i = 0; i < moka_board_num_assets; i++)
        if (strcmp(moka_board_assets[i].name, name) == 0) return &moka_board_assets[i];
    return NULL;
}

/* Parses a non-negative decimal integer query value; false if malformed. */
static bool parse_count(const char *s, int64_t *out)
{
    if (!s || !*s) return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

static enum MHD_Result handle_api(board *b, struct MHD_Connection *c, const char *what,
                                  const char *set_cookie)
{
    moka_err err = {0};
    if (refresh_all(b, &err) != MOKA_OK) {
        moka_logf(MOKA_LOG_WARN, "board", "%s", err.msg);
        return reply_error(c,
                           err.code == MOKA_ERR_NOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR
                                                      : MHD_HTTP_SERVICE_UNAVAILABLE,
                           "%s", err.msg);
    }
    sbuf o = {0};
    if (strcmp(what, "runs") == 0) {
        json_runs(b, &o);
        return reply_json(c, &o, set_cookie);
    }
    const bool is_scalars = strcmp(what, "scalars") == 0;
    const bool is_hists = strcmp(what, "histograms") == 0;
    const bool is_graph = strcmp(what, "graph") == 0;
    const bool is_images = strcmp(what, "images") == 0;
    const bool is_image = strcmp(what, "image") == 0;
    if (!is_scalars && !is_hists && !is_graph && !is_images && !is_image)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
    bool bad = false;
    const char *run_name = query_arg(c, "run", &bad);
    const char *tag = query_arg(c, "tag", &bad);
    const char *qb = query_arg(c, "buckets", &bad), *ql = query_arg(c, "last", &bad);
    const char *qi = query_arg(c, "index", &bad);
    if (bad) return reply_error(c, MHD_HTTP_BAD_REQUEST, "query values may not hold NUL bytes");
    if (!run_name) return reply_error(c, MHD_HTTP_BAD_REQUEST, "missing query parameter 'run'");
    /* The run is only ever looked up among the names listed from LOGDIR. */
    const run *r = find_run(b, run_name);
    if (!r) return reply_error(c, MHD_HTTP_NOT_FOUND, "unknown run '%s'", run_name);
    if (is_graph) {
        json_graph(r, &o);
        return reply_json(c, &o, set_cookie);
    }
    if (!tag) return reply_error(c, MHD_HTTP_BAD_REQUEST, "missing query parameter 'tag'");
    if (is_scalars) {
        for (int i = 0; i < r->nscalars; i++)
            if (strcmp(r->scalars[i].tag, tag) == 0) {
                json_scalars(&r->scalars[i], &o);
                return reply_json(c, &o, set_cookie);
            }
    } else if (is_hists) {
        int64_t last = -1;
        if (qb && strcmp(qb, "0") != 0 && strcmp(qb, "1") != 0)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "'buckets' must be 0 or 1");
        if (ql && !parse_count(ql, &last))
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "'last' must be a count");
        for (int i = 0; i < r->nhists; i++)
            if (strcmp(r->hists[i].tag, tag) == 0) {
                json_histograms(&r->hists[i], last, !qb || strcmp(qb, "1") == 0, &o);
                return reply_json(c, &o, set_cookie);
            }
    } else {
        for (int i = 0; i < r->nimages; i++) {
            const image_series *s = &r->images[i];
            if (strcmp(s->tag, tag) != 0) continue;
            if (is_images) {
                json_images(s, &o);
                return reply_json(c, &o, set_cookie);
            }
            int64_t idx;
            if (!parse_count(qi, &idx))
                return reply_error(c, MHD_HTTP_BAD_REQUEST, "'index' must be a count");
            if (idx >= s->total || idx + IMAGES_KEPT < s->total)
                return reply_error(c, MHD_HTTP_NOT_FOUND, "image %lld of '%s' is not kept",
                                   (long long)idx, tag);
            const image_pt *p = &s->kept[idx % IMAGES_KEPT];
            return reply(c, MHD_HTTP_OK, "image/png", p->png, (size_t)p->png_nbytes, false,
                         set_cookie);
        }
    }
    return reply_error(c, MHD_HTTP_NOT_FOUND, "run '%s' has no %s tag '%s'", run_name, what, tag);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    board *b = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served");
    char cookie[160];
    const unsigned deny = check_access(b, c, cookie, sizeof cookie);
    if (deny)
        return reply_error(c, deny,
                           b->token[0] ? "a valid token is required (?token=...)"
                                       : "Host header does not name this machine");
    const char *set_cookie = cookie[0] ? cookie : NULL;
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) url = "/static/board.html";
    if (strncmp(url, "/static/", 8) == 0) {
        /* Assets come only from the compiled-in table: no file system path is involved. */
        const moka_board_asset *a = find_asset(url + 8);
        if (!a) return reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
        return reply(c, MHD_HTTP_OK, mime_of(a->name), a->data, (size_t)a->nbytes, true,
                     set_cookie);
    }
    if (strncmp(url, "/api/", 5) == 0 && !strchr(url + 5, '/'))
        return handle_api(b, c, url + 5, set_cookie);
    return reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    moka_logf(MOKA_LOG_WARN, "board", "libmicrohttpd: %s", msg);
}

/* ---- start and stop ---- */

static moka_status make_token(char *out, size_t size, moka_err *err)
{
    unsigned char raw[24];
    const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    const ssize_t got = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0) close(fd);
    if (got != (ssize_t)sizeof raw)
        return moka_errf(err, MOKA_ERR_IO, "cannot read /dev/urandom for a token");
    for (size_t i = 0; i < sizeof raw && 2 * i + 2 < size; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return MOKA_OK;
}

/* Binds and listens on host:port; fills *fd, whether the address is loopback, and the port. */
static moka_status open_listener(const char *host, int port, int *fd, bool *loopback, bool *ipv6,
                                 int *bound_port, moka_err *err)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    const int gai = getaddrinfo(host, service, &hints, &ai);
    if (gai != 0)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "cannot resolve host '%s': %s", host,
                         gai_strerror(gai));
    const int s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        freeaddrinfo(ai);
        return moka_errf(err, MOKA_ERR_IO, "socket: %s", strerror(errno));
    }
    const int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    *ipv6 = ai->ai_family == AF_INET6;
    if (*ipv6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ai->ai_addr;
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)ai->ai_addr;
        *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    if (bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, 64) != 0) {
        const int e = errno;
        freeaddrinfo(ai);
        close(s);
        return moka_errf(err, MOKA_ERR_IO, "cannot listen on %s port %d: %s", host, port,
                         strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(s, (struct sockaddr *)&ss, &len) != 0) {
        close(s);
        return moka_errf(err, MOKA_ERR_IO, "getsockname: %s", strerror(errno));
    }
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    *fd = s;
    return MOKA_OK;
}

moka_status moka_board_serve(const moka_board_opts *opts, moka_err *err)
{
    if (!opts || !opts->logdir || !*opts->logdir)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "a log directory is required");
    if (opts->port < MOKA_BOARD_PORT_ANY || opts->port > 65535)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "port must be in [0, 65535], got %d",
                         opts->port);
    if (opts->token && (!*opts->token || strlen(opts->token) >= 80))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "the token must be 1 to 79 characters long");
    if (opts->token)
        for (const char *p = opts->token; *p; p++)
            if (*p <= ' ' || *p == ';' || *p == ',' || *p == '"' || *p == '\\' || *p == 0x7f)
                return moka_errf(err, MOKA_ERR_INVALID_ARG,
                                 "the token may not contain "
                                 "spaces, control characters or any of ;,\"\\");
    struct stat st;
    if (stat(opts->logdir, &st) != 0)
        return moka_errf(err, MOKA_ERR_IO, "log directory '%s': %s", opts->logdir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return moka_errf(err, MOKA_ERR_IO, "'%s' is not a directory", opts->logdir);

    board b = {.logdir = opts->logdir};
    const char *host = opts->host && *opts->host ? opts->host : "127.0.0.1";
    const int port = opts->port == 0 ? 6006 : opts->port == MOKA_BOARD_PORT_ANY ? 0 : opts->port;
    int fd = -1, bound_port = 0;
    bool ipv6 = false;
    MOKA_TRY(open_listener(host, port, &fd, &b.loopback, &ipv6, &bound_port, err));
    if (opts->token) {
        snprintf(b.token, sizeof b.token, "%s", opts->token);
    } else if (!b.loopback) {
        const moka_status s = make_token(b.token, sizeof b.token, err);
        if (s != MOKA_OK) {
            close(fd);
            return s;
        }
    }

    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
                             (ipv6 ? MHD_USE_IPv6 : 0),
                         (uint16_t)bound_port, NULL, NULL, handle, &b, MHD_OPTION_EXTERNAL_LOGGER,
                         mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                         64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!d) {
        close(fd);
        return moka_errf(err, MOKA_ERR_IO, "libmicrohttpd could not start on %s port %d", host,
                         bound_port);
    }

    char url[512];
    const bool bracket = ipv6 && strchr(host, ':');
    snprintf(url, sizeof url, "http://%s%s%s:%d/%s%s", bracket ? "[" : "", host, bracket ? "]" : "",
             bound_port, b.token[0] ? "?token=" : "", b.token);
    moka_logf(MOKA_LOG_INFO, "board", "moka board: serving %s at %s", opts->logdir, url);
    if (!b.loopback && !opts->token)
        moka_logf(MOKA_LOG_INFO, "board", "open the URL above; requests without the token get 403");
    if (opts->ready) opts->ready(opts->user, url, bound_port);

    const struct timespec tick = {0, 100 * 1000 * 1000};
    while (!(opts->stop && *opts->stop)) nanosleep(&tick, NULL);

    /* Stopping joins the polling thread (and closes the listening socket), so no handler runs
     * after this line and the cache can be freed. */
    MHD_stop_daemon(d);
    for (int i = 0; i < b.nruns; i++) free_run(b.runs[i]);
    free(b.runs);
    return MOKA_OK;
}
