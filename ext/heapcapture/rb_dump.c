/* HeapCapture::Dump (internal): the fork-mode and inline-mode dumps, bound to Ruby; the app's side
 * (the parent) of a fork-mode dump.
 *
 * Fork mode. The parent creates the 0600 tempfile, then forks through the VM's own fork (the
 * original Process._fork, which the caller passes in as a Method: Ruby 3.1 does not export
 * rb_fork_ruby, and Process.fork would run every Ruby-level fork hook - ActiveSupport's
 * ForkTracker, APM agents, connection pools - in a child that must touch none of them). What the
 * child runs is in rb_dump_in_child.c. Dump.fork_start returns a Dump::Child at once: the uploader can follow the
 * tempfile while it grows, Child#wait waits for the end with the GVL released (Thread#kill or
 * #raise wake it), and Child#close SIGKILLs a child that still runs, reaps it and removes the
 * tempfile.
 *
 * Inline mode. ObjectSpace.dump_all(output: :string) with the GVL held: the whole application
 * stops for the dump (and the dump is held in memory once), but no other thread can run in the
 * middle of it. The string is then compressed into the tempfile with the GVL released.
 *
 * Child#wait and Dump.inline_dump return {"path", "raw_bytes", "bytes", "pause_ns", "dump_ns"} or
 * raise DumpError (inline mode has then removed the tempfile). */
#include "rb_heapcapture.h"
#include "rb_dump.h"
#include "rb_tracer.h"
#include "dump_tempfile.h"
#include "dump_stream.h"
#include "dump_report.h"
#include "dump_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ruby/thread.h>
#include <ruby/io.h>

static ID hc_id_call, hc_id_dump_all;
static VALUE hc_sym_output, hc_sym_string;

VALUE hc_dump_all(VALUE output)
{
    VALUE opts = rb_hash_new();
    rb_hash_aset(opts, hc_sym_output, output);
    VALUE objectspace = rb_const_get(rb_cObject, rb_intern("ObjectSpace"));
    return rb_funcallv_kw(objectspace, hc_id_dump_all, 1, &opts, RB_PASS_KEYWORDS);
}

static VALUE hc_dump_result(const char *path, uint64_t raw, uint64_t stored, uint64_t pause_ns,
                            uint64_t dump_ns)
{
    VALUE h = rb_hash_new();
    rb_hash_aset(h, rb_str_new_cstr("path"), rb_str_new_cstr(path));
    rb_hash_aset(h, rb_str_new_cstr("raw_bytes"), ULL2NUM(raw));
    rb_hash_aset(h, rb_str_new_cstr("bytes"), ULL2NUM(stored));
    rb_hash_aset(h, rb_str_new_cstr("pause_ns"), ULL2NUM(pause_ns));
    rb_hash_aset(h, rb_str_new_cstr("dump_ns"), ULL2NUM(dump_ns));
    return h;
}

/* ---- fork mode: the parent ----------------------------------------------------------------- */

/* The 0600 tempfile in tmpdir (".ndjson.gz" or ".ndjson"), or DumpError saying why not. */
static int hc_create_tempfile(VALUE tmpdir, int gzip, char *path, size_t pathlen)
{
    char err[512];
    const char *dir = StringValueCStr(tmpdir);
    int fd = hc_dump_tempfile(dir, gzip ? ".ndjson.gz" : ".ndjson", path, pathlen, err, sizeof err);
    if (fd < 0) hc_rb_raise(hc_eDumpError, "%s", err);
    return fd;
}

/* Dump::Child: a dump child and its tempfile, from the fork until close. The uploader follows
 * the tempfile as it grows (hc_rb_dump_child_source); #wait gives the result once it has ended;
 * #close (and the GC, should it come first) kills a child that still runs, reaps it and removes
 * the tempfile. */
typedef struct {
    hc_dump_child child;
    hc_growing_file grow;
    char path[4096];
    int gzip;
    int write_fd;           /* the tempfile as the child writes it; closed here after the fork */
    int report_wr;          /* the report pipe's write end, likewise */
    int read_fd;            /* the tempfile, opened for reading before the fork */
    int wake_rd, wake_wr;   /* written by the unblocking function to end a wait */
    int closed;
    pid_t owner;            /* the process that forked the child: the only one that may end it */
    uint64_t started_ns, forked_ns;
    char err[512];
} hc_rb_child;

static void hc_close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Kills and reaps a child that still runs, closes everything, removes the tempfile. */
static void hc_rb_child_close_all(hc_rb_child *c)
{
    if (c->closed) return;
    c->closed = 1;
    if (c->owner != getpid()) {
        /* A copy of the object in a process the app forked later (its GC frees it): the dump
         * child and the tempfile belong to the original process. Close this copy's fds only. */
        c->child.state = HC_CHILD_FAILED;
        c->path[0] = '\0';
    }
    hc_dump_child_stop(&c->child);
    hc_close_fd(&c->write_fd);
    hc_close_fd(&c->report_wr);
    hc_close_fd(&c->read_fd);
    hc_close_fd(&c->wake_rd);
    hc_close_fd(&c->wake_wr);
    if (c->path[0]) unlink(c->path);
}

static void hc_rb_child_free(void *p)
{
    hc_rb_child_close_all(p);
    xfree(p);
}

static size_t hc_rb_child_size(const void *p)
{
    (void)p;
    return sizeof(hc_rb_child);
}

static const rb_data_type_t hc_rb_child_type = {
    .wrap_struct_name = "HeapCapture::Dump::Child",
    .function = {.dfree = hc_rb_child_free, .dsize = hc_rb_child_size},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE hc_cChild;

static hc_rb_child *hc_rb_child_get(VALUE self)
{
    hc_rb_child *c = rb_check_typeddata(self, &hc_rb_child_type);
    if (c->closed) hc_rb_raise(hc_eDumpError, "this dump child was closed (its tempfile is gone)");
    return c;
}

int hc_rb_dump_child_source(VALUE child, const hc_growing_file **grow, const char **path, int *fd)
{
    hc_rb_child *c = hc_rb_child_get(child);
    *grow = &c->grow;
    *path = c->path;
    *fd = c->read_fd;
    return 0;
}

typedef struct {
    hc_rb_child *c;
    VALUE fork_method;
    VALUE tmpdir;
} hc_fork_start_args;

static VALUE hc_fork_start_body(VALUE arg)
{
    hc_fork_start_args *a = (hc_fork_start_args *)arg;
    hc_rb_child *c = a->c;
    int report[2], wake[2];
    c->write_fd = hc_create_tempfile(a->tmpdir, c->gzip, c->path, sizeof c->path);
    c->read_fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (c->read_fd < 0) hc_rb_sys_fail("opening the dump tempfile for reading");
    if (pipe2(report, O_CLOEXEC) != 0) hc_rb_sys_fail("creating the dump report pipe");
    c->child.report_fd = report[0];
    c->report_wr = report[1];
    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) hc_rb_sys_fail("creating the dump wake pipe");
    c->wake_rd = wake[0];
    c->wake_wr = wake[1];

    pid_t parent = getpid();
    c->started_ns = hc_now_ns();
    VALUE pidv = rb_funcall(a->fork_method, hc_id_call, 0);
    c->forked_ns = hc_now_ns();
    pid_t pid = NUM2PIDT(pidv);
    if (pid == 0) {
        hc_child_args args = {c->path, c->write_fd, c->report_wr, c->gzip, parent};
        hc_child_main(&args);
    }
    hc_close_fd(&c->write_fd);
    hc_close_fd(&c->report_wr); /* only the child writes: EOF once it is gone */
    hc_dump_child_init(&c->child, pid, report[0], c->read_fd);
    return Qnil;
}

/* Dump.fork_start(tmpdir, gzip, fork_method) => Child. The application is stopped only for the
 * fork; the child dumps into the 0600 tempfile while this returns. */
static VALUE hc_dump_fork_start(VALUE self, VALUE tmpdir, VALUE gzip, VALUE fork_method)
{
    hc_rb_child *c;
    VALUE obj = TypedData_Make_Struct(hc_cChild, hc_rb_child, &hc_rb_child_type, c);
    c->gzip = RTEST(gzip);
    c->owner = getpid();
    c->write_fd = c->report_wr = c->read_fd = c->wake_rd = c->wake_wr = -1;
    c->child.report_fd = c->child.pidfd = -1; /* nothing to stop until the fork */
    c->child.state = HC_CHILD_FAILED;
    c->grow.wait = hc_dump_child_grow_wait;
    c->grow.ctx = &c->child;
    hc_fork_start_args a = {c, fork_method, tmpdir};
    int state = 0;
    rb_protect(hc_fork_start_body, (VALUE)&a, &state);
    if (state) {
        hc_rb_child_close_all(c);
        rb_jump_tag(state);
    }
    RB_GC_GUARD(fork_method);
    RB_GC_GUARD(tmpdir);
    return obj;
}

typedef struct {
    hc_rb_child *c;
    int state;
} hc_child_wait_call;

static void *hc_child_wait_nogvl(void *arg)
{
    hc_child_wait_call *w = arg;
    w->state = hc_dump_child_wait(&w->c->child, -1, -1, w->c->wake_rd, NULL);
    return NULL;
}

/* Runs on Thread#kill, #raise, a signal or VM shutdown: ends the wait; #close then kills. */
static void hc_child_wait_ubf(void *arg)
{
    hc_child_wait_call *w = arg;
    ssize_t n = write(w->c->wake_wr, "w", 1);
    (void)n;
}

/* Child#wait => {"path", "raw_bytes", "bytes", "pause_ns", "dump_ns"}, once the child has
 * ended; raises DumpError saying how it failed. Waits with the GVL released. */
static VALUE hc_child_wait(VALUE self)
{
    hc_rb_child *c = hc_rb_child_get(self);
    hc_child_wait_call w = {c, c->child.state};
    while (w.state == HC_CHILD_RUNNING) {
        rb_thread_call_without_gvl(hc_child_wait_nogvl, &w, hc_child_wait_ubf, &w);
        rb_thread_check_ints(); /* Thread#kill / #raise go on from here; a trap handler returns */
        c = hc_rb_child_get(self);
    }
    if (w.state != HC_CHILD_OK) hc_rb_raise(hc_eDumpError, "%s", c->child.message);
    const hc_dump_report *r = &c->child.report;
    /* The child's own clock reading: the parent may notice its end a little later. */
    uint64_t ended = r->end_ns > c->started_ns && r->end_ns <= c->child.ended_ns ? r->end_ns : c->child.ended_ns;
    return hc_dump_result(c->path, r->raw_bytes, r->stored_bytes, c->forked_ns - c->started_ns,
                          ended - c->started_ns);
}

/* Child#stages => where the child's time went, from its report: {"dump_cpu_ns" (the dump
 * thread's CPU), "dump_wall_ns" (until it closed the pipe), "gzip_cpu_ns" (the pump thread's
 * CPU), "finish_ns" (end of stream)}; nil unless the child ended well. A diagnostic of the
 * internal Dump API (bench/capture and bench/dump_child print it); no capture result carries it. */
static VALUE hc_child_stages(VALUE self)
{
    hc_rb_child *c = rb_check_typeddata(self, &hc_rb_child_type);
    if (c->child.state != HC_CHILD_OK) return Qnil;
    const hc_dump_report *r = &c->child.report;
    VALUE stages = rb_hash_new();
    rb_hash_aset(stages, rb_str_new_cstr("dump_cpu_ns"), ULL2NUM(r->dump_cpu_ns));
    rb_hash_aset(stages, rb_str_new_cstr("dump_wall_ns"), ULL2NUM(r->dump_wall_ns));
    rb_hash_aset(stages, rb_str_new_cstr("gzip_cpu_ns"), ULL2NUM(r->gzip_cpu_ns));
    rb_hash_aset(stages, rb_str_new_cstr("finish_ns"), ULL2NUM(r->finish_ns));
    return stages;
}

/* Child#failure => the failure's text once the child has been seen to fail, else nil. Never waits. */
static VALUE hc_child_failure(VALUE self)
{
    hc_rb_child *c = rb_check_typeddata(self, &hc_rb_child_type);
    return c->child.state == HC_CHILD_FAILED && c->child.message[0] ? rb_str_new_cstr(c->child.message) : Qnil;
}

static VALUE hc_child_path(VALUE self)
{
    hc_rb_child *c = rb_check_typeddata(self, &hc_rb_child_type);
    return rb_str_new_cstr(c->path);
}

static VALUE hc_child_pid(VALUE self)
{
    hc_rb_child *c = rb_check_typeddata(self, &hc_rb_child_type);
    return PIDT2NUM(c->child.pid);
}

/* Child#close: kills a child that still runs (SIGKILL), reaps it, removes the tempfile. Idempotent. */
static VALUE hc_child_close(VALUE self)
{
    hc_rb_child_close_all(rb_check_typeddata(self, &hc_rb_child_type));
    return Qnil;
}

/* ---- inline mode --------------------------------------------------------------------------- */

typedef struct {
    char path[4096];
    int fd;
    int gzip;
    const char *buf;
    size_t len;
    size_t offset;          /* bytes of buf already compressed */
    volatile int cancel;    /* set by the unblocking function: give the GVL back soon */
    int done;
    int rc;
    hc_dump_sink sink;
    int sink_open;
    hc_sample_table *samples; /* the sampled tracer's, to annotate from */
    int succeeded;
    char err[512];
} hc_inline_state;

#define HC_INLINE_CHUNK (1024 * 1024)

/* Compresses from offset on, a chunk at a time, until done or asked to give the GVL back. */
static void *hc_inline_write_nogvl(void *arg)
{
    hc_inline_state *s = arg;
    while (s->offset < s->len && !s->cancel) {
        size_t take = s->len - s->offset < HC_INLINE_CHUNK ? s->len - s->offset : HC_INLINE_CHUNK;
        if (hc_dump_sink_write(&s->sink, s->buf + s->offset, take, s->err, sizeof s->err) != 0) {
            s->rc = -1;
            return NULL;
        }
        s->offset += take;
    }
    if (s->offset == s->len) {
        s->rc = hc_dump_sink_finish(&s->sink, s->err, sizeof s->err);
        s->done = 1;
    }
    return NULL;
}

static void hc_inline_ubf(void *arg)
{
    ((hc_inline_state *)arg)->cancel = 1;
}

static VALUE hc_inline_body(VALUE arg)
{
    hc_inline_state *s = (hc_inline_state *)arg;
    uint64_t t0 = hc_now_ns();
    /* Where the sampled objects are now, just before the dump, with no GC between (rb_tracer.h). */
    VALUE gc_was_disabled = rb_gc_disable();
    s->samples = hc_tracer_live_samples();
    int state = 0;
    VALUE str = rb_protect(hc_dump_all, hc_sym_string, &state);
    if (!RTEST(gc_was_disabled)) rb_gc_enable();
    if (state) rb_jump_tag(state);
    uint64_t dumped = hc_now_ns();
    StringValue(str);

    if (hc_dump_sink_open(&s->sink, s->fd, s->path, s->gzip, s->err, sizeof s->err) != 0)
        hc_rb_raise(hc_eDumpError, "%s", s->err);
    s->sink_open = 1;
    if (s->samples) hc_dump_sink_annotate(&s->sink, s->samples);
    /* The pointer is read with the GVL held and used without it. That is safe because nothing
     * else can reach `str` (dump_all made it; it is never handed out), so no thread can modify
     * or free it, and RB_GC_GUARD keeps it on this stack, where the GC sees it, pins it and
     * keeps its buffer alive until the write has finished. */
    s->buf = RSTRING_PTR(str);
    s->len = (size_t)RSTRING_LEN(str);
    /* An interrupt stops the loop; Thread#kill/#raise then raise out of here (the cleanup
     * removes the tempfile), anything else (a trap handler that ran) resumes where it stopped. */
    while (!s->done && s->rc == 0) {
        s->cancel = 0;
        rb_thread_call_without_gvl(hc_inline_write_nogvl, s, hc_inline_ubf, s);
    }
    RB_GC_GUARD(str);
    if (s->rc != 0) hc_rb_raise(hc_eDumpError, "%s", s->err);
    uint64_t done = hc_now_ns();
    rb_str_resize(str, 0); /* give the dump's memory back now rather than at the next GC */
    s->succeeded = 1;
    return hc_dump_result(s->path, s->sink.raw_bytes, s->sink.stored_bytes, dumped - t0, done - t0);
}

static VALUE hc_inline_cleanup(VALUE arg)
{
    hc_inline_state *s = (hc_inline_state *)arg;
    if (s->sink_open) hc_dump_sink_free(&s->sink);
    hc_samples_free(s->samples);
    hc_close_fd(&s->fd);
    if (!s->succeeded && s->path[0]) unlink(s->path);
    return Qnil;
}

/* Dump.inline_dump(tmpdir, gzip) */
static VALUE hc_dump_inline_dump(VALUE self, VALUE tmpdir, VALUE gzip)
{
    hc_inline_state s;
    memset(&s, 0, sizeof s);
    s.gzip = RTEST(gzip);
    s.fd = hc_create_tempfile(tmpdir, s.gzip, s.path, sizeof s.path);
    return rb_ensure(hc_inline_body, (VALUE)&s, hc_inline_cleanup, (VALUE)&s);
}

/* ---- free space ---------------------------------------------------------------------------- */

/* Dump.estimate(gzip) => bytes the stored dump may take, from this process's RSS; nil if unknown */
static VALUE hc_dump_estimate_m(VALUE self, VALUE gzip)
{
    uint64_t rss;
    char err[256];
    if (hc_dump_self_rss(&rss, err, sizeof err) != 0) return Qnil;
    return ULL2NUM(hc_dump_estimate(rss, RTEST(gzip)));
}

/* Dump.check_space(dir, needed_bytes) => free bytes, or raises DumpError saying what to change */
static VALUE hc_dump_check_space_m(VALUE self, VALUE dir, VALUE needed)
{
    char err[512];
    uint64_t avail;
    const char *d = StringValueCStr(dir);
    if (hc_dump_free_bytes(d, &avail, err, sizeof err) != 0 ||
        hc_dump_check_space(d, NUM2ULL(needed), err, sizeof err) != 0)
        hc_rb_raise(hc_eDumpError, "%s", err);
    return ULL2NUM(avail);
}

void hc_init_dump(void)
{
    hc_id_dump_all = rb_intern("dump_all");
    hc_id_call = rb_intern("call");
    hc_sym_output = ID2SYM(rb_intern("output"));
    hc_sym_string = ID2SYM(rb_intern("string"));

    VALUE mDump = rb_define_module_under(hc_mHeapCapture, "Dump");
    rb_define_singleton_method(mDump, "fork_start", hc_dump_fork_start, 3);
    hc_cChild = rb_define_class_under(mDump, "Child", rb_cObject);
    rb_undef_alloc_func(hc_cChild);
    rb_define_method(hc_cChild, "wait", hc_child_wait, 0);
    rb_define_method(hc_cChild, "failure", hc_child_failure, 0);
    rb_define_method(hc_cChild, "stages", hc_child_stages, 0);
    rb_define_method(hc_cChild, "path", hc_child_path, 0);
    rb_define_method(hc_cChild, "pid", hc_child_pid, 0);
    rb_define_method(hc_cChild, "close", hc_child_close, 0);
    rb_define_singleton_method(mDump, "inline_dump", hc_dump_inline_dump, 2);
    rb_define_singleton_method(mDump, "estimate", hc_dump_estimate_m, 1);
    rb_define_singleton_method(mDump, "check_space", hc_dump_check_space_m, 2);
    /* "isa-l" or "zlib": what compresses gzip dumps in this build (the benchmark names it). */
    rb_define_const(mDump, "GZIP_ENGINE", rb_obj_freeze(rb_str_new_cstr(hc_gzip_engine_name(hc_gzip_default_engine()))));
}
