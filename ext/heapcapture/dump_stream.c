/* The dump's stream into the tempfile (see dump_stream.h). Nothing here allocates Ruby objects or
 * takes locks another thread may hold at fork time, so the dump child may call all of it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_GETPIPE_SZ */
#endif
#include "dump_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HC_DUMP_READ_CHUNK (1024 * 1024) /* the pump takes what the pipe holds in one read */
/* dump_all hands its IO 4 KB at a time and Ruby's IO writes 8 KB at a time: a pump blocked in
 * read() is woken by every such write (each an inter-processor interrupt when the writer runs on
 * the other CPU). So after a short read the pump naps, lets the writes pile up in the pipe and
 * takes them in one read; while nobody waits on the pipe, a write wakes nobody. Only with a pipe
 * that holds a nap's worth of dump_all's writes (doc/figures.md), else the nap would slow the
 * writer down. */
#define HC_DUMP_NAP_BELOW (128 * 1024)    /* a read shorter than this is followed by a nap */
#define HC_DUMP_NAP_NS (500 * 1000)
#define HC_DUMP_NAP_MIN_PIPE (512 * 1024)

static int hc_dump_write_fully(int fd, const unsigned char *buf, size_t len, const char *path,
                               char *err, size_t errlen)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            hc_errorf(err, errlen, "writing the heap dump to %s: %s%s", path, strerror(e),
                      e == ENOSPC || e == EDQUOT
                             ? " (the disk filled up during the dump; point tmpdir / HEAPCAPTURE_TMPDIR at "
                               "a filesystem with more room)"
                             : "");
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Bytes into the tempfile, as stored. */
static int hc_dump_sink_file(hc_dump_sink *sink, const void *buf, size_t len, char *err, size_t errlen)
{
    if (hc_dump_write_fully(sink->fd, buf, len, sink->path, err, errlen) != 0) return -1;
    sink->stored_bytes += len;
    return 0;
}

/* The age writer's output: the header, held in memory until a sink takes the file, then the
 * sealed chunks into the tempfile, the header first. */
static int hc_dump_age_out(void *arg, const void *buf, size_t len, char *err, size_t errlen)
{
    hc_dump_age *age = arg;
    if (!age->sink) {
        hc_sbuf_append(&age->header, buf, len);
        if (!age->header.oom) return 0;
        hc_errorf(err, errlen, "encrypting the heap dump: out of memory for the age header");
        return -1;
    }
    if (age->header.len) {
        int rc = hc_dump_sink_file(age->sink, age->header.data, age->header.len, err, errlen);
        hc_sbuf_free(&age->header);
        if (rc != 0) return -1;
    }
    return hc_dump_sink_file(age->sink, buf, len, err, errlen);
}

int hc_dump_age_start(hc_dump_age *age, const hc_age_recipient *recipients, size_t n, char *err, size_t errlen)
{
    memset(age, 0, sizeof *age);
    if (hc_age_writer_init(&age->writer, recipients, n, hc_dump_age_out, age, err, errlen) == 0) return 0;
    hc_dump_age_free(age);
    return -1;
}

void hc_dump_age_free(hc_dump_age *age)
{
    hc_age_writer_free(&age->writer);
    hc_sbuf_free(&age->header);
    age->sink = NULL;
}

/* The compressed (or plain) output, on its way to the tempfile: encrypted first when asked. */
static int hc_dump_sink_out(hc_dump_sink *sink, const void *buf, size_t len, char *err, size_t errlen)
{
    if (sink->age) return hc_age_writer_write(&sink->age->writer, buf, len, err, errlen);
    return hc_dump_sink_file(sink, buf, len, err, errlen);
}

/* The compressor's output. */
static int hc_dump_sink_emit(void *arg, const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    return hc_dump_sink_out(arg, buf, len, err, errlen);
}

int hc_dump_sink_open(hc_dump_sink *sink, int fd, const char *path, int gzip, char *err, size_t errlen)
{
    memset(sink, 0, sizeof *sink);
    sink->fd = fd;
    sink->gzip = gzip;
    sink->path = path;
    if (!gzip) return 0;
    snprintf(sink->what, sizeof sink->what, "the heap dump for %s", path);
    return hc_gzip_open(&sink->gz, hc_gzip_default_engine(), sink->what, hc_dump_sink_emit, sink, err, errlen);
}

/* The ndjson as it is stored: into the compressor, or the file. */
static int hc_dump_sink_store(void *arg, const void *buf, size_t len, char *err, size_t errlen)
{
    hc_dump_sink *sink = arg;
    sink->raw_bytes += len;
    if (sink->summarizing) hc_summary_feed_write(&sink->feed, buf, len);
    if (sink->gzip) return hc_gzip_write(&sink->gz, buf, len, err, errlen);
    return hc_dump_sink_out(sink, buf, len, err, errlen);
}

void hc_dump_sink_options(hc_dump_sink *sink, const hc_dump_stream_opts *opts)
{
    if (!opts) return;
    if (opts->encrypt) {
        sink->age = opts->encrypt;
        sink->age->sink = sink;
    }
    if (opts->summarize) {
        sink->summarizing = hc_summary_feed_start(&sink->feed, sink->summary_err, sizeof sink->summary_err) == 0;
    }
    if (!opts->samples && !opts->redactor) return;
    hc_annotator_init(&sink->annotator, opts->samples, hc_dump_sink_store, sink);
    if (opts->redactor) hc_annotator_redact(&sink->annotator, opts->redactor);
    sink->annotating = 1;
}

/* The summary's end: its thread joined, its JSON made. */
static void hc_dump_sink_end_summary(hc_dump_sink *sink)
{
    if (!sink->summarizing) return;
    hc_summary_feed_finish(&sink->feed);
    sink->summary_cpu_ns = sink->feed.cpu_ns;
    if (!sink->feed.summary.failed)
        sink->summary_json = hc_summary_json(&sink->feed.summary, HC_DUMP_SUMMARY_SITES, &sink->summary_len);
    if (!sink->summary_json) hc_errorf(sink->summary_err, sizeof sink->summary_err, "summarizing the dump: out of memory");
    hc_summary_feed_free(&sink->feed);
    sink->summarizing = 0;
}

int hc_dump_sink_write(hc_dump_sink *sink, const void *buf, size_t len, char *err, size_t errlen)
{
    if (sink->annotating) return hc_annotator_write(&sink->annotator, buf, len, err, errlen);
    return hc_dump_sink_store(sink, buf, len, err, errlen);
}

int hc_dump_sink_finish(hc_dump_sink *sink, char *err, size_t errlen)
{
    if (sink->annotating && hc_annotator_finish(&sink->annotator, err, errlen) != 0) return -1;
    uint64_t t0 = hc_now_ns();
    if (sink->gzip && hc_gzip_finish(&sink->gz, err, errlen) != 0) return -1;
    if (sink->age && hc_age_writer_finish(&sink->age->writer, err, errlen) != 0) return -1;
    /* No fsync: the tempfile is read back at once by this machine, from the page cache, then
     * removed; it never has to survive a crash (the next capture deletes an orphan). Space is
     * reserved by write() itself, so a full disk still fails above. What fsync cost: doc/figures.md. */
    sink->finish_ns = hc_now_ns() - t0;
    hc_dump_sink_end_summary(sink);
    return 0;
}

void hc_dump_sink_free(hc_dump_sink *sink)
{
    if (sink->summarizing) hc_summary_feed_free(&sink->feed); /* a stream that failed */
    sink->summarizing = 0;
    free(sink->summary_json);
    sink->summary_json = NULL;
    hc_gzip_free(&sink->gz);
    if (sink->age) sink->age->sink = NULL; /* the age file is its owner's */
    sink->age = NULL;
    if (sink->annotating) hc_annotator_free(&sink->annotator);
    sink->annotating = 0;
}

static void *hc_dump_pump_main(void *arg)
{
    hc_dump_pump *pump = arg;
    unsigned char *buf = malloc(HC_DUMP_READ_CHUNK);
    pump->rc = -1;
    if (!buf) {
        hc_errorf(pump->err, sizeof pump->err, "reading the heap dump stream: out of memory");
        close(pump->in_fd);
        return NULL;
    }
#ifdef F_GETPIPE_SZ
    pump->napping = fcntl(pump->in_fd, F_GETPIPE_SZ) >= HC_DUMP_NAP_MIN_PIPE;
#endif
    const struct timespec nap_time = {0, HC_DUMP_NAP_NS};
    for (;;) {
        ssize_t n = read(pump->in_fd, buf, HC_DUMP_READ_CHUNK);
        if (n < 0) {
            if (errno == EINTR) continue;
            hc_errorf(pump->err, sizeof pump->err, "reading the heap dump stream from its pipe: %s",
                      strerror(errno));
            break;
        }
        if (n == 0) {
            pump->rc = hc_dump_sink_finish(&pump->sink, pump->err, sizeof pump->err);
            break;
        }
        pump->reads++;
        if (hc_dump_sink_write(&pump->sink, buf, (size_t)n, pump->err, sizeof pump->err) != 0) break;
        if (pump->napping && n < HC_DUMP_NAP_BELOW) nanosleep(&nap_time, NULL);
    }
    free(buf);
    pump->cpu_ns = hc_thread_cpu_ns();
    close(pump->in_fd); /* the writer now gets EPIPE instead of filling a pipe nobody reads */
    return NULL;
}

int hc_dump_pump_start(hc_dump_pump *pump, int in_fd, int out_fd, const char *path, int gzip,
                       const hc_dump_stream_opts *opts, char *err, size_t errlen)
{
    memset(pump, 0, sizeof *pump);
    pump->in_fd = in_fd;
    if (hc_dump_sink_open(&pump->sink, out_fd, path, gzip, err, errlen) != 0) return -1;
    hc_dump_sink_options(&pump->sink, opts);
    int prc = pthread_create(&pump->thread, NULL, hc_dump_pump_main, pump);
    if (prc != 0) {
        hc_dump_sink_free(&pump->sink);
        hc_errorf(err, errlen, "starting the gzip thread for %s: %s", path, strerror(prc));
        return -1;
    }
    pump->started = 1;
    return 0;
}

int hc_dump_pump_join(hc_dump_pump *pump, char *err, size_t errlen)
{
    if (!pump->started) {
        hc_errorf(err, errlen, "the gzip thread was never started");
        return -1;
    }
    pthread_join(pump->thread, NULL);
    pump->started = 0;
    pump->summary_json = pump->sink.summary_json; /* the caller's now */
    pump->summary_len = pump->sink.summary_len;
    pump->sink.summary_json = NULL;
    hc_dump_sink_free(&pump->sink);
    if (pump->rc != 0) {
        hc_errorf(err, errlen, "%s", pump->err);
        return -1;
    }
    return 0;
}
