/* heap_scan.c: the fields of real dump_all lines (3.1 and 3.3 layouts, with and without a site, a
 * sampled site's weight), the lines Ruby's JSON.parse accepts and those it rejects (each case was
 * checked against JSON 2.6), Ruby 3.1's broken lines (ruby/ruby#6161), and decoding escaped names. */
#include "heap_scan.h"
#include "hc_test.h"

#include <string.h>

static int scan(const char *line, hc_dump_line *out) { return hc_dump_scan_line(line, strlen(line), out); }

static void test_fields(void)
{
    hc_dump_line l;
    const char *s31 = "{\"address\":\"0x7f3a1c2b4f28\", \"type\":\"STRING\", \"class\":\"0x7f3a1c0e1f40\", "
                      "\"frozen\":true, \"embedded\":true, \"bytesize\":5, \"value\":\"he\\\"l\\\\o\", "
                      "\"encoding\":\"UTF-8\", \"coderange\":\"7bit\", \"file\":\"app/models/user.rb\", \"line\":12, "
                      "\"method\":\"name\", \"generation\":42, \"memsize\":40, \"flags\":{\"wb_protected\":true, \"old\":true}}";
    HC_CHECK(scan(s31, &l) == 0, "a 3.1 string line");
    HC_CHECK(l.has_address && l.address == 0x7f3a1c2b4f28ull, "address");
    HC_CHECK(l.has_type && l.type.len == 6 && memcmp(l.type.ptr, "STRING", 6) == 0, "type");
    HC_CHECK(l.has_memsize && l.memsize == 40, "memsize");
    HC_CHECK(l.has_file && l.file.len == 18 && !l.file.escaped && l.has_line && l.line == 12, "site");
    HC_CHECK(l.has_generation && l.generation == 42, "generation");
    HC_CHECK(l.has_value && l.value.len == 8 && l.value.escaped && memcmp(l.value.ptr, "he\\\"l", 5) == 0, "value");
    HC_CHECK(l.has_class && l.class_address == 0x7f3a1c0e1f40ull, "class");
    HC_CHECK(!l.has_references && !l.has_name, "no references, no name");
    HC_CHECK(!l.has_sample_weight, "a site ObjectSpace's tracer wrote: no weight");

    const char *sampled = "{\"address\":\"0x7f00ee\", \"type\":\"OBJECT\", \"class\":\"0x7f00bb\", \"ivars\":3, "
                          "\"file\":\"app.rb\", \"line\":7, \"method\":\"new\", \"generation\":9, \"sample_weight\":5100, "
                          "\"memsize\":40, \"flags\":{\"wb_protected\":true}}";
    HC_CHECK(scan(sampled, &l) == 0 && l.has_file && l.line == 7 && l.has_generation && l.generation == 9 &&
             l.has_memsize && l.memsize == 40, "a line the sampled tracer's annotation wrote");
    HC_CHECK(l.has_sample_weight && l.sample_weight == 5100, "its weight");
    HC_CHECK(scan("{\"address\":\"0x1\", \"sample_weight\":-2}", &l) == 0 && !l.has_sample_weight &&
             scan("{\"address\":\"0x1\", \"sample_weight\":\"5\"}", &l) == 0 && !l.has_sample_weight &&
             scan("{\"address\":\"0x1\", \"sample_weight\":1.5}", &l) == 0 && !l.has_sample_weight,
             "a weight that is no count is left out");

    const char *s33 = "{\"address\":\"0x7f00aa\", \"type\":\"OBJECT\", \"shape_id\":12, \"slot_size\":40, "
                      "\"class\":\"0x7f00bb\", \"ivars\":3, \"references\":[\"0x7f00cc\", \"0x7f00dd\"], \"memsize\":40, "
                      "\"flags\":{\"wb_protected\":true}}";
    HC_CHECK(scan(s33, &l) == 0 && l.has_memsize && l.memsize == 40 && !l.has_file && !l.has_generation,
             "a 3.3 object line without a site");
    HC_CHECK(l.has_references && l.references == 2 && l.has_class && l.class_address == 0x7f00bb, "2 references");
    HC_CHECK(scan("{\"address\":\"0x9\", \"type\":\"CLASS\", \"name\":\"Foo::Bar\", \"references\":[]}", &l) == 0 &&
             l.has_name && l.name.len == 8 && l.has_references && l.references == 0, "a class's name, no references");
    HC_CHECK(scan("{\"address\":\"0x9\", \"references\":[[\"0x1\", \"0x2\"], \"0x3\"]}", &l) == 0 && l.references == 2,
             "the references list's own entries");
    HC_CHECK(scan("{\"address\":\"0x9\", \"references\":\"0x1\", \"class\":\"Foo\"}", &l) == 0 && !l.has_references &&
             !l.has_class, "references that are no list, a class that is no address: left out");
    HC_CHECK(scan("{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x1\", \"0x2\"]}", &l) == 0 &&
             !l.has_address && l.type.len == 4, "a ROOT line");
    HC_CHECK(scan("{\"address\":\"0x1\", \"type\":\"IMEMO\", \"imemo_type\":\"env\", \"memsize\":\"lots\"}", &l) == 0 &&
             !l.has_memsize, "a memsize that is not a number is left out");
    HC_CHECK(scan("{\"address\":\"0x1\", \"file\":\"a\\u00e9\\\"b.rb\", \"line\":-3}", &l) == 0 && l.file.escaped &&
             l.line == -3, "escaped file");
    char buf[64];
    HC_CHECK(hc_json_str_decode(&l.file, buf, sizeof buf) == 8 && strcmp(buf, "a\xc3\xa9\"b.rb") == 0, "decoded: %s", buf);
    HC_CHECK(hc_json_str_decode(&l.file, buf, 4) == 8 && strcmp(buf, "a\xc3\xa9") == 0, "cut short");
    hc_json_str pair = {"\\ud83d\\ude00", 12, 1};
    HC_CHECK(hc_json_str_decode(&pair, buf, sizeof buf) == 4 && memcmp(buf, "\xf0\x9f\x98\x80", 4) == 0, "a pair");
}

static void test_what_json_parse_accepts(void)
{
    hc_dump_line l;
    const char *ok[] = {"{}", " {\"a\" : 1 } ", "{\"a\":\"\xff\"}", "{\"a\":\"\x7f\"}", "{\"a\":1,\"a\":2}",
                        "{\"a\":-0}", "{\"a\":123456789012345678901234567890}", "{\"a\":1e5}", "{\"a\":1E+2}",
                        "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\udc00\"}", "{\"a\":\"\\u0000\"}", "{\"a\":{}}",
                        "{\"a\":[true,false,null,[],{\"b\":[1.5]}]}"};
    const char *bad[] = {"", "{\"a\":\"x\x01y\"}", "{\"a\":\"\t\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\ud800x\"}",
                         "{\"a\":1} x", "{\"a\":NaN}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}",
                         "{\"a\":[1,]}", "{\"a\":tru}", "[1]", "\"x\"", "{\"a\":1", "{\"a\"}", "{a:1}",
                         "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":1,}"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) HC_CHECK(scan(ok[i], &l) == 0, "accepted: %s", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) HC_CHECK(scan(bad[i], &l) != 0, "rejected: %s", bad[i]);
    HC_CHECK(hc_dump_scan_line("{\"a\":\"x\0y\"}", 11, &l) != 0, "a NUL in a string");
    char deep[300];
    memset(deep, '[', 150);
    memset(deep + 150, ']', 150);
    char line[320];
    snprintf(line, sizeof line, "{\"a\":%.*s}", 300, deep);
    HC_CHECK(scan(line, &l) != 0, "nesting deeper than any dump line");
}

/* Ruby 3.1 writes "method":"\u00ff" then a NUL and stale bytes, newlines among them, for a method
 * whose name is not ASCII: every piece the newlines cut it into is rejected. */
static void test_ruby_6161(void)
{
    const char broken[] = "{\"address\":\"0x7f1\", \"type\":\"STRING\", \"file\":\"sidekiq.rb\", \"line\":3, "
                          "\"method\":\"\xc3\xbf\0stale\nbytes\", \"memsize\":40}";
    const char *p = broken, *end = broken + sizeof broken - 1;
    int pieces = 0, rejected = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        hc_dump_line l;
        pieces++;
        rejected += hc_dump_scan_line(p, n, &l) != 0;
        p += n + (nl ? 1 : 0);
    }
    HC_CHECK(pieces == 2 && rejected == 2, "%d of %d pieces rejected", rejected, pieces);
}

/* The string scan takes 8 bytes at a time: a byte that matters is seen wherever it falls. */
static void test_special_bytes_at_every_offset(void)
{
    static const struct {
        const char *x;
        int ok;
    } cases[] = {{"\\\"", 1}, {"\\u00e9", 1}, {"\\n", 1}, {"\x7f", 1}, {"\xff\xfe", 1}, {"\n", 0}, {"\x01", 0},
                 {"\\x", 0}, {"\\ud800", 0}, {"\"", 0}};
    int wrong = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t before = 0; before < 24; before++) {
            for (size_t after = 0; after < 12; after += 5) {
                char line[128];
                int n = snprintf(line, sizeof line, "{\"address\":\"0x1\", \"v\":\"%.*s%s%.*s\", \"memsize\":9}",
                                 (int)before, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", cases[c].x, (int)after, "bbbbbbbbbbbbbbbb");
                hc_dump_line out;
                int ok = hc_dump_scan_line(line, (size_t)n, &out) == 0 && out.memsize == 9;
                if (ok != cases[c].ok) {
                    wrong++;
                    fprintf(stderr, "offset %zu: %s\n", before, line);
                }
            }
        }
    }
    HC_CHECK(wrong == 0, "%d lines judged unlike JSON.parse", wrong);
}

int main(void)
{
    test_fields();
    test_special_bytes_at_every_offset();
    test_what_json_parse_accepts();
    test_ruby_6161();
    return hc_test_summary("heap_scan");
}
