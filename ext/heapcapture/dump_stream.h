/* The dump's bytes on their way into the tempfile: raw ndjson in, gzip (or plain) out, encrypted
 * to age recipients when asked (the tempfile then never holds a plaintext byte). In fork
 * mode this runs in the dump child (a pump thread reads the pipe dump_all writes into), in inline
 * mode in the app's process (one buffer at a time). Nothing here allocates Ruby objects or takes a
 * lock another thread may hold at fork time, so the child may call all of it. Pure C: no Ruby. */
#ifndef HC_DUMP_STREAM_H
#define HC_DUMP_STREAM_H

#include "util.h"
#include "dump_gzip.h"
#include "dump_annotate.h"
#include "heap_summary_feed.h"
#include "age.h"

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* A dump stored encrypted to age recipients (age.h): the gzip (or plain) output goes
 * through an age writer into the tempfile. Started before the stream, and in fork mode in the app
 * before the fork: the file key's randomness, the X25519 wraps and the header's HKDF and HMAC
 * (OpenSSL, which the child must not touch) run there, and the header waits in memory. The stream
 * writes the header first and then only seals 64 KiB chunks (libsodium's ChaCha20-Poly1305: no lock,
 * no allocation), so the child may do it. Holds the payload key: the app frees its copy once the
 * child has forked. */
typedef struct {
    hc_age_writer writer;
    hc_sbuf header;         /* the age header, until the stream writes it */
    struct hc_dump_sink *sink; /* the sink writing the file, once one has taken this */
} hc_dump_age;

/* Starts the age file for recipients[0, n). 0, or -1 with err set (no libsodium in this build). */
int hc_dump_age_start(hc_dump_age *age, const hc_age_recipient *recipients, size_t n, char *err, size_t errlen);
/* Wipes the key and frees the buffers (safe twice, and on one whose start failed). */
void hc_dump_age_free(hc_dump_age *age);

/* What the stream does besides storing: each may be off (NULL, 0). What it points to must outlive
 * the stream. */
typedef struct {
    const hc_sample_table *samples; /* the sampled tracer's sites to add */
    const hc_redactor *redactor;    /* the key to redact strings with */
    int summarize;                  /* tally the stored lines' summary (heap_summary_feed.h) */
    hc_dump_age *encrypt;           /* store the output encrypted with this started age file */
} hc_dump_stream_opts;

/* Top sites (by memsize, count and references held) and top holders of references the summary
 * made as the dump streams keeps (the summary's own default): it is stored beside the dump, and
 * the result carries what fits of it. */
#define HC_DUMP_SUMMARY_SITES HC_SUMMARY_KEEP

typedef struct hc_dump_sink {
    int fd;                 /* written to, not owned */
    int gzip;               /* 1: one gzip member (dump_gzip.h, its default engine); 0: plain copy */
    const char *path;       /* named in error messages */
    char what[PATH_MAX + 32]; /* "the heap dump for <path>", for the compressor's messages */
    hc_gzip gz;
    uint64_t raw_bytes;     /* ndjson bytes stored (dump_all's, with the sites added) */
    int annotating;         /* lines are edited: sites added, strings redacted (hc_dump_sink_edit) */
    hc_annotator annotator;
    uint64_t stored_bytes;  /* bytes written to fd (with encryption, the age file's) */
    hc_dump_age *age;       /* the output's encryption, or NULL */
    uint64_t finish_ns;     /* wall time hc_dump_sink_finish took (the end of the gzip member) */
    int summarizing;        /* feed holds a running summary */
    hc_summary_feed feed;
    char *summary_json;     /* once finished: the summary (hc_summary_json), or NULL with summary_err */
    size_t summary_len;
    uint64_t summary_cpu_ns;
    char summary_err[256];
} hc_dump_sink;

int hc_dump_sink_open(hc_dump_sink *sink, int fd, const char *path, int gzip, char *err, size_t errlen);
/* From now on, sampled object lines get their sites, strings' values are redacted
 * (dump_annotate.h) and the summary is tallied, as opts say. A summary that cannot start (out of
 * memory) leaves summary_err set and the dump goes on without it. */
void hc_dump_sink_options(hc_dump_sink *sink, const hc_dump_stream_opts *opts);
int hc_dump_sink_write(hc_dump_sink *sink, const void *buf, size_t len, char *err, size_t errlen);
/* Ends the gzip member and the age file (no fsync: the file is read back at once from the page
 * cache), and the summary: summary_json, which the caller may take (and then free). */
int hc_dump_sink_finish(hc_dump_sink *sink, char *err, size_t errlen);
void hc_dump_sink_free(hc_dump_sink *sink);

/* A thread that reads in_fd until EOF into a sink. It closes in_fd when it stops, so a writer on
 * the other end of a pipe gets EPIPE at once when the sink fails (disk full). */
typedef struct {
    int in_fd;
    hc_dump_sink sink;
    pthread_t thread;
    int started;
    int rc;
    uint64_t cpu_ns;        /* CPU time of the pump thread: reading, compressing, writing */
    uint64_t reads;         /* read() calls that returned bytes */
    int napping;            /* the pipe is large enough to nap after short reads (dump_stream.c) */
    char *summary_json;     /* after join: the sink's summary, the caller's to free (NULL: none) */
    size_t summary_len;
    char err[512];
} hc_dump_pump;

/* opts: what the stream does besides storing (NULL: nothing). */
int hc_dump_pump_start(hc_dump_pump *pump, int in_fd, int out_fd, const char *path, int gzip,
                       const hc_dump_stream_opts *opts, char *err, size_t errlen);
/* Waits for the pump; 0 when every byte was stored. Frees the sink, but for its summary_json,
 * which the caller then owns (free it). */
int hc_dump_pump_join(hc_dump_pump *pump, char *err, size_t errlen);

#endif
