/* HeapCapture::SigV4's private C methods, _sign and _presign. lib/heapcapture/sigv4.rb turns
 * the public keyword arguments into plain Strings, Arrays of [String, String] and Integers; this
 * file checks those types again (so a direct call cannot crash), hands C strings to sigv4.c and
 * turns its result into a Hash. Signing takes microseconds: the GVL stays held. */
#include "rb_heapcapture.h"
#include "sigv4.h"

#include <string.h>

static VALUE hc_mSigV4;

static const char *hc_rb_sigv4_cstr(VALUE v, const char *arg, int nil_ok)
{
    return hc_rb_cstr(v, "SigV4", arg, rb_eArgError, nil_ok);
}

/* Checks that list is an Array of [String, String] and returns its length. */
static long hc_rb_sigv4_pairs_len(VALUE list, const char *arg)
{
    if (!RB_TYPE_P(list, T_ARRAY))
        hc_rb_raise(rb_eArgError, "SigV4: %s must be an Array of [name, value] pairs (got %s)", arg,
                 rb_obj_classname(list));
    long n = RARRAY_LEN(list);
    for (long i = 0; i < n; i++) {
        VALUE pair = RARRAY_AREF(list, i);
        if (!RB_TYPE_P(pair, T_ARRAY) || RARRAY_LEN(pair) != 2)
            hc_rb_raise(rb_eArgError, "SigV4: %s[%ld] must be a [name, value] pair", arg, i);
        hc_rb_sigv4_cstr(RARRAY_AREF(pair, 0), arg, 0);
        hc_rb_sigv4_cstr(RARRAY_AREF(pair, 1), arg, 0);
    }
    return n;
}

/* Fills kv from a list already checked by hc_rb_sigv4_pairs_len (nothing here raises). */
static void hc_rb_sigv4_fill_pairs(VALUE list, hc_kv *kv, long n)
{
    for (long i = 0; i < n; i++) {
        VALUE pair = RARRAY_AREF(list, i);
        kv[i].name = RSTRING_PTR(RARRAY_AREF(pair, 0));
        kv[i].value = RSTRING_PTR(RARRAY_AREF(pair, 1));
    }
}

static time_t hc_rb_sigv4_time(VALUE t)
{
    if (!RB_INTEGER_TYPE_P(t))
        hc_rb_raise(rb_eArgError, "SigV4: time must be a Time or Integer epoch seconds (got %s)",
                 rb_obj_classname(t));
    if (!FIXNUM_P(t))
        hc_rb_raise(rb_eArgError, "SigV4: time is out of range; give a Time between 1970 and 9999");
    return (time_t)FIX2LONG(t);
}

typedef struct {
    hc_sigv4_result res;
    int presign;
    int has_token;
} hc_rb_sigv4_out;

static VALUE hc_rb_sigv4_str(const char *s) { return rb_utf8_str_new_cstr(s ? s : ""); }

static VALUE hc_rb_sigv4_build(VALUE arg)
{
    hc_rb_sigv4_out *o = (hc_rb_sigv4_out *)arg;
    VALUE h = rb_hash_new();
    rb_hash_aset(h, ID2SYM(rb_intern("canonical_request")), hc_rb_sigv4_str(o->res.canonical_request));
    rb_hash_aset(h, ID2SYM(rb_intern("string_to_sign")), hc_rb_sigv4_str(o->res.string_to_sign));
    rb_hash_aset(h, ID2SYM(rb_intern("signature")), hc_rb_sigv4_str(o->res.signature));
    if (o->presign) {
        VALUE query = rb_ary_new_capa((long)o->res.nquery);
        for (size_t i = 0; i < o->res.nquery; i++)
            rb_ary_push(query, rb_assoc_new(hc_rb_sigv4_str(o->res.query[i].name),
                                            hc_rb_sigv4_str(o->res.query[i].value)));
        rb_hash_aset(h, ID2SYM(rb_intern("query")), query);
        rb_hash_aset(h, ID2SYM(rb_intern("query_string")), hc_rb_sigv4_str(o->res.query_string));
    } else {
        VALUE headers = rb_hash_new();
        rb_hash_aset(headers, rb_str_new_cstr("authorization"), hc_rb_sigv4_str(o->res.authorization));
        rb_hash_aset(headers, rb_str_new_cstr("x-amz-date"), hc_rb_sigv4_str(o->res.amz_date));
        rb_hash_aset(h, ID2SYM(rb_intern("headers")), headers);
    }
    return h;
}

static VALUE hc_rb_sigv4_release(VALUE arg)
{
    hc_sigv4_result_free(&((hc_rb_sigv4_out *)arg)->res);
    return Qnil;
}

/* Runs sign or presign on checked arguments; raises ArgumentError with sigv4.c's message. */
static VALUE hc_rb_sigv4_run(int presign, VALUE method, VALUE host, VALUE path, VALUE query, VALUE headers,
                             VALUE payload, VALUE region, VALUE service, VALUE akid, VALUE secret, VALUE token,
                             VALUE time, VALUE expires_in)
{
    /* Every check that can raise comes first; then buffers; then pointers, with nothing in between
     * that runs Ruby code or could move a string. */
    hc_rb_sigv4_cstr(method, "method", 0);
    hc_rb_sigv4_cstr(host, "host", 0);
    hc_rb_sigv4_cstr(path, "path", 0);
    hc_rb_sigv4_cstr(payload, "payload_sha256", presign);
    hc_rb_sigv4_cstr(region, "region", 0);
    hc_rb_sigv4_cstr(service, "service", 0);
    hc_rb_sigv4_cstr(akid, "access_key_id", 0);
    hc_rb_sigv4_cstr(secret, "secret_access_key", 0);
    hc_rb_sigv4_cstr(token, "session_token", 1);
    long nquery = hc_rb_sigv4_pairs_len(query, "query");
    long nheaders = presign ? 0 : hc_rb_sigv4_pairs_len(headers, "headers");
    time_t t = hc_rb_sigv4_time(time);
    long expires = 0;
    if (presign) {
        if (!FIXNUM_P(expires_in))
            hc_rb_raise(rb_eArgError, "SigV4: expires_in must be an Integer number of seconds, "
                     "1 to 604800");
        expires = FIX2LONG(expires_in);
    }

    VALUE qbuf = 0, hbuf = 0;
    hc_kv *qkv = ALLOCV_N(hc_kv, qbuf, nquery ? nquery : 1);
    hc_kv *hkv = ALLOCV_N(hc_kv, hbuf, nheaders ? nheaders : 1);
    hc_rb_sigv4_fill_pairs(query, qkv, nquery);
    if (!presign) hc_rb_sigv4_fill_pairs(headers, hkv, nheaders);
    hc_sigv4_request req = {
        .method = RSTRING_PTR(method), .host = RSTRING_PTR(host), .path = RSTRING_PTR(path),
        .query = qkv, .nquery = (size_t)nquery, .headers = hkv, .nheaders = (size_t)nheaders,
        .payload_sha256 = NIL_P(payload) ? NULL : RSTRING_PTR(payload),
        .region = RSTRING_PTR(region), .service = RSTRING_PTR(service),
        .access_key_id = RSTRING_PTR(akid), .secret_access_key = RSTRING_PTR(secret),
        .session_token = NIL_P(token) ? NULL : RSTRING_PTR(token), .time = t,
    };
    hc_rb_sigv4_out out = { .presign = presign };
    out.has_token = req.session_token && *req.session_token;
    char err[512];
    int rc = presign ? hc_sigv4_presign(&req, expires, &out.res, err, sizeof err)
                     : hc_sigv4_sign(&req, &out.res, err, sizeof err);
    ALLOCV_END(qbuf);
    ALLOCV_END(hbuf);
    RB_GC_GUARD(method); RB_GC_GUARD(host); RB_GC_GUARD(path); RB_GC_GUARD(query); RB_GC_GUARD(headers);
    RB_GC_GUARD(payload); RB_GC_GUARD(region); RB_GC_GUARD(service); RB_GC_GUARD(akid);
    RB_GC_GUARD(secret); RB_GC_GUARD(token);
    if (rc != 0) hc_rb_raise(rb_eArgError, "%s", err);

    VALUE result = rb_ensure(hc_rb_sigv4_build, (VALUE)&out, hc_rb_sigv4_release, (VALUE)&out);
    if (out.has_token && !presign)
        rb_hash_aset(rb_hash_aref(result, ID2SYM(rb_intern("headers"))), rb_str_new_cstr("x-amz-security-token"),
                     rb_str_dup(token));
    return result;
}

/* _sign(method, host, path, query, headers, payload_sha256, region, service, access_key_id,
 *       secret_access_key, session_token, time) */
static VALUE hc_rb_sigv4_sign(VALUE self, VALUE method, VALUE host, VALUE path, VALUE query, VALUE headers,
                              VALUE payload, VALUE region, VALUE service, VALUE akid, VALUE secret, VALUE token,
                              VALUE time)
{
    return hc_rb_sigv4_run(0, method, host, path, query, headers, payload, region, service, akid, secret, token,
                           time, Qnil);
}

/* _presign(method, host, path, query, region, service, access_key_id, secret_access_key,
 *          session_token, time, expires_in) */
static VALUE hc_rb_sigv4_presign(VALUE self, VALUE method, VALUE host, VALUE path, VALUE query, VALUE region,
                                 VALUE service, VALUE akid, VALUE secret, VALUE token, VALUE time,
                                 VALUE expires_in)
{
    return hc_rb_sigv4_run(1, method, host, path, query, Qnil, Qnil, region, service, akid, secret, token,
                           time, expires_in);
}

void hc_init_sigv4(void)
{
    hc_mSigV4 = rb_define_module_under(hc_mHeapCapture, "SigV4");
    VALUE singleton = rb_singleton_class(hc_mSigV4);
    rb_define_private_method(singleton, "_sign", hc_rb_sigv4_sign, 12);
    rb_define_private_method(singleton, "_presign", hc_rb_sigv4_presign, 11);
}
