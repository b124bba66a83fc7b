/* s3_part_reader.c: every part handed out once, in order, with the right bytes and SHA-256; a
 * failed read is reported with the path; stopping early joins the thread and frees everything. */
#include "hc_test.h"
#include "s3_part_reader.h"
#include "sigv4.h"

#include <fcntl.h>
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

int main(void)
{
    test_all_parts_in_order();
    test_a_shrunk_file_fails_with_its_path();
    test_stop_early();
    return hc_test_summary("s3_part_reader");
}
