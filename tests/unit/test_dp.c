/* tests/unit/test_dp.c -- the pieces of data-parallel training that do not need several
 * processes: the net's "gradients final" hook, the bucket plan, and moka_dp_step on one rank.
 *
 * With one rank the allreduce is the identity, so moka_dp_step must reproduce plain forward and
 * backward passes bit for bit while its communication thread walks every bucket; the hook must
 * report only suffixes that backward never writes again (checked by comparing each reported
 * suffix with the final gradients), including weights shared between layers. The multi-rank
 * behaviour is tested end to end by tests/dist/ under mpirun.
 */
#include <string.h>

#include "core/net_internal.h"
#include "moka/dist.h"
#include "moka/net.h"
#include "test.h"

static moka_ctx ctx;

/* A conv + pool + two inner products that share their weights (ipa and ipb, owner ipa), with
 * ~120 K parameters, so the bucket plan makes several buckets. */
static const char *const net_text =
    "name: 'dp'\n"
    "layer { name: 'data' type: 'DummyData' top: 'x' top: 'label' dummy_data_param {\n"
    "  shape { dim: 6 dim: 2 dim: 12 dim: 12 } shape { dim: 6 }\n"
    "  data_filler { type: 'gaussian' std: 1 } data_filler { type: 'uniform' min: 0 max: 3.9 } } }\n"
    "layer { name: 'conv' type: 'Convolution' bottom: 'x' top: 'c' convolution_param {\n"
    "  num_output: 8 kernel_size: 3 weight_filler { type: 'xavier' } } }\n"
    "layer { name: 'pool' type: 'Pooling' bottom: 'c' top: 'p' pooling_param { pool: MAX\n"
    "  kernel_size: 2 stride: 2 } }\n"
    "layer { name: 'ip0' type: 'InnerProduct' bottom: 'p' top: 'h' inner_product_param {\n"
    "  num_output: 300 weight_filler { type: 'xavier' } } }\n"
    "layer { name: 'relu' type: 'ReLU' bottom: 'h' top: 'h' }\n"
    "layer { name: 'ipa' type: 'InnerProduct' bottom: 'h' top: 'a' param { name: 'shared' }\n"
    "  inner_product_param { num_output: 300 bias_term: false weight_filler { type: 'xavier' } } }\n"
    "layer { name: 'ipb' type: 'InnerProduct' bottom: 'a' top: 'b' param { name: 'shared' }\n"
    "  inner_product_param { num_output: 300 bias_term: false weight_filler { type: 'xavier' } } }\n"
    "layer { name: 'out' type: 'InnerProduct' bottom: 'b' top: 'o' inner_product_param {\n"
    "  num_output: 4 weight_filler { type: 'xavier' } } }\n"
    "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'o' bottom: 'label' top: 'loss' }\n";

static moka_status build(moka_net **net, moka_err *err)
{
    moka_ctx_init(&ctx);
    ctx.threads = 1;
    moka_ctx_apply_threads(&ctx);
    return moka_net_create_from_text(net_text, "dp.prototxt", NULL, &ctx, net, err);
}

typedef struct {
    int n;
    int64_t lo[64];
    float *copy[64];
    const float *grad;
    int64_t count;
} hook_log;

static void record(void *user, int64_t lo)
{
    hook_log *h = user;
    if (h->n >= 64) return;
    h->lo[h->n] = lo;
    h->copy[h->n] = malloc((size_t)h->count * sizeof(float));
    if (h->copy[h->n]) memcpy(h->copy[h->n], h->grad, (size_t)h->count * sizeof(float));
    h->n++;
}

/* Every suffix the hook reports is final: backward does not change it afterwards. */
static int hook_reports_only_final_suffixes(void)
{
    moka_err err = {0};
    moka_net *net;
    CHECK_OK(build(&net, &err));
    hook_log h = {0};
    h.grad = moka_net_param_grad(net);
    h.count = moka_net_param_count(net);
    moka_net_set_grads_final_hook(net, record, &h);
    float loss;
    moka_net_zero_param_grads(net);
    CHECK_OK(moka_net_forward(net, &loss, &err));
    CHECK_OK(moka_net_backward(net, &err));
    int rc = 0;
    if (h.n < 3) rc = 1, fprintf(stderr, "only %d hook calls\n", h.n);
    for (int i = 0; i < h.n && !rc; i++) {
        if (i > 0 && h.lo[i] >= h.lo[i - 1]) rc = 1, fprintf(stderr, "lo not decreasing\n");
        if (!h.copy[i] || memcmp(h.copy[i] + h.lo[i], h.grad + h.lo[i],
                                 (size_t)(h.count - h.lo[i]) * sizeof(float)) != 0)
            rc = 1, fprintf(stderr, "call %d: suffix from %lld changed later\n", i,
                            (long long)h.lo[i]);
    }
    if (h.n > 0 && h.lo[h.n - 1] != 0) rc = 1, fprintf(stderr, "last call is not lo 0\n");
    /* The shared weight (owned by ipa) must not be reported before ipa ran: ipb, which runs
     * first in backward, also adds into it. Its region is therefore reported no earlier than
     * the call that covers ipa's offset, after which it is unchanged (checked above). */
    for (int i = 0; i < 64; i++) free(h.copy[i]);
    moka_net_free(net);
    return rc;
}

/* One rank: moka_dp_step equals plain passes bit for bit, over several buckets. */
static int dp_step_on_one_rank_equals_plain_passes(void)
{
    moka_err err = {0};
    moka_dist *dist;
    const moka_dist_opts o = {.force_single = true};
    CHECK_OK(moka_dist_init(&o, &dist, &err));
    CHECK_EQ(moka_dist_size(dist), 1);
    CHECK_EQ(moka_dist_rank(dist), 0);
    moka_net *a, *b;
    CHECK_OK(build(&a, &err));
    CHECK_OK(build(&b, &err));
    const int64_t n = moka_net_param_count(a);
    CHECK(n > 100000);
    moka_dp *dp;
    CHECK_OK(moka_dp_create(dist, b, 0, &dp, &err));
    moka_dp_stats st;
    moka_dp_get_stats(dp, &st);
    /* ~480 KB of gradients: cap max(64 KiB, 480/4 KB) -> about four buckets. */
    CHECK(st.num_buckets >= 3 && st.num_buckets <= 6);
    CHECK_EQ(st.nbytes, n * 4);
    for (int it = 0; it < 3; it++) {
        float la = 0, lb = 0;
        moka_net_zero_param_grads(a);
        for (int k = 0; k < 2; k++) {
            float l;
            moka_net_reseed(a, (uint64_t)(it * 2 + k));
            CHECK_OK(moka_net_forward(a, &l, &err));
            CHECK_OK(moka_net_backward(a, &err));
            la += l;
        }
        moka_net_zero_param_grads(b);
        float sc[2] = {1.5f, -2.0f};
        CHECK_OK(moka_dp_step(dp, it * 2, 2, sc, 2, &lb, &err));
        CHECK(la == lb);
        CHECK(sc[0] == 1.5f && sc[1] == -2.0f); /* summed over one rank */
        CHECK(memcmp(moka_net_param_grad(a), moka_net_param_grad(b), (size_t)n * 4) == 0);
    }
    moka_dp_get_stats(dp, &st);
    CHECK_EQ(st.steps, 3);
    CHECK(st.comm_ms >= 0 && st.exposed_ms >= 0);
    float bad[9];
    CHECK_STATUS(moka_dp_step(dp, 0, 1, bad, 9, NULL, &err), MOKA_ERR_INVALID_ARG);
    moka_dp_free(dp);
    moka_net_free(a);
    moka_net_free(b);
    CHECK_OK(moka_dist_finalize(dist, &err));
    return 0;
}

/* Outside mpirun a dist is rank 0 of 1 with this host's name, and its collectives do nothing. */
static int single_process_dist(void)
{
    moka_err err = {0};
    moka_dist *d;
    CHECK_OK(moka_dist_init(NULL, &d, &err));
    CHECK_EQ(moka_dist_size(d), 1);
    CHECK_EQ(moka_dist_local_size(d), 1);
    CHECK(strcmp(moka_dist_engine(d), "none") == 0);
    CHECK(moka_dist_host(d, 0)[0] != '\0');
    CHECK(strcmp(moka_dist_host(d, 5), "?") == 0);
    CHECK(moka_dist_default_threads(d) >= 1);
    double v[2] = {3, 4};
    CHECK_OK(moka_dist_sum_f64(d, v, 2, &err));
    CHECK(v[0] == 3 && v[1] == 4);
    CHECK_OK(moka_dist_broadcast(d, v, sizeof v, &err));
    CHECK_OK(moka_dist_barrier(d, &err));
    moka_dist_abort(d, 3); /* returns: nothing to abort */
    CHECK_OK(moka_dist_finalize(d, &err));
    CHECK_OK(moka_dist_finalize(NULL, &err));
    return 0;
}

MOKA_TEST_MAIN(hook_reports_only_final_suffixes, dp_step_on_one_rank_equals_plain_passes,
               single_process_dist)
