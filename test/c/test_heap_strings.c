/* heap_strings.c: equal values counted once each, distinct ones apart (100,000 of one length);
 * memsize summed, the first known site kept and other sites said; the top in order; previews cut
 * at 64 bytes, never inside an escape, a surrogate pair or a UTF-8 character. */
#include "heap_strings.h"
#include "hc_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(hc_string_tally *t, const char *value, uint64_t memsize, uint32_t site)
{
    hc_json_str v = {value, strlen(value), strchr(value, '\\') != NULL};
    HC_CHECK(hc_string_tally_add(t, &v, memsize, site) == 0, "add %s", value);
}

static void test_counts(void)
{
    hc_string_tally t;
    hc_string_tally_init(&t);
    for (int i = 0; i < 5; i++) add(&t, "five", 40, 1);
    for (int i = 0; i < 3; i++) add(&t, "three", 100, i == 2 ? 2 : 1);
    add(&t, "once", 40, 1);
    add(&t, "a\\\"b", 40, 0);
    add(&t, "a\\\"b", 40, 0);
    add(&t, "later", 40, 0);
    add(&t, "later", 40, 3);
    HC_CHECK(t.table.count == 5 && t.dups_count == 4, "5 values, 4 seen twice: %zu %zu", t.table.count, t.dups_count);
    size_t n;
    hc_string_dup **top = hc_string_tally_top(&t, 2, &n);
    HC_CHECK(top && n == 2, "top 2 of 3");
    if (top && n == 2) {
        HC_CHECK(strcmp(top[0]->preview, "five") == 0 && top[0]->count == 5 && top[0]->memsize == 200 &&
                 top[0]->site == 1 && !top[0]->more_sites && top[0]->bytesize == 4, "five");
        HC_CHECK(strcmp(top[1]->preview, "three") == 0 && top[1]->count == 3 && top[1]->memsize == 300 &&
                 top[1]->more_sites, "three, from two sites");
    }
    free(top);
    top = hc_string_tally_top(&t, 10, &n);
    HC_CHECK(n == 4 && strcmp(top[3]->preview, "later") == 0 && top[3]->site == 3 && top[3]->more_sites,
             "the site of a later copy when the first has none");
    HC_CHECK(n == 4 && strcmp(top[2]->preview, "a\\\"b") == 0 && top[2]->bytesize == 3 && top[2]->site == 0 &&
             !top[2]->more_sites, "an escaped value: decoded bytesize 3, no site");
    free(top);
    hc_string_tally_end(&t); /* the counting table goes, the duplicates stay */
    HC_CHECK(!t.table.slots && t.table.cap == 0 && t.dups_count == 4, "ended: no table, 4 duplicates kept");
    top = hc_string_tally_top(&t, 1, &n);
    HC_CHECK(top && n == 1 && strcmp(top[0]->preview, "five") == 0 && top[0]->count == 5, "the top after the end");
    free(top);
    hc_string_tally_free(&t);
}

static void test_distinct(void)
{
    hc_string_tally t;
    hc_string_tally_init(&t);
    char v[16];
    for (int i = 0; i < 100000; i++) {
        snprintf(v, sizeof v, "v%08d", i);
        add(&t, v, 40, 0);
    }
    HC_CHECK(t.table.count == 100000 && t.dups_count == 0, "100,000 distinct values: %zu, %zu twice", t.table.count, t.dups_count);
    add(&t, "v00012345", 40, 0);
    HC_CHECK(t.table.count == 100000 && t.dups_count == 1, "one seen again");
    size_t n;
    hc_string_dup **top = hc_string_tally_top(&t, 5, &n);
    HC_CHECK(n == 1 && strcmp(top[0]->preview, "v00012345") == 0 && top[0]->count == 2, "it is the top");
    free(top);
    hc_string_tally_free(&t);
}

/* Through many doublings (each rehashed in place), then every value again: each is found (seen
 * twice), none added anew, for values of one length and of many. */
static void test_growth_keeps_every_value(void)
{
    enum { N = 300000 };
    for (int lengths = 0; lengths < 2; lengths++) {
        hc_string_tally t;
        hc_string_tally_init(&t);
        char v[48];
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < N; i++) {
                if (lengths) snprintf(v, sizeof v, "%.*s%d", i % 29, "abcdefghijklmnopqrstuvwxyz0123", i);
                else snprintf(v, sizeof v, "%08d", i);
                add(&t, v, 40, 0);
            }
        HC_CHECK(t.table.count == N && t.dups_count == N, "%s: %d values twice each: %zu distinct, %zu seen twice",
                 lengths ? "many lengths" : "one length", N, t.table.count, t.dups_count);
        int twice = 1;
        for (size_t k = 0; k < t.dups_count; k++) twice &= t.dups[k].count == 2;
        HC_CHECK(twice, "each counted twice");
        HC_CHECK(t.table.cap * 3 >= t.table.count * 4 && t.table.cap >= 1024 && (t.table.cap & (t.table.cap - 1)) == 0, "at most 3/4 full: %zu", t.table.cap);
        hc_string_tally_free(&t);
    }
}

/* The first table (1,024 slots) holds a run of 8 values that all hash to slot 1022, so they sit at
 * 1022, 1023 and, wrapped, 0 to 5; in the doubled table the first two go to slot 2046 and the other
 * six stay at home, 1022. The doubling meets the wrapped six before the two it must move out of
 * their way: none may be left beyond a slot that then empties. Every value is found again after. */
static void test_growth_of_a_wrapped_run(void)
{
    char run[8][16], v[16];
    int movers = 0, stayers = 0; /* run[0..2): home 2046 once doubled; run[2..8): 1022 */
    for (int i = 0; (movers < 2 || stayers < 6) && i < 10000000; i++) {
        snprintf(v, sizeof v, "w%d", i);
        uint64_t h = hc_string_hash(v, strlen(v));
        if ((h & 1023) != 1022) continue;
        if ((h & 1024) && movers < 2) memcpy(run[movers++], v, sizeof v);
        else if (!(h & 1024) && stayers < 6) memcpy(run[2 + stayers++], v, sizeof v);
    }
    int have = movers + stayers;
    HC_CHECK(movers == 2 && stayers == 6, "values of slot 1022: %d moving, %d staying", movers, stayers);
    hc_string_tally t;
    hc_string_tally_init(&t);
    for (int k = 0; k < have; k++) add(&t, run[k], 40, 0);
    for (int i = 0; t.table.cap == 1024 || i < 100; i++) { /* fillers, past the doubling */
        snprintf(v, sizeof v, "f%d", i);
        add(&t, v, 40, 0);
    }
    size_t distinct = t.table.count;
    for (int k = 0; k < have; k++) add(&t, run[k], 40, 0);
    HC_CHECK(t.table.cap == 2048 && t.table.count == distinct && t.dups_count == (size_t)have,
             "after the doubling each of the run is found: %zu slots, %zu distinct (was %zu), %zu seen twice", t.table.cap,
             t.table.count, distinct, t.dups_count);
    hc_string_tally_free(&t);
}

/* The preview of value, after two copies. */
static void check_preview(const char *value, const char *want, int cut)
{
    hc_string_tally t;
    hc_string_tally_init(&t);
    add(&t, value, 40, 0);
    add(&t, value, 40, 0);
    HC_CHECK(t.dups_count == 1 && strcmp(t.dups[0].preview, want) == 0 && t.dups[0].cut == cut, "preview of %s: %s", value,
             t.dups_count ? t.dups[0].preview : "(none)");
    hc_string_tally_free(&t);
}

static void test_previews(void)
{
    char a70[71], want[80];
    memset(a70, 'a', 70);
    a70[70] = '\0';
    memcpy(want, a70, 64);
    want[64] = '\0';
    check_preview(a70, want, 1);
    check_preview("short", "short", 0);
    char v[128];
    /* 62 a's, then \n: the escape would end at 64 bytes, so it stays */
    snprintf(v, sizeof v, "%.62s\\nzzzz", a70);
    snprintf(want, sizeof want, "%.62s\\n", a70);
    check_preview(v, want, 1);
    snprintf(v, sizeof v, "%.63s\\nzzzz", a70); /* the escape would cross 64: left out */
    snprintf(want, sizeof want, "%.63s", a70);
    check_preview(v, want, 1);
    snprintf(v, sizeof v, "%.55s\\ud83d\\ude00zz", a70); /* a pair from 55 to 67: left out whole */
    snprintf(want, sizeof want, "%.55s", a70);
    check_preview(v, want, 1);
    snprintf(v, sizeof v, "%.58s\\u00e9zzz", a70); /* \u00e9 from 58 to 64: kept */
    snprintf(want, sizeof want, "%.58s\\u00e9", a70);
    check_preview(v, want, 1);
    snprintf(v, sizeof v, "%.62s\xe2\x82\xac", a70); /* a 3-byte character from 62 to 65 */
    snprintf(want, sizeof want, "%.62s", a70);
    check_preview(v, want, 1);
    char ff[62];
    memset(ff, 0xff, 61); /* bytes no UTF-8 has: one at a time, so the escape after them is not cut (fuzzer) */
    ff[61] = '\0';
    snprintf(v, sizeof v, "%s\\u00e9zzz", ff);
    check_preview(v, ff, 1);
}

int main(void)
{
    test_counts();
    test_distinct();
    test_growth_keeps_every_value();
    test_growth_of_a_wrapped_run();
    test_previews();
    return hc_test_summary("heap_strings");
}
