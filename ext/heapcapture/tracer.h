/* The sampled tracer's table: for a sample of allocated objects, keyed by a number (the app's
 * table: the sample's key in the tracer's WeakMap, rb_tracer.c; the table a dump reads: the
 * object's address now), the site it was allocated at (file, line, method), the GC generation, the
 * sample's weight (the allocations it stands for), and the sample's key. Fixed capacity, so it never grows without bound; file and method names are interned once.
 * Not thread-safe: the app's side changes it under the GVL only, the dump child reads its copy.
 * Pure C: no Ruby. */
#ifndef HC_TRACER_H
#define HC_TRACER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uintptr_t addr;         /* the key: an address, or the sample's key in the tracer's WeakMap (rb_tracer.c:
                             * a counter, never reused); 0: an empty slot */
    uint32_t file;          /* interned string index */
    uint32_t method;        /* interned string index, HC_SAMPLE_NO_METHOD when none */
    int32_t line;
    uint32_t generation;    /* GC count when it was allocated */
    uint32_t weight;        /* the allocations this sample stands for (at least 1): its window's rate */
} hc_sample;

#define HC_SAMPLE_NO_METHOD UINT32_MAX

typedef struct hc_sample_table hc_sample_table;

/* A table for up to capacity samples (at least 1). NULL when out of memory. */
hc_sample_table *hc_samples_new(size_t capacity);
void hc_samples_free(hc_sample_table *t);

/* Adds or replaces the sample at addr. Returns 0, 1 when the table is full (nothing added), or -1
 * out of memory. method may be NULL; a weight of 0 is stored as 1. */
int hc_samples_put(hc_sample_table *t, uintptr_t addr, const char *file, int line, const char *method,
                   uint32_t generation, uint32_t weight);
const hc_sample *hc_samples_get(const hc_sample_table *t, uintptr_t addr);
/* Returns 1 when there was a sample at addr. */
int hc_samples_remove(hc_sample_table *t, uintptr_t addr);
size_t hc_samples_count(const hc_sample_table *t);
size_t hc_samples_capacity(const hc_sample_table *t);
/* An interned string (file or method name) by its index. */
const char *hc_samples_string(const hc_sample_table *t, uint32_t index);

/* Walking the slots (for pruning a few at a time): slot i from 0 to hc_samples_slots() - 1 holds a
 * sample or is empty (NULL). Removing the sample just returned may move a later one into slot i:
 * look at slot i again. */
size_t hc_samples_slots(const hc_sample_table *t);
const hc_sample *hc_samples_at(const hc_sample_table *t, size_t slot);

#endif
