/* The one call another binding makes into the dump binding (rb_dump.c: Dump.fork_start and
 * Dump::Child, the app's side of fork mode). Bindings only. */
#ifndef HC_RB_DUMP_H
#define HC_RB_DUMP_H

#include <ruby.h>
#include <ruby/version.h>
#include <sys/types.h>

#include "s3_growing_file.h"

/* For the S3 binding's streaming upload (rb_s3.c): the tempfile of a Dump::Child as it grows.
 * Raises when child is not a Dump::Child or was closed; the pointers live as long as child is
 * not closed. */
int hc_rb_dump_child_source(VALUE child, const hc_growing_file **grow, const char **path, int *fd);

#endif
