/* heap_ranges.c: slot starts inside ranges added in any order, addresses between, before, after
 * and inside a slot, strides of several sizes, bad ranges refused, and many ranges against a plain
 * scan that is obviously right. */
#include "heap_ranges.h"
#include "hc_test.h"

#include <stdint.h>

static uint32_t rng = 99;
static uint32_t next_random(void) { return hc_test_xorshift(&rng); }

static void test_basic(void)
{
    hc_heap_ranges r;
    hc_heap_ranges_init(&r);
    HC_CHECK(hc_heap_ranges_slot(&r, 0x1000) == 0, "empty: nothing is a slot");
    HC_CHECK(hc_heap_ranges_add(&r, 0x20000, 0x30000, 40) == 0, "add");
    HC_CHECK(hc_heap_ranges_add(&r, 0x10000, 0x10100, 80) == 0, "add an earlier one");
    HC_CHECK(hc_heap_ranges_add(&r, 0x5000, 0x5000, 40) == -2, "an empty range is refused");
    HC_CHECK(hc_heap_ranges_add(&r, 0x5000, 0x6000, 0) == -2, "no stride is refused");
    HC_CHECK(hc_heap_ranges_slot(&r, 0x20000) == 1, "the first slot");
    HC_CHECK(hc_heap_ranges_slot(&r, 0x20000 + 40 * 7) == 1, "a later slot");
    HC_CHECK(hc_heap_ranges_slot(&r, 0x20000 + 40 * 7 + 8) == 0, "inside a slot");
    HC_CHECK(hc_heap_ranges_slot(&r, 0x30000) == 0, "the end is outside");
    HC_CHECK(hc_heap_ranges_slot(&r, 0x10050) == 1 && hc_heap_ranges_slot(&r, 0x10028) == 0, "the 80-byte page");
    HC_CHECK(hc_heap_ranges_slot(&r, 0x10100) == 0 && hc_heap_ranges_slot(&r, 0x1ffff) == 0, "between pages");
    HC_CHECK(hc_heap_ranges_slot(&r, 0xfff) == 0 && hc_heap_ranges_slot(&r, UINTPTR_MAX) == 0, "before and after");
    hc_heap_ranges_free(&r);
}

#define PAGES 3000
static void test_against_a_scan(void)
{
    static uintptr_t start[PAGES], end[PAGES];
    static size_t stride[PAGES];
    hc_heap_ranges r;
    hc_heap_ranges_init(&r);
    for (int i = 0; i < PAGES; i++) { /* non-overlapping pages 0x10000 apart, added shuffled */
        int k = (int)((uint32_t)(i * 7919) % PAGES);
        start[i] = 0x100000 + (uintptr_t)k * 0x10000;
        stride[i] = 40u * (1u + next_random() % 4);
        end[i] = start[i] + stride[i] * (1 + next_random() % 400);
        HC_CHECK(hc_heap_ranges_add(&r, start[i], end[i], stride[i]) == 0, "add page");
    }
    int wrong = 0, slots = 0;
    for (int probe = 0; probe < 200000; probe++) {
        uintptr_t addr = 0x100000 - 0x1000 + (uintptr_t)(next_random() % (PAGES * 0x10000u + 0x2000)) / 8 * 8;
        int expected = 0;
        for (int i = 0; i < PAGES; i++)
            if (addr >= start[i] && addr < end[i] && (addr - start[i]) % stride[i] == 0) expected = 1;
        slots += expected;
        if (hc_heap_ranges_slot(&r, addr) != expected) wrong++;
    }
    HC_CHECK(wrong == 0, "%d of 200000 probes disagree with the scan", wrong);
    HC_CHECK(slots > 1000, "the probes hit slots too (%d)", slots);
    hc_heap_ranges_free(&r);
}

int main(void)
{
    test_basic();
    test_against_a_scan();
    return hc_test_summary("heap_ranges");
}
