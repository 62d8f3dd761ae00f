/* tests/unit/test_layout.c -- held activations (src/core/layout.h).
 *
 * The conversion of a held copy to plain against the index formulas written out here, and whole
 * nets run twice from the same weights and inputs: once letting convolutions hold their outputs
 * for the ReLU and Pooling layers after them (the default), once with ctx.plain_layouts. Holding
 * changes where data lives, not the arithmetic, so loss, every activation and gradient, and the
 * weight gradients must agree bit for bit; and the run with holding must really hold (checked
 * on the convolution's top before the net hands anything out), or the comparison proves
 * nothing. The nets cover both held layouts (nChw16c for 16-channel blocks, channels-last for
 * 50 channels: three full 16-lane groups and a partial one), pooling output held for the
 * convolution below and its gradient sent back held, leaky ReLU in place (held) and
 * with a negative slope (synced back to plain), MAX pooling with a mask top, AVE with padding,
 * windows split over several output tiles, and a held blob read by two layers (a Split, which
 * syncs). fp32, and bf16 where the CPU has it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_op.h"
#include "core/layout.h"
#include "core/net_internal.h"
#include "moka/net.h"
#include "test.h"

static int to_plain_matches_the_index_formulas(void)
{
    const int64_t dims[][4] = {{2, 32, 3, 5}, {1, 16, 1, 1}, {3, 50, 4, 2}, {2, 3, 7, 1}};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        const int64_t N = dims[k][0], C = dims[k][1], H = dims[k][2], W = dims[k][3];
        const int64_t n = N * C * H * W;
        float *src = malloc((size_t)n * sizeof *src), *dst = malloc((size_t)n * sizeof *dst);
        CHECK(src && dst);
        for (int64_t i = 0; i < n; i++) src[i] = (float)(i * 7919 % 1009) - 500.0f;
        for (int layout = MOKA_LAYOUT_NHWC; layout <= MOKA_LAYOUT_NCHW16C; layout++) {
            if (layout == MOKA_LAYOUT_NCHW16C && C % 16) continue;
            memset(dst, 0, (size_t)n * sizeof *dst);
            moka_layout_to_plain((moka_layout)layout, src, dst, dims[k]);
            for (int64_t b = 0; b < N; b++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t h = 0; h < H; h++)
                        for (int64_t w = 0; w < W; w++) {
                            const int64_t at = layout == MOKA_LAYOUT_NHWC
                                                   ? ((b * H + h) * W + w) * C + c
                                                   : (((b * (C / 16) + c / 16) * H + h) * W + w) *
                                                             16 +
                                                         c % 16;
                            const float want = src[at];
                            const float got = dst[((b * C + c) * H + h) * W + w];
                            if (got != want) {
                                TEST_FAIL_("dims %zu layout %d: (%lld,%lld,%lld,%lld) %g != %g", k,
                                           layout, (long long)b, (long long)c, (long long)h,
                                           (long long)w, got, want);
                            }
                        }
        }
        free(src);
        free(dst);
    }
    return 0;
}

#define INPUT(n, c, hw, classes)                                                                   \
    "layer { name: 'in' type: 'Input' top: 'x' top: 'label' input_param { shape { dim: " #n      \
    " dim: " #c " dim: " #hw " dim: " #hw " } shape { dim: " #n " } } }\n"
#define CONV(name, bottom, top, out, pad)                                                          \
    "layer { name: '" name "' type: 'Convolution' bottom: '" bottom "' top: '" top "' "           \
    "convolution_param { num_output: " #out " kernel_size: 3 pad: " #pad " "                       \
    "weight_filler { type: 'xavier' } bias_filler { type: 'uniform' min: -0.2 max: 0.2 } } }\n"
#define IP_LOSS(bottom, classes, suffix)                                                           \
    "layer { name: 'ip" suffix "' type: 'InnerProduct' bottom: '" bottom "' top: 'ip" suffix "' " \
    "inner_product_param { num_output: " #classes " weight_filler { type: 'xavier' } } }\n"      \
    "layer { name: 'loss" suffix "' type: 'SoftmaxWithLoss' bottom: 'ip" suffix "' "              \
    "bottom: 'label' top: 'loss" suffix "' }\n"

/* 16 -> 32 -> 32 channels: oneDNN's blocked layouts. */
static const char net_blocked[] =
    "name: 'blocked'\n" INPUT(3, 16, 13, 4) CONV("conv1", "x", "c1", 32, 1)
    "layer { name: 'relu1' type: 'ReLU' bottom: 'c1' top: 'c1' relu_param { negative_slope: 0.1 } }\n"
    "layer { name: 'pool1' type: 'Pooling' bottom: 'c1' top: 'p1' "
    "pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n"
    "layer { name: 'relu1b' type: 'ReLU' bottom: 'p1' top: 'p1' relu_param { negative_slope: 0.2 } }\n"
    CONV("conv2", "p1", "c2", 32, 1)
    "layer { name: 'relu2' type: 'ReLU' bottom: 'c2' top: 'c2' }\n"
    "layer { name: 'pool2' type: 'Pooling' bottom: 'c2' top: 'p2' "
    "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }\n" IP_LOSS("p2", 4, "");

/* 20 -> 50 channels: channels-last. */
static const char net_nhwc[] =
    "name: 'nhwc'\n" INPUT(2, 20, 10, 4) CONV("conv1", "x", "c1", 50, 0)
    "layer { name: 'relu1' type: 'ReLU' bottom: 'c1' top: 'c1' }\n"
    "layer { name: 'pool1' type: 'Pooling' bottom: 'c1' top: 'p1' top: 'mask' "
    "pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n" IP_LOSS("p1", 4, "");

/* A ReLU that cannot work held (negative slope in place) and a held blob with two readers. */
static const char net_synced[] =
    "name: 'synced'\n" INPUT(2, 20, 9, 3) CONV("conv1", "x", "c1", 50, 1)
    "layer { name: 'relu1' type: 'ReLU' bottom: 'c1' top: 'c1' relu_param { negative_slope: -0.5 } }\n"
    CONV("conv2", "c1", "c2", 32, 1)
    "layer { name: 'pool1' type: 'Pooling' bottom: 'c2' top: 'p1' "
    "pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n"
    "layer { name: 'pool2' type: 'Pooling' bottom: 'c2' top: 'p2' "
    "pooling_param { pool: AVE global_pooling: true } }\n" IP_LOSS("p1", 3, "a")
        IP_LOSS("p2", 3, "b");

static const char *const blob_names[] = {"x", "c1", "p1", "c2", "p2", "mask", "ip", "ipa", "ipb"};

static moka_status build(const char *text, bool plain, moka_precision prec, moka_ctx *ctx,
                         moka_net **net, moka_err *err)
{
    moka_ctx_init(ctx);
    ctx->threads = 2;
    ctx->precision = prec;
    ctx->plain_layouts = plain;
    moka_ctx_apply_threads(ctx);
    return moka_net_create_from_text(text, "net.prototxt", NULL, ctx, net, err);
}

static void fill_inputs(moka_net *net, int round, int classes)
{
    moka_tensor *x = moka_net_blob(net, "x"), *label = moka_net_blob(net, "label");
    for (int64_t i = 0; i < moka_tensor_count(x); i++)
        x->data[i] = (float)((i * 7919 + round * 104729) % 2003) / 1001.0f - 1.0f;
    for (int64_t i = 0; i < moka_tensor_count(label); i++)
        label->data[i] = (float)((i + round) % classes);
}

static int layer_index(const moka_net *net, const char *name)
{
    for (int i = 0; i < moka_net_num_layers(net); i++)
        if (strcmp(moka_net_layer_name(net, i), name) == 0) return i;
    return -1;
}

static bool same_bits(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* Runs `text` held and plain and compares; `held_layer` must hold its output (and get its
 * gradient back held) in `want` when `must_hold`. */
static int compare_net(const char *text, int classes, moka_precision prec, const char *held_layer,
                       moka_layout want, bool must_hold)
{
    moka_err err = {0};
    moka_ctx ch, cp;
    moka_net *nh = NULL, *np = NULL;
    CHECK_OK(build(text, false, prec, &ch, &nh, &err));
    const char *name = moka_net_name(nh);
    CHECK_OK(build(text, true, prec, &cp, &np, &err));
    const int64_t pc = moka_net_param_count(nh);
    CHECK(pc == moka_net_param_count(np));
    CHECK(same_bits(moka_net_param_data(nh), moka_net_param_data(np), pc));
    for (int round = 0; round < 2; round++) {
        fill_inputs(nh, round, classes);
        fill_inputs(np, round, classes);
        float lh, lp;
        moka_net_zero_param_grads(nh);
        moka_net_zero_param_grads(np);
        CHECK_OK(moka_net_forward(nh, &lh, &err));
        CHECK_OK(moka_net_forward(np, &lp, &err));
        const moka_layer *l = moka_net_layer(nh, layer_index(nh, held_layer));
        const moka_held *hd = moka_held_get(l->top[0], false);
        if (must_hold && (round == 0 || strcmp(held_layer, "pool1")) && !(hd && hd->layout == want))
            TEST_FAIL_("%s: layer %s does not hold its output in layout %d", name, held_layer,
                       (int)want);
        if (!(lh == lp)) TEST_FAIL_("%s: loss %.9g held, %.9g plain", name, lh, lp);
        /* The second time, a caller looks at the pooled blob between forward and backward:
         * handing it out ends its holding, so backward now adds that gradient into the plain
         * buffer, whose zeroing the net left pending (it was written held the first time). */
        if (round == 1) {
            moka_net_blob(nh, "p1");
            moka_net_blob(np, "p1");
        }
        CHECK_OK(moka_net_backward(nh, &err));
        CHECK_OK(moka_net_backward(np, &err));
        const moka_held *hg = moka_held_get(l->top[0], true);
        if (must_hold && round == 0 && !(hg && hg->layout == want))
            TEST_FAIL_("%s: layer %s does not get its gradient held", name, held_layer);
        if (!same_bits(moka_net_param_grad(nh), moka_net_param_grad(np), pc))
            TEST_FAIL_("%s round %d: weight gradients differ", name, round);
        for (size_t b = 0; b < sizeof blob_names / sizeof blob_names[0]; b++) {
            const moka_tensor *th = moka_net_blob(nh, blob_names[b]);
            const moka_tensor *tp = moka_net_blob(np, blob_names[b]);
            if (!th) continue;
            CHECK(tp);
            const int64_t n = moka_tensor_count(th);
            if (!same_bits(th->data, tp->data, n))
                TEST_FAIL_("%s round %d: blob %s differs", name, round, blob_names[b]);
            if (!same_bits(th->grad, tp->grad, n))
                TEST_FAIL_("%s round %d: gradient of %s differs", name, round, blob_names[b]);
        }
        /* Handing blobs out brought them back to plain; nothing is held any more. */
        CHECK(!moka_held_get(l->top[0], false));
    }
    moka_net_free(nh);
    moka_net_free(np);
    return 0;
}

/* Every net in `prec`, each with the layer whose top must be held (or none). */
static int compare_all(moka_precision prec)
{
    static const struct {
        const char *text;
        int classes;
        const char *layer;
        moka_layout want;
        bool must_hold;
    } cases[] = {
        {net_blocked, 4, "conv1", MOKA_LAYOUT_NCHW16C, true},
        {net_blocked, 4, "conv2", MOKA_LAYOUT_NCHW16C, true},
        /* Pooling keeps its output held for the convolution below (through a ReLU), which
         * sends the gradient back held. */
        {net_blocked, 4, "pool1", MOKA_LAYOUT_NCHW16C, true},
        {net_nhwc, 4, "conv1", MOKA_LAYOUT_NHWC, true},
        {net_synced, 3, "conv1", MOKA_LAYOUT_PLAIN, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (compare_net(cases[i].text, cases[i].classes, prec, cases[i].layer, cases[i].want,
                        cases[i].must_hold))
            return 1;
    return 0;
}

static int held_nets_equal_plain_nets_fp32(void) { return compare_all(MOKA_PRECISION_FP32); }

static int held_nets_equal_plain_nets_bf16(void)
{
    if (!moka_dnnl_bf16_supported(NULL)) {
        printf("skip: no bf16 instructions on this CPU\n");
        return 0;
    }
    return compare_all(MOKA_PRECISION_BF16);
}

MOKA_TEST_MAIN(to_plain_matches_the_index_formulas, held_nets_equal_plain_nets_fp32,
               held_nets_equal_plain_nets_bf16)
