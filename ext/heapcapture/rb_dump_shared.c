/* What the dump binding's files share (rb_dump.c, the app's side of fork mode; rb_dump_in_child.c,
 * the child's; rb_dump_inline.c, inline mode): ObjectSpace.dump_all into a pipe through an IO of
 * our own class and its buffers, the tempfile, the result Hash, the redaction key. It calls none of
 * them. */
#include "rb_heapcapture.h"
#include "rb_dump_shared.h"
#include "dump_tempfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ruby/io.h>

static ID hc_id_dump_all;
static VALUE hc_sym_output;

VALUE hc_dump_all(VALUE output)
{
    VALUE opts = rb_hash_new();
    rb_hash_aset(opts, hc_sym_output, output);
    VALUE objectspace = rb_const_get(rb_cObject, rb_intern("ObjectSpace"));
    return rb_funcallv_kw(objectspace, hc_id_dump_all, 1, &opts, RB_PASS_KEYWORDS);
}

int hc_dump_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
#ifdef F_SETPIPE_SZ
    fcntl(fds[1], F_SETPIPE_SZ, HC_DUMP_PIPE_SIZE); /* fewer wake-ups; the default size works too */
#endif
    return 0;
}

long hc_dump_pipe_write_bytes(int fd)
{
    long held = 64 * 1024; /* a pipe's default */
#ifdef F_GETPIPE_SZ
    int size = fcntl(fd, F_GETPIPE_SZ);
    if (size > 0) held = size;
#else
    (void)fd;
#endif
    /* Not below 16 KiB (Ruby's own buffer is 8): a pipe the kernel kept at two pages (a user over
     * pipe-user-pages-soft) fills whatever the writes, and smaller ones would only be more. */
    return held / 2 < 16 * 1024 ? 16 * 1024 : held / 2;
}

/* HeapCapture::Dump::PipeIO, an IO of our own class: the inline dump's IO is in the heap it dumps,
 * with its buffer, and the retention analysis counts HeapCapture:: objects as the capture's own,
 * not as the app's (an IO of Ruby's class was the top "leak suspect" of every inline capture). */
static VALUE hc_cPipeIO;

VALUE hc_dump_pipe_io(VALUE fdv)
{
    VALUE argv[2] = {fdv, rb_str_new_cstr("wb")}; /* not sync: it writes when its buffer is full */
    VALUE io = rb_class_new_instance(2, argv, hc_cPipeIO);
    /* Ruby 3.4's IO.new makes the descriptor non-blocking, and dump_all into a non-blocking pipe
     * that is full raises IOError "full buffer" (seen on 3.4.11): the pump drains it, so a write
     * may wait for it instead. */
    int fd = NUM2INT(fdv);
    int flags = fcntl(fd, F_GETFL);
    if (flags != -1 && (flags & O_NONBLOCK)) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return io;
}

/* The extension's one use of the IO struct (test/unit/c_api_test.rb allows it here only, between the
 * pragmas): the dump IO's buffers.
 * - Where dump_all writes through the IO (Ruby 3.1-3.3): no API sets an IO's buffer size, and Ruby
 *   3.3 deprecates the struct's fields with no replacement. Where the struct has no wbuf, the IO
 *   keeps Ruby's own buffer.
 * - Where dump_all writes through stdio (3.4 and later): the FILE is reached only through the
 *   struct (rb_io_stdio_file), as dump_all itself reaches it; the IO's buffer would never be used. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
int hc_dump_pipe_io_buffer(VALUE io, long bytes)
{
#if defined(HAVE_RB_IO_T) && defined(HAVE_RB_IO_T_WBUF) && !HC_DUMP_ALL_WRITES_STDIO
    rb_io_t *fptr;
    GetOpenFile(io, fptr);
    if (fptr->wbuf.ptr || bytes <= 0 || bytes > INT_MAX) return 0; /* written to already: Ruby's buffer */
    fptr->wbuf.ptr = ALLOC_N(char, bytes); /* Ruby frees it with the IO (ruby_sized_xfree, capa) */
    fptr->wbuf.capa = (int)bytes;
    fptr->wbuf.off = fptr->wbuf.len = 0;
    return 1;
#else
    (void)io;
    (void)bytes;
    return 0;
#endif
}

char *hc_dump_pipe_io_stdio_buffer(VALUE io, long bytes)
{
#if HC_DUMP_ALL_WRITES_STDIO
    if (bytes <= 0) return NULL;
    rb_io_t *fptr;
    GetOpenFile(io, fptr);
    FILE *file = rb_io_stdio_file(fptr); /* the FILE dump_all will take: made now, not yet written */
    if (!file) return NULL;
    char *buf = malloc((size_t)bytes);
    if (!buf) return NULL;
    if (setvbuf(file, buf, _IOFBF, (size_t)bytes) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
#else
    (void)io;
    (void)bytes;
    return NULL;
#endif
}
#pragma GCC diagnostic pop

void hc_close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

VALUE hc_dump_result(const char *path, uint64_t raw, uint64_t stored, uint64_t pause_ns, uint64_t dump_ns,
                     const hc_summary_out *summary)
{
    VALUE h = rb_hash_new();
    rb_hash_aset(h, rb_str_new_cstr("path"), rb_str_new_cstr(path));
    rb_hash_aset(h, rb_str_new_cstr("raw_bytes"), ULL2NUM(raw));
    rb_hash_aset(h, rb_str_new_cstr("bytes"), ULL2NUM(stored));
    rb_hash_aset(h, rb_str_new_cstr("pause_ns"), ULL2NUM(pause_ns));
    rb_hash_aset(h, rb_str_new_cstr("dump_ns"), ULL2NUM(dump_ns));
    VALUE json = summary && summary->json ? rb_utf8_str_new(summary->json, (long)summary->len) : Qnil;
    VALUE error = summary && summary->error && summary->error[0] ? rb_str_new_cstr(summary->error) : Qnil;
    rb_hash_aset(h, rb_str_new_cstr("summary_json"), json);
    rb_hash_aset(h, rb_str_new_cstr("summary_error"), error);
    return h;
}

int hc_create_tempfile(VALUE tmpdir, int gzip, int encrypted, char *path, size_t pathlen)
{
    char err[512];
    const char *dir = StringValueCStr(tmpdir);
    const char *suffix = gzip ? (encrypted ? ".ndjson.gz.age" : ".ndjson.gz") : (encrypted ? ".ndjson.age" : ".ndjson");
    int fd = hc_dump_tempfile(dir, suffix, path, pathlen, err, sizeof err);
    if (fd < 0) hc_rb_raise(hc_eDumpError, "%s", err);
    return fd;
}

void hc_rb_redactor_init(hc_redactor *r, VALUE redact)
{
    memset(r, 0, sizeof *r);
    if (!RTEST(redact)) return;
    char err[256];
    if (hc_redactor_init(r, err, sizeof err) != 0) hc_rb_raise(hc_eDumpError, "%s", err);
}

void hc_init_dump_shared(void)
{
    hc_id_dump_all = rb_intern("dump_all");
    hc_sym_output = ID2SYM(rb_intern("output"));
    hc_cPipeIO = rb_define_class_under(hc_rb_dump_module(), "PipeIO", rb_cIO);
}
