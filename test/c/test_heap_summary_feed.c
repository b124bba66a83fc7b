/* heap_summary_feed.c: the summary tallied on its own thread equals the one tallied in place, however
 * the stream is cut (pieces smaller and larger than a block, a last line without newline), and
 * many times over the ring's size goes through it. */
#include "heap_summary_feed.h"
#include "hc_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n dump_all-like lines: strings and hashes at a few sites, a root, a line that is not JSON. */
static char *make_dump(size_t n, size_t *len)
{
    size_t cap = n * 200 + 256, used = 0;
    char *buf = malloc(cap);
    used += (size_t)snprintf(buf + used, cap - used, "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x1\"]}\n");
    for (size_t i = 0; i < n; i++) {
        if (i % 997 == 5) {
            used += (size_t)snprintf(buf + used, cap - used, "{\"address\":\"0x%zx\", \"type\":\"STRING\", \"method\":\"\\x\"}\n", i);
        } else if (i % 3 == 0) {
            used += (size_t)snprintf(buf + used, cap - used,
                                     "{\"address\":\"0x%zx\", \"type\":\"STRING\", \"value\":\"v%zu\", \"file\":\"app/f%zu.rb\", "
                                     "\"line\":%zu, \"generation\":%zu, \"memsize\":%zu}\n", i + 16, i, i % 7, i % 5, i % 4, 40 + i % 9);
        } else {
            used += (size_t)snprintf(buf + used, cap - used, "{\"address\":\"0x%zx\", \"type\":\"HASH\", \"size\":1, \"memsize\":%zu}\n",
                                     i + 16, 160 + i % 3);
        }
    }
    used += (size_t)snprintf(buf + used, cap - used, "{\"address\":\"0xfffff\", \"type\":\"ARRAY\", \"memsize\":7}");
    *len = used;
    return buf;
}

static char *direct_json(const char *dump, size_t len)
{
    hc_summary s;
    hc_summary_init(&s);
    hc_summary_write(&s, dump, len);
    hc_summary_finish(&s);
    char *json = hc_summary_json(&s, 50, NULL);
    hc_summary_free(&s);
    return json;
}

static char *fed_json(const char *dump, size_t len, unsigned seed)
{
    hc_summary_feed f;
    char err[256];
    HC_CHECK(hc_summary_feed_start(&f, err, sizeof err) == 0, "start: %s", err);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t at = 0; at < len;) {
        size_t piece = hc_test_xorshift(&x) % 4 == 0 ? 1 + hc_test_xorshift(&x) % (3 * HC_SUMMARY_FEED_BLOCK_BYTES)
                                                     : 1 + hc_test_xorshift(&x) % 300;
        if (piece > len - at) piece = len - at;
        hc_summary_feed_write(&f, dump + at, piece);
        at += piece;
    }
    hc_summary_feed_finish(&f);
    HC_CHECK(!f.summary.failed, "no allocation failed");
    char *json = hc_summary_json(&f.summary, 50, NULL);
    hc_summary_feed_free(&f);
    return json;
}

int main(void)
{
    size_t len;
    char *dump = make_dump(120000, &len); /* ~8 MB: the ring (4 MB) goes round twice */
    HC_CHECK(len > 2 * HC_SUMMARY_FEED_BLOCKS * HC_SUMMARY_FEED_BLOCK_BYTES, "the dump is larger than the ring: %zu", len);
    char *want = direct_json(dump, len);
    HC_CHECK(strstr(want, "\"invalid_lines\":121") != NULL, "the summary counts the broken lines: %.200s", want);
    for (unsigned seed = 1; seed <= 4; seed++) {
        char *got = fed_json(dump, len, seed);
        HC_CHECK_STR(got, want, "fed summary");
        free(got);
    }
    hc_summary_feed f; /* started and ended with nothing written */
    char err[256];
    HC_CHECK(hc_summary_feed_start(&f, err, sizeof err) == 0, "start: %s", err);
    hc_summary_feed_free(&f);
    free(want);
    free(dump);
    return hc_test_summary("heap_summary_feed");
}
