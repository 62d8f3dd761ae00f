/* src/io/db.h -- Caffe's LMDB databases, read and written with liblmdb.
 *
 * A Caffe DB is a directory holding LMDB's data.mdb (and lock.mdb): keys are Caffe's "%08d" or
 * "%08d_<name>" strings, values serialized Datums (src/io/datum.h). Records come in key order,
 * which for Caffe's zero-padded keys is the order they were written. Reads are sequential cursor
 * scans that wrap around at the end, as Caffe's DataReader does.
 *
 * LevelDB, Caffe's other backend, is not supported.
 */
#ifndef MOKA_DB_H
#define MOKA_DB_H

#include <stdint.h>

#include "moka/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moka_db_writer moka_db_writer;

/* Creates a new DB at `path` (a directory, as Caffe's): it is written into "<path>.tmp.<pid>"
 * and renamed to `path` by commit, so an interrupted conversion never leaves a DB that looks
 * complete. An existing `path` is an error (MOKA_ERR_IO), as in Caffe. Free with commit or abort.
 * Returns MOKA_ERR_IO (cannot create) or MOKA_ERR_NOMEM. */
moka_status moka_db_writer_create(const char *path, moka_db_writer **out, moka_err *err);
/* Adds one record (the key is a NUL-terminated string; the value is copied). Writes are batched
 * into transactions of 1000 records, and the map grows as needed. On failure the writer is
 * still valid and must be aborted. */
moka_status moka_db_writer_put(moka_db_writer *w, const char *key, const void *val, int64_t nbytes,
                               moka_err *err);
/* Writes what is pending, closes the DB, renames it to its final path and frees w (also on
 * failure, when the temporary DB is removed). */
moka_status moka_db_writer_commit(moka_db_writer *w, moka_err *err);
/* Removes the temporary DB and frees w. NULL does nothing. */
void moka_db_writer_abort(moka_db_writer *w);

typedef struct moka_db_reader moka_db_reader;

/* Opens the DB directory at `path` read-only (no lock file is created, so a DB in a read-only
 * place can be read; nobody may write it meanwhile) and positions it on the first record.
 * Checks that data.mdb holds every page LMDB's header announces, so a truncated file is an
 * error here rather than a crash later. Returns MOKA_ERR_IO (missing, not an LMDB, truncated,
 * or a file where a directory is expected) or MOKA_ERR_NOMEM; messages start with "'<path>': ".
 * Free with moka_db_reader_close. The reader may be used from another thread than the one that
 * opened it, but from one thread at a time. */
moka_status moka_db_reader_open(const char *path, moka_db_reader **out, moka_err *err);
/* The number of records. */
int64_t moka_db_reader_count(const moka_db_reader *r);
/* Positions the cursor on record `index` (0-based, key order; taken modulo the count), so a
 * worker can start at its own shard; then next() walks on, wrapping to the first record at the
 * end. It walks there from the first record: O(index). */
moka_status moka_db_reader_seek(moka_db_reader *r, int64_t index, moka_err *err);
/* The current record's value and key (NUL-terminated; both valid until the next call on r) and
 * advances, wrapping to the first record after the last. MOKA_ERR_IO for an empty DB or a read
 * that LMDB reports as failed. */
moka_status moka_db_reader_next(moka_db_reader *r, const void **val, int64_t *nbytes,
                                const char **key, moka_err *err);
/* NULL does nothing. */
void moka_db_reader_close(moka_db_reader *r);

#ifdef __cplusplus
}
#endif

#endif /* MOKA_DB_H */
