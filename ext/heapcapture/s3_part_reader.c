/* The part reader: one thread, a few buffers, a mutex and a condition variable. See the header. */
#include "s3_part_reader.h"
#include "sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { HC_BUF_FREE, HC_BUF_READING, HC_BUF_READY, HC_BUF_TAKEN };

typedef struct {
    unsigned char *data;
    long long len, offset;
    long number;
    char sha256[65];
    int state;
} hc_part_buf;

struct hc_part_reader {
    int fd;
    char *path;
    long long size;
    long part_size, nparts;
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
};

/* Reads one part into b (allocating its buffer the first time). Returns 0 or -1 with why. */
static int hc_part_fill(hc_part_reader *r, hc_part_buf *b, long number, char *why, size_t whylen)
{
    b->number = number;
    b->offset = (long long)(number - 1) * r->part_size;
    b->len = r->size - b->offset < r->part_size ? r->size - b->offset : r->part_size;
    if (!b->data) {
        b->data = malloc((size_t)r->part_size);
        if (!b->data) {
            snprintf(why, whylen, "cannot upload %s: out of memory for a %ld-byte part buffer", r->path,
                     r->part_size);
            return -1;
        }
    }
    for (long long pos = 0; pos < b->len;) {
        ssize_t got = pread(r->fd, b->data + pos, (size_t)(b->len - pos), (off_t)(b->offset + pos));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            snprintf(why, whylen, "cannot upload %s: reading part %ld failed: %s", r->path, number,
                     got < 0 ? strerror(errno) : "the file became shorter while it was uploaded");
            return -1;
        }
        pos += got;
    }
    hc_sha256_hex(b->data, (size_t)b->len, b->sha256);
    return 0;
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
        if (rc != 0) {
            r->bufs[i].state = HC_BUF_FREE;
            r->failed = 1;
            snprintf(r->err, sizeof r->err, "%s", why);
        } else {
            r->bufs[i].state = HC_BUF_READY;
        }
        pthread_mutex_unlock(&r->lock);
        r->notify(r->arg);
        pthread_mutex_lock(&r->lock);
        if (rc != 0) break;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

hc_part_reader *hc_part_reader_start(int fd, const char *path, long long size, long part_size, int nbufs,
                                     void (*notify)(void *arg), void *arg, char *err, size_t errlen)
{
    if (part_size <= 0 || nbufs <= 0 || size <= 0) {
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
    r->size = size;
    r->part_size = part_size;
    r->nparts = (long)((size + part_size - 1) / part_size);
    r->nbufs = nbufs < r->nparts ? nbufs : (int)r->nparts;
    r->bufs = calloc((size_t)r->nbufs, sizeof *r->bufs);
    r->next_read = 1;
    r->notify = notify;
    r->arg = arg;
    if (!r->path || !r->bufs) {
        snprintf(err, errlen, "cannot upload %s: out of memory", path);
        free(r->path);
        free(r->bufs);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    int rc = pthread_create(&r->thread, NULL, hc_part_reader_main, r);
    if (rc != 0) {
        snprintf(err, errlen, "cannot upload %s: starting the part reader thread failed: %s", path, strerror(rc));
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r->path);
        free(r->bufs);
        free(r);
        return NULL;
    }
    return r;
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

long hc_part_reader_count(const hc_part_reader *r)
{
    return r->nparts;
}

void hc_part_reader_stop(hc_part_reader *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    for (int i = 0; i < r->nbufs; i++) free(r->bufs[i].data);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r->bufs);
    free(r->path);
    free(r);
}
