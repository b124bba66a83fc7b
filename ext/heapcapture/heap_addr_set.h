/* A set of object addresses (uint64, never 0), for diffs of heap dumps: the objects of one dump,
 * looked up while another is read. The project's hash table (util_table.h) of bare keys, a quarter
 * to half full: 16 to 32 bytes an address. Pure C: no Ruby. */
#ifndef HC_HEAP_ADDR_SET_H
#define HC_HEAP_ADDR_SET_H

#include "util_table.h"

#include <stddef.h>
#include <stdint.h>

typedef hc_table hc_addr_set; /* count: the addresses in it */

void hc_addr_set_init(hc_addr_set *s);
void hc_addr_set_free(hc_addr_set *s);
/* 0, or -1 out of memory (the set is left as it was). Adding 0 or an address already in it: 0. */
int hc_addr_set_add(hc_addr_set *s, uint64_t addr);
int hc_addr_set_has(const hc_addr_set *s, uint64_t addr);

#endif
