/* tools/moka.c -- the command-line interface: a thin shell over libmoka.
 *
 *   moka train --solver=S [--weights=A[,B]] [--snapshot=F] [--iterations=N] [--threads=N]
 *              [--sigint_effect=stop|snapshot|none] [--sighup_effect=stop|snapshot|none]
 *              [--dist_timeout=S] [--bucket_mb=M]     (under mpirun/srun: data-parallel)
 *   moka test --model=NET --weights=W [--iterations=N]
 *   moka time --model=NET [--iterations=N]
 *   moka device_query
 *   moka check FILE...
 *   moka board --logdir=DIR [--port=6006] [--host=127.0.0.1] [--token=T]
 *   moka cp [-r] [--sync] [--delete] [-f] [--dry-run] [-j N] SRC DST   (s3:// and qs:// URLs)
 *   moka ls s3://bucket/prefix
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
 * Log lines go to stderr in Caffe's (glog) format.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "board/board.h"
#include "cli.h"
#include "moka/ctx.h"
#include "moka/dist.h"
#include "moka/log.h"
#include "moka/net.h"
#include "moka/solver.h"
#include "moka/status.h"

/* ---- logging in glog's format: "I1127 10:20:22.123456  4321 solver] message" ---- */

static void glog_sink(moka_log_level level, const char *src, const char *msg, void *user)
{
    /* user: NULL, or "rank 2@node3 " for the ranks of a data-parallel job other than 0. */
    const char *who = user ? user : "";
    static const char tag[] = "DIWE";
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    fprintf(stderr, "%c%02d%02d %02d:%02d:%02d.%06ld %5d %s] %s%s\n", tag[level & 3],
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec,
            (int)getpid(), src, who, msg);
}

/* ---- data-parallel jobs (mpirun / srun) ---- */

/* The watchdog found a lost rank or a stuck collective: say so and end this rank, which makes
 * the launcher end the job. Runs on the watchdog thread, so only async-signal-safe calls. */
static void on_dist_fault(const char *msg, void *user)
{
    const char *cmd = user;
    char line[700];
    const int n = snprintf(line, sizeof line, "moka %s: %s\n", cmd, msg);
    if (n > 0) (void)!write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line);
    _exit(1);
}

static char rank_tag[96];

/* Joins the job when launched by mpirun/srun; ranks other than 0 keep only errors (rank 0 logs
 * the warnings, which every rank would repeat about the same config),
 * tagged with their rank and host. */
static int join_job(const char *cmd, double timeout_s, moka_dist **out)
{
    moka_dist_opts o = {timeout_s, 0, on_dist_fault, (void *)cmd, false};
    moka_err err = {0};
    if (moka_dist_init(&o, out, &err)) return moka_cli_fail(cmd, &err);
    const int r = moka_dist_rank(*out);
    if (moka_dist_size(*out) > 1 && r != 0) {
        snprintf(rank_tag, sizeof rank_tag, "rank %d@%s: ", r, moka_dist_host(*out, r));
        moka_log_set(glog_sink, rank_tag, MOKA_LOG_ERROR);
    }
    return 0;
}

/* A failure on one rank ends all of them (the others would wait for it forever). */
static int job_fail(const char *cmd, moka_dist *dist, const moka_err *err)
{
    if (moka_dist_size(dist) > 1 && rank_tag[0])
        fprintf(stderr, "moka %s: %s", cmd, rank_tag);
    const int rc = moka_cli_fail(cmd, err);
    moka_dist_abort(dist, rc);
    moka_dist_finalize(dist, NULL);
    return rc;
}

/* ---- flags ---- */

/* Flag parsing and error exits shared by every command: tools/cli.c. */

/* ---- signals (Caffe's --sigint_effect / --sighup_effect) ---- */

static volatile sig_atomic_t got_sigint, got_sighup;
static void on_signal(int sig)
{
    /* SIGTERM is how Slurm ends a job (time limit, scancel, preemption): it gets the
     * --sigint_effect, so the job snapshots before it goes. */
    if (sig == SIGINT || sig == SIGTERM) got_sigint = 1;
    if (sig == SIGHUP) got_sighup = 1;
}

typedef struct signal_policy {
    moka_solver_action on_int, on_hup;
} signal_policy;

static moka_solver_action poll_signals(void *user)
{
    const signal_policy *p = user;
    moka_solver_action a = MOKA_ACTION_NONE;
    if (got_sigint) {
        got_sigint = 0;
        a = p->on_int;
    }
    if (got_sighup) {
        got_sighup = 0;
        if (a == MOKA_ACTION_NONE) a = p->on_hup;
    }
    return a;
}

static int parse_effect(const char *cmd, const char *name, const char *v, moka_solver_action *out)
{
    if (strcmp(v, "stop") == 0)
        *out = MOKA_ACTION_STOP;
    else if (strcmp(v, "snapshot") == 0)
        *out = MOKA_ACTION_SNAPSHOT;
    else if (strcmp(v, "none") == 0)
        *out = MOKA_ACTION_NONE;
    else {
        fprintf(stderr, "moka %s: --%s must be stop, snapshot or none, got '%s'\n", cmd, name, v);
        return 2;
    }
    return 0;
}

/* --engine=fast|reference (absent: fast). */
static int parse_engine(const char *cmd, const char *v, moka_engine *out)
{
    *out = MOKA_ENGINE_FAST;
    if (!v || strcmp(v, "fast") == 0) return 0;
    if (strcmp(v, "reference") == 0) {
        *out = MOKA_ENGINE_REFERENCE;
        return 0;
    }
    return moka_cli_usage_error(cmd, "--engine must be fast or reference, got '%s'", v);
}

/* --precision=fp32|bf16 (absent: fp32, and *set = false where `set` is given, for train, whose
 * solver file may name one). */
static int parse_precision(const char *cmd, const char *v, moka_precision *out, bool *set)
{
    *out = MOKA_PRECISION_FP32;
    if (set) *set = v != NULL;
    if (!v || strcmp(v, "fp32") == 0) return 0;
    if (strcmp(v, "bf16") == 0) {
        *out = MOKA_PRECISION_BF16;
        return 0;
    }
    return moka_cli_usage_error(cmd, "--precision must be fp32 or bf16, got '%s'", v);
}

/* ---- train ---- */

static int cmd_train(int argc, char **argv)
{
    flag flags[] = {{"solver", NULL},        {"weights", NULL},
                    {"snapshot", NULL},      {"iterations", NULL},
                    {"threads", NULL},       {"sigint_effect", NULL},
                    {"sighup_effect", NULL}, {"log_dir", NULL},
                    {"log_run", NULL},       {"histogram_interval", NULL},
                    {"log_images", NULL},    {"cache_dir", NULL},
                    {"dist_timeout", NULL},  {"bucket_mb", NULL},
                    {"engine", NULL},        {"precision", NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = moka_cli_parse_flags("train", argc, argv, flags, 16, pos, &npos, 0, &help);
    if (rc) return rc;
    if (help) {
        printf(
            "usage: moka train --solver=SOLVER.prototxt [options]\n"
            "  --weights=A.caffemodel[,B...]  initialise from weights (fine-tuning)\n"
            "  --snapshot=X.solverstate       resume training from a snapshot\n"
            "  --iterations=N                 override the solver's max_iter\n"
            "  --threads=N                    CPU threads (default: all cores)\n"
            "  --sigint_effect=stop|snapshot|none  on Ctrl-C (default stop: snapshot, then stop)\n"
            "  --sighup_effect=stop|snapshot|none  on SIGHUP (default snapshot)\n"
            "  --cache_dir=DIR                cache for s3:// data (default ~/.cache/moka)\n"
            "  --engine=fast|reference        kernels: vectorised (default) or the plain reference\n"
            "  --precision=fp32|bf16          bf16: convolutions and inner products on bf16 inputs\n"
            "                                 (fp32 weights and solver; needs AVX512_BF16 or AMX;\n"
            "                                 default: the solver's `precision`, else fp32)\n"
            "Under mpirun or srun, each process is one data-parallel rank (batch_size per rank):\n"
            "  --dist_timeout=S               end the job when a rank is silent S s (default 10)\n"
            "  --bucket_mb=M                  gradient allreduce bucket size (default 25)\n");
        return 0;
    }
    if (!flags[0].value) return moka_cli_usage_error("train", "%s", "--solver=FILE is required");
    long dist_timeout = 10, bucket_mb = 25;
    if (flags[12].value &&
        (rc = moka_cli_parse_int("train", "dist_timeout", flags[12].value, 1, 86400, &dist_timeout)))
        return rc;
    if (flags[13].value &&
        (rc = moka_cli_parse_int("train", "bucket_mb", flags[13].value, 1, 4096, &bucket_mb)))
        return rc;
    if (flags[1].value && flags[2].value)
        return moka_cli_usage_error("train", "%s", "give --weights or --snapshot, not both");
    moka_solver_opts opts = {0};
    if ((rc = parse_engine("train", flags[14].value, &opts.engine))) return rc;
    if ((rc = parse_precision("train", flags[15].value, &opts.precision, &opts.set_precision)))
        return rc;
    long v;
    if (flags[3].value) {
        if ((rc = moka_cli_parse_int("train", "iterations", flags[3].value, 1, 2000000000L, &v)))
            return rc;
        opts.max_iter = v;
    }
    if (flags[4].value) {
        if ((rc = moka_cli_parse_int("train", "threads", flags[4].value, 1, 4096, &v))) return rc;
        opts.threads = (int)v;
    }
    opts.log_dir = flags[7].value;
    opts.log_run = flags[8].value;
    opts.cache_dir = flags[11].value;
    if (flags[9].value) {
        if ((rc = moka_cli_parse_int("train", "histogram_interval", flags[9].value, 1, 2000000000L,
                                     &v)))
            return rc;
        opts.histogram_interval = v;
    }
    if (flags[10].value) {
        if ((rc = moka_cli_parse_int("train", "log_images", flags[10].value, 1, 64, &v))) return rc;
        opts.log_images = v;
    }
    signal_policy pol = {MOKA_ACTION_STOP, MOKA_ACTION_SNAPSHOT};
    if (flags[5].value &&
        (rc = parse_effect("train", "sigint_effect", flags[5].value, &pol.on_int)))
        return rc;
    if (flags[6].value &&
        (rc = parse_effect("train", "sighup_effect", flags[6].value, &pol.on_hup)))
        return rc;
    opts.action = poll_signals;
    opts.action_user = &pol;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    moka_dist *dist;
    if ((rc = join_job("train", (double)dist_timeout, &dist))) return rc;
    opts.dist = dist;
    opts.bucket_bytes = (int64_t)bucket_mb << 20;
    moka_err err = {0};
    moka_solver *s;
    if (moka_solver_create(flags[0].value, &opts, &s, &err)) return job_fail("train", dist, &err);
    moka_status st = MOKA_OK;
    if (flags[1].value) st = moka_solver_load_weights(s, flags[1].value, &err);
    if (!st && flags[2].value) st = moka_solver_restore(s, flags[2].value, &err);
    if (!st) st = moka_solver_solve(s, &err);
    if (!st)
        moka_logf(MOKA_LOG_INFO, "train", "Training throughput: %.1f images/s",
                  moka_solver_images_per_second(s));
    moka_solver_free(s);
    if (st) return job_fail("train", dist, &err);
    if (moka_dist_finalize(dist, &err)) return moka_cli_fail("train", &err);
    return 0;
}

/* ---- test ---- */

static double now_ms(void);

static int cmd_test(int argc, char **argv)
{
    flag flags[] = {{"model", NULL},   {"weights", NULL}, {"iterations", NULL},
                    {"threads", NULL}, {"engine", NULL},  {"precision", NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = moka_cli_parse_flags("test", argc, argv, flags, 6, pos, &npos, 0, &help);
    if (rc) return rc;
    if (help) {
        printf("usage: moka test --model=NET.prototxt --weights=W.caffemodel [--iterations=50]\n"
               "                 [--threads=N] [--engine=fast|reference] [--precision=fp32|bf16]\n"
               "Runs the TEST phase of the net and prints per-batch and average outputs and the\n"
               "forward throughput.\n");
        return 0;
    }
    if (!flags[0].value) return moka_cli_usage_error("test", "%s", "--model=FILE is required");
    long iters = 50, threads = 0;
    if (flags[2].value &&
        (rc = moka_cli_parse_int("test", "iterations", flags[2].value, 1, 1000000000L, &iters)))
        return rc;
    if (flags[3].value &&
        (rc = moka_cli_parse_int("test", "threads", flags[3].value, 1, 4096, &threads)))
        return rc;
    if (!flags[1].value)
        moka_logf(MOKA_LOG_WARN, "test", "no --weights given: testing freshly initialised weights");
    moka_ctx ctx;
    moka_ctx_init(&ctx);
    ctx.threads = (int)threads;
    if ((rc = parse_engine("test", flags[4].value, &ctx.engine))) return rc;
    if ((rc = parse_precision("test", flags[5].value, &ctx.precision, NULL))) return rc;
    moka_ctx_apply_threads(&ctx);
    moka_err err = {0};
    moka_net *net;
    const moka_net_state st = {MOKA_TEST, 0, 0, NULL};
    if (moka_net_create_from_file(flags[0].value, &st, &ctx, &net, &err))
        return moka_cli_fail("test", &err);
    if (flags[1].value && moka_net_load_weights(net, flags[1].value, &err)) {
        moka_net_free(net);
        return moka_cli_fail("test", &err);
    }
    moka_logf(MOKA_LOG_INFO, "test", "Running for %ld iterations.", iters);
    int total = 0;
    for (int o = 0; o < moka_net_num_outputs(net); o++)
        total += (int)moka_tensor_count(moka_net_output(net, o));
    double *score = calloc((size_t)total + 1, sizeof(double)), loss = 0;
    const double t0 = now_ms();
    for (long i = 0; i < iters; i++) {
        float l;
        if (moka_net_forward(net, &l, &err)) {
            free(score);
            moka_net_free(net);
            return moka_cli_fail("test", &err);
        }
        loss += l;
        int idx = 0;
        for (int o = 0; o < moka_net_num_outputs(net); o++) {
            const moka_tensor *t = moka_net_output(net, o);
            for (int64_t k = 0; k < moka_tensor_count(t); k++, idx++) {
                score[idx] += t->data[k];
                moka_logf(MOKA_LOG_INFO, "test", "Batch %ld, %s = %g", i,
                          moka_net_output_name(net, o), t->data[k]);
            }
        }
    }
    const double elapsed_ms = now_ms() - t0;
    moka_logf(MOKA_LOG_INFO, "test", "Loss: %g", loss / (double)iters);
    int idx = 0;
    for (int o = 0; o < moka_net_num_outputs(net); o++) {
        const moka_tensor *t = moka_net_output(net, o);
        const float lw = moka_net_output_loss_weight(net, o);
        for (int64_t k = 0; k < moka_tensor_count(t); k++, idx++) {
            const double mean = score[idx] / (double)iters;
            if (lw != 0.0f)
                moka_logf(MOKA_LOG_INFO, "test", "%s = %g (* %g = %g loss)",
                          moka_net_output_name(net, o), mean, lw, lw * mean);
            else
                moka_logf(MOKA_LOG_INFO, "test", "%s = %g", moka_net_output_name(net, o), mean);
        }
    }
    /* Forward passes only (data prefetched meanwhile); net building and weight loading excluded. */
    if (elapsed_ms > 0)
        moka_logf(MOKA_LOG_INFO, "test", "Test throughput: %.1f images/s",
                  (double)iters * (double)moka_net_batch_size(net) * 1e3 / elapsed_ms);
    free(score);
    moka_net_free(net);
    return 0;
}

/* ---- time ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmd_time(int argc, char **argv)
{
    flag flags[] = {{"model", NULL},
                    {"iterations", NULL},
                    {"threads", NULL},
                    {"phase", NULL},
                    {"engine", NULL},
                    {"precision", NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = moka_cli_parse_flags("time", argc, argv, flags, 6, pos, &npos, 0, &help);
    if (rc) return rc;
    if (help) {
        printf("usage: moka time --model=NET.prototxt [--iterations=50] [--threads=N] "
               "[--phase=TRAIN|TEST] [--engine=fast|reference]\n"
               "                 [--precision=fp32|bf16]\n"
               "Times forward and backward passes layer by layer, like 'caffe time', with each\n"
               "layer's GFLOP/s and kernel. Under mpirun each pass also averages the gradients\n"
               "across ranks and the allreduce time and its hidden share are reported.\n");
        return 0;
    }
    if (!flags[0].value) return moka_cli_usage_error("time", "%s", "--model=FILE is required");
    long iters = 50, threads = 0;
    if (flags[1].value &&
        (rc = moka_cli_parse_int("time", "iterations", flags[1].value, 1, 1000000000L, &iters)))
        return rc;
    if (flags[2].value &&
        (rc = moka_cli_parse_int("time", "threads", flags[2].value, 1, 4096, &threads)))
        return rc;
    moka_net_state st = {MOKA_TRAIN, 0, 0, NULL};
    if (flags[3].value) {
        if (strcmp(flags[3].value, "TEST") == 0)
            st.phase = MOKA_TEST;
        else if (strcmp(flags[3].value, "TRAIN") != 0)
            return moka_cli_usage_error("time", "--phase must be TRAIN or TEST, got '%s'",
                                        flags[3].value);
    }
    moka_dist *dist;
    if ((rc = join_job("time", 10.0, &dist))) return rc;
    const int world = moka_dist_size(dist);
    moka_ctx ctx;
    moka_ctx_init(&ctx);
    ctx.threads = threads > 0 ? (int)threads : world > 1 ? moka_dist_default_threads(dist) : 0;
    ctx.rank = moka_dist_rank(dist);
    ctx.world_size = world;
    if ((rc = parse_engine("time", flags[4].value, &ctx.engine))) return rc;
    if ((rc = parse_precision("time", flags[5].value, &ctx.precision, NULL))) return rc;
    const int used = moka_ctx_apply_threads(&ctx);
    moka_err err = {0};
    moka_net *net;
    if (moka_net_create_from_file(flags[0].value, &st, &ctx, &net, &err))
        return job_fail("time", dist, &err);
    /* Under mpirun each pass also averages the gradients across ranks, as training does. */
    moka_dp *dp = NULL;
    if (world > 1 && moka_dp_create(dist, net, 0, &dp, &err)) {
        moka_net_free(net);
        return job_fail("time", dist, &err);
    }
    const int nl = moka_net_num_layers(net);
    double *fwd = calloc((size_t)nl + 1, sizeof(double)),
           *bwd = calloc((size_t)nl + 1, sizeof(double));
    if (dp)
        moka_logf(MOKA_LOG_INFO, "time", "Performing Forward (%d ranks x %d threads, %s)", world,
                  used, moka_dist_engine(dist));
    else
        moka_logf(MOKA_LOG_INFO, "time", "Performing Forward (%d threads)", used);
    float loss;
    moka_status s = dp ? moka_dp_step(dp, 0, 1, NULL, 0, &loss, &err)
                       : moka_net_forward(net, &loss, &err);
    if (!s && !dp) s = moka_net_backward(net, &err);
    if (!s) moka_logf(MOKA_LOG_INFO, "time", "Initial loss: %g", loss);
    moka_logf(MOKA_LOG_INFO, "time", "*** Benchmark begins ***");
    moka_logf(MOKA_LOG_INFO, "time", "Testing for %ld iterations.", iters);
    moka_net_set_timing(net, true);
    if (dp) moka_dp_reset_stats(dp);
    double total_fwd = 0, total_bwd = 0;
    const double t_all = now_ms();
    for (long i = 0; i < iters && !s; i++) {
        const double t0 = now_ms();
        double t1, t2;
        if (dp) {
            moka_net_zero_param_grads(net);
            s = moka_dp_step(dp, i + 1, 1, NULL, 0, NULL, &err);
            t2 = now_ms();
            double f = 0;
            for (int l = 0; l < nl; l++) f += moka_net_layer_forward_ms(net, l);
            t1 = t0 + f;
        } else {
            s = moka_net_forward(net, NULL, &err);
            t1 = now_ms();
            if (!s) s = moka_net_backward(net, &err);
            t2 = now_ms();
        }
        total_fwd += t1 - t0;
        total_bwd += t2 - t1;
        for (int l = 0; l < nl; l++) {
            fwd[l] += moka_net_layer_forward_ms(net, l);
            bwd[l] += moka_net_layer_backward_ms(net, l);
        }
        moka_logf(MOKA_LOG_INFO, "time", "Iteration: %ld forward-backward time: %.3f ms.", i + 1,
                  t2 - t0);
    }
    const double t_total = now_ms() - t_all;
    if (!s) {
        moka_logf(MOKA_LOG_INFO, "time", "Average time per layer: ");
        /* Caffe's two lines per layer, with GFLOP/s where the layer counts its work, and
         * the kernel that ran. */
        for (int l = 0; l < nl; l++) {
            const double f = fwd[l] / (double)iters, b = bwd[l] / (double)iters;
            const double ff = moka_net_layer_flops(net, l, false);
            const double fb = moka_net_layer_flops(net, l, true);
            char rate[64] = "";
            if (ff > 0 && f > 0) snprintf(rate, sizeof rate, " (%.1f GFLOP/s)", ff / f * 1e-6);
            moka_logf(MOKA_LOG_INFO, "time", "%10s\tforward: %.5f ms.%s  [%s]",
                      moka_net_layer_name(net, l), f, rate, moka_net_layer_kernel(net, l));
            rate[0] = '\0';
            if (fb > 0 && b > 0) snprintf(rate, sizeof rate, " (%.1f GFLOP/s)", fb / b * 1e-6);
            moka_logf(MOKA_LOG_INFO, "time", "%10s\tbackward: %.5f ms.%s",
                      moka_net_layer_name(net, l), b, rate);
        }
        moka_logf(MOKA_LOG_INFO, "time", "Average Forward pass: %.5f ms.",
                  total_fwd / (double)iters);
        moka_logf(MOKA_LOG_INFO, "time", "Average Backward pass: %.5f ms.",
                  total_bwd / (double)iters);
        if (dp) {
            moka_dp_stats ds;
            moka_dp_get_stats(dp, &ds);
            const double per = ds.comm_ms / (double)iters, exposed = ds.exposed_ms / (double)iters;
            moka_logf(MOKA_LOG_INFO, "time",
                      "Average allreduce: %.5f ms (%d buckets, %.2f MB), %.0f%% hidden behind "
                      "backward, %.5f ms exposed.",
                      per, ds.num_buckets, (double)ds.nbytes / 1e6,
                      per > 0 ? 100.0 * (1.0 - exposed / per) : 100.0, exposed);
        }
        moka_logf(MOKA_LOG_INFO, "time", "Average Forward-Backward: %.5f ms.",
                  t_total / (double)iters);
        moka_logf(MOKA_LOG_INFO, "time", "Total Time: %.3f ms.", t_total);
        moka_logf(MOKA_LOG_INFO, "time", "*** Benchmark ends ***");
    }
    free(fwd);
    free(bwd);
    moka_dp_free(dp);
    moka_net_free(net);
    if (s) return job_fail("time", dist, &err);
    if (moka_dist_finalize(dist, &err)) return moka_cli_fail("time", &err);
    return 0;
}

/* ---- device_query ---- */

static int cmd_device_query(int argc, char **argv)
{
    (void)argv;
    if (argc > 0) {
        printf(
            "usage: moka device_query\nPrints the CPU model, its ISA extensions and core count.\n");
        return strcmp(argv[0], "--help") == 0 ? 0 : 2;
    }
    char model[256] = "unknown", flags_line[8192] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[8192];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0 && strcmp(model, "unknown") == 0) {
                const char *c = strchr(line, ':');
                if (c) snprintf(model, sizeof model, "%s", c + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            if (strncmp(line, "flags", 5) == 0 && !flags_line[0])
                snprintf(flags_line, sizeof flags_line, "%s", line);
        }
        fclose(f);
    }
    static const char *const isa[] = {"sse4_2",      "avx",      "avx2",     "fma",
                                      "avx512f",     "avx512bw", "avx512vl", "avx512_vnni",
                                      "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"};
    printf("CPU: %s\n", model);
    printf("Cores online: %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("ISA extensions:");
    for (size_t i = 0; i < sizeof isa / sizeof isa[0]; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, " %s", isa[i]);
        const char *p = strstr(flags_line, pat);
        if (p && (p[strlen(pat)] == ' ' || p[strlen(pat)] == '\n')) printf(" %s", isa[i]);
    }
    printf("\nGPUs: none (this build of moka runs on the CPU)\n");
    return 0;
}

/* ---- check ---- */

static int cmd_check(int argc, char **argv)
{
    if (argc == 0) return moka_cli_usage_error("check", "%s", "give one or more prototxt files");
    if (strcmp(argv[0], "--help") == 0) {
        printf("usage: moka check FILE...\nValidates Caffe net or solver prototxt files without "
               "running them.\n");
        return 0;
    }
    int rc = 0;
    for (int i = 0; i < argc; i++) {
        moka_err net_err = {0}, solver_err = {0};
        const moka_status ns = moka_net_check_file(argv[i], &net_err);
        if (ns == MOKA_OK) {
            printf("%s: ok (net)\n", argv[i]);
            continue;
        }
        const moka_status ss = moka_solver_check_file(argv[i], &solver_err);
        if (ss == MOKA_OK) {
            printf("%s: ok (solver)\n", argv[i]);
            continue;
        }
        /* Neither: report the reading that got further (a net file fails the solver schema on
         * its first line and the reverse), or the file error. */
        const moka_err *e = &net_err;
        if (ns == MOKA_ERR_IO)
            e = &net_err;
        else {
            const char *a = strchr(net_err.msg, ':'), *b = strchr(solver_err.msg, ':');
            const long la = a ? strtol(a + 1, NULL, 10) : 0, lb = b ? strtol(b + 1, NULL, 10) : 0;
            if (lb > la) e = &solver_err;
        }
        fprintf(stderr, "%s\n", e->msg);
        const int code = e->code == MOKA_ERR_IO ? 1 : 2;
        if (code > rc) rc = code;
    }
    return rc;
}

/* ---- board ---- */

static int cmd_board(int argc, char **argv)
{
    flag flags[] = {{"logdir", NULL}, {"port", NULL}, {"host", NULL}, {"token", NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = moka_cli_parse_flags("board", argc, argv, flags, 4, pos, &npos, 0, &help);
    if (rc) return rc;
    if (help) {
        printf("usage: moka board --logdir=DIR [--port=6006] [--host=127.0.0.1] [--token=T]\n"
               "  --logdir=DIR    the --log_dir of `moka train`: one run per subdirectory\n"
               "  --port=N        TCP port (default 6006; 0 picks a free one, printed at start)\n"
               "  --host=ADDR     address to bind (default 127.0.0.1; 0.0.0.0 for every "
               "interface)\n"
               "  --token=T       require ?token=T (default: none on loopback, else a random one, "
               "printed)\n"
               "Serves the live dashboard (charts, histograms, graph) and JSON under /api/;\n"
               "Ctrl-C stops it.\n");
        return 0;
    }
    if (!flags[0].value) return moka_cli_usage_error("board", "%s", "--logdir=DIR is required");
    moka_board_opts opts = {.logdir = flags[0].value,
                            .host = flags[2].value,
                            .token = flags[3].value,
                            .stop = &got_sigint};
    if (flags[1].value) {
        long v;
        if ((rc = moka_cli_parse_int("board", "port", flags[1].value, 0, 65535, &v))) return rc;
        opts.port = v == 0 ? MOKA_BOARD_PORT_ANY : (int)v;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    moka_err err = {0};
    if (moka_board_serve(&opts, &err) != MOKA_OK) return moka_cli_fail("board", &err);
    return 0;
}

/* ---- dispatch ---- */

/* Commands in their own files (tools/cmd_*.c). */
int cmd_convert_imageset(int argc, char **argv);
int cmd_compute_image_mean(int argc, char **argv);
int cmd_convert_mnist_data(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_ls(int argc, char **argv);

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static int cmd_help(int argc, char **argv);

static const command commands[] = {
    {"train", cmd_train, "train or fine-tune a model from a solver prototxt"},
    {"test", cmd_test, "score a model on its TEST phase"},
    {"time", cmd_time, "benchmark a model's forward and backward passes per layer"},
    {"device_query", cmd_device_query, "show the CPU (and GPUs) moka can use"},
    {"check", cmd_check, "validate net or solver prototxt files without running them"},
    {"board", cmd_board, "serve the live dashboard of a --log_dir in the browser"},
    {"convert_mnist_data", cmd_convert_mnist_data, "convert MNIST IDX files to an LMDB of Datums"},
    {"convert_imageset", cmd_convert_imageset, "convert a list of images to an LMDB of Datums"},
    {"compute_image_mean", cmd_compute_image_mean, "the mean image of an LMDB, as a .binaryproto"},
    {"cp", cmd_cp, "copy files to or from s3:// and qs:// object storage (-r, --sync)"},
    {"ls", cmd_ls, "list the objects under an s3:// or qs:// prefix"},
    {"help", cmd_help, "show this list, or `moka help CMD` for a command's flags"},
};
#define NUM_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void print_commands(FILE *f)
{
    fprintf(f, "usage: moka <command> [flags]\n\ncommands:\n");
    for (int i = 0; i < NUM_COMMANDS; i++)
        fprintf(f, "  %-19s %s\n", commands[i].name, commands[i].help);
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 0)
        for (int i = 0; i < NUM_COMMANDS; i++)
            if (strcmp(argv[0], commands[i].name) == 0 && commands[i].fn != cmd_help) {
                char help[] = "--help";
                char *av[] = {help};
                return commands[i].fn(1, av);
            }
    print_commands(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    moka_log_set(glog_sink, NULL, MOKA_LOG_INFO);
    if (argc < 2) {
        print_commands(stderr);
        return 2;
    }
    for (int i = 0; i < NUM_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "moka: unknown command '%s' (commands:", argv[1]);
    for (int i = 0; i < NUM_COMMANDS; i++) fprintf(stderr, " %s", commands[i].name);
    fprintf(stderr, "; see 'moka help')\n");
    return 2;
}
