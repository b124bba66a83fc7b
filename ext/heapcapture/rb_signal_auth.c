/* HeapCapture::SignalAuth (signal_auth.h) and HeapCapture::Seal (signal_reply_seal.h), bound to Ruby.
 *
 *   SignalAuth.mac(key, channel, time, nonce, trace_for, reply_key, payload)  # => 32 bytes
 *   SignalAuth.equal?(a, b)                # constant time; false unless both are 32 bytes
 *   SignalAuth::KEY_MIN, SignalAuth::NONCE_HEX
 *   cache = SignalAuth::NonceCache.new(1024)
 *   cache.add(nonce, time, now, window)    # => :fresh, :replayed or :full
 *   Seal::AVAILABLE
 *   pk, sk = Seal.keypair
 *   box = Seal.seal(message, pk); Seal.open(box, pk, sk)
 *
 * Every argument's class is checked without calling Ruby code (no to_str), so the pointers taken
 * afterwards stay valid. A wrong class is a TypeError, a bad value an ArgumentError with the C
 * module's text; a seal that fails is a HeapCapture::Error. All of it takes microseconds: the GVL
 * stays held. */
#include "rb_heapcapture.h"
#include "signal_reply_seal.h"
#include "signal_auth.h"

#include <limits.h>
#include <string.h>

static VALUE hc_mSignalAuth, hc_cNonceCache, hc_mSeal;
static ID hc_id_fresh, hc_id_replayed, hc_id_full;

/* v, checked to be a String (its bytes may be anything). */
static VALUE hc_rb_bytes(VALUE v, const char *part, const char *arg)
{
    if (!RB_TYPE_P(v, T_STRING))
        hc_rb_raise(rb_eTypeError, "%s: %s must be a String (got %s)", part, arg, rb_obj_classname(v));
    return v;
}

/* v, checked to be a String of exactly n bytes (a key). */
static void hc_rb_key_bytes(VALUE v, long n, const char *part, const char *arg)
{
    hc_rb_bytes(v, part, arg);
    if (RSTRING_LEN(v) != n)
        hc_rb_raise(rb_eArgError, "%s: %s must be %ld bytes (got %ld)", part, arg, n, RSTRING_LEN(v));
}

static const unsigned char *hc_rb_uptr(VALUE str) { return (const unsigned char *)RSTRING_PTR(str); }

/* An Integer beyond 64 bits is an ArgumentError like any other bad value (not NUM2LL's
 * RangeError): a signal's fields come from the wire, and its checker rescues bad input as one. */
static int64_t hc_rb_int64(VALUE v, const char *part, const char *arg)
{
    if (!RB_INTEGER_TYPE_P(v))
        hc_rb_raise(rb_eTypeError, "%s: %s must be an Integer (got %s)", part, arg, rb_obj_classname(v));
    int64_t x = 0;
    int sign = rb_integer_pack(v, &x, 1, sizeof x, 0,
                               INTEGER_PACK_LSWORD_FIRST | INTEGER_PACK_NATIVE_BYTE_ORDER | INTEGER_PACK_2COMP);
    /* Packing reports overflow past 64 bits; 2**63..2**64-1 fit those bits but turn negative. */
    if (sign == 2 || sign == -2 || (sign > 0) != (x > 0))
        hc_rb_raise(rb_eArgError, "%s: %s is out of range; give an Integer that fits in 64 bits", part, arg);
    return x;
}

/* ---- SignalAuth ---- */

static VALUE hc_rb_signal_mac(VALUE self, VALUE key, VALUE channel, VALUE time, VALUE nonce, VALUE trace_for,
                              VALUE reply_key, VALUE payload)
{
    hc_rb_bytes(key, "SignalAuth.mac", "key");
    hc_rb_cstr(channel, "SignalAuth.mac", "channel", rb_eTypeError, 0);
    hc_rb_cstr(nonce, "SignalAuth.mac", "nonce", rb_eTypeError, 0);
    hc_rb_cstr(reply_key, "SignalAuth.mac", "reply_key", rb_eTypeError, 1);
    hc_rb_bytes(payload, "SignalAuth.mac", "payload");
    int64_t t = hc_rb_int64(time, "SignalAuth.mac", "time");
    int64_t trace = -1;
    if (!NIL_P(trace_for)) {
        trace = hc_rb_int64(trace_for, "SignalAuth.mac", "trace_for");
        if (trace < 0)
            hc_rb_raise(rb_eArgError, "SignalAuth.mac: trace_for is %lld; give seconds (0 or more), or nil "
                        "for none", (long long)trace);
    }

    hc_signal_fields f = {
        .channel = RSTRING_PTR(channel), .time = t, .nonce = RSTRING_PTR(nonce), .trace_for = trace,
        .reply_key = NIL_P(reply_key) ? NULL : RSTRING_PTR(reply_key),
        .payload = hc_rb_uptr(payload), .payload_len = (size_t)RSTRING_LEN(payload),
    };
    unsigned char mac[HC_SIGNAL_MAC_BYTES];
    char err[256];
    int rc = hc_signal_mac(hc_rb_uptr(key), (size_t)RSTRING_LEN(key), &f, mac, err, sizeof err);
    RB_GC_GUARD(key); RB_GC_GUARD(channel); RB_GC_GUARD(nonce); RB_GC_GUARD(reply_key); RB_GC_GUARD(payload);
    if (rc != 0) hc_rb_raise(rb_eArgError, "%s", err);
    return rb_str_new((const char *)mac, HC_SIGNAL_MAC_BYTES);
}

static VALUE hc_rb_signal_equal(VALUE self, VALUE a, VALUE b)
{
    hc_rb_bytes(a, "SignalAuth.equal?", "a");
    hc_rb_bytes(b, "SignalAuth.equal?", "b");
    /* The lengths are not secret; only the bytes are compared in constant time. */
    if (RSTRING_LEN(a) != HC_SIGNAL_MAC_BYTES || RSTRING_LEN(b) != HC_SIGNAL_MAC_BYTES) return Qfalse;
    return hc_signal_mac_equal(hc_rb_uptr(a), hc_rb_uptr(b)) ? Qtrue : Qfalse;
}

/* ---- SignalAuth::NonceCache ---- */

static void hc_rb_nonce_cache_free(void *p) { hc_nonce_cache_free(p); }

static size_t hc_rb_nonce_cache_memsize(const void *p) { return hc_nonce_cache_memsize(p); }

static const rb_data_type_t hc_rb_nonce_cache_type = {
    .wrap_struct_name = "HeapCapture::SignalAuth::NonceCache",
    .function = { .dfree = hc_rb_nonce_cache_free, .dsize = hc_rb_nonce_cache_memsize },
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE hc_rb_nonce_cache_alloc(VALUE klass)
{
    return TypedData_Wrap_Struct(klass, &hc_rb_nonce_cache_type, NULL);
}

static VALUE hc_rb_nonce_cache_init(VALUE self, VALUE capacity)
{
    if (RTYPEDDATA_DATA(self))
        hc_rb_raise(rb_eArgError, "SignalAuth::NonceCache: this cache is initialized already");
    int64_t n = hc_rb_int64(capacity, "SignalAuth::NonceCache.new", "capacity");
    if (n < 1 || n > (int64_t)HC_NONCE_CACHE_MAX)
        hc_rb_raise(rb_eArgError, "SignalAuth::NonceCache.new: capacity is %lld; give 1 to %u nonces",
                    (long long)n, HC_NONCE_CACHE_MAX);
    hc_nonce_cache *c = hc_nonce_cache_new((size_t)n);
    if (!c) rb_memerror();
    RTYPEDDATA_DATA(self) = c;
    return self;
}

/* A copy would share or lose the nonces remembered: there is one cache per listener. */
static VALUE hc_rb_nonce_cache_copy(VALUE self, VALUE orig)
{
    hc_rb_raise(rb_eTypeError, "SignalAuth::NonceCache cannot be copied (one cache remembers one listener's "
                "nonces)");
}

static VALUE hc_rb_nonce_cache_add(VALUE self, VALUE nonce, VALUE time, VALUE now, VALUE window)
{
    hc_nonce_cache *c = rb_check_typeddata(self, &hc_rb_nonce_cache_type);
    if (!c) hc_rb_raise(rb_eArgError, "SignalAuth::NonceCache: this cache was never initialized; use .new");
    const char *n = hc_rb_cstr(nonce, "SignalAuth::NonceCache#add", "nonce", rb_eTypeError, 0);
    int64_t t = hc_rb_int64(time, "SignalAuth::NonceCache#add", "time");
    int64_t now_s = hc_rb_int64(now, "SignalAuth::NonceCache#add", "now");
    int64_t w = hc_rb_int64(window, "SignalAuth::NonceCache#add", "window");
    char err[256];
    if (hc_signal_check_nonce(n, err, sizeof err) != 0) hc_rb_raise(rb_eArgError, "%s", err);
    int rc = hc_nonce_cache_add(c, n, t, now_s, w);
    RB_GC_GUARD(nonce);
    switch (rc) {
    case HC_NONCE_FRESH: return ID2SYM(hc_id_fresh);
    case HC_NONCE_REPLAYED: return ID2SYM(hc_id_replayed);
    case HC_NONCE_FULL: return ID2SYM(hc_id_full);
    default:
        hc_rb_raise(rb_eArgError, "SignalAuth::NonceCache#add: window is %lld and time %lld with now %lld; "
                    "give a window of 0 or more, and refuse a signal older than now - window as stale "
                    "before adding its nonce", (long long)w, (long long)t, (long long)now_s);
    }
}

/* ---- Seal ---- */

static VALUE hc_rb_seal_keypair(VALUE self)
{
    /* Made in the Strings themselves, so no copy of the secret key is left on the stack. */
    VALUE pk = rb_str_new(NULL, HC_SEAL_PUBLICKEY_BYTES), sk = rb_str_new(NULL, HC_SEAL_SECRETKEY_BYTES);
    char err[256];
    if (hc_seal_keypair((unsigned char *)RSTRING_PTR(pk), (unsigned char *)RSTRING_PTR(sk), err, sizeof err) != 0)
        hc_rb_raise(hc_eError, "%s", err);
    return rb_assoc_new(pk, sk);
}

static VALUE hc_rb_seal_seal(VALUE self, VALUE message, VALUE pk)
{
    hc_rb_bytes(message, "Seal.seal", "message");
    hc_rb_key_bytes(pk, HC_SEAL_PUBLICKEY_BYTES, "Seal.seal", "pk");
    long len = RSTRING_LEN(message);
    if (len > LONG_MAX - HC_SEAL_OVERHEAD) hc_rb_raise(rb_eArgError, "Seal.seal: the message is too long to seal");
    VALUE box = rb_str_new(NULL, len + HC_SEAL_OVERHEAD);
    /* Pointers are taken after the allocation, which may run the GC. */
    char err[256];
    int rc = hc_seal(hc_rb_uptr(message), (size_t)len, hc_rb_uptr(pk), (unsigned char *)RSTRING_PTR(box), err,
                     sizeof err);
    RB_GC_GUARD(message); RB_GC_GUARD(pk);
    if (rc != 0) hc_rb_raise(hc_eError, "%s", err);
    return box;
}

static VALUE hc_rb_seal_open(VALUE self, VALUE box, VALUE pk, VALUE sk)
{
    hc_rb_bytes(box, "Seal.open", "box");
    hc_rb_key_bytes(pk, HC_SEAL_PUBLICKEY_BYTES, "Seal.open", "pk");
    hc_rb_key_bytes(sk, HC_SEAL_SECRETKEY_BYTES, "Seal.open", "sk");
    long len = RSTRING_LEN(box);
    /* A box too short to open still gets an (empty) buffer: hc_seal_open says what is wrong. */
    VALUE out = rb_str_new(NULL, len > HC_SEAL_OVERHEAD ? len - HC_SEAL_OVERHEAD : 0);
    char err[256];
    int rc = hc_seal_open(hc_rb_uptr(box), (size_t)len, hc_rb_uptr(pk), hc_rb_uptr(sk),
                          (unsigned char *)RSTRING_PTR(out), err, sizeof err);
    RB_GC_GUARD(box); RB_GC_GUARD(pk); RB_GC_GUARD(sk);
    if (rc != 0) hc_rb_raise(hc_eError, "%s", err);
    return out;
}

void hc_init_signal_auth(void)
{
    hc_id_fresh = rb_intern("fresh");
    hc_id_replayed = rb_intern("replayed");
    hc_id_full = rb_intern("full");

    hc_mSignalAuth = rb_define_module_under(hc_mHeapCapture, "SignalAuth");
    rb_define_const(hc_mSignalAuth, "KEY_MIN", INT2FIX(HC_SIGNAL_KEY_MIN));
    rb_define_const(hc_mSignalAuth, "NONCE_HEX", INT2FIX(HC_SIGNAL_NONCE_HEX));
    rb_define_singleton_method(hc_mSignalAuth, "mac", hc_rb_signal_mac, 7);
    rb_define_singleton_method(hc_mSignalAuth, "equal?", hc_rb_signal_equal, 2);

    hc_cNonceCache = rb_define_class_under(hc_mSignalAuth, "NonceCache", rb_cObject);
    rb_define_alloc_func(hc_cNonceCache, hc_rb_nonce_cache_alloc);
    rb_define_method(hc_cNonceCache, "initialize", hc_rb_nonce_cache_init, 1);
    rb_define_method(hc_cNonceCache, "initialize_copy", hc_rb_nonce_cache_copy, 1);
    rb_define_method(hc_cNonceCache, "add", hc_rb_nonce_cache_add, 4);

    hc_mSeal = rb_define_module_under(hc_mHeapCapture, "Seal");
    rb_define_const(hc_mSeal, "AVAILABLE", hc_seal_available() ? Qtrue : Qfalse);
    rb_define_singleton_method(hc_mSeal, "keypair", hc_rb_seal_keypair, 0);
    rb_define_singleton_method(hc_mSeal, "seal", hc_rb_seal_seal, 2);
    rb_define_singleton_method(hc_mSeal, "open", hc_rb_seal_open, 3);
}
