/* src/dist/dist.c -- the public moka_dist API over the transport (see dist.h): job detection,
 * node-local thread sizing, and collectives that the watchdog keeps an eye on. */
#define _GNU_SOURCE
#include "dist/dist.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moka/log.h"

int64_t moka_dist_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && v[0];
}

bool moka_dist_launched(void)
{
    /* Open MPI's mpirun, PMIx launchers (srun --mpi=pmix, prterun), PMI-1/2 (srun --mpi=pmi2,
     * MPICH's hydra), and Slurm's srun with more than one task. */
    if (env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK"))
        return true;
    const char *nt = getenv("SLURM_NTASKS");
    return env_set("SLURM_PROCID") && nt && atoi(nt) > 1;
}

moka_status moka_dist_init(const moka_dist_opts *opts, moka_dist **out, moka_err *err)
{
    *out = NULL;
    moka_dist *d = calloc(1, sizeof *d);
    if (!d) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    if (opts) d->opts = *opts;
    if (!(d->opts.timeout_s > 0)) d->opts.timeout_s = 10.0;
    if (!(d->opts.collective_timeout_s > 0)) d->opts.collective_timeout_s = 600.0;
    d->size = 1;
    d->local_size = 1;
    snprintf(d->engine, sizeof d->engine, "none");
    if (moka_dist_launched() && !d->opts.force_single) {
        moka_status st = moka_transport_join(d, err);
        if (st == MOKA_OK) {
            d->joined = true;
            st = moka_heartbeat_start(d, &d->hb, err);
        }
        if (st != MOKA_OK) {
            if (d->joined) moka_transport_abort(d, 1);
            free(d->hosts);
            free(d);
            return st;
        }
        *out = d;
        return MOKA_OK;
    }
    d->hosts = calloc(1, sizeof *d->hosts);
    if (!d->hosts) {
        free(d);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    }
    if (gethostname(d->hosts[0], MOKA_DIST_HOST_MAX - 1) != 0)
        snprintf(d->hosts[0], MOKA_DIST_HOST_MAX, "localhost");
    *out = d;
    return MOKA_OK;
}

moka_status moka_dist_finalize(moka_dist *d, moka_err *err)
{
    if (!d) return MOKA_OK;
    moka_status st = MOKA_OK;
    if (d->joined) {
        /* Everyone stops sending heartbeats only once everyone is done. */
        st = moka_dist_barrier(d, err);
        moka_heartbeat_stop(d->hb);
        d->hb = NULL;
        const moka_status st2 = moka_transport_leave(d, st ? NULL : err);
        if (st == MOKA_OK) st = st2;
    }
    free(d->hosts);
    free(d);
    return st;
}

void moka_dist_abort(moka_dist *d, int code)
{
    if (d && d->joined) moka_transport_abort(d, code);
}

int moka_dist_rank(const moka_dist *d) { return d ? d->rank : 0; }
int moka_dist_size(const moka_dist *d) { return d ? d->size : 1; }
int moka_dist_local_size(const moka_dist *d) { return d ? d->local_size : 1; }
int moka_dist_local_rank(const moka_dist *d) { return d ? d->local_rank : 0; }
const char *moka_dist_host(const moka_dist *d, int r)
{
    return d && r >= 0 && r < d->size ? d->hosts[r] : "?";
}
const char *moka_dist_engine(const moka_dist *d) { return d ? d->engine : "none"; }

int moka_dist_default_threads(const moka_dist *d)
{
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    int cpus = online > 0 ? (int)online : 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        cpus = CPU_COUNT(&set);
    /* A rank bound to its own cores (mpirun --bind-to, srun --cpu-bind) uses them all; ranks
     * that all see the whole node split it. */
    const int local = moka_dist_local_size(d);
    if (local > 1 && cpus == online) cpus /= local;
    return cpus > 0 ? cpus : 1;
}

/* Marks a collective as in progress for the watchdog. */
static void busy(moka_dist *d, const char *what)
{
    snprintf(d->busy_what, sizeof d->busy_what, "%s", what);
    atomic_store(&d->busy_since_ns, moka_dist_now_ns());
}
static void idle(moka_dist *d) { atomic_store(&d->busy_since_ns, 0); }

moka_status moka_dist_broadcast(moka_dist *d, void *buf, int64_t nbytes, moka_err *err)
{
    if (!d || !d->joined || nbytes <= 0) return MOKA_OK;
    busy(d, "broadcast");
    const moka_status st = moka_transport_broadcast(d, buf, nbytes, err);
    idle(d);
    return st;
}

moka_status moka_dist_sum_f64(moka_dist *d, double *buf, int64_t count, moka_err *err)
{
    if (!d || !d->joined || count <= 0) return MOKA_OK;
    busy(d, "allreduce");
    const moka_status st = moka_transport_sum_f64(d, buf, count, err);
    idle(d);
    return st;
}

moka_status moka_dist_sum_f32(moka_dist *d, float *buf, int64_t count, moka_err *err)
{
    if (!d || !d->joined || count <= 0) return MOKA_OK;
    busy(d, "gradient allreduce");
    const moka_status st = moka_transport_sum_f32(d, buf, count, err);
    idle(d);
    return st;
}

moka_status moka_dist_barrier(moka_dist *d, moka_err *err)
{
    if (!d || !d->joined) return MOKA_OK;
    busy(d, "barrier");
    const moka_status st = moka_transport_barrier(d, err);
    idle(d);
    return st;
}
