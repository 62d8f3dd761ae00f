/* src/io/caffe_schema.c -- the fields of Caffe's schema that moka does not implement.
 *
 * One row per field: {message, field, reason}. To reject another field, add a row; the reason
 * finishes the sentence "field 'x' in Message is not supported by moka (<reason>)". Layer
 * parameter messages (ConvolutionParameter, ...) are not listed here: each layer file rejects
 * the fields of its own *_param message that it does not implement.
 */
#include "io/caffe_schema.h"

#include <stddef.h>
#include <string.h>

typedef struct unsupported_field {
    const char *message;
    const char *field;
    const char *reason;
} unsupported_field;

static const unsupported_field unsupported[] = {
    /* The V1 format is reported with its own message by the parser (see prototxt.c); the row
     * keeps moka_schema_unsupported truthful for callers that ask directly. */
    {"NetParameter", "layers", "the old V1 layer format; use 'layer'"},
    {"NetParameter", "debug_info", "per-layer debug printing is not implemented"},
    {"LayerParameter", "blobs", "weights come from a .caffemodel, not from the net text"},
    {"ParamSpec", "share_mode", "shared weights always need identical shapes"},
    {"SolverParameter", "snapshot_diff", "snapshots hold weights and solver state only"},
    {"SolverParameter", "debug_info", "per-layer debug printing is not implemented"},
    {"SolverParameter", "plateau_winsize", "the 'plateau' learning-rate policy is not "
                                           "implemented"},
};

const char *moka_schema_unsupported(const char *message, const char *field)
{
    if (!message || !field) return NULL;
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (!strcmp(unsupported[i].message, message) && !strcmp(unsupported[i].field, field))
            return unsupported[i].reason;
    return NULL;
}
