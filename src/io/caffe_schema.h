/* src/io/caffe_schema.h -- which fields of Caffe's schema (proto/caffe.proto) moka does not
 * implement, and why.
 *
 * The prototxt validator (src/io/prototxt.c) asks moka_schema_unsupported for every field a file
 * sets; a non-NULL answer turns into MOKA_ERR_UNSUPPORTED:
 *   "solver.prototxt:7:1: field 'snapshot_diff' in SolverParameter is not supported by moka
 *    (snapshots hold weights and solver state only)"
 * so a Caffe option that would change training is never silently ignored.
 *
 * This table covers the messages the net and solver code read as a whole (NetParameter,
 * LayerParameter, SolverParameter, ParamSpec, ...). Each layer's own *_param message is checked
 * by that layer's file in src/layers/, which rejects the fields it does not implement itself.
 */
#ifndef MOKA_CAFFE_SCHEMA_H
#define MOKA_CAFFE_SCHEMA_H

/* The reason moka rejects `field` of message `message` (short names as in caffe.proto, e.g.
 * "SolverParameter", "snapshot_diff"), or NULL if moka accepts it. The string is static.
 * Thread-safe. */
const char *moka_schema_unsupported(const char *message, const char *field);

#endif /* MOKA_CAFFE_SCHEMA_H */
