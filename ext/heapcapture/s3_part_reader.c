/* The part reader: one thread, a few buffers, a mutex and a condition variable. See the header. */
#include "s3_part_reader.h"
#include "sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

enum { HC_BUF_FREE, HC_BUF_READING, HC_BUF_READY, HC_BUF_TAKEN };

typedef struct {
    unsigned char *data;
    long long len, offset;
    long number;
    char sha256[65];
    char md5[HC_MD5_BASE64_LEN];
    int state;
} hc_part_buf;

#define HC_GROW_POLL_MS 25 /* how often a reader waiting on a growing file checks for a stop */

struct hc_part_reader {
    int fd;
    char *path;
    const hc_growing_file *grow; /* NULL: the file is complete */
    long long size;              /* -1 until a growing file's writer has finished */
    long part_size, nparts;      /* nparts: LONG_MAX until the size is known */
    hc_part_buf *bufs;
    int nbufs;
    long next_read;            /* the next part number to read */
    long handed;               /* parts handed out so far */
    int stop, failed;
    char err[512];
    void (*notify)(void *);
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    hc_body_hash *hash;        /* the reader thread's */
};

enum { HC_FILL_FAILED = -1, HC_FILL_OK = 0, HC_FILL_PAST_END = 1, HC_FILL_STOPPED = 2 };

/* A growing file: waits until part `number` is all written, or the writer has finished (then
 * records the size and the number of parts). Sets *len to the part's length. */
static int hc_part_await(hc_part_reader *r, long number, long long offset, long long *len, char *why, size_t whylen)
{
    if (number > HC_PART_MAX) {
        snprintf(why, whylen, "cannot upload %s: it grew past %d parts of %ld bytes, S3's limit for one upload; "
                 "set a larger part_size (HeapCapture.configure { |c| c.part_size = ... })", r->path, HC_PART_MAX,
                 r->part_size);
        return HC_FILL_FAILED;
    }
    for (;;) {
        if (__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST)) return HC_FILL_STOPPED;
        long long size = 0;
        int final = 0;
        char because[400] = "";
        if (r->grow->wait(r->grow->ctx, offset + r->part_size, HC_GROW_POLL_MS, &size, &final, because,
                          sizeof because) != 0) {
            snprintf(why, whylen, "%s", because);
            return HC_FILL_FAILED;
        }
        if (final) {
            pthread_mutex_lock(&r->lock);
            r->size = size;
            r->nparts = (long)((size + r->part_size - 1) / r->part_size);
            pthread_mutex_unlock(&r->lock);
            if (size <= offset) return HC_FILL_PAST_END;
        }
        if (size >= offset + r->part_size || final) {
            *len = size - offset < r->part_size ? size - offset : r->part_size;
            return HC_FILL_OK;
        }
    }
}

/* Reads one part into b (allocating its buffer the first time): HC_FILL_OK, or why it did not. */
static int hc_part_fill(hc_part_reader *r, hc_part_buf *b, long number, char *why, size_t whylen)
{
    b->number = number;
    b->offset = (long long)(number - 1) * r->part_size;
    if (r->grow) {
        int rc = hc_part_await(r, number, b->offset, &b->len, why, whylen);
        if (rc != HC_FILL_OK) return rc;
    } else {
        b->len = r->size - b->offset < r->part_size ? r->size - b->offset : r->part_size;
    }
    if (!b->data) {
        b->data = malloc((size_t)r->part_size);
        if (!b->data) {
            snprintf(why, whylen, "cannot upload %s: out of memory for a %ld-byte part buffer", r->path,
                     r->part_size);
            return HC_FILL_FAILED;
        }
    }
    for (long long pos = 0; pos < b->len;) {
        ssize_t got = pread(r->fd, b->data + pos, (size_t)(b->len - pos), (off_t)(b->offset + pos));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            hc_body_hash_final(r->hash, b->sha256, b->md5); /* starts afresh for the next part */
            snprintf(why, whylen, "cannot upload %s: reading part %ld failed: %s", r->path, number,
                     got < 0 ? strerror(errno) : "the file became shorter while it was uploaded");
            return HC_FILL_FAILED;
        }
        hc_body_hash_update(r->hash, b->data + pos, (size_t)got);
        pos += got;
    }
    if (hc_body_hash_final(r->hash, b->sha256, b->md5) != 0) {
        snprintf(why, whylen, "cannot upload %s: hashing part %ld failed (libcrypto: out of memory?)", r->path, number);
        return HC_FILL_FAILED;
    }
    return HC_FILL_OK;
}

static int hc_part_free_buf(hc_part_reader *r)
{
    for (int i = 0; i < r->nbufs; i++) {
        if (r->bufs[i].state == HC_BUF_FREE) return i;
    }
    return -1;
}

static void *hc_part_reader_main(void *arg)
{
    hc_part_reader *r = arg;
    char why[512];
    pthread_mutex_lock(&r->lock);
    for (;;) {
        int i;
        while (!r->stop && r->next_read <= r->nparts && (i = hc_part_free_buf(r)) < 0)
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->stop || r->next_read > r->nparts) break;
        long number = r->next_read++;
        r->bufs[i].state = HC_BUF_READING;
        pthread_mutex_unlock(&r->lock);

        int rc = hc_part_fill(r, &r->bufs[i], number, why, sizeof why);

        pthread_mutex_lock(&r->lock);
        if (rc == HC_FILL_OK) {
            r->bufs[i].state = HC_BUF_READY;
        } else {
            r->bufs[i].state = HC_BUF_FREE;
            if (rc == HC_FILL_FAILED) {
                r->failed = 1;
                snprintf(r->err, sizeof r->err, "%s", why);
            }
        }
        pthread_mutex_unlock(&r->lock);
        if (rc != HC_FILL_STOPPED) r->notify(r->arg); /* past the end: the count is known now */
        pthread_mutex_lock(&r->lock);
        if (rc != HC_FILL_OK) break;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Frees what the reader holds; synced: its lock and condition were made. */
static void hc_part_reader_free(hc_part_reader *r, int synced)
{
    if (synced) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
    }
    for (int i = 0; r->bufs && i < r->nbufs; i++) free(r->bufs[i].data);
    hc_body_hash_free(r->hash);
    free(r->bufs);
    free(r->path);
    free(r);
}

static hc_part_reader *hc_part_reader_new(int fd, const char *path, const hc_growing_file *grow, long long size,
                                          long part_size, int nbufs, void (*notify)(void *arg), void *arg, char *err,
                                          size_t errlen)
{
    if (part_size <= 0 || nbufs <= 0 || (!grow && size <= 0)) {
        snprintf(err, errlen, "cannot upload %s in parts: bad part size %ld, %d buffers or size %lld", path,
                 part_size, nbufs, size);
        return NULL;
    }
    hc_part_reader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "cannot upload %s: out of memory", path);
        return NULL;
    }
    r->fd = fd;
    r->path = strdup(path);
    r->grow = grow;
    r->size = grow ? -1 : size;
    r->part_size = part_size;
    r->nparts = grow ? LONG_MAX : (long)((size + part_size - 1) / part_size);
    r->nbufs = nbufs < r->nparts ? nbufs : (int)r->nparts;
    r->bufs = calloc((size_t)r->nbufs, sizeof *r->bufs);
    r->next_read = 1;
    r->notify = notify;
    r->arg = arg;
    r->hash = hc_body_hash_new();
    if (!r->path || !r->bufs || !r->hash) {
        snprintf(err, errlen, "cannot upload %s: out of memory", path);
        hc_part_reader_free(r, 0);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    int rc = pthread_create(&r->thread, NULL, hc_part_reader_main, r);
    if (rc != 0) {
        snprintf(err, errlen, "cannot upload %s: starting the part reader thread failed: %s", path, strerror(rc));
        hc_part_reader_free(r, 1);
        return NULL;
    }
    return r;
}

hc_part_reader *hc_part_reader_start(int fd, const char *path, long long size, long part_size, int nbufs,
                                     void (*notify)(void *arg), void *arg, char *err, size_t errlen)
{
    return hc_part_reader_new(fd, path, NULL, size, part_size, nbufs, notify, arg, err, errlen);
}

hc_part_reader *hc_part_reader_start_growing(int fd, const char *path, const hc_growing_file *grow, long part_size,
                                             int nbufs, void (*notify)(void *arg), void *arg, char *err,
                                             size_t errlen)
{
    return hc_part_reader_new(fd, path, grow, -1, part_size, nbufs, notify, arg, err, errlen);
}

int hc_part_reader_take(hc_part_reader *r, hc_part *part, char *err, size_t errlen)
{
    int result = HC_PART_PENDING;
    pthread_mutex_lock(&r->lock);
    if (r->failed) {
        snprintf(err, errlen, "%s", r->err);
        result = HC_PART_FAILED;
    } else if (r->handed == r->nparts) {
        result = HC_PART_ALL_TAKEN;
    } else {
        int best = -1;
        for (int i = 0; i < r->nbufs; i++) {
            if (r->bufs[i].state == HC_BUF_READY && (best < 0 || r->bufs[i].number < r->bufs[best].number)) best = i;
        }
        if (best >= 0) {
            hc_part_buf *b = &r->bufs[best];
            b->state = HC_BUF_TAKEN;
            r->handed++;
            part->data = b->data;
            part->len = b->len;
            part->offset = b->offset;
            part->number = b->number;
            memcpy(part->sha256, b->sha256, sizeof part->sha256);
            memcpy(part->md5, b->md5, sizeof part->md5);
            part->index = best;
            result = HC_PART_READY;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return result;
}

void hc_part_reader_give_back(hc_part_reader *r, int index)
{
    pthread_mutex_lock(&r->lock);
    if (index >= 0 && index < r->nbufs && r->bufs[index].state == HC_BUF_TAKEN) {
        r->bufs[index].state = HC_BUF_FREE;
        pthread_cond_signal(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
}

long hc_part_reader_count(hc_part_reader *r)
{
    pthread_mutex_lock(&r->lock);
    long n = r->nparts == LONG_MAX ? -1 : r->nparts;
    pthread_mutex_unlock(&r->lock);
    return n;
}

long long hc_part_reader_size(hc_part_reader *r)
{
    pthread_mutex_lock(&r->lock);
    long long size = r->size;
    pthread_mutex_unlock(&r->lock);
    return size;
}

void hc_part_reader_stop(hc_part_reader *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    __atomic_store_n(&r->stop, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    hc_part_reader_free(r, 1);
}
