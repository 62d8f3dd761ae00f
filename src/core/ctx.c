/* src/core/ctx.c -- execution context defaults and thread-pool sizing. */
#include "moka/ctx.h"

#include <omp.h>
#include <unistd.h>

#include "backend/cpu/blas.h"

void moka_ctx_init(moka_ctx *ctx)
{
    ctx->threads = 0;
    ctx->seed = 1701;
    ctx->cache_dir = NULL;
    ctx->rank = 0;
    ctx->world_size = 1;
    ctx->engine = MOKA_ENGINE_FAST;
}

int moka_ctx_apply_threads(const moka_ctx *ctx)
{
    int n = ctx->threads;
    if (n <= 0) {
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
    omp_set_num_threads(n);
    moka_blas_set_threads(n);
    return n;
}
