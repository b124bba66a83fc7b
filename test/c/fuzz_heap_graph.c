/* libFuzzer: heap_graph.c and heap_retention.c on any bytes (seeded with pieces of real dump_all
 * output, rakelib/fuzz.rake). The lines go through a summary that feeds the graph, as `heapcapture
 * report` reads a dump; then the retention analysis, its JSON and paths. Checked: the JSON is one
 * JSON object; every reached node's dominator chain ends at the root; retained sizes add up; each
 * path is made of edges, is as short as breadth first allows, and passes through every dominator
 * of its node; and, for small graphs, each idom is the one the slow obvious computation gives (the
 * nearest node whose removal cuts the node off the root). */
#include "heap_graph.h"
#include "heap_retention.h"
#include "heap_scan.h"
#include "heap_summary.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAIVE_MAX 256 /* nodes: the slow check's size */

static int is_json_object(const char *json)
{
    hc_dump_line l;
    return json && hc_dump_scan_line(json, strlen(json), &l) == 0;
}

static int has_edge(const hc_graph *g, uint32_t from, uint32_t to)
{
    uint32_t k;
    const uint32_t *e = hc_graph_edges(g, from, &k);
    for (uint32_t i = 0; i < k; i++)
        if (e[i] == to) return 1;
    return 0;
}

/* Breadth first from the root without node skip: seen[v] set for what it reaches. */
static void reach_without(const hc_graph *g, uint32_t skip, uint8_t *seen, uint32_t *queue)
{
    uint32_t head = 0, tail = 0;
    memset(seen, 0, g->n);
    seen[g->root] = 1;
    queue[tail++] = g->root;
    while (head < tail) {
        uint32_t v = queue[head++], k;
        const uint32_t *e = hc_graph_edges(g, v, &k);
        for (uint32_t i = 0; i < k; i++)
            if (e[i] != skip && !seen[e[i]]) {
                seen[e[i]] = 1;
                queue[tail++] = e[i];
            }
    }
}

/* idom of every node the slow way, compared with g's. */
static void check_naive(const hc_graph *g)
{
    uint32_t n = g->n, rt = g->root;
    static uint8_t all[NAIVE_MAX], cut[NAIVE_MAX], sdom[NAIVE_MAX][NAIVE_MAX];
    static uint32_t queue[NAIVE_MAX], ndom[NAIVE_MAX];
    reach_without(g, HC_GRAPH_NONE, all, queue);
    memset(ndom, 0, sizeof ndom);
    for (uint32_t d = 0; d < n; d++) {
        memset(sdom[d], 0, n);
        if (d == rt || !all[d]) continue;
        reach_without(g, d, cut, queue);
        for (uint32_t v = 0; v < n; v++)
            if (v != d && all[v] && !cut[v]) {
                sdom[d][v] = 1;
                ndom[v]++;
            }
    }
    for (uint32_t v = 0; v < n; v++) {
        if (!!all[v] != !!(g->flags[v] & HC_NODE_REACHED)) abort();
        uint32_t want = v == rt || !all[v] ? HC_GRAPH_NONE : rt, best = 0;
        for (uint32_t d = 0; d < n && want != HC_GRAPH_NONE; d++)
            if (sdom[d][v] && ndom[d] + 1 > best) {
                best = ndom[d] + 1;
                want = d;
            }
        if (g->idom[v] != want) abort();
    }
}

static void check_graph(const hc_graph *g)
{
    uint32_t n = g->n, rt = g->root;
    if (!g->analysed || rt != n - 1 || !(g->flags[rt] & HC_NODE_ROOT) || g->idom[rt] != HC_GRAPH_NONE) abort();
    uint64_t memsize = 0;
    uint32_t objects = 0, reached = 0;
    uint32_t *path = malloc((size_t)n * sizeof *path);
    if (!path) return;
    for (uint32_t v = 0; v < n; v++) {
        int r = (g->flags[v] & HC_NODE_REACHED) != 0;
        reached += r;
        if (r != (g->bfs_parent[v] != HC_GRAPH_NONE)) abort(); /* breadth and depth first agree on reach */
        if (!r) {
            if (g->idom[v] != HC_GRAPH_NONE || g->retained[v] || g->retained_count[v] || hc_graph_path(g, v, path, n)) abort();
            continue;
        }
        memsize += hc_graph_memsize(g, v); /* a ROOT record's too, if its line has one (dump_all's have none) */
        if (!(g->flags[v] & HC_NODE_ROOT)) {
            objects++;
            if (g->retained_count[v] < 1) abort();
        }
        if (v == rt) continue;
        /* the dominator chain: reached nodes, up to the root */
        uint32_t steps = 0;
        for (uint32_t d = g->idom[v]; d != rt; d = g->idom[d])
            if (d == HC_GRAPH_NONE || !(g->flags[d] & HC_NODE_REACHED) || ++steps > n) abort();
        /* the path: edges from the root, v last, every dominator of v on it */
        uint32_t len = hc_graph_path(g, v, path, n);
        if (len == 0 || len > n || path[len - 1] != v || !has_edge(g, rt, path[0])) abort();
        for (uint32_t i = 1; i < len; i++)
            if (!has_edge(g, path[i - 1], path[i])) abort();
        for (uint32_t d = g->idom[v]; d != rt; d = g->idom[d]) {
            uint32_t i = 0;
            while (i < len && path[i] != d) i++;
            if (i == len) abort();
        }
        /* shortest: no edge skips ahead of breadth first's distance */
        uint32_t k;
        const uint32_t *e = hc_graph_edges(g, v, &k);
        for (uint32_t i = 0; i < k; i++)
            if (hc_graph_path(g, e[i], NULL, 0) > len + 1) abort();
    }
    if (reached != g->reached || g->retained[rt] != memsize || g->retained_count[rt] != objects) abort();
    free(path);
    if (n <= NAIVE_MAX) check_naive(g);
}

/* klass: the nodes' class addresses, kept before the analysis dropped them (nklass of them). */
static void check_paths(hc_retention *r, const hc_graph *g, const hc_summary *s, const uint64_t *klass, uint32_t nklass)
{
    char err[512];
    hc_path_query q;
    for (uint32_t i = 0; i < 3 && i < g->n; i++) {
        uint32_t v = i == 0 ? 0 : i == 1 ? g->n / 2 : g->n - 2;
        memset(&q, 0, sizeof q);
        q.address = g->addr[v];
        if (!q.address) continue;
        char *json = hc_retention_paths_json(r, &q, err, sizeof err);
        uint32_t found = hc_graph_find(g, q.address);
        if (found == HC_GRAPH_NONE || found > v) abort();
        /* paths for a reached object; an error for garbage */
        if (!!json != !!(g->flags[found] & HC_NODE_REACHED)) abort();
        if (json) {
            char *wrapped = malloc(strlen(json) + 8);
            if (wrapped) {
                sprintf(wrapped, "{\"p\":%s}", json);
                if (!is_json_object(wrapped)) abort();
                free(wrapped);
            }
            free(json);
        }
        /* by the class of that object, and by its site */
        const char *cls = v < nklass ? hc_summary_class_name(s, klass[v]) : NULL;
        if (cls) {
            memset(&q, 0, sizeof q);
            q.class_name = cls;
            q.all = 3;
            free(hc_retention_paths_json(r, &q, err, sizeof err));
        }
        if (g->site[v] && g->site[v] <= s->sites.count) {
            for (size_t j = 0; j < s->sites.cap; j++) {
                const hc_tally_slot *slot = hc_tally_at(&s->sites, j);
                if (!slot || slot->id + 1 != g->site[v]) continue;
                memset(&q, 0, sizeof q);
                q.file = slot->name;
                q.line = slot->line;
                q.all = 2;
                char *json2 = hc_retention_paths_json(r, &q, err, sizeof err);
                if (!json2 && (g->flags[v] & HC_NODE_REACHED)) abort(); /* a reached object of that site */
                free(json2);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hc_summary s;
    hc_graph g;
    hc_summary_init(&s);
    hc_graph_init(&g);
    s.graph = &g;
    int rc = hc_summary_write(&s, data, size);
    if (rc == 0) rc = hc_summary_finish(&s);
    /* an empty graph (no object, no ROOT record) too: the virtual root alone */
    if (rc == 0 && !s.failed && !g.failed) {
        char err[512];
        uint32_t nklass = g.n;
        uint64_t *klass = malloc((nklass ? nklass : 1) * sizeof *klass);
        if (!klass) abort();
        for (uint32_t v = 0; v < nklass; v++) klass[v] = hc_graph_class_of(&g, v);
        hc_retention *r = hc_retention_new(&g, &s, err, sizeof err);
        if (!r) abort(); /* only out of memory, or a graph past its limits (g.failed) */
        if (!g.resolved) abort();
        for (uint32_t v = 0; v < g.n; v++)
            if (g.flags[v] & HC_NODE_CLASS_REF) abort(); /* resolved: no class is a reference any more but an edge */
        char *json = hc_retention_json(r, 5, (size % 7) / 10.0, (size % 5) / 100.0);
        if (!is_json_object(json)) abort();
        free(json);
        check_graph(&g);
        check_paths(r, &g, &s, klass, nklass);
        free(klass);
        hc_retention_free(r);
    }
    hc_summary_free(&s);
    hc_graph_free(&g);
    return 0;
}
