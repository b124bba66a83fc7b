/* HeapCapture::Dump.summarize (internal): the summary (dump_summary.h) of a stored dump, gzip or
 * plain (zlib reads both), read and tallied without the GVL. Bound to Ruby; the report's wording
 * and the destinations are lib/heapcapture/summary.rb's. */
#include "rb_heapcapture.h"
#include "rb_dump.h"
#include "dump_summary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <ruby/thread.h>

#define HC_REPORT_CHUNK (1024 * 1024)

typedef struct {
    const char *path;
    size_t top;
    hc_summary summary;
    uint64_t bytes;         /* decompressed bytes read */
    int gzipped;
    char *json;
    char err[768];
} hc_summarize_call;

static void *hc_summarize_nogvl(void *arg)
{
    hc_summarize_call *c = arg;
    gzFile gz = gzopen(c->path, "rb");
    if (!gz) {
        snprintf(c->err, sizeof c->err, "reading %s: %s", c->path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(gz, 256 * 1024);
    char *buf = malloc(HC_REPORT_CHUNK);
    int n = 0;
    while (buf && (n = gzread(gz, buf, HC_REPORT_CHUNK)) > 0) {
        c->bytes += (uint64_t)n;
        if (hc_summary_write(&c->summary, buf, (size_t)n) != 0) break;
    }
    int zerr = Z_OK;
    const char *zmsg = gzerror(gz, &zerr); /* a stream cut short: Z_BUF_ERROR, "unexpected end of file" */
    c->gzipped = !gzdirect(gz);
    if (!buf || c->summary.failed) {
        snprintf(c->err, sizeof c->err, "summarizing %s: out of memory", c->path);
    } else if (zerr == Z_BUF_ERROR) {
        snprintf(c->err, sizeof c->err, "%s is not a whole gzip file: it ends before its gzip stream does "
                 "(a download cut short? fetch it again)", c->path);
    } else if (n < 0 || zerr != Z_OK) {
        const char *why = zmsg && strrchr(zmsg, ':') ? strrchr(zmsg, ':') + 2 : zmsg; /* zlib puts the path first */
        snprintf(c->err, sizeof c->err, "%s is damaged: zlib cannot decompress it (%s)", c->path, why && *why ? why : "an error");
    } else if (hc_summary_finish(&c->summary) == 0) {
        c->json = hc_summary_json(&c->summary, c->top, NULL);
        if (!c->json) snprintf(c->err, sizeof c->err, "summarizing %s: out of memory", c->path);
    }
    free(buf);
    gzclose(gz);
    return NULL;
}

/* Dump.summarize(path, top) => [summary JSON, decompressed bytes, gzipped?]; DumpError saying why
 * not (a file that cannot be read, a gzip stream cut short). */
static VALUE hc_dump_summarize(VALUE self, VALUE path, VALUE top)
{
    (void)self;
    hc_summarize_call c;
    memset(&c, 0, sizeof c);
    c.path = StringValueCStr(path);
    c.top = NUM2SIZET(top);
    hc_summary_init(&c.summary);
    rb_thread_call_without_gvl(hc_summarize_nogvl, &c, NULL, NULL); /* bounded by the file */
    hc_summary_free(&c.summary);
    if (!c.json) hc_rb_raise(hc_eDumpError, "%s", c.err);
    VALUE json = rb_utf8_str_new(c.json, (long)strlen(c.json));
    free(c.json);
    RB_GC_GUARD(path);
    return rb_ary_new_from_args(3, json, ULL2NUM(c.bytes), c.gzipped ? Qtrue : Qfalse);
}

void hc_init_dump_report(VALUE mDump)
{
    rb_define_singleton_method(mDump, "summarize", hc_dump_summarize, 2);
}
