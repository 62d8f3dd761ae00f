/* tests/unit/test_board.c -- `moka board`'s HTTP server, driven over plain sockets on loopback.
 *
 * Each test writes event files with moka's writer (src/io/tfevents.h) into a temporary log
 * directory, runs moka_board_serve on a free port in a thread, sends raw HTTP/1.0 requests and
 * checks status codes, headers and bodies. JSON bodies are checked by a strict validator written
 * here from the JSON grammar (RFC 8259), and the numbers in them against the values written.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board/board.h"
#include "io/tfevents.h"
#include "moka/log.h"
#include "test.h"

/* ---- a server in a thread ---- */

typedef struct server {
    pthread_t thread;
    moka_board_opts opts;
    volatile sig_atomic_t stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int port;  /* 0 until ready */
    bool done; /* moka_board_serve returned */
    char url[512];
    moka_status status;
    moka_err err;
} server;

static void on_ready(void *user, const char *url, int port)
{
    server *s = user;
    pthread_mutex_lock(&s->mu);
    snprintf(s->url, sizeof s->url, "%s", url);
    s->port = port;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *serve_thread(void *arg)
{
    server *s = arg;
    s->status = moka_board_serve(&s->opts, &s->err);
    pthread_mutex_lock(&s->mu);
    s->done = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Starts serving logdir on a free port; 0 once it listens, 1 if it failed to start. */
static int server_start(server *s, const char *logdir, const char *host, const char *token)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->opts = (moka_board_opts){.logdir = logdir,
                                .host = host,
                                .port = MOKA_BOARD_PORT_ANY,
                                .token = token,
                                .stop = &s->stop,
                                .ready = on_ready,
                                .user = s};
    if (pthread_create(&s->thread, NULL, serve_thread, s) != 0) return 1;
    pthread_mutex_lock(&s->mu);
    while (!s->port && !s->done) pthread_cond_wait(&s->cv, &s->mu);
    const bool up = s->port != 0;
    pthread_mutex_unlock(&s->mu);
    if (!up) {
        pthread_join(s->thread, NULL);
        fprintf(stderr, "server did not start: %s\n", s->err.msg);
        return 1;
    }
    return 0;
}

/* Stops the server; returns the status moka_board_serve returned. */
static moka_status server_stop(server *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    return s->status;
}

/* ---- HTTP over a plain socket ---- */

typedef struct response {
    int code;
    char *head; /* status line and headers */
    char *body;
    size_t body_nbytes;
} response;

static void response_free(response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Sends `request` verbatim (the caller writes the request line and headers) and reads the whole
 * response (HTTP/1.0: the server closes the connection after it). 0 on success. */
static int http_raw(int port, const char *request, response *r)
{
    memset(r, 0, sizeof *r);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 1;
    }
    const size_t n = strlen(request);
    if (write(fd, request, n) != (ssize_t)n) {
        close(fd);
        return 1;
    }
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
        const ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", &r->code) != 1) {
        fprintf(stderr, "malformed response: %.200s\n", buf);
        free(buf);
        return 1;
    }
    *sep = '\0';
    r->head = buf;
    r->body_nbytes = len - (size_t)(sep + 4 - buf);
    r->body = malloc(r->body_nbytes + 1);
    memcpy(r->body, sep + 4, r->body_nbytes);
    r->body[r->body_nbytes] = '\0';
    return 0;
}

/* GET path with Host 127.0.0.1 and optional extra header lines (each ending in \r\n). */
static int http_get(int port, const char *path, const char *extra, response *r)
{
    char req[2048];
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n%s\r\n", path, port,
             extra ? extra : "");
    return http_raw(port, req, r);
}

/* ---- a strict JSON validator (RFC 8259) ---- */

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *json_value(const char *p, int depth);

static const char *json_string(const char *p)
{
    if (*p++ != '"') return NULL;
    while (*p != '"') {
        const unsigned char c = (unsigned char)*p;
        if (c == '\0' || c < 0x20) return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
                p += 5;
            } else if (*p && strchr("\"\\/bfnrt", *p)) {
                p++;
            } else {
                return NULL;
            }
        } else if (c >= 0x80) {
            /* Multi-byte UTF-8: a lead byte and the right number of continuation bytes. */
            const int len = (c & 0xe0) == 0xc0   ? 2
                            : (c & 0xf0) == 0xe0 ? 3
                            : (c & 0xf8) == 0xf0 ? 4
                                                 : 0;
            if (!len) return NULL;
            for (int i = 1; i < len; i++)
                if (((unsigned char)p[i] & 0xc0) != 0x80) return NULL;
            p += len;
        } else {
            p++;
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9') p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const char *json_value(const char *p, int depth)
{
    if (depth > 64) return NULL;
    p = json_ws(p);
    if (*p == '{' || *p == '[') {
        const char close = *p == '{' ? '}' : ']';
        const bool object = *p == '{';
        p = json_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (object) {
                if (!(p = json_string(json_ws(p)))) return NULL;
                p = json_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = json_value(p, depth + 1))) return NULL;
            p = json_ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
        }
    }
    if (*p == '"') return json_string(p);
    if (strncmp(p, "true", 4) == 0) return p + 4;
    if (strncmp(p, "false", 5) == 0) return p + 5;
    if (strncmp(p, "null", 4) == 0) return p + 4;
    return json_number(p);
}

static bool json_valid(const char *doc)
{
    const char *end = json_value(doc, 0);
    return end && *json_ws(end) == '\0';
}

/* Reads [[step, wall_time, value], ...] into arrays (up to max); returns the count or -1. */
static int parse_scalars(const char *doc, int64_t *steps, double *values, int max)
{
    const char *p = json_ws(doc);
    if (*p++ != '[') return -1;
    int n = 0;
    for (p = json_ws(p); *p == '['; n++) {
        char *end;
        const long long step = strtoll(p + 1, &end, 10);
        if (*end != ',') return -1;
        strtod(end + 1, &end); /* wall time */
        if (*end != ',') return -1;
        const double v = strtod(end + 1, &end);
        if (*end != ']') return -1;
        if (n < max) steps[n] = step, values[n] = v;
        p = json_ws(end + 1);
        if (*p == ',') p = json_ws(p + 1);
    }
    return *p == ']' ? n : -1;
}

/* ---- fixtures ---- */

static void make_tmpdir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/moka_board_test_XXXXXX");
    if (!mkdtemp(dir)) dir[0] = '\0';
}

static void remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Writes `count` loss scalars at steps first, first + 1, ... with value 1 / (1 + step). */
static moka_status write_losses(moka_tfevents *w, int64_t first, int count, moka_err *err)
{
    for (int64_t k = 0; k < count; k++)
        MOKA_TRY(moka_tfevents_scalar(w, first + k, "loss", 1.0 / (double)(2 + first + k), err));
    return MOKA_OK;
}

/* Silences the server's log lines (warnings about damaged files are expected in some tests). */
static void quiet(moka_log_level level, const char *src, const char *msg, void *user)
{
    (void)level, (void)src, (void)msg, (void)user;
}

/* ---- tests ---- */

static int serves_runs_and_scalars_as_json(void)
{
    moka_err err = {0};
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    CHECK(dir[0]);
    moka_tfevents *a, *b;
    CHECK_OK(moka_tfevents_open(dir, "alpha", &a, &err));
    CHECK_OK(write_losses(a, 0, 10, &err));
    CHECK_OK(moka_tfevents_scalar(a, 0, "lr", 0.01, &err));
    CHECK_OK(moka_tfevents_open(dir, "beta", &b, &err));
    CHECK_OK(moka_tfevents_scalar(b, 3, "test/accuracy", 0.75, &err));
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    CHECK_CONTAINS(s.url, "http://127.0.0.1:");
    response r;

    CHECK_EQ(http_get(s.port, "/api/runs", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_CONTAINS(r.head, "Content-Type: application/json");
    CHECK(json_valid(r.body));
    CHECK_CONTAINS(r.body, "{\"run\":\"alpha\",\"scalars\":[\"loss\",\"lr\"],\"histograms\":[],"
                           "\"images\":[],\"graph\":false}");
    CHECK_CONTAINS(r.body, "{\"run\":\"beta\",\"scalars\":[\"test/accuracy\"]");
    response_free(&r);

    CHECK_EQ(http_get(s.port, "/api/scalars?run=alpha&tag=loss", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK(json_valid(r.body));
    int64_t steps[16];
    double values[16];
    CHECK_EQ(parse_scalars(r.body, steps, values, 16), 10);
    for (int k = 0; k < 10; k++) {
        CHECK_EQ(steps[k], k);
        CHECK_NEAR(values[k], 1.0 / (2 + k), 1e-7); /* stored as float32 */
    }
    response_free(&r);

    /* URL-encoded query values are decoded: "test%2Faccuracy" is the tag "test/accuracy". */
    CHECK_EQ(http_get(s.port, "/api/scalars?run=beta&tag=test%2Faccuracy", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_EQ(parse_scalars(r.body, steps, values, 16), 1);
    CHECK_EQ(steps[0], 3);
    CHECK_NEAR(values[0], 0.75, 1e-7);
    response_free(&r);

    CHECK_EQ(http_get(s.port, "/api/scalars?run=alpha&tag=nope", NULL, &r), 0);
    CHECK_EQ(r.code, 404);
    CHECK(json_valid(r.body));
    CHECK_CONTAINS(r.body, "run 'alpha' has no scalars tag 'nope'");
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/scalars?tag=loss", NULL, &r), 0);
    CHECK_EQ(r.code, 400);
    CHECK_CONTAINS(r.body, "missing query parameter 'run'");
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/scalars?run=alpha", NULL, &r), 0);
    CHECK_EQ(r.code, 400);
    CHECK_CONTAINS(r.body, "missing query parameter 'tag'");
    response_free(&r);

    CHECK_EQ(server_stop(&s), MOKA_OK);
    moka_tfevents_close(a);
    moka_tfevents_close(b);
    remove_tree(dir);
    return 0;
}

static int reads_on_as_files_grow_and_appear(void)
{
    moka_err err = {0};
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    moka_tfevents *w;
    CHECK_OK(moka_tfevents_open(dir, "run", &w, &err));
    CHECK_OK(write_losses(w, 0, 5, &err));
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    response r;
    int64_t steps[64];
    double values[64];
    CHECK_EQ(http_get(s.port, "/api/scalars?run=run&tag=loss", NULL, &r), 0);
    CHECK_EQ(parse_scalars(r.body, steps, values, 64), 5);
    response_free(&r);

    /* The same file, still open, grows: only the new records are added (no duplicates). */
    CHECK_OK(write_losses(w, 5, 3, &err));
    CHECK_EQ(http_get(s.port, "/api/scalars?run=run&tag=loss", NULL, &r), 0);
    CHECK_EQ(parse_scalars(r.body, steps, values, 64), 8);
    CHECK_EQ(steps[7], 7);
    response_free(&r);

    /* A partial record at the end (a writer caught mid-write) is not read, and not lost: once
     * the rest of it arrives it is read. Here the tail is the first 6 bytes of a length field. */
    char path[512];
    snprintf(path, sizeof path, "%s", moka_tfevents_path(w));
    FILE *f = fopen(path, "ab");
    CHECK(f);
    const unsigned char partial[6] = {40, 0, 0, 0, 0, 0};
    CHECK_EQ(fwrite(partial, 1, sizeof partial, f), sizeof partial);
    fclose(f);
    CHECK_EQ(http_get(s.port, "/api/scalars?run=run&tag=loss", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_EQ(parse_scalars(r.body, steps, values, 64), 8);
    response_free(&r);
    moka_tfevents_close(w);

    /* A second file in the run (a resumed run), restarting at an earlier step, and a new run. */
    CHECK_OK(moka_tfevents_open(dir, "run", &w, &err));
    CHECK_OK(write_losses(w, 6, 4, &err)); /* steps 6..9 */
    moka_tfevents_close(w);
    CHECK_OK(moka_tfevents_open(dir, "later", &w, &err));
    CHECK_OK(write_losses(w, 0, 2, &err));
    moka_tfevents_close(w);
    CHECK_EQ(http_get(s.port, "/api/scalars?run=run&tag=loss", NULL, &r), 0);
    const int n = parse_scalars(r.body, steps, values, 64);
    CHECK_EQ(n, 12);
    for (int k = 1; k < n; k++) CHECK(steps[k - 1] <= steps[k]); /* merged in step order */
    CHECK_EQ(steps[n - 1], 9);
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/runs", NULL, &r), 0);
    CHECK(json_valid(r.body));
    CHECK_CONTAINS(r.body, "\"run\":\"later\"");
    response_free(&r);

    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

static int logdir_itself_is_the_run_named_dot(void)
{
    moka_err err = {0};
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    moka_tfevents *w;
    CHECK_OK(moka_tfevents_open(dir, NULL, &w, &err));
    CHECK_OK(write_losses(w, 0, 3, &err));
    moka_tfevents_close(w);
    char empty[96];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    CHECK_EQ(mkdir(empty, 0755), 0);
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    response r;
    CHECK_EQ(http_get(s.port, "/api/runs", NULL, &r), 0);
    CHECK(json_valid(r.body));
    CHECK_CONTAINS(r.body, "\"run\":\".\"");
    CHECK(!strstr(r.body, "empty")); /* a directory without event files is no run */
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/scalars?run=.&tag=loss", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    int64_t steps[8];
    double values[8];
    CHECK_EQ(parse_scalars(r.body, steps, values, 8), 3);
    response_free(&r);
    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

static int histograms_graph_and_images(void)
{
    moka_err err = {0};
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    moka_tfevents *w;
    CHECK_OK(moka_tfevents_open(dir, "net", &w, &err));
    const float v[5] = {-1.0f, 0.0f, 0.5f, 2.0f, 2.0f};
    CHECK_OK(moka_tfevents_histogram(w, 10, "conv1/weights", v, 5, &err));
    CHECK_OK(moka_tfevents_histogram(w, 20, "conv1/weights", v, 3, &err));
    static const char *const in[] = {"data"};
    static const char *const keys[] = {"num_output", "kernel_size"};
    static const int64_t vals[] = {20, 5};
    const moka_graph_node nodes[] = {{"data", "Input", 0, NULL, 0, NULL, NULL},
                                     {"conv1", "Convolution", 1, in, 2, keys, vals}};
    CHECK_OK(moka_tfevents_graph(w, nodes, 2, &err));
    float px[2 * 3];
    for (int i = 0; i < 6; i++) px[i] = (float)i / 5.0f;
    CHECK_OK(moka_tfevents_image(w, 7, "input", px, 1, 2, 3, &err));
    moka_tfevents_close(w);
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    response r;

    CHECK_EQ(http_get(s.port, "/api/runs", NULL, &r), 0);
    CHECK_CONTAINS(r.body, "\"histograms\":[\"conv1/weights\"],\"images\":[\"input\"],"
                           "\"graph\":true");
    response_free(&r);

    CHECK_EQ(http_get(s.port, "/api/histograms?run=net&tag=conv1/weights", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK(json_valid(r.body));
    /* min, max, num, sum and sum of squares of {-1, 0, 0.5, 2, 2}: -1, 2, 5, 3.5, 9.25. */
    CHECK_CONTAINS(r.body, "\"step\":10,");
    CHECK_CONTAINS(r.body, "\"min\":-1,\"max\":2,\"num\":5,\"sum\":3.5,\"sum_squares\":9.25,"
                           "\"bucket_limit\":[");
    /* ... and of {-1, 0, 0.5}: -1, 0.5, 3, -0.5, 1.25. */
    CHECK_CONTAINS(r.body, "\"min\":-1,\"max\":0.5,\"num\":3,\"sum\":-0.5,\"sum_squares\":1.25,");
    response_free(&r);
    CHECK_EQ(
        http_get(s.port, "/api/histograms?run=net&tag=conv1/weights&last=1&buckets=0", NULL, &r),
        0);
    CHECK_EQ(r.code, 200);
    CHECK(json_valid(r.body));
    CHECK(!strstr(r.body, "\"step\":10"));
    CHECK_CONTAINS(r.body, "\"step\":20");
    CHECK(!strstr(r.body, "bucket"));
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/histograms?run=net&tag=conv1/weights&last=x", NULL, &r), 0);
    CHECK_EQ(r.code, 400);
    response_free(&r);

    CHECK_EQ(http_get(s.port, "/api/graph?run=net", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK(json_valid(r.body));
    CHECK_CONTAINS(r.body, "{\"name\":\"data\",\"op\":\"Input\",\"inputs\":[],\"attrs\":{}}");
    CHECK_CONTAINS(r.body, "{\"name\":\"conv1\",\"op\":\"Convolution\",\"inputs\":[\"data\"],"
                           "\"attrs\":{\"num_output\":20,\"kernel_size\":5}}");
    response_free(&r);

    CHECK_EQ(http_get(s.port, "/api/images?run=net&tag=input", NULL, &r), 0);
    CHECK(json_valid(r.body));
    CHECK_CONTAINS(r.body, "[{\"index\":0,\"step\":7,\"width\":3,\"height\":2}]");
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/image?run=net&tag=input&index=0", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_CONTAINS(r.head, "Content-Type: image/png");
    CHECK(r.body_nbytes > 8 && memcmp(r.body, "\x89PNG\r\n\x1a\n", 8) == 0);
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/image?run=net&tag=input&index=1", NULL, &r), 0);
    CHECK_EQ(r.code, 404);
    response_free(&r);

    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

static int serves_the_page_and_its_assets(void)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    response r;
    CHECK_EQ(http_get(s.port, "/", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_CONTAINS(r.head, "Content-Type: text/html");
    CHECK_CONTAINS(r.head, "Content-Security-Policy: default-src 'self'");
    CHECK_CONTAINS(r.body, "<script src=\"static/board.js\">");
    response_free(&r);
    /* The compiled-in copy of uPlot is byte for byte the vendored file. */
    CHECK_EQ(http_get(s.port, "/static/uPlot.iife.min.js", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_CONTAINS(r.head, "Content-Type: text/javascript");
    FILE *f = fopen(MOKA_SOURCE_DIR "/third_party/uplot/uPlot.iife.min.js", "rb");
    CHECK(f);
    char *want = malloc(r.body_nbytes + 2);
    const size_t got = fread(want, 1, r.body_nbytes + 1, f);
    fclose(f);
    CHECK_EQ(got, r.body_nbytes);
    CHECK(memcmp(want, r.body, got) == 0);
    free(want);
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/static/board.css", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_CONTAINS(r.head, "Content-Type: text/css");
    response_free(&r);
    /* An empty log directory has no runs, which is still a valid answer. */
    CHECK_EQ(http_get(s.port, "/api/runs", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK(json_valid(r.body));
    CHECK(!strstr(r.body, "\"run\""));
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/nothing", NULL, &r), 0);
    CHECK_EQ(r.code, 404);
    response_free(&r);
    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

static int paths_cannot_escape_the_logdir(void)
{
    moka_err err = {0};
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    moka_tfevents *w;
    CHECK_OK(moka_tfevents_open(dir, "run", &w, &err));
    CHECK_OK(write_losses(w, 0, 2, &err));
    moka_tfevents_close(w);
    /* A directory next to the log directory that holds an event file: a run name like
     * "../outside" must not reach it. */
    char outside[128];
    snprintf(outside, sizeof outside, "%s_outside", dir);
    CHECK_OK(moka_tfevents_open(outside, NULL, &w, &err));
    CHECK_OK(write_losses(w, 0, 2, &err));
    moka_tfevents_close(w);
    const char *base = strrchr(outside, '/') + 1;
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    const char *paths[] = {
        "/../../etc/passwd",
        "/static/../../etc/passwd",
        "/static/..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static//etc/passwd",
        "/static/",
        "/static/board.js/../../../etc/passwd",
        "/api/../../etc/passwd",
        "/api/scalars/../../../etc/passwd",
        "/etc/passwd",
        "/index.html/../../etc/passwd",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        response r;
        CHECK_EQ(http_get(s.port, paths[i], NULL, &r), 0);
        if (r.code != 404 && r.code != 400)
            TEST_FAIL_("GET %s: HTTP %d, want 404 or 400", paths[i], r.code);
        CHECK(!strstr(r.body, "root:"));
        response_free(&r);
    }
    char q[256];
    const char *runs[] = {"..",     "../run", "%2e%2e", "%2e%2e%2f%2e%2e%2fetc",
                          "/etc",   "run/..", "./run",  "",
                          "run%00", NULL};
    for (int i = 0; runs[i]; i++) {
        response r;
        snprintf(q, sizeof q, "/api/scalars?run=%s&tag=loss", runs[i]);
        CHECK_EQ(http_get(s.port, q, NULL, &r), 0);
        if (r.code != 404 && r.code != 400) TEST_FAIL_("GET %s: HTTP %d, want 404/400", q, r.code);
        CHECK(json_valid(r.body));
        response_free(&r);
    }
    response r;
    snprintf(q, sizeof q, "/api/scalars?run=../%s&tag=loss", base);
    CHECK_EQ(http_get(s.port, q, NULL, &r), 0);
    CHECK_EQ(r.code, 404);
    CHECK_CONTAINS(r.body, "unknown run");
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/scalars?run=run&tag=loss", NULL, &r), 0);
    CHECK_EQ(r.code, 200); /* the control: the real run is served */
    response_free(&r);
    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    remove_tree(outside);
    return 0;
}

static int only_get_and_head(void)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    response r;
    CHECK_EQ(http_raw(s.port,
                      "POST /api/runs HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                      "Content-Length: 2\r\n\r\n{}",
                      &r),
             0);
    CHECK_EQ(r.code, 405);
    CHECK_CONTAINS(r.head, "Allow: GET, HEAD");
    response_free(&r);
    CHECK_EQ(http_raw(s.port, "DELETE / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", &r), 0);
    CHECK_EQ(r.code, 405);
    response_free(&r);
    CHECK_EQ(http_raw(s.port, "HEAD / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_EQ(r.body_nbytes, 0);
    response_free(&r);
    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

static int token_is_required_when_set(void)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, "t0ken-abc"), 0);
    CHECK_CONTAINS(s.url, "/?token=t0ken-abc");
    response r;
    const char *denied[][2] = {{"/", NULL},
                               {"/api/runs", NULL},
                               {"/static/board.js", NULL},
                               {"/api/runs?token=t0ken-abd", NULL},
                               {"/api/runs?token=t0ken-ab", NULL},
                               {"/api/runs?token=", NULL},
                               {"/api/runs?token=t0ken-abc%00", NULL},
                               {"/api/runs", "Cookie: moka_board_token=wrong\r\n"},
                               {"/api/runs", "Authorization: token t0ken-abcd\r\n"}};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        CHECK_EQ(http_get(s.port, denied[i][0], denied[i][1], &r), 0);
        if (r.code != 403) TEST_FAIL_("GET %s: HTTP %d, want 403", denied[i][0], r.code);
        CHECK_CONTAINS(r.body, "a valid token is required");
        response_free(&r);
    }
    CHECK_EQ(http_get(s.port, "/?token=t0ken-abc", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_CONTAINS(r.head, "Set-Cookie: moka_board_token=t0ken-abc; Path=/; HttpOnly");
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/static/board.js", "Cookie: moka_board_token=t0ken-abc\r\n", &r), 0);
    CHECK_EQ(r.code, 200);
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/runs", "Authorization: token t0ken-abc\r\n", &r), 0);
    CHECK_EQ(r.code, 200);
    response_free(&r);
    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

static int generates_a_token_beyond_loopback(void)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    server s;
    CHECK_EQ(server_start(&s, dir, "0.0.0.0", NULL), 0);
    const char *t = strstr(s.url, "?token=");
    CHECK(t);
    t += 7;
    CHECK_EQ(strlen(t), 48); /* 24 random bytes in hex */
    char path[128];
    response r;
    CHECK_EQ(http_get(s.port, "/api/runs", NULL, &r), 0);
    CHECK_EQ(r.code, 403);
    response_free(&r);
    snprintf(path, sizeof path, "/api/runs?token=%s", t);
    CHECK_EQ(http_get(s.port, path, NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    response_free(&r);
    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

/* Without a token on loopback, a page elsewhere could still reach the server through DNS
 * rebinding (its own name resolving to 127.0.0.1); the Host header gives that away. */
static int loopback_refuses_foreign_host_names(void)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    response r;
    char req[256];
    const char *hosts[] = {"evil.example", "evil.example:6006", "127.0.0.1.evil.example",
                           "10.0.0.1"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        snprintf(req, sizeof req, "GET /api/runs HTTP/1.0\r\nHost: %s\r\n\r\n", hosts[i]);
        CHECK_EQ(http_raw(s.port, req, &r), 0);
        if (r.code != 403) TEST_FAIL_("Host %s: HTTP %d, want 403", hosts[i], r.code);
        response_free(&r);
    }
    const char *fine[] = {"localhost", "localhost:6006", "127.0.0.1", "127.0.0.2:80", "[::1]:6006"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        snprintf(req, sizeof req, "GET /api/runs HTTP/1.0\r\nHost: %s\r\n\r\n", fine[i]);
        CHECK_EQ(http_raw(s.port, req, &r), 0);
        if (r.code != 200) TEST_FAIL_("Host %s: HTTP %d, want 200", fine[i], r.code);
        response_free(&r);
    }
    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

/* Tags come from files: quotes, control characters and bytes that are not UTF-8 must still make
 * well-formed JSON. A damaged record stops that file but not the server. */
static int odd_tags_and_damaged_files(void)
{
    moka_err err = {0};
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    moka_tfevents *w;
    CHECK_OK(moka_tfevents_open(dir, "odd", &w, &err));
    CHECK_OK(moka_tfevents_scalar(w, 1, "q\"uo\\te\x01</script>\xff\xc3\xa9", 1.0, &err));
    CHECK_OK(moka_tfevents_scalar(w, 2, "nan", NAN, &err));
    char path[512];
    snprintf(path, sizeof path, "%s", moka_tfevents_path(w));
    moka_tfevents_close(w);
    CHECK_OK(moka_tfevents_open(dir, "damaged", &w, &err));
    CHECK_OK(write_losses(w, 0, 4, &err));
    snprintf(path, sizeof path, "%s", moka_tfevents_path(w));
    moka_tfevents_close(w);
    /* Flip a byte inside the last record's data: the first three losses still read. */
    FILE *f = fopen(path, "r+b");
    CHECK(f);
    CHECK_EQ(fseek(f, -8, SEEK_END), 0);
    const int c = fgetc(f);
    CHECK_EQ(fseek(f, -8, SEEK_END), 0);
    fputc(c ^ 0x40, f);
    fclose(f);
    moka_log_set(quiet, NULL, MOKA_LOG_INFO);
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    response r;
    CHECK_EQ(http_get(s.port, "/api/runs", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    if (!json_valid(r.body)) TEST_FAIL_("invalid JSON: %s", r.body);
    CHECK_CONTAINS(r.body, "\"q\\\"uo\\\\te\\u0001\\u003c/script\\u003e\\ufffd\xc3\xa9\"");
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/scalars?run=odd&tag=nan", NULL, &r), 0);
    CHECK(json_valid(r.body));
    CHECK_CONTAINS(r.body, ",null]");
    response_free(&r);
    int64_t steps[8];
    double values[8];
    CHECK_EQ(http_get(s.port, "/api/scalars?run=damaged&tag=loss", NULL, &r), 0);
    CHECK_EQ(r.code, 200);
    CHECK_EQ(parse_scalars(r.body, steps, values, 8), 3);
    response_free(&r);
    CHECK_EQ(http_get(s.port, "/api/scalars?run=damaged&tag=loss", NULL, &r), 0);
    CHECK_EQ(parse_scalars(r.body, steps, values, 8), 3); /* and stays so */
    response_free(&r);
    CHECK_EQ(server_stop(&s), MOKA_OK);
    moka_log_set(NULL, NULL, MOKA_LOG_INFO);
    remove_tree(dir);
    return 0;
}

static int rejects_bad_options_with_messages(void)
{
    moka_err err = {0};
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    moka_board_opts o = {.logdir = "/nonexistent/moka_logs"};
    CHECK_STATUS(moka_board_serve(&o, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "log directory '/nonexistent/moka_logs'");
    o.logdir = MOKA_SOURCE_DIR "/CMakeLists.txt";
    CHECK_STATUS(moka_board_serve(&o, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "is not a directory");
    o.logdir = NULL;
    CHECK_STATUS(moka_board_serve(&o, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "a log directory is required");
    o = (moka_board_opts){.logdir = dir, .port = 70000};
    CHECK_STATUS(moka_board_serve(&o, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "port must be in [0, 65535], got 70000");
    o = (moka_board_opts){.logdir = dir, .token = ""};
    CHECK_STATUS(moka_board_serve(&o, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "token must be 1 to 79 characters");
    o = (moka_board_opts){.logdir = dir, .token = "a b"};
    CHECK_STATUS(moka_board_serve(&o, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "token may not contain spaces");
    o = (moka_board_opts){.logdir = dir, .host = "no.such.host.invalid"};
    CHECK_STATUS(moka_board_serve(&o, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "cannot resolve host 'no.such.host.invalid'");
    /* A port already taken. */
    server s;
    CHECK_EQ(server_start(&s, dir, NULL, NULL), 0);
    o = (moka_board_opts){.logdir = dir, .port = s.port};
    CHECK_STATUS(moka_board_serve(&o, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "cannot listen on 127.0.0.1 port");
    CHECK_CONTAINS(err.msg, "in use");
    CHECK_EQ(server_stop(&s), MOKA_OK);
    remove_tree(dir);
    return 0;
}

MOKA_TEST_MAIN(serves_runs_and_scalars_as_json, reads_on_as_files_grow_and_appear,
               logdir_itself_is_the_run_named_dot, histograms_graph_and_images,
               serves_the_page_and_its_assets, paths_cannot_escape_the_logdir, only_get_and_head,
               token_is_required_when_set, generates_a_token_beyond_loopback,
               loopback_refuses_foreign_host_names, odd_tags_and_damaged_files,
               rejects_bad_options_with_messages)
