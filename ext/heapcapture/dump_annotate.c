/* Editing a dump_all stream: sampled sites added, strings redacted (see dump_annotate.h). Written by hand: a JSON
 * parser would re-encode every line, and the line's own layout (dump_all's, fixed) is all that
 * is needed: the address at its start, a field name to insert before. */
#define _GNU_SOURCE /* memmem */
#include "dump_annotate.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HC_ADDRESS_PREFIX "{\"address\":\"0x"

void hc_annotator_init(hc_annotator *a, const hc_sample_table *samples, hc_annotate_emit emit, void *arg)
{
    memset(a, 0, sizeof *a);
    a->samples = samples;
    a->emit = emit;
    a->arg = arg;
}

void hc_annotator_redact(hc_annotator *a, const hc_redactor *r)
{
    a->redactor = r;
}

void hc_annotator_free(hc_annotator *a)
{
    free(a->carry);
    a->carry = NULL;
    a->carry_len = a->carry_cap = 0;
}

/* The address an object line starts with, or 0. */
static uintptr_t hc_line_address(const char *line, size_t len)
{
    size_t plen = sizeof HC_ADDRESS_PREFIX - 1;
    if (len <= plen || memcmp(line, HC_ADDRESS_PREFIX, plen) != 0) return 0;
    uintptr_t addr = 0;
    size_t i = plen;
    for (; i < len && i < plen + 16; i++) {
        char c = line[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) break;
        addr = (addr << 4) | (uintptr_t)v;
    }
    return i < len && line[i] == '"' ? addr : 0;
}

/* Where the site goes in an object line: before "memsize", else "flags", else the last '}'.
 * len when there is no place (not a dump_all object line). */
static size_t hc_insert_at(const char *line, size_t len)
{
    static const char *const before[] = {", \"memsize\":", ", \"flags\":"};
    for (size_t k = 0; k < 2; k++) {
        const char *at = memmem(line, len, before[k], strlen(before[k]));
        if (at) return (size_t)(at - line);
    }
    for (size_t i = len; i > 0; i--) {
        if (line[i - 1] == '}') return i - 1;
    }
    return len;
}

/* s as the inside of a JSON string: quote, backslash and control characters escaped. */
static size_t hc_json_escape(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        size_t k;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            k = 2;
        } else if (c < 0x20) {
            k = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", c);
        } else {
            tmp[0] = (char)c;
            k = 1;
        }
        if (n + k >= cap) break; /* cut: the buffer below is sized for any real path */
        memcpy(out + n, tmp, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

static int hc_emit_site(hc_annotator *a, const hc_sample *s, char *err, size_t errlen)
{
    char file[8192], method[1024], buf[sizeof file + sizeof method + 128];
    hc_json_escape(hc_samples_string(a->samples, s->file), file, sizeof file);
    int n;
    if (s->method != HC_SAMPLE_NO_METHOD) {
        hc_json_escape(hc_samples_string(a->samples, s->method), method, sizeof method);
        n = snprintf(buf, sizeof buf, ", \"file\":\"%s\", \"line\":%d, \"method\":\"%s\", \"generation\":%u, "
                     "\"sample_weight\":%u", file, (int)s->line, method, (unsigned)s->generation, (unsigned)s->weight);
    } else {
        n = snprintf(buf, sizeof buf, ", \"file\":\"%s\", \"line\":%d, \"generation\":%u, \"sample_weight\":%u", file,
                     (int)s->line, (unsigned)s->generation, (unsigned)s->weight);
    }
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
    a->annotated++;
    return a->emit(a->arg, buf, (size_t)n, err, errlen);
}

/* What a complete line (newline excluded) gets: a site (the line's sample: not when it carries
 * one already, ObjectSpace's tracer having been on for it), a redacted value. */
typedef struct {
    const hc_sample *sample;
    int redact;
    size_t value_from, value_to;
} hc_line_edits;

static int hc_line_edits_of(const hc_annotator *a, const char *line, size_t len, hc_line_edits *e)
{
    e->sample = NULL;
    e->redact = a->redactor && hc_redact_span(line, len, &e->value_from, &e->value_to);
    if (a->samples) {
        uintptr_t addr = hc_line_address(line, len);
        const hc_sample *s = addr ? hc_samples_get(a->samples, addr) : NULL;
        static const char file_key[] = ", \"file\":\"";
        if (s && !memmem(line, len, file_key, sizeof file_key - 1)) e->sample = s;
    }
    return e->sample || e->redact;
}

static int hc_emit_value(hc_annotator *a, const hc_line_edits *e, const char *line, size_t body, char *err,
                         size_t errlen)
{
    char text[HC_REDACT_TEXT_LEN];
    hc_redact_text(a->redactor, line + e->value_from, e->value_to - e->value_from, text);
    a->redacted++;
    if (a->emit(a->arg, text, sizeof text, err, errlen) != 0) return -1;
    /* A value that ran to the end of the line (never from dump_all): closed, so the line stays JSON. */
    return e->value_to == body ? a->emit(a->arg, "\"}", 2, err, errlen) : 0;
}

/* Emits line[0, len) (len includes its newline, if any) with its edits (e), or as it is when e is
 * NULL. dump_all writes a string's value before its memsize, where a site goes; either order works. */
static int hc_emit_line(hc_annotator *a, const hc_line_edits *e, const char *line, size_t len, char *err, size_t errlen)
{
    size_t body = len && line[len - 1] == '\n' ? len - 1 : len;
    size_t at = e && e->sample ? hc_insert_at(line, body) : body;
    int site = e && e->sample && at < body;
    int value = e && e->redact;
    /* A place for the site inside the value (only in a line dump_all did not write): no site. */
    if (site && value && at >= e->value_from && at <= e->value_to) site = 0;
    if (!site && !value) return a->emit(a->arg, line, len, err, errlen);
    size_t pos = 0;
    if (site && (!value || at <= e->value_from)) {
        if (a->emit(a->arg, line, at, err, errlen) != 0 || hc_emit_site(a, e->sample, err, errlen) != 0) return -1;
        pos = at;
        site = 0;
    }
    if (value) {
        if (a->emit(a->arg, line + pos, e->value_from - pos, err, errlen) != 0 ||
            hc_emit_value(a, e, line, body, err, errlen) != 0)
            return -1;
        pos = e->value_to;
    }
    if (site) {
        if (a->emit(a->arg, line + pos, at - pos, err, errlen) != 0 || hc_emit_site(a, e->sample, err, errlen) != 0)
            return -1;
        pos = at;
    }
    return a->emit(a->arg, line + pos, len - pos, err, errlen);
}

/* A complete line held in the carry buffer (len with its newline, if any). */
static int hc_emit_carried(hc_annotator *a, size_t len, char *err, size_t errlen)
{
    size_t body = len && a->carry[len - 1] == '\n' ? len - 1 : len;
    hc_line_edits e;
    int edited = hc_line_edits_of(a, a->carry, body, &e);
    return hc_emit_line(a, edited ? &e : NULL, a->carry, len, err, errlen);
}

static int hc_carry_append(hc_annotator *a, const char *buf, size_t len, char *err, size_t errlen)
{
    if (a->carry_len + len > a->carry_cap) {
        size_t cap = a->carry_cap ? a->carry_cap : 4096;
        while (cap < a->carry_len + len) cap *= 2;
        char *carry = realloc(a->carry, cap);
        if (!carry) {
            hc_errorf(err, errlen, "annotating the heap dump: out of memory for a line of %zu bytes",
                      a->carry_len + len);
            return -1;
        }
        a->carry = carry;
        a->carry_cap = cap;
    }
    memcpy(a->carry + a->carry_len, buf, len);
    a->carry_len += len;
    return 0;
}

int hc_annotator_write(hc_annotator *a, const void *data, size_t len, char *err, size_t errlen)
{
    const char *buf = data, *end = buf + len;
    if (a->carry_len) { /* finish the line that began in an earlier write */
        const char *nl = memchr(buf, '\n', len);
        if (!nl) return hc_carry_append(a, buf, len, err, errlen);
        if (hc_carry_append(a, buf, (size_t)(nl + 1 - buf), err, errlen) != 0) return -1;
        int rc = hc_emit_carried(a, a->carry_len, err, errlen);
        a->carry_len = 0;
        if (rc != 0) return -1;
        buf = nl + 1;
    }
    /* Whole lines: runs of lines that stay as they are go out in one piece. */
    const char *run = buf;
    while (buf < end) {
        const char *nl = memchr(buf, '\n', (size_t)(end - buf));
        if (!nl) break;
        size_t n = (size_t)(nl + 1 - buf);
        hc_line_edits e;
        if (hc_line_edits_of(a, buf, n - 1, &e)) {
            if (buf > run && a->emit(a->arg, run, (size_t)(buf - run), err, errlen) != 0) return -1;
            if (hc_emit_line(a, &e, buf, n, err, errlen) != 0) return -1;
            run = nl + 1;
        }
        buf = nl + 1;
    }
    if (buf > run && a->emit(a->arg, run, (size_t)(buf - run), err, errlen) != 0) return -1;
    return buf < end ? hc_carry_append(a, buf, (size_t)(end - buf), err, errlen) : 0;
}

int hc_annotator_finish(hc_annotator *a, char *err, size_t errlen)
{
    if (!a->carry_len) return 0;
    int rc = hc_emit_carried(a, a->carry_len, err, errlen);
    a->carry_len = 0;
    return rc;
}
