/* s3.c without a server: configuration, addressing, part sizes, presigned URLs, and the failures
 * that need no S3 (a missing file, a refused connection) with messages that say what and where.
 * An interrupt while a multipart upload starts is played against a tiny scripted HTTP server on
 * loopback (a thread of this program). */
#define _GNU_SOURCE /* strcasestr */
#include "hc_test.h"
#include "s3.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
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

    /* Virtual-hosted addressing puts the bucket in front of the host: an IP cannot take it. */
    const char *ips[] = {"http://127.0.0.1:9000", "http://[::1]:9000", "https://10.1.2.3"};
    for (size_t i = 0; i < sizeof ips / sizeof *ips; i++) {
        cfg = base_config();
        cfg.endpoint = ips[i];
        cfg.path_style = 0;
        HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && err.kind == HC_S3_EARG &&
                 strstr(err.message, "path_style: false") && strstr(err.message, ips[i]), "%s: %s", ips[i], err.message);
    }
    cfg = base_config();
    cfg.endpoint = "http://localhost:9000";
    cfg.path_style = 0;
    hc_s3_client *c = hc_s3_client_new(&cfg, &err);
    HC_CHECK(c != NULL, "a host name takes the bucket in front: %s", err.message);
    if (c) HC_CHECK(strcmp(hc_s3_client_base_url(c), "http://my-bucket.localhost:9000") == 0, "%s",
                    hc_s3_client_base_url(c));
    hc_s3_client_free(c);
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

/* ---- an interrupt while CreateMultipartUpload is in flight */

enum { HC_FAKE_ANSWER_LATE, HC_FAKE_HANG_UP };

typedef struct {
    int listen_fd, port;
    int mode;                 /* what the server does with CreateMultipartUpload */
    long delay_ms;            /* before it does it */
    int stop;                 /* these are shared with the test: __atomic builtins */
    int initiate_seen, aborts, puts;
    pthread_t thread;
} hc_fake_s3;

static long long hc_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hc_fake_send(int fd, const char *text)
{
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n <= 0) return;
        done += (size_t)n;
    }
}

/* One request per connection: reads its head and body (bounded), answers by script, closes. */
static void hc_fake_serve(hc_fake_s3 *f, int fd)
{
    char req[8192];
    size_t len = 0;
    long long deadline = hc_ms() + 5000;
    char *end = NULL;
    while (!end && len < sizeof req - 1 && hc_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(fd, req + len, sizeof req - 1 - len);
        if (n <= 0) return;
        len += (size_t)n;
        req[len] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    if (!end) return;
    const char *cl = strcasestr(req, "content-length:");
    long body = cl ? strtol(cl + 15, NULL, 10) : 0;
    char sink[65536];
    long got = (long)(len - (size_t)(end + 4 - req));
    while (got < body && hc_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(fd, sink, sizeof sink);
        if (n <= 0) return;
        got += n;
    }
    if (strncmp(req, "POST ", 5) == 0 && strstr(req, "?uploads")) {
        __atomic_store_n(&f->initiate_seen, 1, __ATOMIC_SEQ_CST);
        usleep((useconds_t)f->delay_ms * 1000);
        if (f->mode == HC_FAKE_HANG_UP) return;
        const char *xml = "<InitiateMultipartUploadResult><Bucket>my-bucket</Bucket><Key>k</Key>"
                          "<UploadId>upload-17</UploadId></InitiateMultipartUploadResult>";
        char answer[512];
        snprintf(answer, sizeof answer, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(xml), xml);
        hc_fake_send(fd, answer);
    } else if (strncmp(req, "DELETE ", 7) == 0 && strstr(req, "uploadId=upload-17")) {
        __atomic_add_fetch(&f->aborts, 1, __ATOMIC_SEQ_CST);
        hc_fake_send(fd, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    } else if (strncmp(req, "GET ", 4) == 0 && strstr(req, "uploadId=upload-17")) { /* ListParts: aborted */
        const char *xml = "<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>";
        char answer[512];
        snprintf(answer, sizeof answer, "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(xml), xml);
        hc_fake_send(fd, answer);
    } else {
        if (strncmp(req, "PUT ", 4) == 0) __atomic_add_fetch(&f->puts, 1, __ATOMIC_SEQ_CST);
        hc_fake_send(fd, "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
}

static void *hc_fake_loop(void *arg)
{
    hc_fake_s3 *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
        struct pollfd p = {f->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        hc_fake_serve(f, fd);
        close(fd);
    }
    return NULL;
}

static int hc_fake_start(hc_fake_s3 *f, int mode, long delay_ms)
{
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->delay_ms = delay_ms;
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(f->listen_fd, 8) != 0 || getsockname(f->listen_fd, (struct sockaddr *)&addr, &alen) != 0)
        return -1;
    f->port = ntohs(addr.sin_port);
    return pthread_create(&f->thread, NULL, hc_fake_loop, f);
}

static void hc_fake_stop(hc_fake_s3 *f)
{
    __atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

typedef struct {
    hc_s3_client *c;
    const char *path;
    hc_s3_status st;
    hc_s3_error err;
} hc_upload_call;

static void *hc_upload_thread(void *arg)
{
    hc_upload_call *u = arg;
    hc_s3_upload_result res;
    u->st = hc_s3_upload(u->c, u->path, "dumps/heap.gz", NULL, &res, &u->err);
    return NULL;
}

/* Uploads a 2-part file against the fake server and aborts once CreateMultipartUpload reached it.
 * Returns the milliseconds from the abort to the upload's return. */
static long long hc_abort_while_starting(hc_fake_s3 *f, const char *path, hc_upload_call *u)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", f->port);
    hc_s3_config cfg = base_config();
    cfg.endpoint = endpoint;
    cfg.part_size = HC_S3_MIN_PART_SIZE;
    cfg.retry_base_ms = 5;
    hc_s3_error err;
    memset(u, 0, sizeof *u);
    u->c = hc_s3_client_new(&cfg, &err);
    u->path = path;
    HC_CHECK(u->c != NULL, "%s", err.message);
    if (!u->c) return -1;
    pthread_t t;
    pthread_create(&t, NULL, hc_upload_thread, u);
    long long deadline = hc_ms() + 5000;
    while (!__atomic_load_n(&f->initiate_seen, __ATOMIC_SEQ_CST) && hc_ms() < deadline) usleep(5000);
    HC_CHECK(__atomic_load_n(&f->initiate_seen, __ATOMIC_SEQ_CST), "CreateMultipartUpload reached the server");
    long long aborted_at = hc_ms();
    hc_s3_client_abort(u->c);
    pthread_join(t, NULL);
    long long took = hc_ms() - aborted_at;
    hc_s3_client_free(u->c);
    return took;
}

static void test_abort_while_a_multipart_upload_starts(void)
{
    char path[] = "/tmp/hc-test-s3-start-XXXXXX";
    int fd = mkstemp(path);
    HC_CHECK(fd >= 0 && ftruncate(fd, HC_S3_MIN_PART_SIZE + 1) == 0, "a file of two parts");
    close(fd);

    /* The answer comes late (after the abort): its upload id is read and the upload aborted. */
    hc_fake_s3 f;
    hc_upload_call u;
    HC_CHECK(hc_fake_start(&f, HC_FAKE_ANSWER_LATE, 300) == 0, "fake server");
    long long took = hc_abort_while_starting(&f, path, &u);
    hc_fake_stop(&f);
    HC_CHECK(u.st == HC_S3_EABORTED, "interrupted: %d %s", u.st, u.err.message);
    HC_CHECK(f.aborts == 1, "the upload S3 started was aborted (%d aborts)", f.aborts);
    HC_CHECK(f.puts == 0, "no part went out after the abort (%d)", f.puts);
    HC_CHECK(!u.err.upload_left_open, "nothing left open: %s", u.err.message);
    HC_CHECK(strstr(u.err.message, "interrupted while starting a multipart upload to "
                                   "http://127.0.0.1") &&
             strstr(u.err.message, "the multipart upload was aborted, nothing was stored"), "%s", u.err.message);
    HC_CHECK(took >= 0 && took < HC_S3_SETTLE_MS, "returned once the answer came: %lld ms", took);

    /* No answer at all (the connection closes): the upload id is unknowable, and the message says
     * which key may hold an open upload and what cleans it up. */
    HC_CHECK(hc_fake_start(&f, HC_FAKE_HANG_UP, 100) == 0, "fake server");
    took = hc_abort_while_starting(&f, path, &u);
    hc_fake_stop(&f);
    HC_CHECK(u.st == HC_S3_EABORTED, "interrupted: %d %s", u.st, u.err.message);
    HC_CHECK(u.err.upload_left_open, "an upload may be left open: %s", u.err.message);
    HC_CHECK(strstr(u.err.message, "for the key dumps/heap.gz") && strstr(u.err.message, "AbortIncompleteMultipartUpload"),
             "names the key and the lifecycle rule: %s", u.err.message);
    HC_CHECK(f.aborts == 0 && f.puts == 0, "nothing else sent (%d aborts, %d parts)", f.aborts, f.puts);
    HC_CHECK(took >= 0 && took < HC_S3_SETTLE_MS, "no retry after the abort: %lld ms", took);
    unlink(path);
}

/* S3's multipart ETag, computed when the Complete answer has none (RGW 16's empty <ETag/>): MD5
 * of the parts' binary MD5s, "-N". Expected values from Ruby's Digest::MD5 on the same parts. */
static void test_multipart_etag(void)
{
    char *quoted[] = {"\"e09c80c42fda55f9d992e59ca6b3307d\"", "\"085a8cdaee82caf894e995cd72b220bb\"",
                      "\"4a8a08f09d37b73795649038408b5f33\""};
    char out[128];
    HC_CHECK(hc_s3_multipart_etag(quoted, 3, out, sizeof out) == 0, "three parts");
    HC_CHECK(strcmp(out, "\"023060c5b84baa5b60e8465feaf3e789-3\"") == 0, "got %s", out);
    char *bare[] = {"E09C80C42FDA55F9D992E59CA6B3307D", "085a8cdaee82caf894e995cd72b220bb",
                    "4a8a08f09d37b73795649038408b5f33"};
    HC_CHECK(hc_s3_multipart_etag(bare, 3, out, sizeof out) == 0 &&
             strcmp(out, "\"023060c5b84baa5b60e8465feaf3e789-3\"") == 0, "unquoted, upper case: %s", out);
    char *not_md5[] = {"\"e09c80c42fda55f9d992e59ca6b3307d\"", "\"kms-encrypted\""};
    HC_CHECK(hc_s3_multipart_etag(not_md5, 2, out, sizeof out) == -1 && out[0] == '\0', "a part that is no MD5");
    char *missing[] = {NULL};
    HC_CHECK(hc_s3_multipart_etag(missing, 1, out, sizeof out) == -1, "a part without an ETag");
    HC_CHECK(hc_s3_multipart_etag(quoted, 3, out, 16) == -1, "too small a buffer");
}

int main(void)
{
    test_multipart_etag();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_addressing();
    test_bad_config();
    test_part_size();
    test_presign();
    test_local_failures();
    test_abort_while_a_multipart_upload_starts();
    curl_global_cleanup();
    return hc_test_summary("s3");
}
