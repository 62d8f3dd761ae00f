/* src/dist/dist_mpi.c -- the transport over Open MPI (or any MPI-3 library).
 *
 * MPI is started with MPI_THREAD_SERIALIZED: the main thread and the data-parallel communication
 * thread both make MPI calls, never at the same time (moka_dp_step returns only when its thread is
 * idle). Errors come back as return codes (MPI_ERRORS_RETURN) and become MOKA_ERR_BACKEND with
 * MPI's own text. Counts above INT_MAX are sent in pieces.
 */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist/dist.h"

#define PIECE (INT_MAX / 16 * 8) /* elements or bytes per MPI call, comfortably below INT_MAX */

static moka_status mpi_fail(moka_err *err, int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    return moka_errf(err, MOKA_ERR_BACKEND, "MPI %s failed: %s", what, text);
}

moka_status moka_transport_join(moka_dist *d, moka_err *err)
{
    /* Waiting ranks yield the CPU instead of spinning (unless the user set it): the compute
     * threads use every core, and the communication thread waits inside MPI while backward
     * runs, so a spinning wait would take a core from backward. On an oversubscribed node this
     * is the difference between 7 and 32 ms for a 1.7 MB allreduce over 3 ranks. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "init");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        return moka_errf(err, MOKA_ERR_BACKEND,
                         "the MPI library gives thread level %d; moka needs "
                         "MPI_THREAD_SERIALIZED (%d)",
                         provided, MPI_THREAD_SERIALIZED);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    version[strcspn(version, ",\n")] = '\0';
    snprintf(d->engine, sizeof d->engine, "%.63s", version);

    MPI_Comm local;
    rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "node-local communicator");
    MPI_Comm_rank(local, &d->local_rank);
    MPI_Comm_size(local, &d->local_size);
    MPI_Comm_free(&local);

    d->hosts = calloc((size_t)d->size, sizeof *d->hosts);
    if (!d->hosts) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    char me[MOKA_DIST_HOST_MAX] = {0};
    if (gethostname(me, sizeof me - 1) != 0) snprintf(me, sizeof me, "rank%d", d->rank);
    rc = MPI_Allgather(me, MOKA_DIST_HOST_MAX, MPI_CHAR, d->hosts, MOKA_DIST_HOST_MAX, MPI_CHAR,
                       MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "host name exchange");
    return MOKA_OK;
}

moka_status moka_transport_leave(moka_dist *d, moka_err *err)
{
    (void)d;
    const int rc = MPI_Finalize();
    return rc == MPI_SUCCESS ? MOKA_OK : mpi_fail(err, rc, "finalize");
}

void moka_transport_abort(moka_dist *d, int code)
{
    (void)d;
    MPI_Abort(MPI_COMM_WORLD, code);
}

moka_status moka_transport_broadcast(moka_dist *d, void *buf, int64_t nbytes, moka_err *err)
{
    (void)d;
    for (int64_t off = 0; off < nbytes; off += PIECE) {
        const int n = (int)(nbytes - off < PIECE ? nbytes - off : PIECE);
        const int rc = MPI_Bcast((char *)buf + off, n, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "broadcast");
    }
    return MOKA_OK;
}

static moka_status sum(void *buf, int64_t count, MPI_Datatype type, size_t elem, moka_err *err)
{
    for (int64_t off = 0; off < count; off += PIECE) {
        const int n = (int)(count - off < PIECE ? count - off : PIECE);
        const int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)off * elem, n, type,
                                     MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "allreduce");
    }
    return MOKA_OK;
}

moka_status moka_transport_sum_f32(moka_dist *d, float *buf, int64_t count, moka_err *err)
{
    (void)d;
    return sum(buf, count, MPI_FLOAT, sizeof(float), err);
}

moka_status moka_transport_sum_f64(moka_dist *d, double *buf, int64_t count, moka_err *err)
{
    (void)d;
    return sum(buf, count, MPI_DOUBLE, sizeof(double), err);
}

moka_status moka_transport_allgather(moka_dist *d, const void *mine, void *all, int64_t nbytes,
                                     moka_err *err)
{
    (void)d;
    if (nbytes > PIECE)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "allgather of %lld bytes per rank",
                         (long long)nbytes);
    const int rc = MPI_Allgather(mine, (int)nbytes, MPI_BYTE, all, (int)nbytes, MPI_BYTE,
                                 MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? MOKA_OK : mpi_fail(err, rc, "allgather");
}

moka_status moka_transport_barrier(moka_dist *d, moka_err *err)
{
    (void)d;
    const int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? MOKA_OK : mpi_fail(err, rc, "barrier");
}
