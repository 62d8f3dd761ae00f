/* include/moka/solver.h -- training driven by a Caffe SolverParameter file.
 *
 * moka_solver_solve behaves like Caffe's Solver::Solve: it runs from the current iteration to
 * max_iter, testing every test_interval iterations (and at 0 when test_initialization), printing
 * Caffe's log lines every `display` iterations through moka_log, snapshotting every `snapshot`
 * iterations and at the end (snapshot_after_train) as <snapshot_prefix>_iter_<N>.caffemodel and
 * .solverstate, and stopping or snapshotting when the action callback asks (signals).
 *
 * Random streams (fillers, shuffles, dropout) derive from random_seed (or moka's fixed default)
 * and the iteration, so the same seed and thread count give a bit-identical run, and a run
 * resumed from a snapshot continues exactly as if it had never stopped.
 */
#ifndef MOKA_SOLVER_H
#define MOKA_SOLVER_H

#include <stdbool.h>
#include <stdint.h>

#include "moka/ctx.h"
#include "moka/dist.h"
#include "moka/net.h"
#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moka_solver moka_solver;

/* What the caller wants done at the next iteration boundary (Caffe's SolverAction). */
typedef enum moka_solver_action {
    MOKA_ACTION_NONE = 0,
    MOKA_ACTION_STOP,     /* stop; Solve still writes the final snapshot if snapshot_after_train */
    MOKA_ACTION_SNAPSHOT, /* snapshot now and go on */
} moka_solver_action;
typedef moka_solver_action (*moka_solver_action_fn)(void *user);

typedef struct moka_solver_opts {
    int64_t max_iter; /* > 0 overrides the file's max_iter (the CLI's --iterations) */
    int threads;      /* kernel threads; 0 = all CPUs */
    moka_solver_action_fn action; /* polled once per iteration and per test batch; may be NULL */
    void *action_user;
    /* TensorBoard event files (override the solver file's log_dir / histogram_interval /
     * log_images; NULL or 0 keep the file's values). Events go to <log_dir>/<log_run>/; the run
     * name defaults to the solver file's name without its extension. */
    const char *log_dir;
    const char *log_run;
    int64_t histogram_interval;
    int64_t log_images;
    const char *cache_dir; /* cache for s3:// data sources (NULL: the ctx default) */
    /* Data-parallel training (NULL or size 1: one process). With `size` ranks, batch_size in the
     * net file is per rank (global batch = size * batch_size * iter_size, as in Caffe's
     * multi-GPU mode); each rank reads its shard, gradients are averaged across ranks (buckets
     * of about bucket_bytes, 0 = 25 MiB), test passes are split across ranks and their scores
     * summed; rank 0 alone writes snapshots and event files. --weights and --snapshot are read
     * by rank 0 and broadcast. The action callback is polled on every rank and the requests are
     * combined, so all ranks stop or snapshot at the same iteration. */
    moka_dist *dist;
    int64_t bucket_bytes;
    moka_engine engine; /* MOKA_ENGINE_FAST (0, default) or MOKA_ENGINE_REFERENCE */
    /* With set_precision, `precision` replaces the solver file's `precision` field (FP32 or
     * BF16; default FP32). */
    bool set_precision;
    moka_precision precision;
} moka_solver_opts;

/* Reads the solver file and builds the train net and the test nets (sharing its weights).
 * Relative net and snapshot paths are taken from the current directory, as Caffe does.
 * Free with moka_solver_free. */
MOKA_API moka_status moka_solver_create(const char *solver_path, const moka_solver_opts *opts,
                                        moka_solver **out, moka_err *err);
MOKA_API void moka_solver_free(moka_solver *s);

/* Fine-tuning: copies weights by layer name from one or more .caffemodel files ("a,b"). */
MOKA_API moka_status moka_solver_load_weights(moka_solver *s, const char *paths, moka_err *err);
/* Resumes from a .solverstate: iteration, lr schedule position, optimiser history, and the
 * weights of the .caffemodel it names. */
MOKA_API moka_status moka_solver_restore(moka_solver *s, const char *solverstate_path,
                                         moka_err *err);
/* Runs to max_iter as Caffe's Solve. Returns MOKA_OK also when stopped by the action callback
 * (check moka_solver_stopped_early). */
MOKA_API moka_status moka_solver_solve(moka_solver *s, moka_err *err);
/* Runs `iters` iterations (no final snapshot or test). */
MOKA_API moka_status moka_solver_step(moka_solver *s, int64_t iters, moka_err *err);
/* Writes <prefix>_iter_<iter>.caffemodel and .solverstate (each to a temporary name, then
 * renamed). */
MOKA_API moka_status moka_solver_snapshot(moka_solver *s, moka_err *err);
/* Runs every test net for its test_iter batches and logs the averaged outputs. The scores of
 * test net `net_id` (one per output element, Caffe's order) are returned through scores/n when
 * not NULL; they stay valid until the next test or moka_solver_free. */
MOKA_API moka_status moka_solver_test(moka_solver *s, int net_id, const float **scores, int *n,
                                      moka_err *err);

/* Validates a SolverParameter file without building its nets: the schema and the solver
 * settings (type, lr_policy and what it needs, test_iter per test net, snapshot settings). */
MOKA_API moka_status moka_solver_check_file(const char *path, moka_err *err);

MOKA_API int64_t moka_solver_iter(const moka_solver *s);
MOKA_API int moka_solver_stopped_early(const moka_solver *s);
MOKA_API moka_net *moka_solver_net(moka_solver *s);
MOKA_API int moka_solver_num_test_nets(const moka_solver *s);
MOKA_API moka_net *moka_solver_test_net(moka_solver *s, int i);
/* Training images per second over the whole of the last solve/step call (all ranks together). */
MOKA_API double moka_solver_images_per_second(const moka_solver *s);

#ifdef __cplusplus
}
#endif
#endif /* MOKA_SOLVER_H */
