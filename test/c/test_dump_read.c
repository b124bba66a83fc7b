/* dump_read.c: a dump file read back into summaries, plain and gzip; into two at once (a diff's
 * whole dump and its new objects: each sees every line); a file cut short; a count out of range. */
#include "dump_read.h"
#include "hc_test.h"

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

static void check_two(const char *path, int want_gzip)
{
    hc_summary all, even;
    hc_summary_init(&all);
    hc_summary_init(&even);
    even.filter = keep_even;
    hc_summary *both[2] = {&all, &even};
    uint64_t bytes = 0;
    int gzipped = -1;
    char err[512] = "";
    int rc = hc_dump_read_file_into(path, both, 2, &bytes, &gzipped, err, sizeof err);
    HC_CHECK(rc == 0, "read %s: %s", path, err);
    HC_CHECK(gzipped == want_gzip, "gzipped: %d", gzipped);
    HC_CHECK(all.lines == OBJECTS + 1 && even.lines == OBJECTS + 1, "both saw every line: %llu %llu",
             (unsigned long long)all.lines, (unsigned long long)even.lines);
    HC_CHECK(all.all.objects == OBJECTS && even.all.objects == OBJECTS / 2, "all, and the filtered half: %llu %llu",
             (unsigned long long)all.all.objects, (unsigned long long)even.all.objects);
    HC_CHECK(all.roots == 1 && even.roots == 1, "the ROOT record in both");
    hc_summary one;
    hc_summary_init(&one);
    uint64_t bytes1 = 0;
    rc = hc_dump_read_file(path, &one, &bytes1, &gzipped, err, sizeof err);
    HC_CHECK(rc == 0 && bytes1 == bytes && one.all.objects == OBJECTS && one.all.memsize == 40ull * OBJECTS,
             "one summary, the same bytes: %s", err);
    hc_summary_free(&one);
    hc_summary_free(&all);
    hc_summary_free(&even);
}

int main(void)
{
    size_t len;
    char *text = make_dump(&len);
    char plain[] = "/tmp/hc-test-dump-read-XXXXXX";
    int fd = mkstemp(plain);
    HC_CHECK(fd >= 0 && write(fd, text, len) == (ssize_t)len, "the plain file");
    close(fd);
    check_two(plain, 0);

    char gz_path[] = "/tmp/hc-test-dump-read-gz-XXXXXX";
    fd = mkstemp(gz_path);
    close(fd);
    gzFile gz = gzopen(gz_path, "wb");
    HC_CHECK(gz && gzwrite(gz, text, (unsigned)len) == (int)len, "the gzip file");
    gzclose(gz);
    check_two(gz_path, 1);

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
    HC_CHECK(hc_dump_read_file_into(gz_path, both, 2, &bytes, &gzipped, err, sizeof err) != 0 &&
                 strstr(err, "is not a whole gzip file"),
             "cut short: %s", err);
    err[0] = '\0';
    HC_CHECK(hc_dump_read_file_into(gz_path, both, 3, &bytes, &gzipped, err, sizeof err) != 0 &&
                 strstr(err, "3 summaries asked for"),
             "three: %s", err);
    HC_CHECK(hc_dump_read_file_into(gz_path, both, 0, &bytes, &gzipped, err, sizeof err) != 0, "none");
    hc_summary_free(&a);
    hc_summary_free(&b);
    unlink(plain);
    unlink(gz_path);
    free(text);
    return hc_test_summary("dump_read");
}
