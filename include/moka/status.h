/* include/moka/status.h -- status codes and error messages returned by every moka call.
 *
 * Every function that can fail returns a moka_status and takes a `moka_err *err` (which may be
 * NULL) last. On failure err->msg holds one line that says where, what was found and what was
 * wanted, e.g. "lenet.prototxt:14:3: unknown field 'kernal_size' in ConvolutionParameter".
 */
#ifndef MOKA_STATUS_H
#define MOKA_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MOKA_BUILDING)
#define MOKA_API __attribute__((visibility("default")))
#else
#define MOKA_API
#endif

#if defined(__GNUC__)
#define MOKA_UNUSED __attribute__((unused))
#define MOKA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MOKA_UNUSED
#define MOKA_PRINTF(f, a)
#endif

typedef enum moka_status {
    MOKA_OK = 0,
    MOKA_ERR_INVALID_ARG, /* the caller passed something impossible */
    MOKA_ERR_CONFIG,      /* config text does not parse, or fails the schema */
    MOKA_ERR_SHAPE,       /* tensor shapes do not fit together */
    MOKA_ERR_IO,          /* missing, unreadable, truncated, or wrong magic/version */
    MOKA_ERR_NOMEM,
    MOKA_ERR_UNSUPPORTED, /* a Caffe feature moka does not implement (yet) */
    MOKA_ERR_BACKEND,     /* BLAS, oneDNN, CUDA or MPI reported a failure */
    MOKA_ERR_INTERRUPTED, /* stopped on request (signal) */
} moka_status;

typedef struct moka_err {
    moka_status code;
    char msg[512];
} moka_err;

/* "MOKA_ERR_SHAPE" for MOKA_ERR_SHAPE. Never NULL. Thread-safe. */
MOKA_API const char *moka_status_name(moka_status s);

/* Fills err (which may be NULL) with code and the formatted message and returns code, so that a
 * failure is one line: `return moka_errf(err, MOKA_ERR_SHAPE, "layer '%s': ...", name);`. */
MOKA_API moka_status moka_errf(moka_err *err, moka_status code, const char *fmt, ...)
    MOKA_PRINTF(3, 4);

/* Prepends "prefix: " to an error message already in err (used to add a file or layer name). */
MOKA_API void moka_err_prefix(moka_err *err, const char *fmt, ...) MOKA_PRINTF(2, 3);

#define MOKA_TRY(expr)                                                                             \
    do {                                                                                           \
        moka_status st_ = (expr);                                                                  \
        if (st_ != MOKA_OK) return st_;                                                            \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif /* MOKA_STATUS_H */
