/* Where the GC's heap pages are: a list of [start, end) address ranges, each cut into slots of one
 * size (its stride), so that an address can be checked to be the start of a slot before anything
 * reads it (a page freed since a sample was taken may be unmapped). Pure C: no Ruby; the tracer's
 * binding fills it from rb_objspace_each_objects. */
#ifndef HC_HEAP_RANGES_H
#define HC_HEAP_RANGES_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uintptr_t start, end;
    size_t stride;
} hc_heap_range;

typedef struct {
    hc_heap_range *v;
    size_t n, cap;
    int sorted;
} hc_heap_ranges;

void hc_heap_ranges_init(hc_heap_ranges *r);
void hc_heap_ranges_free(hc_heap_ranges *r);
/* Adds one page's range. Returns 0, or -1 out of memory (the list stays as it was), or -2 for a
 * range that is empty or has no stride. */
int hc_heap_ranges_add(hc_heap_ranges *r, uintptr_t start, uintptr_t end, size_t stride);
/* 1 when addr is the start of a slot inside one of the ranges, else 0. Sorts the list on its
 * first call after an add (ranges may come in any order; they do not overlap). */
int hc_heap_ranges_slot(hc_heap_ranges *r, uintptr_t addr);

#endif
