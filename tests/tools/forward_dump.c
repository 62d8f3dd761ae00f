/* tests/tools/forward_dump.c -- a test helper: runs one forward pass of a deploy net (TEST
 * phase) with weights from a .caffemodel, on inputs read from a raw float32 file, and writes one
 * blob as raw float32. Shell tests compare its output with other frameworks (OpenCV's dnn).
 *
 *   forward_dump NET.prototxt WEIGHTS.caffemodel IN.raw OUT.raw [BLOB]
 *
 * IN.raw holds the net's input blobs back to back, each in its declared shape (native-endian
 * float32, row-major); its size must match exactly. BLOB names the blob to write (default: the
 * net's first output). Exit status: 0 done, 1 failure (message on stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>

#include "moka/ctx.h"
#include "moka/net.h"
#include "moka/status.h"
#include "moka/tensor.h"

static int fail(const moka_err *err)
{
    fprintf(stderr, "forward_dump: %s: %s\n", moka_status_name(err->code), err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: forward_dump NET.prototxt WEIGHTS.caffemodel IN.raw OUT.raw "
                        "[BLOB]\n");
        return 2;
    }
    moka_err err = {0};
    moka_ctx ctx;
    moka_ctx_init(&ctx);
    const moka_net_state state = {.phase = MOKA_TEST};
    moka_net *net = NULL;
    if (moka_net_create_from_file(argv[1], &state, &ctx, &net, &err) != MOKA_OK) return fail(&err);
    int rc = 1;
    FILE *in = NULL, *out = NULL;
    if (moka_net_load_weights(net, argv[2], &err) != MOKA_OK) {
        fail(&err);
        goto done;
    }
    in = fopen(argv[3], "rb");
    if (!in) {
        perror(argv[3]);
        goto done;
    }
    for (int i = 0; i < moka_net_num_inputs(net); i++) {
        moka_tensor *t = moka_net_input(net, i);
        const size_t n = (size_t)moka_tensor_count(t);
        if (fread(t->data, sizeof(float), n, in) != n) {
            fprintf(stderr, "forward_dump: %s is too short for input %d (%zu floats)\n", argv[3],
                    i, n);
            goto done;
        }
    }
    if (fgetc(in) != EOF) {
        fprintf(stderr, "forward_dump: %s is longer than the net's inputs\n", argv[3]);
        goto done;
    }
    if (moka_net_forward(net, NULL, &err) != MOKA_OK) {
        fail(&err);
        goto done;
    }
    const moka_tensor *y = argc == 6 ? moka_net_blob(net, argv[5])
                                     : (moka_net_num_outputs(net) ? moka_net_output(net, 0) : NULL);
    if (!y) {
        fprintf(stderr, "forward_dump: no blob '%s'\n", argc == 6 ? argv[5] : "(output 0)");
        goto done;
    }
    out = fopen(argv[4], "wb");
    const size_t n = (size_t)moka_tensor_count(y);
    if (!out || fwrite(y->data, sizeof(float), n, out) != n) {
        perror(argv[4]);
        goto done;
    }
    rc = 0;
done:
    if (out && fclose(out) != 0 && rc == 0) {
        perror(argv[4]);
        rc = 1;
    }
    if (in) fclose(in);
    moka_net_free(net);
    return rc;
}
