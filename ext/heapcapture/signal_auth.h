/* Signed signals: an HMAC-SHA256 (OpenSSL) over one canonical text of a signal's fields, under a
 * key the signaller and the listening processes share, and a bounded cache of the nonces already
 * seen, so that a captured signal cannot be sent again. Pure C: no Ruby.
 *
 * The canonical message, byte for byte (every field is on a line of its own, so no field can
 * move into another; the payload is last and may hold anything, newlines and NULs included):
 *
 *   "heapcapture signal v1\n"
 *   channel "\n"
 *   time in decimal "\n"
 *   nonce "\n"
 *   trace_for in decimal, or nothing when -1 (none) "\n"
 *   reply_key, or nothing when NULL (none) "\n"
 *   payload bytes */
#ifndef HC_SIGNAL_AUTH_H
#define HC_SIGNAL_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define HC_SIGNAL_KEY_MIN 32          /* bytes of key, at the least */
#define HC_SIGNAL_MAC_BYTES 32
#define HC_SIGNAL_NONCE_HEX 32        /* a nonce: 32 lower-case hex digits (16 random bytes) */
#define HC_SIGNAL_CHANNEL_MAX 63      /* PostgreSQL's longest identifier */
#define HC_SIGNAL_REPLY_KEY_MAX 128
#define HC_NONCE_CACHE_MAX (1u << 20) /* the most nonces one cache may hold */

typedef struct {
    const char *channel;          /* [a-z0-9_], 1 to HC_SIGNAL_CHANNEL_MAX bytes */
    int64_t time;                 /* Unix seconds when the signal was sent */
    const char *nonce;            /* HC_SIGNAL_NONCE_HEX lower-case hex digits */
    int64_t trace_for;            /* seconds >= 0, or -1 for none */
    const char *reply_key;        /* base64, at most HC_SIGNAL_REPLY_KEY_MAX bytes, or NULL for none
                                   * ("" signs the same as NULL: both are an empty line) */
    const unsigned char *payload; /* payload_len bytes, any; may be NULL when payload_len is 0 */
    size_t payload_len;
} hc_signal_fields;

/* The MAC of f's canonical message under key (at least HC_SIGNAL_KEY_MIN bytes) into out.
 * 0, or -1 with err naming the field that is wrong (or out of memory); out is then untouched. */
int hc_signal_mac(const unsigned char *key, size_t keylen, const hc_signal_fields *f,
                  unsigned char out[HC_SIGNAL_MAC_BYTES], char *err, size_t errlen);

/* 1 when the two HC_SIGNAL_MAC_BYTES MACs are equal, else 0, in time that does not depend on
 * where they differ (a MAC compared byte by byte can be guessed byte by byte). */
int hc_signal_mac_equal(const unsigned char *a, const unsigned char *b);

/* 0 when nonce is HC_SIGNAL_NONCE_HEX lower-case hex digits, else -1 with err saying why. */
int hc_signal_check_nonce(const char *nonce, char *err, size_t errlen);

/* ---- the replay cache ---- */

enum {
    HC_NONCE_INVALID = -1, /* a nonce that is not HC_SIGNAL_NONCE_HEX lower-case hex, a negative
                            * window, or a time already older than now - window (refuse such a
                            * signal as stale before asking the cache); nothing added */
    HC_NONCE_FRESH = 0,    /* not seen within the window: remembered now */
    HC_NONCE_REPLAYED = 1, /* seen before, and still within the window */
    HC_NONCE_FULL = 2,     /* capacity nonces inside the window are remembered already: nothing
                            * added, and the signal should be refused (forgetting one of them
                            * would let it be replayed) */
};

typedef struct hc_nonce_cache hc_nonce_cache;

/* Room for capacity nonces (1 to HC_NONCE_CACHE_MAX), allocated here once and never grown.
 * NULL when capacity is out of range or memory ran out. */
hc_nonce_cache *hc_nonce_cache_new(size_t capacity);
void hc_nonce_cache_free(hc_nonce_cache *c);
/* Bytes the cache holds (for ObjectSpace.memsize_of). */
size_t hc_nonce_cache_memsize(const hc_nonce_cache *c);

/* Checks nonce (sent at time) against the nonces remembered, first forgetting those whose time is
 * older than now - window: a signal that old is refused as stale anyway, so its nonce need not be
 * kept. A signal is stale when time < now - window, the same bound. Returns an HC_NONCE_ value. */
int hc_nonce_cache_add(hc_nonce_cache *c, const char *nonce, int64_t time, int64_t now, int64_t window);

#endif
