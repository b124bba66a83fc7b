/* A set of object addresses (uint64, never 0), for diffs of heap dumps: the objects of one dump,
 * looked up while another is read. Open addressing, kept at most half full: 16 bytes per address
 * at worst (a 3 M object dump: ~64 MB). Pure C: no Ruby. */
#ifndef HC_HEAP_ADDR_SET_H
#define HC_HEAP_ADDR_SET_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *slots;        /* 0: empty */
    size_t cap, count;
} hc_addr_set;

void hc_addr_set_init(hc_addr_set *s);
void hc_addr_set_free(hc_addr_set *s);
/* 0, or -1 out of memory (the set is left as it was). Adding 0 or an address already in it: 0. */
int hc_addr_set_add(hc_addr_set *s, uint64_t addr);
int hc_addr_set_has(const hc_addr_set *s, uint64_t addr);

#endif
