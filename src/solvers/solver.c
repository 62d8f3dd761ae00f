/* src/solvers/solver.c -- the training loop of a Caffe SolverParameter (Caffe's Solver::Solve,
 * Step, Test, Snapshot, Restore and SGDSolver::ApplyUpdate), over the net's flat parameter block.
 */
#include "moka/solver.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caffe.pb-c.h"
#include "backend/cpu/dnnl_op.h"
#include "core/net_internal.h"
#include "io/caffemodel.h"
#include "io/prototxt.h"
#include "moka/log.h"
#include "solvers/summary.h"
#include "solvers/update.h"

#define MAX_TEST_NETS 16

struct moka_solver {
    moka_pt_doc *doc;
    const moka_pt_node *sp;
    moka_ctx ctx;
    moka_solver_opts opts;
    moka_pt_doc *net_docs[1 + MAX_TEST_NETS]; /* net files read for train/test nets */
    moka_net *net;
    moka_net *test_nets[MAX_TEST_NETS];
    int64_t test_iter[MAX_TEST_NETS];
    int num_test;
    moka_solver_hparams hp;
    int64_t *stepvalues;
    const moka_update_rule *rule;
    moka_param_slot *slots; /* one per net parameter, Caffe's learnable_params order */
    int num_slots;
    float *history; /* rule->num_history blocks of param_count floats */
    int64_t iter, current_step, max_iter, display, test_interval, snapshot, average_loss;
    float *losses; /* the last average_loss losses */
    int num_losses;
    float smoothed_loss;
    bool stopped_early;
    float *scores;
    int num_scores;
    double images_per_s;
    moka_summary *summary; /* NULL without a log_dir, and on ranks other than 0 */
    int64_t histogram_interval, log_images;
    /* Data-parallel training (see moka_solver_opts.dist). */
    moka_dist *dist;
    moka_dp *dp; /* NULL for one process */
    int rank, world;
    int64_t data_pos; /* training samples of the global order consumed by all ranks */
    bool need_sync;   /* rank 0's weights and state go to every rank before the next step */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static moka_solver_action poll_action(moka_solver *s)
{
    return s->opts.action ? s->opts.action(s->opts.action_user) : MOKA_ACTION_NONE;
}

/* Builds one net from a file path or inline NetParameter node. */
static moka_status build_net(moka_solver *s, const char *path, const moka_pt_node *inline_np,
                             const moka_net_state *st, const moka_net *share, int doc_slot,
                             moka_net **out, moka_err *err)
{
    const moka_pt_node *np = inline_np;
    if (path) {
        MOKA_TRY(moka_pt_parse_file(path, &caffe__net_parameter__descriptor, &s->net_docs[doc_slot],
                                    err));
        np = moka_pt_root(s->net_docs[doc_slot]);
    }
    return moka_net_create_from_node(np, st, &s->ctx, share, out, err);
}

static void state_from_node(const moka_pt_node *n, moka_phase phase, moka_net_state *st,
                            const char **stages, int max_stages)
{
    st->phase = phase;
    st->level = (int)moka_pt_int(n, "level");
    st->num_stages = 0;
    for (int i = 0; i < moka_pt_count(n, "stage") && i < max_stages; i++)
        stages[st->num_stages++] = moka_pt_str_at(n, "stage", i);
    st->stages = stages;
}

static moka_status read_hparams(moka_solver *s, moka_err *err)
{
    const moka_pt_node *sp = s->sp;
    moka_solver_hparams *hp = &s->hp;
    hp->type = moka_pt_str(sp, "type");
    /* The deprecated solver_type enum names the same solvers. */
    if (moka_pt_has(sp, "solver_type")) {
        static const char *const names[] = {"SGD",     "Nesterov", "AdaGrad",
                                            "RMSProp", "AdaDelta", "Adam"};
        const int64_t t = moka_pt_int(sp, "solver_type");
        if (t >= 0 && t < 6) hp->type = names[t];
    }
    s->rule = moka_update_rule_find(hp->type);
    if (!s->rule)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(sp, "type", 0),
                            "unknown solver type '%s' (known: SGD, Nesterov, AdaGrad, RMSProp, "
                            "AdaDelta, Adam)",
                            hp->type);
    hp->lr_policy = moka_pt_str(sp, "lr_policy");
    if (!hp->lr_policy[0])
        return moka_pt_errf(err, MOKA_ERR_CONFIG, sp,
                            "lr_policy is required (fixed, step, exp, "
                            "inv, multistep, poly, sigmoid)");
    static const char *const policies[] = {"fixed",     "step", "exp",    "inv",
                                           "multistep", "poly", "sigmoid"};
    bool known = false;
    for (int i = 0; i < 7; i++) known = known || strcmp(hp->lr_policy, policies[i]) == 0;
    if (!known)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(sp, "lr_policy", 0),
                            "unknown lr_policy '%s' (known: fixed, step, exp, inv, multistep, "
                            "poly, sigmoid)",
                            hp->lr_policy);
    hp->base_lr = (float)moka_pt_float(sp, "base_lr");
    hp->gamma = (float)moka_pt_float(sp, "gamma");
    hp->power = (float)moka_pt_float(sp, "power");
    hp->momentum = (float)moka_pt_float(sp, "momentum");
    hp->momentum2 = (float)moka_pt_float(sp, "momentum2");
    hp->delta = (float)moka_pt_float(sp, "delta");
    hp->rms_decay = (float)moka_pt_float(sp, "rms_decay");
    hp->weight_decay = (float)moka_pt_float(sp, "weight_decay");
    hp->clip_gradients = (float)moka_pt_float(sp, "clip_gradients");
    const char *reg = moka_pt_str(sp, "regularization_type");
    if (strcmp(reg, "L1") != 0 && strcmp(reg, "L2") != 0)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(sp, "regularization_type", 0),
                            "unknown regularization_type '%s' (expected L1 or L2)", reg);
    hp->l1 = strcmp(reg, "L1") == 0;
    hp->stepsize = moka_pt_int(sp, "stepsize");
    hp->iter_size = moka_pt_int(sp, "iter_size");
    if (hp->iter_size < 1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(sp, "iter_size", 0),
                            "iter_size must be >= 1");
    hp->num_stepvalue = moka_pt_count(sp, "stepvalue");
    s->stepvalues = calloc((size_t)hp->num_stepvalue + 1, sizeof(int64_t));
    if (!s->stepvalues) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    for (int i = 0; i < hp->num_stepvalue; i++)
        s->stepvalues[i] = moka_pt_int_at(sp, "stepvalue", i);
    hp->stepvalue = s->stepvalues;
    s->max_iter = moka_pt_int(sp, "max_iter");
    if (s->opts.max_iter > 0) s->max_iter = s->opts.max_iter;
    hp->max_iter = s->max_iter;
    /* Everything Caffe CHECKs about the solver values (gamma, stepsize, momentum, ...). */
    if (moka_update_check(hp, err) != MOKA_OK) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return moka_pt_errf(err, MOKA_ERR_CONFIG, sp, "%s", msg);
    }
    s->display = moka_pt_int(sp, "display");
    s->test_interval = moka_pt_int(sp, "test_interval");
    s->snapshot = moka_pt_int(sp, "snapshot");
    s->average_loss = moka_pt_int(sp, "average_loss");
    if (s->average_loss < 1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(sp, "average_loss", 0),
                            "average_loss must be >= 1");
    if (s->snapshot > 0 && !moka_pt_str(sp, "snapshot_prefix")[0])
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(sp, "snapshot", 0),
                            "snapshot needs snapshot_prefix");
    if (strcmp(moka_pt_str(sp, "snapshot_format"), "BINARYPROTO") != 0)
        return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, moka_pt_node_at(sp, "snapshot_format", 0),
                            "snapshot_format %s is not supported by moka (use BINARYPROTO)",
                            moka_pt_str(sp, "snapshot_format"));
    return MOKA_OK;
}

static moka_status build_nets(moka_solver *s, moka_err *err)
{
    const moka_pt_node *sp = s->sp;
    const int n_net = moka_pt_has(sp, "net") + moka_pt_has(sp, "net_param") +
                      moka_pt_has(sp, "train_net") + moka_pt_has(sp, "train_net_param");
    if (n_net != 1)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, sp,
                            n_net ? "give exactly one of net, net_param, train_net, "
                                    "train_net_param (found %d)"
                                  : "no net: give one of net, net_param, train_net, "
                                    "train_net_param%.0d",
                            n_net);
    const char *stages[64];
    moka_net_state st;
    state_from_node(moka_pt_msg(sp, "train_state"), MOKA_TRAIN, &st, stages, 64);
    const char *path = moka_pt_has(sp, "net")         ? moka_pt_str(sp, "net")
                       : moka_pt_has(sp, "train_net") ? moka_pt_str(sp, "train_net")
                                                      : NULL;
    const moka_pt_node *inl = moka_pt_has(sp, "net_param") ? moka_pt_msg(sp, "net_param")
                              : moka_pt_has(sp, "train_net_param")
                                  ? moka_pt_msg(sp, "train_net_param")
                                  : NULL;
    moka_logf(MOKA_LOG_INFO, "solver", "Creating training net %s%s",
              path ? "from net file " : "specified in net_param", path ? path : "");
    MOKA_TRY(build_net(s, path, inl, &st, NULL, 0, &s->net, err));

    /* Test nets: test_net files, test_net_param, then the general net once per remaining
     * test_iter entry (Caffe's InitTestNets). */
    const int n_file = moka_pt_count(sp, "test_net"), n_param = moka_pt_count(sp, "test_net_param");
    const int n_iter = moka_pt_count(sp, "test_iter");
    const bool general = moka_pt_has(sp, "net") || moka_pt_has(sp, "net_param");
    const int n_general = general ? n_iter - n_file - n_param : 0;
    const int total = n_file + n_param + (n_general > 0 ? n_general : 0);
    if (n_iter != total && !(total == 0 && n_iter == 0))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, sp,
                            "test_iter must be given once per test net: %d test net(s), %d "
                            "test_iter value(s)",
                            total, n_iter);
    if (total > MAX_TEST_NETS)
        return moka_pt_errf(err, MOKA_ERR_UNSUPPORTED, sp, "more than %d test nets", MAX_TEST_NETS);
    const int n_state = moka_pt_count(sp, "test_state");
    if (n_state && n_state != total)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(sp, "test_state", 0),
                            "test_state must be given once per test net (%d) or not at all", total);
    if (total > 0 && s->test_interval <= 0) s->test_interval = 0;
    for (int i = 0; i < total; i++) {
        state_from_node(n_state ? moka_pt_msg_at(sp, "test_state", i)
                                : moka_pt_msg(sp, "test_state"),
                        MOKA_TEST, &st, stages, 64);
        const char *tp = NULL;
        const moka_pt_node *tn = NULL;
        if (i < n_file)
            tp = moka_pt_str_at(sp, "test_net", i);
        else if (i < n_file + n_param)
            tn = moka_pt_msg_at(sp, "test_net_param", i - n_file);
        else if (path)
            tp = path;
        else
            tn = inl;
        moka_logf(MOKA_LOG_INFO, "solver", "Creating test net (#%d) specified by %s", i,
                  tp ? tp : "net_param");
        s->test_iter[i] = moka_pt_int_at(sp, "test_iter", i);
        if (s->test_iter[i] <= 0)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(sp, "test_iter", i),
                                "test_iter must be > 0");
        MOKA_TRY(build_net(s, tp, tn, &st, s->net, 1 + i, &s->test_nets[i], err));
        s->num_test = i + 1;
    }
    return MOKA_OK;
}

/* The TensorBoard event file, when a log_dir is given by flag or solver field. */
static moka_status open_summary(moka_solver *s, const char *solver_path, moka_err *err)
{
    const char *dir = s->opts.log_dir ? s->opts.log_dir : moka_pt_str(s->sp, "log_dir");
    s->histogram_interval = s->opts.histogram_interval > 0 ? s->opts.histogram_interval
                                                           : moka_pt_int(s->sp, "histogram_interval");
    s->log_images = s->opts.log_images > 0 ? s->opts.log_images : moka_pt_int(s->sp, "log_images");
    if (!dir[0]) return MOKA_OK;
    char run[256];
    if (s->opts.log_run) {
        snprintf(run, sizeof run, "%s", s->opts.log_run);
    } else {
        const char *base = strrchr(solver_path, '/');
        snprintf(run, sizeof run, "%s", base ? base + 1 : solver_path);
        char *dot = strrchr(run, '.');
        if (dot && dot != run) *dot = '\0';
    }
    if (!run[0] || strchr(run, '/') || strcmp(run, ".") == 0 || strcmp(run, "..") == 0)
        return moka_errf(err, MOKA_ERR_CONFIG, "bad run name '%s' for the event files", run);
    MOKA_TRY(moka_summary_open(dir, run, s->net, &s->summary, err));
    moka_logf(MOKA_LOG_INFO, "solver", "Writing TensorBoard events to %s",
              moka_summary_path(s->summary));
    return MOKA_OK;
}

/* The data-parallel setup, once, from rank 0: ranks per host and the global batch. */
static void log_world(const moka_solver *s)
{
    char hosts[400] = "";
    size_t len = 0;
    for (int r = 0; r < s->world && len + 80 < sizeof hosts; r++) {
        const char *h = moka_dist_host(s->dist, r);
        bool seen = false;
        for (int q = 0; q < r; q++) seen |= strcmp(moka_dist_host(s->dist, q), h) == 0;
        if (seen) continue;
        int n = 0;
        for (int q = r; q < s->world; q++) n += strcmp(moka_dist_host(s->dist, q), h) == 0;
        len += (size_t)snprintf(hosts + len, sizeof hosts - len, "%s%s x%d", len ? ", " : "", h,
                                n);
    }
    const int64_t b = moka_net_batch_size(s->net);
    moka_dp_stats ds;
    moka_dp_get_stats(s->dp, &ds);
    moka_logf(MOKA_LOG_INFO, "solver",
              "Data-parallel training on %d ranks (%s; %s), %d threads each; batch %lld per rank, "
              "global batch %lld (%d x %lld x iter_size %lld); gradients %.2f MB in %d buckets",
              s->world, moka_dist_engine(s->dist), hosts, moka_ctx_apply_threads(&s->ctx),
              (long long)b, (long long)(s->world * b * s->hp.iter_size), s->world, (long long)b,
              (long long)s->hp.iter_size, (double)ds.nbytes / 1e6, ds.num_buckets);
}

moka_status moka_solver_create(const char *solver_path, const moka_solver_opts *opts,
                               moka_solver **out, moka_err *err)
{
    *out = NULL;
    moka_solver *s = calloc(1, sizeof *s);
    if (!s) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    if (opts) s->opts = *opts;
    moka_status st =
        moka_pt_parse_file(solver_path, &caffe__solver_parameter__descriptor, &s->doc, err);
    if (st) goto fail;
    s->sp = moka_pt_root(s->doc);
    moka_ctx_init(&s->ctx);
    s->ctx.threads = s->opts.threads;
    s->ctx.cache_dir = s->opts.cache_dir;
    s->ctx.engine = s->opts.engine;
    s->ctx.precision = s->opts.set_precision ? s->opts.precision
                       : strcmp(moka_pt_str(s->sp, "precision"), "BF16") == 0
                           ? MOKA_PRECISION_BF16
                           : MOKA_PRECISION_FP32;
    s->dist = s->opts.dist;
    s->rank = moka_dist_rank(s->dist);
    s->world = moka_dist_size(s->dist);
    s->ctx.rank = s->rank;
    s->ctx.world_size = s->world;
    if (s->ctx.threads <= 0 && s->world > 1) s->ctx.threads = moka_dist_default_threads(s->dist);
    if (moka_pt_int(s->sp, "random_seed") >= 0)
        s->ctx.seed = (uint64_t)moka_pt_int(s->sp, "random_seed");
    const int threads = moka_ctx_apply_threads(&s->ctx);
    if (strcmp(moka_pt_str(s->sp, "solver_mode"), "GPU") == 0)
        moka_logf(MOKA_LOG_WARN, "solver",
                  "solver_mode: GPU requested, but this build of moka has "
                  "no usable GPU; training on the CPU (%d threads)",
                  threads);
    st = read_hparams(s, err);
    if (st) goto fail;
    st = build_nets(s, err);
    if (st) goto fail;
    if (s->ctx.precision == MOKA_PRECISION_BF16) {
        const char *isa = "";
        (void)moka_dnnl_bf16_supported(&isa);
        moka_logf(MOKA_LOG_INFO, "solver",
                  "Precision bf16: convolutions and inner products compute on bf16 inputs (oneDNN, "
                  "%s); weights, biases and the solver stay fp32",
                  isa);
    }
    /* Solver slots mirror the net's parameter list; history has the same layout as the block. */
    const int np = moka_net_num_params(s->net);
    const moka_net_param *params = moka_net_params(s->net);
    s->slots = calloc((size_t)np + 1, sizeof *s->slots);
    const int64_t count = moka_net_param_count(s->net);
    s->history = calloc((size_t)(count * s->rule->num_history + 1), sizeof(float));
    s->losses = calloc((size_t)s->average_loss, sizeof(float));
    if (!s->slots || !s->history || !s->losses) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < np; i++) {
        if (!params[i].learnable || params[i].lr_mult == 0.0f) continue;
        s->slots[s->num_slots++] = (moka_param_slot){params[i].offset, params[i].count,
                                                     params[i].lr_mult, params[i].decay_mult};
    }
    /* Caffe's solver-level `weights` initialise the train net like --weights. */
    for (int i = 0; i < moka_pt_count(s->sp, "weights"); i++) {
        st = moka_solver_load_weights(s, moka_pt_str_at(s->sp, "weights", i), err);
        if (st) goto fail;
    }
    if (s->rank == 0) {
        st = open_summary(s, solver_path, err);
        if (st) goto fail;
    }
    if (s->world > 1) {
        st = moka_dp_create(s->dist, s->net, s->opts.bucket_bytes, &s->dp, err);
        if (st) goto fail;
        s->need_sync = true;
        log_world(s);
    }
    moka_logf(MOKA_LOG_INFO, "solver", "Solver scaffolding done.");
    *out = s;
    return MOKA_OK;
fail:
    moka_solver_free(s);
    return st;
}

void moka_solver_free(moka_solver *s)
{
    if (!s) return;
    moka_dp_free(s->dp);
    for (int i = 0; i < s->num_test; i++) moka_net_free(s->test_nets[i]);
    moka_net_free(s->net);
    for (int i = 0; i < 1 + MAX_TEST_NETS; i++) moka_pt_doc_free(s->net_docs[i]);
    moka_summary_close(s->summary);
    moka_pt_doc_free(s->doc);
    free(s->stepvalues);
    free(s->slots);
    free(s->history);
    free(s->losses);
    free(s->scores);
    free(s);
}

moka_status moka_solver_load_weights(moka_solver *s, const char *paths, moka_err *err)
{
    /* Rank 0 reads the files; the others get the weights with the next synchronisation. */
    s->need_sync = s->world > 1;
    if (s->rank != 0) return MOKA_OK;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", paths);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        moka_logf(MOKA_LOG_INFO, "solver", "Finetuning from %s", p);
        MOKA_TRY(moka_net_load_weights(s->net, p, err));
    }
    return MOKA_OK;
}

/* ---- one iteration ---- */

static void update_smoothed_loss(moka_solver *s, float loss, int64_t start_iter)
{
    if (s->num_losses < s->average_loss) {
        s->losses[s->num_losses++] = loss;
        s->smoothed_loss =
            (s->smoothed_loss * (float)(s->num_losses - 1) + loss) / (float)s->num_losses;
    } else {
        const int64_t idx = (s->iter - start_iter) % s->average_loss;
        s->smoothed_loss += (loss - s->losses[idx]) / (float)s->average_loss;
        s->losses[idx] = loss;
    }
}

static void apply_update(moka_solver *s, float rate, bool display)
{
    if (display)
        moka_logf(MOKA_LOG_INFO, "solver", "Iteration %lld, lr = %g", (long long)s->iter, rate);
    float *data = moka_net_param_data(s->net), *diff = moka_net_param_grad(s->net);
    const int64_t count = moka_net_param_count(s->net);
    const double norm = moka_update_clip(&s->hp, s->slots, s->num_slots, diff);
    if (s->hp.clip_gradients >= 0 && (float)norm > s->hp.clip_gradients)
        moka_logf(MOKA_LOG_INFO, "solver",
                  "Gradient clipping: scaling down gradients (L2 norm %g > %g) by scale factor %g",
                  norm, s->hp.clip_gradients, s->hp.clip_gradients / norm);
    if (s->rule->fused && s->ctx.engine == MOKA_ENGINE_FAST) {
        /* One parallel region, one pass per slot: each thread takes its share of every slot. */
        const float scale = s->hp.iter_size > 1 ? 1.0f / (float)s->hp.iter_size : 1.0f;
#pragma omp parallel if (count >= MOKA_UPDATE_OMP_MIN)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            float *h[2];
            for (int i = 0; i < s->num_slots; i++) {
                const moka_param_slot *sl = &s->slots[i];
                const int64_t lo = sl->count * t / nt, hi = sl->count * (t + 1) / nt;
                if (lo == hi) continue;
                const int64_t off = sl->offset + lo;
                for (int k = 0; k < s->rule->num_history; k++) h[k] = s->history + k * count + off;
                s->rule->fused(&s->hp, s->iter, rate * sl->lr_mult,
                               s->hp.weight_decay * sl->decay_mult, scale, hi - lo, data + off,
                               diff + off, h);
            }
        }
        return;
    }
    float *hist[2];
    for (int i = 0; i < s->num_slots; i++) {
        const moka_param_slot *sl = &s->slots[i];
        float *d = data + sl->offset, *g = diff + sl->offset;
        moka_update_normalize(&s->hp, sl, diff);
        moka_update_regularize(&s->hp, sl, data, diff);
        for (int h = 0; h < s->rule->num_history; h++)
            hist[h] = s->history + h * count + sl->offset;
        s->rule->compute(&s->hp, s->iter, rate * sl->lr_mult, sl->count, g, hist);
        const int64_t n = sl->count;
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < n; k++) d[k] -= g[k];
    }
}

static void log_outputs(moka_net *net, const char *which, const float *values)
{
    int idx = 0;
    for (int o = 0; o < moka_net_num_outputs(net); o++) {
        const moka_tensor *t = moka_net_output(net, o);
        const float lw = moka_net_output_loss_weight(net, o);
        for (int64_t k = 0; k < moka_tensor_count(t); k++, idx++) {
            const float v = values ? values[idx] : t->data[k];
            if (lw != 0.0f)
                moka_logf(MOKA_LOG_INFO, "solver",
                          "    %s net output #%d: %s = %g (* %g = %g loss)", which, idx,
                          moka_net_output_name(net, o), v, lw, lw * v);
            else
                moka_logf(MOKA_LOG_INFO, "solver", "    %s net output #%d: %s = %g", which, idx,
                          moka_net_output_name(net, o), v);
        }
    }
}

moka_status moka_solver_test(moka_solver *s, int id, const float **scores, int *n, moka_err *err)
{
    moka_net *tn = s->test_nets[id];
    moka_logf(MOKA_LOG_INFO, "solver", "Iteration %lld, Testing net (#%d)", (long long)s->iter, id);
    int total = 0;
    for (int o = 0; o < moka_net_num_outputs(tn); o++)
        total += (int)moka_tensor_count(moka_net_output(tn, o));
    float *sc = realloc(s->scores, (size_t)(total + 1) * sizeof(float));
    if (!sc) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    s->scores = sc;
    s->num_scores = total;
    double *acc = calloc((size_t)total + 1, sizeof(double)), test_loss = 0;
    if (!acc) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    /* Data-parallel: rank r runs test batches r, r + world, ...; its data layers read the
     * matching shard, and the sums are added up across ranks below. */
    for (int64_t i = s->rank; i < s->test_iter[id]; i += s->world) {
        if (!s->dp && poll_action(s) == MOKA_ACTION_STOP) {
            s->stopped_early = true;
            moka_logf(MOKA_LOG_INFO, "solver", "Test interrupted.");
            free(acc);
            return MOKA_OK;
        }
        moka_net_reseed(tn, (uint64_t)i);
        float iter_loss = 0;
        const moka_status st = moka_net_forward(tn, &iter_loss, err);
        test_loss += iter_loss;
        if (st) {
            free(acc);
            return st;
        }
        int idx = 0;
        for (int o = 0; o < moka_net_num_outputs(tn); o++) {
            const moka_tensor *t = moka_net_output(tn, o);
            for (int64_t k = 0; k < moka_tensor_count(t); k++) acc[idx++] += t->data[k];
        }
    }
    if (s->world > 1) {
        acc[total] = test_loss;
        const moka_status st = moka_dist_sum_f64(s->dist, acc, total + 1, err);
        if (st) {
            free(acc);
            return st;
        }
        test_loss = acc[total];
    }
    for (int i = 0; i < total; i++) s->scores[i] = (float)(acc[i] / (double)s->test_iter[id]);
    free(acc);
    if (moka_pt_bool(s->sp, "test_compute_loss"))
        moka_logf(MOKA_LOG_INFO, "solver", "Test loss: %g", test_loss / (double)s->test_iter[id]);
    log_outputs(tn, "Test", s->scores);
    if (s->summary) MOKA_TRY(moka_summary_test(s->summary, s->iter, id, tn, s->scores, err));
    if (scores) *scores = s->scores;
    if (n) *n = total;
    return MOKA_OK;
}

static moka_status test_all(moka_solver *s, moka_err *err)
{
    for (int i = 0; i < s->num_test && !s->stopped_early; i++)
        MOKA_TRY(moka_solver_test(s, i, NULL, NULL, err));
    return MOKA_OK;
}

/* Data-parallel: every rank takes rank 0's iteration, schedule position, data position, weights
 * and solver history (after creation, --weights or --snapshot), and moves its data layers to
 * the same place in the global sample order. */
static moka_status sync_state(moka_solver *s, moka_err *err)
{
    if (!s->need_sync) return MOKA_OK;
    int64_t hdr[3] = {s->iter, s->current_step, s->data_pos};
    MOKA_TRY(moka_dist_broadcast(s->dist, hdr, sizeof hdr, err));
    const int64_t count = moka_net_param_count(s->net);
    MOKA_TRY(moka_dist_broadcast(s->dist, moka_net_param_data(s->net),
                                 count * (int64_t)sizeof(float), err));
    MOKA_TRY(moka_dist_broadcast(s->dist, s->history,
                                 count * s->rule->num_history * (int64_t)sizeof(float), err));
    if (s->rank != 0) {
        s->iter = hdr[0];
        s->current_step = hdr[1];
        if (hdr[2] != s->data_pos) {
            s->data_pos = hdr[2];
            MOKA_TRY(moka_net_seek(s->net, s->data_pos, err));
        }
    }
    s->need_sync = false;
    return MOKA_OK;
}

/* Logs the allreduce time per iteration since the last call and how much of it backward hid. */
static void log_comm(moka_solver *s)
{
    moka_dp_stats ds;
    moka_dp_get_stats(s->dp, &ds);
    if (ds.steps == 0) return;
    const double hidden = ds.comm_ms > 0 ? 1.0 - ds.exposed_ms / ds.comm_ms : 1.0;
    moka_logf(MOKA_LOG_INFO, "solver",
              "Iteration %lld, allreduce %.3f ms/iter (%d buckets, %.2f MB), %.0f%% hidden "
              "behind backward, %.3f ms/iter exposed",
              (long long)s->iter, ds.comm_ms / (double)ds.steps, ds.num_buckets,
              (double)ds.nbytes / 1e6, 100.0 * (hidden > 0 ? hidden : 0),
              ds.exposed_ms / (double)ds.steps);
    moka_dp_reset_stats(s->dp);
}

moka_status moka_solver_step(moka_solver *s, int64_t iters, moka_err *err)
{
    MOKA_TRY(sync_state(s, err));
    const int64_t start_iter = s->iter, stop_iter = s->iter + iters;
    int64_t last_iter = s->iter;
    s->num_losses = 0;
    s->smoothed_loss = 0;
    double t_last = now_s();
    const double t_start = t_last;
    const bool test_init = moka_pt_bool(s->sp, "test_initialization");
    while (s->iter < stop_iter) {
        moka_net_zero_param_grads(s->net);
        if (s->test_interval > 0 && s->iter % s->test_interval == 0 && (s->iter > 0 || test_init)) {
            MOKA_TRY(test_all(s, err));
            if (s->stopped_early) break;
        }
        const bool display = s->display > 0 && s->iter % s->display == 0;
        float loss = 0;
        /* Data-parallel: stop/snapshot requests of any rank travel with the loss, so every rank
         * acts on them at the end of the same iteration. */
        float requests[2] = {0, 0};
        if (s->dp) {
            const moka_solver_action a = poll_action(s);
            requests[0] = a == MOKA_ACTION_STOP;
            requests[1] = a == MOKA_ACTION_SNAPSHOT;
            MOKA_TRY(moka_dp_step(s->dp, s->iter * s->hp.iter_size, (int)s->hp.iter_size,
                                  requests, 2, &loss, err));
        } else {
            for (int64_t k = 0; k < s->hp.iter_size; k++) {
                const uint64_t pass = (uint64_t)(s->iter * s->hp.iter_size + k);
                float l;
                moka_net_reseed(s->net, pass);
                MOKA_TRY(moka_net_forward(s->net, &l, err));
                MOKA_TRY(moka_net_backward(s->net, err));
                loss += l;
            }
        }
        s->data_pos += s->hp.iter_size * moka_net_batch_size(s->net) * s->world;
        loss /= (float)s->hp.iter_size;
        if (!isfinite(loss))
            moka_logf(MOKA_LOG_WARN, "solver", "Iteration %lld: loss is %g", (long long)s->iter,
                      loss);
        update_smoothed_loss(s, loss, start_iter);
        /* Caffe computes the rate in ApplyUpdate; here it is needed for the summary too. */
        const float rate = moka_lr_rate(&s->hp, s->iter, &s->current_step);
        if (display) {
            const double now = now_s(), lapse = now - t_last;
            const double per_s = (double)(s->iter - last_iter) / (lapse > 0 ? lapse : 1);
            if (s->summary) {
                const double ips = per_s * (double)(s->hp.iter_size * moka_net_batch_size(s->net) *
                                                    s->world);
                MOKA_TRY(moka_summary_train(s->summary, s->iter, loss, s->smoothed_loss, rate,
                                            ips, err));
                if (s->log_images > 0)
                    MOKA_TRY(moka_summary_images(s->summary, s->iter, s->net, s->log_images, err));
            }
            moka_logf(MOKA_LOG_INFO, "solver",
                      "Iteration %lld (%g iter/s, %.3fs/%lld iters), loss = %g", (long long)s->iter,
                      per_s, lapse, (long long)s->display, s->smoothed_loss);
            t_last = now;
            last_iter = s->iter;
            log_outputs(s->net, "Train", NULL);
            if (s->dp) log_comm(s);
        }
        if (s->summary && s->histogram_interval > 0 && s->iter % s->histogram_interval == 0)
            MOKA_TRY(moka_summary_histograms(s->summary, s->iter, s->net, err));
        apply_update(s, rate, display);
        s->iter++;
        const moka_solver_action a = !s->dp          ? poll_action(s)
                                     : requests[0] > 0 ? MOKA_ACTION_STOP
                                     : requests[1] > 0 ? MOKA_ACTION_SNAPSHOT
                                                       : MOKA_ACTION_NONE;
        if ((s->snapshot > 0 && s->iter % s->snapshot == 0) || a == MOKA_ACTION_SNAPSHOT)
            MOKA_TRY(moka_solver_snapshot(s, err));
        if (a == MOKA_ACTION_STOP) {
            s->stopped_early = true;
            break;
        }
    }
    const double elapsed = now_s() - t_start;
    const int64_t done = s->iter - start_iter;
    s->images_per_s =
        elapsed > 0
            ? (double)(done * s->hp.iter_size * moka_net_batch_size(s->net) * s->world) / elapsed
            : 0;
    return MOKA_OK;
}

moka_status moka_solver_solve(moka_solver *s, moka_err *err)
{
    moka_logf(MOKA_LOG_INFO, "solver", "Solving %s", moka_net_name(s->net));
    moka_logf(MOKA_LOG_INFO, "solver", "Learning Rate Policy: %s", s->hp.lr_policy);
    s->stopped_early = false;
    MOKA_TRY(sync_state(s, err)); /* the iteration to run from is rank 0's */
    MOKA_TRY(moka_solver_step(s, s->max_iter - s->iter, err));
    if (moka_pt_bool(s->sp, "snapshot_after_train") &&
        (s->snapshot <= 0 || s->iter % s->snapshot != 0))
        MOKA_TRY(moka_solver_snapshot(s, err));
    if (s->stopped_early) {
        moka_logf(MOKA_LOG_INFO, "solver", "Optimization stopped early.");
        return MOKA_OK;
    }
    if (s->display > 0 && s->iter % s->display == 0) {
        float loss;
        moka_net_reseed(s->net, (uint64_t)(s->iter * s->hp.iter_size));
        MOKA_TRY(moka_net_forward(s->net, &loss, err));
        if (s->world > 1) {
            double sum = loss;
            MOKA_TRY(moka_dist_sum_f64(s->dist, &sum, 1, err));
            loss = (float)(sum / s->world);
        }
        update_smoothed_loss(s, loss, s->iter);
        moka_logf(MOKA_LOG_INFO, "solver", "Iteration %lld, loss = %g", (long long)s->iter,
                  s->smoothed_loss);
    }
    if (s->test_interval > 0 && s->iter % s->test_interval == 0) MOKA_TRY(test_all(s, err));
    moka_logf(MOKA_LOG_INFO, "solver", "Optimization Done.");
    return MOKA_OK;
}

/* ---- snapshots ---- */

static void snapshot_name(const moka_solver *s, const char *ext, char *buf, size_t n)
{
    snprintf(buf, n, "%s_iter_%lld%s", moka_pt_str(s->sp, "snapshot_prefix"), (long long)s->iter,
             ext);
}

moka_status moka_solver_snapshot(moka_solver *s, moka_err *err)
{
    if (s->rank != 0) return MOKA_OK; /* every rank holds the same weights and history */
    char model[4096], state[4096];
    snapshot_name(s, ".caffemodel", model, sizeof model);
    snapshot_name(s, ".solverstate", state, sizeof state);
    moka_logf(MOKA_LOG_INFO, "solver", "Snapshotting to binary proto file %s", model);
    MOKA_TRY(moka_net_save_weights(s->net, model, err));
    moka_logf(MOKA_LOG_INFO, "solver", "Snapshotting solver state to binary proto file %s", state);
    /* History blobs in Caffe's order: every parameter of the first set, then the second. */
    const int np = moka_net_num_params(s->net);
    const moka_net_param *params = moka_net_params(s->net);
    const int nh = np * s->rule->num_history;
    moka_tensor *ts = calloc((size_t)nh + 1, sizeof *ts);
    moka_tensor **tp = calloc((size_t)nh + 1, sizeof *tp);
    if (!ts || !tp) {
        free(ts);
        free(tp);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    }
    const int64_t count = moka_net_param_count(s->net);
    for (int h = 0; h < s->rule->num_history; h++)
        for (int i = 0; i < np; i++) {
            moka_tensor *t = &ts[h * np + i];
            const moka_layer *l = moka_net_layer(s->net, params[i].layer);
            *t = *l->weight[params[i].index];
            t->data = s->history + h * count + params[i].offset;
            t->grad = NULL;
            tp[h * np + i] = t;
        }
    const moka_status st =
        moka_solverstate_write(state, s->iter, s->data_pos, model, s->current_step, tp, nh, err);
    free(ts);
    free(tp);
    return st;
}

moka_status moka_solver_restore(moka_solver *s, const char *path, moka_err *err)
{
    moka_solverstate ss;
    /* Rank 0 reads the snapshot; the others get it with the next synchronisation. */
    s->need_sync = s->world > 1;
    if (s->rank != 0) return MOKA_OK;
    moka_logf(MOKA_LOG_INFO, "solver", "Restoring previous solver status from %s", path);
    MOKA_TRY(moka_solverstate_read(path, &ss, err));
    moka_status st = MOKA_OK;
    const int np = moka_net_num_params(s->net);
    const moka_net_param *params = moka_net_params(s->net);
    const int nh = np * s->rule->num_history;
    const int64_t count = moka_net_param_count(s->net);
    if (ss.num_history != nh) {
        st = moka_errf(err, MOKA_ERR_CONFIG,
                       "'%s' holds %d history blobs but a %s solver on this "
                       "net needs %d",
                       path, ss.num_history, s->hp.type, nh);
        goto done;
    }
    for (int h = 0; h < s->rule->num_history; h++)
        for (int i = 0; i < np; i++) {
            const moka_tensor *src = &ss.history[h * np + i];
            if (moka_tensor_count(src) != params[i].count) {
                st = moka_errf(err, MOKA_ERR_SHAPE,
                               "'%s': history blob %d has %lld values, the "
                               "net's parameter has %lld",
                               path, h * np + i, (long long)moka_tensor_count(src),
                               (long long)params[i].count);
                goto done;
            }
            memcpy(s->history + h * count + params[i].offset, src->data,
                   (size_t)params[i].count * sizeof(float));
        }
    if (ss.learned_net && ss.learned_net[0]) {
        st = moka_net_load_weights(s->net, ss.learned_net, err);
        if (st) goto done;
    }
    s->iter = ss.iter;
    s->current_step = ss.current_step;
    /* Snapshots without moka's data_position (Caffe's, older moka's) were taken at this world
     * size as far as anyone knows. */
    s->data_pos = ss.data_position >= 0
                      ? ss.data_position
                      : s->iter * s->hp.iter_size * moka_net_batch_size(s->net) * s->world;
    st = moka_net_seek(s->net, s->data_pos, err);
    if (st == MOKA_OK && s->summary) st = moka_summary_resume(s->summary, s->iter, err);
done:
    moka_solverstate_deinit(&ss);
    return st;
}

moka_status moka_solver_check_file(const char *path, moka_err *err)
{
    moka_solver *s = calloc(1, sizeof *s);
    if (!s) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    moka_status st = moka_pt_parse_file(path, &caffe__solver_parameter__descriptor, &s->doc, err);
    if (st == MOKA_OK) {
        s->sp = moka_pt_root(s->doc);
        st = read_hparams(s, err);
    }
    if (st == MOKA_OK) {
        const moka_pt_node *sp = s->sp;
        const int n_net = moka_pt_has(sp, "net") + moka_pt_has(sp, "net_param") +
                          moka_pt_has(sp, "train_net") + moka_pt_has(sp, "train_net_param");
        if (n_net != 1)
            st = moka_pt_errf(err, MOKA_ERR_CONFIG, sp,
                              "give exactly one of net, net_param, "
                              "train_net, train_net_param (found %d)",
                              n_net);
    }
    moka_solver_free(s);
    return st;
}

int64_t moka_solver_iter(const moka_solver *s) { return s->iter; }
int moka_solver_stopped_early(const moka_solver *s) { return s->stopped_early; }
moka_net *moka_solver_net(moka_solver *s) { return s->net; }
int moka_solver_num_test_nets(const moka_solver *s) { return s->num_test; }
moka_net *moka_solver_test_net(moka_solver *s, int i) { return s->test_nets[i]; }
double moka_solver_images_per_second(const moka_solver *s) { return s->images_per_s; }
