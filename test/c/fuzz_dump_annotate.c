/* libFuzzer harness for dump_annotate.c: arbitrary bytes as a dump_all stream, cut into writes at
 * points the input chooses, with addresses that are sampled. It must never crash, leak or
 * overflow; the output must be the input plus exactly the fields it says it added, and with no
 * samples the input itself; with redaction too, the same lines (one per newline). Run: bundle exec rake fuzz:dump_annotate FUZZ_SECONDS=60 */
#include "dump_annotate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char *data;
    size_t len, cap;
} out_buf;

static int collect(void *arg, const void *buf, size_t len, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    out_buf *o = arg;
    if (o->len + len > o->cap) {
        o->cap = (o->len + len) * 2 + 64;
        o->data = realloc(o->data, o->cap);
        if (!o->data) abort();
    }
    memcpy(o->data + o->len, buf, len);
    o->len += len;
    return 0;
}

static size_t run(const hc_sample_table *t, const hc_redactor *r, const uint8_t *data, size_t size, size_t piece,
                  out_buf *o, uint64_t *n)
{
    hc_annotator a;
    char err[256];
    hc_annotator_init(&a, t, collect, o);
    if (r) hc_annotator_redact(&a, r);
    for (size_t at = 0; at < size; at += piece) {
        size_t take = size - at < piece ? size - at : piece;
        if (hc_annotator_write(&a, data + at, take, err, sizeof err) != 0) abort();
    }
    if (hc_annotator_finish(&a, err, sizeof err) != 0) abort();
    *n = a.annotated;
    hc_annotator_free(&a);
    return o->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t piece = 1 + data[0] % 64;
    data++;
    size--;
    hc_sample_table *none = hc_samples_new(1);
    out_buf plain = {0};
    uint64_t n = 0;
    run(none, NULL, data, size, piece, &plain, &n);
    if (n != 0 || plain.len != size || (size && memcmp(plain.data, data, size) != 0)) abort();
    /* Sample every address 0x1..0xff and 0x7f00000000..: what a fuzzer finds by writing them. */
    hc_sample_table *t = hc_samples_new(512);
    for (uintptr_t addr = 1; addr < 256; addr++)
        hc_samples_put(t, addr, "f\"\\.rb", (int)addr, addr % 2 ? "m" : NULL, 1, (uint32_t)addr);
    out_buf got = {0};
    run(t, NULL, data, size, piece, &got, &n);
    if (got.len < size || (n == 0 && got.len != size)) abort();
    static hc_redactor r;
    char err[256];
    if (!r.ready && hc_redact_available() && hc_redactor_init(&r, err, sizeof err) != 0) abort();
    if (r.ready) {
        out_buf red = {0};
        run(t, &r, data, size, piece, &red, &n);
        size_t in_lines = 0, out_lines = 0;
        for (size_t i = 0; i < size; i++) in_lines += data[i] == '\n';
        for (size_t i = 0; i < red.len; i++) out_lines += red.data[i] == '\n';
        if (in_lines != out_lines) abort();
        free(red.data);
    }
    free(plain.data);
    free(got.data);
    hc_samples_free(none);
    hc_samples_free(t);
    return 0;
}
