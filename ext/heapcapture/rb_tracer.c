/* The sampled allocation tracer, in the armed app's process (never the dump child's, which only
 * reads the samples: rb_tracer.h). A NEWOBJ hook costs every allocation while it is enabled, so it
 * is enabled in short windows only: HeapCapture::Tracer.open_window (the sampler thread calls it,
 * tracing.rb) turns it on once HC_TRACER_GAP allocations have passed since the last window, for
 * 1 in HC_TRACER_SHARE of the allocations since (HC_TRACER_WINDOW_ALLOCS..HC_TRACER_WINDOW_MAX);
 * the hook notes one allocation in about HC_TRACER_EVERY, and every HC_TRACER_BATCH notes (and at
 * the window's end) asks for a postponed job, which stores them and, at the end, turns the hook
 * off. Between windows allocations cost nothing.
 *
 * Each sample carries a weight, the allocations it stands for, fixed when its window opens:
 * HC_TRACER_EVERY x (the allocations since the last window closed, or since Tracer.start, + the
 * window's) / the window's
 * (~5,100 under the default figures). A site's sampled objects times their weights estimate how
 * many the site made that are still alive, as long as its allocations in the gap went as in the
 * window. So that estimate is unbiased, every allocation of a kind the tracer samples has the same
 * chance, 1 in about HC_TRACER_EVERY, in a window: when the hook's countdown ends on another kind
 * (an IMEMO) the note is skipped, not passed on to the next allocation (which would make an object
 * made just after an IMEMO twice as likely to be sampled as another).
 *
 * The hook allocates nothing and calls no Ruby code: it notes the object and its site. The job (a
 * safe point, GVL held) stores each noted object, if no GC has started since it was allocated
 * (else it may be dead, and is dropped), in an ObjectSpace::WeakMap under a key of its own (a
 * counter, never reused: an Integer, no object), and the sample in the table under that key. The
 * map forgets an object when it dies and follows it when GC.compact moves it, so at dump time
 * (hc_tracer_live_samples) a sample's object is the map's value for its key, or it has died: a
 * later object in the same slot never gets its site. No object id (Ruby 4 stores one in the
 * object, and rb_obj_id in a NEWOBJ hook is unsafe there, Bug #21710), no ObjectSpace._id2ref
 * (deprecated in 4.0, gone in 4.1, Feature #22135; it could return a later object in the slot, Bug
 * #22200), no FREEOBJ hook, no compaction callback. The table is bounded; once half full, each
 * window also checks a few samples and drops those whose object died. */
#include "rb_heapcapture.h"
#include "rb_tracer.h"
#include "dump_annotate.h"
#include "util.h"

#include <ruby/debug.h>
#include <stdlib.h>
#include <string.h>

#define HC_TRACER_CAPACITY 16384        /* samples kept (1.3 MB); at dump, each is checked */
#define HC_TRACER_WINDOW_ALLOCS 2000    /* allocations one window sees, at least */
/* ... and at most: a window sees 1 in HC_TRACER_SHARE of the allocations since the last one closed,
 * so that a sampler thread that seldom gets the GVL (a CPU-bound app thread) still samples as many. */
#define HC_TRACER_WINDOW_MAX 50000
#define HC_TRACER_SHARE 50
#define HC_TRACER_EVERY 100             /* mean allocations between two samples in a window */
/* Allocations at least between two windows: the hook sees at most 2% of them however often the
 * sampler thread gets the GVL (an IO-bound app gives it the GVL all the time). */
#define HC_TRACER_GAP 100000
#define HC_TRACER_BATCH 16              /* notes stored by one job: soon, before a GC may free them */
#define HC_TRACER_PRUNE 32              /* samples checked per window once the table is half full */

typedef struct {
    VALUE obj, path, mid;
    int line;
    size_t gc_count;
} hc_pending;

static struct {
    VALUE tp;                   /* the NEWOBJ tracepoint, made once */
    hc_sample_table *table;
    int running;                /* since Tracer.start */
    int window;                 /* the hook is enabled */
    int flushing;               /* a job is on its way for the notes: the hook only counts */
    int validating;             /* hc_tracer_live_samples walks the table: the job waits */
    int flush_again;            /* the job came while validating */
    int storing;                /* the job stores or prunes (its map calls are Ruby calls) */
    long seen;                  /* allocations this window */
    long window_allocs;         /* allocations this window is to see */
    long skip;                  /* allocations before the next sample */
    uint32_t weight;            /* the allocations a sample of this window stands for */
    uint32_t rng;
    hc_pending pending[HC_TRACER_BATCH];
    int npending;
    size_t prune_at;            /* the next slot the pruning checks */
    size_t closed_at;           /* total allocations when the last window closed (or the tracer started) */
    VALUE objects;              /* ObjectSpace::WeakMap: sample key => the sampled object, held weakly */
    long next_key;              /* the last key given: keys are never reused */
    unsigned long long windows, noted, stored, dropped, pruned;
#ifdef HAVE_RB_POSTPONED_JOB_PREREGISTER
    rb_postponed_job_handle_t job;
#endif
} tracer;

static ID id_aref, id_aset, id_key_p;
static VALUE sym_total_allocated;

static size_t hc_tracer_allocations(void)
{
    return rb_gc_stat(sym_total_allocated);
}

static long hc_tracer_next_skip(void)
{
    tracer.rng ^= tracer.rng << 13;
    tracer.rng ^= tracer.rng >> 17;
    tracer.rng ^= tracer.rng << 5;
    return 1 + (long)(tracer.rng % (2 * HC_TRACER_EVERY)); /* mean HC_TRACER_EVERY */
}

/* The kinds of object ObjectSpace's tracer gives a site that an app makes; never VM internals
 * (imemo, nodes), which take no object id. */
static int hc_tracer_kind(VALUE obj)
{
    switch (BUILTIN_TYPE(obj)) {
    case T_OBJECT: case T_CLASS: case T_MODULE: case T_FLOAT: case T_STRING: case T_REGEXP: case T_ARRAY:
    case T_HASH: case T_STRUCT: case T_BIGNUM: case T_FILE: case T_DATA: case T_MATCH: case T_COMPLEX:
    case T_RATIONAL: case T_SYMBOL:
        return 1;
    default:
        return 0;
    }
}

static void hc_tracer_flush(void *unused);

static void hc_tracer_request_flush(void)
{
    tracer.flushing = 1;
#ifdef HAVE_RB_POSTPONED_JOB_PREREGISTER
    rb_postponed_job_trigger(tracer.job);
#else
    rb_postponed_job_register_one(0, hc_tracer_flush, NULL);
#endif
}

/* Every allocation while a window is open: count, and now and then note one. */
static void hc_tracer_newobj(VALUE tpval, void *data)
{
    (void)data;
    tracer.seen++;
    if (tracer.flushing) return;
    if (--tracer.skip <= 0) {
        rb_trace_arg_t *targ = rb_tracearg_from_tracepoint(tpval);
        VALUE obj = rb_tracearg_object(targ);
        VALUE path = hc_tracer_kind(obj) ? rb_tracearg_path(targ) : Qnil;
        if (RB_TYPE_P(path, T_STRING)) {
            hc_pending *p = &tracer.pending[tracer.npending++];
            p->obj = obj;
            p->path = path;
            p->line = FIX2INT(rb_tracearg_lineno(targ));
            p->mid = rb_tracearg_method_id(targ);
            p->gc_count = rb_gc_count();
            tracer.noted++;
            tracer.skip = hc_tracer_next_skip();
        } else {
            tracer.skip = hc_tracer_next_skip(); /* not a kind we sample: no note (see the weight, above) */
        }
    }
    if (tracer.seen >= tracer.window_allocs || tracer.npending == HC_TRACER_BATCH) hc_tracer_request_flush();
}

/* The sampled object under key, or Qundef when it has died (the map forgot it). No allocation. */
static VALUE hc_tracer_object_of(uint64_t key)
{
    VALUE obj = rb_funcall(tracer.objects, id_aref, 1, LONG2FIX((long)key));
    return NIL_P(obj) ? Qundef : obj;
}

/* Drops up to n samples whose object has died (looked at from where the last call stopped). */
static void hc_tracer_prune(hc_sample_table *t, int n)
{
    size_t slots = hc_samples_slots(t);
    for (int k = 0; k < n; k++) {
        size_t slot = tracer.prune_at++ % slots;
        const hc_sample *s = hc_samples_at(t, slot);
        if (!s) continue;
        if (!RTEST(rb_funcall(tracer.objects, id_key_p, 1, LONG2FIX((long)s->addr)))) { /* it died */
            hc_samples_remove(t, s->addr);
            tracer.pruned++;
            tracer.prune_at--; /* a later sample may have moved into this slot */
        }
    }
}

typedef struct {
    long key;
    VALUE obj;
} hc_remembered;

static VALUE hc_tracer_remember_body(VALUE arg)
{
    const hc_remembered *r = (const hc_remembered *)arg;
    return rb_funcall(tracer.objects, id_aset, 2, LONG2FIX(r->key), r->obj);
}

/* The object into the map under key; 0, or -1 when the map refused it (never raised into the app). */
static int hc_tracer_remember(long key, VALUE obj)
{
    hc_remembered r = {key, obj};
    int state = 0;
    rb_protect(hc_tracer_remember_body, (VALUE)&r, &state);
    if (state) rb_set_errinfo(Qnil);
    return state ? -1 : 0;
}

/* The postponed job: the noted objects stored under their keys; at the window's end, the hook off. */
static void hc_tracer_flush(void *unused)
{
    (void)unused;
    if (tracer.validating) { /* the table is being walked: store later */
        tracer.flush_again = 1;
        return;
    }
    if (tracer.window && tracer.seen >= tracer.window_allocs) {
        rb_tracepoint_disable(tracer.tp);
        tracer.window = 0;
        tracer.closed_at = hc_tracer_allocations();
    }
    tracer.storing = 1;
    for (int i = 0; i < tracer.npending; i++) {
        hc_pending *p = &tracer.pending[i];
        /* A GC since the allocation may have freed the object (and its path string): drop it.
         * Without one it is alive (nothing else frees an object in 3.1+); its kind is checked
         * again all the same before it is stored. */
        if (!tracer.table || p->gc_count != rb_gc_count() || !hc_tracer_kind(p->obj)) {
            tracer.dropped++;
            continue;
        }
        VALUE obj = p->obj; /* on this stack: a GC the map's insertion starts keeps it */
        char file[4096];
        long len = RSTRING_LEN(p->path) < (long)sizeof file - 1 ? RSTRING_LEN(p->path) : (long)sizeof file - 1;
        memcpy(file, RSTRING_PTR(p->path), (size_t)len);
        file[len] = '\0';
        const char *method = SYMBOL_P(p->mid) ? rb_id2name(SYM2ID(p->mid)) : NULL;
        long key = ++tracer.next_key;
        /* the table is keyed by the sample's key (its addr field): where the object is now is the
         * map's to know. The notes are this window's: another opens only once they are stored. */
        int rc = hc_samples_put(tracer.table, (uintptr_t)key, file, p->line, method,
                                (uint32_t)p->gc_count, tracer.weight);
        if (rc == 0 && hc_tracer_remember(key, obj) == 0) {
            tracer.stored++;
        } else {
            if (rc == 0) hc_samples_remove(tracer.table, (uintptr_t)key);
            tracer.dropped++;
        }
        RB_GC_GUARD(obj);
    }
    tracer.npending = 0;
    if (tracer.table && hc_samples_count(tracer.table) * 2 > hc_samples_capacity(tracer.table))
        hc_tracer_prune(tracer.table, HC_TRACER_PRUNE);
    tracer.storing = 0;
    tracer.flushing = 0;
}

/* Tracer.start: sampling from the next window on. */
static VALUE hc_tracer_start(VALUE self)
{
    (void)self;
    if (!tracer.table) {
        tracer.table = hc_samples_new(HC_TRACER_CAPACITY);
        if (!tracer.table) rb_memerror();
    }
    if (!tracer.tp) {
        tracer.tp = rb_tracepoint_new(0, RUBY_INTERNAL_EVENT_NEWOBJ, hc_tracer_newobj, NULL);
        rb_gc_register_address(&tracer.tp);
    }
    if (!tracer.objects) {
        tracer.objects = rb_class_new_instance(0, NULL, rb_path2class("ObjectSpace::WeakMap"));
        rb_gc_register_address(&tracer.objects);
    }
    if (!tracer.rng) tracer.rng = (uint32_t)(hc_now_ns() | 1);
    /* The first window's gap begins here: the allocations before (a boot, a stopped spell) were
     * nobody's to sample, and counted in its weight they would inflate every site it samples. */
    if (!tracer.running) tracer.closed_at = hc_tracer_allocations();
    tracer.running = 1;
    return Qnil;
}

/* Tracer.stop: no more windows (one open now closes). The samples stay: each is checked against its
 * object when a dump reads them, so they stay right, and a job or pruning may be walking them. */
static VALUE hc_tracer_stop(VALUE self)
{
    (void)self;
    if (tracer.window) {
        rb_tracepoint_disable(tracer.tp);
        tracer.window = 0;
        tracer.closed_at = hc_tracer_allocations();
    }
    tracer.running = 0;
    return Qnil;
}

/* Tracer.clear => true: every sample dropped (and the notes not yet stored), for a process that no
 * longer wants sites: a later dump carries none of this tracer's. false while a dump's check or the
 * job walks the samples (the caller's thread got the GVL in the middle of it): nothing dropped. */
static VALUE hc_tracer_clear(VALUE self)
{
    (void)self;
    if (tracer.validating || tracer.storing) return Qfalse;
    tracer.npending = 0; /* a job on its way finds nothing to store */
    if (tracer.table) {
        hc_samples_free(tracer.table);
        tracer.table = NULL; /* Tracer.start makes a new one; the job and the dump check for none */
    }
    if (tracer.objects) /* the old map's keys are never asked for again (keys are not reused) */
        tracer.objects = rb_class_new_instance(0, NULL, rb_path2class("ObjectSpace::WeakMap"));
    tracer.prune_at = 0;
    return Qtrue;
}

/* What a sample of a window of window allocations after a gap of since stands for (header comment):
 * the allocations of both over the notes expected in the window, at least 1. */
static uint32_t hc_tracer_weight(size_t since, size_t window)
{
    double w = (double)HC_TRACER_EVERY * ((double)since + (double)window) / (double)window;
    return w < 1 ? 1 : w >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)(w + 0.5);
}

/* Tracer.open_window => true when a window opened (not running, or one is open: false). */
static VALUE hc_tracer_open_window(VALUE self)
{
    (void)self;
    if (!tracer.running || tracer.window || tracer.flushing) return Qfalse;
    size_t since = hc_tracer_allocations() - tracer.closed_at;
    if (since < HC_TRACER_GAP) return Qfalse;
    size_t share = since / HC_TRACER_SHARE;
    tracer.window_allocs = share < HC_TRACER_WINDOW_ALLOCS ? HC_TRACER_WINDOW_ALLOCS
                         : share > HC_TRACER_WINDOW_MAX ? HC_TRACER_WINDOW_MAX : (long)share;
    tracer.weight = hc_tracer_weight(since, (size_t)tracer.window_allocs);
    tracer.seen = 0;
    tracer.npending = 0;
    tracer.skip = hc_tracer_next_skip();
    tracer.window = 1;
    tracer.windows++;
    rb_tracepoint_enable(tracer.tp);
    return Qtrue;
}

/* Tracer.stats => {"samples", "capacity", "windows", "noted", "stored", "dropped", "pruned", "running",
 * "weight" (the last window's: the allocations one of its samples stands for; 0 before the first)} */
static VALUE hc_tracer_stats(VALUE self)
{
    (void)self;
    VALUE h = rb_hash_new();
    rb_hash_aset(h, rb_str_new_cstr("samples"), SIZET2NUM(tracer.table ? hc_samples_count(tracer.table) : 0));
    rb_hash_aset(h, rb_str_new_cstr("capacity"), INT2NUM(HC_TRACER_CAPACITY));
    rb_hash_aset(h, rb_str_new_cstr("windows"), ULL2NUM(tracer.windows));
    rb_hash_aset(h, rb_str_new_cstr("noted"), ULL2NUM(tracer.noted));
    rb_hash_aset(h, rb_str_new_cstr("stored"), ULL2NUM(tracer.stored));
    rb_hash_aset(h, rb_str_new_cstr("dropped"), ULL2NUM(tracer.dropped));
    rb_hash_aset(h, rb_str_new_cstr("pruned"), ULL2NUM(tracer.pruned));
    rb_hash_aset(h, rb_str_new_cstr("running"), tracer.running ? Qtrue : Qfalse);
    rb_hash_aset(h, rb_str_new_cstr("weight"), UINT2NUM(tracer.weight));
    return h;
}

/* Each sample's object, if alive, keyed by where it is now (GC.compact may have moved it). */
static hc_sample_table *hc_tracer_check_samples(void)
{
    hc_sample_table *live = hc_samples_new(hc_samples_count(tracer.table));
    if (!live) return NULL;
    const hc_sample_table *t = tracer.table;
    for (size_t slot = 0; slot < hc_samples_slots(t); slot++) {
        const hc_sample *s = hc_samples_at(t, slot);
        if (!s) continue;
        VALUE obj = hc_tracer_object_of(s->addr);
        if (obj == Qundef || SPECIAL_CONST_P(obj)) continue;
        const char *method = s->method == HC_SAMPLE_NO_METHOD ? NULL : hc_samples_string(t, s->method);
        hc_samples_put(live, (uintptr_t)obj, hc_samples_string(t, s->file), s->line, method, s->generation,
                       s->weight);
    }
    if (hc_samples_count(live) == 0) {
        hc_samples_free(live);
        return NULL;
    }
    return live;
}

hc_sample_table *hc_tracer_live_samples(void)
{
    if (!tracer.table || hc_samples_count(tracer.table) == 0) return NULL;
    /* The map's lookups are Ruby calls: a window open now must not store into the table walked. */
    int was_flushing = tracer.flushing;
    tracer.flushing = 1;
    tracer.validating = 1;
    hc_sample_table *live = hc_tracer_check_samples();
    tracer.validating = 0;
    tracer.flushing = was_flushing;
    if (tracer.flush_again) {
        tracer.flush_again = 0;
        hc_tracer_request_flush();
    }
    return live;
}

static void hc_tracer_pin_mark(void *p)
{
    const hc_sample_table *live = p;
    if (!live) return;
    for (size_t slot = 0; slot < hc_samples_slots(live); slot++) {
        const hc_sample *s = hc_samples_at(live, slot);
        if (s) rb_gc_mark((VALUE)s->addr); /* rb_gc_mark pins: the object stays where the table says */
    }
}

static const rb_data_type_t hc_tracer_pin_type = {
    .wrap_struct_name = "heapcapture/sample_pin",
    .function = {.dmark = hc_tracer_pin_mark},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

VALUE hc_tracer_pin(const hc_sample_table *live)
{
    return TypedData_Wrap_Struct(0, &hc_tracer_pin_type, (void *)live);
}

void hc_tracer_unpin(VALUE pin)
{
    if (RTEST(pin)) DATA_PTR(pin) = NULL;
}

/* Tracer.live_sites => [[address, file, line, method or nil, generation, weight], ...]: what a dump
 * taken now would annotate (the tests compare it with the objects themselves). */
static VALUE hc_tracer_live_sites(VALUE self)
{
    (void)self;
    hc_sample_table *live = hc_tracer_live_samples();
    VALUE list = rb_ary_new();
    if (!live) return list;
    for (size_t slot = 0; slot < hc_samples_slots(live); slot++) {
        const hc_sample *s = hc_samples_at(live, slot);
        if (!s) continue;
        const char *method = s->method == HC_SAMPLE_NO_METHOD ? NULL : hc_samples_string(live, s->method);
        rb_ary_push(list, rb_ary_new_from_args(6, ULL2NUM(s->addr), rb_str_new_cstr(hc_samples_string(live, s->file)),
                                               INT2NUM(s->line), method ? rb_str_new_cstr(method) : Qnil,
                                               UINT2NUM(s->generation), UINT2NUM(s->weight)));
    }
    hc_samples_free(live);
    return list;
}

static int hc_tracer_append(void *arg, const void *buf, size_t len, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    rb_str_cat(*(VALUE *)arg, buf, (long)len);
    return 0;
}

typedef struct {
    hc_sample_table *live;
    VALUE dump, out;
} hc_annotate_call;

static VALUE hc_tracer_annotate_body(VALUE arg)
{
    hc_annotate_call *call = (hc_annotate_call *)arg;
    hc_annotator a;
    char err[256];
    hc_annotator_init(&a, call->live, hc_tracer_append, &call->out);
    int rc = hc_annotator_write(&a, RSTRING_PTR(call->dump), (size_t)RSTRING_LEN(call->dump), err, sizeof err);
    if (rc == 0) rc = hc_annotator_finish(&a, err, sizeof err);
    hc_annotator_free(&a);
    if (rc != 0) hc_rb_raise(hc_eDumpError, "%s", err);
    return call->out;
}

static VALUE hc_tracer_annotate_cleanup(VALUE arg)
{
    hc_samples_free(((hc_annotate_call *)arg)->live);
    return Qnil;
}

/* Tracer.annotate(ndjson) => the same dump_all output with the live samples' sites added, as a
 * capture's dump gets them. For a dump_all taken in this process just before with the GC disabled
 * since (GC.disable): an object freed in between could leave its slot, and its site, to a later
 * one. (A capture checks the samples first, then dumps with the GC off.) */
static VALUE hc_tracer_annotate(VALUE self, VALUE dump)
{
    (void)self;
    StringValue(dump);
    hc_annotate_call call = {hc_tracer_live_samples(), dump, rb_str_buf_new(RSTRING_LEN(dump) + 4096)};
    if (!call.live) return rb_str_dup(dump);
    VALUE out = rb_ensure(hc_tracer_annotate_body, (VALUE)&call, hc_tracer_annotate_cleanup, (VALUE)&call);
    RB_GC_GUARD(dump);
    return out;
}

void hc_init_tracer(void)
{
    id_aref = rb_intern("[]");
    id_aset = rb_intern("[]=");
    id_key_p = rb_intern("key?");
    sym_total_allocated = ID2SYM(rb_intern("total_allocated_objects"));
#ifdef HAVE_RB_POSTPONED_JOB_PREREGISTER
    tracer.job = rb_postponed_job_preregister(0, hc_tracer_flush, NULL);
#endif
    VALUE m = rb_define_module_under(hc_mHeapCapture, "Tracer");
    rb_define_module_function(m, "start", hc_tracer_start, 0);
    rb_define_module_function(m, "stop", hc_tracer_stop, 0);
    rb_define_module_function(m, "clear", hc_tracer_clear, 0);
    rb_define_module_function(m, "open_window", hc_tracer_open_window, 0);
    rb_define_module_function(m, "stats", hc_tracer_stats, 0);
    rb_define_module_function(m, "live_sites", hc_tracer_live_sites, 0);
    rb_define_module_function(m, "annotate", hc_tracer_annotate, 1);
    rb_define_const(m, "CAPACITY", INT2NUM(HC_TRACER_CAPACITY));
}
