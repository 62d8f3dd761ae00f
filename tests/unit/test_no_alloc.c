/* tests/unit/test_no_alloc.c -- moka allocates nothing per training iteration.
 *
 * The test executable defines malloc, calloc, realloc, free and the aligned allocators itself
 * (forwarding to glibc's __libc_* entry points), so every allocation in the process is seen, on
 * every thread (the data loader's included), with the address that called the allocator. After a
 * few warm-up iterations (buffers sized, kernels generated), 30 more LeNet iterations with SGD,
 * momentum and weight decay must make no allocation from moka's own code (which is linked into
 * this executable). Allocations inside the libraries moka calls are counted and printed, not
 * failed: oneDNN's sgemm allocates its packing buffers on every call (~140 per LeNet iteration),
 * which its sgemm API gives no way to avoid. Skipped under AddressSanitizer, which owns malloc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moka/log.h"
#include "moka/solver.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_bool counting;
/* Allocation sites seen while counting: return address and count (a fixed table, so noting
 * never allocates). */
#define SITES 256
static void *_Atomic site[SITES];
static atomic_long site_count[SITES];
static atomic_long overflow;

static void note_at(void *ra)
{
    if (!atomic_load_explicit(&counting, memory_order_relaxed)) return;
    for (int i = 0; i < SITES; i++) {
        void *cur = atomic_load(&site[i]);
        if (!cur) {
            void *expected = NULL;
            if (!atomic_compare_exchange_strong(&site[i], &expected, ra) && expected != ra)
                continue;
            cur = ra;
        }
        if (cur == ra) {
            atomic_fetch_add(&site_count[i], 1);
            return;
        }
    }
    atomic_fetch_add(&overflow, 1);
}
#define note() note_at(__builtin_return_address(0))
void *malloc(size_t n)
{
    note();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    note();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    note();
    return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
void *memalign(size_t al, size_t n)
{
    note();
    return __libc_memalign(al, n);
}
void *aligned_alloc(size_t al, size_t n)
{
    note();
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n)
{
    note();
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
#endif

static int no_allocation_per_iteration(void)
{
#ifdef UNDER_ASAN
    fprintf(stderr, "skip: AddressSanitizer owns malloc\n");
    exit(77);
#else
    const char *data = "/usr/share/datasets/fashion-mnist";
    char path[4096];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", data);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "skip: no %s\n", path);
        exit(77);
    }
    char dir[] = "/tmp/moka_noalloc_XXXXXX";
    CHECK(mkdtemp(dir));
    char net[4200], solver[4200];
    snprintf(net, sizeof net, "%s/net.prototxt", dir);
    snprintf(solver, sizeof solver, "%s/solver.prototxt", dir);
    FILE *f = fopen(net, "w");
    CHECK(f);
    fprintf(f,
            "name: 'LeNet'\n"
            "layer { name: 'd' type: 'IDXData' top: 'data' top: 'label'\n"
            "  transform_param { scale: 0.00390625 }\n"
            "  idx_data_param { images: '%s/t10k-images-idx3-ubyte.gz'\n"
            "    labels: '%s/t10k-labels-idx1-ubyte.gz' batch_size: 64 shuffle: true } }\n"
            "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'conv1'\n"
            "  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: 'xavier' } } }\n"
            "layer { name: 'pool1' type: 'Pooling' bottom: 'conv1' top: 'pool1'\n"
            "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
            "layer { name: 'conv2' type: 'Convolution' bottom: 'pool1' top: 'conv2'\n"
            "  convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: 'xavier' } } }\n"
            "layer { name: 'pool2' type: 'Pooling' bottom: 'conv2' top: 'pool2'\n"
            "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n"
            "layer { name: 'ip1' type: 'InnerProduct' bottom: 'pool2' top: 'ip1'\n"
            "  inner_product_param { num_output: 500 weight_filler { type: 'xavier' } } }\n"
            "layer { name: 'relu1' type: 'ReLU' bottom: 'ip1' top: 'ip1' }\n"
            "layer { name: 'ip2' type: 'InnerProduct' bottom: 'ip1' top: 'ip2'\n"
            "  inner_product_param { num_output: 10 weight_filler { type: 'xavier' } } }\n"
            "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip2' bottom: 'label' top: 'loss' }\n",
            data, data);
    fclose(f);
    f = fopen(solver, "w");
    CHECK(f);
    fprintf(f,
            "net: '%s'\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: 'inv'\n"
            "gamma: 0.0001\npower: 0.75\nmax_iter: 100\ndisplay: 0\nsnapshot_after_train: false\n",
            net);
    fclose(f);
    moka_log_set(NULL, NULL, MOKA_LOG_ERROR);
    moka_err err = {0};
    moka_solver *s;
    const moka_solver_opts opts = {.threads = 2};
    CHECK_OK(moka_solver_create(solver, &opts, &s, &err));
    CHECK_OK(moka_solver_step(s, 5, &err));
    atomic_store(&counting, true);
    const moka_status st = moka_solver_step(s, 30, &err);
    atomic_store(&counting, false);
    CHECK_OK(st);
    moka_solver_free(s);
    unlink(net);
    unlink(solver);
    rmdir(dir);
    /* Attribute each site to the object it is in: this executable (moka) or a library. */
    Dl_info self;
    CHECK(dladdr((void *)&overflow, &self) && self.dli_fname);
    long ours = 0, theirs = 0;
    for (int i = 0; i < SITES && atomic_load(&site[i]); i++) {
        Dl_info di;
        const long n = atomic_load(&site_count[i]);
        const bool found = dladdr(atomic_load(&site[i]), &di) && di.dli_fname;
        const bool in_moka = found && strcmp(di.dli_fname, self.dli_fname) == 0;
        fprintf(stderr, "%s: %ld allocations from %s (%s)\n", in_moka ? "moka" : "library", n,
                found ? di.dli_fname : "?", found && di.dli_sname ? di.dli_sname : "?");
        if (in_moka)
            ours += n;
        else
            theirs += n;
    }
    fprintf(stderr, "30 iterations: %ld allocations by moka, %ld inside libraries\n", ours,
            theirs);
    CHECK_EQ(atomic_load(&overflow), 0);
    if (ours != 0) TEST_FAIL_("moka allocated %ld times in 30 iterations (want 0)", ours);
    return 0;
#endif
}

MOKA_TEST_MAIN(no_allocation_per_iteration)
