/* The dump summary (heap_summary.h): small open-addressing maps kept at most half full, and the
 * objects holding the most references in an array kept sorted (most lines hold fewer than the
 * last one kept: one comparison). A line longer than HC_SUMMARY_LONG_LINE is kept in pieces only
 * for its fields: its "references" list's entries are counted and dropped as they come (a Hash of
 * a million entries is a ~30 MB line, which the dump child would otherwise hold whole). */
#define _GNU_SOURCE /* memmem, strndup */
#include "heap_summary.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a tally slot is found by: never 0 (an empty slot). */
static uint64_t hc_tally_hash(const char *name, size_t len, int64_t line, uint64_t key)
{
    if (name) return hc_table_hash_text(name, len, (uint64_t)line);
    return (key * 0x9e3779b97f4a7c15ull) | (1ull << 63);
}

static uint64_t hc_tally_slot_hash(const void *slot) { return hc_table_slot_key(slot); }

static void hc_map_init(hc_tally_map *m)
{
    hc_table_init(m, sizeof(hc_tally_slot), 50, hc_tally_slot_hash);
}

/* The slot for (name[0, len), line) or, with name NULL, for key; made when new. NULL out of memory. */
static hc_tally_slot *hc_map_get(hc_tally_map *m, const char *name, size_t len, int64_t line, uint64_t key)
{
    if (hc_table_reserve(m, 1) != 0) return NULL;
    uint64_t h = hc_tally_hash(name, len, line, key);
    hc_tally_slot *s;
    for (size_t j = hc_table_home(m, h);; j = hc_table_next(m, j)) {
        s = hc_table_slot(m, j);
        if (!s->hash) break;
        if (s->hash == h && (name ? (s->name && s->line == line && strlen(s->name) == len && memcmp(s->name, name, len) == 0)
                                  : (!s->name && s->key == key)))
            return s;
    }
    char *copy = NULL;
    if (name) {
        copy = strndup(name, len); /* a checked JSON string's inside: no NUL in it */
        if (!copy) return NULL;
    }
    hc_table_claim(m, s, h);
    s->name = copy;
    s->line = line;
    s->key = key;
    s->id = (uint32_t)(m->count - 1);
    return s;
}

static void hc_map_free(hc_tally_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        const hc_tally_slot *slot = hc_tally_at(m, i);
        if (slot) free(slot->name);
    }
    hc_table_free(m);
}

/* ---- class names ---- */

static uint64_t hc_name_slot_hash(const void *slot) { return hc_table_mix(hc_table_slot_key(slot)); }

static int hc_names_put(hc_name_map *m, uint64_t addr, const char *name, size_t len)
{
    if (!addr || hc_table_get(m, addr, hc_table_mix(addr))) return 0; /* the same address twice: the first name stays */
    char *copy = strndup(name, len);
    int made;
    hc_name_slot *slot = copy ? hc_table_put(m, addr, hc_table_mix(addr), &made) : NULL;
    if (!slot) {
        free(copy);
        return -1;
    }
    slot->name = copy;
    return 0;
}

static const char *hc_names_get(const hc_name_map *m, uint64_t addr)
{
    const hc_name_slot *slot = hc_table_get(m, addr, hc_table_mix(addr));
    return slot ? slot->name : NULL;
}

const char *hc_summary_class_name(const hc_summary *s, uint64_t addr)
{
    return hc_names_get(&s->class_names, addr);
}

static void hc_names_free(hc_name_map *m)
{
    for (size_t i = 0; i < m->cap; i++) free(((hc_name_slot *)hc_table_slot(m, i))->name);
    hc_table_free(m);
}

/* ---- holders of the most references ---- */

/* a before b: more references, then more memsize, then the lower address. */
static int hc_holder_before(uint64_t refs, uint64_t memsize, uint64_t addr, const hc_holder *b)
{
    if (refs != b->references) return refs > b->references;
    if (memsize != b->memsize) return memsize > b->memsize;
    return addr < b->address;
}

static int hc_holder_offer(hc_summary *s, const hc_dump_line *l, uint64_t memsize)
{
    size_t keep = s->keep ? s->keep : HC_SUMMARY_KEEP;
    size_t n = s->holders_count;
    if (n == keep && !hc_holder_before(l->references, memsize, l->address, &s->holders[n - 1])) return 0;
    if (n == s->holders_cap) { /* grown as needed: a caller may ask for a large top */
        size_t cap = s->holders_cap ? s->holders_cap * 2 : 16;
        if (cap > keep) cap = keep;
        hc_holder *h = realloc(s->holders, cap * sizeof *h);
        if (!h) return -1;
        s->holders = h;
        s->holders_cap = cap;
    }
    char *file = NULL;
    if (l->has_file) {
        file = strndup(l->file.ptr, l->file.len);
        if (!file) return -1;
    }
    if (n == keep) free(s->holders[--n].file); /* the last one makes room */
    size_t at = n;
    while (at > 0 && hc_holder_before(l->references, memsize, l->address, &s->holders[at - 1])) at--;
    memmove(&s->holders[at + 1], &s->holders[at], (n - at) * sizeof *s->holders);
    hc_holder *h = &s->holders[at];
    *h = (hc_holder){.address = l->address, .references = l->references, .memsize = memsize,
                     .class_address = l->has_class ? l->class_address : 0, .file = file,
                     .line = l->has_line ? l->line : 0};
    size_t tlen = l->has_type && l->type.len < sizeof h->type ? l->type.len : 0;
    memcpy(h->type, l->type.ptr ? l->type.ptr : "", tlen);
    h->type[tlen] = '\0';
    s->holders_count = n + 1;
    return 0;
}

void hc_summary_init(hc_summary *s)
{
    memset(s, 0, sizeof *s);
    hc_map_init(&s->types);
    hc_map_init(&s->generations);
    hc_map_init(&s->sites);
    hc_table_init(&s->class_names, sizeof(hc_name_slot), 50, hc_name_slot_hash);
}

void hc_summary_free(hc_summary *s)
{
    hc_map_free(&s->types);
    hc_map_free(&s->generations);
    hc_map_free(&s->sites);
    for (size_t i = 0; i < s->holders_count; i++) free(s->holders[i].file);
    free(s->holders);
    hc_names_free(&s->class_names);
    free(s->partial);
    memset(s, 0, sizeof *s);
}

static int hc_add(hc_tally_slot *slot, uint64_t memsize, uint64_t references)
{
    if (!slot) return -1;
    slot->t.objects++;
    slot->t.memsize += memsize;
    slot->t.references += references;
    return 0;
}

/* A site's object: counted once, or weight times when a sample of that weight (an estimate of the
 * objects it stands for; saturating, as a weight may be large). */
static int hc_add_site(hc_tally_slot *slot, uint64_t memsize, uint64_t references, uint64_t weight)
{
    if (!slot || !weight) return hc_add(slot, memsize, references);
    slot->t.objects = hc_add_sat(slot->t.objects, weight);
    slot->t.memsize = hc_add_sat(slot->t.memsize, hc_mul_sat(memsize, weight));
    slot->t.references = hc_add_sat(slot->t.references, hc_mul_sat(references, weight));
    slot->t.sampled++;
    return 0;
}


/* One line, refs_extra entries of its references list counted and dropped before (a long line). */
static int hc_summary_line_with(hc_summary *s, const char *line, size_t len, uint64_t refs_extra)
{
    if (len == 0) return 0;
    s->lines++;
    hc_dump_line l;
    if (hc_dump_scan_line(line, len, &l) != 0) {
        s->invalid++;
        return 0;
    }
    if (l.has_references) l.references += refs_extra;
    if (!l.has_address) { /* a ROOT record: not an object */
        if (l.has_type && hc_json_str_is(&l.type, "ROOT")) s->roots++;
        if (s->graph && hc_graph_add(s->graph, &l, 0) != 0) {
            s->failed = 1;
            return -1;
        }
        return 0;
    }
    /* Every class's name, kept or not: a diff's new objects are mostly of old classes. */
    if (l.has_name && l.has_type && (hc_json_str_is(&l.type, "CLASS") || hc_json_str_is(&l.type, "MODULE")) &&
        hc_names_put(&s->class_names, l.address, l.name.ptr, l.name.len) != 0) {
        s->failed = 1;
        return -1;
    }
    if (s->filter) {
        int keep = s->filter(s->filter_arg, &l);
        if (keep < 0) s->failed = 1;
        if (keep <= 0) return keep;
    }
    uint64_t memsize = l.has_memsize ? l.memsize : 0, refs = l.has_references ? l.references : 0;
    s->all.objects++;
    s->all.memsize += memsize;
    s->all.references += refs;
    int rc = 0;
    if (!s->graph_only) {
        rc = hc_add(hc_map_get(&s->types, l.has_type ? l.type.ptr : "", l.has_type ? l.type.len : 0, 0, 0), memsize, refs);
        if (rc == 0 && l.has_generation) rc = hc_add(hc_map_get(&s->generations, NULL, 0, 0, l.generation), memsize, refs);
    }
    uint32_t site_id = 0;
    if (rc == 0 && l.has_file) {
        hc_tally_slot *site = hc_map_get(&s->sites, l.file.ptr, l.file.len, l.has_line ? l.line : 0, 0);
        rc = hc_add_site(site, memsize, refs, hc_dump_line_weight(&l));
        if (site) site_id = site->id + 1;
    }
    if (rc == 0 && refs && !s->graph_only) rc = hc_holder_offer(s, &l, memsize);
    if (rc == 0 && s->graph) rc = hc_graph_add(s->graph, &l, site_id);
    if (rc == 0 && s->strings && !s->graph_only && l.has_value && l.has_type && hc_json_str_is(&l.type, "STRING"))
        rc = hc_string_tally_add(s->strings, &l.value, memsize, site_id);
    if (rc != 0) s->failed = 1;
    return rc;
}

int hc_summary_line(hc_summary *s, const char *line, size_t len)
{
    return hc_summary_line_with(s, line, len, 0);
}

static int hc_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static const char hc_refs_key[] = "\"references\":[";
#define HC_REFS_KEY_LEN (sizeof hc_refs_key - 1)

/* The partial line's top-level "references" list (the key after a '{' or ','; in a checked line
 * it cannot be inside a string, whose quotes are escaped): 1 found (refs_at set), 0 not yet. */
static int hc_partial_find_refs(hc_summary *s)
{
    while (s->refs_search + HC_REFS_KEY_LEN <= s->partial_len) {
        const char *base = s->partial + s->refs_search;
        const char *hit = memmem(base, s->partial_len - s->refs_search, hc_refs_key, HC_REFS_KEY_LEN);
        if (!hit) {
            s->refs_search = s->partial_len - (HC_REFS_KEY_LEN - 1);
            return 0;
        }
        size_t at = (size_t)(hit - s->partial);
        size_t k = at;
        while (k > 0 && hc_is_ws(s->partial[k - 1])) k--;
        if (k > 0 && (s->partial[k - 1] == ',' || s->partial[k - 1] == '{')) {
            s->refs_at = at + HC_REFS_KEY_LEN;
            return 1;
        }
        s->refs_search = at + 1;
    }
    return 0;
}

/* Drops from the partial line the references list's plain entries ("...", then a comma), counted
 * in refs_extra: what is left is still the list's valid rest (or its invalid one), for the
 * scanner. An entry with an escape or a control byte ends this (refs_done): the line is then kept
 * whole, as any other. */
static void hc_partial_compact(hc_summary *s)
{
    if (s->refs_done || (!s->refs_at && !hc_partial_find_refs(s))) return;
    char *b = s->partial;
    size_t len = s->partial_len, p = s->refs_at, upto = s->refs_at;
    uint64_t n = 0;
    for (;;) {
        while (p < len && hc_is_ws(b[p])) p++;
        if (p >= len || b[p] != '"') break; /* more to come, the list's end, or not an entry */
        size_t q = p + 1;
        while (q < len && b[q] != '"' && b[q] != '\\' && (unsigned char)b[q] >= 0x20) q++;
        if (q >= len) break;
        if (b[q] != '"') {
            s->refs_done = 1;
            break;
        }
        for (q++; q < len && hc_is_ws(b[q]); q++) {}
        if (q >= len || b[q] != ',') break; /* the last entry stays, with the list's end */
        n++;
        p = upto = q + 1;
    }
    if (upto == s->refs_at) return;
    memmove(b + s->refs_at, b + upto, len - upto);
    s->partial_len -= upto - s->refs_at;
    s->refs_extra += n;
}

static void hc_partial_reset(hc_summary *s)
{
    if (s->partial_cap > HC_SUMMARY_PARTIAL_KEEP) { /* one huge line (an Array of millions) need not hold its room */
        free(s->partial);
        s->partial = NULL;
        s->partial_cap = 0;
    }
    s->partial_len = s->refs_at = s->refs_search = 0;
    s->refs_extra = 0;
    s->refs_done = 0;
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
            if (s->partial_len > HC_SUMMARY_LONG_LINE && !s->graph) hc_partial_compact(s);
            if (!nl) return 0;
            int rc = hc_summary_line_with(s, s->partial, s->partial_len, s->refs_extra);
            hc_partial_reset(s);
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
    int rc = s->partial_len ? hc_summary_line_with(s, s->partial, s->partial_len, s->refs_extra) : 0;
    hc_partial_reset(s);
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

static int hc_by_references(const void *a, const void *b)
{
    const hc_tally_slot *x = *(hc_tally_slot *const *)a, *y = *(hc_tally_slot *const *)b;
    if (x->t.references != y->t.references) return x->t.references > y->t.references ? -1 : 1;
    return hc_by_memsize(a, b);
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
        if (hc_tally_at(m, i)) v[(*n)++] = hc_table_slot(m, i);
    qsort(v, *n, sizeof *v, cmp);
    return v;
}

/* ,"file":"..","line":N (file as dump_all wrote it: already a JSON string's inside) */
static void hc_put_site(hc_sbuf *o, const char *file, int64_t line)
{
    hc_sbuf_puts(o, "\"file\":\"");
    hc_sbuf_puts(o, file);
    char tmp[32];
    snprintf(tmp, sizeof tmp, "\",\"line\":%" PRId64, line);
    hc_sbuf_puts(o, tmp);
}

/* The top sites in cmp's order; with refs_only, those holding references only. */
static void hc_put_sites(hc_sbuf *o, const hc_tally_map *sites, int (*cmp)(const void *, const void *), size_t top,
                         int refs_only)
{
    size_t n;
    hc_tally_slot **v = hc_sorted(sites, cmp, &n, o);
    hc_sbuf_puts(o, "[");
    for (size_t i = 0; i < n && i < top && (!refs_only || v[i]->t.references); i++) {
        hc_sbuf_puts(o, i ? ",{" : "{");
        hc_put_site(o, v[i]->name, v[i]->line);
        hc_putf(o, ",\"objects\":%" PRIu64 ",\"memsize\":%" PRIu64, v[i]->t.objects, v[i]->t.memsize);
        hc_putf(o, ",\"references\":%" PRIu64, v[i]->t.references, 0);
        if (v[i]->t.sampled) hc_putf(o, ",\"estimated\":true,\"sampled\":%" PRIu64, v[i]->t.sampled, 0);
        hc_sbuf_puts(o, "}");
    }
    hc_sbuf_puts(o, "]");
    free(v);
}

static void hc_put_holders(hc_sbuf *o, const hc_summary *s, size_t top)
{
    hc_sbuf_puts(o, "[");
    for (size_t i = 0; i < s->holders_count && i < top; i++) {
        const hc_holder *h = &s->holders[i];
        hc_putf(o, i ? ",{\"address\":\"0x%" PRIx64 "\",\"type\":\"" : "{\"address\":\"0x%" PRIx64 "\",\"type\":\"",
                h->address, 0);
        hc_sbuf_puts(o, h->type); /* a checked JSON string's inside, shorter than 16 */
        hc_sbuf_puts(o, "\"");
        const char *class_name = hc_names_get(&s->class_names, h->class_address);
        if (class_name) {
            hc_sbuf_puts(o, ",\"class\":\"");
            hc_sbuf_puts(o, class_name);
            hc_sbuf_puts(o, "\"");
        }
        hc_putf(o, ",\"references\":%" PRIu64 ",\"memsize\":%" PRIu64, h->references, h->memsize);
        if (h->file) {
            hc_sbuf_puts(o, ",");
            hc_put_site(o, h->file, h->line);
        }
        hc_sbuf_puts(o, "}");
    }
    hc_sbuf_puts(o, "]");
}

static void hc_put_duplicates(hc_sbuf *o, const hc_summary *s, size_t top)
{
    size_t n, nsites;
    hc_string_dup **v = hc_string_tally_top(s->strings, top, &n);
    if (!v && s->strings->dups_count) o->oom = 1;
    /* site ids to sites */
    hc_tally_slot **by_id = s->sites.count ? calloc(s->sites.count, sizeof *by_id) : NULL;
    if (s->sites.count && !by_id) o->oom = 1;
    nsites = by_id ? s->sites.count : 0;
    for (size_t i = 0; by_id && i < s->sites.cap; i++) {
        hc_tally_slot *slot = hc_table_slot(&s->sites, i);
        if (slot->hash && slot->id < nsites) by_id[slot->id] = slot;
    }
    hc_sbuf_puts(o, "[");
    for (size_t i = 0; i < n; i++) {
        const hc_string_dup *d = v[i];
        hc_sbuf_puts(o, i ? ",{\"value\":\"" : "{\"value\":\"");
        hc_sbuf_append(o, d->preview, d->preview_len);
        hc_sbuf_puts(o, d->cut ? "\",\"truncated\":true" : "\",\"truncated\":false");
        hc_putf(o, ",\"bytesize\":%" PRIu64 ",\"count\":%" PRIu64, d->bytesize, d->count);
        hc_putf(o, ",\"memsize\":%" PRIu64, d->memsize, 0);
        const hc_tally_slot *site = d->site && d->site <= nsites ? by_id[d->site - 1] : NULL;
        if (site) {
            hc_sbuf_puts(o, ",");
            hc_put_site(o, site->name, site->line);
        }
        hc_sbuf_puts(o, d->more_sites ? ",\"more_sites\":true}" : ",\"more_sites\":false}");
    }
    hc_sbuf_puts(o, "]");
    free(by_id);
    free(v);
}

char *hc_summary_json(const hc_summary *s, size_t top, size_t *len)
{
    hc_sbuf o = {0};
    hc_putf(&o, "{\"lines\":%" PRIu64 ",\"objects\":%" PRIu64, s->lines, s->all.objects);
    hc_putf(&o, ",\"memsize\":%" PRIu64 ",\"references\":%" PRIu64, s->all.memsize, s->all.references);
    hc_putf(&o, ",\"roots\":%" PRIu64, s->roots, 0);
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
    hc_put_sites(&o, &s->sites, hc_by_memsize, top, 0);
    hc_sbuf_puts(&o, ",\"sites_by_count\":");
    hc_put_sites(&o, &s->sites, hc_by_objects, top, 0);
    hc_sbuf_puts(&o, ",\"sites_by_references\":");
    hc_put_sites(&o, &s->sites, hc_by_references, top, 1);
    hc_sbuf_puts(&o, ",\"most_references\":");
    hc_put_holders(&o, s, top);
    if (s->strings) {
        hc_sbuf_puts(&o, ",\"duplicate_strings\":");
        hc_put_duplicates(&o, s, top);
    }
    hc_sbuf_puts(&o, "}");
    size_t n_out = o.len;
    char *json = hc_sbuf_take(&o);
    if (json && len) *len = n_out;
    return json;
}
