/* The S3 client: addressing, signing each attempt, and a small scheduler that runs requests in
 * parallel slots on one curl multi handle, retrying what is transient. See s3.h for the contract.
 *
 * Reading order: the client (config, URLs), one request (hc_req: what to send, what came back),
 * the scheduler (hc_run: slots, retries, abort), then the operations built on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp, strndup */
#endif
#include "s3.h"
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

#define HC_ERROR_BODY_MAX (64 * 1024)         /* an <Error> document is a few hundred bytes */
#define HC_LIST_BODY_MAX (32L * 1024 * 1024)  /* a 1,000-key listing page with 1 KiB keys fits */
#define HC_ABORT_ATTEMPTS 3                   /* AbortMultipartUpload after a failure: quick, bounded */
#define HC_UPLOAD_BUFFER (256 * 1024)         /* curl's send buffer: fewer, larger writes */
#define HC_READ_CHUNK (1024 * 1024)

struct hc_s3_client {
    hc_s3_config cfg;          /* strings below are copies owned by the client */
    char *bucket, *region, *access_key_id, *secret_access_key, *session_token, *ca_file, *ca_path;
    char *scheme;              /* "https" */
    char *host;                /* signed and sent as Host: "bucket.s3.us-east-1.amazonaws.com", "127.0.0.1:9000" */
    char *bucket_path;         /* "/bucket" path-style, "" virtual-hosted */
    char *base_url;            /* scheme://host + bucket_path, for messages */
    CURLM *multi;
    CURL **easy;               /* one per slot */
    int nslots;
    int aborted;               /* set from any thread with __atomic builtins */
    pid_t pid;                 /* the process the curl handles belong to */
    unsigned int seed;         /* backoff jitter */
};

/* ---------------------------------------------------------------- small helpers */

static void hc_err_set(hc_s3_error *err, hc_s3_status kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void hc_err_set(hc_s3_error *err, hc_s3_status kind, const char *fmt, ...)
{
    va_list ap;
    err->kind = kind;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

static void hc_err_clear(hc_s3_error *err)
{
    memset(err, 0, sizeof *err);
}

static char *hc_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int hc_empty(const char *s)
{
    return s == NULL || *s == '\0';
}

static long long hc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int hc_is_aborted(hc_s3_client *c)
{
    return __atomic_load_n(&c->aborted, __ATOMIC_SEQ_CST);
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

/* ---------------------------------------------------------------- the client */

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
    free(c->session_token); free(c->ca_file); free(c->ca_path);
    free(c->scheme); free(c->host); free(c->bucket_path); free(c->base_url);
    free(c);
}

/* The multi handle and one easy handle per slot, owned by this process. */
static int hc_curl_handles(hc_s3_client *c)
{
    c->pid = getpid();
    c->multi = curl_multi_init();
    c->easy = calloc((size_t)c->nslots, sizeof *c->easy);
    if (!c->multi || !c->easy) return -1;
    for (int i = 0; i < c->nslots; i++) {
        c->easy[i] = curl_easy_init();
        if (!c->easy[i]) return -1;
    }
    /* Keep enough connections open for every slot plus the odd control request. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->nslots + 2);
    return 0;
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
        hc_err_set(err, HC_S3_EARG, "the S3 endpoint %s must begin with http:// or https://", endpoint);
        return -1;
    }
    size_t len = strcspn(rest, "/?#");
    if (len == 0 || strchr(rest, '@') || (rest[len] == '/' && rest[len + 1] != '\0') ||
        rest[len] == '?' || rest[len] == '#') {
        hc_err_set(err, HC_S3_EARG,
                   "the S3 endpoint %s must be a scheme and a host with an optional port, like "
                   "http://127.0.0.1:9000 (no path, credentials or query)", endpoint);
        return -1;
    }
    *host = strndup(rest, len);
    if (!*scheme || !*host) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client");
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

hc_s3_client *hc_s3_client_new(const hc_s3_config *cfg, hc_s3_error *err)
{
    hc_err_clear(err);
    if (hc_empty(cfg->bucket) || !hc_valid_bucket(cfg->bucket)) {
        hc_err_set(err, HC_S3_EARG, "the S3 bucket name \"%s\" is not valid: 3 to 63 letters, digits, "
                   "dots or hyphens", cfg->bucket ? cfg->bucket : "");
        return NULL;
    }
    if (hc_empty(cfg->region)) {
        hc_err_set(err, HC_S3_EARG, "no S3 region given: set AWS_REGION (e.g. us-east-1) or pass region:");
        return NULL;
    }
    if (hc_empty(cfg->access_key_id) || hc_empty(cfg->secret_access_key)) {
        hc_err_set(err, HC_S3_EARG, "no S3 credentials given: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                   "or pass access_key_id: and secret_access_key:");
        return NULL;
    }
    if (cfg->concurrency < 0 || cfg->concurrency > HC_S3_MAX_CONCURRENCY) {
        hc_err_set(err, HC_S3_EARG, "concurrency must be from 1 to %d, got %d", HC_S3_MAX_CONCURRENCY,
                   cfg->concurrency);
        return NULL;
    }
    if (cfg->part_size < 0 || (cfg->part_size > 0 && cfg->part_size < HC_S3_MIB) ||
        cfg->part_size > 5L * 1024 * HC_S3_MIB) {
        hc_err_set(err, HC_S3_EARG, "part_size must be from 1 MiB to 5 GiB (S3 needs 5 MiB), got %ld",
                   cfg->part_size);
        return NULL;
    }
    if (cfg->max_attempts < 0 || cfg->max_attempts > 20) {
        hc_err_set(err, HC_S3_EARG, "max_attempts must be from 1 to 20, got %d", cfg->max_attempts);
        return NULL;
    }
    if (cfg->connect_timeout_ms < 0 || cfg->low_speed_time_s < 0 || cfg->retry_base_ms < 0) {
        hc_err_set(err, HC_S3_EARG, "S3 timeouts and the retry delay cannot be negative");
        return NULL;
    }

    hc_s3_client *c = calloc(1, sizeof *c);
    if (!c) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client");
        return NULL;
    }
    c->cfg = *cfg;
    if (!c->cfg.part_size) c->cfg.part_size = 8 * HC_S3_MIB;
    if (!c->cfg.concurrency) c->cfg.concurrency = 4;
    if (!c->cfg.connect_timeout_ms) c->cfg.connect_timeout_ms = 10000;
    if (!c->cfg.low_speed_time_s) c->cfg.low_speed_time_s = 30;
    if (!c->cfg.max_attempts) c->cfg.max_attempts = 5;
    if (!c->cfg.retry_base_ms) c->cfg.retry_base_ms = 200;
    c->bucket = hc_dup(cfg->bucket);
    c->region = hc_dup(cfg->region);
    c->access_key_id = hc_dup(cfg->access_key_id);
    c->secret_access_key = hc_dup(cfg->secret_access_key);
    c->session_token = hc_empty(cfg->session_token) ? NULL : hc_dup(cfg->session_token);
    c->ca_file = hc_empty(cfg->ca_file) ? NULL : hc_dup(cfg->ca_file);
    c->ca_path = hc_empty(cfg->ca_path) ? NULL : hc_dup(cfg->ca_path);
    c->seed = (unsigned int)(hc_now_ms() ^ (long long)getpid() ^ (long long)(size_t)c);

    int path_style = cfg->path_style;
    if (path_style < 0) path_style = !hc_empty(cfg->endpoint) || strchr(cfg->bucket, '.') != NULL;

    char *endpoint_host = NULL;
    if (!hc_empty(cfg->endpoint)) {
        if (hc_parse_endpoint(cfg->endpoint, &c->scheme, &endpoint_host, err) != 0) {
            free(endpoint_host);
            hc_s3_client_free(c);
            return NULL;
        }
    } else {
        c->scheme = strdup("https");
        size_t n = strlen(cfg->region) + 32;
        endpoint_host = malloc(n);
        if (endpoint_host) snprintf(endpoint_host, n, "s3.%s.amazonaws.com", cfg->region);
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

    c->nslots = c->cfg.concurrency;
    int ok = c->bucket && c->region && c->access_key_id && c->secret_access_key && c->base_url &&
             (!cfg->session_token || hc_empty(cfg->session_token) || c->session_token) && hc_curl_handles(c) == 0;
    if (!ok) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client");
        hc_s3_client_free(c);
        return NULL;
    }
    return c;
}

/* After fork, the child must not use the parent's connections (their sockets and TLS sessions are
 * shared with the parent): it drops them without closing them and starts afresh. */
static int hc_fork_check(hc_s3_client *c, hc_s3_error *err)
{
    if (c->pid == getpid()) return 0;
    free(c->easy); /* the handles themselves are the parent's: left alone on purpose */
    c->easy = NULL;
    c->multi = NULL;
    if (hc_curl_handles(c) != 0) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client after fork");
        return -1;
    }
    return 0;
}

const char *hc_s3_client_base_url(const hc_s3_client *c)
{
    return c->base_url;
}

void hc_s3_client_abort(hc_s3_client *c)
{
    __atomic_store_n(&c->aborted, 1, __ATOMIC_SEQ_CST);
    curl_multi_wakeup(c->multi);
}

void hc_s3_client_reset_abort(hc_s3_client *c)
{
    __atomic_store_n(&c->aborted, 0, __ATOMIC_SEQ_CST);
}

/* ---------------------------------------------------------------- one request */

typedef struct {
    char *data;
    size_t len, cap, max;
} hc_buf;

static int hc_buf_append(hc_buf *b, const char *data, size_t len)
{
    if (b->len + len + 1 > b->max) return -1;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

enum { HC_BODY_NONE, HC_BODY_MEM, HC_BODY_FILE };

typedef struct {
    /* what to send */
    const char *method;
    const char *key;              /* decoded; NULL for a bucket-level request */
    const char *qname[3];
    const char *qvalue[3];        /* not owned */
    size_t nquery;
    int body_kind;
    const unsigned char *body_mem;
    int body_fd;
    long long body_offset, body_len, body_pos;
    char payload_sha256[65];
    const char *content_type;
    int sink_fd;                  /* download target, or -1 */
    size_t resp_max;
    int error_in_200;             /* CompleteMultipartUpload: a 200 can carry <Error> */
    char what[160];               /* "uploading part 3 of 12", for messages */
    const char *file_path;        /* the local file, for messages */
    char part_number[24];         /* the partNumber query value */

    /* what came back, reset on every attempt */
    long status;
    hc_buf resp;
    char etag[128];
    char request_id[128];
    int local_errno;              /* reading the body or writing the download failed */
    long stall_ms;                /* no byte moving for this long is a stall */
    long long last_moved_ms;
    curl_off_t last_dlnow, last_ulnow;
    int stalled;
    long long sunk;
    char curl_err[CURL_ERROR_SIZE];
    struct curl_slist *headers;
    char *url;

    int attempts;
} hc_req;

static void hc_req_init(hc_req *r, const char *method, const char *key, const char *what)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->key = key;
    r->sink_fd = -1;
    r->body_fd = -1;
    r->resp_max = HC_ERROR_BODY_MAX;
    hc_sha256_hex("", 0, r->payload_sha256);
    snprintf(r->what, sizeof r->what, "%s", what);
}

static void hc_req_query(hc_req *r, const char *name, const char *value)
{
    r->qname[r->nquery] = name;
    r->qvalue[r->nquery] = value;
    r->nquery++;
}

static void hc_req_release(hc_req *r)
{
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    free(r->url);
    r->url = NULL;
    free(r->resp.data);
    memset(&r->resp, 0, sizeof r->resp);
}

static size_t hc_read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    hc_req *r = userdata;
    size_t want = size * nitems;
    long long left = r->body_len - r->body_pos;
    if ((long long)want > left) want = (size_t)left;
    if (want == 0) return 0;
    if (r->body_kind == HC_BODY_MEM) {
        memcpy(buf, r->body_mem + r->body_pos, want);
    } else {
        ssize_t got;
        do {
            got = pread(r->body_fd, buf, want, (off_t)(r->body_offset + r->body_pos));
        } while (got < 0 && errno == EINTR);
        if (got <= 0) {
            r->local_errno = got < 0 ? errno : EIO; /* 0: the file shrank while we sent it */
            return CURL_READFUNC_ABORT;
        }
        want = (size_t)got;
    }
    r->body_pos += (long long)want;
    return want;
}

/* Stall detection: curl's own low-speed check averages over several seconds; this one fires when
 * no byte has moved either way for stall_ms. */
static int hc_progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    hc_req *r = userdata;
    long long now = hc_now_ms();
    (void)dltotal;
    (void)ultotal;
    if (dlnow != r->last_dlnow || ulnow != r->last_ulnow || r->last_moved_ms == 0) {
        r->last_dlnow = dlnow;
        r->last_ulnow = ulnow;
        r->last_moved_ms = now;
        return 0;
    }
    if (now - r->last_moved_ms >= r->stall_ms) {
        r->stalled = 1;
        return 1;
    }
    return 0;
}

static int hc_seek_cb(void *userdata, curl_off_t offset, int origin)
{
    hc_req *r = userdata;
    if (origin != SEEK_SET || offset < 0 || offset > r->body_len) return CURL_SEEKFUNC_CANTSEEK;
    r->body_pos = offset;
    return CURL_SEEKFUNC_OK;
}

static size_t hc_write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    hc_req *r = userdata;
    size_t len = size * nmemb;
    if (r->sink_fd >= 0 && r->status / 100 == 2) {
        size_t done = 0;
        while (done < len) {
            ssize_t n = write(r->sink_fd, data + done, len - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                r->local_errno = n < 0 ? errno : EIO;
                return 0;
            }
            done += (size_t)n;
        }
        r->sunk += (long long)len;
        return len;
    }
    (void)hc_buf_append(&r->resp, data, len); /* beyond resp_max the rest is dropped, not fatal */
    return len;
}

/* Copies a header's value, trimmed, when the line is "name: value". */
static int hc_header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') return 0;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t vlen = (size_t)(end - v);
    if (vlen >= outlen) vlen = outlen - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return 1;
}

static size_t hc_header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
    hc_req *r = userdata;
    size_t len = size * nitems;
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the previous one's headers. */
        r->etag[0] = r->request_id[0] = '\0';
        const char *sp = memchr(line, ' ', len);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    if (!hc_header_value(line, len, "etag", r->etag, sizeof r->etag))
        hc_header_value(line, len, "x-amz-request-id", r->request_id, sizeof r->request_id);
    return len;
}

/* Appends s to the growing string *dst (length *len), percent-encoded when encode is set. */
static int hc_str_add(char **dst, size_t *len, const char *s, int encode, int keep_slash)
{
    char *enc = encode ? hc_uri_encode(s, strlen(s), keep_slash) : NULL;
    const char *add = encode ? enc : s;
    if (!add) return -1;
    size_t n = strlen(add);
    char *grown = realloc(*dst, *len + n + 1);
    if (!grown) {
        free(enc);
        return -1;
    }
    memcpy(grown + *len, add, n + 1);
    *dst = grown;
    *len += n;
    free(enc);
    return 0;
}

/* The decoded path of a request: "/bucket/key", "/key", "/bucket" or "/". Malloc'd. */
static char *hc_req_path(hc_s3_client *c, const hc_req *r)
{
    size_t n = strlen(c->bucket_path) + (r->key ? strlen(r->key) : 0) + 2;
    char *path = malloc(n);
    if (!path) return NULL;
    if (r->key) snprintf(path, n, "%s/%s", c->bucket_path, r->key);
    else snprintf(path, n, "%s", *c->bucket_path ? c->bucket_path : "/");
    return path;
}

/* The object's URL without query, for messages. Malloc'd; NULL when out of memory. */
static char *hc_display_url(hc_s3_client *c, const char *key)
{
    char *url = NULL;
    size_t len = 0;
    if (hc_str_add(&url, &len, c->base_url, 0, 0) != 0) return NULL;
    if (key && (hc_str_add(&url, &len, "/", 0, 0) != 0 || hc_str_add(&url, &len, key, 0, 0) != 0)) {
        free(url);
        return NULL;
    }
    return url;
}

static struct curl_slist *hc_header_add(struct curl_slist *list, int *failed, const char *name, const char *value)
{
    char line[4096];
    if (*failed) return list;
    if ((size_t)snprintf(line, sizeof line, "%s: %s", name, value) >= sizeof line) {
        *failed = 1;
        return list;
    }
    struct curl_slist *next = curl_slist_append(list, line);
    if (!next) {
        *failed = 1;
        return list;
    }
    return next;
}

/* Signs the request as of now and sets every option on easy. Returns 0, or -1 with err set. */
static int hc_req_prepare(hc_s3_client *c, hc_req *r, CURL *easy, int quick, hc_s3_error *err)
{
    hc_req_release(r);
    r->status = 0;
    r->resp.max = r->resp_max;
    r->etag[0] = r->request_id[0] = r->curl_err[0] = '\0';
    r->local_errno = 0;
    r->stalled = 0;
    r->last_moved_ms = 0;
    r->last_dlnow = r->last_ulnow = 0;
    r->stall_ms = (quick && c->cfg.low_speed_time_s > 10 ? 10L : c->cfg.low_speed_time_s) * 1000L;
    r->body_pos = 0;
    r->sunk = 0;
    if (r->sink_fd >= 0 && (ftruncate(r->sink_fd, 0) != 0 || lseek(r->sink_fd, 0, SEEK_SET) < 0)) {
        hc_err_set(err, HC_S3_EFILE, "%s: cannot rewind the download file %s: %s", r->what,
                   r->file_path ? r->file_path : "", strerror(errno));
        return -1;
    }

    char *path = hc_req_path(c, r);
    hc_kv query[3];
    for (size_t i = 0; i < r->nquery; i++) {
        query[i].name = r->qname[i];
        query[i].value = r->qvalue[i];
    }
    hc_kv signed_headers[1] = {{"x-amz-content-sha256", r->payload_sha256}};
    hc_sigv4_request sreq = {
        .method = r->method, .host = c->host, .path = path ? path : "/",
        .query = query, .nquery = r->nquery, .headers = signed_headers, .nheaders = 1,
        .payload_sha256 = r->payload_sha256, .region = c->region, .service = "s3",
        .access_key_id = c->access_key_id, .secret_access_key = c->secret_access_key,
        .session_token = c->session_token, .time = time(NULL),
    };
    hc_sigv4_result signed_req;
    char sigerr[256];
    if (!path) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while %s", r->what);
        return -1;
    }
    if (hc_sigv4_sign(&sreq, &signed_req, sigerr, sizeof sigerr) != 0) {
        hc_err_set(err, HC_S3_EARG, "cannot sign the request while %s: %s", r->what, sigerr);
        free(path);
        return -1;
    }

    /* URL: scheme://host + path encoded once + query encoded (order does not matter on the wire). */
    size_t ulen = 0;
    int failed = hc_str_add(&r->url, &ulen, c->scheme, 0, 0) || hc_str_add(&r->url, &ulen, "://", 0, 0) ||
                 hc_str_add(&r->url, &ulen, c->host, 0, 0) || hc_str_add(&r->url, &ulen, path, 1, 1);
    for (size_t i = 0; !failed && i < r->nquery; i++) {
        failed = hc_str_add(&r->url, &ulen, i ? "&" : "?", 0, 0) || hc_str_add(&r->url, &ulen, r->qname[i], 1, 0);
        if (!failed && r->qvalue[i]) {
            failed = hc_str_add(&r->url, &ulen, "=", 0, 0) || hc_str_add(&r->url, &ulen, r->qvalue[i], 1, 0);
        }
    }
    free(path);

    struct curl_slist *h = NULL;
    h = hc_header_add(h, &failed, "Host", c->host);
    h = hc_header_add(h, &failed, "x-amz-date", signed_req.amz_date);
    h = hc_header_add(h, &failed, "x-amz-content-sha256", r->payload_sha256);
    if (c->session_token) h = hc_header_add(h, &failed, "x-amz-security-token", c->session_token);
    h = hc_header_add(h, &failed, "Authorization", signed_req.authorization);
    if (r->content_type) h = hc_header_add(h, &failed, "Content-Type", r->content_type);
    if (!failed) {
        /* No 100-continue round trip; an empty value removes curl's own header. */
        struct curl_slist *next = curl_slist_append(h, "Expect:");
        if (next) h = next; else failed = 1;
    }
    r->headers = h;
    hc_sigv4_result_free(&signed_req);
    if (failed) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory (or a header over 4 KiB) while %s", r->what);
        return -1;
    }

    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, r->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, hc_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, hc_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file) curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
    if (c->ca_path) curl_easy_setopt(easy, CURLOPT_CAPATH, c->ca_path);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (getenv("HC_CURL_VERBOSE")) curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, quick && c->cfg.connect_timeout_ms > 5000 ? 5000L
                                                                                              : c->cfg.connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, hc_progress_cb);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, r);
    if (strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, (long)HC_UPLOAD_BUFFER);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r->method);
    }
    if (r->body_kind != HC_BODY_NONE || strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(easy, CURLOPT_READFUNCTION, hc_read_cb);
        curl_easy_setopt(easy, CURLOPT_READDATA, r);
        curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, hc_seek_cb);
        curl_easy_setopt(easy, CURLOPT_SEEKDATA, r);
    }
    return 0;
}

static int hc_retryable_code(const char *code)
{
    static const char *codes[] = {"SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "InternalError",
                                  "ServiceUnavailable", "Throttling", "ThrottlingException", NULL};
    for (int i = 0; codes[i]; i++) {
        if (strcmp(code, codes[i]) == 0) return 1;
    }
    return 0;
}

static int hc_retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_WEIRD_SERVER_REPLY:
        return 1;
    default:
        return 0;
    }
}

enum { HC_DONE_OK, HC_DONE_RETRY, HC_DONE_FAIL };

/* Judges a finished attempt. On RETRY and FAIL, err says why (the message for the final failure). */
static int hc_req_judge(hc_s3_client *c, hc_req *r, CURL *easy, CURLcode rc, hc_s3_error *err)
{
    char *url = hc_display_url(c, r->key);
    const char *where = url ? url : c->base_url;
    int verdict;
    hc_err_clear(err);
    if (rc != CURLE_OK) {
        if (r->local_errno) {
            hc_err_set(err, HC_S3_EFILE, "%s: %s the local file %s failed: %s", r->what,
                       r->sink_fd >= 0 ? "writing" : "reading", r->file_path ? r->file_path : "(memory)",
                       strerror(r->local_errno));
            verdict = HC_DONE_FAIL;
        } else if (r->stalled) {
            hc_err_set(err, HC_S3_ETRANSPORT, "the transfer stalled (no byte moved for %ld s) while %s to %s",
                       r->stall_ms / 1000, r->what, where);
            verdict = HC_DONE_RETRY;
        } else {
            long os_errno = 0;
            curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
            const char *detail = *r->curl_err ? r->curl_err : curl_easy_strerror(rc);
            hc_err_set(err, HC_S3_ETRANSPORT, "%s%s%s%s while %s to %s", detail, os_errno ? " (" : "",
                       os_errno ? strerror((int)os_errno) : "", os_errno ? ")" : "", r->what, where);
            if (r->status) err->http_status = r->status;
            verdict = hc_retryable_curl(rc) ? HC_DONE_RETRY : HC_DONE_FAIL;
        }
    } else {
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        hc_s3_xml_error xe;
        int has_error = (status / 100 != 2 || r->error_in_200) && r->resp.len > 0 &&
                        hc_s3_xml_parse_error(r->resp.data, r->resp.len, &xe) == 1;
        if (status / 100 == 2 && !has_error) {
            verdict = HC_DONE_OK;
        } else {
            err->kind = HC_S3_EHTTP;
            err->http_status = status;
            if (has_error) {
                snprintf(err->code, sizeof err->code, "%s", xe.code);
                snprintf(err->request_id, sizeof err->request_id, "%s", *xe.request_id ? xe.request_id : r->request_id);
            } else {
                snprintf(err->request_id, sizeof err->request_id, "%s", r->request_id);
            }
            char reqid[160] = "";
            if (*err->request_id) snprintf(reqid, sizeof reqid, " (request id %s)", err->request_id);
            snprintf(err->message, sizeof err->message, "S3 answered HTTP %ld %s%s%s%s while %s to %s%s",
                     status, has_error && *xe.code ? xe.code : "without an S3 error code",
                     has_error && *xe.message ? ": " : "", has_error ? xe.message : "",
                     status / 100 == 2 ? " (an error inside a success answer)" : "", r->what, where, reqid);
            verdict = status >= 500 || status == 429 || (status / 100 == 2) || hc_retryable_code(err->code)
                          ? HC_DONE_RETRY : HC_DONE_FAIL;
        }
    }
    free(url);
    return verdict;
}

/* ---------------------------------------------------------------- the scheduler */

enum { HC_SLOT_IDLE, HC_SLOT_RUNNING, HC_SLOT_WAITING };

typedef struct {
    int state;
    long long retry_at_ms;
    hc_req req;
    int part_index;          /* the part reader's buffer this slot is sending */
    long part_number;
    hc_s3_error last_error;  /* the latest failed attempt's reason */
} hc_slot;

typedef struct {
    /* Fills an idle slot's req with the next request: 1 when filled, 0 when there is none left,
     * 2 when the next one is not ready yet (the job wakes the multi handle when it is), -1 on
     * failure with err set. */
    int (*next)(void *ctx, hc_slot *slot, hc_s3_error *err);
    /* Takes a successful answer: 0, or -1 with err set to fail the whole job. */
    int (*done)(void *ctx, hc_slot *slot, hc_s3_error *err);
    void *ctx;
    hc_slot *slots;
    int nslots;
    int quick;               /* a clean-up request after a failure: ignore the abort flag, short timeouts */
} hc_job;

static long long hc_backoff_ms(hc_s3_client *c, int attempts)
{
    long long base = c->cfg.retry_base_ms;
    int shift = attempts - 1 < 6 ? attempts - 1 : 6;
    long long cap = base << shift;
    /* Half fixed, half random: spreads retries without ever retrying at once. */
    return cap / 2 + (long long)(rand_r(&c->seed) % (unsigned int)(cap / 2 + 1));
}

static int hc_slot_start(hc_s3_client *c, hc_job *job, int i, hc_s3_error *err)
{
    hc_slot *s = &job->slots[i];
    s->req.attempts++;
    if (hc_req_prepare(c, &s->req, c->easy[i], job->quick, err) != 0) return -1;
    CURLMcode mrc = curl_multi_add_handle(c->multi, c->easy[i]);
    if (mrc != CURLM_OK) {
        hc_err_set(err, HC_S3_ETRANSPORT, "libcurl refused the request while %s: %s", s->req.what,
                   curl_multi_strerror(mrc));
        return -1;
    }
    s->state = HC_SLOT_RUNNING;
    return 0;
}

static int hc_slot_index(hc_job *job, hc_req *r)
{
    for (int i = 0; i < job->nslots; i++) {
        if (&job->slots[i].req == r) return i;
    }
    return -1;
}

/* Runs the job to the end. Returns HC_S3_OK, or the failure with err set. Every easy handle is
 * out of the multi handle when it returns. */
static hc_s3_status hc_run(hc_s3_client *c, hc_job *job, hc_s3_error *err)
{
    int exhausted = 0;
    hc_s3_status result = HC_S3_OK;
    hc_err_clear(err);
    if (hc_fork_check(c, err) != 0) return err->kind;
    for (;;) {
        if (!job->quick && hc_is_aborted(c)) {
            hc_err_set(err, HC_S3_EABORTED, "interrupted");
            result = HC_S3_EABORTED;
            break;
        }
        long long now = hc_now_ms();
        int busy = 0;
        long long next_retry = -1;
        for (int i = 0; i < job->nslots && result == HC_S3_OK; i++) {
            hc_slot *s = &job->slots[i];
            if (s->state == HC_SLOT_IDLE && !exhausted) {
                int got = job->next(job->ctx, s, err);
                if (got < 0) { result = err->kind ? err->kind : HC_S3_EARG; break; }
                if (got == 0) { exhausted = 1; continue; }
                if (got == 2) continue;
                if (hc_slot_start(c, job, i, err) != 0) { result = err->kind; break; }
            } else if (s->state == HC_SLOT_WAITING) {
                if (s->retry_at_ms <= now) {
                    if (hc_slot_start(c, job, i, err) != 0) { result = err->kind; break; }
                } else if (next_retry < 0 || s->retry_at_ms < next_retry) {
                    next_retry = s->retry_at_ms;
                }
            }
            if (s->state != HC_SLOT_IDLE) busy = 1;
        }
        if (result != HC_S3_OK) break;
        if (!busy && exhausted) break;

        int running = 0;
        CURLMcode mrc = curl_multi_perform(c->multi, &running);
        if (mrc != CURLM_OK) {
            hc_err_set(err, HC_S3_ETRANSPORT, "libcurl failed: %s", curl_multi_strerror(mrc));
            result = HC_S3_ETRANSPORT;
            break;
        }
        CURLMsg *msg;
        int left, finished = 0;
        while (result == HC_S3_OK && (msg = curl_multi_info_read(c->multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            finished = 1;
            CURL *easy = msg->easy_handle;
            CURLcode rc = msg->data.result;
            hc_req *r = NULL;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
            curl_multi_remove_handle(c->multi, easy);
            int i = hc_slot_index(job, r);
            if (i < 0) continue;
            hc_slot *s = &job->slots[i];
            int verdict = hc_req_judge(c, r, easy, rc, &s->last_error);
            if (verdict == HC_DONE_OK) {
                if (job->done(job->ctx, s, err) != 0) { result = err->kind ? err->kind : HC_S3_EHTTP; break; }
                hc_req_release(r);
                s->state = HC_SLOT_IDLE;
            } else if (verdict == HC_DONE_RETRY && r->attempts < (job->quick ? HC_ABORT_ATTEMPTS : c->cfg.max_attempts)) {
                s->state = HC_SLOT_WAITING;
                s->retry_at_ms = hc_now_ms() + hc_backoff_ms(c, r->attempts);
                if (next_retry < 0 || s->retry_at_ms < next_retry) next_retry = s->retry_at_ms;
            } else {
                *err = s->last_error;
                if (verdict == HC_DONE_RETRY) {
                    size_t n = strlen(err->message);
                    snprintf(err->message + n, sizeof err->message - n, "; gave up after %d attempts", r->attempts);
                }
                result = err->kind;
                s->state = HC_SLOT_IDLE;
                break;
            }
        }
        if (result != HC_S3_OK) break;
        if (finished) continue; /* refill the freed slots at once */

        int timeout = 1000;
        if (next_retry >= 0) {
            long long wait = next_retry - hc_now_ms();
            if (wait < timeout) timeout = wait < 0 ? 0 : (int)wait;
        }
        mrc = curl_multi_poll(c->multi, NULL, 0, timeout, NULL);
        if (mrc != CURLM_OK) {
            hc_err_set(err, HC_S3_ETRANSPORT, "libcurl failed while waiting: %s", curl_multi_strerror(mrc));
            result = HC_S3_ETRANSPORT;
            break;
        }
    }
    for (int i = 0; i < job->nslots; i++) {
        if (job->slots[i].state == HC_SLOT_RUNNING) curl_multi_remove_handle(c->multi, c->easy[i]);
        hc_req_release(&job->slots[i].req);
        job->slots[i].state = HC_SLOT_IDLE;
    }
    return result;
}

/* ---- a job of one request */

typedef struct {
    hc_req *req;
    int handed;
} hc_single;

static int hc_single_next(void *ctx, hc_slot *slot, hc_s3_error *err)
{
    hc_single *one = ctx;
    (void)err;
    if (one->handed) return 0;
    one->handed = 1;
    slot->req = *one->req;
    return 1;
}

static int hc_single_done(void *ctx, hc_slot *slot, hc_s3_error *err)
{
    hc_single *one = ctx;
    (void)err;
    /* Hand the answer back: the caller reads status, headers and body from its own hc_req. */
    one->req->status = slot->req.status;
    one->req->resp = slot->req.resp;
    memset(&slot->req.resp, 0, sizeof slot->req.resp);
    memcpy(one->req->etag, slot->req.etag, sizeof one->req->etag);
    memcpy(one->req->request_id, slot->req.request_id, sizeof one->req->request_id);
    one->req->sunk = slot->req.sunk;
    return 0;
}

/* Sends one request with retries. The answer's body is in r->resp (free with hc_req_release). */
static hc_s3_status hc_perform(hc_s3_client *c, hc_req *r, int quick, hc_s3_error *err)
{
    hc_single one = {r, 0};
    hc_slot slot;
    memset(&slot, 0, sizeof slot);
    hc_job job = {hc_single_next, hc_single_done, &one, &slot, 1, quick};
    return hc_run(c, &job, err);
}

/* ---------------------------------------------------------------- operations */

static int hc_open_source(const char *path, int *fd, long long *size, hc_s3_error *err)
{
    struct stat st;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        hc_err_set(err, HC_S3_EFILE, "cannot upload %s: opening it failed: %s", path, strerror(errno));
        return -1;
    }
    int stat_failed = fstat(*fd, &st) != 0;
    if (stat_failed || !S_ISREG(st.st_mode)) {
        hc_err_set(err, HC_S3_EFILE, "cannot upload %s: %s", path,
                   stat_failed ? strerror(errno) : "it is not a regular file");
        close(*fd);
        *fd = -1;
        return -1;
    }
    *size = (long long)st.st_size;
    return 0;
}

/* Hashes len bytes of fd from offset without holding them all in memory. */
static int hc_sha256_fd(hc_s3_client *c, int fd, long long offset, long long len, char hex[65],
                        const char *path, hc_s3_error *err)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;
    unsigned char *buf = malloc(HC_READ_CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;
    if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while hashing %s", path);
        goto done;
    }
    for (long long pos = 0; pos < len;) {
        if (hc_is_aborted(c)) {
            hc_err_set(err, HC_S3_EABORTED, "interrupted while hashing %s", path);
            goto done;
        }
        size_t want = len - pos < HC_READ_CHUNK ? (size_t)(len - pos) : HC_READ_CHUNK;
        ssize_t got = pread(fd, buf, want, (off_t)(offset + pos));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            hc_err_set(err, HC_S3_EFILE, "cannot upload %s: reading it failed: %s", path,
                       got < 0 ? strerror(errno) : "the file became shorter while it was read");
            goto done;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)got);
        pos += got;
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    rc = 0;
done:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

static hc_s3_status hc_put_single(hc_s3_client *c, int fd, long long size, const char *path, const char *key,
                                  const char *content_type, hc_s3_upload_result *out, hc_s3_error *err)
{
    hc_req r;
    hc_req_init(&r, "PUT", key, "uploading");
    r.body_kind = HC_BODY_FILE;
    r.body_fd = fd;
    r.body_len = size;
    r.file_path = path;
    r.content_type = content_type;
    if (hc_sha256_fd(c, fd, 0, size, r.payload_sha256, path, err) != 0) return err->kind;
    hc_s3_status st = hc_perform(c, &r, 0, err);
    if (st == HC_S3_OK) {
        snprintf(out->etag, sizeof out->etag, "%s", r.etag);
        out->bytes = size;
        out->parts = 1;
    }
    hc_req_release(&r);
    return st;
}

/* ---- multipart */

typedef struct {
    hc_s3_client *c;
    const char *path, *key, *upload_id;
    hc_part_reader *reader;
    long nparts;
    char **etags;              /* [nparts], by part number - 1 */
} hc_parts;

static void hc_wake(void *arg)
{
    curl_multi_wakeup(((hc_s3_client *)arg)->multi);
}

static int hc_parts_next(void *ctx, hc_slot *slot, hc_s3_error *err)
{
    hc_parts *p = ctx;
    hc_part part;
    char why[512];
    switch (hc_part_reader_take(p->reader, &part, why, sizeof why)) {
    case HC_PART_FAILED:
        hc_err_set(err, HC_S3_EFILE, "%s", why);
        return -1;
    case HC_PART_PENDING:
        return 2;
    case HC_PART_ALL_TAKEN:
        return 0;
    default:
        break;
    }
    char what[96];
    snprintf(what, sizeof what, "uploading part %ld of %ld", part.number, p->nparts);
    hc_req_init(&slot->req, "PUT", p->key, what);
    slot->part_number = part.number;
    slot->part_index = part.index;
    slot->req.body_kind = HC_BODY_MEM;
    slot->req.body_mem = part.data;
    slot->req.body_len = part.len;
    slot->req.file_path = p->path;
    memcpy(slot->req.payload_sha256, part.sha256, sizeof slot->req.payload_sha256);
    snprintf(slot->req.part_number, sizeof slot->req.part_number, "%ld", part.number);
    hc_req_query(&slot->req, "partNumber", slot->req.part_number);
    hc_req_query(&slot->req, "uploadId", p->upload_id);
    return 1;
}

static int hc_parts_done(void *ctx, hc_slot *slot, hc_s3_error *err)
{
    hc_parts *p = ctx;
    hc_part_reader_give_back(p->reader, slot->part_index);
    if (!*slot->req.etag) {
        hc_err_set(err, HC_S3_EHTTP, "S3 accepted part %ld of %s but sent no ETag for it", slot->part_number, p->key);
        return -1;
    }
    p->etags[slot->part_number - 1] = strdup(slot->req.etag);
    if (!p->etags[slot->part_number - 1]) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while uploading %s", p->path);
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
        if (hc_str_add(dst, len, piece, 0, 0) != 0) return -1;
    }
    return 0;
}

static char *hc_complete_body(const hc_parts *p, size_t *len)
{
    char *xml = NULL;
    char num[32];
    *len = 0;
    if (hc_str_add(&xml, len, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">", 0, 0))
        return NULL;
    for (long i = 0; i < p->nparts; i++) {
        snprintf(num, sizeof num, "%ld", i + 1);
        if (hc_str_add(&xml, len, "<Part><PartNumber>", 0, 0) || hc_str_add(&xml, len, num, 0, 0) ||
            hc_str_add(&xml, len, "</PartNumber><ETag>", 0, 0) || hc_xml_escape_add(&xml, len, p->etags[i]) ||
            hc_str_add(&xml, len, "</ETag></Part>", 0, 0)) {
            free(xml);
            return NULL;
        }
    }
    if (hc_str_add(&xml, len, "</CompleteMultipartUpload>", 0, 0)) {
        free(xml);
        return NULL;
    }
    return xml;
}

/* AbortMultipartUpload after a failure or an interrupt; says in err's message how it went. */
static void hc_abort_multipart(hc_s3_client *c, const char *key, const char *upload_id, hc_s3_error *err)
{
    hc_req r;
    hc_s3_error abort_err;
    hc_req_init(&r, "DELETE", key, "aborting the multipart upload");
    hc_req_query(&r, "uploadId", upload_id);
    hc_s3_status st = hc_perform(c, &r, 1, &abort_err);
    hc_req_release(&r);
    size_t n = strlen(err->message);
    if (st == HC_S3_OK) {
        snprintf(err->message + n, sizeof err->message - n, "; the multipart upload was aborted, nothing was stored");
    } else {
        snprintf(err->message + n, sizeof err->message - n,
                 "; aborting the multipart upload %s failed too (%s): delete it, or let a bucket lifecycle rule "
                 "for incomplete multipart uploads remove it", upload_id, abort_err.message);
    }
}

static hc_s3_status hc_put_multipart(hc_s3_client *c, int fd, long long size, long part_size, const char *path,
                                     const char *key, const char *content_type, hc_s3_upload_result *out,
                                     hc_s3_error *err)
{
    char upload_id[1024];
    hc_req r;
    hc_s3_status st;
    hc_req_init(&r, "POST", key, "starting a multipart upload");
    hc_req_query(&r, "uploads", "");
    r.content_type = content_type;
    st = hc_perform(c, &r, 0, err);
    if (st == HC_S3_OK) {
        char why[512];
        if (hc_s3_xml_child_text(r.resp.data, r.resp.len, "InitiateMultipartUploadResult", "UploadId", upload_id,
                                 sizeof upload_id, why, sizeof why) != 0 || !*upload_id) {
            char *url = hc_display_url(c, key);
            hc_err_set(err, HC_S3_EHTTP, "S3's answer to starting a multipart upload to %s is unusable: %s",
                       url ? url : key, why);
            free(url);
            st = HC_S3_EHTTP;
        }
    }
    hc_req_release(&r);
    if (st != HC_S3_OK) return st;

    hc_parts p = {c, path, key, upload_id, NULL, 0, NULL};
    p.nparts = (long)((size + part_size - 1) / part_size);
    p.etags = calloc((size_t)p.nparts, sizeof *p.etags);
    int nslots = c->nslots < p.nparts ? c->nslots : (int)p.nparts;
    hc_slot *slots = calloc((size_t)nslots, sizeof *slots);
    char why[512];
    if (!p.etags || !slots) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while uploading %s", path);
        st = HC_S3_ENOMEM;
    } else if (hc_fork_check(c, err) != 0) {
        st = err->kind;
    } else if (!(p.reader = hc_part_reader_start(fd, path, size, part_size, nslots + 1, hc_wake, c, why,
                                                 sizeof why))) {
        hc_err_set(err, HC_S3_ENOMEM, "%s", why);
        st = HC_S3_ENOMEM;
    } else {
        /* One buffer more than parts in flight: the next part is read while the others are sent. */
        hc_job job = {hc_parts_next, hc_parts_done, &p, slots, nslots, 0};
        st = hc_run(c, &job, err);
        hc_part_reader_stop(p.reader);
    }
    free(slots);

    if (st == HC_S3_OK) {
        size_t xlen = 0;
        char *xml = hc_complete_body(&p, &xlen);
        if (!xml) {
            hc_err_set(err, HC_S3_ENOMEM, "out of memory while completing the upload of %s", path);
            st = HC_S3_ENOMEM;
        } else {
            hc_req_init(&r, "POST", key, "completing the multipart upload");
            hc_req_query(&r, "uploadId", upload_id);
            r.body_kind = HC_BODY_MEM;
            r.body_mem = (const unsigned char *)xml;
            r.body_len = (long long)xlen;
            r.content_type = "application/xml";
            r.error_in_200 = 1;
            hc_sha256_hex(xml, xlen, r.payload_sha256);
            st = hc_perform(c, &r, 0, err);
            if (st == HC_S3_OK) {
                char why[512];
                if (hc_s3_xml_child_text(r.resp.data, r.resp.len, "CompleteMultipartUploadResult", "ETag",
                                         out->etag, sizeof out->etag, why, sizeof why) != 0) {
                    snprintf(out->etag, sizeof out->etag, "%s", r.etag);
                }
                out->bytes = size;
                out->parts = (int)p.nparts;
            }
            hc_req_release(&r);
            free(xml);
        }
    }
    if (p.etags) {
        for (long i = 0; i < p.nparts; i++) free(p.etags[i]);
        free(p.etags);
    }
    if (st != HC_S3_OK) hc_abort_multipart(c, key, upload_id, err);
    return st;
}

hc_s3_status hc_s3_upload(hc_s3_client *c, const char *path, const char *key, const char *content_type,
                          hc_s3_upload_result *out, hc_s3_error *err)
{
    int fd;
    long long size;
    hc_err_clear(err);
    memset(out, 0, sizeof *out);
    if (hc_empty(key)) {
        hc_err_set(err, HC_S3_EARG, "cannot upload %s: the object key is empty", path);
        return HC_S3_EARG;
    }
    if (hc_open_source(path, &fd, &size, err) != 0) return err->kind;
    if (!content_type) content_type = "application/octet-stream";
    long part_size = hc_s3_part_size_for(c->cfg.part_size, size);
    hc_s3_status st = size <= part_size
                          ? hc_put_single(c, fd, size, path, key, content_type, out, err)
                          : hc_put_multipart(c, fd, size, part_size, path, key, content_type, out, err);
    close(fd);
    return st;
}

hc_s3_status hc_s3_download(hc_s3_client *c, const char *key, const char *path, long long *bytes,
                            hc_s3_error *err)
{
    hc_err_clear(err);
    *bytes = 0;
    if (hc_empty(key)) {
        hc_err_set(err, HC_S3_EARG, "cannot download: the object key is empty");
        return HC_S3_EARG;
    }
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while downloading %s", key);
        return HC_S3_ENOMEM;
    }
    snprintf(tmp, n, "%s.heapcapture-XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        hc_err_set(err, HC_S3_EFILE, "cannot download %s to %s: creating a file there failed: %s", key, path,
                   strerror(errno));
        free(tmp);
        return HC_S3_EFILE;
    }
    hc_req r;
    hc_req_init(&r, "GET", key, "downloading");
    r.sink_fd = fd;
    r.file_path = tmp;
    hc_s3_status st = hc_perform(c, &r, 0, err);
    hc_req_release(&r);
    if (st == HC_S3_OK && close(fd) != 0) {
        hc_err_set(err, HC_S3_EFILE, "cannot download %s: writing %s failed: %s", key, tmp, strerror(errno));
        st = HC_S3_EFILE;
    } else if (st != HC_S3_OK) {
        close(fd);
    }
    if (st == HC_S3_OK && rename(tmp, path) != 0) {
        hc_err_set(err, HC_S3_EFILE, "cannot download %s: renaming %s to %s failed: %s", key, tmp, path,
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
    hc_err_clear(err);
    *objects = NULL;
    *count = 0;
    for (int pages = 0;; pages++) {
        hc_req r;
        hc_req_init(&r, "GET", NULL, "listing objects");
        r.resp_max = HC_LIST_BODY_MAX;
        hc_req_query(&r, "list-type", "2");
        hc_req_query(&r, "prefix", prefix ? prefix : "");
        if (token) hc_req_query(&r, "continuation-token", token);
        st = hc_perform(c, &r, 0, err);
        if (st == HC_S3_OK) {
            char why[512];
            if (r.resp.len >= HC_LIST_BODY_MAX - 1) {
                hc_err_set(err, HC_S3_EHTTP, "S3's listing page from %s is larger than 32 MiB", c->base_url);
                st = HC_S3_EHTTP;
            } else if (hc_s3_xml_parse_list(r.resp.data, r.resp.len, &page, why, sizeof why) != 0) {
                hc_err_set(err, HC_S3_EHTTP, "listing %s: %s", c->base_url, why);
                st = HC_S3_EHTTP;
            }
        }
        hc_req_release(&r);
        free(token);
        token = NULL;
        if (st != HC_S3_OK || !page.is_truncated) break;
        if (pages > 100000) {
            hc_err_set(err, HC_S3_EHTTP, "listing %s: S3 kept sending pages (100,000 so far)", c->base_url);
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
            hc_err_set(err, HC_S3_ENOMEM, "out of memory while listing %s", c->base_url);
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
    hc_err_clear(err);
    if (hc_empty(key)) {
        hc_err_set(err, HC_S3_EARG, "cannot delete: the object key is empty");
        return HC_S3_EARG;
    }
    hc_req r;
    hc_req_init(&r, "DELETE", key, "deleting");
    hc_s3_status st = hc_perform(c, &r, 0, err);
    hc_req_release(&r);
    return st;
}

char *hc_s3_presigned_url(hc_s3_client *c, const char *key, long expires_in, long long now_utc, hc_s3_error *err)
{
    hc_err_clear(err);
    if (hc_empty(key)) {
        hc_err_set(err, HC_S3_EARG, "cannot presign: the object key is empty");
        return NULL;
    }
    hc_req r;
    hc_req_init(&r, "GET", key, "presigning");
    char *path = hc_req_path(c, &r);
    if (!path) {
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while presigning %s", key);
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
        hc_err_set(err, HC_S3_EARG, "cannot presign %s: %s", key, why);
        free(path);
        return NULL;
    }
    char *url = NULL;
    size_t len = 0;
    int failed = hc_str_add(&url, &len, c->scheme, 0, 0) || hc_str_add(&url, &len, "://", 0, 0) ||
                 hc_str_add(&url, &len, c->host, 0, 0) || hc_str_add(&url, &len, path, 1, 1) ||
                 hc_str_add(&url, &len, "?", 0, 0) || hc_str_add(&url, &len, res.query_string, 0, 0);
    hc_sigv4_result_free(&res);
    free(path);
    if (failed) {
        free(url);
        hc_err_set(err, HC_S3_ENOMEM, "out of memory while presigning %s", key);
        return NULL;
    }
    return url;
}
