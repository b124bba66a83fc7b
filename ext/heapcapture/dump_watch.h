/* The parent's view of a fork-mode dump child: whether it still runs, how far its tempfile has
 * grown, and, once it has ended, its report or how it died. The uploader follows the growing
 * tempfile through it (hc_dump_child_grow_wait is an hc_growing_file's wait), so parts go to S3
 * while the child still dumps. Pure C: no Ruby.
 *
 * Used by one thread at a time (the upload's part reader, then the Ruby thread): no locking. */
#ifndef HC_DUMP_WATCH_H
#define HC_DUMP_WATCH_H

#include "dump_child_report.h"

#include <stdint.h>
#include <sys/types.h>

enum { HC_CHILD_RUNNING, HC_CHILD_OK, HC_CHILD_FAILED };

typedef struct {
    pid_t pid;
    int pidfd;              /* readable once the child has ended; -1: poll waitpid in 10 ms steps */
    int report_fd;          /* the read end of the report pipe (owned: closed by hc_dump_child_stop) */
    int file_fd;            /* the tempfile, open for reading: its size is the progress (not owned) */
    int state;
    int wstatus;
    hc_dump_report report;  /* valid when state is HC_CHILD_OK */
    uint64_t ended_ns;      /* CLOCK_MONOTONIC when the child was reaped */
    char message[640];      /* why it failed */
} hc_dump_child;

void hc_dump_child_init(hc_dump_child *ch, pid_t pid, int report_fd, int file_fd);

/* Waits at most timeout_ms (-1: no limit) until the child has ended (it is then reaped), wake_fd
 * (-1: none) turns readable (it is drained), or, with need >= 0, the tempfile holds need bytes.
 * Returns the state; *size (when not NULL) gets the tempfile's size. */
int hc_dump_child_wait(hc_dump_child *ch, long long need, int timeout_ms, int wake_fd, long long *size);

/* Whether the child process has exited (reaped or not): its pages are no longer shared with the
 * app. Never waits and reaps nothing, so any thread may ask while another waits. */
int hc_dump_child_exited(const hc_dump_child *ch);

/* hc_growing_file's wait, with ctx an hc_dump_child. */
int hc_dump_child_grow_wait(void *ctx, long long need, int timeout_ms, long long *size, int *final, char *why,
                            size_t whylen);

/* A child that still runs is killed (SIGKILL) and reaped; the report pipe is closed. Idempotent. */
void hc_dump_child_stop(hc_dump_child *ch);

#endif
