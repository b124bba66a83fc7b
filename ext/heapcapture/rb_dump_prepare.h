/* Before a fork (rb_dump_prepare.c), called by rb_dump.c. Bindings only. */
#ifndef HC_RB_DUMP_PREPARE_H
#define HC_RB_DUMP_PREPARE_H

#include <stddef.h>

/* In the app, before the fork (rb_dump_prepare.c): the strings' coderange dump_all would compute
 * and store in each (a write in the child copies its page) computed here; how many were. */
size_t hc_prepare_heap_for_fork(void);

#endif
