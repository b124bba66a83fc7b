/* The hash table (util_table.h). */
#include "util_table.h"

#include <stdlib.h>

#define HC_TABLE_FIRST_CAP 16

void hc_table_init(hc_table *t, size_t slot_size, unsigned max_load, uint64_t (*hash)(const void *slot))
{
    memset(t, 0, sizeof *t);
    t->slot_size = slot_size < sizeof(uint64_t) ? sizeof(uint64_t) : slot_size;
    t->max_load = max_load < 1 ? 1 : max_load > 90 ? 90 : max_load;
    t->hash = hash;
}

void hc_table_free(hc_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->count = 0;
    t->limit = 0;
}

/* The biggest tables (addresses, strings) have slots of 8 and 16 bytes: copies of those sizes
 * inline, not a call into memcpy or memset for each entry a doubling moves. */
static inline void hc_table_copy(void *dst, const void *src, size_t size)
{
    if (size == 8) memcpy(dst, src, 8);
    else if (size == 16) memcpy(dst, src, 16);
    else memcpy(dst, src, size);
}

static inline void hc_table_clear(void *slot, size_t size)
{
    if (size == 8) memset(slot, 0, 8);
    else if (size == 16) memset(slot, 0, 16);
    else memset(slot, 0, size);
}

static size_t hc_table_limit(const hc_table *t, size_t cap)
{
    return cap / 100 * t->max_load + cap % 100 * t->max_load / 100;
}

/* Twice the slots, rehashed in place: the block grown (realloc: a large one is remapped, not
 * copied) and its entries moved within it. An entry goes to the first slot from its new home that
 * is empty or holds an entry not yet placed, which it takes (that one is placed next): the placed
 * entries between an entry's home and its slot never move again, so linear probing finds it. */
static int hc_table_double(hc_table *t)
{
    size_t old = t->cap, cap = old * 2, size = t->slot_size;
    unsigned char *placed = calloc(cap / 8 + 1, 1); /* a bit a slot: it holds an entry placed anew */
    unsigned char *moving = malloc(2 * size);      /* the entry being placed, and the one it displaces */
    unsigned char *slots = placed && moving ? realloc(t->slots, cap * size) : NULL;
    if (!slots) {
        free(placed);
        free(moving);
        return -1;
    }
    memset(slots + old * size, 0, old * size);
    t->slots = slots;
    t->cap = cap;
    t->limit = hc_table_limit(t, cap);
#define HC_PLACED(j) (placed[(j) >> 3] & (1u << ((j) & 7)))
    unsigned char *cur = moving, *next = moving + size;
    for (size_t i = 0; i < old; i++) {
        unsigned char *slot = slots + i * size;
        if (!hc_table_slot_key(slot) || HC_PLACED(i)) continue;
        hc_table_copy(cur, slot, size);
        hc_table_clear(slot, size); /* empty: all zero bytes, as every empty slot is */
        for (;;) {
            size_t j = hc_table_home(t, t->hash(cur));
            while (hc_table_slot_key(slots + j * size) && HC_PLACED(j)) j = hc_table_next(t, j);
            hc_table_copy(next, slots + j * size, size);
            hc_table_copy(slots + j * size, cur, size);
            placed[j >> 3] |= (unsigned char)(1u << (j & 7));
            if (!hc_table_slot_key(next)) break;
            unsigned char *swap = cur; /* an entry not placed yet: it moves on */
            cur = next;
            next = swap;
        }
    }
#undef HC_PLACED
    free(placed);
    free(moving);
    return 0;
}

int hc_table_make_room(hc_table *t, size_t more)
{
    size_t want = t->count + more;
    if (want < t->count) return -1;
    if (want <= t->limit && t->cap) return 0;
    if (!t->cap) {
        size_t cap = HC_TABLE_FIRST_CAP;
        while (hc_table_limit(t, cap) < want) {
            if (cap > SIZE_MAX / 2 / t->slot_size) return -1;
            cap *= 2;
        }
        t->slots = calloc(cap, t->slot_size);
        if (!t->slots) return -1;
        t->cap = cap;
        t->limit = hc_table_limit(t, cap);
        return 0;
    }
    while (t->limit < want) {
        if (t->cap > SIZE_MAX / 2 / t->slot_size || hc_table_double(t) != 0) return -1;
    }
    return 0;
}

void hc_table_claim(hc_table *t, void *slot, uint64_t key)
{
    memset(slot, 0, t->slot_size);
    memcpy(slot, &key, sizeof key);
    t->count++;
}

void hc_table_remove(hc_table *t, void *slot)
{
    size_t size = t->slot_size;
    size_t hole = (size_t)((unsigned char *)slot - t->slots) / size;
    /* Backward shift: each later entry of the run whose home is not in (hole, j] moves up. */
    for (size_t j = hc_table_next(t, hole); hc_table_slot_key(hc_table_slot(t, j)); j = hc_table_next(t, j)) {
        size_t home = hc_table_home(t, t->hash(hc_table_slot(t, j)));
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            memcpy(hc_table_slot(t, hole), hc_table_slot(t, j), size);
            hole = j;
        }
    }
    memset(hc_table_slot(t, hole), 0, size);
    t->count--;
}
