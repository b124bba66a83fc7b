/* Reading a stored dump (see dump_read.h): this thread decompresses, a summary feed's thread
 * (summary_feed.h) scans, so a .gz is read in about the longer of the two times, not their sum
 * (with two summaries, each has a feed of its own, scanning the same bytes side by side). */
#include "dump_read.h"
#include "summary_feed.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define HC_DUMP_READ_PIECE (1024 * 1024)

int hc_dump_read_file(const char *path, hc_summary *s, uint64_t *bytes, int *gzipped, char *err, size_t errlen)
{
    return hc_dump_read_file_into(path, &s, 1, bytes, gzipped, err, errlen);
}

int hc_dump_read_file_into(const char *path, hc_summary *const *s, size_t count, uint64_t *bytes, int *gzipped, char *err,
                           size_t errlen)
{
    *bytes = 0;
    *gzipped = 0;
    if (count == 0 || count > HC_DUMP_READ_MAX_SUMMARIES) {
        hc_errorf(err, errlen, "reading %s: %zu summaries asked for (1 to %d)", path, count, HC_DUMP_READ_MAX_SUMMARIES);
        return -1;
    }
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        hc_errorf(err, errlen, "reading %s: %s", path, errno ? strerror(errno) : "out of memory");
        return -1;
    }
    gzbuffer(gz, 256 * 1024);
    hc_summary_feed feed[HC_DUMP_READ_MAX_SUMMARIES];
    size_t started = 0;
    for (; started < count; started++) {
        if (hc_summary_feed_start(&feed[started], err, errlen) != 0) break;
        feed[started].summary = *s[started]; /* the caller's settings (filter, string tally, keep); moved back below */
    }
    int failed = 0;
    char *buf = started == count ? malloc(HC_DUMP_READ_PIECE) : NULL;
    int n = 0;
    while (buf && (n = gzread(gz, buf, HC_DUMP_READ_PIECE)) > 0) { /* out of memory: said once read */
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
    if (started < count) { /* a feed could not start: err says why */
        free(buf);
        gzclose(gz);
        return -1;
    }
    int zerr = Z_OK;
    const char *zmsg = gzerror(gz, &zerr); /* a stream cut short: Z_BUF_ERROR, "unexpected end of file" */
    *gzipped = !gzdirect(gz);
    int rc = -1;
    if (!buf || failed) {
        hc_errorf(err, errlen, "summarizing %s: out of memory", path);
    } else if (zerr == Z_BUF_ERROR) {
        hc_errorf(err, errlen, "%s is not a whole gzip file: it ends before its gzip stream does "
                  "(a download cut short? fetch it again)", path);
    } else if (n < 0 || zerr != Z_OK) {
        const char *why = zmsg && strrchr(zmsg, ':') ? strrchr(zmsg, ':') + 2 : zmsg; /* zlib puts the path first */
        hc_errorf(err, errlen, "%s is damaged: zlib cannot decompress it (%s)", path, why && *why ? why : "an error");
    } else {
        rc = 0;
    }
    free(buf);
    gzclose(gz);
    return rc;
}
