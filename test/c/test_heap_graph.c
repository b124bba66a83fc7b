/* heap_graph.c: hand-made dumps with known dominators, retained sizes and shortest paths (a chain,
 * a diamond, cycles, several roots, self references, garbage, a reference held twice, references
 * to objects the dump lacks, class edges and the classes the GC does not mark, SHAPEs, duplicate
 * addresses, entries that are no address, heapcapture's own objects, the kinds limit, a chain of a
 * million objects, a dump of ROOT records only, an empty one); then random graphs (10,000 small,
 * 200 larger, the same seed each run) checked against a slow obvious computation: a node's strict
 * dominators are the nodes whose removal cuts it off the root, its idom the nearest of them; its
 * retained size the memsize of what it dominates; its path as long as breadth first's distance. */
#define _GNU_SOURCE /* vasprintf */
#include "heap_graph.h"
#include "hc_test.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NONE HC_GRAPH_NONE

/* One dump line scanned and added; 0, or -1 (said why in err). */
static int add_line(hc_graph *g, const char *line, char *err, size_t errlen)
{
    hc_dump_line l;
    if (hc_dump_scan_line(line, strlen(line), &l) != 0) {
        snprintf(err, errlen, "not one JSON object: %s", line);
        return -1;
    }
    if (hc_graph_add(g, &l, 0) != 0) {
        snprintf(err, errlen, "hc_graph_add failed: %s", line);
        return -1;
    }
    return 0;
}

/* g made of lines (each one a node, in order), analysed and its shortest paths found. */
static int build(hc_graph *g, const char *const *lines, size_t n, char *err, size_t errlen)
{
    hc_graph_init(g);
    for (size_t i = 0; i < n; i++)
        if (add_line(g, lines[i], err, errlen) != 0) return -1;
    if (hc_graph_analyze(g, NULL, NULL, err, errlen) != 0) return -1;
    return hc_graph_bfs(g, err, errlen);
}

#define BUILD(g, lines) build((g), (lines), sizeof(lines) / sizeof *(lines), err, sizeof err)

static uint32_t plen(const hc_graph *g, uint32_t v) { return hc_graph_path(g, v, NULL, 0); }

/* The path to v is exactly want[0..n) (root record first). */
static int path_is(const hc_graph *g, uint32_t v, const uint32_t *want, uint32_t n)
{
    uint32_t got[64];
    uint32_t len = hc_graph_path(g, v, got, 64);
    if (len != n) return 0;
    for (uint32_t i = 0; i < n; i++)
        if (got[i] != want[i]) return 0;
    return 1;
}

#define PATH_IS(g, v, ...) path_is((g), (v), (const uint32_t[]){__VA_ARGS__}, \
                                   sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))

static uint32_t edge_count(const hc_graph *g, uint32_t v)
{
    uint32_t k;
    hc_graph_edges(g, v, &k);
    return k;
}

/* ROOT(vm) -> 0x10 -> 0x20 -> 0x30 */
static void test_chain(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\"]}",
        "{\"address\":\"0x10\", \"type\":\"OBJECT\", \"memsize\":40, \"references\":[\"0x20\"]}",
        "{\"address\":\"0x20\", \"type\":\"ARRAY\", \"memsize\":80, \"references\":[\"0x30\"]}",
        "{\"address\":\"0x30\", \"type\":\"STRING\", \"memsize\":100}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "chain: %s", err);
    HC_CHECK(g.n == 5 && g.root == 4 && g.reached == 5 && g.analysed, "n %u root %u reached %u", g.n, g.root, g.reached);
    for (uint32_t i = 0; i < g.n; i++) HC_CHECK(g.flags[i] & HC_NODE_REACHED, "node %u reached", i);
    HC_CHECK((g.flags[0] & HC_NODE_ROOT) && (g.flags[4] & HC_NODE_ROOT) && !(g.flags[1] & HC_NODE_ROOT), "root flags");
    HC_CHECK(g.idom[4] == NONE && g.idom[0] == 4 && g.idom[1] == 0 && g.idom[2] == 1 && g.idom[3] == 2,
             "idom %u %u %u %u %u", g.idom[0], g.idom[1], g.idom[2], g.idom[3], g.idom[4]);
    HC_CHECK(g.retained[3] == 100 && g.retained_count[3] == 1, "0x30: %" PRIu64, g.retained[3]);
    HC_CHECK(g.retained[2] == 180 && g.retained_count[2] == 2, "0x20: %" PRIu64, g.retained[2]);
    HC_CHECK(g.retained[1] == 220 && g.retained_count[1] == 3, "0x10: %" PRIu64, g.retained[1]);
    HC_CHECK(g.retained[0] == 220 && g.retained_count[0] == 3, "the ROOT record: %" PRIu64 " %u", g.retained[0],
             g.retained_count[0]);
    HC_CHECK(g.retained[4] == 220 && g.retained_count[4] == 3, "the virtual root: %" PRIu64, g.retained[4]);
    HC_CHECK(g.missing_refs == 0 && g.bad_refs == 0 && g.duplicate_addrs == 0, "no missing references");
    HC_CHECK(hc_graph_find(&g, 0x20) == 2 && hc_graph_find(&g, 0x40) == NONE && hc_graph_find(&g, 0) == NONE, "find");
    HC_CHECK(plen(&g, 0) == 1 && plen(&g, 1) == 2 && plen(&g, 3) == 4 && plen(&g, 4) == 0, "path lengths");
    HC_CHECK(PATH_IS(&g, 3, 0, 1, 2, 3), "the path to 0x30");
    uint32_t cut[2] = {NONE, NONE};
    HC_CHECK(hc_graph_path(&g, 3, cut, 2) == 4 && cut[0] == 0 && cut[1] == 1, "a path cut to 2: its first hops");
    HC_CHECK(hc_graph_path(&g, 99, cut, 2) == 0, "no such node");
    uint32_t k;
    const uint32_t *e = hc_graph_edges(&g, 4, &k);
    HC_CHECK(k == 1 && e[0] == 0, "the virtual root references the ROOT record");
    hc_graph_free(&g);
}

/* A -> B, C; B -> D; C -> D: D dominated by A */
static void test_diamond(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"memsize\":10, \"references\":[\"0xb\", \"0xc\"]}",
        "{\"address\":\"0xb\", \"memsize\":20, \"references\":[\"0xd\"]}",
        "{\"address\":\"0xc\", \"memsize\":30, \"references\":[\"0xd\"]}",
        "{\"address\":\"0xd\", \"memsize\":40}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "diamond: %s", err);
    HC_CHECK(g.idom[1] == 0 && g.idom[2] == 1 && g.idom[3] == 1 && g.idom[4] == 1, "idom of D: %u", g.idom[4]);
    HC_CHECK(g.retained[1] == 100 && g.retained_count[1] == 4, "A retains all: %" PRIu64, g.retained[1]);
    HC_CHECK(g.retained[2] == 20 && g.retained_count[2] == 1 && g.retained[3] == 30 && g.retained[4] == 40,
             "B, C, D retain themselves");
    HC_CHECK(PATH_IS(&g, 4, 0, 1, 2, 4), "D by way of B, the first reference");
    hc_graph_free(&g);
}

static void test_cycles(void)
{
    /* A -> B -> C -> A (back), C -> D -> B (cross): a chain of dominators */
    static const char *const loop[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"memsize\":1, \"references\":[\"0xb\"]}",
        "{\"address\":\"0xb\", \"memsize\":2, \"references\":[\"0xc\"]}",
        "{\"address\":\"0xc\", \"memsize\":4, \"references\":[\"0xa\", \"0xd\"]}",
        "{\"address\":\"0xd\", \"memsize\":8, \"references\":[\"0xb\"]}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, loop) == 0, "loop: %s", err);
    HC_CHECK(g.idom[1] == 0 && g.idom[2] == 1 && g.idom[3] == 2 && g.idom[4] == 3, "idoms %u %u %u %u", g.idom[1],
             g.idom[2], g.idom[3], g.idom[4]);
    HC_CHECK(g.retained[1] == 15 && g.retained[2] == 14 && g.retained[3] == 12 && g.retained[4] == 8, "retained");
    HC_CHECK(plen(&g, 4) == 5, "D: %u", plen(&g, 4));
    hc_graph_free(&g);

    /* A -> B, C; B <-> C: a cycle entered at two points, neither dominating the other */
    static const char *const two[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"memsize\":1, \"references\":[\"0xb\", \"0xc\"]}",
        "{\"address\":\"0xb\", \"memsize\":2, \"references\":[\"0xc\"]}",
        "{\"address\":\"0xc\", \"memsize\":4, \"references\":[\"0xb\"]}",
    };
    HC_CHECK(BUILD(&g, two) == 0, "two entries: %s", err);
    HC_CHECK(g.idom[2] == 1 && g.idom[3] == 1, "B and C by A: %u %u", g.idom[2], g.idom[3]);
    HC_CHECK(g.retained[2] == 2 && g.retained[3] == 4 && g.retained[1] == 7, "retained");
    HC_CHECK(plen(&g, 2) == 3 && plen(&g, 3) == 3, "both one hop from A");
    hc_graph_free(&g);

    /* A classic where semidominators differ from idoms: R -> A, B; A -> C; B -> C, D; C -> E; D -> E; E -> C */
    static const char *const lt[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x1\"]}",
        "{\"address\":\"0x1\", \"memsize\":1, \"references\":[\"0xa\", \"0xb\"]}",
        "{\"address\":\"0xa\", \"memsize\":2, \"references\":[\"0xc\"]}",
        "{\"address\":\"0xb\", \"memsize\":4, \"references\":[\"0xc\", \"0xd\"]}",
        "{\"address\":\"0xc\", \"memsize\":8, \"references\":[\"0xe\"]}",
        "{\"address\":\"0xd\", \"memsize\":16, \"references\":[\"0xe\"]}",
        "{\"address\":\"0xe\", \"memsize\":32, \"references\":[\"0xc\"]}",
    };
    HC_CHECK(BUILD(&g, lt) == 0, "lt: %s", err);
    HC_CHECK(g.idom[2] == 1 && g.idom[3] == 1 && g.idom[4] == 1 && g.idom[5] == 3 && g.idom[6] == 1,
             "idoms %u %u %u %u %u", g.idom[2], g.idom[3], g.idom[4], g.idom[5], g.idom[6]);
    HC_CHECK(g.retained[3] == 20 && g.retained[1] == 63, "B retains B and D: %" PRIu64, g.retained[3]);
    hc_graph_free(&g);
}

/* Two ROOT records reaching the same object: only the virtual root dominates it. */
static void test_several_roots(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\", \"0x20\"]}",
        "{\"type\":\"ROOT\", \"root\":\"global_tbl\", \"references\":[\"0x10\"]}",
        "{\"address\":\"0x10\", \"memsize\":10, \"references\":[\"0x30\"]}",
        "{\"address\":\"0x20\", \"memsize\":20}",
        "{\"address\":\"0x30\", \"memsize\":30}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "roots: %s", err);
    HC_CHECK(g.root == 5 && g.idom[0] == 5 && g.idom[1] == 5, "ROOT records under the virtual root");
    HC_CHECK(g.idom[2] == 5, "0x10, held by two ROOT records: the virtual root's (%u)", g.idom[2]);
    HC_CHECK(g.idom[3] == 0 && g.idom[4] == 2, "0x20 by vm, 0x30 by 0x10");
    HC_CHECK(g.retained[0] == 20 && g.retained_count[0] == 1, "vm retains 0x20 alone: %" PRIu64, g.retained[0]);
    HC_CHECK(g.retained[1] == 0 && g.retained_count[1] == 0, "global_tbl retains nothing alone");
    HC_CHECK(g.retained[5] == 60 && g.retained_count[5] == 3, "the virtual root: everything");
    HC_CHECK(PATH_IS(&g, 4, 0, 2, 4), "0x30 by way of the first ROOT record");
    HC_CHECK(strcmp(g.kinds[g.kind[1]].type, "ROOT") == 0 && g.kinds[g.kind[1]].sub &&
             strcmp(g.kinds[g.kind[1]].sub, "global_tbl") == 0, "a ROOT record's kind");
    hc_graph_free(&g);
}

static void test_self_references(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"memsize\":8, \"class\":\"0xa\", \"references\":[\"0xa\", \"0xb\", \"0xa\"]}",
        "{\"address\":\"0xb\", \"memsize\":16, \"references\":[\"0xb\"]}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "self: %s", err);
    HC_CHECK(edge_count(&g, 1) == 1 && edge_count(&g, 2) == 0, "self references dropped: %u %u", edge_count(&g, 1),
             edge_count(&g, 2));
    HC_CHECK(!(g.flags[1] & HC_NODE_CLASS_EDGE), "its own class: no class edge");
    HC_CHECK(g.idom[2] == 1 && g.retained[1] == 24 && g.retained_count[1] == 2 && g.missing_refs == 0, "retained");
    hc_graph_free(&g);
}

/* Memsizes of 4 GiB and more (kept apart from the 4-byte ones): read back whole, summed whole. */
static void test_big_memsize(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"type\":\"ARRAY\", \"memsize\":40, \"references\":[\"0xb\", \"0xc\", \"0xd\"]}",
        "{\"address\":\"0xb\", \"type\":\"STRING\", \"memsize\":5000000000}",
        "{\"address\":\"0xc\", \"type\":\"STRING\", \"memsize\":4294967295}",
        "{\"address\":\"0xd\", \"type\":\"STRING\", \"memsize\":4294967294}",
        "{\"address\":\"0xe\", \"type\":\"STRING\", \"memsize\":18000000000000000000}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "big: %s", err);
    HC_CHECK(g.nbigs == 3, "three memsizes kept apart (2^32 - 1 and more): %u", g.nbigs);
    HC_CHECK(hc_graph_memsize(&g, 2) == 5000000000ull && hc_graph_memsize(&g, 3) == 4294967295ull &&
                 hc_graph_memsize(&g, 4) == 4294967294ull && hc_graph_memsize(&g, 5) == 18000000000000000000ull &&
                 hc_graph_memsize(&g, 1) == 40,
             "each read back whole: %" PRIu64 " %" PRIu64 " %" PRIu64, hc_graph_memsize(&g, 2), hc_graph_memsize(&g, 3),
             hc_graph_memsize(&g, 4));
    HC_CHECK(g.retained[1] == 40ull + 5000000000ull + 4294967295ull + 4294967294ull && g.retained_count[1] == 4,
             "the Array retains them whole: %" PRIu64, g.retained[1]);
    HC_CHECK(g.retained[5] == 0 && !(g.flags[5] & HC_NODE_REACHED), "the unreached one: garbage");
    hc_graph_free(&g);
}

/* An unreachable cycle (and a self-held object): garbage, dominated by nothing, retaining nothing. */
static void test_garbage(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"memsize\":10}",
        "{\"address\":\"0x1\", \"memsize\":100, \"references\":[\"0x2\"]}",
        "{\"address\":\"0x2\", \"memsize\":200, \"references\":[\"0x1\", \"0xa\"]}",
        "{\"address\":\"0x3\", \"memsize\":5, \"references\":[\"0x3\"]}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "garbage: %s", err);
    HC_CHECK(g.reached == 3, "root, ROOT record, 0xa: %u", g.reached);
    for (uint32_t v = 2; v <= 4; v++) {
        HC_CHECK(!(g.flags[v] & HC_NODE_REACHED) && g.idom[v] == NONE && g.retained[v] == 0 && g.retained_count[v] == 0,
                 "node %u is garbage", v);
        HC_CHECK(plen(&g, v) == 0, "no path to garbage %u", v);
    }
    HC_CHECK(g.idom[1] == 0, "a reference from garbage does not count: %u", g.idom[1]);
    HC_CHECK(g.retained[g.root] == 10 && g.retained_count[g.root] == 1, "the root retains the live object only");
    hc_graph_free(&g);
}

static void test_held_twice(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\", \"0xa\"]}",
        "{\"address\":\"0xa\", \"memsize\":1, \"references\":[\"0xb\", \"0xb\"]}",
        "{\"address\":\"0xb\", \"memsize\":2, \"references\":[\"0xc\"]}",
        "{\"address\":\"0xc\", \"memsize\":4}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "twice: %s", err);
    HC_CHECK(edge_count(&g, 0) == 2 && edge_count(&g, 1) == 2, "both references kept");
    HC_CHECK(g.idom[1] == 0 && g.idom[2] == 1 && g.idom[3] == 2, "held twice by one parent: still its dominator");
    HC_CHECK(g.retained[1] == 7 && g.retained_count[1] == 3 && g.retained[0] == 7, "counted once: %" PRIu64, g.retained[1]);
    HC_CHECK(PATH_IS(&g, 3, 0, 1, 2, 3), "path");
    hc_graph_free(&g);
}

/* References to objects the dump lacks: dropped and counted (a missing class is not counted). */
static void test_missing(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x999\", \"0xa\"]}",
        "{\"address\":\"0xa\", \"class\":\"0x998\", \"memsize\":1, \"references\":[\"0x997\", \"0xb\"]}",
        "{\"address\":\"0xb\", \"memsize\":2}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "missing: %s", err);
    HC_CHECK(g.missing_refs == 2, "0x999 and 0x997: %" PRIu64, g.missing_refs);
    uint32_t k;
    const uint32_t *e = hc_graph_edges(&g, 1, &k);
    HC_CHECK(k == 1 && e[0] == 2, "0xa's one resolved reference: 0xb");
    /* heap_graph.h: HC_NODE_CLASS_EDGE "its first reference is its class": 0xa's class is not in the
     * dump, so its first reference is 0xb, not its class. */
    HC_CHECK(!(g.flags[1] & HC_NODE_CLASS_EDGE), "a class the dump lacks: no class edge, yet the flag says its "
             "first reference (0xb) is its class");
    HC_CHECK(g.idom[2] == 1 && g.retained[1] == 3, "retained");
    hc_graph_free(&g);
}

/* The address index nearly as full as it gets: 3,071 objects in 4,096 slots (the ROOT, the 3,072nd
 * node, is not indexed; one object more and it doubles), addresses 40 bytes apart as in a Ruby heap: each object's reference to the next found, each to an address
 * the dump lacks (the longest probes) missed, the chain retained from its head. */
static void test_full_index(void)
{
    enum { N = 3071 };
    const uint64_t base = 0x7f3a12340000ull;
    hc_graph g;
    char err[256] = "", line[200];
    hc_graph_init(&g);
    snprintf(line, sizeof line, "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x%" PRIx64 "\"]}", base);
    int ok = add_line(&g, line, err, sizeof err) == 0;
    for (uint32_t i = 0; i < N && ok; i++) {
        uint64_t at = base + 40ull * i, missing = base + 40ull * (N + i) + 8;
        if (i + 1 < N)
            snprintf(line, sizeof line, "{\"address\":\"0x%" PRIx64 "\", \"type\":\"OBJECT\", \"memsize\":2, "
                     "\"references\":[\"0x%" PRIx64 "\", \"0x%" PRIx64 "\"]}", at, missing, at + 40);
        else
            snprintf(line, sizeof line, "{\"address\":\"0x%" PRIx64 "\", \"type\":\"OBJECT\", \"memsize\":2, "
                     "\"references\":[\"0x%" PRIx64 "\"]}", at, missing);
        ok = add_line(&g, line, err, sizeof err) == 0;
    }
    HC_CHECK(ok, "the lines: %s", err);
    HC_CHECK(hc_graph_analyze(&g, NULL, NULL, err, sizeof err) == 0, "%s", err);
    HC_CHECK(g.missing_refs == N, "each object's reference to an address the dump lacks: %" PRIu64, g.missing_refs);
    HC_CHECK(g.duplicate_addrs == 0, "no duplicate");
    int next = 1;
    for (uint32_t v = 1; v < N; v++) {
        uint32_t k;
        const uint32_t *e = hc_graph_edges(&g, v, &k);
        next &= k == 1 && e[0] == v + 1;
    }
    HC_CHECK(next, "each object's one resolved reference is the next");
    HC_CHECK(g.reached == N + 2 && g.retained[1] == 2ull * N, "the head retains the chain: %" PRIu64, g.retained[1]);
    hc_graph_free(&g);
}

/* Resolved first (the report does it while its tally reads on), then analysed: as analysed at
 * once; resolving twice changes nothing. */
static void test_resolve_first(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x999\", \"0xa\"]}",
        "{\"address\":\"0xa\", \"memsize\":1, \"references\":[\"0x997\", \"0xb\"]}",
        "{\"address\":\"0xb\", \"memsize\":2}",
    };
    hc_graph g;
    hc_graph_init(&g);
    char err[256] = "";
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        HC_CHECK(add_line(&g, lines[i], err, sizeof err) == 0, "%s", err);
    HC_CHECK(hc_graph_resolve(&g, err, sizeof err) == 0 && g.resolved && !g.analysed, "resolved: %s", err);
    HC_CHECK(g.n == 4 && g.root == 3 && g.missing_refs == 2, "the virtual root added, 0x999 and 0x997 missing: n %u, "
             "missing %" PRIu64, g.n, g.missing_refs);
    uint32_t k;
    const uint32_t *e = hc_graph_edges(&g, 1, &k);
    HC_CHECK(k == 1 && e[0] == 2, "0xa's one reference: 0xb, a node");
    HC_CHECK(hc_graph_resolve(&g, err, sizeof err) == 0 && g.n == 4 && g.missing_refs == 2, "twice: nothing more");
    HC_CHECK(hc_graph_analyze(&g, NULL, NULL, err, sizeof err) == 0, "then analysed: %s", err);
    HC_CHECK(g.n == 4 && g.idom[2] == 1 && g.idom[1] == 0 && g.retained[1] == 3 && g.retained[3] == 3,
             "as analysed at once: 0xa retains itself and 0xb");
    hc_graph_free(&g);
    hc_graph_init(&g);
    g.failed = 1;
    HC_CHECK(hc_graph_resolve(&g, err, sizeof err) == -1 && strstr(err, "reading the dump's graph"),
             "a graph that failed while read: not resolved, said why: %s", err);
    hc_graph_free(&g);
}

/* An object's class, in the dump: a reference (a singleton class lives by its object). */
static void test_class_edge(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\"]}",
        "{\"address\":\"0x10\", \"type\":\"OBJECT\", \"class\":\"0xc0\", \"memsize\":40, \"references\":[\"0x30\"]}",
        "{\"address\":\"0xc0\", \"type\":\"CLASS\", \"class\":\"0xc1\", \"real_class_name\":\"Foo\", \"singleton\":true, \"memsize\":500, "
        "\"references\":[\"0x40\"]}",
        "{\"address\":\"0x30\", \"type\":\"STRING\", \"memsize\":10}",
        "{\"address\":\"0x40\", \"type\":\"IMEMO\", \"imemo_type\":\"ment\", \"memsize\":20}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "class edge: %s", err);
    HC_CHECK(g.flags[1] & HC_NODE_CLASS_EDGE, "the flag");
    uint32_t k;
    const uint32_t *e = hc_graph_edges(&g, 1, &k);
    HC_CHECK(k == 2 && e[0] == 2 && e[1] == 3, "the class first, then the references");
    HC_CHECK((g.flags[2] & HC_NODE_SINGLETON) && !(g.flags[1] & HC_NODE_SINGLETON), "singleton");
    HC_CHECK(g.idom[2] == 1 && g.idom[4] == 2, "the singleton class by its object, its method by it");
    HC_CHECK(g.retained[1] == 570 && g.retained_count[1] == 4, "the object retains its singleton class: %" PRIu64,
             g.retained[1]);
    HC_CHECK(g.missing_refs == 0, "the class's class 0xc1 is missing, not counted: %" PRIu64, g.missing_refs);
    HC_CHECK(PATH_IS(&g, 4, 0, 1, 2, 4), "a path through the class edge");
    hc_graph_sort_names(&g);
    const char *real = hc_graph_real_class_name(&g, 0xc0);
    HC_CHECK(real && strcmp(real, "Foo") == 0 && !hc_graph_real_class_name(&g, 0x10), "the singleton class's real class");
    HC_CHECK(strcmp(g.kinds[g.kind[4]].type, "IMEMO") == 0 && strcmp(g.kinds[g.kind[4]].sub, "ment") == 0, "imemo kind");
    hc_graph_free(&g);

    /* a class other roots hold too: its idom is no longer the object */
    static const char *const shared[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\"]}",
        "{\"type\":\"ROOT\", \"root\":\"global_tbl\", \"references\":[\"0xc0\"]}",
        "{\"address\":\"0x10\", \"class\":\"0xc0\", \"memsize\":40}",
        "{\"address\":\"0xc0\", \"type\":\"CLASS\", \"name\":\"Foo\", \"memsize\":500}",
    };
    HC_CHECK(BUILD(&g, shared) == 0, "shared class: %s", err);
    HC_CHECK(g.idom[3] == g.root && g.retained[2] == 40 && g.retained_count[2] == 1, "a named class held by the roots too");
    hc_graph_free(&g);
}

/* Classes the GC does not mark through the object, though dump_all writes them as "class": a
 * callcache's klass is a weak key (cleared when the class is freed), and FLOAT, BIGNUM and SYMBOL
 * return from gc_mark_children before their klass. Other IMEMOs' "class" (Ruby 3.1: their second
 * word) is marked: a constcache's cached value, a ment's defined class. (As
 * test/support/heap_graph_reference.rb has it: UNMARKED_CLASS_TYPES, UNMARKED_CLASS_IMEMOS.) */
static void test_unmarked_class_edges(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\", \"0x20\", \"0x30\", \"0x40\"]}",
        "{\"address\":\"0x10\", \"type\":\"IMEMO\", \"class\":\"0xc0\", \"imemo_type\":\"callcache\", \"memsize\":40}",
        "{\"address\":\"0xc0\", \"type\":\"CLASS\", \"singleton\":true, \"memsize\":500}",
        "{\"address\":\"0x20\", \"type\":\"FLOAT\", \"class\":\"0xf0\", \"memsize\":40}",
        "{\"address\":\"0xf0\", \"type\":\"CLASS\", \"name\":\"Float\", \"memsize\":600}",
        "{\"address\":\"0x30\", \"type\":\"IMEMO\", \"class\":\"0xd0\", \"imemo_type\":\"constcache\", \"memsize\":40}",
        "{\"address\":\"0xd0\", \"type\":\"HASH\", \"memsize\":700}",
        "{\"address\":\"0x40\", \"type\":\"IMEMO\", \"class\":\"0xe0\", \"imemo_type\":\"ment\", \"memsize\":40}",
        "{\"address\":\"0xe0\", \"type\":\"CLASS\", \"name\":\"Foo\", \"memsize\":800}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "unmarked classes: %s", err);
    HC_CHECK((g.flags[6] & HC_NODE_REACHED) && g.idom[6] == 5 && g.retained[5] == 740, "a constcache holds its value");
    HC_CHECK((g.flags[8] & HC_NODE_REACHED) && g.idom[8] == 7 && g.retained[7] == 840, "a ment its defined class");
    HC_CHECK(!(g.flags[2] & HC_NODE_REACHED) && g.retained[1] == 40,
             "a callcache does not hold its class (a weak key): reached %d, the callcache retains %" PRIu64,
             !!(g.flags[2] & HC_NODE_REACHED), g.retained[1]);
    HC_CHECK(!(g.flags[4] & HC_NODE_REACHED) && g.retained[3] == 40,
             "a FLOAT does not hold its class (gc_mark_children returns first): reached %d, the Float retains %" PRIu64,
             !!(g.flags[4] & HC_NODE_REACHED), g.retained[3]);
    hc_graph_free(&g);
}

/* ROOT records only (one of them referencing an object the dump lacks). */
static void test_only_roots(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[]}",
        "{\"type\":\"ROOT\", \"root\":\"machine_context\", \"references\":[\"0x1\"]}",
        "{\"type\":\"ROOT\", \"root\":\"global_tbl\"}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "only roots: %s", err);
    HC_CHECK(g.n == 4 && g.reached == 4 && g.missing_refs == 1, "n %u reached %u missing %" PRIu64, g.n, g.reached,
             g.missing_refs);
    for (uint32_t v = 0; v < 3; v++)
        HC_CHECK(g.idom[v] == 3 && g.retained[v] == 0 && g.retained_count[v] == 0 && plen(&g, v) == 1, "record %u", v);
    HC_CHECK(g.retained[3] == 0 && g.retained_count[3] == 0, "nothing retained");
    hc_graph_free(&g);
}

/* Runs fn in a child: 1 when it exits 0 (a crash there is a failed check here, not the end of the tests). */
static int in_child(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void analyse_empty(void)
{
    hc_graph g;
    char err[256] = "";
    hc_graph_init(&g);
    int rc = hc_graph_analyze(&g, NULL, NULL, err, sizeof err);
    if (rc == 0 && (g.n != 1 || g.reached != 1 || g.retained[g.root] != 0 || hc_graph_bfs(&g, err, sizeof err) != 0))
        _exit(2);
    hc_graph_free(&g);
}

/* A dump with no record at all (every line broken, or none): analysed, or refused with a reason. */
static void test_empty(void)
{
    HC_CHECK(in_child(analyse_empty), "hc_graph_analyze on an empty graph (no line added) crashed or failed "
             "(hc_graph_resolve writes the virtual root into g->addr, NULL while no node was added)");
}

/* Objects the roots do not reach but the VM holds: a SHAPE is the virtual root's. */
static void test_shapes_and_duplicates(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"memsize\":1}",
        "{\"address\":\"0xa\", \"memsize\":2, \"references\":[\"0xb\"]}",
        "{\"address\":\"0xb\", \"memsize\":4}",
        "{\"address\":\"0x50\", \"type\":\"SHAPE\", \"memsize\":8}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "shapes: %s", err);
    HC_CHECK(g.duplicate_addrs == 1 && hc_graph_find(&g, 0xa) == 1, "the first of an address stands");
    HC_CHECK(!(g.flags[2] & HC_NODE_REACHED) && !(g.flags[3] & HC_NODE_REACHED), "the later one, and what it alone holds: unreached");
    HC_CHECK((g.flags[4] & HC_NODE_REACHED) && g.idom[4] == g.root && plen(&g, 4) == 1, "a SHAPE, held by the VM");
    HC_CHECK(g.retained[g.root] == 9, "retained: %" PRIu64, g.retained[g.root]);
    hc_graph_free(&g);
}

/* Entries of a references list that are no address: skipped and counted (heap_scan.h). */
static void test_bad_refs(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"references\":[\"nope\", [\"0xb\"], {\"x\":1}, \"0xb\"]}",
        "{\"address\":\"0xb\"}",
    };
    hc_graph g;
    char err[256] = "";
    HC_CHECK(BUILD(&g, lines) == 0, "bad refs: %s", err);
    HC_CHECK(g.bad_refs == 3 && edge_count(&g, 1) == 1 && g.idom[2] == 1, "3 bad entries: %" PRIu64, g.bad_refs);
    hc_graph_free(&g);
    static const char *const scalars[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\"]}",
        "{\"address\":\"0xa\", \"references\":[5, null, true, \"0xb\"]}",
        "{\"address\":\"0xb\"}",
    };
    HC_CHECK(BUILD(&g, scalars) == 0, "scalar refs: %s", err);
    HC_CHECK(edge_count(&g, 1) == 1 && g.idom[2] == 1, "the address among them kept");
    /* heap_scan.h: "An entry that is not an address string is skipped and counted in *bad." */
    HC_CHECK(g.bad_refs == 3, "5, null and true are entries that are no address: bad_refs %" PRIu64 " (hc_dump_refs_next "
             "skips a number or literal without counting it)", g.bad_refs);
    hc_graph_free(&g);
}

/* More kinds than a byte holds: the graph fails, and says why. */
static void test_kinds_limit(void)
{
    hc_graph g;
    char err[256] = "", line[128];
    hc_graph_init(&g);
    int rc = 0, i;
    for (i = 0; i < 300 && rc == 0; i++) {
        snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"type\":\"T%d\"}", (i + 1) * 8, i);
        hc_dump_line l;
        hc_dump_scan_line(line, strlen(line), &l);
        rc = hc_graph_add(&g, &l, 0);
    }
    HC_CHECK(rc == -1 && i == HC_GRAPH_MAX_KINDS + 1 && g.failed, "the 256th kind refused (at %d)", i);
    HC_CHECK(hc_graph_analyze(&g, NULL, NULL, err, sizeof err) == -1, "then analysis fails");
    /* heap_graph.h, hc_graph_add: "-1 out of memory or past the graph's limits (then failed, err says which)" */
    HC_CHECK(!strstr(err, "out of memory"), "past the kinds limit, not out of memory: %s", err);
    hc_graph_free(&g);
}

/* heapcapture's own objects and what they alone retain. */
static int own_0xa(void *arg, const hc_graph *g, uint32_t v)
{
    (*(int *)arg)++;
    return g->addr[v] == 0xa;
}

static void test_own(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0xa\", \"0xc\"]}",
        "{\"address\":\"0xa\", \"references\":[\"0xb\", \"0xc\"]}",
        "{\"address\":\"0xb\", \"references\":[\"0xd\"]}",
        "{\"address\":\"0xc\"}",
        "{\"address\":\"0xd\"}",
        "{\"address\":\"0xe\"}",
    };
    hc_graph g;
    char err[256] = "";
    int calls = 0;
    hc_graph_init(&g);
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) add_line(&g, lines[i], err, sizeof err);
    HC_CHECK(hc_graph_analyze(&g, own_0xa, &calls, err, sizeof err) == 0, "own: %s", err);
    HC_CHECK((g.flags[1] & HC_NODE_OWN) && (g.flags[2] & HC_NODE_OWN) && (g.flags[4] & HC_NODE_OWN), "0xa and what it alone holds");
    HC_CHECK(!(g.flags[3] & HC_NODE_OWN) && !(g.flags[0] & HC_NODE_OWN) && !(g.flags[5] & HC_NODE_OWN), "0xc is shared; 0xe garbage");
    HC_CHECK(calls > 0 && calls <= 5, "asked about reached nodes only: %d", calls);
    HC_CHECK(hc_graph_analyze(&g, own_0xa, &calls, err, sizeof err) == 0 && g.n == 7, "analysing twice: once");
    hc_graph_free(&g);
}

/* A linked list of a million objects: no recursion (hc_eval, the walks), the deepest path. */
static void test_long_chain(void)
{
    enum { N = 1000000 };
    hc_graph g;
    char err[256] = "", line[160];
    hc_graph_init(&g);
    snprintf(line, sizeof line, "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\"]}");
    int ok = add_line(&g, line, err, sizeof err) == 0;
    for (uint32_t i = 0; i < N && ok; i++) {
        if (i + 1 < N)
            snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"type\":\"OBJECT\", \"memsize\":3, \"references\":[\"0x%x\"]}",
                     (i + 1) * 16, (i + 2) * 16);
        else
            snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"type\":\"OBJECT\", \"memsize\":3}", (i + 1) * 16);
        ok = add_line(&g, line, err, sizeof err) == 0;
    }
    HC_CHECK(ok, "a million lines: %s", err);
    HC_CHECK(hc_graph_analyze(&g, NULL, NULL, err, sizeof err) == 0 && hc_graph_bfs(&g, err, sizeof err) == 0, "%s", err);
    HC_CHECK(g.n == N + 2 && g.reached == N + 2, "all reached: %u", g.reached);
    HC_CHECK(g.retained[1] == 3ull * N && g.retained_count[1] == N, "the head retains the list: %" PRIu64, g.retained[1]);
    HC_CHECK(g.retained[N / 2] == 3ull * (N - N / 2 + 1), "the middle");
    int idoms = 1;
    for (uint32_t v = 1; v <= N; v++) idoms &= g.idom[v] == v - 1;
    HC_CHECK(idoms, "each held by the one before");
    uint32_t *path = malloc((size_t)(N + 1) * sizeof *path);
    HC_CHECK(hc_graph_path(&g, N, path, N + 1) == N + 1, "the tail's path: %u", plen(&g, N));
    int in_order = 1;
    for (uint32_t i = 0; i <= N; i++) in_order &= path[i] == i;
    HC_CHECK(in_order, "the path is the list");
    free(path);
    hc_graph_free(&g);
}

/* ---- random graphs against a slow obvious computation ---- */

#define MAXN 512

typedef struct {
    uint32_t n;                   /* nodes: the lines, then the virtual root */
    uint32_t *adj[MAXN + 1];      /* successors */
    uint32_t deg[MAXN + 1];
    uint64_t memsize[MAXN + 1];
    int object[MAXN + 1];
    int own[MAXN + 1];
    uint64_t missing;
} naive_graph;

typedef struct {
    char **lines;
    uint32_t count;
} dump_text;

static void adj_push(naive_graph *ng, uint32_t from, uint32_t to)
{
    ng->adj[from] = realloc(ng->adj[from], (ng->deg[from] + 1) * sizeof(uint32_t));
    ng->adj[from][ng->deg[from]++] = to;
}

/* Breadth first from the virtual root, skipping node skip: dist[v] (UINT32_MAX unreached). */
static void naive_bfs(const naive_graph *ng, uint32_t skip, uint32_t *dist)
{
    uint32_t queue[MAXN + 1], head = 0, tail = 0, rt = ng->n - 1;
    for (uint32_t v = 0; v < ng->n; v++) dist[v] = UINT32_MAX;
    dist[rt] = 0;
    queue[tail++] = rt;
    while (head < tail) {
        uint32_t v = queue[head++];
        for (uint32_t k = 0; k < ng->deg[v]; k++) {
            uint32_t w = ng->adj[v][k];
            if (w == skip || dist[w] != UINT32_MAX) continue;
            dist[w] = dist[v] + 1;
            queue[tail++] = w;
        }
    }
}

static uint32_t rnd(uint32_t *state, uint32_t below) { return hc_test_xorshift(state) % below; }

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) abort();
    va_end(ap);
    return s;
}

/* A random dump of nobj objects and some ROOT records, lines in random order, written as dump_all
 * lines; and the same graph built here the obvious way (ng), line i being node i. */
static void random_dump(uint32_t *st, uint32_t nobj, dump_text *d, naive_graph *ng)
{
    uint32_t nroot = 1 + rnd(st, 3), n = nobj + nroot;
    uint32_t maxdeg = 1 + rnd(st, 4);
    int is_root[MAXN];
    uint64_t addr[MAXN];
    for (uint32_t i = 0; i < n; i++) is_root[i] = i < nroot;
    for (uint32_t i = n - 1; i > 0; i--) { /* shuffled */
        uint32_t j = rnd(st, i + 1), t = (uint32_t)is_root[i];
        is_root[i] = is_root[j];
        is_root[j] = (int)t;
    }
    uint32_t objs[MAXN], nobjs = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (is_root[i]) continue;
        /* now and then an address already used (the first line of it stands) */
        addr[i] = nobjs && rnd(st, 50) == 0 ? addr[objs[rnd(st, nobjs)]] : 0x7f0000001000ull + 0x28ull * i;
        objs[nobjs++] = i;
    }
    memset(ng, 0, sizeof *ng);
    ng->n = n + 1;
    d->lines = calloc(n, sizeof *d->lines);
    d->count = n;
    /* an address's node: its first line */
    #define FIRST_OF(a, out) do { out = UINT32_MAX; \
        for (uint32_t q_ = 0; q_ < n; q_++) if (!is_root[q_] && addr[q_] == (a)) { out = q_; break; } } while (0)
    for (uint32_t i = 0; i < n; i++) {
        char refs[64 * 24] = "";
        size_t used = 0;
        uint32_t deg = is_root[i] ? rnd(st, 4) : rnd(st, maxdeg + 1);
        if (!is_root[i] && rnd(st, 8) == 0) deg += rnd(st, 6);
        uint64_t ref_addr[64];
        for (uint32_t k = 0; k < deg && k < 64; k++) {
            uint32_t dice = rnd(st, 20);
            uint64_t a = dice == 0 ? 0x999000ull + 8 * rnd(st, 4)            /* missing */
                         : dice == 1 && !is_root[i] ? addr[i]                   /* itself */
                         : addr[objs[rnd(st, nobjs)]];
            ref_addr[k] = a;
            used += (size_t)snprintf(refs + used, sizeof refs - used, "%s\"0x%" PRIx64 "\"", k ? ", " : "", a);
        }
        if (is_root[i]) {
            static const char *const kinds[] = {"vm", "machine_context", "global_tbl", "finalizer"};
            d->lines[i] = fmt("{\"type\":\"ROOT\", \"root\":\"%s\", \"references\":[%s]}", kinds[rnd(st, 4)], refs);
            for (uint32_t k = 0; k < deg; k++) {
                uint32_t to;
                FIRST_OF(ref_addr[k], to);
                if (to == UINT32_MAX) ng->missing++;
                else adj_push(ng, i, to);
            }
            continue;
        }
        /* mostly OBJECTs; now and then a SHAPE (the VM's), a FLOAT or a callcache (whose class is no
         * reference), a ment (whose is) */
        static const char *const types[] = {"\"SHAPE\"", "\"FLOAT\"", "\"IMEMO\", \"imemo_type\":\"callcache\"",
                                            "\"IMEMO\", \"imemo_type\":\"ment\""};
        uint32_t type = rnd(st, 40);
        const char *type_text = type < 4 ? types[type] : "\"OBJECT\"";
        int class_marked = type != 1 && type != 2;
        uint64_t memsize = rnd(st, 4) ? 1 + rnd(st, 1000) : 0;
        int has_class = rnd(st, 4) == 0;
        uint64_t klass = rnd(st, 3) == 0 ? 0x998000ull : addr[objs[rnd(st, nobjs)]];
        char klass_field[48] = "";
        if (has_class) snprintf(klass_field, sizeof klass_field, "\"class\":\"0x%" PRIx64 "\", ", klass);
        char mem_field[32] = "";
        if (memsize) snprintf(mem_field, sizeof mem_field, ", \"memsize\":%" PRIu64, memsize);
        d->lines[i] = fmt("{\"address\":\"0x%" PRIx64 "\", \"type\":%s, %s\"references\":[%s]%s}", addr[i], type_text,
                          klass_field, refs, mem_field);
        ng->memsize[i] = memsize;
        ng->object[i] = 1;
        ng->own[i] = (addr[i] >> 3) % 5 == 0;
        if (has_class && class_marked && klass != addr[i]) {
            uint32_t to;
            FIRST_OF(klass, to);
            if (to != UINT32_MAX) adj_push(ng, i, to); /* a class the dump lacks: not counted */
        }
        for (uint32_t k = 0; k < deg; k++) {
            if (ref_addr[k] == addr[i]) continue;
            uint32_t to;
            FIRST_OF(ref_addr[k], to);
            if (to == UINT32_MAX) ng->missing++;
            else adj_push(ng, i, to);
        }
    }
    #undef FIRST_OF
    for (uint32_t i = 0; i < n; i++) /* the virtual root: ROOT records and SHAPEs, in the dump's order */
        if (is_root[i] || strstr(d->lines[i], "\"type\":\"SHAPE\"")) adj_push(ng, n, i);
}

static void naive_free(naive_graph *ng, dump_text *d)
{
    for (uint32_t v = 0; v < ng->n; v++) free(ng->adj[v]);
    for (uint32_t i = 0; i < d->count; i++) free(d->lines[i]);
    free(d->lines);
}

static int own_by_table(void *arg, const hc_graph *g, uint32_t v)
{
    (void)g;
    return ((const naive_graph *)arg)->own[v];
}

/* Checks g against ng; 0 when they agree (the first disagreement said in why). */
static int compare(const hc_graph *g, const naive_graph *ng, char *why, size_t whylen)
{
    uint32_t n = ng->n, rt = n - 1;
    static uint32_t dist[MAXN + 1], cut[MAXN + 1], idom[MAXN + 1], ndom[MAXN + 1];
    static uint8_t sdom[MAXN + 1][MAXN + 1]; /* sdom[d][v]: d strictly dominates v */
    if (g->n != n || g->root != rt) return snprintf(why, whylen, "n %u root %u, want %u", g->n, g->root, n), 1;
    if (g->missing_refs != ng->missing)
        return snprintf(why, whylen, "missing_refs %" PRIu64 ", want %" PRIu64, g->missing_refs, ng->missing), 1;
    naive_bfs(ng, UINT32_MAX, dist);
    uint32_t reached = 0;
    for (uint32_t v = 0; v < n; v++) reached += dist[v] != UINT32_MAX;
    if (g->reached != reached) return snprintf(why, whylen, "reached %u, want %u", g->reached, reached), 1;
    memset(ndom, 0, sizeof ndom);
    for (uint32_t d = 0; d < n; d++) {
        memset(sdom[d], 0, n);
        if (d == rt || dist[d] == UINT32_MAX) continue;
        naive_bfs(ng, d, cut);
        for (uint32_t v = 0; v < n; v++)
            if (v != d && dist[v] != UINT32_MAX && cut[v] == UINT32_MAX) {
                sdom[d][v] = 1;
                ndom[v]++;
            }
    }
    for (uint32_t v = 0; v < n; v++) {
        idom[v] = v == rt || dist[v] == UINT32_MAX ? NONE : rt;
        if (idom[v] == NONE) continue;
        uint32_t best = 0;
        for (uint32_t d = 0; d < n; d++) /* of its strict dominators, the one with the most dominators: the nearest */
            if (sdom[d][v] && ndom[d] + 1 > best) {
                best = ndom[d] + 1;
                idom[v] = d;
            }
    }
    for (uint32_t v = 0; v < n; v++) {
        int r = dist[v] != UINT32_MAX;
        if (!!(g->flags[v] & HC_NODE_REACHED) != r) return snprintf(why, whylen, "node %u reached %d, want %d", v, !r, r), 1;
        if (g->idom[v] != idom[v]) return snprintf(why, whylen, "idom[%u] = %u, want %u", v, g->idom[v], idom[v]), 1;
        uint64_t mem = r ? ng->memsize[v] : 0;
        uint32_t count = r && ng->object[v];
        for (uint32_t w = 0; w < n; w++) /* the virtual root: every reached node */
            if ((v == rt ? w != rt && dist[w] != UINT32_MAX : sdom[v][w])) {
                mem += ng->memsize[w];
                count += ng->object[w];
            }
        if (g->retained[v] != mem || g->retained_count[v] != count)
            return snprintf(why, whylen, "node %u retains %" PRIu64 " in %u, want %" PRIu64 " in %u", v, g->retained[v],
                            g->retained_count[v], mem, count), 1;
        /* own: its own test, or its dominator's */
        int own = r && v != rt && (ng->own[v] || (idom[v] != rt && (g->flags[idom[v]] & HC_NODE_OWN)));
        if (!!(g->flags[v] & HC_NODE_OWN) != own) return snprintf(why, whylen, "node %u own %d, want %d", v, !own, own), 1;
        /* the path: as long as the breadth-first distance, each hop an edge */
        uint32_t path[MAXN + 1], len = hc_graph_path(g, v, path, MAXN + 1);
        uint32_t want = v == rt || !r ? 0 : dist[v];
        if (len != want) return snprintf(why, whylen, "path to %u: %u long, want %u", v, len, want), 1;
        for (uint32_t i = 0; i < len; i++) {
            uint32_t from = i ? path[i - 1] : rt, k, found = 0;
            for (k = 0; k < ng->deg[from] && !found; k++) found = ng->adj[from][k] == path[i];
            if (!found) return snprintf(why, whylen, "path to %u: hop %u (%u -> %u) is no edge", v, i, from, path[i]), 1;
        }
        if (len && path[len - 1] != v) return snprintf(why, whylen, "path to %u ends at %u", v, path[len - 1]), 1;
    }
    return 0;
}

static void check_random(uint32_t graphs, uint32_t min_objects, uint32_t max_objects, uint32_t seed, const char *what)
{
    uint32_t st = seed, failures = 0;
    static naive_graph ng;
    for (uint32_t t = 0; t < graphs; t++) {
        dump_text d;
        uint32_t nobj = min_objects + rnd(&st, max_objects - min_objects + 1);
        random_dump(&st, nobj, &d, &ng);
        hc_graph g;
        char err[256] = "", why[320] = "";
        hc_graph_init(&g);
        int rc = 0;
        for (uint32_t i = 0; i < d.count && rc == 0; i++) rc = add_line(&g, d.lines[i], err, sizeof err);
        if (rc == 0) rc = hc_graph_analyze(&g, own_by_table, &ng, err, sizeof err);
        if (rc == 0) rc = hc_graph_bfs(&g, err, sizeof err);
        if (rc != 0) snprintf(why, sizeof why, "failed: %s", err);
        if (rc != 0 || compare(&g, &ng, why, sizeof why) != 0) {
            if (failures++ == 0) { /* the first one in full */
                fprintf(stderr, "%s: graph %u disagrees: %s\n", what, t, why);
                for (uint32_t i = 0; i < d.count; i++) fprintf(stderr, "  %u: %s\n", i, d.lines[i]);
            }
        }
        hc_graph_free(&g);
        naive_free(&ng, &d);
    }
    HC_CHECK(failures == 0, "%s: %u of %u random graphs disagree with the slow computation", what, failures, graphs);
}

/* The classes read (each the node's first reference until resolved, an edge or not), gone once
 * resolved, and nothing is added after. The scratch block keeps its first bytes as it is resized,
 * and 0 frees it. */
static void test_classes_and_scratch(void)
{
    char err[256];
    hc_graph g;
    hc_graph_init(&g);
    const char *lines[] = {
        "{\"type\":\"ROOT\",\"root\":\"vm\",\"references\":[\"0x10\"]}",
        "{\"address\":\"0x10\",\"type\":\"ARRAY\",\"class\":\"0x90\",\"references\":[\"0x20\"],\"memsize\":40}",
        "{\"address\":\"0x20\",\"type\":\"STRING\",\"class\":\"0x91\",\"memsize\":60}",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        HC_CHECK(add_line(&g, lines[i], err, sizeof err) == 0, "%s", err);
    HC_CHECK(hc_graph_class_of(&g, 1) == 0x90 && hc_graph_class_of(&g, 2) == 0x91 && hc_graph_class_of(&g, 0) == 0,
             "the classes read (the ROOT record has none)");
    HC_CHECK(g.nrefs == 4 && (g.flags[1] & HC_NODE_CLASS_EDGE), "each class a reference while read: %" PRIu64, g.nrefs);
    HC_CHECK(hc_graph_resolve(&g, err, sizeof err) == 0, "resolved: %s", err);
    HC_CHECK(hc_graph_class_of(&g, 1) == 0 && !(g.flags[1] & HC_NODE_CLASS_REF), "the classes gone once resolved");
    HC_CHECK(g.missing_refs == 0 && !(g.flags[1] & HC_NODE_CLASS_EDGE),
             "the classes 0x90 and 0x91 are not in the dump: no edge, not counted missing: %" PRIu64, g.missing_refs);
    hc_dump_line l;
    HC_CHECK(hc_dump_scan_line(lines[2], strlen(lines[2]), &l) == 0 && hc_graph_add(&g, &l, 0) == -1 && g.failed &&
             g.why && strstr(g.why, "after the graph was resolved"), "an object added after: refused, saying why");
    hc_graph_free(&g);
    hc_graph_init(&g);
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        HC_CHECK(add_line(&g, lines[i], err, sizeof err) == 0, "%s", err);
    HC_CHECK(hc_graph_analyze(&g, NULL, NULL, err, sizeof err) == 0, "analysed: %s", err);
    HC_CHECK(g.retained[1] == 100 && g.retained_count[1] == 2 && g.idom[2] == 1, "0x10 retains 0x20: %" PRIu64,
             g.retained[1]);
    uint32_t *a = hc_graph_scratch(&g, 16 * sizeof *a);
    HC_CHECK(a != NULL, "a scratch block");
    for (uint32_t i = 0; i < 16; i++) a[i] = i * 7;
    uint32_t *b = hc_graph_scratch(&g, 1 << 20);
    HC_CHECK(b && b[15] == 105 && g.scratch_bytes == 1 << 20, "grown, its first bytes kept");
    uint32_t *c = hc_graph_scratch(&g, 8 * sizeof *c);
    HC_CHECK(c && c[7] == 49 && g.scratch_bytes == 8 * sizeof *c, "shrunk, its first bytes kept");
    HC_CHECK(hc_graph_scratch(&g, 0) == NULL && !g.scratch && g.scratch_bytes == 0, "0 bytes frees it");
    hc_graph_free(&g);
}

int main(void)
{
    test_chain();
    test_diamond();
    test_cycles();
    test_several_roots();
    test_self_references();
    test_garbage();
    test_held_twice();
    test_missing();
    test_full_index();
    test_class_edge();
    test_unmarked_class_edges();
    test_only_roots();
    test_empty();
    test_shapes_and_duplicates();
    test_bad_refs();
    test_kinds_limit();
    test_own();
    test_long_chain();
    test_classes_and_scratch();
    test_big_memsize();
    test_resolve_first();
    check_random(10000, 2, 40, 20260101, "small graphs");
    check_random(200, 100, 400, 7, "larger graphs");
    return hc_test_summary("heap_graph");
}
