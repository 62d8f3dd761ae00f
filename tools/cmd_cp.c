/* tools/cmd_cp.c -- `moka cp [-r] [--sync] [--delete] [-f] [--dry-run] [-j N] [--endpoint URL]
 * SRC DST`: copies between local paths and s3:// / qs:// URLs.
 *
 * The plan (what to copy, skip or delete) comes from src/io/transfer.h; the transfers run on a
 * pool of -j pthreads, each with its own moka_s3 client (clients are not thread-safe). Progress
 * goes to stderr: a redrawn line on a terminal, a plain line every 5 s otherwise; the summary
 * line (files, bytes, seconds, MB/s) goes to stdout. Exit codes as tools/cli.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "io/s3.h"
#include "io/transfer.h"

int cmd_cp(int argc, char **argv);

/* The part size moka_s3_put_file uses by default; a "-N" ETag is first re-computed with it. */
#define UPLOAD_PART_SIZE ((int64_t)8 << 20)

static bool is_url(const char *s)
{
    return strncmp(s, "s3://", 5) == 0 || strncmp(s, "qs://", 5) == 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One unit of work for the pool. */
typedef struct job {
    moka_transfer_op op;
    char *local; /* local path */
    char *key;   /* object key */
    int64_t size;
    char etag[80]; /* a download's ETag when already known (saves a HEAD), else "" */
} job;

typedef struct pool {
    const moka_s3_config *cfg;
    const char *scheme, *bucket;
    const char *local_root; /* the destination directory of a download */
    bool upload;
    job *jobs;
    int64_t njobs;
    pthread_mutex_t mu;
    pthread_cond_t finished; /* signalled (under mu) when a worker exits */
    int64_t next;
    bool stop;
    moka_err first_err;
    bool failed;
    _Atomic int64_t bytes_done; /* bytes of finished transfers */
    _Atomic int64_t files_done; /* copies finished */
    _Atomic int64_t deleted;
    _Atomic int64_t *inflight; /* per worker: bytes of the transfer under way */
    _Atomic int workers_left;
} pool;

typedef struct worker_arg {
    pool *p;
    int id;
} worker_arg;

static void on_progress(void *user, int64_t bytes) { atomic_store((_Atomic int64_t *)user, bytes); }

static void pool_fail(pool *p, const moka_err *e)
{
    pthread_mutex_lock(&p->mu);
    if (!p->failed) {
        p->failed = true;
        p->first_err = *e;
    }
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
}

/* A worker is leaving: count it out and wake the progress loop, which waits on `finished`. */
static void worker_exit(pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_fetch_sub(&p->workers_left, 1);
    pthread_cond_signal(&p->finished);
    pthread_mutex_unlock(&p->mu);
}

static void *worker(void *arg)
{
    worker_arg *wa = arg;
    pool *p = wa->p;
    _Atomic int64_t *mine = &p->inflight[wa->id];
    moka_err err = {0};
    moka_s3 *c = NULL;
    if (moka_s3_create(p->cfg, &c, &err)) {
        pool_fail(p, &err);
        worker_exit(p);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&p->mu);
        const int64_t i = p->stop ? p->njobs : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->njobs) break;
        const job *j = &p->jobs[i];
        moka_status st = MOKA_OK;
        if (j->op == MOKA_OP_DELETE) {
            if (p->upload)
                st = moka_s3_delete(c, p->bucket, j->key, &err);
            else if (unlink(j->local) != 0 && errno != ENOENT)
                st =
                    moka_errf(&err, MOKA_ERR_IO, "cannot delete %s: %s", j->local, strerror(errno));
            if (!st) atomic_fetch_add(&p->deleted, 1);
        } else if (j->op == MOKA_OP_COPY) {
            atomic_store(mine, 0);
            if (p->upload) {
                st = moka_s3_put_file(c, j->local, p->bucket, j->key, on_progress, mine, &err);
            } else {
                st = moka_transfer_mkdirs_for(j->local, &err);
                if (!st && j->etag[0]) {
                    moka_s3_object known = {.key = j->key, .size = j->size};
                    snprintf(known.etag, sizeof known.etag, "%s", j->etag);
                    st = moka_s3_get_file_known(c, p->bucket, j->key, &known, j->local, on_progress,
                                                mine, &err);
                } else if (!st) {
                    st = moka_s3_get_file(c, p->bucket, j->key, j->local, on_progress, mine, &err);
                }
            }
            atomic_store(mine, 0);
            if (!st) {
                atomic_fetch_add(&p->bytes_done, j->size);
                atomic_fetch_add(&p->files_done, 1);
            }
        }
        if (st) pool_fail(p, &err);
    }
    moka_s3_free(c);
    worker_exit(p);
    return NULL;
}

static void human(double b, char *out, size_t n)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int k = 0;
    while (b >= 1024 && k < 4) b /= 1024, k++;
    snprintf(out, n, k ? "%.1f %s" : "%.0f %s", b, u[k]);
}

static void print_progress(pool *p, int nworkers, int64_t total_bytes, int64_t total_files,
                           double t0, bool tty)
{
    int64_t done = atomic_load(&p->bytes_done);
    for (int w = 0; w < nworkers; w++) done += atomic_load(&p->inflight[w]);
    const double dt = now_s() - t0;
    const double rate = dt > 0 ? (double)done / dt : 0;
    char a[32], b[32], r[32], eta[32] = "--:--";
    human((double)done, a, sizeof a);
    human((double)total_bytes, b, sizeof b);
    human(rate, r, sizeof r);
    if (rate > 0 && total_bytes >= done) {
        const long s = (long)((double)(total_bytes - done) / rate);
        snprintf(eta, sizeof eta, "%ld:%02ld", s / 60, s % 60);
    }
    fprintf(stderr, "%s%s / %s  %s/s  ETA %s  %lld/%lld files%s", tty ? "\r\033[K" : "", a, b, r,
            eta, (long long)atomic_load(&p->files_done), (long long)total_files, tty ? "" : "\n");
    fflush(stderr);
}

/* Runs the jobs on `nworkers` threads; returns 0 or the exit code of the first failure. */
static int run_jobs(const char *cmd, pool *p, int nworkers, int64_t total_bytes,
                    int64_t total_files, int64_t skipped)
{
    if (nworkers > p->njobs) nworkers = (int)(p->njobs > 0 ? p->njobs : 1);
    pthread_t *th = calloc((size_t)nworkers, sizeof *th);
    worker_arg *wa = calloc((size_t)nworkers, sizeof *wa);
    p->inflight = calloc((size_t)nworkers, sizeof *p->inflight);
    if (!th || !wa || !p->inflight) {
        free(th), free(wa), free(p->inflight);
        fprintf(stderr, "moka %s: out of memory\n", cmd);
        return 1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->finished, NULL);
    atomic_store(&p->workers_left, nworkers);
    const double t0 = now_s();
    int started = 0;
    for (int w = 0; w < nworkers; w++) {
        wa[w] = (worker_arg){p, w};
        if (pthread_create(&th[w], NULL, worker, &wa[w]) != 0) {
            atomic_fetch_sub(&p->workers_left, nworkers - w);
            break;
        }
        started++;
    }
    const bool tty = isatty(2);
    double last = t0;
    bool drew = false;
    for (;;) {
        /* Wake for the progress line every 100 ms, or at once when the last worker exits. */
        pthread_mutex_lock(&p->mu);
        if (atomic_load(&p->workers_left) > 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 100 * 1000 * 1000;
            if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&p->finished, &p->mu, &until);
        }
        const bool all_done = atomic_load(&p->workers_left) <= 0;
        pthread_mutex_unlock(&p->mu);
        if (all_done) break;
        const double t = now_s();
        if ((tty && t - last >= 0.25) || (!tty && t - last >= 5.0)) {
            print_progress(p, started, total_bytes, total_files, t0, tty);
            last = t;
            drew = true;
        }
    }
    for (int w = 0; w < started; w++) pthread_join(th[w], NULL);
    if (tty && drew) fprintf(stderr, "\r\033[K");
    const double secs = now_s() - t0;
    const int64_t bytes = atomic_load(&p->bytes_done);
    printf("%s %lld files, %lld bytes in %.2f s (%.2f MB/s); %lld unchanged, %lld deleted\n",
           p->failed ? "partly copied:" : "copied", (long long)atomic_load(&p->files_done),
           (long long)bytes, secs, secs > 0 ? (double)bytes / 1e6 / secs : 0.0, (long long)skipped,
           (long long)atomic_load(&p->deleted));
    fflush(stdout);
    /* Directories that --delete emptied go too (after the pool: a worker may still have been
     * creating one for a copy). rmdir fails harmlessly on a directory that is not empty. */
    for (int64_t i = 0; i < p->njobs && !p->upload; i++) {
        if (p->jobs[i].op != MOKA_OP_DELETE) continue;
        char d[8192];
        snprintf(d, sizeof d, "%s", p->jobs[i].local);
        const size_t root = strlen(p->local_root);
        for (char *s = strrchr(d, '/'); s && (size_t)(s - d) > root; s = strrchr(d, '/')) {
            *s = '\0';
            if (rmdir(d) != 0) break;
        }
    }
    pthread_cond_destroy(&p->finished);
    pthread_mutex_destroy(&p->mu);
    free(th);
    free(wa);
    free(p->inflight);
    if (p->failed) return moka_cli_fail(cmd, &p->first_err);
    return 0;
}

/* ---- comparing a local file with an object (for --sync and for existing destinations) ---- */

typedef struct cmp_ctx {
    const char *local_root; /* where local entries' rel names live */
    bool local_is_src;
    int64_t size_only; /* how many were decided by size alone */
} cmp_ctx;

static moka_status same_content(void *user, const moka_transfer_entry *s,
                                const moka_transfer_entry *d, bool *same, moka_err *err)
{
    cmp_ctx *cx = user;
    const moka_transfer_entry *loc = cx->local_is_src ? s : d, *rem = cx->local_is_src ? d : s;
    char path[8192];
    MOKA_TRY(moka_transfer_join(cx->local_root, loc->rel, path, sizeof path, err));
    moka_transfer_cmp c;
    MOKA_TRY(
        moka_transfer_compare(path, loc->size, rem->size, rem->etag, UPLOAD_PART_SIZE, &c, err));
    if (c == MOKA_CMP_SAME_SIZE_ONLY) cx->size_only++;
    *same = c != MOKA_CMP_DIFFERENT;
    return MOKA_OK;
}

/* HEAD answers carry no body, so a refused HEAD cannot tell a wrong secret from a missing
 * permission. On such a failure a listing of the key (a GET, whose error body names the cause)
 * replaces the message when it fails too. */
static moka_status head_explained(moka_s3 *c, const char *bucket, const char *key,
                                  moka_s3_object *o, moka_err *err)
{
    const moka_status st = moka_s3_head(c, bucket, key, o, err);
    if (!st || strstr(err->msg, "no such key")) return st;
    moka_err lerr = {0};
    moka_s3_object *objs = NULL;
    int64_t n = 0;
    if (moka_s3_list(c, bucket, key, &objs, &n, &lerr) != MOKA_OK) {
        *err = lerr;
        return lerr.code;
    }
    moka_s3_objects_free(objs, n);
    return st;
}

static int usage(void)
{
    printf("usage: moka cp [-r] [--sync] [--delete] [-f] [--dry-run] [-j N] [--endpoint URL] "
           "SRC DST\n"
           "Copies files to, from or within object storage; SRC or DST is an s3:// or qs:// "
           "URL.\n"
           "  -r, --recursive  copy a directory or key prefix; a trailing '/' on SRC copies its\n"
           "                   contents (cp -r s3://b/ data/ puts key a/b at data/a/b), none\n"
           "                   copies it by name (cp -r s3://b/dir data/ gives data/dir/...)\n"
           "  --sync           copy only files whose size or MD5/ETag differ\n"
           "  --delete         with -r: delete destination files absent from the source\n"
           "  -f, --force      overwrite differing destination files\n"
           "  --dry-run        print the plan, copy nothing\n"
           "  -j N             parallel transfers (default 8)\n"
           "  --endpoint URL   S3 endpoint (default: AWS_ENDPOINT_URL, config files, AWS)\n"
           "Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials; for qs://\n"
           "also QSCTL_* and ~/.qingstor/config.yaml.\n");
    return 0;
}

static char *join_dup(const char *a, const char *b)
{
    char buf[8192];
    moka_err e;
    if (moka_transfer_join(a, b, buf, sizeof buf, &e)) return NULL;
    return strdup(buf);
}

static void free_jobs(job *jobs, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        free(jobs[i].local);
        free(jobs[i].key);
    }
    free(jobs);
}

int cmd_cp(int argc, char **argv)
{
    const char *cmd = "cp";
    bool recursive = false, sync = false, del = false, force = false, dry = false;
    long jobs_n = 8;
    const char *endpoint = NULL, *pos[2];
    int npos = 0, rc;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return usage();
        if (strcmp(a, "--recursive") == 0)
            recursive = true;
        else if (strcmp(a, "--sync") == 0)
            sync = true;
        else if (strcmp(a, "--delete") == 0)
            del = true;
        else if (strcmp(a, "--force") == 0)
            force = true;
        else if (strcmp(a, "--dry-run") == 0)
            dry = true;
        else if (strcmp(a, "-j") == 0 || strcmp(a, "--jobs") == 0 ||
                 strncmp(a, "--jobs=", 7) == 0 || (strncmp(a, "-j", 2) == 0 && a[2])) {
            const char *v = a[1] == 'j' ? (a[2] ? a + 2 : NULL) : (a[6] == '=' ? a + 7 : NULL);
            if (!v) {
                if (i + 1 >= argc) return moka_cli_usage_error(cmd, "flag '%s' needs a value", a);
                v = argv[++i];
            }
            if ((rc = moka_cli_parse_int(cmd, "j", v, 1, 256, &jobs_n))) return rc;
        } else if (strcmp(a, "--endpoint") == 0) {
            if (i + 1 >= argc) return moka_cli_usage_error(cmd, "flag '%s' needs a value", a);
            endpoint = argv[++i];
        } else if (strncmp(a, "--endpoint=", 11) == 0) {
            endpoint = a + 11;
        } else if (a[0] == '-' && a[1] && a[1] != '-' && strspn(a + 1, "rf") == strlen(a + 1)) {
            for (const char *c = a + 1; *c; c++) {
                if (*c == 'r') recursive = true;
                if (*c == 'f') force = true;
            }
        } else if (a[0] == '-' && a[1]) {
            return moka_cli_usage_error(cmd, "unknown flag '%s'", a);
        } else {
            if (npos >= 2) return moka_cli_usage_error(cmd, "unexpected argument '%s'", a);
            pos[npos++] = a;
        }
    }
    if (npos != 2) return moka_cli_usage_error(cmd, "%s", "give SRC and DST");
    const char *src = pos[0], *dst = pos[1];
    const bool up = !is_url(src) && is_url(dst);
    if (is_url(src) && is_url(dst))
        return moka_cli_usage_error(cmd, "%s",
                                    "copies between two buckets are not supported; one of SRC "
                                    "and DST must be a local path");
    if (!is_url(src) && !is_url(dst))
        return moka_cli_usage_error(cmd, "%s", "one of SRC and DST must be an s3:// or qs:// URL");
    if (del && !recursive) return moka_cli_usage_error(cmd, "%s", "--delete needs -r");

    moka_err err = {0};
    char scheme[8], bucket[256], key[4096];
    if (moka_s3_parse_url(up ? dst : src, scheme, sizeof scheme, bucket, sizeof bucket, key,
                          sizeof key, &err))
        return moka_cli_fail(cmd, &err);
    moka_s3_config cfg;
    if (moka_s3_config_resolve(scheme, endpoint, &cfg, &err)) return moka_cli_fail(cmd, &err);
    moka_s3 *c;
    if (moka_s3_create(&cfg, &c, &err)) return moka_cli_fail(cmd, &err);

    job *jobs = NULL;
    int64_t njobs = 0, skipped = 0, total_bytes = 0, total_files = 0;
    moka_status st = MOKA_OK;
    cmp_ctx cx = {0};
    const char *local = up ? src : dst;
    struct stat sb;
    const bool local_is_dir = stat(local, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (up && !recursive && local_is_dir) {
        moka_s3_free(c);
        return moka_cli_usage_error(cmd, "%s is a directory (use -r)", src);
    }

    /* A recursive download of a prefix with no objects under it may name one object. */
    moka_s3_object *objs = NULL;
    int64_t nobj = 0;
    char walk[8192], rel_prefix[8192];
    bool single = !recursive;
    if (recursive) {
        st = moka_transfer_root(up ? src : key, walk, sizeof walk, rel_prefix, sizeof rel_prefix,
                                &err);
        if (!st && !up) {
            st = moka_s3_list(c, bucket, walk, &objs, &nobj, &err);
            if (!st && nobj == 0 && key[0] && key[strlen(key) - 1] != '/')
                single = true;
            else if (!st && nobj == 0)
                st = moka_errf(&err, MOKA_ERR_IO, "no objects under %s", src);
        }
    }

    moka_transfer_item *items = NULL;
    int64_t nitems = 0;
    if (!st && single) {
        /* One file or object: compare with an existing destination, then one job. */
        moka_s3_object o = {0};
        char to[8192];
        int64_t size = 0;
        bool exists = false;
        moka_transfer_cmp cmp = MOKA_CMP_DIFFERENT;
        if (up) {
            if (stat(src, &sb) != 0)
                st = moka_errf(&err, MOKA_ERR_IO, "cannot read %s: %s", src, strerror(errno));
            size = (int64_t)sb.st_size;
            if (!st) st = moka_transfer_single_dest(src, key, false, to, sizeof to, &err);
            if (!st) {
                moka_err herr = {0};
                if (head_explained(c, bucket, to, &o, &herr) == MOKA_OK)
                    exists = true;
                else if (!strstr(herr.msg, "no such key"))
                    st = (err = herr).code;
            }
            if (!st && exists)
                st = moka_transfer_compare(src, size, o.size, o.etag, UPLOAD_PART_SIZE, &cmp, &err);
        } else {
            st = head_explained(c, bucket, key, &o, &err);
            size = o.size;
            if (!st) st = moka_transfer_single_dest(key, dst, local_is_dir, to, sizeof to, &err);
            if (!st && stat(to, &sb) == 0) {
                exists = true;
                if (S_ISDIR(sb.st_mode))
                    st = moka_errf(&err, MOKA_ERR_IO, "%s is a directory", to);
                else
                    st = moka_transfer_compare(to, (int64_t)sb.st_size, o.size, o.etag,
                                               UPLOAD_PART_SIZE, &cmp, &err);
            }
        }
        if (!st && exists && cmp != MOKA_CMP_DIFFERENT && !force) {
            skipped = 1;
        } else if (!st && exists && !force && !sync) {
            st = moka_errf(&err, MOKA_ERR_IO,
                           "%s exists and differs from the source (use -f to overwrite or --sync "
                           "to copy what differs)",
                           to);
        } else if (!st) {
            jobs = calloc(1, sizeof *jobs);
            if (!jobs)
                st = moka_errf(&err, MOKA_ERR_NOMEM, "out of memory");
            else {
                jobs[0] =
                    (job){MOKA_OP_COPY, strdup(up ? src : to), strdup(up ? to : key), size, ""};
                if (!up) snprintf(jobs[0].etag, sizeof jobs[0].etag, "%s", o.etag);
                njobs = 1, total_files = 1, total_bytes = size;
            }
        }
    } else if (!st) {
        /* Both listings as entries relative to their roots, then the plan. */
        moka_transfer_entry *se = NULL, *de = NULL;
        int64_t ns = 0, nd = 0;
        char dprefix[8192] = "";
        if (up) {
            st = moka_transfer_list_local(walk, &se, &ns, &err);
            if (!st && !local_is_dir)
                st = moka_errf(&err, MOKA_ERR_IO, "%s is not a directory", src);
            if (!st && key[0])
                snprintf(dprefix, sizeof dprefix, "%s%s", key,
                         key[strlen(key) - 1] == '/' ? "" : "/");
            if (!st) st = moka_s3_list(c, bucket, dprefix, &objs, &nobj, &err);
            if (!st && nobj > 0 && !(de = calloc((size_t)nobj, sizeof *de)))
                st = moka_errf(&err, MOKA_ERR_NOMEM, "out of memory");
            for (int64_t i = 0; !st && i < nobj; i++) {
                de[nd].rel = strdup(objs[i].key + strlen(dprefix));
                de[nd].size = objs[i].size;
                snprintf(de[nd].etag, sizeof de[nd].etag, "%s", objs[i].etag);
                nd++;
            }
            cx.local_root = walk;
            cx.local_is_src = true;
        } else {
            if (!(se = calloc((size_t)nobj + 1, sizeof *se)))
                st = moka_errf(&err, MOKA_ERR_NOMEM, "out of memory");
            const size_t wl = strlen(walk);
            for (int64_t i = 0; !st && i < nobj; i++) {
                const char *rel = objs[i].key + wl;
                /* Zero-byte "dir/" markers are folders, not files; unsafe names are refused. */
                if (rel[0] && rel[strlen(rel) - 1] == '/' && objs[i].size == 0) continue;
                if (!moka_transfer_rel_ok(rel)) {
                    fprintf(stderr, "moka cp: skipping key '%s': not a safe file name\n",
                            objs[i].key);
                    continue;
                }
                se[ns].rel = strdup(rel);
                se[ns].size = objs[i].size;
                snprintf(se[ns].etag, sizeof se[ns].etag, "%s", objs[i].etag);
                ns++;
            }
            if (!st) st = moka_transfer_list_local(dst, &de, &nd, &err);
            cx.local_root = dst;
            cx.local_is_src = false;
        }
        const moka_transfer_opts o = {.sync = sync, .force = force, .delete_extra = del};
        if (!st)
            st = moka_transfer_plan(se, ns, de, nd, rel_prefix, &o, same_content, &cx, &items,
                                    &nitems, &err);
        moka_transfer_entries_free(se, ns);
        moka_transfer_entries_free(de, nd);
        if (!st && nitems > 0 && !(jobs = calloc((size_t)nitems, sizeof *jobs)))
            st = moka_errf(&err, MOKA_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; !st && i < nitems; i++) {
            const moka_transfer_item *x = &items[i];
            if (x->op == MOKA_OP_SKIP) {
                skipped++;
                continue;
            }
            job *j = &jobs[njobs++];
            j->op = x->op;
            j->size = x->size;
            if (up) {
                j->key = join_dup(dprefix, x->rel);
                j->local = x->op == MOKA_OP_COPY ? join_dup(walk, x->src_rel) : NULL;
            } else {
                j->local = join_dup(dst, x->rel);
                j->key = x->op == MOKA_OP_COPY ? join_dup(walk, x->src_rel) : NULL;
            }
            if ((!j->key && (up || x->op == MOKA_OP_COPY)) || (!j->local && !up))
                st = moka_errf(&err, MOKA_ERR_INVALID_ARG, "path too long: %s", x->rel);
            if (x->op == MOKA_OP_COPY) total_files++, total_bytes += x->size;
        }
    }
    moka_transfer_plan_free(items, nitems);
    moka_s3_objects_free(objs, nobj);
    moka_s3_free(c);
    if (st) {
        free_jobs(jobs, njobs);
        return moka_cli_fail(cmd, &err);
    }
    if (cx.size_only > 0)
        fprintf(stderr,
                "moka cp: note: %lld file(s) compared by size only (multipart ETag whose part "
                "size is unknown)\n",
                (long long)cx.size_only);

    if (dry) {
        int64_t ndel = 0;
        for (int64_t i = 0; i < njobs; i++) {
            const job *j = &jobs[i];
            const char *pre = up ? scheme : "";
            if (j->op == MOKA_OP_COPY && up)
                printf("copy %s -> %s://%s/%s (%lld bytes)\n", j->local, pre, bucket, j->key,
                       (long long)j->size);
            else if (j->op == MOKA_OP_COPY)
                printf("copy %s://%s/%s -> %s (%lld bytes)\n", scheme, bucket, j->key, j->local,
                       (long long)j->size);
            else if (up)
                printf("delete %s://%s/%s\n", scheme, bucket, j->key), ndel++;
            else
                printf("delete %s\n", j->local), ndel++;
        }
        printf("dry run: %lld files to copy (%lld bytes), %lld unchanged, %lld to delete\n",
               (long long)total_files, (long long)total_bytes, (long long)skipped, (long long)ndel);
        free_jobs(jobs, njobs);
        return 0;
    }
    pool p = {.cfg = &cfg,
              .scheme = scheme,
              .bucket = bucket,
              .upload = up,
              .jobs = jobs,
              .local_root = dst,
              .njobs = njobs};
    rc = run_jobs(cmd, &p, (int)jobs_n, total_bytes, total_files, skipped);
    free_jobs(jobs, njobs);
    return rc;
}
