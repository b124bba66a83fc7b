/* In the dump child: a thread that reads one byte of every resident page of the process's private
 * writable anonymous memory, in address order, while dump_all walks the heap on the other CPU.
 *
 * Why: fork() gives the child page-table entries marked not yet accessed, and on some virtual
 * machines (this project's CI machine among them) the first access to each page then costs the
 * child many times a later one: the child's dump_all took far more CPU than the same dump_all in
 * the app, its second dump_all did not (figures in doc/capture.md). The entries are the process's,
 * shared by its threads: a page this thread has read is warm for dump_all too. No system call warms
 * them (MADV_POPULATE_READ and a kernel-side read left the pages as slow), so it takes loads.
 *
 * It only reads (no page is copied), skips pages that are not resident (mincore: it faults nothing
 * in), file mappings (mincore may call their pages resident when they are not), stacks, and
 * mappings that are mostly absent (reservations), and survives a page that is unmapped under it (its own SIGSEGV/SIGBUS guard skips the rest of
 * that mapping; a fault on any other thread goes to the handler that was there before). One per
 * process. Pure C: no Ruby. */
#ifndef HC_DUMP_PAGE_WARM_H
#define HC_DUMP_PAGE_WARM_H

#include <pthread.h>
#include <stdint.h>

typedef struct {
    pthread_t thread;
    int started;
    int stop;               /* set by hc_page_warm_stop (atomics): the thread ends at its next window */
    int done;               /* set by the thread when it is done (atomics) */
    uint64_t pages;         /* pages read */
    uint64_t mappings;      /* mappings walked to their end */
    uint64_t faults;        /* mappings left on a fault (unmapped under the thread) */
    uint64_t cpu_ns;        /* the thread's CPU time */
    uint64_t wall_ns;       /* from its start until it was done */
} hc_page_warm;

/* A span of addresses to warm, [start, end), page-aligned. */
typedef struct {
    uintptr_t start, end;
} hc_page_range;

/* Starts the thread. 0, or -1 with errno (the dump goes on without it: it is only faster). */
int hc_page_warm_start(hc_page_warm *w);
/* Asks the thread to stop, and joins it; its figures are then final. Safe when it never started. */
void hc_page_warm_stop(hc_page_warm *w);
/* Whether the thread has walked everything (its figures then final, before the stop too). */
int hc_page_warm_done(const hc_page_warm *w);

/* The mappings the thread walks, from the text of /proc/self/smaps (which this edits in place):
 * private, writable, anonymous (unnamed, "[heap]" or "[anon:...]"), with a resident size of at least 1/64 of the mapping.
 * Returns the count; *out is malloc'd (NULL when none). */
size_t hc_page_warm_ranges(char *smaps, hc_page_range **out);

/* What the thread does with each of its mappings, here on the calling thread (the C tests): reads
 * one byte of each resident page of ranges[0, count), in order, under the guard (a range where a
 * read faults is left: faults++), adding to w's figures; stops early when w was asked to. 0, or -1
 * when the guard could not be installed (nothing read). */
int hc_page_warm_walk(hc_page_warm *w, const hc_page_range *ranges, size_t count);

#endif
