/* src/core/ctx.c -- execution context defaults and thread-pool sizing. */
#include "moka/ctx.h"

#include <omp.h>
#include <unistd.h>

#include "backend/cpu/blas.h"
#include "backend/cpu/dnnl_op.h"

void moka_ctx_init(moka_ctx *ctx)
{
    ctx->threads = 0;
    ctx->seed = 1701;
    ctx->cache_dir = NULL;
    ctx->rank = 0;
    ctx->world_size = 1;
    ctx->engine = MOKA_ENGINE_FAST;
    ctx->precision = MOKA_PRECISION_FP32;
    ctx->plain_layouts = false;
}

moka_status moka_ctx_check_precision(const moka_ctx *ctx, moka_err *err)
{
    if (ctx->precision == MOKA_PRECISION_FP32) return MOKA_OK;
    if (ctx->precision != MOKA_PRECISION_BF16)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "unknown precision %d", (int)ctx->precision);
    if (ctx->engine == MOKA_ENGINE_REFERENCE)
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "bf16 precision runs on the fast engine; the reference engine is fp32 "
                         "only");
    const char *isa = NULL;
    if (!moka_dnnl_bf16_supported(&isa))
        return moka_errf(err, MOKA_ERR_UNSUPPORTED,
                         "bf16 precision needs a CPU with AVX512_BF16 or AMX instructions; oneDNN "
                         "finds %s on this one (use fp32 precision)",
                         isa);
    return MOKA_OK;
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
