/* src/solvers/summary.c -- what the trainer writes to TensorBoard event files. */
#include "solvers/summary.h"

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/net_internal.h"
#include "io/tfevents.h"

struct moka_summary {
    moka_tfevents *w;
    float *scratch; /* one image, clamped to [0, 1] */
    int64_t scratch_count;
};

/* Integer settings worth showing on a graph node, when the layer's *_param message has them. */
static const char *const graph_attr_keys[] = {"num_output", "kernel_size", "stride", "pad",
                                              "group",      "local_size",  "axis",   "top_k"};
#define NUM_GRAPH_ATTRS (int)(sizeof graph_attr_keys / sizeof graph_attr_keys[0])

static moka_status write_graph(moka_tfevents *w, const moka_net *net, moka_err *err)
{
    const int nl = moka_net_num_layers(net);
    moka_graph_node *nodes = calloc((size_t)nl + 1, sizeof *nodes);
    const char **inputs = calloc((size_t)nl * 64 + 1, sizeof *inputs);
    const char **keys = calloc((size_t)nl * NUM_GRAPH_ATTRS + 1, sizeof *keys);
    int64_t *values = calloc((size_t)nl * NUM_GRAPH_ATTRS + 1, sizeof *values);
    moka_status st = MOKA_OK;
    if (!nodes || !inputs || !keys || !values) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory for the net graph");
        goto done;
    }
    for (int i = 0; i < nl; i++) {
        const moka_layer *l = moka_net_layer(net, i);
        moka_graph_node *n = &nodes[i];
        n->name = l->name;
        n->op = l->ops->type;
        n->inputs = inputs + (size_t)i * 64;
        /* A bottom's producer is the last earlier layer with that tensor as a top. */
        for (int b = 0; b < l->num_bottom && n->num_inputs < 64; b++)
            for (int j = i - 1; j >= 0; j--) {
                const moka_layer *p = moka_net_layer(net, j);
                bool found = false;
                for (int t = 0; t < p->num_top; t++) found = found || p->top[t] == l->bottom[b];
                if (found) {
                    ((const char **)n->inputs)[n->num_inputs++] = p->name;
                    break;
                }
            }
        n->attr_keys = keys + (size_t)i * NUM_GRAPH_ATTRS;
        n->attr_values = values + (size_t)i * NUM_GRAPH_ATTRS;
        if (!l->param) continue;
        for (int k = 0; k < NUM_GRAPH_ATTRS; k++) {
            const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(
                l->param->msg, graph_attr_keys[k]);
            if (!fd || !moka_pt_has(l->param, graph_attr_keys[k])) continue;
            if (fd->type != PROTOBUF_C_TYPE_UINT32 && fd->type != PROTOBUF_C_TYPE_INT32) continue;
            const int64_t v = fd->label == PROTOBUF_C_LABEL_REPEATED
                                  ? moka_pt_int_at(l->param, graph_attr_keys[k], 0)
                                  : moka_pt_int(l->param, graph_attr_keys[k]);
            ((const char **)n->attr_keys)[n->num_attrs] = graph_attr_keys[k];
            ((int64_t *)n->attr_values)[n->num_attrs++] = v;
        }
    }
    st = moka_tfevents_graph(w, nodes, nl, err);
done:
    free(nodes);
    free(inputs);
    free(keys);
    free(values);
    return st;
}

moka_status moka_summary_open(const char *log_dir, const char *run, const moka_net *net,
                              moka_summary **out, moka_err *err)
{
    *out = NULL;
    moka_summary *s = calloc(1, sizeof *s);
    if (!s) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    moka_status st = moka_tfevents_open(log_dir, run, &s->w, err);
    if (st == MOKA_OK) st = write_graph(s->w, net, err);
    if (st != MOKA_OK) {
        moka_summary_close(s);
        return st;
    }
    *out = s;
    return MOKA_OK;
}

const char *moka_summary_path(const moka_summary *s) { return moka_tfevents_path(s->w); }

moka_status moka_summary_train(moka_summary *s, int64_t iter, float loss, float smoothed,
                               float lr, double images_per_sec, moka_err *err)
{
    MOKA_TRY(moka_tfevents_scalar(s->w, iter, "train/loss", loss, err));
    MOKA_TRY(moka_tfevents_scalar(s->w, iter, "train/loss_smoothed", smoothed, err));
    MOKA_TRY(moka_tfevents_scalar(s->w, iter, "train/lr", lr, err));
    if (images_per_sec > 0)
        MOKA_TRY(moka_tfevents_scalar(s->w, iter, "train/images_per_sec", images_per_sec, err));
    return MOKA_OK;
}

moka_status moka_summary_test(moka_summary *s, int64_t iter, int net_id, moka_net *test_net,
                              const float *scores, moka_err *err)
{
    char prefix[32], tag[256];
    if (net_id == 0) snprintf(prefix, sizeof prefix, "test");
    else snprintf(prefix, sizeof prefix, "test%d", net_id);
    int idx = 0;
    for (int o = 0; o < moka_net_num_outputs(test_net); o++) {
        const int64_t n = moka_tensor_count(moka_net_output(test_net, o));
        for (int64_t k = 0; k < n; k++, idx++) {
            if (n == 1) snprintf(tag, sizeof tag, "%s/%s", prefix, moka_net_output_name(test_net, o));
            else snprintf(tag, sizeof tag, "%s/%s/%lld", prefix, moka_net_output_name(test_net, o), (long long)k);
            MOKA_TRY(moka_tfevents_scalar(s->w, iter, tag, scores[idx], err));
        }
    }
    return MOKA_OK;
}

moka_status moka_summary_histograms(moka_summary *s, int64_t iter, moka_net *net, moka_err *err)
{
    char tag[320];
    for (int i = 0; i < moka_net_num_layers(net); i++) {
        const moka_layer *l = moka_net_layer(net, i);
        for (int j = 0; j < l->num_weight; j++) {
            const moka_tensor *w = l->weight[j];
            const int64_t n = moka_tensor_count(w);
            snprintf(tag, sizeof tag, "params/%s/%d", l->name, j);
            MOKA_TRY(moka_tfevents_histogram(s->w, iter, tag, w->data, n, err));
            if (w->grad) {
                snprintf(tag, sizeof tag, "grads/%s/%d", l->name, j);
                MOKA_TRY(moka_tfevents_histogram(s->w, iter, tag, w->grad, n, err));
            }
        }
    }
    return MOKA_OK;
}

moka_status moka_summary_images(moka_summary *s, int64_t iter, moka_net *net, int64_t count,
                                moka_err *err)
{
    if (moka_net_num_layers(net) == 0 || moka_net_layer(net, 0)->num_top == 0) return MOKA_OK;
    const moka_tensor *x = moka_net_layer(net, 0)->top[0];
    if (x->ndim != 4 || (x->shape[1] != 1 && x->shape[1] != 3)) return MOKA_OK;
    const int64_t per = x->shape[1] * x->shape[2] * x->shape[3];
    if (per > s->scratch_count) {
        float *p = realloc(s->scratch, (size_t)per * sizeof *p);
        if (!p) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for an image summary");
        s->scratch = p;
        s->scratch_count = per;
    }
    char tag[64];
    for (int64_t k = 0; k < count && k < x->shape[0]; k++) {
        const float *src = x->data + k * per;
        /* Inputs are usually scaled to [0, 1]; anything outside is clamped for display. */
        for (int64_t i = 0; i < per; i++)
            s->scratch[i] = src[i] < 0.0f ? 0.0f : src[i] > 1.0f ? 1.0f : src[i];
        snprintf(tag, sizeof tag, "input/%lld", (long long)k);
        MOKA_TRY(moka_tfevents_image(s->w, iter, tag, s->scratch, (int)x->shape[1],
                                     (int)x->shape[2], (int)x->shape[3], err));
    }
    return MOKA_OK;
}

moka_status moka_summary_resume(moka_summary *s, int64_t step, moka_err *err)
{
    return moka_tfevents_session_start(s->w, step, err);
}

void moka_summary_close(moka_summary *s)
{
    if (!s) return;
    moka_tfevents_close(s->w);
    free(s->scratch);
    free(s);
}
