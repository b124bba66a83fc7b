/* libFuzzer: heap_scan.c on any bytes (seeded with real dump_all lines, rakelib/fuzz.rake). Each
 * newline-separated piece is scanned; an accepted line's fields must point inside it, and decoding
 * its strings must stay in bounds; a value seen twice (heap_strings.c) keeps a preview that is a
 * prefix of it and still a JSON string. */
#include "heap_scan.h"
#include "heap_strings.h"

#include <stdio.h>

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

static void check_preview(const hc_json_str *v)
{
    hc_string_tally t;
    hc_string_tally_init(&t);
    if (hc_string_tally_add(&t, v, 40, 1) != 0 || hc_string_tally_add(&t, v, 40, 2) != 0 || t.dups_count != 1) abort();
    const hc_string_dup *d = &t.dups[0];
    if (d->preview_len > HC_STRINGS_PREVIEW || d->preview_len > v->len || memcmp(d->preview, v->ptr, d->preview_len) != 0 ||
        d->cut != (d->preview_len < v->len) || d->count != 2 || d->memsize != 80 || !d->more_sites)
        abort();
    char line[HC_STRINGS_PREVIEW + 16];
    int n = snprintf(line, sizeof line, "{\"v\":\"%s\"}", d->preview);
    hc_dump_line l;
    if (n < 0 || hc_dump_scan_line(line, (size_t)n, &l) != 0) abort(); /* the preview is a JSON string's inside */
    hc_string_tally_free(&t);
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
            if (l.has_value) {
                check_inside(&l.value, p, n);
                check_preview(&l.value);
            }
            if (l.has_name) check_inside(&l.name, p, n);
            if (l.has_references && l.references > n) abort(); /* an entry takes a byte at least */
        }
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}
