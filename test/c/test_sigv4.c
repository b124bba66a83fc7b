/* sigv4.c against the AWS SigV4 test suite (the 28 cases that hold for S3), presign known answers
 * from the S3 documentation, and bad input. Runs from the repository root. */
#include "hc_test.h"
#include "sigv4.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define SUITE_DIR "test/fixtures/sigv4-test-suite"
#define SUITE_TIME ((time_t)1440938160) /* 20150830T123600Z */

/* Path-normalisation cases: S3 does not normalise paths, so these do not apply (README.md). */
static const char *const not_for_s3[] = {
    "get-relative", "get-relative-relative", "get-slash",
    "get-slash-dot-slash", "get-slash-pointless-dot", "get-slashes",
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) { free(buf); buf = NULL; break; }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes len bytes of s into a new string. */
static char *decode(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

typedef struct {
    char *method, *host, *path, *body, *token;
    hc_kv query[16], headers[16];
    size_t nquery, nheaders;
    char *owned[80];
    size_t nowned;
} parsed_req;

static char *own(parsed_req *p, char *s)
{
    if (p->nowned < sizeof p->owned / sizeof *p->owned) p->owned[p->nowned++] = s;
    return s;
}

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* The request line, the headers (continuation lines joined to the header before them with the
 * line break kept, for the signer to fold), and the body after the first blank line. */
static int parse_req(const char *text, parsed_req *p)
{
    memset(p, 0, sizeof *p);
    const char *line = text;
    const char *eol = strchr(line, '\n');
    size_t linelen = eol ? (size_t)(eol - line) : strlen(line);
    if (linelen && line[linelen - 1] == '\r') linelen--;
    const char *sp1 = memchr(line, ' ', linelen);
    const char *sp2 = NULL;
    for (const char *c = line + linelen; c > line; c--) if (c[-1] == ' ') { sp2 = c - 1; break; }
    if (!sp1 || !sp2 || sp2 <= sp1) return -1;
    p->method = own(p, dup_range(line, (size_t)(sp1 - line)));
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    p->path = own(p, decode(target, plen));
    if (q) {
        const char *s = q + 1, *end = target + tlen;
        while (s < end && p->nquery < 16) {
            const char *amp = memchr(s, '&', (size_t)(end - s));
            const char *pe = amp ? amp : end;
            const char *eq = memchr(s, '=', (size_t)(pe - s));
            const char *ne = eq ? eq : pe;
            p->query[p->nquery].name = own(p, decode(s, (size_t)(ne - s)));
            p->query[p->nquery].value = own(p, eq ? decode(eq + 1, (size_t)(pe - eq - 1)) : decode("", 0));
            p->nquery++;
            s = pe + 1;
        }
    }
    const char *cur = eol ? eol + 1 : line + linelen;
    hc_kv *last = NULL;
    while (*cur) {
        eol = strchr(cur, '\n');
        linelen = eol ? (size_t)(eol - cur) : strlen(cur);
        const char *next = eol ? eol + 1 : cur + linelen;
        if (linelen && cur[linelen - 1] == '\r') linelen--;
        if (linelen == 0) { cur = next; break; } /* the blank line: the body follows */
        if ((cur[0] == ' ' || cur[0] == '\t') && last) {
            size_t vlen = strlen(last->value);
            char *joined = malloc(vlen + 1 + linelen + 1);
            memcpy(joined, last->value, vlen);
            joined[vlen] = '\n';
            memcpy(joined + vlen + 1, cur, linelen);
            joined[vlen + 1 + linelen] = '\0';
            last->value = own(p, joined);
        } else {
            const char *colon = memchr(cur, ':', linelen);
            if (!colon || p->nheaders >= 16) return -1;
            char *name = own(p, dup_range(cur, (size_t)(colon - cur)));
            char *value = own(p, dup_range(colon + 1, linelen - (size_t)(colon - cur) - 1));
            if (strcasecmp(name, "host") == 0) {
                p->host = value;
                last = NULL;
            } else {
                p->headers[p->nheaders] = (hc_kv){ name, value };
                last = &p->headers[p->nheaders++];
            }
        }
        cur = next;
    }
    p->body = own(p, dup_range(cur, strlen(cur)));
    return p->method && p->host && p->path ? 0 : -1;
}

static void free_req(parsed_req *p)
{
    for (size_t i = 0; i < p->nowned; i++) free(p->owned[i]);
}

/* The case's session token, as botocore's runner finds it: the x-amz-security-token line of the
 * expected canonical request (post-sts-header-after adds its token only after signing). */
static char *token_from_creq(const char *creq)
{
    const char *t = strstr(creq, "\nx-amz-security-token:");
    if (!t) return NULL;
    t += strlen("\nx-amz-security-token:");
    return dup_range(t, strcspn(t, "\n"));
}

static int applies_to_s3(const char *name)
{
    for (size_t i = 0; i < sizeof not_for_s3 / sizeof *not_for_s3; i++)
        if (strcmp(name, not_for_s3[i]) == 0) return 0;
    return 1;
}

static void run_case(const char *name)
{
    char path[512];
    char *files[4];
    const char *exts[4] = { "req", "creq", "sts", "authz" };
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, SUITE_DIR "/%s/%s.%s", name, name, exts[i]);
        files[i] = read_file(path);
        HC_CHECK(files[i] != NULL, "%s: cannot read %s", name, path);
    }
    parsed_req p;
    if (files[0] && files[1] && files[2] && files[3] && parse_req(files[0], &p) == 0) {
        char payload[65];
        hc_sha256_hex(p.body, strlen(p.body), payload);
        char *token = token_from_creq(files[1]);
        hc_sigv4_request req = {
            .method = p.method, .host = p.host, .path = p.path,
            .query = p.query, .nquery = p.nquery, .headers = p.headers, .nheaders = p.nheaders,
            .payload_sha256 = payload, .region = "us-east-1", .service = "service",
            .access_key_id = "AKIDEXAMPLE", .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            .session_token = token, .time = SUITE_TIME,
        };
        hc_sigv4_result out;
        char err[256] = "";
        int rc = hc_sigv4_sign(&req, &out, err, sizeof err);
        HC_CHECK(rc == 0, "%s: sign failed: %s", name, err);
        if (rc == 0) {
            char what[128];
            snprintf(what, sizeof what, "%s canonical request", name);
            HC_CHECK_STR(out.canonical_request, files[1], what);
            snprintf(what, sizeof what, "%s string to sign", name);
            HC_CHECK_STR(out.string_to_sign, files[2], what);
            snprintf(what, sizeof what, "%s authorization", name);
            HC_CHECK_STR(out.authorization, files[3], what);
            HC_CHECK_STR(out.amz_date, "20150830T123600Z", name);
            hc_sigv4_result_free(&out);
        }
        free(token);
        free_req(&p);
    } else if (files[0]) {
        HC_CHECK(0, "%s: cannot parse the .req file", name);
    }
    for (int i = 0; i < 4; i++) free(files[i]);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_suite(void)
{
    DIR *dir = opendir(SUITE_DIR);
    HC_CHECK(dir != NULL, "cannot open %s (run from the repository root)", SUITE_DIR);
    if (!dir) return;
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) && n < 64) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_' || strchr(e->d_name, '.')) continue;
        if (!applies_to_s3(e->d_name)) continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof *names, cmp_str);
    HC_CHECK(n == 28, "expected 28 applicable cases, found %zu", n);
    for (size_t i = 0; i < n; i++) {
        run_case(names[i]);
        free(names[i]);
    }
}

/* The S3 documentation's examples ("Authenticating Requests: Using the Authorization Header" and
 * "... Using Query Parameters"): GET /test.txt from examplebucket on 2013-05-24. */
#define DOC_KEY "AKIAIOSFODNN7EXAMPLE"
#define DOC_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DOC_TIME ((time_t)1369353600) /* 20130524T000000Z */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static hc_sigv4_request doc_request(void)
{
    return (hc_sigv4_request){
        .method = "GET", .host = "examplebucket.s3.amazonaws.com", .path = "/test.txt",
        .payload_sha256 = EMPTY_SHA256, .region = "us-east-1", .service = "s3",
        .access_key_id = DOC_KEY, .secret_access_key = DOC_SECRET, .time = DOC_TIME,
    };
}

static void test_s3_doc_header_example(void)
{
    hc_kv headers[] = { { "Range", "bytes=0-9" }, { "x-amz-content-sha256", EMPTY_SHA256 } };
    hc_sigv4_request req = doc_request();
    req.headers = headers;
    req.nheaders = 2;
    hc_sigv4_result out;
    char err[256] = "";
    HC_CHECK(hc_sigv4_sign(&req, &out, err, sizeof err) == 0, "sign: %s", err);
    HC_CHECK_STR(out.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                 "S3 doc GET object signature");
    HC_CHECK_STR(out.authorization,
                 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                 "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                 "S3 doc GET object authorization");
    hc_sigv4_result_free(&out);
}

static void test_s3_doc_presign_example(void)
{
    hc_sigv4_request req = doc_request();
    req.payload_sha256 = NULL; /* presign's default: UNSIGNED-PAYLOAD */
    hc_sigv4_result out;
    char err[256] = "";
    HC_CHECK(hc_sigv4_presign(&req, 86400, &out, err, sizeof err) == 0, "presign: %s", err);
    HC_CHECK_STR(out.canonical_request,
                 "GET\n/test.txt\n"
                 "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                 "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
                 "X-Amz-SignedHeaders=host\nhost:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD",
                 "S3 doc presign canonical request");
    HC_CHECK_STR(out.string_to_sign,
                 "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                 "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
                 "S3 doc presign string to sign");
    HC_CHECK_STR(out.signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
                 "S3 doc presign signature");
    HC_CHECK_STR(out.query_string,
                 "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                 "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
                 "X-Amz-SignedHeaders=host&X-Amz-Signature="
                 "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
                 "S3 doc presign query string");
    HC_CHECK(out.nquery == 6, "presign query has %zu pairs, want 6", out.nquery);
    if (out.nquery == 6) {
        HC_CHECK_STR(out.query[1].value, "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
                     "decoded credential");
        HC_CHECK_STR(out.query[5].name, "X-Amz-Signature", "signature comes last");
    }
    HC_CHECK(out.authorization == NULL, "presign sets no Authorization header");
    hc_sigv4_result_free(&out);
}

/* Presign with a session token and the caller's own query pairs: the token is signed in the
 * query, the caller's pairs are sorted in with the X-Amz-* ones. Expected values from Debian's
 * aws-sigv4 1.5.1 Signer#presign_url on the same input. */
#define PRESIGN_TOKEN_SIGNATURE "de30601a974d237346d143a78461bc9899ca533d6d227405639c372279374891"

static void test_presign_with_token_and_query(void)
{
    hc_kv query[] = { { "response-content-type", "text/plain; charset=utf-8" }, { "a b", "" } };
    hc_sigv4_request req = doc_request();
    req.payload_sha256 = NULL;
    req.path = "/my key/ሴ+%.gz";
    req.query = query;
    req.nquery = 2;
    req.session_token = "FQoG/token+with=chars";
    hc_sigv4_result out;
    char err[256] = "";
    HC_CHECK(hc_sigv4_presign(&req, 3600, &out, err, sizeof err) == 0, "presign: %s", err);
    HC_CHECK_STR(out.canonical_request,
                 "GET\n/my%20key/%E1%88%B4%2B%25.gz\n"
                 "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                 "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=3600&"
                 "X-Amz-Security-Token=FQoG%2Ftoken%2Bwith%3Dchars&X-Amz-SignedHeaders=host&a%20b=&"
                 "response-content-type=text%2Fplain%3B%20charset%3Dutf-8\n"
                 "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD",
                 "presign with token canonical request");
    HC_CHECK_STR(out.signature, PRESIGN_TOKEN_SIGNATURE, "presign with token signature");
    HC_CHECK(out.nquery == 9, "presign query has %zu pairs, want 9", out.nquery);
    if (out.nquery == 9) {
        HC_CHECK_STR(out.query[4].value, "FQoG/token+with=chars", "decoded token");
        HC_CHECK_STR(out.query[6].name, "a b", "decoded caller name");
    }
    hc_sigv4_result_free(&out);
}

static void test_helpers(void)
{
    char hex[65];
    hc_sha256_hex("abc", 3, hex);
    HC_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256(abc)");
    hc_sha256_hex("", 0, hex);
    HC_CHECK_STR(hex, EMPTY_SHA256, "sha256 of nothing");
    /* The body hash: SHA-256 (hex) and Content-MD5 (RFC 1864 base64), in pieces or whole, reusable. */
    char md5[HC_MD5_BASE64_LEN];
    hc_body_hash *h = hc_body_hash_new();
    HC_CHECK(h != NULL, "a body hash");
    if (h) {
        HC_CHECK(hc_body_hash_final(h, hex, md5) == 0, "nothing hashed");
        HC_CHECK_STR(hex, EMPTY_SHA256, "sha256 of nothing");
        HC_CHECK_STR(md5, "1B2M2Y8AsgTpgAmY7PhCfg==", "Content-MD5 of nothing");
        hc_body_hash_update(h, "The quick brown fox ", 20);
        hc_body_hash_update(h, "jumps over the lazy dog", 23);
        HC_CHECK(hc_body_hash_final(h, hex, md5) == 0, "the fox, in two pieces");
        HC_CHECK_STR(md5, "nhB9nTcrtoJr2B01QqQZ1g==", "Content-MD5 of the fox");
        HC_CHECK_STR(hex, "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592", "sha256 of the fox");
        hc_body_hash_update(h, "abc", 3);
        HC_CHECK(hc_body_hash_final(h, hex, md5) == 0, "reused after final");
        HC_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256(abc) afresh");
        hc_body_hash_free(h);
    }
    const unsigned char bytes[3] = {0x00, 0xab, 0xff};
    hc_to_hex(bytes, 3, hex);
    HC_CHECK_STR(hex, "00abff", "hex");

    char *e = hc_uri_encode("a b/c~d+e%f=g&h", 15, 1);
    HC_CHECK_STR(e, "a%20b/c~d%2Be%25f%3Dg%26h", "encode keeping slashes");
    free(e);
    e = hc_uri_encode("a/b\xe1\x88\xb4\x01\xff", 8, 0);
    HC_CHECK_STR(e, "a%2Fb%E1%88%B4%01%FF", "encode every byte, slash included");
    free(e);
    e = hc_uri_encode("nul\0byte", 8, 0);
    HC_CHECK_STR(e, "nul%00byte", "encode a NUL byte inside the given length");
    free(e);
    e = hc_uri_encode("", 0, 0);
    HC_CHECK_STR(e, "", "encode nothing");
    free(e);
}

/* Each bad input fails with -1, a message naming the argument, and nothing to free. */
static void expect_error(hc_sigv4_request req, long expires_in, int presign, const char *needle)
{
    hc_sigv4_result out;
    char err[256] = "";
    int rc = presign ? hc_sigv4_presign(&req, expires_in, &out, err, sizeof err)
                     : hc_sigv4_sign(&req, &out, err, sizeof err);
    HC_CHECK(rc == -1, "expected an error mentioning \"%s\", got rc %d", needle, rc);
    HC_CHECK(strstr(err, needle) != NULL, "error \"%s\" does not mention \"%s\"", err, needle);
    HC_CHECK(out.canonical_request == NULL && out.authorization == NULL && out.query == NULL,
             "a failed call leaves nothing to free (%s)", needle);
    if (rc == 0) hc_sigv4_result_free(&out);
}

static void test_bad_input(void)
{
    hc_sigv4_request r;
    r = doc_request(); r.method = NULL; expect_error(r, 0, 0, "method");
    r = doc_request(); r.method = ""; expect_error(r, 0, 0, "method");
    r = doc_request(); r.method = "GE T"; expect_error(r, 0, 0, "method");
    r = doc_request(); r.host = NULL; expect_error(r, 0, 0, "host");
    r = doc_request(); r.host = ""; expect_error(r, 0, 0, "host");
    r = doc_request(); r.host = "a\r\nb"; expect_error(r, 0, 0, "host");
    r = doc_request(); r.path = "relative"; expect_error(r, 0, 0, "path");
    r = doc_request(); r.path = NULL; expect_error(r, 0, 0, "path");
    r = doc_request(); r.region = ""; expect_error(r, 0, 0, "region");
    r = doc_request(); r.region = "us/east"; expect_error(r, 0, 0, "region");
    r = doc_request(); r.service = NULL; expect_error(r, 0, 0, "service");
    r = doc_request(); r.access_key_id = ""; expect_error(r, 0, 0, "access_key_id");
    r = doc_request(); r.access_key_id = "AK ID"; expect_error(r, 0, 0, "access_key_id");
    r = doc_request(); r.secret_access_key = ""; expect_error(r, 0, 0, "secret_access_key");
    r = doc_request(); r.secret_access_key = NULL; expect_error(r, 0, 0, "secret_access_key");
    r = doc_request(); r.session_token = "tok\nen"; expect_error(r, 0, 0, "session_token");
    r = doc_request(); r.time = -1; expect_error(r, 0, 0, "time");
    r = doc_request(); r.time = (time_t)253402300800LL; expect_error(r, 0, 0, "time");
    r = doc_request(); r.payload_sha256 = NULL; expect_error(r, 0, 0, "payload_sha256");
    r = doc_request(); r.payload_sha256 = "E3B0"; expect_error(r, 0, 0, "payload_sha256");
    r = doc_request(); r.payload_sha256 = "not a hash"; expect_error(r, 0, 0, "payload_sha256");

    hc_kv bad_names[][1] = { { { "", "v" } }, { { "my header", "v" } }, { { "my:header", "v" } },
                             { { "my\theader", "v" } }, { { "x\x01", "v" } }, { { NULL, "v" } } };
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        r = doc_request(); r.headers = bad_names[i]; r.nheaders = 1; expect_error(r, 0, 0, "header");
    }
    hc_kv bad_values[][1] = { { { "x-a", "a\nb" } }, { { "x-a", "a\rb" } }, { { "x-a", "a\x7f" } },
                              { { "x-a", "end\n" } }, { { "x-a", "\x0b" } }, { { "x-a", NULL } } };
    for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
        r = doc_request(); r.headers = bad_values[i]; r.nheaders = 1; expect_error(r, 0, 0, "x-a");
    }
    hc_kv host_header[] = { { "Host", "other" } };
    r = doc_request(); r.headers = host_header; r.nheaders = 1; expect_error(r, 0, 0, "host");
    hc_kv wrong_date[] = { { "X-Amz-Date", "20200101T000000Z" } };
    r = doc_request(); r.headers = wrong_date; r.nheaders = 1; expect_error(r, 0, 0, "x-amz-date");
    r = doc_request(); r.nheaders = 2; expect_error(r, 0, 0, "headers");
    r = doc_request(); r.nquery = 1; expect_error(r, 0, 0, "query");
    hc_kv null_name[] = { { NULL, "v" } };
    r = doc_request(); r.query = null_name; r.nquery = 1; expect_error(r, 0, 0, "query");

    r = doc_request(); expect_error(r, 0, 1, "expires_in");
    r = doc_request(); expect_error(r, 604801, 1, "expires_in");
    r = doc_request(); expect_error(r, -5, 1, "expires_in");
    hc_kv sig_in_query[] = { { "X-Amz-Signature", "x" } };
    r = doc_request(); r.query = sig_in_query; r.nquery = 1; expect_error(r, 60, 1, "X-Amz-Signature");
    hc_kv any_header[] = { { "x-amz-meta-a", "b" } };
    r = doc_request(); r.headers = any_header; r.nheaders = 1; expect_error(r, 60, 1, "headers");

    char err[64];
    HC_CHECK(hc_sigv4_sign(NULL, NULL, err, sizeof err) == -1, "NULL result pointer");
    hc_sigv4_result out;
    HC_CHECK(hc_sigv4_sign(NULL, &out, err, sizeof err) == -1, "NULL request");
    r = doc_request(); r.method = "";
    HC_CHECK(hc_sigv4_sign(&r, &out, NULL, 0) == -1, "no message buffer is fine");
    hc_sigv4_result_free(NULL);
}

/* Values folded and trimmed, duplicates joined in order, tabs and folds treated as spaces, the
 * caller's x-amz-date and x-amz-security-token signed once. */
static void test_header_canonicalisation(void)
{
    hc_kv headers[] = {
        { "X-Amz-Meta-B", "\t two \t  words\r\n\tfolded  " }, { "x-amz-meta-a", "" },
        { "X-AMZ-META-B", " second " }, { "x-amz-date", " 20130524T000000Z " },
        { "X-Amz-Security-Token", "tok" },
    };
    hc_sigv4_request req = doc_request();
    req.headers = headers;
    req.nheaders = 5;
    req.session_token = "tok";
    hc_sigv4_result out;
    char err[256] = "";
    HC_CHECK(hc_sigv4_sign(&req, &out, err, sizeof err) == 0, "sign: %s", err);
    HC_CHECK_STR(out.canonical_request,
                 "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nx-amz-date:20130524T000000Z\n"
                 "x-amz-meta-a:\nx-amz-meta-b:two words folded,second\nx-amz-security-token:tok\n\n"
                 "host;x-amz-date;x-amz-meta-a;x-amz-meta-b;x-amz-security-token\n" EMPTY_SHA256,
                 "canonical headers");
    hc_sigv4_result_free(&out);

    hc_kv query[] = { { "b", "2" }, { "a", "x" }, { "a", NULL }, { "a", "" }, { "~ /", "+" } };
    req = doc_request();
    req.query = query;
    req.nquery = 5;
    HC_CHECK(hc_sigv4_sign(&req, &out, err, sizeof err) == 0, "sign: %s", err);
    HC_CHECK(strncmp(out.canonical_request, "GET\n/test.txt\na=&a=&a=x&b=2&~%20%2F=%2B\n", 40) == 0,
             "canonical query: %s", out.canonical_request);
    hc_sigv4_result_free(&out);
}

int main(void)
{
    test_suite();
    test_s3_doc_header_example();
    test_s3_doc_presign_example();
    test_presign_with_token_and_query();
    test_helpers();
    test_bad_input();
    test_header_canonicalisation();
    return hc_test_summary("sigv4");
}
