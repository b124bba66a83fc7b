/* age v1 files (C2SP age.md, https://age-encryption.org/v1), for X25519 recipients only, written
 * and read as streams: a heap dump of many GB passes through one 64 KiB chunk at a time, so memory
 * stays bounded (the writer holds one chunk; the reader one ciphertext chunk and one plaintext
 * chunk, and the header, at most 64 KiB, while it is read). What comes out is what `age -d -i
 * key.txt` reads, and what `age -r age1...` writes comes in.
 *
 * Why by hand: Debian packages no C library for age (age is a Go program, rage a Rust one; neither
 * has a C API), and the format is small. The primitives are libraries': libsodium gives X25519
 * (crypto_scalarmult), ChaCha20-Poly1305 IETF and randomness; OpenSSL gives HKDF-SHA256 and
 * HMAC-SHA256. Ours are the rest: bech32 (BIP-173, without its 90-character limit) for the key
 * texts, unpadded canonical base64, the header's syntax and MAC, the STREAM chunking with its
 * last-chunk flag, and every check a reader must make. libsodium is optional (HC_HAVE_SODIUM, as
 * for signal_reply_seal.h): without it every hc_age_* call fails and says what to install.
 *
 * Not supported, each refused with a sentence saying so: passphrase files (scrypt stanzas), plugin
 * recipients and identities (age1yubikey1..., AGE-PLUGIN-...), SSH keys, the post-quantum and tagged
 * recipient types (age1pq1..., age1tag1...), ASCII armor (age -a). Other stanzas in a header are
 * ignored, as the spec asks: a file for an X25519 identity and someone's plugin opens with the former.
 *
 * Errors are one sentence in (char *err, size_t errlen) that a user can act on; none ever quotes a
 * secret key. Chunks are numbered from 0, as the spec's counter is. Pure C: no Ruby. */
#ifndef HC_AGE_H
#define HC_AGE_H

#include <stddef.h>
#include <stdint.h>

#define HC_AGE_KEY_BYTES 32
#define HC_AGE_FILE_KEY_BYTES 16
#define HC_AGE_NONCE_BYTES 16
#define HC_AGE_TAG_BYTES 16
#define HC_AGE_CHUNK_BYTES 65536                        /* plaintext per chunk; the last may be shorter */
#define HC_AGE_SEALED_CHUNK_BYTES (HC_AGE_CHUNK_BYTES + HC_AGE_TAG_BYTES)
#define HC_AGE_MAX_HEADER_BYTES 65536                   /* a longer header is refused: memory stays bounded */
#define HC_AGE_MAX_STANZAS 1024                         /* and so is a header with more stanzas */
#define HC_AGE_MAX_RECIPIENTS 512                       /* what the writer takes: 512 stanzas fit 64 KiB */
#define HC_AGE_RECIPIENT_TEXT_LEN 62                    /* "age1" + 52 key + 6 checksum characters */
#define HC_AGE_IDENTITY_TEXT_LEN 74                     /* "AGE-SECRET-KEY-1" + 52 + 6 */

/* An X25519 public key: what `age -r` takes. */
typedef struct {
    unsigned char key[HC_AGE_KEY_BYTES];
} hc_age_recipient;

/* An X25519 secret key and its public key. Wipe with hc_age_identities_free or sodium_memzero. */
typedef struct {
    unsigned char secret[HC_AGE_KEY_BYTES];
    hc_age_recipient recipient;
} hc_age_identity;

/* Receives bytes in order (the age file from a writer, plaintext from a reader); returns 0, or -1
 * with err set (the stream then stops, and err passes to the caller unchanged). */
typedef int (*hc_age_sink_fn)(void *ctx, const void *buf, size_t len, char *err, size_t errlen);

/* 1 when this build can encrypt and decrypt (it was linked with libsodium). */
int hc_age_available(void);
/* 1 when buf starts as an age file does (binary, or armored), else 0: needs libsodium no more than
 * the test needs a key. HC_AGE_FILE_PEEK: the most bytes it looks at. */
#define HC_AGE_FILE_PEEK 34
int hc_age_is_file(const void *buf, size_t len);

/* ---- Keys in their text forms ---- */

/* "age1..." (surrounding whitespace ignored; upper case accepted too) into out. 0, or -1 with err
 * saying what it is instead (an SSH key, a plugin or post-quantum recipient, a typo). */
int hc_age_recipient_parse(const char *text, size_t len, hc_age_recipient *out, char *err, size_t errlen);
/* The "age1..." text of r into out (HC_AGE_RECIPIENT_TEXT_LEN + 1 bytes, NUL-terminated). */
int hc_age_recipient_format(const hc_age_recipient *r, char *out, size_t outlen, char *err, size_t errlen);

/* "AGE-SECRET-KEY-1..." (surrounding whitespace ignored) into out, its public key computed. */
int hc_age_identity_parse(const char *text, size_t len, hc_age_identity *out, char *err, size_t errlen);
/* The "AGE-SECRET-KEY-1..." text of id (upper case, as age-keygen writes it) into out
 * (HC_AGE_IDENTITY_TEXT_LEN + 1 bytes). */
int hc_age_identity_format(const hc_age_identity *id, char *out, size_t outlen, char *err, size_t errlen);
/* A fresh identity from the CSPRNG (what age-keygen makes). */
int hc_age_identity_generate(hc_age_identity *out, char *err, size_t errlen);

/* An identity file's text (age-keygen's output, or several concatenated): one key a line; blank
 * lines and lines starting with '#' skipped; CRLF accepted. *out is a malloc'd array of *n >= 1
 * identities: free it with hc_age_identities_free. An error names the line, never its text. */
int hc_age_identities_parse(const char *text, size_t len, hc_age_identity **out, size_t *n,
                            char *err, size_t errlen);
/* Wipes and frees what hc_age_identities_parse gave (NULL is fine). */
void hc_age_identities_free(hc_age_identity *ids, size_t n);

/* ---- Encryption ---- */

/* Fields are the module's own. */
typedef struct {
    hc_age_sink_fn sink;
    void *sink_ctx;
    unsigned char payload_key[HC_AGE_KEY_BYTES];
    unsigned char *chunk;       /* HC_AGE_SEALED_CHUNK_BYTES: plaintext, sealed in place */
    size_t chunk_len;           /* plaintext bytes waiting in chunk */
    uint64_t counter;           /* the next chunk's number */
    uint64_t plaintext_bytes, file_bytes;
    int state;                  /* 0 writing, 1 finished, -1 failed */
} hc_age_writer;

/* Starts an age file for recipients[0, n) (1 <= n <= HC_AGE_MAX_RECIPIENTS): a fresh file key, one
 * X25519 stanza per recipient, the header MAC, then the payload nonce, all handed to sink now. */
int hc_age_writer_init(hc_age_writer *w, const hc_age_recipient *recipients, size_t n, hc_age_sink_fn sink,
                       void *sink_ctx, char *err, size_t errlen);
/* Encrypts data[0, len). Up to a chunk is held back: a chunk is sealed only once more data follows
 * or at finish, since its nonce says whether it is the last. */
int hc_age_writer_write(hc_age_writer *w, const void *data, size_t len, char *err, size_t errlen);
/* Seals the last chunk (empty only when nothing was written). The file is complete only once this
 * returns 0. */
int hc_age_writer_finish(hc_age_writer *w, char *err, size_t errlen);
/* Wipes the keys and frees the buffer. Safe on a writer whose init failed, and twice. */
void hc_age_writer_free(hc_age_writer *w);

/* ---- Decryption ---- */

/* Fields are the module's own. */
typedef struct {
    hc_age_identity *ids;       /* a copy, wiped at free */
    size_t nids;
    int state;                  /* HEADER, NONCE, PAYLOAD, DONE, FAILED (age.c) */
    unsigned char *header;      /* the header as it arrives, freed once read */
    size_t header_len, line_start;
    unsigned char file_key[HC_AGE_FILE_KEY_BYTES]; /* from the header, until the nonce is whole */
    unsigned char nonce[HC_AGE_NONCE_BYTES];
    size_t nonce_len;
    unsigned char payload_key[HC_AGE_KEY_BYTES];
    unsigned char *sealed;      /* HC_AGE_SEALED_CHUNK_BYTES of ciphertext */
    size_t sealed_len;
    unsigned char *plain;       /* HC_AGE_CHUNK_BYTES, one chunk opened */
    uint64_t counter;           /* the next chunk's number */
    uint64_t file_bytes, plaintext_bytes;
    char failure[320];          /* the first error, repeated by any later call */
} hc_age_reader;

/* A reader for files to any of ids[0, n) (copied; n >= 1). */
int hc_age_reader_init(hc_age_reader *r, const hc_age_identity *ids, size_t n, char *err, size_t errlen);
/* Takes the next data[0, len) of the age file, in pieces of any size: checks the header once it is
 * whole, and hands each chunk to out (NULL: checks only) once its tag checks and it is known not to
 * be the last.
 * What out got before an error is authentic but may be incomplete: keep it only when finish
 * returns 0. After an error every call fails with the same sentence. */
int hc_age_reader_feed(hc_age_reader *r, const void *data, size_t len, hc_age_sink_fn out, void *out_ctx,
                       char *err, size_t errlen);
/* The end of the file: opens the last chunk and hands it to out. Fails when the file was cut short
 * (no last chunk), or its last chunk was altered. */
int hc_age_reader_finish(hc_age_reader *r, hc_age_sink_fn out, void *out_ctx, char *err, size_t errlen);
/* Wipes the keys and frees the buffers. Safe on a reader whose init failed, and twice. */
void hc_age_reader_free(hc_age_reader *r);

/* ---- The encodings, for tests (they need no libsodium) ---- */

/* Bech32 of hrp and data[0, len) into out (NUL-terminated), in upper case when upper. The length
 * written, or -1 when outlen is too small or hrp is not 1..83 characters of 33..126. */
int hc_age_bech32_encode(const char *hrp, const unsigned char *data, size_t len, int upper, char *out, size_t outlen);
/* Decodes text[0, len): its human-readable part, lower-cased, into hrp (hrpcap bytes with the NUL),
 * its data into data (at most datacap bytes, *datalen set). 0, or -1 with err saying what is wrong
 * (mixed case, a character outside the alphabet, a bad checksum, bad padding) without quoting text. */
int hc_age_bech32_decode(const char *text, size_t len, char *hrp, size_t hrpcap, unsigned char *data, size_t datacap,
                         size_t *datalen, char *err, size_t errlen);

#endif
