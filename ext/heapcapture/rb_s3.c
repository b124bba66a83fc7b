/* HeapCapture::S3::Client's C half: wraps an hc_s3_client (s3.c) in a TypedData object.
 * lib/heapcapture/s3.rb handles keywords and defaults and calls the private methods here.
 *
 * Every transfer runs on a thread of its own (hc_rb_s3_runner) on C copies of its arguments, while
 * the caller waits for it without the GVL. An interrupt wakes the caller to run it. A signal
 * handler (a trap, or Ruby 3.4's own SIGCHLD handling when a dump child exits) returns, and the
 * caller waits on while the transfer goes on untouched (restarting it sent a whole dump twice).
 * Thread#kill, Thread#raise or exit unwind the caller, which then stops the transfer
 * (hc_s3_client_abort: s3.c aborts a multipart upload at S3 before returning), waits for that
 * without the GVL (a second interrupt that raises cuts it short; a signal handler just runs),
 * joins the thread and logs what may be left open at S3. */
#include "rb_heapcapture.h"
#include "rb_dump.h"
#include "s3.h"

#include <curl/curl.h>
#include <pthread.h>
#include <ruby/thread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static VALUE hc_cS3Client;

typedef struct {
    hc_s3_client *client;
    int busy; /* read and written with the GVL held */
} hc_rb_s3;

static void hc_rb_s3_free(void *p)
{
    hc_rb_s3 *s = p;
    hc_s3_client_free(s->client);
    xfree(s);
}

static size_t hc_rb_s3_size(const void *p)
{
    (void)p;
    return sizeof(hc_rb_s3);
}

static const rb_data_type_t hc_rb_s3_type = {
    .wrap_struct_name = "HeapCapture::S3::Client",
    .function = {.dfree = hc_rb_s3_free, .dsize = hc_rb_s3_size},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE hc_rb_s3_alloc(VALUE klass)
{
    hc_rb_s3 *s;
    return TypedData_Make_Struct(klass, hc_rb_s3, &hc_rb_s3_type, s);
}

static hc_rb_s3 *hc_rb_s3_get(VALUE self)
{
    hc_rb_s3 *s = rb_check_typeddata(self, &hc_rb_s3_type);
    if (!s->client) hc_rb_raise(hc_eError, "this S3 client was not set up (call new, not allocate)");
    return s;
}

static const char *hc_rb_s3_cstr(VALUE v, const char *what, int nil_ok)
{
    return hc_rb_cstr(v, "S3", what, rb_eTypeError, nil_ok);
}

static VALUE hc_rb_s3_opt(VALUE opts, const char *name)
{
    return rb_hash_lookup2(opts, ID2SYM(rb_intern(name)), Qnil);
}

static long hc_rb_s3_long_opt(VALUE opts, const char *name)
{
    VALUE v = hc_rb_s3_opt(opts, name);
    return NIL_P(v) ? 0 : NUM2LONG(v);
}

/* Raises the error s3.c reported: ArgumentError, NoMemoryError, or klass (S3Error, UploadError
 * for an upload) with S3's code, status and request id. */
static void hc_rb_s3_raise(const hc_s3_error *err, VALUE klass)
{
    if (err->kind == HC_S3_EARG) hc_rb_raise(rb_eArgError, "%s", err->message);
    if (err->kind == HC_S3_ENOMEM) rb_memerror();
    VALUE msg = rb_str_new_cstr(err->message); /* UploadError#initialize adds the prefix */
    VALUE kw = rb_hash_new();
    rb_hash_aset(kw, ID2SYM(rb_intern("code")), *err->code ? rb_str_new_cstr(err->code) : Qnil);
    rb_hash_aset(kw, ID2SYM(rb_intern("status")), err->http_status ? LONG2NUM(err->http_status) : Qnil);
    rb_hash_aset(kw, ID2SYM(rb_intern("request_id")), *err->request_id ? rb_str_new_cstr(err->request_id) : Qnil);
    VALUE args[2] = {msg, kw};
    rb_exc_raise(rb_class_new_instance_kw(2, args, klass, RB_PASS_KEYWORDS));
}

/* _setup(options Hash): builds the C client. Bad settings are a ConfigurationError. */
static VALUE hc_rb_s3_setup(VALUE self, VALUE opts)
{
    hc_rb_s3 *s = rb_check_typeddata(self, &hc_rb_s3_type);
    Check_Type(opts, T_HASH);
    if (s->client) hc_rb_raise(hc_eError, "this S3 client is already set up");
    VALUE path_style = hc_rb_s3_opt(opts, "path_style");
    hc_s3_config cfg = {
        .bucket = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "bucket"), "bucket", 0),
        .region = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "region"), "region", 0),
        .endpoint = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "endpoint"), "endpoint", 1),
        .path_style = NIL_P(path_style) ? -1 : RTEST(path_style) ? 1 : 0,
        .access_key_id = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "access_key_id"), "access_key_id", 0),
        .secret_access_key = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "secret_access_key"), "secret_access_key", 0),
        .session_token = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "session_token"), "session_token", 1),
        .part_size = hc_rb_s3_long_opt(opts, "part_size"),
        .concurrency = (int)hc_rb_s3_long_opt(opts, "concurrency"),
        .connect_timeout_ms = hc_rb_s3_long_opt(opts, "connect_timeout_ms"),
        .low_speed_time_s = hc_rb_s3_long_opt(opts, "low_speed_time_s"),
        .max_attempts = (int)hc_rb_s3_long_opt(opts, "max_attempts"),
        .retry_base_ms = hc_rb_s3_long_opt(opts, "retry_base_ms"),
        .ca_file = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "ca_file"), "ca_file", 1),
        .ca_path = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "ca_path"), "ca_path", 1),
        .product = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "product"), "product", 1),
        .sse = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "sse"), "sse", 1),
        .sse_kms_key_id = hc_rb_s3_cstr(hc_rb_s3_opt(opts, "sse_kms_key_id"), "sse_kms_key_id", 1),
    };
    hc_s3_error err;
    s->client = hc_s3_client_new(&cfg, &err); /* copies every string */
    RB_GC_GUARD(opts);
    if (!s->client) {
        if (err.kind == HC_S3_ENOMEM) rb_memerror();
        hc_rb_raise(hc_eConfigurationError, "%s", err.message);
    }
    return self;
}

/* ---- running an operation without the GVL */

enum { HC_OP_UPLOAD, HC_OP_UPLOAD_GROWING, HC_OP_DOWNLOAD, HC_OP_LIST, HC_OP_DELETE };

typedef struct {
    int op;
    hc_s3_client *client;
    char *a, *b, *c;           /* C copies of the arguments (xfree'd under the GVL) */
    hc_s3_status status;
    hc_s3_error err;
    hc_s3_upload_result upload;
    long long bytes;
    hc_s3_object *objects;
    size_t count;
    /* HC_OP_UPLOAD_GROWING: a Dump::Child's tempfile (kept alive by the caller's stack) */
    const hc_growing_file *grow;
    const char *grow_path;
    int grow_fd;
    long long size_hint;
} hc_rb_s3_call;

static void *hc_rb_s3_run(void *p)
{
    hc_rb_s3_call *call = p;
    switch (call->op) {
    case HC_OP_UPLOAD:
        call->status = hc_s3_upload(call->client, call->a, call->b, call->c, &call->upload, &call->err);
        break;
    case HC_OP_UPLOAD_GROWING:
        call->status = hc_s3_upload_growing(call->client, call->grow_fd, call->grow_path, call->grow, call->size_hint,
                                            call->b, call->c, &call->upload, &call->err);
        break;
    case HC_OP_DOWNLOAD:
        call->status = hc_s3_download(call->client, call->a, call->b, &call->bytes, &call->err);
        break;
    case HC_OP_LIST:
        call->status = hc_s3_list(call->client, call->a, &call->objects, &call->count, &call->err);
        break;
    case HC_OP_DELETE:
        call->status = hc_s3_delete(call->client, call->a, &call->err);
        break;
    }
    return NULL;
}

static char *hc_rb_s3_copy(VALUE str, const char *what, int nil_ok)
{
    const char *s = hc_rb_s3_cstr(str, what, nil_ok);
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *copy = xmalloc(n);
    memcpy(copy, s, n);
    return copy;
}

static VALUE hc_rb_s3_release(VALUE self)
{
    hc_rb_s3 *s = rb_check_typeddata(self, &hc_rb_s3_type);
    s->busy = 0;
    return Qnil;
}

typedef struct {
    VALUE self;
    hc_rb_s3_call *call;
} hc_rb_s3_body;

static VALUE hc_rb_s3_log_warn(RB_BLOCK_CALL_FUNC_ARGLIST(yielded, msg))
{
    (void)yielded;
    VALUE log = rb_const_get(hc_mHeapCapture, rb_intern("Log"));
    return rb_funcall(log, rb_intern("warn"), 1, msg);
}

/* {Object => :never}, built once at load: building it later would call Object.hash, and any method
 * call may deliver the pending interrupt. */
static VALUE hc_rb_s3_mask_all;

static VALUE hc_rb_s3_log_warn_masked(VALUE msg)
{
    return rb_block_call(rb_cThread, rb_intern("handle_interrupt"), 1, &hc_rb_s3_mask_all, hc_rb_s3_log_warn, msg);
}

/* The interrupt under way (Thread#kill, #raise, exit: the caller is unwinding) carries no S3
 * message, so an interrupted upload that may have left a multipart upload open says so in the log.
 * Another interrupt is held back (Thread.handle_interrupt(Object => :never)) while the line is
 * written, then goes on. */
static void hc_rb_s3_warn_left_open(const hc_s3_error *err)
{
    if (!err->upload_left_open || !rb_const_defined(hc_mHeapCapture, rb_intern("Log"))) return;
    int state = 0;
    rb_protect(hc_rb_s3_log_warn_masked, rb_str_new_cstr(err->message), &state);
    if (state) rb_jump_tag(state); /* the interrupt itself (or a failure it caused) */
}

/* The operation's own thread, and how its caller waits for it (see the top of this file). */
typedef struct {
    hc_rb_s3_call *call;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;     /* the operation has returned */
    int woken;    /* an interrupt came for the caller */
    int finished; /* the caller waited to the end: it is not unwinding */
} hc_rb_s3_runner;

static void *hc_rb_s3_runner_main(void *p)
{
    hc_rb_s3_runner *r = p;
    hc_rb_s3_run(r->call);
    pthread_mutex_lock(&r->lock);
    r->done = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static int hc_rb_s3_runner_done(hc_rb_s3_runner *r)
{
    pthread_mutex_lock(&r->lock);
    int done = r->done;
    pthread_mutex_unlock(&r->lock);
    return done;
}

/* Without the GVL: until the operation returns or an interrupt comes. */
static void *hc_rb_s3_runner_wait(void *p)
{
    hc_rb_s3_runner *r = p;
    pthread_mutex_lock(&r->lock);
    while (!r->done && !r->woken) pthread_cond_wait(&r->cond, &r->lock);
    r->woken = 0;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* The unblocking function: wakes the caller, which runs the interrupt. Ruby calls it from another
 * thread, never from a signal handler (no RB_NOGVL_UBF_ASYNC_SAFE): it may take the lock. */
static void hc_rb_s3_runner_wake(void *p)
{
    hc_rb_s3_runner *r = p;
    pthread_mutex_lock(&r->lock);
    r->woken = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* One wait, then the interrupt that woke it, if any, runs: a signal handler returns here, anything
 * else unwinds (into hc_rb_s3_runner_stop, or out of its rb_protect). */
static VALUE hc_rb_s3_runner_wait_once(VALUE arg)
{
    rb_nogvl(hc_rb_s3_runner_wait, (void *)arg, hc_rb_s3_runner_wake, (void *)arg, 0);
    rb_thread_check_ints();
    return Qnil;
}

/* Waits for the operation to return. */
static VALUE hc_rb_s3_runner_await(VALUE arg)
{
    hc_rb_s3_runner *r = (hc_rb_s3_runner *)arg;
    while (!hc_rb_s3_runner_done(r)) hc_rb_s3_runner_wait_once(arg);
    r->finished = 1;
    return Qnil;
}

/* Always (rb_ensure): stops an operation the caller no longer waits for and joins its thread,
 * which uses r and the call, on this stack. So nothing may leave before the join: an interrupt
 * that raises meanwhile (on Ruby 3.1 even rb_nogvl's join of its helper thread can) is caught,
 * cuts the abort's waiting short, and is raised again after the join and the log line. */
static VALUE hc_rb_s3_runner_stop(VALUE arg)
{
    hc_rb_s3_runner *r = (hc_rb_s3_runner *)arg;
    if (!hc_rb_s3_runner_done(r)) hc_s3_client_abort(r->call->client);
    /* Bounded: s3.c gives the abort 5 s, and a second interrupt that raises (a second Ctrl-C,
     * Thread#raise) ends it at once. A signal handler runs and the wait goes on. */
    int raised = 0;
    VALUE exc = Qnil;
    while (!hc_rb_s3_runner_done(r)) {
        int state = 0;
        rb_protect(hc_rb_s3_runner_wait_once, arg, &state);
        if (!state) continue;
        hc_s3_client_abort(r->call->client);
        if (!raised) {
            raised = state;
            exc = rb_errinfo();
        }
    }
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    hc_s3_client_reset_abort(r->call->client);
    /* The interrupt under way carries no S3 message, and wins over any error the operation met. */
    if (!r->finished) hc_rb_s3_warn_left_open(&r->call->err);
    if (raised) {
        if (RTEST(rb_obj_is_kind_of(exc, rb_eException))) rb_exc_raise(exc);
        rb_jump_tag(raised); /* Thread#kill's or exit's: errinfo is still theirs */
    }
    RB_GC_GUARD(exc);
    return Qnil;
}

/* Starts the runner with the asynchronous signals blocked: they go to Ruby's threads, not to it
 * (a fault in it still reaches Ruby's handler). 0 or pthread_create's error. */
static int hc_rb_s3_runner_start(hc_rb_s3_runner *r)
{
    sigset_t all, was;
    sigfillset(&all);
    const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_SETMASK, &all, &was);
    int rc = pthread_create(&r->thread, NULL, hc_rb_s3_runner_main, r);
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    return rc;
}

static VALUE hc_rb_s3_perform_body(VALUE arg)
{
    hc_rb_s3_body *body = (hc_rb_s3_body *)arg;
    hc_rb_s3_call *call = body->call;
    rb_thread_check_ints(); /* an interrupt already pending goes first: nothing has started */
    hc_s3_client_reset_abort(call->client);
    hc_rb_s3_runner r;
    memset(&r, 0, sizeof r);
    r.call = call;
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    int rc = hc_rb_s3_runner_start(&r);
    if (rc != 0) {
        pthread_cond_destroy(&r.cond);
        pthread_mutex_destroy(&r.lock);
        hc_rb_raise(hc_eError, "cannot start the S3 operation: creating its thread failed: %s (the process may be "
                               "at its limit of threads)", strerror(rc));
    }
    rb_ensure(hc_rb_s3_runner_await, (VALUE)&r, hc_rb_s3_runner_stop, (VALUE)&r);
    return Qnil;
}

/* Runs call without the GVL; the client is marked busy meanwhile (one operation per client at a
 * time). Raises what s3.c reported; the caller frees its copies with hc_rb_s3_call_free. */
static void hc_rb_s3_perform(VALUE self, hc_rb_s3_call *call)
{
    hc_rb_s3 *s = hc_rb_s3_get(self);
    if (s->busy)
        hc_rb_raise(hc_eError, "this S3 client is busy with another operation (used from two threads?); "
                            "give each thread its own client");
    s->busy = 1;
    call->client = s->client;
    hc_rb_s3_body body = {self, call};
    rb_ensure(hc_rb_s3_perform_body, (VALUE)&body, hc_rb_s3_release, self);
}

static void hc_rb_s3_call_free(hc_rb_s3_call *call)
{
    xfree(call->a);
    xfree(call->b);
    xfree(call->c);
    hc_s3_objects_free(call->objects, call->count);
    call->a = call->b = call->c = NULL;
    call->objects = NULL;
    call->count = 0;
}

static VALUE hc_rb_s3_call_run(VALUE arg)
{
    hc_rb_s3_body *body = (hc_rb_s3_body *)arg;
    hc_rb_s3_perform(body->self, body->call);
    return Qnil;
}

static VALUE hc_rb_s3_call_cleanup(VALUE arg)
{
    hc_rb_s3_call_free((hc_rb_s3_call *)arg);
    return Qnil;
}

/* Runs call and frees its copies whatever happens, then raises its failure, if any, as klass. */
static void hc_rb_s3_execute(VALUE self, hc_rb_s3_call *call, VALUE klass)
{
    hc_rb_s3_body body = {self, call};
    call->status = HC_S3_OK;
    rb_ensure(hc_rb_s3_call_run, (VALUE)&body, hc_rb_s3_call_cleanup, (VALUE)call);
    if (call->status != HC_S3_OK) hc_rb_s3_raise(&call->err, klass);
}

/* An upload's [etag, bytes, parts]. */
static VALUE hc_rb_s3_upload_answer(const hc_rb_s3_call *call)
{
    return rb_ary_new_from_args(3, rb_str_new_cstr(call->upload.etag), LL2NUM(call->upload.bytes),
                                INT2NUM(call->upload.parts));
}

/* _upload(path, key, content_type) => [etag, bytes, parts] */
static VALUE hc_rb_s3_upload(VALUE self, VALUE path, VALUE key, VALUE content_type)
{
    hc_rb_s3_call call;
    memset(&call, 0, sizeof call);
    call.op = HC_OP_UPLOAD;
    hc_rb_s3_cstr(path, "path", 0); /* type checks first: nothing is copied when one raises */
    hc_rb_s3_cstr(key, "key", 0);
    hc_rb_s3_cstr(content_type, "content_type", 1);
    call.a = hc_rb_s3_copy(path, "path", 0);
    call.b = hc_rb_s3_copy(key, "key", 0);
    call.c = hc_rb_s3_copy(content_type, "content_type", 1);
    hc_rb_s3_execute(self, &call, hc_eUploadError);
    return hc_rb_s3_upload_answer(&call);
}

/* _upload_growing(dump_child, key, content_type, size_hint) => [etag, bytes, parts]: the child's
 * tempfile, uploaded while the child still writes it. */
static VALUE hc_rb_s3_upload_growing(VALUE self, VALUE child, VALUE key, VALUE content_type, VALUE size_hint)
{
    hc_rb_s3_call call;
    memset(&call, 0, sizeof call);
    call.op = HC_OP_UPLOAD_GROWING;
    hc_rb_s3_cstr(key, "key", 0);
    hc_rb_s3_cstr(content_type, "content_type", 1);
    call.size_hint = NUM2LL(size_hint);
    hc_rb_dump_child_source(child, &call.grow, &call.grow_path, &call.grow_fd);
    call.b = hc_rb_s3_copy(key, "key", 0);
    call.c = hc_rb_s3_copy(content_type, "content_type", 1);
    hc_rb_s3_execute(self, &call, hc_eUploadError);
    RB_GC_GUARD(child);
    return hc_rb_s3_upload_answer(&call);
}

/* _download(key, to) => bytes written */
static VALUE hc_rb_s3_download(VALUE self, VALUE key, VALUE to)
{
    hc_rb_s3_call call;
    memset(&call, 0, sizeof call);
    call.op = HC_OP_DOWNLOAD;
    hc_rb_s3_cstr(key, "key", 0);
    hc_rb_s3_cstr(to, "to", 0);
    call.a = hc_rb_s3_copy(key, "key", 0);
    call.b = hc_rb_s3_copy(to, "to", 0);
    hc_rb_s3_execute(self, &call, hc_eS3Error);
    return LL2NUM(call.bytes);
}

/* _list(prefix) => [[key, size, last_modified], ...] */
static VALUE hc_rb_s3_list(VALUE self, VALUE prefix)
{
    hc_rb_s3_call call;
    memset(&call, 0, sizeof call);
    call.op = HC_OP_LIST;
    call.a = hc_rb_s3_copy(prefix, "prefix", 0);
    hc_rb_s3_body body = {self, &call};
    /* The objects outlive the run: build the Array before freeing them (under rb_ensure). */
    int state = 0;
    rb_protect(hc_rb_s3_call_run, (VALUE)&body, &state);
    VALUE list = Qnil;
    hc_s3_error err = call.err;
    if (!state && call.status == HC_S3_OK) {
        list = rb_ary_new_capa((long)call.count);
        for (size_t i = 0; i < call.count; i++) {
            const hc_s3_object *o = &call.objects[i];
            rb_ary_push(list, rb_ary_new_from_args(3, rb_utf8_str_new_cstr(o->key), LL2NUM(o->size),
                                                   o->last_modified ? rb_str_new_cstr(o->last_modified) : Qnil));
        }
    }
    hc_rb_s3_call_free(&call); /* nothing above raises but rb_ary_* on memory exhaustion */
    if (state) rb_jump_tag(state);
    if (call.status != HC_S3_OK) hc_rb_s3_raise(&err, hc_eS3Error);
    return list;
}

/* _delete(key) => nil */
static VALUE hc_rb_s3_delete(VALUE self, VALUE key)
{
    hc_rb_s3_call call;
    memset(&call, 0, sizeof call);
    call.op = HC_OP_DELETE;
    call.a = hc_rb_s3_copy(key, "key", 0);
    hc_rb_s3_execute(self, &call, hc_eS3Error);
    return Qnil;
}

/* _presigned_url(key, expires_in, now_epoch) => String. No network: the GVL stays held. */
static VALUE hc_rb_s3_presigned_url(VALUE self, VALUE key, VALUE expires_in, VALUE now)
{
    hc_rb_s3 *s = hc_rb_s3_get(self);
    hc_s3_error err;
    char *url = hc_s3_presigned_url(s->client, hc_rb_s3_cstr(key, "key", 0), NUM2LONG(expires_in),
                                    NUM2LL(now), &err);
    RB_GC_GUARD(key);
    if (!url) hc_rb_s3_raise(&err, hc_eS3Error);
    VALUE str = rb_str_new_cstr(url);
    free(url);
    return str;
}

/* base_url => "http://127.0.0.1:9000/bucket": where requests go, for messages and checks. */
static VALUE hc_rb_s3_base_url(VALUE self)
{
    return rb_str_new_cstr(hc_s3_client_base_url(hc_rb_s3_get(self)->client));
}

void hc_init_s3(void)
{
    /* curl_global_init is not thread-safe: do it once here, while the extension loads. */
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) hc_rb_raise(hc_eError, "libcurl failed to initialise: %s", curl_easy_strerror(rc));

    VALUE mS3 = rb_define_module_under(hc_mHeapCapture, "S3");
    /* The limits s3.h states; Ruby checks the settings with these. */
    rb_define_const(mS3, "MIN_PART_SIZE", LONG2NUM(HC_S3_MIN_PART_SIZE));
    rb_define_const(mS3, "MAX_PART_SIZE", LONG2NUM(HC_S3_MAX_PART_SIZE));
    rb_define_const(mS3, "MAX_CONCURRENCY", INT2FIX(HC_S3_MAX_CONCURRENCY));
    rb_define_const(mS3, "MAX_ATTEMPTS", INT2FIX(HC_S3_MAX_ATTEMPTS));
    hc_cS3Client = rb_define_class_under(mS3, "Client", rb_cObject);
    rb_define_alloc_func(hc_cS3Client, hc_rb_s3_alloc);
    hc_rb_s3_mask_all = rb_hash_new();
    rb_hash_aset(hc_rb_s3_mask_all, rb_cObject, ID2SYM(rb_intern("never")));
    rb_obj_freeze(hc_rb_s3_mask_all);
    rb_gc_register_mark_object(hc_rb_s3_mask_all);
    rb_define_private_method(hc_cS3Client, "_setup", hc_rb_s3_setup, 1);
    rb_define_private_method(hc_cS3Client, "_upload", hc_rb_s3_upload, 3);
    rb_define_private_method(hc_cS3Client, "_upload_growing", hc_rb_s3_upload_growing, 4);
    rb_define_private_method(hc_cS3Client, "_download", hc_rb_s3_download, 2);
    rb_define_private_method(hc_cS3Client, "_list", hc_rb_s3_list, 1);
    rb_define_private_method(hc_cS3Client, "_delete", hc_rb_s3_delete, 1);
    rb_define_private_method(hc_cS3Client, "_presigned_url", hc_rb_s3_presigned_url, 3);
    rb_define_method(hc_cS3Client, "base_url", hc_rb_s3_base_url, 0);
}
