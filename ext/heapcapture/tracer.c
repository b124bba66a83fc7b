/* The sampled tracer's table (see tracer.h): the project's hash table (util_table.h: linear
 * probing, backward-shift removal, so lookups stay short however many samples come and go), sized
 * once for its capacity at most half full. Strings are interned in a second one. */
#include "tracer.h"
#include "util_table.h"

#include <stdlib.h>
#include <string.h>

/* A sample's addr is the table's 8-byte key. */
_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "a sample's key is 8 bytes");

#define HC_SAMPLES_MAX_STRINGS (1u << 20) /* distinct file and method names: far above any app's */

/* A string's entry in the index: its hash (top bit set: never 0) and its index. */
typedef struct {
    uint64_t hash;
    uint32_t index;
} hc_string_entry;

struct hc_sample_table {
    hc_table samples;       /* of hc_sample, keyed by addr; never grown: room for capacity made at once */
    size_t capacity;
    char **strings;         /* by index */
    uint32_t nstrings, strings_cap;
    hc_table string_index;  /* of hc_string_entry */
};

/* A key is a counter (the app's table) or an address (a dump's): hc_table_mix spreads both. */
static uint64_t hc_key_hash(uint64_t key) { return hc_table_mix(key); }

static uint64_t hc_sample_hash(const void *slot) { return hc_key_hash(hc_table_slot_key(slot)); }
static uint64_t hc_string_entry_hash(const void *slot) { return hc_table_slot_key(slot); }

hc_sample_table *hc_samples_new(size_t capacity)
{
    if (capacity == 0) capacity = 1;
    hc_sample_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->capacity = capacity;
    hc_table_init(&t->samples, sizeof(hc_sample), 50, hc_sample_hash);
    hc_table_init(&t->string_index, sizeof(hc_string_entry), 50, hc_string_entry_hash);
    if (hc_table_reserve(&t->samples, capacity) != 0 || hc_table_reserve(&t->string_index, 32) != 0) {
        hc_samples_free(t);
        return NULL;
    }
    return t;
}

void hc_samples_free(hc_sample_table *t)
{
    if (!t) return;
    for (uint32_t i = 0; i < t->nstrings; i++) free(t->strings[i]);
    free(t->strings);
    hc_table_free(&t->string_index);
    hc_table_free(&t->samples);
    free(t);
}

/* The index of s, interned now if new; UINT32_MAX when out of memory or too many strings. */
static uint32_t hc_intern(hc_sample_table *t, const char *s)
{
    uint64_t h = hc_table_hash_text(s, strlen(s), 0);
    if (hc_table_reserve(&t->string_index, 1) != 0) return UINT32_MAX;
    hc_string_entry *e;
    for (size_t j = hc_table_home(&t->string_index, h);; j = hc_table_next(&t->string_index, j)) {
        e = hc_table_slot(&t->string_index, j);
        if (!e->hash) break;
        if (e->hash == h && strcmp(t->strings[e->index], s) == 0) return e->index;
    }
    if (t->nstrings >= HC_SAMPLES_MAX_STRINGS) return UINT32_MAX;
    if (t->nstrings == t->strings_cap) {
        uint32_t cap = t->strings_cap ? t->strings_cap * 2 : 16;
        char **strings = realloc(t->strings, cap * sizeof *strings);
        if (!strings) return UINT32_MAX;
        t->strings = strings;
        t->strings_cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) return UINT32_MAX;
    uint32_t i = t->nstrings++;
    t->strings[i] = copy;
    hc_table_claim(&t->string_index, e, h);
    e->index = i;
    return i;
}

int hc_samples_put(hc_sample_table *t, uintptr_t addr, const char *file, int line, const char *method,
                   uint32_t generation, uint32_t weight)
{
    if (!addr || !file) return -1;
    uint64_t h = hc_key_hash(addr);
    hc_sample *s = hc_table_get(&t->samples, addr, h);
    if (!s && t->samples.count >= t->capacity) return 1;
    uint32_t f = hc_intern(t, file);
    uint32_t m = method ? hc_intern(t, method) : HC_SAMPLE_NO_METHOD;
    if (f == UINT32_MAX || (method && m == UINT32_MAX)) return -1;
    int made;
    if (!s) s = hc_table_put(&t->samples, addr, h, &made); /* room made for capacity at the start */
    if (!s) return -1;
    *s = (hc_sample){addr, f, m, line, generation, weight ? weight : 1};
    return 0;
}

const hc_sample *hc_samples_get(const hc_sample_table *t, uintptr_t addr)
{
    return hc_table_get(&t->samples, addr, hc_key_hash(addr));
}

int hc_samples_remove(hc_sample_table *t, uintptr_t addr)
{
    hc_sample *s = hc_table_get(&t->samples, addr, hc_key_hash(addr));
    if (!s) return 0;
    hc_table_remove(&t->samples, s);
    return 1;
}

size_t hc_samples_count(const hc_sample_table *t)
{
    return t->samples.count;
}

size_t hc_samples_capacity(const hc_sample_table *t)
{
    return t->capacity;
}

const char *hc_samples_string(const hc_sample_table *t, uint32_t index)
{
    return index < t->nstrings ? t->strings[index] : NULL;
}

size_t hc_samples_slots(const hc_sample_table *t)
{
    return t->samples.cap;
}

const hc_sample *hc_samples_at(const hc_sample_table *t, size_t slot)
{
    if (slot >= t->samples.cap) return NULL;
    const hc_sample *s = hc_table_slot(&t->samples, slot);
    return s->addr ? s : NULL;
}
