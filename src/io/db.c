/* src/io/db.c -- Caffe's LMDB databases through liblmdb (http://www.lmdb.tech/doc/): see db.h.
 *
 * The writer, like Caffe's db_lmdb.cpp, keeps up to WRITE_BATCH records in memory and puts them
 * in one transaction; when LMDB says the map is full, the transaction is dropped, the map size
 * doubled and the batch put again. The reader keeps one read-only transaction and one cursor
 * open for its whole life, so the values it hands out point into LMDB's memory map.
 */
#include "io/db.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records per write transaction (Caffe's convert tools commit every 1000). */
#define WRITE_BATCH 1000
/* The first map size; it doubles whenever LMDB reports MDB_MAP_FULL. */
#define INITIAL_MAP_NBYTES ((size_t)1 << 28)

typedef struct {
    char *key;
    void *val;
    size_t val_nbytes;
} pending;

struct moka_db_writer {
    MDB_env *env;
    char *path, *tmp;
    size_t map_nbytes;
    pending batch[WRITE_BATCH];
    int npending;
};

struct moka_db_reader {
    char *path;
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *cur;
    int64_t count;
    char *key;
    size_t key_cap;
};

static char *dup_str(const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* "<dir>/<name>", malloc'ed. */
static char *join(const char *dir, const char *name)
{
    const size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* Deletes an LMDB directory that moka created (its two files, then the directory). */
static void remove_db_dir(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (int i = 0; i < 2; i++) {
        char *f = join(dir, files[i]);
        if (f) unlink(f);
        free(f);
    }
    rmdir(dir);
}

static void drop_pending(moka_db_writer *w)
{
    for (int i = 0; i < w->npending; i++) {
        free(w->batch[i].key);
        free(w->batch[i].val);
    }
    w->npending = 0;
}

/* Puts the pending records in one transaction, growing the map until they fit. */
static moka_status flush(moka_db_writer *w, moka_err *err)
{
    for (;;) {
        MDB_txn *txn = NULL;
        MDB_dbi dbi;
        int rc = mdb_txn_begin(w->env, NULL, 0, &txn);
        if (rc == 0) rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        for (int i = 0; rc == 0 && i < w->npending; i++) {
            MDB_val k = {strlen(w->batch[i].key), w->batch[i].key};
            MDB_val v = {w->batch[i].val_nbytes, w->batch[i].val};
            rc = mdb_put(txn, dbi, &k, &v, 0);
        }
        if (rc == 0) {
            rc = mdb_txn_commit(txn); /* frees txn, whatever it returns */
            txn = NULL;
        }
        if (txn) mdb_txn_abort(txn);
        if (rc == 0) {
            drop_pending(w);
            return MOKA_OK;
        }
        if (rc != MDB_MAP_FULL)
            return moka_errf(err, MOKA_ERR_IO, "'%s': LMDB write failed: %s", w->path,
                             mdb_strerror(rc));
        if (w->map_nbytes > SIZE_MAX / 2)
            return moka_errf(err, MOKA_ERR_IO, "'%s': LMDB map cannot grow beyond %zu bytes",
                             w->path, w->map_nbytes);
        w->map_nbytes *= 2;
        rc = mdb_env_set_mapsize(w->env, w->map_nbytes);
        if (rc != 0)
            return moka_errf(err, MOKA_ERR_IO, "'%s': cannot grow the LMDB map to %zu bytes: %s",
                             w->path, w->map_nbytes, mdb_strerror(rc));
    }
}

moka_status moka_db_writer_create(const char *path, moka_db_writer **out, moka_err *err)
{
    if (!path || !path[0] || !out)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_db_writer_create: no path");
    *out = NULL;
    struct stat st;
    if (stat(path, &st) == 0)
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s' already exists; remove it first (Caffe's converters refuse to "
                         "overwrite a DB too)",
                         path);
    moka_db_writer *w = calloc(1, sizeof *w);
    if (!w) return moka_errf(err, MOKA_ERR_NOMEM, "'%s': no memory for a DB writer", path);
    const size_t n = strlen(path) + 32;
    w->path = dup_str(path);
    w->tmp = malloc(n);
    if (!w->path || !w->tmp) {
        free(w->path);
        free(w->tmp);
        free(w);
        return moka_errf(err, MOKA_ERR_NOMEM, "'%s': no memory for a DB writer", path);
    }
    snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    moka_status status = MOKA_ERR_IO;
    if (mkdir(w->tmp, 0755) != 0) {
        moka_errf(err, MOKA_ERR_IO, "cannot create the DB directory '%s': %s", w->tmp,
                  strerror(errno));
        goto fail_free;
    }
    w->map_nbytes = INITIAL_MAP_NBYTES;
    int rc = mdb_env_create(&w->env);
    if (rc == 0) rc = mdb_env_set_mapsize(w->env, w->map_nbytes);
    /* No lock file: nobody else can know the temporary directory, so there is nobody to lock
     * out, and the finished DB is then just data.mdb. */
    if (rc == 0) rc = mdb_env_open(w->env, w->tmp, MDB_NOLOCK, 0644);
    if (rc != 0) {
        moka_errf(err, MOKA_ERR_IO, "'%s': cannot create an LMDB: %s", w->tmp, mdb_strerror(rc));
        goto fail_dir;
    }
    *out = w;
    return MOKA_OK;

fail_dir:
    if (w->env) mdb_env_close(w->env);
    remove_db_dir(w->tmp);
fail_free:
    free(w->tmp);
    free(w->path);
    free(w);
    return status;
}

moka_status moka_db_writer_put(moka_db_writer *w, const char *key, const void *val, int64_t nbytes,
                               moka_err *err)
{
    if (!w || !key || !key[0] || nbytes < 0 || (nbytes > 0 && !val))
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_db_writer_put: bad arguments");
    const size_t klen = strlen(key);
    if (klen > (size_t)mdb_env_get_maxkeysize(w->env))
        return moka_errf(err, MOKA_ERR_INVALID_ARG,
                         "'%s': key '%.40s...' is longer than LMDB's "
                         "limit of %d bytes",
                         w->path, key, mdb_env_get_maxkeysize(w->env));
    pending *p = &w->batch[w->npending];
    p->key = dup_str(key);
    p->val = malloc(nbytes ? (size_t)nbytes : 1);
    if (!p->key || !p->val) {
        free(p->key);
        free(p->val);
        return moka_errf(err, MOKA_ERR_NOMEM, "'%s': no memory for a %lld-byte record", w->path,
                         (long long)nbytes);
    }
    if (nbytes) memcpy(p->val, val, (size_t)nbytes);
    p->val_nbytes = (size_t)nbytes;
    w->npending++;
    return w->npending == WRITE_BATCH ? flush(w, err) : MOKA_OK;
}

moka_status moka_db_writer_commit(moka_db_writer *w, moka_err *err)
{
    if (!w) return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_db_writer_commit: no writer");
    moka_status st = flush(w, err);
    if (st == MOKA_OK) {
        const int rc = mdb_env_sync(w->env, 1);
        if (rc != 0)
            st =
                moka_errf(err, MOKA_ERR_IO, "'%s': LMDB sync failed: %s", w->tmp, mdb_strerror(rc));
    }
    mdb_env_close(w->env);
    w->env = NULL;
    if (st == MOKA_OK && rename(w->tmp, w->path) != 0)
        st = moka_errf(err, MOKA_ERR_IO, "cannot rename '%s' to '%s': %s", w->tmp, w->path,
                       strerror(errno));
    if (st != MOKA_OK) remove_db_dir(w->tmp);
    drop_pending(w);
    free(w->tmp);
    free(w->path);
    free(w);
    return st;
}

void moka_db_writer_abort(moka_db_writer *w)
{
    if (!w) return;
    if (w->env) mdb_env_close(w->env);
    remove_db_dir(w->tmp);
    drop_pending(w);
    free(w->tmp);
    free(w->path);
    free(w);
}

/* Checks that data.mdb holds every page up to the last one LMDB's header says is in use: reading
 * a page past the end of the file through the memory map would be a SIGBUS, not an error. */
static moka_status check_not_truncated(moka_db_reader *r, const char *data_path, moka_err *err)
{
    MDB_envinfo info;
    MDB_stat ms;
    struct stat st;
    int rc = mdb_env_info(r->env, &info);
    if (rc == 0) rc = mdb_env_stat(r->env, &ms);
    if (rc != 0)
        return moka_errf(err, MOKA_ERR_IO, "'%s': cannot read the LMDB header: %s", r->path,
                         mdb_strerror(rc));
    if (stat(data_path, &st) != 0)
        return moka_errf(err, MOKA_ERR_IO, "'%s': %s", data_path, strerror(errno));
    const uint64_t need = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    if ((uint64_t)st.st_size < need)
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s': truncated LMDB: data.mdb holds %lld bytes but its header "
                         "announces %llu",
                         r->path, (long long)st.st_size, (unsigned long long)need);
    return MOKA_OK;
}

moka_status moka_db_reader_open(const char *path, moka_db_reader **out, moka_err *err)
{
    if (!path || !out) return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_db_reader_open: no path");
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return moka_errf(err, MOKA_ERR_IO, "'%s': cannot open the LMDB: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return moka_errf(err, MOKA_ERR_IO,
                         "'%s' is not a directory (a Caffe LMDB is a directory holding "
                         "data.mdb)",
                         path);
    moka_db_reader *r = calloc(1, sizeof *r);
    char *data_path = join(path, "data.mdb");
    if (r) r->path = dup_str(path);
    if (!r || !data_path || !r->path) {
        free(data_path);
        if (r) free(r->path);
        free(r);
        return moka_errf(err, MOKA_ERR_NOMEM, "'%s': no memory for a DB reader", path);
    }
    moka_status status = MOKA_ERR_IO;
    if (stat(data_path, &st) != 0) {
        moka_errf(err, MOKA_ERR_IO, "'%s': no data.mdb in the directory (not an LMDB?)", path);
        goto fail;
    }
    int rc = mdb_env_create(&r->env);
    if (rc == 0) rc = mdb_env_open(r->env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0644);
    if (rc != 0) {
        moka_errf(err, MOKA_ERR_IO, "'%s': not a readable LMDB: %s", path,
                  rc == ENOENT ? "data.mdb is empty" : mdb_strerror(rc));
        goto fail;
    }
    status = check_not_truncated(r, data_path, err);
    if (status != MOKA_OK) goto fail;
    status = MOKA_ERR_IO;
    MDB_dbi dbi;
    MDB_stat ms;
    rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &r->txn);
    if (rc == 0) rc = mdb_dbi_open(r->txn, NULL, 0, &dbi);
    if (rc == 0) rc = mdb_stat(r->txn, dbi, &ms);
    if (rc == 0) rc = mdb_cursor_open(r->txn, dbi, &r->cur);
    if (rc != 0) {
        moka_errf(err, MOKA_ERR_IO, "'%s': cannot read the LMDB: %s", path, mdb_strerror(rc));
        goto fail;
    }
    r->count = (int64_t)ms.ms_entries;
    if (r->count > 0) {
        status = moka_db_reader_seek(r, 0, err);
        if (status != MOKA_OK) goto fail;
    }
    free(data_path);
    *out = r;
    return MOKA_OK;

fail:
    free(data_path);
    moka_db_reader_close(r);
    return status;
}

int64_t moka_db_reader_count(const moka_db_reader *r) { return r ? r->count : 0; }

static moka_status cursor_failed(const moka_db_reader *r, int rc, moka_err *err)
{
    return moka_errf(err, MOKA_ERR_IO, "'%s': LMDB read failed: %s", r->path, mdb_strerror(rc));
}

moka_status moka_db_reader_seek(moka_db_reader *r, int64_t index, moka_err *err)
{
    if (!r || index < 0)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_db_reader_seek: bad arguments");
    if (r->count == 0) return moka_errf(err, MOKA_ERR_IO, "'%s': the LMDB is empty", r->path);
    MDB_val k, v;
    int rc = mdb_cursor_get(r->cur, &k, &v, MDB_FIRST);
    for (int64_t i = 0; rc == 0 && i < index % r->count; i++)
        rc = mdb_cursor_get(r->cur, &k, &v, MDB_NEXT);
    return rc == 0 ? MOKA_OK : cursor_failed(r, rc, err);
}

moka_status moka_db_reader_next(moka_db_reader *r, const void **val, int64_t *nbytes,
                                const char **key, moka_err *err)
{
    if (!r || !val || !nbytes)
        return moka_errf(err, MOKA_ERR_INVALID_ARG, "moka_db_reader_next: bad arguments");
    if (r->count == 0) return moka_errf(err, MOKA_ERR_IO, "'%s': the LMDB is empty", r->path);
    MDB_val k, v, k2, v2;
    int rc = mdb_cursor_get(r->cur, &k, &v, MDB_GET_CURRENT);
    if (rc != 0) return cursor_failed(r, rc, err);
    if (key) {
        if (k.mv_size + 1 > r->key_cap) {
            char *nk = realloc(r->key, k.mv_size + 1);
            if (!nk) return moka_errf(err, MOKA_ERR_NOMEM, "'%s': no memory for a key", r->path);
            r->key = nk;
            r->key_cap = k.mv_size + 1;
        }
        memcpy(r->key, k.mv_data, k.mv_size);
        r->key[k.mv_size] = '\0';
        *key = r->key;
    }
    *val = v.mv_data;
    *nbytes = (int64_t)v.mv_size;
    rc = mdb_cursor_get(r->cur, &k2, &v2, MDB_NEXT);
    if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(r->cur, &k2, &v2, MDB_FIRST);
    return rc == 0 ? MOKA_OK : cursor_failed(r, rc, err);
}

void moka_db_reader_close(moka_db_reader *r)
{
    if (!r) return;
    if (r->cur) mdb_cursor_close(r->cur);
    if (r->txn) mdb_txn_abort(r->txn);
    if (r->env) mdb_env_close(r->env);
    free(r->key);
    free(r->path);
    free(r);
}
