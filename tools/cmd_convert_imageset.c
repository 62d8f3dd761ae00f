/* tools/cmd_convert_imageset.c -- `moka convert_imageset [flags] ROOT LIST DB`: Caffe's
 * convert_imageset tool. LIST holds "path label" lines; image ROOT + path (concatenated, as in
 * Caffe) becomes the record
 *
 *   key   "%08d_<path>"  (d = the entry's position in the, possibly shuffled, list)
 *   value Datum { channels, height, width, data: the (C, H, W) uint8 pixels, B G R planes for
 *                 colour (OpenCV's order), label }
 *   or, with --encoded, Datum { data: the bytes of a PNG/JPEG file, encoded: true, label }
 *
 * as Caffe's ReadImageToDatum builds it: an encoded record keeps the file's own bytes when the
 * image is not resized and its extension is the wanted encoding, and otherwise holds the
 * decoded (and resized) image encoded anew. Images are decoded either way, so a corrupt file is
 * found here. Unlike Caffe, which logs and skips an unreadable image, moka stops with an error
 * naming the list file and line. The DB is written under a temporary name and renamed when
 * complete; an existing DB is an error.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/rng.h"
#include "io/datum.h"
#include "io/db.h"
#include "io/image.h"

static const char *const cmd = "convert_imageset";

typedef struct opts {
    bool shuffle, gray, encoded, check_size;
    long resize_h, resize_w;
    const char *encode_type; /* "" when not given */
} opts;

/* Reads a whole file into *out (malloc'ed). */
static moka_status read_file(const char *path, uint8_t **out, int64_t *nbytes, moka_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return moka_errf(err, MOKA_ERR_IO, "'%s': cannot open", path);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return moka_errf(err, MOKA_ERR_NOMEM, "'%s': out of memory", path);
            }
            buf = nb;
        }
        const size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    const int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return moka_errf(err, MOKA_ERR_IO, "'%s': read error", path);
    }
    *out = buf;
    *nbytes = (int64_t)len;
    return MOKA_OK;
}

/* The lower-cased extension of path (after the last '.'), or "" when it has none. */
static void extension(const char *path, char *ext, size_t n)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    ext[0] = '\0';
    if (!dot || (slash && slash > dot)) return;
    size_t i = 0;
    for (const char *p = dot + 1; *p && i + 1 < n; p++) ext[i++] = (char)tolower((unsigned char)*p);
    ext[i] = '\0';
}

/* The serialized Datum of one image; *val is malloc'ed. Sets *c, *h, *w to the raw record's
 * shape (0 for encoded records, which, as in Caffe, do not store it). */
static moka_status image_datum(const opts *o, const char *path, int label, uint8_t **val,
                               int64_t *nbytes, int *c, int *h, int *w, moka_err *err)
{
    uint8_t *file = NULL, *pix = NULL, *enc = NULL;
    int64_t file_nbytes = 0;
    moka_status st = read_file(path, &file, &file_nbytes, err);
    if (st != MOKA_OK) return st;
    st = moka_image_decode(file, file_nbytes, o->gray ? 1 : 3, &pix, c, h, w, err);
    if (st != MOKA_OK) {
        moka_err_prefix(err, "'%s'", path);
        goto done;
    }
    const bool resize = o->resize_h > 0 && o->resize_w > 0;
    if (resize && (*h != o->resize_h || *w != o->resize_w)) {
        uint8_t *r = NULL;
        st = moka_image_resize(pix, *c, *h, *w, (int)o->resize_h, (int)o->resize_w, &r, err);
        if (st != MOKA_OK) goto done;
        free(pix);
        pix = r;
        *h = (int)o->resize_h;
        *w = (int)o->resize_w;
    }
    moka_datum d = {.label = label};
    if (o->encoded) {
        char ext[16];
        extension(path, ext, sizeof ext);
        const char *type = o->encode_type[0] ? o->encode_type : ext;
        if (!resize && strcmp(ext, type) == 0) {
            d.data = file; /* the file's own bytes, as Caffe's ReadFileToDatum */
            d.data_nbytes = file_nbytes;
        } else {
            if (strcmp(type, "png") != 0 && strcmp(type, "jpg") != 0 && strcmp(type, "jpeg") != 0) {
                st = moka_errf(err, MOKA_ERR_UNSUPPORTED,
                               "'%s': cannot encode as '%s' (moka encodes png and jpg; pass "
                               "--encode_type)",
                               path, type);
                goto done;
            }
            int64_t n = 0;
            st = moka_image_encode(pix, *c, *h, *w, type, &enc, &n, err);
            if (st != MOKA_OK) goto done;
            d.data = enc;
            d.data_nbytes = n;
        }
        d.encoded = true;
        *c = *h = *w = 0;
    } else {
        d.channels = *c;
        d.height = *h;
        d.width = *w;
        d.data = pix;
        d.data_nbytes = (int64_t)*c * *h * *w;
    }
    st = moka_datum_encode(&d, val, nbytes, err);
done:
    free(enc);
    free(pix);
    free(file);
    return st;
}

static int convert(const opts *o, const char *root, const char *list_path, const char *db_path)
{
    moka_err err = {0};
    moka_image_list list = {0};
    moka_db_writer *w = NULL;
    uint8_t *val = NULL;
    char *path = NULL, *key = NULL;
    int64_t *order = NULL;
    int rc = 1;

    if (moka_image_list_read(list_path, &list, &err) != MOKA_OK) {
        rc = moka_cli_fail(cmd, &err);
        goto done;
    }
    const int64_t n = list.count;
    if (n > 99999999) {
        fprintf(stderr, "moka %s: '%s' holds %lld entries; keys have room for 99999999\n", cmd,
                list_path, (long long)n);
        goto done;
    }
    order = malloc(sizeof *order * (size_t)n);
    if (!order) goto nomem;
    for (int64_t i = 0; i < n; i++) order[i] = i;
    if (o->shuffle) {
        /* A fixed seed, so a conversion can be repeated exactly (Caffe draws a random one). */
        moka_rng rng;
        moka_rng_seed(&rng, 0x6d6f6b61, 0);
        moka_rng_shuffle(&rng, order, n);
        fprintf(stderr, "moka %s: shuffling data\n", cmd);
    }
    fprintf(stderr, "moka %s: a total of %lld images\n", cmd, (long long)n);
    if (moka_db_writer_create(db_path, &w, &err) != MOKA_OK) {
        rc = moka_cli_fail(cmd, &err);
        goto done;
    }
    int c0 = -1, h0 = -1, w0 = -1;
    for (int64_t k = 0; k < n; k++) {
        const moka_image_entry *e = &list.entries[order[k]];
        const size_t plen = strlen(root) + strlen(e->path) + 1;
        free(path);
        free(key);
        path = malloc(plen);
        key = malloc(strlen(e->path) + 16);
        if (!path || !key) goto nomem;
        snprintf(path, plen, "%s%s", root, e->path);
        snprintf(key, strlen(e->path) + 16, "%08lld_%s", (long long)k, e->path);
        int64_t nbytes = 0;
        int c, h, wd;
        free(val);
        val = NULL;
        if (image_datum(o, path, e->label, &val, &nbytes, &c, &h, &wd, &err) != MOKA_OK) {
            moka_err_prefix(&err, "%s:%d", list_path, e->line);
            rc = moka_cli_fail(cmd, &err);
            goto done;
        }
        if (o->check_size && !o->encoded) {
            if (c0 < 0) {
                c0 = c, h0 = h, w0 = wd;
            } else if (c != c0 || h != h0 || wd != w0) {
                fprintf(stderr,
                        "moka %s: %s:%d: '%s' is %d x %d x %d but the first image is %d x %d x "
                        "%d (--check_size)\n",
                        cmd, list_path, e->line, path, c, h, wd, c0, h0, w0);
                goto done;
            }
        }
        if (moka_db_writer_put(w, key, val, nbytes, &err) != MOKA_OK) {
            rc = moka_cli_fail(cmd, &err);
            goto done;
        }
        if ((k + 1) % 1000 == 0)
            fprintf(stderr, "moka %s: processed %lld files\n", cmd, (long long)(k + 1));
    }
    moka_db_writer *committing = w;
    w = NULL; /* commit frees it, whatever it returns */
    if (moka_db_writer_commit(committing, &err) != MOKA_OK) {
        rc = moka_cli_fail(cmd, &err);
        goto done;
    }
    fprintf(stderr, "moka %s: processed %lld files into '%s'\n", cmd, (long long)n, db_path);
    rc = 0;
    goto done;
nomem:
    fprintf(stderr, "moka %s: out of memory\n", cmd);
done:
    free(val);
    free(path);
    free(key);
    free(order);
    moka_db_writer_abort(w);
    moka_image_list_deinit(&list);
    return rc;
}

/* Takes the boolean flag `name` out of argv: --name, --name=true|false|1|0 or --noname (gflags'
 * forms, as Caffe's tools accept them). Returns -1 for a bad value (printed), else 0. */
static int take_bool(int *argc, char **argv, const char *name, bool *out)
{
    const size_t len = strlen(name);
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) continue;
        a += 2;
        bool value;
        if (strcmp(a, name) == 0) {
            value = true;
        } else if (strncmp(a, "no", 2) == 0 && strcmp(a + 2, name) == 0) {
            value = false;
        } else if (strncmp(a, name, len) == 0 && a[len] == '=') {
            const char *v = a + len + 1;
            if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
                value = true;
            else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
                value = false;
            else {
                moka_cli_usage_error(cmd, "%s: want true or false", argv[i]);
                return -1;
            }
        } else {
            continue;
        }
        *out = value;
        memmove(argv + i, argv + i + 1, sizeof *argv * (size_t)(*argc - i - 1));
        (*argc)--;
        i--;
    }
    return 0;
}

int cmd_convert_imageset(int argc, char **argv)
{
    opts o = {.encode_type = ""};
    if (take_bool(&argc, argv, "shuffle", &o.shuffle) || take_bool(&argc, argv, "gray", &o.gray) ||
        take_bool(&argc, argv, "encoded", &o.encoded) ||
        take_bool(&argc, argv, "check_size", &o.check_size))
        return 2;
    flag flags[] = {
        {"resize_height", NULL}, {"resize_width", NULL}, {"encode_type", NULL}, {"backend", NULL}};
    const char *pos[3];
    int npos;
    bool help;
    int rc = moka_cli_parse_flags(cmd, argc, argv, flags, 4, pos, &npos, 3, &help);
    if (rc) return rc;
    if (help) {
        printf("usage: moka convert_imageset [flags] ROOT LIST DB\n"
               "  Converts the images of LIST ('path label' lines; image = ROOT + path) to an\n"
               "  LMDB of Caffe Datums with keys %%08d_<path>, as Caffe's convert_imageset does.\n"
               "  DB must not exist yet.\n"
               "  --shuffle            shuffle the list (with a fixed seed) before converting\n"
               "  --gray               store one gray channel instead of BGR colour\n"
               "  --resize_height=H    resize every image to H x W (bilinear, as OpenCV);\n"
               "  --resize_width=W     give both, or neither\n"
               "  --check_size         fail unless all raw records have the same size\n"
               "  --encoded            store PNG/JPEG bytes instead of raw pixels\n"
               "  --encode_type=png|jpg  the encoding (default: each file's own extension)\n"
               "  --backend=lmdb       the only backend moka writes\n");
        return 0;
    }
    if (flags[3].value && strcmp(flags[3].value, "lmdb") != 0)
        return moka_cli_usage_error(cmd, "--backend=%s is not supported: moka writes lmdb only",
                                    flags[3].value);
    if (flags[0].value && moka_cli_parse_int(cmd, "resize_height", flags[0].value, 0,
                                             MOKA_IMAGE_MAX_SIDE, &o.resize_h))
        return 2;
    if (flags[1].value && moka_cli_parse_int(cmd, "resize_width", flags[1].value, 0,
                                             MOKA_IMAGE_MAX_SIDE, &o.resize_w))
        return 2;
    if ((o.resize_h > 0) != (o.resize_w > 0))
        return moka_cli_usage_error(cmd, "%s",
                                    "give --resize_height and --resize_width together (Caffe "
                                    "ignores one given alone)");
    if (flags[2].value) {
        o.encode_type = flags[2].value;
        if (strcmp(o.encode_type, "png") != 0 && strcmp(o.encode_type, "jpg") != 0 &&
            strcmp(o.encode_type, "jpeg") != 0)
            return moka_cli_usage_error(cmd, "--encode_type=%s: want png or jpg", o.encode_type);
        o.encoded = true; /* as in Caffe, where an encode_type alone encodes too */
    }
    if (npos != 3) return moka_cli_usage_error(cmd, "%s", "want three arguments: ROOT LIST DB");
    return convert(&o, pos[0], pos[1], pos[2]);
}
