/* Redaction of a dump_all stream's string contents: a STRING record's "value" is replaced by
 *   "value":"redacted:<32 hex digits>"
 * a keyed BLAKE2b digest (libsodium's crypto_generichash) of the value as dump_all wrote it, under
 * a random key made for one capture and never stored. Equal strings keep equal digests within the
 * dump (duplicate-string views still work), different dumps do not share them, and nothing of the
 * value can be recovered from the digest without the key. "bytesize", "memsize", flags and
 * references stay. Symbols, class and method names and file paths are not strings' contents and are
 * not redacted. Pure C: no Ruby; no locks and no allocation, so the dump child may call it. */
#ifndef HC_DUMP_REDACT_H
#define HC_DUMP_REDACT_H

#include <stddef.h>
#include <stdint.h>

#define HC_REDACT_KEY_BYTES 32
#define HC_REDACT_DIGEST_BYTES 16
#define HC_REDACT_PREFIX "redacted:"
/* The replacement's length: the prefix and the digest in hex. */
#define HC_REDACT_TEXT_LEN (sizeof HC_REDACT_PREFIX - 1 + 2 * HC_REDACT_DIGEST_BYTES)

typedef struct {
    unsigned char key[HC_REDACT_KEY_BYTES];
    int ready;
} hc_redactor;

/* 1 when this build can redact (it was linked with libsodium). */
int hc_redact_available(void);
/* A fresh random key: 0, or -1 with err set (no libsodium in this build, no randomness). */
int hc_redactor_init(hc_redactor *r, char *err, size_t errlen);
/* Wipes the key (the parent does so right after the fork: only the child needs it). */
void hc_redactor_wipe(hc_redactor *r);

/* For one complete dump_all line (no newline): 1 when it is a STRING record with a "value", the
 * value's bytes between its quotes being line[*from, *to); 0 otherwise. A value with no closing
 * quote (never written by dump_all) runs to the end of the line: *to == len. */
int hc_redact_span(const char *line, size_t len, size_t *from, size_t *to);

/* out (HC_REDACT_TEXT_LEN bytes, not NUL-terminated) gets "redacted:" and the hex digest of
 * value[0, len). */
void hc_redact_text(const hc_redactor *r, const char *value, size_t len, char *out);

#endif
