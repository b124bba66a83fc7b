/* mem_watch.c: the peak extra memory seen while this process touches 64 MB more, while a forked
 * child writes 48 MB of its own and copies 32 MB of pages it shares with this process; nothing
 * extra when nothing happens; stop is idempotent and prompt. */
#include "mem_watch.h"
#include "mem_proc.h"
#include "hc_test.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MB (1024 * 1024)

/* Writes every page of p (volatile: the compiler may not drop stores nothing reads back). */
static void touch(char *p, size_t len, char value)
{
    volatile char *v = p;
    for (size_t i = 0; i < len; i += 4096) v[i] = value;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t base_pss(void)
{
    uint64_t pss = 0;
    char err[256];
    HC_CHECK(hc_proc_pss(0, &pss, err, sizeof err) == 0, "base: %s", err);
    return pss;
}

static void test_this_process(void)
{
    hc_mem_watch w;
    char err[256];
    HC_CHECK(hc_mem_watch_start(&w, 0, base_pss(), err, sizeof err) == 0, "start: %s", err);
    char *block = malloc(64 * MB);
    touch(block, 64 * MB, 1);
    nap_ms(100);
    int64_t peak = hc_mem_watch_stop(&w);
    HC_CHECK(peak >= 60 * MB && peak < 100 * MB, "64 MB touched: peak %lld MB", (long long)(peak / MB));
    HC_CHECK(w.samples >= 2, "sampled %llu times", (unsigned long long)w.samples);
    HC_CHECK(hc_mem_watch_stop(&w) == peak, "stop again: the same figure");
    free(block);
}

static void test_quiet(void)
{
    hc_mem_watch w;
    char err[256];
    HC_CHECK(hc_mem_watch_start(&w, 0, base_pss(), err, sizeof err) == 0, "start: %s", err);
    nap_ms(60);
    int64_t peak = hc_mem_watch_stop(&w);
    HC_CHECK(peak >= 0 && peak < 8 * MB, "nothing happened: peak %lld bytes", (long long)peak);
}

static void test_child(void)
{
    char *shared = malloc(32 * MB);
    touch(shared, 32 * MB, 2); /* this process's own pages, shared with the child after the fork */
    uint64_t base = base_pss();
    int go[2], done[2];
    HC_CHECK(pipe(go) == 0 && pipe(done) == 0, "pipes");
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        if (read(go[0], &c, 1) != 1) _exit(1);
        touch(shared, 32 * MB, 3);   /* copy-on-write: 32 MB copied */
        char *own = malloc(48 * MB); /* and 48 MB of its own */
        touch(own, 48 * MB, 4);
        if (write(done[1], "x", 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    hc_mem_watch w;
    char err[256];
    HC_CHECK(hc_mem_watch_start(&w, pid, base, err, sizeof err) == 0, "start: %s", err);
    HC_CHECK(write(go[1], "x", 1) == 1, "go");
    /* Until the child has touched it all (a loaded machine under ASan can take seconds), then a
     * few of the watch's samples. */
    struct pollfd pfd = {done[0], POLLIN, 0};
    char c;
    HC_CHECK(poll(&pfd, 1, 30000) == 1 && read(done[0], &c, 1) == 1, "the child touched its pages");
    nap_ms(200);
    hc_mem_watch_forget_child(&w);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int64_t peak = hc_mem_watch_stop(&w);
    HC_CHECK(peak >= 76 * MB && peak < 110 * MB, "the child copied 32 MB and wrote 48 MB: peak %lld MB",
             (long long)(peak / MB));
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
    free(shared);
}

int main(void)
{
    test_this_process();
    test_quiet();
    test_child();
    hc_mem_watch w;
    memset(&w, 0, sizeof w);
    HC_CHECK(hc_mem_watch_stop(&w) == -1, "never started: no figure");
    return hc_test_summary("mem_watch");
}
