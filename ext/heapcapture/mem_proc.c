/* /proc memory figures (mem_proc.h). */
#include "mem_proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hc_proc_kb_field(const char *text, const char *name, uint64_t *bytes)
{
    size_t nlen = strlen(name);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, name, nlen) != 0) continue;
        const char *p = line + nlen;
        while (*p == ' ' || *p == '\t') p++;
        if (*p < '0' || *p > '9') return -1;
        char *end;
        errno = 0;
        unsigned long long kb = strtoull(p, &end, 10);
        if (errno != 0 || kb > UINT64_MAX / 1024) return -1;
        *bytes = (uint64_t)kb * 1024;
        return 0;
    }
    return -1;
}

char *hc_proc_text(pid_t pid, const char *file)
{
    char path[64];
    int plen = pid > 0 ? snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, file)
                       : snprintf(path, sizeof path, "/proc/self/%s", file);
    if (plen < 0 || (size_t)plen >= sizeof path) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 16 * 1024, len = 0; /* status and smaps_rollup fit; smaps doubles it */
    char *buf = malloc(cap);
    while (buf) {
        if (cap - len < 4096) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) break;
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        if (n == 0) {
            buf[len] = '\0';
            close(fd);
            return buf;
        }
        len += (size_t)n;
    }
    int saved = buf ? errno : ENOMEM;
    free(buf);
    close(fd);
    errno = saved;
    return NULL;
}

static int hc_proc_field(pid_t pid, const char *file, const char *name, const char *what, uint64_t *bytes,
                         char *err, size_t errlen)
{
    char *text = hc_proc_text(pid, file);
    if (!text) {
        hc_errorf(err, errlen, "reading %s from /proc/%s/%s: %s", what, pid > 0 ? "<pid>" : "self", file,
                  strerror(errno));
        return -1;
    }
    int rc = hc_proc_kb_field(text, name, bytes);
    free(text);
    if (rc != 0) {
        hc_errorf(err, errlen, "reading %s: no %s line in /proc/%s/%s", what, name, pid > 0 ? "<pid>" : "self", file);
        return -1;
    }
    return 0;
}

int hc_proc_self_rss(uint64_t *bytes, char *err, size_t errlen)
{
    return hc_proc_field(0, "status", "VmRSS:", "this process's memory size", bytes, err, errlen);
}

int hc_proc_pss(pid_t pid, uint64_t *bytes, char *err, size_t errlen)
{
    return hc_proc_field(pid, "smaps_rollup", "Pss:", "a process's proportional memory size", bytes, err, errlen);
}
