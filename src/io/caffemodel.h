/* src/io/caffemodel.h -- Caffe's binary weight (.caffemodel) and solver state (.solverstate)
 * files, in protobuf wire format, written and read with protobuf-c from proto/caffe.proto.
 *
 * A .caffemodel is one NetParameter message:
 *   NetParameter { name = 1; layer = 100 (LayerParameter, Caffe >= 2015) or
 *                  layers = 2 (V1LayerParameter, older files) }
 *   LayerParameter   { name = 1; type = 2 (string); blobs = 7 (BlobProto) }
 *   V1LayerParameter { name = 4; type = 5 (enum, e.g. CONVOLUTION); blobs = 6 (BlobProto) }
 *   BlobProto { shape = 7 (BlobShape { dim = 1, packed int64 }); data = 5 (packed float);
 *               double_data = 8; legacy num = 1, channels = 2, height = 3, width = 4 }
 * A .solverstate is one SolverState message:
 *   SolverState { iter = 1; learned_net = 2 (path of the .caffemodel); history = 3 (BlobProto,
 *                 one per learnable blob, e.g. SGD momentum); current_step = 4 }
 * Blob data is float32, row-major, in the blob's own shape (Caffe's Blob::ToProto/FromProto).
 *
 * moka writes what Caffe's Net::ToProto(write_diff = false) and SGDSolver's snapshot write for
 * the fields that matter to weights: per layer its name, type, and each blob as shape + data.
 * Real Caffe and OpenCV's dnn module read these files; moka reads Caffe's own files, V1 included.
 * Reference: caffe/src/caffe/net.cpp (CopyTrainedLayersFrom), blob.cpp (ShapeEquals, FromProto),
 * util/upgrade_proto.cpp (V1 type names), solvers/sgd_solver.cpp (snapshot/restore).
 *
 * None of these functions keeps global state; distinct objects may be used from distinct threads.
 */
#ifndef MOKA_CAFFEMODEL_H
#define MOKA_CAFFEMODEL_H

#include <stdint.h>

#include "moka/status.h"
#include "moka/tensor.h"

/* One layer's learnable blobs, as a net hands them to the writer or receives them from
 * moka_caffemodel_copy_into. Everything is borrowed: the struct owns none of it. `type` is
 * Caffe's type string ("Convolution"); `blobs[j]->data` holds moka_tensor_count floats. */
typedef struct moka_model_layer {
    const char *name, *type;
    int num_blobs;
    moka_tensor *const *blobs;
} moka_model_layer;

/* Writes a NetParameter to `path`: `name` = net_name (omitted when NULL), then one `layer`
 * entry per element of `layers`, with name, type (omitted when NULL) and one BlobProto per blob
 * holding `shape { dim ... }` and the packed float data. Blob data is streamed from the tensors
 * into the file without an intermediate copy of the model.
 *
 * The file is written to "<path>.tmp.<pid>", fsync'd, then renamed over `path` (and the
 * directory fsync'd), so a crash or a full disk never leaves a partial file at `path`: readers
 * see either the previous file or the whole new one. On failure the temporary file is removed
 * (a process killed mid-write leaves it behind, never at `path`).
 *
 * Returns MOKA_ERR_INVALID_ARG for a NULL path or layer name, a negative count, or a blob with
 * no data; MOKA_ERR_UNSUPPORTED when the file would reach 2 GiB (Caffe's protobuf reader stops
 * at INT_MAX bytes); MOKA_ERR_IO naming the path and the system error when a write, fsync or
 * rename fails; MOKA_ERR_NOMEM. */
moka_status moka_caffemodel_write(const char *path, const char *net_name,
                                  const moka_model_layer *layers, int num_layers, moka_err *err);

/* A parsed .caffemodel: its layers, with V1 entries mapped to V2 type names, and every blob as
 * a moka_tensor in the shape the file gives it (legacy 4-D num/channels/height/width blobs come
 * back 4-D, as Caffe's Blob::FromProto makes them). */
typedef struct moka_caffemodel moka_caffemodel;

/* Reads and checks the NetParameter at `path` into *out (free it with moka_caffemodel_free).
 * Reads both V2 `layer` (field 100) and V1 `layers` (field 2) entries; V1 type enums become
 * Caffe's V2 type strings ("INNER_PRODUCT" -> "InnerProduct"). Each blob's value count must
 * match its shape; float `data` is used, or `double_data` (converted to float) when present.
 *
 * Errors, all MOKA_ERR_IO unless noted, each naming the file:
 *   cannot open 'x': <system error>               (missing or unreadable)
 *   'x' is empty (not a Caffe NetParameter)
 *   'x' is truncated: field 'layer' at byte B declares L bytes but only R remain ...
 *   'x' is not a Caffe NetParameter (protobuf decode failed)
 *   'x': layer 'conv1': blob 0 has shape 20 1 5 5 (500) but holds 499 values
 *   'x': layer 'conv1': blob 0 has negative dimension -3 at axis 1 (or its count overflows)
 *   'x' has both V2 'layer' and V1 'layers' entries
 *   'x': layer 'y' has unknown V1 type 77
 *   MOKA_ERR_UNSUPPORTED: more than MOKA_MAX_NDIM axes, a V0 (pre-2014) layer, a file of 2 GiB
 *   or more (Caffe cannot read those either).
 * A failed read leaves *out NULL. Peak heap is about the size of the weights once (protobuf-c's
 * decoded arrays, which the tensors point into): the file is mapped, not copied. */
moka_status moka_caffemodel_read(const char *path, moka_caffemodel **out, moka_err *err);

/* Frees what moka_caffemodel_read made. NULL does nothing. */
void moka_caffemodel_free(moka_caffemodel *m);

/* The file's net name ("" when it has none). Valid until moka_caffemodel_free. */
const char *moka_caffemodel_name(const moka_caffemodel *m);
/* Number of layer entries in the file, in file order (layers without blobs included). */
int moka_caffemodel_num_layers(const moka_caffemodel *m);
/* Layer i (0 <= i < num_layers) as the file stores it; NULL when i is out of range. Names,
 * types and blob tensors are borrowed from m and stay valid until moka_caffemodel_free; the
 * caller must not write to them. A V1 layer with type NONE has type "". */
const moka_model_layer *moka_caffemodel_layer(const moka_caffemodel *m, int i);

/* Copies blobs from the file into `layers`, matching by layer name as Caffe's
 * Net::CopyTrainedLayersFrom does: for each file layer in file order, the first net layer of
 * that name receives its blobs. A file layer the net does not have is skipped (logged at INFO
 * as "Ignoring source layer X", like Caffe); net layers absent from the file are left alone.
 * *num_copied (if not NULL) receives how many distinct net layers received blobs, so that
 * num_layers - *num_copied were left at their initial values.
 *
 * Blob counts must be equal, and each blob's shape must equal the net's (Caffe's ShapeEquals):
 * a legacy 4-D file blob (num, channels, height, width) matches a net blob of at most 4 axes
 * whose shape, padded on the left with 1s to 4 axes, is equal (so a 1x1x1xN bias fits (N)).
 * Everything is checked before anything is copied, so on error the net is untouched.
 *
 * Errors: MOKA_ERR_SHAPE "'x.caffemodel': layer 'conv1' has 1 blob(s) in the file but 2 in the
 * net" and "'x.caffemodel': layer 'conv1': cannot copy blob 0: shape mismatch, file has
 * 20 1 5 5 (500), net has 20 3 5 5 (1500) (rename the layer to learn it from scratch)";
 * MOKA_ERR_INVALID_ARG for a net blob without data or a NULL layer name. */
moka_status moka_caffemodel_copy_into(const moka_caffemodel *m, const moka_model_layer *layers,
                                      int num_layers, int *num_copied, moka_err *err);

/* A solver snapshot (Caffe's SolverState). The caller supplies the struct; moka_solverstate_read
 * fills it and moka_solverstate_deinit frees what it holds. */
typedef struct moka_solverstate {
    int64_t iter, current_step; /* iterations done; index into stepvalues (multistep policy) */
    int64_t data_position;      /* training samples consumed by all ranks (moka's field), -1 if absent */
    char *learned_net;          /* path of the matching .caffemodel, or NULL when absent */
    int num_history;
    moka_tensor *history; /* num_history tensors; each data owned (malloc) by the struct */
} moka_solverstate;

/* Writes a SolverState (iter, learned_net unless NULL, one BlobProto per history tensor with
 * shape and packed float data, current_step) to `path`, with the same temporary-file, fsync and
 * rename protocol as moka_caffemodel_write, plus moka's data_position field when it is >= 0
 * (Caffe skips it). iter and current_step must fit Caffe's int32 fields
 * (MOKA_ERR_INVALID_ARG otherwise); other errors as moka_caffemodel_write. */
moka_status moka_solverstate_write(const char *path, int64_t iter, int64_t data_position,
                                   const char *learned_net,
                                   int64_t current_step, moka_tensor *const *history,
                                   int num_history, moka_err *err);

/* Reads the SolverState at `path` into *out, with the checks of moka_caffemodel_read (missing,
 * empty, truncated, "'x' is not a Caffe SolverState (protobuf decode failed)", a history blob
 * whose value count does not match its shape). On failure *out is left zeroed, so
 * moka_solverstate_deinit on it is harmless. Absent iter/current_step read as 0. */
moka_status moka_solverstate_read(const char *path, moka_solverstate *out, moka_err *err);

/* Copies s->history into the solver's history tensors, as Caffe's SGDSolver::RestoreSolverState
 * does, after checking the count and each shape: equal, or a 4-D file blob equal to the solver's
 * blob padded on the left with 1s to 4 axes (legacy num/channels/height/width blobs). Errors:
 * MOKA_ERR_SHAPE "solver state has 3 history blob(s) but the solver keeps 4" and "solver state
 * history blob 2 has shape 10 (10) but the solver's is 20 (20)". Nothing is copied on error. */
moka_status moka_solverstate_copy_history(const moka_solverstate *s, moka_tensor *const *history,
                                          int num_history, moka_err *err);

/* Frees what s holds and zeroes it. Safe on a zeroed struct. */
void moka_solverstate_deinit(moka_solverstate *s);

#endif /* MOKA_CAFFEMODEL_H */
