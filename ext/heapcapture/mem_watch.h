/* The extra memory a capture costs, measured while it runs: a thread samples the Pss (mem_proc.h)
 * of this process and of the dump child (none in inline mode) and keeps the peak of their sum less
 * this process's Pss before the capture: the pages either side copied (copy-on-write), the child's
 * own, and inline mode's buffers. Reading Pss walks the page tables (its cost grows with the RSS:
 * doc/figures.md), so the thread waits HC_MEM_WATCH_SHARE times as long as its last sample took before the next (at
 * least HC_MEM_WATCH_MIN_MS): it costs about 1/HC_MEM_WATCH_SHARE of a core while the capture runs.
 * Pure C: no Ruby. */
#ifndef HC_MEM_WATCH_H
#define HC_MEM_WATCH_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#define HC_MEM_WATCH_MIN_MS 20
#define HC_MEM_WATCH_SHARE 10

typedef struct {
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    pid_t child;            /* 0: none, or none any more (it has ended) */
    uint64_t base;          /* this process's Pss before the capture */
    uint64_t peak;          /* the largest extra seen */
    uint64_t samples;
    uint64_t sample_ns;     /* the time the samples took, in all */
    int failed;             /* a sample of this process failed: no figure */
} hc_mem_watch;

/* Starts the thread (base: this process's Pss before the capture, hc_proc_pss). 0, or -1 with err
 * set; the caller then has no figure, and nothing to stop. */
int hc_mem_watch_start(hc_mem_watch *w, pid_t child, uint64_t base, char *err, size_t errlen);
/* From now on the child's Pss counts too (fork mode: once there is one). */
void hc_mem_watch_follow(hc_mem_watch *w, pid_t child);
/* No more samples of the child (it has ended or is about to be reaped). */
void hc_mem_watch_forget_child(hc_mem_watch *w);
/* Takes a last sample, stops the thread, and gives the peak extra in bytes; -1 when there is no
 * figure (never started, or this process's Pss could not be read). Idempotent. */
int64_t hc_mem_watch_stop(hc_mem_watch *w);

#endif
