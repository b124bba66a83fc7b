/* A heap dump as a graph, and what holds what in it: objects and their references, read line by
 * line (hc_graph_add, fed by the summary's scan), then analysed once (hc_graph_analyze):
 *   - reachability from the ROOT records: retained objects, and the garbage awaiting GC;
 *   - the dominator tree (semi-NCA: Lengauer-Tarjan's semidominators with the nearest common
 *     ancestor step of Georgiadis' SNCA), exact, and each object's retained size: the memsize and
 *     objects that would be freed with it;
 *   - the shortest path from a root to every retained object (breadth first, when asked).
 * A virtual root (the last node) references one node per ROOT record, which references the
 * record's objects. Memory while it is read: 22 bytes an object and 8 a reference (an object's class
 * is one), and 8 a sampled object (the sampled tracer's weights: a few thousand); analysed, 46 bytes
 * an object and 8 a reference at its peak. Pure C: no Ruby. */
#ifndef HC_HEAP_GRAPH_H
#define HC_HEAP_GRAPH_H

#include "heap_scan.h"

#include <stddef.h>
#include <stdint.h>

#define HC_GRAPH_NONE UINT32_MAX
#define HC_GRAPH_MAX_KINDS 255 /* node kinds (type, imemo type, root kind) interned in a byte */

/* node flags */
#define HC_NODE_ROOT 1u      /* a ROOT record (or the virtual root): no object */
#define HC_NODE_REACHED 2u   /* reachable from the roots */
#define HC_NODE_OWN 4u       /* heapcapture's own (the caller's test, garbage too), and what it alone retains */
#define HC_NODE_SINGLETON 8u /* a singleton class */
#define HC_NODE_CLASS_EDGE 16u /* its first reference is its "class" (dump_all writes the class apart from
                                * the references, though the GC marks it: a singleton class lives by it) */
#define HC_NODE_CLASS_REF 32u /* until resolved: its first reference is its "class" (hc_graph_class_of), an
                               * edge only with HC_NODE_CLASS_EDGE (else dropped when resolved) */

typedef struct {
    char *type;             /* "STRING", "IMEMO", "ROOT" (as JSON wrote it) */
    char *sub;              /* an IMEMO's imemo_type, a ROOT's kind; NULL when none */
    uint8_t type_kind;      /* the first kind of the same type (one row a type) */
    uint8_t shape, imemo;   /* a SHAPE record (held by the VM, no heap object), an IMEMO */
    uint8_t code;           /* a CLASS, MODULE or ICLASS: the program rather than its data */
    uint8_t class_unmarked; /* its "class" is no reference: the GC does not mark it (FLOAT, BIGNUM and
                             * SYMBOL return before; a callcache's klass is a weak key, vm_callinfo.h) */
} hc_graph_kind;

typedef struct {
    uint64_t addr;          /* a singleton class */
    char *name;             /* its real_class_name, as JSON wrote it */
} hc_graph_name;

typedef struct {
    uint32_t node;          /* a node with a site the sampled tracer wrote */
    uint32_t weight;        /* its sample weight (hc_dump_line_weight): the allocations it stands for */
} hc_graph_weight;

#define HC_GRAPH_BIG UINT32_MAX /* a memsize that does not fit 4 bytes: the node's is in bigs */

typedef struct {
    uint32_t node;          /* a node of HC_GRAPH_BIG memsize (4 GiB or more: a rare huge String or Array) */
    uint64_t memsize;
} hc_graph_big;

typedef struct {
    /* nodes, in the dump's order; the virtual root last once analysed */
    uint32_t n, cap;
    uint64_t *addr;         /* 0 for roots */
    uint32_t *memsize;      /* HC_GRAPH_BIG: in bigs (hc_graph_memsize reads both) */
    uint32_t *site;         /* the caller's site id (0: none) */
    uint8_t *kind;          /* into kinds */
    uint8_t *flags;
    uint32_t *edge_end;     /* node i's references: edges[edge_end[i-1] .. edge_end[i]) */
    /* references: addresses while reading; node indices (uint32_t) once resolved */
    uint64_t *refs;
    uint64_t nrefs, refs_cap;
    size_t refs_bytes;      /* mapped for refs (hc_big_resize) */
    hc_graph_kind kinds[HC_GRAPH_MAX_KINDS];
    hc_graph_name *real_names; /* singleton classes' real classes, by address once analysed */
    uint32_t nreal, real_cap;
    int real_sorted;
    hc_graph_weight *weights; /* the sampled nodes only, in node order (appended as lines come) */
    uint32_t nweights, weights_cap;
    hc_graph_big *bigs;     /* the nodes of HC_GRAPH_BIG memsize, in node order */
    uint32_t nbigs, bigs_cap;
    uint32_t nkinds;
    /* counts */
    uint64_t missing_refs;  /* references to addresses the dump has no object for (classes not counted:
                             * an IMEMO's "class" may be no object) */
    uint64_t bad_refs;      /* entries of a references list that are no address */
    uint64_t duplicate_addrs;
    uint32_t root;          /* the virtual root's index, once analysed */
    /* results of hc_graph_analyze */
    uint32_t *idom;         /* immediate dominator (a node index; HC_GRAPH_NONE: unreached, or the root) */
    uint64_t *retained;     /* retained memsize */
    uint32_t *retained_count; /* retained objects (itself included) */
    uint32_t *bfs_parent;   /* the node before it on a shortest path from the root (hc_graph_bfs) */
    uint32_t reached;       /* nodes the root reaches, itself included */
    void *scratch;          /* the working block the stages share (hc_graph_scratch) */
    size_t scratch_bytes;
    int resolved;           /* hc_graph_resolve is done: refs are node indices, the virtual root is in */
    int analysed;
    int failed;             /* out of memory (or past a limit) while reading */
    const char *why;        /* the limit, when one was passed (NULL: out of memory) */
} hc_graph;

void hc_graph_init(hc_graph *g);
void hc_graph_free(hc_graph *g);

/* One scanned line (an object, or a ROOT record) with its summary site id (0: none; with one, the
 * line's sample weight is kept, if it has one). -1 out of memory or past the graph's limits (then
 * failed, err says which). Other records are ignored. */
int hc_graph_add(hc_graph *g, const hc_dump_line *l, uint32_t site);

/* Node i's class address, as the dump wrote it (0: none). Only until resolved: the class is kept as the
 * node's first reference (no array of its own: 8 bytes an object the analysis does not need). */
static inline uint64_t hc_graph_class_of(const hc_graph *g, uint32_t i)
{
    return !g->resolved && (g->flags[i] & HC_NODE_CLASS_REF) ? g->refs[i ? g->edge_end[i - 1] : 0] : 0;
}

/* Resolves references (to node indices, in place: half their memory freed; those to addresses the
 * dump lacks counted and dropped; the classes that are no edge dropped) and adds the virtual root:
 * hc_graph_analyze's first stage, done by it when not done before. Nothing is added to g after.
 * 0, or -1 with err set (the graph failed while read, out of memory). */
int hc_graph_resolve(hc_graph *g, char *err, size_t errlen);

/* Resolves references (unless done), and computes reachability, dominators and retained
 * sizes. own(arg, g, i) marks heapcapture's own objects (NULL: none); what
 * only they retain is marked too. 0, or -1 with err set. */
typedef int (*hc_graph_own_fn)(void *arg, const hc_graph *g, uint32_t node);
int hc_graph_analyze(hc_graph *g, hc_graph_own_fn own, void *own_arg, char *err, size_t errlen);

/* Shortest paths from the root (breadth first), for hc_graph_path: 8 bytes an object while it
 * runs, 4 kept. 0, or -1 with err set. */
int hc_graph_bfs(hc_graph *g, char *err, size_t errlen);

/* The node of address (HC_GRAPH_NONE when the dump has no such object). Only after analyze. */
uint32_t hc_graph_find(const hc_graph *g, uint64_t addr);

/* The shortest path from the root to node: its nodes, root record first, node last, into out
 * (cap entries). Returns its length (0: unreachable), which may exceed cap (then cut). */
uint32_t hc_graph_path(const hc_graph *g, uint32_t node, uint32_t *out, uint32_t cap);

/* The name of the real class behind the singleton class at addr (its "real_class_name": an object
 * whose class is that singleton is an instance of it), or NULL. After hc_graph_sort_names. */
void hc_graph_sort_names(hc_graph *g);
const char *hc_graph_real_class_name(const hc_graph *g, uint64_t addr);

/* Node v's memsize. */
uint64_t hc_graph_big_memsize(const hc_graph *g, uint32_t v);
static inline uint64_t hc_graph_memsize(const hc_graph *g, uint32_t v)
{
    return g->memsize[v] != HC_GRAPH_BIG ? g->memsize[v] : hc_graph_big_memsize(g, v);
}

/* Node v's sample weight (the allocations its site's sample stands for), or 0 when its site is
 * exact or it has none. O(log sampled nodes). */
uint32_t hc_graph_weight_of(const hc_graph *g, uint32_t v);

/* A working block of bytes for one stage of work on g, the same block each time, resized (its first
 * bytes kept, as realloc keeps them): a fresh page costs more to fault in than the work done on it
 * (doc/figures.md), so the stages reuse the pages the last one touched. Valid until the
 * next call; 0 bytes frees it (hc_graph_free does too). NULL out of memory (the old block kept). */
void *hc_graph_scratch(hc_graph *g, size_t bytes);

/* The dominator tree's children, in g's scratch block (valid until its next use), once analysed:
 * the nodes v immediately dominates are kids[(v ? first[v - 1] : 0) .. first[v]), where first is
 * the block returned and kids = first + n + 1 (n = g->n). NULL out of memory. */
uint32_t *hc_graph_dominated(hc_graph *g);

/* Node i's references, once analysed. */
static inline const uint32_t *hc_graph_edges(const hc_graph *g, uint32_t i, uint32_t *count)
{
    uint32_t from = i ? g->edge_end[i - 1] : 0;
    *count = g->edge_end[i] - from;
    return (const uint32_t *)g->refs + from;
}

#endif
