/* heap_summary.c: a small dump fed in pieces of every size gives the same exact JSON; types,
 * generations, sites (sampled ones scaled by their weight, marked estimated), references held, holders (named by their class) and duplicate strings tallied; ROOT lines and broken lines counted apart; top-N cut and order;
 * a file name with escapes written back as it came. */
#include "heap_summary.h"
#include "heap_graph.h"
#include "hc_test.h"

#include <stdlib.h>
#include <string.h>

static const char DUMP[] =
    "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x1\"]}\n"
    "{\"address\":\"0x1\", \"type\":\"STRING\", \"class\":\"0x9\", \"bytesize\":2, \"value\":\"hi\", \"file\":\"a.rb\", "
    "\"line\":3, \"generation\":7, \"memsize\":40}\n"
    "{\"address\":\"0x2\", \"type\":\"STRING\", \"value\":\"hi\", \"file\":\"a.rb\", \"line\":3, \"generation\":7, "
    "\"memsize\":80}\n"
    "{\"address\":\"0x3\", \"type\":\"HASH\", \"references\":[\"0x1\", \"0x2\"], \"file\":\"b\\\"c.rb\", \"line\":9, "
    "\"generation\":8, \"memsize\":160}\n"
    "{\"address\":\"0x4\", \"type\":\"OBJECT\", \"class\":\"0x8\", \"references\":[\"0x3\"], \"memsize\":40}\n"
    "{\"address\":\"0x5\", \"type\":\"STRING\", \"method\":\"\xc3\xbf\0x\n"
    "stale\", \"memsize\":40}\n"
    "{\"address\":\"0x6\", \"type\":\"STRING\", \"value\":\"hi\", \"file\":\"a.rb\", \"line\":4, \"memsize\":40}\n"
    "{\"address\":\"0x8\", \"type\":\"CLASS\", \"name\":\"Foo\", \"references\":[\"0x9\"], \"memsize\":10}";

/* Checked by hand: 6 objects (0x5's line is broken in two), "hi" three times at two sites, 0x4's
 * class named by a line after it. */
static const char WANT[] =
    "{\"lines\":9,\"objects\":6,\"memsize\":370,\"references\":4,\"roots\":1,\"invalid_lines\":2,\"site_count\":3,"
    "\"types\":{\"CLASS\":{\"objects\":1,\"memsize\":10},\"HASH\":{\"objects\":1,\"memsize\":160},"
    "\"OBJECT\":{\"objects\":1,\"memsize\":40},\"STRING\":{\"objects\":3,\"memsize\":160}},"
    "\"generations\":{\"7\":{\"objects\":2,\"memsize\":120},\"8\":{\"objects\":1,\"memsize\":160}},"
    "\"sites\":[{\"file\":\"b\\\"c.rb\",\"line\":9,\"objects\":1,\"memsize\":160,\"references\":2},"
    "{\"file\":\"a.rb\",\"line\":3,\"objects\":2,\"memsize\":120,\"references\":0}],"
    "\"sites_by_count\":[{\"file\":\"a.rb\",\"line\":3,\"objects\":2,\"memsize\":120,\"references\":0},"
    "{\"file\":\"b\\\"c.rb\",\"line\":9,\"objects\":1,\"memsize\":160,\"references\":2}],"
    "\"sites_by_references\":[{\"file\":\"b\\\"c.rb\",\"line\":9,\"objects\":1,\"memsize\":160,\"references\":2}],"
    "\"most_references\":[{\"address\":\"0x3\",\"type\":\"HASH\",\"references\":2,\"memsize\":160,"
    "\"file\":\"b\\\"c.rb\",\"line\":9},"
    "{\"address\":\"0x4\",\"type\":\"OBJECT\",\"class\":\"Foo\",\"references\":1,\"memsize\":40}]";

static const char WANT_STRINGS[] =
    ",\"duplicate_strings\":[{\"value\":\"hi\",\"truncated\":false,\"bytesize\":2,\"count\":3,\"memsize\":160,"
    "\"file\":\"a.rb\",\"line\":3,\"more_sites\":true}]}";

/* The summary of DUMP fed in pieces of `piece` bytes, with a string tally or without. */
static char *summarize(size_t piece, int strings)
{
    size_t len = sizeof DUMP - 1;
    hc_summary s;
    hc_string_tally t;
    hc_summary_init(&s);
    hc_string_tally_init(&t);
    if (strings) s.strings = &t;
    for (size_t off = 0; off < len; off += piece)
        HC_CHECK(hc_summary_write(&s, DUMP + off, off + piece <= len ? piece : len - off) == 0, "write");
    HC_CHECK(hc_summary_finish(&s) == 0, "finish");
    size_t jlen;
    char *json = hc_summary_json(&s, 2, &jlen);
    HC_CHECK(json && jlen == strlen(json), "json");
    hc_summary_free(&s);
    hc_string_tally_free(&t);
    return json;
}

/* A graph-only summary (the retention's, beside the report's): the lines, their sites and the class
 * names, but no types, generations, holders or strings. */
static void test_graph_only(void)
{
    hc_summary s;
    hc_string_tally t;
    hc_summary_init(&s);
    hc_string_tally_init(&t);
    s.graph_only = 1;
    s.strings = &t;
    HC_CHECK(hc_summary_write(&s, DUMP, sizeof DUMP - 1) == 0 && hc_summary_finish(&s) == 0, "write");
    HC_CHECK(s.lines == 9 && s.invalid == 2 && s.roots == 1 && s.all.objects == 6 && s.all.memsize == 370,
             "the lines and objects counted: %llu %llu", (unsigned long long)s.lines, (unsigned long long)s.all.objects);
    HC_CHECK(s.types.count == 0 && s.generations.count == 0 && s.holders_count == 0 && t.table.count == 0,
             "no types, generations, holders or strings");
    HC_CHECK(s.sites.count == 3, "the sites kept (ids for the graph): %zu", s.sites.count);
    const char *foo = hc_summary_class_name(&s, 0x8);
    HC_CHECK(foo && strcmp(foo, "Foo") == 0, "the class names kept");
    hc_summary_free(&s);
    hc_string_tally_free(&t);
}

/* Of 2000 objects holding i % 97 references, the 3 kept are those holding 96 (most memsize first). */
static void test_holders_kept(void)
{
    hc_summary s;
    hc_summary_init(&s);
    s.keep = 3;
    for (int i = 0; i < 2000; i++) {
        char line[1400];
        int n = snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"type\":\"ARRAY\", \"memsize\":%d, \"references\":[", i + 1, i);
        for (int r = 0; r < i % 97; r++) n += snprintf(line + n, sizeof line - (size_t)n, r ? ", \"0x%x\"" : "\"0x%x\"", r + 1);
        n += snprintf(line + n, sizeof line - (size_t)n, "]}");
        HC_CHECK(hc_summary_line(&s, line, (size_t)n) == 0, "line");
    }
    HC_CHECK(s.holders_count == 3, "3 kept: %zu", s.holders_count);
    /* i % 97 == 96: i = 96, 193, ..., 1939 (the largest memsize) */
    HC_CHECK(s.holders[0].references == 96 && s.holders[0].memsize == 1939 && s.holders[1].memsize == 1842 &&
             s.holders[2].memsize == 1745, "the top 3: %llu %llu %llu", (unsigned long long)s.holders[0].memsize,
             (unsigned long long)s.holders[1].memsize, (unsigned long long)s.holders[2].memsize);
    hc_summary_free(&s);
}

/* A line of n references (entry k escaped when k == escaped_at), a site and memsize after them. */
static char *long_line(size_t n, size_t escaped_at, size_t *len)
{
    char *line = malloc(n * 24 + 256);
    size_t k = (size_t)sprintf(line, "{\"address\":\"0x9\", \"type\":\"HASH\", \"references\":[");
    for (size_t i = 0; i < n; i++)
        k += (size_t)sprintf(line + k, i == escaped_at ? "%s\"0x\\u0031%zx\"" : "%s\"0x%zx\"", i ? ", " : "", i + 16);
    k += (size_t)sprintf(line + k, "], \"file\":\"big.rb\", \"line\":3, \"memsize\":%zu}", n * 8);
    *len = k;
    return line;
}

/* A long line fed in pieces: its references are counted as they come, the buffer stays small,
 * and the summary is the one of the whole line scanned at once; cut short, it is invalid. */
static void test_long_lines(void)
{
    const size_t n = 200000;
    size_t escaped[] = {(size_t)-1, 150000};
    for (size_t e = 0; e < 2; e++) {
        size_t len;
        char *line = long_line(n, escaped[e], &len);
        hc_summary whole;
        hc_summary_init(&whole);
        HC_CHECK(hc_summary_line(&whole, line, len) == 0, "the whole line");
        char *want = hc_summary_json(&whole, 5, NULL);
        HC_CHECK(whole.all.references == n && whole.invalid == 0, "%zu references at once", n);
        size_t pieces[] = {4096, 100000, 1 << 20};
        for (size_t pi = 0; pi < 3; pi++) {
            hc_summary s;
            hc_summary_init(&s);
            for (size_t off = 0; off < len; off += pieces[pi])
                HC_CHECK(hc_summary_write(&s, line + off, off + pieces[pi] <= len ? pieces[pi] : len - off) == 0, "write");
            HC_CHECK(e == 1 || s.partial_cap <= 2 * (HC_SUMMARY_LONG_LINE + pieces[pi]),
                     "pieces of %zu: the buffer stayed small (%zu bytes for a %zu-byte line)", pieces[pi], s.partial_cap, len);
            HC_CHECK(hc_summary_write(&s, "\n", 1) == 0, "newline");
            HC_CHECK(s.partial_cap <= HC_SUMMARY_PARTIAL_KEEP, "pieces of %zu: at most %d bytes kept once the line is read (%zu)",
                     pieces[pi], HC_SUMMARY_PARTIAL_KEEP, s.partial_cap);
            char *got = hc_summary_json(&s, 5, NULL);
            HC_CHECK_STR(got, want, "a long line in pieces");
            free(got);
            hc_summary_free(&s);
        }
        hc_summary cut;
        hc_summary_init(&cut);
        HC_CHECK(hc_summary_write(&cut, line, len / 2) == 0 && hc_summary_finish(&cut) == 0, "half a line");
        HC_CHECK(cut.invalid == 1 && cut.all.objects == 0, "half a long line is not JSON");
        hc_summary_free(&cut);
        free(want);
        hc_summary_free(&whole);
        free(line);
    }
}

/* A summary that feeds a graph keeps a long line whole (the graph needs its references), and once
 * the line is read its buffer, megabytes, is freed, not held to the end. */
static void test_long_line_for_a_graph(void)
{
    const size_t n = 200000;
    size_t len;
    char *line = long_line(n, (size_t)-1, &len);
    hc_summary s;
    hc_graph g;
    hc_summary_init(&s);
    hc_graph_init(&g);
    s.graph = &g;
    for (size_t off = 0; off < len; off += 4096)
        HC_CHECK(hc_summary_write(&s, line + off, off + 4096 <= len ? 4096 : len - off) == 0, "write");
    HC_CHECK(s.partial_cap > HC_SUMMARY_PARTIAL_KEEP, "the whole line kept while it comes: %zu bytes for %zu", s.partial_cap, len);
    HC_CHECK(hc_summary_write(&s, "\n", 1) == 0 && hc_summary_finish(&s) == 0, "newline");
    HC_CHECK(!s.partial && s.partial_cap == 0, "its buffer freed once it is read: %zu bytes", s.partial_cap);
    HC_CHECK(g.n == 1 && g.nrefs == n, "the graph has its %zu references: %u object(s), %llu references", n, g.n,
             (unsigned long long)g.nrefs);
    hc_graph_free(&g);
    hc_summary_free(&s);
    free(line);
}

/* Sampled lines (a "sample_weight") count their weight in their site's objects, memsize and
 * references, the site marked estimated with the lines seen, and rank it so; types, generations,
 * the totals and the holders count each object once. */
static void test_sampled_sites(void)
{
    static const char dump[] =
        "{\"address\":\"0x1\", \"type\":\"STRING\", \"file\":\"s.rb\", \"line\":1, \"generation\":2, \"memsize\":40}\n"
        "{\"address\":\"0x2\", \"type\":\"STRING\", \"file\":\"s.rb\", \"line\":1, \"generation\":2, \"memsize\":40}\n"
        "{\"address\":\"0x3\", \"type\":\"ARRAY\", \"references\":[\"0x1\"], \"file\":\"s.rb\", \"line\":1, "
        "\"generation\":2, \"sample_weight\":100, \"memsize\":40}\n"
        "{\"address\":\"0x4\", \"type\":\"STRING\", \"file\":\"s.rb\", \"line\":1, \"generation\":3, "
        "\"sample_weight\":50, \"memsize\":80}\n"
        "{\"address\":\"0x5\", \"type\":\"STRING\", \"file\":\"big.rb\", \"line\":2, \"memsize\":5000}\n"
        "{\"address\":\"0x6\", \"type\":\"STRING\", \"sample_weight\":7, \"memsize\":1}\n"
        "{\"address\":\"0x7\", \"type\":\"STRING\", \"file\":\"zero.rb\", \"line\":3, \"sample_weight\":0, "
        "\"memsize\":8}\n";
    hc_summary s;
    hc_summary_init(&s);
    HC_CHECK(hc_summary_write(&s, dump, sizeof dump - 1) == 0 && hc_summary_finish(&s) == 0, "summary");
    char *json = hc_summary_json(&s, 5, NULL);
    /* s.rb:1: 2 exact + 100 + 50 objects; 80 + 100 x 40 + 50 x 80 bytes; 100 x 1 references */
    static const char want[] =
        "{\"lines\":7,\"objects\":7,\"memsize\":5209,\"references\":1,\"roots\":0,\"invalid_lines\":0,\"site_count\":3,"
        "\"types\":{\"ARRAY\":{\"objects\":1,\"memsize\":40},\"STRING\":{\"objects\":6,\"memsize\":5169}},"
        "\"generations\":{\"2\":{\"objects\":3,\"memsize\":120},\"3\":{\"objects\":1,\"memsize\":80}},"
        "\"sites\":[{\"file\":\"s.rb\",\"line\":1,\"objects\":152,\"memsize\":8080,\"references\":100,"
        "\"estimated\":true,\"sampled\":2},"
        "{\"file\":\"big.rb\",\"line\":2,\"objects\":1,\"memsize\":5000,\"references\":0},"
        "{\"file\":\"zero.rb\",\"line\":3,\"objects\":1,\"memsize\":8,\"references\":0}],"
        "\"sites_by_count\":[{\"file\":\"s.rb\",\"line\":1,\"objects\":152,\"memsize\":8080,\"references\":100,"
        "\"estimated\":true,\"sampled\":2},"
        "{\"file\":\"big.rb\",\"line\":2,\"objects\":1,\"memsize\":5000,\"references\":0},"
        "{\"file\":\"zero.rb\",\"line\":3,\"objects\":1,\"memsize\":8,\"references\":0}],"
        "\"sites_by_references\":[{\"file\":\"s.rb\",\"line\":1,\"objects\":152,\"memsize\":8080,\"references\":100,"
        "\"estimated\":true,\"sampled\":2}],"
        "\"most_references\":[{\"address\":\"0x3\",\"type\":\"ARRAY\",\"references\":1,\"memsize\":40,"
        "\"file\":\"s.rb\",\"line\":1}]}";
    HC_CHECK_STR(json, want, "sampled lines scaled in their site only (a weight without a site, or of 0: exact)");
    free(json);
    hc_summary_free(&s);
    /* a weight past a uint32 counts as UINT32_MAX; products past a uint64 saturate */
    hc_summary_init(&s);
    static const char huge[] =
        "{\"address\":\"0x1\", \"file\":\"h.rb\", \"line\":1, \"sample_weight\":99999999999, \"memsize\":8}\n"
        "{\"address\":\"0x2\", \"file\":\"h.rb\", \"line\":1, \"sample_weight\":4294967295, "
        "\"memsize\":18446744073709551615}\n";
    HC_CHECK(hc_summary_write(&s, huge, sizeof huge - 1) == 0, "huge");
    json = hc_summary_json(&s, 1, NULL);
    HC_CHECK(json && strstr(json, "\"sites\":[{\"file\":\"h.rb\",\"line\":1,\"objects\":8589934590,"
                                  "\"memsize\":18446744073709551615,\"references\":0,\"estimated\":true,\"sampled\":2}]"),
             "clamped and saturated: %s", json ? json : "(null)");
    free(json);
    hc_summary_free(&s);
}

int main(void)
{
    size_t len = sizeof DUMP - 1;
    char want_strings[sizeof WANT + sizeof WANT_STRINGS];
    snprintf(want_strings, sizeof want_strings, "%s%s", WANT, WANT_STRINGS);
    char want[sizeof WANT + 1];
    snprintf(want, sizeof want, "%s}", WANT);
    for (size_t piece = 1; piece <= len; piece = piece < 16 ? piece + 1 : piece * 2) {
        char *json = summarize(piece, 1);
        if (json && strcmp(json, want_strings) != 0) HC_CHECK_STR(json, want_strings, "the summary, in pieces of the dump");
        free(json);
    }
    char *json = summarize(len, 0);
    HC_CHECK_STR(json, want, "without a string tally: no duplicate strings");
    free(json);
    test_holders_kept();
    test_long_lines();
    test_sampled_sites();
    test_graph_only();
    test_long_line_for_a_graph();
    hc_summary s;
    hc_summary_init(&s);
    for (int i = 0; i < 5000; i++) { /* many sites: the maps grow */
        char line[128];
        int n = snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"file\":\"f%d.rb\", \"line\":%d, \"memsize\":%d}", i + 1,
                         i % 1000, i % 7, i);
        HC_CHECK(hc_summary_line(&s, line, (size_t)n) == 0, "line");
    }
    HC_CHECK(s.all.objects == 5000 && s.sites.count == 5000, "5000 distinct (file, line) pairs: %zu", s.sites.count);
    json = hc_summary_json(&s, 3, NULL);
    HC_CHECK(json && strstr(json, "\"site_count\":") && strstr(json, "\"objects\":5000,"), "a larger summary");
    free(json);
    hc_summary_free(&s);
    return hc_test_summary("heap_summary");
}
