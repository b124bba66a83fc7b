/* One gzip member (RFC 1952) written as a stream: raw bytes in, compressed bytes handed to an
 * emit callback as they come. Two engines, the same format out:
 *   - ISA-L's igzip at level 1, when the build found libisal (Debian: libisal-dev): a fraction of
 *     zlib's CPU, and fewer bytes (doc/figures.md).
 *   - zlib's raw deflate at level 1, with the header, CRC-32 (hc_crc32) and trailer written here.
 * Either way the output is one member that gzip(1), zlib's gzread and Ruby's GzipReader read.
 * Pure C: no Ruby. Nothing here takes locks, so the dump child may use it after fork(). */
#ifndef HC_DUMP_GZIP_H
#define HC_DUMP_GZIP_H

#include <stddef.h>
#include <stdint.h>

typedef enum { HC_GZIP_ZLIB = 1, HC_GZIP_ISAL = 2 } hc_gzip_engine;

/* Receives compressed bytes in order; returns 0, or -1 with err set (the stream then stops). */
typedef int (*hc_gzip_emit_fn)(void *arg, const unsigned char *buf, size_t len, char *err, size_t errlen);

typedef struct hc_gzip_state hc_gzip_state;

typedef struct {
    hc_gzip_engine engine;
    hc_gzip_emit_fn emit;
    void *arg;
    const char *what;       /* names the stream in error messages: "the heap dump for /tmp/x" */
    hc_gzip_state *state;   /* the engine's, allocated by hc_gzip_open */
    uint64_t raw_bytes;     /* bytes given to hc_gzip_write */
} hc_gzip;

/* The engine heapcapture uses: ISA-L when built with it, else zlib. */
hc_gzip_engine hc_gzip_default_engine(void);
/* 1 when this build has the engine (zlib always; ISA-L when libisal was found). */
int hc_gzip_engine_available(hc_gzip_engine engine);
/* "isa-l" or "zlib". */
const char *hc_gzip_engine_name(hc_gzip_engine engine);

/* Errors the engine reports read "compressing <what>: ..."; emit's own errors pass unchanged. */
int hc_gzip_open(hc_gzip *gz, hc_gzip_engine engine, const char *what, hc_gzip_emit_fn emit, void *arg,
                 char *err, size_t errlen);
int hc_gzip_write(hc_gzip *gz, const void *buf, size_t len, char *err, size_t errlen);
/* Ends the member: the rest of the deflate stream and the trailer go to emit. */
int hc_gzip_finish(hc_gzip *gz, char *err, size_t errlen);
/* Safe on an hc_gzip that failed to open or was already freed. */
void hc_gzip_free(hc_gzip *gz);

#endif
