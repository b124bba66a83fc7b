/* Reading a stored dump (see dump_read.h): this thread decompresses (for an age file, another
 * decrypts first: dump_input.c), a summary feed's thread (summary_feed.h) scans, so a .gz is read
 * in about the longer of the two times, not their sum (with two summaries, each has a feed of its
 * own, scanning the same bytes side by side). */
#include "dump_read.h"
#include "summary_feed.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HC_DUMP_READ_PIECE (1024 * 1024)

int hc_dump_read_file(const char *path, const hc_dump_keys *keys, hc_summary *s, uint64_t *bytes, int *gzipped,
                      char *err, size_t errlen)
{
    return hc_dump_read_file_into(path, keys, &s, 1, bytes, gzipped, err, errlen);
}

int hc_dump_read_file_into(const char *path, const hc_dump_keys *keys, hc_summary *const *s, size_t count,
                           uint64_t *bytes, int *gzipped, char *err, size_t errlen)
{
    *bytes = 0;
    *gzipped = 0;
    if (count == 0 || count > HC_DUMP_READ_MAX_SUMMARIES) {
        hc_errorf(err, errlen, "reading %s: %zu summaries asked for (1 to %d)", path, count, HC_DUMP_READ_MAX_SUMMARIES);
        return -1;
    }
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
    if (rc != 0) hc_errorf(err, errlen, "%s", why);
    return rc;
}
