/* One line of ObjectSpace.dump_all's output, checked to be one JSON object and read for the fields
 * heapcapture's summaries use: address, type, memsize, the allocation site (file, line,
 * generation) where there is one, a sampled site's weight, how many references it holds, a string's value, a class's name. Written by hand for dump_all's flat records: one pass, no
 * allocation, nothing decoded that is not needed. It accepts what Ruby's JSON.parse accepts
 * (RFC 8259, bytes above 0x7f as they are, a \ud800-\udbff escape only before a \udc00-\udfff
 * one), so a line it rejects is one a JSON reader would reject: Ruby 3.1 writes such lines for
 * objects made in a method whose name is not ASCII (ruby/ruby#6161). Pure C: no Ruby. */
#ifndef HC_HEAP_SCAN_H
#define HC_HEAP_SCAN_H

#include <stddef.h>
#include <string.h> /* memcmp, for hc_json_str_is */
#include <stdint.h>

/* A top-level string field: its bytes between the quotes, escapes as written (escaped: there is a
 * backslash among them). */
typedef struct {
    const char *ptr;
    size_t len;
    int escaped;
} hc_json_str;

typedef struct {
    int has_address, has_type, has_memsize, has_file, has_line, has_generation, has_sample_weight;
    int has_references, has_value, has_class, has_name, has_root, has_imemo_type, has_real_class_name;
    int singleton;          /* "singleton":true (a singleton class) */
    uint64_t address;
    hc_json_str type;       /* "STRING", "ROOT", ... */
    uint64_t memsize;
    hc_json_str file;
    int64_t line;
    uint64_t generation;
    uint64_t sample_weight; /* the sampled tracer's weight: the allocations this sample stands for */
    uint64_t references;    /* how many entries its "references" list has */
    hc_json_str refs;       /* the list's inside, between its brackets (for hc_dump_refs_next) */
    hc_json_str value;      /* a STRING's (dump_all writes it for strings that are all ASCII) */
    uint64_t class_address;
    hc_json_str name;       /* a CLASS's or MODULE's */
    hc_json_str root;       /* a ROOT record's kind: "vm", "machine_context", "global_tbl", ... */
    hc_json_str imemo_type; /* an IMEMO's kind: "ment", "callcache", "iseq", ... */
    hc_json_str real_class_name; /* the class behind a singleton class the object has */
} hc_dump_line;

/* s is the literal lit, unescaped (lit's size is known at compile time). */
#define hc_json_str_is(s, lit) ((s)->len == sizeof lit - 1 && !(s)->escaped && memcmp((s)->ptr, lit, sizeof lit - 1) == 0)

/* The weight the line's site counts with in a summary: its sample_weight (at most UINT32_MAX), or 0
 * for an exact one (no site, no weight, or a weight of 0). */
static inline uint32_t hc_dump_line_weight(const hc_dump_line *l)
{
    if (!l->has_file || !l->has_sample_weight || !l->sample_weight) return 0;
    return l->sample_weight > UINT32_MAX ? UINT32_MAX : (uint32_t)l->sample_weight;
}

/* 0 when line[0, len) (without its newline) is one JSON object, its fields in *out; -1 when it is
 * not (truncated, not JSON, not an object). A field whose value is not of its kind (a "memsize"
 * that is a string) is left out as if absent. */
int hc_dump_scan_line(const char *line, size_t len, hc_dump_line *out);

/* The next address in a checked references list's inside (l->refs), from *pos on: 1 with *addr
 * set, 0 at the end. An entry that is not an address string is skipped and counted in *bad. */
int hc_dump_refs_next(const hc_json_str *refs, size_t *pos, uint64_t *addr, uint64_t *bad);

/* The JSON string's bytes decoded (escapes resolved, \u as UTF-8) into out (cap bytes, NUL
 * terminated, cut short if it does not fit). Returns the decoded length (before any cut). */
size_t hc_json_str_decode(const hc_json_str *s, char *out, size_t cap);

#endif
