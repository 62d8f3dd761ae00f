/* include/moka/ctx.h -- the execution context handed to nets and solvers.
 *
 * Everything that would otherwise be a global (thread count, random seed, phase) lives here or
 * in the objects made from it. The caller owns the struct; moka only reads it.
 */
#ifndef MOKA_CTX_H
#define MOKA_CTX_H

#include <stdbool.h>
#include <stdint.h>

#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which kernels layers run. FAST (the default) uses the vectorised kernels moka has for the
 * common cases; REFERENCE runs the plain loops those kernels are tested against, for debugging
 * (`--engine=reference`). Both compute the same function; FAST may sum in another order. */
typedef enum moka_engine { MOKA_ENGINE_FAST = 0, MOKA_ENGINE_REFERENCE = 1 } moka_engine;

/* Arithmetic of convolutions and inner products. FP32 throughout (the default), or BF16 mixed
 * precision (`--precision=bf16`, the solver field `precision: BF16`): their inputs x, W and dy
 * are rounded to bfloat16 and the products summed in fp32, while the weights the solver updates,
 * the biases, every other layer and all solver math stay fp32. Needs a CPU whose instructions
 * oneDNN uses for bf16 (AVX512_BF16 or AMX) and the fast engine; nets refuse to build otherwise
 * (moka_ctx_check_precision). */
typedef enum moka_precision { MOKA_PRECISION_FP32 = 0, MOKA_PRECISION_BF16 = 1 } moka_precision;

typedef struct moka_ctx {
    int threads;   /* worker threads for kernels; 0 = all online CPUs */
    uint64_t seed; /* root of every random stream (fillers, shuffles, dropout) */
    const char *cache_dir; /* where s3:// data sources are cached; NULL = "$HOME/.cache/moka" */
    /* Data-parallel training: this process is reader `rank` of `world_size`. Data layers read
     * the disjoint shard of every batch that belongs to `rank` (samples rank, rank + world_size,
     * ... of the global order), and per-pass random draws (dropout) differ by rank. The solver
     * sets both from its moka_dist; 0 and 1 for a single process. */
    int rank, world_size;
    moka_engine engine;
    moka_precision precision;
    /* The fast engine lets a convolution leave its output in oneDNN's layout for the ReLU and
     * Pooling layers after it (and take their gradient back in it), converting to plain
     * (N, C, H, W) only where another layer or the caller reads the data. true keeps every
     * activation plain between layers: the same numbers, more conversions (for debugging). */
    bool plain_layouts;
} moka_ctx;

/* Defaults: all CPUs, seed 1701 (Caffe's default when random_seed is unset is time-based;
 * moka prefers reproducible runs). */
MOKA_API void moka_ctx_init(moka_ctx *ctx);
/* MOKA_OK when ctx->precision can run here; else MOKA_ERR_UNSUPPORTED (bf16 on a CPU without
 * bf16 instructions: the message names what oneDNN found) or MOKA_ERR_INVALID_ARG (bf16 with the
 * reference engine). moka_net_create calls it. */
MOKA_API moka_status moka_ctx_check_precision(const moka_ctx *ctx, moka_err *err);
/* Applies ctx->threads to the kernel thread pool (OpenMP and BLAS). Returns the count used. */
MOKA_API int moka_ctx_apply_threads(const moka_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif /* MOKA_CTX_H */
