/* The strings of a heap dump that hold the same value: each value (as dump_all wrote it, escapes
 * kept) counted by a 63-bit hash of its bytes and length, with the memsize of its copies and the
 * site of the first that has one; the text kept (its first HC_STRINGS_PREVIEW bytes) only once a
 * value is seen twice. 16 bytes a distinct value, in the project's hash table (util_table.h) kept
 * at most 3/4 full (its doubling adds the new half only), so it is for reading dumps (heapcapture report), not
 * for the dump child. Two distinct values share a hash with odds of about n^2 / 2^64 (n distinct
 * values). Pure C: no Ruby. */
#ifndef HC_HEAP_STRINGS_H
#define HC_HEAP_STRINGS_H

#include "heap_scan.h"
#include "util_table.h"

#include <stddef.h>
#include <stdint.h>

#define HC_STRINGS_PREVIEW 64 /* bytes of a duplicated value kept to show it */

#define HC_STRING_USED (1ull << 63) /* set in every used slot's key: 0 is an empty slot */
#define HC_STRING_SEEN_TWICE UINT32_MAX /* a slot's site when its value is in dups */

/* A value seen once keeps its memsize and site here; one seen again moves its figures to dups. */
typedef struct {
    uint64_t key;           /* its hash | HC_STRING_USED; 0: empty */
    uint32_t memsize;       /* seen once: the copy's memsize (capped); seen twice: its index in dups */
    uint32_t site;          /* seen once: the copy's site id (0: none); seen twice: HC_STRING_SEEN_TWICE */
} hc_string_slot;

typedef struct {
    uint64_t count, memsize, bytesize; /* bytesize: the value's, decoded */
    uint32_t site;          /* the first copy's that has one */
    int more_sites;         /* a copy came from another site (or none) */
    char *preview;          /* the value's first bytes, as written: the inside of a JSON string */
    size_t preview_len;
    int cut;                /* preview is shorter than the value */
} hc_string_dup;

typedef struct {
    hc_table table;         /* of hc_string_slot; its count: the distinct values */
    hc_string_dup *dups;    /* the values seen twice or more */
    size_t dups_count, dups_cap;
    int failed;             /* out of memory once: the tally is incomplete */
} hc_string_tally;

void hc_string_tally_init(hc_string_tally *t);
void hc_string_tally_free(hc_string_tally *t);
/* One string: its value as the dump wrote it (a checked JSON string, heap_scan.h), memsize and
 * site id. -1 out of memory (then failed). */
int hc_string_tally_add(hc_string_tally *t, const hc_json_str *value, uint64_t memsize, uint32_t site);
/* Ends the counting once the dump is read: the table of distinct values (most of the tally's
 * memory) is freed before the report's next stage needs memory; the values seen twice or more
 * stay for hc_string_tally_top. Nothing is added after it. */
void hc_string_tally_end(hc_string_tally *t);
/* The hash a value is counted by (its slot: the hash's low bits), for the tests of the table. */
uint64_t hc_string_hash(const char *value, size_t len);
/* The values seen twice or more, most copies first (then most memsize, then by value), at most
 * top: pointers into t, *n how many (NULL out of memory or none). */
hc_string_dup **hc_string_tally_top(const hc_string_tally *t, size_t top, size_t *n);

#endif
