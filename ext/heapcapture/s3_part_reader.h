/* Reads and hashes the parts of a file ahead of the sender, in a background thread. Pure C: no
 * Ruby, no curl.
 *
 * The multipart upload signs each part with its SHA-256 and sends its MD5 (Content-MD5: S3 stores
 * no part whose bytes do not match), so a part must be read and hashed before
 * its request can start. Doing that in the thread that drives the transfers would stall every
 * other transfer for the time it takes (about a quarter of the time on a fast link); this reader
 * keeps nbufs part buffers and fills the free ones in order while the parts in flight are sent.
 * Memory: nbufs × part_size, allocated as they are first used. */
#ifndef HC_S3_PART_READER_H
#define HC_S3_PART_READER_H

#include "s3_growing_file.h"
#include "sigv4.h"

#include <stddef.h>

typedef struct hc_part_reader hc_part_reader;

typedef struct {
    const unsigned char *data;  /* valid until hc_part_reader_give_back(index) */
    long long len;
    long long offset;
    long number;                /* 1-based */
    char sha256[65];            /* lower-case hex */
    char md5[HC_MD5_BASE64_LEN]; /* base64, for Content-MD5 */
    int index;                  /* the buffer, to give back */
} hc_part;

enum {
    HC_PART_FAILED = -1,        /* reading failed: the message is in err */
    HC_PART_PENDING = 0,        /* no part is ready yet: wait for notify */
    HC_PART_READY = 1,          /* *part is filled */
    HC_PART_ALL_TAKEN = 2       /* every part has been handed out */
};

/* Starts reading fd (size bytes, split in part_size parts). notify(arg) is called from the reader
 * thread each time a part becomes ready or reading fails; it must be thread-safe and quick.
 * Returns NULL with a message in err when out of memory or no thread can be made. path is only
 * for messages. */
hc_part_reader *hc_part_reader_start(int fd, const char *path, long long size, long part_size, int nbufs,
                                     void (*notify)(void *arg), void *arg, char *err, size_t errlen);

/* The same for a file that is still being written: each part is read once the file holds all of
 * it (or its writer has finished; the last part is then whatever is left). The number of parts
 * is known once the writer has finished; a writer's failure fails the reader with its message.
 * Never more than HC_PART_MAX parts: a file that outgrows them fails with a message naming
 * part_size. grow must outlive the reader. */
#define HC_PART_MAX 10000 /* S3's limit on the parts of one upload */
hc_part_reader *hc_part_reader_start_growing(int fd, const char *path, const hc_growing_file *grow, long part_size,
                                             int nbufs, void (*notify)(void *arg), void *arg, char *err,
                                             size_t errlen);

/* Hands out the next ready part (the lowest-numbered). */
int hc_part_reader_take(hc_part_reader *r, hc_part *part, char *err, size_t errlen);

/* Returns a part's buffer for reuse once its upload has succeeded. */
void hc_part_reader_give_back(hc_part_reader *r, int index);

/* Stops the thread (after the part it is reading, if any), waits for it and frees everything. */
void hc_part_reader_stop(hc_part_reader *r);

/* The number of parts, and the file's size: -1 while a growing file's writer has not finished. */
long hc_part_reader_count(hc_part_reader *r);
long long hc_part_reader_size(hc_part_reader *r);

#endif
