/* Reading a stored dump (see heap_read.h): this thread decompresses (for an age file, another
 * decrypts first: heap_input.c), a summary feed's thread (heap_summary_feed.h) scans, so a .gz is read
 * in about the longer of the two times, not their sum (with two summaries, each has a feed of its
 * own, scanning the same bytes side by side). A plain file read into two summaries needs no
 * decompressing: each summary's thread reads the file for itself, so neither waits on the other
 * (fed from one reader, the faster scan stalls the reader whenever the machine's two cores are
 * busy elsewhere, and the slower one then starves: doc/figures.md). */
#include "heap_read.h"
#include "heap_summary_feed.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HC_DUMP_READ_PIECE (1024 * 1024)
#define HC_GZIP_MAGIC "\x1f\x8b"

/* One summary reading a plain file on a thread of its own. */
typedef struct {
    hc_summary *s;
    hc_dump_then then;
    int fd;
    uint64_t bytes;
    int read_errno;         /* a read that failed (0: none) */
    int out_of_memory;      /* no buffer */
    pthread_t thread;
} hc_plain_reader;

static void *hc_plain_reader_main(void *arg)
{
    hc_plain_reader *r = arg;
    char *buf = malloc(HC_DUMP_READ_PIECE);
    if (!buf) {
        r->out_of_memory = 1;
        return NULL;
    }
    for (;;) {
        ssize_t n = pread(r->fd, buf, HC_DUMP_READ_PIECE, (off_t)r->bytes);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) r->read_errno = errno;
        if (n <= 0) break;
        r->bytes += (uint64_t)n;
        hc_summary_write(r->s, buf, (size_t)n); /* a failure sets s->failed; the read goes on, as a feed's does */
    }
    free(buf);
    hc_summary_finish(r->s);
    if (r->then.fn && !r->read_errno && !r->s->failed) r->then.fn(r->then.arg, r->s);
    return NULL;
}

/* The file, when it is a regular file stored plain (neither gzip nor age); else -1. */
static int hc_open_plain(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1; /* the input's open says why */
    struct stat st;
    unsigned char head[HC_AGE_FILE_PEEK];
    ssize_t got = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? pread(fd, head, sizeof head, 0) : -1;
    if (got < 0 || (got >= 2 && memcmp(head, HC_GZIP_MAGIC, 2) == 0) || hc_age_is_file(head, (size_t)got)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Two or more summaries of a plain file, each read by its own thread. */
static int hc_read_plain_into(int fd, const char *path, hc_summary *const *s, size_t count, const hc_dump_then *then,
                              uint64_t *bytes, char *err, size_t errlen)
{
    hc_plain_reader r[HC_DUMP_READ_MAX_SUMMARIES];
    size_t started = 0;
    int rc = 0;
    for (; started < count; started++) {
        r[started] = (hc_plain_reader){.s = s[started], .fd = fd};
        if (then) r[started].then = then[started];
        if ((rc = pthread_create(&r[started].thread, NULL, hc_plain_reader_main, &r[started])) != 0) break;
    }
    int failed = 0, read_errno = 0;
    for (size_t i = 0; i < started; i++) {
        pthread_join(r[i].thread, NULL);
        failed |= r[i].out_of_memory || s[i]->failed;
        if (r[i].read_errno) read_errno = r[i].read_errno;
    }
    *bytes = started ? r[0].bytes : 0;
    close(fd);
    if (started < count) {
        hc_errorf(err, errlen, "summarizing %s: starting a thread to read it: %s", path, strerror(rc));
        return -1;
    }
    if (read_errno) {
        hc_errorf(err, errlen, "reading %s: %s", path, strerror(read_errno));
        return -1;
    }
    if (failed) {
        hc_errorf(err, errlen, "summarizing %s: out of memory", path);
        return -1;
    }
    for (size_t i = 1; i < count; i++) {
        if (r[i].bytes != r[0].bytes) {
            hc_errorf(err, errlen, "reading %s: it changed while it was read (%llu bytes, then %llu): read a copy "
                      "that nothing writes to", path, (unsigned long long)r[0].bytes, (unsigned long long)r[i].bytes);
            return -1;
        }
    }
    return 0;
}

int hc_dump_read_file(const char *path, const hc_dump_keys *keys, hc_summary *s, uint64_t *bytes, int *gzipped,
                      char *err, size_t errlen)
{
    return hc_dump_read_file_into(path, keys, &s, 1, NULL, bytes, gzipped, err, errlen);
}

int hc_dump_read_file_into(const char *path, const hc_dump_keys *keys, hc_summary *const *s, size_t count,
                           const hc_dump_then *then, uint64_t *bytes, int *gzipped, char *err, size_t errlen)
{
    *bytes = 0;
    *gzipped = 0;
    if (count == 0 || count > HC_DUMP_READ_MAX_SUMMARIES) {
        hc_errorf(err, errlen, "reading %s: %zu summaries asked for (1 to %d)", path, count, HC_DUMP_READ_MAX_SUMMARIES);
        return -1;
    }
    int plain = count > 1 ? hc_open_plain(path) : -1;
    if (plain >= 0) return hc_read_plain_into(plain, path, s, count, then, bytes, err, errlen);
    hc_dump_input in;
    if (hc_dump_input_open(&in, path, keys, 1, err, errlen) != 0) return -1;
    hc_summary_feed feed[HC_DUMP_READ_MAX_SUMMARIES];
    size_t started = 0;
    for (; started < count; started++) {
        if (hc_summary_feed_start(&feed[started], err, errlen) != 0) break;
        feed[started].summary = *s[started]; /* the caller's settings (filter, string tally, keep); moved back below */
    }
    int failed = 0;
    char *buf = started == count ? malloc(HC_DUMP_READ_PIECE) : NULL;
    long n = 0;
    while (buf && (n = hc_dump_input_read(&in, buf, HC_DUMP_READ_PIECE)) > 0) { /* out of memory: said once read */
        *bytes += (uint64_t)n;
        for (size_t i = 0; i < count; i++) hc_summary_feed_write(&feed[i], buf, (size_t)n);
    }
    for (size_t i = 0; i < started; i++) {
        hc_summary_feed_finish(&feed[i]); /* the last line too */
        *s[i] = feed[i].summary;
        hc_summary_init(&feed[i].summary);
        hc_summary_feed_free(&feed[i]);
        failed |= s[i]->failed;
    }
    char why[768];
    int rc = hc_dump_input_close(&in, gzipped, why, sizeof why);
    free(buf);
    if (started < count) return -1; /* a feed could not start: err says why */
    if (!buf || failed) {
        hc_errorf(err, errlen, "summarizing %s: out of memory", path);
        return -1;
    }
    if (rc != 0) {
        hc_errorf(err, errlen, "%s", why);
        return -1;
    }
    for (size_t i = 0; then && i < count; i++)
        if (then[i].fn) then[i].fn(then[i].arg, s[i]);
    return 0;
}
