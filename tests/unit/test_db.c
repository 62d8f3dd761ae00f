/* tests/unit/test_db.c -- Caffe LMDBs (src/io/db.c): DBs moka writes read back record by record
 * (keys, values, order, wrap-around, seek); a DB written independently by python3-lmdb with Datum
 * bytes made by hand (tests/ref/gen_lmdb_fixture.py, committed under tests/data/lmdb_fixture/)
 * reads back to the values its generator put in; and missing, garbage and truncated DBs are
 * clear errors, never crashes.
 */
/* nftw (cleanup) is an X/Open extension. */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/datum.h"
#include "io/db.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int next;
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/moka_db_XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(1);
        }
    }
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

/* Record i's value: (i % 50) + 1 bytes, byte j = (i * 13 + j) mod 256. */
static int64_t value_of(int64_t i, uint8_t *v)
{
    const int64_t n = i % 50 + 1;
    for (int64_t j = 0; j < n; j++) v[j] = (uint8_t)((i * 13 + j) % 256);
    return n;
}

static int write_db(const char *path, int64_t n)
{
    moka_err err = {0};
    moka_db_writer *w;
    CHECK_OK(moka_db_writer_create(path, &w, &err));
    for (int64_t i = 0; i < n; i++) {
        uint8_t v[64];
        char key[32];
        snprintf(key, sizeof key, "%08lld", (long long)i);
        const int64_t nb = value_of(i, v);
        CHECK_OK(moka_db_writer_put(w, key, v, nb, &err));
    }
    CHECK_OK(moka_db_writer_commit(w, &err));
    return 0;
}

/* Reads the next record and checks it is record i. */
static int expect_record(moka_db_reader *r, int64_t i)
{
    moka_err err = {0};
    const void *val;
    int64_t nb;
    const char *key;
    CHECK_OK(moka_db_reader_next(r, &val, &nb, &key, &err));
    char want_key[32];
    uint8_t want[64];
    snprintf(want_key, sizeof want_key, "%08lld", (long long)i);
    const int64_t want_nb = value_of(i, want);
    if (strcmp(key, want_key) != 0) TEST_FAIL_("key '%s', want '%s'", key, want_key);
    CHECK_EQ(nb, want_nb);
    CHECK(memcmp(val, want, (size_t)nb) == 0);
    return 0;
}

/* No "<path>.tmp.*" directory is left beside `path`. */
static int no_tmp_left(void)
{
    DIR *d = opendir(tmpdir);
    CHECK(d != NULL);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) found++;
    closedir(d);
    CHECK_EQ(found, 0);
    return 0;
}

/* 2500 records: three write transactions (1000 each), read back in order, then wrapping. */
static int written_records_read_back_in_order(void)
{
    moka_err err = {0};
    const char *path = tmp_path("db2500");
    CHECK(!write_db(path, 2500));
    CHECK(!no_tmp_left());
    moka_db_reader *r;
    CHECK_OK(moka_db_reader_open(path, &r, &err));
    CHECK_EQ(moka_db_reader_count(r), 2500);
    for (int64_t i = 0; i < 2500; i++)
        if (expect_record(r, i)) return 1;
    CHECK(!expect_record(r, 0)); /* wrap-around */
    CHECK(!expect_record(r, 1));
    CHECK_OK(moka_db_reader_seek(r, 1234, &err));
    CHECK(!expect_record(r, 1234));
    CHECK(!expect_record(r, 1235));
    CHECK_OK(moka_db_reader_seek(r, 2499, &err));
    CHECK(!expect_record(r, 2499));
    CHECK(!expect_record(r, 0));
    CHECK_OK(moka_db_reader_seek(r, 2500 * 3 + 7, &err)); /* taken modulo the count */
    CHECK(!expect_record(r, 7));
    CHECK_STATUS(moka_db_reader_seek(r, -1, &err), MOKA_ERR_INVALID_ARG);
    moka_db_reader_close(r);
    /* No lock file: the writer and readers work without one. */
    char lock[600];
    snprintf(lock, sizeof lock, "%s/lock.mdb", path);
    struct stat st;
    CHECK(stat(lock, &st) != 0);
    return 0;
}

static int existing_db_is_not_overwritten_and_abort_cleans_up(void)
{
    moka_err err = {0};
    const char *path = tmp_path("db_exists");
    CHECK(!write_db(path, 3));
    moka_db_writer *w = NULL;
    CHECK_STATUS(moka_db_writer_create(path, &w, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "already exists");
    CHECK(w == NULL);

    const char *p2 = tmp_path("db_aborted");
    CHECK_OK(moka_db_writer_create(p2, &w, &err));
    CHECK_OK(moka_db_writer_put(w, "00000000", "x", 1, &err));
    moka_db_writer_abort(w);
    struct stat st;
    CHECK(stat(p2, &st) != 0);
    CHECK(!no_tmp_left());
    moka_db_writer_abort(NULL);
    return 0;
}

static int empty_db_opens_but_has_nothing_to_read(void)
{
    moka_err err = {0};
    const char *path = tmp_path("db_empty");
    CHECK(!write_db(path, 0));
    moka_db_reader *r;
    CHECK_OK(moka_db_reader_open(path, &r, &err));
    CHECK_EQ(moka_db_reader_count(r), 0);
    const void *val;
    int64_t nb;
    CHECK_STATUS(moka_db_reader_next(r, &val, &nb, NULL, &err), MOKA_ERR_IO);
    CHECK_CONTAINS(err.msg, "the LMDB is empty");
    moka_db_reader_close(r);
    return 0;
}

/* tests/data/lmdb_fixture: see tests/ref/gen_lmdb_fixture.py for the formulas checked here. */
static int reads_the_python_lmdb_fixture(void)
{
    moka_err err = {0};
    moka_db_reader *r;
    CHECK_OK(moka_db_reader_open(MOKA_TEST_DATA "/lmdb_fixture", &r, &err));
    CHECK_EQ(moka_db_reader_count(r), 5);
    for (int i = 0; i < 5; i++) {
        const void *val;
        int64_t nb;
        const char *key;
        CHECK_OK(moka_db_reader_next(r, &val, &nb, &key, &err));
        char want_key[32];
        snprintf(want_key, sizeof want_key, "%08d", i);
        if (strcmp(key, want_key) != 0) TEST_FAIL_("key '%s', want '%s'", key, want_key);
        moka_datum d;
        CHECK_OK(moka_datum_decode(val, nb, &d, &err));
        CHECK_EQ(d.channels, 2);
        CHECK_EQ(d.height, 3);
        CHECK_EQ(d.width, 4);
        CHECK_EQ(d.label, i - 1);
        CHECK(!d.encoded);
        if (i <= 2) {
            CHECK_EQ(d.data_nbytes, 24);
            CHECK_EQ(d.float_count, 0);
            for (int j = 0; j < 24; j++) CHECK_EQ(d.data[j], (i * 31 + j * 7) % 256);
        } else {
            CHECK(d.data == NULL);
            CHECK_EQ(d.float_count, 24);
            for (int j = 0; j < 24; j++)
                CHECK(d.float_data[j] == (i == 3 ? j * 0.5f - 3 : j * 0.25f + 1));
        }
    }
    moka_db_reader_close(r);
    return 0;
}

static int copy_prefix(const char *from, const char *to, long nbytes)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in && out);
    for (long i = 0; i < nbytes; i++) {
        const int c = fgetc(in);
        CHECK(c != EOF);
        fputc(c, out);
    }
    fclose(in);
    CHECK(fclose(out) == 0);
    return 0;
}

static int expect_open_error(const char *path, const char *text)
{
    moka_err err = {0};
    moka_db_reader *r = (moka_db_reader *)&err; /* must be reset to NULL */
    CHECK_STATUS(moka_db_reader_open(path, &r, &err), MOKA_ERR_IO);
    CHECK(r == NULL);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, text);
    return 0;
}

static int bad_dbs_are_clear_errors(void)
{
    CHECK(!expect_open_error(tmp_path("no_such_db"), "No such file or directory"));

    const char *file = tmp_path("a_file");
    FILE *f = fopen(file, "wb");
    CHECK(f && fputs("hello", f) >= 0 && fclose(f) == 0);
    CHECK(!expect_open_error(file, "is not a directory"));

    const char *nodata = tmp_path("no_data_mdb");
    CHECK(mkdir(nodata, 0755) == 0);
    CHECK(!expect_open_error(nodata, "no data.mdb"));

    /* 16 KiB of pseudo-random bytes: no valid LMDB meta page. */
    const char *garbage = tmp_path("garbage");
    CHECK(mkdir(garbage, 0755) == 0);
    char data[600];
    snprintf(data, sizeof data, "%s/data.mdb", garbage);
    f = fopen(data, "wb");
    CHECK(f != NULL);
    uint32_t x = 12345;
    for (int i = 0; i < 16384; i++) {
        x = x * 1664525u + 1013904223u;
        fputc((int)(x >> 24), f);
    }
    CHECK(fclose(f) == 0);
    CHECK(!expect_open_error(garbage, "not a readable LMDB"));

    /* An empty data.mdb. */
    const char *empty = tmp_path("empty_file");
    CHECK(mkdir(empty, 0755) == 0);
    snprintf(data, sizeof data, "%s/data.mdb", empty);
    f = fopen(data, "wb");
    CHECK(f && fclose(f) == 0);
    CHECK(!expect_open_error(empty, "not a readable LMDB"));

    /* A real DB cut short: its header still announces the pages it lost. */
    const char *full = tmp_path("db_to_cut");
    CHECK(!write_db(full, 3000));
    char from[600];
    snprintf(from, sizeof from, "%s/data.mdb", full);
    struct stat st;
    CHECK(stat(from, &st) == 0);
    CHECK(st.st_size > 40000);
    const char *cut = tmp_path("db_cut");
    CHECK(mkdir(cut, 0755) == 0);
    snprintf(data, sizeof data, "%s/data.mdb", cut);
    CHECK(!copy_prefix(from, data, (long)st.st_size / 2));
    CHECK(!expect_open_error(cut, "truncated LMDB"));
    /* Cut inside the meta pages. */
    const char *cut2 = tmp_path("db_cut_meta");
    CHECK(mkdir(cut2, 0755) == 0);
    snprintf(data, sizeof data, "%s/data.mdb", cut2);
    CHECK(!copy_prefix(from, data, 100));
    CHECK(!expect_open_error(cut2, "not a readable LMDB"));
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Runs last: deletes everything the tests wrote. */
static int cleanup(void)
{
    CHECK_EQ(nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    return 0;
}

MOKA_TEST_MAIN(written_records_read_back_in_order,
               existing_db_is_not_overwritten_and_abort_cleans_up,
               empty_db_opens_but_has_nothing_to_read, reads_the_python_lmdb_fixture,
               bad_dbs_are_clear_errors, cleanup)
