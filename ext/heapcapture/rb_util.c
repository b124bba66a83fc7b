/* What the Ruby bindings (rb_*.c) share: the module and its error classes, raising, reading
 * arguments, describing exceptions. */
#include "rb_heapcapture.h"

#include <stdarg.h>
#include <string.h>

VALUE hc_mHeapCapture;
VALUE hc_eError;
VALUE hc_eConfigurationError;
VALUE hc_eConnectionError;
VALUE hc_eDumpError;
VALUE hc_eS3Error;
VALUE hc_eUploadError;

void hc_init_util(void)
{
    hc_mHeapCapture = rb_define_module("HeapCapture");
    hc_eError = rb_define_class_under(hc_mHeapCapture, "Error", rb_eStandardError);
    hc_eConfigurationError = rb_define_class_under(hc_mHeapCapture, "ConfigurationError", hc_eError);
    hc_eConnectionError = rb_define_class_under(hc_mHeapCapture, "ConnectionError", hc_eError);
    hc_eDumpError = rb_define_class_under(hc_mHeapCapture, "DumpError", hc_eError);
    hc_eS3Error = rb_define_class_under(hc_mHeapCapture, "S3Error", hc_eError);
    hc_eUploadError = rb_define_class_under(hc_mHeapCapture, "UploadError", hc_eS3Error);
}

VALUE hc_rb_dump_module(void)
{
    return rb_define_module_under(hc_mHeapCapture, "Dump");
}

#define HC_RB_PREFIX "heapcapture: "

void hc_rb_raise(VALUE klass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    VALUE msg = rb_str_new_cstr(HC_RB_PREFIX);
    rb_str_vcatf(msg, fmt, ap);
    va_end(ap);
    rb_exc_raise(rb_exc_new_str(klass, msg));
}

void hc_rb_sys_fail(const char *doing)
{
    rb_sys_fail_str(rb_sprintf(HC_RB_PREFIX "%s", doing));
}

const char *hc_rb_cstr(VALUE v, const char *part, const char *arg, VALUE type_error, int nil_ok)
{
    if (nil_ok && NIL_P(v)) return NULL;
    if (!RB_TYPE_P(v, T_STRING))
        hc_rb_raise(type_error, "%s: %s must be a String (got %s)", part, arg, rb_obj_classname(v));
    if (memchr(RSTRING_PTR(v), '\0', (size_t)RSTRING_LEN(v)))
        hc_rb_raise(rb_eArgError, "%s: %s contains a NUL byte", part, arg);
    return rb_string_value_cstr(&v);
}

static VALUE hc_exception_message(VALUE e)
{
    VALUE msg = rb_funcall(e, rb_intern("message"), 0);
    return RB_TYPE_P(msg, T_STRING) ? msg : rb_obj_as_string(msg);
}

/* #message is other people's code and may itself raise (or return something whose #to_s
 * raises): then the class name stands alone, so the failure is still reported. A non-error
 * (Thread#kill's interrupt) goes on up. */
VALUE hc_rb_describe_exception(VALUE e)
{
    VALUE klass = rb_class_name(rb_obj_class(e));
    int state = 0;
    VALUE msg = rb_protect(hc_exception_message, e, &state);
    if (state) {
        VALUE inner = rb_errinfo();
        if (!rb_obj_is_kind_of(inner, rb_eStandardError)) rb_jump_tag(state);
        rb_set_errinfo(Qnil);
        return rb_sprintf("%" PRIsVALUE " (its #message raised %" PRIsVALUE " too)", klass,
                          rb_class_name(rb_obj_class(inner)));
    }
    return rb_sprintf("%" PRIsVALUE ": %" PRIsVALUE, klass, msg);
}
