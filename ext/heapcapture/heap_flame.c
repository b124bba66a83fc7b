/* The dominator tree as a flame graph's tree (heap_flame.h). Frames live in one array, found by
 * (parent frame, key) in the project's hash table (util_table.h); the walk keeps only the path
 * from the root. */
#include "heap_flame.h"
#include "util_table.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define HC_FLAME_TOP_KIND UINT32_MAX /* the "(all)" frame's key: no node has it */

typedef struct {
    uint32_t parent;        /* HC_GRAPH_NONE for the top */
    hc_frame_key key;
    uint32_t depth;
    uint32_t best;          /* the instance retaining most (HC_GRAPH_NONE: none) */
    uint64_t value, self, objects, instances;
    uint32_t first_child, next_sibling; /* by value, once the walk is done */
} hc_frame;

typedef struct {
    const hc_graph *g;
    const hc_flame_spec *spec;
    hc_frame *frames;
    uint32_t count, cap;
    hc_table index;         /* of hc_frame_entry: every frame but the top (never looked up) */
} hc_flame;

/* A frame's entry in the index: the hash of (parent, key), top bit set (never 0), and the frame. */
typedef struct {
    uint64_t hash;
    uint32_t frame;
} hc_frame_entry;

static uint64_t hc_frame_hash(uint32_t parent, const hc_frame_key *k)
{
    uint64_t h = parent * 0x9e3779b97f4a7c15ull;
    h = (h ^ k->label) * 0xff51afd7ed558ccdull;
    h = (h ^ k->site) * 0xc4ceb9fe1a85ec53ull;
    h = (h ^ k->kind) * 0x9e3779b97f4a7c15ull;
    return (h ^ (h >> 31)) | (1ull << 63);
}

static uint64_t hc_frame_entry_hash(const void *slot) { return hc_table_slot_key(slot); }

static int hc_key_eq(const hc_frame_key *a, const hc_frame_key *b)
{
    return a->label == b->label && a->site == b->site && a->kind == b->kind;
}

/* The frame keyed key under parent, made when new; HC_GRAPH_NONE out of memory. */
static uint32_t hc_flame_child(hc_flame *f, uint32_t parent, const hc_frame_key *key)
{
    uint64_t h = hc_frame_hash(parent, key);
    if (hc_table_reserve(&f->index, 1) != 0) return HC_GRAPH_NONE;
    hc_frame_entry *e;
    for (size_t j = hc_table_home(&f->index, h);; j = hc_table_next(&f->index, j)) {
        e = hc_table_slot(&f->index, j);
        if (!e->hash) break;
        const hc_frame *fr = &f->frames[e->frame];
        if (e->hash == h && fr->parent == parent && hc_key_eq(&fr->key, key)) return e->frame;
    }
    if (f->count == f->cap) {
        uint32_t cap = f->cap * 2;
        hc_frame *more = realloc(f->frames, (size_t)cap * sizeof *more);
        if (!more) return HC_GRAPH_NONE;
        f->frames = more;
        f->cap = cap;
    }
    uint32_t i = f->count++;
    f->frames[i] = (hc_frame){.parent = parent, .key = *key, .depth = f->frames[parent].depth + 1, .best = HC_GRAPH_NONE,
                              .first_child = HC_GRAPH_NONE, .next_sibling = HC_GRAPH_NONE};
    hc_table_claim(&f->index, e, h);
    e->frame = i;
    return i;
}

/* Node v, whose dominator's frame is parent, counted in its frame: the frame, and whether v is
 * opened (its dominated objects visited) in *open. HC_GRAPH_NONE out of memory. */
static uint32_t hc_flame_visit(hc_flame *f, uint32_t parent, uint32_t v, int *open)
{
    const hc_graph *g = f->g;
    hc_frame_key key = f->spec->frame_of(f->spec->arg, g, v);
    int same = parent != 0 && hc_key_eq(&f->frames[parent].key, &key); /* a list: one frame */
    uint32_t i = same ? parent : hc_flame_child(f, parent, &key);
    if (i == HC_GRAPH_NONE) return i;
    hc_frame *fr = &f->frames[i];
    fr->instances++;
    fr->self += hc_graph_memsize(g, v);
    if (!same) {
        fr->value += g->retained[v];
        fr->objects += g->retained_count[v];
        if (fr->best == HC_GRAPH_NONE || g->retained[v] > g->retained[fr->best]) fr->best = v;
    }
    *open = g->retained[v] >= f->spec->min_bytes && fr->depth < f->spec->max_depth;
    if (!*open) fr->self += g->retained[v] - hc_graph_memsize(g, v); /* all below it, undrawn */
    return i;
}

/* A node on the walk's path, the end of its dominated nodes not yet visited, and its frame. */
typedef struct {
    uint32_t node, kid, frame;
} hc_flame_step;

static int hc_flame_walk(hc_flame *f)
{
    hc_graph *g = (hc_graph *)f->g; /* its scratch block only */
    uint32_t n = g->n;
    uint32_t *first = hc_graph_dominated(g), *kids = first + n + 1;
    size_t cap = 1024, depth = 0;
    hc_flame_step *path = malloc(cap * sizeof *path);
    int rc = -1;
    if (!first || !path) goto done;
    path[depth++] = (hc_flame_step){g->root, first[g->root], 0};
    while (depth) {
        hc_flame_step *top = &path[depth - 1];
        if (top->kid == (top->node ? first[top->node - 1] : 0)) {
            depth--;
            continue;
        }
        uint32_t v = kids[--top->kid], parent = top->frame;
        int open;
        uint32_t i = hc_flame_visit(f, parent, v, &open);
        if (i == HC_GRAPH_NONE) goto done;
        if (!open) continue;
        if (depth == cap) {
            hc_flame_step *more = realloc(path, cap * 2 * sizeof *path);
            if (!more) goto done;
            path = more;
            cap *= 2;
        }
        path[depth++] = (hc_flame_step){v, first[v], i};
    }
    rc = 0;
done:
    free(path);
    return rc;
}

typedef struct {
    uint64_t value;
    uint32_t frame;
} hc_frame_rank;

static int hc_by_value(const void *a, const void *b)
{
    const hc_frame_rank *x = a, *y = b;
    if (x->value != y->value) return x->value > y->value ? -1 : 1;
    return (x->frame > y->frame) - (x->frame < y->frame);
}

/* Each frame's children linked largest first. */
static int hc_flame_link(hc_flame *f)
{
    hc_frame_rank *order = malloc((size_t)f->count * sizeof *order);
    if (!order) return -1;
    for (uint32_t i = 0; i < f->count; i++) order[i] = (hc_frame_rank){f->frames[i].value, i};
    qsort(order, f->count, sizeof *order, hc_by_value);
    for (uint32_t k = f->count; k-- > 0;) { /* smallest first, each put before the others */
        hc_frame *fr = &f->frames[order[k].frame];
        if (fr->parent == HC_GRAPH_NONE) continue;
        fr->next_sibling = f->frames[fr->parent].first_child;
        f->frames[fr->parent].first_child = order[k].frame;
    }
    free(order);
    return 0;
}

static void hc_flame_figures(hc_sbuf *o, uint64_t value, uint64_t self, uint64_t objects, uint64_t instances)
{
    hc_sbuf_printf(o, "\"value\":%" PRIu64 ",\"self\":%" PRIu64 ",\"objects\":%" PRIu64 ",\"instances\":%" PRIu64, value,
                   self, objects, instances);
}

static void hc_flame_put(hc_flame *f, hc_sbuf *o, uint32_t i)
{
    const hc_frame *fr = &f->frames[i];
    hc_sbuf_puts(o, "{");
    if (i == 0) hc_sbuf_puts(o, "\"name\":\"(all)\",");
    else f->spec->put(f->spec->arg, o, fr->best);
    hc_flame_figures(o, fr->value, fr->self, fr->objects, fr->instances);
    if (i != 0 && f->g->addr[fr->best]) hc_sbuf_printf(o, ",\"address\":\"0x%" PRIx64 "\"", f->g->addr[fr->best]);
    hc_sbuf_puts(o, ",\"children\":[");
    uint64_t other_value = 0, other_self = 0, other_objects = 0, other_instances = 0, other_frames = 0;
    int shown = 0;
    for (uint32_t c = fr->first_child; c != HC_GRAPH_NONE; c = f->frames[c].next_sibling) {
        const hc_frame *ch = &f->frames[c];
        if (ch->value < f->spec->min_bytes) { /* the rest are smaller still: one "(other)" */
            other_value += ch->value;
            other_self += ch->value;
            other_objects += ch->objects;
            other_instances += ch->instances;
            other_frames++;
            continue;
        }
        if (shown++) hc_sbuf_puts(o, ",");
        hc_flame_put(f, o, c);
    }
    if (other_frames) {
        if (shown) hc_sbuf_puts(o, ",");
        hc_sbuf_puts(o, "{\"name\":\"(other)\",\"other\":true,");
        hc_flame_figures(o, other_value, other_self, other_objects, other_instances);
        hc_sbuf_printf(o, ",\"frames\":%" PRIu64 "}", other_frames);
    }
    hc_sbuf_puts(o, "]}");
}

char *hc_flame_json(const hc_graph *g, const hc_flame_spec *spec)
{
    if (!g->analysed) return NULL;
    hc_flame f = {.g = g, .spec = spec, .cap = 1024};
    hc_table_init(&f.index, sizeof(hc_frame_entry), 50, hc_frame_entry_hash);
    f.frames = malloc((size_t)f.cap * sizeof *f.frames);
    char *json = NULL;
    if (!f.frames || hc_table_reserve(&f.index, 512) != 0) goto done;
    f.count = 1;
    f.frames[0] = (hc_frame){.parent = HC_GRAPH_NONE, .key = {0, 0, HC_FLAME_TOP_KIND}, .best = g->root,
                             .value = g->retained[g->root], .objects = g->retained_count[g->root], .instances = 1,
                             .first_child = HC_GRAPH_NONE, .next_sibling = HC_GRAPH_NONE};
    if (hc_flame_walk(&f) != 0 || hc_flame_link(&f) != 0) goto done;
    hc_sbuf o = {0};
    hc_flame_put(&f, &o, 0);
    json = hc_sbuf_take(&o);
done:
    free(f.frames);
    hc_table_free(&f.index);
    return json;
}
