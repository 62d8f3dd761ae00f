/* tests/test.h -- the checks every test uses. One executable per test file; its exit status is
 * the verdict (0 pass, 1 fail, 77 skipped). A failed CHECK prints file:line, the expression and
 * the values involved, then returns 1 from the enclosing test function.
 */
#ifndef MOKA_TEST_H
#define MOKA_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moka/status.h"

#define TEST_FAIL_(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        return 1;                                                                                  \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) TEST_FAIL_("CHECK(%s) failed", #cond);                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) TEST_FAIL_("CHECK_EQ(%s, %s): %lld != %lld", #a, #b, a_, b_);                \
    } while (0)

/* Calls expr, which returns moka_status and fills `err` (a moka_err in scope). */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        moka_status s_ = (expr);                                                                   \
        if (s_ != MOKA_OK)                                                                         \
            TEST_FAIL_("CHECK_OK(%s): %s: %s", #expr, moka_status_name(s_), err.msg);             \
    } while (0)

/* Expects expr to fail with the given status. */
#define CHECK_STATUS(expr, want)                                                                   \
    do {                                                                                           \
        moka_status s_ = (expr);                                                                   \
        if (s_ != (want))                                                                          \
            TEST_FAIL_("CHECK_STATUS(%s): got %s, want %s (msg: %s)", #expr, moka_status_name(s_), \
                       moka_status_name(want), err.msg);                                          \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            TEST_FAIL_("CHECK_CONTAINS(%s, \"%s\"): got \"%s\"", #hay, n_, h_ ? h_ : "(null)");    \
    } while (0)

/* |a - b| <= tol * max(1, |b|) for scalars. */
#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                             \
        if (!(fabs(a_ - b_) <= t_ * fmax(1.0, fabs(b_))))                                          \
            TEST_FAIL_("CHECK_NEAR(%s, %s, %g): %.9g vs %.9g", #a, #b, t_, a_, b_);                \
    } while (0)

/* Element-wise |a[i] - b[i]| <= tol * max(1, |b[i]|) over n floats; reports the worst index. */
static inline int test_close_(const char *file, int line, const char *ea, const float *a,
                              const float *b, int64_t n, double tol)
{
    int64_t worst = -1;
    double worst_d = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(d <= tol) && (worst < 0 || d > worst_d || d != d)) worst = i, worst_d = d;
    }
    if (worst >= 0) {
        fprintf(stderr, "%s:%d: CHECK_CLOSE(%s): element %lld: %.9g vs %.9g (rel %.3g > %g)\n",
                file, line, ea, (long long)worst, a[worst], b[worst], worst_d, tol);
        return 1;
    }
    return 0;
}
#define CHECK_CLOSE_N(a, b, n, tol)                                                                \
    do {                                                                                           \
        if (test_close_(__FILE__, __LINE__, #a, (a), (b), (n), (tol))) return 1;                   \
    } while (0)

typedef int (*test_fn_)(void);

/* Rounds to the nearest bfloat16, ties to even (finite values): what bf16 precision does to
 * the inputs of a product. */
static inline float moka_test_bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* MOKA_TEST_MAIN(t1, t2, ...) runs each test, prints "ok"/"FAIL" per test, exits 1 on failure. */
#define MOKA_TEST_MAIN(...)                                                                        \
    int main(void)                                                                                 \
    {                                                                                              \
        static const test_fn_ fns_[] = {__VA_ARGS__};                                              \
        static const char names_[] = #__VA_ARGS__;                                                 \
        int failed_ = 0;                                                                           \
        const char *p_ = names_;                                                                   \
        for (size_t i_ = 0; i_ < sizeof fns_ / sizeof fns_[0]; i_++) {                             \
            while (*p_ == ' ' || *p_ == ',' || *p_ == '\n') p_++;                                  \
            int len_ = 0;                                                                          \
            while (p_[len_] && p_[len_] != ',') len_++;                                            \
            const int r_ = fns_[i_]();                                                             \
            printf("%s %.*s\n", r_ ? "FAIL" : "ok  ", len_, p_);                                   \
            fflush(stdout);                                                                        \
            failed_ += r_ != 0;                                                                    \
            p_ += len_;                                                                            \
        }                                                                                          \
        return failed_ ? 1 : 0;                                                                    \
    }

#endif /* MOKA_TEST_H */
