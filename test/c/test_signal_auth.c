/* signal_auth.c: the MAC against values computed by OpenSSL's command line from the canonical text
 * written out by hand, every field it refuses, the constant-time compare, and the replay cache. */
#include "hc_test.h"
#include "signal_auth.h"

#include <stdint.h>
#include <string.h>

/* The vectors were made before this code ran, each message written to a file with printf and its
 * HMAC-SHA256 taken by openssl (and checked once more with Python's hmac module):
 *
 *   printf 'heapcapture signal v1\nheapcapture_web_1\n1700000000\n0123456789abcdef0123456789abcdef\n\n\ndump' > m1
 *   openssl dgst -sha256 -hmac 'heapcapture test key 0123456789abcdef' m1
 *
 *   printf 'heapcapture signal v1\nheapcapture_worker_2\n1712345678\nfe01dc23ba45987601234567890abcde\n30\n'\
 *   'QmFzZTY0IHJlcGx5IGtleSBmb3IgdGhlIHRlc3Qgdg+/=\n{"mode":"fork"}\nline two\n\n\000end\n' > m2
 *   openssl dgst -sha256 -mac HMAC -macopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f m2
 *
 *   printf 'heapcapture signal v1\nheapcapture_web_1\n0\n0123456789abcdef0123456789abcdef\n0\n\n' > m3
 *   openssl dgst -sha256 -hmac 'heapcapture test key 0123456789abcdef' m3 */
#define KEY1 "heapcapture test key 0123456789abcdef"
#define MAC1 "a9a538ee863fb0a61518d9424a7666b3d899109f2b33807824ffcbf91fd28539"
#define MAC2 "678b76d8e3908e14e3c2ed6facadf7fd63cbec31e11fe3b34da33e56c2d5ceed"
#define MAC3 "7aa82310727abd470fac6fb132168c306afd20d4892ff47b65bb7ce1387479d4"

#define NONCE1 "0123456789abcdef0123456789abcdef"
#define NONCE2 "fe01dc23ba45987601234567890abcde"

static void to_hex(const unsigned char *b, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[b[i] >> 4];
        hex[2 * i + 1] = digits[b[i] & 15];
    }
    hex[2 * n] = '\0';
}

/* The MAC of f under KEY1 as hex, or "" when it is refused (err then says why). */
static const char *mac_hex(const hc_signal_fields *f, char *err, size_t errlen)
{
    static char hex[2 * HC_SIGNAL_MAC_BYTES + 1];
    unsigned char mac[HC_SIGNAL_MAC_BYTES];
    if (hc_signal_mac((const unsigned char *)KEY1, strlen(KEY1), f, mac, err, errlen) != 0) return "";
    to_hex(mac, sizeof mac, hex);
    return hex;
}

static hc_signal_fields plain_fields(void)
{
    return (hc_signal_fields){ .channel = "heapcapture_web_1", .time = 1700000000, .nonce = NONCE1,
                               .trace_for = -1, .reply_key = NULL,
                               .payload = (const unsigned char *)"dump", .payload_len = 4 };
}

static void test_vectors(void)
{
    char err[256] = "";
    hc_signal_fields f = plain_fields();
    HC_CHECK_STR(mac_hex(&f, err, sizeof err), MAC1, "no trace_for, no reply key");

    static const unsigned char payload2[] = "{\"mode\":\"fork\"}\nline two\n\n\0end\n";
    unsigned char key2[32];
    for (int i = 0; i < 32; i++) key2[i] = (unsigned char)i;
    hc_signal_fields g = { .channel = "heapcapture_worker_2", .time = 1712345678, .nonce = NONCE2, .trace_for = 30,
                           .reply_key = "QmFzZTY0IHJlcGx5IGtleSBmb3IgdGhlIHRlc3Qgdg+/=",
                           .payload = payload2, .payload_len = sizeof payload2 - 1 };
    unsigned char mac[HC_SIGNAL_MAC_BYTES];
    char hex[2 * HC_SIGNAL_MAC_BYTES + 1] = "";
    HC_CHECK(hc_signal_mac(key2, sizeof key2, &g, mac, err, sizeof err) == 0, "vector 2: %s", err);
    to_hex(mac, sizeof mac, hex);
    HC_CHECK_STR(hex, MAC2, "trace_for, reply key, a binary key of exactly KEY_MIN bytes, newlines and a NUL "
                 "in the payload");

    hc_signal_fields h = { .channel = "heapcapture_web_1", .time = 0, .nonce = NONCE1, .trace_for = 0 };
    HC_CHECK_STR(mac_hex(&h, err, sizeof err), MAC3, "trace_for 0 (not none), no payload (NULL, 0)");

    /* Every field counts. */
    f.payload_len = 3;
    HC_CHECK(strcmp(mac_hex(&f, err, sizeof err), MAC1) != 0, "a shorter payload");
    f = plain_fields();
    f.time++;
    HC_CHECK(strcmp(mac_hex(&f, err, sizeof err), MAC1) != 0, "another time");
    f = plain_fields();
    f.trace_for = 0;
    HC_CHECK(strcmp(mac_hex(&f, err, sizeof err), MAC1) != 0, "trace_for 0 is not none");
    f = plain_fields();
    f.reply_key = "";
    HC_CHECK_STR(mac_hex(&f, err, sizeof err), MAC1, "an empty reply key signs as none (documented)");
}

/* f (or the key) is refused with a message holding want. */
static void refused(const char *what, const hc_signal_fields *f, size_t keylen, const char *want)
{
    char err[256] = "";
    unsigned char mac[HC_SIGNAL_MAC_BYTES];
    memset(mac, 0xAA, sizeof mac);
    int rc = hc_signal_mac((const unsigned char *)KEY1, keylen, f, mac, err, sizeof err);
    HC_CHECK(rc == -1, "%s: refused (rc %d)", what, rc);
    HC_CHECK(strstr(err, want) != NULL, "%s: the message says \"%s\": %s", what, want, err);
    HC_CHECK(mac[0] == 0xAA && mac[31] == 0xAA, "%s: out untouched", what);
}

enum field { CHANNEL, NONCE, REPLY_KEY };

static void set_field(hc_signal_fields *f, enum field which, const char *value)
{
    if (which == CHANNEL) f->channel = value;
    else if (which == NONCE) f->nonce = value;
    else f->reply_key = value;
}

/* A field of max + 1 bytes is refused with want; one of max bytes is signed. */
static void test_longest(enum field which, size_t max, const char *want)
{
    char value[256];
    memset(value, 'c', max + 1);
    value[max + 1] = '\0';
    hc_signal_fields f = plain_fields();
    set_field(&f, which, value);
    refused(want, &f, strlen(KEY1), want);
    value[max] = '\0';
    char err[256] = "";
    HC_CHECK(*mac_hex(&f, err, sizeof err), "%zu bytes are fine: %s", max, err);
}

static void test_refusals(void)
{
    static const struct {
        enum field field;
        const char *value, *want, *what;
    } bad[] = {
        { CHANNEL, "heapcapture_web\n1", "(a newline) at offset 15", "a newline in the channel" },
        { CHANNEL, "Heapcapture", "only a-z, 0-9 and _", "an upper-case channel" },
        { CHANNEL, "", "empty", "an empty channel" },
        { CHANNEL, NULL, "missing", "no channel" },
        { NONCE, "0123456789abcdef0123456789abcde\n", "byte 0x0a at offset 31", "a newline in the nonce" },
        { NONCE, "0123456789ABCDEF0123456789abcdef", "lower-case hex", "an upper-case nonce" },
        { NONCE, "0123456789abcdef0123456789abcde", "31 characters", "a 31-digit nonce" },
        { NONCE, "0123456789abcdef0123456789abcdef0", "33 characters", "a 33-digit nonce" },
        { NONCE, "", "0 characters", "an empty nonce" },
        { NONCE, NULL, "missing", "no nonce" },
        { REPLY_KEY, "abc\ndef", "newline at offset 3", "a newline in the reply key" },
    };
    size_t klen = strlen(KEY1);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hc_signal_fields f = plain_fields();
        set_field(&f, bad[i].field, bad[i].value);
        refused(bad[i].what, &f, klen, bad[i].want);
    }
    test_longest(CHANNEL, HC_SIGNAL_CHANNEL_MAX, "at most 63");
    test_longest(REPLY_KEY, HC_SIGNAL_REPLY_KEY_MAX, "at most 128");

    hc_signal_fields f = plain_fields();
    refused("a short key", &f, HC_SIGNAL_KEY_MIN - 1, "at least 32");
    refused("NULL fields", NULL, klen, "missing");
    f.trace_for = -2;
    refused("a negative trace_for other than -1", &f, klen, "-1 for none");
    f = plain_fields();
    f.payload = NULL;
    refused("a NULL payload with a length", &f, klen, "NULL");
}

static void test_mac_equal(void)
{
    unsigned char a[HC_SIGNAL_MAC_BYTES], b[HC_SIGNAL_MAC_BYTES];
    for (int i = 0; i < HC_SIGNAL_MAC_BYTES; i++) a[i] = b[i] = (unsigned char)(i * 7);
    HC_CHECK(hc_signal_mac_equal(a, b) == 1, "equal");
    b[0] ^= 1;
    HC_CHECK(hc_signal_mac_equal(a, b) == 0, "the first byte differs");
    b[0] ^= 1;
    b[HC_SIGNAL_MAC_BYTES - 1] ^= 0x80;
    HC_CHECK(hc_signal_mac_equal(a, b) == 0, "the last bit differs");
}

/* The nonce numbered i, as 32 hex digits. */
static const char *nonce_of(unsigned i)
{
    static char n[HC_SIGNAL_NONCE_HEX + 1];
    snprintf(n, sizeof n, "%032x", i);
    return n;
}

static void test_nonce_cache(void)
{
    HC_CHECK(hc_nonce_cache_new(0) == NULL, "no room at all is refused");
    HC_CHECK(hc_nonce_cache_new((size_t)HC_NONCE_CACHE_MAX + 1) == NULL, "more than the most is refused");

    const int64_t window = 300, t0 = 1700000000;
    hc_nonce_cache *c = hc_nonce_cache_new(4);
    HC_CHECK(c != NULL, "made");
    HC_CHECK(hc_nonce_cache_memsize(c) >= 4 * (HC_SIGNAL_NONCE_HEX + 8), "memsize counts the entries");

    HC_CHECK(hc_nonce_cache_add(c, NONCE1, t0, t0, window) == HC_NONCE_FRESH, "first seen: fresh");
    HC_CHECK(hc_nonce_cache_add(c, NONCE1, t0, t0 + 1, window) == HC_NONCE_REPLAYED, "again: replayed");
    HC_CHECK(hc_nonce_cache_add(c, NONCE1, t0, t0 + window, window) == HC_NONCE_REPLAYED,
             "still replayed at the window's last second");
    HC_CHECK(hc_nonce_cache_add(c, NONCE2, t0, t0, window) == HC_NONCE_FRESH, "another nonce: fresh");

    /* Fill it with nonces of one time; the old NONCE1/NONCE2 entries stay inside the window. */
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(1), t0 + 100, t0 + 100, window) == HC_NONCE_FRESH, "3rd");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(2), t0 + 100, t0 + 100, window) == HC_NONCE_FRESH, "4th");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(3), t0 + 100, t0 + 100, window) == HC_NONCE_FULL,
             "a 5th while all 4 are inside the window: full, nothing evicted");
    HC_CHECK(hc_nonce_cache_add(c, NONCE1, t0, t0 + 100, window) == HC_NONCE_REPLAYED,
             "full refused nothing it remembered: NONCE1 is still a replay");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(2), t0 + 100, t0 + 101, window) == HC_NONCE_REPLAYED,
             "a replay is told as such even when full");

    /* NONCE1 and NONCE2 (time t0) age out after t0 + window: room for two again. */
    int64_t later = t0 + window + 1;
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(3), later, later, window) == HC_NONCE_FRESH, "room again");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(4), later, later, window) == HC_NONCE_FRESH, "and for one more");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(5), later, later, window) == HC_NONCE_FULL, "then full again");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(1), t0 + 100, later, window) == HC_NONCE_REPLAYED,
             "the younger ones were kept");

    /* A stale signal is the caller's to refuse; the cache neither keeps nor clears it. */
    HC_CHECK(hc_nonce_cache_add(c, NONCE1, t0, later, window) == HC_NONCE_INVALID, "a stale time");
    HC_CHECK(hc_nonce_cache_add(c, "0123456789ABCDEF0123456789abcdef", later, later, window) == HC_NONCE_INVALID,
             "not a nonce");
    HC_CHECK(hc_nonce_cache_add(c, NULL, later, later, window) == HC_NONCE_INVALID, "no nonce");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(9), later, later, -1) == HC_NONCE_INVALID, "a negative window");
    HC_CHECK(hc_nonce_cache_add(NULL, nonce_of(9), later, later, window) == HC_NONCE_INVALID, "no cache");

    /* Long after, everything is forgotten: the whole capacity is free again. */
    int64_t much_later = later + 10 * window;
    for (unsigned i = 10; i < 14; i++)
        HC_CHECK(hc_nonce_cache_add(c, nonce_of(i), much_later, much_later, window) == HC_NONCE_FRESH, "slot %u", i);
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(14), much_later, much_later, window) == HC_NONCE_FULL, "full at 4");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(15), INT64_MIN, INT64_MIN, INT64_MAX) == HC_NONCE_FULL,
             "now - window overflowing forgets nothing");
    hc_nonce_cache_free(c);
    hc_nonce_cache_free(NULL);

    /* The size it is made for: 1024 distinct nonces, then the 1025th is refused. */
    c = hc_nonce_cache_new(1024);
    int fresh = 0;
    for (unsigned i = 0; i < 1024; i++) fresh += hc_nonce_cache_add(c, nonce_of(i), t0, t0, window) == HC_NONCE_FRESH;
    HC_CHECK(fresh == 1024, "1024 fresh (%d)", fresh);
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(1024), t0, t0, window) == HC_NONCE_FULL, "the 1025th: full");
    HC_CHECK(hc_nonce_cache_add(c, nonce_of(517), t0, t0, window) == HC_NONCE_REPLAYED, "one in the middle");
    hc_nonce_cache_free(c);
}

int main(void)
{
    test_vectors();
    test_refusals();
    test_mac_equal();
    test_nonce_cache();
    return hc_test_summary("signal_auth");
}
