/* src/core/net.c -- building a net from a NetParameter and running it (Caffe's Net::Init,
 * ForwardFromTo, BackwardFromTo).
 *
 * Build steps:
 *   1. filter layers by the NetState (include/exclude rules: phase, min/max_level, stage,
 *      not_stage);
 *   2. find blob versions and their consumers; where a version feeds several layers, insert a
 *      Split layer ("<blob>_<producer>_<top>_split", tops "..._split_<k>"), as Caffe's
 * InsertSplits;
 *   3. create and set up every layer in order, shape-infer (reshape), declare weights;
 *   4. resolve `param { name }` sharing and the share_from net (test nets use the train weights);
 *   5. find which layers need backward (from loss tops down, and from parameters up);
 *   6. allocate the parameter block, its gradient block, and the activation blocks; fill weights.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caffe.pb-c.h"
#include "core/filler.h"
#include "core/layout.h"
#include "core/net_internal.h"
#include "io/caffemodel.h"
#include "moka/log.h"

typedef struct net_blob {
    char *name;
    moka_tensor t;
    int alias_of;   /* in-place: index of the blob whose data this one shares, else -1 */
    int producer;   /* layer index, -1 for net inputs */
    int consumers;  /* layers reading this version */
    bool need_grad; /* some layer below produces a gradient into it */
    bool under_loss;
    /* Held copies (src/core/layout.h): of the data, used by this blob and its in-place aliases
     * (through the root's), and of this blob's own gradient. */
    moka_held hdata, hgrad;
} net_blob;

struct moka_net {
    char *name;
    const moka_ctx *ctx;
    moka_phase phase;
    moka_pt_doc *doc;       /* owned when created from a file or text */
    moka_pt_doc **aux_docs; /* Split layers' configs */
    int num_aux;
    int num_layers;
    moka_layer **layers;
    int **bottom_ids, **top_ids; /* blob indices per layer */
    bool *need_backward;
    int num_blobs, cap_blobs;
    net_blob *
        *blobs; /* each allocated on its own, so tensor pointers stay put as blobs are added */
    int *outputs, num_outputs;
    int *inputs, num_inputs;
    moka_net_param *params;
    int num_params;
    int64_t param_count;
    float *param_data, *param_grad;
    float *act_data, *act_grad;
    bool timing;
    double *fwd_ms, *bwd_ms;
    moka_net_grads_final_fn on_final; /* see moka_net_set_grads_final_hook */
    void *on_final_user;
};

static char *dup_str(const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- 1. NetState rules ---- */

static bool state_has_stage(const moka_net_state *st, const char *stage)
{
    for (int i = 0; i < st->num_stages; i++)
        if (strcmp(st->stages[i], stage) == 0) return true;
    return false;
}

static bool rule_meets(const moka_pt_node *rule, const moka_net_state *st)
{
    if (moka_pt_has(rule, "phase") && moka_pt_int(rule, "phase") != (int64_t)st->phase)
        return false;
    if (moka_pt_has(rule, "min_level") && st->level < moka_pt_int(rule, "min_level")) return false;
    if (moka_pt_has(rule, "max_level") && st->level > moka_pt_int(rule, "max_level")) return false;
    for (int i = 0; i < moka_pt_count(rule, "stage"); i++)
        if (!state_has_stage(st, moka_pt_str_at(rule, "stage", i))) return false;
    for (int i = 0; i < moka_pt_count(rule, "not_stage"); i++)
        if (state_has_stage(st, moka_pt_str_at(rule, "not_stage", i))) return false;
    return true;
}

static moka_status layer_included(const moka_pt_node *layer, const moka_net_state *st, bool *out,
                                  moka_err *err)
{
    const int ni = moka_pt_count(layer, "include"), ne = moka_pt_count(layer, "exclude");
    if (ni > 0 && ne > 0)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, layer,
                            "layer '%s' has both include and exclude rules; Caffe allows one kind",
                            moka_pt_str(layer, "name"));
    if (ni > 0) {
        *out = false;
        for (int i = 0; i < ni; i++)
            if (rule_meets(moka_pt_msg_at(layer, "include", i), st)) *out = true;
    } else {
        *out = true;
        for (int i = 0; i < ne; i++)
            if (rule_meets(moka_pt_msg_at(layer, "exclude", i), st)) *out = false;
    }
    return MOKA_OK;
}

/* ---- blobs ---- */

static int add_blob(moka_net *net, const char *name, int producer, moka_err *err)
{
    if (net->num_blobs == net->cap_blobs) {
        const int cap = net->cap_blobs ? 2 * net->cap_blobs : 32;
        net_blob **b = realloc(net->blobs, (size_t)cap * sizeof *b);
        if (!b) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory"), -1;
        net->blobs = b;
        net->cap_blobs = cap;
    }
    net_blob *b = calloc(1, sizeof *b);
    if (!b) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory"), -1;
    net->blobs[net->num_blobs] = b;
    b->name = dup_str(name);
    if (!b->name) {
        free(b);
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory"), -1;
    }
    b->alias_of = -1;
    b->producer = producer;
    return net->num_blobs++;
}

/* The latest version of a named blob, or -1. */
static int find_blob(const moka_net *net, const char *name)
{
    for (int i = net->num_blobs - 1; i >= 0; i--)
        if (strcmp(net->blobs[i]->name, name) == 0) return i;
    return -1;
}

/* ---- 2. planning splits: a first pass over names only ---- */

typedef struct plan_version {
    const char *name;
    const char *producer_layer; /* NULL for net inputs */
    int producer_top;
    int consumers, next_consumer;
    int split_index; /* the Split layer's position in the plan's layer list, -1 if none */
} plan_version;

typedef struct plan {
    plan_version *v;
    int n, cap;
} plan;

static int plan_add(plan *p, const char *name, const char *producer, int top)
{
    if (p->n == p->cap) {
        const int cap = p->cap ? 2 * p->cap : 64;
        plan_version *v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n] = (plan_version){name, producer, top, 0, 0, -1};
    return p->n++;
}

static int plan_find(const plan *p, const char *name)
{
    for (int i = p->n - 1; i >= 0; i--)
        if (strcmp(p->v[i].name, name) == 0) return i;
    return -1;
}

/* ---- layer creation ---- */

static moka_status check_param_fields(const moka_layer *l, moka_err *err)
{
    /* Every *_param field set on a layer must be one its type reads. */
    for (const moka_pt_node *c = l->cfg->child; c; c = c->next) {
        const size_t n = strlen(c->name);
        if (n < 7 || strcmp(c->name + n - 6, "_param") != 0) continue;
        bool ok = l->ops->param_field && strcmp(c->name, l->ops->param_field) == 0;
        for (const char *const *e = l->ops->extra_fields; !ok && e && *e; e++)
            ok = strcmp(c->name, *e) == 0;
        if (!ok)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, c,
                                "layer '%s' (%s) does not read %s; remove it or fix the type",
                                l->name, l->ops->type, c->name);
    }
    return MOKA_OK;
}

static moka_status push_layer(moka_net *net, moka_layer *l, moka_err *err)
{
    const int n = net->num_layers + 1;
    moka_layer **ls = realloc(net->layers, (size_t)n * sizeof *ls);
    if (ls) net->layers = ls;
    int **b = realloc(net->bottom_ids, (size_t)n * sizeof *b);
    if (b) net->bottom_ids = b;
    int **t = realloc(net->top_ids, (size_t)n * sizeof *t);
    if (t) net->top_ids = t;
    if (!ls || !b || !t) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    net->layers[n - 1] = l;
    net->bottom_ids[n - 1] = calloc((size_t)l->num_bottom + 1, sizeof(int));
    net->top_ids[n - 1] = calloc((size_t)l->num_top + 1, sizeof(int));
    net->num_layers = n;
    if (!net->bottom_ids[n - 1] || !net->top_ids[n - 1])
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    return MOKA_OK;
}

/* Connects layer li's bottoms to current blob versions and creates its tops. */
static moka_status wire_layer(moka_net *net, int li, const char *const *bottom_names,
                              const char *const *top_names, moka_err *err)
{
    moka_layer *l = net->layers[li];
    for (int i = 0; i < l->num_bottom; i++) {
        const int b = find_blob(net, bottom_names[i]);
        if (b < 0)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->cfg, "bottom", i),
                                "layer '%s': unknown bottom blob '%s' (no earlier layer produces "
                                "it in this phase)",
                                l->name, bottom_names[i]);
        net->bottom_ids[li][i] = b;
        l->bottom[i] = &net->blobs[b]->t;
    }
    for (int i = 0; i < l->num_top; i++) {
        int in_place_of = -1;
        for (int j = 0; j < l->num_bottom; j++)
            if (strcmp(top_names[i], bottom_names[j]) == 0) in_place_of = j;
        if (in_place_of >= 0) {
            if (in_place_of != i || !l->ops->in_place_ok)
                return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->cfg, "top", i),
                                    "layer '%s' (%s) cannot compute '%s' in place", l->name,
                                    l->ops->type, top_names[i]);
            l->in_place = true;
        } else if (find_blob(net, top_names[i]) >= 0) {
            return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->cfg, "top", i),
                                "layer '%s': top blob '%s' is produced by multiple sources",
                                l->name, top_names[i]);
        }
        const int t = add_blob(net, top_names[i], li, err);
        if (t < 0) return err ? err->code : MOKA_ERR_NOMEM;
        if (in_place_of >= 0) net->blobs[t]->alias_of = net->bottom_ids[li][in_place_of];
        net->top_ids[li][i] = t;
        l->top[i] = &net->blobs[t]->t;
    }
    return MOKA_OK;
}

static moka_status make_split(moka_net *net, const char *blob, const char *producer, int top_idx,
                              int count, moka_layer **out, moka_err *err)
{
    char text[4096];
    int n = snprintf(text, sizeof text, "name: \"%s_%s_%d_split\" type: \"Split\" bottom: \"%s\"",
                     blob, producer, top_idx, blob);
    for (int k = 0; k < count && n < (int)sizeof text - 200; k++)
        n += snprintf(text + n, sizeof text - (size_t)n, " top: \"%s_%s_%d_split_%d\"", blob,
                      producer, top_idx, k);
    moka_pt_doc **docs = realloc(net->aux_docs, (size_t)(net->num_aux + 1) * sizeof *docs);
    if (!docs) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    net->aux_docs = docs;
    MOKA_TRY(moka_pt_parse(text, n, "<split>", &caffe__layer_parameter__descriptor,
                           &net->aux_docs[net->num_aux], err));
    net->num_aux++;
    return moka_layer_create(moka_pt_root(net->aux_docs[net->num_aux - 1]), net->ctx, net->phase,
                             net->num_layers, out, err);
}

/* ---- building ---- */

static moka_status add_legacy_inputs(moka_net *net, const moka_pt_node *np, moka_err *err)
{
    const int ni = moka_pt_count(np, "input");
    const int nshape = moka_pt_count(np, "input_shape"), ndim = moka_pt_count(np, "input_dim");
    if (ni == 0) {
        if (nshape || ndim)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, np,
                                "input_shape/input_dim given without 'input' names");
        return MOKA_OK;
    }
    if (!(nshape == ni || (nshape == 0 && ndim == 4 * ni)))
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(np, "input", 0),
                            "%d inputs need %d input_shape entries or %d input_dim values", ni, ni,
                            4 * ni);
    net->inputs = calloc((size_t)ni, sizeof(int));
    if (!net->inputs) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    for (int i = 0; i < ni; i++) {
        const int b = add_blob(net, moka_pt_str_at(np, "input", i), -1, err);
        if (b < 0) return err ? err->code : MOKA_ERR_NOMEM;
        moka_tensor *t = &net->blobs[b]->t;
        if (nshape) {
            const moka_pt_node *s = moka_pt_msg_at(np, "input_shape", i);
            int64_t dims[MOKA_MAX_NDIM];
            const int nd = moka_pt_count(s, "dim");
            for (int d = 0; d < nd && d < MOKA_MAX_NDIM; d++) dims[d] = moka_pt_int_at(s, "dim", d);
            MOKA_TRY(moka_tensor_set_shape(t, nd, dims, err));
        } else {
            int64_t dims[4];
            for (int d = 0; d < 4; d++) dims[d] = moka_pt_int_at(np, "input_dim", 4 * i + d);
            MOKA_TRY(moka_tensor_set_shape(t, 4, dims, err));
        }
        net->inputs[net->num_inputs++] = b;
    }
    return MOKA_OK;
}

static void log_layer_shapes(const moka_net *net, int li)
{
    const moka_layer *l = net->layers[li];
    char buf[160];
    moka_logf(MOKA_LOG_DEBUG, "net", "Setting up %s", l->name);
    for (int i = 0; i < l->num_top; i++) {
        moka_logf(MOKA_LOG_DEBUG, "net", "Top shape: %s",
                  moka_tensor_shape_str(l->top[i], buf, sizeof buf));
        if (l->loss_weight[i] != 0.0f)
            moka_logf(MOKA_LOG_DEBUG, "net", "    with loss weight %g", l->loss_weight[i]);
    }
}

static moka_status setup_layer(moka_net *net, int li, moka_err *err)
{
    moka_layer *l = net->layers[li];
    const int nlw = moka_pt_count(l->cfg, "loss_weight");
    if (nlw != 0 && nlw != l->num_top)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->cfg, "loss_weight", 0),
                            "layer '%s': loss_weight must be given once per top (%d), got %d",
                            l->name, l->num_top, nlw);
    for (int i = 0; i < l->num_top; i++)
        l->loss_weight[i] = nlw ? (float)moka_pt_float_at(l->cfg, "loss_weight", i)
                                : (i == 0 && l->ops->is_loss ? 1.0f : 0.0f);
    MOKA_TRY(check_param_fields(l, err));
    MOKA_TRY(l->ops->setup(l, err));
    MOKA_TRY(l->ops->reshape(l, err));
    /* param { } entries: lr_mult, decay_mult, shared names. */
    const int np = moka_pt_count(l->cfg, "param");
    if (np > l->num_weight)
        return moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(l->cfg, "param", l->num_weight),
                            "layer '%s' (%s) has %d parameter blob(s) but %d param entries",
                            l->name, l->ops->type, l->num_weight, np);
    for (int j = 0; j < np; j++) {
        const moka_pt_node *ps = moka_pt_msg_at(l->cfg, "param", j);
        moka_weight_info *wi = &l->weight_info[j];
        if (moka_pt_has(ps, "lr_mult")) wi->lr_mult = (float)moka_pt_float(ps, "lr_mult");
        if (moka_pt_has(ps, "decay_mult")) wi->decay_mult = (float)moka_pt_float(ps, "decay_mult");
        if (!wi->fill.learnable && wi->lr_mult != 0.0f)
            return moka_pt_errf(err, MOKA_ERR_CONFIG, ps,
                                "layer '%s': blob %d (%s) holds running statistics and cannot "
                                "have lr_mult %g",
                                l->name, j, wi->name, wi->lr_mult);
        const char *nm = moka_pt_str(ps, "name");
        if (nm[0]) {
            wi->share_name = dup_str(nm);
            if (!wi->share_name) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        }
    }
    return MOKA_OK;
}

/* Resolves param { name } sharing: a later use aliases the first owner of the name. */
static moka_status resolve_sharing(moka_net *net, moka_err *err)
{
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        for (int j = 0; j < l->num_weight; j++) {
            moka_weight_info *wi = &l->weight_info[j];
            if (!wi->share_name) continue;
            for (int lk = 0; lk < li && wi->owner_layer < 0; lk++) {
                moka_layer *o = net->layers[lk];
                for (int k = 0; k < o->num_weight; k++) {
                    const moka_weight_info *ow = &o->weight_info[k];
                    if (!ow->share_name || ow->owner_layer >= 0 ||
                        strcmp(ow->share_name, wi->share_name) != 0)
                        continue;
                    if (moka_tensor_count(o->weight[k]) != moka_tensor_count(l->weight[j]) ||
                        ow->ndim != wi->ndim ||
                        memcmp(ow->shape, wi->shape, (size_t)wi->ndim * sizeof(int64_t)) != 0) {
                        char a[128], b[128];
                        return moka_pt_errf(
                            err, MOKA_ERR_SHAPE, moka_pt_node_at(l->cfg, "param", j),
                            "layer '%s': shared parameter '%s' has shape %s here but "
                            "%s in layer '%s'",
                            l->name, wi->share_name,
                            moka_tensor_shape_str(l->weight[j], a, sizeof a),
                            moka_tensor_shape_str(o->weight[k], b, sizeof b), o->name);
                    }
                    if (moka_pt_has(moka_pt_msg_at(l->cfg, "param", j), "lr_mult") &&
                        wi->lr_mult != ow->lr_mult)
                        return moka_pt_errf(
                            err, MOKA_ERR_CONFIG, moka_pt_node_at(l->cfg, "param", j),
                            "layer '%s': shared parameter '%s' has lr_mult %g here "
                            "but %g in layer '%s'",
                            l->name, wi->share_name, wi->lr_mult, ow->lr_mult, o->name);
                    wi->owner_layer = lk;
                    wi->owner_index = k;
                    wi->lr_mult = ow->lr_mult;
                    wi->decay_mult = ow->decay_mult;
                    break;
                }
            }
        }
    }
    return MOKA_OK;
}

/* Which blobs need gradients and which layers run backward (Caffe's Net::Init logic). */
static void plan_backward(moka_net *net, bool force_backward)
{
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        bool need = false;
        for (int j = 0; j < l->num_weight; j++) {
            const moka_weight_info *wi = &l->weight_info[j];
            if (wi->fill.learnable && wi->lr_mult != 0.0f) need = true;
        }
        for (int i = 0; i < l->num_bottom; i++) {
            const bool pd = i >= moka_pt_count(l->cfg, "propagate_down") ||
                            moka_pt_int_at(l->cfg, "propagate_down", i) != 0;
            const bool blob_needs = net->blobs[net->bottom_ids[li][i]]->need_grad;
            const bool forced =
                force_backward && l->ops->backward_cpu &&
                !(l->ops->is_loss && i == 1 && strcmp(l->ops->type, "EuclideanLoss") != 0);
            l->propagate_down[i] = pd && l->ops->backward_cpu && (blob_needs || forced);
            need = need || l->propagate_down[i];
        }
        net->need_backward[li] = need && l->ops->backward_cpu;
        for (int i = 0; i < l->num_top; i++)
            net->blobs[net->top_ids[li][i]]->need_grad = net->need_backward[li];
    }
    /* From the losses down: a layer none of whose tops reaches a loss needs no backward. */
    for (int li = net->num_layers - 1; li >= 0; li--) {
        moka_layer *l = net->layers[li];
        bool under = false;
        for (int i = 0; i < l->num_top; i++) {
            net_blob *t = net->blobs[net->top_ids[li][i]];
            if (l->loss_weight[i] != 0.0f) t->under_loss = true;
            under = under || t->under_loss;
        }
        if (!under && !force_backward) {
            net->need_backward[li] = false;
            for (int i = 0; i < l->num_bottom; i++) l->propagate_down[i] = false;
        }
        if (net->need_backward[li])
            for (int i = 0; i < l->num_bottom; i++)
                if (l->propagate_down[i]) net->blobs[net->bottom_ids[li][i]]->under_loss = true;
        if (!net->need_backward[li])
            for (int j = 0; j < l->num_weight; j++) l->weight[j]->grad = NULL;
    }
}

static moka_status allocate_activations(moka_net *net, moka_err *err)
{
    int64_t ndata = 0, ngrad = 0;
    for (int b = 0; b < net->num_blobs; b++) {
        const int64_t n = moka_tensor_count(&net->blobs[b]->t);
        if (net->blobs[b]->alias_of < 0) ndata += n;
        ngrad += n;
    }
    free(net->act_data);
    free(net->act_grad);
    net->act_data = calloc((size_t)(ndata ? ndata : 1), sizeof(float));
    net->act_grad = calloc((size_t)(ngrad ? ngrad : 1), sizeof(float));
    if (!net->act_data || !net->act_grad)
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for activations (%lld floats)",
                         (long long)(ndata + ngrad));
    int64_t od = 0, og = 0;
    for (int b = 0; b < net->num_blobs; b++) {
        net_blob *bl = net->blobs[b];
        const int64_t n = moka_tensor_count(&bl->t);
        if (bl->alias_of < 0) {
            bl->t.data = net->act_data + od;
            od += n;
        } else {
            bl->t.data = net->blobs[bl->alias_of]->t.data;
        }
        bl->t.grad = net->act_grad + og;
        og += n;
        /* Reshaping reallocates the layers' buffers: nothing is held any more. */
        bl->hdata = bl->hgrad = (moka_held){.layout = MOKA_LAYOUT_PLAIN};
        bl->t.held_data = &net->blobs[bl->alias_of < 0 ? b : bl->alias_of]->hdata;
        bl->t.held_grad = &bl->hgrad;
    }
    moka_logf(MOKA_LOG_DEBUG, "net", "Memory required for data: %lld",
              (long long)(ndata * (int64_t)sizeof(float)));
    return MOKA_OK;
}

static moka_status allocate_params(moka_net *net, const moka_net *share_from, moka_err *err)
{
    /* Count owned blobs; blobs aliased from share_from are not part of this net's block. */
    int nparams = 0;
    int64_t total = 0;
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        const int so = share_from ? -1 : -2;
        int src = so;
        if (share_from)
            for (int k = 0; k < share_from->num_layers; k++)
                if (strcmp(share_from->layers[k]->name, l->name) == 0) src = k;
        for (int j = 0; j < l->num_weight; j++) {
            if (l->weight_info[j].owner_layer >= 0) continue;
            if (src >= 0) {
                const moka_layer *o = share_from->layers[src];
                if (j < o->num_weight) {
                    const moka_tensor *ow = o->weight[j];
                    if (ow->ndim != l->weight[j]->ndim ||
                        memcmp(ow->shape, l->weight[j]->shape,
                               (size_t)ow->ndim * sizeof(int64_t)) != 0) {
                        char a[128], b[128];
                        return moka_layer_errf(l, err, MOKA_ERR_SHAPE,
                                               "blob %d has shape %s but %s in the train net", j,
                                               moka_tensor_shape_str(l->weight[j], a, sizeof a),
                                               moka_tensor_shape_str(ow, b, sizeof b));
                    }
                    l->weight[j]->data = ow->data;
                    l->weight[j]->grad = NULL;
                    l->weight_info[j].owner_layer = -3; /* lives in share_from */
                    continue;
                }
            }
            nparams++;
            total += moka_tensor_count(l->weight[j]);
        }
    }
    net->params = calloc((size_t)(nparams ? nparams : 1), sizeof *net->params);
    net->param_data = calloc((size_t)(total ? total : 1), sizeof(float));
    net->param_grad = calloc((size_t)(total ? total : 1), sizeof(float));
    if (!net->params || !net->param_data || !net->param_grad)
        return moka_errf(err, MOKA_ERR_NOMEM, "out of memory for %lld parameters",
                         (long long)total);
    net->param_count = total;
    int64_t off = 0;
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        for (int j = 0; j < l->num_weight; j++) {
            moka_weight_info *wi = &l->weight_info[j];
            if (wi->owner_layer != -1) continue;
            moka_tensor *w = l->weight[j];
            const int64_t n = moka_tensor_count(w);
            w->data = net->param_data + off;
            w->grad = wi->fill.learnable ? net->param_grad + off : NULL;
            net->params[net->num_params++] =
                (moka_net_param){li, j, off, n, wi->lr_mult, wi->decay_mult, wi->fill.learnable};
            moka_rng rng;
            moka_rng_seed(&rng, net->ctx->seed, moka_rng_hash(l->name) * 31 + (uint64_t)j);
            if (wi->fill.filler) {
                MOKA_TRY(moka_filler_fill(wi->fill.filler, w, &rng, err));
            } else {
                for (int64_t i = 0; i < n; i++) w->data[i] = wi->fill.value;
            }
            off += n;
        }
    }
    /* Shared uses point at their owner's memory. */
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        for (int j = 0; j < l->num_weight; j++) {
            const moka_weight_info *wi = &l->weight_info[j];
            if (wi->owner_layer < 0) continue;
            const moka_tensor *o = net->layers[wi->owner_layer]->weight[wi->owner_index];
            l->weight[j]->data = o->data;
            l->weight[j]->grad = o->grad;
        }
    }
    return MOKA_OK;
}

static int cmp_output(const void *a, const void *b, void *net_)
{
    const moka_net *net = net_;
    return strcmp(net->blobs[*(const int *)a]->name, net->blobs[*(const int *)b]->name);
}

static void sort_outputs(moka_net *net)
{
    /* Caffe lists outputs from a std::set of names: sorted by name. */
    for (int i = 1; i < net->num_outputs; i++)
        for (int j = i; j > 0 && cmp_output(&net->outputs[j - 1], &net->outputs[j], net) > 0; j--) {
            const int t = net->outputs[j];
            net->outputs[j] = net->outputs[j - 1];
            net->outputs[j - 1] = t;
        }
}

moka_status moka_net_create_from_node(const moka_pt_node *np, const moka_net_state *state_in,
                                      const moka_ctx *ctx, const moka_net *share_from,
                                      moka_net **out, moka_err *err)
{
    *out = NULL;
    MOKA_TRY(moka_ctx_check_precision(ctx, err));
    moka_net_state st = state_in ? *state_in : (moka_net_state){MOKA_TRAIN, 0, 0, NULL};
    /* The file's own `state { level stage }` adds to the caller's, as Caffe's MergeFrom. */
    const moka_pt_node *fs = moka_pt_msg(np, "state");
    const char *stages[64];
    int nst = 0;
    for (int i = 0; i < st.num_stages && nst < 64; i++) stages[nst++] = st.stages[i];
    for (int i = 0; i < moka_pt_count(fs, "stage") && nst < 64; i++)
        stages[nst++] = moka_pt_str_at(fs, "stage", i);
    if (moka_pt_has(fs, "level") && !(state_in && state_in->level))
        st.level = (int)moka_pt_int(fs, "level");
    st.stages = stages;
    st.num_stages = nst;

    moka_net *net = calloc(1, sizeof *net);
    if (!net) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    net->ctx = ctx;
    net->phase = st.phase;
    net->name = dup_str(moka_pt_str(np, "name"));
    moka_status s = MOKA_OK;
    plan pl = {0};
    const moka_pt_node **kept = NULL;
    int nkept = 0;
    if (!net->name) {
        s = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s = add_legacy_inputs(net, np, err);
    if (s) goto fail;

    /* 1. Filter. */
    const int nl = moka_pt_count(np, "layer");
    kept = calloc((size_t)nl + 1, sizeof *kept);
    if (!kept) {
        s = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < nl; i++) {
        const moka_pt_node *ln = moka_pt_msg_at(np, "layer", i);
        bool inc = false;
        s = layer_included(ln, &st, &inc, err);
        if (s) goto fail;
        if (inc) kept[nkept++] = ln;
    }

    /* 2. Plan blob versions and count consumers. */
    for (int i = 0; i < net->num_inputs; i++)
        plan_add(&pl, net->blobs[net->inputs[i]]->name, NULL, i);
    int *consumed_version = NULL; /* per (layer, bottom): filled below */
    int total_bottoms = 0;
    for (int i = 0; i < nkept; i++) total_bottoms += moka_pt_count(kept[i], "bottom");
    consumed_version = calloc((size_t)total_bottoms + 1, sizeof(int));
    if (!consumed_version) {
        s = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0, bi = 0; i < nkept; i++) {
        const moka_pt_node *ln = kept[i];
        for (int j = 0; j < moka_pt_count(ln, "bottom"); j++, bi++) {
            const char *bn = moka_pt_str_at(ln, "bottom", j);
            const int v = plan_find(&pl, bn);
            if (v < 0) {
                s = moka_pt_errf(err, MOKA_ERR_CONFIG, moka_pt_node_at(ln, "bottom", j),
                                 "layer '%s': unknown bottom blob '%s' (no earlier layer "
                                 "produces it in this phase)",
                                 moka_pt_str(ln, "name"), bn);
                free(consumed_version);
                goto fail;
            }
            consumed_version[bi] = v;
            pl.v[v].consumers++;
        }
        for (int j = 0; j < moka_pt_count(ln, "top"); j++)
            if (plan_add(&pl, moka_pt_str_at(ln, "top", j), moka_pt_str(ln, "name"), j) < 0) {
                s = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
                free(consumed_version);
                goto fail;
            }
    }

    /* 3. Create, wire and set up layers, inserting splits. Versions are re-walked in the same
     * order, so plan index == creation order of blob versions (inputs first). */
    int version = 0;
    const char *bnames[64], *tnames[64];
    char split_names[64][512];
    /* Net inputs: versions [0, num_inputs). A multi-consumer input gets a split first. */
    for (int vi = 0; vi < net->num_inputs; vi++, version++) {
        plan_version *pv = &pl.v[version];
        if (pv->consumers > 1) {
            moka_layer *sl;
            s = make_split(net, pv->name, "input", vi, pv->consumers, &sl, err);
            if (s) goto fail_cv;
            s = push_layer(net, sl, err);
            if (s) {
                moka_layer_free(sl);
                goto fail_cv;
            }
            pv->split_index = net->num_layers - 1;
            bnames[0] = pv->name;
            for (int k = 0; k < pv->consumers; k++) tnames[k] = moka_pt_str_at(sl->cfg, "top", k);
            s = wire_layer(net, net->num_layers - 1, bnames, tnames, err);
            if (s) goto fail_cv;
            s = setup_layer(net, net->num_layers - 1, err);
            if (s) goto fail_cv;
        }
    }
    for (int i = 0, bi = 0; i < nkept; i++) {
        const moka_pt_node *ln = kept[i];
        moka_layer *l;
        s = moka_layer_create(ln, ctx, st.phase, net->num_layers, &l, err);
        if (s) goto fail_cv;
        s = push_layer(net, l, err);
        if (s) {
            moka_layer_free(l);
            goto fail_cv;
        }
        const int li = net->num_layers - 1;
        if (l->num_bottom > 64 || l->num_top > 64) {
            s = moka_layer_errf(l, err, MOKA_ERR_UNSUPPORTED, "more than 64 bottoms or tops");
            goto fail_cv;
        }
        for (int j = 0; j < l->num_bottom; j++, bi++) {
            plan_version *pv = &pl.v[consumed_version[bi]];
            if (pv->split_index >= 0) {
                /* Consumers take the split's tops in order. */
                snprintf(
                    split_names[j], sizeof split_names[j], "%s",
                    moka_pt_str_at(net->layers[pv->split_index]->cfg, "top", pv->next_consumer++));
                bnames[j] = split_names[j];
            } else {
                bnames[j] = moka_pt_str_at(ln, "bottom", j);
            }
        }
        for (int j = 0; j < l->num_top; j++) {
            tnames[j] = moka_pt_str_at(ln, "top", j);
            /* In place on a split top: keep the split top's name for the data alias. */
            for (int k = 0; k < l->num_bottom; k++)
                if (strcmp(tnames[j], moka_pt_str_at(ln, "bottom", k)) == 0 &&
                    bnames[k] != tnames[j])
                    tnames[j] = bnames[k];
        }
        s = wire_layer(net, li, bnames, tnames, err);
        if (s) goto fail_cv;
        /* Tops renamed to a split top still answer to their config name. */
        for (int j = 0; j < l->num_top; j++) {
            net_blob *b = net->blobs[net->top_ids[li][j]];
            const char *want = moka_pt_str_at(ln, "top", j);
            if (strcmp(b->name, want) != 0) {
                char *nn = dup_str(want);
                if (!nn) {
                    s = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
                    goto fail_cv;
                }
                free(b->name);
                b->name = nn;
            }
        }
        s = setup_layer(net, li, err);
        if (s) goto fail_cv;
        log_layer_shapes(net, li);
        for (int j = 0; j < l->num_top; j++, version++) {
            plan_version *pv = &pl.v[version];
            if (pv->consumers > 1) {
                moka_layer *sl;
                s = make_split(net, pv->name, l->name, j, pv->consumers, &sl, err);
                if (s) goto fail_cv;
                s = push_layer(net, sl, err);
                if (s) {
                    moka_layer_free(sl);
                    goto fail_cv;
                }
                pv->split_index = net->num_layers - 1;
                const char *sb[1] = {pv->name};
                const char *stn[64];
                for (int k = 0; k < pv->consumers && k < 64; k++)
                    stn[k] = moka_pt_str_at(sl->cfg, "top", k);
                s = wire_layer(net, net->num_layers - 1, sb, stn, err);
                if (s) goto fail_cv;
                s = setup_layer(net, net->num_layers - 1, err);
                if (s) goto fail_cv;
            }
        }
    }
    free(consumed_version);
    consumed_version = NULL;

    /* Outputs: latest versions nobody consumes. */
    net->outputs = calloc((size_t)net->num_blobs + 1, sizeof(int));
    net->need_backward = calloc((size_t)net->num_layers + 1, sizeof(bool));
    net->fwd_ms = calloc((size_t)net->num_layers + 1, sizeof(double));
    net->bwd_ms = calloc((size_t)net->num_layers + 1, sizeof(double));
    if (!net->outputs || !net->need_backward || !net->fwd_ms || !net->bwd_ms) {
        s = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int b = 0; b < net->num_blobs; b++) {
        bool consumed = false, superseded = false;
        for (int li = 0; li < net->num_layers && !consumed; li++)
            for (int i = 0; i < net->layers[li]->num_bottom; i++)
                if (net->bottom_ids[li][i] == b) consumed = true;
        for (int c = b + 1; c < net->num_blobs; c++)
            if (net->blobs[c]->alias_of == b) superseded = true;
        if (!consumed && !superseded) net->outputs[net->num_outputs++] = b;
    }
    sort_outputs(net);
    /* Input layers' tops are inputs too. */
    for (int li = 0; li < net->num_layers; li++)
        if (strcmp(net->layers[li]->ops->type, "Input") == 0)
            for (int i = 0; i < net->layers[li]->num_top; i++) {
                int *in = realloc(net->inputs, (size_t)(net->num_inputs + 1) * sizeof(int));
                if (!in) {
                    s = moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                net->inputs = in;
                net->inputs[net->num_inputs++] = net->top_ids[li][i];
            }

    s = resolve_sharing(net, err);
    if (s) goto fail;
    plan_backward(net, moka_pt_bool(np, "force_backward"));
    s = allocate_params(net, share_from, err);
    if (s) goto fail;
    /* plan_backward cleared weight grads of layers without backward; allocation set them
     * again: clear once more so layers skip work nobody uses. */
    for (int li = 0; li < net->num_layers; li++)
        if (!net->need_backward[li])
            for (int j = 0; j < net->layers[li]->num_weight; j++)
                net->layers[li]->weight[j]->grad = NULL;
    s = allocate_activations(net, err);
    if (s) goto fail;
    /* Second reshape: now every buffer exists, layers may size private buffers for real. */
    for (int li = 0; li < net->num_layers; li++) {
        s = net->layers[li]->ops->reshape(net->layers[li], err);
        if (s) goto fail;
    }
    for (int i = 0; i < net->num_outputs; i++)
        moka_logf(MOKA_LOG_DEBUG, "net", "This network produces output %s",
                  net->blobs[net->outputs[i]]->name);
    moka_logf(MOKA_LOG_DEBUG, "net", "Network initialization done.");
    free(pl.v);
    free(kept);
    *out = net;
    return MOKA_OK;
fail_cv:
    free(consumed_version);
fail:
    free(pl.v);
    free(kept);
    moka_net_free(net);
    return s;
}

moka_status moka_net_create_from_text(const char *text, const char *name,
                                      const moka_net_state *state, const moka_ctx *ctx,
                                      moka_net **out, moka_err *err)
{
    moka_pt_doc *doc;
    *out = NULL;
    MOKA_TRY(moka_pt_parse(text, (int64_t)strlen(text), name, &caffe__net_parameter__descriptor,
                           &doc, err));
    const moka_status s = moka_net_create_from_node(moka_pt_root(doc), state, ctx, NULL, out, err);
    if (s) {
        moka_pt_doc_free(doc);
        return s;
    }
    (*out)->doc = doc;
    return MOKA_OK;
}

moka_status moka_net_create_from_file(const char *path, const moka_net_state *state,
                                      const moka_ctx *ctx, moka_net **out, moka_err *err)
{
    moka_pt_doc *doc;
    *out = NULL;
    MOKA_TRY(moka_pt_parse_file(path, &caffe__net_parameter__descriptor, &doc, err));
    const moka_status s = moka_net_create_from_node(moka_pt_root(doc), state, ctx, NULL, out, err);
    if (s) {
        moka_pt_doc_free(doc);
        return s;
    }
    (*out)->doc = doc;
    return MOKA_OK;
}

void moka_net_free(moka_net *net)
{
    if (!net) return;
    for (int i = 0; i < net->num_layers; i++) {
        moka_layer_free(net->layers[i]);
        free(net->bottom_ids[i]);
        free(net->top_ids[i]);
    }
    free(net->layers);
    free(net->bottom_ids);
    free(net->top_ids);
    for (int b = 0; b < net->num_blobs; b++) {
        free(net->blobs[b]->name);
        free(net->blobs[b]);
    }
    free(net->blobs);
    for (int i = 0; i < net->num_aux; i++) moka_pt_doc_free(net->aux_docs[i]);
    free(net->aux_docs);
    free(net->outputs);
    free(net->inputs);
    free(net->need_backward);
    free(net->params);
    free(net->param_data);
    free(net->param_grad);
    free(net->act_data);
    free(net->act_grad);
    free(net->fwd_ms);
    free(net->bwd_ms);
    free(net->name);
    moka_pt_doc_free(net->doc);
    free(net);
}

moka_status moka_net_check_file(const char *path, moka_err *err)
{
    moka_pt_doc *doc;
    MOKA_TRY(moka_pt_parse_file(path, &caffe__net_parameter__descriptor, &doc, err));
    const moka_pt_node *np = moka_pt_root(doc);
    moka_ctx ctx;
    moka_ctx_init(&ctx);
    moka_status s = MOKA_OK;
    for (int i = 0; i < moka_pt_count(np, "layer") && s == MOKA_OK; i++) {
        moka_layer *l;
        s = moka_layer_create(moka_pt_msg_at(np, "layer", i), &ctx, MOKA_TRAIN, i, &l, err);
        if (s == MOKA_OK) s = check_param_fields(l, err);
        moka_layer_free(l);
    }
    moka_pt_doc_free(doc);
    return s;
}

/* ---- running ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Held copies (src/core/layout.h) before a layer's forward: bottoms plain unless the layer
 * reads held data, tops plain unless the layer works in place on held data. */
static void prepare_forward(moka_layer *l)
{
    const bool reads = l->ops->reads_held;
    if (!reads)
        for (int i = 0; i < l->num_bottom; i++) moka_tensor_sync(l->bottom[i], false);
    for (int i = 0; i < l->num_top; i++) {
        bool in_place = false;
        for (int j = 0; j < l->num_bottom; j++) in_place |= l->top[i]->data == l->bottom[j]->data;
        if (!(reads && in_place)) moka_held_drop(l->top[i], false);
    }
}

/* Before a layer's backward: what it reads plain, unless it reads held copies itself. */
static void prepare_backward(moka_layer *l)
{
    if (l->ops->reads_held) {
        /* A top gradient nobody wrote (held or plain) is still pending: zero it. */
        for (int i = 0; i < l->num_top; i++)
            if (!moka_held_get(l->top[i], true)) moka_tensor_sync(l->top[i], true);
        return;
    }
    for (int i = 0; i < l->num_top; i++) {
        moka_tensor_sync(l->top[i], true);
        moka_tensor_sync(l->top[i], false);
    }
    for (int i = 0; i < l->num_bottom; i++) moka_tensor_sync(l->bottom[i], false);
}

/* A blob handed to the caller: plain, and nothing held (the caller may write it). */
static moka_tensor *hand_out(net_blob *b)
{
    moka_tensor *t = &b->t;
    moka_tensor_sync(t, false);
    moka_tensor_sync(t, true);
    moka_held_drop(t, false);
    moka_held_drop(t, true);
    return t;
}

moka_status moka_net_forward(moka_net *net, float *loss, moka_err *err)
{
    double total = 0;
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        const double t0 = net->timing ? now_ms() : 0;
        prepare_forward(l);
        MOKA_TRY(l->ops->forward_cpu(l, err));
        if (net->timing) net->fwd_ms[li] = now_ms() - t0;
        for (int i = 0; i < l->num_top; i++) {
            if (l->loss_weight[i] == 0.0f) continue;
            const moka_tensor *t = l->top[i];
            double s = 0;
            for (int64_t k = 0; k < moka_tensor_count(t); k++) s += t->data[k];
            total += (double)l->loss_weight[i] * s;
        }
    }
    if (loss) *loss = (float)total;
    return MOKA_OK;
}

moka_status moka_net_backward(moka_net *net, moka_err *err)
{
    /* The activation gradients start at zero: each one's zeroing is left pending until someone
     * uses the plain buffer, and skipped when its writer writes it whole (src/core/layout.h). */
    for (int b = 0; b < net->num_blobs; b++) {
        net_blob *bl = net->blobs[b];
        moka_held_drop(&bl->t, true);
        bl->hgrad.zero_pending = true;
    }
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        for (int i = 0; i < l->num_top; i++) {
            if (l->loss_weight[i] == 0.0f) continue;
            moka_tensor *t = l->top[i];
            for (int64_t k = 0; k < moka_tensor_count(t); k++) t->grad[k] = l->loss_weight[i];
            t->held_grad->zero_pending = false;
        }
    }
    /* The parameter block is laid out in owner-layer order, and a blob's gradient is final once
     * backward has passed its owner (sharers come later in the net, so they run before it):
     * after layer li, the suffix from the first parameter owned by a layer >= li is final. */
    int p = net->num_params;
    int64_t final_lo = net->param_count;
    for (int li = net->num_layers - 1; li >= 0; li--) {
        if (net->need_backward[li]) {
            moka_layer *l = net->layers[li];
            const double t0 = net->timing ? now_ms() : 0;
            prepare_backward(l);
            MOKA_TRY(l->ops->backward_cpu(l, err));
            if (net->timing) net->bwd_ms[li] = now_ms() - t0;
        }
        if (!net->on_final) continue;
        while (p > 0 && net->params[p - 1].layer >= li) p--;
        const int64_t lo = p < net->num_params ? net->params[p].offset : net->param_count;
        if (lo < final_lo) {
            final_lo = lo;
            net->on_final(net->on_final_user, lo);
        }
    }
    if (net->on_final && final_lo > 0) net->on_final(net->on_final_user, 0);
    return MOKA_OK;
}

void moka_net_set_grads_final_hook(moka_net *net, moka_net_grads_final_fn fn, void *user)
{
    net->on_final = fn;
    net->on_final_user = user;
}

void moka_net_zero_param_grads(moka_net *net)
{
    float *g = net->param_grad;
    const int64_t n = net->param_count;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) g[i] = 0.0f;
}

/* ---- accessors ---- */

const char *moka_net_name(const moka_net *net) { return net->name; }
int moka_net_num_layers(const moka_net *net) { return net->num_layers; }
const char *moka_net_layer_name(const moka_net *net, int i) { return net->layers[i]->name; }
const char *moka_net_layer_type(const moka_net *net, int i) { return net->layers[i]->ops->type; }
moka_layer *moka_net_layer(const moka_net *net, int i) { return net->layers[i]; }
bool moka_net_layer_needs_backward(const moka_net *net, int i) { return net->need_backward[i]; }

moka_tensor *moka_net_blob(moka_net *net, const char *name)
{
    const int b = find_blob(net, name);
    return b < 0 ? NULL : hand_out(net->blobs[b]);
}

int moka_net_num_outputs(const moka_net *net) { return net->num_outputs; }
const char *moka_net_output_name(const moka_net *net, int i)
{
    return net->blobs[net->outputs[i]]->name;
}
moka_tensor *moka_net_output(moka_net *net, int i)
{
    return hand_out(net->blobs[net->outputs[i]]);
}

float moka_net_output_loss_weight(const moka_net *net, int i)
{
    const net_blob *b = net->blobs[net->outputs[i]];
    if (b->producer < 0) return 0.0f;
    const moka_layer *l = net->layers[b->producer];
    for (int k = 0; k < l->num_top; k++)
        if (net->top_ids[b->producer][k] == net->outputs[i]) return l->loss_weight[k];
    return 0.0f;
}

int moka_net_num_inputs(const moka_net *net) { return net->num_inputs; }
moka_tensor *moka_net_input(moka_net *net, int i)
{
    return hand_out(net->blobs[net->inputs[i]]);
}

int64_t moka_net_param_count(const moka_net *net) { return net->param_count; }
float *moka_net_param_data(moka_net *net) { return net->param_data; }
float *moka_net_param_grad(moka_net *net) { return net->param_grad; }
int moka_net_num_params(const moka_net *net) { return net->num_params; }
const moka_net_param *moka_net_params(const moka_net *net) { return net->params; }

void moka_net_set_timing(moka_net *net, bool on) { net->timing = on; }
double moka_net_layer_forward_ms(const moka_net *net, int i) { return net->fwd_ms[i]; }
double moka_net_layer_backward_ms(const moka_net *net, int i) { return net->bwd_ms[i]; }

double moka_net_layer_flops(const moka_net *net, int i, bool backward)
{
    const moka_layer *l = net->layers[i];
    if (backward && !net->need_backward[i]) return 0.0;
    return l->ops->flops ? l->ops->flops(l, backward) : 0.0;
}

const char *moka_net_layer_kernel(const moka_net *net, int i)
{
    const moka_layer *l = net->layers[i];
    return l->ops->kernel ? l->ops->kernel(l) : "reference";
}

void moka_net_reseed(moka_net *net, uint64_t step)
{
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        /* The rank enters so that data-parallel ranks draw different dropout masks; rank 0
         * draws what a single process does. */
        moka_rng_seed(&l->rng, net->ctx->seed ^ (step * 0x9e3779b97f4a7c15ULL),
                      moka_rng_hash(l->name) ^ (uint64_t)l->phase ^
                          ((uint64_t)net->ctx->rank * 0xbf58476d1ce4e5b9ULL));
    }
}

moka_status moka_net_seek(moka_net *net, int64_t position, moka_err *err)
{
    for (int li = 0; li < net->num_layers; li++) {
        moka_layer *l = net->layers[li];
        if (l->ops->seek) MOKA_TRY(l->ops->seek(l, position, err));
    }
    return MOKA_OK;
}

int64_t moka_net_batch_size(const moka_net *net)
{
    if (net->num_layers == 0 || net->layers[0]->num_top == 0) return 0;
    const moka_tensor *t = net->layers[0]->top[0];
    return t->ndim > 0 ? t->shape[0] : 1;
}

/* ---- weights files ---- */

/* Layers with blobs, as the caffemodel code wants them. Split layers have none. */
static moka_status model_layers(const moka_net *net, moka_model_layer **out, int *n, moka_err *err)
{
    *out = calloc((size_t)net->num_layers + 1, sizeof **out);
    if (!*out) return moka_errf(err, MOKA_ERR_NOMEM, "out of memory");
    *n = 0;
    for (int li = 0; li < net->num_layers; li++) {
        const moka_layer *l = net->layers[li];
        if (strcmp(l->ops->type, "Split") == 0) continue;
        (*out)[(*n)++] = (moka_model_layer){l->name, l->ops->type, l->num_weight, l->weight};
    }
    return MOKA_OK;
}

moka_status moka_net_load_weights(moka_net *net, const char *path, moka_err *err)
{
    moka_caffemodel *m;
    MOKA_TRY(moka_caffemodel_read(path, &m, err));
    moka_model_layer *ml;
    int n, copied = 0;
    moka_status s = model_layers(net, &ml, &n, err);
    if (s == MOKA_OK) s = moka_caffemodel_copy_into(m, ml, n, &copied, err);
    free(ml);
    moka_caffemodel_free(m);
    if (s == MOKA_OK)
        moka_logf(MOKA_LOG_INFO, "net", "Copied weights of %d layer(s) from %s", copied, path);
    return s;
}

moka_status moka_net_save_weights(const moka_net *net, const char *path, moka_err *err)
{
    moka_model_layer *ml;
    int n;
    MOKA_TRY(model_layers(net, &ml, &n, err));
    const moka_status s = moka_caffemodel_write(path, net->name, ml, n, err);
    free(ml);
    return s;
}
