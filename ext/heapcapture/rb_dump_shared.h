/* What the dump binding's files share (rb_dump_shared.c). Bindings only. */
#ifndef HC_RB_DUMP_SHARED_H
#define HC_RB_DUMP_SHARED_H

#include <ruby.h>
#include <ruby/version.h>
#include <stdint.h>

#include "dump_redact.h"

/* ObjectSpace.dump_all(output: output), output an IO. */
VALUE hc_dump_all(VALUE output);
/* The pipe dump_all writes into and the pump (dump_stream.h) reads: pipe2(O_CLOEXEC), enlarged to
 * HC_DUMP_PIPE_SIZE where the kernel allows. 0, or -1 with errno. */
#define HC_DUMP_PIPE_SIZE (1024 * 1024)
int hc_dump_pipe(int fds[2]);
/* IO.new(fd, "wb") over the pipe's write end (fdv: an Integer), not sync: it writes when its
 * buffer is full. For rb_protect. */
VALUE hc_dump_pipe_io(VALUE fdv);
/* How this Ruby's dump_all writes into an IO. Ruby 3.1-3.3: through the IO's own buffer, and each
 * write(2) hands the GVL to other threads. Ruby 3.4 and later (ruby/ruby#12285): through a stdio
 * FILE of the IO's descriptor, GVL held, so no other thread of the app runs until the dump ends. */
#if RUBY_API_VERSION_MAJOR > 3 || (RUBY_API_VERSION_MAJOR == 3 && RUBY_API_VERSION_MINOR >= 4)
#define HC_DUMP_ALL_WRITES_STDIO 1
#else
#define HC_DUMP_ALL_WRITES_STDIO 0
#endif
/* How much dump_all should write into the pipe (fd, its write end) at a time, through its IO's
 * buffer or its FILE's: half of what the pipe holds (16 KiB at least), so that a write fits beside
 * what the pump has yet to take of the one before. A write of the whole pipe fits only into an
 * empty pipe: it waited for the pump once per write, a fifth of the child's dump time
 * (doc/capture.md). */
long hc_dump_pipe_write_bytes(int fd);
/* Gives that IO a write buffer of bytes (before its first write) where dump_all writes through the
 * IO: each write(2) hands the GVL to other threads, so fewer of them bound what a CPU-bound thread
 * can take from an inline dump. 1 when it did, 0 when it did not (it keeps Ruby's 8 KiB; where
 * dump_all writes through stdio, the IO's buffer is never used). */
int hc_dump_pipe_io_buffer(VALUE io, long bytes);
/* Where dump_all writes through stdio: gives the IO's FILE a buffer of bytes (hc_dump_pipe_write_bytes;
 * glibc's own is the pipe's st_blksize, 4 KiB: 24,000 writes per 100 MB), before its first write,
 * and returns it, to be free()d once the IO is closed (closing it fcloses the FILE). NULL where
 * dump_all does not write through stdio, or when that failed (glibc's stays). */
char *hc_dump_pipe_io_stdio_buffer(VALUE io, long bytes);
/* The 0600 tempfile in tmpdir (".ndjson.gz" or ".ndjson", ".age" after it when encrypted), or
 * DumpError saying why not. */
int hc_create_tempfile(VALUE tmpdir, int gzip, int encrypted, char *path, size_t pathlen);
/* {"path", "raw_bytes", "bytes", "pause_ns", "dump_ns", "summary_json", "summary_error"}: what
 * Child#wait and Dump.inline_dump give (summary_json: the summary made as the dump streamed, or nil
 * with summary_error saying why, or both nil when none was asked for). */
typedef struct {
    const char *json;       /* or NULL */
    size_t len;
    const char *error;      /* or NULL / "" */
} hc_summary_out;
VALUE hc_dump_result(const char *path, uint64_t raw, uint64_t stored, uint64_t pause_ns, uint64_t dump_ns,
                     const hc_summary_out *summary);
void hc_close_fd(int *fd);

/* A fresh per-capture key in r when redact is true (else nothing): DumpError when this build
 * cannot redact. */
void hc_rb_redactor_init(hc_redactor *r, VALUE redact);

#endif
