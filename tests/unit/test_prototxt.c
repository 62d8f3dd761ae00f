/* tests/unit/test_prototxt.c -- the protobuf text-format reader: every grammar feature, the
 * typed accessors with their schema defaults, implicit sub-messages, positions, and the error
 * messages (text, status and file:line:col) for syntax and schema mistakes.
 *
 * Expected values are written by hand from the text in each test and from proto/caffe.proto's
 * [default = ...] declarations.
 */
#include "test.h"

#include <protobuf-c/protobuf-c.h>

#include "caffe.pb-c.h"
#include "io/caffe_schema.h"
#include "io/prototxt.h"

#define NET (&caffe__net_parameter__descriptor)
#define SOLVER (&caffe__solver_parameter__descriptor)
#define LAYER (&caffe__layer_parameter__descriptor)
#define CONV (&caffe__convolution_parameter__descriptor)

static moka_status parse(const char *text, const ProtobufCMessageDescriptor *type,
                         moka_pt_doc **doc, moka_err *err)
{
    return moka_pt_parse(text, (int64_t)strlen(text), "t.prototxt", type, doc, err);
}

/* Parses `text` as `type`, expecting failure with status `want` and `msg` in the message. */
static int expect_error(const char *text, const ProtobufCMessageDescriptor *type, moka_status want,
                        const char *msg)
{
    moka_err err = {0};
    moka_pt_doc *doc = (moka_pt_doc *)1;
    const moka_status st = parse(text, type, &doc, &err);
    if (st != want || !strstr(err.msg, msg) || doc != NULL) {
        fprintf(stderr, "input: %s\n  got %s: %s\n  want %s containing: %s\n", text,
                moka_status_name(st), err.msg, moka_status_name(want), msg);
        moka_pt_doc_free(st == MOKA_OK ? doc : NULL);
        return 1;
    }
    /* Every message is one line starting with the position. */
    if (strchr(err.msg, '\n') || strncmp(err.msg, "t.prototxt:", 11) != 0) {
        fprintf(stderr, "not a one-line positioned message: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int comments_separators_and_message_syntaxes(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    CHECK_OK(parse("# leading comment\n"
                   "name: \"n\"  # trailing comment\n"
                   "force_backward: true;\n"
                   "layer { name: 'a' type: \"ReLU\", }\n"
                   "layer: { name: 'b' }\n"
                   "layer < name: 'c' >\n"
                   "layer: < name: 'd'; bottom: 'x' top: 'y' >\n"
                   "input_dim: 1, input_dim: 2; input_dim: 3\n",
                   NET, &doc, &err));
    const moka_pt_node *root = moka_pt_root(doc);
    CHECK(strcmp(moka_pt_str(root, "name"), "n") == 0);
    CHECK(moka_pt_bool(root, "force_backward"));
    CHECK_EQ(moka_pt_count(root, "layer"), 4);
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        CHECK(strcmp(moka_pt_str(moka_pt_msg_at(root, "layer", i), "name"), names[i]) == 0);
    CHECK(strcmp(moka_pt_str(moka_pt_msg_at(root, "layer", 0), "type"), "ReLU") == 0);
    const moka_pt_node *d = moka_pt_msg_at(root, "layer", 3);
    CHECK(strcmp(moka_pt_str_at(d, "bottom", 0), "x") == 0);
    CHECK(strcmp(moka_pt_str_at(d, "top", 0), "y") == 0);
    CHECK_EQ(moka_pt_count(root, "input_dim"), 3);
    CHECK_EQ(moka_pt_int_at(root, "input_dim", 2), 3);
    moka_pt_doc_free(doc);
    return 0;
}

static int list_syntax(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    CHECK_OK(parse("kernel_size: [3, 5] pad: [] stride: [2]\n"
                   "kernel_size: 7\n", CONV, &doc, &err));
    const moka_pt_node *c = moka_pt_root(doc);
    CHECK_EQ(moka_pt_count(c, "kernel_size"), 3);
    CHECK_EQ(moka_pt_int_at(c, "kernel_size", 0), 3);
    CHECK_EQ(moka_pt_int_at(c, "kernel_size", 1), 5);
    CHECK_EQ(moka_pt_int_at(c, "kernel_size", 2), 7);
    CHECK_EQ(moka_pt_count(c, "pad"), 0);
    CHECK(!moka_pt_has(c, "pad"));
    CHECK_EQ(moka_pt_int(c, "stride"), 2);
    /* List elements keep the position of the field name. */
    CHECK_EQ(moka_pt_node_at(c, "kernel_size", 1)->line, 1);
    CHECK_EQ(moka_pt_node_at(c, "kernel_size", 1)->col, 1);
    moka_pt_doc_free(doc);

    /* A list of messages, with both brace styles. */
    CHECK_OK(parse("layer: [{ name: 'a' }, < name: 'b' >]", NET, &doc, &err));
    CHECK_EQ(moka_pt_count(moka_pt_root(doc), "layer"), 2);
    CHECK(strcmp(moka_pt_str(moka_pt_msg_at(moka_pt_root(doc), "layer", 1), "name"), "b") == 0);
    moka_pt_doc_free(doc);
    return 0;
}

static int strings_escapes_and_concatenation(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    CHECK_OK(parse("name: 'it\\'s \"q\"'\n"
                   "bottom: \"a\\n\\t\\r\\\\\\\"\\'\\a\\b\\f\\v\"\n"
                   "bottom: \"\\101\\x42\\x4a\\0z\"\n"
                   "bottom: \"con\" 'cat' \"\" \"enated\"\n"
                   "bottom: ''\n",
                   LAYER, &doc, &err));
    const moka_pt_node *l = moka_pt_root(doc);
    CHECK(strcmp(moka_pt_str(l, "name"), "it's \"q\"") == 0);
    CHECK(strcmp(moka_pt_str_at(l, "bottom", 0), "a\n\t\r\\\"'\a\b\f\v") == 0);
    const moka_pt_node *b1 = moka_pt_node_at(l, "bottom", 1);
    CHECK_EQ(b1->kind, MOKA_PT_STRING);
    CHECK_EQ(b1->len, 5); /* A B J NUL z: the NUL is kept and len counts it */
    CHECK(memcmp(b1->text, "ABJ\0z", 5) == 0);
    CHECK(strcmp(moka_pt_str_at(l, "bottom", 2), "concatenated") == 0);
    CHECK(strcmp(moka_pt_str_at(l, "bottom", 3), "") == 0);
    CHECK_EQ(moka_pt_node_at(l, "bottom", 3)->len, 0);
    moka_pt_doc_free(doc);
    return 0;
}

static int numbers(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    /* SolverParameter: base_lr, momentum, gamma, power, weight_decay, delta, clip_gradients,
     * momentum2, rms_decay are floats; max_iter, display, stepsize int32; random_seed int64. */
    CHECK_OK(parse("base_lr: 1e-3 momentum: .9 gamma: 2.5E+1 power: 0.75f weight_decay: 5\n"
                   "delta: -inf momentum2: Infinity rms_decay: NaN clip_gradients: -1.5F\n"
                   "max_iter: 0x10 display: -7 stepsize: 010 random_seed: -9223372036854775808\n"
                   "device_id: 2147483647 test_iter: -2147483648 test_iter: 0X7f\n"
                   "stepvalue: - 3 average_loss: -0\n",
                   SOLVER, &doc, &err));
    const moka_pt_node *s = moka_pt_root(doc);
    CHECK_NEAR(moka_pt_float(s, "base_lr"), 1e-3, 1e-7);
    CHECK_NEAR(moka_pt_float(s, "momentum"), 0.9, 1e-7);
    CHECK_NEAR(moka_pt_float(s, "gamma"), 25.0, 0);
    CHECK_NEAR(moka_pt_float(s, "power"), 0.75, 0);
    CHECK_NEAR(moka_pt_float(s, "weight_decay"), 5.0, 0);
    CHECK(isinf(moka_pt_float(s, "delta")) && moka_pt_float(s, "delta") < 0);
    CHECK(isinf(moka_pt_float(s, "momentum2")) && moka_pt_float(s, "momentum2") > 0);
    CHECK(isnan(moka_pt_float(s, "rms_decay")));
    CHECK_NEAR(moka_pt_float(s, "clip_gradients"), -1.5, 0);
    CHECK_EQ(moka_pt_int(s, "max_iter"), 16);
    CHECK_EQ(moka_pt_int(s, "display"), -7);
    CHECK_EQ(moka_pt_int(s, "stepsize"), 8); /* leading 0: octal, as in protobuf */
    CHECK(moka_pt_int(s, "random_seed") == INT64_MIN);
    CHECK_EQ(moka_pt_int(s, "device_id"), 2147483647);
    CHECK_EQ(moka_pt_int_at(s, "test_iter", 0), -2147483648LL);
    CHECK_EQ(moka_pt_int_at(s, "test_iter", 1), 127);
    CHECK_EQ(moka_pt_int(s, "stepvalue"), -3);
    CHECK_EQ(moka_pt_int(s, "average_loss"), 0);
    /* Numbers keep their text as written; "- 3" is normalised to "-3". */
    CHECK(strcmp(moka_pt_node_at(s, "power", 0)->text, "0.75f") == 0);
    CHECK(strcmp(moka_pt_node_at(s, "stepvalue", 0)->text, "-3") == 0);
    CHECK_EQ(moka_pt_node_at(s, "max_iter", 0)->kind, MOKA_PT_NUMBER);
    /* An integer field reads as a float too. */
    CHECK_NEAR(moka_pt_float(s, "max_iter"), 16.0, 0);
    moka_pt_doc_free(doc);

    /* uint32 upper bound, and double fields (BlobProto.double_data). */
    CHECK_OK(parse("num_output: 4294967295 group: 0", CONV, &doc, &err));
    CHECK_EQ(moka_pt_int(moka_pt_root(doc), "num_output"), 4294967295LL);
    moka_pt_doc_free(doc);
    CHECK_OK(parse("double_data: 1e300 double_data: -2", &caffe__blob_proto__descriptor, &doc,
                   &err));
    CHECK_NEAR(moka_pt_float_at(moka_pt_root(doc), "double_data", 0), 1e300, 1e-15);
    CHECK_NEAR(moka_pt_float_at(moka_pt_root(doc), "double_data", 1), -2.0, 0);
    moka_pt_doc_free(doc);
    return 0;
}

static int identifiers_bools_and_enums(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    CHECK_OK(parse("pool: AVE global_pooling: True round_mode: 1 engine: CUDNN",
                   &caffe__pooling_parameter__descriptor, &doc, &err));
    const moka_pt_node *p = moka_pt_root(doc);
    CHECK(strcmp(moka_pt_str(p, "pool"), "AVE") == 0);
    CHECK_EQ(moka_pt_int(p, "pool"), 1);
    CHECK_EQ(moka_pt_node_at(p, "pool", 0)->kind, MOKA_PT_IDENT);
    CHECK(moka_pt_bool(p, "global_pooling"));
    /* Given by number, an enum still reads back by name. */
    CHECK(strcmp(moka_pt_str(p, "round_mode"), "FLOOR") == 0);
    CHECK_EQ(moka_pt_int(p, "round_mode"), 1);
    CHECK_EQ(moka_pt_int(p, "engine"), 2);
    moka_pt_doc_free(doc);

    /* Every bool spelling protobuf accepts. */
    const char *const yes[] = {"true", "True", "t", "1"};
    const char *const no[] = {"false", "False", "f", "0"};
    char text[64];
    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof text, "bias_term: %s", yes[i]);
        CHECK_OK(parse(text, CONV, &doc, &err));
        CHECK(moka_pt_bool(moka_pt_root(doc), "bias_term") == true);
        moka_pt_doc_free(doc);
        snprintf(text, sizeof text, "bias_term: %s", no[i]);
        CHECK_OK(parse(text, CONV, &doc, &err));
        CHECK(moka_pt_bool(moka_pt_root(doc), "bias_term") == false);
        moka_pt_doc_free(doc);
    }
    return 0;
}

static int defaults_from_the_schema(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    CHECK_OK(parse("", SOLVER, &doc, &err));
    const moka_pt_node *s = moka_pt_root(doc);
    CHECK(!moka_pt_has(s, "base_lr"));
    CHECK_EQ(moka_pt_count(s, "test_iter"), 0);
    CHECK(moka_pt_node_at(s, "test_iter", 0) == NULL);
    CHECK_NEAR(moka_pt_float(s, "base_lr"), 0.0, 0);          /* no default: 0 */
    CHECK_NEAR(moka_pt_float(s, "delta"), 1e-8, 1e-6);         /* [default = 1e-8] (float) */
    CHECK_NEAR(moka_pt_float(s, "momentum2"), 0.999, 1e-7);    /* [default = 0.999] */
    CHECK_NEAR(moka_pt_float(s, "clip_gradients"), -1.0, 0);   /* [default = -1] */
    CHECK_EQ(moka_pt_int(s, "average_loss"), 1);               /* int32 [default = 1] */
    CHECK_EQ(moka_pt_int(s, "max_iter"), 0);                   /* int32, no default */
    CHECK_EQ(moka_pt_int(s, "random_seed"), -1);               /* int64 [default = -1] */
    CHECK(moka_pt_bool(s, "test_initialization"));             /* [default = true] */
    CHECK(!moka_pt_bool(s, "snapshot_diff"));                  /* [default = false] */
    CHECK(moka_pt_bool(s, "layer_wise_reduce"));
    CHECK(strcmp(moka_pt_str(s, "type"), "SGD") == 0);         /* string [default = "SGD"] */
    CHECK(strcmp(moka_pt_str(s, "regularization_type"), "L2") == 0);
    CHECK(strcmp(moka_pt_str(s, "lr_policy"), "") == 0);       /* string, no default */
    CHECK(strcmp(moka_pt_str(s, "solver_mode"), "GPU") == 0);  /* enum [default = GPU] */
    CHECK_EQ(moka_pt_int(s, "solver_mode"), 1);
    CHECK(strcmp(moka_pt_str(s, "snapshot_format"), "BINARYPROTO") == 0);
    moka_pt_doc_free(doc);

    CHECK_OK(parse("", CONV, &doc, &err));
    const moka_pt_node *c = moka_pt_root(doc);
    CHECK_EQ(moka_pt_int(c, "group"), 1);                      /* uint32 [default = 1] */
    CHECK(moka_pt_bool(c, "bias_term"));
    CHECK(strcmp(moka_pt_str(c, "engine"), "DEFAULT") == 0);
    CHECK_EQ(moka_pt_int(c, "axis"), 1);
    moka_pt_doc_free(doc);

    /* LayerParameter.phase has no default: the first enum value, TRAIN. */
    CHECK_OK(parse("", LAYER, &doc, &err));
    CHECK(strcmp(moka_pt_str(moka_pt_root(doc), "phase"), "TRAIN") == 0);
    CHECK_EQ(moka_pt_int(moka_pt_root(doc), "phase"), 0);
    moka_pt_doc_free(doc);
    return 0;
}

static int implicit_sub_messages(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    CHECK_OK(parse("name: 'c' convolution_param { num_output: 3 bias_filler { value: 0.5 } }",
                   LAYER, &doc, &err));
    const moka_pt_node *l = moka_pt_root(doc);
    const moka_pt_node *conv = moka_pt_msg(l, "convolution_param");
    CHECK(conv->line == 1 && conv->col == 11);
    CHECK(conv->msg == CONV);
    CHECK_EQ(moka_pt_int(conv, "num_output"), 3);
    /* Absent sub-message: an empty node of the right type, defaults one level down. */
    const moka_pt_node *wf = moka_pt_msg(conv, "weight_filler");
    CHECK(wf != NULL);
    CHECK(wf->msg == &caffe__filler_parameter__descriptor);
    CHECK_EQ(wf->line, 0);
    CHECK(wf->child == NULL);
    CHECK(strcmp(moka_pt_str(wf, "type"), "constant") == 0);
    CHECK_NEAR(moka_pt_float(wf, "std"), 1.0, 0);
    CHECK_EQ(moka_pt_int(wf, "sparse"), -1);
    CHECK(strcmp(moka_pt_str(wf, "variance_norm"), "FAN_IN") == 0);
    CHECK(!moka_pt_has(conv, "weight_filler"));
    /* The same empty node comes back each time (cached in the document). */
    CHECK(moka_pt_msg(conv, "weight_filler") == wf);
    /* Present sub-message keeps its values and position. */
    const moka_pt_node *bf = moka_pt_msg(conv, "bias_filler");
    CHECK_NEAR(moka_pt_float(bf, "value"), 0.5, 0);
    CHECK(strcmp(moka_pt_str(bf, "type"), "constant") == 0);
    CHECK_EQ(bf->col, 45);
    /* Two levels of implicit messages. */
    const moka_pt_node *pool = moka_pt_msg(l, "pooling_param");
    CHECK(strcmp(moka_pt_str(pool, "pool"), "MAX") == 0);
    CHECK_EQ(moka_pt_int(pool, "stride"), 1);
    const moka_pt_node *tp = moka_pt_msg(l, "transform_param");
    CHECK_NEAR(moka_pt_float(tp, "scale"), 1.0, 0);
    /* Repeated messages: _msg_at is NULL past the end. */
    CHECK(moka_pt_msg_at(l, "param", 0) == NULL);
    CHECK(moka_pt_msg_at(l, "convolution_param", 1) == NULL);
    CHECK(moka_pt_msg_at(l, "convolution_param", 0) == conv);
    /* No position: moka_pt_errf adds no prefix. */
    CHECK_EQ(moka_pt_errf(&err, MOKA_ERR_CONFIG, wf, "bad %s", "x"), MOKA_ERR_CONFIG);
    CHECK(strcmp(err.msg, "bad x") == 0);
    moka_pt_doc_free(doc);
    return 0;
}

static int nested_and_repeated_with_positions(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    const char *text = "name: \"net\"\n"
                       "layer {\n"
                       "  name: \"conv1\"\n"
                       "  param { lr_mult: 1 }\n"
                       "  param { lr_mult: 2 decay_mult: 0 }\n"
                       "  include { phase: TEST stage: 'a' stage: 'b' }\n"
                       "\tconvolution_param { kernel_size: 5 }\n"
                       "}\n"
                       "layer { name: \"relu\" }\n";
    CHECK_OK(moka_pt_parse(text, (int64_t)strlen(text), "net.prototxt", NET, &doc, &err));
    const moka_pt_node *root = moka_pt_root(doc);
    CHECK(strcmp(root->name, "") == 0);
    CHECK(root->msg == NET);
    CHECK(strcmp(root->file, "net.prototxt") == 0);
    const moka_pt_node *l0 = moka_pt_msg_at(root, "layer", 0);
    CHECK(l0->line == 2 && l0->col == 1);
    CHECK(strcmp(l0->name, "layer") == 0);
    CHECK(l0->msg == LAYER);
    CHECK(strcmp(l0->file, "net.prototxt") == 0);
    CHECK(l0->doc == moka_pt_node_at(root, "name", 0)->doc);
    CHECK_EQ(moka_pt_count(l0, "param"), 2);
    const moka_pt_node *p1 = moka_pt_msg_at(l0, "param", 1);
    CHECK(p1->line == 5 && p1->col == 3);
    CHECK_NEAR(moka_pt_float(p1, "lr_mult"), 2.0, 0);
    CHECK_NEAR(moka_pt_float(p1, "decay_mult"), 0.0, 0);
    CHECK_NEAR(moka_pt_float(moka_pt_msg_at(l0, "param", 0), "decay_mult"), 1.0, 0);
    const moka_pt_node *inc = moka_pt_msg_at(l0, "include", 0);
    CHECK(strcmp(moka_pt_str(inc, "phase"), "TEST") == 0);
    CHECK_EQ(moka_pt_count(inc, "stage"), 2);
    CHECK(strcmp(moka_pt_str_at(inc, "stage", 1), "b") == 0);
    const moka_pt_node *stage1 = moka_pt_node_at(inc, "stage", 1);
    CHECK(stage1->line == 6 && stage1->col == 36);
    CHECK(stage1->field != NULL && strcmp(stage1->field->name, "stage") == 0);
    /* A tab counts as one column. */
    const moka_pt_node *cp = moka_pt_msg(l0, "convolution_param");
    CHECK(cp->line == 7 && cp->col == 2);
    CHECK_EQ(moka_pt_int_at(cp, "kernel_size", 0), 5);
    CHECK(moka_pt_msg_at(root, "layer", 1)->line == 9);
    /* Children are linked in file order. */
    const moka_pt_node *c = l0->child;
    CHECK(strcmp(c->name, "name") == 0 && strcmp(c->next->name, "param") == 0);
    CHECK_EQ(moka_pt_errf(&err, MOKA_ERR_SHAPE, p1, "bad %d", 7), MOKA_ERR_SHAPE);
    CHECK(strcmp(err.msg, "net.prototxt:5:3: bad 7") == 0);
    CHECK_EQ(err.code, MOKA_ERR_SHAPE);
    CHECK_EQ(moka_pt_errf(&err, MOKA_ERR_CONFIG, root, "empty"), MOKA_ERR_CONFIG);
    CHECK(strcmp(err.msg, "net.prototxt: empty") == 0);
    CHECK_EQ(moka_pt_errf(&err, MOKA_ERR_CONFIG, NULL, "plain"), MOKA_ERR_CONFIG);
    CHECK(strcmp(err.msg, "plain") == 0);
    CHECK_EQ(moka_pt_errf(NULL, MOKA_ERR_IO, NULL, "x"), MOKA_ERR_IO);
    moka_pt_doc_free(doc);
    return 0;
}

static int input_need_not_be_nul_terminated(void)
{
    moka_err err = {0};
    moka_pt_doc *doc;
    /* Only the first 13 bytes count: the rest would be a syntax error. */
    const char text[] = "num_output: 7}}}";
    CHECK_OK(moka_pt_parse(text, 13, "t", CONV, &doc, &err));
    CHECK_EQ(moka_pt_int(moka_pt_root(doc), "num_output"), 7);
    moka_pt_doc_free(doc);
    CHECK_OK(moka_pt_parse(NULL, 0, NULL, CONV, &doc, &err));
    CHECK(!moka_pt_has(moka_pt_root(doc), "num_output"));
    moka_pt_doc_free(doc);
    CHECK_STATUS(moka_pt_parse("x", 1, "t", NULL, &doc, &err), MOKA_ERR_INVALID_ARG);
    CHECK_STATUS(moka_pt_parse(NULL, 5, "t", CONV, &doc, &err), MOKA_ERR_INVALID_ARG);
    moka_pt_doc_free(NULL);
    CHECK(moka_pt_root(NULL) == NULL);
    return 0;
}

static int syntax_errors(void)
{
    int bad = 0;
    bad |= expect_error("layer {\n  name: 'a'\n  convolution_param {\n", NET, MOKA_ERR_CONFIG,
                        "t.prototxt:4:1: unexpected end of file: '{' opened at line 3 col 21 is "
                        "not closed");
    bad |= expect_error("name: 'a' }", NET, MOKA_ERR_CONFIG,
                        "t.prototxt:1:11: unexpected '}': no '{' is open");
    bad |= expect_error("layer < name: 'a' }", NET, MOKA_ERR_CONFIG,
                        "1:19: '}' does not close the '<' opened at line 1 col 7");
    bad |= expect_error("name: 'abc\n", NET, MOKA_ERR_CONFIG, "1:7: unterminated string");
    bad |= expect_error("name: \"abc", NET, MOKA_ERR_CONFIG, "1:7: unterminated string");
    bad |= expect_error("name: 'a\\'", NET, MOKA_ERR_CONFIG, "unterminated string");
    bad |= expect_error("name 'a'", NET, MOKA_ERR_CONFIG,
                        "1:6: expected ':' or '{' after field name 'name', got \"a\"");
    bad |= expect_error("num_output 5", CONV, MOKA_ERR_CONFIG,
                        "expected ':' or '{' after field name 'num_output', got 5");
    bad |= expect_error("name:", NET, MOKA_ERR_CONFIG,
                        "expected a value for 'name', got end of file");
    bad |= expect_error("name: }", NET, MOKA_ERR_CONFIG, "expected a value for 'name', got '}'");
    bad |= expect_error("5: 3", NET, MOKA_ERR_CONFIG, "1:1: expected a field name, got 5");
    bad |= expect_error("name: 'a' @", NET, MOKA_ERR_CONFIG, "1:11: unexpected character '@'");
    bad |= expect_error("name: \x01", NET, MOKA_ERR_CONFIG, "unexpected byte 0x01");
    bad |= expect_error("name: 'a\\q'", NET, MOKA_ERR_CONFIG, "1:9: invalid escape '\\q'");
    bad |= expect_error("name: 'a\\x'", NET, MOKA_ERR_CONFIG, "invalid escape '\\x'");
    bad |= expect_error("name: '\\777'", NET, MOKA_ERR_CONFIG, "larger than \\377");
    bad |= expect_error("num_output: 5x", CONV, MOKA_ERR_CONFIG, "1:13: invalid number '5x'");
    bad |= expect_error("num_output: 1e", CONV, MOKA_ERR_CONFIG, "invalid number '1e'");
    bad |= expect_error("num_output: 0x", CONV, MOKA_ERR_CONFIG, "invalid number '0x'");
    bad |= expect_error("num_output: 1.2.3", CONV, MOKA_ERR_CONFIG, "invalid number '1.2.3'");
    bad |= expect_error("stride: - abc", CONV, MOKA_ERR_CONFIG,
                        "expected a number after '-' for 'stride', got 'abc'");
    bad |= expect_error("kernel_size: [1, 2", CONV, MOKA_ERR_CONFIG,
                        "unexpected end of file: '[' opened at line 1 col 14 is not closed");
    bad |= expect_error("kernel_size: [1 2]", CONV, MOKA_ERR_CONFIG,
                        "expected ',' or ']' in the list for 'kernel_size', got 2");
    bad |= expect_error("[ext.field]: 1", CONV, MOKA_ERR_CONFIG, "extension and Any fields");
    bad |= expect_error("name: 'a';;", NET, MOKA_ERR_CONFIG, "expected a field name, got ';'");
    return bad;
}

static int depth_is_limited(void)
{
    /* NetParameter -> state is a leaf; use LayerParameter nesting through lists instead: a
     * chain of 150 unknown-but-syntactically-valid sub-messages fails at the depth limit
     * before validation runs. */
    char text[2000];
    size_t n = 0;
    for (int i = 0; i < 150; i++) n += (size_t)snprintf(text + n, sizeof text - n, "a{");
    for (int i = 0; i < 150; i++) text[n++] = '}';
    text[n] = '\0';
    int bad = expect_error(text, NET, MOKA_ERR_CONFIG, "nested more than 100 levels deep");
    /* 100 levels are fine syntactically (then the unknown field 'a' is reported). */
    n = 0;
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(text + n, sizeof text - n, "a{");
    for (int i = 0; i < 100; i++) text[n++] = '}';
    text[n] = '\0';
    bad |= expect_error(text, NET, MOKA_ERR_CONFIG, "1:1: unknown field 'a' in NetParameter");
    return bad;
}

static int schema_errors(void)
{
    int bad = 0;
    bad |= expect_error("layer {\n  name: 'c1'\n  convolution_param {\n    kernal_size: 3\n  }\n}",
                        NET, MOKA_ERR_CONFIG,
                        "t.prototxt:4:5: layer 'c1': unknown field 'kernal_size' in "
                        "ConvolutionParameter (did you mean 'kernel_size'?)");
    bad |= expect_error("num_ouptut: 3", CONV, MOKA_ERR_CONFIG,
                        "unknown field 'num_ouptut' in ConvolutionParameter (did you mean "
                        "'num_output'?)");
    bad |= expect_error("Num_Output: 3", CONV, MOKA_ERR_CONFIG, "(did you mean 'num_output'?)");
    /* Far from every field name: no suggestion. */
    bad |= expect_error("completely_unrelated: 3", CONV, MOKA_ERR_CONFIG,
                        "unknown field 'completely_unrelated' in ConvolutionParameter");
    {
        moka_err err = {0};
        moka_pt_doc *doc = NULL;
        CHECK_STATUS(parse("zz: 3", CONV, &doc, &err), MOKA_ERR_CONFIG);
        CHECK(strstr(err.msg, "did you mean") == NULL);
    }
    bad |= expect_error("num_output: 1\n\n  num_output: 2", CONV, MOKA_ERR_CONFIG,
                        "3:3: field 'num_output' in ConvolutionParameter given twice (first at "
                        "line 1)");
    bad |= expect_error("weight_filler { } weight_filler { }", CONV, MOKA_ERR_CONFIG,
                        "1:19: field 'weight_filler' in ConvolutionParameter given twice");
    bad |= expect_error("num_output: \"abc\"", CONV, MOKA_ERR_CONFIG,
                        "1:1: expected an integer for 'num_output' (uint32), got \"abc\"");
    bad |= expect_error("num_output: 1.5", CONV, MOKA_ERR_CONFIG,
                        "expected an integer for 'num_output' (uint32), got 1.5");
    bad |= expect_error("num_output: 3f", CONV, MOKA_ERR_CONFIG,
                        "expected an integer for 'num_output' (uint32), got 3f");
    bad |= expect_error("num_output: abc", CONV, MOKA_ERR_CONFIG,
                        "expected an integer for 'num_output' (uint32), got 'abc'");
    bad |= expect_error("num_output: -1", CONV, MOKA_ERR_CONFIG,
                        "value -1 is out of range for 'num_output' (uint32)");
    bad |= expect_error("num_output: 4294967296", CONV, MOKA_ERR_CONFIG,
                        "value 4294967296 is out of range for 'num_output' (uint32)");
    bad |= expect_error("axis: 2147483648", CONV, MOKA_ERR_CONFIG,
                        "value 2147483648 is out of range for 'axis' (int32)");
    bad |= expect_error("axis: -2147483649", CONV, MOKA_ERR_CONFIG, "out of range for 'axis'");
    bad |= expect_error("random_seed: 9223372036854775808", SOLVER, MOKA_ERR_CONFIG,
                        "out of range for 'random_seed' (int64)");
    bad |= expect_error("random_seed: 99999999999999999999999", SOLVER, MOKA_ERR_CONFIG,
                        "out of range for 'random_seed' (int64)");
    bad |= expect_error("axis: 09", CONV, MOKA_ERR_CONFIG, "a leading 0 means octal");
    bad |= expect_error("base_lr: 'x'", SOLVER, MOKA_ERR_CONFIG,
                        "expected a number for 'base_lr' (float), got \"x\"");
    bad |= expect_error("base_lr: fast", SOLVER, MOKA_ERR_CONFIG,
                        "expected a number for 'base_lr' (float), got 'fast'");
    bad |= expect_error("base_lr: 1e39", SOLVER, MOKA_ERR_CONFIG,
                        "value 1e39 is out of range for 'base_lr' (float)");
    bad |= expect_error("double_data: 1e400", &caffe__blob_proto__descriptor, MOKA_ERR_CONFIG,
                        "out of range for 'double_data' (double)");
    bad |= expect_error("base_lr: 0x", SOLVER, MOKA_ERR_CONFIG, "invalid number '0x'");
    bad |= expect_error("bias_term: 2", CONV, MOKA_ERR_CONFIG,
                        "expected true or false for 'bias_term' (bool), got 2");
    bad |= expect_error("bias_term: yes", CONV, MOKA_ERR_CONFIG,
                        "expected true or false for 'bias_term' (bool), got 'yes'");
    bad |= expect_error("bias_term: 'true'", CONV, MOKA_ERR_CONFIG,
                        "expected true or false for 'bias_term' (bool), got \"true\"");
    bad |= expect_error("pool: MAXX", &caffe__pooling_parameter__descriptor, MOKA_ERR_CONFIG,
                        "1:1: unknown value 'MAXX' for 'pool' in PoolingParameter (expected one "
                        "of: MAX, AVE, STOCHASTIC)");
    bad |= expect_error("pool: 7", &caffe__pooling_parameter__descriptor, MOKA_ERR_CONFIG,
                        "unknown value 7 for 'pool' in PoolingParameter");
    bad |= expect_error("pool: \"MAX\"", &caffe__pooling_parameter__descriptor, MOKA_ERR_CONFIG,
                        "enum values are written without quotes");
    bad |= expect_error("pool: max", &caffe__pooling_parameter__descriptor, MOKA_ERR_CONFIG,
                        "unknown value 'max' for 'pool'");
    bad |= expect_error("name: conv1", LAYER, MOKA_ERR_CONFIG,
                        "expected a quoted string for 'name' (string), got 'conv1'");
    bad |= expect_error("name: 5", LAYER, MOKA_ERR_CONFIG,
                        "expected a quoted string for 'name' (string), got 5");
    bad |= expect_error("convolution_param: 5", LAYER, MOKA_ERR_CONFIG,
                        "expected a message for 'convolution_param' (ConvolutionParameter), got 5");
    bad |= expect_error("name: 'x' convolution_param: 'a'", LAYER, MOKA_ERR_CONFIG,
                        "layer 'x': expected a message for 'convolution_param'");
    bad |= expect_error("num_output { }", CONV, MOKA_ERR_CONFIG,
                        "expected a value for 'num_output' (uint32), got a message");
    bad |= expect_error("include { phase: TRIAN }", LAYER, MOKA_ERR_CONFIG,
                        "1:11: unknown value 'TRIAN' for 'phase' in NetStateRule (expected one "
                        "of: TRAIN, TEST)");
    return bad;
}

static int unsupported_fields(void)
{
    int bad = 0;
    bad |= expect_error("name: 'n'\nlayers {\n  name: 'conv1'\n  type: CONVOLUTION\n}", NET,
                        MOKA_ERR_UNSUPPORTED,
                        "t.prototxt:2:1: V1 'layers' (old Caffe format) is not supported; upgrade "
                        "the net with Caffe's upgrade_net_proto_text, or rename to 'layer' with "
                        "string types (e.g. type: \"Convolution\")");
    bad |= expect_error("base_lr: 0.1\nsnapshot_diff: true", SOLVER, MOKA_ERR_UNSUPPORTED,
                        "t.prototxt:2:1: field 'snapshot_diff' in SolverParameter is not supported "
                        "by moka (");
    bad |= expect_error("debug_info: true", SOLVER, MOKA_ERR_UNSUPPORTED,
                        "field 'debug_info' in SolverParameter is not supported by moka");
    bad |= expect_error("debug_info: false", NET, MOKA_ERR_UNSUPPORTED,
                        "field 'debug_info' in NetParameter is not supported by moka");
    bad |= expect_error("layer { name: 'fc' blobs { data: 1 } }", NET, MOKA_ERR_UNSUPPORTED,
                        "1:20: layer 'fc': field 'blobs' in LayerParameter is not supported by "
                        "moka");
    bad |= expect_error("layer { param { share_mode: STRICT } }", NET, MOKA_ERR_UNSUPPORTED,
                        "field 'share_mode' in ParamSpec is not supported by moka");
    /* The V1 field inside a solver's inline net is caught too. */
    bad |= expect_error("net_param { layers { name: 'x' } }", SOLVER, MOKA_ERR_UNSUPPORTED,
                        "1:13: V1 'layers' (old Caffe format) is not supported");
    /* The deprecated solver_type enum is accepted: the solver reads it. */
    moka_err err = {0};
    moka_pt_doc *doc;
    CHECK_OK(parse("solver_type: ADAM", SOLVER, &doc, &err));
    CHECK(strcmp(moka_pt_str(moka_pt_root(doc), "solver_type"), "ADAM") == 0);
    moka_pt_doc_free(doc);
    CHECK(moka_schema_unsupported("SolverParameter", "snapshot_diff") != NULL);
    CHECK(moka_schema_unsupported("ParamSpec", "share_mode") != NULL);
    CHECK(moka_schema_unsupported("SolverParameter", "base_lr") == NULL);
    CHECK(moka_schema_unsupported("NoSuchMessage", "x") == NULL);
    CHECK(moka_schema_unsupported(NULL, NULL) == NULL);
    return bad;
}

static int parse_file_reports_missing_files(void)
{
    moka_err err = {0};
    moka_pt_doc *doc = (moka_pt_doc *)1;
    CHECK_STATUS(moka_pt_parse_file("no/such/x.prototxt", NET, &doc, &err), MOKA_ERR_IO);
    CHECK(strcmp(err.msg, "cannot open 'no/such/x.prototxt': No such file or directory") == 0);
    CHECK(doc == NULL);
    CHECK_STATUS(moka_pt_parse_file(".", NET, &doc, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "'.'");

    /* A real file: messages carry its path. */
    const char *path = "test_prototxt_tmp.prototxt";
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    fputs("name: 'n'\nlayer {\n  name: 'a'\n  bottom: x\n}\n", f);
    fclose(f);
    CHECK_STATUS(moka_pt_parse_file(path, NET, &doc, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "test_prototxt_tmp.prototxt:4:3: layer 'a': expected a quoted string "
                            "for 'bottom' (string), got 'x'");
    f = fopen(path, "wb");
    CHECK(f != NULL);
    fputs("name: 'n'\nlayer { name: 'a' bottom: 'x' }\n", f);
    fclose(f);
    CHECK_OK(moka_pt_parse_file(path, NET, &doc, &err));
    CHECK(strcmp(moka_pt_root(doc)->file, path) == 0);
    CHECK(strcmp(moka_pt_str_at(moka_pt_msg(moka_pt_root(doc), "layer"), "bottom", 0), "x") == 0);
    moka_pt_doc_free(doc);
    remove(path);
    return 0;
}

/* Deterministic garbage: random bytes drawn mostly from the grammar's own alphabet, so the
 * parser gets deep into its states. Each input must parse or fail with a one-line message. */
static int random_inputs_fail_cleanly(void)
{
    static const char alphabet[] = "{}<>[]:,;-'\"\\#\n .0123456789exfn_ablyr";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char text[96];
    for (int iter = 0; iter < 20000; iter++) {
        const int n = iter % 96;
        for (int i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text[i] = (x >> 32) % 8 == 0 ? (char)(x >> 40)
                                          : alphabet[(x >> 24) % (sizeof alphabet - 1)];
        }
        moka_err err = {0};
        moka_pt_doc *doc = NULL;
        const moka_status st = moka_pt_parse(text, n, "g", iter % 2 ? NET : SOLVER, &doc, &err);
        if (st == MOKA_OK) {
            CHECK(doc != NULL);
            moka_pt_doc_free(doc);
        } else {
            CHECK(st == MOKA_ERR_CONFIG || st == MOKA_ERR_UNSUPPORTED);
            CHECK(doc == NULL);
            CHECK(strncmp(err.msg, "g:", 2) == 0);
            CHECK(strchr(err.msg, '\n') == NULL);
        }
    }
    return 0;
}

MOKA_TEST_MAIN(comments_separators_and_message_syntaxes, list_syntax,
               strings_escapes_and_concatenation, numbers, identifiers_bools_and_enums,
               defaults_from_the_schema, implicit_sub_messages, nested_and_repeated_with_positions,
               input_need_not_be_nul_terminated, syntax_errors, depth_is_limited, schema_errors,
               unsupported_fields, parse_file_reports_missing_files, random_inputs_fail_cleanly)
