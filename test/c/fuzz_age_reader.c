/* libFuzzer harness for age.c's reader: arbitrary bytes are read as an age file with a fixed
 * identity (the seeds, rakelib/fuzz.rake, are files the age tool wrote for it, so the fuzzer starts
 * past the header's MAC). Each input is read twice, fed whole and then in uneven pieces: both must
 * end alike (the same error, or the same plaintext), no plaintext may outgrow its ciphertext, and
 * nothing may crash, leak or overflow. Run: bundle exec rake fuzz:age_reader FUZZ_SECONDS=60 */
#include "age.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key made for this harness only; its public key is in rakelib/fuzz.rake:
 * age1gyxlxmj9kluvncznsuqtnlqkptrkk8vdg6vjrxk4dyngwltrzsgsyaql62 */
static const char fuzz_identity[] = "AGE-SECRET-KEY-1WDFLJE4JVP2TFS2F5JNXLMFERS7U0XNQ2E42MT9KHSQRVU4KHERQQFLTUT";

typedef struct {
    unsigned char *data;
    size_t len, cap;
} plain_t;

static int collect(void *ctx, const void *buf, size_t len, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    plain_t *p = ctx;
    if (len > p->cap - p->len) abort(); /* more plaintext than ciphertext */
    memcpy(p->data + p->len, buf, len);
    p->len += len;
    return 0;
}

/* Reads data[0, size) in pieces of pieces[i % n] bytes (n == 0: at once); err gets the outcome. */
static int read_age(const hc_age_identity *id, const uint8_t *data, size_t size, const size_t *pieces, size_t n,
                    plain_t *out, char *err, size_t errlen)
{
    hc_age_reader r;
    if (hc_age_reader_init(&r, id, 1, err, errlen) != 0) abort();
    int rc = 0;
    size_t at = 0;
    for (size_t i = 0; at < size && rc == 0; i++) {
        size_t take = n ? pieces[i % n] : size - at;
        if (take > size - at) take = size - at;
        rc = hc_age_reader_feed(&r, data + at, take, collect, out, err, errlen);
        at += take;
    }
    if (rc == 0) rc = hc_age_reader_finish(&r, collect, out, err, errlen);
    if (rc == 0) snprintf(err, errlen, "ok");
    hc_age_reader_free(&r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hc_age_identity id;
    static int ready;
    char err[400], err2[400];
    if (!ready) {
        if (hc_age_identity_parse(fuzz_identity, sizeof fuzz_identity - 1, &id, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_age_reader: %s\n", err);
            abort();
        }
        ready = 1;
    }
    static const size_t pieces[] = { 1, 3, 64, 7, 1000, 2 };
    plain_t a = { malloc(size + 1), 0, size }, b = { malloc(size + 1), 0, size };
    if (!a.data || !b.data) abort();
    int rc = read_age(&id, data, size, NULL, 0, &a, err, sizeof err);
    int rc2 = read_age(&id, data, size, pieces, sizeof pieces / sizeof *pieces, &b, err2, sizeof err2);
    if (rc != rc2 || strcmp(err, err2) != 0) {
        fprintf(stderr, "fuzz_age_reader: whole: %s\nin pieces: %s\n", err, err2);
        abort();
    }
    /* the same plaintext came out before any error, whatever the pieces */
    if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0)) abort();
    free(a.data);
    free(b.data);
    return 0;
}
