/* What the dump child tells the parent when it is done, through a pipe: written in the child,
 * read in the parent; and how a child ended, in words. Pure C: no Ruby. */
#ifndef HC_DUMP_CHILD_REPORT_H
#define HC_DUMP_CHILD_REPORT_H

#include <stddef.h>
#include <stdint.h>

/* What the child tells the parent through a pipe, in one write (smaller than PIPE_BUF). */
typedef struct {
    int32_t ok;
    uint64_t raw_bytes;
    uint64_t stored_bytes;
    uint64_t dump_cpu_ns;   /* CPU time of the thread that ran dump_all */
    uint64_t dump_waits;    /* how often that thread waited (on a full pipe, mostly) */
    uint64_t dump_wall_ns;  /* from the child's start until dump_all returned and the IO was closed */
    uint64_t gzip_cpu_ns;   /* CPU time of the pump (gzip) thread */
    uint64_t finish_ns;     /* the end of the stream, in the pump */
    uint64_t end_ns;        /* CLOCK_MONOTONIC (system-wide) when the tempfile was complete */
    uint64_t summary_bytes; /* the summary's JSON, written to the summary file (0: none) */
    uint64_t summary_cpu_ns; /* CPU time of the summary thread */
    uint64_t warm_pages;    /* pages the page warmer read (dump_page_warm.h) */
    uint64_t warm_cpu_ns;   /* its CPU time */
    uint64_t warm_wall_ns;  /* from its start until it was done */
    uint64_t warm_mappings; /* mappings it walked to their end */
    uint64_t warm_faults;   /* mappings it left on a fault (unmapped under it) */
    int32_t nice;           /* the child's CPU priority (nice) while it dumped */
    char summary_error[192]; /* why there is no summary, when the dump is fine without one */
    char message[432];
} hc_dump_report;

int hc_dump_report_write(int fd, const hc_dump_report *report);
/* 1 when a whole report was read, 0 when the pipe had none (child died first), -1 on error. */
int hc_dump_report_read(int fd, hc_dump_report *report);

/* "dump child killed by SIGKILL", "dump child exited with status 3", "dump child exited". */
void hc_dump_status_text(int wstatus, char *buf, size_t len);

#endif
