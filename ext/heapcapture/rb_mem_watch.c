/* HeapCapture::Dump::MemoryWatch (internal): the capture's extra memory (mem_watch.h), bound to
 * Ruby, in the app's process. Capture starts one before anything of the capture runs, points it
 * at the dump child once there is one, and stops it when the capture is done (stored or not):
 * the figure covers the dump, the upload's buffers and the child.
 *
 *   watch = Dump::MemoryWatch.start   # this process's Pss read now, without the GVL
 *   watch.child = pid                 # fork mode: the child's Pss counts too, while it lives
 *   watch.forget_child                # before the child is reaped
 *   watch.stop                        # => peak extra bytes, or nil when unknown (no /proc) */
#include "rb_heapcapture.h"
#include "mem_watch.h"
#include "mem_proc.h"

#include <string.h>
#include <unistd.h>
#include <ruby/thread.h>

typedef struct {
    hc_mem_watch w;
    pid_t owner;            /* the process whose thread it is: a copy in a forked process has none */
    int64_t result;         /* once stopped */
    int stopped;
} hc_rb_mem_watch;

static void hc_rb_mem_watch_end(hc_rb_mem_watch *m)
{
    if (m->stopped) return;
    m->stopped = 1;
    if (m->owner != getpid()) {
        m->w.started = 0;
        m->result = -1;
        return;
    }
    m->result = hc_mem_watch_stop(&m->w);
}

static void hc_rb_mem_watch_free(void *p)
{
    hc_rb_mem_watch_end(p);
    xfree(p);
}

static const rb_data_type_t hc_rb_mem_watch_type = {
    .wrap_struct_name = "HeapCapture::Dump::MemoryWatch",
    .function = {.dfree = hc_rb_mem_watch_free},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE hc_cMemoryWatch;

typedef struct {
    uint64_t bytes;
    int ok;
    char err[256];
} hc_base_read;

static void *hc_read_base_nogvl(void *arg)
{
    hc_base_read *b = arg;
    b->ok = hc_proc_pss(0, &b->bytes, b->err, sizeof b->err) == 0;
    return NULL;
}

/* MemoryWatch.start => a watch (one that gives nil when this process's Pss cannot be read). */
static VALUE hc_mem_watch_start_m(VALUE klass)
{
    hc_rb_mem_watch *m;
    VALUE obj = TypedData_Make_Struct(klass, hc_rb_mem_watch, &hc_rb_mem_watch_type, m);
    m->owner = getpid();
    m->result = -1;
    hc_base_read base;
    memset(&base, 0, sizeof base);
    rb_thread_call_without_gvl(hc_read_base_nogvl, &base, NULL, NULL); /* bounded: a /proc read */
    char err[256];
    if (!base.ok || hc_mem_watch_start(&m->w, 0, base.bytes, err, sizeof err) != 0) m->stopped = 1;
    return obj;
}

static hc_rb_mem_watch *hc_rb_mem_watch_get(VALUE self)
{
    return rb_check_typeddata(self, &hc_rb_mem_watch_type);
}

static VALUE hc_mem_watch_child_m(VALUE self, VALUE pid)
{
    hc_rb_mem_watch *m = hc_rb_mem_watch_get(self);
    if (!m->stopped) hc_mem_watch_follow(&m->w, NUM2PIDT(pid));
    return pid;
}

static VALUE hc_mem_watch_forget_child_m(VALUE self)
{
    hc_rb_mem_watch *m = hc_rb_mem_watch_get(self);
    if (!m->stopped) hc_mem_watch_forget_child(&m->w);
    return Qnil;
}

static void *hc_stop_nogvl(void *arg)
{
    hc_rb_mem_watch_end(arg);
    return NULL;
}

static VALUE hc_mem_watch_stop_m(VALUE self)
{
    hc_rb_mem_watch *m = hc_rb_mem_watch_get(self);
    if (!m->stopped) rb_thread_call_without_gvl(hc_stop_nogvl, m, NULL, NULL); /* a last sample, a join */
    return m->result >= 0 ? LL2NUM(m->result) : Qnil;
}

void hc_init_mem_watch(void)
{
    VALUE mDump = hc_rb_dump_module();
    hc_cMemoryWatch = rb_define_class_under(mDump, "MemoryWatch", rb_cObject);
    rb_undef_alloc_func(hc_cMemoryWatch);
    rb_define_singleton_method(hc_cMemoryWatch, "start", hc_mem_watch_start_m, 0);
    rb_define_method(hc_cMemoryWatch, "child=", hc_mem_watch_child_m, 1);
    rb_define_method(hc_cMemoryWatch, "forget_child", hc_mem_watch_forget_child_m, 0);
    rb_define_method(hc_cMemoryWatch, "stop", hc_mem_watch_stop_m, 0);
}
