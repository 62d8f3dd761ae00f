/* tests/unit/test_net.c -- building nets as Caffe's Net::Init does, and their gradients.
 *
 * The gradient checks run the whole net: the loss from moka_net_forward is differentiated by
 * central differences with respect to inputs and parameters and compared with what
 * moka_net_backward produced, so splits, in-place layers, shared weights and loss weights are
 * checked by their effect on real gradients, not by inspecting internals alone.
 */
#include <string.h>

#include "backend/cpu/dnnl_op.h"
#include "caffe.pb-c.h"
#include "core/net_internal.h"
#include "moka/net.h"
#include "test.h"

static moka_ctx ctx;

static moka_status build(const char *text, moka_phase phase, moka_net **net, moka_err *err)
{
    moka_ctx_init(&ctx);
    ctx.threads = 1;
    moka_ctx_apply_threads(&ctx);
    const moka_net_state st = {phase, 0, 0, NULL};
    return moka_net_create_from_text(text, "net.prototxt", &st, &ctx, net, err);
}

static void fill_input(moka_net *net, const char *name, float scale)
{
    moka_tensor *t = moka_net_blob(net, name);
    for (int64_t i = 0; i < moka_tensor_count(t); i++)
        t->data[i] = scale * (float)((i * 7919 % 23) - 11) / 11.0f;
}

/* Central differences of the net loss w.r.t. x[0..n) against grad[0..n). */
static int check_net_grad(moka_net *net, float *x, const float *grad, int64_t n, double tol)
{
    moka_err err = {0};
    const double h = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        const float x0 = x[i];
        float lp, lm;
        x[i] = (float)(x0 + h);
        CHECK_OK(moka_net_forward(net, &lp, &err));
        x[i] = (float)(x0 - h);
        CHECK_OK(moka_net_forward(net, &lm, &err));
        x[i] = x0;
        const double num = ((double)lp - lm) / (2 * h);
        if (fabs(num - grad[i]) > tol * fmax(1.0, fabs(num)))
            TEST_FAIL_("element %lld: analytic %.6g numeric %.6g", (long long)i, grad[i], num);
    }
    return 0;
}

/* One blob ("x") feeding two layers gets a Split; its gradient is the sum of both paths. */
static const char *const fanout_net =
    "name: 'fan' force_backward: true\n"
    "layer { name: 'in' type: 'Input' top: 'x' top: 'y' input_param { shape { dim: 2 dim: 3 } "
    "        shape { dim: 2 dim: 4 } } }\n"
    "layer { name: 'ip1' type: 'InnerProduct' bottom: 'x' top: 'a' inner_product_param { "
    "        num_output: 4 weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: "
    "        'constant' value: 0.1 } } }\n"
    "layer { name: 'relu' type: 'ReLU' bottom: 'a' top: 'a' }\n"
    "layer { name: 'ip2' type: 'InnerProduct' bottom: 'x' top: 'b' inner_product_param { "
    "        num_output: 4 weight_filler { type: 'gaussian' std: 0.5 } } }\n"
    "layer { name: 'sum' type: 'Eltwise' bottom: 'a' bottom: 'b' bottom: 'a' top: 's' }\n"
    "layer { name: 'loss' type: 'EuclideanLoss' bottom: 's' bottom: 'y' top: 'l' "
    "        loss_weight: 2 }\n";

static int split_is_inserted_and_gradients_sum(void)
{
    moka_err err = {0};
    moka_net *net;
    CHECK_OK(build(fanout_net, MOKA_TRAIN, &net, &err));
    /* Caffe's names: <blob>_<producer>_<top index>_split. */
    bool saw_x = false, saw_a = false;
    for (int i = 0; i < moka_net_num_layers(net); i++) {
        if (strcmp(moka_net_layer_name(net, i), "x_in_0_split") == 0) saw_x = true;
        if (strcmp(moka_net_layer_name(net, i), "a_relu_0_split") == 0) saw_a = true;
    }
    CHECK(saw_x);
    CHECK(saw_a);
    fill_input(net, "x", 1.0f);
    fill_input(net, "y", 0.5f);
    float loss;
    CHECK_OK(moka_net_forward(net, &loss, &err));
    CHECK(loss > 0);
    moka_net_zero_param_grads(net);
    CHECK_OK(moka_net_backward(net, &err));
    moka_tensor *x = moka_net_blob(net, "x");
    float gx[6];
    memcpy(gx, x->grad, sizeof gx);
    /* Parameter gradients, whole block at once. */
    const int64_t np = moka_net_param_count(net);
    CHECK_EQ(np, 3 * 4 + 4 + 3 * 4 + 4);
    float *gp = malloc((size_t)np * sizeof(float));
    memcpy(gp, moka_net_param_grad(net), (size_t)np * sizeof(float));
    if (check_net_grad(net, x->data, gx, 6, 2e-3)) return 1;
    if (check_net_grad(net, moka_net_param_data(net), gp, np, 2e-3)) return 1;
    free(gp);
    moka_net_free(net);
    return 0;
}

static int loss_weight_scales_loss_and_gradient(void)
{
    moka_err err = {0};
    moka_net *a, *b;
    CHECK_OK(build(fanout_net, MOKA_TRAIN, &a, &err));
    char text[4096];
    snprintf(text, sizeof text, "%s", fanout_net);
    char *lw = strstr(text, "loss_weight: 2");
    CHECK(lw != NULL);
    lw[13] = '1';
    CHECK_OK(build(text, MOKA_TRAIN, &b, &err));
    fill_input(a, "x", 1.0f);
    fill_input(a, "y", 0.5f);
    fill_input(b, "x", 1.0f);
    fill_input(b, "y", 0.5f);
    float la, lb;
    CHECK_OK(moka_net_forward(a, &la, &err));
    CHECK_OK(moka_net_forward(b, &lb, &err));
    CHECK_NEAR(la, 2 * lb, 1e-6);
    moka_net_zero_param_grads(a);
    moka_net_zero_param_grads(b);
    CHECK_OK(moka_net_backward(a, &err));
    CHECK_OK(moka_net_backward(b, &err));
    const float *ga = moka_net_param_grad(a), *gb = moka_net_param_grad(b);
    for (int64_t i = 0; i < moka_net_param_count(a); i++) CHECK_NEAR(ga[i], 2 * gb[i], 1e-5);
    moka_net_free(a);
    moka_net_free(b);
    return 0;
}

/* param { name } shares one blob: one copy in the block, gradient is the sum of both uses. */
static int shared_parameters_alias_and_accumulate(void)
{
    moka_err err = {0};
    moka_net *net;
    CHECK_OK(build("layer { name: 'in' type: 'Input' top: 'x' top: 'y' input_param { shape { dim: 2 "
                   "dim: 3 } shape { dim: 2 dim: 3 } } }\n"
                   "layer { name: 'ip1' type: 'InnerProduct' bottom: 'x' top: 'a' param { name: "
                   "'w' } inner_product_param { num_output: 3 bias_term: false weight_filler { "
                   "type: 'gaussian' std: 0.5 } } }\n"
                   "layer { name: 'ip2' type: 'InnerProduct' bottom: 'a' top: 'b' param { name: "
                   "'w' } inner_product_param { num_output: 3 bias_term: false weight_filler { "
                   "type: 'constant' value: 7 } } }\n"
                   "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'b' bottom: 'y' top: 'l' }\n",
                   MOKA_TRAIN, &net, &err));
    CHECK_EQ(moka_net_param_count(net), 9);
    const moka_layer *l1 = moka_net_layer(net, 1), *l2 = moka_net_layer(net, 2);
    CHECK(l1->weight[0]->data == l2->weight[0]->data);
    CHECK(l1->weight[0]->data[0] != 7.0f); /* the owner's filler wins */
    fill_input(net, "x", 1.0f);
    fill_input(net, "y", 0.3f);
    float loss;
    CHECK_OK(moka_net_forward(net, &loss, &err));
    moka_net_zero_param_grads(net);
    CHECK_OK(moka_net_backward(net, &err));
    float g[9];
    memcpy(g, moka_net_param_grad(net), sizeof g);
    if (check_net_grad(net, moka_net_param_data(net), g, 9, 2e-3)) return 1;
    moka_net_free(net);
    return 0;
}

static int propagate_down_false_stops_the_gradient(void)
{
    moka_err err = {0};
    moka_net *net;
    CHECK_OK(build("force_backward: true\n"
                   "layer { name: 'in' type: 'Input' top: 'x' top: 'y' input_param { shape { dim: 2 "
                   "dim: 3 } } }\n"
                   "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'x' bottom: 'y' top: 'l' "
                   "propagate_down: true propagate_down: false }\n",
                   MOKA_TRAIN, &net, &err));
    fill_input(net, "x", 1.0f);
    fill_input(net, "y", -0.5f);
    CHECK_OK(moka_net_forward(net, NULL, &err));
    CHECK_OK(moka_net_backward(net, &err));
    const moka_tensor *x = moka_net_blob(net, "x"), *y = moka_net_blob(net, "y");
    double sx = 0, sy = 0;
    for (int i = 0; i < 6; i++) sx += fabs(x->grad[i]), sy += fabs(y->grad[i]);
    CHECK(sx > 0);
    CHECK(sy == 0);
    moka_net_free(net);
    return 0;
}

/* Layers that write their bottoms' gradients whole where the net left the zeroing pending
 * (src/core/layout.h): an im2col convolution with an input gradient, plain and held pooling,
 * oneDNN convolutions (blocked and channels-last edges), ReLU and inner products. */
static const char *const whole_net =
    "name: 'whole' force_backward: true\n"
    "layer { name: 'in' type: 'Input' top: 'x' top: 'y' input_param { shape { dim: 2 dim: 3 "
    "        dim: 12 dim: 12 } shape { dim: 2 dim: 4 } } }\n"
    "layer { name: 'c0' type: 'Convolution' bottom: 'x' top: 'c0' convolution_param { "
    "        num_output: 5 kernel_size: 3 weight_filler { type: 'gaussian' std: 0.3 } } }\n"
    "layer { name: 'p0' type: 'Pooling' bottom: 'c0' top: 'p0' pooling_param { pool: MAX "
    "        kernel_size: 2 stride: 2 } }\n"
    "layer { name: 'c1' type: 'Convolution' bottom: 'p0' top: 'c1' convolution_param { "
    "        num_output: 16 kernel_size: 3 pad: 1 weight_filler { type: 'gaussian' std: 0.3 } } }\n"
    "layer { name: 'r1' type: 'ReLU' bottom: 'c1' top: 'c1' }\n"
    "layer { name: 'p1' type: 'Pooling' bottom: 'c1' top: 'p1' pooling_param { pool: AVE "
    "        kernel_size: 3 stride: 2 } }\n"
    "layer { name: 'c2' type: 'Convolution' bottom: 'p1' top: 'c2' convolution_param { "
    "        num_output: 6 kernel_size: 1 weight_filler { type: 'gaussian' std: 0.3 } } }\n"
    "layer { name: 'ip1' type: 'InnerProduct' bottom: 'c2' top: 'ip1' inner_product_param { "
    "        num_output: 8 weight_filler { type: 'gaussian' std: 0.3 } } }\n"
    "layer { name: 'r2' type: 'ReLU' bottom: 'ip1' top: 'ip1' }\n"
    "layer { name: 'ip2' type: 'InnerProduct' bottom: 'ip1' top: 'ip2' inner_product_param { "
    "        num_output: 4 weight_filler { type: 'gaussian' std: 0.3 } } }\n"
    "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'ip2' bottom: 'y' top: 'l' }\n";

/* x and every parameter gradient of whole_net after its second backward (which must not see
 * the first one's values) against central differences; and in bf16, where the CPU has it, the
 * second backward must repeat the first bit for bit. */
static int gradients_written_whole_are_complete(void)
{
    for (int bf16 = 0; bf16 < 2; bf16++) {
        if (bf16 && !moka_dnnl_bf16_supported(NULL)) {
            printf("bf16 part skipped: no bf16 instructions on this CPU\n");
            break;
        }
        moka_err err = {0};
        moka_net *net;
        moka_ctx_init(&ctx);
        ctx.threads = 1;
        ctx.precision = bf16 ? MOKA_PRECISION_BF16 : MOKA_PRECISION_FP32;
        moka_ctx_apply_threads(&ctx);
        const moka_net_state st = {MOKA_TRAIN, 0, 0, NULL};
        CHECK_OK(moka_net_create_from_text(whole_net, "net.prototxt", &st, &ctx, &net, &err));
        /* Distinct inputs, so no max-pooling window has a tie. */
        moka_tensor *x = moka_net_blob(net, "x");
        const int64_t nx = moka_tensor_count(x), np = moka_net_param_count(net);
        for (int64_t i = 0; i < nx; i++)
            x->data[i] = (float)sin(0.37 * (double)i + 0.1 * (double)(i % 7));
        fill_input(net, "y", 0.5f);
        float *g1 = malloc((size_t)(nx + np) * sizeof(float));
        CHECK(g1);
        for (int pass = 0; pass < 2; pass++) {
            CHECK_OK(moka_net_forward(net, NULL, &err));
            moka_net_zero_param_grads(net);
            CHECK_OK(moka_net_backward(net, &err));
            x = moka_net_blob(net, "x");
            if (pass == 0) {
                memcpy(g1, x->grad, (size_t)nx * sizeof(float));
                memcpy(g1 + nx, moka_net_param_grad(net), (size_t)np * sizeof(float));
            }
        }
        float *g2 = malloc((size_t)(nx + np) * sizeof(float));
        CHECK(g2);
        memcpy(g2, x->grad, (size_t)nx * sizeof(float));
        memcpy(g2 + nx, moka_net_param_grad(net), (size_t)np * sizeof(float));
        double gsum = 0;
        for (int64_t i = 0; i < nx; i++) gsum += fabs(g2[i]);
        CHECK(gsum > 0);
        if (bf16) {
            CHECK(memcmp(g1, g2, (size_t)(nx + np) * sizeof(float)) == 0);
        } else {
            if (check_net_grad(net, x->data, g2, nx, 5e-3)) return 1;
            if (check_net_grad(net, moka_net_param_data(net), g2 + nx, np, 5e-3)) return 1;
        }
        free(g1);
        free(g2);
        moka_net_free(net);
    }
    return 0;
}

static const char *const phased_net =
    "name: 'p' state { stage: 'filestage' }\n"
    "layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 1 dim: 2 } } }\n"
    "layer { name: 'train_only' type: 'ReLU' bottom: 'x' top: 't' include { phase: TRAIN } }\n"
    "layer { name: 'test_only' type: 'ReLU' bottom: 'x' top: 'u' include { phase: TEST } }\n"
    "layer { name: 'not_deploy' type: 'ReLU' bottom: 'x' top: 'v' exclude { stage: 'deploy' } }\n"
    "layer { name: 'leveled' type: 'ReLU' bottom: 'x' top: 'w' include { min_level: 2 } }\n"
    "layer { name: 'filestaged' type: 'ReLU' bottom: 'x' top: 'z' include { stage: 'filestage' } }\n";

static bool has_layer(const moka_net *net, const char *name)
{
    for (int i = 0; i < moka_net_num_layers(net); i++)
        if (strcmp(moka_net_layer_name(net, i), name) == 0) return true;
    return false;
}

static int phase_level_and_stage_rules_filter_layers(void)
{
    moka_err err = {0};
    moka_net *net;
    CHECK_OK(build(phased_net, MOKA_TRAIN, &net, &err));
    CHECK(has_layer(net, "train_only") && !has_layer(net, "test_only"));
    CHECK(has_layer(net, "not_deploy") && !has_layer(net, "leveled") && has_layer(net, "filestaged"));
    moka_net_free(net);
    CHECK_OK(build(phased_net, MOKA_TEST, &net, &err));
    CHECK(!has_layer(net, "train_only") && has_layer(net, "test_only"));
    moka_net_free(net);
    const char *stages[] = {"deploy"};
    const moka_net_state st = {MOKA_TEST, 3, 1, stages};
    CHECK_OK(moka_net_create_from_text(phased_net, "p", &st, &ctx, &net, &err));
    CHECK(!has_layer(net, "not_deploy") && has_layer(net, "leveled"));
    /* Outputs are the unconsumed blobs in name order, as Caffe lists them. */
    CHECK_EQ(moka_net_num_outputs(net), 3);
    CHECK(strcmp(moka_net_output_name(net, 0), "u") == 0);
    CHECK(strcmp(moka_net_output_name(net, 1), "w") == 0);
    CHECK(strcmp(moka_net_output_name(net, 2), "z") == 0);
    moka_net_free(net);
    return 0;
}

static int test_net_shares_train_weights(void)
{
    moka_err err = {0};
    moka_net *train, *test;
    CHECK_OK(build(fanout_net, MOKA_TRAIN, &train, &err));
    moka_pt_doc *doc;
    CHECK_OK(moka_pt_parse(fanout_net, (int64_t)strlen(fanout_net), "fan", &caffe__net_parameter__descriptor, &doc, &err));
    const moka_net_state st = {MOKA_TEST, 0, 0, NULL};
    CHECK_OK(moka_net_create_from_node(moka_pt_root(doc), &st, &ctx, train, &test, &err));
    CHECK_EQ(moka_net_param_count(test), 0);
    CHECK(moka_net_layer(test, 2)->weight[0]->data == moka_net_layer(train, 2)->weight[0]->data);
    moka_net_free(test);
    moka_net_free(train);
    moka_pt_doc_free(doc);
    return 0;
}

static int parameters_are_one_contiguous_block(void)
{
    moka_err err = {0};
    moka_net *net;
    CHECK_OK(build(fanout_net, MOKA_TRAIN, &net, &err));
    const float *base = moka_net_param_data(net), *gbase = moka_net_param_grad(net);
    int64_t seen = 0;
    for (int i = 0; i < moka_net_num_layers(net); i++) {
        const moka_layer *l = moka_net_layer(net, i);
        for (int j = 0; j < l->num_weight; j++) {
            CHECK(l->weight[j]->data >= base && l->weight[j]->data < base + moka_net_param_count(net));
            CHECK(l->weight[j]->grad - gbase == l->weight[j]->data - base);
            seen += moka_tensor_count(l->weight[j]);
        }
    }
    CHECK_EQ(seen, moka_net_param_count(net));
    moka_net_free(net);
    return 0;
}

typedef struct bad_net {
    const char *text;
    moka_status code;
    const char *msg;
} bad_net;

static int bad_nets_give_one_clear_error(void)
{
    static const bad_net cases[] = {
        {"layer { name: 'a' type: 'ReLU' bottom: 'nope' top: 'b' }", MOKA_ERR_CONFIG,
         "net.prototxt:1:32: layer 'a': unknown bottom blob 'nope'"},
        {"layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 1 } } }\n"
         "layer { name: 'in2' type: 'Input' top: 'x' input_param { shape { dim: 1 } } }",
         MOKA_ERR_CONFIG, "top blob 'x' is produced by multiple sources"},
        {"layer { name: 'c' type: 'Convolutionn' }", MOKA_ERR_CONFIG,
         "unknown layer type 'Convolutionn' (known: AbsVal, Accuracy"},
        {"layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 1 } } }\n"
         "layer { name: 'r' type: 'ReLU' bottom: 'x' top: 'y' convolution_param { num_output: 1 } }",
         MOKA_ERR_CONFIG, "net.prototxt:2:53: layer 'r' (ReLU) does not read convolution_param"},
        {"layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 1 dim: 2 } } }\n"
         "layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'y' param { lr_mult: 1 } param "
         "{ lr_mult: 2 } param { lr_mult: 3 } inner_product_param { num_output: 1 } }",
         MOKA_ERR_CONFIG, "layer 'ip' (InnerProduct) has 2 parameter blob(s) but 3 param entries"},
        {"layer { name: 'in' type: 'Input' top: 'x' include { phase: TRAIN } exclude { phase: TEST } "
         "input_param { shape { dim: 1 } } }",
         MOKA_ERR_CONFIG, "has both include and exclude rules"},
        {"layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 2 dim: 3 } } }\n"
         "layer { name: 's' type: 'Flatten' bottom: 'x' top: 'x' }",
         MOKA_ERR_CONFIG, "layer 's' (Flatten) cannot compute 'x' in place"},
        {"layer { name: 'in' type: 'Input' top: 'x' top: 'y' input_param { shape { dim: 2 dim: 3 } "
         "shape { dim: 2 dim: 4 } } }\n"
         "layer { name: 'cat' type: 'Concat' bottom: 'x' bottom: 'y' top: 'z' concat_param { axis: 0 } }",
         MOKA_ERR_SHAPE, "layer 'cat' (Concat)"},
        {"layer { name: 'in' type: 'Input' top: 'x' input_param { shape { dim: 2 dim: 3 } } }\n"
         "layer { name: 'l' type: 'EuclideanLoss' bottom: 'x' bottom: 'x' top: 'y' loss_weight: 1 "
         "loss_weight: 2 }",
         MOKA_ERR_CONFIG, "loss_weight must be given once per top (1), got 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        moka_err err = {0};
        moka_net *net = NULL;
        const moka_status s = build(cases[i].text, MOKA_TRAIN, &net, &err);
        if (s != cases[i].code)
            TEST_FAIL_("case %zu: got %s (%s), want %s", i, moka_status_name(s), err.msg,
                       moka_status_name(cases[i].code));
        CHECK_CONTAINS(err.msg, cases[i].msg);
        CHECK(net == NULL);
    }
    return 0;
}

/* Messages are one line even when the offending text holds control characters. */
static int error_messages_are_one_line(void)
{
    moka_err err = {0};
    moka_net *net = NULL;
    CHECK(build("layer { name: 'a\\nb' type: 'No\\tpe' }", MOKA_TRAIN, &net, &err) != MOKA_OK);
    CHECK_CONTAINS(err.msg, "unknown layer type 'No?pe'");
    CHECK(strchr(err.msg, '\n') == NULL && strchr(err.msg, '\t') == NULL);
    CHECK(build("layer { name: 'x' type: 'ReLU' bottom: 'a\\nb' top: 'y' }", MOKA_TRAIN, &net, &err) != MOKA_OK);
    CHECK(strchr(err.msg, '\n') == NULL);
    return 0;
}

MOKA_TEST_MAIN(error_messages_are_one_line, split_is_inserted_and_gradients_sum, loss_weight_scales_loss_and_gradient,
               shared_parameters_alias_and_accumulate, propagate_down_false_stops_the_gradient,
               phase_level_and_stage_rules_filter_layers, test_net_shares_train_weights,
               parameters_are_one_contiguous_block, bad_nets_give_one_clear_error,
               gradients_written_whole_are_complete)
