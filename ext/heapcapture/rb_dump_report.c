/* HeapCapture::Dump.summarize and Dump.diff (internal): the summary (dump_summary.h) of a stored
 * dump, or of the objects one dump has that another lacks, read and tallied without the GVL
 * (dump_read.h, addr_set.h). Bound to Ruby; the report's wording and the destinations are
 * lib/heapcapture/summary.rb's and the CLI's. */
#include "rb_heapcapture.h"
#include "rb_dump.h"
#include "dump_read.h"
#include "addr_set.h"

#include <stdlib.h>
#include <string.h>
#include <ruby/thread.h>

typedef struct {
    const char *path;       /* the dump summarized (for diff: NEW) */
    const char *old_path, *later_path; /* diff only; later may be NULL */
    size_t top;
    int strings;            /* tally duplicate strings (summarize only: diff's new objects have no need) */
    hc_summary summary;
    hc_string_tally string_tally;
    hc_addr_set old_set, later_set;
    uint64_t new_seen;      /* diff: NEW's object lines, kept or not */
    uint64_t bytes;         /* decompressed bytes of path */
    int gzipped;
    char *json;
    char err[768];
} hc_summarize_call;

static void hc_summarize_json(hc_summarize_call *c)
{
    c->json = hc_summary_json(&c->summary, c->top, NULL);
    if (!c->json) snprintf(c->err, sizeof c->err, "summarizing %s: out of memory", c->path);
}

/* 0 when path held a heap dump (bytes read, of lines, objects among them), else -1 with c->err
 * saying what it held instead: the one check of every file summarize and diff read. */
static int hc_check_dump(hc_summarize_call *c, const char *path, uint64_t bytes, uint64_t lines, uint64_t objects)
{
    if (bytes == 0) {
        snprintf(c->err, sizeof c->err, "%s is empty: there is no heap dump in it", path);
        return -1;
    }
    if (objects == 0) {
        snprintf(c->err, sizeof c->err, "%s is not a heap dump: none of its %llu line(s) is a record "
                 "ObjectSpace.dump_all writes", path, (unsigned long long)lines);
        return -1;
    }
    return 0;
}

static void *hc_summarize_nogvl(void *arg)
{
    hc_summarize_call *c = arg;
    if (hc_dump_read_file(c->path, &c->summary, &c->bytes, &c->gzipped, c->err, sizeof c->err) != 0) return NULL;
    /* A diff's NEW may rightly have no object left to tally: what counts is that it had some. */
    uint64_t objects = c->summary.filter ? c->new_seen : c->summary.all.objects;
    if (hc_check_dump(c, c->path, c->bytes, c->summary.lines, objects) == 0) hc_summarize_json(c);
    return NULL;
}

/* Filters: the addresses of a dump into a set (nothing tallied); the objects of NEW that OLD
 * lacks (and LATER has). */
static int hc_collect_address(void *arg, const hc_dump_line *l)
{
    return hc_addr_set_add(arg, l->address) == 0 ? 0 : -1;
}

static int hc_keep_new(void *arg, const hc_dump_line *l)
{
    hc_summarize_call *c = arg;
    c->new_seen++;
    if (hc_addr_set_has(&c->old_set, l->address)) return 0;
    return !c->later_path || hc_addr_set_has(&c->later_set, l->address);
}

/* The addresses of path's objects into set. */
static int hc_read_addresses(hc_summarize_call *c, const char *path, hc_addr_set *set)
{
    hc_summary s;
    hc_summary_init(&s);
    s.filter = hc_collect_address;
    s.filter_arg = set;
    uint64_t bytes;
    int gzipped;
    int rc = hc_dump_read_file(path, &s, &bytes, &gzipped, c->err, sizeof c->err);
    if (rc == 0) rc = hc_check_dump(c, path, bytes, s.lines, set->count);
    hc_summary_free(&s);
    return rc;
}

static void *hc_diff_nogvl(void *arg)
{
    hc_summarize_call *c = arg;
    if (hc_read_addresses(c, c->old_path, &c->old_set) != 0) return NULL;
    if (c->later_path && hc_read_addresses(c, c->later_path, &c->later_set) != 0) return NULL;
    c->summary.filter = hc_keep_new;
    c->summary.filter_arg = c;
    return hc_summarize_nogvl(c);
}

static VALUE hc_summarize_run(hc_summarize_call *c, void *(*body)(void *))
{
    hc_summary_init(&c->summary);
    c->summary.keep = c->top;
    hc_string_tally_init(&c->string_tally);
    if (c->strings) c->summary.strings = &c->string_tally;
    hc_addr_set_init(&c->old_set);
    hc_addr_set_init(&c->later_set);
    rb_thread_call_without_gvl(body, c, NULL, NULL); /* bounded by the files */
    hc_summary_free(&c->summary);
    hc_string_tally_free(&c->string_tally);
    hc_addr_set_free(&c->old_set);
    hc_addr_set_free(&c->later_set);
    if (!c->json) hc_rb_raise(hc_eDumpError, "%s", c->err);
    VALUE json = rb_utf8_str_new(c->json, (long)strlen(c->json));
    free(c->json);
    return rb_ary_new_from_args(3, json, ULL2NUM(c->bytes), c->gzipped ? Qtrue : Qfalse);
}

/* Dump.summarize(path, top, strings) => [summary JSON, decompressed bytes, gzipped?], with the
 * duplicate strings when strings is true (their tally takes ~24 bytes a distinct string: not in a
 * capture's own process); DumpError saying why not (a file that cannot be read, a gzip stream cut
 * short, an empty file, one that is no dump). */
static VALUE hc_dump_summarize(VALUE self, VALUE path, VALUE top, VALUE strings)
{
    (void)self;
    hc_summarize_call c;
    memset(&c, 0, sizeof c);
    c.path = StringValueCStr(path);
    c.top = NUM2SIZET(top);
    c.strings = RTEST(strings);
    VALUE result = hc_summarize_run(&c, hc_summarize_nogvl);
    RB_GC_GUARD(path);
    return result;
}

/* Dump.diff(old, new, later, top) => [JSON, decompressed bytes of new, gzipped?]: the summary of
 * the objects in new whose address old lacks (and later has, when later is not nil), as
 * Dump.summarize gives it ("lines", "invalid_lines" and "roots" count all of new). DumpError for a
 * file that is empty or no dump. */
static VALUE hc_dump_diff(VALUE self, VALUE old_path, VALUE new_path, VALUE later_path, VALUE top)
{
    (void)self;
    hc_summarize_call c;
    memset(&c, 0, sizeof c);
    c.old_path = StringValueCStr(old_path);
    c.path = StringValueCStr(new_path);
    c.later_path = NIL_P(later_path) ? NULL : StringValueCStr(later_path);
    c.top = NUM2SIZET(top);
    VALUE result = hc_summarize_run(&c, hc_diff_nogvl);
    RB_GC_GUARD(old_path);
    RB_GC_GUARD(new_path);
    RB_GC_GUARD(later_path);
    return result;
}

void hc_init_dump_report(VALUE mDump)
{
    rb_define_singleton_method(mDump, "summarize", hc_dump_summarize, 3);
    rb_define_singleton_method(mDump, "diff", hc_dump_diff, 4);
}
