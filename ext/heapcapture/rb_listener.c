/* Ruby binding of listener.c: HeapCapture::Listener::Connection.
 *
 * Every wait, connect and query runs without the GVL, with an unblocking function that
 * interrupts it through the wake pipe, so Thread#kill, HeapCapture.stop and process exit return
 * at once. Log lines and notifications produced while the GVL is released are buffered in C and
 * turned into Ruby objects (HeapCapture::Log calls, Arrays) once it is held again.
 * #run starts the listener's own Ruby thread (rb_thread_create) that loops: wait, then hand the
 * notifications to a Ruby callable with the GVL held. */
#include "rb_heapcapture.h"
#include "util.h"

#include <ruby/thread.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"

#define HC_RUN_WAIT_MS 5000 /* the thread loop looks at its stop flag at least this often */

typedef struct {
    int is_log;
    int level;    /* log lines */
    int be_pid;   /* notifications */
    char *channel;
    char *text;   /* the log line or the payload */
} hc_event;

typedef struct {
    hc_listener l;
    int initialized;
    int stopping;      /* #stop was called: the thread loop ends */
    int in_use;        /* a call without the GVL is under way */
    hc_event *events;
    size_t nevents, capevents;
    size_t dropped;    /* events lost to a failed allocation */
} hc_rb_listener;

static VALUE hc_cListener;
static VALUE hc_cConnection;
static ID hc_id_call, hc_id_info, hc_id_warn, hc_id_error, hc_id_debug;
static VALUE hc_mLog_cached = Qnil;

static void hc_events_clear(hc_rb_listener *w)
{
    for (size_t i = 0; i < w->nevents; i++) {
        free(w->events[i].channel);
        free(w->events[i].text);
    }
    w->nevents = 0;
}

static void hc_rb_listener_free(void *ptr)
{
    hc_rb_listener *w = ptr;
    if (w->initialized) {
        /* In a forked child the connection belongs to the parent: never say goodbye on it. */
        if (w->l.owner_pid != getpid()) hc_listener_abandon(&w->l);
        else hc_listener_close(&w->l);
    }
    hc_events_clear(w);
    free(w->events);
    xfree(w);
}

static size_t hc_rb_listener_memsize(const void *ptr)
{
    const hc_rb_listener *w = ptr;
    return sizeof *w + w->capevents * sizeof(hc_event);
}

static const rb_data_type_t hc_listener_type = {
    .wrap_struct_name = "heapcapture_listener_connection",
    .function = { .dfree = hc_rb_listener_free, .dsize = hc_rb_listener_memsize },
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE hc_rb_listener_alloc(VALUE klass)
{
    hc_rb_listener *w;
    VALUE obj = TypedData_Make_Struct(klass, hc_rb_listener, &hc_listener_type, w);
    w->l.wake_fds[0] = w->l.wake_fds[1] = -1;
    return obj;
}

static hc_rb_listener *hc_get(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    if (!w->initialized) hc_rb_raise(hc_eConnectionError, "this listener connection is closed");
    return w;
}

/* --- events buffered without the GVL --------------------------------------------------------- */

static void hc_push_event(hc_rb_listener *w, int is_log, int level, int be_pid, const char *channel,
                          const char *text)
{
    if (w->nevents == w->capevents) {
        size_t cap = w->capevents ? w->capevents * 2 : 16;
        hc_event *grown = realloc(w->events, cap * sizeof *grown);
        if (!grown) {
            w->dropped++;
            return;
        }
        w->events = grown;
        w->capevents = cap;
    }
    hc_event *e = &w->events[w->nevents];
    e->is_log = is_log;
    e->level = level;
    e->be_pid = be_pid;
    e->channel = hc_strdup_or_null(channel);
    e->text = hc_strdup_or_null(text);
    if ((channel && !e->channel) || (text && !e->text)) {
        free(e->channel);
        free(e->text);
        w->dropped++;
        return;
    }
    w->nevents++;
}

static void hc_on_log(void *ctx, int level, const char *msg)
{
    hc_push_event(ctx, 1, level, 0, NULL, msg);
}

static void hc_on_notify(void *ctx, const char *channel, int be_pid, const char *payload)
{
    hc_push_event(ctx, 0, 0, be_pid, channel, payload);
}

static VALUE hc_log_module(void)
{
    if (NIL_P(hc_mLog_cached)) {
        hc_mLog_cached = rb_const_get(hc_mHeapCapture, rb_intern("Log"));
        rb_gc_register_mark_object(hc_mLog_cached);
    }
    return hc_mLog_cached;
}

static void hc_ruby_log(int level, VALUE msg)
{
    ID level_id = level >= HC_LOG_ERROR ? hc_id_error
                : level == HC_LOG_WARN  ? hc_id_warn
                : level == HC_LOG_INFO  ? hc_id_info
                                        : hc_id_debug;
    rb_funcall(hc_log_module(), level_id, 1, msg);
}

/* With the GVL: log lines go to HeapCapture::Log, notifications become [channel, be_pid, payload]. */
static VALUE hc_flush_events(hc_rb_listener *w)
{
    VALUE notes = rb_ary_new();
    size_t n = w->nevents;
    VALUE logs = rb_ary_new();
    for (size_t i = 0; i < n; i++) {
        hc_event *e = &w->events[i];
        if (e->is_log) {
            rb_ary_push(logs, rb_ary_new_from_args(2, INT2FIX(e->level), rb_utf8_str_new_cstr(e->text)));
        } else {
            rb_ary_push(notes, rb_ary_new_from_args(3, rb_utf8_str_new_cstr(e->channel), INT2FIX(e->be_pid),
                                                    rb_utf8_str_new_cstr(e->text)));
        }
    }
    size_t dropped = w->dropped;
    hc_events_clear(w);
    w->dropped = 0;
    for (long i = 0; i < RARRAY_LEN(logs); i++) {
        VALUE pair = rb_ary_entry(logs, i);
        hc_ruby_log(FIX2INT(rb_ary_entry(pair, 0)), rb_ary_entry(pair, 1));
    }
    if (dropped)
        hc_ruby_log(HC_LOG_ERROR, rb_sprintf("out of memory while receiving: %zu notification(s) or log "
                                             "line(s) were lost", dropped));
    return notes;
}

/* --- blocking calls without the GVL ---------------------------------------------------------- */

enum { HC_OP_CONNECT, HC_OP_WAIT, HC_OP_NOTIFY };

typedef struct {
    hc_rb_listener *w;
    int op;
    int timeout_ms;
    const char *channel;
    const char *payload;
    int rc;
    char err[768];
} hc_call;

static void *hc_call_nogvl(void *ptr)
{
    hc_call *c = ptr;
    hc_listener *l = &c->w->l;
    switch (c->op) {
    case HC_OP_CONNECT:
        c->rc = hc_listener_connect(l, c->timeout_ms, c->err, sizeof c->err);
        break;
    case HC_OP_WAIT:
        c->rc = hc_listener_wait(l, c->timeout_ms, hc_on_notify, c->w, c->err, sizeof c->err);
        break;
    default:
        c->rc = hc_listener_notify(l, c->channel, c->payload, c->timeout_ms, c->err, sizeof c->err);
        break;
    }
    return NULL;
}

static void hc_call_ubf(void *ptr)
{
    hc_listener_interrupt(&((hc_rb_listener *)ptr)->l);
}

static VALUE hc_run_call_body(VALUE ptr)
{
    hc_call *c = (hc_call *)ptr;
    rb_thread_call_without_gvl(hc_call_nogvl, c, hc_call_ubf, c->w);
    return Qnil;
}

static VALUE hc_run_call_done(VALUE ptr)
{
    ((hc_call *)ptr)->w->in_use = 0;
    return Qnil;
}

/* in_use is cleared however the call ends (Thread#kill raises out of the GVL release). */
static void hc_run_call(hc_call *c)
{
    hc_rb_listener *w = c->w;
    if (w->in_use) hc_rb_raise(hc_eConnectionError, "this listener connection is in use by another thread");
    w->in_use = 1;
    hc_listener_clear_interrupt(&w->l);
    c->err[0] = '\0';
    rb_ensure(hc_run_call_body, (VALUE)c, hc_run_call_done, (VALUE)c);
}

static int hc_timeout_ms(VALUE timeout)
{
    if (NIL_P(timeout)) return -1;
    double secs = NUM2DBL(timeout);
    /* (int)NaN is undefined: in practice INT_MIN, which would mean "wait forever". */
    if (isnan(secs)) hc_rb_raise(rb_eArgError, "a timeout must be a number of seconds, got NaN");
    if (secs < 0) return 0;
    if (secs > 86400.0 * 20) return 86400 * 20 * 1000;
    return (int)(secs * 1000.0 + 0.5);
}

/* Connection.new(url, channel_or_nil, application_name, reconnect) */
static VALUE hc_conn_initialize(VALUE self, VALUE url, VALUE channel, VALUE app, VALUE reconnect)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    if (w->initialized) hc_rb_raise(rb_eArgError, "listener connection already initialized");
    const char *curl = StringValueCStr(url);
    const char *cchannel = NIL_P(channel) ? "" : StringValueCStr(channel);
    const char *capp = StringValueCStr(app);
    char err[512];
    if (hc_listener_init(&w->l, curl, capp, cchannel, RTEST(reconnect), hc_on_log, w, err, sizeof err) !=
        HC_LISTENER_OK)
        hc_rb_raise(rb_eArgError, "%s", err);
    w->initialized = 1;
    RB_GC_GUARD(url);
    RB_GC_GUARD(channel);
    RB_GC_GUARD(app);
    return self;
}

/* One attempt to connect (and LISTEN); raises ConnectionError on failure. */
static VALUE hc_conn_connect(VALUE self, VALUE timeout)
{
    hc_call c = { .w = hc_get(self), .op = HC_OP_CONNECT, .timeout_ms = hc_timeout_ms(timeout) };
    hc_run_call(&c);
    hc_flush_events(c.w);
    if (c.rc == HC_LISTENER_WOKEN) hc_rb_raise(hc_eConnectionError, "connecting to PostgreSQL: interrupted");
    if (c.rc != HC_LISTENER_OK) hc_rb_raise(hc_eConnectionError, "%s", c.err);
    return Qtrue;
}

/* Waits up to timeout seconds (nil: no limit); returns [[channel, be_pid, payload], ...], empty
 * when woken or timed out. Raises ConnectionError when the connection is lost and the listener
 * does not reconnect. */
static VALUE hc_conn_wait(VALUE self, VALUE timeout)
{
    hc_call c = { .w = hc_get(self), .op = HC_OP_WAIT, .timeout_ms = hc_timeout_ms(timeout) };
    hc_run_call(&c);
    VALUE notes = hc_flush_events(c.w);
    if (c.rc == HC_LISTENER_ERROR) hc_rb_raise(hc_eConnectionError, "%s", c.err);
    return notes;
}

/* SELECT pg_notify(channel, payload) on this connection; raises ConnectionError on failure. */
static VALUE hc_conn_notify(VALUE self, VALUE channel, VALUE payload, VALUE timeout)
{
    hc_call c = { .w = hc_get(self), .op = HC_OP_NOTIFY, .timeout_ms = hc_timeout_ms(timeout) };
    c.channel = StringValueCStr(channel);
    c.payload = StringValueCStr(payload);
    hc_run_call(&c);
    RB_GC_GUARD(channel);
    RB_GC_GUARD(payload);
    hc_flush_events(c.w);
    if (c.rc != HC_LISTENER_OK) hc_rb_raise(hc_eConnectionError, "%s", c.err);
    return Qtrue;
}

/* Makes the current or next #wait return. Any thread; nothing happens once closed. */
static VALUE hc_conn_wake(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    if (w->initialized) hc_listener_wake(&w->l);
    return Qnil;
}

static VALUE hc_conn_connected_p(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    return w->initialized && hc_listener_connected(&w->l) ? Qtrue : Qfalse;
}

/* Connection#attempts => the connection attempts that have ended (listener.h). */
static VALUE hc_conn_attempts(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    return UINT2NUM(w->initialized ? hc_listener_attempts(&w->l) : 0);
}

static VALUE hc_conn_backend_pid(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    int pid = w->initialized ? hc_listener_backend_pid(&w->l) : 0;
    return pid ? INT2FIX(pid) : Qnil;
}

static VALUE hc_conn_closed_p(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    return w->initialized ? Qfalse : Qtrue;
}

static VALUE hc_conn_close(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    if (!w->initialized) return Qnil;
    if (w->in_use) hc_rb_raise(hc_eConnectionError, "cannot close a listener connection that another thread is using; call #stop");
    hc_listener_close(&w->l);
    w->initialized = 0;
    return Qnil;
}

/* After fork, in the child: forget the parent's connection without writing to its socket. */
static VALUE hc_conn_abandon(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    if (!w->initialized) return Qnil;
    hc_listener_abandon(&w->l);
    w->initialized = 0;
    w->in_use = 0; /* the thread that was using it does not exist in this process */
    return Qnil;
}

/* --- the listener thread --------------------------------------------------------------------- */

typedef struct {
    VALUE self;
    VALUE handler;
} hc_run_args;

/* Passes the notifications to the handler; a StandardError that escapes it is logged, never
 * ends the loop. Thread#kill and other non-errors go on up. */
static VALUE hc_call_handler(VALUE ary)
{
    return rb_funcall(rb_ary_entry(ary, 0), hc_id_call, 1, rb_ary_entry(ary, 1));
}

static VALUE hc_thread_loop(VALUE arg)
{
    hc_run_args *a = (hc_run_args *)arg;
    hc_rb_listener *w = hc_get(a->self);
    while (!__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) {
        hc_call c = { .w = w, .op = HC_OP_WAIT, .timeout_ms = HC_RUN_WAIT_MS };
        hc_run_call(&c);
        VALUE notes = hc_flush_events(w);
        if (c.rc == HC_LISTENER_ERROR) {
            hc_ruby_log(HC_LOG_ERROR, rb_utf8_str_new_cstr(c.err));
            rb_thread_sleep(1); /* (a poll() failure: not expected) don't spin */
        }
        if (__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) break;
        int state = 0;
        rb_protect(hc_call_handler, rb_ary_new_from_args(2, a->handler, notes), &state);
        if (state) {
            VALUE e = rb_errinfo();
            if (!rb_obj_is_kind_of(e, rb_eStandardError)) rb_jump_tag(state);
            rb_set_errinfo(Qnil);
            hc_ruby_log(HC_LOG_ERROR, rb_sprintf("the notification handler failed: %" PRIsVALUE "; still listening",
                                                 hc_rb_describe_exception(e)));
        }
    }
    return Qnil;
}

static VALUE hc_log_thread_end(VALUE unused)
{
    hc_ruby_log(HC_LOG_WARN, rb_str_new_cstr("the listener thread ended without HeapCapture.stop (killed, or the "
                                             "process is exiting); not listening any more until "
                                             "HeapCapture.exclusive is called again"));
    return Qnil;
}

static VALUE hc_thread_cleanup(VALUE arg)
{
    hc_run_args *a = (hc_run_args *)arg;
    hc_rb_listener *w;
    TypedData_Get_Struct(a->self, hc_rb_listener, &hc_listener_type, w);
    if (w->initialized) {
        w->in_use = 0;
        if (w->l.owner_pid != getpid()) hc_listener_abandon(&w->l);
        else hc_listener_close(&w->l);
        w->initialized = 0;
    }
    if (!__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) {
        /* Killed (Thread#kill, process exit) or a non-StandardError: say so, never silently. */
        int state = 0;
        rb_protect(hc_log_thread_end, Qnil, &state);
        if (state) rb_set_errinfo(Qnil);
    }
    return Qnil;
}

static VALUE hc_thread_main(void *ptr)
{
    hc_run_args a = *(hc_run_args *)ptr;
    xfree(ptr);
    VALUE result = rb_ensure(hc_thread_loop, (VALUE)&a, hc_thread_cleanup, (VALUE)&a);
    RB_GC_GUARD(a.self);
    RB_GC_GUARD(a.handler);
    return result;
}

/* Starts the listener thread: wait, then handler.call([[channel, be_pid, payload], ...]) with the
 * GVL held (an empty Array when woken or at the periodic timeout), until #stop. The connection is
 * closed when the thread ends, however it ends. Returns the Thread. The caller keeps self
 * referenced while the thread runs. */
static VALUE hc_conn_run(VALUE self, VALUE handler)
{
    hc_get(self);
    /* Referenced from self until the thread's own stack holds it (the args below are malloc'd). */
    rb_ivar_set(self, rb_intern("handler"), handler);
    hc_run_args *a = ALLOC(hc_run_args);
    a->self = self;
    a->handler = handler;
    VALUE thread = rb_thread_create(hc_thread_main, a);
    RB_GC_GUARD(self);
    RB_GC_GUARD(handler);
    return thread;
}

/* Asks the thread started by #run to end, interrupting any wait. Any thread. */
static VALUE hc_conn_stop(VALUE self)
{
    hc_rb_listener *w;
    TypedData_Get_Struct(self, hc_rb_listener, &hc_listener_type, w);
    __atomic_store_n(&w->stopping, 1, __ATOMIC_RELEASE);
    if (w->initialized) hc_listener_interrupt(&w->l);
    return Qnil;
}

void hc_init_listener(void)
{
    hc_id_call = rb_intern("call");
    hc_id_info = rb_intern("info");
    hc_id_warn = rb_intern("warn");
    hc_id_error = rb_intern("error");
    hc_id_debug = rb_intern("debug");

    hc_cListener = rb_define_class_under(hc_mHeapCapture, "Listener", rb_cObject);
    hc_cConnection = rb_define_class_under(hc_cListener, "Connection", rb_cObject);
    rb_define_alloc_func(hc_cConnection, hc_rb_listener_alloc);
    rb_define_method(hc_cConnection, "initialize", hc_conn_initialize, 4);
    rb_define_method(hc_cConnection, "connect", hc_conn_connect, 1);
    rb_define_method(hc_cConnection, "wait", hc_conn_wait, 1);
    rb_define_method(hc_cConnection, "notify", hc_conn_notify, 3);
    rb_define_method(hc_cConnection, "wake", hc_conn_wake, 0);
    rb_define_method(hc_cConnection, "connected?", hc_conn_connected_p, 0);
    rb_define_method(hc_cConnection, "backend_pid", hc_conn_backend_pid, 0);
    rb_define_method(hc_cConnection, "attempts", hc_conn_attempts, 0);
    rb_define_method(hc_cConnection, "closed?", hc_conn_closed_p, 0);
    rb_define_method(hc_cConnection, "close", hc_conn_close, 0);
    rb_define_method(hc_cConnection, "abandon", hc_conn_abandon, 0);
    rb_define_method(hc_cConnection, "run", hc_conn_run, 1);
    rb_define_method(hc_cConnection, "stop", hc_conn_stop, 0);
    rb_define_const(hc_cConnection, "CHANNEL_MAX", INT2FIX(HC_LISTENER_CHANNEL_MAX));
}
