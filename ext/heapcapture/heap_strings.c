/* The duplicate strings of a dump (heap_strings.h): an open-addressing table of value hashes. */
#include "heap_strings.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t hc_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* 8 bytes a round (values are most of a dump's bytes), then murmur3's finalizer. */
uint64_t hc_string_hash(const char *p, size_t n)
{
    const uint64_t k1 = 0xc2b2ae3d27d4eb4full, k2 = 0x9e3779b97f4a7c15ull;
    uint64_t h = k2 ^ (n * k1);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = hc_rotl(h ^ (w * k1), 31) * k2;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = hc_rotl(h ^ (w * k1), 31) * k2;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* Where a preview of v[0, len) may end: at most HC_STRINGS_PREVIEW bytes, never inside an escape
 * (a \u surrogate pair is one) or a UTF-8 character, so it stays the inside of a JSON string. */
static size_t hc_preview_len(const char *v, size_t len)
{
    if (len <= HC_STRINGS_PREVIEW) return len;
    size_t k = 0;
    while (k < len) {
        unsigned char c = (unsigned char)v[k];
        size_t step = 1;
        if (c == '\\') {
            step = 2;
            if (k + 1 < len && v[k + 1] == 'u') {
                char d = k + 2 < len ? v[k + 2] : 0, e = k + 3 < len ? v[k + 3] : 0;
                int high = (d == 'd' || d == 'D') && e && strchr("89abAB", e); /* \ud800-\udbff: a pair */
                step = high ? 12 : 6;
            }
        } else if (c >= 0xc0) { /* a lead byte, with the continuation bytes that follow it */
            size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            while (step < want && k + step < len && ((unsigned char)v[k + step] & 0xc0) == 0x80) step++;
        }
        if (k + step > HC_STRINGS_PREVIEW) break;
        k += step;
    }
    return k;
}

/* A dump holds thousands of strings at least: the table starts with room for this many. */
#define HC_STRINGS_FIRST 768

static uint64_t hc_string_slot_hash(const void *slot) { return hc_table_slot_key(slot); }

void hc_string_tally_init(hc_string_tally *t)
{
    memset(t, 0, sizeof *t);
    hc_table_init(&t->table, sizeof(hc_string_slot), 75, hc_string_slot_hash);
}

void hc_string_tally_free(hc_string_tally *t)
{
    for (size_t i = 0; i < t->dups_count; i++) free(t->dups[i].preview);
    free(t->dups);
    hc_table_free(&t->table);
    memset(t, 0, sizeof *t);
}

void hc_string_tally_end(hc_string_tally *t)
{
    hc_table_free(&t->table);
}

static uint32_t hc_cap32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; }

/* The second copy of a value: it gets an entry of its own, with its text. */
static int hc_string_dup_new(hc_string_tally *t, hc_string_slot *slot, const hc_json_str *v, uint64_t memsize,
                             uint32_t site)
{
    const char *value = v->ptr;
    size_t len = v->len;
    if (t->dups_count == t->dups_cap) {
        size_t cap = t->dups_cap ? t->dups_cap * 2 : 256;
        hc_string_dup *d = realloc(t->dups, cap * sizeof *d);
        if (!d) return -1;
        t->dups = d;
        t->dups_cap = cap;
    }
    size_t plen = hc_preview_len(value, len);
    char *preview = strndup(value, plen); /* a checked JSON string's inside: no NUL in it */
    if (!preview) return -1;
    if (t->dups_count >= HC_STRING_SEEN_TWICE) { /* its index must fit the slot */
        free(preview);
        return -1;
    }
    t->dups[t->dups_count] = (hc_string_dup){.count = 2, .memsize = (uint64_t)slot->memsize + memsize, .bytesize = v->escaped ? hc_json_str_decode(v, NULL, 0) : len,
                                             .site = slot->site ? slot->site : site, .more_sites = site != slot->site,
                                             .preview = preview, .preview_len = plen, .cut = plen < len};
    slot->memsize = (uint32_t)t->dups_count++;
    slot->site = HC_STRING_SEEN_TWICE;
    return 0;
}

int hc_string_tally_add(hc_string_tally *t, const hc_json_str *v, uint64_t memsize, uint32_t site)
{
    if (!t->table.cap && hc_table_reserve(&t->table, HC_STRINGS_FIRST) != 0) goto oom;
    uint64_t key = hc_string_hash(v->ptr, v->len) | HC_STRING_USED; /* its own hash */
    if (site == HC_STRING_SEEN_TWICE) site = 0; /* ids number the dump's sites: never this high */
    int made;
    hc_string_slot *s = hc_table_put(&t->table, key, key, &made);
    if (!s) goto oom;
    if (made) {
        s->memsize = hc_cap32(memsize);
        s->site = site;
    } else if (s->site != HC_STRING_SEEN_TWICE) {
        if (hc_string_dup_new(t, s, v, memsize, site) != 0) goto oom;
    } else {
        hc_string_dup *d = &t->dups[s->memsize];
        d->count++;
        d->memsize += memsize;
        if (site != d->site) d->more_sites = 1;
        if (!d->site) d->site = site; /* a known site says more than none */
    }
    return 0;
oom:
    t->failed = 1;
    return -1;
}

static int hc_by_copies(const void *a, const void *b)
{
    const hc_string_dup *x = *(hc_string_dup *const *)a, *y = *(hc_string_dup *const *)b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    if (x->memsize != y->memsize) return x->memsize > y->memsize ? -1 : 1;
    return strcmp(x->preview, y->preview);
}

hc_string_dup **hc_string_tally_top(const hc_string_tally *t, size_t top, size_t *n)
{
    *n = 0;
    if (!t->dups_count || !top) return NULL;
    hc_string_dup **v = malloc(t->dups_count * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < t->dups_count; i++) v[i] = &t->dups[i];
    qsort(v, t->dups_count, sizeof *v, hc_by_copies);
    *n = t->dups_count < top ? t->dups_count : top;
    return v;
}
