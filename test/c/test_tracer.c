/* tracer.c: adding, finding, replacing and removing samples, against a plain array that is
 * obviously right, over many random operations (removal moves entries back: none may get lost);
 * the capacity bound; interned names; walking the slots while removing. */
#include "tracer.h"
#include "hc_test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N 4000

static uint32_t rng = 12345;
static uint32_t next_random(void) { return hc_test_xorshift(&rng); }

static void test_basic(void)
{
    hc_sample_table *t = hc_samples_new(3);
    HC_CHECK(t != NULL, "table");
    HC_CHECK(hc_samples_put(t, 0x1000, "app.rb", 12, "new", 5, 5100) == 0, "put");
    HC_CHECK(hc_samples_put(t, 0x2000, "app.rb", 13, NULL, 6, 0) == 0, "put without a method");
    const hc_sample *s = hc_samples_get(t, 0x1000);
    HC_CHECK(s && s->line == 12 && s->generation == 5 && s->weight == 5100, "found");
    HC_CHECK_STR(hc_samples_string(t, s->file), "app.rb", "file");
    HC_CHECK_STR(hc_samples_string(t, s->method), "new", "method");
    const hc_sample *s2 = hc_samples_get(t, 0x2000);
    HC_CHECK(s2 && s2->method == HC_SAMPLE_NO_METHOD && s2->file == s->file && s2->weight == 1,
             "no method; file interned once; a weight of 0 is 1");
    HC_CHECK(hc_samples_put(t, 0x3000, "lib.rb", 1, "x", 6, 1) == 0, "third");
    HC_CHECK(hc_samples_put(t, 0x4000, "lib.rb", 1, "x", 6, 1) == 1, "a fourth is refused: full");
    HC_CHECK(hc_samples_put(t, 0x1000, "other.rb", 2, NULL, 7, 42) == 0, "replacing when full is fine");
    HC_CHECK(hc_samples_get(t, 0x1000)->line == 2 && hc_samples_get(t, 0x1000)->weight == 42 && hc_samples_count(t) == 3,
             "replaced");
    HC_CHECK(hc_samples_remove(t, 0x2000) == 1 && hc_samples_remove(t, 0x2000) == 0, "removed once");
    HC_CHECK(hc_samples_get(t, 0x2000) == NULL && hc_samples_count(t) == 2, "gone");
    HC_CHECK(hc_samples_get(t, 0) == NULL && hc_samples_put(t, 0, "a", 1, NULL, 1, 1) == -1, "address 0 is no object");
    HC_CHECK(hc_samples_string(t, 999) == NULL, "no such string");
    hc_samples_free(t);
}

/* Random puts and removes, each checked against a reference list of (addr, id). */
static void test_against_a_reference(void)
{
    hc_sample_table *t = hc_samples_new(N);
    static uintptr_t addrs[N];
    static uint64_t ids[N];
    size_t n = 0;
    int lost = 0;
    for (int op = 0; op < 200000; op++) {
        uint32_t r = next_random();
        /* few distinct hash homes: long probe runs, wrap-around included */
        uintptr_t addr = (uintptr_t)(0x7f0000000000ULL + (uint64_t)(next_random() % (N * 2)) * 40);
        size_t k;
        for (k = 0; k < n && addrs[k] != addr; k++) {}
        if (r % 3 == 0 && k < n) {
            HC_CHECK(hc_samples_remove(t, addr) == 1, "remove a present one");
            addrs[k] = addrs[n - 1];
            ids[k] = ids[n - 1];
            n--;
        } else if (k < n || n < N) {
            int rc = hc_samples_put(t, addr, "f.rb", op, NULL, 1, 1);
            HC_CHECK(rc == 0, "put %d", rc);
            if (k == n) addrs[n++] = addr;
            ids[k] = (uint64_t)op;
        }
        if (op % 5000 == 0) {
            for (size_t i = 0; i < n; i++) {
                const hc_sample *s = hc_samples_get(t, addrs[i]);
                if (!s || (uint64_t)s->line != ids[i]) lost++;
            }
        }
    }
    HC_CHECK(lost == 0, "%d samples lost or wrong", lost);
    HC_CHECK(hc_samples_count(t) == n, "count %zu vs %zu", hc_samples_count(t), n);
    size_t walked = 0;
    for (size_t slot = 0; slot < hc_samples_slots(t); slot++) walked += hc_samples_at(t, slot) != NULL;
    HC_CHECK(walked == n, "walked %zu of %zu", walked, n);
    /* Removing while walking, as the pruning does: look at the same slot again after a removal. */
    for (size_t slot = 0; slot < hc_samples_slots(t);) {
        const hc_sample *s = hc_samples_at(t, slot);
        if (s && s->line % 2 == 0) {
            hc_samples_remove(t, s->addr);
            continue;
        }
        slot++;
    }
    size_t odd = 0;
    for (size_t i = 0; i < n; i++) {
        const hc_sample *s = hc_samples_get(t, addrs[i]);
        if (ids[i] % 2) odd += s && (uint64_t)s->line == ids[i];
        else HC_CHECK(s == NULL, "an even one was left");
    }
    HC_CHECK(hc_samples_count(t) == odd, "every odd one stayed: %zu vs %zu", hc_samples_count(t), odd);
    hc_samples_free(t);
}

static void test_many_names(void)
{
    hc_sample_table *t = hc_samples_new(5000);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "file-%d.rb", i);
        HC_CHECK(hc_samples_put(t, (uintptr_t)(i + 1) * 8, name, i, name, 0, 1) == 0, "put %d", i);
    }
    int wrong = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "file-%d.rb", i);
        const hc_sample *s = hc_samples_get(t, (uintptr_t)(i + 1) * 8);
        if (!s || strcmp(hc_samples_string(t, s->file), name) != 0 || s->method != s->file) wrong++;
    }
    HC_CHECK(wrong == 0, "%d names wrong", wrong);
    hc_samples_free(t);
}

int main(void)
{
    test_basic();
    test_against_a_reference();
    test_many_names();
    return hc_test_summary("tracer");
}
