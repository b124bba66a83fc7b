/* The summary's own thread (see heap_summary_feed.h): a fixed ring of blocks, one mutex, two
 * conditions; the lock is taken once per 512 KB block, not per write. */
#include "heap_summary_feed.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void *hc_summary_feed_main(void *arg)
{
    hc_summary_feed *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->full && !f->closed) pthread_cond_wait(&f->more, &f->mu);
        if (!f->full) break; /* closed, and every block taken */
        hc_feed_block *b = &f->blocks[f->head];
        pthread_mutex_unlock(&f->mu);
        hc_summary_write(&f->summary, b->data, b->len); /* a failure sets summary.failed; keep draining */
        pthread_mutex_lock(&f->mu);
        b->len = 0;
        f->head = (f->head + 1) % HC_SUMMARY_FEED_BLOCKS;
        f->full--;
        pthread_cond_signal(&f->room);
    }
    pthread_mutex_unlock(&f->mu);
    hc_summary_finish(&f->summary);
    f->cpu_ns = hc_thread_cpu_ns();
    return NULL;
}

int hc_summary_feed_start(hc_summary_feed *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    hc_summary_init(&f->summary);
    for (size_t i = 0; i < HC_SUMMARY_FEED_BLOCKS; i++) {
        f->blocks[i].data = malloc(HC_SUMMARY_FEED_BLOCK_BYTES);
        if (!f->blocks[i].data) {
            hc_summary_feed_free(f);
            hc_errorf(err, errlen, "summarizing the dump: out of memory for its %d blocks of %d KB",
                      HC_SUMMARY_FEED_BLOCKS, HC_SUMMARY_FEED_BLOCK_BYTES / 1024);
            return -1;
        }
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->more, NULL);
    pthread_cond_init(&f->room, NULL);
    int rc = pthread_create(&f->thread, NULL, hc_summary_feed_main, f);
    if (rc != 0) {
        hc_summary_feed_free(f);
        hc_errorf(err, errlen, "summarizing the dump: starting its thread: %s", strerror(rc));
        return -1;
    }
    f->started = 1;
    return 0;
}

/* Hands the block being filled to the thread; waits for a free one to fill next. */
static void hc_feed_hand_over(hc_summary_feed *f)
{
    pthread_mutex_lock(&f->mu);
    f->full++;
    f->fill = (f->fill + 1) % HC_SUMMARY_FEED_BLOCKS;
    pthread_cond_signal(&f->more);
    while (f->full == HC_SUMMARY_FEED_BLOCKS) pthread_cond_wait(&f->room, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

void hc_summary_feed_write(hc_summary_feed *f, const void *data, size_t len)
{
    const unsigned char *buf = data;
    while (len > 0) {
        hc_feed_block *b = &f->blocks[f->fill]; /* the writer's own until handed over */
        size_t n = HC_SUMMARY_FEED_BLOCK_BYTES - b->len;
        if (n > len) n = len;
        memcpy(b->data + b->len, buf, n);
        b->len += n;
        buf += n;
        len -= n;
        if (b->len == HC_SUMMARY_FEED_BLOCK_BYTES) hc_feed_hand_over(f);
    }
}

void hc_summary_feed_finish(hc_summary_feed *f)
{
    if (!f->started) return;
    pthread_mutex_lock(&f->mu);
    if (f->blocks[f->fill].len) {
        f->full++;
        f->fill = (f->fill + 1) % HC_SUMMARY_FEED_BLOCKS;
    }
    f->closed = 1;
    pthread_cond_signal(&f->more);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    f->started = 0;
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->more);
    pthread_cond_destroy(&f->room);
}

void hc_summary_feed_free(hc_summary_feed *f)
{
    hc_summary_feed_finish(f);
    for (size_t i = 0; i < HC_SUMMARY_FEED_BLOCKS; i++) {
        free(f->blocks[i].data);
        f->blocks[i].data = NULL;
    }
    hc_summary_free(&f->summary);
}
