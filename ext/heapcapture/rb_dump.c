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
 * Inline mode is in rb_dump_inline.c. Child#wait and Dump.inline_dump return the Hash hc_dump_result
 * makes (rb_dump_shared.h) or raise DumpError (inline mode has then removed the tempfile). */
#include "rb_heapcapture.h"
#include "rb_dump.h"
#include "rb_dump_shared.h"
#include "rb_dump_in_child.h"
#include "rb_dump_prepare.h"
#include "rb_age.h"
#include "rb_tracer.h"
#include "dump_tempfile.h"
#include "dump_stream.h"
#include "dump_child_report.h"
#include "dump_watch.h"
#include "mem_proc.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ruby/thread.h>
#include <ruby/io.h>

static ID hc_id_call;

/* An unlinked 0600 file in tmpdir for the summary's JSON (nothing left behind), or DumpError. */
static int hc_create_summary_file(VALUE tmpdir)
{
    char err[512], path[4096];
    int fd = hc_dump_tempfile(StringValueCStr(tmpdir), ".summary.json", path, sizeof path, err, sizeof err);
    if (fd < 0) hc_rb_raise(hc_eDumpError, "%s", err);
    int rw = open(path, O_RDWR | O_CLOEXEC); /* the child writes it, this side reads it back */
    int e = errno;
    close(fd);
    unlink(path); /* only the fd is needed: nothing is left behind, whatever happens */
    if (rw < 0) hc_rb_raise(hc_eDumpError, "opening the dump summary's tempfile %s: %s", path, strerror(e));
    return rw;
}

/* ---- fork mode: the parent ----------------------------------------------------------------- */

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
    hc_redactor redactor;   /* the child's key when it redacts; wiped here once it has forked */
    int summary_fd;         /* the unlinked file the child writes the summary into, or -1 */
    hc_dump_age age;        /* the age file the child stores the dump in (encrypting); freed here after the fork */
    int encrypting;
    uint64_t started_ns, forked_ns;
    char err[512];
} hc_rb_child;

/* Kills and reaps a child that still runs, closes everything, removes the tempfile. */
static void hc_rb_child_close_all(hc_rb_child *c)
{
    hc_redactor_wipe(&c->redactor);
    hc_dump_age_free(&c->age);
    hc_close_fd(&c->summary_fd);
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
    int summarize;
    VALUE encrypt_to;       /* nil, or the recipients (Strings) */
} hc_fork_start_args;

static VALUE hc_call_fork(VALUE fork_method)
{
    return rb_funcall(fork_method, hc_id_call, 0);
}

static VALUE hc_fork_start_body(VALUE arg)
{
    hc_fork_start_args *a = (hc_fork_start_args *)arg;
    hc_rb_child *c = a->c;
    int report[2], wake[2];
    c->encrypting = !NIL_P(a->encrypt_to);
    /* In the app: the child must not run OpenSSL (hc_dump_age in dump_stream.h). */
    if (c->encrypting) hc_rb_age_start(&c->age, a->encrypt_to);
    c->write_fd = hc_create_tempfile(a->tmpdir, c->gzip, c->encrypting, c->path, sizeof c->path);
    if (a->summarize) c->summary_fd = hc_create_summary_file(a->tmpdir);
    c->read_fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (c->read_fd < 0) hc_rb_sys_fail("opening the dump tempfile for reading");
    if (pipe2(report, O_CLOEXEC) != 0) hc_rb_sys_fail("creating the dump report pipe");
    c->child.report_fd = report[0];
    c->report_wr = report[1];
    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) hc_rb_sys_fail("creating the dump wake pipe");
    c->wake_rd = wake[0];
    c->wake_wr = wake[1];

    hc_prepare_heap_for_fork(); /* outside the pause: other threads run meanwhile */
    /* Their turn now, so the fork's pause does not follow straight on the walk's last slice (a
     * thread that waited through both would see the two as one pause). */
    rb_thread_schedule();
    pid_t parent = getpid();
    c->started_ns = hc_now_ns();
    /* A lazy sweep or incremental marking under way finishes here, in the app (rb_gc_disable
     * finishes it), rather than in the child, where dump_all would finish it writing every freed
     * slot: pages of the child's own (doc/figures.md). GC stays off
     * until the fork is made: another thread run at the call below could start a new one, whose
     * sweep the child would then finish (the child keeps it off; the app gets it back at once). */
    VALUE gc_was_disabled = rb_gc_disable();
    int state = 0;
    VALUE pidv = rb_protect(hc_call_fork, a->fork_method, &state);
    c->forked_ns = hc_now_ns();
    if (getpid() == parent && !RTEST(gc_was_disabled)) rb_gc_enable();
    if (state) rb_jump_tag(state);
    pid_t pid = NUM2PIDT(pidv);
    if (pid == 0) {
        hc_child_args args = {c->path, c->write_fd, c->report_wr, c->gzip, c->redactor.ready ? &c->redactor : NULL,
                              c->summary_fd, c->encrypting ? &c->age : NULL, parent};
        hc_child_main(&args);
    }
    hc_redactor_wipe(&c->redactor); /* the child has its copy; the app never needs it */
    hc_dump_age_free(&c->age);      /* likewise the payload key */
    hc_close_fd(&c->write_fd);
    hc_close_fd(&c->report_wr); /* only the child writes: EOF once it is gone */
    hc_dump_child_init(&c->child, pid, report[0], c->read_fd);
    return Qnil;
}

/* Dump.fork_start(tmpdir, gzip, fork_method, redact = false, summarize = false, encrypt_to = nil) =>
 * Child. The application is stopped only for the fork; the child dumps into the
 * 0600 tempfile while this returns (and, summarizing, its summary into an unlinked file of its own:
 * a capture asks only when encrypting, as nothing in the app can read that tempfile back).
 * With encrypt_to (an Array of "age1..." recipients) the tempfile is an age file from its first
 * byte. */
static VALUE hc_dump_fork_start(int argc, VALUE *argv, VALUE self)
{
    VALUE tmpdir, gzip, fork_method, redact, summarize, encrypt_to;
    rb_scan_args(argc, argv, "33", &tmpdir, &gzip, &fork_method, &redact, &summarize, &encrypt_to);
    hc_redactor redactor;
    hc_rb_redactor_init(&redactor, redact); /* before the child exists: a build without it raises */
    hc_rb_child *c;
    VALUE obj = TypedData_Make_Struct(hc_cChild, hc_rb_child, &hc_rb_child_type, c);
    c->redactor = redactor;
    hc_redactor_wipe(&redactor);
    c->gzip = RTEST(gzip);
    c->owner = getpid();
    c->write_fd = c->report_wr = c->read_fd = c->wake_rd = c->wake_wr = c->summary_fd = -1;
    c->child.report_fd = c->child.pidfd = -1; /* nothing to stop until the fork */
    c->child.state = HC_CHILD_FAILED;
    c->grow.wait = hc_dump_child_grow_wait;
    c->grow.ctx = &c->child;
    hc_fork_start_args a = {c, fork_method, tmpdir, RTEST(summarize), encrypt_to};
    int state = 0;
    rb_protect(hc_fork_start_body, (VALUE)&a, &state);
    if (state) {
        hc_rb_child_close_all(c);
        rb_jump_tag(state);
    }
    RB_GC_GUARD(fork_method);
    RB_GC_GUARD(tmpdir);
    RB_GC_GUARD(encrypt_to);
    return obj;
}

typedef struct {
    hc_rb_child *c;
    int state;
} hc_child_wait_call;

/* The summary the child wrote (len bytes from offset 0), malloc'd; NULL with why set. */
static char *hc_read_summary_file(int fd, uint64_t len, char *why, size_t whylen)
{
    char *json = len < (1u << 30) ? malloc((size_t)len + 1) : NULL;
    if (!json) {
        snprintf(why, whylen, "reading the dump's summary: out of memory for %llu bytes", (unsigned long long)len);
        return NULL;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, json + got, (size_t)len - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(why, whylen, "reading the dump's summary back: %s", n < 0 ? strerror(errno) : "it is shorter than written");
            free(json);
            return NULL;
        }
        got += (size_t)n;
    }
    json[len] = '\0';
    return json;
}

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
    char *json = NULL;
    char why[256] = "";
    hc_summary_out summary = {NULL, 0, r->summary_error};
    if (c->summary_fd >= 0 && r->summary_bytes) {
        json = hc_read_summary_file(c->summary_fd, r->summary_bytes, why, sizeof why);
        summary.json = json;
        summary.len = json ? (size_t)r->summary_bytes : 0;
        if (!json) summary.error = why;
    }
    VALUE result = hc_dump_result(c->path, r->raw_bytes, r->stored_bytes, c->forked_ns - c->started_ns,
                                  ended - c->started_ns, &summary);
    free(json);
    return result;
}

/* Child#stages => where the child's time went, from its report: {"dump_cpu_ns" (the dump
 * thread's CPU), "dump_waits" (how often it waited: on a full pipe, mostly), "dump_wall_ns" (until it
 * closed the pipe), "gzip_cpu_ns" (the pump thread's
 * CPU), "finish_ns" (end of stream), "summary_cpu_ns" (the summary thread's CPU), "warm_pages",
 * "warm_mappings", "warm_faults", "warm_cpu_ns", "warm_wall_ns" (the page warmer's, dump_page_warm.h),
 * "nice" (the child's CPU priority)};
 * nil unless the child ended well. A diagnostic of the internal Dump API (bench/capture and bench/dump_child print it); no capture result carries it. */
static VALUE hc_child_stages(VALUE self)
{
    hc_rb_child *c = rb_check_typeddata(self, &hc_rb_child_type);
    if (c->child.state != HC_CHILD_OK) return Qnil;
    const hc_dump_report *r = &c->child.report;
    VALUE stages = rb_hash_new();
    rb_hash_aset(stages, rb_str_new_cstr("dump_cpu_ns"), ULL2NUM(r->dump_cpu_ns));
    rb_hash_aset(stages, rb_str_new_cstr("dump_waits"), ULL2NUM(r->dump_waits));
    rb_hash_aset(stages, rb_str_new_cstr("dump_wall_ns"), ULL2NUM(r->dump_wall_ns));
    rb_hash_aset(stages, rb_str_new_cstr("gzip_cpu_ns"), ULL2NUM(r->gzip_cpu_ns));
    rb_hash_aset(stages, rb_str_new_cstr("finish_ns"), ULL2NUM(r->finish_ns));
    rb_hash_aset(stages, rb_str_new_cstr("summary_cpu_ns"), ULL2NUM(r->summary_cpu_ns));
    rb_hash_aset(stages, rb_str_new_cstr("warm_pages"), ULL2NUM(r->warm_pages));
    rb_hash_aset(stages, rb_str_new_cstr("warm_cpu_ns"), ULL2NUM(r->warm_cpu_ns));
    rb_hash_aset(stages, rb_str_new_cstr("warm_wall_ns"), ULL2NUM(r->warm_wall_ns));
    rb_hash_aset(stages, rb_str_new_cstr("warm_mappings"), ULL2NUM(r->warm_mappings));
    rb_hash_aset(stages, rb_str_new_cstr("warm_faults"), ULL2NUM(r->warm_faults));
    rb_hash_aset(stages, rb_str_new_cstr("nice"), INT2NUM(r->nice));
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

/* Child#exited? => whether the child process has ended (its pages are the app's alone again). Never
 * waits; any thread may ask while another waits in #wait. */
static VALUE hc_child_exited(VALUE self)
{
    hc_rb_child *c = rb_check_typeddata(self, &hc_rb_child_type);
    return c->closed || hc_dump_child_exited(&c->child) ? Qtrue : Qfalse;
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

/* ---- free space ---------------------------------------------------------------------------- */

/* Dump.estimate(gzip) => bytes the stored dump may take, from this process's RSS; nil if unknown */
static VALUE hc_dump_estimate_m(VALUE self, VALUE gzip)
{
    uint64_t rss;
    char err[256];
    if (hc_proc_self_rss(&rss, err, sizeof err) != 0) return Qnil;
    return ULL2NUM(hc_dump_estimate(rss, RTEST(gzip)));
}

typedef struct {
    uint64_t rss;
    int rc;
    char err[256];
} hc_rss_call;

static void *hc_rss_nogvl(void *arg)
{
    hc_rss_call *c = arg;
    c->rc = hc_proc_self_rss(&c->rss, c->err, sizeof c->err);
    return NULL;
}

/* Dump.rss => this process's resident size in bytes (VmRSS), nil if unknown. Read from /proc
 * without the GVL: the RSS watch (autocapture.rb) calls it every rss_interval. */
static VALUE hc_dump_rss_m(VALUE self)
{
    hc_rss_call c;
    memset(&c, 0, sizeof c);
    rb_thread_call_without_gvl(hc_rss_nogvl, &c, NULL, NULL); /* one read of a small /proc file */
    return c.rc == 0 ? ULL2NUM(c.rss) : Qnil;
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
    hc_id_call = rb_intern("call");

    VALUE mDump = hc_rb_dump_module();
    rb_define_singleton_method(mDump, "fork_start", hc_dump_fork_start, -1);
    hc_cChild = rb_define_class_under(mDump, "Child", rb_cObject);
    rb_undef_alloc_func(hc_cChild);
    rb_define_method(hc_cChild, "wait", hc_child_wait, 0);
    rb_define_method(hc_cChild, "failure", hc_child_failure, 0);
    rb_define_method(hc_cChild, "stages", hc_child_stages, 0);
    rb_define_method(hc_cChild, "path", hc_child_path, 0);
    rb_define_method(hc_cChild, "pid", hc_child_pid, 0);
    rb_define_method(hc_cChild, "exited?", hc_child_exited, 0);
    rb_define_method(hc_cChild, "close", hc_child_close, 0);
    rb_define_singleton_method(mDump, "estimate", hc_dump_estimate_m, 1);
    rb_define_singleton_method(mDump, "rss", hc_dump_rss_m, 0);
    rb_define_singleton_method(mDump, "check_space", hc_dump_check_space_m, 2);
    /* Whether this build can redact strings (it was linked with libsodium). */
    rb_define_const(mDump, "REDACTION", hc_redact_available() ? Qtrue : Qfalse);
    /* Whether dump_all keeps the GVL for the whole dump (Ruby 3.4 and later, rb_dump_shared.h): an inline
     * capture then stops the app's other threads until the dump ends, as a plain dump_all does. */
    rb_define_const(mDump, "INLINE_STOPS_THE_APP", HC_DUMP_ALL_WRITES_STDIO ? Qtrue : Qfalse);
    /* "isa-l" or "zlib": what compresses gzip dumps in this build (the benchmark names it). */
    rb_define_const(mDump, "GZIP_ENGINE", rb_obj_freeze(rb_str_new_cstr(hc_gzip_engine_name(hc_gzip_default_engine()))));
}
