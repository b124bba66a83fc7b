/* The pure C modules report failures as text in a caller's buffer (char *err, size_t errlen):
 * what was being done and why it failed. One formatter for all of them. */
#ifndef HC_ERRBUF_H
#define HC_ERRBUF_H

#include <stddef.h>

/* printf into err (always NUL-terminated, truncated to errlen); does nothing when err is NULL
 * or errlen is 0. */
void hc_errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
