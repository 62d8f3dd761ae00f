/* tools/cmd_ls.c -- `moka ls [--endpoint URL] s3://bucket/prefix`: lists every object under a
 * prefix, one "SIZE  KEY" line each (size in bytes, right-aligned), in key order. Exit codes as
 * tools/cli.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "io/s3.h"

int cmd_ls(int argc, char **argv);

int cmd_ls(int argc, char **argv)
{
    flag flags[] = {{"endpoint", NULL}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = moka_cli_parse_flags("ls", argc, argv, flags, 1, pos, &npos, 1, &help);
    if (rc) return rc;
    if (help) {
        printf("usage: moka ls [--endpoint URL] s3://bucket[/prefix]\n"
               "Lists the objects under a prefix (also qs:// URLs): size in bytes and key.\n");
        return 0;
    }
    if (npos != 1) return moka_cli_usage_error("ls", "%s", "give one s3:// or qs:// URL");
    moka_err err = {0};
    char scheme[8], bucket[256], key[4096];
    if (moka_s3_parse_url(pos[0], scheme, sizeof scheme, bucket, sizeof bucket, key, sizeof key,
                          &err))
        return moka_cli_fail("ls", &err);
    moka_s3_config cfg;
    if (moka_s3_config_resolve(scheme, flags[0].value, &cfg, &err))
        return moka_cli_fail("ls", &err);
    moka_s3 *c;
    if (moka_s3_create(&cfg, &c, &err)) return moka_cli_fail("ls", &err);
    moka_s3_object *objs = NULL;
    int64_t n = 0;
    const moka_status st = moka_s3_list(c, bucket, key, &objs, &n, &err);
    moka_s3_free(c);
    if (st) return moka_cli_fail("ls", &err);
    for (int64_t i = 0; i < n; i++) printf("%12lld  %s\n", (long long)objs[i].size, objs[i].key);
    moka_s3_objects_free(objs, n);
    return 0;
}
