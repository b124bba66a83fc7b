/* dump_tempfile.c and dump_stream.c without Ruby: tempfile rules, the gzip stream round trip
 * through zlib's gzread, disk full (/dev/full), the free-space check and the error texts; a dump
 * stored encrypted to age recipients, its age file started before a fork and written by the child,
 * read back with heap_input.c. (The child's report and the parent's wait for it: test_dump_watch.c.) */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include "dump_tempfile.h"
#include "dump_stream.h"
#include "dump_child_report.h"
#include "heap_input.h"
#include "hc_test.h"
#include "mem_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static char dir[256];

/* A few MB of ndjson-like text with enough variety that deflate has work to do. */
static char *make_input(size_t *len)
{
    size_t cap = 3 * 1024 * 1024, used = 0;
    char *buf = malloc(cap);
    unsigned seed = 42;
    while (used + 200 < cap) {
        seed = seed * 1103515245u + 12345u;
        used += (size_t)snprintf(buf + used, cap - used,
                                 "{\"address\":\"0x%08x\", \"type\":\"STRING\", \"bytesize\":%u, \"file\":\"app.rb\"}\n",
                                 seed, seed % 977);
    }
    *len = used;
    return buf;
}

static unsigned char *read_gzip(const char *path, size_t *len)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz) return NULL;
    size_t cap = 8 * 1024 * 1024, used = 0;
    unsigned char *buf = malloc(cap);
    int n;
    while ((n = gzread(gz, buf + used, (unsigned)(cap - used))) > 0) used += (size_t)n;
    if (n < 0) { /* zlib checks the trailer's CRC-32 and length: a wrong one ends here */
        int code;
        fprintf(stderr, "gzread %s: %s\n", path, gzerror(gz, &code));
        free(buf);
        buf = NULL;
    }
    gzclose(gz);
    *len = used;
    return buf;
}

static size_t count_gzip_members(const char *path)
{
    /* Each member starts with 1f 8b 08; a level-1 stream of text is unlikely to contain that
     * sequence by chance, and zlib's own reader proves the content. Checks "one member". */
    FILE *f = fopen(path, "rb");
    size_t members = 0;
    int a = -1, b = -1, c;
    while ((c = fgetc(f)) != EOF) {
        if (a == 0x1f && b == 0x8b && c == 0x08) members++;
        a = b;
        b = c;
    }
    fclose(f);
    return members;
}

/* Writes input into fd in pieces of at most `piece` bytes, then closes fd (the reader sees EOF). */
static void write_in_pieces(int fd, const char *input, size_t len, size_t piece)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, input + off, len - off < piece ? len - off : piece);
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(fd);
}

/* The file at path is one gzip member that decompresses to exactly input. */
static void check_gunzips_to(const char *path, const char *input, size_t len)
{
    size_t outlen;
    unsigned char *out = read_gzip(path, &outlen);
    HC_CHECK(out && outlen == len && memcmp(out, input, len) == 0, "gunzipped bytes differ (%zu vs %zu)", outlen, len);
    HC_CHECK(count_gzip_members(path) == 1, "one gzip member, got %zu", count_gzip_members(path));
    free(out);
}

/* A gzip pump from a pipe into a fresh tempfile, fed make_input()'s bytes by the test. */
typedef struct {
    char *input;
    size_t len;
    char path[512];
    int fd;
    int pipefd[2];
    hc_dump_pump pump;
} pump_case;

/* pipe_size: F_SETPIPE_SZ for the pipe, or 0 for the default (64 KB). */
static void pump_case_start(pump_case *pc, int pipe_size)
{
    char err[512];
    pc->input = make_input(&pc->len);
    pc->fd = hc_dump_tempfile(dir, ".gz", pc->path, sizeof pc->path, err, sizeof err);
    HC_CHECK(pc->fd >= 0, "tempfile: %s", err);
    HC_CHECK(pipe(pc->pipefd) == 0, "pipe");
    if (pipe_size)
        HC_CHECK(fcntl(pc->pipefd[1], F_SETPIPE_SZ, pipe_size) >= pipe_size, "a %d-byte pipe: %s", pipe_size,
                 strerror(errno));
    HC_CHECK(hc_dump_pump_start(&pc->pump, pc->pipefd[0], pc->fd, pc->path, 1, NULL, err, sizeof err) == 0, "pump: %s", err);
}

/* After the join: the tempfile is one gzip member of exactly the input; then it is removed. */
static void pump_case_finish(pump_case *pc)
{
    HC_CHECK(pc->pump.sink.raw_bytes == pc->len, "raw %llu want %zu", (unsigned long long)pc->pump.sink.raw_bytes,
             pc->len);
    close(pc->fd);
    check_gunzips_to(pc->path, pc->input, pc->len);
    free(pc->input);
    unlink(pc->path);
}

static void test_tempfile(void)
{
    char path[512], err[512];
    int fd = hc_dump_tempfile(dir, ".ndjson.gz", path, sizeof path, err, sizeof err);
    HC_CHECK(fd >= 0, "tempfile: %s", err);
    struct stat st;
    HC_CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
    HC_CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "close-on-exec");
    HC_CHECK(strncmp(path, dir, strlen(dir)) == 0 && strstr(path, "/heapcapture-") != NULL, "name %s", path);
    HC_CHECK(strcmp(path + strlen(path) - 10, ".ndjson.gz") == 0, "suffix %s", path);

    /* O_EXCL: the same name twice is refused and the existing file is left alone. */
    int again = hc_dump_open_exclusive(path, err, sizeof err);
    HC_CHECK(again < 0 && errno == EEXIST, "second open of %s", path);
    HC_CHECK(strstr(err, "creating the dump tempfile") && strstr(err, "File exists") &&
             strstr(err, "left alone"), "collision text: %s", err);

    /* A symlink planted at the name is not followed. */
    char link[600];
    snprintf(link, sizeof link, "%s/planted-link", dir);
    HC_CHECK(symlink(path, link) == 0, "symlink");
    HC_CHECK(hc_dump_open_exclusive(link, err, sizeof err) < 0, "symlink followed");
    unlink(link);

    /* Two tempfiles never share a name. */
    char path2[512];
    int fd2 = hc_dump_tempfile(dir, "", path2, sizeof path2, err, sizeof err);
    HC_CHECK(fd2 >= 0 && strcmp(path, path2) != 0, "unique names %s %s", path, path2);
    close(fd);
    close(fd2);
    unlink(path);
    unlink(path2);

    /* Missing directory: the text says which setting to change. */
    fd = hc_dump_tempfile("/nonexistent/heapcapture", "", path, sizeof path, err, sizeof err);
    HC_CHECK(fd < 0, "tempfile in a missing dir");
    HC_CHECK(strstr(err, "/nonexistent/heapcapture") && strstr(err, "No such file or directory") &&
             strstr(err, "HEAPCAPTURE_TMPDIR"), "missing dir text: %s", err);
}

static void test_gzip_round_trip_through_the_pump(void)
{
    pump_case pc;
    char err[512];
    pump_case_start(&pc, 0);
    write_in_pieces(pc.pipefd[1], pc.input, pc.len, 4093); /* odd-sized, as dump_all's buffered IO writes */
    HC_CHECK(hc_dump_pump_join(&pc.pump, err, sizeof err) == 0, "join: %s", err);
    struct stat st;
    fstat(pc.fd, &st);
    HC_CHECK((uint64_t)st.st_size == pc.pump.sink.stored_bytes, "stored %llu file %lld",
             (unsigned long long)pc.pump.sink.stored_bytes, (long long)st.st_size);
    HC_CHECK(pc.pump.sink.stored_bytes * 3 < pc.len, "compressed %llu of %zu",
             (unsigned long long)pc.pump.sink.stored_bytes, pc.len);
    pump_case_finish(&pc);
}

/* Writes of 2 MB into a 1 MB pipe, which the pump reads up to 1 MB at a time: writes
 * larger than the pipe and than the pump's read still give back exactly the input, in one member,
 * and the pump says how much CPU it used. */
static void test_large_writes_and_stage_times(void)
{
    size_t len;
    char *input = make_input(&len);
    char path[512], err[512];
    int fd = hc_dump_tempfile(dir, ".gz", path, sizeof path, err, sizeof err);
    int pipefd[2];
    HC_CHECK(pipe(pipefd) == 0, "pipe");
#ifdef F_SETPIPE_SZ
    fcntl(pipefd[1], F_SETPIPE_SZ, 1024 * 1024);
#endif
    uint64_t t0 = hc_now_ns(), cpu0 = hc_thread_cpu_ns();
    hc_dump_pump pump;
    HC_CHECK(hc_dump_pump_start(&pump, pipefd[0], fd, path, 1, NULL, err, sizeof err) == 0, "pump: %s", err);
    write_in_pieces(pipefd[1], input, len, 2 * 1024 * 1024 + 7);
    HC_CHECK(hc_dump_pump_join(&pump, err, sizeof err) == 0, "join: %s", err);
    HC_CHECK(pump.sink.raw_bytes == len, "raw %llu want %zu", (unsigned long long)pump.sink.raw_bytes, len);
    HC_CHECK(pump.cpu_ns > 0, "the pump reports its CPU time");
    uint64_t wall = hc_now_ns() - t0;
    HC_CHECK(pump.cpu_ns <= wall + 10000000ull, "pump CPU %llu ns within the wall time %llu ns",
             (unsigned long long)pump.cpu_ns, (unsigned long long)wall);
    HC_CHECK(pump.sink.finish_ns > 0 && pump.sink.finish_ns <= wall, "finish %llu ns",
             (unsigned long long)pump.sink.finish_ns);
    HC_CHECK(hc_thread_cpu_ns() > cpu0, "this thread's CPU time moves on");
    close(fd);

    check_gunzips_to(path, input, len);
    free(input);
    unlink(path);
    /* The report still goes through a pipe in one atomic write. */
    HC_CHECK(sizeof(hc_dump_report) <= 4096, "report of %zu bytes fits PIPE_BUF", sizeof(hc_dump_report));
}

/* What the dump child does now: Ruby's IO writes dump_all's output 8 KB at a time into a 1 MB
 * pipe, at about dump_all's pace (a pause now and then); the pump, which naps after short reads on
 * such a pipe, gives back exactly the input in one member. How many reads it took is printed. */
static void test_small_writes_into_a_large_pipe(void)
{
    pump_case pc;
    char err[512];
    pump_case_start(&pc, 1024 * 1024);
    size_t writes = 0;
    const struct timespec pause = {0, 50 * 1000};
    for (size_t off = 0; off < pc.len; writes++) {
        size_t piece = pc.len - off < 8192 ? pc.len - off : 8192;
        ssize_t n = write(pc.pipefd[1], pc.input + off, piece);
        if (n <= 0) break;
        off += (size_t)n;
        if (writes % 8 == 0) nanosleep(&pause, NULL);
    }
    close(pc.pipefd[1]);
    HC_CHECK(hc_dump_pump_join(&pc.pump, err, sizeof err) == 0, "join: %s", err);
    HC_CHECK(pc.pump.napping, "the pump naps on a 1 MB pipe");
    printf("test_dump: %zu writes of 8 KB taken in %llu reads\n", writes, (unsigned long long)pc.pump.reads);
    pump_case_finish(&pc);
}

static void test_plain(void)
{
    size_t len;
    char *input = make_input(&len);
    char path[512], err[512];
    int fd = hc_dump_tempfile(dir, ".ndjson", path, sizeof path, err, sizeof err);
    hc_dump_sink sink;
    HC_CHECK(hc_dump_sink_open(&sink, fd, path, 0, err, sizeof err) == 0, "open: %s", err);
    HC_CHECK(hc_dump_sink_write(&sink, input, len, err, sizeof err) == 0, "write: %s", err);
    HC_CHECK(hc_dump_sink_finish(&sink, err, sizeof err) == 0, "finish: %s", err);
    HC_CHECK(sink.raw_bytes == len && sink.stored_bytes == len, "plain counts");
    hc_dump_sink_free(&sink);
    close(fd);
    FILE *f = fopen(path, "rb");
    char *back = malloc(len + 1);
    size_t got = fread(back, 1, len + 1, f);
    fclose(f);
    HC_CHECK(got == len && memcmp(back, input, len) == 0, "plain bytes differ");
    free(back);

    unlink(path);
    free(input);
}

static void test_disk_full(void)
{
    size_t len;
    char *input = make_input(&len);
    char err[512];
    int fd = open("/dev/full", O_WRONLY);
    HC_CHECK(fd >= 0, "/dev/full");
    int pipefd[2];
    HC_CHECK(pipe(pipefd) == 0, "pipe");
    signal(SIGPIPE, SIG_IGN);
    hc_dump_pump pump;
    HC_CHECK(hc_dump_pump_start(&pump, pipefd[0], fd, "/dev/full", 1, NULL, err, sizeof err) == 0, "pump: %s", err);
    /* The pump fails on its first write and closes the pipe: the writer gets EPIPE, no hang. */
    int saw_epipe = 0;
    for (size_t off = 0; off < len;) {
        ssize_t n = write(pipefd[1], input + off, len - off < 65536 ? len - off : 65536);
        if (n < 0) {
            saw_epipe = errno == EPIPE;
            break;
        }
        off += (size_t)n;
    }
    close(pipefd[1]);
    HC_CHECK(hc_dump_pump_join(&pump, err, sizeof err) != 0, "disk full not reported");
    HC_CHECK(saw_epipe, "the writer should see EPIPE once the pump gave up");
    HC_CHECK(strstr(err, "writing the heap dump to /dev/full") && strstr(err, "No space left on device") &&
             strstr(err, "HEAPCAPTURE_TMPDIR"), "ENOSPC text: %s", err);
    close(fd);
    free(input);
}

/* The file at path, decrypted with id and decompressed (gzip, or plain as it is): equal to input[0, len). */
static void check_decrypts_to(const char *path, const hc_age_identity *id, const char *input, size_t len)
{
    hc_dump_keys keys = {id, 1};
    hc_dump_input in;
    char err[768];
    HC_CHECK(hc_dump_input_open(&in, path, &keys, 1, err, sizeof err) == 0, "open %s: %s", path, err);
    char *back = malloc(len + 1);
    size_t n = 0;
    long r;
    while (n <= len && (r = hc_dump_input_read(&in, back + n, len + 1 - n)) > 0) n += (size_t)r;
    HC_CHECK(hc_dump_input_close(&in, NULL, err, sizeof err) == 0, "read back %s: %s", path, err);
    HC_CHECK(n == len && memcmp(back, input, len) == 0, "decrypted bytes differ (%zu vs %zu)", n, len);
    free(back);
}

/* The tempfile holds an age file from its first byte, as many bytes as the sink counted, and no
 * plaintext. */
static void check_ciphertext(const char *path, uint64_t stored)
{
    struct stat st;
    HC_CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == stored, "stored %llu, file %lld",
             (unsigned long long)stored, (long long)st.st_size);
    FILE *f = fopen(path, "rb");
    char *bytes = malloc((size_t)st.st_size + 1);
    size_t got = fread(bytes, 1, (size_t)st.st_size, f);
    fclose(f);
    HC_CHECK(got > 22 && memcmp(bytes, "age-encryption.org/v1\n-> X25519 ", 32) == 0, "the age header first");
    HC_CHECK(!memmem(bytes, got, "\"type\":\"STRING\"", 15) && !memmem(bytes, got, "app.rb", 6), "no plaintext");
    free(bytes);
}

static void test_encrypted(void)
{
    if (!hc_age_available()) return; /* a build without libsodium */
    size_t len;
    char *input = make_input(&len);
    char path[512], err[512];
    hc_age_identity id;
    HC_CHECK(hc_age_identity_generate(&id, err, sizeof err) == 0, "identity: %s", err);

    /* gzip, through the pump in a forked child; the age file started in the parent before the fork */
    int fd = hc_dump_tempfile(dir, ".ndjson.gz.age", path, sizeof path, err, sizeof err);
    hc_dump_age age;
    HC_CHECK(hc_dump_age_start(&age, &id.recipient, 1, err, sizeof err) == 0, "age: %s", err);
    struct stat st;
    HC_CHECK(fstat(fd, &st) == 0 && st.st_size == 0, "the header waits in memory until the stream starts");
    int report[2];
    HC_CHECK(pipe(report) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        int pipefd[2];
        hc_dump_pump pump;
        hc_dump_stream_opts opts = {NULL, NULL, 0, &age};
        uint64_t stored = 0;
        if (pipe(pipefd) == 0 && hc_dump_pump_start(&pump, pipefd[0], fd, path, 1, &opts, err, sizeof err) == 0) {
            write_in_pieces(pipefd[1], input, len, 8192);
            if (hc_dump_pump_join(&pump, err, sizeof err) == 0) stored = pump.sink.stored_bytes;
        }
        ssize_t w = write(report[1], &stored, sizeof stored);
        _exit(w == sizeof stored && stored ? 0 : 1);
    }
    hc_dump_age_free(&age); /* the app's copy of the key: the child has its own */
    uint64_t stored = 0;
    int status;
    HC_CHECK(read(report[0], &stored, sizeof stored) == sizeof stored && waitpid(pid, &status, 0) == pid &&
                 WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child stored the dump");
    close(report[0]);
    close(report[1]);
    close(fd);
    check_ciphertext(path, stored);
    check_decrypts_to(path, &id, input, len);
    unlink(path);

    /* plain, through the sink, in this process */
    fd = hc_dump_tempfile(dir, ".ndjson.age", path, sizeof path, err, sizeof err);
    HC_CHECK(hc_dump_age_start(&age, &id.recipient, 1, err, sizeof err) == 0, "age: %s", err);
    hc_dump_sink sink;
    hc_dump_stream_opts opts = {NULL, NULL, 0, &age};
    HC_CHECK(hc_dump_sink_open(&sink, fd, path, 0, err, sizeof err) == 0, "open: %s", err);
    hc_dump_sink_options(&sink, &opts);
    HC_CHECK(hc_dump_sink_write(&sink, input, len, err, sizeof err) == 0, "write: %s", err);
    HC_CHECK(hc_dump_sink_finish(&sink, err, sizeof err) == 0, "finish: %s", err);
    HC_CHECK(sink.raw_bytes == len && sink.stored_bytes > len, "counts: raw %llu, stored %llu (the age file's)",
             (unsigned long long)sink.raw_bytes, (unsigned long long)sink.stored_bytes);
    stored = sink.stored_bytes;
    hc_dump_sink_free(&sink);
    hc_dump_age_free(&age);
    close(fd);
    check_ciphertext(path, stored);
    check_decrypts_to(path, &id, input, len);
    unlink(path);

    /* disk full: the sink's sentence, through the age writer */
    fd = open("/dev/full", O_WRONLY);
    HC_CHECK(hc_dump_age_start(&age, &id.recipient, 1, err, sizeof err) == 0, "age: %s", err);
    HC_CHECK(hc_dump_sink_open(&sink, fd, "/dev/full", 1, err, sizeof err) == 0, "open: %s", err);
    hc_dump_sink_options(&sink, &opts);
    int rc = hc_dump_sink_write(&sink, input, len, err, sizeof err);
    if (rc == 0) rc = hc_dump_sink_finish(&sink, err, sizeof err);
    HC_CHECK(rc != 0 && strstr(err, "writing the heap dump to /dev/full") && strstr(err, "No space left on device"),
             "ENOSPC text: %s", err);
    hc_dump_sink_free(&sink);
    hc_dump_age_free(&age);
    close(fd);

    /* no recipient: the age writer's sentence */
    HC_CHECK(hc_dump_age_start(&age, &id.recipient, 0, err, sizeof err) != 0 && strstr(err, "no recipient"),
             "no recipient: %s", err);
    hc_dump_age_free(&age);
    free(input);
}

static void test_space(void)
{
    uint64_t rss = 0;
    char err[512];
    HC_CHECK(hc_proc_self_rss(&rss, err, sizeof err) == 0 && rss > 1024 * 1024, "self rss: %s", err);

    uint64_t mb450 = 450ull * 1024 * 1024;
    HC_CHECK(hc_dump_estimate(mb450, 0) == 2 * mb450, "plain estimate");
    HC_CHECK(hc_dump_estimate(mb450, 1) == 2 * mb450 / 5, "gzip estimate");
    HC_CHECK(hc_dump_estimate(1024, 1) == 16ull * 1024 * 1024, "floor");

    HC_CHECK(hc_dump_check_space(dir, 1024, err, sizeof err) == 0, "1 KiB fits: %s", err);
    HC_CHECK(hc_dump_check_space(dir, UINT64_MAX / 2, err, sizeof err) != 0, "huge fits?");
    HC_CHECK(strstr(err, "not enough free space") && strstr(err, dir) && strstr(err, "MB are free") &&
             strstr(err, "HEAPCAPTURE_TMPDIR"), "space text: %s", err);
    HC_CHECK(hc_dump_check_space("/nonexistent/x", 1, err, sizeof err) != 0 &&
             strstr(err, "checking free space in tmpdir /nonexistent/x: No such file"), "statvfs text: %s", err);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/hc-test-dump-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_tempfile();
    test_gzip_round_trip_through_the_pump();
    test_large_writes_and_stage_times();
    test_small_writes_into_a_large_pipe();
    test_plain();
    test_disk_full();
    test_encrypted();
    test_space();
    rmdir(dir);
    return hc_test_summary("test_dump");
}
