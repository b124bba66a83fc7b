/* The small helpers every pure C module shares, in one place: error text in a caller's buffer,
 * the monotonic clock, a copy of a string that may be NULL. No Ruby. */
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

/* strdup(s), or NULL when s is NULL (so is the result when out of memory: check s first). */
char *hc_strdup_or_null(const char *s);

#endif
