/* tests/unit/test_tfevents.c -- TensorBoard event files (src/io/tfevents.c, src/io/crc32c.c).
 *
 * Independent checks:
 *   - CRC32C against RFC 3720's vectors and a bit-by-bit CRC written here;
 *   - every writer function's file is dumped by tests/ref/read_tfevents.py (a hand-written
 *     TFRecord + protobuf wire-format + PNG decoder in Python) and the dump must equal the one
 *     built here from the values written (doubles compared by their bits);
 *   - the same files read back through moka_tfevents_read with every field compared;
 *   - histogram buckets computed here by a linear scan over limits built here, spot-checked
 *     against 1e-12 * 1.1^k from pow();
 *   - records framed here by hand (a TensorFlow 2 style tensor scalar) read by moka's reader;
 *   - a flipped byte anywhere is an error in both readers; a cut anywhere keeps all complete
 *     records before it.
 */
#include <float.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/crc32c.h"
#include "io/tfevents.h"
#include "test.h"

#define READER MOKA_SOURCE_DIR "/tests/ref/read_tfevents.py"

/* ---- scratch directory, removed at exit ------------------------------------------------------ */

static char g_dir[64];

static void remove_dir(void)
{
    if (!g_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

static const char *scratch(void)
{
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "tfevents_test_XXXXXX");
        if (!mkdtemp(g_dir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(remove_dir);
    }
    return g_dir;
}

/* ---- text buffers ---------------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) MOKA_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) exit(1);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_free(sbuf *b)
{
    free(b->s);
    *b = (sbuf){0};
}

static unsigned long long dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return (unsigned long long)u;
}

static unsigned fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Runs the Python reader on path (flags e.g. "--wall") and returns its exit status; *out gets
 * stdout and stderr together. */
static int python_dump(const char *flags, const char *path, sbuf *out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s '%s' 2>&1", READER, flags, path);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char chunk[4096];
    size_t n;
    sb_printf(out, "%s", "");
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) sb_printf(out, "%.*s", (int)n, chunk);
    const int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CHECK_DUMP(path, want)                                                                     \
    do {                                                                                           \
        sbuf got_ = {0};                                                                           \
        const int rc_ = python_dump("", (path), &got_);                                            \
        if (rc_ != 0 || strcmp(got_.s, (want)) != 0) {                                             \
            fprintf(stderr, "python reader (exit %d):\n%.3000s\nexpected:\n%.3000s\n", rc_,        \
                    got_.s, (want));                                                               \
            sb_free(&got_);                                                                        \
            TEST_FAIL_("dumps differ for %s", (path));                                             \
        }                                                                                          \
        sb_free(&got_);                                                                            \
    } while (0)

/* ---- a sink that records everything as text, in the dump's format ---------------------------- */

typedef struct {
    sbuf text;
    int records; /* callbacks seen */
    double wall_min, wall_max;
    unsigned char *png; /* the last image's bytes */
    int64_t png_nbytes;
} collected;

static void see_wall(collected *c, double wt)
{
    if (c->records == 0 || wt < c->wall_min) c->wall_min = wt;
    if (c->records == 0 || wt > c->wall_max) c->wall_max = wt;
}

static void on_scalar(void *user, const char *tag, int64_t step, double wt, double value)
{
    collected *c = user;
    see_wall(c, wt);
    c->records++;
    sb_printf(&c->text, "event %lld scalar %s %08x\n", (long long)step, tag, fbits((float)value));
}

static void on_histogram(void *user, const char *tag, int64_t step, double wt, double mn, double mx,
                         double num, double sum, double sum_sq, int nb, const double *limit,
                         const double *count)
{
    collected *c = user;
    see_wall(c, wt);
    c->records++;
    sb_printf(&c->text, "event %lld histo %s %016llx %016llx %016llx %016llx %016llx %d\n",
              (long long)step, tag, dbits(mn), dbits(mx), dbits(num), dbits(sum), dbits(sum_sq),
              nb);
    for (int i = 0; i < nb; i++)
        sb_printf(&c->text, "  bucket %016llx %016llx\n", dbits(limit[i]), dbits(count[i]));
}

static void on_graph(void *user, const moka_graph_node *nodes, int n)
{
    collected *c = user;
    c->records++;
    sb_printf(&c->text, "event 0 graph producer=22 nodes=%d\n", n);
    for (int i = 0; i < n; i++) {
        sb_printf(&c->text, "  node %s %s inputs=", nodes[i].name, nodes[i].op);
        for (int j = 0; j < nodes[i].num_inputs; j++)
            sb_printf(&c->text, "%s%s", j ? "," : "", nodes[i].inputs[j]);
        sb_printf(&c->text, "%s attrs=", nodes[i].num_inputs ? "" : "-");
        for (int j = 0; j < nodes[i].num_attrs; j++)
            sb_printf(&c->text, "%s%s=%lld", j ? "," : "", nodes[i].attr_keys[j],
                      (long long)nodes[i].attr_values[j]);
        sb_printf(&c->text, "%s\n", nodes[i].num_attrs ? "" : "-");
    }
}

static void on_image(void *user, const char *tag, int64_t step, int h, int w,
                     const unsigned char *png, int64_t nbytes)
{
    collected *c = user;
    c->records++;
    sb_printf(&c->text, "event %lld image %s %d %d\n", (long long)step, tag, h, w);
    free(c->png);
    c->png = malloc((size_t)nbytes);
    memcpy(c->png, png, (size_t)nbytes);
    c->png_nbytes = nbytes;
}

static moka_tfevents_sink sink_for(collected *c)
{
    return (moka_tfevents_sink){.user = c,
                                .scalar = on_scalar,
                                .histogram = on_histogram,
                                .graph = on_graph,
                                .image = on_image};
}

static void collected_free(collected *c)
{
    sb_free(&c->text);
    free(c->png);
    *c = (collected){0};
}

/* ---- bytes of files -------------------------------------------------------------------------- */

static unsigned char *slurp(const char *path, long *nbytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *nbytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*nbytes + 1);
    if (fread(b, 1, (size_t)*nbytes, f) != (size_t)*nbytes) *nbytes = -1;
    fclose(f);
    return b;
}

static int spit(const char *path, const unsigned char *b, long nbytes)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const size_t w = nbytes ? fwrite(b, 1, (size_t)nbytes, f) : 0;
    fclose(f);
    return w == (size_t)nbytes ? 0 : -1;
}

/* Record boundaries of a TFRecord file, from the length fields alone: starts[i], and the end. */
static int record_starts(const unsigned char *b, long nbytes, long *starts, int max)
{
    int n = 0;
    long pos = 0;
    while (pos + 16 <= nbytes && n < max) {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | b[pos + i];
        starts[n++] = pos;
        pos += 16 + (long)len;
    }
    starts[n] = pos;
    return n;
}

/* ---- CRC32C ---------------------------------------------------------------------------------- */

static uint32_t crc32c_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static int crc32c_matches_known_vectors(void)
{
    CHECK_EQ(moka_crc32c("123456789", 9), 0xE3069283u);
    unsigned char b[64];
    memset(b, 0, 32);
    CHECK_EQ(moka_crc32c(b, 32), 0x8A9136AAu); /* RFC 3720 B.4: 32 bytes of zeros */
    memset(b, 0xFF, 32);
    CHECK_EQ(moka_crc32c(b, 32), 0x62A8AB43u); /* 32 bytes of ones */
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
    CHECK_EQ(moka_crc32c(b, 32), 0x46DD794Eu); /* incrementing */
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)(31 - i);
    CHECK_EQ(moka_crc32c(b, 32), 0x113FDB5Cu); /* decrementing */
    CHECK_EQ(moka_crc32c("", 0), 0u);
    /* Every length and alignment against the bit-by-bit definition, and split points. */
    unsigned char r[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof r; i++)
        r[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof r; n += 7) {
            const uint32_t want = crc32c_bitwise(r + off, n);
            CHECK_EQ(moka_crc32c(r + off, n), want);
            CHECK_EQ(moka_crc32c_extend(moka_crc32c(r + off, n / 3), r + off + n / 3, n - n / 3),
                     want);
        }
    /* The TFRecord mask, written out as its definition, and its inverse. */
    const uint32_t c = 0xE3069283u;
    CHECK_EQ(moka_crc32c_mask(c), (uint32_t)(((c >> 15) | (c << 17)) + 0xa282ead8u));
    CHECK_EQ(moka_crc32c_mask(0), 0xa282ead8u);
    for (uint32_t v = 1; v < 0xF0000000u; v = v * 3 + 7)
        CHECK_EQ(moka_crc32c_unmask(moka_crc32c_mask(v)), v);
    return 0;
}

/* ---- file name and framing ------------------------------------------------------------------- */

static int file_is_named_and_starts_with_file_version(void)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/logs/a", scratch());
    const time_t t0 = time(NULL);
    CHECK_OK(moka_tfevents_open(dir, "run1", &w, &err));
    const time_t t1 = time(NULL);
    const char *path = moka_tfevents_path(w);

    char host[256] = {0};
    CHECK(gethostname(host, sizeof host - 1) == 0);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s/run1/events.out.tfevents.", dir);
    CHECK(strncmp(path, prefix, strlen(prefix)) == 0);
    const char *secs = path + strlen(prefix);
    for (int i = 0; i < 10; i++) CHECK(secs[i] >= '0' && secs[i] <= '9');
    CHECK_EQ(secs[10], '.');
    const long long s = strtoll(secs, NULL, 10);
    CHECK(s >= (long long)t0 && s <= (long long)t1);
    CHECK(strcmp(secs + 11, host) == 0);

    /* The first record, byte by byte: an Event with wall_time (field 1, fixed64) and
     * file_version (field 3) "brain.Event:2", framed with masked CRC32Cs computed here. */
    long n = 0;
    unsigned char *b = slurp(path, &n);
    CHECK(b);
    const uint64_t len =
        (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24;
    CHECK_EQ(n, (long)len + 16);
    for (int i = 4; i < 8; i++) CHECK_EQ(b[i], 0);
    uint32_t hc = crc32c_bitwise(b, 8), dc = crc32c_bitwise(b + 12, len);
    hc = ((hc >> 15) | (hc << 17)) + 0xa282ead8u;
    dc = ((dc >> 15) | (dc << 17)) + 0xa282ead8u;
    CHECK_EQ(b[8] | b[9] << 8 | b[10] << 16 | (uint32_t)b[11] << 24, hc);
    CHECK_EQ(b[12 + len] | b[13 + len] << 8 | b[14 + len] << 16 | (uint32_t)b[15 + len] << 24, dc);
    CHECK_EQ(len, 9 + 2 + 13);
    CHECK_EQ(b[12], 0x09); /* field 1, fixed64 */
    double wt;
    memcpy(&wt, b + 13, 8);
    CHECK(wt >= (double)t0 - 1 && wt <= (double)t1 + 1);
    CHECK_EQ(b[21], 0x1a); /* field 3, length-delimited */
    CHECK_EQ(b[22], 13);
    CHECK(memcmp(b + 23, "brain.Event:2", 13) == 0);
    free(b);

    CHECK_DUMP(path, "event 0 file_version brain.Event:2\n");
    sbuf out = {0};
    CHECK_EQ(python_dump("--wall", path, &out), 0);
    const char *wl = strstr(out.s, "wall ");
    CHECK(wl);
    const double pwt = strtod(wl + 5, NULL);
    CHECK(pwt >= (double)t0 - 1 && pwt <= (double)t1 + 1);
    sb_free(&out);
    moka_tfevents_close(w);
    return 0;
}

static int second_open_gets_its_own_file(void)
{
    moka_err err = {0};
    char dir[128];
    snprintf(dir, sizeof dir, "%s/twice", scratch());
    /* Opens within one second must not share a file; retried if the second ticks between. */
    for (int attempt = 0; attempt < 5; attempt++) {
        moka_tfevents *a = NULL, *b = NULL, *c = NULL;
        CHECK_OK(moka_tfevents_open(dir, "r", &a, &err));
        CHECK_OK(moka_tfevents_open(dir, "r", &b, &err));
        CHECK_OK(moka_tfevents_open(dir, "r", &c, &err));
        const char *pa = moka_tfevents_path(a), *pb = moka_tfevents_path(b);
        const char *pc = moka_tfevents_path(c);
        const size_t la = strlen(pa);
        const int same_second = strncmp(pa, pc, la) == 0;
        CHECK(strcmp(pa, pb) != 0 && strcmp(pb, pc) != 0);
        CHECK(strstr(pb, "/r/events.out.tfevents."));
        CHECK_OK(moka_tfevents_scalar(a, 1, "x", 1.0, &err));
        CHECK_OK(moka_tfevents_scalar(b, 2, "x", 2.0, &err));
        if (same_second) {
            CHECK(strncmp(pb, pa, la) == 0 && strcmp(pb + la, ".1") == 0);
            CHECK(strcmp(pc + la, ".2") == 0);
        }
        CHECK_DUMP(pa, "event 0 file_version brain.Event:2\nevent 1 scalar x 3f800000\n");
        CHECK_DUMP(pb, "event 0 file_version brain.Event:2\nevent 2 scalar x 40000000\n");
        moka_tfevents_close(a);
        moka_tfevents_close(b);
        moka_tfevents_close(c);
        if (same_second) return 0;
    }
    TEST_FAIL_("never opened three files within one second");
}

/* ---- scalars --------------------------------------------------------------------------------- */

static int scalars_round_trip(void)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/scalars", scratch());
    const double t0 = (double)time(NULL);
    CHECK_OK(moka_tfevents_open(dir, NULL, &w, &err));
    static const struct {
        int64_t step;
        const char *tag;
        double v;
    } s[] = {
        {0, "train/loss", 2.302585},
        {10, "train/loss", 0.75},
        {10, "lr", 0.01},
        {20, "test/accuracy", 0.0},
        {(int64_t)1 << 40, "big step", -1e30},
        {-3, "neg", 1e-40},
    };
    const int n = (int)(sizeof s / sizeof s[0]);
    sbuf want = {0};
    sb_printf(&want, "event 0 file_version brain.Event:2\n");
    for (int i = 0; i < n; i++) {
        CHECK_OK(moka_tfevents_scalar(w, s[i].step, s[i].tag, s[i].v, &err));
        sb_printf(&want, "event %lld scalar %s %08x\n", (long long)s[i].step, s[i].tag,
                  fbits((float)s[i].v));
    }
    const double t1 = (double)time(NULL);
    CHECK_DUMP(moka_tfevents_path(w), want.s);

    collected c = {0};
    const moka_tfevents_sink sink = sink_for(&c);
    int64_t off = 0;
    CHECK_OK(moka_tfevents_read(moka_tfevents_path(w), &off, &sink, &err));
    CHECK_EQ(c.records, n);
    CHECK(strcmp(c.text.s, strchr(want.s, '\n') + 1) == 0);
    CHECK(c.wall_min >= t0 - 1 && c.wall_max <= t1 + 1);
    struct stat st;
    CHECK(stat(moka_tfevents_path(w), &st) == 0);
    CHECK_EQ(off, st.st_size);
    collected_free(&c);
    sb_free(&want);
    moka_tfevents_close(w);
    return 0;
}

/* ---- histograms ------------------------------------------------------------------------------ */

/* TensorFlow's default limits, built here from the definition. */
static int build_limits(double *lim)
{
    double pos[1000];
    int np = 0;
    for (double v = 1e-12; v < 1e20; v *= 1.1) pos[np++] = v;
    int n = 0;
    lim[n++] = -DBL_MAX;
    for (int k = np - 1; k >= 0; k--) lim[n++] = -pos[k];
    lim[n++] = 0.0;
    for (int k = 0; k < np; k++) lim[n++] = pos[k];
    lim[n++] = DBL_MAX;
    return n;
}

/* The dump of one histogram of values[0..n), binned by a linear scan over the limits (bucket i:
 * lim[i-1] <= v < lim[i]) and collapsed as EncodeToProto(preserve_zero_buckets = false). */
static void expected_histogram(sbuf *want, int64_t step, const char *tag, const float *v, int n)
{
    static double lim[2000], cnt[2000];
    const int nl = build_limits(lim);
    memset(cnt, 0, sizeof cnt);
    double mn = DBL_MAX, mx = -DBL_MAX, num = 0, sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        const double x = v[i];
        if (isnan(x) || isinf(x)) continue;
        for (int b = 0; b < nl; b++)
            if ((b == 0 || lim[b - 1] <= x) && x < lim[b]) {
                cnt[b] += 1;
                break;
            }
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        num += 1;
        sum += x;
        sq += x * x;
    }
    sbuf rows = {0};
    sb_printf(&rows, "%s", "");
    int nb = 0;
    for (int b = 0; b < nl;) {
        if (cnt[b] > 0) {
            sb_printf(&rows, "  bucket %016llx %016llx\n", dbits(lim[b]), dbits(cnt[b]));
            b++;
        } else {
            int e = b;
            while (e + 1 < nl && cnt[e + 1] == 0) e++;
            sb_printf(&rows, "  bucket %016llx %016llx\n", dbits(lim[e]), dbits(0.0));
            b = e + 1;
        }
        nb++;
    }
    sb_printf(want, "event %lld histo %s %016llx %016llx %016llx %016llx %016llx %d\n%s",
              (long long)step, tag, dbits(mn), dbits(mx), dbits(num), dbits(sum), dbits(sq), nb,
              rows.s);
    sb_free(&rows);
}

static int histogram_limits_are_tensorflows(void)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/limits", scratch());
    CHECK_OK(moka_tfevents_open(dir, NULL, &w, &err));
    const double *lim = NULL;
    const int n = moka_tfevents_bucket_limits(w, &lim);
    /* 1e-12 * 1.1^k < 1e20 for k = 0..773 (log(1e32) / log(1.1) = 773.08): 774 positive limits. */
    CHECK_EQ(n, 2 * 774 + 3);
    CHECK(lim[0] == -DBL_MAX && lim[n - 1] == DBL_MAX && lim[775] == 0.0);
    CHECK(lim[776] == 1e-12 && lim[774] == -1e-12);
    for (int k = 0; k < 774; k++) {
        CHECK_NEAR(lim[776 + k] / (1e-12 * pow(1.1, k)), 1.0, 1e-12);
        CHECK(lim[774 - k] == -lim[776 + k]);
    }
    CHECK(lim[1549] < 1e20 && lim[1549] * 1.1 >= 1e20);
    for (int i = 1; i < n; i++) CHECK(lim[i] > lim[i - 1]);
    /* Bit-identical to the table built here from the definition. */
    static double mine[2000];
    CHECK_EQ(build_limits(mine), n);
    for (int i = 0; i < n; i++) CHECK(mine[i] == lim[i]);
    moka_tfevents_close(w);
    return 0;
}

static int histograms_round_trip(void)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/histo", scratch());
    CHECK_OK(moka_tfevents_open(dir, "r", &w, &err));
    sbuf want = {0};
    sb_printf(&want, "event 0 file_version brain.Event:2\n");

    /* A hand-checked case: -1 falls in [-1.0093, -0.9175), 0 in [0, 1e-12), 0.5 twice in
     * [0.4710, 0.5181) and 3 in [2.8787, 3.1666): 4 non-empty buckets and 5 collapsed runs. */
    const float small[] = {-1.0f, 0.0f, 0.5f, 0.5f, 3.0f};
    CHECK_OK(moka_tfevents_histogram(w, 5, "small", small, 5, &err));
    expected_histogram(&want, 5, "small", small, 5);
    CHECK(
        strstr(want.s, "4008000000000000 4014000000000000 4008000000000000 4025000000000000 9\n"));

    /* Weights-like values, with limits hit exactly (float values of some limits), subnormals,
     * huge magnitudes, and non-finite values that are left out. */
    enum { N = 3000 };
    static float v[N];
    uint32_t x = 7;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        const double u = ((x >> 8) + 0.5) / 16777216.0;
        v[i] = (float)((u - 0.5) * 0.2 * (1 + i % 7));
    }
    const double *lim = NULL;
    moka_tfevents_bucket_limits(w, &lim);
    for (int i = 0; i < 40; i++) v[i] = (float)lim[700 + 20 * i]; /* near limits, both signs */
    v[40] = 1e-45f;
    v[41] = -1e-45f;
    v[42] = 3e38f;
    v[43] = -3e38f;
    v[44] = 0.0f;
    v[45] = -0.0f;
    v[46] = NAN;
    v[47] = INFINITY;
    v[48] = -INFINITY;
    CHECK_OK(moka_tfevents_histogram(w, 100, "conv1/weights", v, N, &err));
    expected_histogram(&want, 100, "conv1/weights", v, N);

    /* Nothing finite: TensorFlow's empty histogram, one bucket {DBL_MAX: 0}. */
    CHECK_OK(moka_tfevents_histogram(w, 101, "empty", NULL, 0, &err));
    expected_histogram(&want, 101, "empty", NULL, 0);
    CHECK(strstr(want.s, "histo empty 7fefffffffffffff ffefffffffffffff 0000000000000000 "
                         "0000000000000000 0000000000000000 1\n  bucket 7fefffffffffffff "
                         "0000000000000000\n"));
    const float bad[] = {NAN, INFINITY};
    CHECK_OK(moka_tfevents_histogram(w, 102, "nonfinite", bad, 2, &err));
    expected_histogram(&want, 102, "nonfinite", bad, 0);

    CHECK_DUMP(moka_tfevents_path(w), want.s);
    collected c = {0};
    const moka_tfevents_sink sink = sink_for(&c);
    int64_t off = 0;
    CHECK_OK(moka_tfevents_read(moka_tfevents_path(w), &off, &sink, &err));
    CHECK_EQ(c.records, 4);
    CHECK(strcmp(c.text.s, strchr(want.s, '\n') + 1) == 0);
    collected_free(&c);
    sb_free(&want);
    moka_tfevents_close(w);
    return 0;
}

/* ---- images ---------------------------------------------------------------------------------- */

static int images_round_trip(void)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/images", scratch());
    CHECK_OK(moka_tfevents_open(dir, "r", &w, &err));
    sbuf want = {0};
    sb_printf(&want, "event 0 file_version brain.Event:2\n");

    /* RGB 4x5, (C, H, W) floats: out-of-range and NaN values clamp, others round to nearest. */
    enum { C = 3, H = 4, W = 5 };
    static float px[C * H * W];
    for (int i = 0; i < C * H * W; i++) px[i] = (float)((i * 37) % 256) / 255.0f;
    px[0] = -0.5f;
    px[1] = 1.5f;
    px[2] = NAN;
    px[3] = 0.5f;         /* 127.5 rounds up to 128 */
    px[4] = 0.2f / 255.f; /* 0.2 rounds down to 0 */
    CHECK_OK(moka_tfevents_image(w, 3, "input/0", px, C, H, W, &err));
    sb_printf(&want, "event 3 image input/0 %d %d %d png %d %d %d ", H, W, C, W, H, C);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) {
                const float f = px[(c * H + y) * W + x];
                int q = f != f || f <= 0 ? 0 : f >= 1 ? 255 : (int)lround(f * 255.0);
                if (c == 0 && y == 0 && x == 3) CHECK_EQ(q, 128);
                sb_printf(&want, "%02x", q);
            }
    sb_printf(&want, "\n");

    /* Grayscale 2x3. */
    const float g[6] = {0.0f, 1.0f, 2.0f / 255, 100.0f / 255, 254.0f / 255, 0.25f};
    CHECK_OK(moka_tfevents_image(w, 4, "gray", g, 1, 2, 3, &err));
    sb_printf(&want, "event 4 image gray 2 3 1 png 3 2 1 00ff0264fe40\n");
    CHECK_DUMP(moka_tfevents_path(w), want.s);

    collected col = {0};
    const moka_tfevents_sink sink = sink_for(&col);
    int64_t off = 0;
    CHECK_OK(moka_tfevents_read(moka_tfevents_path(w), &off, &sink, &err));
    CHECK_EQ(col.records, 2);
    CHECK(strcmp(col.text.s, "event 3 image input/0 4 5\nevent 4 image gray 2 3\n") == 0);
    /* The PNG the reader hands out is the one written: decode it independently. */
    char png_path[160];
    snprintf(png_path, sizeof png_path, "%s/gray.png", scratch());
    CHECK_EQ(spit(png_path, col.png, (long)col.png_nbytes), 0);
    sbuf got = {0};
    CHECK_EQ(python_dump("--png", png_path, &got), 0);
    CHECK(strcmp(got.s, "png 3 2 1 00ff0264fe40\n") == 0);
    sb_free(&got);
    collected_free(&col);
    sb_free(&want);
    moka_tfevents_close(w);
    return 0;
}

/* ---- graph and session log ------------------------------------------------------------------- */

static int graph_round_trips(void)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/graph", scratch());
    CHECK_OK(moka_tfevents_open(dir, "r", &w, &err));
    const char *conv_in[] = {"mnist"};
    const char *conv_keys[] = {"num_output", "kernel_size", "stride"};
    const int64_t conv_vals[] = {20, 5, 1};
    const char *loss_in[] = {"ip2", "mnist"};
    const char *big_keys[] = {"neg", "huge"};
    const int64_t big_vals[] = {-7, (int64_t)1 << 50};
    const moka_graph_node nodes[] = {
        {"mnist", "Data", 0, NULL, 0, NULL, NULL},
        {"conv1", "Convolution", 1, conv_in, 3, conv_keys, conv_vals},
        {"scope/ip2", "InnerProduct", 1, (const char *const[]){"conv1"}, 2, big_keys, big_vals},
        {"loss", "SoftmaxWithLoss", 2, loss_in, 0, NULL, NULL},
    };
    CHECK_OK(moka_tfevents_graph(w, nodes, 4, &err));
    CHECK_OK(moka_tfevents_session_start(w, 1200, &err));
    CHECK_OK(moka_tfevents_graph(w, NULL, 0, &err));
    const char *want_graph = "event 0 graph producer=22 nodes=4\n"
                             "  node mnist Data inputs=- attrs=-\n"
                             "  node conv1 Convolution inputs=mnist "
                             "attrs=num_output=20,kernel_size=5,stride=1\n"
                             "  node scope/ip2 InnerProduct inputs=conv1 "
                             "attrs=neg=-7,huge=1125899906842624\n"
                             "  node loss SoftmaxWithLoss inputs=ip2,mnist attrs=-\n";
    sbuf want = {0};
    sb_printf(&want,
              "event 0 file_version brain.Event:2\n%sevent 1200 session_log 1\n"
              "event 0 graph producer=22 nodes=0\n",
              want_graph);
    CHECK_DUMP(moka_tfevents_path(w), want.s);

    collected c = {0};
    const moka_tfevents_sink sink = sink_for(&c);
    int64_t off = 0;
    CHECK_OK(moka_tfevents_read(moka_tfevents_path(w), &off, &sink, &err));
    CHECK_EQ(c.records, 2);
    sbuf want2 = {0};
    sb_printf(&want2, "%sevent 0 graph producer=22 nodes=0\n", want_graph);
    CHECK(strcmp(c.text.s, want2.s) == 0);
    sb_free(&want2);
    collected_free(&c);
    sb_free(&want);
    moka_tfevents_close(w);
    return 0;
}

/* ---- a mixed file for damage tests ----------------------------------------------------------- */

static int write_mixed(const char *run, char *path, size_t cap, int *nrecords)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    CHECK_OK(moka_tfevents_open(scratch(), run, &w, &err));
    const float v[] = {0.1f, -0.2f, 0.3f, 4.0f};
    const float px[4] = {0, 0.25f, 0.5f, 1};
    const char *in[] = {"a"};
    const moka_graph_node nodes[] = {{"a", "Input", 0, NULL, 0, NULL, NULL},
                                     {"b", "ReLU", 1, in, 0, NULL, NULL}};
    CHECK_OK(moka_tfevents_scalar(w, 1, "loss", 0.5, &err));
    CHECK_OK(moka_tfevents_histogram(w, 1, "w", v, 4, &err));
    CHECK_OK(moka_tfevents_graph(w, nodes, 2, &err));
    CHECK_OK(moka_tfevents_image(w, 2, "img", px, 1, 2, 2, &err));
    CHECK_OK(moka_tfevents_scalar(w, 2, "loss", 0.25, &err));
    snprintf(path, cap, "%s", moka_tfevents_path(w));
    moka_tfevents_close(w);
    *nrecords = 6;
    return 0;
}

/* Records (not counting file_version) that a sink sees before record r: the data records. */
static int flipped_byte_is_detected_anywhere(void)
{
    moka_err err = {0};
    char path[256], bad[300];
    int nrec = 0;
    if (write_mixed("flip", path, sizeof path, &nrec)) return 1;
    snprintf(bad, sizeof bad, "%s.bad", path);
    long n = 0;
    unsigned char *b = slurp(path, &n);
    CHECK(b && n > 0);
    long starts[16];
    CHECK_EQ(record_starts(b, n, starts, 15), nrec);
    CHECK_EQ(starts[nrec], n);
    int python_runs = 0;
    for (long pos = 0; pos < n; pos++) {
        int r = 0;
        while (starts[r + 1] <= pos) r++;
        b[pos] ^= 0x20;
        CHECK_EQ(spit(bad, b, n), 0);
        collected c = {0};
        const moka_tfevents_sink sink = sink_for(&c);
        int64_t off = 0;
        const moka_status st = moka_tfevents_read(bad, &off, &sink, &err);
        if (st != MOKA_ERR_IO)
            TEST_FAIL_("flip at byte %ld (record %d): status %s", pos, r, moka_status_name(st));
        CHECK_CONTAINS(err.msg, "CRC mismatch");
        char at[64];
        snprintf(at, sizeof at, "record at byte %ld:", starts[r]);
        CHECK_CONTAINS(err.msg, at);
        CHECK_EQ(off, starts[r]);
        CHECK_EQ(c.records, r > 0 ? r - 1 : 0); /* record 0 is file_version: no callback */
        collected_free(&c);
        /* The Python reader, at a few places in each record: length, its CRC, data, data CRC. */
        const long rel = pos - starts[r], len = starts[r + 1] - starts[r];
        if (rel == 3 || rel == 9 || rel == 12 + (len - 16) / 2 || rel == len - 2) {
            sbuf out = {0};
            CHECK_EQ(python_dump("", bad, &out), 1);
            CHECK_CONTAINS(out.s, "CRC mismatch");
            char at2[64];
            snprintf(at2, sizeof at2, "record at byte %ld", starts[r]);
            CHECK_CONTAINS(out.s, at2);
            sb_free(&out);
            python_runs++;
        }
        b[pos] ^= 0x20;
    }
    CHECK_EQ(python_runs, 4 * nrec);
    free(b);
    return 0;
}

static int truncated_tail_keeps_earlier_records(void)
{
    moka_err err = {0};
    char path[256], cut[300];
    int nrec = 0;
    if (write_mixed("cut", path, sizeof path, &nrec)) return 1;
    snprintf(cut, sizeof cut, "%s.cut", path);
    long n = 0;
    unsigned char *b = slurp(path, &n);
    long starts[16];
    CHECK_EQ(record_starts(b, n, starts, 15), nrec);
    collected full = {0};
    const moka_tfevents_sink fsink = sink_for(&full);
    int64_t off = 0;
    CHECK_OK(moka_tfevents_read(path, &off, &fsink, &err));
    for (long len = 0; len <= n; len++) {
        int complete = 0;
        while (complete < nrec && starts[complete + 1] <= len) complete++;
        CHECK_EQ(spit(cut, b, len), 0);
        collected c = {0};
        const moka_tfevents_sink sink = sink_for(&c);
        off = 0;
        CHECK_OK(moka_tfevents_read(cut, &off, &sink, &err));
        CHECK_EQ(off, starts[complete]);
        CHECK_EQ(c.records, complete > 0 ? complete - 1 : 0);
        /* What was delivered is a prefix of the full file's records. */
        CHECK(strncmp(full.text.s, c.text.s ? c.text.s : "", c.text.len) == 0);
        collected_free(&c);
        if (len == starts[3] + 5 || len == starts[5] + 20 || len == n - 1) {
            sbuf out = {0};
            CHECK_EQ(python_dump("", cut, &out), 0);
            char tail[64];
            snprintf(tail, sizeof tail, "\npartial_tail %ld\n", len - starts[complete]);
            CHECK_CONTAINS(out.s, tail);
            CHECK_CONTAINS(out.s, "event 1 scalar loss 3f000000\n");
            sb_free(&out);
        }
    }
    collected_free(&full);
    free(b);
    return 0;
}

/* A reader following a file that is still being written: it picks up where it stopped. */
static int reader_follows_a_growing_file(void)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/follow", scratch());
    CHECK_OK(moka_tfevents_open(dir, NULL, &w, &err));
    char path[256];
    snprintf(path, sizeof path, "%s", moka_tfevents_path(w));
    collected c = {0};
    const moka_tfevents_sink sink = sink_for(&c);
    int64_t off = 0;
    CHECK_OK(moka_tfevents_scalar(w, 1, "a", 1.0, &err));
    CHECK_OK(moka_tfevents_read(path, &off, &sink, &err));
    CHECK_EQ(c.records, 1);
    const int64_t off1 = off;
    CHECK_OK(moka_tfevents_read(path, &off, &sink, &err)); /* nothing new */
    CHECK_EQ(c.records, 1);
    CHECK_EQ(off, off1);
    CHECK_OK(moka_tfevents_scalar(w, 2, "a", 2.0, &err));
    CHECK_OK(moka_tfevents_scalar(w, 3, "a", 3.0, &err));
    CHECK_OK(moka_tfevents_read(path, &off, &sink, &err));
    CHECK_EQ(c.records, 3);
    CHECK(strcmp(c.text.s, "event 1 scalar a 3f800000\nevent 2 scalar a 40000000\n"
                           "event 3 scalar a 40400000\n") == 0);
    moka_tfevents_close(w);

    /* A record arriving in two pieces, appended by hand. */
    long n = 0;
    unsigned char *b = slurp(path, &n);
    const long rec = n - off1; /* the last two records, of equal size */
    FILE *f = fopen(path, "ab");
    CHECK(f);
    const int64_t before = off;
    /* Three bytes short of the first record: nothing new. */
    CHECK_EQ(fwrite(b + off1, 1, (size_t)(rec / 2 - 3), f), (size_t)(rec / 2 - 3));
    fflush(f);
    CHECK_OK(moka_tfevents_read(path, &off, &sink, &err));
    CHECK_EQ(off, before);
    CHECK_EQ(c.records, 3);
    /* The first record completed and five bytes of the second. */
    CHECK_EQ(fwrite(b + off1 + rec / 2 - 3, 1, 8, f), 8);
    fflush(f);
    CHECK_OK(moka_tfevents_read(path, &off, &sink, &err));
    CHECK_EQ(off, before + rec / 2);
    CHECK_EQ(c.records, 4);
    CHECK_EQ(fwrite(b + off1 + rec / 2 + 5, 1, (size_t)(rec / 2 - 5), f), (size_t)(rec / 2 - 5));
    fclose(f);
    CHECK_OK(moka_tfevents_read(path, &off, &sink, &err));
    CHECK_EQ(c.records, 5);
    CHECK_EQ(off, n + rec);
    free(b);
    collected_free(&c);
    return 0;
}

/* ---- records framed here by hand ------------------------------------------------------------- */

typedef struct {
    unsigned char b[512];
    size_t n;
} pbuf;

static void pb_varint(pbuf *p, uint64_t v)
{
    do {
        p->b[p->n++] = (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void pb_bytes(pbuf *p, int field, const void *d, size_t n)
{
    pb_varint(p, (uint64_t)field << 3 | 2);
    pb_varint(p, n);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void pb_fixed(pbuf *p, int field, const void *d, int nbytes)
{
    pb_varint(p, (uint64_t)field << 3 | (nbytes == 8 ? 1 : 5));
    memcpy(p->b + p->n, d, (size_t)nbytes); /* little-endian host, as the test machines are */
    p->n += (size_t)nbytes;
}

static void frame(FILE *f, const pbuf *data)
{
    unsigned char h[12], t[4];
    for (int i = 0; i < 8; i++) h[i] = (unsigned char)((uint64_t)data->n >> (8 * i));
    uint32_t c = crc32c_bitwise(h, 8);
    c = ((c >> 15) | (c << 17)) + 0xa282ead8u;
    for (int i = 0; i < 4; i++) h[8 + i] = (unsigned char)(c >> (8 * i));
    c = crc32c_bitwise(data->b, data->n);
    c = ((c >> 15) | (c << 17)) + 0xa282ead8u;
    for (int i = 0; i < 4; i++) t[i] = (unsigned char)(c >> (8 * i));
    fwrite(h, 1, 12, f);
    fwrite(data->b, 1, data->n, f);
    fwrite(t, 1, 4, f);
}

/* Event { wall_time, step, summary { value { tag, metadata { plugin_data { "scalars" } },
 * tensor { dtype, tensor_shape {}, float_val | double_val | tensor_content } } } }. */
static void tensor_event(FILE *f, int64_t step, const char *tag, int dtype, int how, double v)
{
    pbuf t = {0}, shape = {0}, meta = {0}, plugin = {0}, val = {0}, sum = {0}, ev = {0};
    pb_varint(&t, 1 << 3);
    pb_varint(&t, (uint64_t)dtype);
    pb_bytes(&t, 2, shape.b, shape.n);
    const float fv = (float)v;
    if (how == 0) { /* packed typed field */
        if (dtype == 1)
            pb_bytes(&t, 5, &fv, 4);
        else
            pb_bytes(&t, 6, &v, 8);
    } else { /* raw tensor_content */
        if (dtype == 1)
            pb_bytes(&t, 4, &fv, 4);
        else
            pb_bytes(&t, 4, &v, 8);
    }
    pb_bytes(&plugin, 1, "scalars", 7);
    pb_bytes(&meta, 1, plugin.b, plugin.n);
    pb_bytes(&val, 1, tag, strlen(tag));
    pb_bytes(&val, 9, meta.b, meta.n);
    pb_bytes(&val, 8, t.b, t.n);
    pb_bytes(&sum, 1, val.b, val.n);
    const double wt = 1700000000.25;
    pb_fixed(&ev, 1, &wt, 8);
    pb_varint(&ev, 2 << 3);
    pb_varint(&ev, (uint64_t)step);
    pb_bytes(&ev, 5, sum.b, sum.n);
    frame(f, &ev);
}

static int reads_tensor_scalars_as_tensorflow_2_writes_them(void)
{
    moka_err err = {0};
    char path[160];
    snprintf(path, sizeof path, "%s/events.out.tfevents.tf2", scratch());
    FILE *f = fopen(path, "wb");
    CHECK(f);
    tensor_event(f, 1, "epoch_loss", 1, 0, 0.5);
    tensor_event(f, 2, "epoch_loss", 1, 1, 0.25);
    tensor_event(f, 3, "lr", 2, 0, 0.1);
    tensor_event(f, 4, "lr", 2, 1, 0.05);
    /* A string tensor is not a scalar: skipped. */
    tensor_event(f, 5, "text", 7, 1, 0);
    fclose(f);
    collected c = {0};
    const moka_tfevents_sink sink = sink_for(&c);
    int64_t off = 0;
    CHECK_OK(moka_tfevents_read(path, &off, &sink, &err));
    CHECK_EQ(c.records, 4);
    CHECK(strcmp(c.text.s,
                 "event 1 scalar epoch_loss 3f000000\nevent 2 scalar epoch_loss 3e800000\n"
                 "event 3 scalar lr 3dcccccd\nevent 4 scalar lr 3d4ccccd\n") == 0);
    CHECK(c.wall_min == 1700000000.25 && c.wall_max == 1700000000.25);
    sbuf want = {0};
    sb_printf(&want, "event 1 tensor_scalar epoch_loss %016llx\n", dbits(0.5));
    sb_printf(&want, "event 2 tensor_scalar epoch_loss %016llx\n", dbits(0.25));
    sb_printf(&want, "event 3 tensor_scalar lr %016llx\n", dbits(0.1));
    sb_printf(&want, "event 4 tensor_scalar lr %016llx\n", dbits(0.05));
    sb_printf(&want, "event 5 value text\n");
    CHECK_DUMP(path, want.s);
    sb_free(&want);
    collected_free(&c);
    return 0;
}

/* ---- error paths ----------------------------------------------------------------------------- */

static int errors_are_statuses_with_messages(void)
{
    moka_err err = {0};
    moka_tfevents *w = NULL;
    CHECK_STATUS(moka_tfevents_open(scratch(), "a/../../x", &w, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "'..'");
    CHECK(w == NULL);
    CHECK_STATUS(moka_tfevents_open("", "r", &w, &err), MOKA_ERR_INVALID_ARG);
    char file[160];
    snprintf(file, sizeof file, "%s/plainfile", scratch());
    CHECK_EQ(spit(file, (const unsigned char *)"x", 1), 0);
    CHECK_STATUS(moka_tfevents_open(file, "r", &w, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "plainfile");
    CHECK_CONTAINS(err.msg, "not a directory");

    char dir[128];
    snprintf(dir, sizeof dir, "%s/errs", scratch());
    CHECK_OK(moka_tfevents_open(dir, "", &w, &err));
    CHECK_STATUS(moka_tfevents_scalar(w, 0, "", 1.0, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "empty tag");
    CHECK_STATUS(moka_tfevents_scalar(NULL, 0, "t", 1.0, &err), MOKA_ERR_INVALID_ARG);
    CHECK_STATUS(moka_tfevents_histogram(w, 0, "h", NULL, 3, &err), MOKA_ERR_INVALID_ARG);
    CHECK_STATUS(moka_tfevents_histogram(w, 0, "h", NULL, -1, &err), MOKA_ERR_INVALID_ARG);
    const float px[8] = {0};
    CHECK_STATUS(moka_tfevents_image(w, 0, "i", px, 2, 2, 2, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "C 1 or 3");
    CHECK_STATUS(moka_tfevents_image(w, 0, "i", px, 1, 0, 2, &err), MOKA_ERR_INVALID_ARG);
    const moka_graph_node noop[] = {{"a", NULL, 0, NULL, 0, NULL, NULL}};
    CHECK_STATUS(moka_tfevents_graph(w, noop, 1, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "no name or op");
    const moka_graph_node noin[] = {{"a", "X", 2, NULL, 0, NULL, NULL}};
    CHECK_STATUS(moka_tfevents_graph(w, noin, 1, &err), MOKA_ERR_INVALID_ARG);
    /* Nothing was written by the failed calls. */
    CHECK_DUMP(moka_tfevents_path(w), "event 0 file_version brain.Event:2\n");

    int64_t off = 0;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no/such/file", scratch());
    CHECK_STATUS(moka_tfevents_read(missing, &off, NULL, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "no/such/file: cannot open");
    off = 1000000;
    CHECK_STATUS(moka_tfevents_read(moka_tfevents_path(w), &off, NULL, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "offset 1000000 outside the file");
    off = -1;
    CHECK_STATUS(moka_tfevents_read(moka_tfevents_path(w), &off, NULL, &err), MOKA_ERR_INVALID_ARG);
    moka_tfevents_close(w);
    moka_tfevents_close(NULL);

    /* Garbage; and a well-framed record whose data is not an Event. */
    unsigned char junk[100];
    for (int i = 0; i < 100; i++) junk[i] = (unsigned char)(i * 97 + 13);
    snprintf(file, sizeof file, "%s/junk", scratch());
    CHECK_EQ(spit(file, junk, 100), 0);
    off = 0;
    CHECK_STATUS(moka_tfevents_read(file, &off, NULL, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "record at byte 0: length CRC mismatch");
    FILE *f = fopen(file, "wb");
    pbuf notev = {.b = {0xFF, 0xFF, 0xFF}, .n = 3};
    pbuf ok = {0};
    pb_varint(&ok, 2 << 3);
    pb_varint(&ok, 9);
    frame(f, &ok);
    frame(f, &notev);
    fclose(f);
    collected c = {0};
    const moka_tfevents_sink sink = sink_for(&c);
    off = 0;
    CHECK_STATUS(moka_tfevents_read(file, &off, &sink, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "record at byte 18: not a tensorflow.Event");
    CHECK_EQ(off, 18);
    collected_free(&c);
    return 0;
}

MOKA_TEST_MAIN(crc32c_matches_known_vectors, file_is_named_and_starts_with_file_version,
               second_open_gets_its_own_file, scalars_round_trip, histogram_limits_are_tensorflows,
               histograms_round_trip, images_round_trip, graph_round_trips,
               flipped_byte_is_detected_anywhere, truncated_tail_keeps_earlier_records,
               reader_follows_a_growing_file, reads_tensor_scalars_as_tensorflow_2_writes_them,
               errors_are_statuses_with_messages)
