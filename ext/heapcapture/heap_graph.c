/* The dump graph (heap_graph.h). Written here rather than taken from a library: the graph
 * libraries at hand (igraph, Boost) hold several times these bytes an edge, and none reads a dump.
 * Arrays are indexed by node (the dump's order) or, during the dominator pass, by depth-first
 * number (1-based, 0: not reached). */
#define _GNU_SOURCE /* strndup */
#include "heap_graph.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void hc_graph_init(hc_graph *g)
{
    memset(g, 0, sizeof *g);
    g->root = HC_GRAPH_NONE;
}

void hc_graph_free(hc_graph *g)
{
    hc_big_free(g->addr, g->cap * sizeof *g->addr);
    hc_big_free(g->memsize, g->cap * sizeof *g->memsize);
    hc_big_free(g->site, g->cap * sizeof *g->site);
    hc_big_free(g->kind, g->cap * sizeof *g->kind);
    hc_big_free(g->flags, g->cap * sizeof *g->flags);
    hc_big_free(g->edge_end, g->cap * sizeof *g->edge_end);
    hc_big_free(g->refs, g->refs_bytes);
    for (uint32_t i = 0; i < g->nreal; i++) free(g->real_names[i].name);
    hc_big_free(g->real_names, g->real_cap * sizeof *g->real_names);
    hc_big_free(g->weights, g->weights_cap * sizeof *g->weights);
    hc_big_free(g->bigs, g->bigs_cap * sizeof *g->bigs);
    for (uint32_t i = 0; i < g->nkinds; i++) {
        free(g->kinds[i].type);
        free(g->kinds[i].sub);
    }
    free(g->idom);
    free(g->retained);
    free(g->retained_count);
    free(g->bfs_parent);
    hc_big_free(g->scratch, g->scratch_bytes);
    hc_graph_init(g);
}

void *hc_graph_scratch(hc_graph *g, size_t bytes)
{
    if (!bytes) {
        hc_big_free(g->scratch, g->scratch_bytes);
        g->scratch = NULL;
        g->scratch_bytes = 0;
        return NULL;
    }
    if (bytes == g->scratch_bytes) return g->scratch;
    void *q = hc_big_resize(g->scratch, g->scratch_bytes, bytes);
    if (!q) return bytes < g->scratch_bytes ? g->scratch : NULL; /* a shrink that failed leaves it larger */
    g->scratch = q;
    g->scratch_bytes = bytes;
    return q;
}

/* *p, an array of old elements of size sz, grown to n (mapped: hc_big_resize); -1 (and *p kept)
 * when it fails. */
static int hc_grow(void *p, size_t old, size_t n, size_t sz)
{
    void *q = hc_big_resize(*(void **)p, old * sz, n * sz);
    if (!q && n) return -1;
    *(void **)p = q;
    return 0;
}

/* Room in *p (an array of *cap elements of size sz, count used) for one more: doubled (from first)
 * when full. -1 out of memory (the graph then failed). */
static int hc_room(hc_graph *g, void *p, uint32_t count, uint32_t *cap, size_t sz, uint32_t first)
{
    if (count < *cap) return 0;
    uint32_t more = *cap ? *cap * 2 : first;
    if (*cap > UINT32_MAX / 2 || hc_grow(p, *cap, more, sz) != 0) {
        g->failed = 1;
        return -1;
    }
    *cap = more;
    return 0;
}

static int hc_graph_reserve_nodes(hc_graph *g, uint32_t need)
{
    if (need <= g->cap) return 0;
    if (need >= HC_GRAPH_NONE - 1) return -1;
    size_t cap = g->cap ? (size_t)g->cap * 2 : 4096;
    if (cap >= HC_GRAPH_NONE - 1) cap = HC_GRAPH_NONE - 2;
    void *arrays[] = {&g->addr, &g->memsize, &g->site, &g->kind, &g->flags, &g->edge_end};
    size_t sizes[] = {sizeof *g->addr, sizeof *g->memsize, sizeof *g->site, sizeof *g->kind, sizeof *g->flags,
                      sizeof *g->edge_end};
    size_t count = sizeof sizes / sizeof *sizes;
    for (size_t i = 0; i < count; i++) {
        if (hc_grow(arrays[i], g->cap, cap, sizes[i]) != 0) {
            while (i-- > 0) /* back to one size for all: hc_graph_free unmaps cap's worth */
                (void)hc_grow(arrays[i], cap, g->cap, sizes[i]);
            return -1;
        }
    }
    g->cap = (uint32_t)cap;
    return 0;
}

static int hc_str_eq(const char *a, const hc_json_str *b)
{
    return b->ptr ? strlen(a) == b->len && memcmp(a, b->ptr, b->len) == 0 : 0;
}

/* The kind (type, sub) as a byte; -1 when there are too many (or out of memory). */
static int hc_graph_kind_of(hc_graph *g, const hc_json_str *type, const hc_json_str *sub)
{
    static const hc_json_str none = {"", 0, 0};
    if (!type) type = &none;
    for (uint32_t i = 0; i < g->nkinds; i++) {
        const hc_graph_kind *k = &g->kinds[i];
        if (hc_str_eq(k->type, type) && (sub ? k->sub && hc_str_eq(k->sub, sub) : !k->sub)) return (int)i;
    }
    if (g->nkinds >= HC_GRAPH_MAX_KINDS) return -1;
    hc_graph_kind *k = &g->kinds[g->nkinds];
    k->type = strndup(type->ptr, type->len);
    k->sub = sub ? strndup(sub->ptr, sub->len) : NULL;
    if (!k->type || (sub && !k->sub)) {
        free(k->type);
        free(k->sub);
        k->type = k->sub = NULL;
        return -1;
    }
    k->type_kind = (uint8_t)g->nkinds;
    for (uint32_t i = 0; i < g->nkinds; i++)
        if (strcmp(g->kinds[i].type, k->type) == 0) {
            k->type_kind = (uint8_t)i;
            break;
        }
    k->shape = strcmp(k->type, "SHAPE") == 0;
    k->imemo = strcmp(k->type, "IMEMO") == 0;
    k->code = strcmp(k->type, "CLASS") == 0 || strcmp(k->type, "MODULE") == 0 || strcmp(k->type, "ICLASS") == 0;
    k->class_unmarked = strcmp(k->type, "FLOAT") == 0 || strcmp(k->type, "BIGNUM") == 0 || strcmp(k->type, "SYMBOL") == 0 ||
                        (k->imemo && k->sub && strcmp(k->sub, "callcache") == 0);
    return (int)g->nkinds++;
}

static int hc_graph_ref(hc_graph *g, uint64_t addr)
{
    if (g->nrefs == g->refs_cap) {
        uint64_t cap = g->refs_cap ? g->refs_cap * 2 : 65536;
        if (cap > UINT32_MAX) cap = UINT32_MAX;
        if (g->nrefs >= cap || hc_grow(&g->refs, (size_t)g->refs_cap, (size_t)cap, sizeof *g->refs) != 0) {
            g->failed = 1;
            return -1;
        }
        g->refs_cap = cap;
        g->refs_bytes = (size_t)cap * sizeof *g->refs;
    }
    g->refs[g->nrefs++] = addr;
    return 0;
}

int hc_graph_add(hc_graph *g, const hc_dump_line *l, uint32_t site)
{
    if (g->failed) return -1;
    if (g->resolved) {
        g->failed = 1;
        g->why = "an object added after the graph was resolved";
        return -1;
    }
    int is_root = !l->has_address && l->has_type && hc_json_str_is(&l->type, "ROOT");
    if (!l->has_address && !is_root) return 0;
    const hc_json_str *sub = is_root ? (l->has_root ? &l->root : NULL) : l->has_imemo_type ? &l->imemo_type : NULL;
    int kind = hc_graph_kind_of(g, l->has_type ? &l->type : NULL, sub);
    if (kind < 0) {
        g->failed = 1;
        g->why = g->nkinds >= HC_GRAPH_MAX_KINDS ? "more kinds of object (type and imemo type) than the graph keeps" : NULL;
        return -1;
    }
    if (hc_graph_reserve_nodes(g, g->n + 2) != 0) { /* a place kept for the virtual root */
        g->failed = 1;
        return -1;
    }
    uint32_t i = g->n;
    g->addr[i] = is_root ? 0 : l->address;
    uint64_t memsize = l->has_memsize ? l->memsize : 0;
    g->memsize[i] = memsize < HC_GRAPH_BIG ? (uint32_t)memsize : HC_GRAPH_BIG;
    if (memsize >= HC_GRAPH_BIG) {
        if (hc_room(g, &g->bigs, g->nbigs, &g->bigs_cap, sizeof *g->bigs, 16) != 0) return -1;
        g->bigs[g->nbigs++] = (hc_graph_big){i, memsize};
    }
    g->site[i] = site;
    uint32_t weight = site && !is_root ? hc_dump_line_weight(l) : 0;
    if (weight) {
        if (hc_room(g, &g->weights, g->nweights, &g->weights_cap, sizeof *g->weights, 256) != 0) return -1;
        g->weights[g->nweights++] = (hc_graph_weight){i, weight};
    }
    g->kind[i] = (uint8_t)kind;
    g->flags[i] = (uint8_t)((is_root ? HC_NODE_ROOT : 0) | (l->singleton ? HC_NODE_SINGLETON : 0));
    if (l->has_real_class_name && l->singleton && !is_root) {
        if (hc_room(g, &g->real_names, g->nreal, &g->real_cap, sizeof *g->real_names, 256) != 0) return -1;
        char *name = strndup(l->real_class_name.ptr, l->real_class_name.len);
        if (!name) {
            g->failed = 1;
            return -1;
        }
        g->real_names[g->nreal++] = (hc_graph_name){l->address, name};
        g->real_sorted = 0;
    }
    if (l->has_class && !is_root) { /* first: hc_graph_class_of */
        if (hc_graph_ref(g, l->class_address) != 0) return -1;
        g->flags[i] |= HC_NODE_CLASS_REF;
        if (l->class_address != l->address && !g->kinds[kind].class_unmarked) g->flags[i] |= HC_NODE_CLASS_EDGE;
    }
    if (l->has_references) {
        size_t pos = 0;
        uint64_t a;
        while (hc_dump_refs_next(&l->refs, &pos, &a, &g->bad_refs)) {
            if (a == g->addr[i] && !is_root) continue; /* an object holding itself holds nothing more */
            if (hc_graph_ref(g, a) != 0) return -1;
        }
    }
    g->edge_end[i] = (uint32_t)g->nrefs;
    g->n++;
    return 0;
}

/* Where node v is (or would go) in an array of count records in node order, each stride bytes that
 * begin with their node (uint32_t): the weights and the big memsizes. */
static uint32_t hc_node_pos(const void *base, size_t stride, uint32_t count, uint32_t v)
{
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, node;
        memcpy(&node, (const char *)base + (size_t)mid * stride, sizeof node);
        if (node < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

uint32_t hc_graph_weight_of(const hc_graph *g, uint32_t v)
{
    uint32_t k = hc_node_pos(g->weights, sizeof *g->weights, g->nweights, v);
    return k < g->nweights && g->weights[k].node == v ? g->weights[k].weight : 0;
}

uint64_t hc_graph_big_memsize(const hc_graph *g, uint32_t v)
{
    uint32_t k = hc_node_pos(g->bigs, sizeof *g->bigs, g->nbigs, v);
    return k < g->nbigs && g->bigs[k].node == v ? g->bigs[k].memsize : HC_GRAPH_BIG;
}

/* ---- addresses to nodes: an open-addressing table of node indices, at most 3/4 full ---- */

typedef struct {
    uint32_t *slots; /* HC_GRAPH_NONE: empty */
    size_t mask;
} hc_node_index;

static size_t hc_node_slot(uint64_t addr, size_t mask) { return (size_t)(((addr >> 3) * 0x9e3779b97f4a7c15ull) >> 20) & mask; }

static int hc_node_index_build(hc_node_index *ix, hc_graph *g)
{
    /* At most three quarters full, not half: half the memory, while the read's other tables are
     * still held; a lookup of an address the dump lacks then probes ~8 slots. */
    size_t cap = 1024;
    while (cap * 3 < (size_t)g->n * 4) cap *= 2;
    ix->slots = hc_graph_scratch(g, cap * sizeof *ix->slots);
    if (!ix->slots) return -1;
    memset(ix->slots, 0xff, cap * sizeof *ix->slots);
    ix->mask = cap - 1;
    for (uint32_t i = 0; i < g->n; i++) {
        if (g->flags[i] & HC_NODE_ROOT) continue;
        size_t j = hc_node_slot(g->addr[i], ix->mask);
        while (ix->slots[j] != HC_GRAPH_NONE && g->addr[ix->slots[j]] != g->addr[i]) j = (j + 1) & ix->mask;
        if (ix->slots[j] == HC_GRAPH_NONE) ix->slots[j] = i;
        else g->duplicate_addrs++; /* the first stays the object of that address */
    }
    return 0;
}

static uint32_t hc_node_index_get(const hc_node_index *ix, const hc_graph *g, uint64_t addr)
{
    for (size_t j = hc_node_slot(addr, ix->mask); ix->slots[j] != HC_GRAPH_NONE; j = (j + 1) & ix->mask)
        if (g->addr[ix->slots[j]] == addr) return ix->slots[j];
    return HC_GRAPH_NONE;
}

uint32_t hc_graph_find(const hc_graph *g, uint64_t addr)
{
    if (!addr) return HC_GRAPH_NONE;
    /* Not kept after analysis (8 bytes an object): a scan, for the few look-ups paths make. */
    for (uint32_t i = 0; i < g->n; i++)
        if (g->addr[i] == addr && !(g->flags[i] & HC_NODE_ROOT)) return i;
    return HC_GRAPH_NONE;
}

/* References to node indices, in place (a uint32_t where a uint64_t was), those to addresses the
 * dump lacks dropped; then the virtual root, referencing every ROOT record and every SHAPE (VM
 * records, not heap objects: held by the VM). */
static int hc_graph_resolve_refs(hc_graph *g, char *err, size_t errlen)
{
    hc_node_index ix;
    if (hc_node_index_build(&ix, g) != 0) {
        hc_errorf(err, errlen, "out of memory indexing %u objects", g->n);
        return -1;
    }
    uint32_t *out = (uint32_t *)g->refs;
    uint64_t w = 0, r = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        uint64_t class_edge = (g->flags[i] & HC_NODE_CLASS_EDGE) ? r : UINT64_MAX;
        if ((g->flags[i] & (HC_NODE_CLASS_REF | HC_NODE_CLASS_EDGE)) == HC_NODE_CLASS_REF) r++; /* a class, no edge */
        g->flags[i] &= (uint8_t)~HC_NODE_CLASS_REF;
        for (; r < g->edge_end[i]; r++) {
            uint32_t to = hc_node_index_get(&ix, g, g->refs[r]);
            if (to != HC_GRAPH_NONE) out[w++] = to;
            else if (r != class_edge) g->missing_refs++;
            else g->flags[i] &= (uint8_t)~HC_NODE_CLASS_EDGE; /* a class the dump lacks: no edge */
        }
        g->edge_end[i] = (uint32_t)w;
    }
    uint32_t roots = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        const hc_graph_kind *k = &g->kinds[g->kind[i]];
        if ((g->flags[i] & HC_NODE_ROOT) || k->shape) roots++;
    }
    uint64_t edges = w + roots;
    if (edges > UINT32_MAX) {
        hc_errorf(err, errlen, "the dump holds more than %u references: too many to analyse", UINT32_MAX);
        return -1;
    }
    /* at least one byte: 0 would free it */
    size_t bytes = edges ? edges * sizeof(uint32_t) : 1;
    void *q = hc_big_resize(g->refs, g->refs_bytes, bytes);
    if (!q) {
        hc_errorf(err, errlen, "out of memory resolving %llu references", (unsigned long long)edges);
        return -1;
    }
    g->refs = q;
    g->refs_bytes = bytes;
    out = q;
    g->root = g->n;
    for (uint32_t i = 0; i < g->n; i++) {
        const hc_graph_kind *k = &g->kinds[g->kind[i]];
        if ((g->flags[i] & HC_NODE_ROOT) || k->shape) out[w++] = i;
    }
    uint32_t rt = g->root;
    g->addr[rt] = 0;
    g->memsize[rt] = 0;
    g->site[rt] = 0;
    g->kind[rt] = 0;
    g->flags[rt] = HC_NODE_ROOT;
    g->edge_end[rt] = (uint32_t)w;
    g->n++;
    g->nrefs = w;
    return 0;
}

/* Semi-NCA's eval: the vertex of least semidominator on v's path in the linked forest (its top
 * excluded), compressing the path on the way. Iterative, by reversing the path's links going up
 * and restoring them coming down: a chain of a million objects (a linked list) must not recurse. */
static uint32_t hc_eval(uint32_t v, uint32_t *ancestor, uint32_t *label, const uint32_t *semi)
{
    if (!ancestor[v]) return v;
    uint32_t prev = 0, x = v;
    while (ancestor[ancestor[x]]) {
        uint32_t next = ancestor[x];
        ancestor[x] = prev;
        prev = x;
        x = next;
    }
    uint32_t top = x, a = ancestor[top], upper = top;
    for (uint32_t cur = prev; cur;) {
        uint32_t down = ancestor[cur];
        if (semi[label[upper]] < semi[label[cur]]) label[cur] = label[upper];
        ancestor[cur] = a;
        upper = cur;
        cur = down;
    }
    return label[v];
}

/* Depth-first numbering from the root: dfn by node (1-based, 0: not reached), vertex and parent
 * by number; stack and next are the walk's (a stack of nodes, each number's next edge). The count. */
static uint32_t hc_graph_dfs(const hc_graph *g, uint32_t *dfn, uint32_t *vertex, uint32_t *parent, uint32_t *stack,
                             uint32_t *next)
{
    const uint32_t *edges = (const uint32_t *)g->refs;
    uint32_t rt = g->root, count = 0, sp = 0;
    dfn[rt] = ++count;
    vertex[count] = rt;
    parent[count] = 0;
    next[count] = rt ? g->edge_end[rt - 1] : 0;
    stack[sp++] = rt;
    while (sp) {
        uint32_t v = stack[sp - 1], dv = dfn[v];
        if (next[dv] < g->edge_end[v]) {
            uint32_t w = edges[next[dv]++];
            if (dfn[w]) continue;
            dfn[w] = ++count;
            vertex[count] = w;
            parent[count] = dv;
            next[count] = w ? g->edge_end[w - 1] : 0;
            stack[sp++] = w;
        } else {
            sp--;
        }
    }
    return count;
}

/* The reached nodes' predecessors, by number, into preds (a place for each reference): those of
 * number w are preds[pred_end[w - 1] .. pred_end[w]) (pred_end: count + 2 entries, zeroed). */
static void hc_graph_preds(const hc_graph *g, const uint32_t *dfn, uint32_t count, uint32_t *pred_end, uint32_t *preds)
{
    const uint32_t *edges = (const uint32_t *)g->refs;
    for (uint32_t i = 0; i < g->n; i++) {
        if (!dfn[i]) continue;
        for (uint32_t e = i ? g->edge_end[i - 1] : 0; e < g->edge_end[i]; e++) pred_end[dfn[edges[e]] + 1]++;
    }
    for (uint32_t w = 0; w <= count; w++) pred_end[w + 1] += pred_end[w];
    /* pred_end[w] is where w's predecessors begin; filled, it becomes where they end */
    for (uint32_t i = 0; i < g->n; i++) {
        if (!dfn[i]) continue;
        for (uint32_t e = i ? g->edge_end[i - 1] : 0; e < g->edge_end[i]; e++) preds[pred_end[dfn[edges[e]]]++] = dfn[i];
    }
}

int hc_graph_resolve(hc_graph *g, char *err, size_t errlen)
{
    if (g->failed) {
        hc_errorf(err, errlen, "%s reading the dump's graph (%u objects, %llu references)", g->why ? g->why : "out of memory",
                  g->n, (unsigned long long)g->nrefs);
        return -1;
    }
    if (g->resolved) return 0;
    if (hc_graph_reserve_nodes(g, g->n + 1) != 0) { /* the virtual root's place, even in an empty graph */
        hc_errorf(err, errlen, "out of memory analysing %u objects", g->n);
        return -1;
    }
    if (hc_graph_resolve_refs(g, err, errlen) != 0) {
        g->failed = 1; /* its references may be half rewritten: never resolved again */
        return -1;
    }
    g->resolved = 1;
    return 0;
}

int hc_graph_analyze(hc_graph *g, hc_graph_own_fn own, void *own_arg, char *err, size_t errlen)
{
    if (g->analysed) return 0;
    if (hc_graph_resolve(g, err, errlen) != 0) return -1;
    /* The temporaries share the graph's scratch block, which shrinks as stages end; the results are
     * made last. The peak is the semidominator stage's: 24 bytes a node and 4 a reference above the
     * graph. Laid out by (n + 2)-entry arrays: vertex, parent, semi, label, dfn (then ancestor),
     * pred_end, then the predecessors. */
    uint32_t n = g->n;
    size_t a = (size_t)n + 2;
    uint64_t m = g->nrefs;
    uint32_t *work = hc_graph_scratch(g, (6 * a + (size_t)m + 1) * sizeof *work);
    if (!work) goto oom;
    uint32_t *vertex = work, *parent = work + a, *semi = work + 2 * a, *label = work + 3 * a, *dfn = work + 4 * a;
    uint32_t *pred_end = work + 5 * a, *preds = work + 6 * a, *ancestor = dfn;
    memset(dfn, 0, (size_t)n * sizeof *dfn);
    memset(pred_end, 0, a * sizeof *pred_end);
    uint32_t count = hc_graph_dfs(g, dfn, vertex, parent, label, semi);
    for (uint32_t i = 0; i < n; i++)
        if (dfn[i]) g->flags[i] |= HC_NODE_REACHED;
    hc_graph_preds(g, dfn, count, pred_end, preds);
    for (uint32_t i = 1; i <= count; i++) { /* dfn is done with: ancestor takes its place */
        semi[i] = label[i] = i;
        ancestor[i] = 0;
    }
    /* semidominators, in reverse preorder */
    for (uint32_t w = count; w >= 2; w--) {
        for (uint32_t k = pred_end[w - 1]; k < pred_end[w]; k++) {
            uint32_t u = hc_eval(preds[k], ancestor, label, semi);
            if (semi[u] < semi[w]) semi[w] = semi[u];
        }
        ancestor[w] = parent[w];
    }
    /* immediate dominators: the nearest common ancestor step, parent becoming idom */
    uint32_t *idom = parent;
    for (uint32_t w = 2; w <= count; w++)
        while (idom[w] > semi[w]) idom[w] = idom[idom[w]];
    work = hc_graph_scratch(g, 2 * a * sizeof *work); /* vertex and idom kept */
    vertex = work;
    idom = work + a;
    g->idom = malloc((size_t)n * sizeof *g->idom);
    if (!g->idom) goto oom;
    memset(g->idom, 0xff, (size_t)n * sizeof *g->idom);
    for (uint32_t w = 2; w <= count; w++) g->idom[vertex[w]] = vertex[idom[w]];
    g->retained = malloc((size_t)n * sizeof *g->retained);
    g->retained_count = malloc((size_t)n * sizeof *g->retained_count);
    if (!g->retained || !g->retained_count) goto oom;
    for (uint32_t i = 0; i < n; i++) {
        int reached = (g->flags[i] & HC_NODE_REACHED) != 0;
        g->retained[i] = reached ? hc_graph_memsize(g, i) : 0;
        g->retained_count[i] = reached && !(g->flags[i] & HC_NODE_ROOT) ? 1 : 0;
    }
    /* heapcapture's own, and what it alone retains (preorder: a dominator before what it dominates) */
    if (own) {
        for (uint32_t w = 2; w <= count; w++) {
            uint32_t v = vertex[w];
            if ((g->flags[g->idom[v]] & HC_NODE_OWN) || own(own_arg, g, v)) g->flags[v] |= HC_NODE_OWN;
        }
        for (uint32_t v = 0; v < n; v++) /* its garbage too */
            if (!(g->flags[v] & (HC_NODE_REACHED | HC_NODE_ROOT)) && own(own_arg, g, v)) g->flags[v] |= HC_NODE_OWN;
    }
    /* retained sizes: each vertex into its dominator, deepest first */
    for (uint32_t w = count; w >= 2; w--) {
        uint32_t v = vertex[w], d = g->idom[v];
        g->retained[d] += g->retained[v];
        g->retained_count[d] += g->retained_count[v];
    }
    g->reached = count;
    g->analysed = 1;
    return 0;
oom:
    hc_graph_scratch(g, 0);
    free(g->idom);
    free(g->retained);
    free(g->retained_count);
    g->idom = NULL;
    g->retained = NULL;
    g->retained_count = NULL;
    hc_errorf(err, errlen, "out of memory analysing %u objects", n);
    return -1;
}

uint32_t *hc_graph_dominated(hc_graph *g)
{
    uint32_t n = g->n;
    uint32_t *first = hc_graph_scratch(g, (2 * (size_t)n + 1) * sizeof *first), *kids = first + n + 1;
    if (!first) return NULL;
    memset(first, 0, ((size_t)n + 1) * sizeof *first);
    for (uint32_t v = 0; v < n; v++)
        if (g->idom[v] != HC_GRAPH_NONE) first[g->idom[v] + 1]++;
    for (uint32_t v = 0; v < n; v++) first[v + 1] += first[v];
    for (uint32_t v = 0; v < n; v++) /* first[v] begins v's children; filled, it is where they end */
        if (g->idom[v] != HC_GRAPH_NONE) kids[first[g->idom[v]]++] = v;
    return first;
}

int hc_graph_bfs(hc_graph *g, char *err, size_t errlen)
{
    if (g->bfs_parent) return 0;
    uint32_t n = g->n, rt = g->root;
    uint32_t *queue = hc_graph_scratch(g, (size_t)n * sizeof *queue);
    g->bfs_parent = malloc((size_t)n * sizeof *g->bfs_parent);
    if (!queue || !g->bfs_parent) {
        free(g->bfs_parent);
        g->bfs_parent = NULL;
        hc_errorf(err, errlen, "out of memory finding paths among %u objects", n);
        return -1;
    }
    memset(g->bfs_parent, 0xff, (size_t)n * sizeof *g->bfs_parent);
    uint32_t head = 0, tail = 0;
    queue[tail++] = rt;
    g->bfs_parent[rt] = rt;
    while (head < tail) {
        uint32_t v = queue[head++], k;
        const uint32_t *out = hc_graph_edges(g, v, &k);
        for (uint32_t e = 0; e < k; e++) {
            if (g->bfs_parent[out[e]] != HC_GRAPH_NONE) continue;
            g->bfs_parent[out[e]] = v;
            queue[tail++] = out[e];
        }
    }
    return 0;
}

static int hc_by_addr(const void *a, const void *b)
{
    uint64_t x = ((const hc_graph_name *)a)->addr, y = ((const hc_graph_name *)b)->addr;
    return (x > y) - (x < y);
}

void hc_graph_sort_names(hc_graph *g)
{
    if (!g->real_sorted && g->nreal) qsort(g->real_names, g->nreal, sizeof *g->real_names, hc_by_addr);
    g->real_sorted = 1;
}

const char *hc_graph_real_class_name(const hc_graph *g, uint64_t addr)
{
    uint32_t lo = 0, hi = g->real_sorted ? g->nreal : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->real_names[mid].addr < addr) lo = mid + 1;
        else hi = mid;
    }
    return lo < g->nreal && g->real_sorted && g->real_names[lo].addr == addr ? g->real_names[lo].name : NULL;
}

uint32_t hc_graph_path(const hc_graph *g, uint32_t node, uint32_t *out, uint32_t cap)
{
    if (!g->bfs_parent || node >= g->n || g->bfs_parent[node] == HC_GRAPH_NONE || node == g->root) return 0;
    uint32_t len = 0;
    for (uint32_t v = node; v != g->root; v = g->bfs_parent[v]) len++;
    uint32_t k = len;
    for (uint32_t v = node; v != g->root; v = g->bfs_parent[v]) {
        k--;
        if (k < cap) out[k] = v;
    }
    return len;
}
