/* src/io/tfevents.h -- TensorBoard event files (events.out.tfevents.*): writer and reader.
 *
 * A file is a sequence of TFRecord records, each
 *   uint64 length (little-endian) | uint32 masked_crc32c(those 8 bytes) |
 *   length bytes of data         | uint32 masked_crc32c(data)
 * with masked_crc32c(x) = rotr15(crc32c(x)) + 0xa282ead8 (src/io/crc32c.h). Every record's data
 * is one serialized tensorflow.Event (proto/tensorflow/event.proto, TensorFlow's field numbers):
 *   Event { wall_time = 1 (double, seconds); step = 2 (int64); one of
 *           file_version = 3 ("brain.Event:2", first record only), graph_def = 4 (GraphDef bytes),
 *           summary = 5 (Summary), session_log = 7 (SessionLog) }
 *   Summary.Value { tag = 1; simple_value = 2 (float) | image = 4 | histo = 5 | tensor = 8 }
 * Reference: tensorflow/core/lib/io/record_writer.cc (framing), core/util/events_writer.cc
 * (file name, first record), core/lib/histogram/histogram.cc (histogram buckets), and
 * TensorBoard's event_file_loader.py, which reads what this module writes.
 *
 * A writer or reader object is not thread-safe; distinct objects may be used from distinct
 * threads. Nothing here keeps global state except the CRC tables, built once, thread-safely.
 */
#ifndef MOKA_TFEVENTS_H
#define MOKA_TFEVENTS_H

#include <stdint.h>

#include "moka/status.h"

/* ---- writer ---------------------------------------------------------------------------------- */

typedef struct moka_tfevents moka_tfevents;

/* Creates `log_dir/run/` (and any missing parents; `run` may be NULL or "" for log_dir itself, and
 * may hold '/' but no ".." component) and opens a new event file there named
 *   events.out.tfevents.<10-digit unix seconds>.<hostname>
 * (".<k>" is appended, k = 1, 2, ..., when a file of that name exists, e.g. two opens within a
 * second), then writes the first record, file_version "brain.Event:2". The file is never
 * overwritten or appended to: a resumed run gets a new file. Every write below is one fwrite of a
 * whole record followed by fflush, so a crash leaves only complete records plus at most one
 * partial record at the end, which the reader skips.
 * Free with moka_tfevents_close. Returns MOKA_ERR_INVALID_ARG (NULL/empty log_dir, bad run),
 * MOKA_ERR_IO naming the path and system error, MOKA_ERR_NOMEM. */
moka_status moka_tfevents_open(const char *log_dir, const char *run, moka_tfevents **out,
                               moka_err *err);

/* The path of the file being written; valid until moka_tfevents_close. */
const char *moka_tfevents_path(const moka_tfevents *w);

/* One Event at `step` with Summary.Value { tag, simple_value = (float)value }, which TensorBoard's
 * scalar dashboard reads. MOKA_ERR_INVALID_ARG for a NULL/empty tag; MOKA_ERR_IO on a write
 * failure. */
moka_status moka_tfevents_scalar(moka_tfevents *w, int64_t step, const char *tag, double value,
                                 moka_err *err);

/* One Event with Summary.Value { tag, histo }: the n values binned as TensorFlow's
 * histogram::Histogram does with its default bucket limits
 *   -DBL_MAX, -x_K, ..., -x_0, 0, x_0, ..., x_K, DBL_MAX  with x_0 = 1e-12, x_k+1 = 1.1 x_k,
 *   x_K the last one below 1e20 (in double, by repeated multiplication, as TensorFlow does),
 * where bucket i counts the values v with limit[i-1] <= v < limit[i]; then encoded as its
 * EncodeToProto(preserve_zero_buckets = false) does: each run of empty buckets collapses into one
 * entry with the limit of the run's last bucket and count 0. min, max, num, sum and sum_squares are
 * exact (double accumulation of the float values). NaN and infinite values are left out of
 * everything (TensorFlow's histogram op refuses them; a diverging run should still log), so num
 * counts the finite values. n = 0 writes TensorFlow's empty histogram: min DBL_MAX, max -DBL_MAX,
 * one bucket {DBL_MAX: 0}. MOKA_ERR_INVALID_ARG for a NULL/empty tag, n < 0, or values NULL with
 * n > 0; MOKA_ERR_NOMEM; MOKA_ERR_IO. */
moka_status moka_tfevents_histogram(moka_tfevents *w, int64_t step, const char *tag,
                                    const float *values, int64_t n, moka_err *err);

/* TensorFlow's default bucket limits as moka_tfevents_histogram uses them (ascending, 1551 of
 * them: -DBL_MAX, the 774 negative limits, 0, the 774 positive ones, DBL_MAX). Sets *limits to
 * the writer's table, valid until moka_tfevents_close, and returns the count. */
int moka_tfevents_bucket_limits(const moka_tfevents *w, const double **limits);

/* One node per layer: name, op (layer type), inputs (bottom producer node names), and int
 * attrs (e.g. kernel_size, stride, num_output) given as key/value pairs. Everything is borrowed. */
typedef struct moka_graph_node {
    const char *name, *op;
    int num_inputs;
    const char *const *inputs;
    int num_attrs;
    const char *const *attr_keys;
    const int64_t *attr_values;
} moka_graph_node;

/* One Event (step 0) whose graph_def holds a serialized GraphDef: a NodeDef per node with name,
 * op, input, and attr { key: AttrValue { i } } per attr, plus versions { producer: 22 }, which
 * TensorBoard's graph dashboard draws. MOKA_ERR_INVALID_ARG for n < 0, nodes NULL with n > 0, a
 * node without name or op, negative counts, or NULL arrays with non-zero counts; MOKA_ERR_NOMEM;
 * MOKA_ERR_IO. */
moka_status moka_tfevents_graph(moka_tfevents *w, const moka_graph_node *nodes, int n,
                                moka_err *err);

/* An image summary: PNG-encoded, from float pixels in [0, 1] laid out (C, H, W), C = 1 or 3.
 * Each value is clamped to [0, 1] and rounded to the nearest of 0..255 (NaN becomes 0). Written
 * as Summary.Value { tag, image { height, width, colorspace = C, encoded_image_string } }.
 * MOKA_ERR_INVALID_ARG for a NULL tag or pixels, C not 1 or 3, h or wdt < 1 or above 65535;
 * MOKA_ERR_NOMEM; MOKA_ERR_IO. */
moka_status moka_tfevents_image(moka_tfevents *w, int64_t step, const char *tag,
                                const float *pixels, int c, int h, int wdt, moka_err *err);

/* One Event at `step` with session_log { status: START }. TensorBoard, on reading it, drops the
 * events it already holds at steps >= `step` in that run: write it when a run resumes from a
 * snapshot at `step`, so curves logged past the snapshot by the interrupted run are replaced by the
 * resumed run's. MOKA_ERR_IO on a write failure. */
moka_status moka_tfevents_session_start(moka_tfevents *w, int64_t step, moka_err *err);

/* Closes the file (already flushed) and frees w. NULL does nothing. */
void moka_tfevents_close(moka_tfevents *w);

/* ---- reader ---------------------------------------------------------------------------------- */

/* What the reader found, delivered record by record. Every pointer passed to a callback (tag,
 * arrays, nodes, PNG bytes) is valid only during that call. Any callback may be NULL. */
typedef struct moka_tfevents_sink {
    void *user;
    /* A Summary.Value with simple_value, or with a tensor holding one float or double (what
     * TensorFlow 2 and PyTorch's new-style scalars write). */
    void (*scalar)(void *user, const char *tag, int64_t step, double wall_time, double value);
    void (*histogram)(void *user, const char *tag, int64_t step, double wall_time, double min,
                      double max, double num, double sum, double sum_squares, int nbuckets,
                      const double *bucket_limit, const double *bucket);
    /* Attrs other than AttrValue.i are not passed on. */
    void (*graph)(void *user, const moka_graph_node *nodes, int n);
    void (*image)(void *user, const char *tag, int64_t step, int height, int width,
                  const unsigned char *png, int64_t png_nbytes);
} moka_tfevents_sink;

/* Reads complete records from `path` starting at byte *offset, stops cleanly at a partial tail
 * record (a file still being written) and leaves *offset after the last complete record, so the
 * next call continues from there. A CRC mismatch in a complete record (length or data), or a
 * record whose data is not an Event, is MOKA_ERR_IO naming the file and offset, with *offset left
 * at the start of that record (the records before it have been delivered). MOKA_ERR_IO also when
 * the file cannot be opened or read; MOKA_ERR_INVALID_ARG for a NULL path/offset, a negative
 * *offset or one past the end of the file; MOKA_ERR_NOMEM. sink may be NULL (only validates). */
moka_status moka_tfevents_read(const char *path, int64_t *offset, const moka_tfevents_sink *sink,
                               moka_err *err);

#endif /* MOKA_TFEVENTS_H */
