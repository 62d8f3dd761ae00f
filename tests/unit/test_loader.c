/* tests/unit/test_loader.c -- the data pipeline pieces behind IDXData: the prefetch loader
 * (order, read-ahead, error hand-over, shutdown), the sample cursor (epochs, shuffles, shards,
 * skips, seeks by global position at any world size) and the transform (exact values of
 * scale/mean, crops, mirroring, rejected fields).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "caffe.pb-c.h"
#include "data/loader.h"
#include "data/transform.h"
#include "test.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- loader ---- */

typedef struct counter_src {
    atomic_int calls; /* fill calls started */
    int fail_at;      /* the call that fails (-1: never) */
    int delay_ms;     /* time each fill takes */
} counter_src;

/* Batch k holds k, k + 0.5, ... in buffer 0 (4 floats) and -k in buffer 1 (1 float). */
static moka_status counter_fill(void *user, float *const *bufs, moka_err *err)
{
    counter_src *c = user;
    const int k = atomic_fetch_add(&c->calls, 1);
    if (c->delay_ms) sleep_ms(c->delay_ms);
    if (k == c->fail_at) return moka_errf(err, MOKA_ERR_IO, "batch %d: disk on fire", k);
    for (int i = 0; i < 4; i++) bufs[0][i] = (float)k + 0.5f * (float)i;
    bufs[1][0] = (float)-k;
    return MOKA_OK;
}

/* Waits up to 5 s for calls to reach `want`; returns the count seen. */
static int wait_calls(counter_src *c, int want)
{
    for (int i = 0; i < 500 && atomic_load(&c->calls) < want; i++) sleep_ms(10);
    return atomic_load(&c->calls);
}

static int loader_delivers_batches_in_order(void)
{
    moka_err err = {0};
    counter_src c = {.fail_at = -1};
    moka_loader *ld = NULL;
    CHECK_OK(moka_loader_create(2, (const int64_t[]){4, 1}, 2, counter_fill, &c, &ld, &err));
    float a[4], b[1];
    for (int k = 0; k < 200; k++) {
        CHECK_OK(moka_loader_next(ld, (float *const[]){a, b}, &err));
        for (int i = 0; i < 4; i++) CHECK_EQ(a[i] * 2, 2 * k + i);
        CHECK_EQ(b[0], -k);
        if (k % 50 == 0) sleep_ms(5); /* let the worker get ahead sometimes */
    }
    /* A NULL destination skips that buffer. */
    b[0] = 123.0f;
    CHECK_OK(moka_loader_next(ld, (float *const[]){a, NULL}, &err));
    CHECK_EQ(a[0], 200);
    CHECK_EQ(b[0], 123);
    /* Zero-copy access sees the same sequence. */
    const float *const *bufs = NULL;
    CHECK_OK(moka_loader_acquire(ld, &bufs, &err));
    CHECK_EQ(bufs[0][0], 201);
    CHECK_EQ(bufs[1][0], -201);
    moka_loader_release(ld);
    moka_loader_free(ld);
    return 0;
}

/* The worker fills `depth` batches before anyone asks, and never more than that. */
static int loader_reads_ahead_by_depth(void)
{
    moka_err err = {0};
    for (int depth = 1; depth <= 3; depth++) {
        counter_src c = {.fail_at = -1};
        moka_loader *ld = NULL;
        CHECK_OK(
            moka_loader_create(2, (const int64_t[]){4, 1}, depth, counter_fill, &c, &ld, &err));
        CHECK_EQ(wait_calls(&c, depth), depth);
        sleep_ms(50);
        CHECK_EQ(atomic_load(&c.calls), depth); /* blocked: every slot is full */
        float a[4], b[1];
        CHECK_OK(moka_loader_next(ld, (float *const[]){a, b}, &err));
        CHECK_EQ(a[0], 0);
        /* Taking one batch frees one slot, which the worker refills on its own. */
        CHECK_EQ(wait_calls(&c, depth + 1), depth + 1);
        sleep_ms(50);
        CHECK_EQ(atomic_load(&c.calls), depth + 1);
        moka_loader_free(ld);
    }
    return 0;
}

static int loader_hands_over_fill_errors(void)
{
    moka_err err = {0};
    counter_src c = {.fail_at = 3};
    moka_loader *ld = NULL;
    CHECK_OK(moka_loader_create(2, (const int64_t[]){4, 1}, 2, counter_fill, &c, &ld, &err));
    float a[4], b[1];
    for (int k = 0; k < 3; k++) {
        CHECK_OK(moka_loader_next(ld, (float *const[]){a, b}, &err));
        CHECK_EQ(a[0], k);
    }
    for (int again = 0; again < 3; again++) {
        CHECK_STATUS(moka_loader_next(ld, (float *const[]){a, b}, &err), MOKA_ERR_IO);
        CHECK_CONTAINS(err.msg, "batch 3: disk on fire");
    }
    sleep_ms(20);
    CHECK_EQ(atomic_load(&c.calls), 4); /* the worker stopped at the failure */
    moka_loader_free(ld);
    return 0;
}

/* Freeing joins the worker whether it waits for a free slot, is in the middle of a slow fill,
 * or has already stopped after an error. */
static int loader_shuts_down_cleanly(void)
{
    moka_err err = {0};
    counter_src waiting = {.fail_at = -1};
    moka_loader *ld = NULL;
    CHECK_OK(moka_loader_create(2, (const int64_t[]){4, 1}, 2, counter_fill, &waiting, &ld, &err));
    CHECK_EQ(wait_calls(&waiting, 2), 2);
    moka_loader_free(ld);
    CHECK_EQ(atomic_load(&waiting.calls), 2);

    counter_src slow = {.fail_at = -1, .delay_ms = 100};
    CHECK_OK(moka_loader_create(2, (const int64_t[]){4, 1}, 2, counter_fill, &slow, &ld, &err));
    CHECK_EQ(wait_calls(&slow, 1), 1);
    moka_loader_free(ld); /* returns once the fill in progress finishes */
    const int calls = atomic_load(&slow.calls);
    sleep_ms(150);
    CHECK_EQ(atomic_load(&slow.calls), calls); /* nothing runs after free */

    counter_src failed = {.fail_at = 0};
    CHECK_OK(moka_loader_create(2, (const int64_t[]){4, 1}, 2, counter_fill, &failed, &ld, &err));
    CHECK_EQ(wait_calls(&failed, 1), 1);
    moka_loader_free(ld);
    moka_loader_free(NULL);

    CHECK_STATUS(
        moka_loader_create(2, (const int64_t[]){4, 1}, 0, counter_fill, &failed, &ld, &err),
        MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "depth >= 1");
    CHECK(ld == NULL);
    return 0;
}

/* ---- cursor ---- */

static int is_permutation(const int64_t *v, int64_t n)
{
    int seen[64] = {0};
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= n || seen[v[i]]) return 0;
        seen[v[i]] = 1;
    }
    return 1;
}

static int cursor_without_shuffle_is_file_order_wrapping(void)
{
    moka_err err = {0};
    moka_rng r;
    moka_rng_seed(&r, 1, 2);
    moka_cursor c;
    CHECK_OK(moka_cursor_init(&c, 7, 0, 1, false, &r, &err));
    for (int k = 0; k < 30; k++) CHECK_EQ(moka_cursor_next(&c), k % 7);
    moka_cursor_deinit(&c);
    CHECK_STATUS(moka_cursor_init(&c, 0, 0, 1, false, &r, &err), MOKA_ERR_INVALID_ARG);
    CHECK_STATUS(moka_cursor_init(&c, 5, 2, 2, false, &r, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "0 <= start < stride");
    return 0;
}

/* Takes n * epochs samples from a fresh shuffled cursor seeded (seed, 9). */
static int take(uint64_t seed, int64_t n, int epochs, int64_t *out)
{
    moka_err err = {0};
    moka_rng r;
    moka_rng_seed(&r, seed, 9);
    moka_cursor c;
    CHECK_OK(moka_cursor_init(&c, n, 0, 1, true, &r, &err));
    for (int64_t k = 0; k < n * epochs; k++) out[k] = moka_cursor_next(&c);
    moka_cursor_deinit(&c);
    return 0;
}

static int cursor_shuffle_covers_each_index_once_per_epoch(void)
{
    enum { N = 50, E = 6 };
    int64_t a[N * E], b[N * E], d[N * E];
    CHECK_EQ(take(5, N, E, a), 0);
    for (int e = 0; e < E; e++) {
        CHECK(is_permutation(a + e * N, N));
        if (e > 0) CHECK(memcmp(a + e * N, a + (e - 1) * N, sizeof(int64_t) * N) != 0);
    }
    /* Not file order (chance 1/50! otherwise). */
    int identity = 1;
    for (int i = 0; i < N; i++) identity &= a[i] == i;
    CHECK(!identity);
    CHECK_EQ(take(5, N, E, b), 0);
    CHECK(memcmp(a, b, sizeof a) == 0); /* same seed, same order */
    CHECK_EQ(take(6, N, E, d), 0);
    CHECK(memcmp(a, d, sizeof a) != 0); /* another seed, another order */
    return 0;
}

/* Three readers with start = rank, stride = 3 and one seed take exactly the samples a single
 * reader would take at positions rank, rank + 3, ...: together they cover every epoch once. */
static int cursor_shards_partition_the_single_reader_order(void)
{
    moka_err err = {0};
    enum { N = 10, P = 3, K = 40 };
    int64_t single[K * P];
    CHECK_EQ(take(11, N, K * P / N, single), 0);
    for (int rank = 0; rank < P; rank++) {
        moka_rng r;
        moka_rng_seed(&r, 11, 9);
        moka_cursor c;
        CHECK_OK(moka_cursor_init(&c, N, rank, P, true, &r, &err));
        for (int k = 0; k < K; k++) CHECK_EQ(moka_cursor_next(&c), single[rank + P * k]);
        moka_cursor_deinit(&c);
    }
    /* A stride longer than an epoch still reshuffles once per epoch crossed. */
    moka_rng r;
    moka_rng_seed(&r, 11, 9);
    moka_cursor c;
    CHECK_OK(moka_cursor_init(&c, N, 4, 25, true, &r, &err));
    for (int k = 0; k < 4; k++) CHECK_EQ(moka_cursor_next(&c), single[4 + 25 * k]);
    moka_cursor_deinit(&c);
    /* A skip shifts the sequence. */
    moka_rng_seed(&r, 11, 9);
    CHECK_OK(moka_cursor_init(&c, N, 0, 1, true, &r, &err));
    c.skip = 7;
    for (int k = 0; k < 50; k++) CHECK_EQ(moka_cursor_next(&c), single[7 + k]);
    moka_cursor_deinit(&c);
    return 0;
}

/* A shuffled cursor seeded (seed, 9) over n samples, reader `start` of `stride`, with a
 * rand_skip bound (0: none). */
static int open_cursor(moka_cursor *c, uint64_t seed, int64_t n, int64_t start, int64_t stride,
                       int64_t skip_bound)
{
    moka_err err = {0};
    moka_rng r;
    moka_rng_seed(&r, seed, 9);
    CHECK_OK(moka_cursor_init(c, n, start, stride, true, &r, &err));
    moka_cursor_random_skip(c, skip_bound);
    return 0;
}

/* W readers of batch B read, pass by pass, the batch of W * B a single reader reads: rank r's
 * sample b of pass t is the single reader's sample r + b * W of its pass t. So the ranks' shards
 * are disjoint, and when W * B divides N each epoch is covered exactly once. Shuffled, with a
 * random skip, over several epochs; N = 10 is no multiple of W * B for most W, so batches also
 * straddle epoch boundaries. */
static int cursor_ranks_together_read_the_single_readers_batches(void)
{
    enum { N = 10, B = 3, T = 9, MAXW = 4 };
    for (int64_t w = 1; w <= MAXW; w++) {
        int64_t single[T * MAXW * B];
        moka_cursor c;
        CHECK_EQ(open_cursor(&c, 21, N, 0, 1, 6), 0);
        CHECK(c.skip > 0); /* seed 21 draws a skip: the test covers it */
        for (int64_t i = 0; i < T * w * B; i++) single[i] = moka_cursor_next(&c);
        moka_cursor_deinit(&c);
        for (int64_t r = 0; r < w; r++) {
            CHECK_EQ(open_cursor(&c, 21, N, r, w, 6), 0);
            for (int64_t t = 0; t < T; t++)
                for (int64_t b = 0; b < B; b++) {
                    CHECK_EQ(moka_cursor_position(&c), t * w * B + r + b * w);
                    CHECK_EQ(moka_cursor_next(&c), single[t * w * B + r + b * w]);
                }
            moka_cursor_deinit(&c);
        }
    }
    /* N = 12 and 2 readers of batch 3: W * B = 6 divides N, so every epoch (2 passes) is a
     * permutation split into disjoint shards, and epochs differ (each is reshuffled). */
    enum { M = 12 };
    int64_t epoch[3][M];
    for (int64_t r = 0; r < 2; r++) {
        moka_cursor c;
        CHECK_EQ(open_cursor(&c, 8, M, r, 2, 0), 0);
        for (int64_t k = 0; k < 3 * M / 2; k++) {
            const int64_t p = r + 2 * k;
            epoch[p / M][p % M] = moka_cursor_next(&c);
        }
        moka_cursor_deinit(&c);
    }
    for (int e = 0; e < 3; e++) {
        /* Rank 0 read the even places, rank 1 the odd ones: together, each sample once. */
        CHECK(is_permutation(epoch[e], M));
        if (e > 0) CHECK(memcmp(epoch[e], epoch[e - 1], sizeof epoch[e]) != 0);
    }
    return 0;
}

/* Without shuffle the positions are plain numbers: after seek(5), reader r of 3 over 7 samples
 * takes (5 + r + 3k) mod 7 -- worked out by hand for rank 1: 6, 2, 5, 1, 4, 0. */
static int cursor_seek_takes_a_global_position(void)
{
    moka_err err = {0};
    moka_rng r;
    moka_rng_seed(&r, 1, 2);
    moka_cursor c;
    CHECK_OK(moka_cursor_init(&c, 7, 1, 3, false, &r, &err));
    CHECK_EQ(moka_cursor_next(&c), 1);
    CHECK_EQ(moka_cursor_next(&c), 4);
    moka_cursor_seek(&c, 5);
    CHECK_EQ(moka_cursor_position(&c), 6);
    static const int64_t want[] = {6, 2, 5, 1, 4, 0};
    for (int i = 0; i < 6; i++) CHECK_EQ(moka_cursor_next(&c), want[i]);
    moka_cursor_deinit(&c);
    return 0;
}

/* seek(P) on reader r of W continues the single reader's order at P + r, P + r + W, ...: for
 * W = 1..4, P a multiple of no W in particular, shuffled with a skip, seeking a cursor that has
 * already read (so seek must replay, not go on). And a run of 4 readers stopped at P resumes on
 * 2 readers and on 1 exactly where the single reader is. */
static int cursor_seek_by_position_is_independent_of_the_world_size(void)
{
    enum { N = 10, L = 200 };
    int64_t single[L];
    moka_cursor c;
    CHECK_EQ(open_cursor(&c, 33, N, 0, 1, 5), 0);
    for (int i = 0; i < L; i++) single[i] = moka_cursor_next(&c);
    moka_cursor_deinit(&c);
    static const int64_t positions[] = {0, 1, 7, 10, 23, 61};
    for (int64_t w = 1; w <= 4; w++)
        for (size_t pi = 0; pi < sizeof positions / sizeof positions[0]; pi++)
            for (int64_t r = 0; r < w; r++) {
                const int64_t p = positions[pi];
                CHECK_EQ(open_cursor(&c, 33, N, r, w, 5), 0);
                for (int i = 0; i < 13; i++) moka_cursor_next(&c);
                moka_cursor_seek(&c, p);
                for (int64_t k = 0; p + r + k * w < L; k++)
                    CHECK_EQ(moka_cursor_next(&c), single[p + r + k * w]);
                moka_cursor_deinit(&c);
            }

    /* 4 readers of batch 2 run 5 passes (position 40), then 2 readers, then 1, resume. */
    enum { B = 2 };
    int64_t got[L];
    memset(got, -1, sizeof got);
    int64_t p = 0;
    for (int64_t w = 4; w >= 1; w /= 2) {
        for (int64_t r = 0; r < w; r++) {
            CHECK_EQ(open_cursor(&c, 33, N, r, w, 5), 0);
            moka_cursor_seek(&c, p);
            for (int t = 0; t < 5; t++)
                for (int b = 0; b < B; b++) {
                    const int64_t at = moka_cursor_position(&c);
                    CHECK(at >= p && at < p + 5 * w * B && got[at] == -1);
                    got[at] = moka_cursor_next(&c);
                }
            moka_cursor_deinit(&c);
        }
        p += 5 * w * B;
    }
    CHECK_EQ(p, 70);
    for (int i = 0; i < p; i++) CHECK_EQ(got[i], single[i]);
    return 0;
}

static int loader_shard_comes_from_the_context(void)
{
    moka_err err = {0};
    moka_ctx ctx;
    moka_ctx_init(&ctx);
    int64_t start = -1, stride = -1;
    CHECK_OK(moka_loader_shard(&ctx, "d", &start, &stride, &err));
    CHECK(start == 0 && stride == 1);
    ctx.rank = 2;
    ctx.world_size = 3;
    CHECK_OK(moka_loader_shard(&ctx, "d", &start, &stride, &err));
    CHECK(start == 2 && stride == 3);
    ctx.rank = 3;
    CHECK_STATUS(moka_loader_shard(&ctx, "d", &start, &stride, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "layer 'd': cannot read shard 3 of 3");
    ctx.rank = 0;
    ctx.world_size = 0;
    CHECK_STATUS(moka_loader_shard(&ctx, "d", &start, &stride, &err), MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "0 <= rank < world_size");
    return 0;
}

/* ---- transform ---- */

static moka_status make_transform(moka_transform *t, const char *text, moka_phase phase, int64_t c,
                                  int64_t h, int64_t w, moka_err *err)
{
    moka_pt_doc *doc = NULL;
    MOKA_TRY(moka_pt_parse(text, (int64_t)strlen(text), "t.prototxt",
                           &caffe__transformation_parameter__descriptor, &doc, err));
    const moka_status st = moka_transform_init(t, moka_pt_root(doc), phase, "d", c, h, w, err);
    moka_pt_doc_free(doc);
    return st;
}

static int transform_scale_and_mean_are_exact(void)
{
    moka_err err = {0};
    uint8_t in[2 * 2 * 3];
    for (int i = 0; i < 12; i++) in[i] = (uint8_t)(i * 21 + 3);
    float out[12];
    moka_transform t;

    /* Identity with an empty message. */
    CHECK_OK(make_transform(&t, "", MOKA_TRAIN, 2, 2, 3, &err));
    CHECK(!moka_transform_is_random(&t));
    moka_transform_u8(&t, in, out, NULL);
    for (int i = 0; i < 12; i++) CHECK(out[i] == (float)in[i]);
    moka_transform_deinit(&t);

    /* MNIST's 1/256: exact in binary. */
    CHECK_OK(make_transform(&t, "scale: 0.00390625", MOKA_TRAIN, 2, 2, 3, &err));
    moka_transform_u8(&t, in, out, NULL);
    for (int i = 0; i < 12; i++) CHECK(out[i] == (float)in[i] / 256.0f);
    moka_transform_deinit(&t);

    /* One mean for all channels, then one per channel: (x - mean[c]) * scale. */
    CHECK_OK(make_transform(&t, "scale: 0.5 mean_value: 100", MOKA_TEST, 2, 2, 3, &err));
    moka_transform_u8(&t, in, out, NULL);
    for (int i = 0; i < 12; i++) CHECK(out[i] == ((float)in[i] - 100.0f) * 0.5f);
    moka_transform_deinit(&t);
    CHECK_OK(
        make_transform(&t, "scale: 2 mean_value: 10.5 mean_value: 200", MOKA_TEST, 2, 2, 3, &err));
    moka_transform_u8(&t, in, out, NULL);
    for (int i = 0; i < 6; i++) CHECK(out[i] == ((float)in[i] - 10.5f) * 2.0f);
    for (int i = 6; i < 12; i++) CHECK(out[i] == ((float)in[i] - 200.0f) * 2.0f);
    /* Hand-computed: in[7] = 150, (150 - 200) * 2 = -100. */
    CHECK_EQ(in[7], 150);
    CHECK(out[7] == -100.0f);
    moka_transform_deinit(&t);
    return 0;
}

static int transform_crops_and_mirrors(void)
{
    moka_err err = {0};
    enum { H = 5, W = 6, CR = 3 };
    uint8_t in[H * W];
    for (int i = 0; i < H * W; i++) in[i] = (uint8_t)i;
    float out[CR * CR];
    moka_transform t;
    int64_t c, h, w;

    /* TEST: the centre window, offsets ((5 - 3) / 2, (6 - 3) / 2) = (1, 1). */
    CHECK_OK(make_transform(&t, "crop_size: 3", MOKA_TEST, 1, H, W, &err));
    moka_transform_out_dims(&t, &c, &h, &w);
    CHECK(c == 1 && h == CR && w == CR);
    CHECK(!moka_transform_is_random(&t));
    moka_transform_u8(&t, in, out, NULL);
    for (int y = 0; y < CR; y++)
        for (int x = 0; x < CR; x++) CHECK_EQ(out[y * CR + x], (1 + y) * W + 1 + x);
    moka_transform_deinit(&t);

    /* TRAIN: random windows, each one a true window of the input, and every offset shows up. */
    CHECK_OK(make_transform(&t, "crop_size: 3", MOKA_TRAIN, 1, H, W, &err));
    CHECK(moka_transform_is_random(&t));
    moka_rng r;
    moka_rng_seed(&r, 3, 4);
    int seen[H - CR + 1][W - CR + 1] = {{0}};
    for (int trial = 0; trial < 400; trial++) {
        moka_transform_u8(&t, in, out, &r);
        const int y0 = (int)out[0] / W, x0 = (int)out[0] % W;
        CHECK(y0 <= H - CR && x0 <= W - CR);
        for (int y = 0; y < CR; y++)
            for (int x = 0; x < CR; x++) CHECK_EQ(out[y * CR + x], (y0 + y) * W + x0 + x);
        seen[y0][x0] = 1;
    }
    for (int y = 0; y <= H - CR; y++)
        for (int x = 0; x <= W - CR; x++) CHECK(seen[y][x]);
    moka_transform_deinit(&t);

    /* Mirror (in either phase, as Caffe): each sample is the input or its left-right flip, and
     * both happen. */
    CHECK_OK(make_transform(&t, "mirror: true scale: 2", MOKA_TEST, 1, H, W, &err));
    CHECK(moka_transform_is_random(&t));
    float full[H * W];
    int flipped = 0, straight = 0;
    for (int trial = 0; trial < 100; trial++) {
        moka_transform_u8(&t, in, full, &r);
        const bool f = full[0] == 2.0f * (W - 1);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                CHECK_EQ(full[y * W + x], 2 * (y * W + (f ? W - 1 - x : x)));
        flipped += f;
        straight += !f;
    }
    CHECK(flipped > 20 && straight > 20);
    moka_transform_deinit(&t);
    return 0;
}

static int transform_rejects_what_it_does_not_do(void)
{
    moka_err err = {0};
    moka_transform t;
    CHECK_STATUS(make_transform(&t, "mean_file: 'mean.binaryproto'", MOKA_TRAIN, 1, 4, 4, &err),
                 MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "t.prototxt:1:1: layer 'd': cannot open mean_file 'mean.binaryproto'");
    moka_transform_deinit(&t);
    CHECK_STATUS(make_transform(&t, "force_gray: true", MOKA_TRAIN, 1, 4, 4, &err),
                 MOKA_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "transform_param.force_gray is not supported");
    CHECK_STATUS(make_transform(&t, "scale: 1 force_color: true", MOKA_TRAIN, 1, 4, 4, &err),
                 MOKA_ERR_UNSUPPORTED);
    CHECK_CONTAINS(err.msg, "t.prototxt:1:10: layer 'd': transform_param.force_color");
    /* Explicitly false is the default and harmless. */
    CHECK_OK(make_transform(&t, "force_color: false force_gray: false", MOKA_TRAIN, 1, 4, 4, &err));
    moka_transform_deinit(&t);
    CHECK_STATUS(make_transform(&t, "mean_value: 1 mean_value: 2", MOKA_TRAIN, 3, 4, 4, &err),
                 MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "transform_param has 2 mean_value entries; want 1 or one per "
                            "channel (3)");
    CHECK_STATUS(make_transform(&t, "crop_size: 5", MOKA_TEST, 1, 4, 6, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "crop_size 5 is larger than the 4 x 6 samples");
    return 0;
}

MOKA_TEST_MAIN(loader_delivers_batches_in_order, loader_reads_ahead_by_depth,
               loader_hands_over_fill_errors, loader_shuts_down_cleanly,
               cursor_without_shuffle_is_file_order_wrapping,
               cursor_shuffle_covers_each_index_once_per_epoch,
               cursor_shards_partition_the_single_reader_order,
               cursor_ranks_together_read_the_single_readers_batches,
               cursor_seek_takes_a_global_position,
               cursor_seek_by_position_is_independent_of_the_world_size,
               loader_shard_comes_from_the_context, transform_scale_and_mean_are_exact,
               transform_crops_and_mirrors, transform_rejects_what_it_does_not_do)
