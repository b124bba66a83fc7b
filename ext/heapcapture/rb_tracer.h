/* The sampled tracer's side the dump binding calls (rb_tracer.c). Bindings only. */
#ifndef HC_RB_TRACER_H
#define HC_RB_TRACER_H

#include "tracer.h"

/* The samples whose objects are still alive, keyed by where each object is now (it may have been
 * moved by GC compaction), or NULL when there are none. Looked up in the tracer's WeakMap, so a
 * later object in a sampled object's slot never gets its site. Needs the GVL; calls the map's
 * methods (no allocation). Call it with the GC disabled and keep it so until dump_all has run:
 * then no checked object is freed, and no later one takes its slot, before the dump. The caller
 * frees it. */
hc_sample_table *hc_tracer_live_samples(void);

/* For a dump taken with the GC on (inline mode, where other threads run while its IO writes):
 * made right after hc_tracer_live_samples with the GC still off, the returned object marks and
 * pins each live sample's object while it is reachable, so none dies or moves and no later object
 * takes its slot before the dump reaches it. Keep it on the stack (RB_GC_GUARD), and call
 * hc_tracer_unpin before freeing the table. */
VALUE hc_tracer_pin(const hc_sample_table *live);
void hc_tracer_unpin(VALUE pin);

#endif
