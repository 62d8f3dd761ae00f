/* tests/tools/s3_tool.c -- drives src/io/s3.c from shell tests against the S3 test server.
 *
 *   s3_tool [--endpoint URL] [--retries N] [--backoff-ms MS] [--part-size BYTES]
 *           [--max-keys N] CMD ARGS
 *   CMD: ls URL | head URL | get URL PATH | put PATH URL | rm URL
 * Credentials come from the environment or files (moka_s3_config_resolve). Results go to stdout
 * ("ls": one "<size> <etag> <key>" line per object, then "count N"); after get/put a line
 * "received N requests M" gives the body bytes and requests this client used. Errors: the
 * message on stderr, exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/s3.h"

static int fail(const moka_err *err)
{
    fprintf(stderr, "s3_tool: %s\n", err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL;
    int retries = 5, backoff_ms = 20, max_keys = 1000;
    long long part_size = 8 << 20;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0)
            endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--retries") == 0)
            retries = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--backoff-ms") == 0)
            backoff_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--part-size") == 0)
            part_size = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--max-keys") == 0)
            max_keys = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "s3_tool: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: s3_tool [flags] ls|head|get|put|rm ARGS\n");
        return 2;
    }
    const char *cmd = argv[i];
    const char *url = strcmp(cmd, "put") == 0 ? (i + 2 < argc ? argv[i + 2] : "") : argv[i + 1];
    moka_err err = {0};
    char scheme[8], bucket[256], key[2048];
    if (moka_s3_parse_url(url, scheme, sizeof scheme, bucket, sizeof bucket, key, sizeof key,
                          &err) != MOKA_OK)
        return fail(&err);
    moka_s3_config cfg;
    if (moka_s3_config_resolve(scheme, endpoint, &cfg, &err) != MOKA_OK) return fail(&err);
    moka_s3 *c = NULL;
    if (moka_s3_create(&cfg, &c, &err) != MOKA_OK) return fail(&err);
    moka_s3_set_retries(c, retries, backoff_ms);
    moka_s3_set_part_size(c, part_size, true);
    moka_s3_set_max_keys(c, max_keys);
    moka_status st = MOKA_OK;
    if (strcmp(cmd, "ls") == 0) {
        moka_s3_object *objs = NULL;
        int64_t n = 0;
        st = moka_s3_list(c, bucket, key, &objs, &n, &err);
        for (int64_t k = 0; st == MOKA_OK && k < n; k++)
            printf("%lld %s %s\n", (long long)objs[k].size, objs[k].etag, objs[k].key);
        if (st == MOKA_OK) printf("count %lld\n", (long long)n);
        moka_s3_objects_free(objs, n);
    } else if (strcmp(cmd, "head") == 0) {
        moka_s3_object o;
        st = moka_s3_head(c, bucket, key, &o, &err);
        if (st == MOKA_OK) printf("%lld %s\n", (long long)o.size, o.etag);
    } else if (strcmp(cmd, "get") == 0 && i + 2 < argc) {
        st = moka_s3_get_file(c, bucket, key, argv[i + 2], NULL, NULL, &err);
    } else if (strcmp(cmd, "put") == 0 && i + 2 < argc) {
        st = moka_s3_put_file(c, argv[i + 1], bucket, key, NULL, NULL, &err);
    } else if (strcmp(cmd, "rm") == 0) {
        st = moka_s3_delete(c, bucket, key, &err);
    } else {
        fprintf(stderr, "s3_tool: bad command or arguments\n");
        moka_s3_free(c);
        return 2;
    }
    if (st == MOKA_OK)
        printf("received %lld requests %lld\n", (long long)moka_s3_bytes_received(c),
               (long long)moka_s3_requests(c));
    moka_s3_free(c);
    return st == MOKA_OK ? 0 : fail(&err);
}
