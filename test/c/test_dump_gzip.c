/* dump_gzip.c, each engine this build has (zlib always, ISA-L when found): the output is one gzip
 * member with our header, the right CRC-32 and length, and exactly the input once zlib inflates it;
 * for any way of cutting the input into writes; empty, tiny, incompressible and large inputs; and
 * an emit that fails stops the stream with emit's own words. */
#include "dump_gzip.h"
#include "hc_test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- a growing buffer as the emit target ------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t len, cap;
    int calls;
    int fail_at_call; /* >0: that emit call fails, like a full disk */
} out_buf;

static int emit_to_buf(void *arg, const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    out_buf *o = arg;
    if (++o->calls == o->fail_at_call) {
        snprintf(err, errlen, "writing the test output: No space left on device");
        return -1;
    }
    if (o->len + len > o->cap) {
        o->cap = (o->len + len) * 2;
        o->data = realloc(o->data, o->cap);
    }
    memcpy(o->data + o->len, buf, len);
    o->len += len;
    return 0;
}

/* ---- inputs ------------------------------------------------------------------------------ */

static unsigned char *ndjson_like(size_t *len, size_t want)
{
    char *buf = malloc(want + 256);
    size_t used = 0;
    unsigned seed = 7;
    while (used < want) {
        seed = seed * 1103515245u + 12345u;
        used += (size_t)snprintf(buf + used, want + 256 - used,
                                 "{\"address\":\"0x%08x\", \"type\":\"STRING\", \"bytesize\":%u, \"file\":\"app.rb\"}\n",
                                 seed, seed % 977);
    }
    *len = used;
    return (unsigned char *)buf;
}

/* ---- checks ------------------------------------------------------------------------------ */

/* Compresses input with engine, `piece` bytes per write (0: all at once). */
static int gzip_into(hc_gzip_engine engine, const unsigned char *input, size_t len, size_t piece, out_buf *out,
                    char *err, size_t errlen)
{
    hc_gzip gz;
    if (hc_gzip_open(&gz, engine, "the test input", emit_to_buf, out, err, errlen) != 0) return -1;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        size_t take = piece == 0 || len - off < piece ? len - off : piece;
        rc = hc_gzip_write(&gz, input + off, take, err, errlen);
        off += take;
    }
    if (rc == 0) {
        if (gz.raw_bytes != len) {
            snprintf(err, errlen, "raw_bytes %llu, gave %zu", (unsigned long long)gz.raw_bytes, len);
            rc = -1;
        } else {
            rc = hc_gzip_finish(&gz, err, errlen);
        }
    }
    hc_gzip_free(&gz);
    hc_gzip_free(&gz); /* twice is harmless */
    return rc;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* out is one gzip member, nothing after it, with our header, and it inflates to exactly input. */
static void check_member(const char *what, const out_buf *out, const unsigned char *input, size_t len)
{
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3};
    HC_CHECK(out->len >= 18 && memcmp(out->data, header, sizeof header) == 0, "%s: the gzip header", what);
    if (out->len < 18) return;
    HC_CHECK(le32(out->data + out->len - 8) == (uint32_t)crc32_z(0, input, len), "%s: the trailer's CRC-32", what);
    HC_CHECK(le32(out->data + out->len - 4) == (uint32_t)len, "%s: the trailer's length", what);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    inflateInit2(&zs, 16 + 15); /* gzip only: zlib checks header, CRC and length itself */
    unsigned char *back = malloc(len + 1);
    zs.next_in = out->data;
    zs.avail_in = (uInt)out->len;
    zs.next_out = back;
    zs.avail_out = (uInt)len + 1;
    int zrc = inflate(&zs, Z_FINISH);
    HC_CHECK(zrc == Z_STREAM_END, "%s: inflate ended with %d (%s)", what, zrc, zs.msg ? zs.msg : "");
    HC_CHECK(zs.avail_in == 0, "%s: %u bytes after the member", what, zs.avail_in);
    HC_CHECK(zs.total_out == len && memcmp(back, input, len) == 0, "%s: inflated %lu bytes, gave %zu", what,
             zs.total_out, len);
    inflateEnd(&zs);
    free(back);
}

static void round_trip(hc_gzip_engine engine, const char *name, const unsigned char *input, size_t len, size_t piece)
{
    char what[160], err[512] = "";
    snprintf(what, sizeof what, "%s, %zu bytes in writes of %zu", hc_gzip_engine_name(engine), len, piece);
    out_buf out = {0};
    int rc = gzip_into(engine, input, len, piece, &out, err, sizeof err);
    HC_CHECK(rc == 0, "%s (%s): %s", what, name, err);
    if (rc == 0) check_member(what, &out, input, len);
    free(out.data);
}

static void test_engine(hc_gzip_engine engine)
{
    size_t text_len, big_len;
    unsigned char *text = ndjson_like(&text_len, 300 * 1024);
    unsigned char *big = ndjson_like(&big_len, 6 * 1024 * 1024);
    unsigned char *noise = hc_test_random_bytes(1024 * 1024, 3);

    round_trip(engine, "empty", (const unsigned char *)"", 0, 0);
    round_trip(engine, "one byte", (const unsigned char *)"{", 1, 0);
    round_trip(engine, "one line", text, 90, 0);
    static const size_t pieces[] = {0, 1, 7, 4096, 65536, 262144, 262145};
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) round_trip(engine, "text", text, text_len, pieces[i]);
    round_trip(engine, "incompressible", noise, 1024 * 1024, 100000); /* output larger than input */
    round_trip(engine, "6 MB of text", big, big_len, 1024 * 1024);

    out_buf out = {0};
    char err[512];
    HC_CHECK(gzip_into(engine, big, big_len, 0, &out, err, sizeof err) == 0, "%s: %s", hc_gzip_engine_name(engine), err);
    HC_CHECK(out.len < big_len / 4, "%s compresses ndjson: %zu of %zu bytes", hc_gzip_engine_name(engine), out.len,
             big_len);
    printf("%s level 1: %zu bytes of ndjson-like text stored as %zu\n", hc_gzip_engine_name(engine), big_len, out.len);
    free(out.data);

    free(text);
    free(big);
    free(noise);
}

/* An emit that fails (a full disk) stops the stream; its words reach the caller unchanged. */
static void test_emit_failure(hc_gzip_engine engine)
{
    size_t len;
    unsigned char *text = ndjson_like(&len, 2 * 1024 * 1024);
    for (int at = 1; at <= 3; at++) {
        out_buf out = {.fail_at_call = at};
        char err[512] = "";
        int rc = gzip_into(engine, text, len, 65536, &out, err, sizeof err);
        HC_CHECK(rc == -1, "%s: emit failing at call %d must fail the stream", hc_gzip_engine_name(engine), at);
        HC_CHECK_STR(err, "writing the test output: No space left on device", "the emit's error passes unchanged");
        HC_CHECK(out.calls == at, "%s: no emit after the failing one (%d calls)", hc_gzip_engine_name(engine),
                 out.calls);
        free(out.data);
    }
    free(text);
}

static void test_engines_and_names(void)
{
    HC_CHECK(hc_gzip_engine_available(HC_GZIP_ZLIB), "zlib is always there");
    HC_CHECK(hc_gzip_engine_available(hc_gzip_default_engine()), "the default engine is there");
    HC_CHECK_STR(hc_gzip_engine_name(HC_GZIP_ZLIB), "zlib", "zlib's name");
    HC_CHECK_STR(hc_gzip_engine_name(HC_GZIP_ISAL), "isa-l", "ISA-L's name");
#ifdef HC_HAVE_ISAL
    HC_CHECK(hc_gzip_default_engine() == HC_GZIP_ISAL, "built with ISA-L: it is the default");
#else
    HC_CHECK(hc_gzip_default_engine() == HC_GZIP_ZLIB, "built without ISA-L: zlib is the default");
    hc_gzip gz;
    out_buf out = {0};
    char err[512];
    HC_CHECK(hc_gzip_open(&gz, HC_GZIP_ISAL, "the test input", emit_to_buf, &out, err, sizeof err) == -1,
             "ISA-L cannot open in a build without it");
    HC_CHECK(strstr(err, "compressing the test input: this build has no isa-l") != NULL, "the text: %s", err);
    hc_gzip_free(&gz);
#endif
    printf("engines in this build: zlib%s; default %s\n", hc_gzip_engine_available(HC_GZIP_ISAL) ? ", isa-l" : "",
           hc_gzip_engine_name(hc_gzip_default_engine()));
}

int main(void)
{
    test_engines_and_names();
    static const hc_gzip_engine engines[] = {HC_GZIP_ZLIB, HC_GZIP_ISAL};
    for (size_t i = 0; i < sizeof engines / sizeof *engines; i++) {
        if (!hc_gzip_engine_available(engines[i])) continue;
        test_engine(engines[i]);
        test_emit_failure(engines[i]);
    }
    return hc_test_summary("dump_gzip");
}
