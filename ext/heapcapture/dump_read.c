/* Reading a stored dump (see dump_read.h): this thread decompresses, a summary feed's thread
 * (summary_feed.h) scans, so a .gz is read in about the longer of the two times, not their sum. */
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
    *bytes = 0;
    *gzipped = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        hc_errorf(err, errlen, "reading %s: %s", path, errno ? strerror(errno) : "out of memory");
        return -1;
    }
    gzbuffer(gz, 256 * 1024);
    hc_summary_feed feed;
    if (hc_summary_feed_start(&feed, err, errlen) != 0) {
        gzclose(gz);
        return -1;
    }
    feed.summary = *s; /* the caller's settings (filter, string tally, keep); moved back below */
    char *buf = malloc(HC_DUMP_READ_PIECE);
    int n = 0;
    while (buf && (n = gzread(gz, buf, HC_DUMP_READ_PIECE)) > 0) { /* out of memory: said once read */
        *bytes += (uint64_t)n;
        hc_summary_feed_write(&feed, buf, (size_t)n);
    }
    hc_summary_feed_finish(&feed); /* the last line too */
    *s = feed.summary;
    hc_summary_init(&feed.summary);
    hc_summary_feed_free(&feed);
    int zerr = Z_OK;
    const char *zmsg = gzerror(gz, &zerr); /* a stream cut short: Z_BUF_ERROR, "unexpected end of file" */
    *gzipped = !gzdirect(gz);
    int rc = -1;
    if (!buf || s->failed) {
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
