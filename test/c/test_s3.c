/* s3.c without a server: configuration, addressing, part sizes, presigned URLs, and the failures
 * that need no S3 (a missing file, a refused connection) with messages that say what and where. */
#include "hc_test.h"
#include "s3.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <unistd.h>

static hc_s3_config base_config(void)
{
    hc_s3_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.bucket = "my-bucket";
    cfg.region = "eu-west-1";
    cfg.access_key_id = "AKIDEXAMPLE";
    cfg.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    cfg.path_style = -1;
    return cfg;
}

static void test_addressing(void)
{
    hc_s3_error err;
    hc_s3_config cfg = base_config();
    hc_s3_client *c = hc_s3_client_new(&cfg, &err);
    HC_CHECK(c != NULL, "%s", err.message);
    if (c) HC_CHECK_STR(hc_s3_client_base_url(c), "https://my-bucket.s3.eu-west-1.amazonaws.com", "AWS: virtual-hosted");
    hc_s3_client_free(c);

    cfg.bucket = "my.dotted.bucket";
    c = hc_s3_client_new(&cfg, &err);
    if (c) HC_CHECK_STR(hc_s3_client_base_url(c), "https://s3.eu-west-1.amazonaws.com/my.dotted.bucket",
                        "dotted bucket: path-style");
    hc_s3_client_free(c);

    cfg = base_config();
    cfg.endpoint = "http://127.0.0.1:9000";
    c = hc_s3_client_new(&cfg, &err);
    if (c) HC_CHECK_STR(hc_s3_client_base_url(c), "http://127.0.0.1:9000/my-bucket", "custom endpoint: path-style");
    hc_s3_client_free(c);

    cfg.endpoint = "https://minio.internal:9443/";
    cfg.path_style = 0;
    c = hc_s3_client_new(&cfg, &err);
    if (c) HC_CHECK_STR(hc_s3_client_base_url(c), "https://my-bucket.minio.internal:9443",
                        "custom endpoint, path_style false: virtual-hosted");
    hc_s3_client_free(c);
}

static void test_bad_config(void)
{
    hc_s3_error err;
    hc_s3_config cfg = base_config();
    cfg.endpoint = "ftp://example.com";
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && err.kind == HC_S3_EARG, "ftp endpoint refused");
    HC_CHECK(strstr(err.message, "ftp://example.com") != NULL, "names the endpoint: %s", err.message);

    cfg.endpoint = "http://example.com/some/path";
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL, "endpoint with a path refused");

    cfg = base_config();
    cfg.bucket = "a/b";
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && strstr(err.message, "a/b"), "bad bucket: %s", err.message);

    cfg = base_config();
    cfg.secret_access_key = "";
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && strstr(err.message, "AWS_SECRET_ACCESS_KEY"),
             "missing secret says how to give it: %s", err.message);

    cfg = base_config();
    cfg.concurrency = 65;
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && strstr(err.message, "concurrency"), "%s", err.message);
}

static void test_part_size(void)
{
    long mib = HC_S3_MIB;
    HC_CHECK(hc_s3_part_size_for(8 * mib, 100 * mib) == 8 * mib, "small file keeps 8 MiB");
    HC_CHECK(hc_s3_part_size_for(8 * mib, 10000LL * 8 * mib) == 8 * mib, "exactly 10,000 parts");
    long grown = hc_s3_part_size_for(8 * mib, 10000LL * 8 * mib + 1);
    HC_CHECK(grown == 9 * mib, "one byte over grows to 9 MiB, got %ld", grown);
    long long huge = 200LL * 1024 * 1024 * 1024;
    grown = hc_s3_part_size_for(8 * mib, huge);
    HC_CHECK(grown % mib == 0 && (huge + grown - 1) / grown <= 10000, "200 GiB fits: %ld", grown);
}

static void test_presign(void)
{
    hc_s3_error err;
    hc_s3_config cfg = base_config();
    cfg.endpoint = "http://127.0.0.1:9000";
    hc_s3_client *c = hc_s3_client_new(&cfg, &err);
    char *url = c ? hc_s3_presigned_url(c, "dumps/a b&c+d.gz", 3600, 1440000000LL, &err) : NULL;
    HC_CHECK(url != NULL, "%s", err.message);
    if (url) {
        const char *want = "http://127.0.0.1:9000/my-bucket/dumps/a%20b%26c%2Bd.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256";
        HC_CHECK(strncmp(url, want, strlen(want)) == 0, "path encoded once, query follows: %s", url);
        HC_CHECK(strstr(url, "X-Amz-Expires=3600") && strstr(url, "X-Amz-Date=20150819T160000Z"), "%s", url);
        HC_CHECK(strstr(url, "&X-Amz-Signature=") != NULL, "signature last: %s", url);
    }
    free(url);
    HC_CHECK(hc_s3_presigned_url(c, "k", 0, 1440000000LL, &err) == NULL && err.kind == HC_S3_EARG,
             "expires_in 0 refused");
    HC_CHECK(hc_s3_presigned_url(c, "", 60, 1440000000LL, &err) == NULL, "empty key refused");
    hc_s3_client_free(c);
}

static void test_local_failures(void)
{
    hc_s3_error err;
    hc_s3_upload_result res;
    hc_s3_config cfg = base_config();
    cfg.endpoint = "http://127.0.0.1:1"; /* nothing listens on port 1 */
    cfg.retry_base_ms = 5;
    cfg.max_attempts = 3;
    hc_s3_client *c = hc_s3_client_new(&cfg, &err);
    if (!c) return;

    HC_CHECK(hc_s3_upload(c, "/nonexistent/heap.gz", "k", NULL, &res, &err) == HC_S3_EFILE, "missing file");
    HC_CHECK(strstr(err.message, "/nonexistent/heap.gz") && strstr(err.message, "No such file"),
             "names the path and the OS error: %s", err.message);
    HC_CHECK(hc_s3_upload(c, "/tmp", "k", NULL, &res, &err) == HC_S3_EFILE, "a directory");
    HC_CHECK(strstr(err.message, "not a regular file") != NULL, "%s", err.message);

    char path[] = "/tmp/hc-test-s3-XXXXXX";
    int fd = mkstemp(path);
    HC_CHECK(fd >= 0 && write(fd, "hello", 5) == 5, "temp file");
    close(fd);
    HC_CHECK(hc_s3_upload(c, path, "dumps/k", NULL, &res, &err) == HC_S3_ETRANSPORT, "refused connection");
    HC_CHECK(strstr(err.message, "127.0.0.1") && strstr(err.message, "Connection refused") &&
             strstr(err.message, "http://127.0.0.1:1/my-bucket/dumps/k") && strstr(err.message, "after 3 attempts"),
             "says where, why and how often: %s", err.message);
    HC_CHECK(err.http_status == 0, "no HTTP status without an answer");

    long long bytes;
    HC_CHECK(hc_s3_download(c, "k", "/nonexistent-dir/out", &bytes, &err) == HC_S3_EFILE, "download target dir missing");
    HC_CHECK(strstr(err.message, "/nonexistent-dir/out") != NULL, "%s", err.message);

    /* An abort before the call stops it at once. */
    hc_s3_client_abort(c);
    HC_CHECK(hc_s3_delete(c, "k", &err) == HC_S3_EABORTED, "aborted: %s", err.message);
    hc_s3_client_reset_abort(c);
    unlink(path);
    hc_s3_client_free(c);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_addressing();
    test_bad_config();
    test_part_size();
    test_presign();
    test_local_failures();
    curl_global_cleanup();
    return hc_test_summary("s3");
}
