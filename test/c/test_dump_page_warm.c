/* The dump child's page warmer (dump_page_warm.c): it reads every resident page of the private
 * writable mappings and only those, it leaves a mapping whose page faults and goes on with the
 * next, and it puts back the fault handlers it found. */
#include "hc_test.h"
#include "dump_page_warm.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* A private anonymous mapping of `pages`, the first `touched` of them written (resident). */
static char *mapping(size_t pages, size_t touched)
{
    char *p = mmap(NULL, pages * page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    (void)madvise(p, pages * page_size(), MADV_NOHUGEPAGE); /* one page resident per page written */
    for (size_t i = 0; i < touched; i++) p[i * page_size()] = (char)i;
    return p;
}

static void test_reads_the_resident_pages_only(void)
{
    char *p = mapping(64, 40);
    HC_CHECK(p != NULL, "mmap");
    hc_page_warm w;
    memset(&w, 0, sizeof w);
    hc_page_range r = {(uintptr_t)p, (uintptr_t)p + 64 * page_size()};
    HC_CHECK(hc_page_warm_walk(&w, &r, 1) == 0, "walk");
    HC_CHECK(w.pages == 40, "pages read: %llu, 40 resident of 64", (unsigned long long)w.pages);
    HC_CHECK(w.mappings == 1 && w.faults == 0, "mappings %llu, faults %llu", (unsigned long long)w.mappings,
             (unsigned long long)w.faults);
    munmap(p, 64 * page_size());
}

/* A resident page made unreadable (as if unmapped under the thread): that mapping is left at the
 * fault, the next one is walked whole. */
static void test_a_fault_leaves_that_mapping_and_goes_on(void)
{
    char *bad = mapping(8, 8), *good = mapping(8, 8);
    HC_CHECK(bad && good, "mmap");
    HC_CHECK(mprotect(bad + 3 * page_size(), page_size(), PROT_NONE) == 0, "mprotect");
    hc_page_warm w;
    memset(&w, 0, sizeof w);
    hc_page_range r[2] = {{(uintptr_t)bad, (uintptr_t)bad + 8 * page_size()},
                          {(uintptr_t)good, (uintptr_t)good + 8 * page_size()}};
    HC_CHECK(hc_page_warm_walk(&w, r, 2) == 0, "walk");
    HC_CHECK(w.faults == 1, "faults: %llu", (unsigned long long)w.faults);
    HC_CHECK(w.mappings == 1, "mappings walked whole: %llu", (unsigned long long)w.mappings);
    HC_CHECK(w.pages == 3 + 8, "pages read: %llu (3 before the fault, then 8)", (unsigned long long)w.pages);
    munmap(bad, 8 * page_size());
    munmap(good, 8 * page_size());
}

static sigjmp_buf own_jump;
static volatile sig_atomic_t own_faults;

static void own_handler(int sig)
{
    (void)sig;
    own_faults++;
    siglongjmp(own_jump, 1);
}

/* The handler that was there before the walk is there after it, and takes a fault again. */
static void test_the_handlers_found_are_put_back(void)
{
    struct sigaction sa, now;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    char *p = mapping(4, 4);
    hc_page_warm w;
    memset(&w, 0, sizeof w);
    hc_page_range r = {(uintptr_t)p, (uintptr_t)p + 4 * page_size()};
    HC_CHECK(hc_page_warm_walk(&w, &r, 1) == 0 && w.pages == 4, "walk: %llu pages", (unsigned long long)w.pages);
    sigaction(SIGSEGV, NULL, &now);
    HC_CHECK(now.sa_handler == own_handler, "SIGSEGV's handler after the walk is not the one before it");
    mprotect(p, page_size(), PROT_NONE);
    if (sigsetjmp(own_jump, 1) == 0) (void)*(volatile char *)p;
    HC_CHECK(own_faults == 1, "the handler from before took %d faults, not 1", (int)own_faults);
    signal(SIGSEGV, SIG_DFL);
    munmap(p, 4 * page_size());
}

/* The thread, in a forked child as the dump child runs it: it finds the mappings itself and
 * reads at least the pages of a resident one, and the stop joins it. */
static void test_the_thread_walks_the_process_in_a_child(void)
{
    size_t pages = 2048;
    char *p = mapping(pages, pages);
    HC_CHECK(p != NULL, "mmap");
    int fds[2];
    HC_CHECK(pipe(fds) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        hc_page_warm w;
        int ok = hc_page_warm_start(&w) == 0;
        for (int i = 0; ok && i < 3000 && !hc_page_warm_done(&w); i++) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        int done = ok && hc_page_warm_done(&w);
        hc_page_warm_stop(&w);
        unsigned long long out[4] = {(unsigned long long)ok, (unsigned long long)done, w.pages, w.faults};
        if (write(fds[1], out, sizeof out) != (ssize_t)sizeof out) _exit(2);
        _exit(0);
    }
    close(fds[1]);
    unsigned long long got[4] = {0, 0, 0, 0};
    ssize_t n = read(fds[0], got, sizeof got);
    int status = 0;
    waitpid(pid, &status, 0);
    HC_CHECK(n == (ssize_t)sizeof got && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child ended badly");
    HC_CHECK(got[0] == 1 && got[1] == 1, "started %llu, done within 3 s %llu", got[0], got[1]);
    HC_CHECK(got[2] >= pages, "pages read: %llu, fewer than the %zu of one resident mapping", got[2], pages);
    HC_CHECK(got[3] == 0, "faults: %llu", got[3]);
    close(fds[0]);
    munmap(p, pages * page_size());
}

/* The mappings taken from smaps: private, writable, anonymous (unnamed, [heap], [anon:...]),
 * resident for at least 1/64 of their size; not a file's, a stack, the kernel's, a read-only or
 * shared one, nor a mostly absent one. */
static void test_the_mappings_taken_from_smaps(void)
{
    char smaps[] =
        "55d0c0000000-55d0c0400000 rw-p 00000000 00:00 0                          [heap]\n"
        "Size:               4096 kB\n"
        "Rss:                4096 kB\n"
        "VmFlags: rd wr mr mw me ac\n"
        "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 \n"
        "Size:               1024 kB\n"
        "Rss:                 512 kB\n"
        "7f0000100000-7f0000200000 rw-p 00003000 fe:00 1234567                    /usr/lib/libruby.so.3.1\n"
        "Rss:                1024 kB\n"
        "7f0000200000-7f0000300000 r--p 00000000 00:00 0 \n"
        "Rss:                1024 kB\n"
        "7f0000300000-7f0000400000 rw-s 00000000 00:01 99                         /dev/zero (deleted)\n"
        "Rss:                1024 kB\n"
        "7f0000400000-7f0100400000 rw-p 00000000 00:00 0 \n"
        "Rss:                   4 kB\n"
        "7f0100400000-7f0100500000 rw-p 00000000 00:00 0                          [anon:ruby heap]\n"
        "Rss:                  16 kB\n"
        "7ffd00000000-7ffd00100000 rw-p 00000000 00:00 0                          [stack]\n"
        "Rss:                1024 kB\n"
        "7f0100500000-7f0100600000 rw-p 00000000 00:00 0 \n"
        "Rss:                   0 kB\n";
    hc_page_range *r = NULL;
    size_t n = hc_page_warm_ranges(smaps, &r);
    HC_CHECK(n == 3, "mappings taken: %zu, not 3", n);
    if (n == 3) {
        HC_CHECK(r[0].start == 0x55d0c0000000u && r[0].end == 0x55d0c0400000u, "[heap]");
        HC_CHECK(r[1].start == 0x7f0000000000u && r[1].end == 0x7f0000100000u, "the unnamed one, half resident");
        HC_CHECK(r[2].start == 0x7f0100400000u && r[2].end == 0x7f0100500000u, "[anon:...], 1/64 resident");
    }
    free(r);
}

static void test_stop_without_start_is_safe(void)
{
    hc_page_warm w;
    memset(&w, 0, sizeof w);
    hc_page_warm_stop(&w);
    HC_CHECK(w.pages == 0 && !hc_page_warm_done(&w), "an unstarted warmer has figures");
}

int main(void)
{
    test_reads_the_resident_pages_only();
    test_a_fault_leaves_that_mapping_and_goes_on();
    test_the_handlers_found_are_put_back();
    test_the_thread_walks_the_process_in_a_child();
    test_the_mappings_taken_from_smaps();
    test_stop_without_start_is_safe();
    return hc_test_summary("dump_page_warm");
}
