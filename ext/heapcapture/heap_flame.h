/* The dominator tree (heap_graph.h) folded into the tree a flame graph (or icicle) draws: the
 * objects along each path from the root grouped by their frame (class and site, or type, or root
 * kind), so 2 million Strings under one Array are one frame under one frame. A frame's value is
 * what its objects retain (their dominator subtrees); its self what they take themselves and what
 * is left undrawn below them. Kept small for a page: an object retaining less than min_bytes is
 * not opened (its retained size stays in its frame's self), frames under min_bytes are joined into
 * one "(other)" frame per parent, a frame repeating its parent's (a linked list) stays that frame,
 * and at most max_depth levels are opened. Pure C: no Ruby. */
#ifndef HC_HEAP_FLAME_H
#define HC_HEAP_FLAME_H

#include "heap_graph.h"
#include "util.h"

#include <stddef.h>
#include <stdint.h>

/* Which frame node v belongs to: a key equal for equal frames (its class label, site and kind, of
 * the caller's choosing). */
typedef struct {
    uint32_t label, site;
    uint32_t kind;
} hc_frame_key;
typedef hc_frame_key (*hc_frame_of_fn)(void *arg, const hc_graph *g, uint32_t v);

/* Writes the frame's naming fields of node v, a representative of it, into o: a JSON object's
 * members, each followed by a comma ("name":"..", and "class", "type", "file", "line" as known). */
typedef void (*hc_frame_put_fn)(void *arg, hc_sbuf *o, uint32_t v);

typedef struct {
    hc_frame_of_fn frame_of;
    hc_frame_put_fn put;
    void *arg;
    uint64_t min_bytes;     /* objects and frames retaining less are not drawn on their own */
    uint32_t max_depth;     /* levels opened below the root */
} hc_flame_spec;

/* The tree from g's root (analysed), as JSON:
 *   {"name":"(all)","value":B,"self":B,"objects":N,"instances":1,"children":[frame,...]}
 * a frame: {<put's fields>,"value":B,"self":B,"objects":N,"instances":N,"address":"0x.." (not for a ROOT record),
 *           "children":[...]}, an "(other)" frame: {"name":"(other)","other":true,"value":B,
 *           "self":B,"objects":N,"instances":N,"frames":N}; children by value, largest first, "(other)" last.
 * B in bytes (memsize), objects the objects retained, instances the objects grouped there, address
 * the instance retaining most. The root's value is all the roots retain; each frame's value is its
 * self and its children's values. NULL out of memory. */
char *hc_flame_json(const hc_graph *g, const hc_flame_spec *spec);

#endif
