/* heap_read.c: a dump file read back into summaries, plain and gzip; into two at once (a diff's
 * whole dump and its new objects: each sees every line), each summary's "then" called once it is
 * whole (on its own reading thread for a plain file, on the caller's else); a file cut short or
 * missing; a count out of range.
 * heap_input.c: the same inside age files, decrypted as read (with two identities, no identity, the
 * wrong one, cut short, altered), their bytes read back as stored, and a read stopped early. */
#define _GNU_SOURCE /* memmem */
#include "heap_read.h"
#include "hc_test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum { OBJECTS = 30000 };

/* A dump of OBJECTS strings (memsize 40 each, odd addresses' lines longer) and a ROOT record. */
static char *make_dump(size_t *len)
{
    size_t cap = (size_t)OBJECTS * 96 + 128, n = 0;
    char *text = malloc(cap);
    n += (size_t)snprintf(text, cap, "{\"type\":\"ROOT\", \"root\":\"vm\", \"references\":[\"0x10\"]}\n");
    for (int i = 1; i <= OBJECTS; i++)
        n += (size_t)snprintf(text + n, cap - n, "{\"address\":\"0x%x\", \"type\":\"STRING\", \"memsize\":40%s}\n", i * 16,
                              i % 2 ? ", \"file\":\"a.rb\", \"line\":1" : "");
    *len = n;
    return text;
}

static int keep_even(void *arg, const hc_dump_line *l)
{
    (void)arg;
    return (l->address / 16) % 2 == 0;
}

/* What a summary's "then" saw when it was called. */
typedef struct {
    int calls;
    uint64_t lines;         /* the summary's, then */
    int on_caller;          /* called on the caller's thread */
    pthread_t caller;
} then_seen;

static void record_then(void *arg, hc_summary *s)
{
    then_seen *t = arg;
    t->calls++;
    t->lines = s->lines;
    t->on_caller = pthread_equal(pthread_self(), t->caller);
}

static void check_two(const char *path, const hc_dump_keys *keys, int want_gzip)
{
    hc_summary all, even;
    hc_summary_init(&all);
    hc_summary_init(&even);
    even.filter = keep_even;
    hc_summary *both[2] = {&all, &even};
    uint64_t bytes = 0;
    int gzipped = -1;
    char err[512] = "";
    then_seen seen[2] = {{.caller = pthread_self()}, {.caller = pthread_self()}};
    hc_dump_then then[2] = {{record_then, &seen[0]}, {record_then, &seen[1]}};
    int rc = hc_dump_read_file_into(path, keys, both, 2, then, &bytes, &gzipped, err, sizeof err);
    HC_CHECK(rc == 0, "read %s: %s", path, err);
    for (int i = 0; i < 2; i++) {
        HC_CHECK(seen[i].calls == 1 && seen[i].lines == OBJECTS + 1, "then %d: once, the summary whole: %d calls, %llu lines",
                 i, seen[i].calls, (unsigned long long)seen[i].lines);
        HC_CHECK(seen[i].on_caller == (want_gzip || keys), "then %d: on %s", i,
                 seen[i].on_caller ? "the caller's thread" : "the summary's own");
    }
    HC_CHECK(gzipped == want_gzip, "gzipped: %d", gzipped);
    HC_CHECK(all.lines == OBJECTS + 1 && even.lines == OBJECTS + 1, "both saw every line: %llu %llu",
             (unsigned long long)all.lines, (unsigned long long)even.lines);
    HC_CHECK(all.all.objects == OBJECTS && even.all.objects == OBJECTS / 2, "all, and the filtered half: %llu %llu",
             (unsigned long long)all.all.objects, (unsigned long long)even.all.objects);
    HC_CHECK(all.roots == 1 && even.roots == 1, "the ROOT record in both");
    hc_summary one;
    hc_summary_init(&one);
    uint64_t bytes1 = 0;
    rc = hc_dump_read_file(path, keys, &one, &bytes1, &gzipped, err, sizeof err);
    HC_CHECK(rc == 0 && bytes1 == bytes && one.all.objects == OBJECTS && one.all.memsize == 40ull * OBJECTS,
             "one summary, the same bytes: %s", err);
    hc_summary_free(&one);
    hc_summary_free(&all);
    hc_summary_free(&even);
}

/* The whole of a file. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    HC_CHECK(f && fwrite(buf, 1, len, f) == len, "writing %s", path);
    fclose(f);
}

static int to_file(void *ctx, const void *buf, size_t len, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    return fwrite(buf, 1, len, ctx) == len ? 0 : -1;
}

/* src encrypted to recipients[0, n) into a new file: its path (static buffer of the caller). */
static void encrypt_file(const char *src, const hc_age_recipient *r, size_t n, char *out_path)
{
    int fd = mkstemp(out_path);
    close(fd);
    FILE *out = fopen(out_path, "wb");
    size_t len;
    unsigned char *data = slurp(src, &len);
    hc_age_writer w;
    char err[320];
    HC_CHECK(hc_age_writer_init(&w, r, n, to_file, out, err, sizeof err) == 0 &&
                 hc_age_writer_write(&w, data, len, err, sizeof err) == 0 &&
                 hc_age_writer_finish(&w, err, sizeof err) == 0,
             "encrypting %s: %s", src, err);
    hc_age_writer_free(&w);
    fclose(out);
    free(data);
}

/* One summary of path with keys: 0, or -1 with err. */
static int read_one(const char *path, const hc_dump_keys *keys, char *err, size_t errlen)
{
    hc_summary s;
    hc_summary_init(&s);
    uint64_t bytes;
    int gzipped;
    err[0] = '\0';
    int rc = hc_dump_read_file(path, keys, &s, &bytes, &gzipped, err, errlen);
    hc_summary_free(&s);
    return rc;
}

static void test_age(const char *plain, const char *gz_path)
{
    if (!hc_age_available()) return; /* a build without libsodium: nothing to decrypt with */
    hc_age_identity ids[3];
    char err[768];
    for (int i = 0; i < 3; i++) HC_CHECK(hc_age_identity_generate(&ids[i], err, sizeof err) == 0, "identity: %s", err);
    hc_age_recipient both[2] = {ids[0].recipient, ids[1].recipient};
    char age_plain[] = "/tmp/hc-test-dump-read-age-XXXXXX", age_gz[] = "/tmp/hc-test-dump-read-agegz-XXXXXX";
    encrypt_file(plain, both, 2, age_plain);
    encrypt_file(gz_path, both, 2, age_gz);

    /* each recipient's identity reads both, as the files themselves read */
    for (int i = 0; i < 2; i++) {
        hc_dump_keys one = {&ids[i], 1};
        check_two(age_plain, &one, 0);
        check_two(age_gz, &one, 1);
    }
    hc_dump_keys wrong_then_right = {&ids[1], 2}; /* ids[1], ids[2]: the first opens it */
    check_two(age_gz, &wrong_then_right, 1);

    /* no identity, the wrong one */
    HC_CHECK(read_one(age_gz, NULL, err, sizeof err) != 0 && strstr(err, age_gz) &&
                 strstr(err, "is age-encrypted; set HEAPCAPTURE_IDENTITY to the path of an age identity file"),
             "no identity: %s", err);
    hc_dump_keys wrong = {&ids[2], 1};
    HC_CHECK(read_one(age_gz, &wrong, err, sizeof err) != 0 && strstr(err, "is not for any of these identities"),
             "wrong identity: %s", err);

    /* cut short (inside a chunk, and at a chunk's end), altered: age's sentence, not zlib's */
    size_t len;
    unsigned char *data = slurp(age_gz, &len);
    char cut[] = "/tmp/hc-test-dump-read-cut-XXXXXX";
    close(mkstemp(cut));
    hc_dump_keys key0 = {&ids[0], 1};
    spit(cut, data, len / 2);
    HC_CHECK(read_one(cut, &key0, err, sizeof err) != 0 && strstr(err, "the age file is truncated"), "cut: %s", err);
    const unsigned char *mac = memmem(data, len, "\n---", 4);
    const unsigned char *eol = mac ? memchr(mac + 1, '\n', len - (size_t)(mac + 1 - data)) : NULL;
    HC_CHECK(eol != NULL, "the header's MAC line");
    size_t payload = (size_t)(eol + 1 - data) + HC_AGE_NONCE_BYTES;
    HC_CHECK(len > payload + HC_AGE_SEALED_CHUNK_BYTES, "more than one chunk: %zu bytes", len);
    spit(cut, data, payload + HC_AGE_SEALED_CHUNK_BYTES);
    HC_CHECK(read_one(cut, &key0, err, sizeof err) != 0 && strstr(err, "the age file is truncated"),
             "cut at a chunk's end: %s", err);
    data[len / 3] ^= 0x40;
    spit(cut, data, len);
    HC_CHECK(read_one(cut, &key0, err, sizeof err) != 0 && strstr(err, "the age file was altered at chunk"),
             "altered: %s", err);
    free(data);

    /* the bytes as stored (decrypted, not decompressed), and a read stopped early */
    size_t gz_len;
    unsigned char *gz_bytes = slurp(gz_path, &gz_len);
    hc_dump_input in;
    HC_CHECK(hc_dump_input_open(&in, age_gz, &key0, 0, err, sizeof err) == 0, "open raw: %s", err);
    unsigned char *got = malloc(gz_len + 1);
    size_t n = 0;
    long r;
    while ((r = hc_dump_input_read(&in, got + n, gz_len + 1 - n)) > 0) n += (size_t)r;
    HC_CHECK(hc_dump_input_close(&in, NULL, err, sizeof err) == 0, "close raw: %s", err);
    HC_CHECK(n == gz_len && memcmp(got, gz_bytes, n) == 0, "the gzip bytes as stored: %zu of %zu", n, gz_len);
    HC_CHECK(hc_dump_input_open(&in, age_gz, &key0, 1, err, sizeof err) == 0, "open: %s", err);
    HC_CHECK(hc_dump_input_read(&in, got, 100) == 100, "a first piece");
    HC_CHECK(hc_dump_input_close(&in, NULL, err, sizeof err) == 0, "stopping early is no failure: %s", err);
    free(got);
    free(gz_bytes);
    unlink(cut);
    unlink(age_plain);
    unlink(age_gz);
}

int main(void)
{
    size_t len;
    char *text = make_dump(&len);
    char plain[] = "/tmp/hc-test-dump-read-XXXXXX";
    int fd = mkstemp(plain);
    HC_CHECK(fd >= 0 && write(fd, text, len) == (ssize_t)len, "the plain file");
    close(fd);
    check_two(plain, NULL, 0);

    char gz_path[] = "/tmp/hc-test-dump-read-gz-XXXXXX";
    fd = mkstemp(gz_path);
    close(fd);
    gzFile gz = gzopen(gz_path, "wb");
    HC_CHECK(gz && gzwrite(gz, text, (unsigned)len) == (int)len, "the gzip file");
    gzclose(gz);
    check_two(gz_path, NULL, 1);
    test_age(plain, gz_path);

    /* cut short: the gzip stream ends early, said for either count */
    FILE *f = fopen(gz_path, "rb");
    char buf[4096];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(gz_path, "wb");
    fwrite(buf, 1, got / 2, f);
    fclose(f);
    hc_summary a, b;
    hc_summary_init(&a);
    hc_summary_init(&b);
    hc_summary *both[3] = {&a, &b, &a};
    uint64_t bytes;
    int gzipped;
    char err[512] = "";
    then_seen seen = {.caller = pthread_self()};
    hc_dump_then then[2] = {{record_then, &seen}, {record_then, &seen}};
    HC_CHECK(hc_dump_read_file_into(gz_path, NULL, both, 2, then, &bytes, &gzipped, err, sizeof err) != 0 &&
                 strstr(err, "is not a whole gzip file"),
             "cut short: %s", err);
    HC_CHECK(seen.calls == 0, "no then for a dump cut short: %d", seen.calls);
    err[0] = '\0';
    HC_CHECK(hc_dump_read_file_into(gz_path, NULL, both, 3, NULL, &bytes, &gzipped, err, sizeof err) != 0 &&
                 strstr(err, "3 summaries asked for"),
             "three: %s", err);
    HC_CHECK(hc_dump_read_file_into(gz_path, NULL, both, 0, NULL, &bytes, &gzipped, err, sizeof err) != 0, "none");
    hc_summary_free(&a);
    hc_summary_free(&b);
    /* a file that is not there, read into two: said as for one */
    hc_summary_init(&a);
    hc_summary_init(&b);
    err[0] = '\0';
    HC_CHECK(hc_dump_read_file_into("/nonexistent/hc-dump", NULL, both, 2, then, &bytes, &gzipped, err, sizeof err) != 0 &&
                 strstr(err, "reading /nonexistent/hc-dump: No such file"),
             "missing: %s", err);
    hc_summary_free(&a);
    hc_summary_free(&b);
    unlink(plain);
    unlink(gz_path);
    free(text);
    return hc_test_summary("heap_read");
}
