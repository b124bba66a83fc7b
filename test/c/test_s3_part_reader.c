/* s3_part_reader.c: every part handed out once, in order, with the right bytes, SHA-256 and MD5; a
 * failed read is reported with the path; stopping early joins the thread and frees everything. */
#include "hc_test.h"
#include "s3_part_reader.h"
#include "sigv4.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t notified_lock = PTHREAD_MUTEX_INITIALIZER;
static int notified;

static void count_notify(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&notified_lock);
    notified++;
    pthread_mutex_unlock(&notified_lock);
}

/* The Content-MD5 of len bytes, by libcrypto directly: the reader's own hashing is what is checked. */
static void md5_base64(const void *data, size_t len, char b64[HC_MD5_BASE64_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)b64, md, 16);
}

static void nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

static char *write_file(size_t size, unsigned char **content)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/hc-part-reader-XXXXXX");
    int fd = mkstemp(path);
    unsigned char *data = malloc(size);
    for (size_t i = 0; i < size; i++) data[i] = (unsigned char)(i * 131 + (i >> 9));
    HC_CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size, "writing the test file");
    close(fd);
    *content = data;
    return path;
}

static void test_all_parts_in_order(void)
{
    unsigned char *content;
    const size_t size = 10 * 1000 + 7; /* 4 parts of 2,500 bytes and a short fifth */
    char *path = write_file(size, &content);
    int fd = open(path, O_RDONLY);
    char err[512];
    hc_part_reader *r = hc_part_reader_start(fd, path, (long long)size, 2500, 2, count_notify, NULL, err, sizeof err);
    HC_CHECK(r != NULL, "%s", err);
    if (!r) return;
    HC_CHECK(hc_part_reader_count(r) == 5, "5 parts, got %ld", hc_part_reader_count(r));
    long expected = 1;
    int held = -1;
    for (int spins = 0; spins < 100000 && expected <= 5; spins++) {
        hc_part part;
        int rc = hc_part_reader_take(r, &part, err, sizeof err);
        if (rc == HC_PART_PENDING) {
            /* Two buffers: holding one back still lets the other move forward. */
            if (held >= 0) {
                hc_part_reader_give_back(r, held);
                held = -1;
            }
            nap();
            continue;
        }
        HC_CHECK(rc == HC_PART_READY, "ready, got %d (%s)", rc, err);
        if (rc != HC_PART_READY) break;
        HC_CHECK(part.number == expected, "part %ld, expected %ld", part.number, expected);
        long long want_len = expected < 5 ? 2500 : 7;
        HC_CHECK(part.len == want_len && part.offset == (expected - 1) * 2500, "part %ld: %lld bytes at %lld",
                 part.number, part.len, part.offset);
        HC_CHECK(memcmp(part.data, content + part.offset, (size_t)part.len) == 0, "part %ld bytes", part.number);
        char hex[65];
        hc_sha256_hex(content + part.offset, (size_t)part.len, hex);
        HC_CHECK_STR(part.sha256, hex, "part SHA-256");
        char md5[HC_MD5_BASE64_LEN];
        md5_base64(content + part.offset, (size_t)part.len, md5);
        HC_CHECK_STR(part.md5, md5, "part Content-MD5");
        if (held >= 0) hc_part_reader_give_back(r, held);
        held = part.index;
        expected++;
    }
    HC_CHECK(expected == 6, "every part handed out, next expected %ld", expected);
    hc_part dummy;
    HC_CHECK(hc_part_reader_take(r, &dummy, err, sizeof err) == HC_PART_ALL_TAKEN, "then all taken");
    hc_part_reader_stop(r);
    pthread_mutex_lock(&notified_lock);
    HC_CHECK(notified == 5, "notified once per part, got %d", notified);
    pthread_mutex_unlock(&notified_lock);
    close(fd);
    unlink(path);
    free(content);
}

static void test_a_shrunk_file_fails_with_its_path(void)
{
    unsigned char *content;
    char *path = write_file(6000, &content);
    int fd = open(path, O_RDONLY);
    HC_CHECK(truncate(path, 3000) == 0, "truncating");
    char err[512];
    hc_part_reader *r = hc_part_reader_start(fd, path, 6000, 2000, 3, count_notify, NULL, err, sizeof err);
    int rc = HC_PART_PENDING;
    hc_part part;
    for (int spins = 0; spins < 100000 && rc != HC_PART_FAILED; spins++) {
        rc = hc_part_reader_take(r, &part, err, sizeof err);
        if (rc == HC_PART_READY) hc_part_reader_give_back(r, part.index);
        if (rc == HC_PART_PENDING) nap();
    }
    HC_CHECK(rc == HC_PART_FAILED, "the read failed");
    HC_CHECK(strstr(err, path) && strstr(err, "part 2") && strstr(err, "became shorter"), "says what: %s", err);
    hc_part_reader_stop(r);
    close(fd);
    unlink(path);
    free(content);
}

static void test_stop_early(void)
{
    unsigned char *content;
    char *path = write_file(100000, &content);
    int fd = open(path, O_RDONLY);
    char err[512];
    hc_part_reader *r = hc_part_reader_start(fd, path, 100000, 1000, 4, count_notify, NULL, err, sizeof err);
    hc_part part;
    while (hc_part_reader_take(r, &part, err, sizeof err) != HC_PART_READY) nap();
    hc_part_reader_stop(r); /* with parts ready, taken and unread: no leak, no hang */
    HC_CHECK(1, "stopped");
    HC_CHECK(hc_part_reader_start(fd, path, 0, 1000, 4, count_notify, NULL, err, sizeof err) == NULL,
             "an empty file is not read in parts");
    close(fd);
    unlink(path);
    free(content);
}

/* ---- a growing file: a writer thread appends in steps; its wait() is the s3_growing_file.h contract */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int fd;
    const unsigned char *data;
    long long total, written, step;
    int done, fail_at_end;
} writer;

static int writer_wait(void *ctx, long long need, int timeout_ms, long long *size, int *final, char *why,
                       size_t whylen)
{
    writer *w = ctx;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)timeout_ms * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&w->lock);
    while (!w->done && w->written < need && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0) {
    }
    *size = w->written;
    *final = w->done && !w->fail_at_end;
    int failed = w->done && w->fail_at_end;
    pthread_mutex_unlock(&w->lock);
    if (failed) snprintf(why, whylen, "the heap dump failed: dump child killed by SIGKILL before it finished");
    return failed ? -1 : 0;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    for (long long pos = 0; pos < w->total; pos += w->step) {
        long long n = w->total - pos < w->step ? w->total - pos : w->step;
        if (pwrite(w->fd, w->data + pos, (size_t)n, (off_t)pos) != n) break;
        pthread_mutex_lock(&w->lock);
        w->written = pos + n;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        nap();
    }
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Takes parts until all are taken or the reader fails; checks each against content. */
static int take_all(hc_part_reader *r, const unsigned char *content, long part_size, long *parts, char *err,
                    size_t errlen)
{
    int rc = HC_PART_PENDING;
    long expected = 1;
    for (int spins = 0; spins < 200000; spins++) {
        hc_part part;
        rc = hc_part_reader_take(r, &part, err, errlen);
        if (rc == HC_PART_PENDING) {
            nap();
            continue;
        }
        if (rc != HC_PART_READY) break;
        HC_CHECK(part.number == expected && part.offset == (expected - 1) * part_size, "part %ld in order",
                 part.number);
        HC_CHECK(memcmp(part.data, content + part.offset, (size_t)part.len) == 0, "part %ld bytes", part.number);
        char hex[65];
        hc_sha256_hex(content + part.offset, (size_t)part.len, hex);
        HC_CHECK_STR(part.sha256, hex, "part SHA-256");
        char md5[HC_MD5_BASE64_LEN];
        md5_base64(content + part.offset, (size_t)part.len, md5);
        HC_CHECK_STR(part.md5, md5, "part Content-MD5");
        hc_part_reader_give_back(r, part.index);
        expected++;
    }
    *parts = expected - 1;
    return rc;
}

static void test_a_growing_file_is_read_as_it_grows(void)
{
    unsigned char *content;
    char *path = write_file(1, &content); /* an empty file the writer fills */
    free(content);
    HC_CHECK(truncate(path, 0) == 0, "emptying");
    const long long total = 23 * 1000 + 11;
    content = malloc((size_t)total);
    for (long long i = 0; i < total; i++) content[i] = (unsigned char)(i * 7 + (i >> 8));
    writer w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, open(path, O_WRONLY), content, total, 0, 700, 0, 0};
    int fd = open(path, O_RDONLY);
    hc_growing_file grow = {writer_wait, &w};
    char err[512];
    hc_part_reader *r = hc_part_reader_start_growing(fd, path, &grow, 2000, 3, count_notify, NULL, err, sizeof err);
    HC_CHECK(r != NULL, "%s", err);
    HC_CHECK(hc_part_reader_count(r) == -1 && hc_part_reader_size(r) == -1, "size unknown while it is written");
    pthread_t t;
    pthread_create(&t, NULL, writer_main, &w);
    long parts = 0;
    int rc = take_all(r, content, 2000, &parts, err, sizeof err);
    HC_CHECK(rc == HC_PART_ALL_TAKEN, "all taken, got %d (%s)", rc, err);
    HC_CHECK(parts == 12 && hc_part_reader_count(r) == 12 && hc_part_reader_size(r) == total,
             "12 parts of the final %lld bytes: %ld parts, count %ld, size %lld", total, parts,
             hc_part_reader_count(r), hc_part_reader_size(r));
    pthread_join(t, NULL);
    hc_part_reader_stop(r);
    close(fd);
    close(w.fd);

    /* The writer fails after some parts: the reader fails with the writer's reason. */
    HC_CHECK(truncate(path, 0) == 0, "emptying");
    writer w2 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, open(path, O_WRONLY), content, 5000, 0, 1000, 0, 1};
    fd = open(path, O_RDONLY);
    hc_growing_file grow2 = {writer_wait, &w2};
    r = hc_part_reader_start_growing(fd, path, &grow2, 2000, 3, count_notify, NULL, err, sizeof err);
    pthread_create(&t, NULL, writer_main, &w2);
    rc = take_all(r, content, 2000, &parts, err, sizeof err);
    /* Failure wins over bytes already there: at most the 2 whole parts were handed out first. */
    HC_CHECK(rc == HC_PART_FAILED && parts <= 2, "failed, at most 2 parts first: rc %d after %ld", rc, parts);
    HC_CHECK(strstr(err, "dump child killed by SIGKILL") != NULL, "the writer's reason: %s", err);
    pthread_join(t, NULL);
    hc_part_reader_stop(r);
    close(fd);
    close(w2.fd);

    /* A file that never finishes: stop ends the wait promptly. */
    writer w3 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, content, 0, 0, 1, 0, 0};
    fd = open(path, O_RDONLY);
    hc_growing_file grow3 = {writer_wait, &w3};
    r = hc_part_reader_start_growing(fd, path, &grow3, 2000, 3, count_notify, NULL, err, sizeof err);
    nap();
    hc_part_reader_stop(r);
    HC_CHECK(1, "stopped while waiting on a file that does not grow");
    close(fd);
    unlink(path);
    free(content);
}

static void test_a_growing_file_past_the_part_limit_fails_naming_part_size(void)
{
    unsigned char *content;
    char *path = write_file(HC_PART_MAX + 1, &content);
    writer w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, content, HC_PART_MAX + 1,
                HC_PART_MAX + 1, 1, 0, 0};
    int fd = open(path, O_RDONLY);
    hc_growing_file grow = {writer_wait, &w};
    char err[512];
    hc_part_reader *r = hc_part_reader_start_growing(fd, path, &grow, 1, 4, count_notify, NULL, err, sizeof err);
    long parts = 0;
    int rc = take_all(r, content, 1, &parts, err, sizeof err);
    /* The failure is reported as soon as it is known, even with read parts not yet taken. */
    HC_CHECK(rc == HC_PART_FAILED && parts <= HC_PART_MAX, "failed, never past %d parts: rc %d after %ld", HC_PART_MAX,
             rc, parts);
    HC_CHECK(strstr(err, "grew past 10000 parts of 1 bytes") && strstr(err, "part_size"), "says what: %s", err);
    hc_part_reader_stop(r);
    close(fd);
    unlink(path);
    free(content);
}

int main(void)
{
    test_all_parts_in_order();
    test_a_shrunk_file_fails_with_its_path();
    test_stop_early();
    test_a_growing_file_is_read_as_it_grows();
    test_a_growing_file_past_the_part_limit_fails_naming_part_size();
    return hc_test_summary("s3_part_reader");
}
