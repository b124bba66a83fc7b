/* In the dump child: the page warmer (see dump_page_warm.h for why). */
#include "dump_page_warm.h"
#include "mem_proc.h"
#include "util.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Pages asked of mincore at once: the stop flag is read once a window. */
#define HC_WARM_WINDOW_PAGES 1024
/* A mapping this many times the size of its resident part is a reservation (a sanitizer's shadow,
 * a thread's stack): mincore would list terabytes of absent pages, and it holds little to warm. */
#define HC_WARM_SPARSE_RATIO 64

/* The guard: one warmer per process, so plain globals (a signal handler may read them). */
static volatile sig_atomic_t hc_warm_armed;
static volatile pid_t hc_warm_tid;
static sigjmp_buf hc_warm_jump;
static struct sigaction hc_warm_old_segv, hc_warm_old_bus;

static void hc_warm_fault(int sig, siginfo_t *info, void *context)
{
    (void)context;
    if (hc_warm_armed && (pid_t)syscall(SYS_gettid) == hc_warm_tid) siglongjmp(hc_warm_jump, 1);
    /* Another thread's: the handler from before takes it (a fault re-faults on return; a sent
     * signal is sent again). That fault ends the child anyway, so the guard is not put back. */
    sigaction(sig, sig == SIGBUS ? &hc_warm_old_bus : &hc_warm_old_segv, NULL);
    if (info->si_code <= 0) raise(sig);
}

static int hc_warm_guard_on(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = hc_warm_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    hc_warm_tid = (pid_t)syscall(SYS_gettid);
    if (sigaction(SIGSEGV, &sa, &hc_warm_old_segv) != 0) return -1;
    if (sigaction(SIGBUS, &sa, &hc_warm_old_bus) != 0) {
        sigaction(SIGSEGV, &hc_warm_old_segv, NULL);
        return -1;
    }
    return 0;
}

static void hc_warm_guard_off(void)
{
    hc_warm_armed = 0;
    sigaction(SIGSEGV, &hc_warm_old_segv, NULL);
    sigaction(SIGBUS, &hc_warm_old_bus, NULL);
}

size_t hc_page_warm_ranges(char *smaps, hc_page_range **out)
{
    size_t n = 0, cap = 0;
    hc_page_range *ranges = NULL;
    uintptr_t start = 0, end = 0;
    int candidate = 0;
    for (char *line = smaps; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *p = line;
        if (candidate && strncmp(line, "Rss:", 4) == 0) {
            uint64_t rss = 0;
            candidate = 0;
            if (hc_proc_kb_field(line, "Rss:", &rss) == 0 && rss && (end - start) / HC_WARM_SPARSE_RATIO <= rss) {
                if (n == cap) {
                    size_t more = cap ? cap * 2 : 256;
                    hc_page_range *bigger = realloc(ranges, more * sizeof *ranges);
                    if (!bigger) break;
                    ranges = bigger;
                    cap = more;
                }
                ranges[n].start = start;
                ranges[n].end = end;
                n++;
            }
        } else if ((*line >= '0' && *line <= '9') || (*line >= 'a' && *line <= 'f')) {
            /* "start-end perms offset dev inode [name]" */
            start = (uintptr_t)strtoull(p, &p, 16);
            end = *p == '-' ? (uintptr_t)strtoull(p + 1, &p, 16) : 0;
            candidate = *p == ' ' && p[1] == 'r' && p[2] == 'w' && p[4] == 'p' && end > start;
            if (candidate) {
                p += 5;
                (void)strtoull(p, &p, 16); /* offset */
                while (*p == ' ') p++;
                while (*p && *p != ' ') p++; /* dev */
                unsigned long long inode = strtoull(p, &p, 10);
                while (*p == ' ') p++;
                /* anonymous (the heap, malloc's arenas and mmaps), not a stack or the kernel's */
                candidate = inode == 0 && (*p == '\0' || strcmp(p, "[heap]") == 0 || strncmp(p, "[anon:", 6) == 0);
            }
        }
        line = next;
    }
    *out = ranges;
    return n;
}

static int hc_warm_stopping(hc_page_warm *w)
{
    return __atomic_load_n(&w->stop, __ATOMIC_RELAXED);
}

/* Reads one byte of each resident page of [start, end): 1 when it got to the end, 0 when it was
 * stopped or the mapping went away (mincore failed). Not instrumented: under AddressSanitizer
 * (the C tests) the bytes read may be its poisoned red zones. */
static __attribute__((no_sanitize_address)) int hc_warm_range_walk(hc_page_warm *w, uintptr_t start, uintptr_t end,
                                                                   size_t page)
{
    unsigned char vec[HC_WARM_WINDOW_PAGES];
    unsigned sum = 0;
    uintptr_t at = start;
    while (at < end && !hc_warm_stopping(w)) {
        size_t len = end - at;
        if (len > HC_WARM_WINDOW_PAGES * page) len = HC_WARM_WINDOW_PAGES * page;
        if (mincore((void *)at, len, vec) != 0) return 0; /* unmapped meanwhile */
        size_t pages = len / page;
        for (size_t i = 0; i < pages; i++) {
            if (!(vec[i] & 1)) continue;
            sum += *(volatile const unsigned char *)(at + i * page);
            __atomic_fetch_add(&w->pages, 1, __ATOMIC_RELAXED); /* counted before a fault can jump out */
        }
        at += len;
    }
    (void)sum;
    return at >= end; /* walked to its end (not stopped) */
}

/* Apart from its loop counter, nothing here changes after sigsetjmp, so a jump back leaves it as it
 * was (noinline keeps the caller's locals out of it). */
static __attribute__((noinline)) void hc_warm_walk_guarded(hc_page_warm *w, const hc_page_range *ranges, size_t count,
                                                          size_t page)
{
    for (volatile size_t i = 0; i < count && !hc_warm_stopping(w); i++) {
        if (sigsetjmp(hc_warm_jump, 1)) { /* a page of this mapping was unmapped under us */
            hc_warm_armed = 0;
            w->faults++;
            continue;
        }
        hc_warm_armed = 1;
        int whole = hc_warm_range_walk(w, ranges[i].start, ranges[i].end, page);
        hc_warm_armed = 0;
        if (whole) w->mappings++;
    }
}

int hc_page_warm_walk(hc_page_warm *w, const hc_page_range *ranges, size_t count)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || hc_warm_guard_on() != 0) return -1;
    hc_warm_walk_guarded(w, ranges, count, (size_t)page);
    hc_warm_guard_off();
    return 0;
}

static void *hc_warm_main(void *arg)
{
    hc_page_warm *w = arg;
    uint64_t started = hc_now_ns();
    char *maps = hc_proc_text(0, "smaps");
    hc_page_range *ranges = NULL;
    size_t count = maps ? hc_page_warm_ranges(maps, &ranges) : 0;
    free(maps);
    if (count) (void)hc_page_warm_walk(w, ranges, count);
    free(ranges);
    w->cpu_ns = hc_thread_cpu_ns();
    w->wall_ns = hc_now_ns() - started;
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int hc_page_warm_done(const hc_page_warm *w)
{
    return __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}

int hc_page_warm_start(hc_page_warm *w)
{
    memset(w, 0, sizeof *w);
    int rc = pthread_create(&w->thread, NULL, hc_warm_main, w);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    w->started = 1;
    return 0;
}

void hc_page_warm_stop(hc_page_warm *w)
{
    if (!w->started) return;
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED);
    pthread_join(w->thread, NULL);
    w->started = 0;
}
