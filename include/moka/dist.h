/* include/moka/dist.h -- data-parallel training across processes and nodes.
 *
 * A moka_dist is this process's place in a job: rank r of `size` processes. Launched by mpirun
 * (Open MPI) or by Slurm's srun, moka_dist_init joins the MPI job; started any other way it is
 * rank 0 of 1 and nothing else changes. A build without MPI always gives rank 0 of 1.
 *
 * Synchronous data-parallel SGD (moka_dp): every rank holds the whole net and reads its own shard
 * of each batch (moka_ctx.rank/world_size); after backward the gradients are averaged across
 * ranks, so every rank applies the same update. The flat gradient block is cut into buckets
 * (about bucket_bytes each, in the reverse layer order backward produces them; smaller for small
 * nets so that there are several), and a communication thread reduces each bucket as soon as
 * backward has finished every layer that writes it, while backward goes on with earlier layers
 * (the overlap PyTorch DDP and Horovod use). Every rank reduces the same buckets in the same order.
 *
 * Failures end the whole job in bounded time instead of hanging it: each rank sends a small UDP
 * heartbeat to its peers every second; a peer silent for `timeout_s` (a crashed process or node,
 * or a node cut off the network), or a collective call that has not completed within
 * `collective_timeout_s`, makes the watchdog call opts.on_fault with a one-line message naming the
 * lost rank and host. The CLI's handler prints it and exits, which makes mpirun end the job.
 */
#ifndef MOKA_DIST_H
#define MOKA_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "moka/net.h"
#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moka_dist moka_dist;

/* Called from the watchdog thread when the job cannot go on (lost peer, stuck collective).
 * `msg` is one line. The handler should end the process (the other ranks are blocked in
 * collectives); if it returns, the watchdog aborts the MPI job itself. */
typedef void (*moka_dist_fault_fn)(const char *msg, void *user);

typedef struct moka_dist_opts {
    double timeout_s;            /* silence after which a peer is declared lost (0: 10 s) */
    double collective_timeout_s; /* longest a collective may block (0: 600 s) */
    moka_dist_fault_fn on_fault; /* may be NULL: then the watchdog aborts the MPI job */
    void *fault_user;
    bool force_single; /* do not join MPI even when launched by mpirun/srun */
} moka_dist_opts;

/* Joins the MPI job when the environment says this process was started by mpirun or srun
 * (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK, or SLURM_NTASKS > 1), else makes a rank-0-of-1
 * dist. `opts` may be NULL (defaults). MOKA_ERR_BACKEND when MPI fails to start,
 * MOKA_ERR_UNSUPPORTED when launched by mpirun but built without MPI. Free with
 * moka_dist_finalize. Call once per process, before starting other threads. */
MOKA_API moka_status moka_dist_init(const moka_dist_opts *opts, moka_dist **out, moka_err *err);
/* Waits for every rank (so no rank stops its heartbeat while another still needs it), stops
 * the watchdog and leaves MPI. NULL does nothing. */
MOKA_API moka_status moka_dist_finalize(moka_dist *d, moka_err *err);
/* Ends every rank of the job with exit status `code` (size 1: returns without doing anything, so
 * the caller exits as usual). For errors one rank hits alone, so the others do not wait for it
 * forever. */
MOKA_API void moka_dist_abort(moka_dist *d, int code);

MOKA_API int moka_dist_rank(const moka_dist *d);
MOKA_API int moka_dist_size(const moka_dist *d);
/* Ranks on this node (same shared-memory domain), and this rank's index among them. */
MOKA_API int moka_dist_local_size(const moka_dist *d);
MOKA_API int moka_dist_local_rank(const moka_dist *d);
/* The host name of rank r (0 <= r < size). */
MOKA_API const char *moka_dist_host(const moka_dist *d, int r);
/* "Open MPI v4.1.4" or "none". */
MOKA_API const char *moka_dist_engine(const moka_dist *d);
/* Kernel threads a rank should use when the user did not say: the CPUs this process may run on,
 * divided among the ranks of this node that share them. */
MOKA_API int moka_dist_default_threads(const moka_dist *d);

/* In-place collectives over all ranks (called from one thread at a time; never while a moka_dp
 * step runs). broadcast copies rank 0's `nbytes` to every rank; sum_f64 sums element-wise. */
MOKA_API moka_status moka_dist_broadcast(moka_dist *d, void *buf, int64_t nbytes, moka_err *err);
MOKA_API moka_status moka_dist_sum_f64(moka_dist *d, double *buf, int64_t count, moka_err *err);
MOKA_API moka_status moka_dist_barrier(moka_dist *d, moka_err *err);

/* ---- data-parallel forward/backward ---- */

typedef struct moka_dp moka_dp;

/* Prepares gradient averaging for `net` (which must outlive the moka_dp): plans the buckets
 * and starts the communication thread. bucket_bytes <= 0 means 25 MiB. */
MOKA_API moka_status moka_dp_create(moka_dist *d, moka_net *net, int64_t bucket_bytes,
                                    moka_dp **out, moka_err *err);
MOKA_API void moka_dp_free(moka_dp *dp);

/* One iteration of `passes` forward+backward passes (Caffe's iter_size), numbered first_pass,
 * first_pass + 1, ... for the per-pass random streams. Parameter gradients must be zero on entry
 * (moka_net_zero_param_grads); on return they hold the sum over this rank's passes averaged over
 * ranks, identical on every rank. `scalars` (n <= 8 values, may be NULL when n is 0) are summed
 * over ranks in the same exchange; *loss receives the loss summed over passes and averaged over
 * ranks. The reduction of the last pass's gradients overlaps its backward. */
MOKA_API moka_status moka_dp_step(moka_dp *dp, int64_t first_pass, int passes, float *scalars,
                                  int n, float *loss, moka_err *err);

typedef struct moka_dp_stats {
    int64_t steps;     /* moka_dp_step calls counted */
    int num_buckets;   /* buckets per step */
    int64_t nbytes;    /* gradient bytes reduced per step */
    double comm_ms;    /* time the communication thread spent in collectives, summed */
    double exposed_ms; /* time the caller waited for them after backward, summed */
} moka_dp_stats;
/* Counters since creation or the last reset. hidden share = 1 - exposed_ms / comm_ms. */
MOKA_API void moka_dp_get_stats(const moka_dp *dp, moka_dp_stats *out);
MOKA_API void moka_dp_reset_stats(moka_dp *dp);

#ifdef __cplusplus
}
#endif
#endif /* MOKA_DIST_H */
