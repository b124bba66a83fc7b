/* The small helpers every pure C module shares, in one place: error text in a caller's buffer,
 * the monotonic clock, a copy of a string that may be NULL, arithmetic that saturates. No Ruby. */
#ifndef HC_UTIL_H
#define HC_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The pure C modules report failures as text in a caller's buffer (char *err, size_t errlen):
 * what was being done and why it failed. printf into err (always NUL-terminated, truncated to
 * errlen); does nothing when err is NULL or errlen is 0. */
void hc_errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* CLOCK_MONOTONIC, for every timeout and duration. */
int64_t hc_now_ms(void);
uint64_t hc_now_ns(void);
/* CPU time the calling thread has used so far, in ns (0 when unknown). */
uint64_t hc_thread_cpu_ns(void);
/* How often the calling thread has waited so far (voluntary context switches: a read, a write or a
 * lock that blocked); 0 when unknown. */
uint64_t hc_thread_waits(void);

/* a x b, or UINT64_MAX when that does not fit (a sampled site's figures scaled by its weights). */
static inline uint64_t hc_mul_sat(uint64_t a, uint64_t b)
{
    uint64_t p;
    return __builtin_mul_overflow(a, b, &p) ? UINT64_MAX : p;
}

/* a + b, or UINT64_MAX when that does not fit. */
static inline uint64_t hc_add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* strdup(s), or NULL when s is NULL (so is the result when out of memory: check s first). */
char *hc_strdup_or_null(const char *s);

/* A growable text buffer, always NUL-terminated once written to. Out of memory sets oom and makes
 * every later call a no-op, so a caller checks once at the end (hc_sbuf_take gives NULL). */
typedef struct {
    char *data;
    size_t len, cap;
    int oom;
} hc_sbuf;

void hc_sbuf_append(hc_sbuf *b, const char *src, size_t n);
void hc_sbuf_puts(hc_sbuf *b, const char *s);
void hc_sbuf_putc(hc_sbuf *b, char c);
void hc_sbuf_printf(hc_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the text over (an empty string when nothing was appended); NULL when memory ran out. */
char *hc_sbuf_take(hc_sbuf *b);
/* Frees the text and empties b, ready to be appended to again. */
void hc_sbuf_free(hc_sbuf *b);

/* Large arrays that grow by doubling (a dump's graph): mapped from the system, never through
 * malloc. Growing one moves no bytes (mremap), and what is freed goes back at once. Through malloc,
 * a thread's arena keeps such arrays while they are under glibc's mmap threshold, which rises as
 * big blocks are freed (to 32 MB), and each doubling there leaves the old copy behind as free space
 * (doc/figures.md). p NULL: a new array; new_bytes 0: freed
 * (NULL returned). NULL when it cannot be had (p is then kept). The contents are kept, and new
 * bytes are zero. */
void *hc_big_resize(void *p, size_t old_bytes, size_t new_bytes);
void hc_big_free(void *p, size_t bytes);

#endif
