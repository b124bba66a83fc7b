/* One open-addressing hash table for every table that needs one (issue 31): slots of a fixed size
 * (the caller's struct) whose first 8 bytes are the key, a uint64_t that is never 0 (a slot whose
 * key is 0 is empty); linear probing from a hash the caller gives with each key (hc_table_mix for
 * addresses and counters; a key that is itself a hash is its own); a power-of-two number of slots,
 * doubled in place before a put would fill more than max_load percent of them, so a doubling needs
 * the new half only, not a second whole table beside the old (a big dump's string table peaked
 * there). Removal shifts later entries back (no tombstones). Lookups are inline: the tables are
 * on the dump scan's hot path.
 *
 * A table whose entries are told apart by more than the key (names, where two may share a hash)
 * walks the probe itself: hc_table_home, hc_table_slot, hc_table_next, then hc_table_claim on the
 * empty slot it stopped at, after hc_table_reserve. Pure C: no Ruby. */
#ifndef HC_UTIL_TABLE_H
#define HC_UTIL_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    unsigned char *slots;
    size_t slot_size;                   /* bytes a slot, at least 8 (the key) */
    size_t cap;                         /* slots: 0 or a power of two */
    size_t count;
    size_t limit;                       /* the most entries cap slots may hold */
    unsigned max_load;                  /* percent of the slots the table may fill, 1-90 */
    uint64_t (*hash)(const void *slot); /* an entry's hash, from its slot: for doubling and removal */
} hc_table;

void hc_table_init(hc_table *t, size_t slot_size, unsigned max_load, uint64_t (*hash)(const void *slot));
void hc_table_free(hc_table *t);
/* hc_table_reserve's slow path: the first slots, or doublings. */
int hc_table_make_room(hc_table *t, size_t more);
/* Takes the empty slot a probe stopped at (after hc_table_reserve(t, 1)): sets its key, count + 1. */
void hc_table_claim(hc_table *t, void *slot, uint64_t key);
/* Removes the entry in slot; a later entry of its probe run may move into it (look at it again
 * when walking the slots). */
void hc_table_remove(hc_table *t, void *slot);

/* A well-spread hash of a key that is not one (an address: its low bits are all alike). */
static inline uint64_t hc_table_mix(uint64_t x)
{
    x *= 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 32);
}

/* A hash of n bytes of text from seed (FNV-1a, its high bits folded into the low ones, which pick
 * the home slot), never 0: the key of a table keyed by names, whose callers walk the probe. */
static inline uint64_t hc_table_hash_text(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed; /* the offset basis */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull; /* the prime */
    return (h ^ (h >> 29)) | (1ull << 63);
}

static inline uint64_t hc_table_slot_key(const void *slot)
{
    uint64_t key;
    memcpy(&key, slot, sizeof key);
    return key;
}

static inline size_t hc_table_home(const hc_table *t, uint64_t hash) { return (size_t)hash & (t->cap - 1); }
static inline size_t hc_table_next(const hc_table *t, size_t j) { return (j + 1) & (t->cap - 1); }
static inline void *hc_table_slot(const hc_table *t, size_t j) { return t->slots + j * t->slot_size; }

/* Room for `more` entries beyond count, doubling as needed. 0, or -1 out of memory (t still valid,
 * perhaps doubled already). Inline: every put asks. */
static inline int hc_table_reserve(hc_table *t, size_t more)
{
    return t->cap && more <= t->limit - t->count ? 0 : hc_table_make_room(t, more);
}

/* The slot holding key, or NULL (also in an empty table). */
static inline void *hc_table_get(const hc_table *t, uint64_t key, uint64_t hash)
{
    if (!t->cap || !key) return NULL;
    for (size_t j = hc_table_home(t, hash);; j = hc_table_next(t, j)) {
        void *slot = hc_table_slot(t, j);
        uint64_t k = hc_table_slot_key(slot);
        if (k == key) return slot;
        if (!k) return NULL;
    }
}

/* The slot for key: the one holding it, or a new one (key set, the rest zeroed, *made = 1). NULL
 * out of memory. A slot pointer is valid until the next put, claim, reserve or remove. */
static inline void *hc_table_put(hc_table *t, uint64_t key, uint64_t hash, int *made)
{
    *made = 0;
    if (!key) return NULL;
    if (t->cap && t->count >= t->limit) { /* a key already in a full table takes no doubling */
        void *slot = hc_table_get(t, key, hash);
        if (slot) return slot;
    }
    if (hc_table_reserve(t, 1) != 0) return NULL;
    for (size_t j = hc_table_home(t, hash);; j = hc_table_next(t, j)) {
        void *slot = hc_table_slot(t, j);
        uint64_t k = hc_table_slot_key(slot);
        if (k == key) return slot;
        if (!k) {
            hc_table_claim(t, slot, key);
            *made = 1;
            return slot;
        }
    }
}

#endif
