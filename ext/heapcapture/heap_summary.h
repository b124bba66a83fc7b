/* A summary of a heap dump, made line by line as it streams (in the dump child, or reading a
 * stored dump): object count, memsize and references held, in all, by type, by GC generation and
 * by allocation site (file:line, from the objects that carry one; a line the sampled tracer
 * annotated, with a "sample_weight" W, counts W times in its site's figures: an estimate, its site
 * marked so with the lines seen; every other figure counts each object once, exactly); the objects holding the most
 * references; with a string tally (heap_strings.h), the duplicate strings; and the lines that are
 * not JSON (counted, left out: Ruby 3.1's ruby/ruby#6161). Written as JSON (hc_summary_json).
 * Pure C: no Ruby. */
#ifndef HC_HEAP_SUMMARY_H
#define HC_HEAP_SUMMARY_H

#include "heap_graph.h"
#include "heap_scan.h"
#include "heap_strings.h"

#include "util_table.h"

#include <stddef.h>
#include <stdint.h>

#define HC_SUMMARY_LONG_LINE (64 * 1024) /* a partial line longer: its references are dropped as counted */
#define HC_SUMMARY_PARTIAL_KEEP (1024 * 1024) /* a line's buffer kept for the next line at most this large */
#define HC_SUMMARY_KEEP 100 /* objects holding the most references kept, when the caller sets none */

typedef struct {
    uint64_t objects, memsize, references;
    uint64_t sampled;       /* a site's: lines with a sample weight (counted W times each above) */
} hc_tally;

typedef struct {
    uint64_t hash;          /* of (name, line) or of key, its top bit set; 0: an empty slot (util_table.h) */
    char *name;             /* a type, or a file as JSON wrote it (escapes kept: it is written back so) */
    int64_t line;
    uint64_t key;           /* a generation */
    hc_tally t;
    uint32_t id;            /* the order it was made in: a site's id, for the string tally */
} hc_tally_slot;

/* Types, generations or sites to their tallies: the project's hash table (util_table.h) of
 * hc_tally_slot, at most half full; count is the entries, cap the slots (hc_tally_at walks them). */
typedef hc_table hc_tally_map;

/* Slot i of m (i < m->cap) when it holds an entry, else NULL. */
static inline const hc_tally_slot *hc_tally_at(const hc_tally_map *m, size_t i)
{
    const hc_tally_slot *slot = hc_table_slot(m, i);
    return slot->hash ? slot : NULL;
}

/* An object among those holding the most references. */
typedef struct {
    uint64_t address, references, memsize, class_address;
    char type[16];
    char *file;             /* as written; NULL: no site */
    int64_t line;
} hc_holder;

/* Class and module addresses to their names (as written), to say what a holder is: the hash
 * table (util_table.h) of hc_name_slot. */
typedef struct {
    uint64_t address;       /* 0: an empty slot */
    char *name;
} hc_name_slot;
typedef hc_table hc_name_map;

/* Decides for each object line whether it is tallied (1) or not (0); -1 out of memory. A diff
 * keeps only the objects a set of addresses lacks, and fills such sets with a filter that keeps
 * none (heap_addr_set.h). */
typedef int (*hc_summary_filter)(void *arg, const hc_dump_line *line);

typedef struct {
    uint64_t lines, invalid, roots;
    hc_summary_filter filter; /* NULL: every object is tallied */
    void *filter_arg;
    hc_tally all;
    hc_tally_map types, generations, sites;
    size_t keep;            /* holders kept (0: HC_SUMMARY_KEEP) */
    hc_holder *holders;     /* most references first */
    size_t holders_count, holders_cap;
    hc_name_map class_names;
    hc_string_tally *strings; /* NULL: duplicate strings are not tallied (the caller owns it) */
    hc_graph *graph;        /* NULL: no graph is built; else every object and ROOT record goes into it
                             * (the caller owns it), and long lines are kept whole for their references */
    int graph_only;         /* only what the graph needs (its lines, their sites, the class names): no
                             * tallies of types, generations, holders or strings. The retention's own
                             * summary, read on a thread of its own beside the report's (rb_heap.c) */
    char *partial;          /* a line begun in an earlier write */
    size_t partial_len, partial_cap;
    size_t refs_at;         /* a long partial line: where its references list's kept rest begins (0: not found) */
    size_t refs_search;     /* where to look for it next */
    uint64_t refs_extra;    /* its entries counted and dropped */
    int refs_done;          /* nothing more to drop from this line */
    int failed;             /* out of memory once: the summary is incomplete */
} hc_summary;

void hc_summary_init(hc_summary *s);
void hc_summary_free(hc_summary *s);
/* Takes the next bytes of the dump, lines split anywhere. -1 out of memory (then failed). */
int hc_summary_write(hc_summary *s, const void *buf, size_t len);
/* The last line, if it had no newline. */
int hc_summary_finish(hc_summary *s);
/* One complete line (no newline). */
int hc_summary_line(hc_summary *s, const char *line, size_t len);

/* The name of the class or module at addr, as the dump wrote it (escapes kept); NULL unknown. */
const char *hc_summary_class_name(const hc_summary *s, uint64_t addr);

/* The summary as one JSON object (malloc'd, NUL-terminated; *len its length), with the top sites
 * by memsize, by object count and by references held (top of each, ties by file and line), the
 * top objects by references held, and with a string tally the top duplicate strings:
 *   {"lines":..,"objects":..,"memsize":..,"references":..,"roots":..,"invalid_lines":..,
 *    "site_count":..,"types":{"STRING":{"objects":..,"memsize":..},...},
 *    "generations":{"12":{"objects":..,"memsize":..},...},
 *    "sites":[{"file":..,"line":..,"objects":..,"memsize":..,"references":..,
 *              "estimated":true,"sampled":..(only for a site with sampled lines)},...],
 *    "sites_by_count":[...],"sites_by_references":[...(references > 0)],
 *    "most_references":[{"address":"0x..","type":..,"class":..(when known),"references":..,
 *                        "memsize":..,"file":..,"line":..(when known)},...],
 *    "duplicate_strings":[{"value":..(its first bytes),"truncated":..,"bytesize":..,
 *                          "count":..,"memsize":..,"file":..,"line":..(the first known of its copies'),
 *                          "more_sites":..},...]}
 * A site's objects, memsize and references are its exact objects' plus, for each sampled line,
 * W times its own (saturating); it is ranked by those figures. NULL out of memory. */
char *hc_summary_json(const hc_summary *s, size_t top, size_t *len);

#endif
