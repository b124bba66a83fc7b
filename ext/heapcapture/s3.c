/* The S3 client: configuration and addressing, then the operations (a streamed PUT, a parallel
 * multipart upload, download, list, delete, presign) built on the transfer machinery in
 * s3_transfer.c (requests, retries, the scheduler) and the part reader in s3_part_reader.c.
 * See s3.h for the contract. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp, strndup */
#endif
#include "s3.h"
#include "s3_transfer.h"
#include "s3_part_reader.h"
#include "s3_xml.h"
#include "sigv4.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define HC_LIST_BODY_MAX (32L * 1024 * 1024)  /* a 1,000-key listing page with 1 KiB keys fits */
#define HC_READ_CHUNK (1024 * 1024)
#define HC_GROW_WAIT_MS 25                    /* checks for an interrupt while a growing file fills its first part */

/* ---------------------------------------------------------------- the client */

static int hc_empty(const char *s)
{
    return s == NULL || *s == '\0';
}

long hc_s3_part_size_for(long configured, long long size)
{
    long part = configured > 0 ? configured : 8 * HC_S3_MIB;
    if (size > (long long)part * HC_S3_MAX_PARTS) {
        long long needed = (size + HC_S3_MAX_PARTS - 1) / HC_S3_MAX_PARTS;
        part = (long)((needed + HC_S3_MIB - 1) / HC_S3_MIB * HC_S3_MIB);
    }
    return part;
}

void hc_s3_client_free(hc_s3_client *c)
{
    if (!c) return;
    int ours = c->pid == getpid(); /* a forked child leaves the parent's connections alone */
    if (c->easy) {
        for (int i = 0; ours && i < c->nslots; i++) {
            if (c->easy[i]) curl_easy_cleanup(c->easy[i]);
        }
        free(c->easy);
    }
    if (c->multi && ours) curl_multi_cleanup(c->multi);
    free(c->bucket); free(c->region); free(c->access_key_id); free(c->secret_access_key);
    free(c->session_token); free(c->ca_file); free(c->ca_path); free(c->sse); free(c->sse_kms_key_id);
    free(c->scheme); free(c->host); free(c->bucket_path); free(c->base_url);
    free(c);
}

/* Splits "http(s)://host[:port][/]" into scheme and host. Returns 0, or -1 with a message. */
static int hc_parse_endpoint(const char *endpoint, char **scheme, char **host, hc_s3_error *err)
{
    const char *rest;
    if (strncasecmp(endpoint, "https://", 8) == 0) {
        *scheme = strdup("https");
        rest = endpoint + 8;
    } else if (strncasecmp(endpoint, "http://", 7) == 0) {
        *scheme = strdup("http");
        rest = endpoint + 7;
    } else {
        hc_s3_err_set(err, HC_S3_EARG, "the S3 endpoint %s must begin with http:// or https://", endpoint);
        return -1;
    }
    size_t len = strcspn(rest, "/?#");
    if (len == 0 || strchr(rest, '@') || (rest[len] == '/' && rest[len + 1] != '\0') ||
        rest[len] == '?' || rest[len] == '#') {
        hc_s3_err_set(err, HC_S3_EARG,
                   "the S3 endpoint %s must be a scheme and a host with an optional port, like "
                   "http://127.0.0.1:9000 (no path, credentials or query)", endpoint);
        return -1;
    }
    *host = strndup(rest, len);
    if (!*scheme || !*host) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client");
        return -1;
    }
    return 0;
}

static int hc_valid_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_' ||
              (ch >= 'A' && ch <= 'Z')))
            return 0;
    }
    return 1;
}

/* "127.0.0.1:9000", "[::1]:9000": a host that no bucket name can be put in front of. */
static int hc_is_ip_host(const char *hostport)
{
    if (hostport[0] == '[') return 1;
    char host[64];
    size_t n = strcspn(hostport, ":");
    if (n >= sizeof host) return 0;
    memcpy(host, hostport, n);
    host[n] = '\0';
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1;
}

/* The server-side encryption settings: sse one of S3's two names, a KMS key id only with
 * "aws:kms", and one that fits in a header (an id, an ARN or an alias: printable, no spaces). */
static int hc_check_sse(const hc_s3_config *cfg, hc_s3_error *err)
{
    int kms = !hc_empty(cfg->sse) && strcmp(cfg->sse, "aws:kms") == 0;
    if (!hc_empty(cfg->sse) && !kms && strcmp(cfg->sse, "AES256") != 0) {
        hc_s3_err_set(err, HC_S3_EARG, "sse must be aws:kms or AES256 (sent as x-amz-server-side-encryption), "
                      "got \"%.64s\"", cfg->sse);
        return -1;
    }
    if (hc_empty(cfg->sse_kms_key_id)) return 0;
    if (!kms) {
        hc_s3_err_set(err, HC_S3_EARG, "sse_kms_key_id is the KMS key of sse aws:kms, and sse is %s: set sse to "
                      "aws:kms (HEAPCAPTURE_SSE=aws:kms) or leave the key id out",
                      hc_empty(cfg->sse) ? "not set" : cfg->sse);
        return -1;
    }
    size_t n = strlen(cfg->sse_kms_key_id);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)cfg->sse_kms_key_id[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            hc_s3_err_set(err, HC_S3_EARG, "sse_kms_key_id has byte 0x%02x at offset %zu: a KMS key id, ARN or "
                          "alias is printable ASCII without spaces", ch, i);
            return -1;
        }
    }
    if (n > HC_S3_MAX_KMS_KEY_ID) {
        hc_s3_err_set(err, HC_S3_EARG, "sse_kms_key_id is %zu bytes, more than the %d a KMS key ARN may be", n,
                      HC_S3_MAX_KMS_KEY_ID);
        return -1;
    }
    return 0;
}

/* Every setting within its bounds (s3.h's limits; 0 means the default). Returns 0, or -1 with
 * err saying which setting and what it may be. */
static int hc_check_config(const hc_s3_config *cfg, hc_s3_error *err)
{
    if (hc_empty(cfg->bucket) || !hc_valid_bucket(cfg->bucket)) {
        hc_s3_err_set(err, HC_S3_EARG, "the S3 bucket name \"%s\" is not valid: 3 to 63 letters, digits, "
                   "dots or hyphens", cfg->bucket ? cfg->bucket : "");
        return -1;
    }
    if (hc_empty(cfg->region)) {
        hc_s3_err_set(err, HC_S3_EARG, "no S3 region given: set AWS_REGION (e.g. us-east-1) or pass region:");
        return -1;
    }
    if (hc_empty(cfg->access_key_id) || hc_empty(cfg->secret_access_key)) {
        hc_s3_err_set(err, HC_S3_EARG, "no S3 credentials given: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                   "or pass access_key_id: and secret_access_key:");
        return -1;
    }
    if (cfg->concurrency < 0 || cfg->concurrency > HC_S3_MAX_CONCURRENCY) {
        hc_s3_err_set(err, HC_S3_EARG, "concurrency must be from 1 to %d, got %d", HC_S3_MAX_CONCURRENCY,
                   cfg->concurrency);
        return -1;
    }
    if (cfg->part_size < 0 || (cfg->part_size > 0 && cfg->part_size < HC_S3_MIN_PART_SIZE) ||
        cfg->part_size > HC_S3_MAX_PART_SIZE) {
        hc_s3_err_set(err, HC_S3_EARG, "part_size must be from 5 MiB (S3's minimum) to 5 GiB, got %ld",
                   cfg->part_size);
        return -1;
    }
    if (cfg->max_attempts < 0 || cfg->max_attempts > HC_S3_MAX_ATTEMPTS) {
        hc_s3_err_set(err, HC_S3_EARG, "max_attempts must be from 1 to %d, got %d", HC_S3_MAX_ATTEMPTS,
                      cfg->max_attempts);
        return -1;
    }
    if (cfg->connect_timeout_ms < 0 || cfg->low_speed_time_s < 0 || cfg->retry_base_ms < 0) {
        hc_s3_err_set(err, HC_S3_EARG, "S3 timeouts and the retry delay cannot be negative");
        return -1;
    }
    return hc_check_sse(cfg, err);
}

/* The settings with their defaults, and the client's own copies of the strings (a copy that
 * fails is seen by the caller's check). */
static void hc_copy_config(hc_s3_client *c, const hc_s3_config *cfg)
{
    c->cfg = *cfg;
    if (!c->cfg.part_size) c->cfg.part_size = 8 * HC_S3_MIB;
    if (!c->cfg.concurrency) c->cfg.concurrency = 4;
    if (!c->cfg.connect_timeout_ms) c->cfg.connect_timeout_ms = 10000;
    if (!c->cfg.low_speed_time_s) c->cfg.low_speed_time_s = 30;
    if (!c->cfg.max_attempts) c->cfg.max_attempts = 5;
    if (!c->cfg.retry_base_ms) c->cfg.retry_base_ms = 200;
    c->bucket = hc_strdup_or_null(cfg->bucket);
    c->region = hc_strdup_or_null(cfg->region);
    c->access_key_id = hc_strdup_or_null(cfg->access_key_id);
    c->secret_access_key = hc_strdup_or_null(cfg->secret_access_key);
    c->session_token = hc_empty(cfg->session_token) ? NULL : hc_strdup_or_null(cfg->session_token);
    c->ca_file = hc_empty(cfg->ca_file) ? NULL : hc_strdup_or_null(cfg->ca_file);
    c->ca_path = hc_empty(cfg->ca_path) ? NULL : hc_strdup_or_null(cfg->ca_path);
    c->sse = hc_empty(cfg->sse) ? NULL : hc_strdup_or_null(cfg->sse);
    c->sse_kms_key_id = hc_empty(cfg->sse_kms_key_id) ? NULL : hc_strdup_or_null(cfg->sse_kms_key_id);
    c->seed = (unsigned int)(hc_now_ms() ^ (long long)getpid() ^ (long long)(size_t)c);
    snprintf(c->user_agent, sizeof c->user_agent, "%s libcurl/%s", hc_empty(cfg->product) ? "heapcapture" : cfg->product,
             curl_version_info(CURLVERSION_NOW)->version);
}

/* Where requests go: scheme, host and the bucket's path, path-style (a custom endpoint, a bucket
 * with dots) or virtual-hosted (bucket.s3.region.amazonaws.com), and the base URL of both. Returns
 * 0 (out of memory shows as a NULL the caller checks), or -1 with err set. */
static int hc_set_addressing(hc_s3_client *c, const hc_s3_config *cfg, hc_s3_error *err)
{
    int path_style = cfg->path_style;
    if (path_style < 0) path_style = !hc_empty(cfg->endpoint) || strchr(cfg->bucket, '.') != NULL;

    char *endpoint_host = NULL;
    if (!hc_empty(cfg->endpoint)) {
        if (hc_parse_endpoint(cfg->endpoint, &c->scheme, &endpoint_host, err) != 0) {
            free(endpoint_host);
            return -1;
        }
    } else {
        c->scheme = strdup("https");
        size_t n = strlen(cfg->region) + 32;
        endpoint_host = malloc(n);
        if (endpoint_host) snprintf(endpoint_host, n, "s3.%s.amazonaws.com", cfg->region);
    }
    if (endpoint_host && !path_style && hc_is_ip_host(endpoint_host)) {
        hc_s3_err_set(err, HC_S3_EARG, "path_style: false puts the bucket in the host name, and the endpoint %s is an IP "
                      "address (%s.%s cannot resolve); use path_style: true, or leave it unset (a custom endpoint "
                      "means path-style)", cfg->endpoint, cfg->bucket, endpoint_host);
        free(endpoint_host);
        return -1;
    }
    if (endpoint_host) {
        if (path_style) {
            c->host = endpoint_host;
            size_t n = strlen(c->bucket) + 2;
            c->bucket_path = malloc(n);
            if (c->bucket_path) snprintf(c->bucket_path, n, "/%s", c->bucket);
        } else {
            size_t n = strlen(c->bucket) + strlen(endpoint_host) + 2;
            c->host = malloc(n);
            if (c->host) snprintf(c->host, n, "%s.%s", c->bucket, endpoint_host);
            free(endpoint_host);
            c->bucket_path = strdup("");
        }
    }
    if (c->scheme && c->host && c->bucket_path) {
        size_t n = strlen(c->scheme) + strlen(c->host) + strlen(c->bucket_path) + 4;
        c->base_url = malloc(n);
        if (c->base_url) snprintf(c->base_url, n, "%s://%s%s", c->scheme, c->host, c->bucket_path);
    }
    return 0;
}

hc_s3_client *hc_s3_client_new(const hc_s3_config *cfg, hc_s3_error *err)
{
    hc_s3_err_clear(err);
    if (hc_check_config(cfg, err) != 0) return NULL;
    hc_s3_client *c = calloc(1, sizeof *c);
    if (!c) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client");
        return NULL;
    }
    hc_copy_config(c, cfg);
    if (!c->bucket || hc_set_addressing(c, cfg, err) != 0) {
        if (!c->bucket) hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client");
        hc_s3_client_free(c);
        return NULL;
    }
    c->nslots = c->cfg.concurrency;
    int ok = c->bucket && c->region && c->access_key_id && c->secret_access_key && c->base_url &&
             (hc_empty(cfg->session_token) || c->session_token) && (hc_empty(cfg->sse) || c->sse) &&
             (hc_empty(cfg->sse_kms_key_id) || c->sse_kms_key_id) && hc_s3_curl_handles(c) == 0;
    if (!ok) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client");
        hc_s3_client_free(c);
        return NULL;
    }
    return c;
}

const char *hc_s3_client_base_url(const hc_s3_client *c)
{
    return c->base_url;
}

void hc_s3_client_abort(hc_s3_client *c)
{
    __atomic_add_fetch(&c->aborted, 1, __ATOMIC_SEQ_CST); /* counted: a second one cuts the clean-up short */
    curl_multi_wakeup(c->multi);
}

void hc_s3_client_reset_abort(hc_s3_client *c)
{
    __atomic_store_n(&c->aborted, 0, __ATOMIC_SEQ_CST);
}

/* ---------------------------------------------------------------- operations */

static int hc_open_source(const char *path, int *fd, long long *size, hc_s3_error *err)
{
    struct stat st;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        hc_s3_err_set(err, HC_S3_EFILE, "cannot upload %s: opening it failed: %s", path, strerror(errno));
        return -1;
    }
    int stat_failed = fstat(*fd, &st) != 0;
    if (stat_failed || !S_ISREG(st.st_mode)) {
        hc_s3_err_set(err, HC_S3_EFILE, "cannot upload %s: %s", path,
                   stat_failed ? strerror(errno) : "it is not a regular file");
        close(*fd);
        *fd = -1;
        return -1;
    }
    *size = (long long)st.st_size;
    return 0;
}

/* Hashes len bytes of fd from offset without holding them all in memory: the SHA-256 the request
 * is signed with (hex) and the MD5 sent as Content-MD5 (base64). */
static int hc_hash_fd(hc_s3_client *c, int fd, long long offset, long long len, char sha256_hex[65],
                      char md5_b64[HC_MD5_BASE64_LEN], const char *path, hc_s3_error *err)
{
    unsigned char *buf = malloc(HC_READ_CHUNK);
    hc_body_hash *hash = hc_body_hash_new();
    int rc = -1;
    if (!buf || !hash) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while hashing %s", path);
        goto done;
    }
    for (long long pos = 0; pos < len;) {
        if (hc_s3_is_aborted(c)) {
            hc_s3_err_set(err, HC_S3_EABORTED, "interrupted while hashing %s", path);
            goto done;
        }
        size_t want = len - pos < HC_READ_CHUNK ? (size_t)(len - pos) : HC_READ_CHUNK;
        ssize_t got = pread(fd, buf, want, (off_t)(offset + pos));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            hc_s3_err_set(err, HC_S3_EFILE, "cannot upload %s: reading it failed: %s", path,
                       got < 0 ? strerror(errno) : "the file became shorter while it was read");
            goto done;
        }
        hc_body_hash_update(hash, buf, (size_t)got);
        pos += got;
    }
    if (hc_body_hash_final(hash, sha256_hex, md5_b64) != 0) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "hashing %s failed (libcrypto: out of memory?)", path);
        goto done;
    }
    rc = 0;
done:
    hc_body_hash_free(hash);
    free(buf);
    return rc;
}

/* The answer to a request that asked for server-side encryption (PutObject, CreateMultipartUpload)
 * must name the encryption applied, as S3 does: a gateway that ignores the header (Ceph 16 with
 * AES256) stores the object in the clear. 0, or -1 with err saying what was asked and answered. */
static int hc_sse_confirmed(hc_s3_client *c, const hc_s3_req *r, hc_s3_error *err)
{
    if (!c->sse || strcasecmp(r->sse_answer, c->sse) == 0) return 0;
    char *url = hc_s3_display_url(c, r->key);
    hc_s3_err_set(err, HC_S3_EHTTP, "S3 answered HTTP %ld without confirming the server-side encryption asked for "
                  "while %s %s%s%s: the request carried x-amz-server-side-encryption: %s, the answer %s%s (a gateway "
                  "that ignores the header stores the object unencrypted)", r->status, r->what, r->place,
                  *r->place ? " " : "", url ? url : r->key, c->sse,
                  *r->sse_answer ? "said x-amz-server-side-encryption: " : "had no such header", r->sse_answer);
    err->http_status = r->status;
    snprintf(err->request_id, sizeof err->request_id, "%s", r->request_id);
    free(url);
    return -1;
}

/* After hc_sse_confirmed failed on a single PUT: the object S3 stored (unencrypted, maybe) is
 * deleted, and err says whether it is gone. */
static void hc_delete_unconfirmed(hc_s3_client *c, const char *key, hc_s3_error *err)
{
    hc_s3_error del;
    size_t n = strlen(err->message);
    if (hc_s3_delete(c, key, &del) == HC_S3_OK) {
        snprintf(err->message + n, sizeof err->message - n, "; the object was deleted");
    } else {
        snprintf(err->message + n, sizeof err->message - n, "; deleting the object failed too (%s): it stays in the "
                 "bucket, perhaps unencrypted", del.message);
    }
}

static hc_s3_status hc_put_single(hc_s3_client *c, int fd, long long size, const char *path, const char *key,
                                  const char *content_type, hc_s3_upload_result *out, hc_s3_error *err)
{
    hc_s3_req r;
    hc_s3_req_init(&r, "PUT", key, "uploading", "to");
    r.body_kind = HC_BODY_FILE;
    r.body_fd = fd;
    r.body_len = size;
    r.file_path = path;
    r.content_type = content_type;
    r.sse = 1;
    if (hc_hash_fd(c, fd, 0, size, r.payload_sha256, r.content_md5, path, err) != 0) return err->kind;
    hc_s3_status st = hc_s3_perform(c, &r, 0, err);
    if (st == HC_S3_OK && hc_sse_confirmed(c, &r, err) != 0) {
        hc_delete_unconfirmed(c, key, err);
        st = HC_S3_EHTTP;
    } else if (st == HC_S3_OK) {
        snprintf(out->etag, sizeof out->etag, "%s", r.etag);
        out->bytes = size;
        out->parts = 1;
    }
    hc_s3_req_release(&r);
    return st;
}

/* ---- multipart */

typedef struct {
    hc_s3_client *c;
    const char *path, *key, *upload_id;
    hc_part_reader *reader;
    long nparts;               /* -1 while a growing file's size is unknown */
    char **etags;              /* by part number - 1: [nparts], or [HC_PART_MAX] for a growing file */
} hc_parts;

static void hc_wake(void *arg)
{
    curl_multi_wakeup(((hc_s3_client *)arg)->multi);
}

static int hc_parts_next(void *ctx, hc_s3_slot *slot, hc_s3_error *err)
{
    hc_parts *p = ctx;
    hc_part part;
    char why[512];
    switch (hc_part_reader_take(p->reader, &part, why, sizeof why)) {
    case HC_PART_FAILED:
        hc_s3_err_set(err, HC_S3_EFILE, "%s", why);
        return -1;
    case HC_PART_PENDING:
        return 2;
    case HC_PART_ALL_TAKEN:
        return 0;
    default:
        break;
    }
    char what[96];
    long nparts = p->nparts > 0 ? p->nparts : hc_part_reader_count(p->reader);
    if (nparts > 0) {
        snprintf(what, sizeof what, "uploading part %ld of %ld", part.number, nparts);
    } else {
        snprintf(what, sizeof what, "uploading part %ld (the file is still being written)", part.number);
    }
    hc_s3_req_init(&slot->req, "PUT", p->key, what, "to");
    slot->part_number = part.number;
    slot->part_index = part.index;
    slot->req.body_kind = HC_BODY_MEM;
    slot->req.body_mem = part.data;
    slot->req.body_len = part.len;
    slot->req.file_path = p->path;
    memcpy(slot->req.payload_sha256, part.sha256, sizeof slot->req.payload_sha256);
    memcpy(slot->req.content_md5, part.md5, sizeof slot->req.content_md5);
    snprintf(slot->req.part_number, sizeof slot->req.part_number, "%ld", part.number);
    hc_s3_req_query(&slot->req, "partNumber", slot->req.part_number);
    hc_s3_req_query(&slot->req, "uploadId", p->upload_id);
    return 1;
}

static int hc_parts_done(void *ctx, hc_s3_slot *slot, hc_s3_error *err)
{
    hc_parts *p = ctx;
    hc_part_reader_give_back(p->reader, slot->part_index);
    if (!*slot->req.etag) {
        hc_s3_err_set(err, HC_S3_EHTTP, "S3 accepted part %ld of %s but sent no ETag for it", slot->part_number, p->key);
        return -1;
    }
    p->etags[slot->part_number - 1] = strdup(slot->req.etag);
    if (!p->etags[slot->part_number - 1]) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while uploading %s", p->path);
        return -1;
    }
    return 0;
}

static int hc_xml_escape_add(char **dst, size_t *len, const char *s)
{
    for (; *s; s++) {
        const char *piece;
        char one[2] = {*s, 0};
        switch (*s) {
        case '&': piece = "&amp;"; break;
        case '<': piece = "&lt;"; break;
        case '>': piece = "&gt;"; break;
        case '"': piece = "&quot;"; break;
        default: piece = one;
        }
        if (hc_s3_str_add(dst, len, piece, 0, 0) != 0) return -1;
    }
    return 0;
}

static char *hc_complete_body(const hc_parts *p, size_t *len)
{
    char *xml = NULL;
    char num[32];
    *len = 0;
    if (hc_s3_str_add(&xml, len, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">", 0, 0))
        return NULL;
    for (long i = 0; i < p->nparts; i++) {
        snprintf(num, sizeof num, "%ld", i + 1);
        if (hc_s3_str_add(&xml, len, "<Part><PartNumber>", 0, 0) || hc_s3_str_add(&xml, len, num, 0, 0) ||
            hc_s3_str_add(&xml, len, "</PartNumber><ETag>", 0, 0) || hc_xml_escape_add(&xml, len, p->etags[i]) ||
            hc_s3_str_add(&xml, len, "</ETag></Part>", 0, 0)) {
            free(xml);
            return NULL;
        }
    }
    if (hc_s3_str_add(&xml, len, "</CompleteMultipartUpload>", 0, 0)) {
        free(xml);
        return NULL;
    }
    return xml;
}

/* ETags are quoted ("\"abc...-3\""), as S3 and HEAD give them; a bare one gets its quotes. */
static void hc_quote_etag(char *etag, size_t len)
{
    size_t n = strlen(etag);
    if (n == 0 || etag[0] == '"' || n + 3 > len) return;
    memmove(etag + 1, etag, n);
    etag[0] = '"';
    etag[n + 1] = '"';
    etag[n + 2] = '\0';
}

/* One AbortMultipartUpload, a clean-up request. HC_S3_OK, or the failure in err (*unanswered:
 * the DELETE went out and its answer was not read). */
static hc_s3_status hc_send_abort(hc_s3_client *c, const char *key, const char *upload_id, int *unanswered,
                                  hc_s3_error *err)
{
    hc_s3_req r;
    hc_s3_req_init(&r, "DELETE", key, "aborting the multipart upload", "of");
    hc_s3_req_query(&r, "uploadId", upload_id);
    hc_s3_status st = hc_s3_perform(c, &r, 1, err);
    *unanswered = r.unanswered;
    hc_s3_req_release(&r);
    if (st == HC_S3_EHTTP && err->http_status == 404) st = HC_S3_OK; /* NoSuchUpload: already gone (aborted again) */
    return st;
}

/* ListParts after an abort: 0 when the upload is gone (404 NoSuchUpload) or lists no part, else
 * how many parts it still lists, or -1 with why when the answer cannot tell. */
static long hc_parts_left(hc_s3_client *c, const char *key, const char *upload_id, char *why, size_t whylen)
{
    hc_s3_req r;
    hc_s3_error e;
    long left = -1;
    hc_s3_req_init(&r, "GET", key, "listing the parts left of the aborted multipart upload", "of");
    hc_s3_req_query(&r, "uploadId", upload_id);
    if (hc_s3_perform(c, &r, 1, &e) == HC_S3_OK) {
        if (hc_s3_xml_count_children(r.resp.data, r.resp.len, "ListPartsResult", "Part", &left, why, whylen) != 0)
            left = -1;
    } else if (e.http_status == 404) {
        left = 0;
    } else {
        snprintf(why, whylen, "%.480s", e.message); /* the caller adds it to a message of its own */
    }
    hc_s3_req_release(&r);
    return left;
}

/* AbortMultipartUpload after a failure or an interrupt, then ListParts: a part S3 was still
 * storing when the abort went out can outlive it (AWS documents this race), so the abort is sent
 * again while parts are listed, HC_ABORT_ROUNDS times at most. unsettled: parts dropped unanswered
 * after their body had gone out. Says in err's message how it went. */
static void hc_abort_multipart(hc_s3_client *c, const char *key, const char *upload_id, int unsettled,
                               hc_s3_error *err)
{
    size_t n = strlen(err->message);
    long left = 0;
    for (int round = 1; round <= HC_ABORT_ROUNDS; round++) {
        hc_s3_error abort_err;
        int unanswered = 0;
        if (hc_send_abort(c, key, upload_id, &unanswered, &abort_err) != HC_S3_OK) {
            err->upload_left_open = 1;
            snprintf(err->message + n, sizeof err->message - n,
                     "; aborting the multipart upload %s failed too (%s): %s (and billed) until you abort it or a "
                     "bucket lifecycle rule with AbortIncompleteMultipartUpload removes it", upload_id,
                     abort_err.message,
                     unanswered ? "S3 may have acted on the abort unseen; if not, the upload stays open"
                                : "it stays open");
            return;
        }
        char why[512] = "";
        left = hc_parts_left(c, key, upload_id, why, sizeof why);
        if (left < 0) {
            snprintf(err->message + n, sizeof err->message - n,
                     "; the multipart upload was aborted, but whether S3 still keeps some of its parts could not be "
                     "checked (%s)", why);
            return;
        }
        if (left == 0) break;
    }
    if (left > 0) {
        err->upload_left_open = 1;
        snprintf(err->message + n, sizeof err->message - n,
                 "; the multipart upload %s was aborted %d times and S3 still lists %ld of its parts: they stay (and "
                 "are billed) until you abort it again (aws s3api abort-multipart-upload) or a bucket lifecycle rule "
                 "with AbortIncompleteMultipartUpload removes them", upload_id, HC_ABORT_ROUNDS, left);
    } else if (unsettled > 0) {
        snprintf(err->message + n, sizeof err->message - n,
                 "; the multipart upload was aborted, but %d part(s) S3 had received were still unanswered %d s "
                 "later: S3 may store them after the abort", unsettled, HC_S3_PART_SETTLE_MS / 1000);
    } else {
        snprintf(err->message + n, sizeof err->message - n, "; the multipart upload was aborted, nothing was stored");
    }
}

/* CreateMultipartUpload failed or was interrupted after it went out, without its answer: S3 may
 * have started an upload whose id we never learned, so it cannot be aborted from here. */
static void hc_note_unknown_upload(hc_s3_client *c, const char *key, hc_s3_error *err)
{
    char *url = hc_s3_display_url(c, key);
    err->upload_left_open = 1;
    if (err->kind == HC_S3_EABORTED) {
        hc_s3_err_set(err, HC_S3_EABORTED,
                      "interrupted while starting a multipart upload to %s, before S3's answer could be read "
                      "(waited at most %d s for it)", url ? url : key, HC_S3_SETTLE_MS / 1000);
    }
    size_t n = strlen(err->message);
    snprintf(err->message + n, sizeof err->message - n,
             "; S3 may have started a multipart upload for the key %s whose id never reached us, so it could not "
             "be aborted: it stays open (and billed) until a bucket lifecycle rule with "
             "AbortIncompleteMultipartUpload removes it (or list and abort it: aws s3api list-multipart-uploads)",
             key);
    free(url);
}

/* InitiateMultipartUpload: upload_id from S3's answer. A start whose answer never came leaves a
 * note in err (an upload may be open that nothing can abort). */
static hc_s3_status hc_start_multipart(hc_s3_client *c, const char *key, const char *content_type, char *upload_id,
                                       size_t idlen, hc_s3_error *err)
{
    hc_s3_req r;
    hc_s3_req_init(&r, "POST", key, "starting a multipart upload", "to");
    hc_s3_req_query(&r, "uploads", "");
    r.content_type = content_type;
    r.sse = 1; /* the object's encryption is set here; its parts and the Complete carry none */
    /* An interrupt while this is in flight waits for the answer: without the id, no abort. */
    r.settle_ms = HC_S3_SETTLE_MS;
    hc_s3_status st = hc_s3_perform(c, &r, 0, err);
    if (st != HC_S3_OK && r.unanswered) hc_note_unknown_upload(c, key, err);
    if (st == HC_S3_OK) {
        char why[512];
        if (hc_s3_xml_child_text(r.resp.data, r.resp.len, "InitiateMultipartUploadResult", "UploadId", upload_id,
                                 idlen, why, sizeof why) != 0 || !*upload_id) {
            char *url = hc_s3_display_url(c, key);
            hc_s3_err_set(err, HC_S3_EHTTP, "S3's answer to starting a multipart upload to %s is unusable: %s",
                       url ? url : key, why);
            free(url);
            st = HC_S3_EHTTP;
        } else if (hc_sse_confirmed(c, &r, err) != 0) {
            hc_abort_multipart(c, key, upload_id, 0, err); /* no part went out */
            st = HC_S3_EHTTP;
        }
    }
    hc_s3_req_release(&r);
    return st;
}

/* Every part, read by the part reader while the others are sent, nslots at a time: p->etags
 * filled; for a growing file p->nparts and *size are known at the end. *unsettled counts the parts
 * dropped unanswered after their body had gone out. */
static hc_s3_status hc_send_parts(hc_parts *p, int fd, long long *size, const hc_growing_file *grow, long part_size,
                                  int *unsettled, hc_s3_error *err)
{
    hc_s3_client *c = p->c;
    int nslots = grow || c->nslots < p->nparts ? c->nslots : (int)p->nparts;
    hc_s3_slot *slots = calloc((size_t)nslots, sizeof *slots);
    char why[512];
    hc_s3_status st;
    if (!slots) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while uploading %s", p->path);
        st = HC_S3_ENOMEM;
    } else if (hc_s3_fork_check(c, err) != 0) {
        st = err->kind;
    } else if (hc_s3_is_aborted(c)) { /* it came while the start was answered: no part goes out */
        char *url = hc_s3_display_url(c, p->key);
        hc_s3_err_set(err, HC_S3_EABORTED, "interrupted while starting a multipart upload to %s", url ? url : p->key);
        free(url);
        st = HC_S3_EABORTED;
    } else if (!(p->reader = grow ? hc_part_reader_start_growing(fd, p->path, grow, part_size, nslots + 1, hc_wake, c,
                                                                 why, sizeof why)
                                  : hc_part_reader_start(fd, p->path, *size, part_size, nslots + 1, hc_wake, c, why,
                                                         sizeof why))) {
        /* (one buffer more than parts in flight: the next part is read while the others are sent) */
        hc_s3_err_set(err, HC_S3_ENOMEM, "%s", why);
        st = HC_S3_ENOMEM;
    } else {
        /* Once stopped, the parts whose body has gone out are waited for: answered before the
         * abort, they cannot be stored after it, where nothing would list them. */
        hc_s3_job job = {hc_parts_next, hc_parts_done, p, slots, nslots, 0, HC_S3_PART_SETTLE_MS, 0, 0};
        st = hc_s3_run(c, &job, err);
        *unsettled = job.unsettled;
        if (grow) {
            p->nparts = hc_part_reader_count(p->reader);
            *size = hc_part_reader_size(p->reader);
        }
        hc_part_reader_stop(p->reader);
        if (st == HC_S3_OK && p->nparts <= 0) { /* cannot happen: the job ends once every part is taken */
            hc_s3_err_set(err, HC_S3_EFILE, "cannot upload %s: its writer never finished", p->path);
            st = HC_S3_EFILE;
        }
    }
    free(slots);
    return st;
}

/* CompleteMultipartUpload of every part sent: out gets the object's ETag, bytes and parts. */
static hc_s3_status hc_complete_multipart(hc_parts *p, long long size, hc_s3_upload_result *out, hc_s3_error *err)
{
    size_t xlen = 0;
    char *xml = hc_complete_body(p, &xlen);
    if (!xml) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while completing the upload of %s", p->path);
        return HC_S3_ENOMEM;
    }
    hc_s3_req r;
    hc_s3_req_init(&r, "POST", p->key, "completing the multipart upload", "of");
    hc_s3_req_query(&r, "uploadId", p->upload_id);
    r.body_kind = HC_BODY_MEM;
    r.body_mem = (const unsigned char *)xml;
    r.body_len = (long long)xlen;
    r.content_type = "application/xml";
    r.error_in_200 = 1;
    hc_sha256_hex(xml, xlen, r.payload_sha256);
    hc_s3_status st = hc_s3_perform(p->c, &r, 0, err);
    if (st == HC_S3_OK) {
        char why[512];
        /* The answer's ETag, else the header's; an empty one counts as none (RGW 16). */
        if (hc_s3_xml_child_text(r.resp.data, r.resp.len, "CompleteMultipartUploadResult", "ETag",
                                 out->etag, sizeof out->etag, why, sizeof why) != 0 || !*out->etag) {
            snprintf(out->etag, sizeof out->etag, "%s", r.etag);
        }
        if (!*out->etag) hc_s3_multipart_etag(p->etags, p->nparts, out->etag, sizeof out->etag);
        hc_quote_etag(out->etag, sizeof out->etag); /* RGW 18's answer has it bare */
        out->bytes = size;
        out->parts = (int)p->nparts;
    }
    hc_s3_req_release(&r);
    free(xml);
    return st;
}

/* A multipart upload: start, the parts, complete; on any failure after the start, the abort
 * (which waits for the parts S3 may still act on and checks that none is left). size and grow:
 * a complete file of size bytes (grow NULL), or a growing one (size unknown). */
static hc_s3_status hc_put_multipart(hc_s3_client *c, int fd, long long size, const hc_growing_file *grow,
                                     long part_size, const char *path, const char *key, const char *content_type,
                                     hc_s3_upload_result *out, hc_s3_error *err)
{
    char upload_id[1024];
    hc_s3_status st = hc_start_multipart(c, key, content_type, upload_id, sizeof upload_id, err);
    if (st != HC_S3_OK) return st;

    hc_parts p = {c, path, key, upload_id, NULL, 0, NULL};
    int unsettled = 0;
    p.nparts = grow ? -1 : (long)((size + part_size - 1) / part_size);
    long netags = grow ? HC_PART_MAX : p.nparts; /* p.nparts of a growing file is known only at the end */
    p.etags = calloc((size_t)netags, sizeof *p.etags);
    if (!p.etags) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while uploading %s", path);
        st = HC_S3_ENOMEM;
    } else {
        st = hc_send_parts(&p, fd, &size, grow, part_size, &unsettled, err);
    }
    if (st == HC_S3_OK) st = hc_complete_multipart(&p, size, out, err);
    if (p.etags) {
        for (long i = 0; i < netags; i++) free(p.etags[i]);
        free(p.etags);
    }
    if (st != HC_S3_OK) hc_abort_multipart(c, key, upload_id, unsettled, err);
    return st;
}

static int hc_hex_nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int hc_s3_multipart_etag(char *const *etags, long nparts, char *out, size_t outlen)
{
    if (outlen) out[0] = '\0';
    if (nparts < 1 || outlen < 40) return -1;
    unsigned char *md5s = malloc((size_t)nparts * 16);
    if (!md5s) return -1;
    for (long i = 0; i < nparts; i++) {
        const char *e = etags[i] ? etags[i] : "";
        if (*e == '"') e++;
        size_t n = strlen(e);
        if (n && e[n - 1] == '"') n--;
        int ok = n == 32;
        for (size_t j = 0; ok && j < 16; j++) {
            int hi = hc_hex_nibble(e[2 * j]), lo = hc_hex_nibble(e[2 * j + 1]);
            ok = hi >= 0 && lo >= 0;
            md5s[i * 16 + (long)j] = (unsigned char)(hi << 4 | lo);
        }
        if (!ok) {
            free(md5s);
            return -1;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = EVP_Digest(md5s, (size_t)nparts * 16, md, &mdlen, EVP_md5(), NULL) == 1 ? 0 : -1;
    free(md5s);
    if (rc != 0) return -1;
    char hex[33];
    hc_to_hex(md, 16, hex);
    snprintf(out, outlen, "\"%s-%ld\"", hex, nparts);
    return 0;
}

/* What every upload checks first: clears the answer and err; 0, or -1 when the key is empty. */
static int hc_upload_begin(const char *path, const char *key, const char **content_type, hc_s3_upload_result *out,
                           hc_s3_error *err)
{
    hc_s3_err_clear(err);
    memset(out, 0, sizeof *out);
    if (hc_empty(key)) {
        hc_s3_err_set(err, HC_S3_EARG, "cannot upload %s: the object key is empty", path);
        return -1;
    }
    if (!*content_type) *content_type = "application/octet-stream";
    return 0;
}

hc_s3_status hc_s3_upload(hc_s3_client *c, const char *path, const char *key, const char *content_type,
                          hc_s3_upload_result *out, hc_s3_error *err)
{
    int fd;
    long long size;
    if (hc_upload_begin(path, key, &content_type, out, err) != 0) return err->kind;
    if (hc_open_source(path, &fd, &size, err) != 0) return err->kind;
    long part_size = hc_s3_part_size_for(c->cfg.part_size, size);
    hc_s3_status st = size <= part_size
                          ? hc_put_single(c, fd, size, path, key, content_type, out, err)
                          : hc_put_multipart(c, fd, size, NULL, part_size, path, key, content_type, out, err);
    close(fd);
    return st;
}

/* Waits until the growing file is more than one part, or complete: a file that ends up within one
 * part goes up as a single PUT, a larger one as a multipart upload that starts now. */
hc_s3_status hc_s3_upload_growing(hc_s3_client *c, int fd, const char *path, const hc_growing_file *grow,
                                  long long size_hint, const char *key, const char *content_type,
                                  hc_s3_upload_result *out, hc_s3_error *err)
{
    if (hc_upload_begin(path, key, &content_type, out, err) != 0) return err->kind;
    long part_size = hc_s3_part_size_for(c->cfg.part_size, size_hint);
    long long size = 0;
    int final = 0;
    while (!final && size <= part_size) {
        if (hc_s3_is_aborted(c)) {
            hc_s3_err_set(err, HC_S3_EABORTED, "interrupted while waiting for %s to be written, before the upload "
                          "began", path);
            return HC_S3_EABORTED;
        }
        char why[512];
        if (grow->wait(grow->ctx, (long long)part_size + 1, HC_GROW_WAIT_MS, &size, &final, why, sizeof why) != 0) {
            hc_s3_err_set(err, HC_S3_EFILE, "%s", why);
            return HC_S3_EFILE;
        }
    }
    if (final && size <= part_size) return hc_put_single(c, fd, size, path, key, content_type, out, err);
    return hc_put_multipart(c, fd, 0, grow, part_size, path, key, content_type, out, err);
}

/* Clears err; when key is empty, says so ("cannot <doing>: ...") and returns 1. */
static int hc_key_missing(const char *key, const char *doing, hc_s3_error *err)
{
    hc_s3_err_clear(err);
    if (!hc_empty(key)) return 0;
    hc_s3_err_set(err, HC_S3_EARG, "cannot %s: the object key is empty", doing);
    return 1;
}

hc_s3_status hc_s3_download(hc_s3_client *c, const char *key, const char *path, long long *bytes,
                            hc_s3_error *err)
{
    *bytes = 0;
    if (hc_key_missing(key, "download", err)) return HC_S3_EARG;
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while downloading %s", key);
        return HC_S3_ENOMEM;
    }
    snprintf(tmp, n, "%s.heapcapture-XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        hc_s3_err_set(err, HC_S3_EFILE, "cannot download %s to %s: creating a file there failed: %s", key, path,
                   strerror(errno));
        free(tmp);
        return HC_S3_EFILE;
    }
    hc_s3_req r;
    hc_s3_req_init(&r, "GET", key, "downloading", "from");
    r.sink_fd = fd;
    r.file_path = tmp;
    hc_s3_status st = hc_s3_perform(c, &r, 0, err);
    hc_s3_req_release(&r);
    if (st == HC_S3_OK && close(fd) != 0) {
        hc_s3_err_set(err, HC_S3_EFILE, "cannot download %s: writing %s failed: %s", key, tmp, strerror(errno));
        st = HC_S3_EFILE;
    } else if (st != HC_S3_OK) {
        close(fd);
    }
    if (st == HC_S3_OK && rename(tmp, path) != 0) {
        hc_s3_err_set(err, HC_S3_EFILE, "cannot download %s: renaming %s to %s failed: %s", key, tmp, path,
                   strerror(errno));
        st = HC_S3_EFILE;
    }
    if (st == HC_S3_OK) *bytes = r.sunk;
    else unlink(tmp);
    free(tmp);
    return st;
}

void hc_s3_objects_free(hc_s3_object *objects, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(objects[i].key);
        free(objects[i].last_modified);
    }
    free(objects);
}

hc_s3_status hc_s3_list(hc_s3_client *c, const char *prefix, hc_s3_object **objects, size_t *count,
                        hc_s3_error *err)
{
    hc_s3_xml_list_page page;
    hc_s3_status st = HC_S3_OK;
    char *token = NULL;
    memset(&page, 0, sizeof page);
    hc_s3_err_clear(err);
    *objects = NULL;
    *count = 0;
    for (int pages = 0;; pages++) {
        hc_s3_req r;
        hc_s3_req_init(&r, "GET", NULL, "listing objects", "in");
        r.resp_max = HC_LIST_BODY_MAX;
        hc_s3_req_query(&r, "list-type", "2");
        hc_s3_req_query(&r, "prefix", prefix ? prefix : "");
        if (token) hc_s3_req_query(&r, "continuation-token", token);
        st = hc_s3_perform(c, &r, 0, err);
        if (st == HC_S3_OK) {
            char why[512];
            if (r.resp.len >= HC_LIST_BODY_MAX - 1) {
                hc_s3_err_set(err, HC_S3_EHTTP, "S3's listing page from %s is larger than 32 MiB", c->base_url);
                st = HC_S3_EHTTP;
            } else if (hc_s3_xml_parse_list(r.resp.data, r.resp.len, &page, why, sizeof why) != 0) {
                hc_s3_err_set(err, HC_S3_EHTTP, "listing %s: %s", c->base_url, why);
                st = HC_S3_EHTTP;
            }
        }
        hc_s3_req_release(&r);
        free(token);
        token = NULL;
        if (st != HC_S3_OK || !page.is_truncated) break;
        if (pages > 100000) {
            hc_s3_err_set(err, HC_S3_EHTTP, "listing %s: S3 kept sending pages (100,000 so far)", c->base_url);
            st = HC_S3_EHTTP;
            break;
        }
        token = page.next_continuation_token;
        page.next_continuation_token = NULL;
    }
    if (st == HC_S3_OK) {
        *count = page.count;
        *objects = calloc(page.count ? page.count : 1, sizeof **objects);
        if (!*objects) {
            hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while listing %s", c->base_url);
            st = HC_S3_ENOMEM;
            *count = 0;
        } else {
            for (size_t i = 0; i < page.count; i++) {
                (*objects)[i].key = page.objects[i].key;
                (*objects)[i].size = page.objects[i].size;
                (*objects)[i].last_modified = page.objects[i].last_modified;
                page.objects[i].key = page.objects[i].last_modified = NULL;
            }
        }
    }
    hc_s3_xml_list_page_free(&page);
    return st;
}

hc_s3_status hc_s3_delete(hc_s3_client *c, const char *key, hc_s3_error *err)
{
    if (hc_key_missing(key, "delete", err)) return HC_S3_EARG;
    hc_s3_req r;
    hc_s3_req_init(&r, "DELETE", key, "deleting", "");
    hc_s3_status st = hc_s3_perform(c, &r, 0, err);
    hc_s3_req_release(&r);
    return st;
}

char *hc_s3_presigned_url(hc_s3_client *c, const char *key, long expires_in, long long now_utc, hc_s3_error *err)
{
    if (hc_key_missing(key, "presign", err)) return NULL;
    hc_s3_req r;
    hc_s3_req_init(&r, "GET", key, "presigning", "");
    char *path = hc_s3_req_path(c, &r);
    if (!path) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while presigning %s", key);
        return NULL;
    }
    hc_sigv4_request sreq = {
        .method = "GET", .host = c->host, .path = path, .payload_sha256 = HC_SIGV4_UNSIGNED_PAYLOAD,
        .region = c->region, .service = "s3", .access_key_id = c->access_key_id,
        .secret_access_key = c->secret_access_key, .session_token = c->session_token, .time = (time_t)now_utc,
    };
    hc_sigv4_result res;
    char why[256];
    if (hc_sigv4_presign(&sreq, expires_in, &res, why, sizeof why) != 0) {
        hc_s3_err_set(err, HC_S3_EARG, "cannot presign %s: %s", key, why);
        free(path);
        return NULL;
    }
    char *url = NULL;
    size_t len = 0;
    int failed = hc_s3_str_add(&url, &len, c->scheme, 0, 0) || hc_s3_str_add(&url, &len, "://", 0, 0) ||
                 hc_s3_str_add(&url, &len, c->host, 0, 0) || hc_s3_str_add(&url, &len, path, 1, 1) ||
                 hc_s3_str_add(&url, &len, "?", 0, 0) || hc_s3_str_add(&url, &len, res.query_string, 0, 0);
    hc_sigv4_result_free(&res);
    free(path);
    if (failed) {
        free(url);
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while presigning %s", key);
        return NULL;
    }
    return url;
}
