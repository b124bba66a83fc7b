/* The dump binding's two sides, and the one call another binding makes into it. Bindings only.
 *
 * rb_dump.c runs in the app's process: Dump.fork_start forks, Dump::Child follows the child
 * (dump_watch.c), Dump.inline_dump. rb_dump_in_child.c is what the child runs after the fork. */
#ifndef HC_RB_DUMP_H
#define HC_RB_DUMP_H

#include <ruby.h>
#include <sys/types.h>

#include "growing_file.h"

/* What the child is given at the fork. */
typedef struct {
    const char *path;       /* the tempfile, for messages */
    int file_fd;            /* the tempfile, open for writing */
    int report_fd;          /* the report pipe's write end */
    int gzip;
    pid_t parent;
} hc_child_args;

/* The dump child's whole life: never returns (it _exit()s). rb_dump_in_child.c. */
void hc_child_main(const hc_child_args *a) __attribute__((noreturn));

/* ObjectSpace.dump_all(output: output): an IO in the child, :string inline (rb_dump.c). */
VALUE hc_dump_all(VALUE output);

/* For the S3 binding's streaming upload (rb_s3.c): the tempfile of a Dump::Child as it grows.
 * Raises when child is not a Dump::Child or was closed; the pointers live as long as child is
 * not closed. */
int hc_rb_dump_child_source(VALUE child, const hc_growing_file **grow, const char **path, int *fd);

#endif
