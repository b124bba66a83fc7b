/* dump_redact.c: a STRING record's value (only its value) is found; equal values get equal
 * digests under one key and others under another key. (The annotator's use of it, in the stream:
 * test_dump_annotate.c.) */
#include "dump_redact.h"
#include "hc_test.h"

#include <stdlib.h>
#include <string.h>

static int span_of(const char *line, char *value, size_t cap)
{
    size_t from = 0, to = 0;
    if (!hc_redact_span(line, strlen(line), &from, &to)) return 0;
    size_t n = to - from < cap - 1 ? to - from : cap - 1;
    memcpy(value, line + from, n);
    value[n] = '\0';
    return 1;
}

static void test_the_value_of_string_records_only(void)
{
    char v[256];
    HC_CHECK(span_of("{\"address\":\"0x7f01\", \"type\":\"STRING\", \"class\":\"0x7f02\", \"bytesize\":6, "
                     "\"value\":\"s3cr\\\"t\", \"encoding\":\"UTF-8\", \"memsize\":40}", v, sizeof v), "a string");
    HC_CHECK_STR(v, "s3cr\\\"t", "its value, escapes as written");
    HC_CHECK(span_of("{\"address\":\"0x7f01\", \"type\":\"STRING\", \"value\":\"a\\\\\", \"memsize\":40}", v, sizeof v),
             "a value ending in an escaped backslash");
    HC_CHECK_STR(v, "a\\\\", "up to the quote that closes it");
    HC_CHECK(span_of("{\"address\":\"0x7f01\", \"type\":\"STRING\", \"value\":\"\", \"memsize\":40}", v, sizeof v),
             "an empty value");
    HC_CHECK_STR(v, "", "empty");
    HC_CHECK(!span_of("{\"address\":\"0x7f01\", \"type\":\"STRING\", \"bytesize\":3, \"memsize\":40}", v, sizeof v),
             "a string without value (not ASCII: dump_all leaves it out)");
    HC_CHECK(!span_of("{\"address\":\"0x7f01\", \"type\":\"SYMBOL\", \"value\":\"name\"}", v, sizeof v), "a symbol");
    HC_CHECK(!span_of("{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[]}", v, sizeof v), "a root");
    HC_CHECK(!span_of("{\"address\":\"0x7f01\", \"type\":\"OBJECT\", \"value\":\"x\"}", v, sizeof v), "an object");
    HC_CHECK(span_of("{\"address\":\"0x7f01\", \"type\":\"STRING\", \"value\":\"cut", v, sizeof v), "unterminated");
    HC_CHECK_STR(v, "cut", "runs to the end of the line");
}

static void test_digests(void)
{
    hc_redactor r1, r2;
    char err[256];
    HC_CHECK(hc_redactor_init(&r1, err, sizeof err) == 0, "key: %s", err);
    HC_CHECK(hc_redactor_init(&r2, err, sizeof err) == 0, "key: %s", err);
    char a[HC_REDACT_TEXT_LEN + 1] = {0}, b[HC_REDACT_TEXT_LEN + 1] = {0}, c[HC_REDACT_TEXT_LEN + 1] = {0},
         d[HC_REDACT_TEXT_LEN + 1] = {0};
    hc_redact_text(&r1, "hunter2", 7, a);
    hc_redact_text(&r1, "hunter2", 7, b);
    hc_redact_text(&r1, "hunter3", 7, c);
    hc_redact_text(&r2, "hunter2", 7, d);
    HC_CHECK(strncmp(a, HC_REDACT_PREFIX, strlen(HC_REDACT_PREFIX)) == 0, "prefix: %s", a);
    HC_CHECK(strspn(a + strlen(HC_REDACT_PREFIX), "0123456789abcdef") == 32, "32 hex digits: %s", a);
    HC_CHECK_STR(a, b, "equal values, one key: one digest");
    HC_CHECK(strcmp(a, c) != 0, "different values differ");
    HC_CHECK(strcmp(a, d) != 0, "another capture's key gives another digest");
    hc_redactor_wipe(&r1);
    int zero = 1;
    for (size_t i = 0; i < sizeof r1.key; i++) zero &= r1.key[i] == 0;
    HC_CHECK(zero && !r1.ready, "wiped");
    hc_redactor_wipe(&r2);
}

int main(void)
{
    test_the_value_of_string_records_only();
    if (hc_redact_available()) {
        test_digests();
    } else {
        hc_redactor r;
        char err[256] = "";
        HC_CHECK(hc_redactor_init(&r, err, sizeof err) != 0 && strstr(err, "libsodium"),
                 "without libsodium, redaction says what to install: %s", err);
    }
    return hc_test_summary("dump_redact");
}
