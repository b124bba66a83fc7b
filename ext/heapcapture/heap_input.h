/* A stored dump opened to be read back: plain ndjson, gzip, or either inside an age file
 * (age.h), told apart by the first bytes. An age file is decrypted as it is read: a thread
 * reads the file into the age reader, whose plaintext goes through a socket pair to the reading side
 * (zlib's gzdopen, or the bytes as they are), so the plaintext is never held whole nor written
 * anywhere, and memory stays bounded (the age reader's chunks, a piece of the file, zlib's buffers).
 * What was read counts only once close says it was whole and authentic: it reports the
 * decryption's failure (a wrong identity, a file cut short or altered) before what zlib saw of it.
 * Pure C: no Ruby. */
#ifndef HC_HEAP_INPUT_H
#define HC_HEAP_INPUT_H

#include "age.h"

#include <pthread.h>
#include <stddef.h>
#include <zlib.h>

/* The identities an age-encrypted dump is read with; NULL or n == 0: none (such a dump is refused,
 * with what to set). */
typedef struct {
    const hc_age_identity *ids;
    size_t n;
} hc_dump_keys;

/* Fields are the module's own. */
typedef struct {
    const char *path;
    int fd;                 /* the file (the decrypting thread's, while it runs) */
    int in_fd;              /* what is read: the file, or the socket pair's reading end */
    gzFile gz;              /* decompressing what is read, or NULL: the bytes as they are */
    int read_errno;         /* a read of in_fd that failed (not decompressing) */
    int read_failed;        /* a read returned -1 */
    int encrypted;
    int out_fd;             /* the socket pair's writing end (the thread's) */
    pthread_t thread;
    int started;
    int abandoned;          /* the thread stopped because the reading side had closed */
    int rc;                 /* the thread's: 0 when the file was whole and authentic */
    hc_age_reader age;
    char err[512];          /* the thread's failure */
} hc_dump_input;

/* Opens path to read. decompress: gzip is decompressed (plain text passes as it is); 0: the bytes
 * as stored, decrypted when the file is an age file. 0, or -1 with err set: a file that cannot be
 * opened, an age file and no identity ("PATH is age-encrypted; set HEAPCAPTURE_IDENTITY ..."). */
int hc_dump_input_open(hc_dump_input *in, const char *path, const hc_dump_keys *keys, int decompress, char *err,
                       size_t errlen);
/* Up to len bytes into buf: how many, 0 at the end, -1 when reading failed (close says why). */
long hc_dump_input_read(hc_dump_input *in, void *buf, size_t len);
/* Closes, and says whether what was read is all there is and authentic: 0, or -1 with err set: the
 * decryption's failure first, then a gzip stream cut short or damaged, a read that failed. Stopping
 * before the end is no failure of its own. *gzipped (may be NULL): whether the dump was gzip. */
int hc_dump_input_close(hc_dump_input *in, int *gzipped, char *err, size_t errlen);

#endif
