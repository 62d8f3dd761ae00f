/* src/dist/dp.c -- synchronous data-parallel forward/backward: gradients averaged across ranks
 * in buckets, each reduced by a communication thread as soon as backward has finished it.
 *
 * Buckets. The net's gradient block is laid out in layer order, and backward finishes it from the
 * end towards the start (src/core/net.c calls the "grads final" hook with a shrinking offset).
 * Walking the parameters from the last to the first, a bucket closes once it holds at least
 * `cap` bytes, cap = min(bucket_bytes, max(64 KiB, block / 4)) (the first bucket at most 1 MiB,
 * as PyTorch DDP does, so the first reduction starts early). Nets far smaller than 25 MiB thus
 * still get several buckets to overlap. Bucket 0 is the end of the block and is reduced first;
 * every rank computes the same plan from the same net, so all reduce the same ranges in the same
 * order.
 *
 * One step, on the last pass of iter_size:
 *   main thread:  forward -> post scalars {loss, caller's values} -> backward ... -> wait
 *   comm thread:             sum scalars, then bucket 0, 1, ... as the hook releases them,
 *                            each divided by the world size after the sum
 * The caller's wait after backward is the exposed share of the communication.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/net_internal.h"
#include "dist/dist.h"

#define MAX_SCALARS 8
#define FIRST_BUCKET_MAX (1LL << 20)
#define BUCKET_MIN (64LL << 10)
#define DEFAULT_BUCKET (25LL << 20)

struct moka_dp {
    moka_dist *d;
    moka_net *net;
    float *grad;
    int64_t count;
    int nb;
    int64_t *lo, *hi; /* bucket b covers grad[lo[b], hi[b]) */

    pthread_mutex_t mu;
    pthread_cond_t work, done_cv;
    pthread_t thread;
    bool thread_started, stop;
    bool armed;       /* the last pass's backward is releasing buckets */
    int released;     /* buckets released by the hook this step */
    int done;         /* buckets reduced this step */
    bool sc_pending, sc_done;
    float sc[MAX_SCALARS + 1];
    int nsc;
    moka_status st; /* the first failure of the comm thread this step */
    moka_err err;

    moka_dp_stats stats;
};

static void *comm_main(void *arg)
{
    moka_dp *dp = arg;
    const float inv = 1.0f / (float)moka_dist_size(dp->d);
    pthread_mutex_lock(&dp->mu);
    while (!dp->stop) {
        if (dp->sc_pending) {
            dp->sc_pending = false;
            pthread_mutex_unlock(&dp->mu);
            const int64_t t0 = moka_dist_now_ns();
            moka_err e;
            const moka_status st = moka_dist_sum_f32(dp->d, dp->sc, dp->nsc, &e);
            const int64_t t1 = moka_dist_now_ns();
            pthread_mutex_lock(&dp->mu);
            dp->stats.comm_ms += (double)(t1 - t0) * 1e-6;
            if (st != MOKA_OK && dp->st == MOKA_OK) {
                dp->st = st;
                dp->err = e;
            }
            dp->sc_done = true;
            pthread_cond_broadcast(&dp->done_cv);
            continue;
        }
        if (dp->done < dp->released) {
            const int b = dp->done;
            const bool failed = dp->st != MOKA_OK;
            pthread_mutex_unlock(&dp->mu);
            moka_status st = MOKA_OK;
            moka_err e;
            const int64_t t0 = moka_dist_now_ns();
            if (!failed) {
                float *g = dp->grad + dp->lo[b];
                const int64_t n = dp->hi[b] - dp->lo[b];
                st = moka_dist_sum_f32(dp->d, g, n, &e);
                for (int64_t i = 0; i < n; i++) g[i] *= inv;
            }
            const int64_t t1 = moka_dist_now_ns();
            pthread_mutex_lock(&dp->mu);
            dp->stats.comm_ms += (double)(t1 - t0) * 1e-6;
            if (st != MOKA_OK && dp->st == MOKA_OK) {
                dp->st = st;
                dp->err = e;
            }
            dp->done++;
            pthread_cond_broadcast(&dp->done_cv);
            continue;
        }
        pthread_cond_wait(&dp->work, &dp->mu);
    }
    pthread_mutex_unlock(&dp->mu);
    return NULL;
}

/* The net's hook: gradients from `lo` to the end are final. Releases the buckets inside. */
static void on_final(void *user, int64_t lo)
{
    moka_dp *dp = user;
    pthread_mutex_lock(&dp->mu);
    if (dp->armed) {
        const int before = dp->released;
        while (dp->released < dp->nb && dp->lo[dp->released] >= lo) dp->released++;
        if (dp->released != before) pthread_cond_signal(&dp->work);
    }
    pthread_mutex_unlock(&dp->mu);
}

static moka_status plan(moka_dp *dp, int64_t bucket_bytes, moka_err *err)
{
    const int np = moka_net_num_params(dp->net);
    const moka_net_param *p = moka_net_params(dp->net);
    dp->lo = calloc((size_t)np + 1, sizeof *dp->lo);
    dp->hi = calloc((size_t)np + 1, sizeof *dp->hi);
    if (!dp->lo || !dp->hi) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    const int64_t total = dp->count * (int64_t)sizeof(float);
    int64_t cap = total / 4 > BUCKET_MIN ? total / 4 : BUCKET_MIN;
    if (cap > bucket_bytes) cap = bucket_bytes;
    const int64_t first = cap < FIRST_BUCKET_MAX ? cap : FIRST_BUCKET_MAX;
    int64_t hi = dp->count;
    for (int i = np - 1; i >= 0; i--) {
        const int64_t bytes = (hi - p[i].offset) * (int64_t)sizeof(float);
        if (bytes >= (dp->nb == 0 ? first : cap) || i == 0) {
            dp->lo[dp->nb] = i == 0 ? 0 : p[i].offset;
            dp->hi[dp->nb] = hi;
            dp->nb++;
            hi = dp->lo[dp->nb - 1];
        }
    }
    return MOKA_OK;
}

moka_status moka_dp_create(moka_dist *d, moka_net *net, int64_t bucket_bytes, moka_dp **out,
                           moka_err *err)
{
    *out = NULL;
    moka_dp *dp = calloc(1, sizeof *dp);
    if (!dp) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    dp->d = d;
    dp->net = net;
    dp->grad = moka_net_param_grad(net);
    dp->count = moka_net_param_count(net);
    moka_status st = plan(dp, bucket_bytes > 0 ? bucket_bytes : DEFAULT_BUCKET, err);
    if (st != MOKA_OK) {
        moka_dp_free(dp);
        return st;
    }
    dp->stats.num_buckets = dp->nb;
    dp->stats.nbytes = dp->count * (int64_t)sizeof(float);
    pthread_mutex_init(&dp->mu, NULL);
    pthread_cond_init(&dp->work, NULL);
    pthread_cond_init(&dp->done_cv, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    const int rc = pthread_create(&dp->thread, NULL, comm_main, dp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        moka_dp_free(dp);
        return moka_errf(err, MOKA_ERR_NOMEM, "cannot start the communication thread");
    }
    dp->thread_started = true;
    moka_net_set_grads_final_hook(net, on_final, dp);
    *out = dp;
    return MOKA_OK;
}

void moka_dp_free(moka_dp *dp)
{
    if (!dp) return;
    if (dp->thread_started) {
        pthread_mutex_lock(&dp->mu);
        dp->stop = true;
        pthread_cond_signal(&dp->work);
        pthread_mutex_unlock(&dp->mu);
        pthread_join(dp->thread, NULL);
        pthread_cond_destroy(&dp->done_cv);
        pthread_cond_destroy(&dp->work);
        pthread_mutex_destroy(&dp->mu);
        moka_net_set_grads_final_hook(dp->net, NULL, NULL);
    }
    free(dp->lo);
    free(dp->hi);
    free(dp);
}

moka_status moka_dp_step(moka_dp *dp, int64_t first_pass, int passes, float *scalars, int n,
                         float *loss, moka_err *err)
{
    if (n < 0 || n > MAX_SCALARS || passes < 1)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_dp_step: %d scalars, %d passes", n,
                         passes);
    float local = 0;
    for (int k = 0; k < passes; k++) {
        float l = 0;
        moka_net_reseed(dp->net, (uint64_t)(first_pass + k));
        MOKA_TRY(moka_net_forward(dp->net, &l, err));
        local += l;
        if (k == passes - 1) {
            pthread_mutex_lock(&dp->mu);
            dp->sc[0] = local;
            for (int i = 0; i < n; i++) dp->sc[1 + i] = scalars[i];
            dp->nsc = n + 1;
            dp->sc_pending = true;
            dp->sc_done = false;
            dp->released = dp->done = 0;
            dp->st = MOKA_OK;
            dp->armed = true;
            pthread_cond_signal(&dp->work);
            pthread_mutex_unlock(&dp->mu);
        }
        const moka_status st = moka_net_backward(dp->net, err);
        if (st != MOKA_OK) {
            /* Let the thread finish the reductions it was given; the caller's abort ends the
             * other ranks, which wait for the rest. */
            pthread_mutex_lock(&dp->mu);
            if (dp->armed) {
                dp->armed = false;
                while (dp->done < dp->released || !dp->sc_done)
                    pthread_cond_wait(&dp->done_cv, &dp->mu);
            }
            pthread_mutex_unlock(&dp->mu);
            return st;
        }
    }
    const int64_t t0 = moka_dist_now_ns();
    pthread_mutex_lock(&dp->mu);
    while (dp->done < dp->nb || !dp->sc_done) pthread_cond_wait(&dp->done_cv, &dp->mu);
    dp->armed = false;
    const moka_status st = dp->st;
    if (st != MOKA_OK && err) *err = dp->err;
    dp->stats.exposed_ms += (double)(moka_dist_now_ns() - t0) * 1e-6;
    dp->stats.steps++;
    pthread_mutex_unlock(&dp->mu);
    if (st != MOKA_OK) return st;
    if (loss) *loss = dp->sc[0] / (float)moka_dist_size(dp->d);
    for (int i = 0; i < n; i++) scalars[i] = dp->sc[1 + i];
    return MOKA_OK;
}

void moka_dp_get_stats(const moka_dp *dp, moka_dp_stats *out)
{
    moka_dp *m = (moka_dp *)dp;
    pthread_mutex_lock(&m->mu);
    *out = m->stats;
    pthread_mutex_unlock(&m->mu);
}

void moka_dp_reset_stats(moka_dp *dp)
{
    pthread_mutex_lock(&dp->mu);
    dp->stats.steps = 0;
    dp->stats.comm_ms = dp->stats.exposed_ms = 0;
    pthread_mutex_unlock(&dp->mu);
}
