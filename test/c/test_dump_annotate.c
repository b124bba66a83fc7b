/* dump_annotate.c: sampled object lines get their site where ObjectSpace's tracer puts it (before
 * memsize, else flags, else the closing brace), escaped, with the sample's weight after it; with a redactor, strings' values become
 * digests; every other line is byte for byte what came in; the same output however the stream is
 * cut into writes. */
#include "dump_annotate.h"
#include "hc_test.h"

#include <stdlib.h>
#include <string.h>

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
    "\"generation\":42, \"sample_weight\":5100, \"memsize\":40, \"flags\":{\"wb_protected\":true}}\n"
    "{\"address\":\"0x7f0000002000\", \"type\":\"OBJECT\", \"class\":\"0x7f00000000b0\", \"ivars\":3, "
    "\"file\":\"we \\\"quote\\\" \\\\ and\\u0009tab.rb\", \"line\":7, \"generation\":1, \"sample_weight\":1, "
    "\"flags\":{\"wb_protected\":true}}\n"
    "{\"address\":\"0x7f0000003000\", \"type\":\"ARRAY\", \"class\":\"0x7f00000000c0\", \"length\":0, "
    "\"file\":\"app/models/user.rb\", \"line\":99, \"method\":\"[]\", \"generation\":2, \"sample_weight\":4294967295}\n"
    "{\"address\":\"0x7f0000004000\", \"type\":\"STRING\", \"value\":\"not sampled\", \"memsize\":40}\n"
    "{\"address\":\"0x7f0000005000\", \"type\":\"HASH\", \"size\":1, \"file\":\"traced.rb\", \"line\":1, "
    "\"generation\":3, \"memsize\":168}\n";

static hc_sample_table *samples(void)
{
    hc_sample_table *t = hc_samples_new(16);
    hc_samples_put(t, 0x7f0000001000, "app/models/user.rb", 12, "new", 42, 5100);
    hc_samples_put(t, 0x7f0000002000, "we \"quote\" \\ and\ttab.rb", 7, NULL, 1, 1);
    hc_samples_put(t, 0x7f0000003000, "app/models/user.rb", 99, "[]", 2, UINT32_MAX);
    hc_samples_put(t, 0x7f0000005000, "other.rb", 5, NULL, 4, 9); /* already traced: left alone */
    return t;
}

/* The whole input written in pieces of `piece` bytes (0: one write). */
/* With r, strings are redacted too; *redacted (when not NULL) counts them. */
static char *run_with(const hc_redactor *r, const hc_sample_table *t, const char *input, size_t piece,
                      uint64_t *annotated, uint64_t *redacted)
{
    hc_test_out out = {0};
    hc_annotator a;
    char err[256];
    hc_annotator_init(&a, t, hc_test_collect, &out);
    if (r) hc_annotator_redact(&a, r);
    size_t len = strlen(input);
    if (!piece) piece = len;
    for (size_t at = 0; at < len; at += piece) {
        size_t n = len - at < piece ? len - at : piece;
        HC_CHECK(hc_annotator_write(&a, input + at, n, err, sizeof err) == 0, "write: %s", err);
    }
    HC_CHECK(hc_annotator_finish(&a, err, sizeof err) == 0, "finish: %s", err);
    *annotated = a.annotated;
    if (redacted) *redacted = a.redacted;
    hc_annotator_free(&a);
    return out.data ? out.data : calloc(1, 1);
}

static char *run(const hc_sample_table *t, const char *input, size_t piece, uint64_t *annotated)
{
    return run_with(NULL, t, input, piece, annotated, NULL);
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
    hc_samples_put(t, 0x7f0000001000, "a.rb", 1, NULL, 1, 77);
    got = run(t, "{\"address\":\"0x7f0000001000\", \"type\":\"STRING\"}", 5, &annotated);
    HC_CHECK_STR(got, "{\"address\":\"0x7f0000001000\", \"type\":\"STRING\", \"file\":\"a.rb\", \"line\":1, \"generation\":1, "
                 "\"sample_weight\":77}",
                 "last line");
    free(got);
    const char *odd = "{\"address\":\"0xZZ\"}\n{\"address\":\"0x7f0000001000\n\n{}\n";
    got = run(t, odd, 3, &annotated);
    HC_CHECK_STR(got, odd, "lines that are not dump_all's pass unchanged");
    free(got);
    hc_samples_free(t);
}

static const char *SECRETS =
    "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x7f0000001000\"]}\n"
    "{\"address\":\"0x7f0000001000\", \"type\":\"STRING\", \"class\":\"0x7f00000000a0\", \"bytesize\":14, "
    "\"value\":\"postgres://pw\", \"encoding\":\"UTF-8\", \"memsize\":40, \"flags\":{\"wb_protected\":true}}\n"
    "{\"address\":\"0x7f0000002000\", \"type\":\"SYMBOL\", \"value\":\"postgres\"}\n"
    "{\"address\":\"0x7f0000003000\", \"type\":\"STRING\", \"value\":\"postgres://pw\", \"memsize\":40}\n"
    "{\"address\":\"0x7f0000004000\", \"type\":\"STRING\", \"value\":\"other\"}";

static void test_strings_redacted_with_sites_added(void)
{
    if (!hc_redact_available()) return; /* test_dump_redact.c checks what such a build says */
    hc_redactor r;
    char err[256];
    HC_CHECK(hc_redactor_init(&r, err, sizeof err) == 0, "key: %s", err);
    char pw[HC_REDACT_TEXT_LEN + 1] = {0}, other[HC_REDACT_TEXT_LEN + 1] = {0};
    hc_redact_text(&r, "postgres://pw", 13, pw);
    hc_redact_text(&r, "other", 5, other);
    char want[2048];
    snprintf(want, sizeof want,
             "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x7f0000001000\"]}\n"
             "{\"address\":\"0x7f0000001000\", \"type\":\"STRING\", \"class\":\"0x7f00000000a0\", \"bytesize\":14, "
             "\"value\":\"%s\", \"encoding\":\"UTF-8\", \"file\":\"app.rb\", \"line\":3, \"generation\":9, \"sample_weight\":5100, "
             "\"memsize\":40, \"flags\":{\"wb_protected\":true}}\n"
             "{\"address\":\"0x7f0000002000\", \"type\":\"SYMBOL\", \"value\":\"postgres\"}\n"
             "{\"address\":\"0x7f0000003000\", \"type\":\"STRING\", \"value\":\"%s\", \"memsize\":40}\n"
             "{\"address\":\"0x7f0000004000\", \"type\":\"STRING\", \"value\":\"%s\"}",
             pw, pw, other);
    hc_sample_table *t = hc_samples_new(4);
    hc_samples_put(t, 0x7f0000001000, "app.rb", 3, NULL, 9, 5100);
    uint64_t redacted = 0, annotated = 0;
    char *got = run_with(&r, t, SECRETS, 0, &annotated, &redacted);
    HC_CHECK_STR(got, want, "redacted, with the site");
    HC_CHECK(redacted == 3, "three strings redacted, got %llu", (unsigned long long)redacted);
    HC_CHECK(strstr(got, "://pw") == NULL, "nothing of the value remains");
    free(got);
    int differ = 0;
    size_t len = strlen(SECRETS);
    for (size_t piece = 1; piece <= len; piece++) {
        got = run_with(&r, NULL, SECRETS, piece, &annotated, &redacted);
        differ += strstr(got, "://pw") != NULL || strstr(got, pw) == NULL;
        free(got);
    }
    HC_CHECK(differ == 0, "%d ways of cutting the stream left the value or lost the digest", differ);
    got = run_with(&r, NULL, "{\"address\":\"0x7f01\", \"type\":\"STRING\", \"value\":\"cut", 0, &annotated, &redacted);
    HC_CHECK(strstr(got, "cut") == NULL && got[strlen(got) - 1] == '}' && got[strlen(got) - 2] == '"',
             "an unterminated value is redacted and closed: %s", got);
    free(got);
    hc_samples_free(t);
    hc_redactor_wipe(&r);
}

int main(void)
{
    test_sites_go_where_the_tracer_puts_them();
    test_no_samples_is_a_plain_copy_and_a_last_line_without_newline_passes();
    test_strings_redacted_with_sites_added();
    return hc_test_summary("dump_annotate");
}
