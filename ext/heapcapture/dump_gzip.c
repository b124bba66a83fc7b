/* One gzip member as a stream, by ISA-L's igzip or by zlib (see dump_gzip.h). */
#include "dump_gzip.h"
#include "dump_crc32.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef HC_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#define HC_GZIP_LEVEL 1
#define HC_GZIP_IN_CHUNK (256 * 1024)  /* each piece is checksummed while it is still in cache */
#define HC_GZIP_OUT_CAP (256 * 1024)
/* Half of zlib's default hash table: level 1 ran faster for the same bytes out (doc/figures.md),
 * and it leaves more cache to the dump thread on the other core. */
#define HC_GZIP_ZLIB_MEMLEVEL 7

/* gzip's member header (RFC 1952): no name, no mtime, XFL 4 ("fastest"), OS 3 (Unix). Both
 * engines make a raw deflate stream; the header is written here, so it is the same for both. */
static const unsigned char hc_gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3};

struct hc_gzip_state {
    unsigned char out[HC_GZIP_OUT_CAP];
    int header_sent;
    /* zlib: the stream, and the CRC-32 of the input for the trailer */
    z_stream zs;
    int zs_ready;
    uint32_t crc;
#ifdef HC_HAVE_ISAL
    /* ISA-L: the stream (it writes the trailer itself) and its level-1 work area */
    struct isal_zstream iz;
    unsigned char *level_buf;
#endif
};

hc_gzip_engine hc_gzip_default_engine(void)
{
#ifdef HC_HAVE_ISAL
    return HC_GZIP_ISAL;
#else
    return HC_GZIP_ZLIB;
#endif
}

int hc_gzip_engine_available(hc_gzip_engine engine)
{
    return engine == HC_GZIP_ZLIB || engine == hc_gzip_default_engine();
}

const char *hc_gzip_engine_name(hc_gzip_engine engine)
{
    return engine == HC_GZIP_ISAL ? "isa-l" : "zlib";
}

/* Hands len bytes of output on, the header first: it goes out with the first output rather than
 * at open, so a full disk fails on the first write of the stream, whichever engine runs. */
static int hc_gzip_emit(hc_gzip *gz, size_t len, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    if (len == 0) return 0;
    if (!st->header_sent) {
        if (gz->emit(gz->arg, hc_gzip_header, sizeof hc_gzip_header, err, errlen) != 0) return -1;
        st->header_sent = 1;
    }
    return gz->emit(gz->arg, st->out, len, err, errlen);
}

/* ---- zlib -------------------------------------------------------------------------------- */

static int hc_gzip_zlib_open(hc_gzip *gz, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    /* -15: a raw deflate stream; header and trailer are written here. */
    int zrc = deflateInit2(&st->zs, HC_GZIP_LEVEL, Z_DEFLATED, -15, HC_GZIP_ZLIB_MEMLEVEL, Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK) {
        hc_errorf(err, errlen, "compressing %s: zlib could not start (error %d)", gz->what, zrc);
        return -1;
    }
    st->zs_ready = 1;
    return 0;
}

static int hc_gzip_zlib_run(hc_gzip *gz, int flush, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    int zrc;
    do {
        st->zs.next_out = st->out;
        st->zs.avail_out = sizeof st->out;
        zrc = deflate(&st->zs, flush);
        if (zrc == Z_STREAM_ERROR) {
            hc_errorf(err, errlen, "compressing %s: zlib stream error", gz->what);
            return -1;
        }
        if (hc_gzip_emit(gz, sizeof st->out - st->zs.avail_out, err, errlen) != 0) return -1;
    } while (st->zs.avail_out == 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
    return 0;
}

static int hc_gzip_zlib_write(hc_gzip *gz, const unsigned char *p, size_t len, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    st->crc = hc_crc32(st->crc, p, len); /* len <= HC_GZIP_IN_CHUNK: still in cache for deflate */
    st->zs.next_in = (Bytef *)(uintptr_t)p;
    st->zs.avail_in = (uInt)len;
    return hc_gzip_zlib_run(gz, Z_NO_FLUSH, err, errlen);
}

static int hc_gzip_zlib_finish(hc_gzip *gz, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    st->zs.next_in = NULL;
    st->zs.avail_in = 0;
    if (hc_gzip_zlib_run(gz, Z_FINISH, err, errlen) != 0) return -1;
    /* The trailer: CRC-32 and length mod 2^32 of the uncompressed bytes, little-endian. */
    uint32_t words[2] = {st->crc, (uint32_t)gz->raw_bytes};
    for (int i = 0; i < 8; i++) st->out[i] = (unsigned char)(words[i / 4] >> (8 * (i % 4)));
    return hc_gzip_emit(gz, 8, err, errlen);
}

/* ---- ISA-L ------------------------------------------------------------------------------- */

#ifdef HC_HAVE_ISAL
static int hc_gzip_isal_open(hc_gzip *gz, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    isal_deflate_init(&st->iz);
    st->level_buf = malloc(ISAL_DEF_LVL1_DEFAULT);
    if (!st->level_buf) {
        hc_errorf(err, errlen, "compressing %s: out of memory for ISA-L's work area", gz->what);
        return -1;
    }
    st->iz.level = HC_GZIP_LEVEL;
    st->iz.level_buf = st->level_buf;
    st->iz.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
    st->iz.gzip_flag = IGZIP_GZIP_NO_HDR; /* the deflate stream and the trailer; the header is ours */
    st->iz.flush = NO_FLUSH;
    return 0;
}

/* Runs isal_deflate until it has taken all input and (when finishing) written the trailer. */
static int hc_gzip_isal_run(hc_gzip *gz, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    for (;;) {
        st->iz.next_out = st->out;
        st->iz.avail_out = sizeof st->out;
        int rc = isal_deflate(&st->iz);
        if (rc != COMP_OK) {
            hc_errorf(err, errlen, "compressing %s: ISA-L deflate error %d", gz->what, rc);
            return -1;
        }
        size_t have = sizeof st->out - st->iz.avail_out;
        if (hc_gzip_emit(gz, have, err, errlen) != 0) return -1;
        if (st->iz.avail_out == 0 || st->iz.avail_in > 0) continue; /* it stopped for lack of room */
        if (!st->iz.end_of_stream || st->iz.internal_state.state == ZSTATE_END) return 0;
        if (have == 0) { /* finishing, with room and no progress: never loop forever */
            hc_errorf(err, errlen, "compressing %s: ISA-L stopped before the end of the stream", gz->what);
            return -1;
        }
    }
}

static int hc_gzip_isal_write(hc_gzip *gz, const unsigned char *p, size_t len, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    st->iz.next_in = (uint8_t *)(uintptr_t)p;
    st->iz.avail_in = (uint32_t)len;
    return hc_gzip_isal_run(gz, err, errlen);
}

static int hc_gzip_isal_finish(hc_gzip *gz, char *err, size_t errlen)
{
    hc_gzip_state *st = gz->state;
    st->iz.next_in = NULL;
    st->iz.avail_in = 0;
    st->iz.end_of_stream = 1;
    return hc_gzip_isal_run(gz, err, errlen);
}
#endif

/* ---- the stream -------------------------------------------------------------------------- */

int hc_gzip_open(hc_gzip *gz, hc_gzip_engine engine, const char *what, hc_gzip_emit_fn emit, void *arg,
                 char *err, size_t errlen)
{
    memset(gz, 0, sizeof *gz);
    if (!hc_gzip_engine_available(engine)) {
        hc_errorf(err, errlen, "compressing %s: this build has no %s (rebuild heapcapture with it installed)",
                  what, hc_gzip_engine_name(engine));
        return -1;
    }
    gz->engine = engine;
    gz->what = what;
    gz->emit = emit;
    gz->arg = arg;
    gz->state = calloc(1, sizeof *gz->state);
    if (!gz->state) {
        hc_errorf(err, errlen, "compressing %s: out of memory", what);
        return -1;
    }
    int rc;
#ifdef HC_HAVE_ISAL
    if (engine == HC_GZIP_ISAL)
        rc = hc_gzip_isal_open(gz, err, errlen);
    else
#endif
        rc = hc_gzip_zlib_open(gz, err, errlen);
    if (rc != 0) hc_gzip_free(gz);
    return rc;
}

int hc_gzip_write(hc_gzip *gz, const void *buf, size_t len, char *err, size_t errlen)
{
    const unsigned char *p = buf;
    gz->raw_bytes += len;
    while (len > 0) {
        size_t take = len > HC_GZIP_IN_CHUNK ? HC_GZIP_IN_CHUNK : len;
        int rc;
#ifdef HC_HAVE_ISAL
        if (gz->engine == HC_GZIP_ISAL)
            rc = hc_gzip_isal_write(gz, p, take, err, errlen);
        else
#endif
            rc = hc_gzip_zlib_write(gz, p, take, err, errlen);
        if (rc != 0) return -1;
        p += take;
        len -= take;
    }
    return 0;
}

int hc_gzip_finish(hc_gzip *gz, char *err, size_t errlen)
{
#ifdef HC_HAVE_ISAL
    if (gz->engine == HC_GZIP_ISAL) return hc_gzip_isal_finish(gz, err, errlen);
#endif
    return hc_gzip_zlib_finish(gz, err, errlen);
}

void hc_gzip_free(hc_gzip *gz)
{
    hc_gzip_state *st = gz->state;
    if (!st) return;
    if (st->zs_ready) deflateEnd(&st->zs);
#ifdef HC_HAVE_ISAL
    free(st->level_buf);
#endif
    free(st);
    gz->state = NULL;
}
