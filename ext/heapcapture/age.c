/* age v1 files, X25519 recipients only, written and read as streams (see age.h). */
#include "age.h"
#include "util_sodium.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HC_HAVE_SODIUM
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sodium.h>

_Static_assert(HC_AGE_KEY_BYTES == crypto_scalarmult_BYTES, "an X25519 key");
_Static_assert(HC_AGE_TAG_BYTES == crypto_aead_chacha20poly1305_ietf_ABYTES, "a Poly1305 tag");
_Static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == 32, "a ChaCha20 key");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "an IETF nonce");
#endif

#define HC_AGE_MISSING "this build of heapcapture has no libsodium (Debian: libsodium-dev, Homebrew: libsodium); " \
                       "it cannot encrypt or decrypt age files"

#define HC_AGE_V1 "age-encryption.org/v1"
#define HC_AGE_PREFIX "age-encryption.org/"
#define HC_AGE_ARMOR "-----BEGIN AGE ENCRYPTED FILE-----"
#define HC_AGE_X25519_INFO "age-encryption.org/v1/X25519"
#define HC_AGE_TRUNCATED "the age file is truncated (it ends before its last chunk)"

enum { HC_AGE_R_HEADER = 1, HC_AGE_R_NONCE, HC_AGE_R_PAYLOAD, HC_AGE_R_DONE, HC_AGE_R_FAILED };

static int hc_age_lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }
static int hc_age_upper(int c) { return c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c; }
static int hc_age_vchar(int c) { return c >= 0x21 && c <= 0x7e; }

/* ---- Bech32 (BIP-173), without the 90-character limit, as age uses it ---- */

static const char hc_b32_alphabet[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t hc_b32_step(uint32_t chk, unsigned v)
{
    static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3 };
    uint32_t top = chk >> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (int i = 0; i < 5; i++)
        if ((top >> i) & 1) chk ^= gen[i];
    return chk;
}

/* The checksum's state once the human-readable part is in: it is computed over the lower case. */
static uint32_t hc_b32_hrp(const char *hrp, size_t len)
{
    uint32_t chk = 1;
    for (size_t i = 0; i < len; i++) chk = hc_b32_step(chk, (unsigned)hc_age_lower((unsigned char)hrp[i]) >> 5);
    chk = hc_b32_step(chk, 0);
    for (size_t i = 0; i < len; i++) chk = hc_b32_step(chk, (unsigned)hc_age_lower((unsigned char)hrp[i]) & 31);
    return chk;
}

static int hc_b32_value(int c)
{
    const char *at = c ? strchr(hc_b32_alphabet, hc_age_lower(c)) : NULL;
    return at ? (int)(at - hc_b32_alphabet) : -1;
}

int hc_age_bech32_encode(const char *hrp, const unsigned char *data, size_t len, int upper, char *out, size_t outlen)
{
    size_t hrplen = strlen(hrp);
    if (hrplen < 1 || hrplen > 83 || len > SIZE_MAX / 8 - 8) return -1;
    for (size_t i = 0; i < hrplen; i++)
        if (!hc_age_vchar((unsigned char)hrp[i])) return -1;
    size_t groups = (len * 8 + 4) / 5;
    if (!out || outlen < hrplen + 1 + groups + 6 + 1 || hrplen + 1 + groups + 6 > INT32_MAX) return -1;

    size_t o = 0;
    for (size_t i = 0; i < hrplen; i++) out[o++] = (char)hc_age_lower((unsigned char)hrp[i]);
    out[o++] = '1';
    uint32_t chk = hc_b32_hrp(hrp, hrplen), acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = ((acc << 8) | data[i]) & 0xfff; /* at most 12 bits are ever pending */
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            unsigned v = (acc >> bits) & 31;
            out[o++] = hc_b32_alphabet[v];
            chk = hc_b32_step(chk, v);
        }
    }
    if (bits > 0) {
        unsigned v = (acc << (5 - bits)) & 31;
        out[o++] = hc_b32_alphabet[v];
        chk = hc_b32_step(chk, v);
    }
    for (int i = 0; i < 6; i++) chk = hc_b32_step(chk, 0);
    chk ^= 1;
    for (int i = 0; i < 6; i++) out[o++] = hc_b32_alphabet[(chk >> (5 * (5 - i))) & 31];
    if (upper)
        for (size_t i = 0; i < o; i++) out[i] = (char)hc_age_upper((unsigned char)out[i]);
    out[o] = '\0';
    return (int)o;
}

int hc_age_bech32_decode(const char *text, size_t len, char *hrp, size_t hrpcap, unsigned char *data, size_t datacap,
                         size_t *datalen, char *err, size_t errlen)
{
    int lower = 0, upper = 0;
    size_t sep = SIZE_MAX;
    *datalen = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)text[i];
        if (!hc_age_vchar(c)) {
            hc_errorf(err, errlen, "it holds a space or a byte that is not printable ASCII, at offset %zu", i);
            return -1;
        }
        lower |= c >= 'a' && c <= 'z';
        upper |= c >= 'A' && c <= 'Z';
        if (c == '1') sep = i;
    }
    if (lower && upper) {
        hc_errorf(err, errlen, "it mixes upper and lower case, which bech32 forbids");
        return -1;
    }
    if (sep == SIZE_MAX || sep == 0) {
        hc_errorf(err, errlen, "it has no prefix ending in '1' before its key");
        return -1;
    }
    if (len - sep - 1 < 6) {
        hc_errorf(err, errlen, "it is too short to hold a bech32 checksum; was it cut short?");
        return -1;
    }
    if (sep >= hrpcap) {
        hc_errorf(err, errlen, "its prefix is %zu characters, longer than expected", sep);
        return -1;
    }
    /* The checksum first: a typo reads as one, whatever else it breaks. */
    uint32_t chk = hc_b32_hrp(text, sep);
    for (size_t i = sep + 1; i < len; i++) {
        int v = hc_b32_value((unsigned char)text[i]);
        if (v < 0) {
            hc_errorf(err, errlen, "it holds a character outside bech32's alphabet, at offset %zu", i);
            return -1;
        }
        chk = hc_b32_step(chk, (unsigned)v);
    }
    if (chk != 1) {
        hc_errorf(err, errlen, "its checksum does not match: a character is wrong, missing or extra");
        return -1;
    }
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = sep + 1; i < len - 6; i++) {
        acc = ((acc << 5) | (uint32_t)hc_b32_value((unsigned char)text[i])) & 0xfff;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (n == datacap) {
                hc_errorf(err, errlen, "it holds more than the %zu bytes expected", datacap);
                return -1;
            }
            data[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0) {
        hc_errorf(err, errlen, "its padding is not canonical: bits that are not zero, or a character too many");
        return -1;
    }
    for (size_t i = 0; i < sep; i++) hrp[i] = (char)hc_age_lower((unsigned char)text[i]);
    hrp[sep] = '\0';
    *datalen = n;
    return 0;
}

static int hc_age_starts(const void *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

_Static_assert(sizeof HC_AGE_ARMOR - 1 == HC_AGE_FILE_PEEK, "the longest start hc_age_is_file looks at");

int hc_age_is_file(const void *buf, size_t len)
{
    return hc_age_starts(buf, len, HC_AGE_PREFIX) || hc_age_starts(buf, len, HC_AGE_ARMOR);
}

/* What follows serves the keys and the files, which need libsodium; bech32 above does not. */
#ifdef HC_HAVE_SODIUM

/* ---- Base64 without padding (RFC 4648, section 4), canonical only ---- */

static const char hc_b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encodes in[0, len) into out (4 * len / 3 + 4 bytes), NUL-terminated; returns the characters. */
static size_t hc_b64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = ((acc << 8) | in[i]) & 0xffff;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = hc_b64_alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out[o++] = hc_b64_alphabet[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return o;
}

static int hc_b64_value(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes in[0, len) into out (3 * len / 4 bytes): the bytes, or -1 unless it is canonical
 * unpadded base64 (the spec says decoders must refuse any other encoding of the same bytes). */
static long hc_b64_decode(const unsigned char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1) return -1;
    uint32_t acc = 0;
    int bits = 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = hc_b64_value(in[i]);
        if (v < 0) return -1;
        acc = ((acc << 6) | (uint32_t)v) & 0xffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0) return -1;
    return n;
}
#endif

/* ---- The primitives: libsodium and OpenSSL ---- */

int hc_age_available(void) { return hc_sodium_available(); }

/* 0 once libsodium is ready, else -1 with err saying why. */
static int hc_age_ready(char *err, size_t errlen) { return hc_sodium_ready("age", HC_AGE_MISSING, err, errlen); }

#ifdef HC_HAVE_SODIUM
/* HKDF-SHA256 to 32 bytes. An empty salt is HashLen zero bytes (RFC 5869, 2.2), given as such:
 * OpenSSL's HKDF then never meets a missing HMAC key. */
static int hc_age_hkdf(const unsigned char *ikm, size_t ikmlen, const unsigned char *salt, size_t saltlen,
                       const char *info, unsigned char out[32])
{
    static const unsigned char zeros[32];
    if (saltlen == 0) {
        salt = zeros;
        saltlen = sizeof zeros;
    }
    size_t outlen = 32;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    int ok = ctx && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, (int)saltlen) > 0 &&
             EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikmlen) > 0 &&
             EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, (int)strlen(info)) > 0 &&
             EVP_PKEY_derive(ctx, out, &outlen) > 0 && outlen == 32;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The header's MAC: HMAC-SHA256 keyed with HKDF(file key, "", "header"). */
static int hc_age_header_mac(const unsigned char file_key[HC_AGE_FILE_KEY_BYTES], const void *header, size_t len,
                             unsigned char mac[32])
{
    unsigned char key[32];
    unsigned int maclen = 0;
    int ok = hc_age_hkdf(file_key, HC_AGE_FILE_KEY_BYTES, NULL, 0, "header", key) == 0 &&
             HMAC(EVP_sha256(), key, (int)sizeof key, header, len, mac, &maclen) && maclen == 32;
    sodium_memzero(key, sizeof key);
    return ok ? 0 : -1;
}

/* A chunk's nonce: an 11-byte big-endian counter, then 1 for the last chunk, else 0. */
static void hc_age_chunk_nonce(uint64_t counter, int last, unsigned char nonce[12])
{
    memset(nonce, 0, 12);
    for (int i = 0; i < 8; i++) nonce[10 - i] = (unsigned char)(counter >> (8 * i));
    nonce[11] = last ? 1 : 0;
}

/* Hands buf to sink, with a fallback sentence in err for a sink that fails without one. */
static int hc_age_emit(hc_age_sink_fn sink, void *ctx, const void *buf, size_t len, const char *what,
                       char *err, size_t errlen)
{
    if (!sink || len == 0) return 0;
    if (err && errlen) err[0] = '\0';
    if (sink(ctx, buf, len, err, errlen) == 0) {
        if (err && errlen) err[0] = '\0';
        return 0;
    }
    /* formatted only on failure: this runs for every 64 KiB chunk */
    if (err && errlen && !err[0])
        hc_errorf(err, errlen, "%s: the output could not be written (its writer gave no reason)", what);
    return -1;
}
#endif

/* ---- Keys in their text forms ---- */

#ifdef HC_HAVE_SODIUM
static void hc_age_trim(const char **text, size_t *len)
{
    static const char space[] = " \t\r\n\v\f";
    while (*len && strchr(space, (*text)[0]) && (*text)[0]) (*text)++, (*len)--;
    while (*len && strchr(space, (*text)[*len - 1]) && (*text)[*len - 1]) (*len)--;
}

/* What text is, when it is not a key of the kind wanted: a phrase after "the recipient " or
 * "the identity ". */
static const char *hc_age_key_kind(const char *hrp)
{
    if (strcmp(hrp, "age1pq") == 0 || strcmp(hrp, "age-secret-key-pq-") == 0)
        return "is a post-quantum (ML-KEM) key, which heapcapture does not support; use an X25519 key (age-keygen "
               "without -pq)";
    if (strcmp(hrp, "age1tag") == 0 || strcmp(hrp, "age1tagpq") == 0)
        return "is a tagged (hardware, P-256) recipient, which heapcapture does not support; use an X25519 key "
               "(age-keygen)";
    if (strncmp(hrp, "age1", 4) == 0 || strncmp(hrp, "age-plugin-", 11) == 0)
        return "is for an age plugin (age-plugin-...), which heapcapture does not support; use an X25519 key "
               "(age-keygen)";
    return NULL;
}

/* hc_age_key_kind for text's prefix (up to its last '1'), known before its data is decoded: a
 * post-quantum key holds more than 32 bytes. */
static const char *hc_age_prefix_kind(const char *text, size_t len)
{
    char hrp[24];
    size_t sep = len;
    while (sep > 0 && text[sep - 1] != '1') sep--;
    if (sep == 0 || sep > sizeof hrp) return NULL;
    for (size_t i = 0; i < sep - 1; i++) hrp[i] = (char)hc_age_lower((unsigned char)text[i]);
    hrp[sep - 1] = '\0';
    return hc_age_key_kind(hrp);
}

/* Decodes a bech32 key of 32 bytes with the human-readable part want; on failure, why is a phrase
 * that follows "the recipient " or "the identity ". */
static int hc_age_key_decode(const char *text, size_t len, const char *want, const char *what, int secret,
                             unsigned char key[32], char *why, size_t whylen)
{
    char hrp[84], reason[160];
    unsigned char data[64];
    size_t n = 0;
    hc_age_trim(&text, &len);
    int rc = -1;
    const char *kind; /* a kind of key heapcapture does not take, named */
    if (len == 0) {
        hc_errorf(why, whylen, "is empty; it should be %s", what);
    } else if (hc_age_starts(text, len, "ssh-") || hc_age_starts(text, len, "ecdsa-") ||
               hc_age_starts(text, len, "-----BEGIN")) {
        hc_errorf(why, whylen, "is an SSH or PEM key, which heapcapture does not support; use %s (age-keygen)", what);
    } else if ((kind = hc_age_prefix_kind(text, len)) != NULL) {
        hc_errorf(why, whylen, "%s", kind);
    } else if (hc_age_bech32_decode(text, len, hrp, sizeof hrp, data, sizeof data, &n, reason, sizeof reason) != 0) {
        hc_errorf(why, whylen, "is not %s (%s)", what, reason);
    } else if (strcmp(hrp, want) == 0) {
        if (n == 32) {
            memcpy(key, data, 32);
            rc = 0;
        } else {
            hc_errorf(why, whylen, "is not %s (it holds %zu bytes, not 32)", what, n);
        }
    } else if ((kind = hc_age_key_kind(hrp)) != NULL) {
        hc_errorf(why, whylen, "%s", kind);
    } else if (secret && strcmp(hrp, "age") == 0) {
        hc_errorf(why, whylen, "is a recipient (age1..., a public key), not an identity: give the secret key "
                  "age-keygen wrote (AGE-SECRET-KEY-1...)");
    } else if (!secret && strcmp(hrp, "age-secret-key-") == 0) {
        hc_errorf(why, whylen, "is a secret key (AGE-SECRET-KEY-1...), not a recipient: give its public key "
                  "(age-keygen -y prints it)");
    } else {
        hc_errorf(why, whylen, "is not %s (its prefix is not %s)", what, secret ? "AGE-SECRET-KEY-1" : "age1");
    }
    sodium_memzero(data, sizeof data);
    return rc;
}

static int hc_age_identity_decode(const char *text, size_t len, hc_age_identity *out, char *why, size_t whylen)
{
    if (hc_age_key_decode(text, len, "age-secret-key-", "an age identity, AGE-SECRET-KEY-1...", 1, out->secret,
                          why, whylen) != 0)
        return -1;
    if (crypto_scalarmult_base(out->recipient.key, out->secret) != 0) {
        sodium_memzero(out, sizeof *out);
        hc_errorf(why, whylen, "is not a usable X25519 secret key");
        return -1;
    }
    return 0;
}
#endif

int hc_age_recipient_parse(const char *text, size_t len, hc_age_recipient *out, char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    char why[256];
    if (hc_age_key_decode(text, len, "age", "an age1... X25519 public key", 0, out->key, why, sizeof why) == 0)
        return 0;
    hc_errorf(err, errlen, "the recipient %s", why);
#else
    (void)text, (void)len, (void)out;
#endif
    return -1;
}

int hc_age_recipient_format(const hc_age_recipient *r, char *out, size_t outlen, char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
    if (hc_age_bech32_encode("age", r->key, sizeof r->key, 0, out, outlen) == HC_AGE_RECIPIENT_TEXT_LEN) return 0;
    hc_errorf(err, errlen, "formatting an age recipient: the buffer is %zu bytes; it takes %d", outlen,
              HC_AGE_RECIPIENT_TEXT_LEN + 1);
    return -1;
}

int hc_age_identity_parse(const char *text, size_t len, hc_age_identity *out, char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    char why[256];
    if (hc_age_identity_decode(text, len, out, why, sizeof why) == 0) return 0;
    hc_errorf(err, errlen, "the identity %s", why);
#else
    (void)text, (void)len, (void)out;
#endif
    return -1;
}

int hc_age_identity_format(const hc_age_identity *id, char *out, size_t outlen, char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
    if (hc_age_bech32_encode("AGE-SECRET-KEY-", id->secret, sizeof id->secret, 1, out, outlen) ==
        HC_AGE_IDENTITY_TEXT_LEN)
        return 0;
    if (out && outlen) out[0] = '\0';
    hc_errorf(err, errlen, "formatting an age identity: the buffer is %zu bytes; it takes %d", outlen,
              HC_AGE_IDENTITY_TEXT_LEN + 1);
    return -1;
}

int hc_age_identity_generate(hc_age_identity *out, char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    randombytes_buf(out->secret, sizeof out->secret);
    if (crypto_scalarmult_base(out->recipient.key, out->secret) == 0) return 0;
    sodium_memzero(out, sizeof *out);
    hc_errorf(err, errlen, "making an age identity: libsodium could not compute its public key");
#else
    (void)out;
#endif
    return -1;
}

void hc_age_identities_free(hc_age_identity *ids, size_t n)
{
    if (!ids) return;
#ifdef HC_HAVE_SODIUM
    sodium_memzero(ids, n * sizeof *ids);
#else
    memset(ids, 0, n * sizeof *ids);
#endif
    free(ids);
}

#ifdef HC_HAVE_SODIUM
/* The next line of text[*pos, len) without its LF or CR LF, trimmed; advances *pos. */
static void hc_age_next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *linelen)
{
    const char *start = text + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - start) : len - *pos;
    *pos += nl ? n + 1 : n;
    *line = start;
    *linelen = n;
    hc_age_trim(line, linelen);
}
#endif

int hc_age_identities_parse(const char *text, size_t len, hc_age_identity **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    if (hc_age_is_file(text, len)) {
        hc_errorf(err, errlen, "the identity file is itself encrypted with age (protected by a passphrase?); "
                  "decrypt it first (age -d) and give the result");
        return -1;
    }
    /* Count first, so the keys are never copied by a realloc that would leave one behind unwiped. */
    size_t count = 0, pos = 0;
    const char *line;
    size_t linelen;
    while (pos < len) {
        hc_age_next_line(text, len, &pos, &line, &linelen);
        if (linelen && line[0] != '#') count++;
    }
    if (count == 0) {
        hc_errorf(err, errlen, "the identity file holds no identities (no AGE-SECRET-KEY-1... line)");
        return -1;
    }
    hc_age_identity *ids = calloc(count, sizeof *ids);
    if (!ids) {
        hc_errorf(err, errlen, "reading the identity file: out of memory");
        return -1;
    }
    size_t k = 0, lineno = 0;
    pos = 0;
    while (pos < len && k < count) {
        hc_age_next_line(text, len, &pos, &line, &linelen);
        lineno++;
        if (!linelen || line[0] == '#') continue;
        char why[256];
        if (hc_age_identity_decode(line, linelen, &ids[k], why, sizeof why) != 0) {
            hc_errorf(err, errlen, "line %zu of the identity file %s", lineno, why);
            hc_age_identities_free(ids, count);
            return -1;
        }
        k++;
    }
    *out = ids;
    *n = count;
    return 0;
#else
    (void)text, (void)len;
    return -1;
#endif
}

/* ---- Encryption ---- */

#ifdef HC_HAVE_SODIUM
static const unsigned char hc_age_zero_nonce[12];

/* One X25519 stanza wrapping file_key for r, appended to hdr. */
static int hc_age_stanza(hc_sbuf *hdr, const hc_age_recipient *r, const unsigned char file_key[16])
{
    unsigned char eph[32], salt[64], shared[32], wrap[32], body[32];
    unsigned long long bodylen = 0;
    char b64[48];
    randombytes_buf(eph, sizeof eph);
    int rc = -1;
    if (crypto_scalarmult_base(salt, eph) != 0) goto out;
    memcpy(salt + 32, r->key, 32);
    /* libsodium refuses a low-order point (an all-zero secret); the check is ours too */
    if (crypto_scalarmult(shared, eph, r->key) != 0 || sodium_is_zero(shared, sizeof shared)) {
        rc = -2;
        goto out;
    }
    if (hc_age_hkdf(shared, sizeof shared, salt, sizeof salt, HC_AGE_X25519_INFO, wrap) != 0) goto out;
    crypto_aead_chacha20poly1305_ietf_encrypt(body, &bodylen, file_key, 16, NULL, 0, NULL, hc_age_zero_nonce, wrap);
    hc_sbuf_puts(hdr, "-> X25519 ");
    hc_b64_encode(salt, 32, b64);
    hc_sbuf_puts(hdr, b64);
    hc_sbuf_putc(hdr, '\n');
    hc_b64_encode(body, (size_t)bodylen, b64); /* 43 characters: the body's one, final, line */
    hc_sbuf_puts(hdr, b64);
    hc_sbuf_putc(hdr, '\n');
    rc = 0;
out:
    sodium_memzero(eph, sizeof eph);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(wrap, sizeof wrap);
    return rc;
}

static int hc_age_writer_fail(hc_age_writer *w)
{
    w->state = -1;
    return -1;
}
#endif

int hc_age_writer_init(hc_age_writer *w, const hc_age_recipient *recipients, size_t n, hc_age_sink_fn sink,
                       void *sink_ctx, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->state = -1;
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    if (!sink) {
        hc_errorf(err, errlen, "encrypting to age: no output was given");
        return -1;
    }
    if (n == 0 || !recipients) {
        hc_errorf(err, errlen, "encrypting to age: no recipient was given (at least one age1... public key)");
        return -1;
    }
    if (n > HC_AGE_MAX_RECIPIENTS) {
        hc_errorf(err, errlen, "encrypting to age: %zu recipients are more than the %d one file can have here",
                  n, HC_AGE_MAX_RECIPIENTS);
        return -1;
    }
    w->chunk = malloc(HC_AGE_SEALED_CHUNK_BYTES);
    if (!w->chunk) {
        hc_errorf(err, errlen, "encrypting to age: out of memory");
        return -1;
    }
    unsigned char file_key[HC_AGE_FILE_KEY_BYTES], mac[32], nonce[HC_AGE_NONCE_BYTES];
    char b64[48];
    randombytes_buf(file_key, sizeof file_key);
    hc_sbuf hdr = { 0 };
    hc_sbuf_puts(&hdr, HC_AGE_V1 "\n");
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        int stanza = hc_age_stanza(&hdr, &recipients[i], file_key);
        if (stanza == -2) {
            char text[HC_AGE_RECIPIENT_TEXT_LEN + 1];
            hc_age_bech32_encode("age", recipients[i].key, 32, 0, text, sizeof text);
            hc_errorf(err, errlen, "encrypting to age: recipient %zu (%s) is not a usable X25519 public key (a "
                      "low-order point, whose secret key no one holds)", i + 1, text);
            goto out;
        }
        if (stanza != 0) {
            hc_errorf(err, errlen, "encrypting to age: OpenSSL could not derive a key (HKDF-SHA256; out of memory?)");
            goto out;
        }
    }
    hc_sbuf_puts(&hdr, "---");
    if (hdr.oom) {
        hc_errorf(err, errlen, "encrypting to age: out of memory");
        goto out;
    }
    randombytes_buf(nonce, sizeof nonce);
    if (hc_age_header_mac(file_key, hdr.data, hdr.len, mac) != 0 ||
        hc_age_hkdf(file_key, sizeof file_key, nonce, sizeof nonce, "payload", w->payload_key) != 0) {
        hc_errorf(err, errlen, "encrypting to age: OpenSSL could not derive a key (HKDF/HMAC-SHA256; out of memory?)");
        goto out;
    }
    hc_sbuf_putc(&hdr, ' ');
    hc_b64_encode(mac, sizeof mac, b64);
    hc_sbuf_puts(&hdr, b64);
    hc_sbuf_putc(&hdr, '\n');
    hc_sbuf_append(&hdr, (const char *)nonce, sizeof nonce);
    if (hdr.oom) {
        hc_errorf(err, errlen, "encrypting to age: out of memory");
        goto out;
    }
    if (hc_age_emit(sink, sink_ctx, hdr.data, hdr.len, "encrypting to age", err, errlen) != 0) goto out;
    w->sink = sink;
    w->sink_ctx = sink_ctx;
    w->file_bytes = hdr.len;
    w->state = 0;
    rc = 0;
out:
    sodium_memzero(file_key, sizeof file_key);
    hc_sbuf_free(&hdr);
    if (rc != 0) hc_age_writer_free(w);
    return rc;
#else
    (void)recipients, (void)n, (void)sink, (void)sink_ctx;
    return -1;
#endif
}

#ifdef HC_HAVE_SODIUM
/* Seals the chunk_len bytes in w->chunk in place, the tag after them, and hands them on. */
static int hc_age_seal_chunk(hc_age_writer *w, int last, char *err, size_t errlen)
{
    unsigned char nonce[12];
    unsigned long long taglen = 0;
    hc_age_chunk_nonce(w->counter, last, nonce);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(w->chunk, w->chunk + w->chunk_len, &taglen, w->chunk,
                                                       w->chunk_len, NULL, 0, NULL, nonce, w->payload_key);
    size_t len = w->chunk_len + HC_AGE_TAG_BYTES;
    w->chunk_len = 0;
    w->counter++;
    if (hc_age_emit(w->sink, w->sink_ctx, w->chunk, len, "encrypting to age", err, errlen) != 0) return -1;
    w->file_bytes += len;
    return 0;
}

static int hc_age_writer_usable(hc_age_writer *w, char *err, size_t errlen)
{
    if (w->state == 0 && w->chunk) return 0;
    hc_errorf(err, errlen, w->state == 1 ? "encrypting to age: the file was already finished"
                                         : "encrypting to age: the file failed earlier (or was never started)");
    return -1;
}
#endif

int hc_age_writer_write(hc_age_writer *w, const void *data, size_t len, char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    if (hc_age_writer_usable(w, err, errlen) != 0) return -1;
    const unsigned char *p = data;
    while (len > 0) {
        /* A full chunk is sealed only now that more data follows: it is not the last. */
        if (w->chunk_len == HC_AGE_CHUNK_BYTES && hc_age_seal_chunk(w, 0, err, errlen) != 0)
            return hc_age_writer_fail(w);
        size_t take = HC_AGE_CHUNK_BYTES - w->chunk_len;
        if (take > len) take = len;
        memcpy(w->chunk + w->chunk_len, p, take);
        w->chunk_len += take;
        w->plaintext_bytes += take;
        p += take;
        len -= take;
    }
    return 0;
#else
    (void)w, (void)data, (void)len;
    return -1;
#endif
}

int hc_age_writer_finish(hc_age_writer *w, char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    if (hc_age_writer_usable(w, err, errlen) != 0) return -1;
    /* chunk_len is 0 here only when nothing was written: the one chunk of an empty file */
    if (hc_age_seal_chunk(w, 1, err, errlen) != 0) return hc_age_writer_fail(w);
    w->state = 1;
    return 0;
#else
    (void)w;
    return -1;
#endif
}

void hc_age_writer_free(hc_age_writer *w)
{
    if (!w) return;
#ifdef HC_HAVE_SODIUM
    sodium_memzero(w->payload_key, sizeof w->payload_key);
    if (w->chunk) sodium_memzero(w->chunk, HC_AGE_SEALED_CHUNK_BYTES);
#endif
    free(w->chunk);
    w->chunk = NULL;
    w->chunk_len = 0;
    if (w->state == 0) w->state = -1;
}

/* ---- Decryption ---- */

#ifdef HC_HAVE_SODIUM
static int hc_age_reader_fail(hc_age_reader *r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first error (every later call repeats it) and puts it in err. */
static int hc_age_reader_fail(hc_age_reader *r, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failure, sizeof r->failure, fmt, ap);
    va_end(ap);
    r->state = HC_AGE_R_FAILED;
    hc_errorf(err, errlen, "%s", r->failure);
    return -1;
}

/* An output writer's own error, kept as the reader's. */
static int hc_age_reader_fail_out(hc_age_reader *r, char *err, size_t errlen)
{
    return hc_age_reader_fail(r, err, errlen, "%s", err && errlen ? err : "decrypting age: the output failed");
}

/* The file key in an X25519 stanza, for id: 0; -1 when it is not for id; -2 when the share is a
 * low-order point (the spec says to abort); -3 when OpenSSL fails. */
static int hc_age_unwrap(const hc_age_identity *id, const unsigned char share[32], const unsigned char body[32],
                         unsigned char file_key[HC_AGE_FILE_KEY_BYTES])
{
    unsigned char shared[32], salt[64], wrap[32];
    unsigned long long keylen = 0;
    int rc = -1;
    if (crypto_scalarmult(shared, id->secret, share) != 0 || sodium_is_zero(shared, sizeof shared)) {
        rc = -2;
    } else {
        memcpy(salt, share, 32);
        memcpy(salt + 32, id->recipient.key, 32);
        if (hc_age_hkdf(shared, sizeof shared, salt, sizeof salt, HC_AGE_X25519_INFO, wrap) != 0)
            rc = -3;
        else if (crypto_aead_chacha20poly1305_ietf_decrypt(file_key, &keylen, NULL, body, 32, NULL, 0,
                                                           hc_age_zero_nonce, wrap) == 0 && keylen == 16)
            rc = 0;
    }
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(wrap, sizeof wrap);
    return rc;
}

/* The header is whole: r->header[0, header_len), its last line (the MAC's) at mac_at. Parses it,
 * finds the file key with one of the identities and checks the MAC. */
static int hc_age_header_open(hc_age_reader *r, size_t mac_at, char *err, size_t errlen)
{
    const unsigned char *h = r->header;
    size_t pos = sizeof HC_AGE_V1, lineno = 2; /* past the version line */
    size_t nstanzas = 0, nx25519 = 0, nscrypt = 0;
    char other[48] = "";
    int have_key = 0;
#define HC_AGE_MALFORMED "the age file's header is malformed (line %zu: "
    while (pos < mac_at) {
        const unsigned char *eol = memchr(h + pos, '\n', mac_at - pos);
        size_t ll = (size_t)(eol - (h + pos)), arg_line = lineno;
        if (!hc_age_starts(h + pos, ll, "-> "))
            return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "it is neither a stanza, \"-> ...\", nor the "
                                      "MAC line, \"--- ...\")", lineno);
        const unsigned char *args[3] = { 0 };
        size_t arglen[3] = { 0 }, argc = 0;
        for (size_t i = pos + 3; i <= pos + ll;) {
            size_t j = i;
            while (j < pos + ll && h[j] != ' ') {
                if (!hc_age_vchar(h[j]))
                    return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "a stanza's argument holds a byte "
                                              "that is not printable ASCII)", lineno);
                j++;
            }
            if (j == i)
                return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "a stanza has an empty argument)", lineno);
            if (argc < 3) {
                args[argc] = h + i;
                arglen[argc] = j - i;
            }
            argc++;
            i = j + 1;
        }
        pos += ll + 1;
        lineno++;
        /* The body: lines of 64 base64 characters, ended by a shorter one (maybe empty). */
        unsigned char body[48], line_bytes[48];
        size_t body_len = 0;
        for (;;) {
            if (pos >= mac_at || h[pos] == '-')
                return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "a stanza's body lacks its final line, "
                                          "shorter than 64 columns)", lineno);
            eol = memchr(h + pos, '\n', mac_at - pos);
            ll = (size_t)(eol - (h + pos));
            if (ll > 64)
                return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "a stanza's body line is longer than "
                                          "64 columns)", lineno);
            long got = hc_b64_decode(h + pos, ll, line_bytes);
            if (got < 0)
                return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "a stanza's body is not canonical "
                                          "unpadded base64)", lineno);
            if (body_len + (size_t)got <= sizeof body) memcpy(body + body_len, line_bytes, (size_t)got);
            body_len += (size_t)got;
            pos += ll + 1;
            lineno++;
            if (ll < 64) break;
        }
        if (++nstanzas > HC_AGE_MAX_STANZAS)
            return hc_age_reader_fail(r, err, errlen, "the age file's header has more than %d stanzas, more than "
                                      "heapcapture reads", HC_AGE_MAX_STANZAS);
        if (arglen[0] == 6 && memcmp(args[0], "X25519", 6) == 0) {
            nx25519++;
            /* The spec says to reject, not skip, an X25519 stanza of another shape. */
            unsigned char share[48];
            if (argc != 2)
                return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "an X25519 stanza has %zu argument%s, "
                                          "not 2)", arg_line, argc, argc == 1 ? "" : "s");
            if (arglen[1] != 43 || hc_b64_decode(args[1], arglen[1], share) != 32)
                return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "an X25519 stanza's ephemeral share is "
                                          "not 32 bytes of canonical base64)", arg_line);
            if (body_len != 32)
                return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "an X25519 stanza's body is %zu bytes, "
                                          "not 32)", arg_line + 1, body_len);
            for (size_t i = 0; i < r->nids && !have_key; i++) {
                int rc = hc_age_unwrap(&r->ids[i], share, body, r->file_key);
                if (rc == 0) have_key = 1;
                if (rc == -2)
                    return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "an X25519 stanza's ephemeral share "
                                              "is a low-order point, as only a forged file has)", arg_line);
                if (rc == -3)
                    return hc_age_reader_fail(r, err, errlen, "decrypting age: OpenSSL could not derive a key "
                                              "(HKDF-SHA256; out of memory?)");
            }
        } else if (arglen[0] == 6 && memcmp(args[0], "scrypt", 6) == 0) {
            nscrypt++;
        } else if (!other[0] && !(arglen[0] >= 7 && memcmp(args[0] + arglen[0] - 7, "-grease", 7) == 0)) {
            /* named in the error when no stanza is X25519; age's random "grease" stanzas are not */
            size_t n = arglen[0] < sizeof other - 1 ? arglen[0] : sizeof other - 1;
            memcpy(other, args[0], n);
            other[n] = '\0';
        }
    }
    size_t mac_len = r->header_len - 1 - mac_at;
    unsigned char mac[48], want[32];
    if (mac_len != 47 || h[mac_at + 3] != ' ' || hc_b64_decode(h + mac_at + 4, 43, mac) != 32)
        return hc_age_reader_fail(r, err, errlen, HC_AGE_MALFORMED "the MAC line is not \"--- \" and 43 base64 "
                                  "characters)", lineno);
    if (nstanzas == 0)
        return hc_age_reader_fail(r, err, errlen, "the age file's header is malformed (it has no recipient stanza)");
    if (nscrypt > 0 && nstanzas > 1)
        return hc_age_reader_fail(r, err, errlen, "the age file's header is malformed (an scrypt stanza must be its "
                                  "only one)");
    if (nscrypt > 0)
        return hc_age_reader_fail(r, err, errlen, "the age file is encrypted with a passphrase (scrypt), which "
                                  "heapcapture does not support: decrypt it with age -d, or encrypt to an age1... "
                                  "recipient");
    if (!have_key && nx25519 == 0)
        return hc_age_reader_fail(r, err, errlen, "the age file is not for an X25519 identity (its %zu stanza%s of "
                                  "other types%s%s%s); heapcapture reads only files encrypted to age1... recipients",
                                  nstanzas, nstanzas == 1 ? " is" : "s are", other[0] ? ", such as \"" : "", other,
                                  other[0] ? "\"" : "");
    if (!have_key)
        return hc_age_reader_fail(r, err, errlen, "the age file is not for any of these identities (%zu X25519 "
                                  "stanza%s, none opens with the %zu identit%s given)", nx25519,
                                  nx25519 == 1 ? "" : "s", r->nids, r->nids == 1 ? "y" : "ies");
    if (hc_age_header_mac(r->file_key, h, mac_at + 3, want) != 0)
        return hc_age_reader_fail(r, err, errlen, "decrypting age: OpenSSL could not compute the header's MAC "
                                  "(out of memory?)");
    if (sodium_memcmp(mac, want, sizeof want) != 0)
        return hc_age_reader_fail(r, err, errlen, "the age file's header was altered (its MAC does not match)");
#undef HC_AGE_MALFORMED
    free(r->header);
    r->header = NULL;
    r->state = HC_AGE_R_NONCE;
    return 0;
}

/* Takes header bytes from p[0, len) up to the end of its MAC line: how many it took, or -1. */
static long hc_age_header_take(hc_age_reader *r, const unsigned char *p, size_t len, char *err, size_t errlen)
{
    static const size_t prefix_len = sizeof HC_AGE_PREFIX - 1, armor_len = sizeof HC_AGE_ARMOR - 1;
    size_t i = 0;
    while (i < len) {
        if (r->header_len == HC_AGE_MAX_HEADER_BYTES)
            return hc_age_reader_fail(r, err, errlen, "the age file's header is longer than %d bytes, more than "
                                      "heapcapture reads (is it an age file?)", HC_AGE_MAX_HEADER_BYTES);
        unsigned char c = p[i++];
        unsigned char *h = r->header;
        h[r->header_len++] = c;
        size_t k = r->header_len;
        if (r->line_start == 0 && c != '\n') {
            /* the first bytes tell an age file from anything else: say so at once */
            int age = memcmp(h, HC_AGE_PREFIX, k < prefix_len ? k : prefix_len) == 0;
            int armor = memcmp(h, HC_AGE_ARMOR, k < armor_len ? k : armor_len) == 0;
            if (armor && k >= armor_len)
                return hc_age_reader_fail(r, err, errlen, "the age file is ASCII-armored (age -a), which "
                                          "heapcapture does not read: encrypt without -a/--armor");
            if (!age && !armor)
                return hc_age_reader_fail(r, err, errlen, "not an age file (it does not start with " HC_AGE_V1 ")");
            continue;
        }
        if (c != '\n') continue;
        size_t start = r->line_start, ll = k - 1 - start;
        r->line_start = k;
        if (start == 0) {
            if (ll == sizeof HC_AGE_V1 - 1 && memcmp(h, HC_AGE_V1, ll) == 0) continue;
            if (!hc_age_starts(h, ll, HC_AGE_PREFIX))
                return hc_age_reader_fail(r, err, errlen, "not an age file (it does not start with " HC_AGE_V1 ")");
            int printable = ll <= 60;
            for (size_t j = 0; j < ll && printable; j++) printable = hc_age_vchar(h[j]);
            return hc_age_reader_fail(r, err, errlen, "the age file is of a version heapcapture does not read (%s%.*s%s,"
                                      " not " HC_AGE_V1 ")", printable ? "\"" : "", printable ? (int)ll : 0,
                                      (const char *)h, printable ? "\"" : "its first line is another");
        }
        if (hc_age_starts(h + start, ll, "---")) {
            if (hc_age_header_open(r, start, err, errlen) != 0) return -1;
            return (long)i;
        }
    }
    return (long)i;
}

/* Opens the sealed_len bytes in r->sealed as chunk r->counter into r->plain: the plaintext's
 * length, or -1 when the tag does not match with that last-chunk flag. */
static long hc_age_open_chunk(hc_age_reader *r, int last)
{
    unsigned char nonce[12];
    hc_age_chunk_nonce(r->counter, last, nonce);
    size_t n = r->sealed_len - HC_AGE_TAG_BYTES;
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(r->plain, NULL, r->sealed, n, r->sealed + n, NULL, 0,
                                                           nonce, r->payload_key) != 0)
        return -1;
    return (long)n;
}

/* The full chunk in r->sealed, now that more data follows it. */
static int hc_age_open_middle(hc_age_reader *r, hc_age_sink_fn out, void *ctx, char *err, size_t errlen)
{
    long n = hc_age_open_chunk(r, 0);
    if (n < 0) {
        if (hc_age_open_chunk(r, 1) >= 0)
            return hc_age_reader_fail(r, err, errlen, "the age file goes on after its last chunk (chunk %llu): "
                                      "something was appended to it", (unsigned long long)r->counter);
        return hc_age_reader_fail(r, err, errlen, "the age file was altered at chunk %llu (its tag does not match)",
                                  (unsigned long long)r->counter);
    }
    r->counter++;
    r->sealed_len = 0;
    if (hc_age_emit(out, ctx, r->plain, (size_t)n, "decrypting age", err, errlen) != 0)
        return hc_age_reader_fail_out(r, err, errlen);
    r->plaintext_bytes += (uint64_t)n;
    return 0;
}

static int hc_age_reader_usable(hc_age_reader *r, char *err, size_t errlen)
{
    if (r->state == HC_AGE_R_FAILED) {
        hc_errorf(err, errlen, "%s", r->failure);
        return -1;
    }
    if (r->state == HC_AGE_R_DONE) {
        hc_errorf(err, errlen, "decrypting age: the file was already finished");
        return -1;
    }
    if (r->state < HC_AGE_R_HEADER || r->state > HC_AGE_R_PAYLOAD || !r->sealed) {
        hc_errorf(err, errlen, "decrypting age: the reader was never set up (hc_age_reader_init failed?)");
        return -1;
    }
    return 0;
}
#endif

int hc_age_reader_init(hc_age_reader *r, const hc_age_identity *ids, size_t n, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    if (n == 0 || !ids) {
        hc_errorf(err, errlen, "decrypting age: no identity was given (at least one AGE-SECRET-KEY-1... key)");
        return -1;
    }
    if (n > SIZE_MAX / sizeof *ids) {
        hc_errorf(err, errlen, "decrypting age: out of memory");
        return -1;
    }
    r->ids = malloc(n * sizeof *ids);
    r->header = malloc(HC_AGE_MAX_HEADER_BYTES);
    r->sealed = malloc(HC_AGE_SEALED_CHUNK_BYTES);
    r->plain = malloc(HC_AGE_CHUNK_BYTES);
    if (!r->ids || !r->header || !r->sealed || !r->plain) {
        free(r->ids), free(r->header), free(r->sealed), free(r->plain);
        memset(r, 0, sizeof *r);
        hc_errorf(err, errlen, "decrypting age: out of memory");
        return -1;
    }
    memcpy(r->ids, ids, n * sizeof *ids);
    r->nids = n;
    r->state = HC_AGE_R_HEADER;
    return 0;
#else
    (void)ids, (void)n;
    return -1;
#endif
}

int hc_age_reader_feed(hc_age_reader *r, const void *data, size_t len, hc_age_sink_fn out, void *out_ctx,
                       char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    if (hc_age_reader_usable(r, err, errlen) != 0) return -1;
    const unsigned char *p = data;
    r->file_bytes += len;
    while (len > 0) {
        size_t take;
        if (r->state == HC_AGE_R_HEADER) {
            long got = hc_age_header_take(r, p, len, err, errlen);
            if (got < 0) return -1;
            take = (size_t)got;
        } else if (r->state == HC_AGE_R_NONCE) {
            take = HC_AGE_NONCE_BYTES - r->nonce_len;
            if (take > len) take = len;
            memcpy(r->nonce + r->nonce_len, p, take);
            r->nonce_len += take;
            if (r->nonce_len == HC_AGE_NONCE_BYTES) {
                int rc = hc_age_hkdf(r->file_key, sizeof r->file_key, r->nonce, sizeof r->nonce, "payload",
                                     r->payload_key);
                sodium_memzero(r->file_key, sizeof r->file_key);
                if (rc != 0)
                    return hc_age_reader_fail(r, err, errlen, "decrypting age: OpenSSL could not derive a key "
                                              "(HKDF-SHA256; out of memory?)");
                r->state = HC_AGE_R_PAYLOAD;
            }
        } else {
            /* A full chunk is opened only once a byte after it shows it is not the file's end. */
            if (r->sealed_len == HC_AGE_SEALED_CHUNK_BYTES && hc_age_open_middle(r, out, out_ctx, err, errlen) != 0)
                return -1;
            take = HC_AGE_SEALED_CHUNK_BYTES - r->sealed_len;
            if (take > len) take = len;
            memcpy(r->sealed + r->sealed_len, p, take);
            r->sealed_len += take;
        }
        p += take;
        len -= take;
    }
    return 0;
#else
    (void)r, (void)data, (void)len, (void)out, (void)out_ctx;
    return -1;
#endif
}

int hc_age_reader_finish(hc_age_reader *r, hc_age_sink_fn out, void *out_ctx, char *err, size_t errlen)
{
    if (hc_age_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    if (hc_age_reader_usable(r, err, errlen) != 0) return -1;
    if (r->state == HC_AGE_R_HEADER && r->header_len == 0)
        return hc_age_reader_fail(r, err, errlen, "not an age file (it is empty)");
    if (r->state == HC_AGE_R_HEADER)
        return hc_age_reader_fail(r, err, errlen, "the age file is truncated (it ends inside its header)");
    if (r->state == HC_AGE_R_NONCE || r->sealed_len < HC_AGE_TAG_BYTES)
        return hc_age_reader_fail(r, err, errlen, HC_AGE_TRUNCATED);
    long n = hc_age_open_chunk(r, 1);
    if (n < 0) {
        /* a whole chunk that opens as a middle one: the file was cut at a chunk's end */
        if (r->sealed_len == HC_AGE_SEALED_CHUNK_BYTES && hc_age_open_chunk(r, 0) >= 0)
            return hc_age_reader_fail(r, err, errlen, HC_AGE_TRUNCATED);
        return hc_age_reader_fail(r, err, errlen, "the age file is truncated or was altered at chunk %llu, where it "
                                  "ends (its tag does not match)", (unsigned long long)r->counter);
    }
    if (n == 0 && r->counter > 0)
        return hc_age_reader_fail(r, err, errlen, "the age file is malformed (its last chunk, chunk %llu, is empty, "
                                  "which age v1 forbids)", (unsigned long long)r->counter);
    r->counter++;
    r->sealed_len = 0;
    if (hc_age_emit(out, out_ctx, r->plain, (size_t)n, "decrypting age", err, errlen) != 0)
        return hc_age_reader_fail_out(r, err, errlen);
    r->plaintext_bytes += (uint64_t)n;
    r->state = HC_AGE_R_DONE;
    return 0;
#else
    (void)r, (void)out, (void)out_ctx;
    return -1;
#endif
}

void hc_age_reader_free(hc_age_reader *r)
{
    if (!r) return;
#ifdef HC_HAVE_SODIUM
    if (r->ids) sodium_memzero(r->ids, r->nids * sizeof *r->ids);
    if (r->plain) sodium_memzero(r->plain, HC_AGE_CHUNK_BYTES);
    sodium_memzero(r->file_key, sizeof r->file_key);
    sodium_memzero(r->payload_key, sizeof r->payload_key);
#endif
    free(r->ids);
    free(r->header);
    free(r->sealed);
    free(r->plain);
    r->ids = NULL;
    r->header = NULL;
    r->sealed = NULL;
    r->plain = NULL;
    r->nids = 0;
    if (r->state != HC_AGE_R_FAILED) r->state = 0;
}
