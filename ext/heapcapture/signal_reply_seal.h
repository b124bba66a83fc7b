/* Sealed replies: a reply's secret part sealed to a public key the request carries, with
 * libsodium's sealed box (crypto_box_seal: X25519, XSalsa20-Poly1305). Only the process holding
 * the request's secret key opens it; the sender needs no key of its own. libsodium is optional
 * (HC_HAVE_SODIUM, as for dump_redact.h): without it every call fails and says what to install.
 * Pure C: no Ruby. */
#ifndef HC_SIGNAL_REPLY_SEAL_H
#define HC_SIGNAL_REPLY_SEAL_H

#include <stddef.h>

#define HC_SEAL_PUBLICKEY_BYTES 32
#define HC_SEAL_SECRETKEY_BYTES 32
#define HC_SEAL_OVERHEAD 48 /* what a box adds to its message: an ephemeral public key and a MAC */

/* 1 when this build can seal (it was linked with libsodium). */
int hc_seal_available(void);

/* A fresh key pair for one request. 0, or -1 with err set. */
int hc_seal_keypair(unsigned char pk[HC_SEAL_PUBLICKEY_BYTES], unsigned char sk[HC_SEAL_SECRETKEY_BYTES],
                    char *err, size_t errlen);

/* Seals msg[0, len) to pk into out (len + HC_SEAL_OVERHEAD bytes). 0, or -1 with err set. */
int hc_seal(const unsigned char *msg, size_t len, const unsigned char pk[HC_SEAL_PUBLICKEY_BYTES],
            unsigned char *out, char *err, size_t errlen);

/* Opens box[0, len) with the key pair into out (len - HC_SEAL_OVERHEAD bytes). 0, or -1 with err
 * set: a box shorter than HC_SEAL_OVERHEAD, or one that does not open (sealed to another key, or
 * altered); out then holds nothing to use. */
int hc_seal_open(const unsigned char *box, size_t len, const unsigned char pk[HC_SEAL_PUBLICKEY_BYTES],
                 const unsigned char sk[HC_SEAL_SECRETKEY_BYTES], unsigned char *out, char *err, size_t errlen);

#endif
