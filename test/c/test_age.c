/* age.c: bech32 both ways (BIP-173's vectors, round trips, every kind of bad text); keys and
 * identity files; files written and read back at the sizes around the 64 KiB chunk, fed in pieces of
 * 1, 7 and 70000 bytes; two recipients; and each way a file can be wrong (another identity, a byte
 * flipped in the header, its MAC or a chunk, cut short anywhere, data after the end, not age at all,
 * other stanza types) gives its own sentence. Then interop with the age tool (Debian's age 1.1.1,
 * which bin/setup installs): it decrypts what we write and we decrypt what it writes, byte for byte.
 * Without the age tool the test fails. Without libsodium, every call says what to install. */
#define _GNU_SOURCE /* memmem */
#include "age.h"
#include "hc_test.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HC_HAVE_SODIUM
#include <sodium.h>
#endif

#define NOT_FOR "the age file is not for any of these identities"
#define ALTERED_HEADER "the age file's header was altered (its MAC does not match)"
#define TRUNCATED "the age file is truncated (it ends before its last chunk)"
#define MALFORMED "the age file's header is malformed"

typedef struct {
    unsigned char *data;
    size_t len, cap;
    int calls, fail_at_call; /* fail_at_call > 0: that call fails, like a full disk */
} buf_t;

static int to_buf(void *ctx, const void *data, size_t len, char *err, size_t errlen)
{
    buf_t *b = ctx;
    if (++b->calls == b->fail_at_call) {
        snprintf(err, errlen, "writing the test output: No space left on device");
        return -1;
    }
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data) abort();
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int has(const char *err, const char *want) { return strstr(err, want) != NULL; }

#ifdef HC_HAVE_SODIUM
static void buf_free(buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Encrypts data[0, len) to rs[0, n), `piece` bytes a write (0: one write). */
static int encrypt(const hc_age_recipient *rs, size_t n, const unsigned char *data, size_t len, size_t piece,
                   buf_t *out, char *err, size_t errlen)
{
    hc_age_writer w;
    memset(out, 0, sizeof *out);
    if (hc_age_writer_init(&w, rs, n, to_buf, out, err, errlen) != 0) return -1;
    int rc = 0;
    for (size_t at = 0; at < len && rc == 0;) {
        size_t take = piece && piece < len - at ? piece : len - at;
        rc = hc_age_writer_write(&w, data + at, take, err, errlen);
        at += take;
    }
    if (rc == 0) rc = hc_age_writer_finish(&w, err, errlen);
    hc_age_writer_free(&w);
    return rc;
}

/* Decrypts file[0, len) with ids, fed `piece` bytes at a time (0: at once). */
static int decrypt(const hc_age_identity *ids, size_t n, const unsigned char *file, size_t len, size_t piece,
                   buf_t *out, char *err, size_t errlen)
{
    hc_age_reader r;
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    if (hc_age_reader_init(&r, ids, n, err, errlen) != 0) return -1;
    int rc = 0;
    for (size_t at = 0; at < len && rc == 0;) {
        size_t take = piece && piece < len - at ? piece : len - at;
        rc = hc_age_reader_feed(&r, file + at, take, to_buf, out, err, errlen);
        at += take;
    }
    if (rc == 0) rc = hc_age_reader_finish(&r, to_buf, out, err, errlen);
    hc_age_reader_free(&r);
    return rc;
}

/* Decrypting file[0, len) fails, with want in its error, however it is fed. */
static void expect_error(const hc_age_identity *ids, size_t n, const unsigned char *file, size_t len,
                         const char *want, const char *what)
{
    static const size_t pieces[] = { 0, 1, 7, 70000 };
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
        if (pieces[i] == 1 && len > 300000) continue;
        buf_t out;
        char err[400];
        int rc = decrypt(ids, n, file, len, pieces[i], &out, err, sizeof err);
        HC_CHECK(rc == -1 && has(err, want), "%s (pieces of %zu): rc %d, err: %s; want: %s", what, pieces[i], rc,
                 err, want);
        buf_free(&out);
    }
}

#endif

/* ---- bech32 ---- */

/* Bech32 from 5-bit values, with our own checksum: for texts the encoder would never write. */
static uint32_t polymod(const unsigned char *v, size_t n)
{
    static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3 };
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ v[i];
        for (int j = 0; j < 5; j++)
            if ((top >> j) & 1) chk ^= gen[j];
    }
    return chk;
}

static void bech32_from_values(const char *hrp, const unsigned char *vals, size_t n, char *out)
{
    static const char alphabet[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    unsigned char all[256];
    size_t h = strlen(hrp), k = 0;
    for (size_t i = 0; i < h; i++) all[k++] = (unsigned char)hrp[i] >> 5;
    all[k++] = 0;
    for (size_t i = 0; i < h; i++) all[k++] = (unsigned char)hrp[i] & 31;
    memcpy(all + k, vals, n);
    k += n;
    memset(all + k, 0, 6);
    uint32_t chk = polymod(all, k + 6) ^ 1;
    size_t o = 0;
    memcpy(out, hrp, h);
    o = h;
    out[o++] = '1';
    for (size_t i = 0; i < n; i++) out[o++] = alphabet[vals[i]];
    for (int i = 0; i < 6; i++) out[o++] = alphabet[(chk >> (5 * (5 - i))) & 31];
    out[o] = '\0';
}

static void test_bech32(void)
{
    char hrp[100], err[200], text[200];
    unsigned char data[100];
    size_t n = 0;
    /* BIP-173's valid strings (data whose padding is whole bytes) */
    static const char *valid[] = {
        "A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    };
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        int rc = hc_age_bech32_decode(valid[i], strlen(valid[i]), hrp, sizeof hrp, data, sizeof data, &n, err,
                                      sizeof err);
        HC_CHECK(rc == 0, "BIP-173 valid %s: %s", valid[i], err);
        if (rc != 0) continue;
        int upper = valid[i][0] == 'A';
        int m = hc_age_bech32_encode(hrp, data, n, upper, text, sizeof text);
        HC_CHECK(m == (int)strlen(valid[i]) && strcmp(text, valid[i]) == 0, "re-encodes to %s: %s", valid[i], text);
    }
    /* the alphabet in order: the values 0 to 31, 5 bits each */
    HC_CHECK(hc_age_bech32_decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", 45, hrp, sizeof hrp, data,
                                  sizeof data, &n, err, sizeof err) == 0 && strcmp(hrp, "abcdef") == 0 && n == 20 &&
             data[0] == 0x00 && data[1] == 0x44 && data[2] == 0x32 && data[19] == 0xdf,
             "00 44 32 ... df: %s, %zu bytes, %02x %02x %02x %02x", err, n, data[0], data[1], data[2], data[19]);
    /* no 90-character limit: BIP-173 refuses this one for its length alone */
    static const char long84[] = "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx";
    HC_CHECK(hc_age_bech32_decode(long84, strlen(long84), hrp, sizeof hrp, data, sizeof data, &n, err, sizeof err) == 0 &&
             n == 0, "91 characters: %s", err);
    /* age's own test key (bytes 01 02 ...): decodes and encodes back */
    static const char age_r[] = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq";
    HC_CHECK(hc_age_bech32_decode(age_r, strlen(age_r), hrp, sizeof hrp, data, sizeof data, &n, err, sizeof err) == 0 &&
             n == 32 && hc_age_bech32_encode("age", data, 32, 0, text, sizeof text) == 62 && strcmp(text, age_r) == 0,
             "a real age recipient: %s", err);

    /* BIP-173's invalid strings, and others, each with its reason */
    static const struct { const char *text, *why; } invalid[] = {
        { "x1b4n0q5v", "outside bech32's alphabet" },
        { "li1dgmt3", "too short" },
        { "A1G7SGD8", "checksum" },             /* checksum of the upper-case form */
        { "10a06t8", "no prefix" },
        { "1qzzfhee", "no prefix" },
        { "pzry9x0s0muk", "no prefix" },
        { "abcdef1Qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "mixes upper and lower" },
        { "abc def1qqqqqq", "not printable" },
        { "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gQ", "mixes upper and lower" },
        { "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gp", "checksum" },
    };
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        err[0] = '\0';
        int rc = hc_age_bech32_decode(invalid[i].text, strlen(invalid[i].text), hrp, sizeof hrp, data, sizeof data,
                                      &n, err, sizeof err);
        HC_CHECK(rc == -1 && has(err, invalid[i].why), "invalid %s: %s", invalid[i].text, err);
    }

    /* round trips, both cases; every single-character change of a key text is caught */
    for (unsigned seed = 1; seed <= 20; seed++) {
        unsigned char *key = hc_test_random_bytes(32, seed);
        const char *hrps[] = { "age", "AGE-SECRET-KEY-" };
        for (int h = 0; h < 2; h++) {
            int m = hc_age_bech32_encode(hrps[h], key, 32, h, text, sizeof text);
            HC_CHECK(m == (h ? HC_AGE_IDENTITY_TEXT_LEN : HC_AGE_RECIPIENT_TEXT_LEN), "length %d", m);
            HC_CHECK(hc_age_bech32_decode(text, (size_t)m, hrp, sizeof hrp, data, sizeof data, &n, err, sizeof err) == 0 &&
                     n == 32 && memcmp(data, key, 32) == 0, "round trip %s: %s", text, err);
            HC_CHECK(strcmp(hrp, h ? "age-secret-key-" : "age") == 0, "hrp comes back lower case: %s", hrp);
            if (seed == 1) {
                size_t sep = strlen(hrps[h]);
                for (size_t at = sep + 1; at < (size_t)m; at++) {
                    char bad[100];
                    memcpy(bad, text, (size_t)m + 1);
                    bad[at] = bad[at] == (h ? 'Q' : 'q') ? (h ? 'P' : 'p') : (h ? 'Q' : 'q');
                    err[0] = '\0';
                    HC_CHECK(hc_age_bech32_decode(bad, (size_t)m, hrp, sizeof hrp, data, sizeof data, &n, err,
                                                  sizeof err) == -1 && has(err, "checksum"),
                             "changed at %zu: %s", at, err);
                }
                char bad[100];
                memcpy(bad, text, (size_t)m + 1);
                bad[m - 10] = h ? 'B' : 'b'; /* not in the alphabet */
                HC_CHECK(hc_age_bech32_decode(bad, (size_t)m, hrp, sizeof hrp, data, sizeof data, &n, err, sizeof err) == -1 &&
                         has(err, "alphabet"), "a 'b': %s", err);
                HC_CHECK(hc_age_bech32_decode(text, (size_t)m - 1, hrp, sizeof hrp, data, sizeof data, &n, err,
                                              sizeof err) == -1 && has(err, "checksum"), "a character short: %s", err);
            }
        }
        free(key);
    }
    /* Empty data and long data (age has no 90-character limit). */
    HC_CHECK(hc_age_bech32_encode("x", NULL, 0, 0, text, sizeof text) == 8, "empty data");
    HC_CHECK(hc_age_bech32_decode(text, 8, hrp, sizeof hrp, data, sizeof data, &n, err, sizeof err) == 0 && n == 0,
             "empty data decodes: %s", err);
    unsigned char *big = hc_test_random_bytes(100, 9);
    char bigtext[300];
    int m = hc_age_bech32_encode("age", big, 100, 0, bigtext, sizeof bigtext);
    HC_CHECK(m > 90, "more than 90 characters: %d", m);
    HC_CHECK(hc_age_bech32_decode(bigtext, (size_t)m, hrp, sizeof hrp, data, sizeof data, &n, err, sizeof err) == 0 &&
             n == 100 && memcmp(data, big, 100) == 0, "a long one decodes: %s", err);
    HC_CHECK(hc_age_bech32_decode(bigtext, (size_t)m, hrp, sizeof hrp, data, 99, &n, err, sizeof err) == -1 &&
             has(err, "more than the 99 bytes"), "too much data: %s", err);
    HC_CHECK(hc_age_bech32_encode("age", big, 100, 0, bigtext, (size_t)m) == -1, "no room for the NUL");
    free(big);

    /* Padding: 32 bytes are 51 groups and 1 bit, then 4 bits that must be zero; a 53rd group is too many. */
    unsigned char vals[60];
    unsigned char *key = hc_test_random_bytes(32, 3);
    hc_age_bech32_encode("age", key, 32, 0, text, sizeof text);
    for (int i = 0; i < 52; i++) vals[i] = (unsigned char)(strchr("qpzry9x8gf2tvdw0s3jn54khce6mua7l", text[4 + i]) -
                                                          "qpzry9x8gf2tvdw0s3jn54khce6mua7l");
    char crafted[100];
    bech32_from_values("age", vals, 52, crafted);
    HC_CHECK(strcmp(crafted, text) == 0, "the test's own bech32 agrees: %s vs %s", crafted, text);
    vals[51] |= 1;
    bech32_from_values("age", vals, 52, crafted);
    HC_CHECK(hc_age_bech32_decode(crafted, strlen(crafted), hrp, sizeof hrp, data, sizeof data, &n, err, sizeof err) == -1 &&
             has(err, "padding"), "non-zero padding: %s", err);
    vals[0] = 0; /* one group: 5 bits, all padding, which a byte never needs */
    bech32_from_values("age", vals, 1, crafted);
    HC_CHECK(hc_age_bech32_decode(crafted, strlen(crafted), hrp, sizeof hrp, data, sizeof data, &n, err, sizeof err) == -1 &&
             has(err, "padding"), "a group of padding too many: %s", err);
    free(key);
}

#ifdef HC_HAVE_SODIUM
/* ---- keys ---- */

static void test_keys(void)
{
    char err[400], text[100];
    hc_age_identity id, id2;
    hc_age_recipient r;

    /* The spec's example identity and recipient. */
    static const char spec_id[] = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    static const char spec_r[] = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
    HC_CHECK(hc_age_identity_parse(spec_id, strlen(spec_id), &id, err, sizeof err) == 0, "spec identity: %s", err);
    unsigned char b42[32];
    memset(b42, 0x42, sizeof b42);
    HC_CHECK(memcmp(id.secret, b42, 32) == 0, "the spec's identity is 32 bytes of 0x42");
    HC_CHECK(hc_age_identity_format(&id, text, sizeof text, err, sizeof err) == 0 && strcmp(text, spec_id) == 0,
             "formats back: %s", text);
    HC_CHECK(hc_age_recipient_parse(spec_r, strlen(spec_r), &r, err, sizeof err) == 0, "spec recipient: %s", err);
    HC_CHECK(hc_age_recipient_format(&r, text, sizeof text, err, sizeof err) == 0 && strcmp(text, spec_r) == 0,
             "formats back: %s", text);
    HC_CHECK(hc_age_recipient_format(&r, text, HC_AGE_RECIPIENT_TEXT_LEN, err, sizeof err) == -1 &&
             has(err, "it takes 63"), "a buffer too small: %s", err);

    /* Whitespace around and upper case are fine; a lower-case identity too. */
    HC_CHECK(hc_age_identity_generate(&id, err, sizeof err) == 0, "generate: %s", err);
    HC_CHECK(hc_age_recipient_format(&id.recipient, text, sizeof text, err, sizeof err) == 0, "format");
    char padded[120];
    snprintf(padded, sizeof padded, "  %s\r\n", text);
    HC_CHECK(hc_age_recipient_parse(padded, strlen(padded), &r, err, sizeof err) == 0 &&
             memcmp(r.key, id.recipient.key, 32) == 0, "padded recipient: %s", err);
    for (char *c = padded; *c; c++) *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    HC_CHECK(hc_age_recipient_parse(padded, strlen(padded), &r, err, sizeof err) == 0 &&
             memcmp(r.key, id.recipient.key, 32) == 0, "upper-case recipient: %s", err);
    HC_CHECK(hc_age_identity_format(&id, text, sizeof text, err, sizeof err) == 0, "format identity");
    for (char *c = text; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    HC_CHECK(hc_age_identity_parse(text, strlen(text), &id2, err, sizeof err) == 0 &&
             memcmp(&id2, &id, sizeof id) == 0, "lower-case identity: %s", err);

    /* What each wrong text is said to be; a secret never appears in an error. */
    HC_CHECK(hc_age_identity_format(&id, text, sizeof text, err, sizeof err) == 0, "format identity");
    static const struct { const char *text, *why; } bad_r[] = {
        { "", "is empty" },
        { "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP user@host", "SSH" },
        { "age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5", "post-quantum" },
        { "age1yubikey1qwf4m4vsrdyeuvm5zvnqe9c7cw6vk2k7hn6t3v2crk6t8g4ayylhqrtnq2k", "age plugin" },
        { "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e", "tagged" },
        { "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwx", "checksum" },
        { "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "prefix is not age1" },
    };
    for (size_t i = 0; i < sizeof bad_r / sizeof *bad_r; i++) {
        err[0] = '\0';
        HC_CHECK(hc_age_recipient_parse(bad_r[i].text, strlen(bad_r[i].text), &r, err, sizeof err) == -1 &&
                 has(err, "the recipient ") && has(err, bad_r[i].why), "recipient %s: %s", bad_r[i].text, err);
    }
    err[0] = '\0';
    HC_CHECK(hc_age_recipient_parse(text, strlen(text), &r, err, sizeof err) == -1 && has(err, "is a secret key") &&
             !has(err, text + 16), "a secret key as a recipient: %s", err);
    char r_text[100];
    hc_age_recipient_format(&id.recipient, r_text, sizeof r_text, err, sizeof err);
    HC_CHECK(hc_age_identity_parse(r_text, strlen(r_text), &id2, err, sizeof err) == -1 && has(err, "is a recipient"),
             "a recipient as an identity: %s", err);
    char was = text[30];
    text[30] = was == 'Q' ? 'P' : 'Q';
    HC_CHECK(hc_age_identity_parse(text, strlen(text), &id2, err, sizeof err) == -1 && has(err, "checksum") &&
             !has(err, text + 20), "a typo in an identity: %s", err);
    text[30] = was;
    HC_CHECK(hc_age_identity_parse("AGE-PLUGIN-YUBIKEY-1QQQQQQ", 26, &id2, err, sizeof err) == -1 &&
             has(err, "age plugin"), "a plugin identity: %s", err);
    HC_CHECK(hc_age_identity_parse("AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR", 75,
                                   &id2, err, sizeof err) == -1 && has(err, "post-quantum"), "a pq identity: %s", err);
    /* 31 bytes under the right prefix */
    char short_key[100];
    hc_age_bech32_encode("AGE-SECRET-KEY-", id.secret, 31, 1, short_key, sizeof short_key);
    HC_CHECK(hc_age_identity_parse(short_key, strlen(short_key), &id2, err, sizeof err) == -1 &&
             has(err, "31 bytes, not 32"), "31 bytes: %s", err);

    /* Identity files: comments, blank lines, CRLF, several keys; errors name the line. */
    hc_age_identity other;
    hc_age_identity_generate(&other, err, sizeof err);
    char other_text[100];
    hc_age_identity_format(&other, other_text, sizeof other_text, err, sizeof err);
    char file[600];
    snprintf(file, sizeof file, "# created: 2026-01-01T00:00:00Z\r\n# public key: %s\r\n%s\r\n\r\n   \n# another\n%s",
             r_text, text, other_text);
    hc_age_identity *ids = NULL;
    size_t n = 0;
    HC_CHECK(hc_age_identities_parse(file, strlen(file), &ids, &n, err, sizeof err) == 0 && n == 2, "file: %s", err);
    if (n == 2) {
        HC_CHECK(memcmp(&ids[0], &id, sizeof id) == 0 && memcmp(&ids[1], &other, sizeof other) == 0, "both keys");
    }
    hc_age_identities_free(ids, n);
    snprintf(file, sizeof file, "# a comment\n%s\n\nAGE-SECRET-KEY-1QQQQ\n", text);
    HC_CHECK(hc_age_identities_parse(file, strlen(file), &ids, &n, err, sizeof err) == -1 && ids == NULL && n == 0 &&
             has(err, "line 4 of the identity file is not an age identity"), "bad line 4: %s", err);
    snprintf(file, sizeof file, "%s\n%s\n", text, r_text);
    HC_CHECK(hc_age_identities_parse(file, strlen(file), &ids, &n, err, sizeof err) == -1 &&
             has(err, "line 2 of the identity file is a recipient"), "a public key in it: %s", err);
    HC_CHECK(hc_age_identities_parse("# only a comment\n\n", 18, &ids, &n, err, sizeof err) == -1 &&
             has(err, "holds no identities"), "no keys: %s", err);
    HC_CHECK(hc_age_identities_parse("", 0, &ids, &n, err, sizeof err) == -1 && has(err, "holds no identities"),
             "empty: %s", err);
    HC_CHECK(hc_age_identities_parse("age-encryption.org/v1\n-> scrypt", 32, &ids, &n, err, sizeof err) == -1 &&
             has(err, "itself encrypted with age"), "an encrypted identity file: %s", err);
    sodium_memzero(&id, sizeof id);
    sodium_memzero(&other, sizeof other);
    sodium_memzero(text, sizeof text);
}

/* ---- round trips ---- */

static void test_round_trips(void)
{
    static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 1 };
    static const size_t pieces[] = { 0, 1, 7, 70000 };
    char err[400];
    hc_age_identity id;
    HC_CHECK(hc_age_identity_generate(&id, err, sizeof err) == 0, "generate: %s", err);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t len = sizes[s];
        unsigned char *plain = hc_test_random_bytes(len, (unsigned)s + 11);
        buf_t file;
        /* written in pieces of 1000 bytes, or in one write */
        int rc = encrypt(&id.recipient, 1, plain, len, s % 2 ? 1000 : 0, &file, err, sizeof err);
        HC_CHECK(rc == 0, "encrypt %zu bytes: %s", len, err);
        size_t chunks = len ? (len + HC_AGE_CHUNK_BYTES - 1) / HC_AGE_CHUNK_BYTES : 1;
        /* header: version 22, stanza 54 + 44, MAC line 48; then nonce, payload, a tag per chunk */
        size_t want_len = 22 + 98 + 48 + HC_AGE_NONCE_BYTES + len + chunks * HC_AGE_TAG_BYTES;
        HC_CHECK(file.len == want_len, "%zu bytes encrypt to %zu, want %zu", len, file.len, want_len);
        HC_CHECK(file.len > 21 && memcmp(file.data, "age-encryption.org/v1\n-> X25519 ", 32) == 0, "the header starts");
        for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++) {
            buf_t out;
            rc = decrypt(&id, 1, file.data, file.len, pieces[p], &out, err, sizeof err);
            HC_CHECK(rc == 0 && out.len == len && (len == 0 || memcmp(out.data, plain, len) == 0),
                     "%zu bytes back, fed %zu at a time: rc %d, %zu bytes: %s", len, pieces[p], rc, out.len, err);
            buf_free(&out);
        }
        buf_free(&file);
        free(plain);
    }

    /* Two files of the same text differ (a fresh file key, share and nonce each time). */
    buf_t a, b;
    encrypt(&id.recipient, 1, (const unsigned char *)"same", 4, 0, &a, err, sizeof err);
    encrypt(&id.recipient, 1, (const unsigned char *)"same", 4, 0, &b, err, sizeof err);
    HC_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) != 0, "each file its own keys");
    buf_free(&a);
    buf_free(&b);

    /* Two recipients: each identity opens the file; a list with a stranger first works too. */
    hc_age_identity id2, stranger;
    hc_age_identity_generate(&id2, err, sizeof err);
    hc_age_identity_generate(&stranger, err, sizeof err);
    hc_age_recipient both[2] = { id.recipient, id2.recipient };
    unsigned char *plain = hc_test_random_bytes(100000, 5);
    buf_t file;
    HC_CHECK(encrypt(both, 2, plain, 100000, 0, &file, err, sizeof err) == 0, "two recipients: %s", err);
    hc_age_identity lists[3][2] = { { id, id }, { id2, id2 }, { stranger, id2 } };
    for (int i = 0; i < 3; i++) {
        buf_t out;
        int rc = decrypt(lists[i], i == 2 ? 2 : 1, file.data, file.len, 7, &out, err, sizeof err);
        HC_CHECK(rc == 0 && out.len == 100000 && memcmp(out.data, plain, 100000) == 0, "identity list %d: %s", i, err);
        buf_free(&out);
    }
    buf_free(&file);
    free(plain);

    /* Recipients: none, too many, a low-order point. */
    HC_CHECK(encrypt(both, 0, NULL, 0, 0, &file, err, sizeof err) == -1 && has(err, "no recipient"), "none: %s", err);
    buf_free(&file);
    hc_age_recipient *many = calloc(HC_AGE_MAX_RECIPIENTS + 1, sizeof *many);
    for (size_t i = 0; i <= HC_AGE_MAX_RECIPIENTS; i++) many[i] = id.recipient;
    HC_CHECK(encrypt(many, HC_AGE_MAX_RECIPIENTS + 1, NULL, 0, 0, &file, err, sizeof err) == -1 &&
             has(err, "513 recipients are more than the 512"), "too many: %s", err);
    buf_free(&file);
    /* The most recipients there can be: the header still fits what the reader takes. */
    HC_CHECK(encrypt(many, HC_AGE_MAX_RECIPIENTS, (const unsigned char *)"x", 1, 0, &file, err, sizeof err) == 0,
             "512 recipients: %s", err);
    buf_t out;
    HC_CHECK(decrypt(&id, 1, file.data, file.len, 0, &out, err, sizeof err) == 0 && out.len == 1, "and read: %s", err);
    buf_free(&out);
    buf_free(&file);
    free(many);
    hc_age_recipient weak[2] = { id.recipient, { { 0 } } };
    HC_CHECK(encrypt(weak, 2, NULL, 0, 0, &file, err, sizeof err) == -1 &&
             has(err, "recipient 2 (age1qqqq") && has(err, "low-order point"), "weak key: %s", err);
    HC_CHECK(file.len == 0, "nothing written for a file that could not start");
    buf_free(&file);

    /* A sink that fails: its own words come back, and the writer stays failed. */
    hc_age_writer w;
    buf_t sink = { .fail_at_call = 2 };
    HC_CHECK(hc_age_writer_init(&w, &id.recipient, 1, to_buf, &sink, err, sizeof err) == 0, "init: %s", err);
    unsigned char *big = hc_test_random_bytes(200000, 1);
    HC_CHECK(hc_age_writer_write(&w, big, 200000, err, sizeof err) == -1 && has(err, "No space left on device"),
             "full disk: %s", err);
    HC_CHECK(hc_age_writer_write(&w, big, 1, err, sizeof err) == -1 && has(err, "failed earlier"), "then: %s", err);
    HC_CHECK(hc_age_writer_finish(&w, err, sizeof err) == -1, "no finish");
    hc_age_writer_free(&w);
    hc_age_writer_free(&w);
    buf_free(&sink);
    HC_CHECK(hc_age_writer_init(&w, &id.recipient, 1, to_buf, &sink, err, sizeof err) == 0, "init: %s", err);
    HC_CHECK(hc_age_writer_finish(&w, err, sizeof err) == 0, "finish");
    HC_CHECK(hc_age_writer_write(&w, "x", 1, err, sizeof err) == -1 && has(err, "already finished"), "late: %s", err);
    hc_age_writer_free(&w);
    buf_free(&sink);

    /* A reader's output that fails: its words, kept for every later call. */
    encrypt(&id.recipient, 1, big, 200000, 0, &file, err, sizeof err);
    hc_age_reader r;
    buf_t plain_out = { .fail_at_call = 2 };
    HC_CHECK(hc_age_reader_init(&r, &id, 1, err, sizeof err) == 0, "reader: %s", err);
    HC_CHECK(hc_age_reader_feed(&r, file.data, file.len, to_buf, &plain_out, err, sizeof err) == -1 &&
             has(err, "No space left on device"), "output fails: %s", err);
    HC_CHECK(plain_out.len == 65536, "the first chunk came out: %zu", plain_out.len);
    err[0] = '\0';
    HC_CHECK(hc_age_reader_feed(&r, "x", 1, to_buf, &plain_out, err, sizeof err) == -1 &&
             has(err, "No space left on device"), "still: %s", err);
    HC_CHECK(hc_age_reader_finish(&r, to_buf, &plain_out, err, sizeof err) == -1 && has(err, "No space"), "at finish");
    hc_age_reader_free(&r);
    hc_age_reader_free(&r);
    err[0] = '\0';
    HC_CHECK(hc_age_reader_feed(&r, "x", 1, NULL, NULL, err, sizeof err) == -1, "a freed reader");
    buf_free(&plain_out);
    /* NULL output: checks only. */
    HC_CHECK(hc_age_reader_init(&r, &id, 1, err, sizeof err) == 0 &&
             hc_age_reader_feed(&r, file.data, file.len, NULL, NULL, err, sizeof err) == 0 &&
             hc_age_reader_finish(&r, NULL, NULL, err, sizeof err) == 0, "checks only: %s", err);
    HC_CHECK(r.plaintext_bytes == 200000 && r.file_bytes == file.len, "counts: %llu",
             (unsigned long long)r.plaintext_bytes);
    HC_CHECK(hc_age_reader_finish(&r, NULL, NULL, err, sizeof err) == -1 && has(err, "already finished"), "twice");
    hc_age_reader_free(&r);
    HC_CHECK(hc_age_reader_init(&r, &id, 0, err, sizeof err) == -1 && has(err, "no identity"), "no identity: %s", err);
    hc_age_reader_free(&r);
    buf_free(&file);
    free(big);
    sodium_memzero(&id, sizeof id);
}

/* ---- what goes wrong ---- */

/* A copy of f with len bytes and room for more. */
static unsigned char *copy_of(const buf_t *f, size_t extra)
{
    unsigned char *c = malloc(f->len + extra + 1);
    memcpy(c, f->data, f->len);
    return c;
}

static size_t header_end(const buf_t *f)
{
    const unsigned char *mac = memmem(f->data, f->len, "\n--- ", 5);
    return (size_t)(memchr(mac + 1, '\n', f->len) - (const void *)f->data) + 1;
}

/* A header made by hand (the MAC is whatever was given), then 100 bytes of "payload". */
static void expect_header_error(const hc_age_identity *id, const char *header, const char *want, const char *what)
{
    size_t hl = strlen(header);
    unsigned char *file = malloc(hl + 100);
    memcpy(file, header, hl);
    memset(file + hl, 0xab, 100);
    expect_error(id, 1, file, hl + 100, want, what);
    free(file);
}

static void test_errors(void)
{
    char err[400];
    hc_age_identity id, id2, stranger;
    hc_age_identity_generate(&id, err, sizeof err);
    hc_age_identity_generate(&id2, err, sizeof err);
    hc_age_identity_generate(&stranger, err, sizeof err);
    hc_age_identity pair[2] = { id, stranger };
    size_t len = 3 * HC_AGE_CHUNK_BYTES;
    unsigned char *plain = hc_test_random_bytes(len, 77);
    buf_t f, f2, small;
    encrypt(&id.recipient, 1, plain, len, 0, &f, err, sizeof err);
    hc_age_recipient both[2] = { id.recipient, id2.recipient };
    encrypt(both, 2, plain, len, 0, &f2, err, sizeof err);
    encrypt(&id.recipient, 1, plain, 100, 0, &small, err, sizeof err);
    size_t he = header_end(&f);

    /* Another identity; two others. */
    expect_error(&stranger, 1, f.data, f.len, NOT_FOR " (1 X25519 stanza, none opens with the 1 identity given)",
                 "a stranger");
    hc_age_identity strangers[2] = { stranger, id2 };
    expect_error(strangers, 2, f.data, f.len, NOT_FOR " (1 X25519 stanza, none opens with the 2 identities given)",
                 "two strangers");
    expect_error(&stranger, 1, f2.data, f2.len, NOT_FOR " (2 X25519 stanzas, none opens with the 1 identity given)",
                 "a stranger, two stanzas");

    /* A byte flipped in the header: where decides what is said. */
    unsigned char *c = copy_of(&f, 0);
    c[3] ^= 0x20;
    expect_error(&id, 1, c, f.len, "not an age file (it does not start with age-encryption.org/v1)", "version flipped");
    memcpy(c, f.data, f.len);
    c[20] = '2';
    expect_error(&id, 1, c, f.len, "the age file is of a version heapcapture does not read (\"age-encryption.org/v2\"",
                 "version 2");
    memcpy(c, f.data, f.len);
    c[40] = c[40] == 'A' ? 'B' : 'A'; /* in the ephemeral share */
    expect_error(&id, 1, c, f.len, NOT_FOR, "share flipped");
    memcpy(c, f.data, f.len);
    c[22 + 54 + 5] = c[22 + 54 + 5] == 'A' ? 'B' : 'A'; /* in the stanza's body */
    expect_error(&id, 1, c, f.len, NOT_FOR, "body flipped");
    memcpy(c, f.data, f.len);
    c[he - 10] = c[he - 10] == 'A' ? 'B' : 'A'; /* in the MAC */
    expect_error(&id, 1, c, f.len, ALTERED_HEADER, "MAC flipped");
    memcpy(c, f.data, f.len);
    c[7] = 'E'; /* "age-encryption" -> "age-Encryption": covered by the MAC, were it read */
    expect_error(&id, 1, c, f.len, "not an age file", "case changed");
    free(c);
    /* the second stanza changed: the first opens, the MAC catches it */
    c = copy_of(&f2, 0);
    c[22 + 98 + 20] = c[22 + 98 + 20] == 'A' ? 'B' : 'A';
    expect_error(&id, 1, c, f2.len, ALTERED_HEADER, "the other stanza flipped");
    free(c);
    /* a stanza added, a stanza removed */
    c = malloc(f.len + 64);
    size_t at = he - 48; /* the MAC line */
    memcpy(c, f.data, at);
    static const char added[] = "-> example.com/enigma arg\nAAAA\n";
    memcpy(c + at, added, sizeof added - 1);
    memcpy(c + at + sizeof added - 1, f.data + at, f.len - at);
    expect_error(&id, 1, c, f.len + sizeof added - 1, ALTERED_HEADER, "a stanza added");
    free(c);
    c = malloc(f2.len);
    memcpy(c, f2.data, 22);
    memcpy(c + 22, f2.data + 22 + 98, f2.len - 22 - 98); /* id's stanza removed, id2's left */
    expect_error(&id2, 1, c, f2.len - 98, ALTERED_HEADER, "a stanza removed");
    free(c);

    /* A byte flipped in the payload. */
    c = copy_of(&f, 0);
    c[he + 3] ^= 1; /* the nonce: every chunk's key changes */
    expect_error(&id, 1, c, f.len, "the age file was altered at chunk 0 (its tag does not match)", "nonce flipped");
    memcpy(c, f.data, f.len);
    c[he + 16 + HC_AGE_SEALED_CHUNK_BYTES + 100] ^= 1;
    expect_error(&id, 1, c, f.len, "the age file was altered at chunk 1 (its tag does not match)", "chunk 1 flipped");
    memcpy(c, f.data, f.len);
    c[he + 16 + 2 * HC_AGE_SEALED_CHUNK_BYTES - 1] ^= 0x80; /* chunk 1's tag */
    expect_error(&id, 1, c, f.len, "the age file was altered at chunk 1 (its tag does not match)", "a tag flipped");
    memcpy(c, f.data, f.len);
    c[f.len - 1] ^= 1;
    expect_error(&id, 1, c, f.len, "the age file is truncated or was altered at chunk 2, where it ends",
                 "the last chunk flipped");
    /* chunks swapped */
    memcpy(c + he + 16, f.data + he + 16 + HC_AGE_SEALED_CHUNK_BYTES, HC_AGE_SEALED_CHUNK_BYTES);
    memcpy(c + he + 16 + HC_AGE_SEALED_CHUNK_BYTES, f.data + he + 16, HC_AGE_SEALED_CHUNK_BYTES);
    memcpy(c + f.len - 1, f.data + f.len - 1, 1);
    expect_error(&id, 1, c, f.len, "the age file was altered at chunk 0 (its tag does not match)", "chunks swapped");
    free(c);

    /* Cut short anywhere. */
    static const struct { size_t at; const char *want; } cuts[] = {
        { 0, "not an age file (it is empty)" },
        { 5, "the age file is truncated (it ends inside its header)" },
        { 22, "the age file is truncated (it ends inside its header)" },
        { 100, "the age file is truncated (it ends inside its header)" },
        { 0x7fff, NULL }, /* he - 1, below */
        { 0x7ffe, NULL }, /* he */
        { 0x7ffd, NULL }, /* he + 8 */
        { 0x7ffc, NULL }, /* he + 16 */
    };
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        size_t cut = cuts[i].at;
        const char *want = cuts[i].want;
        if (cut == 0x7fff) cut = he - 1, want = "the age file is truncated (it ends inside its header)";
        if (cut == 0x7ffe) cut = he, want = TRUNCATED;
        if (cut == 0x7ffd) cut = he + 8, want = TRUNCATED;
        if (cut == 0x7ffc) cut = he + 16, want = TRUNCATED;
        expect_error(&id, 1, f.data, cut, want, "cut");
    }
    size_t p0 = he + 16;
    expect_error(&id, 1, f.data, p0 + 10, TRUNCATED, "cut inside the first tag's room");
    expect_error(&id, 1, f.data, p0 + HC_AGE_SEALED_CHUNK_BYTES, TRUNCATED, "cut after chunk 0");
    expect_error(&id, 1, f.data, p0 + 2 * HC_AGE_SEALED_CHUNK_BYTES, TRUNCATED, "cut after chunk 1");
    expect_error(&id, 1, f.data, p0 + 1000, "the age file is truncated or was altered at chunk 0, where it ends",
                 "cut inside chunk 0");
    expect_error(&id, 1, f.data, p0 + HC_AGE_SEALED_CHUNK_BYTES + 1, TRUNCATED, "a byte of chunk 1");
    expect_error(&id, 1, f.data, p0 + HC_AGE_SEALED_CHUNK_BYTES + 5000,
                 "the age file is truncated or was altered at chunk 1, where it ends", "cut inside chunk 1");
    expect_error(&id, 1, f.data, f.len - 1, "the age file is truncated or was altered at chunk 2, where it ends",
                 "the last byte cut");
    expect_error(&id, 1, small.data, small.len - 1, "the age file is truncated or was altered at chunk 0", "small cut");

    /* Data after the last chunk. */
    c = copy_of(&f, 10);
    memcpy(c + f.len, "0123456789", 10);
    expect_error(&id, 1, c, f.len + 1, "the age file goes on after its last chunk (chunk 2)", "a byte appended");
    expect_error(&id, 1, c, f.len + 10, "the age file goes on after its last chunk (chunk 2)", "bytes appended");
    free(c);
    /* the last chunk short: what follows makes it a chunk whose tag does not match */
    c = copy_of(&small, 10);
    memcpy(c + small.len, "0123456789", 10);
    expect_error(&id, 1, c, small.len + 10, "the age file is truncated or was altered at chunk 0, where it ends",
                 "appended to a short last chunk");
    free(c);
    /* a whole file appended */
    c = malloc(2 * f.len);
    memcpy(c, f.data, f.len);
    memcpy(c + f.len, f.data, f.len);
    expect_error(&id, 1, c, 2 * f.len, "the age file goes on after its last chunk (chunk 2)", "two files joined");
    free(c);

    /* Not age files. */
    expect_error(&id, 1, (const unsigned char *)"", 0, "not an age file (it is empty)", "empty");
    expect_error(&id, 1, (const unsigned char *)"{\"address\":\"0x1\"}\n", 18,
                 "not an age file (it does not start with age-encryption.org/v1)", "a dump");
    expect_error(&id, 1, (const unsigned char *)"\x1f\x8b\x08\x00", 4, "not an age file (it does not start", "gzip");
    expect_error(&id, 1, (const unsigned char *)"age-encryption.org/", 19, "truncated (it ends inside its header)",
                 "only the prefix");
    expect_error(&id, 1, (const unsigned char *)"age-encryption.org/v1", 21, "truncated (it ends inside its header)",
                 "only the version");
    expect_error(&id, 1, (const unsigned char *)"age-encryption.org/v1 \n", 23, "a version heapcapture does not read",
                 "a space after v1");
    static const char armored[] = "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+\n";
    expect_error(&id, 1, (const unsigned char *)armored, sizeof armored - 1, "ASCII-armored (age -a)", "armored");

    /* Headers made by hand. */
    static const char mac[] = "--- HK2NmOBN9Dpq0Gw6xMCuhFcQlQLvZ/wQUi/2scLG75s\n";
    static const char body43[] = "qRS0AMjdjPvZ/WT08U2KL4G+PIooA3hy38SvLpvaC1E\n";
    static const char share[] = "XEl0dJ6y3C7KZkgmgWUicg63EyXJiwBJW8PdYJ/cYBE";
    char h[70000];
#define HDR(...) snprintf(h, sizeof h, "age-encryption.org/v1\n" __VA_ARGS__)
    HDR("-> scrypt ajMFur+EJLGaohv/dLRGnw 18\n%s%s", body43, mac);
    expect_header_error(&id, h, "the age file is encrypted with a passphrase (scrypt), which heapcapture does not "
                        "support", "scrypt");
    HDR("-> scrypt ajMFur+EJLGaohv/dLRGnw 18\n%s-> X25519 %s\n%s%s", body43, share, body43, mac);
    expect_header_error(&id, h, "an scrypt stanza must be its only one", "scrypt and X25519");
    HDR("-> ssh-ed25519 Xyz0ZA abc\n%s-> x-grease a\n\n%s", body43, mac);
    expect_header_error(&id, h, "the age file is not for an X25519 identity (its 2 stanzas are of other types, such as "
                        "\"ssh-ed25519\"); heapcapture reads only files encrypted to age1... recipients", "ssh only");
    HDR("-> piv-p256 abc\n%s%s", body43, mac);
    expect_header_error(&id, h, "(its 1 stanza is of other types, such as \"piv-p256\")", "a plugin only");
    HDR("%s", mac);
    expect_header_error(&id, h, MALFORMED " (it has no recipient stanza)", "no stanza");
    HDR("-> X25519 %s extra\n%s%s", share, body43, mac);
    expect_header_error(&id, h, MALFORMED " (line 2: an X25519 stanza has 3 arguments, not 2)", "3 arguments");
    HDR("-> X25519\n%s%s", body43, mac);
    expect_header_error(&id, h, "an X25519 stanza has 1 argument, not 2", "1 argument");
    HDR("-> X25519 %.42sF\n%s%s", share, body43, mac);
    expect_header_error(&id, h, "ephemeral share is not 32 bytes of canonical base64", "a non-canonical share");
    HDR("-> X25519 %s=\n%s%s", share, body43, mac);
    expect_header_error(&id, h, "ephemeral share is not 32 bytes of canonical base64", "a padded share");
    HDR("-> X25519 %s\nqRS0AMjdjPvZ/WT08U2KL4G+PIooA3hy38SvLpvaCw\n%s", share, mac);
    expect_header_error(&id, h, "an X25519 stanza's body is 31 bytes, not 32", "a short body");
    HDR("-> X25519 %s\n%.64s\n%s", share, "qRS0AMjdjPvZ/WT08U2KL4G+PIooA3hy38SvLpvaC1EqRS0AMjdjPvZ/WT08U2KL4G+PIoo", mac);
    expect_header_error(&id, h, "a stanza's body lacks its final line", "no final body line");
    HDR("-> X25519 %s\n%.64s\n\n%s", share, "qRS0AMjdjPvZ/WT08U2KL4G+PIooA3hy38SvLpvaC1EqRS0AMjdjPvZ/WT08U2KL4G+PIoo", mac);
    expect_header_error(&id, h, "an X25519 stanza's body is 48 bytes, not 32", "a 48-byte body");
    HDR("-> X25519 %s\n%s%s%s", share, "qRS0AMjdjPvZ/WT08U2KL4G+PIooA3hy38SvLpvaC1EqRS0AMjdjPvZ/WT08U2KL4G+PIooA",
        "\n", mac);
    expect_header_error(&id, h, "a stanza's body line is longer than 64 columns", "a line over 64 columns");
    HDR("-> X25519 %s\nqRS0AMjdjPvZ/WT08U2KL4G+PIooA3hy38SvLpvaC1E=\n%s", share, mac);
    expect_header_error(&id, h, "a stanza's body is not canonical unpadded base64", "a padded body");
    HDR("-> X25519 %s\nqRS0AMjdjPvZ/WT08U2KL4G+PIooA3hy38SvLpvaC1E\r\n%s", share, mac);
    expect_header_error(&id, h, "a stanza's body is not canonical unpadded base64", "CRLF");
    HDR("->  X25519 %s\n%s%s", share, body43, mac);
    expect_header_error(&id, h, MALFORMED " (line 2: a stanza has an empty argument)", "two spaces");
    HDR("-> X25519 %s \n%s%s", share, body43, mac);
    expect_header_error(&id, h, "a stanza has an empty argument", "a trailing space");
    HDR("-> \n%s%s", body43, mac);
    expect_header_error(&id, h, "a stanza has an empty argument", "no argument");
    HDR("-> X\x01 %s\n%s%s", share, body43, mac);
    expect_header_error(&id, h, "that is not printable ASCII", "a control byte");
    HDR("-> a\n\nX25519 %s\n%s%s", share, body43, mac);
    expect_header_error(&id, h, MALFORMED " (line 4: it is neither a stanza", "a line out of place");
    HDR("-> X25519 %s\n%s--- HK2NmOBN9Dpq0Gw6xMCuhFcQlQLvZ/wQUi/2scLG75\n", share, body43);
    expect_header_error(&id, h, "the MAC line is not \"--- \" and 43 base64 characters", "a short MAC");
    HDR("-> X25519 %s\n%s---HK2NmOBN9Dpq0Gw6xMCuhFcQlQLvZ/wQUi/2scLG75ss\n", share, body43);
    expect_header_error(&id, h, "the MAC line is not", "no space after ---");
    /* A low-order ephemeral share (all zeros) makes a zero shared secret: the spec says abort. */
    HDR("-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n%s%s", body43, mac);
    expect_header_error(&id, h, "ephemeral share is a low-order point", "a low-order share");
    /* Valid-looking X25519 stanzas that are not ours */
    HDR("-> X25519 %s\n%s%s", share, body43, mac);
    expect_header_error(&id, h, NOT_FOR " (1 X25519 stanza, none opens with the 1 identity given)", "the spec's stanza");
    /* Too long, and too many stanzas */
    size_t o = (size_t)snprintf(h, sizeof h, "age-encryption.org/v1\n");
    while (o < HC_AGE_MAX_HEADER_BYTES + 10) o += (size_t)snprintf(h + o, sizeof h - o, "-> a\n%s", body43);
    expect_header_error(&id, h, "the age file's header is longer than 65536 bytes", "a long header");
    o = (size_t)snprintf(h, sizeof h, "age-encryption.org/v1\n");
    for (int i = 0; i <= HC_AGE_MAX_STANZAS; i++) o += (size_t)snprintf(h + o, sizeof h - o, "-> a\n\n");
    snprintf(h + o, sizeof h - o, "%s", mac);
    expect_header_error(&id, h, "the age file's header has more than 1024 stanzas", "many stanzas");
#undef HDR

    /* A last chunk that is empty after a full one: forbidden (the writer never makes one). */
    hc_age_writer w;
    buf_t crafted = { 0 };
    hc_age_writer_init(&w, &id.recipient, 1, to_buf, &crafted, err, sizeof err);
    unsigned char *chunk = calloc(1, HC_AGE_SEALED_CHUNK_BYTES);
    unsigned char nonce[12] = { 0 };
    crypto_aead_chacha20poly1305_ietf_encrypt(chunk, NULL, plain, HC_AGE_CHUNK_BYTES, NULL, 0, NULL, nonce,
                                              w.payload_key);
    to_buf(&crafted, chunk, HC_AGE_SEALED_CHUNK_BYTES, err, sizeof err);
    nonce[10] = 1, nonce[11] = 1;
    crypto_aead_chacha20poly1305_ietf_encrypt(chunk, NULL, plain, 0, NULL, 0, NULL, nonce, w.payload_key);
    to_buf(&crafted, chunk, HC_AGE_TAG_BYTES, err, sizeof err);
    expect_error(&id, 1, crafted.data, crafted.len, "the age file is malformed (its last chunk, chunk 1, is empty",
                 "an empty last chunk");
    /* ... while a full last chunk, as the writer makes for 64 KiB, reads */
    crafted.len -= HC_AGE_SEALED_CHUNK_BYTES + HC_AGE_TAG_BYTES;
    nonce[10] = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(chunk, NULL, plain, HC_AGE_CHUNK_BYTES, NULL, 0, NULL, nonce,
                                              w.payload_key);
    to_buf(&crafted, chunk, HC_AGE_SEALED_CHUNK_BYTES, err, sizeof err);
    buf_t out;
    HC_CHECK(decrypt(&id, 1, crafted.data, crafted.len, 7, &out, err, sizeof err) == 0 && out.len == HC_AGE_CHUNK_BYTES,
             "a full last chunk: %s", err);
    buf_free(&out);
    hc_age_writer_free(&w);
    buf_free(&crafted);
    free(chunk);

    /* After an error, every call repeats it. */
    hc_age_reader r;
    hc_age_reader_init(&r, pair, 2, err, sizeof err);
    HC_CHECK(hc_age_reader_feed(&r, "nope", 4, NULL, NULL, err, sizeof err) == -1 && has(err, "not an age file"), "x");
    err[0] = '\0';
    HC_CHECK(hc_age_reader_feed(&r, f.data, f.len, NULL, NULL, err, sizeof err) == -1 && has(err, "not an age file"),
             "sticky: %s", err);
    err[0] = '\0';
    HC_CHECK(hc_age_reader_finish(&r, NULL, NULL, err, sizeof err) == -1 && has(err, "not an age file"), "at finish");
    hc_age_reader_free(&r);

    buf_free(&f);
    buf_free(&f2);
    buf_free(&small);
    free(plain);
}

/* ---- interop with the age tool ---- */

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf_t b = { 0 };
    unsigned char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) to_buf(&b, tmp, n, NULL, 0);
    fclose(f);
    *len = b.len;
    if (!b.data) b.data = malloc(1);
    return b.data;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "test_age: `%s` exited with %d\n", cmd, rc);
    return rc;
}

static void test_interop(void)
{
    if (system("command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1") != 0) {
        HC_CHECK(0, "the age tool is not installed (age, age-keygen): run bin/setup, which installs Debian's age "
                 "package; the interop tests need it");
        return;
    }
    char dir[] = "/tmp/hc_age_test_XXXXXX", path[256], path2[256], err[400];
    if (!mkdtemp(dir)) {
        HC_CHECK(0, "mkdtemp failed");
        return;
    }
    /* the key pair, by age-keygen */
    HC_CHECK(run("age-keygen -o %s/key.txt 2>/dev/null", dir) == 0, "age-keygen");
    HC_CHECK(run("age-keygen -y -o %s/key.pub %s/key.txt", dir, dir) == 0, "age-keygen -y");
    snprintf(path, sizeof path, "%s/key.txt", dir);
    size_t keylen = 0, publen = 0;
    char *keytext = (char *)read_file(path, &keylen);
    snprintf(path, sizeof path, "%s/key.pub", dir);
    char *pubtext = (char *)read_file(path, &publen);
    hc_age_identity *ids = NULL;
    size_t nids = 0;
    hc_age_recipient r;
    int keys_ok = keytext && pubtext &&
                  hc_age_identities_parse(keytext, keylen, &ids, &nids, err, sizeof err) == 0 && nids == 1 &&
                  hc_age_recipient_parse(pubtext, publen, &r, err, sizeof err) == 0;
    HC_CHECK(keys_ok, "age-keygen's key pair reads: %s", err);
    if (!keys_ok) goto out;
    HC_CHECK(memcmp(r.key, ids[0].recipient.key, 32) == 0, "our public key of age-keygen's secret is age-keygen's");
    char ours[100];
    hc_age_recipient_format(&ids[0].recipient, ours, sizeof ours, err, sizeof err);
    HC_CHECK(strstr(keytext, ours) != NULL, "our text of the public key is the one in key.txt's comment: %s", ours);
    /* a second key pair, to make files for two */
    HC_CHECK(run("age-keygen -o %s/key2.txt 2>/dev/null && age-keygen -y -o %s/key2.pub %s/key2.txt", dir, dir, dir) == 0,
             "age-keygen 2");

    /* and a file that ends with a full chunk, whose last-chunk flag alone says it is the end */
    static const size_t sizes[] = { 0, 100, 200000, 2 * HC_AGE_CHUNK_BYTES };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t len = sizes[s], got = 0;
        unsigned char *plain = hc_test_random_bytes(len, (unsigned)s + 100);
        snprintf(path, sizeof path, "%s/plain", dir);
        write_file(path, plain, len);

        /* (a) age encrypts, we decrypt: to one recipient, and to two */
        for (int two = 0; two < 2; two++) {
            if (two)
                HC_CHECK(run("age -R %s/key2.pub -R %s/key.pub -o %s/theirs.age %s/plain", dir, dir, dir, dir) == 0,
                         "age -R -R");
            else
                HC_CHECK(run("age -r %s -o %s/theirs.age %s/plain", ours, dir, dir) == 0, "age -r");
            snprintf(path2, sizeof path2, "%s/theirs.age", dir);
            unsigned char *theirs = read_file(path2, &got);
            HC_CHECK(theirs != NULL, "age wrote %s", path2);
            if (!theirs) continue;
            size_t pieces[] = { 0, 7, 70000 };
            for (size_t p = 0; p < 3; p++) {
                buf_t out;
                int rc = decrypt(ids, 1, theirs, got, pieces[p], &out, err, sizeof err);
                HC_CHECK(rc == 0 && out.len == len && (len == 0 || memcmp(out.data, plain, len) == 0),
                         "we read age's file of %zu bytes%s (pieces of %zu): %s", len, two ? ", two recipients" : "",
                         pieces[p], err);
                buf_free(&out);
            }
            free(theirs);
        }
        /* age -a: refused, saying so */
        HC_CHECK(run("age -a -r %s -o %s/theirs.age.asc %s/plain", ours, dir, dir) == 0, "age -a");
        snprintf(path2, sizeof path2, "%s/theirs.age.asc", dir);
        unsigned char *asc = read_file(path2, &got);
        if (asc) expect_error(ids, 1, asc, got, "ASCII-armored", "age -a");
        free(asc);

        /* (b) we encrypt, age decrypts: for us alone, and for two (the other key decrypts) */
        hc_age_recipient two[2];
        snprintf(path2, sizeof path2, "%s/key2.pub", dir);
        size_t p2len = 0;
        char *pub2 = (char *)read_file(path2, &p2len);
        HC_CHECK(pub2 && hc_age_recipient_parse(pub2, p2len, &two[1], err, sizeof err) == 0, "key2.pub: %s", err);
        free(pub2);
        two[0] = r;
        for (int n = 1; n <= 2; n++) {
            buf_t file;
            HC_CHECK(encrypt(two, (size_t)n, plain, len, 4096, &file, err, sizeof err) == 0, "encrypt: %s", err);
            snprintf(path2, sizeof path2, "%s/ours.age", dir);
            write_file(path2, file.data, file.len);
            buf_free(&file);
            unlink(path);
            /* to stdout: age -o creates no file for an empty plaintext */
            HC_CHECK(run("age -d -i %s/%s %s/ours.age > %s/plain", dir, n == 1 ? "key.txt" : "key2.txt", dir, dir) == 0,
                     "age -d of our file of %zu bytes for %d", len, n);
            got = 0;
            unsigned char *back = read_file(path, &got);
            HC_CHECK(back && got == len && (len == 0 || memcmp(back, plain, len) == 0),
                     "age reads our file of %zu bytes for %d recipient(s) byte for byte (%zu back)", len, n, got);
            free(back);
        }
        free(plain);
    }
out:
    hc_age_identities_free(ids, nids);
    if (keytext) sodium_memzero(keytext, keylen);
    free(keytext);
    free(pubtext);
    run("rm -rf %s", dir);
}
#endif

static void test_without_sodium(void)
{
    static const char want[] = "this build of heapcapture has no libsodium (Debian: libsodium-dev, Homebrew: "
                               "libsodium); it cannot encrypt or decrypt age files";
    char err[300] = "", text[100];
    hc_age_recipient r = { { 1 } };
    hc_age_identity id;
    hc_age_identity *ids = NULL;
    size_t n = 0;
    HC_CHECK(hc_age_recipient_parse("age1x", 5, &r, err, sizeof err) == -1, "recipient parse");
    HC_CHECK_STR(err, want, "recipient parse says what to install");
    err[0] = '\0';
    HC_CHECK(hc_age_recipient_format(&r, text, sizeof text, err, sizeof err) == -1, "format");
    HC_CHECK_STR(err, want, "format");
    err[0] = '\0';
    HC_CHECK(hc_age_identity_generate(&id, err, sizeof err) == -1, "generate");
    HC_CHECK_STR(err, want, "generate");
    err[0] = '\0';
    HC_CHECK(hc_age_identities_parse("x", 1, &ids, &n, err, sizeof err) == -1 && !ids, "identity file");
    HC_CHECK_STR(err, want, "identity file");
    hc_age_writer w;
    err[0] = '\0';
    HC_CHECK(hc_age_writer_init(&w, &r, 1, to_buf, NULL, err, sizeof err) == -1, "writer");
    HC_CHECK_STR(err, want, "writer");
    err[0] = '\0';
    HC_CHECK(hc_age_writer_write(&w, "x", 1, err, sizeof err) == -1, "write");
    HC_CHECK_STR(err, want, "write");
    hc_age_writer_free(&w);
    hc_age_reader rd;
    err[0] = '\0';
    HC_CHECK(hc_age_reader_init(&rd, &id, 1, err, sizeof err) == -1, "reader");
    HC_CHECK_STR(err, want, "reader");
    err[0] = '\0';
    HC_CHECK(hc_age_reader_feed(&rd, "x", 1, NULL, NULL, err, sizeof err) == -1, "feed");
    HC_CHECK_STR(err, want, "feed");
    hc_age_reader_free(&rd);
}

int main(void)
{
    test_bech32();
#ifdef HC_HAVE_SODIUM
    if (hc_age_available()) {
        test_keys();
        test_round_trips();
        test_errors();
        test_interop();
    }
#endif
    if (!hc_age_available()) test_without_sodium();
    return hc_test_summary("age");
}
