/* A stored dump read back into a summary (heap_summary.h): gzip or plain (zlib's gzread reads
 * both), either inside an age file (heap_input.h decrypts it as it is read), in 1 MB pieces, never
 * held whole, scanned on a thread of its own (heap_summary_feed.h) while the next piece is decompressed.
 * A plain file read into two summaries is read by each summary's thread for itself. Pure C: no
 * Ruby. */
#ifndef HC_HEAP_READ_H
#define HC_HEAP_READ_H

#include "heap_summary.h"
#include "heap_input.h"

#include <stddef.h>
#include <stdint.h>

/* Every line of path into s (its filter applies); an age-encrypted file is read with keys (NULL:
 * none, and such a file is refused saying what to set). 0, or -1 with err saying why: a file that
 * cannot be read, an age file not for these keys, cut short or altered, a gzip stream cut short or
 * damaged, out of memory. *bytes: the decompressed bytes read; *gzipped: whether the dump was gzip. */
int hc_dump_read_file(const char *path, const hc_dump_keys *keys, hc_summary *s, uint64_t *bytes, int *gzipped,
                      char *err, size_t errlen);

/* Work on a summary once its last line is in, before the read returns: on the thread that read it
 * when it had one to itself (a plain file into two summaries), beside the other's reading, else on
 * the caller's once the read is done. Not called for a summary that ran out of memory, nor when
 * reading failed before it ended. */
typedef struct {
    void (*fn)(void *arg, hc_summary *s);
    void *arg;
} hc_dump_then;

/* The same into count summaries at once (1 to HC_DUMP_READ_MAX_SUMMARIES), each fed every line on a
 * thread of its own: one read of the file for two tallies (a diff's whole dump and its new objects).
 * then: count entries (a NULL fn: nothing), or NULL. */
#define HC_DUMP_READ_MAX_SUMMARIES 2
int hc_dump_read_file_into(const char *path, const hc_dump_keys *keys, hc_summary *const *s, size_t count,
                           const hc_dump_then *then, uint64_t *bytes, int *gzipped, char *err, size_t errlen);

#endif
