/* tests/unit/test_transfer.c -- `moka cp` planning without a network (src/io/transfer.h).
 *
 * MD5 against RFC 1321's test vectors; file ETags (plain and md5-of-md5s "-N") against values
 * computed independently with Python's hashlib on the same bytes; rsync/qsctl trailing-slash
 * mapping; single-object destinations; unsafe key names; plans for cp, -f, --sync, --delete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/transfer.h"
#include "test.h"

static void md5_hex(const char *s, char out[33])
{
    moka_transfer_md5 m;
    uint8_t d[16];
    moka_transfer_md5_init(&m);
    /* Fed in uneven pieces so that the block buffering is exercised. */
    const size_t n = strlen(s);
    for (size_t i = 0; i < n; i += 7) moka_transfer_md5_update(&m, s + i, n - i < 7 ? n - i : 7);
    moka_transfer_md5_final(&m, d);
    moka_transfer_hex(d, out);
}

static int test_md5_vectors(void)
{
    char h[33];
    md5_hex("", h);
    CHECK(strcmp(h, "d41d8cd98f00b204e9800998ecf8427e") == 0);
    md5_hex("abc", h);
    CHECK(strcmp(h, "900150983cd24fb0d6963f7d28e17f72") == 0);
    md5_hex("message digest", h);
    CHECK(strcmp(h, "f96b697d7cb7938d525a2f31aaf161d0") == 0);
    md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            h);
    CHECK(strcmp(h, "57edf4a22be3c955ac49da2e2107b67a") == 0);
    md5_hex("abcdefghijklmnopqrstuvwxyz", h);
    CHECK(strcmp(h, "c3fcd3d76192e4007dfb496cca67e13b") == 0);
    return 0;
}

static int write_pattern(const char *path, long n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    for (long i = 0; i < n; i++) fputc((int)((i * 7 + 3) % 251), f);
    return fclose(f) != 0;
}

static int test_file_etags(void)
{
    moka_err err = {0};
    char path[] = "/tmp/moka_transfer_XXXXXX";
    const int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    char e[48];
    /* 11 bytes: plain MD5, and 3 parts of 4, 4, 3 bytes (hashlib). */
    CHECK(write_pattern(path, 11) == 0);
    CHECK_OK(moka_transfer_file_etag(path, 0, e, sizeof e, &err));
    CHECK(strcmp(e, "4e20fb9e1ef5f854da04bd344092b6b5") == 0);
    CHECK_OK(moka_transfer_file_etag(path, 4, e, sizeof e, &err));
    CHECK(strcmp(e, "c170961806d30ff5965572cba5531c05-3") == 0);
    /* An empty file as one empty part: md5(md5("")). */
    CHECK(write_pattern(path, 0) == 0);
    CHECK_OK(moka_transfer_file_etag(path, 4, e, sizeof e, &err));
    CHECK(strcmp(e, "59adb24ef3cdbe0297f05b395827453f-1") == 0);

    /* 6 MiB + 5 bytes: what S3 reports after a multipart upload with 5 MiB parts. The
     * comparison finds the part size by itself (5 MiB gives 2 parts) with no hint. */
    const long n = 6L * 1024 * 1024 + 5;
    CHECK(write_pattern(path, n) == 0);
    moka_transfer_cmp c;
    CHECK_OK(moka_transfer_compare(path, n, n, "\"6996c7c1db8387a810373def62477de9-2\"", 0, &c,
                                   &err));
    CHECK_EQ(c, MOKA_CMP_SAME_MULTIPART);
    /* One changed digest: different. 8 MiB parts give the 1-part form. */
    CHECK_OK(moka_transfer_compare(path, n, n, "6996c7c1db8387a810373def62477de8-2", 0, &c, &err));
    CHECK_EQ(c, MOKA_CMP_DIFFERENT);
    CHECK_OK(moka_transfer_compare(path, n, n, "4becca9391635c99dd3b25bf14bae9c3-1", 0, &c, &err));
    CHECK_EQ(c, MOKA_CMP_SAME_MULTIPART);
    /* 6 parts of a 6 MiB file: no candidate part size gives 6 parts -> sizes decide. */
    CHECK_OK(moka_transfer_compare(path, n, n, "4becca9391635c99dd3b25bf14bae9c3-6", 0, &c, &err));
    CHECK_EQ(c, MOKA_CMP_SAME_SIZE_ONLY);
    /* ... unless the uploader's part size is known: then the recomputed ETag decides. */
    CHECK_OK(moka_transfer_compare(path, n, n, "4becca9391635c99dd3b25bf14bae9c3-7", 1 << 20, &c,
                                   &err));
    CHECK_EQ(c, MOKA_CMP_DIFFERENT);
    /* Plain MD5 ETags, quoted or upper case; a size difference needs no hashing. */
    CHECK_OK(moka_transfer_compare(path, n, n, "\"D9ACCAAF923248AE02359D9500E5F1CC\"", 0, &c,
                                   &err));
    CHECK_EQ(c, MOKA_CMP_SAME_MD5);
    CHECK_OK(moka_transfer_compare(path, n, n, "d9accaaf923248ae02359d9500e5f1cd", 0, &c, &err));
    CHECK_EQ(c, MOKA_CMP_DIFFERENT);
    CHECK_OK(moka_transfer_compare(path, n, n + 1, "d9accaaf923248ae02359d9500e5f1cc", 0, &c,
                                   &err));
    CHECK_EQ(c, MOKA_CMP_DIFFERENT);
    CHECK_OK(moka_transfer_compare(path, n, n, "not-an-md5", 0, &c, &err));
    CHECK_EQ(c, MOKA_CMP_SAME_SIZE_ONLY);
    unlink(path);
    CHECK_STATUS(moka_transfer_file_etag(path, 0, e, sizeof e, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "cannot open");

    char out[96];
    CHECK_EQ(moka_transfer_etag_parts("\"abcdef0123456789abcdef0123456789-12\"", out, sizeof out),
             12);
    CHECK(strcmp(out, "abcdef0123456789abcdef0123456789-12") == 0);
    CHECK_EQ(moka_transfer_etag_parts("W/\"abcdef0123456789abcdef0123456789\"", out, sizeof out),
             0);
    CHECK_EQ(moka_transfer_etag_parts("abcdef0123456789abcdef012345678", out, sizeof out), -1);
    CHECK_EQ(moka_transfer_etag_parts("abcdef0123456789abcdef0123456789-", out, sizeof out), -1);
    return 0;
}

static int root_is(const char *src, const char *walk_want, const char *rel_want)
{
    moka_err err = {0};
    char w[256], r[256];
    CHECK_OK(moka_transfer_root(src, w, sizeof w, r, sizeof r, &err));
    if (strcmp(w, walk_want) != 0 || strcmp(r, rel_want) != 0)
        TEST_FAIL_("root('%s') = ('%s', '%s'), want ('%s', '%s')", src, w, r, walk_want,
                   rel_want);
    return 0;
}

static int test_mapping(void)
{
    /* cp -r qs://mydata/ data/: the bucket's contents; cp -r s3://b/dir data/: dir itself. */
    CHECK(root_is("", "", "") == 0);
    CHECK(root_is("dir", "dir/", "dir/") == 0);
    CHECK(root_is("dir/", "dir/", "") == 0);
    CHECK(root_is("a/b/dir", "a/b/dir/", "dir/") == 0);
    CHECK(root_is("a/b/dir/", "a/b/dir/", "") == 0);
    CHECK(root_is(".", "./", "") == 0);
    CHECK(root_is("../x/..", "../x/../", "") == 0);
    CHECK(root_is("/abs/data", "/abs/data/", "data/") == 0);

    moka_err err = {0};
    char out[256];
    CHECK_OK(moka_transfer_join("data/", "a/b.jpg", out, sizeof out, &err));
    CHECK(strcmp(out, "data/a/b.jpg") == 0);
    CHECK_OK(moka_transfer_join("", "a/b.jpg", out, sizeof out, &err));
    CHECK(strcmp(out, "a/b.jpg") == 0);
    CHECK_OK(moka_transfer_join("/", "x", out, sizeof out, &err));
    CHECK(strcmp(out, "/x") == 0);
    CHECK_STATUS(moka_transfer_join("data", "a/b.jpg", out, 8, &err), MOKA_ERR_INVALID_ARG);

    /* Single objects: to a directory (trailing '/' or existing) or to a file name. */
    CHECK_OK(moka_transfer_single_dest("a/b.jpg", "data/", false, out, sizeof out, &err));
    CHECK(strcmp(out, "data/b.jpg") == 0);
    CHECK_OK(moka_transfer_single_dest("a/b.jpg", "data", true, out, sizeof out, &err));
    CHECK(strcmp(out, "data/b.jpg") == 0);
    CHECK_OK(moka_transfer_single_dest("a/b.jpg", "c.jpg", false, out, sizeof out, &err));
    CHECK(strcmp(out, "c.jpg") == 0);
    CHECK_OK(moka_transfer_single_dest("/tmp/x/file.bin", "", false, out, sizeof out, &err));
    CHECK(strcmp(out, "file.bin") == 0);
    CHECK_OK(moka_transfer_single_dest("file.bin", "up/", false, out, sizeof out, &err));
    CHECK(strcmp(out, "up/file.bin") == 0);

    CHECK(moka_transfer_rel_ok("a/b c+d=e&f/\xc3\xa9.jpg"));
    CHECK(!moka_transfer_rel_ok("../etc/passwd"));
    CHECK(!moka_transfer_rel_ok("a/../../x"));
    CHECK(!moka_transfer_rel_ok("/abs"));
    CHECK(!moka_transfer_rel_ok("a//b"));
    CHECK(!moka_transfer_rel_ok("dir/"));
    CHECK(!moka_transfer_rel_ok("./a"));
    CHECK(!moka_transfer_rel_ok(""));
    return 0;
}

/* "Same content" for the plan tests: equal sizes and equal ETag strings. */
static moka_status same_etag(void *user, const moka_transfer_entry *s,
                             const moka_transfer_entry *d, bool *same, moka_err *err)
{
    (void)err;
    (*(int *)user)++;
    *same = s->size == d->size && strcmp(s->etag, d->etag) == 0;
    return MOKA_OK;
}

static const moka_transfer_item *find(const moka_transfer_item *it, int64_t n, const char *rel)
{
    for (int64_t i = 0; i < n; i++)
        if (strcmp(it[i].rel, rel) == 0) return &it[i];
    return NULL;
}

static int test_plans(void)
{
    moka_err err = {0};
    moka_transfer_entry src[] = {{"a.txt", 3, "e1"}, {"d/b.txt", 4, "e2"}, {"c.txt", 5, "e3"}};
    moka_transfer_entry dst[] = {{"dir/d/b.txt", 4, "e2"},
                                 {"dir/c.txt", 5, "XX"},
                                 {"dir/old.txt", 1, "e9"},
                                 {"other/z", 1, "e9"}};
    moka_transfer_item *it;
    int64_t n;
    int calls = 0;
    moka_transfer_opts o = {0};

    /* Plain cp into an empty destination: everything copied, under the prefix. */
    CHECK_OK(moka_transfer_plan(src, 3, NULL, 0, "dir/", &o, same_etag, &calls, &it, &n, &err));
    CHECK_EQ(n, 3);
    CHECK(strcmp(it[0].rel, "dir/a.txt") == 0 && strcmp(it[0].src_rel, "a.txt") == 0);
    CHECK(strcmp(it[2].rel, "dir/d/b.txt") == 0 && it[2].op == MOKA_OP_COPY);
    moka_transfer_plan_free(it, n);

    /* Plain cp onto a differing file: an error naming it. */
    CHECK_STATUS(moka_transfer_plan(src, 3, dst, 4, "dir/", &o, same_etag, &calls, &it, &n, &err),
                 MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "dir/c.txt exists and differs");
    CHECK_CONTAINS(err.msg, "-f");

    /* -f: everything copied, nothing compared. */
    o.force = true;
    calls = 0;
    CHECK_OK(moka_transfer_plan(src, 3, dst, 4, "dir/", &o, same_etag, &calls, &it, &n, &err));
    CHECK_EQ(calls, 0);
    CHECK_EQ(n, 3);
    for (int64_t i = 0; i < n; i++) CHECK(it[i].op == MOKA_OP_COPY);
    CHECK(find(it, n, "dir/c.txt")->overwrite && !find(it, n, "dir/a.txt")->overwrite);
    moka_transfer_plan_free(it, n);

    /* --sync --delete: the equal file skipped, the changed one copied, the extra one deleted,
     * and names outside the copied directory left alone. */
    o = (moka_transfer_opts){.sync = true, .delete_extra = true};
    calls = 0;
    CHECK_OK(moka_transfer_plan(src, 3, dst, 4, "dir/", &o, same_etag, &calls, &it, &n, &err));
    CHECK_EQ(calls, 2);
    CHECK_EQ(n, 4);
    CHECK_EQ(find(it, n, "dir/a.txt")->op, MOKA_OP_COPY);
    CHECK_EQ(find(it, n, "dir/d/b.txt")->op, MOKA_OP_SKIP);
    CHECK_EQ(find(it, n, "dir/c.txt")->op, MOKA_OP_COPY);
    CHECK_EQ(find(it, n, "dir/old.txt")->op, MOKA_OP_DELETE);
    CHECK(find(it, n, "other/z") == NULL);
    moka_transfer_plan_free(it, n);

    /* --sync with an identical destination: nothing to copy. */
    moka_transfer_entry same_dst[] = {{"c.txt", 5, "e3"}, {"a.txt", 3, "e1"}, {"d/b.txt", 4, "e2"}};
    o = (moka_transfer_opts){.sync = true};
    CHECK_OK(moka_transfer_plan(src, 3, same_dst, 3, "", &o, same_etag, &calls, &it, &n, &err));
    CHECK_EQ(n, 3);
    for (int64_t i = 0; i < n; i++) CHECK_EQ(it[i].op, MOKA_OP_SKIP);
    moka_transfer_plan_free(it, n);
    return 0;
}

static int test_local_listing(void)
{
    moka_err err = {0};
    char root[] = "/tmp/moka_transfer_dir_XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char p[512];
    snprintf(p, sizeof p, "%s/x/y/deep file+=&.bin", root);
    CHECK_OK(moka_transfer_mkdirs_for(p, &err));
    CHECK(write_pattern(p, 9) == 0);
    char q[512];
    snprintf(q, sizeof q, "%s/empty", root);
    CHECK(write_pattern(q, 0) == 0);
    char r[512];
    snprintf(r, sizeof r, "%s/x/skip.moka-part", root);
    CHECK(write_pattern(r, 3) == 0);
    moka_transfer_entry *e;
    int64_t n;
    CHECK_OK(moka_transfer_list_local(root, &e, &n, &err));
    CHECK_EQ(n, 2);
    CHECK(strcmp(e[0].rel, "empty") == 0 && e[0].size == 0);
    CHECK(strcmp(e[1].rel, "x/y/deep file+=&.bin") == 0 && e[1].size == 9);
    moka_transfer_entries_free(e, n);
    unlink(p), unlink(q), unlink(r);
    snprintf(p, sizeof p, "%s/x/y", root);
    rmdir(p);
    snprintf(p, sizeof p, "%s/x", root);
    rmdir(p);
    rmdir(root);
    CHECK_OK(moka_transfer_list_local(root, &e, &n, &err));
    CHECK_EQ(n, 0);
    return 0;
}

int main(void)
{
    int failed = 0;
    failed += test_md5_vectors();
    failed += test_file_etags();
    failed += test_mapping();
    failed += test_plans();
    failed += test_local_listing();
    printf("%d failed\n", failed);
    return failed ? 1 : 0;
}
