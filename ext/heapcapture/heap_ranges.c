/* The heap's page ranges and the slot check (heap_ranges.h): sorted once, then a binary search. */
#include "heap_ranges.h"

#include <stdlib.h>

void hc_heap_ranges_init(hc_heap_ranges *r)
{
    r->v = NULL;
    r->n = r->cap = 0;
    r->sorted = 1;
}

void hc_heap_ranges_free(hc_heap_ranges *r)
{
    free(r->v);
    hc_heap_ranges_init(r);
}

int hc_heap_ranges_add(hc_heap_ranges *r, uintptr_t start, uintptr_t end, size_t stride)
{
    if (end <= start || stride == 0) return -2;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        hc_heap_range *v = realloc(r->v, cap * sizeof *v);
        if (!v) return -1;
        r->v = v;
        r->cap = cap;
    }
    if (r->n > 0 && start < r->v[r->n - 1].start) r->sorted = 0;
    r->v[r->n++] = (hc_heap_range){start, end, stride};
    return 0;
}

static int hc_heap_range_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const hc_heap_range *)a)->start, y = ((const hc_heap_range *)b)->start;
    return x < y ? -1 : x > y;
}

int hc_heap_ranges_slot(hc_heap_ranges *r, uintptr_t addr)
{
    if (!r->sorted) {
        qsort(r->v, r->n, sizeof *r->v, hc_heap_range_cmp);
        r->sorted = 1;
    }
    size_t lo = 0, hi = r->n; /* the last range starting at or before addr is below hi */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->v[mid].start <= addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return 0;
    const hc_heap_range *p = &r->v[lo - 1];
    return addr < p->end && (addr - p->start) % p->stride == 0;
}
