/* proc_mem.c: "Name: N kB" fields (spacing, missing, not a number, a prefix of another name), and
 * this process's own VmRSS and Pss, a child's Pss, and a process that is gone. */
#include "proc_mem.h"
#include "hc_test.h"

#include <signal.h>
#include <stdint.h>
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

int main(void)
{
    test_fields();
    test_processes();
    return hc_test_summary("proc_mem");
}
