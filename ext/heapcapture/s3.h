/* An S3 client on libcurl's multi interface, signing with sigv4.h. Pure C: no Ruby.
 *
 * One client owns one multi handle and one easy handle per parallel slot, reused from request to
 * request so connections stay open. A client is used by one thread at a time; only
 * hc_s3_client_abort may be called from another thread (or a signal-free unblocking function).
 *
 * Every operation retries what S3 and networks throw at heavy users (5xx, 429, SlowDown,
 * RequestTimeout, a 200 that carries <Error>, resets, stalls caught by the low-speed timeout) with
 * exponential backoff and full jitter, up to max_attempts per request. A multipart upload that
 * fails for good is aborted at S3 before the call returns: the bucket holds the whole object or
 * nothing. Errors come back in an hc_s3_error: S3's code, HTTP status and request id when S3 said
 * them, and a message that names the operation, the object's URL and the cause. */
#ifndef HC_S3_H
#define HC_S3_H

#include "s3_growing_file.h"

#include <stddef.h>

#define HC_S3_MIB (1024L * 1024L)
#define HC_S3_MAX_PARTS 10000
/* The limits of the settings, the one place they are stated: the Ruby binding exports them as
 * HeapCapture::S3::MIN_PART_SIZE etc., and Ruby checks each setting with them once. */
#define HC_S3_MIN_PART_SIZE (5 * HC_S3_MIB)          /* S3's minimum for every part but the last */
#define HC_S3_MAX_PART_SIZE (5L * 1024 * HC_S3_MIB)  /* S3's maximum: 5 GiB */
#define HC_S3_MAX_CONCURRENCY 64
#define HC_S3_MAX_ATTEMPTS 20
#define HC_S3_MAX_KMS_KEY_ID 2048 /* bytes: the longest KMS key ARN AWS allows */
#define HC_S3_SETTLE_MS 5000   /* after an abort, how long a CreateMultipartUpload in flight may take to answer */
#define HC_S3_PART_SETTLE_MS 2000 /* after a stop, how long parts S3 has received may take to answer */

typedef struct {
    const char *bucket;
    const char *region;              /* "us-east-1" */
    const char *endpoint;            /* NULL/"" for AWS; else "http(s)://host[:port]" */
    int path_style;                  /* -1: automatic (custom endpoint or dotted bucket), 0: no, 1: yes */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;       /* NULL or "" */
    long part_size;                  /* bytes, HC_S3_MIN..MAX_PART_SIZE; grown so a file fits in 10,000 parts. 0: 8 MiB */
    int concurrency;                 /* parts in flight, 1..HC_S3_MAX_CONCURRENCY. 0: 4 */
    long connect_timeout_ms;         /* 0: 10 s */
    long low_speed_time_s;           /* a transfer with no byte moving for this long is a stall. 0: 30 s */
    int max_attempts;                /* per request, 1..HC_S3_MAX_ATTEMPTS. 0: 5 */
    long retry_base_ms;              /* first backoff; doubles, full jitter, capped at 64x. 0: 200 */
    const char *ca_file;             /* NULL: libcurl's default bundle (SSL_CERT_FILE is read by the binding) */
    const char *ca_path;
    const char *product;             /* "heapcapture/0.1.0": the User-Agent's first word (libcurl's follows). NULL: "heapcapture" */
    /* Server-side encryption, asked for on every PutObject and CreateMultipartUpload (UploadPart,
     * CompleteMultipartUpload and the rest never carry it) in signed headers:
     * x-amz-server-side-encryption: sse, and x-amz-server-side-encryption-aws-kms-key-id. S3's
     * answer must name the same encryption: one that does not (a gateway that ignores the header)
     * fails the upload, the object PUT deleted, the multipart upload aborted before any part. */
    const char *sse;                 /* NULL/"": none; "aws:kms" or "AES256" (as S3 spells them) */
    const char *sse_kms_key_id;      /* NULL/"": the bucket's default key; with sse "aws:kms" only */
} hc_s3_config;

typedef enum {
    HC_S3_OK = 0,
    HC_S3_EARG,        /* bad argument or configuration */
    HC_S3_EFILE,       /* the local file could not be opened, read or written */
    HC_S3_EHTTP,       /* S3 answered with an error */
    HC_S3_ETRANSPORT,  /* no usable answer: refused, reset, timed out, TLS */
    HC_S3_EABORTED,    /* hc_s3_client_abort was called */
    HC_S3_ENOMEM
} hc_s3_status;

typedef struct {
    hc_s3_status kind;
    long http_status;        /* 0 when S3 never answered */
    char code[64];           /* S3's error code ("SlowDown"), or "" */
    char request_id[128];
    char message[1024];      /* says what was being done, where, and why it failed */
    int upload_left_open;    /* 1: a multipart upload may be left open at S3 (the message says which) */
} hc_s3_error;

typedef struct hc_s3_client hc_s3_client;

typedef struct {
    char etag[128];
    long long bytes;
    int parts;               /* parts sent; a single PUT counts as 1 */
} hc_s3_upload_result;

typedef struct {
    char *key;
    long long size;
    char *last_modified;
} hc_s3_object;

/* Returns a client, or NULL with the reason in err (a bad endpoint URL, a missing bucket name...). */
hc_s3_client *hc_s3_client_new(const hc_s3_config *config, hc_s3_error *err);
void hc_s3_client_free(hc_s3_client *client);

/* Thread-safe, async-signal-unsafe: makes the running operation stop as soon as possible. An
 * interrupted multipart upload is still aborted at S3 before the operation returns HC_S3_EABORTED:
 * first the parts S3 has received are given HC_S3_PART_SETTLE_MS to be answered (a part stored
 * after the abort would be kept where nothing lists it; parts still being sent are dropped at
 * once), then the abort is given at most 5 s, and ListParts checks that no part outlived it; a
 * second call ends the waiting at once. If the interrupt lands while S3 is starting the upload,
 * its answer is awaited (at most HC_S3_SETTLE_MS) to learn the upload id to abort. When the abort
 * cannot be done, err->upload_left_open is set and the message says so. The flag stays set until
 * hc_s3_client_reset_abort. */
void hc_s3_client_abort(hc_s3_client *client);
void hc_s3_client_reset_abort(hc_s3_client *client);

/* Stores the file at path under key. content_type may be NULL. */
hc_s3_status hc_s3_upload(hc_s3_client *client, const char *path, const char *key,
                          const char *content_type, hc_s3_upload_result *out, hc_s3_error *err);

/* Uploads a file that is still being written (grow tells how far it is and when it is done),
 * starting before it is complete: the parts go up as they fill. size_hint (bytes the file may
 * reach) sizes the parts so it fits in S3's 10,000. fd is the file opened for reading. A failure
 * of the writer fails the upload with the writer's message (an upload begun is aborted). */
hc_s3_status hc_s3_upload_growing(hc_s3_client *client, int fd, const char *path, const hc_growing_file *grow,
                                  long long size_hint, const char *key, const char *content_type,
                                  hc_s3_upload_result *out, hc_s3_error *err);

/* Writes the object to path (through a temporary file beside it, renamed when complete).
 * *bytes gets the size written. */
hc_s3_status hc_s3_download(hc_s3_client *client, const char *key, const char *path,
                            long long *bytes, hc_s3_error *err);

/* Every object under prefix (following continuation tokens). Free with hc_s3_objects_free. */
hc_s3_status hc_s3_list(hc_s3_client *client, const char *prefix, hc_s3_object **objects,
                        size_t *count, hc_s3_error *err);
void hc_s3_objects_free(hc_s3_object *objects, size_t count);

hc_s3_status hc_s3_delete(hc_s3_client *client, const char *key, hc_s3_error *err);

/* A presigned GET URL, malloc'd, valid expires_in seconds (1..604800) from now_utc. */
char *hc_s3_presigned_url(hc_s3_client *client, const char *key, long expires_in, long long now_utc,
                          hc_s3_error *err);

/* The base URL and addressing the client resolved, for messages and tests:
 * "https://bucket.s3.eu-west-1.amazonaws.com" or "http://127.0.0.1:9000/bucket". */
const char *hc_s3_client_base_url(const hc_s3_client *client);

/* S3's ETag of a multipart object, from its parts' ETags (etags[0..nparts-1], quoted or not):
 * "\"<hex MD5 of the parts' binary MD5s>-<nparts>\"". For a Complete answer whose ETag is missing
 * or empty (RGW 16 sends <ETag></ETag>). 0, or -1 when a part's ETag is not an MD5 (SSE-KMS,
 * say): out is then "". */
int hc_s3_multipart_etag(char *const *etags, long nparts, char *out, size_t outlen);

/* Part size an upload of `size` bytes uses: the configured size, grown (in whole MiB) so that the
 * file fits in 10,000 parts. */
long hc_s3_part_size_for(long configured, long long size);

#endif
