/* The address set (heap_addr_set.h). Addresses are 8- or 16-byte aligned, so they are mixed
 * before they pick a slot. */
#include "heap_addr_set.h"

static uint64_t hc_addr_hash(const void *slot) { return hc_table_mix(hc_table_slot_key(slot)); }

void hc_addr_set_init(hc_addr_set *s)
{
    hc_table_init(s, sizeof(uint64_t), 50, hc_addr_hash);
}

void hc_addr_set_free(hc_addr_set *s)
{
    hc_table_free(s);
}

int hc_addr_set_add(hc_addr_set *s, uint64_t addr)
{
    int made;
    return !addr || hc_table_put(s, addr, hc_table_mix(addr), &made) ? 0 : -1;
}

int hc_addr_set_has(const hc_addr_set *s, uint64_t addr)
{
    return hc_table_get(s, addr, hc_table_mix(addr)) != NULL;
}
