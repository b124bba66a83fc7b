/* The dump child's side of fork mode (rb_dump_in_child.c): what rb_dump.c hands it at the fork.
 * Bindings only. */
#ifndef HC_RB_DUMP_IN_CHILD_H
#define HC_RB_DUMP_IN_CHILD_H

#include <sys/types.h>

#include "dump_redact.h"
#include "dump_stream.h"

/* What the child is given at the fork. */
typedef struct {
    const char *path;       /* the tempfile, for messages */
    int file_fd;            /* the tempfile, open for writing */
    int report_fd;          /* the report pipe's write end */
    int gzip;
    const hc_redactor *redactor; /* strings to redact with this key, or NULL */
    int summary_fd;         /* an unlinked file for the summary's JSON, or -1: no summary */
    hc_dump_age *age;       /* the age file the dump is stored encrypted in, started before the fork, or NULL */
    pid_t parent;
} hc_child_args;

/* The dump child's whole life: never returns (it _exit()s). rb_dump_in_child.c. */
void hc_child_main(const hc_child_args *a) __attribute__((noreturn));

#endif
