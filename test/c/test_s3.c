/* s3.c without a server: configuration, addressing, part sizes, presigned URLs, and the failures
 * that need no S3 (a missing file, a refused connection) with messages that say what and where.
 * An interrupt while a multipart upload starts, and the server-side encryption headers (which
 * requests carry them, signed: checked with a SigV4 reference written here apart from sigv4.c),
 * are played against a tiny scripted HTTP server on loopback (a thread of this program). */
#define _GNU_SOURCE /* strcasestr */
#include "hc_test.h"
#include "s3.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
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
#define HC_FAKE_HEADS 16

typedef struct {
    int listen_fd, port;
    int mode;                 /* what the server does with CreateMultipartUpload */
    long delay_ms;            /* before it does it */
    int stop;                 /* these are shared with the test: __atomic builtins */
    int initiate_seen, aborts, puts;
    int no_sse_echo;          /* answers leave out x-amz-server-side-encryption (a gateway that ignores it) */
    int nheads;               /* the request heads received, in order: read once the server stopped */
    char heads[HC_FAKE_HEADS][4096];
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
    if (f->nheads < HC_FAKE_HEADS) {
        size_t n = (size_t)(end + 4 - req);
        if (n >= sizeof f->heads[0]) n = sizeof f->heads[0] - 1;
        memcpy(f->heads[f->nheads], req, n);
        f->heads[f->nheads++][n] = '\0';
    }
    /* S3 names the encryption it applied in its answer (x-amz-server-side-encryption). */
    char echo[160] = "";
    const char *sse = strcasestr(req, "\r\nx-amz-server-side-encryption:");
    if (sse && sse < end && !__atomic_load_n(&f->no_sse_echo, __ATOMIC_SEQ_CST)) {
        sse += strlen("\r\nx-amz-server-side-encryption:");
        sse += strspn(sse, " ");
        snprintf(echo, sizeof echo, "x-amz-server-side-encryption: %.*s\r\n", (int)strcspn(sse, "\r"), sse);
    }
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
        snprintf(answer, sizeof answer, "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 echo, strlen(xml), xml);
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
        char answer[256];
        snprintf(answer, sizeof answer,
                 "HTTP/1.1 200 OK\r\nETag: \"e\"\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n", echo);
        hc_fake_send(fd, answer);
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

/* ---- server-side encryption: which requests carry the headers, and that they are signed */

/* A SigV4 signer written from AWS's description, apart from sigv4.c: it recomputes the signature
 * of a request as the server would, from the head the server received. */
static void ref_hex(const unsigned char *bytes, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

static void ref_hmac(const unsigned char *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len);
}

/* The signature of a canonical request at amz_date ("20150830T123600Z") in region and service. */
static void ref_signature(const char *creq, const char *amz_date, const char *region, const char *service,
                          const char *secret, char sig[65])
{
    unsigned char md[EVP_MAX_MD_SIZE], k1[32], k2[32], k3[32], k4[32], out[32];
    unsigned int mdlen = 0;
    char hash[65], sts[512], k0[128];
    EVP_Digest(creq, strlen(creq), md, &mdlen, EVP_sha256(), NULL);
    ref_hex(md, 32, hash);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date, region, service,
             hash);
    snprintf(k0, sizeof k0, "AWS4%s", secret);
    char date[9];
    snprintf(date, sizeof date, "%.8s", amz_date);
    ref_hmac((const unsigned char *)k0, strlen(k0), date, k1);
    ref_hmac(k1, 32, region, k2);
    ref_hmac(k2, 32, service, k3);
    ref_hmac(k3, 32, "aws4_request", k4);
    ref_hmac(k4, 32, sts, out);
    ref_hex(out, 32, sig);
}

/* A header's value in a request head, trimmed, into out; NULL when it is not there. */
static const char *ref_header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r' && line[2] != '\0';) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol) break;
        if ((size_t)(eol - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1, *e = eol;
            while (*v == ' ') v++;
            while (e > v && e[-1] == ' ') e--;
            snprintf(out, outlen, "%.*s", (int)(e - v), v);
            return out;
        }
        line = eol;
    }
    return NULL;
}

typedef struct {
    char method[16], path[512], query[512]; /* query canonical: pairs sorted by name, then value */
    char signed_headers[512], signature[65], region[32], amz_date[32], payload[80];
} ref_req;

static int ref_pair_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
    int c = strncmp(x, y, nx < ny ? nx : ny);
    if (c == 0 && nx != ny) return nx < ny ? -1 : 1;
    return c ? c : strcmp(x + nx, y + ny);
}

/* Request line, canonical query and Authorization's parts. The path and query are signed as sent
 * (the tests' keys and query values need no encoding). 0, or -1 when the head is not as expected. */
static int ref_parse(const char *head, ref_req *q)
{
    char target[1024], auth[1024], pairs_buf[512];
    memset(q, 0, sizeof *q);
    if (sscanf(head, "%15s %1023s", q->method, target) != 2) return -1;
    char *qm = strchr(target, '?');
    if (qm) *qm = '\0';
    snprintf(q->path, sizeof q->path, "%.511s", target);
    snprintf(pairs_buf, sizeof pairs_buf, "%.511s", qm ? qm + 1 : "");
    char *pairs[8], fixed[8][128], *save = NULL;
    size_t np = 0;
    for (char *t = strtok_r(pairs_buf, "&", &save); t && np < 8; t = strtok_r(NULL, "&", &save)) {
        snprintf(fixed[np], sizeof fixed[np], "%.126s%s", t, strchr(t, '=') ? "" : "="); /* "uploads" is "uploads=" */
        pairs[np] = fixed[np];
        np++;
    }
    qsort(pairs, np, sizeof *pairs, ref_pair_cmp);
    for (size_t i = 0; i < np; i++) {
        size_t len = strlen(q->query);
        snprintf(q->query + len, sizeof q->query - len, "%s%s", i ? "&" : "", pairs[i]);
    }
    if (!ref_header(head, "authorization", auth, sizeof auth) || !ref_header(head, "x-amz-date", q->amz_date,
        sizeof q->amz_date) || !ref_header(head, "x-amz-content-sha256", q->payload, sizeof q->payload))
        return -1;
    const char *cred = strstr(auth, "Credential="), *sh = strstr(auth, "SignedHeaders="), *sg = strstr(auth, "Signature=");
    if (!cred || !sh || !sg || sscanf(cred, "Credential=%*[^/]/%*[^/]/%31[^/]", q->region) != 1 ||
        sscanf(sh, "SignedHeaders=%511[^,]", q->signed_headers) != 1)
        return -1;
    snprintf(q->signature, sizeof q->signature, "%s", sg + strlen("Signature="));
    return 0;
}

/* The canonical request of head, every signed header with the value received, except name
 * (when given), signed with value instead: what the server computes from a tampered request. */
static void ref_canonical(const char *head, const ref_req *q, const char *name, const char *value, char *out,
                          size_t outlen)
{
    char names[512], got[4096];
    snprintf(names, sizeof names, "%s", q->signed_headers);
    int n = snprintf(out, outlen, "%s\n%s\n%s\n", q->method, q->path, q->query);
    char *save = NULL;
    for (char *h = strtok_r(names, ";", &save); h; h = strtok_r(NULL, ";", &save)) {
        const char *v = name && strcmp(h, name) == 0 ? value : ref_header(head, h, got, sizeof got);
        n += snprintf(out + n, outlen - (size_t)n, "%s:%s\n", h, v ? v : "(missing)");
    }
    snprintf(out + n, outlen - (size_t)n, "\n%s\n%s", q->signed_headers, q->payload);
}

/* Whether list ("a;b;c") holds name as one of its items. */
static int ref_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n) {
        if ((p == list || p[-1] == ';') && (p[n] == ';' || p[n] == '\0')) return 1;
    }
    return 0;
}

/* The reference itself, against the AWS suite's get-vanilla case (its canonical request given). */
static void test_reference_signer(void)
{
    FILE *f = fopen("test/fixtures/sigv4-test-suite/get-vanilla/get-vanilla.creq", "rb");
    char creq[1024] = "", sig[65];
    size_t n = f ? fread(creq, 1, sizeof creq - 1, f) : 0;
    if (f) fclose(f);
    creq[n] = '\0';
    HC_CHECK(n > 0, "the AWS suite's get-vanilla.creq is readable (run from the repository root)");
    ref_signature(creq, "20150830T123600Z", "us-east-1", "service", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sig);
    HC_CHECK_STR(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                 "the reference signs get-vanilla as AWS's suite says");
}

/* A file of size bytes (zeros) at a new temporary path (path: "/tmp/...XXXXXX", filled in). */
static void hc_temp_file(char *path, long long size)
{
    int fd = mkstemp(path);
    HC_CHECK(fd >= 0 && ftruncate(fd, (off_t)size) == 0, "temporary file of %lld bytes", size);
    if (fd >= 0) close(fd);
}

static hc_s3_client *hc_fake_client(const hc_fake_s3 *f, char *endpoint, size_t len, const char *sse,
                                     const char *key_id)
{
    snprintf(endpoint, len, "http://127.0.0.1:%d", f->port);
    hc_s3_config cfg = base_config();
    cfg.endpoint = endpoint;
    cfg.part_size = HC_S3_MIN_PART_SIZE;
    cfg.retry_base_ms = 5;
    cfg.max_attempts = 2;
    cfg.sse = sse;
    cfg.sse_kms_key_id = key_id;
    hc_s3_error err;
    hc_s3_client *c = hc_s3_client_new(&cfg, &err);
    HC_CHECK(c != NULL, "%s", err.message);
    return c;
}

/* Checks one request the server received: its signature verifies with the reference; every
 * x-amz-* header it carries is signed; it carries the encryption headers when it must (PutObject,
 * CreateMultipartUpload) and only then; and a changed encryption header breaks its signature. */
static void hc_check_sse_request(const char *head, const char *sse, const char *key_id)
{
    ref_req q;
    char creq[8192], sig[65], line[512], value[4096];
    HC_CHECK(ref_parse(head, &q) == 0, "a signed request:\n%s", head);
    ref_canonical(head, &q, NULL, NULL, creq, sizeof creq);
    ref_signature(creq, q.amz_date, q.region, "s3", base_config().secret_access_key, sig);
    HC_CHECK(strcmp(sig, q.signature) == 0, "the reference verifies the signature of\n%s\ncanonical:\n%s", head, creq);

    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, "x-amz-", 6) != 0) continue;
        snprintf(line, sizeof line, "%.*s", (int)strcspn(l + 2, ":"), l + 2);
        HC_CHECK(ref_listed(q.signed_headers, line), "%s is sent, so signed (SignedHeaders=%s)", line, q.signed_headers);
    }

    int put_object = strcmp(q.method, "PUT") == 0 && !strstr(q.query, "partNumber=");
    int create = strcmp(q.method, "POST") == 0 && strcmp(q.query, "uploads=") == 0;
    int carries = ref_header(head, "x-amz-server-side-encryption", value, sizeof value) != NULL;
    HC_CHECK(carries == (put_object || create), "%s %s?%s %s the encryption header", q.method, q.path, q.query,
             carries ? "carries" : "lacks");
    HC_CHECK(!carries || strcmp(value, sse) == 0, "x-amz-server-side-encryption: %s", value);
    int carries_key = ref_header(head, "x-amz-server-side-encryption-aws-kms-key-id", value, sizeof value) != NULL;
    HC_CHECK(carries_key == (carries && key_id != NULL), "%s %s?%s: key id header %s", q.method, q.path, q.query,
             carries_key ? "sent" : "not sent");
    HC_CHECK(!carries_key || strcmp(value, key_id) == 0, "x-amz-server-side-encryption-aws-kms-key-id: %s", value);
    if (!carries) return;

    HC_CHECK(ref_listed(q.signed_headers, "x-amz-server-side-encryption") &&
             ref_listed(q.signed_headers, "x-amz-server-side-encryption-aws-kms-key-id") == (key_id != NULL),
             "SignedHeaders=%s", q.signed_headers);
    snprintf(line, sizeof line, "\nx-amz-server-side-encryption:%s\n", sse);
    HC_CHECK(strstr(creq, line) != NULL, "the canonical request holds the header:\n%s", creq);
    /* What a server computes when the value is changed on the way: another signature. */
    ref_canonical(head, &q, "x-amz-server-side-encryption", strcmp(sse, "AES256") == 0 ? "aws:kms" : "AES256", creq,
                  sizeof creq);
    ref_signature(creq, q.amz_date, q.region, "s3", base_config().secret_access_key, sig);
    HC_CHECK(strcmp(sig, q.signature) != 0, "a changed x-amz-server-side-encryption breaks the signature");
    if (key_id) {
        ref_canonical(head, &q, "x-amz-server-side-encryption-aws-kms-key-id", "testkey-2", creq, sizeof creq);
        ref_signature(creq, q.amz_date, q.region, "s3", base_config().secret_access_key, sig);
        HC_CHECK(strcmp(sig, q.signature) != 0, "a changed key id breaks the signature");
    }
}

/* Every operation against the fake server with sse set: the heads it received, checked. */
static void test_sse_headers_are_sent_and_signed(void)
{
    struct { const char *sse, *key_id; } cases[] = {{"aws:kms", "testkey-1"}, {"AES256", NULL}, {"aws:kms", NULL}};
    char small[] = "/tmp/hc-test-s3-sse-small-XXXXXX", big[] = "/tmp/hc-test-s3-sse-big-XXXXXX";
    hc_temp_file(small, 100);
    hc_temp_file(big, HC_S3_MIN_PART_SIZE + 1);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hc_fake_s3 f;
        char endpoint[64], out[64];
        HC_CHECK(hc_fake_start(&f, HC_FAKE_ANSWER_LATE, 0) == 0, "fake server");
        hc_s3_client *c = hc_fake_client(&f, endpoint, sizeof endpoint, cases[i].sse, cases[i].key_id);
        hc_s3_upload_result res;
        hc_s3_error err;
        long long bytes;
        if (c) {
            HC_CHECK(hc_s3_upload(c, small, "dumps/small.gz", NULL, &res, &err) == HC_S3_OK && res.parts == 1, "%s",
                     err.message);
            HC_CHECK(hc_s3_upload(c, big, "dumps/big.gz", NULL, &res, &err) == HC_S3_OK && res.parts == 2, "%s",
                     err.message);
            snprintf(out, sizeof out, "%s.down", small);
            HC_CHECK(hc_s3_download(c, "dumps/small.gz", out, &bytes, &err) == HC_S3_OK, "%s", err.message);
            unlink(out);
            HC_CHECK(hc_s3_delete(c, "dumps/small.gz", &err) == HC_S3_OK, "%s", err.message);
        }
        hc_s3_client_free(c);
        hc_fake_stop(&f);
        /* PUT, then CreateMultipartUpload, 2 UploadPart, CompleteMultipartUpload; GET; DELETE */
        HC_CHECK(f.nheads == 7, "%s: 7 requests, got %d", cases[i].sse, f.nheads);
        for (int h = 0; h < f.nheads; h++) hc_check_sse_request(f.heads[h], cases[i].sse, cases[i].key_id);
    }
    unlink(small);
    unlink(big);
}

/* A gateway that ignores the header answers without x-amz-server-side-encryption: the upload
 * fails saying so, the object PUT is deleted, the multipart upload aborted before any part. */
static void test_sse_not_confirmed(void)
{
    char small[] = "/tmp/hc-test-s3-sse-small-XXXXXX", big[] = "/tmp/hc-test-s3-sse-big-XXXXXX";
    hc_temp_file(small, 100);
    hc_temp_file(big, HC_S3_MIN_PART_SIZE + 1);
    hc_fake_s3 f;
    char endpoint[64];
    HC_CHECK(hc_fake_start(&f, HC_FAKE_ANSWER_LATE, 0) == 0, "fake server");
    __atomic_store_n(&f.no_sse_echo, 1, __ATOMIC_SEQ_CST);
    hc_s3_client *c = hc_fake_client(&f, endpoint, sizeof endpoint, "AES256", NULL);
    hc_s3_upload_result res;
    hc_s3_error err;
    if (c) {
        HC_CHECK(hc_s3_upload(c, small, "dumps/small.gz", NULL, &res, &err) == HC_S3_EHTTP, "refused: %s", err.message);
        HC_CHECK(strstr(err.message, "without confirming the server-side encryption asked for while uploading to "
                                     "http://127.0.0.1") &&
                 strstr(err.message, "x-amz-server-side-encryption: AES256, the answer had no such header") &&
                 strstr(err.message, "; the object was deleted"), "%s", err.message);
        HC_CHECK(err.http_status == 200, "S3's status: %ld", err.http_status);
        HC_CHECK(hc_s3_upload(c, big, "dumps/big.gz", NULL, &res, &err) == HC_S3_EHTTP, "refused: %s", err.message);
        HC_CHECK(strstr(err.message, "while starting a multipart upload to") &&
                 strstr(err.message, "the multipart upload was aborted, nothing was stored"), "%s", err.message);
    }
    hc_s3_client_free(c);
    hc_fake_stop(&f);
    HC_CHECK(f.nheads == 5, "PUT, DELETE; CreateMultipartUpload, abort, ListParts: %d requests", f.nheads);
    HC_CHECK(f.nheads >= 2 && strncmp(f.heads[1], "DELETE /my-bucket/dumps/small.gz HTTP/", 38) == 0,
             "the object PUT is deleted:\n%s", f.heads[1]);
    HC_CHECK(f.aborts == 1 && f.puts == 1, "the upload aborted (%d), no part sent (%d PUTs: the single one)", f.aborts,
             f.puts);
    unlink(small);
    unlink(big);
}

static void test_sse_config(void)
{
    hc_s3_error err;
    hc_s3_config cfg = base_config();
    cfg.sse = "aes256"; /* Ruby gives S3's spelling; C takes nothing else */
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && err.kind == HC_S3_EARG &&
             strstr(err.message, "sse must be aws:kms or AES256") && strstr(err.message, "\"aes256\""), "%s",
             err.message);
    cfg = base_config();
    cfg.sse_kms_key_id = "testkey-1";
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && strstr(err.message, "sse_kms_key_id is the KMS key of sse "
                                                                          "aws:kms, and sse is not set"),
             "%s", err.message);
    cfg.sse = "AES256";
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && strstr(err.message, "and sse is AES256"), "%s", err.message);
    cfg.sse = "aws:kms";
    cfg.sse_kms_key_id = "key\r\nx-injected: 1";
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && strstr(err.message, "byte 0x0d at offset 3"), "%s", err.message);
    cfg.sse_kms_key_id = "alias/my key";
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && strstr(err.message, "byte 0x20"), "%s", err.message);
    char *long_id = malloc(HC_S3_MAX_KMS_KEY_ID + 2);
    memset(long_id, 'k', HC_S3_MAX_KMS_KEY_ID + 1);
    long_id[HC_S3_MAX_KMS_KEY_ID + 1] = '\0';
    cfg.sse_kms_key_id = long_id;
    HC_CHECK(hc_s3_client_new(&cfg, &err) == NULL && strstr(err.message, "2049 bytes"), "%s", err.message);
    long_id[HC_S3_MAX_KMS_KEY_ID] = '\0'; /* the longest there may be: fits the header */
    hc_s3_client *c = hc_s3_client_new(&cfg, &err);
    HC_CHECK(c != NULL, "a 2048-byte ARN: %s", err.message);
    hc_s3_client_free(c);
    free(long_id);
    cfg.sse_kms_key_id = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    c = hc_s3_client_new(&cfg, &err);
    HC_CHECK(c != NULL, "an ARN: %s", err.message);
    hc_s3_client_free(c);
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
    test_sse_config();
    test_reference_signer();
    test_sse_headers_are_sent_and_signed();
    test_sse_not_confirmed();
    curl_global_cleanup();
    return hc_test_summary("s3");
}
