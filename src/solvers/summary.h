/* src/solvers/summary.h -- training summaries as TensorBoard event files (src/io/tfevents.h).
 *
 * Tags written (step = iteration):
 *   train/loss, train/loss_smoothed (average_loss), train/lr, train/images_per_sec   every display
 *   test/<output> (test net #0), test<i>/<output> (test net #i)                      every test pass
 *   params/<layer>/<blob index>, grads/<layer>/<blob index> (histograms)  every histogram_interval
 *   input/<k> (the first log_images images of the batch, PNG)                          every display
 * and the train net as a graph (one node per layer, op = layer type) when the file is opened.
 */
#ifndef MOKA_SUMMARY_H
#define MOKA_SUMMARY_H

#include <stdint.h>

#include "moka/net.h"
#include "moka/status.h"

typedef struct moka_summary moka_summary;

/* Opens <log_dir>/<run>/events.out.tfevents.* (a new file each time, so a resumed run appends a
 * file and its steps continue) and writes the graph of `net`. Free with moka_summary_close. */
moka_status moka_summary_open(const char *log_dir, const char *run, const moka_net *net,
                              moka_summary **out, moka_err *err);
const char *moka_summary_path(const moka_summary *s);
moka_status moka_summary_train(moka_summary *s, int64_t iter, float loss, float smoothed,
                               float lr, double images_per_sec, moka_err *err);
moka_status moka_summary_test(moka_summary *s, int64_t iter, int net_id, moka_net *test_net,
                              const float *scores, moka_err *err);
moka_status moka_summary_histograms(moka_summary *s, int64_t iter, moka_net *net, moka_err *err);
/* The first `count` images of the first layer's first top, if it is (N, 1 or 3, H, W). */
moka_status moka_summary_images(moka_summary *s, int64_t iter, moka_net *net, int64_t count,
                                moka_err *err);
/* Marks a resume at `step` (a SessionLog START event): TensorBoard then drops what the
 * interrupted run had logged at steps >= step, so the curves stay monotonic. */
moka_status moka_summary_resume(moka_summary *s, int64_t step, moka_err *err);
void moka_summary_close(moka_summary *s);

#endif /* MOKA_SUMMARY_H */
