/* tests/harness.h -- builds one layer from LayerParameter text, feeds it inputs, runs it, and
 * checks its gradients by finite differences.
 *
 *   moka_harness h;
 *   CHECK_OK(moka_harness_init(&h, "name: 'c1' type: 'Convolution' bottom: 'x' top: 'y' "
 *                                  "convolution_param { num_output: 4 kernel_size: 3 "
 *                                  "weight_filler { type: 'gaussian' } }", MOKA_TRAIN, 7, &err));
 *   CHECK_OK(moka_harness_add_bottom(&h, MOKA_SHAPE(2, 3, 5, 5), NULL, true, &err)); // random
 *   CHECK_OK(moka_harness_setup(&h, &err));   // setup + weights filled + reshape + tops
 *   memcpy(h.weight[0]->data, w, ...);        // optional: set weights from a fixture
 *   CHECK_OK(moka_harness_forward(&h, &err));
 *   CHECK_OK(moka_harness_backward(&h, (const float *const[]){dy}, &err)); // dy per top
 *   CHECK_EQ(moka_gradcheck(&h, (moka_gradcheck_opts){.step = 1e-2, .rel_tol = 1e-3}), 0);
 *   moka_harness_deinit(&h);
 *
 * Bottoms are named by the config's `bottom:` entries in order; add one per entry. Random bottom
 * data is U(-1, 1) from the harness seed. Weight and bottom gradients are zeroed before each
 * backward. moka_harness_deinit is safe after a failed init/setup.
 */
#ifndef MOKA_HARNESS_H
#define MOKA_HARNESS_H

#include <stdbool.h>

#include "core/layer.h"

#define MOKA_HARNESS_MAX 16

typedef struct moka_harness {
    moka_layer *layer;
    int num_bottom, num_top, num_weight;
    moka_tensor *bottom[MOKA_HARNESS_MAX], *top[MOKA_HARNESS_MAX], *weight[MOKA_HARNESS_MAX];
    bool bottom_needs_grad[MOKA_HARNESS_MAX];
    moka_ctx ctx;
    void *priv; /* owned memory */
} moka_harness;

moka_status moka_harness_init(moka_harness *h, const char *layer_cfg, moka_phase phase,
                              uint64_t seed, moka_err *err);
/* data: count floats to copy, or NULL for U(-1, 1). needs_grad false for labels/indices. */
moka_status moka_harness_add_bottom(moka_harness *h, int ndim, const int64_t *shape,
                                    const float *data, bool needs_grad, moka_err *err);
moka_status moka_harness_setup(moka_harness *h, moka_err *err);
moka_status moka_harness_forward(moka_harness *h, moka_err *err);
/* dy: one array per top (its count floats). Zeroes all gradients first, then runs backward. */
moka_status moka_harness_backward(moka_harness *h, const float *const *dy, moka_err *err);
void moka_harness_deinit(moka_harness *h);

typedef struct moka_gradcheck_opts {
    double step;    /* central-difference step, e.g. 1e-2 */
    double rel_tol; /* |analytic - numeric| <= rel_tol * max(|analytic|, |numeric|, 1) */
    /* Points where the function has a kink within `step` (ReLU at 0, max ties) are skipped when
     * the one-sided differences disagree by more than kink_tol (0: 10 * rel_tol). */
    double kink_tol;
    uint64_t seed; /* for the random upstream gradient */
    /* Only check top `top_index` (-1: all tops with a weighted random upstream gradient). */
    int top_index;
} moka_gradcheck_opts;

/* Checks every bottom (with needs_grad) and every learnable weight gradient against central
 * differences of L = sum_t sum(dy_t * top_t) with random dy. Loss layers get dy = 1 on their
 * scalar top. Prints each mismatch (at most 10) to stderr; returns the number of mismatches. */
int moka_gradcheck(moka_harness *h, moka_gradcheck_opts opts);

/* Fixtures written by tests/ref/moka_fixture.py: named float32 tensors. */
typedef struct moka_fixture {
    int count;
    char **names;
    moka_tensor *tensors; /* data owned by the fixture */
} moka_fixture;
/* Loads tests/data/<name>.bin (directory from MOKA_TEST_DATA, set by CMake). */
moka_status moka_fixture_load(moka_fixture *fx, const char *name, moka_err *err);
/* The tensor called `name`, or NULL. */
const moka_tensor *moka_fixture_get(const moka_fixture *fx, const char *name);
/* The tensor called `name`, or NULL without a message (for tensors a fixture may lack). */
const moka_tensor *moka_fixture_find(const moka_fixture *fx, const char *name);
void moka_fixture_deinit(moka_fixture *fx);

/* Runs the layer `cfg` in `phase` on the fixture `name`: bottoms x (and x1), weights w0.. loaded
 * when the fixture has them, forward compared with y (and the weights with w0_new.. if present),
 * backward with dy compared with dx, dx1, dw0... within tol (relative, floor 1). A second
 * backward must add the same gradients again. Prints what failed; returns 0 when all hold. */
int moka_harness_check_fixture(const char *cfg, moka_phase phase, const char *name, double tol);

/* Finite differences (step 1e-2, rel_tol 1e-3) of every bottom and learnable weight of `cfg` on
 * random U(-1, 1) bottoms of the given shapes (shape1 NULL: one bottom), harness seed 9.
 * Returns 0 when all match. */
int moka_harness_check_gradients(const char *cfg, moka_phase phase, int ndim0,
                                 const int64_t *shape0, int ndim1, const int64_t *shape1);

/* Runs the one-bottom layer `cfg` (MOKA_TRAIN) on the fixture `name`: bottom x; weights w and b
 * when the fixture has them (the layer must have exactly those); top y (and, when the layer has
 * a second top, the fixture tensor `top1`, compared exactly). Forward runs twice and must give y
 * both times; backward with dy (zeros on a second top) must give dx, dw, db within tol, and a
 * second backward without zeroing must double them within 2 tol. Returns 0 when all hold. */
int moka_harness_check_io_fixture(const char *cfg, const char *name, double tol, const char *top1);

/* Sets up `cfg` (MOKA_TRAIN) on one random bottom of `shape` and expects status `want`, with
 * "layer '<layer>'" and `text` in the message. Returns 0 when it is so. */
int moka_harness_expect_setup_error(const char *cfg, int ndim, const int64_t *shape,
                                    moka_status want, const char *layer, const char *text);

#endif /* MOKA_HARNESS_H */
