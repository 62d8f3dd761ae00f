/* src/io/prototxt.c -- protobuf text format reader: tokenizer, parser to a position-keeping
 * tree, validation against protobuf-c descriptors, and the typed accessors of prototxt.h.
 *
 * Two passes. parse_fields() builds the syntax tree (fields, sub-messages, raw scalar tokens)
 * and reports syntax errors; validate_msg() then resolves every node against the message
 * descriptor, converts its value once (stored beside the public node) and reports schema
 * errors. Every node and string lives in the document's arena, so a failed parse frees
 * everything with one moka_pt_doc_free. Reference: protobuf's text_format.cc and tokenizer.cc
 * for the grammar (field separators, bool spellings, octal/hex, the float 'f' suffix).
 */
#include "io/prototxt.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "io/caffe_schema.h"
#include "moka/log.h"

/* Nested messages deeper than this are rejected: no Caffe file comes close, and the limit keeps
 * the recursive parser's stack use bounded on hostile input. */
#define PT_MAX_DEPTH 100

/* A node as allocated: the public part first, then the value that validation converted once,
 * so accessors never re-parse text. */
typedef struct pt_node {
    moka_pt_node pub;
    union {
        int64_t i;
        uint64_t u;
        double d;
        bool b;
    } v;
    const ProtobufCEnumValue *ev; /* enum fields: the value given */
} pt_node;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_chunk;

/* The empty message handed out by moka_pt_msg for an absent field, one per field descriptor. */
typedef struct implicit_msg {
    struct implicit_msg *next;
    const ProtobufCFieldDescriptor *fd;
    pt_node *node;
} implicit_msg;

struct moka_pt_doc {
    arena_chunk *chunks;
    pt_node *root;
    const char *file;
    implicit_msg *implicits;
};

/* ---- arena ------------------------------------------------------------------------------- */

#define ARENA_CHUNK 16384

/* Zeroed, 16-byte aligned memory that lives until moka_pt_doc_free; NULL when out of memory. */
static void *arena_alloc(moka_pt_doc *d, size_t n)
{
    if (n > SIZE_MAX / 2) return NULL;
    n = (n + 15) & ~(size_t)15;
    arena_chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        /* Large requests get a chunk of their own behind the current one, so the space left
         * in the current chunk is not wasted. */
        const size_t cap = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
        arena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (c && cap == n) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            d->chunks = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(moka_pt_doc *d, const char *s, size_t n)
{
    char *p = arena_alloc(d, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- misuse by moka's own code ----------------------------------------------------------- */

/* A wrong field name or accessor type in moka's source is a programmer bug that user input
 * cannot reach (validation already checked the input), so it stops the program loudly. */
static _Noreturn void misuse(const char *fmt, ...) MOKA_PRINTF(1, 2);
static _Noreturn void misuse(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    moka_logf(MOKA_LOG_ERROR, "prototxt", "moka bug: %s", msg);
    abort();
}

/* ---- tokenizer --------------------------------------------------------------------------- */

typedef enum tok_kind { T_EOF, T_IDENT, T_NUMBER, T_STRING, T_PUNCT } tok_kind;

typedef struct token {
    tok_kind kind;
    const char *s; /* raw text; for strings the span between the quotes */
    size_t len;
    int line, col;
    char punct;
} token;

typedef struct parser {
    const char *p, *end, *line_start;
    int line;
    moka_pt_doc *doc;
    moka_err *err;
    token peeked;
    bool has_peek;
    char *buf; /* scratch for concatenating strings */
    size_t buf_cap;
} parser;

static int clamp_int(int64_t v)
{
    return v > 0x7fffffff ? 0x7fffffff : (int)v;
}

static moka_status perr(parser *ps, moka_status code, int line, int col, const char *fmt, ...)
    MOKA_PRINTF(5, 6);
static moka_status perr(parser *ps, moka_status code, int line, int col, const char *fmt, ...)
{
    if (!ps->err) return code;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return moka_errf(ps->err, code, "%s:%d:%d: %s", ps->doc->file, line, col, msg);
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || is_digit(c);
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
    return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Prints a token for "got ..." in messages: 5, 'conv1', "a string", '}', end of file. */
static const char *describe(const token *t, char *buf, size_t n)
{
    const int max = 40;
    const int len = t->len > (size_t)max ? max : (int)t->len;
    const char *more = t->len > (size_t)max ? "..." : "";
    switch (t->kind) {
    case T_EOF: snprintf(buf, n, "end of file"); break;
    case T_IDENT: snprintf(buf, n, "'%.*s%s'", len, t->s, more); break;
    case T_NUMBER: snprintf(buf, n, "%.*s%s", len, t->s, more); break;
    case T_STRING: snprintf(buf, n, "\"%.*s%s\"", len, t->s, more); break;
    case T_PUNCT: snprintf(buf, n, "'%c'", t->punct); break;
    }
    return buf;
}

static moka_status lex(parser *ps, token *t)
{
    const char *p = ps->p, *end = ps->end;
    /* Whitespace and '#' comments. */
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' ||
                           *p == '\f')) {
            if (*p == '\n') {
                ps->line++;
                ps->line_start = p + 1;
            }
            p++;
        }
        if (p < end && *p == '#') {
            while (p < end && *p != '\n') p++;
            continue;
        }
        break;
    }
    memset(t, 0, sizeof *t);
    t->line = ps->line;
    t->col = clamp_int(p - ps->line_start + 1);
    t->s = p;
    if (p >= end) {
        t->kind = T_EOF;
        ps->p = p;
        return MOKA_OK;
    }
    const char c = *p;
    if (is_ident_start(c)) {
        const char *q = p;
        while (q < end && is_ident_char(*q)) q++;
        t->kind = T_IDENT;
        t->len = (size_t)(q - p);
        ps->p = q;
        return MOKA_OK;
    }
    if (is_digit(c) || (c == '.' && p + 1 < end && is_digit(p[1]))) {
        const char *q = p;
        if (c == '0' && q + 1 < end && (q[1] == 'x' || q[1] == 'X')) {
            q += 2;
            const char *digits = q;
            while (q < end && is_hex(*q)) q++;
            if (q == digits) goto bad_number; /* "0x" alone */
        } else {
            while (q < end && is_digit(*q)) q++;
            if (q < end && *q == '.') {
                q++;
                while (q < end && is_digit(*q)) q++;
            }
            if (q < end && (*q == 'e' || *q == 'E')) {
                q++;
                if (q < end && (*q == '+' || *q == '-')) q++;
                if (q >= end || !is_digit(*q)) goto bad_number;
                while (q < end && is_digit(*q)) q++;
            }
            if (q < end && (*q == 'f' || *q == 'F')) q++;
        }
        if (q < end && (is_ident_char(*q) || *q == '.')) goto bad_number;
        t->kind = T_NUMBER;
        t->len = (size_t)(q - p);
        ps->p = q;
        return MOKA_OK;
    bad_number:
        while (q < end && (is_ident_char(*q) || *q == '.')) q++;
        {
            const int n = q - p > 40 ? 40 : (int)(q - p);
            return perr(ps, MOKA_ERR_CONFIG, t->line, t->col, "invalid number '%.*s%s'", n, p,
                        q - p > 40 ? "..." : "");
        }
    }
    if (c == '"' || c == '\'') {
        /* Find the closing quote; a string may not cross a line, as in protobuf. */
        const char *q = p + 1;
        while (q < end && *q != c && *q != '\n') {
            if (*q == '\\' && q + 1 < end && q[1] != '\n') q++;
            q++;
        }
        if (q >= end || *q != c)
            return perr(ps, MOKA_ERR_CONFIG, t->line, t->col,
                        "unterminated string: the %s opened here is not closed on this line",
                        c == '"' ? "'\"'" : "\"'\"");
        t->kind = T_STRING;
        t->s = p + 1;
        t->len = (size_t)(q - p - 1);
        t->punct = c;
        ps->p = q + 1;
        return MOKA_OK;
    }
    if (c && strchr("{}<>[]:,;-", c)) {
        t->kind = T_PUNCT;
        t->punct = c;
        t->len = 1;
        ps->p = p + 1;
        return MOKA_OK;
    }
    if (c > 32 && c < 127)
        return perr(ps, MOKA_ERR_CONFIG, t->line, t->col, "unexpected character '%c'", c);
    return perr(ps, MOKA_ERR_CONFIG, t->line, t->col,
                "unexpected byte 0x%02x (is this a text prototxt file?)", (unsigned char)c);
}

static moka_status next_tok(parser *ps, token *t)
{
    if (ps->has_peek) {
        *t = ps->peeked;
        ps->has_peek = false;
        return MOKA_OK;
    }
    return lex(ps, t);
}

static moka_status peek_tok(parser *ps, token *t)
{
    if (!ps->has_peek) {
        MOKA_TRY(lex(ps, &ps->peeked));
        ps->has_peek = true;
    }
    *t = ps->peeked;
    return MOKA_OK;
}

static bool is_punct(const token *t, char c)
{
    return t->kind == T_PUNCT && t->punct == c;
}

/* ---- parser ------------------------------------------------------------------------------ */

static pt_node *new_node(parser *ps, const token *name)
{
    pt_node *n = arena_alloc(ps->doc, sizeof *n);
    if (!n) return NULL;
    n->pub.name = arena_strndup(ps->doc, name->s, name->len);
    if (!n->pub.name) return NULL;
    n->pub.file = ps->doc->file;
    n->pub.line = name->line;
    n->pub.col = name->col;
    n->pub.doc = ps->doc;
    return n;
}

static void append(moka_pt_node *parent, moka_pt_node **tail, pt_node *n)
{
    if (*tail)
        (*tail)->next = &n->pub;
    else
        parent->child = &n->pub;
    *tail = &n->pub;
}

static moka_status nomem(parser *ps)
{
    return moka_errf(ps->err, MOKA_ERR_NOMEM, "%s: out of memory while parsing", ps->doc->file);
}

static bool buf_reserve(parser *ps, size_t n)
{
    if (n <= ps->buf_cap) return true;
    size_t cap = ps->buf_cap ? ps->buf_cap : 256;
    while (cap < n) cap *= 2;
    char *b = realloc(ps->buf, cap);
    if (!b) return false;
    ps->buf = b;
    ps->buf_cap = cap;
    return true;
}

/* Appends the unescaped bytes of string token t to ps->buf at *n. */
static moka_status unescape(parser *ps, const token *t, size_t *n)
{
    if (!buf_reserve(ps, *n + t->len + 1)) return nomem(ps);
    char *o = ps->buf + *n;
    const char *s = t->s, *e = t->s + t->len;
    while (s < e) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        /* The string's column plus the escape's offset: strings never cross lines. */
        const int col = clamp_int(t->col + 1 + (s - t->s));
        s++; /* the tokenizer guarantees a character follows a backslash */
        const char c = *s++;
        switch (c) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'a': *o++ = '\a'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'v': *o++ = '\v'; break;
        case '\\': *o++ = '\\'; break;
        case '\'': *o++ = '\''; break;
        case '"': *o++ = '"'; break;
        case '?': *o++ = '?'; break;
        case 'x':
        case 'X': {
            if (s >= e || !is_hex(*s))
                return perr(ps, MOKA_ERR_CONFIG, t->line, col,
                            "invalid escape '\\%c' in string: expected hex digits", c);
            int v = hex_val(*s++);
            if (s < e && is_hex(*s)) v = v * 16 + hex_val(*s++);
            *o++ = (char)v;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0';
                for (int k = 0; k < 2 && s < e && *s >= '0' && *s <= '7'; k++)
                    v = v * 8 + (*s++ - '0');
                if (v > 255)
                    return perr(ps, MOKA_ERR_CONFIG, t->line, col,
                                "octal escape in string is larger than \\377");
                *o++ = (char)v;
                break;
            }
            if (c > 32 && c < 127)
                return perr(ps, MOKA_ERR_CONFIG, t->line, col, "invalid escape '\\%c' in string",
                            c);
            return perr(ps, MOKA_ERR_CONFIG, t->line, col,
                        "invalid escape (backslash followed by byte 0x%02x) in string",
                        (unsigned char)c);
        }
    }
    *n = (size_t)(o - ps->buf);
    return MOKA_OK;
}

static bool is_inf_nan_word(const token *t)
{
    static const char *const words[] = {"inf", "infinity", "nan"};
    for (size_t w = 0; w < 3; w++) {
        const size_t n = strlen(words[w]);
        if (t->len != n) continue;
        size_t i = 0;
        while (i < n && (t->s[i] | 0x20) == words[w][i]) i++;
        if (i == n) return true;
    }
    return false;
}

/* value := NUMBER | '-' NUMBER | '-' inf/nan | IDENT | STRING { STRING } */
static moka_status parse_value(parser *ps, pt_node *node)
{
    token t;
    char got[64];
    MOKA_TRY(next_tok(ps, &t));
    if (t.kind == T_STRING) {
        size_t n = 0;
        MOKA_TRY(unescape(ps, &t, &n));
        for (;;) {
            token more;
            MOKA_TRY(peek_tok(ps, &more));
            if (more.kind != T_STRING) break;
            MOKA_TRY(next_tok(ps, &more));
            MOKA_TRY(unescape(ps, &more, &n));
        }
        node->pub.kind = MOKA_PT_STRING;
        node->pub.text = arena_strndup(ps->doc, ps->buf, n);
        node->pub.len = (int64_t)n;
        return node->pub.text ? MOKA_OK : nomem(ps);
    }
    if (t.kind == T_NUMBER || t.kind == T_IDENT) {
        node->pub.kind = t.kind == T_NUMBER ? MOKA_PT_NUMBER : MOKA_PT_IDENT;
        node->pub.text = arena_strndup(ps->doc, t.s, t.len);
        node->pub.len = (int64_t)t.len;
        return node->pub.text ? MOKA_OK : nomem(ps);
    }
    if (is_punct(&t, '-')) {
        token num;
        MOKA_TRY(next_tok(ps, &num));
        if (num.kind != T_NUMBER && !(num.kind == T_IDENT && is_inf_nan_word(&num)))
            return perr(ps, MOKA_ERR_CONFIG, num.line, num.col,
                        "expected a number after '-' for '%s', got %s", node->pub.name,
                        describe(&num, got, sizeof got));
        char *text = arena_alloc(ps->doc, num.len + 2);
        if (!text) return nomem(ps);
        text[0] = '-';
        memcpy(text + 1, num.s, num.len);
        node->pub.kind = MOKA_PT_NUMBER;
        node->pub.text = text;
        node->pub.len = (int64_t)num.len + 1;
        return MOKA_OK;
    }
    return perr(ps, MOKA_ERR_CONFIG, t.line, t.col, "expected a value for '%s', got %s",
                node->pub.name, describe(&t, got, sizeof got));
}

static moka_status parse_fields(parser *ps, moka_pt_node *parent, char close, int oline, int ocol,
                                int depth);

/* Opens a sub-message whose '{' or '<' was just read as token `open`. */
static moka_status parse_submsg(parser *ps, pt_node *node, const token *open, int depth)
{
    if (depth >= PT_MAX_DEPTH)
        return perr(ps, MOKA_ERR_CONFIG, open->line, open->col,
                    "messages are nested more than %d levels deep", PT_MAX_DEPTH);
    node->pub.kind = MOKA_PT_MESSAGE;
    return parse_fields(ps, &node->pub, open->punct == '{' ? '}' : '>', open->line, open->col,
                        depth + 1);
}

/* list := '[' [ elem { ',' elem } ] ']', elem := value | '{' message '}' | '<' message '>'.
 * Each element becomes a sibling node named like the field, at the field name's position. */
static moka_status parse_list(parser *ps, moka_pt_node *parent, moka_pt_node **tail,
                              const token *name, const token *open, int depth)
{
    token t;
    char got[64];
    MOKA_TRY(peek_tok(ps, &t));
    if (is_punct(&t, ']')) return next_tok(ps, &t);
    for (;;) {
        pt_node *n = new_node(ps, name);
        if (!n) return nomem(ps);
        append(parent, tail, n);
        MOKA_TRY(peek_tok(ps, &t));
        if (is_punct(&t, '{') || is_punct(&t, '<')) {
            MOKA_TRY(next_tok(ps, &t));
            MOKA_TRY(parse_submsg(ps, n, &t, depth));
        } else {
            MOKA_TRY(parse_value(ps, n));
        }
        MOKA_TRY(next_tok(ps, &t));
        if (is_punct(&t, ']')) return MOKA_OK;
        if (t.kind == T_EOF)
            return perr(ps, MOKA_ERR_CONFIG, t.line, t.col,
                        "unexpected end of file: '[' opened at line %d col %d is not closed",
                        open->line, open->col);
        if (!is_punct(&t, ','))
            return perr(ps, MOKA_ERR_CONFIG, t.line, t.col,
                        "expected ',' or ']' in the list for '%s', got %s", n->pub.name,
                        describe(&t, got, sizeof got));
    }
}

/* message := { field [',' | ';'] } up to `close` ('}' or '>'), or to end of file when close is
 * 0 (the document root). (oline, ocol) is where the message was opened. */
static moka_status parse_fields(parser *ps, moka_pt_node *parent, char close, int oline, int ocol,
                                int depth)
{
    moka_pt_node *tail = NULL;
    char got[64];
    for (;;) {
        token t;
        MOKA_TRY(next_tok(ps, &t));
        if (t.kind == T_EOF) {
            if (!close) return MOKA_OK;
            return perr(ps, MOKA_ERR_CONFIG, t.line, t.col,
                        "unexpected end of file: '%c' opened at line %d col %d is not closed",
                        close == '}' ? '{' : '<', oline, ocol);
        }
        if (is_punct(&t, '}') || is_punct(&t, '>')) {
            if (t.punct == close) return MOKA_OK;
            if (!close)
                return perr(ps, MOKA_ERR_CONFIG, t.line, t.col, "unexpected '%c': no '%c' is open",
                            t.punct, t.punct == '}' ? '{' : '<');
            return perr(ps, MOKA_ERR_CONFIG, t.line, t.col,
                        "'%c' does not close the '%c' opened at line %d col %d", t.punct,
                        close == '}' ? '{' : '<', oline, ocol);
        }
        if (is_punct(&t, '['))
            return perr(ps, MOKA_ERR_CONFIG, t.line, t.col,
                        "extension and Any fields ('[...]') are not supported");
        if (t.kind != T_IDENT)
            return perr(ps, MOKA_ERR_CONFIG, t.line, t.col, "expected a field name, got %s",
                        describe(&t, got, sizeof got));
        pt_node *n = new_node(ps, &t);
        if (!n) return nomem(ps);
        token u;
        MOKA_TRY(peek_tok(ps, &u));
        const bool colon = is_punct(&u, ':');
        if (colon) {
            MOKA_TRY(next_tok(ps, &u));
            MOKA_TRY(peek_tok(ps, &u));
        }
        if (is_punct(&u, '{') || is_punct(&u, '<')) {
            MOKA_TRY(next_tok(ps, &u));
            append(parent, &tail, n);
            MOKA_TRY(parse_submsg(ps, n, &u, depth));
        } else if (colon && is_punct(&u, '[')) {
            MOKA_TRY(next_tok(ps, &u));
            MOKA_TRY(parse_list(ps, parent, &tail, &t, &u, depth));
        } else if (!colon) {
            return perr(ps, MOKA_ERR_CONFIG, u.line, u.col,
                        "expected ':' or '{' after field name '%s', got %s", n->pub.name,
                        describe(&u, got, sizeof got));
        } else {
            append(parent, &tail, n);
            MOKA_TRY(parse_value(ps, n));
        }
        MOKA_TRY(peek_tok(ps, &u));
        if (is_punct(&u, ',') || is_punct(&u, ';')) MOKA_TRY(next_tok(ps, &u));
    }
}

/* ---- validation -------------------------------------------------------------------------- */

typedef struct validator {
    moka_pt_doc *doc;
    moka_err *err;
    locale_t c_locale; /* strtod must read '.' as the decimal point whatever the app's locale */
} validator;

static moka_status verr(validator *v, moka_status code, const moka_pt_node *at,
                        const char *layer, const char *fmt, ...) MOKA_PRINTF(5, 6);
static moka_status verr(validator *v, moka_status code, const moka_pt_node *at,
                        const char *layer, const char *fmt, ...)
{
    if (!v->err) return code;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (layer)
        return moka_errf(v->err, code, "%s:%d:%d: layer '%.64s': %s", at->file, at->line, at->col,
                         layer, msg);
    return moka_errf(v->err, code, "%s:%d:%d: %s", at->file, at->line, at->col, msg);
}

static const char *type_name(const ProtobufCFieldDescriptor *fd)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32: return "int32";
    case PROTOBUF_C_TYPE_SINT32: return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32";
    case PROTOBUF_C_TYPE_INT64: return "int64";
    case PROTOBUF_C_TYPE_SINT64: return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64";
    case PROTOBUF_C_TYPE_UINT32: return "uint32";
    case PROTOBUF_C_TYPE_FIXED32: return "fixed32";
    case PROTOBUF_C_TYPE_UINT64: return "uint64";
    case PROTOBUF_C_TYPE_FIXED64: return "fixed64";
    case PROTOBUF_C_TYPE_FLOAT: return "float";
    case PROTOBUF_C_TYPE_DOUBLE: return "double";
    case PROTOBUF_C_TYPE_BOOL: return "bool";
    case PROTOBUF_C_TYPE_STRING: return "string";
    case PROTOBUF_C_TYPE_BYTES: return "bytes";
    case PROTOBUF_C_TYPE_ENUM: return ((const ProtobufCEnumDescriptor *)fd->descriptor)->short_name;
    case PROTOBUF_C_TYPE_MESSAGE:
        return ((const ProtobufCMessageDescriptor *)fd->descriptor)->short_name;
    }
    return "?";
}

/* The value of a scalar node for "got ..." in messages. */
static const char *describe_node(const moka_pt_node *n, char *buf, size_t size)
{
    if (n->kind == MOKA_PT_MESSAGE) return "a message";
    token t = {.s = n->text, .len = (size_t)n->len};
    t.kind = n->kind == MOKA_PT_STRING ? T_STRING : n->kind == MOKA_PT_IDENT ? T_IDENT : T_NUMBER;
    /* Strings hold unescaped bytes: show only up to the first unprintable one. */
    if (t.kind == T_STRING)
        for (size_t i = 0; i < t.len; i++)
            if ((unsigned char)t.s[i] < 32 || (unsigned char)t.s[i] >= 127) {
                t.len = i;
                break;
            }
    return describe(&t, buf, size);
}

/* Reads an integer token: optional '-', then decimal, 0x hex or 0 octal digits. Returns 0 and
 * the sign and magnitude, 1 if the text is not integer syntax (a float, a word), 2 on overflow
 * of 64 bits, 3 for a leading 0 followed by non-octal digits ("09"). */
static int parse_integer(const char *s, bool *neg, uint64_t *mag)
{
    *neg = *s == '-';
    if (*neg) s++;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (s[0] == '0' && s[1]) {
        base = 8;
    }
    if (!*s) return 1;
    uint64_t m = 0;
    bool overflow = false, bad_octal = false;
    for (; *s; s++) {
        int d;
        if (base == 16 && is_hex(*s))
            d = hex_val(*s);
        else if (is_digit(*s))
            d = *s - '0';
        else
            return 1;
        if (base == 8 && d > 7) bad_octal = true;
        if (m > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) overflow = true;
        m = m * (uint64_t)base + (uint64_t)d;
    }
    if (bad_octal) return 3;
    if (overflow) return 2;
    *mag = m;
    return 0;
}

static bool is_integer_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return true;
    default: return false;
    }
}

static bool is_unsigned_type(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_UINT32 || t == PROTOBUF_C_TYPE_FIXED32 ||
           t == PROTOBUF_C_TYPE_UINT64 || t == PROTOBUF_C_TYPE_FIXED64;
}

static moka_status convert_integer(validator *v, pt_node *n, const ProtobufCFieldDescriptor *fd,
                                   const char *layer)
{
    const moka_pt_node *p = &n->pub;
    char got[64];
    bool neg = false;
    uint64_t mag = 0;
    const int r = p->kind == MOKA_PT_NUMBER ? parse_integer(p->text, &neg, &mag) : 1;
    if (r == 1)
        return verr(v, MOKA_ERR_CONFIG, p, layer, "expected an integer for '%s' (%s), got %s",
                    fd->name, type_name(fd), describe_node(p, got, sizeof got));
    if (r == 3)
        return verr(v, MOKA_ERR_CONFIG, p, layer,
                    "invalid integer %.40s for '%s': a leading 0 means octal", p->text, fd->name);
    uint64_t max_pos;
    uint64_t max_neg; /* largest magnitude allowed when negative */
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        max_pos = INT32_MAX;
        max_neg = (uint64_t)INT32_MAX + 1;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        max_pos = UINT32_MAX;
        max_neg = 0;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        max_pos = UINT64_MAX;
        max_neg = 0;
        break;
    default:
        max_pos = INT64_MAX;
        max_neg = (uint64_t)INT64_MAX + 1;
        break;
    }
    if (r == 2 || (neg ? mag > max_neg : mag > max_pos))
        return verr(v, MOKA_ERR_CONFIG, p, layer, "value %.40s%s is out of range for '%s' (%s)",
                    p->text, p->len > 40 ? "..." : "", fd->name, type_name(fd));
    if (is_unsigned_type(fd->type))
        n->v.u = mag;
    else
        n->v.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return MOKA_OK;
}

static moka_status convert_float(validator *v, pt_node *n, const ProtobufCFieldDescriptor *fd,
                                 const char *layer)
{
    moka_pt_node *p = &n->pub;
    char got[64];
    const token word = {.kind = T_IDENT, .s = p->text, .len = (size_t)p->len};
    if (p->kind == MOKA_PT_IDENT && is_inf_nan_word(&word)) {
        /* protobuf spells these inf/infinity/nan in any case; strtod reads all of them. */
        p->kind = MOKA_PT_NUMBER;
    }
    if (p->kind != MOKA_PT_NUMBER)
        return verr(v, MOKA_ERR_CONFIG, p, layer, "expected a number for '%s' (%s), got %s",
                    fd->name, type_name(fd), describe_node(p, got, sizeof got));
    bool neg;
    uint64_t mag;
    const int r = parse_integer(p->text, &neg, &mag);
    double d;
    if (r == 0) {
        d = neg ? -(double)mag : (double)mag;
    } else if (r == 3 || (r == 2 && strpbrk(p->text, "xX"))) {
        return verr(v, MOKA_ERR_CONFIG, p, layer, "invalid number %.40s for '%s' (%s)", p->text,
                    fd->name, type_name(fd));
    } else {
        locale_t old = v->c_locale ? uselocale(v->c_locale) : (locale_t)0;
        char *end;
        errno = 0;
        d = strtod(p->text, &end);
        const int e = errno;
        if (old) uselocale(old);
        const bool tail_ok = !*end || ((*end == 'f' || *end == 'F') && !end[1]);
        if (!tail_ok || end == p->text)
            return verr(v, MOKA_ERR_CONFIG, p, layer, "invalid number %.40s for '%s' (%s)",
                        p->text, fd->name, type_name(fd));
        if (e == ERANGE && isinf(d))
            return verr(v, MOKA_ERR_CONFIG, p, layer, "value %.40s%s is out of range for '%s' (%s)",
                        p->text, p->len > 40 ? "..." : "", fd->name, type_name(fd));
    }
    if (fd->type == PROTOBUF_C_TYPE_FLOAT && isfinite(d) && fabs(d) > FLT_MAX)
        return verr(v, MOKA_ERR_CONFIG, p, layer, "value %.40s%s is out of range for '%s' (float)",
                    p->text, p->len > 40 ? "..." : "", fd->name);
    n->v.d = fd->type == PROTOBUF_C_TYPE_FLOAT ? (double)(float)d : d;
    return MOKA_OK;
}

/* "MAX, AVE, STOCHASTIC", shortened with "..." if it does not fit. */
static const char *enum_names(const ProtobufCEnumDescriptor *ed, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < ed->n_values; i++) {
        const int w = snprintf(buf + n, size - n, "%s%s", i ? ", " : "", ed->values[i].name);
        if (w < 0 || (size_t)w >= size - n) {
            if (size > 5) strcpy(buf + (n + 5 < size ? n : size - 5), ", ...");
            break;
        }
        n += (size_t)w;
    }
    return buf;
}

static moka_status convert_enum(validator *v, pt_node *n, const ProtobufCFieldDescriptor *fd,
                                const ProtobufCMessageDescriptor *md, const char *layer)
{
    const moka_pt_node *p = &n->pub;
    const ProtobufCEnumDescriptor *ed = fd->descriptor;
    char got[64], names[240];
    const ProtobufCEnumValue *ev = NULL;
    if (p->kind == MOKA_PT_IDENT) {
        ev = protobuf_c_enum_descriptor_get_value_by_name(ed, p->text);
    } else if (p->kind == MOKA_PT_NUMBER) {
        bool neg;
        uint64_t mag;
        if (parse_integer(p->text, &neg, &mag) == 0 &&
            (neg ? mag <= (uint64_t)INT32_MAX + 1 : mag <= INT32_MAX))
            ev = protobuf_c_enum_descriptor_get_value(ed, neg ? (int)(0 - (int64_t)mag) : (int)mag);
    } else if (p->kind == MOKA_PT_STRING) {
        return verr(v, MOKA_ERR_CONFIG, p, layer,
                    "unknown value %s for '%s' in %s (enum values are written without quotes; "
                    "expected one of: %s)",
                    describe_node(p, got, sizeof got), fd->name, md->short_name,
                    enum_names(ed, names, sizeof names));
    }
    if (!ev)
        return verr(v, MOKA_ERR_CONFIG, p, layer, "unknown value %s for '%s' in %s (expected one "
                    "of: %s)", describe_node(p, got, sizeof got), fd->name, md->short_name,
                    enum_names(ed, names, sizeof names));
    n->ev = ev;
    n->v.i = ev->value;
    return MOKA_OK;
}

static moka_status convert_bool(validator *v, pt_node *n, const ProtobufCFieldDescriptor *fd,
                                const char *layer)
{
    const moka_pt_node *p = &n->pub;
    char got[64];
    if (p->kind == MOKA_PT_IDENT) {
        if (!strcmp(p->text, "true") || !strcmp(p->text, "True") || !strcmp(p->text, "t")) {
            n->v.b = true;
            return MOKA_OK;
        }
        if (!strcmp(p->text, "false") || !strcmp(p->text, "False") || !strcmp(p->text, "f")) {
            n->v.b = false;
            return MOKA_OK;
        }
    } else if (p->kind == MOKA_PT_NUMBER) {
        bool neg;
        uint64_t mag;
        if (parse_integer(p->text, &neg, &mag) == 0 && !neg && mag <= 1) {
            n->v.b = mag == 1;
            return MOKA_OK;
        }
    }
    return verr(v, MOKA_ERR_CONFIG, p, layer, "expected true or false for '%s' (bool), got %s",
                fd->name, describe_node(p, got, sizeof got));
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Optimal-string-alignment distance (Levenshtein plus adjacent swaps), case-insensitive. Both
 * strings are at most 64 bytes (the caller checks). */
static int edit_distance(const char *a, const char *b)
{
    enum { W = 66 };
    int rows[3][W];
    const int la = (int)strlen(a), lb = (int)strlen(b);
    int *pp = rows[0], *prev = rows[1], *cur = rows[2];
    for (int j = 0; j <= lb; j++) prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        for (int j = 1; j <= lb; j++) {
            const int cost = lower(a[i - 1]) != lower(b[j - 1]);
            int d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            if (prev[j - 1] + cost < d) d = prev[j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && pp[j - 2] + 1 < d)
                d = pp[j - 2] + 1;
            cur[j] = d;
        }
        int *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* The field of md closest to `name`, if close enough to be a plausible typo. */
static const char *suggest_field(const ProtobufCMessageDescriptor *md, const char *name)
{
    const size_t len = strlen(name);
    if (len > 64) return NULL;
    const int limit = len <= 3 ? 1 : (int)(len / 3 > 2 ? len / 3 : 2);
    const char *best = NULL;
    int best_d = limit + 1;
    for (unsigned i = 0; i < md->n_fields; i++) {
        const char *f = md->fields[i].name;
        if (strlen(f) > 64) continue;
        const int d = edit_distance(name, f);
        if (d < best_d) {
            best_d = d;
            best = f;
        }
    }
    return best;
}

/* The name of a LayerParameter node (for "layer 'conv1': " in messages), or NULL. */
static const char *layer_name(const moka_pt_node *layer)
{
    for (const moka_pt_node *c = layer->child; c; c = c->next)
        if (c->kind == MOKA_PT_STRING && !strcmp(c->name, "name")) return c->text;
    return NULL;
}

static moka_status validate_msg(validator *v, pt_node *m, const ProtobufCMessageDescriptor *md,
                                const char *layer)
{
    m->pub.msg = md;
    /* Descriptors are compared by name, not address: this file needs no generated header. */
    if (!strcmp(md->name, "caffe.LayerParameter") || !strcmp(md->name, "caffe.V1LayerParameter"))
        layer = layer_name(&m->pub);
    const bool is_net = !strcmp(md->name, "caffe.NetParameter");
    for (moka_pt_node *c = m->pub.child; c; c = c->next) {
        pt_node *n = (pt_node *)c;
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(md,
                                                                                        c->name);
        if (!fd) {
            const char *s = suggest_field(md, c->name);
            if (s)
                return verr(v, MOKA_ERR_CONFIG, c, layer,
                            "unknown field '%.64s' in %s (did you mean '%s'?)", c->name,
                            md->short_name, s);
            return verr(v, MOKA_ERR_CONFIG, c, layer, "unknown field '%.64s' in %s", c->name,
                        md->short_name);
        }
        if (is_net && !strcmp(fd->name, "layers"))
            return verr(v, MOKA_ERR_UNSUPPORTED, c, NULL,
                        "V1 'layers' (old Caffe format) is not supported; upgrade the net with "
                        "Caffe's upgrade_net_proto_text, or rename to 'layer' with string types "
                        "(e.g. type: \"Convolution\")");
        const char *reason = moka_schema_unsupported(md->short_name, fd->name);
        if (reason)
            return verr(v, MOKA_ERR_UNSUPPORTED, c, layer,
                        "field '%s' in %s is not supported by moka (%s)", fd->name,
                        md->short_name, reason);
        if (fd->label != PROTOBUF_C_LABEL_REPEATED)
            for (const moka_pt_node *e = m->pub.child; e != c; e = e->next)
                if (e->field == fd)
                    return verr(v, MOKA_ERR_CONFIG, c, layer,
                                "field '%s' in %s given twice (first at line %d)", fd->name,
                                md->short_name, e->line);
        c->field = fd;
        char got[64];
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (c->kind != MOKA_PT_MESSAGE)
                return verr(v, MOKA_ERR_CONFIG, c, layer,
                            "expected a message for '%s' (%s), got %s; write '%s { ... }'",
                            fd->name, type_name(fd), describe_node(c, got, sizeof got), fd->name);
            MOKA_TRY(validate_msg(v, n, fd->descriptor, layer));
            continue;
        }
        if (c->kind == MOKA_PT_MESSAGE)
            return verr(v, MOKA_ERR_CONFIG, c, layer,
                        "expected a value for '%s' (%s), got a message; write '%s: <value>'",
                        fd->name, type_name(fd), fd->name);
        switch (fd->type) {
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE: MOKA_TRY(convert_float(v, n, fd, layer)); break;
        case PROTOBUF_C_TYPE_BOOL: MOKA_TRY(convert_bool(v, n, fd, layer)); break;
        case PROTOBUF_C_TYPE_ENUM: MOKA_TRY(convert_enum(v, n, fd, md, layer)); break;
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_BYTES:
            if (c->kind != MOKA_PT_STRING)
                return verr(v, MOKA_ERR_CONFIG, c, layer,
                            "expected a quoted string for '%s' (%s), got %s", fd->name,
                            type_name(fd), describe_node(c, got, sizeof got));
            break;
        default: MOKA_TRY(convert_integer(v, n, fd, layer)); break;
        }
    }
    return MOKA_OK;
}

/* ---- documents --------------------------------------------------------------------------- */

void moka_pt_doc_free(moka_pt_doc *doc)
{
    if (!doc) return;
    for (arena_chunk *c = doc->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(doc);
}

moka_status moka_pt_parse(const char *text, int64_t nbytes, const char *file,
                          const ProtobufCMessageDescriptor *type, moka_pt_doc **out, moka_err *err)
{
    if (out) *out = NULL;
    if (!out || !type || nbytes < 0 || (!text && nbytes > 0))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_pt_parse: invalid arguments");
    if (!file) file = "<text>";
    if (!text) text = ""; /* nbytes is 0: an empty document */
    moka_pt_doc *doc = calloc(1, sizeof *doc);
    if (!doc) return moka_errf(err, MOKA_ERR_NOMEM, "%s: out of memory while parsing", file);
    moka_status st = MOKA_ERR_NOMEM;
    parser ps = {.p = text, .end = text + nbytes, .line_start = text, .line = 1, .doc = doc,
                 .err = err};
    doc->file = arena_strndup(doc, file, strlen(file));
    if (!doc->file) {
        st = moka_errf(err, MOKA_ERR_NOMEM, "%s: out of memory while parsing", file);
        goto fail;
    }
    doc->root = arena_alloc(doc, sizeof *doc->root);
    if (!doc->root) {
        st = nomem(&ps);
        goto fail;
    }
    doc->root->pub.name = "";
    doc->root->pub.file = doc->file;
    doc->root->pub.kind = MOKA_PT_MESSAGE;
    doc->root->pub.doc = doc;
    st = parse_fields(&ps, &doc->root->pub, 0, 0, 0, 0);
    if (st != MOKA_OK) goto fail;
    validator v = {.doc = doc, .err = err};
    v.c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    st = validate_msg(&v, doc->root, type, NULL);
    if (v.c_locale) freelocale(v.c_locale);
    if (st != MOKA_OK) goto fail;
    free(ps.buf);
    *out = doc;
    return MOKA_OK;
fail:
    free(ps.buf);
    moka_pt_doc_free(doc);
    return st;
}

moka_status moka_pt_parse_file(const char *path, const ProtobufCMessageDescriptor *type,
                               moka_pt_doc **out, moka_err *err)
{
    if (out) *out = NULL;
    if (!path) return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_pt_parse_file: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return moka_errf(err, MOKA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    moka_status st = MOKA_OK;
    for (;;) {
        if (cap - n < 65536) {
            if (cap > SIZE_MAX / 4) {
                st = moka_errf(err, MOKA_ERR_NOMEM, "'%s' is too large", path);
                goto done;
            }
            const size_t ncap = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                st = moka_errf(err, MOKA_ERR_NOMEM, "out of memory reading '%s'", path);
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        const size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        st = moka_errf(err, MOKA_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto done;
    }
    st = moka_pt_parse(buf, (int64_t)n, path, type, out, err);
done:
    free(buf);
    fclose(f);
    return st;
}

const moka_pt_node *moka_pt_root(const moka_pt_doc *doc)
{
    return doc ? &doc->root->pub : NULL;
}

moka_status moka_pt_errf(moka_err *err, moka_status code, const moka_pt_node *at, const char *fmt,
                         ...)
{
    if (!err) return code;
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at && at->file && at->line > 0)
        return moka_errf(err, code, "%s:%d:%d: %s", at->file, at->line, at->col, msg);
    if (at && at->file) /* the document root: the file, but no line */
        return moka_errf(err, code, "%s: %s", at->file, msg);
    return moka_errf(err, code, "%s", msg);
}

/* ---- accessors --------------------------------------------------------------------------- */

static const ProtobufCFieldDescriptor *lookup(const moka_pt_node *m, const char *field,
                                              const char *fn)
{
    if (!m || !m->msg) misuse("%s('%s'): not a validated message node", fn, field ? field : "");
    const ProtobufCFieldDescriptor *fd =
        field ? protobuf_c_message_descriptor_get_field_by_name(m->msg, field) : NULL;
    if (!fd) misuse("%s: no field '%s' in %s", fn, field ? field : "(null)", m->msg->short_name);
    return fd;
}

static const pt_node *find(const moka_pt_node *m, const ProtobufCFieldDescriptor *fd, int i)
{
    if (i < 0) return NULL;
    for (const moka_pt_node *c = m->child; c; c = c->next)
        if (c->field == fd && i-- == 0) return (const pt_node *)c;
    return NULL;
}

bool moka_pt_has(const moka_pt_node *msg, const char *field)
{
    return find(msg, lookup(msg, field, "moka_pt_has"), 0) != NULL;
}

int moka_pt_count(const moka_pt_node *msg, const char *field)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, "moka_pt_count");
    int n = 0;
    for (const moka_pt_node *c = msg->child; c; c = c->next) n += c->field == fd;
    return n;
}

const moka_pt_node *moka_pt_node_at(const moka_pt_node *msg, const char *field, int i)
{
    const pt_node *n = find(msg, lookup(msg, field, "moka_pt_node_at"), i);
    return n ? &n->pub : NULL;
}

static const ProtobufCEnumValue *enum_default(const ProtobufCFieldDescriptor *fd)
{
    const ProtobufCEnumDescriptor *ed = fd->descriptor;
    if (fd->default_value) {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(ed, *(const int *)fd->default_value);
        if (ev) return ev;
    }
    /* proto2's implicit default is the first value declared; protobuf-c lists values by
     * number, which is the same order for every enum of caffe.proto. */
    return ed->n_values ? &ed->values[0] : NULL;
}

static int64_t int_value(const pt_node *n, const ProtobufCFieldDescriptor *fd, const char *fn)
{
    if (is_integer_type(fd->type)) {
        if (!n) {
            const void *dv = fd->default_value;
            if (!dv) return 0;
            switch (fd->type) {
            case PROTOBUF_C_TYPE_INT32:
            case PROTOBUF_C_TYPE_SINT32:
            case PROTOBUF_C_TYPE_SFIXED32: return *(const int32_t *)dv;
            case PROTOBUF_C_TYPE_UINT32:
            case PROTOBUF_C_TYPE_FIXED32: return *(const uint32_t *)dv;
            case PROTOBUF_C_TYPE_UINT64:
            case PROTOBUF_C_TYPE_FIXED64: return (int64_t) * (const uint64_t *)dv;
            default: return *(const int64_t *)dv;
            }
        }
        return is_unsigned_type(fd->type) ? (int64_t)n->v.u : n->v.i;
    }
    if (fd->type == PROTOBUF_C_TYPE_ENUM) {
        if (n) return n->v.i;
        const ProtobufCEnumValue *ev = enum_default(fd);
        return ev ? ev->value : 0;
    }
    if (fd->type == PROTOBUF_C_TYPE_BOOL) {
        if (n) return n->v.b;
        return fd->default_value ? *(const protobuf_c_boolean *)fd->default_value != 0 : 0;
    }
    misuse("%s: field '%s' is a %s, not an integer or enum", fn, fd->name, type_name(fd));
}

static double float_value(const pt_node *n, const ProtobufCFieldDescriptor *fd, const char *fn)
{
    if (fd->type == PROTOBUF_C_TYPE_FLOAT || fd->type == PROTOBUF_C_TYPE_DOUBLE) {
        if (n) return n->v.d;
        if (!fd->default_value) return 0.0;
        return fd->type == PROTOBUF_C_TYPE_FLOAT ? (double)*(const float *)fd->default_value
                                                 : *(const double *)fd->default_value;
    }
    if (is_integer_type(fd->type)) {
        const int64_t i = int_value(n, fd, fn);
        return is_unsigned_type(fd->type) ? (double)(uint64_t)i : (double)i;
    }
    misuse("%s: field '%s' is a %s, not a number", fn, fd->name, type_name(fd));
}

static const char *str_value(const pt_node *n, const ProtobufCFieldDescriptor *fd, const char *fn)
{
    if (fd->type == PROTOBUF_C_TYPE_STRING) {
        if (n) return n->pub.text;
        return fd->default_value ? (const char *)fd->default_value : "";
    }
    if (fd->type == PROTOBUF_C_TYPE_BYTES) {
        if (n) return n->pub.text;
        /* Bytes defaults are not NUL-terminated and caffe.proto declares none. */
        return "";
    }
    if (fd->type == PROTOBUF_C_TYPE_ENUM) {
        if (n) return n->ev->name;
        const ProtobufCEnumValue *ev = enum_default(fd);
        return ev ? ev->name : "";
    }
    misuse("%s: field '%s' is a %s, not a string or enum", fn, fd->name, type_name(fd));
}

static void check_index(const moka_pt_node *msg, const ProtobufCFieldDescriptor *fd,
                        const pt_node *n, int i, const char *fn)
{
    if (!n)
        misuse("%s: index %d out of range for '%s' in %s (%d given)", fn, i, fd->name,
               msg->msg->short_name, moka_pt_count(msg, fd->name));
}

int64_t moka_pt_int(const moka_pt_node *msg, const char *field)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, "moka_pt_int");
    return int_value(find(msg, fd, 0), fd, "moka_pt_int");
}

double moka_pt_float(const moka_pt_node *msg, const char *field)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, "moka_pt_float");
    return float_value(find(msg, fd, 0), fd, "moka_pt_float");
}

bool moka_pt_bool(const moka_pt_node *msg, const char *field)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, "moka_pt_bool");
    if (fd->type != PROTOBUF_C_TYPE_BOOL)
        misuse("moka_pt_bool: field '%s' is a %s, not a bool", fd->name, type_name(fd));
    return int_value(find(msg, fd, 0), fd, "moka_pt_bool") != 0;
}

const char *moka_pt_str(const moka_pt_node *msg, const char *field)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, "moka_pt_str");
    return str_value(find(msg, fd, 0), fd, "moka_pt_str");
}

int64_t moka_pt_int_at(const moka_pt_node *msg, const char *field, int i)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, "moka_pt_int_at");
    const pt_node *n = find(msg, fd, i);
    check_index(msg, fd, n, i, "moka_pt_int_at");
    return int_value(n, fd, "moka_pt_int_at");
}

double moka_pt_float_at(const moka_pt_node *msg, const char *field, int i)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, "moka_pt_float_at");
    const pt_node *n = find(msg, fd, i);
    check_index(msg, fd, n, i, "moka_pt_float_at");
    return float_value(n, fd, "moka_pt_float_at");
}

const char *moka_pt_str_at(const moka_pt_node *msg, const char *field, int i)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, "moka_pt_str_at");
    const pt_node *n = find(msg, fd, i);
    check_index(msg, fd, n, i, "moka_pt_str_at");
    return str_value(n, fd, "moka_pt_str_at");
}

static const ProtobufCFieldDescriptor *lookup_msg(const moka_pt_node *msg, const char *field,
                                                  const char *fn)
{
    const ProtobufCFieldDescriptor *fd = lookup(msg, field, fn);
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
        misuse("%s: field '%s' is a %s, not a message", fn, fd->name, type_name(fd));
    return fd;
}

const moka_pt_node *moka_pt_msg(const moka_pt_node *msg, const char *field)
{
    const ProtobufCFieldDescriptor *fd = lookup_msg(msg, field, "moka_pt_msg");
    const pt_node *n = find(msg, fd, 0);
    if (n) return &n->pub;
    moka_pt_doc *doc = msg->doc;
    if (!doc) misuse("moka_pt_msg('%s'): node does not belong to a document", field);
    for (implicit_msg *im = doc->implicits; im; im = im->next)
        if (im->fd == fd) return &im->node->pub;
    /* The empty node is made once per field and kept in the document's arena. */
    implicit_msg *im = arena_alloc(doc, sizeof *im);
    pt_node *e = im ? arena_alloc(doc, sizeof *e) : NULL;
    if (!e) misuse("moka_pt_msg('%s'): out of memory", field);
    e->pub.name = fd->name;
    e->pub.kind = MOKA_PT_MESSAGE;
    e->pub.field = fd;
    e->pub.msg = fd->descriptor;
    e->pub.doc = doc;
    im->fd = fd;
    im->node = e;
    im->next = doc->implicits;
    doc->implicits = im;
    return &e->pub;
}

const moka_pt_node *moka_pt_msg_at(const moka_pt_node *msg, const char *field, int i)
{
    const pt_node *n = find(msg, lookup_msg(msg, field, "moka_pt_msg_at"), i);
    return n ? &n->pub : NULL;
}
