/* Inline mode, in the app's process (no fork): ObjectSpace.dump_all writes through a Ruby IO into
 * a pipe, and the pump thread (dump_stream.c, the one the fork child uses) adds the sampled sites,
 * compresses (and, with encrypt_to, encrypts) and writes the tempfile as the dump goes: no copy of
 * the dump is held in memory.
 *
 * A Ruby IO hands the GVL to other threads at each write(2), and a CPU-bound thread then keeps it
 * for its time slice (100 ms): with Ruby's 8 KiB buffer an 800 MB dump would wait 100,000 times.
 * Another thread running in the middle of dump_all is also what has crashed Ruby 3.1-3.3 (it can
 * change an object, a thread's stack above all, while dump_all walks its references; ruby/ruby#12285
 * made later Rubies write through stdio instead). So the IO gets a buffer of HC_INLINE_FLUSH_BYTES
 * and writes 17 times for 800 MB: that buffer, the pipe and the pump's are what inline mode costs in
 * memory, whatever the heap, and those few writes are the only moments another thread can run.
 *
 * Where dump_all writes through stdio (Ruby 3.4 and later, HC_DUMP_ALL_WRITES_STDIO), it keeps the
 * GVL to the end: the app's other threads wait for the whole dump, as with a plain dump_all, and a
 * bigger buffer would buy them nothing. The FILE gets half the pipe (hc_dump_pipe_write_bytes)
 * instead of glibc's 4 KiB (fewer writes and wake-ups of the pump), freed once the IO has closed it.
 *
 * The GC stays on (other threads may allocate in those moments), so the sampled objects are pinned
 * (rb_tracer.h): none of their slots holds another object when dump_all reaches it. */
#include "rb_heapcapture.h"
#include "rb_dump_shared.h"
#include "rb_age.h"
#include "rb_tracer.h"
#include "dump_stream.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ruby/thread.h>

#define HC_INLINE_FLUSH_BYTES (48L * 1024 * 1024)

typedef struct {
    VALUE tmpdir;
    VALUE encrypt_to;       /* nil, or the recipients (Strings) */
    char path[4096];
    int fd;                 /* the tempfile */
    int gzip;
    int summarize;
    int pipe_rd, pipe_wr;   /* -1 once the pump (read end) or the IO (write end) owns it */
    VALUE io;
    hc_dump_pump pump;
    int pump_started;
    int pump_rc;
    hc_sample_table *samples;
    hc_redactor redactor;   /* this capture's key, when it redacts; wiped at the end */
    hc_dump_age age;        /* the age file the dump is stored in, when it is encrypted; freed at the end */
    int encrypting;
    VALUE pin;
    char *stdio_buf;        /* the IO's FILE's buffer where dump_all writes through stdio, or NULL */
    int succeeded;
    char err[512];
} hc_inline_state;

static void *hc_inline_join_nogvl(void *arg)
{
    hc_inline_state *s = arg;
    s->pump_rc = hc_dump_pump_join(&s->pump, s->err, sizeof s->err);
    s->pump_started = 0;
    return NULL;
}

static VALUE hc_inline_close_io(VALUE io)
{
    return rb_io_close(io);
}

/* Ends the dump's stream: the IO closed (the pump sees EOF), the pump joined. Safe to repeat. */
static void hc_inline_end_stream(hc_inline_state *s)
{
    if (RTEST(s->io)) {
        int state = 0;
        rb_protect(hc_inline_close_io, s->io, &state);
        if (state) rb_set_errinfo(Qnil); /* a failed last write: the pump's error or dump_all's says why */
        /* Closing fclose()s the FILE, even after a failed write; should it not have, the buffer stays. */
        if (!state || RTEST(rb_funcall(s->io, rb_intern("closed?"), 0))) {
            free(s->stdio_buf);
            s->stdio_buf = NULL;
        }
        s->io = Qnil;
    }
    hc_close_fd(&s->pipe_wr);
    /* Bounded: the pump stops at EOF. Not interruptible, so that the table it reads outlives it. */
    if (s->pump_started) rb_thread_call_without_gvl(hc_inline_join_nogvl, s, NULL, NULL);
    hc_close_fd(&s->pipe_rd);
}

static VALUE hc_inline_write(VALUE io)
{
    hc_dump_all(io);
    return rb_io_flush(io);
}

static VALUE hc_inline_body(VALUE arg)
{
    hc_inline_state *s = (hc_inline_state *)arg;
    if (s->encrypting) hc_rb_age_start(&s->age, s->encrypt_to); /* before the tempfile: nothing to remove */
    s->fd = hc_create_tempfile(s->tmpdir, s->gzip, s->encrypting, s->path, sizeof s->path);
    uint64_t t0 = hc_now_ns();
    /* Where the sampled objects are now, checked and pinned with no GC between (rb_tracer.h). */
    VALUE gc_was_disabled = rb_gc_disable();
    s->samples = hc_tracer_live_samples();
    if (s->samples) s->pin = hc_tracer_pin(s->samples);
    if (!RTEST(gc_was_disabled)) rb_gc_enable();

    int fds[2];
    if (hc_dump_pipe(fds) != 0) hc_rb_sys_fail("inline dump: creating the dump pipe");
    s->pipe_rd = fds[0];
    s->pipe_wr = fds[1];
    hc_dump_stream_opts opts = {s->samples, s->redactor.ready ? &s->redactor : NULL, s->summarize,
                                s->encrypting ? &s->age : NULL};
    if (hc_dump_pump_start(&s->pump, s->pipe_rd, s->fd, s->path, s->gzip, &opts, s->err, sizeof s->err) != 0)
        hc_rb_raise(hc_eDumpError, "%s", s->err);
    s->pump_started = 1;
    s->pipe_rd = -1; /* the pump closes it */
    long file_bytes = hc_dump_pipe_write_bytes(s->pipe_wr);
    s->io = hc_dump_pipe_io(INT2NUM(s->pipe_wr));
    s->pipe_wr = -1;
    hc_dump_pipe_io_buffer(s->io, HC_INLINE_FLUSH_BYTES);
    s->stdio_buf = hc_dump_pipe_io_stdio_buffer(s->io, file_bytes);

    int state = 0;
    rb_protect(hc_inline_write, s->io, &state);
    uint64_t dumped = hc_now_ns();
    hc_inline_end_stream(s);
    /* The pump's failure (disk full) is the cause of the EPIPE dump_all then saw: it goes first. */
    if (s->pump_rc != 0) {
        rb_set_errinfo(Qnil);
        hc_rb_raise(hc_eDumpError, "%s", s->err);
    }
    if (state) rb_jump_tag(state);
    s->succeeded = 1;
    hc_summary_out summary = {s->pump.summary_json, s->pump.summary_len, s->pump.sink.summary_err};
    if (!s->summarize) summary.error = NULL;
    return hc_dump_result(s->path, s->pump.sink.raw_bytes, s->pump.sink.stored_bytes, dumped - t0, hc_now_ns() - t0,
                          &summary);
}

static VALUE hc_inline_cleanup(VALUE arg)
{
    hc_inline_state *s = (hc_inline_state *)arg;
    hc_inline_end_stream(s);
    hc_tracer_unpin(s->pin);
    hc_samples_free(s->samples);
    hc_redactor_wipe(&s->redactor);
    hc_dump_age_free(&s->age);
    free(s->pump.summary_json);
    s->pump.summary_json = NULL;
    hc_close_fd(&s->fd);
    if (!s->succeeded && s->path[0]) unlink(s->path);
    return Qnil;
}

static VALUE hc_dump_inline_dump(int argc, VALUE *argv, VALUE self)
{
    (void)self;
    VALUE tmpdir, gzip, redact, summarize, encrypt_to;
    rb_scan_args(argc, argv, "23", &tmpdir, &gzip, &redact, &summarize, &encrypt_to);
    hc_inline_state s;
    memset(&s, 0, sizeof s);
    hc_rb_redactor_init(&s.redactor, redact);
    s.pipe_rd = s.pipe_wr = -1;
    s.fd = -1;
    s.io = s.pin = Qnil;
    s.gzip = RTEST(gzip);
    s.summarize = NIL_P(summarize) || RTEST(summarize);
    s.encrypting = !NIL_P(encrypt_to);
    s.tmpdir = tmpdir;
    s.encrypt_to = encrypt_to;
    VALUE result = rb_ensure(hc_inline_body, (VALUE)&s, hc_inline_cleanup, (VALUE)&s);
    RB_GC_GUARD(s.io);
    RB_GC_GUARD(s.pin);
    RB_GC_GUARD(tmpdir);
    RB_GC_GUARD(encrypt_to);
    return result;
}

void hc_init_dump_inline(void)
{
    VALUE mDump = hc_rb_dump_module();
    rb_define_singleton_method(mDump, "inline_dump", hc_dump_inline_dump, -1);
}
