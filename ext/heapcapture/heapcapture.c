/* heapcapture's native extension: start here.
 *
 * Init_heapcapture calls each part's init: the module and its error classes first (rb_util.c). It
 * is the only file that calls every binding, and no binding calls it.
 * The work is in pure C modules that know nothing of Ruby, a file-name prefix a subsystem (dump_*.c
 * making a dump, heap_*.c reading one, s3*.c, sigv4.c, listener.c, signal_*.c, age.c, tracer.c,
 * mem_*.c, proc_*.c, util*.c; doc/architecture.md);
 * the rb_*.c files bind them to Ruby: argument checks, GVL release, mapping errors to classes
 * (what they share is in rb_util.c; the dump binding's files share rb_dump_shared.c). */
#include "rb_heapcapture.h"

RUBY_FUNC_EXPORTED void Init_heapcapture(void)
{
    hc_init_util();
    hc_init_sigv4();
    hc_init_listener();
    hc_init_s3();
    hc_init_dump();
    hc_init_dump_shared();
    hc_init_dump_inline();
    hc_init_dump_prepare();
    hc_init_mem_watch();
    hc_init_heap();
    hc_init_tracer();
    hc_init_signal_auth();
    hc_init_age();
    hc_init_proc_spawn();
}
