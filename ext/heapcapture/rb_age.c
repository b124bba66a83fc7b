/* HeapCapture::Age (age.h) bound to Ruby, for the settings, the summary stored beside a
 * dump and the command line; the dump's own stream is encrypted in C (dump_stream.h).
 *
 *   Age::AVAILABLE                       # this build has libsodium
 *   Age.recipient("age1...")             # => the key as age writes it, or ArgumentError saying why
 *   Age.identities(text)                 # => how many identities an identity file holds, or ArgumentError
 *   Age.encrypt(data, ["age1...", ...])  # => the age file (a String of bytes)
 *   Age.decrypt(data, identity_text)     # => the plaintext, or HeapCapture::Error with age's sentence
 *
 * For data in memory only (a summary): a dump is never held whole. The GVL stays held. */
#include "rb_heapcapture.h"
#include "rb_age.h"
#include "util.h"

#include <string.h>

static VALUE hc_mAge;

/* recipients (an Array of Strings) parsed into a String of hc_age_recipient structs (the GC frees it
 * whatever is raised); *n set. */
static VALUE hc_rb_age_recipients(VALUE recipients, size_t *n)
{
    Check_Type(recipients, T_ARRAY);
    long count = RARRAY_LEN(recipients);
    if (count < 1 || count > HC_AGE_MAX_RECIPIENTS)
        hc_rb_raise(hc_eConfigurationError, "encrypt_to: %ld recipients given; give 1 to %d age1... public keys",
                    count, HC_AGE_MAX_RECIPIENTS);
    VALUE buf = rb_str_new(NULL, count * (long)sizeof(hc_age_recipient));
    for (long i = 0; i < count; i++) {
        VALUE text = RARRAY_AREF(recipients, i);
        const char *s = hc_rb_cstr(text, "encrypt_to", "a recipient", rb_eTypeError, 0);
        char err[320];
        hc_age_recipient *r = (hc_age_recipient *)RSTRING_PTR(buf) + i;
        if (hc_age_recipient_parse(s, (size_t)RSTRING_LEN(text), r, err, sizeof err) != 0)
            hc_rb_raise(hc_eConfigurationError, "encrypt_to: recipient %ld of %ld: %s", i + 1, count, err);
    }
    *n = (size_t)count;
    return buf;
}

void hc_rb_age_start(hc_dump_age *age, VALUE recipients)
{
    size_t n;
    VALUE buf = hc_rb_age_recipients(recipients, &n);
    char err[320];
    int rc = hc_dump_age_start(age, (const hc_age_recipient *)RSTRING_PTR(buf), n, err, sizeof err);
    RB_GC_GUARD(buf);
    if (rc != 0) hc_rb_raise(hc_eDumpError, "%s", err); /* "encrypting to age: ..." */
}

void hc_rb_age_keys(VALUE text, hc_dump_keys *keys)
{
    memset(keys, 0, sizeof *keys);
    if (NIL_P(text)) return;
    StringValue(text);
    hc_age_identity *ids = NULL;
    size_t n = 0;
    char err[320];
    if (hc_age_identities_parse(RSTRING_PTR(text), (size_t)RSTRING_LEN(text), &ids, &n, err, sizeof err) != 0)
        rb_raise(rb_eArgError, "%s", err); /* the caller says whose file (Age.identity!) */
    keys->ids = ids;
    keys->n = n;
}

void hc_rb_age_keys_free(hc_dump_keys *keys)
{
    hc_age_identities_free((hc_age_identity *)keys->ids, keys->n);
    keys->ids = NULL;
    keys->n = 0;
}

static VALUE hc_rb_age_recipient(VALUE self, VALUE text)
{
    const char *s = hc_rb_cstr(text, "Age.recipient", "text", rb_eTypeError, 0);
    hc_age_recipient r;
    char err[320], out[HC_AGE_RECIPIENT_TEXT_LEN + 1];
    if (hc_age_recipient_parse(s, (size_t)RSTRING_LEN(text), &r, err, sizeof err) != 0 ||
        hc_age_recipient_format(&r, out, sizeof out, err, sizeof err) != 0)
        rb_raise(rb_eArgError, "%s", err); /* the caller says which setting, and which recipient */
    RB_GC_GUARD(text);
    return rb_str_new_cstr(out);
}

static VALUE hc_rb_age_identities(VALUE self, VALUE text)
{
    hc_dump_keys keys;
    hc_rb_age_keys(StringValue(text), &keys);
    size_t n = keys.n;
    hc_rb_age_keys_free(&keys);
    return SIZET2NUM(n);
}

/* A sink into an hc_sbuf (age.h's hc_age_sink_fn). */
static int hc_rb_age_collect(void *ctx, const void *buf, size_t len, char *err, size_t errlen)
{
    hc_sbuf *b = ctx;
    hc_sbuf_append(b, buf, len);
    if (!b->oom) return 0;
    hc_errorf(err, errlen, "out of memory");
    return -1;
}

static VALUE hc_rb_age_take(hc_sbuf *b, int wipe)
{
    VALUE out = rb_str_new(b->data, (long)b->len); /* allocates: the buffer is freed in any case below */
    if (wipe && b->data) memset(b->data, 0, b->len);
    hc_sbuf_free(b);
    return out;
}

static VALUE hc_rb_age_encrypt(VALUE self, VALUE data, VALUE recipients)
{
    StringValue(data);
    size_t n;
    VALUE keys = hc_rb_age_recipients(recipients, &n);
    hc_age_writer w;
    hc_sbuf out = {0};
    char err[320];
    int rc = hc_age_writer_init(&w, (const hc_age_recipient *)RSTRING_PTR(keys), n, hc_rb_age_collect, &out, err,
                                sizeof err);
    if (rc == 0) rc = hc_age_writer_write(&w, RSTRING_PTR(data), (size_t)RSTRING_LEN(data), err, sizeof err);
    if (rc == 0) rc = hc_age_writer_finish(&w, err, sizeof err);
    hc_age_writer_free(&w);
    RB_GC_GUARD(data);
    RB_GC_GUARD(keys);
    if (rc != 0) {
        hc_sbuf_free(&out);
        hc_rb_raise(hc_eError, "%s", err);
    }
    return hc_rb_age_take(&out, 0);
}

static VALUE hc_rb_age_decrypt(VALUE self, VALUE data, VALUE identity)
{
    StringValue(data);
    hc_dump_keys keys;
    hc_rb_age_keys(identity, &keys);
    hc_age_reader r;
    hc_sbuf out = {0};
    char err[320];
    int rc = hc_age_reader_init(&r, keys.ids, keys.n, err, sizeof err);
    hc_rb_age_keys_free(&keys);
    if (rc == 0) rc = hc_age_reader_feed(&r, RSTRING_PTR(data), (size_t)RSTRING_LEN(data), hc_rb_age_collect, &out, err,
                                         sizeof err);
    if (rc == 0) rc = hc_age_reader_finish(&r, hc_rb_age_collect, &out, err, sizeof err);
    hc_age_reader_free(&r);
    RB_GC_GUARD(data);
    if (rc != 0) {
        hc_sbuf_free(&out);
        hc_rb_raise(hc_eError, "%s", err);
    }
    return hc_rb_age_take(&out, 1);
}

void hc_init_age(void)
{
    hc_mAge = rb_define_module_under(hc_mHeapCapture, "Age");
    rb_define_const(hc_mAge, "AVAILABLE", hc_age_available() ? Qtrue : Qfalse);
    rb_define_singleton_method(hc_mAge, "recipient", hc_rb_age_recipient, 1);
    rb_define_singleton_method(hc_mAge, "identities", hc_rb_age_identities, 1);
    rb_define_singleton_method(hc_mAge, "encrypt", hc_rb_age_encrypt, 2);
    rb_define_singleton_method(hc_mAge, "decrypt", hc_rb_age_decrypt, 2);
}
