/* The S3 client's transfers: one request (signing, curl options, callbacks, judging the answer)
 * and the scheduler that runs requests in parallel slots on one curl multi handle, retrying what
 * is transient with backoff and jitter. See s3_transfer.h. */
#include "s3_transfer.h"
#include "s3_xml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define HC_UPLOAD_BUFFER (256 * 1024)         /* curl's send buffer: fewer, larger writes */
#define HC_SIGNED_MAX 3                       /* headers a request signs besides host, date and token */

/* ---------------------------------------------------------------- small helpers */

void hc_s3_err_set(hc_s3_error *err, hc_s3_status kind, const char *fmt, ...)
{
    va_list ap;
    err->kind = kind;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void hc_s3_err_clear(hc_s3_error *err)
{
    memset(err, 0, sizeof *err);
}

int hc_s3_is_aborted(hc_s3_client *c)
{
    return __atomic_load_n(&c->aborted, __ATOMIC_SEQ_CST) != 0;
}

/* How many interrupts (hc_s3_client_abort calls) since the last reset. */
static int hc_s3_interrupts(hc_s3_client *c)
{
    return __atomic_load_n(&c->aborted, __ATOMIC_SEQ_CST);
}

/* The multi handle and one easy handle per slot, owned by this process. */
int hc_s3_curl_handles(hc_s3_client *c)
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

/* After fork, the child must not use the parent's connections (their sockets and TLS sessions are
 * shared with the parent): it drops them without closing them and starts afresh. */
int hc_s3_fork_check(hc_s3_client *c, hc_s3_error *err)
{
    if (c->pid == getpid()) return 0;
    free(c->easy); /* the handles themselves are the parent's: left alone on purpose */
    c->easy = NULL;
    c->multi = NULL;
    if (hc_s3_curl_handles(c) != 0) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while setting up the S3 client after fork");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- one request */

static int hc_buf_append(hc_s3_buf *b, const char *data, size_t len)
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

void hc_s3_req_init(hc_s3_req *r, const char *method, const char *key, const char *what, const char *place)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->key = key;
    r->sink_fd = -1;
    r->body_fd = -1;
    r->resp_max = HC_ERROR_BODY_MAX;
    hc_sha256_hex("", 0, r->payload_sha256);
    snprintf(r->what, sizeof r->what, "%s", what);
    r->place = place;
}

void hc_s3_req_query(hc_s3_req *r, const char *name, const char *value)
{
    r->qname[r->nquery] = name;
    r->qvalue[r->nquery] = value;
    r->nquery++;
}

void hc_s3_req_release(hc_s3_req *r)
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
    hc_s3_req *r = userdata;
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
    hc_s3_req *r = userdata;
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
    hc_s3_req *r = userdata;
    if (origin != SEEK_SET || offset < 0 || offset > r->body_len) return CURL_SEEKFUNC_CANTSEEK;
    r->body_pos = offset;
    return CURL_SEEKFUNC_OK;
}

static size_t hc_write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    hc_s3_req *r = userdata;
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
    hc_s3_req *r = userdata;
    size_t len = size * nitems;
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the previous one's headers. */
        r->etag[0] = r->request_id[0] = r->sse_answer[0] = '\0';
        const char *sp = memchr(line, ' ', len);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    if (!hc_header_value(line, len, "etag", r->etag, sizeof r->etag) &&
        !hc_header_value(line, len, "x-amz-request-id", r->request_id, sizeof r->request_id))
        hc_header_value(line, len, "x-amz-server-side-encryption", r->sse_answer, sizeof r->sse_answer);
    return len;
}

/* Appends s to the growing string *dst (length *len), percent-encoded when encode is set. */
int hc_s3_str_add(char **dst, size_t *len, const char *s, int encode, int keep_slash)
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
char *hc_s3_req_path(hc_s3_client *c, const hc_s3_req *r)
{
    size_t n = strlen(c->bucket_path) + (r->key ? strlen(r->key) : 0) + 2;
    char *path = malloc(n);
    if (!path) return NULL;
    if (r->key) snprintf(path, n, "%s/%s", c->bucket_path, r->key);
    else snprintf(path, n, "%s", *c->bucket_path ? c->bucket_path : "/");
    return path;
}

/* The object's URL without query, for messages. Malloc'd; NULL when out of memory. */
char *hc_s3_display_url(hc_s3_client *c, const char *key)
{
    char *url = NULL;
    size_t len = 0;
    if (hc_s3_str_add(&url, &len, c->base_url, 0, 0) != 0) return NULL;
    if (key && (hc_s3_str_add(&url, &len, "/", 0, 0) != 0 || hc_s3_str_add(&url, &len, key, 0, 0) != 0)) {
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

/* Forgets what the previous attempt left (answer, headers, progress, a partial download). */
static int hc_req_reset(hc_s3_client *c, hc_s3_req *r, int quick, hc_s3_error *err)
{
    hc_s3_req_release(r);
    r->status = 0;
    r->resp.max = r->resp_max;
    r->etag[0] = r->request_id[0] = r->sse_answer[0] = r->curl_err[0] = '\0';
    r->local_errno = 0;
    r->stalled = 0;
    r->last_moved_ms = 0;
    r->last_dlnow = r->last_ulnow = 0;
    r->stall_ms = (quick && c->cfg.low_speed_time_s > 10 ? 10L : c->cfg.low_speed_time_s) * 1000L;
    r->body_pos = 0;
    r->sunk = 0;
    if (r->sink_fd >= 0 && (ftruncate(r->sink_fd, 0) != 0 || lseek(r->sink_fd, 0, SEEK_SET) < 0)) {
        hc_s3_err_set(err, HC_S3_EFILE, "%s: cannot rewind the download file %s: %s", r->what,
                   r->file_path ? r->file_path : "", strerror(errno));
        return -1;
    }
    return 0;
}

/* r->url: scheme://host + path encoded once + query encoded (order does not matter on the wire).
 * Returns nonzero when out of memory. */
static int hc_req_build_url(hc_s3_client *c, hc_s3_req *r, const char *path)
{
    size_t ulen = 0;
    int failed = hc_s3_str_add(&r->url, &ulen, c->scheme, 0, 0) || hc_s3_str_add(&r->url, &ulen, "://", 0, 0) ||
                 hc_s3_str_add(&r->url, &ulen, c->host, 0, 0) || hc_s3_str_add(&r->url, &ulen, path, 1, 1);
    for (size_t i = 0; !failed && i < r->nquery; i++) {
        failed = hc_s3_str_add(&r->url, &ulen, i ? "&" : "?", 0, 0) || hc_s3_str_add(&r->url, &ulen, r->qname[i], 1, 0);
        if (!failed && r->qvalue[i]) {
            failed = hc_s3_str_add(&r->url, &ulen, "=", 0, 0) || hc_s3_str_add(&r->url, &ulen, r->qvalue[i], 1, 0);
        }
    }
    return failed;
}

/* The headers signed besides host, x-amz-date and x-amz-security-token (which sigv4.c adds): the
 * payload's hash and, on PutObject and CreateMultipartUpload, the server-side encryption asked
 * for. Every x-amz-* header sent must be signed (AWS refuses the request otherwise, and unsigned,
 * it could be changed on the way): these are sent exactly as signed. Returns how many (at most
 * HC_SIGNED_MAX). */
static size_t hc_req_signed_headers(const hc_s3_client *c, const hc_s3_req *r, hc_kv out[HC_SIGNED_MAX])
{
    size_t n = 0;
    out[n++] = (hc_kv){"x-amz-content-sha256", r->payload_sha256};
    if (r->sse && c->sse) {
        out[n++] = (hc_kv){"x-amz-server-side-encryption", c->sse};
        if (c->sse_kms_key_id) out[n++] = (hc_kv){"x-amz-server-side-encryption-aws-kms-key-id", c->sse_kms_key_id};
    }
    return n;
}

/* r->headers: the signed ones, then what S3 reads besides. Returns nonzero when out of memory. */
static int hc_req_build_headers(hc_s3_client *c, hc_s3_req *r, const hc_sigv4_result *signed_req,
                                const hc_kv *signed_headers, size_t nsigned)
{
    int failed = 0;
    struct curl_slist *h = NULL;
    h = hc_header_add(h, &failed, "Host", c->host);
    h = hc_header_add(h, &failed, "x-amz-date", signed_req->amz_date);
    for (size_t i = 0; i < nsigned; i++) h = hc_header_add(h, &failed, signed_headers[i].name, signed_headers[i].value);
    if (c->session_token) h = hc_header_add(h, &failed, "x-amz-security-token", c->session_token);
    h = hc_header_add(h, &failed, "Authorization", signed_req->authorization);
    if (r->content_type) h = hc_header_add(h, &failed, "Content-Type", r->content_type);
    /* S3 checks the body against it (BadDigest); buckets with Object Lock require it */
    if (r->content_md5[0]) h = hc_header_add(h, &failed, "Content-MD5", r->content_md5);
    if (!failed) {
        /* No 100-continue round trip; an empty value removes curl's own header. */
        struct curl_slist *next = curl_slist_append(h, "Expect:");
        if (next) h = next; else failed = 1;
    }
    r->headers = h;
    return failed;
}

/* Signs the request as of now; fills r->url and r->headers. Returns 0, or -1 with err set. */
static int hc_req_sign(hc_s3_client *c, hc_s3_req *r, hc_s3_error *err)
{
    char *path = hc_s3_req_path(c, r);
    if (!path) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory while %s", r->what);
        return -1;
    }
    hc_kv query[3];
    for (size_t i = 0; i < r->nquery; i++) {
        query[i].name = r->qname[i];
        query[i].value = r->qvalue[i];
    }
    hc_kv signed_headers[HC_SIGNED_MAX];
    size_t nsigned = hc_req_signed_headers(c, r, signed_headers);
    hc_sigv4_request sreq = {
        .method = r->method, .host = c->host, .path = path,
        .query = query, .nquery = r->nquery, .headers = signed_headers, .nheaders = nsigned,
        .payload_sha256 = r->payload_sha256, .region = c->region, .service = "s3",
        .access_key_id = c->access_key_id, .secret_access_key = c->secret_access_key,
        .session_token = c->session_token, .time = time(NULL),
    };
    hc_sigv4_result signed_req;
    char sigerr[256];
    if (hc_sigv4_sign(&sreq, &signed_req, sigerr, sizeof sigerr) != 0) {
        hc_s3_err_set(err, HC_S3_EARG, "cannot sign the request while %s: %s", r->what, sigerr);
        free(path);
        return -1;
    }
    int failed = hc_req_build_url(c, r, path);
    free(path);
    if (!failed) failed = hc_req_build_headers(c, r, &signed_req, signed_headers, nsigned);
    hc_sigv4_result_free(&signed_req);
    if (failed) {
        hc_s3_err_set(err, HC_S3_ENOMEM, "out of memory (or a header over 4 KiB) while %s", r->what);
        return -1;
    }
    return 0;
}

/* Every curl option of one attempt: where, how long, the callbacks, the method and its body. */
static void hc_req_set_options(hc_s3_client *c, hc_s3_req *r, CURL *easy, int quick)
{
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
    curl_easy_setopt(easy, CURLOPT_USERAGENT, c->user_agent);
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
}

/* One attempt, ready to run on easy: reset, signed as of now, every option set. Returns 0, or -1
 * with err set. */
static int hc_req_prepare(hc_s3_client *c, hc_s3_req *r, CURL *easy, int quick, hc_s3_error *err)
{
    if (hc_req_reset(c, r, quick, err) != 0 || hc_req_sign(c, r, err) != 0) return -1;
    hc_req_set_options(c, r, easy, quick);
    return 0;
}

static int hc_retryable_code(const char *code)
{
    /* BadDigest, XAmzContentSHA256Mismatch: the body S3 got is not the one hashed, changed on the
     * way (the part is stored only once it arrives whole) */
    static const char *codes[] = {"SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "InternalError",
                                  "ServiceUnavailable", "Throttling", "ThrottlingException", "BadDigest",
                                  "XAmzContentSHA256Mismatch", NULL};
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

/* A refusal of a request that asked for server-side encryption names the headers it carried: a
 * gateway without that encryption, or unable to use the key, may answer in words that name
 * neither (400 InvalidArgument, 403 AccessDenied for the KMS key, 500, 501 NotImplemented). */
static void hc_sse_note(const hc_s3_client *c, const hc_s3_req *r, hc_s3_error *err)
{
    long st = err->http_status;
    if (!r->sse || !c->sse || !(st == 400 || st == 403 || st == 500 || st == 501) ||
        strcmp(err->code, "SignatureDoesNotMatch") == 0)
        return;
    size_t n = strlen(err->message);
    snprintf(err->message + n, sizeof err->message - n,
             "; the request asked for server-side encryption (x-amz-server-side-encryption: %s%s%s), which S3 "
             "refuses where it is not supported or the key cannot be used (settings sse, sse_kms_key_id)", c->sse,
             c->sse_kms_key_id ? ", x-amz-server-side-encryption-aws-kms-key-id: " : "",
             c->sse_kms_key_id ? c->sse_kms_key_id : "");
}

/* "HTTP 503 SlowDown: Please reduce your request rate." from an answer (xe: its <Error>, or NULL),
 * with at most max_message bytes of S3's message. */
static void hc_answer_text(char *buf, size_t len, long status, const hc_s3_xml_error *xe, int max_message)
{
    snprintf(buf, len, "HTTP %ld %s%s%.*s%s", status, xe && *xe->code ? xe->code : "without an S3 error code",
             xe && *xe->message ? ": " : "", max_message, xe ? xe->message : "",
             status / 100 == 2 ? " (an error inside a success answer)" : "");
}

/* Judges a finished attempt. On RETRY and FAIL, err says why (the message for the final failure). */
static int hc_req_judge(hc_s3_client *c, hc_s3_req *r, CURL *easy, CURLcode rc, hc_s3_error *err)
{
    char *url = hc_s3_display_url(c, r->key);
    const char *where = url ? url : c->base_url;
    int verdict;
    hc_s3_err_clear(err);
    if (rc != CURLE_OK) {
        if (r->local_errno) {
            hc_s3_err_set(err, HC_S3_EFILE, "%s: %s the local file %s failed: %s", r->what,
                       r->sink_fd >= 0 ? "writing" : "reading", r->file_path ? r->file_path : "(memory)",
                       strerror(r->local_errno));
            verdict = HC_DONE_FAIL;
        } else if (r->stalled) {
            hc_s3_err_set(err, HC_S3_ETRANSPORT, "the transfer stalled (no byte moved for %ld s) while %s %s%s%s",
                       r->stall_ms / 1000, r->what, r->place, *r->place ? " " : "", where);
            verdict = HC_DONE_RETRY;
        } else {
            long os_errno = 0;
            curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
            const char *detail = *r->curl_err ? r->curl_err : curl_easy_strerror(rc);
            hc_s3_err_set(err, HC_S3_ETRANSPORT, "%s%s%s%s while %s %s%s%s", detail, os_errno ? " (" : "",
                       os_errno ? strerror((int)os_errno) : "", os_errno ? ")" : "", r->what, r->place,
                       *r->place ? " " : "", where);
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
            char answer[640]; /* the longest: "HTTP <status> <code>: <message> (an error inside ...)" */
            hc_answer_text(answer, sizeof answer, status, has_error ? &xe : NULL, (int)sizeof xe.message);
            snprintf(err->message, sizeof err->message, "S3 answered %s while %s %s%s%s%s", answer, r->what, r->place,
                     *r->place ? " " : "", where, reqid);
            hc_sse_note(c, r, err);
            /* Kept for the final message, should the attempts after this one get no answer. */
            hc_answer_text(r->last_answer, sizeof r->last_answer, status, has_error ? &xe : NULL, 200);
            size_t n = strlen(r->last_answer);
            snprintf(r->last_answer + n, sizeof r->last_answer - n, "%s", reqid);
            r->last_answer_attempt = r->attempts;
            verdict = status >= 500 || status == 429 || (status / 100 == 2) || hc_retryable_code(err->code)
                          ? HC_DONE_RETRY : HC_DONE_FAIL;
        }
    }
    free(url);
    return verdict;
}

/* ---------------------------------------------------------------- the scheduler */

static long long hc_backoff_ms(hc_s3_client *c, int attempts)
{
    long long base = c->cfg.retry_base_ms;
    int shift = attempts - 1 < 6 ? attempts - 1 : 6;
    long long cap = base << shift;
    /* Half fixed, half random: spreads retries without ever retrying at once. */
    return cap / 2 + (long long)(rand_r(&c->seed) % (unsigned int)(cap / 2 + 1));
}

/* The final failure after retries: err says what the last attempt met; when that was no answer
 * at all (a stall, a reset) after S3 had answered an earlier attempt, it adds that answer too. */
static void hc_gave_up_message(const hc_s3_req *r, hc_s3_error *err)
{
    size_t n = strlen(err->message);
    snprintf(err->message + n, sizeof err->message - n, "; gave up after %d attempt%s", r->attempts,
             r->attempts == 1 ? "" : "s");
    if (err->kind != HC_S3_EHTTP && *r->last_answer) {
        n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, "; before that, S3's last answer (to attempt %d) was %s",
                 r->last_answer_attempt, r->last_answer);
    }
}

/* A quick job (a clean-up request) is not stopped by the interrupt that led to it or came while it
 * runs: it exists so that no upload is left open. But it gets HC_QUICK_INTERRUPTED_MS from that
 * interrupt, and a further interrupt ends it at once. seen/since: the interrupt count and time
 * that started the countdown (since < 0: none yet). 1 with err set when the job must end now. */
static int hc_quick_cut_short(hc_s3_client *c, int *seen, long long *since, hc_s3_error *err)
{
    int count = hc_s3_interrupts(c);
    long long now = hc_now_ms();
    if (*since < 0 && count == *seen + 1) { /* the first one while it runs: start counting */
        *seen = count;
        *since = now;
        return 0;
    }
    if (count != *seen) {
        hc_s3_err_set(err, HC_S3_EABORTED, "interrupted a second time before S3 answered");
        return 1;
    }
    if (*since >= 0 && now - *since >= HC_QUICK_INTERRUPTED_MS) {
        hc_s3_err_set(err, HC_S3_EABORTED, "interrupted, and S3 had not answered %d s later",
                      HC_QUICK_INTERRUPTED_MS / 1000);
        return 1;
    }
    return 0;
}

static int hc_slot_start(hc_s3_client *c, hc_s3_job *job, int i, hc_s3_error *err)
{
    hc_s3_slot *s = &job->slots[i];
    s->req.attempts++;
    if (hc_req_prepare(c, &s->req, c->easy[i], job->quick, err) != 0) return -1;
    CURLMcode mrc = curl_multi_add_handle(c->multi, c->easy[i]);
    if (mrc != CURLM_OK) {
        hc_s3_err_set(err, HC_S3_ETRANSPORT, "libcurl refused the request while %s: %s", s->req.what,
                   curl_multi_strerror(mrc));
        return -1;
    }
    s->state = HC_SLOT_RUNNING;
    return 0;
}

static int hc_slot_index(hc_s3_job *job, hc_s3_req *r)
{
    for (int i = 0; i < job->nslots; i++) {
        if (&job->slots[i].req == r) return i;
    }
    return -1;
}

/* Whether the request on this easy handle went out (in part or whole): S3 may have acted on it. */
static int hc_sent(CURL *easy)
{
    long sent = 0;
    return curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent > 0;
}

static int hc_job_running(const hc_s3_job *job)
{
    for (int i = 0; i < job->nslots; i++) {
        if (job->slots[i].state == HC_SLOT_RUNNING) return 1;
    }
    return 0;
}

/* Once a job stops (an interrupt, or a request that failed for good), no request or retry starts,
 * but a request whose whole body has gone out may still be acted on by S3: dropped now, S3 could
 * store a part after the upload is aborted, where nothing lists it. So those get job->settle_ms to
 * be answered; one whose body has not all gone out is dropped at once (S3 never keeps a short
 * body). A further interrupt ends the wait at once. */
typedef struct {
    int on;                /* stopped, waiting for what is in flight */
    long long since;       /* when it stopped */
    int cut_at;            /* this many interrupts end the wait at once */
    hc_s3_status failed;   /* the failure that stopped the job (err holds it), or HC_S3_OK: an interrupt */
} hc_settle;

static void hc_settle_begin(hc_s3_client *c, hc_settle *st, hc_s3_status failed)
{
    if (st->on) return;
    st->on = 1;
    st->since = hc_now_ms();
    st->failed = failed;
    /* stopped by an interrupt: the next one cuts the wait; by a failure: the second one does */
    st->cut_at = hc_s3_interrupts(c) + (failed == HC_S3_OK ? 1 : 2);
}

/* Whether curl still holds body bytes of slot i's request that never went out. */
static int hc_body_unsent(hc_s3_client *c, hc_s3_job *job, int i)
{
    const hc_s3_req *r = &job->slots[i].req;
    curl_off_t sent = 0;
    if (r->body_kind == HC_BODY_NONE || r->body_len <= 0) return 0;
    if (curl_easy_getinfo(c->easy[i], CURLINFO_SIZE_UPLOAD_T, &sent) != CURLE_OK) return 0;
    return sent < (curl_off_t)r->body_len;
}

/* While settling: drops the requests S3 cannot act on, and every waiting retry. */
static void hc_settle_drop(hc_s3_client *c, hc_s3_job *job)
{
    for (int i = 0; i < job->nslots; i++) {
        hc_s3_slot *s = &job->slots[i];
        if (s->state == HC_SLOT_WAITING) {
            s->state = HC_SLOT_IDLE;
        } else if (s->state == HC_SLOT_RUNNING && hc_body_unsent(c, job, i)) {
            curl_multi_remove_handle(c->multi, c->easy[i]);
            hc_s3_req_release(&s->req);
            s->state = HC_SLOT_IDLE;
        }
    }
}

/* Whether the settling wait is over: nothing in flight, its time is up, or a further interrupt. */
static int hc_settle_over(hc_s3_client *c, hc_s3_job *job, const hc_settle *st)
{
    return !hc_job_running(job) || hc_now_ms() - st->since >= job->settle_ms || hc_s3_interrupts(c) >= st->cut_at;
}

/* One run of a job: what the steps below share. */
typedef struct {
    hc_s3_client *c;
    hc_s3_job *job;
    hc_s3_error *err;
    hc_settle settle;
    int exhausted;          /* job->next has nothing more to hand out */
    long long aborted_at;   /* quick jobs: when the interrupt came, or -1 */
    int interrupts;         /* quick jobs: the interrupts seen so far */
    long long next_retry;   /* the earliest retry waiting, or -1 */
    hc_s3_error scratch;    /* done()'s error once stopped: the first failure stays in err */
} hc_run;

/* Gives each idle slot the job's next request and starts the retries that are due. Returns
 * whether any slot is busy. Leaves the slots alone once the job has stopped. */
static int hc_run_fill(hc_run *run)
{
    hc_s3_job *job = run->job;
    long long now = hc_now_ms();
    int busy = 0;
    run->next_retry = -1;
    for (int i = 0; i < job->nslots && !run->settle.on; i++) {
        hc_s3_slot *s = &job->slots[i];
        hc_s3_status failed = HC_S3_OK;
        if (s->state == HC_SLOT_IDLE && !run->exhausted) {
            int got = job->next(job->ctx, s, run->err);
            if (got < 0) failed = run->err->kind ? run->err->kind : HC_S3_EARG;
            else if (got == 0) run->exhausted = 1;
            else if (got == 1 && hc_slot_start(run->c, job, i, run->err) != 0) failed = run->err->kind;
        } else if (s->state == HC_SLOT_WAITING) {
            if (s->retry_at_ms <= now) {
                if (hc_slot_start(run->c, job, i, run->err) != 0) failed = run->err->kind;
            } else if (run->next_retry < 0 || s->retry_at_ms < run->next_retry) {
                run->next_retry = s->retry_at_ms;
            }
        }
        if (failed != HC_S3_OK) hc_settle_begin(run->c, &run->settle, failed);
        if (s->state != HC_SLOT_IDLE) busy = 1;
    }
    return busy;
}

/* One answer (or transport failure): done, retried later, or the failure that stops the job. */
static void hc_run_answer(hc_run *run, CURL *easy, CURLcode rc)
{
    hc_s3_client *c = run->c;
    hc_s3_job *job = run->job;
    hc_s3_req *r = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
    curl_multi_remove_handle(c->multi, easy);
    int i = hc_slot_index(job, r);
    if (i < 0) return;
    hc_s3_slot *s = &job->slots[i];
    int verdict = hc_req_judge(c, r, easy, rc, &s->last_error);
    if (rc != CURLE_OK && !r->local_errno && hc_sent(easy)) job->unanswered = 1;
    if (verdict == HC_DONE_OK) {
        /* once stopped, done() still takes what succeeded (a part's ETag, an upload id),
         * but its failure no longer replaces the one that stopped the job */
        if (job->done(job->ctx, s, run->settle.on ? &run->scratch : run->err) != 0 && !run->settle.on)
            hc_settle_begin(c, &run->settle, run->err->kind ? run->err->kind : HC_S3_EHTTP);
        hc_s3_req_release(r);
        s->state = HC_SLOT_IDLE;
    } else if (run->settle.on) {
        s->state = HC_SLOT_IDLE; /* the job has stopped: no retry */
    } else if (verdict == HC_DONE_RETRY && r->attempts < (job->quick ? HC_ABORT_ATTEMPTS : c->cfg.max_attempts)) {
        s->state = HC_SLOT_WAITING;
        s->retry_at_ms = hc_now_ms() + hc_backoff_ms(c, r->attempts);
        if (run->next_retry < 0 || s->retry_at_ms < run->next_retry) run->next_retry = s->retry_at_ms;
    } else {
        *run->err = s->last_error;
        if (verdict == HC_DONE_RETRY) hc_gave_up_message(r, run->err);
        s->state = HC_SLOT_IDLE;
        hc_settle_begin(c, &run->settle, run->err->kind);
    }
}

/* Takes every finished request's answer. Returns how many there were. */
static int hc_run_collect(hc_run *run)
{
    CURLMsg *msg;
    int left, finished = 0;
    while ((msg = curl_multi_info_read(run->c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        finished++;
        hc_run_answer(run, msg->easy_handle, msg->data.result);
    }
    return finished;
}

/* How long to wait for the network: until the next retry is due, the settling wait or a quick
 * job's grace after an interrupt ends, at most 1 s; while settling, short polls so that a further
 * interrupt is seen soon. */
static int hc_run_poll_ms(const hc_run *run)
{
    int timeout = 1000;
    if (run->next_retry >= 0 && !run->settle.on) {
        long long wait = run->next_retry - hc_now_ms();
        if (wait < timeout) timeout = wait < 0 ? 0 : (int)wait;
    }
    if (run->settle.on || (run->job->quick && run->aborted_at >= 0)) {
        long long from = run->settle.on ? run->settle.since : run->aborted_at;
        long long wait = from + (run->settle.on ? run->job->settle_ms : HC_QUICK_INTERRUPTED_MS) - hc_now_ms();
        if (wait < timeout) timeout = wait < 0 ? 0 : (int)wait;
    }
    if (run->settle.on && timeout > HC_SETTLE_POLL_MS) timeout = HC_SETTLE_POLL_MS;
    return timeout;
}

/* A libcurl failure of the multi handle ends the run; it is the result unless a failure of the
 * job's own stopped it first (err holds that one). */
static hc_s3_status hc_run_multi_failed(hc_run *run, const char *doing, CURLMcode mrc)
{
    if (run->settle.on && run->settle.failed != HC_S3_OK) return HC_S3_OK;
    hc_s3_err_set(run->err, HC_S3_ETRANSPORT, "libcurl failed%s: %s", doing, curl_multi_strerror(mrc));
    return HC_S3_ETRANSPORT;
}

/* The end of every run: whatever still runs is taken out of the multi handle (counted as
 * unanswered or unsettled), every slot released. */
static void hc_run_release(hc_run *run)
{
    hc_s3_job *job = run->job;
    for (int i = 0; i < job->nslots; i++) {
        if (job->slots[i].state == HC_SLOT_RUNNING) {
            if (hc_sent(run->c->easy[i])) job->unanswered = 1; /* dropped after it went out */
            if (!hc_body_unsent(run->c, job, i)) job->unsettled++;
            curl_multi_remove_handle(run->c->multi, run->c->easy[i]);
        }
        hc_s3_req_release(&job->slots[i].req);
        job->slots[i].state = HC_SLOT_IDLE;
    }
}

/* Runs the job to the end. Returns HC_S3_OK, or the failure with err set. Every easy handle is
 * out of the multi handle when it returns; job->unsettled counts the requests dropped after
 * their body had gone out (S3 may yet act on them). Each turn: see interrupts, fill the slots,
 * stop when done or settled, let curl work, take the answers, wait for the network. */
hc_s3_status hc_s3_run(hc_s3_client *c, hc_s3_job *job, hc_s3_error *err)
{
    hc_run run = {.c = c, .job = job, .err = err, .settle = {0, 0, 0, HC_S3_OK}, .aborted_at = -1,
                  .interrupts = hc_s3_interrupts(c), .next_retry = -1};
    hc_s3_status result = HC_S3_OK;
    hc_s3_err_clear(err);
    job->unanswered = 0;
    job->unsettled = 0;
    if (hc_s3_fork_check(c, err) != 0) return err->kind;
    if (job->quick && run.interrupts) run.aborted_at = hc_now_ms(); /* already interrupted: the countdown runs */
    for (;;) {
        if (job->quick) {
            if (hc_quick_cut_short(c, &run.interrupts, &run.aborted_at, err)) {
                result = HC_S3_EABORTED;
                break;
            }
        } else if (hc_s3_is_aborted(c)) {
            hc_settle_begin(c, &run.settle, HC_S3_OK);
        }
        int busy = hc_run_fill(&run);
        if (run.settle.on) { /* stopped now or before: the slots above were left alone */
            hc_settle_drop(c, job);
            if (hc_settle_over(c, job, &run.settle)) break;
        } else if (!busy && run.exhausted) {
            break;
        }

        int running = 0;
        CURLMcode mrc = curl_multi_perform(c->multi, &running);
        if (mrc != CURLM_OK) {
            result = hc_run_multi_failed(&run, "", mrc);
            break;
        }
        if (hc_run_collect(&run)) continue; /* refill the freed slots at once, or see whether the wait is over */

        mrc = curl_multi_poll(c->multi, NULL, 0, hc_run_poll_ms(&run), NULL);
        if (mrc != CURLM_OK) {
            result = hc_run_multi_failed(&run, " while waiting", mrc);
            break;
        }
    }
    if (result == HC_S3_OK && run.settle.on) {
        if (run.settle.failed != HC_S3_OK) {
            result = run.settle.failed; /* err still holds its reason */
        } else {
            hc_s3_err_set(err, HC_S3_EABORTED, "interrupted");
            result = HC_S3_EABORTED;
        }
    }
    hc_run_release(&run);
    return result;
}

/* ---- a job of one request */

typedef struct {
    hc_s3_req *req;
    int handed;
    int answered;
} hc_single;

static int hc_single_next(void *ctx, hc_s3_slot *slot, hc_s3_error *err)
{
    hc_single *one = ctx;
    (void)err;
    if (one->handed) return 0;
    one->handed = 1;
    slot->req = *one->req;
    return 1;
}

static int hc_single_done(void *ctx, hc_s3_slot *slot, hc_s3_error *err)
{
    hc_single *one = ctx;
    (void)err;
    /* Hand the answer back: the caller reads status, headers and body from its own hc_s3_req. */
    one->req->status = slot->req.status;
    one->req->resp = slot->req.resp;
    memset(&slot->req.resp, 0, sizeof slot->req.resp);
    memcpy(one->req->etag, slot->req.etag, sizeof one->req->etag);
    memcpy(one->req->request_id, slot->req.request_id, sizeof one->req->request_id);
    memcpy(one->req->sse_answer, slot->req.sse_answer, sizeof one->req->sse_answer);
    one->req->sunk = slot->req.sunk;
    one->answered = 1;
    return 0;
}

/* Sends one request with retries. The answer's body is in r->resp (free with hc_s3_req_release). */
hc_s3_status hc_s3_perform(hc_s3_client *c, hc_s3_req *r, int quick, hc_s3_error *err)
{
    hc_single one = {r, 0, 0};
    hc_s3_slot slot;
    memset(&slot, 0, sizeof slot);
    hc_s3_job job = {hc_single_next, hc_single_done, &one, &slot, 1, quick, r->settle_ms, 0, 0};
    hc_s3_status st = hc_s3_run(c, &job, err);
    r->unanswered = job.unanswered;
    if (st == HC_S3_EABORTED && one.answered) { /* it succeeded while the abort settled */
        hc_s3_err_clear(err);
        st = HC_S3_OK;
    }
    return st;
}

