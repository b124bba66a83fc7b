/* The sampled tracer's table (see tracer.h). Open addressing with linear probing and
 * backward-shift deletion (no tombstones, so lookups stay short however many samples come and
 * go), at most half full. Strings are interned in a second open-addressing table. */
#include "tracer.h"

#include <stdlib.h>
#include <string.h>

#define HC_SAMPLES_MAX_STRINGS (1u << 20) /* distinct file and method names: far above any app's */

struct hc_sample_table {
    hc_sample *slots;
    size_t nslots;          /* a power of two, 2 x capacity or more */
    size_t capacity;
    size_t count;
    char **strings;         /* by index */
    uint32_t nstrings, strings_cap;
    uint32_t *string_slots; /* open addressing over strings: index + 1, 0 empty */
    size_t nstring_slots;   /* a power of two */
};

static size_t hc_pow2_at_least(size_t n)
{
    size_t p = 8;
    while (p < n) p <<= 1;
    return p;
}

static size_t hc_addr_hash(uintptr_t addr)
{
    uint64_t x = (uint64_t)addr >> 3; /* objects are at least 8-byte aligned */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static uint64_t hc_str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

hc_sample_table *hc_samples_new(size_t capacity)
{
    if (capacity == 0) capacity = 1;
    hc_sample_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->capacity = capacity;
    t->nslots = hc_pow2_at_least(capacity * 2);
    t->slots = calloc(t->nslots, sizeof *t->slots);
    t->nstring_slots = 64;
    t->string_slots = calloc(t->nstring_slots, sizeof *t->string_slots);
    if (!t->slots || !t->string_slots) {
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
    free(t->string_slots);
    free(t->slots);
    free(t);
}

static int hc_strings_grow(hc_sample_table *t)
{
    size_t n = t->nstring_slots * 2;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    for (uint32_t i = 0; i < t->nstrings; i++) {
        size_t j = (size_t)hc_str_hash(t->strings[i]) & (n - 1);
        while (slots[j]) j = (j + 1) & (n - 1);
        slots[j] = i + 1;
    }
    free(t->string_slots);
    t->string_slots = slots;
    t->nstring_slots = n;
    return 0;
}

/* The index of s, interned now if new; UINT32_MAX when out of memory or too many strings. */
static uint32_t hc_intern(hc_sample_table *t, const char *s)
{
    size_t j = (size_t)hc_str_hash(s) & (t->nstring_slots - 1);
    for (; t->string_slots[j]; j = (j + 1) & (t->nstring_slots - 1)) {
        uint32_t i = t->string_slots[j] - 1;
        if (strcmp(t->strings[i], s) == 0) return i;
    }
    if (t->nstrings >= HC_SAMPLES_MAX_STRINGS) return UINT32_MAX;
    if (((size_t)t->nstrings + 1) * 2 > t->nstring_slots) { /* keep it at most half full */
        if (hc_strings_grow(t) != 0) return UINT32_MAX;
        j = (size_t)hc_str_hash(s) & (t->nstring_slots - 1);
        while (t->string_slots[j]) j = (j + 1) & (t->nstring_slots - 1);
    }
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
    t->string_slots[j] = i + 1;
    return i;
}

static size_t hc_find(const hc_sample_table *t, uintptr_t addr)
{
    size_t mask = t->nslots - 1;
    size_t j = hc_addr_hash(addr) & mask;
    while (t->slots[j].addr && t->slots[j].addr != addr) j = (j + 1) & mask;
    return j;
}

int hc_samples_put(hc_sample_table *t, uintptr_t addr, const char *file, int line, const char *method,
                   uint32_t generation, uint32_t weight)
{
    if (!addr || !file) return -1;
    size_t j = hc_find(t, addr);
    if (!t->slots[j].addr && t->count >= t->capacity) return 1;
    uint32_t f = hc_intern(t, file);
    uint32_t m = method ? hc_intern(t, method) : HC_SAMPLE_NO_METHOD;
    if (f == UINT32_MAX || (method && m == UINT32_MAX)) return -1;
    if (!t->slots[j].addr) t->count++;
    t->slots[j] = (hc_sample){addr, f, m, line, generation, weight ? weight : 1};
    return 0;
}

const hc_sample *hc_samples_get(const hc_sample_table *t, uintptr_t addr)
{
    if (!addr) return NULL;
    size_t j = hc_find(t, addr);
    return t->slots[j].addr ? &t->slots[j] : NULL;
}

int hc_samples_remove(hc_sample_table *t, uintptr_t addr)
{
    if (!addr) return 0;
    size_t mask = t->nslots - 1;
    size_t hole = hc_find(t, addr);
    if (!t->slots[hole].addr) return 0;
    /* Backward shift: move up each later entry of the run whose home is at or before the hole. */
    for (size_t j = (hole + 1) & mask; t->slots[j].addr; j = (j + 1) & mask) {
        size_t home = hc_addr_hash(t->slots[j].addr) & mask;
        /* j may move into hole when home is not in the cyclic range (hole, j] */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    memset(&t->slots[hole], 0, sizeof t->slots[hole]);
    t->count--;
    return 1;
}

size_t hc_samples_count(const hc_sample_table *t)
{
    return t->count;
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
    return t->nslots;
}

const hc_sample *hc_samples_at(const hc_sample_table *t, size_t slot)
{
    return slot < t->nslots && t->slots[slot].addr ? &t->slots[slot] : NULL;
}
