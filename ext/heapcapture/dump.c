/* The Ruby-free parts of a heap dump (see dump.h). Nothing here allocates Ruby objects or takes
 * locks another thread may hold at fork time, so the dump child may call all of it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_GETPIPE_SZ */
#endif
#include "dump.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/random.h>
#endif

#define HC_DUMP_READ_CHUNK (1024 * 1024) /* the pump takes what the pipe holds in one read */
/* dump_all hands its IO 4 KB at a time and Ruby's IO writes 8 KB at a time: a pump blocked in
 * read() is woken by every such write (~100,000 for an 800 MB dump, each an inter-processor
 * interrupt when the writer runs on the other CPU). So after a short read the pump naps, lets the
 * writes pile up in the pipe and takes them in one read; while nobody waits on the pipe, a write
 * wakes nobody. Only with a pipe that holds a nap's worth of writes (dump_all writes ~300 MB/s:
 * 150 KB per nap), else the nap would slow the writer down. */
#define HC_DUMP_NAP_BELOW (128 * 1024)    /* a read shorter than this is followed by a nap */
#define HC_DUMP_NAP_NS (500 * 1000)
#define HC_DUMP_NAP_MIN_PIPE (512 * 1024)
#define HC_MIB (1024.0 * 1024.0)


/* ---- tempfile ---------------------------------------------------------------------------- */

int hc_dump_open_exclusive(const char *path, char *err, size_t errlen)
{
    int fd;
    do {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int e = errno;
        hc_errorf(err, errlen, "creating the dump tempfile %s: %s%s", path, strerror(e),
                  e == EEXIST ? " (a file of that name is already there; it was left alone)"
                  : (e == ENOENT || e == ENOTDIR || e == EACCES || e == EROFS || e == EPERM)
                         ? "; set tmpdir (HEAPCAPTURE_TMPDIR) to an existing directory this process can write"
                         : "");
        errno = e;
        return -1;
    }
    /* The umask can only narrow 0600, but be explicit: the dump holds every live string. */
    if (fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        hc_errorf(err, errlen, "making the dump tempfile %s private (chmod 0600): %s", path, strerror(e));
        errno = e;
        return -1;
    }
    return fd;
}

static uint64_t hc_dump_random(void)
{
    uint64_t r = 0;
#ifdef __linux__
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
#endif
    struct timespec ts;
    static uint64_t counter;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^ ++counter;
}

int hc_dump_tempfile(const char *dir, const char *suffix, char *path, size_t pathlen, char *err,
                     size_t errlen)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        int n = snprintf(path, pathlen, "%s/heapcapture-%ld-%016" PRIx64 "%s", dir, (long)getpid(),
                         hc_dump_random(), suffix ? suffix : "");
        if (n < 0 || (size_t)n >= pathlen) {
            hc_errorf(err, errlen, "creating the dump tempfile in %s: the path is too long; set tmpdir "
                      "(HEAPCAPTURE_TMPDIR) to a shorter directory", dir);
            return -1;
        }
        int fd = hc_dump_open_exclusive(path, err, errlen);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    hc_errorf(err, errlen, "creating the dump tempfile in %s: 16 random names were all taken", dir);
    return -1;
}

/* ---- the stream -------------------------------------------------------------------------- */

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

/* The compressor's output, on its way to the tempfile. */
static int hc_dump_sink_emit(void *arg, const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    hc_dump_sink *sink = arg;
    if (hc_dump_write_fully(sink->fd, buf, len, sink->path, err, errlen) != 0) return -1;
    sink->stored_bytes += len;
    return 0;
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

int hc_dump_sink_write(hc_dump_sink *sink, const void *buf, size_t len, char *err, size_t errlen)
{
    sink->raw_bytes += len;
    if (sink->gzip) return hc_gzip_write(&sink->gz, buf, len, err, errlen);
    if (hc_dump_write_fully(sink->fd, buf, len, sink->path, err, errlen) != 0) return -1;
    sink->stored_bytes += len;
    return 0;
}

uint64_t hc_dump_thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int hc_dump_sink_finish(hc_dump_sink *sink, char *err, size_t errlen)
{
    uint64_t t0 = hc_now_ns();
    if (sink->gzip && hc_gzip_finish(&sink->gz, err, errlen) != 0) return -1;
    /* No fsync: the tempfile is read back at once by this machine, from the page cache, then
     * removed; it never has to survive a crash (the next capture deletes an orphan). Space is
     * reserved by write() itself, so a full disk still fails above. fsync cost ~20 ms per gzip
     * dump and ~400 ms per plain 800 MB dump (bench/capture). */
    sink->finish_ns = hc_now_ns() - t0;
    return 0;
}

void hc_dump_sink_free(hc_dump_sink *sink)
{
    hc_gzip_free(&sink->gz);
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
    pump->cpu_ns = hc_dump_thread_cpu_ns();
    close(pump->in_fd); /* the writer now gets EPIPE instead of filling a pipe nobody reads */
    return NULL;
}

int hc_dump_pump_start(hc_dump_pump *pump, int in_fd, int out_fd, const char *path, int gzip,
                       char *err, size_t errlen)
{
    memset(pump, 0, sizeof *pump);
    pump->in_fd = in_fd;
    if (hc_dump_sink_open(&pump->sink, out_fd, path, gzip, err, errlen) != 0) return -1;
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
    hc_dump_sink_free(&pump->sink);
    if (pump->rc != 0) {
        hc_errorf(err, errlen, "%s", pump->err);
        return -1;
    }
    return 0;
}

/* ---- free space ------------------------------------------------------------------------ */

int hc_dump_parse_vmrss(const char *status_text, uint64_t *rss_bytes)
{
    const char *line = status_text;
    while (line && *line) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *end;
            errno = 0;
            unsigned long long kb = strtoull(line + 6, &end, 10);
            if (errno != 0 || end == line + 6) return -1;
            *rss_bytes = (uint64_t)kb * 1024;
            return 0;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return -1;
}

int hc_dump_self_rss(uint64_t *rss_bytes, char *err, size_t errlen)
{
    char text[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hc_errorf(err, errlen, "reading this process's memory size from /proc/self/status: %s",
                  strerror(errno));
        return -1;
    }
    size_t used = 0;
    ssize_t n;
    while (used < sizeof text - 1 && (n = read(fd, text + used, sizeof text - 1 - used)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        used += (size_t)n;
    }
    close(fd);
    text[used] = '\0';
    if (hc_dump_parse_vmrss(text, rss_bytes) != 0) {
        hc_errorf(err, errlen, "reading this process's memory size: no VmRSS line in /proc/self/status");
        return -1;
    }
    return 0;
}

uint64_t hc_dump_estimate(uint64_t rss_bytes, int gzip)
{
    uint64_t estimate = gzip ? rss_bytes * 2 / 5 : rss_bytes * 2;
    uint64_t floor = 16ull * 1024 * 1024;
    return estimate < floor ? floor : estimate;
}

int hc_dump_free_bytes(const char *dir, uint64_t *avail, char *err, size_t errlen)
{
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0) {
        int e = errno;
        hc_errorf(err, errlen, "checking free space in tmpdir %s: %s; set tmpdir (HEAPCAPTURE_TMPDIR) to "
                  "an existing writable directory", dir, strerror(e));
        return -1;
    }
    *avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    return 0;
}

int hc_dump_check_space(const char *dir, uint64_t needed, char *err, size_t errlen)
{
    uint64_t avail;
    if (hc_dump_free_bytes(dir, &avail, err, errlen) != 0) return -1;
    if (avail >= needed) return 0;
    hc_errorf(err, errlen, "not enough free space for the heap dump in tmpdir %s: it needs about %.1f MB "
              "(estimated from this process's memory), only %.1f MB are free; set tmpdir "
              "(HEAPCAPTURE_TMPDIR) to a filesystem with more room, or free some space",
              dir, (double)needed / HC_MIB, (double)avail / HC_MIB);
    return -1;
}

/* ---- the dump child ---------------------------------------------------------------------- */

int hc_dump_report_write(int fd, const hc_dump_report *report)
{
    ssize_t n;
    do {
        n = write(fd, report, sizeof *report);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof *report ? 0 : -1;
}

int hc_dump_report_read(int fd, hc_dump_report *report)
{
    size_t got = 0;
    while (got < sizeof *report) {
        ssize_t n = read(fd, (char *)report + got, sizeof *report - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (got != sizeof *report) return 0;
    report->message[sizeof report->message - 1] = '\0';
    return 1;
}

static const char *hc_dump_signal_name(int sig)
{
    switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    case SIGPIPE: return "SIGPIPE";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGALRM: return "SIGALRM";
    default: return NULL;
    }
}

void hc_dump_status_text(int wstatus, char *buf, size_t len)
{
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        const char *name = hc_dump_signal_name(sig);
        if (name) {
            snprintf(buf, len, "dump child killed by %s%s", name,
                     sig == SIGKILL ? " (out of memory, or killed by someone)" : "");
        } else {
            snprintf(buf, len, "dump child killed by signal %d", sig);
        }
    } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0) {
        snprintf(buf, len, "dump child exited with status %d", WEXITSTATUS(wstatus));
    } else if (WIFEXITED(wstatus)) {
        snprintf(buf, len, "dump child exited");
    } else {
        snprintf(buf, len, "dump child ended with wait status 0x%x", (unsigned)wstatus);
    }
}
