/* The sampled tracer's side the dump binding calls (rb_tracer.c). Bindings only. */
#ifndef HC_RB_TRACER_H
#define HC_RB_TRACER_H

#include "sample_table.h"

/* The samples whose objects are still alive, keyed by where each object is now (it may have been
 * moved by GC compaction), or NULL when there are none. Checked with Ruby's own object ids, so a
 * later object in a sampled object's slot never gets its site. Needs the GVL; runs Ruby code
 * (ObjectSpace._id2ref). Call it with the GC disabled and keep it so until dump_all has run:
 * then no checked object is freed, and no later one takes its slot, before the dump. The caller
 * frees it. */
hc_sample_table *hc_tracer_live_samples(void);

#endif
