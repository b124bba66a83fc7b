#define _GNU_SOURCE /* mremap */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

void hc_errorf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint64_t hc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t hc_thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t hc_thread_waits(void)
{
#ifdef RUSAGE_THREAD
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0 && ru.ru_nvcsw > 0) return (uint64_t)ru.ru_nvcsw;
#endif
    return 0;
}

int64_t hc_now_ms(void)
{
    return (int64_t)(hc_now_ns() / 1000000ull);
}

char *hc_strdup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- the growable text buffer (util.h) ---- */

void hc_sbuf_append(hc_sbuf *b, const char *src, size_t n)
{
    if (b->oom) return;
    if (n > SIZE_MAX - b->len - 1) { b->oom = 1; return; }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *data = realloc(b->data, cap);
        if (!data) { b->oom = 1; return; }
        b->data = data;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, src, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void hc_sbuf_puts(hc_sbuf *b, const char *s) { hc_sbuf_append(b, s, strlen(s)); }
void hc_sbuf_putc(hc_sbuf *b, char c) { hc_sbuf_append(b, &c, 1); }

void hc_sbuf_printf(hc_sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        hc_sbuf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    hc_sbuf_append(b, big, (size_t)n);
    free(big);
}

char *hc_sbuf_take(hc_sbuf *b)
{
    if (!b->oom && !b->data) hc_sbuf_append(b, "", 0);
    if (b->oom) { free(b->data); b->data = NULL; return NULL; }
    char *s = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

void hc_sbuf_free(hc_sbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b); /* empty again: ready for reuse */
}

#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer (the C tests), through malloc, so that it checks every access. */
void *hc_big_resize(void *p, size_t old_bytes, size_t new_bytes)
{
    if (new_bytes == 0) {
        free(p);
        return NULL;
    }
    unsigned char *q = realloc(p, new_bytes);
    if (q && new_bytes > old_bytes) memset(q + old_bytes, 0, new_bytes - old_bytes);
    return q;
}

void hc_big_free(void *p, size_t bytes)
{
    (void)bytes;
    free(p);
}
#else
static size_t hc_page_round(size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return bytes > SIZE_MAX - page ? 0 : (bytes + page - 1) / page * page;
}

void *hc_big_resize(void *p, size_t old_bytes, size_t new_bytes)
{
    size_t o = hc_page_round(old_bytes), n = hc_page_round(new_bytes);
    if (new_bytes == 0) {
        hc_big_free(p, old_bytes);
        return NULL;
    }
    if (n == 0) return NULL; /* past what can be mapped */
    if (!p) {
        void *q = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return q == MAP_FAILED ? NULL : q;
    }
    if (n == o) return p;
    void *q = mremap(p, o, n, MREMAP_MAYMOVE);
    return q == MAP_FAILED ? NULL : q;
}

void hc_big_free(void *p, size_t bytes)
{
    if (p && bytes) munmap(p, hc_page_round(bytes));
}
#endif
