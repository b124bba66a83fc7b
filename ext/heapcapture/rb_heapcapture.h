/* Shared by the Ruby bindings (rb_*.c) only; the pure C modules never include it. What it declares
 * is defined in rb_util.c, but the inits, each in its binding. */
#ifndef HC_RB_HEAPCAPTURE_H
#define HC_RB_HEAPCAPTURE_H

#include <ruby.h>

extern VALUE hc_mHeapCapture;
extern VALUE hc_eError;
extern VALUE hc_eConfigurationError;
extern VALUE hc_eConnectionError;
extern VALUE hc_eDumpError;
extern VALUE hc_eS3Error; /* what S3 refused (list, download, delete, presign) */
extern VALUE hc_eUploadError; /* < S3Error: an upload that failed */

/* rb_util.c. Every raise from C goes through these: they add the "heapcapture: " prefix once
 * (HeapCapture::Error adds it itself too, and does not add it twice). */
NORETURN(void hc_rb_raise(VALUE klass, const char *fmt, ...) __attribute__((format(printf, 2, 3))));
/* SystemCallError for errno, its message "<strerror> - heapcapture: <doing>". */
NORETURN(void hc_rb_sys_fail(const char *doing));
/* "Class: message" for an exception, for logs and results. */
VALUE hc_rb_describe_exception(VALUE exc);
/* v as a C string: a String without NUL bytes (ArgumentError when it has one), NULL for nil when
 * nil_ok, else type_error "heapcapture: <part>: <arg> must be a String". No Ruby code runs (no
 * to_str), so pointers taken earlier stay valid. */
const char *hc_rb_cstr(VALUE v, const char *part, const char *arg, VALUE type_error, int nil_ok);

#ifdef HAVE_RB_OBJSPACE_EACH_OBJECTS
/* Ruby's walk of its heap pages (gc.c: exported, in no public header); callback(start, end,
 * stride, data) for each page's slots, stopping when it returns nonzero. */
void rb_objspace_each_objects(int (*callback)(void *start, void *end, size_t stride, void *data), void *data);
#endif

/* HeapCapture::Dump, defined by the first init to ask (rb_util.c). */
VALUE hc_rb_dump_module(void);

/* Each binding's init, called from Init_heapcapture, hc_init_util first. */
void hc_init_util(void);        /* the module and its error classes (rb_util.c) */
void hc_init_sigv4(void);
void hc_init_listener(void);
void hc_init_s3(void);
void hc_init_dump(void);         /* Dump.fork_start, Dump::Child (rb_dump.c) */
void hc_init_dump_shared(void);  /* Dump::PipeIO (rb_dump_shared.c) */
void hc_init_dump_inline(void);  /* Dump.inline_dump (rb_dump_inline.c) */
void hc_init_dump_prepare(void); /* Dump.prepare_heap (rb_dump_prepare.c) */
void hc_init_mem_watch(void);    /* Dump::MemoryWatch, the capture's extra memory (rb_mem_watch.c) */
void hc_init_heap(void);  /* Dump.summarize and Dump.diff, stored dumps read back (rb_heap.c) */
void hc_init_tracer(void);
void hc_init_signal_auth(void); /* SignalAuth and Seal */
void hc_init_age(void);         /* Age (rb_age.c) */
void hc_init_proc_spawn(void);  /* Dump.spawn_process (rb_proc_spawn.c) */


#endif
