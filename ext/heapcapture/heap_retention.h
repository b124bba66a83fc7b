/* What holds the memory, as JSON: the retention analysis of a dump's graph (heap_graph.h), named
 * with its summary's sites and class names (heap_summary.h). heapcapture's own objects (those
 * allocated in its lib/ files, its classes' instances) and what they alone retain are counted
 * apart ("own") and kept out of every ranking. Pure C: no Ruby. */
#ifndef HC_HEAP_RETENTION_H
#define HC_HEAP_RETENTION_H

#include "heap_graph.h"
#include "heap_summary.h"

#include <stddef.h>
#include <stdint.h>

#define HC_RETENTION_SHARE 0.1        /* a suspect holds at least this share of the retained heap */
#define HC_RETENTION_MAX_SUSPECTS 10
#define HC_RETENTION_MAX_HOPS 64      /* a path's hops written (its length is always said) */
#define HC_RETENTION_TREE_DEPTH 128   /* levels of the dominator tree's frames opened (heap_flame.h) */

typedef struct hc_retention hc_retention;

/* Analyses g (filled through s's scan; both must outlive the result): reachability, dominators,
 * retained sizes, heapcapture's own objects. NULL with err set. */
hc_retention *hc_retention_new(hc_graph *g, const hc_summary *s, char *err, size_t errlen);
void hc_retention_free(hc_retention *r);

/* hc_retention_new in two steps. prepare names the classes (then drops the objects' class
 * addresses) and resolves the references: it frees more memory than it takes, so it may run while
 * the dump's other summary is still read; complete (the dominators: the working memory's peak)
 * once that one is done. complete: 0, or -1 with err set (r is still to be freed). */
hc_retention *hc_retention_prepare(hc_graph *g, const hc_summary *s, char *err, size_t errlen);
int hc_retention_complete(hc_retention *r, char *err, size_t errlen);

/* The analysis as one JSON object:
 *   {"retention":"computed","retained":{"objects","memsize"},"garbage":{..},"own":{..},
 *    "missing_references":N,"root_records":N,
 *    "types":{TYPE:{"retained_objects","retained_memsize"}},
 *    "sites":[{"file","line","objects","memsize","retained_objects","retained_memsize",
 *              "garbage_objects","garbage_memsize",("estimated":true,"sampled")}] (by retained),
 *    "classes":[{"class", and the same}],
 *    "retainers":[{"address","type",("class"|"imemo_type"),"file","line","memsize",
 *                  "retained_memsize","retained_objects"}],
 *    "retained_by_class":[{"class","instances","retained_memsize","retained_objects"}],
 *    "retained_by_site":[{"file","line","instances","retained_memsize","retained_objects",
 *                         ("estimated":true,"sampled")}],
 *    "suspects":[{"kind","address","instances","type","class","file","line","retained_memsize",
 *                 "retained_objects","share",("estimated":true,"sampled"),"path_length","path":[hop,...]}],
 *    ("tree":{...} with tree_share > 0: the dominator tree as a flame graph's frames, heap_flame.h,
 *     those retaining less than tree_share of what the roots retain joined into "(other)")}
 * In types, sites and classes, retained_* counts their own objects that the roots reach (in sites
 * and classes, heapcapture's own left out: objects and memsize count them, as the tally does); in
 * retainers, retained_by_* and suspects, what the object (or each instance not itself held by
 * another of its class or site) retains: its dominator subtree. A suspect holds at least share
 * of the retained heap (heapcapture's own left out). A site's objects the sampled tracer annotated
 * count their sample weight each (the summary's rule): its figures in sites, retained_by_site and
 * a site suspect are then estimates, said by "estimated":true and "sampled" (the objects, or
 * instances, seen); what sampled instances hold is at most the retained heap (a share at most 1).
 * Classes, types and totals are exact. NULL when out of memory. */
char *hc_retention_json(hc_retention *r, size_t top, double share, double tree_share);

/* Which objects `heapcapture path` explains: one address, or up to `all` objects of a class
 * (by name) or of a site (file as the dump writes it, and line), those retaining most first. */
typedef struct {
    uint64_t address;       /* 0: by class or site */
    const char *class_name; /* NULL: not by class */
    const char *file;       /* NULL: not by site */
    int64_t line;
    size_t all;
} hc_path_query;

/* [{"target":"0x..","path_length":N,"path":[hop,...]},...]. NULL with err set: an address the
 * dump lacks, a class or site with no object, objects the roots do not reach (garbage awaiting
 * GC: said so), out of memory. */
char *hc_retention_paths_json(hc_retention *r, const hc_path_query *q, char *err, size_t errlen);

/* ---- growth between two dumps (heapcapture diff) ---- */

#define HC_GROWTH_HOLDER_PERCENT 80 /* the holder holds at least this share of the most any object holds */
#define HC_GROWTH_NEARLY_ALL_PERCENT 90 /* a holder one of whose dominated objects holds this share of
                                         * its growth is left out of the holders (that one is listed) */

/* What grew, and what holds it: is_new_by_node (g->n bytes, by node; not 0: the object is new,
 * made between the dumps) marks the new objects of the dump r analysed. As one JSON object:
 *   {"retention":"computed",
 *    "growth":{"retained":{"objects","memsize"},"garbage":{..},"own":{..}},
 *    "missing_references":N,"root_records":N,
 *    "types":{TYPE:{"retained_objects","retained_memsize"}} (types with new objects reached),
 *    "sites":[{"file","line","objects","memsize","retained_objects","retained_memsize",
 *              "garbage_objects","garbage_memsize",("estimated":true,"sampled")}],
 *    "classes":[{"class", and the same but the estimate}],
 *    "holders":[{hop fields as in a path,"growth_memsize","growth_objects","growth_share",
 *                "path_length","path":[hop,...]}],
 *    "holder":{the same} or null}
 * growth: the new objects the roots reach (retained: heapcapture's own among them, "own") and
 * those only awaiting GC. sites and classes: the new objects' own figures, as the report's are
 * (objects and memsize count all, heapcapture's own too; retained_* those a root reaches but
 * heapcapture's; garbage_* those none reaches), ranked as the report's are (by retained memsize;
 * sites of garbage only after, by it; classes with none retained left out); in a site, an object
 * the sampled tracer wrote counts its sample weight times, as in the report (estimated, sampled).
 * Types, the growth's totals and the holders count each object once. A node's growth: the memsize (and count) of the new objects in its
 * dominator subtree, the growth that would be freed with it; growth_share: of the growth
 * retained, heapcapture's own left out. holders: up to top objects by growth, each the deepest of
 * its chain (left out when an object it dominates directly holds HC_GROWTH_NEARLY_ALL_PERCENT of its
 * growth), the holder always among them. holder: the deepest object on the dominator chain that
 * holds at least HC_GROWTH_HOLDER_PERCENT of the largest growth any object holds (null when no
 * object holds any): what holds the growth. Memory: 8 bytes an object, and 4 while the growth is
 * summed, beside the caller's byte. NULL when out of memory. */
char *hc_retention_growth_json(hc_retention *r, const uint8_t *is_new_by_node, size_t top);

#endif
