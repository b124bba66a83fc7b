/* A minimal assertion kit for the pure C modules' tests: each failed check prints where and why,
 * and hc_test_summary() prints "N passed, N failed" and gives the exit code. */
#ifndef HC_TEST_H
#define HC_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hc_test_passed, hc_test_failed;

#define HC_CHECK(cond, ...) do { \
    if (cond) { hc_test_passed++; } \
    else { hc_test_failed++; fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
           fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

#define HC_CHECK_STR(got, want, what) do { \
    const char *hc_g_ = (got), *hc_w_ = (want); \
    HC_CHECK(hc_g_ && hc_w_ && strcmp(hc_g_, hc_w_) == 0, "%s:\n--- got\n%s\n--- want\n%s", (what), \
             hc_g_ ? hc_g_ : "(null)", hc_w_ ? hc_w_ : "(null)"); \
} while (0)

/* The next of a xorshift sequence (*state: not 0), for tests that need noise, the same each run. */
static inline uint32_t hc_test_xorshift(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* len bytes of xorshift noise (malloc'd; at least 1 byte allocated), the same for the same seed. */
static inline unsigned char *hc_test_random_bytes(size_t len, unsigned seed)
{
    unsigned char *buf = malloc(len ? len : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)hc_test_xorshift(&x);
    return buf;
}

static int hc_test_summary(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, hc_test_passed, hc_test_failed);
    return hc_test_failed == 0 ? 0 : 1;
}

/* Output collected from a writer callback (the annotator's emit): NUL-terminated, realloc'd. */
typedef struct {
    char *data;
    size_t len, cap;
} hc_test_out;

static inline int hc_test_collect(void *arg, const void *buf, size_t len, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    hc_test_out *o = arg;
    if (o->len + len + 1 > o->cap) {
        o->cap = (o->len + len + 1) * 2;
        o->data = realloc(o->data, o->cap);
        if (!o->data) abort();
    }
    memcpy(o->data + o->len, buf, len);
    o->len += len;
    o->data[o->len] = '\0';
    return 0;
}

#endif
