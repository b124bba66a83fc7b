/* The S3 client's transfer machinery, shared by s3.c and s3_transfer.c only. Pure C: no Ruby.
 *
 * hc_s3_req is one request: what to send (method, key, query, body, payload hash) and what came
 * back (status, headers, a capped body). hc_s3_run drives a job: a few slots on the client's curl
 * multi handle, each holding a request that is signed afresh on every attempt and retried when the
 * failure is transient; the job's next() fills free slots, done() takes each success. */
#ifndef HC_S3_TRANSFER_H
#define HC_S3_TRANSFER_H

#include "s3.h"
#include "sigv4.h"
#include "util.h"

#include <curl/curl.h>
#include <stddef.h>
#include <sys/types.h>

#define HC_ERROR_BODY_MAX (64 * 1024)         /* an <Error> document is a few hundred bytes */
#define HC_ABORT_ATTEMPTS 3                   /* AbortMultipartUpload after a failure: quick, bounded */
#define HC_ABORT_ROUNDS 3                     /* AbortMultipartUpload sent again while ListParts still shows parts */
#define HC_QUICK_INTERRUPTED_MS 5000          /* how long a quick job may still run after an interrupt */
#define HC_SETTLE_POLL_MS 50                  /* a job waiting for its requests in flight looks for interrupts this often */

struct hc_s3_client {
    hc_s3_config cfg;          /* strings below are copies owned by the client */
    char *bucket, *region, *access_key_id, *secret_access_key, *session_token, *ca_file, *ca_path;
    char *sse, *sse_kms_key_id; /* NULL when not set */
    char *scheme;              /* "https" */
    char *host;                /* signed and sent as Host: "bucket.s3.us-east-1.amazonaws.com", "127.0.0.1:9000" */
    char *bucket_path;         /* "/bucket" path-style, "" virtual-hosted */
    char *base_url;            /* scheme://host + bucket_path, for messages */
    char user_agent[128];      /* "heapcapture/0.1.0 libcurl/7.88.1" */
    CURLM *multi;
    CURL **easy;               /* one per slot */
    int nslots;
    int aborted;               /* interrupts since the last reset (0: none); __atomic builtins, any thread */
    pid_t pid;                 /* the process the curl handles belong to */
    unsigned int seed;         /* backoff jitter */
};

typedef struct {
    char *data;
    size_t len, cap, max;
} hc_s3_buf;

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
    char content_md5[HC_MD5_BASE64_LEN]; /* base64 MD5 of the body, sent as Content-MD5; "" for none */
    const char *content_type;
    int sse;                      /* 1: carries the client's server-side encryption headers (PutObject,
                                   * CreateMultipartUpload), signed with the others */
    int sink_fd;                  /* download target, or -1 */
    size_t resp_max;
    int error_in_200;             /* CompleteMultipartUpload: a 200 can carry <Error> */
    char what[160];               /* "uploading part 3 of 12", for messages */
    const char *place;            /* the word before the URL in messages: "to", "from", "in", "of", or "" */
    const char *file_path;        /* the local file, for messages */
    char part_number[24];         /* the partNumber query value */

    /* what came back, reset on every attempt */
    long status;
    hc_s3_buf resp;
    char etag[128];
    char request_id[128];
    char sse_answer[32];          /* the answer's x-amz-server-side-encryption: the encryption S3 applied */
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
    /* S3's latest answer to this request ("HTTP 503 SlowDown: ... (request id ...)"), kept across
     * attempts: the final message names it when later attempts got no answer at all. */
    char last_answer[480];
    int last_answer_attempt;

    /* hc_s3_perform only */
    long settle_ms;               /* in: see hc_s3_job.settle_ms */
    int unanswered;               /* out: see hc_s3_job.unanswered */
} hc_s3_req;

enum { HC_SLOT_IDLE, HC_SLOT_RUNNING, HC_SLOT_WAITING };

typedef struct {
    int state;
    long long retry_at_ms;
    hc_s3_req req;
    int part_index;          /* the part reader's buffer this slot is sending */
    long part_number;
    hc_s3_error last_error;  /* the latest failed attempt's reason */
} hc_s3_slot;

typedef struct {
    /* Fills an idle slot's req with the next request: 1 when filled, 0 when there is none left,
     * 2 when the next one is not ready yet (the job wakes the multi handle when it is), -1 on
     * failure with err set. */
    int (*next)(void *ctx, hc_s3_slot *slot, hc_s3_error *err);
    /* Takes a successful answer: 0, or -1 with err set to fail the whole job. */
    int (*done)(void *ctx, hc_s3_slot *slot, hc_s3_error *err);
    void *ctx;
    hc_s3_slot *slots;
    int nslots;
    /* A clean-up request after a failure or an interrupt: short timeouts, and an interrupt does not
     * stop it at once (it exists so no upload is left open) but leaves it HC_QUICK_INTERRUPTED_MS;
     * a further interrupt while it runs ends it at once. */
    int quick;
    /* Once the job stops (an interrupt, or a request that failed for good), no request or retry
     * starts; requests in flight whose body has all gone out get this long (ms) to answer, and
     * done() takes those that succeed; the others are dropped at once. 0: all dropped at once. */
    long settle_ms;
    /* Out: a request may have reached S3 without its answer being read (dropped in flight, or a
     * transport failure after it was sent). */
    int unanswered;
    /* Out: requests dropped, unanswered, after their whole body had gone out: S3 may still act on
     * them (store a part) after the job ended. */
    int unsettled;
} hc_s3_job;

void hc_s3_err_set(hc_s3_error *err, hc_s3_status kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void hc_s3_err_clear(hc_s3_error *err);
int hc_s3_is_aborted(hc_s3_client *c);

/* Creates the multi handle and one easy handle per slot for this process. 0, or -1 when out of memory. */
int hc_s3_curl_handles(hc_s3_client *c);
/* After fork: gives the child its own handles. 0, or -1 with err set. */
int hc_s3_fork_check(hc_s3_client *c, hc_s3_error *err);

/* what: "downloading"; place: the word between it and the URL in messages ("from": "while downloading
 * from http://..."), or "" for none. Both must outlive the request (place: a literal). */
void hc_s3_req_init(hc_s3_req *r, const char *method, const char *key, const char *what, const char *place);
/* Adds a query pair; name and value must outlive the request. At most 3. */
void hc_s3_req_query(hc_s3_req *r, const char *name, const char *value);
/* Frees what an attempt allocated (the answer's body included). */
void hc_s3_req_release(hc_s3_req *r);

/* Appends s to *dst (length *len), percent-encoded S3-style when encode is set. 0 or -1 (memory). */
int hc_s3_str_add(char **dst, size_t *len, const char *s, int encode, int keep_slash);
/* The decoded path of a request: "/bucket/key", "/key", "/bucket" or "/". Malloc'd. */
char *hc_s3_req_path(hc_s3_client *c, const hc_s3_req *r);
/* The object's URL without query, for messages. Malloc'd; NULL when out of memory. */
char *hc_s3_display_url(hc_s3_client *c, const char *key);

/* Runs the job to the end: HC_S3_OK, or the failure with err set. */
hc_s3_status hc_s3_run(hc_s3_client *c, hc_s3_job *job, hc_s3_error *err);
/* Sends one request with retries; the answer is in r (free with hc_s3_req_release). quick: a
 * clean-up request with short timeouts that outlives an interrupt by a few seconds only (see
 * hc_s3_job.quick). With r->settle_ms, a request that succeeds while an abort settles returns
 * HC_S3_OK (the abort flag stays set, so the caller's next step stops); r->unanswered tells
 * whether S3 may have acted on it unseen. */
hc_s3_status hc_s3_perform(hc_s3_client *c, hc_s3_req *r, int quick, hc_s3_error *err);

#endif
