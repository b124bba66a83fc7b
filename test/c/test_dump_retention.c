/* dump_retention.c: a small dump read through a summary that feeds its graph, as `heapcapture
 * report` reads one: what the roots retain, the garbage, heapcapture's own objects (by site and by
 * class, and what they alone hold), the top retainer, and paths (by address, class and site; an
 * address the dump lacks; garbage). Figures checked by hand; the JSON's other fields are left to
 * the Ruby tests, which compare it with test/support/heap_graph_reference.rb. */
#include "dump_retention.h"
#include "dump_summary.h"
#include "hc_test.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* vm holds a Cache instance (0x100: a Hash of two big strings) and the Cache class; global_tbl a
 * HeapCapture::Dump made in heapcapture's lib/ (its own, with its class and string); two objects
 * nothing reaches. */
static const char DUMP[] =
    "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x100\", \"0x200\"]}\n"
    "{\"type\":\"ROOT\", \"root\":\"global_tbl\", \"references\":[\"0x300\"]}\n"
    "{\"address\":\"0x200\", \"type\":\"CLASS\", \"name\":\"Cache\", \"memsize\":1000}\n"
    "{\"address\":\"0x100\", \"type\":\"OBJECT\", \"class\":\"0x200\", \"references\":[\"0x110\"], \"file\":\"app.rb\", "
    "\"line\":5, \"memsize\":40}\n"
    "{\"address\":\"0x110\", \"type\":\"HASH\", \"references\":[\"0x120\", \"0x130\"], \"file\":\"app.rb\", \"line\":6, "
    "\"memsize\":200}\n"
    "{\"address\":\"0x120\", \"type\":\"STRING\", \"file\":\"app.rb\", \"line\":7, \"memsize\":5000}\n"
    "{\"address\":\"0x130\", \"type\":\"STRING\", \"file\":\"app.rb\", \"line\":7, \"memsize\":3000}\n"
    "{\"address\":\"0x300\", \"type\":\"OBJECT\", \"class\":\"0x310\", \"references\":[\"0x320\"], "
    "\"file\":\"/gems/heapcapture/lib/heapcapture/capture.rb\", \"line\":1, \"memsize\":40}\n"
    "{\"address\":\"0x310\", \"type\":\"CLASS\", \"name\":\"HeapCapture::Dump\", \"memsize\":500}\n"
    "{\"address\":\"0x320\", \"type\":\"STRING\", \"memsize\":700}\n"
    "{\"address\":\"0x400\", \"type\":\"STRING\", \"file\":\"app.rb\", \"line\":9, \"memsize\":77}\n"
    "{\"address\":\"0x401\", \"type\":\"ARRAY\", \"references\":[\"0x400\"], \"memsize\":40}\n";

static int is_json(const char *json)
{
    hc_dump_line l;
    return json && hc_dump_scan_line(json, strlen(json), &l) == 0;
}

static void test_report(void)
{
    hc_summary s;
    hc_graph g;
    char err[512] = "";
    hc_summary_init(&s);
    hc_graph_init(&g);
    s.graph = &g;
    HC_CHECK(hc_summary_write(&s, DUMP, sizeof DUMP - 1) == 0 && hc_summary_finish(&s) == 0, "summary");
    HC_CHECK(g.n == 12 && s.roots == 2, "12 records in the graph: %u", g.n);
    hc_retention *r = hc_retention_new(&g, &s, err, sizeof err);
    HC_CHECK(r != NULL, "retention: %s", err);
    if (!r) goto done;
    uint32_t own = hc_graph_find(&g, 0x300), own_class = hc_graph_find(&g, 0x310), own_str = hc_graph_find(&g, 0x320);
    HC_CHECK((g.flags[own] & HC_NODE_OWN) && (g.flags[own_class] & HC_NODE_OWN) && (g.flags[own_str] & HC_NODE_OWN),
             "heapcapture's object, and what it alone holds");
    HC_CHECK(!(g.flags[hc_graph_find(&g, 0x100)] & HC_NODE_OWN), "the app's: not own");
    char *json = hc_retention_json(r, 10, 0.1);
    HC_CHECK(is_json(json), "one JSON object: %s", json ? json : "(null)");
    if (json) {
        /* reached: 0x200 0x100 0x110 0x120 0x130 0x300 0x310 0x320 */
        HC_CHECK(strstr(json, "\"retained\":{\"objects\":8,\"memsize\":10480}") != NULL, "retained: %s", json);
        HC_CHECK(strstr(json, "\"garbage\":{\"objects\":2,\"memsize\":117}") != NULL, "garbage: %s", json);
        HC_CHECK(strstr(json, "\"own\":{\"objects\":3,\"memsize\":1240}") != NULL, "own: %s", json);
        HC_CHECK(strstr(json, "\"missing_references\":0,\"root_records\":2") != NULL, "counts: %s", json);
        /* the retainer retaining most that is not heapcapture's: 0x100, its Hash and strings */
        HC_CHECK(strstr(json, "\"retainers\":[{\"address\":\"0x100\",\"type\":\"OBJECT\",\"class\":\"Cache\"") != NULL,
                 "the top retainer: %s", json);
        HC_CHECK(strstr(json, "\"retained_memsize\":8240,\"retained_objects\":4") != NULL, "0x100 retains 8240: %s", json);
        HC_CHECK(!strstr(json, "\"address\":\"0x300\"") && !strstr(json, "HeapCapture::Dump"), "heapcapture's kept out");
    }
    free(json);

    hc_path_query q = {0};
    q.address = 0x130;
    json = hc_retention_paths_json(r, &q, err, sizeof err);
    HC_CHECK(json && strstr(json, "[{\"target\":\"0x130\",\"path_length\":4,\"path\":[{\"type\":\"ROOT\",\"root\":\"vm\"}"),
             "the path to 0x130: %s", json ? json : err);
    HC_CHECK(json && strstr(json, "{\"address\":\"0x110\""), "by way of the Hash: %s", json ? json : err);
    free(json);
    q.address = 0x400;
    json = hc_retention_paths_json(r, &q, err, sizeof err);
    HC_CHECK(!json && strstr(err, "garbage"), "garbage has no path: %s", err);
    free(json);
    q.address = 0x999;
    json = hc_retention_paths_json(r, &q, err, sizeof err);
    HC_CHECK(!json && strstr(err, "no object at 0x999"), "no such object: %s", err);
    free(json);
    memset(&q, 0, sizeof q);
    q.class_name = "Cache";
    q.all = 5;
    json = hc_retention_paths_json(r, &q, err, sizeof err);
    HC_CHECK(json && strstr(json, "[{\"target\":\"0x100\",\"path_length\":2,") && !strstr(json, "},{\"target\""),
             "the one Cache: %s", json ? json : err);
    free(json);
    memset(&q, 0, sizeof q);
    q.file = "app.rb";
    q.line = 7;
    q.all = 5;
    json = hc_retention_paths_json(r, &q, err, sizeof err);
    HC_CHECK(json && strstr(json, "[{\"target\":\"0x120\"") && strstr(json, "},{\"target\":\"0x130\""),
             "the two strings of app.rb:7, the larger first: %s", json ? json : err);
    free(json);
    q.line = 9;
    json = hc_retention_paths_json(r, &q, err, sizeof err);
    HC_CHECK(!json && strstr(err, "garbage"), "app.rb:9 made garbage only: %s", err);
    free(json);
    hc_retention_free(r);
done:
    hc_summary_free(&s);
    hc_graph_free(&g);
}

/* Lines longer than the summary keeps whole without a graph (HC_SUMMARY_LONG_LINE), written in
 * pieces: with a graph, every reference of them counts. */
static void test_long_lines(void)
{
    enum { N = 20000 };
    hc_summary s;
    hc_graph g;
    hc_summary_init(&s);
    hc_graph_init(&g);
    s.graph = &g;
    size_t cap = (size_t)N * 40 + 256, len = 0;
    char *dump = malloc(cap);
    len += (size_t)snprintf(dump + len, cap - len, "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[");
    for (int i = 0; i < N; i++) len += (size_t)snprintf(dump + len, cap - len, "%s\"0x%x\"", i ? ", " : "", (i + 1) * 16);
    len += (size_t)snprintf(dump + len, cap - len, "]}\n");
    /* the first object holds every other one too */
    len += (size_t)snprintf(dump + len, cap - len, "{\"address\":\"0x10\", \"memsize\":1, \"references\":[");
    for (int i = 1; i < N; i++) len += (size_t)snprintf(dump + len, cap - len, "%s\"0x%x\"", i > 1 ? ", " : "", (i + 1) * 16);
    len += (size_t)snprintf(dump + len, cap - len, ", \"0x1\"]}\n");
    int ok = hc_summary_write(&s, dump, len) == 0;
    for (int i = 1; i < N && ok; i++) {
        char line[96];
        int n = snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"memsize\":2}\n", (i + 1) * 16);
        ok = hc_summary_write(&s, line, (size_t)n) == 0;
    }
    HC_CHECK(ok && hc_summary_finish(&s) == 0 && !s.failed, "written");
    char err[256] = "";
    hc_retention *r = hc_retention_new(&g, &s, err, sizeof err);
    HC_CHECK(r != NULL, "%s", err);
    if (r) {
        uint32_t k;
        hc_graph_edges(&g, 0, &k);
        HC_CHECK(k == N && g.missing_refs == 1, "the ROOT record's %d references: %u, missing %" PRIu64, N, k, g.missing_refs);
        hc_graph_edges(&g, 1, &k);
        HC_CHECK(k == N - 1, "the object's: %u", k);
        HC_CHECK(g.reached == N + 2 && g.retained[g.root] == 1 + 2ull * (N - 1), "all reached: %u", g.reached);
        hc_retention_free(r);
    }
    free(dump);
    hc_summary_free(&s);
    hc_graph_free(&g);
}

/* A linked list of a million objects: the dominator tree walks (grouping, suspects) and a path
 * longer than the hops written (its first and last ones, its length in full). */
static void test_long_chain(void)
{
    enum { N = 1000000 };
    hc_summary s;
    hc_graph g;
    hc_summary_init(&s);
    hc_graph_init(&g);
    s.graph = &g;
    const char root[] = "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\"]}\n";
    int ok = hc_summary_write(&s, root, sizeof root - 1) == 0;
    for (uint32_t i = 0; i < N && ok; i++) {
        char line[160];
        int n = i + 1 < N ? snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"type\":\"OBJECT\", \"file\":\"list.rb\", "
                                     "\"line\":1, \"memsize\":40, \"references\":[\"0x%x\"]}\n", (i + 1) * 16, (i + 2) * 16)
                          : snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"type\":\"STRING\", \"memsize\":40}\n",
                                     (i + 1) * 16);
        ok = hc_summary_write(&s, line, (size_t)n) == 0;
    }
    HC_CHECK(ok && hc_summary_finish(&s) == 0, "a million lines");
    char err[256] = "";
    hc_retention *r = hc_retention_new(&g, &s, err, sizeof err);
    HC_CHECK(r != NULL, "%s", err);
    if (r) {
        char *json = hc_retention_json(r, 3, 0.1);
        HC_CHECK(is_json(json), "one JSON object");
        HC_CHECK(json && strstr(json, "\"retained\":{\"objects\":1000000,\"memsize\":40000000}"), "all retained");
        HC_CHECK(json && strstr(json, "\"retained_by_site\":[{\"file\":\"list.rb\",\"line\":1,\"instances\":1,"
                                      "\"retained_memsize\":40000000,\"retained_objects\":1000000}"),
                 "the list's head holds it all; the rest of its site are inside it");
        free(json);
        hc_path_query q = {0};
        q.address = (uint64_t)N * 16;
        json = hc_retention_paths_json(r, &q, err, sizeof err);
        HC_CHECK(json && strstr(json, "\"path_length\":1000001,"), "the tail's path: %.200s", json ? json : err);
        size_t hops = 0;
        for (const char *p = json; p && (p = strstr(p, "\"retained_memsize\"")); p++) hops++;
        HC_CHECK(hops == HC_RETENTION_MAX_HOPS - 1, "the hops written (the ROOT record's has no sizes): %zu", hops);
        const char *tail = json ? strstr(json, "{\"address\":\"0xf42400\"") : NULL; /* N * 16 */
        HC_CHECK(tail && !strstr(tail + 1, "{\"address\""), "the tail, last");
        free(json);
        hc_retention_free(r);
    }
    hc_summary_free(&s);
    hc_graph_free(&g);
}

int main(void)
{
    test_report();
    test_long_lines();
    test_long_chain();
    return hc_test_summary("dump_retention");
}
