/* src/dist/dist_single.c -- the transport of a build without MPI: there is no job to join, so
 * a process started by mpirun or srun is told so instead of silently training alone N times. */
#include "dist/dist.h"

moka_status moka_transport_join(moka_dist *d, moka_err *err)
{
    (void)d;
    return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                     "this process was started by an MPI launcher (mpirun/srun) but moka was "
                     "built without MPI; install libopenmpi-dev and rebuild");
}

moka_status moka_transport_leave(moka_dist *d, moka_err *err)
{
    (void)d;
    (void)err;
    return MOKA_OK;
}

void moka_transport_abort(moka_dist *d, int code)
{
    (void)d;
    (void)code;
}

moka_status moka_transport_broadcast(moka_dist *d, void *buf, int64_t nbytes, moka_err *err)
{
    (void)d;
    (void)buf;
    (void)nbytes;
    (void)err;
    return MOKA_OK;
}

moka_status moka_transport_sum_f32(moka_dist *d, float *buf, int64_t count, moka_err *err)
{
    (void)d;
    (void)buf;
    (void)count;
    (void)err;
    return MOKA_OK;
}

moka_status moka_transport_sum_f64(moka_dist *d, double *buf, int64_t count, moka_err *err)
{
    (void)d;
    (void)buf;
    (void)count;
    (void)err;
    return MOKA_OK;
}

moka_status moka_transport_allgather(moka_dist *d, const void *mine, void *all, int64_t nbytes,
                                     moka_err *err)
{
    (void)d;
    (void)err;
    for (int64_t i = 0; i < nbytes; i++) ((char *)all)[i] = ((const char *)mine)[i];
    return MOKA_OK;
}

moka_status moka_transport_barrier(moka_dist *d, moka_err *err)
{
    (void)d;
    (void)err;
    return MOKA_OK;
}
