/* tests/fuzz/fuzz_caffemodel.c -- libFuzzer target: arbitrary bytes as a .caffemodel and as a
 * .solverstate must give MOKA_OK or an error status, never a crash, leak or overflow. The bytes
 * go through a file because the readers take paths (they map the file). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/caffemodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/moka_fuzz_caffemodel.%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    moka_err err = {0};
    moka_caffemodel *m = NULL;
    if (moka_caffemodel_read(path, &m, &err) == MOKA_OK) {
        /* Walk what was decoded so every blob pointer is touched. */
        double sum = 0;
        for (int i = 0; i < moka_caffemodel_num_layers(m); i++) {
            const moka_model_layer *l = moka_caffemodel_layer(m, i);
            for (int b = 0; b < l->num_blobs; b++) {
                const int64_t n = moka_tensor_count(l->blobs[b]);
                if (n > 0) sum += l->blobs[b]->data[0] + l->blobs[b]->data[n - 1];
            }
        }
        (void)sum;
        moka_caffemodel_free(m);
    }
    moka_solverstate s;
    if (moka_solverstate_read(path, &s, &err) == MOKA_OK) moka_solverstate_deinit(&s);
    return 0;
}
