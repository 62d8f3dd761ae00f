/* src/dist/dist.h -- what the files of src/dist share: the moka_dist struct, and the few calls
 * a transport provides (dist_mpi.c with Open MPI, dist_single.c in builds without MPI).
 *
 * dist.c implements the public API of include/moka/dist.h over these; when the process was not
 * launched as part of a job (`joined` false) it never calls the transport at all, so a plain
 * `moka train` behaves the same in every build.
 */
#ifndef MOKA_DIST_INTERNAL_H
#define MOKA_DIST_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/layer.h"
#include "moka/dist.h"

#define MOKA_DIST_HOST_MAX 64

typedef struct moka_heartbeat moka_heartbeat;

struct moka_dist {
    int rank, size, local_rank, local_size;
    char (*hosts)[MOKA_DIST_HOST_MAX]; /* size entries */
    char engine[64];
    bool joined; /* part of an MPI job (else rank 0 of 1, no transport calls) */
    moka_dist_opts opts;
    /* Monotonic nanoseconds at which the collective in progress started, 0 when none: the
     * watchdog ends the job when one blocks longer than opts.collective_timeout_s. */
    _Atomic int64_t busy_since_ns;
    char busy_what[64]; /* which collective, for the message (written before busy_since_ns) */
    moka_heartbeat *hb;
};

/* True when the environment says an MPI launcher (mpirun, srun) started this process. */
MOKA_INTERNAL bool moka_dist_launched(void);
MOKA_INTERNAL int64_t moka_dist_now_ns(void);

/* ---- the transport (dist_mpi.c or dist_single.c) ---- */

/* Joins the job: sets rank, size, local_rank, local_size, hosts and engine. */
MOKA_INTERNAL moka_status moka_transport_join(moka_dist *d, moka_err *err);
MOKA_INTERNAL moka_status moka_transport_leave(moka_dist *d, moka_err *err);
MOKA_INTERNAL void moka_transport_abort(moka_dist *d, int code);
/* Collectives over all ranks, blocking. counts may exceed INT_MAX (the transport splits). */
MOKA_INTERNAL moka_status moka_transport_broadcast(moka_dist *d, void *buf, int64_t nbytes,
                                                   moka_err *err);
MOKA_INTERNAL moka_status moka_transport_sum_f32(moka_dist *d, float *buf, int64_t count,
                                                 moka_err *err);
MOKA_INTERNAL moka_status moka_transport_sum_f64(moka_dist *d, double *buf, int64_t count,
                                                 moka_err *err);
MOKA_INTERNAL moka_status moka_transport_allgather(moka_dist *d, const void *mine, void *all,
                                                   int64_t nbytes, moka_err *err);
MOKA_INTERNAL moka_status moka_transport_barrier(moka_dist *d, moka_err *err);

/* Sums `count` floats in place over all ranks (the communication thread's call). */
MOKA_INTERNAL moka_status moka_dist_sum_f32(moka_dist *d, float *buf, int64_t count,
                                            moka_err *err);

/* ---- heartbeat and watchdog (heartbeat.c) ---- */

/* Exchanges UDP addresses with every rank (a collective) and starts the thread that sends a
 * heartbeat to the watched peers every second, and ends the job through d->opts.on_fault when a
 * peer is silent for opts.timeout_s or a collective blocks for opts.collective_timeout_s. */
MOKA_INTERNAL moka_status moka_heartbeat_start(moka_dist *d, moka_heartbeat **out, moka_err *err);
MOKA_INTERNAL void moka_heartbeat_stop(moka_heartbeat *hb);

#endif /* MOKA_DIST_INTERNAL_H */
