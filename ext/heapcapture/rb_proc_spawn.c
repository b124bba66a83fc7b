/* HeapCapture::Dump.spawn_process: proc_spawn.c for Ruby, started without the GVL (the app's
 * threads run while the new process starts). The capture's analysis process starts through it
 * (lib/heapcapture/capture/retention_process.rb). */
#include "rb_heapcapture.h"
#include "proc_spawn.h"

#ifdef HC_HAVE_PROC_SPAWN
#include <ruby/thread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hc_proc_spawn_spec spec;
    pid_t pid;
    int rc;
    char err[512];
} hc_rb_spawn_call;

/* A NULL-terminated malloc'd copy of an Array of Strings, into *out as it is made (the caller
 * frees it, even half made): the GC may move a string's bytes while the GVL is let go. */
static void hc_rb_spawn_strings(VALUE ary, const char *element, char ***out)
{
    Check_Type(ary, T_ARRAY);
    long n = RARRAY_LEN(ary);
    for (long i = 0; i < n; i++) hc_rb_cstr(RARRAY_AREF(ary, i), "spawn_process", element, rb_eTypeError, 0);
    char **copy = *out = calloc((size_t)n + 1, sizeof *copy);
    if (!copy) rb_memerror();
    for (long i = 0; i < n; i++)
        if (!(copy[i] = strdup(RSTRING_PTR(RARRAY_AREF(ary, i))))) rb_memerror();
}

static void hc_rb_spawn_free(char **strings)
{
    if (!strings) return;
    for (char **s = strings; *s; s++) free(*s);
    free(strings);
}

static void *hc_rb_spawn_nogvl(void *arg)
{
    hc_rb_spawn_call *call = arg;
    call->rc = hc_proc_spawn(&call->spec, &call->pid, call->err, sizeof call->err);
    return NULL;
}

typedef struct {
    VALUE program, argv, env, out_fd, err_fd;
    char *program_copy;
    char **argv_copy, **env_copy;
} hc_rb_spawn_args;

static VALUE hc_rb_spawn_run(VALUE p)
{
    hc_rb_spawn_args *a = (hc_rb_spawn_args *)p;
    const char *program = hc_rb_cstr(a->program, "spawn_process", "program", rb_eTypeError, 0);
    Check_Type(a->argv, T_ARRAY);
    if (RARRAY_LEN(a->argv) < 1) hc_rb_raise(rb_eArgError, "spawn_process: argv needs at least its argv[0]");
    if (!(a->program_copy = strdup(program))) rb_memerror();
    hc_rb_spawn_strings(a->argv, "an element of argv", &a->argv_copy);
    hc_rb_spawn_strings(a->env, "an element of env", &a->env_copy);
    hc_rb_spawn_call call = {.spec = {a->program_copy, a->argv_copy, a->env_copy, NUM2INT(a->out_fd), NUM2INT(a->err_fd)}};
    rb_thread_call_without_gvl(hc_rb_spawn_nogvl, &call, NULL, NULL);
    /* Without the "heapcapture: " of hc_rb_sys_fail: its one caller says what it was starting. */
    if (call.rc) rb_syserr_fail_str(call.rc, rb_str_new_cstr(call.err));
    return PIDT2NUM(call.pid);
}

static VALUE hc_rb_spawn_cleanup(VALUE p)
{
    hc_rb_spawn_args *a = (hc_rb_spawn_args *)p;
    free(a->program_copy);
    hc_rb_spawn_free(a->argv_copy);
    hc_rb_spawn_free(a->env_copy);
    return Qnil;
}

/* Dump.spawn_process(program, argv, env, out_fd, err_fd) -> pid: program (a path) with argv (its
 * argv[0] first) and exactly env ("NAME=value" Strings), stdin /dev/null, stdout and stderr the
 * descriptors given, nothing else open. SystemCallError when it cannot be started ("No such file
 * or directory - starting /x"). The caller waits for it (Process.wait, Process.detach). */
static VALUE hc_rb_spawn_process(VALUE self, VALUE program, VALUE argv, VALUE env, VALUE out_fd, VALUE err_fd)
{
    hc_rb_spawn_args a = {program, argv, env, out_fd, err_fd, NULL, NULL, NULL};
    return rb_ensure(hc_rb_spawn_run, (VALUE)&a, hc_rb_spawn_cleanup, (VALUE)&a);
}
#endif

void hc_init_proc_spawn(void)
{
#ifdef HC_HAVE_PROC_SPAWN
    rb_define_singleton_method(hc_rb_dump_module(), "spawn_process", hc_rb_spawn_process, 5);
#endif
}
