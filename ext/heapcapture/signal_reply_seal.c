/* Sealed replies on libsodium's sealed box (see signal_reply_seal.h). */
#include "signal_reply_seal.h"
#include "util_sodium.h"
#include "util.h"

#include <stdint.h>
#ifdef HC_HAVE_SODIUM
#include <sodium.h>

_Static_assert(HC_SEAL_OVERHEAD == crypto_box_SEALBYTES, "HC_SEAL_OVERHEAD is libsodium's crypto_box_SEALBYTES");
_Static_assert(HC_SEAL_PUBLICKEY_BYTES == crypto_box_PUBLICKEYBYTES, "an X25519 public key");
_Static_assert(HC_SEAL_SECRETKEY_BYTES == crypto_box_SECRETKEYBYTES, "an X25519 secret key");
#endif

#define HC_SEAL_MISSING "this build of heapcapture has no libsodium (Debian: libsodium-dev, Homebrew: libsodium); " \
                        "it cannot seal replies"

int hc_seal_available(void) { return hc_sodium_available(); }

/* 0 once libsodium is ready, else -1 with err saying why. */
static int hc_seal_ready(char *err, size_t errlen)
{
    return hc_sodium_ready("sealing replies", HC_SEAL_MISSING, err, errlen);
}

int hc_seal_keypair(unsigned char pk[HC_SEAL_PUBLICKEY_BYTES], unsigned char sk[HC_SEAL_SECRETKEY_BYTES],
                    char *err, size_t errlen)
{
    if (hc_seal_ready(err, errlen) != 0) return -1;
#ifdef HC_HAVE_SODIUM
    if (crypto_box_keypair(pk, sk) == 0) return 0;
    hc_errorf(err, errlen, "sealing replies: libsodium could not make a key pair");
#else
    (void)pk, (void)sk;
#endif
    return -1;
}

int hc_seal(const unsigned char *msg, size_t len, const unsigned char pk[HC_SEAL_PUBLICKEY_BYTES],
            unsigned char *out, char *err, size_t errlen)
{
    if (hc_seal_ready(err, errlen) != 0) return -1;
    if (len > SIZE_MAX - HC_SEAL_OVERHEAD) {
        hc_errorf(err, errlen, "sealing a reply: the message (%zu bytes) is too long to seal", len);
        return -1;
    }
#ifdef HC_HAVE_SODIUM
    static const unsigned char empty[1];
    if (crypto_box_seal(out, len ? msg : empty, len, pk) == 0) return 0;
    /* libsodium refuses a public key that is a low-order point: no one holds its secret key. */
    hc_errorf(err, errlen, "sealing a reply: the request's public key is not one a reply can be sealed "
              "to (a weak X25519 key); the request is malformed");
#else
    (void)msg, (void)pk, (void)out;
#endif
    return -1;
}

int hc_seal_open(const unsigned char *box, size_t len, const unsigned char pk[HC_SEAL_PUBLICKEY_BYTES],
                 const unsigned char sk[HC_SEAL_SECRETKEY_BYTES], unsigned char *out, char *err, size_t errlen)
{
    if (hc_seal_ready(err, errlen) != 0) return -1;
    if (len < HC_SEAL_OVERHEAD) {
        hc_errorf(err, errlen, "the sealed part of the reply is %zu bytes, shorter than the %d every sealed "
                  "box has (cut short, or not a sealed box)", len, HC_SEAL_OVERHEAD);
        return -1;
    }
#ifdef HC_HAVE_SODIUM
    if (crypto_box_seal_open(out, box, len, pk, sk) == 0) return 0;
    hc_errorf(err, errlen, "the sealed part of the reply does not open with this request's key (not sealed "
              "to it, or altered)");
#else
    (void)box, (void)pk, (void)sk, (void)out;
#endif
    return -1;
}
