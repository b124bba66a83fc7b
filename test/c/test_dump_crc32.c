/* dump_crc32.c against zlib's crc32: every length through the 64-byte fold, the 16-byte tail and
 * the 0-15 bytes left to zlib, at every alignment, in one call and split in two, and large buffers. */
#include "dump_crc32.h"
#include "hc_test.h"

#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

static void test_known_values(void)
{
    HC_CHECK(hc_crc32(0, "123456789", 9) == 0xCBF43926u, "the CRC-32 check value, got %08x",
             hc_crc32(0, "123456789", 9));
    HC_CHECK(hc_crc32(0, NULL, 0) == 0, "empty from the start");
    HC_CHECK(hc_crc32(0x1234abcdu, NULL, 0) == 0x1234abcdu, "an empty piece keeps the CRC");
    unsigned char zeros[256] = {0};
    HC_CHECK(hc_crc32(0, zeros, sizeof zeros) == (uint32_t)crc32_z(0, zeros, sizeof zeros), "zeros");
    unsigned char ones[256];
    memset(ones, 0xff, sizeof ones);
    HC_CHECK(hc_crc32(0, ones, sizeof ones) == (uint32_t)crc32_z(0, ones, sizeof ones), "0xff bytes");
}

static void test_every_length_and_alignment(void)
{
    unsigned char *buf = hc_test_random_bytes(600, 1);
    int mismatches = 0;
    for (size_t align = 0; align < 16; align++) {
        for (size_t len = 0; len + align <= 600; len++) {
            uint32_t want = (uint32_t)crc32_z(0, buf + align, len);
            if (hc_crc32(0, buf + align, len) != want) mismatches++;
        }
    }
    HC_CHECK(mismatches == 0, "%d of the lengths 0..600 at alignments 0..15 differ from zlib", mismatches);
    free(buf);
}

static void test_split_in_two(void)
{
    unsigned char *buf = hc_test_random_bytes(1000, 2);
    uint32_t whole = (uint32_t)crc32_z(0, buf, 1000);
    int mismatches = 0;
    for (size_t cut = 0; cut <= 1000; cut++) {
        uint32_t crc = hc_crc32(0, buf, cut);
        if (hc_crc32(crc, buf + cut, 1000 - cut) != whole) mismatches++;
    }
    HC_CHECK(mismatches == 0, "%d of 1001 cuts give another CRC than the whole", mismatches);
    free(buf);
}

static void test_large_buffers(void)
{
    size_t len = 9 * 1024 * 1024 + 77;
    unsigned char *buf = hc_test_random_bytes(len, 3);
    HC_CHECK(hc_crc32(0, buf, len) == (uint32_t)crc32_z(0, buf, len), "9 MiB of random bytes");
    uint32_t crc = 0, want = 0;
    for (size_t off = 0; off < len; off += 256 * 1024 + 3) {
        size_t take = len - off < 256 * 1024 + 3 ? len - off : 256 * 1024 + 3;
        crc = hc_crc32(crc, buf + off, take);
        want = (uint32_t)crc32_z(want, buf + off, take);
    }
    HC_CHECK(crc == want, "the same bytes in uneven pieces");
    free(buf);
}

int main(void)
{
    printf("dump_crc32: %s\n", hc_crc32_accelerated() ? "carry-less multiply" : "zlib's crc32 (no carry-less multiply here)");
    test_known_values();
    test_every_length_and_alignment();
    test_split_in_two();
    test_large_buffers();
    return hc_test_summary("dump_crc32");
}
