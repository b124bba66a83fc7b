/* A summary of a heap dump, made line by line as it streams (in the dump child, or reading a
 * stored dump): object count and memsize in all, by type, by GC generation and by allocation site
 * (file:line, from the objects that carry one), and the lines that are not JSON (counted, left
 * out: Ruby 3.1's ruby/ruby#6161). Written as JSON (hc_summary_json). Pure C: no Ruby. */
#ifndef HC_DUMP_SUMMARY_H
#define HC_DUMP_SUMMARY_H

#include "dump_scan.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t objects, memsize;
} hc_tally;

typedef struct {
    char *name;             /* a type, or a file as JSON wrote it (escapes kept: it is written back so) */
    int64_t line;
    uint64_t key;           /* a generation */
    hc_tally t;
    int used;
} hc_tally_slot;

typedef struct {
    hc_tally_slot *slots;
    size_t cap, count;
} hc_tally_map;

/* Decides for each object line whether it is tallied (1) or not (0); -1 out of memory. A diff
 * keeps only the objects a set of addresses lacks, and fills such sets with a filter that keeps
 * none (addr_set.h). */
typedef int (*hc_summary_filter)(void *arg, const hc_dump_line *line);

typedef struct {
    uint64_t lines, invalid, roots;
    hc_summary_filter filter; /* NULL: every object is tallied */
    void *filter_arg;
    hc_tally all;
    hc_tally_map types, generations, sites;
    char *partial;          /* a line begun in an earlier write */
    size_t partial_len, partial_cap;
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

/* The summary as one JSON object (malloc'd, NUL-terminated; *len its length), with the top sites
 * by memsize and by object count (top of each, ties by file and line):
 *   {"lines":..,"objects":..,"memsize":..,"roots":..,"invalid_lines":..,
 *    "types":{"STRING":{"objects":..,"memsize":..},...},
 *    "generations":{"12":{"objects":..,"memsize":..},...},
 *    "site_count":..,"sites":[{"file":..,"line":..,"objects":..,"memsize":..},...],
 *    "sites_by_count":[...]}
 * NULL out of memory. */
char *hc_summary_json(const hc_summary *s, size_t top, size_t *len);

#endif
