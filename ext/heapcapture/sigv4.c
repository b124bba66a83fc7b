/* AWS Signature Version 4 (see sigv4.h for the S3 rules). Pure C on OpenSSL's libcrypto.
 *
 * Order of work in hc_sigv4_sign / hc_sigv4_presign: check every input (so a bad request fails
 * before anything is allocated), build the canonical request, the string to sign, derive the
 * signing key and sign. Every text is built in a growable buffer that remembers running out of
 * memory, so the code checks for that once, at the end of each piece. */
#include "sigv4.h"
#include "util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HC_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define HC_SIGV4_MAX_TIME ((time_t)253402300799LL) /* 9999-12-31T23:59:59Z: amz_date has 4 year digits */
#define HC_SIGV4_MAX_EXPIRES 604800L               /* seven days, S3's limit */

/* ---- hashing ---- */

static const char hc_hex_lower[] = "0123456789abcdef";

void hc_to_hex(const unsigned char *bytes, size_t n, char *hex)
{
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = hc_hex_lower[bytes[i] >> 4];
        hex[2 * i + 1] = hc_hex_lower[bytes[i] & 15];
    }
    hex[2 * n] = '\0';
}

static int hc_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int outlen = 0;
    return EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) == 1 && outlen == 32 ? 0 : -1;
}

/* On a libcrypto failure (out of memory) hex is left empty, which no server accepts as a hash. */
void hc_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char digest[32];
    if (hc_sha256(data, len, digest) != 0) { hex[0] = '\0'; return; }
    hc_to_hex(digest, 32, hex);
}

struct hc_body_hash {
    EVP_MD_CTX *sha256, *md5;
    int failed;
};

static void hc_body_hash_start(hc_body_hash *h)
{
    h->failed = EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL) != 1 || EVP_DigestInit_ex(h->md5, EVP_md5(), NULL) != 1;
}

hc_body_hash *hc_body_hash_new(void)
{
    hc_body_hash *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->sha256 = EVP_MD_CTX_new();
    h->md5 = EVP_MD_CTX_new();
    if (!h->sha256 || !h->md5) {
        hc_body_hash_free(h);
        return NULL;
    }
    hc_body_hash_start(h);
    return h;
}

void hc_body_hash_update(hc_body_hash *h, const void *data, size_t len)
{
    if (h->failed || len == 0) return;
    h->failed = EVP_DigestUpdate(h->sha256, data, len) != 1 || EVP_DigestUpdate(h->md5, data, len) != 1;
}

int hc_body_hash_final(hc_body_hash *h, char sha256_hex[65], char md5_b64[HC_MD5_BASE64_LEN])
{
    unsigned char sha[EVP_MAX_MD_SIZE], md5[EVP_MAX_MD_SIZE];
    unsigned int shalen = 0, md5len = 0;
    int ok = !h->failed && EVP_DigestFinal_ex(h->sha256, sha, &shalen) == 1 && shalen == 32 &&
             EVP_DigestFinal_ex(h->md5, md5, &md5len) == 1 && md5len == 16;
    sha256_hex[0] = md5_b64[0] = '\0';
    if (ok) {
        hc_to_hex(sha, 32, sha256_hex);
        EVP_EncodeBlock((unsigned char *)md5_b64, md5, 16); /* 16 bytes: 24 characters and the NUL */
    }
    hc_body_hash_start(h);
    return ok ? 0 : -1;
}

void hc_body_hash_free(hc_body_hash *h)
{
    if (!h) return;
    EVP_MD_CTX_free(h->sha256);
    EVP_MD_CTX_free(h->md5);
    free(h);
}

static int hc_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                          unsigned char out[32])
{
    unsigned int outlen = 0;
    if (keylen > INT32_MAX) return -1;
    return HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) && outlen == 32 ? 0 : -1;
}

/* ---- encoding ---- */

static int hc_is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static void hc_append_encoded(hc_sbuf *b, const char *src, size_t len, int keep_slash)
{
    static const char upper[] = "0123456789ABCDEF";
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (hc_is_unreserved(c) || (keep_slash && c == '/')) continue;
        hc_sbuf_append(b, src + start, i - start);
        char esc[3] = { '%', upper[c >> 4], upper[c & 15] };
        hc_sbuf_append(b, esc, 3);
        start = i + 1;
    }
    hc_sbuf_append(b, src + start, len - start);
}

char *hc_uri_encode(const char *src, size_t len, int keep_slash)
{
    hc_sbuf b = { 0 };
    hc_append_encoded(&b, src ? src : "", src ? len : 0, keep_slash);
    return hc_sbuf_take(&b);
}

/* ---- input checks ---- */

static int hc_is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

/* RFC 9110 token characters: what a method or a header name may hold. */
static int hc_is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int hc_check_present(const char *what, const char *s, char *err, size_t errlen)
{
    if (s && *s) return 0;
    hc_errorf(err, errlen, "signing a request: %s is %s; give a non-empty value", what,
              s ? "empty" : "missing (NULL)");
    return -1;
}

static int hc_check_token(const char *what, const char *s, char *err, size_t errlen)
{
    if (hc_check_present(what, s, err, errlen) != 0) return -1;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!hc_is_tchar(c)) {
            hc_errorf(err, errlen, "signing a request: %s \"%.64s\" has byte 0x%02x at offset %zu, "
                      "which is not allowed there (letters, digits and !#$%%&'*+-.^_`|~ only)",
                      what, s, c, i);
            return -1;
        }
    }
    return 0;
}

/* A part of the credential scope (region, service, access key id): non-empty, printable, no
 * space and no '/', which separates the scope's parts. */
static int hc_check_scope_part(const char *what, const char *s, char *err, size_t errlen)
{
    if (hc_check_present(what, s, err, errlen) != 0) return -1;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (hc_is_ctl(c) || c == ' ' || c == '/') {
            hc_errorf(err, errlen, "signing a request: %s has byte 0x%02x at offset %zu; it may not "
                      "contain spaces, control characters or '/'", what, c, i);
            return -1;
        }
    }
    return 0;
}

/* Header values may hold tabs and obsolete line folding (CRLF or LF followed by a space or tab,
 * as in a multi-line header); every other control character could split the HTTP request. */
static size_t hc_fold_length(const char *v, size_t i)
{
    if (v[i] == ' ' || v[i] == '\t') return 1;
    if (v[i] == '\r' && v[i + 1] == '\n' && (v[i + 2] == ' ' || v[i + 2] == '\t')) return 3;
    if (v[i] == '\n' && (v[i + 1] == ' ' || v[i + 1] == '\t')) return 2;
    return 0;
}

static int hc_check_header_value(const char *name, const char *v, char *err, size_t errlen)
{
    if (!v) {
        hc_errorf(err, errlen, "signing a request: header \"%.64s\" has no value (NULL); give \"\" "
                  "for an empty value", name);
        return -1;
    }
    for (size_t i = 0; v[i]; i++) {
        size_t fold = hc_fold_length(v, i);
        if (fold) { i += fold - 1; continue; }
        unsigned char c = (unsigned char)v[i];
        if (hc_is_ctl(c)) {
            hc_errorf(err, errlen, "signing a request: header \"%.64s\" value has control character "
                      "0x%02x at offset %zu; only tabs, and line breaks followed by a space "
                      "(a folded header), are allowed", name, c, i);
            return -1;
        }
    }
    return 0;
}

static int hc_check_payload_hash(const char *p, char *err, size_t errlen)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0) {
        hc_errorf(err, errlen, "signing a request: payload_sha256 is %s; give the body's lower-case "
                  "hex SHA-256 or " HC_SIGV4_UNSIGNED_PAYLOAD, p ? "empty" : "missing (NULL)");
        return -1;
    }
    int hex = n == 64, word = 1;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) hex = 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) word = 0;
    }
    int keyword = word && n <= 64 && (strncmp(p, HC_SIGV4_UNSIGNED_PAYLOAD, 16) == 0 ||
                                      strncmp(p, "STREAMING-", 10) == 0);
    if (hex || keyword) return 0;
    hc_errorf(err, errlen, "signing a request: payload_sha256 \"%.80s\" is neither a lower-case hex "
              "SHA-256 (64 characters 0-9a-f) nor " HC_SIGV4_UNSIGNED_PAYLOAD " (or a STREAMING-... keyword)", p);
    return -1;
}

static int hc_check_request(const hc_sigv4_request *req, char *err, size_t errlen)
{
    if (!req) {
        hc_errorf(err, errlen, "signing a request: the request is missing (NULL)");
        return -1;
    }
    if (hc_check_token("method", req->method, err, errlen) != 0) return -1;
    if (!req->host || !*req->host) {
        hc_errorf(err, errlen, "signing a request: host is %s; give the host (and port) the "
                  "request goes to", req->host ? "empty" : "missing (NULL)");
        return -1;
    }
    for (size_t i = 0; req->host[i]; i++) {
        unsigned char c = (unsigned char)req->host[i];
        if (hc_is_ctl(c) || c == ' ' || c == '/') {
            hc_errorf(err, errlen, "signing a request: host \"%.64s\" has byte 0x%02x at offset %zu; "
                      "give only the host name and port, like \"127.0.0.1:9000\"", req->host, c, i);
            return -1;
        }
    }
    if (!req->path || req->path[0] != '/') {
        hc_errorf(err, errlen, "signing a request: path %s%.64s%s must begin with '/' (the decoded "
                  "path, like \"/bucket/my key\")", req->path ? "\"" : "", req->path ? req->path : "(NULL)",
                  req->path ? "\"" : "");
        return -1;
    }
    if (hc_check_scope_part("region", req->region, err, errlen) != 0) return -1;
    if (hc_check_scope_part("service", req->service, err, errlen) != 0) return -1;
    if (hc_check_scope_part("access_key_id", req->access_key_id, err, errlen) != 0) return -1;
    if (!req->secret_access_key || !*req->secret_access_key) {
        hc_errorf(err, errlen, "signing a request: secret_access_key is %s; set the AWS secret access key",
                  req->secret_access_key ? "empty" : "missing (NULL)");
        return -1;
    }
    if (req->session_token && hc_check_header_value("x-amz-security-token (session_token)",
                                                    req->session_token, err, errlen) != 0)
        return -1;
    if (req->time < 0 || req->time > HC_SIGV4_MAX_TIME) {
        hc_errorf(err, errlen, "signing a request: time %lld is out of range; give UTC seconds since "
                  "the epoch between 0 and %lld", (long long)req->time, (long long)HC_SIGV4_MAX_TIME);
        return -1;
    }
    if (req->nquery && !req->query) {
        hc_errorf(err, errlen, "signing a request: query is NULL but nquery is %zu", req->nquery);
        return -1;
    }
    for (size_t i = 0; i < req->nquery; i++) {
        if (!req->query[i].name) {
            hc_errorf(err, errlen, "signing a request: query pair %zu has no name (NULL)", i);
            return -1;
        }
    }
    if (req->nheaders && !req->headers) {
        hc_errorf(err, errlen, "signing a request: headers is NULL but nheaders is %zu", req->nheaders);
        return -1;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *name = req->headers[i].name;
        if (!name || !*name) {
            hc_errorf(err, errlen, "signing a request: header %zu has %s name; give a header name",
                      i, name ? "an empty" : "no (NULL)");
            return -1;
        }
        for (size_t j = 0; name[j]; j++) {
            unsigned char c = (unsigned char)name[j];
            if (!hc_is_tchar(c)) {
                hc_errorf(err, errlen, "signing a request: header name \"%.64s\" has byte 0x%02x at "
                          "offset %zu, which a header name may not hold (no spaces, colons or "
                          "control characters)", name, c, j);
                return -1;
            }
        }
        if (strcasecmp(name, "host") == 0) {
            hc_errorf(err, errlen, "signing a request: header \"%s\" given in headers; the host header "
                      "is always signed from the host argument, give it there only", name);
            return -1;
        }
        if (hc_check_header_value(name, req->headers[i].value, err, errlen) != 0) return -1;
    }
    return 0;
}

/* ---- canonical request ---- */

typedef struct {
    char *name;   /* encoded */
    char *value;  /* encoded */
    size_t index; /* position in the caller's list: keeps equal pairs in a stable order */
} hc_enc_pair;

static int hc_enc_pair_cmp(const void *a, const void *b)
{
    const hc_enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c == 0) c = strcmp(x->value, y->value);
    if (c == 0) c = x->index < y->index ? -1 : x->index > y->index;
    return c;
}

static void hc_enc_pairs_free(hc_enc_pair *pairs, size_t n)
{
    if (!pairs) return;
    for (size_t i = 0; i < n; i++) { free(pairs[i].name); free(pairs[i].value); }
    free(pairs);
}

/* Encodes and sorts the query pairs; NULL (with *ok = 0) when out of memory. */
static hc_enc_pair *hc_encode_query(const hc_kv *query, size_t n, int *ok)
{
    *ok = 1;
    if (n == 0) return NULL;
    hc_enc_pair *pairs = calloc(n, sizeof *pairs);
    if (!pairs) { *ok = 0; return NULL; }
    for (size_t i = 0; i < n; i++) {
        const char *v = query[i].value ? query[i].value : "";
        pairs[i].name = hc_uri_encode(query[i].name, strlen(query[i].name), 0);
        pairs[i].value = hc_uri_encode(v, strlen(v), 0);
        pairs[i].index = i;
        if (!pairs[i].name || !pairs[i].value) { hc_enc_pairs_free(pairs, n); *ok = 0; return NULL; }
    }
    qsort(pairs, n, sizeof *pairs, hc_enc_pair_cmp);
    return pairs;
}

static void hc_append_query(hc_sbuf *b, const hc_enc_pair *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i) hc_sbuf_putc(b, '&');
        hc_sbuf_puts(b, pairs[i].name);
        hc_sbuf_putc(b, '=');
        hc_sbuf_puts(b, pairs[i].value);
    }
}

typedef struct {
    char *name;        /* lower-cased */
    const char *value; /* as given */
    size_t index;
} hc_hdr;

static int hc_hdr_cmp(const void *a, const void *b)
{
    const hc_hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c == 0) c = x->index < y->index ? -1 : x->index > y->index;
    return c;
}

/* Trimmed, with every run of spaces, tabs and folds replaced by one space. */
static void hc_append_header_value(hc_sbuf *b, const char *v)
{
    size_t i = 0;
    while (v[i] && hc_fold_length(v, i)) i += hc_fold_length(v, i);
    int pending_space = 0;
    while (v[i]) {
        size_t fold = hc_fold_length(v, i);
        if (fold) { pending_space = 1; i += fold; continue; }
        if (pending_space) { hc_sbuf_putc(b, ' '); pending_space = 0; }
        size_t start = i;
        while (v[i] && !hc_fold_length(v, i)) i++;
        hc_sbuf_append(b, v + start, i - start);
    }
}

static char *hc_lowercase(const char *s)
{
    size_t n = strlen(s);
    char *l = malloc(n + 1);
    if (!l) return NULL;
    for (size_t i = 0; i <= n; i++) l[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    return l;
}

/* Appends "name:value\n" for every header and then the blank line and the signed-header list. */
static int hc_append_headers(hc_sbuf *creq, hc_sbuf *signed_headers, const hc_kv *extra, size_t nextra,
                             const hc_kv *headers, size_t n)
{
    size_t total = n + nextra;
    hc_hdr *h = calloc(total, sizeof *h);
    if (!h) return -1;
    int rc = 0;
    for (size_t i = 0; i < total; i++) {
        const hc_kv *kv = i < nextra ? &extra[i] : &headers[i - nextra];
        h[i].name = hc_lowercase(kv->name);
        h[i].value = kv->value;
        h[i].index = i;
        if (!h[i].name) { rc = -1; goto done; }
    }
    qsort(h, total, sizeof *h, hc_hdr_cmp);
    for (size_t i = 0; i < total; i++) {
        int same_as_previous = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
        if (same_as_previous) {
            hc_sbuf_putc(creq, ',');
        } else {
            if (i > 0) hc_sbuf_putc(creq, '\n');
            hc_sbuf_puts(creq, h[i].name);
            hc_sbuf_putc(creq, ':');
            if (signed_headers->len) hc_sbuf_putc(signed_headers, ';');
            hc_sbuf_puts(signed_headers, h[i].name);
        }
        hc_append_header_value(creq, h[i].value);
    }
    hc_sbuf_puts(creq, "\n\n");
    hc_sbuf_append(creq, signed_headers->data ? signed_headers->data : "", signed_headers->len);
done:
    for (size_t i = 0; i < total; i++) free(h[i].name);
    free(h);
    return rc;
}

static const char *hc_find_header(const hc_sigv4_request *req, const char *lname)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, lname) == 0) return req->headers[i].value;
    return NULL;
}

/* Compares a header value as it will be signed with an expected text. */
static int hc_header_value_is(const char *value, const char *want)
{
    hc_sbuf b = { 0 };
    hc_append_header_value(&b, value);
    int same = !b.oom && strcmp(b.data ? b.data : "", want) == 0;
    hc_sbuf_free(&b);
    return same;
}

/* ---- signing ---- */

static int hc_format_amz_date(time_t t, char out[17])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return -1;
    return strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) == 16 ? 0 : -1;
}

/* Fills out->string_to_sign and out->signature from out->canonical_request; scope is
 * "<date>/<region>/<service>/aws4_request". */
static int hc_sign_canonical(const hc_sigv4_request *req, const char *scope, hc_sigv4_result *out)
{
    char creq_hash[65];
    hc_sha256_hex(out->canonical_request, strlen(out->canonical_request), creq_hash);
    if (!creq_hash[0]) return -1;

    hc_sbuf sts = { 0 };
    hc_sbuf_puts(&sts, HC_SIGV4_ALGORITHM "\n");
    hc_sbuf_puts(&sts, out->amz_date);
    hc_sbuf_putc(&sts, '\n');
    hc_sbuf_puts(&sts, scope);
    hc_sbuf_putc(&sts, '\n');
    hc_sbuf_puts(&sts, creq_hash);
    out->string_to_sign = hc_sbuf_take(&sts);
    if (!out->string_to_sign) return -1;

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
    hc_sbuf key = { 0 };
    hc_sbuf_puts(&key, "AWS4");
    hc_sbuf_puts(&key, req->secret_access_key);
    if (key.oom) { hc_sbuf_free(&key); return -1; }
    unsigned char k_date[32], k_region[32], k_service[32], k_signing[32], sig[32];
    int rc = hc_hmac_sha256(key.data, key.len, out->amz_date, 8, k_date);
    OPENSSL_cleanse(key.data, key.len);
    hc_sbuf_free(&key);
    if (rc == 0) rc = hc_hmac_sha256(k_date, 32, req->region, strlen(req->region), k_region);
    if (rc == 0) rc = hc_hmac_sha256(k_region, 32, req->service, strlen(req->service), k_service);
    if (rc == 0) rc = hc_hmac_sha256(k_service, 32, "aws4_request", 12, k_signing);
    if (rc == 0) rc = hc_hmac_sha256(k_signing, 32, out->string_to_sign, strlen(out->string_to_sign), sig);
    OPENSSL_cleanse(k_date, 32);
    OPENSSL_cleanse(k_region, 32);
    OPENSSL_cleanse(k_service, 32);
    OPENSSL_cleanse(k_signing, 32);
    if (rc != 0) return -1;
    hc_to_hex(sig, 32, out->signature);
    return 0;
}

static char *hc_scope(const hc_sigv4_request *req, const char *amz_date)
{
    hc_sbuf b = { 0 };
    hc_sbuf_append(&b, amz_date, 8);
    hc_sbuf_putc(&b, '/');
    hc_sbuf_puts(&b, req->region);
    hc_sbuf_putc(&b, '/');
    hc_sbuf_puts(&b, req->service);
    hc_sbuf_puts(&b, "/aws4_request");
    return hc_sbuf_take(&b);
}

/* Method, path and query lines of the canonical request. */
static void hc_append_request_line(hc_sbuf *creq, const hc_sigv4_request *req, const hc_enc_pair *query,
                                   size_t nquery)
{
    hc_sbuf_puts(creq, req->method);
    hc_sbuf_putc(creq, '\n');
    hc_append_encoded(creq, req->path, strlen(req->path), 1);
    hc_sbuf_putc(creq, '\n');
    hc_append_query(creq, query, nquery);
    hc_sbuf_putc(creq, '\n');
}

static int hc_out_of_memory(hc_sigv4_result *out, char *err, size_t errlen)
{
    hc_sigv4_result_free(out);
    hc_errorf(err, errlen, "signing a request: out of memory (or libcrypto failed) while building "
              "the signature");
    return -1;
}

int hc_sigv4_sign(const hc_sigv4_request *req, hc_sigv4_result *out, char *err, size_t errlen)
{
    if (!out) {
        hc_errorf(err, errlen, "signing a request: the result pointer is missing (NULL)");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (hc_check_request(req, err, errlen) != 0) return -1;
    if (hc_check_payload_hash(req->payload_sha256, err, errlen) != 0) return -1;
    if (hc_format_amz_date(req->time, out->amz_date) != 0) {
        hc_errorf(err, errlen, "signing a request: time %lld cannot be formatted as a UTC date",
                  (long long)req->time);
        return -1;
    }
    const char *token = req->session_token && *req->session_token ? req->session_token : NULL;
    const char *given_date = hc_find_header(req, "x-amz-date");
    if (given_date && !hc_header_value_is(given_date, out->amz_date)) {
        hc_errorf(err, errlen, "signing a request: header x-amz-date \"%.32s\" differs from the signing "
                  "time (%s); leave the header out and it is added from the time", given_date,
                  out->amz_date);
        return -1;
    }
    const char *given_token = hc_find_header(req, "x-amz-security-token");
    if (given_token && token && !hc_header_value_is(given_token, token)) {
        hc_errorf(err, errlen, "signing a request: header x-amz-security-token differs from "
                  "session_token; give the token once, as session_token");
        return -1;
    }

    /* host, then x-amz-date and x-amz-security-token unless the caller gave them. */
    hc_kv extra[3];
    size_t nextra = 0;
    extra[nextra++] = (hc_kv){ "host", req->host };
    if (!given_date) extra[nextra++] = (hc_kv){ "x-amz-date", out->amz_date };
    if (token && !given_token) extra[nextra++] = (hc_kv){ "x-amz-security-token", token };

    int ok;
    hc_enc_pair *query = hc_encode_query(req->query, req->nquery, &ok);
    if (!ok) return hc_out_of_memory(out, err, errlen);
    hc_sbuf creq = { 0 }, signed_headers = { 0 };
    hc_append_request_line(&creq, req, query, req->nquery);
    hc_enc_pairs_free(query, req->nquery);
    int rc = hc_append_headers(&creq, &signed_headers, extra, nextra, req->headers, req->nheaders);
    hc_sbuf_putc(&creq, '\n');
    hc_sbuf_puts(&creq, req->payload_sha256);
    out->canonical_request = hc_sbuf_take(&creq);
    char *scope = hc_scope(req, out->amz_date);
    if (rc != 0 || !out->canonical_request || !scope || signed_headers.oom ||
        hc_sign_canonical(req, scope, out) != 0) {
        free(scope);
        hc_sbuf_free(&signed_headers);
        return hc_out_of_memory(out, err, errlen);
    }

    hc_sbuf auth = { 0 };
    hc_sbuf_puts(&auth, HC_SIGV4_ALGORITHM " Credential=");
    hc_sbuf_puts(&auth, req->access_key_id);
    hc_sbuf_putc(&auth, '/');
    hc_sbuf_puts(&auth, scope);
    hc_sbuf_puts(&auth, ", SignedHeaders=");
    hc_sbuf_append(&auth, signed_headers.data, signed_headers.len);
    hc_sbuf_puts(&auth, ", Signature=");
    hc_sbuf_puts(&auth, out->signature);
    free(scope);
    hc_sbuf_free(&signed_headers);
    out->authorization = hc_sbuf_take(&auth);
    if (!out->authorization) return hc_out_of_memory(out, err, errlen);
    return 0;
}

/* ---- presigning ---- */

static const char *const hc_presign_names[] = {
    "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature",
};


/* Builds out->query (decoded pairs, in the order of the sorted encoded pairs, then the
 * signature) and out->query_string. */
static int hc_presign_query_result(const hc_kv *all, const hc_enc_pair *sorted, size_t n, hc_sigv4_result *out)
{
    out->query = calloc(n + 1, sizeof *out->query);
    if (!out->query) return -1;
    for (size_t i = 0; i < n; i++) {
        const hc_kv *kv = &all[sorted[i].index];
        out->query[i].name = strdup(kv->name);
        out->query[i].value = strdup(kv->value ? kv->value : "");
        out->nquery = i + 1;
        if (!out->query[i].name || !out->query[i].value) return -1;
    }
    out->query[n].name = strdup("X-Amz-Signature");
    out->query[n].value = strdup(out->signature);
    out->nquery = n + 1;
    if (!out->query[n].name || !out->query[n].value) return -1;

    hc_sbuf qs = { 0 };
    hc_append_query(&qs, sorted, n);
    if (n) hc_sbuf_putc(&qs, '&');
    hc_sbuf_puts(&qs, "X-Amz-Signature=");
    hc_sbuf_puts(&qs, out->signature);
    out->query_string = hc_sbuf_take(&qs);
    return out->query_string ? 0 : -1;
}

int hc_sigv4_presign(const hc_sigv4_request *req, long expires_in, hc_sigv4_result *out, char *err,
                     size_t errlen)
{
    if (!out) {
        hc_errorf(err, errlen, "presigning a request: the result pointer is missing (NULL)");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (hc_check_request(req, err, errlen) != 0) return -1;
    const char *payload = req->payload_sha256 && *req->payload_sha256 ? req->payload_sha256
                                                                        : HC_SIGV4_UNSIGNED_PAYLOAD;
    if (hc_check_payload_hash(payload, err, errlen) != 0) return -1;
    if (expires_in < 1 || expires_in > HC_SIGV4_MAX_EXPIRES) {
        hc_errorf(err, errlen, "presigning a request: expires_in %ld is out of range; give 1 to %ld "
                  "seconds (seven days)", expires_in, HC_SIGV4_MAX_EXPIRES);
        return -1;
    }
    if (req->nheaders) {
        hc_errorf(err, errlen, "presigning a request: headers were given, but a presigned URL signs "
                  "only the host header; leave headers empty");
        return -1;
    }
    for (size_t i = 0; i < req->nquery; i++) {
        for (size_t j = 0; j < sizeof hc_presign_names / sizeof *hc_presign_names; j++) {
            if (strcasecmp(req->query[i].name, hc_presign_names[j]) == 0) {
                hc_errorf(err, errlen, "presigning a request: query parameter \"%s\" is set by the "
                          "presigner; leave it out of query", req->query[i].name);
                return -1;
            }
        }
    }
    if (hc_format_amz_date(req->time, out->amz_date) != 0) {
        hc_errorf(err, errlen, "presigning a request: time %lld cannot be formatted as a UTC date",
                  (long long)req->time);
        return -1;
    }

    const char *token = req->session_token && *req->session_token ? req->session_token : NULL;
    char expires[24];
    snprintf(expires, sizeof expires, "%ld", expires_in);
    char *scope = hc_scope(req, out->amz_date);
    hc_sbuf credential = { 0 };
    hc_sbuf_puts(&credential, req->access_key_id);
    hc_sbuf_putc(&credential, '/');
    hc_sbuf_puts(&credential, scope ? scope : "");
    char *cred = hc_sbuf_take(&credential);

    size_t n = req->nquery + 6;
    hc_kv *all = calloc(n, sizeof *all);
    int rc = scope && cred && all ? 0 : -1;
    hc_enc_pair *sorted = NULL;
    if (rc == 0) {
        if (req->nquery) memcpy(all, req->query, req->nquery * sizeof *all);
        n = req->nquery;
        all[n++] = (hc_kv){ "X-Amz-Algorithm", HC_SIGV4_ALGORITHM };
        all[n++] = (hc_kv){ "X-Amz-Credential", cred };
        all[n++] = (hc_kv){ "X-Amz-Date", out->amz_date };
        all[n++] = (hc_kv){ "X-Amz-Expires", expires };
        if (token) all[n++] = (hc_kv){ "X-Amz-Security-Token", token };
        all[n++] = (hc_kv){ "X-Amz-SignedHeaders", "host" };
        int ok;
        sorted = hc_encode_query(all, n, &ok);
        rc = ok ? 0 : -1;
    }
    if (rc == 0) {
        hc_sbuf creq = { 0 }, signed_headers = { 0 };
        hc_kv host = { "host", req->host };
        hc_append_request_line(&creq, req, sorted, n);
        rc = hc_append_headers(&creq, &signed_headers, &host, 1, NULL, 0);
        hc_sbuf_free(&signed_headers);
        hc_sbuf_putc(&creq, '\n');
        hc_sbuf_puts(&creq, payload);
        out->canonical_request = hc_sbuf_take(&creq);
        if (rc == 0 && out->canonical_request) rc = hc_sign_canonical(req, scope, out);
        else rc = -1;
    }
    if (rc == 0) rc = hc_presign_query_result(all, sorted, n, out);
    hc_enc_pairs_free(sorted, n);
    free(all);
    free(cred);
    free(scope);
    if (rc != 0) return hc_out_of_memory(out, err, errlen);
    return 0;
}

void hc_sigv4_result_free(hc_sigv4_result *out)
{
    if (!out) return;
    free(out->canonical_request);
    free(out->string_to_sign);
    free(out->authorization);
    free(out->query_string);
    for (size_t i = 0; i < out->nquery; i++) {
        free((char *)out->query[i].name);
        free((char *)out->query[i].value);
    }
    free(out->query);
    memset(out, 0, sizeof *out);
}
