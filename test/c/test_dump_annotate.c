/* dump_annotate.c: sampled object lines get their site where ObjectSpace's tracer puts it (before
 * memsize, else flags, else the closing brace), escaped; every other line is byte for byte what
 * came in; the same output however the stream is cut into writes. */
#include "dump_annotate.h"
#include "hc_test.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, cap;
} hc_out;

static int collect(void *arg, const void *buf, size_t len, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    hc_out *o = arg;
    if (o->len + len + 1 > o->cap) {
        o->cap = (o->len + len + 1) * 2;
        o->data = realloc(o->data, o->cap);
    }
    memcpy(o->data + o->len, buf, len);
    o->len += len;
    o->data[o->len] = '\0';
    return 0;
}

static const char *INPUT =
    "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x7f0000001000\"]}\n"
    "{\"address\":\"0x7f0000001000\", \"type\":\"STRING\", \"class\":\"0x7f00000000a0\", \"bytesize\":3, "
    "\"value\":\"abc\", \"encoding\":\"UTF-8\", \"memsize\":40, \"flags\":{\"wb_protected\":true}}\n"
    "{\"address\":\"0x7f0000002000\", \"type\":\"OBJECT\", \"class\":\"0x7f00000000b0\", \"ivars\":3, "
    "\"flags\":{\"wb_protected\":true}}\n"
    "{\"address\":\"0x7f0000003000\", \"type\":\"ARRAY\", \"class\":\"0x7f00000000c0\", \"length\":0}\n"
    "{\"address\":\"0x7f0000004000\", \"type\":\"STRING\", \"value\":\"not sampled\", \"memsize\":40}\n"
    "{\"address\":\"0x7f0000005000\", \"type\":\"HASH\", \"size\":1, \"file\":\"traced.rb\", \"line\":1, "
    "\"generation\":3, \"memsize\":168}\n";

static const char *WANT =
    "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x7f0000001000\"]}\n"
    "{\"address\":\"0x7f0000001000\", \"type\":\"STRING\", \"class\":\"0x7f00000000a0\", \"bytesize\":3, "
    "\"value\":\"abc\", \"encoding\":\"UTF-8\", \"file\":\"app/models/user.rb\", \"line\":12, \"method\":\"new\", "
    "\"generation\":42, \"memsize\":40, \"flags\":{\"wb_protected\":true}}\n"
    "{\"address\":\"0x7f0000002000\", \"type\":\"OBJECT\", \"class\":\"0x7f00000000b0\", \"ivars\":3, "
    "\"file\":\"we \\\"quote\\\" \\\\ and\\u0009tab.rb\", \"line\":7, \"generation\":1, \"flags\":{\"wb_protected\":true}}\n"
    "{\"address\":\"0x7f0000003000\", \"type\":\"ARRAY\", \"class\":\"0x7f00000000c0\", \"length\":0, "
    "\"file\":\"app/models/user.rb\", \"line\":99, \"method\":\"[]\", \"generation\":2}\n"
    "{\"address\":\"0x7f0000004000\", \"type\":\"STRING\", \"value\":\"not sampled\", \"memsize\":40}\n"
    "{\"address\":\"0x7f0000005000\", \"type\":\"HASH\", \"size\":1, \"file\":\"traced.rb\", \"line\":1, "
    "\"generation\":3, \"memsize\":168}\n";

static hc_sample_table *samples(void)
{
    hc_sample_table *t = hc_samples_new(16);
    hc_samples_put(t, 0x7f0000001000, 1, "app/models/user.rb", 12, "new", 42);
    hc_samples_put(t, 0x7f0000002000, 2, "we \"quote\" \\ and\ttab.rb", 7, NULL, 1);
    hc_samples_put(t, 0x7f0000003000, 3, "app/models/user.rb", 99, "[]", 2);
    hc_samples_put(t, 0x7f0000005000, 5, "other.rb", 5, NULL, 4); /* already traced: left alone */
    return t;
}

/* The whole input written in pieces of `piece` bytes (0: one write). */
static char *run(const hc_sample_table *t, const char *input, size_t piece, uint64_t *annotated)
{
    hc_out out = {0};
    hc_annotator a;
    char err[256];
    hc_annotator_init(&a, t, collect, &out);
    size_t len = strlen(input);
    if (!piece) piece = len;
    for (size_t at = 0; at < len; at += piece) {
        size_t n = len - at < piece ? len - at : piece;
        HC_CHECK(hc_annotator_write(&a, input + at, n, err, sizeof err) == 0, "write: %s", err);
    }
    HC_CHECK(hc_annotator_finish(&a, err, sizeof err) == 0, "finish: %s", err);
    *annotated = a.annotated;
    hc_annotator_free(&a);
    return out.data ? out.data : calloc(1, 1);
}

static void test_sites_go_where_the_tracer_puts_them(void)
{
    hc_sample_table *t = samples();
    uint64_t annotated = 0;
    char *got = run(t, INPUT, 0, &annotated);
    HC_CHECK_STR(got, WANT, "annotated dump");
    HC_CHECK(annotated == 3, "three lines annotated, got %llu", (unsigned long long)annotated);
    free(got);
    size_t len = strlen(INPUT);
    int differ = 0;
    for (size_t piece = 1; piece <= len; piece += piece < 40 ? 1 : 37) {
        got = run(t, INPUT, piece, &annotated);
        differ += strcmp(got, WANT) != 0;
        free(got);
    }
    HC_CHECK(differ == 0, "%d ways of cutting the stream gave another output", differ);
    hc_samples_free(t);
}

static void test_no_samples_is_a_plain_copy_and_a_last_line_without_newline_passes(void)
{
    hc_sample_table *t = hc_samples_new(1);
    uint64_t annotated = 0;
    char *got = run(t, INPUT, 7, &annotated);
    HC_CHECK_STR(got, INPUT, "unchanged");
    free(got);
    hc_samples_put(t, 0x7f0000001000, 1, "a.rb", 1, NULL, 1);
    got = run(t, "{\"address\":\"0x7f0000001000\", \"type\":\"STRING\"}", 5, &annotated);
    HC_CHECK_STR(got, "{\"address\":\"0x7f0000001000\", \"type\":\"STRING\", \"file\":\"a.rb\", \"line\":1, \"generation\":1}",
                 "last line");
    free(got);
    const char *odd = "{\"address\":\"0xZZ\"}\n{\"address\":\"0x7f0000001000\n\n{}\n";
    got = run(t, odd, 3, &annotated);
    HC_CHECK_STR(got, odd, "lines that are not dump_all's pass unchanged");
    free(got);
    hc_samples_free(t);
}

int main(void)
{
    test_sites_go_where_the_tracer_puts_them();
    test_no_samples_is_a_plain_copy_and_a_last_line_without_newline_passes();
    return hc_test_summary("dump_annotate");
}
