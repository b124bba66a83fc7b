/* The dump line scanner (heap_scan.h): a recursive descent over one line, bounded in depth. */
#include "heap_scan.h"

#include <string.h>

#define HC_SCAN_MAX_DEPTH 64 /* dump_all nests 2 deep ("flags":{...}); more is not a dump line */

typedef struct {
    const char *p, *end;
} hc_scan;

static void hc_skip_ws(hc_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int hc_hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = (*v << 4) | (unsigned)d;
    }
    return 0;
}

/* Nonzero when one of the 8 bytes in w is a quote, a backslash or below 0x20: the bytes a string
 * scan must look at one by one (the classic "has zero byte" tests; no false negatives, and a false
 * positive only sends the scan to the byte loop). Strings are most of a dump's bytes. */
static inline uint64_t hc_special_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return ((q - ones) & ~q & high) | ((b - ones) & ~b & high) | ((w - ones * 0x20) & ~w & high);
}

/* A string at s->p (its opening quote); out gets its inside. */
static int hc_scan_string(hc_scan *s, hc_json_str *out)
{
    if (s->p >= s->end || *s->p != '"') return -1;
    const char *p = s->p + 1, *end = s->end, *start = p;
    int escaped = 0;
    for (;;) {
        /* To the next byte that matters: 8 at a time, the first flagged byte being exact. */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            uint64_t m = hc_special_bytes(w);
            if (m) {
                p += __builtin_ctzll(m) >> 3;
                goto special;
            }
            p += 8;
        }
        while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
        if (p >= end) return -1;
    special:;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            if (out) *out = (hc_json_str){start, (size_t)(p - start), escaped};
            s->p = p + 1;
            return 0;
        }
        if (c < 0x20) return -1;
        /* a backslash */
        escaped = 1;
        if (end - p < 2) return -1;
        char e = p[1];
        if (e && strchr("\"\\/bfnrt", e)) {
            p += 2;
            continue;
        }
        unsigned v;
        if (e != 'u' || end - p < 6 || hc_hex4(p + 2, &v) != 0) return -1;
        p += 6;
        if (v >= 0xd800 && v <= 0xdbff) { /* a high surrogate: a low one must follow */
            unsigned low;
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hc_hex4(p + 2, &low) != 0 || low < 0xdc00 || low > 0xdfff)
                return -1;
            p += 6;
        }
    }
}

/* A number; *u gets it when it is a non-negative integer that fits (is_uint), *i when an integer. */
static int hc_scan_number(hc_scan *s, uint64_t *u, int64_t *i, int *is_uint, int *is_int)
{
    const char *p = s->p;
    int neg = 0;
    *is_uint = *is_int = 0;
    if (p < s->end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= s->end || *p < '0' || *p > '9') return -1;
    uint64_t v = 0;
    int overflow = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < s->end && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (v > (UINT64_MAX - d) / 10) overflow = 1;
            else v = v * 10 + d;
            p++;
        }
    }
    int integer = 1;
    if (p < s->end && *p == '.') {
        integer = 0;
        p++;
        if (p >= s->end || *p < '0' || *p > '9') return -1;
        while (p < s->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        if (p < s->end && (*p == '+' || *p == '-')) p++;
        if (p >= s->end || *p < '0' || *p > '9') return -1;
        while (p < s->end && *p >= '0' && *p <= '9') p++;
    }
    s->p = p;
    if (integer && !overflow) {
        if (!neg) {
            *u = v;
            *is_uint = 1;
        }
        if (v <= (uint64_t)INT64_MAX) {
            *i = neg ? -(int64_t)v : (int64_t)v;
            *is_int = 1;
        }
    }
    return 0;
}

static int hc_scan_value(hc_scan *s, int depth);

static int hc_scan_literal(hc_scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return -1;
    s->p += n;
    return 0;
}

/* An array or object at s->p, checked and skipped; *count (when not NULL) gets its entries. */
static int hc_scan_container(hc_scan *s, int depth, uint64_t *count)
{
    uint64_t n = 0;
    char close = *s->p == '[' ? ']' : '}';
    s->p++;
    hc_skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        if (count) *count = 0;
        return 0;
    }
    for (;;) {
        n++;
        if (close == '}') {
            if (hc_scan_string(s, NULL) != 0) return -1;
            hc_skip_ws(s);
            if (s->p >= s->end || *s->p != ':') return -1;
            s->p++;
            hc_skip_ws(s);
        }
        if (hc_scan_value(s, depth + 1) != 0) return -1;
        hc_skip_ws(s);
        if (s->p >= s->end) return -1;
        if (*s->p == close) {
            s->p++;
            if (count) *count = n;
            return 0;
        }
        if (*s->p != ',') return -1;
        s->p++;
        hc_skip_ws(s);
    }
}

static int hc_scan_value(hc_scan *s, int depth)
{
    if (depth > HC_SCAN_MAX_DEPTH || s->p >= s->end) return -1;
    uint64_t u;
    int64_t i;
    int a, b;
    switch (*s->p) {
    case '"': return hc_scan_string(s, NULL);
    case '{': case '[': return hc_scan_container(s, depth, NULL);
    case 't': return hc_scan_literal(s, "true");
    case 'f': return hc_scan_literal(s, "false");
    case 'n': return hc_scan_literal(s, "null");
    default: return hc_scan_number(s, &u, &i, &a, &b);
    }
}


static int hc_parse_address(const hc_json_str *v, uint64_t *out)
{
    if (v->escaped || v->len < 3 || v->len > 18 || v->ptr[0] != '0' || v->ptr[1] != 'x') return -1;
    uint64_t a = 0;
    for (size_t k = 2; k < v->len; k++) {
        char c = v->ptr[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        a = (a << 4) | (uint64_t)d;
    }
    *out = a;
    return 0;
}

/* One top-level field's value: read into out when it is one the summaries use. */
static int hc_scan_field(hc_scan *s, const hc_json_str *key, hc_dump_line *out)
{
    if (s->p < s->end && *s->p == '"') {
        hc_json_str v;
        if (hc_scan_string(s, &v) != 0) return -1;
        if (hc_json_str_is(key, "type")) {
            out->type = v;
            out->has_type = 1;
        } else if (hc_json_str_is(key, "file")) {
            out->file = v;
            out->has_file = 1;
        } else if (hc_json_str_is(key, "address")) {
            out->has_address = hc_parse_address(&v, &out->address) == 0;
        } else if (hc_json_str_is(key, "value")) {
            out->value = v;
            out->has_value = 1;
        } else if (hc_json_str_is(key, "class")) {
            out->has_class = hc_parse_address(&v, &out->class_address) == 0;
        } else if (hc_json_str_is(key, "name")) {
            out->name = v;
            out->has_name = 1;
        } else if (hc_json_str_is(key, "root")) {
            out->root = v;
            out->has_root = 1;
        } else if (hc_json_str_is(key, "imemo_type")) {
            out->imemo_type = v;
            out->has_imemo_type = 1;
        } else if (hc_json_str_is(key, "real_class_name")) {
            out->real_class_name = v;
            out->has_real_class_name = 1;
        }
        return 0;
    }
    if (s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
        uint64_t u = 0;
        int64_t i = 0;
        int is_uint, is_int;
        if (hc_scan_number(s, &u, &i, &is_uint, &is_int) != 0) return -1;
        if (hc_json_str_is(key, "memsize") && is_uint) {
            out->memsize = u;
            out->has_memsize = 1;
        } else if (hc_json_str_is(key, "line") && is_int) {
            out->line = i;
            out->has_line = 1;
        } else if (hc_json_str_is(key, "generation") && is_uint) {
            out->generation = u;
            out->has_generation = 1;
        } else if (hc_json_str_is(key, "sample_weight") && is_uint) {
            out->sample_weight = u;
            out->has_sample_weight = 1;
        }
        return 0;
    }
    if (s->p < s->end && *s->p == '[' && hc_json_str_is(key, "references")) {
        const char *open = s->p;
        if (hc_scan_container(s, 1, &out->references) != 0) return -1;
        out->refs = (hc_json_str){open + 1, (size_t)(s->p - open - 2), 0};
        out->has_references = 1;
        return 0;
    }
    if (s->p < s->end && *s->p == 't' && hc_json_str_is(key, "singleton")) {
        if (hc_scan_literal(s, "true") != 0) return -1;
        out->singleton = 1;
        return 0;
    }
    return hc_scan_value(s, 1);
}

int hc_dump_scan_line(const char *line, size_t len, hc_dump_line *out)
{
    memset(out, 0, sizeof *out);
    hc_scan s = {line, line + len};
    hc_skip_ws(&s);
    if (s.p >= s.end || *s.p != '{') return -1;
    s.p++;
    hc_skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            hc_json_str key;
            if (hc_scan_string(&s, &key) != 0) return -1;
            hc_skip_ws(&s);
            if (s.p >= s.end || *s.p != ':') return -1;
            s.p++;
            hc_skip_ws(&s);
            if (hc_scan_field(&s, &key, out) != 0) return -1;
            hc_skip_ws(&s);
            if (s.p >= s.end) return -1;
            if (*s.p == '}') {
                s.p++;
                break;
            }
            if (*s.p != ',') return -1;
            s.p++;
            hc_skip_ws(&s);
        }
    }
    hc_skip_ws(&s);
    return s.p == s.end ? 0 : -1;
}

int hc_dump_refs_next(const hc_json_str *refs, size_t *pos, uint64_t *addr, uint64_t *bad)
{
    const char *p = refs->ptr, *end = refs->ptr + refs->len;
    for (size_t k = *pos; k < refs->len;) {
        /* An entry: from a quote (or another value) to the comma after it, outside strings. */
        while (k < refs->len && (p[k] == ' ' || p[k] == '\t' || p[k] == '\n' || p[k] == '\r' || p[k] == ',')) k++;
        if (k >= refs->len) break;
        if (p[k] != '"') { /* a number, literal, list or object (not what dump_all writes): skipped whole */
            hc_scan s = {p + k, end};
            (*bad)++;
            if (hc_scan_value(&s, 1) != 0) break;
            k = (size_t)(s.p - p);
            continue;
        }
        hc_scan s = {p + k, end};
        hc_json_str v;
        if (hc_scan_string(&s, &v) != 0) break; /* cannot be: the list was checked */
        k = (size_t)(s.p - p);
        if (hc_parse_address(&v, addr) == 0) {
            *pos = k;
            return 1;
        }
        (*bad)++;
    }
    *pos = refs->len;
    return 0;
}

static size_t hc_put_utf8(unsigned cp, char *buf)
{
    if (cp < 0x80) { buf[0] = (char)cp; return 1; }
    if (cp < 0x800) { buf[0] = (char)(0xc0 | (cp >> 6)); buf[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        buf[0] = (char)(0xe0 | (cp >> 12)); buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); buf[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    buf[0] = (char)(0xf0 | (cp >> 18)); buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); buf[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t hc_json_str_decode(const hc_json_str *s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t k = 0; k < s->len;) {
        char piece[4];
        size_t plen = 1;
        char c = s->ptr[k];
        if (c != '\\') {
            piece[0] = c;
            k++;
        } else {
            char e = k + 1 < s->len ? s->ptr[k + 1] : 0;
            const char *map = "\"\"\\\\//b\bf\fn\nr\rt\t";
            const char *m = e && e != 'u' ? strchr(map, e) : NULL;
            unsigned v = 0;
            if (m && ((m - map) % 2) == 0) {
                piece[0] = m[1];
                k += 2;
            } else if (e == 'u' && k + 6 <= s->len && hc_hex4(s->ptr + k + 2, &v) == 0) {
                k += 6;
                unsigned low;
                if (v >= 0xd800 && v <= 0xdbff && k + 6 <= s->len && s->ptr[k] == '\\' && hc_hex4(s->ptr + k + 2, &low) == 0) {
                    v = 0x10000 + ((v - 0xd800) << 10) + (low - 0xdc00);
                    k += 6;
                }
                plen = hc_put_utf8(v, piece);
            } else { /* not from a checked string: kept as it is */
                piece[0] = c;
                k++;
            }
        }
        for (size_t j = 0; j < plen; j++, n++)
            if (n + 1 < cap) out[n] = piece[j];
    }
    if (cap) out[n < cap ? n : cap - 1] = '\0';
    return n;
}
