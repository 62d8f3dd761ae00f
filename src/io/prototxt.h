/* src/io/prototxt.h -- protobuf text format, parsed to a tree that keeps file:line:col, checked
 * against the schema of proto/caffe.proto (protobuf-c descriptors).
 *
 * Grammar (protobuf text format as Caffe's files use it):
 *   message := { field }
 *   field   := IDENT ':' value | IDENT [':'] '{' message '}' | IDENT [':'] '<' message '>'
 *              | IDENT ':' '[' value { ',' value } ']'
 *   value   := NUMBER | IDENT (enum, true/false, inf, nan) | STRING { STRING }
 *   '#' starts a comment to end of line; ',' or ';' may follow a field.
 * Strings are "..." or '...' with C escapes (\n \t \\ \" \' \ooo \xhh); adjacent strings concatenate.
 *
 * Validation (moka_pt_parse with a descriptor) rejects, with "file:line:col: ..." messages:
 *   unknown fields (with a "did you mean" suggestion), a singular field given twice, a scalar
 *   where a message is wanted and the reverse, numbers that do not parse or overflow the field's
 *   type, unknown enum values (listing the known ones), and fields that Caffe has but moka does
 *   not support (see caffe_schema.h).
 *
 * Accessors never fail: after validation every value is known to convert. For an absent field
 * they return the schema default (Caffe's [default = ...] or 0/false/""/first enum value).
 * Absent sub-messages come back as an empty node of the right type, so defaults keep working
 * one level down: moka_pt_str(moka_pt_msg(conv, "weight_filler"), "type") is "constant".
 *
 * Threads: parses are independent, but a document is not thread-safe while it is read, because
 * moka_pt_msg creates (once, in the document's arena) the empty node of an absent sub-message.
 * Positions: the root node has line 0 (moka_pt_errf then prefixes just "file: "); implicit empty
 * nodes have no file and no position. Elements of a list (`dim: [1, 2]`) are sibling nodes that
 * all carry the position of the field name. Schema messages inside a LayerParameter start with
 * "layer '<name>': " after the position.
 */
#ifndef MOKA_PROTOTXT_H
#define MOKA_PROTOTXT_H

#include <stdbool.h>
#include <stdint.h>

#include "moka/status.h"

struct ProtobufCMessageDescriptor;
struct ProtobufCFieldDescriptor;

typedef enum moka_pt_kind {
    MOKA_PT_MESSAGE = 0, /* children in `child`, linked by `next`, in file order */
    MOKA_PT_NUMBER,      /* text holds the token as written: 5, -1e-3, 0x10, inf */
    MOKA_PT_IDENT,       /* enum names, true/false */
    MOKA_PT_STRING,      /* text holds the unescaped bytes, len their count */
} moka_pt_kind;

typedef struct moka_pt_node {
    const char *name; /* field name; "" for the document root */
    const char *file; /* file name used in messages (shared by all nodes of a document) */
    int line, col;    /* 1-based position of the field name */
    moka_pt_kind kind;
    char *text; /* scalar value (NUL-terminated; strings may hold NULs, see len) */
    int64_t len;
    struct moka_pt_node *child, *next;
    /* Filled by validation: the field this node sets, and for messages their type. */
    const struct ProtobufCFieldDescriptor *field;
    const struct ProtobufCMessageDescriptor *msg;
    struct moka_pt_doc *doc;
} moka_pt_node;

typedef struct moka_pt_doc moka_pt_doc; /* owns every node and string of one parse */

/* Parses `text` (nbytes long, need not be NUL-terminated) and validates it as message type
 * `type` (e.g. &caffe__net_parameter__descriptor). `file` is used in messages. On success *out
 * owns the tree; free it with moka_pt_doc_free. Returns MOKA_ERR_CONFIG (syntax, schema),
 * MOKA_ERR_UNSUPPORTED (a Caffe field moka does not implement) or MOKA_ERR_NOMEM. */
moka_status moka_pt_parse(const char *text, int64_t nbytes, const char *file,
                          const struct ProtobufCMessageDescriptor *type, moka_pt_doc **out,
                          moka_err *err);
/* Reads the whole file and calls moka_pt_parse; MOKA_ERR_IO names the file if it cannot. */
moka_status moka_pt_parse_file(const char *path, const struct ProtobufCMessageDescriptor *type,
                               moka_pt_doc **out, moka_err *err);
void moka_pt_doc_free(moka_pt_doc *doc);
/* The root message node; valid until moka_pt_doc_free. */
const moka_pt_node *moka_pt_root(const moka_pt_doc *doc);

/* Field lookup on a message node. `field` must name a field of the node's type (a misspelt
 * name in moka's own code is a bug and trips MOKA_ASSERT). */
bool moka_pt_has(const moka_pt_node *msg, const char *field);
int moka_pt_count(const moka_pt_node *msg, const char *field); /* occurrences (repeated) */
/* The node of the i-th occurrence, or NULL; useful as the position in error messages. */
const moka_pt_node *moka_pt_node_at(const moka_pt_node *msg, const char *field, int i);

/* Scalar getters: value of the first occurrence, or the default when absent. Integer fields
 * (int32/int64/uint32/uint64) and enums (the enum's number) read with _int; float/double with
 * _float (an integer field reads too); bool with _bool; string, bytes and enum names with _str
 * (for enums: the value name, e.g. "MAX"). */
int64_t moka_pt_int(const moka_pt_node *msg, const char *field);
double moka_pt_float(const moka_pt_node *msg, const char *field);
bool moka_pt_bool(const moka_pt_node *msg, const char *field);
const char *moka_pt_str(const moka_pt_node *msg, const char *field);
/* The i-th occurrence of a repeated field (0 <= i < moka_pt_count). */
int64_t moka_pt_int_at(const moka_pt_node *msg, const char *field, int i);
double moka_pt_float_at(const moka_pt_node *msg, const char *field, int i);
const char *moka_pt_str_at(const moka_pt_node *msg, const char *field, int i);
/* Sub-messages: the first (or i-th) occurrence; if absent an empty node of the field's type
 * (never NULL for _msg; NULL from _msg_at when i is out of range). */
const moka_pt_node *moka_pt_msg(const moka_pt_node *msg, const char *field);
const moka_pt_node *moka_pt_msg_at(const moka_pt_node *msg, const char *field, int i);

/* Like moka_errf, prefixed with "file:line:col: " of `at` (no prefix if at is NULL or has no
 * position, e.g. an implicit empty message; "file: " for the document root). */
moka_status moka_pt_errf(moka_err *err, moka_status code, const moka_pt_node *at, const char *fmt,
                         ...) MOKA_PRINTF(4, 5);

#endif /* MOKA_PROTOTXT_H */
