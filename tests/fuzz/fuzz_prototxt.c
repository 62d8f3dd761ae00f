/* tests/fuzz/fuzz_prototxt.c -- libFuzzer target for the prototxt reader.
 *
 * Each input is parsed as a NetParameter and as a SolverParameter. A parse must either succeed
 * (then every accessor is exercised on every field of every message in the tree, including the
 * implicit empty sub-messages) or fail with a one-line message; a crash, leak, sanitizer report
 * or a multi-line message is a finding. Build and run:
 *   CC=clang cmake -S . -B build-fuzz -DMOKA_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_prototxt
 *   build-fuzz/tests/fuzz_prototxt -max_total_time=60 tests/fuzz/corpus_prototxt
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "caffe.pb-c.h"
#include "io/prototxt.h"

/* A sink the optimiser cannot drop, so every accessor really runs. */
static volatile double sink;

/* Reads every field of message node m with the accessor of its type. implicit_depth bounds the
 * descent into absent sub-messages, whose types can nest forever (NetParameter in
 * SolverParameter, ...). */
static void exercise(const moka_pt_node *m, int implicit_depth)
{
    const ProtobufCMessageDescriptor *md = m->msg;
    for (unsigned f = 0; f < md->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &md->fields[f];
        const int count = moka_pt_count(m, fd->name);
        sink += moka_pt_has(m, fd->name) + (moka_pt_node_at(m, fd->name, count) == NULL);
        switch (fd->type) {
        case PROTOBUF_C_TYPE_MESSAGE:
            for (int i = 0; i < count; i++)
                exercise(moka_pt_msg_at(m, fd->name, i), implicit_depth);
            if (count == 0 && implicit_depth > 0)
                exercise(moka_pt_msg(m, fd->name), implicit_depth - 1);
            break;
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
            sink += moka_pt_float(m, fd->name);
            for (int i = 0; i < count; i++) sink += moka_pt_float_at(m, fd->name, i);
            break;
        case PROTOBUF_C_TYPE_BOOL: sink += moka_pt_bool(m, fd->name); break;
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_BYTES:
            sink += (double)strlen(moka_pt_str(m, fd->name));
            for (int i = 0; i < count; i++) sink += (double)strlen(moka_pt_str_at(m, fd->name, i));
            break;
        case PROTOBUF_C_TYPE_ENUM:
            sink += (double)strlen(moka_pt_str(m, fd->name));
            for (int i = 0; i < count; i++) sink += (double)moka_pt_int_at(m, fd->name, i);
            break;
        default:
            sink += (double)moka_pt_int(m, fd->name) + moka_pt_float(m, fd->name);
            for (int i = 0; i < count; i++) sink += (double)moka_pt_int_at(m, fd->name, i);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ProtobufCMessageDescriptor *const types[] = {
        &caffe__net_parameter__descriptor,
        &caffe__solver_parameter__descriptor,
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        moka_err err = {0};
        moka_pt_doc *doc = NULL;
        const moka_status st =
            moka_pt_parse((const char *)data, (int64_t)size, "fuzz", types[t], &doc, &err);
        if (st == MOKA_OK) {
            exercise(moka_pt_root(doc), 2);
            moka_pt_doc_free(doc);
            continue;
        }
        const bool well_formed = doc == NULL &&
                                 (st == MOKA_ERR_CONFIG || st == MOKA_ERR_UNSUPPORTED) &&
                                 !strncmp(err.msg, "fuzz:", 5) && !strchr(err.msg, '\n');
        if (!well_formed) __builtin_trap();
    }
    return 0;
}
