/* util_table.c against a plain array of what should be there: puts, gets, removals and doublings
 * in random order, with a well-spread hash and with one that sends eight keys in ten to the same
 * few homes (long runs, wrapping at the end of the slots); a table walked by its caller (two
 * entries with one hash told apart by name); the load limit kept. */
#include "util_table.h"
#include "hc_test.h"

typedef struct {
    uint64_t key;
    uint64_t value;
    uint32_t extra[3]; /* a slot of an odd size: 28 bytes */
} __attribute__((packed)) hc_test_slot;

static uint64_t hash_spread(const void *slot) { return hc_table_mix(hc_table_slot_key(slot)); }
/* most keys share 4 homes, the rest spread */
static uint64_t hash_clumped_key(uint64_t key) { return key % 10 < 8 ? (key % 4) * 0x3fffull + 0xffff0ull : hc_table_mix(key); }
static uint64_t hash_clumped(const void *slot) { return hash_clumped_key(hc_table_slot_key(slot)); }

static void check_against_model(uint64_t (*hash_slot)(const void *), uint64_t (*hash_key)(uint64_t), unsigned load,
                                const char *what)
{
    enum { N = 20000 };
    static unsigned char present[N + 1];
    memset(present, 0, sizeof present);
    hc_table t;
    hc_table_init(&t, sizeof(hc_test_slot), load, hash_slot);
    uint32_t rng = 12345;
    size_t count = 0;
    int ok = 1;
    for (int step = 0; step < 200000 && ok; step++) {
        uint64_t key = 1 + hc_test_xorshift(&rng) % N;
        unsigned op = hc_test_xorshift(&rng) % 10;
        if (op < 6) { /* put */
            int made = 0;
            hc_test_slot *s = hc_table_put(&t, key, hash_key(key), &made);
            ok = s && made == !present[key] && s->key == key;
            if (ok && made) {
                ok = s->value == 0 && s->extra[2] == 0;
                count++;
            }
            if (ok) {
                s->value = key * 3;
                s->extra[2] = (uint32_t)key;
                present[key] = 1;
            }
        } else if (op < 8) { /* get */
            hc_test_slot *s = hc_table_get(&t, key, hash_key(key));
            ok = present[key] ? s && s->value == key * 3 && s->extra[2] == (uint32_t)key : s == NULL;
        } else { /* remove */
            hc_test_slot *s = hc_table_get(&t, key, hash_key(key));
            ok = (s != NULL) == present[key];
            if (ok && s) {
                hc_table_remove(&t, s);
                present[key] = 0;
                count--;
            }
        }
        ok = ok && t.count == count && t.count * 100 <= t.cap * t.max_load; /* the load limit kept */
        if (!ok) HC_CHECK(0, "%s: step %d, key %llu", what, step, (unsigned long long)key);
    }
    for (uint64_t key = 1; ok && key <= N; key++) {
        hc_test_slot *s = hc_table_get(&t, key, hash_key(key));
        ok = present[key] ? s && s->value == key * 3 : s == NULL;
        if (!ok) HC_CHECK(0, "%s: at the end, key %llu", what, (unsigned long long)key);
    }
    HC_CHECK(ok, "%s", what);
    HC_CHECK(t.count > N / 4 && t.cap >= 1024, "%s: %zu entries in %zu slots", what, t.count, t.cap);
    hc_table_free(&t);
}

typedef struct {
    uint64_t hash;
    const char *name;
} hc_named_slot;

static uint64_t hash_named(const void *slot) { return hc_table_slot_key(slot); }

/* The walk a table of names does: one hash for two names, each found by its name. */
static hc_named_slot *named_put(hc_table *t, const char *name, uint64_t hash)
{
    if (hc_table_reserve(t, 1) != 0) return NULL;
    for (size_t j = hc_table_home(t, hash);; j = hc_table_next(t, j)) {
        hc_named_slot *s = hc_table_slot(t, j);
        if (!s->hash) {
            hc_table_claim(t, s, hash);
            s->name = name;
            return s;
        }
        if (s->hash == hash && strcmp(s->name, name) == 0) return s;
    }
}

static void test_a_walked_table(void)
{
    hc_table t;
    hc_table_init(&t, sizeof(hc_named_slot), 50, hash_named);
    hc_named_slot *a = named_put(&t, "app/a.rb", 42);
    hc_named_slot *b = named_put(&t, "app/b.rb", 42);
    HC_CHECK(a && b && a != b && t.count == 2, "two names, one hash: two entries");
    HC_CHECK(named_put(&t, "app/a.rb", 42) == a, "the first name found again");
    for (uint64_t i = 100; i < 200; i++) named_put(&t, "x", i); /* doublings */
    hc_named_slot *a2 = named_put(&t, "app/a.rb", 42), *b2 = named_put(&t, "app/b.rb", 42);
    HC_CHECK(a2 && b2 && strcmp(a2->name, "app/a.rb") == 0 && strcmp(b2->name, "app/b.rb") == 0 && t.count == 102,
             "both names kept through the doublings: %zu entries", t.count);
    hc_table_free(&t);
}

static void test_edges(void)
{
    hc_table t;
    hc_table_init(&t, 8, 75, hash_spread);
    HC_CHECK(hc_table_get(&t, 5, hc_table_mix(5)) == NULL, "an empty table has nothing");
    int made = 1;
    HC_CHECK(hc_table_put(&t, 0, 0, &made) == NULL && !made, "key 0 is refused (it marks an empty slot)");
    HC_CHECK(hc_table_reserve(&t, 1000) == 0 && t.cap >= 1334 && t.count == 0, "reserved ahead: %zu slots", t.cap);
    size_t cap = t.cap;
    for (uint64_t k = 1; k <= 1000; k++) hc_table_put(&t, k, hc_table_mix(k), &made);
    HC_CHECK(t.cap == cap && t.count == 1000, "no doubling within what was reserved: %zu slots", t.cap);
    for (uint64_t k = 1001; t.count < t.limit; k++) hc_table_put(&t, k, hc_table_mix(k), &made);
    HC_CHECK(t.cap == cap, "filled to its limit without a doubling: %zu slots", t.cap);
    HC_CHECK(hc_table_put(&t, 7, hc_table_mix(7), &made) != NULL && !made && t.cap == cap,
             "a key already in a full table is found without a doubling: %zu slots", t.cap);
    HC_CHECK(hc_table_reserve(&t, SIZE_MAX) == -1 && t.cap == cap, "room for SIZE_MAX more is refused, not wrapped");
    hc_table_free(&t);
}

/* hc_table_hash_text is FNV-1a (the published 64-bit vectors) with its high bits folded in, never 0. */
static void test_text_hash(void)
{
    static const struct { const char *text; uint64_t fnv; } vectors[] = {
        {"", 0xcbf29ce484222325ull}, {"a", 0xaf63dc4c8601ec8cull}, {"foobar", 0x85944171f73967e8ull}};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        uint64_t want = (vectors[i].fnv ^ (vectors[i].fnv >> 29)) | (1ull << 63);
        uint64_t got = hc_table_hash_text(vectors[i].text, strlen(vectors[i].text), 0);
        HC_CHECK(got == want, "text hash of \"%s\": %016llx, want %016llx", vectors[i].text, (unsigned long long)got,
                 (unsigned long long)want);
    }
    HC_CHECK(hc_table_hash_text("app/a.rb", 8, 10) != hc_table_hash_text("app/a.rb", 8, 11), "the seed (a line) counts");
    HC_CHECK(hc_table_hash_text("app/a.rb\0tail", 8, 0) == hc_table_hash_text("app/a.rb", 8, 0), "n bytes, no more");
}

int main(void)
{
    check_against_model(hash_spread, hc_table_mix, 50, "spread, half full at most");
    check_against_model(hash_spread, hc_table_mix, 75, "spread, three quarters");
    check_against_model(hash_clumped, hash_clumped_key, 75, "clumped homes");
    test_a_walked_table();
    test_edges();
    test_text_hash();
    return hc_test_summary("util_table");
}
