/* dump_summary.c: a small dump fed in pieces of every size gives the same exact JSON; types,
 * generations and sites tallied; ROOT lines and broken lines counted apart; top-N cut and order;
 * a file name with escapes written back as it came. */
#include "dump_summary.h"
#include "hc_test.h"

#include <stdlib.h>
#include <string.h>

static const char DUMP[] =
    "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x1\"]}\n"
    "{\"address\":\"0x1\", \"type\":\"STRING\", \"file\":\"a.rb\", \"line\":3, \"generation\":7, \"memsize\":40}\n"
    "{\"address\":\"0x2\", \"type\":\"STRING\", \"file\":\"a.rb\", \"line\":3, \"generation\":7, \"memsize\":80}\n"
    "{\"address\":\"0x3\", \"type\":\"HASH\", \"file\":\"b\\\"c.rb\", \"line\":9, \"generation\":8, \"memsize\":160}\n"
    "{\"address\":\"0x4\", \"type\":\"OBJECT\", \"memsize\":40}\n"
    "{\"address\":\"0x5\", \"type\":\"STRING\", \"method\":\"\xc3\xbf\0x\n"
    "stale\", \"memsize\":40}\n"
    "{\"address\":\"0x6\", \"type\":\"STRING\", \"file\":\"a.rb\", \"line\":4, \"memsize\":40}";

static const char WANT[] =
    "{\"lines\":8,\"objects\":5,\"memsize\":360,\"roots\":1,\"invalid_lines\":2,\"site_count\":3,"
    "\"types\":{\"HASH\":{\"objects\":1,\"memsize\":160},\"OBJECT\":{\"objects\":1,\"memsize\":40},"
    "\"STRING\":{\"objects\":3,\"memsize\":160}},"
    "\"generations\":{\"7\":{\"objects\":2,\"memsize\":120},\"8\":{\"objects\":1,\"memsize\":160}},"
    "\"sites\":[{\"file\":\"b\\\"c.rb\",\"line\":9,\"objects\":1,\"memsize\":160},"
    "{\"file\":\"a.rb\",\"line\":3,\"objects\":2,\"memsize\":120}],"
    "\"sites_by_count\":[{\"file\":\"a.rb\",\"line\":3,\"objects\":2,\"memsize\":120},"
    "{\"file\":\"b\\\"c.rb\",\"line\":9,\"objects\":1,\"memsize\":160}]}";

int main(void)
{
    size_t len = sizeof DUMP - 1;
    for (size_t piece = 1; piece <= len; piece = piece < 16 ? piece + 1 : piece * 2) {
        hc_summary s;
        hc_summary_init(&s);
        for (size_t off = 0; off < len; off += piece)
            HC_CHECK(hc_summary_write(&s, DUMP + off, off + piece <= len ? piece : len - off) == 0, "write");
        HC_CHECK(hc_summary_finish(&s) == 0, "finish");
        size_t jlen;
        char *json = hc_summary_json(&s, 2, &jlen);
        HC_CHECK(json && jlen == strlen(json), "json");
        if (json && strcmp(json, WANT) != 0) HC_CHECK_STR(json, WANT, "the summary, in pieces of the dump");
        free(json);
        hc_summary_free(&s);
    }
    hc_summary s;
    hc_summary_init(&s);
    for (int i = 0; i < 5000; i++) { /* many sites: the maps grow */
        char line[128];
        int n = snprintf(line, sizeof line, "{\"address\":\"0x%x\", \"file\":\"f%d.rb\", \"line\":%d, \"memsize\":%d}", i + 1,
                         i % 1000, i % 7, i);
        HC_CHECK(hc_summary_line(&s, line, (size_t)n) == 0, "line");
    }
    HC_CHECK(s.all.objects == 5000 && s.sites.count == 5000, "5000 distinct (file, line) pairs: %zu", s.sites.count);
    char *json = hc_summary_json(&s, 3, NULL);
    HC_CHECK(json && strstr(json, "\"site_count\":") && strstr(json, "\"objects\":5000,"), "a larger summary");
    free(json);
    hc_summary_free(&s);
    return hc_test_summary("dump_summary");
}
