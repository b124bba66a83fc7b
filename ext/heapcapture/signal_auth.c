/* Signed signals and their replay cache (see signal_auth.h). */
#include "signal_auth.h"
#include "util.h"

#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HC_SIGNAL_HEADER "heapcapture signal v1\n"

/* ---- checks ---- */

static int hc_is_lower_hex(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

int hc_signal_check_nonce(const char *nonce, char *err, size_t errlen)
{
    if (!nonce) {
        hc_errorf(err, errlen, "signed signal: the nonce is missing (NULL); give %d lower-case hex "
                  "digits (16 random bytes)", HC_SIGNAL_NONCE_HEX);
        return -1;
    }
    size_t i = 0;
    while (i < HC_SIGNAL_NONCE_HEX && hc_is_lower_hex((unsigned char)nonce[i])) i++;
    if (i == HC_SIGNAL_NONCE_HEX && nonce[i] == '\0') return 0;
    if (i == HC_SIGNAL_NONCE_HEX || nonce[i] == '\0')
        hc_errorf(err, errlen, "signed signal: the nonce is %zu characters long; it must be exactly %d "
                  "lower-case hex digits (16 random bytes)", strlen(nonce), HC_SIGNAL_NONCE_HEX);
    else
        hc_errorf(err, errlen, "signed signal: the nonce has byte 0x%02x at offset %zu; it must be "
                  "exactly %d lower-case hex digits (0-9, a-f)", (unsigned char)nonce[i], i, HC_SIGNAL_NONCE_HEX);
    return -1;
}

static int hc_check_channel(const char *channel, char *err, size_t errlen)
{
    if (!channel || !*channel) {
        hc_errorf(err, errlen, "signed signal: the channel is %s; give the channel the signal is "
                  "sent on", channel ? "empty" : "missing (NULL)");
        return -1;
    }
    size_t n = strlen(channel);
    if (n > HC_SIGNAL_CHANNEL_MAX) {
        hc_errorf(err, errlen, "signed signal: the channel is %zu bytes long; a channel name is at most "
                  "%d bytes", n, HC_SIGNAL_CHANNEL_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)channel[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            hc_errorf(err, errlen, "signed signal: the channel has byte 0x%02x%s at offset %zu; a channel "
                      "name holds only a-z, 0-9 and _", c, c == '\n' ? " (a newline)" : "", i);
            return -1;
        }
    }
    return 0;
}

static int hc_check_reply_key(const char *reply_key, char *err, size_t errlen)
{
    if (!reply_key) return 0;
    size_t n = strlen(reply_key);
    if (n > HC_SIGNAL_REPLY_KEY_MAX) {
        hc_errorf(err, errlen, "signed signal: the reply key is %zu bytes long; it is at most %d bytes "
                  "(base64 of a public key)", n, HC_SIGNAL_REPLY_KEY_MAX);
        return -1;
    }
    /* A newline would end the field early and let the rest pass for the payload. */
    const char *nl = memchr(reply_key, '\n', n);
    if (nl) {
        hc_errorf(err, errlen, "signed signal: the reply key has a newline at offset %zu; give it as "
                  "base64 on one line", (size_t)(nl - reply_key));
        return -1;
    }
    return 0;
}

static int hc_check_fields(const unsigned char *key, size_t keylen, const hc_signal_fields *f, char *err,
                           size_t errlen)
{
    if (!key || keylen < HC_SIGNAL_KEY_MIN) {
        hc_errorf(err, errlen, "signed signal: the key is %zu bytes; it must be at least %d random bytes "
                  "(for example `openssl rand -hex 32`)", key ? keylen : 0, HC_SIGNAL_KEY_MIN);
        return -1;
    }
    if (keylen > INT_MAX) { /* HMAC() takes an int */
        hc_errorf(err, errlen, "signed signal: the key is %zu bytes; give at most %d", keylen, INT_MAX);
        return -1;
    }
    if (!f) {
        hc_errorf(err, errlen, "signed signal: the fields are missing (NULL)");
        return -1;
    }
    if (hc_check_channel(f->channel, err, errlen) != 0) return -1;
    if (hc_signal_check_nonce(f->nonce, err, errlen) != 0) return -1;
    if (f->trace_for < -1) {
        hc_errorf(err, errlen, "signed signal: trace_for is %" PRId64 "; give seconds (0 or more), or -1 "
                  "for none", f->trace_for);
        return -1;
    }
    if (hc_check_reply_key(f->reply_key, err, errlen) != 0) return -1;
    if (!f->payload && f->payload_len) {
        hc_errorf(err, errlen, "signed signal: the payload is NULL but its length is %zu", f->payload_len);
        return -1;
    }
    return 0;
}

/* ---- the MAC ---- */

int hc_signal_mac(const unsigned char *key, size_t keylen, const hc_signal_fields *f,
                  unsigned char out[HC_SIGNAL_MAC_BYTES], char *err, size_t errlen)
{
    if (hc_check_fields(key, keylen, f, err, errlen) != 0) return -1;

    /* The fields are checked, so the part before the payload has a known bound: one buffer. */
    char head[sizeof HC_SIGNAL_HEADER + HC_SIGNAL_CHANNEL_MAX + HC_SIGNAL_NONCE_HEX + HC_SIGNAL_REPLY_KEY_MAX + 64];
    char trace[24] = "";
    if (f->trace_for >= 0) snprintf(trace, sizeof trace, "%" PRId64, f->trace_for);
    int hlen = snprintf(head, sizeof head, HC_SIGNAL_HEADER "%s\n%" PRId64 "\n%s\n%s\n%s\n", f->channel, f->time,
                        f->nonce, trace, f->reply_key ? f->reply_key : "");
    if (hlen < 0 || (size_t)hlen >= sizeof head || f->payload_len > SIZE_MAX - (size_t)hlen) {
        hc_errorf(err, errlen, "signed signal: the signal is too long to sign");
        return -1;
    }
    size_t len = (size_t)hlen + f->payload_len;
    unsigned char *msg = malloc(len);
    if (!msg) {
        hc_errorf(err, errlen, "signed signal: out of memory for a %zu-byte message", len);
        return -1;
    }
    memcpy(msg, head, (size_t)hlen);
    if (f->payload_len) memcpy(msg + hlen, f->payload, f->payload_len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int ok = HMAC(EVP_sha256(), key, (int)keylen, msg, len, mac, &maclen) && maclen == HC_SIGNAL_MAC_BYTES;
    OPENSSL_cleanse(msg, len); /* the payload may be worth keeping out of freed memory */
    free(msg);
    if (!ok) {
        hc_errorf(err, errlen, "signed signal: OpenSSL could not compute the HMAC-SHA256 (out of memory?)");
        return -1;
    }
    memcpy(out, mac, HC_SIGNAL_MAC_BYTES);
    return 0;
}

int hc_signal_mac_equal(const unsigned char *a, const unsigned char *b)
{
    return CRYPTO_memcmp(a, b, HC_SIGNAL_MAC_BYTES) == 0;
}

/* ---- the replay cache ----
 * A flat array scanned whole on each add: at the ~1024 entries it is made for, that is a few
 * microseconds, and one pass both forgets the old nonces and finds a match and a free slot. */

typedef struct {
    int64_t time;
    char nonce[HC_SIGNAL_NONCE_HEX];
    unsigned char used;
} hc_nonce_entry;

struct hc_nonce_cache {
    size_t capacity;
    hc_nonce_entry entries[];
};

hc_nonce_cache *hc_nonce_cache_new(size_t capacity)
{
    if (capacity == 0 || capacity > HC_NONCE_CACHE_MAX) return NULL;
    hc_nonce_cache *c = calloc(1, sizeof(hc_nonce_cache) + capacity * sizeof(hc_nonce_entry));
    if (c) c->capacity = capacity;
    return c;
}

void hc_nonce_cache_free(hc_nonce_cache *c)
{
    free(c);
}

size_t hc_nonce_cache_memsize(const hc_nonce_cache *c)
{
    return c ? sizeof *c + c->capacity * sizeof(hc_nonce_entry) : 0;
}

int hc_nonce_cache_add(hc_nonce_cache *c, const char *nonce, int64_t time, int64_t now, int64_t window)
{
    if (!c || window < 0 || hc_signal_check_nonce(nonce, NULL, 0) != 0) return HC_NONCE_INVALID;
    int64_t oldest;
    if (__builtin_sub_overflow(now, window, &oldest)) oldest = INT64_MIN;
    /* Remembering a stale nonce would only fill a slot until the next add forgets it. */
    if (time < oldest) return HC_NONCE_INVALID;

    hc_nonce_entry *free_slot = NULL;
    for (size_t i = 0; i < c->capacity; i++) {
        hc_nonce_entry *e = &c->entries[i];
        if (e->used && e->time < oldest) e->used = 0;
        if (!e->used) {
            if (!free_slot) free_slot = e;
            continue;
        }
        if (memcmp(e->nonce, nonce, HC_SIGNAL_NONCE_HEX) == 0) return HC_NONCE_REPLAYED;
    }
    if (!free_slot) return HC_NONCE_FULL;
    memcpy(free_slot->nonce, nonce, HC_SIGNAL_NONCE_HEX);
    free_slot->time = time;
    free_slot->used = 1;
    return HC_NONCE_FRESH;
}
