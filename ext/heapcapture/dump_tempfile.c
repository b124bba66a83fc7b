/* The dump's tempfile and free space (see dump_tempfile.h). */
#include "dump_tempfile.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/random.h>
#endif

#define HC_MIB (1024.0 * 1024.0)

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
