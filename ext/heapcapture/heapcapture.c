/* heapcapture's native extension: start here.
 *
 * Init_heapcapture defines the module and its error classes and then calls each part's init.
 * The work is in pure C modules that know nothing of Ruby (sigv4.c, s3.c, listener.c, dump.c);
 * the rb_*.c files bind them to Ruby: argument checks, GVL release, mapping errors to classes. */
#include "rb_heapcapture.h"

VALUE hc_mHeapCapture;
VALUE hc_eError;
VALUE hc_eConfigurationError;
VALUE hc_eConnectionError;
VALUE hc_eDumpError;
VALUE hc_eUploadError;

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

RUBY_FUNC_EXPORTED void Init_heapcapture(void)
{
    hc_mHeapCapture = rb_define_module("HeapCapture");
    hc_eError = rb_define_class_under(hc_mHeapCapture, "Error", rb_eStandardError);
    hc_eConfigurationError = rb_define_class_under(hc_mHeapCapture, "ConfigurationError", hc_eError);
    hc_eConnectionError = rb_define_class_under(hc_mHeapCapture, "ConnectionError", hc_eError);
    hc_eDumpError = rb_define_class_under(hc_mHeapCapture, "DumpError", hc_eError);
    hc_eUploadError = rb_define_class_under(hc_mHeapCapture, "UploadError", hc_eError);

    hc_init_sigv4();
    hc_init_listener();
    hc_init_s3();
    hc_init_dump();
}
