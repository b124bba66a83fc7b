/* HeapCapture::Dump.summarize, Dump.paths and Dump.diff (internal): the summary (heap_summary.h)
 * of a stored dump with its retention analysis (heap_graph.h, heap_retention.h), the paths from
 * a root to some of its objects, or the summary of the objects one dump has that another lacks
 * with what holds them, read and tallied without the GVL (heap_read.h, heap_addr_set.h). Bound to
 * Ruby; the report's wording and the destinations are lib/heapcapture/summary.rb's and the CLI's. */
#include "rb_heapcapture.h"
#include "rb_age.h"
#include "heap_read.h"
#include "heap_retention.h"
#include "heap_addr_set.h"

#include <stdlib.h>
#include <string.h>
#include <ruby/thread.h>

#define HC_READ_BACK_PIECE (1024 * 1024)

typedef struct {
    const char *path;       /* the dump summarized (for diff: the one analysed, LATER or else NEW) */
    const char *old_path, *new_path, *later_path; /* diff only; later may be NULL */
    size_t top;
    int strings;            /* tally duplicate strings (summarize only: diff's new objects have no need) */
    double share;           /* > 0: the retention analysis too, suspects at this share */
    double tree_share;      /* > 0: with its dominator tree's frames, those under this share joined */
    const hc_path_query *paths; /* not NULL: paths to these objects instead of the summary */
    hc_graph graph;
    hc_retention *analysis; /* the graph analysed once read (hc_retention_then), or NULL with the error set */
    char *retention;        /* its JSON, or NULL with retention_err saying why not */
    char retention_err[512];
    hc_summary summary;     /* for diff: all of the dump analysed, its graph with it */
    hc_summary graph_summary; /* summarize with retention: the graph's, read beside summary on a thread
                               * of its own (on a second CPU: the graph cost the report's one ~1 s a GB),
                               * its analysis begun there once it is read (hc_retention_then) */
    hc_summary tally;       /* diff: the new objects of the dump analysed */
    hc_string_tally string_tally;
    hc_addr_set old_set, mid_set; /* diff: OLD's addresses; with LATER, those of NEW that OLD lacks */
    hc_dump_keys keys;      /* the identities an age-encrypted dump is read with (none: {NULL, 0}) */
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

/* Whether the graph read with s can be analysed: 0 when it has no ROOT record and no reference
 * (nothing says what holds what), err saying so. */
static int hc_retention_possible(const hc_summarize_call *c, const hc_summary *s, char *err, size_t errlen)
{
    if (s->roots || s->all.references) return 1;
    snprintf(err, errlen, "%s has no ROOT records and no references: nothing says what holds what "
             "(a dump written by ObjectSpace.dump_all has both)", c->path);
    return 0;
}

/* Where a retention failure goes: for paths, the call's error; for a summary, only the retention's. */
static char *hc_retention_err(hc_summarize_call *c, size_t *errlen)
{
    *errlen = c->paths ? sizeof c->err : sizeof c->retention_err;
    return c->paths ? c->err : c->retention_err;
}

/* The graph's summary is read (hc_dump_then): the analysis's first step there and then, on the
 * thread that read it when it has one, while the report's tally, the slower, reads on. Only the
 * first: it frees memory (the class addresses, half the references'), where the dominators'
 * working memory beside the tally's would raise the report's peak. */
static void hc_retention_then(void *arg, hc_summary *s)
{
    hc_summarize_call *c = arg;
    size_t errlen;
    char *err = hc_retention_err(c, &errlen);
    c->analysis = hc_retention_possible(c, s, err, errlen) ? hc_retention_prepare(&c->graph, s, err, errlen) : NULL;
}

/* The retention analysis, completed: its JSON (or, for paths, the paths' into c->json); when it
 * could not be made, why (the summary stands without it; paths fail). */
static void hc_retention_run(hc_summarize_call *c)
{
    hc_retention *r = c->analysis;
    c->analysis = NULL;
    if (!r) return;
    size_t errlen;
    char *err = hc_retention_err(c, &errlen);
    if (hc_retention_complete(r, err, errlen) != 0) { /* err says why */
        hc_retention_free(r);
        return;
    }
    if (c->paths) {
        c->json = hc_retention_paths_json(r, c->paths, c->err, sizeof c->err);
    } else {
        c->retention = hc_retention_json(r, c->top, c->share, c->tree_share);
        if (!c->retention) snprintf(err, errlen, "out of memory writing the retention analysis");
    }
    hc_retention_free(r);
}

static void *hc_summarize_nogvl(void *arg)
{
    hc_summarize_call *c = arg;
    hc_summary *both[2] = {&c->summary, &c->graph_summary};
    /* the graph: paths' only summary, or the second beside the report's tally */
    hc_dump_then then[2] = {{c->paths ? hc_retention_then : NULL, c}, {hc_retention_then, c}};
    if (hc_dump_read_file_into(c->path, &c->keys, both, c->graph_summary.graph ? 2 : 1, then, &c->bytes, &c->gzipped,
                               c->err, sizeof c->err) != 0)
        return NULL;
    if (hc_check_dump(c, c->path, c->bytes, c->summary.lines, c->summary.all.objects) != 0) return NULL;
    hc_string_tally_end(&c->string_tally); /* its duplicates kept: the retention analysis needs the room */
    hc_retention_run(c);
    if (!c->paths) hc_summarize_json(c);
    return NULL;
}

/* A diff's first reads: the addresses of a dump's objects into set, those in except left out
 * (nothing tallied); seen counts its object lines. */
typedef struct {
    hc_addr_set *set;
    const hc_addr_set *except;
    uint64_t seen;
} hc_address_filter;

static int hc_collect_address(void *arg, const hc_dump_line *l)
{
    hc_address_filter *f = arg;
    f->seen++;
    if (f->except && hc_addr_set_has(f->except, l->address)) return 0;
    return hc_addr_set_add(f->set, l->address) == 0 ? 0 : -1;
}

/* The addresses of path's objects (but except's) into set. */
static int hc_read_addresses(hc_summarize_call *c, const char *path, hc_addr_set *set, const hc_addr_set *except)
{
    hc_summary s;
    hc_summary_init(&s);
    hc_address_filter f = {set, except, 0};
    s.filter = hc_collect_address;
    s.filter_arg = &f;
    uint64_t bytes;
    int gzipped;
    int rc = hc_dump_read_file(path, &c->keys, &s, &bytes, &gzipped, c->err, sizeof c->err);
    if (rc == 0) rc = hc_check_dump(c, path, bytes, s.lines, f.seen);
    hc_summary_free(&s);
    return rc;
}

/* Whether the object at addr in the dump analysed is new: made between OLD and NEW. Two dumps:
 * OLD lacks its address. Three: NEW has it and OLD lacks it (the dump analysed is LATER, where
 * "still alive" is judged: present, and then reachable or not). */
static int hc_is_new(const hc_summarize_call *c, uint64_t addr)
{
    return c->later_path ? hc_addr_set_has(&c->mid_set, addr) : !hc_addr_set_has(&c->old_set, addr);
}

static int hc_keep_new(void *arg, const hc_dump_line *l) { return hc_is_new(arg, l->address); }

/* What holds the new objects, from the graph of the dump analysed: its JSON into c->retention, or
 * why not into c->retention_err (the tally stands without it). */
static void hc_growth_run(hc_summarize_call *c)
{
    char *err = c->retention_err;
    size_t errlen = sizeof c->retention_err;
    if (!hc_retention_possible(c, &c->summary, err, errlen)) return;
    hc_retention *r = hc_retention_new(&c->graph, &c->summary, err, errlen);
    if (!r) return;
    const hc_graph *g = &c->graph;
    uint8_t *is_new = malloc(g->n ? g->n : 1); /* a byte an object */
    if (is_new) {
        for (uint32_t v = 0; v < g->n; v++) is_new[v] = !(g->flags[v] & HC_NODE_ROOT) && hc_is_new(c, g->addr[v]);
        c->retention = hc_retention_growth_json(r, is_new, c->top);
    }
    if (!c->retention) snprintf(err, errlen, "out of memory finding what holds the new objects");
    free(is_new);
    hc_retention_free(r);
}

/* Dump.diff's reads: OLD's addresses; with LATER, NEW's that OLD lacks (then OLD's set is let go);
 * then the dump analysed (LATER, else NEW) once, into two summaries side by side: all of it with
 * its graph, and the tally of its new objects. */
static void *hc_diff_nogvl(void *arg)
{
    hc_summarize_call *c = arg;
    if (hc_read_addresses(c, c->old_path, &c->old_set, NULL) != 0) return NULL;
    if (c->later_path) {
        if (hc_read_addresses(c, c->new_path, &c->mid_set, &c->old_set) != 0) return NULL;
        hc_addr_set_free(&c->old_set);
    }
    c->tally.filter = hc_keep_new;
    c->tally.filter_arg = c;
    hc_summary *both[2] = {&c->summary, &c->tally};
    if (hc_dump_read_file_into(c->path, &c->keys, both, 2, NULL, &c->bytes, &c->gzipped, c->err, sizeof c->err) != 0)
        return NULL;
    if (hc_check_dump(c, c->path, c->bytes, c->summary.lines, c->summary.all.objects) != 0) return NULL;
    hc_growth_run(c);
    c->json = hc_summary_json(&c->tally, c->top, NULL);
    if (!c->json) snprintf(c->err, sizeof c->err, "summarizing %s: out of memory", c->path);
    return NULL;
}

static VALUE hc_summarize_run(hc_summarize_call *c, void *(*body)(void *))
{
    hc_summary_init(&c->summary);
    c->summary.keep = c->top;
    hc_summary_init(&c->tally);
    c->tally.keep = c->top;
    hc_summary_init(&c->graph_summary);
    c->graph_summary.graph_only = 1;
    hc_string_tally_init(&c->string_tally);
    if (c->strings) c->summary.strings = &c->string_tally;
    hc_addr_set_init(&c->old_set);
    hc_addr_set_init(&c->mid_set);
    hc_graph_init(&c->graph);
    if (c->old_path) c->summary.graph = &c->graph;
    else if (c->share > 0) c->graph_summary.graph = &c->graph;
    rb_thread_call_without_gvl(body, c, NULL, NULL); /* bounded by the files */
    hc_retention_free(c->analysis); /* made, but the dump failed its checks */
    hc_rb_age_keys_free(&c->keys);
    hc_graph_free(&c->graph);
    hc_summary_free(&c->summary);
    hc_summary_free(&c->tally);
    hc_summary_free(&c->graph_summary);
    hc_string_tally_free(&c->string_tally);
    hc_addr_set_free(&c->old_set);
    hc_addr_set_free(&c->mid_set);
    if (!c->json) hc_rb_raise(hc_eDumpError, "%s", c->err);
    VALUE json = rb_utf8_str_new(c->json, (long)strlen(c->json));
    free(c->json);
    VALUE retention = Qnil;
    if (c->retention) {
        retention = rb_utf8_str_new(c->retention, (long)strlen(c->retention));
        free(c->retention);
    } else if (c->retention_err[0]) {
        retention = rb_ary_new_from_args(1, rb_utf8_str_new_cstr(c->retention_err));
    }
    return rb_ary_new_from_args(4, json, ULL2NUM(c->bytes), c->gzipped ? Qtrue : Qfalse, retention);
}

/* Dump.summarize(path, top, strings, share, identity = nil, tree_share = nil) => [summary JSON, decompressed bytes,
 * gzipped?, retention], with the duplicate strings when strings is true (their tally takes ~24
 * bytes a distinct string: not in a capture's own process), and with share (a Float) the retention
 * analysis: its JSON, or [why it was not made]; nil without share. identity: an age identity
 * file's text, for an age-encrypted dump (decrypted as it is read). tree_share (a Float, with share):
 * the retention JSON has its dominator tree's frames ("tree"), those under that share joined.
 * DumpError saying why not (a file that cannot be read, an age file with no identity or not for
 * it, cut short or altered, a gzip stream cut short, an empty file, one that is no dump). */
static VALUE hc_dump_summarize(int argc, VALUE *argv, VALUE self)
{
    (void)self;
    VALUE path, top, strings, share, identity, tree_share;
    rb_scan_args(argc, argv, "42", &path, &top, &strings, &share, &identity, &tree_share);
    hc_summarize_call c;
    memset(&c, 0, sizeof c);
    c.path = StringValueCStr(path);
    c.top = NUM2SIZET(top);
    c.strings = RTEST(strings);
    c.share = NIL_P(share) ? 0 : NUM2DBL(share);
    c.tree_share = NIL_P(tree_share) ? 0 : NUM2DBL(tree_share);
    hc_rb_age_keys(identity, &c.keys); /* last: nothing raises after it until they are freed */
    VALUE result = hc_summarize_run(&c, hc_summarize_nogvl);
    RB_GC_GUARD(path);
    return result;
}

/* Dump.diff(old, new, later, top, identity = nil) => [JSON, decompressed bytes, gzipped?, growth] of the dump
 * analysed: new, or later when it is not nil (where "still alive" is judged). JSON: the summary
 * of its new objects, as Dump.summarize gives it ("lines", "invalid_lines" and "roots" count all of
 * it): with two dumps, the objects of new whose address old lacks; with three, the objects of
 * later whose address new has and old lacks (made between old and new, and still in later, as
 * later has them). growth: what holds them, from the dump's graph (heap_retention.h,
 * hc_retention_growth_json), or [why it was not made]. DumpError for a file that is empty or no
 * dump. Memory: OLD's addresses and NEW's new ones (~16 bytes each), the graph of the dump
 * analysed (~50 bytes an object and 8 a reference at its peak). */
static VALUE hc_dump_diff(int argc, VALUE *argv, VALUE self)
{
    (void)self;
    VALUE old_path, new_path, later_path, top, identity;
    rb_scan_args(argc, argv, "41", &old_path, &new_path, &later_path, &top, &identity);
    hc_summarize_call c;
    memset(&c, 0, sizeof c);
    c.old_path = StringValueCStr(old_path);
    c.new_path = StringValueCStr(new_path);
    c.later_path = NIL_P(later_path) ? NULL : StringValueCStr(later_path);
    c.path = c.later_path ? c.later_path : c.new_path;
    c.top = NUM2SIZET(top);
    hc_rb_age_keys(identity, &c.keys);
    VALUE result = hc_summarize_run(&c, hc_diff_nogvl);
    RB_GC_GUARD(old_path);
    RB_GC_GUARD(new_path);
    RB_GC_GUARD(later_path);
    return result;
}

/* Dump.paths(path, address, class_name, file, line, all, identity = nil) => JSON of the shortest paths from a
 * root to the object at address (an Integer), or to up to all objects of class_name, or of
 * file:line (those retaining most first). DumpError saying why not (no such object, garbage
 * awaiting GC, a file that is no dump or has no references). */
static VALUE hc_dump_paths(int argc, VALUE *argv, VALUE self)
{
    (void)self;
    VALUE path, address, class_name, file, line, all, identity;
    rb_scan_args(argc, argv, "61", &path, &address, &class_name, &file, &line, &all, &identity);
    hc_path_query q = {0};
    q.address = NIL_P(address) ? 0 : NUM2ULL(address);
    q.class_name = NIL_P(class_name) ? NULL : StringValueCStr(class_name);
    q.file = NIL_P(file) ? NULL : StringValueCStr(file);
    q.line = NIL_P(line) ? 0 : NUM2LL(line);
    q.all = NUM2SIZET(all);
    if (!q.address && !q.class_name && !q.file) rb_raise(rb_eArgError, "an address, a class or a site");
    hc_summarize_call c;
    memset(&c, 0, sizeof c);
    c.path = StringValueCStr(path);
    c.top = 1;
    c.paths = &q;
    hc_rb_age_keys(identity, &c.keys);
    hc_summary_init(&c.summary);
    hc_graph_init(&c.graph);
    c.summary.graph = &c.graph;
    c.summary.graph_only = 1; /* a path needs no tally */
    rb_thread_call_without_gvl(hc_summarize_nogvl, &c, NULL, NULL); /* bounded by the file */
    hc_retention_free(c.analysis); /* made, but the dump failed its checks */
    hc_rb_age_keys_free(&c.keys);
    hc_graph_free(&c.graph);
    hc_summary_free(&c.summary);
    if (!c.json) hc_rb_raise(hc_eDumpError, "%s", c.err);
    VALUE json = rb_utf8_str_new(c.json, (long)strlen(c.json));
    free(c.json);
    RB_GC_GUARD(path);
    RB_GC_GUARD(class_name);
    RB_GC_GUARD(file);
    return json;
}

/* Dump.read_back(path, identity, decompress) { |bytes| ... } => bytes yielded: a stored dump as
 * its writer wrote it, decrypted (an age file, with identity: an identity file's text) and, when
 * decompress is true, decompressed (gzip; plain text passes as it is), yielded in pieces of up to
 * 1 MiB: never held whole, never written anywhere on the way. DumpError saying why not: the
 * decryption's failure (no identity, not for it, cut short or altered) first, then zlib's. What was
 * yielded before an error is authentic but may be incomplete: keep it only when this returns. */
typedef struct {
    hc_dump_input in;
    int open;
    hc_dump_keys keys;
    VALUE buf;
    long n;
} hc_read_back;

static void *hc_read_back_nogvl(void *arg)
{
    hc_read_back *r = arg;
    r->n = hc_dump_input_read(&r->in, RSTRING_PTR(r->buf), HC_READ_BACK_PIECE);
    return NULL;
}

static VALUE hc_read_back_body(VALUE arg)
{
    hc_read_back *r = (hc_read_back *)arg;
    unsigned long long total = 0;
    for (;;) {
        rb_thread_call_without_gvl(hc_read_back_nogvl, r, NULL, NULL); /* bounded: a piece of a local file */
        if (r->n <= 0) break;
        total += (unsigned long long)r->n;
        rb_yield(rb_str_new(RSTRING_PTR(r->buf), r->n));
    }
    char err[768];
    r->open = 0;
    if (hc_dump_input_close(&r->in, NULL, err, sizeof err) != 0) hc_rb_raise(hc_eDumpError, "%s", err);
    return ULL2NUM(total);
}

static VALUE hc_read_back_cleanup(VALUE arg)
{
    hc_read_back *r = (hc_read_back *)arg;
    char err[768];
    if (r->open) hc_dump_input_close(&r->in, NULL, err, sizeof err); /* the block raised: its error stands */
    r->open = 0;
    hc_rb_age_keys_free(&r->keys);
    return Qnil;
}

static VALUE hc_dump_read_back(VALUE self, VALUE path, VALUE identity, VALUE decompress)
{
    (void)self;
    rb_need_block();
    const char *p = StringValueCStr(path);
    hc_read_back r;
    memset(&r, 0, sizeof r);
    r.buf = rb_str_buf_new(HC_READ_BACK_PIECE);
    hc_rb_age_keys(identity, &r.keys);
    char err[768];
    if (hc_dump_input_open(&r.in, p, &r.keys, RTEST(decompress), err, sizeof err) != 0) {
        hc_rb_age_keys_free(&r.keys);
        hc_rb_raise(hc_eDumpError, "%s", err);
    }
    r.open = 1;
    VALUE total = rb_ensure(hc_read_back_body, (VALUE)&r, hc_read_back_cleanup, (VALUE)&r);
    RB_GC_GUARD(path);
    RB_GC_GUARD(r.buf);
    return total;
}

void hc_init_heap(void)
{
    VALUE mDump = hc_rb_dump_module();
    rb_define_singleton_method(mDump, "summarize", hc_dump_summarize, -1);
    rb_define_singleton_method(mDump, "paths", hc_dump_paths, -1);
    rb_define_singleton_method(mDump, "diff", hc_dump_diff, -1);
    rb_define_singleton_method(mDump, "read_back", hc_dump_read_back, 3);
}
