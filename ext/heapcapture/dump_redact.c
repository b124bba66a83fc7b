/* Redacting strings' contents in a dump_all stream (see dump_redact.h). The record is found by
 * dump_all's own fixed layout ({"address":"0x..", "type":"STRING", ... "value":"..." ...}), as the
 * annotator finds its places: a JSON parser would re-encode every line. */
#define _GNU_SOURCE /* memmem */
#include "dump_redact.h"
#include "util_sodium.h"
#include "util.h"

#include <string.h>
#ifdef HC_HAVE_SODIUM
#include <sodium.h>
#endif

#define HC_STRING_RECORD "{\"address\":\"0x"
#define HC_STRING_TYPE ", \"type\":\"STRING\""
#define HC_VALUE_KEY ", \"value\":\""

int hc_redact_available(void) { return hc_sodium_available(); }

int hc_redactor_init(hc_redactor *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (hc_sodium_ready("redacting strings", "redacting strings: this build of heapcapture has no libsodium (install "
                        "libsodium-dev, Homebrew: libsodium, then reinstall the gem)", err, errlen) != 0)
        return -1;
#ifdef HC_HAVE_SODIUM
    randombytes_buf(r->key, sizeof r->key);
    r->ready = 1;
#endif
    return 0;
}

void hc_redactor_wipe(hc_redactor *r)
{
#ifdef HC_HAVE_SODIUM
    sodium_memzero(r->key, sizeof r->key);
#else
    memset(r->key, 0, sizeof r->key);
#endif
    r->ready = 0;
}

int hc_redact_span(const char *line, size_t len, size_t *from, size_t *to)
{
    size_t plen = sizeof HC_STRING_RECORD - 1;
    if (len <= plen || memcmp(line, HC_STRING_RECORD, plen) != 0) return 0;
    const char *end = line + len;
    const char *q = memchr(line + plen, '"', len - plen); /* the address's closing quote */
    if (!q || (size_t)(end - q - 1) < sizeof HC_STRING_TYPE - 1 ||
        memcmp(q + 1, HC_STRING_TYPE, sizeof HC_STRING_TYPE - 1) != 0)
        return 0;
    const char *rest = q + 1 + sizeof HC_STRING_TYPE - 1;
    const char *v = memmem(rest, (size_t)(end - rest), HC_VALUE_KEY, sizeof HC_VALUE_KEY - 1);
    if (!v) return 0;
    const char *p = v + sizeof HC_VALUE_KEY - 1;
    *from = (size_t)(p - line);
    while (p < end && *p != '"') p += *p == '\\' && p + 1 < end ? 2 : 1;
    *to = (size_t)((p < end ? p : end) - line);
    return 1;
}

void hc_redact_text(const hc_redactor *r, const char *value, size_t len, char *out)
{
    unsigned char digest[HC_REDACT_DIGEST_BYTES];
#ifdef HC_HAVE_SODIUM
    crypto_generichash(digest, sizeof digest, (const unsigned char *)value, len, r->key, sizeof r->key);
#else
    (void)r, (void)value, (void)len;
    memset(digest, 0, sizeof digest); /* unreachable: hc_redactor_init fails first */
#endif
    static const char hex[] = "0123456789abcdef";
    size_t n = sizeof HC_REDACT_PREFIX - 1;
    memcpy(out, HC_REDACT_PREFIX, n);
    for (size_t i = 0; i < sizeof digest; i++) {
        out[n++] = hex[digest[i] >> 4];
        out[n++] = hex[digest[i] & 15];
    }
}
