/* In the app, before a fork capture (rb_dump.c calls it first): what dump_all would compute and
 * store in objects, computed here, so the dump child writes none of the heap. dump_all asks each
 * string whether it is broken and whether it is ASCII (rb_enc_str_coderange), and a string whose
 * coderange is not yet known gets it stored in its flags: in the child, each such write copies
 * the string's 4 KB page (doc/figures.md: two thirds of the child's own pages in a quiet process of
 * fresh strings). Here, before the fork, those pages are the app's
 * alone: nothing is copied, and the app would store the same value the first time it asked. The
 * walk hands the GVL to other threads after each HC_PREPARE_SLICE_NS it held it (a thread that
 * takes it may keep it its whole time slice, so yielding more often would make a capture beside a
 * CPU-bound thread wait seconds to start): no pause longer than that. */
#include "rb_heapcapture.h"
#include "rb_dump_prepare.h"
#include "util.h"

#include <ruby/encoding.h>

#define HC_PREPARE_SLICE_NS (10 * 1000 * 1000) /* the longest the walk holds the GVL at a time */

#ifdef HAVE_RB_OBJSPACE_EACH_OBJECTS
typedef struct {
    size_t computed;
    uint64_t slice_start;
} hc_prepare_walk;

static int hc_prepare_page(void *start, void *end, size_t stride, void *data)
{
    hc_prepare_walk *w = data;
    for (char *p = start; p < (char *)end; p += stride) {
        VALUE v = (VALUE)p;
        if (RBASIC(v)->flags && BUILTIN_TYPE(v) == T_STRING && ENC_CODERANGE(v) == ENC_CODERANGE_UNKNOWN) {
            rb_enc_str_coderange(v);
            w->computed++;
        }
    }
    if (hc_now_ns() - w->slice_start > HC_PREPARE_SLICE_NS) { /* between pages: the walk copes with a GC */
        rb_thread_schedule();
        w->slice_start = hc_now_ns();
    }
    return 0;
}
#endif

size_t hc_prepare_heap_for_fork(void)
{
#ifdef HAVE_RB_OBJSPACE_EACH_OBJECTS
    hc_prepare_walk w = {0, hc_now_ns()};
    rb_objspace_each_objects(hc_prepare_page, &w);
    return w.computed;
#else
    return 0; /* the child copies those pages: more memory, nothing wrong */
#endif
}

/* Dump.prepare_heap => how many strings had their coderange computed (tests; captures call it). */
static VALUE hc_prepare_heap_m(VALUE self)
{
    (void)self;
    return SIZET2NUM(hc_prepare_heap_for_fork());
}

void hc_init_dump_prepare(void)
{
    VALUE mDump = hc_rb_dump_module();
    rb_define_singleton_method(mDump, "prepare_heap", hc_prepare_heap_m, 0);
}
