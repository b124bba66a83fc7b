/* heap_addr_set.c: what was added is found, what was not is not, through many growths; 0 is never in
 * it; adding twice counts once. */
#include "heap_addr_set.h"
#include "hc_test.h"

int main(void)
{
    hc_addr_set s;
    hc_addr_set_init(&s);
    HC_CHECK(!hc_addr_set_has(&s, 0x7f0000001000), "empty");
    const size_t n = 300000;
    int failed = 0;
    for (size_t i = 1; i <= n; i++) failed |= hc_addr_set_add(&s, 0x7f0000000000ull + i * 40) != 0;
    for (size_t i = 1; i <= n; i += 7) failed |= hc_addr_set_add(&s, 0x7f0000000000ull + i * 40) != 0;
    HC_CHECK(!failed, "every add succeeded");
    HC_CHECK(s.count == n, "each address once: %zu", s.count);
    size_t missing = 0, extra = 0;
    for (size_t i = 1; i <= n; i++) {
        missing += !hc_addr_set_has(&s, 0x7f0000000000ull + i * 40);
        extra += hc_addr_set_has(&s, 0x7f0000000000ull + i * 40 + 8);
    }
    HC_CHECK(missing == 0 && extra == 0, "%zu missing, %zu found that were not added", missing, extra);
    HC_CHECK(hc_addr_set_add(&s, 0) == 0 && !hc_addr_set_has(&s, 0) && s.count == n, "0 is not an address");
    HC_CHECK(s.count * 2 <= s.cap, "at most half full: %zu of %zu", s.count, s.cap);
    hc_addr_set_free(&s);
    return hc_test_summary("heap_addr_set");
}
