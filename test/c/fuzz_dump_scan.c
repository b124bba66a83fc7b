/* libFuzzer: dump_scan.c on any bytes (seeded with real dump_all lines, tasks/fuzz.rake). Each
 * newline-separated piece is scanned; an accepted line's fields must point inside it, and decoding
 * its strings must stay in bounds. */
#include "dump_scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_inside(const hc_json_str *s, const char *line, size_t len)
{
    if (s->ptr < line || s->ptr + s->len > line + len) abort();
    char buf[32];
    size_t n = hc_json_str_decode(s, buf, sizeof buf);
    if (n > s->len * 4) abort(); /* at most a 4-byte UTF-8 character per input byte */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        hc_dump_line l;
        if (hc_dump_scan_line(p, n, &l) == 0) {
            if (l.has_type) check_inside(&l.type, p, n);
            if (l.has_file) check_inside(&l.file, p, n);
        }
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}
