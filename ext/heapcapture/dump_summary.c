/* The dump summary (dump_summary.h): three small open-addressing maps, kept at most half full. */
#include "dump_summary.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hc_hash_bytes(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int hc_map_grow(hc_tally_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    hc_tally_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        hc_tally_slot *o = &m->slots[i];
        if (!o->used) continue;
        uint64_t h = o->name ? hc_hash_bytes(o->name, strlen(o->name), (uint64_t)o->line) : o->key * 0x9e3779b97f4a7c15ull;
        size_t j = (size_t)h & (cap - 1);
        while (slots[j].used) j = (j + 1) & (cap - 1);
        slots[j] = *o;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* The slot for (name[0, len), line) or, with name NULL, for key; made when new. NULL out of memory. */
static hc_tally_slot *hc_map_get(hc_tally_map *m, const char *name, size_t len, int64_t line, uint64_t key)
{
    if ((m->count + 1) * 2 > m->cap && hc_map_grow(m) != 0) return NULL;
    uint64_t h = name ? hc_hash_bytes(name, len, (uint64_t)line) : key * 0x9e3779b97f4a7c15ull;
    size_t j = (size_t)h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        hc_tally_slot *s = &m->slots[j];
        if (!s->used) break;
        if (name ? (s->name && s->line == line && strlen(s->name) == len && memcmp(s->name, name, len) == 0)
                 : (!s->name && s->key == key))
            return s;
    }
    hc_tally_slot *s = &m->slots[j];
    if (name) {
        s->name = malloc(len + 1);
        if (!s->name) return NULL;
        memcpy(s->name, name, len);
        s->name[len] = '\0';
    }
    s->line = line;
    s->key = key;
    s->used = 1;
    m->count++;
    return s;
}

static void hc_map_free(hc_tally_map *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].name);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

void hc_summary_init(hc_summary *s)
{
    memset(s, 0, sizeof *s);
}

void hc_summary_free(hc_summary *s)
{
    hc_map_free(&s->types);
    hc_map_free(&s->generations);
    hc_map_free(&s->sites);
    free(s->partial);
    memset(s, 0, sizeof *s);
}

static int hc_add(hc_tally_slot *slot, uint64_t memsize)
{
    if (!slot) return -1;
    slot->t.objects++;
    slot->t.memsize += memsize;
    return 0;
}

int hc_summary_line(hc_summary *s, const char *line, size_t len)
{
    if (len == 0) return 0;
    s->lines++;
    hc_dump_line l;
    if (hc_dump_scan_line(line, len, &l) != 0) {
        s->invalid++;
        return 0;
    }
    if (!l.has_address) { /* a ROOT record: not an object */
        if (l.has_type && l.type.len == 4 && memcmp(l.type.ptr, "ROOT", 4) == 0) s->roots++;
        return 0;
    }
    if (s->filter) {
        int keep = s->filter(s->filter_arg, &l);
        if (keep < 0) s->failed = 1;
        if (keep <= 0) return keep;
    }
    uint64_t memsize = l.has_memsize ? l.memsize : 0;
    s->all.objects++;
    s->all.memsize += memsize;
    int rc = hc_add(hc_map_get(&s->types, l.has_type ? l.type.ptr : "", l.has_type ? l.type.len : 0, 0, 0), memsize);
    if (rc == 0 && l.has_generation) rc = hc_add(hc_map_get(&s->generations, NULL, 0, 0, l.generation), memsize);
    if (rc == 0 && l.has_file) rc = hc_add(hc_map_get(&s->sites, l.file.ptr, l.file.len, l.has_line ? l.line : 0, 0), memsize);
    if (rc != 0) s->failed = 1;
    return rc;
}

int hc_summary_write(hc_summary *s, const void *data, size_t len)
{
    const char *buf = data, *end = buf + len;
    while (buf < end) {
        const char *nl = memchr(buf, '\n', (size_t)(end - buf));
        size_t n = nl ? (size_t)(nl - buf) : (size_t)(end - buf);
        if (!nl || s->partial_len) { /* keep it (or complete the kept one) */
            if (s->partial_len + n > s->partial_cap) {
                size_t cap = s->partial_cap ? s->partial_cap : 4096;
                while (cap < s->partial_len + n) cap *= 2;
                char *p = realloc(s->partial, cap);
                if (!p) {
                    s->failed = 1;
                    return -1;
                }
                s->partial = p;
                s->partial_cap = cap;
            }
            memcpy(s->partial + s->partial_len, buf, n);
            s->partial_len += n;
            if (!nl) return 0;
            int rc = hc_summary_line(s, s->partial, s->partial_len);
            s->partial_len = 0;
            if (rc != 0) return -1;
        } else if (hc_summary_line(s, buf, n) != 0) {
            return -1;
        }
        buf += n + 1;
    }
    return 0;
}

int hc_summary_finish(hc_summary *s)
{
    int rc = s->partial_len ? hc_summary_line(s, s->partial, s->partial_len) : 0;
    s->partial_len = 0;
    return rc;
}

/* ---- JSON ---- */

static void hc_putf(hc_sbuf *o, const char *fmt, uint64_t a, uint64_t b)
{
    char tmp[96];
    int n = snprintf(tmp, sizeof tmp, fmt, a, b);
    if (n > 0) hc_sbuf_append(o, tmp, (size_t)n);
}

static void hc_put_tally(hc_sbuf *o, const hc_tally *t)
{
    hc_putf(o, "{\"objects\":%" PRIu64 ",\"memsize\":%" PRIu64 "}", t->objects, t->memsize);
}

static int hc_by_memsize(const void *a, const void *b)
{
    const hc_tally_slot *x = *(hc_tally_slot *const *)a, *y = *(hc_tally_slot *const *)b;
    if (x->t.memsize != y->t.memsize) return x->t.memsize > y->t.memsize ? -1 : 1;
    if (x->t.objects != y->t.objects) return x->t.objects > y->t.objects ? -1 : 1;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int hc_by_objects(const void *a, const void *b)
{
    const hc_tally_slot *x = *(hc_tally_slot *const *)a, *y = *(hc_tally_slot *const *)b;
    if (x->t.objects != y->t.objects) return x->t.objects > y->t.objects ? -1 : 1;
    return hc_by_memsize(a, b);
}

static int hc_by_name(const void *a, const void *b)
{
    return strcmp((*(hc_tally_slot *const *)a)->name, (*(hc_tally_slot *const *)b)->name);
}

static int hc_by_key(const void *a, const void *b)
{
    uint64_t x = (*(hc_tally_slot *const *)a)->key, y = (*(hc_tally_slot *const *)b)->key;
    return (x > y) - (x < y);
}

/* The map's used slots, sorted. NULL (and *n 0) when empty or out of memory (o then oom). */
static hc_tally_slot **hc_sorted(const hc_tally_map *m, int (*cmp)(const void *, const void *), size_t *n, hc_sbuf *o)
{
    *n = 0;
    if (!m->count) return NULL;
    hc_tally_slot **v = malloc(m->count * sizeof *v);
    if (!v) {
        o->oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].used) v[(*n)++] = &m->slots[i];
    qsort(v, *n, sizeof *v, cmp);
    return v;
}

static void hc_put_sites(hc_sbuf *o, const hc_tally_map *sites, int (*cmp)(const void *, const void *), size_t top)
{
    size_t n;
    hc_tally_slot **v = hc_sorted(sites, cmp, &n, o);
    hc_sbuf_puts(o, "[");
    for (size_t i = 0; i < n && i < top; i++) {
        hc_sbuf_puts(o, i ? ",{\"file\":\"" : "{\"file\":\"");
        hc_sbuf_puts(o, v[i]->name); /* as dump_all wrote it: already a JSON string's inside */
        char tmp[32];
        snprintf(tmp, sizeof tmp, "\",\"line\":%" PRId64 ",", v[i]->line);
        hc_sbuf_puts(o, tmp);
        hc_putf(o, "\"objects\":%" PRIu64 ",\"memsize\":%" PRIu64 "}", v[i]->t.objects, v[i]->t.memsize);
    }
    hc_sbuf_puts(o, "]");
    free(v);
}

char *hc_summary_json(const hc_summary *s, size_t top, size_t *len)
{
    hc_sbuf o = {0};
    hc_putf(&o, "{\"lines\":%" PRIu64 ",\"objects\":%" PRIu64, s->lines, s->all.objects);
    hc_putf(&o, ",\"memsize\":%" PRIu64 ",\"roots\":%" PRIu64, s->all.memsize, s->roots);
    hc_putf(&o, ",\"invalid_lines\":%" PRIu64 ",\"site_count\":%" PRIu64, s->invalid, (uint64_t)s->sites.count);
    size_t n;
    hc_tally_slot **v = hc_sorted(&s->types, hc_by_name, &n, &o);
    hc_sbuf_puts(&o, ",\"types\":{");
    for (size_t i = 0; i < n; i++) {
        hc_sbuf_puts(&o, i ? ",\"" : "\"");
        hc_sbuf_puts(&o, v[i]->name);
        hc_sbuf_puts(&o, "\":");
        hc_put_tally(&o, &v[i]->t);
    }
    free(v);
    v = hc_sorted(&s->generations, hc_by_key, &n, &o);
    hc_sbuf_puts(&o, "},\"generations\":{");
    for (size_t i = 0; i < n; i++) {
        hc_putf(&o, i ? ",\"%" PRIu64 "\":" : "\"%" PRIu64 "\":", v[i]->key, 0);
        hc_put_tally(&o, &v[i]->t);
    }
    free(v);
    hc_sbuf_puts(&o, "},\"sites\":");
    hc_put_sites(&o, &s->sites, hc_by_memsize, top);
    hc_sbuf_puts(&o, ",\"sites_by_count\":");
    hc_put_sites(&o, &s->sites, hc_by_objects, top);
    hc_sbuf_puts(&o, "}");
    size_t n_out = o.len;
    char *json = hc_sbuf_take(&o);
    if (json && len) *len = n_out;
    return json;
}
