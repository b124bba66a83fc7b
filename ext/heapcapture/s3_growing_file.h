/* A file that its writer (another process or thread) is still writing, as a reader sees it. The
 * writer's side implements wait(); readers (the S3 part reader) call it from their own thread.
 * Pure C: no Ruby. */
#ifndef HC_S3_GROWING_FILE_H
#define HC_S3_GROWING_FILE_H

#include <stddef.h>

typedef struct {
    /* Waits at most timeout_ms until the file holds at least `need` bytes or its writer has
     * finished. Sets *size to the bytes written so far and *final to 1 once the writer has
     * finished (*size is then the whole file). Returns 0 (also on a timeout: compare *size with
     * need), or -1 with `why` set when the writer failed: the file will never be complete. */
    int (*wait)(void *ctx, long long need, int timeout_ms, long long *size, int *final, char *why, size_t whylen);
    void *ctx;
} hc_growing_file;

#endif
