/* AWS Signature Version 4 on OpenSSL. Pure C: no Ruby, no curl.
 *
 * S3 rules: the path is given decoded and encoded exactly once (every byte except the unreserved
 * A-Z a-z 0-9 - . _ ~ and '/' becomes %XX, upper-case hex), with no dot-segment or slash
 * normalisation. Query pairs are given decoded; they are encoded (unreserved kept, everything
 * else %XX, '/' included) and sorted by name, then value. Header names are lower-cased and
 * sorted; values are trimmed and inner runs of spaces folded to one; headers with the same name
 * are joined with ',' in the order given. `host` is always signed. */
#ifndef HC_SIGV4_H
#define HC_SIGV4_H

#include <stddef.h>
#include <time.h>

#define HC_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

typedef struct {
    const char *name;
    const char *value;
} hc_kv;

typedef struct {
    const char *method;            /* "GET", "PUT", ... */
    const char *host;              /* signed as the host header: "bucket.s3.us-east-1.amazonaws.com", "127.0.0.1:9000" */
    const char *path;              /* decoded, begins with '/' */
    const hc_kv *query;            /* decoded pairs, any order; may be NULL when nquery is 0 */
    size_t nquery;
    const hc_kv *headers;          /* further headers to sign (not host); may be NULL when nheaders is 0 */
    size_t nheaders;
    const char *payload_sha256;    /* lower-case hex SHA-256 of the body, or HC_SIGV4_UNSIGNED_PAYLOAD */
    const char *region;            /* "us-east-1" */
    const char *service;           /* "s3" */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;     /* NULL or "" when there is none */
    time_t time;                   /* the signing time, UTC seconds since the epoch */
} hc_sigv4_request;

/* Everything a caller needs to send the request, and the intermediate texts for tests.
 * All strings are NUL-terminated and owned by the result: free with hc_sigv4_result_free. */
typedef struct {
    char *canonical_request;
    char *string_to_sign;
    char signature[65];            /* lower-case hex */
    char amz_date[17];             /* "20150830T123600Z" */
    /* hc_sigv4_sign: */
    char *authorization;           /* the Authorization header's value */
    /* hc_sigv4_presign: the whole query string, encoded and sorted, X-Amz-Signature last */
    char *query_string;
    hc_kv *query;                  /* the same as decoded pairs (names and values owned here) */
    size_t nquery;
} hc_sigv4_result;

/* Returns 0 and fills *out, or -1 with a message in err that names the argument that is wrong
 * (an empty method, a header name with a control character, a time before 1970, ...).
 * On error *out holds nothing to free. The caller sends, besides its own headers:
 * x-amz-date: out->amz_date, x-amz-security-token (when a token was given), and
 * Authorization: out->authorization. The headers are signed as given: add x-amz-date,
 * x-amz-content-sha256 and x-amz-security-token to req->headers yourself to sign them
 * (hc_sigv4_sign adds x-amz-date and x-amz-security-token when they are absent). */
int hc_sigv4_sign(const hc_sigv4_request *req, hc_sigv4_result *out, char *err, size_t errlen);

/* Presigned URL query (X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders,
 * -Security-Token when given, -Signature), host the only signed header, payload
 * UNSIGNED-PAYLOAD unless req->payload_sha256 says otherwise. expires_in: 1..604800 seconds. */
int hc_sigv4_presign(const hc_sigv4_request *req, long expires_in, hc_sigv4_result *out,
                     char *err, size_t errlen);

void hc_sigv4_result_free(hc_sigv4_result *out);

/* Helpers the S3 client shares. */
/* Lower-case hex of n bytes into hex[2n+1]. */
void hc_to_hex(const unsigned char *bytes, size_t n, char *hex);
/* Lower-case hex SHA-256 of len bytes into hex[65]. */
void hc_sha256_hex(const void *data, size_t len, char hex[65]);
#define HC_MD5_BASE64_LEN 25 /* a Content-MD5 value: base64 of 16 bytes, and the NUL */

/* The two digests a body goes with, in one pass over it (each piece hashed while it is in the
 * cache): the SHA-256 it is signed with and the MD5 of its Content-MD5. Reusable after final. */
typedef struct hc_body_hash hc_body_hash;
hc_body_hash *hc_body_hash_new(void); /* NULL when out of memory */
void hc_body_hash_update(hc_body_hash *h, const void *data, size_t len);
/* 0, or -1 on a libcrypto failure (both outputs then empty). Starts the next body. */
int hc_body_hash_final(hc_body_hash *h, char sha256_hex[65], char md5_b64[HC_MD5_BASE64_LEN]);
void hc_body_hash_free(hc_body_hash *h);
/* Percent-encodes src (len bytes) S3-style into a new malloc'd string; keep_slash keeps '/'.
 * Returns NULL when out of memory. */
char *hc_uri_encode(const char *src, size_t len, int keep_slash);

#endif
