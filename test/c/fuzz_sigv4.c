/* libFuzzer harness for sigv4.c: arbitrary bytes become a request (fields split at '\n', query
 * and header pairs at '='/':'), which is signed and presigned. It must never crash, leak or
 * overflow; a success must give a 64-hex-digit signature. Run: bundle exec rake fuzz:sigv4 FUZZ_SECONDS=60 */
#include "sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PAIRS 8

static void split_pair(char *s, char sep, hc_kv *kv)
{
    char *at = strchr(s, sep);
    if (at) *at = '\0';
    kv->name = s;
    kv->value = at ? at + 1 : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    int64_t t = 0;
    memcpy(&t, data, 8);
    char *text = malloc(size - 8 + 1);
    if (!text) return 0;
    memcpy(text, data + 8, size - 8);
    text[size - 8] = '\0'; /* fields end at the first NUL, as C strings do */

    char *fields[10] = { 0 };
    size_t nfields = 0;
    for (char *s = text; nfields < 10;) {
        fields[nfields++] = s;
        char *nl = strchr(s, '\n');
        if (!nl) break;
        *nl = '\0';
        s = nl + 1;
    }
    hc_kv query[FUZZ_MAX_PAIRS], headers[FUZZ_MAX_PAIRS];
    size_t nquery = 0, nheaders = 0;
    for (char *s = fields[3]; s && nquery < FUZZ_MAX_PAIRS;) {
        char *amp = strchr(s, '&');
        if (amp) *amp = '\0';
        split_pair(s, '=', &query[nquery++]);
        s = amp ? amp + 1 : NULL;
    }
    for (char *s = fields[4]; s && nheaders < FUZZ_MAX_PAIRS;) {
        char *semi = strchr(s, ';');
        if (semi) *semi = '\0';
        split_pair(s, ':', &headers[nheaders]);
        if (!headers[nheaders].value) headers[nheaders].value = "";
        nheaders++;
        s = semi ? semi + 1 : NULL;
    }
    hc_sigv4_request req = {
        .method = fields[0], .host = fields[1], .path = fields[2],
        .query = query, .nquery = nquery, .headers = headers, .nheaders = nheaders,
        .payload_sha256 = fields[5], .region = fields[6] ? fields[6] : "us-east-1", .service = "s3",
        .access_key_id = fields[7] ? fields[7] : "AKID", .secret_access_key = fields[8] ? fields[8] : "secret",
        .session_token = fields[9], .time = (time_t)t,
    };
    hc_sigv4_result out;
    char err[256];
    if (hc_sigv4_sign(&req, &out, err, sizeof err) == 0) {
        if (strlen(out.signature) != 64 || !out.authorization || !out.canonical_request) abort();
        hc_sigv4_result_free(&out);
    }
    req.nheaders = 0;
    if (hc_sigv4_presign(&req, (long)(t % 700000), &out, err, sizeof err) == 0) {
        if (strlen(out.signature) != 64 || !out.query_string || out.nquery < 6) abort();
        hc_sigv4_result_free(&out);
    }
    free(text);
    return 0;
}
