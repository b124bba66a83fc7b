/* In the dump child, after the fork: what runs there and nowhere else (see rb_dump_in_child.h). It dies
 * with its parent (PR_SET_PDEATHSIG), lowers its priority, starts the pump (dump_stream.c) on a
 * pipe, runs ObjectSpace.dump_all(output: <the pipe>), waits for the pump, writes its report
 * (dump_child_report.c) and _exit()s: no at_exit handlers, no finalizers, no libpq, libcurl or OpenSSL
 * (an encrypted dump's age file was started in the app: the child only seals its chunks). */
#include "rb_heapcapture.h"
#include "rb_dump_in_child.h"
#include "rb_dump_shared.h"
#include "rb_tracer.h"
#include "dump_stream.h"
#include "dump_child_report.h"
#include "dump_page_warm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef HAVE_PRCTL
#include <sys/prctl.h>
#endif
#include <ruby/io.h>

/* How far below the app's CPU priority the child runs (nice steps). One step: the app comes first
 * (the design), yet the child is not starved when the app is busy, and a child that lives longer
 * costs memory (every page the app writes meanwhile is copied): doc/figures.md. */
#ifndef HC_DUMP_CHILD_NICE
#define HC_DUMP_CHILD_NICE 1
#endif

/* The IO dump_all writes the pipe through, with its buffer: writes of half the pipe
 * (hc_dump_pipe_write_bytes), not of Ruby's 8 KiB, so fewer writes and fewer wake-ups of the pump
 * (doc/capture.md); where dump_all writes through stdio, its FILE's buffer instead. For
 * rb_protect: both buffers allocate, and an exception must not leave hc_child_main. */
static VALUE hc_child_open_io(VALUE fdv)
{
    VALUE io = hc_dump_pipe_io(fdv);
    long bytes = hc_dump_pipe_write_bytes(NUM2INT(fdv));
    (void)hc_dump_pipe_io_buffer(io, bytes);
    (void)hc_dump_pipe_io_stdio_buffer(io, bytes); /* never freed: the child _exit()s */
    return io;
}

static VALUE hc_child_flush_io(VALUE io)
{
    return rb_io_flush(io);
}

static VALUE hc_child_close_io(VALUE io)
{
    return rb_io_close(io);
}

/* Puts the pending Ruby exception's class and message into buf. */
static void hc_child_exception_text(const char *doing, char *buf, size_t len)
{
    VALUE exc = rb_errinfo();
    int state = 0;
    VALUE text = rb_protect(hc_rb_describe_exception, exc, &state);
    if (state || !RB_TYPE_P(text, T_STRING)) {
        snprintf(buf, len, "%s: an exception was raised", doing);
    } else {
        snprintf(buf, len, "%s: %.*s", doing, (int)RSTRING_LEN(text), RSTRING_PTR(text));
    }
    rb_set_errinfo(Qnil);
}

/* The summary's JSON into its file, for the parent; or why there is none, in the report. */
static void hc_child_write_summary(int fd, const hc_dump_pump *pump, hc_dump_report *report)
{
    if (!pump->summary_json) {
        snprintf(report->summary_error, sizeof report->summary_error, "%s",
                 pump->sink.summary_err[0] ? pump->sink.summary_err : "summarizing the dump: no summary was made");
        return;
    }
    size_t done = 0;
    while (done < pump->summary_len) {
        ssize_t n = pwrite(fd, pump->summary_json + done, pump->summary_len - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(report->summary_error, sizeof report->summary_error, "writing the dump's summary to tmpdir: %s",
                     n < 0 ? strerror(errno) : "nothing written");
            return;
        }
        done += (size_t)n;
    }
    report->summary_bytes = pump->summary_len;
}

void hc_child_main(const hc_child_args *a)
{
    hc_dump_report report;
    memset(&report, 0, sizeof report);
    uint64_t started = hc_now_ns();
#ifdef HAVE_PRCTL
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != a->parent) _exit(3); /* the parent died before the line above: nobody to serve */
#endif
    /* Below the app's priority (nice is relative: an app that runs niced keeps its lead); best effort. */
    errno = 0;
    int app_nice = getpriority(PRIO_PROCESS, 0);
    if (errno != 0) app_nice = 0;
    int child_nice = app_nice + HC_DUMP_CHILD_NICE > 19 ? 19 : app_nice + HC_DUMP_CHILD_NICE;
    (void)setpriority(PRIO_PROCESS, 0, child_nice);
    errno = 0;
    report.nice = getpriority(PRIO_PROCESS, 0);
    if (errno != 0) report.nice = app_nice;

    int pipefd[2];
    if (hc_dump_pipe(pipefd) != 0) {
        snprintf(report.message, sizeof report.message, "dump child: creating the dump pipe: %s", strerror(errno));
        hc_dump_report_write(a->report_fd, &report);
        _exit(1);
    }
    hc_dump_pump pump;
    char err[sizeof report.message];
    /* The sampled tracer's samples of objects still alive, where they are now: added to the dump.
     * No GC from here on (the child ends after the dump): what was checked stays as it is. */
    rb_gc_disable();
    hc_sample_table *samples = hc_tracer_live_samples();
    hc_dump_stream_opts opts = {samples, a->redactor, a->summary_fd >= 0, a->age};
    if (hc_dump_pump_start(&pump, pipefd[0], a->file_fd, a->path, a->gzip, &opts, err, sizeof err) != 0) {
        snprintf(report.message, sizeof report.message, "%s", err);
        hc_dump_report_write(a->report_fd, &report);
        _exit(1);
    }

    /* Best effort: without it the dump is only slower (dump_page_warm.h). */
    hc_page_warm warm;
    if (hc_page_warm_start(&warm) != 0) memset(&warm, 0, sizeof warm);

    char ruby_err[sizeof report.message] = "";
    int state = 0;
    VALUE io = rb_protect(hc_child_open_io, INT2NUM(pipefd[1]), &state);
    if (state) {
        hc_child_exception_text("dump child: opening the dump pipe", ruby_err, sizeof ruby_err);
        close(pipefd[1]);
    } else {
        rb_protect(hc_dump_all, io, &state);
        if (state) hc_child_exception_text("ObjectSpace.dump_all", ruby_err, sizeof ruby_err);
        rb_protect(hc_child_flush_io, io, &state);
        if (state && !ruby_err[0]) hc_child_exception_text("dump child: flushing the dump pipe", ruby_err, sizeof ruby_err);
        rb_protect(hc_child_close_io, io, &state); /* the pump sees EOF */
        if (state) {
            if (!ruby_err[0]) hc_child_exception_text("dump child: closing the dump pipe", ruby_err, sizeof ruby_err);
            close(pipefd[1]);
        }
    }

    report.dump_wall_ns = hc_now_ns() - started;
    report.dump_cpu_ns = hc_thread_cpu_ns();
    report.dump_waits = hc_thread_waits();
    hc_page_warm_stop(&warm); /* before the pump frees its buffers: the warmer may be reading them */
    report.warm_pages = warm.pages;
    report.warm_cpu_ns = warm.cpu_ns;
    report.warm_wall_ns = warm.wall_ns;
    report.warm_mappings = warm.mappings;
    report.warm_faults = warm.faults;
    /* The pump's error (disk full) is the cause of any EPIPE dump_all saw: report it first. */
    int pump_rc = hc_dump_pump_join(&pump, err, sizeof err);
    report.raw_bytes = pump.sink.raw_bytes;
    report.stored_bytes = pump.sink.stored_bytes;
    report.gzip_cpu_ns = pump.cpu_ns;
    report.finish_ns = pump.sink.finish_ns;
    report.summary_cpu_ns = pump.sink.summary_cpu_ns;
    if (pump_rc == 0 && a->summary_fd >= 0) hc_child_write_summary(a->summary_fd, &pump, &report);
    free(pump.summary_json);
    hc_samples_free(samples);
    report.end_ns = hc_now_ns();
    if (pump_rc != 0) {
        snprintf(report.message, sizeof report.message, "%s", err);
    } else if (ruby_err[0]) {
        snprintf(report.message, sizeof report.message, "%s", ruby_err);
    } else {
        report.ok = 1;
    }
    hc_dump_report_write(a->report_fd, &report);
    _exit(report.ok ? 0 : 1);
}
