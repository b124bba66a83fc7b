/* A dump's summary (heap_summary.h) tallied on a thread of its own, fed the stored ndjson as the
 * dump streams: the pump (dump_stream.c) copies its bytes into blocks and hands each full one over,
 * so scanning the dump costs the pump a memcpy, and the scan runs on another CPU beside dump_all
 * and the compressor. Memory: HC_SUMMARY_FEED_BLOCKS x HC_SUMMARY_FEED_BLOCK_BYTES, and the maps.
 * The writer waits when every block is full (the summary is exact, so nothing is dropped). Pure C:
 * no Ruby, no lock held at a fork (the dump child makes its own). */
#ifndef HC_HEAP_SUMMARY_FEED_H
#define HC_HEAP_SUMMARY_FEED_H

#include "heap_summary.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define HC_SUMMARY_FEED_BLOCKS 8
#define HC_SUMMARY_FEED_BLOCK_BYTES (512 * 1024)

typedef struct {
    unsigned char *data;
    size_t len;
} hc_feed_block;

typedef struct {
    hc_summary summary;
    hc_feed_block blocks[HC_SUMMARY_FEED_BLOCKS];
    size_t head, full;      /* the consumer's next block, and how many blocks wait for it */
    size_t fill;            /* the block the writer fills: (head + full) % HC_SUMMARY_FEED_BLOCKS */
    int closed;             /* no more blocks: the thread ends once it has taken the last */
    pthread_mutex_t mu;
    pthread_cond_t more, room;
    pthread_t thread;
    int started;
    uint64_t cpu_ns;        /* the summary thread's CPU time */
} hc_summary_feed;

/* 0, or -1 with err set (out of memory, no thread). */
int hc_summary_feed_start(hc_summary_feed *f, char *err, size_t errlen);
/* The next stored bytes (lines split anywhere). Waits while every block is full. */
void hc_summary_feed_write(hc_summary_feed *f, const void *buf, size_t len);
/* Hands over the last block and waits for the thread: f->summary is then complete (its failed
 * flag says whether it ran out of memory). Safe to call once started, once. */
void hc_summary_feed_finish(hc_summary_feed *f);
/* Ends a feed that was started and not finished, and frees it all (the summary too). */
void hc_summary_feed_free(hc_summary_feed *f);

#endif
