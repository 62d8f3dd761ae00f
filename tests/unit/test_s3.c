/* tests/unit/test_s3.c -- the pure parts of the S3 client: URL parsing, RFC 3986 encoding of keys
 * and queries (expected strings written out by hand from the SigV4 rules), credential and
 * endpoint resolution from the environment and from ~/.aws and ~/.qingstor files under a
 * temporary HOME, and the messages for S3 XML error bodies. Network round trips are in
 * tests/cli/test_s3_client.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/s3.h"
#include "test.h"

static const char *const ENV_VARS[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_S3",
                                       "AWS_PROFILE",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE",
                                       "QSCTL_ACCESS_KEY_ID",
                                       "QSCTL_SECRET_ACCESS_KEY",
                                       "QSCTL_ZONE",
                                       "QSCTL_HOST",
                                       "QSCTL_PORT",
                                       "QSCTL_PROTOCOL",
                                       "QSCTL_CONFIG"};

static char home[256];

/* A fresh empty HOME and none of the variables the resolver reads. */
static int clean_env(void)
{
    for (size_t i = 0; i < sizeof ENV_VARS / sizeof ENV_VARS[0]; i++) unsetenv(ENV_VARS[i]);
    snprintf(home, sizeof home, "/tmp/moka_test_s3_XXXXXX");
    if (!mkdtemp(home)) return 1;
    setenv("HOME", home, 1);
    return 0;
}

static int write_file(const char *rel, const char *text)
{
    char path[512], dir[512];
    snprintf(path, sizeof path, "%s/%s", home, rel);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    mkdir(dir, 0700);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fputs(text, f);
    fclose(f);
    return 0;
}

static void rm_home(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", home);
}

static int test_parse_url(void)
{
    moka_err err = {0};
    char scheme[8], bucket[64], key[256];
    CHECK_OK(moka_s3_parse_url("s3://mydata/a/b c.jpg", scheme, sizeof scheme, bucket,
                               sizeof bucket, key, sizeof key, &err));
    CHECK(strcmp(scheme, "s3") == 0 && strcmp(bucket, "mydata") == 0);
    CHECK(strcmp(key, "a/b c.jpg") == 0);
    CHECK_OK(moka_s3_parse_url("qs://b", scheme, sizeof scheme, bucket, sizeof bucket, key,
                               sizeof key, &err));
    CHECK(strcmp(scheme, "qs") == 0 && strcmp(bucket, "b") == 0 && key[0] == '\0');
    CHECK_OK(moka_s3_parse_url("s3://b/", scheme, sizeof scheme, bucket, sizeof bucket, key,
                               sizeof key, &err));
    CHECK(strcmp(bucket, "b") == 0 && key[0] == '\0');
    CHECK_STATUS(moka_s3_parse_url("http://b/k", scheme, sizeof scheme, bucket, sizeof bucket, key,
                                   sizeof key, &err),
                 MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "unknown URL scheme");
    CHECK_STATUS(moka_s3_parse_url("s3:///k", scheme, sizeof scheme, bucket, sizeof bucket, key,
                                   sizeof key, &err),
                 MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "no bucket name");
    CHECK_STATUS(moka_s3_parse_url("data/x", scheme, sizeof scheme, bucket, sizeof bucket, key,
                                   sizeof key, &err),
                 MOKA_ERR_INVALID_ARG);
    CHECK_STATUS(moka_s3_parse_url("s3://b/0123456789", scheme, sizeof scheme, bucket,
                                   sizeof bucket, key, 5, &err),
                 MOKA_ERR_INVALID_ARG);
    CHECK_CONTAINS(err.msg, "too long");
    return 0;
}

static int test_uri_encode(void)
{
    char out[256];
    CHECK(moka_s3_uri_encode("dir one/a+b=c&d.txt", true, out, sizeof out));
    CHECK(strcmp(out, "dir%20one/a%2Bb%3Dc%26d.txt") == 0);
    CHECK(moka_s3_uri_encode("dir one/a", false, out, sizeof out));
    CHECK(strcmp(out, "dir%20one%2Fa") == 0);
    /* UTF-8 bytes one by one, upper-case hex; unreserved characters stay. */
    CHECK(moka_s3_uri_encode("\xc3\xa9-._~%?#*", true, out, sizeof out));
    CHECK(strcmp(out, "%C3%A9-._~%25%3F%23%2A") == 0);
    CHECK(moka_s3_uri_encode("", true, out, sizeof out) && out[0] == '\0');
    CHECK(!moka_s3_uri_encode("a b", true, out, 5)); /* "a%20b" needs 6 bytes */
    CHECK(moka_s3_uri_encode("a b", true, out, 6));
    return 0;
}

static int test_canonical_query(void)
{
    char out[256];
    const char *names[4] = {"prefix", "max-keys", "marker", "uploads"};
    const char *values[4] = {"a b/c+d", "1000", "k=1&2", NULL};
    CHECK(moka_s3_canonical_query(names, values, 4, out, sizeof out));
    CHECK(strcmp(out, "marker=k%3D1%262&max-keys=1000&prefix=a%20b%2Fc%2Bd&uploads=") == 0);
    /* Sorted by the encoded name (byte order: upper case before lower case). */
    const char *n2[2] = {"uploadId", "partNumber"};
    const char *v2[2] = {"x~y", "10"};
    CHECK(moka_s3_canonical_query(n2, v2, 2, out, sizeof out));
    CHECK(strcmp(out, "partNumber=10&uploadId=x~y") == 0);
    CHECK(moka_s3_canonical_query(n2, v2, 0, out, sizeof out) && out[0] == '\0');
    CHECK(!moka_s3_canonical_query(n2, v2, 2, out, 10));
    return 0;
}

static int test_config_env(void)
{
    moka_err err = {0};
    moka_s3_config c;
    if (clean_env()) return 1;
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-env", 1);
    setenv("AWS_SESSION_TOKEN", "tok", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    CHECK_OK(moka_s3_config_resolve("s3", NULL, &c, &err));
    CHECK(strcmp(c.access_key, "AKIDENV") == 0 && strcmp(c.secret_key, "secret-env") == 0);
    CHECK(strcmp(c.session_token, "tok") == 0 && strcmp(c.region, "eu-west-1") == 0);
    CHECK(strcmp(c.endpoint, "https://s3.eu-west-1.amazonaws.com") == 0 && !c.path_style);
    CHECK(strcmp(c.scheme, "s3") == 0);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/", 1);
    CHECK_OK(moka_s3_config_resolve("s3", NULL, &c, &err));
    CHECK(strcmp(c.endpoint, "http://127.0.0.1:9000") == 0 && c.path_style);
    /* --endpoint wins over the environment. */
    CHECK_OK(moka_s3_config_resolve("s3", "https://minio.example:443", &c, &err));
    CHECK(strcmp(c.endpoint, "https://minio.example:443") == 0 && c.path_style);
    CHECK_STATUS(moka_s3_config_resolve("s3", "minio.example", &c, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "must start with http:// or https://");
    CHECK_STATUS(moka_s3_config_resolve("gs", NULL, &c, &err), MOKA_ERR_INVALID_ARG);
    rm_home();
    return 0;
}

static int test_config_aws_files(void)
{
    moka_err err = {0};
    moka_s3_config c;
    if (clean_env()) return 1;
    /* Nothing anywhere: the message lists what was looked at, and no secret. */
    CHECK_STATUS(moka_s3_config_resolve("s3", NULL, &c, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "no credentials for s3://: looked at AWS_ACCESS_KEY_ID");
    CHECK_CONTAINS(err.msg, "profile 'default'");
    CHECK_CONTAINS(err.msg, "/.aws/credentials");
    CHECK_CONTAINS(err.msg, "/.aws/config");
    CHECK(write_file(".aws/credentials",
                     "# comment\n[default]\naws_access_key_id = AKIDDEF\n"
                     "aws_secret_access_key = sec-def\n\n[work]\naws_access_key_id=AKIDWORK\n"
                     "aws_secret_access_key=sec/work+x\naws_session_token = wtok\n") == 0);
    CHECK(write_file(".aws/config",
                     "[default]\nregion = us-west-2\n[profile work]\n"
                     "region = ap-south-1\nendpoint_url = http://10.0.0.1:9000\n") == 0);
    CHECK_OK(moka_s3_config_resolve("s3", NULL, &c, &err));
    CHECK(strcmp(c.access_key, "AKIDDEF") == 0 && strcmp(c.secret_key, "sec-def") == 0);
    CHECK(strcmp(c.region, "us-west-2") == 0 && c.session_token[0] == '\0');
    CHECK(strcmp(c.endpoint, "https://s3.us-west-2.amazonaws.com") == 0);
    setenv("AWS_PROFILE", "work", 1);
    CHECK_OK(moka_s3_config_resolve("s3", NULL, &c, &err));
    CHECK(strcmp(c.access_key, "AKIDWORK") == 0 && strcmp(c.secret_key, "sec/work+x") == 0);
    CHECK(strcmp(c.session_token, "wtok") == 0 && strcmp(c.region, "ap-south-1") == 0);
    CHECK(strcmp(c.endpoint, "http://10.0.0.1:9000") == 0 && c.path_style);
    /* The environment's region wins over the file's; an unknown profile finds nothing. */
    setenv("AWS_DEFAULT_REGION", "ca-central-1", 1);
    CHECK_OK(moka_s3_config_resolve("s3", NULL, &c, &err));
    CHECK(strcmp(c.region, "ca-central-1") == 0);
    setenv("AWS_PROFILE", "nobody", 1);
    CHECK_STATUS(moka_s3_config_resolve("s3", NULL, &c, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "profile 'nobody'");
    /* Keys only in ~/.aws/config under [profile x] are found too. */
    CHECK(write_file(".aws/config", "[profile cfgonly]\naws_access_key_id = AKIDCFG\n"
                                    "aws_secret_access_key = sec-cfg\n") == 0);
    setenv("AWS_PROFILE", "cfgonly", 1);
    CHECK_OK(moka_s3_config_resolve("s3", NULL, &c, &err));
    CHECK(strcmp(c.access_key, "AKIDCFG") == 0 && strcmp(c.secret_key, "sec-cfg") == 0);
    rm_home();
    return 0;
}

static int test_config_qingstor(void)
{
    moka_err err = {0};
    moka_s3_config c;
    if (clean_env()) return 1;
    CHECK_STATUS(moka_s3_config_resolve("qs", NULL, &c, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "no credentials for qs://: looked at QSCTL_ACCESS_KEY_ID");
    CHECK_CONTAINS(err.msg, "/.qingstor/config.yaml");
    CHECK(write_file(".qingstor/config.yaml",
                     "access_key_id: 'QSKEY'\nsecret_access_key: \"qs-secret\"\n"
                     "host: 'qingstor.com'\nport: 443\nprotocol: 'https'\nzone: 'sh1a'\n") == 0);
    CHECK_OK(moka_s3_config_resolve("qs", NULL, &c, &err));
    CHECK(strcmp(c.access_key, "QSKEY") == 0 && strcmp(c.secret_key, "qs-secret") == 0);
    CHECK(strcmp(c.region, "sh1a") == 0 && c.path_style);
    CHECK(strcmp(c.endpoint, "https://s3.sh1a.qingstor.com") == 0);
    CHECK(strcmp(c.scheme, "qs") == 0);
    setenv("QSCTL_ZONE", "pek3b", 1);
    setenv("QSCTL_PROTOCOL", "http", 1);
    setenv("QSCTL_PORT", "8080", 1);
    CHECK_OK(moka_s3_config_resolve("qs", NULL, &c, &err));
    CHECK(strcmp(c.endpoint, "http://s3.pek3b.qingstor.com:8080") == 0);
    CHECK(strcmp(c.region, "pek3b") == 0);
    setenv("QSCTL_ACCESS_KEY_ID", "QSENV", 1);
    setenv("QSCTL_SECRET_ACCESS_KEY", "qs-env-secret", 1);
    CHECK_OK(moka_s3_config_resolve("qs", "http://127.0.0.1:1234", &c, &err));
    CHECK(strcmp(c.access_key, "QSENV") == 0 && strcmp(c.secret_key, "qs-env-secret") == 0);
    CHECK(strcmp(c.endpoint, "http://127.0.0.1:1234") == 0);
    setenv("QSCTL_PROTOCOL", "ftp", 1);
    CHECK_STATUS(moka_s3_config_resolve("qs", NULL, &c, &err), MOKA_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "protocol 'ftp' is neither http nor https");
    rm_home();
    return 0;
}

static int test_error_messages(void)
{
    moka_err err = {0};
    const char *sig =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch"
        "</Code><Message>The request signature we calculated does not match"
        "</Message></Error>";
    CHECK_STATUS(moka_s3_error_from_response(403, sig, "GET", "s3", "b", "k", &err), MOKA_ERR_IO);
    CHECK(strcmp(err.msg, "access denied for s3://b/k: the secret key does not match "
                          "(SignatureDoesNotMatch)") == 0);
    moka_s3_error_from_response(403, "<Error><Code>InvalidAccessKeyId</Code></Error>", "GET", "qs",
                                "b", "k", &err);
    CHECK_CONTAINS(err.msg, "access denied for qs://b/k: the access key id is not known");
    moka_s3_error_from_response(404, "<Error><Code>NoSuchBucket</Code></Error>", "GET", "s3", "nob",
                                "x/y", &err);
    CHECK(strcmp(err.msg, "no such bucket s3://nob (NoSuchBucket)") == 0);
    moka_s3_error_from_response(404, "<Error><Code>NoSuchKey</Code></Error>", "GET", "s3", "b",
                                "a b", &err);
    CHECK(strcmp(err.msg, "no such key s3://b/a b") == 0);
    moka_s3_error_from_response(403, "<Error><Code>RequestTimeTooSkewed</Code></Error>", "PUT",
                                "s3", "b", "k", &err);
    CHECK_CONTAINS(err.msg, "clock");
    CHECK_CONTAINS(err.msg, "(RequestTimeTooSkewed)");
    /* HEAD answers carry no body: the status decides. */
    moka_s3_error_from_response(404, NULL, "HEAD", "s3", "b", "k", &err);
    CHECK(strcmp(err.msg, "no such key s3://b/k") == 0);
    moka_s3_error_from_response(403, "", "HEAD", "s3", "b", "k", &err);
    CHECK_CONTAINS(err.msg, "access denied for s3://b/k");
    /* Unknown codes keep code and message, with XML entities decoded. */
    moka_s3_error_from_response(400,
                                "<Error><Code>InvalidArgument</Code><Message>a &amp; b &lt;c&gt;"
                                "</Message></Error>",
                                "POST", "s3", "b", "k", &err);
    CHECK(strcmp(err.msg, "POST s3://b/k failed: HTTP 400 InvalidArgument: a & b <c>") == 0);
    moka_s3_error_from_response(502, "garbage <Code>", "GET", "s3", "b", "", &err);
    CHECK(strcmp(err.msg, "GET s3://b failed: HTTP 502") == 0);
    return 0;
}

MOKA_TEST_MAIN(test_parse_url, test_uri_encode, test_canonical_query, test_config_env,
               test_config_aws_files, test_config_qingstor, test_error_messages)
