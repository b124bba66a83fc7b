/* The retention report (heap_retention.h). Class labels are interned once (an object's class
 * name, the real class of an object with a singleton class; IMEMOs and nameless classes have
 * none), then every aggregate is an array indexed by label or site id.
 *
 * Sites under the sampled tracer: an object whose site the sampled tracer wrote stands for
 * its sample weight W of its site's objects (the graph keeps each such node's weight), so in its
 * site's group it counts W times (objects, memsize, retained and garbage figures, instances and
 * what they hold): the group's figures are estimates, written with "estimated":true and "sampled"
 * (the objects seen). Classes stay exact: every object's class is known. */
#define _GNU_SOURCE /* strndup */
#include "heap_retention.h"
#include "heap_flame.h"
#include "util.h"
#include "util_table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t objects, memsize;                       /* its objects, all (as the tally counts them) */
    uint64_t retained_objects, retained_memsize;     /* those the roots reach, not heapcapture's own */
    uint64_t garbage_objects, garbage_memsize;       /* those no root reaches */
    uint64_t instances, held_memsize, held_objects, self_memsize;    /* top-level instances' dominator subtrees */
    uint32_t active;        /* instances on the dominator tree walk's current path */
    uint32_t best;          /* the instance retaining most (HC_GRAPH_NONE: none) */
    int candidate;          /* a suspect by its held figures: checked again against the others */
    uint64_t top_instances, top_memsize, top_objects; /* its instances no other candidate holds */
    /* A site's sampled objects count their weight in the figures above (estimates); seen are the
     * objects themselves, sampled those of them with a weight. */
    uint64_t sampled;                   /* of its objects */
    uint64_t held_seen, held_sampled;   /* of its top-level instances */
    uint64_t top_seen, top_sampled;     /* of its instances no other candidate holds */
} hc_group;

struct hc_retention {
    hc_graph *g;
    const hc_summary *s;
    const hc_tally_slot **sites; /* by site id - 1 */
    uint32_t nsites;
    const char **labels;    /* by label id - 1: the dump's text (escapes kept) */
    uint32_t nlabels, labels_cap;
    uint32_t *class_of;     /* by node: label id (0: none) */
    uint8_t *own_site;      /* by site id - 1: a file of heapcapture's lib/ */
    uint8_t *own_label;     /* by label id: a class of heapcapture's */
    hc_group *by_label, *by_site; /* [id] (0 unused) */
    uint64_t own_objects, own_memsize, heap;  /* heap: the retained memsize not heapcapture's */
    uint64_t heap_objects;  /* the retained objects not heapcapture's */
    /* while choosing suspects and path targets */
    const uint8_t *inner;   /* by node: it dominates another object above the bar */
    uint64_t bar;
    const hc_path_query *query;
    const void *growth;     /* while ranking a diff's growth: its hc_growth_ctx */
};

/* ---- labels: class names, interned by their text ---- */

/* A label's entry in the index (util_table.h): its name's hash (top bit set: never 0), its id. */
typedef struct {
    uint64_t hash;
    uint32_t id;
} hc_label_entry;

static uint64_t hc_label_entry_hash(const void *slot) { return hc_table_slot_key(slot); }

/* The id of name, made when new; 0 when out of memory. */
static uint32_t hc_label_id(hc_retention *r, hc_table *ix, const char *name)
{
    uint64_t h = hc_table_hash_text(name, strlen(name), 0);
    if (hc_table_reserve(ix, 1) != 0) return 0;
    hc_label_entry *e;
    for (size_t j = hc_table_home(ix, h);; j = hc_table_next(ix, j)) {
        e = hc_table_slot(ix, j);
        if (!e->hash) break;
        if (e->hash == h && strcmp(r->labels[e->id - 1], name) == 0) return e->id;
    }
    if (r->nlabels == r->labels_cap) {
        uint32_t cap = r->labels_cap ? r->labels_cap * 2 : 1024;
        const char **labels = realloc(r->labels, cap * sizeof *labels);
        if (!labels) return 0;
        r->labels = labels;
        r->labels_cap = cap;
    }
    r->labels[r->nlabels++] = name;
    hc_table_claim(ix, e, h);
    e->id = r->nlabels;
    return r->nlabels;
}

static const hc_graph_kind *hc_kind(const hc_graph *g, uint32_t i) { return &g->kinds[g->kind[i]]; }

/* The class name of node i as the dump says it, or NULL (roots, IMEMOs, nameless classes). */
static const char *hc_class_text(const hc_retention *r, uint32_t i)
{
    const hc_graph *g = r->g;
    if (g->flags[i] & HC_NODE_ROOT) return NULL;
    if (hc_kind(g, i)->imemo) return NULL;
    uint64_t klass = hc_graph_class_of(g, i);
    const char *name = hc_summary_class_name(r->s, klass);
    return name ? name : hc_graph_real_class_name(g, klass); /* an object with a singleton class */
}

/* A class of heapcapture's own (its name as the dump wrote it). */
static int hc_own_class(const char *name)
{
    return name && strncmp(name, "HeapCapture", 11) == 0 && (name[11] == '\0' || strncmp(name + 11, "::", 2) == 0);
}

static int hc_label_all(hc_retention *r)
{
    hc_graph *g = r->g;
    hc_graph_sort_names(g);
    hc_table ix;
    hc_table_init(&ix, sizeof(hc_label_entry), 50, hc_label_entry_hash);
    r->class_of = malloc((size_t)g->n * sizeof *r->class_of);
    if (hc_table_reserve(&ix, 512) != 0 || !r->class_of) {
        hc_table_free(&ix);
        return -1;
    }
    /* a class's label, by its address: objects of one class come in runs, and naming one takes two
     * look-ups and a hash of its name */
    struct {
        uint64_t klass;
        uint32_t id;
    } memo[256] = {{0, 0}};
    for (uint32_t i = 0; i < g->n; i++) {
        const hc_graph_kind *k = hc_kind(g, i);
        uint64_t klass = hc_graph_class_of(g, i);
        size_t h = (size_t)((klass >> 3) ^ (klass >> 11)) & 255;
        if (klass && !k->imemo && !(g->flags[i] & HC_NODE_ROOT) && memo[h].klass == klass) {
            r->class_of[i] = memo[h].id;
            continue;
        }
        const char *name = hc_class_text(r, i);
        r->class_of[i] = name ? hc_label_id(r, &ix, name) : 0;
        if (name && !r->class_of[i]) {
            hc_table_free(&ix);
            return -1;
        }
        if (klass && !k->imemo && !(g->flags[i] & HC_NODE_ROOT)) {
            memo[h].klass = klass;
            memo[h].id = r->class_of[i];
        }
    }
    hc_table_free(&ix);
    r->own_label = calloc((size_t)r->nlabels + 1, 1);
    if (!r->own_label) return -1;
    for (uint32_t id = 1; id <= r->nlabels; id++) r->own_label[id] = (uint8_t)hc_own_class(r->labels[id - 1]);
    return 0;
}

static const char *hc_label(const hc_retention *r, uint32_t id) { return id ? r->labels[id - 1] : NULL; }

/* ---- heapcapture's own objects: allocated in its lib/ files, or instances of its classes ---- */

static int hc_own_file(const char *file)
{
    size_t n = strlen(file);
    static const char tail[] = "/lib/heapcapture.rb";
    return strstr(file, "/lib/heapcapture/") != NULL ||
           (n >= sizeof tail - 1 && strcmp(file + n - (sizeof tail - 1), tail) == 0);
}

static int hc_is_own(void *arg, const hc_graph *g, uint32_t i)
{
    const hc_retention *r = arg;
    uint32_t site = g->site[i];
    if (site && site <= r->nsites && r->own_site[site - 1]) return 1;
    return r->own_label[r->class_of[i]];
}

/* ---- the analysis ---- */

void hc_retention_free(hc_retention *r)
{
    if (!r) return;
    free(r->sites);
    free(r->labels);
    free(r->class_of);
    free(r->own_site);
    free(r->own_label);
    free(r->by_label);
    free(r->by_site);
    free(r);
}

/* Adds node v's own figures to its group (heapcapture's own objects, held or not, count in objects
 * and memsize only, as the tally counts them), weight times for a sampled object of a site (0: an
 * exact one, once), as the summary counts it. */
static void hc_group_own(hc_group *grp, const hc_graph *g, uint32_t v, uint32_t weight)
{
    uint64_t w = weight ? weight : 1, m = hc_mul_sat(hc_graph_memsize(g, v), w);
    grp->objects = hc_add_sat(grp->objects, w);
    grp->memsize = hc_add_sat(grp->memsize, m);
    grp->sampled += weight != 0;
    if (g->flags[v] & HC_NODE_OWN) return;
    if (!(g->flags[v] & HC_NODE_REACHED)) {
        grp->garbage_objects = hc_add_sat(grp->garbage_objects, w);
        grp->garbage_memsize = hc_add_sat(grp->garbage_memsize, m);
    } else if (!(g->flags[v] & HC_NODE_OWN)) {
        grp->retained_objects = hc_add_sat(grp->retained_objects, w);
        grp->retained_memsize = hc_add_sat(grp->retained_memsize, m);
    }
}

/* The two groups of node v (by class label, by site): NULL for the roots and heapcapture's own. */
static hc_group *hc_group_of(const hc_retention *r, uint32_t v, int by_site)
{
    const hc_graph *g = r->g;
    if (g->flags[v] & (HC_NODE_ROOT | HC_NODE_OWN)) return NULL;
    return by_site ? &r->by_site[g->site[v] <= r->nsites ? g->site[v] : 0] : &r->by_label[r->class_of[v]];
}

/* Entering v on the dominator tree walk. Pass 0: an instance no other instance of its group
 * dominates adds what it retains to the group. Pass 1 (suspects): a candidate group's instance adds
 * it to top_* only when no instance of another candidate of that kind dominates it either (the
 * Arrays a leaking class's instances each hold are not a second suspect). A sampled instance of a
 * site (weight W, not 0) counts W times: it stands for W instances, each taken to retain what it
 * does. That is an estimate twice over: of the instances, and of what they hold, as an instance
 * the tracer did not sample may hold a sampled one (a linked list's nodes, each of the same site)
 * and then the sampled one's subtree is counted as if it were another's part; so the figures
 * written are at most the whole retained heap (hc_put_held, hc_put_suspect). */
static void hc_group_enter(hc_group *grp, const hc_graph *g, uint32_t v, int pass, uint32_t *candidates_active,
                           uint32_t weight)
{
    uint64_t w = weight ? weight : 1;
    if (pass == 0 && !grp->active) {
        grp->instances = hc_add_sat(grp->instances, w);
        grp->held_memsize = hc_add_sat(grp->held_memsize, hc_mul_sat(g->retained[v], w));
        grp->held_objects = hc_add_sat(grp->held_objects, hc_mul_sat(g->retained_count[v], w));
        grp->self_memsize = hc_add_sat(grp->self_memsize, hc_mul_sat(hc_graph_memsize(g, v), w));
        grp->held_seen++;
        grp->held_sampled += weight != 0;
        if (grp->best == HC_GRAPH_NONE || g->retained[v] > g->retained[grp->best]) grp->best = v;
    }
    if (pass == 1 && grp->candidate) {
        if (!grp->active && *candidates_active == 0) {
            grp->top_instances = hc_add_sat(grp->top_instances, w);
            grp->top_memsize = hc_add_sat(grp->top_memsize, hc_mul_sat(g->retained[v], w));
            grp->top_objects = hc_add_sat(grp->top_objects, hc_mul_sat(g->retained_count[v], w));
            grp->top_seen++;
            grp->top_sampled += weight != 0;
        }
        (*candidates_active)++;
    }
    grp->active++;
}

static void hc_group_leave(hc_group *grp, int pass, uint32_t *candidates_active)
{
    grp->active--;
    if (pass == 1 && grp->candidate) (*candidates_active)--;
}

/* Entering (or leaving) v on the walk: its two groups, by class label and by site. */
static void hc_walk_visit(hc_retention *r, uint32_t v, int leaving, int pass, uint32_t *active)
{
    const hc_graph *g = r->g;
    for (int by_site = 0; by_site < 2; by_site++) {
        hc_group *grp = hc_group_of(r, v, by_site);
        if (!grp) continue;
        if (leaving) hc_group_leave(grp, pass, &active[by_site]);
        else hc_group_enter(grp, g, v, pass, &active[by_site], by_site && g->site[v] ? hc_graph_weight_of(g, v) : 0);
    }
}

/* A node on the walk's path from the root, and the end of its children not yet entered. */
typedef struct {
    uint32_t node, kid;
} hc_walk_step;

/* Walks the dominator tree depth first (children lists made from idom, then freed; the path grows
 * as deep as the tree is, not with its size). */
static int hc_group_walk(hc_retention *r, int pass)
{
    hc_graph *g = r->g;
    uint32_t n = g->n;
    size_t cap = 1024, depth = 0;
    uint32_t *first = hc_graph_dominated(g), *kids = first + n + 1;
    hc_walk_step *path = malloc(cap * sizeof *path);
    int rc = -1;
    if (!first || !path) goto done;
    uint32_t active[2] = {0, 0}; /* candidates' instances on the path, by kind */
    hc_walk_visit(r, g->root, 0, pass, active);
    path[depth++] = (hc_walk_step){g->root, first[g->root]};
    while (depth) {
        hc_walk_step *top = &path[depth - 1];
        if (top->kid == (top->node ? first[top->node - 1] : 0)) { /* its children done: leaving it */
            hc_walk_visit(r, top->node, 1, pass, active);
            depth--;
            continue;
        }
        uint32_t v = kids[--top->kid]; /* the last child first */
        hc_walk_visit(r, v, 0, pass, active);
        if (depth == cap) {
            hc_walk_step *more = realloc(path, cap * 2 * sizeof *path);
            if (!more) goto done;
            path = more;
            cap *= 2;
        }
        path[depth++] = (hc_walk_step){v, first[v]};
    }
    rc = 0;
done:
    free(path);
    return rc;
}

/* Groups by label and by site every object that is not heapcapture's own. */
static int hc_group_all(hc_retention *r)
{
    hc_graph *g = r->g;
    r->by_label = calloc((size_t)r->nlabels + 1, sizeof *r->by_label);
    r->by_site = calloc((size_t)r->nsites + 1, sizeof *r->by_site);
    if (!r->by_label || !r->by_site) return -1;
    for (uint32_t i = 0; i <= r->nlabels; i++) r->by_label[i].best = HC_GRAPH_NONE;
    for (uint32_t i = 0; i <= r->nsites; i++) r->by_site[i].best = HC_GRAPH_NONE;
    uint32_t next = 0; /* the next sampled node's place in g->weights (in node order) */
    for (uint32_t v = 0; v < g->n; v++) {
        if (g->flags[v] & HC_NODE_ROOT) continue;
        while (next < g->nweights && g->weights[next].node < v) next++;
        uint32_t weight = next < g->nweights && g->weights[next].node == v ? g->weights[next].weight : 0;
        hc_group_own(&r->by_label[r->class_of[v]], g, v, 0);
        hc_group_own(&r->by_site[g->site[v] <= r->nsites ? g->site[v] : 0], g, v, weight);
    }
    return hc_group_walk(r, 0);
}

hc_retention *hc_retention_prepare(hc_graph *g, const hc_summary *s, char *err, size_t errlen)
{
    if (g->resolved) {
        hc_errorf(err, errlen, "this dump's graph has been analysed once already (its classes are gone): read it again");
        return NULL;
    }
    hc_retention *r = calloc(1, sizeof *r);
    if (!r) {
        hc_errorf(err, errlen, "out of memory analysing the dump's retention");
        return NULL;
    }
    r->g = g;
    r->s = s;
    r->nsites = (uint32_t)s->sites.count;
    r->sites = calloc(r->nsites ? r->nsites : 1, sizeof *r->sites);
    if (!r->sites || hc_label_all(r) != 0) {
        hc_retention_free(r);
        hc_errorf(err, errlen, "out of memory naming the dump's classes");
        return NULL;
    }
    r->own_site = calloc(r->nsites ? r->nsites : 1, 1);
    if (!r->own_site) {
        hc_retention_free(r);
        hc_errorf(err, errlen, "out of memory analysing the dump's retention");
        return NULL;
    }
    for (size_t i = 0; i < s->sites.cap; i++) {
        const hc_tally_slot *slot = hc_tally_at(&s->sites, i);
        if (!slot || slot->id >= r->nsites) continue;
        r->sites[slot->id] = slot;
        r->own_site[slot->id] = (uint8_t)hc_own_file(slot->name);
    }
    if (hc_graph_resolve(g, err, errlen) != 0) {
        hc_retention_free(r);
        return NULL;
    }
    return r;
}

int hc_retention_complete(hc_retention *r, char *err, size_t errlen)
{
    hc_graph *g = r->g;
    if (hc_graph_analyze(g, hc_is_own, r, err, errlen) != 0) return -1;
    r->own_objects = r->own_memsize = r->heap_objects = 0;
    for (uint32_t v = 0; v < g->n; v++) {
        if ((g->flags[v] & (HC_NODE_OWN | HC_NODE_REACHED | HC_NODE_ROOT)) != (HC_NODE_OWN | HC_NODE_REACHED)) continue;
        r->own_objects++;
        r->own_memsize += hc_graph_memsize(g, v);
    }
    for (uint32_t v = 0; v < g->n; v++)
        r->heap_objects += (g->flags[v] & (HC_NODE_OWN | HC_NODE_REACHED | HC_NODE_ROOT)) == HC_NODE_REACHED;
    r->heap = g->retained[g->root] - r->own_memsize;
    if (hc_group_all(r) != 0) {
        hc_errorf(err, errlen, "out of memory grouping the dump's retainers");
        return -1;
    }
    return 0;
}

hc_retention *hc_retention_new(hc_graph *g, const hc_summary *s, char *err, size_t errlen)
{
    hc_retention *r = hc_retention_prepare(g, s, err, errlen);
    if (r && hc_retention_complete(r, err, errlen) != 0) {
        hc_retention_free(r);
        return NULL;
    }
    return r;
}

/* ---- JSON ---- */

static void hc_put_pair(hc_sbuf *o, const char *name, uint64_t objects, uint64_t memsize)
{
    hc_sbuf_printf(o, ",\"%s\":{\"objects\":%" PRIu64 ",\"memsize\":%" PRIu64 "}", name, objects, memsize);
}

static void hc_put_text(hc_sbuf *o, const char *key, const char *text)
{
    hc_sbuf_printf(o, ",\"%s\":\"", key);
    hc_sbuf_puts(o, text); /* the dump's JSON text, escapes kept */
    hc_sbuf_puts(o, "\"");
}

static const hc_tally_slot *hc_site(const hc_retention *r, uint32_t id)
{
    return id && id <= r->nsites ? r->sites[id - 1] : NULL;
}

/* One object as a hop or a retainer: address, type, class (or imemo_type, root), site, sizes. */
static void hc_put_node(hc_sbuf *o, const hc_retention *r, uint32_t v)
{
    const hc_graph *g = r->g;
    const hc_graph_kind *k = hc_kind(g, v);
    if (g->flags[v] & HC_NODE_ROOT) {
        hc_sbuf_puts(o, "{\"type\":\"ROOT\"");
        hc_put_text(o, "root", k->sub ? k->sub : "");
        hc_sbuf_puts(o, "}");
        return;
    }
    hc_sbuf_printf(o, "{\"address\":\"0x%" PRIx64 "\"", g->addr[v]);
    hc_put_text(o, "type", k->type);
    if (k->sub) hc_put_text(o, "imemo_type", k->sub);
    const char *cls = hc_label(r, r->class_of[v]);
    if (cls) hc_put_text(o, "class", cls);
    if (strcmp(k->type, "CLASS") == 0 || strcmp(k->type, "MODULE") == 0) {
        const char *name = hc_summary_class_name(r->s, g->addr[v]);
        if (name) hc_put_text(o, "name", name);
        if (g->flags[v] & HC_NODE_SINGLETON) {
            const char *of = hc_graph_real_class_name(g, g->addr[v]);
            hc_sbuf_puts(o, ",\"singleton\":true");
            if (of) hc_put_text(o, "real_class_name", of);
        }
    }
    const hc_tally_slot *site = hc_site(r, g->site[v]);
    if (site) {
        hc_put_text(o, "file", site->name);
        hc_sbuf_printf(o, ",\"line\":%" PRId64, site->line);
    }
    hc_sbuf_printf(o, ",\"memsize\":%" PRIu64 ",\"retained_memsize\":%" PRIu64 ",\"retained_objects\":%" PRIu32 "}",
                   hc_graph_memsize(g, v), g->retained[v], g->retained_count[v]);
}

/* ,"path_length":N,"path":[hops] (root record first; at most HC_RETENTION_MAX_HOPS hops written:
 * the first and the last ones, the length said in full). */
static void hc_put_path(hc_sbuf *o, const hc_retention *r, uint32_t v)
{
    uint32_t hops[HC_RETENTION_MAX_HOPS + 1];
    uint32_t len = hc_graph_path(r->g, v, NULL, 0), *all = NULL;
    if (len > HC_RETENTION_MAX_HOPS) all = malloc((size_t)len * sizeof *all);
    hc_graph_path(r->g, v, all ? all : hops, all ? len : HC_RETENTION_MAX_HOPS);
    hc_sbuf_printf(o, ",\"path_length\":%" PRIu32 ",\"path\":[", len);
    uint32_t shown = 0;
    for (uint32_t i = 0; i < len; i++) {
        if (all && i >= HC_RETENTION_MAX_HOPS / 2 && i < len - HC_RETENTION_MAX_HOPS / 2) continue;
        if (!all && i >= HC_RETENTION_MAX_HOPS) break;
        if (shown++) hc_sbuf_puts(o, ",");
        hc_put_node(o, r, all ? all[i] : hops[i]);
    }
    hc_sbuf_puts(o, "]");
    free(all);
}

/* The top (at most cap) of count items by score, highest first (ties: lower index first). */
typedef uint64_t (*hc_score_fn)(const hc_retention *r, uint32_t i);

static uint32_t hc_top(const hc_retention *r, uint32_t count, hc_score_fn score, uint32_t *out, uint32_t cap)
{
    uint32_t n = 0;
    if (!cap) return 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t sc = score(r, i);
        if (!sc || (n == cap && sc <= score(r, out[n - 1]))) continue;
        uint32_t at = n < cap ? n++ : cap - 1;
        while (at > 0 && score(r, out[at - 1]) < sc) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = i;
    }
    return n;
}

static uint64_t hc_score_retainer(const hc_retention *r, uint32_t v)
{
    const hc_graph *g = r->g;
    return (g->flags[v] & (HC_NODE_ROOT | HC_NODE_OWN)) || !(g->flags[v] & HC_NODE_REACHED) ? 0 : g->retained[v];
}
static uint64_t hc_score_label_live(const hc_retention *r, uint32_t id) { return id ? r->by_label[id].retained_memsize : 0; }
static uint64_t hc_score_site_live(const hc_retention *r, uint32_t id)
{
    /* garbage-only sites rank below every live one, by their garbage; heapcapture's own, not at all */
    const hc_group *grp = &r->by_site[id];
    if (!id) return 0;
    return grp->retained_memsize ? (1ull << 62) + grp->retained_memsize : grp->garbage_objects ? grp->garbage_memsize + 1 : 0;
}
static uint64_t hc_score_label_held(const hc_retention *r, uint32_t id) { return id ? r->by_label[id].held_memsize : 0; }
static uint64_t hc_score_label_top(const hc_retention *r, uint32_t id) { return id ? r->by_label[id].top_memsize : 0; }
static uint64_t hc_score_site_top(const hc_retention *r, uint32_t id) { return id ? r->by_site[id].top_memsize : 0; }
static uint64_t hc_score_site_held(const hc_retention *r, uint32_t id) { return id ? r->by_site[id].held_memsize : 0; }

static void hc_put_site_of(hc_sbuf *o, const hc_retention *r, uint32_t id)
{
    const hc_tally_slot *site = hc_site(r, id);
    hc_sbuf_puts(o, "{\"file\":\"");
    hc_sbuf_puts(o, site ? site->name : "");
    hc_sbuf_printf(o, "\",\"line\":%" PRId64, site ? site->line : 0);
}

/* ,"estimated":true,"sampled":N when a group's figures count sampled objects by their weight. */
static void hc_put_estimated(hc_sbuf *o, uint64_t sampled)
{
    if (sampled) hc_sbuf_printf(o, ",\"estimated\":true,\"sampled\":%" PRIu64, sampled);
}

static void hc_put_live(hc_sbuf *o, const hc_group *grp)
{
    hc_sbuf_printf(o, ",\"objects\":%" PRIu64 ",\"memsize\":%" PRIu64 ",\"retained_objects\":%" PRIu64
                      ",\"retained_memsize\":%" PRIu64 ",\"garbage_objects\":%" PRIu64 ",\"garbage_memsize\":%" PRIu64,
                   grp->objects, grp->memsize, grp->retained_objects, grp->retained_memsize, grp->garbage_objects,
                   grp->garbage_memsize);
    hc_put_estimated(o, grp->sampled);
    hc_sbuf_puts(o, "}");
}

/* An estimate of what a group's instances hold, at most the whole retained heap (hc_group_enter). */
static uint64_t hc_at_most(uint64_t figure, uint64_t sampled, uint64_t whole)
{
    return sampled && figure > whole ? whole : figure;
}

static void hc_put_held(hc_sbuf *o, const hc_retention *r, const hc_group *grp)
{
    hc_sbuf_printf(o, ",\"instances\":%" PRIu64 ",\"retained_memsize\":%" PRIu64 ",\"retained_objects\":%" PRIu64,
                   grp->instances, hc_at_most(grp->held_memsize, grp->held_sampled, r->heap),
                   hc_at_most(grp->held_objects, grp->held_sampled, r->heap_objects));
    hc_put_estimated(o, grp->held_sampled);
    hc_sbuf_puts(o, "}");
}

static void hc_put_types(hc_sbuf *o, const hc_retention *r)
{
    const hc_graph *g = r->g;
    uint64_t objects[HC_GRAPH_MAX_KINDS] = {0}, memsize[HC_GRAPH_MAX_KINDS] = {0};
    for (uint32_t v = 0; v < g->n; v++) {
        if ((g->flags[v] & (HC_NODE_ROOT | HC_NODE_REACHED)) != HC_NODE_REACHED) continue;
        uint32_t k = g->kinds[g->kind[v]].type_kind; /* one row a type */
        objects[k]++;
        memsize[k] += hc_graph_memsize(g, v);
    }
    hc_sbuf_puts(o, ",\"types\":{");
    int first = 1;
    for (uint32_t k = 0; k < g->nkinds; k++) {
        if (g->kinds[k].type_kind != k || strcmp(g->kinds[k].type, "ROOT") == 0) continue;
        hc_sbuf_printf(o, "%s\"%s\":{\"retained_objects\":%" PRIu64 ",\"retained_memsize\":%" PRIu64 "}",
                       first ? "" : ",", g->kinds[k].type, objects[k], memsize[k]);
        first = 0;
    }
    hc_sbuf_puts(o, "}");
}

/* A suspect: its kind, the object (or the representative instance), its figures and path. A site
 * suspect built from sampled instances (sampled: how many) has estimated figures (hc_group_enter):
 * marked so, and at most the whole retained heap, so its share is at most 1. */
static void hc_put_suspect(hc_sbuf *o, const hc_retention *r, const char *kind, uint32_t v, uint64_t instances,
                           uint64_t held, uint64_t objects, uint64_t sampled, int first)
{
    held = hc_at_most(held, sampled, r->heap);
    objects = hc_at_most(objects, sampled, r->heap_objects);
    const hc_graph *g = r->g;
    hc_sbuf_printf(o, "%s{\"kind\":\"%s\",\"address\":\"0x%" PRIx64 "\",\"instances\":%" PRIu64, first ? "" : ",", kind,
                   g->addr[v], instances);
    hc_put_text(o, "type", hc_kind(g, v)->type);
    const char *cls = hc_label(r, r->class_of[v]);
    if (cls) hc_put_text(o, "class", cls);
    const hc_tally_slot *site = hc_site(r, g->site[v]);
    if (site) {
        hc_put_text(o, "file", site->name);
        hc_sbuf_printf(o, ",\"line\":%" PRId64, site->line);
    }
    hc_sbuf_printf(o, ",\"retained_memsize\":%" PRIu64 ",\"retained_objects\":%" PRIu64 ",\"share\":%.4f", held, objects,
                   r->heap ? (double)held / (double)r->heap : 0.0);
    hc_put_estimated(o, sampled);
    hc_put_path(o, r, v);
    hc_sbuf_puts(o, "}");
}

static uint64_t hc_score_deep(const hc_retention *r, uint32_t v)
{
    uint64_t sc = hc_score_retainer(r, v);
    return sc >= r->bar && !r->inner[v] ? sc : 0;
}

/* Suspects, MAT's two kinds: an object retaining at least share of the heap (the deepest such on
 * its dominator chain: where the memory accumulates), and a class or site whose instances, each
 * retaining its own part, together retain that much, and hold more than themselves (a class of
 * leaves, String's, is what other objects hold, not a holder). */
static void hc_put_suspects(hc_sbuf *o, hc_retention *r, double share)
{
    const hc_graph *g = r->g;
    uint64_t bar = (uint64_t)((double)r->heap * share);
    if (bar == 0) bar = 1;
    uint8_t *inner = calloc(g->n, 1); /* an object above the bar with a dominated object above it too */
    int first = 1;
    size_t count = 0;
    hc_sbuf_puts(o, ",\"suspects\":[");
    if (!inner) {
        o->oom = 1;
        return;
    }
    for (uint32_t v = 0; v < g->n; v++)
        if (hc_score_retainer(r, v) >= bar && g->idom[v] != HC_GRAPH_NONE) inner[g->idom[v]] = 1;
    r->inner = inner;
    r->bar = bar;
    uint32_t deep[HC_RETENTION_MAX_SUSPECTS];
    uint32_t ndeep = hc_top(r, g->n, hc_score_deep, deep, HC_RETENTION_MAX_SUSPECTS);
    r->inner = NULL;
    free(inner);
    for (uint32_t i = 0; i < ndeep && count < HC_RETENTION_MAX_SUSPECTS; i++, count++, first = 0)
        hc_put_suspect(o, r, "object", deep[i], 1, g->retained[deep[i]], g->retained_count[deep[i]], 0, first);
    /* groups: candidates by their held figures, then counted again without what another
     * candidate of the same kind holds */
    for (int by_site = 0; by_site < 2; by_site++) {
        hc_group *groups = by_site ? r->by_site : r->by_label;
        uint32_t ngroups = by_site ? r->nsites : r->nlabels;
        for (uint32_t id = 1; id <= ngroups; id++) {
            hc_group *grp = &groups[id];
            /* classes and modules hold methods: every app's would be a suspect, and a leak is data */
            /* two instances seen at least: one sampled instance is no group, whatever it stands for */
            grp->candidate = grp->held_memsize >= bar && grp->held_seen >= 2 && grp->best != HC_GRAPH_NONE &&
                             grp->held_memsize - grp->self_memsize >= grp->held_memsize / 2 && !hc_kind(g, grp->best)->code;
        }
    }
    if (hc_group_walk(r, 1) != 0) o->oom = 1;
    for (int by_site = 0; by_site < 2; by_site++) {
        uint32_t top[HC_RETENTION_MAX_SUSPECTS];
        uint32_t k = hc_top(r, (by_site ? r->nsites : r->nlabels) + 1, by_site ? hc_score_site_top : hc_score_label_top,
                            top, HC_RETENTION_MAX_SUSPECTS);
        for (uint32_t i = 0; i < k && count < HC_RETENTION_MAX_SUSPECTS; i++) {
            const hc_group *grp = by_site ? &r->by_site[top[i]] : &r->by_label[top[i]];
            int shown = 0; /* its largest instance is an object suspect already, with its path */
            for (uint32_t j = 0; j < ndeep; j++) shown |= deep[j] == grp->best;
            if (grp->top_memsize < bar || grp->top_seen < 2 || shown) continue;
            hc_put_suspect(o, r, by_site ? "site" : "class", grp->best, grp->top_instances, grp->top_memsize,
                           grp->top_objects, grp->top_sampled, first);
            first = 0;
            count++;
        }
    }
    hc_sbuf_puts(o, "]");
}

/* ---- the dominator tree, as a flame graph draws it (heap_flame.h) ---- */

#define HC_FRAME_ROOT_KINDS 256u /* a ROOT record's frame: its kind past the objects' */
#define HC_FRAME_OWN_KIND 512u
#define HC_FRAME_CODE_KIND 1024u /* a class or module with a name: a frame of its own, keyed by its node */

static hc_frame_key hc_frame_of(void *arg, const hc_graph *g, uint32_t v)
{
    const hc_retention *r = arg;
    if (g->flags[v] & HC_NODE_ROOT) return (hc_frame_key){0, 0, HC_FRAME_ROOT_KINDS + g->kind[v]};
    if (g->flags[v] & HC_NODE_OWN) return (hc_frame_key){0, 0, HC_FRAME_OWN_KIND};
    if (g->kinds[g->kind[v]].code && hc_summary_class_name(r->s, g->addr[v]))
        return (hc_frame_key){v, g->site[v], HC_FRAME_CODE_KIND + g->kind[v]};
    return (hc_frame_key){r->class_of[v], g->site[v], g->kind[v]};
}

/* A frame's name: its class (or type, imemo type, root kind) and site, as the dump wrote them. */
static void hc_frame_put(void *arg, hc_sbuf *o, uint32_t v)
{
    const hc_retention *r = arg;
    const hc_graph *g = r->g;
    const hc_graph_kind *k = hc_kind(g, v);
    if (g->flags[v] & HC_NODE_ROOT) {
        hc_sbuf_puts(o, "\"name\":\"(root) ");
        hc_sbuf_puts(o, k->sub ? k->sub : "");
        hc_sbuf_puts(o, "\",\"type\":\"ROOT\",\"root\":\"");
        hc_sbuf_puts(o, k->sub ? k->sub : "");
        hc_sbuf_puts(o, "\",");
        return;
    }
    if (g->flags[v] & HC_NODE_OWN) {
        hc_sbuf_puts(o, "\"name\":\"(heapcapture's own)\",\"own\":true,");
        return;
    }
    const char *cls = hc_label(r, r->class_of[v]);
    const hc_tally_slot *site = hc_site(r, g->site[v]);
    const char *named = k->code ? hc_summary_class_name(r->s, g->addr[v]) : NULL; /* a class or module */
    hc_sbuf_puts(o, "\"name\":\"");
    if (named) {
        hc_sbuf_puts(o, strcmp(k->type, "MODULE") == 0 ? "module " : "class ");
        hc_sbuf_puts(o, named);
    } else if (cls) {
        hc_sbuf_puts(o, cls);
    } else {
        hc_sbuf_puts(o, k->type);
        if (k->sub) hc_sbuf_printf(o, " %s", k->sub);
    }
    if (site) hc_sbuf_printf(o, " (%s:%" PRId64 ")", site->name, site->line);
    hc_sbuf_puts(o, "\"");
    hc_put_text(o, "type", k->type);
    if (k->sub) hc_put_text(o, "imemo_type", k->sub);
    if (cls) hc_put_text(o, "class", cls);
    if (named) hc_put_text(o, "class_name", named);
    if (site) {
        hc_put_text(o, "file", site->name);
        hc_sbuf_printf(o, ",\"line\":%" PRId64, site->line);
    }
    hc_sbuf_puts(o, ",");
}

/* ,"tree":{...}: frames retaining at least share of what the roots retain drawn on their own. */
static void hc_put_tree(hc_sbuf *o, hc_retention *r, double share)
{
    hc_graph *g = r->g;
    hc_flame_spec spec = {hc_frame_of, hc_frame_put, r, 0, HC_RETENTION_TREE_DEPTH};
    spec.min_bytes = (uint64_t)(share * (double)g->retained[g->root]);
    if (spec.min_bytes == 0) spec.min_bytes = 1;
    char *tree = hc_flame_json(g, &spec);
    if (!tree) {
        o->oom = 1;
        return;
    }
    hc_sbuf_puts(o, ",\"tree\":");
    hc_sbuf_puts(o, tree);
    free(tree);
}

char *hc_retention_json(hc_retention *r, size_t top, double share, double tree_share)
{
    hc_graph *g = r->g;
    if (hc_graph_bfs(g, NULL, 0) != 0) return NULL;
    hc_sbuf o = {0};
    uint64_t live = 0, live_mem = 0, dead = 0, dead_mem = 0, roots = 0;
    for (uint32_t v = 0; v < g->n; v++) {
        if (g->flags[v] & HC_NODE_ROOT) {
            roots += v != g->root;
        } else if (g->flags[v] & HC_NODE_REACHED) {
            live++;
            live_mem += hc_graph_memsize(g, v);
        } else {
            dead++;
            dead_mem += hc_graph_memsize(g, v);
        }
    }
    hc_sbuf_puts(&o, "{\"retention\":\"computed\"");
    hc_put_pair(&o, "retained", live, live_mem);
    hc_put_pair(&o, "garbage", dead, dead_mem);
    hc_put_pair(&o, "own", r->own_objects, r->own_memsize);
    hc_sbuf_printf(&o, ",\"missing_references\":%" PRIu64 ",\"root_records\":%" PRIu64, g->missing_refs, roots);
    hc_put_types(&o, r);
    uint32_t cap = top > 1000 ? 1000 : (uint32_t)top;
    uint32_t *pick = malloc((cap ? cap : 1) * sizeof *pick);
    if (!pick) {
        hc_sbuf_free(&o);
        return NULL;
    }
    uint32_t n = hc_top(r, r->nsites + 1, hc_score_site_live, pick, cap);
    hc_sbuf_puts(&o, ",\"sites\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i) hc_sbuf_puts(&o, ",");
        hc_put_site_of(&o, r, pick[i]);
        hc_put_live(&o, &r->by_site[pick[i]]);
    }
    n = hc_top(r, r->nlabels + 1, hc_score_label_live, pick, cap);
    hc_sbuf_puts(&o, "],\"classes\":[");
    for (uint32_t i = 0; i < n; i++) {
        hc_sbuf_puts(&o, i ? ",{\"class\":\"" : "{\"class\":\"");
        hc_sbuf_puts(&o, hc_label(r, pick[i]));
        hc_sbuf_puts(&o, "\"");
        hc_put_live(&o, &r->by_label[pick[i]]);
    }
    n = hc_top(r, g->n, hc_score_retainer, pick, cap);
    hc_sbuf_puts(&o, "],\"retainers\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i) hc_sbuf_puts(&o, ",");
        hc_put_node(&o, r, pick[i]);
    }
    n = hc_top(r, r->nlabels + 1, hc_score_label_held, pick, cap);
    hc_sbuf_puts(&o, "],\"retained_by_class\":[");
    for (uint32_t i = 0; i < n; i++) {
        hc_sbuf_puts(&o, i ? ",{\"class\":\"" : "{\"class\":\"");
        hc_sbuf_puts(&o, hc_label(r, pick[i]));
        hc_sbuf_puts(&o, "\"");
        hc_put_held(&o, r, &r->by_label[pick[i]]);
    }
    n = hc_top(r, r->nsites + 1, hc_score_site_held, pick, cap);
    hc_sbuf_puts(&o, "],\"retained_by_site\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i) hc_sbuf_puts(&o, ",");
        hc_put_site_of(&o, r, pick[i]);
        hc_put_held(&o, r, &r->by_site[pick[i]]);
    }
    hc_sbuf_puts(&o, "]");
    free(pick);
    hc_put_suspects(&o, r, share);
    if (tree_share > 0) hc_put_tree(&o, r, tree_share);
    hc_sbuf_puts(&o, "}");
    return hc_sbuf_take(&o);
}

/* ---- paths ---- */

/* 1 when node v answers q (before the all cap). */
static int hc_path_match(const hc_retention *r, const hc_path_query *q, uint32_t v)
{
    const hc_graph *g = r->g;
    if (g->flags[v] & HC_NODE_ROOT) return 0;
    if (q->class_name) {
        const char *cls = hc_label(r, r->class_of[v]);
        return cls && strcmp(cls, q->class_name) == 0;
    }
    const hc_tally_slot *site = hc_site(r, g->site[v]);
    return site && site->line == q->line && strcmp(site->name, q->file) == 0;
}

/* Targets of a class or site query: reached ones, those retaining most first. */
static uint64_t hc_score_target(const hc_retention *r, uint32_t v)
{
    return (r->g->flags[v] & HC_NODE_REACHED) && hc_path_match(r, r->query, v) ? r->g->retained[v] + 1 : 0;
}

char *hc_retention_paths_json(hc_retention *r, const hc_path_query *q, char *err, size_t errlen)
{
    hc_graph *g = r->g;
    if (hc_graph_bfs(g, err, errlen) != 0) return NULL;
    size_t cap = q->address ? 1 : (q->all ? q->all : 1);
    if (cap > g->n) cap = g->n;
    uint32_t *pick = malloc(cap * sizeof *pick);
    if (!pick) {
        hc_errorf(err, errlen, "out of memory finding paths");
        return NULL;
    }
    uint32_t n = 0;
    uint64_t matched = 0, reached = 0;
    if (q->address) {
        uint32_t v = hc_graph_find(g, q->address);
        if (v == HC_GRAPH_NONE) {
            free(pick);
            hc_errorf(err, errlen, "the dump has no object at 0x%" PRIx64 " (an address from this dump: "
                      "heapcapture report lists some)", q->address);
            return NULL;
        }
        matched = 1;
        reached = (g->flags[v] & HC_NODE_REACHED) != 0;
        if (reached) pick[n++] = v;
    } else {
        for (uint32_t v = 0; v < g->n; v++) {
            if (!hc_path_match(r, q, v)) continue;
            matched++;
            reached += (g->flags[v] & HC_NODE_REACHED) != 0;
        }
        r->query = q;
        n = hc_top(r, g->n, hc_score_target, pick, (uint32_t)cap);
        r->query = NULL;
    }
    const char *what = q->address ? "that object" : q->class_name ? "of that class" : "from that site";
    if (!matched) {
        free(pick);
        if (q->class_name)
            hc_errorf(err, errlen, "the dump has no object of class %s (a class name as report prints it)", q->class_name);
        else
            hc_errorf(err, errlen, "the dump has no object allocated at %s:%" PRId64 " (sites are known for objects "
                      "allocated with tracing on)", q->file, q->line);
        return NULL;
    }
    if (!reached) {
        free(pick);
        hc_errorf(err, errlen, "no root reaches %s%s: %s garbage awaiting GC, held by nothing",
                  q->address ? "" : "any object ", what, q->address ? "it is" : "they are");
        return NULL;
    }
    hc_sbuf o = {0};
    hc_sbuf_puts(&o, "[");
    for (uint32_t i = 0; i < n; i++) {
        hc_sbuf_printf(&o, "%s{\"target\":\"0x%" PRIx64 "\"", i ? "," : "", g->addr[pick[i]]);
        hc_put_path(&o, r, pick[i]);
        hc_sbuf_puts(&o, "}");
    }
    hc_sbuf_puts(&o, "]");
    free(pick);
    char *json = hc_sbuf_take(&o);
    if (!json) hc_errorf(err, errlen, "out of memory writing paths");
    return json;
}

/* ==== growth between two dumps (heapcapture diff): what the new objects are, what holds them ====
 * Kept apart from the report above: it only reads the analysis (r, its graph) and calls the static
 * writers above (hc_put_node, hc_put_path, hc_put_site_of, hc_put_pair) and hc_label. Memory: the caller's byte an object (is_new_by_node), 8
 * bytes an object for the growth sums and, while they are summed, 4 for the order of summing. */

typedef struct {
    uint64_t objects, memsize;                       /* its new objects, all (as the diff's tally counts them) */
    uint64_t retained_objects, retained_memsize;     /* those the roots reach, not heapcapture's own */
    uint64_t garbage_objects, garbage_memsize;       /* those no root reaches */
    uint64_t sampled;       /* a site's: its objects with a sample weight, counted that many times above */
} hc_growth_group;

typedef struct {                    /* what the growth's scores read (hc_retention's growth) */
    const uint64_t *sums;           /* by node: the growth it holds */
    const uint32_t *marks;          /* by node: HC_GROWTH_INNER */
    uint32_t holder;                /* always listed among the holders */
    const hc_growth_group *groups;  /* sites or labels, by id */
} hc_growth_ctx;

#define HC_GROWTH_FOLDED UINT32_MAX
#define HC_GROWTH_IN_BAR 1u   /* mark: a node it dominates directly holds at least the holder's bar */
#define HC_GROWTH_INNER 2u    /* mark: a node it dominates directly holds nearly all of its growth */

/* A new object counted in the holders' sums: reached, an object, not heapcapture's own. */
static int hc_growth_counted(const hc_graph *g, const uint8_t *is_new, uint32_t v)
{
    return is_new[v] && (g->flags[v] & (HC_NODE_ROOT | HC_NODE_OWN | HC_NODE_REACHED)) == HC_NODE_REACHED;
}

/* An object that may hold growth for the holders list and the holder: reached, not a ROOT record
 * (nor the virtual root), not heapcapture's own. */
static int hc_growth_candidate(const hc_graph *g, uint32_t v)
{
    return (g->flags[v] & (HC_NODE_ROOT | HC_NODE_OWN | HC_NODE_REACHED)) == HC_NODE_REACHED;
}

/* Adds each reached node's sum into its immediate dominator's, every node after all those it
 * dominates, so that sums[v] ends as the total over v's dominator subtree. No recursion and no
 * traversal order: pending[v] counts the nodes v immediately dominates not yet added in; a node
 * whose count is 0 is added into its dominator, whose count drops, and when that reaches 0 the
 * dominator is added in its turn (then marked HC_GROWTH_FOLDED, so the scan skips it). O(nodes). */
static void hc_growth_fold(const hc_graph *g, uint64_t *sums, uint32_t *pending)
{
    memset(pending, 0, (size_t)g->n * sizeof *pending);
    for (uint32_t v = 0; v < g->n; v++)
        if (g->idom[v] != HC_GRAPH_NONE) pending[g->idom[v]]++;
    for (uint32_t v = 0; v < g->n; v++) {
        if (g->idom[v] == HC_GRAPH_NONE || pending[v] != 0) continue; /* the root, garbage, waiting or done */
        for (uint32_t u = v;;) {
            uint32_t d = g->idom[u];
            sums[d] += sums[u];
            pending[u] = HC_GROWTH_FOLDED;
            if (--pending[d] != 0 || g->idom[d] == HC_GRAPH_NONE) break;
            u = d;
        }
    }
}

/* Holders: objects holding growth, the deepest of a chain (none it dominates directly holds
 * nearly all of its growth), and the holder whatever its marks. */
static uint64_t hc_growth_score_holder(const hc_retention *r, uint32_t v)
{
    const hc_growth_ctx *x = r->growth;
    const hc_graph *g = r->g;
    if (!hc_growth_candidate(g, v) || ((x->marks[v] & HC_GROWTH_INNER) && v != x->holder)) return 0;
    return x->sums[v];
}

/* Sites as the report ranks them: by retained memsize, then the garbage-only ones by their garbage;
 * heapcapture's own, not at all. */
static uint64_t hc_growth_score_site(const hc_retention *r, uint32_t id)
{
    const hc_growth_group *grp = &((const hc_growth_ctx *)r->growth)->groups[id];
    if (!id) return 0;
    return grp->retained_memsize ? (1ull << 62) + grp->retained_memsize : grp->garbage_objects ? grp->garbage_memsize + 1 : 0;
}

static uint64_t hc_growth_score_label(const hc_retention *r, uint32_t id)
{
    return id ? ((const hc_growth_ctx *)r->growth)->groups[id].retained_memsize : 0;
}

static void hc_growth_put_group(hc_sbuf *o, const hc_growth_group *grp)
{
    hc_sbuf_printf(o, ",\"objects\":%" PRIu64 ",\"memsize\":%" PRIu64 ",\"retained_objects\":%" PRIu64
                      ",\"retained_memsize\":%" PRIu64 ",\"garbage_objects\":%" PRIu64 ",\"garbage_memsize\":%" PRIu64,
                   grp->objects, grp->memsize, grp->retained_objects, grp->retained_memsize, grp->garbage_objects,
                   grp->garbage_memsize);
    hc_put_estimated(o, grp->sampled);
    hc_sbuf_puts(o, "}");
}

/* A holder: the object as a hop is written (hc_put_node), with the growth it holds, its share of
 * the growth retained (heapcapture's own left out), and its path from a root. */
static void hc_growth_put_holder(hc_sbuf *o, const hc_retention *r, uint32_t v, uint64_t memsize, uint64_t objects,
                                 uint64_t total)
{
    hc_sbuf node = {0};
    hc_put_node(&node, r, v);
    if (node.oom || node.len < 2) {
        o->oom = 1;
        hc_sbuf_free(&node);
        return;
    }
    hc_sbuf_append(o, node.data, node.len - 1); /* its closing brace left for the fields below */
    hc_sbuf_free(&node);
    hc_sbuf_printf(o, ",\"growth_memsize\":%" PRIu64 ",\"growth_objects\":%" PRIu64 ",\"growth_share\":%.4f", memsize,
                   objects, total ? (double)memsize / (double)total : 0.0);
    hc_put_path(o, r, v);
    hc_sbuf_puts(o, "}");
}

/* part >= percent% of whole, exactly (no rounding at the boundary). */
static int hc_growth_holds(uint64_t part, uint64_t whole, unsigned percent)
{
    return (unsigned __int128)part * 100 >= (unsigned __int128)whole * percent;
}

/* The holder: the deepest object on the dominator chain that still holds at least
 * HC_GROWTH_HOLDER_PERCENT of the largest growth any object holds (max). Growth only shrinks down a
 * chain, and the nodes one node dominates hold disjoint parts, so with a share above one half the
 * objects holding that much below the one holding max form a single chain: its last is where the
 * growth accumulates (typically an old object, such as a cache Array, holding the new ones each
 * apart), where the object holding max may be a class or module far above it, holding the program.
 * Found by climbing from each object that holds the bar and dominates none that does: the climbs
 * do not meet (two meeting would hold more than max together), so O(nodes). HC_GRAPH_NONE when
 * no object holds growth. */
static uint32_t hc_growth_holder(const hc_graph *g, const uint64_t *sums, uint32_t *marks)
{
    uint64_t max = 0;
    uint32_t top = HC_GRAPH_NONE;
    for (uint32_t v = 0; v < g->n; v++)
        if (hc_growth_candidate(g, v) && sums[v] > max) {
            max = sums[v];
            top = v;
        }
    if (!max) return HC_GRAPH_NONE;
    for (uint32_t v = 0; v < g->n; v++)
        if (hc_growth_candidate(g, v) && hc_growth_holds(sums[v], max, HC_GROWTH_HOLDER_PERCENT) && g->idom[v] != HC_GRAPH_NONE)
            marks[g->idom[v]] |= HC_GROWTH_IN_BAR;
    for (uint32_t v = 0; v < g->n; v++) {
        if (!hc_growth_candidate(g, v) || !hc_growth_holds(sums[v], max, HC_GROWTH_HOLDER_PERCENT) ||
            (marks[v] & HC_GROWTH_IN_BAR))
            continue;
        for (uint32_t u = v; u != HC_GRAPH_NONE && hc_growth_candidate(g, u) && hc_growth_holds(sums[u], max, HC_GROWTH_HOLDER_PERCENT);
             u = g->idom[u])
            if (u == top) return v;
    }
    return top; /* not reached: top's own chain ends somewhere */
}

char *hc_retention_growth_json(hc_retention *r, const uint8_t *is_new_by_node, size_t top)
{
    hc_graph *g = r->g;
    const uint8_t *is_new = is_new_by_node;
    if (hc_graph_bfs(g, NULL, 0) != 0) return NULL;
    uint32_t cap = top > 1000 ? 1000 : (uint32_t)top;
    uint64_t *sums = malloc((size_t)g->n * sizeof *sums);
    uint32_t *scratch = malloc((size_t)g->n * sizeof *scratch);
    uint32_t *pick = malloc(((size_t)cap + 1) * sizeof *pick);
    uint64_t *picked_memsize = malloc(((size_t)cap + 1) * sizeof *picked_memsize);
    hc_growth_group *sites = calloc((size_t)r->nsites + 1, sizeof *sites);
    hc_growth_group *labels = calloc((size_t)r->nlabels + 1, sizeof *labels);
    hc_sbuf o = {0};
    if (!sums || !scratch || !pick || !picked_memsize || !sites || !labels) {
        o.oom = 1;
        goto done;
    }
    /* totals, types, sites and classes of the new objects */
    uint64_t live = 0, live_mem = 0, dead = 0, dead_mem = 0, own = 0, own_mem = 0, roots = 0;
    uint64_t type_objects[HC_GRAPH_MAX_KINDS] = {0}, type_memsize[HC_GRAPH_MAX_KINDS] = {0};
    uint32_t next = 0; /* the next sampled node's place in g->weights (in node order) */
    for (uint32_t v = 0; v < g->n; v++) {
        uint8_t f = g->flags[v];
        if (f & HC_NODE_ROOT) {
            roots += v != g->root;
            continue;
        }
        if (!is_new[v]) continue;
        uint64_t m = hc_graph_memsize(g, v);
        int reached = (f & HC_NODE_REACHED) != 0;
        if (reached) {
            live++;
            live_mem += m;
            uint32_t k = g->kinds[g->kind[v]].type_kind;
            type_objects[k]++;
            type_memsize[k] += m;
        } else {
            dead++;
            dead_mem += m;
        }
        int mine = (f & HC_NODE_OWN) != 0; /* heapcapture's (reached: only those are marked) */
        if (mine) {
            own++;
            own_mem += m;
        }
        /* as the report's sites and classes: heapcapture's own in objects and memsize only; in its
         * site, an object the sampled tracer wrote counts its sample weight times (an estimate) */
        while (next < g->nweights && g->weights[next].node < v) next++;
        uint32_t weight = next < g->nweights && g->weights[next].node == v ? g->weights[next].weight : 0;
        hc_growth_group *groups[2] = {&sites[g->site[v] <= r->nsites ? g->site[v] : 0], &labels[r->class_of[v]]};
        for (int i = 0; i < 2; i++) {
            uint64_t w = i == 0 && weight ? weight : 1, wm = hc_mul_sat(m, w);
            groups[i]->objects = hc_add_sat(groups[i]->objects, w);
            groups[i]->memsize = hc_add_sat(groups[i]->memsize, wm);
            groups[i]->sampled += i == 0 && weight;
            if (mine) continue;
            uint64_t *objects = reached ? &groups[i]->retained_objects : &groups[i]->garbage_objects;
            uint64_t *memsize = reached ? &groups[i]->retained_memsize : &groups[i]->garbage_memsize;
            *objects = hc_add_sat(*objects, w);
            *memsize = hc_add_sat(*memsize, wm);
        }
    }
    hc_sbuf_puts(&o, "{\"retention\":\"computed\",\"growth\":{");
    hc_sbuf_printf(&o, "\"retained\":{\"objects\":%" PRIu64 ",\"memsize\":%" PRIu64 "}", live, live_mem);
    hc_put_pair(&o, "garbage", dead, dead_mem);
    hc_put_pair(&o, "own", own, own_mem);
    hc_sbuf_printf(&o, "},\"missing_references\":%" PRIu64 ",\"root_records\":%" PRIu64 ",\"types\":{", g->missing_refs,
                   roots);
    int first = 1;
    for (uint32_t k = 0; k < g->nkinds; k++) {
        if (g->kinds[k].type_kind != k || strcmp(g->kinds[k].type, "ROOT") == 0 || !type_objects[k]) continue;
        hc_sbuf_printf(&o, "%s\"%s\":{\"retained_objects\":%" PRIu64 ",\"retained_memsize\":%" PRIu64 "}",
                       first ? "" : ",", g->kinds[k].type, type_objects[k], type_memsize[k]);
        first = 0;
    }
    hc_growth_ctx x = {sums, scratch, HC_GRAPH_NONE, sites};
    r->growth = &x; /* for the scores hc_top calls */
    uint32_t n = hc_top(r, r->nsites + 1, hc_growth_score_site, pick, cap);
    hc_sbuf_puts(&o, "},\"sites\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i) hc_sbuf_puts(&o, ",");
        hc_put_site_of(&o, r, pick[i]);
        hc_growth_put_group(&o, &sites[pick[i]]);
    }
    x.groups = labels;
    n = hc_top(r, r->nlabels + 1, hc_growth_score_label, pick, cap);
    hc_sbuf_puts(&o, "],\"classes\":[");
    for (uint32_t i = 0; i < n; i++) {
        hc_sbuf_puts(&o, i ? ",{\"class\":\"" : "{\"class\":\"");
        hc_sbuf_puts(&o, hc_label(r, pick[i]));
        hc_sbuf_puts(&o, "\"");
        hc_growth_put_group(&o, &labels[pick[i]]);
    }
    hc_sbuf_puts(&o, "]");
    /* what holds the growth: the new objects' memsize summed over each dominator subtree */
    for (uint32_t v = 0; v < g->n; v++) sums[v] = hc_growth_counted(g, is_new, v) ? hc_graph_memsize(g, v) : 0;
    hc_growth_fold(g, sums, scratch);
    memset(scratch, 0, (size_t)g->n * sizeof *scratch); /* now the marks */
    uint32_t holder = hc_growth_holder(g, sums, scratch);
    for (uint32_t v = 0; v < g->n; v++) {
        uint32_t d = g->idom[v];
        if (d != HC_GRAPH_NONE && sums[v] && hc_growth_holds(sums[v], sums[d], HC_GROWTH_NEARLY_ALL_PERCENT))
            scratch[d] |= HC_GROWTH_INNER;
    }
    x.holder = holder;
    n = hc_top(r, g->n, hc_growth_score_holder, pick, cap);
    r->growth = NULL;
    for (uint32_t i = 0; i < n; i++) picked_memsize[i] = sums[pick[i]];
    uint64_t holder_memsize = holder != HC_GRAPH_NONE ? sums[holder] : 0;
    /* then the new objects they hold, in the same array (memsize and count need not both be kept) */
    for (uint32_t v = 0; v < g->n; v++) sums[v] = hc_growth_counted(g, is_new, v);
    hc_growth_fold(g, sums, scratch);
    uint64_t total = live_mem - own_mem;
    hc_sbuf_puts(&o, ",\"holders\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i) hc_sbuf_puts(&o, ",");
        hc_growth_put_holder(&o, r, pick[i], picked_memsize[i], sums[pick[i]], total);
    }
    hc_sbuf_puts(&o, "],\"holder\":");
    if (holder != HC_GRAPH_NONE) hc_growth_put_holder(&o, r, holder, holder_memsize, sums[holder], total);
    else hc_sbuf_puts(&o, "null");
    hc_sbuf_puts(&o, "}");
done:
    free(sums);
    free(scratch);
    free(pick);
    free(picked_memsize);
    free(sites);
    free(labels);
    if (o.oom) {
        hc_sbuf_free(&o);
        return NULL;
    }
    return hc_sbuf_take(&o);
}
