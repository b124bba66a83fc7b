/* heap_retention.c: a small dump read through a summary that feeds its graph, as `heapcapture
 * report` reads one: what the roots retain, the garbage, heapcapture's own objects (by site and by
 * class, and what they alone hold), the top retainer, and paths (by address, class and site; an
 * address the dump lacks; garbage); what holds the new objects of a diff (hc_retention_growth_json:
 * an old cache holding new records, a chain of a million new objects, growth that is all garbage,
 * sampled sites).
 * Figures checked by hand; the JSON's other fields are left to the Ruby tests, which compare it
 * with test/support/heap_graph_reference.rb. */
#include "heap_retention.h"
#include "heap_summary.h"
#include "hc_test.h"
#include "util.h"

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

/* DUMP read through s into g, as report reads a dump. */
static void read_dump(hc_summary *s, hc_graph *g)
{
    hc_summary_init(s);
    hc_graph_init(g);
    s->graph = g;
    HC_CHECK(hc_summary_write(s, DUMP, sizeof DUMP - 1) == 0 && hc_summary_finish(s) == 0, "summary");
}

static void test_report(void)
{
    hc_summary s;
    hc_graph g;
    char err[512] = "";
    read_dump(&s, &g);
    HC_CHECK(g.n == 12 && s.roots == 2, "12 records in the graph: %u", g.n);
    hc_retention *r = hc_retention_new(&g, &s, err, sizeof err);
    HC_CHECK(r != NULL, "retention: %s", err);
    if (!r) goto done;
    uint32_t own = hc_graph_find(&g, 0x300), own_class = hc_graph_find(&g, 0x310), own_str = hc_graph_find(&g, 0x320);
    HC_CHECK((g.flags[own] & HC_NODE_OWN) && (g.flags[own_class] & HC_NODE_OWN) && (g.flags[own_str] & HC_NODE_OWN),
             "heapcapture's object, and what it alone holds");
    HC_CHECK(!(g.flags[hc_graph_find(&g, 0x100)] & HC_NODE_OWN), "the app's: not own");
    char *json = hc_retention_json(r, 10, 0.1, 0);
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

    /* the dominator tree's frames (heap_flame.h): all of them drawn, then those under 20% joined */
    json = hc_retention_json(r, 10, 0.1, 0.0005);
    HC_CHECK(is_json(json), "one JSON object: %s", json ? json : "(null)");
    const char *want[] = {
        ",\"tree\":{\"name\":\"(all)\",\"value\":10480,\"self\":0,\"objects\":8,\"instances\":1,\"children\":[",
        "{\"name\":\"(root) vm\",\"type\":\"ROOT\",\"root\":\"vm\",\"value\":9240,\"self\":0,\"objects\":5,",
        "{\"name\":\"Cache (app.rb:5)\",\"type\":\"OBJECT\",\"class\":\"Cache\",\"file\":\"app.rb\",\"line\":5,"
        "\"value\":8240,\"self\":40,\"objects\":4,\"instances\":1,\"address\":\"0x100\",\"children\":[{\"name\":\"HASH (app.rb:6)\"",
        "{\"name\":\"STRING (app.rb:7)\",\"type\":\"STRING\",\"file\":\"app.rb\",\"line\":7,\"value\":8000,\"self\":8000,"
        "\"objects\":2,\"instances\":2,\"address\":\"0x120\",\"children\":[]}",
        "{\"name\":\"class Cache\",\"type\":\"CLASS\",\"class_name\":\"Cache\",\"value\":1000,\"self\":1000,\"objects\":1,\"instances\":1,\"address\":\"0x200\"",
        "{\"name\":\"(heapcapture's own)\",\"own\":true,\"value\":1240,\"self\":1240,\"objects\":3,\"instances\":3,"
        "\"address\":\"0x300\",\"children\":[]}",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        HC_CHECK(json && strstr(json, want[i]), "the tree has %s: %s", want[i], json ? json : "(null)");
    free(json);
    json = hc_retention_json(r, 10, 0.1, 0.2); /* 2096 bytes at least: the class and the own frame joined */
    HC_CHECK(json && strstr(json, "{\"name\":\"(other)\",\"other\":true,\"value\":1000,\"self\":1000,\"objects\":1,"
                                  "\"instances\":1,\"frames\":1}") &&
                 strstr(json, "{\"name\":\"(other)\",\"other\":true,\"value\":1240,\"self\":1240,\"objects\":3,"
                              "\"instances\":1,\"frames\":1}") && !strstr(json, "heapcapture's own"),
             "frames under the share joined: %s", json ? json : "(null)");
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

/* Sites the sampled tracer wrote (a "sample_weight"): a vm-held Array (1,000,000 bytes) holds four
 * strings of leak.rb:3 sampled at weight 1000 and one traced exactly (a fifth, sampled, is garbage),
 * three Leak objects of leak.rb:5 sampled at weight `leak_weight`, each holding a 100-byte string,
 * and a chain of three objects of list.rb:1, each sampled at weight 100000; global_tbl holds 20,000
 * empty objects without a site (the heap's objects outnumber what the leak's estimates hold). */
static char *sampled_report(uint64_t leak_weight, hc_retention **out_r, hc_summary *s, hc_graph *g)
{
    hc_sbuf dump = {0};
    hc_sbuf_puts(&dump, "{\"type\":\"ROOT\", \"root\":\"global_tbl\", \"references\":[");
    for (int i = 0; i < 20000; i++) hc_sbuf_printf(&dump, "%s\"0x%x\"", i ? ", " : "", 0x100000 + i * 8);
    hc_sbuf_puts(&dump, "]}\n");
    for (int i = 0; i < 20000; i++)
        hc_sbuf_printf(&dump, "{\"address\":\"0x%x\", \"type\":\"OBJECT\", \"memsize\":0}\n", 0x100000 + i * 8);
    hc_sbuf_puts(&dump, "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x100\"]}\n"
                        "{\"address\":\"0x100\", \"type\":\"ARRAY\", \"references\":[\"0x201\", \"0x202\", \"0x203\", "
                        "\"0x204\", \"0x205\", \"0x401\", \"0x402\", \"0x403\", \"0x300\"], \"memsize\":1000000}\n"
                        "{\"address\":\"0x500\", \"type\":\"CLASS\", \"name\":\"Leak\", \"memsize\":500}\n");
    for (int i = 1; i <= 6; i++) /* 0x205 traced exactly; 0x206 garbage */
        hc_sbuf_printf(&dump, "{\"address\":\"0x20%d\", \"type\":\"STRING\", \"file\":\"leak.rb\", \"line\":3, "
                              "\"generation\":1%s, \"memsize\":40}\n", i, i == 5 ? "" : ", \"sample_weight\":1000");
    for (int i = 1; i <= 3; i++)
        hc_sbuf_printf(&dump, "{\"address\":\"0x40%d\", \"type\":\"OBJECT\", \"class\":\"0x500\", \"references\":[\"0x41%d\"], "
                              "\"file\":\"leak.rb\", \"line\":5, \"sample_weight\":%llu, \"memsize\":40}\n"
                              "{\"address\":\"0x41%d\", \"type\":\"STRING\", \"memsize\":100}\n",
                       i, i, (unsigned long long)leak_weight, i);
    for (int i = 0; i <= 2; i++) { /* a chain: 0x300 -> 0x301 -> 0x302 */
        char next[32] = "";
        if (i < 2) snprintf(next, sizeof next, "\"0x30%d\"", i + 1);
        hc_sbuf_printf(&dump, "{\"address\":\"0x30%d\", \"type\":\"OBJECT\", \"references\":[%s], \"file\":\"list.rb\", "
                              "\"line\":1, \"sample_weight\":100000, \"memsize\":40}\n", i, next);
    }
    char err[256] = "";
    hc_summary_init(s);
    hc_graph_init(g);
    s->graph = g;
    HC_CHECK(!dump.oom && hc_summary_write(s, dump.data, dump.len) == 0 && hc_summary_finish(s) == 0, "summary");
    hc_sbuf_free(&dump);
    HC_CHECK(g->nweights == 11 && g->bad_refs == 0, "the eleven sampled objects' weights kept: %u", g->nweights);
    HC_CHECK(hc_graph_weight_of(g, hc_graph_find(g, 0x205)) == 0 && hc_graph_weight_of(g, hc_graph_find(g, 0x100)) == 0,
             "an exact site's object, an object without a site: no weight");
    *out_r = hc_retention_new(g, s, err, sizeof err);
    HC_CHECK(*out_r != NULL, "retention: %s", err);
    HC_CHECK(*out_r && hc_graph_weight_of(g, hc_graph_find(g, 0x206)) == 1000 &&
             hc_graph_weight_of(g, hc_graph_find(g, 0x302)) == 100000, "weights found by node");
    char *json = *out_r ? hc_retention_json(*out_r, 10, 0.1, 0.001) : NULL;
    HC_CHECK(is_json(json), "one JSON object: %s", json ? json : "(null)");
    return json;
}

/* The sampled sites' figures are scaled by their weights and marked estimated; classes and totals
 * stay exact; what sampled instances hold, and a site suspect of them, is at most the heap. */
static void test_sampled_sites(void)
{
    hc_summary s;
    hc_graph g;
    hc_retention *r = NULL;
    /* the heap: 1,000,000 + 5 x 40 + 3 x 40 + 3 x 100 + 500 (Leak) + 3 x 40 bytes, 20,016 objects */
    char *json = sampled_report(1000, &r, &s, &g);
    if (json) {
        HC_CHECK(strstr(json, "\"retained\":{\"objects\":20016,\"memsize\":1001240},\"garbage\":{\"objects\":1,\"memsize\":40}"),
                 "totals exact: %s", json);
        HC_CHECK(strstr(json, "{\"file\":\"leak.rb\",\"line\":3,\"objects\":5001,\"memsize\":200040,\"retained_objects\":4001,"
                              "\"retained_memsize\":160040,\"garbage_objects\":1000,\"garbage_memsize\":40000,"
                              "\"estimated\":true,\"sampled\":5}"),
                 "leak.rb:3: 4 x 1000 + 1 retained, 1000 garbage: %s", json);
        HC_CHECK(strstr(json, "{\"file\":\"leak.rb\",\"line\":5,\"objects\":3000,\"memsize\":120000,\"retained_objects\":3000,"
                              "\"retained_memsize\":120000,\"garbage_objects\":0,\"garbage_memsize\":0,\"estimated\":true,"
                              "\"sampled\":3}"),
                 "leak.rb:5: %s", json);
        HC_CHECK(strstr(json, "{\"class\":\"Leak\",\"objects\":3,\"memsize\":120,\"retained_objects\":3,\"retained_memsize\":120,"
                              "\"garbage_objects\":0,\"garbage_memsize\":0}"),
                 "the class: exact: %s", json);
        HC_CHECK(strstr(json, "\"retained_by_site\":[{\"file\":\"list.rb\",\"line\":1,\"instances\":100000,"
                              "\"retained_memsize\":1001240,\"retained_objects\":20016,\"estimated\":true,\"sampled\":1},"
                              "{\"file\":\"leak.rb\",\"line\":5,\"instances\":3000,\"retained_memsize\":420000,"
                              "\"retained_objects\":6000,\"estimated\":true,\"sampled\":3},"
                              "{\"file\":\"leak.rb\",\"line\":3,\"instances\":4001,\"retained_memsize\":160040,"
                              "\"retained_objects\":4001,\"estimated\":true,\"sampled\":4}]"),
                 "held by site: scaled (the chain's head stands for 100,000 chains of 120 bytes: at most the heap): %s",
                 json);
        HC_CHECK(strstr(json, "\"retained_by_class\":[{\"class\":\"Leak\",\"instances\":3,\"retained_memsize\":420,"
                              "\"retained_objects\":6}]"),
                 "held by class: exact: %s", json);
        const char *site = strstr(json, "{\"kind\":\"site\"");
        HC_CHECK(site && strstr(site, "\"instances\":3000,\"type\":\"OBJECT\",\"class\":\"Leak\",\"file\":\"leak.rb\",\"line\":5,"
                                      "\"retained_memsize\":420000,\"retained_objects\":6000,\"share\":0.4195,"
                                      "\"estimated\":true,\"sampled\":3,\"path_length\":"),
                 "the Leak objects' site is a suspect, estimated: %s", json);
        HC_CHECK(!strstr(json, "\"kind\":\"site\",\"address\":\"0x30"), "one sampled instance of list.rb:1 is no group");
    }
    free(json);
    hc_retention_free(r);
    hc_summary_free(&s);
    hc_graph_free(&g);
    /* weighted 100 times more, the Leak objects would hold 4.2x the heap's memsize and 30x its
     * objects: the heap's, a share of 1 */
    json = sampled_report(100000, &r, &s, &g);
    const char *site = json ? strstr(json, "{\"kind\":\"site\"") : NULL;
    HC_CHECK(site && strstr(site, "\"instances\":300000,") &&
             strstr(site, "\"retained_memsize\":1001240,\"retained_objects\":20016,\"share\":1.0000,\"estimated\":true,"
                          "\"sampled\":3,"),
             "an estimate past the heap is the heap: %s", json ? json : "(null)");
    free(json);
    hc_retention_free(r);
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
        char *json = hc_retention_json(r, 3, 0.1, 0);
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

/* ---- growth (hc_retention_growth_json) ---- */

/* The dump in text read into s and g, analysed; NULL (and a failed check) when it cannot be. */
static hc_retention *analysed(hc_summary *s, hc_graph *g, const char *text, size_t len)
{
    char err[512] = "";
    hc_summary_init(s);
    hc_graph_init(g);
    s->graph = g;
    HC_CHECK(hc_summary_write(s, text, len) == 0 && hc_summary_finish(s) == 0 && !s->failed, "summary");
    hc_retention *r = hc_retention_new(g, s, err, sizeof err);
    HC_CHECK(r != NULL, "retention: %s", err);
    return r;
}

/* is_new by node: the objects whose address is not among old (count addresses), as a diff has it. */
static uint8_t *new_but(const hc_graph *g, const uint64_t *old, size_t count)
{
    uint8_t *is_new = calloc(g->n, 1);
    for (uint32_t v = 0; is_new && v < g->n; v++) {
        if (g->flags[v] & HC_NODE_ROOT) continue;
        is_new[v] = 1;
        for (size_t i = 0; i < count; i++)
            if (g->addr[v] == old[i]) is_new[v] = 0;
    }
    return is_new;
}

/* The JSON text of key's value (an object or array, or a scalar) in json, copied; NULL if absent. */
static char *value_of(const char *json, const char *key)
{
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = json ? strstr(json, pattern) : NULL;
    if (!p) return NULL;
    p += strlen(pattern);
    const char *e = p;
    int depth = 0, in_str = 0;
    for (; *e; e++) {
        if (in_str) {
            if (*e == '\\') e++;
            else if (*e == '"') in_str = 0;
            continue;
        }
        if (*e == '"') in_str = 1;
        else if (*e == '{' || *e == '[') depth++;
        else if (*e == '}' || *e == ']') {
            if (depth == 0) break;
            if (--depth == 0) {
                e++;
                break;
            }
        } else if (*e == ',' && depth == 0) break;
    }
    return strndup(p, (size_t)(e - p));
}

/* OLD had the Cache class, its cache Array (held through the class) and a Hash; NEW adds three
 * records of 40 bytes, each holding a string of 1000, to the Array, a string of 300 to the Hash,
 * heapcapture's own object (its lib/), and a string of 5000 that nothing holds. */
static const char GROWTH[] =
    "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x200\", \"0x500\"]}\n"
    "{\"type\":\"ROOT\", \"root\":\"global_tbl\", \"references\":[\"0x300\"]}\n"
    "{\"address\":\"0x200\", \"type\":\"CLASS\", \"name\":\"Cache\", \"references\":[\"0x100\"], \"memsize\":1000}\n"
    "{\"address\":\"0x100\", \"type\":\"ARRAY\", \"references\":[\"0x110\", \"0x120\", \"0x130\"], \"file\":\"app.rb\", "
    "\"line\":5, \"memsize\":100}\n"
    "{\"address\":\"0x110\", \"type\":\"OBJECT\", \"class\":\"0x200\", \"references\":[\"0x111\"], \"file\":\"app.rb\", "
    "\"line\":7, \"memsize\":40}\n"
    "{\"address\":\"0x111\", \"type\":\"STRING\", \"file\":\"app.rb\", \"line\":8, \"memsize\":1000}\n"
    "{\"address\":\"0x120\", \"type\":\"OBJECT\", \"class\":\"0x200\", \"references\":[\"0x121\"], \"file\":\"app.rb\", "
    "\"line\":7, \"memsize\":40}\n"
    "{\"address\":\"0x121\", \"type\":\"STRING\", \"file\":\"app.rb\", \"line\":8, \"memsize\":1000}\n"
    "{\"address\":\"0x130\", \"type\":\"OBJECT\", \"class\":\"0x200\", \"references\":[\"0x131\"], \"file\":\"app.rb\", "
    "\"line\":7, \"memsize\":40}\n"
    "{\"address\":\"0x131\", \"type\":\"STRING\", \"file\":\"app.rb\", \"line\":8, \"memsize\":1000}\n"
    "{\"address\":\"0x500\", \"type\":\"HASH\", \"references\":[\"0x510\"], \"file\":\"app.rb\", \"line\":9, \"memsize\":200}\n"
    "{\"address\":\"0x510\", \"type\":\"STRING\", \"file\":\"app.rb\", \"line\":10, \"memsize\":300}\n"
    "{\"address\":\"0x300\", \"type\":\"OBJECT\", \"file\":\"/gems/heapcapture/lib/heapcapture/capture.rb\", \"line\":1, "
    "\"memsize\":40}\n"
    "{\"address\":\"0x600\", \"type\":\"STRING\", \"file\":\"app.rb\", \"line\":11, \"memsize\":5000}\n";

static void test_growth_held_by_an_old_cache(void)
{
    hc_summary s;
    hc_graph g;
    hc_retention *r = analysed(&s, &g, GROWTH, sizeof GROWTH - 1);
    if (!r) goto done;
    static const uint64_t old[] = {0x200, 0x100, 0x500};
    uint8_t *is_new = new_but(&g, old, 3);
    char *json = hc_retention_growth_json(r, is_new, 3), *json_all;
    HC_CHECK(is_json(json), "one JSON object: %s", json ? json : "(null)");
    char *v = value_of(json, "growth");
    /* reached: the records and their strings (3 x 1040), the Hash's string (300), heapcapture's (40) */
    HC_CHECK_STR(v, "{\"retained\":{\"objects\":8,\"memsize\":3460},\"garbage\":{\"objects\":1,\"memsize\":5000},"
                    "\"own\":{\"objects\":1,\"memsize\":40}}", "growth");
    free(v);
    v = value_of(json, "types");
    HC_CHECK_STR(v, "{\"OBJECT\":{\"retained_objects\":4,\"retained_memsize\":160},"
                    "\"STRING\":{\"retained_objects\":4,\"retained_memsize\":3300}}", "types: new objects reached");
    free(v);
    v = value_of(json, "sites");
    HC_CHECK_STR(v, "[{\"file\":\"app.rb\",\"line\":8,\"objects\":3,\"memsize\":3000,\"retained_objects\":3,"
                    "\"retained_memsize\":3000,\"garbage_objects\":0,\"garbage_memsize\":0},"
                    "{\"file\":\"app.rb\",\"line\":10,\"objects\":1,\"memsize\":300,\"retained_objects\":1,"
                    "\"retained_memsize\":300,\"garbage_objects\":0,\"garbage_memsize\":0},"
                    "{\"file\":\"app.rb\",\"line\":7,\"objects\":3,\"memsize\":120,\"retained_objects\":3,"
                    "\"retained_memsize\":120,\"garbage_objects\":0,\"garbage_memsize\":0}]",
                 "sites by retained memsize, the top 3 (the garbage's fourth; heapcapture's not at all)");
    free(v);
    json_all = hc_retention_growth_json(r, is_new, 10);
    v = value_of(json_all, "sites");
    HC_CHECK(v && strstr(v, "},{\"file\":\"app.rb\",\"line\":11,\"objects\":1,\"memsize\":5000,\"retained_objects\":0,"
                            "\"retained_memsize\":0,\"garbage_objects\":1,\"garbage_memsize\":5000}]") &&
                 !strstr(v, "capture.rb"),
             "all sites: the garbage's last, heapcapture's left out: %s", v ? v : "(null)");
    free(json_all);
    free(v);
    v = value_of(json, "classes");
    HC_CHECK_STR(v, "[{\"class\":\"Cache\",\"objects\":3,\"memsize\":120,\"retained_objects\":3,\"retained_memsize\":120,"
                    "\"garbage_objects\":0,\"garbage_memsize\":0}]",
                 "classes");
    free(v);
    /* The Cache class holds all 3120 of the cache's growth, the Array too: the deepest, the Array,
     * holds it. Its share: of the 3420 retained that are not heapcapture's. */
    v = value_of(json, "holder");
    HC_CHECK(v && strncmp(v, "{\"address\":\"0x100\",\"type\":\"ARRAY\",\"file\":\"app.rb\",\"line\":5,\"memsize\":100,"
                             "\"retained_memsize\":3220,\"retained_objects\":7,\"growth_memsize\":3120,"
                             "\"growth_objects\":6,\"growth_share\":0.9123,\"path_length\":3,"
                             "\"path\":[{\"type\":\"ROOT\",\"root\":\"vm\"},{\"address\":\"0x200\",", 240) == 0,
             "the holder, the cache Array, and its path: %s", v ? v : "(null)");
    HC_CHECK(v && strstr(v, "},{\"address\":\"0x100\",\"type\":\"ARRAY\",\"file\":\"app.rb\",\"line\":5,\"memsize\":100,"
                            "\"retained_memsize\":3220,\"retained_objects\":7}]}"),
             "its path ends at it: %s", v ? v : "(null)");
    free(v);
    /* Holders: the Array (the class above it holds nothing more), then each record's string (a
     * record holds 1040, its string 1000 of it: nearly all), the Hash's string (300) cut by top. */
    v = value_of(json, "holders");
    const char *at = v;
    static const char *const want[] = {"0x100", "0x111", "0x121"};
    for (int i = 0; i < 3; i++) {
        char pattern[64];
        snprintf(pattern, sizeof pattern, "{\"address\":\"%s\"", want[i]);
        at = at ? strstr(at, pattern) : NULL;
        HC_CHECK(at != NULL, "holder %d is %s: %s", i, want[i], v ? v : "(null)");
        if (at) at++;
    }
    HC_CHECK(v && strstr(v, "\"growth_memsize\":1000,\"growth_objects\":1,\"growth_share\":0.2924,") &&
                 !strstr(v, "]},{\"address\":\"0x110\"") && strncmp(v, "[{\"address\":\"0x110\"", 20) != 0,
             "a string holds itself, its record (holding little more) is left out: %s", v ? v : "(null)");
    char *path_of_record = v ? strstr(v, "{\"address\":\"0x111\"") : NULL;
    HC_CHECK(path_of_record && strstr(path_of_record, "\"path_length\":5,"), "a string's path: vm, Cache, Array, record, it");
    free(v);
    free(json);

    /* Top 0: the totals, no list, the holder still said. */
    json = hc_retention_growth_json(r, is_new, 0);
    HC_CHECK(is_json(json) && strstr(json, "\"sites\":[],\"classes\":[]") && strstr(json, "\"holders\":[],\"holder\":{"),
             "top 0: %s", json ? json : "(null)");
    free(json);

    /* Nothing new but the garbage: no holder. */
    static const uint64_t all_but_garbage[] = {0x200, 0x100, 0x500, 0x110, 0x111, 0x120, 0x121, 0x130, 0x131, 0x510, 0x300};
    free(is_new);
    is_new = new_but(&g, all_but_garbage, sizeof all_but_garbage / sizeof *all_but_garbage);
    json = hc_retention_growth_json(r, is_new, 10);
    HC_CHECK(is_json(json) && strstr(json, "\"retained\":{\"objects\":0,\"memsize\":0},\"garbage\":{\"objects\":1,"
                                           "\"memsize\":5000}") &&
                 strstr(json, "\"holders\":[],\"holder\":null}") &&
                 strstr(json, "\"sites\":[{\"file\":\"app.rb\",\"line\":11,\"objects\":1,\"memsize\":5000,"
                              "\"retained_objects\":0,\"retained_memsize\":0,\"garbage_objects\":1,\"garbage_memsize\":5000}]"),
             "all garbage: %s", json ? json : "(null)");
    free(json);
    free(is_new);
    hc_retention_free(r);
done:
    hc_summary_free(&s);
    hc_graph_free(&g);
}

/* An old head holding a chain of N new objects of 40 bytes: object i (1-based) holds N - i + 1 of
 * them. The holder is the deepest holding 80% of what the first holds: N - i + 1 >= 0.8 N, i <=
 * 200,000 (0.8 N = 799,999.2: no rounding at stake). Holders: the holder, then the chain's last 9
 * (one holding 10 or more has a next holding 90% of it). Summed without recursion, in O(N). */
static void test_growth_along_a_chain(void)
{
    enum { N = 999999 };
    hc_summary s;
    hc_graph g;
    size_t cap = (size_t)(N + 2) * 96, len = 0;
    char *dump = malloc(cap);
    len += (size_t)snprintf(dump + len, cap - len, "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\"]}\n");
    for (uint32_t i = 0; i <= N; i++) { /* 0x10: the old head; then the new ones, 0x20.. */
        if (i < N)
            len += (size_t)snprintf(dump + len, cap - len, "{\"address\":\"0x%x\", \"type\":\"OBJECT\", \"memsize\":40, "
                                    "\"references\":[\"0x%x\"]}\n", (i + 1) * 16, (i + 2) * 16);
        else
            len += (size_t)snprintf(dump + len, cap - len, "{\"address\":\"0x%x\", \"type\":\"OBJECT\", \"memsize\":40}\n",
                                    (i + 1) * 16);
    }
    hc_retention *r = analysed(&s, &g, dump, len);
    free(dump);
    if (!r) goto done;
    static const uint64_t old[] = {0x10};
    uint8_t *is_new = new_but(&g, old, 1);
    char *json = hc_retention_growth_json(r, is_new, 3);
    HC_CHECK(is_json(json), "one JSON object");
    HC_CHECK(json && strstr(json, "\"retained\":{\"objects\":999999,\"memsize\":39999960}"), "all retained");
    char *holder = value_of(json, "holder");
    /* the 200,000th new object: at (200,000 + 1) * 16 = 0x30d410, holding 800,000 */
    HC_CHECK(holder && strncmp(holder, "{\"address\":\"0x30d410\",", 22) == 0 &&
                 strstr(holder, "\"growth_memsize\":32000000,\"growth_objects\":800000,\"growth_share\":0.8000,"
                                "\"path_length\":200002,"),
             "the holder: %.300s", holder ? holder : "(null)");
    free(holder);
    char *holders = value_of(json, "holders");
    HC_CHECK(holders && strncmp(holders, "[{\"address\":\"0x30d410\",", 23) == 0 &&
                 strstr(holders, "},{\"address\":\"0xf42380\",") && /* holding 9: the (N - 8)th new, at (N - 7) * 16 */
                 strstr(holders, "\"growth_memsize\":360,\"growth_objects\":9,") &&
                 strstr(holders, "\"growth_memsize\":320,\"growth_objects\":8,") && !strstr(holders, "\"growth_objects\":10,"),
             "holders: the holder, then those holding 9 and 8: %.200s", holders ? holders : "(null)");
    free(holders);
    free(json);
    free(is_new);
    hc_retention_free(r);
done:
    hc_summary_free(&s);
    hc_graph_free(&g);
}

/* Sites under the sampled tracer: an object with a sample weight counts that many times in its
 * growth site (an estimate, said), as in the report; the totals, types and holders count it once. */
static void test_growth_of_sampled_sites(void)
{
    static const char dump[] =
        "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\"]}\n"
        "{\"address\":\"0x10\", \"type\":\"ARRAY\", \"references\":[\"0x20\", \"0x30\"], \"memsize\":40}\n"
        "{\"address\":\"0x20\", \"type\":\"STRING\", \"file\":\"s.rb\", \"line\":1, \"sample_weight\":50, \"memsize\":100}\n"
        "{\"address\":\"0x30\", \"type\":\"STRING\", \"file\":\"s.rb\", \"line\":2, \"memsize\":100}\n"
        "{\"address\":\"0x40\", \"type\":\"STRING\", \"file\":\"s.rb\", \"line\":1, \"sample_weight\":50, \"memsize\":200}\n";
    hc_summary s;
    hc_graph g;
    hc_retention *r = analysed(&s, &g, dump, sizeof dump - 1);
    if (!r) goto done;
    static const uint64_t old[] = {0x10};
    uint8_t *is_new = new_but(&g, old, 1);
    char *json = hc_retention_growth_json(r, is_new, 10);
    char *v = value_of(json, "sites");
    HC_CHECK_STR(v, "[{\"file\":\"s.rb\",\"line\":1,\"objects\":100,\"memsize\":15000,\"retained_objects\":50,"
                    "\"retained_memsize\":5000,\"garbage_objects\":50,\"garbage_memsize\":10000,\"estimated\":true,\"sampled\":2},"
                    "{\"file\":\"s.rb\",\"line\":2,\"objects\":1,\"memsize\":100,\"retained_objects\":1,\"retained_memsize\":100,"
                    "\"garbage_objects\":0,\"garbage_memsize\":0}]",
                 "the sampled site by its weight");
    free(v);
    v = value_of(json, "growth");
    HC_CHECK_STR(v, "{\"retained\":{\"objects\":2,\"memsize\":200},\"garbage\":{\"objects\":1,\"memsize\":200},"
                    "\"own\":{\"objects\":0,\"memsize\":0}}", "the totals: each object once");
    free(v);
    v = value_of(json, "holder");
    HC_CHECK(v && strncmp(v, "{\"address\":\"0x10\",", 18) == 0 && strstr(v, "\"growth_memsize\":200,\"growth_objects\":2,"),
             "the holder: %s", v ? v : "(null)");
    free(v);
    free(json);
    free(is_new);
    hc_retention_free(r);
done:
    hc_summary_free(&s);
    hc_graph_free(&g);
}

/* DUMP's analysis as JSON, made in one step (hc_retention_new) or two (prepare, then complete). */
static char *report_json(int two_steps)
{
    hc_summary s;
    hc_graph g;
    char err[512] = "";
    read_dump(&s, &g);
    hc_retention *r = NULL;
    if (two_steps) {
        r = hc_retention_prepare(&g, &s, err, sizeof err);
        int class_refs = 0;
        for (uint32_t v = 0; v < g.n; v++) class_refs += (g.flags[v] & HC_NODE_CLASS_REF) != 0;
        HC_CHECK(r && g.resolved && !g.analysed && class_refs == 0, "prepared: classes named, references resolved (%d class "
                 "references left): %s", class_refs, err);
        if (r && hc_retention_complete(r, err, sizeof err) != 0) {
            HC_CHECK(0, "completed: %s", err);
            hc_retention_free(r);
            r = NULL;
        }
    } else {
        r = hc_retention_new(&g, &s, err, sizeof err);
    }
    char *json = r ? hc_retention_json(r, 10, 0.1, 0.001) : NULL;
    hc_retention_free(r);
    hc_graph_free(&g);
    hc_summary_free(&s);
    return json;
}

/* The report made in two steps (its first beside the tally's reading) is the one made at once. */
static void test_two_steps(void)
{
    char *once = report_json(0), *twice = report_json(1);
    HC_CHECK(is_json(once) && twice && strcmp(once, twice) == 0, "the same JSON:\n%s\n%s", once ? once : "(null)",
             twice ? twice : "(null)");
    free(once);
    free(twice);
}

int main(void)
{
    test_report();
    test_two_steps();
    test_long_lines();
    test_sampled_sites();
    test_long_chain();
    test_growth_held_by_an_old_cache();
    test_growth_along_a_chain();
    test_growth_of_sampled_sites();
    return hc_test_summary("heap_retention");
}
