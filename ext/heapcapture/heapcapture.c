/* heapcapture's native extension: start here.
 *
 * Init_heapcapture defines the module and its error classes and then calls each part's init.
 * The work is in pure C modules that know nothing of Ruby (sigv4.c, s3*.c, listener.c, dump_*.c,
 * signal_auth.c, reply_seal.c, age_stream.c);
 * the rb_*.c files bind them to Ruby: argument checks, GVL release, mapping errors to classes
 * (what they share is in rb_util.c). */
#include "rb_heapcapture.h"

VALUE hc_mHeapCapture;
VALUE hc_eError;
VALUE hc_eConfigurationError;
VALUE hc_eConnectionError;
VALUE hc_eDumpError;
VALUE hc_eS3Error;
VALUE hc_eUploadError;

RUBY_FUNC_EXPORTED void Init_heapcapture(void)
{
    hc_mHeapCapture = rb_define_module("HeapCapture");
    hc_eError = rb_define_class_under(hc_mHeapCapture, "Error", rb_eStandardError);
    hc_eConfigurationError = rb_define_class_under(hc_mHeapCapture, "ConfigurationError", hc_eError);
    hc_eConnectionError = rb_define_class_under(hc_mHeapCapture, "ConnectionError", hc_eError);
    hc_eDumpError = rb_define_class_under(hc_mHeapCapture, "DumpError", hc_eError);
    hc_eS3Error = rb_define_class_under(hc_mHeapCapture, "S3Error", hc_eError);
    hc_eUploadError = rb_define_class_under(hc_mHeapCapture, "UploadError", hc_eS3Error);

    hc_init_sigv4();
    hc_init_listener();
    hc_init_s3();
    hc_init_dump();
    hc_init_tracer();
    hc_init_signal_auth();
    hc_init_age();
}
