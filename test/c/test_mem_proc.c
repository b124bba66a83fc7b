/* mem_proc.c: "Name: N kB" fields (spacing, missing, not a number, a prefix of another name), and
 * this process's own VmRSS and Pss, a child's Pss, and a process that is gone; a /proc file read
 * whole past the first buffer (smaps of a process with many mappings), and one that is not there. */
#include "mem_proc.h"
#include "hc_test.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_fields(void)
{
    uint64_t v = 0;
    const char *status = "Name:\truby\nVmPeak:\t 9 kB\nVmRSS:\t  460800 kB\nThreads: 3\n";
    HC_CHECK(hc_proc_kb_field(status, "VmRSS:", &v) == 0 && v == 460800ull * 1024, "VmRSS %llu", (unsigned long long)v);
    HC_CHECK(hc_proc_kb_field(status, "VmPeak:", &v) == 0 && v == 9 * 1024, "the first line");
    HC_CHECK(hc_proc_kb_field("Name: x\n", "VmRSS:", &v) < 0, "no such line");
    HC_CHECK(hc_proc_kb_field("VmRSS: lots kB\n", "VmRSS:", &v) < 0, "not a number");
    HC_CHECK(hc_proc_kb_field("", "Pss:", &v) < 0, "empty text");
    const char *rollup = "55-7f ---p 00000000 00:00 0 [rollup]\nRss:  513736 kB\nPss_Dirty: 1 kB\nPss:  509431 kB\n";
    HC_CHECK(hc_proc_kb_field(rollup, "Pss:", &v) == 0 && v == 509431ull * 1024, "Pss, not Pss_Dirty: %llu",
             (unsigned long long)v);
    HC_CHECK(hc_proc_kb_field("Pss: 99999999999999999999 kB\n", "Pss:", &v) < 0, "too large");
}

static void test_processes(void)
{
    uint64_t rss = 0, pss = 0, child_pss = 0;
    char err[512];
    HC_CHECK(hc_proc_self_rss(&rss, err, sizeof err) == 0 && rss > 1024 * 1024, "self rss: %s", err);
    HC_CHECK(hc_proc_pss(0, &pss, err, sizeof err) == 0 && pss > 0 && pss <= rss + rss / 2, "self pss: %s", err);
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    HC_CHECK(hc_proc_pss(pid, &child_pss, err, sizeof err) == 0 && child_pss > 0, "child pss: %s", err);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    HC_CHECK(hc_proc_pss(pid, &child_pss, err, sizeof err) < 0 && strstr(err, "smaps_rollup"), "gone: %s", err);
}

static void test_whole_text(void)
{
    /* 200 mappings of their own (every other page of one reservation, so none merge) put smaps far
     * past the 16 KB the read starts with */
    long page = sysconf(_SC_PAGESIZE);
    char *span = mmap(NULL, (size_t)page * 400, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    HC_CHECK(span != MAP_FAILED, "mmap");
    if (span == MAP_FAILED) return;
    for (int i = 0; i < 400; i += 2) mprotect(span + (size_t)i * page, (size_t)page, PROT_READ);
    char *smaps = hc_proc_text(0, "smaps");
    HC_CHECK(smaps != NULL, "smaps: %s", strerror(errno));
    if (smaps) {
        char first[32];
        snprintf(first, sizeof first, "%lx-", (unsigned long)(uintptr_t)span);
        size_t len = strlen(smaps);
        HC_CHECK(len > 128 * 1024, "smaps read whole: %zu bytes", len);
        HC_CHECK(strstr(smaps, first) != NULL, "the first test mapping is listed");
        /* the text ends where the file does: its last line is whole */
        HC_CHECK(len > 0 && smaps[len - 1] == '\n', "ends with a whole line");
        free(smaps);
    }
    munmap(span, (size_t)page * 400);
    errno = 0;
    HC_CHECK(hc_proc_text(0, "no-such-file") == NULL && errno == ENOENT, "a missing file: errno %d", errno);
}

int main(void)
{
    test_fields();
    test_processes();
    test_whole_text();
    return hc_test_summary("mem_proc");
}
