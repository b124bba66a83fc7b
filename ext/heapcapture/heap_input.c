/* A stored dump read back, decrypted and decompressed as it is read (see heap_input.h). */
#include "heap_input.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HC_DUMP_INPUT_PIECE (256 * 1024) /* what the decrypting thread reads at a time */
#define HC_DUMP_PEEK HC_AGE_FILE_PEEK

/* The age reader's plaintext, to the reading side. MSG_NOSIGNAL: a reader that stopped early makes
 * this EPIPE, not SIGPIPE. */
static int hc_dump_input_send(void *ctx, const void *buf, size_t len, char *err, size_t errlen)
{
    hc_dump_input *in = ctx;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(in->out_fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE) in->abandoned = 1;
            hc_errorf(err, errlen, "decrypting %s: handing on the plaintext: %s", in->path, strerror(errno));
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The decrypting thread: the file into the age reader, to its end; then the writing end is closed,
 * which the reading side sees as the end of the dump. */
static void *hc_dump_input_decrypt(void *arg)
{
    hc_dump_input *in = arg;
    char why[sizeof in->err];
    unsigned char *buf = malloc(HC_DUMP_INPUT_PIECE);
    in->rc = -1;
    if (!buf) hc_errorf(in->err, sizeof in->err, "decrypting %s: out of memory", in->path);
    while (buf) {
        ssize_t n = read(in->fd, buf, HC_DUMP_INPUT_PIECE);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            hc_errorf(in->err, sizeof in->err, "reading %s: %s", in->path, strerror(errno));
            break;
        }
        int rc = n == 0 ? hc_age_reader_finish(&in->age, hc_dump_input_send, in, why, sizeof why)
                        : hc_age_reader_feed(&in->age, buf, (size_t)n, hc_dump_input_send, in, why, sizeof why);
        if (rc != 0) {
            hc_errorf(in->err, sizeof in->err, "%s: %s", in->path, why); /* age.c's one sentence */
            break;
        }
        if (n == 0) {
            in->rc = 0;
            break;
        }
    }
    free(buf);
    close(in->out_fd);
    in->out_fd = -1;
    return NULL;
}

/* Starts decrypting the file with keys: in_fd is then the plaintext's. */
static int hc_dump_input_start(hc_dump_input *in, const hc_dump_keys *keys, char *err, size_t errlen)
{
    if (!keys || !keys->ids || keys->n == 0) {
        hc_errorf(err, errlen, "%s is age-encrypted; set HEAPCAPTURE_IDENTITY to the path of an age identity file "
                  "(age-keygen makes one) to read it", in->path);
        return -1;
    }
    char why[320];
    if (hc_age_reader_init(&in->age, keys->ids, keys->n, why, sizeof why) != 0) {
        hc_errorf(err, errlen, "%s: %s", in->path, why);
        return -1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        hc_errorf(err, errlen, "decrypting %s: creating a socket pair: %s", in->path, strerror(errno));
        return -1;
    }
    in->in_fd = sv[0];
    in->out_fd = sv[1];
    int prc = pthread_create(&in->thread, NULL, hc_dump_input_decrypt, in);
    if (prc != 0) {
        hc_errorf(err, errlen, "decrypting %s: starting its thread: %s", in->path, strerror(prc));
        return -1;
    }
    in->started = 1;
    return 0;
}

static void hc_dump_input_release(hc_dump_input *in)
{
    if (in->gz) {
        gzclose(in->gz); /* closes in_fd: a thread still writing gets EPIPE and stops */
        in->gz = NULL;
        in->in_fd = -1;
    }
    if (in->in_fd >= 0 && in->in_fd != in->fd) close(in->in_fd);
    in->in_fd = -1;
    if (in->started) pthread_join(in->thread, NULL);
    in->started = 0;
    if (in->out_fd >= 0) close(in->out_fd); /* a thread that never started */
    in->out_fd = -1;
    if (in->fd >= 0) close(in->fd);
    in->fd = -1;
    hc_age_reader_free(&in->age);
}

int hc_dump_input_open(hc_dump_input *in, const char *path, const hc_dump_keys *keys, int decompress, char *err,
                       size_t errlen)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    in->in_fd = in->out_fd = -1;
    in->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0) {
        hc_errorf(err, errlen, "reading %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char head[HC_DUMP_PEEK];
    ssize_t got = pread(in->fd, head, sizeof head, 0); /* -1 for a pipe: never an age file then */
    in->encrypted = got > 0 && hc_age_is_file(head, (size_t)got);
    in->in_fd = in->fd;
    if (in->encrypted && hc_dump_input_start(in, keys, err, errlen) != 0) {
        hc_dump_input_release(in);
        return -1;
    }
    if (!decompress) return 0;
    in->gz = gzdopen(in->in_fd, "rb");
    if (!in->gz) {
        hc_errorf(err, errlen, "reading %s: out of memory", path);
        hc_dump_input_release(in);
        return -1;
    }
    if (in->in_fd == in->fd) in->fd = -1; /* the gzFile's now */
    gzbuffer(in->gz, 256 * 1024);
    return 0;
}

long hc_dump_input_read(hc_dump_input *in, void *buf, size_t len)
{
    if (in->gz) {
        int n = gzread(in->gz, buf, len > (1u << 30) ? 1u << 30 : (unsigned)len);
        if (n < 0) in->read_failed = 1;
        return n;
    }
    for (;;) {
        ssize_t n = read(in->in_fd, buf, len);
        if (n >= 0) return (long)n;
        if (errno == EINTR) continue;
        in->read_errno = errno;
        in->read_failed = 1;
        return -1;
    }
}

int hc_dump_input_close(hc_dump_input *in, int *gzipped, char *err, size_t errlen)
{
    int zerr = Z_OK;
    char zwhy[256] = "";
    if (in->gz) {
        const char *zmsg = gzerror(in->gz, &zerr); /* a stream cut short: Z_BUF_ERROR, "unexpected end of file" */
        const char *why = zmsg && strrchr(zmsg, ':') ? strrchr(zmsg, ':') + 2 : zmsg; /* zlib puts the path first */
        snprintf(zwhy, sizeof zwhy, "%s", why && *why ? why : "an error");
        if (gzipped) *gzipped = !gzdirect(in->gz);
    } else if (gzipped) {
        *gzipped = 0;
    }
    int decompressing = in->gz != NULL;
    hc_dump_input_release(in);
    if (in->encrypted && in->rc != 0 && !in->abandoned) {
        hc_errorf(err, errlen, "%s", in->err);
        return -1;
    }
    if (decompressing && zerr == Z_BUF_ERROR) {
        hc_errorf(err, errlen, "%s is not a whole gzip file: it ends before its gzip stream does "
                  "(a download cut short? fetch it again)", in->path);
        return -1;
    }
    if (decompressing && (in->read_failed || zerr != Z_OK)) {
        hc_errorf(err, errlen, "%s is damaged: zlib cannot decompress it (%s)", in->path, zwhy);
        return -1;
    }
    if (in->read_failed) {
        hc_errorf(err, errlen, "reading %s: %s", in->path, strerror(in->read_errno));
        return -1;
    }
    return 0;
}
