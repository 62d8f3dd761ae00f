/* src/solvers/update.h -- Caffe's solver arithmetic over the flat parameter block.
 *
 * One iteration of a solver, as Caffe's Solver::Step/ApplyUpdate does it:
 *   rate = moka_lr_rate(hp, iter, &state)                      (lr policy)
 *   moka_update_clip(hp, slots, n, diff)                       (clip_gradients, global L2 norm)
 *   for each learnable slot:
 *       moka_update_normalize(hp, slot, diff)                  (1 / iter_size)
 *       moka_update_regularize(hp, slot, data, diff)           (L2 / L1 weight decay * decay_mult)
 *       rule->compute(hp, iter, rate * slot.lr_mult, ...)      (turns diff into the step)
 *       data -= diff
 * Every function here is pure arithmetic over caller-owned arrays; none allocates or fails.
 */
#ifndef MOKA_UPDATE_H
#define MOKA_UPDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "moka/status.h"

/* The SolverParameter values the arithmetic needs (filled from the solver file). */
typedef struct moka_solver_hparams {
    const char *type;      /* "SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam" */
    const char *lr_policy; /* "fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid" */
    float base_lr, gamma, power, momentum, momentum2, delta, rms_decay;
    float weight_decay, clip_gradients;
    bool l1; /* regularization_type "L1" (else "L2") */
    int64_t stepsize, max_iter, iter_size;
    const int64_t *stepvalue; /* multistep */
    int num_stepvalue;
} moka_solver_hparams;

/* One parameter blob inside the flat block. */
typedef struct moka_param_slot {
    int64_t offset, count; /* in floats */
    float lr_mult, decay_mult;
} moka_param_slot;

/* Learning rate at iteration `iter` per hp->lr_policy. `current_step` is Caffe's current_step_
 * (saved in the .solverstate): "step" sets it to iter / stepsize, and "multistep" advances it by
 * at most one stepvalue per call, exactly as Caffe does, so call this once per iteration. NULL
 * means "no saved state" (a local 0). An unknown policy gives base_lr; see moka_lr_policy_known. */
float moka_lr_rate(const moka_solver_hparams *hp, int64_t iter, int64_t *current_step);

/* Scales all diffs by clip_gradients / ||diff||_2 when the global norm exceeds clip_gradients.
 * As in Caffe, clipping is off only for clip_gradients < 0 (the schema default is -1); 0 clips
 * every nonzero gradient to zero. Returns the norm before clipping (0 when clipping is off). The
 * norm is summed in double in a fixed order, so it does not depend on the thread count. */
double moka_update_clip(const moka_solver_hparams *hp, const moka_param_slot *slots, int n,
                        float *diff);
/* diff *= 1 / iter_size when iter_size > 1 (gradients were summed over iter_size passes). */
void moka_update_normalize(const moka_solver_hparams *hp, const moka_param_slot *s, float *diff);
/* With d = weight_decay * decay_mult (skipped when 0): diff += d * data for L2, and
 * diff += d * sign(data) for L1, where sign(0) = 0. */
void moka_update_regularize(const moka_solver_hparams *hp, const moka_param_slot *s,
                            const float *data, float *diff);

/* An update rule: Caffe's ComputeUpdateValue for one solver type. `hist` holds num_history
 * arrays of `count` floats (zero at start), in Caffe's .solverstate history order: the solver's
 * history blobs for every parameter first, then (AdaDelta, Adam) the second set. */
typedef struct moka_update_rule {
    const char *type;
    int num_history;
    /* On entry diff is the regularized gradient; on return diff is the step (data -= diff).
     * local_rate = rate * lr_mult. `iter` is the 0-based iteration being applied (Adam's bias
     * correction uses t = iter + 1). */
    void (*compute)(const moka_solver_hparams *hp, int64_t iter, float local_rate, int64_t count,
                    float *diff, float *const *hist);
    /* Optional: the whole per-slot sequence in one pass over count elements, called by one
     * thread on its share of a slot: diff *= grad_scale (when iter_size > 1), then weight decay
     * (decay = weight_decay * decay_mult; L1 when hp->l1), then this rule, then data -= step.
     * Same arithmetic, element by element, as normalize + regularize + compute + subtract; diff
     * is left unspecified (the next iteration zeroes it). */
    void (*fused)(const moka_solver_hparams *hp, int64_t iter, float local_rate, float decay,
                  float grad_scale, int64_t count, float *data, float *diff, float *const *hist);
} moka_update_rule;

/* Lookup by Caffe's type name ("SGD", ...); NULL if unknown. */
const moka_update_rule *moka_update_rule_find(const char *type);

/* The rules in name order (moka_update_sgd etc. are defined one per file in src/solvers/). */
extern const moka_update_rule moka_update_adadelta, moka_update_adagrad, moka_update_adam,
    moka_update_nesterov, moka_update_rmsprop, moka_update_sgd;

/* True for the lr_policy names Caffe's GetLearningRate knows (moka_lr_rate returns base_lr for
 * any other name, so the solver driver checks first). */
bool moka_lr_policy_known(const char *policy);

/* Rejects, with MOKA_ERR_CONFIG and a one-line message without file position (the caller
 * prefixes it), the values Caffe refuses with a CHECK at solver setup or in GetLearningRate:
 * an unknown type or lr_policy (listing the known ones), step and sigmoid without stepsize > 0,
 * a negative gamma for step/exp/inv/multistep/sigmoid, momentum != 0 for AdaGrad and RMSProp,
 * rms_decay outside [0, 1); and iter_size < 1, which would divide by zero in normalize. */
moka_status moka_update_check(const moka_solver_hparams *hp, moka_err *err);

/* Arrays at least this long are updated by an OpenMP team; shorter ones by the calling thread,
 * where starting the team would cost more than the loop. The result is the same either way. */
#define MOKA_UPDATE_OMP_MIN 32768

#endif /* MOKA_UPDATE_H */
