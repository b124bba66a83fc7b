/* The address set (heap_addr_set.h). Addresses are 8- or 16-byte aligned, so they are mixed before
 * they pick a slot. */
#include "heap_addr_set.h"

#include <stdlib.h>
#include <string.h>

static size_t hc_addr_slot(uint64_t addr, size_t cap)
{
    uint64_t h = addr * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

void hc_addr_set_init(hc_addr_set *s)
{
    memset(s, 0, sizeof *s);
}

void hc_addr_set_free(hc_addr_set *s)
{
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static int hc_addr_set_grow(hc_addr_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t a = s->slots[i];
        if (!a) continue;
        size_t j = hc_addr_slot(a, cap);
        while (slots[j]) j = (j + 1) & (cap - 1);
        slots[j] = a;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

int hc_addr_set_add(hc_addr_set *s, uint64_t addr)
{
    if (!addr) return 0;
    if ((s->count + 1) * 2 > s->cap && hc_addr_set_grow(s) != 0) return -1;
    size_t j = hc_addr_slot(addr, s->cap);
    for (; s->slots[j]; j = (j + 1) & (s->cap - 1))
        if (s->slots[j] == addr) return 0;
    s->slots[j] = addr;
    s->count++;
    return 0;
}

int hc_addr_set_has(const hc_addr_set *s, uint64_t addr)
{
    if (!addr || !s->cap) return 0;
    for (size_t j = hc_addr_slot(addr, s->cap); s->slots[j]; j = (j + 1) & (s->cap - 1))
        if (s->slots[j] == addr) return 1;
    return 0;
}
