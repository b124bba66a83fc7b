/* The Ruby-free parts of a heap dump: the 0600 tempfile, the gzip stream (a "sink" fed either by a
 * pump thread reading a pipe, or by one buffer), the free-space check, the dump child's report and
 * the wait for it. Pure C: no Ruby. Every function that can fail returns -1 (or a negative code)
 * and writes what it was doing and why into err. */
#ifndef HC_DUMP_H
#define HC_DUMP_H

#include "util.h"
#include <pthread.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gzip_stream.h"

/* ---- tempfile ---------------------------------------------------------------------------- */

/* Opens exactly `path` for writing with O_CREAT|O_EXCL|O_CLOEXEC, mode 0600. Returns the fd or -1
 * (EEXIST included: never reuses or follows an existing file). */
int hc_dump_open_exclusive(const char *path, char *err, size_t errlen);

/* Creates "<dir>/heapcapture-<pid>-<random><suffix>" like hc_dump_open_exclusive, retrying with a
 * new random part on a name collision. Writes the path into path (pathlen bytes). */
int hc_dump_tempfile(const char *dir, const char *suffix, char *path, size_t pathlen, char *err,
                     size_t errlen);

/* ---- the stream: raw bytes in, stored bytes (gzip or plain) out -------------------------- */

typedef struct {
    int fd;                 /* written to, not owned */
    int gzip;               /* 1: one gzip member (gzip_stream.h, its default engine); 0: plain copy */
    const char *path;       /* named in error messages */
    char what[PATH_MAX + 32]; /* "the heap dump for <path>", for the compressor's messages */
    hc_gzip gz;
    uint64_t raw_bytes;     /* bytes given to hc_dump_sink_write */
    uint64_t stored_bytes;  /* bytes written to fd */
    uint64_t finish_ns;     /* wall time hc_dump_sink_finish took (the end of the gzip member) */
} hc_dump_sink;

int hc_dump_sink_open(hc_dump_sink *sink, int fd, const char *path, int gzip, char *err, size_t errlen);
int hc_dump_sink_write(hc_dump_sink *sink, const void *buf, size_t len, char *err, size_t errlen);
/* Ends the gzip member (no fsync: the file is read back at once from the page cache). */
int hc_dump_sink_finish(hc_dump_sink *sink, char *err, size_t errlen);
void hc_dump_sink_free(hc_dump_sink *sink);

/* A thread that reads in_fd until EOF into a sink. It closes in_fd when it stops, so a writer on
 * the other end of a pipe gets EPIPE at once when the sink fails (disk full). */
typedef struct {
    int in_fd;
    hc_dump_sink sink;
    pthread_t thread;
    int started;
    int rc;
    uint64_t cpu_ns;        /* CPU time of the pump thread: reading, compressing, writing */
    uint64_t reads;         /* read() calls that returned bytes */
    int napping;            /* the pipe is large enough to nap after short reads (dump.c) */
    char err[512];
} hc_dump_pump;

int hc_dump_pump_start(hc_dump_pump *pump, int in_fd, int out_fd, const char *path, int gzip,
                       char *err, size_t errlen);
/* Waits for the pump; 0 when every byte was stored. Frees the sink. */
int hc_dump_pump_join(hc_dump_pump *pump, char *err, size_t errlen);

/* CPU time this thread has used so far, in ns (0 when unknown). */
uint64_t hc_dump_thread_cpu_ns(void);

/* ---- free space ------------------------------------------------------------------------ */

/* VmRSS from a /proc/<pid>/status text, in bytes; -1 when absent. */
int hc_dump_parse_vmrss(const char *status_text, uint64_t *rss_bytes);
/* This process's VmRSS; -1 when unknown (no /proc). */
int hc_dump_self_rss(uint64_t *rss_bytes, char *err, size_t errlen);
/* Conservative size of the stored dump of a process with this RSS: dump_all writes ~1.75x RSS of
 * ndjson; gzip level 1 stores it 10-20x smaller. 2x RSS plain, 2x RSS / 5 gzip, 16 MiB minimum. */
uint64_t hc_dump_estimate(uint64_t rss_bytes, int gzip);
int hc_dump_free_bytes(const char *dir, uint64_t *avail, char *err, size_t errlen);
/* 0 when `needed` bytes fit in dir; -1 with "needs about N MB ... only M MB free ..." otherwise. */
int hc_dump_check_space(const char *dir, uint64_t needed, char *err, size_t errlen);

/* ---- the dump child ---------------------------------------------------------------------- */

/* What the child tells the parent through a pipe, in one write (smaller than PIPE_BUF). */
typedef struct {
    int32_t ok;
    uint64_t raw_bytes;
    uint64_t stored_bytes;
    uint64_t dump_cpu_ns;   /* CPU time of the thread that ran dump_all */
    uint64_t dump_wall_ns;  /* from the child's start until dump_all returned and the IO was closed */
    uint64_t gzip_cpu_ns;   /* CPU time of the pump (gzip) thread */
    uint64_t finish_ns;     /* the end of the stream, in the pump */
    uint64_t end_ns;        /* CLOCK_MONOTONIC (system-wide) when the tempfile was complete */
    char message[432];
} hc_dump_report;

int hc_dump_report_write(int fd, const hc_dump_report *report);
/* 1 when a whole report was read, 0 when the pipe had none (child died first), -1 on error. */
int hc_dump_report_read(int fd, hc_dump_report *report);

/* "dump child killed by SIGKILL", "dump child exited with status 3", "dump child exited". */
void hc_dump_status_text(int wstatus, char *buf, size_t len);

#endif
