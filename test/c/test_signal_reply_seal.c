/* signal_reply_seal.c: a sealed reply opens with its request's key pair and with nothing else; altered
 * or cut boxes are refused. Without libsodium, every call says what to install. */
#include "hc_test.h"
#include "signal_reply_seal.h"

#include <string.h>

#define NOT_OPEN "does not open with this request's key"

static void test_round_trip(void)
{
    unsigned char pk[HC_SEAL_PUBLICKEY_BYTES], sk[HC_SEAL_SECRETKEY_BYTES];
    char err[256] = "";
    HC_CHECK(hc_seal_keypair(pk, sk, err, sizeof err) == 0, "key pair: %s", err);

    static const unsigned char msg[] = "s3://bucket/heap-1234.json.gz\n\0with a NUL";
    size_t len = sizeof msg - 1;
    unsigned char box[sizeof msg - 1 + HC_SEAL_OVERHEAD], opened[sizeof msg] = { 0 };
    HC_CHECK(hc_seal(msg, len, pk, box, err, sizeof err) == 0, "seal: %s", err);
    HC_CHECK(hc_seal_open(box, sizeof box, pk, sk, opened, err, sizeof err) == 0, "open: %s", err);
    HC_CHECK(memcmp(opened, msg, len) == 0, "the message comes back");

    unsigned char box2[sizeof box];
    HC_CHECK(hc_seal(msg, len, pk, box2, err, sizeof err) == 0, "seal again: %s", err);
    HC_CHECK(memcmp(box, box2, sizeof box) != 0, "each box has its own ephemeral key");

    unsigned char empty_box[HC_SEAL_OVERHEAD], nothing[1];
    HC_CHECK(hc_seal(NULL, 0, pk, empty_box, err, sizeof err) == 0, "an empty message seals: %s", err);
    HC_CHECK(hc_seal_open(empty_box, sizeof empty_box, pk, sk, nothing, err, sizeof err) == 0,
             "and opens: %s", err);

    /* Altered anywhere (the ephemeral key, the MAC, the text): refused. */
    size_t places[] = { 0, HC_SEAL_PUBLICKEY_BYTES, HC_SEAL_OVERHEAD, sizeof box - 1 };
    for (size_t i = 0; i < sizeof places / sizeof *places; i++) {
        box[places[i]] ^= 0x01;
        err[0] = '\0';
        HC_CHECK(hc_seal_open(box, sizeof box, pk, sk, opened, err, sizeof err) == -1, "flipped byte %zu", places[i]);
        HC_CHECK(strstr(err, NOT_OPEN) != NULL, "flipped byte %zu: %s", places[i], err);
        box[places[i]] ^= 0x01;
    }

    unsigned char pk2[HC_SEAL_PUBLICKEY_BYTES], sk2[HC_SEAL_SECRETKEY_BYTES];
    HC_CHECK(hc_seal_keypair(pk2, sk2, err, sizeof err) == 0, "a second key pair: %s", err);
    HC_CHECK(memcmp(pk, pk2, sizeof pk) != 0, "key pairs differ");
    err[0] = '\0';
    HC_CHECK(hc_seal_open(box, sizeof box, pk2, sk2, opened, err, sizeof err) == -1, "another request's key");
    HC_CHECK(strstr(err, NOT_OPEN) != NULL, "another key: %s", err);
    err[0] = '\0';
    HC_CHECK(hc_seal_open(box, sizeof box, pk, sk2, opened, err, sizeof err) == -1, "the right pk, a wrong sk");
    HC_CHECK(strstr(err, NOT_OPEN) != NULL, "wrong sk: %s", err);

    err[0] = '\0';
    HC_CHECK(hc_seal_open(box, HC_SEAL_OVERHEAD - 1, pk, sk, opened, err, sizeof err) == -1, "too short");
    HC_CHECK(strstr(err, "47 bytes, shorter than the 48") != NULL, "too short: %s", err);
    err[0] = '\0';
    HC_CHECK(hc_seal_open(box, sizeof box - 1, pk, sk, opened, err, sizeof err) == -1, "cut by a byte");
    HC_CHECK(strstr(err, NOT_OPEN) != NULL, "cut: %s", err);

    /* No one holds the secret key of the all-zero (low-order) point: libsodium refuses it. */
    unsigned char zero_pk[HC_SEAL_PUBLICKEY_BYTES] = { 0 };
    err[0] = '\0';
    HC_CHECK(hc_seal(msg, len, zero_pk, box, err, sizeof err) == -1, "a weak public key");
    HC_CHECK(strstr(err, "weak X25519 key") != NULL, "weak key: %s", err);
}

static void test_without_sodium(void)
{
    static const char want[] = "this build of heapcapture has no libsodium (Debian: libsodium-dev, Homebrew: "
                               "libsodium); it cannot seal replies";
    unsigned char pk[HC_SEAL_PUBLICKEY_BYTES] = { 1 }, sk[HC_SEAL_SECRETKEY_BYTES] = { 0 }, buf[64];
    char err[256] = "";
    HC_CHECK(hc_seal_keypair(pk, sk, err, sizeof err) == -1, "no key pair");
    HC_CHECK_STR(err, want, "keypair says what to install");
    err[0] = '\0';
    HC_CHECK(hc_seal((const unsigned char *)"x", 1, pk, buf, err, sizeof err) == -1, "no seal");
    HC_CHECK_STR(err, want, "seal says what to install");
    err[0] = '\0';
    HC_CHECK(hc_seal_open(buf, sizeof buf, pk, sk, buf, err, sizeof err) == -1, "no open");
    HC_CHECK_STR(err, want, "open says what to install");
}

int main(void)
{
    if (hc_seal_available())
        test_round_trip();
    else
        test_without_sodium();
    return hc_test_summary("signal_reply_seal");
}
